#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: kselftest memory-hotplug-zones/auto_movable_test.sh: online_policy=auto-movable, ratio 301, 4 GiB into a 1 GiB VM
# qemu: --ram 1G --vmem id=vm0,size=8G
# drivers: c rust
# timeout: 600
. /tests/lib.sh

check "modprobe $(vmem_module)" modprobe "$(vmem_module)"
ksft_hook vm0
ksft_run memory-hotplug-zones/auto_movable_test.sh
ktap_finish
