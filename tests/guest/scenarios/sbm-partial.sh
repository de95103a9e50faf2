#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: Sub-Block Mode: a partially plugged block onlines to ZONE_MOVABLE, grows, shrinks online, survives a cancelled offline, offlines, goes with the driver
# qemu: --vmem id=vm0,size=4G
# drivers: c rust
# timeout: 300
. /tests/lib.sh

echo offline > $MEMDIR/auto_online_blocks
kb0=$(memtotal_kb)
blocks >/tmp/b0
check "modprobe $(vmem_module)" modprobe "$(vmem_module)"

resize() {	# resize MIB: ask the host and wait until the device has it
	hostcmd resize vm0 "$(mib $1)" >/dev/null && hostcmd wait-size vm0 "$(mib $1)" 120 >/dev/null
}

check "plug 100 MiB (50 subblocks of one memory block)" resize 100
wait_for 10 '[ "$(blocks | grep -cvxF -f /tmp/b0)" -ge 1 ]'
blk=$(blocks | grep -vxF -f /tmp/b0 | head -1)
check_eq "exactly one new memory block" 1 "$(blocks | grep -cvxF -f /tmp/b0)"
check_eq "it is added offline" offline "$(block_state $blk)"
check_eq "offline memory does not count in MemTotal" "$kb0" "$(memtotal_kb)"

check "online_movable the partially plugged block" sh -c "echo online_movable > $MEMDIR/memory$blk/state"
check_eq "it is in ZONE_MOVABLE" Movable "$(block_zones $blk)"
check_eq "MemTotal grew by the plugged 100 MiB only" "$((kb0 + 100 * 1024))" "$(memtotal_kb)"

check "grow to 128 MiB (plug the rest of the online block)" resize 128
wait_memtotal $((kb0 + 128 * 1024)) 10
check_eq "MemTotal grew to 128 MiB" "$((kb0 + 128 * 1024))" "$(memtotal_kb)"

check "shrink to 64 MiB (unplug online subblocks)" resize 64
wait_memtotal $((kb0 + 64 * 1024)) 10
check_eq "MemTotal shrank to 64 MiB" "$((kb0 + 64 * 1024))" "$(memtotal_kb)"
check_eq "the block is still online" online "$(block_state $blk)"

# An offline that fails ends in MEM_CANCEL_OFFLINE: pinned pages in the block cannot
# migrate, and the offline is interrupted. The driver's unplugged subblocks must come
# back as they were: still offline, still not counted, and a later offline must work.
dir=$(mktemp -d)
pinhold 128 1024 "$dir" &
pid=$!
wait_for 120 '[ -e "$dir/ready" ]' || bail "pinhold did not start"
bs=$(block_size)
n=$(while read -r a; do [ $((a / bs)) -eq "$blk" ] && echo; done <"$dir/held" | wc -l)
check "pinned pages lie in the partially plugged block ($n)" [ "$n" -ge 1 ]
check "offlining it is interrupted while the pinned pages keep it busy" \
	sh -c "! timeout -s INT 5 sh -c 'echo offline > $MEMDIR/memory$blk/state' 2>/dev/null"
check_eq "the block is still online" online "$(block_state $blk)"
check_eq "MemTotal still shows 64 MiB" "$((kb0 + 64 * 1024))" "$(memtotal_kb)"
touch "$dir/stop"
wait "$pid"
check_eq "pinhold exits clean" 0 "$?"
# The unplugged half kept through the cancelled offline must be exactly as before: plugging
# it hands its pages to the page allocator (with their reference counts checked).
check "plug the unplugged half again" resize 128
wait_memtotal $((kb0 + 128 * 1024)) 10
check_eq "MemTotal shows 128 MiB" "$((kb0 + 128 * 1024))" "$(memtotal_kb)"
check "and unplug it again" resize 64
wait_memtotal $((kb0 + 64 * 1024)) 10
check_eq "MemTotal shows 64 MiB" "$((kb0 + 64 * 1024))" "$(memtotal_kb)"

check "offline the partially plugged block" sh -c "echo offline > $MEMDIR/memory$blk/state"
check_eq "MemTotal is back to its boot value" "$kb0" "$(memtotal_kb)"
check "online_movable it again" sh -c "echo online_movable > $MEMDIR/memory$blk/state"
check_eq "MemTotal shows the 64 MiB again" "$((kb0 + 64 * 1024))" "$(memtotal_kb)"

# Unloading with the block offline and partially plugged (OFFLINE_PARTIAL): without the
# driver's online-page handler, onlining it later would hand unplugged memory to the page
# allocator, so both drivers remove it before they go.
check "offline it again" sh -c "echo offline > $MEMDIR/memory$blk/state"
check "rmmod $(vmem_module) with the block offline and partially plugged" rmmod "$(vmem_module)"
check_eq "the block went with the driver: nothing is left to online" 0 "$(blocks | grep -cvxF -f /tmp/b0)"
check_eq "MemTotal is at its boot value" "$kb0" "$(memtotal_kb)"

check "modprobe $(vmem_module) again" modprobe "$(vmem_module)"
check "unplug everything" resize 0
check_eq "no block is left" 0 "$(blocks | grep -cvxF -f /tmp/b0)"
check_eq "MemTotal is back to its boot value" "$kb0" "$(memtotal_kb)"
check "rmmod $(vmem_module)" rmmod "$(vmem_module)"
ktap_finish
