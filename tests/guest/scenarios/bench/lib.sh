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
