#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: benchmark: virtio-mem unplugs 1 GiB of ZONE_MOVABLE memory that holds a 384 MiB balloon
# qemu: --ram 2G --balloon --vmem id=vm0,size=2G,memaddr=0x100000000
# drivers: c rust
# timeout: 900
#
# Every balloon page in the memory must migrate through the balloon driver's callback
# before virtio-mem can unplug it (the C pair: virtio_mem and virtio_balloon; the Rust
# pair: virtio_mem_rs and virtio_balloon_rs). The same unplug without a balloon takes a
# fraction of a second: the difference is what the migrations cost. The test of the same
# case is the balloon-unplug scenario.
. /tests/lib.sh
. /tests/scenarios/bench/lib.sh

echo online_movable >$MEMDIR/auto_online_blocks
check "modprobe $(vmem_module)" modprobe "$(vmem_module)"
kb0=$(memtotal_kb)
hostcmd resize vm0 "$(gib 1)" >/dev/null
reach_memtotal $((kb0 + 1024 * 1024)) 300 || bail "plug 1 GiB"
check "modprobe $(balloon_module)" modprobe "$(balloon_module)"
ram=$(hostcmd balloon-actual)
N=384
hostcmd balloon $((ram - (N << 20))) >/dev/null
wait_for 300 '[ "$(meminfo_kb Balloon)" -eq $((N * 1024)) ]' || bail "inflate"
want=$((ram - (N << 20)))
wait_for 30 '[ "$(hostcmd balloon-actual)" = "$want" ]'
nb=$(vmstat nr_balloon_pages)
# What is plugged of the device holds no page virtio-mem keeps offline (1 GiB is whole
# blocks): its offline pages are balloon pages. Unplugged memory has no such pages.
inmem=$(offline_pages $((0x100000000)) $((2 << 30)))
vmstat_snap /tmp/v
t0=$(now)
hostcmd resize vm0 0 >/dev/null
hostcmd wait-size vm0 0 800 >/dev/null || not_ok "unplug"
t1=$(now)
d=$(vmstat_delta /tmp/v)
bench unplug_1G_balloon384M "$(elapsed "$t0" "$t1")" s $d
check_eq "every balloon page is still in the balloon" "$nb" "$(vmstat nr_balloon_pages)"
check_eq "Balloon: unchanged" $((N * 1024)) "$(meminfo_kb Balloon)"
# At least once each, a few twice (see migrated_once), which the time measured here includes.
moved=$(echo "$d" | tr ' ' '\n' | sed -n 's/^balloon_migrate=//p')
check "each of the $inmem balloon pages in the memory migrated ($moved migrations)" \
	migrated_once "$inmem" "$moved"
sleep 1
check_eq "the host's balloon unchanged" "$want" "$(hostcmd balloon-actual)"
hostcmd balloon "$ram" >/dev/null
wait_for 300 '[ "$(meminfo_kb Balloon)" -eq 0 ]' || not_ok "deflate"
ktap_finish
