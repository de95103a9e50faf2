#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: virtio-mem unplugs ZONE_MOVABLE memory that holds a balloon: every balloon page in it migrates, and the balloon stays whole in the guest and on the host
# qemu: --balloon --vmem id=vm0,size=1G,memaddr=0x100000000
# drivers: c rust
# timeout: 600
#
# Where the two drivers meet: balloon pages are movable, so they land in hot-plugged
# ZONE_MOVABLE memory, and virtio-mem can only unplug that memory if each of them
# migrates, through the balloon driver's migration callback, which tells the device
# about the new page and the old one. Run with the C pair (virtio_mem, virtio_balloon)
# and the Rust pair. scripts/bench (bench/balloon-unplug) measures how long it takes.
. /tests/lib.sh

M=$(vmem_module)
BMOD=$(balloon_module)
BASE=$((0x100000000))
SIZE=$((512 << 20))
N=192

echo online_movable >$MEMDIR/auto_online_blocks
kb0=$(memtotal_kb)
check "modprobe $M" modprobe "$M"
hostcmd resize vm0 $SIZE >/dev/null
check "plug 512 MiB, online in ZONE_MOVABLE" hostcmd wait-size vm0 $SIZE 120
wait_memtotal $((kb0 + SIZE / 1024)) 30
# Plugged whole, the memory holds no page that virtio-mem keeps offline: every PageOffline
# page in it from now on is a balloon page.
check_eq "no offline page in the plugged memory yet" 0 "$(offline_pages $BASE $SIZE)"

check "modprobe $BMOD" modprobe "$BMOD"
ram=$(hostcmd balloon-actual) || bail "query-balloon"
want=$((ram - (N << 20)))
hostcmd balloon $want >/dev/null
wait_for 120 '[ "$(meminfo_kb Balloon)" -eq $((N * 1024)) ]'
check_eq "inflate $N MiB" $((N * 1024)) "$(meminfo_kb Balloon)"
wait_for 30 '[ "$(hostcmd balloon-actual)" = "$want" ]'
check_eq "the host's query-balloon agrees" "$want" "$(hostcmd balloon-actual)"
nb=$(vmstat nr_balloon_pages)
inmem=$(offline_pages $BASE $SIZE)
check "balloon pages lie in the memory to unplug ($inmem of $nb)" [ "$inmem" -ge 1 ]

kb1=$(memtotal_kb)
m0=$(vmstat balloon_migrate)
t0=$(uptime_cs)
hostcmd resize vm0 0 >/dev/null
check "unplug all 512 MiB" hostcmd wait-size vm0 0 500
moved=$(($(vmstat balloon_migrate) - m0))
diag "unplugged in $((($(uptime_cs) - t0) * 10)) ms (guest clock), $moved balloon pages migrated"
wait_memtotal $((kb1 - SIZE / 1024)) 30
check_eq "MemTotal shrank by 512 MiB" $((kb1 - SIZE / 1024)) "$(memtotal_kb)"
# Every page in the memory migrated, a few twice (see migrated_once).
check "each of the $inmem balloon pages in it migrated (balloon_migrate: $moved)" \
	migrated_once "$inmem" "$moved"
check_eq "Balloon: unchanged" $((N * 1024)) "$(meminfo_kb Balloon)"
check_eq "nr_balloon_pages unchanged" "$nb" "$(vmstat nr_balloon_pages)"
sleep 1
check_eq "the host's balloon unchanged" "$want" "$(hostcmd balloon-actual)"
if [ "$VMEM_DRIVER" = rust ]; then
	st=$(ls -d /sys/kernel/debug/virtio_balloon_rs.virtio*/status | head -1)
	field() { awk -v k="$1:" '$1 == k { print $2 }' "$st"; }
	diag "MUST_TELL_HOST negotiated: $(field must_tell_host)"
	# What the unplug cost each driver: the worker's runs and retries (since probe, the plug
	# included), and the migrations the balloon refused for now (the core retries them).
	vs=$(ls -d /sys/kernel/debug/virtio_mem_rs.virtio*/status | head -1)
	diag "virtio_mem_rs: $(grep -E '^(worker_runs|worker_run_ms|retry_ms|last_error|requests_unplug):' \
		"$vs" | tr '\n' ' ')"
	diag "virtio_balloon_rs: $(grep -E '^(migrated|migrate_busy|tell_failed):' "$st" | tr '\n' ' ')"
	# Migrations are told in batches, the last one at most 100 ms after it was noted.
	wait_for 5 '[ "$(field migrate_pending)" = 0 ]'
	check_eq "the driver told the device about every migration" "$moved" "$(field migrated)"
	check_eq "no request to the device failed" 0 "$(field tell_failed)"
fi

hostcmd balloon "$ram" >/dev/null
wait_for 120 '[ "$(meminfo_kb Balloon)" -eq 0 ]'
check_eq "deflated: Balloon: is 0" 0 "$(meminfo_kb Balloon)"
check_eq "MemTotal is back at its boot value" "$kb0" "$(memtotal_kb)"
check "rmmod $BMOD" rmmod "$BMOD"
check "rmmod $M" rmmod "$M"
ktap_finish
