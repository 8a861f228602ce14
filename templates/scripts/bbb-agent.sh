#!/usr/bin/env bash
# bbb-agent: what only this BigBlueButton server knows, told to its deployment's registrar.
#
#   report  write this server's report - its own API secret (securitySalt of
#           bbb-web.properties) - to s3://REPORT_BUCKET/servers/<role id>:<instance id>.json,
#           unless the same report was written before (STATE_FILE holds its digest)
#   watch   report at start, then again whenever the report changes (every
#           REPORT_SECONDS; bbb-agent.service), e.g. after bbb-conf --setsecret
#
# The server holds no other key to the platform: the registrar (templates/scripts/
# bbb_registrar.py, a Lambda function of the servers stack) reads the report, checks the
# secret against this server's own API, and adds the server to Scalelite, holds its
# scale-in protection and drains it. The object key is this instance role session's
# aws:userid (<role id>:<instance id>, as sts get-caller-identity says it): the role may
# write servers/${aws:userid}.json and nothing else there, so no server can report for
# another.
#
# Installed by bbb-bootstrap.sh as /usr/local/sbin/bbb-agent. Settings are read line by line
# from /etc/default/bbb-agent (BBB_AGENT_CONFIG names another file), never sourced. Needs
# the AWS CLI, python3 and sha256sum.
set -euo pipefail

readonly CONFIG=${BBB_AGENT_CONFIG:-/etc/default/bbb-agent}
AWS_DEFAULT_REGION="" REPORT_BUCKET="" STATE_FILE="" BBB_PROPERTIES="" REPORT_SECONDS=""
while IFS='=' read -r key value; do
  case "${key}" in
    AWS_DEFAULT_REGION | REPORT_BUCKET | STATE_FILE | BBB_PROPERTIES | REPORT_SECONDS)
      printf -v "${key}" '%s' "${value}"
      ;;
    '' | '#'*) ;;
    *) printf 'bbb-agent: unknown setting %s in %s ignored\n' "${key}" "${CONFIG}" >&2 ;;
  esac
done <"${CONFIG}"
: "${AWS_DEFAULT_REGION:?missing in ${CONFIG}}" "${REPORT_BUCKET:?missing in ${CONFIG}}"
: "${STATE_FILE:?missing in ${CONFIG}}"
BBB_PROPERTIES=${BBB_PROPERTIES:-/etc/bigbluebutton/bbb-web.properties}
REPORT_SECONDS=${REPORT_SECONDS:-60}
export AWS_DEFAULT_REGION

log() { printf 'bbb-agent: %s\n' "$*" >&2; }

# The report, as JSON on stdout; fails while bbb-web has no secret yet.
report_body() {
  local salt
  salt=$(sed -n 's/^securitySalt=//p' "${BBB_PROPERTIES}" 2>/dev/null | tail -n 1)
  if [[ -z "${salt}" ]]; then
    log "no securitySalt in ${BBB_PROPERTIES} yet"
    return 1
  fi
  SALT=${salt} python3 -c 'import json, os; print(json.dumps({"secret": os.environ["SALT"]}))'
}

# report: one attempt; 0 when the registrar has this server's current report.
report() {
  local body digest user key file
  # shellcheck disable=SC2310 # report_body checks its own steps; no salt yet is a retry
  body=$(report_body) || return 1
  digest=$(printf '%s' "${body}" | sha256sum)
  digest=${digest%% *}
  if [[ "$(cat "${STATE_FILE}" 2>/dev/null || true)" == "${digest}" ]]; then
    return 0
  fi
  if ! user=$(aws sts get-caller-identity --query UserId --output text); then
    log "could not tell this instance's role session (sts get-caller-identity)"
    return 1
  fi
  if [[ ! "${user}" =~ ^[A-Z0-9]+:i-[0-9a-f]+$ ]]; then
    log "unexpected role session ${user}: not an instance profile's"
    return 1
  fi
  key="servers/${user}.json"
  file=$(mktemp)
  printf '%s' "${body}" >"${file}"
  if ! aws s3api put-object --bucket "${REPORT_BUCKET}" --key "${key}" --body "${file}" \
    --content-type application/json >/dev/null; then
    rm -f "${file}"
    log "could not write the report s3://${REPORT_BUCKET}/${key}"
    return 1
  fi
  rm -f "${file}"
  printf '%s\n' "${digest}" >"${STATE_FILE}.new" && mv -f "${STATE_FILE}.new" "${STATE_FILE}"
  log "reported this server's API secret to the registrar (s3://${REPORT_BUCKET}/${key})"
}

watch() {
  # At start the report is written whatever was written before (the registrar deletes
  # the reports of servers it drained or found gone).
  rm -f "${STATE_FILE}"
  while :; do
    # shellcheck disable=SC2310 # a failed attempt is retried next round
    report || log "report not written; trying again in ${REPORT_SECONDS} s"
    sleep "${REPORT_SECONDS}"
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
