// SPDX-License-Identifier: GPL-2.0

//! The device and the worker that plugs and unplugs its memory.
//!
//! The mode is chosen as in the C driver. In Sub-Block Mode ([`Sbm`]), used when a subblock
//! (at least a device block and a pageblock) is smaller than a memory block, memory blocks are
//! added whole and plugged in subblocks. Otherwise the driver runs in Big Block Mode ([`Bbm`]),
//! where memory is plugged and added in big blocks of at least a memory block and a device
//! block. Each mode owns its block state and implements [`BlockMode`]; this file holds what both
//! share: probe, the worker with its retries and backoff, freeze and restore, and teardown.
//!
//! Lock order: `state` is taken by the worker and teardown only, before the locks of the mode.
//! Memory notifier callbacks, which run while the worker adds or removes memory with `state`
//! held, never take it: they use atomics and the mode's locks, which the worker drops before it
//! adds, offlines or removes memory. Nor does debugfs: the worker holds `state` across device
//! requests and offlining, which can take minutes (or forever, if the device stops answering),
//! so it publishes what the status shows into [`Context::shown`], a spinlock held only to copy
//! a few words.

use crate::{
    bbm::Bbm,
    config::{
        clamp_sizes,
        validate_layout,
        Clamped,
        Layout,
        Limits,
        RawConfig,
        Sizes, //
    },
    context::{
        BlockMode,
        Context,
        Phase,
        Shown,
        RESOURCE_NAME, //
    },
    protocol::Link,
    sbm::{
        Geometry,
        Sbm, //
    },
};
use core::num::NonZeroU64;
use kernel::{
    device::Core,
    mm::hotplug::{
        self,
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
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
        Mutex, //
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

/// Milliseconds since `start`.
fn elapsed_ms(start: &Instant<Monotonic>) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(0)
}

/// The worker's state, under `VirtioMem::state`.
pub(crate) struct State {
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

impl State {
    /// The state at probe. Memory left plugged by a previous kernel (kexec) is unplugged
    /// first.
    fn new(unplug_all_required: bool) -> Self {
        Self {
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

/// The block mode of a device, chosen at probe.
pub(crate) enum Mode {
    Sbm(Pin<KBox<Sbm>>),
    Bbm(Pin<KBox<Bbm>>),
}

impl Mode {
    /// The mode as what both modes do.
    pub(crate) fn ops(&self) -> &dyn BlockMode {
        match self {
            Mode::Sbm(m) => &**m,
            Mode::Bbm(m) => &**m,
        }
    }

    /// The mode for `layout`, with memory blocks of `mb_size`, as the C driver chooses: see
    /// [`Geometry::of`]. Also returns the unit of onlining: a memory block in Sub-Block Mode, a
    /// big block in Big Block Mode.
    fn new(
        vdev: &virtio::Device<Core<'_>>,
        layout: &Layout,
        nid: i32,
        region: &Arc<SystemRamRegion>,
        bbm_block_size: u64,
        force_bbm: bool,
    ) -> Result<(Self, Arc<MemoryGroup>)> {
        let mb_size = NonZeroU64::new(hotplug::block_size()).ok_or(EINVAL)?;
        dev_info!(vdev, "start address: {:#x}\n", layout.addr);
        dev_info!(vdev, "region size: {:#x}\n", layout.region_size);
        dev_info!(vdev, "device block size: {:#x}\n", layout.block_size);
        dev_info!(vdev, "nid: {}\n", nid);
        if let Some(g) = Geometry::of(vdev, layout, mb_size, force_bbm)? {
            dev_info!(vdev, "memory block size: {:#x}\n", mb_size.get());
            dev_info!(vdev, "subblock size: {:#x}\n", g.sb_size.get());
            let group = MemoryGroup::register_dynamic(nid, mb_size.get(), RESOURCE_NAME)?;
            let sbm = KBox::pin_init(Sbm::new(region, &group, g)?, GFP_KERNEL)?;
            return Ok((Mode::Sbm(sbm), group));
        }
        let size = Bbm::size_of(vdev, layout, bbm_block_size)?;
        dev_info!(vdev, "big block size: {:#x}\n", size);
        let group = MemoryGroup::register_dynamic(nid, size.get(), RESOURCE_NAME)?;
        let bbm = Bbm::new(vdev, layout, size, region, &group)?;
        Ok((Mode::Bbm(KBox::pin_init(bbm, GFP_KERNEL)?), group))
    }
}

/// One virtio-mem device.
#[pin_data]
pub(crate) struct VirtioMem {
    /// What both modes need of the device.
    #[pin]
    pub(crate) cx: Context,
    pub(crate) mode: Mode,
    #[pin]
    state: Mutex<State>,
    #[pin]
    work: Work<VirtioMem, 0>,
    #[pin]
    retry: DelayedWork<VirtioMem, 1>,
    /// Set first at teardown: nothing is queued any more, and the worker stops at the next
    /// pass.
    stopping: Atomic<bool>,
    /// Set while the system is suspended: the worker does not run.
    frozen: Atomic<bool>,
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

/// Claims the device's region in the resource tree, so that nothing else takes it while the
/// driver is bound.
fn claim_region(vdev: &virtio::Device<Core<'_>>, layout: &Layout) -> Result<Arc<SystemRamRegion>> {
    let name = CString::try_from_fmt(fmt!("{}", vdev.as_ref().name()))?;
    let range = PhysRange::new(layout.addr, layout.region_size).ok_or(EINVAL)?;
    SystemRamRegion::claim(range, name).inspect_err(|_| {
        dev_warn!(vdev, "could not reserve device region\n");
    })
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
    RawConfig {
        block_size: c.le(|c| &c.block_size),
        node_id: c.le(|c| &c.node_id),
        addr: c.le(|c| &c.addr),
        region_size: c.le(|c| &c.region_size),
        usable_region_size: c.le(|c| &c.usable_region_size),
        plugged_size: c.le(|c| &c.plugged_size),
        requested_size: c.le(|c| &c.requested_size),
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
        let nid = node_of(vdev, &raw, &layout);
        let vq = find_vq(vdev)?;
        let region = claim_region(vdev, &layout)?;
        let (mode, group) = Mode::new(vdev, &layout, nid, &region, bbm_block_size, force_bbm)?;
        // Memory still plugged (left by the kernel before a kexec) is unplugged before
        // anything else; the claimed region keeps it from being in use.
        if raw.plugged_size != 0 {
            dev_info!(vdev, "unplugging all memory is required\n");
        }
        Arc::pin_init(
            try_pin_init!(Self {
                cx <- try_pin_init!(Context {
                    vdev: (&**vdev).into(),
                    link <- Link::new(vq, vdev.endian(), layout.block_size),
                    layout,
                    nid,
                    region,
                    group,
                    shown <- new_spinlock!(Shown::default()),
                    config_changed: Atomic::new(true),
                    removing: Atomic::new(false),
                    offline_bytes: Atomic::new(0),
                    migrated_bytes: Atomic::new(0),
                    deferred_pressure: Atomic::new(0),
                }),
                mode,
                state <- new_mutex!(State::new(raw.plugged_size != 0)),
                work <- kernel::new_work!("virtio_mem_rs::work"),
                retry <- kernel::new_delayed_work!("virtio_mem_rs::retry"),
                stopping: Atomic::new(false),
                frozen: Atomic::new(false),
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
        self.cx.config_changed.store(true, Relaxed);
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
        let mut shown = self.cx.shown.lock();
        shown.phase = phase;
        shown.sizes = st.sizes;
        shown.clamped = st.clamped.any();
        shown.retry_ms = if phase == Phase::Waiting {
            st.pending_ms
        } else {
            0
        };
        shown.last_error = st.last_error;
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
                && self
                    .cx
                    .vdev
                    .has_feature(uapi::VIRTIO_MEM_F_PERSISTENT_SUSPEND));
        self.frozen.store(true, Relaxed);
        workqueue::cancel_work_sync::<_, 0>(self);
        workqueue::cancel_delayed_work_sync::<_, 1>(self);
        let plugged = {
            let _st = self.state.lock();
            self.mode.ops().plugged_bytes()
        };
        if plugged != 0 && !persistent {
            dev_err!(self.cx.vdev, "suspend refused: memory is plugged\n");
            self.frozen.store(false, Relaxed);
            self.kick();
            return Err(EPERM);
        }
        Ok(())
    }

    /// The system resumed: takes the new queue and runs the worker again.
    pub(crate) fn restore(self: &Arc<Self>, vq: virtio::Virtqueue<crate::protocol::Msg>) {
        self.cx.link.set_queue(vq);
        self.frozen.store(false, Relaxed);
        self.cx.config_changed.store(true, Relaxed);
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
            let mut shown = self.cx.shown.lock();
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
                rc = self.cx.link.unplug_all();
                if rc.is_ok() {
                    st.unplug_all_required = false;
                }
            }
            let plugged0 = *plugged_at_start.get_or_insert_with(|| self.mode.ops().plugged_bytes());
            // Unbound meanwhile: nothing to do.
            let sizes = self.read_sizes(&mut st)?;
            if rc.is_ok() {
                rc = self.mode.ops().pass(&self.cx, &sizes);
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
        self.cx.config_changed.store(false, Relaxed);
        let raw = self.cx.link.read_config(parse_raw).ok()?;
        let (sizes, clamped) = clamp_sizes(&raw, &self.cx.layout);
        if clamped.any() && clamped != st.clamped {
            dev_warn!(
                self.cx.vdev,
                "device sizes out of range, clamped: {:?}\n",
                clamped
            );
        }
        st.clamped = clamped;
        if sizes.plugged != st.sizes.plugged {
            dev_info!(self.cx.vdev, "plugged size: {:#x}\n", sizes.plugged);
        }
        if sizes.requested != st.sizes.requested {
            dev_info!(self.cx.vdev, "requested size: {:#x}\n", sizes.requested);
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
                if self.cx.config_changed.load(Relaxed) {
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
                if self.mode.ops().plugged_bytes() == plugged0 {
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
                    self.cx.vdev,
                    "unknown error, marking device broken: {}\n",
                    e.to_errno()
                );
                Next::Done
            }
        }
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
        self.cx.removing.store(true, Relaxed);
        let _st = self.state.lock();
        let still_added = self.mode.ops().teardown(&self.cx);
        if still_added != 0 {
            // The leaked memory keeps the region and the memory group.
            dev_warn!(
                self.cx.vdev,
                "device still has {} blocks of memory added; they stay\n",
                still_added
            );
        }
    }
}
