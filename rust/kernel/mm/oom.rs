// SPDX-License-Identifier: GPL-2.0

//! OOM notifiers: give memory back before the OOM killer picks a victim.
//!
//! C header: [`include/linux/oom.h`](srctree/include/linux/oom.h)

use crate::{
    bindings,
    error::to_result,
    prelude::*,
    types::Opaque, //
};
use core::ffi::c_void;

/// Frees memory when the system is out of it.
pub trait OomHandler: Send + Sync {
    /// The system is out of memory: free what can be freed and return the number of pages
    /// freed. If any handler freed memory, the kernel retries the allocation instead of killing
    /// a task.
    ///
    /// Called in process context from the allocation that failed, with the OOM lock held: it may
    /// sleep, but it must not allocate memory itself (that could recurse into the OOM path).
    fn free_pages(&self) -> usize;
}

/// A registered OOM notifier.
///
/// # Invariants
///
/// `nb` is registered on the OOM notifier chain, with `Self::callback`, until drop.
#[pin_data(PinnedDrop)]
pub struct OomNotifier<T: OomHandler> {
    handler: T,
    #[pin]
    nb: Opaque<bindings::notifier_block>,
}

// SAFETY: The chain owns `nb` while registered and serializes its changes itself; `T` is `Send`.
unsafe impl<T: OomHandler> Send for OomNotifier<T> {}
// SAFETY: `&OomNotifier` only gives out `&T`, which is `Sync`.
unsafe impl<T: OomHandler> Sync for OomNotifier<T> {}

impl<T: OomHandler> OomNotifier<T> {
    /// Registers `handler`; notifiers with a higher `priority` are called first (virtio-balloon
    /// uses 80).
    pub fn new(priority: i32, handler: T) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            // Written before `nb` is registered, so it is ready for the first call.
            handler,
            nb <- Opaque::try_ffi_init(move |nb: *mut bindings::notifier_block| {
                // SAFETY: `nb` is valid for writes; it is pinned inside `Self`.
                unsafe {
                    nb.write(bindings::notifier_block {
                        notifier_call: Some(Self::callback),
                        next: core::ptr::null_mut(),
                        priority,
                    })
                };
                // SAFETY: `nb` is initialized and stays pinned until `drop` unregisters it.
                to_result(unsafe { bindings::register_oom_notifier(nb) })
            }),
        })
    }

    /// The handler.
    pub fn handler(&self) -> &T {
        &self.handler
    }

    /// # Safety
    ///
    /// Called by the OOM notifier chain with the `nb` of a live `OomNotifier<T>` and a pointer
    /// to the `unsigned long` count of freed pages.
    unsafe extern "C" fn callback(
        nb: *mut bindings::notifier_block,
        _event: usize,
        freed: *mut c_void,
    ) -> c_int {
        // SAFETY: `nb` is the `nb` field of a live `OomNotifier<T>`, which unregisters it before
        // it goes away.
        let this = unsafe { &*crate::container_of!(Opaque::cast_from(nb), Self, nb) };
        let n = this.handler.free_pages();
        // SAFETY: `out_of_memory()` passes a valid `unsigned long *`.
        unsafe {
            let freed = freed.cast::<usize>();
            *freed = (*freed).saturating_add(n);
        }
        // CAST: `NOTIFY_OK` is a small constant.
        bindings::NOTIFY_OK as c_int
    }
}

#[pinned_drop]
impl<T: OomHandler> PinnedDrop for OomNotifier<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: `nb` is registered (type invariant). The chain is a blocking notifier: no
        // callback runs once this returns.
        unsafe { bindings::unregister_oom_notifier(self.nb.get()) };
    }
}
