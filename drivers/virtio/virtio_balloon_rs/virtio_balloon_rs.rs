// SPDX-License-Identifier: GPL-2.0

//! virtio-balloon: give guest memory back to the hypervisor, in Rust.
//!
//! The hypervisor sets a target balloon size; the driver inflates (takes pages from the guest
//! and tells the device their frame numbers) or deflates (tells the device, then gives pages
//! back) until the balloon matches it. Inflated pages stay movable: compaction and memory
//! offlining migrate them through the balloon core, and the driver tells the device about the
//! move. It is a Rust reimplementation of `drivers/virtio/virtio_balloon.c`; see
//! `Documentation/driver-api/virtio/virtio-balloon-rs.rst`.

mod balloon;
mod counters;
mod driver;
mod hint;
mod protocol;
mod reporting;

kernel::module_virtio_driver! {
    type: driver::VirtioBalloonDriver,
    name: "virtio_balloon_rs",
    authors: ["virtio-mem-rs contributors"],
    description: "Virtio balloon driver (Rust)",
    license: "GPL",
}
