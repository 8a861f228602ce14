#!/usr/bin/env bash
# bbb-bootstrap.sh: turn a fresh Ubuntu 22.04 instance into a BigBlueButton server.
#
# Run once, as root, from the launch template's user data (bbb-servers.yaml):
#   0. starts bbb-logship.service, which copies this script's log to CloudWatch Logs
#      (the stack's BootstrapLogGroup, stream = instance id; bbb-logship, templates/
#      scripts/bbb-logship.sh, put in /usr/local/sbin by the user data); before it
#      signals, the log is flushed there, so a failure can be read without SSH,
#   1. formats (first boot) and mounts the data volume at /var/bigbluebutton; in single
#      mode with a VPC of bbbctl's the volume is the stack's own (--data-volume), which
#      this server attaches once its predecessor let go of it, and Greenlight's folder
#      and /etc/letsencrypt live on it too: a replaced server finds the recordings,
#      Greenlight's database and uploads and the certificate again,
#   2. scalable mode: waits for no DNS record (it orders no certificate; the registrar,
#      templates/scripts/bbb_registrar.py, writes bbb-<instance id>.media.<domain> and adds
#      the server to Scalelite once its API answers); single mode: associates the deployment's Elastic IP with this instance and waits
#      the same way for <domain>, a record of the root stack on that address (root.yaml,
#      DomainRecord), so destroy and a mode switch remove it,
#   3. waits until apt is free (first boot runs apt-daily / unattended-upgrades; their
#      timers are off for the install) and installs BigBlueButton with the pinned
#      bbb-install script (by commit; its sha256 is checked before it runs); single mode:
#      it also gets the Let's Encrypt certificate; scalable mode: -d, on a self-signed
#      placeholder in /local/certs, and bbb-identity (bbb-identity.sh, put in /usr/local/sbin
#      by the user data) gives the server its name, addresses, secrets and the fleet's
#      certificate (--cert-secret) before anything is checked; without -c it sets up coturn (TURN) on this
#      host too, reached through haproxy on 443; single mode: Greenlight's image is
#      pinned in the compose file bbb-install runs; then verifies the result (package
#      state, the services BigBlueButton runs, its API over HTTPS) before anything
#      registers or signals,
#   4. scalable mode: mounts the recordings spool on EFS (amazon-efs-utils: TLS + IAM,
#      through the spool access point) and installs Scalelite's post-publish hook; both
#      modes: installs bbb-agent.service (templates/scripts/bbb-agent.sh, put in
#      /usr/local/sbin by the user data), which reports what only this server knows - its
#      own API secret and the state of its recordings (pending, Resque jobs, failed ones,
#      whose raw files it saves below failed/ in the bucket) - to its own object in the
#      report bucket (--report-bucket, the sources bucket). Scalable mode: the registrar,
#      not this server, adds the server to Scalelite once its API answers with that
#      secret, holds its scale-in protection while it is busy, and drains and removes it
#      when the group terminates it: no BBB server holds the load-balancer secret. Single
#      mode: bbbctl reads the report before it replaces or destroys the server,
#   5. single mode: sets up Greenlight's mail through Amazon SES (SMTP login from its
#      secret, the password derived as AWS documents) and creates the Greenlight
#      administrator from the login secret,
#   6. signals the Auto Scaling group's CreationPolicy. Single mode: SUCCESS, or FAILURE on
#      any error (the stack follows its one server). Scalable mode: SUCCESS once the
#      bootstrap has ended, ready or not, so one broken server cannot roll the platform
#      back (Aurora, EFS, the front end); a server that failed stays out of Scalelite
#      (registration is the last step) and bbbctl names it from its FAILED line.
#
# Scalable mode has three first-boot paths (choose_path): bare (above), bake (a builder of
# `bbbctl bake`, told by its instance tag bbbctl:role=bbb-builder: the install without an
# identity, then bake_clean, /etc/bbbctl/baked.json, a last line BAKED, power-off; no
# signal) and baked (an image whose baked.json holds this script's pins: no install, only
# bbb-identity --first-boot, the checks, the spool and the agent). Every step logs
# `STEP <name> <seconds>s`, the end `BOOT <path> <seconds>s`; /run/bbbctl/boot holds
# "<booting|ready|failed> <boot start> <path>" for the agent; /etc/bbbctl/server.env the
# server's settings for bbb-identity and the agent.
#
# Every run ends with one of these lines, the last of this log and of its CloudWatch Logs
# stream (bbbctl reads it there):
#   <UTC time> bbb-bootstrap: READY https://<host name>
#   <UTC time> bbb-bootstrap: FAILED <reason, one line>
#
# Needs: the AWS CLI, curl, openssl and python3, and an instance role allowing
# route53:GetHostedZone (single mode; dig, from bind9-dnsutils, is installed if missing),
# ec2:AssociateAddress/DescribeAddresses (single mode), cloudformation:SignalResource,
# secretsmanager:GetSecretValue (single mode: admin login and SMTP login),
# elasticfilesystem:ClientMount/ClientWrite (scalable mode) and s3:PutObject on its own
# report and below its own failed/ prefix (both modes; bbb-agent).
set -euo pipefail

# ---- pinned versions -------------------------------------------------------------
# BigBlueButton 3.0 on Ubuntu 22.04 (jammy). The installer is fetched by commit, not by
# branch, and must match its sha256 before it runs: a branch that moves must not change
# what a new server installs (a floating branch broke installs in late 2025).
# Commit: head of bigbluebutton/bbb-install's v3.0.x-release branch in the snapshot read
# for this pin (2024-02-23, "Merge pull request #732"); sha256 of its bbb-install.sh.
# To move the pin: take a newer commit C of that branch, set BBB_INSTALL_COMMIT=C and
# BBB_INSTALL_SHA256 to the output of
#   curl -fsSL https://raw.githubusercontent.com/bigbluebutton/bbb-install/C/bbb-install.sh | sha256sum
# (or `git show C:bbb-install.sh | sha256sum` in a clone), then read what the new installer
# does with -g (the Greenlight pin below relies on it writing docker-compose.yml only when
# missing) and which services it sets up (verify_bigbluebutton).
readonly BBB_VERSION="jammy-300"
readonly BBB_INSTALL_COMMIT="26ce2d16c2a82ef962d685525b0c20bb89d4d151"
readonly BBB_INSTALL_SHA256="9654ba2c4470b7e4a986c1bbf98544c7b3bf509314f1e8b217c7ef8e029186c2"
readonly BBB_INSTALL_URL="https://raw.githubusercontent.com/bigbluebutton/bbb-install/${BBB_INSTALL_COMMIT}/bbb-install.sh"
# amazon-efs-utils (mount helper with TLS and IAM), built as root into a .deb from release
# v1.36.0, the last one that needs no Rust toolchain to build. Fetched by commit, not by
# tag (a tag can be moved), and the checkout must be that commit before anything of it
# runs: git names a commit by the hash of its whole tree, so the check covers every file.
# To move the pin: EFS_UTILS_COMMIT=$(git rev-parse vX^{commit}) in a clone of aws/efs-utils.
readonly EFS_UTILS_RELEASE="v1.36.0"
readonly EFS_UTILS_COMMIT="c87d19f3e1db26532f09a7fed338347aacb90e10"
# Scalelite's post-publish hook, from the Scalelite release whose images the front end
# runs (BBBScaleliteImageTag's default; bigbluebutton/scalelite_post_publish.rb is the
# same file from v1.6.11 to v1.8.5), fetched by that release's commit (v1.8.5^{commit}),
# not by its tag.
readonly SCALELITE_REF="v1.8.5"
readonly SCALELITE_COMMIT="7498a81dc813efcb5116143c64d23493292f7b57"
readonly SCALELITE_HOOK_URL="https://raw.githubusercontent.com/blindsidenetworks/scalelite/${SCALELITE_COMMIT}/bigbluebutton/scalelite_post_publish.rb"
# sha256 of that file at SCALELITE_COMMIT (`git show ${SCALELITE_COMMIT}:bigbluebutton/
# scalelite_post_publish.rb | sha256sum`): it runs as the recording worker on every recording.
readonly SCALELITE_HOOK_SHA256="29f8980e917e83b3d432d9ab4521407abb48bc6ca7055b888ea56eea6e031616"
# Single mode's Greenlight: bbb-install -g runs whatever bigbluebutton/greenlight:v3 (a
# floating tag) is that day, from ~/greenlight-v3/docker-compose.yml, which it writes only
# when the file is missing. This script puts Greenlight's own compose file of the release
# there first (checked by sha256) with the image pinned: the release the front end runs in
# scalable mode (frontend.yaml GreenlightImageTag, root.yaml BBBGreenlightImageTag).
# To move the pin: set GREENLIGHT_IMAGE_TAG=vX (the image tag the release tag release-X
# is pushed as), GREENLIGHT_REF=release-X and GREENLIGHT_COMPOSE_SHA256 to the output of
#   curl -fsSL https://raw.githubusercontent.com/bigbluebutton/greenlight/release-X/docker-compose.yml | sha256sum
# A replaced server finds the file on the data volume and gets its image line re-pinned.
readonly GREENLIGHT_IMAGE_TAG="v3.8.2.4"
readonly GREENLIGHT_REF="release-3.8.2.4"
readonly GREENLIGHT_COMPOSE_SHA256="b55a1d550d0494c81ecd6aa37ecf597e3a4507a10f44e5c79734b3308f7dffb5"
readonly GREENLIGHT_COMPOSE_URL="https://raw.githubusercontent.com/bigbluebutton/greenlight/${GREENLIGHT_REF}/docker-compose.yml"

readonly DATA_DIR=/var/bigbluebutton
readonly SPOOL_DIR=/mnt/scalelite-recordings/var/bigbluebutton/spool
readonly SPOOL_GID=2000  # group scalelite-spool; owner of the spool access point's files

readonly AGENT=/usr/local/sbin/bbb-agent
readonly LOG_SHIPPER=/usr/local/sbin/bbb-logship

# First boot: how long to wait for apt-daily / unattended-upgrades to let go of apt.
readonly APT_WAIT_SECONDS=1200
readonly APT_LOCK_CONF=/etc/apt/apt.conf.d/90bbbctl-lock-timeout
# Scalable mode: after this many seconds a server still bootstrapping tells its group it
# will not hold the platform up (signal_deadline; the group waits PT60M).
readonly SIGNAL_DEADLINE=3000
# After the install: how often (10 s apart) to look for the services and the API.
readonly VERIFY_ATTEMPTS=30
# The services BigBlueButton 3.0 runs, as `bbb-conf --status` lists them (bigbluebutton-config/
# bin/bbb-conf, display_bigbluebutton_status): always these, plus haproxy and coturn, which
# bbb-install sets up without -c ...
readonly BBB_UNITS="nginx haproxy coturn freeswitch redis-server bbb-apps-akka bbb-fsesl-akka bbb-web bbb-webrtc-sfu"
# ... and these when their unit is installed (bbb-conf --status checks their unit files).
readonly BBB_UNITS_IF_INSTALLED="bbb-graphql-server bbb-graphql-middleware bbb-graphql-actions bbb-webrtc-recorder etherpad bbb-pads bbb-export-annotations bbb-rap-resque-worker bbb-rap-starter"

readonly LOG_FILE=/var/log/bbb-bootstrap.log
readonly STATE_DIR=/var/lib/bbb-bootstrap
readonly IMDS=http://169.254.169.254/latest

# ---- boot paths (scalable mode; docs: contract of issue 27, sections 3 and 4) -------
# bare: a bare Ubuntu image, the full install; bake: a builder (`bbbctl bake`), the full
# install without an identity, then cleaned and powered off for an image; baked: the first
# boot of such an image, only what is this server's own. Single mode is always bare.
# A builder is told by its instance tag BUILDER_TAG=BUILDER_ROLE, read from the instance
# metadata: bbbctl sets it when it launches the builder (with tags in the metadata on, for
# that instance only), and the group's servers carry bbbctl:role=bbb-server (propagated
# by the group), which no server can change (its role may not tag).
readonly BUILDER_TAG="bbbctl:role"
readonly BUILDER_ROLE="bbb-builder"
readonly IDENTITY=/usr/local/sbin/bbb-identity
ETC_DIR=/etc/bbbctl
BOOT_STATE=/run/bbbctl/boot
UPTIME_FILE=/proc/uptime
# What bbb-install takes as "your certificate" (-d: it links /etc/letsencrypt/live/<host>/
# {fullchain,privkey}.pem to these). Scalable servers install with a self-signed placeholder
# there; bbb-identity puts the fleet certificate in its place before anything is verified.
CERT_DIR=/local/certs
# A builder's name: none of its own. .invalid never resolves and no public CA certifies it.
readonly PLACEHOLDER_HOST="bbb-baked.invalid"
# The file system prefix of what bake_clean cleans ("" on a server; tests point it elsewhere).
ROOT=""

usage() {
  cat >&2 <<'EOF'
usage: bbb-bootstrap.sh --region R --stack-name S --resource LOGICAL_ID --mode scalable|single
                        --domain D --hosted-zone Z --email E --report-bucket BUCKET
                        [--admin-secret ARN]
                        (or --domain-b64, --hosted-zone-b64, --email-b64: the value
                        base64-encoded, as the user data passes them)
                        [--smtp-secret ARN] [--data-volume VOLUME_ID]
                        [--address-allocation EIPALLOC_ID] [--log-group NAME]
                        [--efs FS_ID --spool-access-point FSAP_ID]
                        [--cert-secret ARN] (scalable: the fleet certificate's secret)
EOF
  exit 2
}

# shellcheck disable=SC2312 # date with a fixed format does not fail in a way worth stopping for
log() { printf '%s bbb-bootstrap: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }
# The reason the FAILED line gives: die's message, else the command that failed (ERR trap).
FAILURE_REASON=""
FAILED_COMMAND=""
die() {
  FAILURE_REASON=$*
  log "ERROR: $*"
  exit 1
}
# install_unit NAME: the systemd unit NAME.service from standard input, enabled and started.
install_unit() {
  write_unit "$1"
  systemctl enable --now "$1.service"
}
# write_unit NAME: the unit NAME.service from standard input, known to systemd, not enabled.
write_unit() {
  cat >"${ROOT}/etc/systemd/system/$1.service"
  systemctl daemon-reload
}
# from_base64 NAME VALUE: NAME set to VALUE decoded, byte for byte (a trailing newline too,
# which check_arguments then refuses). The user data passes the operator's values so
# (bbb-servers.yaml): they reach this script as data, never as shell text. VALUE not
# base64: NAME stays empty and NOT_BASE64 names it, for check_arguments to refuse.
NOT_BASE64=""
from_base64() {
  local decoded
  if [[ "$2" =~ ^[A-Za-z0-9+/]*={0,2}$ ]] && decoded=$(printf '%s' "$2" | base64 -d && printf x); then
    printf -v "$1" '%s' "${decoded%x}"
  else
    NOT_BASE64+=" $1"
  fi
}

REGION="" STACK_NAME="" RESOURCE="" MODE="" DOMAIN="" HOSTED_ZONE="" EMAIL="" ADMIN_SECRET=""
SMTP_SECRET="" DATA_VOLUME="" EFS_ID="" SPOOL_AP="" REPORT_BUCKET="" ALLOCATION_ID="" LOG_GROUP=""
CERT_SECRET=""
while [[ $# -gt 0 ]]; do
  [[ $# -ge 2 ]] || usage
  case "$1" in
    --region) REGION=$2 ;;
    --stack-name) STACK_NAME=$2 ;;
    --resource) RESOURCE=$2 ;;
    --mode) MODE=$2 ;;
    --domain) DOMAIN=$2 ;;
    --hosted-zone) HOSTED_ZONE=$2 ;;
    --email) EMAIL=$2 ;;
    --domain-b64) from_base64 DOMAIN "$2" ;;
    --hosted-zone-b64) from_base64 HOSTED_ZONE "$2" ;;
    --email-b64) from_base64 EMAIL "$2" ;;
    --admin-secret) ADMIN_SECRET=$2 ;;
    --smtp-secret) SMTP_SECRET=$2 ;;
    --data-volume) DATA_VOLUME=$2 ;;
    --efs) EFS_ID=$2 ;;
    --spool-access-point) SPOOL_AP=$2 ;;
    --report-bucket) REPORT_BUCKET=$2 ;;
    --address-allocation) ALLOCATION_ID=$2 ;;
    --log-group) LOG_GROUP=$2 ;;
    --cert-secret) CERT_SECRET=$2 ;;
    *) usage ;;
  esac
  shift 2
done
# check_arguments: every value checked before it is used, once on_exit (below) is there to
# end the run with a FAILED line and a signal: a refused value must not leave the stack
# waiting out its timeout.
check_arguments() {
  local required
  [[ -z "${NOT_BASE64}" ]] || die "not base64:${NOT_BASE64}"
  for required in REGION STACK_NAME RESOURCE MODE DOMAIN HOSTED_ZONE EMAIL; do
    [[ -n "${!required}" ]] || usage
  done
  # Both modes: bbb-agent reports to its own object in this bucket (the sources bucket).
  [[ -n "${REPORT_BUCKET}" ]] || die "--report-bucket is missing (bbb-agent reports there, in both modes)"
  [[ "${REPORT_BUCKET}" =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || die "invalid bucket name: ${REPORT_BUCKET@Q}"
  case "${MODE}" in
    scalable)
      if [[ -z "${EFS_ID}" ]] || [[ -z "${SPOOL_AP}" ]]; then
        die "scalable mode needs --efs and --spool-access-point"
      fi
      [[ "${EFS_ID}" =~ ^fs-[0-9a-f]+$ ]] || die "invalid file system id: ${EFS_ID}"
      [[ "${SPOOL_AP}" =~ ^fsap-[0-9a-f]+$ ]] || die "invalid access point id: ${SPOOL_AP}"
      [[ -n "${CERT_SECRET}" ]] || die "scalable mode needs --cert-secret (the fleet certificate's secret)"
      [[ "${CERT_SECRET}" =~ ^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+$ ]] ||
        die "invalid certificate secret ARN: ${CERT_SECRET@Q}"
      ;;
    single)
      if [[ -z "${ADMIN_SECRET}" ]] || [[ -z "${SMTP_SECRET}" ]] || [[ -z "${ALLOCATION_ID}" ]]; then
        die "single mode needs --admin-secret, --smtp-secret and --address-allocation"
      fi
      [[ "${ALLOCATION_ID}" =~ ^eipalloc-[0-9a-f]+$ ]] || die "invalid Elastic IP allocation id: ${ALLOCATION_ID}"
      ;;
    *) usage ;;
  esac
  [[ "${DOMAIN}" =~ ^[a-z0-9.-]+$ ]] || die "invalid domain: ${DOMAIN@Q}"
  [[ -z "${DATA_VOLUME}" ]] || [[ "${DATA_VOLUME}" =~ ^vol-[0-9a-f]+$ ]] || die "invalid volume id: ${DATA_VOLUME}"
  [[ "${HOSTED_ZONE}" =~ ^[A-Z0-9]+$ ]] || die "invalid hosted zone: ${HOSTED_ZONE@Q}"
  # The templates' pattern (bbb-servers.yaml OperatorEMail): it goes to bbb-install and certbot.
  [[ "${EMAIL}" =~ ^[a-z0-9_.+-]+@([a-z0-9-]+\.)+[a-z]+$ ]] || die "invalid e-mail address: ${EMAIL@Q}"
}

mkdir -p "${STATE_DIR}"
# shellcheck disable=SC2312 # a process substitution has no status to check; tee failing loses only the copy
exec > >(tee -a "${LOG_FILE}") 2>&1
export DEBIAN_FRONTEND=noninteractive AWS_DEFAULT_REGION="${REGION}"

# ---- instance metadata (IMDSv2) --------------------------------------------------
imds() {
  local token
  token=$(curl -fsS -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 300" "${IMDS}/api/token")
  curl -fsS -H "X-aws-ec2-metadata-token: ${token}" "${IMDS}/meta-data/$1"
}

INSTANCE_ID=$(imds instance-id)
readonly INSTANCE_ID

# ---- 0. the log to CloudWatch Logs ------------------------------------------------
SHIPPING=false
start_log_shipping() {
  if [[ -z "${LOG_GROUP}" ]] || [[ ! -x "${LOG_SHIPPER}" ]]; then
    log "no log group or no ${LOG_SHIPPER}: this log stays on the instance"
    return 0
  fi
  # CloudWatch Logs' alphabet for group names; bbb-logship reads its settings as data.
  if [[ ! "${LOG_GROUP}" =~ ^[A-Za-z0-9._/#-]+$ ]]; then
    log "log group ${LOG_GROUP@Q} is not a CloudWatch Logs group name: this log stays on the instance"
    return 0
  fi
  cat >/etc/default/bbb-logship <<EOF
AWS_DEFAULT_REGION=${REGION}
LOG_GROUP=${LOG_GROUP}
LOG_STREAM=${INSTANCE_ID}
LOG_FILE=${LOG_FILE}
STATE_DIR=${STATE_DIR}
EOF
  install_unit bbb-logship <<'EOF'
[Unit]
Description=Copy the BigBlueButton bootstrap log to CloudWatch Logs
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/local/sbin/bbb-logship follow
Restart=always
RestartSec=15

[Install]
WantedBy=multi-user.target
EOF
  SHIPPING=true
  log "shipping this log to CloudWatch Logs: group ${LOG_GROUP}, stream ${INSTANCE_ID}"
}
# Ships what the log holds now (before a signal: a failed server is terminated soon after).
flush_log() {
  [[ "${SHIPPING}" = true ]] || return 0
  sleep 1 # let tee write out the last lines
  "${LOG_SHIPPER}" flush || log "could not ship the log to CloudWatch Logs (${LOG_GROUP})"
}

# ---- CloudFormation signal ---------------------------------------------------------
# Single mode: SUCCESS or FAILURE, the truth about the one server. Scalable mode: SUCCESS
# when the bootstrap has ended, whatever its outcome (bbb-servers.yaml, ServerGroup): the
# group's creation and rolling updates wait for every server to finish, but a broken one
# does not fail them. A server launched later (scale-out) finds the group complete: its
# signal is refused, which only its log says.
signal() {
  aws cloudformation signal-resource --stack-name "${STACK_NAME}" --logical-resource-id "${RESOURCE}" \
    --unique-id "${INSTANCE_ID}" --status "$1"
}
# signal_deadline: scalable mode. The group's creation, or a rolling update, waits PT60M
# for each server's signal (bbb-servers.yaml); a bootstrap still running then (a slow
# mirror, a long apt lock, a slow DNS change) would roll the whole platform back. So a
# watchdog tells the group after SIGNAL_DEADLINE seconds that this server will not hold it
# up; the bootstrap goes on, and its READY or FAILED line says how it ended (CloudFormation
# counts one signal per server). The run's end stops the watchdog.
WATCHDOG=""
signal_deadline() {
  [[ "${MODE}" != single ]] || return 0
  # A builder is no server of the group: it never signals.
  [[ "${BOOT_PATH}" != bake ]] || return 0
  local up
  # The group's wait counts from the launch, not from this script (the user data ran first).
  up=$(cut -d. -f1 /proc/uptime 2>/dev/null) || up=0
  [[ "${up}" =~ ^[0-9]+$ ]] || up=0
  (
    sleep "$((SIGNAL_DEADLINE > up ? SIGNAL_DEADLINE - up : 0))"
    log "still running ${SIGNAL_DEADLINE} s after launch: the group is told this server will not hold up the platform"
    # shellcheck disable=SC2310 # a refused signal changes nothing here (see signal)
    signal SUCCESS || echo "bbb-bootstrap: the group took no signal (it is not being created or updated)" >&2
  ) &
  WATCHDOG=$!
}
stop_watchdog() {
  if [[ -n "${WATCHDOG}" ]]; then
    kill "${WATCHDOG}" 2>/dev/null || true
    WATCHDOG=""
  fi
}
# The run's last line, READY or FAILED, is written once.
FINISHED=false
on_exit() {
  local rc=$? reason
  if [[ "${rc}" -eq 0 ]] || [[ "${FINISHED}" = true ]]; then
    return 0
  fi
  FINISHED=true
  stop_watchdog
  reason=${FAILURE_REASON:-exit code ${rc}${FAILED_COMMAND:+ at ${FAILED_COMMAND}}}
  log "failed with exit code ${rc} (details in ${LOG_FILE}; CloudWatch Logs group ${LOG_GROUP:-(none)}, stream ${INSTANCE_ID})"
  if [[ "${MODE}" = single ]]; then
    log "signalling FAILURE to ${STACK_NAME}/${RESOURCE}"
  fi
  log "FAILED ${reason//$'\n'/ }"
  # shellcheck disable=SC2310 # a state not written changes nothing of the FAILED line
  boot_state failed || true
  # Shipped before the signal: a failed single server is terminated soon after it.
  flush_log
  # shellcheck disable=SC2310 # its failure is handled right here
  if [[ "${BOOT_PATH}" = bake ]]; then
    : # a builder is no server of the group: bbbctl bake reads its FAILED line
  elif [[ "${MODE}" = single ]]; then
    signal FAILURE || echo "bbb-bootstrap: could not signal FAILURE" >&2
  else
    signal SUCCESS || echo "bbb-bootstrap: the group took no signal (it is not being created or updated)" >&2
  fi
}
# The command that made the script stop (set -e), for the FAILED line; -E: in functions too.
set -E
trap 'FAILED_COMMAND="line ${LINENO}: ${BASH_COMMAND}"' ERR
trap on_exit EXIT

# ---- timed steps, the boot state, the path -------------------------------------------
# tenths NANOSECONDS: seconds with one decimal (rounded).
tenths() {
  local t=$((($1 + 50000000) / 100000000))
  printf '%d.%d' "$((t / 10))" "$((t % 10))"
}
# step NAME COMMAND...: runs COMMAND and logs `STEP NAME <seconds>s` when it succeeded (a
# failed step ends the run with its FAILED line instead).
step() {
  local name=$1 start end
  shift
  local took
  start=$(date +%s%N)
  "$@"
  end=$(date +%s%N)
  took=$(tenths "$((end - start))")
  log "STEP ${name} ${took}s"
}
# This boot's start (epoch seconds) and its age (seconds, one decimal), from the kernel's uptime.
BOOT_STARTED=0
uptime_seconds() {
  local up
  read -r up _ <"${UPTIME_FILE}" || up=0
  [[ "${up}" =~ ^[0-9]+(\.[0-9]+)?$ ]] || up=0
  printf '%s' "${up}"
}
boot_started() {
  local up now
  up=$(uptime_seconds)
  now=$(date +%s)
  BOOT_STARTED=$((now - ${up%.*}))
}
# boot_state STATE: /run/bbbctl/boot for the agent, one line "<state> <boot start> <path>"
# (tmpfs: per boot); written whole (rename), never half.
boot_state() {
  mkdir -p "${BOOT_STATE%/*}"
  printf '%s %s %s\n' "$1" "${BOOT_STARTED}" "${BOOT_PATH}" >"${BOOT_STATE}.new"
  mv -f "${BOOT_STATE}.new" "${BOOT_STATE}"
}
# boot_total: the BOOT line, this boot's age at its end.
boot_total() {
  local up whole frac=0
  up=$(uptime_seconds)
  whole=${up%%.*}
  [[ "${up}" != *.* ]] || frac=${up#*.}
  frac=${frac:0:1}
  log "BOOT ${BOOT_PATH} ${whole}.${frac:-0}s"
}

# The pins a baked image must have been built with, as baked.json names them.
pins_json() {
  python3 -c 'import json, sys
print(json.dumps({"bbb_install_commit": sys.argv[1], "bbb_version": sys.argv[2],
                  "scalelite_commit": sys.argv[3], "efs_utils_commit": sys.argv[4]}, sort_keys=True))' \
    "${BBB_INSTALL_COMMIT}" "${BBB_VERSION}" "${SCALELITE_COMMIT}" "${EFS_UTILS_COMMIT}"
}
# baked_mismatch: nothing when ETC_DIR/baked.json holds this script's pins; else why not.
baked_mismatch() {
  local PINS
  PINS=$(pins_json)
  python3 -c 'import json, sys
want = json.loads(sys.argv[2])
try:
    with open(sys.argv[1]) as f:
        have = json.load(f)
except (OSError, ValueError) as e:
    print("unreadable (%s)" % e); sys.exit(0)
if not isinstance(have, dict):
    print("not an object"); sys.exit(0)
diff = ["%s %s, pinned %s" % (k, have.get(k, "(none)"), v) for k, v in sorted(want.items()) if have.get(k) != v]
print("; ".join(diff))' "${ETC_DIR}/baked.json" "${PINS}"
}
# choose_path: BOOT_PATH for this first boot (see "boot paths" above).
BOOT_PATH=bare
choose_path() {
  local role why
  BOOT_PATH=bare
  [[ "${MODE}" = scalable ]] || return 0
  # 404 (no such tag, or tags not in this instance's metadata): not a builder.
  # shellcheck disable=SC2310 # no tag is an answer here
  role=$(imds "tags/instance/${BUILDER_TAG}" 2>/dev/null || true)
  if [[ "${role}" = "${BUILDER_ROLE}" ]]; then
    [[ ! -e "${ETC_DIR}/baked.json" ]] ||
      die "this builder started from a baked image (${ETC_DIR}/baked.json): a builder starts from the bare Ubuntu image"
    BOOT_PATH=bake
    log "instance tag ${BUILDER_TAG}=${BUILDER_ROLE}: this is a builder (bake path)"
    return 0
  fi
  [[ -e "${ETC_DIR}/baked.json" ]] || return 0
  # shellcheck disable=SC2310 # a failed comparison is a mismatch, said as such
  why=$(baked_mismatch) || why="could not be read"
  if [[ -z "${why}" ]]; then
    BOOT_PATH=baked
    log "${ETC_DIR}/baked.json matches the pins: baked path (no install)"
  else
    log "${ETC_DIR}/baked.json does not match the pins (${why}): bare path, installing over the image"
  fi
}
# write_server_env: ETC_DIR/server.env (0600 root), KEY=value lines its readers take as
# data (bbb-identity, bbb-agent).
write_server_env() {
  local fleet=""
  [[ "${MODE}" != scalable ]] || fleet="media.${DOMAIN}"
  mkdir -p "${ETC_DIR}"
  (
    umask 077
    printf 'MODE=%s\nREGION=%s\nSTACK_NAME=%s\nDOMAIN=%s\nFLEET_DOMAIN=%s\nHOST_NAME=%s\nCERT_SECRET=%s\nREPORT_BUCKET=%s\nLOG_GROUP=%s\n' \
      "${MODE}" "${REGION}" "${STACK_NAME}" "${DOMAIN}" "${fleet}" "${HOST_NAME}" "${CERT_SECRET}" \
      "${REPORT_BUCKET}" "${LOG_GROUP}" >"${ETC_DIR}/server.env.new"
  )
  chmod 0600 "${ETC_DIR}/server.env.new"
  mv -f "${ETC_DIR}/server.env.new" "${ETC_DIR}/server.env"
}

start_log_shipping
check_arguments
boot_started
choose_path
boot_state booting
signal_deadline

# shellcheck disable=SC2310 # its failure is handled right here
PUBLIC_IP=$(imds public-ipv4) || die "this instance has no public IPv4 address"
LOCAL_IP=$(imds local-ipv4)
[[ "${PUBLIC_IP}" =~ ^[0-9]+(\.[0-9]+){3}$ ]] || die "unexpected public address: ${PUBLIC_IP}"

if [[ "${MODE}" = single ]]; then
  HOST_NAME="${DOMAIN}"
elif [[ "${BOOT_PATH}" = bake ]]; then
  HOST_NAME="${PLACEHOLDER_HOST}"
else
  HOST_NAME="bbb-${INSTANCE_ID#i-}.media.${DOMAIN}"
fi
write_server_env
log "instance ${INSTANCE_ID}: ${HOST_NAME} -> ${PUBLIC_IP} (private ${LOCAL_IP}), mode ${MODE}"

apt_install() {
  local attempt
  for attempt in 1 2 3 4 5; do
    if apt-get -o DPkg::Lock::Timeout=300 update -q &&
      apt-get -o DPkg::Lock::Timeout=300 install -yq "$@"; then
      return 0
    fi
    log "apt-get install $* failed (attempt ${attempt}), retrying"
    sleep 15
  done
  die "could not install $*"
}

# ---- 1. data volume -------------------------------------------------------------
# The launch template maps it as /dev/sdf: /dev/sdf or /dev/xvdf on Xen, an NVMe
# namespace (model "Amazon Elastic Block Store") that is not the root disk on Nitro.
find_data_volume() {
  local root_source root_disk name model partitions mounts
  for name in /dev/sdf /dev/xvdf; do
    if [[ -b "${name}" ]]; then
      readlink -f "${name}"
      return 0
    fi
  done
  root_source=$(findmnt -no SOURCE /) || return 1
  root_disk=$(lsblk -no PKNAME "${root_source}") || return 1
  # shellcheck disable=SC2312 # lsblk failing lists no candidate: the caller retries, then stops
  while read -r name model; do
    [[ "${name}" = "${root_disk}" ]] && continue
    [[ "${model}" == *"Elastic Block Store"* ]] || continue
    partitions=$(lsblk -no NAME "/dev/${name}" | wc -l) || continue
    mounts=$(lsblk -no MOUNTPOINT "/dev/${name}" | tr -d '[:space:]') || continue
    if [[ "${partitions}" -eq 1 ]] && [[ -z "${mounts}" ]]; then
      echo "/dev/${name}"
      return 0
    fi
  done < <(lsblk -dno NAME,MODEL)
  return 1
}
# attach_data_volume: attaches DATA_VOLUME (the stack's own, single mode) to this instance,
# waiting while the server it replaces still holds it (up to 20 minutes).
attach_data_volume() {
  local attempt answer state holder attachment
  for attempt in $(seq 1 120); do
    answer=$(aws ec2 describe-volumes --volume-ids "${DATA_VOLUME}" \
      --query 'Volumes[0].[State, Attachments[0].InstanceId, Attachments[0].State]' --output text) || answer=""
    read -r state holder attachment <<<"${answer}"
    if [[ "${holder}" = "${INSTANCE_ID}" ]] && [[ "${attachment}" = attached ]]; then
      log "data volume ${DATA_VOLUME} attached"
      return 0
    fi
    if [[ "${state}" = available ]]; then
      log "attaching data volume ${DATA_VOLUME}"
      aws ec2 attach-volume --volume-id "${DATA_VOLUME}" --instance-id "${INSTANCE_ID}" \
        --device /dev/sdf >/dev/null || log "attach-volume failed; retrying"
    elif [[ "${holder}" != "${INSTANCE_ID}" ]]; then
      log "data volume ${DATA_VOLUME} is ${state:-unknown} (held by ${holder:-nobody}); waiting (attempt ${attempt})"
    fi
    sleep 10
  done
  die "data volume ${DATA_VOLUME} did not become this server's (${state:-unknown}, held by ${holder:-nobody})"
}
mount_data_volume() {
  local device="" attempt uuid
  if device=$(findmnt -n -o SOURCE "${DATA_DIR}"); then
    # Mounted at boot by the image's fstab (a baked image: the volume restored from the
    # image's snapshot, perhaps to a larger DataVolumeSize): grown as below.
    resize2fs "${device}" >/dev/null 2>&1 || log "resize2fs ${device} failed; the file system keeps its size"
    return 0
  fi
  for attempt in $(seq 1 30); do
    # shellcheck disable=SC2310 # "not found yet" is its failure; the loop retries
    device=$(find_data_volume) && break
    log "waiting for the data volume (attempt ${attempt})"
    sleep 2
  done
  [[ -n "${device}" ]] || die "data volume /dev/sdf not found"
  if [[ -z "$(blkid -o value -s TYPE "${device}" || true)" ]]; then
    log "formatting data volume ${device}"
    mkfs.ext4 -q -L bbb-data "${device}"
  fi
  uuid=$(blkid -o value -s UUID "${device}")
  mkdir -p "${DATA_DIR}"
  grep -q "^UUID=${uuid} ${DATA_DIR} " /etc/fstab ||
    echo "UUID=${uuid} ${DATA_DIR} ext4 defaults,nofail 0 2" >>/etc/fstab
  mount "${DATA_DIR}"
  log "data volume ${device} mounted at ${DATA_DIR}"
  # A volume grown in place (DataVolumeSize) gets its file system grown too.
  resize2fs "${device}" >/dev/null 2>&1 || log "resize2fs ${device} failed; the file system keeps its size"
}
# keep_on_data_volume DIR: DIR is a folder on the data volume (a bind mount from
# ${DATA_DIR}/.bbbctl/DIR), so that it outlives this server.
keep_on_data_volume() {
  local dir=$1 store="${DATA_DIR}/.bbbctl$1"
  findmnt -n "${dir}" >/dev/null && return 0
  mkdir -p "${store}" "${dir}"
  echo "${store} ${dir} none bind,nofail,x-systemd.requires-mounts-for=${DATA_DIR} 0 0" >>/etc/fstab
  mount "${dir}"
  log "${dir} kept on the data volume"
}
data_volume() {
  if [[ -n "${DATA_VOLUME}" ]]; then
    attach_data_volume
  fi
  mount_data_volume
  if [[ -n "${DATA_VOLUME}" ]]; then
    keep_on_data_volume /root/greenlight-v3
    keep_on_data_volume /etc/letsencrypt
  fi
}

# ---- 2. host name ------------------------------------------------------------------
# Scalable mode: bbb-<id>.media.<domain> is the registrar's record of this instance's public
# address (written when the group launched it, deleted when it drains or is gone). Single
# mode: the record of <domain> is CloudFormation's, on the deployment's Elastic IP; this
# server takes that address.
take_elastic_ip() {
  local address attempt current
  address=$(aws ec2 describe-addresses --allocation-ids "${ALLOCATION_ID}" \
    --query 'Addresses[0].PublicIp' --output text)
  [[ "${address}" =~ ^[0-9]+(\.[0-9]+){3}$ ]] || die "Elastic IP ${ALLOCATION_ID} has no address (${address})"
  # A replaced server's predecessor may still hold it: take it over.
  aws ec2 associate-address --allocation-id "${ALLOCATION_ID}" --instance-id "${INSTANCE_ID}" \
    --allow-reassociation >/dev/null
  for attempt in $(seq 1 60); do
    # shellcheck disable=SC2310 # no address yet is what the loop waits out
    current=$(imds public-ipv4 || true)
    if [[ "${current}" = "${address}" ]]; then
      PUBLIC_IP=${address}
      log "Elastic IP ${address} (${ALLOCATION_ID}) associated; ${HOST_NAME} points at it"
      return 0
    fi
    log "waiting for the metadata service to show ${address} (attempt ${attempt})"
    sleep 2
  done
  die "Elastic IP ${address} did not show up as this instance's public address"
}
# wait_for_record: HOST_NAME is written by others - single mode: the root stack's record of
# <domain> on the Elastic IP (root.yaml, DomainRecord), created beside this stack, not
# before it (no nested stack waits for a resource of the other mode); scalable mode: the
# registrar's record of this instance. Let's Encrypt asks the zone's own name servers for
# the name, and certbot and bbb-install's later steps resolve it through the VPC resolver;
# a name looked up before its record exists stays unresolvable in that resolver's negative
# cache (up to the SOA's TTL, 900 s in a Route 53 zone). So the zone's name servers are
# asked directly, without recursion, until each answers with this server's address; only
# then is the name resolved through the cache.
wait_for_record() {
  local answer attempt pending="" max=${DOMAIN_WAIT_ATTEMPTS:-120} ns listed
  local -a servers
  command -v dig >/dev/null 2>&1 || apt_install bind9-dnsutils
  listed=$(aws route53 get-hosted-zone --id "${HOSTED_ZONE}" \
    --query 'DelegationSet.NameServers' --output text)
  read -ra servers <<<"${listed}"
  [[ "${#servers[@]}" -gt 0 ]] || die "hosted zone ${HOSTED_ZONE} lists no name servers"
  for attempt in $(seq 1 "${max}"); do
    pending=""
    for ns in "${servers[@]}"; do
      # shellcheck disable=SC2312 # no answer is what the loop waits out
      answer=$(dig +short +norecurse +time=3 +tries=1 "@${ns}" "${HOST_NAME}" A | tail -n 1) || answer=""
      [[ "${answer}" = "${PUBLIC_IP}" ]] || pending+=" ${ns}:${answer:-nothing}"
    done
    if [[ -z "${pending}" ]]; then
      log "${HOST_NAME} -> ${PUBLIC_IP} on every name server of zone ${HOSTED_ZONE}"
      return 0
    fi
    log "waiting for ${HOST_NAME} -> ${PUBLIC_IP}; not yet on${pending} (attempt ${attempt}/${max})"
    [[ "${attempt}" -ge "${max}" ]] || sleep 10
  done
  if [[ "${MODE}" = single ]]; then
    die "${HOST_NAME} does not point at this server's address ${PUBLIC_IP} on the zone's name servers (${pending# }): is the record of the domain the deployment's own?"
  fi
  die "${HOST_NAME} does not point at this server's address ${PUBLIC_IP} on the zone's name servers (${pending# }): the deployment's registrar writes it; its log (bbbctl servers names it) says why it did not"
}

# host_record: single mode only. A scalable server no longer waits for its record: it
# orders no certificate (the fleet's is bbb-identity's), and the registrar adds it to
# Scalelite only once its record and its API answer.
host_record() {
  take_elastic_ip
  wait_for_record
}

# ---- 3. BigBlueButton ------------------------------------------------------------
# install_compose_shim PATH: docker-compose at PATH as a front for the Compose plugin. bbb-install downloads docker-compose 1.24 there unless the
# file exists, and runs Greenlight (-g) with it; 1.24 speaks Docker API 1.25, which Docker
# 29 refuses ("client version 1.25 is too old", bbb-install issue #807), so Greenlight
# would never start on a server installed today.
install_compose_shim() {
  local target=$1
  cat >"${target}" <<'SCRIPT'
#!/bin/sh
# Installed by bbbctl's bbb-bootstrap.sh: docker-compose is the Compose plugin.
if ! docker compose version >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -yq docker-compose-plugin >&2 || exit 1
fi
exec docker compose "$@"
SCRIPT
  chmod 0755 "${target}"
}

# apt_busy: prints what holds apt now (the first-boot apt-daily and apt-daily-upgrade
# runs - unattended-upgrade runs in the latter -, a process holding dpkg's locks, an apt or
# dpkg process); fails when nothing does. Not by the name unattended-upgr: the idle
# shutdown helper of unattended-upgrades.service has that name too.
apt_busy() {
  local unit holders processes
  local -a busy=()
  for unit in apt-daily.service apt-daily-upgrade.service; do
    if systemctl is-active --quiet "${unit}"; then
      busy+=("${unit} runs")
    fi
  done
  if command -v fuser >/dev/null 2>&1; then
    # fuser prints the PIDs on standard output, the file names on standard error.
    holders=$(fuser /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock 2>/dev/null || true)
    holders=$(tr -s ' \n' ' ' <<<"${holders}")
    if [[ -n "${holders// /}" ]]; then
      busy+=("dpkg's lock held by pid${holders% }")
    fi
  fi
  processes=$(pgrep -d ' ' -x 'apt|apt-get|aptitude|dpkg' || true)
  if [[ -n "${processes}" ]]; then
    busy+=("apt/dpkg processes ${processes}")
  fi
  [[ "${#busy[@]}" -gt 0 ]] || return 1
  local IFS=';'
  printf '%s\n' "${busy[*]}"
}

# quiet_apt: apt to itself for bbb-install. A fresh Ubuntu runs apt-daily, apt-daily-upgrade
# (unattended-upgrades) at first boot, and not all of bbb-install's apt calls wait for the
# lock: the timers are stopped and disabled for the install (restore_apt_timers turns them
# on again after it), unattended-upgrades' service is stopped, apt-get waits up to 10
# minutes for dpkg's lock (DPkg::Lock::Timeout, apt >= 1.9.11; the file stays), and this
# waits (bounded, logged) until no apt or dpkg process is left. cloud-init's own apt runs
# are over: its package_update_upgrade_install module runs before scripts_user, which runs
# this user data, in the same final stage (cloud-init config/cloud.cfg.tmpl); and
# `cloud-init status --wait` from inside the user data would wait for itself.
quiet_apt() {
  local waited=0 busy
  systemctl disable --now apt-daily.timer apt-daily-upgrade.timer ||
    log "could not stop the apt timers; waiting for apt all the same"
  systemctl stop --no-block unattended-upgrades.service || true
  printf '%s\n' '// bbbctl (bbb-bootstrap.sh): apt and apt-get wait for the dpkg lock' \
    'DPkg::Lock::Timeout "600";' >"${APT_LOCK_CONF}"
  # shellcheck disable=SC2310 # "nothing holds apt" is its failure; the loop ends on it
  while busy=$(apt_busy); do
    if [[ "${waited}" -ge "${APT_WAIT_SECONDS}" ]]; then
      log "apt still busy after ${waited} s (${busy}); going on (apt calls wait for the lock)"
      return 0
    fi
    log "waiting for apt: ${busy} (${waited} s)"
    sleep 10
    waited=$((waited + 10))
  done
  log "apt is free (waited ${waited} s); apt-daily timers off for the install"
}
restore_apt_timers() {
  systemctl enable --now apt-daily.timer apt-daily-upgrade.timer ||
    log "could not turn the apt timers on again"
}

# pin_greenlight: single mode; bbb-install -g starts Greenlight from
# ~/greenlight-v3/docker-compose.yml, which it writes from bigbluebutton/greenlight:v3 only
# when the file is missing. Greenlight's own compose file of GREENLIGHT_REF is put there
# first (sha256 checked), and the image line pinned to GREENLIGHT_IMAGE_TAG; a file kept
# on the data volume (a replaced server) gets its image line pinned the same way.
pin_greenlight() {
  local dir=/root/greenlight-v3 compose actual
  compose="${dir}/docker-compose.yml"
  mkdir -p "${dir}"
  if [[ ! -s "${compose}" ]]; then
    curl -fsSL --retry 5 -o "${compose}.new" "${GREENLIGHT_COMPOSE_URL}"
    actual=$(sha256sum "${compose}.new") || die "could not checksum ${compose}.new"
    actual=${actual%% *}
    if [[ "${actual}" != "${GREENLIGHT_COMPOSE_SHA256}" ]]; then
      die "Greenlight's compose file checksum mismatch: ${GREENLIGHT_COMPOSE_URL} has sha256 ${actual}, expected ${GREENLIGHT_COMPOSE_SHA256}"
    fi
    mv -f "${compose}.new" "${compose}"
  fi
  sed -i -E "s#^([[:space:]]*image:[[:space:]]*bigbluebutton/greenlight):.*\$#\\1:${GREENLIGHT_IMAGE_TAG}#" "${compose}"
  if ! grep -Eq "^[[:space:]]*image:[[:space:]]*bigbluebutton/greenlight:${GREENLIGHT_IMAGE_TAG}\$" "${compose}"; then
    die "no bigbluebutton/greenlight image line to pin in ${compose}"
  fi
  log "Greenlight pinned to bigbluebutton/greenlight:${GREENLIGHT_IMAGE_TAG} (${compose})"
}

install_bigbluebutton() {
  local installer="${STATE_DIR}/bbb-install.sh" actual rc=0 hint
  local -a options=(-v "${BBB_VERSION}" -s "${HOST_NAME}")
  if [[ "${MODE}" = scalable ]]; then
    # -d: no Let's Encrypt; bbb-install links the placeholder in CERT_DIR (bbb-install.sh
    # at the pinned commit, install_ssl) and skips its DNS check of the name (check_host).
    options+=(-d)
  else
    options+=(-e "${EMAIL}" -g)
    install_compose_shim /usr/local/bin/docker-compose
    pin_greenlight
  fi

  curl -fsSL --retry 5 -o "${installer}" "${BBB_INSTALL_URL}"
  actual=$(sha256sum "${installer}") || die "could not checksum ${installer}"
  actual=${actual%% *}
  if [[ "${actual}" != "${BBB_INSTALL_SHA256}" ]]; then
    die "bbb-install.sh checksum mismatch: ${BBB_INSTALL_URL} has sha256 ${actual}, expected ${BBB_INSTALL_SHA256}; not running it"
  fi
  log "bbb-install.sh ${BBB_INSTALL_COMMIT} verified (sha256 ${actual})"

  # bbb-install reads the public address from the metadata service without an IMDSv2
  # token, which this launch template refuses; hand it both addresses instead (it
  # skips its own detection when IP is set).
  # Its exit status says little: its last line is `main "$@" || exit 1`, so -e (its
  # "#!/bin/bash -ex") is ignored inside main whichever way it is started, and its steps
  # rely on that (check_cap_sys_nice returns 1 on a server without the problem it
  # looks for). A failed apt step goes on unseen: verify_bigbluebutton checks the result.
  log "running bbb-install (${BBB_INSTALL_COMMIT}) ${options[*]}"
  IP="${PUBLIC_IP}" INTERNAL_IP="${LOCAL_IP}" bash "${installer}" "${options[@]}" 2>&1 |
    tee "${STATE_DIR}/bbb-install.out" || rc=$?
  if [[ "${rc}" -ne 0 ]]; then
    hint=$(apt_errors)
    die "bbb-install exited with status ${rc}${hint}"
  fi
}

# apt_errors: apt's error lines (E: ...) in bbb-install's output, for a failure message.
apt_errors() {
  local errors
  errors=$(grep -E '^E: ' "${STATE_DIR}/bbb-install.out" 2>/dev/null | tail -n 3 | tr '\n' ' ' || true)
  [[ -z "${errors}" ]] || printf '; apt said: %s' "${errors% }"
}

# verify_bigbluebutton: what bbb-install left is checked before this server registers or
# signals: the packages bigbluebutton (which depends on the server's parts) and bbb-html5
# (the client, which bbb-install installs on its own) installed and no package
# half-installed (dpkg --audit); every service BigBlueButton runs active; its API
# answering SUCCESS over HTTPS (through haproxy and nginx, with the certificate, on this
# host). Services may still be starting: up to VERIFY_ATTEMPTS looks, 10 s apart. On
# failure the last journal lines of each failed service go to this log.
verify_bigbluebutton() {
  local package status audit attempt unit load answer hint first
  local -a failed=() problems=()
  hint=$(apt_errors)
  for package in bigbluebutton bbb-html5; do
    status=$(dpkg-query -W -f='${Status}' "${package}" 2>/dev/null || true)
    if [[ "${status}" != "install ok installed" ]]; then
      die "BigBlueButton is not installed: package ${package} is ${status:-not installed}${hint}"
    fi
  done
  audit=$(dpkg --audit 2>&1 || true)
  if [[ -n "${audit}" ]]; then
    printf '%s\n' "${audit}"
    first=$(head -n 3 <<<"${audit}" | tr '\n' ' ' || true)
    die "packages left half-installed (dpkg --audit): ${first% }${hint}"
  fi
  for attempt in $(seq 1 "${VERIFY_ATTEMPTS}"); do
    failed=()
    problems=()
    for unit in ${BBB_UNITS} ${BBB_UNITS_IF_INSTALLED}; do
      if [[ " ${BBB_UNITS_IF_INSTALLED} " == *" ${unit} "* ]]; then
        load=$(systemctl show -p LoadState --value "${unit}.service" 2>/dev/null || true)
        [[ "${load}" = loaded ]] || continue
      fi
      systemctl is-active --quiet "${unit}.service" || failed+=("${unit}")
    done
    if [[ "${#failed[@]}" -gt 0 ]]; then
      problems+=("services not active: ${failed[*]}")
    fi
    # A builder's certificate is its own placeholder: trusted here as the only authority.
    answer=$(curl -sS --max-time 15 ${VERIFY_CA:+--cacert "${VERIFY_CA}"} --resolve "${HOST_NAME}:443:127.0.0.1" \
      "https://${HOST_NAME}/bigbluebutton/api" 2>&1 || true)
    if ! grep -q '<returncode>SUCCESS</returncode>' <<<"${answer}"; then
      problems+=("https://${HOST_NAME}/bigbluebutton/api answered: $(head -c 200 <<<"${answer}" | tr '\n' ' ')")
    fi
    if [[ "${#problems[@]}" -eq 0 ]]; then
      log "BigBlueButton verified: services active, API answers SUCCESS at https://${HOST_NAME}/bigbluebutton/api"
      return 0
    fi
    log "BigBlueButton not up yet (look ${attempt}/${VERIFY_ATTEMPTS}): ${problems[*]}"
    [[ "${attempt}" -eq "${VERIFY_ATTEMPTS}" ]] || sleep 10
  done
  for unit in "${failed[@]}"; do
    log "last journal lines of ${unit}.service:"
    journalctl -u "${unit}.service" -n 20 --no-pager 2>&1 | sed 's/^/    /' || true
  done
  local IFS=';'
  die "BigBlueButton is not up: ${problems[*]}"
}


# ---- 4. Scalelite: recordings spool on EFS, post-publish hook, registration ------
mount_spool() {
  local build="${STATE_DIR}/efs-utils" attempt head
  if ! command -v mount.efs >/dev/null 2>&1; then
    apt_install git binutils stunnel4 nfs-common
    rm -rf "${build}"
    # By commit (GitHub serves any commit of the repository to a fetch by its id).
    git init --quiet "${build}"
    git -C "${build}" fetch --quiet --depth 1 https://github.com/aws/efs-utils "${EFS_UTILS_COMMIT}"
    git -C "${build}" checkout --quiet --detach FETCH_HEAD
    head=$(git -C "${build}" rev-parse HEAD) || die "could not read the efs-utils checkout"
    [[ "${head}" = "${EFS_UTILS_COMMIT}" ]] ||
      die "amazon-efs-utils checkout is commit ${head}, expected ${EFS_UTILS_COMMIT} (${EFS_UTILS_RELEASE}); not building it"
    log "amazon-efs-utils ${EFS_UTILS_RELEASE} at commit ${head} verified; building it"
    (cd "${build}" && ./build-deb.sh)
    apt_install "${build}"/build/amazon-efs-utils*.deb
  fi
  mkdir -p "${SPOOL_DIR}"
  if ! grep -q " ${SPOOL_DIR} efs " /etc/fstab; then
    echo "${EFS_ID}:/ ${SPOOL_DIR} efs _netdev,nofail,tls,iam,accesspoint=${SPOOL_AP} 0 0" >>/etc/fstab
  fi
  # The mount target's security group rule may still be on its way: retry.
  for attempt in $(seq 1 20); do
    if findmnt -n "${SPOOL_DIR}" >/dev/null || mount "${SPOOL_DIR}"; then
      log "recordings spool ${EFS_ID} (${SPOOL_AP}) mounted at ${SPOOL_DIR}"
      return 0
    fi
    log "EFS mount failed (attempt ${attempt}), retrying"
    sleep 15
  done
  die "could not mount the recordings spool"
}

install_post_publish_hook() {
  local scripts=/usr/local/bigbluebutton/core/scripts hook actual
  hook="${scripts}/post_publish/scalelite_post_publish.rb"
  getent group scalelite-spool >/dev/null || groupadd -g "${SPOOL_GID}" scalelite-spool
  usermod -a -G scalelite-spool bigbluebutton
  mkdir -p "${scripts}/post_publish"
  curl -fsSL --retry 5 -o "${hook}.new" "${SCALELITE_HOOK_URL}"
  actual=$(sha256sum "${hook}.new") || die "could not checksum ${hook}.new"
  actual=${actual%% *}
  [[ "${actual}" = "${SCALELITE_HOOK_SHA256}" ]] ||
    die "scalelite_post_publish.rb checksum mismatch: ${SCALELITE_HOOK_URL} has sha256 ${actual}, expected ${SCALELITE_HOOK_SHA256}"
  mv -f "${hook}.new" "${hook}"
  cat >"${scripts}/scalelite.yml" <<EOF
work_dir: /var/bigbluebutton/recording/scalelite
spool_dir: ${SPOOL_DIR}
EOF
  # The recording worker runs the hook, which copies each recording into the spool: it
  # must never run while the spool (nofail, on EFS) is not mounted, or the copy lands on
  # the root disk under the mount point and is never imported. So it starts only once the
  # spool is mounted, mounting it again until it is (a dependency on the mount unit would
  # leave the worker failed, and every recording waiting, after one failed mount at boot).
  # "+": the worker runs as bigbluebutton, and only root may mount. The restart also gives
  # the worker its new group.
  mkdir -p /etc/systemd/system/bbb-rap-resque-worker.service.d
  cat >/etc/systemd/system/bbb-rap-resque-worker.service.d/bbbctl-spool.conf <<EOF
[Unit]
Wants=remote-fs.target
After=remote-fs.target

[Service]
ExecStartPre=+/bin/sh -c 'until mountpoint -q ${SPOOL_DIR}; do mount ${SPOOL_DIR} || sleep 30; done'
TimeoutStartSec=infinity
EOF
  systemctl daemon-reload
  systemctl try-restart bbb-rap-resque-worker.service || log "could not restart bbb-rap-resque-worker.service"
  log "Scalelite post-publish hook ${SCALELITE_REF} (${SCALELITE_COMMIT}) installed (sha256 verified); recordings wait for the spool mount"
}

# bbb-agent (templates/scripts/bbb-agent.sh, fetched by the user data next to this
# script) reports this server's own API secret and the state of its recordings to its own
# object in the report bucket: at every start, whenever it changes and at least every
# REFRESH_SECONDS; it saves the raw files of failed recordings below failed/ there. Both
# modes; TRANSFER: in scalable mode a recording is safe once Scalelite's post-publish hook
# has copied it to the spool, in single mode once it is published. SAVED_DIR (which failed
# recordings it saved, and where) is on the data volume beside the recordings, in a folder
# without "-" (BigBlueButton's daily clean-up removes /var/bigbluebutton/*-* folders of old
# meetings): a single server's replacement finds them there; one its predecessor saved
# under the predecessor's own key is saved again under its own (the report's readers
# accept only a server's own failed/ prefix). Its settings are data (read line by line,
# never sourced).
install_agent_service() {
  local transfer=none
  [[ "${MODE}" != scalable ]] || transfer=scalelite
  [[ -x "${AGENT}" ]] || die "${AGENT} is missing (the user data fetches it)"
  printf 'AWS_DEFAULT_REGION=%s\nREPORT_BUCKET=%s\nSTATE_FILE=%s\nSAVED_DIR=%s\nTRANSFER=%s\n' \
    "${REGION}" "${REPORT_BUCKET}" "${STATE_DIR}/reported.sha256" "${DATA_DIR}/.bbbctl/agent-saved" \
    "${transfer}" >/etc/default/bbb-agent
  # A builder's agent is installed, never started: it would report the builder, and a
  # baked server starts it only once bbb-identity gave it its own secret (baked path).
  local install=install_unit
  [[ "${BOOT_PATH}" != bake ]] || install=write_unit
  "${install}" bbb-agent <<'EOF'
[Unit]
Description=Report this BigBlueButton server's API secret and recordings to its deployment
Wants=network-online.target
After=network-online.target bbb-web.service

[Service]
Type=simple
ExecStart=/usr/local/sbin/bbb-agent watch
Restart=always
RestartSec=30

[Install]
WantedBy=multi-user.target
EOF
  if [[ "${BOOT_PATH}" = bake ]]; then
    log "bbb-agent.service installed, not started (a baked server starts it)"
  elif [[ "${MODE}" = scalable ]]; then
    log "bbb-agent.service started: the registrar adds this server to Scalelite once its API answers"
  else
    log "bbb-agent.service started: it reports this server's recordings to s3://${REPORT_BUCKET}/servers/"
  fi
}


# ---- 5. Greenlight's mail and administrator (single mode) ------------------------
# ses_smtp_password REGION: Amazon SES's SMTP password for the IAM secret access key on
# standard input, as AWS documents it ("Obtaining Amazon SES SMTP credentials"):
# HMAC-SHA256 chained over 11111111, the region, ses, aws4_request and SendRawEmail,
# keyed first with "AWS4" + key; the version byte 0x04 in front; Base64.
ses_smtp_password() {
  python3 -c '
import base64, hashlib, hmac, sys
key = ("AWS4" + sys.stdin.read().strip()).encode()
for part in ("11111111", sys.argv[1], "ses", "aws4_request", "SendRawEmail"):
    key = hmac.new(key, part.encode(), hashlib.sha256).digest()
print(base64.b64encode(b"\x04" + key).decode())
' "$1"
}

# set_env_line FILE NAME VALUE: NAME=VALUE in the env file FILE, replacing NAME's line or
# its commented-out sample line (Greenlight's sample.env has "#SMTP_SERVER=" and so on).
set_env_line() {
  local file=$1 name=$2 value=$3
  sed -i "/^#\{0,1\}${name}=/d" "${file}"
  printf '%s=%s\n' "${name}" "${value}" >>"${file}"
}

# configure_greenlight_host: single mode; only the deployment's own name reaches
# Greenlight as its host. Greenlight builds the links it mails (account activation,
# password reset) from the request's host (release-3.8.2.4
# app/controllers/concerns/client_routable.rb: root_url), and checks the host only when
# URL_HOST is set (config/environments/production.rb; bbb-install leaves sample.env's
# "#URL_HOST=" as it is). In front of it, bbb-install's nginx server block for the name is
# the only one on haproxy's 127.0.0.1:81/82, so it answers any Host (bbb-install.sh
# install_ssl), and the greenlight-v3.nginx it copies out of Greenlight's image passes
# the client's Host ($http_host) and any X-Forwarded-Host on. So: URL_HOST in .env (one
# bare host name: Rails compares it with the request's host without the port), and
# nginx sends Greenlight the name as Host and no X-Forwarded-Host, whatever the client
# sent. bbb-install writes greenlight-v3.nginx anew on every run; this follows each run.
configure_greenlight_host() {
  local dir=/root/greenlight-v3 conf=/usr/share/bigbluebutton/nginx/greenlight-v3.nginx
  [[ -f "${dir}/.env" ]] || die "Greenlight's ${dir}/.env is missing (bbb-install -g did not finish?)"
  [[ -f "${conf}" ]] || die "${conf} is missing (bbb-install -g did not finish?)"
  # shellcheck disable=SC2016 # nginx's variable, literally
  grep -qF 'proxy_set_header Host $http_host;' "${conf}" ||
    grep -qF "proxy_set_header Host ${HOST_NAME};" "${conf}" ||
    die "${conf} sets no Host header this script knows; not serving Greenlight with a foreign Host"
  sed -i "s#proxy_set_header Host \$http_host;#proxy_set_header Host ${HOST_NAME}; proxy_set_header X-Forwarded-Host \"\";#" "${conf}"
  if grep -q 'http_host' "${conf}"; then
    die "${conf} still passes the client's Host to Greenlight"
  fi
  nginx -qt || die "nginx refuses ${conf} with Greenlight's host fixed"
  systemctl reload nginx
  set_env_line "${dir}/.env" URL_HOST "${HOST_NAME}"
  log "Greenlight answers only for ${HOST_NAME} (URL_HOST; nginx passes no other Host)"
}

# bbb-install -g runs Greenlight v3 with docker-compose from ~/greenlight-v3 and its .env;
# Greenlight sends mail only when SMTP_SERVER is set (config/environments/production.rb).
configure_greenlight_mail() {
  local dir=/root/greenlight-v3 secret smtp_user smtp_password
  [[ -f "${dir}/.env" ]] || die "Greenlight's ${dir}/.env is missing (bbb-install -g did not finish?)"
  secret=$(aws secretsmanager get-secret-value --secret-id "${SMTP_SECRET}" --query SecretString --output text)
  smtp_user=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["username"])' <<<"${secret}")
  smtp_password=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["iam_secret_access_key"])' <<<"${secret}" \
    | ses_smtp_password "${REGION}")
  set_env_line "${dir}/.env" SMTP_SERVER "email-smtp.${REGION}.amazonaws.com"
  set_env_line "${dir}/.env" SMTP_PORT 587
  set_env_line "${dir}/.env" SMTP_DOMAIN "${DOMAIN}"
  set_env_line "${dir}/.env" SMTP_USERNAME "${smtp_user}"
  set_env_line "${dir}/.env" SMTP_PASSWORD "${smtp_password}"
  set_env_line "${dir}/.env" SMTP_AUTH login
  set_env_line "${dir}/.env" SMTP_STARTTLS_AUTO true
  set_env_line "${dir}/.env" SMTP_SENDER_EMAIL "no-reply@${DOMAIN}"
  chmod 0600 "${dir}/.env"
  # Recreates the Greenlight container with the new environment (the way bbb-install
  # starts it), URL_HOST from configure_greenlight_host included.
  docker-compose -f "${dir}/docker-compose.yml" up -d
  log "Greenlight sends mail as no-reply@${DOMAIN} through email-smtp.${REGION}.amazonaws.com:587"
}

create_greenlight_admin() {
  local secret admin_email admin_password attempt
  secret=$(aws secretsmanager get-secret-value --secret-id "${ADMIN_SECRET}" --query SecretString --output text)
  admin_email=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["username"])' <<<"${secret}")
  admin_password=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["password"])' <<<"${secret}")
  # Greenlight migrates its database on first start; retry until it answers. A database
  # kept on the data volume already has the administrator: it is kept as it is. rake's
  # output repeats the password, so it never reaches this log.
  for attempt in $(seq 1 30); do
    if ADMIN_EMAIL="${admin_email}" docker exec -e ADMIN_EMAIL greenlight-v3 bundle exec rails runner \
      'exit(User.exists?(provider: "greenlight", email: ENV.fetch("ADMIN_EMAIL").downcase) ? 0 : 3)' \
      >/dev/null 2>&1; then
      log "Greenlight administrator ${admin_email} exists, kept as it is"
      return 0
    fi
    if ADMIN_EMAIL="${admin_email}" ADMIN_PASSWORD="${admin_password}" \
      docker exec -e ADMIN_EMAIL -e ADMIN_PASSWORD greenlight-v3 \
      sh -c 'bundle exec rake "admin:create[Administrator,$ADMIN_EMAIL,$ADMIN_PASSWORD]"' >/dev/null 2>&1; then
      log "Greenlight administrator ${admin_email} created"
      return 0
    fi
    log "Greenlight not ready yet (attempt ${attempt})"
    sleep 10
  done
  die "could not create the Greenlight administrator"
}
greenlight() {
  configure_greenlight_host
  configure_greenlight_mail
  create_greenlight_admin
}

# ---- issue 27: certificate, identity, the baked image -------------------------------
# placeholder_certificate: a self-signed certificate for HOST_NAME in CERT_DIR, for
# bbb-install -d (it links them, nginx and haproxy's bundle are built on them). Safe: the
# key is made here and never leaves the disk; no client trusts it (no CA signed it); for a
# builder it names PLACEHOLDER_HOST, which never resolves. bbb-identity puts the fleet
# certificate in its place before anything is verified or registered.
placeholder_certificate() {
  mkdir -p "${CERT_DIR}"
  chmod 0700 "${CERT_DIR}"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj "/CN=${HOST_NAME}" -addext "subjectAltName=DNS:${HOST_NAME}" \
    -keyout "${CERT_DIR}/privkey.pem" -out "${CERT_DIR}/fullchain.pem" 2>/dev/null ||
    die "could not make the placeholder certificate for ${HOST_NAME}"
  chmod 0600 "${CERT_DIR}/privkey.pem"
  log "placeholder certificate for ${HOST_NAME} in ${CERT_DIR} (self-signed; bbb-identity installs the fleet's)"
}
# identity_unit: bbb-identity.service in place (bbb-identity install): it re-applies who
# this server is at every later boot. Fetched by the user data next to this script.
identity_unit() {
  [[ -x "${IDENTITY}" ]] || die "${IDENTITY} is missing (the user data fetches it)"
  "${IDENTITY}" install || die "bbb-identity install failed (its last line says why)"
}
# identity_first_boot: name, addresses, per-server secrets, the fleet certificate (nginx,
# haproxy), checked (bbb-identity --first-boot); its exit status is the truth.
identity_first_boot() {
  local rc=0
  [[ -x "${IDENTITY}" ]] || die "${IDENTITY} is missing (the user data fetches it)"
  "${IDENTITY}" --first-boot || rc=$?
  [[ "${rc}" -eq 0 ]] ||
    die "bbb-identity --first-boot failed with status ${rc} (its last line in ${LOG_FILE} says why)"
}
# rotate_secret FILE KEY: KEY=<new random value> in FILE when FILE has KEY (the value never
# reaches the log). A baked image holds no secret of its builder; none is left empty
# (bbb-web takes an empty securitySalt as "no checksum"): bbb-identity gives each server
# its own at its first boot.
rotate_secret() {
  local file="${ROOT}$1" key=$2 value
  [[ -f "${file}" ]] && grep -q "^${key}=" "${file}" || return 0
  value=$(openssl rand -hex 32) || die "could not make a random value"
  sed -i "s|^${key}=.*|${key}=${value}|" "${file}"
}
# bake_clean: what is this builder's own goes (the image becomes every server's): the
# agent's and the spool's state, the generated secrets, SSH host keys and logins, the
# machine id, apt's caches, server.env (its name). The log and cloud-init's state go last
# (bake_finish), after the BAKED line is shipped.
bake_clean() {
  local turn old new xml="${ROOT}/etc/bigbluebutton/turn-stun-servers.xml"
  systemctl disable bbb-agent.service 2>/dev/null || true
  rm -f "${ROOT}/etc/default/bbb-agent" "${ROOT}${STATE_DIR}/reported.sha256"
  rm -rf "${ROOT}${DATA_DIR}/.bbbctl/agent-saved"
  umount "${SPOOL_DIR}" 2>/dev/null || true
  rotate_secret /etc/bigbluebutton/bbb-web.properties securitySalt
  # coturn's secret, and bbb-web's copy of it (bbb-install writes both).
  turn="${ROOT}/etc/turnserver.conf"
  if [[ -f "${turn}" ]] && old=$(grep -m1 '^static-auth-secret=' "${turn}"); then
    rotate_secret /etc/turnserver.conf static-auth-secret
    new=$(grep -m1 '^static-auth-secret=' "${turn}")
    if [[ -f "${xml}" ]]; then
      python3 -c 'import sys
path, old, new = sys.argv[1:]
text = open(path).read()
open(path, "w").write(text.replace("value=\"%s\"" % old, "value=\"%s\"" % new))' \
        "${xml}" "${old#static-auth-secret=}" "${new#static-auth-secret=}"
    fi
  fi
  rm -f "${ROOT}"/etc/ssh/ssh_host_*
  rm -f "${ROOT}"/root/.ssh/authorized_keys "${ROOT}"/home/*/.ssh/authorized_keys
  : >"${ROOT}/etc/machine-id"
  rm -f "${ROOT}/var/lib/dbus/machine-id"
  apt-get clean
  rm -rf "${ROOT}"/var/lib/apt/lists/*
  rm -f "${ROOT}${ETC_DIR}/server.env"
  rm -rf "${ROOT}${STATE_DIR}/efs-utils" "${ROOT}${STATE_DIR}/bbb-install.sh" "${ROOT}${STATE_DIR}/bbb-install.out"
  log "cleaned: agent state, spool mount, generated secrets, SSH host keys and logins, machine id, apt caches, server.env"
}
# write_baked: ETC_DIR/baked.json, the pins this image was built with.
write_baked() {
  local pins at
  pins=$(pins_json)
  at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  mkdir -p "${ROOT}${ETC_DIR}"
  python3 -c 'import json, sys
pins = json.loads(sys.argv[1])
pins["baked_at"] = sys.argv[2]
print(json.dumps(pins, sort_keys=True))' "${pins}" "${at}" >"${ROOT}${ETC_DIR}/baked.json"
}
# bake_finish: baked.json, the BAKED line (shipped), then the log and cloud-init's state
# go (user data runs again on every instance of the image; bbb-logship starts from
# nothing there), and the builder powers off: bbbctl bake images it once it has stopped.
bake_finish() {
  local baked
  write_baked
  baked=$(cat "${ROOT}${ETC_DIR}/baked.json")
  FINISHED=true
  stop_watchdog
  boot_total
  # bbbctl bake tags the image with these.
  log "baked.json: ${baked}"
  log "BAKED"
  flush_log
  systemctl disable --now bbb-logship.service 2>/dev/null || true
  rm -f "${ROOT}/etc/default/bbb-logship" "${ROOT}${STATE_DIR}"/logship-* "${ROOT}${STATE_DIR}/done"
  cloud-init clean --logs >/dev/null 2>&1 || rm -rf "${ROOT}/var/lib/cloud/instances" "${ROOT}/var/lib/cloud/instance"
  find "${ROOT}/var/log" -type f \( -name '*.gz' -o -name '*.[0-9]' \) -delete 2>/dev/null || true
  find "${ROOT}/var/log" -type f -exec truncate -s 0 {} + 2>/dev/null || true
  journalctl --rotate --vacuum-time=1s >/dev/null 2>&1 || true
  sync
  systemctl poweroff
  exit 0
}

# ---- 6. done ---------------------------------------------------------------------
# ready: the READY line, the last of the run, the log to CloudWatch Logs, then the signal.
ready() {
  FINISHED=true
  stop_watchdog
  boot_state ready
  boot_total
  log "READY https://${HOST_NAME}"
  flush_log
  # A refused signal does not make a working server a failed one: the group takes none
  # when it is not being created or updated (a server launched later, a replacement).
  # shellcheck disable=SC2310 # a refused signal changes nothing here (see signal)
  signal SUCCESS || echo "bbb-bootstrap: the group took no signal (it is not being created or updated)" >&2
}

# ---- the paths ---------------------------------------------------------------------
if [[ "${MODE}" = single ]]; then
  # Single mode: as before (its own name, Let's Encrypt through bbb-install), timed.
  step data-volume data_volume
  step host-record host_record
  step apt-wait quiet_apt
  step bbb-install install_bigbluebutton
  step verify verify_bigbluebutton
  restore_apt_timers
  step agent install_agent_service
  step greenlight greenlight
elif [[ "${BOOT_PATH}" = baked ]]; then
  step data-volume data_volume
  step identity identity_first_boot
  step verify verify_bigbluebutton
  step spool mount_spool
  step agent install_agent_service
else
  # bare and bake: the full install, with a placeholder certificate (bbb-install -d).
  step data-volume data_volume
  step apt-wait quiet_apt
  step placeholder-certificate placeholder_certificate
  step bbb-install install_bigbluebutton
  restore_apt_timers
  step spool mount_spool
  step post-publish-hook install_post_publish_hook
  step identity-unit identity_unit
  if [[ "${BOOT_PATH}" = bake ]]; then
    VERIFY_CA="${CERT_DIR}/fullchain.pem"
    step verify verify_bigbluebutton
    step agent install_agent_service
    step clean bake_clean
    bake_finish
  fi
  step identity identity_first_boot
  step verify verify_bigbluebutton
  step agent install_agent_service
fi
touch "${STATE_DIR}/done"
ready
