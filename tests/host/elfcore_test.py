#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Host tests of the fake kdump core header (scripts/vmemh/elfcore.py) and hex sizes."""

import os
import sys

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "scripts"))
from vmemh import elfcore  # noqa: E402
from vmemh.sizes import parse_size  # noqa: E402
from vmemh.ktap import Ktap  # noqa: E402

ktap = Ktap()
check = ktap.check


ADDR = 0x30000000
h = elfcore.core_header(ADDR, [(0x100000000, 1 << 30)])
eh = elfcore.EHDR.unpack_from(h, 0)
check("an ELF64 little-endian x86-64 core file",
      eh[0][:6] == b"\x7fELF\x02\x01" and eh[1] == elfcore.ET_CORE and eh[2] == elfcore.EM_X86_64)
check("sizes the kernel checks (e_ehsize, e_phentsize, e_phnum)",
      (eh[8], eh[9], eh[10]) == (64, 56, 2))
note = elfcore.PHDR.unpack_from(h, 64)
load = elfcore.PHDR.unpack_from(h, 64 + 56)
check("PT_NOTE's offset is the notes' physical address",
      note[0] == elfcore.PT_NOTE and note[2] == ADDR + 64 + 2 * 56)
notes = h[64 + 2 * 56:]
check("notes end with a zero note inside p_memsz",
      len(notes) == note[6] and notes[-12:] == bytes(12))
check("PT_LOAD lists the range at its physical address",
      load[0] == elfcore.PT_LOAD and (load[2], load[4], load[5], load[6]) ==
      (0x100000000, 0x100000000, 1 << 30, 1 << 30))
try:
    elfcore.core_header(ADDR, [(i << 30, 1 << 30) for i in range(100)])
    check("refuses a header larger than the reserved page", False)
except ValueError:
    check("refuses a header larger than the reserved page", True)
check("hex sizes", parse_size("0x30000000") == 0x30000000 and parse_size("512M") == 512 << 20)
try:
    parse_size("0xzz")
    check("bad hex refused", False)
except ValueError:
    check("bad hex refused", True)
sys.exit(ktap.finish())
