#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: unplug online memory holding transparent huge pages (SBM), and holding a program's data in Big Block Mode; every page verified
# qemu: --ram 1536M --vmem id=vm0,size=2G
# drivers: c rust
# timeout: 420
#
# Two ways unplugging online memory must move data it does not own:
# - Sub-Block Mode with the program's memory in transparent huge pages: each
#   2 MiB subblock is one huge page, migrated whole (or split) before unplug;
# - Big Block Mode (force_bbm=1): whole 128 MiB blocks are offlined and removed.
# Each time the program verifies every page afterwards.
. /tests/lib.sh

M=$(vmem_module)
echo online_movable > $MEMDIR/auto_online_blocks
kb0=$(memtotal_kb)

# hold_and_unplug MODE [thp]: plug 1 GiB, hold 700 MiB, unplug to 128 MiB, verify.
hold_and_unplug() {
	hostcmd resize vm0 "$(gib 1)" >/dev/null
	check "$1: plug 1 GiB" hostcmd wait-size vm0 "$(gib 1)" 120
	wait_memtotal $((kb0 + 1024 * 1024)) 30
	free0=$(movable_free_kb)
	memhog_start 700 ${2:-} || bail "$1: memhog holds 700 MiB"
	free1=$(movable_free_kb)
	check "$1: the program's data landed in ZONE_MOVABLE (>= 512 MiB)" [ $((free0 - free1)) -ge $((512 * 1024)) ]
	if [ "${2:-}" = thp ]; then
		thp=$(meminfo_kb AnonHugePages)
		diag "$1: AnonHugePages $thp kB"
		check "$1: the program holds >= 512 MiB in huge pages" [ "$thp" -ge $((512 * 1024)) ]
	fi
	mig0=$(vmstat pgmigrate_success) thp0=$(vmstat thp_migration_success) split0=$(vmstat thp_split_page)
	hostcmd resize vm0 "$(mib 128)" >/dev/null
	t=$(hostcmd wait-size vm0 "$(mib 128)" 300) && ok "$1: unplugged to 128 MiB under load (${t} s)" ||
		not_ok "$1: unplugged to 128 MiB under load"
	check_eq "$1: MemTotal shows 128 MiB plugged" "$((kb0 + 128 * 1024))" "$(memtotal_kb)"
	diag "$1: migrated $(($(vmstat pgmigrate_success) - mig0)) pages," \
		"$(($(vmstat thp_migration_success) - thp0)) huge pages whole, $(($(vmstat thp_split_page) - split0)) split"
	check "$1: pages were migrated" [ "$(vmstat pgmigrate_success)" -gt "$mig0" ]
	if [ "${2:-}" = thp ]; then
		check "$1: huge pages were migrated or split" \
			[ $(($(vmstat thp_migration_success) - thp0 + $(vmstat thp_split_page) - split0)) -gt 0 ]
	fi
	res=$(memhog_verify)
	diag "$1: after unplug: $res"
	check "$1: no page of the program was corrupted" sh -c "echo '$res' | grep -q ' corrupted 0$'"
	memhog_stop
	check_eq "$1: the program exits clean" 0 "$?"
	hostcmd resize vm0 0 >/dev/null
	check "$1: unplug the rest" hostcmd wait-size vm0 0 120
	wait_memtotal "$kb0" 30
}

echo always > /sys/kernel/mm/transparent_hugepage/enabled
check "modprobe $M" modprobe $M
hold_and_unplug "SBM, THP" thp
check "rmmod $M" rmmod $M
echo madvise > /sys/kernel/mm/transparent_hugepage/enabled

check "modprobe $M force_bbm=1" modprobe $M force_bbm=1
check "$M is in Big Block Mode" sh -c "dmesg | grep -q '$M virtio0: big block size: 0x8000000'"
hold_and_unplug "BBM"
check "rmmod $M" rmmod $M
ktap_finish
