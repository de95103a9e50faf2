#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Host tests of the patch series (scripts/mkpatches, make patches).

Prints KTAP. Cuts the series, applies it with git am to a fresh git repository
of the pristine upstream files it touches, and checks that the result is the
tree the overlay builds: every file the series ends with equals the overlaid
tree's (the kselftests: the repository's), and every file of the overlay is in
the series. Then checks that the checks can fail: a damaged patch does not
apply, and a changed file is found.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "scripts"))
from vmemh.ktap import Ktap  # noqa: E402

SELFTESTS = ("tools/testing/selftests/memory-hotplug-zones/", "tests/selftests/memory-hotplug-zones/")


def run(*args, cwd=None):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True)


def kdir():
    out = run("bash", "-c", f". '{TOP}/scripts/lib.sh' && kdir")
    return out.stdout.strip() if out.returncode == 0 else None


def base_repo(dst, pristine, patches):
    """A git repository of the pristine versions of the files the patches modify."""
    touched = set()
    for p in patches:
        with open(p, encoding="utf-8") as f:
            touched |= set(re.findall(r"^--- a/(\S+)$", f.read(), re.M))
    os.makedirs(dst)
    # Files an earlier patch of the series creates are not upstream.
    touched = {rel for rel in touched if os.path.exists(os.path.join(pristine, rel))}
    for rel in touched:
        os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
        shutil.copy2(os.path.join(pristine, rel), os.path.join(dst, rel))
    env = ["-c", "user.name=t", "-c", "user.email=t@example.org"]
    for cmd in (["init", "-q"], ["add", "-A"], [*env, "commit", "-q", "-m", "base"]):
        subprocess.run(["git", "-C", dst, *cmd], check=True, capture_output=True)
    return touched


def am(repo, patches):
    return run("git", "-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.org",
               "am", "-q", "--committer-date-is-author-date", *patches)


def differences(repo, tree):
    """Files of the applied series that differ from the overlaid tree."""
    out = run("git", "-C", repo, "ls-files").stdout.split()
    bad = []
    for rel in out:
        want = os.path.join(TOP, SELFTESTS[1] + rel[len(SELFTESTS[0]):]) \
            if rel.startswith(SELFTESTS[0]) else os.path.join(tree, rel)
        try:
            with open(want, "rb") as a, open(os.path.join(repo, rel), "rb") as b:
                if a.read() != b.read():
                    bad.append(rel)
        except FileNotFoundError:
            bad.append(rel)
    return out, bad


def main():
    ktap = Ktap()
    check = ktap.check
    k = kdir()
    if not k or not os.path.isdir(os.path.join(k, "pristine")):
        return ktap.skip_all("no kernel source; run scripts/setup-host")
    pristine, tree = os.path.join(k, "pristine"), os.path.join(k, "tree")
    tmp = tempfile.mkdtemp(prefix="vmem-patches-test-")
    try:
        # The tree as the overlay makes it now.
        r = run(os.path.join(TOP, "scripts", "overlay"), "--tree", tree, "--pristine", pristine)
        check("the overlay applies", r.returncode == 0, r.stderr)
        out = os.path.join(tmp, "series")
        r = run(os.path.join(TOP, "scripts", "mkpatches"), "-o", out)
        check("scripts/mkpatches cuts the series", r.returncode == 0, r.stdout + r.stderr)
        if r.returncode != 0:
            return 1
        names = sorted(n for n in os.listdir(out) if n.endswith(".patch"))
        patches = [os.path.join(out, n) for n in names if not n.startswith("0000-")]
        with open(os.path.join(out, names[0]), encoding="utf-8") as f:
            cover = f.read()
        check("a cover letter with a subject and a blurb",
              names[0] == "0000-cover-letter.patch" and "*** SUBJECT HERE ***" not in cover
              and "*** BLURB HERE ***" not in cover)
        subjects = []
        for p in patches:
            with open(p, encoding="utf-8") as f:
                text = f.read()
            m = re.search(r"^Subject: \[PATCH \d+/\d+\] (.*(?:\n .*)*)", text, re.M)
            subjects.append(m.group(1).replace("\n", "") if m else "")
            check(f"{os.path.basename(p)}: a subsystem prefix, a body and a Signed-off-by",
                  bool(m) and ": " in subjects[-1] and "\nSigned-off-by: " in text
                  and text.index("\nSigned-off-by: ") > text.index("\n\n"))

        repo = os.path.join(tmp, "am")
        base_repo(repo, pristine, patches)
        r = am(repo, patches)
        check(f"git am applies all {len(patches)} patches to the pristine files",
              r.returncode == 0, r.stdout + r.stderr)
        log = run("git", "-C", repo, "log", "--format=%s", "--reverse", "HEAD~%d..HEAD" % len(patches))
        check("one commit per patch, in order", log.stdout.splitlines() == subjects, log.stdout)
        with open(os.path.join(out, "tree")) as f:
            want_tree = f.read().strip()
        got_tree = run("git", "-C", repo, "rev-parse", "HEAD^{tree}").stdout.strip()
        check("the applied series is the tree mkpatches built", got_tree == want_tree,
              f"{got_tree} != {want_tree}")
        files, bad = differences(repo, tree)
        check("every file equals the overlaid tree's (kselftests: the repository's)",
              not bad, "\n".join(bad))
        with open(os.path.join(tree, ".vmem-overlay-manifest")) as f:
            manifest = {l.split()[0] for l in f if l.strip()}
        missing = sorted(manifest - set(files))
        check("every file of the overlay is in the series", not missing, "\n".join(missing))

        # The checks can fail.
        broken = os.path.join(tmp, "broken.patch")
        with open(patches[-1], encoding="utf-8") as f:
            text = f.read()
        with open(broken, "w", encoding="utf-8") as f:
            # The first context line of the first hunk that has one.
            f.write(re.sub(r"(?m)(^@@ -\d[^\n]*\n(?:[+-][^\n]*\n)*) ([^\n]*)",
                           r"\1 \2 (changed)", text, count=1))
        repo2 = os.path.join(tmp, "am2")
        base_repo(repo2, pristine, patches)
        r = am(repo2, patches[:-1] + [broken])
        check("a patch whose context does not match does not apply", r.returncode != 0)
        victim = next(f for f in files if f.startswith("rust/"))
        with open(os.path.join(repo, victim), "a") as f:
            f.write("\n")
        check(f"a changed file is found ({victim})", victim in differences(repo, tree)[1])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ktap.finish()


if __name__ == "__main__":
    sys.exit(main())
