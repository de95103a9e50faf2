#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: benchmark: balloon inflate and deflate rate, balloon_migrate after compaction
# qemu: --ram 2G --balloon
# drivers: c rust
# timeout: 600
. /tests/lib.sh
. /tests/scenarios/bench/lib.sh

check "modprobe $(balloon_module)" modprobe "$(balloon_module)"
ram=$(hostcmd balloon-actual)
N=512
vmstat_snap /tmp/v
t0=$(now)
hostcmd balloon $((ram - (N << 20))) >/dev/null
wait_for 300 '[ "$(meminfo_kb Balloon)" -eq $((N * 1024)) ]' || not_ok "inflate"
t1=$(now)
dt=$(elapsed "$t0" "$t1")
bench balloon_inflate_rate "$(awk -v n=$N -v t="$dt" 'BEGIN { printf "%.1f", n / t }')" MiB/s $(vmstat_delta /tmp/v)
vmstat_snap /tmp/v
echo 1 >/proc/sys/vm/compact_memory
bench balloon_migrate_after_compaction "$(($(vmstat balloon_migrate) - $(awk '$1 == "balloon_migrate" { print $2 }' /tmp/v)))" pages $(vmstat_delta /tmp/v)
vmstat_snap /tmp/v
t0=$(now)
hostcmd balloon "$ram" >/dev/null
wait_for 300 '[ "$(meminfo_kb Balloon)" -eq 0 ]' || not_ok "deflate"
t1=$(now)
dt=$(elapsed "$t0" "$t1")
bench balloon_deflate_rate "$(awk -v n=$N -v t="$dt" 'BEGIN { printf "%.1f", n / t }')" MiB/s $(vmstat_delta /tmp/v)
check "rmmod" rmmod "$(balloon_module)"
ktap_finish
