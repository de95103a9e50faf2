#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: force_bbm on unusual geometries: unaligned region, no whole big block, 1 MiB blocks, odd requests
# qemu: --maxmem 3G --vmem id=vm0,size=384M,memaddr=0x100200000 --vmem id=vm1,size=2M,memaddr=0x120000000 --vmem id=vm2,size=256M,block=1M,memaddr=0x140000000 --vmem id=vm3,size=130M,memaddr=0x160000000
# drivers: c rust
# timeout: 300
#
# With force_bbm=1 both drivers plug whole big blocks of max(device block, memory
# block) = 128 MiB here, inside the region rounded inward to big blocks
# (virtio_mem_init_hotplug, virtio_mem_bbm_plug_request: nr_bbs = diff / bb_size).
#
#   vm0  384 MiB starting 2 MiB past a memory block boundary: two whole big blocks.
#   vm1  2 MiB: no whole big block. The C driver binds, warns about the alignment and
#        never plugs (-ENOSPC); the Rust driver refuses the device. Nothing is plugged.
#   vm2  1 MiB device blocks: a request below a big block plugs nothing, one that is
#        not a multiple of it plugs the big blocks below it, and an unplug that is
#        not a multiple of it leaves the big block above the request.
#   vm3  130 MiB: one whole big block.
. /tests/lib.sh

M=$(vmem_module)
echo online_movable > $MEMDIR/auto_online_blocks
kb0=$(memtotal_kb)
dmesg -c >/dev/null

logged() { dmesg | grep -F "$M virtio$1: $2" >/dev/null; }
req() { hostcmd resize "$1" "$2" >/dev/null; }
settles() {
	hostcmd wait-size "$1" "$2" 60 >/dev/null || { diag "$1 has $(hostcmd size "$1") plugged"; return 1; }
	sleep 1
	_s=$(hostcmd size "$1")
	[ "$_s" = "$2" ] || { diag "$1 moved on to $_s"; return 1; }
}
memtotal_is() {
	wait_memtotal $((kb0 + $1 / 1024)) 30
	check_eq "MemTotal is boot + $(($1 >> 20)) MiB" $((kb0 + $1 / 1024)) "$(memtotal_kb)"
}
online() {
	_b=$1
	while [ $_b -lt $(($1 + $2)) ]; do
		[ "$(block_state $_b 2>/dev/null)" = online ] || { diag "memory$_b: $(block_state $_b 2>&1)"; return 1; }
		_b=$((_b + 1))
	done
}

check "modprobe $M force_bbm=1" modprobe $M force_bbm=1
sleep 1
for i in 0 2 3; do
	check "virtio$i: Big Block Mode with 128 MiB big blocks" logged $i "big block size: 0x8000000"
done

# --- vm1: no whole big block ---------------------------------------------------------
if [ "$VMEM_DRIVER" = c ]; then
	check "c: virtio1 is bound" bound 1
	check "c: virtio1 warns about the end alignment" \
		logged 1 "The alignment of the physical end address can make some memory unusable."
else
	check "rust: virtio1 is refused" sh -c "! [ -e /sys/bus/virtio/devices/virtio1/driver ]"
	check "rust: virtio1 says why" logged 1 "refusing device: no whole big block of 0x8000000 fits"
fi
req vm1 "$(mib 2)"
sleep 3
check_eq "vm1: nothing is plugged for a 2 MiB request" 0 "$(hostcmd size vm1)"
req vm1 0

# --- vm0: region 2 MiB past a memory block boundary -----------------------------------
if [ "$VMEM_DRIVER" = c ]; then
	check "c: virtio0 warns about the start alignment" \
		logged 0 "The alignment of the physical start address can make some memory unusable."
fi
req vm0 "$(mib 384)"
check "vm0: a 384 MiB request plugs the two whole big blocks" settles vm0 "$(mib 256)"
memtotal_is "$(mib 256)"
check "vm0: memory blocks 33 and 34 are online" online 33 2
req vm0 "$(mib 128)"
check "vm0: unplugs one big block" settles vm0 "$(mib 128)"
memtotal_is "$(mib 128)"
req vm0 0
check "vm0: unplugs to 0" settles vm0 0
memtotal_is 0

# --- vm2: 1 MiB device blocks, 128 MiB big blocks -------------------------------------
req vm2 "$(mib 3)"
sleep 3
check_eq "vm2: a 3 MiB request plugs nothing" 0 "$(hostcmd size vm2)"
req vm2 "$(mib 255)"
check "vm2: a 255 MiB request plugs one big block" settles vm2 "$(mib 128)"
memtotal_is "$(mib 128)"
req vm2 "$(mib 1)"
sleep 3
check_eq "vm2: a 1 MiB request leaves that big block plugged" "$(mib 128)" "$(hostcmd size vm2)"
memtotal_is "$(mib 128)"
req vm2 0
check "vm2: unplugs to 0" settles vm2 0
memtotal_is 0

# --- vm3: 130 MiB --------------------------------------------------------------------
req vm3 "$(mib 130)"
check "vm3: a 130 MiB request plugs the one whole big block" settles vm3 "$(mib 128)"
memtotal_is "$(mib 128)"
check "vm3: memory block 44 is online" online 44 1
req vm3 0
check "vm3: unplugs to 0" settles vm3 0
memtotal_is 0

check "no device was marked broken, no add failed" sh -c "! dmesg | grep -E '$M virtio[0-9]+: .*(broken|adding memory)'"
dmesg | grep -E "$M virtio[0-9]+: " | grep -vE 'start address:|region size|device block size|nid:|memory block size|big block size|plugged size|requested size' |
	sed 's/^/# dmesg: /'
check "rmmod $M" rmmod $M
ktap_finish
