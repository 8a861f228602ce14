#!/usr/bin/env bash
# bbb-identity: what makes a scalable BigBlueButton server itself, re-applied at every boot.
#
#   bbb-identity               a later boot (bbb-identity.service, ordered before the services
#                              whose configuration it writes): path "restart"; writes this
#                              boot's state (/run/bbbctl/boot) and the BOOT line
#   bbb-identity --first-boot  called by bbb-bootstrap.sh on the first boot of every path but
#                              bake; with /etc/bbbctl/baked.json (a server from a baked image)
#                              it also makes this server's own secrets, once per instance
#   bbb-identity refresh-cert  the fleet certificate again (bbb-cert-refresh.timer, hourly):
#                              installed and haproxy reloaded only when it changed
#   bbb-identity install       writes and enables bbb-identity.service and bbb-cert-refresh.timer
#
# Exit 0: every place right and checked; non-zero: failed, the last log line says why.
#
# Where BigBlueButton 3.0 keeps this server's name (H), public address (P) and private
# address (L), as bbb-install (the pinned commit, bbb-install.sh) and the packages write them:
#   /opt/freeswitch/etc/freeswitch/vars.xml       external_rtp_ip=P, external_sip_ip=P
#                                                 (bbb-install check_nat), local_ip_v4=L (the
#                                                 freeswitch package; bbb-conf --check compares
#                                                 it with the default route's address)
#   .../sip_profiles/external.xml                 ws-binding P:5066, wss-binding P:7443
#                                                 (install_ssl); ext-rtp-ip/ext-sip-ip refer to
#                                                 the vars ($${external_rtp_ip}), checked only
#   /usr/share/bigbluebutton/nginx/sip.nginx      proxy_pass http://P:5066;
#   /lib/systemd/system/dummy-nic.service         ExecStart=/sbin/ip addr add P dev lo, and P on
#                                                 lo now (FreeSWITCH binds to P); an old public
#                                                 address left on lo is taken off
#   /etc/bigbluebutton/bbb-webrtc-sfu/production.yml  freeswitch.ip=P, freeswitch.sip_ip=P,
#                                                 mediasoup.webrtc.listenIps[0].announcedIp=P,
#                                                 mediasoup.plainRtp.listenIp.announcedIp=P
#   /etc/turnserver.conf                          listening-ip=L, relay-ip=L, realm=H,
#                                                 allowed-peer-ip=P then =L, static-auth-secret
#                                                 (install_coturn writes them only over the stock
#                                                 file: a re-run of bbb-install never rewrites them)
#   /etc/haproxy/haproxy.cfg                      backend turn: server localhost L:3478
#   /etc/iptables/rules.v4                        nat OUTPUT -s L -d P -p udp -j DNAT
#                                                 --to-destination L (replaced, never appended;
#                                                 the nat table loaded again when it changed)
#   /etc/bigbluebutton/bbb-web.properties         bigbluebutton.web.serverURL=https://H, securitySalt
#   /etc/bigbluebutton/bbb-apps-akka.conf         bbbWebAPI="https://H/bigbluebutton/api",
#                                                 sharedSecret (bbb-conf --setip / --setsecret)
#   /etc/bigbluebutton/turn-stun-servers.xml      turn:H:3478, turns:H:443?transport=tcp, the
#                                                 TURN secret (configure_coturn)
#   /usr/local/bigbluebutton/core/scripts/bigbluebutton.yml  playback_host: H
#   /etc/nginx/sites-available/bigbluebutton      server_name H; (both server blocks)
#   HTML5 settings (/usr/share/bigbluebutton/html5-client/private/config/settings.yml and
#   /etc/bigbluebutton/bbb-html5.yml)             wss://H/bbb-webrtc-sfu, https://H/pad, where set
#   the certificate                               /local/certs/fullchain.pem and privkey.pem (the
#                                                 layout of bbb-install -d), linked from
#                                                 /etc/letsencrypt/live/H/; /etc/haproxy/certbundle.pem
#                                                 = fullchain, an empty line, key (haproxy
#                                                 terminates TLS on 443; nginx listens on
#                                                 127.0.0.1:81/82 without TLS and reads no
#                                                 certificate in this layout)
# Each is rewritten only where its value differs: a second run changes nothing. Then only
# what changed is reloaded (a running service reloaded or restarted, a failed one started
# again, one not started yet left to start after this), and everything is read back.
#
# Settings: /etc/bbbctl/server.env (KEY=value lines, read as data, never sourced): MODE,
# REGION, HOST_NAME, FLEET_DOMAIN, CERT_SECRET (the FleetCertificate secret's ARN).
# Log: /var/log/bbb-bootstrap.log ("<UTC> bbb-identity: ..."; STEP and BOOT lines as the
# bootstrap's). Never logs a secret or a key.
#
# Test seams (unset in production): BBB_IDENTITY_ROOT, a directory every path above is
# taken below; BBB_IDENTITY_CERT_WAIT and BBB_IDENTITY_CERT_POLL, seconds to wait for a
# certificate in the secret and between looks (600 and 15).
set -euo pipefail

readonly ROOT=${BBB_IDENTITY_ROOT:-}
readonly CERT_WAIT=${BBB_IDENTITY_CERT_WAIT:-600}
readonly CERT_POLL=${BBB_IDENTITY_CERT_POLL:-15}
readonly IMDS=http://169.254.169.254/latest
readonly SELF=/usr/local/sbin/bbb-identity

readonly CONFIG=${ROOT}/etc/bbbctl/server.env
readonly BAKED=${ROOT}/etc/bbbctl/baked.json
readonly LOG_FILE=${ROOT}/var/log/bbb-bootstrap.log
readonly STATE_FILE=${ROOT}/run/bbbctl/boot
readonly LIB_DIR=${ROOT}/var/lib/bbbctl
readonly SECRETS_MARK=${LIB_DIR}/identity-secrets

readonly FS_VARS=${ROOT}/opt/freeswitch/etc/freeswitch/vars.xml
readonly FS_EXTERNAL=${ROOT}/opt/freeswitch/etc/freeswitch/sip_profiles/external.xml
readonly SIP_NGINX=${ROOT}/usr/share/bigbluebutton/nginx/sip.nginx
readonly DUMMY_NIC=${ROOT}/lib/systemd/system/dummy-nic.service
readonly SFU=${ROOT}/etc/bigbluebutton/bbb-webrtc-sfu/production.yml
readonly TURN_CONF=${ROOT}/etc/turnserver.conf
readonly HAPROXY_CFG=${ROOT}/etc/haproxy/haproxy.cfg
readonly BUNDLE=${ROOT}/etc/haproxy/certbundle.pem
readonly RULES=${ROOT}/etc/iptables/rules.v4
readonly WEB_PROPS=${ROOT}/etc/bigbluebutton/bbb-web.properties
readonly AKKA=${ROOT}/etc/bigbluebutton/bbb-apps-akka.conf
readonly TURN_XML=${ROOT}/etc/bigbluebutton/turn-stun-servers.xml
readonly RAP_YML=${ROOT}/usr/local/bigbluebutton/core/scripts/bigbluebutton.yml
readonly NGINX_SITE=${ROOT}/etc/nginx/sites-available/bigbluebutton
readonly HTML5_DEFAULT=${ROOT}/usr/share/bigbluebutton/html5-client/private/config/settings.yml
readonly HTML5_ETC=${ROOT}/etc/bigbluebutton/bbb-html5.yml
readonly CERT_DIR=${ROOT}/local/certs
readonly LIVE_DIR=${ROOT}/etc/letsencrypt/live
readonly UNIT_DIR=${ROOT}/etc/systemd/system
# The builder's name (bbb-bootstrap.sh PLACEHOLDER_HOST) and where BigBlueButton keeps its
# settings: on a baked image's first boot, a file there still naming the builder is a place
# this script does not know (a BigBlueButton release that writes the name somewhere new).
readonly BUILDER_HOST=bbb-baked.invalid
readonly SETTINGS_DIRS=("${ROOT}/etc/bigbluebutton" "${ROOT}/usr/share/bigbluebutton/html5-client/private/config"
  "${ROOT}/usr/local/bigbluebutton/core/scripts" "${ROOT}/etc/nginx" "${ROOT}/usr/share/bigbluebutton/nginx"
  "${ROOT}/etc/haproxy" "${ROOT}/etc/turnserver.conf" "${ROOT}/opt/freeswitch/etc/freeswitch")

STARTED=$(date +%s.%N)
readonly STARTED

# ---- log ---------------------------------------------------------------------------
# To the boot log; to standard error too when that is a terminal or the journal (run by
# systemd), not when it is bbb-bootstrap's own log pipe (the line would be there twice).
ECHO=false
if [[ -t 2 ]]; then
  ECHO=true
elif [[ -n "${JOURNAL_STREAM:-}" ]]; then
  # shellcheck disable=SC2312 # no stat: not the journal
  [[ "$(stat -L -c '%d:%i' /proc/self/fd/2 2>/dev/null || true)" != "${JOURNAL_STREAM}" ]] || ECHO=true
fi
log() {
  local line
  # shellcheck disable=SC2312 # date with a fixed format does not fail in a way worth stopping for
  line="$(date -u +%Y-%m-%dT%H:%M:%SZ) bbb-identity: $*"
  mkdir -p "${LOG_FILE%/*}"
  printf '%s\n' "${line}" >>"${LOG_FILE}"
  [[ "${ECHO}" != true ]] || printf '%s\n' "${line}" >&2
}
PATH_NAME=""
die() {
  log "FAILED $*"
  [[ -z "${PATH_NAME}" ]] || boot_state failed
  exit 1
}
# elapsed SINCE: seconds from SINCE (date +%s.%N) to now, one decimal.
elapsed() {
  local now
  now=$(date +%s.%N)
  awk -v a="$1" -v b="${now}" 'BEGIN { printf "%.1f", b - a }'
}
STEP_NAME="" STEP_START=""
step() {
  local took
  if [[ -n "${STEP_NAME}" ]]; then
    took=$(elapsed "${STEP_START}")
    log "STEP ${STEP_NAME} ${took}s"
  fi
  STEP_NAME=${1:-}
  STEP_START=$(date +%s.%N)
}
# boot_state STATE: /run/bbbctl/boot, "<state> <epoch of this boot's start> <path>".
boot_state() {
  local btime
  btime=$(awk '$1 == "btime" { print $2 }' /proc/stat 2>/dev/null) || btime=0
  mkdir -p "${STATE_FILE%/*}"
  printf '%s %s %s\n' "$1" "${btime:-0}" "${PATH_NAME}" >"${STATE_FILE}.new"
  mv -f "${STATE_FILE}.new" "${STATE_FILE}"
}

# ---- settings ------------------------------------------------------------------------
MODE="" REGION="" HOST_NAME="" FLEET_DOMAIN="" CERT_SECRET=""
read_config() {
  local key value
  [[ -f "${CONFIG}" ]] || die "${CONFIG} is missing (bbb-bootstrap.sh writes it)"
  while IFS='=' read -r key value; do
    case "${key}" in
      MODE | REGION | HOST_NAME | FLEET_DOMAIN | CERT_SECRET) printf -v "${key}" '%s' "${value}" ;;
      *) ;;
    esac
  done <"${CONFIG}"
  [[ "${MODE}" =~ ^(scalable|single)$ ]] || die "MODE in ${CONFIG} is not scalable or single: ${MODE@Q}"
  [[ "${MODE}" = scalable ]] || return 0
  [[ "${REGION}" =~ ^[a-z]{2}(-[a-z]+)+-[0-9]$ ]] || die "REGION in ${CONFIG} is not a region: ${REGION@Q}"
  [[ "${FLEET_DOMAIN}" =~ ^media\.[a-z0-9-]+(\.[a-z0-9-]+)+$ ]] ||
    die "FLEET_DOMAIN in ${CONFIG} is not media.<domain>: ${FLEET_DOMAIN@Q}"
  if [[ ! "${HOST_NAME}" =~ ^bbb-[0-9a-f]+\. ]] || [[ "${HOST_NAME#*.}" != "${FLEET_DOMAIN}" ]]; then
    die "HOST_NAME in ${CONFIG} is not bbb-<id>.${FLEET_DOMAIN}: ${HOST_NAME@Q}"
  fi
  [[ "${CERT_SECRET}" =~ ^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+$ ]] ||
    die "CERT_SECRET in ${CONFIG} is not a secret's ARN: ${CERT_SECRET@Q}"
  export AWS_DEFAULT_REGION=${REGION}
}

# ---- instance metadata (IMDSv2) ----------------------------------------------------------
imds() {
  local token
  token=$(curl -fsS --max-time 5 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 300" "${IMDS}/api/token") || return 1
  curl -fsS --max-time 5 -H "X-aws-ec2-metadata-token: ${token}" "${IMDS}/meta-data/$1"
}
INSTANCE_ID="" PUBLIC_IP="" LOCAL_IP=""
read_metadata() {
  local ip_re='^([0-9]{1,3}\.){3}[0-9]{1,3}$'
  # shellcheck disable=SC2310 # each failure is handled right here
  INSTANCE_ID=$(imds instance-id) || die "the instance metadata service did not answer (instance-id)"
  # shellcheck disable=SC2310
  PUBLIC_IP=$(imds public-ipv4) || die "this instance has no public IPv4 address (IMDS public-ipv4)"
  # shellcheck disable=SC2310
  LOCAL_IP=$(imds local-ipv4) || die "the instance metadata service did not answer (local-ipv4)"
  [[ "${INSTANCE_ID}" =~ ^i-[0-9a-f]+$ ]] || die "unexpected instance id: ${INSTANCE_ID@Q}"
  [[ "${PUBLIC_IP}" =~ ${ip_re} ]] || die "unexpected public address: ${PUBLIC_IP@Q}"
  [[ "${LOCAL_IP}" =~ ${ip_re} ]] || die "unexpected private address: ${LOCAL_IP@Q}"
  [[ "${HOST_NAME}" = "bbb-${INSTANCE_ID#i-}.${FLEET_DOMAIN}" ]] ||
    die "HOST_NAME ${HOST_NAME} is not this instance's name bbb-${INSTANCE_ID#i-}.${FLEET_DOMAIN}"
  log "instance ${INSTANCE_ID}: ${HOST_NAME}, public ${PUBLIC_IP}, private ${LOCAL_IP}"
}

# ---- places ----------------------------------------------------------------------------
# What changed, for the reloads: unit -> reload | restart; DAEMON_RELOAD for unit files.
declare -A ACTIONS=()
DAEMON_RELOAD=false NAT_CHANGED=false
# The checks: file, prefix, value ERE, suffix, expected value, secret (true|false) a line,
# separated by SEP (not whitespace: an empty field stays a field).
readonly SEP=$'\x1f'
CHECKS=""
declare -A TOUCHED=()

want() { # want UNIT reload|restart
  [[ -n "${1}" ]] || return 0
  [[ "${ACTIONS[$1]:-}" = restart ]] || ACTIONS[$1]=$2
}

# write_if_changed FILE NEWFILE: FILE gets NEWFILE's content (its owner and mode kept) when
# they differ; succeeds when it changed.
write_if_changed() {
  if cmp -s "$1" "$2"; then
    rm -f "$2"
    return 1
  fi
  cat "$2" >"$1"
  rm -f "$2"
  TOUCHED[$1]=1
}

# place FILE UNIT ACTION LABEL PREFIX VALUE SUFFIX NEW [secret|optional]...: on every line
# of FILE that is PREFIX, then VALUE, then SUFFIX (extended regular expressions without
# groups, "#" nowhere), the value becomes NEW. No such line: a failure (the install did not
# write what it should), unless "optional". NEW holds only [A-Za-z0-9.:-].
place() {
  local file=$1 unit=$2 action=$3 label=$4 prefix=$5 value=$6 suffix=$7 new=$8
  shift 8
  local secret=false optional=false flag current shown
  for flag in "$@"; do
    case "${flag}" in
      secret) secret=true ;;
      optional) optional=true ;;
      *) die "place: unknown flag ${flag}" ;;
    esac
  done
  [[ "${new}" =~ ^[A-Za-z0-9.:-]+$ ]] || die "place: refusing value for ${label}"
  if [[ ! -f "${file}" ]]; then
    [[ "${optional}" = true ]] && return 0
    die "${file#"${ROOT}"} is missing (${label})"
  fi
  current=$(sed -nE "s#^${prefix}(${value})${suffix}\$#\\1#p" "${file}")
  if [[ -z "${current}" ]] && ! grep -qE "^${prefix}${value}${suffix}\$" "${file}"; then
    [[ "${optional}" = true ]] && return 0
    die "${file#"${ROOT}"}: no ${label} to set"
  fi
  CHECKS+="${file}${SEP}${prefix}${SEP}${value}${SEP}${suffix}${SEP}${new}${SEP}${secret}"$'\n'
  current=$(sort -u <<<"${current}")
  [[ "${current}" != "${new}" ]] || return 0
  sed -E "s#^(${prefix})${value}(${suffix})\$#\\1${new}\\2#" "${file}" >"${file}.bbbctl-new"
  # shellcheck disable=SC2310 # "unchanged" is its failure
  write_if_changed "${file}" "${file}.bbbctl-new" || return 0
  shown="${current//$'\n'/,} -> ${new}"
  [[ "${secret}" = false ]] || shown="renewed"
  log "${file#"${ROOT}"}: ${label} ${shown}"
  want "${unit}" "${action}"
}

# yaml_edit get|set FILE PATH [VALUE]: the scalar at PATH (keys and list indexes joined by
# "."), found by indentation, only that line's value rewritten (quotes kept); exit 3 when
# there is no such key.
yaml_edit() {
  python3 - "$@" <<'PY'
import re, sys
mode, path, key_path = sys.argv[1], sys.argv[2], sys.argv[3].split(".")
value = sys.argv[4] if len(sys.argv) > 4 else None
with open(path, encoding="utf-8") as f:
    lines = f.read().split("\n")
stack, counters, found = [], {}, None
for n, line in enumerate(lines):
    m = re.match(r"^(\s*)(- )?([A-Za-z0-9_-]+):(\s*)(.*)$", line)
    if not m:
        continue
    indent = len(m.group(1))
    if m.group(2):
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = tuple(k for _, k in stack)
        counters[parent] = counters.get(parent, -1) + 1
        stack.append((indent, str(counters[parent])))
        indent += 2
    while stack and stack[-1][0] >= indent:
        stack.pop()
    stack.append((indent, m.group(3)))
    if [k for _, k in stack] == key_path:
        found = (n, m)
        break
if found is None:
    sys.exit(3)
n, m = found
raw = m.group(5)
comment = ""
c = re.search(r"\s+#.*$", raw)
if c and not raw.startswith(("'", '"')):
    raw, comment = raw[: c.start()], raw[c.start():]
quote = raw[0] if raw[:1] in ("'", '"') else ""
current = raw[1:-1] if quote and raw.endswith(quote) and len(raw) > 1 else raw
if mode == "get":
    print(current)
    sys.exit(0)
if current == value:
    sys.exit(0)
lines[n] = line = lines[n][: m.start(5)] + quote + value + quote + comment
with open(path + ".bbbctl-new", "w", encoding="utf-8") as f:
    f.write("\n".join(lines))
sys.exit(10)
PY
}

# yaml_place FILE UNIT ACTION PATH NEW
yaml_place() {
  local file=$1 unit=$2 action=$3 key=$4 new=$5 rc=0 current
  [[ -f "${file}" ]] || die "${file#"${ROOT}"} is missing (${key})"
  # shellcheck disable=SC2310 # its status is looked at right here
  current=$(yaml_edit get "${file}" "${key}") || rc=$?
  [[ "${rc}" -eq 0 ]] || die "${file#"${ROOT}"}: no ${key} to set"
  CHECKS+="${file}${SEP}yaml${SEP}${key}${SEP}${SEP}${new}${SEP}false"$'\n'
  [[ "${current}" != "${new}" ]] || return 0
  rc=0
  # shellcheck disable=SC2310 # 10 = written beside, looked at right here
  yaml_edit set "${file}" "${key}" "${new}" || rc=$?
  [[ "${rc}" -eq 10 ]] || die "${file#"${ROOT}"}: could not set ${key}"
  # shellcheck disable=SC2310 # "unchanged" is its failure
  write_if_changed "${file}" "${file}.bbbctl-new" || return 0
  log "${file#"${ROOT}"}: ${key} ${current} -> ${new}"
  want "${unit}" "${action}"
}

# allowed_peers: turnserver.conf's allowed-peer-ip lines are P, then L (install_coturn);
# any further one goes, a missing second one comes after the first.
allowed_peers() {
  local new=${TURN_CONF}.bbbctl-new
  [[ -f "${TURN_CONF}" ]] || die "/etc/turnserver.conf is missing"
  grep -q '^allowed-peer-ip=' "${TURN_CONF}" || die "/etc/turnserver.conf: no allowed-peer-ip to set"
  awk -v p="${PUBLIC_IP}" -v l="${LOCAL_IP}" '
    /^allowed-peer-ip=/ {
      n++
      if (n == 1) { print "allowed-peer-ip=" p; if (p == l) { done = 1 } ; next }
      if (n == 2 && !done) { print "allowed-peer-ip=" l; done = 1; next }
      next
    }
    { print }
    END { }' "${TURN_CONF}" >"${new}"
  if ! grep -qx "allowed-peer-ip=${LOCAL_IP}" "${new}"; then
    awk -v l="${LOCAL_IP}" '{ print } /^allowed-peer-ip=/ && !added { print "allowed-peer-ip=" l; added = 1 }' \
      "${new}" >"${new}.2"
    mv -f "${new}.2" "${new}"
  fi
  # shellcheck disable=SC2310 # "unchanged" is its failure
  if write_if_changed "${TURN_CONF}" "${new}"; then
    log "/etc/turnserver.conf: allowed-peer-ip ${PUBLIC_IP} and ${LOCAL_IP}"
    want coturn restart
  fi
}

# nat_rule: bbb-install's rule (iptables -t nat -A OUTPUT -p udp -s L -d P -j DNAT
# --to-destination L, saved by netfilter-persistent) as iptables-save writes it, the only
# such rule of the saved nat table: an old one is replaced, never kept beside it.
nat_rule_line() {
  printf -- '-A OUTPUT -s %s/32 -d %s/32 -p udp -j DNAT --to-destination %s' "${LOCAL_IP}" "${PUBLIC_IP}" "${LOCAL_IP}"
}
nat_rule() {
  local new=${RULES}.bbbctl-new rule
  rule=$(nat_rule_line)
  [[ -f "${RULES}" ]] || die "/etc/iptables/rules.v4 is missing (bbb-install saves the NAT rule there)"
  grep -qx '\*nat' "${RULES}" || die "/etc/iptables/rules.v4 has no nat table"
  awk -v rule="${rule}" '
    /^\*/ { table = $0 }
    table == "*nat" && /^-A OUTPUT .*-p udp -j DNAT --to-destination / { next }
    table == "*nat" && $0 == "COMMIT" { print rule; table = "" }
    { print }' "${RULES}" >"${new}"
  # shellcheck disable=SC2310 # "unchanged" is its failure
  if write_if_changed "${RULES}" "${new}"; then
    log "/etc/iptables/rules.v4: nat rule now ${rule}"
    NAT_CHANGED=true
  fi
}
apply_nat() {
  if [[ "${NAT_CHANGED}" = false ]] &&
    iptables -t nat -C OUTPUT -s "${LOCAL_IP}/32" -d "${PUBLIC_IP}/32" -p udp -j DNAT --to-destination "${LOCAL_IP}" 2>/dev/null; then
    return 0
  fi
  iptables-restore -T nat "${RULES}" || die "iptables-restore -T nat /etc/iptables/rules.v4 failed"
  log "nat table loaded from /etc/iptables/rules.v4"
}

# loopback: P on lo now (bbb-install check_nat: ip addr add P dev lo), and no other
# address but 127.0.0.0/8 there: an old public address, somebody else's now, would keep
# this host from reaching it.
loopback() {
  local addr listed
  listed=$(ip -4 -o addr show dev lo) || die "ip -4 addr show dev lo failed"
  while read -r addr; do
    [[ -n "${addr}" ]] || continue
    case "${addr}" in
      127.*) ;;
      "${PUBLIC_IP}/32") ;;
      *)
        ip addr del "${addr}" dev lo || die "could not take ${addr} off lo"
        log "lo: old address ${addr} taken off"
        ;;
    esac
  done <<<"$(awk '{ for (i = 1; i < NF; i++) if ($i == "inet") print $(i + 1) }' <<<"${listed}" || true)"
  if ! grep -q "inet ${PUBLIC_IP}/32 " <<<"${listed} "; then
    ip addr add "${PUBLIC_IP}/32" dev lo || die "could not add ${PUBLIC_IP} to lo"
    log "lo: ${PUBLIC_IP}/32 added"
  fi
}

apply_addresses() {
  local ip='[0-9.]*' host='[a-z0-9.-]*'
  # FreeSWITCH (restart: it reads vars.xml and its profiles when it starts).
  place "${FS_VARS}" freeswitch restart external_rtp_ip \
    '[[:space:]]*<X-PRE-PROCESS cmd="set" data="external_rtp_ip=' '[^"]*' '"[[:space:]]*/>.*' "${PUBLIC_IP}"
  place "${FS_VARS}" freeswitch restart external_sip_ip \
    '[[:space:]]*<X-PRE-PROCESS cmd="set" data="external_sip_ip=' '[^"]*' '"[[:space:]]*/>.*' "${PUBLIC_IP}"
  place "${FS_VARS}" freeswitch restart local_ip_v4 \
    '[[:space:]]*<X-PRE-PROCESS cmd="set" data="local_ip_v4=' '[^"]*' '"[[:space:]]*/>.*' "${LOCAL_IP}"
  place "${FS_EXTERNAL}" freeswitch restart ws-binding \
    '[[:space:]]*<param name="ws-binding" value="' "${ip}" ':5066"[[:space:]]*/>.*' "${PUBLIC_IP}"
  place "${FS_EXTERNAL}" freeswitch restart wss-binding \
    '[[:space:]]*<param name="wss-binding" value="' "${ip}" ':7443"[[:space:]]*/>.*' "${PUBLIC_IP}"
  check_fixed "${FS_EXTERNAL}" ext-rtp-ip '[[:space:]]*<param name="ext-rtp-ip" value="\$\$\{external_rtp_ip\}"[[:space:]]*/>.*'
  check_fixed "${FS_EXTERNAL}" ext-sip-ip '[[:space:]]*<param name="ext-sip-ip" value="\$\$\{external_sip_ip\}"[[:space:]]*/>.*'
  # nginx's proxy to FreeSWITCH's websocket (reload). Optional: later BigBlueButton packages
  # stop shipping this deprecated endpoint (bbb-html5's after-install removes the file).
  place "${SIP_NGINX}" nginx reload "sip proxy_pass" \
    '[[:space:]]*proxy_pass http://' "${ip}" ':5066;.*' "${PUBLIC_IP}" optional
  # The address on lo, for the next boots and now.
  place "${DUMMY_NIC}" "" "" "dummy-nic address" \
    'ExecStart=/sbin/ip addr add ' "${ip}" ' dev lo' "${PUBLIC_IP}"
  [[ -z "${TOUCHED[${DUMMY_NIC}]:-}" ]] || DAEMON_RELOAD=true
  loopback
  # bbb-webrtc-sfu (restart).
  yaml_place "${SFU}" bbb-webrtc-sfu restart freeswitch.ip "${PUBLIC_IP}"
  yaml_place "${SFU}" bbb-webrtc-sfu restart freeswitch.sip_ip "${PUBLIC_IP}"
  yaml_place "${SFU}" bbb-webrtc-sfu restart mediasoup.webrtc.listenIps.0.announcedIp "${PUBLIC_IP}"
  yaml_place "${SFU}" bbb-webrtc-sfu restart mediasoup.plainRtp.listenIp.announcedIp "${PUBLIC_IP}"
  # coturn (restart).
  place "${TURN_CONF}" coturn restart listening-ip 'listening-ip=' "${ip}" '' "${LOCAL_IP}"
  place "${TURN_CONF}" coturn restart relay-ip 'relay-ip=' "${ip}" '' "${LOCAL_IP}"
  place "${TURN_CONF}" coturn restart realm 'realm=' "${host}" '' "${HOST_NAME}"
  allowed_peers
  # haproxy's TURN backend (reload).
  place "${HAPROXY_CFG}" haproxy reload "TURN backend" \
    '[[:space:]]*server localhost ' "${ip}" ':3478.*' "${LOCAL_IP}"
  nat_rule
  # The host name (bbb-conf --setip's places, bbb-install's nginx site and TURN servers).
  place "${WEB_PROPS}" bbb-web restart serverURL 'bigbluebutton.web.serverURL=https://' "${host}" '' "${HOST_NAME}"
  place "${AKKA}" bbb-apps-akka restart bbbWebAPI \
    '[[:space:]]*bbbWebAPI[[:space:]]*=[[:space:]]*"https://' "${host}" '/bigbluebutton/api".*' "${HOST_NAME}" optional
  place "${TURN_XML}" bbb-web restart "turn server" \
    '[[:space:]]*<constructor-arg index="1" value="turn:' "${host}" ':3478"[[:space:]]*/>.*' "${HOST_NAME}"
  place "${TURN_XML}" bbb-web restart "turns server" \
    '[[:space:]]*<constructor-arg index="1" value="turns:' "${host}" ':443[?]transport=tcp"[[:space:]]*/>.*' "${HOST_NAME}"
  place "${RAP_YML}" "" "" playback_host 'playback_host: ' "${host}" '' "${HOST_NAME}"
  place "${NGINX_SITE}" nginx reload server_name '[[:space:]]*server_name ' "${host}" ';.*' "${HOST_NAME}"
  local settings
  for settings in "${HTML5_DEFAULT}" "${HTML5_ETC}"; do
    place "${settings}" bbb-apps-akka restart "webrtc-sfu URL" \
      "[[:space:]]*wsUrl:[[:space:]]*[\"']?wss://" "${host}" "/bbb-webrtc-sfu[\"']?[[:space:]]*" "${HOST_NAME}" optional
    place "${settings}" bbb-apps-akka restart "pads URL" \
      "[[:space:]]*url:[[:space:]]*[\"']?https://" "${host}" "/pad[\"']?[[:space:]]*" "${HOST_NAME}" optional
  done
}

# check_fixed FILE LABEL LINE-ERE: a line that must be there as it is (read only).
check_fixed() {
  [[ -f "$1" ]] || die "${1#"${ROOT}"} is missing (${2})"
  grep -qE "^$3\$" "$1" || die "${1#"${ROOT}"}: ${2} is not what bbb-install sets"
}

# ---- per-server secrets ---------------------------------------------------------------
# A baked image carries its builder's secrets; every server made from it would share
# them. Made new here, on the first boot of a server from a baked image (once per
# instance: a second --first-boot of the same instance keeps them):
#   securitySalt   the API's shared secret: whoever holds it runs meetings on the server
#                  (bbb-web.properties; bbb-apps-akka.conf's sharedSecret where bbb-conf
#                  --setsecret keeps it; bbb-agent reports it, the registrar checks it)
#   TURN secret    coturn's static-auth-secret: whoever holds it makes TURN credentials and
#                  relays through this server (turnserver.conf and turn-stun-servers.xml,
#                  from which bbb-web hands out credentials)
# Not renewed: FreeSWITCH's event socket password (event_socket.conf.xml listens on
# 127.0.0.1 only), and the other services' local secrets (reachable from this host only).
new_secret() {
  local secret
  secret=$(openssl rand -hex 32) || die "openssl rand failed"
  [[ "${secret}" =~ ^[0-9a-f]{64}$ ]] || die "openssl rand gave no secret"
  printf '%s' "${secret}"
}
SALT="" TURN_SECRET=""
renew_secrets() {
  if [[ "${FIRST_BOOT}" != true ]] || [[ ! -f "${BAKED}" ]]; then
    return 0
  fi
  if [[ "$(cat "${SECRETS_MARK}" 2>/dev/null || true)" = "${INSTANCE_ID}" ]]; then
    log "per-server secrets already made for ${INSTANCE_ID}: kept"
    return 0
  fi
  SALT=$(new_secret)
  TURN_SECRET=$(new_secret)
}
apply_secrets() {
  [[ -n "${SALT}" ]] || return 0
  place "${WEB_PROPS}" bbb-web restart securitySalt 'securitySalt=' '.*' '' "${SALT}" secret
  place "${AKKA}" bbb-apps-akka restart sharedSecret \
    '[[:space:]]*sharedSecret[[:space:]]*=[[:space:]]*"' '[^"]*' '".*' "${SALT}" secret optional
  place "${TURN_CONF}" coturn restart static-auth-secret 'static-auth-secret=' '.*' '' "${TURN_SECRET}" secret
  place "${TURN_XML}" bbb-web restart "TURN secret" \
    '[[:space:]]*<constructor-arg index="0" value="' '[^"]*' '"[[:space:]]*/>.*' "${TURN_SECRET}" secret
  mkdir -p "${LIB_DIR}"
  printf '%s\n' "${INSTANCE_ID}" >"${SECRETS_MARK}"
  log "per-server secrets made new: securitySalt, TURN static-auth-secret"
}

# ---- the fleet certificate ---------------------------------------------------------------
# fetch_certificate WAIT: the FleetCertificate secret's certificate into CERT_TMP
# (fullchain.pem, privkey.pem), waiting up to WAIT seconds while it has none yet.
CERT_TMP=""
fetch_certificate() {
  local wait=$1 waited=0 secret rc
  while true; do
    rc=0
    secret=$(aws secretsmanager get-secret-value --secret-id "${CERT_SECRET}" \
      --query SecretString --output text) || rc=$?
    if [[ "${rc}" -eq 0 ]]; then
      rc=0
      python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
if not isinstance(d, dict) or not d.get("certificate"):
    sys.exit(4)
names, host, fleet = d.get("names") or [], sys.argv[2], sys.argv[3]
if host not in names and "*." + fleet not in names:
    print("names %s do not cover %s" % (names, host), file=sys.stderr)
    sys.exit(5)
if not d.get("key"):
    print("no key", file=sys.stderr)
    sys.exit(5)
leaf, chain = d["certificate"].strip() + "\n", (d.get("chain") or "").strip()
with open(sys.argv[1] + "/fullchain.pem", "w") as f:
    f.write(leaf + (chain + "\n" if chain else ""))
with open(sys.argv[1] + "/privkey.pem", "w") as f:
    f.write(d["key"].strip() + "\n")
' "${CERT_TMP}" "${HOST_NAME}" "${FLEET_DOMAIN}" <<<"${secret}" || rc=$?
      case "${rc}" in
        0) return 0 ;;
        4) log "the fleet certificate secret has no certificate yet (${waited} s waited)" ;;
        *) die "the fleet certificate secret is not usable for ${HOST_NAME}" ;;
      esac
    else
      log "could not read the fleet certificate secret (${waited} s waited)"
    fi
    if [[ "${waited}" -ge "${wait}" ]]; then
      die "no certificate in the fleet certificate secret after ${waited} s (the issuer writes it; its log says why not)"
    fi
    sleep "${CERT_POLL}"
    waited=$((waited + CERT_POLL))
  done
}

# check_certificate DIR: the pair in DIR is a certificate for HOST_NAME, valid now, whose
# key is privkey.pem's.
check_certificate() {
  local dir=$1 cert_key key_key
  openssl x509 -in "${dir}/fullchain.pem" -noout -checkend 0 >/dev/null ||
    die "the fleet certificate has expired"
  openssl x509 -in "${dir}/fullchain.pem" -noout -checkhost "${HOST_NAME}" 2>/dev/null | grep -q ' does match ' ||
    die "the fleet certificate is not valid for ${HOST_NAME}"
  cert_key=$(openssl x509 -in "${dir}/fullchain.pem" -noout -pubkey) || die "the fleet certificate is unreadable"
  key_key=$(openssl pkey -in "${dir}/privkey.pem" -pubout 2>/dev/null) || die "the fleet certificate's key is unreadable"
  [[ "${cert_key}" = "${key_key}" ]] || die "the fleet certificate's key is not its certificate's"
}

# install_file SOURCE TARGET MODE: TARGET (mode MODE, root's) holds SOURCE's content;
# succeeds when it changed. Written beside and renamed: never half a key.
install_file() {
  local source=$1 target=$2 mode=$3
  local current=""
  [[ ! -f "${target}" ]] || current=$(stat -c %a "${target}")
  if [[ "${current}" = "${mode}" ]] && cmp -s "${source}" "${target}"; then
    return 1
  fi
  mkdir -p "${target%/*}"
  (
    umask 077
    cat "${source}" >"${target}.bbbctl-new"
  )
  chmod "${mode}" "${target}.bbbctl-new"
  mv -f "${target}.bbbctl-new" "${target}"
}

install_certificate() {
  local wait=$1 changed=false name link target about
  CERT_TMP=$(mktemp -d)
  # shellcheck disable=SC2064 # the directory of this run, now
  trap "rm -rf '${CERT_TMP}'" EXIT
  fetch_certificate "${wait}"
  check_certificate "${CERT_TMP}"
  # bbb-install -d's layout: /local/certs/{fullchain,privkey}.pem, linked from
  # /etc/letsencrypt/live/<host>/ (its install_ssl).
  # shellcheck disable=SC2310 # "unchanged" is its failure
  if install_file "${CERT_TMP}/fullchain.pem" "${CERT_DIR}/fullchain.pem" 644; then changed=true; fi
  # shellcheck disable=SC2310
  if install_file "${CERT_TMP}/privkey.pem" "${CERT_DIR}/privkey.pem" 600; then changed=true; fi
  mkdir -p "${LIVE_DIR}/${HOST_NAME}"
  for name in fullchain privkey; do
    link="${LIVE_DIR}/${HOST_NAME}/${name}.pem"
    if [[ "$(readlink "${link}" 2>/dev/null || true)" != "/local/certs/${name}.pem" ]]; then
      ln -sfn "/local/certs/${name}.pem" "${link}"
      changed=true
    fi
  done
  # Another name's links to the fleet certificate (an image's builder): gone.
  for link in "${LIVE_DIR}"/*/fullchain.pem; do
    [[ -L "${link}" ]] || continue
    name=${link%/fullchain.pem}
    name=${name##*/}
    [[ "${name}" != "${HOST_NAME}" ]] || continue
    target=$(readlink "${link}") || continue
    [[ "${target}" = /local/certs/fullchain.pem ]] || continue
    rm -f "${link}" "${LIVE_DIR}/${name}/privkey.pem"
    rmdir "${LIVE_DIR}/${name}" 2>/dev/null || true
  done
  # haproxy's bundle, as bbb-install's deploy hook builds it: fullchain, an empty line, key.
  {
    cat "${CERT_TMP}/fullchain.pem"
    echo
    cat "${CERT_TMP}/privkey.pem"
  } >"${CERT_TMP}/bundle.pem"
  # shellcheck disable=SC2310
  if install_file "${CERT_TMP}/bundle.pem" "${BUNDLE}" 600; then
    changed=true
    want haproxy reload
  fi
  if [[ "${changed}" = true ]]; then
    about=$(openssl x509 -in "${CERT_TMP}/fullchain.pem" -noout -serial -enddate) || about=""
    log "fleet certificate installed (${about//$'\n'/, })"
  else
    log "fleet certificate unchanged"
  fi
}

# ---- reloads ---------------------------------------------------------------------------
RESTARTED=""
reload_changed() {
  local unit state
  if [[ "${DAEMON_RELOAD}" = true ]]; then
    systemctl daemon-reload || die "systemctl daemon-reload failed"
  fi
  if [[ -n "${ACTIONS[nginx]:-}" ]]; then
    nginx -t -q || die "nginx refuses its configuration (nginx -t)"
  fi
  if [[ -n "${ACTIONS[haproxy]:-}" ]]; then
    haproxy -c -q -f "${HAPROXY_CFG#"${ROOT}"}" || die "haproxy refuses its configuration (haproxy -c)"
  fi
  for unit in nginx haproxy coturn freeswitch bbb-webrtc-sfu bbb-apps-akka bbb-web; do
    [[ -n "${ACTIONS[${unit}]:-}" ]] || continue
    state=$(systemctl is-active "${unit}.service" 2>/dev/null || true)
    case "${state}" in
      active | reloading | activating)
        if [[ "${ACTIONS[${unit}]}" = reload ]]; then
          systemctl reload-or-restart "${unit}.service" || die "could not reload ${unit}"
          log "${unit} reloaded"
        else
          systemctl restart "${unit}.service" || die "could not restart ${unit}"
          log "${unit} restarted"
        fi
        RESTARTED+=" ${unit}"
        ;;
      failed)
        systemctl restart "${unit}.service" || die "could not start ${unit} again"
        log "${unit} had failed: started again"
        RESTARTED+=" ${unit}"
        ;;
      *) log "${unit} is ${state:-unknown}: it starts with its new configuration" ;;
    esac
  done
  apply_nat
}

# reload_certificate: refresh-cert's reload, haproxy's only, when the bundle changed.
reload_certificate() {
  [[ -n "${ACTIONS[haproxy]:-}" ]] || return 0
  haproxy -c -q -f "${HAPROXY_CFG#"${ROOT}"}" || die "haproxy refuses its configuration (haproxy -c)"
  systemctl reload-or-restart haproxy.service || die "could not reload haproxy"
  log "haproxy reloaded with the renewed certificate"
}

# ---- the check, as bbb-conf --check would -------------------------------------------------
self_check() {
  local file prefix value suffix expected secret got unit attempt state rules rule
  local coturn_secret web_secret bundle mode
  local -a problems=()
  while IFS=${SEP} read -r file prefix value suffix expected secret; do
    [[ -n "${file}" ]] || continue
    if [[ "${prefix}" = yaml ]]; then
      # shellcheck disable=SC2310 # no such key reads as nothing, a problem below
      got=$(yaml_edit get "${file}" "${value}" 2>/dev/null || true)
    else
      got=$(sed -nE "s#^${prefix}(${value})${suffix}\$#\\1#p" "${file}")
      got=$(sort -u <<<"${got}")
    fi
    if [[ "${got}" != "${expected}" ]]; then
      if [[ "${secret}" = true ]]; then
        problems+=("${file#"${ROOT}"}: a secret is not the one written")
      else
        problems+=("${file#"${ROOT}"}: ${got//$'\n'/,} where ${expected} belongs (${prefix}${value}${suffix})")
      fi
    fi
  done <<<"${CHECKS}"
  grep -qx "allowed-peer-ip=${PUBLIC_IP}" "${TURN_CONF}" && grep -qx "allowed-peer-ip=${LOCAL_IP}" "${TURN_CONF}" ||
    problems+=("/etc/turnserver.conf: allowed-peer-ip is not ${PUBLIC_IP} and ${LOCAL_IP}")
  rules=$(grep -c -- '-j DNAT --to-destination ' "${RULES}" || true)
  rule=$(nat_rule_line)
  if [[ "${rules}" != 1 ]] || ! grep -qxF -- "${rule}" "${RULES}"; then
    problems+=("/etc/iptables/rules.v4: the nat rule is not the one for ${LOCAL_IP} -> ${PUBLIC_IP}")
  fi
  iptables -t nat -C OUTPUT -s "${LOCAL_IP}/32" -d "${PUBLIC_IP}/32" -p udp -j DNAT --to-destination "${LOCAL_IP}" 2>/dev/null ||
    problems+=("the nat rule for ${LOCAL_IP} -> ${PUBLIC_IP} is not loaded")
  # shellcheck disable=SC2312 # no answer from ip is a problem found right here
  ip -4 -o addr show dev lo | grep -q "inet ${PUBLIC_IP}/32 " || problems+=("lo does not hold ${PUBLIC_IP}")
  coturn_secret=$(sed -n 's/^static-auth-secret=//p' "${TURN_CONF}")
  web_secret=$(sed -nE 's#^[[:space:]]*<constructor-arg index="0" value="([^"]*)".*#\1#p' "${TURN_XML}")
  web_secret=$(sort -u <<<"${web_secret}")
  if [[ -z "${coturn_secret}" ]] || [[ "${coturn_secret}" != "${web_secret}" ]]; then
    problems+=("coturn's static-auth-secret and bbb-web's TURN secret differ")
  fi
  # The certificate where haproxy reads it: the bundle is fullchain and key, root's only.
  bundle=$(cat "${CERT_DIR}/fullchain.pem" && echo && cat "${CERT_DIR}/privkey.pem") || bundle=""
  if [[ -z "${bundle}" ]] || ! cmp -s "${BUNDLE}" <<<"${bundle}"; then
    problems+=("/etc/haproxy/certbundle.pem is not /local/certs' certificate and key")
  fi
  for file in "${BUNDLE}" "${CERT_DIR}/privkey.pem"; do
    mode=$(stat -c %a "${file}" 2>/dev/null) || mode=missing
    [[ "${mode}" = 600 ]] || problems+=("${file#"${ROOT}"} is mode ${mode}, not 600")
  done
  nginx -t -q 2>/dev/null || problems+=("nginx -t refuses the configuration")
  for unit in ${RESTARTED}; do
    # A restarted service may still be starting: up to 30 s.
    for attempt in 1 2 3 4 5 6 7; do
      state=$(systemctl is-active "${unit}.service" 2>/dev/null || true)
      if [[ "${state}" != activating ]] || [[ "${attempt}" -eq 7 ]]; then break; fi
      sleep 5
    done
    [[ "${state}" = active ]] || problems+=("${unit} is ${state:-unknown} after its restart")
  done
  builder_name_left
  if [[ "${#problems[@]}" -gt 0 ]]; then
    local p
    for p in "${problems[@]}"; do log "check: ${p}"; done
    local IFS=';'
    die "self-check: ${problems[*]}"
  fi
  log "self-check passed: ${HOST_NAME}, public ${PUBLIC_IP}, private ${LOCAL_IP} in every place; certificate in place${RESTARTED:+; active:${RESTARTED}}"
}

# builder_name_left: on a baked image's first boot, the settings files that still name the
# builder. Logged as a WARNING line with the files, not a failure: a stray copy (a backup
# file, a comment) must not stop every server of the image; a real place shows in its service.
builder_name_left() {
  [[ "${FIRST_BOOT}" = true ]] && [[ -f "${BAKED}" ]] || return 0
  local dir left=()
  for dir in "${SETTINGS_DIRS[@]}"; do
    [[ -e "${dir}" ]] || continue
    # shellcheck disable=SC2312 # an unreadable file is not a match
    mapfile -t -O "${#left[@]}" left < <(grep -rlF -- "${BUILDER_HOST}" "${dir}" 2>/dev/null)
  done
  [[ "${#left[@]}" -eq 0 ]] ||
    log "WARNING the builder's name ${BUILDER_HOST} is still in: ${left[*]#"${ROOT}"} (a place this script does not rewrite)"
}

# ---- install -------------------------------------------------------------------------------
install_units() {
  local source
  source=$(readlink -f "$0")
  if [[ "${source}" != "$(readlink -f "${ROOT}${SELF}" 2>/dev/null || true)" ]]; then
    mkdir -p "${ROOT}${SELF%/*}"
    install -m 0755 "${source}" "${ROOT}${SELF}"
  fi
  mkdir -p "${UNIT_DIR}"
  cat >"${UNIT_DIR}/bbb-identity.service" <<EOF
[Unit]
Description=Re-apply this BigBlueButton server's name, addresses, secrets and certificate
Wants=network-online.target
After=network-online.target netfilter-persistent.service
Before=dummy-nic.service freeswitch.service nginx.service haproxy.service coturn.service bbb-webrtc-sfu.service bbb-web.service bbb-apps-akka.service bbb-fsesl-akka.service bbb-agent.service
# Without its settings (the first boot of a baked image, before the bootstrap wrote them)
# there is nothing to apply yet: the bootstrap calls bbb-identity --first-boot.
ConditionPathExists=/etc/bbbctl/server.env

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=${SELF}
TimeoutStartSec=900

[Install]
WantedBy=multi-user.target
EOF
  cat >"${UNIT_DIR}/bbb-cert-refresh.service" <<EOF
[Unit]
Description=Install the deployment's renewed fleet certificate
Wants=network-online.target
After=network-online.target bbb-identity.service
ConditionPathExists=/etc/bbbctl/server.env

[Service]
Type=oneshot
ExecStart=${SELF} refresh-cert
EOF
  # This unit puts the public address on lo before dummy-nic runs at every boot; upstream's
  # dummy-nic adding it again then exits 2 (ip: RTNETLINK "File exists"), which is success.
  mkdir -p "${UNIT_DIR}/dummy-nic.service.d"
  cat >"${UNIT_DIR}/dummy-nic.service.d/bbbctl.conf" <<'EOF'
[Service]
SuccessExitStatus=2
EOF
  cat >"${UNIT_DIR}/bbb-cert-refresh.timer" <<'EOF'
[Unit]
Description=Look for a renewed fleet certificate every hour

[Timer]
OnBootSec=30min
OnUnitActiveSec=1h
RandomizedDelaySec=20min

[Install]
WantedBy=timers.target
EOF
  systemctl daemon-reload
  systemctl enable bbb-identity.service
  systemctl enable --now bbb-cert-refresh.timer
  log "bbb-identity.service and bbb-cert-refresh.timer installed"
}

# ---- main ----------------------------------------------------------------------------------
FIRST_BOOT=false
case "${1:-}" in
  install)
    install_units
    exit 0
    ;;
  refresh-cert)
    # A builder (bbbctl bake) has no name nor certificate of its own: its settings name the
    # placeholder (bbb-bootstrap.sh PLACEHOLDER_HOST) until bake_clean removes them.
    if grep -qx "HOST_NAME=${BUILDER_HOST}" "${CONFIG}" 2>/dev/null; then
      exit 0
    fi
    read_config
    [[ "${MODE}" = scalable ]] || exit 0
    install_certificate 0
    reload_certificate
    exit 0
    ;;
  --first-boot) FIRST_BOOT=true ;;
  "") PATH_NAME=restart ;;
  *)
    echo "usage: bbb-identity [--first-boot | refresh-cert | install]" >&2
    exit 2
    ;;
esac

step read-config
read_config
if [[ "${MODE}" != scalable ]]; then
  log "single mode: the server keeps bbb-install's identity"
  exit 0
fi
[[ -z "${PATH_NAME}" ]] || boot_state booting
step metadata
read_metadata
step identity
renew_secrets
apply_secrets
apply_addresses
step certificate
install_certificate "${CERT_WAIT}"
step reload
reload_changed
step self-check
self_check
step
if [[ -n "${PATH_NAME}" ]]; then
  boot_state ready
  # shellcheck disable=SC2312 # uptime unreadable: 0
  log "BOOT ${PATH_NAME} $(awk '{ printf "%.1f", $1 }' /proc/uptime 2>/dev/null || echo 0)s"
fi
TOOK=$(elapsed "${STARTED}")
log "done in ${TOOK}s"
