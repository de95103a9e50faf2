#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: a probe that fails late plugs and adds nothing; a device with a request at probe plugs it exactly
# qemu: --maxmem 3G --vmem id=vm0,size=512M,memaddr=0x100000000 --vmem id=vm1,size=512M,memaddr=0x140000000
# drivers: rust
# timeout: 300
#
# The driver must register its online-page handler and memory notifier before its
# worker can add memory, and start the worker only once nothing in probe can fail
# any more. Two ways that order shows:
# - A probe that fails after the point where the worker used to start: the C
#   virtio_mem driver holds the online-page callback (bound to vm0), so the Rust
#   driver's probe of vm1, which already has a request, fails with EBUSY. No worker
#   may run for it (none may log anything), and nothing may be plugged or added.
# - A request present at probe, on a memory block left partly plugged (200 MiB:
#   one block and 72 MiB of the next): MemTotal must grow by exactly 200 MiB, so the
#   unplugged subblocks never reached the page allocator.
. /tests/lib.sh

echo online_movable > $MEMDIR/auto_online_blocks
kb0=$(memtotal_kb)
# Memory blocks of vm1's region (0x140000000, 512 MiB) that exist.
vm1_blocks() {
	_bs=$(block_size) _n=0
	for _b in $(blocks); do
		[ $((_b * _bs)) -ge $((0x140000000)) ] && [ $((_b * _bs)) -lt $((0x160000000)) ] && _n=$((_n + 1))
	done
	echo $_n
}

check "modprobe virtio_mem (C)" modprobe virtio_mem
sleep 1
check_eq "C binds virtio0" virtio_mem "$(driver_of 0)"
check "virtio1 is vm1 (start address 0x140000000)" \
	sh -c "dmesg | grep -q 'virtio_mem virtio1: start address: 0x140000000'"
echo virtio1 > /sys/bus/virtio/drivers/virtio_mem/unbind
check_eq "virtio1 unbound from C" "" "$(driver_of 1)"

hostcmd resize vm1 "$(mib 256)" >/dev/null
check_eq "vm1 has a request and nothing plugged" "$(mib 256) 0" \
	"$(hostcmd qom-get vm1 requested-size) $(hostcmd size vm1)"
check "modprobe virtio_mem_rs" modprobe virtio_mem_rs
sleep 1
check_eq "the Rust driver refuses virtio1: the callback is taken" "" "$(driver_of 1)"
check "...and says why" sh -c "dmesg | grep -q 'virtio_mem_rs virtio1: the online page callback is taken'"
# A worker started before the failure runs even after it (the queued work holds the
# device), and logs what it does: the requested size, or the error of a request to the
# reset device. Only probe's own lines may be there.
sleep 5
worker=$(dmesg | grep 'virtio_mem_rs virtio1:' | grep -v -e 'start address:' -e 'region size:' \
	-e 'device block size:' -e 'nid:' -e 'memory block size:' -e 'subblock size:' \
	-e 'the online page callback is taken' -e 'probe with driver virtio_mem_rs failed')
[ -n "$worker" ] && diag "logged after probe: $(echo "$worker" | head -3)"
check_eq "no worker ran for the failed probe" "" "$worker"
check_eq "vm1: nothing plugged after the failed probe" 0 "$(hostcmd size vm1)"
check_eq "vm1: no memory block added" 0 "$(vm1_blocks)"
check_eq "MemTotal unchanged" "$kb0" "$(memtotal_kb)"

check "rmmod virtio_mem (C), nothing plugged" rmmod virtio_mem
# 200 MiB: memory block 40 whole, block 41 with 36 of its 64 subblocks.
hostcmd resize vm1 "$(mib 200)" >/dev/null
echo virtio1 > /sys/bus/virtio/drivers/virtio_mem_rs/bind
check_eq "the Rust driver binds virtio1 now" virtio_mem_rs "$(driver_of 1)"
check "vm1 plugs the 200 MiB requested at probe" hostcmd wait-size vm1 "$(mib 200)" 120
wait_memtotal $((kb0 + 200 * 1024)) 30
check_eq "MemTotal grew by exactly 200 MiB (no unplugged subblock onlined)" \
	$((kb0 + 200 * 1024)) "$(memtotal_kb)"
check_eq "vm1: two memory blocks added" 2 "$(vm1_blocks)"
hostcmd resize vm1 0 >/dev/null
check "vm1 unplugs everything" hostcmd wait-size vm1 0 120
wait_memtotal "$kb0" 30
check_eq "MemTotal is back" "$kb0" "$(memtotal_kb)"
check_eq "vm1: its memory blocks are gone" 0 "$(vm1_blocks)"
check "rmmod virtio_mem_rs" rmmod virtio_mem_rs
ktap_finish
