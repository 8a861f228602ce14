#!/usr/bin/env bash
# Benchmark on paper (not a test, nothing is timed here): launch to enabled in Scalelite for
# each way a server comes up - bare cold (a bare Ubuntu image, bbb-install), baked cold (a
# baked image), warm (started from the warm pool) - as the sum of its steps, each with its
# best and worst duration and where that figure comes from. The steps are in one data file,
# scripts/boot-steps.tsv (its header says how a path's time is computed from them); the README
# prints its table from this script (--markdown), so the two cannot disagree.
#
# Once real servers have booted, their STEP lines give measured figures: `bbbctl servers`
# (per server: boot path, launch to ready, slowest step; --output json: every step) and
# `bbbctl status` (per path: count, median, slowest).
#
# Usage: scripts/bench-boot.sh [--markdown | --totals] [STEPS_FILE]
#   --totals: one line per path, `<path> <best seconds> <worst seconds>` (scripts/bench-fleet.sh
#   reads it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
format=text
case "${1:-}" in
  --markdown) format=markdown && shift ;;
  --totals) format=totals && shift ;;
  *) ;;
esac
steps=${1:-scripts/boot-steps.tsv}
[[ -r "${steps}" ]] || {
  echo "bench-boot: cannot read ${steps}" >&2
  exit 2
}
# The goals of issue 27 (launch to enabled in Scalelite), seconds; bare has none (today 15-25 min).
awk -F '\t' -v format="${format}" '
function mmss(s) { return sprintf("%d:%02d", int(s / 60), s % 60) }
/^#/ || NF == 0 { next }
NF != 7 || $5 !~ /^[0-9]+$/ || $6 !~ /^[0-9]+$/ || ($2 != 1 && $2 != 2) {
  printf "bench-boot: line %d malformed: %s\n", NR, $0 > "/dev/stderr"; bad = 1; next
}
{
  path = $1
  if (!(path in seen)) { seen[path] = 1; order[++paths] = path }
  n = ++count[path]
  stage[path, n] = $2; branch[path, n] = $3; name[path, n] = $4
  lo[path, n] = $5; hi[path, n] = $6; source[path, n] = $7
  if ($2 == 1) {
    key = path SUBSEP $3
    if (!(key in blo)) { branches[path] = branches[path] " " $3 }
    blo[key] += $5; bhi[key] += $6
  } else { s2lo[path] += $5; s2hi[path] += $6 }
}
END {
  if (bad) exit 2
  goal["baked"] = 180; goal["warm"] = 60
  if (format == "markdown") {
    print "| path | step | best | worst | source |"
    print "|---|---|---:|---:|---|"
  }
  for (i = 1; i <= paths; i++) {
    p = order[i]
    # Stage 1 lasts as long as its longest branch (best and worst taken apart).
    split(substr(branches[p], 2), bs, " ")
    tlo = 0; thi = 0; worst_branch = ""
    for (b in bs) {
      if (blo[p, bs[b]] > tlo) tlo = blo[p, bs[b]]
      if (bhi[p, bs[b]] > thi) { thi = bhi[p, bs[b]]; worst_branch = bs[b] }
    }
    total_lo = tlo + s2lo[p]; total_hi = thi + s2hi[p]
    # The dominant step: the longest worst case among the steps that make the worst case.
    dom = ""; dom_hi = -1
    for (j = 1; j <= count[p]; j++) {
      on = stage[p, j] == 2 || branch[p, j] == worst_branch
      if (on && hi[p, j] > dom_hi) { dom_hi = hi[p, j]; dom = name[p, j] }
    }
    if (format == "totals") { printf "%s %d %d\n", p, total_lo, total_hi; continue }
    if (format == "markdown") {
      for (j = 1; j <= count[p]; j++)
        printf "| %s | %s%s | %s | %s | %s |\n", p, name[p, j], (stage[p, j] == 1 && branch[p, j] != "server" ? " (beside the boot)" : ""), lo[p, j], hi[p, j], source[p, j]
      printf "| **%s** | **launch to enabled** | **%s** | **%s** | dominant: %s |\n", p, mmss(total_lo), mmss(total_hi), dom
      continue
    }
    printf "%s\n", p
    printf "  %-22s %-7s %6s %6s  %s\n", "step", "branch", "best", "worst", "source"
    for (j = 1; j <= count[p]; j++)
      printf "  %-22s %-7s %5ss %5ss  %s\n", name[p, j], (stage[p, j] == 1 ? branch[p, j] : "then"), lo[p, j], hi[p, j], source[p, j]
    for (b in bs)
      printf "  %-30s %5ss %5ss\n", "  branch " bs[b] " (side by side)", blo[p, bs[b]], bhi[p, bs[b]]
    printf "  %-30s %5ss %5ss  = %s to %s; dominant step: %s (up to %ss)\n", "launch to enabled", total_lo, total_hi, mmss(total_lo), mmss(total_hi), dom, dom_hi
    if (p in goal) {
      g = goal[p]
      verdict = total_hi <= g ? "met even at worst" : (total_lo <= g ? "met at best only" : "missed even at best")
      printf "  goal <= %s: %s\n", mmss(g), verdict
    } else {
      printf "  goal: none (the bare path stays for the first deployment and as the fallback)\n"
    }
    print ""
  }
}' "${steps}"
