#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: free page reporting off in the device: memory a guest program frees stays with QEMU
# qemu: --ram 1G --balloon
# append: vmem.reporting=off
# drivers: c rust
# timeout: 300
. /tests/scenarios/balloon-reporting.sh
