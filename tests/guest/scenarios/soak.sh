#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: integrity soak: K random resizes with sysfs online/offline noise and balloon changes while every page is verified
# qemu: --ram 2G --vmem id=vm0,size=1G --balloon
# drivers: c rust
# timeout: 900
#
# K defaults to 8; a longer soak on demand:
#   scripts/run-qemu --scenario soak --driver rust --use-scenario-machine --append soak.k=100
. /tests/lib.sh

K=8
for a in $(cat /proc/cmdline); do
	case "$a" in soak.k=*) K=${a#soak.k=} ;; esac
done
diag "K=$K resize cycles"

echo online_movable > $MEMDIR/auto_online_blocks
blocks >/tmp/b0
kb0=$(memtotal_kb)
check "modprobe $(vmem_module)" modprobe "$(vmem_module)"
check "modprobe $(balloon_module)" modprobe "$(balloon_module)"
ram=$(hostcmd balloon-actual) || bail "query-balloon"
hostcmd resize vm0 "$(mib 512)" >/dev/null
hostcmd wait-size vm0 "$(mib 512)" 120 >/dev/null || bail "plug 512 MiB"
wait_memtotal $((kb0 + 512 * 1024)) 60

# The data: 768 MiB with a per-page pattern, in hot-plugged and boot memory.
memhog_start 768 || bail "memhog holds 768 MiB"
ok "memhog holds 768 MiB"

# Noise: offline and re-online random hot-plugged blocks. Every outcome is counted:
# EBUSY and a block that went away are expected (the driver unplugs meanwhile). The
# noise gives up on an offline after 5 s (offline_pages() holds the hotplug lock until
# it is done or killed, and the driver must get its turn). A killed offline is a failure
# unless it was not stuck, which the kernel shows in one of these ways: it reported a
# page of that block it could not migrate or isolate ("migrating pfn P failed", "failed
# to isolate pfn P", the page dumped: the pfn and its type say why); a page of the block
# stayed unisolated (the test_pages_isolated tracepoint names it, and /proc/kpageflags
# and kpagecount say what it is); pages were migrated, or migrations failed, while it
# ran (pgmigrate_success, pgmigrate_fail: slow, not stuck); the migration messages were
# rate-limited ("callbacks suppressed"); or its stack, read just before the kill, shows
# it waiting for a lock outside offline_pages() (the driver holds the hotplug lock
# meanwhile). How long after the kill it ended is reported: offline_pages() notices a
# kill only between migration batches, which under the debug kernel take up to a minute.
# It is stuck, whatever else it shows, if the block's pageblocks lost their isolation
# while it ran (fewer isolated in ZONE_MOVABLE than the block has): it can never finish.
# alloc_contig_range() used to do that when it failed to isolate them (the contig-isolation
# edit of scripts/upstream-edits).
# failed_pfns BLOCK LINE: pfns of BLOCK the kernel failed to migrate or isolate after
# dmesg line LINE.
failed_pfns() {
	_ppb=$(($(block_size) / 4096))
	dmesg | tail -n +$(($2 + 1)) |
		sed -n 's/.*\(migrating pfn \([0-9a-f]*\) failed\|failed to isolate pfn \([0-9a-f]*\)\).*/\2\3/p' |
		while read -r _p; do
			[ $((0x$_p / _ppb)) = "$1" ] && printf '0x%s ' "$_p"
		done | cut -c1-120
}
# page_desc PFN: PFN's page flags and mapcount, from /proc/kpageflags and kpagecount.
page_desc() {
	_f=$(dd if=/proc/kpageflags bs=8 skip=$(($1)) count=1 2>/dev/null | od -An -tu8 | tr -d ' ')
	_c=$(dd if=/proc/kpagecount bs=8 skip=$(($1)) count=1 2>/dev/null | od -An -tu8 | tr -d ' ')
	_n=
	for _b in 0:locked 5:lru 7:slab 10:buddy 11:mmap 12:anon 15:head 16:tail 17:huge 20:nopage \
		22:thp 23:offline; do
		[ $(((${_f:-0} >> ${_b%%:*}) & 1)) = 1 ] && _n="$_n${_n:+,}${_b#*:}"
	done
	echo "pfn $1 flags ${_n:-none} mapcount ${_c:-?}"
}
# The pfn offlining last found not isolated (test_pages_isolated(), traced) in block $1,
# described; empty if every test of it since the trace was cleared succeeded.
# Kernels without event tracing (the KASAN one) cannot name it: a killed offline that
# spins on an unisolated page then counts as stuck.
TRACE=/sys/kernel/tracing
[ -e $TRACE/trace ] || mount -t tracefs nodev $TRACE 2>/dev/null
echo 1 2>/dev/null > $TRACE/events/page_isolation/test_pages_isolated/enable ||
	diag "no test_pages_isolated tracepoint: unisolated pages are not named"
unisolated() {
	[ -e $TRACE/trace ] || return 0
	_s=$(printf '0x%x' $(($1 * $(block_size) / 4096)))
	_p=$(sed -n "s/.* start_pfn=$_s end_pfn=0x[0-9a-f]* fin_pfn=\(0x[0-9a-f]*\) ret=fail.*/\1/p" \
		$TRACE/trace | tail -1)
	[ -n "$_p" ] && page_desc "$_p"
}
# Pageblocks isolated in ZONE_MOVABLE now, from /proc/pagetypeinfo. An offline of a block
# isolates all its pageblocks (64 of 2 MiB on x86-64); test_pages_isolated() also fails at
# the first pageblock that is not isolated, before it looks at any page, so a count below
# that during a spin says a pageblock lost its isolation. The pageblock size is the
# kernel's ("Pages per block"), not assumed.
PB_PAGES=$(awk '/^Pages per block:/ { print $4 }' /proc/pagetypeinfo)
[ "${PB_PAGES:-0}" -gt 0 ] || bail "no 'Pages per block' in /proc/pagetypeinfo"
PB_PER_BLOCK=$(($(block_size) / (PB_PAGES * 4096)))
isolated_blocks() {
	awk '/^Number of blocks type/ { for (i = 1; i <= NF; i++) if ($i == "Isolate") c = i; next }
		c && / zone *Movable / { print $c; exit }' /proc/pagetypeinfo
}
for c in offline_ok offline_busy offline_gone offline_other offline_killed online_ok online_err; do
	echo 0 > /tmp/noise.$c
done
count() { echo $(($(cat /tmp/noise.$1) + 1)) > /tmp/noise.$1; }
(
	while [ ! -e /tmp/noise-stop ]; do
		b=$(blocks | grep -vxF -f /tmp/b0 | awk -v r="$RANDOM" 'NR == 1 { n = 0 } { a[n++] = $1 } END { if (n) print a[r % n] }')
		if [ -n "$b" ]; then
			# Offlining retries migration until it succeeds or the writer is killed (only a
			# fatal signal stops offline_pages()), holding the hotplug lock all along, so the
			# driver cannot add or remove memory meanwhile: give up after 5 s. Longer, and the
			# driver waits on the lock for longer than the hung-task timeout (60 s) across a few
			# rounds whenever balloon pages cannot move while the balloon changes size.
			line=$(dmesg | wc -l) t0=$(cut -d' ' -f1 /proc/uptime)
			zone=$(cat $MEMDIR/memory$b/valid_zones 2>/dev/null)
			mig=$(vmstat pgmigrate_success) mfail=$(vmstat pgmigrate_fail)
			# The writer and the stack reads share CPU 0: a task running on another CPU has
			# no stack to read, and one that spins in offline_pages() is always running.
			[ -e $TRACE/trace ] && echo > $TRACE/trace
			taskset 1 sh -c "echo offline > $MEMDIR/memory$b/state" 2>/tmp/noise.err &
			w=$! n=0 stack= spin= iso=
			while kill -0 $w 2>/dev/null && [ $n -lt 50 ]; do
				sleep 0.1
				n=$((n + 1))
				# What it spins on, while it spins: the kill changes the page.
				if [ $n = 40 ]; then
					iso=$(isolated_blocks)
					spin="$(unisolated $b), $iso pageblocks isolated"
				fi
				[ $n -ge 40 ] || continue
				s=$(taskset 1 cat /proc/$w/stack 2>/dev/null | awk '{ print $2 }' | head -10 | tr '\n' ' ')
				[ -n "$s" ] && stack=$s
			done
			kill -0 $w 2>/dev/null && kill -KILL $w 2>/dev/null
			wait $w
			rc=$? err=$(cat /tmp/noise.err)
			late=$(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a - 5 }')
			case "$rc:$err" in
			0:*) count offline_ok ;;
			137:*)
				count offline_killed
				why=$(failed_pfns $b $line)
				moved=$(($(vmstat pgmigrate_success) - mig))
				failed=$(($(vmstat pgmigrate_fail) - mfail))
				page=$(unisolated $b)
				[ -n "$page" ] && page="$page after the kill; $spin at 4 s"
				if [ -n "$why" ]; then why="could not migrate or isolate $why"
				elif [ "$zone" = Movable ] && [ -n "$iso" ] && [ "$iso" -lt "$PB_PER_BLOCK" ]; then
					# Offlining isolated every pageblock of the block, and only ends (or
					# fails) to undo that: fewer isolated in the zone is a kernel bug.
					why="stuck: the block's pageblocks lost their isolation ($iso of $PB_PER_BLOCK isolated at 4 s); $page"
				elif [ -n "$page" ]; then why="a page stayed unisolated: $page, stack $stack"
				elif [ "$moved" -gt 0 ] || [ "$failed" -gt 0 ]; then
					why="slow: $moved pages migrated, $failed migrations failed meanwhile"
				elif dmesg | tail -n +$((line + 1)) | grep -q 'do_migrate_range: .* callbacks suppressed'; then
					why="migration failures not shown (rate-limited)"
				elif [ -n "$stack" ] && ! echo "$stack" | grep -q offline_pages; then
					why="waiting, not in offline_pages(): $stack"
				else why="stuck: $stack"; fi
				echo "memory$b $why, ended ${late} s after the kill" >> /tmp/noise.killed ;;
			*"Device or resource busy"*) count offline_busy ;;
			# A block the driver is removing loses its state file before its directory:
			# the shell's O_CREAT then meets a directory that cannot create (EACCES).
			*"No such"*|*"Invalid argument"*|*"nonexistent"*|*"can't create"*"Permission denied"*)
				[ -e $MEMDIR/memory$b ] && count offline_other || count offline_gone ;;
			*) count offline_other; echo "memory$b: $err" >> /tmp/noise.other ;;
			esac
			sleep 0.2
			if [ -e $MEMDIR/memory$b ] && [ "$(block_state $b 2>/dev/null)" = offline ]; then
				# The driver refuses to online a block it is removing (its subblocks are
				# unplugged): that block goes away right after.
				if err=$(sh -c "echo online_movable > $MEMDIR/memory$b/state" 2>&1); then
					count online_ok
				elif ! wait_for 10 "[ ! -e $MEMDIR/memory$b ]"; then
					count online_err
					echo "memory$b: $err, still $(block_state $b 2>/dev/null)" >> /tmp/noise.onlinefail
				fi
			fi
		fi
		# A pause between rounds: each offline holds the hotplug locks for a while.
		sleep 2
	done
	echo done > /tmp/noise-done
) &

i=1
while [ $i -le "$K" ]; do
	# Alternate between shrinking (0..480 MiB) and growing (512..1024 MiB), in 32 MiB steps
	# (partial memory blocks in SBM).
	if [ $((i % 2)) = 1 ]; then size=$(((RANDOM % 16) * 32)); else size=$((512 + (RANDOM % 17) * 32)); fi
	bal=$(((RANDOM % 5) * 64))          # balloon 0..256 MiB
	hostcmd balloon $((ram - (bal << 20))) >/dev/null
	hostcmd resize vm0 "$(mib $size)" >/dev/null
	if t=$(hostcmd wait-size vm0 "$(mib $size)" 150); then
		diag "cycle $i: $size MiB plugged in $t s, balloon $bal MiB"
	else
		not_ok "cycle $i: $size MiB not reached in 150 s (plugged $(hostcmd size vm0)), balloon $bal MiB"
	fi
	r=$(memhog_verify)
	[ "${r##* }" = 0 ] || not_ok "cycle $i: memhog found corruption: $r"
	i=$((i + 1))
done

touch /tmp/noise-stop
wait_for 60 '[ -e /tmp/noise-done ]'
diag "noise: offline ok $(cat /tmp/noise.offline_ok), busy $(cat /tmp/noise.offline_busy)," \
	"gone $(cat /tmp/noise.offline_gone), other $(cat /tmp/noise.offline_other)," \
	"killed $(cat /tmp/noise.offline_killed); online ok $(cat /tmp/noise.online_ok), failed $(cat /tmp/noise.online_err)"
# Under a loaded host every offline of the noise can take longer than its 5 s: then it
# still reached offline_pages() (and migrated pages) when it was killed. That the
# offline itself completes is shown below, with the driver idle.
check "the noise offlined blocks, or was migrating their pages when it gave up" \
	[ $(($(cat /tmp/noise.offline_ok) + $(cat /tmp/noise.offline_killed))) -gt 0 ]
[ -e /tmp/noise.other ] && diag "unexpected offline errors: $(head -3 /tmp/noise.other)"
check_eq "no offline failed in an unexpected way" 0 "$(cat /tmp/noise.offline_other)"
[ -e /tmp/noise.killed ] && diag "killed offlines: $(head -8 /tmp/noise.killed | tr '\n' ';')"
# Every killed offline that was not simply slow, in full.
[ -e /tmp/noise.killed ] && grep -v ' slow: ' /tmp/noise.killed | head -20 | while read -r l; do diag "  $l"; done
check "no killed offline was stuck (no progress, no page reported unmovable)" \
	sh -c '! grep -q " stuck: " /tmp/noise.killed 2>/dev/null'
[ -e /tmp/noise.onlinefail ] && diag "failed onlines: $(head -3 /tmp/noise.onlinefail | tr '\n' ';')"
check_eq "every offlined block that is still there could be onlined again" 0 "$(cat /tmp/noise.online_err)"

# With the driver idle, a hot-plugged block that holds data offlines (its pages migrate
# to the rest of memory) and onlines again, and memhog's pattern survives the move.
online_hotplugged() { for _b in $(blocks | grep -vxF -f /tmp/b0); do
	[ "$(block_state "$_b")" = online ] && echo "$_b"; done | head -1; }
if [ -z "$(online_hotplugged)" ]; then
	hostcmd resize vm0 "$(mib 256)" >/dev/null
	hostcmd wait-size vm0 "$(mib 256)" 120 >/dev/null || not_ok "plug 256 MiB for the offline"
fi
b=$(online_hotplugged)
mig=$(vmstat pgmigrate_success) t0=$(uptime_s)
check "an online hot-plugged block offlines with the driver idle (memory${b:-?})" \
	timeout -s KILL 120 sh -c "echo offline > $MEMDIR/memory$b/state"
diag "memory$b offlined in $(($(uptime_s) - t0)) s, $(($(vmstat pgmigrate_success) - mig)) pages migrated"
check "and onlines again" sh -c "echo online_movable > $MEMDIR/memory$b/state"
r=$(memhog_verify)
check_eq "after $K cycles every page verifies" "pages $((768 * 256)) corrupted 0" "$r"
check "memhog exits cleanly" memhog_stop

# Settle: everything back, nothing lost.
for b in $(blocks | grep -vxF -f /tmp/b0); do
	[ "$(block_state "$b")" = online ] || echo online_movable > $MEMDIR/memory$b/state
done
hostcmd balloon "$ram" >/dev/null
hostcmd resize vm0 0 >/dev/null
check "unplugged everything at the end" hostcmd wait-size vm0 0 120
wait_for 60 '[ "$(meminfo_kb Balloon)" -eq 0 ]'
check_eq "balloon empty" 0 "$(meminfo_kb Balloon)"
wait_memtotal "$kb0" 60
check_eq "MemTotal is back to its boot value" "$kb0" "$(memtotal_kb)"
check "rmmod $(balloon_module)" rmmod "$(balloon_module)"
check "rmmod $(vmem_module)" rmmod "$(vmem_module)"
ktap_finish
