#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: a real crash with memory plugged: the kdump kernel's /proc/vmcore shows plugged memory, and the driver leaves the device alone
# qemu: --ram 2G --vmem id=vm0,size=1G,memaddr=0x100000000
# append: crashkernel=256M
# drivers: c rust
# timeout: 400
#
# Phase 1: plug 320 MiB in Sub-Block Mode (2.5 memory blocks: the third one is
# half plugged), fill most of it with a known pattern, load this kernel as the
# crash kernel (kexec_file_load) and crash (sysrq c). The device keeps its memory
# plugged across the crash: nothing resets the VM.
#
# Phase 2, in the kdump kernel: the driver must not plug, unplug or add memory
# (virtio_mem_init_kdump), and reads of /proc/vmcore in its region go through its
# pfn_is_ram callback, which asks the device (STATE) whether a device block is
# plugged. Expected, from the C driver and the virtio-mem specification:
#  - the device still has 320 MiB plugged, before and after the driver loads;
#  - the program's pages read back from /proc/vmcore (plugged is RAM);
#  - the unplugged half of the third memory block, which the dump lists because
#    the whole memory block was added, reads as zeroes.
. /tests/lib.sh

M=$(vmem_module)
REGION=$((0x100000000))
PLUGGED=$((320 << 20))

if [ "$(vmem_phase)" = 1 ]; then
	echo online_movable > $MEMDIR/auto_online_blocks
	check "modprobe $M" modprobe "$M"
	hostcmd resize vm0 "$PLUGGED" >/dev/null
	check "plug 320 MiB" hostcmd wait-size vm0 "$PLUGGED" 120
	memhog_start 256 || bail "memhog"
	free_kb=$(movable_free_kb)
	diag "ZONE_MOVABLE free with the program running: $free_kb kB"
	kexec_prepare --crash
	expect_crash
	echo c >/proc/sysrq-trigger
	bail "still running after sysrq c"
fi

check "the crash kernel booted with /proc/vmcore" [ -r /proc/vmcore ]
check_eq "the device still has 320 MiB plugged" "$PLUGGED" "$(hostcmd size vm0)"
kb0=$(memtotal_kb)
n0=$(nr_blocks)
check "modprobe $M" modprobe "$M"
check "the driver says hot(un)plug is disabled" sh -c "dmesg | grep -q 'memory hot(un)plug disabled in kdump kernel'"
sleep 3
check_eq "the driver neither plugs nor unplugs" "$PLUGGED" "$(hostcmd size vm0)"
check_eq "no memory added" "$kb0" "$(memtotal_kb)"
check_eq "no memory blocks added" "$n0" "$(nr_blocks)"
r=$(vmcore_scan $REGION $PLUGGED)
diag "plugged memory in /proc/vmcore: $r"
nz=${r##* }
check "the program's pages are in the dump (>= 200 MiB of non-zero pages)" [ "${nz:-0}" -ge $((200 << 8)) ]
r=$(vmcore_scan $((REGION + PLUGGED)) $((64 << 20)))
check_eq "the unplugged half of the last block reads as zeroes" "pages 16384 nonzero 0" "$r"
check "rmmod $M" rmmod "$M"
ktap_finish
