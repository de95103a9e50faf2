// SPDX-License-Identifier: GPL-2.0

//! The virtio bus side: ID table, probe and teardown, and the debugfs view.

#[cfg(CONFIG_PROC_VMCORE)]
use crate::kdump::Kdump;
#[cfg(CONFIG_PM_SLEEP)]
use kernel::{
    suspend::{
        notifier as pm,
        PmEvent, //
    },
    sync::aref::ARef,
};

use crate::{
    bbm::Bbm,
    context::{
        Phase,
        Shown, //
    },
    device::VirtioMem,
    notifier::Notifier,
    sbm::{
        MbState,
        Sbm, //
    },
};
use kernel::{
    debugfs,
    device::{
        Bound,
        Core, //
    },
    fmt,
    mm::hotplug::{
        notifier::Registration,
        online::{
            HandlerRegistration,
            OnlineChunk,
            OnlinePageHandler, //
        },
        PhysRange, //
    },
    mm::vmcore,
    prelude::*,
    str::CString,
    sync::{
        atomic::Relaxed,
        Arc, //
    },
    uapi,
    virtio, //
};

kernel::virtio_device_table!(
    VIRTIO_MEM_TABLE,
    [virtio::DeviceId::new(uapi::VIRTIO_ID_MEM)]
);

/// Routes onlining of the device's memory to the driver: in Sub-Block Mode unplugged subblocks
/// stay offline; in Big Block Mode memory of a big block being removed does.
struct OnlineHandler(Arc<VirtioMem>);

impl OnlinePageHandler for OnlineHandler {
    fn owns(&self, range: PhysRange) -> bool {
        self.0.mode.ops().owns(&self.0.cx, range)
    }

    fn online_pages(&self, chunk: OnlineChunk) {
        self.0.mode.ops().online_pages(&self.0.cx, chunk);
    }
}

/// Refuses hibernation: when the VM restarts from the image, the device has everything
/// unplugged, so memory the image uses would be gone. As in the C driver, the veto does not
/// depend on what is plugged right now (it could change before the image is written).
#[cfg(CONFIG_PM_SLEEP)]
struct HibernationVeto(ARef<virtio::Device>);

#[cfg(CONFIG_PM_SLEEP)]
impl pm::Handler for HibernationVeto {
    fn notify(&self, event: PmEvent) -> Result {
        match event {
            PmEvent::HibernationPrepare | PmEvent::RestorePrepare => {
                dev_err!(self.0.as_ref(), "hibernation is not supported.\n");
                Err(EPERM)
            }
            _ => Ok(()),
        }
    }
}

/// The driver data of one bound device: the normal driver, or the kdump one.
pub(crate) struct VirtioMemDriver {
    mode: Mode,
}

enum Mode {
    Normal(Pin<KBox<Normal>>),
    #[cfg(CONFIG_PROC_VMCORE)]
    Kdump {
        /// Answers `/proc/vmcore` until unbind.
        _registration: Pin<KBox<vmcore::Registration<Kdump>>>,
    },
}

impl VirtioMemDriver {
    fn normal(&self) -> Option<&Normal> {
        match &self.mode {
            Mode::Normal(n) => Some(n),
            #[cfg(CONFIG_PROC_VMCORE)]
            Mode::Kdump { .. } => None,
        }
    }
}

/// In a kdump kernel: no plugging, no adding; answer `/proc/vmcore` about the region.
#[cfg(CONFIG_PROC_VMCORE)]
fn probe_kdump(vdev: &virtio::Device<Core<'_>>) -> Result<Mode> {
    let raw = vdev.read_config(crate::device::parse_raw);
    let limits = crate::config::Limits {
        // Nothing is added in a kdump kernel: only the device's own layout matters.
        pluggable: Some((0, u64::MAX)),
        // CAST: `PAGE_SIZE` fits `u64`.
        page_size: kernel::page::PAGE_SIZE as u64,
    };
    let layout = crate::config::validate_layout(&raw, &limits).map_err(|e| {
        dev_err!(vdev, "refusing device: {}\n", e.describe());
        e.to_error()
    })?;
    let vq = crate::device::find_vq(vdev)?;
    let region = crate::kdump::Region::from_layout(&layout, raw.plugged_size);
    let link = crate::protocol::Link::new(vq, vdev.endian(), layout.block_size);
    // The vmcore code may call us as soon as we are registered: the device must be ready.
    vdev.ready();
    let reg = KBox::pin_init(
        vmcore::Registration::new(Kdump::new(link, region)),
        GFP_KERNEL,
    )?;
    dev_info!(vdev, "memory hot(un)plug disabled in kdump kernel\n");
    Ok(Mode::Kdump { _registration: reg })
}

#[cfg(not(CONFIG_PROC_VMCORE))]
fn probe_kdump(vdev: &virtio::Device<Core<'_>>) -> Result<Mode> {
    dev_warn!(vdev, "disabled in kdump kernel without vmcore\n");
    Err(EBUSY)
}

/// The normal driver.
#[pin_data]
pub(crate) struct Normal {
    _online: HandlerRegistration,
    #[cfg(CONFIG_PM_SLEEP)]
    #[pin]
    _hibernation: pm::Registration<HibernationVeto>,
    // Dropped before `vm` is torn down further: no event arrives afterwards.
    #[pin]
    notifier: Registration<Notifier>,
    #[pin]
    _status: debugfs::File<Arc<VirtioMem>>,
    _dir: debugfs::Dir,
    vm: Arc<VirtioMem>,
}

#[vtable]
impl virtio::Driver for VirtioMemDriver {
    type Data<'bound> = Self;
    const ID_TABLE: virtio::IdTable = &VIRTIO_MEM_TABLE;
    const FEATURES: &'static [u32] = &[
        uapi::VIRTIO_MEM_F_ACPI_PXM,
        uapi::VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE,
        uapi::VIRTIO_MEM_F_PERSISTENT_SUSPEND,
    ];

    fn probe<'bound>(
        vdev: &'bound virtio::Device<Core<'_>>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        pin_init::pin_init_scope(move || {
            // We must not plug, unplug or add memory in a kdump kernel.
            let mode = if vmcore::is_kdump_kernel() {
                probe_kdump(vdev)?
            } else {
                Mode::Normal(Normal::new(vdev)?)
            };
            Ok(try_init!(Self { mode }))
        })
    }

    fn config_changed<'bound>(_vdev: &virtio::Device<Bound>, this: Pin<&Self::Data<'bound>>) {
        if let Some(n) = this.normal() {
            n.vm.config_changed();
        }
    }

    fn freeze<'bound>(_vdev: &virtio::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) -> Result {
        // A kdump kernel does not suspend.
        this.normal().ok_or(EBUSY)?.vm.freeze()
    }

    fn restore<'bound>(vdev: &virtio::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) -> Result {
        let n = this.normal().ok_or(EBUSY)?;
        let vq = crate::device::find_vq(vdev)?;
        vdev.ready();
        n.vm.restore(vq);
        Ok(())
    }

    fn unbind<'bound>(_vdev: &'bound virtio::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) {
        if let Some(n) = this.normal() {
            n.vm.teardown();
        }
    }
}

impl Normal {
    fn new(vdev: &virtio::Device<Core<'_>>) -> Result<Pin<KBox<Self>>> {
        let init = pin_init::pin_init_scope(move || {
            let bbm_block_size = crate::module_parameters::bbm_block_size.value();
            let force_bbm = crate::module_parameters::force_bbm.value();
            let vm = VirtioMem::new(vdev, bbm_block_size, force_bbm)?;
            // Both modes, as the C driver (`register_virtio_mem_device()`): Sub-Block Mode keeps
            // unplugged subblocks offline, Big Block Mode the memory of a big block being
            // removed.
            let h: Arc<dyn OnlinePageHandler> = Arc::new(OnlineHandler(vm.clone()), GFP_KERNEL)?;
            let online = HandlerRegistration::new(h).inspect_err(|_| {
                dev_err!(vdev, "the online page callback is taken (C virtio_mem?)\n");
            })?;
            let name = CString::try_from_fmt(fmt!("virtio_mem_rs.{}", vdev.as_ref().name()))?;
            let dir = debugfs::Dir::new(&name);
            #[cfg(CONFIG_PM_SLEEP)]
            let veto = HibernationVeto(vm.cx.vdev.clone());
            Ok(try_pin_init!(Self {
                _online: online,
                notifier <- Registration::new(0, Notifier(vm.clone())),
                // Veto hibernation as early as possible, as the C driver does.
                #[cfg(CONFIG_PM_SLEEP)]
                _hibernation <- pm::Registration::new(i32::MAX, veto),
                _status <- dir.read_callback_file(
                    c"status",
                    vm.clone(),
                    &|vm: &Arc<VirtioMem>, f| show_status(vm, f)
                ),
                _dir: dir,
                vm,
            }))
        });
        let this = KBox::pin_init(init, GFP_KERNEL)?;
        // Only now may memory be added: its onlining and offlining reach the driver.
        this.vm.start(vdev);
        Ok(this)
    }
}

/// The status file in Sub-Block Mode.
fn show_sbm(vm: &VirtioMem, sh: &Shown, sbm: &Sbm, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let (g, blocks) = (&sbm.geo, sbm.shown());
    writeln!(f, "mode: sbm")?;
    writeln!(f, "device_block_size: {:#x}", vm.cx.layout.block_size)?;
    writeln!(f, "memory_block_size: {:#x}", g.mb_size)?;
    writeln!(f, "subblock_size: {:#x}", g.sb_size)?;
    // CAST: The number of subblocks fits `u64`.
    let plugged = blocks.sbs_plugged as u64 * g.sb_size.get();
    show_common(vm, sh, plugged, blocks.state_bytes, f)?;
    for (s, n) in MbState::ALL.iter().zip(blocks.mbs) {
        writeln!(f, "blocks_{}: {}", s.name(), n)?;
    }
    show_counters(vm, sh, f)
}

/// The status file in Big Block Mode.
fn show_bbm(vm: &VirtioMem, sh: &Shown, bbm: &Bbm, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let blocks = bbm.shown();
    let [unused, plugged, added] = blocks.bbs;
    writeln!(f, "mode: bbm")?;
    writeln!(f, "device_block_size: {:#x}", vm.cx.layout.block_size)?;
    writeln!(f, "big_block_size: {:#x}", bbm.size)?;
    // CAST: The number of big blocks fits `u64`.
    let bytes = (plugged + added) as u64 * bbm.size.get();
    show_common(vm, sh, bytes, blocks.state_bytes, f)?;
    writeln!(f, "blocks_unused: {unused}")?;
    writeln!(f, "blocks_plugged: {plugged}")?;
    writeln!(f, "blocks_added: {added}")?;
    show_counters(vm, sh, f)
}

fn show_common(
    vm: &VirtioMem,
    sh: &Shown,
    plugged: u64,
    state_bytes: usize,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    let cx = &vm.cx;
    writeln!(
        f,
        "region: {:#x} {:#x}",
        cx.layout.addr, cx.layout.region_size
    )?;
    writeln!(
        f,
        "usable: {:#x} {:#x}",
        cx.layout.usable_start, cx.layout.usable_end
    )?;
    writeln!(f, "nid: {}", cx.nid)?;
    writeln!(f, "usable_size: {}", sh.sizes.usable)?;
    writeln!(f, "requested_size: {}", sh.sizes.requested)?;
    writeln!(f, "device_plugged_size: {}", sh.sizes.plugged)?;
    writeln!(f, "plugged_size: {plugged}")?;
    writeln!(f, "offline_size: {}", cx.offline_bytes.load(Relaxed))?;
    writeln!(f, "migrated_size: {}", cx.migrated_bytes.load(Relaxed))?;
    writeln!(f, "state_bytes: {state_bytes}")?;
    writeln!(
        f,
        "deferred_pressure: {}",
        cx.deferred_pressure.load(Relaxed)
    )?;
    match sh.deferral {
        None => writeln!(f, "deferred_last: none"),
        Some(d) => writeln!(
            f,
            "deferred_last: {} bytes, {} in use, with {} available",
            d.size, d.used, d.avail
        ),
    }
}

fn show_counters(vm: &VirtioMem, sh: &Shown, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let c = &vm.cx.link.counters;
    writeln!(f, "worker: {}", sh.phase.name())?;
    writeln!(f, "worker_runs: {}", sh.runs)?;
    writeln!(f, "worker_run_ms: {}", sh.run_ms)?;
    writeln!(f, "clamped: {}", sh.clamped)?;
    writeln!(f, "retry_ms: {}", sh.retry_ms)?;
    writeln!(f, "last_error: {}", sh.last_error)?;
    writeln!(f, "broken: {}", sh.phase == Phase::Broken)?;
    writeln!(
        f,
        "requests_plug: {} failed {}",
        c.plug.load(Relaxed),
        c.plug_failed.load(Relaxed)
    )?;
    writeln!(
        f,
        "requests_unplug: {} failed {}",
        c.unplug.load(Relaxed),
        c.unplug_failed.load(Relaxed)
    )?;
    writeln!(f, "requests_unplug_all: {}", c.unplug_all.load(Relaxed))?;
    writeln!(f, "requests_state: {}", c.state.load(Relaxed))
}

/// The debugfs `status` file: mode, sizes, block counts, what the worker does, request
/// counters. It never waits for the worker: it shows what the worker last published.
fn show_status(vm: &Arc<VirtioMem>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let sh = *vm.cx.shown.lock();
    match &vm.mode {
        crate::device::Mode::Sbm(sbm) => show_sbm(vm, &sh, sbm, f),
        crate::device::Mode::Bbm(bbm) => show_bbm(vm, &sh, bbm, f),
    }
}
