#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: page poisoning with a device that cannot keep the pattern (no PAGE_POISON): the driver withdraws free page reporting, and no poisoned page comes back changed
# qemu: --ram 1G --balloon free-page-reporting=on,page-poison=off
# append: page_poison=1 vmem.poisondev=off
# drivers: c rust
# kernel: debug
# timeout: 400
. /tests/scenarios/balloon-poison.sh
