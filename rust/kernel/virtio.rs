// SPDX-License-Identifier: GPL-2.0

//! Abstractions for the virtio bus.
//!
//! A virtio driver implements [`Driver`], declares the device types it binds to with
//! [`virtio_device_table!`](kernel::virtio_device_table) and registers itself with
//! [`module_virtio_driver!`](kernel::module_virtio_driver). In `probe` it reads the device's
//! configuration space with [`Device::read_config`], creates its virtqueues with
//! [`Device::find_vqs`] and marks the device ready with [`Device::ready`].
//!
//! C headers: [`include/linux/virtio.h`](srctree/include/linux/virtio.h),
//! [`include/linux/virtio_config.h`](srctree/include/linux/virtio_config.h)

use crate::{
    bindings,
    device,
    device_id::RawDeviceId,
    driver,
    error::{
        from_result,
        to_result,
        VTABLE_DEFAULT_ERROR, //
    },
    prelude::*,
    str::CStr,
    sync::Arc,
    types::Opaque,
    ThisModule, //
};
use core::{
    marker::PhantomData,
    mem::offset_of,
    ptr::{
        addr_of_mut,
        NonNull, //
    },
};

pub mod config;
pub mod endian;
pub mod virtqueue;

pub use self::config::ConfigReader;
pub use self::endian::{
    Endian,
    VirtioInt, //
};
pub use self::virtqueue::{
    ExecError,
    Lent,
    Message,
    NoData,
    Parts,
    QueueSpec,
    Request,
    Virtqueue,
    Virtqueues, //
    VqHandler,
    MAX_PARTS,
};

/// Feature bit: the device complies with virtio 1.0 or later (`VIRTIO_F_VERSION_1`).
pub const F_VERSION_1: u32 = bindings::VIRTIO_F_VERSION_1;

/// Feature bit: the device sits behind an IOMMU or uses platform-specific DMA
/// (`VIRTIO_F_ACCESS_PLATFORM`).
pub const F_ACCESS_PLATFORM: u32 = bindings::VIRTIO_F_ACCESS_PLATFORM;

/// Feature bit: the rings may carry indirect descriptor tables (`VIRTIO_RING_F_INDIRECT_DESC`).
/// Without it, adding a buffer allocates nothing.
pub const RING_F_INDIRECT_DESC: u32 = crate::uapi::VIRTIO_RING_F_INDIRECT_DESC;

/// Number of feature bits the virtio core tracks (`VIRTIO_FEATURES_BITS`).
pub const FEATURES_BITS: u32 = bindings::VIRTIO_FEATURES_U64S * 64;

/// Device status bit `VIRTIO_CONFIG_S_DRIVER_OK`.
const STATUS_DRIVER_OK: u8 = bindings::VIRTIO_CONFIG_S_DRIVER_OK as u8;

/// An adapter for the registration of virtio drivers.
pub struct Adapter<T: Driver>(T);

// - `bindings::virtio_driver` is a C type declared as `repr(C)`.
// - `T::Data` is the type of the driver's device private data.
// - `struct virtio_driver` embeds a `struct device_driver`.
// - `DEVICE_DRIVER_OFFSET` is the correct byte offset to the embedded `struct device_driver`.
// SAFETY: By the four points above, the requirements of `DriverLayout` hold.
unsafe impl<T: Driver> driver::DriverLayout for Adapter<T> {
    type DriverType = bindings::virtio_driver;
    type DriverData<'bound> = T::Data<'bound>;
    const DEVICE_DRIVER_OFFSET: usize = offset_of!(Self::DriverType, driver);
}

// SAFETY: A call to `unregister` for a given instance of `DriverType` is guaranteed to be valid if
// a preceding call to `register` has been successful.
unsafe impl<T: Driver + 'static> driver::RegistrationOps for Adapter<T> {
    unsafe fn register(
        vdrv: &Opaque<Self::DriverType>,
        name: &'static CStr,
        module: &'static ThisModule,
    ) -> Result {
        let features = T::FEATURES;
        if features.iter().any(|&f| f >= FEATURES_BITS) {
            return Err(EINVAL);
        }

        // SAFETY: It's safe to set the fields of `struct virtio_driver` on initialization; the
        // tables are `'static` and therefore outlive the registration.
        unsafe {
            let d = vdrv.get();
            (*d).driver.name = name.as_char_ptr();
            (*d).id_table = T::ID_TABLE.as_ptr();
            (*d).feature_table = features.as_ptr();
            // CAST: checked above that every entry is a valid feature bit; the table of at most
            // `FEATURES_BITS` distinct bits is short, and any length fits `u32` on 64-bit.
            (*d).feature_table_size = features.len() as u32;
            (*d).probe = Some(Self::probe_callback);
            (*d).remove = Some(Self::remove_callback);
            if T::HAS_VALIDATE {
                (*d).validate = Some(Self::validate_callback);
            }
            if T::HAS_CONFIG_CHANGED {
                (*d).config_changed = Some(Self::config_changed_callback);
            }
            if T::HAS_FREEZE {
                (*d).freeze = Some(Self::freeze_callback);
            }
            if T::HAS_RESTORE {
                (*d).restore = Some(Self::restore_callback);
            }
            if T::HAS_SHUTDOWN {
                (*d).shutdown = Some(Self::shutdown_callback);
            }
        }

        // SAFETY: `vdrv` is guaranteed to be a valid `DriverType`.
        to_result(unsafe { bindings::__register_virtio_driver(vdrv.get(), module.as_ptr()) })
    }

    unsafe fn unregister(vdrv: &Opaque<Self::DriverType>) {
        // SAFETY: `vdrv` is guaranteed to be a valid `DriverType`.
        unsafe { bindings::unregister_virtio_driver(vdrv.get()) }
    }
}

impl<T: Driver + 'static> Adapter<T> {
    extern "C" fn probe_callback(vdev: *mut bindings::virtio_device) -> c_int {
        // INVARIANT: `vdev` is valid for the duration of `probe_callback()`.
        // SAFETY: The virtio bus only ever calls the probe callback with a valid pointer to a
        // `struct virtio_device`.
        let vdev = unsafe { &*vdev.cast::<Device<device::CoreInternal<'_>>>() };

        // `priv` belongs to the bound driver, and a C driver may have left it dangling.
        // SAFETY: `vdev` is valid and not bound yet, so nothing else uses `priv`.
        unsafe { (*vdev.as_raw()).priv_ = core::ptr::null_mut() };

        let ret = from_result(|| {
            let data = T::probe(vdev);

            vdev.as_ref().set_drvdata(data)?;
            Ok(0)
        });
        if ret != 0 {
            vdev.reset();
            // SAFETY: We are in the probe callback and the device was just reset.
            unsafe { Virtqueues::revoke(vdev) };
        }
        ret
    }

    extern "C" fn remove_callback(vdev: *mut bindings::virtio_device) {
        // INVARIANT: `vdev` is valid for the duration of `remove_callback()`.
        // SAFETY: The virtio bus only ever calls the remove callback with a valid pointer to a
        // `struct virtio_device`.
        let vdev = unsafe { &*vdev.cast::<Device<device::CoreInternal<'_>>>() };

        // SAFETY: `remove_callback` is only ever called after a successful call to
        // `probe_callback`, hence it's guaranteed that `Device::set_drvdata()` has been called
        // and stored a `Pin<KBox<T::Data<'_>>>`.
        let data = unsafe { vdev.as_ref().drvdata_borrow::<T::Data<'_>>() };

        T::unbind(vdev, data);

        // The virtio core expects the device to be reset once `remove` returns; then the queues
        // can go. The private data is dropped by the driver core afterwards, and any queue handle
        // it still holds is revoked.
        vdev.reset();
        // SAFETY: We are in the remove callback and the device was just reset.
        unsafe { Virtqueues::revoke(vdev) };
    }

    extern "C" fn validate_callback(vdev: *mut bindings::virtio_device) -> c_int {
        // SAFETY: The virtio bus only ever calls the validate callback with a valid pointer to a
        // `struct virtio_device`, before `probe`. It gets no bus context: queues cannot be
        // created before the features are final.
        let vdev = unsafe { &*vdev.cast::<Device>() };
        // The features are not final yet: the core writes back what `validate` leaves.
        let mut features = Features(vdev);

        from_result(|| T::validate(vdev, &mut features).map(|()| 0))
    }

    extern "C" fn config_changed_callback(vdev: *mut bindings::virtio_device) {
        // The virtio core calls `config_changed` only between the end of a successful `probe` (or
        // `restore`) and the start of `remove` (or `freeze`): `virtio_config_core_disable()` runs
        // under the same `config_lock` before either.
        // SAFETY: `vdev` is a valid `struct virtio_device`, bound for the whole call (above).
        let vdev = unsafe { &*vdev.cast::<Device<device::BoundInternal>>() };

        // SAFETY: See above: `probe` stored the private data with `set_drvdata` and it is only
        // dropped after `remove`.
        let data = unsafe { vdev.as_ref().drvdata_borrow::<T::Data<'_>>() };

        T::config_changed(vdev, data);
    }

    extern "C" fn freeze_callback(vdev: *mut bindings::virtio_device) -> c_int {
        // SAFETY: The virtio core calls `freeze` with a valid pointer to a bound
        // `struct virtio_device`, from the transport's PM callbacks, which the PM core serializes
        // with probe and remove of the device.
        let vdev = unsafe { &*vdev.cast::<Device<device::CoreInternal<'_>>>() };

        // SAFETY: The device is bound, so `probe` stored the private data.
        let data = unsafe { vdev.as_ref().drvdata_borrow::<T::Data<'_>>() };

        let ret = from_result(|| T::freeze(vdev, data).map(|()| 0));
        if ret == 0 {
            vdev.reset();
            // SAFETY: We are in the freeze callback and the device was just reset.
            unsafe { Virtqueues::revoke(vdev) };
        }
        ret
    }

    extern "C" fn restore_callback(vdev: *mut bindings::virtio_device) -> c_int {
        // SAFETY: The virtio core calls `restore` with a valid pointer to a bound
        // `struct virtio_device`, from the transport's PM callbacks, which the PM core serializes
        // with probe and remove of the device.
        let vdev = unsafe { &*vdev.cast::<Device<device::CoreInternal<'_>>>() };

        // SAFETY: The device is bound, so `probe` stored the private data.
        let data = unsafe { vdev.as_ref().drvdata_borrow::<T::Data<'_>>() };

        from_result(|| T::restore(vdev, data).map(|()| 0))
    }

    extern "C" fn shutdown_callback(vdev: *mut bindings::virtio_device) {
        // SAFETY: The virtio core calls `shutdown` with a valid pointer to a `struct
        // virtio_device` bound to this driver, from `device_shutdown()`, which holds the device
        // lock: probe and remove are excluded.
        let vdev = unsafe { &*vdev.cast::<Device<device::CoreInternal<'_>>>() };

        // SAFETY: The device is bound, so `probe` stored the private data.
        let data = unsafe { vdev.as_ref().drvdata_borrow::<T::Data<'_>>() };

        T::shutdown(vdev, data);

        // What the core does for drivers without `shutdown`: mark the queues broken, wait for
        // callbacks in flight, and reset the device so that it stops accessing memory. The
        // queues stay (as in C); operations on them fail with `EIO` from now on.
        // SAFETY: `vdev` is valid; nothing uses the device concurrently in a way the core
        // does not expect (this is the core's own shutdown sequence).
        unsafe { bindings::virtio_device_shutdown(vdev.as_raw()) };
    }
}

/// Declares a kernel module that exposes a single virtio driver.
///
/// # Examples
///
/// ```ignore
/// kernel::module_virtio_driver! {
///     type: MyDriver,
///     name: "Module name",
///     authors: ["Author name"],
///     description: "Description",
///     license: "GPL v2",
/// }
/// ```
#[macro_export]
macro_rules! module_virtio_driver {
    ($($f:tt)*) => {
        $crate::module_driver!(<T>, $crate::virtio::Adapter<T>, { $($f)* });
    };
}

/// A virtio device ID ([`struct virtio_device_id`]): a device type and a vendor.
///
/// [`struct virtio_device_id`]: srctree/include/linux/mod_devicetable.h
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct DeviceId(bindings::virtio_device_id);

impl DeviceId {
    /// Matches any vendor (`VIRTIO_DEV_ANY_ID`).
    pub const ANY_VENDOR: u32 = bindings::VIRTIO_DEV_ANY_ID;

    /// A device ID matching device type `device` (one of `VIRTIO_ID_*`) of any vendor.
    pub const fn new(device: u32) -> Self {
        Self(bindings::virtio_device_id {
            device,
            vendor: Self::ANY_VENDOR,
        })
    }

    /// A device ID matching device type `device` of vendor `vendor` only.
    pub const fn with_vendor(device: u32, vendor: u32) -> Self {
        Self(bindings::virtio_device_id { device, vendor })
    }
}

// SAFETY: `DeviceId` is a `#[repr(transparent)]` wrapper of `virtio_device_id` and does not add
// additional invariants, so it's safe to transmute to `RawType`.
unsafe impl RawDeviceId for DeviceId {
    type RawType = bindings::virtio_device_id;
}

/// `IdTable` type for virtio. Virtio IDs carry no driver data.
pub type IdTable = &'static dyn kernel::device_id::IdTable<DeviceId, ()>;

/// Creates a virtio `IdTable` with its alias for modpost, which turns it into `virtio:dNvN`
/// module aliases so that the module is loaded when a matching device appears.
///
/// # Examples
///
/// ```
/// kernel::virtio_device_table!(MY_TABLE, [kernel::virtio::DeviceId::new(4)]);
/// ```
#[macro_export]
macro_rules! virtio_device_table {
    ($table_name:ident, [$($id:expr),* $(,)?]) => {
        $crate::module_device_table!("virtio", $crate::virtio::DeviceId, $table_name, @none,
                                     [$($id),*]);
    };
}

/// The virtio driver trait.
///
/// The optional callbacks are selected with `#[vtable]`: a driver implements only those it needs.
///
/// # Examples
///
/// ```
/// use kernel::{device::Core, prelude::*, virtio};
///
/// struct MyDriver;
///
/// kernel::virtio_device_table!(MY_TABLE, [virtio::DeviceId::new(4)]);
///
/// #[vtable]
/// impl virtio::Driver for MyDriver {
///     type Data<'bound> = Self;
///     const ID_TABLE: virtio::IdTable = &MY_TABLE;
///
///     fn probe<'bound>(
///         _vdev: &'bound virtio::Device<Core<'_>>,
///     ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
///         Err(ENODEV)
///     }
/// }
/// ```
#[vtable]
pub trait Driver: Send {
    /// The type of the driver's bus device private data.
    type Data<'bound>: Send + Sync + 'bound;

    /// The table of device ids supported by the driver.
    const ID_TABLE: IdTable;

    /// The feature bits the driver offers; the core negotiates them with the device before
    /// `probe`. Query the result with [`Device::has_feature`].
    const FEATURES: &'static [u32] = &[];

    /// Virtio driver probe: set the device up. Called with the device lock held, after feature
    /// negotiation. Unless the driver called [`Device::ready`], the core marks the device
    /// ready once `probe` returns.
    fn probe<'bound>(
        vdev: &'bound Device<device::Core<'_>>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound;

    /// Validates the negotiated features before `probe`, and may withdraw some of them with
    /// [`Features::clear`]; the device then sees only what is left. Optional.
    fn validate(_vdev: &Device, _features: &mut Features<'_>) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// The device's configuration space changed.
    ///
    /// Called in atomic (hard interrupt) context with the core's config lock held: the driver
    /// must not sleep, and typically schedules work. Optional.
    fn config_changed<'bound>(_vdev: &Device<device::Bound>, _this: Pin<&Self::Data<'bound>>) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// The system is suspending: quiesce the device. If this succeeds, the abstraction resets
    /// the device and revokes its virtqueues. Optional.
    fn freeze<'bound>(_vdev: &Device<device::Core<'_>>, _this: Pin<&Self::Data<'bound>>) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// The system resumed: recreate the virtqueues and mark the device ready. Optional.
    fn restore<'bound>(
        _vdev: &Device<device::Core<'_>>,
        _this: Pin<&Self::Data<'bound>>,
    ) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// The system is shutting down (reboot, power-off, kexec): stop using the device, for
    /// example stop work that sends requests. Afterwards the abstraction marks the queues broken
    /// and resets the device, as the virtio core does for drivers without this callback.
    /// Optional.
    fn shutdown<'bound>(_vdev: &Device<device::Core<'_>>, _this: Pin<&Self::Data<'bound>>) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Virtio driver unbind.
    ///
    /// Called when the [`Device`] is unbound from its driver, before the private data is
    /// dropped; teardown that needs the device (and its queues) goes here, release of resources
    /// in `Drop`. After it returns, the abstraction resets the device and revokes its virtqueues.
    /// Implementing it is optional.
    fn unbind<'bound>(vdev: &'bound Device<device::Core<'_>>, this: Pin<&Self::Data<'bound>>) {
        let _ = (vdev, this);
    }
}

/// The features negotiated with a device, while [`Driver::validate`] may still narrow them.
pub struct Features<'a>(&'a Device);

impl Features<'_> {
    /// Whether feature `bit` is negotiated so far.
    pub fn has(&self, bit: u32) -> bool {
        self.0.has_feature(bit)
    }

    /// Withdraws feature `bit` (no effect if it is not negotiated, or beyond the core's bits).
    pub fn clear(&mut self, bit: u32) {
        if bit < FEATURES_BITS {
            // SAFETY: `self.0` is a valid device in its `validate` callback, where nothing else
            // reads or writes its features; `bit` is below `VIRTIO_FEATURES_BITS`.
            unsafe { bindings::__virtio_clear_bit(self.0.as_raw(), bit) };
        }
    }
}

/// A virtio device ([`struct virtio_device`]).
///
/// # Invariants
///
/// A [`Device`] instance represents a valid `struct virtio_device` created by the C portion of
/// the kernel.
///
/// [`struct virtio_device`]: srctree/include/linux/virtio.h
#[repr(transparent)]
pub struct Device<Ctx: device::DeviceContext = device::Normal>(
    Opaque<bindings::virtio_device>,
    PhantomData<Ctx>,
);

impl<Ctx: device::DeviceContext> Device<Ctx> {
    #[inline]
    fn as_raw(&self) -> *mut bindings::virtio_device {
        self.0.get()
    }

    /// The config operations of the transport.
    fn ops(&self) -> &bindings::virtio_config_ops {
        // SAFETY: By the type invariant `self.as_raw()` is a valid `struct virtio_device`, whose
        // `config` points to the transport's static operations for the device's whole life.
        unsafe { &*(*self.as_raw()).config }
    }

    /// Resets the device: it stops processing virtqueues and forgets its state, and all
    /// virtqueue callbacks have returned when this returns.
    fn reset(&self) {
        // SAFETY: By the type invariant `self.as_raw()` is a valid `struct virtio_device`.
        unsafe { bindings::virtio_reset_device(self.as_raw()) };
    }
}

impl Device {
    /// The device type (`VIRTIO_ID_*`).
    pub fn device_type(&self) -> u32 {
        // SAFETY: By the type invariant `self.as_raw()` is a valid `struct virtio_device`.
        unsafe { (*self.as_raw()).id.device }
    }

    /// The device vendor.
    pub fn vendor(&self) -> u32 {
        // SAFETY: By the type invariant `self.as_raw()` is a valid `struct virtio_device`.
        unsafe { (*self.as_raw()).id.vendor }
    }

    /// The bus-unique index of the device (the `N` of `virtioN`).
    pub fn index(&self) -> i32 {
        // SAFETY: By the type invariant `self.as_raw()` is a valid `struct virtio_device`.
        unsafe { (*self.as_raw()).index }
    }

    /// Whether feature `bit` was negotiated with the device.
    ///
    /// Unlike C's `virtio_has_feature()`, asking for a feature the driver did not offer is not a
    /// bug: it simply was not negotiated, and this returns `false`. Bits beyond the ones the
    /// core tracks are never negotiated either.
    pub fn has_feature(&self, bit: u32) -> bool {
        if bit >= FEATURES_BITS {
            return false;
        }
        // SAFETY: By the type invariant `self.as_raw()` is a valid `struct virtio_device`, and
        // `bit` is below `VIRTIO_FEATURES_BITS`.
        unsafe { bindings::__virtio_test_bit(self.as_raw(), bit) }
    }

    /// The byte order of the device's `__virtio16`, `__virtio32` and `__virtio64` fields, in
    /// its configuration space and its messages: little-endian for virtio 1.0 devices,
    /// guest-native for legacy ones.
    pub fn endian(&self) -> Endian {
        Endian::new(self.has_feature(F_VERSION_1) || cfg!(target_endian = "little"))
    }

    /// The current device status byte (`VIRTIO_CONFIG_S_*`).
    pub(crate) fn status(&self) -> u8 {
        match self.ops().get_status {
            // SAFETY: By the type invariant `self.as_raw()` is a valid `struct virtio_device`;
            // every transport implements `get_status`.
            Some(f) => unsafe { f(self.as_raw()) },
            None => 0,
        }
    }

    /// The configuration generation counter; it changes whenever the device changes its
    /// configuration space. Transports without one report 0.
    fn generation(&self) -> u32 {
        match self.ops().generation {
            // SAFETY: By the type invariant `self.as_raw()` is a valid `struct virtio_device`.
            Some(f) => unsafe { f(self.as_raw()) },
            None => 0,
        }
    }

    /// Reads the configuration space consistently; for callers that know the device is bound.
    pub(crate) fn read_config_unchecked<C: Zeroable, R>(
        &self,
        mut read: impl FnMut(&ConfigReader<'_, C>) -> R,
    ) -> R {
        let reader = ConfigReader::new(self);
        loop {
            let gen = self.generation();
            let value = read(&reader);
            if gen == self.generation() {
                return value;
            }
        }
    }
}

impl Device<device::Bound> {
    /// Reads the configuration space consistently, laid out as `C`.
    ///
    /// `read` is called with a [`ConfigReader`] and reads any number of fields; if the device
    /// changed its configuration meanwhile (the generation counter moved), it is called again,
    /// exactly like C's `virtio_cread()` loop.
    ///
    /// Work that runs outside the bus callbacks reads through a queue instead
    /// ([`Virtqueue::read_config`]), which is revoked at unbind.
    ///
    /// # Examples
    ///
    /// ```
    /// # use kernel::{device::Bound, uapi, virtio};
    /// type Cfg = uapi::virtio_mem_config;
    /// fn sizes(vdev: &virtio::Device<Bound>) -> (u64, u64) {
    ///     vdev.read_config(|c: &virtio::ConfigReader<'_, Cfg>| {
    ///         (c.le(|c| &c.addr), c.le(|c| &c.region_size))
    ///     })
    /// }
    /// ```
    pub fn read_config<C: Zeroable, R>(&self, read: impl FnMut(&ConfigReader<'_, C>) -> R) -> R {
        self.read_config_unchecked(read)
    }

    /// Writes `value` little-endian into the field `field` returns of the configuration space
    /// laid out as `C`, e.g. virtio-balloon's `actual` with `|c| &c.actual`. A closure that
    /// returns anything but a field of the `C` it is given WARNs and writes nothing.
    pub fn write_config_le<C: Zeroable, F: VirtioInt>(
        &self,
        field: impl FnOnce(&C) -> &F,
        value: F,
    ) {
        config::write_le(self, field, value);
    }
}

impl<'a> Device<device::Core<'a>> {
    /// Marks the device ready (`DRIVER_OK`): from now on it may use the virtqueues and raise
    /// callbacks. Does nothing if it is ready already.
    pub fn ready(&self) {
        if self.status() & STATUS_DRIVER_OK != 0 {
            return;
        }
        // SAFETY: By the type invariant `self.as_raw()` is a valid `struct virtio_device`; we are
        // in a bus callback (probe or restore), and the device is not ready yet, so
        // `virtio_device_ready()`'s precondition holds.
        unsafe { bindings::virtio_device_ready(self.as_raw()) };
    }

    /// Creates the device's virtqueues, one per entry of `specs`, in order.
    ///
    /// See [`Virtqueues`] for how to use them. Dropping the returned set (and every queue taken
    /// from it) resets the device and deletes the virtqueues.
    pub fn find_vqs(&self, specs: &[QueueSpec]) -> Result<Arc<Virtqueues>> {
        Virtqueues::new(self, specs)
    }
}

// SAFETY: `virtio::Device` is a transparent wrapper of `struct virtio_device`.
// The offset is guaranteed to point to a valid device field inside `virtio::Device`.
unsafe impl<Ctx: device::DeviceContext> device::AsBusDevice<Ctx> for Device<Ctx> {
    const OFFSET: usize = offset_of!(bindings::virtio_device, dev);
}

// SAFETY: `Device` is a transparent wrapper of a type that doesn't depend on `Device`'s generic
// argument.
kernel::impl_device_context_deref!(unsafe { Device });
kernel::impl_device_context_into_aref!(Device);

// SAFETY: Instances of `Device` are always reference-counted.
unsafe impl crate::sync::aref::AlwaysRefCounted for Device {
    #[inline]
    fn inc_ref(&self) {
        // SAFETY: The existence of a shared reference guarantees that the refcount is non-zero.
        unsafe { bindings::get_device(addr_of_mut!((*self.as_raw()).dev)) };
    }

    #[inline]
    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The safety requirements guarantee that the refcount is non-zero.
        unsafe {
            bindings::put_device(addr_of_mut!(
                (*obj.cast::<bindings::virtio_device>().as_ptr()).dev
            ))
        }
    }
}

impl<Ctx: device::DeviceContext> AsRef<device::Device<Ctx>> for Device<Ctx> {
    fn as_ref(&self) -> &device::Device<Ctx> {
        // SAFETY: By the type invariant of `Self`, `self.as_raw()` is a pointer to a valid
        // `struct virtio_device`.
        let dev = unsafe { addr_of_mut!((*self.as_raw()).dev) };

        // SAFETY: `dev` points to a valid `struct device`.
        unsafe { device::Device::from_raw(dev) }
    }
}

// SAFETY: A `Device` is always reference-counted and can be released from any thread.
unsafe impl Send for Device {}

// SAFETY: `Device` can be shared among threads because all methods of `Device`
// (i.e. `Device<Normal>`) are thread safe: config reads go through the transport, which
// serializes them, and feature bits are fixed after negotiation.
unsafe impl Sync for Device {}

// SAFETY: Same as `Device<Normal>` -- the underlying `struct virtio_device` is the same;
// `Bound` is a zero-sized type-state marker that does not affect thread safety.
unsafe impl Sync for Device<device::Bound> {}

#[cfg(CONFIG_RUST_VIRTIO_KUNIT_TEST)]
#[macros::kunit_tests(rust_kernel_virtio)]
mod tests {
    use super::*;

    #[test]
    fn device_id_matches_any_vendor_by_default() {
        let id = DeviceId::new(crate::uapi::VIRTIO_ID_MEM);
        assert_eq!(id.0.device, crate::uapi::VIRTIO_ID_MEM);
        assert_eq!(id.0.vendor, bindings::VIRTIO_DEV_ANY_ID);
        let id = DeviceId::with_vendor(4, 0x1af4);
        assert_eq!((id.0.device, id.0.vendor), (4, 0x1af4));
    }

    #[test]
    fn feature_bits_cover_the_transport_range() {
        // Transport features (28..42) and VERSION_1 must be representable.
        assert!(F_VERSION_1 < FEATURES_BITS);
        assert!(bindings::VIRTIO_TRANSPORT_F_END <= FEATURES_BITS);
    }

    #[test]
    fn request_parts_cover_exactly_their_fields() -> Result {
        let mut req = KBox::new(
            Request::<[u8; 24], u16> {
                out: [7; 24],
                resp: 0,
            },
            GFP_KERNEL,
        )?;
        let base = core::ptr::from_ref(&*req).cast::<u8>();
        let end = base.wrapping_add(core::mem::size_of::<Request<[u8; 24], u16>>());
        let parts = req.parts();
        assert_eq!((parts.nr_out(), parts.nr_in()), (1, 1));
        let out = parts.out[0].unwrap_or(&[]);
        let (r, rlen) = parts.inp[0].unwrap_or((core::ptr::null_mut(), 0));
        assert_eq!(out.len(), 24);
        assert_eq!(rlen, 2);
        assert_eq!(out.as_ptr(), base);
        assert!(out.iter().all(|&b| b == 7));
        // Both parts lie inside the boxed message and do not overlap.
        let r = r.cast_const();
        assert!(r >= out.as_ptr().wrapping_add(out.len()) && r.wrapping_add(2) <= end);
        Ok(())
    }

    #[test]
    fn empty_parts_are_empty() -> Result {
        let mut req = KBox::new(
            Request::<NoData, [u8; 8]> {
                out: (),
                resp: [0; 8],
            },
            GFP_KERNEL,
        )?;
        let parts = req.parts();
        assert_eq!((parts.nr_out(), parts.nr_in()), (0, 1));
        Ok(())
    }

    #[test]
    fn parts_overflow_is_detected() {
        let bufs = [[0u8; 1]; MAX_PARTS + 1];
        let mut p = Parts::new();
        for b in &bufs {
            p = p.out(b);
        }
        assert!(p.overflow);
        assert_eq!(p.nr_out(), MAX_PARTS);
    }
}
