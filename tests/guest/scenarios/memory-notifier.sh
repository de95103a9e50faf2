#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: Rust memory notifier sample: events, vetoes, online-page handler, fake-offline pages
# qemu: --dimm 256M
# drivers: none
# timeout: 240
#
# The pc-dimm gives two hot-added memory blocks that start offline, independent of any
# virtio-mem driver (which would hold the single online-page callback slot).
. /tests/lib.sh

MOD=rust_memory_notifier
EV=/sys/kernel/debug/rust_memory_notifier/events

offline=$(for b in $(blocks); do [ "$(block_state "$b")" = offline ] && echo "$b"; done)
set -- $offline
[ $# -ge 2 ] || bail "the pc-dimm added at least two offline memory blocks (found: $offline)"
ok "pc-dimm memory blocks $1 and $2 are offline"
b1=$1 b2=$2
bs_kb=$(( $(block_size) / 1024 ))

# new_events: set $events to the events recorded since the last call, as
# "memoryN EVENT ..." (not in a subshell: it remembers how far it read).
seen=0
new_events() {
	n=$(wc -l <$EV)
	events=$(tail -n +$((seen + 1)) $EV | cut -d' ' -f2- | tr '\n' ' ' | sed 's/ $//')
	seen=$n
}
# write_state BLOCK VALUE: write to memoryN/state; prints the error text, if any.
write_state() { sh -c "echo $2 > $MEMDIR/memory$1/state" 2>&1 | sed 's/.*: //'; }

check "modprobe $MOD" modprobe $MOD
new_events

err=$(write_state $b1 online_movable)
check_eq "online_movable memory$b1 succeeds" "" "$err"
new_events
check_eq "onlining: GOING_ONLINE then ONLINE, nothing else" \
	"memory$b1 MEM_GOING_ONLINE memory$b1 MEM_ONLINE" "$events"
check_eq "memory$b1 is online in ZONE_MOVABLE" "online Movable" "$(block_state $b1) $(block_zones $b1)"

err=$(write_state $b1 offline)
check_eq "offline memory$b1 succeeds" "" "$err"
new_events
check_eq "offlining: GOING_OFFLINE then OFFLINE, nothing else" \
	"memory$b1 MEM_GOING_OFFLINE memory$b1 MEM_OFFLINE" "$events"
check "rmmod $MOD" rmmod $MOD

# Veto onlining with EBUSY.
check "modprobe $MOD veto_online=$b1" modprobe $MOD veto_online=$b1
seen=0; new_events
err=$(write_state $b1 online)
check_eq "vetoed onlining fails with EBUSY" "Device or resource busy" "$err"
new_events
check_eq "vetoed onlining: GOING_ONLINE then CANCEL_ONLINE" \
	"memory$b1 MEM_GOING_ONLINE memory$b1 MEM_CANCEL_ONLINE" "$events"
check_eq "memory$b1 stays offline" offline "$(block_state $b1)"
check_eq "another block still onlines" "" "$(write_state $b2 online_movable)"
check "rmmod $MOD" rmmod $MOD

# Veto offlining with EPERM.
check "modprobe $MOD veto_offline=$b2 veto_errno=1" modprobe $MOD veto_offline=$b2 veto_errno=1
seen=0; new_events
err=$(write_state $b2 offline)
check_eq "vetoed offlining fails with EPERM" "Operation not permitted" "$err"
new_events
check_eq "vetoed offlining: GOING_OFFLINE then CANCEL_OFFLINE" \
	"memory$b2 MEM_GOING_OFFLINE memory$b2 MEM_CANCEL_OFFLINE" "$events"
check_eq "memory$b2 stays online" online "$(block_state $b2)"
check "rmmod $MOD" rmmod $MOD
check_eq "without the notifier memory$b2 offlines" "" "$(write_state $b2 offline)"

# Bad parameter: clear error, nothing loaded.
check "veto_errno=0 is refused" sh -c "! modprobe $MOD veto_errno=0 2>/dev/null"
check "...and the module is not loaded" sh -c "! grep -q '^$MOD ' /proc/modules"

# Online-page handler: onlining goes through Rust, then the default is restored.
check "modprobe $MOD online_handler=1" modprobe $MOD online_handler=1
kb0=$(memtotal_kb)
check_eq "online memory$b1 through the Rust handler" "" "$(write_state $b1 online_movable)"
pages=$(cat /sys/kernel/debug/rust_memory_notifier/onlined_pages)
check_eq "the handler onlined every page of the block" "$((bs_kb / 4))" "$pages"
check_eq "MemTotal grew by one block" "$((kb0 + bs_kb))" "$(memtotal_kb)"
check_eq "offline memory$b1 again" "" "$(write_state $b1 offline)"
check "rmmod $MOD restores the online-page callback" rmmod $MOD
kb0=$(memtotal_kb)
check_eq "after restore, memory$b1 onlines normally" "" "$(write_state $b1 online_movable)"
check_eq "...and MemTotal grows by one block" "$((kb0 + bs_kb))" "$(memtotal_kb)"
check_eq "offline memory$b1 at the end" "" "$(write_state $b1 offline)"

# Fake-offline: take pages of an online block from the allocator (ContigRange), own them as
# offline pages (OfflinePages), give them back, and offline a block that still has some.
FO=/sys/kernel/debug/rust_memory_notifier/fake_offline
pfn=$(( b1 * bs_kb / 4 + 4096 ))
check "modprobe $MOD" modprobe $MOD
check_eq "online_movable memory$b1" "" "$(write_state $b1 online_movable)"
kb0=$(memtotal_kb)
check "fake-offline 512 pages at pfn $pfn" sh -c "echo '$pfn 512' > $FO"
check_eq "MemTotal dropped by 2 MiB" "$((kb0 - 2048))" "$(memtotal_kb)"
check_eq "the module owns them, not from onlining" "$pfn 512 false" "$(cat $FO)"
check "a range across two blocks is refused" sh -c "! echo '$(( (b1 + 1) * bs_kb / 4 - 1 )) 2' > $FO 2>/dev/null"
check "a range of an offline block is refused" sh -c "! echo '$(( b2 * bs_kb / 4 )) 2' > $FO 2>/dev/null"
check "garbage is refused" sh -c "! echo 'x y z' > $FO 2>/dev/null"
check "give the pages back" sh -c "echo online > $FO"
check_eq "MemTotal is back" "$kb0" "$(memtotal_kb)"
check_eq "nothing owned" "" "$(cat $FO)"
check "fake-offline again" sh -c "echo '$pfn 512' > $FO"
check_eq "offline memory$b1 with owned pages in it" "" "$(write_state $b1 offline)"
check_eq "the owned pages went with the block" "" "$(cat $FO)"
check_eq "MemTotal lost exactly one block" "$((kb0 - bs_kb))" "$(memtotal_kb)"
check "rmmod $MOD" rmmod $MOD

# keep_offline: the online handler keeps the first 1024 pages of each block back.
check "modprobe $MOD online_handler=1 keep_pages=1024" modprobe $MOD online_handler=1 keep_pages=1024
kb0=$(memtotal_kb)
check_eq "online memory$b2 keeping 4 MiB back" "" "$(write_state $b2 online_movable)"
check_eq "MemTotal grew by the block minus 4 MiB" "$((kb0 + bs_kb - 4096))" "$(memtotal_kb)"
check_eq "the kept pages are owned, never onlined" "$((b2 * bs_kb / 4)) 1024 true" "$(cat $FO)"
check "online the kept pages" sh -c "echo online > $FO"
check_eq "MemTotal grew by the whole block" "$((kb0 + bs_kb))" "$(memtotal_kb)"
check_eq "offline memory$b2" "" "$(write_state $b2 offline)"
check_eq "online memory$b2 keeping 4 MiB back, again" "" "$(write_state $b2 online_movable)"
check_eq "offline memory$b2 with never-onlined pages in it" "" "$(write_state $b2 offline)"
check_eq "MemTotal is back to before" "$kb0" "$(memtotal_kb)"
check "rmmod $MOD" rmmod $MOD
check "bad keep_pages is refused" sh -c "! modprobe $MOD online_handler=1 keep_pages=-1 2>/dev/null"
ktap_finish
