#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: kselftest memory-hotplug-zones/auto_online_test.sh: every auto_online_blocks value on virtio-mem memory
# qemu: --vmem id=vm0,size=8G
# drivers: c rust
# timeout: 300
. /tests/lib.sh

check "modprobe $(vmem_module)" modprobe "$(vmem_module)"
ksft_hook vm0
ksft_run memory-hotplug-zones/auto_online_test.sh
ktap_finish
