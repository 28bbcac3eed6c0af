#!/usr/bin/env bash
# What simulcast and per-viewer bandwidth estimation cost an edge (issue 19), in one run on
# one edge: N viewers of a one-layer stream whose packets the viewers decrypt themselves (no
# TWCC feedback: the edge estimates nothing, the bench of record), then the same viewers with
# their packets through their cores (which send TWCC feedback: an estimate per viewer), then
# a publisher of three simulcast layers (`--simulcast`) to such viewers. Each estimation run
# also with viewers that decrypt their media and write their TWCC feedback themselves
# (`--viewer-twcc`, rows "viewers' own TWCC"): the edge does the same work, the load
# generator on the same cores far less. The paced stream ceiling for N is measured first;
# scripts/bench_report.py prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${SIM_OUT:-target/simulcast-bench}
n=${SIM_VIEWERS:-300}
duration=${SIM_DURATION:-20}
mkdir -p "$out"
rm -f "$out"/*.json
cargo build --release --locked --bins
bin=target/release
"$bin/cascade-loadgen" limit --paced-viewers "$n" --json "$out/limit.json"

. scripts/nodes.sh
origin_and_edge "$out" 28280 29290

run() { # name, more loadgen flags
  "$bin/cascade-loadgen" run --quiet --origin http://127.0.0.1:28280 --edge http://127.0.0.1:28281 \
    --room "$1" --viewers "$n" --ramp 100 --duration "$duration" --pids "$origin,$edge" \
    --json "$out/$1.json" "${@:2}" >"$out/$1.txt"
}
run "edge-$n"
run "ownest-$n" --viewer-twcc true
run "ownsim-$n" --viewer-twcc true --simulcast
run "est-$n" --viewer-own-srtp false
# The layers the edge's viewers are on near the end of the last run (its viewers join over
# n/100 s, then watch for $duration s).
(sleep $((n / 100 + duration - 2)); curl -fsS http://127.0.0.1:28281/v1/sessions >"$out/sessions.json" || true) &
snapshot=$!
run "sim-$n" --viewer-own-srtp false --simulcast
wait "$snapshot"
python3 scripts/bench_report.py "$out" "$n"
python3 - "$out/sessions.json" <<'PY'
import collections, json, sys
try:
    sessions = json.load(open(sys.argv[1])).get("sessions", [])
except (OSError, ValueError):
    sessions = []
layers = collections.Counter(str(s.get("layer")) for s in sessions)
print("layers of the simulcast run's viewers at its end:", dict(layers))
PY
