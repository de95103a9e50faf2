#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Offlining memory blocks while a program holds and verifies data in them.
#
# ZONE_MOVABLE holds only movable pages: offlining migrates them, and the
# program finds its data intact, now outside the block. A kernel zone may hold
# unmovable allocations; Documentation/admin-guide/mm/memory-hotplug.rst says
# offlining then fails and the block stays online ("Device or resource busy").
# The test puts slab pages (tmpfs inodes and dentries) into a kernel-zone
# block, confirms them with /proc/kpageflags, and asserts that offlining
# fails with EBUSY: has_unmovable_pages() makes start_isolate_page_range()
# fail, which offline_pages() returns.
#
# Needs VIRTIO_MEM_RESIZE to plug three memory blocks.

. "$(dirname "$0")/lib.sh"

ktap_print_header
require_root
ktap_set_plan 16

save_params
blocks >/tmp/mhp-load.$$
H1=/tmp/mhp-load.$$.h1
H2=/tmp/mhp-load.$$.h2
FILES=/tmp/mhp-load.$$.fs
mhp_cleanup() {
	touch $H1/stop $H2/stop 2>/dev/null
	wait
	umount $FILES 2>/dev/null
	rm -rf $H1 $H2 $FILES /tmp/mhp-load.$$
	unplug_all /tmp/mhp-load.$$
	restore_params
}
require_virtio_mem
echo offline > $MEMDIR/auto_online_blocks
vmem_resize 0 || bail "the device unplugs everything before the test"
vmem_resize $((3 * $(block_size))) && wait_blocks /tmp/mhp-load.$$ 3 offline ||
	bail "plug three memory blocks"
set -- $(new_blocks /tmp/mhp-load.$$)
A=$1 B=$2 K=$3
ktap_test_pass "plug three memory blocks ($A $B $K)"

# in_block BLOCK PFNFILE: how many PFNs of PFNFILE lie in BLOCK.
in_block() {
	awk -v s="$(block_start_pfn $1)" -v n="$(pages_per_block)" \
		'$1 >= s && $1 < s + n { c++ } END { print c + 0 }' "$2"
}
# hold DIR MIB: start mhp_hold and wait until its data is in place.
hold() {
	mkdir -p "$1"
	"$MHP_DIR/mhp_hold" "$2" "$1" &
	HOLD_PID=$!
	wait_until 120 test -e "$1/ready"
}
# verify DIR: "pages N corrupted M" after a full check (DIR/pfns refreshed).
verify() {
	rm -f "$1/result"
	touch "$1/verify"
	wait_until 120 test -e "$1/result" && cat "$1/result"
}
# offline BLOCK: offline it, giving up (EINTR) after 120 s.
offline() { timeout 120 "$MHP_DIR/mhp_write" $MEMDIR/memory$1/state "offline$NL"; }

check_eq "online_movable memory$A and memory$B" "OK OK" \
	"$(set_state $A online_movable) $(set_state $B online_movable)"
# Movable allocations take ZONE_MOVABLE first: the data lands in A and B.
hold $H1 192
P1=$HOLD_PID
ina=$(in_block $A $H1/pfns) inb=$(in_block $B $H1/pfns)
ktap_print_msg "the program's pages: $ina in memory$A, $inb in memory$B"
check "the program holds data in memory$A" [ "$ina" -gt 0 ]
check_eq "offline memory$A (ZONE_MOVABLE) under load: OK" OK "$(offline $A)"
check_eq "memory$A is offline" offline "$(state $A)"
r=$(verify $H1)
ktap_print_msg "after offlining memory$A: $r"
check_eq "the data is intact after offlining" "corrupted 0" "${r#pages * }"
check_eq "none of it is left in memory$A (it migrated)" 0 "$(in_block $A $H1/pfns)"
check_eq "offline memory$B (ZONE_MOVABLE) under load: OK" OK "$(offline $B)"
r=$(verify $H1)
check_eq "the data is intact and out of memory$B" "corrupted 0 in block 0" \
	"${r#pages * } in block $(in_block $B $H1/pfns)"

# Kernel zone: with ZONE_MOVABLE empty, movable and unmovable allocations
# alike prefer the kernel-zone block over the boot memory below it.
kz=$(zone_model online_kernel $K)
check_eq "online_kernel memory$K: in $kz" "OK $kz" "$(set_state $K online_kernel) $(zones $K)"
hold $H2 64
P2=$HOLD_PID
ink=$(in_block $K $H2/pfns)
ktap_print_msg "the program's pages in memory$K: $ink"
check "the program holds data in memory$K" [ "$ink" -gt 0 ]
mkdir -p $FILES && mount -t tmpfs none $FILES && (cd $FILES && seq 20000 | xargs touch)
slab=$(dd if=/proc/kpageflags bs=4096 skip=$(($(block_start_pfn $K) * 8 / 4096)) \
	count=$(($(pages_per_block) * 8 / 4096)) 2>/dev/null | od -An -v -tu8 |
	awk '{ for (i = 1; i <= NF; i++) if (int($i / 128) % 2) c++ } END { print c + 0 }')
ktap_print_msg "slab pages (KPF_SLAB) in memory$K after creating 20000 tmpfs files: $slab"
check "unmovable kernel allocations landed in memory$K" [ "$slab" -gt 0 ]
if [ "$slab" -gt 0 ]; then
	check_eq "offline memory$K (kernel zone, slab pages): EBUSY" EBUSY "$(offline $K)"
else
	skip "offline memory$K (kernel zone, slab pages): EBUSY" "no slab page in the block"
fi
check_eq "memory$K stays online in $kz" "online $kz" "$(state $K) $(zones $K)"
r=$(verify $H2)
check_eq "the data in memory$K is intact" "corrupted 0" "${r#pages * }"
touch $H1/stop $H2/stop
rc=0
wait $P1 || rc=1
wait $P2 || rc=1
check_eq "both programs exit clean after a last check" 0 "$rc"

mhp_cleanup
ktap_finished
