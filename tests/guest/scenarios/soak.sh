#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: integrity soak: K random resizes with sysfs online/offline noise and balloon changes while every page is verified
# qemu: --ram 2G --vmem id=vm0,size=1G --balloon
# drivers: c rust
# timeout: 600
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

# Noise: offline and re-online random hot-plugged blocks; errors (EBUSY, a block that
# went away) are expected and ignored.
(
	while [ ! -e /tmp/noise-stop ]; do
		b=$(blocks | grep -vxF -f /tmp/b0 | awk -v r="$RANDOM" 'NR == 1 { n = 0 } { a[n++] = $1 } END { if (n) print a[r % n] }')
		if [ -n "$b" ]; then
			# Offlining retries migration until it succeeds or the writer is killed (only a
			# fatal signal stops offline_pages()), holding the hotplug lock all along, so the
			# driver cannot add or remove memory meanwhile: give up after 5 s.
			timeout -s KILL 5 sh -c "echo offline > $MEMDIR/memory$b/state" 2>/dev/null
			sleep 0.2
			echo online_movable > $MEMDIR/memory$b/state 2>/dev/null
		fi
		sleep 0.3
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
	if t=$(hostcmd wait-size vm0 "$(mib $size)" 90); then
		diag "cycle $i: $size MiB plugged in $t s, balloon $bal MiB"
	else
		not_ok "cycle $i: $size MiB not reached in 90 s (plugged $(hostcmd size vm0)), balloon $bal MiB"
	fi
	r=$(memhog_verify)
	[ "${r##* }" = 0 ] || not_ok "cycle $i: memhog found corruption: $r"
	i=$((i + 1))
done

touch /tmp/noise-stop
wait_for 30 '[ -e /tmp/noise-done ]'
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
