// SPDX-License-Identifier: GPL-2.0

//! Big Block Mode: memory is plugged, added, removed and unplugged in big blocks.
//!
//! A big block is at least a memory block and a device block. Plugging asks the device for a
//! whole big block and adds it; unplugging removes it (taking its online memory from the page
//! allocator and offlining it first if it is online) and then asks the device to unplug it.
//!
//! Lock order: the worker's `state` lock, then `bb_kept`. `bb_kept` is also taken by the memory
//! notifier and the online-page handler, which run inside add and remove calls: the worker
//! never holds `bb_kept` across those.

use crate::{
    config::{
        Layout,
        Sizes, //
    },
    device::{
        Phase,
        State,
        VirtioMem, //
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
            NotifyResult, //
        },
        online::OnlineChunk,
        pages::{
            self,
            OfflinePages, //
        },
        AddOptions,
        AddedBlocks,
        AddedMemory,
        MemoryGroup,
        PhysRange,
        SystemRamRegion, //
    },
    page::PAGE_SHIFT,
    prelude::*,
    sync::{
        atomic::Relaxed,
        Arc, //
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
        let b = self.set.state(id) & !bit;
        // Only big blocks below `len()` change.
        let _ = self.set.set_state(id, if on { b | bit } else { b });
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

/// The big blocks of a device.
pub(crate) struct BigBlocks {
    /// A power of two, at least a memory block and a device block.
    pub(crate) size: NonZeroU64,
    /// The address of the first whole big block in the usable range.
    pub(crate) first: u64,
    /// The number of whole big blocks in the usable range (0 outside Big Block Mode).
    pub(crate) nr: usize,
}

impl BigBlocks {
    /// The big blocks of `layout`, of the size the `bbm_block_size` module parameter asks for
    /// if it is a power of two of at least a memory block and a device block (0: the smallest
    /// such size). In Big Block Mode (`bbm`), fails if no whole big block fits.
    pub(crate) fn of(
        vdev: &virtio::Device<Core<'_>>,
        layout: &Layout,
        bbm_block_size: u64,
        bbm: bool,
    ) -> Result<Self> {
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
        let size = NonZeroU64::new(size).ok_or(EINVAL)?;
        match layout.whole_units(size) {
            Some((first, nr)) if bbm => Ok(Self { size, first, nr }),
            // Sub-Block Mode uses only the size.
            _ if !bbm => Ok(Self {
                size,
                first: layout.usable_start,
                nr: 0,
            }),
            _ => {
                dev_err!(
                    vdev,
                    "refusing device: no whole big block of {:#x} fits\n",
                    size
                );
                Err(EINVAL)
            }
        }
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

impl VirtioMem {
    /// The address range of big block `id`.
    pub(crate) fn bb_range(&self, id: usize) -> Option<PhysRange> {
        let start = self
            .first_bb
            .checked_add(u64::try_from(id).ok()?.checked_mul(self.bb_size.get())?)?;
        PhysRange::new(start, self.bb_size.get())
    }

    /// One pass of the worker in Big Block Mode: unplugs big blocks left plugged but not added,
    /// then plugs or unplugs towards the requested size.
    pub(crate) fn bbm_pass(&self, st: &mut State, sizes: &Sizes) -> Result {
        self.bbm_unplug_leftovers(st)?;
        let plugged = st.plugged_bytes(self.bb_size.get());
        if sizes.requested > plugged {
            self.bbm_plug(st, sizes.requested - plugged)
        } else if plugged > sizes.requested {
            self.bbm_unplug(st, plugged - sizes.requested)
        } else {
            Ok(())
        }
    }

    /// Unplugs big blocks that are plugged but not added.
    pub(crate) fn bbm_unplug_leftovers(&self, st: &mut State) -> Result {
        for id in 0..st.bbs.len() {
            if st.bbs.is_plugged_only(id) {
                let r = self.bb_range(id).ok_or(EINVAL)?;
                self.link.unplug(r.start(), r.size())?;
                st.bbs.set_plugged(id, false);
                self.publish(st, Phase::Running);
            }
        }
        Ok(())
    }

    /// Plugs and adds up to `diff` bytes, in whole big blocks, lowest first.
    pub(crate) fn bbm_plug(&self, st: &mut State, diff: u64) -> Result {
        let limit = self
            .layout
            .addr
            .saturating_add(st.sizes.usable)
            .min(self.layout.usable_end);
        for _ in 0..diff / self.bb_size {
            if self.config_changed.load(Relaxed) {
                return Err(EAGAIN);
            }
            if !self.could_add_bytes(self.bb_size.get(), self.bb_size.get()) {
                return Err(ENOSPC);
            }
            let id = self.bbm_next_unused(st, limit)?;
            let r = self.bb_range(id).ok_or(EINVAL)?;
            self.link.plug(r.start(), r.size())?;
            st.bbs.set_plugged(id, true);
            self.bbm_add(st, id, r)?;
        }
        Ok(())
    }

    /// The lowest unused big block that ends below `limit`, with room made for it in the block
    /// state.
    fn bbm_next_unused(&self, st: &mut State, limit: u64) -> Result<usize> {
        let id = (0..self.nr_bbs)
            .take_while(|&id| self.bb_range(id).is_some_and(|r| r.last() < limit))
            .find(|&id| st.bbs.is_unused(id))
            .ok_or(ENOSPC)?;
        st.bbs.grow(id)?;
        Ok(id)
    }

    /// Adds big block `id` (range `r`), which the device just plugged; unplugs it again if
    /// adding fails.
    fn bbm_add(&self, st: &mut State, id: usize, r: PhysRange) -> Result {
        // Added memory starts offline; count it before adding, as auto-onlining reports
        // `Online` to the notifier before the add returns.
        self.offline_bytes.fetch_add(self.bb_size.get(), Relaxed);
        // SAFETY: The device acknowledged plugging `r`, so its memory is accessible; it is
        // only unplugged after the returned token removed it (or if adding fails, below).
        let added = unsafe {
            hotplug::add_driver_managed(
                &self.region,
                &self.group,
                r,
                AddOptions {
                    merge_resource: true,
                },
            )
        };
        match added {
            Ok(mem) => {
                st.bbs.put(mem);
                self.publish(st, Phase::Running);
                Ok(())
            }
            Err(e) => {
                crate::device::sub_saturating(&self.offline_bytes, self.bb_size.get());
                dev_err!(
                    self.vdev,
                    "adding memory {:#x} failed: {}\n",
                    r.start(),
                    e.to_errno()
                );
                if self.link.unplug(r.start(), r.size()).is_ok() {
                    st.bbs.set_plugged(id, false);
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
    fn bbm_unplug_order(&self, st: &State, online: bool) -> Result<KVec<usize>> {
        let mut ids = KVec::with_capacity(st.bbs.len(), GFP_KERNEL)?;
        for id in (0..st.bbs.len()).rev() {
            let cost = match (online && st.bbs.is_added(id), self.bb_range(id)) {
                // Offline big blocks are skipped in the passes over online memory.
                (true, Some(r)) if !Self::is_offline(r) => {
                    // CAST: Page frame numbers of hot-pluggable memory fit `usize`.
                    let (pfn, nr) = (
                        (r.start() >> PAGE_SHIFT) as usize,
                        (r.size() >> PAGE_SHIFT) as usize,
                    );
                    let busy = st.bbs.busy(id);
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
    /// pages stay in `bb_kept`, where the memory notifier makes offlining skip them. On failure
    /// gives back what it took and returns the error (`EBUSY` if something could not move).
    fn bbm_fake_offline(&self, r: PhysRange) -> Result {
        let step = hotplug::block_size();
        // CAST: Page counts of one memory block fit `usize`.
        let nr = (step >> PAGE_SHIFT) as usize;
        let mut kept = self.bb_kept.lock();
        // Room for every token first: a token that cannot be stored would be lost. One per
        // memory block, and one per chunk the online-page handler may keep if the core onlines
        // memory of the big block again (`bbm_online_pages`). Sizes are powers of two: no
        // division needed.
        let blocks = r.size() >> step.trailing_zeros();
        let chunks = (r.size() >> PAGE_SHIFT) >> pages::MAX_ORDER;
        kept.reserve(usize::try_from(blocks + chunks)?, GFP_KERNEL)?;
        // Memory of the big block is being onlined (the notifier is between `GoingOnline` and
        // its outcome): it may look offline, and offlining it later would not go through
        // `alloc_contig_range()`. Try again later.
        let onlining = self.bb_onlining.load(Relaxed).checked_sub(1);
        if onlining.is_some_and(|a| r.contains_addr(a)) {
            return Err(EBUSY);
        }
        // Set under `bb_kept`, which the online-page handler takes to check it: from here on,
        // memory of the big block that goes online stays offline (`bbm_online_pages`).
        self.bb_removing.store(r.start() + 1, Relaxed);
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
                match self.fake_offline(pfn, nr, movable) {
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
            self.bbm_fake_online(r);
        }
        res
    }

    /// Ends the removal of big block `r`, which failed: gives the pages that
    /// [`Self::bbm_fake_offline`] and [`Self::bbm_online_pages`] kept back to the page allocator.
    fn bbm_fake_online(&self, r: PhysRange) {
        let mut kept = self.bb_kept.lock();
        // The removal is over: memory of the big block that goes online from now on is
        // onlined whole (`bbm_online_pages`), and nothing is left kept behind the sweep below.
        self.bb_removing.store(0, Relaxed);
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
            // took its token (`bbm_notify`); one still onlining takes pages in at this stage.
            unsafe { p.online() };
        }
    }

    /// The online-page handler for Big Block Mode: memory of the big block being removed stays
    /// offline, kept in `bb_kept` (given back by [`Self::bbm_fake_online`] or gone with the
    /// block), as the C driver does for a big block in state `FAKE_OFFLINE`. Everything else
    /// goes online.
    pub(crate) fn bbm_online_pages(&self, chunk: OnlineChunk) {
        let mut kept = self.bb_kept.lock();
        let removing = self
            .bb_removing
            .load(Relaxed)
            .checked_sub(1)
            .and_then(|start| PhysRange::new(start, self.bb_size.get()));
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
    /// the pages [`Self::bbm_fake_offline`] and [`Self::bbm_online_pages`] took.
    pub(crate) fn bbm_notify(&self, event: Event, r: PhysRange) -> NotifyResult {
        let mut kept = self.bb_kept.lock();
        match event {
            Event::GoingOnline => {
                // Onlining runs under the device hotplug lock: one at a time. Memory of the
                // big block being removed may go online (`offline_and_remove_memory()` onlines
                // again what it offlined when a later block fails); the online-page handler
                // keeps its pages offline (`bbm_online_pages`).
                self.bb_onlining.store(r.start() + 1, Relaxed);
                return NotifyResult::Ok;
            }
            Event::Online | Event::CancelOnline => {
                self.bb_onlining.store(0, Relaxed);
                return NotifyResult::Ok;
            }
            Event::GoingOffline | Event::CancelOffline | Event::Offline => {}
        }
        let mut from = 0;
        while let Some(i) = kept_in(&kept, from, r) {
            from = i + 1;
            match event {
                // SAFETY: We handle `GoingOffline` for the block of these pages.
                Event::GoingOffline => unsafe { kept[i].going_offline() },
                // SAFETY: We handle `CancelOffline` for the same offlining.
                Event::CancelOffline => unsafe { kept[i].cancel_offline() },
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

    /// Removes and unplugs up to `diff` bytes in whole big blocks, highest first: offline ones,
    /// then (with `unplug_online`) movable ones, then any (see [`Self::bbm_unplug_order`]).
    pub(crate) fn bbm_unplug(&self, st: &mut State, diff: u64) -> Result {
        let mut left = diff / self.bb_size;
        let online = crate::module_parameters::unplug_online.value();
        for pass in 0..3 {
            if pass > 0 && !online {
                // As in the C driver: without `unplug_online` the request is done once the
                // offline memory is unplugged. Offlining more memory runs the worker again.
                return Ok(());
            }
            for id in self.bbm_unplug_order(st, pass > 0)? {
                if left == 0 {
                    return Ok(());
                }
                if self.config_changed.load(Relaxed) {
                    return Err(EAGAIN);
                }
                let Some((r, offline)) = self.bbm_unplug_candidate(st, id, pass) else {
                    continue;
                };
                let Some(mem) = st.bbs.take(id) else {
                    continue;
                };
                let res = if offline {
                    mem.remove()
                } else {
                    self.bbm_remove_online(st, id, r, mem)
                };
                match res {
                    Ok(()) => {
                        // Removed memory is neither online nor offline any more (offlining it
                        // first counted it as offline).
                        crate::device::sub_saturating(&self.offline_bytes, self.bb_size.get());
                        if !offline {
                            self.migrated_bytes.fetch_add(self.bb_size.get(), Relaxed);
                        }
                        // Still plugged until the device agrees; a later run retries.
                        self.link.unplug(r.start(), r.size())?;
                        st.bbs.set_plugged(id, false);
                        self.publish(st, Phase::Running);
                        left -= 1;
                    }
                    Err((e, mem)) => {
                        st.bbs.put(mem);
                        st.last_error = e.to_errno();
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

    /// Whether added big block `id` is one to unplug in `pass` of [`Self::bbm_unplug`]: its
    /// range, and whether it is offline.
    fn bbm_unplug_candidate(&self, st: &State, id: usize, pass: u32) -> Option<(PhysRange, bool)> {
        let r = self.bb_range(id)?;
        if !st.bbs.is_added(id) {
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
        let allowed = offline || unsafe { self.can_take_online(pfn, nr) };
        allowed.then_some((r, offline))
    }

    /// Offlines and removes big block `id` (range `r`, added as `mem`), whose memory is online.
    /// Gives `mem` back if that fails, and notes whether it failed for pages in use.
    fn bbm_remove_online(
        &self,
        st: &mut State,
        id: usize,
        r: PhysRange,
        mem: AddedMemory,
    ) -> Result<(), (Error, AddedMemory)> {
        let res = match self.bbm_fake_offline(r) {
            Ok(()) => mem
                .offline_and_remove()
                .inspect_err(|_| self.bbm_fake_online(r)),
            Err(e) => Err((e, mem)),
        };
        {
            let _kept = self.bb_kept.lock();
            self.bb_removing.store(0, Relaxed);
        }
        st.bbs
            .set_busy(id, matches!(&res, Err((e, _)) if *e == EBUSY));
        res
    }

    /// Teardown, Big Block Mode part: removes and unplugs offline big blocks; online ones stay.
    /// Returns the number of big blocks that stay.
    pub(crate) fn bbm_teardown(&self, st: &mut State) -> u64 {
        let mut still_added = 0;
        for id in 0..st.bbs.len() {
            let Some(r) = self.bb_range(id) else {
                continue;
            };
            let mem = st.bbs.take(id);
            let plugged = !st.bbs.is_unused(id);
            st.bbs.set_plugged(id, false);
            match mem {
                None if !plugged => {}
                None => {
                    self.link.unplug(r.start(), r.size()).ok();
                }
                Some(mem) => {
                    if Self::is_offline(r) {
                        match mem.remove() {
                            Ok(()) => {
                                self.link.unplug(r.start(), r.size()).ok();
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
