# SPDX-License-Identifier: GPL-2.0
# Helpers for guest scenarios (busybox ash). Source it: . /tests/lib.sh
#
# Output is KTAP: "KTAP version 1", one "ok N desc"/"not ok N desc" per check,
# a trailing "1..N" plan (ktap_finish). The host runner also scans the console
# for Oops/BUG/WARNING, so a scenario only checks what it is about.

KTAP_N=0
KTAP_FAILED=0
MEMDIR=/sys/devices/system/memory
# A scenario that goes on in a kernel it kexec'ed into passes its counts on the
# command line (vmem.ktap=N,FAILED): one KTAP stream across both kernels.
case " $(cat /proc/cmdline) " in
*" vmem.ktap="*)
	_k=$(sed 's/.* vmem\.ktap=\([0-9]*,[0-9]*\).*/\1/' /proc/cmdline)
	KTAP_N=${_k%,*} KTAP_FAILED=${_k#*,}
	;;
*) echo "KTAP version 1" ;;
esac

ok()      { KTAP_N=$((KTAP_N + 1)); echo "ok $KTAP_N $*"; }
not_ok()  { KTAP_N=$((KTAP_N + 1)); KTAP_FAILED=$((KTAP_FAILED + 1)); echo "not ok $KTAP_N $*"; }
skip()    { KTAP_N=$((KTAP_N + 1)); echo "ok $KTAP_N $1 # SKIP $2"; }
diag()    { echo "# $*"; }

# check DESC CMD...: one result from a command's exit status.
check() { _d=$1; shift; if "$@"; then ok "$_d"; else not_ok "$_d"; fi; }

# check_eq DESC EXPECTED ACTUAL
check_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else diag "expected '$2', got '$3'"; not_ok "$1"; fi
}

ktap_finish() {
	echo "1..$KTAP_N"
	[ "$KTAP_FAILED" -eq 0 ]
}

# bail DESC: stop the scenario after a failure that makes the rest meaningless.
bail() { not_ok "$*"; ktap_finish; exit 1; }

# --- host control channel (ttyS1) ---------------------------------------------------
# hostcmd REQUEST...: ask the host to act over QMP; prints the reply after "ok".
# Requests: resize DEV BYTES | size DEV | wait-size DEV BYTES SECS | qom-get DEV PROP
#           | resize-midway DEV FIRST THEN (-> "FROM SEEN": the size was FROM, and THEN
#             was asked for when the size had moved to SEEN on its way to FIRST)
#           | qom-set DEV PROP INT | balloon BYTES | balloon-actual | balloon-stats | time
#           | qemu-rss (-> resident KiB of the QEMU process, on the host)
_hostcmd_open() {
	[ -n "$_HOSTCMD_OPEN" ] && return
	stty -F /dev/ttyS1 raw -echo 2>/dev/null
	exec 9<>/dev/ttyS1
	_HOSTCMD_OPEN=1
}
hostcmd() {
	_hostcmd_open
	echo "$*" >&9
	read -r _reply <&9
	case "$_reply" in
	ok*) _r=${_reply#ok}; echo "${_r# }" ;;
	*) echo "# hostcmd '$*' failed: $_reply" >&2; return 1 ;;
	esac
}

# --- memory helpers -------------------------------------------------------------
memtotal_kb() { awk '/^MemTotal:/ { print $2 }' /proc/meminfo; }
block_size() { printf '%d\n' "0x$(cat $MEMDIR/block_size_bytes)"; }
# Sorted memory block numbers present in sysfs.
blocks() { ls -d $MEMDIR/memory[0-9]* 2>/dev/null | sed 's/.*memory//' | sort -n; }
block_state() { cat $MEMDIR/memory$1/state; }
block_zones() { cat $MEMDIR/memory$1/valid_zones; }
nr_blocks() { blocks | wc -l; }
gib() { echo $(($1 << 30)); }
mib() { echo $(($1 << 20)); }

# wait_for SECONDS 'EXPR': poll the shell expression EXPR every 0.1 s until it
# succeeds. EXPR is evaluated anew each time, so quote it: wait_for 5 '[ -e "$f" ]'.
wait_for() {
	_t=$(($1 * 10)); shift
	while [ $_t -gt 0 ]; do
		eval "$*" && return 0
		sleep 0.1
		_t=$((_t - 1))
	done
	eval "$*"
}

# wait_memtotal KB SECONDS: wait until MemTotal is exactly KB.
wait_memtotal() { wait_for "$2" '[ "$(memtotal_kb)" -eq '"$1"' ]'; }

# --- drivers -----------------------------------------------------------------------
# Module names of the drivers under test, by $VMEM_DRIVER (c | rust).
vmem_module() {
	case "$VMEM_DRIVER" in
	c) echo virtio_mem ;;
	rust) echo virtio_mem_rs ;;
	esac
}
balloon_module() {
	case "$VMEM_DRIVER" in
	c) echo virtio_balloon ;;
	rust) echo virtio_balloon_rs ;;
	esac
}

# balloon_probe: loads the balloon driver under test and checks that it bound the balloon
# device. Sets BMOD (the module), BDEV (virtioN), BFEAT (its negotiated features, one
# character per bit) and BS (the Rust driver's debugfs status file).
balloon_probe() {
	BMOD=$(balloon_module)
	check "modprobe $BMOD" modprobe "$BMOD"
	BDEV=$(basename "$(ls -d /sys/bus/virtio/drivers/$BMOD/virtio* 2>/dev/null | head -1)")
	[ -n "$BDEV" ] || bail "$BMOD is bound to the balloon device"
	ok "$BMOD is bound to the balloon device ($BDEV)"
	BFEAT=$(cat /sys/bus/virtio/devices/$BDEV/features)
	BS=/sys/kernel/debug/virtio_balloon_rs.$BDEV/status
}
# feature_bit N: whether the balloon device negotiated feature bit N (1 or 0).
feature_bit() { echo "$BFEAT" | cut -c$(($1 + 1)); }
# bs_field NAME: field NAME of the Rust balloon driver's status.
bs_field() { sed -n "s/^$1: //p" "$BS"; }

# offline_pages ADDR BYTES: pages of [ADDR, ADDR + BYTES) with PageOffline set, which
# balloon pages have (KPF_OFFLINE, bit 23 of /proc/kpageflags), as do pages virtio-mem keeps
# offline. ADDR and BYTES are multiples of 2 MiB.
offline_pages() {
	dd if=/proc/kpageflags bs=4096 skip=$(($1 / 4096 * 8 / 4096)) count=$(($2 / 4096 * 8 / 4096)) 2>/dev/null |
		od -An -v -tx8 |
		awk '{ for (i = 1; i <= NF; i++) if (index("89abcdef", substr($i, length($i) - 5, 1))) n++ } END { print n + 0 }'
}

# migrated_once INMEM MOVED: whether MOVED migrations account for INMEM balloon pages that
# had to leave memory being unplugged: at least one each, and at most a tenth more. A page
# can migrate twice: migration puts it in movable memory, which may belong to the same
# device and be unplugged later (25 to 735 extra of 98304 pages in bench/balloon-unplug on
# a release kernel, both pairs of drivers). Each extra migration costs device requests.
migrated_once() { [ "${2:-0}" -ge "$1" ] && [ "${2:-0}" -le $(($1 + $1 / 10)) ]; }

# --- kexec ------------------------------------------------------------------------
# vmem_phase: "2" in the kernel a scenario kexec'ed into (vmem.phase=2), else "1".
vmem_phase() { case " $(cat /proc/cmdline) " in *" vmem.phase=2 "*) echo 2 ;; *) echo 1 ;; esac; }
# kexec_prepare [--crash] EXTRA...: load this kernel (/boot/bzImage) with an initramfs
# made of this one, to run the same scenario as phase 2 (vmem_phase), and report it as
# one check; bails out if that fails. The command line is this one without crashkernel=,
# plus EXTRA and the KTAP counts, which include this check: no check may follow before
# the jump.
kexec_prepare() {
	_crash= _flag=/sys/kernel/kexec_loaded
	[ "$1" = --crash ] && { _crash=--crash _flag=/sys/kernel/kexec_crash_loaded; shift; }
	# -xdev: mount points (/proc, /sys, /dev, /tmp) come along empty.
	(cd / && find . -xdev ! -path ./boot/bzImage | cpio -o -H newc 2>/dev/null) >/tmp/kexec-initrd ||
		bail "kexec: make the initramfs"
	_cmd=$(tr ' ' '\n' </proc/cmdline | grep -v '^crashkernel=' | tr '\n' ' ')
	kexec_load $_crash /boot/bzImage /tmp/kexec-initrd \
		"$_cmd $* vmem.phase=2 vmem.ktap=$((KTAP_N + 1)),$KTAP_FAILED" &&
		[ "$(cat $_flag)" = 1 ] || bail "kexec: load this kernel${_crash:+ as the crash kernel}"
	ok "kexec: this kernel is loaded${_crash:+ as the crash kernel}"
}
# console_drain: wait until everything printed so far has left the serial console. A
# write returns once the tty has the text, not the UART; a crash or a kexec right after
# would cut the last lines off. stty sets the console's own settings with TCSADRAIN.
console_drain() { stty -F /dev/console "$(stty -F /dev/console -g)"; }
# expect_crash: tell the host runner that the kernel crashes on purpose now; the
# console check skips the crash report until the next kernel boots.
expect_crash() { echo "# vmem-expected-crash"; console_drain; }

# --- devices, zones, the Rust driver's status --------------------------------------
# bound N: virtio device N (virtioN) has a driver bound.
bound() { [ -e /sys/bus/virtio/devices/virtio$1/driver ]; }
# driver_of N: the name of the driver bound to virtioN; empty if none.
driver_of() { basename "$(readlink /sys/bus/virtio/devices/virtio$1/driver 2>/dev/null)" 2>/dev/null; }
# movable_free_kb: free memory in ZONE_MOVABLE (of the first node that has one), in kB.
movable_free_kb() { awk '/zone +Movable/ { m = 1 } m && /nr_free_pages/ { print $2 * 4; exit }' /proc/zoneinfo; }
# uptime_s, uptime_cs: seconds and centiseconds since boot.
uptime_s() { sed 's/\..*//' /proc/uptime; }
uptime_cs() { sed 's/ .*//; s/\.//' /proc/uptime; }
# RS_STATUS: the Rust virtio-mem driver's debugfs status of virtio0; rs_field NAME: one of
# its fields.
RS_STATUS=/sys/kernel/debug/virtio_mem_rs.virtio0/status
rs_field() { sed -n "s/^$1: //p" $RS_STATUS; }

# --- balloon and vmstat helpers ------------------------------------------------------
vmstat() { awk -v k="$1" '$1 == k { print $2 }' /proc/vmstat; }
meminfo_kb() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }
# balloon_stat NAME: one value from the host's view of the guest stats (hostcmd balloon-stats).
balloon_stat() { hostcmd balloon-stats | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'; }

# --- memhog: hold and verify memory (tests/guest/progs/memhog.c) ---------------------
# memhog_start MIB [thp]: start it in the background and wait until its memory is filled
# (in transparent huge pages with "thp").
memhog_start() {
	MEMHOG_DIR=$(mktemp -d)
	memhog "$1" "$MEMHOG_DIR" ${2:-} &
	MEMHOG_PID=$!
	wait_for 120 '[ -e "$MEMHOG_DIR/ready" ]'
}
# memhog_verify: prints "pages N corrupted M" after a full verification.
memhog_verify() {
	rm -f "$MEMHOG_DIR/result"
	touch "$MEMHOG_DIR/verify"
	wait_for 120 '[ -e "$MEMHOG_DIR/result" ]' && cat "$MEMHOG_DIR/result"
}
# memhog_stop: last verification, then exit; returns its status (corrupted pages).
memhog_stop() {
	touch "$MEMHOG_DIR/stop"
	wait "$MEMHOG_PID"
}

# --- kselftests (tests/selftests, copied to /tests/selftests) -------------------------
KSFT_ROOT=/tests/selftests

# ksft_hook DEV: check that DEV (vmN is virtioN) is bound to the driver under
# test, write /tmp/vmem-resize, the VIRTIO_MEM_RESIZE hook of the
# memory-hotplug-zones kselftests ("vmem-resize BYTES [SECONDS]": resize DEV
# over the host channel and wait until it has plugged BYTES), and export it with
# VIRTIO_MEM_BLOCK_SIZE, DEV's block size.
ksft_hook() {
	_drv=$(readlink /sys/bus/virtio/devices/virtio${1#vm}/driver 2>/dev/null)
	check_eq "virtio${1#vm} ($1) is bound to $(vmem_module)" "$(vmem_module)" "${_drv##*/}"
	VIRTIO_MEM_BLOCK_SIZE=$(hostcmd qom-get "$1" block-size) || bail "read $1's block size"
	export VIRTIO_MEM_BLOCK_SIZE
	cat >/tmp/vmem-resize <<-HOOK
	#!/bin/sh
	. /tests/lib.sh >/dev/null
	hostcmd resize $1 "\$1" >/dev/null && hostcmd wait-size $1 "\$1" "\${2:-120}"
	HOOK
	chmod +x /tmp/vmem-resize
	export VIRTIO_MEM_RESIZE=/tmp/vmem-resize
}

# ksft_relay: read a kselftest's KTAP output on stdin and report each of its
# results as one of ours ("ok", "not ok", "ok ... # SKIP reason"); its
# diagnostics pass through as diagnostics. Sets KSFT_SEEN, KSFT_PLAN.
ksft_relay() {
	KSFT_SEEN=0 KSFT_PLAN=
	while IFS= read -r _l; do
		case "$_l" in
		"TAP version"*|"KTAP version"*) ;;
		"1..0 #"*) KSFT_PLAN=0; _why=${_l#*# SKIP}; skip "${KSFT_NAME:-kselftest}" "${_why# }" ;;
		1..*) KSFT_PLAN=${_l#1..} ;;
		"ok "*|"not ok "*)
			KSFT_SEEN=$((KSFT_SEEN + 1))
			_r=${_l#not }; _r=${_r#ok }; _r=${_r#* }	# drop "[not ]ok N "
			_desc=${_r%%#*}; _desc=${_desc% }; _dir=
			case "$_r" in *"#"*) _dir=${_r#*#}; _dir=${_dir# } ;; esac
			case "$_l:$_dir" in
			"not ok"*) not_ok "$_desc${_dir:+ # $_dir}" ;;
			*:SKIP*|*:skip*) _why=${_dir#[Ss][Kk][Ii][Pp]}; skip "$_desc" "${_why# }" ;;
			*) ok "$_desc" ;;
			esac ;;
		"#"*) echo "$_l" ;;
		*) echo "# $_l" ;;
		esac
	done
}

# ksft_run PATH [ARGS...]: run the kselftest /tests/selftests/PATH, relay its
# results, and fail if it did not run its whole plan or exited with an error
# (kselftest exit codes: 0 pass, 4 skip).
ksft_run() {
	_t=$KSFT_ROOT/$1
	shift
	KSFT_NAME=$(basename "$_t")
	KSFT_FAILED_BEFORE=$KTAP_FAILED
	diag "kselftest $_t $*"
	rm -f /tmp/ksft.fifo /tmp/ksft.rc
	mkfifo /tmp/ksft.fifo
	( cd "$(dirname "$_t")" && "$_t" "$@"; echo $? >/tmp/ksft.rc ) >/tmp/ksft.fifo 2>&1 &
	ksft_relay </tmp/ksft.fifo
	wait
	_rc=$(cat /tmp/ksft.rc 2>/dev/null || echo missing)
	rm -f /tmp/ksft.fifo
	if [ "$KSFT_PLAN" != 0 ] && [ "$KSFT_PLAN" != "$KSFT_SEEN" ]; then
		not_ok "$KSFT_NAME ran its plan (plan '${KSFT_PLAN}', saw $KSFT_SEEN results)"
	fi
	case "$_rc" in
	0|4) ;;
	*) [ "$KSFT_FAILED_BEFORE" = "$KTAP_FAILED" ] && not_ok "$KSFT_NAME exit status $_rc" ;;
	esac
}
