#!/usr/bin/env bash
# Local AWS emulator for bbbctl: moto server + moto_ext patches, on 127.0.0.1 only.
#
#   moto.sh install        create/refresh .venv/emulator (idempotent, concurrency-safe)
#   moto.sh start [PORT]   start in the background (default $MOTO_PORT or 5055), wait until ready
#   moto.sh stop [PORT]    stop it (no error when not running)
#   moto.sh reset [PORT]   drop all emulated state
#   moto.sh env [PORT]     print export lines for clients (eval "$(moto.sh env)")
#   moto.sh python         print the venv's python (for boto3 snippets)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/.venv/emulator"
requirements="$here/requirements.txt"
stamp="$venv/.requirements.installed"

die() { echo "moto.sh: $*" >&2; exit 1; }

installed() { [[ -x "$venv/bin/python" ]] && cmp -s "$requirements" "$stamp"; }

cmd_install() {
    installed && return 0
    mkdir -p "$root/.venv"
    exec 9>"$root/.venv/emulator.lock"
    flock 9
    if ! installed; then  # another process may have finished while we waited
        echo "moto.sh: installing the emulator into $venv ..." >&2
        rm -f "$stamp"
        python3 -m venv "$venv" >&2
        "$venv/bin/python" -m pip install --disable-pip-version-check -q \
            -r "$requirements" >&2
        cp "$requirements" "$stamp"
    fi
    exec 9>&-
}

port_arg() {
    local port="${1:-${MOTO_PORT:-5055}}"
    if ! [[ "$port" =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
        die "bad port: $port"
    fi
    echo "$port"
}

# pid of our server on PORT, or nothing (a stale pid file is ignored)
server_pid() {
    local pidfile="$venv/moto-$1.pid" pid
    [[ -f "$pidfile" ]] || return 0
    pid="$(cat "$pidfile")"
    if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "server.py --port $1 "; then
        echo "$pid"
    fi
}

answers() { curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$1/moto-api/"; }

# Fails at once when another program listens on 127.0.0.1:PORT (or on all addresses).
port_free() {
    local port="$1" who=""
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        if command -v ss >/dev/null 2>&1; then
            who="$(ss -ltnpH "sport = :$port" 2>/dev/null |
                grep -o 'users:(("[^"]*"' | head -n 1 | cut -d'"' -f2 || true)"
        fi
        die "port $port is taken: another program${who:+ ($who)} listens on 127.0.0.1:$port;" \
            "pick another port, e.g. MOTO_PORT=5056 scripts/demo.sh or moto.sh start 5056"
    fi
}

cmd_start() {
    local port pid log i
    port="$(port_arg "${1:-}")"
    cmd_install
    pid="$(server_pid "$port")"
    if [[ -n "$pid" ]] && answers "$port"; then
        echo "moto.sh: already running on 127.0.0.1:$port (pid $pid)" >&2
        return 0
    fi
    [[ -z "$pid" ]] || cmd_stop "$port"
    port_free "$port"
    log="$venv/moto-$port.log"
    nohup "$venv/bin/python" "$here/server.py" --port "$port" >"$log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$venv/moto-$port.pid"
    for ((i = 0; i < 300; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$venv/moto-$port.pid"
            echo "moto.sh: server exited; last lines of $log:" >&2
            tail -n 20 "$log" >&2
            exit 1
        fi
        if grep -q "listening on" "$log" && answers "$port"; then
            echo "moto.sh: moto listening on http://127.0.0.1:$port (pid $pid, log $log)" >&2
            return 0
        fi
        sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    rm -f "$venv/moto-$port.pid"
    echo "moto.sh: server not ready after 30 s; last lines of $log:" >&2
    tail -n 20 "$log" >&2
    exit 1
}

cmd_stop() {
    local port pid i
    port="$(port_arg "${1:-}")"
    pid="$(server_pid "$port")"
    if [[ -n "$pid" ]]; then
        kill "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$venv/moto-$port.pid"
}

cmd_reset() {
    local port
    port="$(port_arg "${1:-}")"
    curl -fs -o /dev/null -X POST "http://127.0.0.1:$port/moto-api/reset" ||
        die "no emulator answers on 127.0.0.1:$port"
}

cmd_env() {
    local port
    port="$(port_arg "${1:-}")"
    printf 'export AWS_ENDPOINT_URL=%q\n' "http://127.0.0.1:$port"
    printf 'export AWS_ACCESS_KEY_ID=test\n'
    printf 'export AWS_SECRET_ACCESS_KEY=test\n'
    [[ -n "${AWS_REGION:-}" ]] || printf 'export AWS_REGION=us-east-1\n'
    # boto3 and the aws CLI read AWS_DEFAULT_REGION, not AWS_REGION
    [[ -n "${AWS_DEFAULT_REGION:-}" ]] ||
        printf 'export AWS_DEFAULT_REGION=%q\n' "${AWS_REGION:-us-east-1}"
    printf 'export AWS_EC2_METADATA_DISABLED=true\n'
}

cmd_python() {
    cmd_install
    echo "$venv/bin/python"
}

usage() {
    sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[[ $# -ge 1 ]] || usage
command="$1"
shift
case "$command" in
install) [[ $# -eq 0 ]] || usage; cmd_install ;;
start | stop | reset | env) [[ $# -le 1 ]] || usage; "cmd_$command" "$@" ;;
python) [[ $# -eq 0 ]] || usage; cmd_python ;;
*) usage ;;
esac
