# SPDX-License-Identifier: GPL-2.0
"""A QEMU guest under TCG with virtio-mem and virtio-balloon devices.

The guest's console (ttyS0) is read line by line. A second serial port (ttyS1)
is the control channel: the guest writes a request line ("resize vm0 1073741824"),
the host carries it out over QMP and answers with one line ("ok ..." or
"err ..."). Scenarios therefore run entirely in the guest and still drive the
host side of the devices.
"""

import asyncio
import os
import shlex
import tempfile
import time
from dataclasses import dataclass, field

from . import elfcore
from .qmp import Qmp
from .sizes import fmt_size, parse_size

QEMU = "qemu-system-x86_64"


@dataclass
class VmemDevice:
    """One virtio-mem-pci device and its memory backend."""
    id: str = "vm0"
    size: int = 8 << 30          # region size (the backend's size)
    requested: int = 0           # requested-size at boot
    block_size: int = 0          # device block size; 0 = QEMU's default
    node: int = 0
    memaddr: int = None          # guest-physical start; None = QEMU places it
    reserve: bool = True         # False: back it with MAP_NORESERVE (huge regions)

    @classmethod
    def parse(cls, spec):
        """'id=vm0,size=8G,requested=0,block=2M,node=0,memaddr=0x140000000,reserve=off'
        -> VmemDevice."""
        dev = cls()
        for item in filter(None, spec.split(",")):
            k, _, v = item.partition("=")
            if k == "id":
                dev.id = v
            elif k == "size":
                dev.size = parse_size(v)
            elif k in ("requested", "requested-size"):
                dev.requested = parse_size(v)
            elif k in ("block", "block-size"):
                dev.block_size = parse_size(v)
            elif k == "node":
                dev.node = int(v)
            elif k in ("memaddr", "addr"):
                dev.memaddr = parse_size(v)
            elif k == "reserve":
                if v not in ("on", "off"):
                    raise ValueError(f"reserve must be on or off in {spec!r}")
                dev.reserve = v == "on"
            else:
                raise ValueError(f"unknown virtio-mem option {k!r} in {spec!r}")
        return dev


@dataclass
class Config:
    kernel: str
    initrd: str
    ram: int = 1 << 30
    smp: int = 2
    nodes: int = 1
    cpu: str = ""                # QEMU -cpu model and options ("" = QEMU's default)
    vmem: list = field(default_factory=list)
    balloon: str = ""            # "" = none, else extra virtio-balloon-pci options
    dimms: list = field(default_factory=list)   # sizes of cold-plugged pc-dimm devices
    append: str = ""
    extra: list = field(default_factory=list)
    # Boot as a kdump kernel whose /proc/vmcore covers the virtio-mem regions (which need
    # memaddr=): the ELF core header goes into guest RAM at this address (0 = off).
    fake_kdump: int = 0
    maxmem: int = 0              # 0 = boot RAM + every device's region

    def argv(self, qmp_path, ctl_path, interactive=False, timeout=None):
        maxmem = self.maxmem or self.ram + sum(d.size for d in self.vmem) + sum(self.dimms)
        slots = f",slots={len(self.dimms)}" if self.dimms else ""
        a = [QEMU, "-accel", "tcg", "-smp", str(self.smp), "-nodefaults",
             "-m", f"{fmt_size(self.ram)}{slots},maxmem={fmt_size(maxmem)}",
             *(["-cpu", self.cpu] if self.cpu else []),
             "-kernel", self.kernel, "-initrd", self.initrd, "-no-reboot",
             "-qmp", f"unix:{qmp_path},server=on,wait=off",
             "-chardev", f"socket,id=ctl,path={ctl_path},server=on,wait=off"]
        per_node = self.ram // self.nodes
        for n in range(self.nodes):
            a += ["-object", f"memory-backend-ram,id=ram{n},size={per_node}",
                  "-numa", f"node,nodeid={n},memdev=ram{n}"]
        for d in self.vmem:
            backend = f"memory-backend-ram,id=mem-{d.id},size={d.size}"
            if not d.reserve:
                backend += ",reserve=off"
            a += ["-object", backend]
            opts = f"virtio-mem-pci,id={d.id},memdev=mem-{d.id},node={d.node},requested-size={d.requested}"
            if d.block_size:
                opts += f",block-size={d.block_size}"
            if d.memaddr is not None:
                opts += f",memaddr={d.memaddr}"
            a += ["-device", opts]
        for i, size in enumerate(self.dimms):
            # ACPI memory hotplug adds these as offline memory blocks at boot.
            a += ["-object", f"memory-backend-ram,id=mem-dimm{i},size={size}",
                  "-device", f"pc-dimm,id=dimm{i},memdev=mem-dimm{i},node=0"]
        if self.balloon is not None and self.balloon != "":
            opts = "virtio-balloon-pci,id=balloon0"
            if self.balloon != "default":
                opts += "," + self.balloon
            if "free-page-hint=on" in opts and "iothread=" not in opts:
                # QEMU takes free page hints in an iothread of their own.
                a += ["-object", "iothread,id=balloon-io"]
                opts += ",iothread=balloon-io"
            a += ["-device", opts]
        append = "console=ttyS0 panic=-1 " + self.append
        if timeout:
            # The guest's /init dumps its tasks shortly before the harness kills it.
            append += f" vmem.timeout={timeout}"
        if self.fake_kdump:
            ranges = [(d.memaddr, d.size) for d in self.vmem if d.memaddr is not None]
            if not ranges:
                raise ValueError("fake kdump needs a virtio-mem device with memaddr=")
            hdr = os.path.join(os.path.dirname(qmp_path), "elfcorehdr.bin")
            with open(hdr, "wb") as f:
                f.write(elfcore.core_header(self.fake_kdump, ranges))
            a += ["-device", f"loader,file={hdr},addr={self.fake_kdump:#x},force-raw=on"]
            append += f" elfcorehdr={self.fake_kdump:#x} memmap=4K${self.fake_kdump:#x}"
        if interactive:
            a += ["-nographic", "-serial", "mon:stdio"]
        else:
            a += ["-display", "none", "-serial", "stdio"]
        a += ["-serial", "chardev:ctl", "-append", append.strip()]
        return a + list(self.extra)


class Guest:
    """A running scripted guest. Use as `async with Guest(cfg) as g: await g.run()`."""

    def __init__(self, cfg, log_path=None, echo=False, timeout=600):
        self.cfg = cfg
        self.echo = echo
        self.timeout = timeout
        self.tmp = tempfile.TemporaryDirectory(prefix="vmem-qemu-")
        self.qmp_path = os.path.join(self.tmp.name, "qmp.sock")
        self.ctl_path = os.path.join(self.tmp.name, "ctl.sock")
        self.log_path = log_path
        self.lines = []
        self.timed_out = False
        self.proc = None
        self.qmp = None
        self.start = None

    async def __aenter__(self):
        argv = self.cfg.argv(self.qmp_path, self.ctl_path, timeout=self.timeout)
        self.log = open(self.log_path, "w") if self.log_path else None
        if self.log:
            self.log.write("# " + shlex.join(argv) + "\n")
        self.start = time.monotonic()
        self.proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        # Connect, unless QEMU exits first: then it refused the configuration, and
        # its own message says why.
        conn = asyncio.create_task(Qmp().connect(self.qmp_path))
        died = asyncio.create_task(self.proc.wait())
        await asyncio.wait({conn, died}, return_when=asyncio.FIRST_COMPLETED)
        if not conn.done() or (conn.exception() and died.done()):
            conn.cancel()
            out = (await self.proc.stdout.read()).decode(errors="replace").strip()
            if self.log:
                self.log.write(out + "\n")
                self.log.flush()
            raise RuntimeError(f"QEMU exited with status {self.proc.returncode}: {out}")
        died.cancel()
        self.qmp = conn.result()
        return self

    async def __aexit__(self, *exc):
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        try:
            await self.qmp.close()
        except Exception:
            pass
        if self.log:
            self.log.close()
        self.tmp.cleanup()

    def _record(self, line):
        self.lines.append(line)
        if self.log:
            self.log.write(line + "\n")
            self.log.flush()
        if self.echo:
            print(line, flush=True)

    async def _console(self):
        while True:
            raw = await self.proc.stdout.readline()
            if not raw:
                return
            self._record(raw.decode(errors="replace").rstrip("\r\n"))

    async def _control(self):
        """Serve the guest's requests on the ttyS1 control channel."""
        reader = writer = None
        for _ in range(100):
            try:
                reader, writer = await asyncio.open_unix_connection(self.ctl_path)
                break
            except OSError:
                await asyncio.sleep(0.1)
        if writer is None:
            return
        buf = b""
        while True:
            chunk = await reader.read(4096)
            if not chunk:
                return
            buf += chunk.replace(b"\r", b"")
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                req = line.decode(errors="replace").strip()
                if not req:
                    continue
                try:
                    reply = "ok " + str(await self.handle(req.split()))
                except Exception as e:          # any failure goes back to the guest
                    reply = f"err {type(e).__name__}: {e}".replace("\n", " ")
                if self.log:
                    self.log.write(f"# ctl: {req} -> {reply}\n")
                writer.write((reply.strip() + "\n").encode())
                await writer.drain()

    async def handle(self, argv):
        """Carry out one control request from the guest; return the reply text."""
        q = self.qmp
        cmd, args = argv[0], argv[1:]
        if cmd == "resize":                      # resize DEV BYTES
            await q.vmem_resize(args[0], parse_size(args[1]))
            return ""
        if cmd == "size":                        # size DEV -> plugged bytes
            return await q.vmem_size(args[0])
        if cmd == "qom-get":                     # qom-get DEV PROP
            return await q.qom_get(args[0], args[1])
        if cmd == "wait-size":                   # wait-size DEV BYTES SECONDS -> seconds
            t = await q.vmem_wait_size(args[0], parse_size(args[1]), float(args[2]))
            if t is None:
                raise TimeoutError(f"{args[0]} size is {await q.vmem_size(args[0])}")
            return f"{t:.3f}"
        if cmd == "resize-midway":               # resize-midway DEV FIRST THEN -> "FROM SEEN"
            # Ask for FIRST, and for THEN as soon as the plugged size has moved from where it
            # was, but not reached FIRST: proof that THEN arrived while FIRST was in progress.
            dev, first, then = args[0], parse_size(args[1]), parse_size(args[2])
            was = await q.vmem_size(dev)
            await q.vmem_resize(dev, first)
            deadline = time.monotonic() + 60
            while (seen := await q.vmem_size(dev)) == was:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{dev} stayed at {was} for 60 s")
            await q.vmem_resize(dev, then)
            return f"{was} {seen}"
        if cmd == "balloon":                     # balloon BYTES (guest memory target)
            await q.balloon_set(parse_size(args[0]))
            return ""
        if cmd == "balloon-actual":
            return await q.balloon_actual()
        if cmd == "qom-set":                     # qom-set DEV PROP INT
            await q.qom_set(args[0], args[1], int(args[2]))
            return ""
        if cmd == "balloon-stats":               # -> "last-update=T stat-x=N ..." (one line)
            st = await q.qom_get("balloon0", "guest-stats")
            items = [("last-update", st.get("last-update", 0))] + sorted(st.get("stats", {}).items())
            return " ".join(f"{k}={v}" for k, v in items)
        if cmd == "qemu-rss":                    # -> resident KiB of the QEMU process
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return line.split()[1]
            raise ValueError("no VmRSS")
        if cmd == "migrate":                     # migrate BYTES_PER_S -> "transferred normal"
            # Live-migrates the guest into /dev/null at BYTES_PER_S, then lets it run on here:
            # what a migration sends (bytes, and pages sent whole) without a second QEMU.
            await q.cmd("migrate-set-parameters", **{"max-bandwidth": int(args[0])})
            await q.cmd("migrate", uri="exec:cat > /dev/null")
            deadline = time.monotonic() + 600
            while (st := await q.cmd("query-migrate")).get("status") not in ("completed", "failed"):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"migration still {st.get('status')}")
                await asyncio.sleep(0.2)
            await q.cmd("cont")
            if st["status"] != "completed":
                raise RuntimeError(f"migration failed: {st.get('error-desc', '')}")
            return f"{st['ram']['transferred']} {st['ram']['normal']}"
        if cmd == "time":                        # host monotonic seconds
            return f"{time.monotonic():.6f}"
        raise ValueError(f"unknown request {cmd!r}")

    async def run(self):
        """Wait until the guest powers off (True) or the timeout hits (False)."""
        tasks = [asyncio.create_task(self._console()), asyncio.create_task(self._control())]
        try:
            await asyncio.wait_for(self.proc.wait(), self.timeout)
        except asyncio.TimeoutError:
            self.timed_out = True
            self._record(f"# vmem-harness: guest timed out after {self.timeout} s, killed")
            self.proc.kill()
            await self.proc.wait()
        await asyncio.wait(tasks, timeout=5)
        for t in tasks:
            t.cancel()
        return not self.timed_out
