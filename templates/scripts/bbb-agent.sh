#!/usr/bin/env bash
# bbb-agent: what only this BigBlueButton server knows, told to its deployment.
#
#   report  write this server's report to s3://REPORT_BUCKET/servers/<role id>:<instance
#           id>.json: its own API secret (securitySalt of bbb-web.properties) and the state
#           of its recordings (below). Written when it differs from the last one written
#           (STATE_FILE holds its digest) and, unchanged, again once the last write is
#           REFRESH_SECONDS old: the object's S3 LastModified tells its readers how fresh
#           the account is. After that, one failed recording not yet saved is saved.
#   watch   report at start, then every REPORT_SECONDS (sooner when the refresh is due);
#           bbb-agent.service, in both modes.
#
# Readers: in scalable mode the registrar (templates/scripts/bbb_registrar.py, a Lambda
# function of the servers stack) checks the secret against this server's own API, adds the
# server to Scalelite, holds its scale-in protection and drains it while it is busy; bbbctl
# reads the reports (both modes: the single server's before it replaces or destroys it).
# The server holds no other key to the platform. The object key is this instance role
# session's aws:userid (<role id>:<instance id>, as sts get-caller-identity says it): the
# role may write servers/${aws:userid}.json and failed/${aws:userid}/*, nothing else there,
# so no server can report or save for another.
#
# Recordings (BigBlueButton 3.0: Resque jobs of bbb-rap-resque-worker; the status markers
# below STATUS_DIR as record-and-playback/core/lib/recordandplayback/workers/*_worker.rb,
# scripts/rap-starter.rb and bbb-web write them; record id = <meeting id>, optionally
# -<break timestamp>):
#   queued    recorded/<id>.done: bbb-web writes it when a recorded meeting ends
#             (MeetingService processRecording -> RecordingService
#             startIngestAndProcessing); rap-starter deletes it once it queued the archive job
#   archive   raw/<meeting id>/ (rap-starter's inotify revision makes it before it queues
#             that job; with the older polling one only Redis shows the queued job) and no
#             archived/ marker of the meeting yet: queued for, or in, the archive step
#   sanity    archived/<id>.done, no sanity/ marker
#   captions  sanity/<id>.done, no processed/<id>-<format> marker, and a rap:captions job
#             of it in Redis (the captions step writes no marker of its own)
#   process   sanity/<id>.done, no processed/ marker otherwise
#   publish   a processed/<id>-<format>.done without its published/<id>-<format> marker
#   transfer  (TRANSFER=scalelite) every processed format published, and Scalelite's
#             post-publish hook has not written published/<id>-sender.done since the last
#             published/ marker (it writes it only after its tar and rsync succeeded)
#   failed    a .fail marker of any step, or (TRANSFER=scalelite) no sender marker
#             TRANSFER_GRACE seconds after the last published/ marker (while no publish
#             job is at work on it), or stalled:
#             in one of the steps above with no job left in Redis at all (none queued, none
#             at work) and nothing of it changed for STALL_GRACE seconds: nothing will take
#             it up again (each step is queued from inside the job before it), so it counts
#             as failed (a worker killed mid-job; a single server's replacement finding its
#             predecessor's half-processed recordings on the data volume, without its Redis)
#   archived/<id>.norecord ends a recording (a meeting without recording marks): never
#   waited for, whatever else its id has.
# "pending" counts every recording of this server in the first seven states, and failed
# ones not yet saved; "jobs" the Resque jobs of the rap:* queues (resque:queue:rap:*
# lists, Resque's namespace "resque") plus the workers working on one (resque:worker:<id>
# of the resque:workers set; not one whose heartbeat in resque:workers:heartbeat stopped
# more than 5 minutes ago, Resque's own prune interval: killed hard, its job is gone). When Redis does not answer (redis-cli fails), the number of
# jobs is unknown: it is reported as 1 ("at least one"), never 0, so the server stays busy,
# and the log says why. "failed" counts failed recordings whose raw files are saved: the
# agent tars RAW_DIR/<meeting id> and puts it with the AWS CLI (aws s3 cp, multipart for
# large files) at s3://REPORT_BUCKET/failed/<role id>:<instance id>/<record id>.tar, once
# (SAVED_DIR remembers it; a key there under another server's prefix, a predecessor's on
# the same data volume, is saved again under this server's own; a failed upload is tried
# again after SAVE_RETRY_SECONDS; one upload a round, after the report), and logs the
# record id and key. At most 50 items, pending
# first. The shape is shared with its readers (bbb_registrar.py, bbbctl src/recordings.rs):
#   {"secret": "...", "recordings": {"pending": N, "jobs": N, "failed": N,
#    "items": [{"id": "<record id>", "state": "<state>", "saved": "<key>"}]}}
# ("saved" only on a failed recording that is saved; items list only record ids of the
# shape <40 hex>-<13 digits>, the others are counted).
#
# Boot (issue 27, contract section 5): the report also says how this boot goes, for the
# registrar's launch hook (it lets a new or warm instance go on once its boot is ready):
#   "boot": {"state": "booting|ready|failed", "started": <epoch of this boot's start>,
#            "path": "bare|baked|restart", "lifecycle": "<target lifecycle state or ''>"}
# state, started and path from BOOT_FILE (/run/bbbctl/boot, tmpfs: written by the bootstrap
# and bbb-identity at each boot, one line "<state> <epoch> <path>"); lifecycle from the
# instance metadata autoscaling/target-lifecycle-state (IMDSv2: the steady state Auto
# Scaling moves the instance to - InService, Warmed:Stopped, ...; "" when it names none,
# outside a group). No valid line (none yet this boot, or out of shape): no "boot" at all,
# which the registrar takes as not ready. While the boot is not ready and bbb-web has no
# secret yet or the status directory is missing (a bare install under way), the report
# holds the boot only. watch looks at both every BOOT_POLL_SECONDS and reports at once when
# either changed.
#
# Installed by bbb-bootstrap.sh as /usr/local/sbin/bbb-agent. Settings are read line by line
# from /etc/default/bbb-agent (BBB_AGENT_CONFIG names another file), never sourced:
#   AWS_DEFAULT_REGION, REPORT_BUCKET, STATE_FILE   required
#   BBB_PROPERTIES     /etc/bigbluebutton/bbb-web.properties (bbb-web's overrides, read
#                      after BBB_DEFAULT_PROPERTIES, /usr/share/bbb-web/WEB-INF/classes/
#                      bigbluebutton.properties: the last securitySalt wins)
#   STATUS_DIR         /var/bigbluebutton/recording/status
#   RAW_DIR            /var/bigbluebutton/recording/raw
#   SAVED_DIR          <directory of STATE_FILE>/bbb-agent-saved
#   REDIS_HOST, REDIS_PORT   127.0.0.1, 6379 (bigbluebutton.yml redis_workers_host/port)
#   TRANSFER           scalelite (the post-publish hook copies each recording to the
#                      spool; scalable mode) or none (single mode: published is final)
#   TRANSFER_GRACE     1800     REPORT_SECONDS  60     REFRESH_SECONDS  120
#   SAVE_RETRY_SECONDS 900      STALL_GRACE  900
#   BOOT_FILE          /run/bbbctl/boot         BOOT_POLL_SECONDS  2
# Needs the AWS CLI, python3, sha256sum, redis-cli, tar, du and curl. Never logs the secret.
set -euo pipefail

readonly CONFIG=${BBB_AGENT_CONFIG:-/etc/default/bbb-agent}
AWS_DEFAULT_REGION="" REPORT_BUCKET="" STATE_FILE="" BBB_PROPERTIES="" REPORT_SECONDS=""
BBB_DEFAULT_PROPERTIES=""
STATUS_DIR="" RAW_DIR="" SAVED_DIR="" REDIS_HOST="" REDIS_PORT="" TRANSFER=""
TRANSFER_GRACE="" REFRESH_SECONDS="" SAVE_RETRY_SECONDS="" STALL_GRACE=""
BOOT_FILE="" BOOT_POLL_SECONDS=""
while IFS='=' read -r key value; do
  case "${key}" in
    AWS_DEFAULT_REGION | REPORT_BUCKET | STATE_FILE | BBB_PROPERTIES | REPORT_SECONDS | \
      BBB_DEFAULT_PROPERTIES | \
      STATUS_DIR | RAW_DIR | SAVED_DIR | REDIS_HOST | REDIS_PORT | TRANSFER | \
      TRANSFER_GRACE | REFRESH_SECONDS | SAVE_RETRY_SECONDS | STALL_GRACE | \
      BOOT_FILE | BOOT_POLL_SECONDS)
      printf -v "${key}" '%s' "${value}"
      ;;
    '' | '#'*) ;;
    *) printf 'bbb-agent: unknown setting %s in %s ignored\n' "${key}" "${CONFIG}" >&2 ;;
  esac
done <"${CONFIG}"
: "${AWS_DEFAULT_REGION:?missing in ${CONFIG}}" "${REPORT_BUCKET:?missing in ${CONFIG}}"
: "${STATE_FILE:?missing in ${CONFIG}}"
BBB_PROPERTIES=${BBB_PROPERTIES:-/etc/bigbluebutton/bbb-web.properties}
BBB_DEFAULT_PROPERTIES=${BBB_DEFAULT_PROPERTIES:-/usr/share/bbb-web/WEB-INF/classes/bigbluebutton.properties}
STATUS_DIR=${STATUS_DIR:-/var/bigbluebutton/recording/status}
RAW_DIR=${RAW_DIR:-/var/bigbluebutton/recording/raw}
SAVED_DIR=${SAVED_DIR:-$(dirname -- "${STATE_FILE}")/bbb-agent-saved}
REDIS_HOST=${REDIS_HOST:-127.0.0.1}
BOOT_FILE=${BOOT_FILE:-/run/bbbctl/boot}
export AWS_DEFAULT_REGION

log() { printf 'bbb-agent: %s\n' "$*" >&2; }

# Numbers are checked here, once: they reach arithmetic and python as data. One that is
# not a number is logged and its default used.
for setting in REPORT_SECONDS:60 REFRESH_SECONDS:120 TRANSFER_GRACE:1800 REDIS_PORT:6379 \
  SAVE_RETRY_SECONDS:900 STALL_GRACE:900 BOOT_POLL_SECONDS:2; do
  name=${setting%%:*}
  if [[ -z "${!name}" ]]; then
    printf -v "${name}" '%s' "${setting#*:}"
  elif [[ ! "${!name}" =~ ^[0-9]{1,7}$ ]]; then
    log "${name} in ${CONFIG} is not a number: ${!name@Q} ignored, ${setting#*:} used"
    printf -v "${name}" '%s' "${setting#*:}"
  fi
done
[[ "${REPORT_SECONDS}" -gt 0 ]] || REPORT_SECONDS=1
[[ "${BOOT_POLL_SECONDS}" -gt 0 ]] || BOOT_POLL_SECONDS=1
case "${TRANSFER:=scalelite}" in
  scalelite | none) ;;
  *)
    log "TRANSFER in ${CONFIG} is scalelite or none, not ${TRANSFER@Q}: scalelite used"
    TRANSFER=scalelite
    ;;
esac
if [[ ! "${REPORT_BUCKET}" =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]]; then
  log "invalid bucket name in ${CONFIG}: ${REPORT_BUCKET@Q}"
  exit 2
fi
if [[ ! "${REDIS_HOST}" =~ ^[A-Za-z0-9.:-]{1,253}$ ]]; then
  log "invalid REDIS_HOST in ${CONFIG}: ${REDIS_HOST@Q}"
  exit 2
fi

# The Resque queues of bbb-rap-resque-worker (its unit's QUEUE): always looked at, besides
# whatever rap:* queue Redis knows (resque:queues).
readonly RAP_QUEUES="rap:archive rap:sanity rap:captions rap:process rap:publish rap:events"
# How many jobs of one queue are read to tell which recording each is for.
readonly QUEUE_PEEK=200

SESSION_USER=""
REDIS_STATE=""
# The failed recordings not yet saved that the last report_body found (a line each).
FAILED_LIST=""
# What boot_status read last: the boot line and the lifecycle (BOOT_SEEN, compared by
# watch), the boot as JSON for the report ("" when there is no valid line), its state.
BOOT_SEEN="" BOOT_JSON="" BOOT_STATE="" BOOT_WARNED=""
# The instance metadata service (IMDSv2).
readonly IMDS=http://169.254.169.254

# lifecycle: the instance's target lifecycle state (Amazon EC2 Auto Scaling User Guide,
# "Retrieve the target lifecycle state through instance metadata": the steady state it moves
# to), or nothing when IMDS names none (not in a group) or names something else.
lifecycle() {
  local token state
  token=$(curl -sf --max-time 2 -X PUT "${IMDS}/latest/api/token" \
    -H "X-aws-ec2-metadata-token-ttl-seconds: 60" 2>/dev/null) || return 0
  state=$(curl -sf --max-time 2 -H "X-aws-ec2-metadata-token: ${token}" \
    "${IMDS}/latest/meta-data/autoscaling/target-lifecycle-state" 2>/dev/null) || return 0
  case "${state}" in
    InService | Standby | Detached | Terminated | Warmed:Stopped | Warmed:Running | \
      Warmed:Hibernated | Warmed:Terminated) printf '%s' "${state}" ;;
    *) ;;
  esac
}

# boot_status: reads BOOT_FILE (strictly: "<booting|ready|failed> <epoch> <bare|baked|
# restart>") and, when it holds a valid line, the lifecycle; sets BOOT_SEEN, BOOT_JSON and
# BOOT_STATE. An invalid line is logged once and counts as none.
boot_status() {
  local state="" started="" path="" extra="" life=""
  BOOT_JSON="" BOOT_STATE=""
  if [[ ! -e "${BOOT_FILE}" ]]; then
    BOOT_SEEN=""
    return 0
  fi
  read -r state started path extra <"${BOOT_FILE}" || true
  if [[ ! "${state}" =~ ^(booting|ready|failed)$ || ! "${started}" =~ ^[0-9]{1,12}$ ||
    ! "${path}" =~ ^(bare|baked|restart)$ || -n "${extra}" ]]; then
    BOOT_SEEN="invalid"
    [[ -n "${BOOT_WARNED}" ]] || log "${BOOT_FILE} holds no boot state of the form \"<booting|ready|failed> <epoch> <bare|baked|restart>\": not reported"
    BOOT_WARNED=1
    return 0
  fi
  BOOT_WARNED=""
  life=$(lifecycle)
  BOOT_SEEN="${state} ${started} ${path} ${life}"
  BOOT_STATE=${state}
  BOOT_JSON=$(printf '{"state": "%s", "started": %d, "path": "%s", "lifecycle": "%s"}' \
    "${state}" "$((10#${started}))" "${path}" "${life}")
}

# session_user: this instance role session's aws:userid (<role id>:<instance id>), or a
# failure when the credentials are not an instance profile's.
session_user() {
  local user
  [[ -z "${SESSION_USER}" ]] || return 0
  if ! user=$(aws sts get-caller-identity --query UserId --output text); then
    log "could not tell this instance's role session (sts get-caller-identity)"
    return 1
  fi
  if [[ ! "${user}" =~ ^[A-Z0-9]+:i-[0-9a-f]+$ ]]; then
    log "unexpected role session ${user}: not an instance profile's"
    return 1
  fi
  SESSION_USER=${user}
}

readonly REDIS_CLI=(redis-cli -h "${REDIS_HOST}" -p "${REDIS_PORT}" --raw)

# redis_snapshot FILE: the Resque state bbb-agent needs, a line each:
#   now <seconds>             Redis's own clock (TIME), which Resque's heartbeats follow
#   queue <name> <length>     a rap:* queue (resque:queue:<name>)
#   job <name> <payload>      one of its first QUEUE_PEEK jobs (Resque's JSON)
#   working <beat> <payload>  what a worker of resque:workers works on (resque:worker:<id>),
#                             and its last heartbeat (resque:workers:heartbeat, ISO 8601;
#                             "-" when it has none): a worker killed hard leaves its entry,
#                             and only its heartbeat, stopped, tells it is dead
# Fails when Redis does not answer, or answers what no Resque writes.
redis_snapshot() {
  local out=$1 known workers queue length jobs worker payload now beat
  now=$("${REDIS_CLI[@]}" TIME) || return 1
  now=${now%%$'\n'*}
  [[ "${now}" =~ ^[0-9]+$ ]] || return 1
  known=$("${REDIS_CLI[@]}" SMEMBERS resque:queues) || return 1
  workers=$("${REDIS_CLI[@]}" SMEMBERS resque:workers) || return 1
  printf 'now %s\n' "${now}" >"${out}"
  # shellcheck disable=SC2086,SC2312 # RAP_QUEUES is a fixed list of words; printf cannot fail
  while read -r queue; do
    [[ "${queue}" =~ ^rap:[a-z_]{1,40}$ ]] || continue
    length=$("${REDIS_CLI[@]}" LLEN "resque:queue:${queue}") || return 1
    [[ "${length}" =~ ^[0-9]+$ ]] || return 1
    printf 'queue %s %s\n' "${queue}" "${length}" >>"${out}"
    [[ "${length}" -gt 0 ]] || continue
    jobs=$("${REDIS_CLI[@]}" LRANGE "resque:queue:${queue}" 0 "$((QUEUE_PEEK - 1))") || return 1
    while IFS= read -r payload; do
      [[ -z "${payload}" ]] || printf 'job %s %s\n' "${queue}" "${payload}" >>"${out}"
    done <<<"${jobs}"
  done < <(printf '%s\n' ${RAP_QUEUES} "${known}" | sort -u)
  while read -r worker; do
    # Resque's worker ids: <host name>:<pid>:<queues, comma-separated>.
    [[ "${worker}" =~ ^[A-Za-z0-9._-]+:[0-9]+:[A-Za-z0-9:,_*-]+$ ]] || continue
    payload=$("${REDIS_CLI[@]}" GET "resque:worker:${worker}") || return 1
    [[ -n "${payload}" ]] || continue
    beat=$("${REDIS_CLI[@]}" HGET resque:workers:heartbeat "${worker}") || return 1
    [[ "${beat}" =~ ^[0-9T:.+Z-]{1,40}$ ]] || beat=-
    printf 'working %s %s\n' "${beat}" "${payload//$'\n'/ }" >>"${out}"
  done <<<"${workers}"
}

# recordings MODE REDIS_FILE: python over the status markers, the raw directories, the
# saved list and the Redis snapshot (an empty REDIS_FILE name: Redis did not answer).
#   MODE report: the report's "recordings" object, as JSON
#   MODE failed: the failed recordings not yet saved, a line each: <record id> <raw
#                directory name> <step that failed, words>
recordings() {
  MODE=$1 REDIS_FILE=$2 STATUS_DIR=${STATUS_DIR} RAW_DIR=${RAW_DIR} SAVED_DIR=${SAVED_DIR} \
    TRANSFER=${TRANSFER} TRANSFER_GRACE=${TRANSFER_GRACE} STALL_GRACE=${STALL_GRACE} \
    OWN="failed/${SESSION_USER}/" \
    python3 - <<'PYTHON'
import datetime, json, os, re, sys, time

STATUS = os.environ["STATUS_DIR"]
RAW = os.environ["RAW_DIR"]
SAVED = os.environ["SAVED_DIR"]
TRANSFER = os.environ["TRANSFER"]
GRACE = int(os.environ["TRANSFER_GRACE"])
STALL = int(os.environ["STALL_GRACE"])
MODE = os.environ["MODE"]
REDIS_FILE = os.environ["REDIS_FILE"]
# This server's own prefix for saved recordings: a key saved by a predecessor on the same
# data volume (single mode) is under another's and is saved again under this one.
OWN = os.environ["OWN"]
ITEMS = 50

# <meeting id> or <meeting id>-<break timestamp> (rap-starter.rb parse_meeting_id).
RECORD = r"[0-9a-f]{1,128}-[0-9]{1,20}(?:-[0-9]{1,20})?"
# What bbbctl and the registrar trust (contract): a meeting's record id, no segment.
LISTED = re.compile(r"[0-9a-f]{40}-[0-9]{13}")
PLAIN = re.compile(r"(" + RECORD + r")\.(done|fail|norecord)")
FORMAT = re.compile(r"(" + RECORD + r")-([a-z][a-z0-9_]{0,40})\.(done|fail)")


def names(step):
    try:
        return os.listdir(os.path.join(STATUS, step))
    except FileNotFoundError:
        return []


def mtime(step, name):
    try:
        return os.stat(os.path.join(STATUS, step, name)).st_mtime
    except FileNotFoundError:
        return None


def meeting(record):
    return "-".join(record.split("-")[:2])


rec = {}


def entry(record):
    return rec.setdefault(record, {"marks": set(), "processed": {}, "published": {},
                                   "sender": None, "newest": 0})


def touched(record, when):
    """The newest change seen of a recording (a marker written, its raw directory)."""
    e = entry(record)
    e["newest"] = max(e["newest"], when or 0)


for step in ("recorded", "archived", "sanity"):
    for name in names(step):
        m = PLAIN.fullmatch(name)
        if m:
            entry(m.group(1))["marks"].add(step + "." + m.group(2))
            touched(m.group(1), mtime(step, name))
for step in ("processed", "published"):
    for name in names(step):
        m = FORMAT.fullmatch(name)
        if not m:
            continue
        record, fmt, kind = m.groups()
        touched(record, mtime(step, name))
        if step == "published" and fmt == "sender":
            # Scalelite's hook: status/published/<id>-sender.done (scalelite_post_publish.rb).
            if kind == "done":
                entry(record)["sender"] = mtime(step, name)
            continue
        entry(record)[step].setdefault(fmt, set()).add(kind)
        if step == "published" and kind == "done":
            e = entry(record)
            e["last_published"] = max(e.get("last_published") or 0, mtime(step, name) or 0)

# rap-starter (its inotify revision) makes raw/<meeting id> before it queues the archive job and deletes
# recorded/<id>.done after: a raw directory with no archived marker of its meeting is a
# recording queued for, or in, the archive step.
try:
    raw_dirs = [d for d in os.listdir(RAW) if re.fullmatch(RECORD, d)]
except FileNotFoundError:
    raw_dirs = []
archived_meetings = {meeting(r) for r, e in rec.items()
                     if any(k.startswith("archived.") for k in e["marks"])}
for d in raw_dirs:
    if d not in archived_meetings and os.path.isdir(os.path.join(RAW, d)):
        entry(d)["marks"].add("raw")
        touched(d, os.stat(os.path.join(RAW, d)).st_mtime)

# Redis: jobs, and which step each queued or worked-on job is for.
jobs = None
hints = {}
if REDIS_FILE:
    jobs = 0
    STEP_OF = {"ArchiveWorker": "archive", "SanityWorker": "sanity",
               "CaptionsWorker": "captions", "ProcessWorker": "process",
               "PublishWorker": "publish"}

    def hint(payload):
        try:
            job = json.loads(payload)
            cls = str(job.get("class", "")).rsplit(":", 1)[-1]
            args = job.get("args") or [{}]
            arg = args[0] if isinstance(args[0], dict) else {}
            record = str(arg.get("meeting_id", ""))
            if arg.get("break_timestamp"):
                record += "-" + str(arg["break_timestamp"])
        except (ValueError, AttributeError, TypeError):
            return
        if cls in STEP_OF and re.fullmatch(RECORD, record):
            hints.setdefault(record, set()).add(STEP_OF[cls])

    redis_now = None

    def dead(beat):
        """Whether a worker's last heartbeat is older than Resque's own prune interval
        (Worker::PRUNE_INTERVAL, 5 minutes; it beats every minute). No heartbeat: alive (a
        Resque before heartbeats, or a worker just started)."""
        if beat == "-" or redis_now is None:
            return False
        try:
            at = datetime.datetime.fromisoformat(beat.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return False
        return redis_now - at > 300

    with open(REDIS_FILE, encoding="utf-8", errors="replace") as f:
        for line in f:
            kind, _, rest = line.rstrip("\n").partition(" ")
            if kind == "now":
                redis_now = int(rest)
            elif kind == "queue":
                jobs += int(rest.split(" ")[1])
            elif kind == "job":
                hint(rest.partition(" ")[2])
            elif kind == "working":
                beat, _, rest = rest.partition(" ")
                if dead(beat):
                    continue  # a worker killed hard: its entry stays, its job is gone
                try:
                    working = json.loads(rest)
                except ValueError:
                    continue
                if isinstance(working, dict) and str(working.get("queue", "")).startswith("rap:"):
                    jobs += 1
                    hint(json.dumps(working.get("payload") or {}))

ORDER = ["queued", "archive", "sanity", "captions", "process", "publish", "transfer"]
now = time.time()
pending, failed_unsaved, failed_saved = [], [], []
for record in sorted(rec):
    e = rec[record]
    marks = e["marks"]
    if "archived.norecord" in marks:
        continue  # no recording marks: the chain ends here (archive_worker.rb)
    failed = None
    if "archived.fail" in marks:
        failed = "archive"
    elif "sanity.fail" in marks:
        failed = "sanity"
    elif any("fail" in k for k in e["processed"].values()):
        failed = "process"
    elif any("fail" in k for k in e["published"].values()):
        failed = "publish"
    state = None
    if failed is None:
        if "recorded.done" in marks:
            state = "queued"
        elif "raw" in marks:
            state = "archive"
        elif "archived.done" not in marks:
            continue  # markers of a later step only: nothing BBB still does
        elif "sanity.done" not in marks:
            state = "sanity"
        else:
            processed = {f for f, k in e["processed"].items() if "done" in k}
            unpublished = {f for f in processed if "done" not in e["published"].get(f, set())}
            steps = hints.get(record, set())
            if not processed or "process" in steps or "captions" in steps:
                state = "captions" if "captions" in steps and not processed else "process"
            elif unpublished:
                state = "publish"
            elif TRANSFER == "scalelite":
                last = e.get("last_published") or 0
                if e["sender"] is not None and e["sender"] >= last:
                    continue  # copied to the spool: safe
                if now - last > GRACE and "publish" not in steps:
                    # (A publish job still at work on it may still be copying it.)
                    failed = "transfer"
                else:
                    state = "transfer"
            else:
                continue  # published: final where no transfer follows
    # Stalled: in a step, yet Redis holds no job at all (none queued, none at work) and
    # nothing of it changed for STALL_GRACE. Each step is queued by the one before, from
    # inside its job (base_worker.rb schedule_next_step), and rap-starter queues only
    # recorded/*.done: nothing will ever take it up again (a worker killed mid-job; a
    # single server's replacement finding its predecessor's half-processed recordings on
    # the data volume it took over, without their Redis queue).
    if (failed is None and state in ("archive", "sanity", "captions", "process", "publish")
            and jobs == 0 and now - e["newest"] > STALL):
        failed = state + ", stalled: no job left for it"
    if failed is not None:
        saved = None
        try:
            with open(os.path.join(SAVED, record), encoding="utf-8") as f:
                saved = f.read().strip() or None
        except FileNotFoundError:
            pass
        if saved and not saved.startswith(OWN):
            saved = None
        if saved:
            failed_saved.append({"id": record, "state": "failed", "saved": saved})
        else:
            failed_unsaved.append({"id": record, "state": "failed", "step": failed})
    else:
        pending.append({"id": record, "state": state})

if MODE == "failed":
    for item in failed_unsaved:
        print(item["id"], meeting(item["id"]), item["step"])
    sys.exit(0)

pending.sort(key=lambda i: (ORDER.index(i["state"]), i["id"]))
items = [i for i in pending + failed_unsaved + failed_saved if LISTED.fullmatch(i["id"])]
items = [{k: v for k, v in i.items() if k != "step"} for i in items][:ITEMS]
print(json.dumps({
    "pending": len(pending) + len(failed_unsaved),
    # Redis did not answer: at least one, as far as anyone can tell (never a false 0).
    "jobs": 1 if jobs is None else jobs,
    "failed": len(failed_saved),
    "items": items,
}, separators=(",", ":")))
PYTHON
}

# save_failed RECORD STEP RAW_NAME: the raw files of a failed recording to
# s3://REPORT_BUCKET/failed/<role id>:<instance id>/<record id>.tar, streamed (no copy on
# the disk), then remembered in SAVED_DIR so it is put once. 0: saved; 1: the attempt
# failed; 2: not tried (a failed attempt less than SAVE_RETRY_SECONDS ago).
save_failed() {
  local record=$1 step=$2 raw=$3 key size tried last
  # shellcheck disable=SC2310 # session_user logs why
  session_user || return 1
  key="failed/${SESSION_USER}/${record}.tar"
  # A failed attempt (a large archive, a refused upload) is tried again after
  # SAVE_RETRY_SECONDS, not every round: each attempt reads all of the raw files again.
  mkdir -p -- "${SAVED_DIR}"
  tried="${SAVED_DIR}/${record}.tried"
  if last=$(stat -c %Y -- "${tried}" 2>/dev/null) && ((EPOCHSECONDS - last < SAVE_RETRY_SECONDS)); then
    return 2
  fi
  touch -- "${tried}"
  if [[ -d "${RAW_DIR}/${raw}" ]]; then
    size=$(du -sb -- "${RAW_DIR}/${raw}") || size=0
    size=${size%%[[:space:]]*}
    # --expected-size: the CLI picks part sizes for a stream from it (streams past 50 GB).
    # shellcheck disable=SC2312 # pipefail: a failing tar fails the pipeline
    if ! tar -C "${RAW_DIR}" -cf - -- "${raw}" |
      aws s3 cp - "s3://${REPORT_BUCKET}/${key}" --expected-size "${size}" --only-show-errors; then
      log "recording ${record} failed (${step}); saving its raw files as s3://${REPORT_BUCKET}/${key} failed, trying again later"
      return 1
    fi
  else
    # Nothing of it on this disk (the archive step failed before it kept anything): an
    # empty archive says so where the failed recordings are listed.
    # shellcheck disable=SC2312 # pipefail: a failing tar fails the pipeline
    if ! tar -cf - --files-from /dev/null |
      aws s3 cp - "s3://${REPORT_BUCKET}/${key}" --only-show-errors; then
      log "recording ${record} failed (${step}); could not write s3://${REPORT_BUCKET}/${key}, trying again later"
      return 1
    fi
    log "recording ${record} failed (${step}) and has no raw files in ${RAW_DIR}/${raw}: saved an empty archive"
  fi
  printf '%s\n' "${key}" >"${SAVED_DIR}/${record}.new" && mv -f "${SAVED_DIR}/${record}.new" "${SAVED_DIR}/${record}"
  rm -f -- "${tried}"
  log "recording ${record} failed (${step}): raw files saved as s3://${REPORT_BUCKET}/${key}"
}

# report_body FILE: the report, as JSON, into FILE; fails while bbb-web has no secret yet or
# the status directory is missing (the report is not written: it grows old, and its readers
# take its recordings as unknown). Runs in the agent's own shell (not a subshell): what it
# learns of Redis and of the role session lasts from one round to the next.
report_body() {
  local out=$1 salt snapshot redis_file="" failed recordings_json
  boot_status
  # bbb-web's own defaults, then its overrides (the last one set wins, as bbb-web reads them).
  salt=$({ cat -- "${BBB_DEFAULT_PROPERTIES}" "${BBB_PROPERTIES}" 2>/dev/null || true; } |
    sed -n 's/^securitySalt=//p' | tail -n 1)
  if [[ -n "${BOOT_JSON}" && "${BOOT_STATE}" != ready && ( -z "${salt}" || ! -d "${STATUS_DIR}" ) ]]; then
    # Installing (or failed before BigBlueButton was there): the boot is all there is to say.
    BOOT=${BOOT_JSON} python3 -c '
import json, os
print(json.dumps({"boot": json.loads(os.environ["BOOT"])}))' >"${out}"
    return 0
  fi
  if [[ -z "${salt}" ]]; then
    log "no securitySalt in ${BBB_PROPERTIES} yet"
    return 1
  fi
  if [[ ! -d "${STATUS_DIR}" ]]; then
    log "no recording status directory ${STATUS_DIR}: recordings unknown, report not written"
    return 1
  fi
  # Whose saved recordings are this server's own (failed/<role id>:<instance id>/).
  # shellcheck disable=SC2310 # session_user logs why; the report needs it anyway
  session_user || return 1
  snapshot=$(mktemp)
  # shellcheck disable=SC2310 # a Redis that does not answer is a state of its own
  if redis_snapshot "${snapshot}" 2>/dev/null; then
    redis_file=${snapshot}
    [[ "${REDIS_STATE}" != down ]] || log "Redis at ${REDIS_HOST}:${REDIS_PORT} answers again"
    REDIS_STATE=up
  elif [[ "${REDIS_STATE}" != down ]]; then
    log "Redis at ${REDIS_HOST}:${REDIS_PORT} does not answer (redis-cli failed): Resque jobs unknown, reported as 1 (at least one) until it does"
    REDIS_STATE=down
  fi
  # shellcheck disable=SC2310 # a failure of python is this round's failure
  if ! failed=$(recordings failed "${redis_file}"); then
    rm -f "${snapshot}"
    log "could not read the recordings' state"
    return 1
  fi
  FAILED_LIST=${failed}
  # shellcheck disable=SC2310 # a failure of python is this round's failure
  if ! recordings_json=$(recordings report "${redis_file}"); then
    rm -f "${snapshot}"
    log "could not read the recordings' state"
    return 1
  fi
  rm -f "${snapshot}"
  SALT=${salt} RECORDINGS=${recordings_json} BOOT=${BOOT_JSON} python3 -c '
import json, os
report = {"secret": os.environ["SALT"], "recordings": json.loads(os.environ["RECORDINGS"])}
if os.environ["BOOT"]:
    report["boot"] = json.loads(os.environ["BOOT"])
print(json.dumps(report))' >"${out}"
}

# save_one_failed: after the report, the raw files of one failed recording not yet saved
# (of FAILED_LIST, as report_body found them), at most one upload a round: an upload of a
# long recording takes a while, and the report is written before it, never held up by it
# (the recording counts as pending until a later report says it is saved).
save_one_failed() {
  local record raw step rc
  while read -r -u 3 record raw step; do
    [[ -n "${record}" ]] || continue
    rc=0
    # shellcheck disable=SC2310 # not saved: still pending, tried again later
    save_failed "${record}" "${step}" "${raw}" || rc=$?
    # 2: not tried (its last attempt failed less than SAVE_RETRY_SECONDS ago): the next one.
    [[ "${rc}" -eq 2 ]] || break
  done 3<<<"${FAILED_LIST}"
}

# report: one round: the report (write_report), then one failed recording saved; 0 when the
# deployment has this server's current report.
report() {
  # shellcheck disable=SC2310 # write_report logs why; a failed round is tried again
  write_report || return 1
  save_one_failed
}

# write_report: one attempt; 0 when the deployment has this server's current report, written
# at most REFRESH_SECONDS ago.
write_report() {
  local digest key file written age
  file=$(mktemp)
  # shellcheck disable=SC2310 # report_body checks its own steps; no salt yet is a retry
  if ! report_body "${file}"; then
    rm -f "${file}"
    return 1
  fi
  digest=$(sha256sum <"${file}")
  digest=${digest%% *}
  if [[ "$(cat "${STATE_FILE}" 2>/dev/null || true)" == "${digest}" ]]; then
    written=$(stat -c %Y -- "${STATE_FILE}") || written=0
    age=$(($(date +%s) - written))
    if [[ "${age}" -lt "${REFRESH_SECONDS}" ]]; then
      rm -f "${file}"
      return 0
    fi
  fi
  # shellcheck disable=SC2310 # session_user logs why
  if ! session_user; then
    rm -f "${file}"
    return 1
  fi
  key="servers/${SESSION_USER}.json"
  if ! aws s3api put-object --bucket "${REPORT_BUCKET}" --key "${key}" --body "${file}" \
    --content-type application/json >/dev/null; then
    rm -f "${file}"
    log "could not write the report s3://${REPORT_BUCKET}/${key}"
    return 1
  fi
  rm -f "${file}"
  printf '%s\n' "${digest}" >"${STATE_FILE}.new" && mv -f "${STATE_FILE}.new" "${STATE_FILE}"
  log "report written (s3://${REPORT_BUCKET}/${key})"
}

watch() {
  local pause written due seen slept step
  # At start the report is written whatever was written before (the registrar deletes
  # the reports of servers it drained or found gone).
  rm -f "${STATE_FILE}"
  while :; do
    # shellcheck disable=SC2310 # a failed attempt is retried next round
    report || log "report not written; trying again in ${REPORT_SECONDS} s"
    pause=${REPORT_SECONDS}
    # The refresh comes on time even when REPORT_SECONDS is longer than the rest of it.
    if written=$(stat -c %Y -- "${STATE_FILE}" 2>/dev/null); then
      due=$((written + REFRESH_SECONDS - $(date +%s)))
      [[ "${due}" -ge "${pause}" ]] || pause=$((due > 1 ? due : 1))
    fi
    # Meanwhile a change of the boot's state or of the lifecycle is reported at once: the
    # registrar lets a new server in on it (within seconds, by S3's event).
    seen=${BOOT_SEEN} slept=0
    while [[ "${slept}" -lt "${pause}" ]]; do
      step=$((pause - slept < BOOT_POLL_SECONDS ? pause - slept : BOOT_POLL_SECONDS))
      sleep "${step}"
      slept=$((slept + step))
      boot_status
      if [[ "${BOOT_SEEN}" != "${seen}" ]]; then
        log "boot now ${BOOT_SEEN:-unknown}: reporting at once"
        break
      fi
    done
  done
}

case "${1:-}" in
  report) report ;;
  watch) watch ;;
  *)
    echo "usage: bbb-agent report|watch" >&2
    exit 2
    ;;
esac
