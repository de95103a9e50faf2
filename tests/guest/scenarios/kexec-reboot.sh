#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: kexec into a new kernel with memory plugged: the driver there unplugs it all (UNPLUG_ALL) before it plugs again
# qemu: --ram 2G --vmem id=vm0,size=1G,memaddr=0x100000000 --balloon free-page-reporting=on
# drivers: c rust
# timeout: 400
#
# Phase 1: plug 256 MiB, fill it, kexec (kexec_file_load, then
# reboot(LINUX_REBOOT_CMD_KEXEC)) into the same kernel. The device keeps the
# memory plugged: a kexec does not reset the VM, and driver-managed memory is not
# handed to the next kernel as RAM.
#
# Phase 2: the driver finds the device reporting plugged memory. As in the C
# driver (virtio_mem_init_hotplug, unplug_all_required), it must say so, unplug
# everything with UNPLUG_ALL, and then plug the requested size afresh, memory a
# program can use again.
#
# The balloon (with free page reporting) goes through the same kexec inflated:
# its shutdown callback stops its work before the device is reset, and the
# balloon driver of the new kernel inflates to the host's target again.
. /tests/lib.sh

M=$(vmem_module)
BM=$(balloon_module)
SIZE=$((256 << 20))

if [ "$(vmem_phase)" = 1 ]; then
	echo online_movable > $MEMDIR/auto_online_blocks
	check "modprobe $M" modprobe "$M"
	hostcmd resize vm0 "$SIZE" >/dev/null
	check "plug 256 MiB" hostcmd wait-size vm0 "$SIZE" 120
	memhog_start 200 || bail "memhog"
	check "modprobe $BM" modprobe "$BM"
	ram=$(hostcmd balloon-actual) || bail "query-balloon"
	hostcmd balloon $((ram - (64 << 20))) >/dev/null
	check "the balloon inflates to 64 MiB" wait_for 90 '[ "$(meminfo_kb Balloon)" -eq 65536 ]'
	kexec_prepare
	console_drain
	kexec_load --exec
	bail "still running after kexec"
fi

echo online_movable > $MEMDIR/auto_online_blocks
check_eq "the new kernel finds 256 MiB plugged" "$SIZE" "$(hostcmd size vm0)"
kb0=$(memtotal_kb)
dmesg -c >/dev/null
check "modprobe $M" modprobe "$M"
check "the driver says it must unplug everything first" sh -c "dmesg | grep -q 'unplugging all memory is required'"
check "it plugs the requested 256 MiB again" wait_memtotal $((kb0 + 256 * 1024)) 60
check_eq "the device has 256 MiB plugged" "$SIZE" "$(hostcmd size vm0)"
memhog_start 200 || not_ok "memhog in the new memory"
r=$(memhog_verify)
check_eq "a program can use it" 0 "${r##* }"
memhog_stop
hostcmd resize vm0 0 >/dev/null
check "unplug it all" hostcmd wait-size vm0 0 120
check "rmmod $M" rmmod "$M"

# The host still asks for a 64 MiB balloon; the device was reset at the kexec.
check "modprobe $BM in the new kernel" modprobe "$BM"
check "its balloon inflates to the host's 64 MiB target again" \
	wait_for 90 '[ "$(meminfo_kb Balloon)" -eq 65536 ]'
hostcmd balloon "$(($(hostcmd balloon-actual) + (64 << 20)))" >/dev/null
check "and deflates when asked" wait_for 90 '[ "$(meminfo_kb Balloon)" -eq 0 ]'
check "rmmod $BM" rmmod "$BM"
ktap_finish
