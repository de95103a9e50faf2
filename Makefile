# SPDX-License-Identifier: GPL-2.0
#
# virtio-mem-rs: top-level entry points. Everything is set up by the scripts.
#
#   make demo        boot our kernel in QEMU and plug/unplug memory (the demo)
#   make check       run every test on the debug kernel; ends with
#                    "N passed, N failed, N skipped"
#   make kernel      set up the host and (re)build the kernel in the cache
#   make initramfs   (re)build the guest initramfs
#   make shell       interactive guest shell (drive it with scripts/vmctl)

#
# DRIVER=c|rust selects the driver for demo (default: rust, our driver).
# KERNEL=release|debug selects the kernel flavour: check defaults to debug (the
# kernel's checkers on), everything else to release (checkers off).

DRIVER ?= rust

.PHONY: demo check kernel initramfs shell help

help:
	@sed -n '3,16p' Makefile | sed 's/^# \{0,1\}//'

kernel:
	scripts/setup-host
	VMEM_KERNEL=$(or $(KERNEL),release) scripts/build-kernel

initramfs: kernel
	VMEM_KERNEL=$(or $(KERNEL),release) scripts/mkinitramfs

demo: initramfs
	VMEM_KERNEL=$(or $(KERNEL),release) scripts/run-qemu --scenario demo --driver $(DRIVER) \
		--use-scenario-machine

check:
	VMEM_KERNEL=$(or $(KERNEL),debug) tests/run

shell: initramfs
	VMEM_KERNEL=$(or $(KERNEL),release) scripts/run-qemu --vmem id=vm0,size=4G --balloon
