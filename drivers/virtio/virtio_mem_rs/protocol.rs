// SPDX-License-Identifier: GPL-2.0

//! The virtio-mem request protocol: PLUG, UNPLUG, UNPLUG_ALL and STATE, one request in flight.
//!
//! Messages are encoded by hand into byte arrays in the device's byte order (`__virtio16`,
//! `__virtio64`), following `struct virtio_mem_req` and `struct virtio_mem_resp` of
//! `include/uapi/linux/virtio_mem.h`: no `unsafe` is needed for their layout.

use core::num::NonZeroU64;
use kernel::{
    new_mutex,
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Mutex,
    },
    uapi,
    virtio::{
        self,
        Endian, //
    }, //
};

/// `sizeof(struct virtio_mem_req)`: type, padding, then the union (addr, nb_blocks, padding).
pub(crate) const REQ_SIZE: usize = 24;
/// `sizeof(struct virtio_mem_resp)`: type, padding, then the union (state).
pub(crate) const RESP_SIZE: usize = 10;

/// A request and its response, as they travel through the virtqueue.
pub(crate) type Msg = virtio::Request<[u8; REQ_SIZE], [u8; RESP_SIZE]>;

/// A request to the device. Addresses and sizes are in bytes; the encoder turns sizes into
/// device blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    Plug { addr: u64, nb_blocks: u16 },
    Unplug { addr: u64, nb_blocks: u16 },
    UnplugAll,
    State { addr: u64, nb_blocks: u16 },
}

impl Request {
    /// Encodes the request in the device's byte order.
    pub(crate) fn encode(&self, endian: Endian) -> [u8; REQ_SIZE] {
        let (ty, addr, nb) = match *self {
            // CAST: The request types are small constants.
            Request::Plug { addr, nb_blocks } => {
                (uapi::VIRTIO_MEM_REQ_PLUG as u16, addr, nb_blocks)
            }
            Request::Unplug { addr, nb_blocks } => {
                (uapi::VIRTIO_MEM_REQ_UNPLUG as u16, addr, nb_blocks)
            }
            Request::UnplugAll => (uapi::VIRTIO_MEM_REQ_UNPLUG_ALL as u16, 0, 0),
            Request::State { addr, nb_blocks } => {
                (uapi::VIRTIO_MEM_REQ_STATE as u16, addr, nb_blocks)
            }
        };
        // `struct virtio_mem_req`: type at 0, then (after padding) address and block count.
        let mut b = [0u8; REQ_SIZE];
        endian.write(&mut b, 0, ty);
        endian.write(&mut b, 8, addr);
        endian.write(&mut b, 16, nb);
        b
    }
}

/// Decodes a response: the result of the request, and the state field (for STATE, `state`
/// true; 0 otherwise).
///
/// ACK is success; NACK (`EAGAIN`), BUSY (`ETXTBSY`) and ERROR (`EINVAL`) map as in the C
/// driver. A response shorter than its type field, or of an unknown type, means a broken device
/// (`EIO`), where the C driver would treat it as an error and stop. So does an ACK to STATE
/// that does not reach the state field: the C driver ignores the length the device wrote and
/// reads whatever the buffer held, 0 (`VIRTIO_MEM_STATE_PLUGGED`) in a fresh one, and kdump
/// would then read unplugged memory.
pub(crate) fn decode(
    resp: &[u8; RESP_SIZE],
    written: u32,
    endian: Endian,
    state: bool,
) -> Result<u16> {
    if written < 2 {
        return Err(EIO);
    }
    // `struct virtio_mem_resp`: type at 0, the state at 8; both within `RESP_SIZE`.
    let rd16 = |off: usize| endian.read::<u16>(resp, off).unwrap_or(0);
    // CAST: The response types are small constants.
    match u32::from(rd16(0)) {
        // CAST: `RESP_SIZE` is 10.
        uapi::VIRTIO_MEM_RESP_ACK if state && written < RESP_SIZE as u32 => Err(EIO),
        uapi::VIRTIO_MEM_RESP_ACK if state => Ok(rd16(8)),
        uapi::VIRTIO_MEM_RESP_ACK => Ok(0),
        uapi::VIRTIO_MEM_RESP_NACK => Err(EAGAIN),
        uapi::VIRTIO_MEM_RESP_BUSY => Err(ETXTBSY),
        uapi::VIRTIO_MEM_RESP_ERROR => Err(EINVAL),
        _ => Err(EIO),
    }
}

/// Sends `make(addr, nb_blocks)` for `[addr, addr + size)` with `send`, split into requests of
/// at most `u16::MAX` device blocks of `block_size` (the C driver would truncate the count
/// instead). Returns the last answer.
///
/// If a request fails after earlier ones of the range succeeded, sends `undo` (the opposite
/// request) for what they did, so that the whole range is as it was and the caller's
/// bookkeeping, which records the range as a whole, stays true. If undoing fails, or the
/// failed request got no answer (`EIO`, `ENODEV`, `EINTR`: it may have been carried out),
/// returns `EIO`, which callers treat as a range in an unknown state.
pub(crate) fn send_split(
    block_size: NonZeroU64,
    addr: u64,
    size: u64,
    mut send: impl FnMut(Request) -> Result<u16>,
    make: fn(u64, u16) -> Request,
    undo: Option<fn(u64, u16) -> Request>,
) -> Result<u16> {
    if size == 0 || size % block_size != 0 {
        return Err(EINVAL);
    }
    let (done, res) = send_pieces(block_size, addr, size / block_size, make, &mut send);
    let Err(e) = res else {
        return res;
    };
    if done == 0 {
        return Err(e);
    }
    if e == EIO || e == ENODEV || e == EINTR {
        return Err(EIO);
    }
    match undo.map(|undo| send_pieces(block_size, addr, done, undo, &mut send)) {
        Some((_, Err(_))) => Err(EIO),
        _ => Err(e),
    }
}

/// Sends `f(addr, nb_blocks)` for `blocks` device blocks from `from`, in requests of at most
/// `u16::MAX` blocks. Returns how many blocks the requests that succeeded covered, and the
/// last answer or the first error.
fn send_pieces(
    block_size: NonZeroU64,
    from: u64,
    blocks: u64,
    f: fn(u64, u16) -> Request,
    send: &mut impl FnMut(Request) -> Result<u16>,
) -> (u64, Result<u16>) {
    let (mut done, mut at, mut last) = (0, from, 0);
    while done < blocks {
        let n = (blocks - done).min(u64::from(u16::MAX));
        // CAST: `n <= u16::MAX`.
        match send(f(at, n as u16)) {
            Ok(v) => last = v,
            Err(e) => return (done, Err(e)),
        }
        done += n;
        match n
            .checked_mul(block_size.get())
            .and_then(|b| at.checked_add(b))
        {
            Some(a) => at = a,
            None if done == blocks => break,
            None => return (done, Err(EINVAL)),
        }
    }
    (done, Ok(last))
}

/// Request counters, for the debugfs view.
pub(crate) struct Counters {
    pub(crate) plug: Atomic<u64>,
    pub(crate) plug_failed: Atomic<u64>,
    pub(crate) unplug: Atomic<u64>,
    pub(crate) unplug_failed: Atomic<u64>,
    pub(crate) unplug_all: Atomic<u64>,
    pub(crate) state: Atomic<u64>,
}

/// The driver's end of the request queue.
#[pin_data]
pub(crate) struct Link {
    /// `None` while the device is frozen.
    #[pin]
    vq: Mutex<Option<virtio::Virtqueue<Msg>>>,
    endian: Endian,
    block_size: NonZeroU64,
    pub(crate) counters: Counters,
}

impl Link {
    pub(crate) fn new(
        vq: virtio::Virtqueue<Msg>,
        endian: Endian,
        block_size: NonZeroU64,
    ) -> impl PinInit<Self> {
        pin_init!(Self {
            vq <- new_mutex!(Some(vq)),
            endian,
            block_size,
            counters: Counters {
                plug: Atomic::new(0),
                plug_failed: Atomic::new(0),
                unplug: Atomic::new(0),
                unplug_failed: Atomic::new(0),
                unplug_all: Atomic::new(0),
                state: Atomic::new(0),
            },
        })
    }

    /// Replaces the queue (a new one on restore).
    pub(crate) fn set_queue(&self, vq: virtio::Virtqueue<Msg>) {
        *self.vq.lock() = Some(vq);
    }

    /// Reads the device configuration through the queue; `ENODEV` once the device is unbound.
    pub(crate) fn read_config<C: Zeroable, R>(
        &self,
        read: impl FnMut(&virtio::ConfigReader<'_, C>) -> R,
    ) -> Result<R> {
        let mut guard = self.vq.lock();
        Option::as_mut(&mut *guard).ok_or(EAGAIN)?.read_config(read)
    }

    /// Sends one request and waits for the device's answer. Sleeps.
    fn send(&self, req: Request) -> Result<u16> {
        let mut guard = self.vq.lock();
        let vq = Option::as_mut(&mut *guard).ok_or(EAGAIN)?;
        let msg = KBox::new(
            Msg {
                out: req.encode(self.endian),
                resp: [0; RESP_SIZE],
            },
            GFP_KERNEL,
        )?;
        let state = matches!(req, Request::State { .. });
        let (msg, written) = vq.exec(msg)?;
        decode(&msg.resp, written, self.endian, state)
    }

    /// Sends `make(addr, nb_blocks)` for `[addr, addr + size)`, split as [`send_split`] does.
    fn send_range(
        &self,
        addr: u64,
        size: u64,
        make: fn(u64, u16) -> Request,
        undo: Option<fn(u64, u16) -> Request>,
    ) -> Result<u16> {
        send_split(self.block_size, addr, size, |r| self.send(r), make, undo)
    }

    /// Asks the device to plug `[addr, addr + size)`.
    pub(crate) fn plug(&self, addr: u64, size: u64) -> Result {
        self.counters.plug.fetch_add(1, Relaxed);
        self.send_range(
            addr,
            size,
            |addr, nb_blocks| Request::Plug { addr, nb_blocks },
            Some(|addr, nb_blocks| Request::Unplug { addr, nb_blocks }),
        )
        .map(|_| ())
        .inspect_err(|_| {
            self.counters.plug_failed.fetch_add(1, Relaxed);
        })
    }

    /// Asks the device to unplug `[addr, addr + size)`.
    pub(crate) fn unplug(&self, addr: u64, size: u64) -> Result {
        self.counters.unplug.fetch_add(1, Relaxed);
        self.send_range(
            addr,
            size,
            |addr, nb_blocks| Request::Unplug { addr, nb_blocks },
            Some(|addr, nb_blocks| Request::Plug { addr, nb_blocks }),
        )
        .map(|_| ())
        .inspect_err(|_| {
            self.counters.unplug_failed.fetch_add(1, Relaxed);
        })
    }

    /// Asks the device for the state of `[addr, addr + size)`: `VIRTIO_MEM_STATE_PLUGGED`,
    /// `_UNPLUGGED` or `_MIXED`.
    pub(crate) fn state(&self, addr: u64, size: u64) -> Result<u16> {
        self.counters.state.fetch_add(1, Relaxed);
        if size / self.block_size > u64::from(u16::MAX) {
            // One answer must cover the whole range.
            return Err(EINVAL);
        }
        self.send_range(
            addr,
            size,
            |addr, nb_blocks| Request::State { addr, nb_blocks },
            None,
        )
    }

    /// Asks the device to unplug everything.
    pub(crate) fn unplug_all(&self) -> Result {
        self.counters.unplug_all.fetch_add(1, Relaxed);
        self.send(Request::UnplugAll).map(|_| ())
    }
}

#[kunit_tests(virtio_mem_rs_protocol)]
mod tests {
    use super::*;
    use kernel::sizes::SizeConstants;

    #[test]
    fn plug_request_layout() {
        let b = Request::Plug {
            addr: 0x1_4000_0000,
            nb_blocks: 0x102,
        }
        .encode(Endian::LITTLE);
        assert_eq!(&b[0..8], &[0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&b[8..16], &0x1_4000_0000u64.to_le_bytes());
        assert_eq!(&b[16..18], &[0x02, 0x01]);
        assert!(b[18..].iter().all(|&x| x == 0));
        let u = Request::UnplugAll.encode(Endian::LITTLE);
        assert_eq!(u[0], 2);
        assert!(u[1..].iter().all(|&x| x == 0));
        assert_eq!(
            Request::State {
                addr: 0,
                nb_blocks: 1
            }
            .encode(Endian::LITTLE)[0],
            3
        );
    }

    /// Runs `send_split` for a plug of `blocks` blocks of 4 KiB at 1 GiB whose request number
    /// `fail` (from 0) fails with `err`, and any request from `fail_undo` on with `EINVAL`.
    /// Returns the result and the requests sent.
    fn split_plug(
        blocks: u64,
        fail: usize,
        err: Error,
        fail_undo: usize,
    ) -> Result<(Result<u16>, KVec<Request>)> {
        let bs = NonZeroU64::new(4096).ok_or(EINVAL)?;
        let mut sent = KVec::new();
        let mut oom = false;
        let res = send_split(
            bs,
            u64::SZ_1G,
            blocks * 4096,
            |r| {
                let n = sent.len();
                oom |= sent.push(r, GFP_KERNEL).is_err();
                match n {
                    _ if n == fail => Err(err),
                    _ if n >= fail_undo => Err(EINVAL),
                    _ => Ok(0),
                }
            },
            |addr, nb_blocks| Request::Plug { addr, nb_blocks },
            Some(|addr, nb_blocks| Request::Unplug { addr, nb_blocks }),
        );
        if oom {
            return Err(ENOMEM);
        }
        Ok((res, sent))
    }

    #[test]
    fn split_requests_undo_what_they_did() -> Result {
        const MAX: u16 = u16::MAX;
        let base = u64::SZ_1G;
        let piece = u64::from(MAX) * 4096;
        let plug = |addr, nb_blocks| Request::Plug { addr, nb_blocks };
        let unplug = |addr, nb_blocks| Request::Unplug { addr, nb_blocks };

        // Three pieces, all answered: nothing undone.
        let (res, sent) = split_plug(2 * u64::from(MAX) + 10, usize::MAX, EINVAL, usize::MAX)?;
        assert_eq!(res, Ok(0));
        assert_eq!(
            &sent[..],
            &[
                plug(base, MAX),
                plug(base + piece, MAX),
                plug(base + 2 * piece, 10)
            ]
        );

        // The third piece refused: the first two are unplugged again, the refusal returned.
        let (res, sent) = split_plug(2 * u64::from(MAX) + 10, 2, EAGAIN, usize::MAX)?;
        assert_eq!(res, Err(EAGAIN));
        assert_eq!(
            &sent[..],
            &[
                plug(base, MAX),
                plug(base + piece, MAX),
                plug(base + 2 * piece, 10),
                unplug(base, MAX),
                unplug(base + piece, MAX),
            ]
        );

        // The first piece refused: nothing to undo.
        let (res, sent) = split_plug(u64::from(MAX) + 1, 0, ETXTBSY, usize::MAX)?;
        assert_eq!(res, Err(ETXTBSY));
        assert_eq!(sent.len(), 1);

        // Undoing refused too: the range is in an unknown state.
        let (res, sent) = split_plug(u64::from(MAX) + 1, 1, EAGAIN, 2)?;
        assert_eq!(res, Err(EIO));
        assert_eq!(
            &sent[..],
            &[plug(base, MAX), plug(base + piece, 1), unplug(base, MAX)]
        );

        // No answer to the second piece: it may have been carried out, so nothing is undone.
        let (res, sent) = split_plug(u64::from(MAX) + 1, 1, ENODEV, usize::MAX)?;
        assert_eq!(res, Err(EIO));
        assert_eq!(sent.len(), 2);
        Ok(())
    }

    #[test]
    fn responses_map_to_errors() {
        let resp = |ty: u16, state: u16| {
            let mut r = [0u8; RESP_SIZE];
            r[0..2].copy_from_slice(&ty.to_le_bytes());
            r[8..10].copy_from_slice(&state.to_le_bytes());
            r
        };
        assert_eq!(decode(&resp(0, 2), 10, Endian::LITTLE, true), Ok(2));
        assert_eq!(decode(&resp(1, 0), 10, Endian::LITTLE, false), Err(EAGAIN));
        assert_eq!(decode(&resp(2, 0), 10, Endian::LITTLE, false), Err(ETXTBSY));
        assert_eq!(decode(&resp(3, 0), 10, Endian::LITTLE, false), Err(EINVAL));
        assert_eq!(decode(&resp(7, 0), 10, Endian::LITTLE, false), Err(EIO));
        // A device that wrote nothing answered nothing.
        assert_eq!(decode(&resp(0, 0), 0, Endian::LITTLE, false), Err(EIO));
        // Only STATE has a payload: an ACK to PLUG may stop after its type.
        assert_eq!(decode(&resp(0, 2), 2, Endian::LITTLE, false), Ok(0));
        // An ACK to STATE without the state field is no answer, never "plugged" (0).
        assert_eq!(decode(&resp(0, 0), 2, Endian::LITTLE, true), Err(EIO));
        assert_eq!(decode(&resp(0, 0), 9, Endian::LITTLE, true), Err(EIO));
    }
}
