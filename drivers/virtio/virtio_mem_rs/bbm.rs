// SPDX-License-Identifier: GPL-2.0

//! Big Block Mode: memory is plugged, added, removed and unplugged in big blocks.
//!
//! A big block is at least a memory block and a device block. Plugging asks the device for a
//! whole big block and adds it; unplugging removes it (taking its online memory from the page
//! allocator and offlining it first if it is online) and then asks the device to unplug it.
//!
//! Lock order: the worker's `state` lock, then `bbs`, then `kept`, then `shown`. Only the worker
//! and teardown take `bbs`. `kept` is also taken by the memory notifier and the online-page
//! handler, which run inside add and remove calls: the worker never holds `kept` across those.

use crate::{
    config::{
        Layout,
        Sizes, //
    },
    context::{
        BlockMode,
        Context, //
    },
    order::{
        order_by_key,
        Cost, //
    },
};
use core::num::NonZeroU64;
use kernel::{
    alloc::kvec::PushError,
    device::Core,
    mm::hotplug::{
        self,
        notifier::{
            Event,
            Notification,
            NotifyResult, //
        },
        online::OnlineChunk,
        pages::{
            self,
            OfflinePages, //
        },
        AddedBlocks,
        AddedMemory,
        MemoryGroup,
        PhysRange,
        SystemRamRegion, //
    },
    new_mutex, new_spinlock,
    page::PAGE_SHIFT,
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
        Mutex,
        SpinLock, //
    },
    virtio,
};

/// The bit of a big block's byte set while it is plugged on the device (added or not). A big
/// block plugged but not added (an add failed, or a removal succeeded and the unplug request
/// failed) is to be unplugged.
const PLUGGED: u8 = 1 << 0;
/// The bit of a big block's byte set if taking its online memory failed (-EBUSY) the last
/// time.
const BUSY: u8 = 1 << 1;

/// The big blocks of the region, up to the highest that was ever used: the others are
/// unused. A byte each, as in the C driver: the byte of the [`AddedBlocks`] set, which holds
/// whether the block is added, and [`PLUGGED`] and [`BUSY`].
pub(crate) struct Bbs {
    set: AddedBlocks,
}

impl Bbs {
    pub(crate) fn new(
        region: &Arc<SystemRamRegion>,
        group: &Arc<MemoryGroup>,
        first: u64,
        size: NonZeroU64,
    ) -> Result<Self> {
        Ok(Self {
            set: AddedBlocks::new(region, group, first, size.get())?,
        })
    }

    /// Big blocks with state; the others are unused.
    pub(crate) fn len(&self) -> usize {
        self.set.len()
    }

    pub(crate) fn is_unused(&self, id: usize) -> bool {
        self.set.state(id) & PLUGGED == 0
    }

    pub(crate) fn is_added(&self, id: usize) -> bool {
        self.set.is_added(id)
    }

    /// Plugged on the device but not added: to be unplugged.
    fn is_plugged_only(&self, id: usize) -> bool {
        !self.is_unused(id) && !self.is_added(id)
    }

    fn set_bit(&mut self, id: usize, bit: u8, on: bool) {
        // Only big blocks below `len()` change.
        let _ = self.set.update_state(id, bit, if on { bit } else { 0 });
    }

    /// Records big block `id`, which is not added, as plugged on the device or not.
    fn set_plugged(&mut self, id: usize, on: bool) {
        self.set_bit(id, PLUGGED, on);
    }

    fn busy(&self, id: usize) -> bool {
        self.set.state(id) & BUSY != 0
    }

    fn set_busy(&mut self, id: usize, on: bool) {
        self.set_bit(id, BUSY, on);
    }

    /// Gives big block `id` and those before it state.
    fn grow(&mut self, id: usize) -> Result {
        self.set.grow(id.checked_add(1).ok_or(EINVAL)?)
    }

    /// The token of added big block `id`, out of the set; the block stays plugged.
    fn take(&mut self, id: usize) -> Option<AddedMemory> {
        self.set.take(id)
    }

    /// Puts the token of an added, plugged big block into the set. A token the set refuses
    /// (not one of its big blocks) stays added for good (it warns when dropped).
    fn put(&mut self, mem: AddedMemory) {
        match self.set.put(mem) {
            Ok(id) => self.set_plugged(id, true),
            Err(mem) => mem.leak(),
        }
    }

    /// Big blocks plugged on the device, added or not.
    pub(crate) fn nr_plugged(&self) -> usize {
        (0..self.len()).filter(|&id| !self.is_unused(id)).count()
    }

    /// Bytes of heap the state holds.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.set.heap_bytes()
    }
}

/// Big Block Mode: the big blocks of one device, and the pages of the one being removed.
#[pin_data]
pub(crate) struct Bbm {
    /// The size of a big block: a power of two, at least a memory block and a device block.
    pub(crate) size: NonZeroU64,
    /// The address of big block 0, the first whole one in the usable range.
    first: u64,
    /// The number of whole big blocks in the usable range.
    nr: usize,
    /// The big blocks, up to the highest that was ever used: the others are unused.
    #[pin]
    bbs: Mutex<Bbs>,
    /// Pages of the big block being removed, taken from the page allocator before offlining it
    /// (see [`Self::fake_offline`]), one token per memory block. The memory notifier lets
    /// offlining skip them.
    #[pin]
    kept: Mutex<KVec<OfflinePages>>,
    /// The address of the big block being removed, plus one; 0 if none. Memory of it that goes
    /// online meanwhile stays offline. Set and checked under `kept`.
    removing: Atomic<u64>,
    /// The address of the memory block being onlined, plus one; 0 if none. Set and checked
    /// under `kept`.
    onlining: Atomic<u64>,
    /// What the status shows of `bbs`, as of its last change.
    #[pin]
    shown: SpinLock<BbmShown>,
}

/// What the status shows of the big blocks.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BbmShown {
    /// Big blocks unused, plugged only, and added.
    pub(crate) bbs: [usize; 3],
    /// Bytes of heap the block state holds.
    pub(crate) state_bytes: usize,
}

impl Bbm {
    /// Big Block Mode for `layout`, with big blocks of `size` (see [`Self::size_of`]), of the
    /// region `region` claimed for `group`. Fails if no whole big block fits.
    pub(crate) fn new(
        vdev: &virtio::Device<Core<'_>>,
        layout: &Layout,
        size: NonZeroU64,
        region: &Arc<SystemRamRegion>,
        group: &Arc<MemoryGroup>,
    ) -> Result<impl PinInit<Self, Error>> {
        let Some((first, nr)) = layout.whole_units(size) else {
            dev_err!(
                vdev,
                "refusing device: no whole big block of {:#x} fits\n",
                size
            );
            return Err(EINVAL);
        };
        let bbs = Bbs::new(region, group, first, size)?;
        let shown = BbmShown {
            bbs: [nr, 0, 0],
            state_bytes: 0,
        };
        Ok(try_pin_init!(Self {
            size,
            first,
            nr,
            bbs <- new_mutex!(bbs),
            kept <- new_mutex!(KVec::new()),
            removing: Atomic::new(0),
            onlining: Atomic::new(0),
            shown <- new_spinlock!(shown),
        }))
    }

    /// The big block size for `layout`: what the `bbm_block_size` module parameter asks for if
    /// it is a power of two of at least a memory block and a device block, else (and if it is
    /// 0) the smallest such size.
    pub(crate) fn size_of(
        vdev: &virtio::Device<Core<'_>>,
        layout: &Layout,
        bbm_block_size: u64,
    ) -> Result<NonZeroU64> {
        let mut size = layout.block_size.get().max(hotplug::block_size());
        if bbm_block_size != 0 {
            if bbm_block_size.is_power_of_two() && bbm_block_size >= size {
                size = bbm_block_size;
            } else {
                dev_warn!(
                    vdev,
                    "bbm_block_size={:#x} ignored: not a power of two of at least {:#x}\n",
                    bbm_block_size,
                    size
                );
            }
        }
        NonZeroU64::new(size).ok_or(EINVAL)
    }

    /// What the status shows of the big blocks.
    pub(crate) fn shown(&self) -> BbmShown {
        *self.shown.lock()
    }

    /// Publishes the counts of `bbs` for the status.
    fn publish(&self, bbs: &Bbs) {
        // The big blocks `bbs` does not reach yet are unused.
        let mut counts = [self.nr.saturating_sub(bbs.len()), 0, 0];
        for id in 0..bbs.len() {
            counts[match (bbs.is_unused(id), bbs.is_added(id)) {
                (true, _) => 0,
                (false, false) => 1,
                (false, true) => 2,
            }] += 1;
        }
        let state_bytes = bbs.heap_bytes();
        *self.shown.lock() = BbmShown {
            bbs: counts,
            state_bytes,
        };
    }
}

/// The index of the first of `kept[from..]` whose pages lie in `r`.
fn kept_in(kept: &[OfflinePages], from: usize, r: PhysRange) -> Option<usize> {
    kept.iter()
        .skip(from)
        .position(|p| {
            // CAST: Page frame numbers of hot-pluggable memory fit `u64`.
            let a = (p.pfn() as u64) << PAGE_SHIFT;
            r.contains_addr(a)
        })
        .map(|j| j + from)
}

impl Bbm {
    /// Bytes plugged with the big blocks `bbs` of `size`.
    fn plugged(bbs: &Bbs, size: NonZeroU64) -> u64 {
        // CAST: The number of big blocks fits `u64`.
        bbs.nr_plugged() as u64 * size.get()
    }

    /// The address range of big block `id`.
    pub(crate) fn bb_range(&self, id: usize) -> Option<PhysRange> {
        let start = self
            .first
            .checked_add(u64::try_from(id).ok()?.checked_mul(self.size.get())?)?;
        PhysRange::new(start, self.size.get())
    }

    /// Unplugs big blocks that are plugged but not added.
    fn unplug_leftovers(&self, cx: &Context, bbs: &mut Bbs) -> Result {
        for id in 0..bbs.len() {
            if bbs.is_plugged_only(id) {
                let r = self.bb_range(id).ok_or(EINVAL)?;
                cx.link.unplug(r.start(), r.size())?;
                bbs.set_plugged(id, false);
                self.publish(bbs);
            }
        }
        Ok(())
    }

    /// Plugs and adds up to `diff` bytes, in whole big blocks, lowest first.
    fn plug(&self, cx: &Context, bbs: &mut Bbs, diff: u64, usable: u64) -> Result {
        let limit = cx
            .layout
            .addr
            .saturating_add(usable)
            .min(cx.layout.usable_end);
        for _ in 0..diff / self.size {
            if cx.config_changed.load(Relaxed) {
                return Err(EAGAIN);
            }
            if !cx.could_add_bytes(self.size.get(), self.size.get()) {
                return Err(ENOSPC);
            }
            let id = self.next_unused(bbs, limit)?;
            let r = self.bb_range(id).ok_or(EINVAL)?;
            cx.link.plug(r.start(), r.size())?;
            bbs.set_plugged(id, true);
            self.add(cx, bbs, id, r)?;
        }
        Ok(())
    }

    /// The lowest unused big block that ends below `limit`, with room made for it in the block
    /// state.
    fn next_unused(&self, bbs: &mut Bbs, limit: u64) -> Result<usize> {
        let id = (0..self.nr)
            .take_while(|&id| self.bb_range(id).is_some_and(|r| r.last() < limit))
            .find(|&id| bbs.is_unused(id))
            .ok_or(ENOSPC)?;
        bbs.grow(id)?;
        Ok(id)
    }

    /// Adds big block `id` (range `r`), which the device just plugged; unplugs it again if
    /// adding fails.
    fn add(&self, cx: &Context, bbs: &mut Bbs, id: usize, r: PhysRange) -> Result {
        // SAFETY: The device acknowledged plugging `r`, so its memory is accessible; it is
        // only unplugged after the returned token removed it (or if adding fails, below).
        match unsafe { cx.add(r) } {
            Ok(mem) => {
                bbs.put(mem);
                self.publish(bbs);
                Ok(())
            }
            Err(e) => {
                if cx.link.unplug(r.start(), r.size()).is_ok() {
                    bbs.set_plugged(id, false);
                }
                Err(e)
            }
        }
    }

    /// Whether every memory block of `r` is offline. Only a hint for the order of work.
    pub(crate) fn is_offline(r: PhysRange) -> bool {
        let step = hotplug::block_size();
        let mut a = r.start();
        while a <= r.last() {
            // CAST: Physical addresses of added memory fit `usize` on 64-bit.
            if pages::pfn_is_online((a >> kernel::page::PAGE_SHIFT) as usize) {
                return false;
            }
            a = a.saturating_add(step);
        }
        true
    }

    /// Whether every online memory block of `r` is in `ZONE_MOVABLE`, as the C driver decides
    /// (`virtio_mem_bbm_bb_is_movable()`). A big block may span several memory blocks, each
    /// onlined to a zone of its own; one in `ZONE_NORMAL` holds memory the kernel may need
    /// and may hold its unmovable allocations, so such a big block waits for the last pass.
    fn is_movable(r: PhysRange) -> bool {
        let step = hotplug::block_size();
        let mut a = r.start();
        while a <= r.last() {
            // CAST: See `is_offline`.
            let pfn = (a >> PAGE_SHIFT) as usize;
            // SAFETY: The caller holds the `AddedMemory` of `r`, so its memmap exists, and the
            // pfn is online as checked just before (racy, as in the C driver: an offlining
            // in between is caught when the block is taken).
            if pages::pfn_is_online(pfn) && !unsafe { pages::pfn_is_movable(pfn) } {
                return false;
            }
            a = a.saturating_add(step);
        }
        true
    }

    /// The big blocks in the order to try them: the highest first, as in the C driver; for
    /// online memory (`online`), cheapest first by [`Cost`] (see [`crate::order`]), so that
    /// the blocks most likely to go offline, with the least to migrate, are tried first.
    fn unplug_order(&self, bbs: &Bbs, online: bool) -> Result<KVec<usize>> {
        let mut ids = KVec::with_capacity(bbs.len(), GFP_KERNEL)?;
        for id in (0..bbs.len()).rev() {
            let cost = match (online && bbs.is_added(id), self.bb_range(id)) {
                // Offline big blocks are skipped in the passes over online memory.
                (true, Some(r)) if !Self::is_offline(r) => {
                    // CAST: Page frame numbers of hot-pluggable memory fit `usize`.
                    let (pfn, nr) = (
                        (r.start() >> PAGE_SHIFT) as usize,
                        (r.size() >> PAGE_SHIFT) as usize,
                    );
                    let busy = bbs.busy(id);
                    // SAFETY: The big block is ours (added), and only the worker, which holds
                    // `state` here, removes it.
                    unsafe { Cost::of_range(pfn, nr, usize::from(busy)) }
                }
                _ => Cost::default(),
            };
            ids.push((cost, id), GFP_KERNEL)?;
        }
        order_by_key(ids)
    }

    /// Takes every online memory block of big block `r` from the page allocator, as the C
    /// driver does before offlining one (`virtio_mem_bbm_offline_remove_and_unplug_bb()`).
    ///
    /// `alloc_contig_range()` gives up on pages that cannot migrate (a page pinned by I/O, a
    /// pipe holding a reference), where `offline_pages()` would retry until the caller gets a
    /// fatal signal, which a worker never does: it would hang with the hotplug locks held. The
    /// pages stay in `kept`, where the memory notifier makes offlining skip them. On failure
    /// gives back what it took and returns the error (`EBUSY` if something could not move).
    fn fake_offline(&self, cx: &Context, r: PhysRange) -> Result {
        let step = hotplug::block_size();
        // CAST: Page counts of one memory block fit `usize`.
        let nr = (step >> PAGE_SHIFT) as usize;
        let mut kept = self.kept.lock();
        // Room for every token first: a token that cannot be stored would be lost. One per
        // memory block, and one per chunk the online-page handler may keep if the core onlines
        // memory of the big block again (`online_pages`). Sizes are powers of two: no
        // division needed.
        let blocks = r.size() >> step.trailing_zeros();
        let chunks = (r.size() >> PAGE_SHIFT) >> pages::MAX_ORDER;
        kept.reserve(usize::try_from(blocks + chunks)?, GFP_KERNEL)?;
        // Memory of the big block is being onlined (the notifier is between `GoingOnline` and
        // its outcome): it may look offline, and offlining it later would not go through
        // `alloc_contig_range()`. Try again later.
        let onlining = self.onlining.load(Relaxed).checked_sub(1);
        if onlining.is_some_and(|a| r.contains_addr(a)) {
            return Err(EBUSY);
        }
        // Set under `kept`, which the online-page handler takes to check it: from here on,
        // memory of the big block that goes online stays offline (`online_pages`).
        self.removing.store(r.start() + 1, Relaxed);
        let mut a = r.start();
        let mut res = Ok(());
        while a <= r.last() {
            // CAST: Physical addresses of added memory fit `usize` on 64-bit.
            let pfn = (a >> PAGE_SHIFT) as usize;
            if pages::pfn_is_online(pfn) {
                // SAFETY: Only the worker removes the block, so its memory map stays. The block
                // was online just now; an offlining that got past `GoingOffline` meanwhile has
                // isolated it, and `alloc_contig_range()` then fails with `EBUSY`.
                let movable = unsafe { pages::pfn_is_movable(pfn) };
                match cx.fake_offline(pfn, nr, movable) {
                    Ok(p) => {
                        if let Err(PushError(p)) = kept.push_within_capacity(p) {
                            // SAFETY: As above; the memory is plugged.
                            unsafe { p.online() };
                            res = Err(ENOMEM);
                            break;
                        }
                    }
                    Err(e) => {
                        res = Err(e);
                        break;
                    }
                }
            }
            a = a.saturating_add(step);
        }
        drop(kept);
        if res.is_err() {
            self.fake_online(r);
        }
        res
    }

    /// Ends the removal of big block `r`, which failed: gives the pages that
    /// [`Self::fake_offline`] and [`BlockMode::online_pages`] kept back to the page allocator.
    fn fake_online(&self, r: PhysRange) {
        let mut kept = self.kept.lock();
        // The removal is over: memory of the big block that goes online from now on is
        // onlined whole (`online_pages`), and nothing is left kept behind the sweep below.
        self.removing.store(0, Relaxed);
        let mut from = 0;
        while let Some(i) = kept_in(&kept, from, r) {
            from = i + 1;
            if kept[i].is_going_offline() {
                // A concurrent offlining of its block dropped the references: its `Offline`
                // or `CancelOffline` decides. After a cancellation the next attempt on this
                // big block gives the pages back.
                continue;
            }
            let Ok(p) = kept.remove(i) else {
                break;
            };
            from = i;
            // SAFETY: Plugged (not removed) and online, not going offline: an offlined block
            // took its token (`notify`); one still onlining takes pages in at this stage.
            unsafe { p.online() };
        }
    }

    /// Removes and unplugs up to `diff` bytes in whole big blocks, highest first: offline ones,
    /// then (with `unplug_online`) movable ones, then any (see [`Self::unplug_order`]).
    fn unplug(&self, cx: &Context, bbs: &mut Bbs, diff: u64) -> Result {
        let mut left = diff / self.size;
        let online = crate::module_parameters::unplug_online.value();
        for pass in 0..3 {
            if pass > 0 && !online {
                // As in the C driver: without `unplug_online` the request is done once the
                // offline memory is unplugged. Offlining more memory runs the worker again.
                return Ok(());
            }
            for id in self.unplug_order(bbs, pass > 0)? {
                if left == 0 {
                    return Ok(());
                }
                if cx.config_changed.load(Relaxed) {
                    return Err(EAGAIN);
                }
                let Some((r, offline)) = self.unplug_candidate(cx, bbs, id, pass) else {
                    continue;
                };
                let Some(mem) = bbs.take(id) else {
                    continue;
                };
                let res = if offline {
                    mem.remove()
                } else {
                    self.remove_online(cx, bbs, id, r, mem)
                };
                match res {
                    Ok(()) => {
                        // Removed memory is neither online nor offline any more (offlining it
                        // first counted it as offline).
                        cx.removed(self.size.get());
                        if !offline {
                            cx.migrated_bytes.fetch_add(self.size.get(), Relaxed);
                        }
                        // Still plugged until the device agrees; a later run retries.
                        cx.link.unplug(r.start(), r.size())?;
                        bbs.set_plugged(id, false);
                        self.publish(bbs);
                        left -= 1;
                    }
                    Err((e, mem)) => {
                        bbs.put(mem);
                        cx.shown.lock().last_error = e.to_errno();
                        if e == EAGAIN {
                            // The configuration changed: start over with the new request.
                            return Err(e);
                        }
                    }
                }
            }
        }
        if left == 0 {
            return Ok(());
        }
        // Not enough could be removed now (unmovable pages, a signal, memory pressure): retry
        // later, as the C driver does with every removal failure.
        Err(EBUSY)
    }

    /// Whether added big block `id` is one to unplug in `pass` of [`Self::unplug`]: its
    /// range, and whether it is offline.
    fn unplug_candidate(
        &self,
        cx: &Context,
        bbs: &Bbs,
        id: usize,
        pass: u32,
    ) -> Option<(PhysRange, bool)> {
        let r = self.bb_range(id)?;
        if !bbs.is_added(id) {
            return None;
        }
        let offline = Self::is_offline(r);
        let wanted = match pass {
            0 => offline,
            1 => !offline && Self::is_movable(r),
            _ => !offline,
        };
        if !wanted {
            return None;
        }
        // CAST: Physical addresses and page counts of added memory fit `usize`.
        let (pfn, nr) = (
            (r.start() >> PAGE_SHIFT) as usize,
            (r.size() >> PAGE_SHIFT) as usize,
        );
        // SAFETY: The big block is added, and only this worker removes it.
        let allowed = offline || unsafe { cx.can_take_online(pfn, nr) };
        allowed.then_some((r, offline))
    }

    /// Offlines and removes big block `id` (range `r`, added as `mem`), whose memory is online.
    /// Gives `mem` back if that fails, and notes whether it failed for pages in use.
    fn remove_online(
        &self,
        cx: &Context,
        bbs: &mut Bbs,
        id: usize,
        r: PhysRange,
        mem: AddedMemory,
    ) -> Result<(), (Error, AddedMemory)> {
        let res = match self.fake_offline(cx, r) {
            Ok(()) => mem
                .offline_and_remove()
                .inspect_err(|_| self.fake_online(r)),
            Err(e) => Err((e, mem)),
        };
        {
            let _kept = self.kept.lock();
            self.removing.store(0, Relaxed);
        }
        bbs.set_busy(id, matches!(&res, Err((e, _)) if *e == EBUSY));
        res
    }
}

impl BlockMode for Bbm {
    /// Unplugs big blocks left plugged but not added, then plugs or unplugs towards the
    /// requested size.
    fn pass(&self, cx: &Context, sizes: &Sizes) -> Result {
        let mut bbs = self.bbs.lock();
        self.unplug_leftovers(cx, &mut bbs)?;
        let plugged = Self::plugged(&bbs, self.size);
        if sizes.requested > plugged {
            self.plug(cx, &mut bbs, sizes.requested - plugged, sizes.usable)
        } else if plugged > sizes.requested {
            self.unplug(cx, &mut bbs, plugged - sizes.requested)
        } else {
            Ok(())
        }
    }

    fn plugged_bytes(&self) -> u64 {
        Self::plugged(&self.bbs.lock(), self.size)
    }

    /// Big blocks: the core notifies one memory block at a time, so a range that straddles big
    /// blocks is not memory this driver added.
    fn may_be_unit(&self, r: PhysRange) -> bool {
        let bb = |a: u64| (a - self.first.min(a)) / self.size;
        bb(r.start()) == bb(r.last())
    }

    fn owns(&self, cx: &Context, r: PhysRange) -> bool {
        self.first <= r.start() && r.last() < cx.layout.usable_end
    }

    /// The online-page handler for Big Block Mode: memory of the big block being removed stays
    /// offline, kept in `kept` (given back by [`Self::fake_online`] or gone with the
    /// block), as the C driver does for a big block in state `FAKE_OFFLINE`. Everything else
    /// goes online.
    fn online_pages(&self, _cx: &Context, chunk: OnlineChunk) {
        let mut kept = self.kept.lock();
        let removing = self
            .removing
            .load(Relaxed)
            .checked_sub(1)
            .and_then(|start| PhysRange::new(start, self.size.get()));
        // CAST: Page frame numbers of hot-pluggable memory fit `u64`.
        let a = (chunk.pfn() as u64) << PAGE_SHIFT;
        if removing.is_some_and(|b| b.contains_addr(a)) && kept.len() < kept.capacity() {
            if let Err(PushError(p)) = kept.push_within_capacity(chunk.keep_offline()) {
                // Not reached: room was checked under the same lock. Dropping keeps the pages
                // offline for good, with a warning.
                drop(p);
            }
            return;
        }
        // SAFETY: In Big Block Mode all added memory is plugged, and stays so while online.
        unsafe { chunk.online() };
    }

    /// The memory notifier's part for Big Block Mode: tracks onlining, and lets offlining skip
    /// the pages [`Self::fake_offline`] and [`BlockMode::online_pages`] took.
    fn notify(&self, _cx: &Context, n: &Notification<'_>, r: PhysRange) -> NotifyResult {
        let mut kept = self.kept.lock();
        let event = n.event();
        match event {
            Event::GoingOnline => {
                // Onlining runs under the device hotplug lock: one at a time. Memory of the
                // big block being removed may go online (`offline_and_remove_memory()` onlines
                // again what it offlined when a later block fails); the online-page handler
                // keeps its pages offline (`online_pages`).
                self.onlining.store(r.start() + 1, Relaxed);
                return NotifyResult::Ok;
            }
            Event::Online | Event::CancelOnline => {
                self.onlining.store(0, Relaxed);
                return NotifyResult::Ok;
            }
            Event::GoingOffline | Event::CancelOffline | Event::Offline => {}
        }
        let mut from = 0;
        while let Some(i) = kept_in(&kept, from, r) {
            from = i + 1;
            match event {
                Event::GoingOffline => kept[i].going_offline(n),
                Event::CancelOffline => kept[i].cancel_offline(n),
                _ => {
                    let Ok(p) = kept.remove(i) else {
                        break;
                    };
                    p.offlined();
                    from = i;
                }
            }
        }
        NotifyResult::Ok
    }

    /// Teardown, Big Block Mode part: removes and unplugs offline big blocks; online ones stay.
    /// Returns the number of big blocks that stay.
    fn teardown(&self, cx: &Context) -> u64 {
        let bbs = &mut *self.bbs.lock();
        let mut still_added = 0;
        for id in 0..bbs.len() {
            let Some(r) = self.bb_range(id) else {
                continue;
            };
            let mem = bbs.take(id);
            let plugged = !bbs.is_unused(id);
            bbs.set_plugged(id, false);
            match mem {
                None if !plugged => {}
                None => {
                    cx.link.unplug(r.start(), r.size()).ok();
                }
                Some(mem) => {
                    if Self::is_offline(r) {
                        match mem.remove() {
                            Ok(()) => {
                                cx.link.unplug(r.start(), r.size()).ok();
                            }
                            Err((_, mem)) => {
                                still_added += 1;
                                mem.leak();
                            }
                        }
                    } else {
                        still_added += 1;
                        mem.leak();
                    }
                }
            }
        }
        still_added
    }
}
