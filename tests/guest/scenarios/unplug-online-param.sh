#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: unplug_online=0 keeps online memory plugged until it is offlined by hand
# qemu: --vmem id=vm0,size=4G
# drivers: c rust
# timeout: 300
. /tests/lib.sh

echo online_movable > $MEMDIR/auto_online_blocks
blocks >/tmp/b0
check "modprobe $(vmem_module) unplug_online=0" modprobe "$(vmem_module)" unplug_online=0
hostcmd resize vm0 "$(mib 256)" >/dev/null
check "plug 256 MiB" hostcmd wait-size vm0 "$(mib 256)" 120
hostcmd resize vm0 0 >/dev/null
sleep 3
check_eq "online memory stays plugged" "$(mib 256)" "$(hostcmd size vm0)"
for b in $(blocks | grep -vxF -f /tmp/b0); do
	echo offline > $MEMDIR/memory$b/state || not_ok "offline memory$b"
done
t=$(hostcmd wait-size vm0 0 120) && ok "offlined memory is unplugged (${t} s)" || not_ok "offlined memory is unplugged"
wait_for 30 '[ "$(blocks | grep -cvxF -f /tmp/b0)" = 0 ]'
check_eq "and removed" 0 "$(blocks | grep -cvxF -f /tmp/b0)"
check "rmmod $(vmem_module)" rmmod "$(vmem_module)"
ktap_finish
