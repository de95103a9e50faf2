#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: upstream kselftest memory-hotplug/mem-on-off-test.sh, run as-is with virtio-mem memory online
# qemu: --vmem id=vm0,size=8G
# drivers: c rust
# timeout: 300
# The upstream test prints no KTAP: its exit status is the result (0 pass,
# 4 skip) and its output becomes diagnostics. It calls /sbin/modprobe for the
# memory notifier error injector; busybox lives in /bin here.
. /tests/lib.sh

[ -e /sbin/modprobe ] || ln -s /bin/busybox /sbin/modprobe
echo online_movable > $MEMDIR/auto_online_blocks
check "modprobe $(vmem_module)" modprobe "$(vmem_module)"
hostcmd resize vm0 "$(mib 512)" >/dev/null
check "plug 512 MiB to ZONE_MOVABLE" hostcmd wait-size vm0 "$(mib 512)" 120
wait_for 30 '[ "$(grep -l online $MEMDIR/memory*/state | wc -l)" -ge 12 ]'
diag "online blocks: $(grep -l online $MEMDIR/memory*/state | wc -l)"

bash /tests/upstream/mem-on-off-test.sh >/tmp/mem-on-off.out 2>&1
rc=$?
sed 's/^/# /' /tmp/mem-on-off.out
case $rc in
0) ok "mem-on-off-test.sh passes" ;;
4) skip "mem-on-off-test.sh" "the test skipped itself (exit 4)" ;;
*) not_ok "mem-on-off-test.sh passes (exit $rc)" ;;
esac
if grep -q "skip extra tests" /tmp/mem-on-off.out; then
	not_ok "its notifier error injection part ran"
else
	check "its notifier error injection part ran" grep -q "Test with memory notifier error injection" /tmp/mem-on-off.out
fi
check_eq "all memory is online again afterwards" 0 "$(grep -l offline $MEMDIR/memory*/state | wc -l)"
ktap_finish
