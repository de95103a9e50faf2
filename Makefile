# SPDX-License-Identifier: GPL-2.0
#
# virtio-mem-rs: top-level entry points. Everything is set up by the scripts.
#
#   make demo        boot our kernel in QEMU and plug/unplug memory (the demo)
#   make check       run every test; ends with "N passed, N failed"
#   make kernel      set up the host and (re)build the kernel in the cache
#   make initramfs   (re)build the guest initramfs
#   make shell       interactive guest shell (drive it with scripts/vmctl)

#
# DRIVER=c|rust selects the driver for demo (default: rust, our driver).

DRIVER ?= rust

.PHONY: demo check kernel initramfs shell help

help:
	@sed -n '3,12p' Makefile | sed 's/^# \{0,1\}//'

kernel:
	scripts/setup-host
	scripts/build-kernel

initramfs: kernel
	scripts/mkinitramfs

demo: initramfs
	scripts/run-qemu --scenario demo --driver $(DRIVER) --use-scenario-machine

check:
	tests/run

shell: initramfs
	scripts/run-qemu --vmem id=vm0,size=4G --balloon
