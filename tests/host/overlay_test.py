#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Host tests of scripts/overlay on a synthetic repository and kernel tree.

Prints KTAP. Checks that the overlay places files and insertions, is
idempotent (second run changes nothing, mtimes kept), reverts files and edits
that left the repository, fails loudly when an anchor moved, and never
modifies the pristine tree it hard-links from.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "scripts"))
from vmemh.ktap import Ktap  # noqa: E402

OVERLAY = os.path.join(TOP, "scripts", "overlay")


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def read(path):
    with open(path) as f:
        return f.read()


def tree_hash(root):
    h = hashlib.sha256()
    for d, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            p = os.path.join(d, name)
            h.update(p[len(root):].encode())
            with open(p, "rb") as f:
                h.update(f.read())
    return h.hexdigest()


def run(repo, tree, pristine):
    env = dict(os.environ, VMEM_OVERLAY_TOP=repo)
    return subprocess.run([OVERLAY, "--tree", tree, "--pristine", pristine],
                          env=env, capture_output=True, text=True)


def main():
    ktap = Ktap()
    check = ktap.check
    tmp = tempfile.mkdtemp(prefix="overlay-test-")
    try:
        pristine, tree, repo = (os.path.join(tmp, x) for x in ("pristine", "tree", "repo"))
        write(f"{pristine}/rust/kernel/lib.rs", "pub mod a;\npub mod usb;\npub mod z;\n")
        write(f"{pristine}/drivers/virtio/Kconfig", "menu\nendif # VIRTIO_MENU\n")
        write(f"{pristine}/Makefile", "all:\n")
        before = tree_hash(pristine)

        write(f"{repo}/rust/kernel/virtio.rs", "// ours\n")
        write(f"{repo}/drivers/virtio/Kconfig.rust", "config RUST_VIRTIO\n")
        write(f"{repo}/scripts/upstream-edits",
              "@@ rust/kernel/lib.rs\nafter: pub mod usb;\n+pub mod virtio;\n"
              "@@ drivers/virtio/Kconfig\nbefore: endif # VIRTIO_MENU\n"
              "+source \"drivers/virtio/Kconfig.rust\"\nreplace: menu\n+menu \"Virtio\"\n")
        subprocess.run(["git", "init", "-q", repo], check=True)

        r = run(repo, tree, pristine)
        check("first overlay succeeds", r.returncode == 0, r.stderr)
        check("a shipped file lands at its path",
              read(f"{tree}/rust/kernel/virtio.rs") == "// ours\n")
        check("an 'after:' insertion lands after its anchor",
              read(f"{tree}/rust/kernel/lib.rs") == "pub mod a;\npub mod usb;\npub mod virtio;\npub mod z;\n")
        check("a 'before:' insertion lands before its anchor, a 'replace:' replaces its line",
              read(f"{tree}/drivers/virtio/Kconfig")
              == "menu \"Virtio\"\nsource \"drivers/virtio/Kconfig.rust\"\nendif # VIRTIO_MENU\n")
        check("untouched upstream files stay hard links to pristine",
              os.stat(f"{tree}/Makefile").st_ino == os.stat(f"{pristine}/Makefile").st_ino)

        mtime = os.stat(f"{tree}/rust/kernel/lib.rs").st_mtime_ns
        r = run(repo, tree, pristine)
        check("second overlay changes nothing", r.returncode == 0 and "0 changed" in r.stderr, r.stderr)
        check("second overlay keeps mtimes", os.stat(f"{tree}/rust/kernel/lib.rs").st_mtime_ns == mtime)

        os.unlink(f"{repo}/rust/kernel/virtio.rs")
        write(f"{repo}/scripts/upstream-edits",
              "@@ drivers/virtio/Kconfig\nbefore: endif # VIRTIO_MENU\n+source \"drivers/virtio/Kconfig.rust\"\n")
        r = run(repo, tree, pristine)
        check("overlay after removals succeeds", r.returncode == 0, r.stderr)
        check("a file removed from the repo is removed from the tree",
              not os.path.exists(f"{tree}/rust/kernel/virtio.rs"))
        check("a dropped edit restores the pristine file",
              read(f"{tree}/rust/kernel/lib.rs") == read(f"{pristine}/rust/kernel/lib.rs"))

        write(f"{repo}/scripts/upstream-edits", "@@ rust/kernel/lib.rs\nafter: pub mod moved;\n+pub mod virtio;\n")
        r = run(repo, tree, pristine)
        check("a moved anchor fails loudly and names it",
              r.returncode != 0 and "pub mod moved;" in r.stderr, r.stderr)

        write(f"{repo}/rust/kernel/lib.rs", "// replaces upstream\n")
        write(f"{repo}/scripts/upstream-edits", "")
        r = run(repo, tree, pristine)
        check("replacing an upstream file wholesale is refused",
              r.returncode != 0 and "replaces an upstream file" in r.stderr, r.stderr)

        check("the pristine tree is never modified", tree_hash(pristine) == before)
    finally:
        shutil.rmtree(tmp)
    return ktap.finish()


if __name__ == "__main__":
    sys.exit(main())
