# SPDX-License-Identifier: GPL-2.0
"""Turn a guest console into test results.

Two KTAP streams share the console:
- the scenario's, printed by the guest's userspace (lines without a printk
  timestamp), flat: "ok 3 description", "not ok 4 description", "# SKIP";
- KUnit's, printed by the kernel (lines "[    1.234567] ..."), nested by
  indentation with "# Subtest: suite" lines; each test case becomes a result.

On top of those, the console itself is a test: any Oops, BUG, WARNING, Call
Trace or panic fails it, so a crashing kernel can never pass.
"""

import re
from dataclasses import dataclass

TS = re.compile(r"^\[\s*\d+\.\d+\]\s?")
# A printk line that interrupted a userspace line on the shared console.
EMBEDDED_TS = re.compile(r"(?<=\S)(?=\[\s*\d+\.\d{6}\] )")
RESULT = re.compile(r"^(\s*)(not ok|ok) (\d+)\s*(?:-\s*)?([^#]*?)\s*(?:#\s*(.*))?$")
SUBTEST = re.compile(r"^(\s*)# Subtest: (.*)$")
PLAN = re.compile(r"^(\d+)\.\.(\d+)$")
EXIT = re.compile(r"^# vmem-scenario-exit: (\d+)$")
# A scenario crashes the kernel on purpose (kdump): the crash report up to the next
# kernel's first line is expected, not a finding.
EXPECTED_CRASH = re.compile(r"^# vmem-expected-crash$")
NEXT_KERNEL = re.compile(r"^Linux version ")

# What a healthy kernel never prints.
BAD = re.compile(
    r"\bOops\b|\bBUG[: ]|WARNING:|Call Trace:|Kernel panic|general protection fault"
    r"|page allocation failure|Out of memory|UBSAN:|KASAN:|refcount_t:|list_(add|del) corruption"
    r"|RCU detected stall|soft lockup|hung_task|rust_panic|panicked at")


@dataclass
class Result:
    name: str
    ok: bool
    skipped: bool = False
    detail: str = ""


def parse(lines, timed_out=False, expect_scenario=True):
    """Return a list of Result for one guest run."""
    results = []
    scenario_plan = None
    exit_code = None
    kunit_stack = []          # [(indent, suite name)]
    bad = []
    in_expected_crash = False
    split = []
    for raw in lines:
        split.extend(EMBEDDED_TS.split(raw))
    for raw in split:
        is_kernel = bool(TS.match(raw))
        line = TS.sub("", raw)
        # Only the kernel reports Oopses and warnings, always with a printk timestamp
        # (CONFIG_PRINTK_TIME); userspace text that mentions them is not one.
        if not is_kernel and EXPECTED_CRASH.match(line.strip()):
            in_expected_crash = True
            continue
        if is_kernel and in_expected_crash and NEXT_KERNEL.match(line):
            in_expected_crash = False
        if is_kernel and BAD.search(line) and not in_expected_crash:
            bad.append(raw.strip())
        if is_kernel:
            m = SUBTEST.match(line)
            if m:
                indent = len(m.group(1))
                kunit_stack = [s for s in kunit_stack if s[0] < indent] + [(indent, m.group(2).strip())]
                continue
            m = RESULT.match(line)
            if m and kunit_stack:
                indent = len(m.group(1))
                directive = (m.group(5) or "").strip()
                # "# Subtest:" shares the indentation of its cases; the
                # suite's own result sits one level further out.
                owners = [s for s in kunit_stack if s[0] <= indent]
                closes = [s for s in kunit_stack if s[0] > indent]
                if owners and owners[-1][0] == indent:
                    name = "kunit: " + " / ".join(s[1] for s in owners) + " / " + m.group(4)
                    results.append(Result(name, m.group(2) == "ok",
                                          directive.upper().startswith("SKIP"), directive))
                elif closes and m.group(2) == "not ok":
                    # A suite can fail without a failing case (init failed).
                    results.append(Result("kunit: " + " / ".join(s[1] for s in owners + closes[:1]),
                                          False, detail=directive))
                kunit_stack = owners
            continue
        m = EXIT.match(line)
        if m:
            exit_code = int(m.group(1))
            continue
        m = PLAN.match(line.strip())
        if m:
            scenario_plan = int(m.group(2))
            continue
        m = RESULT.match(line)
        if m and not m.group(1):
            directive = (m.group(5) or "").strip()
            skipped = directive.upper().startswith("SKIP")
            results.append(Result(m.group(4), m.group(2) == "ok", skipped, directive))

    n_scen = sum(1 for r in results if not r.name.startswith("kunit: "))
    if timed_out:
        results.append(Result("guest finished before the timeout", False,
                              detail="killed by the harness"))
    elif expect_scenario:
        if exit_code is None:
            results.append(Result("guest scenario ran to its end", False,
                                  detail="no exit marker on the console"))
        elif exit_code != 0:
            results.append(Result("guest scenario exit status", False, detail=f"exit {exit_code}"))
        if scenario_plan is None or scenario_plan != n_scen:
            results.append(Result("guest scenario plan matches its results", False,
                                  detail=f"plan {scenario_plan}, saw {n_scen} results"))
    results.append(Result("console clean (no Oops/BUG/WARNING/Call Trace/panic)", not bad,
                          detail="; ".join(bad[:3])))
    return results


def parse_host(lines, returncode):
    """Results of a host-side KTAP program (no console to scan)."""
    results, plan = [], None
    for line in lines:
        m = PLAN.match(line.strip())
        if m:
            plan = int(m.group(2))
            continue
        m = RESULT.match(line)
        if m and not m.group(1):
            directive = (m.group(5) or "").strip()
            results.append(Result(m.group(4), m.group(2) == "ok",
                                  directive.upper().startswith("SKIP"), directive))
    if plan is None or plan != len(results):
        results.append(Result("plan matches its results", False,
                              detail=f"plan {plan}, saw {len(results)} results"))
    if returncode != 0 and all(r.ok for r in results):
        results.append(Result("exit status", False, detail=f"exit {returncode}"))
    return results
