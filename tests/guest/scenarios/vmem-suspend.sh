#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: suspend to idle (virtio freeze/restore) with and without plugged memory; S3 with memory plugged
# qemu: --vmem id=vm0,size=4G
# drivers: c rust
# timeout: 240
. /tests/lib.sh

echo online_movable > $MEMDIR/auto_online_blocks
kb0=$(memtotal_kb)
check "modprobe $(vmem_module)" modprobe "$(vmem_module)"
echo devices > /sys/power/pm_test
check "suspend to idle with nothing plugged" sh -c 'echo freeze > /sys/power/state'
hostcmd resize vm0 "$(mib 256)" >/dev/null
check "plugging works after resume" hostcmd wait-size vm0 "$(mib 256)" 60
wait_memtotal $((kb0 + 256 * 1024)) 30
# s2idle keeps memory, so both drivers allow it with memory plugged.
check "suspend to idle with 256 MiB plugged" sh -c 'echo freeze > /sys/power/state'
check_eq "the memory is still there" "$((kb0 + 256 * 1024))" "$(memtotal_kb)"
check_eq "the device still has it plugged" "$(mib 256)" "$(hostcmd size vm0)"
# S3 (mem, deep): the device may lose plugged memory unless it offers
# VIRTIO_MEM_F_PERSISTENT_SUSPEND (feature bit 2), so both drivers refuse it then.
check "the machine offers S3 (deep in /sys/power/mem_sleep)" grep -qw deep /sys/power/mem_sleep
echo deep > /sys/power/mem_sleep
if [ "$(cut -c3 /sys/bus/virtio/devices/virtio0/features)" = 1 ]; then
	diag "the device offers VIRTIO_MEM_F_PERSISTENT_SUSPEND"
	check "S3 with 256 MiB plugged (persistent suspend)" sh -c 'echo mem > /sys/power/state'
else
	diag "the device does not offer VIRTIO_MEM_F_PERSISTENT_SUSPEND"
	check "S3 with 256 MiB plugged is refused" sh -c '! echo mem > /sys/power/state'
fi
check_eq "the memory is still there after S3" "$((kb0 + 256 * 1024))" "$(memtotal_kb)"
check_eq "the device still has it plugged after S3" "$(mib 256)" "$(hostcmd size vm0)"
echo s2idle > /sys/power/mem_sleep
hostcmd resize vm0 0 >/dev/null
check "unplugging works after resume" hostcmd wait-size vm0 0 60
echo none > /sys/power/pm_test
check "rmmod $(vmem_module)" rmmod "$(vmem_module)"
ktap_finish
