# SPDX-License-Identifier: GPL-2.0
"""Host-side helpers of the virtio-mem-rs harness: QEMU, QMP, KTAP."""
