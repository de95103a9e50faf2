// SPDX-License-Identifier: GPL-2.0

//! OOM notifiers: give memory back before the OOM killer picks a victim.
//!
//! C header: [`include/linux/oom.h`](srctree/include/linux/oom.h)

use crate::{
    bindings,
    notifier::Chain,
    prelude::*, //
};
use core::ffi::c_void;

/// Frees memory when the system is out of it.
pub trait Handler: Send + Sync {
    /// The system is out of memory: free what can be freed and return the number of pages
    /// freed. If any handler freed memory, the kernel retries the allocation instead of killing
    /// a task.
    ///
    /// Called in process context from the allocation that failed, with the OOM lock held: it may
    /// sleep, but it must not allocate memory itself (that could recurse into the OOM path).
    fn free_pages(&self) -> usize;
}

/// The OOM notifier chain (`register_oom_notifier()`).
pub struct OomChain;

// SAFETY: `register_oom_notifier()` adds the block to a blocking chain, whose rwsem
// `unregister_oom_notifier()` takes: no call runs once it returns. `out_of_memory()` passes a
// pointer to its `unsigned long` count of freed pages, which `call` expects.
unsafe impl<T: Handler> Chain<T> for OomChain {
    unsafe fn register(nb: *mut bindings::notifier_block) -> c_int {
        // SAFETY: Per the caller's guarantee, `nb` is initialized and stays in place.
        unsafe { bindings::register_oom_notifier(nb) }
    }

    unsafe fn unregister(nb: *mut bindings::notifier_block) {
        // SAFETY: Per the caller's guarantee, `nb` is registered.
        unsafe { bindings::unregister_oom_notifier(nb) };
    }

    unsafe fn call(handler: &T, _action: usize, freed: *mut c_void) -> c_int {
        let n = handler.free_pages();
        // SAFETY: `out_of_memory()` passes a valid `unsigned long *`.
        unsafe {
            let freed = freed.cast::<usize>();
            *freed = (*freed).saturating_add(n);
        }
        // CAST: `NOTIFY_OK` is a small constant.
        bindings::NOTIFY_OK as c_int
    }
}

/// A [`Handler`] registered as an OOM notifier: `Registration::new(priority, handler)`, where
/// notifiers with a higher `priority` are called first (virtio-balloon uses 80). See
/// [`crate::notifier::Registration`].
pub type Registration<T> = crate::notifier::Registration<OomChain, T>;
