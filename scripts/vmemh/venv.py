# SPDX-License-Identifier: GPL-2.0
"""Re-execute a host tool inside the cache's venv, where qemu.qmp is installed."""

import os
import subprocess
import sys


def ensure(top):
    if os.environ.get("VMEM_IN_VENV"):
        return
    py = subprocess.run(["bash", "-c", f". {top}/scripts/lib.sh && echo $VENV/bin/python"],
                        check=True, capture_output=True, text=True).stdout.strip()
    if not os.path.exists(py):
        subprocess.run([os.path.join(top, "scripts", "setup-host")], check=True)
    os.environ["VMEM_IN_VENV"] = "1"
    os.execv(py, [py] + sys.argv)
