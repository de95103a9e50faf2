#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: unplug_online=0 keeps online memory plugged until it is offlined by hand; the parameters in sysfs, unplug_online writable at run time
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

# The same in Big Block Mode. As in C, a request is done once the offline memory is
# unplugged: the worker goes idle instead of retrying the online memory it must not
# take, and offlining memory by hand runs it again.
M=$(vmem_module)
check "bbm: modprobe $M force_bbm=1 unplug_online=0" modprobe "$M" force_bbm=1 unplug_online=0
hostcmd resize vm0 "$(mib 256)" >/dev/null
check "bbm: plug 256 MiB" hostcmd wait-size vm0 "$(mib 256)" 120
hostcmd resize vm0 0 >/dev/null
sleep 3
check_eq "bbm: online memory stays plugged" "$(mib 256)" "$(hostcmd size vm0)"
if [ "$M" = virtio_mem_rs ]; then
	wait_for 10 '[ "$(rs_field worker)" = idle ]'
	check_eq "bbm: the request is done: the worker is idle, no retry pending" "idle 0" \
		"$(rs_field worker) $(rs_field retry_ms)"
fi
for b in $(blocks | grep -vxF -f /tmp/b0); do
	echo offline > $MEMDIR/memory$b/state || not_ok "bbm: offline memory$b"
done
t=$(hostcmd wait-size vm0 0 120) && ok "bbm: offlined memory is unplugged (${t} s)" || not_ok "bbm: offlined memory is unplugged"
wait_for 30 '[ "$(blocks | grep -cvxF -f /tmp/b0)" = 0 ]'
check_eq "bbm: and removed" 0 "$(blocks | grep -cvxF -f /tmp/b0)"
check "bbm: rmmod $M" rmmod "$M"

# The parameters show in sysfs as in C: unplug_online 0644, the others 0444, and
# the worker reads unplug_online on each pass.
P=/sys/module/$M/parameters
check "modprobe $M" modprobe "$M"
check_eq "unplug_online reads Y" Y "$(cat $P/unplug_online)"
check_eq "force_bbm reads N" N "$(cat $P/force_bbm)"
check_eq "bbm_block_size reads 0" 0 "$(cat $P/bbm_block_size)"
check_eq "unplug_online is 0644" "-rw-r--r--" "$(ls -l $P/unplug_online | cut -c1-10)"
check_eq "force_bbm is 0444" "-r--r--r--" "$(ls -l $P/force_bbm | cut -c1-10)"
check "writing force_bbm fails" sh -c "! echo 1 > $P/force_bbm"
check_eq "...and leaves it" N "$(cat $P/force_bbm)"
check "writing unplug_online=maybe fails" sh -c "! echo maybe > $P/unplug_online"
check_eq "...and leaves it" Y "$(cat $P/unplug_online)"
check "unplug_online=0 at run time" sh -c "echo 0 > $P/unplug_online"
check_eq "unplug_online reads N" N "$(cat $P/unplug_online)"
hostcmd resize vm0 "$(mib 256)" >/dev/null
check "plug 256 MiB" hostcmd wait-size vm0 "$(mib 256)" 120
hostcmd resize vm0 0 >/dev/null
sleep 3
check_eq "online memory stays plugged" "$(mib 256)" "$(hostcmd size vm0)"
check "unplug_online=1 at run time" sh -c "echo 1 > $P/unplug_online"
hostcmd resize vm0 "$(mib 128)" >/dev/null
t=$(hostcmd wait-size vm0 "$(mib 128)" 120) && ok "the next request unplugs online memory (${t} s)" || not_ok "the next request unplugs online memory"
hostcmd resize vm0 0 >/dev/null
check "unplug the rest" hostcmd wait-size vm0 0 120
check "rmmod $M" rmmod "$M"
ktap_finish
