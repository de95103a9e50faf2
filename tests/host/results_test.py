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
import re  # noqa: E402

from vmemh.results import CHECKERS, Known, judge_skips, parse  # noqa: E402
from vmemh.ktap import Ktap  # noqa: E402

ktap = Ktap()
check = ktap.check


def failed(lines, **kw):
    return [r.name for r in parse(lines, **kw) if not r.ok and not r.skipped]


GOOD = ["KTAP version 1", "ok 1 a", "ok 2 b", "1..2", "# vmem-scenario-exit: 0"]
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

# --- the kernel's checkers -------------------------------------------------------------
SAMPLES = {
    "lockdep": "WARNING: possible circular locking dependency detected",
    "atomic-sleep": "BUG: sleeping function called from invalid context at mm/slub.c:4",
    "kasan": "BUG: KASAN: slab-out-of-bounds in foo+0x1/0x2",
    "kfence": "BUG: KFENCE: use-after-free read in canary+0x1/0x2",
    "list": "list_add double add: new=ffff, prev=ffff, next=ffff.",
    "odebug": "ODEBUG: object 0000 is on stack 0000, but NOT annotated.",
    "hung-task": "INFO: task canary_hung:77 blocked for more than 2 seconds.",
    "soft-lockup": "watchdog: BUG: soft lockup - CPU#1 stuck for 2s! [insmod:70]",
    "rcu-stall": "rcu: INFO: rcu_preempt self-detected stall on CPU",
    "wq-lockup": "BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 3s!",
    "ubsan": "UBSAN: array-index-out-of-bounds in x.c:1:2",
    "bad-page": "BUG: Bad page state in process x  pfn:12345",
    "slub": "BUG kmalloc-64 (Not tainted): Poison overwritten",
    "rust-panic": "rust_kernel: panicked at drivers/x.rs:1:1:",
    "oops": "Oops: general protection fault, probably for non-canonical address",
}
check("every checker has a sample line here", set(SAMPLES) == set(CHECKERS))
for kind, text in SAMPLES.items():
    r = [x for x in parse(GOOD + [f"[    3.1] {text}"]) if x.name.startswith("console clean")][0]
    check(f"a {kind} report fails the run and is named", not r.ok and r.detail.startswith(f"{kind}:"))
check("the RCU stall's other header is one too", any(x.startswith("console clean") for x in failed(
    GOOD + ["[    3.1] rcu: INFO: rcu_sched detected stalls on CPUs/tasks:"])))

# A canary: the expected checkers must report, nothing else may.
LOCKDEP = ["[    3.1] WARNING: possible circular locking dependency detected",
           "[    3.2] Call Trace:"]
ODEBUG = ["[    4.1] ODEBUG: object 0000 is on stack 0000, but NOT annotated.",
          "[    4.2] WARNING: CPU: 0 PID: 70 at lib/debugobjects.c:1 x+0x1/0x2", "[    4.3] Call Trace:"]
check("a canary whose report shows passes", failed(GOOD + LOCKDEP, expect_reports=["lockdep"]) == [])
check("a canary without its report fails",
      failed(GOOD, expect_reports=["lockdep"]) == ["the harness reports the deliberate lockdep bug"])
check("a canary with another report besides fails", failed(
    GOOD + LOCKDEP + ["[    5.0] BUG: KFENCE: use-after-free read in x"], expect_reports=["lockdep"])
    == ["console has no other report"])
check("a WARN()'s own WARNING line and trace belong to the checker's report",
      failed(GOOD + ODEBUG, expect_reports=["odebug"]) == [])
ODEBUG73 = ["[   22.084169] ODEBUG: object ffff is on stack ffff, but NOT annotated.",
            "[   22.085035] WARNING: lib/debugobjects.c:672 at lookup_object_or_alloc+0x17c/0x18f,"
            " CPU#1: kunit_try_catch/747", "[   22.1] Call Trace:"]
check("...in 7.3's WARNING format too", failed(GOOD + ODEBUG73, expect_reports=["odebug"]) == [])
check("a 7.3 WARNING on its own is a warning report", [r.detail.split(":")[0] for r in parse(
    GOOD + ODEBUG73[1:]) if r.name.startswith("console clean")] == ["warning"])
check("a WARNING canary is not satisfied by a checker's WARN()", failed(
    GOOD + ODEBUG, expect_reports=["warning"]) != [])

# Known upstream reports: explained ones are shown apart, anything else still fails.
KNOWN = [Known.parse("lockdep circular locking -- kn->active vs mem_hotplug_lock, see issue 12")]
res = [r for r in parse(GOOD + LOCKDEP, known=KNOWN) if r.name.startswith("console clean")][0]
check("a declared upstream report is a known failure, not a pass or a failure",
      res.known and not res.ok and "kn->active" in res.detail)
check("...a second, undeclared report beside it fails the run", any(
    x.startswith("console clean") for x in failed(
        GOOD + LOCKDEP + ["[    5.0] WARNING: CPU: 1 PID: 2 at mm/x.c:1 f+0x1/0x2", "[    5.1] Call Trace:"],
        known=KNOWN)))
check("...and so does a report of another checker that matches its text", any(
    x.startswith("console clean") for x in failed(
        GOOD + ["[    3.1] ODEBUG: circular locking object"], known=KNOWN)))
for bad_decl in ("nosuch circular -- why", "lockdep circular", "lockdep -- why"):
    try:
        Known.parse(bad_decl)
        check(f"a malformed known-upstream line is refused: {bad_decl!r}", False)
    except ValueError:
        check(f"a malformed known-upstream line is refused: {bad_decl!r}", True)

# Skips: only declared ones.
res = parse(relayed)
judge_skips(res, [(re.compile(r"^b$"), "no device here")])
byname = {r.name: r for r in res}
check("a declared skip stays a skip", byname["b"].skipped and byname["b"].ok)
check("an undeclared skip fails, with its reason",
      not byname["c"].skipped and not byname["c"].ok and "undeclared skip" in byname["c"].detail)
sys.exit(ktap.finish())
