// SPDX-License-Identifier: GPL-2.0

//! The online-page callback: deciding, page chunk by page chunk, what happens to memory that is
//! being onlined.
//!
//! The kernel has one global online-page callback (`set_online_page_callback()`), which can be
//! taken by one user at a time. This module takes it on behalf of every Rust
//! [`OnlinePageHandler`], as virtio-mem's C driver does for its devices: each
//! [`HandlerRegistration`] adds a handler to a shared list, the first one installs the callback
//! and the last one to go restores the kernel's default. For every chunk being onlined, the
//! callback asks the handlers in turn whether they [own](OnlinePageHandler::owns) it; the owner
//! decides, and unowned chunks are onlined normally.
//!
//! C header: [`include/linux/memory_hotplug.h`](srctree/include/linux/memory_hotplug.h)

use super::{
    pages::{
        OfflinePages,
        Pfn, //
    },
    PhysRange,
};
use crate::{
    bindings,
    error::to_result,
    new_mutex,
    new_spinlock,
    page::PAGE_SHIFT,
    prelude::*,
    sync::{
        Arc,
        Mutex,
        SetOnce,
        SpinLock, //
    }, //
};

/// A power-of-two chunk of pages of one memory block that is being onlined.
///
/// Every page is `PageOffline` with a reference count of one, and not yet counted as managed
/// memory. The chunk must end up either [onlined](OnlineChunk::online) or
/// [kept offline](OnlineChunk::keep_offline); it can be [split](OnlineChunk::split) first.
///
/// # Invariants
///
/// `[pfn, pfn + 2^order)` are pages being onlined that belong to this value.
pub struct OnlineChunk {
    pfn: Pfn,
    order: u32,
}

impl OnlineChunk {
    /// The first page frame.
    pub fn pfn(&self) -> Pfn {
        self.pfn
    }

    /// The chunk has `2^order` pages.
    pub fn order(&self) -> u32 {
        self.order
    }

    /// The number of pages.
    pub fn nr_pages(&self) -> usize {
        1 << self.order
    }

    /// The physical range of the chunk.
    pub fn range(&self) -> Option<PhysRange> {
        let start = u64::try_from(self.pfn).ok()?.checked_mul(1 << PAGE_SHIFT)?;
        PhysRange::new(start, (1u64 << self.order) << PAGE_SHIFT)
    }

    /// Splits the chunk into its two halves, or returns it unchanged if it is a single page.
    pub fn split(self) -> Result<(Self, Self), Self> {
        if self.order == 0 {
            return Err(self);
        }
        let order = self.order - 1;
        // INVARIANT: The halves partition the pages of `self`.
        Ok((
            Self {
                pfn: self.pfn,
                order,
            },
            Self {
                pfn: self.pfn + (1 << order),
                order,
            },
        ))
    }

    /// Onlines the pages: they go to the page allocator (`generic_online_page()`).
    ///
    /// # Safety
    ///
    /// The memory behind the pages must be accessible, for as long as it stays online: this is
    /// what the caller of [`add_driver_managed`](super::add_driver_managed) promised for the
    /// pages it passes on.
    pub unsafe fn online(self) {
        // SAFETY: By the type invariant these pages are being onlined and are ours; the caller
        // guarantees they are accessible.
        unsafe { bindings::generic_online_page(bindings::pfn_to_page(self.pfn), self.order) };
    }

    /// Keeps the pages offline and owned by the caller, who may unplug the memory behind them.
    pub fn keep_offline(self) -> OfflinePages {
        let nr = self.nr_pages();
        // SAFETY: By the type invariant the pages are ours; they are not passed to
        // `generic_online_page()`, and the online path leaves them PageOffline with a reference
        // count of one.
        unsafe { OfflinePages::from_never_onlined(self.pfn, nr) }
    }
}

/// Decides the fate of the memory it owns while it is being onlined.
///
/// # Examples
///
/// A device that made only part of its memory accessible: pages below `plugged` go online, the
/// others stay offline, owned by the driver.
///
/// ```
/// use kernel::mm::hotplug::{
///     online::{HandlerRegistration, OnlineChunk, OnlinePageHandler},
///     pages::OfflinePages,
///     PhysRange,
/// };
/// use kernel::{new_mutex, sync::{Arc, Mutex}};
///
/// #[pin_data]
/// struct Partly {
///     range: PhysRange,
///     plugged: u64,
///     #[pin]
///     kept: Mutex<KVec<OfflinePages>>,
/// }
///
/// impl OnlinePageHandler for Partly {
///     fn owns(&self, range: PhysRange) -> bool {
///         self.range.contains(&range)
///     }
///
///     fn online_pages(&self, chunk: OnlineChunk) {
///         if chunk.range().is_some_and(|r| r.last() < self.plugged) {
///             // SAFETY: The device made the memory below `plugged` accessible, and the driver
///             // unplugs none of it while it is online.
///             unsafe { chunk.online() };
///         } else {
///             // Without memory for the token, the pages stay offline for good, with a
///             // warning: safe, as nothing hands them to the page allocator.
///             let _ = self.kept.lock().push(chunk.keep_offline(), GFP_KERNEL);
///         }
///     }
/// }
///
/// /// Installs the handler for `range`; fails with `EBUSY` while another driver (such as the
/// /// C virtio-mem) holds the online-page callback.
/// fn install(range: PhysRange, plugged: u64) -> Result<HandlerRegistration> {
///     let handler = Arc::pin_init(
///         pin_init!(Partly { range, plugged, kept <- new_mutex!(KVec::new()) }),
///         GFP_KERNEL,
///     )?;
///     HandlerRegistration::new(handler)
/// }
/// ```
pub trait OnlinePageHandler: Send + Sync {
    /// Whether the handler is responsible for `range`. Called under a spinlock: must be quick
    /// and must not sleep.
    fn owns(&self, range: PhysRange) -> bool;

    /// Onlines `chunk`, keeps it offline, or splits it and does either with its parts.
    ///
    /// Called in process context with the device hotplug and memory hotplug locks held: it must
    /// not add, remove, online or offline memory, nor create or drop a [`HandlerRegistration`]
    /// (that waits for those locks). Once the handler's registration is dropped, it is not
    /// called any more.
    fn online_pages(&self, chunk: OnlineChunk);
}

/// The shared list of handlers.
#[pin_data]
struct Registry {
    /// Serializes changes to the list and (un)installing the C callback.
    #[pin]
    update: Mutex<()>,
    /// The handlers; read by the callback.
    #[pin]
    handlers: SpinLock<KVec<Arc<dyn OnlinePageHandler>>>,
}

/// The registry, created on first use and never freed (it is tiny).
static REGISTRY: SetOnce<Pin<KBox<Registry>>> = SetOnce::new();

fn registry() -> Result<&'static Registry> {
    loop {
        if let Some(r) = REGISTRY.as_ref() {
            return Ok(r);
        }
        let new = KBox::pin_init(
            pin_init!(Registry {
                update <- new_mutex!(()),
                handlers <- new_spinlock!(KVec::new()),
            }),
            GFP_KERNEL,
        )?;
        // Losing the race drops `new`; the winner is done storing its registry within a few
        // instructions.
        if !REGISTRY.populate(new) {
            core::hint::spin_loop();
        }
    }
}

/// The C online-page callback while at least one handler is registered.
///
/// # Safety
///
/// Called by the memory hotplug core with a valid chunk of pages being onlined.
unsafe extern "C" fn online_page_cb(page: *mut bindings::page, order: c_uint) {
    // SAFETY: The hotplug core passes a valid page being onlined.
    let pfn = unsafe { bindings::page_to_pfn(page) };
    let chunk = OnlineChunk { pfn, order };
    let handler = match (REGISTRY.as_ref(), chunk.range()) {
        (Some(reg), Some(range)) => {
            let handlers = reg.handlers.lock();
            handlers.iter().find(|h| h.owns(range)).cloned()
        }
        _ => None,
    };
    // INVARIANT: The core hands us the chunk; it is passed on exactly once.
    match handler {
        Some(h) => h.online_pages(chunk),
        // SAFETY: Memory no handler owns is onlined as the kernel would without us; whoever
        // added it vouched for it.
        None => unsafe { chunk.online() },
    }
}

/// A registered [`OnlinePageHandler`]; unregistered when dropped.
///
/// Creating and dropping it waits for memory onlining in progress: never do either from a
/// memory notifier, from an online-page handler, or while holding a lock a handler takes.
///
/// # Invariants
///
/// `handler` is in the registry's list.
pub struct HandlerRegistration {
    handler: Arc<dyn OnlinePageHandler>,
}

impl HandlerRegistration {
    /// Registers `handler`. The first registration installs the online-page callback; fails with
    /// `EBUSY` if another user (such as a C driver) holds it. Sleeps.
    pub fn new(handler: Arc<dyn OnlinePageHandler>) -> Result<Self> {
        let reg = registry()?;
        let _update = reg.update.lock();
        let n = reg.handlers.lock().len();
        let mut list = KVec::with_capacity(n + 1, GFP_KERNEL)?;
        if n == 0 {
            // Installing may wait for onlining in progress; only `update` is held, which the
            // callback never takes.
            // SAFETY: `online_page_cb` is a valid callback for the whole life of the kernel.
            to_result(unsafe { bindings::set_online_page_callback(Some(online_page_cb)) })
                .map_err(|_| EBUSY)?;
        }
        {
            let mut handlers = reg.handlers.lock();
            // Moves the entries into the bigger vector: no allocation under the spinlock.
            for h in handlers.drain_all() {
                list.push_within_capacity(h).map_err(|_| ENOMEM)?;
            }
            list.push_within_capacity(handler.clone())
                .map_err(|_| ENOMEM)?;
            *handlers = list;
        }
        // INVARIANT: Added above.
        Ok(Self { handler })
    }
}

impl Drop for HandlerRegistration {
    fn drop(&mut self) {
        let Ok(reg) = registry() else {
            return;
        };
        let _update = reg.update.lock();
        let now_empty = {
            let mut handlers = reg.handlers.lock();
            let me = Arc::as_ptr(&self.handler).cast::<u8>();
            if let Some(i) = handlers
                .iter()
                .position(|h| Arc::as_ptr(h).cast::<u8>() == me)
            {
                // Swapping keeps this allocation-free under the spinlock.
                let last = handlers.len() - 1;
                handlers.swap(i, last);
                // The removed handler may still be in use by a running onlining, which holds its
                // own reference.
                drop(handlers.pop());
            }
            handlers.is_empty()
        };
        if now_empty {
            // SAFETY: We installed `online_page_cb` with the first registration. Restoring waits
            // for onlining in progress, so afterwards no callback runs.
            let ret = unsafe { bindings::restore_online_page_callback(Some(online_page_cb)) };
            if ret != 0 {
                pr_warn!("online page callback not restored: error {}\n", ret);
            }
        } else {
            // Wait for onlining in progress, which may still run our handler: afterwards it is
            // no longer in the list, so no onlining can find it.
            // SAFETY: `get_online_mems()` waits for the memory hotplug write side, which every
            // onlining holds; we hold no lock it needs.
            unsafe {
                bindings::get_online_mems();
                bindings::put_online_mems();
            }
        }
    }
}
