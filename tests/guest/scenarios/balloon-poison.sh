#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: free page reporting with page poisoning: the driver tells the device the poison value, so the device keeps reported pages and no poisoned page comes back changed
# qemu: --ram 1G --balloon free-page-reporting=on
# append: page_poison=1
# drivers: c rust
# timeout: 400
# kernel: debug
#
# With page_poison=1 every free page holds 0xaa, checked when it is allocated again
# ("pagealloc: memory corruption" on the console otherwise). A device that discards a reported
# page would hand it back as zeroes: the driver must negotiate PAGE_POISON and write poison_val,
# and QEMU then keeps reported memory (it cannot refill it with the pattern).
. /tests/lib.sh

BMOD=$(balloon_module)
HOG=256

check "modprobe $BMOD" modprobe "$BMOD"
dev=$(basename "$(ls -d /sys/bus/virtio/drivers/$BMOD/virtio* 2>/dev/null | head -1)")
[ -n "$dev" ] || bail "$BMOD is bound to the balloon device"
feat=$(cat /sys/bus/virtio/devices/$dev/features)
bit() { echo "$feat" | cut -c$(($1 + 1)); }
check_eq "PAGE_POISON (bit 4) negotiated with page poisoning on" 1 "$(bit 4)"
check_eq "free page reporting (bit 5) negotiated" 1 "$(bit 5)"
if [ "$VMEM_DRIVER" = rust ]; then
	BS=/sys/kernel/debug/virtio_balloon_rs.$dev/status
	check_eq "the driver's poison_val is the poison pattern" 0xaaaaaaaa "$(sed -n 's/^poison_val: //p' "$BS")"
fi

sleep 5
rss0=$(hostcmd qemu-rss) || bail "qemu-rss"
memhog_start $HOG || bail "memhog holds $HOG MiB"
rss1=$(hostcmd qemu-rss)
check "memhog exits cleanly" memhog_stop
# Reports go out 2 s after the free (the Rust driver counts them); QEMU keeps the memory. With
# page_poison=1 every free page was written at boot, so all of guest RAM is resident in QEMU
# already: a device that discarded reported pages would shrink it by hundreds of MiB.
if [ "$VMEM_DRIVER" = rust ]; then
	rb() { sed -n 's/^reported_bytes: //p' "$BS"; }
	wait_for 60 '[ "$(rb)" -ge $((HOG / 2 << 20)) ]'
	check "at least half of the freed memory was reported ($(sed -n 's/^reports: //p' "$BS") reports, $(($(rb) >> 20)) MiB)" \
		[ "$(rb)" -ge $((HOG / 2 << 20)) ]
else
	sleep 15
fi
rss2=$(hostcmd qemu-rss)
diag "QEMU resident: $((rss0 / 1024)) MiB, $((rss1 / 1024)) MiB holding $HOG MiB, $((rss2 / 1024)) MiB after the free"
check "QEMU kept the reported memory (shrank by $(((rss1 - rss2) / 1024)) MiB, under 64)" [ $((rss1 - rss2)) -lt $((64 * 1024)) ]
# Allocate it all again: each page is checked for the pattern as it comes back.
memhog_start $HOG || bail "memhog holds $HOG MiB again"
check "memhog exits cleanly the second time" memhog_stop
check_eq "no poisoned page came back changed" 0 "$(dmesg | grep -c 'pagealloc: memory corruption')"
check "rmmod $BMOD" rmmod "$BMOD"
ktap_finish
