// SPDX-License-Identifier: GPL-2.0

//! What travels on the balloon's virtqueues: arrays of page frame numbers on the inflate and
//! deflate queues, and tagged statistics on the stats queue.

use kernel::{
    mm::stats::MemStats,
    page::PAGE_SIZE,
    prelude::*,
    uapi,
    virtio::{
        Endian,
        Message,
        Parts, //
    },
};

/// The device counts in 4 KiB pages; one guest page is this many of them.
pub(crate) const PAGES_PER_PAGE: usize = PAGE_SIZE >> uapi::VIRTIO_BALLOON_PFN_SHIFT;

/// At most this many device pages go in one inflate or deflate request.
pub(crate) const ARRAY_PFNS_MAX: usize = 256;

/// Guest pages per request.
pub(crate) const PAGES_PER_REQUEST: usize = ARRAY_PFNS_MAX / PAGES_PER_PAGE;

/// A request of the inflate or deflate queue: up to 256 device page frame numbers, as
/// `__virtio32`.
pub(crate) struct Pfns {
    bytes: [u8; 4 * ARRAY_PFNS_MAX],
    n: usize,
    endian: Endian,
}

impl Pfns {
    pub(crate) fn new(endian: Endian) -> Result<KBox<Self>> {
        Ok(KBox::new(
            Self {
                bytes: [0; 4 * ARRAY_PFNS_MAX],
                n: 0,
                endian,
            },
            GFP_KERNEL,
        )?)
    }

    /// A replacement request, allocated without sleeping (the old one stayed with a broken
    /// device); `None` under memory pressure, and the driver then runs without telling.
    pub(crate) fn new_atomic(endian: Endian) -> Result<KBox<Self>> {
        Ok(KBox::new(
            Self {
                bytes: [0; 4 * ARRAY_PFNS_MAX],
                n: 0,
                endian,
            },
            GFP_NOWAIT | __GFP_NOWARN,
        )?)
    }

    pub(crate) fn clear(&mut self) {
        self.n = 0;
    }

    /// Guest pages in the request.
    pub(crate) fn nr_pages(&self) -> usize {
        self.n / PAGES_PER_PAGE
    }

    /// Whether another guest page would not fit.
    pub(crate) fn is_full(&self) -> bool {
        self.n + PAGES_PER_PAGE > ARRAY_PFNS_MAX
    }

    /// Whether guest page `pfn` is in the request.
    pub(crate) fn contains_page(&self, pfn: usize) -> bool {
        let Some(first) = pfn
            .checked_mul(PAGES_PER_PAGE)
            .and_then(|v| u32::try_from(v).ok())
        else {
            return false;
        };
        let b = self.endian.to_bytes(first);
        // A guest page's device pages are pushed together, the first one first.
        self.bytes[..4 * self.n]
            .chunks_exact(4 * PAGES_PER_PAGE)
            .any(|c| c[..4] == b)
    }

    /// Adds the device pages of guest page `pfn`. Returns `false` if the request is full, or
    /// the frame number does not fit the protocol's 32 bits.
    pub(crate) fn push_page(&mut self, pfn: usize) -> bool {
        if self.n + PAGES_PER_PAGE > ARRAY_PFNS_MAX {
            return false;
        }
        let Some(first) = pfn.checked_mul(PAGES_PER_PAGE) else {
            return false;
        };
        for i in 0..PAGES_PER_PAGE {
            let Some(v) = first.checked_add(i).and_then(|v| u32::try_from(v).ok()) else {
                return false;
            };
            self.endian.write(&mut self.bytes, 4 * (self.n + i), v);
        }
        self.n += PAGES_PER_PAGE;
        true
    }
}

// SAFETY: The only part is a prefix of `bytes`, a field of `self`; `n` does not change while the
// device holds the message (the queue owns it).
unsafe impl Message for Pfns {
    fn parts(&mut self) -> Parts<'_> {
        let n = self.n.min(ARRAY_PFNS_MAX);
        Parts::new().out(&self.bytes[..4 * n])
    }
}

/// One `struct virtio_balloon_stat` is 10 bytes: a `__virtio16` tag and a `__virtio64` value.
const STAT_LEN: usize = 10;
const MAX_STATS: usize = uapi::VIRTIO_BALLOON_S_NR as usize;

/// The stats queue's buffer.
pub(crate) struct Stats {
    bytes: [u8; STAT_LEN * MAX_STATS],
    n: usize,
    endian: Endian,
}

impl Stats {
    pub(crate) fn new(endian: Endian) -> Result<KBox<Self>> {
        let mut s = KBox::new(
            Self {
                bytes: [0; STAT_LEN * MAX_STATS],
                n: 0,
                endian,
            },
            GFP_KERNEL,
        )?;
        s.fill(&MemStats::snapshot());
        Ok(s)
    }

    fn put(&mut self, tag: u32, val: u64) {
        if self.n >= MAX_STATS {
            return;
        }
        // CAST: Tags are below `VIRTIO_BALLOON_S_NR`.
        let tag = tag as u16;
        let at = STAT_LEN * self.n;
        self.endian.write(&mut self.bytes, at, tag);
        self.endian.write(&mut self.bytes, at + 2, val);
        self.n += 1;
    }

    /// Fills the buffer from `s`, in the C driver's order: event counters first (when the kernel
    /// keeps them; the hugetlb ones last, with `CONFIG_HUGETLB_PAGE`), then the memory sizes.
    pub(crate) fn fill(&mut self, s: &MemStats) {
        self.n = 0;
        if s.has_events {
            self.put(uapi::VIRTIO_BALLOON_S_SWAP_IN, s.swap_in);
            self.put(uapi::VIRTIO_BALLOON_S_SWAP_OUT, s.swap_out);
            self.put(uapi::VIRTIO_BALLOON_S_MAJFLT, s.major_faults);
            self.put(uapi::VIRTIO_BALLOON_S_MINFLT, s.minor_faults);
            self.put(uapi::VIRTIO_BALLOON_S_OOM_KILL, s.oom_kills);
            self.put(uapi::VIRTIO_BALLOON_S_ALLOC_STALL, s.alloc_stalls);
            self.put(uapi::VIRTIO_BALLOON_S_ASYNC_SCAN, s.async_scan);
            self.put(uapi::VIRTIO_BALLOON_S_DIRECT_SCAN, s.direct_scan);
            self.put(uapi::VIRTIO_BALLOON_S_ASYNC_RECLAIM, s.async_reclaim);
            self.put(uapi::VIRTIO_BALLOON_S_DIRECT_RECLAIM, s.direct_reclaim);
            if s.has_hugetlb {
                self.put(uapi::VIRTIO_BALLOON_S_HTLB_PGALLOC, s.hugetlb_allocs);
                self.put(uapi::VIRTIO_BALLOON_S_HTLB_PGFAIL, s.hugetlb_alloc_fails);
            }
        }
        self.put(uapi::VIRTIO_BALLOON_S_MEMFREE, s.free);
        self.put(uapi::VIRTIO_BALLOON_S_MEMTOT, s.total);
        self.put(uapi::VIRTIO_BALLOON_S_AVAIL, s.available);
        self.put(uapi::VIRTIO_BALLOON_S_CACHES, s.caches);
    }
}

// SAFETY: The only part is a prefix of `bytes`, a field of `self`, fixed while the device holds
// the message.
unsafe impl Message for Stats {
    fn parts(&mut self) -> Parts<'_> {
        let n = self.n.min(MAX_STATS);
        Parts::new().out(&self.bytes[..STAT_LEN * n])
    }
}

/// Whether a batch of noted migrations (`inb`: new pages to inflate, `outb`: old pages to
/// deflate) must be sent before the migration of `old` to `new` is noted, so that the device
/// learns about every page in the order things happened to it:
/// - a batch is full;
/// - `new` left the balloon earlier in this batch: its deflate must reach the device before
///   its inflate, and a batch sends its inflates first;
/// - `old` entered the balloon earlier in this batch: its inflate must reach the device before
///   the core frees `old`, which the guest may then reuse (the device discards the memory of
///   pages it is told are inflated).
pub(crate) fn batch_must_flush(inb: &Pfns, outb: &Pfns, new: usize, old: usize) -> bool {
    inb.is_full() || outb.is_full() || outb.contains_page(new) || inb.contains_page(old)
}

#[kunit_tests(virtio_balloon_rs_protocol)]
mod tests {
    use super::*;

    fn pfn_at(p: &Pfns, i: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&p.bytes[4 * i..4 * i + 4]);
        u32::from_le_bytes(b)
    }

    #[test]
    fn pfns_encode_little_endian_and_fill_up() -> Result {
        let mut p = Pfns::new(Endian::LITTLE)?;
        assert!(p.push_page(0x1234_5678));
        assert_eq!(pfn_at(&p, 0), 0x1234_5678 * PAGES_PER_PAGE as u32);
        assert_eq!(p.parts().nr_out(), 1);
        for i in 1..PAGES_PER_REQUEST {
            assert!(p.push_page(i));
        }
        // Full at 256 device pages, as the C driver's array.
        assert!(!p.push_page(7));
        assert_eq!(p.n, ARRAY_PFNS_MAX);
        p.clear();
        assert_eq!(p.n, 0);
        Ok(())
    }

    #[test]
    fn pfns_know_their_pages() -> Result {
        let mut p = Pfns::new(Endian::LITTLE)?;
        assert!(!p.contains_page(5));
        assert!(p.push_page(5));
        assert!(p.push_page(9));
        assert!(p.contains_page(5) && p.contains_page(9));
        assert!(!p.contains_page(6) && !p.contains_page(1 << 40));
        assert_eq!(p.nr_pages(), 2);
        while !p.is_full() {
            assert!(p.push_page(100));
        }
        assert_eq!(p.nr_pages(), PAGES_PER_REQUEST);
        assert!(!p.push_page(101));
        Ok(())
    }

    #[test]
    fn batches_flush_before_a_page_changes_direction() -> Result {
        let (mut inb, mut outb) = (Pfns::new(Endian::LITTLE)?, Pfns::new(Endian::LITTLE)?);
        assert!(!batch_must_flush(&inb, &outb, 10, 20));
        // 20 -> 10 noted: 10 is to be inflated, 20 to be deflated.
        assert!(inb.push_page(10) && outb.push_page(20));
        // Another page moving elsewhere does not need the batch sent.
        assert!(!batch_must_flush(&inb, &outb, 11, 21));
        // 20 comes back into the balloon: its deflate must go out before its inflate.
        assert!(batch_must_flush(&inb, &outb, 20, 22));
        // 10 moves on before the device heard of its inflate: tell it now, before the guest
        // may reuse 10.
        assert!(batch_must_flush(&inb, &outb, 12, 10));
        while !inb.is_full() {
            assert!(inb.push_page(30));
        }
        assert!(batch_must_flush(&inb, &outb, 13, 23));
        Ok(())
    }

    #[test]
    fn pfns_refuse_what_32_bits_cannot_say() -> Result {
        let mut p = Pfns::new(Endian::LITTLE)?;
        assert!(!p.push_page(1 << 40));
        assert_eq!(p.n, 0);
        Ok(())
    }

    #[test]
    fn stats_layout() -> Result {
        let mut s = Stats::new(Endian::LITTLE)?;
        let mut m = MemStats {
            free: 0x1122_3344_5566,
            total: 7,
            ..MemStats::default()
        };
        s.fill(&m);
        // Without event counters: free, total, available, caches.
        assert_eq!(s.n, 4);
        assert_eq!(
            &s.bytes[0..2],
            &(uapi::VIRTIO_BALLOON_S_MEMFREE as u16).to_le_bytes()
        );
        assert_eq!(&s.bytes[2..10], &0x1122_3344_5566u64.to_le_bytes());
        assert_eq!(
            &s.bytes[10..12],
            &(uapi::VIRTIO_BALLOON_S_MEMTOT as u16).to_le_bytes()
        );
        assert_eq!(&s.bytes[12..20], &7u64.to_le_bytes());
        m.has_events = true;
        s.fill(&m);
        assert_eq!(s.n, 14);
        assert_eq!(
            &s.bytes[0..2],
            &(uapi::VIRTIO_BALLOON_S_SWAP_IN as u16).to_le_bytes()
        );
        // With hugetlb: its two counters follow the other events, as in C.
        m.has_hugetlb = true;
        m.hugetlb_allocs = 3;
        s.fill(&m);
        assert_eq!(s.n, 16);
        let at = 10 * STAT_LEN;
        assert_eq!(
            &s.bytes[at..at + 2],
            &(uapi::VIRTIO_BALLOON_S_HTLB_PGALLOC as u16).to_le_bytes()
        );
        assert_eq!(&s.bytes[at + 2..at + STAT_LEN], &3u64.to_le_bytes());
        assert_eq!(
            &s.bytes[at + STAT_LEN..at + STAT_LEN + 2],
            &(uapi::VIRTIO_BALLOON_S_HTLB_PGFAIL as u16).to_le_bytes()
        );
        assert_eq!(
            &s.bytes[at + 2 * STAT_LEN..at + 2 * STAT_LEN + 2],
            &(uapi::VIRTIO_BALLOON_S_MEMFREE as u16).to_le_bytes()
        );
        Ok(())
    }
}
