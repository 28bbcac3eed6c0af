#!/usr/bin/env python3
"""Plots `cascade-loadgen cluster-sim --json FILE` results as an SVG, with no dependencies.

Usage: scripts/plot_cluster_sim.py RESULTS.jsonl OUT.svg

Also prints the results as a Markdown table (BENCHMARKS.md's).

Three panels, one point per configuration (N nodes : M rooms), in the file's order:
Redis CPU (% of one core), commands and script calls per second; placement and claim latency
(p50 and p99, ms); the time a dead node's entries take to disappear and a dead origin's
rooms to be owned again (s), against the lease.
"""

import json
import sys

W, H = 980, 330
PAD_L, PAD_R, PAD_T, PAD_B = 60, 20, 40, 60
PANEL_W = (W - 20) // 3
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"]


def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def panel(x0, title, labels, series, ylabel, hline=None):
    """One line chart: `series` is [(name, [y or None per label], dashed)]."""
    out = []
    pw = PANEL_W - PAD_L - PAD_R
    ph = H - PAD_T - PAD_B
    ys = [y for _, vals, _ in series for y in vals if y is not None]
    if hline is not None:
        ys.append(hline[1])
    top = max(ys) * 1.15 if ys and max(ys) > 0 else 1.0
    left, base = x0 + PAD_L, PAD_T + ph
    out.append(f'<text x="{x0 + PANEL_W / 2}" y="18" text-anchor="middle" '
               f'font-weight="bold">{esc(title)}</text>')
    out.append(f'<line x1="{left}" y1="{PAD_T}" x2="{left}" y2="{base}" stroke="#333"/>')
    out.append(f'<line x1="{left}" y1="{base}" x2="{left + pw}" y2="{base}" stroke="#333"/>')
    for i in range(5):
        v = top * i / 4
        y = base - ph * i / 4
        out.append(f'<line x1="{left - 4}" y1="{y}" x2="{left + pw}" y2="{y}" stroke="#eee"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end" font-size="10">'
                   f'{v:.3g}</text>')
    out.append(f'<text x="{x0 + 14}" y="{PAD_T + ph / 2}" font-size="11" text-anchor="middle" '
               f'transform="rotate(-90 {x0 + 14} {PAD_T + ph / 2})">{esc(ylabel)}</text>')
    n = len(labels)
    xs = [left + pw * (i + 0.5) / n for i in range(n)]
    for x, label in zip(xs, labels):
        out.append(f'<text x="{x}" y="{base + 16}" text-anchor="middle" font-size="10">'
                   f'{esc(label)}</text>')
    if hline is not None:
        name, v = hline
        y = base - ph * v / top
        out.append(f'<line x1="{left}" y1="{y}" x2="{left + pw}" y2="{y}" stroke="#999" '
                   f'stroke-dasharray="2,3"/>')
        out.append(f'<text x="{left + pw}" y="{y - 4}" text-anchor="end" font-size="10" '
                   f'fill="#666">{esc(name)}</text>')
    for k, (name, vals, dashed) in enumerate(series):
        color = COLORS[k % len(COLORS)]
        pts = [(x, base - ph * v / top) for x, v in zip(xs, vals) if v is not None]
        dash = ' stroke-dasharray="5,3"' if dashed else ""
        if len(pts) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" '
                       f'stroke-width="2"{dash}/>')
        for x, y in pts:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>')
        ly = base + 32 + 12 * (k // 2)
        lx = left + (k % 2) * pw / 2
        out.append(f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 16}" y2="{ly - 4}" '
                   f'stroke="{color}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{lx + 20}" y="{ly}" font-size="10">{esc(name)}</text>')
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
    labels = [f"{r['nodes']}:{r['rooms'] // 1000}k" for r in rows]
    get = lambda r, *path: (lambda v: v)(_dig(r, path))
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>']
    svg += panel(0, "Redis load (N nodes : M rooms)", labels, [
        ("CPU % of one core", [get(r, "redis", "cpu_pct") for r in rows], False),
        ("commands/s ÷ 1000", [_k(get(r, "redis", "ops_per_sec")) for r in rows], True),
        ("EVALSHA/s ÷ 1000", [_k(get(r, "redis", "evalsha_per_sec")) for r in rows], True),
    ], "CPU % | thousands/s", hline=("one core", 100.0))
    svg += panel(PANEL_W, "Latency (ms)", labels, [
        ("placement p50", [get(r, "placement", "p50_ms") for r in rows], True),
        ("placement p99", [get(r, "placement", "p99_ms") for r in rows], False),
        ("claim p50", [get(r, "claim", "p50_ms") for r in rows], True),
        ("claim p99", [get(r, "claim", "p99_ms") for r in rows], False),
    ], "ms")
    lease = rows[0]["lease_s"] if rows else 10
    svg += panel(2 * PANEL_W, "Dead node (s after the kill)", labels, [
        ("entries gone", [get(r, "deaths", "cleanup_s") for r in rows], False),
        ("rooms owned again", [get(r, "deaths", "failover_s") for r in rows], True),
    ], "s", hline=("lease", lease))
    svg.append("</svg>")
    with open(sys.argv[2], "w") as f:
        f.write("\n".join(svg) + "\n")
    print(markdown(rows))


def markdown(rows):
    """The table of BENCHMARKS.md: one row per configuration."""
    f = lambda v, d=1: "-" if v is None else f"{v:,.{d}f}"
    pp = lambda p: f"{f(p.get('p50_ms'))} / {f(p.get('p99_ms'))}"
    out = ["| N | M | joins+leaves/s, viewers/s | Redis commands/s (EVALSHA/s) | Redis CPU % | "
           "Redis MiB | placement p50 / p99 ms | claim p50 / p99 ms | dead node gone s "
           "(rooms re-owned s) | errors | rooms without owner |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        red, d = r["redis"], r["deaths"]
        out.append(
            f"| {r['nodes']:,} | {r['rooms']:,} | {r['churn_per_sec']:.0f}+{r['churn_per_sec']:.0f}, "
            f"{r['viewers_per_sec']:.0f} | {f(red['ops_per_sec'], 0)} ({f(red['evalsha_per_sec'], 0)}) "
            f"| {f(red['cpu_pct'])} | {f(red['memory_mib'])} | {pp(r['placement'])} | "
            f"{pp(r['claim'])} | {f(d.get('cleanup_s'))} ({f(d.get('failover_s'))}) | "
            f"{r['errors'] + r.get('store_errors', r.get('refresh_errors', 0))} | "
            f"{r['owners_steady']['missing']:,} |")
    return "\n".join(out)


def _dig(r, path):
    for p in path:
        if r is None:
            return None
        r = r.get(p)
    return r


def _k(v):
    return None if v is None else v / 1000


if __name__ == "__main__":
    main()
