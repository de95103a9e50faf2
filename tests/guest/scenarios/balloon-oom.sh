#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: DEFLATE_ON_OOM: a program that needs more than is free gets it from the balloon, and nothing is OOM-killed
# qemu: --balloon deflate-on-oom=on
# drivers: c rust
# timeout: 300
. /tests/lib.sh

BMOD=$(balloon_module)
check "modprobe $BMOD" modprobe "$BMOD"
kb0=$(memtotal_kb)
ram=$(hostcmd balloon-actual) || bail "query-balloon"
N=640
hostcmd balloon $((ram - (N << 20))) >/dev/null
wait_for 120 '[ "$(meminfo_kb Balloon)" -eq $((N * 1024)) ]'
check_eq "inflated $N MiB" "$((N * 1024))" "$(meminfo_kb Balloon)"
check_eq "with DEFLATE_ON_OOM, MemTotal keeps the inflated pages" "$kb0" "$(memtotal_kb)"

free_mb=$(($(meminfo_kb MemFree) / 1024))
want=$((free_mb + 96))
diag "MemFree ${free_mb} MiB; holding ${want} MiB"
o0=$(vmstat oom_kill)
d0=$(vmstat balloon_deflate)
memhog_start "$want"
check "memhog holds ${want} MiB, more than was free" [ -e "$MEMHOG_DIR/ready" ]
r=$(memhog_verify)
check_eq "memhog's data intact" "pages $((want * 256)) corrupted 0" "$r"
d1=$(vmstat balloon_deflate)
check "the OOM notifier deflated the balloon (balloon_deflate $d0 -> $d1)" [ "$d1" -gt "$d0" ]
check_eq "nothing was OOM-killed" "$o0" "$(vmstat oom_kill)"
check "memhog exits cleanly" memhog_stop
b=$(meminfo_kb Balloon)
check "the balloon shrank ($b kB)" [ "$b" -lt $((N * 1024)) ]
# The driver reports the smaller balloon to the host (`actual`); like the C driver it does not
# refill on its own: the host decides, by setting a new target.
# (Both read anew each time: an OOM deflation may still be finishing.)
wait_for 30 '[ "$(hostcmd balloon-actual)" = "$((ram - $(meminfo_kb Balloon) * 1024))" ]'
check_eq "the host sees the deflated balloon" "$((ram - $(meminfo_kb Balloon) * 1024))" "$(hostcmd balloon-actual)"
hostcmd balloon "$ram" >/dev/null
wait_for 120 '[ "$(meminfo_kb Balloon)" -eq 0 ]'
check_eq "deflated" 0 "$(meminfo_kb Balloon)"
check "rmmod $BMOD" rmmod "$BMOD"
ktap_finish
