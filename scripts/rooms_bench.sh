#!/usr/bin/env bash
# What an extra room costs a node (issue 22 item 6): for each K in $ROOMS_K, a fresh origin and
# edge serve K rooms of one viewer each, then one room of K viewers; the edge's and the
# origin's CPU (percent of one core, over the steady part of the run) and resident memory at
# the end are printed per configuration, so the two are compared within one run.
# Each room is one `cascade-loadgen run` (a publisher at $ROOMS_KBPS kbit/s and its viewers).
set -euo pipefail
cd "$(dirname "$0")/.."
ks=${ROOMS_K:-"6 20"}
duration=${ROOMS_DURATION:-20}
kbps=${ROOMS_KBPS:-2500}
bin=${ROOMS_BIN:-target/release}
out=${ROOMS_OUT:-target/rooms}
mkdir -p "$out"
tick=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

. scripts/nodes.sh

# One configuration: $1 rooms of $2 viewers each. Prints one table row.
measure() {
  local rooms=$1 viewers=$2
  origin_and_edge "$out" 28180 29190
  local loads=()
  for r in $(seq "$rooms"); do
    "$bin/cascade-loadgen" run --quiet --room "room-$r" --viewers "$viewers" --ramp 20 \
      --duration "$duration" --video-kbps "$kbps" \
      --origin http://127.0.0.1:28180 --edge http://127.0.0.1:28181 \
      --json "$out/run-$rooms-$viewers-$r.json" >>"$out/loadgen.log" 2>&1 &
    loads+=($!)
  done
  # The steady part: from 5 s in (every room joined) to 2 s before the end.
  sleep 5
  local e0 o0 t0 e1 o1 t1
  e0=$(cpu_ticks "$edge"); o0=$(cpu_ticks "$origin"); t0=$(date +%s.%N)
  sleep $((duration - 7))
  e1=$(cpu_ticks "$edge"); o1=$(cpu_ticks "$origin"); t1=$(date +%s.%N)
  local edge_rss origin_rss
  edge_rss=$(rss_mib "$edge"); origin_rss=$(rss_mib "$origin")
  local failed=0
  for p in "${loads[@]}"; do wait "$p" || failed=$((failed + 1)); done
  awk -v r="$rooms" -v v="$viewers" -v e="$((e1 - e0))" -v o="$((o1 - o0))" -v t0="$t0" \
    -v t1="$t1" -v hz="$tick" -v er="$edge_rss" -v or="$origin_rss" -v f="$failed" \
    'BEGIN { s = t1 - t0; printf "| %d x %d | %.2f | %s | %.2f | %s | %d |\n",
      r, v, 100 * e / hz / s, er, 100 * o / hz / s, or, f }'
  cleanup
}

echo "| rooms x viewers | edge CPU % | edge RSS MiB | origin CPU % | origin RSS MiB | failed runs |"
echo "|---|---|---|---|---|---|"
for k in $ks; do
  measure "$k" 1
  measure 1 "$k"
done
