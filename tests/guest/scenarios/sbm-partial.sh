#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: Sub-Block Mode: a partially plugged block onlines to ZONE_MOVABLE, grows, shrinks online, offlines
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

check "offline the partially plugged block" sh -c "echo offline > $MEMDIR/memory$blk/state"
check_eq "MemTotal is back to its boot value" "$kb0" "$(memtotal_kb)"
check "online_movable it again" sh -c "echo online_movable > $MEMDIR/memory$blk/state"
check_eq "MemTotal shows the 64 MiB again" "$((kb0 + 64 * 1024))" "$(memtotal_kb)"

check "unplug everything" resize 0
wait_for 30 '[ "$(blocks | grep -cvxF -f /tmp/b0)" = 0 ]'
check_eq "the block is gone" 0 "$(blocks | grep -cvxF -f /tmp/b0)"
check_eq "MemTotal is back to its boot value" "$kb0" "$(memtotal_kb)"
check "rmmod $(vmem_module)" rmmod "$(vmem_module)"
ktap_finish
