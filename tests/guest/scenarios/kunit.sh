#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: KUnit suites (our Rust tests and the kernel crate's doctests) run at boot
# append: kunit.enable=1
# drivers: none
# timeout: 300
#
# KUnit prints its own KTAP on the console before /init; the runner reports every
# test case of it. This scenario checks that the suites we rely on actually ran.
. /tests/lib.sh

# Suites in modules run when the module loads; no device is needed.
for m in virtio_mem_rs virtio_balloon_rs; do
	check "modprobe $m (runs its KUnit suites)" modprobe "$m"
done
for suite in rust_kernel_virtio rust_doctests_kernel rust_kernel_mm_hotplug_notifier \
	rust_kernel_mm_hotplug_pages rust_kernel_mm_balloon rust_kernel_mm_shrinker virtio_mem_rs_config \
	virtio_mem_rs_protocol virtio_mem_rs_kdump virtio_mem_rs_order virtio_mem_rs_pressure \
	rust_kernel_module_param virtio_balloon_rs_protocol; do
	check "KUnit suite $suite ran" sh -c "dmesg | grep -q '# Subtest: $suite'"
done
check "no KUnit test failed" sh -c "! dmesg | grep -qE '^\[[ 0-9.]+\] +not ok '"
ktap_finish
