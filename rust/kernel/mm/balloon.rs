// SPDX-License-Identifier: GPL-2.0

//! Memory balloon pages, and their migration.
//!
//! A memory balloon takes pages away from the guest and hands them to the hypervisor. The pages
//! stay movable: compaction and memory offlining may migrate an inflated page, and the balloon
//! driver then tells its device about the new page and the old one.
//!
//! In Linux 7.3 this all goes through `mm/balloon.c`: balloon pages are `PageOffline` pages with
//! `PG_movable_ops`, and the one set of movable operations for them (registered by the core at
//! boot) calls back into the driver through `balloon_dev_info.migratepage`. A Rust balloon plugs
//! in there, with [`BalloonDriver`].
//!
//! Ownership is explicit in the types:
//!
//! - a [`BalloonPage`] is a page the driver owns: allocated for the balloon and not yet in it, or
//!   taken out of it. It is a [`Page`], and dropping it frees it.
//! - a page *in* the balloon has no Rust handle at all: [`Balloon::enqueue`] consumes the
//!   [`BalloonPage`], and only [`Balloon::dequeue`] gives one back. So a driver cannot use or
//!   free a page that the balloon, or the migration core, owns.
//! - during migration the driver sees the two pages as [`MigratingPage`]s, borrowed from the
//!   migration core, which only tell their frame numbers.
//!
//! C header: [`include/linux/balloon.h`](srctree/include/linux/balloon.h)

use crate::{
    bindings,
    page::{
        BorrowedPage,
        Page, //
    },
    prelude::*,
    sync::atomic::{
        Atomic,
        Relaxed, //
    },
    types::Opaque,
};
use core::{
    ops::Deref,
    ptr::NonNull, //
};

/// A page owned by a balloon driver, outside the balloon.
///
/// It derefs to the [`Page`] it is. Dropping it frees the page; a page that was in a balloon is
/// still `PageOffline` then, which the page allocator clears when it frees it.
///
/// # Invariants
///
/// The page is an order-0 page on no list (its `lru` is free) and in no balloon.
pub struct BalloonPage(Page);

impl BalloonPage {
    /// Allocates a page for the balloon, as the balloon core does: movable (so that it can be
    /// migrated while inflated) when balloon migration is built in, and without warning, retrying
    /// or dipping into reserves when memory is short.
    pub fn alloc() -> Option<Self> {
        // SAFETY: FFI call without preconditions.
        let page = NonNull::new(unsafe { bindings::balloon_page_alloc() })?;
        // SAFETY: `balloon_page_alloc()` returned an order-0 page whose reference we own.
        let page = unsafe { Page::from_raw(page) };
        // INVARIANT: A freshly allocated page is on no list and in no balloon.
        Some(Self(page))
    }

    fn into_raw(self) -> *mut bindings::page {
        self.0.into_raw().as_ptr()
    }

    /// # Safety
    ///
    /// `page` must be NULL, or an order-0 page whose reference the caller gives away and that
    /// is on no list and in no balloon.
    unsafe fn from_raw(page: *mut bindings::page) -> Option<Self> {
        let page = NonNull::new(page)?;
        // SAFETY: The caller gives us the page and its reference.
        let page = unsafe { Page::from_raw(page) };
        // INVARIANT: The caller guarantees the rest.
        Some(Self(page))
    }
}

impl Deref for BalloonPage {
    type Target = Page;

    fn deref(&self) -> &Page {
        &self.0
    }
}

/// A list of [`BalloonPage`]s, linked through the pages themselves (`page->lru`), as the balloon
/// core's list functions take them.
///
/// Only creating a list allocates (its head); pushing and popping pages need no memory, so a
/// driver that creates its lists up front can inflate and deflate without allocating anything
/// but the pages themselves (which matters when it deflates for the OOM killer).
///
/// # Invariants
///
/// `head` is an initialized list head whose entries are exactly `len` pages satisfying
/// [`BalloonPage`]'s invariants except for being on this list, owned by the list.
pub struct PageList {
    head: KBox<Opaque<bindings::list_head>>,
    len: usize,
}

// SAFETY: The list owns its pages, which may be freed from any thread.
unsafe impl Send for PageList {}
// SAFETY: `&PageList` only reads the pages' frame numbers.
unsafe impl Sync for PageList {}

impl PageList {
    /// An empty list.
    pub fn new() -> Result<Self> {
        let head = KBox::new(Opaque::<bindings::list_head>::uninit(), GFP_KERNEL)?;
        // SAFETY: `head` is valid for writes, and boxed: its address is stable.
        unsafe { bindings::INIT_LIST_HEAD(head.get()) };
        // INVARIANT: The list is initialized and empty.
        Ok(Self { head, len: 0 })
    }

    /// The number of pages on the list.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds `page` at the front of the list.
    pub fn push(&mut self, page: BalloonPage) {
        // SAFETY: The head is initialized (type invariant), the page's `lru` is free
        // (`BalloonPage` invariant); the list now owns the page.
        unsafe { bindings::balloon_list_push(self.head.get(), page.into_raw()) };
        self.len += 1;
    }

    /// Takes the first page off the list.
    pub fn pop(&mut self) -> Option<BalloonPage> {
        // SAFETY: The head is initialized and its entries are pages (type invariant).
        let page = unsafe { bindings::balloon_list_pop(self.head.get()) };
        // SAFETY: The page came off our list: it is ours, and its `lru` is free again.
        let page = unsafe { BalloonPage::from_raw(page) }?;
        self.len -= 1;
        Some(page)
    }

    /// The frame numbers of the pages on the list, first to last.
    pub fn pfns(&self) -> impl Iterator<Item = usize> + '_ {
        let head = self.head.get();
        let mut cur: *mut bindings::page = core::ptr::null_mut();
        core::iter::from_fn(move || {
            // SAFETY: `head` is initialized and `cur` is NULL or one of its pages (type
            // invariant); `&self` keeps the list unchanged while we walk it.
            cur = unsafe { bindings::balloon_list_next(head, cur) };
            let page = NonNull::new(cur)?;
            // SAFETY: A page on the list stays valid while the list is borrowed.
            Some(unsafe { BorrowedPage::from_raw(page) }.pfn())
        })
    }
}

impl Drop for PageList {
    fn drop(&mut self) {
        while self.pop().is_some() {}
    }
}

/// How hard the migration core tries (`enum migrate_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrateMode {
    /// Must not block.
    Async,
    /// May block, but not on page writeback.
    SyncLight,
    /// May block.
    Sync,
}

impl MigrateMode {
    fn from_raw(mode: bindings::migrate_mode) -> Self {
        match mode {
            bindings::migrate_mode_MIGRATE_ASYNC => Self::Async,
            bindings::migrate_mode_MIGRATE_SYNC_LIGHT => Self::SyncLight,
            _ => Self::Sync,
        }
    }
}

/// A page taking part in a balloon page migration. The migration core owns it and lends it to
/// the driver for the callback; the driver may only tell its frame number to its device.
pub struct MigratingPage<'a>(BorrowedPage<'a>);

impl MigratingPage<'_> {
    /// The page frame number.
    pub fn pfn(&self) -> usize {
        self.0.pfn()
    }
}

/// The driver's side of a balloon: it tells its device about pages that move, and about pages
/// that leave a balloon dropped with pages still in it.
///
/// # Locking
///
/// [`BalloonDriver::migrate`] runs in the context of whoever migrates: compaction, memory
/// offlining, `alloc_contig_range()`, or an allocation that compacts, which may be the driver's
/// own [`BalloonPage::alloc`]. So a lock the driver holds across [`BalloonPage::alloc`] (or any
/// other allocation that may compact) may only be try-locked in `migrate`, returning `EAGAIN`
/// when it is taken; waiting for it there can deadlock.
pub trait BalloonDriver: Send + Sync {
    /// Moves an inflated page: the device must learn that `new` is now inflated and `old` is
    /// not. The contents do not matter. On success the new page replaces the old one in the
    /// balloon, and the core counts `balloon_migrate`.
    ///
    /// Called by the migration core, in process context, without any balloon lock held. `mode`
    /// says how hard the core tries; like the C virtio-balloon driver, an implementation that
    /// must talk to its device may sleep in any mode. An error (typically `EAGAIN`, e.g. when
    /// the driver is busy inflating or deflating) puts the old page back into the balloon, and
    /// the core may try again later.
    ///
    /// The C interface has a third outcome, `-ENOENT`: the old page deflated and the new one not
    /// inflated. In 7.3 the core does not take such a page out of `nr_balloon_pages` (and so
    /// `Balloon:` in `/proc/meminfo` drifts), so this interface does not offer it: an `ENOENT`
    /// returned here is passed on as `EAGAIN`.
    fn migrate(
        &self,
        new: &MigratingPage<'_>,
        old: &MigratingPage<'_>,
        mode: MigrateMode,
    ) -> Result;

    /// Tells the device that `page` leaves the balloon, which then frees it.
    ///
    /// Called for each page a [`Balloon`] still holds when it is dropped, so that no page goes
    /// back to the guest behind the device's back. A driver deflates (and tells its device)
    /// before it drops its balloon; this is the safety net. If the device cannot be told any
    /// more (it was reset, so it forgot its balloon), there is nothing to do.
    fn release(&self, page: &BalloonPage);
}

/// Whether inflating a balloon takes its pages out of the zones' managed page counts (so that
/// `MemTotal` shrinks), the `adjust_managed_page_count` choice of `struct balloon_dev_info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManagedPages {
    /// Inflated pages still count as managed (virtio-balloon with `DEFLATE_ON_OOM`: the pages
    /// come back when the guest needs them).
    Keep,
    /// Inflated pages leave the managed counts.
    Adjust,
}

/// A memory balloon (`struct balloon_dev_info`) together with the driver's migration handler.
///
/// Dropping it returns any page still in it to the guest, after [`BalloonDriver::release`] told
/// the device; drivers deflate first.
///
/// # Examples
///
/// ```
/// use kernel::mm::balloon::{
///     Balloon, BalloonDriver, BalloonPage, ManagedPages, MigrateMode, MigratingPage,
/// };
/// use kernel::time::{delay::fsleep, Delta};
///
/// /// A balloon without a device. A real driver tells its device about every page below.
/// struct NoDevice;
///
/// impl BalloonDriver for NoDevice {
///     fn migrate(
///         &self,
///         _new: &MigratingPage<'_>,
///         _old: &MigratingPage<'_>,
///         _mode: MigrateMode,
///     ) -> Result {
///         // The device would learn: `new.pfn()` is inflated now, `old.pfn()` is not.
///         Ok(())
///     }
///
///     fn release(&self, _page: &BalloonPage) {
///         // The device would learn: `page.pfn()` is not inflated any more.
///     }
/// }
///
/// // `Keep`: inflated pages stay in `MemTotal`.
/// let balloon = KBox::pin_init(Balloon::new(ManagedPages::Keep, NoDevice), GFP_KERNEL)?;
///
/// // Inflate one page: the balloon owns it, and the driver tells its device the frame number.
/// let page = BalloonPage::alloc().ok_or(ENOMEM)?;
/// let _pfn = balloon.enqueue(page);
/// assert_eq!(balloon.len(), 1);
///
/// // Deflate it (after telling the device, if it must hear first). The page may be isolated
/// // for migration at this moment, and back, or replaced, shortly.
/// let page = loop {
///     if let Some(page) = balloon.dequeue() {
///         break page;
///     }
///     fsleep(Delta::from_millis(1));
/// };
/// assert!(balloon.is_empty());
/// // The page is the driver's again; dropping it frees it.
/// drop(page);
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// - `info` is initialized by `balloon_devinfo_init`, with `migratepage` set to
///   `Self::migrate_callback` when balloon migration is built in; it is pinned.
/// - `pages` is the number of pages in the balloon, on its list or isolated for migration. Only
///   [`Balloon::enqueue`], [`Balloon::enqueue_list`] and the dequeues change it: a migration
///   replaces a page, so the count of a page isolated for migration stays until the core has put
///   it, or its replacement, back on the list, under its lock.
#[pin_data(PinnedDrop)]
pub struct Balloon<T: BalloonDriver> {
    #[pin]
    info: Opaque<bindings::balloon_dev_info>,
    pages: Atomic<usize>,
    data: T,
}

// SAFETY: The balloon core serializes all access to `info` with its own lock; `data` is `Sync`.
unsafe impl<T: BalloonDriver> Send for Balloon<T> {}
// SAFETY: As above.
unsafe impl<T: BalloonDriver> Sync for Balloon<T> {}

impl<T: BalloonDriver> Balloon<T> {
    /// An empty balloon whose migrations `data` handles.
    pub fn new(managed: ManagedPages, data: T) -> impl PinInit<Self> {
        pin_init!(Self {
            // `data` is written before the balloon holds any page, so before any migration.
            data,
            pages: Atomic::new(0),
            info <- Opaque::ffi_init(move |info: *mut bindings::balloon_dev_info| {
                // SAFETY: `info` is valid for writes.
                unsafe { bindings::balloon_devinfo_init(info) };
                // SAFETY: As above; the struct is initialized.
                unsafe {
                    (*info).adjust_managed_page_count = managed == ManagedPages::Adjust;
                    if cfg!(CONFIG_BALLOON_MIGRATION) {
                        (*info).migratepage = Some(Self::migrate_callback);
                    }
                }
            }),
        })
    }

    /// The driver data.
    pub fn data(&self) -> &T {
        &self.data
    }

    /// The number of pages in the balloon, including pages isolated for migration.
    pub fn len(&self) -> usize {
        self.pages.load(Relaxed)
    }

    /// Whether the balloon holds no page.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Puts `page` into the balloon: the guest loses it. Counts `balloon_inflate`.
    ///
    /// Returns the page's frame number, to tell the device.
    pub fn enqueue(&self, page: BalloonPage) -> usize {
        let pfn = page.pfn();
        // Count first: a concurrent dequeue of this page must not see the count below it.
        self.pages.fetch_add(1, Relaxed);
        // SAFETY: `info` is initialized and pinned (type invariant); the page satisfies the
        // core's requirements (order 0, `lru` free), and the balloon owns it from now on.
        unsafe { bindings::balloon_page_enqueue(self.info.get(), page.into_raw()) };
        pfn
    }

    /// Puts every page of `list` into the balloon, under one lock. Returns how many.
    pub fn enqueue_list(&self, list: &mut PageList) -> usize {
        // Count first, as in `enqueue`; the core takes every page of the list.
        self.pages.fetch_add(list.len, Relaxed);
        // SAFETY: `info` is initialized and pinned; the list's pages are owned by the list and
        // linked through `lru` (type invariant of `PageList`), as the core requires.
        let n = unsafe { bindings::balloon_page_list_enqueue(self.info.get(), list.head.get()) };
        // The core took every page off the list.
        list.len = 0;
        n
    }

    /// Takes up to `n` pages out of the balloon onto `list`, which the driver then owns again:
    /// it tells the device, then frees them (or keeps them). Counts `balloon_deflate`.
    ///
    /// May return fewer pages than the balloon holds when some are isolated for migration at
    /// the moment.
    pub fn dequeue_list(&self, list: &mut PageList, n: usize) -> usize {
        // SAFETY: `info` is initialized and pinned; the list head is initialized. The core moves
        // pages from the balloon onto it, and they are owned by the list from then on.
        let got =
            unsafe { bindings::balloon_page_list_dequeue(self.info.get(), list.head.get(), n) };
        list.len += got;
        self.pages.fetch_sub(got, Relaxed);
        got
    }

    /// Takes one page out of the balloon, if one is on its list (see [`Self::dequeue_list`]).
    pub fn dequeue(&self) -> Option<BalloonPage> {
        let head = Opaque::<bindings::list_head>::uninit();
        // SAFETY: `head` is valid for writes and does not move until the end of this function.
        unsafe { bindings::INIT_LIST_HEAD(head.get()) };
        // Unlike `balloon_page_dequeue`, this cannot BUG() on an empty balloon.
        // SAFETY: As in `dequeue_list`.
        let got = unsafe { bindings::balloon_page_list_dequeue(self.info.get(), head.get(), 1) };
        if got == 0 {
            return None;
        }
        self.pages.fetch_sub(1, Relaxed);
        // SAFETY: `head` holds exactly the page we dequeued.
        let page = unsafe { bindings::balloon_list_pop(head.get()) };
        // SAFETY: The page is off every list and ours.
        unsafe { BalloonPage::from_raw(page) }
    }

    /// Whether the core holds no page of the balloon, on its list or isolated for migration,
    /// decided under the core's lock: once it does not, the core no longer uses `info`.
    fn drained(&self) -> bool {
        // SAFETY: `info` is initialized and pinned (type invariant).
        unsafe { bindings::balloon_page_list_empty(self.info.get()) }
    }

    /// `balloon_dev_info.migratepage`.
    ///
    /// # Safety
    ///
    /// Called by the balloon core with the `info` of a live `Balloon<T>`, and with two pages it
    /// holds for the duration of the call.
    unsafe extern "C" fn migrate_callback(
        info: *mut bindings::balloon_dev_info,
        newpage: *mut bindings::page,
        page: *mut bindings::page,
        mode: bindings::migrate_mode,
    ) -> c_int {
        // SAFETY: `info` is the `info` field of a live `Balloon<T>`: the balloon holds (isolated)
        // pages, so it is not dropped yet (its drop waits for them).
        let this = unsafe { &*crate::container_of!(Opaque::cast_from(info), Self, info) };
        let (Some(new), Some(old)) = (NonNull::new(newpage), NonNull::new(page)) else {
            return EAGAIN.to_errno();
        };
        // SAFETY: The core holds both pages for the duration of this call, which the two
        // `MigratingPage`s do not outlive.
        let (new, old) = unsafe {
            (
                MigratingPage(BorrowedPage::from_raw(new)),
                MigratingPage(BorrowedPage::from_raw(old)),
            )
        };
        match this.data.migrate(&new, &old, MigrateMode::from_raw(mode)) {
            Ok(()) => 0,
            // To the core, -ENOENT means "deflated" (see `BalloonDriver::migrate`): make it an
            // error that puts the page back.
            Err(e) if e == ENOENT => EAGAIN.to_errno(),
            Err(e) => e.to_errno(),
        }
    }
}

#[pinned_drop]
impl<T: BalloonDriver> PinnedDrop for Balloon<T> {
    fn drop(self: Pin<&mut Self>) {
        let this = self.into_ref().get_ref();
        if !this.is_empty() {
            pr_warn!(
                "balloon dropped with {} pages inflated; returning them\n",
                this.len()
            );
        }
        // Pages isolated for migration come back to the list (or are replaced) shortly, and
        // the migration callback never waits for us. Whether any is left is decided under the
        // core's lock, under which a migration puts its page back: once the list is empty with
        // no page isolated, the core's last use of `info` is over.
        loop {
            if let Some(page) = this.dequeue() {
                this.data.release(&page);
                continue;
            }
            if this.drained() {
                break;
            }
            crate::time::delay::fsleep(crate::time::Delta::from_millis(1));
        }
        // The count is exact (type invariant); if it is not, say so rather than wait for pages
        // that are gone.
        crate::warn_on!(!this.is_empty());
    }
}

#[cfg(CONFIG_RUST_MM_BALLOON_KUNIT_TEST)]
#[macros::kunit_tests(rust_kernel_mm_balloon)]
mod tests {
    use super::*;

    #[test]
    fn migrate_mode_from_raw() {
        assert_eq!(
            MigrateMode::from_raw(bindings::migrate_mode_MIGRATE_ASYNC),
            MigrateMode::Async
        );
        assert_eq!(
            MigrateMode::from_raw(bindings::migrate_mode_MIGRATE_SYNC_LIGHT),
            MigrateMode::SyncLight
        );
        assert_eq!(
            MigrateMode::from_raw(bindings::migrate_mode_MIGRATE_SYNC),
            MigrateMode::Sync
        );
    }

    #[test]
    fn page_list_order_and_pfns() -> Result {
        let mut list = PageList::new()?;
        assert!(list.is_empty());
        let mut pfns = KVec::new();
        for _ in 0..4 {
            let page = BalloonPage::alloc().ok_or(ENOMEM)?;
            pfns.push(page.pfn(), GFP_KERNEL)?;
            list.push(page);
        }
        assert_eq!(list.len(), 4);
        // `push` adds at the front: the walk sees the pages newest first.
        let mut walked = KVec::new();
        for pfn in list.pfns() {
            walked.push(pfn, GFP_KERNEL)?;
        }
        pfns.reverse();
        assert_eq!(&walked[..], &pfns[..]);
        let first = list.pop().ok_or(EINVAL)?;
        assert_eq!(first.pfn(), pfns[0]);
        assert_eq!(list.len(), 3);
        // Dropping the list frees the rest.
        Ok(())
    }

    /// MemTotal, in bytes, as a signed value so that deltas can be taken.
    fn mem_total() -> i64 {
        i64::try_from(crate::mm::stats::MemStats::snapshot().total).unwrap_or(i64::MAX)
    }

    /// One inflate/deflate round; returns whether MemTotal moved by exactly the balloon.
    fn accounting_round(balloon: &Balloon<TestDriver>) -> Result<bool> {
        let page = crate::page::PAGE_SIZE as i64;
        let total0 = mem_total();
        assert!(balloon.drained());
        let mut list = PageList::new()?;
        for _ in 0..8 {
            list.push(BalloonPage::alloc().ok_or(ENOMEM)?);
        }
        assert_eq!(balloon.enqueue_list(&mut list), 8);
        assert!(list.is_empty());
        let single = balloon.enqueue(BalloonPage::alloc().ok_or(ENOMEM)?);
        assert!(single != 0);
        assert_eq!(balloon.len(), 9);
        // The core's own view, under its lock, agrees with the count.
        assert!(!balloon.drained());
        // `ManagedPages::Adjust`: inflated pages leave MemTotal.
        let inflated = total0 - mem_total() == 9 * page;

        assert_eq!(balloon.dequeue_list(&mut list, 3), 3);
        assert_eq!(list.len(), 3);
        assert_eq!(balloon.len(), 6);
        while balloon.dequeue().is_some() {}
        assert!(balloon.is_empty());
        assert!(balloon.drained());
        // Asking an empty balloon is harmless (C's balloon_page_dequeue() would BUG()).
        assert!(balloon.dequeue().is_none());
        assert_eq!(balloon.dequeue_list(&mut list, 5), 0);
        drop(list);
        Ok(inflated && mem_total() == total0)
    }

    /// Pages a [`TestDriver`] was asked to release.
    static RELEASED: Atomic<usize> = Atomic::new(0);

    /// The driver of the test balloons: answers every migration with its error (the test pages
    /// must stay where they are), and counts the pages released to it.
    struct TestDriver {
        migrate_err: Error,
    }

    /// Refuses every migration, as a driver does that cannot take a page now.
    const REFUSING: TestDriver = TestDriver {
        migrate_err: EAGAIN,
    };

    impl BalloonDriver for TestDriver {
        fn migrate(
            &self,
            _new: &MigratingPage<'_>,
            _old: &MigratingPage<'_>,
            _mode: MigrateMode,
        ) -> Result {
            Err(self.migrate_err)
        }

        fn release(&self, _page: &BalloonPage) {
            RELEASED.fetch_add(1, Relaxed);
        }
    }

    #[test]
    fn drop_releases_every_page_left() -> Result {
        let balloon = KBox::pin_init(Balloon::new(ManagedPages::Keep, REFUSING), GFP_KERNEL)?;
        for _ in 0..3 {
            balloon.enqueue(BalloonPage::alloc().ok_or(ENOMEM)?);
        }
        let before = RELEASED.load(Relaxed);
        drop(balloon);
        // Every page went through the driver before it went back to the guest.
        assert_eq!(RELEASED.load(Relaxed) - before, 3);
        Ok(())
    }

    #[test]
    fn enoent_never_reaches_the_core() -> Result {
        // `ENOENT` is the C interface's "deflated instead".
        let driver = TestDriver {
            migrate_err: ENOENT,
        };
        let balloon = KBox::pin_init(Balloon::new(ManagedPages::Keep, driver), GFP_KERNEL)?;
        let new = BalloonPage::alloc().ok_or(ENOMEM)?;
        let old = BalloonPage::alloc().ok_or(ENOMEM)?;
        // SAFETY: `info` belongs to a live balloon, and the two pages are ours for the call; the
        // driver does not touch them.
        let rc = unsafe {
            Balloon::<TestDriver>::migrate_callback(
                balloon.info.get(),
                new.as_ptr(),
                old.as_ptr(),
                bindings::migrate_mode_MIGRATE_SYNC,
            )
        };
        // `-ENOENT` would make the core drop the old page from the list but not from
        // `NR_BALLOON_PAGES`: the page goes back instead.
        assert_eq!(rc, EAGAIN.to_errno());
        Ok(())
    }

    #[test]
    fn enqueue_dequeue_accounting() -> Result {
        let balloon = KBox::pin_init(Balloon::new(ManagedPages::Adjust, REFUSING), GFP_KERNEL)?;
        // Built-in suites run while the boot still changes MemTotal on its own (the
        // asynchronous initramfs unpacking frees the initrd). A round that saw such a
        // change proves nothing either way, so it is repeated; a driver bug fails every
        // round.
        let mut exact = false;
        for _ in 0..5 {
            if accounting_round(&balloon)? {
                exact = true;
                break;
            }
            crate::time::delay::fsleep(crate::time::Delta::from_millis(200));
        }
        assert!(exact);
        Ok(())
    }
}
