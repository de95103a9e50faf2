#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# /sys/devices/system/memory/auto_online_blocks: every value it accepts
# (offline, online, online_kernel, online_movable), an invalid one, and what
# each does to a memory block hot-added by virtio-mem (VIRTIO_MEM_RESIZE).

. "$(dirname "$0")/lib.sh"

ktap_print_header
require_root
ktap_set_plan 17

AUTO=$MEMDIR/auto_online_blocks
save_params
mhp_cleanup() { restore_params; }
for v in offline online online_kernel online_movable; do
	check_eq "auto_online_blocks accepts '$v' and reads it back" "OK $v" \
		"$(sysfs_write $AUTO $v) $(cat $AUTO)"
done
# auto_online_blocks_store(): mhp_online_type_from_str() < 0 -> -EINVAL.
echo online_movable > $AUTO
for v in online_foo Online movable ""; do
	check_eq "auto_online_blocks refuses '$v' with EINVAL" EINVAL "$(sysfs_write $AUTO "$v")"
done
check_eq "...and keeps its value" online_movable "$(cat $AUTO)"

blocks >/tmp/mhp-auto.$$
mhp_cleanup() {
	unplug_all /tmp/mhp-auto.$$
	restore_params
	rm -f /tmp/mhp-auto.$$ /tmp/mhp-auto.$$.seen
}
require_virtio_mem
echo contig-zones > $MHP_PARAMS/online_policy 2>/dev/null
echo offline > $AUTO
vmem_resize 0 || bail "the device unplugs everything before the test"
cp /tmp/mhp-auto.$$ /tmp/mhp-auto.$$.seen
bs=$(block_size)
plugged=0
last=
# Kernel-zone values last: that memory may not unplug again.
for v in offline online_movable online online_kernel; do
	echo $v > $AUTO
	# The next block virtio-mem adds is the one above the last; predict its
	# zone before it exists (the zone spans change once it is online).
	[ -n "$last" ] && want_zone=$(zone_model "$v" $((last + 1)) "$(block_nodes $last)")
	plugged=$((plugged + bs))
	if ! vmem_resize $plugged; then
		ktap_test_fail "auto_online_blocks=$v: the device plugs one more block"
		ktap_test_fail "auto_online_blocks=$v: the new block's state and zone"
		continue
	fi
	st=online
	[ $v = offline ] && st=offline
	wait_blocks /tmp/mhp-auto.$$.seen 1 $st
	new=$(blocks | grep -vxF -f /tmp/mhp-auto.$$.seen)
	blocks >/tmp/mhp-auto.$$.seen
	check_eq "auto_online_blocks=$v: one new block" 1 "$(echo $new | wc -w)"
	b=$(echo $new | awk '{ print $1 }')
	case "$v" in
	offline) want="offline $(zone_model valid_zones $b)" ;;
	*) want="online $want_zone" ;;
	esac
	check_eq "auto_online_blocks=$v: memory$b is '$want'" "$want" "$(state $b) $(zones $b)"
	last=$b
done

mhp_cleanup
ktap_finished
