#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: kexec into a new kernel with memory plugged: the driver there unplugs it all (UNPLUG_ALL) before it plugs again
# qemu: --ram 2G --vmem id=vm0,size=1G,memaddr=0x100000000
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
. /tests/lib.sh

M=$(vmem_module)
SIZE=$((256 << 20))

if [ "$(vmem_phase)" = 1 ]; then
	echo online_movable > $MEMDIR/auto_online_blocks
	check "modprobe $M" modprobe "$M"
	hostcmd resize vm0 "$SIZE" >/dev/null
	check "plug 256 MiB" hostcmd wait-size vm0 "$SIZE" 120
	memhog_start 200 || bail "memhog"
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
ktap_finish
