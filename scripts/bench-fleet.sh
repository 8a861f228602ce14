#!/usr/bin/env bash
# Benchmark (not a test): a simulated day of a university's meetings on a BBB fleet scaled in
# at fixed times, with recordings processed on the servers after their meetings end
# (examples/fleet_day.rs documents the day: which meetings record, how long processing takes).
# For a few seeds: meetings cut, recordings lost and server-hours paid while draining, for the
# Auto Scaling group's own choice (terminates), draining the oldest servers (waits for meetings
# and recordings), bbbctl's previous choice (emptiest by Scalelite's load; waited for meetings
# only), bbbctl's choice (fleet::choose: expected soonest free; waits for both), and a
# hindsight bound (the servers that truly free up soonest).
# Usage: scripts/bench-fleet.sh [SEED...]   (default: 1 2 3 4 5)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --quiet --release --example fleet_day
seeds=("$@")
if [[ ${#seeds[@]} -eq 0 ]]; then
  seeds=(1 2 3 4 5)
fi
for seed in "${seeds[@]}"; do
  "${CARGO_TARGET_DIR:-target}/release/examples/fleet_day" "${seed}"
done
