#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: benchmark: how much of a 1 GiB unplug each driver achieves in 30 s from fragmented kernel-zone memory
# qemu: --ram 2G --vmem id=vm0,size=2G
# drivers: c rust
# timeout: 600
. /tests/lib.sh
. /tests/scenarios/bench/lib.sh

echo online_kernel > $MEMDIR/auto_online_blocks
check "modprobe $(vmem_module)" modprobe "$(vmem_module)"
kb0=$(memtotal_kb)
hostcmd resize vm0 "$(mib 1024)" >/dev/null
wait_memtotal $((kb0 + 1024 * 1024)) 300 || bail "plug 1 GiB"

# Fragment: movable data, then many small files (unmovable dentries and inodes in slab)
# of which every other one is deleted, so the slab pages stay, sparsely used.
memhog_start 512 || not_ok "memhog"
mkdir -p /tmp/frag
i=0
while [ $i -lt 40000 ]; do
	: >/tmp/frag/f$i
	i=$((i + 1))
done
i=0
while [ $i -lt 40000 ]; do
	rm -f /tmp/frag/f$i
	i=$((i + 2))
done
diag "slab: $(meminfo_kb Slab) kB"

vmstat_snap /tmp/v
t0=$(now)
hostcmd resize vm0 0 >/dev/null
# Early progress shows the order in which blocks are tried; the 30 s figure, what is possible.
hostcmd wait-size vm0 0 5 >/dev/null
left=$(hostcmd size vm0)
bench unplug_frag_achieved_5s $(((1073741824 - left) >> 20)) MiB
hostcmd wait-size vm0 0 25 >/dev/null
t1=$(now)
left=$(hostcmd size vm0)
bench unplug_frag_achieved_30s $(((1073741824 - left) >> 20)) MiB $(vmstat_delta /tmp/v)
bench unplug_frag_time "$(elapsed "$t0" "$t1")" s
r=$(memhog_verify)
check_eq "data intact" 0 "${r##* }"
memhog_stop
ktap_finish
