// SPDX-License-Identifier: GPL-2.0

//! Contiguous page ranges and driver-owned offline pages, for unplugging online memory.
//!
//! A driver that wants a range of online memory back (to unplug it from its device) takes it
//! from the page allocator with [`ContigRange::alloc`], which migrates whatever used it. It then
//! turns it into [`OfflinePages`] with [`ContigRange::into_offline`]: the pages become
//! `PageOffline`, stop counting as managed memory, and belong to the driver until it gives them
//! back with [`OfflinePages::online`].
//!
//! Pages an [online-page handler](super::online) keeps back while a block is onlined become
//! [`OfflinePages`] the same way, through [`OnlineChunk::keep_offline`].
//!
//! While a memory block that contains driver-owned offline pages is being offlined, the driver's
//! memory notifier drops their references on [`Event::GoingOffline`] with
//! [`OfflinePages::going_offline`] (so that offlining skips them, like free pages), and takes
//! them back on [`Event::CancelOffline`] with [`OfflinePages::cancel_offline`]. Both take the
//! [`Notification`] the handler got as proof that it runs for that event of the pages' block.
//! Once the block is offline, the pages are gone: [`OfflinePages::offlined`] consumes the token.
//!
//! [`OnlineChunk::keep_offline`]: super::online::OnlineChunk::keep_offline
//! [`Event::GoingOffline`]: super::notifier::Event::GoingOffline
//! [`Event::CancelOffline`]: super::notifier::Event::CancelOffline
//! [`Notification`]: super::notifier::Notification
//!
//! C headers: [`include/linux/gfp.h`](srctree/include/linux/gfp.h),
//! [`include/linux/page-flags.h`](srctree/include/linux/page-flags.h)

use super::notifier::{
    Event,
    Notification, //
};
use crate::{
    alloc::Flags,
    bindings,
    error::to_result,
    prelude::*, //
};

/// A page frame number.
pub type Pfn = usize;

/// The largest order of a free buddy block, and so of an [`OnlineChunk`]
/// (`MAX_PAGE_ORDER`).
///
/// [`OnlineChunk`]: super::online::OnlineChunk
pub const MAX_ORDER: u32 = bindings::MAX_PAGE_ORDER;

/// An estimate of the pages available for new allocations without swapping (`MemAvailable`,
/// `si_mem_available()`).
pub fn available_pages() -> usize {
    // SAFETY: No preconditions.
    let n = unsafe { bindings::si_mem_available() };
    usize::try_from(n).unwrap_or(0)
}

/// The number of pages of RAM the kernel manages (`MemTotal`).
pub fn total_ram_pages() -> usize {
    // SAFETY: No preconditions.
    unsafe { bindings::totalram_pages() }
}

/// The number of pages in a pageblock, the unit of page mobility grouping and of
/// `alloc_contig_range()` isolation.
pub fn pageblock_pages() -> usize {
    // SAFETY: No preconditions.
    unsafe { bindings::pageblock_nr_pages() }
}

/// How many pageblocks of `[start, start + nr_pages)` are not known to hold only movable
/// allocations: their migratetype is unmovable or reclaimable, or they are not online.
///
/// A hint of how hard `alloc_contig_range()` would find the range (it must migrate or free
/// every page of it, and unmovable allocations cannot move). Read without locks: the answer
/// may be stale by the time it is used.
///
/// # Safety
///
/// The memory of the range must not be removed during the call (the caller added it and
/// removes it only itself): `pfn_to_online_page()` does not keep the memory map alive.
pub unsafe fn unmovable_pageblocks(start: Pfn, nr_pages: usize) -> usize {
    let step = pageblock_pages().max(1);
    let end = start.saturating_add(nr_pages);
    let mut pfn = start;
    let mut n = 0;
    while pfn < end {
        // SAFETY: The function only touches the memmap of online memory (`pfn_to_online_page()`),
        // which stays in place per the safety requirements.
        if unsafe { bindings::pageblock_is_movable(pfn) } != 1 {
            n += 1;
        }
        pfn = pfn.saturating_add(step);
    }
    n
}

/// Whether the pageblock that starts at `pfn` lies in one free buddy block of at least
/// pageblock order: the free block may start at `pfn` or below it.
///
/// # Safety
///
/// As for [`used_pageblocks`].
unsafe fn pageblock_is_free(pfn: Pfn) -> bool {
    let mut order = pageblock_pages().trailing_zeros();
    while order <= bindings::MAX_PAGE_ORDER {
        let head = pfn & !((1usize << order) - 1);
        // SAFETY: The function only touches the memmap of online memory (`pfn_to_online_page()`),
        // which stays in place per the safety requirements.
        let o = unsafe { bindings::pfn_buddy_order(head) };
        if u32::try_from(o).is_ok_and(|o| o >= order && o <= bindings::MAX_PAGE_ORDER) {
            return true;
        }
        order += 1;
    }
    false
}

/// How many pageblocks overlapping `[start, start + nr_pages)` are not entirely free in the
/// buddy allocator: they hold pages in use (to be migrated or freed before
/// `alloc_contig_range()` can take them), pages on a per-CPU free list, or are not online.
///
/// A hint of how much work taking the range would be, at pageblock granularity: at most a few
/// reads of the memory map per pageblock, however much memory is in use. Read without locks,
/// as compaction reads a buddy's order (`buddy_order_unsafe()`): the answer may be stale by the
/// time it is used.
///
/// # Safety
///
/// The memory of the range must not be removed during the call (the caller added it and
/// removes it only itself): `pfn_to_online_page()` does not keep the memory map alive.
pub unsafe fn used_pageblocks(start: Pfn, nr_pages: usize) -> usize {
    let step = pageblock_pages().max(1);
    if nr_pages == 0 {
        return 0;
    }
    let end = start.saturating_add(nr_pages);
    let mut pfn = start & !(step - 1);
    let mut used = 0;
    while pfn < end {
        // SAFETY: Per the safety requirements.
        if !unsafe { pageblock_is_free(pfn) } {
            used += 1;
        }
        pfn = pfn.saturating_add(step);
    }
    used
}

/// Whether the page at `pfn` is in `ZONE_MOVABLE`.
///
/// # Safety
///
/// `pfn` must be online memory that stays online during the call.
pub unsafe fn pfn_is_movable(pfn: Pfn) -> bool {
    // SAFETY: Per the safety requirements the memmap of `pfn` exists.
    unsafe {
        bindings::page_zonenum(bindings::pfn_to_page(pfn)) == bindings::zone_type_ZONE_MOVABLE
    }
}

/// Whether the pages at `a` and `b` are in the same zone (of the same node).
///
/// # Safety
///
/// Both must be online memory that stays online during the call.
pub unsafe fn same_zone(a: Pfn, b: Pfn) -> bool {
    // SAFETY: Per the safety requirements the memmap of both pfns exists.
    unsafe {
        let (pa, pb) = (bindings::pfn_to_page(a), bindings::pfn_to_page(b));
        bindings::page_zonenum(pa) == bindings::page_zonenum(pb)
            && bindings::page_to_nid(pa) == bindings::page_to_nid(pb)
    }
}

/// Whether `pfn` is online memory right now (`pfn_to_online_page()`); the answer is only stable
/// while the caller prevents offlining, e.g. from its memory notifier.
pub fn pfn_is_online(pfn: Pfn) -> bool {
    // SAFETY: `pfn_to_online_page()` accepts any pfn.
    !unsafe { bindings::pfn_to_online_page(pfn) }.is_null()
}

/// Pages taken from the page allocator with `alloc_contig_range()`: each has a reference
/// count of one and belongs to the owner of this value.
///
/// Dropping it gives the pages back to the allocator (`free_contig_range()`).
///
/// # Invariants
///
/// `[pfn, pfn + nr)` was allocated with `alloc_contig_range()` and not freed since.
pub struct ContigRange {
    pfn: Pfn,
    nr: usize,
}

impl ContigRange {
    /// Allocates the pages `[pfn, pfn + nr)`, migrating their current users away.
    ///
    /// Fails with `EBUSY` if a page cannot be migrated (try again later, or elsewhere),
    /// `ENOMEM`, `EINTR` on a fatal signal, or `EINVAL` for an empty range. Sleeps.
    ///
    /// # Safety
    ///
    /// The range must be online memory of one zone, which stays online during the call (for
    /// instance because the caller's memory notifier refuses to offline it).
    pub unsafe fn alloc(pfn: Pfn, nr: usize, flags: Flags) -> Result<Self> {
        let end = pfn.checked_add(nr).ok_or(EINVAL)?;
        if nr == 0 {
            return Err(EINVAL);
        }
        // SAFETY: The caller guarantees the range is online memory of one zone.
        to_result(unsafe {
            bindings::alloc_contig_range_noprof(pfn, end, bindings::ACR_FLAGS_NONE, flags.as_raw())
        })?;
        // INVARIANT: Just allocated.
        Ok(Self { pfn, nr })
    }

    /// The first page frame.
    pub fn pfn(&self) -> Pfn {
        self.pfn
    }

    /// The number of pages.
    pub fn nr_pages(&self) -> usize {
        self.nr
    }

    /// Turns the pages into driver-owned offline pages: marks them `PageOffline` (so that
    /// nothing, not even a dump of the memory, reads them) and removes them from the managed
    /// page count.
    pub fn into_offline(self) -> OfflinePages {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: By the type invariant we own the allocated pages.
        unsafe { set_offline(this.pfn, this.nr) };
        // CAST: `nr` is the size of allocated memory, far below `isize::MAX` pages.
        let nr = this.nr as isize;
        // SAFETY: The pages are ours and live.
        unsafe { bindings::adjust_managed_page_count(bindings::pfn_to_page(this.pfn), -nr) };
        // INVARIANT: Offline, refcount one, not managed, ever onlined.
        OfflinePages {
            pfn: this.pfn,
            nr: this.nr,
            never_onlined: false,
            refs_dropped: false,
        }
    }
}

impl Drop for ContigRange {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the pages are ours, allocated by `alloc_contig_range()`.
        unsafe { bindings::free_contig_range(self.pfn, self.nr) };
    }
}

/// Marks `[pfn, pfn + nr)` `PageOffline`.
///
/// # Safety
///
/// The caller owns the pages, which are live and of no other page type.
unsafe fn set_offline(pfn: Pfn, nr: usize) {
    // SAFETY: `page_offline_begin()` only takes a rwsem.
    unsafe { bindings::page_offline_begin() };
    // SAFETY: Per the safety requirements.
    unsafe { bindings::pfn_range_set_offline(pfn, nr) };
    // SAFETY: Paired with `page_offline_begin()` above.
    unsafe { bindings::page_offline_end() };
}

/// Driver-owned `PageOffline` pages of an online memory block, excluded from the managed page
/// count. The driver may unplug the memory behind them; nothing in the kernel touches them.
///
/// Give them back with [`OfflinePages::online`]. Dropping the value instead keeps the pages
/// offline for good (with a warning).
///
/// # Examples
///
/// Taking a pageblock of online memory to unplug it, and what the memory notifier does with the
/// pages while their block goes offline:
///
/// ```
/// use kernel::mm::hotplug::{
///     notifier::{Event, Notification},
///     pages::{self, ContigRange, OfflinePages, Pfn},
/// };
///
/// /// Takes the pageblock at `pfn`, online memory the driver added and keeps online (its
/// /// memory notifier waits for the caller's lock before the block may go offline).
/// fn take(pfn: Pfn) -> Result<OfflinePages> {
///     // SAFETY: Per the comment above, the pageblock (of one zone) stays online.
///     let range = unsafe { ContigRange::alloc(pfn, pages::pageblock_pages(), GFP_KERNEL)? };
///     // The device may unplug the memory now; nothing in the kernel touches it.
///     Ok(range.into_offline())
/// }
///
/// /// The memory notifier's part, for the pages `kept` of the block `n` is about.
/// fn notify(n: &Notification<'_>, kept: &mut KVec<OfflinePages>) {
///     match n.event() {
///         // Offlining skips the pages, like free ones...
///         Event::GoingOffline => kept.iter_mut().for_each(|p| p.going_offline(n)),
///         // ...or they are the driver's again...
///         Event::CancelOffline => kept.iter_mut().for_each(|p| p.cancel_offline(n)),
///         // ...or they went away with the block.
///         Event::Offline => kept.drain_all().for_each(OfflinePages::offlined),
///         _ => {}
///     }
/// }
/// ```
///
/// # Invariants
///
/// - `[pfn, pfn + nr)` are `PageOffline`, owned by this value, in an online memory block.
/// - Unless `refs_dropped`, every page has a reference count of one.
/// - `never_onlined`: the pages were kept back while onlining and never went through
///   `generic_online_page()`; otherwise they came from `alloc_contig_range()`.
pub struct OfflinePages {
    pfn: Pfn,
    nr: usize,
    never_onlined: bool,
    refs_dropped: bool,
}

impl OfflinePages {
    /// Pages kept back while onlining: `PageOffline` with a reference count of one, never
    /// onlined.
    ///
    /// # Safety
    ///
    /// `[pfn, pfn + nr)` must be pages handed to the online-page callback that the caller owns
    /// now and does not pass to `generic_online_page()`.
    pub(super) unsafe fn from_never_onlined(pfn: Pfn, nr: usize) -> Self {
        // INVARIANT: The online path leaves such pages PageOffline with refcount one.
        Self {
            pfn,
            nr,
            never_onlined: true,
            refs_dropped: false,
        }
    }

    /// The first page frame.
    pub fn pfn(&self) -> Pfn {
        self.pfn
    }

    /// The number of pages.
    pub fn nr_pages(&self) -> usize {
        self.nr
    }

    /// Splits off the first `nr` pages; both parts keep the state of the whole. Returns the
    /// value unchanged if `nr` is 0 or not below its size.
    pub fn split(self, nr: usize) -> Result<(Self, Self), Self> {
        if nr == 0 || nr >= self.nr {
            return Err(self);
        }
        let this = core::mem::ManuallyDrop::new(self);
        // INVARIANT: The parts partition the pages of `self`, in the same state.
        Ok((
            Self {
                pfn: this.pfn,
                nr,
                never_onlined: this.never_onlined,
                refs_dropped: this.refs_dropped,
            },
            Self {
                pfn: this.pfn + nr,
                nr: this.nr - nr,
                never_onlined: this.never_onlined,
                refs_dropped: this.refs_dropped,
            },
        ))
    }

    /// Whether their block is going offline: [`OfflinePages::going_offline`] dropped the pages'
    /// references, and no [`OfflinePages::cancel_offline`] followed yet. Such pages cannot go
    /// [`online`](OfflinePages::online).
    pub fn is_going_offline(&self) -> bool {
        self.refs_dropped
    }

    /// Whether the pages were kept back when their block was onlined, rather than allocated
    /// later.
    pub fn never_onlined(&self) -> bool {
        self.never_onlined
    }

    /// Gives the pages to the page allocator and counts them as managed memory again.
    ///
    /// Checks that the pages are online memory inside their zone's span first: if not (their
    /// block went offline behind the caller's back), warns and keeps them offline for good
    /// rather than corrupt the free lists.
    ///
    /// # Safety
    ///
    /// The memory behind the pages must be accessible again (plugged), and their memory block
    /// must be online, i.e. the value was not left behind by an offlining that it missed.
    pub unsafe fn online(self) {
        let this = core::mem::ManuallyDrop::new(self);
        if this.refs_dropped {
            // Their block is going offline: taking them back now would confuse it. The block's
            // memory is about to go away with them.
            pr_warn!(
                "offline pages {:#x}+{} onlined while going offline\n",
                this.pfn,
                this.nr
            );
            return;
        }
        // SAFETY: `pfn_range_is_online_in_zone()` accepts any range.
        if !unsafe { bindings::pfn_range_is_online_in_zone(this.pfn, this.nr) } {
            // The caller broke the contract: its block is not online (any more). Freeing the
            // pages would corrupt the free lists of a zone that does not span them; keeping them
            // offline loses only their memory.
            crate::warn_on!(true);
            pr_err!(
                "offline pages {:#x}+{} are not online memory of one zone: kept offline\n",
                this.pfn,
                this.nr
            );
            return;
        }
        if this.never_onlined {
            // `generic_online_page()` clears PageOffline, drops the reference, counts the pages
            // as managed and frees them, in power-of-two chunks.
            let mut pfn = this.pfn;
            let end = this.pfn + this.nr;
            while pfn < end {
                let order = chunk_order(pfn, end - pfn);
                // SAFETY: We own these never-onlined pages (type invariant); this is exactly what
                // the online path would have done with them.
                unsafe { bindings::generic_online_page(bindings::pfn_to_page(pfn), order) };
                pfn += 1 << order;
            }
        } else {
            // SAFETY: We own the pages, which are PageOffline (type invariant).
            unsafe { bindings::pfn_range_clear_offline(this.pfn, this.nr) };
            // SAFETY: The pages came from `alloc_contig_range()` and have a refcount of one.
            unsafe { bindings::free_contig_range(this.pfn, this.nr) };
            // CAST: See `ContigRange::into_offline`.
            let nr = this.nr as isize;
            // SAFETY: The pages are live (their block is online).
            unsafe { bindings::adjust_managed_page_count(bindings::pfn_to_page(this.pfn), nr) };
        }
    }

    /// Their memory block is going offline: drops the pages' references, so that offlining
    /// treats them like free pages.
    ///
    /// `n` is the memory notifier call the caller handles, which must be
    /// [`Event::GoingOffline`] for the block of the pages; for any other call this warns and
    /// does nothing.
    pub fn going_offline(&mut self, n: &Notification<'_>) {
        if self.refs_dropped || crate::warn_on!(!n.covers(Event::GoingOffline, self.pfn, self.nr)) {
            return;
        }
        // SAFETY: We own the pages, each with a reference count of one (type invariant).
        let busy = unsafe { bindings::pfn_range_ref_dec(self.pfn, self.nr) };
        // Someone else holds a reference to a page we own: a kernel bug, as in C.
        if crate::warn_on!(busy != 0) {
            pr_warn!(
                "{} offline pages of {:#x}+{} have unexpected references\n",
                busy,
                self.pfn,
                self.nr
            );
        }
        self.refs_dropped = true;
    }

    /// Offlining of their block was cancelled: takes back the references
    /// [`OfflinePages::going_offline`] dropped, if it did.
    ///
    /// `n` is the memory notifier call the caller handles, which must be
    /// [`Event::CancelOffline`] for the block of the pages; for any other call this warns and
    /// does nothing. The core offlines a block at a time and ends each offlining with `Offline`
    /// or `CancelOffline`, so this cancels the offlining `going_offline` was called for.
    pub fn cancel_offline(&mut self, n: &Notification<'_>) {
        if !self.refs_dropped || crate::warn_on!(!n.covers(Event::CancelOffline, self.pfn, self.nr))
        {
            return;
        }
        // SAFETY: `n` proves the offlining of the pages' block was cancelled: it is online
        // again, and we own the pages.
        unsafe { bindings::pfn_range_ref_inc(self.pfn, self.nr) };
        self.refs_dropped = false;
    }

    /// Their memory block is offline now: the pages no longer exist as such, and the value is
    /// consumed. Call it from the memory notifier on `Offline`; it touches no page.
    pub fn offlined(self) {
        core::mem::forget(self);
    }
}

impl Drop for OfflinePages {
    fn drop(&mut self) {
        pr_warn!(
            "offline pages {:#x}+{} stay offline for good\n",
            self.pfn,
            self.nr
        );
    }
}

/// The largest order of a buddy-aligned chunk at `pfn` of at most `nr` pages.
pub fn chunk_order(pfn: Pfn, nr: usize) -> u32 {
    let max = bindings::MAX_PAGE_ORDER;
    let mut order = 0;
    while order < max && pfn % (2 << order) == 0 && (2usize << order) <= nr {
        order += 1;
    }
    order
}

#[cfg(CONFIG_RUST_MM_HOTPLUG_KUNIT_TEST)]
#[macros::kunit_tests(rust_kernel_mm_hotplug_pages)]
mod tests {
    use super::*;

    #[test]
    fn used_pageblocks_counts_allocated_pages() -> Result {
        let page = crate::page::Page::alloc_page(GFP_KERNEL)?;
        let pfn = page.pfn();
        // SAFETY: The page is allocated: its memory cannot be removed.
        assert_eq!(unsafe { used_pageblocks(pfn, 1) }, 1);
        // SAFETY: As above.
        assert_eq!(unsafe { used_pageblocks(pfn, 0) }, 0);
        // Page frames that are not online memory count as used.
        let far = (usize::MAX >> 1) & !(pageblock_pages() - 1);
        // SAFETY: No memory is there to be removed.
        assert_eq!(unsafe { used_pageblocks(far, 2 * pageblock_pages()) }, 2);
        Ok(())
    }

    /// A failing `alloc_contig_range()` leaves alone the isolation of whoever made it fail.
    ///
    /// Memory offlining isolates a block's pageblocks before its notifiers run, and a driver
    /// may try to allocate from the block meanwhile. Before the fix in `mm/page_alloc.c` the
    /// failed allocation unisolated the block, and the offline then spun on it for good.
    #[test]
    fn failed_alloc_keeps_anothers_isolation() -> Result {
        let nr = pageblock_pages();
        let order = nr.trailing_zeros();
        // A pageblock of our own (an aligned block of its size); only its first page holds a
        // reference.
        // SAFETY: No preconditions.
        let page = unsafe { bindings::alloc_pages(GFP_KERNEL.as_raw(), order) };
        if page.is_null() {
            return Err(ENOMEM);
        }
        // SAFETY: `page` is a live page.
        let pfn = unsafe { bindings::page_to_pfn(page) };
        // Like a driver's offline pages, which memory offlining counts as movable.
        // SAFETY: We own the page, a plain allocation of no page type.
        unsafe { set_offline(pfn, 1) };
        // Isolate the pageblock the way memory offlining does.
        // SAFETY: The pageblock is online memory of one zone, and stays so: we hold a page of it.
        let isolated = to_result(unsafe {
            bindings::start_isolate_page_range(
                pfn,
                pfn + nr,
                bindings::pb_isolate_mode_PB_ISOLATE_MODE_MEM_OFFLINE,
            )
        });
        let mut busy = false;
        let mut still_isolated = false;
        if isolated.is_ok() {
            // SAFETY: As above.
            match unsafe { ContigRange::alloc(pfn, nr, GFP_KERNEL) } {
                Err(e) => busy = e == EBUSY,
                // Impossible while we hold the first page; the pages are not ours to free.
                Ok(range) => core::mem::forget(range),
            }
            // SAFETY: `page` is live and `pfn` is its frame.
            let mt = unsafe { bindings::get_pfnblock_migratetype(page, pfn) };
            still_isolated = mt == bindings::migratetype_MIGRATE_ISOLATE;
            // SAFETY: We isolated the range above.
            unsafe { bindings::undo_isolate_page_range(pfn, pfn + nr) };
        }
        // SAFETY: We own the page and made it `PageOffline` above.
        unsafe { bindings::pfn_range_clear_offline(pfn, 1) };
        // SAFETY: Allocated above with this order, and no longer isolated or offline.
        unsafe { bindings::__free_pages(page, order) };
        isolated?;
        assert!(busy);
        assert!(still_isolated);
        Ok(())
    }

    #[test]
    fn chunk_order_is_aligned_and_bounded() {
        assert_eq!(chunk_order(0, 1), 0);
        assert_eq!(chunk_order(0, 2), 1);
        assert_eq!(chunk_order(2, 8), 1);
        assert_eq!(chunk_order(8, 8), 3);
        assert_eq!(chunk_order(8, 7), 2);
        assert_eq!(chunk_order(0, usize::MAX), bindings::MAX_PAGE_ORDER);
        // Every chunk is aligned to its size and fits.
        for pfn in 0..64usize {
            for nr in 1..64usize {
                let o = chunk_order(pfn, nr);
                assert!(pfn % (1 << o) == 0 && (1 << o) <= nr);
            }
        }
    }
}
