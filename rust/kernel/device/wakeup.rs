// SPDX-License-Identifier: GPL-2.0

//! Wakeup events of a device.
//!
//! A device that can wake the system up, or whose driver handles wakeup events passed up from
//! its bus, says so with [`Device::set_wakeup_capable`]. User space then decides, through the
//! device's `power/wakeup` attribute in sysfs, whether its events count. While the driver
//! handles such an event, [`Device::stay_awake`] keeps the system from suspending until
//! [`Device::relax`]. The two do not nest: one `relax` ends any number of `stay_awake` calls,
//! and either is harmless when wakeup is not enabled for the device.
//!
//! Without `CONFIG_PM_SLEEP` all three do nothing.
//!
//! C header: [`include/linux/pm_wakeup.h`](srctree/include/linux/pm_wakeup.h)

use super::{
    Device,
    DeviceContext, //
};
#[cfg(CONFIG_PM_SLEEP)]
use crate::bindings;

impl<Ctx: DeviceContext> Device<Ctx> {
    /// Sets whether the device can handle wakeup events (`device_set_wakeup_capable()`): this
    /// adds or removes its `power/wakeup` attributes in sysfs.
    ///
    /// Might sleep.
    pub fn set_wakeup_capable(&self, capable: bool) {
        #[cfg(CONFIG_PM_SLEEP)]
        // SAFETY: By the type invariant `self.as_raw()` is a valid `struct device`.
        unsafe {
            bindings::device_set_wakeup_capable(self.as_raw(), capable)
        };
        #[cfg(not(CONFIG_PM_SLEEP))]
        let _ = capable;
    }

    /// A wakeup event of the device is being handled (`pm_stay_awake()`): if wakeup is enabled
    /// for the device, the system does not suspend until [`Self::relax`].
    ///
    /// May be called in any context.
    pub fn stay_awake(&self) {
        #[cfg(CONFIG_PM_SLEEP)]
        // SAFETY: By the type invariant `self.as_raw()` is a valid `struct device`;
        // `pm_stay_awake()` takes a spinlock with interrupts disabled.
        unsafe {
            bindings::pm_stay_awake(self.as_raw())
        };
    }

    /// The wakeup events of the device have been handled (`pm_relax()`).
    ///
    /// May be called in any context.
    pub fn relax(&self) {
        #[cfg(CONFIG_PM_SLEEP)]
        // SAFETY: As in `stay_awake`.
        unsafe {
            bindings::pm_relax(self.as_raw())
        };
    }
}
