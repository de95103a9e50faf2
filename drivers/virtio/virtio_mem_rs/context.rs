// SPDX-License-Identifier: GPL-2.0

//! What both block modes work with: the device, its region and memory group, the counters of
//! offline and migrated memory, and the interface each mode implements ([`BlockMode`]).
//!
//! The modes ([`crate::sbm`], [`crate::bbm`]) depend on this file and nothing depends on them
//! but the device (`device.rs`), which holds one of them and runs the worker, and the bus side
//! (`driver.rs`), which shows their status.

use crate::{
    config::{
        Layout,
        Sizes, //
    },
    protocol::Link,
};
use kernel::{
    mm::hotplug::{
        self,
        notifier::{
            Notification,
            NotifyResult, //
        },
        online::OnlineChunk,
        pages::{
            self,
            ContigRange,
            OfflinePages,
            Pfn, //
        },
        AddOptions,
        AddedMemory,
        MemoryGroup,
        PhysRange,
        SystemRamRegion, //
    },
    page::PAGE_SIZE,
    prelude::*,
    sizes::SizeConstants,
    sync::{
        aref::ARef,
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
        SpinLock, //
    },
    virtio,
};

/// The name of added memory in `/proc/iomem`, as the C driver uses.
pub(crate) const RESOURCE_NAME: &CStr = c"System RAM (virtio_mem)";

/// Tries to take online memory from the page allocator: ZONE_MOVABLE is worth retrying.
const FAKE_OFFLINE_TRIES_MOVABLE: u32 = 5;

/// Added memory that may stay offline before no more is added, at least.
const OFFLINE_THRESHOLD_MIN: u64 = u64::SZ_1G;

/// The memory-pressure policy for unplugging online memory of `size` bytes, `used` of them in
/// use: memory that is free moves nothing and is always taken; memory in use is migrated into
/// the rest of memory only if `MemAvailable` (`avail`) less `size` stays above max(1/32 of
/// RAM (`total`), 64 MiB). The C driver migrates until allocations fail or the OOM killer
/// runs; this driver defers and retries instead.
pub(crate) fn pressure_allows(avail: u64, total: u64, size: u64, used: u64) -> bool {
    let margin = (total / 32).max(u64::SZ_64M);
    used == 0 || avail.saturating_sub(size) > margin
}

/// Subtracts `v` from `a`, stopping at zero.
pub(crate) fn sub_saturating(a: &Atomic<u64>, v: u64) {
    let mut cur = a.load(Relaxed);
    while let Err(now) = a.cmpxchg(cur, cur.saturating_sub(v), Relaxed) {
        cur = now;
    }
}

/// The last time memory pressure put unplugging off, for the status.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deferral {
    /// `MemAvailable`, in bytes.
    pub(crate) avail: u64,
    /// The range that was not taken, and how much of it was in use (whole pageblocks).
    pub(crate) size: u64,
    pub(crate) used: u64,
}

/// What the worker is doing, for the status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Nothing to do: the plugged size is the requested size, or plugging stopped (`ENOSPC`).
    #[default]
    Idle,
    /// In a pass: talking to the device, adding, onlining or offlining memory.
    Running,
    /// The last pass failed for now (`last_error`); a retry is scheduled in `retry_ms`.
    Waiting,
    /// The device misbehaved; the worker does nothing more.
    Broken,
}

impl Phase {
    /// The name in the status file.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Running => "running",
            Phase::Waiting => "waiting",
            Phase::Broken => "broken",
        }
    }
}

/// What the status shows of the worker, published by it: the worker holds its state lock across
/// device requests and offlining, which can take minutes (or forever, if the device stops
/// answering), so the status never takes that lock. Each mode publishes its block counts
/// likewise, into a lock of its own.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Shown {
    pub(crate) phase: Phase,
    pub(crate) sizes: Sizes,
    pub(crate) clamped: bool,
    /// The delay of the pending retry (0 unless `phase` is `Waiting`).
    pub(crate) retry_ms: u32,
    pub(crate) last_error: i32,
    /// The last time memory pressure put unplugging off.
    pub(crate) deferral: Option<Deferral>,
    /// Passes of the worker since probe.
    pub(crate) runs: u64,
    /// Time spent in them, in milliseconds.
    pub(crate) run_ms: u64,
}

/// What a block mode does for the device. The worker calls [`Self::pass`] and
/// [`Self::plugged_bytes`] with its state lock held, and [`Self::teardown`] once it has
/// stopped; the memory notifier and the online-page handler call the others, from inside the
/// add and remove calls of a pass.
pub(crate) trait BlockMode {
    /// One pass of the worker: brings the plugged size towards `sizes.requested`.
    fn pass(&self, cx: &Context, sizes: &Sizes) -> Result;

    /// Bytes plugged on the device, as far as the driver knows.
    fn plugged_bytes(&self) -> u64;

    /// Whether `r`, which lies in the device's region, can be one unit of hotplug of this mode,
    /// and so memory the driver may have added.
    fn may_be_unit(&self, r: PhysRange) -> bool;

    /// Whether the online-page handler is to get the pages of `r`.
    fn owns(&self, cx: &Context, r: PhysRange) -> bool;

    /// The online-page handler: decides which pages of `chunk` go online.
    fn online_pages(&self, cx: &Context, chunk: OnlineChunk);

    /// The memory notifier's part of the mode, for `n` on memory `r` of the device.
    fn notify(&self, cx: &Context, n: &Notification<'_>, r: PhysRange) -> NotifyResult;

    /// Removes and unplugs what can be; online memory stays. Returns the number of blocks that
    /// stay.
    fn teardown(&self, cx: &Context) -> u64;
}

/// What both modes need of the device.
#[pin_data]
pub(crate) struct Context {
    pub(crate) vdev: ARef<virtio::Device>,
    #[pin]
    pub(crate) link: Link,
    pub(crate) layout: Layout,
    pub(crate) nid: i32,
    pub(crate) region: Arc<SystemRamRegion>,
    pub(crate) group: Arc<MemoryGroup>,
    /// What the status shows of the worker.
    #[pin]
    pub(crate) shown: SpinLock<Shown>,
    /// Set when the device changes its configuration: a pass stops early, with `EAGAIN`.
    pub(crate) config_changed: Atomic<bool>,
    /// Set at teardown once the worker has stopped: onlining or offlining is refused.
    pub(crate) removing: Atomic<bool>,
    /// Bytes of added memory that are offline.
    pub(crate) offline_bytes: Atomic<u64>,
    /// Bytes freed by offlining (migration) when unplugging online memory.
    pub(crate) migrated_bytes: Atomic<u64>,
    /// Times unplugging online memory was put off because memory was short.
    pub(crate) deferred_pressure: Atomic<u64>,
}

impl Context {
    /// Whether `size` more offline memory stays within the offline threshold of
    /// max(2 * `unit`, 1 GiB), as in the C driver.
    pub(crate) fn could_add_bytes(&self, size: u64, unit: u64) -> bool {
        let threshold = unit.saturating_mul(2).max(OFFLINE_THRESHOLD_MIN);
        self.offline_bytes.load(Relaxed).saturating_add(size) <= threshold
    }

    /// Adds `r`, which the device plugged (all of it, or in Sub-Block Mode, some subblocks of
    /// it), to the kernel, counted as offline memory until it goes online.
    ///
    /// # Safety
    ///
    /// As for [`hotplug::add_driver_managed`]: every page of `r` that goes online must stay
    /// plugged until the returned token removed it.
    pub(crate) unsafe fn add(&self, r: PhysRange) -> Result<AddedMemory> {
        // Added memory starts offline; count it before adding, as auto-onlining reports
        // `Online` to the notifier before the add returns.
        self.offline_bytes.fetch_add(r.size(), Relaxed);
        let opts = AddOptions {
            merge_resource: true,
        };
        // SAFETY: Per the safety requirements.
        let added = unsafe { hotplug::add_driver_managed(&self.region, &self.group, r, opts) };
        added.inspect_err(|e| {
            sub_saturating(&self.offline_bytes, r.size());
            dev_err!(
                self.vdev,
                "adding memory {:#x} failed: {}\n",
                r.start(),
                e.to_errno()
            );
        })
    }

    /// Notes that offline memory of `size` bytes was removed: it is neither online nor offline
    /// any more.
    pub(crate) fn removed(&self, size: u64) {
        sub_saturating(&self.offline_bytes, size);
    }

    /// Whether to take the online memory `[pfn, pfn + nr)` now, by the policy of
    /// [`pressure_allows`]. Counts the refusals and publishes the last one for the status.
    ///
    /// # Safety
    ///
    /// The range must be memory the driver added, and the driver must not remove it during the
    /// call.
    pub(crate) unsafe fn can_take_online(&self, pfn: Pfn, nr: usize) -> bool {
        let page = PAGE_SIZE as u64;
        // CAST: Page counts fit `u64`.
        let size = nr as u64 * page;
        // SAFETY: Per the safety requirements.
        let used_blocks = unsafe { pages::used_pageblocks(pfn, nr) };
        // CAST: As above. An upper bound of the memory in use: whole pageblocks.
        let used = (used_blocks as u64 * pages::pageblock_pages() as u64 * page).min(size);
        let avail = pages::available_pages() as u64 * page;
        let total = pages::total_ram_pages() as u64 * page;
        let ok = pressure_allows(avail, total, size, used);
        if !ok {
            self.deferred_pressure.fetch_add(1, Relaxed);
            self.shown.lock().deferral = Some(Deferral { avail, size, used });
        }
        ok
    }

    /// Takes `[pfn, pfn + nr)` of an online block from the page allocator, with up to
    /// `FAKE_OFFLINE_TRIES_MOVABLE` tries in `ZONE_MOVABLE` (`movable`) and one elsewhere, as
    /// the C driver does.
    ///
    /// The caller holds the lock its mode's memory notifier takes before the block may go
    /// offline, which keeps the block online meanwhile.
    pub(crate) fn fake_offline(
        &self,
        pfn: usize,
        nr: usize,
        movable: bool,
    ) -> Result<OfflinePages> {
        let tries = if movable {
            FAKE_OFFLINE_TRIES_MOVABLE
        } else {
            1
        };
        let mut rc = EBUSY;
        for _ in 0..tries {
            if self.config_changed.load(Relaxed) {
                return Err(EAGAIN);
            }
            // SAFETY: The range lies in one online memory block, which is onlined into one zone
            // as a whole and stays online while the caller holds its mode's lock: offlining
            // waits for it in our notifier.
            match unsafe { ContigRange::alloc(pfn, nr, GFP_KERNEL) } {
                Ok(range) => return Ok(range.into_offline()),
                Err(e) if e == ENOMEM => return Err(e),
                Err(e) => rc = e,
            }
        }
        Err(if rc == EINTR { EBUSY } else { rc })
    }
}

#[kunit_tests(virtio_mem_rs_pressure)]
mod tests {
    use super::*;

    const M: u64 = u64::SZ_1M;
    const G: u64 = u64::SZ_1G;

    #[test]
    fn free_memory_is_always_taken() {
        // 2 GiB of RAM (margin 64 MiB), 150 MiB available of which the 128 MiB block is
        // free: taking it leaves 22 MiB, but moves nothing.
        assert!(pressure_allows(150 * M, 2 * G, 128 * M, 0));
    }

    #[test]
    fn memory_in_use_needs_the_margin() {
        assert!(!pressure_allows(150 * M, 2 * G, 128 * M, 2 * M));
        assert!(pressure_allows(300 * M, 2 * G, 128 * M, 128 * M));
        // The margin is 1/32 of RAM above 2 GiB: 128 MiB of 4 GiB.
        assert!(!pressure_allows(250 * M, 4 * G, 128 * M, 2 * M));
        assert!(pressure_allows(257 * M, 4 * G, 128 * M, 2 * M));
        // Nothing available at all.
        assert!(!pressure_allows(0, 4 * G, 2 * M, 2 * M));
    }
}
