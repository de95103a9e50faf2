#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: a new requested size during an unplug takes effect; two devices at once
# qemu: --vmem id=vm0,size=4G --vmem id=vm1,size=2G
# drivers: c rust
# timeout: 360
. /tests/lib.sh

echo online_movable > $MEMDIR/auto_online_blocks
kb0=$(memtotal_kb)
check "modprobe $(vmem_module)" modprobe "$(vmem_module)"
check_eq "both devices are bound" 2 "$(ls -d /sys/bus/virtio/devices/*/driver | wc -l)"
hostcmd resize vm0 "$(gib 2)" >/dev/null
hostcmd resize vm1 "$(mib 512)" >/dev/null
check "vm0 plugs 2 GiB" hostcmd wait-size vm0 "$(gib 2)" 120
check "vm1 plugs 512 MiB" hostcmd wait-size vm1 "$(mib 512)" 120
wait_memtotal $((kb0 + 2560 * 1024)) 30
check_eq "MemTotal grew by both" "$((kb0 + 2560 * 1024))" "$(memtotal_kb)"

# Change the request while the driver is unplugging: the host asks for 0, and for 1 GiB
# as soon as the plugged size has left 2 GiB, before it reaches 0.
r=$(hostcmd resize-midway vm0 0 "$(gib 1)") || bail "resize vm0 to 0, then to 1 GiB midway"
diag "vm0 was at ${r% *} bytes, 1 GiB asked for at ${r#* }"
check "the new size arrived while the unplug was in progress" \
	[ "${r% *}" = "$(gib 2)" -a "${r#* }" -lt "$(gib 2)" -a "${r#* }" -gt 0 ]
check "vm0 settles at the last request, 1 GiB" hostcmd wait-size vm0 "$(gib 1)" 120
sleep 1
check_eq "and stays there" "$(gib 1)" "$(hostcmd size vm0)"
wait_memtotal $((kb0 + 1536 * 1024)) 30
check_eq "MemTotal matches both devices" "$((kb0 + 1536 * 1024))" "$(memtotal_kb)"
hostcmd resize vm0 0 >/dev/null
hostcmd resize vm1 0 >/dev/null
check "vm0 unplugs" hostcmd wait-size vm0 0 120
check "vm1 unplugs" hostcmd wait-size vm1 0 120
wait_memtotal "$kb0" 30
check_eq "MemTotal is back" "$kb0" "$(memtotal_kb)"
check "rmmod $(vmem_module)" rmmod "$(vmem_module)"
ktap_finish
