#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: a 64 TiB region: probe, plug 2 GiB with data verified, unplug; the driver's state stays small
# qemu: --ram 1G --cpu max,phys-bits=52 --vmem id=vm0,size=64T,reserve=off
# append: nokaslr
# drivers: c rust
# timeout: 600
#
# The region is sparse on the host (reserve=off): only what is plugged is ever backed.
# It ends above 64 TiB, beyond 4-level paging: the guest runs with 5-level paging (LA57,
# which -cpu max has under TCG). nokaslr: with KASLR the direct map reaches only 10 TiB
# (RANDOMIZE_MEMORY_PHYSICAL_PADDING) past boot memory, and so would hot-plugging.
# Other sizes, for the figures in the docs:
#   scripts/run-qemu --scenario scale-region --driver rust --ram 1G --cpu max,phys-bits=52 \
#       --vmem id=vm0,size=1T,reserve=off --append "nokaslr scale.region=1T"
. /tests/lib.sh

GIB=65536
for a in $(cat /proc/cmdline); do
	case "$a" in scale.region=*G) GIB=${a%G}; GIB=${GIB#*=} ;; scale.region=*T) GIB=${a%T}; GIB=$((${GIB#*=} << 10)) ;; esac
done

echo online_movable > $MEMDIR/auto_online_blocks
kb0=$(memtotal_kb)
check "modprobe $(vmem_module)" modprobe "$(vmem_module)"
wait_for 30 'bound 0'
drv=$(driver_of 0)
region=$(dmesg | sed -n 's/.*region size: \(0x[0-9a-f]*\)$/\1/p' | tail -1)
diag "driver $drv, region size ${region:-?}, $(grep -c . /proc/iomem) iomem lines, la57: $(grep -c la57 /proc/cpuinfo) cpus"
check_eq "the device has a $GIB GiB region" $((GIB << 30)) "$((region))"
check "all of it can be hot-added" sh -c '! dmesg | grep -Eq "of the region can be hot-added|not addressable/pluggable"'

# What probe allocates, from MemFree around a rebind (the module is loaded already).
probe_kb() {
	echo virtio0 > /sys/bus/virtio/drivers/$drv/unbind
	sync; echo 3 > /proc/sys/vm/drop_caches
	_f0=$(meminfo_kb MemFree)
	echo virtio0 > /sys/bus/virtio/drivers/$drv/bind
	bound 0 || return 1
	sync; echo 3 > /proc/sys/vm/drop_caches
	echo $((_f0 - $(meminfo_kb MemFree)))
}
kb=$(probe_kb) && ok "unbind and bind again" || not_ok "unbind and bind again"
diag "probe took about $kb KiB (MemFree before and after a rebind)"

P=$((GIB < 2 ? GIB : 2))	# GiB to plug
hostcmd resize vm0 "$(gib $P)" >/dev/null
t=$(hostcmd wait-size vm0 "$(gib $P)" 180) && ok "plug $P GiB ($t s)" || not_ok "plug $P GiB (plugged $(hostcmd size vm0))"
wait_memtotal $((kb0 + (P << 20))) 60
check_eq "MemTotal grew by $P GiB" $((kb0 + (P << 20))) "$(memtotal_kb)"

# 1.1 GiB of data with 1 GiB of boot memory (the kernel holds some): part of it lands in
# plugged memory.
memhog_start 1152 && ok "memhog holds 1152 MiB" || not_ok "memhog holds 1152 MiB"
check "memhog verifies and exits cleanly" memhog_stop

if [ "$drv" = virtio_mem_rs ]; then
	b=$(rs_field state_bytes)
	diag "block state: $b bytes; $(grep '^blocks_' $RS_STATUS | tr '\n' ' ')"
	check "the driver's block state stays under 1 MiB" [ "${b:-999999999}" -lt $((1 << 20)) ]
	total=$(grep '^blocks_' $RS_STATUS | awk '{ n += $2 } END { print n }')
	check_eq "the block counts cover the whole region" $(((GIB << 30) / $(block_size))) "$total"
	# The C driver keeps a state byte and a bit per subblock for each block up to the highest
	# in use. The Rust driver may hold up to twice that: its arrays double up to a page.
	used=$((total - $(rs_field blocks_unused)))
	per=$((1 + $(block_size) / $(rs_field subblock_size) / 8))
	check "the block state is at most twice C's $per bytes per block in use ($used blocks)" \
		[ "${b:-999999999}" -le $((2 * used * per)) ]
else
	# The C driver keeps its block state in vmalloc'd arrays (without their guard pages).
	b=$(awk '/virtio_mem/ { n += $2 - 4096 } END { print n + 0 }' /proc/vmallocinfo)
	diag "block state: $b bytes vmalloc'd by $drv"
fi

hostcmd resize vm0 0 >/dev/null
check "unplug everything" hostcmd wait-size vm0 0 180
wait_memtotal "$kb0" 60
check_eq "MemTotal is back to its boot value" "$kb0" "$(memtotal_kb)"
check "rmmod $(vmem_module)" rmmod "$(vmem_module)"
ktap_finish
