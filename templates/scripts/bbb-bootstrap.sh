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
#   2. scalable mode: registers this instance's public address in Route 53 as
#      bbb-<instance id>.<domain> and installs bbb-dns.service, which writes that
#      record at every boot and deletes it at every shutdown; single mode: associates the deployment's Elastic IP
#      with this instance - <domain> is a record of the root stack on that address
#      (root.yaml, DomainRecord), so destroy and a mode switch remove it,
#   3. installs BigBlueButton with the pinned bbb-install script (by commit; its sha256
#      is checked before it runs), which also gets the
#      Let's Encrypt certificate; without -c it sets up coturn (TURN) on this host too,
#      reached through haproxy on 443,
#   4. scalable mode: mounts the recordings spool on EFS (amazon-efs-utils: TLS + IAM,
#      through the spool access point), installs Scalelite's post-publish hook, and
#      installs bbb-scalelite.service, which registers this server with Scalelite's
#      servers API (signed with the load-balancer secret; retried until Scalelite
#      answers, so the servers never wait for the front end) and cordons it on
#      shutdown: no new meetings, running ones end normally;
#      bbb-scalelite-protect.service, which holds the group's scale-in protection while
#      a meeting runs here; and
#      bbb-scalelite-drain.service, which, once the Auto Scaling group starts to
#      terminate this server, cordons it, waits for its meetings to end, removes it
#      from Scalelite and its record from Route 53, and then completes the group's
#      bbb-drain lifecycle action (both run bbb-scalelite, templates/scripts/
#      bbb-scalelite.sh, which the user data puts in /usr/local/sbin),
#   5. single mode: sets up Greenlight's mail through Amazon SES (SMTP login from its
#      secret, the password derived as AWS documents) and creates the Greenlight
#      administrator from the login secret,
#   6. signals the Auto Scaling group's CreationPolicy: SUCCESS, or FAILURE on any error.
#
# Needs: the AWS CLI, curl and python3, and an instance role allowing
# route53:ChangeResourceRecordSets/GetChange (scalable mode),
# ec2:AssociateAddress/DescribeAddresses (single mode), cloudformation:SignalResource,
# secretsmanager:GetSecretValue (single mode: admin login and SMTP login; scalable mode: the
# load-balancer secret) and, in scalable mode, elasticfilesystem:ClientMount/ClientWrite.
set -euo pipefail

# ---- pinned versions -------------------------------------------------------------
# BigBlueButton 3.0 on Ubuntu 22.04 (jammy). The installer is fetched by commit, not by
# branch, and must match its sha256 before it runs: a branch that moves must not change
# what a new server installs (a floating branch broke installs in late 2025).
# Commit: head of bigbluebutton/bbb-install's v3.0.x-release branch in the snapshot read
# for this pin (2024-02-23, "Merge pull request #732"); sha256 of its bbb-install.sh.
# To move the pin, take a newer commit of that branch and its file's sha256.
readonly BBB_VERSION="jammy-300"
readonly BBB_INSTALL_COMMIT="26ce2d16c2a82ef962d685525b0c20bb89d4d151"
readonly BBB_INSTALL_SHA256="9654ba2c4470b7e4a986c1bbf98544c7b3bf509314f1e8b217c7ef8e029186c2"
readonly BBB_INSTALL_URL="https://raw.githubusercontent.com/bigbluebutton/bbb-install/${BBB_INSTALL_COMMIT}/bbb-install.sh"
# amazon-efs-utils (mount helper with TLS and IAM), built as a .deb from this tag: the
# last release that needs no Rust toolchain to build.
readonly EFS_UTILS_REF="v1.36.0"
# Scalelite's post-publish hook, from the Scalelite release whose images the front end
# runs (BBBScaleliteImageTag's default; bigbluebutton/scalelite_post_publish.rb is the
# same file from v1.6.11 to v1.8.5).
readonly SCALELITE_REF="v1.8.5"
readonly SCALELITE_HOOK_URL="https://raw.githubusercontent.com/blindsidenetworks/scalelite/${SCALELITE_REF}/bigbluebutton/scalelite_post_publish.rb"

readonly DATA_DIR=/var/bigbluebutton
readonly SPOOL_DIR=/mnt/scalelite-recordings/var/bigbluebutton/spool
readonly SPOOL_GID=2000  # group scalelite-spool; owner of the spool access point's files

readonly SCALELITE_AGENT=/usr/local/sbin/bbb-scalelite
readonly LOG_SHIPPER=/usr/local/sbin/bbb-logship
readonly DNS_TTL=60  # also the agent's, which deletes the record with the same values

readonly LOG_FILE=/var/log/bbb-bootstrap.log
readonly STATE_DIR=/var/lib/bbb-bootstrap
readonly IMDS=http://169.254.169.254/latest

usage() {
  cat >&2 <<'EOF'
usage: bbb-bootstrap.sh --region R --stack-name S --resource LOGICAL_ID --mode scalable|single
                        --domain D --hosted-zone Z --email E [--admin-secret ARN]
                        [--smtp-secret ARN] [--data-volume VOLUME_ID]
                        [--address-allocation EIPALLOC_ID] [--log-group NAME]
                        [--efs FS_ID --spool-access-point FSAP_ID --lb-secret ARN]
EOF
  exit 2
}

# shellcheck disable=SC2312 # date with a fixed format does not fail in a way worth stopping for
log() { printf '%s bbb-bootstrap: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }
die() { log "ERROR: $*"; exit 1; }
# install_unit NAME: the systemd unit NAME.service from standard input, enabled and started.
install_unit() {
  cat >"/etc/systemd/system/$1.service"
  systemctl daemon-reload
  systemctl enable --now "$1.service"
}
# agent_unit NAME SUBCOMMAND DESCRIPTION: NAME.service running `bbb-scalelite SUBCOMMAND` (a
# loop), restarted if it stops, after bbb-scalelite.service; enabled and started.
agent_unit() {
  install_unit "$1" <<EOF
[Unit]
Description=$3
Wants=network-online.target
After=network-online.target bbb-scalelite.service

[Service]
Type=simple
ExecStart=/usr/local/sbin/bbb-scalelite $2
Restart=on-failure
RestartSec=30

[Install]
WantedBy=multi-user.target
EOF
}

REGION="" STACK_NAME="" RESOURCE="" MODE="" DOMAIN="" HOSTED_ZONE="" EMAIL="" ADMIN_SECRET=""
SMTP_SECRET="" DATA_VOLUME="" EFS_ID="" SPOOL_AP="" LB_SECRET="" ALLOCATION_ID="" LOG_GROUP=""
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
    --admin-secret) ADMIN_SECRET=$2 ;;
    --smtp-secret) SMTP_SECRET=$2 ;;
    --data-volume) DATA_VOLUME=$2 ;;
    --efs) EFS_ID=$2 ;;
    --spool-access-point) SPOOL_AP=$2 ;;
    --lb-secret) LB_SECRET=$2 ;;
    --address-allocation) ALLOCATION_ID=$2 ;;
    --log-group) LOG_GROUP=$2 ;;
    *) usage ;;
  esac
  shift 2
done
for required in REGION STACK_NAME RESOURCE MODE DOMAIN HOSTED_ZONE EMAIL; do
  [[ -n "${!required}" ]] || usage
done
case "${MODE}" in
  scalable)
    if [[ -z "${EFS_ID}" ]] || [[ -z "${SPOOL_AP}" ]] || [[ -z "${LB_SECRET}" ]]; then
      die "scalable mode needs --efs, --spool-access-point and --lb-secret"
    fi
    [[ "${EFS_ID}" =~ ^fs-[0-9a-f]+$ ]] || die "invalid file system id: ${EFS_ID}"
    [[ "${SPOOL_AP}" =~ ^fsap-[0-9a-f]+$ ]] || die "invalid access point id: ${SPOOL_AP}"
    ;;
  single)
    if [[ -z "${ADMIN_SECRET}" ]] || [[ -z "${SMTP_SECRET}" ]] || [[ -z "${ALLOCATION_ID}" ]]; then
      die "single mode needs --admin-secret, --smtp-secret and --address-allocation"
    fi
    [[ "${ALLOCATION_ID}" =~ ^eipalloc-[0-9a-f]+$ ]] || die "invalid Elastic IP allocation id: ${ALLOCATION_ID}"
    ;;
  *) usage ;;
esac
[[ "${DOMAIN}" =~ ^[a-z0-9.-]+$ ]] || die "invalid domain: ${DOMAIN}"
[[ -z "${DATA_VOLUME}" ]] || [[ "${DATA_VOLUME}" =~ ^vol-[0-9a-f]+$ ]] || die "invalid volume id: ${DATA_VOLUME}"
[[ "${HOSTED_ZONE}" =~ ^[A-Z0-9]+$ ]] || die "invalid hosted zone: ${HOSTED_ZONE}"

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

# ---- CloudFormation signal ------------------------------------------------------
SIGNALLED=false
signal() {
  log "signalling $1 to ${STACK_NAME}/${RESOURCE}"
  aws cloudformation signal-resource --stack-name "${STACK_NAME}" --logical-resource-id "${RESOURCE}" \
    --unique-id "${INSTANCE_ID}" --status "$1"
  SIGNALLED=true
}
on_exit() {
  local rc=$?
  if [[ "${rc}" -ne 0 ]] && [[ "${SIGNALLED}" = false ]]; then
    log "failed with exit code ${rc} (details in ${LOG_FILE}; CloudWatch Logs group ${LOG_GROUP:-(none)}, stream ${INSTANCE_ID})"
    flush_log
    # shellcheck disable=SC2310 # its failure is handled right here
    signal FAILURE || log "could not signal FAILURE"
  fi
}
trap on_exit EXIT
start_log_shipping

# shellcheck disable=SC2310 # its failure is handled right here
PUBLIC_IP=$(imds public-ipv4) || die "this instance has no public IPv4 address"
LOCAL_IP=$(imds local-ipv4)
[[ "${PUBLIC_IP}" =~ ^[0-9]+(\.[0-9]+){3}$ ]] || die "unexpected public address: ${PUBLIC_IP}"

if [[ "${MODE}" = single ]]; then
  HOST_NAME="${DOMAIN}"
else
  HOST_NAME="bbb-${INSTANCE_ID#i-}.${DOMAIN}"
fi
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
  if findmnt -n "${DATA_DIR}" >/dev/null; then
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
if [[ -n "${DATA_VOLUME}" ]]; then
  attach_data_volume
fi
mount_data_volume
if [[ -n "${DATA_VOLUME}" ]]; then
  keep_on_data_volume /root/greenlight-v3
  keep_on_data_volume /etc/letsencrypt
fi

# ---- 2. host name ------------------------------------------------------------------
# Scalable mode: this server's own record bbb-<id>.<domain>, deleted again by its drain
# (bbb-scalelite). Single mode: the record of <domain> is CloudFormation's, on the
# deployment's Elastic IP; this server takes that address.
register_host_name() {
  local batch change_id
  batch=$(printf '{"Comment":"bbbctl: %s","Changes":[{"Action":"UPSERT","ResourceRecordSet":{"Name":"%s","Type":"A","TTL":%s,"ResourceRecords":[{"Value":"%s"}]}}]}' \
    "${INSTANCE_ID}" "${HOST_NAME}" "${DNS_TTL}" "${PUBLIC_IP}")
  change_id=$(aws route53 change-resource-record-sets --hosted-zone-id "${HOSTED_ZONE}" \
    --change-batch "${batch}" --query ChangeInfo.Id --output text)
  log "waiting for Route 53 change ${change_id}"
  aws route53 wait resource-record-sets-changed --id "${change_id}"
}
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
# bbb-dns.service deletes the record at every shutdown (and writes it again at boot),
# so a server that is terminated without a drain - a failed bootstrap's rollback, the
# stack's deletion - takes its name with it.
install_dns_service() {
  [[ -x "${SCALELITE_AGENT}" ]] || die "${SCALELITE_AGENT} is missing (the user data fetches it)"
  cat >/etc/default/bbb-scalelite <<EOF
AWS_DEFAULT_REGION=${REGION}
SCALELITE_URL=https://scalelite.${DOMAIN}
SERVER_URL=https://${HOST_NAME}/bigbluebutton/api/
LB_SECRET_ARN=${LB_SECRET}
STATE_FILE=${STATE_DIR}/scalelite-server-id
HOSTED_ZONE=${HOSTED_ZONE}
HOST_NAME=${HOST_NAME}
DNS_TTL=${DNS_TTL}
EOF
  install_unit bbb-dns <<'EOF'
[Unit]
Description=This BigBlueButton server's bbb-<id> DNS record: written at boot, deleted at shutdown
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/bbb-scalelite dns-register
ExecStop=/usr/local/sbin/bbb-scalelite dns-delete
TimeoutStopSec=60

[Install]
WantedBy=multi-user.target
EOF
}
if [[ "${MODE}" = single ]]; then
  take_elastic_ip
else
  install_dns_service
  register_host_name
fi

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

install_bigbluebutton() {
  local installer="${STATE_DIR}/bbb-install.sh" actual
  local -a options=(-v "${BBB_VERSION}" -s "${HOST_NAME}" -e "${EMAIL}")
  if [[ "${MODE}" = single ]]; then
    options+=(-g)
    install_compose_shim /usr/local/bin/docker-compose
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
  log "running bbb-install (${BBB_INSTALL_COMMIT}) ${options[*]}"
  IP="${PUBLIC_IP}" INTERNAL_IP="${LOCAL_IP}" bash "${installer}" "${options[@]}"
}
install_bigbluebutton

# ---- 4. Scalelite: recordings spool on EFS, post-publish hook, registration ------
mount_spool() {
  local build="${STATE_DIR}/efs-utils" attempt
  if ! command -v mount.efs >/dev/null 2>&1; then
    apt_install git binutils stunnel4 nfs-common
    rm -rf "${build}"
    git clone --quiet --depth 1 --branch "${EFS_UTILS_REF}" https://github.com/aws/efs-utils "${build}"
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
  local scripts=/usr/local/bigbluebutton/core/scripts
  getent group scalelite-spool >/dev/null || groupadd -g "${SPOOL_GID}" scalelite-spool
  usermod -a -G scalelite-spool bigbluebutton
  mkdir -p "${scripts}/post_publish"
  curl -fsSL --retry 5 -o "${scripts}/post_publish/scalelite_post_publish.rb" "${SCALELITE_HOOK_URL}"
  cat >"${scripts}/scalelite.yml" <<EOF
work_dir: /var/bigbluebutton/recording/scalelite
spool_dir: ${SPOOL_DIR}
EOF
  log "Scalelite post-publish hook ${SCALELITE_REF} installed"
}

# bbb-scalelite (templates/scripts/bbb-scalelite.sh, fetched by the user data next to
# this script) registers this server with Scalelite (ExecStart, retried until Scalelite
# answers) and cordons it on shutdown (ExecStop): Scalelite sends it no new meetings,
# the running ones are not cut off as a panic would. Its drain (watch) removes the
# server from Scalelite and its record from Route 53 before the group terminates it.
install_scalelite_service() {
  cat >/etc/systemd/system/bbb-scalelite.service <<'EOF'
[Unit]
Description=Register this BigBlueButton server with Scalelite; cordon it on shutdown
Wants=network-online.target
After=network-online.target nginx.service

[Service]
Type=oneshot
RemainAfterExit=yes
TimeoutStartSec=infinity
TimeoutStopSec=60
ExecStart=/usr/local/sbin/bbb-scalelite register
ExecStop=/usr/local/sbin/bbb-scalelite cordon
# register retries by itself; this covers anything that still makes it exit non-zero.
Restart=on-failure
RestartSec=30

[Install]
WantedBy=multi-user.target
EOF
  agent_unit bbb-scalelite-drain watch \
    "Drain this BigBlueButton server (cordon, wait for meetings) when its Auto Scaling group terminates it"
  # While a meeting runs here, whatever scales the group in picks another server.
  agent_unit bbb-scalelite-protect protect \
    "Hold the Auto Scaling group's scale-in protection while a meeting runs on this BigBlueButton server"
  systemctl enable bbb-scalelite.service
  # Do not wait: the front end may still be on its way (the servers never wait for it).
  systemctl start --no-block bbb-scalelite.service
  log "bbb-scalelite.service started (registers with https://scalelite.${DOMAIN})"
}

if [[ "${MODE}" = scalable ]]; then
  mount_spool
  install_post_publish_hook
  install_scalelite_service
fi

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
  # Recreates the Greenlight container with the new environment (the way bbb-install starts it).
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
if [[ "${MODE}" = single ]]; then
  configure_greenlight_mail
  create_greenlight_admin
fi

# ---- 6. done ---------------------------------------------------------------------
touch "${STATE_DIR}/done"
log "BigBlueButton is ready at https://${HOST_NAME}"
flush_log
signal SUCCESS
