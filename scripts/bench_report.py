#!/usr/bin/env python3
"""Summarises scripts/bench.sh's JSON into the tables of BENCHMARKS.md (and a plot when
matplotlib is installed)."""
import json, os, sys

out = sys.argv[1]
sizes = sys.argv[2:]
load = lambda name: json.load(open(os.path.join(out, name + ".json")))
limit = load("limit")
print(f"limit: sendto {limit['sendto_pps']:.0f} pkt/s, GSO x{limit['gso_segments']} {limit['gso_pps']:.0f} pkt/s, "
      f"sendmmsg x{limit['sendmmsg_batch']} to distinct destinations {limit['sendmmsg_pps']:.0f} pkt/s, "
      f"SRTP SHA1-80 {limit['srtp_aes_cm_sha1_80_ns']:.0f} ns, GCM {limit['srtp_aead_aes128_gcm_ns']:.0f} ns, "
      f"ceiling {limit['ceiling_pps_per_core']:.0f} pkt/s/core, "
      f"fan-out ceiling {limit['fanout_ceiling_pps_per_core']:.0f} pkt/s/core")
if "stream_ceiling_gro_pps_per_core" in limit:
    print(f"frames x{limit['frame_packets']} by GSO to {limit['sendmmsg_batch']} destinations per sendmmsg: "
          f"{limit['frame_fanout_gro_pps']:.0f} pkt/s to GRO receivers, {limit['frame_fanout_pps']:.0f} without; "
          f"stream ceiling {limit['stream_ceiling_gro_pps_per_core']:.0f} pkt/s/core to GRO receivers, "
          f"{limit['stream_ceiling_pps_per_core']:.0f} without")
if "stream_ceiling_live_pps_per_core" in limit:
    print(f"to live GRO receivers (read as they arrive): frames {limit['frame_fanout_live_pps']:.0f} pkt/s, "
          f"single datagrams {limit['sendmmsg_live_pps']:.0f} pkt/s; live stream ceiling "
          f"{limit['stream_ceiling_live_pps_per_core']:.0f} pkt/s/core")

def stream_ceiling(r):
    """The stream ceiling for the run's kind of receivers (GRO or not)."""
    gro = (r.get("config") or {}).get("viewer_gro", False)
    key = "stream_ceiling_gro_pps_per_core" if gro else "stream_ceiling_pps_per_core"
    return limit.get(key, float("nan"))

def live_ceiling(r):
    """The stream ceiling to live GRO receivers (read as they arrive), for runs whose viewers use GRO."""
    gro = (r.get("config") or {}).get("viewer_gro", False)
    return limit.get("stream_ceiling_live_pps_per_core", float("nan")) if gro else float("nan")

def paced(n, key):
    """The paced stream ceiling measured for this audience (`limit --paced-viewers`): the
    reference stream at its own pace to n live receivers; `key` picks the reader that sleeps
    between frames (ceiling_pps_per_core) or the one that never sleeps."""
    for p in limit.get("paced", []):
        if p["viewers"] == int(n):
            return p[key]
    return float("nan")

for p in limit.get("paced", []):
    print(f"the stream at its pace to {p['viewers']} live receivers: send {p['send_ns']:.0f} ns/pkt "
          f"(reader sleeping), {p['send_ns_busy_reader']:.0f} (reader busy); paced ceiling "
          f"{p['ceiling_pps_per_core']:.0f} / {p['ceiling_busy_reader_pps_per_core']:.0f} pkt/s/core, "
          f"{p['delivered']*100:.1f} % delivered")

def proc(r, name):
    for p in r.get("processes", []):
        if p.get("name") == name or name in str(p.get("cmdline", "")):
            return p
    return {}

def lat(r, k, key="latency_ms"):
    l = r.get(key) or {}
    return l.get(k, float("nan"))

def settled(r, k):
    """Latency of packets sent a second or more after the viewer's first (loadgen `SETTLE`)."""
    return lat(r, k, "latency_settled_ms")

# The latency per relay hop, where the run measured it (scripts/bench.sh; not the simulcast bench).
if os.path.exists(os.path.join(out, "hop0.json")):
    print("\n| hops | viewers | latency p50 ms | latency p99 ms |")
    print("|---|---|---|---|")
    hops = {}
    for h in ("hop0", "hop1", "hop2"):
        r = load(h)
        hops[h] = r
        print(f"| {h[-1]} | {r['viewers']['connected']} | {lat(r,'p50_ms'):.2f} | {lat(r,'p99_ms'):.2f} |")
    for a, b in (("hop0", "hop1"), ("hop1", "hop2")):
        print(f"added by {b}: p50 {lat(hops[b],'p50_ms')-lat(hops[a],'p50_ms'):+.2f} ms, p99 {lat(hops[b],'p99_ms')-lat(hops[a],'p99_ms'):+.2f} ms")

def bucket_quantile(path, name, q):
    """Upper bound (s) of the histogram bucket holding quantile q, from a /metrics scrape."""
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return None, 0
    buckets = []
    for line in lines:
        if line.startswith(name + "_bucket{"):
            le = line.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    if not buckets or buckets[-1][1] == 0:
        return None, 0
    total = buckets[-1][1]
    for le, count in buckets:
        if count >= q * total:
            return le, int(total)
    return None, int(total)

path = os.path.join(out, "edge1-metrics.txt")
for q in (0.5, 0.99):
    le, n = bucket_quantile(path, "cascade_join_connected_to_media_seconds", q)
    if le is not None:
        print(f"edge: peer connection up -> first media packet, p{int(q*100)} <= {le*1000:.0f} ms (n={n})")

# Two views of the edge's cost. Whole run: packets over the run's length, CPU averaged over it,
# the audience's joins included. Steady: the window once everyone joined and settled (loadgen's
# `steady`, the processes' `cpu_steady_pct`): forwarding alone, as the ceilings measure it.
print("\n| viewers | connected | loss % video / audio | join p50 ms | join p99 ms | latency p50 ms | latency p99 ms | settled latency p50 ms | settled latency p99 ms | edge CPU % (run / steady) | edge RSS MiB | RSS KiB per viewer | loadgen CPU % | pkt/s out (run / steady) | pkt/s per edge core (run / steady) | viewers per edge core (run / steady) | ratio to ceiling | ratio to fan-out ceiling | ratio to stream ceiling | ratio to live stream ceiling | ratio to paced ceiling, whole run (reader sleeping / busy) | **ratio to paced ceiling, steady (reader sleeping / busy)** |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
rows = []
runs = [(f"edge-{n}", n, n) for n in sizes]
# The same audience on an edge without the UDP mux (a peer connection per viewer), same run.
runs += [(name, name.split("-")[1] + " (`--udp-mux false`)", name.split("-")[1])
         for name in sorted(f[:-5] for f in os.listdir(out) if f.startswith("pc-") and f.endswith(".json"))]
# The same edge to viewers without UDP GRO, same run.
runs += [(name, name.split("-")[1] + " (`--viewer-gro false`)", name.split("-")[1])
         for name in sorted(f[:-5] for f in os.listdir(out) if f.startswith("nogro-") and f.endswith(".json"))]
# The same edge when the audience joins at once (`--ramp 1000`), same run.
runs += [(name, name.split("-")[1] + " (flash crowd: `--ramp 1000`)", name.split("-")[1])
         for name in sorted(f[:-5] for f in os.listdir(out) if f.startswith("flash-") and f.endswith(".json"))]
# Viewers whose packets go through their cores, which send TWCC feedback (an estimate per
# viewer at the edge), of one layer and of three simulcast layers (scripts/simulcast_bench.sh).
runs += [(name, name.split("-")[1] + " (estimation: viewers send TWCC)", name.split("-")[1])
         for name in sorted(f[:-5] for f in os.listdir(out) if f.startswith("est-") and f.endswith(".json"))]
runs += [(name, name.split("-")[1] + " (simulcast, 3 layers, and estimation)", name.split("-")[1])
         for name in sorted(f[:-5] for f in os.listdir(out) if f.startswith("sim-") and f.endswith(".json"))]
# The same, the viewers decrypting their media and writing their TWCC feedback themselves
# (`--viewer-twcc`): the edge's work is the same, the load generator's far less.
runs += [(name, name.split("-")[1] + " (estimation: viewers' own TWCC)", name.split("-")[1])
         for name in sorted(f[:-5] for f in os.listdir(out) if f.startswith("ownest-") and f.endswith(".json"))]
runs += [(name, name.split("-")[1] + " (simulcast, 3 layers, and estimation: viewers' own TWCC)", name.split("-")[1])
         for name in sorted(f[:-5] for f in os.listdir(out) if f.startswith("ownsim-") and f.endswith(".json"))]
for name, label, n in runs:
    r = load(name)
    e = proc(r, "cascade-edge")
    cpu = e.get("cpu_avg_pct") or float("nan")
    # procstat.rs's ProcReport: memory in MiB (rss_avg_mib, rss_max_mib).
    rss = e.get("rss_max_mib")
    rss = float("nan") if rss is None else rss
    lg_cpu = (r.get("loadgen") or {}).get("cpu_avg_pct")
    lg_cpu = float("nan") if lg_cpu is None else lg_cpu
    pkts = r["packets"]["video"]["received"] + r["packets"]["audio"]["received"]
    pps = pkts / max(r["elapsed_s"], 1e-9)
    per_core = pps / (cpu / 100) if cpu == cpu and cpu > 0 else float("nan")
    j = r.get("join_ms") or {}
    loss = f'{r["packets"]["video"]["loss_pct"]:.3f} / {r["packets"]["audio"]["loss_pct"]:.3f}'
    if name.startswith("edge-"):
        rows.append((int(n), cpu, pps, (e.get("cpu_steady_pct") or float("nan"))))
    per_viewer_kib = rss * 1024 / max(int(n), 1)
    viewers_per_core = int(n) / (cpu / 100) if cpu == cpu and cpu > 0 else float("nan")
    st = r.get("steady") or {}
    st_cpu = e.get("cpu_steady_pct") or float("nan")
    st_pps = st.get("packets_per_s", float("nan"))
    st_per_core = st_pps / (st_cpu / 100) if st_cpu == st_cpu and st_cpu > 0 else float("nan")
    st_viewers_per_core = int(n) / (st_cpu / 100) if st_cpu == st_cpu and st_cpu > 0 else float("nan")
    print(f"| {label} | {r['viewers']['connected']} | {loss} | {j.get('p50_ms', float('nan')):.0f} | {j.get('p99_ms', float('nan')):.0f} | "
          f"{lat(r,'p50_ms'):.2f} | {lat(r,'p99_ms'):.2f} | {settled(r,'p50_ms'):.2f} | {settled(r,'p99_ms'):.2f} | {cpu:.0f} / {st_cpu:.0f} | {rss:.0f} | {per_viewer_kib:.0f} | {lg_cpu:.0f} | "
          f"{pps:.0f} / {st_pps:.0f} | {per_core:.0f} / {st_per_core:.0f} | {viewers_per_core:.0f} / {st_viewers_per_core:.0f} | "
          f"{per_core/limit['ceiling_pps_per_core']:.2f} | {per_core/limit['fanout_ceiling_pps_per_core']:.2f} | "
          f"{per_core/stream_ceiling(r):.2f} | {per_core/live_ceiling(r):.2f} | "
          f"{per_core/paced(n, 'ceiling_pps_per_core'):.2f} / {per_core/paced(n, 'ceiling_busy_reader_pps_per_core'):.2f} | "
          f"**{st_per_core/paced(n, 'ceiling_pps_per_core'):.2f} / {st_per_core/paced(n, 'ceiling_busy_reader_pps_per_core'):.2f}** |")
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    xs = [r[0] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(xs, [r[1] for r in rows], marker="o", label="edge CPU %, whole run")
    ax.plot(xs, [r[3] for r in rows], marker="s", label="edge CPU %, steady state")
    ax.set_xscale("log"); ax.set_xlabel("viewers on one edge"); ax.set_ylabel("CPU % (100 = one core)")
    ax.grid(True, alpha=0.3); ax.legend()
    fig.tight_layout(); fig.savefig(os.path.join(out, "scaling.png"), dpi=110)
    print(f"\nplot: {os.path.join(out, 'scaling.png')}")
except ImportError:
    print("\n(no matplotlib: no plot)")
