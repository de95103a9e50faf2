#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: free page hinting: a live migration does not send the memory a guest program freed, and the guest gets it back after
# qemu: --ram 1G --balloon free-page-hint=on
# drivers: c rust
# timeout: 600
#
# The same steps with the device's hinting off are balloon-hint-off (vmem.hint=off): the
# migration must then send the freed memory. The host migrates the guest into /dev/null (at
# 50 MB/s, so that the hints arrive while the first pass still runs), lets it run on, and
# reports what the migration sent: pages sent whole ("normal"), the others being zero pages.
. /tests/lib.sh

HINT=on
case " $(cat /proc/cmdline) " in *" vmem.hint=off "*) HINT=off ;; esac
HOG=512

balloon_probe
want=1; [ $HINT = off ] && want=0
check_eq "free page hinting (bit 3) negotiated: $HINT" "$want" "$(feature_bit 3)"
if [ "$VMEM_DRIVER" = rust ]; then
	want=true; [ $HINT = off ] && want=false
	check_eq "the driver's status says free_page_hint: $want" "$want" "$(bs_field free_page_hint)"
fi

# Memory that held data and was freed: its pages are not zero, so a migration sends them
# whole unless the guest hints them.
memhog_start $HOG || bail "memhog holds $HOG MiB"
check "memhog exits cleanly" memhog_stop
free0=$(meminfo_kb MemFree)
used=$((($(memtotal_kb) - free0) / 1024))
diag "before the migration: $((free0 / 1024)) MiB free, $used MiB in use"
r=$(hostcmd migrate 50000000) || bail "migrate: $r"
sent=$((${r#* } * 4 / 1024))
diag "the migration sent $sent MiB of whole pages ($((${r% *} >> 20)) MiB in all)"
if [ $HINT = on ]; then
	check "the migration skipped at least half of the freed $HOG MiB: sent $sent MiB, under $used + $((HOG / 2))" \
		[ "$sent" -lt $((used + HOG / 2)) ]
	if [ "$VMEM_DRIVER" = rust ]; then
		diag "hint rounds $(bs_field hint_rounds), blocks $(bs_field hinted_blocks)," \
			"ring full $(bs_field hint_ring_full), shrunk $(bs_field hint_shrunk)"
		check "the driver hinted at least $((HOG / 2)) MiB" \
			[ $(($(bs_field hinted_blocks) * 4)) -ge $((HOG / 2)) ]
		# DONE came when the migration completed: every block goes back.
		check "the driver gave every hinted block back" wait_for 30 '[ "$(bs_field hint_kept)" = 0 ]'
	fi
else
	check "the migration sent the freed memory: $sent MiB, at least $((HOG * 9 / 10))" \
		[ "$sent" -ge $((HOG * 9 / 10)) ]
	if [ "$VMEM_DRIVER" = rust ]; then
		check_eq "the driver hinted nothing" 0 "$(bs_field hint_rounds)"
	fi
fi
# Hinted memory is the guest's again once the host is done.
check "free memory is back within 32 MiB of $((free0 / 1024)) MiB" \
	wait_for 30 '[ $(meminfo_kb MemFree) -ge $((free0 - 32 * 1024)) ]'

if [ $HINT = on ]; then
	# A program that needs the hinted memory during a migration gets it: once the driver
	# holds most of the free memory, memhog takes $PRESS MiB, which memory reclaim must get
	# back from the driver's shrinker. The migration runs slowly (10 MB/s, about a
	# minute), so that without the shrinker memhog would wait for the end of it, or be
	# OOM-killed.
	PRESS=384
	rm -f /tmp/press.rc
	(
		if wait_for 60 '[ $(meminfo_kb MemFree) -lt $((free0 / 4)) ]'; then
			memhog_start $PRESS && memhog_stop
			echo $? > /tmp/press.rc
		else
			echo timeout > /tmp/press.rc
		fi
	) &
	press=$!
	r=$(hostcmd migrate 10000000) || not_ok "migrate under pressure: $r"
	wait $press
	check_eq "memhog got $PRESS MiB while the driver held the hinted memory (every page verified)" \
		0 "$(cat /tmp/press.rc)"
	check_eq "nothing was OOM-killed" 0 "$(vmstat oom_kill)"
	if [ "$VMEM_DRIVER" = rust ]; then
		diag "hint rounds $(bs_field hint_rounds), blocks $(bs_field hinted_blocks), shrunk $(bs_field hint_shrunk)"
		check "the shrinker gave at least $((PRESS / 2)) MiB back" \
			[ $(($(bs_field hint_shrunk) * 4)) -ge $((PRESS / 2)) ]
	fi
	check "free memory is back again" \
		wait_for 30 '[ $(meminfo_kb MemFree) -ge $((free0 - 32 * 1024)) ]'
fi
memhog_start $HOG || bail "memhog holds $HOG MiB again"
check "memhog exits cleanly the second time (every page verified)" memhog_stop
check "rmmod $BMOD" rmmod "$BMOD"
ktap_finish
