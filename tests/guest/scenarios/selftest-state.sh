#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: kselftest memory-hotplug-zones/state_test.sh: state writes, error codes, valid_zones
# qemu: --vmem id=vm0,size=8G
# append: movablecore=100M
# drivers: c rust
# timeout: 300
# movablecore= puts the top of boot memory in ZONE_MOVABLE, so that one boot
# memory block spans DMA32 and Movable (valid_zones "none"): this kernel has no
# CONFIG_ZONE_DMA, which on x86 makes memory0 span DMA and DMA32.
. /tests/lib.sh

check "modprobe $(vmem_module)" modprobe "$(vmem_module)"
ksft_hook vm0
ksft_run memory-hotplug-zones/state_test.sh
ktap_finish
