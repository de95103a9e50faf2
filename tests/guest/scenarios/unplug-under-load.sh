#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: unplug ZONE_MOVABLE memory while a program holds and verifies data in it
# qemu: --ram 1536M --vmem id=vm0,size=4G
# drivers: c rust
# timeout: 420
. /tests/lib.sh

echo online_movable > $MEMDIR/auto_online_blocks
kb0=$(memtotal_kb)
check "modprobe $(vmem_module)" modprobe "$(vmem_module)"
hostcmd resize vm0 "$(gib 1)" >/dev/null
check "plug 1 GiB" hostcmd wait-size vm0 "$(gib 1)" 120
wait_memtotal $((kb0 + 1024 * 1024)) 30
free0=$(movable_free_kb)
memhog_start 700
free1=$(movable_free_kb)
diag "ZONE_MOVABLE free: $free0 kB before the program, $free1 kB after"
check "the program's data landed in ZONE_MOVABLE (>= 512 MiB)" [ $((free0 - free1)) -ge $((512 * 1024)) ]

# The Rust driver's worker keeps its state locked through a whole pass, here the
# minute or so of migrating the program's data; its debugfs status must answer all
# the same. Read it every second meanwhile, timing each read (centiseconds).
watch_status() {
	while [ ! -e "$1/stop" ]; do
		a=$(uptime_cs)
		w=$(rs_field worker)
		echo "$(($(uptime_cs) - a)) $w" >>"$1/reads"
		sleep 1
	done
}
if [ "$(vmem_module)" = virtio_mem_rs ]; then
	wdir=$(mktemp -d)
	watch_status "$wdir" &
	wpid=$!
fi

hostcmd resize vm0 "$(mib 128)" >/dev/null
t=$(hostcmd wait-size vm0 "$(mib 128)" 300) && ok "unplugged to 128 MiB under load (${t} s)" || not_ok "unplugged to 128 MiB under load"
if [ -n "$wdir" ]; then
	touch "$wdir/stop"
	wait "$wpid"
	n=$(grep -c ' running$' "$wdir/reads")
	slow=$(sort -n "$wdir/reads" | tail -1 | cut -d' ' -f1)
	diag "status read $(wc -l <"$wdir/reads") times, $n of them during a pass; slowest read ${slow}0 ms"
	check "status shows the worker running during the unplug" [ "$n" -ge 3 ]
	# A loaded TCG guest takes up to about 1 s to run sed at all; a read that waits
	# for the worker takes as long as its pass (18 s and more, seen).
	check "every status read took under 5 s" [ "$slow" -lt 500 ]
fi
check_eq "MemTotal shows 128 MiB plugged" "$((kb0 + 128 * 1024))" "$(memtotal_kb)"
res=$(memhog_verify)
diag "after unplug: $res"
check "no page of the program was corrupted" sh -c "echo '$res' | grep -q ' corrupted 0$'"
memhog_stop
check_eq "the program exits clean" 0 "$?"
hostcmd resize vm0 0 >/dev/null
check "unplug the rest" hostcmd wait-size vm0 0 120
check "rmmod $(vmem_module)" rmmod "$(vmem_module)"
ktap_finish
