#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: BBM: a big block whose second memory block refuses to go offline stays whole and online; another one is unplugged instead
# qemu: --vmem id=vm0,size=1G,memaddr=0x100000000
# drivers: c rust
# timeout: 300
#
# Big blocks of 256 MiB (bbm_block_size), two memory blocks each: BB0 is
# memory32+33, BB1 memory34+35. The Rust memory notifier sample vetoes offlining
# memory35. Asked to shrink from 512 to 256 MiB, the driver tries BB1 first (the
# highest, as in C): offline_and_remove_memory() offlines memory34, is refused on
# memory35 and onlines memory34 again. Expected, from the C driver
# (virtio_mem_bbm_offline_remove_and_unplug_bb: the online-page callback keeps a
# FAKE_OFFLINE big block's pages offline, and the rollback gives them back):
#  - memory34 and memory35 are online again and whole: MemTotal counts all of BB1;
#  - BB0 is unplugged instead, and the device settles at 256 MiB;
#  - the kernel does not report "Failed to re-online memory".
. /tests/lib.sh

M=$(vmem_module)
echo online_movable > $MEMDIR/auto_online_blocks
kb0=$(memtotal_kb)
check "modprobe $M force_bbm=1 bbm_block_size=256M" modprobe "$M" force_bbm=1 bbm_block_size=$((256 << 20))
hostcmd resize vm0 "$(mib 512)" >/dev/null
check "plug 512 MiB (two big blocks)" hostcmd wait-size vm0 "$(mib 512)" 120
wait_memtotal $((kb0 + 512 * 1024)) 30
check "modprobe rust_memory_notifier veto_offline=35" modprobe rust_memory_notifier veto_offline=35
dmesg -c >/dev/null

hostcmd resize vm0 "$(mib 256)" >/dev/null
if t=$(hostcmd wait-size vm0 "$(mib 256)" 120); then
	ok "settles at 256 MiB (${t} s)"
else
	not_ok "settles at 256 MiB ($(hostcmd size vm0) plugged)"
fi
check "the notifier refused offlining memory35" sh -c "dmesg | grep -q 'vetoing MEM_GOING_OFFLINE of memory35'"
check_eq "memory34 is online again" online "$(block_state 34)"
check_eq "memory35 stayed online" online "$(block_state 35)"
check "BB0 was removed instead (memory32 and memory33 are gone)" sh -c "[ ! -e $MEMDIR/memory32 ] && [ ! -e $MEMDIR/memory33 ]"
wait_memtotal $((kb0 + 256 * 1024)) 30
check_eq "MemTotal counts all of BB1" $((kb0 + 256 * 1024)) "$(memtotal_kb)"
check "no failure to online memory again" sh -c "! dmesg | grep -q 'Failed to re-online'"

check "rmmod rust_memory_notifier" rmmod rust_memory_notifier
hostcmd resize vm0 0 >/dev/null
check "then BB1 unplugs" hostcmd wait-size vm0 0 120
wait_memtotal "$kb0" 30
check_eq "MemTotal back to boot" "$kb0" "$(memtotal_kb)"
check "rmmod $M" rmmod "$M"
ktap_finish
