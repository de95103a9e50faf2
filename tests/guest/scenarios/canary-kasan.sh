#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: a module reads past the end of a slab object; KASAN must report it
# drivers: none
# kernel: kasan
# timeout: 120
# expect: report kasan
#
# The canary of the KASAN kernel (make check KERNEL=kasan): the runner passes it only
# if the console shows KASAN's report (and no other).
. /tests/lib.sh

check "KASAN is on" sh -c 'zcat /proc/config.gz | grep -qx CONFIG_KASAN=y'
check "insmod checker_canary bug=kasan" insmod /tests/modules/checker_canary.ko bug=kasan
check "KASAN reported it" sh -c 'dmesg | grep -q "BUG: KASAN: slab-out-of-bounds"'
ktap_finish
