# SPDX-License-Identifier: GPL-2.0
"""Benchmark results: parse the guests' "# bench:" lines, aggregate C against Rust.

A guest prints "# bench: METRIC VALUE UNIT [key=value ...]"; the keys are /proc/vmstat
deltas that explain the value. Each (metric, driver) gets the median and the spread
(min..max) over the repetitions, and each metric the Rust/C ratio of the medians.
"""

import csv
import re
import statistics

BENCH_RE = re.compile(r"# bench: (\S+) (\S+) (\S+)(.*)$")

# For these units a larger value is better; for the others (seconds) smaller is better.
HIGHER_IS_BETTER = {"MiB", "MiB/s", "pages"}


def parse_bench(lines):
    """[(metric, value, unit, {key: value})] from a guest console."""
    out = []
    for line in lines:
        m = BENCH_RE.search(line)
        if not m:
            continue
        try:
            value = float(m.group(2))
        except ValueError:
            continue
        ctx = {}
        for kv in m.group(4).split():
            k, _, v = kv.partition("=")
            if v:
                ctx[k] = v
        out.append((m.group(1), value, m.group(3), ctx))
    return out


def aggregate(rows):
    """rows: dicts with metric, driver, value, unit. Returns a list of dicts per metric:
    metric, unit, and per driver n/median/min/max, plus ratio (rust/c) and better."""
    by = {}
    units = {}
    for r in rows:
        by.setdefault(r["metric"], {}).setdefault(r["driver"], []).append(float(r["value"]))
        units[r["metric"]] = r["unit"]
    table = []
    for metric in sorted(by):
        entry = {"metric": metric, "unit": units[metric]}
        for d, vals in by[metric].items():
            entry[d] = {"n": len(vals), "median": statistics.median(vals),
                        "min": min(vals), "max": max(vals)}
        c, rust = entry.get("c"), entry.get("rust")
        entry["ratio"] = None
        entry["better"] = None
        if c and rust and c["median"] != 0:
            entry["ratio"] = rust["median"] / c["median"]
            if rust["median"] == c["median"]:
                entry["better"] = "same"
            else:
                rust_higher = rust["median"] > c["median"]
                hib = entry["unit"] in HIGHER_IS_BETTER
                entry["better"] = "rust" if rust_higher == hib else "c"
        table.append(entry)
    return table


def format_table(table):
    head = f"{'metric':34} {'unit':6} {'C median [min..max]':>26} {'Rust median [min..max]':>26} {'Rust/C':>7}  better"
    lines = [head, "-" * len(head)]

    def cell(e):
        if not e:
            return "-"
        return f"{e['median']:.3g} [{e['min']:.3g}..{e['max']:.3g}] n={e['n']}"
    for e in table:
        ratio = f"{e['ratio']:.2f}" if e["ratio"] is not None else "-"
        lines.append(f"{e['metric']:34} {e['unit']:6} {cell(e.get('c')):>26} "
                     f"{cell(e.get('rust')):>26} {ratio:>7}  {e['better'] or '-'}")
    return "\n".join(lines)


def write_csv(path, rows):
    keys = sorted({k for r in rows for k in r.get("ctx", {})})
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["rep", "driver", "scenario", "metric", "value", "unit", "ok"] + keys)
        for r in rows:
            w.writerow([r["rep"], r["driver"], r["scenario"], r["metric"], r["value"], r["unit"],
                        int(r["ok"])] + [r.get("ctx", {}).get(k, "") for k in keys])


def plot(path, table):
    """One panel per unit: C and Rust medians side by side with min..max error bars."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    units = sorted({e["unit"] for e in table})
    fig, axes = plt.subplots(len(units), 1, figsize=(11, 3.2 * len(units)), squeeze=False)
    for ax, unit in zip(axes[:, 0], units):
        rows = [e for e in table if e["unit"] == unit]
        xs = range(len(rows))
        for off, d, color in ((-0.2, "c", "#7f7f7f"), (0.2, "rust", "#b7410e")):
            med = [e[d]["median"] if d in e else 0 for e in rows]
            lo = [e[d]["median"] - e[d]["min"] if d in e else 0 for e in rows]
            hi = [e[d]["max"] - e[d]["median"] if d in e else 0 for e in rows]
            ax.bar([x + off for x in xs], med, 0.4, yerr=[lo, hi], capsize=3, color=color,
                   label="C" if d == "c" else "Rust")
        for x, e in zip(xs, rows):
            if e["ratio"] is not None:
                top = max(e[d]["max"] for d in ("c", "rust") if d in e)
                ax.annotate(f"{e['ratio']:.2f}x", (x, top), ha="center", va="bottom", fontsize=8)
        ax.set_xticks(list(xs))
        ax.set_xticklabels([e["metric"] for e in rows], rotation=20, ha="right", fontsize=8)
        ax.set_ylabel(unit)
        ax.legend(fontsize=8)
    fig.suptitle("virtio-mem / virtio-balloon: C vs Rust (median, min..max; label = Rust/C)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
