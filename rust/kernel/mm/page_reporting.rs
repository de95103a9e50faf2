// SPDX-License-Identifier: GPL-2.0

//! Free page reporting: tell a device (typically a hypervisor) which memory is free, so that it
//! can take the backing memory away until the guest uses those pages again.
//!
//! The page allocator collects free blocks of at least the reporting order (a pageblock unless
//! the `page_reporting.page_reporting_order` parameter says otherwise), takes them off its free
//! lists while a report is in flight, and hands them to the registered [`Reporter`] as
//! [`ReportedPages`]. When the reporter returns, the blocks go back to the free lists, marked
//! reported if the report succeeded: they are not reported again until they were allocated and
//! freed once more.
//!
//! A reported page may lose its contents. That is harmless for a page the allocator hands out
//! uninitialized, but not if the guest relies on what free pages hold (page poisoning, or
//! `init_on_free`): [`free_page_contents`] says what that is, and a device that reports must
//! be able to restore it (virtio-balloon's `VIRTIO_BALLOON_F_PAGE_POISON`).
//!
//! Only one reporter can be registered in the system at a time.
//!
//! C header: [`include/linux/page_reporting.h`](srctree/include/linux/page_reporting.h)

use crate::{
    bindings,
    error::to_result,
    prelude::*,
    types::Opaque, //
};
use core::{
    marker::PhantomData,
    ptr::NonNull, //
};

/// What the page allocator leaves in a free page, which a reporting device must preserve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreePageContents {
    /// Nothing in particular: the allocator makes no promise about free pages.
    Undefined,
    /// Zeroes: freed pages are cleared (`init_on_free`).
    Zeroed,
    /// Every byte holds this value: freed pages are poisoned (`page_poison=1`), and checked
    /// for it when they are allocated again.
    Poisoned(u8),
}

/// What free pages hold in this boot (see [`FreePageContents`]).
pub fn free_page_contents() -> FreePageContents {
    // SAFETY: Both only read boot-time static keys.
    let (zeroed, poisoned) = unsafe {
        (
            bindings::want_init_on_free(),
            bindings::page_poisoning_enabled_static(),
        )
    };
    // Page poisoning takes precedence: with it on, the allocator turns `init_on_free` off.
    if poisoned && !zeroed {
        // CAST: `PAGE_POISON` is a byte pattern (0xaa).
        FreePageContents::Poisoned(bindings::PAGE_POISON as u8)
    } else if zeroed {
        FreePageContents::Zeroed
    } else {
        FreePageContents::Undefined
    }
}

/// Free blocks the allocator set aside for one report.
///
/// They stay off the free lists, and nothing else uses them, for as long as this exists: the
/// duration of one [`Reporter::report`] call.
///
/// # Invariants
///
/// `sg` is the first of `nents` chained scatterlist entries, each describing one free block
/// (a whole page block of the reporting order or more) that the allocator isolated for this
/// report, valid for `'a`.
pub struct ReportedPages<'a> {
    sg: NonNull<bindings::scatterlist>,
    nents: u32,
    _blocks: PhantomData<&'a bindings::scatterlist>,
}

impl ReportedPages<'_> {
    /// The number of blocks (scatterlist entries).
    pub fn len(&self) -> u32 {
        self.nents
    }

    /// Whether there are no blocks; the allocator never reports an empty list.
    pub fn is_empty(&self) -> bool {
        self.nents == 0
    }

    /// The total size of the blocks, in bytes.
    pub fn bytes(&self) -> u64 {
        let mut sg = self.sg.as_ptr();
        let mut total = 0u64;
        for i in 0..self.nents {
            // SAFETY: `sg` is entry `i` of the `nents` entries (type invariant).
            total += u64::from(unsafe { (*sg).length });
            if i + 1 < self.nents {
                // SAFETY: As above; entry `i` is not the last one, so `sg_next` finds `i + 1`.
                sg = unsafe { bindings::sg_next(sg) };
            }
        }
        total
    }

    /// The first scatterlist entry and the number of entries, to hand the blocks to a device.
    ///
    /// The blocks may be given to a device (and written by it) until the report returns, and
    /// not after.
    pub(crate) fn as_raw(&self) -> (*mut bindings::scatterlist, u32) {
        (self.sg.as_ptr(), self.nents)
    }
}

/// Reports free memory to a device.
pub trait Reporter: Send + Sync {
    /// Hands `pages` to the device, and returns once the device is done with them.
    ///
    /// On success the blocks are marked reported; on error they go back to the free lists
    /// unreported, and are offered again in a later report. Called from a workqueue in process
    /// context (it may sleep), one call at a time. The pages belong to the device only until
    /// this returns: the allocator hands them out again afterwards.
    fn report(&self, pages: &ReportedPages<'_>) -> Result;

    /// The smallest order of free blocks the reporter wants, or `None` for the core's default
    /// (the pageblock order, unless the `page_reporting.page_reporting_order` parameter chose
    /// one). Used only when no order was chosen yet; an order above `MAX_PAGE_ORDER` also
    /// means the default.
    const ORDER: Option<u32> = None;
}

/// A registered free page reporter.
///
/// # Invariants
///
/// `info` is registered with the page reporting core, its `report` callback being
/// `Self::report_callback`, from initialization until drop.
///
/// # Examples
///
/// ```
/// use kernel::mm::page_reporting::{Registration, ReportedPages, Reporter};
///
/// /// A reporter that never takes anything: every report fails, so nothing is marked reported.
/// struct Decline;
///
/// impl Reporter for Decline {
///     fn report(&self, pages: &ReportedPages<'_>) -> Result {
///         pr_info!("declined {} bytes\n", pages.bytes());
///         Err(EAGAIN)
///     }
/// }
///
/// match KBox::pin_init(Registration::new(Decline, 0), GFP_KERNEL) {
///     // Registered until dropped.
///     Ok(reg) => drop(reg),
///     // Another device (a virtio-balloon) reports already: there is only one reporter.
///     Err(e) => assert_eq!(e, EBUSY),
/// }
/// # Ok::<(), Error>(())
/// ```
#[pin_data(PinnedDrop)]
pub struct Registration<T: Reporter> {
    #[pin]
    reporter: T,
    #[pin]
    info: Opaque<bindings::page_reporting_dev_info>,
}

// SAFETY: The core only uses `info` through the registration; `T` is `Send`.
unsafe impl<T: Reporter> Send for Registration<T> {}
// SAFETY: `&Registration` only gives out `&T`, which is `Sync`.
unsafe impl<T: Reporter> Sync for Registration<T> {}

impl<T: Reporter> Registration<T> {
    /// Registers the reporter `reporter` initializes, to be given at most `capacity` blocks
    /// per report (0, or more than the core's limit of 32, means that limit). `EBUSY` if
    /// another reporter is registered.
    ///
    /// A reporter that hands each block to a device as one descriptor should pass the number
    /// of descriptors its queue has.
    pub fn new<E>(reporter: impl PinInit<T, E>, capacity: u32) -> impl PinInit<Self, Error>
    where
        Error: From<E>,
    {
        try_pin_init!(Self {
            // Initialized before `info` is registered, so it is ready for the first report.
            reporter <- reporter,
            info <- Opaque::try_ffi_init(move |info: *mut bindings::page_reporting_dev_info| {
                // SAFETY: `info` is valid for writes; it is pinned inside `Self`. The core
                // initializes the work item and the state when it registers it; all-zeroes is
                // a valid starting point for both.
                unsafe {
                    info.write(core::mem::zeroed());
                    (*info).report = Some(Self::report_callback);
                    (*info).order = T::ORDER
                        .unwrap_or(bindings::PAGE_REPORTING_ORDER_UNSPECIFIED as u32);
                    (*info).capacity = capacity;
                }
                // SAFETY: `info` is initialized and stays pinned until `drop` unregisters it.
                to_result(unsafe { bindings::page_reporting_register(info) })
            }),
        })
    }

    /// The reporter.
    pub fn reporter(&self) -> &T {
        &self.reporter
    }

    /// # Safety
    ///
    /// Called by the page reporting core with the `info` of a live `Registration<T>` and `nents`
    /// entries of free blocks it isolated for this call.
    unsafe extern "C" fn report_callback(
        info: *mut bindings::page_reporting_dev_info,
        sg: *mut bindings::scatterlist,
        nents: c_uint,
    ) -> c_int {
        // SAFETY: `info` is the `info` field of a live `Registration<T>`: drop unregisters it,
        // which waits for a report in progress.
        let this = unsafe { &*crate::container_of!(Opaque::cast_from(info), Self, info) };
        let Some(sg) = NonNull::new(sg) else {
            return EINVAL.to_errno();
        };
        // INVARIANT: The core passes `nents` entries of blocks isolated until this returns.
        let pages = ReportedPages {
            sg,
            nents,
            _blocks: PhantomData,
        };
        match this.reporter.report(&pages) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }
}

#[pinned_drop]
impl<T: Reporter> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: `info` is registered (type invariant). Unregistering waits for a report in
        // progress, and none starts afterwards.
        unsafe { bindings::page_reporting_unregister(self.info.get()) };
    }
}
