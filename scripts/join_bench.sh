#!/usr/bin/env bash
# Join time on one origin and one edge (issue 22 item 4): a calm audience (10 viewers, one a
# second) then a crowd (500 at once), twice, in one session of the nodes; prints each run's
# join split (WHEP answer, connected, first keyframe) and its loss. MUX_SHARDS: the nodes' mux
# shards (1 by default, scripts/nodes.sh); JOIN_EDGE_FLAGS: more flags for the edge.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${JOIN_OUT:-target/join-bench}
crowd=${JOIN_CROWD:-500}
mkdir -p "$out"
cargo build --release --locked --bins
bin=target/release
. scripts/nodes.sh
# shellcheck disable=SC2086 # JOIN_EDGE_FLAGS is a list of flags
origin_and_edge "$out" 28280 29290 ${JOIN_EDGE_FLAGS:-}
run() { # name, viewers, ramp
  "$bin/cascade-loadgen" run --quiet --origin http://127.0.0.1:28280 --edge http://127.0.0.1:28281 \
    --room "$1" --viewers "$2" --ramp "$3" --duration 12 --pids "$origin,$edge" >"$out/$1.txt" 2>&1
}
for r in 1 2; do
  run "calm$r" 10 1
  run "crowd$r" "$crowd" 1000
done
for f in calm1 calm2 crowd1 crowd2; do
  echo "== $f"
  grep -E "^viewers:|^join:|POST to answer|POST to connected|^video:" "$out/$f.txt"
done
