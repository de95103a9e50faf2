#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: wakeup events: a balloon resize and a stats request keep the system awake until the driver has handled them (power/wakeup of the balloon device)
# qemu: --balloon
# drivers: c rust
# timeout: 300
#
# The balloon driver makes its virtio device wakeup-capable and, if user space enabled
# wakeup for it, keeps the system from suspending from a config change or a stats request
# until its worker has handled it (pm_stay_awake(), pm_relax()). Each handling activates the
# device's wakeup source once; sysfs counts that in power/wakeup_active_count and shows in
# power/wakeup_active whether it is still active.
. /tests/lib.sh

DEV=
for d in /sys/bus/virtio/devices/virtio*; do
	[ "$(cat "$d/device")" = 0x0005 ] && DEV=$d
done
[ -n "$DEV" ] || bail "a virtio balloon device"
W=$DEV/power
check "the balloon device is not wakeup-capable before a driver binds" test ! -e $W/wakeup
balloon_probe
check "the driver made it wakeup-capable" test -e $W/wakeup
check_eq "with wakeup disabled, as by default" disabled "$(cat $W/wakeup)"
echo enabled >$W/wakeup
active_count() { cat $W/wakeup_active_count; }
a0=$(active_count)

ram=$(hostcmd balloon-actual) || bail "query-balloon"
hostcmd balloon $((ram - (64 << 20))) >/dev/null
wait_for 60 '[ "$(meminfo_kb Balloon)" -eq 65536 ]'
check_eq "inflate 64 MiB" 65536 "$(meminfo_kb Balloon)"
wait_for 10 '[ "$(cat $W/wakeup_active)" = 0 ]'
a1=$(active_count)
check "the resize was a wakeup event (wakeup_active_count $a0 -> $a1)" test "$a1" -gt "$a0"
check_eq "which ended once the balloon met its target" 0 "$(cat $W/wakeup_active)"

hostcmd qom-set balloon0 guest-stats-polling-interval 1 >/dev/null
wait_for 20 '[ "$(active_count)" -gt "$a1" ]'
a2=$(active_count)
check "a stats request is a wakeup event (wakeup_active_count $a1 -> $a2)" test "$a2" -gt "$a1"
hostcmd qom-set balloon0 guest-stats-polling-interval 0 >/dev/null
sleep 2
wait_for 10 '[ "$(cat $W/wakeup_active)" = 0 ]'
check_eq "no wakeup event is left active" 0 "$(cat $W/wakeup_active)"
[ "$VMEM_DRIVER" = rust ] && check_eq "the driver agrees (wakeup_awake)" false "$(bs_field wakeup_awake)"

hostcmd balloon "$ram" >/dev/null
wait_for 60 '[ "$(meminfo_kb Balloon)" -eq 0 ]'
check_eq "deflate" 0 "$(meminfo_kb Balloon)"
echo disabled >$W/wakeup
check "rmmod $BMOD" rmmod "$BMOD"
ktap_finish
