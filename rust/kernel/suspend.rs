// SPDX-License-Identifier: GPL-2.0

//! System suspend state.
//!
//! C header: [`include/linux/suspend.h`](srctree/include/linux/suspend.h)

use crate::bindings;

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

/// PM notifiers: system sleep transitions, as they begin and end.
#[cfg(CONFIG_PM_SLEEP)]
pub mod notifier {
    use super::PmEvent;
    use crate::{
        bindings,
        notifier::Chain,
        prelude::*, //
    };
    use core::ffi::c_void;

    /// Receives system sleep transitions.
    pub trait Handler: Send + Sync {
        /// A transition begins or ends. Returning `Err` for a `*Prepare` event vetoes the
        /// transition: the PM core undoes what it did and the write to `/sys/power/state`
        /// fails with `EPERM`, as for C notifiers returning `NOTIFY_BAD`. Process context; may
        /// sleep.
        fn notify(&self, event: PmEvent) -> Result;
    }

    /// The PM notifier chain (`register_pm_notifier()`).
    pub struct PmChain;

    // SAFETY: `register_pm_notifier()` adds the block to a blocking chain, whose rwsem
    // `unregister_pm_notifier()` takes: no call runs once it returns. `call` uses only the
    // action.
    unsafe impl<T: Handler> Chain<T> for PmChain {
        unsafe fn register(nb: *mut bindings::notifier_block) -> c_int {
            // SAFETY: Per the caller's guarantee, `nb` is initialized and stays in place.
            unsafe { bindings::register_pm_notifier(nb) }
        }

        unsafe fn unregister(nb: *mut bindings::notifier_block) {
            // SAFETY: Per the caller's guarantee, `nb` is registered.
            unsafe { bindings::unregister_pm_notifier(nb) };
        }

        unsafe fn call(handler: &T, action: usize, _data: *mut c_void) -> c_int {
            let Some(event) = PmEvent::from_raw(action) else {
                // CAST: A small constant.
                return bindings::NOTIFY_DONE as c_int;
            };
            match handler.notify(event) {
                // CAST: Small constants.
                Ok(()) => bindings::NOTIFY_OK as c_int,
                Err(_) => bindings::NOTIFY_BAD as c_int,
            }
        }
    }

    /// A [`Handler`] registered as a PM notifier: `Registration::new(priority, handler)`,
    /// where notifiers with a higher `priority` are called first (virtio-mem uses `i32::MAX`,
    /// to veto hibernation before anything else prepares for it). See
    /// [`crate::notifier::Registration`].
    pub type Registration<T> = crate::notifier::Registration<PmChain, T>;
}
