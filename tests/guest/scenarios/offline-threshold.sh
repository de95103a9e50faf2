#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: the offline threshold: plugging stops at 1 GiB of added memory left offline, and goes on once it is onlined (SBM on vm0, BBM on vm1)
# qemu: --vmem id=vm0,size=3G,memaddr=0x100000000 --vmem id=vm1,size=3G,memaddr=0x1c0000000,block=128M
# drivers: c rust
# timeout: 600
#
# Nothing obliges the guest to online what the driver adds (auto_online_blocks=offline),
# and every added memory block costs its memmap in memory that is online. So both drivers
# stop adding while max(2 blocks, 1 GiB) of what they added is offline, and end the
# request with ENOSPC; onlining lets them go on (the C driver once half the threshold is
# free again, the Rust driver at every onlining). A driver that ignored the threshold
# would plug all 2 GiB requested here at once.
#
# The C driver does not retry on an onlining while its worker runs, and its worker may
# start at the fourth of the eight onlinings here. It can then end with 5 blocks offline
# and wait for more onlining: so the C driver gets up to 4 rounds of onlining, the Rust
# driver exactly one. Either way no more than the threshold may be offline at the end.
. /tests/lib.sh

M=$(vmem_module)
BS=$(block_size)
LIMIT=$((1 << 30))
# in_region ADDR BLOCK: whether memory block BLOCK lies in the 3 GiB region at ADDR
in_region() { [ $(($2 * BS)) -ge $(($1)) ] && [ $(($2 * BS)) -lt $(($1 + (3 << 30))) ]; }
# offline_in ADDR: memory blocks of the region at ADDR that are offline
offline_in() {
	_n=0
	for _b in $(blocks); do
		in_region "$1" "$_b" && [ "$(block_state "$_b")" = offline ] && _n=$((_n + 1))
	done
	echo $_n
}
# online_in ADDR: onlines every offline memory block of the region at ADDR, movable,
# and adds their number to $onlined
online_in() {
	for _b in $(blocks); do
		in_region "$1" "$_b" && [ "$(block_state "$_b")" = offline ] &&
			echo online_movable >$MEMDIR/memory"$_b"/state && onlined=$((onlined + 1))
	done
}
# settle VM SIZE: waits until the device VM's plugged size is SIZE (true) or has not
# changed for 5 s (false), 120 s at most
settle() {
	_last= _same=0 _t=0
	while [ $_t -lt 120 ]; do
		_s=$(hostcmd size "$1")
		[ "$_s" = "$2" ] && return 0
		[ "$_s" = "$_last" ] && _same=$((_same + 1)) || _same=0
		[ $_same -ge 5 ] && break
		_last=$_s _t=$((_t + 1))
		sleep 1
	done
	diag "$1 stays at $_s bytes"
	return 1
}

echo offline >$MEMDIR/auto_online_blocks
check "modprobe $M" modprobe "$M"
kb0=$(memtotal_kb)
for dev in "vm0 0 0x100000000 sbm" "vm1 1 0x1c0000000 bbm"; do
	set -- $dev
	vm=$1 addr=$3 mode=$4
	hostcmd resize "$vm" "$(gib 2)" >/dev/null
	check "$mode: plugging stops at 1 GiB of offline memory" hostcmd wait-size "$vm" "$LIMIT" 120
	sleep 3
	check_eq "$mode: and stays there, all of it offline" "$LIMIT $((LIMIT / BS))" \
		"$(hostcmd size "$vm") $(offline_in "$addr")"
	if [ "$VMEM_DRIVER" = rust ]; then
		st=/sys/kernel/debug/virtio_mem_rs.virtio$2/status
		check_eq "$mode: the status says why (ENOSPC)" "idle -28" \
			"$(sed -n 's/^worker: //p' $st) $(sed -n 's/^last_error: //p' $st)"
	fi
	[ "$VMEM_DRIVER" = rust ] && max=1 || max=4
	onlined=0 round=0 reached=
	while [ $round -lt $max ] && [ -z "$reached" ]; do
		round=$((round + 1))
		online_in "$addr"
		settle "$vm" "$(gib 2)" && reached=1
	done
	diag "$mode: $round of $max rounds of onlining, $onlined blocks onlined"
	check "$mode: onlining lets plugging go on to 2 GiB" [ -n "$reached" ]
	sleep 1
	off=$(offline_in "$addr")
	if [ "$VMEM_DRIVER" = rust ]; then
		check_eq "$mode: the second GiB waits offline" $((LIMIT / BS)) "$off"
	else
		diag "$mode: $off blocks wait offline"
		check "$mode: what waits offline is within the threshold" \
			test "$off" -ge 1 -a "$off" -le $((LIMIT / BS))
	fi
	check_eq "$mode: all 2 GiB is added, onlined or offline" $(($(gib 2) / BS)) $((onlined + off))
	check_eq "$mode: MemTotal grew by the blocks onlined" \
		$((kb0 + onlined * (BS >> 10))) "$(memtotal_kb)"
	hostcmd resize "$vm" 0 >/dev/null
	check "$mode: unplug it all" hostcmd wait-size "$vm" 0 300
	wait_memtotal "$kb0" 60
	check_eq "$mode: MemTotal is back" "$kb0" "$(memtotal_kb)"
done
check "rmmod $M" rmmod "$M"
ktap_finish
