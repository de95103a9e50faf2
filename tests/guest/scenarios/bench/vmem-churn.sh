#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: benchmark: partial unplug after program churn (SBM and BBM): time and memory migrated
# qemu: --ram 2G --vmem id=vm0,size=2G
# drivers: c rust
# timeout: 900
#
# A long-running guest does not leave its hot-plugged memory in the order it was
# plugged. Here one program takes the low half of 1 GiB of ZONE_MOVABLE, a second
# the next quarter, and the first one exits: the memory is now free at the bottom
# and the top, and used in between. Then the host asks for 512 MiB back. Trying
# the highest blocks first (the C driver) migrates the second program's 256 MiB;
# 512 MiB of free memory was there to take. Reported: time until the device
# reaches the request, how much of it is done after half a second, and how
# much memory was migrated on the way.
. /tests/lib.sh
. /tests/scenarios/bench/lib.sh

M=$(vmem_module)
echo online_movable > $MEMDIR/auto_online_blocks
kb0=$(memtotal_kb)
for mode in sbm bbm; do
	case $mode in
	sbm) param=force_bbm=0 ;;
	bbm) param=force_bbm=1 ;;
	esac
	check "$mode: modprobe $M $param" modprobe "$M" $param
	hostcmd resize vm0 "$(mib 1024)" >/dev/null
	wait_memtotal $((kb0 + 1024 * 1024)) 300 || bail "$mode: plug 1 GiB"

	memhog_start 512 || bail "$mode: first program"
	first_dir=$MEMHOG_DIR first_pid=$MEMHOG_PID
	memhog_start 256 || bail "$mode: second program"
	touch "$first_dir/stop"
	wait "$first_pid"
	diag "$mode: ZONE_MOVABLE free pages: $(awk '/zone +Movable/ { m = 1 } m && /nr_free_pages/ { print $2; exit }' /proc/zoneinfo)"

	vmstat_snap /tmp/v
	m0=$(vmstat pgmigrate_success)
	t0=$(now)
	hostcmd resize vm0 "$(mib 512)" >/dev/null
	# How much of the request is done half a second after it.
	hostcmd wait-size vm0 "$(mib 512)" 0.5 >/dev/null
	left=$(hostcmd size vm0)
	bench unplug_churn_${mode}_512M_achieved_0.5s $(((1073741824 - left) >> 20)) MiB
	hostcmd wait-size vm0 "$(mib 512)" 300 >/dev/null || not_ok "$mode: unplug 512 MiB"
	t1=$(now)
	moved=$((($(vmstat pgmigrate_success) - m0) * 4 / 1024))
	bench unplug_churn_${mode}_512M "$(elapsed "$t0" "$t1")" s $(vmstat_delta /tmp/v)
	bench unplug_churn_${mode}_512M_migrated "$moved" MiB-moved
	r=$(memhog_verify)
	check_eq "$mode: the second program's data is intact" 0 "${r##* }"
	memhog_stop
	hostcmd resize vm0 0 >/dev/null
	hostcmd wait-size vm0 0 300 >/dev/null || not_ok "$mode: unplug the rest"
	wait_memtotal "$kb0" 60
	check "$mode: rmmod $M" rmmod "$M"
done
ktap_finish
