#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: benchmark: BBM (128 MiB device blocks) plug and unplug times
# qemu: --ram 2G --vmem id=vm0,size=4G,block=128M
# drivers: c rust
# timeout: 600
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
	bench plug_bbm_${sz}M "$(elapsed "$t0" "$t1")" s $(vmstat_delta /tmp/v)
	memhog_start $((sz / 2)) || not_ok "memhog"
	vmstat_snap /tmp/v
	t0=$(now)
	hostcmd resize vm0 0 >/dev/null
	hostcmd wait-size vm0 0 300 >/dev/null || not_ok "unplug $sz MiB"
	t1=$(now)
	r=$(memhog_verify)
	bench unplug_bbm_${sz}M_held50 "$(elapsed "$t0" "$t1")" s $(vmstat_delta /tmp/v)
	check_eq "data intact" 0 "${r##* }"
	memhog_stop
	wait_memtotal "$kb0" 60
done
ktap_finish
