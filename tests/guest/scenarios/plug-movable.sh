#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: plug 1 GiB auto-onlined to ZONE_MOVABLE, then unplug it all
# qemu: --vmem id=vm0,size=8G
# drivers: c rust
# timeout: 300
. /tests/lib.sh

echo online_movable > $MEMDIR/auto_online_blocks
check_eq "auto_online_blocks is online_movable" online_movable "$(cat $MEMDIR/auto_online_blocks)"
bs=$(block_size)
diag "memory block size $bs"
kb0=$(memtotal_kb)
blocks >/tmp/blocks0

check "modprobe $(vmem_module)" modprobe "$(vmem_module)"
hostcmd resize vm0 "$(gib 1)" >/dev/null || bail "host resize to 1 GiB"
t=$(hostcmd wait-size vm0 "$(gib 1)" 120) || bail "device reports 1 GiB plugged"
ok "device reports 1 GiB plugged (${t} s)"

want=$((kb0 + (1 << 20)))
wait_memtotal "$want" 30
check_eq "MemTotal grew by exactly 1 GiB" "$want" "$(memtotal_kb)"

blocks | grep -vxF -f /tmp/blocks0 >/tmp/new
nblk=$(( (1 << 30) / bs ))
check_eq "$nblk new memory blocks" "$nblk" "$(wc -l </tmp/new)"
bad=0
for b in $(cat /tmp/new); do
	[ "$(block_state "$b")" = online ] || { diag "memory$b is $(block_state "$b")"; bad=1; }
	[ "$(block_zones "$b")" = Movable ] || { diag "memory$b zones $(block_zones "$b")"; bad=1; }
done
check_eq "every new block is online with valid_zones Movable" 0 "$bad"

hostcmd resize vm0 0 >/dev/null || bail "host resize to 0"
t=$(hostcmd wait-size vm0 0 120) && ok "device reports 0 plugged (${t} s)" || not_ok "device reports 0 plugged"
wait_memtotal "$kb0" 30
check_eq "MemTotal is back to its boot value" "$kb0" "$(memtotal_kb)"
wait_for 30 '[ "$(nr_blocks)" -eq '"$(wc -l </tmp/blocks0)"' ]'
blocks >/tmp/blocks1
check "the hot-added blocks are gone from sysfs" cmp -s /tmp/blocks0 /tmp/blocks1
check "rmmod $(vmem_module)" rmmod "$(vmem_module)"
ktap_finish
