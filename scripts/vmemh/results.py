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

# What a healthy kernel never prints, by the checker that prints it. The first pattern
# that matches names a line's kind, so the specific reports come before the generic ones
# (lockdep and KFENCE reports begin with "WARNING:" and "BUG:" themselves).
REPORTS = [
    ("lockdep", r"possible circular locking dependency|inconsistent lock state"
                r"|possible recursive locking|suspicious RCU usage|bad unlock balance"
                r"|held lock freed|possible irq lock inversion|lock held when returning to user"
                r"|trying to register non-static key|\bDEBUG_LOCKS_WARN_ON\b"),
    ("atomic-sleep", r"BUG: sleeping function called from invalid context"
                     r"|BUG: scheduling while atomic|BUG: using smp_processor_id\(\) in preemptible"),
    ("kasan", r"\bKASAN:"),
    ("kfence", r"\bKFENCE:"),
    ("list", r"list_(add|del) corruption|list_add double add|\bhlist_\w+ corruption"),
    ("odebug", r"\bODEBUG:"),
    ("hung-task", r"INFO: task .* blocked for more than|\bhung_task\b"),
    ("soft-lockup", r"soft lockup"),
    ("rcu-stall", r"rcu: INFO: .*detected stalls|RCU detected stall|self-detected stall"),
    ("wq-lockup", r"BUG: workqueue lockup"),
    ("ubsan", r"\bUBSAN:"),
    # Not "page dumped because:" alone: offlining prints it for an unmovable page it gives
    # up on (has_unmovable_pages()), which is no bug; a bad page has its own header.
    ("bad-page", r"BUG: Bad page (state|map)|pagealloc: memory corruption"),
    ("slub", r"BUG \S+ \(.*\): |Poison overwritten|Redzone overwritten|Object already free"),
    ("rust-panic", r"rust_panic|panicked at"),
    ("oops", r"\bOops\b|general protection fault|Kernel panic|BUG: unable to handle"),
    ("warning", r"WARNING:"),
    ("trace", r"Call Trace:"),
    ("other", r"\bBUG[: ]|page allocation failure|Out of memory|refcount_t:"),
]
REPORT_RES = [(kind, re.compile(rx)) for kind, rx in REPORTS]
BAD = re.compile("|".join(f"(?:{rx})" for _, rx in REPORTS))
# Every checker the test kernel has, and so a canary scenario that proves it reported.
CHECKERS = [k for k, _ in REPORTS if k not in ("warning", "trace", "other")]


def report_kind(line):
    """The checker that printed console line `line` (without its timestamp), or None."""
    for kind, rx in REPORT_RES:
        if rx.search(line):
            return kind
    return None


@dataclass
class Report:
    kind: str
    line: str
    # The report's stack dump ("Call Trace:") was seen: it belongs to this report.
    traced: bool = False
    # The "WARNING: CPU: ..." line of the WARN() a checker printed its report with.
    warned: bool = False
    known: str = ""          # the known-upstream declaration that explains it


# "WARNING: CPU: 0 PID: 1 at mm/x.c:1 f+0x1/0x2" (older kernels) or
# "WARNING: mm/x.c:1 at f+0x1/0x2, CPU#0: comm/1" (7.3).
WARN_SITE = re.compile(r"WARNING: (CPU: \d+ PID: \d+ at |\S+:\d+ at \S+, CPU#\d+: )")


def group_reports(lines):
    """Reports from the console lines that matched BAD, in order. A "Call Trace:" is the
    stack dump of the latest report that has none yet, and a "WARNING: CPU: N PID: M at"
    (or 7.3's "WARNING: FILE:LINE at FUNC, CPU#N: ...") right after a checker's message is
    the WARN() that printed it (DEBUG_LIST, ODEBUG);
    only lines without such an owner are reports of their own."""
    out = []
    for line in lines:
        text = TS.sub("", line)
        kind = report_kind(text)
        if kind == "trace":
            owner = next((r for r in reversed(out) if not r.traced), None)
            if owner is not None:
                owner.traced = True
                continue
        if kind == "warning" and WARN_SITE.search(text) and out:
            last = out[-1]
            if last.kind not in ("warning", "trace", "other") and not last.warned and not last.traced:
                last.warned = True
                continue
        out.append(Report(kind, line))
    return out


@dataclass
class Result:
    name: str
    ok: bool
    skipped: bool = False
    detail: str = ""
    # A failure the scenario declares as upstream behaviour ("# known-upstream:"): shown
    # and counted apart, and it does not fail the run.
    known: bool = False


@dataclass
class Known:
    """A scenario's "# known-upstream: KIND REGEX -- WHY" line: a report of checker KIND whose
    first line matches REGEX is upstream behaviour, written down in WHY."""
    kind: str
    regex: str
    why: str

    @classmethod
    def parse(cls, text):
        head, _, why = text.partition(" -- ")
        kind, _, rx = head.strip().partition(" ")
        if kind not in dict(REPORTS) or not rx.strip() or not why.strip():
            raise ValueError(f"known-upstream wants 'KIND REGEX -- WHY', KIND one of"
                             f" {', '.join(k for k, _ in REPORTS)}: {text!r}")
        re.compile(rx.strip())
        return cls(kind, rx.strip(), why.strip())

    def explains(self, rep):
        return rep.kind == self.kind and re.search(self.regex, TS.sub("", rep.line)) is not None


def console_results(reports, known=(), expect=()):
    """The console's results: clean, or each report explained. `expect` lists the checkers
    a canary scenario provokes on purpose: each must have reported, and nothing else may."""
    for rep in reports:
        rep.known = next((k.why for k in known if k.explains(rep)), "")
    if expect:
        out = [Result(f"the harness reports the deliberate {kind} bug",
                      any(r.kind == kind for r in reports),
                      detail="" if any(r.kind == kind for r in reports) else "no such report")
               for kind in expect]
        # A checker may dump more stacks than one per report (the workqueue watchdog's
        # backtraces of busy workers): in a canary, stray stack dumps are its own.
        other = [r for r in reports if r.kind not in expect and r.kind != "trace" and not r.known]
        out.append(Result("console has no other report", not other,
                          detail="; ".join(f"{r.kind}: {r.line}" for r in other[:3])))
        return out
    unknown = [r for r in reports if not r.known]
    name = "console clean (no checker report, Oops, BUG, WARNING, Call Trace or panic)"
    if reports and not unknown:
        return [Result(name, False, known=True,
                       detail="known upstream: " + "; ".join(
                           f"{r.kind}: {r.line} [{r.known}]" for r in reports[:2]))]
    return [Result(name, not unknown,
                   detail="; ".join(f"{r.kind}: {r.line}" for r in unknown[:3]))]


def parse(lines, timed_out=False, expect_scenario=True, known=(), expect_reports=()):
    """Return a list of Result for one guest run. `known` (a list of Known) and
    `expect_reports` (checker kinds) are the scenario's declarations."""
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
    results.extend(console_results(group_reports(bad), known, expect_reports))
    return results


def judge_skips(results, skips):
    """Turn every skipped result whose name no (regex, why) of `skips` matches into a
    failure: a scenario declares the skips it expects, and any other hides a problem."""
    for r in results:
        if r.skipped and not any(rx.search(r.name) for rx, _ in skips):
            r.skipped, r.ok = False, False
            r.detail = f"undeclared skip: {r.detail}"


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
