#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: the driver vetoes hibernation (a restored VM would find its memory unplugged)
# qemu: --vmem id=vm0,size=1G
# drivers: c rust
# timeout: 120
#
# Only with the driver loaded: without it, the kernel would really try to hibernate.
. /tests/lib.sh

grep -qw disk /sys/power/state || bail "hibernation is built in (disk in /sys/power/state)"
check "modprobe $(vmem_module)" modprobe "$(vmem_module)"
hostcmd resize vm0 "$(mib 128)" >/dev/null
check "plug 128 MiB" hostcmd wait-size vm0 "$(mib 128)" 60
err=$(sh -c 'echo disk > /sys/power/state' 2>&1)
rc=$?
check "hibernation is refused (exit $rc: $err)" [ "$rc" -ne 0 ]
case "$err" in
*"Operation not permitted"*) ok "with EPERM, as for a C notifier returning NOTIFY_BAD" ;;
*) not_ok "with EPERM, as for a C notifier returning NOTIFY_BAD (got: $err)" ;;
esac
check "the driver says why" sh -c "dmesg | grep -q 'hibernation is not supported'"
check_eq "the memory is still plugged" "$(mib 128)" "$(hostcmd size vm0)"
hostcmd resize vm0 0 >/dev/null
check "unplugging still works" hostcmd wait-size vm0 0 60
check "rmmod $(vmem_module)" rmmod "$(vmem_module)"
ktap_finish
