#!/usr/bin/env bash
# ICE-TCP against UDP viewers on one edge (BENCHMARKS.md, "Viewers on ICE-TCP"): a release origin
# and edge on loopback, then load-generator viewers (webrtc-rs peer connections, `--viewer-engine
# pc`) on UDP and on ICE-TCP in turn, twice each, interleaved so that the machine's noise falls
# on both. Prints the edge's steady CPU per viewer for each run.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-target/bench-ice-tcp}
viewers=${BENCH_VIEWERS:-100}
duration=${BENCH_DURATION:-20}
mkdir -p "$out"
cargo build --release --locked --bins
bin=target/release

. scripts/nodes.sh
origin_and_edge "$out" 28180 29190

for round in 1 2; do
  for transport in udp tcp; do
    name="$transport-$round"
    "$bin/cascade-loadgen" run --quiet --origin http://127.0.0.1:28180 --edge http://127.0.0.1:28181 \
      --room "$name" --viewers "$viewers" --ramp 50 --duration "$duration" --viewer-engine pc \
      --viewer-transport "$transport" --pids "$edge" --json "$out/$name.json" >"$out/$name.txt"
    python3 - "$out/$name.json" "$name" "$viewers" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
edge = r["processes"][0]
cpu = edge["cpu_steady_pct"] if edge["cpu_steady_pct"] is not None else edge["cpu_avg_pct"]
gen = (r.get("loadgen") or {}).get("cpu_avg_pct") or 0.0
v = r["viewers"]
lost = sum(r["packets"][k]["lost"] for k in ("video", "audio"))
print(f'{sys.argv[2]}: {v["connected"]}/{sys.argv[3]} connected, edge CPU steady {cpu:.1f} % '
      f'({cpu / max(v["connected"], 1):.3f} % per viewer), edge rss {edge["rss_max_mib"]:.0f} MiB, '
      f'{lost} packets lost; load generator CPU {gen:.0f} %')
PY
  done
done
