// SPDX-License-Identifier: GPL-2.0

//! The device state and the worker that plugs and unplugs memory.
//!
//! The mode is chosen as in the C driver. In Sub-Block Mode (see [`crate::sbm`]), used when a
//! subblock (at least a device block and a pageblock) is smaller than a memory block, memory
//! blocks are added whole and plugged in subblocks. Otherwise the driver runs in Big Block Mode
//! (see [`crate::bbm`]), where memory is plugged and added in big blocks of at least a memory
//! block and a device block.
//!
//! Lock order: `state` is taken by the worker and teardown only. Memory notifier callbacks,
//! which run while the worker adds or removes memory with `state` held, never take it: they use
//! atomics, and `mbs` or `bb_kept`, which the worker drops before it adds, offlines or removes
//! memory. Nor does debugfs: the worker holds `state` across device requests and offlining,
//! which can take minutes (or forever, if the device stops answering), so it publishes what the
//! status shows into `shown`, a spinlock held only to copy a few words.

use crate::{
    bbm::Bbs,
    config::{
        clamp_sizes,
        validate_layout,
        Clamped,
        Layout,
        Limits,
        RawConfig,
        Sizes, //
    },
    protocol::Link,
    sbm::{Geometry, MbState, Mbs},
};
use core::{
    mem::offset_of,
    num::NonZeroU64, //
};
use kernel::{
    device::Core,
    mm::hotplug::{
        self,
        pages::{
            self,
            OfflinePages,
            Pfn, //
        },
        MemoryGroup,
        PhysRange,
        SystemRamRegion, //
    },
    new_mutex,
    new_spinlock,
    page::PAGE_SIZE,
    prelude::*,
    str::CString,
    sync::{
        aref::ARef,
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
        Mutex,
        SpinLock, //
    },
    time::{
        Instant,
        Jiffies,
        Monotonic, //
    },
    uapi,
    virtio,
    workqueue::{
        self,
        DelayedWork,
        Work,
        WorkItem, //
    }, //
};

/// The name of added memory in `/proc/iomem`, as the C driver uses.
pub(crate) const RESOURCE_NAME: &CStr = c"System RAM (virtio_mem)";

/// Retry backoff after a transient failure (pages that cannot migrate yet, a busy device, no
/// memory): 1 s, doubling to 300 s, and never less than [`RETRY_COST_FACTOR`] times the longest
/// run since the last success that failed without unplugging anything.
///
/// The C driver starts at 50 s, so a page pinned for a moment keeps the host waiting that long.
/// This driver started at 50 ms, which made the first retries back to back: with pinned pages
/// in ZONE_MOVABLE a failed pass migrated for about 1.3 s (debug kernel, TCG), and the worker
/// was busy 7.9 s of the first 9. The cost floor keeps futile retries under a tenth of a CPU
/// wherever they are dear, while cheap ones (the device was busy) come back within a second.
/// See `Documentation/driver-api/virtio/virtio-mem-rs.rst`.
const RETRY_MIN_MS: u32 = 1000;
const RETRY_MAX_MS: u32 = 300_000;
const RETRY_COST_FACTOR: u64 = 10;

/// Immediate retries after `EAGAIN` (config change or NACK) before backing off; the C driver
/// retries without bound, which spins while the device keeps refusing.
const MAX_IMMEDIATE_RETRIES: u32 = 16;

/// The memory-pressure policy for unplugging online memory of `size` bytes, `used` of them in
/// use: memory that is free moves nothing and is always taken; memory in use is migrated into
/// the rest of memory only if `MemAvailable` (`avail`) less `size` stays above max(1/32 of
/// RAM (`total`), 64 MiB). The C driver migrates until allocations fail or the OOM killer
/// runs; this driver defers and retries instead.
pub(crate) fn pressure_allows(avail: u64, total: u64, size: u64, used: u64) -> bool {
    let margin = (total / 32).max(64 << 20);
    used == 0 || avail.saturating_sub(size) > margin
}

/// The last time memory pressure put unplugging off, for the status.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deferral {
    /// `MemAvailable`, in bytes.
    pub(crate) avail: u64,
    /// The range that was not taken, and how much of it was in use (whole pageblocks).
    pub(crate) size: u64,
    pub(crate) used: u64,
}

/// Milliseconds since `start`.
fn elapsed_ms(start: &Instant<Monotonic>) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(0)
}

/// Mutable state, under `VirtioMem::state`.
pub(crate) struct State {
    /// Big Block Mode: the big blocks, up to the highest that was ever used.
    pub(crate) bbs: Bbs,
    pub(crate) sizes: Sizes,
    pub(crate) clamped: Clamped,
    /// The backoff of the next retry.
    pub(crate) retry_ms: u32,
    /// The delay of the retry scheduled last.
    pub(crate) pending_ms: u32,
    /// The longest run since the last success that failed without unplugging anything, in
    /// milliseconds.
    pub(crate) fail_cost_ms: u64,
    pub(crate) last_error: i32,
    pub(crate) broken: bool,
    pub(crate) unplug_all_required: bool,
}

/// What the worker is doing, for the status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Nothing to do: the plugged size is the requested size, or plugging stopped (`ENOSPC`).
    #[default]
    Idle,
    /// In a pass: talking to the device, adding, onlining or offlining memory.
    Running,
    /// The last pass failed for now (`last_error`); a retry is scheduled in `retry_ms`.
    Waiting,
    /// The device misbehaved; the worker does nothing more.
    Broken,
}

impl Phase {
    /// The name in the status file.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Running => "running",
            Phase::Waiting => "waiting",
            Phase::Broken => "broken",
        }
    }
}

/// What a run does after a pass, as [`VirtioMem::settle`] decides.
enum Next {
    /// Another pass now: the request changed, or an immediate retry.
    Pass,
    /// Nothing more: done, stopped with `ENOSPC`, or the device is broken.
    Done,
    /// Retry after this many milliseconds.
    RetryIn(u32),
}

/// The part of [`State`] the status shows, published by the worker (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Shown {
    pub(crate) phase: Phase,
    pub(crate) sizes: Sizes,
    pub(crate) clamped: bool,
    /// The delay of the pending retry (0 unless `phase` is `Waiting`).
    pub(crate) retry_ms: u32,
    pub(crate) last_error: i32,
    /// Big Block Mode: big blocks unused, plugged only, and added.
    pub(crate) bbs: [usize; 3],
    /// Sub-Block Mode: memory blocks per state, in the order of [`MbState::ALL`], as of the
    /// last release of `mbs`.
    pub(crate) mbs: [usize; MbState::ALL.len()],
    /// Sub-Block Mode: subblocks plugged, as of the last release of `mbs`.
    pub(crate) sbs_plugged: usize,
    /// Bytes of heap the block state holds (`mbs` in Sub-Block Mode, `bbs` in Big Block
    /// Mode), as of its last change.
    pub(crate) state_bytes: usize,
    /// The last time memory pressure put unplugging off.
    pub(crate) deferral: Option<Deferral>,
    /// Passes of the worker since probe.
    pub(crate) runs: u64,
    /// Time spent in them, in milliseconds.
    pub(crate) run_ms: u64,
}

impl Shown {
    /// The status at probe: every block unused (`MbState::ALL[0]` in Sub-Block Mode).
    fn all_unused(nr_mbs: usize, nr_bbs: usize) -> Self {
        let mut mbs = [0; MbState::ALL.len()];
        mbs[0] = nr_mbs;
        Self {
            bbs: [nr_bbs, 0, 0],
            mbs,
            ..Self::default()
        }
    }
}

impl State {
    /// The state at probe. Memory left plugged by a previous kernel (kexec) is unplugged
    /// first.
    fn new(bbs: Bbs, unplug_all_required: bool) -> Self {
        Self {
            bbs,
            sizes: Sizes::default(),
            clamped: Clamped::default(),
            retry_ms: RETRY_MIN_MS,
            pending_ms: 0,
            fail_cost_ms: 0,
            last_error: 0,
            broken: false,
            unplug_all_required,
        }
    }

    /// Bytes plugged on the device, as far as the driver knows.
    pub(crate) fn plugged_bytes(&self, bb_size: u64) -> u64 {
        let n = self.bbs.nr_plugged();
        // CAST: The number of big blocks fits `u64`.
        n as u64 * bb_size
    }
}

/// One virtio-mem device.
#[pin_data]
pub(crate) struct VirtioMem {
    pub(crate) vdev: ARef<virtio::Device>,
    #[pin]
    pub(crate) link: Link,
    pub(crate) layout: Layout,
    /// Big block size.
    pub(crate) bb_size: NonZeroU64,
    /// Address of big block 0.
    pub(crate) first_bb: u64,
    /// Sub-Block Mode geometry; `None` in Big Block Mode.
    pub(crate) sbm: Option<Geometry>,
    /// Big Block Mode: big blocks in the region. `State::bbs` holds only the first ones, up to
    /// the highest that was ever used: the others are unused.
    pub(crate) nr_bbs: usize,
    /// Sub-Block Mode memory blocks, up to the highest that was ever used (empty in Big Block
    /// Mode).
    #[pin]
    pub(crate) mbs: Mutex<Mbs>,
    /// Big Block Mode: pages of the big block being removed, taken from the page allocator
    /// before offlining it (see [`Self::bbm_fake_offline`]), one token per memory block. The
    /// memory notifier lets offlining skip them.
    #[pin]
    pub(crate) bb_kept: Mutex<KVec<OfflinePages>>,
    /// Big Block Mode: the address of the big block being removed, plus one; 0 if none.
    /// Memory of it that goes online meanwhile stays offline. Set and checked under `bb_kept`.
    pub(crate) bb_removing: Atomic<u64>,
    /// Big Block Mode: the address of the memory block being onlined, plus one; 0 if none.
    /// Set and checked under `bb_kept`.
    pub(crate) bb_onlining: Atomic<u64>,
    pub(crate) nid: i32,
    pub(crate) region: Arc<SystemRamRegion>,
    pub(crate) group: Arc<MemoryGroup>,
    #[pin]
    pub(crate) state: Mutex<State>,
    /// What the status shows of `state`; taken only to copy it, never while sleeping.
    #[pin]
    pub(crate) shown: SpinLock<Shown>,
    #[pin]
    work: Work<VirtioMem, 0>,
    #[pin]
    retry: DelayedWork<VirtioMem, 1>,
    /// Set first at teardown: nothing is queued any more, and the worker stops at the next
    /// pass.
    pub(crate) stopping: Atomic<bool>,
    /// Set at teardown once the worker has stopped: onlining or offlining is refused.
    pub(crate) removing: Atomic<bool>,
    /// Set while the system is suspended: the worker does not run.
    pub(crate) frozen: Atomic<bool>,
    pub(crate) config_changed: Atomic<bool>,
    /// Bytes of added memory that are offline.
    pub(crate) offline_bytes: Atomic<u64>,
    /// Bytes freed by offlining (migration) when unplugging online memory.
    pub(crate) migrated_bytes: Atomic<u64>,
    /// Times unplugging online memory was put off because memory was short.
    pub(crate) deferred_pressure: Atomic<u64>,
}

kernel::impl_has_work! {
    impl HasWork<Self, 0> for VirtioMem { self.work }
}
kernel::impl_has_delayed_work! {
    impl HasDelayedWork<Self, 1> for VirtioMem { self.retry }
}

impl WorkItem<0> for VirtioMem {
    type Pointer = Arc<Self>;

    fn run(this: Arc<Self>) {
        this.run();
    }
}

impl WorkItem<1> for VirtioMem {
    type Pointer = Arc<Self>;

    /// The retry timer only queues the worker: two work items could otherwise run passes on two
    /// CPUs at once, the second waiting for `state` all through the first.
    fn run(this: Arc<Self>) {
        this.kick();
    }
}

/// Reads the device's layout and checks it against what this kernel can hot-add.
fn read_layout(vdev: &virtio::Device<Core<'_>>) -> Result<(RawConfig, Layout)> {
    let raw = vdev.read_config(parse_raw);
    let limits = Limits {
        pluggable: hotplug::pluggable_range(true).map(|r| (r.start(), r.last())),
        // CAST: `PAGE_SIZE` fits `u64`.
        page_size: PAGE_SIZE as u64,
    };
    let layout = validate_layout(&raw, &limits).map_err(|e| {
        dev_err!(vdev, "refusing device: {}\n", e.describe());
        e.to_error()
    })?;
    if (layout.usable_start, layout.usable_end) != (layout.addr, layout.addr + layout.region_size) {
        dev_warn!(
            vdev,
            "only {:#x}..{:#x} of the region can be hot-added\n",
            layout.usable_start,
            layout.usable_end
        );
    }
    Ok((raw, layout))
}

/// The NUMA node of the device's memory: the one of its proximity domain with
/// `VIRTIO_MEM_F_ACPI_PXM`, else the one of the region's address.
fn node_of(vdev: &virtio::Device<Core<'_>>, raw: &RawConfig, layout: &Layout) -> i32 {
    if !vdev.has_feature(uapi::VIRTIO_MEM_F_ACPI_PXM) {
        return hotplug::node_of_phys(layout.addr);
    }
    hotplug::node_of_pxm(raw.node_id.into()).unwrap_or_else(|| {
        dev_warn!(
            vdev,
            "unknown node id {}, using the region's node\n",
            raw.node_id
        );
        hotplug::node_of_phys(layout.addr)
    })
}

/// Logs the device's layout at probe, as the C driver does.
fn show_layout(
    vdev: &virtio::Device<Core<'_>>,
    layout: &Layout,
    nid: i32,
    sbm: &Option<Geometry>,
    mb_size: NonZeroU64,
    bb_size: NonZeroU64,
) {
    dev_info!(vdev, "start address: {:#x}\n", layout.addr);
    dev_info!(vdev, "region size: {:#x}\n", layout.region_size);
    dev_info!(vdev, "device block size: {:#x}\n", layout.block_size);
    dev_info!(vdev, "nid: {}\n", nid);
    match sbm {
        Some(g) => {
            dev_info!(vdev, "memory block size: {:#x}\n", mb_size.get());
            dev_info!(vdev, "subblock size: {:#x}\n", g.sb_size.get());
        }
        None => dev_info!(vdev, "big block size: {:#x}\n", bb_size),
    }
}

/// Claims the device's region in the resource tree, so that nothing else takes it while the
/// driver is bound.
fn claim_region(vdev: &virtio::Device<Core<'_>>, layout: &Layout) -> Result<Arc<SystemRamRegion>> {
    let name = CString::try_from_fmt(fmt!("{}", vdev.as_ref().name()))?;
    let range = PhysRange::new(layout.addr, layout.region_size).ok_or(EINVAL)?;
    SystemRamRegion::claim(range, name).inspect_err(|_| {
        dev_warn!(vdev, "could not reserve device region\n");
    })
}

/// Subtracts `v` from `a`, stopping at zero.
pub(crate) fn sub_saturating(a: &Atomic<u64>, v: u64) {
    let mut cur = a.load(Relaxed);
    while let Err(now) = a.cmpxchg(cur, cur.saturating_sub(v), Relaxed) {
        cur = now;
    }
}

type Cfg = uapi::virtio_mem_config;

/// Creates the device's one request queue.
pub(crate) fn find_vq(
    vdev: &virtio::Device<Core<'_>>,
) -> Result<virtio::Virtqueue<crate::protocol::Msg>> {
    let set = vdev.find_vqs(&[virtio::QueueSpec {
        name: c"guest-request",
        handler: None,
    }])?;
    virtio::Virtqueues::take(&set, 0)
}

/// Reads the whole configuration space; `read_config` repeats it until it is consistent.
pub(crate) fn parse_raw(c: &virtio::ConfigReader<'_, Cfg>) -> RawConfig {
    type C = Cfg;
    // CAST: Offsets within a 56-byte structure fit `u32`.
    let off = |o: usize| o as u32;
    RawConfig {
        block_size: c.le64(off(offset_of!(C, block_size))),
        node_id: c.le16(off(offset_of!(C, node_id))),
        addr: c.le64(off(offset_of!(C, addr))),
        region_size: c.le64(off(offset_of!(C, region_size))),
        usable_region_size: c.le64(off(offset_of!(C, usable_region_size))),
        plugged_size: c.le64(off(offset_of!(C, plugged_size))),
        requested_size: c.le64(off(offset_of!(C, requested_size))),
    }
}

impl VirtioMem {
    /// Validates the device and sets it up, without starting the worker ([`Self::start`]).
    pub(crate) fn new(
        vdev: &virtio::Device<Core<'_>>,
        bbm_block_size: u64,
        force_bbm: bool,
    ) -> Result<Arc<Self>> {
        let (raw, layout) = read_layout(vdev)?;
        let mb_size = NonZeroU64::new(hotplug::block_size()).ok_or(EINVAL)?;
        let sbm = Geometry::of(vdev, &layout, mb_size, force_bbm)?;
        let big = crate::bbm::BigBlocks::of(vdev, &layout, bbm_block_size, sbm.is_none())?;
        let (bb_size, first_bb, nr_bbs) = (big.size, big.first, big.nr);
        let nid = node_of(vdev, &raw, &layout);
        show_layout(vdev, &layout, nid, &sbm, mb_size, bb_size);

        let vq = find_vq(vdev)?;
        let region = claim_region(vdev, &layout)?;
        // The unit of onlining: a memory block in Sub-Block Mode, a big block in Big Block Mode.
        let unit = sbm.map_or(bb_size, |_| mb_size);
        let group = MemoryGroup::register_dynamic(nid, unit.get(), RESOURCE_NAME)?;
        // Memory still plugged (left by the kernel before a kexec) is unplugged before
        // anything else; the claimed region keeps it from being in use.
        if raw.plugged_size != 0 {
            dev_info!(vdev, "unplugging all memory is required\n");
        }
        // Sub-Block Mode's block state grows with the blocks in use, not with the region, as
        // the C driver's arrays do; so do the big blocks of `State::bbs`.
        let mbs = match sbm {
            Some(g) => Mbs::new(&region, &group, g.first_mb, g.mb_size, g.sbs_per_mb)?,
            None => Mbs::new(&region, &group, first_bb, bb_size, 0)?,
        };
        // In Sub-Block Mode `first_bb` need not be block-aligned; `bbs` stays empty there.
        let bbs = Bbs::new(
            &region,
            &group,
            sbm.map_or(first_bb, |g| g.first_mb),
            bb_size,
        )?;
        let le = vdev.is_little_endian();
        let shown = Shown::all_unused(sbm.map_or(0, |g| g.nr_mbs), nr_bbs);
        Arc::pin_init(
            try_pin_init!(Self {
                vdev: (&**vdev).into(),
                link <- Link::new(vq, le, layout.block_size),
                layout,
                bb_size,
                first_bb,
                sbm,
                mbs <- new_mutex!(mbs),
                bb_kept <- new_mutex!(KVec::new()),
                bb_removing: Atomic::new(0),
                bb_onlining: Atomic::new(0),
                nid,
                region,
                group,
                nr_bbs,
                state <- new_mutex!(State::new(bbs, raw.plugged_size != 0)),
                shown <- new_spinlock!(shown),
                work <- kernel::new_work!("virtio_mem_rs::work"),
                retry <- kernel::new_delayed_work!("virtio_mem_rs::retry"),
                stopping: Atomic::new(false),
                removing: Atomic::new(false),
                frozen: Atomic::new(false),
                config_changed: Atomic::new(true),
                offline_bytes: Atomic::new(0),
                migrated_bytes: Atomic::new(0),
                deferred_pressure: Atomic::new(0),
            }),
            GFP_KERNEL,
        )
    }

    /// Lets the device run and queues the first pass of the worker, which may add memory at
    /// once. Call it last in probe: once the online-page handler and the memory notifier are
    /// registered, and when nothing can fail any more, since nothing stops the worker on a
    /// failed probe.
    pub(crate) fn start(self: &Arc<Self>, vdev: &virtio::Device<Core<'_>>) {
        vdev.ready();
        self.kick();
    }

    /// Schedules the worker now.
    pub(crate) fn kick(self: &Arc<Self>) {
        if !self.stopping.load(Relaxed) && !self.frozen.load(Relaxed) {
            // Already queued is fine: it will see the latest state.
            let _ = workqueue::system_freezable().enqueue::<_, 0>(self.clone());
        }
    }

    /// The device changed its configuration (hard interrupt context).
    pub(crate) fn config_changed(self: &Arc<Self>) {
        self.config_changed.store(true, Relaxed);
        self.kick();
    }

    fn schedule_retry(self: &Arc<Self>, ms: u32) {
        if !self.stopping.load(Relaxed) && !self.frozen.load(Relaxed) {
            let delay: Jiffies = kernel::time::msecs_to_jiffies(ms);
            let _ = workqueue::system_freezable().enqueue_delayed::<_, 1>(self.clone(), delay);
        }
    }

    /// Publishes `st` for the status, with the worker's `phase`.
    pub(crate) fn publish(&self, st: &State, phase: Phase) {
        // The big blocks `bbs` does not reach yet are unused.
        let mut bbs = [self.nr_bbs.saturating_sub(st.bbs.len()), 0, 0];
        for id in 0..st.bbs.len() {
            bbs[match (st.bbs.is_unused(id), st.bbs.is_added(id)) {
                (true, _) => 0,
                (false, false) => 1,
                (false, true) => 2,
            }] += 1;
        }
        let bytes = st.bbs.heap_bytes();
        let mut shown = self.shown.lock();
        shown.phase = phase;
        shown.sizes = st.sizes;
        shown.clamped = st.clamped.any();
        shown.retry_ms = if phase == Phase::Waiting {
            st.pending_ms
        } else {
            0
        };
        shown.last_error = st.last_error;
        shown.bbs = bbs;
        if self.sbm.is_none() {
            shown.state_bytes = bytes;
        }
    }

    /// The system is suspending. Unless it suspends to idle, a device without
    /// `VIRTIO_MEM_F_PERSISTENT_SUSPEND` may lose plugged memory, so freezing with memory plugged
    /// is refused (`EPERM`), as in the C driver. Otherwise the worker stops; the bus abstraction
    /// then resets the device and revokes its queue.
    pub(crate) fn freeze(self: &Arc<Self>) -> Result {
        // Hibernation (no suspend target state) restarts the device with everything unplugged,
        // whatever it offers: refuse it with memory plugged, like the C driver's PM notifier.
        let persistent = kernel::suspend::target_is_suspend_to_idle()
            || (kernel::suspend::target_is_suspend()
                && self.vdev.has_feature(uapi::VIRTIO_MEM_F_PERSISTENT_SUSPEND));
        self.frozen.store(true, Relaxed);
        workqueue::cancel_work_sync::<_, 0>(self);
        workqueue::cancel_delayed_work_sync::<_, 1>(self);
        let plugged = self.plugged_bytes(&self.state.lock());
        if plugged != 0 && !persistent {
            dev_err!(self.vdev, "suspend refused: memory is plugged\n");
            self.frozen.store(false, Relaxed);
            self.kick();
            return Err(EPERM);
        }
        Ok(())
    }

    /// The system resumed: takes the new queue and runs the worker again.
    pub(crate) fn restore(self: &Arc<Self>, vq: virtio::Virtqueue<crate::protocol::Msg>) {
        self.link.set_queue(vq);
        self.frozen.store(false, Relaxed);
        self.config_changed.store(true, Relaxed);
        self.kick();
    }

    /// The worker: brings the plugged size to the requested size.
    fn run(self: &Arc<Self>) {
        // A pass that starts for any other reason (a new request, memory going offline) makes a
        // pending retry pointless; a failure schedules a new one.
        workqueue::cancel_delayed_work::<_, 1>(self);
        let start = Instant::<Monotonic>::now();
        let delay = self.run_passes(&start);
        let ms = elapsed_ms(&start);
        {
            let mut shown = self.shown.lock();
            shown.runs += 1;
            shown.run_ms = shown.run_ms.saturating_add(ms);
            // Stopped early: frozen, being removed, or the device went away.
            if delay.is_none() && shown.phase == Phase::Running {
                shown.phase = Phase::Idle;
            }
        }
        if let Some(d) = delay {
            self.schedule_retry(d);
        }
    }

    /// Runs passes until the plugged size is the requested one, or a pass fails. Returns the
    /// delay of the retry to schedule, if any.
    fn run_passes(self: &Arc<Self>, start: &Instant<Monotonic>) -> Option<u32> {
        let mut immediate = 0;
        let mut plugged_at_start = None;
        loop {
            if self.stopping.load(Relaxed) || self.frozen.load(Relaxed) {
                return None;
            }
            let mut st = self.state.lock();
            if st.broken {
                return None;
            }
            let mut rc = Ok(());
            if st.unplug_all_required {
                rc = self.link.unplug_all();
                if rc.is_ok() {
                    st.unplug_all_required = false;
                }
            }
            let plugged0 = *plugged_at_start.get_or_insert_with(|| self.plugged_bytes(&st));
            // Unbound meanwhile: nothing to do.
            let sizes = self.read_sizes(&mut st)?;
            if rc.is_ok() {
                rc = if self.sbm.is_some() {
                    self.sbm_pass(&sizes)
                } else {
                    self.bbm_pass(&mut st, &sizes)
                };
            }
            match self.settle(&mut st, rc, &mut immediate, plugged0, start) {
                Next::Pass => {}
                Next::Done => return None,
                Next::RetryIn(ms) => return Some(ms),
            }
        }
    }

    /// Reads the sizes from the device into `st` for a pass, logging changes as the C driver
    /// does. `None` if the device is unbound.
    fn read_sizes(&self, st: &mut State) -> Option<Sizes> {
        self.config_changed.store(false, Relaxed);
        let raw = self.link.read_config(parse_raw).ok()?;
        let (sizes, clamped) = clamp_sizes(&raw, &self.layout);
        if clamped.any() && clamped != st.clamped {
            dev_warn!(
                self.vdev,
                "device sizes out of range, clamped: {:?}\n",
                clamped
            );
        }
        st.clamped = clamped;
        if sizes.plugged != st.sizes.plugged {
            dev_info!(self.vdev, "plugged size: {:#x}\n", sizes.plugged);
        }
        if sizes.requested != st.sizes.requested {
            dev_info!(self.vdev, "requested size: {:#x}\n", sizes.requested);
        }
        st.sizes = sizes;
        self.publish(st, Phase::Running);
        Some(sizes)
    }

    /// Acts on the outcome `rc` of a pass and says what the run does next. `plugged0` is the
    /// plugged size when the run started.
    fn settle(
        &self,
        st: &mut State,
        rc: Result,
        immediate: &mut u32,
        plugged0: u64,
        start: &Instant<Monotonic>,
    ) -> Next {
        match rc {
            Ok(()) => {
                st.retry_ms = RETRY_MIN_MS;
                st.fail_cost_ms = 0;
                st.last_error = 0;
                if self.config_changed.load(Relaxed) {
                    // The request changed meanwhile: another pass.
                    Next::Pass
                } else {
                    self.publish(st, Phase::Idle);
                    Next::Done
                }
            }
            Err(e) if e == EAGAIN && *immediate < MAX_IMMEDIATE_RETRIES => {
                *immediate += 1;
                Next::Pass
            }
            Err(e) if e == ENOSPC => {
                st.last_error = e.to_errno();
                self.publish(st, Phase::Idle);
                Next::Done
            }
            Err(e) if e == EAGAIN || e == ETXTBSY || e == EBUSY || e == ENOMEM => {
                st.last_error = e.to_errno();
                // A run that got nothing done was all waste: the dearest such run since the
                // last success sets the floor. (A cheap one, kicked by memory the previous
                // run offlined, must not bring the dear retries back sooner; a run that
                // unplugged something was worth its time, and more may be free now.)
                if self.plugged_bytes(st) == plugged0 {
                    st.fail_cost_ms = st.fail_cost_ms.max(elapsed_ms(start));
                }
                let floor = st.fail_cost_ms.saturating_mul(RETRY_COST_FACTOR);
                let delay = u32::try_from(floor)
                    .map_or(RETRY_MAX_MS, |f| st.retry_ms.max(f).min(RETRY_MAX_MS));
                st.retry_ms = st.retry_ms.saturating_mul(2).min(RETRY_MAX_MS);
                st.pending_ms = delay;
                self.publish(st, Phase::Waiting);
                Next::RetryIn(delay)
            }
            Err(e) => {
                st.last_error = e.to_errno();
                st.broken = true;
                self.publish(st, Phase::Broken);
                dev_err!(
                    self.vdev,
                    "unknown error, marking device broken: {}\n",
                    e.to_errno()
                );
                Next::Done
            }
        }
    }

    /// Bytes plugged on the device, as far as the driver knows.
    pub(crate) fn plugged_bytes(&self, st: &State) -> u64 {
        if self.sbm.is_some() {
            self.sbm_plugged_bytes()
        } else {
            st.plugged_bytes(self.bb_size.get())
        }
    }

    /// Whether to take the online memory `[pfn, pfn + nr)` now, by the policy of
    /// [`pressure_allows`]. Counts the refusals and publishes the last one for the status.
    ///
    /// # Safety
    ///
    /// The range must be memory the driver added, and the driver must not remove it during the
    /// call.
    pub(crate) unsafe fn can_take_online(&self, pfn: Pfn, nr: usize) -> bool {
        let page = PAGE_SIZE as u64;
        // CAST: Page counts fit `u64`.
        let size = nr as u64 * page;
        // SAFETY: Per the safety requirements.
        let used_blocks = unsafe { pages::used_pageblocks(pfn, nr) };
        // CAST: As above. An upper bound of the memory in use: whole pageblocks.
        let used = (used_blocks as u64 * pages::pageblock_pages() as u64 * page).min(size);
        let avail = pages::available_pages() as u64 * page;
        let total = pages::total_ram_pages() as u64 * page;
        let ok = pressure_allows(avail, total, size, used);
        if !ok {
            self.deferred_pressure.fetch_add(1, Relaxed);
            self.shown.lock().deferral = Some(Deferral { avail, size, used });
        }
        ok
    }

    /// Stops the worker and removes what can be removed; memory that is still online stays,
    /// with the device region and memory group, as in the C driver.
    pub(crate) fn teardown(self: &Arc<Self>) {
        self.stopping.store(true, Relaxed);
        workqueue::cancel_work_sync::<_, 0>(self);
        workqueue::cancel_delayed_work_sync::<_, 1>(self);
        // Only now refuse onlining and offlining: a pass in flight finishes what it started,
        // such as removing a block whose memory it has just unplugged. Refusing that offline
        // would leave the block, and the device region with it, behind (the C driver sets
        // `removing` before it waits, and so can).
        self.removing.store(true, Relaxed);
        let mut st = self.state.lock();
        let mut still_added = self.sbm_teardown();
        still_added += self.bbm_teardown(&mut st);
        if still_added != 0 {
            // The leaked memory keeps the region and the memory group.
            dev_warn!(
                self.vdev,
                "device still has {} blocks of memory added; they stay\n",
                still_added
            );
        }
    }
}

#[kunit_tests(virtio_mem_rs_pressure)]
mod tests {
    use super::*;

    const M: u64 = 1 << 20;
    const G: u64 = 1 << 30;

    #[test]
    fn free_memory_is_always_taken() {
        // 2 GiB of RAM (margin 64 MiB), 150 MiB available of which the 128 MiB block is
        // free: taking it leaves 22 MiB, but moves nothing.
        assert!(pressure_allows(150 * M, 2 * G, 128 * M, 0));
    }

    #[test]
    fn memory_in_use_needs_the_margin() {
        assert!(!pressure_allows(150 * M, 2 * G, 128 * M, 2 * M));
        assert!(pressure_allows(300 * M, 2 * G, 128 * M, 128 * M));
        // The margin is 1/32 of RAM above 2 GiB: 128 MiB of 4 GiB.
        assert!(!pressure_allows(250 * M, 4 * G, 128 * M, 2 * M));
        assert!(pressure_allows(257 * M, 4 * G, 128 * M, 2 * M));
        // Nothing available at all.
        assert!(!pressure_allows(0, 4 * G, 2 * M, 2 * M));
    }
}
