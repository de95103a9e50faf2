// SPDX-License-Identifier: GPL-2.0

//! The virtio bus side: ID table, features, probe, freeze/restore, unbind, and the debugfs view.

use crate::{
    balloon::{
        Hw,
        OomDeflate,
        StatsQueue,
        VirtioBalloon, //
    },
    protocol::Stats,
};
use kernel::{
    debugfs,
    device::{
        Bound,
        Core, //
    },
    fmt,
    mm::oom::OomNotifier,
    prelude::*,
    str::CString,
    sync::{
        atomic::Relaxed,
        Arc, //
    },
    uapi,
    virtio::{
        self,
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

/// Creates the queues and primes the stats queue with a first buffer, which the device returns
/// when it wants statistics.
fn setup_queues(
    vdev: &virtio::Device<Core<'_>>,
    vb: &Arc<VirtioBalloon>,
) -> Result<(Hw, Option<StatsQueue>)> {
    let stats = vdev.has_feature(uapi::VIRTIO_BALLOON_F_STATS_VQ);
    let mut specs = KVec::new();
    specs.push(
        QueueSpec {
            name: c"inflate",
            handler: None,
        },
        GFP_KERNEL,
    )?;
    specs.push(
        QueueSpec {
            name: c"deflate",
            handler: None,
        },
        GFP_KERNEL,
    )?;
    if stats {
        let h: Arc<dyn VqHandler> = Arc::new(StatsRequest(vb.clone()), GFP_KERNEL)?;
        specs.push(
            QueueSpec {
                name: c"stats",
                handler: Some(h),
            },
            GFP_KERNEL,
        )?;
    }
    let set = vdev.find_vqs(&specs)?;
    let le = vdev.is_little_endian();
    let hw = Hw::new(
        virtio::Virtqueues::take(&set, 0)?,
        virtio::Virtqueues::take(&set, 1)?,
        le,
        vdev.has_feature(uapi::VIRTIO_BALLOON_F_MUST_TELL_HOST),
    )?;
    let stats = if stats {
        let mut vq = virtio::Virtqueues::take::<Stats>(&set, 2)?;
        vq.add(Stats::new(le)?, GFP_KERNEL).map_err(|(e, _)| {
            dev_warn!(vdev, "add stats buffer failed: {:?}\n", e);
            e
        })?;
        vq.kick();
        Some(StatsQueue { vq })
    } else {
        None
    };
    Ok((hw, stats))
}

/// The driver data of one bound device.
#[pin_data]
pub(crate) struct VirtioBalloonDriver {
    _oom: Option<Pin<KBox<OomNotifier<OomDeflate>>>>,
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
    ];

    fn probe<'bound>(
        vdev: &'bound virtio::Device<Core<'_>>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        pin_init::pin_init_scope(move || {
            let vb = VirtioBalloon::new(vdev)?;
            let (hw, stats) = setup_queues(vdev, &vb)?;
            let oom = if vb.deflate_on_oom {
                Some(KBox::pin_init(
                    OomNotifier::new(OOM_NOTIFY_PRIORITY, OomDeflate(vb.clone())),
                    GFP_KERNEL,
                )?)
            } else {
                None
            };
            let name = CString::try_from_fmt(fmt!("virtio_balloon_rs.{}", vdev.as_ref().name()))?;
            let dir = debugfs::Dir::new(&name);
            // Queues in before the device is ready, so no early stats request is lost.
            vb.install(hw, stats);
            vdev.ready();
            vb.start();
            Ok(try_pin_init!(Self {
                _oom: oom,
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
        Ok(())
    }

    fn restore<'bound>(vdev: &virtio::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) -> Result {
        let (hw, stats) = setup_queues(vdev, &this.vb)?;
        this.vb.install(hw, stats);
        vdev.ready();
        this.vb.start();
        Ok(())
    }

    fn unbind<'bound>(_vdev: &'bound virtio::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) {
        this.vb.quiesce_and_empty();
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
    writeln!(f, "tell_failed: {}", c.tell_failed.load(Relaxed))
}
