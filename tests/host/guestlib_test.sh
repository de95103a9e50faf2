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

check "migrated_once: each page once" migrated_once 100 100
check "migrated_once: a tenth more" migrated_once 100 110
if migrated_once 100 99; then not_ok "migrated_once: a page left behind fails"; else ok "migrated_once: a page left behind fails"; fi
if migrated_once 100 111; then not_ok "migrated_once: more than a tenth more fails"; else ok "migrated_once: more than a tenth more fails"; fi
if migrated_once 100 ""; then not_ok "migrated_once: no count fails"; else ok "migrated_once: no count fails"; fi

out=$(check_eq "x" a b)
check "check_eq reports not ok on a mismatch" sh -c "echo '$out' | grep -q '^not ok'"
check "gib/mib compute bytes" [ "$(gib 1) $(mib 3)" = "1073741824 3145728" ]

# ksft_relay/ksft_run: a kselftest's results become scenario results, skips
# stay skips, and a short plan or a bad exit status fails.
relay() { (KTAP_N=0 KTAP_FAILED=0; printf '%s\n' "$@" | { ksft_relay; echo "plan=$KSFT_PLAN seen=$KSFT_SEEN"; }); }
out=$(relay "TAP version 13" "1..3" "ok 1 a" "ok 2 b # SKIP no device" "not ok 3 c" "# note")
check_eq "ksft_relay renumbers a pass" "ok 1 a" "$(echo "$out" | sed -n 1p)"
check_eq "ksft_relay keeps a skip a skip, with its reason" "ok 2 b # SKIP no device" "$(echo "$out" | sed -n 2p)"
check_eq "ksft_relay relays a failure" "not ok 3 c" "$(echo "$out" | sed -n 3p)"
check_eq "ksft_relay passes diagnostics through and counts" "# note|plan=3 seen=3" "$(echo "$out" | sed -n '4,5p' | tr '\n' '|' | sed 's/|$//')"
out=$(relay "1..0 # SKIP must be run as root")
check_eq "a kselftest that skips everything is one skip" "ok 1 kselftest # SKIP must be run as root" "$(echo "$out" | sed -n 1p)"
mkdir -p "$tmp/suite"
printf '#!/bin/sh\necho 1..2\necho ok 1 a\n' >"$tmp/suite/short.sh"
printf '#!/bin/sh\necho 1..1\necho ok 1 a\nexit 1\n' >"$tmp/suite/badexit.sh"
printf '#!/bin/sh\necho 1..1\necho "ok 1 a # SKIP why"\nexit 4\n' >"$tmp/suite/skip.sh"
chmod +x "$tmp"/suite/*.sh
run() { (KTAP_N=0 KTAP_FAILED=0 KSFT_ROOT=$tmp; ksft_run "$1" >"$tmp/out" 2>&1; echo "failed=$KTAP_FAILED"); }
check_eq "ksft_run fails a kselftest that stops short of its plan" "failed=1" "$(run suite/short.sh)"
check "...naming the plan" grep -q "^not ok .*short.sh ran its plan" "$tmp/out"
check_eq "ksft_run fails a kselftest that exits 1 with no failed result" "failed=1" "$(run suite/badexit.sh)"
check_eq "ksft_run takes exit 4 with skips as a clean run" "failed=0" "$(run suite/skip.sh)"
check "...and relays the skip" grep -q "^ok 1 a # SKIP why" "$tmp/out"
ktap_finish
