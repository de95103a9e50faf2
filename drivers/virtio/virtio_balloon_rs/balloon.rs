// SPDX-License-Identifier: GPL-2.0

//! Inflating, deflating and migrating balloon pages, and the worker that follows the
//! hypervisor's target.
//!
//! Lock order: `Link::hw` (the C driver's `balloon_lock`) is held while telling the device about
//! pages. The migration callback only try-locks it, like the C driver: a migration that meets an
//! inflate or deflate in progress is retried later by the core, and an inflation that triggers
//! compaction cannot deadlock on its own lock.
//!
//! Migration tells the device in batches. The C driver sends two requests for every page it
//! migrates (inflate the new page, deflate the old one) and waits for each: offlining memory
//! that holds 100 000 balloon pages then costs 200 000 round trips to the device. Without
//! `VIRTIO_BALLOON_F_MUST_TELL_HOST` the virtio specification lets the guest reuse a page it
//! took out of the balloon before the device hears of it (5.5.6.1, "Driver Requirements: Device
//! Operation"), so [`Link::migrate`] only notes the two pages, and up to 256 pages' worth go to
//! the device in one inflate and one deflate request: when the batch is full, before any other
//! request, before the queues go away, and at the latest `FLUSH_MS` after a migration. What
//! stays true at all times:
//! - a page is never reported inflated while the guest may use it: the new page is in the
//!   balloon from the moment it is noted;
//! - the device learns about each page in the order things happened to it: a page that left
//!   the balloon and comes back into it before the batch is sent flushes the batch first
//!   (inflates of a batch are sent before its deflates), and so does a page that entered the
//!   balloon and leaves it again: the device discards the memory of a page it is told is
//!   inflated, and the guest may reuse the page as soon as it left the balloon;
//! - with `MUST_TELL_HOST` nothing is deferred: each migration is told before it completes.

use crate::counters::Counters;
use crate::hint::{
    HintMsg,
    Hinting, //
};
use crate::protocol::{
    batch_must_flush,
    Pfns,
    Stats,
    PAGES_PER_PAGE,
    PAGES_PER_REQUEST, //
};
use kernel::{
    mm::{
        balloon::{
            Balloon,
            BalloonDriver,
            BalloonPage,
            ManagedPages,
            MigrateMode,
            MigratingPage,
            PageList, //
        },
        oom,
        stats::MemStats,
    },
    new_mutex, new_spinlock_irq,
    prelude::*,
    sync::{
        aref::ARef,
        atomic::Relaxed,
        Arc,
        Mutex,
        SpinLockIrq, //
    },
    time::{
        delay::fsleep,
        Delta, //
    },
    uapi,
    virtio::{
        self,
        Endian,
        Virtqueue, //
    },
    workqueue::{
        self,
        DelayedWork,
        Work,
        WorkItem, //
    },
};

/// The longest a migrated page waits before the device hears of it (see the module docs).
const FLUSH_MS: u32 = 100;

type Cfg = uapi::virtio_balloon_config;

/// How many device pages the OOM notifier deflates per call, as in the C driver.
const OOM_NR_PAGES: usize = 256;

/// The inflate and deflate queues with their preallocated request and page list: inflating and
/// deflating allocate nothing but balloon pages, so deflating works when memory is exhausted.
pub(crate) struct Hw {
    inflate: Virtqueue<Pfns>,
    deflate: Virtqueue<Pfns>,
    req: Option<KBox<Pfns>>,
    list: PageList,
    endian: Endian,
    /// The device failed a request (`EIO`: broken; `ENODEV`: gone). From then on the driver
    /// stops inflating; deflating still gives pages back to the guest, as the C driver does
    /// after its `WARN_ON_ONCE`.
    broken: bool,
    /// `VIRTIO_BALLOON_F_MUST_TELL_HOST`: migrations are told one by one, never deferred.
    must_tell: bool,
    /// The migrations noted but not told yet: new pages to inflate and old pages to deflate,
    /// one of each per migration (see [`Hw::flush_moved`]). `None` if a failed request kept
    /// its buffer and no new one could be had: migrations are then told one by one.
    moved_in: Option<KBox<Pfns>>,
    moved_out: Option<KBox<Pfns>>,
}

impl Hw {
    pub(crate) fn new(
        inflate: Virtqueue<Pfns>,
        deflate: Virtqueue<Pfns>,
        endian: Endian,
        must_tell: bool,
    ) -> Result<Self> {
        Ok(Self {
            inflate,
            deflate,
            req: Some(Pfns::new(endian)?),
            list: PageList::new()?,
            endian,
            broken: false,
            must_tell,
            moved_in: Some(Pfns::new(endian)?),
            moved_out: Some(Pfns::new(endian)?),
        })
    }

    /// Sends the prepared request on `deflate` or inflate, and waits for the device.
    fn tell(&mut self, deflate: bool) -> Result {
        let req = self.req.take().ok_or(EIO)?;
        let q = if deflate {
            &mut self.deflate
        } else {
            &mut self.inflate
        };
        match q.exec_uninterruptible(req) {
            Ok((req, _)) => {
                self.req = Some(req);
                Ok(())
            }
            Err((e, back)) => {
                // Keep a request buffer: the one the device never got, or a new one if the
                // device kept it (it is freed when the queues are revoked).
                self.req = back.or_else(|| Pfns::new_atomic(self.endian).ok());
                if e == EIO || e == ENODEV {
                    self.broken = true;
                }
                Err(e)
            }
        }
    }

    fn request(&mut self) -> Result<&mut Pfns> {
        let req = self.req.as_deref_mut().ok_or(EAGAIN)?;
        req.clear();
        Ok(req)
    }

    /// Notes the migration of `old` to `new` for [`Self::flush_moved`]. Returns `None` if
    /// migrations must be told one by one (`MUST_TELL_HOST`, or no batch buffers).
    fn defer_moved(&mut self, new: usize, old: usize, c: &Counters) -> Option<Result> {
        if self.must_tell {
            return None;
        }
        let (inb, outb) = (self.moved_in.as_deref()?, self.moved_out.as_deref()?);
        if batch_must_flush(inb, outb, new, old) {
            self.flush_moved(c);
        }
        let (inb, outb) = (
            self.moved_in.as_deref_mut()?,
            self.moved_out.as_deref_mut()?,
        );
        if !inb.push_page(new) {
            // A frame number the protocol cannot express: this page can never move.
            return Some(Err(ENOSPC));
        }
        if !outb.push_page(old) {
            // Not reached: `old` fitted when it was inflated, and both batches grow together.
            // The device then keeps `old` in its balloon, as after a failed deflate.
            c.tell_failed.fetch_add(1, Relaxed);
        }
        c.migrate_pending.fetch_add(1, Relaxed);
        Some(Ok(()))
    }

    /// Tells the device about the migrations noted by [`Self::defer_moved`]: inflates the new
    /// pages, then deflates the old ones. Called before every other request, so that the
    /// device learns about each page in order, and before the queues go away.
    fn flush_moved(&mut self, c: &Counters) {
        let n = [&self.moved_in, &self.moved_out]
            .iter()
            .map(|b| b.as_deref().map_or(0, Pfns::nr_pages))
            .max()
            .unwrap_or(0);
        if n == 0 {
            return;
        }
        // A broken device cannot be told; the pages moved anyway, as in the C driver.
        let inflated = !self.broken && self.send_moved(false).is_ok();
        let deflated = !self.broken && self.send_moved(true).is_ok();
        // CAST: `usize` fits `u64`.
        let n = n as u64;
        if inflated && deflated {
            c.migrated.fetch_add(n, Relaxed);
        } else {
            c.tell_failed.fetch_add(n, Relaxed);
        }
        c.migrate_pending.store(0, Relaxed);
        for b in [&mut self.moved_in, &mut self.moved_out] {
            if let Some(b) = b.as_deref_mut() {
                b.clear();
            }
        }
    }

    /// Sends the batch of new (inflate) or old (deflate) pages through [`Self::tell`].
    fn send_moved(&mut self, deflate: bool) -> Result {
        let batch = if deflate {
            &mut self.moved_out
        } else {
            &mut self.moved_in
        };
        // `tell` sends `req`: lend it the batch. If the device kept the buffer, `tell` left a
        // new one (or none) in its place, which becomes the batch.
        core::mem::swap(&mut self.req, batch);
        let res = self.tell(deflate);
        let batch = if deflate {
            &mut self.moved_out
        } else {
            &mut self.moved_in
        };
        core::mem::swap(&mut self.req, batch);
        res
    }
}

/// The device side of the balloon, shared with the migration callback.
pub(crate) struct Link {
    /// `None` while the device is frozen or after unbind.
    pub(crate) hw: Arc<Mutex<Option<Hw>>>,
    pub(crate) counters: Arc<Counters>,
    /// Sends the noted migrations `FLUSH_MS` after they were noted.
    flusher: Arc<Flusher>,
}

/// The delayed work that sends noted migrations the device has not heard of yet.
#[pin_data]
pub(crate) struct Flusher {
    hw: Arc<Mutex<Option<Hw>>>,
    counters: Arc<Counters>,
    #[pin]
    work: DelayedWork<Flusher, 0>,
}

kernel::impl_has_delayed_work! {
    impl HasDelayedWork<Self, 0> for Flusher { self.work }
}

impl WorkItem<0> for Flusher {
    type Pointer = Arc<Self>;

    fn run(this: Arc<Self>) {
        if let Some(hw) = (*this.hw.lock()).as_mut() {
            hw.flush_moved(&this.counters);
        }
    }
}

impl BalloonDriver for Link {
    fn migrate(
        &self,
        new: &MigratingPage<'_>,
        old: &MigratingPage<'_>,
        _mode: MigrateMode,
    ) -> Result {
        // The migrating task is being signalled: typically a memory offline killed from user
        // space, which holds the hotplug locks until it notices. With a signal pending, the
        // device exchange below polls instead of sleeping, two requests a page: leave the page
        // where it is, and let the offline stop now.
        if kernel::current!().signal_pending() {
            self.counters.migrate_busy.fetch_add(1, Relaxed);
            return Err(EAGAIN);
        }
        // Like the C driver: never wait for an inflate or deflate in progress.
        let Some(mut guard) = self.hw.try_lock() else {
            self.counters.migrate_busy.fetch_add(1, Relaxed);
            return Err(EAGAIN);
        };
        let hw = (*guard).as_mut().ok_or(EAGAIN)?;
        if hw.broken {
            // Nobody to tell: the page moves, as in the C driver (its tell_host() only warns).
            self.counters.tell_failed.fetch_add(1, Relaxed);
            return Ok(());
        }
        if let Some(res) = hw.defer_moved(new.pfn(), old.pfn(), &self.counters) {
            res?;
            // Queued while `hw` is held and set: teardown takes `hw` away, then cancels.
            let _ = workqueue::system_freezable().enqueue_delayed::<_, 0>(
                self.flusher.clone(),
                kernel::time::msecs_to_jiffies(FLUSH_MS),
            );
            return Ok(());
        }
        // Inflate the new page first, then deflate the old one: the device never sees the
        // balloon smaller than it is.
        if !hw.request()?.push_page(new.pfn()) {
            // A frame number the protocol cannot express: this page can never move.
            return Err(ENOSPC);
        }
        hw.tell(false).inspect_err(|_| {
            self.counters.tell_failed.fetch_add(1, Relaxed);
        })?;
        if hw.request()?.push_page(old.pfn()) && hw.tell(true).is_ok() {
            self.counters.migrated.fetch_add(1, Relaxed);
        } else {
            // The device keeps both; the old page is the guest's again either way, as in C.
            self.counters.tell_failed.fetch_add(1, Relaxed);
        }
        Ok(())
    }

    fn release(&self, page: &BalloonPage) {
        // Not reached: unbind and freeze deflate everything while the queues are there, and
        // the balloon is dropped after unbind. Without queues the device was reset and forgot
        // its balloon: nothing to tell.
        let mut guard = self.hw.lock();
        let Some(hw) = (*guard).as_mut() else {
            return;
        };
        hw.flush_moved(&self.counters);
        let told = !hw.broken
            && hw.request().is_ok_and(|r| r.push_page(page.pfn()))
            && hw.tell(true).is_ok();
        if !told {
            self.counters.tell_failed.fetch_add(1, Relaxed);
        }
    }
}

/// The stats queue and its buffer.
pub(crate) struct StatsQueue {
    pub(crate) vq: Virtqueue<Stats>,
}

/// Wakeup events queued for the size worker (a config change).
const WAKEUP_ADJUST: u32 = 1 << 0;
/// Wakeup events queued for the stats worker (a stats request).
const WAKEUP_STATS: u32 = 1 << 1;

/// The wakeup events queued and not yet handled, as the C driver's `wakeup_signal_mask`, and
/// whether the device keeps the system awake for them.
#[derive(Default)]
pub(crate) struct Wakeup {
    pub(crate) pending: u32,
    pub(crate) awake: bool,
}

/// One virtio-balloon device.
#[pin_data]
pub(crate) struct VirtioBalloon {
    pub(crate) vdev: ARef<virtio::Device>,
    #[pin]
    pub(crate) balloon: Balloon<Link>,
    #[pin]
    pub(crate) stats: Mutex<Option<StatsQueue>>,
    /// No new work once set (freeze, unbind). A lock, not an atomic: checking it and queueing
    /// work (in interrupt context) must not interleave with setting it and cancelling the work.
    #[pin]
    stop: SpinLockIrq<bool>,
    /// Taken inside `stop`, and in interrupt context.
    #[pin]
    pub(crate) wakeup: SpinLockIrq<Wakeup>,
    /// The worker's pages between allocation and inflation.
    #[pin]
    fill_list: Mutex<PageList>,
    pub(crate) deflate_on_oom: bool,
    /// `VIRTIO_BALLOON_F_MUST_TELL_HOST` was negotiated.
    pub(crate) must_tell_host: bool,
    /// `VIRTIO_BALLOON_F_REPORTING` was negotiated: free memory is reported.
    pub(crate) reporting: bool,
    /// With `VIRTIO_BALLOON_F_PAGE_POISON`, what free pages hold (the config's `poison_val`).
    pub(crate) poison_val: Option<u32>,
    /// Free page hinting (`VIRTIO_BALLOON_F_FREE_PAGE_HINT`).
    #[pin]
    pub(crate) hint: Hinting,
    #[pin]
    size_work: Work<VirtioBalloon, 0>,
    #[pin]
    stats_work: Work<VirtioBalloon, 1>,
    #[pin]
    hint_work: Work<VirtioBalloon, 2>,
}

kernel::impl_has_work! {
    impl HasWork<Self, 0> for VirtioBalloon { self.size_work }
    impl HasWork<Self, 1> for VirtioBalloon { self.stats_work }
    impl HasWork<Self, 2> for VirtioBalloon { self.hint_work }
}

impl WorkItem<0> for VirtioBalloon {
    type Pointer = Arc<Self>;

    fn run(this: Arc<Self>) {
        this.wakeup_taken(WAKEUP_ADJUST);
        this.update_size();
        // A requeue queued the event again: the system stays awake until the target is met.
        this.wakeup_finish();
    }
}

impl WorkItem<1> for VirtioBalloon {
    type Pointer = Arc<Self>;

    fn run(this: Arc<Self>) {
        this.wakeup_taken(WAKEUP_STATS);
        this.send_stats();
        this.wakeup_finish();
    }
}

impl WorkItem<2> for VirtioBalloon {
    type Pointer = Arc<Self>;

    fn run(this: Arc<Self>) {
        this.hint.run();
    }
}

impl VirtioBalloon {
    /// The device's balloon, without queues yet (see [`Self::resume`]).
    pub(crate) fn new(vdev: &virtio::Device<kernel::device::Core<'_>>) -> Result<Arc<Self>> {
        let deflate_on_oom = vdev.has_feature(uapi::VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
        // With DEFLATE_ON_OOM the guest may take the pages back at any time: they stay in
        // MemTotal, as in the C driver.
        let managed = if deflate_on_oom {
            ManagedPages::Keep
        } else {
            ManagedPages::Adjust
        };
        let hw = Arc::pin_init(new_mutex!(None), GFP_KERNEL)?;
        let counters = Arc::new(Counters::new(), GFP_KERNEL)?;
        let (hw2, counters2) = (hw.clone(), counters.clone());
        let flusher = Arc::pin_init(
            pin_init!(Flusher {
                hw: hw2,
                counters: counters2,
                work <- kernel::new_delayed_work!("virtio_balloon_rs::flush"),
            }),
            GFP_KERNEL,
        )?;
        let link = Link {
            hw,
            counters,
            flusher,
        };
        Arc::pin_init(
            try_pin_init!(Self {
                vdev: (&**vdev).into(),
                balloon <- Balloon::new(managed, link),
                stats <- new_mutex!(None),
                stop <- new_spinlock_irq!(true),
                wakeup <- new_spinlock_irq!(Wakeup::default()),
                fill_list <- new_mutex!(PageList::new()?),
                deflate_on_oom,
                must_tell_host: vdev.has_feature(uapi::VIRTIO_BALLOON_F_MUST_TELL_HOST),
                reporting: vdev.has_feature(uapi::VIRTIO_BALLOON_F_REPORTING),
                poison_val: vdev
                    .has_feature(uapi::VIRTIO_BALLOON_F_PAGE_POISON)
                    .then(crate::reporting::poison_val),
                hint <- Hinting::new(
                    vdev.has_feature(uapi::VIRTIO_BALLOON_F_FREE_PAGE_HINT),
                    vdev.endian(),
                ),
                size_work <- kernel::new_work!("virtio_balloon_rs::size"),
                stats_work <- kernel::new_work!("virtio_balloon_rs::stats"),
                hint_work <- kernel::new_work!("virtio_balloon_rs::hint"),
            }),
            GFP_KERNEL,
        )
    }

    pub(crate) fn link(&self) -> &Link {
        self.balloon.data()
    }

    /// Device pages in the balloon (the C driver's `num_pages`).
    pub(crate) fn num_pages(&self) -> usize {
        self.balloon.len() * PAGES_PER_PAGE
    }

    /// The host's target in device pages, rounded up to whole guest pages; `None` once the
    /// queues are gone.
    fn target(&self, hw: &mut Hw) -> Option<usize> {
        // The balloon config space is little-endian even for legacy devices.
        let pages = hw
            .inflate
            .read_config(|c: &virtio::ConfigReader<'_, Cfg>| c.le(|c| &c.num_pages))
            .ok()?;
        // CAST: `u32` fits `usize`.
        let pages = pages as usize;
        Some(pages.next_multiple_of(PAGES_PER_PAGE))
    }

    /// Tells the device how many pages the balloon holds (`actual`).
    fn report_actual(&self, hw: &mut Hw) {
        // CAST: The balloon cannot hold more than `u32::MAX` device pages: the target is a
        // `u32` and inflation stops there.
        let n = self.num_pages().min(u32::MAX as usize) as u32;
        let _ = hw.inflate.write_config_le(|c: &Cfg| &c.actual, n);
    }

    /// Inflates by up to one request's worth; returns the device pages added.
    fn fill(&self, want: usize) -> usize {
        let want = want.div_ceil(PAGES_PER_PAGE).min(PAGES_PER_REQUEST);
        // Only the worker fills; its page list was allocated at probe, so inflating allocates
        // nothing but the (__GFP_NORETRY) balloon pages themselves.
        let mut guard = self.fill_list.lock();
        let pages = &mut *guard;
        // Allocate outside the balloon lock: allocation may compact, and compaction may migrate
        // our own balloon pages, which needs the lock.
        while pages.len() < want {
            let Some(page) = BalloonPage::alloc() else {
                let n = self.link().counters.out_of_puff.fetch_add(1, Relaxed) + 1;
                // Rate-limited: the worker retries every 200 ms while the target is out of reach.
                if n.is_power_of_two() {
                    dev_info!(
                        self.vdev.as_ref(),
                        "Out of puff! Can't get {} pages ({} times)\n",
                        PAGES_PER_PAGE,
                        n
                    );
                }
                // As the C driver: at least 1/5 s before trying again.
                fsleep(Delta::from_millis(200));
                break;
            };
            pages.push(page);
        }
        let mut guard = self.link().hw.lock();
        let Some(hw) = (*guard).as_mut() else {
            // Frozen or unbound: the pages go back to the guest.
            while pages.pop().is_some() {}
            return 0;
        };
        hw.flush_moved(&self.link().counters);
        let Hw {
            req, list, broken, ..
        } = hw;
        let Some(req) = req.as_deref_mut().filter(|_| !*broken) else {
            while pages.pop().is_some() {}
            return 0;
        };
        req.clear();
        let mut n = 0;
        while let Some(page) = pages.pop() {
            if !req.push_page(page.pfn()) {
                // Cannot be told to the device; the page goes back to the guest.
                continue;
            }
            list.push(page);
            n += PAGES_PER_PAGE;
        }
        self.balloon.enqueue_list(list);
        if n != 0 && hw.tell(false).is_err() {
            self.link().counters.tell_failed.fetch_add(1, Relaxed);
        }
        n
    }

    /// Deflates by up to one request's worth (and at most what the balloon holds); returns the
    /// device pages given back. The device learns about the pages before the guest gets them
    /// back (`VIRTIO_BALLOON_F_MUST_TELL_HOST`).
    pub(crate) fn leak(&self, want: usize) -> usize {
        let mut guard = self.link().hw.lock();
        let Some(hw) = (*guard).as_mut() else {
            return 0;
        };
        self.leak_locked(hw, want)
    }

    fn leak_locked(&self, hw: &mut Hw, want: usize) -> usize {
        hw.flush_moved(&self.link().counters);
        let want = want
            .min(self.num_pages())
            .div_ceil(PAGES_PER_PAGE)
            .min(PAGES_PER_REQUEST);
        let got = self.balloon.dequeue_list(&mut hw.list, want);
        if got == 0 {
            return 0;
        }
        // Tell the device first (MUST_TELL_HOST). Every pfn fitted when its page was inflated,
        // and `want` is at most one request. A device that is broken or gone cannot be told;
        // like the C driver, the guest takes its pages back anyway (the device is reset before
        // it could use them again).
        let told = match hw.req.as_deref_mut().filter(|_| !hw.broken) {
            Some(req) => {
                req.clear();
                hw.list.pfns().all(|pfn| req.push_page(pfn)) && hw.tell(true).is_ok()
            }
            None => false,
        };
        if !told {
            self.link().counters.tell_failed.fetch_add(1, Relaxed);
        }
        // Give the pages back to the guest.
        while hw.list.pop().is_some() {}
        got * PAGES_PER_PAGE
    }

    /// Queues work item `ID` unless the driver is stopping. A size change or a stats request
    /// is a wakeup event, as in the C driver: the system stays awake until the worker handled
    /// it, if user space enabled wakeup for the device (`power/wakeup`).
    fn queue<const ID: u64>(self: &Arc<Self>)
    where
        Self: WorkItem<ID, Pointer = Arc<Self>> + workqueue::HasWork<Self, ID>,
    {
        let stop = self.stop.lock();
        if !*stop {
            match ID {
                0 => self.wakeup_start(WAKEUP_ADJUST),
                1 => self.wakeup_start(WAKEUP_STATS),
                _ => {}
            }
            let _ = workqueue::system_freezable().enqueue::<_, ID>(self.clone());
        }
    }

    /// Events of `mask` are queued: keep the system awake.
    fn wakeup_start(&self, mask: u32) {
        let mut w = self.wakeup.lock();
        w.pending |= mask;
        if !w.awake {
            w.awake = true;
            self.vdev.as_ref().stay_awake();
        }
    }

    /// A worker took the events of `mask`; one queued from now on runs it again.
    fn wakeup_taken(&self, mask: u32) {
        self.wakeup.lock().pending &= !mask;
    }

    /// A worker is done: let the system suspend unless events are still queued.
    fn wakeup_finish(&self) {
        let mut w = self.wakeup.lock();
        if w.pending == 0 && w.awake {
            w.awake = false;
            self.vdev.as_ref().relax();
        }
    }

    /// The worker: move the balloon toward the host's target by one request, then requeue.
    fn update_size(self: &Arc<Self>) {
        let target = {
            let mut guard = self.link().hw.lock();
            let Some(hw) = (*guard).as_mut() else {
                return;
            };
            if hw.broken {
                return;
            }
            self.target(hw)
        };
        let Some(target) = target else {
            return;
        };
        let have = self.num_pages();
        let done = if target > have {
            self.fill(target - have)
        } else if target < have {
            self.leak(have - target)
        } else {
            0
        };
        let broken = match (*self.link().hw.lock()).as_mut() {
            Some(hw) => {
                self.report_actual(hw);
                hw.broken
            }
            None => true,
        };
        if target != have && !broken {
            if done == 0 && target < have {
                // Pages isolated for migration come back shortly.
                fsleep(Delta::from_millis(10));
            }
            // (`fill` already slept 200 ms when it could not allocate.)
            self.queue::<0>();
        }
    }

    /// Config change: the target moved, or the free page hint command id.
    pub(crate) fn changed(self: &Arc<Self>) {
        self.queue::<0>();
        if self.hint.enabled {
            self.hint.changed();
            self.queue::<2>();
        }
    }

    /// The device used the stats buffer: it wants fresh statistics.
    pub(crate) fn stats_requested(self: &Arc<Self>) {
        self.queue::<1>();
    }

    fn send_stats(&self) {
        let mut guard = self.stats.lock();
        let Some(q) = (*guard).as_mut() else {
            return;
        };
        let Some((mut buf, _)) = q.vq.get_buf() else {
            return;
        };
        buf.fill(&MemStats::snapshot());
        if q.vq.add(buf, GFP_KERNEL).is_ok() {
            q.vq.kick();
        }
    }

    /// Stops the workers (shutdown) and gives the queues up: no request is sent afterwards,
    /// neither by the workers nor by a migration or the OOM notifier, which find no device (as
    /// C unregisters its OOM notifier). Noted migrations are told while the device still
    /// listens.
    pub(crate) fn quiesce(self: &Arc<Self>) {
        self.stop_work();
        if let Some(mut hw) = self.link().hw.lock().take() {
            hw.flush_moved(&self.link().counters);
        }
        workqueue::cancel_delayed_work_sync::<_, 0>(&self.link().flusher);
    }

    /// Stops the size and stats workers.
    fn stop_work(self: &Arc<Self>) {
        // Under the lock: no interrupt queues work after this, so the cancels are final.
        *self.stop.lock() = true;
        workqueue::cancel_work_sync::<_, 0>(self);
        workqueue::cancel_work_sync::<_, 1>(self);
        workqueue::cancel_work_sync::<_, 2>(self);
        // Cancelled work handles no event: unlike the C driver, do not keep the system awake
        // for it (the next start queues what the device still wants).
        self.wakeup.lock().pending = 0;
        self.wakeup_finish();
    }

    /// Stops the workers and deflates the balloon completely (freeze and unbind), then reports
    /// the empty balloon and gives the queues up.
    pub(crate) fn quiesce_and_empty(self: &Arc<Self>) {
        self.stop_work();
        loop {
            let mut guard = self.link().hw.lock();
            let Some(hw) = (*guard).as_mut() else {
                break;
            };
            if self.balloon.is_empty() {
                hw.flush_moved(&self.link().counters);
                self.report_actual(hw);
                *guard = None;
                break;
            }
            if self.leak_locked(hw, usize::MAX) == 0 {
                // Pages isolated for migration: let the migration finish (it only try-locks).
                drop(guard);
                fsleep(Delta::from_millis(1));
            }
        }
        // Migrations note nothing once `hw` is gone; one noted before was sent above.
        workqueue::cancel_delayed_work_sync::<_, 0>(&self.link().flusher);
        // Dropping the queues also drops the stats handler's reference to us.
        *self.stats.lock() = None;
        self.hint.uninstall();
    }

    /// Probed or resumed, before the device is ready: the queues are in, and the device is told
    /// the (empty) balloon size. Work may be queued from now on.
    pub(crate) fn install(
        &self,
        mut hw: Hw,
        stats: Option<StatsQueue>,
        hint: Option<Virtqueue<HintMsg>>,
    ) -> Result {
        if let Some(vq) = hint {
            self.hint.install(vq)?;
        }
        self.report_actual(&mut hw);
        *self.stats.lock() = stats;
        *self.link().hw.lock() = Some(hw);
        *self.stop.lock() = false;
        Ok(())
    }

    /// The device is ready: follow the target, and answer a stats request that came early.
    pub(crate) fn start(self: &Arc<Self>) {
        self.queue::<0>();
        self.queue::<1>();
        if self.hint.enabled {
            self.queue::<2>();
        }
    }
}

/// Deflates on OOM (`VIRTIO_BALLOON_F_DEFLATE_ON_OOM`).
pub(crate) struct OomDeflate(pub(crate) Arc<VirtioBalloon>);

impl oom::Handler for OomDeflate {
    fn free_pages(&self) -> usize {
        let vb = &self.0;
        let mut guard = vb.link().hw.lock();
        let Some(hw) = (*guard).as_mut() else {
            return 0;
        };
        let freed = vb.leak_locked(hw, OOM_NR_PAGES);
        vb.report_actual(hw);
        drop(guard);
        vb.link()
            .counters
            .oom_deflated
            .fetch_add(freed as u64, Relaxed);
        freed / PAGES_PER_PAGE
    }
}
