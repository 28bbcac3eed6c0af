#!/usr/bin/env bash
# What an edge whose viewers all take the low simulcast layer saves once it pauses the others
# upstream (`Relay.PauseLayers`, ARCHITECTURE.md "Simulcast"): one origin, one edge, a
# three-layer publisher (`cascade-loadgen run --simulcast`) and N viewers on the edge asking
# for `?layer=low`. The layers flow for the edge's first 10 s without subscribers, then pause;
# the origin's egress (RTP payload bytes sent, `cascade_sent_bytes_total`) and both nodes' CPU are read every second, and the two phases compared
# in one run: from 3 s to 9 s (every layer), and from 14 s to the end (the low layer alone).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${PAUSE_OUT:-target/paused-layers-bench}
n=${PAUSE_VIEWERS:-20}
duration=${PAUSE_DURATION:-35}
mkdir -p "$out"
cargo build --release --locked --bins
bin=target/release

. scripts/nodes.sh
origin_and_edge "$out" 28380 29390

"$bin/cascade-loadgen" run --quiet --origin http://127.0.0.1:28380 \
  --edge "http://127.0.0.1:28381/?layer=low" --room paused --viewers "$n" --ramp 100 \
  --duration "$duration" --simulcast --json "$out/run.json" >"$out/run.txt" &
loadgen=$!
pids+=("$loadgen")

python3 - "$origin" "$edge" "$duration" "$out/samples.json" <<'PY'
import json, os, sys, time, urllib.request

origin, edge, duration, path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
tick = os.sysconf("SC_CLK_TCK")

def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick

def node(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/node", timeout=2) as r:
        return json.load(r)

def sent_bytes(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("cascade_sent_bytes_total "):
                return float(line.split()[1])
    return None

samples = []
start = time.monotonic()
while time.monotonic() - start < duration + 2:
    t = time.monotonic() - start
    e = node(28381)
    room = next((r for r in e.get("rooms", []) if r["room"] == "paused"), None)
    layers = {
        t_["rid"]: {"paused": t_["paused_upstream"], "bytes": t_["bytes_in"]}
        for t_ in (room or {}).get("tracks", []) if t_.get("rid")
    }
    samples.append({
        "t": t, "origin_cpu": cpu(origin), "edge_cpu": cpu(edge),
        "origin_bytes_out": sent_bytes(28380), "layers": layers,
    })
    time.sleep(1)
json.dump(samples, open(path, "w"))

def window(a, b):
    s = [x for x in samples if a <= x["t"] <= b and x["origin_bytes_out"] is not None]
    if len(s) < 2:
        return None
    first, last = s[0], s[-1]
    secs = last["t"] - first["t"]
    return {
        "origin egress kbit/s": (last["origin_bytes_out"] - first["origin_bytes_out"]) * 8 / secs / 1000,
        "origin CPU %": (last["origin_cpu"] - first["origin_cpu"]) / secs * 100,
        "edge CPU %": (last["edge_cpu"] - first["edge_cpu"]) / secs * 100,
        "paused": sorted(r for r, l in last["layers"].items() if l["paused"]),
    }

before, after = window(3, 9), window(14, duration)
print("every layer (3-9 s):     ", before)
print(f"low layer alone (14-{duration} s):", after)
if before and after:
    for k in ("origin egress kbit/s", "origin CPU %", "edge CPU %"):
        print(f"{k}: after / before = {after[k] / before[k]:.2f}")
PY
wait "$loadgen" || true
tail -3 "$out/run.txt"
