#!/usr/bin/python3
"""benches/chart.py on checked-in results: the SVG parses as XML, and every case and every
switch of the JSON has its bars, each as high as the median the bench itself recorded for
that placement (benches/vhost/bench.py's near_mpps / far_mpps, veth's sink_mpps).
Run by `cargo test -p benches --test chart` (so by scripts/test.sh)."""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
SVG = "{http://www.w3.org/2000/svg}"
VHOST = ["vhost/results-2026-12-05T173944-full.json",  # placement probed
         "vhost/results-2026-11-22T120523-full.json",  # before the probe
         "vhost/results-2026-12-07T023450-quick.json"]
VETH = ["veth/results-2026-11-22-quick-0843.json",
        "veth/results-2026-12-05T004635-quick-umem-ab.json"]  # a switch in two rows


def chart(rel):
    """Runs chart.py as a user would; returns (results, svg root)."""
    src = os.path.join(HERE, rel)
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "chart.svg")
        subprocess.run([sys.executable, os.path.join(HERE, "chart.py"), src, "--out", out],
                       check=True, capture_output=True, text=True)
        root = ET.parse(out).getroot()
    with open(src) as f:
        return json.load(f), root


def bars(root):
    return {(b.get("data-case"), b.get("data-switch"), b.get("data-placement")): b
            for b in root.iter(SVG + "rect") if b.get("class") == "bar"}


def texts(root):
    return {t.text for t in root.iter(SVG + "text")}


class ChartTest(unittest.TestCase):
    def check_svg(self, root):
        self.assertEqual(root.tag, SVG + "svg")
        w, h = float(root.get("width")), float(root.get("height"))
        self.assertEqual(root.get("viewBox"), f"0 0 {root.get('width')} {root.get('height')}")
        # Every bar stands on one baseline, inside the picture, its height proportional to
        # its value.
        per_mpps = set()
        bottoms = set()
        for b in bars(root).values():
            x, y = float(b.get("x")), float(b.get("y"))
            bh = float(b.get("height"))
            self.assertTrue(0 <= x <= w and 0 <= y and y + bh <= h, b.attrib)
            bottoms.add(round(y + bh, 1))
            per_mpps.add(bh / float(b.get("data-mpps")))
        self.assertEqual(len(bottoms), 1, bottoms)
        self.assertLessEqual(max(per_mpps) / min(per_mpps), 1.001, per_mpps)

    def test_vhost(self):
        for rel in VHOST:
            with self.subTest(rel):
                res, root = chart(rel)
                self.check_svg(root)
                got, words = bars(root), texts(root)
                for row in res["rows"]:
                    case, sw = row["case"], row["switch"]
                    self.assertIn(case, words)
                    self.assertTrue(any(sw in t for t in words if t), sw)
                    mine = {p: b for (c, s, p), b in got.items() if (c, s) == (case, sw)}
                    self.assertTrue(mine, f"no bar for {case} {sw}")
                    for p in ("near", "far"):
                        if row.get(f"{p}_runs"):
                            self.assertAlmostEqual(float(mine[p].get("data-mpps")),
                                                   row[f"{p}_mpps"], places=4)
                            self.assertEqual(int(mine[p].get("data-runs")), row[f"{p}_runs"])
                        else:
                            self.assertNotIn(p, mine)
                    if "moved_runs" in row:
                        self.assertEqual(row["moved_runs"] > 0, "moved" in mine, mine)
                    else:  # no probe: one bar of all runs, the bench's median
                        self.assertEqual(set(mine), {"all"})
                        self.assertAlmostEqual(float(mine["all"].get("data-mpps")),
                                               row["mpps"], places=4)
                self.assertEqual(len({(c, s) for c, s, _ in got}),
                                 len({(r["case"], r["switch"]) for r in res["rows"]}))

    def test_veth(self):
        for rel in VETH:
            with self.subTest(rel):
                res, root = chart(rel)
                self.check_svg(root)
                got, words = bars(root), texts(root)
                want = {}
                for row in res["fwd"] + res["afp"]:
                    key = (f"{row['size']} B, {row['flows']} flow(s)", row["switch"])
                    want.setdefault(key, []).extend(r["sink_mpps"] for r in row["runs"])
                for row in res["gen"]:
                    key = (f"generator {row['size']} B, {row['flows']} flow(s)",
                           row["generator"])
                    want.setdefault(key, []).extend(r["sink_mpps"] for r in row["runs"])
                self.assertEqual({(c, s) for c, s, _ in got}, set(want))
                for (case, sw), runs in want.items():
                    self.assertIn(case, words)
                    self.assertTrue(any(sw in t for t in words if t), sw)
                    b = got[(case, sw, "all")]
                    self.assertAlmostEqual(float(b.get("data-mpps")), statistics.median(runs),
                                           places=5)
                    self.assertEqual(int(b.get("data-runs")), len(runs))

    def test_bad_input_is_named(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "bad.json")
            with open(p, "w") as f:
                f.write("{not json")
            r = subprocess.run([sys.executable, os.path.join(HERE, "chart.py"), p],
                               capture_output=True, text=True)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("bad.json", r.stderr)


if __name__ == "__main__":
    unittest.main()
