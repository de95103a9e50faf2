#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: kselftest memory-hotplug-zones/offline_load_test.sh: offline ZONE_MOVABLE under load, EBUSY from a kernel zone
# qemu: --vmem id=vm0,size=8G
# drivers: c rust
# timeout: 420
. /tests/lib.sh

check "modprobe $(vmem_module)" modprobe "$(vmem_module)"
ksft_hook vm0
ksft_run memory-hotplug-zones/offline_load_test.sh
ktap_finish
