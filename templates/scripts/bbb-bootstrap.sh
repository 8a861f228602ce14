#!/usr/bin/env bash
# bbb-bootstrap.sh: turn a fresh Ubuntu 22.04 instance into a BigBlueButton server.
#
# Run once, as root, from the launch template's user data (bbb-servers.yaml):
#   1. registers this instance's public address in Route 53
#      (scalable mode: bbb-<instance id>.<domain>; single mode: <domain> itself),
#   2. installs BigBlueButton with the pinned bbb-install script; without -c it sets
#      up coturn (TURN) on this host too, reached through haproxy on 443,
#   3. single mode only: creates the Greenlight administrator from the login secret,
#   4. signals the Auto Scaling group's CreationPolicy: SUCCESS, or FAILURE on any error.
#
# Needs: the AWS CLI, curl and python3, and an instance role allowing
# route53:ChangeResourceRecordSets/GetChange, cloudformation:SignalResource and
# (single mode) secretsmanager:GetSecretValue.
set -euo pipefail

# ---- pinned versions -------------------------------------------------------------
# BigBlueButton 3.0 on Ubuntu 22.04 (jammy). The installer is taken from its release
# branch; set BBB_INSTALL_SHA256 to also require an exact script.
readonly BBB_VERSION="jammy-300"
readonly BBB_INSTALL_REF="v3.0.x-release"
readonly BBB_INSTALL_URL="https://raw.githubusercontent.com/bigbluebutton/bbb-install/${BBB_INSTALL_REF}/bbb-install.sh"
readonly BBB_INSTALL_SHA256="${BBB_INSTALL_SHA256:-}"

readonly LOG_FILE=/var/log/bbb-bootstrap.log
readonly STATE_DIR=/var/lib/bbb-bootstrap
readonly IMDS=http://169.254.169.254/latest

usage() {
  cat >&2 <<'EOF'
usage: bbb-bootstrap.sh --region R --stack-name S --resource LOGICAL_ID --mode scalable|single
                        --domain D --hosted-zone Z --email E [--admin-secret ARN]
EOF
  exit 2
}

log() { printf '%s bbb-bootstrap: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }
die() { log "ERROR: $*"; exit 1; }

REGION="" STACK_NAME="" RESOURCE="" MODE="" DOMAIN="" HOSTED_ZONE="" EMAIL="" ADMIN_SECRET=""
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || usage
  case "$1" in
    --region) REGION=$2 ;;
    --stack-name) STACK_NAME=$2 ;;
    --resource) RESOURCE=$2 ;;
    --mode) MODE=$2 ;;
    --domain) DOMAIN=$2 ;;
    --hosted-zone) HOSTED_ZONE=$2 ;;
    --email) EMAIL=$2 ;;
    --admin-secret) ADMIN_SECRET=$2 ;;
    *) usage ;;
  esac
  shift 2
done
for required in REGION STACK_NAME RESOURCE MODE DOMAIN HOSTED_ZONE EMAIL; do
  [ -n "${!required}" ] || usage
done
case "$MODE" in
  scalable) ;;
  single) [ -n "$ADMIN_SECRET" ] || die "single mode needs --admin-secret" ;;
  *) usage ;;
esac
[[ "$DOMAIN" =~ ^[a-z0-9.-]+$ ]] || die "invalid domain: $DOMAIN"
[[ "$HOSTED_ZONE" =~ ^Z[A-Z0-9]+$ ]] || die "invalid hosted zone: $HOSTED_ZONE"

mkdir -p "$STATE_DIR"
exec > >(tee -a "$LOG_FILE") 2>&1
export DEBIAN_FRONTEND=noninteractive AWS_DEFAULT_REGION="$REGION"

# ---- instance metadata (IMDSv2) --------------------------------------------------
imds() {
  local token
  token=$(curl -fsS -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 300" "$IMDS/api/token")
  curl -fsS -H "X-aws-ec2-metadata-token: $token" "$IMDS/meta-data/$1"
}

INSTANCE_ID=$(imds instance-id)
readonly INSTANCE_ID

# ---- CloudFormation signal ------------------------------------------------------
SIGNALLED=false
signal() {
  log "signalling $1 to $STACK_NAME/$RESOURCE"
  aws cloudformation signal-resource --stack-name "$STACK_NAME" --logical-resource-id "$RESOURCE" \
    --unique-id "$INSTANCE_ID" --status "$1"
  SIGNALLED=true
}
on_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ "$SIGNALLED" = false ]; then
    log "failed with exit code $rc (details in $LOG_FILE)"
    signal FAILURE || log "could not signal FAILURE"
  fi
}
trap on_exit EXIT

PUBLIC_IP=$(imds public-ipv4) || die "this instance has no public IPv4 address"
LOCAL_IP=$(imds local-ipv4)
[[ "$PUBLIC_IP" =~ ^[0-9]+(\.[0-9]+){3}$ ]] || die "unexpected public address: $PUBLIC_IP"

if [ "$MODE" = single ]; then
  HOST_NAME="$DOMAIN"
else
  HOST_NAME="bbb-${INSTANCE_ID#i-}.${DOMAIN}"
fi
log "instance $INSTANCE_ID: $HOST_NAME -> $PUBLIC_IP (private $LOCAL_IP), mode $MODE"

# ---- 1. Route 53 ------------------------------------------------------------------
register_host_name() {
  local batch change_id
  batch=$(printf '{"Comment":"bbbctl: %s","Changes":[{"Action":"UPSERT","ResourceRecordSet":{"Name":"%s","Type":"A","TTL":60,"ResourceRecords":[{"Value":"%s"}]}}]}' \
    "$INSTANCE_ID" "$HOST_NAME" "$PUBLIC_IP")
  change_id=$(aws route53 change-resource-record-sets --hosted-zone-id "$HOSTED_ZONE" \
    --change-batch "$batch" --query ChangeInfo.Id --output text)
  log "waiting for Route 53 change $change_id"
  aws route53 wait resource-record-sets-changed --id "$change_id"
}
register_host_name

# ---- 2. BigBlueButton ------------------------------------------------------------
install_bigbluebutton() {
  local installer="$STATE_DIR/bbb-install.sh"
  local -a options=(-v "$BBB_VERSION" -s "$HOST_NAME" -e "$EMAIL")
  if [ "$MODE" = single ]; then
    options+=(-g)
  fi

  curl -fsSL --retry 5 -o "$installer" "$BBB_INSTALL_URL"
  if [ -n "$BBB_INSTALL_SHA256" ]; then
    echo "$BBB_INSTALL_SHA256  $installer" | sha256sum -c - || die "bbb-install.sh checksum mismatch"
  fi

  # bbb-install reads the public address from the metadata service without an IMDSv2
  # token, which this launch template refuses; hand it both addresses instead (it
  # skips its own detection when IP is set).
  log "running bbb-install ($BBB_INSTALL_REF) ${options[*]}"
  IP="$PUBLIC_IP" INTERNAL_IP="$LOCAL_IP" bash "$installer" "${options[@]}"
}
install_bigbluebutton

# ---- 3. Greenlight administrator (single mode) -----------------------------------
create_greenlight_admin() {
  local secret admin_email admin_password attempt
  secret=$(aws secretsmanager get-secret-value --secret-id "$ADMIN_SECRET" --query SecretString --output text)
  admin_email=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["username"])' <<<"$secret")
  admin_password=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["password"])' <<<"$secret")
  # Greenlight migrates its database on first start; retry until it accepts the task.
  for attempt in $(seq 1 30); do
    if ADMIN_EMAIL="$admin_email" ADMIN_PASSWORD="$admin_password" \
      docker exec -e ADMIN_EMAIL -e ADMIN_PASSWORD greenlight-v3 \
      sh -c 'bundle exec rake "admin:create[Administrator,$ADMIN_EMAIL,$ADMIN_PASSWORD]"'; then
      log "Greenlight administrator $admin_email created"
      return 0
    fi
    log "Greenlight not ready yet (attempt $attempt)"
    sleep 10
  done
  die "could not create the Greenlight administrator"
}
if [ "$MODE" = single ]; then
  create_greenlight_admin
fi

# ---- 4. done ---------------------------------------------------------------------
touch "$STATE_DIR/done"
signal SUCCESS
log "BigBlueButton is ready at https://$HOST_NAME"
