// SPDX-License-Identifier: GPL-2.0

//! Sub-Block Mode: memory blocks are added whole, but plugged and unplugged in subblocks.
//!
//! Each memory block of the region has a state and a bitmap of plugged subblocks. Unplugged
//! subblocks of an online block are driver-owned [`OfflinePages`]: kept back while the block
//! was onlined, or taken from the page allocator (migrating their users) before the subblock
//! was unplugged.
//!
//! Lock order: the worker's `state` lock, then `mbs`. `mbs` is also taken by the memory
//! notifier and the online-page handler, which run inside add and remove calls: the worker
//! never holds `mbs` across those.

use crate::{
    config::{
        Layout,
        Sizes, //
    },
    device::VirtioMem,
    order::{
        order_by_key,
        Cost, //
    },
};
use core::{
    num::NonZeroU64,
    ops::{
        Deref,
        DerefMut, //
    },
};
use kernel::{
    device::Core,
    mm::hotplug::{
        self,
        online::OnlineChunk,
        pages::{
            self,
            ContigRange,
            OfflinePages, //
        },
        AddOptions,
        AddedMemory,
        PhysRange, //
    },
    page::{
        PAGE_SHIFT,
        PAGE_SIZE, //
    },
    prelude::*,
    sync::{
        atomic::Relaxed,
        MutexGuard, //
    },
    virtio,
};

/// Tries to take online memory from the page allocator: ZONE_MOVABLE is worth retrying.
const FAKE_OFFLINE_TRIES_MOVABLE: u32 = 5;

/// Added memory that may stay offline before no more is added, at least.
const OFFLINE_THRESHOLD_MIN: u64 = 1 << 30;

/// The partially plugged variant of an online state.
fn partial(s: MbState) -> MbState {
    match s {
        MbState::Kernel => MbState::KernelPartial,
        MbState::Movable => MbState::MovablePartial,
        s => s,
    }
}

/// The state of a memory block, as in the C driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MbState {
    /// Not added, nothing plugged.
    Unused,
    /// Not added, some subblocks plugged (adding or removing failed): to be unplugged.
    Plugged,
    Offline,
    OfflinePartial,
    Kernel,
    KernelPartial,
    Movable,
    MovablePartial,
}

impl MbState {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Unused => "unused",
            Self::Plugged => "plugged",
            Self::Offline => "offline",
            Self::OfflinePartial => "offline_partial",
            Self::Kernel => "kernel",
            Self::KernelPartial => "kernel_partial",
            Self::Movable => "movable",
            Self::MovablePartial => "movable_partial",
        }
    }

    pub(crate) const ALL: [MbState; 8] = [
        Self::Unused,
        Self::Plugged,
        Self::Offline,
        Self::OfflinePartial,
        Self::Kernel,
        Self::KernelPartial,
        Self::Movable,
        Self::MovablePartial,
    ];

    fn is_online(self) -> bool {
        matches!(
            self,
            Self::Kernel | Self::KernelPartial | Self::Movable | Self::MovablePartial
        )
    }

    /// The state for an online or offline block in `zone_movable` with all or some subblocks
    /// plugged.
    fn of(online: bool, movable: bool, full: bool) -> Self {
        match (online, movable, full) {
            (false, _, true) => Self::Offline,
            (false, _, false) => Self::OfflinePartial,
            (true, false, true) => Self::Kernel,
            (true, false, false) => Self::KernelPartial,
            (true, true, true) => Self::Movable,
            (true, true, false) => Self::MovablePartial,
        }
    }
}

/// One memory block of the region.
pub(crate) struct Mb {
    pub(crate) state: MbState,
    /// Between `GoingOnline`/`GoingOffline` and the matching completion or cancellation: the
    /// worker leaves the block alone, as pages are on their way in or out.
    pub(crate) in_transition: bool,
    /// One bit per subblock.
    plugged: KVec<u64>,
    mem: Option<AddedMemory>,
    /// Unplugged subblocks of an online block. Room for a token is reserved before the pages
    /// it will hold are taken (see [`Mb::reserve_kept`]), so keeping never allocates.
    kept: KVec<OfflinePages>,
    /// Subblocks that could not be taken (-EBUSY) the last time the block was unplugged from.
    busy: usize,
}

impl Mb {
    pub(crate) fn new(sbs: usize) -> Result<Self> {
        let mut plugged = KVec::with_capacity(sbs.div_ceil(64), GFP_KERNEL)?;
        for _ in 0..sbs.div_ceil(64) {
            plugged.push(0, GFP_KERNEL)?;
        }
        Ok(Self {
            state: MbState::Unused,
            in_transition: false,
            plugged,
            mem: None,
            kept: KVec::new(),
            busy: 0,
        })
    }

    /// Makes room for `n` more kept tokens, before the pages they will hold are taken: once
    /// they are, keeping them must not fail. Blocks with nothing unplugged hold no room, so
    /// the state of a fully plugged block is its bitmap and this structure.
    fn reserve_kept(&mut self, n: usize) -> Result {
        Ok(self.kept.reserve(n, GFP_KERNEL)?)
    }

    /// Frees the room of an empty `kept`.
    fn shrink_kept(&mut self) {
        if self.kept.is_empty() {
            self.kept = KVec::new();
        }
    }

    fn is_plugged(&self, sb: usize) -> bool {
        self.plugged
            .get(sb / 64)
            .is_some_and(|w| w & (1 << (sb % 64)) != 0)
    }

    fn set_plugged(&mut self, sb: usize, on: bool) {
        if let Some(w) = self.plugged.get_mut(sb / 64) {
            if on {
                *w |= 1 << (sb % 64);
            } else {
                *w &= !(1 << (sb % 64));
            }
        }
    }

    /// Keeps `p`, without allocating while the room reserved beforehand lasts (it does: see
    /// [`Self::reserve_kept`]).
    fn keep(&mut self, p: OfflinePages) {
        stash(&mut self.kept, p);
    }

    /// Bytes this block's state holds on the heap.
    fn heap_bytes(&self) -> usize {
        self.plugged.capacity() * size_of::<u64>()
            + self.kept.capacity() * size_of::<OfflinePages>()
    }

    pub(crate) fn nr_plugged(&self) -> usize {
        self.plugged.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Allocates what [`Self::take_kept`] needs. Called before the device plugs anything:
    /// once it has, nothing may fail, or the pages of plugged subblocks would stay offline.
    fn take_room(&self) -> Result<TakeRoom> {
        // At most one token straddles each edge of the range, so taking splits at most two:
        // `rest` gets at most `kept.len() + 2` tokens. It becomes `kept`, with no spare room:
        // whoever keeps more reserves first.
        Ok(TakeRoom {
            rest: KVec::with_capacity(self.kept.len() + 2, GFP_KERNEL)?,
            taken: KVec::with_capacity(self.kept.len() + 2, GFP_KERNEL)?,
        })
    }

    /// Takes the kept pages in `[start, end)`, splitting tokens that straddle its edges, into
    /// the vectors of `room`; allocates nothing.
    fn take_kept(&mut self, room: TakeRoom, start: usize, end: usize) -> KVec<OfflinePages> {
        let TakeRoom {
            mut rest,
            mut taken,
        } = room;
        for mut t in self.kept.drain_all() {
            // Split off what lies before `start` and after `end`.
            if t.pfn() < start && t.pfn() + t.nr_pages() > start {
                let at = start - t.pfn();
                match t.split(at) {
                    Ok((a, b)) => {
                        stash(&mut rest, a);
                        t = b;
                    }
                    Err(same) => t = same,
                }
            }
            if t.pfn() < end && t.pfn() + t.nr_pages() > end {
                let at = end - t.pfn();
                match t.split(at) {
                    Ok((a, b)) => {
                        stash(&mut rest, b);
                        t = a;
                    }
                    Err(same) => t = same,
                }
            }
            if t.pfn() >= start && t.pfn() + t.nr_pages() <= end {
                stash(&mut taken, t);
            } else {
                stash(&mut rest, t);
            }
        }
        self.kept = rest;
        taken
    }
}

/// The vectors [`Mb::take_kept`] fills, allocated beforehand by [`Mb::take_room`].
struct TakeRoom {
    rest: KVec<OfflinePages>,
    taken: KVec<OfflinePages>,
}

/// Pushes `p` onto `v` within its capacity, which callers reserve beforehand. Should the
/// capacity run out after all, falls back to allocating; if that fails too, the pages stay
/// offline for good (the token warns when dropped), which is safe: they are never handed to
/// the page allocator.
fn stash(v: &mut KVec<OfflinePages>, p: OfflinePages) {
    if let Err(e) = v.push_within_capacity(p) {
        v.push(e.0, GFP_KERNEL).ok();
    }
}

/// The geometry of Sub-Block Mode.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geometry {
    pub(crate) sb_size: NonZeroU64,
    pub(crate) sbs_per_mb: usize,
    pub(crate) mb_size: NonZeroU64,
    /// Address of memory block 0 of the region.
    pub(crate) first_mb: u64,
    /// Memory blocks in the region. `mbs` holds only the first ones, up to the highest that
    /// was ever used: the others are unused.
    pub(crate) nr_mbs: usize,
}

impl Geometry {
    /// The geometry of Sub-Block Mode for `layout` with memory blocks of `mb_size`, as the C
    /// driver chooses: if a subblock (at least a device block and a pageblock) is smaller than
    /// a memory block and Big Block Mode is not forced. `None` for Big Block Mode; an error if
    /// no whole memory block fits the usable range.
    pub(crate) fn of(
        vdev: &virtio::Device<Core<'_>>,
        layout: &Layout,
        mb_size: NonZeroU64,
        force_bbm: bool,
    ) -> Result<Option<Self>> {
        // CAST: Page counts and sizes fit `u64`.
        let pageblock = (pages::pageblock_pages() * PAGE_SIZE) as u64;
        let sb_size = layout.block_size.get().max(pageblock);
        if sb_size >= mb_size.get() || force_bbm {
            return Ok(None);
        }
        let sb_size = NonZeroU64::new(sb_size).ok_or(EINVAL)?;
        let Some((first_mb, nr_mbs)) = layout.whole_units(mb_size) else {
            dev_err!(vdev, "refusing device: no whole memory block fits\n");
            return Err(EINVAL);
        };
        Ok(Some(Self {
            sb_size,
            sbs_per_mb: usize::try_from(mb_size.get() / sb_size)?,
            mb_size,
            first_mb,
            nr_mbs,
        }))
    }

    fn sb_pages(&self) -> usize {
        // CAST: A subblock is at most a memory block, whose page count fits `usize`.
        (self.sb_size.get() >> PAGE_SHIFT) as usize
    }

    pub(crate) fn mb_addr(&self, id: usize) -> u64 {
        self.first_mb + id as u64 * self.mb_size.get()
    }

    fn sb_pfn(&self, id: usize, sb: usize) -> usize {
        // CAST: Physical addresses fit `usize` on 64-bit.
        ((self.mb_addr(id) >> PAGE_SHIFT) as usize) + sb * self.sb_pages()
    }

    /// The memory block of physical address `addr`, if it is in the region's blocks.
    pub(crate) fn mb_of(&self, addr: u64, nr_mbs: usize) -> Option<usize> {
        let id = usize::try_from(addr.checked_sub(self.first_mb)? / self.mb_size).ok()?;
        (id < nr_mbs).then_some(id)
    }
}

impl VirtioMem {
    fn geo(&self) -> Result<Geometry> {
        self.sbm.ok_or(EINVAL)
    }

    /// Bytes plugged in Sub-Block Mode.
    pub(crate) fn sbm_plugged_bytes(&self) -> u64 {
        let Ok(g) = self.geo() else {
            return 0;
        };
        let n: usize = self.mbs().iter().map(|m| m.nr_plugged()).sum();
        n as u64 * g.sb_size.get()
    }

    fn could_add(&self, g: &Geometry) -> bool {
        self.could_add_bytes(g.mb_size.get(), g.mb_size.get())
    }

    /// Whether `size` more offline memory stays within the offline threshold of
    /// max(2 * `unit`, 1 GiB), as in the C driver.
    pub(crate) fn could_add_bytes(&self, size: u64, unit: u64) -> bool {
        let threshold = unit.saturating_mul(2).max(OFFLINE_THRESHOLD_MIN);
        self.offline_bytes.load(Relaxed).saturating_add(size) <= threshold
    }

    /// Plugs subblocks `[sb, sb + count)` of block `id`.
    fn plug_sbs(&self, g: &Geometry, mb: &mut Mb, id: usize, sb: usize, count: usize) -> Result {
        let addr = g.mb_addr(id) + sb as u64 * g.sb_size.get();
        self.link.plug(addr, count as u64 * g.sb_size.get())?;
        for s in sb..sb + count {
            mb.set_plugged(s, true);
        }
        Ok(())
    }

    /// Unplugs subblocks `[sb, sb + count)` of block `id`.
    fn unplug_sbs(&self, g: &Geometry, mb: &mut Mb, id: usize, sb: usize, count: usize) -> Result {
        let addr = g.mb_addr(id) + sb as u64 * g.sb_size.get();
        self.link.unplug(addr, count as u64 * g.sb_size.get())?;
        for s in sb..sb + count {
            mb.set_plugged(s, false);
        }
        Ok(())
    }

    /// One pass of the worker in Sub-Block Mode: unplugs blocks left plugged but not added,
    /// plugs or unplugs towards the requested size, and removes the blocks it emptied.
    pub(crate) fn sbm_pass(&self, sizes: &Sizes) -> Result {
        self.sbm_unplug_leftovers()?;
        // Blocks left from an earlier run; their errors must not block the rest.
        let _ = self.sbm_cleanup();
        let plugged = self.sbm_plugged_bytes();
        if sizes.requested > plugged {
            self.sbm_plug(sizes.requested - plugged, sizes.usable)?;
        } else if plugged > sizes.requested {
            self.sbm_unplug(plugged - sizes.requested)?;
        }
        // Blocks emptied by this run that could not be removed yet: retry later.
        self.sbm_cleanup()
    }

    /// Plugs up to `diff` bytes: partially plugged blocks first, then new blocks within the
    /// first `usable` bytes of the region.
    pub(crate) fn sbm_plug(&self, diff: u64, usable: u64) -> Result {
        let g = self.geo()?;
        let mut nb = usize::try_from(diff / g.sb_size)?;
        if nb == 0 {
            return Ok(());
        }
        for class in [
            MbState::KernelPartial,
            MbState::MovablePartial,
            MbState::OfflinePartial,
        ] {
            let mut mbs = self.mbs();
            for id in 0..mbs.len() {
                if mbs[id].state != class || mbs[id].in_transition {
                    continue;
                }
                self.plug_any_sb(&g, &mut mbs[id], id, &mut nb)?;
                if nb == 0 {
                    return Ok(());
                }
            }
        }
        for id in 0..g.nr_mbs {
            if self
                .mbs()
                .get(id)
                .is_some_and(|m| m.state != MbState::Unused)
            {
                continue;
            }
            if self.config_changed.load(Relaxed) {
                return Err(EAGAIN);
            }
            if !self.could_add(&g) {
                return Err(ENOSPC);
            }
            let limit = self.layout.addr.saturating_add(usable);
            if g.mb_addr(id) + g.mb_size.get() > limit.min(self.layout.usable_end) {
                break;
            }
            self.plug_and_add_mb(&g, id, &mut nb)?;
            if nb == 0 {
                return Ok(());
            }
        }
        Err(ENOSPC)
    }

    /// Plugs unplugged subblocks of a partially plugged block; onlines their pages if the
    /// block is online.
    fn plug_any_sb(&self, g: &Geometry, mb: &mut Mb, id: usize, nb: &mut usize) -> Result {
        while *nb > 0 {
            let Some(sb) = (0..g.sbs_per_mb).find(|&s| !mb.is_plugged(s)) else {
                break;
            };
            let mut count = 1;
            while count < *nb && sb + count < g.sbs_per_mb && !mb.is_plugged(sb + count) {
                count += 1;
            }
            if self.config_changed.load(Relaxed) {
                return Err(EAGAIN);
            }
            // The pages of an online block go online once plugged: find room for them first.
            let room = if mb.state.is_online() {
                Some(mb.take_room()?)
            } else {
                None
            };
            self.plug_sbs(g, mb, id, sb, count)?;
            *nb -= count;
            if let Some(room) = room {
                let start = g.sb_pfn(id, sb);
                let end = start + count * g.sb_pages();
                for t in mb.take_kept(room, start, end) {
                    // SAFETY: The device just plugged these subblocks; the block is online and
                    // stays so while we hold `mbs` (offlining waits for it in our notifier).
                    unsafe { t.online() };
                }
            }
        }
        if mb.nr_plugged() == g.sbs_per_mb {
            mb.state = match mb.state {
                MbState::KernelPartial => MbState::Kernel,
                MbState::MovablePartial => MbState::Movable,
                MbState::OfflinePartial => MbState::Offline,
                s => s,
            };
        }
        Ok(())
    }

    /// Plugs the first subblocks of an unused block and adds it.
    fn plug_and_add_mb(&self, g: &Geometry, id: usize, nb: &mut usize) -> Result {
        let count = (*nb).min(g.sbs_per_mb);
        {
            let mut mbs = self.mbs();
            if id == mbs.len() {
                // State grows with the blocks in use, not with the region, as in the C driver.
                mbs.push(Mb::new(g.sbs_per_mb)?, GFP_KERNEL)?;
            }
            let mb = mbs.get_mut(id).ok_or(EINVAL)?;
            self.plug_sbs(g, mb, id, 0, count)?;
            // Set before adding: the notifier allows onlining offline blocks only.
            mb.state = MbState::of(false, false, count == g.sbs_per_mb);
        }
        let range = PhysRange::new(g.mb_addr(id), g.mb_size.get()).ok_or(EINVAL)?;
        self.offline_bytes.fetch_add(g.mb_size.get(), Relaxed);
        // SAFETY: Only plugged subblocks are onlined: our online-page handler owns this range
        // and keeps unplugged subblocks offline; plugged ones stay accessible until we unplug
        // them, which we do only after taking their pages or removing the block.
        let added = unsafe {
            hotplug::add_driver_managed(
                &self.region,
                &self.group,
                range,
                AddOptions {
                    merge_resource: true,
                },
            )
        };
        let mut mbs = self.mbs();
        let mb = &mut mbs[id];
        match added {
            Ok(mem) => {
                mb.mem = Some(mem);
                *nb -= count;
                Ok(())
            }
            Err(e) => {
                crate::device::sub_saturating(&self.offline_bytes, g.mb_size.get());
                dev_err!(
                    self.vdev,
                    "adding memory block {:#x} failed: {}\n",
                    range.start(),
                    e.to_errno()
                );
                mb.state = if self.unplug_sbs(g, mb, id, 0, count).is_ok() {
                    MbState::Unused
                } else {
                    MbState::Plugged
                };
                Err(e)
            }
        }
    }

    /// Unplugs up to `diff` bytes, in the C driver's order of block classes, highest block
    /// first; online memory only with `unplug_online`.
    pub(crate) fn sbm_unplug(&self, diff: u64) -> Result {
        let g = self.geo()?;
        let mut nb = usize::try_from(diff / g.sb_size)?;
        if nb == 0 {
            return Ok(());
        }
        let online_ok = crate::module_parameters::unplug_online.value();
        let classes = [
            MbState::OfflinePartial,
            MbState::Offline,
            MbState::MovablePartial,
            MbState::KernelPartial,
            MbState::Movable,
            MbState::Kernel,
        ];
        for (i, class) in classes.into_iter().enumerate() {
            for id in self.unplug_candidates(&g, class, i >= 2)? {
                // Rechecked by the callee in the critical section that acts on the block.
                if self.mbs()[id].state != class {
                    continue;
                }
                if i < 2 {
                    self.unplug_offline_mb(&g, id, class, &mut nb)?;
                } else {
                    self.unplug_online_mb(&g, id, class, &mut nb)?;
                }
                if nb == 0 {
                    return Ok(());
                }
            }
            if i == 1 && !online_ok {
                return Ok(());
            }
        }
        Err(EBUSY)
    }

    /// The blocks of state `class`, in the order to try them: the highest first, as in the C
    /// driver, except that online blocks (`online`) go cheapest first by the [`Cost`] of their
    /// plugged subblocks (see [`crate::order`]).
    fn unplug_candidates(&self, g: &Geometry, class: MbState, online: bool) -> Result<KVec<usize>> {
        let mut ids = KVec::new();
        let mbs = self.mbs();
        for id in (0..mbs.len()).rev() {
            let mb = &mbs[id];
            if mb.state != class {
                continue;
            }
            let mut cost = Cost::default();
            if online {
                cost.busy = mb.busy;
                for sb in (0..g.sbs_per_mb).filter(|&sb| mb.is_plugged(sb)) {
                    // SAFETY: The block is ours, and only the worker (which calls this) removes
                    // it.
                    let c = unsafe { Cost::of_range(g.sb_pfn(id, sb), g.sb_pages(), 0) };
                    cost = cost.add(c);
                }
            }
            ids.push((cost, id), GFP_KERNEL)?;
        }
        drop(mbs);
        order_by_key(ids)
    }

    /// The plugged subblocks of online block `id`, cheapest first; equal costs highest first,
    /// as in the C driver.
    fn sb_unplug_order(g: &Geometry, mb: &Mb, id: usize) -> Result<KVec<usize>> {
        let mut sbs = KVec::with_capacity(g.sbs_per_mb, GFP_KERNEL)?;
        for sb in (0..g.sbs_per_mb).filter(|&sb| mb.is_plugged(sb)) {
            // SAFETY: The caller holds `mbs` with the block online: it cannot be removed.
            let cost = unsafe { Cost::of_range(g.sb_pfn(id, sb), g.sb_pages(), 0) };
            sbs.push((cost, sb), GFP_KERNEL)?;
        }
        order_by_key(sbs)
    }

    /// Unplugs subblocks of an offline block of state `class`, highest first; removes it once
    /// empty. Does nothing if the block changed state or is in transition meanwhile.
    fn unplug_offline_mb(&self, g: &Geometry, id: usize, class: MbState, nb: &mut usize) -> Result {
        let mem = {
            let mut mbs = self.mbs();
            let mb = &mut mbs[id];
            if mb.state != class || mb.in_transition {
                return Ok(());
            }
            let mut sb = g.sbs_per_mb;
            while *nb > 0 && sb > 0 {
                sb -= 1;
                if !mb.is_plugged(sb) {
                    continue;
                }
                let mut first = sb;
                while first > 0 && mb.is_plugged(first - 1) && sb + 1 - first < *nb {
                    first -= 1;
                }
                if self.config_changed.load(Relaxed) {
                    return Err(EAGAIN);
                }
                let count = sb + 1 - first;
                let r = self.unplug_sbs(g, mb, id, first, count);
                if mb.nr_plugged() != g.sbs_per_mb {
                    mb.state = MbState::OfflinePartial;
                }
                r?;
                *nb -= count;
                sb = first;
            }
            if mb.nr_plugged() != 0 {
                return Ok(());
            }
            mb.state = MbState::Unused;
            mb.mem.take()
        };
        if let Some(mem) = mem {
            if let Err((e, mem)) = mem.remove() {
                // An offline block whose subblocks are all unplugged must be removable.
                dev_err!(
                    self.vdev,
                    "removing offline block failed: {}\n",
                    e.to_errno()
                );
                let mut mbs = self.mbs();
                mbs[id].mem = Some(mem);
                mbs[id].state = MbState::OfflinePartial;
                return Err(EBUSY);
            }
            crate::device::sub_saturating(&self.offline_bytes, g.mb_size.get());
        }
        Ok(())
    }

    /// Takes `[pfn, pfn + nr)` of an online block from the page allocator, with up to
    /// `FAKE_OFFLINE_TRIES_MOVABLE` tries in `ZONE_MOVABLE` and one elsewhere, as the C driver.
    ///
    /// Called with `mbs` (Sub-Block Mode) or `bb_kept` (Big Block Mode) held, which keeps the
    /// block online: offlining waits for that lock in our notifier.
    pub(crate) fn fake_offline(
        &self,
        pfn: usize,
        nr: usize,
        movable: bool,
    ) -> Result<OfflinePages> {
        let tries = if movable {
            FAKE_OFFLINE_TRIES_MOVABLE
        } else {
            1
        };
        let mut rc = EBUSY;
        for _ in 0..tries {
            if self.config_changed.load(Relaxed) {
                return Err(EAGAIN);
            }
            // SAFETY: The range lies in one online memory block, which is onlined into one zone
            // as a whole and stays online while the caller holds `mbs`: offlining waits for it
            // in our notifier.
            match unsafe { ContigRange::alloc(pfn, nr, GFP_KERNEL) } {
                Ok(range) => return Ok(range.into_offline()),
                Err(e) if e == ENOMEM => return Err(e),
                Err(e) => rc = e,
            }
        }
        Err(if rc == EINTR { EBUSY } else { rc })
    }

    /// Unplugs subblocks of an online block of state `class`: the whole block at once if
    /// possible, else subblock by subblock, cheapest first. Removes the block once empty. Does
    /// nothing if the block changed state or is in transition meanwhile.
    fn unplug_online_mb(&self, g: &Geometry, id: usize, class: MbState, nb: &mut usize) -> Result {
        {
            let mut mbs = self.mbs();
            let mb = &mut mbs[id];
            if mb.state != class || mb.in_transition {
                return Ok(());
            }
            if !self.unplug_online_whole(g, mb, id, nb)? {
                self.unplug_online_sbs(g, mb, id, nb)?;
            }
        }
        self.try_remove_unplugged(g, id);
        Ok(())
    }

    /// Unplugs online block `id` as a whole if all of it is plugged, all of it is wanted, and
    /// memory allows; returns whether it did. Notes in `mb.busy` whether pages in use kept it.
    fn unplug_online_whole(
        &self,
        g: &Geometry,
        mb: &mut Mb,
        id: usize,
        nb: &mut usize,
    ) -> Result<bool> {
        let movable = matches!(mb.state, MbState::Movable | MbState::MovablePartial);
        let whole = *nb >= g.sbs_per_mb
            && mb.nr_plugged() == g.sbs_per_mb
            // SAFETY: `mbs` is held with the block online, so it is not removed.
            && unsafe { self.can_take_online(g.sb_pfn(id, 0), g.sbs_per_mb * g.sb_pages()) };
        if !whole {
            mb.busy = 0;
            return Ok(false);
        }
        mb.reserve_kept(1)?;
        let pages = match self.fake_offline(g.sb_pfn(id, 0), g.sbs_per_mb * g.sb_pages(), movable) {
            Ok(pages) => pages,
            Err(e) if e == EBUSY => {
                mb.busy = 1;
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        if let Err(e) = self.unplug_sbs(g, mb, id, 0, g.sbs_per_mb) {
            return Err(Self::unplug_failed(mb, pages, e));
        }
        mb.keep(pages);
        mb.state = partial(mb.state);
        mb.busy = 0;
        self.migrated_bytes.fetch_add(g.mb_size.get(), Relaxed);
        *nb -= g.sbs_per_mb;
        Ok(true)
    }

    /// Unplugs plugged subblocks of online block `id`, cheapest first, until `nb` are done.
    /// Counts in `mb.busy` the subblocks that pages in use kept.
    fn unplug_online_sbs(&self, g: &Geometry, mb: &mut Mb, id: usize, nb: &mut usize) -> Result {
        let movable = matches!(mb.state, MbState::Movable | MbState::MovablePartial);
        for sb in Self::sb_unplug_order(g, mb, id)? {
            if *nb == 0 {
                break;
            }
            // SAFETY: `mbs` is held with the block online, so it is not removed.
            if !unsafe { self.can_take_online(g.sb_pfn(id, sb), g.sb_pages()) } {
                // Memory is short and this subblock is in use: leave it for a later run.
                // Others may be free.
                continue;
            }
            mb.reserve_kept(1)?;
            let pages = match self.fake_offline(g.sb_pfn(id, sb), g.sb_pages(), movable) {
                Ok(p) => p,
                Err(e) if e == EBUSY => {
                    mb.busy += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let Err(e) = self.unplug_sbs(g, mb, id, sb, 1) {
                return Err(Self::unplug_failed(mb, pages, e));
            }
            mb.keep(pages);
            mb.state = partial(mb.state);
            self.migrated_bytes.fetch_add(g.sb_size.get(), Relaxed);
            *nb -= 1;
        }
        Ok(())
    }

    /// Handles a failed unplug request for `pages` of an online block. If the device answered
    /// (NACK, BUSY, ERROR), it did nothing and the pages go back online. If the request got no
    /// answer (the device broke or went away), it may have been carried out: the pages stay
    /// offline for good, and the device is treated as broken.
    fn unplug_failed(mb: &mut Mb, pages: OfflinePages, e: Error) -> Error {
        if e == EIO || e == ENODEV || e == EINTR {
            mb.keep(pages);
            return EIO;
        }
        // SAFETY: The device refused, so the memory is still plugged; the block is online and
        // stays so while the caller holds `mbs`.
        unsafe { pages.online() };
        e
    }

    /// Removes block `id` if it has nothing plugged: offlines it first if it is online.
    /// Returns `false` if that failed, for a later run to retry.
    pub(crate) fn try_remove_unplugged(&self, g: &Geometry, id: usize) -> bool {
        let (mem, online) = {
            let mut mbs = self.mbs();
            let mb = &mut mbs[id];
            let online = mb.state.is_online();
            // An offline block is left partially plugged with nothing plugged only when its
            // removal failed after its last subblock was unplugged (`unplug_offline_mb`).
            if !(online || mb.state == MbState::OfflinePartial) || mb.nr_plugged() != 0 {
                return true;
            }
            if mb.in_transition {
                return false;
            }
            match mb.mem.take() {
                Some(m) => (m, online),
                None => return true,
            }
        };
        // Offlining drops the pages' references in our notifier, so it skips them.
        let res = if online {
            mem.offline_and_remove()
        } else {
            mem.remove()
        };
        match res {
            Ok(()) => {
                let mut mbs = self.mbs();
                mbs[id].state = MbState::Unused;
                crate::device::sub_saturating(&self.offline_bytes, g.mb_size.get());
                true
            }
            Err((_, mem)) => {
                self.mbs()[id].mem = Some(mem);
                false
            }
        }
    }

    /// Removes blocks whose subblocks are all unplugged (an earlier attempt failed).
    pub(crate) fn sbm_cleanup(&self) -> Result {
        let g = self.geo()?;
        let nr = self.mbs().len();
        let mut ok = true;
        for id in 0..nr {
            ok &= self.try_remove_unplugged(&g, id);
        }
        if ok {
            Ok(())
        } else {
            Err(EBUSY)
        }
    }

    /// The online-page handler: in Sub-Block Mode plugged subblocks go online and unplugged
    /// ones stay offline; Big Block Mode is [`VirtioMem::bbm_online_pages`].
    pub(crate) fn online_pages(&self, chunk: OnlineChunk) {
        let Ok(g) = self.geo() else {
            return self.bbm_online_pages(chunk);
        };
        let sb_order = g.sb_pages().trailing_zeros();
        let mut mbs = self.mbs();
        self.online_split(&g, &mut mbs, chunk, sb_order);
    }

    /// Splits `c` down to subblocks (the recursion is at most `MAX_PAGE_ORDER` deep).
    fn online_split(&self, g: &Geometry, mbs: &mut KVec<Mb>, c: OnlineChunk, sb_order: u32) {
        if c.order() > sb_order {
            match c.split() {
                Ok((a, b)) => {
                    self.online_split(g, mbs, a, sb_order);
                    self.online_split(g, mbs, b, sb_order);
                }
                Err(c) => self.online_piece(g, mbs, c),
            }
        } else {
            self.online_piece(g, mbs, c);
        }
    }

    fn online_piece(&self, g: &Geometry, mbs: &mut KVec<Mb>, c: OnlineChunk) {
        let addr = (c.pfn() as u64) << PAGE_SHIFT;
        let nr = mbs.len();
        let (id, sb) = match g.mb_of(addr, nr) {
            Some(id) => {
                let off = addr - g.mb_addr(id);
                // CAST: Below `sbs_per_mb`.
                (id, (off / g.sb_size) as usize)
            }
            None => {
                // Not ours after all: keep it offline rather than touch unknown memory (the
                // token warns when it is dropped).
                drop(c.keep_offline());
                return;
            }
        };
        let mb = &mut mbs[id];
        if mb.is_plugged(sb) {
            // SAFETY: The subblock is plugged, so its memory is accessible.
            unsafe { c.online() };
        } else {
            mb.keep(c.keep_offline());
        }
    }

    /// Unplugs blocks that are plugged but not added.
    pub(crate) fn sbm_unplug_leftovers(&self) -> Result {
        let g = self.geo()?;
        let mut mbs = self.mbs();
        for id in 0..mbs.len() {
            if mbs[id].state == MbState::Plugged {
                self.unplug_plugged_runs(&g, &mut mbs[id], id)?;
                mbs[id].state = MbState::Unused;
            }
        }
        Ok(())
    }

    /// Unplugs every run of plugged subblocks of block `id` (the device refuses ranges that
    /// contain unplugged blocks).
    fn unplug_plugged_runs(&self, g: &Geometry, mb: &mut Mb, id: usize) -> Result {
        let mut sb = 0;
        while sb < g.sbs_per_mb {
            if !mb.is_plugged(sb) {
                sb += 1;
                continue;
            }
            let mut end = sb + 1;
            while end < g.sbs_per_mb && mb.is_plugged(end) {
                end += 1;
            }
            self.unplug_sbs(g, mb, id, sb, end - sb)?;
            sb = end;
        }
        Ok(())
    }

    /// Teardown: removes and unplugs offline blocks; online ones stay, with their unplugged
    /// subblocks kept offline for good. Returns the number of blocks that stay.
    pub(crate) fn sbm_teardown(&self) -> u64 {
        let Ok(g) = self.geo() else {
            return 0;
        };
        // No transition starts once `removing` is set (the notifier checks it under `mbs`):
        // taking `mbs` once orders our store before any later check. Then wait for the
        // transitions in flight, so that the snapshot below is final.
        drop(self.mbs());
        loop {
            if !self.mbs().iter().any(|m| m.in_transition) {
                break;
            }
            kernel::time::delay::fsleep(kernel::time::Delta::from_millis(10));
        }
        let nr = self.mbs().len();
        let mut stay = 0;
        for id in 0..nr {
            let (state, mem) = {
                let mut mbs = self.mbs();
                (mbs[id].state, mbs[id].mem.take())
            };
            match (state, mem) {
                (MbState::Offline | MbState::OfflinePartial, Some(mem)) => match mem.remove() {
                    Ok(()) => {
                        let mut mbs = self.mbs();
                        self.unplug_plugged_runs(&g, &mut mbs[id], id).ok();
                        mbs[id].state = MbState::Unused;
                    }
                    Err((_, mem)) => {
                        stay += 1;
                        mem.leak();
                    }
                },
                (MbState::Plugged, _) => {
                    let mut mbs = self.mbs();
                    self.unplug_plugged_runs(&g, &mut mbs[id], id).ok();
                }
                (_, Some(mem)) => {
                    stay += 1;
                    mem.leak();
                    // Their memory may be unplugged: they must never be onlined again.
                    let mut mbs = self.mbs();
                    for t in mbs[id].kept.drain_all() {
                        core::mem::forget(t);
                    }
                }
                (_, None) => {}
            }
        }
        stay
    }

    /// Memory notifier, Sub-Block Mode part.
    pub(crate) fn sbm_notify(
        &self,
        event: kernel::mm::hotplug::notifier::Event,
        r: PhysRange,
    ) -> kernel::mm::hotplug::notifier::NotifyResult {
        use kernel::mm::hotplug::notifier::{
            Event,
            NotifyResult, //
        };
        let Ok(g) = self.geo() else {
            return NotifyResult::Ok;
        };
        let mut mbs = self.mbs();
        let nr = mbs.len();
        let Some(id) = g.mb_of(r.start(), nr) else {
            return NotifyResult::Veto(EINVAL);
        };
        if r.start() != g.mb_addr(id) || r.size() != g.mb_size.get() {
            // The core notifies exactly one memory block at a time.
            return NotifyResult::Veto(EINVAL);
        }
        // Checked under `mbs`, which teardown holds while it sets `removing`.
        if matches!(event, Event::GoingOnline | Event::GoingOffline) && self.removing.load(Relaxed)
        {
            return NotifyResult::Veto(EBUSY);
        }
        Self::mb_event(&g, &mut mbs[id], event, r)
    }

    /// Applies memory notifier event `event` for memory block `mb` (at `r`) to its state and
    /// to the pages it keeps offline.
    fn mb_event(
        g: &Geometry,
        mb: &mut Mb,
        event: kernel::mm::hotplug::notifier::Event,
        r: PhysRange,
    ) -> kernel::mm::hotplug::notifier::NotifyResult {
        use kernel::mm::hotplug::notifier::{
            Event,
            NotifyResult, //
        };
        let full = mb.nr_plugged() == g.sbs_per_mb;
        match event {
            Event::GoingOnline => Self::going_online(g, mb),
            Event::Online => {
                // CAST: Physical addresses fit `usize` on 64-bit.
                let pfn = (r.start() >> PAGE_SHIFT) as usize;
                // SAFETY: The block just went online and cannot go offline while we run.
                let movable = unsafe { pages::pfn_is_movable(pfn) };
                mb.state = MbState::of(true, movable, full);
                mb.in_transition = false;
                NotifyResult::Ok
            }
            Event::GoingOffline => {
                mb.in_transition = true;
                for t in mb.kept.iter_mut() {
                    // SAFETY: We handle `GoingOffline` for the block of these pages.
                    unsafe { t.going_offline() };
                }
                NotifyResult::Ok
            }
            Event::CancelOffline => {
                for t in mb.kept.iter_mut() {
                    // SAFETY: We handle `CancelOffline` for the same offlining.
                    unsafe { t.cancel_offline() };
                }
                mb.in_transition = false;
                NotifyResult::Ok
            }
            Event::Offline => {
                for t in mb.kept.drain_all() {
                    t.offlined();
                }
                mb.shrink_kept();
                mb.state = MbState::of(false, false, full);
                mb.in_transition = false;
                NotifyResult::Ok
            }
            Event::CancelOnline => {
                mb.in_transition = false;
                NotifyResult::Ok
            }
        }
    }

    /// `GoingOnline` for block `mb`: only offline blocks this driver added may go online (as
    /// in C), with room reserved for the pages of unplugged subblocks, which our online-page
    /// handler keeps back.
    fn going_online(g: &Geometry, mb: &mut Mb) -> kernel::mm::hotplug::notifier::NotifyResult {
        use kernel::mm::hotplug::notifier::NotifyResult;
        if !matches!(mb.state, MbState::Offline | MbState::OfflinePartial) {
            // Not memory this driver added and plugged, or a block being removed.
            return NotifyResult::Veto(EPERM);
        }
        // The handler gets chunks of at least a pageblock.
        let per_sb = g.sb_pages().div_ceil(pages::pageblock_pages());
        let unplugged = g.sbs_per_mb - mb.nr_plugged();
        if unplugged != 0 && mb.reserve_kept(unplugged * per_sb + 2).is_err() {
            return NotifyResult::Veto(ENOMEM);
        }
        mb.in_transition = true;
        NotifyResult::Ok
    }

    /// Locks the memory blocks. The status shows their counts as of the last release: the
    /// worker holds `mbs` while it migrates a block's pages away, which can take seconds.
    pub(crate) fn mbs(&self) -> MbsGuard<'_> {
        MbsGuard {
            vm: self,
            mbs: self.mbs.lock(),
            changed: false,
        }
    }
}

/// [`VirtioMem::mbs`] locked; publishes the counts for the status when released, if it was
/// borrowed mutably.
pub(crate) struct MbsGuard<'a> {
    vm: &'a VirtioMem,
    mbs: MutexGuard<'a, KVec<Mb>>,
    changed: bool,
}

impl Deref for MbsGuard<'_> {
    type Target = KVec<Mb>;

    fn deref(&self) -> &KVec<Mb> {
        &self.mbs
    }
}

impl DerefMut for MbsGuard<'_> {
    fn deref_mut(&mut self) -> &mut KVec<Mb> {
        self.changed = true;
        &mut self.mbs
    }
}

impl Drop for MbsGuard<'_> {
    fn drop(&mut self) {
        if !self.changed {
            return;
        }
        let mut counts = [0; MbState::ALL.len()];
        // The blocks `mbs` does not reach yet are unused (`MbState::ALL[0]`).
        counts[0] = self
            .vm
            .sbm
            .map_or(0, |g| g.nr_mbs)
            .saturating_sub(self.mbs.len());
        let mut plugged = 0;
        let mut bytes = self.mbs.capacity() * size_of::<Mb>();
        for mb in self.mbs.iter() {
            if let Some(i) = MbState::ALL.iter().position(|s| *s == mb.state) {
                counts[i] += 1;
            }
            plugged += mb.nr_plugged();
            bytes += mb.heap_bytes();
        }
        let mut shown = self.vm.shown.lock();
        shown.mbs = counts;
        shown.sbs_plugged = plugged;
        shown.state_bytes = bytes;
    }
}
