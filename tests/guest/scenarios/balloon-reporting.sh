#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: free page reporting: memory a guest program frees leaves the QEMU process (host RSS)
# qemu: --ram 1G --balloon free-page-reporting=on
# drivers: c rust
# timeout: 300
#
# The same steps with the device's reporting off are balloon-reporting-off (vmem.reporting=off):
# the memory must then stay with QEMU. Features are read from the device's sysfs "features",
# one character per bit.
. /tests/lib.sh

REPORTING=on
case " $(cat /proc/cmdline) " in *" vmem.reporting=off "*) REPORTING=off ;; esac
HOG=256

balloon_probe
want=1; [ $REPORTING = off ] && want=0
check_eq "free page reporting (bit 5) negotiated: $REPORTING" "$want" "$(feature_bit 5)"
# validate(): free pages hold nothing in particular here (no page_poison=1, no init_on_free),
# so the guest does not offer PAGE_POISON; and no indirect descriptors, as in C.
check_eq "PAGE_POISON (bit 4) not negotiated without page poisoning" 0 "$(feature_bit 4)"
check_eq "indirect descriptors (bit 28) turned off by validate" 0 "$(feature_bit 28)"
if [ "$VMEM_DRIVER" = rust ]; then
	want=true; [ $REPORTING = off ] && want=false
	check_eq "the driver's status says reporting: $want" "$want" "$(bs_field reporting)"
fi

# Let the first reports of the boot's free memory pass.
sleep 5
rss0=$(hostcmd qemu-rss) || bail "qemu-rss"
memhog_start $HOG || bail "memhog holds $HOG MiB"
rss1=$(hostcmd qemu-rss)
diag "QEMU resident: $((rss0 / 1024)) MiB before, $((rss1 / 1024)) MiB with $HOG MiB held"
check "holding $HOG MiB grew QEMU by at least $((HOG / 2)) MiB" [ $((rss1 - rss0)) -ge $((HOG / 2 * 1024)) ]
grown=$((rss1 - rss0))
check "memhog exits cleanly" memhog_stop
t0=$(uptime_s)
if [ $REPORTING = on ]; then
	# Most of what was freed leaves QEMU: at least 3/4 of what holding it added.
	wait_for 60 '[ $((rss1 - $(hostcmd qemu-rss))) -ge $((grown * 3 / 4)) ]'
	rss2=$(hostcmd qemu-rss)
	diag "QEMU resident $((rss2 / 1024)) MiB $(($(uptime_s) - t0)) s after the free"
	check "freed memory left QEMU: resident shrank by $(((rss1 - rss2) / 1024)) of $((grown / 1024)) MiB" \
		[ $((rss1 - rss2)) -ge $((grown * 3 / 4)) ]
	if [ "$VMEM_DRIVER" = rust ]; then
		diag "reports $(bs_field reports), $(($(bs_field reported_bytes) >> 20)) MiB, failed $(bs_field report_failed)"
		check "the driver reported at least what was freed" \
			[ "$(bs_field reported_bytes)" -ge $((grown * 3 / 4 * 1024)) ]
		check_eq "no report failed" 0 "$(bs_field report_failed)"
	fi
else
	# Reports come 2 s after a free; with reporting on, QEMU shrank within 1 s of that here.
	sleep 15
	rss2=$(hostcmd qemu-rss)
	diag "QEMU resident $((rss2 / 1024)) MiB 15 s after the free"
	check "freed memory stayed with QEMU: resident shrank by $(((rss1 - rss2) / 1024)) MiB, under 1/4 of $((grown / 1024))" \
		[ $((rss1 - rss2)) -lt $((grown / 4)) ]
	if [ "$VMEM_DRIVER" = rust ]; then
		check_eq "the driver reported nothing" 0 "$(bs_field reports)"
	fi
fi

# The guest uses the memory again: reported pages come back from the host as new.
memhog_start $HOG || bail "memhog holds $HOG MiB again"
check "memhog exits cleanly the second time (every page verified)" memhog_stop
check "rmmod $BMOD" rmmod "$BMOD"
ktap_finish
