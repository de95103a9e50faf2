// SPDX-License-Identifier: GPL-2.0

//! Rust memory notifier sample.
//!
//! Records every memory hotplug event, per memory block, and shows the log in debugfs at
//! `/sys/kernel/debug/rust_memory_notifier/events`, one line per event:
//! `<seq> memory<N> <EVENT>`.
//!
//! Parameters:
//! - `veto_online=N` / `veto_offline=N`: refuse onlining / offlining of memory block `N` with
//!   error `veto_errno` (default 16, `EBUSY`); -1 (the default) vetoes nothing.
//! - `online_handler=true`: route onlining of all memory through a Rust online-page handler
//!   that counts the pages it onlines (`/sys/kernel/debug/rust_memory_notifier/onlined_pages`).
//! - `keep_pages=N`: with the handler, keep the first `N` pages of every onlined memory block
//!   offline, owned by the module.
//!
//! `fake_offline` in the same directory exercises unplugging of online memory: writing
//! `<pfn> <nr>` takes those pages (all in one online memory block) from the page allocator and
//! makes them driver-owned offline pages, as virtio-mem does before it unplugs memory; writing
//! `online` gives every owned page back. Reading it lists the owned ranges. The notifier keeps
//! owned pages out of the way of offlining: their block can still be offlined, and they are
//! gone with it.

use kernel::{
    debugfs,
    fmt,
    mm::hotplug::{
        self,
        notifier::{
            self,
            Event,
            Notification,
            NotifyResult,
            Registration, //
        },
        online::{
            HandlerRegistration,
            OnlineChunk,
            OnlinePageHandler, //
        },
        pages::{
            self,
            ContigRange,
            OfflinePages, //
        },
        PhysRange, //
    },
    new_mutex,
    page::PAGE_SHIFT,
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
        Mutex, //
    },
    uaccess::UserSliceReader, //
};

module! {
    type: RustMemoryNotifier,
    name: "rust_memory_notifier",
    authors: ["virtio-mem-rs contributors"],
    description: "Rust memory notifier sample",
    license: "GPL",
    params: {
        veto_online: i64 {
            default: -1,
            description: "Memory block whose onlining is vetoed (-1: none)",
        },
        veto_offline: i64 {
            default: -1,
            description: "Memory block whose offlining is vetoed (-1: none)",
        },
        veto_errno: i64 {
            default: 16,
            description: "Error returned by a veto (positive errno, default EBUSY)",
        },
        online_handler: bool {
            default: false,
            description: "Online memory through a counting Rust online-page handler",
        },
        keep_pages: i64 {
            default: 0,
            description: "With online_handler: pages kept offline at the start of each block",
        },
    },
}

/// Most events kept; older ones are dropped.
const MAX_EVENTS: usize = 4096;

/// One recorded event.
#[derive(Clone, Copy)]
struct Record {
    seq: u64,
    block: u64,
    event: Event,
}

/// Everything the notifier, the online-page handler and the debugfs files share.
#[pin_data]
struct State {
    #[pin]
    events: Mutex<KVec<Record>>,
    next_seq: Atomic<u64>,
    /// Driver-owned offline pages, each range within one memory block.
    #[pin]
    offline: Mutex<KVec<OfflinePages>>,
    onlined_pages: Atomic<u64>,
    block_pages: usize,
    keep_pages: usize,
    veto_online: Option<u64>,
    veto_offline: Option<u64>,
    veto_error: Error,
}

impl State {
    fn block_of(&self, pfn: usize) -> u64 {
        // CAST: A block number fits `u64`.
        pfn.checked_div(self.block_pages).unwrap_or(0) as u64
    }

    fn show_events(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in self.events.lock().iter() {
            writeln!(f, "{} memory{} {}", r.seq, r.block, r.event.name())?;
        }
        Ok(())
    }

    fn show_offline(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in self.offline.lock().iter() {
            writeln!(f, "{} {} {}", p.pfn(), p.nr_pages(), p.never_onlined())?;
        }
        Ok(())
    }

    /// Handles a write to `fake_offline`: `<pfn> <nr>` or `online`.
    fn write_offline(&self, reader: &mut UserSliceReader) -> Result {
        let mut buf = [0u8; 64];
        let len = reader.len().min(buf.len());
        reader.read_slice(&mut buf[..len])?;
        let text = core::str::from_utf8(&buf[..len])
            .map_err(|_| EINVAL)?
            .trim();
        if text == "online" {
            let mut offline = self.offline.lock();
            while let Some(p) = offline.pop() {
                // SAFETY: The sample never unplugs memory, so its pages stay accessible; tokens
                // of blocks that went offline were consumed by the notifier under this lock.
                unsafe { p.online() };
            }
            return Ok(());
        }
        let mut it = text.split_whitespace();
        let (Some(pfn), Some(nr), None) = (it.next(), it.next(), it.next()) else {
            return Err(EINVAL);
        };
        let pfn: usize = pfn.parse().map_err(|_| EINVAL)?;
        let nr: usize = nr.parse().map_err(|_| EINVAL)?;
        let last = pfn
            .checked_add(nr)
            .and_then(|e| e.checked_sub(1))
            .ok_or(EINVAL)?;
        if nr == 0 || self.block_of(pfn) != self.block_of(last) {
            return Err(EINVAL);
        }
        // Holding `offline` keeps the block online: offlining waits for it in our notifier.
        let mut offline = self.offline.lock();
        if !pages::pfn_is_online(pfn) || !pages::pfn_is_online(last) {
            return Err(EINVAL);
        }
        offline.reserve(1, GFP_KERNEL)?;
        // SAFETY: `pfn` and `last` are online and stay so while we hold `offline`.
        if !unsafe { pages::same_zone(pfn, last) } {
            return Err(EINVAL);
        }
        // SAFETY: The range is online memory of one memory block and one zone (checked above),
        // and stays online while we hold `offline`.
        let range = unsafe { ContigRange::alloc(pfn, nr, GFP_KERNEL) }?;
        offline
            .push_within_capacity(range.into_offline())
            .map_err(|_| ENOMEM)?;
        Ok(())
    }
}

/// The memory notifier: logs, vetoes what the parameters ask for, and keeps owned offline pages
/// out of the way of offlining.
struct Recorder(Arc<State>);

impl notifier::Handler for Recorder {
    fn notify(&self, n: &Notification<'_>) -> NotifyResult {
        let (st, event, range) = (&self.0, n.event(), n.range());
        // The core notifies one memory block at a time.
        let block = st.block_of(range.start_pfn());
        {
            let mut events = st.events.lock();
            if events.len() >= MAX_EVENTS {
                events.remove(0).ok();
            }
            let seq = st.next_seq.fetch_add(1, Relaxed);
            // Dropping a record when memory is short is better than failing hotplug.
            events.push(Record { seq, block, event }, GFP_KERNEL).ok();
        }
        let veto = match event {
            Event::GoingOnline => st.veto_online,
            Event::GoingOffline => st.veto_offline,
            _ => None,
        };
        if veto == Some(block) {
            pr_info!("vetoing {} of memory{}\n", event.name(), block);
            return NotifyResult::Veto(st.veto_error);
        }
        let in_block = |p: &OfflinePages| st.block_of(p.pfn()) == block;
        match event {
            Event::GoingOffline => st
                .offline
                .lock()
                .iter_mut()
                .filter(|p| in_block(p))
                .for_each(|p| p.going_offline(n)),
            Event::CancelOffline => st
                .offline
                .lock()
                .iter_mut()
                .filter(|p| in_block(p))
                .for_each(|p| p.cancel_offline(n)),
            Event::Offline => {
                let mut offline = st.offline.lock();
                let mut i = 0;
                while i < offline.len() {
                    if in_block(&offline[i]) {
                        // The pages went away with their block.
                        if let Ok(p) = offline.remove(i) {
                            p.offlined();
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            _ => {}
        }
        NotifyResult::Ok
    }
}

/// Onlines the chunks it is given, counting the pages, except the first `keep_pages` pages of
/// each block, which it keeps offline.
struct Handler(Arc<State>);

impl OnlinePageHandler for Handler {
    fn owns(&self, _range: PhysRange) -> bool {
        true
    }

    fn online_pages(&self, chunk: OnlineChunk) {
        let st = &self.0;
        let off = chunk.pfn() % st.block_pages.max(1);
        if off + chunk.nr_pages() <= st.keep_pages {
            let p = chunk.keep_offline();
            // If there is no memory to remember them, the pages stay offline for good
            // (`OfflinePages` warns when dropped).
            st.offline.lock().push(p, GFP_KERNEL).ok();
        } else if off >= st.keep_pages {
            st.onlined_pages.fetch_add(chunk.nr_pages() as u64, Relaxed);
            // SAFETY: The sample provides no memory of its own: what it onlines is RAM whoever
            // added it vouched for, and it never unplugs anything.
            unsafe { chunk.online() };
        } else {
            match chunk.split() {
                Ok((a, b)) => {
                    self.online_pages(a);
                    self.online_pages(b);
                }
                // SAFETY: As above.
                Err(single) => unsafe { single.online() },
            }
        }
    }
}

fn block_param(v: i64) -> Option<u64> {
    u64::try_from(v).ok()
}

#[pin_data(PinnedDrop)]
struct RustMemoryNotifier {
    // Taken first in `drop`: no callback runs once the registrations are gone.
    notifier: Option<Pin<KBox<Registration<Recorder>>>>,
    online: Option<HandlerRegistration>,
    #[pin]
    _events_file: debugfs::File<Arc<State>>,
    #[pin]
    _pages_file: debugfs::File<Arc<State>>,
    #[pin]
    _offline_file: debugfs::File<Arc<State>>,
    _dir: debugfs::Dir,
    state: Arc<State>,
}

#[pinned_drop]
impl PinnedDrop for RustMemoryNotifier {
    fn drop(self: Pin<&mut Self>) {
        let this = self.project();
        // Unregister first, so that no onlining or offlining runs our callbacks any more.
        drop(this.online.take());
        drop(this.notifier.take());
        // Give owned pages back; those of offlined blocks are gone already.
        let mut offline = this.state.offline.lock();
        while let Some(p) = offline.pop() {
            // SAFETY: The sample never unplugs memory; tokens of offlined blocks were consumed
            // by the notifier, and none can be added or consumed any more.
            unsafe { p.online() };
        }
    }
}

impl kernel::InPlaceModule for RustMemoryNotifier {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        pin_init::pin_init_scope(|| {
            let errno = module_parameters::veto_errno.value();
            let veto_error = match i32::try_from(errno) {
                Ok(e) if (1..=4095).contains(&e) => Error::from_errno(-e),
                _ => {
                    pr_err!("veto_errno={} is not an errno (1..4095)\n", errno);
                    return Err(EINVAL);
                }
            };
            let block_pages = usize::try_from(hotplug::block_size() >> PAGE_SHIFT)?;
            let keep = module_parameters::keep_pages.value();
            let keep_pages = match usize::try_from(keep) {
                Ok(k) if k <= block_pages => k,
                _ => {
                    pr_err!("keep_pages={} is not in 0..={}\n", keep, block_pages);
                    return Err(EINVAL);
                }
            };
            let state = Arc::pin_init(
                pin_init!(State {
                    events <- new_mutex!(KVec::new()),
                    next_seq: Atomic::new(0),
                    offline <- new_mutex!(KVec::new()),
                    onlined_pages: Atomic::new(0),
                    block_pages,
                    keep_pages,
                    veto_online: block_param(module_parameters::veto_online.value()),
                    veto_offline: block_param(module_parameters::veto_offline.value()),
                    veto_error,
                }),
                GFP_KERNEL,
            )?;
            let online = if module_parameters::online_handler.value() {
                let h: Arc<dyn OnlinePageHandler> = Arc::new(Handler(state.clone()), GFP_KERNEL)?;
                Some(HandlerRegistration::new(h)?)
            } else {
                None
            };
            let dir = debugfs::Dir::new(c"rust_memory_notifier");
            pr_info!(
                "recording memory events (online handler: {})\n",
                online.is_some()
            );
            let notifier =
                KBox::pin_init(Registration::new(0, Recorder(state.clone())), GFP_KERNEL)?;
            Ok(try_pin_init!(Self {
                notifier: Some(notifier),
                online,
                _events_file <- dir.read_callback_file(
                    c"events",
                    state.clone(),
                    &|s: &Arc<State>, f| s.show_events(f)
                ),
                _pages_file <- dir.read_callback_file(
                    c"onlined_pages",
                    state.clone(),
                    &|s: &Arc<State>, f| writeln!(f, "{}", s.onlined_pages.load(Relaxed))
                ),
                _offline_file <- dir.read_write_callback_file(
                    c"fake_offline",
                    state.clone(),
                    &|s: &Arc<State>, f| s.show_offline(f),
                    &|s: &Arc<State>, r: &mut UserSliceReader| s.write_offline(r)
                ),
                _dir: dir,
                state,
            }))
        })
    }
}
