// SPDX-License-Identifier: GPL-2.0

//! Rust virtio driver sample: the virtio entropy device (virtio-rng).
//!
//! Binds to every virtio-rng device, asks it for random bytes through its one virtqueue, and
//! shows them in debugfs, under `/sys/kernel/debug/rust_virtio_rng.virtioN/`:
//!
//! - `entropy`: each read asks the device for fresh bytes and prints them in hex; the device
//!   writes them into two halves, a two-part scatter-gather list;
//! - `stats`: requests answered, bytes received and used-buffer callbacks so far;
//! - `entropy_async`: the same without the request helper: the buffer is added and the device
//!   kicked, the queue's handler reports that the device used it, and only then is it taken
//!   back; prints an error if no callback came within a second;
//! - `callbacks`: write `0` or `1` to disable or enable the queue's callbacks; `entropy` still
//!   completes without them (the request helper polls).
//!
//! It supports suspend: `freeze` drops the virtqueue (which resets the device) and `restore`
//! creates it again.

use kernel::{
    debugfs,
    device::Core,
    fmt,
    new_mutex,
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
    uaccess::UserSliceReader,
    uapi,
    virtio, //
};

/// Bytes asked of the device per read of `entropy`.
const ENTROPY_BYTES: usize = 32;
const HALF: usize = ENTROPY_BYTES / 2;

/// The device writes up to `ENTROPY_BYTES` random bytes into two halves; the driver sends
/// nothing.
struct EntropyReq {
    first: [u8; HALF],
    second: [u8; HALF],
}

// SAFETY: Both parts are distinct fields of `self`, the same on every call.
unsafe impl virtio::Message for EntropyReq {
    fn parts(&mut self) -> virtio::Parts<'_> {
        virtio::Parts::new()
            .inp(&mut self.first)
            .inp(&mut self.second)
    }
}

impl EntropyReq {
    /// An empty request for the device to fill.
    fn new_boxed() -> Result<KBox<Self>> {
        Ok(KBox::new(
            Self {
                first: [0; HALF],
                second: [0; HALF],
            },
            GFP_KERNEL,
        )?)
    }

    /// The two halves, joined.
    fn bytes(&self) -> [u8; ENTROPY_BYTES] {
        let mut bytes = [0u8; ENTROPY_BYTES];
        bytes[..HALF].copy_from_slice(&self.first);
        bytes[HALF..].copy_from_slice(&self.second);
        bytes
    }
}

/// Prints `bytes` in hex on one line, or the error.
fn write_hex(f: &mut fmt::Formatter<'_>, bytes: Result<&[u8]>) -> fmt::Result {
    match bytes {
        Ok(bytes) => {
            for b in bytes {
                write!(f, "{b:02x}")?;
            }
            writeln!(f)
        }
        Err(e) => writeln!(f, "error {}", e.to_errno()),
    }
}

/// Counts the queue's used-buffer callbacks (hard interrupt context).
struct Callbacks(Atomic<u64>);

impl virtio::VqHandler for Callbacks {
    fn used(&self) {
        self.0.fetch_add(1, Relaxed);
    }
}

/// State shared by the driver and its debugfs files.
#[pin_data]
struct Rng {
    /// The request queue; `None` while the device is frozen.
    #[pin]
    vq: Mutex<Option<virtio::Virtqueue<EntropyReq>>>,
    requests: Atomic<u64>,
    bytes: Atomic<u64>,
    callbacks: Arc<Callbacks>,
}

impl Rng {
    /// Creates the virtqueue of `vdev`, with `callbacks` counting its callbacks.
    fn find_vq(
        vdev: &virtio::Device<Core<'_>>,
        callbacks: &Arc<Callbacks>,
    ) -> Result<virtio::Virtqueue<EntropyReq>> {
        let handler: Arc<dyn virtio::VqHandler> = callbacks.clone();
        let set = vdev.find_vqs(&[virtio::QueueSpec {
            name: c"input",
            handler: Some(handler),
        }])?;
        virtio::Virtqueues::take(&set, 0)
    }

    /// Handles a write to `callbacks`: `0` disables them, `1` enables them.
    fn set_callbacks(&self, reader: &mut UserSliceReader) -> Result {
        let mut buf = [0u8; 1];
        reader.read_slice(&mut buf)?;
        let mut guard = self.vq.lock();
        let vq = Option::as_mut(&mut *guard).ok_or(EAGAIN)?;
        match buf[0] {
            b'0' => vq.disable_cb(),
            b'1' => {
                vq.enable_cb();
            }
            _ => return Err(EINVAL),
        }
        Ok(())
    }

    /// Asks the device for random bytes; returns them and how many it wrote.
    fn read(&self) -> Result<([u8; ENTROPY_BYTES], usize)> {
        let mut guard = self.vq.lock();
        let vq = Option::as_mut(&mut *guard).ok_or(EAGAIN)?;
        let req = EntropyReq::new_boxed()?;
        let (req, len) = vq.exec(req)?;
        // The device says how much it wrote; never trust it beyond the buffer.
        let len = usize::try_from(len).map_or(ENTROPY_BYTES, |l| l.min(ENTROPY_BYTES));
        self.requests.fetch_add(1, Relaxed);
        // CAST: `len <= ENTROPY_BYTES`.
        self.bytes.fetch_add(len as u64, Relaxed);
        Ok((req.bytes(), len))
    }

    /// Adds a request, kicks the device, waits for the queue's handler, then takes the buffer
    /// back: the interrupt-driven path, without `exec()`.
    fn read_async(&self) -> Result<[u8; ENTROPY_BYTES]> {
        let mut guard = self.vq.lock();
        let vq = Option::as_mut(&mut *guard).ok_or(EAGAIN)?;
        let before = self.callbacks.0.load(Relaxed);
        let req = EntropyReq::new_boxed()?;
        vq.add(req, GFP_KERNEL).map_err(|(e, _req)| e)?;
        if !vq.kick() {
            return Err(EIO);
        }
        // Nothing takes the buffer back before the handler ran, so it must run.
        let mut called = false;
        for _ in 0..100 {
            if self.callbacks.0.load(Relaxed) != before {
                called = true;
                break;
            }
            kernel::time::delay::fsleep(kernel::time::Delta::from_millis(10));
        }
        // Take the buffer back in any case; `exec()` would drop it as stale otherwise.
        let (req, _len) = loop {
            if let Some(done) = vq.get_buf() {
                break done;
            }
            if vq.is_broken() {
                return Err(EIO);
            }
            kernel::time::delay::fsleep(kernel::time::Delta::from_millis(10));
        };
        if !called {
            return Err(ETIMEDOUT);
        }
        Ok(req.bytes())
    }

    fn show_entropy_async(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(
            f,
            self.read_async().as_ref().map(|b| &b[..]).map_err(|e| *e),
        )
    }

    fn show_entropy(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(
            f,
            self.read()
                .as_ref()
                .map(|(b, len)| &b[..*len])
                .map_err(|e| *e),
        )
    }

    fn show_stats(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "requests {}\nbytes {}\ncallbacks {}",
            self.requests.load(Relaxed),
            self.bytes.load(Relaxed),
            self.callbacks.0.load(Relaxed)
        )
    }
}

// Fields drop in order: the debugfs files go before their directory.
#[pin_data]
struct SampleDriver {
    #[pin]
    entropy: debugfs::File<Arc<Rng>>,
    #[pin]
    stats: debugfs::File<Arc<Rng>>,
    #[pin]
    callbacks: debugfs::File<Arc<Rng>>,
    #[pin]
    entropy_async: debugfs::File<Arc<Rng>>,
    rng: Arc<Rng>,
    _dir: debugfs::Dir,
}

kernel::virtio_device_table!(VIRTIO_TABLE, [virtio::DeviceId::new(uapi::VIRTIO_ID_RNG)]);

#[vtable]
impl virtio::Driver for SampleDriver {
    type Data<'bound> = Self;
    const ID_TABLE: virtio::IdTable = &VIRTIO_TABLE;

    fn probe<'bound>(
        vdev: &'bound virtio::Device<Core<'_>>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        pin_init::pin_init_scope(move || {
            let callbacks = Arc::new(Callbacks(Atomic::new(0)), GFP_KERNEL)?;
            let vq = Rng::find_vq(vdev, &callbacks)?;
            let rng = Arc::pin_init(
                pin_init!(Rng {
                    vq <- new_mutex!(Some(vq)),
                    requests: Atomic::new(0),
                    bytes: Atomic::new(0),
                    callbacks,
                }),
                GFP_KERNEL,
            )?;
            vdev.ready();

            let name = CString::try_from_fmt(fmt!("rust_virtio_rng.virtio{}", vdev.index()))?;
            let dir = debugfs::Dir::new(&name);
            dev_info!(
                vdev,
                "Rust virtio-rng sample bound; entropy in debugfs {}\n",
                &*name
            );

            Ok(try_pin_init!(Self {
                entropy <- dir.read_callback_file(c"entropy", rng.clone(), &|r: &Arc<Rng>, f| {
                    r.show_entropy(f)
                }),
                stats <- dir.read_callback_file(c"stats", rng.clone(), &|r: &Arc<Rng>, f| {
                    r.show_stats(f)
                }),
                entropy_async <- dir.read_callback_file(
                    c"entropy_async",
                    rng.clone(),
                    &|r: &Arc<Rng>, f| r.show_entropy_async(f)
                ),
                callbacks <- dir.read_write_callback_file(
                    c"callbacks",
                    rng.clone(),
                    &|r: &Arc<Rng>, f| writeln!(f, "{}", r.callbacks.0.load(Relaxed)),
                    &|r: &Arc<Rng>, w: &mut UserSliceReader| r.set_callbacks(w)
                ),
                rng,
                _dir: dir,
            }))
        })
    }

    fn freeze<'bound>(vdev: &virtio::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) -> Result {
        // Dropping the queue resets the device and deletes the virtqueue.
        drop(this.rng.vq.lock().take());
        dev_info!(vdev, "frozen\n");
        Ok(())
    }

    fn restore<'bound>(vdev: &virtio::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) -> Result {
        let vq = Rng::find_vq(vdev, &this.rng.callbacks)?;
        *this.rng.vq.lock() = Some(vq);
        vdev.ready();
        dev_info!(vdev, "restored\n");
        Ok(())
    }

    fn unbind<'bound>(vdev: &'bound virtio::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) {
        dev_info!(
            vdev,
            "Rust virtio-rng sample unbound after {} requests\n",
            this.rng.requests.load(Relaxed)
        );
    }
}

kernel::module_virtio_driver! {
    type: SampleDriver,
    name: "rust_driver_virtio_rng",
    authors: ["virtio-mem-rs contributors"],
    description: "Rust virtio-rng driver sample",
    license: "GPL v2",
}
