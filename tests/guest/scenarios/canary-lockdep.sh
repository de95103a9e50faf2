#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: a module takes two mutexes in both orders; lockdep must report it
# drivers: none
# kernel: debug
# timeout: 120
# expect: report lockdep
#
# A canary of the debug kernel: the runner passes it only if the console shows
# lockdep's report (and no other), which proves lockdep is on and that its
# reports fail a run. Lockdep turns itself off after one report, so this boot
# does nothing else.
. /tests/lib.sh

check "lockdep is on" sh -c 'zcat /proc/config.gz | grep -qx CONFIG_PROVE_LOCKING=y'
check "insmod checker_canary bug=lockdep" insmod /tests/modules/checker_canary.ko bug=lockdep
check "lockdep reported the inversion" \
	sh -c 'dmesg | grep -q "possible circular locking dependency detected"'
ktap_finish
