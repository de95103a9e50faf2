// SPDX-License-Identifier: GPL-2.0

//! Harness canary: WARNs once on load, on purpose.
//!
//! The test runner must report a scenario that loads this module as failed,
//! which proves that a kernel warning can never pass the suite unnoticed.

use kernel::prelude::*;

module! {
    type: WarnCanary,
    name: "warn_canary",
    authors: ["virtio-mem-rs contributors"],
    description: "Emits one kernel WARNING on load to test the test harness",
    license: "GPL",
}

struct WarnCanary;

impl kernel::Module for WarnCanary {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("warn_canary: warning on purpose\n");
        kernel::warn_on!(true);
        Ok(WarnCanary)
    }
}
