#!/usr/bin/env bash
# The benchmarks of record (BENCHMARKS.md): release build, the machine's own limit, then a real
# origin, an edge and an edge-of-edge on loopback under cascade-loadgen, at several audience sizes.
# Output: JSON per run in $BENCH_OUT (default target/bench) and a summary table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-target/bench}
viewers=${BENCH_VIEWERS:-"10 100 300 500 1000"}
duration=${BENCH_DURATION:-20}
# The load generator's viewers: rtc (light, the default) or pc (a webrtc-rs peer connection each).
engine=${BENCH_ENGINE:-rtc}
mkdir -p "$out"
cargo build --release --locked --bins
bin=target/release

# The paced stream ceiling for each audience of the runs below (the stream at its own pace to
# that many live receivers).
"$bin/cascade-loadgen" limit --paced-viewers "$(echo $viewers | tr ' ' ',')" --json "$out/limit.json"

. scripts/nodes.sh
start_node origin origin-1 28080 29090 "$out/origin.log"
origin=$started
start_node edge edge-1 28081 29091 "$out/edge1.log" --upstream http://127.0.0.1:29090
edge=$started
start_node edge edge-2 28082 29092 "$out/edge2.log" --upstream http://127.0.0.1:29091
edge2=$started
# For comparison in the same run: an edge without the UDP mux (a peer connection per viewer).
start_node edge edge-pc 28083 29093 "$out/edge-pc.log" --upstream http://127.0.0.1:29090 --udp-mux false
edgepc=$started
wait_healthy 28080 28081 28082 28083

run() { # name, edge url, viewers, pids, more loadgen flags
  "$bin/cascade-loadgen" run --quiet --origin http://127.0.0.1:28080 --edge "$2" --room "$1" \
    --viewers "$3" --ramp "${ramp:-100}" --duration "$duration" --viewer-engine "$engine" --pids "$4" \
    --json "$out/$1.json" "${@:5}" >"$out/$1.txt"
}
# Latency per hop: the same 10 viewers straight on the origin, one hop down, two hops down.
run hop0 http://127.0.0.1:28080 10 "$origin"
run hop1 http://127.0.0.1:28081 10 "$origin,$edge"
run hop2 http://127.0.0.1:28082 10 "$origin,$edge,$edge2"
# The edge's join timing so far (connection up -> first media packet sent), from its /metrics.
curl -fsS http://127.0.0.1:28081/metrics >"$out/edge1-metrics.txt"
# Scaling on one edge.
for n in $viewers; do run "edge-$n" http://127.0.0.1:28081 "$n" "$origin,$edge"; done
# The same edge to viewers without UDP GRO (each datagram delivered on its own, as to a browser;
# on loopback the edge pays for that delivery): the viewers' GRO's share of the figures above.
rm -f "$out"/nogro-*.json
if [ "$engine" = rtc ]; then
  for n in ${BENCH_NOGRO_VIEWERS:-300}; do
    run "nogro-$n" http://127.0.0.1:28081 "$n" "$origin,$edge" --viewer-gro false
  done
fi
# A flash crowd: the audience joins at once (1000 a second), as at a kick-off.
rm -f "$out"/flash-*.json
for n in ${BENCH_FLASH_VIEWERS:-500}; do
  ramp=1000 run "flash-$n" http://127.0.0.1:28081 "$n" "$origin,$edge"
done
rm -f "$out"/pc-*.json
for n in ${BENCH_PC_VIEWERS:-100}; do run "pc-$n" http://127.0.0.1:28083 "$n" "$origin,$edgepc"; done

python3 scripts/bench_report.py "$out" $viewers
