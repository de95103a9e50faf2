#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: the kernel boots and a Rust sample module loads and unloads
# drivers: none
# timeout: 120
. /tests/lib.sh

check "kernel is Linux 7.3" sh -c 'uname -r | grep -q "^7\.3\."'
check "Rust is enabled (CONFIG_RUST=y)" sh -c 'zcat /proc/config.gz | grep -qx CONFIG_RUST=y'
check "modprobe rust_minimal" modprobe rust_minimal
check "rust_minimal is listed in /proc/modules" grep -q '^rust_minimal ' /proc/modules
check "rust_minimal said hello" sh -c 'dmesg | grep -q "Rust minimal sample (init)"'
check "rmmod rust_minimal" rmmod rust_minimal
check "rust_minimal said goodbye" sh -c 'dmesg | grep -q "Rust minimal sample (exit)"'
ktap_finish
