// SPDX-License-Identifier: GPL-2.0

//! kdump: in a kdump kernel the driver neither plugs nor adds memory (the crashed kernel's
//! memory must stay as it was). It only answers `/proc/vmcore`'s question "is this page RAM?"
//! for its region, asking the device for the state of the block, so that the dump never reads
//! memory the device has unplugged. As in the C driver, the answer for the last block asked is
//! cached, and any error means "not RAM".

use crate::{config::Layout, protocol::Link};
use core::num::NonZeroU64;
use kernel::{
    mm::vmcore,
    new_mutex,
    page::PAGE_SHIFT,
    prelude::*,
    sync::Mutex,
    uapi, //
};

/// What to answer for one page, before asking the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Not the device's memory: RAM as far as we know.
    Ram,
    /// The device's memory, but nothing was plugged when the kdump kernel started.
    NotRam,
    /// Ask the device about the block at this address.
    Ask(u64),
}

/// The region `[start, end)` and its block size, and whether anything was plugged at probe.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Region {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) block_size: NonZeroU64,
    pub(crate) plugged: bool,
}

impl Region {
    pub(crate) fn from_layout(l: &Layout, plugged_size: u64) -> Self {
        Self {
            start: l.addr,
            end: l.addr + l.region_size,
            block_size: l.block_size,
            plugged: plugged_size != 0,
        }
    }

    /// The C driver's decision for page frame `pfn`.
    pub(crate) fn classify(&self, pfn: usize) -> Answer {
        // CAST: `usize` fits `u64`.
        let Some(addr) = (pfn as u64).checked_shl(PAGE_SHIFT as u32) else {
            return Answer::Ram;
        };
        if addr < self.start || addr >= self.end {
            return Answer::Ram;
        }
        if !self.plugged {
            return Answer::NotRam;
        }
        // `block_size` is a power of two (validated), so this is the block's start.
        Answer::Ask(addr & !(self.block_size.get() - 1))
    }
}

/// The device in a kdump kernel.
#[pin_data]
pub(crate) struct Kdump {
    #[pin]
    pub(crate) link: Link,
    pub(crate) region: Region,
    /// The block asked about last, and whether it was plugged.
    #[pin]
    last: Mutex<Option<(u64, bool)>>,
}

impl Kdump {
    pub(crate) fn new(link: impl PinInit<Link>, region: Region) -> impl PinInit<Self> {
        pin_init!(Self {
            link <- link,
            region,
            last <- new_mutex!(None),
        })
    }
}

impl vmcore::Handler for Kdump {
    fn pfn_is_ram(&self, pfn: usize) -> bool {
        let block = match self.region.classify(pfn) {
            Answer::Ram => return true,
            Answer::NotRam => return false,
            Answer::Ask(block) => block,
        };
        // Serializes the requests, and the cache.
        let mut last = self.last.lock();
        if let Some((addr, plugged)) = *last {
            if addr == block {
                return plugged;
            }
        }
        let plugged = self
            .link
            .state(block, self.region.block_size.get())
            .is_ok_and(|s| u32::from(s) == uapi::VIRTIO_MEM_STATE_PLUGGED);
        *last = Some((block, plugged));
        plugged
    }
}

#[kunit_tests(virtio_mem_rs_kdump)]
mod tests {
    use super::*;
    use kernel::sizes::SizeConstants;

    const M: u64 = u64::SZ_1M;
    const G: u64 = u64::SZ_1G;
    const BS: NonZeroU64 = match NonZeroU64::new(2 * M) {
        Some(v) => v,
        None => NonZeroU64::MIN,
    };

    fn region(plugged: bool) -> Region {
        Region {
            start: 4 * G,
            end: 5 * G,
            block_size: BS,
            plugged,
        }
    }

    fn pfn(addr: u64) -> usize {
        // CAST: Test addresses fit `usize` on 64-bit.
        (addr >> PAGE_SHIFT) as usize
    }

    #[test]
    fn outside_the_region_is_ram() {
        let r = region(true);
        assert_eq!(r.classify(pfn(4 * G - 4096)), Answer::Ram);
        assert_eq!(r.classify(pfn(5 * G)), Answer::Ram);
        assert_eq!(r.classify(0), Answer::Ram);
        assert_eq!(r.classify(usize::MAX), Answer::Ram);
    }

    #[test]
    fn nothing_plugged_is_not_ram() {
        let r = region(false);
        assert_eq!(r.classify(pfn(4 * G)), Answer::NotRam);
        assert_eq!(r.classify(pfn(5 * G - 4096)), Answer::NotRam);
    }

    #[test]
    fn asks_for_the_whole_device_block() {
        let r = region(true);
        assert_eq!(r.classify(pfn(4 * G)), Answer::Ask(4 * G));
        assert_eq!(
            r.classify(pfn(4 * G + 3 * M + 8192)),
            Answer::Ask(4 * G + 2 * M)
        );
        assert_eq!(r.classify(pfn(5 * G - 4096)), Answer::Ask(5 * G - 2 * M));
    }
}
