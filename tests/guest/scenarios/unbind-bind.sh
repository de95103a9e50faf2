#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: sysfs unbind and bind of virtio-mem devices with memory plugged, offline (vm0) and online (vm1)
# qemu: --maxmem 3G --vmem id=vm0,size=1G,memaddr=0x100000000 --vmem id=vm1,size=1G,memaddr=0x140000000
# drivers: c rust
# timeout: 300
#
# Unbind must never lose memory the system uses nor expose unplugged memory.
# - vm0: plugged memory left offline. The Rust driver removes it at unbind and
#   unplugs it, so a bind afterwards plugs the request again. The C driver keeps
#   fully plugged offline blocks added ("device still has system memory added"),
#   with its claim on the region, so a bind afterwards is refused.
# - vm1: plugged memory that is online stays at unbind with both drivers, with the
#   claim on its region: a bind is refused and nothing is unplugged.
. /tests/lib.sh

M=$(vmem_module)
D=/sys/bus/virtio/drivers/$M
# region_blocks ADDR: memory blocks present in the 1 GiB region at ADDR
region_blocks() {
	_bs=$(block_size) _n=0
	for _b in $(blocks); do
		[ $((_b * _bs)) -ge $(($1)) ] && [ $((_b * _bs)) -lt $(($1 + (1 << 30))) ] && _n=$((_n + 1))
	done
	echo $_n
}
kb0=$(memtotal_kb)

# --- vm0: offline memory ---------------------------------------------------------------
echo offline > $MEMDIR/auto_online_blocks
check "modprobe $M" modprobe $M
check "both devices are bound" sh -c 'ls -d /sys/bus/virtio/devices/virtio[01]/driver >/dev/null'
hostcmd resize vm0 "$(mib 256)" >/dev/null
check "vm0: plug 256 MiB, left offline" hostcmd wait-size vm0 "$(mib 256)" 120
check_eq "vm0: two offline memory blocks" "2 offline offline" \
	"$(region_blocks 0x100000000) $(block_state 32) $(block_state 33)"
echo virtio0 > $D/unbind
check "vm0: unbind with offline memory plugged" sh -c '! [ -e /sys/bus/virtio/devices/virtio0/driver ]'
check_eq "vm0: MemTotal unchanged" "$kb0" "$(memtotal_kb)"
echo online_movable > $MEMDIR/auto_online_blocks
if [ "$VMEM_DRIVER" = rust ]; then
	check_eq "vm0: its memory blocks are removed" 0 "$(region_blocks 0x100000000)"
	check_eq "vm0: and unplugged" 0 "$(hostcmd size vm0)"
	echo virtio0 > $D/bind
	check "vm0: bind again" bound 0
	check "vm0: the device plugs the 256 MiB requested again" hostcmd wait-size vm0 "$(mib 256)" 120
	wait_memtotal $((kb0 + 256 * 1024)) 30
	check_eq "vm0: MemTotal grew by 256 MiB" $((kb0 + 256 * 1024)) "$(memtotal_kb)"
	hostcmd resize vm0 0 >/dev/null
	check "vm0: unplug it" hostcmd wait-size vm0 0 120
	wait_memtotal "$kb0" 30
else
	check "vm0: the C driver says it keeps the memory" \
		sh -c "dmesg | grep -q 'virtio_mem virtio0: device still has system memory added'"
	check_eq "vm0: its memory blocks stay, offline" "2 offline offline" \
		"$(region_blocks 0x100000000) $(block_state 32) $(block_state 33)"
	echo virtio0 > $D/bind 2>/dev/null
	check "vm0: a bind is refused: the region is still claimed" sh -c '! [ -e /sys/bus/virtio/devices/virtio0/driver ]'
	check_eq "vm0: nothing was unplugged" "$(mib 256)" "$(hostcmd size vm0)"
fi

# --- vm1: online memory ----------------------------------------------------------------
kb1=$(memtotal_kb)
hostcmd resize vm1 "$(mib 256)" >/dev/null
check "vm1: plug 256 MiB, online" hostcmd wait-size vm1 "$(mib 256)" 120
wait_memtotal $((kb1 + 256 * 1024)) 30
check_eq "vm1: MemTotal grew by 256 MiB" $((kb1 + 256 * 1024)) "$(memtotal_kb)"
echo virtio1 > $D/unbind
check "vm1: unbind with online memory plugged" sh -c '! [ -e /sys/bus/virtio/devices/virtio1/driver ]'
check_eq "vm1: the online memory stays" $((kb1 + 256 * 1024)) "$(memtotal_kb)"
echo virtio1 > $D/bind 2>/dev/null
sleep 1
check "vm1: a bind is refused: the region is still claimed" sh -c '! [ -e /sys/bus/virtio/devices/virtio1/driver ]'
check_eq "vm1: nothing was unplugged behind the kernel's back" "$(mib 256)" "$(hostcmd size vm1)"
check_eq "vm1: the memory is still there" $((kb1 + 256 * 1024)) "$(memtotal_kb)"
ktap_finish
