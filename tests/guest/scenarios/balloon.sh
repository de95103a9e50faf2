#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: balloon inflate/deflate, compaction and ZONE_MOVABLE offlining migrate balloon pages, stats, freeze/restore, unload
# qemu: --balloon --vmem id=vm0,size=1G
# drivers: c rust
# timeout: 300
. /tests/lib.sh

PAGE_KB=4
BMOD=$(balloon_module)

# Hot-plugged ZONE_MOVABLE memory first: movable allocations, balloon pages among them,
# prefer the highest zone, so the balloon lands in ZONE_MOVABLE.
echo online_movable > $MEMDIR/auto_online_blocks
blocks >/tmp/b0
check "modprobe $(vmem_module)" modprobe "$(vmem_module)"
hostcmd resize vm0 "$(mib 512)" >/dev/null
check "plug 512 MiB to ZONE_MOVABLE" hostcmd wait-size vm0 "$(mib 512)" 120
wait_for 30 '[ "$(blocks | grep -cvxF -f /tmp/b0)" -eq 4 ]'
blocks | grep -vxF -f /tmp/b0 >/tmp/movable

check "modprobe $BMOD" modprobe "$BMOD"
check "$BMOD is bound to the balloon device" sh -c "ls -d /sys/bus/virtio/drivers/$BMOD/virtio* >/dev/null"
mig0=$(vmstat balloon_migrate)
i0=$(vmstat balloon_inflate)
[ -n "$i0" ] || bail "/proc/vmstat has balloon_inflate (CONFIG_VM_EVENT_COUNTERS, CONFIG_BALLOON)"
[ -n "$(meminfo_kb Balloon)" ] || bail "/proc/meminfo has Balloon:"
kb0=$(memtotal_kb)
ram=$(hostcmd balloon-actual) || bail "query-balloon"
diag "guest RAM as QEMU sees it: $ram bytes; MemTotal $kb0 kB"

# --- inflate 64 MiB -----------------------------------------------------------------
N=64
pages=$((N * 1024 / PAGE_KB))
hostcmd balloon $((ram - (N << 20))) >/dev/null
wait_for 90 '[ "$(meminfo_kb Balloon)" -eq $((N * 1024)) ]'
check_eq "Balloon: in /proc/meminfo is $N MiB" "$((N * 1024))" "$(meminfo_kb Balloon)"
check_eq "balloon_inflate rose by $pages" "$((i0 + pages))" "$(vmstat balloon_inflate)"
check_eq "nr_balloon_pages is $pages" "$pages" "$(vmstat nr_balloon_pages)"
check_eq "MemTotal shrank by $N MiB" "$((kb0 - N * 1024))" "$(memtotal_kb)"
want=$((ram - (N << 20)))
wait_for 30 '[ "$(hostcmd balloon-actual)" = "$want" ]'
check_eq "the host's query-balloon agrees" "$want" "$(hostcmd balloon-actual)"

# --- compaction migrates balloon pages ---------------------------------------------------
# Whether compaction meets a balloon page depends on where the pages landed: compaction
# moves pages from the low end of a zone to free space at the high end. If a first pass
# moves none, spread the balloon over the zones (inflate to 448 MiB, back to 64 MiB) and
# compact again, up to three times.
m0=$(vmstat balloon_migrate)
m1=$m0
try=1
while :; do
	c0=$(vmstat compact_migrate_scanned)
	echo 1 > /proc/sys/vm/compact_memory
	m1=$(vmstat balloon_migrate)
	diag "compaction $try: balloon_migrate $m0 -> $m1, compact_migrate_scanned $c0 -> $(vmstat compact_migrate_scanned)"
	[ "$m1" -gt "$m0" ] || [ $try -ge 3 ] && break
	hostcmd balloon $((ram - (448 << 20))) >/dev/null
	wait_for 120 '[ "$(meminfo_kb Balloon)" -eq $((448 * 1024)) ]'
	hostcmd balloon $((ram - (N << 20))) >/dev/null
	wait_for 120 '[ "$(meminfo_kb Balloon)" -eq $((N * 1024)) ]'
	try=$((try + 1))
done
check "compaction migrated balloon pages (balloon_migrate $m0 -> $m1)" [ "$m1" -gt "$m0" ]
check_eq "Balloon: unchanged after compaction" "$((N * 1024))" "$(meminfo_kb Balloon)"
check_eq "nr_balloon_pages unchanged after compaction" "$pages" "$(vmstat nr_balloon_pages)"
sleep 1
check_eq "the host's balloon unchanged after compaction" "$want" "$(hostcmd balloon-actual)"

# --- stats reach the host ---------------------------------------------------------------
hostcmd qom-set balloon0 guest-stats-polling-interval 1 >/dev/null
wait_for 30 '[ "$(balloon_stat stat-total-memory)" = "$(($(memtotal_kb) * 1024))" ]'
check_eq "host sees the guest's MemTotal (stat-total-memory)" "$(($(memtotal_kb) * 1024))" \
	"$(balloon_stat stat-total-memory)"
free=$(balloon_stat stat-free-memory)
check "host sees free memory (stat-free-memory $free)" [ "${free:-0}" -gt 0 ]
avail=$(balloon_stat stat-available-memory)
check "host sees available memory (stat-available-memory $avail)" [ "${avail:-0}" -gt 0 ]
check "host sees page faults (stat-minor-faults)" [ "$(balloon_stat stat-minor-faults)" -gt 0 ]
# HugeTLB: the guest allocates two huge pages at run time, and the host sees the
# guest's counts of huge page allocations and failures (HTLB_PGALLOC, HTLB_PGFAIL).
[ -w /proc/sys/vm/nr_hugepages ] || bail "/proc/sys/vm/nr_hugepages (CONFIG_HUGETLBFS)"
h0=$(vmstat htlb_buddy_alloc_success)
echo 2 > /proc/sys/vm/nr_hugepages
check "the guest allocated two huge pages (htlb_buddy_alloc_success $h0 -> $(vmstat htlb_buddy_alloc_success))" \
	[ "$(vmstat htlb_buddy_alloc_success)" -ge $((h0 + 2)) ]
wait_for 30 '[ "$(balloon_stat stat-htlb-pgalloc)" = "$(vmstat htlb_buddy_alloc_success)" ]'
check_eq "host sees the guest's huge page allocations (stat-htlb-pgalloc)" \
	"$(vmstat htlb_buddy_alloc_success)" "$(balloon_stat stat-htlb-pgalloc)"
check_eq "host sees the guest's failed huge page allocations (stat-htlb-pgfail)" \
	"$(vmstat htlb_buddy_alloc_fail)" "$(balloon_stat stat-htlb-pgfail)"
echo 0 > /proc/sys/vm/nr_hugepages
hostcmd qom-set balloon0 guest-stats-polling-interval 0 >/dev/null

# --- offlining ZONE_MOVABLE blocks migrates balloon pages out of them ----------------------
# The blocks are plugged whole, so their offline pages are balloon pages. They go offline one
# at a time here, so a page can move into a block that goes offline later and migrate again:
# at least one migration each. (balloon-unplug checks exactly one each for an unplug.)
inblk=0
for b in $(cat /tmp/movable); do
	inblk=$((inblk + $(offline_pages $((b * $(block_size))) $(block_size))))
done
m0=$(vmstat balloon_migrate)
bad=0
for b in $(cat /tmp/movable); do
	echo offline > $MEMDIR/memory$b/state || { diag "offline memory$b failed"; bad=1; }
done
check_eq "every ZONE_MOVABLE block offlined, balloon pages and all" 0 "$bad"
m1=$(vmstat balloon_migrate)
check "offlining migrated each of the $inblk balloon pages in them (balloon_migrate $m0 -> $m1)" \
	[ "$inblk" -gt 0 -a $((m1 - m0)) -ge "$inblk" ]
check_eq "Balloon: unchanged after offlining" "$((N * 1024))" "$(meminfo_kb Balloon)"
sleep 1
check_eq "the host's balloon unchanged after offlining" "$want" "$(hostcmd balloon-actual)"
kb1=$(memtotal_kb)
if [ "$VMEM_DRIVER" = rust ]; then
	# Every migration the core counted went through the driver's callback, which told the
	# device about the new page and the old one.
	st=$(ls -d /sys/kernel/debug/virtio_balloon_rs.virtio*/status | head -1)
	field() { awk -v k="$1:" '$1 == k { print $2 }' "$st"; }
	# Migrations are told in batches, the last one at most 100 ms after it was noted.
	wait_for 5 '[ "$(field migrate_pending)" = 0 ]'
	check_eq "driver told the device about every migration" "$(($(vmstat balloon_migrate) - mig0))" \
		"$(field migrated)"
	check_eq "no request to the device failed" 0 "$(field tell_failed)"
	check_eq "debugfs num_pages" "$pages" "$(field num_pages)"
fi

# --- deflate ----------------------------------------------------------------------------
d0=$(vmstat balloon_deflate)
hostcmd balloon "$ram" >/dev/null
wait_for 90 '[ "$(meminfo_kb Balloon)" -eq 0 ]'
check_eq "deflated: Balloon: is 0" 0 "$(meminfo_kb Balloon)"
check_eq "balloon_deflate rose by $pages" "$((d0 + pages))" "$(vmstat balloon_deflate)"
check_eq "MemTotal grew back by $N MiB" "$((kb1 + N * 1024))" "$(memtotal_kb)"
wait_for 30 '[ "$(hostcmd balloon-actual)" = "$ram" ]'
check_eq "the host's query-balloon agrees" "$ram" "$(hostcmd balloon-actual)"
kb2=$(memtotal_kb)

# --- freeze/restore (suspend to idle) deflates, and the balloon refills after resume ---------
hostcmd balloon $((ram - (32 << 20))) >/dev/null
wait_for 90 '[ "$(meminfo_kb Balloon)" -eq 32768 ]'
check_eq "inflated 32 MiB" 32768 "$(meminfo_kb Balloon)"
echo devices > /sys/power/pm_test
d0=$(vmstat balloon_deflate)
check "suspend to idle with the balloon inflated" sh -c 'echo freeze > /sys/power/state'
echo none > /sys/power/pm_test
check "freeze gave the pages back (balloon_deflate rose by 8192)" [ "$(vmstat balloon_deflate)" -ge $((d0 + 8192)) ]
wait_for 90 '[ "$(meminfo_kb Balloon)" -eq 32768 ]'
check_eq "the balloon refilled to 32 MiB after resume" 32768 "$(meminfo_kb Balloon)"

# --- unload with pages inflated ---------------------------------------------------------
check "rmmod $BMOD with 32 MiB inflated" rmmod "$BMOD"
# Balloon: and nr_balloon_pages are per-CPU-batched vmstat counters, folded within a second.
wait_for 10 '[ "$(meminfo_kb Balloon)" -eq 0 ] && [ "$(vmstat nr_balloon_pages)" -eq 0 ]'
check_eq "rmmod gave the pages back: Balloon: 0" 0 "$(meminfo_kb Balloon)"
check_eq "MemTotal is whole again" "$kb2" "$(memtotal_kb)"
check_eq "nr_balloon_pages is 0" 0 "$(vmstat nr_balloon_pages)"
ktap_finish
