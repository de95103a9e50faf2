// SPDX-License-Identifier: GPL-2.0

//! What the driver counts of its work with the device, for the status and the tests.

use kernel::sync::atomic::Atomic;

/// Counters for the debugfs view and the tests.
pub(crate) struct Counters {
    pub(crate) tell_failed: Atomic<u64>,
    /// Migrations the device was told about.
    pub(crate) migrated: Atomic<u64>,
    /// Migrations noted and not told yet.
    pub(crate) migrate_pending: Atomic<u64>,
    pub(crate) migrate_busy: Atomic<u64>,
    pub(crate) oom_deflated: Atomic<u64>,
    pub(crate) out_of_puff: Atomic<u64>,
    /// Free page reports the device took back, their bytes, and reports that failed.
    pub(crate) reports: Atomic<u64>,
    pub(crate) reported_bytes: Atomic<u64>,
    pub(crate) report_failed: Atomic<u64>,
}

impl Counters {
    pub(crate) fn new() -> Self {
        Self {
            tell_failed: Atomic::new(0),
            migrated: Atomic::new(0),
            migrate_pending: Atomic::new(0),
            migrate_busy: Atomic::new(0),
            oom_deflated: Atomic::new(0),
            out_of_puff: Atomic::new(0),
            reports: Atomic::new(0),
            reported_bytes: Atomic::new(0),
            report_failed: Atomic::new(0),
        }
    }
}
