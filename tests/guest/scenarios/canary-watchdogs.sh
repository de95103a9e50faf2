#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: a module hogs a worker pool, spins with preemption off and blocks a task; the watchdogs must report each
# drivers: none
# kernel: debug
# timeout: 180
# expect: report wq-lockup soft-lockup rcu-stall hung-task
#
# Canaries of the debug kernel's watchdogs: the workqueue watchdog, the soft-lockup
# detector, the RCU stall detector and the hung-task detector. Their thresholds are lowered
# first so that each takes seconds. The runner passes this scenario only if the
# console shows a report of each (and nothing else).
. /tests/lib.sh

canary() {	# canary BUG SECS DMESG-PATTERN
	check "insmod checker_canary bug=$1 secs=$2" insmod /tests/modules/checker_canary.ko bug="$1" secs="$2"
	rmmod checker_canary
	check "$1: reported" sh -c "dmesg | grep -q '$3'"
}
echo 1 > /sys/module/workqueue/parameters/watchdog_thresh
canary wq-lockup 6 "BUG: workqueue lockup"
# Back to its default: its reports touch the other watchdogs, which would then stay quiet.
echo 30 > /sys/module/workqueue/parameters/watchdog_thresh
echo 1 > /proc/sys/kernel/watchdog_thresh
# RCU waits rcu_cpu_stall_timeout plus 5 s (RCU_STALL_DELAY_DELTA, added under
# PROVE_RCU) after a grace period starts: 3 + 5 s here, and the spin outlasts it.
echo 3 > /sys/module/rcupdate/parameters/rcu_cpu_stall_timeout
canary stall 14 "soft lockup"
check "rcu-stall: reported" sh -c "dmesg | grep -q 'rcu: INFO: .*detected stall'"
echo 2 > /proc/sys/kernel/hung_task_timeout_secs
canary hung-task 8 "INFO: task .* blocked for more than"
ktap_finish
