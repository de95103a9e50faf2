#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Host tests of the QEMU command line the harness builds (scripts/vmemh/machine.py, cli.py)."""

import argparse
import asyncio
import os
import sys

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "scripts"))
from vmemh import venv  # noqa: E402

try:
    import qemu.qmp  # noqa: F401  (machine.py needs it)
except ImportError:
    # Run by tests/run, which is in the venv but starts us with the system python3.
    os.environ.pop("VMEM_IN_VENV", None)
    venv.ensure(TOP)
from vmemh import cli  # noqa: E402
from vmemh.machine import Config, Guest, VmemDevice  # noqa: E402
from vmemh.ktap import Ktap  # noqa: E402

ktap = Ktap()
check = ktap.check


def raises(f):
    try:
        f()
    except ValueError:
        return True
    return False


def arg_after(argv, flag, prefix):
    """The values of `flag` options in argv that start with `prefix`."""
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag and argv[i + 1].startswith(prefix)]


d = VmemDevice.parse("id=vm3,size=1G,block=1G,node=1,requested=512M")
check("parses id, size, block, node, requested",
      (d.id, d.size, d.block_size, d.node, d.requested) == ("vm3", 1 << 30, 1 << 30, 1, 512 << 20))
check("memaddr defaults to QEMU's placement, reserve to on", d.memaddr is None and d.reserve)
check("memaddr in hex", VmemDevice.parse("memaddr=0x140200000").memaddr == 0x140200000)
check("memaddr with a suffix", VmemDevice.parse("memaddr=64G").memaddr == 64 << 30)
check("reserve=off", VmemDevice.parse("reserve=off").reserve is False)
check("reserve must be on or off", raises(lambda: VmemDevice.parse("reserve=maybe")))
check("an unknown option is refused", raises(lambda: VmemDevice.parse("id=vm0,colour=red")))

cfg = Config(kernel="k", initrd="i", vmem=[VmemDevice.parse("id=vm0,size=2G,memaddr=0x140200000,reserve=off"),
                                          VmemDevice.parse("id=vm1,size=1G")])
argv = cfg.argv("q", "c")
dev0 = arg_after(argv, "-device", "virtio-mem-pci,id=vm0")
dev1 = arg_after(argv, "-device", "virtio-mem-pci,id=vm1")
check("memaddr reaches the device", len(dev0) == 1 and dev0[0].endswith(f",memaddr={0x140200000}"))
check("no memaddr when QEMU places it", len(dev1) == 1 and "memaddr" not in dev1[0])
check("reserve=off reaches the backend",
      arg_after(argv, "-object", "memory-backend-ram,id=mem-vm0") == [f"memory-backend-ram,id=mem-vm0,size={2 << 30},reserve=off"])
check("reserve stays the default otherwise",
      arg_after(argv, "-object", "memory-backend-ram,id=mem-vm1") == [f"memory-backend-ram,id=mem-vm1,size={1 << 30}"])
check("maxmem defaults to boot RAM + the regions", arg_after(argv, "-m", "1G") == ["1G,maxmem=4G"])
check("no vmem.timeout without a timeout", "vmem.timeout" not in " ".join(argv))
append = arg_after(cfg.argv("q", "c", timeout=300), "-append", "console=")
check("the timeout reaches the guest's command line (its /init dumps tasks before it)",
      len(append) == 1 and append[0].endswith(" vmem.timeout=300"))

p = argparse.ArgumentParser()
cli.add_machine_args(p)
a = p.parse_args(["--maxmem", "80G", "--vmem", "id=vm0,size=1G,memaddr=64G", "--nodes", "2"])
cfg = cli.config_from_args(a, "k", "i")
argv = cfg.argv("q", "c")
check("--maxmem sets maxmem", arg_after(argv, "-m", "1G") == ["1G,maxmem=80G"])
check("--nodes 2 makes two NUMA nodes", len(arg_after(argv, "-numa", "node,")) == 2)

# A configuration QEMU refuses fails the run with QEMU's own message.
kernel, initrd = cli.cache_paths()
if os.path.exists(kernel) and os.path.exists(initrd):
    bad_cfg = Config(kernel=kernel, initrd=initrd, vmem=[VmemDevice.parse("id=vm0,size=1G,block=3M")])

    async def boot():
        async with Guest(bad_cfg, timeout=30) as g:
            await g.run()

    try:
        asyncio.run(boot())
        err = ""
    except RuntimeError as e:
        err = str(e)
    check("a refused configuration reports QEMU's message", "has to be a power of two" in err)
else:
    ktap.skip("a refused configuration reports QEMU's message", "no kernel built yet")

sys.exit(ktap.finish())
