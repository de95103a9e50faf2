#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: kselftest memory-hotplug-zones/virtio_mem_test.sh: SBM partial block, blocks vanish on unplug, GOING_ONLINE veto
# qemu: --vmem id=vm0,size=8G,block=2M
# drivers: c rust
# timeout: 420
. /tests/lib.sh

check "modprobe $(vmem_module)" modprobe "$(vmem_module)"
ksft_hook vm0
ksft_run memory-hotplug-zones/virtio_mem_test.sh
ktap_finish
