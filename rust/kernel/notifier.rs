// SPDX-License-Identifier: GPL-2.0

//! Notifier chains: a Rust handler on a chain of `struct notifier_block`s.
//!
//! A notifier chain calls every `notifier_block` registered on it, highest priority first, with
//! an action and a pointer whose meaning the chain defines. [`Registration`] holds a handler
//! and a `notifier_block` that calls it; the chain is a type implementing [`Chain`], which says
//! how to register on it and how its calls become calls of the handler. A subsystem exposes a
//! chain as a handler trait and a `Registration` type alias, as the memory notifier
//! ([`crate::mm::hotplug::notifier`]) does.
//!
//! C header: [`include/linux/notifier.h`](srctree/include/linux/notifier.h)

use crate::{
    bindings,
    error::to_result,
    prelude::*,
    types::Opaque, //
};
use core::{
    ffi::c_void,
    marker::PhantomData, //
};

/// A notifier chain that calls handlers of type `T`.
///
/// # Safety
///
/// - [`Chain::register`] adds the block to the chain, which then calls its `notifier_call`
///   with the block, until [`Chain::unregister`] for the block returns; once it has returned,
///   no call of the block is running and none starts (a blocking or SRCU chain, or a chain
///   whose unregistration synchronizes with its callers).
/// - [`Chain::call`] accepts whatever the chain passes to its blocks.
pub unsafe trait Chain<T: ?Sized> {
    /// Adds `nb` to the chain.
    ///
    /// # Safety
    ///
    /// `nb` is initialized and stays valid and in place until [`Chain::unregister`] for it
    /// returns.
    unsafe fn register(nb: *mut bindings::notifier_block) -> c_int;

    /// Removes `nb` from the chain.
    ///
    /// # Safety
    ///
    /// `nb` was added with [`Chain::register`] and not removed since.
    unsafe fn unregister(nb: *mut bindings::notifier_block);

    /// Hands one call of the chain, `action` with `data`, to `handler`, and returns what the
    /// block returns to the chain (`NOTIFY_*`).
    ///
    /// # Safety
    ///
    /// `action` and `data` are what the chain passes to its blocks.
    unsafe fn call(handler: &T, action: usize, data: *mut c_void) -> c_int;
}

/// A handler `T` registered on notifier chain `C`.
///
/// The handler is initialized before the block is registered, so it is ready for the first
/// call; dropping the registration removes the block from the chain, and no call of the
/// handler runs once the drop has returned.
///
/// # Invariants
///
/// `nb` is registered on chain `C` with [`C::register`](Chain::register) for the whole life of
/// the value, and its callback is `Self::callback`.
#[pin_data(PinnedDrop)]
pub struct Registration<C: Chain<T>, T: Send + Sync> {
    #[pin]
    handler: T,
    #[pin]
    nb: Opaque<bindings::notifier_block>,
    _chain: PhantomData<fn() -> C>,
}

// SAFETY: The notifier block is only used by the chain, which has its own locking; `T` is
// `Send`.
unsafe impl<C: Chain<T>, T: Send + Sync> Send for Registration<C, T> {}
// SAFETY: `&Registration` only gives out `&T`, and `T` is `Sync`.
unsafe impl<C: Chain<T>, T: Send + Sync> Sync for Registration<C, T> {}

impl<C: Chain<T>, T: Send + Sync> Registration<C, T> {
    /// Registers the handler `handler` initializes with `priority`: blocks with a higher
    /// priority are called first. `handler` may be a plain value or an initializer. May sleep.
    pub fn new<E>(priority: i32, handler: impl PinInit<T, E>) -> impl PinInit<Self, Error>
    where
        Error: From<E>,
    {
        try_pin_init!(Self {
            // Initialized before `nb`, so it is ready for the first call.
            handler <- handler,
            nb <- Opaque::try_ffi_init(move |nb: *mut bindings::notifier_block| {
                // SAFETY: `nb` is valid for writes; the block is pinned inside `Self`.
                unsafe {
                    nb.write(bindings::notifier_block {
                        notifier_call: Some(Self::callback),
                        next: core::ptr::null_mut(),
                        priority,
                    })
                };
                // SAFETY: `nb` is initialized and stays pinned until `drop` unregisters it.
                to_result(unsafe { C::register(nb) })
            }),
            _chain: PhantomData,
        })
    }

    /// The registered handler.
    pub fn handler(&self) -> &T {
        &self.handler
    }

    /// The block's `notifier_call`.
    ///
    /// # Safety
    ///
    /// Called by chain `C` with the `nb` of a live registration, and the chain's `action` and
    /// `data`.
    unsafe extern "C" fn callback(
        nb: *mut bindings::notifier_block,
        action: usize,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: The chain calls us with the `nb` we registered, which is the `nb` field of a
        // live `Registration` (it is unregistered before the registration is dropped).
        let this = unsafe { &*crate::container_of!(Opaque::cast_from(nb), Self, nb) };
        // SAFETY: `action` and `data` come from the chain.
        unsafe { C::call(&this.handler, action, data) }
    }
}

#[pinned_drop]
impl<C: Chain<T>, T: Send + Sync> PinnedDrop for Registration<C, T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant `nb` is registered on `C`. By `Chain`'s contract, no
        // callback runs once this returns.
        unsafe { C::unregister(self.nb.get()) };
    }
}
