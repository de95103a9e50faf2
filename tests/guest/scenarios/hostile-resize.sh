#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# scenario: requested-size changes before and during probe, resize storms, requests while the driver unloads
# qemu: --vmem id=vm0,size=2G,requested=256M --vmem id=vm1,size=2G
# drivers: c rust
# timeout: 420
#
# The device changes its requested size whenever the host likes; the driver must
# end up with exactly the last request plugged (in 2 MiB subblocks, which every
# request here is a multiple of), MemTotal must follow the device's plugged size,
# and nothing may crash, whenever the request comes: before the driver loads,
# while it probes, back to back faster than it can plug, or while it unbinds.
. /tests/lib.sh

M=$(vmem_module)
echo online_movable > $MEMDIR/auto_online_blocks
kb0=$(memtotal_kb)

req() { hostcmd resize "$1" "$2" >/dev/null; }
# settles DEV BYTES: the device reaches BYTES plugged and is still there 1 s later.
settles() {
	hostcmd wait-size "$1" "$2" 120 >/dev/null || { diag "$1 has $(hostcmd size "$1") plugged"; return 1; }
	sleep 1
	_s=$(hostcmd size "$1")
	[ "$_s" = "$2" ] || { diag "$1 moved on to $_s"; return 1; }
}
# memtotal_is BYTES: MemTotal settles at its boot value + BYTES.
memtotal_is() {
	wait_memtotal $((kb0 + $1 / 1024)) 30
	check_eq "MemTotal is boot + $(($1 >> 20)) MiB" $((kb0 + $1 / 1024)) "$(memtotal_kb)"
}

# --- a request made before the driver exists ---------------------------------------
check_eq "vm0 was created with 256 MiB requested" "$(mib 256)" "$(hostcmd qom-get vm0 requested-size)"
req vm0 "$(mib 384)"
sleep 1
check_eq "without a driver nothing is plugged" 0 "$(hostcmd size vm0)"
check "modprobe $M" modprobe $M
check "vm0 plugs the request made before the driver loaded (384 MiB)" settles vm0 "$(mib 384)"
check_eq "vm1 plugs nothing" 0 "$(hostcmd size vm1)"
memtotal_is "$(mib 384)"
req vm0 0
check "vm0 unplugs to 0" settles vm0 0
check "rmmod $M" rmmod $M

# --- resizes while modprobe runs, three times ---------------------------------------
# A background loop changes both requested sizes back to back from before modprobe
# starts until after it returns, so that config-change interrupts arrive while the
# driver reads the config, claims the region and starts its worker. (The foreground
# makes no host request meanwhile: the loop owns the control channel.)
for round in 1 2 3; do
	rm -f /tmp/stop /tmp/n
	(
		n=0
		while [ ! -e /tmp/stop ]; do
			req vm0 "$(((RANDOM % 512) << 21))"
			req vm1 "$(((RANDOM % 512) << 21))"
			n=$((n + 1))
		done
		echo $n >/tmp/n
	) &
	storm=$!
	sleep 0.3
	modprobe $M
	rc=$?
	sleep 0.3
	touch /tmp/stop
	wait $storm
	check_eq "round $round: modprobe $M succeeds while the host resizes both devices ($(cat /tmp/n) times each)" 0 $rc
	check "round $round: both devices are bound" sh -c "[ -e /sys/bus/virtio/devices/virtio0/driver ] && [ -e /sys/bus/virtio/devices/virtio1/driver ]"
	a=$(((RANDOM % 256) << 21)) b=$(((RANDOM % 256) << 21))
	req vm0 "$a"
	req vm1 "$b"
	check "round $round: vm0 settles at the last request ($((a >> 20)) MiB)" settles vm0 "$a"
	check "round $round: vm1 settles at the last request ($((b >> 20)) MiB)" settles vm1 "$b"
	memtotal_is $((a + b))
	[ $round = 3 ] && break
	req vm0 0
	req vm1 0
	check "round $round: vm0 unplugs to 0" settles vm0 0
	check "round $round: vm1 unplugs to 0" settles vm1 0
	check "round $round: rmmod $M" rmmod $M
done

# --- resize storms: 150 requests per device back to back ---------------------------
for storm in 1 2; do
	i=0
	while [ $i -lt 150 ]; do
		req vm0 "$(((RANDOM % 512) << 21))"
		req vm1 "$(((RANDOM % 512) << 21))"
		i=$((i + 1))
	done
	if [ $storm = 1 ]; then
		a=$(((RANDOM % 256) << 21)) b=$(((RANDOM % 256) << 21))
	else
		a=0 b=0
	fi
	req vm0 "$a"
	req vm1 "$b"
	check "storm $storm: vm0 settles at the last request ($((a >> 20)) MiB)" settles vm0 "$a"
	check "storm $storm: vm1 settles at the last request ($((b >> 20)) MiB)" settles vm1 "$b"
	memtotal_is $((a + b))
done
check "no device was marked broken" sh -c "! dmesg | grep -E '$M virtio[0-9]: .*broken'"

# --- requests while the driver unbinds ----------------------------------------------
# vm1 unplugs 512 MiB and vm0 plugs 1 GiB while rmmod runs, and the host keeps
# changing its mind. Whatever each device has plugged when the driver is gone must
# stay plugged, and be either online (in MemTotal) or in memory blocks left offline:
# the C driver refuses to online blocks it adds while it is being removed
# (virtio_mem_memory_notifier_cb: -EBUSY when vm->removing), and leaves them added
# (see below for the partially plugged ones).
# A device whose region is still claimed (memory left added, see /proc/iomem) is
# refused by a reload, as reload.sh shows; one whose region was released is bound
# again and plugs its last request.
req vm1 "$(mib 512)"
check "vm1 plugs 512 MiB" settles vm1 "$(mib 512)"
req vm0 "$(gib 1)"
req vm1 0
rm -f /tmp/stop /tmp/n
(
	n=0
	while [ ! -e /tmp/stop ]; do
		req vm0 "$(((RANDOM % 512) << 21))"
		req vm1 "$(((RANDOM % 512) << 21))"
		n=$((n + 1))
	done
	echo $n >/tmp/n
) &
storm=$!
rmmod $M >/tmp/rmmod.out 2>&1
rc=$?
sleep 0.3
touch /tmp/stop
wait $storm
check_eq "rmmod $M succeeds while the host resizes both devices ($(cat /tmp/n) times each)" 0 $rc
sed 's/^/# rmmod: /' /tmp/rmmod.out
last0=$(mib 256) last1=$(mib 128)
req vm0 "$last0"
req vm1 "$last1"
s0=$(hostcmd size vm0) s1=$(hostcmd size vm1)
diag "left plugged after the unbind: vm0 $((s0 >> 20)) MiB, vm1 $((s1 >> 20)) MiB"
sleep 3
check_eq "without a driver vm0 stays at $((s0 >> 20)) MiB" "$s0" "$(hostcmd size vm0)"
check_eq "without a driver vm1 stays at $((s1 >> 20)) MiB" "$s1" "$(hostcmd size vm1)"
# Offline memory blocks in the two regions (vm0 at 4 GiB, vm1 after it, 2 GiB each).
bs=$(block_size)
first=$(((4 << 30) / bs)) last=$(((8 << 30) / bs - 1))
offline=0
for b in $(blocks); do
	[ "$b" -ge "$first" ] && [ "$b" -le "$last" ] || continue
	st=$(block_state "$b")
	diag "memory$b is $st"
	[ "$st" = online ] || offline=$((offline + 1))
done
grep -E -A40 'virtio[01]$' /proc/iomem | grep -E 'virtio|System RAM \(virtio_mem\)' | sed 's/^/# iomem: /'
held=$(( ($(memtotal_kb) - kb0) * 1024 + offline * bs))
diag "Linux holds $((held >> 20)) MiB of the $(((s0 + s1) >> 20)) MiB plugged"
check "Linux holds no memory that is not plugged (MemTotal + offline blocks <= plugged)" [ "$held" -le $((s0 + s1)) ]
if [ "$VMEM_DRIVER" = rust ]; then
	# sbm_teardown removes offline blocks and unplugs their subblocks.
	check_eq "rust: every plugged byte is online or in an offline block" $((s0 + s1)) "$held"
else
	# virtio_mem_deinit_hotplug removes OFFLINE_PARTIAL blocks from Linux without
	# unplugging their subblocks: when rmmod catches the worker adding a partially
	# plugged block (which it then cannot online), that memory stays plugged with
	# nothing using it. So the C driver can leave more plugged than Linux holds.
	[ "$held" -lt $((s0 + s1)) ] && diag "c: $((((s0 + s1) - held) >> 20)) MiB stay plugged that Linux no longer has"
fi
claimed0=no claimed1=no
grep -q ' : virtio0$' /proc/iomem && claimed0=yes
grep -q ' : virtio1$' /proc/iomem && claimed1=yes
diag "regions still claimed: vm0 $claimed0, vm1 $claimed1"

modprobe $M 2>/dev/null
sleep 2
for i in 0 1; do
	eval s=\$s$i last=\$last$i claimed=\$claimed$i
	if [ "$claimed" = no ]; then
		check "vm$i (region released) is bound again" bound $i
		check "vm$i plugs its last request ($((last >> 20)) MiB)" settles vm$i "$last"
	else
		check "vm$i (region still claimed) is refused by the reload" sh -c "! [ -e /sys/bus/virtio/devices/virtio$i/driver ]"
		check "vm$i: the reload says why" sh -c "dmesg | grep -qF '$M virtio$i: could not reserve device region'"
		check_eq "vm$i: nothing was unplugged behind the kernel's back" "$s" "$(hostcmd size vm$i)"
	fi
done
ktap_finish
