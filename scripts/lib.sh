# SPDX-License-Identifier: GPL-2.0
# Common settings for the project's scripts. Source it; do not run it.
#
# Everything big lives in a cache outside the checkout, so that a fresh clone
# (and CI) reuses the kernel build:
#
#   VMEM_CACHE     default: ${XDG_CACHE_HOME:-$HOME/.cache}/vmem-rs
#   ├── dl/        downloaded .deb of linux-source-7.3
#   ├── tools/     bindgen-cli (cargo install --root)
#   ├── venv/      Python venv with qemu.qmp
#   └── linux-<ver>/
#       ├── pristine/  upstream source, never modified
#       ├── tree/      hard-linked copy of pristine with our overlay applied
#       └── <flavour>/ one per kernel flavour (release, debug), side by side:
#           ├── build/             O= build directory
#           ├── modroot/           installed modules
#           ├── ext/               external test modules (tests/modules)
#           └── initramfs.cpio.gz  the guest's initramfs
#
# VMEM_KERNEL picks the flavour:
#   release  checkers off: make demo, scripts/bench (the default here)
#   debug    the kernel's checkers on (lockdep, KFENCE, DEBUG_PAGEALLOC, ...):
#            make check and tests/run default to it
#   kasan    KASAN, built with LLVM (make check KERNEL=kasan)
#
# Wipe it with: rm -rf "${XDG_CACHE_HOME:-$HOME/.cache}/vmem-rs"

set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VMEM_CACHE=${VMEM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vmem-rs}
# The Debian package that carries the kernel source.
KSRC_PKG=${KSRC_PKG:-linux-source-7.3}

TOOLS_DIR=$VMEM_CACHE/tools
VENV=$VMEM_CACHE/venv
BINDGEN=$TOOLS_DIR/bin/bindgen

VMEM_KERNEL=${VMEM_KERNEL:-release}
case $VMEM_KERNEL in
release|debug|kasan) ;;
*) printf 'error: VMEM_KERNEL=%s: a kernel flavour is release, debug or kasan\n' "$VMEM_KERNEL" >&2; exit 1 ;;
esac
export VMEM_KERNEL

export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}

# Debian's rustc-web/rust-web-src pair: rustup's toolchain has no rust-src.
KMAKE_VARS=(
	RUSTC=/usr/bin/rustc
	RUSTDOC=/usr/bin/rustdoc
	RUST_LIB_SRC=/usr/lib/rustlib/src/rust/library
	BINDGEN="$BINDGEN"
	CLIPPY_DRIVER=/usr/bin/clippy-driver
	# Always lint Rust with clippy: toggling it would rebuild every Rust object.
	CLIPPY=1
)
# KASAN with Rust needs a Clang-built kernel (see scripts/config/kasan.config).
[ "$VMEM_KERNEL" = kasan ] && KMAKE_VARS+=(LLVM=-19)

JOBS=${JOBS:-$(( $(nproc) + 1 ))}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# The kernel version of the extracted source, e.g. 7.3.4; empty before fetch.
kernel_version_file() { echo "$VMEM_CACHE/kernel-version"; }
kernel_version() { cat "$(kernel_version_file)" 2>/dev/null || true; }

kdir() {
	local v
	v=$(kernel_version)
	[ -n "$v" ] || die "kernel source not fetched yet; run scripts/setup-host"
	echo "$VMEM_CACHE/linux-$v"
}

# The directory of this flavour's build, modules and initramfs.
kout() { echo "$(kdir)/$VMEM_KERNEL"; }

# The config fragments of this flavour, base first.
kfragments() {
	echo "$TOP/scripts/config/vmem-rs.config"
	case $VMEM_KERNEL in
	debug) echo "$TOP/scripts/config/debug.config" ;;
	kasan) echo "$TOP/scripts/config/kasan.config" ;;
	esac
}

# Run make against the overlaid tree with our toolchain variables.
kmake() {
	local k
	k=$(kdir)
	make -C "$k/tree" O="$(kout)/build" "${KMAKE_VARS[@]}" "$@"
}
