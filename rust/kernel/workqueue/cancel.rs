// SPDX-License-Identifier: GPL-2.0

//! Cancelling `Arc`-based work items.
//!
//! A driver that queues work must make sure, before it goes away, that the work is neither
//! pending nor running: otherwise it would run after the driver's data, or even its module, is
//! gone. [`cancel_work_sync`] and [`cancel_delayed_work_sync`] do that for work items whose
//! [`WorkItem::Pointer`] is an [`Arc`]. A pending item holds a reference to its `Arc` (taken when
//! it was queued); cancelling it gives that reference back. [`cancel_delayed_work`] only takes a
//! pending delayed item off its timer, without waiting: a work item may call it on itself, for
//! example to drop a retry that an earlier run scheduled.
//!
//! C header: [`include/linux/workqueue.h`](srctree/include/linux/workqueue.h)

use super::{
    HasDelayedWork,
    HasWork,
    Work,
    WorkItem, //
};
use crate::{
    bindings,
    sync::Arc, //
};

/// Cancels the work item `ID` of `this` if it is pending, and waits until it is not running.
///
/// Returns whether it was pending; the reference it held is then dropped. The work must not
/// requeue itself forever (e.g. check a "stopping" flag in [`WorkItem::run`]). Sleeps.
pub fn cancel_work_sync<T, const ID: u64>(this: &Arc<T>) -> bool
where
    T: WorkItem<ID, Pointer = Arc<T>> + HasWork<T, ID>,
{
    let ptr = Arc::as_ptr(this).cast_mut();
    // SAFETY: `ptr` points into a live `Arc<T>`; `raw_get_work` only computes a field address.
    let work = unsafe { Work::raw_get(T::raw_get_work(ptr)) };
    // SAFETY: `work` is the initialized `work_struct` of a live value.
    let was_pending = unsafe { bindings::cancel_work_sync(work) };
    if was_pending {
        // SAFETY: A pending item owns one reference, from `Arc::into_raw()` when it was
        // queued; cancelling it means `run` will not consume it, so we do.
        drop(unsafe { Arc::from_raw(ptr.cast_const()) });
    }
    was_pending
}

/// Like [`cancel_work_sync`], for a delayed work item: also stops its timer.
pub fn cancel_delayed_work_sync<T, const ID: u64>(this: &Arc<T>) -> bool
where
    T: WorkItem<ID, Pointer = Arc<T>> + HasDelayedWork<T, ID>,
{
    // SAFETY: `cancel_delayed_work_sync` takes an initialized `delayed_work` and returns whether
    // it was pending.
    unsafe { cancel_delayed(this, bindings::cancel_delayed_work_sync) }
}

/// Cancels the delayed work item `ID` of `this` if it is pending, without waiting for it to
/// finish if it is running.
///
/// Returns whether it was pending; the reference it held is then dropped. Does not sleep, so it
/// may be called from the work item itself, or from atomic context.
pub fn cancel_delayed_work<T, const ID: u64>(this: &Arc<T>) -> bool
where
    T: WorkItem<ID, Pointer = Arc<T>> + HasDelayedWork<T, ID>,
{
    // SAFETY: `cancel_delayed_work` takes an initialized `delayed_work` and returns whether it
    // was pending.
    unsafe { cancel_delayed(this, bindings::cancel_delayed_work) }
}

/// Cancels the delayed work item `ID` of `this` with `cancel`, and drops the reference the item
/// held if it was pending.
///
/// # Safety
///
/// `cancel` must be one of the C functions that cancel a `delayed_work`, returning `true` exactly
/// when it took the item off its pending state.
unsafe fn cancel_delayed<T, const ID: u64>(
    this: &Arc<T>,
    cancel: unsafe extern "C" fn(*mut bindings::delayed_work) -> bool,
) -> bool
where
    T: WorkItem<ID, Pointer = Arc<T>> + HasDelayedWork<T, ID>,
{
    let ptr = Arc::as_ptr(this).cast_mut();
    // SAFETY: `ptr` points into a live `Arc<T>`; `raw_get_work` only computes a field address.
    let work = unsafe { Work::raw_get(T::raw_get_work(ptr)) };
    // SAFETY: By the safety requirements of `HasDelayedWork`, the work is the `work` field of a
    // `struct delayed_work`.
    let dwork = unsafe { crate::container_of!(work, bindings::delayed_work, work) };
    // SAFETY: `dwork` is the initialized `delayed_work` of a live value, as `cancel` requires.
    let was_pending = unsafe { cancel(dwork) };
    if was_pending {
        // SAFETY: As in `cancel_work_sync`: the pending item's reference is ours now. `this`
        // holds another one, so this drop does not free the value.
        drop(unsafe { Arc::from_raw(ptr.cast_const()) });
    }
    was_pending
}
