#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Host tests of the runner's result parser (scripts/vmemh/results.py).

The parser decides what counts as a failure, so it is tested on its own:
every way a guest run can go wrong must come out as a failed result.
"""

import os
import sys

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "scripts"))
from vmemh.results import parse  # noqa: E402

n = 0
bad = 0


def check(desc, cond):
    global n, bad
    n += 1
    bad += not cond
    print(f"{'ok' if cond else 'not ok'} {n} {desc}")


def failed(lines, **kw):
    return [r.name for r in parse(lines, **kw) if not r.ok and not r.skipped]


GOOD = ["KTAP version 1", "ok 1 a", "ok 2 b", "1..2", "# vmem-scenario-exit: 0"]
print("KTAP version 1")
check("a clean run has no failure", failed(GOOD) == [])
check("'not ok' fails", failed(["not ok 1 a", "1..1", "# vmem-scenario-exit: 1"]) != [])
for text in ("WARNING: CPU: 1 PID: 5 at mm/x.c:1", "Oops: 0000 [#1] SMP", "BUG: unable to handle",
             "Call Trace:", "Kernel panic - not syncing", "page allocation failure: order:0",
             "Out of memory: Killed process 1"):
    check(f"console line '{text[:24]}' fails the run",
          any(x.startswith("console clean") for x in failed(GOOD + [f"[    3.1] {text}"])))
# A deliberate crash (kdump scenarios) is exempt only until the next kernel boots.
CRASH = ["KTAP version 1", "ok 1 a", "# vmem-expected-crash", "[    5.1] sysrq: Trigger a crash",
         "[    5.1] Kernel panic - not syncing: sysrq triggered crash", "[    5.1] Call Trace:",
         "[    0.000000] Linux version 7.3.4 (root@x) #1 SMP", "ok 2 b", "1..2",
         "# vmem-scenario-exit: 0"]
check("an expected crash does not fail the run", failed(CRASH) == [])
check("an Oops in the kernel booted after it still fails",
      any(x.startswith("console clean") for x in failed(CRASH[:-2] + ["[    2.0] Oops: 0000 [#1] SMP"]
                                                        + CRASH[-2:])))
check("a crash before the marker still fails",
      any(x.startswith("console clean") for x in failed(["[    1.0] Kernel panic - not syncing"] + CRASH)))
check("the marker from the kernel log does not exempt anything",
      any(x.startswith("console clean") for x in failed(
          GOOD[:2] + ["[    1.0] # vmem-expected-crash", "[    1.1] Call Trace:"] + GOOD[2:])))
check("a timeout fails", "guest finished before the timeout" in failed(GOOD, timed_out=True))
check("a missing exit marker fails", failed(GOOD[:-1]) != [])
check("a missing plan fails", failed([l for l in GOOD if l != "1..2"]) != [])
check("a short plan fails", failed(["ok 1 a", "1..2", "# vmem-scenario-exit: 0"]) != [])
check("a non-zero scenario exit fails", failed(GOOD[:-1] + ["# vmem-scenario-exit: 1"]) != [])
kunit = ["[    1.0]     # Subtest: s", "[    1.0]     1..1", "[    1.1]     not ok 1 case",
         "[    1.2] not ok 1 s"]
check("a failing KUnit case fails", "kunit: s / case" in failed(kunit + GOOD))
skipped = [r for r in parse(["ok 1 a # SKIP no device", "1..1", "# vmem-scenario-exit: 0"])
           if r.skipped]
check("a skip is reported as skipped, not passed", len(skipped) == 1)
glued = ["KTAP version 1", "ok 1 a[    1.936965] input: mouse", "1..1", "# vmem-scenario-exit: 0"]
names = [r.name for r in parse(glued)]
check("a kernel line glued into a result line is split off", "a" in names and failed(glued) == [])
glued_warn = ["ok 1 a[    2.000001] WARNING: CPU: 0 at x", "1..1", "# vmem-scenario-exit: 0"]
check("...and a WARNING glued that way still fails the run",
      any(x.startswith("console clean") for x in failed(glued_warn)))
quoted = GOOD[:-2] + ["ok 3 no page allocation failure", "1..3", "# vmem-scenario-exit: 0"]
check("a userspace line that names a failure is not a kernel failure", failed(quoted) == [])
check("...while the kernel's own line is",
      any(x.startswith("console clean") for x in failed(GOOD + ["[   9.000001] x: page allocation failure: order:0"])))
relayed = ["KTAP version 1", "ok 1 a", "ok 2 b # SKIP no virtio-mem device", "ok 3 c # skip lower case",
           "1..3", "# vmem-scenario-exit: 0"]
res = {r.name: r for r in parse(relayed)}
check("a relayed kselftest skip counts as skipped, with its reason",
      res["b"].skipped and res["b"].detail == "SKIP no virtio-mem device")
check("...in any case, and a skip is never a pass or a failure",
      res["c"].skipped and failed(relayed) == [] and not res["a"].skipped)
print(f"1..{n}")
sys.exit(1 if bad else 0)
