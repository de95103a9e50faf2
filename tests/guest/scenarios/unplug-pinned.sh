#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: unplug around pages that cannot migrate; the driver stays responsive (SBM and BBM)
# qemu: --vmem id=vm0,size=1G,memaddr=0x100000000
# drivers: c rust
# timeout: 600
#
# A program (pinhold) holds references on some of its pages through a pipe, so
# migration fails on them until it lets go. Asked to unplug everything, a
# driver can only get the units (2 MiB subblocks in SBM, 128 MiB big blocks in
# BBM) that hold none of those pages. The C driver takes them with
# alloc_contig_range(), which gives up after a few tries (-EBUSY), and retries
# the rest later (virtio_mem_sbm_unplug_any_sb_online,
# virtio_mem_bbm_offline_remove_and_unplug_bb). Expected, from that:
#  - the device settles at exactly the units that hold a pinned page;
#  - the driver keeps serving requests meanwhile: it plugs again when asked;
#  - memory hotplug stays usable: another block goes offline and online;
#  - once the pages are released, everything unplugs.
# offline_pages() itself would retry the migration until a fatal signal, which
# a driver's worker never gets: a driver that offlines such memory directly
# hangs with the hotplug lock held, and the checks above time out.
. /tests/lib.sh

M=$(vmem_module)
BASE=$((0x100000000))
SIZE=$((1 << 30))
echo online_movable > $MEMDIR/auto_online_blocks
kb0=$(memtotal_kb)

# units_held DIR UNIT: how many UNIT-sized units of the device hold a pinned page.
units_held() {
	while read -r a; do
		a=$((a))
		[ "$a" -ge $BASE ] && [ "$a" -lt $((BASE + SIZE)) ] && echo $(((a - BASE) / $2))
	done <"$1/held" | sort -un | wc -l
}

for mode in sbm bbm; do
	case $mode in
	sbm) param=force_bbm=0 unit=$((2 << 20)) ;;
	bbm) param=force_bbm=1 unit=$((128 << 20)) ;;
	esac
	check "$mode: modprobe $M $param" modprobe "$M" $param
	hostcmd resize vm0 "$(mib 512)" >/dev/null
	check "$mode: plug 512 MiB" hostcmd wait-size vm0 "$(mib 512)" 120
	wait_memtotal $((kb0 + 512 * 1024)) 30

	dir=$(mktemp -d)
	pinhold 256 16384 "$dir" &
	pid=$!
	wait_for 120 '[ -e "$dir/ready" ]' || bail "$mode: pinhold did not start"
	n=$(units_held "$dir" $unit)
	diag "$mode: $(wc -l <"$dir/held") pages held, in $n units of the device"
	check "$mode: some held pages are in the device's memory" [ "$n" -ge 1 ]
	expect=$((n * unit))

	dmesg -c >/dev/null
	[ -r "$RS_STATUS" ] && r0=$(rs_field worker_runs) m0=$(rs_field worker_run_ms) u0=$(uptime_s)
	hostcmd resize vm0 0 >/dev/null
	if t=$(hostcmd wait-size vm0 "$expect" 180); then
		ok "$mode: settles at the $n units that hold pinned pages (${t} s)"
	else
		not_ok "$mode: settles at the $n units that hold pinned pages ($(hostcmd size vm0) plugged, expected $expect)"
	fi
	sleep 2
	check_eq "$mode: and stays there" "$expect" "$(hostcmd size vm0)"
	# What the retries cost while the pages stay pinned (the Rust driver counts its passes).
	[ -r "$RS_STATUS" ] && diag "$mode: $(($(uptime_s) - u0)) s since the request: $(($(rs_field worker_runs) - r0)) worker passes, $(($(rs_field worker_run_ms) - m0)) ms in them, next retry in $(rs_field retry_ms) ms"
	check_eq "$mode: MemTotal agrees" $((kb0 + expect / 1024)) "$(memtotal_kb)"

	# The retries go on in the background; the driver and memory hotplug still work.
	hostcmd resize vm0 "$(mib 512)" >/dev/null
	check "$mode: plugs again while the pages stay pinned" hostcmd wait-size vm0 "$(mib 512)" 60
	wait_memtotal $((kb0 + 512 * 1024)) 30
	# A block of the device without pinned pages.
	bs=$(block_size)
	held_blocks=$(while read -r a; do echo $((a / bs)); done <"$dir/held" | sort -un)
	b=
	for i in $(blocks); do
		[ "$i" -ge $((BASE / bs)) ] && ! echo "$held_blocks" | grep -qx "$i" && b=$i
	done
	check "$mode: memory$b goes offline meanwhile" timeout -s KILL 30 sh -c "echo offline > $MEMDIR/memory$b/state"
	check "$mode: and online again" timeout -s KILL 30 sh -c "echo online_movable > $MEMDIR/memory$b/state"

	# Asked again while the pages stay pinned, the driver keeps retrying on its own:
	# once they are released, a retry must unplug the rest without a new request.
	# The C driver's first retry comes 50 s after a failure. Ours backs off from 1 s,
	# but never below ten times a futile pass (device.rs: RETRY_MIN_MS); its status
	# says when the next retry comes, and it must come then.
	hostcmd resize vm0 0 >/dev/null
	check "$mode: settles again at the units with pinned pages" hostcmd wait-size vm0 "$expect" 180
	if [ -r "$RS_STATUS" ]; then
		wait_for 120 '[ "$(rs_field worker)" = waiting ]'
		check_eq "$mode: the worker waits for a retry" waiting "$(rs_field worker)"
		next=$(($(rs_field retry_ms) / 1000))
		notice=$((next + 15))
	else
		sleep 5
		notice=120
	fi
	touch "$dir/stop"
	wait "$pid"
	check_eq "$mode: pinhold exits clean" 0 "$?"
	if t=$(hostcmd wait-size vm0 0 $notice); then
		ok "$mode: once the pages are released, a retry unplugs the rest within $notice s (${t} s)"
	else
		not_ok "$mode: once the pages are released, a retry unplugs the rest within $notice s ($(hostcmd size vm0) plugged)"
	fi
	wait_memtotal "$kb0" 30
	check_eq "$mode: MemTotal back to boot" "$kb0" "$(memtotal_kb)"
	check "$mode: rmmod $M" rmmod "$M"
done
ktap_finish
