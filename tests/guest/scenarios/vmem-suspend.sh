#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: suspend to idle (virtio freeze/restore) with and without plugged memory
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
hostcmd resize vm0 0 >/dev/null
check "unplugging works after resume" hostcmd wait-size vm0 0 60
echo none > /sys/power/pm_test
check "rmmod $(vmem_module)" rmmod "$(vmem_module)"
ktap_finish
