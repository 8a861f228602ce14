#!/usr/bin/env bash
# Benchmark (not a test): a simulated day of a university's meetings on a BBB fleet scaled in
# at fixed times, with recordings processed on the servers after their meetings end
# (examples/fleet_day.rs documents the day: which meetings record, how long processing takes).
# For a few seeds: meetings cut, recordings lost and server-hours paid while draining, for the
# Auto Scaling group's own choice (terminates), draining the oldest servers (waits for meetings
# and recordings), bbbctl's previous choice (emptiest by Scalelite's load; waited for meetings
# only), bbbctl's choice (fleet::choose: expected soonest free; waits for both), and a
# hindsight bound (the servers that truly free up soonest).
# Then, for each way a server comes up (bare cold, baked cold, warm start; launch to enabled in
# Scalelite, best and worst, from scripts/bench-boot.sh's step table): the lead time a schedule
# needs (how far ahead of the capacity it must ask), what happens at 08:00 without that lead
# (the meetings that start on the night's servers meanwhile), what the lead costs when the
# launch is quick (server-hours idle before 08:00), and a rush at 10:00 nobody foresaw.
# Usage: scripts/bench-fleet.sh [SEED...]   (default: 1 2 3 4 5)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --quiet --release --example fleet_day
seeds=("$@")
if [[ ${#seeds[@]} -eq 0 ]]; then
  seeds=(1 2 3 4 5)
fi
totals=$(bash scripts/bench-boot.sh --totals)
launch=()
while read -r path best worst; do
  launch+=(--launch "${path}=${best}:${worst}")
done <<<"${totals}"
[[ ${#launch[@]} -gt 0 ]] || {
  echo "bench-fleet: scripts/bench-boot.sh --totals gave no path" >&2
  exit 1
}
for seed in "${seeds[@]}"; do
  "${CARGO_TARGET_DIR:-target}/release/examples/fleet_day" "${seed}" "${launch[@]}"
done
