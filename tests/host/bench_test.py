#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Host tests of the benchmark's parser and aggregation (scripts/vmemh/bench.py)."""

import csv
import os
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "scripts"))
from vmemh import bench  # noqa: E402
from vmemh.ktap import Ktap  # noqa: E402

ktap = Ktap()
check = ktap.check


lines = [
    "[   12.5] random kernel line # bench: not_this 1 s",
    "# bench: plug_sbm_256M 1.250 s pgmigrate_success=0 compact_stall=3",
    "# bench: unplug_frag_achieved_30s 512 MiB",
    "# bench: broken notanumber s",
    "ok 1 something",
]
got = bench.parse_bench(lines)
check("parses the console's bench lines, value and unit",
      [(m, v, u) for m, v, u, _ in got][-2:] == [("plug_sbm_256M", 1.25, "s"),
                                                ("unplug_frag_achieved_30s", 512.0, "MiB")])
check("keeps the vmstat context", got[-2][3] == {"pgmigrate_success": "0", "compact_stall": "3"})
check("skips a line whose value is not a number",
      all(m != "broken" for m, _, _, _ in got))

rows = []
for d, vals in (("c", [4.0, 2.0, 3.0]), ("rust", [1.0, 2.0, 1.5])):
    for i, v in enumerate(vals):
        rows.append({"rep": i, "driver": d, "metric": "t", "value": v, "unit": "s"})
for d, vals in (("c", [100, 300]), ("rust", [500, 700])):
    for i, v in enumerate(vals):
        rows.append({"rep": i, "driver": d, "metric": "got", "value": v, "unit": "MiB"})
t = {e["metric"]: e for e in bench.aggregate(rows)}
check("median and spread per driver",
      (t["t"]["c"]["median"], t["t"]["c"]["min"], t["t"]["c"]["max"]) == (3.0, 2.0, 4.0))
check("ratio is Rust/C of the medians", abs(t["t"]["ratio"] - 0.5) < 1e-9)
check("seconds: smaller is better", t["t"]["better"] == "rust")
check("MiB achieved: larger is better", t["got"]["better"] == "rust" and t["got"]["ratio"] == 3.0)
one = bench.aggregate([{"driver": "c", "metric": "x", "value": 1, "unit": "s"}])
check("no ratio without both drivers", one[0]["ratio"] is None)
check("the table prints every metric", all(m in bench.format_table(list(t.values())) for m in t))

with tempfile.TemporaryDirectory() as d:
    p = os.path.join(d, "b.csv")
    bench.write_csv(p, [{"rep": 0, "driver": "c", "scenario": "s", "metric": "m", "value": 1.5,
                         "unit": "s", "ok": True, "ctx": {"pgmigrate_success": "7"}}])
    with open(p) as f:
        r = list(csv.DictReader(f))
    check("CSV has the sample and its context",
          r[0]["metric"] == "m" and r[0]["pgmigrate_success"] == "7" and r[0]["ok"] == "1")

sys.exit(ktap.finish())
