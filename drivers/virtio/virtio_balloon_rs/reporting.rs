// SPDX-License-Identifier: GPL-2.0

//! Free page reporting (`VIRTIO_BALLOON_F_REPORTING`) and page poisoning
//! (`VIRTIO_BALLOON_F_PAGE_POISON`).
//!
//! The page allocator hands blocks of free memory to [`FreePageReporter::report`], which lends
//! them to the device on the reporting queue and waits until the device gives them back. The
//! device may take their backing memory away meanwhile (QEMU discards it), so a reported page
//! comes back holding anything, typically zeroes. That is only allowed if free pages need not
//! keep their contents: with page poisoning or `init_on_free` the device must write the value
//! the guest expects (`poison_val`), and if it cannot promise that (no `PAGE_POISON`), reporting
//! is turned off in `validate`. QEMU, told a non-zero `poison_val`, keeps reported memory.

use crate::counters::Counters;
use kernel::{
    mm::page_reporting::{
        free_page_contents,
        FreePageContents,
        ReportedPages,
        Reporter, //
    },
    new_mutex,
    prelude::*,
    sync::{
        atomic::Relaxed,
        Arc,
        Mutex, //
    },
    uapi,
    virtio::{
        self,
        Features,
        Lent,
        Virtqueue, //
    },
};

/// Narrows the features as the C driver does, before they are final: `PAGE_POISON` only if
/// free pages have defined contents, and reporting only if the device can then restore them.
/// No indirect descriptors (adding a report allocates nothing), and no IOMMU (the device gets
/// guest-physical addresses).
pub(crate) fn validate(features: &mut Features<'_>) {
    if free_page_contents() == FreePageContents::Undefined {
        features.clear(uapi::VIRTIO_BALLOON_F_PAGE_POISON);
    } else if !features.has(uapi::VIRTIO_BALLOON_F_PAGE_POISON) {
        features.clear(uapi::VIRTIO_BALLOON_F_REPORTING);
    }
    features.clear(virtio::RING_F_INDIRECT_DESC);
    features.clear(virtio::F_ACCESS_PLATFORM);
}

/// The `poison_val` to tell a device that negotiated `PAGE_POISON`: the byte free pages hold,
/// in every byte (zero for `init_on_free`).
pub(crate) fn poison_val() -> u32 {
    match free_page_contents() {
        FreePageContents::Poisoned(b) => u32::from_ne_bytes([b; 4]),
        FreePageContents::Zeroed | FreePageContents::Undefined => 0,
    }
}

/// The reporting queue with its request identifier.
pub(crate) struct ReportQueue {
    vq: Virtqueue<Lent>,
    id: Option<KBox<Lent>>,
}

impl ReportQueue {
    pub(crate) fn new(vq: Virtqueue<Lent>) -> Result<Self> {
        Ok(Self {
            vq,
            id: Some(Lent::new(GFP_KERNEL)?),
        })
    }

    /// Descriptors on the queue: one per reported block.
    pub(crate) fn size(&mut self) -> u32 {
        self.vq.size()
    }
}

/// Lends free memory to the device.
#[pin_data]
pub(crate) struct FreePageReporter {
    /// `None` while the device is frozen or after unbind: reports then fail, and the blocks go
    /// back unreported.
    #[pin]
    q: Mutex<Option<ReportQueue>>,
    counters: Arc<Counters>,
}

impl FreePageReporter {
    pub(crate) fn new(q: ReportQueue, counters: Arc<Counters>) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            q <- new_mutex!(Some(q)),
            counters,
        })
    }

    /// Takes the queue of a restored device.
    pub(crate) fn install(&self, q: ReportQueue) {
        *self.q.lock() = Some(q);
    }

    /// Gives the queue up (freeze, unbind), after a report in flight came back.
    pub(crate) fn uninstall(&self) {
        *self.q.lock() = None;
    }
}

/// As the C driver: with 64 KiB pages on arm64 the pageblock order means 512 MiB, and free
/// blocks that large are rare, so reports start at order 5 (2 MiB), which also spares a host
/// with 4 KiB pages from splitting its huge pages.
#[cfg(all(CONFIG_ARM64, CONFIG_ARM64_64K_PAGES))]
const REPORT_ORDER: Option<u32> = Some(5);
#[cfg(not(all(CONFIG_ARM64, CONFIG_ARM64_64K_PAGES)))]
const REPORT_ORDER: Option<u32> = None;

impl Reporter for FreePageReporter {
    const ORDER: Option<u32> = REPORT_ORDER;

    fn report(&self, pages: &ReportedPages<'_>) -> Result {
        let c = &self.counters;
        let mut guard = self.q.lock();
        let q = (*guard).as_mut().ok_or(ENODEV)?;
        // The identifier is only lost if the device kept a request; a new one must not wait
        // for memory, which is what the allocator is short of if it reports little.
        let id = match q.id.take() {
            Some(id) => id,
            None => Lent::new(GFP_NOWAIT)?,
        };
        match q.vq.lend_reported(id, pages) {
            Ok(id) => {
                q.id = Some(id);
                c.reports.fetch_add(1, Relaxed);
                c.reported_bytes.fetch_add(pages.bytes(), Relaxed);
                Ok(())
            }
            Err((e, id)) => {
                q.id = id;
                c.report_failed.fetch_add(1, Relaxed);
                Err(e)
            }
        }
    }
}
