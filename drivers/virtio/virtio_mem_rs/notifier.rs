// SPDX-License-Identifier: GPL-2.0

//! The memory notifier: tracks offline memory of the device and refuses hotplug during
//! teardown.
//!
//! It runs while the worker adds or removes memory with the state lock held, so it never takes
//! that lock: it uses atomics, and the locks of the pages the worker took from the allocator
//! (`mbs` in Sub-Block Mode, `bb_kept` in Big Block Mode), which the worker does not hold
//! while it offlines.

use crate::device::{
    sub_saturating,
    VirtioMem, //
};
use kernel::{
    mm::hotplug::{
        notifier::{
            Event,
            Handler,
            NotifyResult,
            PfnRange, //
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
    fn notify(&self, event: Event, range: PfnRange) -> NotifyResult {
        let vm = &self.0;
        let Some(r) = range.phys() else {
            return NotifyResult::Done;
        };
        let Some(region) = PhysRange::new(vm.layout.addr, vm.layout.region_size) else {
            return NotifyResult::Done;
        };
        if !region.overlaps(&r) {
            return NotifyResult::Done;
        }
        // The core notifies one memory block at a time; a range that straddles big blocks is
        // not memory this driver added.
        let bb = |a: u64| (a - vm.first_bb.min(a)) / vm.bb_size;
        if !region.contains(&r) || (vm.sbm.is_none() && bb(r.start()) != bb(r.last())) {
            dev_warn!(
                vm.vdev,
                "unexpected memory range {:#x}+{:#x}\n",
                r.start(),
                r.size()
            );
            return NotifyResult::Veto(EINVAL);
        }
        if matches!(event, Event::GoingOnline | Event::GoingOffline) && vm.removing.load(Relaxed) {
            return NotifyResult::Veto(EBUSY);
        }
        let res = if vm.sbm.is_some() {
            vm.sbm_notify(event, r)
        } else {
            vm.bbm_notify(event, r)
        };
        if !matches!(res, NotifyResult::Ok) {
            return res;
        }
        match event {
            Event::Online => {
                sub_saturating(&vm.offline_bytes, r.size());
                // Below the offline threshold again: plugging may continue.
                vm.kick();
                NotifyResult::Ok
            }
            Event::Offline => {
                vm.offline_bytes.fetch_add(r.size(), Relaxed);
                // Offline memory can now be unplugged without migration.
                vm.kick();
                NotifyResult::Ok
            }
            _ => NotifyResult::Ok,
        }
    }
}
