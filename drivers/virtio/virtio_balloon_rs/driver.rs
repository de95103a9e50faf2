// SPDX-License-Identifier: GPL-2.0

//! The virtio bus side: ID table, features, probe, freeze/restore, unbind, and the debugfs view.

use crate::{
    balloon::{
        Hw,
        OomDeflate,
        StatsQueue,
        VirtioBalloon, //
    },
    hint::HintMsg,
    protocol::Stats,
    reporting::{
        self,
        FreePageReporter,
        ReportQueue, //
    },
};
use kernel::{
    debugfs,
    device::{
        Bound,
        Core, //
    },
    fmt,
    mm::{
        oom, page_reporting,
        shrinker::{
            self,
            ShrinkControl,
            Shrinker, //
        },
    },
    prelude::*,
    str::{
        CStr,
        CString, //
    },
    sync::{
        atomic::Relaxed,
        Arc, //
    },
    uapi,
    virtio::{
        self,
        Features,
        QueueSpec,
        VqHandler, //
    },
};

kernel::virtio_device_table!(
    VIRTIO_BALLOON_TABLE,
    [virtio::DeviceId::new(uapi::VIRTIO_ID_BALLOON)]
);

/// The C driver's OOM notifier priority.
const OOM_NOTIFY_PRIORITY: i32 = 80;

/// The stats queue's callback: the device took the buffer and wants fresh statistics.
struct StatsRequest(Arc<VirtioBalloon>);

impl VqHandler for StatsRequest {
    fn used(&self) {
        self.0.stats_requested();
    }
}

/// The queues of one binding (probe or restore).
struct Queues {
    hw: Hw,
    stats: Option<StatsQueue>,
    hint: Option<virtio::Virtqueue<HintMsg>>,
    report: Option<ReportQueue>,
}

/// Creates the queues and primes the stats queue with a first buffer, which the device returns
/// when it wants statistics.
fn setup_queues(vdev: &virtio::Device<Core<'_>>, vb: &Arc<VirtioBalloon>) -> Result<Queues> {
    let stats = vdev.has_feature(uapi::VIRTIO_BALLOON_F_STATS_VQ);
    let (specs, hint, report) = queue_specs(vb, stats)?;
    let set = vdev.find_vqs(&specs)?;
    let endian = vdev.endian();
    let hw = Hw::new(
        virtio::Virtqueues::take(&set, 0)?,
        virtio::Virtqueues::take(&set, 1)?,
        endian,
        vdev.has_feature(uapi::VIRTIO_BALLOON_F_MUST_TELL_HOST),
    )?;
    let stats = if stats {
        Some(prime_stats(
            vdev,
            virtio::Virtqueues::take(&set, 2)?,
            endian,
        )?)
    } else {
        None
    };
    let hint = match hint {
        Some(index) => Some(virtio::Virtqueues::take(&set, index)?),
        None => None,
    };
    let report = match report {
        Some(index) => Some(ReportQueue::new(virtio::Virtqueues::take(&set, index)?)?),
        None => None,
    };
    Ok(Queues {
        hw,
        stats,
        hint,
        report,
    })
}

/// The queues to create: inflate, deflate, then `stats` if asked for, and the free page hint
/// and `reporting` queues if negotiated, with the indexes of the last two.
fn queue_specs(
    vb: &Arc<VirtioBalloon>,
    stats: bool,
) -> Result<(KVec<QueueSpec>, Option<usize>, Option<usize>)> {
    let mut specs = KVec::new();
    // Adds a queue; the queues present are numbered in order, as in the C driver.
    let mut add = |name: &'static CStr, handler: Option<Arc<dyn VqHandler>>| -> Result<usize> {
        specs.push(QueueSpec { name, handler }, GFP_KERNEL)?;
        Ok(specs.len() - 1)
    };
    add(c"inflate", None)?;
    add(c"deflate", None)?;
    if stats {
        let h: Arc<dyn VqHandler> = Arc::new(StatsRequest(vb.clone()), GFP_KERNEL)?;
        add(c"stats", Some(h))?;
    }
    let hint = vb
        .hint
        .enabled
        .then(|| add(c"free_page_vq", None))
        .transpose()?;
    let report = vb.reporting.then(|| add(c"reporting", None)).transpose()?;
    Ok((specs, hint, report))
}

/// Hands the stats queue its buffer, which the device gives back when it wants statistics.
fn prime_stats(
    vdev: &virtio::Device<Core<'_>>,
    mut vq: virtio::Virtqueue<Stats>,
    endian: virtio::Endian,
) -> Result<StatsQueue> {
    vq.add(Stats::new(endian)?, GFP_KERNEL).map_err(|(e, _)| {
        dev_warn!(vdev, "add stats buffer failed: {:?}\n", e);
        e
    })?;
    vq.kick();
    Ok(StatsQueue { vq })
}

/// Gives hinted blocks back to the allocator when memory reclaim asks.
struct HintShrinker(Arc<VirtioBalloon>);

impl Shrinker for HintShrinker {
    fn count(&self, _sc: &ShrinkControl<'_>) -> usize {
        self.0.hint.shrink_count()
    }

    fn scan(&self, sc: &ShrinkControl<'_>) -> Option<usize> {
        self.0.hint.shrink_scan(sc.nr_to_scan())
    }
}

/// The shrinker that gives hinted blocks back early, with `VIRTIO_BALLOON_F_FREE_PAGE_HINT`.
fn register_hint_shrinker(
    vb: &Arc<VirtioBalloon>,
) -> Result<Option<Pin<KBox<shrinker::Registration<HintShrinker>>>>> {
    if !vb.hint.enabled {
        return Ok(None);
    }
    let reg = shrinker::Registration::new(c"virtio-balloon-rs", HintShrinker(vb.clone()));
    Ok(Some(KBox::pin_init(reg, GFP_KERNEL)?))
}

/// The OOM notifier that deflates, with `VIRTIO_BALLOON_F_DEFLATE_ON_OOM`.
fn register_oom(
    vb: &Arc<VirtioBalloon>,
) -> Result<Option<Pin<KBox<oom::Registration<OomDeflate>>>>> {
    if !vb.deflate_on_oom {
        return Ok(None);
    }
    let reg = oom::Registration::new(OOM_NOTIFY_PRIORITY, OomDeflate(vb.clone()));
    Ok(Some(KBox::pin_init(reg, GFP_KERNEL)?))
}

/// Free page reporting on queue `q`, with `VIRTIO_BALLOON_F_REPORTING`.
fn register_reporting(
    vb: &Arc<VirtioBalloon>,
    mut q: ReportQueue,
) -> Result<Pin<KBox<page_reporting::Registration<FreePageReporter>>>> {
    let capacity = q.size();
    let counters = vb.link().counters.clone();
    let reg = page_reporting::Registration::new(FreePageReporter::new(q, counters), capacity);
    KBox::pin_init(reg, GFP_KERNEL)
}

/// The driver data of one bound device.
#[pin_data]
pub(crate) struct VirtioBalloonDriver {
    _oom: Option<Pin<KBox<oom::Registration<OomDeflate>>>>,
    /// Registered with `VIRTIO_BALLOON_F_FREE_PAGE_HINT`: gives hinted blocks back early.
    _hint_shrinker: Option<Pin<KBox<shrinker::Registration<HintShrinker>>>>,
    /// Registered while bound, with `VIRTIO_BALLOON_F_REPORTING`.
    reporting: Option<Pin<KBox<page_reporting::Registration<FreePageReporter>>>>,
    #[pin]
    _status: debugfs::File<Arc<VirtioBalloon>>,
    _dir: debugfs::Dir,
    vb: Arc<VirtioBalloon>,
}

#[vtable]
impl virtio::Driver for VirtioBalloonDriver {
    type Data<'bound> = Self;
    const ID_TABLE: virtio::IdTable = &VIRTIO_BALLOON_TABLE;
    const FEATURES: &'static [u32] = &[
        uapi::VIRTIO_BALLOON_F_MUST_TELL_HOST,
        uapi::VIRTIO_BALLOON_F_STATS_VQ,
        uapi::VIRTIO_BALLOON_F_DEFLATE_ON_OOM,
        uapi::VIRTIO_BALLOON_F_FREE_PAGE_HINT,
        uapi::VIRTIO_BALLOON_F_PAGE_POISON,
        uapi::VIRTIO_BALLOON_F_REPORTING,
    ];

    fn validate(_vdev: &virtio::Device, features: &mut Features<'_>) -> Result {
        reporting::validate(features);
        Ok(())
    }

    fn probe<'bound>(
        vdev: &'bound virtio::Device<Core<'_>>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        pin_init::pin_init_scope(move || {
            let vb = VirtioBalloon::new(vdev)?;
            let Queues {
                hw,
                stats,
                hint,
                report,
            } = setup_queues(vdev, &vb)?;
            let hint_shrinker = register_hint_shrinker(&vb)?;
            let oom = register_oom(&vb)?;
            write_poison_val(vdev, &vb);
            // As in the C driver, reporting starts before the device is ready: the core waits
            // two seconds before its first report.
            let reporting = report.map(|q| register_reporting(&vb, q)).transpose()?;
            let name = CString::try_from_fmt(fmt!("virtio_balloon_rs.{}", vdev.as_ref().name()))?;
            let dir = debugfs::Dir::new(&name);
            // As the C driver: the balloon cannot wake the system up, but it handles wakeup
            // events its transport passes up (a config change, a stats request).
            vdev.as_ref().set_wakeup_capable(true);
            // Queues in before the device is ready, so no early stats request is lost.
            vb.install(hw, stats, hint)?;
            vdev.ready();
            vb.start();
            Ok(try_pin_init!(Self {
                _oom: oom,
                _hint_shrinker: hint_shrinker,
                reporting,
                _status <- dir.read_callback_file(
                    c"status",
                    vb.clone(),
                    &|vb: &Arc<VirtioBalloon>, f| show_status(vb, f)
                ),
                _dir: dir,
                vb,
            }))
        })
    }

    fn config_changed<'bound>(_vdev: &virtio::Device<Bound>, this: Pin<&Self::Data<'bound>>) {
        this.vb.changed();
    }

    fn freeze<'bound>(_vdev: &virtio::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) -> Result {
        // Like the C driver: give everything back; the host refills after resume.
        this.vb.quiesce_and_empty();
        this.uninstall_reporting();
        Ok(())
    }

    fn restore<'bound>(vdev: &virtio::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) -> Result {
        let Queues {
            hw,
            stats,
            hint,
            report,
        } = setup_queues(vdev, &this.vb)?;
        if let (Some(reg), Some(q)) = (&this.reporting, report) {
            reg.reporter().install(q);
        }
        write_poison_val(vdev, &this.vb);
        this.vb.install(hw, stats, hint)?;
        vdev.ready();
        this.vb.start();
        Ok(())
    }

    fn shutdown<'bound>(_vdev: &virtio::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) {
        // As the C driver: no work may send requests once the device is broken and reset. The
        // balloon stays inflated: the device forgets it at the reset.
        this.vb.quiesce();
        this.uninstall_reporting();
    }

    fn unbind<'bound>(_vdev: &'bound virtio::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) {
        this.vb.quiesce_and_empty();
        this.uninstall_reporting();
    }
}

impl VirtioBalloonDriver {
    /// The queues are about to go: a report in flight comes back first, later ones fail (and
    /// their pages stay unreported) until the queues are back or the registration is dropped.
    fn uninstall_reporting(&self) {
        if let Some(reg) = &self.reporting {
            reg.reporter().uninstall();
        }
    }
}

/// With `VIRTIO_BALLOON_F_PAGE_POISON`, tells the device what free pages hold (see `reporting`).
fn write_poison_val(vdev: &virtio::Device<Core<'_>>, vb: &VirtioBalloon) {
    if let Some(val) = vb.poison_val {
        vdev.write_config_le(|c: &uapi::virtio_balloon_config| &c.poison_val, val);
    }
}

/// The debugfs `status` file.
fn show_status(vb: &Arc<VirtioBalloon>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let c = &vb.link().counters;
    writeln!(f, "num_pages: {}", vb.num_pages())?;
    writeln!(f, "deflate_on_oom: {}", vb.deflate_on_oom)?;
    writeln!(f, "stats_queue: {}", vb.stats.lock().is_some())?;
    writeln!(f, "migrated: {}", c.migrated.load(Relaxed))?;
    writeln!(f, "migrate_pending: {}", c.migrate_pending.load(Relaxed))?;
    writeln!(f, "must_tell_host: {}", vb.must_tell_host)?;
    writeln!(f, "migrate_busy: {}", c.migrate_busy.load(Relaxed))?;
    writeln!(f, "oom_deflated: {}", c.oom_deflated.load(Relaxed))?;
    writeln!(f, "out_of_puff: {}", c.out_of_puff.load(Relaxed))?;
    writeln!(f, "tell_failed: {}", c.tell_failed.load(Relaxed))?;
    writeln!(f, "reporting: {}", vb.reporting)?;
    match vb.poison_val {
        Some(v) => writeln!(f, "poison_val: {v:#x}")?,
        None => writeln!(f, "poison_val: none")?,
    }
    writeln!(f, "free_page_hint: {}", vb.hint.enabled)?;
    write!(f, "{}", vb.hint.counters)?;
    writeln!(f, "reports: {}", c.reports.load(Relaxed))?;
    writeln!(f, "reported_bytes: {}", c.reported_bytes.load(Relaxed))?;
    writeln!(f, "report_failed: {}", c.report_failed.load(Relaxed))?;
    let (pending, awake) = {
        let w = vb.wakeup.lock();
        (w.pending, w.awake)
    };
    writeln!(f, "wakeup_pending: {pending:#x}")?;
    writeln!(f, "wakeup_awake: {awake}")
}
