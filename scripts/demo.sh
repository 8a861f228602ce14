#!/usr/bin/env bash
# Quick start on the local AWS emulator: builds bbbctl, starts moto on 127.0.0.1, creates the
# hosted zone a deployment needs, then runs setup (--yes: it may create the ECS service-linked
# role) → re-run → status → admin-login → scale → destroy, and stops the emulator. Nothing leaves this machine.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

PORT=${MOTO_PORT:-5055}
STACK=${STACK:-bbb-demo}
DOMAIN=${DOMAIN:-bbb.example.org}
EMAIL=${EMAIL:-ops@example.org}

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

# The emulator's Python packages install (mostly network) while cargo compiles.
INSTALL_LOG=$(mktemp "${TMPDIR:-/tmp}/bbbctl-demo-install.XXXXXX")
bash tests/emulator/moto.sh install >"$INSTALL_LOG" 2>&1 &
INSTALL_PID=$!
finish_install() {
    local rc=0
    wait "$INSTALL_PID" || rc=$?
    INSTALL_PID=
    if ((rc != 0)); then
        echo "demo.sh: installing the emulator failed; its output:" >&2
        cat "$INSTALL_LOG" >&2
    fi
    rm -f "$INSTALL_LOG"
    return "$rc"
}
trap '[[ -z "${INSTALL_PID:-}" ]] || finish_install || true' EXIT

# A debug build: the one `cargo test` uses too (same profile and features), so nothing is
# compiled twice; a release build of the AWS SDK takes several times longer.
echo "demo.sh: installing the emulator into .venv/emulator in the background while cargo builds"
say "cargo build"
cargo build
BBBCTL_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/debug
BBBCTL=$BBBCTL_DIR/bbbctl
finish_install

bash tests/emulator/moto.sh start "$PORT"
trap 'bash tests/emulator/moto.sh stop "$PORT"' EXIT
eval "$(bash tests/emulator/moto.sh env "$PORT")"
export AWS_REGION=us-east-1

ZONE=$("$(bash tests/emulator/moto.sh python)" - "$DOMAIN" <<'PY'
import sys, uuid, boto3
r53 = boto3.client("route53")
zone = r53.create_hosted_zone(Name=sys.argv[1], CallerReference=str(uuid.uuid4()))["HostedZone"]
print(zone["Id"].split("/")[-1])
PY
)
echo "hosted zone $ZONE for $DOMAIN on the emulator at $AWS_ENDPOINT_URL"

run() { say "bbbctl $*"; "$BBBCTL" "$@"; }
run setup -e "$EMAIL" -h "$ZONE" -s "$STACK" -d "$DOMAIN" --yes
run setup -e "$EMAIL" -h "$ZONE" -s "$STACK" -d "$DOMAIN"
run status -s "$STACK"
run admin-login -s "$STACK"
run scale -s "$STACK" --count 2
run destroy -s "$STACK" --yes

printf '\n\033[1mDone.\033[0m To try commands by hand (README), put this build of bbbctl on PATH:\n'
# shellcheck disable=SC2016  # $PATH is for the user's shell to expand
printf '  export PATH="%s:$PATH"\n' "$BBBCTL_DIR"
