#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: in a kdump kernel the driver neither plugs nor adds memory, and /proc/vmcore reads of its region go through pfn_is_ram
# qemu: --vmem id=vm0,size=1G,requested=256M,memaddr=0x100000000 --fake-kdump 0x30000000
# drivers: c rust
# timeout: 240
#
# The harness boots the guest with an ELF core header (elfcorehdr=) listing the device's
# region, as a crashed kernel would pass it: the kernel is a kdump kernel, and /proc/vmcore
# covers the region. The device starts with nothing plugged (a fresh QEMU), so both drivers
# must answer "not RAM" for every page of it without asking the device, and must not plug
# the 256 MiB the device requests. What the drivers answer for plugged blocks (a STATE
# request per device block) is tested with a real crash: kdump-crash.
. /tests/lib.sh

REGION=0x100000000
check "the kernel is a kdump kernel with /proc/vmcore" [ -r /proc/vmcore ]
check "the kernel has no complaint about the core header" sh -c "! dmesg | grep -q 'vmcore not initialized\|elf header is not sane'"
kb0=$(memtotal_kb)
n0=$(nr_blocks)
check "modprobe $(vmem_module)" modprobe "$(vmem_module)"
check "the driver says hot(un)plug is disabled" sh -c "dmesg | grep -q 'memory hot(un)plug disabled in kdump kernel'"
sleep 3
check_eq "nothing plugged although 256 MiB are requested" 0 "$(hostcmd size vm0)"
check_eq "no memory added" "$kb0" "$(memtotal_kb)"
check_eq "no memory blocks added" "$n0" "$(nr_blocks)"
r=$(vmcore_scan $REGION $((256 << 20)))
check_eq "/proc/vmcore shows the unplugged region as zeroes" "pages 65536 nonzero 0" "$r"
check "rmmod $(vmem_module)" rmmod "$(vmem_module)"
ktap_finish
