#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: benchmark: SBM plug and unplug times, idle and with 25/50/75% of the plugged memory held
# qemu: --ram 2G --vmem id=vm0,size=4G
# drivers: c rust
# timeout: 900
. /tests/lib.sh
. /tests/scenarios/bench/lib.sh

echo online_movable > $MEMDIR/auto_online_blocks
check "modprobe $(vmem_module)" modprobe "$(vmem_module)"
kb0=$(memtotal_kb)

for sz in 256 1024; do
	vmstat_snap /tmp/v
	t0=$(now)
	hostcmd resize vm0 "$(mib $sz)" >/dev/null
	reach_memtotal $((kb0 + sz * 1024)) 300 || not_ok "plug $sz MiB"
	t1=$(now)
	bench plug_sbm_${sz}M "$(elapsed "$t0" "$t1")" s $(vmstat_delta /tmp/v)
	vmstat_snap /tmp/v
	t0=$(now)
	hostcmd resize vm0 0 >/dev/null
	hostcmd wait-size vm0 0 300 >/dev/null || not_ok "unplug $sz MiB"
	t1=$(now)
	bench unplug_sbm_${sz}M_idle "$(elapsed "$t0" "$t1")" s $(vmstat_delta /tmp/v)
	wait_memtotal "$kb0" 60
done

# Unplug 1 GiB of ZONE_MOVABLE while a program holds (and afterwards verifies) part of it.
for pct in 25 50 75; do
	hostcmd resize vm0 "$(mib 1024)" >/dev/null
	reach_memtotal $((kb0 + 1024 * 1024)) 300 || not_ok "plug 1 GiB"
	memhog_start $((1024 * pct / 100)) || not_ok "memhog $pct%"
	vmstat_snap /tmp/v
	t0=$(now)
	hostcmd resize vm0 0 >/dev/null
	hostcmd wait-size vm0 0 300 >/dev/null || not_ok "unplug 1 GiB with $pct% held"
	t1=$(now)
	r=$(memhog_verify)
	bench unplug_sbm_1024M_held${pct} "$(elapsed "$t0" "$t1")" s $(vmstat_delta /tmp/v)
	check_eq "data intact after unplug with $pct% held" 0 "${r##* }"
	memhog_stop
	wait_memtotal "$kb0" 60
done
ktap_finish
