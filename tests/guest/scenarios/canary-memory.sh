#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: a module sleeps in atomic context, reads freed memory, corrupts a list, misuses a work item, indexes out of bounds
# drivers: none
# kernel: debug
# timeout: 180
# expect: report atomic-sleep kfence list odebug ubsan
#
# Canaries of the debug kernel's checkers: DEBUG_ATOMIC_SLEEP, KFENCE, DEBUG_LIST,
# DEBUG_OBJECTS_WORK and UBSAN_BOUNDS. The runner passes this scenario only if the
# console shows a report of each (and of nothing else): each checker is on, and
# its reports fail a run.
. /tests/lib.sh

canary() {	# canary BUG DMESG-PATTERN
	check "insmod checker_canary bug=$1" insmod /tests/modules/checker_canary.ko bug="$1"
	rmmod checker_canary
	check "$1: reported" sh -c "dmesg | grep -q '$2'"
}
canary atomic-sleep "BUG: sleeping function called from invalid context"
canary kfence "BUG: KFENCE: use-after-free read"
canary list "list_add double add"
canary odebug "ODEBUG: object .* is on stack .*, but NOT annotated"
canary ubsan "UBSAN: array-index-out-of-bounds"
ktap_finish
