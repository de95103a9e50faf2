// SPDX-License-Identifier: GPL-2.0

//! Virtqueues: the rings through which a driver hands buffers to a virtio device.
//!
//! Ownership is what keeps this safe. A buffer is a [`KBox<M>`] of a [`Message`] type `M`.
//! [`Virtqueue::add`] moves it to the device; the driver cannot touch it until the device
//! returns it through [`Virtqueue::get_buf`] (or [`Virtqueue::exec`]), which moves it back.
//! Every queue carries buffers of exactly one type, fixed when it is taken from its set with
//! [`Virtqueues::take`], so a returned buffer always has the type it was added with.
//!
//! The queues belong to the device's binding: when the device is unbound (after the driver's
//! `unbind`) or frozen (after a successful `freeze`), the bus abstraction resets the device and
//! *revokes* the set. Buffers the device never returned are freed with their real type, the
//! queues are deleted, waiters in [`Virtqueue::exec`] wake up, and every later operation fails
//! with `ENODEV`. Handles that outlive the binding are therefore harmless.
//!
//! Queue operations serialize with revocation through a mutex, so they may sleep: use them from
//! process context only.
//!
//! C header: [`include/linux/virtio.h`](srctree/include/linux/virtio.h)

use super::Device;
use crate::{
    alloc::Flags,
    bindings,
    device,
    error::to_result,
    mm::free_page_hint::FreeBlock,
    new_condvar,
    new_mutex,
    new_spinlock_irq,
    prelude::*,
    str::CStr,
    sync::{
        aref::ARef,
        Arc,
        CondVar,
        CondVarTimeoutResult,
        Mutex,
        SpinLockIrq, //
    },
    transmute::{
        AsBytes,
        FromBytes, //
    }, //
};
use core::{
    ffi::c_void,
    marker::PhantomData,
    mem::MaybeUninit,
    ptr, //
};

/// Most virtqueues one device may have through this abstraction.
pub const MAX_QUEUES: usize = 64;

/// Most device-readable, and most device-writable, parts of one [`Message`].
pub const MAX_PARTS: usize = 4;

/// The parts of a [`Message`], which the device sees as one scatter-gather list: the
/// device-readable parts first, then the device-writable ones. Empty parts are left out.
///
/// # Examples
///
/// ```
/// use kernel::virtio::Parts;
///
/// let (header, mut status, mut data) = ([1u8; 8], [0u8; 1], [0u8; 64]);
/// let parts = Parts::new().out(&header).inp(&mut data).inp(&mut status);
/// assert_eq!((parts.nr_out(), parts.nr_in()), (1, 2));
/// ```
pub struct Parts<'a> {
    pub(crate) out: [Option<&'a [u8]>; MAX_PARTS],
    /// Address and length of each device-writable part: a slice, or a [`FreeBlock`] that is
    /// never read or written through a Rust reference.
    pub(crate) inp: [Option<(*mut u8, usize)>; MAX_PARTS],
    nr_out: usize,
    nr_in: usize,
    pub(crate) overflow: bool,
    _inp: PhantomData<&'a mut [u8]>,
}

impl<'a> Parts<'a> {
    /// No parts.
    pub fn new() -> Self {
        Self {
            out: [None; MAX_PARTS],
            inp: [None; MAX_PARTS],
            nr_out: 0,
            nr_in: 0,
            overflow: false,
            _inp: PhantomData,
        }
    }

    /// Adds a device-readable part.
    pub fn out(mut self, part: &'a [u8]) -> Self {
        if !part.is_empty() {
            match self.out.get_mut(self.nr_out) {
                Some(slot) => {
                    *slot = Some(part);
                    self.nr_out += 1;
                }
                None => self.overflow = true,
            }
        }
        self
    }

    /// Adds a device-writable part.
    pub fn inp(self, part: &'a mut [u8]) -> Self {
        let len = part.len();
        self.inp_raw(part.as_mut_ptr(), len)
    }

    /// Adds a block of free memory as a device-writable part, for free page hinting: the
    /// device learns where the block is, and the block's contents are neither read nor written
    /// through the message.
    pub fn inp_block(self, block: &'a mut FreeBlock) -> Self {
        self.inp_raw(block.as_raw(), FreeBlock::SIZE)
    }

    fn inp_raw(mut self, addr: *mut u8, len: usize) -> Self {
        if len != 0 {
            match self.inp.get_mut(self.nr_in) {
                Some(slot) => {
                    *slot = Some((addr, len));
                    self.nr_in += 1;
                }
                None => self.overflow = true,
            }
        }
        self
    }

    /// The number of device-readable parts.
    pub fn nr_out(&self) -> usize {
        self.nr_out
    }

    /// The number of device-writable parts.
    pub fn nr_in(&self) -> usize {
        self.nr_in
    }
}

impl Default for Parts<'_> {
    fn default() -> Self {
        Self::new()
    }
}

/// A buffer that can be handed to a device, as one or more device-readable parts followed by
/// one or more device-writable parts.
///
/// # Safety
///
/// All slices in the [`Parts`] returned by [`Message::parts`] must point into the memory of
/// `*self` itself (not into memory `self` merely refers to), and every [`FreeBlock`] in them
/// must be owned by `*self`; parts must not overlap, and must be the same on every call. The
/// abstraction relies on this: a message lives in a [`KBox`], so its parts are in the kernel's
/// linear mapping (a [`FreeBlock`] is too) and live exactly as long as the box.
pub unsafe trait Message: Send + 'static {
    /// The parts of the message.
    fn parts(&mut self) -> Parts<'_>;
}

/// A request/response message: `out` is read by the device, `resp` is written by it.
///
/// Use `()` for a part the protocol does not have.
///
/// # Examples
///
/// ```
/// use kernel::virtio::Request;
///
/// // 16 bytes to the device, one status byte back.
/// type MyReq = Request<[u8; 16], u8>;
/// let req = KBox::new(MyReq { out: [0; 16], resp: 0 }, GFP_KERNEL)?;
/// # Ok::<(), Error>(())
/// ```
#[repr(C)]
pub struct Request<O, I> {
    /// What the device reads.
    pub out: O,
    /// What the device writes.
    pub resp: I,
}

// SAFETY: Both parts are fields of `self`, distinct and fixed; `O` and `I` are plain bytes, so
// any bytes the device writes into `resp` are a valid `I`.
unsafe impl<O, I> Message for Request<O, I>
where
    O: AsBytes + Send + 'static,
    I: AsBytes + FromBytes + Send + 'static,
{
    fn parts(&mut self) -> Parts<'_> {
        Parts::new()
            .out(self.out.as_bytes())
            .inp(self.resp.as_bytes_mut())
    }
}

/// An empty message part, for protocols where one direction carries nothing.
pub type NoData = ();

/// The message of a queue that carries memory lent to the device rather than buffers of its
/// own (see [`Virtqueue::lend_reported`]): it only identifies the request, and cannot be sent
/// with [`Virtqueue::add`].
pub struct Lent {
    _id: u8,
}

impl Lent {
    /// A new request identifier.
    pub fn new(flags: Flags) -> Result<KBox<Self>> {
        Ok(KBox::new(Self { _id: 0 }, flags)?)
    }
}

// SAFETY: No parts.
unsafe impl Message for Lent {
    fn parts(&mut self) -> Parts<'_> {
        Parts::new()
    }
}

/// Receives a queue's "buffers used" notifications.
pub trait VqHandler: Send + Sync {
    /// The device used buffers of the queue.
    ///
    /// Called in hard interrupt context: it must not sleep, and typically schedules work that
    /// then takes the buffers with [`Virtqueue::get_buf`].
    fn used(&self);
}

/// Describes one virtqueue for [`Device::find_vqs`](super::Device::find_vqs).
pub struct QueueSpec {
    /// The queue's name, shown in `/proc/interrupts` and debugfs.
    pub name: &'static CStr,
    /// Called when the device uses buffers; queues driven only through [`Virtqueue::exec`]
    /// need none.
    pub handler: Option<Arc<dyn VqHandler>>,
}

/// Frees a buffer of the type its queue was taken with.
type DropFn = unsafe fn(*mut c_void);

/// # Safety
///
/// `p` must come from `KBox::<M>::into_raw` and be owned by the caller.
unsafe fn drop_boxed<M: Message>(p: *mut c_void) {
    // SAFETY: Per the function's safety requirements.
    drop(unsafe { KBox::<M>::from_raw(p.cast()) });
}

/// Whether the queues are usable, and how to free each queue's buffers.
struct Live {
    /// `false` once the set is revoked: the queues are deleted.
    alive: bool,
    /// Per queue, how to free its buffers; `None` while the queue has not been taken.
    drops: KVec<Option<DropFn>>,
}

/// Used-buffer notifications, and revocation, for waiters.
struct Used {
    /// One bit per queue: the device used buffers since the bit was last cleared.
    bits: u64,
    revoked: bool,
}

/// What [`Virtqueues::wait_used`] saw.
enum Wait {
    Used,
    Timeout,
    Signal,
    Revoked,
}

/// The set of virtqueues of one device.
///
/// Created by [`Device::find_vqs`](super::Device::find_vqs). Each queue is taken once, with the
/// message type it carries, by [`Virtqueues::take`]. The set is revoked when the device is
/// unbound or frozen (see the [module documentation](self)).
///
/// # Invariants
///
/// - While `live.alive`, `vqs` holds the live virtqueues created by `find_vqs` for `dev`, and
///   `dev`'s `priv` holds one strong reference to the set (from `Arc::into_raw`).
/// - Once revoked, the queues are deleted and `priv` no longer refers to the set.
#[pin_data]
pub struct Virtqueues {
    dev: ARef<Device>,
    vqs: KVec<*mut bindings::virtqueue>,
    handlers: KVec<Option<Arc<dyn VqHandler>>>,
    /// Serializes queue operations with revocation.
    #[pin]
    live: Mutex<Live>,
    #[pin]
    used: SpinLockIrq<Used>,
    #[pin]
    used_cv: CondVar,
}

// SAFETY: The raw virtqueue pointers are only dereferenced through the C virtqueue API, whose
// callers serialize per queue (`Virtqueue` methods take `&mut self`); everything else is
// protected by locks or immutable after creation.
unsafe impl Send for Virtqueues {}
// SAFETY: See `Send`; shared access only touches locked or immutable state.
unsafe impl Sync for Virtqueues {}

impl Virtqueues {
    pub(super) fn new(dev: &Device<device::Core<'_>>, specs: &[QueueSpec]) -> Result<Arc<Self>> {
        let n = specs.len();
        if n == 0 || n > MAX_QUEUES {
            return Err(EINVAL);
        }
        let raw = dev.as_raw();
        // SAFETY: `raw` is a valid `struct virtio_device`; we are in a bus callback, so nothing
        // else changes its queue list or `priv` concurrently.
        let has_vqs = unsafe {
            let head = &raw mut (*raw).vqs;
            !core::ptr::eq((*head).next, head) || !(*raw).priv_.is_null()
        };
        if has_vqs {
            // The device already has queues.
            return Err(EBUSY);
        }

        let mut infos = KVec::with_capacity(n, GFP_KERNEL)?;
        let mut handlers = KVec::with_capacity(n, GFP_KERNEL)?;
        let mut taken = KVec::with_capacity(n, GFP_KERNEL)?;
        let mut vqs = KVec::with_capacity(n, GFP_KERNEL)?;
        for s in specs {
            infos.push(
                bindings::virtqueue_info {
                    name: s.name.as_char_ptr(),
                    callback: Some(vq_callback),
                    ctx: false,
                },
                GFP_KERNEL,
            )?;
            handlers.push(s.handler.clone(), GFP_KERNEL)?;
            taken.push(None, GFP_KERNEL)?;
            vqs.push(ptr::null_mut(), GFP_KERNEL)?;
        }

        let find = dev.ops().find_vqs.ok_or(ENODEV)?;
        // CAST: `n <= MAX_QUEUES`.
        let nvqs = n as u32;
        // SAFETY: `raw` is valid; `vqs` and `infos` hold `n` entries each; the names are
        // `'static`, so they outlive the queues; no affinity descriptor is passed.
        to_result(unsafe {
            find(
                raw,
                nvqs,
                vqs.as_mut_ptr(),
                infos.as_mut_ptr(),
                ptr::null_mut(),
            )
        })?;

        let dev_ref: ARef<Device> = (&**dev).into();
        let set = Arc::pin_init(
            try_pin_init!(Self {
                dev: dev_ref,
                vqs,
                handlers,
                live <- new_mutex!(
                    Live {
                        alive: true,
                        drops: taken,
                    },
                    "virtio_vqs_live"
                ),
                used <- new_spinlock_irq!(
                    Used {
                        bits: 0,
                        revoked: false,
                    },
                    "virtio_vqs_used"
                ),
                used_cv <- new_condvar!("virtio_vqs_used"),
            }),
            GFP_KERNEL,
        );
        let set = match set {
            Ok(set) => set,
            Err(e) => {
                if let Some(del) = dev.ops().del_vqs {
                    // SAFETY: The queues were created above and nothing uses them yet.
                    unsafe { del(raw) };
                }
                return Err(e);
            }
        };

        // INVARIANT: Until the set is revoked, `priv` owns one reference to it. Callbacks that
        // ran before found `priv` NULL and ignored the notification; the device is not ready.
        let owned = Arc::into_raw(set.clone());
        // SAFETY: `raw` is valid; the write is paired with the `read_volatile` in `vq_callback`.
        unsafe { ptr::write_volatile(&raw mut (*raw).priv_, owned.cast_mut().cast()) };
        Ok(set)
    }

    /// The number of queues in the set.
    pub fn len(&self) -> usize {
        self.vqs.len()
    }

    /// Whether the set is empty; never true for a set made by `find_vqs`.
    pub fn is_empty(&self) -> bool {
        self.vqs.is_empty()
    }

    /// Takes queue `index` out of the set, as a queue of messages of type `M`.
    ///
    /// Each queue can be taken once; `EBUSY` if it was taken already, `EINVAL` if there is no
    /// such queue.
    pub fn take<M: Message>(set: &Arc<Self>, index: usize) -> Result<Virtqueue<M>> {
        let vq = *set.vqs.get(index).ok_or(EINVAL)?;
        {
            let mut live = set.live.lock();
            if !live.alive {
                return Err(ENODEV);
            }
            let slot = live.drops.get_mut(index).ok_or(EINVAL)?;
            if slot.is_some() {
                return Err(EBUSY);
            }
            *slot = Some(drop_boxed::<M> as DropFn);
        }
        // INVARIANT: `vq` is queue `index` of `set`, taken once, for messages of type `M`.
        Ok(Virtqueue {
            set: set.clone(),
            index,
            vq,
            _msg: PhantomData,
        })
    }

    fn mark_used(&self, index: usize) {
        if index < MAX_QUEUES {
            self.used.lock().bits |= 1 << index;
            self.used_cv.notify_all();
        }
        if let Some(Some(h)) = self.handlers.get(index) {
            h.used();
        }
    }

    /// Sleeps until the device used buffers of queue `index` since the last call, the set is
    /// revoked, a signal arrives, or `timeout` passes.
    fn wait_used(&self, index: usize, timeout: crate::time::Jiffies) -> Wait {
        let bit = 1u64 << index;
        let mut used = self.used.lock();
        loop {
            if used.revoked {
                return Wait::Revoked;
            }
            if used.bits & bit != 0 {
                used.bits &= !bit;
                return Wait::Used;
            }
            match self.used_cv.wait_interruptible_timeout(&mut used, timeout) {
                CondVarTimeoutResult::Timeout => return Wait::Timeout,
                CondVarTimeoutResult::Signal { .. } => return Wait::Signal,
                CondVarTimeoutResult::Woken { .. } => {}
            }
        }
    }

    /// Revokes the set of `dev`, if it has one: frees the buffers the device never returned,
    /// deletes the queues, wakes waiters, and drops the binding's reference.
    ///
    /// # Safety
    ///
    /// Called from a bus callback of `dev` (so nothing creates queues concurrently), after the
    /// device was reset.
    pub(super) unsafe fn revoke(dev: &Device) {
        let raw = dev.as_raw();
        // SAFETY: `raw` is valid; per the safety requirements nothing changes `priv` now.
        let owned = unsafe { ptr::read_volatile(&raw const (*raw).priv_) }.cast::<Virtqueues>();
        if owned.is_null() {
            return;
        }
        // SAFETY: A non-NULL `priv` owns one reference to a live set (type invariant).
        let set = unsafe { Arc::from_raw(owned.cast_const()) };
        {
            let mut live = set.live.lock();
            live.alive = false;
            // The device is reset: it uses no buffer any more.
            for (i, &vq) in set.vqs.iter().enumerate() {
                let Some(Some(drop_fn)) = live.drops.get(i).copied() else {
                    continue;
                };
                loop {
                    // SAFETY: `vq` is a live queue of a reset device (type invariant).
                    let p = unsafe { bindings::virtqueue_detach_unused_buf(vq) };
                    if p.is_null() {
                        break;
                    }
                    // SAFETY: Every buffer on queue `i` was added by `Virtqueue::<M>::add` from a
                    // `KBox<M>` with `drop_fn == drop_boxed::<M>`, and the device gave it up.
                    unsafe { drop_fn(p) };
                }
            }
            if let Some(del) = set.dev.ops().del_vqs {
                // SAFETY: The queues were created by `find_vqs`; queue operations are excluded by
                // `live`, and no callback runs once `del_vqs` freed the interrupts.
                unsafe { del(raw) };
            }
            // INVARIANT: Revoked: the queues are deleted and `priv` is cleared.
            // SAFETY: `raw` is valid.
            unsafe { ptr::write_volatile(&raw mut (*raw).priv_, ptr::null_mut()) };
        }
        set.used.lock().revoked = true;
        set.used_cv.notify_all();
    }
}

/// The C callback of every queue created through [`Virtqueues`].
///
/// # Safety
///
/// Called by the virtio core with a valid queue of a device.
unsafe extern "C" fn vq_callback(vq: *mut bindings::virtqueue) {
    // SAFETY: `vq` is valid, and so is its device.
    let (vdev, index) = unsafe { ((*vq).vdev, (*vq).index) };
    // SAFETY: `vdev` is valid; the read pairs with the writes in `Virtqueues::new` and `drop`.
    let set = unsafe { ptr::read_volatile(&raw const (*vdev).priv_) }.cast::<Virtqueues>();
    if set.is_null() {
        return;
    }
    // SAFETY: While `priv` is non-NULL it owns a reference to the set (type invariant of
    // `Virtqueues`). Revocation clears it only after `del_vqs` freed the interrupts, so no
    // callback runs afterwards.
    let set = unsafe { &*set };
    // CAST: `index` is below the number of queues, at most `MAX_QUEUES`.
    set.mark_used(index as usize);
}

/// How [`Virtqueue::exec_uninterruptible`] fails: the error, and the message if the device never
/// got it.
pub type ExecError<M> = (Error, Option<KBox<M>>);

/// One virtqueue, carrying messages of type `M`.
///
/// Operations take `&mut self`: the C virtqueue API requires its callers to serialize.
///
/// # Invariants
///
/// `vq` is queue `index` of `set`, which outlives it; every buffer on it is a `KBox<M>`.
pub struct Virtqueue<M: Message> {
    set: Arc<Virtqueues>,
    index: usize,
    vq: *mut bindings::virtqueue,
    _msg: PhantomData<KBox<M>>,
}

// SAFETY: The queue is only used through `&mut self`, and the messages are `Send`.
unsafe impl<M: Message> Send for Virtqueue<M> {}
// SAFETY: `&Virtqueue` only allows reading immutable fields.
unsafe impl<M: Message> Sync for Virtqueue<M> {}

impl<M: Message> Virtqueue<M> {
    /// Runs `op` on the raw queue unless the set was revoked.
    fn with_vq<R>(&mut self, op: impl FnOnce(*mut bindings::virtqueue) -> R) -> Result<R> {
        let live = self.set.live.lock();
        if !live.alive {
            return Err(ENODEV);
        }
        // The queue is live while `live` is held (type invariant of `Virtqueues`).
        Ok(op(self.vq))
    }

    /// Puts the buffer `data` on the ring with `add_to`, which gets the live queue and returns
    /// the C result of a `virtqueue_add_*()` call. On failure the buffer is ours again and is
    /// returned with the error.
    ///
    /// # Safety
    ///
    /// `data` comes from [`KBox::into_raw`] and is not used by the caller again; `add_to`
    /// adds it as the buffer's id, or fails without keeping it.
    unsafe fn add_raw(
        &mut self,
        data: *mut M,
        add_to: impl FnOnce(*mut bindings::virtqueue) -> i32,
    ) -> Result<(), (Error, KBox<M>)> {
        let err = match self.with_vq(add_to) {
            Ok(0) => return Ok(()),
            Ok(e) => Error::from_errno(e),
            Err(e) => e,
        };
        // SAFETY: The queue did not take the buffer, so we own `data` again (safety
        // requirements).
        Err((err, unsafe { KBox::from_raw(data) }))
    }

    /// Reads the device's configuration space (see [`Device::read_config`]), as long as the
    /// queues are not revoked: unlike the device itself, a queue handle may be kept by work that
    /// runs outside the bus callbacks. `ENODEV` once revoked.
    ///
    /// [`Device::read_config`]: super::Device::read_config
    pub fn read_config<C: Zeroable, R>(
        &mut self,
        read: impl FnMut(&super::ConfigReader<'_, C>) -> R,
    ) -> Result<R> {
        let live = self.set.live.lock();
        if !live.alive {
            return Err(ENODEV);
        }
        // The device is bound while the queues are live: revocation happens in its unbind.
        let value = self.set.dev.read_config_unchecked(read);
        drop(live);
        Ok(value)
    }

    /// Writes a little-endian configuration field, as
    /// [`Device::write_config_le`](super::Device::write_config_le) does, as long as the queues
    /// are not revoked (`ENODEV` afterwards).
    pub fn write_config_le<C: Zeroable, F: super::VirtioInt>(
        &mut self,
        field: impl FnOnce(&C) -> &F,
        value: F,
    ) -> Result {
        let live = self.set.live.lock();
        if !live.alive {
            return Err(ENODEV);
        }
        super::config::write_le(&self.set.dev, field, value);
        drop(live);
        Ok(())
    }

    /// Hands `msg` to the device; it comes back from [`Virtqueue::get_buf`] once the device
    /// used it. On failure (`ENOSPC` when the ring is full, `EIO` if the device is broken,
    /// `ENODEV` once the queues are revoked, `EINVAL` for an empty message) the message is
    /// returned with the error.
    ///
    /// The device is not notified until [`Virtqueue::kick`].
    pub fn add(&mut self, mut msg: KBox<M>, flags: Flags) -> Result<(), (Error, KBox<M>)> {
        // Each part becomes a one-entry scatterlist; readable ones first, as the ring requires.
        let mut sg = [const { MaybeUninit::<bindings::scatterlist>::uninit() }; 2 * MAX_PARTS];
        let mut sgs: [*mut bindings::scatterlist; 2 * MAX_PARTS] = [ptr::null_mut(); 2 * MAX_PARTS];
        let mut segs = [(ptr::null::<u8>(), 0usize); 2 * MAX_PARTS];
        let (nr_out, nr_in, ok) = {
            let parts = msg.parts();
            let readable = parts.out.iter().flatten().map(|p| (p.as_ptr(), p.len()));
            let writable = parts
                .inp
                .iter()
                .flatten()
                .map(|&(p, len)| (p.cast_const(), len));
            for (slot, seg) in segs.iter_mut().zip(Iterator::chain(readable, writable)) {
                *slot = seg;
            }
            let ok = !parts.overflow && parts.nr_out + parts.nr_in != 0;
            (parts.nr_out, parts.nr_in, ok)
        };
        if !ok {
            return Err((EINVAL, msg));
        }
        for (n, &(buf, len)) in segs.iter().take(nr_out + nr_in).enumerate() {
            let Ok(len) = u32::try_from(len) else {
                return Err((EINVAL, msg));
            };
            // SAFETY: `sg[n]` is valid for writes; `buf` points to `len` bytes inside the boxed
            // message or in a block it owns (by `Message`'s safety requirements), in the linear
            // mapping either way.
            unsafe { bindings::sg_init_one(sg[n].as_mut_ptr(), buf.cast(), len) };
            sgs[n] = sg[n].as_mut_ptr();
        }
        // CAST: Both counts are at most `MAX_PARTS`.
        let (out_sgs, in_sgs) = (nr_out as u32, nr_in as u32);

        let data = KBox::into_raw(msg);
        let add_to = |vq| {
            // The scatterlists may go out of scope once the buffer is in the ring.
            // SAFETY: `vq` is live and calls on it are serialized (`with_vq`, `&mut self`); `sgs`
            // holds `out_sgs + in_sgs` initialized entries; `data` is non-NULL, the buffer's id.
            unsafe {
                bindings::virtqueue_add_sgs(
                    vq,
                    sgs.as_mut_ptr(),
                    out_sgs,
                    in_sgs,
                    data.cast(),
                    flags.as_raw(),
                )
            }
        };
        // SAFETY: `data` was just leaked; `virtqueue_add_sgs()` keeps it only on success.
        unsafe { self.add_raw(data, add_to) }
    }

    /// Notifies the device of added buffers. Returns `false` if the device is broken or the
    /// queues are revoked.
    pub fn kick(&mut self) -> bool {
        // SAFETY: `vq` is live; calls on it are serialized.
        self.with_vq(|vq| unsafe { bindings::virtqueue_kick(vq) })
            .unwrap_or(false)
    }

    /// Takes back a buffer the device used, with the number of bytes it wrote.
    pub fn get_buf(&mut self) -> Option<(KBox<M>, u32)> {
        let mut len = 0u32;
        // SAFETY: `vq` is live; calls on it are serialized.
        let p = self
            .with_vq(|vq| unsafe { bindings::virtqueue_get_buf(vq, &mut len) })
            .ok()?;
        if p.is_null() {
            return None;
        }
        // SAFETY: Every buffer on this queue was added by `add` from a `KBox<M>` (type
        // invariant); the device returned it, so we own it again.
        let msg = unsafe { KBox::from_raw(p.cast::<M>()) };
        Some((msg, len))
    }

    /// Enables used-buffer callbacks. Returns `false` if buffers are pending already, in which
    /// case the caller should process them (a callback may not come for them).
    pub fn enable_cb(&mut self) -> bool {
        // SAFETY: `vq` is live; calls on it are serialized.
        self.with_vq(|vq| unsafe { bindings::virtqueue_enable_cb(vq) })
            .unwrap_or(true)
    }

    /// Disables used-buffer callbacks (a hint: some may still arrive).
    pub fn disable_cb(&mut self) {
        // SAFETY: `vq` is live; calls on it are serialized.
        let _ = self.with_vq(|vq| unsafe { bindings::virtqueue_disable_cb(vq) });
    }

    /// Whether the device is broken (or the queues revoked): it will not use buffers any more.
    pub fn is_broken(&mut self) -> bool {
        // SAFETY: `vq` is live.
        self.with_vq(|vq| unsafe { bindings::virtqueue_is_broken(vq) })
            .unwrap_or(true)
    }

    /// The ring size, 0 once the queues are revoked.
    pub fn size(&mut self) -> u32 {
        // SAFETY: `vq` is live.
        self.with_vq(|vq| unsafe { bindings::virtqueue_get_vring_size(vq) })
            .unwrap_or(0)
    }

    /// Sends `msg` and sleeps until the device returns it, with the number of bytes the device
    /// wrote.
    ///
    /// This is the one-request-in-flight protocol of devices like virtio-mem; do not mix it
    /// with [`Virtqueue::add`] on the same queue. Process context only. Fails with `EIO` if the
    /// device is or becomes broken, `ENODEV` if the queues are revoked meanwhile (the device was
    /// unbound or frozen), and `EINTR` if the caller gets a signal; the request then stays with
    /// the device, and its buffer is freed when it comes back or at revocation.
    pub fn exec(&mut self, msg: KBox<M>) -> Result<(KBox<M>, u32)> {
        self.exec_inner(msg, true).map_err(|(e, _)| e)
    }

    /// Like [`Virtqueue::exec`], but a signal does not end the wait: for requests whose answer
    /// the caller cannot do without, such as a balloon telling its device which pages it may
    /// take before the guest reuses them. Still fails with `EIO` or `ENODEV`; if the device never
    /// got the message (the queue was full, broken or revoked when adding it), the message comes
    /// back with the error, so that a caller with one preallocated buffer keeps it.
    pub fn exec_uninterruptible(&mut self, msg: KBox<M>) -> Result<(KBox<M>, u32), ExecError<M>> {
        self.exec_inner(msg, false)
    }

    fn exec_inner(
        &mut self,
        msg: KBox<M>,
        interruptible: bool,
    ) -> Result<(KBox<M>, u32), ExecError<M>> {
        let mine = ptr::from_ref::<M>(&msg).addr();
        self.add(msg, GFP_KERNEL)
            .map_err(|(e, msg)| (e, Some(msg)))?;
        self.kick_and_wait(mine, interruptible)
    }

    /// Notifies the device, and waits until it returns the buffer whose message is at `mine`.
    fn kick_and_wait(
        &mut self,
        mine: usize,
        interruptible: bool,
    ) -> Result<(KBox<M>, u32), ExecError<M>> {
        if !self.kick() {
            return Err((EIO, None));
        }
        loop {
            while let Some((buf, len)) = self.get_buf() {
                if ptr::from_ref::<M>(&buf).addr() == mine {
                    return Ok((buf, len));
                }
                // The answer to an earlier, interrupted request: nobody waits for it any more.
                drop(buf);
            }
            if self.is_broken() {
                let e = if self.set.live.lock().alive {
                    EIO
                } else {
                    ENODEV
                };
                return Err((e, None));
            }
            // Wake up now and then to notice a device that broke without telling.
            match self
                .set
                .wait_used(self.index, crate::time::msecs_to_jiffies(1000))
            {
                Wait::Used | Wait::Timeout => {}
                Wait::Signal if interruptible => return Err((EINTR, None)),
                // The condition variable only waits interruptibly: with a signal pending, poll.
                Wait::Signal => crate::time::delay::fsleep(crate::time::Delta::from_millis(5)),
                Wait::Revoked => return Err((ENODEV, None)),
            }
        }
    }
}

#[cfg(CONFIG_PAGE_REPORTING)]
impl Virtqueue<Lent> {
    /// Lends the free blocks of `pages` to the device as device-writable buffers (the device
    /// may discard what they hold), and waits until it gives them back: for free page
    /// reporting, from [`Reporter::report`](crate::mm::page_reporting::Reporter::report).
    ///
    /// `id` identifies the request and comes back on success. The queue must have a descriptor
    /// per block (register the reporter with the queue's [`size`](Self::size) as capacity), and
    /// the device should not use indirect descriptors ([`RING_F_INDIRECT_DESC`] cleared in
    /// `validate`), so that adding allocates nothing. Fails with `EIO` if the device is or
    /// becomes broken, and `ENODEV` if the queues are revoked: either way the device no longer
    /// uses the blocks. A signal does not end the wait.
    ///
    /// [`RING_F_INDIRECT_DESC`]: super::RING_F_INDIRECT_DESC
    pub fn lend_reported(
        &mut self,
        id: KBox<Lent>,
        pages: &crate::mm::page_reporting::ReportedPages<'_>,
    ) -> Result<KBox<Lent>, ExecError<Lent>> {
        let (sg, nents) = pages.as_raw();
        let mine = ptr::from_ref::<Lent>(&id).addr();
        let data = KBox::into_raw(id);
        let add_to = |vq| {
            // SAFETY: `vq` is live and calls on it are serialized; `sg` holds `nents` entries of
            // free blocks that nothing else uses until the report returns, and this function
            // only returns once the device gave them back or was reset, or once the transport
            // gave up on it (broken: removed, or about to be reset; a device that broke the
            // ring protocol and still writes could as well write to any memory it reaches by
            // DMA); `data` is non-NULL, the buffer's id.
            unsafe {
                bindings::virtqueue_add_inbuf(
                    vq,
                    sg,
                    nents,
                    data.cast(),
                    crate::alloc::flags::GFP_NOWAIT.as_raw(),
                )
            }
        };
        // SAFETY: `data` was just leaked; `virtqueue_add_inbuf()` keeps it only on success.
        unsafe { self.add_raw(data, add_to) }.map_err(|(e, id)| (e, Some(id)))?;
        self.kick_and_wait(mine, false).map(|(id, _)| id)
    }
}
