# SPDX-License-Identifier: GPL-2.0
"""A minimal ELF64 core header, to boot a guest as a kdump kernel without a crash.

A kdump kernel finds the crashed kernel's ELF core header at `elfcorehdr=ADDR` and exports
the PT_LOAD ranges it lists as /proc/vmcore. QEMU's loader device puts the header built here
into guest RAM at ADDR before boot, and `memmap=4K$ADDR` keeps the kernel off it; the guest
then is a kdump kernel (is_kdump_kernel()) whose /proc/vmcore covers the given ranges, e.g. a
virtio-mem device's region, so that the drivers' pfn_is_ram callbacks are exercised.
"""

import struct

EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
PHDR = struct.Struct("<IIQQQQQQ")
NHDR = struct.Struct("<III")
ET_CORE, EM_X86_64, PT_LOAD, PT_NOTE = 4, 62, 1, 4


def core_header(addr, ranges):
    """The header, to be loaded at guest physical `addr`, listing `ranges` [(start, size)]
    as PT_LOAD segments, with one small note (the vmcore code wants notes)."""
    name, desc = b"VMEM\0", b"test"
    note = NHDR.pack(len(name), len(desc), 1) + name.ljust(8, b"\0") + desc
    notes = note + NHDR.pack(0, 0, 0)            # a zero note ends the walk
    phnum = 1 + len(ranges)
    notes_off = EHDR.size + phnum * PHDR.size
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)   # 64-bit, LSB, current, SysV
    out = EHDR.pack(ident, ET_CORE, EM_X86_64, 1, 0, EHDR.size, 0, 0, EHDR.size, PHDR.size,
                    phnum, 0, 0, 0)
    # For a core header, p_offset is the physical address of the data in the old kernel.
    out += PHDR.pack(PT_NOTE, 0, addr + notes_off, 0, 0, len(notes), len(notes), 0)
    for start, size in ranges:
        out += PHDR.pack(PT_LOAD, 7, start, 0, start, size, size, 0)
    out += notes
    if len(out) > 4096:
        raise ValueError("too many ranges for one page")
    return out
