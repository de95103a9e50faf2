# SPDX-License-Identifier: GPL-2.0
"""KTAP output of the host test suites (tests/host/*_test.py)."""


class Ktap:
    """One KTAP document: its header when created, a result line per check, and the plan
    and the exit status at the end."""

    def __init__(self):
        self.results = []
        print("KTAP version 1", flush=True)

    def check(self, desc, cond, detail=""):
        """Prints the result of check `desc`, and on failure up to 20 lines of `detail` as
        diagnostics. Returns whether it passed."""
        cond = bool(cond)
        self.results.append(cond)
        print(f"{'ok' if cond else 'not ok'} {len(self.results)} {desc}")
        if not cond and detail:
            for line in str(detail).splitlines()[:20]:
                print(f"# {line}")
        return cond

    def skip(self, desc, why):
        """Prints check `desc` as skipped, because of `why`."""
        self.results.append(True)
        print(f"ok {len(self.results)} {desc} # SKIP {why}")

    def skip_all(self, why):
        """Ends a document that ran no check, because of `why`. Returns the exit status."""
        print(f"1..0 # SKIP {why}")
        return 0

    def finish(self):
        """Prints the plan. Returns the exit status: 1 if a check failed, else 0."""
        print(f"1..{len(self.results)}")
        return 0 if all(self.results) else 1
