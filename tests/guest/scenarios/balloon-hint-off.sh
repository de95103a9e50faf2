#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: free page hinting off in the device: a live migration sends the memory a guest program freed
# qemu: --ram 1G --balloon
# append: vmem.hint=off
# drivers: c rust
# timeout: 600
. /tests/scenarios/balloon-hint.sh
