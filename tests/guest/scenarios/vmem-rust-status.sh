#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: the Rust virtio-mem driver's debugfs status in both modes, force_bbm, bbm_block_size, reload, rmmod right behind the worker
# qemu: --vmem id=vm0,size=4G
# drivers: rust
# timeout: 300
. /tests/lib.sh


echo online_movable > $MEMDIR/auto_online_blocks
check "modprobe virtio_mem_rs" modprobe virtio_mem_rs
check "status file exists" [ -r $RS_STATUS ]
check_eq "2 MiB device blocks select Sub-Block Mode" sbm "$(rs_field mode)"
check_eq "subblock size" 0x200000 "$(rs_field subblock_size)"
hostcmd resize vm0 "$(mib 130)" >/dev/null
hostcmd wait-size vm0 "$(mib 130)" 60 >/dev/null || not_ok "device plugged 130 MiB"
wait_for 10 '[ "$(rs_field blocks_movable_partial)" = 1 ]'
check_eq "one full block online movable" 1 "$(rs_field blocks_movable)"
check_eq "one partial block online movable" 1 "$(rs_field blocks_movable_partial)"
check_eq "driver plugged size" "$(mib 130)" "$(rs_field plugged_size)"
hostcmd resize vm0 0 >/dev/null
hostcmd wait-size vm0 0 60 >/dev/null || not_ok "device unplugged to 0"
wait_for 10 '[ "$(rs_field plugged_size)" = 0 ]'
check_eq "nothing plugged" 0 "$(rs_field plugged_size)"
check "rmmod virtio_mem_rs" rmmod virtio_mem_rs

check "modprobe virtio_mem_rs force_bbm=1" modprobe virtio_mem_rs force_bbm=1
check_eq "force_bbm selects Big Block Mode" bbm "$(rs_field mode)"
check_eq "big block is one memory block" "0x$(cat $MEMDIR/block_size_bytes)" "$(rs_field big_block_size)"
check_eq "region matches the device" "0x100000000 0x100000000" "$(rs_field region)"
check_eq "nothing requested" 0 "$(rs_field requested_size)"

hostcmd resize vm0 "$(mib 512)" >/dev/null
hostcmd wait-size vm0 "$(mib 512)" 60 >/dev/null || not_ok "device plugged 512 MiB"
wait_for 10 '[ "$(rs_field blocks_added)" = 4 ]'
check_eq "four big blocks added" 4 "$(rs_field blocks_added)"
check_eq "driver plugged size" "$(mib 512)" "$(rs_field plugged_size)"
check_eq "requested size" "$(mib 512)" "$(rs_field requested_size)"
check_eq "all of it online (auto-online)" 0 "$(rs_field offline_size)"
check_eq "four plug requests, none failed" "4 failed 0" "$(rs_field requests_plug)"
check_eq "no error" 0 "$(rs_field last_error)"
check_eq "not broken" false "$(rs_field broken)"

hostcmd resize vm0 0 >/dev/null
hostcmd wait-size vm0 0 60 >/dev/null || not_ok "device unplugged to 0"
wait_for 10 '[ "$(rs_field blocks_added)" = 0 ]'
check_eq "unplugging online memory counts migrated bytes" "$(mib 512)" "$(rs_field migrated_size)"
check_eq "four unplug requests" "4 failed 0" "$(rs_field requests_unplug)"
check "rmmod virtio_mem_rs" rmmod virtio_mem_rs
check "status file is gone" [ ! -e $RS_STATUS ]

# A bad bbm_block_size is ignored with a warning; a good one is used.
check "modprobe virtio_mem_rs force_bbm=1 bbm_block_size=3" modprobe virtio_mem_rs force_bbm=1 bbm_block_size=3
check "the bad value was reported" sh -c "dmesg | grep -q 'bbm_block_size=0x3 ignored'"
check_eq "...and the default big block used" "0x$(cat $MEMDIR/block_size_bytes)" "$(rs_field big_block_size)"
check "rmmod virtio_mem_rs" rmmod virtio_mem_rs
check "modprobe virtio_mem_rs force_bbm=1 bbm_block_size=1G" modprobe virtio_mem_rs force_bbm=1 bbm_block_size=$(gib 1)
check_eq "big block is 1 GiB" 0x40000000 "$(rs_field big_block_size)"
hostcmd resize vm0 "$(gib 1)" >/dev/null
t=$(hostcmd wait-size vm0 "$(gib 1)" 60) && ok "1 GiB plugged as one big block (${t} s)" || not_ok "1 GiB plugged"
wait_for 10 '[ "$(rs_field blocks_added)" = 1 ]'
check_eq "one big block added" 1 "$(rs_field blocks_added)"
hostcmd resize vm0 0 >/dev/null
hostcmd wait-size vm0 0 60 >/dev/null && ok "unplugged again" || not_ok "unplugged again"
check "rmmod virtio_mem_rs" rmmod virtio_mem_rs

# rmmod right behind the worker. In Sub-Block Mode the device has nothing plugged once the
# last unplug request is answered; the worker then offlines and removes the block. An
# rmmod in that window must wait for the pass, not refuse its offline: that would leave
# the block added and the device region claimed, so no reload could bind the device (the
# C driver refuses it). rmmod_when unloads the moment the status shows nothing plugged.
n0=$(nr_blocks) raced=0 left=0 bound=0
for i in 1 2 3; do
	modprobe virtio_mem_rs && bound 0 || break
	bound=$((bound + 1))
	hostcmd resize vm0 "$(mib 256)" >/dev/null
	hostcmd wait-size vm0 "$(mib 256)" 60 >/dev/null || break
	wait_for 10 '[ "$(rs_field plugged_size)" = "$(mib 256)" ]'
	hostcmd resize vm0 0 >/dev/null
	out=$(rmmod_when $RS_STATUS "plugged_size: 0" virtio_mem_rs 60) || { echo "$out"; break; }
	echo "$out" | head -1
	case "$out" in *"#   worker: running"*) raced=$((raced + 1)) ;; esac
	[ "$(nr_blocks)" = "$n0" ] || left=$((left + 1))
done
diag "rmmod came while the worker ran in $raced of 3 cycles"
check_eq "a reload binds the device every time" 3 "$bound"
check "rmmod raced the worker at least once" [ "$raced" -ge 1 ]
check_eq "rmmod right after the last unplug leaves no block behind" 0 "$left"
check "the driver never left memory behind" sh -c "! dmesg | grep -q 'memory added; they stay'"
check_eq "the device has nothing plugged" 0 "$(hostcmd size vm0)"
ktap_finish
