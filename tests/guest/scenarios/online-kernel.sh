#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: auto-online to the kernel zone (online_kernel), then unplug
# qemu: --vmem id=vm0,size=4G
# drivers: c rust
# timeout: 300
. /tests/lib.sh

echo online_kernel > $MEMDIR/auto_online_blocks
kb0=$(memtotal_kb)
blocks >/tmp/b0
check "modprobe $(vmem_module)" modprobe "$(vmem_module)"
hostcmd resize vm0 "$(mib 256)" >/dev/null
check "plug 256 MiB" hostcmd wait-size vm0 "$(mib 256)" 120
wait_memtotal $((kb0 + 256 * 1024)) 30
check_eq "MemTotal grew by 256 MiB" "$((kb0 + 256 * 1024))" "$(memtotal_kb)"
bad=0
for b in $(blocks | grep -vxF -f /tmp/b0); do
	[ "$(block_state $b) $(block_zones $b)" = "online Normal" ] || { diag "memory$b: $(block_state $b) $(block_zones $b)"; bad=1; }
done
check_eq "every new block is online in ZONE_NORMAL" 0 "$bad"
# Kernel-zone memory may hold unmovable allocations, which the memory-hotplug
# documentation says cannot be unplugged: both drivers unplug what they can and
# keep retrying the rest. (Seen: one 2 MiB subblock stays.)
hostcmd resize vm0 0 >/dev/null
wait_for 60 '[ "$(hostcmd size vm0)" -le $(mib 16) ]'
check "at least 240 of 256 MiB of kernel-zone memory unplugged" [ "$(hostcmd size vm0)" -le "$(mib 16)" ]
# The driver goes on retrying the rest in the background (the Rust driver's backoff
# starts at 1 s), so what stays plugged may still shrink: wait for MemTotal to agree
# with the plugged size read just before and just after it.
settled() {
	left=$(hostcmd size vm0) kb=$(memtotal_kb)
	[ "$(hostcmd size vm0)" = "$left" ] && [ "$kb" -eq $((kb0 + left / 1024)) ]
}
wait_for 30 settled
diag "still plugged after unplugging ZONE_NORMAL memory: $left bytes"
check_eq "MemTotal matches what stays plugged" "$((kb0 + left / 1024))" "$kb"
if [ "$left" = 0 ]; then
	check "rmmod $(vmem_module)" rmmod "$(vmem_module)"
fi
ktap_finish
