#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: unload and reload; with memory still online, a reload refuses the device
# qemu: --vmem id=vm0,size=4G
# drivers: c rust
# timeout: 300
. /tests/lib.sh

M=$(vmem_module)
echo online_movable > $MEMDIR/auto_online_blocks
kb0=$(memtotal_kb)
check "modprobe $M" modprobe $M
hostcmd resize vm0 "$(mib 256)" >/dev/null
check "plug 256 MiB" hostcmd wait-size vm0 "$(mib 256)" 120
hostcmd resize vm0 0 >/dev/null
check "unplug it" hostcmd wait-size vm0 0 120
# The device's size is 0 before the driver has removed the emptied blocks: an unload in
# between leaves them added, and the region claimed (both drivers say so and keep it).
wait_memtotal "$kb0" 30
check_eq "the driver removed the unplugged blocks" "$kb0" "$(memtotal_kb)"
check "rmmod $M with nothing plugged" rmmod $M
check "modprobe $M again" modprobe $M
check "the device is bound again" bound 0
hostcmd resize vm0 "$(mib 128)" >/dev/null
check "plug 128 MiB after reload" hostcmd wait-size vm0 "$(mib 128)" 120
wait_memtotal $((kb0 + 128 * 1024)) 30
check_eq "MemTotal grew by 128 MiB" "$((kb0 + 128 * 1024))" "$(memtotal_kb)"

# Unload with that memory online: it stays, and so does the device's claim on its region.
check "rmmod $M with memory online" rmmod $M
check_eq "the memory stays in the system" "$((kb0 + 128 * 1024))" "$(memtotal_kb)"
modprobe $M 2>/dev/null
sleep 2
check "a reload refuses the device (its region is still claimed)" sh -c '! [ -e /sys/bus/virtio/devices/virtio0/driver ]'
check_eq "nothing was unplugged behind the kernel's back" "$(mib 128)" "$(hostcmd size vm0)"
check_eq "the memory is still there" "$((kb0 + 128 * 1024))" "$(memtotal_kb)"
ktap_finish
