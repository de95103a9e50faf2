// SPDX-License-Identifier: GPL-2.0

//! Free page hinting (`VIRTIO_BALLOON_F_FREE_PAGE_HINT`): while the host migrates the guest, it
//! asks which memory is free, so that it need not send those pages.
//!
//! The host starts a round by writing a new command id into the config space. The driver
//! sends that id on the hint queue, then takes every free block of memory it can get without
//! reclaiming anything ([`FreeBlock`]) and lends each to the device as a device-writable
//! buffer, until no block is free or the host writes another id; then it sends `STOP`. The
//! host skips a hinted page unless the guest writes it afterwards (its dirty log tells). The
//! blocks the device gives back stay with the driver, so that the guest does not write them
//! meanwhile, until the host writes `DONE` (the migration is over) or memory reclaim asks for
//! them through the shrinker: the guest may reuse hinted memory at any time.
//!
//! Unlike the C driver, which may free a block the device still holds, a block goes back to
//! the allocator only once the device returned it (or was reset). As in C, the shrinker frees
//! whole blocks, rounding a request up.

use core::fmt;
use kernel::{
    mm::free_page_hint::FreeBlock,
    new_mutex,
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Mutex, //
    },
    time::{
        delay::fsleep,
        Delta, //
    },
    uapi,
    virtio::{
        self,
        Endian,
        Message,
        Parts,
        Virtqueue, //
    },
};

/// A command id: no round in progress (and the end of the driver's hints in a round).
const CMD_ID_STOP: u32 = uapi::VIRTIO_BALLOON_CMD_ID_STOP;
/// A command id: the host is done, hinted memory may be used again.
const CMD_ID_DONE: u32 = uapi::VIRTIO_BALLOON_CMD_ID_DONE;

/// Waits of a millisecond for a full ring after which a round ends.
const RING_FULL_WAITS: u32 = 1000;

/// A buffer on the hint queue.
pub(crate) enum HintMsg {
    /// A command id, as the device reads it: the round's id first, `STOP` at its end.
    CmdId([u8; 4]),
    /// A free block, lent to the device.
    Block(FreeBlock),
}

// SAFETY: The command id is a field of the message, and the block is owned by it; there is
// one part either way, the same on every call.
unsafe impl Message for HintMsg {
    fn parts(&mut self) -> Parts<'_> {
        match self {
            Self::CmdId(id) => Parts::new().out(&id[..]),
            Self::Block(block) => Parts::new().inp_block(block),
        }
    }
}

/// The hint queue and the round in progress.
struct Round {
    /// `None` while the queues are away (frozen, unbound).
    vq: Option<Virtqueue<HintMsg>>,
    /// Buffers on the ring; a block is added only while one descriptor stays free for `STOP`.
    in_flight: usize,
    ring: usize,
    /// The id of the round in progress, or of the last one; `STOP` before the first.
    active: u32,
}

/// Counters for the debugfs view and the tests.
pub(crate) struct HintCounters {
    /// Rounds started.
    pub(crate) rounds: Atomic<u64>,
    /// Blocks lent to the device.
    pub(crate) hinted: Atomic<u64>,
    /// Blocks kept now, after the device gave them back.
    pub(crate) kept: Atomic<usize>,
    /// Blocks the shrinker gave back to the allocator before the host was done.
    pub(crate) shrunk: Atomic<u64>,
    /// Times a round waited for the device because the ring was full.
    pub(crate) ring_full: Atomic<u64>,
}

impl HintCounters {
    fn new() -> Self {
        Self {
            rounds: Atomic::new(0),
            hinted: Atomic::new(0),
            kept: Atomic::new(0),
            shrunk: Atomic::new(0),
            ring_full: Atomic::new(0),
        }
    }
}

impl fmt::Display for HintCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "hint_rounds: {}", self.rounds.load(Relaxed))?;
        writeln!(f, "hinted_blocks: {}", self.hinted.load(Relaxed))?;
        writeln!(f, "hint_kept: {}", self.kept.load(Relaxed))?;
        writeln!(f, "hint_shrunk: {}", self.shrunk.load(Relaxed))?;
        writeln!(f, "hint_ring_full: {}", self.ring_full.load(Relaxed))
    }
}

/// The free page hinting side of one device.
#[pin_data]
pub(crate) struct Hinting {
    /// `VIRTIO_BALLOON_F_FREE_PAGE_HINT` was negotiated.
    pub(crate) enabled: bool,
    endian: Endian,
    #[pin]
    round: Mutex<Round>,
    /// The blocks the device gave back. Separate from `round` so that the shrinker can take
    /// them while a round runs; only try-locked by the shrinker, as a push may allocate.
    #[pin]
    kept: Mutex<KVec<FreeBlock>>,
    /// The config space changed since `received` was read.
    reread: Atomic<bool>,
    /// The host's command id, as last read.
    received: Atomic<u32>,
    pub(crate) counters: HintCounters,
}

impl Hinting {
    pub(crate) fn new(enabled: bool, endian: Endian) -> impl PinInit<Self> {
        pin_init!(Self {
            enabled,
            endian,
            round <- new_mutex!(Round {
                vq: None,
                in_flight: 0,
                ring: 0,
                active: CMD_ID_STOP,
            }),
            kept <- new_mutex!(KVec::new()),
            reread: Atomic::new(true),
            received: Atomic::new(CMD_ID_STOP),
            counters: HintCounters::new(),
        })
    }

    /// The queues are in (probe, restore). The device needs a descriptor for a block and one
    /// for `STOP`: a smaller ring is refused, as in the C driver.
    pub(crate) fn install(&self, mut vq: Virtqueue<HintMsg>) -> Result {
        // CAST: A ring size fits `usize`.
        let ring = vq.size() as usize;
        if ring < 2 {
            return Err(ENOSPC);
        }
        let mut round = self.round.lock();
        *round = Round {
            vq: Some(vq),
            in_flight: 0,
            ring,
            active: CMD_ID_STOP,
        };
        self.reread.store(true, Relaxed);
        Ok(())
    }

    /// The queues go away (freeze, unbind), with the work stopped: blocks the device holds are
    /// freed when the queues are revoked; the kept ones are freed here.
    pub(crate) fn uninstall(&self) {
        self.round.lock().vq = None;
        self.release_all();
    }

    /// The config space changed: the command id may have.
    pub(crate) fn changed(&self) {
        self.reread.store(true, Relaxed);
    }

    /// The host's command id, read again if the config space changed.
    fn received(&self, round: &mut Round) -> u32 {
        if self.reread.xchg(false, Relaxed) {
            // `free_page_hint_cmd_id` is the field of an anonymous union (with the deprecated
            // `free_page_report_cmd_id`), which bindgen names `__bindgen_anon_1`.
            // The balloon config space is little-endian even for legacy devices.
            let read = round.vq.as_mut().map(|vq| {
                vq.read_config(
                    |c: &virtio::ConfigReader<'_, uapi::virtio_balloon_config>| {
                        // SAFETY: Both fields of the union are `__le32`: any bytes are a valid one.
                        c.le(|c| unsafe { &c.__bindgen_anon_1.free_page_hint_cmd_id })
                    },
                )
            });
            if let Some(Ok(id)) = read {
                self.received.store(id, Relaxed);
            }
        }
        self.received.load(Relaxed)
    }

    /// The work: follow the host's command id.
    pub(crate) fn run(&self) {
        let mut round = self.round.lock();
        let received = self.received(&mut round);
        self.collect(&mut round);
        if received == CMD_ID_DONE {
            self.release_all();
        } else if received != CMD_ID_STOP && received != round.active {
            self.hint(&mut round, received);
        }
    }

    /// A round with id `id`: hints free blocks until none is free or the host moves on.
    fn hint(&self, round: &mut Round, id: u32) {
        round.active = id;
        self.counters.rounds.fetch_add(1, Relaxed);
        if self.send_cmd_id(round, id).is_err() {
            return;
        }
        let mut waits = 0;
        while self.received(round) == id {
            self.collect(round);
            if round.in_flight + 1 >= round.ring {
                // The device has not caught up (one descriptor stays free for `STOP`): let it,
                // before taking a block that would have to wait. A device that returns nothing
                // for a thousand waits (a second or more) ends the round, so that stopping the
                // work never waits on it.
                self.counters.ring_full.fetch_add(1, Relaxed);
                waits += 1;
                if waits > RING_FULL_WAITS {
                    break;
                }
                fsleep(Delta::from_millis(1));
                continue;
            }
            waits = 0;
            let Some(block) = FreeBlock::take() else {
                break;
            };
            let Ok(msg) = KBox::new(HintMsg::Block(block), GFP_KERNEL) else {
                break;
            };
            if self.add(round, msg).is_err() {
                break;
            }
            self.counters.hinted.fetch_add(1, Relaxed);
        }
        let _ = self.send_cmd_id(round, CMD_ID_STOP);
    }

    fn send_cmd_id(&self, round: &mut Round, id: u32) -> Result {
        let bytes = self.endian.to_bytes(id);
        self.add(round, KBox::new(HintMsg::CmdId(bytes), GFP_KERNEL)?)
    }

    /// Puts `msg` on the ring and notifies the device. A message the ring refused is dropped
    /// (a block goes back to the allocator).
    fn add(&self, round: &mut Round, msg: KBox<HintMsg>) -> Result {
        let vq = round.vq.as_mut().ok_or(ENODEV)?;
        vq.add(msg, GFP_KERNEL).map_err(|(e, _)| e)?;
        round.in_flight += 1;
        vq.kick();
        Ok(())
    }

    /// Takes back the buffers the device used, keeping the blocks.
    fn collect(&self, round: &mut Round) {
        let Some(vq) = round.vq.as_mut() else {
            return;
        };
        while let Some((msg, _)) = vq.get_buf() {
            round.in_flight = round.in_flight.saturating_sub(1);
            if let HintMsg::Block(block) = KBox::into_inner(msg) {
                let mut kept = self.kept.lock();
                // If the list cannot grow, the block goes back to the allocator at once.
                if kept.push(block, GFP_KERNEL).is_ok() {
                    self.counters.kept.store(kept.len(), Relaxed);
                }
            }
        }
    }

    /// Gives every kept block back to the allocator: the host is done, or the queues go.
    fn release_all(&self) {
        let mut kept = self.kept.lock();
        Self::release_locked(&mut kept, usize::MAX, &self.counters);
    }

    /// Gives up to `n` of `kept` back to the allocator; returns how many.
    fn release_locked(kept: &mut KVec<FreeBlock>, n: usize, c: &HintCounters) -> usize {
        let n = n.min(kept.len());
        kept.truncate(kept.len() - n);
        c.kept.store(kept.len(), Relaxed);
        n
    }
}

/// The hint shrinker's side (see `driver::HintShrinker`): memory reclaim takes kept blocks back.
impl Hinting {
    /// Pages the shrinker could give back.
    pub(crate) fn shrink_count(&self) -> usize {
        self.counters.kept.load(Relaxed) * FreeBlock::PAGES
    }

    /// Gives back blocks of at least `nr_to_scan` pages; `None` while a round holds the list.
    pub(crate) fn shrink_scan(&self, nr_to_scan: usize) -> Option<usize> {
        // A round may be growing the list, which allocates.
        let mut kept = self.kept.try_lock()?;
        let n = Self::release_locked(
            &mut kept,
            nr_to_scan.div_ceil(FreeBlock::PAGES),
            &self.counters,
        );
        // CAST: `usize` fits `u64`.
        self.counters.shrunk.fetch_add(n as u64, Relaxed);
        Some(n * FreeBlock::PAGES)
    }
}
