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
#   make patches     cut the repository into a patch series against v7.3, with a
#                    cover letter, in patches/ (git am it onto a 7.3 tree)
#   make soak        the integrity soak, K resize cycles (default 1000), on the
#                    debug kernel against DRIVER; APPEND adds to the guest's
#                    command line (APPEND=page_owner=on: dumps say who freed a page)
#
# DRIVER=c|rust selects the driver for demo and soak (default: rust, ours).
# KERNEL=release|debug|kasan selects the kernel flavour: check and soak default to
# debug (the kernel's checkers on), everything else to release (checkers off).

DRIVER ?= rust
K ?= 1000

.PHONY: demo check kernel initramfs shell soak patches help

help:
	@sed -n '3,20p' Makefile | sed 's/^# \{0,1\}//'

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

patches:
	scripts/setup-host
	scripts/mkpatches -o patches

shell: initramfs
	VMEM_KERNEL=$(or $(KERNEL),release) scripts/run-qemu --vmem id=vm0,size=4G --balloon

# About 10 s a cycle on the debug kernel here; the guest gets 60 s a cycle at most.
soak:
	scripts/setup-host
	VMEM_KERNEL=$(or $(KERNEL),debug) scripts/build-kernel
	VMEM_KERNEL=$(or $(KERNEL),debug) scripts/mkinitramfs
	VMEM_KERNEL=$(or $(KERNEL),debug) scripts/run-qemu --scenario soak --driver $(DRIVER) \
		--use-scenario-machine --append "soak.k=$(K) $(APPEND)" --timeout $$(( $(K) * 60 + 600 ))
