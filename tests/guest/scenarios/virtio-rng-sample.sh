#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: the Rust virtio-rng sample binds by alias, reads entropy, rebinds, suspends, unloads
# qemu: --device virtio-rng-pci
# drivers: none
# timeout: 180
. /tests/lib.sh

DRV=rust_driver_virtio_rng
SYSDRV=/sys/bus/virtio/drivers/$DRV

dev=
for d in /sys/bus/virtio/devices/*; do
	[ "$(cat "$d/device")" = 0x0004 ] && dev=$(basename "$d")
done
[ -n "$dev" ] || bail "a virtio-rng device (type 4) is on the virtio bus"
ok "virtio-rng device found: $dev"
alias=$(cat /sys/bus/virtio/devices/$dev/modalias)
diag "modalias $alias"

# Coldplug as udev does: load whatever module claims the device's modalias.
check "modprobe by modalias" modprobe "$alias"
check "the alias loaded $DRV" grep -q "^$DRV " /proc/modules
wait_for 10 '[ -e /sys/bus/virtio/devices/$dev/driver ]'
check_eq "$dev is bound to $DRV" "$DRV" "$(basename "$(readlink /sys/bus/virtio/devices/$dev/driver)")"

dbg=/sys/kernel/debug/rust_virtio_rng.$dev
e1=$(cat $dbg/entropy)
e2=$(cat $dbg/entropy)
diag "entropy: $e1"
check "entropy is 32 bytes of hex" sh -c "echo '$e1' | grep -qxE '[0-9a-f]{64}'"
check "two reads differ" [ "$e1" != "$e2" ]
check "stats count the requests" sh -c "grep -qx 'requests 2' $dbg/stats && grep -qx 'bytes 64' $dbg/stats"
zero=00000000000000000000000000000000
check "the device filled both parts of the two-part buffer" \
	sh -c "[ '$(echo "$e1" | cut -c1-32)' != $zero ] && [ '$(echo "$e1" | cut -c33-64)' != $zero ]"
# The interrupt-driven path: add, kick, the VqHandler reports the used buffer, get_buf.
# (exec() may take its buffer back before the interrupt, so it proves nothing about callbacks.)
a=$(cat $dbg/entropy_async)
diag "entropy_async: $a"
check "add/kick/handler/get_buf returns entropy" sh -c "echo '$a' | grep -qxE '[0-9a-f]{64}'"

# Callbacks off: the request helper still gets its answer (it polls); on again: the
# interrupt-driven path works again.
echo 0 > $dbg/callbacks
check "entropy readable with callbacks disabled" sh -c "grep -qxE '[0-9a-f]{64}' $dbg/entropy"
echo 1 > $dbg/callbacks
check "entropy readable with callbacks enabled again" sh -c "grep -qxE '[0-9a-f]{64}' $dbg/entropy"
check "the handler reports used buffers again once enabled" \
	sh -c "grep -qxE '[0-9a-f]{64}' $dbg/entropy_async"
check "a bad write to callbacks is refused" sh -c "! echo x > $dbg/callbacks 2>/dev/null"

# Unbind and rebind through sysfs.
echo "$dev" > $SYSDRV/unbind
check "unbind: device has no driver" [ ! -e /sys/bus/virtio/devices/$dev/driver ]
check "unbind: debugfs directory removed" [ ! -e $dbg ]
echo "$dev" > $SYSDRV/bind
check "rebind: bound again" [ -e /sys/bus/virtio/devices/$dev/driver ]
check "rebind: entropy readable" sh -c "grep -qxE '[0-9a-f]{64}' $dbg/entropy"

# Suspend devices (virtio freeze/restore) without a wakeup source.
echo devices > /sys/power/pm_test
check "suspend-to-idle with pm_test=devices" sh -c 'echo freeze > /sys/power/state'
echo none > /sys/power/pm_test
check "driver saw freeze and restore" sh -c "dmesg | grep -q '$DRV $dev: frozen' && dmesg | grep -q '$DRV $dev: restored'"
check "entropy readable after resume" sh -c "grep -qxE '[0-9a-f]{64}' $dbg/entropy"

check "rmmod $DRV" rmmod $DRV
check "unload: device has no driver" [ ! -e /sys/bus/virtio/devices/$dev/driver ]
check "unload: debugfs directory removed" [ ! -e $dbg ]
ktap_finish
