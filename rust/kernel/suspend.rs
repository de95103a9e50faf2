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
