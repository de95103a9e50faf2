#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: demo: plug and unplug memory through virtio-mem, showing the guest's view
# qemu: --vmem id=vm0,size=4G
# drivers: c rust
# timeout: 300
. /tests/lib.sh

show() {
	diag "---- $1"
	diag "$(grep -E '^(MemTotal|MemFree):' /proc/meminfo | tr -s ' ' | tr '\n' ' ')"
	diag "plugged on vm0: $(hostcmd size vm0) bytes; online memory blocks per zone:"
	for b in $(blocks); do
		[ "$(block_state "$b")" = online ] && echo "$(block_zones "$b")"
	done | sort | uniq -c | while read -r n z; do diag "  $n x $z"; done
}

echo online_movable > $MEMDIR/auto_online_blocks
check "load the $VMEM_DRIVER virtio-mem driver ($(vmem_module))" modprobe "$(vmem_module)"
kb0=$(memtotal_kb)
show "boot"
for size in 512 1536 256 0; do
	hostcmd resize vm0 "$(mib $size)" >/dev/null
	if t=$(hostcmd wait-size vm0 "$(mib $size)" 120) &&
	   wait_memtotal $((kb0 + size * 1024)) 30; then
		ok "resize to $size MiB: device done in ${t} s, MemTotal +$size MiB"
	else
		not_ok "resize to $size MiB"
	fi
	show "requested $size MiB"
done
ktap_finish
