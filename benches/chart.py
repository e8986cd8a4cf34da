#!/usr/bin/python3
"""Bar charts (SVG, no dependencies) of the end-to-end bench results.

    benches/chart.py RESULTS.json [RESULTS.json ...] [--out FILE.svg]

Each results file (benches/vhost/results-*.json or benches/veth/results-*.json) becomes an
SVG beside it (same name, .svg): one group of bars per case, one bar per switch side by side
(vecswitch, OVS-DPDK / OVS, the testpmd ceiling), Mpps on the y axis. Where the bench probed
where the host ran the two vCPUs (the vhost bench's coreping, before and after each run), a
switch gets a bar per placement: solid for runs with the cores near each other, hatched for
far, dotted outline for runs whose placement moved during the run; each bar is the median
of those runs, each dot one run. The veth bench does not probe placement: one bar per
switch, the median of its runs. The bench scripts call write() after saving their JSON.
"""

import argparse
import json
import math
import os
import statistics
import sys
from xml.sax.saxutils import escape

# Runs whose cores were closer than this (coreping round trip, ns) count as "near"; the
# same rule as benches/vhost/bench.py's placement().
NEAR_NS = 150

# Display order and colours; a switch not listed gets the next colour of PALETTE.
COLOURS = {
    "vecswitch": "#1f77b4", "vecswitch-b": "#17becf", "vecswitch-afpacket": "#9edae5",
    "ovs-dpdk": "#d62728", "ovs-afxdp": "#ff7f0e", "ceiling": "#7f7f7f",
    "testpmd-io": "#7f7f7f", "pktgen": "#1f77b4", "testpmd": "#7f7f7f",
}
PALETTE = ["#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#bcbd22"]
LABELS = {"ceiling": "testpmd ceiling", "testpmd-io": "testpmd io (ceiling)",
          "ovs-afxdp": "OVS afxdp", "ovs-dpdk": "OVS-DPDK"}
PLACEMENTS = ("near", "far", "moved", "all")
PLACEMENT_TEXT = {"near": "vCPUs near", "far": "vCPUs far",
                  "moved": "placement moved during the run", "all": "placement not probed"}


def placement(r):
    """near or far; "moved" when the probes before and after the run disagree; "all" when
    the run has no probe."""
    ns = r.get("cores_apart_ns")
    if ns is None:
        return "all"
    where = "near" if ns < NEAR_NS else "far"
    before = r.get("cores_apart_before_ns")
    if before is not None and (before < NEAR_NS) != (where == "near"):
        return "moved"
    return where


def series(res):
    """(title, cases, switches, bars): bars maps (case, switch) to a list of
    (placement, median Mpps, [each run's Mpps]) in PLACEMENTS order."""
    runs = {}  # (case, switch) -> [(placement, mpps)]
    cases, switches = [], []

    def add(case, switch, items):
        if case not in cases:
            cases.append(case)
        if switch not in switches:
            switches.append(switch)
        runs.setdefault((case, switch), []).extend(items)

    if "rows" in res:  # the vhost-user loop
        title = "vhost-user loop: Mpps, both directions summed"
        for row in res["rows"]:
            rs = row.get("runs") or [row]
            add(row["case"], row["switch"],
                [(placement(r), r["mpps"]) for r in rs if r.get("mpps") is not None])
    else:  # veth: generators into the sink, then forwarding through each switch
        title = "veth: Mpps into the XDP_DROP sink"
        for row in res.get("gen", []):
            rs = row.get("runs") or [row]
            add(f"generator {row['size']} B, {row['flows']} flow(s)", row["generator"],
                [("all", r["sink_mpps"]) for r in rs if r.get("sink_mpps") is not None])
        for sec in ("fwd", "afp"):
            for row in res.get(sec, []):
                rs = row.get("runs") or [row]
                add(f"{row['size']} B, {row['flows']} flow(s)", row["switch"],
                    [("all", r["sink_mpps"]) for r in rs if r.get("sink_mpps") is not None])
    known = [s for s in COLOURS if s in switches]
    switches = known + [s for s in switches if s not in known]
    bars = {}
    for key, items in runs.items():
        out = []
        for p in PLACEMENTS:
            vs = [v for q, v in items if q == p]
            if vs:
                out.append((p, statistics.median(vs), vs))
        bars[key] = out
    return title, cases, switches, bars


def nice_top(v):
    """The smallest of 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 times a power of ten at or above v."""
    if v <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(v))
    for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * e >= v:
            return m * e
    return 10 * e


def svg(res, name=""):
    """The chart of one results file as SVG text."""
    title, cases, switches, bars = series(res)
    colour = dict(COLOURS)
    extra = iter(PALETTE * 4)
    for s in switches:
        if s not in colour:
            colour[s] = next(extra)
    bw, gap, left, top, plot_h = 22, 26, 64, 70, 300
    widths, used = [], []
    for c in cases:
        n = sum(len(bars.get((c, s), [])) for s in switches)
        used.append(n * bw + (len([s for s in switches if (c, s) in bars]) - 1) * 4)
        widths.append(max(used[-1], len(c) * 7, 60))
    plot_w = sum(widths) + gap * (len(cases) + 1)
    cols, col_w = 3, 230
    sub = res.get("date", "")
    if res.get("mode"):
        sub += f", {res['mode']} mode"
    if name:
        sub = f"{name} ({sub})"
    sub += "; bar: median, dot: one run"
    width = max(left + plot_w + 20, left + cols * col_w, left + len(sub) * 6 + 20)
    legend_rows = (len(switches) + cols - 1) // cols
    height = top + plot_h + 50 + 18 * legend_rows + 24
    vmax = max([v for bs in bars.values() for _, _, vs in bs for v in vs] + [0.0])
    ymax = nice_top(vmax * 1.08)
    scale = plot_h / ymax
    y0 = top + plot_h
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
         f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
         "<defs>"]
    for s in switches:
        pid = "hatch-" + "".join(ch if ch.isalnum() else "-" for ch in s)
        o.append(f'<pattern id="{pid}" patternUnits="userSpaceOnUse" width="6" height="6" '
                 f'patternTransform="rotate(45)"><rect width="6" height="6" fill="white"/>'
                 f'<rect width="3" height="6" fill="{colour[s]}"/></pattern>')
    o.append("</defs>")
    o.append(f'<rect width="{width}" height="{height}" fill="white"/>')
    o.append(f'<text x="{left}" y="22" font-size="15" font-weight="bold">{escape(title)}</text>')
    o.append(f'<text x="{left}" y="40" fill="#444">{escape(sub)}</text>')
    # Axis and grid.
    for i in range(6):
        v = ymax * i / 5
        y = y0 - v * scale
        o.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" '
                 f'stroke="#ddd"/>')
        o.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{v:g}</text>')
    o.append(f'<text x="16" y="{top + plot_h / 2}" transform="rotate(-90 16 {top + plot_h / 2})"'
             f' text-anchor="middle">Mpps</text>')
    o.append(f'<line x1="{left}" y1="{y0}" x2="{left + plot_w}" y2="{y0}" stroke="black"/>')
    x = left + gap
    for c, w, u in zip(cases, widths, used):
        bx = x + (w - u) / 2
        for s in switches:
            bs = bars.get((c, s), [])
            for p, med, vs in bs:
                h = med * scale
                fill = colour[s]
                style = f'fill="{fill}"'
                if p == "far":
                    pid = "hatch-" + "".join(ch if ch.isalnum() else "-" for ch in s)
                    style = f'fill="url(#{pid})" stroke="{fill}"'
                elif p == "moved":
                    style = f'fill="{fill}" fill-opacity="0.35" stroke="{fill}" ' \
                            f'stroke-dasharray="2,2"'
                label = LABELS.get(s, s)
                o.append(f'<rect class="bar" data-case="{escape(c)}" data-switch="{escape(s)}" '
                         f'data-placement="{p}" data-mpps="{med:.6g}" data-runs="{len(vs)}" '
                         f'x="{bx}" y="{y0 - h:.2f}" width="{bw - 2}" height="{h:.2f}" {style}>'
                         f'<title>{escape(c)}, {escape(label)}, {PLACEMENT_TEXT[p]}: '
                         f'{med:.2f} Mpps (median of {len(vs)})</title></rect>')
                for v in vs:
                    o.append(f'<circle cx="{bx + (bw - 2) / 2}" cy="{y0 - v * scale:.2f}" r="2" '
                             f'fill="black" fill-opacity="0.6"/>')
                ty = y0 - max(vs + [med]) * scale - 5
                o.append(f'<text x="{bx + (bw - 2) / 2}" y="{ty:.2f}" font-size="9" '
                         f'text-anchor="middle">{med:.3g}</text>')
                if p != "all":
                    o.append(f'<text x="{bx + (bw - 2) / 2}" y="{y0 + 11}" font-size="8" '
                             f'text-anchor="middle" fill="#444">{p[0].upper()}</text>')
                bx += bw
            if bs:
                bx += 4
        o.append(f'<text x="{x + w / 2}" y="{y0 + 26}" text-anchor="middle" '
                 f'font-weight="bold">{escape(c)}</text>')
        x += w + gap
    # Legend: switches, then what the bar styles mean.
    ly = y0 + 50
    for i, s in enumerate(switches):
        lx = left + (i % cols) * col_w
        yy = ly + (i // cols) * 18
        o.append(f'<rect x="{lx}" y="{yy - 9}" width="12" height="12" fill="{colour[s]}"/>')
        label = LABELS.get(s, s) + (f" ({s})" if s in LABELS else "")
        o.append(f'<text class="legend" x="{lx + 16}" y="{yy + 1}">{escape(label)}</text>')
    ly += 18 * legend_rows + 4
    used = {p for bs in bars.values() for p, _, _ in bs}
    keys = {"near": "N, solid: vCPUs near (coreping < 150 ns)",
            "far": "F, hatched: vCPUs far", "moved": "M, dotted: placement moved during the run",
            "all": "placement not probed by this bench"}
    text = "; ".join(keys[p] for p in PLACEMENTS if p in used)
    o.append(f'<text x="{left}" y="{ly}" fill="#444">{escape(text)}</text>')
    o.append("</svg>")
    return "\n".join(o) + "\n"


def write(path, out=None):
    """Writes the chart of the results file `path` (to `out`, default beside it as .svg);
    returns the SVG's path."""
    with open(path) as f:
        res = json.load(f)
    out = out or os.path.splitext(path)[0] + ".svg"
    text = svg(res, os.path.basename(path))
    with open(out, "w") as f:
        f.write(text)
    return out


def main():
    ap = argparse.ArgumentParser(description="SVG bar charts of bench results JSON")
    ap.add_argument("results", nargs="+", help="results-*.json of benches/vhost or benches/veth")
    ap.add_argument("--out", help="SVG file (one results file only; default: beside it)")
    a = ap.parse_args()
    if a.out and len(a.results) > 1:
        ap.error("--out takes one results file")
    for p in a.results:
        try:
            print(write(p, a.out))
        except (OSError, ValueError, KeyError) as e:
            print(f"chart.py: {p}: {e}", file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()
