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

cargo build --release --quiet
BBBCTL=${CARGO_TARGET_DIR:-$ROOT/target}/release/bbbctl

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
