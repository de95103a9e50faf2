// SPDX-License-Identifier: GPL-2.0

//! virtio-mem: paravirtualized memory hot(un)plug, in Rust.
//!
//! A virtio-mem device exposes a region of guest physical memory, of which the hypervisor asks
//! the guest to plug `requested_size` bytes. The driver plugs memory with the device, adds it to
//! the kernel, and unplugs it again when asked, offlining it first if it is online. It is a
//! Rust reimplementation of `drivers/virtio/virtio_mem.c`; see
//! `Documentation/driver-api/virtio/virtio-mem-rs.rst`.

mod bbm;
mod config;
mod context;
mod device;
mod driver;
#[cfg(CONFIG_PROC_VMCORE)]
mod kdump;
mod notifier;
mod order;
mod protocol;
mod sbm;

kernel::module_virtio_driver! {
    type: driver::VirtioMemDriver,
    name: "virtio_mem_rs",
    authors: ["virtio-mem-rs contributors"],
    description: "Virtio-mem driver (Rust)",
    license: "GPL",
    params: {
        unplug_online: bool {
            default: true,
            description: "Try to unplug online memory",
            perm: 0o644,
        },
        force_bbm: bool {
            default: false,
            description: "Force Big Block Mode. Default is 0 (auto-selection)",
            perm: 0o444,
        },
        bbm_block_size: u64 {
            default: 0,
            description: "Big Block size in bytes. Default is 0 (auto-detection).",
            perm: 0o444,
        },
    },
}
