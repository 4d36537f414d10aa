#!/usr/bin/env bash
# Baseline for Berth's task start latency: wall time of N `ctr run --rm
# IMAGE /bin/true` (create + start + exit + delete) against containerd.
#
# Usage: scripts/bench-ctr-run.sh SOCK IMAGE N
# Output: ctr-run median_ms=... min_ms=... max_ms=... n=...
set -euo pipefail

SOCK=${1:?usage: $0 SOCK IMAGE N}
IMAGE=${2:?usage: $0 SOCK IMAGE N}
N=${3:?usage: $0 SOCK IMAGE N}
NS=berthbench
C=(ctr --address "$SOCK" -n "$NS")

# Pull outside the timed loop so only container lifecycle is measured.
"${C[@]}" images pull --plain-http "$IMAGE" >/dev/null

ms=()
for i in $(seq "$N"); do
  # Unique ids: a leftover from an earlier, interrupted run must not collide.
  id="bench-$$-$i"
  t0=$(date +%s%N)
  "${C[@]}" run --rm "$IMAGE" "$id" /bin/true
  t1=$(date +%s%N)
  ms+=($(( (t1 - t0) / 1000000 )))
done

sorted=($(printf '%s\n' "${ms[@]}" | sort -n))
# Median of an even count is the mean of the two middle values.
if (( N % 2 )); then med=${sorted[N/2]}; else med=$(( (sorted[N/2-1] + sorted[N/2]) / 2 )); fi
echo "ctr-run median_ms=$med min_ms=${sorted[0]} max_ms=${sorted[N-1]} n=$N"
