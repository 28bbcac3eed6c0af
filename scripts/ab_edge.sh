#!/usr/bin/env bash
# A/B of two edge binaries: one origin and one load generator (both from the first directory)
# feed each edge in turn, alternated, and the steady state of each run is compared (edge CPU
# and packets per CPU-second, from the load generator's JSON report).
#
#   scripts/ab_edge.sh DIR_A DIR_B [ROUNDS]
#
# DIR_A holds cascade-origin, cascade-edge and cascade-loadgen; DIR_B holds cascade-edge.
# Environment: AB_VIEWERS (500), AB_DURATION (20), AB_OUT (target/ab).
set -euo pipefail
a=${1:?DIR_A}
b=${2:?DIR_B}
rounds=${3:-3}
viewers=${AB_VIEWERS:-500}
duration=${AB_DURATION:-20}
out=${AB_OUT:-target/ab}
mkdir -p "$out"

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
wait_http() {
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "node on :$1 did not start" >&2
  return 1
}

"$a/cascade-origin" --http-listen 127.0.0.1:28180 --grpc-listen 127.0.0.1:29190 --node-id origin-ab \
  2>"$out/origin.log" &
origin=$!
pids+=("$origin")
wait_http 28180

run() { # label, edge dir, round
  "$2/cascade-edge" --http-listen 127.0.0.1:28181 --grpc-listen 127.0.0.1:29191 --node-id "edge-$1" \
    --upstream http://127.0.0.1:29190 --udp-mux-port 17000 2>"$out/edge-$1-$3.log" &
  local edge=$!
  wait_http 28181
  "$a/cascade-loadgen" run --quiet --origin http://127.0.0.1:28180 --edge http://127.0.0.1:28181 \
    --room "ab-$1-$3" --viewers "$viewers" --ramp 100 --duration "$duration" \
    --pids "$origin,$edge" --json "$out/$1-$3.json" >"$out/$1-$3.txt"
  kill "$edge"
  wait "$edge" 2>/dev/null || true
}

for round in $(seq "$rounds"); do
  run a "$a" "$round"
  run b "$b" "$round"
done

python3 - "$out" "$rounds" <<'EOF'
import json, sys
out, rounds = sys.argv[1], int(sys.argv[2])
print("| edge | steady CPU % | steady pkt/s | steady pkt/s per core | video loss % |")
print("|---|---|---|---|---|")
for side in "ab":
    cpus, ppss, pcs, losses = [], [], [], []
    for r in range(1, rounds + 1):
        rep = json.load(open(f"{out}/{side}-{r}.json"))
        edge = next(p for p in rep["processes"] if "edge" in p["name"])
        cpu = edge.get("cpu_steady_pct") or float("nan")
        pps = (rep.get("steady") or {}).get("packets_per_s", float("nan"))
        cpus.append(cpu); ppss.append(pps); pcs.append(pps / (cpu / 100))
        losses.append(rep["packets"]["video"]["loss_pct"])
    f = lambda xs, p: " / ".join(f"{x:,.{p}f}" for x in xs)
    print(f"| {side} | {f(cpus, 1)} | {f(ppss, 0)} | {f(pcs, 0)} | {f(losses, 3)} |")
EOF
