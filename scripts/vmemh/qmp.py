# SPDX-License-Identifier: GPL-2.0
"""The QMP operations the harness needs, on top of the qemu.qmp client library."""

import asyncio

from qemu.qmp import QMPClient

PERIPHERAL = "/machine/peripheral"


class Qmp:
    """A connected QMP session with typed helpers for virtio-mem and the balloon."""

    def __init__(self, name="vmem-rs"):
        self.client = QMPClient(name)

    async def connect(self, path, timeout=10.0):
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                await self.client.connect(path)
                return self
            except Exception:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.1)

    async def close(self):
        await self.client.disconnect()

    async def cmd(self, name, **args):
        return await self.client.execute(name, args or None)

    async def qom_get(self, dev, prop):
        return await self.cmd("qom-get", path=f"{PERIPHERAL}/{dev}", property=prop)

    async def qom_set(self, dev, prop, value):
        return await self.cmd("qom-set", path=f"{PERIPHERAL}/{dev}", property=prop, value=value)

    async def vmem_resize(self, dev, size):
        """Ask virtio-mem device `dev` to plug/unplug to `size` bytes."""
        await self.qom_set(dev, "requested-size", int(size))

    async def vmem_size(self, dev):
        """Bytes the guest has plugged on `dev`."""
        return int(await self.qom_get(dev, "size"))

    async def vmem_wait_size(self, dev, size, timeout):
        """Poll until the plugged size equals `size`; return seconds taken, or None."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        while True:
            if await self.vmem_size(dev) == size:
                return loop.time() - start
            if loop.time() - start > timeout:
                return None
            await asyncio.sleep(0.02)

    async def memory_devices(self):
        """[(id, type, dict)] of query-memory-devices."""
        out = []
        for d in await self.cmd("query-memory-devices"):
            data = d.get("data", {})
            out.append((data.get("id"), d.get("type"), data))
        return out

    async def balloon_set(self, guest_bytes):
        """Set the balloon target: the guest's memory size the host asks for."""
        await self.cmd("balloon", value=int(guest_bytes))

    async def balloon_actual(self):
        return int((await self.cmd("query-balloon"))["actual"])
