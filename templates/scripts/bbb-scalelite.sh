#!/usr/bin/env bash
# bbb-scalelite: this BigBlueButton server in Scalelite's servers API.
#
#   register  add this server to Scalelite (or find it again) and enable it; retried
#             until Scalelite answers (bbb-scalelite.service, ExecStart)
#   cordon    no new meetings on this server; running ones go on (ExecStop: shutdown)
#   watch     wait until the Auto Scaling group terminates this server, then drain
#   drain     cordon; wait until no meeting runs here by this server's own getMeetings and
#             Scalelite's poller has disabled the server (it does so when a cordoned
#             server's load is 0) - or, while Scalelite reports it offline or does not
#             answer, by this server's own account alone; remove the
#             server from Scalelite and its bbb-<id> record from Route 53; complete the
#             group's bbb-drain lifecycle action so the instance may go
#   protect   hold the Auto Scaling group's scale-in protection while a meeting runs on
#             this server and drop it when it is idle (bbb-scalelite-protect.service), so
#             that whatever scales the group in - a schedule, the console, a policy - picks
#             idle servers; the lifecycle-hook drain stays the safety net
#   dns-register  UPSERT this server's bbb-<id> record with its current public address
#             (bbb-dns.service, ExecStart: at every boot). A stop/start's new address
#             reaches DNS, but not BigBlueButton's media settings (FreeSWITCH, mediasoup,
#             coturn keep the address bbb-install wrote): a scalable server is not meant to
#             be stopped and started - Auto Scaling replaces a stopped instance anyway.
#   dns-delete    DELETE that record (bbb-dns.service, ExecStop: at every shutdown, so
#             the name goes with the server however it ends - a drain, a failed
#             bootstrap's rollback, or the stack's deletion, which removes the drain's
#             lifecycle hook before the group and so terminates without a drain)
#
# Installed by bbb-bootstrap.sh as /usr/local/sbin/bbb-scalelite; settings come from
# /etc/default/bbb-scalelite (BBB_SCALELITE_CONFIG names another file). Needs the AWS
# CLI, curl, python3 and sha256sum.
#
# Scalelite facts used here (blindsidenetworks/scalelite):
# - config/routes.rb: GET getServers, getServerInfo?id=; POST addServer,
#   updateServer, deleteServer under /scalelite/api/.
# - app/controllers/concerns/api_helper.rb (verify_checksum): checksum = hex SHA-1,
#   SHA-256 or SHA-512 of actionName + query string without the checksum + the
#   load-balancer secret; the JSON body is not part of it. A failed check answers
#   HTTP 200 with an XML <returncode>FAILED</returncode> (application_controller.rb).
# - app/controllers/api/scalelite_api_controller.rb: POST bodies must be JSON.
# - app/controllers/api/servers_controller.rb: getServers answers 404 with
#   {"error":"No servers are configured"} when empty; an unknown id answers 404;
#   addServer answers 201 with the new server, disabled.
# - lib/tasks/poll.rake: the poller sets a cordoned server with load 0 to disabled; after
#   consecutive failed polls it sets a server offline, forgets its meetings and tries to
#   end them (which fails too when the network is what failed).
#
# shellcheck disable=SC2310 # Functions here run as conditions on purpose (until/if/||) and check every step themselves; none relies on set -e.
set -euo pipefail

readonly CONFIG=${BBB_SCALELITE_CONFIG:-/etc/default/bbb-scalelite}
# shellcheck source=/dev/null
. "${CONFIG}"
: "${SCALELITE_URL:?missing in ${CONFIG}}" "${SERVER_URL:?missing in ${CONFIG}}"
: "${LB_SECRET_ARN:?missing in ${CONFIG}}" "${STATE_FILE:?missing in ${CONFIG}}"
: "${HOSTED_ZONE:?missing in ${CONFIG}}" "${HOST_NAME:?missing in ${CONFIG}}"
BBB_PROPERTIES=${BBB_PROPERTIES:-/etc/bigbluebutton/bbb-web.properties}
IMDS=${IMDS:-http://169.254.169.254/latest}
DNS_TTL=${DNS_TTL:-60}
RETRY_SECONDS=${RETRY_SECONDS:-30}
POLL_SECONDS=${POLL_SECONDS:-30}
# A drain asks Scalelite this many times (RETRY_SECONDS apart) before it goes on by this
# server's own account alone (Scalelite, or the way to it, may be down for good).
SCALELITE_ATTEMPTS=${SCALELITE_ATTEMPTS:-20}
BBB_API_URL=${BBB_API_URL:-https://${HOST_NAME}/bigbluebutton/api}
export AWS_DEFAULT_REGION

log() { printf 'bbb-scalelite: %s\n' "$*" >&2; }

# ---- helpers -------------------------------------------------------------------
# json EXPR: evaluates the Python expression EXPR on the JSON document d from stdin.
json() {
  python3 -c "import json, os, sys; d = json.load(sys.stdin); print($1)"
}
# json_object PYTHON_DICT: prints a JSON document built from os.environ values.
json_object() {
  python3 -c "import json, os; print(json.dumps($1))"
}

SECRET=""
# Reads the load-balancer secret into SECRET; fails (and may be retried) if it cannot.
load_secret() {
  local value
  if ! value=$(aws secretsmanager get-secret-value --secret-id "${LB_SECRET_ARN}" \
    --query SecretString --output text); then
    log "could not read the load-balancer secret ${LB_SECRET_ARN}"
    return 1
  fi
  if [[ -z "${value}" ]]; then
    log "the load-balancer secret ${LB_SECRET_ARN} is empty"
    return 1
  fi
  SECRET=${value}
}

bbb_secret() {
  local salt
  salt=$(sed -n 's/^securitySalt=//p' "${BBB_PROPERTIES}" 2>/dev/null | tail -n 1)
  if [[ -z "${salt}" ]]; then
    log "no securitySalt in ${BBB_PROPERTIES}"
    return 1
  fi
  printf '%s\n' "${salt}"
}

imds() {
  local token
  token=$(curl -fsS --max-time 5 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 60" "${IMDS}/api/token") ||
    return 1
  curl -fsS --max-time 5 -H "X-aws-ec2-metadata-token: ${token}" "${IMDS}/meta-data/$1"
}

# api ACTION QUERY [JSON]: calls Scalelite; prints the JSON answer. Exit status 0 on
# success, 2 when Scalelite answers 404 in JSON (no such server / no servers at all),
# 1 on anything else (unreachable, error page, checksum or other API error).
api() {
  local action=$1 query=$2 body=${3:-} sum url status answer
  local -a request=(curl -sS --max-time 30)
  sum=$(printf '%s%s%s' "${action}" "${query}" "${SECRET}" | sha256sum) || return 1
  sum=${sum%% *}
  url="${SCALELITE_URL}/scalelite/api/${action}?${query:+${query}&}checksum=${sum}"
  if [[ -n "${body}" ]]; then
    request+=(-X POST -H 'Content-Type: application/json' --data "${body}")
  fi
  answer=$(mktemp) || return 1
  if ! status=$("${request[@]}" -o "${answer}" -w '%{http_code}' "${url}"); then
    log "${action}: Scalelite at ${SCALELITE_URL} did not answer"
    rm -f "${answer}"
    return 1
  fi
  if ! python3 -c 'import json, sys; json.load(sys.stdin)' <"${answer}" 2>/dev/null; then
    log "${action}: HTTP ${status}, not a JSON answer: $(head -c 300 "${answer}" | tr '\n' ' ' || true)"
    rm -f "${answer}"
    return 1
  fi
  case "${status}" in
    2??) cat "${answer}" ;;
    404)
      rm -f "${answer}"
      return 2
      ;;
    *)
      log "${action}: HTTP ${status}: $(head -c 300 "${answer}" | tr '\n' ' ' || true)"
      rm -f "${answer}"
      return 1
      ;;
  esac
  rm -f "${answer}"
}

# Prints the id Scalelite has for SERVER_URL, nothing if none; fails if Scalelite
# cannot tell.
find_by_url() {
  local list rc=0
  list=$(api getServers "") || rc=$?
  case "${rc}" in
    0) ;;
    2) return 0 ;; # "No servers are configured"
    *) return 1 ;;
  esac
  SERVER_URL=${SERVER_URL} json \
    'next((s["id"] for s in d if s.get("url") == os.environ["SERVER_URL"]), "")' <<<"${list}"
}

# Prints the id of this server in Scalelite: the stored one if Scalelite still knows
# it, else the one Scalelite has for this URL, else nothing. Fails if Scalelite
# cannot tell.
known_id() {
  local id="" rc=0
  if [[ -s "${STATE_FILE}" ]]; then
    id=$(<"${STATE_FILE}")
    api getServerInfo "id=${id}" >/dev/null || rc=$?
    case "${rc}" in
      0)
        printf '%s\n' "${id}"
        return 0
        ;;
      2) log "Scalelite no longer knows server ${id}" ;;
      *) return 1 ;;
    esac
  fi
  id=$(find_by_url) || return 1
  # Found under another id (added again): that id is this server's from now on.
  if [[ -n "${id}" ]] && [[ "${id}" != "$(cat "${STATE_FILE}" 2>/dev/null || true)" ]]; then
    store_id "${id}" || return 1
  fi
  printf '%s\n' "${id}"
}

store_id() {
  printf '%s\n' "$1" >"${STATE_FILE}.new" || return 1
  mv -f "${STATE_FILE}.new" "${STATE_FILE}"
}

# ---- register --------------------------------------------------------------------
# One attempt: every step checks its own result (this runs as an until condition).
register_once() {
  local salt id body answer
  load_secret || return 1
  salt=$(bbb_secret) || return 1
  id=$(known_id) || return 1
  if [[ -z "${id}" ]]; then
    body=$(SERVER_URL=${SERVER_URL} SALT=${salt} json_object \
      '{"server": {"url": os.environ["SERVER_URL"], "secret": os.environ["SALT"]}}')
    answer=$(api addServer "" "${body}") || return 1
    id=$(json 'd.get("id") or ""' <<<"${answer}") || return 1
    if [[ -z "${id}" ]]; then
      log "addServer answered without a server id: ${answer}"
      return 1
    fi
    log "added to Scalelite as ${id} (${SERVER_URL})"
  fi
  store_id "${id}" || return 1
  body=$(ID=${id} SALT=${salt} json_object \
    '{"id": os.environ["ID"], "server": {"state": "enable", "secret": os.environ["SALT"]}}')
  api updateServer "" "${body}" >/dev/null || return 1
  log "enabled in Scalelite as ${id} (${SERVER_URL})"
}

register() {
  until register_once; do
    log "registration not done yet; retrying in ${RETRY_SECONDS} s"
    sleep "${RETRY_SECONDS}"
  done
}

# ---- cordon ----------------------------------------------------------------------
# cordon_once ID: 0 when cordoned, 2 when Scalelite does not know ID, 1 otherwise.
cordon_once() {
  local body
  body=$(ID=$1 json_object '{"id": os.environ["ID"], "server": {"state": "cordon"}}')
  api updateServer "" "${body}" >/dev/null
}

cordon() {
  local id rc=0
  load_secret || return 1
  id=$(known_id) || return 1
  if [[ -z "${id}" ]]; then
    log "not registered in Scalelite: nothing to cordon"
    return 0
  fi
  cordon_once "${id}" || rc=$?
  [[ "${rc}" -ne 1 ]] || return 1
  log "cordoned in Scalelite (${id}): no new meetings, running ones go on"
}

# ---- drain -----------------------------------------------------------------------
# Prints this server's id in Scalelite, or nothing when Scalelite does not know it; asks up
# to SCALELITE_ATTEMPTS times, then prints the id stored at registration (if any): the
# drain then goes on by this server's own account.
wait_for_id() {
  local id attempt
  for attempt in $(seq 1 "${SCALELITE_ATTEMPTS}"); do
    if id=$(known_id); then
      printf '%s\n' "${id}"
      return 0
    fi
    log "Scalelite not reachable (attempt ${attempt}/${SCALELITE_ATTEMPTS}); retrying in ${RETRY_SECONDS} s"
    sleep "${RETRY_SECONDS}"
  done
  log "Scalelite did not answer: draining by this server's own account of its meetings"
  if [[ -s "${STATE_FILE}" ]]; then
    cat "${STATE_FILE}"
  fi
}

# drained ID: true once this server has no meeting by its own account (meetings_here: its
# own getMeetings lists none) and Scalelite sends it none either: Scalelite has disabled it
# (its poller does that when the cordoned server's load is 0) or forgot it. While Scalelite
# reports it offline or does not answer, the server's own empty list suffices: the poller
# marks a server offline after failed polls and forgets its meetings (lib/tasks/poll.rake),
# but when those polls failed because of the network the meetings still run here. Never
# drained while this server's own API does not answer (not knowing is no reason to go).
drained() {
  local info rc=0 state meetings
  if ! meetings=$(meetings_here); then
    log "this server's API did not answer; not drained"
    return 1
  fi
  if [[ "${meetings}" -gt 0 ]]; then
    log "${meetings} meeting(s) still run here"
    return 1
  fi
  # Not in Scalelite (or its id never learned): this server's own account is all there is.
  [[ -n "$1" ]] || return 0
  info=$(api getServerInfo "id=$1") || rc=$?
  case "${rc}" in
    0) ;;
    2) return 0 ;;
    *)
      log "Scalelite did not answer; no meeting runs here: drained"
      return 0
      ;;
  esac
  state=$(json 'd.get("state", "") + " " + d.get("online", "")' <<<"${info}") || return 1
  log "Scalelite reports $1: ${state}; no meeting runs here"
  case "${state}" in
    "disabled "* | *" offline") return 0 ;;
    *) return 1 ;;
  esac
}

# change_dns_record ACTION: ACTION (UPSERT or DELETE) the A record HOST_NAME -> this
# server's public address, with DNS_TTL (a DELETE must name the record's exact values).
change_dns_record() {
  local action=$1 ip batch
  if ! ip=$(imds public-ipv4); then
    log "no public address in the instance metadata: record ${HOST_NAME} not changed"
    return 1
  fi
  batch=$(ACTION=${action} NAME=${HOST_NAME} IP=${ip} TTL=${DNS_TTL} json_object \
    '{"Comment": "bbbctl: " + os.environ["ACTION"].lower(), "Changes": [{"Action": os.environ["ACTION"], "ResourceRecordSet": {"Name": os.environ["NAME"], "Type": "A", "TTL": int(os.environ["TTL"]), "ResourceRecords": [{"Value": os.environ["IP"]}]}}]}')
  if ! aws route53 change-resource-record-sets --hosted-zone-id "${HOSTED_ZONE}" \
    --change-batch "${batch}" >/dev/null; then
    log "could not ${action} the record ${HOST_NAME} -> ${ip}"
    return 1
  fi
  log "${action}: record ${HOST_NAME} -> ${ip}"
}

dns_register() {
  local attempt
  for attempt in 1 2 3 4 5; do
    change_dns_record UPSERT && return 0
    log "record not registered yet (attempt ${attempt})"
    sleep "${RETRY_SECONDS}"
  done
  return 1
}

drain() {
  local id body rc instance group attempt
  until load_secret; do
    sleep "${RETRY_SECONDS}"
  done
  id=$(wait_for_id)
  if [[ -n "${id}" ]]; then
    for attempt in $(seq 1 "${SCALELITE_ATTEMPTS}"); do
      rc=0
      cordon_once "${id}" || rc=$?
      [[ "${rc}" -eq 1 ]] || break
      sleep "${RETRY_SECONDS}"
    done
    if [[ "${rc}" -eq 1 ]]; then
      log "could not cordon ${id} in Scalelite; waiting for this server's meetings to end"
    else
      log "cordoned ${id}; waiting for its meetings to end"
    fi
    until drained "${id}"; do
      sleep "${POLL_SECONDS}"
    done
    body=$(ID=${id} json_object '{"id": os.environ["ID"]}')
    # Scalelite may be what does not answer (drained by this server's own account): a
    # few attempts, then the entry is left - Scalelite shows it offline once this
    # server is gone, and sends it no meeting.
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
      rc=0
      api deleteServer "" "${body}" >/dev/null || rc=$?
      [[ "${rc}" -eq 1 ]] || break
      sleep "${RETRY_SECONDS}"
    done
    if [[ "${rc}" -eq 1 ]]; then
      log "could not remove ${id} from Scalelite; its entry is left (offline once this server is gone)"
    else
      rm -f "${STATE_FILE}"
      log "removed ${id} from Scalelite"
    fi
  else
    log "not registered in Scalelite: waiting only for meetings this server lists itself"
    until drained ""; do
      sleep "${POLL_SECONDS}"
    done
  fi
  change_dns_record DELETE || true
  instance=$(imds instance-id)
  group=$(imds tags/instance/aws:autoscaling:groupName)
  for attempt in 1 2 3 4 5; do
    if aws autoscaling complete-lifecycle-action --lifecycle-hook-name bbb-drain \
      --auto-scaling-group-name "${group}" --instance-id "${instance}" \
      --lifecycle-action-result CONTINUE; then
      log "drained; the Auto Scaling group may terminate this server now"
      return 0
    fi
    log "complete-lifecycle-action failed (attempt ${attempt})"
    sleep "${RETRY_SECONDS}"
  done
  return 1
}

# ---- scale-in protection ---------------------------------------------------------
# meetings_here: how many meetings this server's own API lists (getMeetings, signed with its
# securitySalt); fails when the API does not answer.
meetings_here() {
  local salt sum answer
  salt=$(bbb_secret) || return 1
  sum=$(printf 'getMeetings%s' "${salt}" | sha256sum) || return 1
  sum=${sum%% *}
  answer=$(curl -sS --max-time 10 "${BBB_API_URL}/getMeetings?checksum=${sum}") || return 1
  grep -q '<returncode>SUCCESS</returncode>' <<<"${answer}" || return 1
  # grep finds nothing (status 1) when there is no meeting: that is 0, not a failure.
  { grep -o '<meeting>' <<<"${answer}" || true; } | wc -l
}

# Scalelite keeps its servers in its cache (Redis, not persisted by ElastiCache): a cache
# node replaced or failed comes back empty, and Scalelite places no meeting anywhere. A
# server that registered before (its id stored) and still serves (InService) registers
# again when Scalelite answers that it does not know it. Not while the group takes it out
# (its target state is then Terminated) or before its first registration. Only after two
# rounds in a row that found it unknown, with the target state read again last: bbbctl
# deletes a server it terminates from Scalelite at once, and the instance metadata may
# still say InService for a moment.
FORGOTTEN_ROUNDS=0
reregister_if_forgotten() {
  local id state
  [[ -s "${STATE_FILE}" ]] || return 0
  state=$(imds autoscaling/target-lifecycle-state) || return 1
  [[ "${state}" == InService ]] || { FORGOTTEN_ROUNDS=0; return 0; }
  if [[ -z "${SECRET}" ]]; then
    load_secret || return 1
  fi
  id=$(known_id) || return 1
  if [[ -n "${id}" ]]; then
    FORGOTTEN_ROUNDS=0
    return 0
  fi
  FORGOTTEN_ROUNDS=$((FORGOTTEN_ROUNDS + 1))
  [[ "${FORGOTTEN_ROUNDS}" -ge 2 ]] || return 0
  state=$(imds autoscaling/target-lifecycle-state) || return 1
  [[ "${state}" == InService ]] || { FORGOTTEN_ROUNDS=0; return 0; }
  log "Scalelite does not know this server any more (its cache lost it?): registering again"
  FORGOTTEN_ROUNDS=0
  register_once
}

# protect: every POLL_SECONDS, scale-in protection on while a meeting runs here, off when
# none does; unchanged while the API does not answer (not knowing is no reason to drop it).
# Each round also registers the server again should Scalelite have forgotten it.
protect() {
  local instance group meetings want held=""
  until instance=$(imds instance-id) && group=$(imds tags/instance/aws:autoscaling:groupName); do
    sleep "${RETRY_SECONDS}"
  done
  while :; do
    if meetings=$(meetings_here); then
      want=--no-protected-from-scale-in
      if [[ "${meetings}" -gt 0 ]]; then
        want=--protected-from-scale-in
      fi
      if [[ "${want}" != "${held}" ]]; then
        if aws autoscaling set-instance-protection --instance-ids "${instance}" \
          --auto-scaling-group-name "${group}" "${want}"; then
          held=${want}
          log "${meetings} meeting(s): ${want#--}"
        else
          log "set-instance-protection ${want} failed; retrying"
        fi
      fi
    else
      log "this server's API did not answer; scale-in protection left as it is"
    fi
    reregister_if_forgotten || log "whether Scalelite still knows this server could not be told; asking again next round"
    sleep "${POLL_SECONDS}"
  done
}

watch() {
  local state
  while :; do
    state=$(imds autoscaling/target-lifecycle-state) || state=""
    [[ "${state}" != Terminated ]] || break
    sleep "${POLL_SECONDS}"
  done
  log "the Auto Scaling group is terminating this server: draining"
  drain
}

case "${1:-}" in
  register) register ;;
  cordon)
    cordon || log "could not cordon (shutdown goes on)"
    ;;
  watch) watch ;;
  drain) drain ;;
  protect) protect ;;
  dns-register) dns_register ;;
  dns-delete)
    change_dns_record DELETE || log "record ${HOST_NAME} not deleted (already gone?)"
    ;;
  *)
    echo "usage: bbb-scalelite register|cordon|watch|drain|protect|dns-register|dns-delete" >&2
    exit 2
    ;;
esac
