#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: unusual device geometries: 1M/512M/1G blocks, tiny, unaligned, far, huge regions, request above the region
# qemu: --nodes 2 --maxmem 1000G --vmem id=vm0,size=256M,block=1M,memaddr=0x100000000 --vmem id=vm1,size=1G,block=512M,node=1,memaddr=0x140000000 --vmem id=vm2,size=1G,block=1G,memaddr=0x180000000 --vmem id=vm3,size=2M,memaddr=0x1c0000000 --vmem id=vm4,size=130M,memaddr=0x1c8000000 --vmem id=vm5,size=384M,memaddr=0x1e0200000 --vmem id=vm6,size=256M,memaddr=0xf800000000 --vmem id=vm7,size=512G,reserve=off,memaddr=0x400000000 --vmem id=vm8,size=256M,requested=512M,memaddr=0x200000000
# drivers: c rust
# timeout: 420
#
# Every configuration here is one QEMU 10.0 accepts (see the report of issue 8 for
# the ones it refuses). The device vmN is virtioN: QEMU gives them PCI slots in
# command-line order. Memory blocks are 128 MiB (1 GiB of boot RAM).
#
#   vm0  smallest block size QEMU allows (1 MiB) < pageblock: subblocks are 2 MiB,
#        so a request that is an odd number of MiB is plugged to the 2 MiB below it
#        (virtio_mem_sbm_plug_request: nr_sbs = diff / sb_size) and an unplug stops
#        at the 2 MiB above it.
#   vm1  512 MiB blocks > memory block: Big Block Mode, big block 512 MiB; on node 1.
#   vm2  block size == region size (1 GiB): one big block.
#   vm3  a region of one 2 MiB block: no whole memory block fits. The C driver binds,
#        warns about the end alignment and can never plug (-ENOSPC, silently); the
#        Rust driver refuses the device. Either way nothing may be plugged.
#   vm4  130 MiB, not a multiple of the memory block size: one usable memory block.
#   vm5  memaddr aligned to the block size but not to the memory block size, 384 MiB:
#        only the two whole memory blocks inside are usable.
#   vm6  far above 4 GiB (992 GiB, near the 40-bit physical limit of the TCG CPU).
#   vm7  a 512 GiB region (MAP_NORESERVE backend): the driver must not allocate per
#        region what it only needs per plugged block.
#   vm8  requested-size 512 MiB above its 256 MiB region: QEMU accepts this on the
#        command line (but refuses it from qom-set); the drivers plug what fits.
. /tests/lib.sh

M=$(vmem_module)
bs=$(block_size)
check_eq "memory block size is 128 MiB" 134217728 "$bs"
echo online_movable > $MEMDIR/auto_online_blocks
kb0=$(memtotal_kb)
dmesg -c >/dev/null

# logged N TEXT: the driver logged TEXT for virtioN since modprobe.
logged() { dmesg | grep -F "$M virtio$1: $2" >/dev/null; }
req() { hostcmd resize "$1" "$2" >/dev/null; }
# refused DEV BYTES: QEMU refuses to set requested-size to BYTES.
refused() { ! hostcmd resize "$1" "$2" >/dev/null 2>&1; }
# settles DEV BYTES: the device reaches BYTES plugged and is still there 1 s later.
settles() {
	hostcmd wait-size "$1" "$2" 60 >/dev/null || { diag "$1 has $(hostcmd size "$1") plugged"; return 1; }
	sleep 1
	_s=$(hostcmd size "$1")
	[ "$_s" = "$2" ] || { diag "$1 moved on to $_s"; return 1; }
}
# memtotal_is BYTES: MemTotal settles at its boot value + BYTES.
memtotal_is() {
	wait_memtotal $((kb0 + $1 / 1024)) 30
	check_eq "MemTotal is boot + $(($1 >> 20)) MiB" $((kb0 + $1 / 1024)) "$(memtotal_kb)"
}
# online_in_node NODE FIRST COUNT: memory blocks FIRST.. are online and in NODE.
online_in_node() {
	_b=$2
	while [ $_b -lt $(($2 + $3)) ]; do
		[ "$(block_state $_b 2>/dev/null)" = online ] || { diag "memory$_b: $(block_state $_b 2>&1)"; return 1; }
		[ -e /sys/devices/system/node/node$1/memory$_b ] || { diag "memory$_b not in node$1"; return 1; }
		_b=$((_b + 1))
	done
}

check_eq "QEMU kept vm8's requested-size above its region" "$(mib 512)" "$(hostcmd qom-get vm8 requested-size)"
check "modprobe $M" modprobe $M
sleep 1
if [ "$VMEM_DRIVER" = c ]; then
	check_eq "all nine devices are bound" 9 "$(ls -d /sys/bus/virtio/devices/*/driver | wc -l)"
else
	check_eq "eight devices are bound (all but the 2 MiB one)" 8 "$(ls -d /sys/bus/virtio/devices/*/driver | wc -l)"
fi
i=0
for a in 0x100000000 0x140000000 0x180000000 0x1c0000000 0x1c8000000 0x1e0200000 0xf800000000 0x400000000 0x200000000; do
	check_eq "vm$i is at memaddr $a" "$(printf %d $a)" "$(hostcmd qom-get vm$i memaddr)"
	if bound $i; then
		check "virtio$i logs start address $a" logged $i "start address: $a"
	fi
	i=$((i + 1))
done

# --- vm8: requested 512 MiB > region 256 MiB, from before the driver loaded ------------
check "vm8 plugs its whole region (256 MiB) and no more" settles vm8 "$(mib 256)"
memtotal_is "$(mib 256)"
if [ "$VMEM_DRIVER" = rust ]; then
	# Documented in config.rs: run-time sizes are clamped, with a note of what was clamped.
	check "rust: the clamp of the requested size is logged" \
		sh -c "dmesg | grep -F '$M virtio8: device sizes out of range, clamped:' | grep -q 'requested_beyond_usable: true'"
fi
check "QEMU refuses a requested-size above the region at run time" refused vm8 "$(gib 1)"
check_eq "...and keeps the previous request" "$(mib 512)" "$(hostcmd qom-get vm8 requested-size)"
req vm8 "$(mib 128)"
check "vm8 unplugs to 128 MiB" settles vm8 "$(mib 128)"
memtotal_is "$(mib 128)"
req vm8 0
check "vm8 unplugs to 0" settles vm8 0
memtotal_is 0

# --- vm0: 1 MiB device blocks, 2 MiB subblocks ------------------------------------------
check "virtio0: subblock size is 2 MiB" logged 0 "subblock size: 0x200000"
req vm0 "$(mib 3)"
check "vm0: a 3 MiB request plugs one 2 MiB subblock" settles vm0 "$(mib 2)"
memtotal_is "$(mib 2)"
req vm0 "$(mib 129)"
check "vm0: a 129 MiB request plugs 128 MiB" settles vm0 "$(mib 128)"
memtotal_is "$(mib 128)"
check "vm0: its memory block (32) is online in node 0" online_in_node 0 32 1
req vm0 "$(mib 1)"
check "vm0: a 1 MiB request unplugs down to one 2 MiB subblock" settles vm0 "$(mib 2)"
memtotal_is "$(mib 2)"
req vm0 0
check "vm0: unplugs to 0" settles vm0 0
memtotal_is 0

# --- vm1: 512 MiB blocks, Big Block Mode, node 1 ----------------------------------------
check "virtio1: big block size is 512 MiB" logged 1 "big block size: 0x20000000"
check "virtio1: nid 1" logged 1 "nid: 1"
check "QEMU refuses a request that is not a multiple of the 512 MiB block" refused vm1 "$(mib 256)"
req vm1 "$(gib 1)"
check "vm1: plugs 1 GiB" settles vm1 "$(gib 1)"
memtotal_is "$(gib 1)"
check "vm1: its 8 memory blocks (40..47) are online in node 1" online_in_node 1 40 8
req vm1 "$(mib 512)"
check "vm1: unplugs one big block" settles vm1 "$(mib 512)"
memtotal_is "$(mib 512)"
req vm1 0
check "vm1: unplugs to 0" settles vm1 0
memtotal_is 0

# --- vm2: block size == region size ------------------------------------------------------
check "virtio2: big block size is 1 GiB" logged 2 "big block size: 0x40000000"
req vm2 "$(gib 1)"
check "vm2: plugs its one 1 GiB block" settles vm2 "$(gib 1)"
memtotal_is "$(gib 1)"
check "vm2: memory blocks 48..55 are online" online_in_node 0 48 8
req vm2 0
check "vm2: unplugs to 0" settles vm2 0
memtotal_is 0

# --- vm3: a 2 MiB region, no whole memory block ------------------------------------------
if [ "$VMEM_DRIVER" = c ]; then
	# virtio_mem_init_hotplug only warns; the worker then ends with -ENOSPC.
	check "c: virtio3 is bound" bound 3
	check "c: virtio3 warns about the end alignment" \
		logged 3 "The alignment of the physical end address can make some memory unusable."
else
	check "rust: virtio3 is refused" sh -c "! [ -e /sys/bus/virtio/devices/virtio3/driver ]"
	check "rust: virtio3 says why" logged 3 "refusing device: no whole memory block fits"
	check "rust: virtio3 probe fails with -EINVAL" logged 3 "probe with driver $M failed with error -22"
fi
req vm3 "$(mib 2)"
sleep 3
check_eq "vm3: nothing is plugged for a 2 MiB request" 0 "$(hostcmd size vm3)"
memtotal_is 0
req vm3 0

# --- vm4: 130 MiB, end not aligned to the memory block size ------------------------------
if [ "$VMEM_DRIVER" = c ]; then
	check "c: virtio4 warns about the end alignment" \
		logged 4 "The alignment of the physical end address can make some memory unusable."
fi
req vm4 "$(mib 130)"
check "vm4: a 130 MiB request plugs the one whole memory block" settles vm4 "$(mib 128)"
memtotal_is "$(mib 128)"
check "vm4: memory block 57 is online" online_in_node 0 57 1
req vm4 0
check "vm4: unplugs to 0" settles vm4 0
memtotal_is 0

# --- vm5: memaddr 2 MiB past a memory block boundary -------------------------------------
if [ "$VMEM_DRIVER" = c ]; then
	check "c: virtio5 warns about the start alignment" \
		logged 5 "The alignment of the physical start address can make some memory unusable."
	check "c: virtio5 warns about the end alignment" \
		logged 5 "The alignment of the physical end address can make some memory unusable."
fi
req vm5 "$(mib 384)"
check "vm5: a 384 MiB request plugs the two whole memory blocks inside" settles vm5 "$(mib 256)"
memtotal_is "$(mib 256)"
check "vm5: memory blocks 61 and 62 are online" online_in_node 0 61 2
req vm5 0
check "vm5: unplugs to 0" settles vm5 0
memtotal_is 0

# --- vm6: far above 4 GiB ----------------------------------------------------------------
req vm6 "$(mib 256)"
check "vm6: plugs 256 MiB at 992 GiB" settles vm6 "$(mib 256)"
memtotal_is "$(mib 256)"
check "vm6: memory blocks 7936 and 7937 are online" online_in_node 0 7936 2
req vm6 0
check "vm6: unplugs to 0" settles vm6 0
memtotal_is 0

# --- vm7: a 512 GiB region ---------------------------------------------------------------
check "virtio7: region size 512 GiB" logged 7 "region size: 0x8000000000"
req vm7 "$(mib 256)"
check "vm7: plugs 256 MiB" settles vm7 "$(mib 256)"
memtotal_is "$(mib 256)"
check "vm7: memory blocks 128 and 129 are online" online_in_node 0 128 2
req vm7 0
check "vm7: unplugs to 0" settles vm7 0
memtotal_is 0

i=0
for d in vm0 vm1 vm2 vm3 vm4 vm5 vm6 vm7 vm8; do
	check_eq "$d ends with nothing plugged" 0 "$(hostcmd size $d)"
done
check "no device was marked broken, no add failed" sh -c "! dmesg | grep -E '$M virtio[0-9]+: .*(broken|adding memory)'"
dmesg | grep -E "$M virtio[0-9]+: " | grep -vE 'start address:|region size|device block size|nid:|memory block size|subblock size|big block size|plugged size|requested size' |
	sed 's/^/# dmesg: /'
check "rmmod $M" rmmod $M
ktap_finish
