// SPDX-License-Identifier: GPL-2.0

//! System suspend state.
//!
//! C header: [`include/linux/suspend.h`](srctree/include/linux/suspend.h)

use crate::bindings;
#[cfg(CONFIG_PM_SLEEP)]
use crate::prelude::*;

/// Whether the system is suspending (to idle, standby or memory), as opposed to hibernating or
/// running. Meaningful inside a driver's suspend callbacks.
pub fn target_is_suspend() -> bool {
    #[cfg(CONFIG_SUSPEND)]
    {
        // SAFETY: As in `target_is_suspend_to_idle`.
        let state =
            unsafe { core::ptr::read_volatile(&raw const bindings::pm_suspend_target_state) };
        state != bindings::PM_SUSPEND_ON
    }
    #[cfg(not(CONFIG_SUSPEND))]
    {
        false
    }
}

/// Whether the system is suspending to idle (s2idle), where memory keeps its contents and
/// devices stay powered. Meaningful inside the suspend callbacks of a driver (such as a virtio
/// driver's `freeze`), where the PM core has set the target state.
pub fn target_is_suspend_to_idle() -> bool {
    #[cfg(CONFIG_SUSPEND)]
    {
        // SAFETY: `pm_suspend_target_state` is a plain integer the PM core sets before it calls
        // the drivers' suspend callbacks; a racy read elsewhere is harmless, as in C.
        let state =
            unsafe { core::ptr::read_volatile(&raw const bindings::pm_suspend_target_state) };
        state == bindings::PM_SUSPEND_TO_IDLE
    }
    #[cfg(not(CONFIG_SUSPEND))]
    {
        false
    }
}

/// System sleep transitions, as the PM notifier chain reports them (`PM_*` in
/// `include/linux/suspend.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PmEvent {
    /// Going to hibernate.
    HibernationPrepare,
    /// Hibernation finished, or failed.
    PostHibernation,
    /// Going to suspend.
    SuspendPrepare,
    /// Suspend finished, or failed.
    PostSuspend,
    /// Going to restore a hibernation image.
    RestorePrepare,
    /// Restore failed.
    PostRestore,
}

impl PmEvent {
    /// The event for a notifier chain action, if it is one.
    pub fn from_raw(action: usize) -> Option<Self> {
        // CAST: The PM_* actions are small constants.
        Some(match action as u32 {
            bindings::PM_HIBERNATION_PREPARE => Self::HibernationPrepare,
            bindings::PM_POST_HIBERNATION => Self::PostHibernation,
            bindings::PM_SUSPEND_PREPARE => Self::SuspendPrepare,
            bindings::PM_POST_SUSPEND => Self::PostSuspend,
            bindings::PM_RESTORE_PREPARE => Self::RestorePrepare,
            bindings::PM_POST_RESTORE => Self::PostRestore,
            _ => return None,
        })
    }
}

/// Receives system sleep transitions.
#[cfg(CONFIG_PM_SLEEP)]
pub trait PmNotifier: Send + Sync {
    /// A transition begins or ends. Returning `Err` for a `*Prepare` event vetoes the
    /// transition: the PM core undoes what it did and the write to `/sys/power/state` fails
    /// with `EPERM`, as for C notifiers returning `NOTIFY_BAD`. Process context; may sleep.
    fn notify(&self, event: PmEvent) -> Result;
}

/// A registered PM notifier.
///
/// # Invariants
///
/// `nb` is registered on the PM notifier chain, with `Self::callback`, until drop.
#[cfg(CONFIG_PM_SLEEP)]
#[pin_data(PinnedDrop)]
pub struct PmRegistration<T: PmNotifier> {
    handler: T,
    #[pin]
    nb: crate::types::Opaque<bindings::notifier_block>,
}

// SAFETY: The chain owns `nb` while registered and serializes its changes itself; `T` is `Send`.
#[cfg(CONFIG_PM_SLEEP)]
unsafe impl<T: PmNotifier> Send for PmRegistration<T> {}
// SAFETY: `&PmRegistration` only gives out `&T`, which is `Sync`.
#[cfg(CONFIG_PM_SLEEP)]
unsafe impl<T: PmNotifier> Sync for PmRegistration<T> {}

#[cfg(CONFIG_PM_SLEEP)]
impl<T: PmNotifier> PmRegistration<T> {
    /// Registers `handler`; notifiers with a higher `priority` are called first (virtio-mem
    /// uses `i32::MAX`, to veto hibernation before anything else prepares for it).
    pub fn new(
        priority: i32,
        handler: T,
    ) -> impl crate::prelude::PinInit<Self, crate::error::Error> {
        crate::prelude::try_pin_init!(Self {
            // Written before `nb` is registered, so it is ready for the first event.
            handler,
            nb <- crate::types::Opaque::try_ffi_init(move |nb: *mut bindings::notifier_block| {
                // SAFETY: `nb` is valid for writes; it is pinned inside `Self`.
                unsafe {
                    nb.write(bindings::notifier_block {
                        notifier_call: Some(Self::callback),
                        next: core::ptr::null_mut(),
                        priority,
                    })
                };
                // SAFETY: `nb` is initialized and stays pinned until `drop` unregisters it.
                crate::error::to_result(unsafe { bindings::register_pm_notifier(nb) })
            }),
        })
    }

    /// # Safety
    ///
    /// Called by the PM notifier chain with the `nb` of a live `PmRegistration<T>`.
    unsafe extern "C" fn callback(
        nb: *mut bindings::notifier_block,
        action: usize,
        _data: *mut core::ffi::c_void,
    ) -> core::ffi::c_int {
        // SAFETY: `nb` is the `nb` field of a live `PmRegistration<T>`, which unregisters it
        // before it goes away.
        let this = unsafe { &*crate::container_of!(crate::types::Opaque::cast_from(nb), Self, nb) };
        let Some(event) = PmEvent::from_raw(action) else {
            // CAST: A small constant.
            return bindings::NOTIFY_DONE as core::ffi::c_int;
        };
        match this.handler.notify(event) {
            // CAST: Small constants.
            Ok(()) => bindings::NOTIFY_OK as core::ffi::c_int,
            Err(_) => bindings::NOTIFY_BAD as core::ffi::c_int,
        }
    }
}

#[cfg(CONFIG_PM_SLEEP)]
#[pinned_drop]
impl<T: PmNotifier> PinnedDrop for PmRegistration<T> {
    fn drop(self: core::pin::Pin<&mut Self>) {
        // SAFETY: `nb` is registered (type invariant). The chain is a blocking notifier: no
        // callback runs once this returns.
        unsafe { bindings::unregister_pm_notifier(self.nb.get()) };
    }
}
