// SPDX-License-Identifier: GPL-2.0

//! The memory notifier: tracks offline memory of the device and refuses hotplug during
//! teardown.
//!
//! It runs while the worker adds or removes memory with the state lock held, so it never takes
//! that lock: it uses atomics, and the locks of the pages the worker took from the allocator
//! (`mbs` in Sub-Block Mode, `kept` in Big Block Mode), which the worker does not hold while
//! it offlines.

use crate::{
    context::sub_saturating,
    device::VirtioMem, //
};
use kernel::{
    mm::hotplug::{
        notifier::{
            Event,
            Handler,
            Notification,
            NotifyResult, //
        },
        PhysRange, //
    },
    prelude::*,
    sync::{
        atomic::Relaxed,
        Arc, //
    },
};

/// The memory notifier of one device.
pub(crate) struct Notifier(pub(crate) Arc<VirtioMem>);

impl Handler for Notifier {
    fn notify(&self, n: &Notification<'_>) -> NotifyResult {
        let (vm, event) = (&self.0, n.event());
        let (cx, mode) = (&vm.cx, vm.mode.ops());
        let Some(r) = n.range().phys() else {
            return NotifyResult::Done;
        };
        let Some(region) = PhysRange::new(cx.layout.addr, cx.layout.region_size) else {
            return NotifyResult::Done;
        };
        if !region.overlaps(&r) {
            return NotifyResult::Done;
        }
        if !region.contains(&r) || !mode.may_be_unit(r) {
            dev_warn!(
                cx.vdev,
                "unexpected memory range {:#x}+{:#x}\n",
                r.start(),
                r.size()
            );
            return NotifyResult::Veto(EINVAL);
        }
        if matches!(event, Event::GoingOnline | Event::GoingOffline) && cx.removing.load(Relaxed) {
            return NotifyResult::Veto(EBUSY);
        }
        let res = mode.notify(cx, n, r);
        if !matches!(res, NotifyResult::Ok) {
            return res;
        }
        match event {
            Event::Online => {
                sub_saturating(&cx.offline_bytes, r.size());
                // Below the offline threshold again: plugging may continue.
                vm.kick();
                NotifyResult::Ok
            }
            Event::Offline => {
                cx.offline_bytes.fetch_add(r.size(), Relaxed);
                // Offline memory can now be unplugged without migration.
                vm.kick();
                NotifyResult::Ok
            }
            _ => NotifyResult::Ok,
        }
    }
}
