// SPDX-License-Identifier: GPL-2.0

//! Memory notifiers: callbacks on every memory block that goes online or offline.
//!
//! A [`Registration`] pins a [`Handler`] and hooks it into the memory notifier chain with
//! a priority; dropping it unhooks it, and once the drop returns no callback is running.
//!
//! Callbacks run in process context and may sleep, with the device hotplug lock and the memory
//! hotplug lock held: they must not add, remove, online or offline memory, nor install an
//! online-page callback.
//!
//! C header: [`include/linux/memory.h`](srctree/include/linux/memory.h)

use super::PhysRange;
use crate::{
    bindings,
    page::PAGE_SHIFT,
    prelude::*, //
};
use core::{
    ffi::c_void,
    marker::PhantomData, //
};

/// What is happening to a range of memory.
///
/// A `Going*` event is followed by its completion (`Online`, `Offline`) or by its cancellation
/// (`CancelOnline`, `CancelOffline`). Cancellation goes to the whole chain, so a notifier may
/// see a `Cancel*` event for a `Going*` event it never saw (because an earlier notifier
/// vetoed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The memory is about to be onlined; may be vetoed.
    GoingOnline,
    /// The memory is online.
    Online,
    /// The memory is about to be offlined; may be vetoed.
    GoingOffline,
    /// The memory is offline.
    Offline,
    /// Onlining failed or was vetoed.
    CancelOnline,
    /// Offlining failed or was vetoed.
    CancelOffline,
}

impl Event {
    /// Converts the chain's `action` value; `None` for values this kernel does not define.
    pub fn from_raw(action: usize) -> Option<Self> {
        let a = u32::try_from(action).ok()?;
        Some(match a {
            bindings::memory_block_state_MEM_GOING_ONLINE => Self::GoingOnline,
            bindings::memory_block_state_MEM_ONLINE => Self::Online,
            bindings::memory_block_state_MEM_GOING_OFFLINE => Self::GoingOffline,
            bindings::memory_block_state_MEM_OFFLINE => Self::Offline,
            bindings::memory_block_state_MEM_CANCEL_ONLINE => Self::CancelOnline,
            bindings::memory_block_state_MEM_CANCEL_OFFLINE => Self::CancelOffline,
            _ => return None,
        })
    }

    /// The name the kernel uses for the event, e.g. `"MEM_GOING_ONLINE"`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::GoingOnline => "MEM_GOING_ONLINE",
            Self::Online => "MEM_ONLINE",
            Self::GoingOffline => "MEM_GOING_OFFLINE",
            Self::Offline => "MEM_OFFLINE",
            Self::CancelOnline => "MEM_CANCEL_ONLINE",
            Self::CancelOffline => "MEM_CANCEL_OFFLINE",
        }
    }

    /// Whether a notifier may veto the event.
    pub fn can_veto(&self) -> bool {
        matches!(self, Self::GoingOnline | Self::GoingOffline)
    }
}

/// The range of page frames an event is about (`struct memory_notify`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PfnRange {
    start_pfn: usize,
    nr_pages: usize,
}

impl PfnRange {
    /// A range of `nr_pages` page frames starting at `start_pfn`.
    pub const fn new(start_pfn: usize, nr_pages: usize) -> Self {
        Self {
            start_pfn,
            nr_pages,
        }
    }

    /// The first page frame number.
    pub const fn start_pfn(&self) -> usize {
        self.start_pfn
    }

    /// The number of pages.
    pub const fn nr_pages(&self) -> usize {
        self.nr_pages
    }

    /// The physical address range, or `None` if it is empty or does not fit.
    pub fn phys(&self) -> Option<PhysRange> {
        let start = u64::try_from(self.start_pfn)
            .ok()?
            .checked_shl(PAGE_SHIFT as u32)?;
        let size = u64::try_from(self.nr_pages)
            .ok()?
            .checked_shl(PAGE_SHIFT as u32)?;
        if start >> PAGE_SHIFT != self.start_pfn as u64
            || size >> PAGE_SHIFT != self.nr_pages as u64
        {
            return None;
        }
        PhysRange::new(start, size)
    }
}

/// One call of the memory notifier chain: `event` on the memory block `range`.
///
/// Only the chain makes one, and a [`Handler`] gets it by reference for the length of the call,
/// so holding one proves that the call is running. [`OfflinePages::going_offline`] and
/// [`OfflinePages::cancel_offline`] take it as that proof.
///
/// [`OfflinePages::going_offline`]: super::pages::OfflinePages::going_offline
/// [`OfflinePages::cancel_offline`]: super::pages::OfflinePages::cancel_offline
pub struct Notification<'a> {
    event: Event,
    range: PfnRange,
    _call: PhantomData<&'a ()>,
}

impl Notification<'_> {
    /// What is happening.
    pub fn event(&self) -> Event {
        self.event
    }

    /// The memory block it is happening to.
    pub fn range(&self) -> PfnRange {
        self.range
    }

    /// Whether this is `event` for memory that contains `[pfn, pfn + nr)`.
    pub(crate) fn covers(&self, event: Event, pfn: usize, nr: usize) -> bool {
        let r = self.range;
        self.event == event
            && pfn >= r.start_pfn
            && pfn
                .checked_add(nr)
                .is_some_and(|end| end - r.start_pfn <= r.nr_pages)
    }
}

/// What a notifier answers.
#[derive(Clone, Copy, Debug)]
pub enum NotifyResult {
    /// Not interested in this event (`NOTIFY_DONE`).
    Done,
    /// Handled (`NOTIFY_OK`).
    Ok,
    /// Refuses the event, which fails with this error; only meaningful for events that
    /// [`Event::can_veto`]. The writer of `/sys/devices/system/memory/memoryN/state` sees the
    /// error.
    Veto(Error),
}

impl NotifyResult {
    /// The value the notifier chain expects (`notifier_from_errno()` for a veto).
    pub fn to_raw(self) -> c_int {
        // CAST: The `NOTIFY_*` constants are small.
        match self {
            Self::Done => bindings::NOTIFY_DONE as c_int,
            Self::Ok => bindings::NOTIFY_OK as c_int,
            Self::Veto(e) => {
                (bindings::NOTIFY_STOP_MASK as c_int)
                    | (bindings::NOTIFY_OK as c_int - e.to_errno())
            }
        }
    }

    /// The inverse of [`NotifyResult::to_raw`] for a chain's result (`notifier_to_errno()`).
    pub fn from_raw(ret: c_int) -> Self {
        let v = ret & !(bindings::NOTIFY_STOP_MASK as c_int);
        if v > bindings::NOTIFY_OK as c_int {
            Self::Veto(Error::from_errno(bindings::NOTIFY_OK as c_int - v))
        } else if v == bindings::NOTIFY_OK as c_int {
            Self::Ok
        } else {
            Self::Done
        }
    }
}

/// A memory notifier.
///
/// # Examples
///
/// ```
/// use kernel::mm::hotplug::notifier::{Event, Handler, Notification, NotifyResult, Registration};
/// use kernel::sync::atomic::{Atomic, Relaxed};
///
/// /// Counts the memory blocks that go online; refuses nothing.
/// struct Onlined(Atomic<usize>);
///
/// impl Handler for Onlined {
///     fn notify(&self, n: &Notification<'_>) -> NotifyResult {
///         match n.event() {
///             Event::Online => {
///                 self.0.fetch_add(1, Relaxed);
///                 NotifyResult::Ok
///             }
///             // A driver refuses to online memory its device has not plugged with
///             // `NotifyResult::Veto(EPERM)` on `Event::GoingOnline`.
///             _ => NotifyResult::Done,
///         }
///     }
/// }
///
/// let reg = KBox::pin_init(Registration::new(0, Onlined(Atomic::new(0))), GFP_KERNEL)?;
/// let _onlined_so_far = reg.handler().0.load(Relaxed);
/// // Unregistered here: no call runs once `drop` returns.
/// drop(reg);
/// # Ok::<(), Error>(())
/// ```
pub trait Handler: Send + Sync {
    /// Called for every event on every memory block, in process context with the hotplug locks
    /// held (see the [module documentation](self)).
    fn notify(&self, n: &Notification<'_>) -> NotifyResult;
}

/// The memory notifier chain (`register_memory_notifier()`).
pub struct MemoryChain;

// SAFETY: `register_memory_notifier()` adds the block to a blocking chain, whose rwsem
// `unregister_memory_notifier()` takes: no call runs once it returns. The chain passes a
// `struct memory_notify` with every action, which `call` expects.
unsafe impl<T: Handler> crate::notifier::Chain<T> for MemoryChain {
    unsafe fn register(nb: *mut bindings::notifier_block) -> c_int {
        // SAFETY: Per the caller's guarantee, `nb` is initialized and stays in place.
        unsafe { bindings::register_memory_notifier(nb) }
    }

    unsafe fn unregister(nb: *mut bindings::notifier_block) {
        // SAFETY: Per the caller's guarantee, `nb` is registered.
        unsafe { bindings::unregister_memory_notifier(nb) };
    }

    unsafe fn call(handler: &T, action: usize, data: *mut c_void) -> c_int {
        let Some(event) = Event::from_raw(action) else {
            return NotifyResult::Done.to_raw();
        };
        // SAFETY: The memory notifier chain passes a valid `struct memory_notify`.
        let arg = unsafe { &*data.cast::<bindings::memory_notify>() };
        let n = Notification {
            event,
            range: PfnRange::new(arg.start_pfn, arg.nr_pages),
            _call: PhantomData,
        };
        handler.notify(&n).to_raw()
    }
}

/// A [`Handler`] hooked into the memory notifier chain: `Registration::new(priority,
/// handler)` registers the handler `handler` initializes, with `priority` (the kernel's own
/// notifiers use 0 to 100); dropping it unhooks it. See [`crate::notifier::Registration`].
pub type Registration<T> = crate::notifier::Registration<MemoryChain, T>;

#[cfg(CONFIG_RUST_MM_HOTPLUG_KUNIT_TEST)]
#[macros::kunit_tests(rust_kernel_mm_hotplug_notifier)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip() {
        for (raw, ev) in [
            (bindings::memory_block_state_MEM_ONLINE, Event::Online),
            (
                bindings::memory_block_state_MEM_GOING_OFFLINE,
                Event::GoingOffline,
            ),
            (bindings::memory_block_state_MEM_OFFLINE, Event::Offline),
            (
                bindings::memory_block_state_MEM_GOING_ONLINE,
                Event::GoingOnline,
            ),
            (
                bindings::memory_block_state_MEM_CANCEL_ONLINE,
                Event::CancelOnline,
            ),
            (
                bindings::memory_block_state_MEM_CANCEL_OFFLINE,
                Event::CancelOffline,
            ),
        ] {
            assert_eq!(Event::from_raw(raw as usize), Some(ev));
        }
        assert_eq!(Event::from_raw(1000), None);
        assert!(Event::GoingOnline.can_veto() && !Event::Online.can_veto());
    }

    #[test]
    fn veto_encodes_like_notifier_from_errno() {
        // notifier_from_errno(-EBUSY) == NOTIFY_STOP_MASK | (NOTIFY_OK + EBUSY)
        let raw = NotifyResult::Veto(EBUSY).to_raw();
        assert_eq!(raw, 0x8000 | (1 + 16));
        assert!(matches!(NotifyResult::from_raw(raw), NotifyResult::Veto(e) if e == EBUSY));
        // NOTIFY_BAD is a veto with EPERM.
        assert!(matches!(
            NotifyResult::from_raw(bindings::NOTIFY_BAD as c_int),
            NotifyResult::Veto(e) if e == EPERM
        ));
        assert_eq!(NotifyResult::Ok.to_raw(), 1);
        assert_eq!(NotifyResult::Done.to_raw(), 0);
    }

    #[test]
    fn pfn_range_to_phys() {
        let r = PfnRange::new(0x40000, 0x8000);
        let p = r.phys();
        assert_eq!(
            p.map(|p| (p.start(), p.size())),
            Some((0x4000_0000, 0x800_0000))
        );
        assert_eq!(PfnRange::new(1, 0).phys(), None);
        assert_eq!(PfnRange::new(usize::MAX, 1).phys(), None);
    }
}
