#!/usr/bin/env bash
# Benchmark (not a test): a simulated day of a university's meetings on a BBB fleet scaled in
# at fixed times (examples/fleet_day.rs), for a few seeds: meetings cut and server-hours paid
# while draining, for the Auto Scaling group's own choice, draining the oldest servers, and
# bbbctl's (drain the emptiest by Scalelite's load).
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
