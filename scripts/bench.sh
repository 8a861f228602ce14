#!/usr/bin/env bash
# Benchmark on the local emulator (not a test): wall time and AWS requests of
#   setup (first run), setup (no-change re-run), admin-login, scale --count 2 --no-wait,
#   cost of the deployment with two schedules (Price List API first, then its cache; and
#   --offline from the snapshot);
#   and `bbbctl check` of a deployment with 10 BBB servers against HTTPS stand-ins of the
#   platform (tests/check_command.rs, debug build; goal < 5 s).
# Targets: admin-login and scale < 30 ms, no-change re-run < 1 s with 0 uploads.
# Usage: scripts/bench.sh [RUNS]   (RUNS repetitions of the fast commands, default 20)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

RUNS=${1:-20}
PORT=${MOTO_PORT:-5066}
STACK=bench$$
DOMAIN=bench.example.org

cargo build --release --quiet
BBBCTL=${CARGO_TARGET_DIR:-$ROOT/target}/release/bbbctl
bash tests/emulator/moto.sh start "$PORT" >/dev/null
trap 'bash tests/emulator/moto.sh stop "$PORT" >/dev/null' EXIT
eval "$(bash tests/emulator/moto.sh env "$PORT")"
export AWS_REGION=us-east-1 BBBCTL_NO_PROGRESS=1
PY=$(bash tests/emulator/moto.sh python)
ZONE=$("$PY" -c "import boto3,uuid;print(boto3.client('route53').create_hosted_zone(Name='$DOMAIN',CallerReference=str(uuid.uuid4()))['HostedZone']['Id'].split('/')[-1])")

now_ns() { date +%s%N; }
# run NAME ARGS… : one timed run; sets MS, REQUESTS and OUT
run() {
  local start end
  start=$(now_ns)
  if ! OUT=$("$BBBCTL" -l INFO "$@" 2>&1); then
    printf 'bbbctl %s failed:\n%s\n' "$*" "$OUT" >&2
    exit 1
  fi
  end=$(now_ns)
  MS=$(( (end - start) / 1000000 ))
  REQUESTS=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$OUT" | tail -n 1)
}
median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }

printf '%-34s %10s %10s  %s\n' "command" "time (ms)" "requests" "notes"
SETUP=(setup -e ops@example.org -h "$ZONE" -s "$STACK" -d "$DOMAIN")
run "${SETUP[@]}" --yes
printf '%-34s %10s %10s  %s\n' "setup (first run)" "$MS" "$REQUESTS" "$(grep -o 'Templates: [^(]*' <<<"$OUT")"

times=()
for _ in $(seq 1 5); do run "${SETUP[@]}"; times+=("$MS"); done
printf '%-34s %10s %10s  %s\n' "setup (no-change re-run, median 5)" "$(printf '%s\n' "${times[@]}" | median)" "$REQUESTS" "$(grep -o 'Templates: [^(]*' <<<"$OUT")"

"$BBBCTL" schedule -s "$STACK" add day --cron "0 8 * * 1-5" --count 6 >/dev/null
"$BBBCTL" schedule -s "$STACK" add night --cron "0 18 * * 1-5" --count 2 >/dev/null
export XDG_CACHE_HOME
XDG_CACHE_HOME=$(mktemp -d)
run cost -s "$STACK"
printf '%-34s %10s %10s  %s\n' "cost (Price List API, first)" "$MS" "$REQUESTS" "every meter asked, then cached"
for cmd in "admin-login -s $STACK" "scale -s $STACK --count 2 --no-wait" "cost -s $STACK" "cost --offline"; do
  times=()
  # shellcheck disable=SC2086 # word splitting of the command line is intended
  for _ in $(seq 1 "$RUNS"); do run $cmd; times+=("$MS"); done
  printf '%-34s %10s %10s  %s\n' "${cmd%% -s*} (median $RUNS)" "$(printf '%s\n' "${times[@]}" | median)" "$REQUESTS" "min $(printf '%s\n' "${times[@]}" | sort -n | head -n1) ms"
done

"$BBBCTL" destroy -s "$STACK" --yes >/dev/null

# bbbctl check, 10 BBB servers, every public check against stand-ins (its own emulator).
CHECK_MS=$(BBBCTL_CHECK_SERVERS=10 cargo test --quiet --test check_command -- --nocapture 2>&1 |
  sed -n 's/^check with 10 BBB server(s) against the stand-ins took \([0-9]*\) ms$/\1/p')
printf '%-34s %10s %10s  %s\n' "check (10 servers, stand-ins)" "${CHECK_MS:-?}" "-" "debug build; goal < 5000 ms"
