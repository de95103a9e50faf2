# SPDX-License-Identifier: GPL-2.0
"""Command-line options shared by run-qemu, the test runner and the benchmark."""

import argparse
import os
import re
import shlex
import subprocess

from .machine import Config, VmemDevice
from .results import CHECKERS, Known, judge_skips
from .sizes import parse_size

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCENARIOS = os.path.join(TOP, "tests", "guest", "scenarios")


def _lib(expr):
    return subprocess.run(["bash", "-c", f". {TOP}/scripts/lib.sh && {expr}"],
                          check=True, capture_output=True, text=True).stdout.strip()


def cache_dir():
    """The project cache ($VMEM_CACHE), as scripts/lib.sh defines it."""
    return _lib("echo $VMEM_CACHE")


def cache_paths():
    """(kernel bzImage, initramfs) of the flavour $VMEM_KERNEL names, in the cache, as
    scripts/lib.sh lays it out.

    $VMEM_INITRAMFS names another initramfs (scripts/mkinitramfs honours it too),
    so that two checkouts can share one kernel build."""
    k = _lib("kout")
    return (os.path.join(k, "build", "arch", "x86", "boot", "bzImage"),
            os.environ.get("VMEM_INITRAMFS") or os.path.join(k, "initramfs.cpio.gz"))


def scenario_config(s, driver, kernel, initrd):
    """The machine Config of scenario `s` run against `driver`."""
    p = argparse.ArgumentParser(prog=s.name)
    add_machine_args(p)
    cfg = config_from_args(p.parse_args(s.qemu), kernel, initrd)
    cfg.append = f"vmem.scenario={s.name} vmem.driver={driver} {s.append} {cfg.append}".strip()
    return cfg


def add_machine_args(p):
    g = p.add_argument_group("guest machine")
    g.add_argument("--ram", default="1G", help="boot RAM (default 1G)")
    g.add_argument("--smp", type=int, default=2, help="vCPUs (default 2)")
    g.add_argument("--maxmem", help="maximum guest memory (default: boot RAM + every device's region);"
                   " larger leaves room for devices placed with memaddr=")
    g.add_argument("--nodes", type=int, default=1, help="NUMA nodes sharing boot RAM")
    g.add_argument("--cpu", default="", metavar="MODEL",
                   help="QEMU -cpu, e.g. max,phys-bits=52 for regions beyond 64 TiB (default: QEMU's)")
    g.add_argument("--vmem", action="append", default=[], metavar="SPEC",
                   help="virtio-mem device: id=vm0,size=8G,requested=0,block=2M,node=0"
                   "[,memaddr=ADDR][,reserve=off] (repeatable)")
    g.add_argument("--balloon", nargs="?", const="default", default="",
                   metavar="OPTS", help="add a virtio-balloon-pci device (extra QEMU options)")
    g.add_argument("--dimm", action="append", default=[], metavar="SIZE",
                   help="cold-plugged pc-dimm of SIZE, added by ACPI memory hotplug (repeatable)")
    g.add_argument("--device", action="append", default=[], metavar="QEMU_DEVICE",
                   help="extra QEMU -device, e.g. virtio-rng-pci (repeatable)")
    g.add_argument("--append", default="", help="extra kernel command line")
    g.add_argument("--fake-kdump", default="0", metavar="ADDR",
                   help="boot as a kdump kernel: an ELF core header at guest address ADDR lists"
                        " the virtio-mem regions (give them memaddr=) for /proc/vmcore")
    g.add_argument("--kernel", help="bzImage (default: the cached build)")
    g.add_argument("--initrd", help="initramfs (default: the cached one)")


def config_from_args(a, kernel=None, initrd=None):
    if not (a.kernel and a.initrd) and not (kernel and initrd):
        kernel, initrd = cache_paths()
    return Config(kernel=a.kernel or kernel, initrd=a.initrd or initrd,
                  ram=parse_size(a.ram), smp=a.smp, nodes=a.nodes, cpu=a.cpu,
                  vmem=[VmemDevice.parse(s) for s in a.vmem],
                  balloon=a.balloon, append=a.append,
                  dimms=[parse_size(d) for d in a.dimm],
                  extra=[x for d in a.device for x in ("-device", d)],
                  fake_kdump=parse_size(a.fake_kdump),
                  maxmem=parse_size(a.maxmem) if a.maxmem else 0)


class Scenario:
    """A guest scenario script and the header lines that describe how to run it:
    '# scenario: TEXT', '# qemu: ARGS', '# drivers: c rust|none', '# timeout: S',
    '# append: CMDLINE',
    '# expect: report KIND...' (a canary: these checkers must report, nothing else),
    '# skip: REGEX -- WHY' (a result whose name matches may skip; any other skip fails),
    '# known-upstream: KIND REGEX -- WHY' (a report of upstream code, written down),
    '# kernel: debug' (runs on that kernel flavour only: the checkers' canaries)."""

    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)[:-3]
        self.title = ""
        self.qemu = []
        self.drivers = ["none"]
        self.timeout = 300
        self.append = ""
        self.expect = []
        self.skips = []
        self.known = []
        self.kernel = ""
        with open(path) as f:
            for line in f:
                m = re.match(r"^# (scenario|qemu|drivers|timeout|append|expect|skip|known-upstream|kernel):"
                             r" (.*)$", line)
                if not m:
                    continue
                k, v = m.group(1), m.group(2).strip()
                if k == "scenario":
                    self.title = v
                elif k == "qemu":
                    self.qemu = shlex.split(v)
                elif k == "drivers":
                    self.drivers = v.split()
                elif k == "timeout":
                    self.timeout = int(v)
                elif k == "append":
                    self.append = v
                elif k == "expect":
                    kind, *kinds = v.split()
                    if kind != "report" or not kinds or not set(kinds) <= set(CHECKERS + ["warning"]):
                        raise ValueError(f"{path}: '# expect: report KIND...' with KIND among"
                                         f" {', '.join(CHECKERS + ['warning'])}, not {v!r}")
                    self.expect = kinds
                elif k == "skip":
                    rx, sep, why = v.partition(" -- ")
                    if not sep or not why.strip():
                        raise ValueError(f"{path}: '# skip: REGEX -- WHY', not {v!r}")
                    self.skips.append((re.compile(rx.strip()), why.strip()))
                elif k == "known-upstream":
                    self.known.append(Known.parse(v))
                elif k == "kernel":
                    self.kernel = v

    def judge_skips(self, results):
        """Turn every skip the header does not declare into a failure."""
        judge_skips(results, self.skips)


def scenarios():
    return [Scenario(os.path.join(SCENARIOS, f))
            for f in sorted(os.listdir(SCENARIOS)) if f.endswith(".sh")]
