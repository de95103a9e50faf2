# SPDX-License-Identifier: GPL-2.0
# Helpers for the benchmark scenarios (scripts/bench). Sourced after /tests/lib.sh.
#
# A result is a line "# bench: METRIC VALUE UNIT [key=value ...]"; the keys carry the
# /proc/vmstat deltas that explain it.

# now: host monotonic seconds (the guest's clock under TCG is not to be trusted for this).
now() { hostcmd time; }
# elapsed T0 T1: seconds between two now() values.
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'; }

BENCH_VMSTAT="pgmigrate_success pgmigrate_fail compact_stall compact_migrate_scanned compact_isolated balloon_migrate"
# vmstat_snap FILE: remember the counters.
vmstat_snap() { for k in $BENCH_VMSTAT; do echo "$k $(vmstat "$k")"; done >"$1"; }
# vmstat_delta FILE: "key=delta ..." since the snapshot.
vmstat_delta() {
	for k in $BENCH_VMSTAT; do
		v0=$(awk -v k="$k" '$1 == k { print $2 }' "$1")
		echo "$k=$(($(vmstat "$k") - ${v0:-0}))"
	done | tr '\n' ' '
}
bench() { echo "# bench: $*"; }

# reach_memtotal KB SECONDS: wait_memtotal for timed waits. wait_memtotal polls every
# 0.1 s, which rounds a 0.15 s plug up to 0.2 or 0.3 s; this polls without sleeping and
# without forking (shell builtins only), so it takes one vCPU while the driver runs on
# the other, and sees MemTotal change within microseconds.
reach_memtotal() {
	read -r _up _ </proc/uptime
	_end=$((${_up%.*} + $2))
	_n=0
	while :; do
		while read -r _k _v _; do
			[ "$_k" = MemTotal: ] && break
		done </proc/meminfo
		[ "$_v" -eq "$1" ] && return 0
		_n=$((_n + 1))
		if [ $_n -ge 1000 ]; then
			_n=0
			read -r _up _ </proc/uptime
			[ "${_up%.*}" -ge $_end ] && return 1
		fi
	done
}
