#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: a module WARNs on purpose; the harness must see a dirty console
# drivers: none
# timeout: 120
# expect: report warning
#
# The runner expects a WARNING report from this scenario and nothing else: it
# passes only if the console scan found the warning, which proves a kernel
# WARNING cannot pass unnoticed.
. /tests/lib.sh

check "insmod warn_canary.ko" insmod /tests/modules/warn_canary.ko
check "the WARNING reached the kernel log" sh -c 'dmesg | grep -q "WARNING:"'
ktap_finish
