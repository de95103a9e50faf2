#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Every write the memory block "state" file accepts (online, online_kernel,
# online_movable, offline) and rejects, with the exact error codes of
# drivers/base/memory.c in Linux 7.3, and "valid_zones" before and after each
# transition, checked against the zone rules of mm/memory_hotplug.c.
#
# Part 1 needs nothing but memory hotplug: boot memory blocks.
# Part 2 plugs six memory blocks with a virtio-mem device (VIRTIO_MEM_RESIZE)
# and walks them through the transitions that produce each valid_zones case.

. "$(dirname "$0")/lib.sh"

ktap_print_header
require_root
ktap_set_plan 51

# --- part 1: boot memory --------------------------------------------------------
first=$(blocks | head -1)
online_boot=$(for b in $(blocks); do [ "$(state $b)" = online ] && echo $b; done)
if zones_overlap; then
	skip "valid_zones of online boot blocks match the zone map" \
		"zone spans overlap (hot-added memory): no zone map to compare with"
else
	bad=0 spanning=
	for b in $online_boot; do
		want=$(zone_model boot $b)
		[ "$want" = none ] && spanning="$spanning $b"
		[ "$(zones $b)" = "$want" ] || {
			ktap_print_msg "memory$b: valid_zones '$(zones $b)', zone map says '$want'"
			bad=1
		}
	done
	check_eq "valid_zones of online boot blocks match the zone map" 0 "$bad"
fi
# A block that spans two zones has no zone (mem->zone == NULL): valid_zones
# says "none" and memory_block_offline() refuses with -EINVAL.
span=$(echo $spanning | awk '{ print $1 }')
if [ -n "$span" ]; then
	ktap_print_msg "memory$span spans several zones"
	check_eq "a block spanning zones shows valid_zones 'none'" none "$(zones $span)"
	# Never try to offline boot memory the kernel thinks it can offline.
	if [ "$(zones $span)" = none ]; then
		check_eq "offlining it fails with EINVAL" EINVAL "$(set_state $span offline)"
		check_eq "...and it stays online" online "$(state $span)"
	else
		why="not tried: valid_zones is not 'none'"
		ktap_test_fail "offlining it fails with EINVAL ($why)"
		ktap_test_fail "...and it stays online"
	fi
else
	why="no memory block spans two zones"
	why="$why (x86: needs CONFIG_ZONE_DMA for memory0, or movablecore=)"
	for t in "a block spanning zones shows valid_zones 'none'" \
		"offlining it fails with EINVAL" "...and it stays online"; do
		skip "$t" "$why"
	done
fi
# Writes that are refused before anything happens: -EINVAL from
# mhp_online_type_from_str() (sysfs_streq: exact, case-sensitive, one
# optional trailing newline) or from device_online() on an online block.
b=$first
z0=$(zones $b)
for s in foo ONLINE "online " 1 ""; do
	check_eq "writing '$s' to an online block: EINVAL" EINVAL "$(set_state $b "$s")"
done
check_eq "writing 'online' to an online block: EINVAL" EINVAL "$(set_state $b online)"
check_eq "writing 'online_movable' to an online block: EINVAL" EINVAL \
	"$(set_state $b online_movable)"
check_eq "the block is unchanged" "online $z0" "$(state $b) $(zones $b)"

# --- part 2: six hot-plugged blocks ------------------------------------------------
save_params
blocks >/tmp/mhp-state.$$
mhp_cleanup() {
	unplug_all /tmp/mhp-state.$$
	restore_params
	rm -f /tmp/mhp-state.$$
}
require_virtio_mem
echo offline > $MEMDIR/auto_online_blocks
echo contig-zones > $MHP_PARAMS/online_policy 2>/dev/null
vmem_resize 0 || bail "the device unplugs everything before the test"
vmem_resize $((6 * $(block_size))) || bail "plug six memory blocks"
wait_blocks /tmp/mhp-state.$$ 6 offline
set -- $(new_blocks /tmp/mhp-state.$$)
[ $# = 6 ] || bail "six new memory blocks (got $#)"
B0=$1 B1=$2 B2=$3 B3=$4 B4=$5 B5=$6
ktap_print_msg "new blocks: $*"
ALL="$*"

# check_all STEP: valid_zones of all six against the model (online blocks
# against the zone they were onlined to, recorded in Z_<block>).
check_all() {
	_bad=0
	for _b in $ALL; do
		if [ "$(state $_b)" = online ]; then
			eval _w=\$Z_$_b
		else
			_w=$(zone_model valid_zones $_b)
		fi
		[ "$(zones $_b)" = "$_w" ] || {
			_m="memory$_b ($(state $_b)):"
			ktap_print_msg "$_m valid_zones '$(zones $_b)', expected '$_w'"
			_bad=1
		}
	done
	check_eq "valid_zones of all six blocks $1" 0 "$_bad"
}
# go BLOCK TYPE: a write that must succeed and put BLOCK in the predicted zone.
go() {
	_want=$(zone_model "$2" "$1")
	check_eq "$2 memory$1: OK" OK "$(set_state "$1" "$2")"
	check_eq "memory$1 is online in $_want" "online $_want" "$(state $1) $(zones $1)"
	eval Z_$1=\$_want
}

# "offline" six times, space separated
all_offline=$(printf 'offline %.0s' 1 2 3 4 5 6)
check_eq "hot-added blocks are offline" "${all_offline% }" \
	"$(for b in $ALL; do state $b; done | tr '\n' ' ' | sed 's/ $//')"
check_all "when all are offline"
go $B1 online_movable
check_all "after onlining one to ZONE_MOVABLE"
go $B4 online_movable
check_all "after a second ZONE_MOVABLE block above"
# B2 lies inside ZONE_MOVABLE's span and in no kernel zone: the default zone
# is Movable, listed first.
if [ "$(zone_model valid_zones $B2)" = "Movable Normal" ]; then
	check_eq "an offline block inside ZONE_MOVABLE's span: 'Movable Normal'" "Movable Normal" \
		"$(zones $B2)"
else
	skip "an offline block inside ZONE_MOVABLE's span: 'Movable Normal'" \
		"a kernel zone other than Normal spans memory$B2"
fi
go $B2 online
for s in online online_kernel online_movable; do
	check_eq "$s on online memory$B2: EINVAL" EINVAL "$(set_state $B2 $s)"
done
check_eq "memory$B2 is unchanged" "online Movable" "$(state $B2) $(zones $B2)"
check_eq "offline memory$B2: OK" OK "$(set_state $B2 offline)"
check_eq "memory$B2 is offline" offline "$(state $B2)"
check_eq "offline again: EINVAL" EINVAL "$(set_state $B2 offline)"
for s in foo OFFLINE "online_movable " 2; do
	check_eq "writing '$s' to offline memory$B2: EINVAL" EINVAL "$(set_state $B2 "$s")"
done
check_eq "memory$B2 is still offline" offline "$(state $B2)"
check_all "after offlining the middle block"
# Zones may overlap since Linux 5.12: online_kernel inside ZONE_MOVABLE's span.
go $B2 online_kernel
check_all "after onlining to the kernel zone inside ZONE_MOVABLE's span"
go $B5 online_kernel
# B3 now intersects both ZONE_MOVABLE (B1..B4) and the kernel zone (B2..B5):
# default_zone_for_pfn() picks the kernel zone unless movable_node is set.
if [ "$(movable_node)" = 0 ] && [ "$(zone_model valid_zones $B3)" = "Normal Movable" ]; then
	check_eq "an offline block in both spans: 'Normal Movable'" "Normal Movable" "$(zones $B3)"
else
	skip "an offline block in both spans: 'Normal Movable'" \
		"movable_node is set or the kernel zone is not Normal"
fi
check_all "with a block in both spans"
check_eq "offline ZONE_MOVABLE memory$B4: OK" OK "$(set_state $B4 offline)"
check_all "after ZONE_MOVABLE shrank"
go $B3 online_movable
check_all "after onlining to ZONE_MOVABLE inside the kernel zone's span"
go $B0 online_kernel
check_all "at the end"

mhp_cleanup
ktap_finished
