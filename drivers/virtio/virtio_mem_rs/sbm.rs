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
    context::{
        BlockMode,
        Context, //
    },
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
    alloc::KVVec,
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
    page::{
        PAGE_SHIFT,
        PAGE_SIZE, //
    },
    prelude::*,
    sync::{
        atomic::Relaxed,
        Arc,
        Mutex,
        MutexGuard,
        SpinLock, //
    },
    virtio,
};

/// Whether a request failed with `e` without an answer from the device (it broke, went away,
/// or the wait was interrupted), so that it may have been carried out.
fn no_answer(e: Error) -> bool {
    e == EIO || e == ENODEV || e == EINTR
}

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

impl MbState {
    /// The state's bits in its block's byte of [`AddedBlocks`].
    fn bits(self) -> u8 {
        // CAST: `ALL` has 8 entries.
        Self::ALL.iter().position(|s| *s == self).unwrap_or(0) as u8
    }

    fn from_bits(b: u8) -> Self {
        Self::ALL[usize::from(b & STATE_MASK)]
    }
}

/// The bits of a block's byte that hold its [`MbState`].
const STATE_MASK: u8 = 0x7;
/// The bit of a block's byte set between `GoingOnline`/`GoingOffline` and the matching
/// completion or cancellation: the worker leaves the block alone, as pages are on their way in
/// or out.
const IN_TRANSITION: u8 = 1 << 3;

/// What few blocks need beyond their byte and their bits: online blocks with unplugged
/// subblocks, and blocks whose last unplug met pages in use.
struct Extra {
    id: usize,
    /// Unplugged subblocks of an online block. Room for a token is reserved before the pages
    /// it will hold are taken (see [`Mbs::reserve_kept`]), so keeping never allocates.
    kept: KVec<OfflinePages>,
    /// Subblocks that could not be taken (-EBUSY) the last time the block was unplugged from.
    busy: usize,
}

/// The memory blocks of the region, up to the highest that was ever used: the others are
/// unused.
///
/// Per block, as in the C driver, a byte (its [`MbState`] and whether it is in transition,
/// kept in its byte of the [`AddedBlocks`] set, which also holds whether it is added) and a bit
/// per subblock (plugged or not). The few blocks that keep pages offline, or whose last unplug
/// met pages in use, have an [`Extra`] besides.
///
/// # Invariants
///
/// `counts[s]` is the number of blocks below `len()` in the state of bits `s`, and
/// `nr_plugged` the number of bits set in `plugged`: the status reads them on every release of
/// the lock, which the online-page handler takes for every chunk it gets.
pub(crate) struct Mbs {
    blocks: AddedBlocks,
    /// One bit per subblock: bit `id * sbs_per_mb + sb`.
    plugged: KVVec<u64>,
    sbs_per_mb: usize,
    extras: KVec<Extra>,
    counts: [usize; MbState::ALL.len()],
    nr_plugged: usize,
}

impl Mbs {
    /// No blocks yet, of the region `region` claimed for `group`, from memory block `first` on.
    pub(crate) fn new(
        region: &Arc<SystemRamRegion>,
        group: &Arc<MemoryGroup>,
        first: u64,
        mb_size: NonZeroU64,
        sbs_per_mb: usize,
    ) -> Result<Self> {
        Ok(Self {
            blocks: AddedBlocks::new(region, group, first, mb_size.get())?,
            plugged: KVVec::new(),
            sbs_per_mb,
            extras: KVec::new(),
            counts: [0; MbState::ALL.len()],
            nr_plugged: 0,
        })
    }

    /// Blocks with state; the others are unused.
    pub(crate) fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Gives block `id` and those before it state. Grows by doubling up to a page, then a page
    /// at a time, as the C driver's arrays do.
    fn grow(&mut self, id: usize) -> Result {
        let len = id.checked_add(1).ok_or(EINVAL)?;
        let words = len.checked_mul(self.sbs_per_mb).ok_or(EINVAL)?.div_ceil(64);
        if words > self.plugged.capacity() {
            let bytes = hotplug::grown_capacity(words * size_of::<u64>());
            let mut v = KVVec::with_capacity(bytes / size_of::<u64>(), GFP_KERNEL)?;
            v.extend_from_slice(&self.plugged, GFP_KERNEL)?;
            self.plugged = v;
        }
        if words > self.plugged.len() {
            self.plugged.resize(words, 0, GFP_KERNEL)?;
        }
        let old = self.len();
        let res = self.blocks.grow(len);
        // New blocks are unused (state bits 0).
        self.counts[0] += self.len() - old;
        res
    }

    pub(crate) fn state(&self, id: usize) -> MbState {
        MbState::from_bits(self.blocks.state(id))
    }

    fn set_state(&mut self, id: usize, s: MbState) {
        let old = self.state(id);
        // Only blocks below `len()` change state.
        if self.blocks.update_state(id, STATE_MASK, s.bits()).is_ok() {
            let o = usize::from(old.bits());
            self.counts[o] = self.counts[o].saturating_sub(1);
            self.counts[usize::from(s.bits())] += 1;
        }
    }

    pub(crate) fn in_transition(&self, id: usize) -> bool {
        self.blocks.state(id) & IN_TRANSITION != 0
    }

    fn set_in_transition(&mut self, id: usize, on: bool) {
        let bits = if on { IN_TRANSITION } else { 0 };
        // Only blocks below `len()` change.
        let _ = self.blocks.update_state(id, IN_TRANSITION, bits);
    }

    fn is_plugged(&self, id: usize, sb: usize) -> bool {
        let bit = id * self.sbs_per_mb + sb;
        sb < self.sbs_per_mb
            && self
                .plugged
                .get(bit / 64)
                .is_some_and(|w| w & (1 << (bit % 64)) != 0)
    }

    fn set_plugged(&mut self, id: usize, sb: usize, on: bool) {
        let bit = id * self.sbs_per_mb + sb;
        if sb >= self.sbs_per_mb {
            return;
        }
        if let Some(w) = self.plugged.get_mut(bit / 64) {
            let mask = 1 << (bit % 64);
            if on && *w & mask == 0 {
                *w |= mask;
                self.nr_plugged += 1;
            } else if !on && *w & mask != 0 {
                *w &= !mask;
                self.nr_plugged = self.nr_plugged.saturating_sub(1);
            }
        }
    }

    pub(crate) fn nr_plugged(&self, id: usize) -> usize {
        let (mut bit, end) = (id * self.sbs_per_mb, (id + 1) * self.sbs_per_mb);
        let mut n = 0;
        while bit < end {
            let Some(w) = self.plugged.get(bit / 64) else {
                break;
            };
            let (lo, hi) = (bit % 64, (end - bit + bit % 64).min(64));
            let mask = if hi - lo == 64 {
                u64::MAX
            } else {
                ((1u64 << (hi - lo)) - 1) << lo
            };
            n += (w & mask).count_ones() as usize;
            bit += hi - lo;
        }
        n
    }

    /// Subblocks plugged, in all blocks.
    fn total_plugged(&self) -> usize {
        self.nr_plugged
    }

    /// Blocks below `len()` per state, in the order of [`MbState::ALL`].
    fn counts(&self) -> [usize; MbState::ALL.len()] {
        self.counts
    }

    fn extra(&self, id: usize) -> Option<&Extra> {
        self.extras.iter().find(|e| e.id == id)
    }

    fn extra_mut(&mut self, id: usize) -> Option<&mut Extra> {
        self.extras.iter_mut().find(|e| e.id == id)
    }

    fn extra_or_new(&mut self, id: usize) -> Result<&mut Extra> {
        let i = match self.extras.iter().position(|e| e.id == id) {
            Some(i) => i,
            None => {
                self.extras.push(
                    Extra {
                        id,
                        kept: KVec::new(),
                        busy: 0,
                    },
                    GFP_KERNEL,
                )?;
                self.extras.len() - 1
            }
        };
        self.extras.get_mut(i).ok_or(EINVAL)
    }

    /// Drops the extra of block `id` once it holds nothing.
    fn tidy(&mut self, id: usize) {
        if let Some(i) = self.extras.iter().position(|e| e.id == id) {
            if self.extras[i].kept.capacity() == 0 && self.extras[i].busy == 0 {
                let _ = self.extras.remove(i);
            }
        }
    }

    fn busy(&self, id: usize) -> usize {
        self.extra(id).map_or(0, |e| e.busy)
    }

    /// Notes that `n` subblocks of block `id` could not be taken. Only an ordering hint: if
    /// there is no memory to note it, it is not noted.
    fn set_busy(&mut self, id: usize, n: usize) {
        if n == 0 {
            if let Some(e) = self.extra_mut(id) {
                e.busy = 0;
            }
            self.tidy(id);
        } else if let Ok(e) = self.extra_or_new(id) {
            e.busy = n;
        }
    }

    /// Makes room for `n` more kept tokens of block `id`, before the pages they will hold are
    /// taken: once they are, keeping them must not fail. Blocks with nothing unplugged hold no
    /// room, so the state of a fully plugged block is its byte and its bits.
    fn reserve_kept(&mut self, id: usize, n: usize) -> Result {
        Ok(self.extra_or_new(id)?.kept.reserve(n, GFP_KERNEL)?)
    }

    /// Frees the room of block `id`'s kept tokens if it keeps none.
    fn shrink_kept(&mut self, id: usize) {
        if let Some(e) = self.extra_mut(id) {
            if e.kept.is_empty() {
                e.kept = KVec::new();
            }
        }
        self.tidy(id);
    }

    /// Keeps `p` for block `id`, without allocating while the room reserved beforehand lasts
    /// (it does: see [`Self::reserve_kept`]).
    fn keep(&mut self, id: usize, p: OfflinePages) {
        match self.extra_or_new(id) {
            Ok(e) => stash(&mut e.kept, p),
            // The pages stay offline for good (the token warns when dropped), which is safe:
            // they are never handed to the page allocator.
            Err(_) => drop(p),
        }
    }

    /// The tokens block `id` keeps.
    fn kept_mut(&mut self, id: usize) -> &mut [OfflinePages] {
        match self.extra_mut(id) {
            Some(e) => &mut e.kept,
            None => &mut [],
        }
    }

    /// Takes the tokens block `id` keeps, and their room.
    fn drain_kept(&mut self, id: usize) -> KVec<OfflinePages> {
        let kept = self
            .extra_mut(id)
            .map(|e| core::mem::take(&mut e.kept))
            .unwrap_or_default();
        self.tidy(id);
        kept
    }

    /// The token of block `id`'s added memory, out of the set.
    fn take_mem(&mut self, id: usize) -> Option<AddedMemory> {
        self.blocks.take(id)
    }

    /// Puts the token of an added block back into the set. A token the set refuses (not one
    /// of its blocks) stays added for good (it warns when dropped): only the worker removes
    /// memory, and it finds nothing to remove there.
    fn put_mem(&mut self, mem: AddedMemory) {
        if let Err(mem) = self.blocks.put(mem) {
            mem.leak();
        }
    }

    /// Bytes of heap the block state holds.
    fn heap_bytes(&self) -> usize {
        self.blocks.heap_bytes()
            + self.plugged.capacity() * size_of::<u64>()
            + self.extras.capacity() * size_of::<Extra>()
            + self
                .extras
                .iter()
                .map(|e| e.kept.capacity() * size_of::<OfflinePages>())
                .sum::<usize>()
    }

    /// Allocates what [`Self::take_kept`] needs. Called before the device plugs anything:
    /// once it has, nothing may fail, or the pages of plugged subblocks would stay offline.
    fn take_room(&self, id: usize) -> Result<TakeRoom> {
        let n = self.extra(id).map_or(0, |e| e.kept.len());
        // At most one token straddles each edge of the range, so taking splits at most two:
        // `rest` gets at most `n + 2` tokens. It becomes `kept`, with no spare room: whoever
        // keeps more reserves first.
        Ok(TakeRoom {
            rest: KVec::with_capacity(n + 2, GFP_KERNEL)?,
            taken: KVec::with_capacity(n + 2, GFP_KERNEL)?,
        })
    }

    /// Takes the kept pages of block `id` in `[start, end)`, splitting tokens that straddle
    /// its edges, into the vectors of `room`; allocates nothing.
    fn take_kept(
        &mut self,
        id: usize,
        room: TakeRoom,
        start: usize,
        end: usize,
    ) -> KVec<OfflinePages> {
        let TakeRoom {
            mut rest,
            mut taken,
        } = room;
        let Some(e) = self.extra_mut(id) else {
            return taken;
        };
        for mut t in e.kept.drain_all() {
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
        e.kept = rest;
        taken
    }
}

/// The vectors [`Mbs::take_kept`] fills, allocated beforehand by [`Mbs::take_room`].
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

/// Sub-Block Mode: the geometry and the memory blocks of one device.
///
/// Lock order: the worker's state lock, then `mbs`, then `shown`.
#[pin_data]
pub(crate) struct Sbm {
    pub(crate) geo: Geometry,
    /// The memory blocks, up to the highest that was ever used.
    #[pin]
    mbs: Mutex<Mbs>,
    /// What the status shows of `mbs`, as of its last release (see [`Sbm::mbs`]).
    #[pin]
    shown: SpinLock<SbmShown>,
}

/// What the status shows of the memory blocks.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SbmShown {
    /// Memory blocks per state, in the order of [`MbState::ALL`].
    pub(crate) mbs: [usize; MbState::ALL.len()],
    /// Subblocks plugged.
    pub(crate) sbs_plugged: usize,
    /// Bytes of heap the block state holds.
    pub(crate) state_bytes: usize,
}

impl Sbm {
    /// Sub-Block Mode with geometry `geo`, no memory block in use yet, of the region `region`
    /// claimed for `group`. The block state grows with the blocks in use, not with the region,
    /// as the C driver's arrays do.
    pub(crate) fn new(
        region: &Arc<SystemRamRegion>,
        group: &Arc<MemoryGroup>,
        geo: Geometry,
    ) -> Result<impl PinInit<Self, Error>> {
        let mbs = Mbs::new(region, group, geo.first_mb, geo.mb_size, geo.sbs_per_mb)?;
        let mut shown = SbmShown::default();
        shown.mbs[0] = geo.nr_mbs;
        Ok(try_pin_init!(Self {
            geo,
            mbs <- new_mutex!(mbs),
            shown <- new_spinlock!(shown),
        }))
    }

    /// What the status shows of the memory blocks.
    pub(crate) fn shown(&self) -> SbmShown {
        *self.shown.lock()
    }

    /// Bytes plugged in Sub-Block Mode.
    fn plugged(&self) -> u64 {
        // CAST: Subblock counts fit `u64`.
        self.mbs().total_plugged() as u64 * self.geo.sb_size.get()
    }

    fn could_add(&self, cx: &Context) -> bool {
        cx.could_add_bytes(self.geo.mb_size.get(), self.geo.mb_size.get())
    }

    /// Plugs subblocks `[sb, sb + count)` of block `id`.
    fn plug_sbs(&self, cx: &Context, mbs: &mut Mbs, id: usize, sb: usize, count: usize) -> Result {
        let g = &self.geo;
        let addr = g.mb_addr(id) + sb as u64 * g.sb_size.get();
        cx.link.plug(addr, count as u64 * g.sb_size.get())?;
        for s in sb..sb + count {
            mbs.set_plugged(id, s, true);
        }
        Ok(())
    }

    /// Unplugs subblocks `[sb, sb + count)` of block `id`.
    fn unplug_sbs(
        &self,
        cx: &Context,
        mbs: &mut Mbs,
        id: usize,
        sb: usize,
        count: usize,
    ) -> Result {
        let g = &self.geo;
        let addr = g.mb_addr(id) + sb as u64 * g.sb_size.get();
        let res = cx.link.unplug(addr, count as u64 * g.sb_size.get());
        // A request that got no answer may have been carried out: its subblocks count as
        // unplugged from now on, so that their memory is never onlined again.
        if res.is_ok() || res.is_err_and(no_answer) {
            for s in sb..sb + count {
                mbs.set_plugged(id, s, false);
            }
        }
        res
    }

    /// Plugs up to `diff` bytes: partially plugged blocks first, then new blocks within the
    /// first `usable` bytes of the region.
    fn plug(&self, cx: &Context, diff: u64, usable: u64) -> Result {
        let g = &self.geo;
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
                if mbs.state(id) != class || mbs.in_transition(id) {
                    continue;
                }
                self.plug_any_sb(cx, &mut mbs, id, &mut nb)?;
                if nb == 0 {
                    return Ok(());
                }
            }
        }
        for id in 0..g.nr_mbs {
            if self.mbs().state(id) != MbState::Unused {
                continue;
            }
            if cx.config_changed.load(Relaxed) {
                return Err(EAGAIN);
            }
            if !self.could_add(cx) {
                return Err(ENOSPC);
            }
            let limit = cx.layout.addr.saturating_add(usable);
            if g.mb_addr(id) + g.mb_size.get() > limit.min(cx.layout.usable_end) {
                break;
            }
            self.plug_and_add_mb(cx, id, &mut nb)?;
            if nb == 0 {
                return Ok(());
            }
        }
        Err(ENOSPC)
    }

    /// Plugs unplugged subblocks of a partially plugged block; onlines their pages if the
    /// block is online.
    fn plug_any_sb(&self, cx: &Context, mbs: &mut Mbs, id: usize, nb: &mut usize) -> Result {
        let g = &self.geo;
        while *nb > 0 {
            let Some(sb) = (0..g.sbs_per_mb).find(|&s| !mbs.is_plugged(id, s)) else {
                break;
            };
            let mut count = 1;
            while count < *nb && sb + count < g.sbs_per_mb && !mbs.is_plugged(id, sb + count) {
                count += 1;
            }
            if cx.config_changed.load(Relaxed) {
                return Err(EAGAIN);
            }
            // The pages of an online block go online once plugged: find room for them first.
            let room = if mbs.state(id).is_online() {
                Some(mbs.take_room(id)?)
            } else {
                None
            };
            self.plug_sbs(cx, mbs, id, sb, count)?;
            *nb -= count;
            if let Some(room) = room {
                let start = g.sb_pfn(id, sb);
                let end = start + count * g.sb_pages();
                for t in mbs.take_kept(id, room, start, end) {
                    // SAFETY: The device just plugged these subblocks; the block is online and
                    // stays so while we hold `mbs` (offlining waits for it in our notifier).
                    unsafe { t.online() };
                }
            }
        }
        if mbs.nr_plugged(id) == g.sbs_per_mb {
            let full = match mbs.state(id) {
                MbState::KernelPartial => MbState::Kernel,
                MbState::MovablePartial => MbState::Movable,
                MbState::OfflinePartial => MbState::Offline,
                s => s,
            };
            mbs.set_state(id, full);
            mbs.shrink_kept(id);
        }
        Ok(())
    }

    /// Plugs the first subblocks of an unused block and adds it.
    fn plug_and_add_mb(&self, cx: &Context, id: usize, nb: &mut usize) -> Result {
        let g = &self.geo;
        let count = (*nb).min(g.sbs_per_mb);
        {
            let mut mbs = self.mbs();
            // State grows with the blocks in use, not with the region, as in the C driver.
            mbs.grow(id)?;
            self.plug_sbs(cx, &mut mbs, id, 0, count)?;
            // Set before adding: the notifier allows onlining offline blocks only.
            mbs.set_state(id, MbState::of(false, false, count == g.sbs_per_mb));
        }
        let range = PhysRange::new(g.mb_addr(id), g.mb_size.get()).ok_or(EINVAL)?;
        // SAFETY: Only plugged subblocks are onlined: our online-page handler owns this range
        // and keeps unplugged subblocks offline; plugged ones stay accessible until we unplug
        // them, which we do only after taking their pages or removing the block.
        let added = unsafe { cx.add(range) };
        let mut mbs = self.mbs();
        match added {
            Ok(mem) => {
                mbs.put_mem(mem);
                *nb -= count;
                Ok(())
            }
            Err(e) => {
                let s = if self.unplug_sbs(cx, &mut mbs, id, 0, count).is_ok() {
                    MbState::Unused
                } else {
                    MbState::Plugged
                };
                mbs.set_state(id, s);
                Err(e)
            }
        }
    }

    /// Unplugs up to `diff` bytes, in the C driver's order of block classes, highest block
    /// first; online memory only with `unplug_online`.
    fn unplug(&self, cx: &Context, diff: u64) -> Result {
        let g = &self.geo;
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
            for id in self.unplug_candidates(class, i >= 2)? {
                // Rechecked by the callee in the critical section that acts on the block.
                if self.mbs().state(id) != class {
                    continue;
                }
                if i < 2 {
                    self.unplug_offline_mb(cx, id, class, &mut nb)?;
                } else {
                    self.unplug_online_mb(cx, id, class, &mut nb)?;
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
    fn unplug_candidates(&self, class: MbState, online: bool) -> Result<KVec<usize>> {
        let g = &self.geo;
        let mut ids = KVec::new();
        let mbs = self.mbs();
        for id in (0..mbs.len()).rev() {
            if mbs.state(id) != class {
                continue;
            }
            let mut cost = Cost::default();
            if online {
                cost.busy = mbs.busy(id);
                for sb in (0..g.sbs_per_mb).filter(|&sb| mbs.is_plugged(id, sb)) {
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
    fn sb_unplug_order(g: &Geometry, mbs: &Mbs, id: usize) -> Result<KVec<usize>> {
        let mut sbs = KVec::with_capacity(g.sbs_per_mb, GFP_KERNEL)?;
        for sb in (0..g.sbs_per_mb).filter(|&sb| mbs.is_plugged(id, sb)) {
            // SAFETY: The caller holds `mbs` with the block online: it cannot be removed.
            let cost = unsafe { Cost::of_range(g.sb_pfn(id, sb), g.sb_pages(), 0) };
            sbs.push((cost, sb), GFP_KERNEL)?;
        }
        order_by_key(sbs)
    }

    /// Unplugs subblocks of an offline block of state `class`, highest first; removes it once
    /// empty. Does nothing if the block changed state or is in transition meanwhile.
    fn unplug_offline_mb(&self, cx: &Context, id: usize, class: MbState, nb: &mut usize) -> Result {
        let g = &self.geo;
        let mem = {
            let mut mbs = self.mbs();
            if mbs.state(id) != class || mbs.in_transition(id) {
                return Ok(());
            }
            let mut sb = g.sbs_per_mb;
            while *nb > 0 && sb > 0 {
                sb -= 1;
                if !mbs.is_plugged(id, sb) {
                    continue;
                }
                let mut first = sb;
                while first > 0 && mbs.is_plugged(id, first - 1) && sb + 1 - first < *nb {
                    first -= 1;
                }
                if cx.config_changed.load(Relaxed) {
                    return Err(EAGAIN);
                }
                let count = sb + 1 - first;
                let r = self.unplug_sbs(cx, &mut mbs, id, first, count);
                if mbs.nr_plugged(id) != g.sbs_per_mb {
                    mbs.set_state(id, MbState::OfflinePartial);
                }
                r?;
                *nb -= count;
                sb = first;
            }
            if mbs.nr_plugged(id) != 0 {
                return Ok(());
            }
            mbs.set_state(id, MbState::Unused);
            mbs.take_mem(id)
        };
        if let Some(mem) = mem {
            if let Err((e, mem)) = mem.remove() {
                // An offline block whose subblocks are all unplugged must be removable.
                dev_err!(cx.vdev, "removing offline block failed: {}\n", e.to_errno());
                let mut mbs = self.mbs();
                mbs.put_mem(mem);
                mbs.set_state(id, MbState::OfflinePartial);
                return Err(EBUSY);
            }
            cx.removed(g.mb_size.get());
        }
        Ok(())
    }

    /// Unplugs subblocks of an online block of state `class`: the whole block at once if
    /// possible, else subblock by subblock, cheapest first. Removes the block once empty. Does
    /// nothing if the block changed state or is in transition meanwhile.
    fn unplug_online_mb(&self, cx: &Context, id: usize, class: MbState, nb: &mut usize) -> Result {
        {
            let mut mbs = self.mbs();
            if mbs.state(id) != class || mbs.in_transition(id) {
                return Ok(());
            }
            if !self.unplug_online_whole(cx, &mut mbs, id, nb)? {
                self.unplug_online_sbs(cx, &mut mbs, id, nb)?;
            }
        }
        self.try_remove_unplugged(cx, id);
        Ok(())
    }

    /// Unplugs online block `id` as a whole if all of it is plugged, all of it is wanted, and
    /// memory allows; returns whether it did. Notes in its busy count whether pages in use
    /// kept it.
    fn unplug_online_whole(
        &self,
        cx: &Context,
        mbs: &mut Mbs,
        id: usize,
        nb: &mut usize,
    ) -> Result<bool> {
        let g = &self.geo;
        let movable = matches!(mbs.state(id), MbState::Movable | MbState::MovablePartial);
        let whole = *nb >= g.sbs_per_mb
            && mbs.nr_plugged(id) == g.sbs_per_mb
            // SAFETY: `mbs` is held with the block online, so it is not removed.
            && unsafe { cx.can_take_online(g.sb_pfn(id, 0), g.sbs_per_mb * g.sb_pages()) };
        if !whole {
            mbs.set_busy(id, 0);
            return Ok(false);
        }
        mbs.reserve_kept(id, 1)?;
        let pages = match cx.fake_offline(g.sb_pfn(id, 0), g.sbs_per_mb * g.sb_pages(), movable) {
            Ok(pages) => pages,
            Err(e) if e == EBUSY => {
                mbs.shrink_kept(id);
                mbs.set_busy(id, 1);
                return Ok(false);
            }
            Err(e) => {
                mbs.shrink_kept(id);
                return Err(e);
            }
        };
        if let Err(e) = self.unplug_sbs(cx, mbs, id, 0, g.sbs_per_mb) {
            return Err(Self::unplug_failed(mbs, id, pages, e));
        }
        mbs.keep(id, pages);
        mbs.set_state(id, partial(mbs.state(id)));
        mbs.set_busy(id, 0);
        cx.migrated_bytes.fetch_add(g.mb_size.get(), Relaxed);
        *nb -= g.sbs_per_mb;
        Ok(true)
    }

    /// Unplugs plugged subblocks of online block `id`, cheapest first, until `nb` are done.
    /// Counts in its busy count the subblocks that pages in use kept.
    fn unplug_online_sbs(&self, cx: &Context, mbs: &mut Mbs, id: usize, nb: &mut usize) -> Result {
        let movable = matches!(mbs.state(id), MbState::Movable | MbState::MovablePartial);
        let res = self.unplug_online_sbs_in_order(cx, mbs, id, nb, movable);
        // Room reserved for pages that were not taken.
        mbs.shrink_kept(id);
        res
    }

    fn unplug_online_sbs_in_order(
        &self,
        cx: &Context,
        mbs: &mut Mbs,
        id: usize,
        nb: &mut usize,
        movable: bool,
    ) -> Result {
        let g = &self.geo;
        for sb in Self::sb_unplug_order(g, mbs, id)? {
            if *nb == 0 {
                break;
            }
            // SAFETY: `mbs` is held with the block online, so it is not removed.
            if !unsafe { cx.can_take_online(g.sb_pfn(id, sb), g.sb_pages()) } {
                // Memory is short and this subblock is in use: leave it for a later run.
                // Others may be free.
                continue;
            }
            mbs.reserve_kept(id, 1)?;
            let pages = match cx.fake_offline(g.sb_pfn(id, sb), g.sb_pages(), movable) {
                Ok(p) => p,
                Err(e) if e == EBUSY => {
                    mbs.set_busy(id, mbs.busy(id) + 1);
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let Err(e) = self.unplug_sbs(cx, mbs, id, sb, 1) {
                return Err(Self::unplug_failed(mbs, id, pages, e));
            }
            mbs.keep(id, pages);
            mbs.set_state(id, partial(mbs.state(id)));
            cx.migrated_bytes.fetch_add(g.sb_size.get(), Relaxed);
            *nb -= 1;
        }
        Ok(())
    }

    /// Handles a failed unplug request for `pages` of an online block. If the device answered
    /// (NACK, BUSY, ERROR), it did nothing and the pages go back online. If the request got no
    /// answer (the device broke or went away), it may have been carried out: the pages stay
    /// offline for good, their subblocks count as unplugged (see [`Self::unplug_sbs`]), and the
    /// device is treated as broken.
    fn unplug_failed(mbs: &mut Mbs, id: usize, pages: OfflinePages, e: Error) -> Error {
        if no_answer(e) {
            mbs.keep(id, pages);
            mbs.set_state(id, partial(mbs.state(id)));
            return EIO;
        }
        // SAFETY: The device refused, so the memory is still plugged; the block is online and
        // stays so while the caller holds `mbs`.
        unsafe { pages.online() };
        e
    }

    /// Removes block `id` if it has nothing plugged: offlines it first if it is online.
    /// Returns `false` if that failed, for a later run to retry.
    fn try_remove_unplugged(&self, cx: &Context, id: usize) -> bool {
        let g = &self.geo;
        let (mem, online) = {
            let mut mbs = self.mbs();
            let state = mbs.state(id);
            let online = state.is_online();
            // An offline block is left partially plugged with nothing plugged only when its
            // removal failed after its last subblock was unplugged (`unplug_offline_mb`).
            if !(online || state == MbState::OfflinePartial) || mbs.nr_plugged(id) != 0 {
                return true;
            }
            if mbs.in_transition(id) {
                return false;
            }
            match mbs.take_mem(id) {
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
                mbs.set_state(id, MbState::Unused);
                cx.removed(g.mb_size.get());
                true
            }
            Err((_, mem)) => {
                self.mbs().put_mem(mem);
                false
            }
        }
    }

    /// Removes blocks whose subblocks are all unplugged (an earlier attempt failed).
    fn cleanup(&self, cx: &Context) -> Result {
        let nr = self.mbs().len();
        let mut ok = true;
        for id in 0..nr {
            ok &= self.try_remove_unplugged(cx, id);
        }
        if ok {
            Ok(())
        } else {
            Err(EBUSY)
        }
    }

    /// Splits `c` down to subblocks (the recursion is at most `MAX_PAGE_ORDER` deep).
    fn online_split(&self, mbs: &mut Mbs, c: OnlineChunk, sb_order: u32) {
        if c.order() > sb_order {
            match c.split() {
                Ok((a, b)) => {
                    self.online_split(mbs, a, sb_order);
                    self.online_split(mbs, b, sb_order);
                }
                Err(c) => self.online_piece(mbs, c),
            }
        } else {
            self.online_piece(mbs, c);
        }
    }

    fn online_piece(&self, mbs: &mut Mbs, c: OnlineChunk) {
        let g = &self.geo;
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
        if mbs.is_plugged(id, sb) {
            // SAFETY: The subblock is plugged, so its memory is accessible.
            unsafe { c.online() };
        } else {
            mbs.keep(id, c.keep_offline());
        }
    }

    /// Unplugs blocks that are plugged but not added.
    fn unplug_leftovers(&self, cx: &Context) -> Result {
        let mut mbs = self.mbs();
        for id in 0..mbs.len() {
            if mbs.state(id) == MbState::Plugged {
                self.unplug_plugged_runs(cx, &mut mbs, id)?;
                mbs.set_state(id, MbState::Unused);
            }
        }
        Ok(())
    }

    /// Unplugs every run of plugged subblocks of block `id` (the device refuses ranges that
    /// contain unplugged blocks).
    fn unplug_plugged_runs(&self, cx: &Context, mbs: &mut Mbs, id: usize) -> Result {
        let g = &self.geo;
        let mut sb = 0;
        while sb < g.sbs_per_mb {
            if !mbs.is_plugged(id, sb) {
                sb += 1;
                continue;
            }
            let mut end = sb + 1;
            while end < g.sbs_per_mb && mbs.is_plugged(id, end) {
                end += 1;
            }
            self.unplug_sbs(cx, mbs, id, sb, end - sb)?;
            sb = end;
        }
        Ok(())
    }

    /// Applies memory notifier call `n` for memory block `id` (at `r`) to its state and to the
    /// pages it keeps offline.
    fn mb_event(
        g: &Geometry,
        mbs: &mut Mbs,
        id: usize,
        n: &Notification<'_>,
        r: PhysRange,
    ) -> NotifyResult {
        let full = mbs.nr_plugged(id) == g.sbs_per_mb;
        match n.event() {
            Event::GoingOnline => Self::going_online(g, mbs, id),
            Event::Online => {
                // CAST: Physical addresses fit `usize` on 64-bit.
                let pfn = (r.start() >> PAGE_SHIFT) as usize;
                // SAFETY: The block just went online and cannot go offline while we run.
                let movable = unsafe { pages::pfn_is_movable(pfn) };
                mbs.set_state(id, MbState::of(true, movable, full));
                mbs.set_in_transition(id, false);
                NotifyResult::Ok
            }
            Event::GoingOffline => {
                mbs.set_in_transition(id, true);
                for t in mbs.kept_mut(id) {
                    t.going_offline(n);
                }
                NotifyResult::Ok
            }
            Event::CancelOffline => {
                for t in mbs.kept_mut(id) {
                    t.cancel_offline(n);
                }
                mbs.set_in_transition(id, false);
                NotifyResult::Ok
            }
            Event::Offline => {
                for t in mbs.drain_kept(id) {
                    t.offlined();
                }
                mbs.set_state(id, MbState::of(false, false, full));
                mbs.set_in_transition(id, false);
                NotifyResult::Ok
            }
            Event::CancelOnline => {
                mbs.shrink_kept(id);
                mbs.set_in_transition(id, false);
                NotifyResult::Ok
            }
        }
    }

    /// `GoingOnline` for block `mb`: only offline blocks this driver added may go online (as
    /// in C), with room reserved for the pages of unplugged subblocks, which our online-page
    /// handler keeps back.
    fn going_online(g: &Geometry, mbs: &mut Mbs, id: usize) -> NotifyResult {
        if !matches!(mbs.state(id), MbState::Offline | MbState::OfflinePartial) {
            // Not memory this driver added and plugged, or a block being removed.
            return NotifyResult::Veto(EPERM);
        }
        // The handler gets chunks of at least a pageblock.
        let per_sb = g.sb_pages().div_ceil(pages::pageblock_pages());
        let unplugged = g.sbs_per_mb - mbs.nr_plugged(id);
        if unplugged != 0 && mbs.reserve_kept(id, unplugged * per_sb + 2).is_err() {
            mbs.shrink_kept(id);
            return NotifyResult::Veto(ENOMEM);
        }
        mbs.set_in_transition(id, true);
        NotifyResult::Ok
    }

    /// Locks the memory blocks. The status shows their counts as of the last release: the
    /// worker holds `mbs` while it migrates a block's pages away, which can take seconds.
    fn mbs(&self) -> MbsGuard<'_> {
        MbsGuard {
            sbm: self,
            mbs: self.mbs.lock(),
            changed: false,
        }
    }
}

impl BlockMode for Sbm {
    /// One pass of the worker in Sub-Block Mode: unplugs blocks left plugged but not added,
    /// plugs or unplugs towards the requested size, and removes the blocks it emptied.
    fn pass(&self, cx: &Context, sizes: &Sizes) -> Result {
        self.unplug_leftovers(cx)?;
        // Blocks left from an earlier run; their errors must not block the rest.
        let _ = self.cleanup(cx);
        let plugged = self.plugged();
        if sizes.requested > plugged {
            self.plug(cx, sizes.requested - plugged, sizes.usable)?;
        } else if plugged > sizes.requested {
            self.unplug(cx, plugged - sizes.requested)?;
        }
        // Blocks emptied by this run that could not be removed yet: retry later.
        self.cleanup(cx)
    }

    fn plugged_bytes(&self) -> u64 {
        self.plugged()
    }

    /// Memory blocks: the notifier checks that `r` is exactly one.
    fn may_be_unit(&self, _r: PhysRange) -> bool {
        true
    }

    fn owns(&self, cx: &Context, r: PhysRange) -> bool {
        self.geo.mb_of(r.start(), usize::MAX).is_some() && r.last() < cx.layout.usable_end
    }

    /// Plugged subblocks go online and unplugged ones stay offline.
    fn online_pages(&self, _cx: &Context, chunk: OnlineChunk) {
        let sb_order = self.geo.sb_pages().trailing_zeros();
        let mut mbs = self.mbs();
        self.online_split(&mut mbs, chunk, sb_order);
    }

    /// Memory notifier, Sub-Block Mode part.
    fn notify(&self, cx: &Context, n: &Notification<'_>, r: PhysRange) -> NotifyResult {
        let g = &self.geo;
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
        let going = matches!(n.event(), Event::GoingOnline | Event::GoingOffline);
        if going && cx.removing.load(Relaxed) {
            return NotifyResult::Veto(EBUSY);
        }
        Self::mb_event(g, &mut mbs, id, n, r)
    }

    /// Teardown: removes and unplugs offline blocks; online ones stay, with their unplugged
    /// subblocks kept offline for good. Returns the number of blocks that stay.
    fn teardown(&self, cx: &Context) -> u64 {
        // No transition starts once `removing` is set (the notifier checks it under `mbs`):
        // taking `mbs` once orders our store before any later check. Then wait for the
        // transitions in flight, so that the snapshot below is final.
        drop(self.mbs());
        loop {
            let mbs = self.mbs();
            if !(0..mbs.len()).any(|id| mbs.in_transition(id)) {
                break;
            }
            drop(mbs);
            kernel::time::delay::fsleep(kernel::time::Delta::from_millis(10));
        }
        let nr = self.mbs().len();
        let mut stay = 0;
        for id in 0..nr {
            let (state, mem) = {
                let mut mbs = self.mbs();
                (mbs.state(id), mbs.take_mem(id))
            };
            match (state, mem) {
                (MbState::Offline | MbState::OfflinePartial, Some(mem)) => match mem.remove() {
                    Ok(()) => {
                        let mut mbs = self.mbs();
                        self.unplug_plugged_runs(cx, &mut mbs, id).ok();
                        mbs.set_state(id, MbState::Unused);
                    }
                    Err((_, mem)) => {
                        stay += 1;
                        mem.leak();
                    }
                },
                (MbState::Plugged, _) => {
                    let mut mbs = self.mbs();
                    self.unplug_plugged_runs(cx, &mut mbs, id).ok();
                }
                (_, Some(mem)) => {
                    stay += 1;
                    mem.leak();
                    // Their memory may be unplugged: they must never be onlined again.
                    let mut mbs = self.mbs();
                    for t in mbs.drain_kept(id) {
                        core::mem::forget(t);
                    }
                }
                (_, None) => {}
            }
        }
        stay
    }
}

/// [`Sbm::mbs`] locked; publishes the counts for the status when released, if it was borrowed
/// mutably.
struct MbsGuard<'a> {
    sbm: &'a Sbm,
    mbs: MutexGuard<'a, Mbs>,
    changed: bool,
}

impl Deref for MbsGuard<'_> {
    type Target = Mbs;

    fn deref(&self) -> &Mbs {
        &self.mbs
    }
}

impl DerefMut for MbsGuard<'_> {
    fn deref_mut(&mut self) -> &mut Mbs {
        self.changed = true;
        &mut self.mbs
    }
}

impl Drop for MbsGuard<'_> {
    fn drop(&mut self) {
        if !self.changed {
            return;
        }
        let mut counts = self.mbs.counts();
        // The blocks `mbs` does not reach yet are unused (`MbState::ALL[0]`).
        counts[0] += self.sbm.geo.nr_mbs.saturating_sub(self.mbs.len());
        let plugged = self.mbs.total_plugged();
        let bytes = self.mbs.heap_bytes();
        let mut shown = self.sbm.shown.lock();
        shown.mbs = counts;
        shown.sbs_plugged = plugged;
        shown.state_bytes = bytes;
    }
}
