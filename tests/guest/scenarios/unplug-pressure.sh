#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: asked to unplug while a program holds most memory, the driver defers instead of starving the guest
# qemu: --vmem id=vm0,size=4G
# drivers: rust
# timeout: 420
#
# The C driver is not run here: it keeps migrating until the kernel reports page
# allocation failures, which this harness counts as a failure (see the issue note).
. /tests/lib.sh


echo online_movable > $MEMDIR/auto_online_blocks
kb0=$(memtotal_kb)
check "modprobe $(vmem_module)" modprobe "$(vmem_module)"
hostcmd resize vm0 "$(gib 1)" >/dev/null
check "plug 1 GiB" hostcmd wait-size vm0 "$(gib 1)" 120
wait_memtotal $((kb0 + 1024 * 1024)) 30
# Leave about 110 MiB available: less than a 128 MiB block above the 64 MiB
# margin (so taking a whole block in use is put off at once), more than a 2 MiB
# subblock above it (so some subblocks go first).
avail=$(awk '/^MemAvailable/ { print int($2 / 1024) }' /proc/meminfo)
memhog_start $((avail - 110))
diag "$(grep -E '^(MemTotal|MemFree|MemAvailable)' /proc/meminfo | tr -s ' ' | tr '\n' ' ')"

hostcmd resize vm0 0 >/dev/null
sleep 20
left=$(hostcmd size vm0)
diag "plugged after 20 s under pressure: $left bytes; deferred $(rs_field deferred_pressure) times"
check "the driver put unplugging off for memory pressure" [ "$(rs_field deferred_pressure)" -gt 0 ]
diag "deferred_last: $(rs_field deferred_last)"
check "the status says what it put off, and why" sh -c "sed -n 's/^deferred_last: //p' $RS_STATUS | grep -Eq '^[0-9]+ bytes, [1-9][0-9]* in use, with [0-9]+ available$'"
check "it did not take memory the program needs (some stays plugged)" [ "$left" -gt 0 ]
check "no page allocation failure" sh -c "! dmesg | grep -q 'page allocation failure'"
check "no OOM kill" sh -c "! dmesg | grep -q 'Out of memory'"
res=$(memhog_verify)
check "the program's data is intact" sh -c "echo '$res' | grep -q ' corrupted 0$'"
memhog_stop
check_eq "the program exits clean" 0 "$?"

# With the memory free again, a later retry finishes the job.
t=$(hostcmd wait-size vm0 0 180) && ok "unplugged once memory was free again (${t} s)" || not_ok "unplugged once memory was free again"
wait_memtotal "$kb0" 30
check_eq "MemTotal is back" "$kb0" "$(memtotal_kb)"
check "rmmod $(vmem_module)" rmmod "$(vmem_module)"
ktap_finish
