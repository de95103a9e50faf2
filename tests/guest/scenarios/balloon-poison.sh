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
#
# balloon-poison-off (vmem.poisondev=off) runs the same steps with a device that does not
# offer PAGE_POISON: validate must then withdraw reporting, as the C driver's does, and no
# page is reported at all.
. /tests/lib.sh

HOG=256
DEV=on
case " $(cat /proc/cmdline) " in *" vmem.poisondev=off "*) DEV=off ;; esac

balloon_probe
if [ $DEV = on ]; then
	check_eq "PAGE_POISON (bit 4) negotiated with page poisoning on" 1 "$(feature_bit 4)"
	check_eq "free page reporting (bit 5) negotiated" 1 "$(feature_bit 5)"
	if [ "$VMEM_DRIVER" = rust ]; then
		check_eq "the driver's poison_val is the poison pattern" 0xaaaaaaaa "$(bs_field poison_val)"
	fi
else
	check_eq "the device does not offer PAGE_POISON (bit 4; QEMU page-poison=off)" 0 "$(feature_bit 4)"
	check_eq "free page reporting (bit 5) withdrawn by validate: the device would lose the pattern" \
		0 "$(feature_bit 5)"
	if [ "$VMEM_DRIVER" = rust ]; then
		check_eq "the driver's status says reporting: false" false "$(bs_field reporting)"
	fi
fi

sleep 5
rss0=$(hostcmd qemu-rss) || bail "qemu-rss"
memhog_start $HOG || bail "memhog holds $HOG MiB"
rss1=$(hostcmd qemu-rss)
check "memhog exits cleanly" memhog_stop
# Reports go out 2 s after the free (the Rust driver counts them); QEMU keeps the memory. With
# page_poison=1 every free page was written at boot, so all of guest RAM is resident in QEMU
# already: a device that discarded reported pages would shrink it by hundreds of MiB.
if [ "$VMEM_DRIVER" = rust ] && [ $DEV = on ]; then
	rb() { bs_field reported_bytes; }
	wait_for 60 '[ "$(rb)" -ge $((HOG / 2 << 20)) ]'
	check "at least half of the freed memory was reported ($(bs_field reports) reports, $(($(rb) >> 20)) MiB)" \
		[ "$(rb)" -ge $((HOG / 2 << 20)) ]
elif [ "$VMEM_DRIVER" = rust ]; then
	sleep 15
	check_eq "the driver reported nothing" 0 "$(bs_field reports)"
else
	sleep 15
fi
rss2=$(hostcmd qemu-rss)
diag "QEMU resident: $((rss0 / 1024)) MiB, $((rss1 / 1024)) MiB holding $HOG MiB, $((rss2 / 1024)) MiB after the free"
what="the reported memory"; [ $DEV = off ] && what="the freed memory (nothing reported)"
check "QEMU kept $what (shrank by $(((rss1 - rss2) / 1024)) MiB, under 64)" [ $((rss1 - rss2)) -lt $((64 * 1024)) ]
# Allocate it all again: each page is checked for the pattern as it comes back.
memhog_start $HOG || bail "memhog holds $HOG MiB again"
check "memhog exits cleanly the second time" memhog_stop
check_eq "no poisoned page came back changed" 0 "$(dmesg | grep -c 'pagealloc: memory corruption')"
check "rmmod $BMOD" rmmod "$BMOD"
ktap_finish
