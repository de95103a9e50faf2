#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: Big Block Mode gives back all-ZONE_MOVABLE big blocks before ones with ZONE_NORMAL memory, judged by every memory block, as C does
# qemu: --ram 4G --vmem id=vm0,size=1G
# drivers: c rust
# timeout: 420
#
# With 512 MiB big blocks, each big block spans four memory blocks, and each of
# those is onlined to a zone of its own. The driver unplugs online memory in
# whole big blocks, those entirely in ZONE_MOVABLE first
# (virtio_mem_bbm_bb_is_movable() looks at every section): memory in
# ZONE_NORMAL is what the kernel's own allocations need, and may hold them.
#
# Big block 0: its first memory block online_movable, the three others
# online_kernel, all of it free. Big block 1: all online_movable, holding a
# program's data. Asked to give back 512 MiB, the driver must take big block 1
# (migrating the data) and keep big block 0, although big block 0 is free: a
# driver that judged big block 0 by its first page alone would take it.
. /tests/lib.sh

M=$(vmem_module)
bs=$(block_size)
# online_range FIRST LAST HOW: online memory blocks FIRST..LAST as HOW.
online_range() {
	_i=$1
	while [ "$_i" -le "$2" ]; do
		echo "$3" >"$MEMDIR/memory$_i/state" || return 1
		_i=$((_i + 1))
	done
}
# zone_of ID: the zone memory block ID is online in.
zone_of() { cat "$MEMDIR/memory$1/valid_zones"; }

echo offline >$MEMDIR/auto_online_blocks
check "modprobe $M force_bbm=1 bbm_block_size=512M" modprobe "$M" force_bbm=1 bbm_block_size=$(mib 512)
REGION=$(($(dmesg | sed -n 's/.* virtio0: start address: //p' | tail -1)))
check_eq "the region (at $(printf %#x $REGION)) starts on a big block boundary" 0 $((REGION % (512 << 20)))
first=$((REGION / bs)) per_bb=$(((512 << 20) / bs))
hostcmd resize vm0 "$(gib 1)" >/dev/null
check "plug 1 GiB: two big blocks" hostcmd wait-size vm0 "$(gib 1)" 120
wait_for 30 "[ -e $MEMDIR/memory$((first + 2 * per_bb - 1)) ]"
check "big block 1 online_movable" online_range $((first + per_bb)) $((first + 2 * per_bb - 1)) online_movable
free0=$(movable_free_kb)
memhog_start 64 || bail "memhog holds 64 MiB"
free1=$(movable_free_kb)
check "the program's data landed in big block 1 (>= 48 MiB)" [ $((free0 - free1)) -ge $((48 * 1024)) ]
check "big block 0: first memory block online_movable" online_range $first $first online_movable
check "big block 0: the rest online_kernel" online_range $((first + 1)) $((first + per_bb - 1)) online_kernel
check_eq "big block 0 starts in ZONE_MOVABLE" Movable "$(zone_of $first)"
check_eq "big block 0 goes on in ZONE_NORMAL" Normal "$(zone_of $((first + 1)))"

hostcmd resize vm0 "$(mib 512)" >/dev/null
t=$(hostcmd wait-size vm0 "$(mib 512)" 240) && ok "gave back 512 MiB (${t} s)" || not_ok "gave back 512 MiB"
check "big block 1 (all ZONE_MOVABLE) is gone" sh -c "! [ -e $MEMDIR/memory$((first + per_bb)) ]"
check "big block 0 (part ZONE_NORMAL) stays" sh -c "[ -e $MEMDIR/memory$first ] && [ -e $MEMDIR/memory$((first + per_bb - 1)) ]"
res=$(memhog_verify)
diag "after unplug: $res"
check "no page of the program was corrupted" sh -c "echo '$res' | grep -q ' corrupted 0$'"
memhog_stop
check_eq "the program exits clean" 0 "$?"

hostcmd resize vm0 0 >/dev/null
check "unplug the rest" hostcmd wait-size vm0 0 240
check "rmmod $M" rmmod "$M"
ktap_finish
