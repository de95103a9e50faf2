#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: unloading the balloon driver while compaction and memory offlining migrate its pages: every page comes back, nothing is touched after it is freed
# qemu: --balloon --vmem id=vm0,size=512M,memaddr=0x100000000
# drivers: c rust
# timeout: 600
#
# Unbinding deflates the balloon while migrations may hold some of its pages isolated. The
# driver must wait for them (a migration in flight writes into the balloon's list and its
# driver data) before it frees the balloon: the Rust abstraction decides under
# balloon_pages_lock that no page is isolated any more. Each round inflates 96 MiB and
# unloads the driver while a background loop migrates balloon pages: compaction in odd
# rounds, offlining and onlining a ZONE_MOVABLE memory block of virtio-mem memory in even
# ones. A page freed twice, lost, or written after it was freed shows in the counters or in
# the console (DEBUG_PAGEALLOC, KFENCE, page poisoning, lockdep).
#
# Not both loops at once: compaction's free scanner races with memory offlining in the
# core (pfn_to_online_page() is racy), and with CONFIG_DEBUG_VM it trips over the poisoned
# memory map of the block just offlined, VM_BUG_ON_PAGE(PagePoisoned(page)) in page_zone()
# from suitable_migration_target(), within seconds and with either driver.
. /tests/lib.sh

ROUNDS=6
BMOD=$(balloon_module)
M=$(vmem_module)
echo online_movable >$MEMDIR/auto_online_blocks
check "modprobe $M" modprobe "$M"
kb0=$(memtotal_kb)
hostcmd resize vm0 "$(mib 256)" >/dev/null
check "plug 256 MiB, online movable" hostcmd wait-size vm0 "$(mib 256)" 120
wait_memtotal $((kb0 + 256 * 1024)) 30
kb1=$(memtotal_kb)
# The lowest memory block of the device, for the offline/online loop: the page allocator
# hands out the lowest hot-plugged memory first, so that is where balloon pages are.
blk=$((0x100000000 / $(block_size)))
check_eq "memory block $blk is online movable" online "$(block_state $blk)"

# noise_start N: starts round N's migration loop; noise_stop ends it
noise_start() {
	touch /tmp/noise
	if [ $(($1 % 2)) = 1 ]; then
		(while [ -e /tmp/noise ]; do echo 1 >/proc/sys/vm/compact_memory; done) &
	else
		(while [ -e /tmp/noise ]; do
			echo offline >$MEMDIR/memory$blk/state 2>/dev/null
			echo online_movable >$MEMDIR/memory$blk/state 2>/dev/null
		done) &
	fi
}
noise_stop() { rm -f /tmp/noise; wait; }

ram=$(hostcmd balloon-actual) || bail "query-balloon"
raced=0 m_all0=$(vmstat balloon_migrate)
r=0
while [ $r -lt $ROUNDS ]; do
	r=$((r + 1))
	modprobe "$BMOD" || { not_ok "round $r: modprobe $BMOD"; break; }
	hostcmd balloon $((ram - (96 << 20))) >/dev/null
	wait_for 120 '[ "$(meminfo_kb Balloon)" -ge $((96 * 1024)) ]'
	noise_start $r
	sleep 1
	m0=$(vmstat balloon_migrate)
	rmmod "$BMOD" || { noise_stop; not_ok "round $r: rmmod $BMOD"; break; }
	m1=$(vmstat balloon_migrate)
	noise_stop
	[ "$m1" -gt "$m0" ] && raced=$((raced + 1))
	wait_for 10 '[ "$(meminfo_kb Balloon)" -eq 0 ] && [ "$(vmstat nr_balloon_pages)" -eq 0 ]'
	diag "round $r: balloon_migrate $m0 -> $m1 during rmmod; Balloon: $(meminfo_kb Balloon) kB"
	[ "$(meminfo_kb Balloon)" -eq 0 ] && [ "$(vmstat nr_balloon_pages)" -eq 0 ] ||
		{ not_ok "round $r: rmmod gave every page back"; break; }
	hostcmd balloon "$ram" >/dev/null
done
check_eq "all $ROUNDS rounds inflated and unloaded" $ROUNDS $r
m_all1=$(vmstat balloon_migrate)
check "balloon pages migrated meanwhile (balloon_migrate $m_all0 -> $m_all1)" \
	test "$m_all1" -gt "$m_all0"
check "in $raced of $ROUNDS rounds, balloon pages migrated while rmmod ran" test "$raced" -ge 1
check_eq "Balloon: is 0" 0 "$(meminfo_kb Balloon)"
check_eq "nr_balloon_pages is 0" 0 "$(vmstat nr_balloon_pages)"
[ "$(block_state $blk)" = online ] || echo online_movable >$MEMDIR/memory$blk/state
wait_memtotal "$kb1" 30
check_eq "MemTotal is whole again" "$kb1" "$(memtotal_kb)"
hostcmd resize vm0 0 >/dev/null
check "unplug it" hostcmd wait-size vm0 0 300
check "rmmod $M" rmmod "$M"
ktap_finish
