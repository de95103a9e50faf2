#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# virtio-mem and memory blocks (VIRTIO_MEM_RESIZE resizes the device):
#
# - Sub-Block Mode: a memory block only half plugged onlines to ZONE_MOVABLE
#   (only the plugged half counts in MemTotal), offlines, onlines again;
#   unplugged, it disappears from sysfs. Online ZONE_MOVABLE blocks
#   disappear too when their memory is unplugged.
#
# - The driver's memory notifier refuses MEM_GOING_ONLINE for a block whose
#   memory is unplugged (virtio_mem_sbm_notify_going_online() -> NOTIFY_BAD,
#   which online_pages() returns as -EPERM). The driver marks an offline
#   block unplugged and drops its hotplug mutex before removing it, "so any
#   pending GOING_ONLINE requests can be serviced/rejected": an onlining that
#   waits at that moment is refused. To reach the window from user space
#   without onlining the block earlier, the memory notifier error injector
#   (CONFIG_MEMORY_NOTIFIER_ERROR_INJECT), registered after the driver,
#   fails every MEM_GOING_ONLINE the driver accepted with -ENOMEM. mhp_write
#   then tries to online the blocks again and again while the device unplugs
#   them: the error code tells who refused, ENOMEM the injector (the driver
#   accepted: memory plugged), EPERM the driver (memory unplugged), ENODEV
#   the block is gone.

. "$(dirname "$0")/lib.sh"

ktap_print_header
require_root
ktap_set_plan 15

save_params
blocks >/tmp/mhp-vm.$$
DEBUGFS=$(awk '$3 == "debugfs" { print $2; exit }' /proc/mounts)
INJ=$DEBUGFS/notifier-error-inject/memory/actions/MEM_GOING_ONLINE/error
PRINTK=$(cat /proc/sys/kernel/printk | awk '{ print $1 }')
mhp_cleanup() {
	[ -w "$INJ" ] && echo 0 > "$INJ"
	modprobe -q -r memory-notifier-error-inject 2>/dev/null
	echo "$PRINTK" > /proc/sys/kernel/printk
	unplug_all /tmp/mhp-vm.$$
	restore_params
	rm -f /tmp/mhp-vm.$$ /tmp/mhp-vm.$$.race
}
require_virtio_mem
echo offline > $MEMDIR/auto_online_blocks
vmem_resize 0 || bail "the device unplugs everything before the test"
bs=$(block_size)
kb0=$(memtotal_kb)
gone() { [ "$(nr_new_blocks /tmp/mhp-vm.$$)" = 0 ]; }

# --- Sub-Block Mode: a partially plugged block ---------------------------------------
# The device block size says which mode the driver is in: Sub-Block Mode when it is
# smaller than a memory block. Then plugging half a block must work.
if [ -z "${VIRTIO_MEM_BLOCK_SIZE:-}" ]; then
	SBM=unknown why="VIRTIO_MEM_BLOCK_SIZE not set (the device block size)"
	ktap_print_msg "$why"
elif [ $((VIRTIO_MEM_BLOCK_SIZE)) -lt "$bs" ]; then
	SBM=1
else
	SBM=0 why="Big Block Mode: the device block size $((VIRTIO_MEM_BLOCK_SIZE))"
	why="$why is not below the memory block size $bs"
fi
msg="device block size ${VIRTIO_MEM_BLOCK_SIZE:-unknown}, memory block size $bs"
ktap_print_msg "$msg: Sub-Block Mode $SBM"
if [ $SBM = 1 ]; then
	vmem_resize $((bs / 2)) || bail "Sub-Block Mode: the device plugs half a memory block"
	wait_blocks /tmp/mhp-vm.$$ 1 offline
	b=$(new_blocks /tmp/mhp-vm.$$)
	check_eq "half a block plugged: one new block, offline" "1 offline" \
		"$(nr_new_blocks /tmp/mhp-vm.$$) $(state $b)"
	check_eq "offline memory does not count in MemTotal" "$kb0" "$(memtotal_kb)"
	check_eq "online_movable the partially plugged block" "OK Movable" \
		"$(set_state $b online_movable) $(zones $b)"
	check_eq "MemTotal grew by the plugged half only" $((kb0 + bs / 2048)) "$(memtotal_kb)"
	check_eq "offline it: OK, MemTotal back" "OK $kb0" "$(set_state $b offline) $(memtotal_kb)"
	check_eq "online_movable and offline it again" "OK Movable OK offline" \
		"$(set_state $b online_movable) $(zones $b) $(set_state $b offline) $(state $b)"
	vmem_resize 0 && wait_until 30 gone
	check "unplugged, the block disappears from sysfs" gone
else
	for t in "half a block plugged: one new block, offline" \
		"offline memory does not count in MemTotal" \
		"online_movable the partially plugged block" \
		"MemTotal grew by the plugged half only" \
		"offline it: OK, MemTotal back" "online_movable and offline it again" \
		"unplugged, the block disappears from sysfs"; do
		skip "$t" "$why"
	done
fi

# --- online blocks go away when unplugged -----------------------------------------
echo online_movable > $MEMDIR/auto_online_blocks
if [ $SBM = unknown ] || { [ $SBM = 0 ] && [ $((2 * bs % VIRTIO_MEM_BLOCK_SIZE)) != 0 ]; }; then
	if [ $SBM = 0 ]; then
		why="the device cannot plug two memory blocks"
		why="$why (its block size $((VIRTIO_MEM_BLOCK_SIZE)) is larger)"
	fi
	for t in "two blocks plugged and onlined to ZONE_MOVABLE" \
		"unplugged, the online blocks disappear from sysfs" "MemTotal is back"; do
		skip "$t" "$why"
	done
elif vmem_resize $((2 * bs)) && wait_blocks /tmp/mhp-vm.$$ 2 online; then
	check_eq "two blocks plugged and onlined to ZONE_MOVABLE" "Movable Movable" \
		"$(for b in $(new_blocks /tmp/mhp-vm.$$); do zones $b; done |
			tr '\n' ' ' | sed 's/ $//')"
	vmem_resize 0 && wait_until 30 gone
	check "unplugged, the online blocks disappear from sysfs" gone
	check_eq "MemTotal is back" "$kb0" "$(memtotal_kb)"
else
	bail "plug two memory blocks"
fi

# --- the driver refuses to online unplugged memory --------------------------------
echo offline > $MEMDIR/auto_online_blocks
[ $SBM = 0 ] && why="Big Block Mode: the driver adds only plugged memory, it has no such veto"
[ $SBM = 1 ] &&
	why="no memory notifier error injection (CONFIG_MEMORY_NOTIFIER_ERROR_INJECT, debugfs)"
if [ $SBM != 1 ] || [ -z "$DEBUGFS" ] ||
	! modprobe -q memory-notifier-error-inject priority=-1 2>/dev/null || [ ! -w "$INJ" ]; then
	for t in "every round plugged one offline block" \
		"the driver accepts onlining plugged memory (the injector refuses: ENOMEM)" \
		"no onlining succeeded while the device unplugged the blocks" \
		"the driver refused onlining unplugged memory with EPERM" \
		"every block is gone after its unplug"; do
		skip "$t" "$why"
	done
	mhp_cleanup
	ktap_finished
fi
# The injector logs every injection at KERN_INFO: keep that off the console
# (warnings and errors still reach it).
echo 5 > /proc/sys/kernel/printk
echo -12 > "$INJ"
# The window is short (the driver removes the block as soon as it can take
# the device hotplug lock): try up to ROUNDS blocks, one at a time.
ROUNDS=${VIRTIO_MEM_VETO_ROUNDS:-10}
: >/tmp/mhp-vm.$$.race
round=0 accepted= plugfail=0
while [ $round -lt $ROUNDS ] && ! grep -q ' EPERM\*' /tmp/mhp-vm.$$.race; do
	round=$((round + 1))
	vmem_resize $bs && wait_blocks /tmp/mhp-vm.$$ 1 offline || { plugfail=1; break; }
	b=$(new_blocks /tmp/mhp-vm.$$)
	[ -z "$accepted" ] && accepted="$(set_state $b online) $(state $b)"
	"$MHP_DIR/mhp_write" -l 60 "online$NL" $MEMDIR/memory$b/state >>/tmp/mhp-vm.$$.race &
	sleep 0.3
	vmem_resize 0 || echo "resize to 0 failed" >>/tmp/mhp-vm.$$.race
	wait
	wait_until 30 gone || echo "memory$b still present" >>/tmp/mhp-vm.$$.race
done
check_eq "every round plugged one offline block" 0 "$plugfail"
check_eq "the driver accepts onlining plugged memory (the injector refuses: ENOMEM)" \
	"ENOMEM offline" "$accepted"
while read -r l; do ktap_print_msg "  $l"; done </tmp/mhp-vm.$$.race
ktap_print_msg "$round round(s)"
check_eq "no onlining succeeded while the device unplugged the blocks" 0 \
	"$(grep -c ' OK\*' /tmp/mhp-vm.$$.race)"
check "the driver refused onlining unplugged memory with EPERM" \
	grep -q ' EPERM\*' /tmp/mhp-vm.$$.race
ngone=$(grep -cE ' (ENODEV|ENOENT)\*1$' /tmp/mhp-vm.$$.race)
check_eq "every block is gone after its unplug" "$round 0" \
	"$ngone $(grep -cv '^/' /tmp/mhp-vm.$$.race)"

mhp_cleanup
ktap_finished
