#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# online_policy=auto-movable with auto_movable_ratio: the zone of every memory
# block a virtio-mem device adds, compared with the rule of
# Documentation/admin-guide/mm/memory-hotplug.rst as mm/memory_hotplug.c
# implements it (auto_movable_zone_for_pfn(), auto_movable_can_online_movable()).
#
# For a virtio-mem device in Sub-Block Mode each memory block is a unit of
# its dynamic memory group. A block goes to ZONE_MOVABLE if, after adding it,
#
#   MOVABLE <= ratio / 100 * (KERNEL_EARLY + kernel memory of the group)
#
# for the whole system and, with auto_movable_numa_aware, for its node, where
# MOVABLE is the present memory of ZONE_MOVABLE (plus CMA) and KERNEL_EARLY
# the boot memory of the kernel zones: kernel memory of the same virtio-mem
# device allows for more ZONE_MOVABLE memory in it. With the default ratio of
# 301, a VM with 1 GiB gets its first 3 GiB hot-plugged to ZONE_MOVABLE, then
# one block in four to a kernel zone.
#
# Assumes no other dynamic memory group (a second virtio-mem device) has
# memory and no memory was hot-added to a kernel zone before the test (their
# present pages are not "early"). AUTO_MOVABLE_RATIO overrides the ratio
# (default 301); AUTO_MOVABLE_MAX_BLOCKS caps the blocks plugged (default 64).

. "$(dirname "$0")/lib.sh"

ktap_print_header
require_root
ktap_set_plan 12

RATIO=${AUTO_MOVABLE_RATIO:-301}
MAXB=${AUTO_MOVABLE_MAX_BLOCKS:-64}
save_params
mhp_cleanup() { restore_params; }

if [ ! -w $MHP_PARAMS/online_policy ]; then
	skip_rest "no $MHP_PARAMS/online_policy"
fi
# set_online_policy(): sysfs_match_string() -> -EINVAL; the ratio is a uint.
check_eq "online_policy refuses 'auto_movable' with EINVAL" EINVAL \
	"$(sysfs_write $MHP_PARAMS/online_policy auto_movable)"
check_eq "auto_movable_ratio refuses '-1' with EINVAL" EINVAL \
	"$(sysfs_write $MHP_PARAMS/auto_movable_ratio -1)"
check_eq "online_policy accepts 'auto-movable'" "OK auto-movable" \
	"$(sysfs_write $MHP_PARAMS/online_policy auto-movable) $(cat $MHP_PARAMS/online_policy)"
check_eq "auto_movable_ratio accepts $RATIO" "OK $RATIO" \
	"$(sysfs_write $MHP_PARAMS/auto_movable_ratio $RATIO) $(cat $MHP_PARAMS/auto_movable_ratio)"

blocks >/tmp/mhp-am.$$
mhp_cleanup() {
	unplug_all /tmp/mhp-am.$$
	restore_params
	rm -f /tmp/mhp-am.$$ /tmp/mhp-am.$$.stats
}
require_virtio_mem
NUMA_AWARE=$(cat $MHP_PARAMS/auto_movable_numa_aware 2>/dev/null || echo N)
echo offline > $MEMDIR/auto_online_blocks
vmem_resize 0 || bail "the device unplugs everything before the test"

# "NODE KERNEL_EARLY MOVABLE" per node and "all ..." for the system, in pages.
awk '
$1 == "Node" { node = $2; sub(",", "", node); zone = $4; next }
$1 == "present" { if (zone == "Movable") m[node] += $2; else if (zone != "Device") k[node] += $2 }
$1 == "cma" { k[node] -= $2; m[node] += $2 }
END { for (n in k) { print n, k[n], m[n]; K += k[n]; M += m[n] } print "all", K, M }
' /proc/zoneinfo >/tmp/mhp-am.$$.stats
stat_of() { awk -v n="$1" -v f="$2" '$1 == n { print $f }' /tmp/mhp-am.$$.stats; }
P=$(pages_per_block)
msg="kernel early/movable pages: $(tr '\n' ';' </tmp/mhp-am.$$.stats)"
ktap_print_msg "ratio $RATIO, numa_aware $NUMA_AWARE, block $P pages; $msg"

# predict NBLOCKS NODE: the zone letters (M or K) of NBLOCKS blocks added in
# turn to one new group on NODE ("" = ignore the node).
predict() {
	awk -v nb="$1" -v r="$RATIO" -v P="$P" -v K="$(stat_of all 2)" -v M="$(stat_of all 3)" \
	    -v nk="$([ -n "$2" ] && stat_of "$2" 2)" -v nm="$([ -n "$2" ] && stat_of "$2" 3)" \
	    -v aware="$([ -n "$2" ] && [ "$NUMA_AWARE" = Y ] && echo 1)" '
	function can(k, m) { return k > 0 && m + gm + P <= int(r * (k + gk) / 100) }
	BEGIN {
		for (i = 0; i < nb; i++) {
			if (can(K, M) && (!aware || can(nk, nm))) { s = s "M"; gm += P }
			else { s = s "K"; gk += P }
		}
		print s
	}'
}
# Plug enough to show the pattern: up to the second kernel block and the
# movable blocks after it (stop before a third kernel block).
plan=$(predict $MAXB "")
n=$(echo "$plan" | awk '{
	k = 0
	for (i = 1; i <= length($0); i++) {
		if (substr($0, i, 1) == "K" && ++k == 3) { print i - 1; exit }
	}
	print length($0)
}')
ktap_print_msg "planned: $n blocks, expected $(echo "$plan" | cut -c1-$n)"

echo online > $MEMDIR/auto_online_blocks
kb0=$(memtotal_kb)
if ! vmem_resize $((n * $(block_size))) 600; then
	bail "plug $n blocks"
fi
ktap_test_pass "plug $n memory blocks"
wait_blocks /tmp/mhp-am.$$ $n online
set -- $(new_blocks /tmp/mhp-am.$$)
check_eq "$n new blocks" "$n" "$#"
states=$(for b in "$@"; do state $b; done | sort -u | tr '\n' ' ')
check_eq "all are online (auto_online_blocks=online)" "online " "$states"
got=$(for b in "$@"; do case "$(zones $b)" in Movable) printf M ;; *) printf K ;; esac; done)
want=$(predict $# "$(block_nodes $1)")
ktap_print_msg "zones in block order (M = Movable, K = kernel zone):"
ktap_print_msg "  expected $want"
ktap_print_msg "  got      $got"
check_eq "the zones follow the auto-movable rule with ratio $RATIO" "$want" "$got"
case "$want" in
*K*M*) check_eq "kernel memory of the device allowed more ZONE_MOVABLE in it" yes \
	"$(case "$got" in *K*M*) echo yes ;; *) echo no ;; esac)" ;;
*) skip "kernel memory of the device allowed more ZONE_MOVABLE in it" \
	"the ratio leaves no movable block after a kernel block" ;;
esac
check_eq "MemTotal grew by the plugged memory" $((kb0 + n * $(block_size) / 1024)) "$(memtotal_kb)"

# An offline block: valid_zones lists first the zone the policy picks now.
echo offline > $MEMDIR/auto_online_blocks
if vmem_resize $(((n + 1) * $(block_size))) && wait_blocks /tmp/mhp-am.$$ $((n + 1)); then
	b=$(new_blocks /tmp/mhp-am.$$ | tail -1)
	kz=$(zone_model online_kernel $b)
	case "$(predict $((n + 1)) "$(block_nodes $b)")" in
	*M) wz="Movable $kz" ;;
	*) wz="$kz Movable" ;;
	esac
	check_eq "an offline block's valid_zones lead with the policy's choice" "$wz" "$(zones $b)"
	check_eq "onlining it with 'online' uses that zone" "OK online ${wz%% *}" \
		"$(set_state $b online) $(state $b) $(zones $b)"
else
	ktap_test_fail "plug one more block offline"
	ktap_test_fail "plug one more block offline"
fi

mhp_cleanup
ktap_finished
