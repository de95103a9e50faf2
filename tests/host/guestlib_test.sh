#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
# Host tests of the guest scenario library (tests/guest/lib.sh), run under
# busybox ash as in the guest. Prints KTAP.
. "$(dirname "$0")/../guest/lib.sh"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo 0 >"$tmp/v"
(sleep 0.4; echo 1 >"$tmp/v") &
check "wait_for re-evaluates its expression on every poll" wait_for 5 '[ "$(cat $tmp/v)" = 1 ]'
if wait_for 1 false; then not_ok "wait_for gives up after its timeout"; else ok "wait_for gives up after its timeout"; fi

# memtotal_kb reads MemTotal; wait_memtotal compares against it afresh.
kb=$(memtotal_kb)
check "memtotal_kb reads a number" [ "$kb" -gt 0 ]
check "wait_memtotal matches the current MemTotal" wait_memtotal "$kb" 1
if wait_memtotal $((kb + 1)) 1; then not_ok "wait_memtotal fails on a wrong value"; else ok "wait_memtotal fails on a wrong value"; fi

out=$(check_eq "x" a b)
check "check_eq reports not ok on a mismatch" sh -c "echo '$out' | grep -q '^not ok'"
check "gib/mib compute bytes" [ "$(gib 1) $(mib 3)" = "1073741824 3145728" ]
ktap_finish
