#!/usr/bin/env bash
# bbb-logship: copy a BigBlueButton server's bootstrap log to CloudWatch Logs, so that a
# failed bootstrap can be read without SSH (and after the instance is gone).
#
#   follow  ship new complete lines every POLL_SECONDS until stopped
#           (bbb-logship.service, started by bbb-bootstrap.sh before anything else)
#   flush   ship everything new now, a last line without its newline too
#           (bbb-bootstrap.sh, before it signals CloudFormation and on the way out)
#
# Installed by the user data as /usr/local/sbin/bbb-logship; settings come from
# /etc/default/bbb-logship (BBB_LOGSHIP_CONFIG names another file):
#   LOG_GROUP   the stack's log group (bbb-servers.yaml, BootstrapLogGroup)
#   LOG_STREAM  this server's stream (its instance id)
#   LOG_FILE    the file to ship
#   STATE_DIR   where the shipped byte offset is kept (shipping resumes there)
# Needs the AWS CLI, python3 and flock; the instance role allows logs:CreateLogStream
# and logs:PutLogEvents on the log group.
#
# CloudWatch Logs facts used here (PutLogEvents API reference): at most 10,000 events
# and 1,048,576 bytes per call, counted as the UTF-8 size of each message plus 26
# bytes; events in a call in chronological order; sequence tokens are no longer needed.
# A line is shipped at least once: the offset moves only after CloudWatch accepted it.
#
# shellcheck disable=SC2310 # Functions here run as conditions on purpose (until/if/||) and check every step themselves; none relies on set -e.
set -euo pipefail

readonly CONFIG=${BBB_LOGSHIP_CONFIG:-/etc/default/bbb-logship}
# The settings are read as data, NAME=VALUE a line, never run: no value in the file is
# ever evaluated by a shell (issue 25). Only the names below are taken.
LOG_GROUP="" LOG_STREAM="" LOG_FILE="" STATE_DIR=""
while IFS='=' read -r name value; do
  case "${name}" in
    AWS_DEFAULT_REGION | LOG_GROUP | LOG_STREAM | LOG_FILE | STATE_DIR | POLL_SECONDS | MAX_EVENTS | MAX_BYTES)
      printf -v "${name}" '%s' "${value}" ;;
    *) ;;
  esac
done <"${CONFIG}"
: "${LOG_GROUP:?missing in ${CONFIG}}" "${LOG_STREAM:?missing in ${CONFIG}}"
: "${LOG_FILE:?missing in ${CONFIG}}" "${STATE_DIR:?missing in ${CONFIG}}"
POLL_SECONDS=${POLL_SECONDS:-15}
# Well below the API's limits, so that one call never carries too much.
MAX_EVENTS=${MAX_EVENTS:-5000}
MAX_BYTES=${MAX_BYTES:-524288}
export AWS_DEFAULT_REGION

readonly OFFSET_FILE="${STATE_DIR}/logship-offset"
readonly STREAM_MARK="${STATE_DIR}/logship-stream"
readonly LOCK_FILE="${STATE_DIR}/logship.lock"

log() { printf 'bbb-logship: %s\n' "$*" >&2; }

ensure_stream() {
  local err
  [[ -e "${STREAM_MARK}" ]] && return 0
  if ! err=$(aws logs create-log-stream --log-group-name "${LOG_GROUP}" \
    --log-stream-name "${LOG_STREAM}" 2>&1); then
    if [[ "${err}" != *ResourceAlreadyExistsException* ]]; then
      log "could not create log stream ${LOG_GROUP}/${LOG_STREAM}: ${err}"
      return 1
    fi
  fi
  touch "${STREAM_MARK}"
}

# batches FROM ALL: writes the batches of events from byte FROM of LOG_FILE into
# STATE_DIR/logship-batch-N.json and prints "N END" for each (END: the byte offset after
# the batch). ALL=1 ships a last line without its newline too.
batches() {
  FROM=$1 ALL=$2 LOG_FILE=${LOG_FILE} STATE_DIR=${STATE_DIR} \
    MAX_EVENTS=${MAX_EVENTS} MAX_BYTES=${MAX_BYTES} python3 -c '
import json, os, time
start = int(os.environ["FROM"])
with open(os.environ["LOG_FILE"], "rb") as f:
    f.seek(start)
    data = f.read()
if os.environ["ALL"] != "1":
    cut = data.rfind(b"\n") + 1
    data = data[:cut]
now = int(time.time() * 1000)
max_events, max_bytes = int(os.environ["MAX_EVENTS"]), int(os.environ["MAX_BYTES"])
events, size, offset, n = [], 0, start, 0
def flush():
    global events, size, n
    if events:
        n += 1
        with open(os.path.join(os.environ["STATE_DIR"], "logship-batch-%d.json" % n), "w") as out:
            json.dump(events, out)
        print(n, offset)
        events, size = [], 0
for raw in data.splitlines(keepends=True):
    # CloudWatch refuses empty messages; a single message stays far below its limit.
    text = raw.rstrip(b"\r\n").decode("utf-8", "replace")[:65536] or " "
    cost = len(text.encode("utf-8")) + 26
    if len(events) >= max_events or size + cost > max_bytes:
        flush()
    events.append({"timestamp": now, "message": text})
    size += cost
    offset += len(raw)
flush()
'
}

# Ships what is new once; fails (nothing lost, the offset stays) if CloudWatch refuses.
ship() {
  local all=$1 offset size list n end
  offset=$(cat "${OFFSET_FILE}" 2>/dev/null || echo 0)
  [[ -e "${LOG_FILE}" ]] || return 0
  size=$(stat -c %s "${LOG_FILE}") || return 1
  if [[ "${size}" -lt "${offset}" ]]; then
    log "${LOG_FILE} is shorter than what was shipped: shipping it from the start"
    offset=0
  fi
  [[ "${size}" -gt "${offset}" ]] || return 0
  ensure_stream || return 1
  rm -f "${STATE_DIR}"/logship-batch-*.json
  if ! list=$(batches "${offset}" "${all}"); then
    log "could not read ${LOG_FILE} from byte ${offset}"
    return 1
  fi
  while read -r n end; do
    [[ -n "${n}" ]] || continue
    if ! aws logs put-log-events --log-group-name "${LOG_GROUP}" --log-stream-name "${LOG_STREAM}" \
      --log-events "file://${STATE_DIR}/logship-batch-${n}.json" >/dev/null; then
      log "put-log-events to ${LOG_GROUP}/${LOG_STREAM} failed; retrying from byte ${offset}"
      return 1
    fi
    offset=${end}
    printf '%s\n' "${offset}" >"${OFFSET_FILE}.new" || return 1
    mv -f "${OFFSET_FILE}.new" "${OFFSET_FILE}" || return 1
  done <<<"${list}"
  rm -f "${STATE_DIR}"/logship-batch-*.json
}

# One shipment at a time: the service and the bootstrap's flush share the offset.
locked_ship() {
  local rc=0
  exec 9>>"${LOCK_FILE}"
  flock -w 120 9 || return 1
  ship "$1" || rc=$?
  flock -u 9
  return "${rc}"
}

case "${1:-}" in
  follow)
    while :; do
      locked_ship 0 || true
      sleep "${POLL_SECONDS}"
    done
    ;;
  flush) locked_ship 1 ;;
  *)
    echo "usage: bbb-logship follow|flush" >&2
    exit 2
    ;;
esac
