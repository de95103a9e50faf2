# SPDX-License-Identifier: GPL-2.0
#
# Shared helpers of the memory-hotplug-zones kselftests. Source it from a test
# in this directory; it sources the kselftest KTAP helpers.
#
# Environment:
#   VIRTIO_MEM_RESIZE  a command taking BYTES [SECONDS]: make the virtio-mem
#                      device under test plug exactly BYTES and return 0 once
#                      it has (waiting at most SECONDS, default 120), non-zero
#                      on failure or timeout. Without it, the tests that
#                      need memory to be plugged or unplugged report SKIP.
#                      See README for an example.
#   VIRTIO_MEM_BLOCK_SIZE  the device block size of that device in bytes (QEMU:
#                      qom-get of its block-size property). It tells which mode
#                      the driver is in, so that a failed plug is a failure and
#                      never taken for Big Block Mode; without it, the tests that
#                      depend on the mode report SKIP.

MHP_DIR=$(cd "$(dirname "$0")" && pwd)
MEMDIR=/sys/devices/system/memory
MHP_PARAMS=/sys/module/memory_hotplug/parameters

# --- KTAP ----------------------------------------------------------------------
# The kselftest helpers, next to us (installed), at ../kselftest (in a kernel
# tree) or named by KTAP_HELPERS.
for _h in "${KTAP_HELPERS:-}" "$MHP_DIR/ktap_helpers.sh" "$MHP_DIR/../kselftest/ktap_helpers.sh"; do
	if [ -n "$_h" ] && [ -f "$_h" ]; then
		. "$_h"
		break
	fi
done
if ! command -v ktap_test_pass >/dev/null 2>&1; then
	echo "# ktap_helpers.sh not found (set KTAP_HELPERS)" >&2
	echo "1..0 # SKIP ktap_helpers.sh not found"
	exit 4
fi

# check DESC CMD...: one result from a command's exit status.
check() {
	_d=$1
	shift
	if "$@"; then ktap_test_pass "$_d"; else ktap_test_fail "$_d"; fi
}

# check_eq DESC EXPECTED ACTUAL
check_eq() {
	if [ "$2" = "$3" ]; then
		ktap_test_pass "$1"
	else
		ktap_print_msg "$1: expected '$2', got '$3'"
		ktap_test_fail "$1"
	fi
}

# skip DESC REASON: a skipped result, "ok N DESC # SKIP REASON".
skip() {
	if command -v __ktap_test >/dev/null 2>&1; then
		__ktap_test ok "$1" "SKIP $2"
		KTAP_CNT_SKIP=$((KTAP_CNT_SKIP + 1))
	else
		ktap_print_msg "SKIP $1: $2"
		ktap_test_skip "$1"
	fi
}

# skip_rest REASON: skip every planned result not reported yet, and finish.
skip_rest() {
	ktap_print_msg "skipping the remaining tests: $1"
	while [ "$KTAP_TESTNO" -le "$KSFT_NUM_TESTS" ]; do
		skip "not run" "$1"
	done
	mhp_cleanup
	ktap_finished
}

# bail REASON: stop after a failure that makes the rest meaningless; the
# remaining planned results are reported failed.
bail() {
	ktap_print_msg "giving up: $1"
	while [ "$KTAP_TESTNO" -le "$KSFT_NUM_TESTS" ]; do
		ktap_test_fail "$1"
	done
	mhp_cleanup
	ktap_finished
}

# Tests override this to restore what they changed.
mhp_cleanup() { :; }

# require_root: skip everything unless we can write sysfs.
require_root() {
	if [ "$(id -u)" != 0 ]; then
		ktap_skip_all "must be run as root"
		exit "$KSFT_SKIP"
	fi
	if [ ! -d "$MEMDIR" ] || [ ! -e "$MEMDIR/block_size_bytes" ]; then
		ktap_skip_all "no memory hotplug (CONFIG_MEMORY_HOTPLUG) or sysfs not mounted"
		exit "$KSFT_SKIP"
	fi
	if ! ls "$MEMDIR"/memory0/valid_zones >/dev/null 2>&1; then
		ktap_skip_all "no valid_zones (CONFIG_MEMORY_HOTREMOVE)"
		exit "$KSFT_SKIP"
	fi
	for _p in mhp_write mhp_hold; do
		if [ ! -x "$MHP_DIR/$_p" ]; then
			ktap_skip_all "$_p not built (run make)"
			exit "$KSFT_SKIP"
		fi
	done
}

# --- sysfs ---------------------------------------------------------------------
# sysfs_write FILE STRING: write STRING (plus a newline, as echo does) and
# print "OK" or the errno name (EINVAL, EBUSY, ...).
NL='
'
sysfs_write() { "$MHP_DIR/mhp_write" "$1" "$2$NL"; }

block_size() { printf '%d\n' "0x$(cat $MEMDIR/block_size_bytes)"; }
PAGE_SIZE=${PAGE_SIZE:-4096}
pages_per_block() { echo $(($(block_size) / PAGE_SIZE)); }
block_start_pfn() { echo $(($1 * $(pages_per_block))); }

blocks() { ls -d $MEMDIR/memory[0-9]* 2>/dev/null | sed 's/.*memory//' | sort -n; }
state() { cat $MEMDIR/memory$1/state 2>/dev/null || echo gone; }
zones() { cat $MEMDIR/memory$1/valid_zones 2>/dev/null || echo gone; }
set_state() { sysfs_write $MEMDIR/memory$1/state "$2"; }
# block_nodes N: the node(s) of memory block N, space separated.
block_nodes() {
	ls -d $MEMDIR/memory$1/node[0-9]* 2>/dev/null | sed 's/.*node//' |
		tr '\n' ' ' | sed 's/ $//'
}
memtotal_kb() { awk '/^MemTotal:/ { print $2 }' /proc/meminfo; }

# new_blocks FILE: blocks present now that are not listed in FILE.
new_blocks() { blocks | grep -vxF -f "$1"; }
nr_new_blocks() { new_blocks "$1" | wc -l; }

# wait_blocks FILE N [STATE]: wait until N blocks not listed in FILE exist
# (and all are in STATE). The device reports memory plugged before the driver
# adds it to Linux, and auto-onlining follows the adding.
_blocks_settled() {
	[ "$(nr_new_blocks "$1")" -eq "$2" ] || return 1
	[ -z "$3" ] && return 0
	for _b in $(new_blocks "$1"); do
		[ "$(state $_b)" = "$3" ] || return 1
	done
}
wait_blocks() { wait_until 30 _blocks_settled "$@"; }

# wait_until SECONDS CMD...: poll CMD every 0.1 s until it succeeds.
wait_until() {
	_t=$(($1 * 10))
	shift
	while [ $_t -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		_t=$((_t - 1))
	done
	"$@"
}

movable_node() { grep -qw movable_node /proc/cmdline && echo 1 || echo 0; }

# --- the zone rules of mm/memory_hotplug.c ---------------------------------------
# zone_model MODE BLOCK: what the kernel's rules predict for offline memory
# block BLOCK on its node, from the zone spans in /proc/zoneinfo:
#   valid_zones      valid_zones of the offline block (default zone first)
#   online           the zone "online" picks (contig-zones policy)
#   online_kernel    the zone "online_kernel" picks
#   online_movable   Movable
#   boot             valid_zones of an online boot memory block: its zone, or
#                    "none" if it spans several populated zones
# NODE (third argument) names the block's node when the block does not exist
# yet, to predict where a block about to be added goes.
# As default_kernel_zone_for_pfn(): the first zone below ZONE_NORMAL that
# intersects the block, else Normal. As default_zone_for_pfn(): the kernel or
# the movable zone if the block intersects exactly one of them, otherwise
# Movable with movable_node, else the kernel zone. valid_zones_show() prints
# the default zone, then the kernel zone and Movable if they differ from it.
zone_model() {
	_n=${3:-$(block_nodes "$2")}
	case "$_n" in
	*" "*) echo none; return ;;	# spans nodes
	esac
	awk -v nid="$_n" -v spfn="$(block_start_pfn "$2")" -v npg="$(pages_per_block)" \
	    -v mode="$1" -v movable_node="$(movable_node)" '
	function intersects(z) {
		if (!(z in spanned) || spanned[z] == 0 || !(z in start))
			return 0
		return !(spfn >= start[z] + spanned[z] || spfn + npg <= start[z])
	}
	$1 == "Node" { node = $2; sub(",", "", node); cur = (node == nid) ? $4 : ""
		if (cur != "") order[n++] = cur; next }
	cur == "" { next }
	$1 == "spanned" { spanned[cur] = $2 }
	$1 == "present" { present[cur] = $2 }
	$1 == "start_pfn:" { start[cur] = $2 }
	END {
		kernel = "Normal"
		for (i = 0; i < n && order[i] != "Normal"; i++)
			if (intersects(order[i])) { kernel = order[i]; break }
		ink = intersects(kernel); inm = intersects("Movable")
		if (ink != inm) def = ink ? kernel : "Movable"
		else def = movable_node ? "Movable" : kernel
		if (mode == "online_kernel") print kernel
		else if (mode == "online_movable") print "Movable"
		else if (mode == "online") print def
		else if (mode == "valid_zones") {
			s = def
			if (kernel != def) s = s " " kernel
			if ("Movable" != def) s = s " Movable"
			print s
		} else if (mode == "boot") {
			m = 0
			for (i = 0; i < n; i++)
				if (present[order[i]] > 0 && intersects(order[i])) {
					m++
					z = order[i]
				}
			print (m == 1) ? z : "none"
		}
	}' /proc/zoneinfo
}

# zones_overlap: true if two populated zones of a node have overlapping spans
# (only hot-added memory does that; the "boot" model needs them disjoint).
zones_overlap() {
	awk '
	$1 == "Node" { node = $2; sub(",", "", node); cur = node "/" $4; next }
	$1 == "spanned" { sp[cur] = $2 }
	$1 == "present" { pr[cur] = $2 }
	$1 == "start_pfn:" { st[cur] = $2 }
	END {
		for (a in st) for (b in st) {
			if (a >= b || pr[a] == 0 || pr[b] == 0) continue
			split(a, x, "/"); split(b, y, "/")
			if (x[1] != y[1]) continue
			if (st[a] < st[b] + sp[b] && st[b] < st[a] + sp[a]) found = 1
		}
		exit !found
	}' /proc/zoneinfo
}

# --- virtio-mem ----------------------------------------------------------------
# virtio_mem_driver: the driver bound to the first virtio-mem device (virtio
# device ID 24), or nothing.
virtio_mem_driver() {
	for _d in /sys/bus/virtio/devices/*; do
		[ "$(cat "$_d/device" 2>/dev/null)" = 0x0018 ] || continue
		[ -e "$_d/driver" ] || continue
		basename "$(readlink "$_d/driver")"
		return
	done
}

# require_virtio_mem: skip the rest unless a hook and a bound device exist.
require_virtio_mem() {
	if [ -z "${VIRTIO_MEM_RESIZE:-}" ]; then
		skip_rest "VIRTIO_MEM_RESIZE not set (a command that resizes the virtio-mem device)"
	fi
	_drv=$(virtio_mem_driver)
	if [ -z "$_drv" ]; then
		skip_rest "no virtio-mem device bound to a driver (CONFIG_VIRTIO_MEM)"
	fi
	ktap_print_msg "virtio-mem device driven by $_drv"
}

# vmem_resize BYTES [SECONDS]: the hook; true once the device has plugged BYTES.
vmem_resize() { [ -n "${VIRTIO_MEM_RESIZE:-}" ] && $VIRTIO_MEM_RESIZE "$@" >/dev/null; }

# Parameters we change, restored by restore_params.
save_params() {
	SAVED_AUTO_ONLINE=$(cat $MEMDIR/auto_online_blocks)
	SAVED_POLICY=$(cat $MHP_PARAMS/online_policy 2>/dev/null)
	SAVED_RATIO=$(cat $MHP_PARAMS/auto_movable_ratio 2>/dev/null)
}
restore_params() {
	echo "$SAVED_AUTO_ONLINE" > $MEMDIR/auto_online_blocks
	[ -n "$SAVED_POLICY" ] && echo "$SAVED_POLICY" > $MHP_PARAMS/online_policy
	[ -n "$SAVED_RATIO" ] && echo "$SAVED_RATIO" > $MHP_PARAMS/auto_movable_ratio
	true
}

# unplug_all: offline what is ours and online, then ask for 0 bytes. Memory in
# a kernel zone may hold unmovable allocations and stay plugged: best effort.
unplug_all() {
	[ -n "${VIRTIO_MEM_RESIZE:-}" ] || return 0
	for _b in $(new_blocks "$1" 2>/dev/null); do
		[ "$(zones "$_b")" = Movable ] && set_state "$_b" offline >/dev/null
	done
	vmem_resize 0 5 ||
		ktap_print_msg "could not unplug everything (kernel-zone memory stays plugged)"
}
