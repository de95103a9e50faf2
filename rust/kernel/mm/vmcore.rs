// SPDX-License-Identifier: GPL-2.0

//! kdump: `/proc/vmcore` callbacks for drivers that manage physical memory.
//!
//! A kdump kernel reads the crashed kernel's memory through `/proc/vmcore`. Some of the ranges
//! in the dump's ELF header may not be backed any more (memory a virtio-mem device unplugged,
//! pages a balloon gave away); reading them could make the hypervisor fault memory in, or fail.
//! A driver that knows registers a [`Handler`]: the vmcore code asks it about every page
//! frame before reading it, and reads zeroes for a page that any callback says is not RAM.
//!
//! The callbacks exist only with `CONFIG_PROC_VMCORE`; [`is_kdump_kernel`] always.
//!
//! C header: [`include/linux/crash_dump.h`](srctree/include/linux/crash_dump.h)

use crate::{bindings, prelude::*, types::Opaque};

/// Whether this kernel is a kdump kernel: it booted after a crash of the previous kernel, which
/// passed it the ELF core header (`elfcorehdr=`). Always `false` without `CONFIG_CRASH_DUMP`.
pub fn is_kdump_kernel() -> bool {
    // SAFETY: FFI call without preconditions.
    unsafe { bindings::is_kdump_kernel() }
}

#[cfg(CONFIG_PROC_VMCORE)]
/// The driver's answers to `/proc/vmcore`.
pub trait Handler: Send + Sync {
    /// Whether page frame `pfn` is RAM that may be read. Return `true` for pages the driver does
    /// not manage, or when it cannot tell; `false` makes the dump show zeroes for the page
    /// without touching it.
    ///
    /// Called in process context (a reader of `/proc/vmcore`), possibly for many pages in a
    /// row; it may sleep.
    fn pfn_is_ram(&self, pfn: usize) -> bool;
}

#[cfg(CONFIG_PROC_VMCORE)]
/// A registered `struct vmcore_cb`.
///
/// # Invariants
///
/// `cb` is registered with `register_vmcore_cb()`, with `Self::pfn_is_ram_callback`, until
/// drop.
#[pin_data(PinnedDrop)]
pub struct Registration<T: Handler> {
    #[pin]
    handler: T,
    #[pin]
    cb: Opaque<bindings::vmcore_cb>,
}

#[cfg(CONFIG_PROC_VMCORE)]
// SAFETY: The vmcore code serializes changes to `cb` with its own mutex; `T` is `Send`.
unsafe impl<T: Handler> Send for Registration<T> {}
#[cfg(CONFIG_PROC_VMCORE)]
// SAFETY: `&Registration` only gives out `&T`, which is `Sync`.
unsafe impl<T: Handler> Sync for Registration<T> {}

#[cfg(CONFIG_PROC_VMCORE)]
impl<T: Handler> Registration<T> {
    /// Registers `handler` (a value or an initializer). May sleep.
    pub fn new<E>(handler: impl PinInit<T, E>) -> impl PinInit<Self, Error>
    where
        Error: From<E>,
    {
        try_pin_init!(Self {
            // Initialized before `cb` is registered: ready for the first call.
            handler <- handler,
            cb <- Opaque::ffi_init(move |cb: *mut bindings::vmcore_cb| {
                // SAFETY: `cb` is valid for writes; all-zero is a valid `struct vmcore_cb` (no
                // callbacks, an empty list head that `register_vmcore_cb()` initializes).
                unsafe { cb.write_bytes(0, 1) };
                // SAFETY: As above.
                unsafe { (*cb).pfn_is_ram = Some(Self::pfn_is_ram_callback) };
                // SAFETY: `cb` is initialized and stays pinned until `drop` unregisters it.
                unsafe { bindings::register_vmcore_cb(cb) };
            }),
        })
    }

    /// The registered handler.
    pub fn handler(&self) -> &T {
        &self.handler
    }

    /// # Safety
    ///
    /// Called by the vmcore code with the `cb` of a live registration.
    unsafe extern "C" fn pfn_is_ram_callback(cb: *mut bindings::vmcore_cb, pfn: usize) -> bool {
        // SAFETY: `cb` is the `cb` field of a live `Registration<T>`: it is unregistered
        // (and the vmcore code waits for callers, with SRCU) before it goes away.
        let this = unsafe { &*crate::container_of!(Opaque::cast_from(cb), Self, cb) };
        this.handler.pfn_is_ram(pfn)
    }
}

#[cfg(CONFIG_PROC_VMCORE)]
#[pinned_drop]
impl<T: Handler> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: `cb` is registered (type invariant). `unregister_vmcore_cb()` waits until no
        // callback runs any more (`synchronize_srcu()`).
        unsafe { bindings::unregister_vmcore_cb(self.cb.get()) };
    }
}
