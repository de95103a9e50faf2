// SPDX-License-Identifier: GPL-2.0

//! Typed reads of a virtio device's configuration space.
//!
//! C header: [`include/linux/virtio_config.h`](srctree/include/linux/virtio_config.h)

use super::Device;
use core::marker::PhantomData;

/// Reads fields of a device's configuration space, laid out as `C` (typically the device's
/// UAPI config structure, e.g. `uapi::virtio_mem_config`).
///
/// Only handed out by [`Device::read_config`], which repeats the reads if the device changed its
/// configuration meanwhile, so that a set of fields read together is consistent.
///
/// Every read uses an access of the field's natural size, as the virtio specification requires,
/// and must lie within `C`: a read outside it is a driver bug, which WARNs and returns zeroes
/// instead of reaching the transport (whose own range check is a `BUG_ON`). Drivers must still
/// validate every value: the device is not trusted.
pub struct ConfigReader<'a, C> {
    dev: &'a Device,
    _layout: PhantomData<C>,
}

impl<'a, C> ConfigReader<'a, C> {
    pub(super) fn new(dev: &'a Device) -> Self {
        Self {
            dev,
            _layout: PhantomData,
        }
    }

    /// Reads `N` bytes at `offset` with one access of that size.
    fn raw<const N: usize>(&self, offset: u32) -> [u8; N] {
        let mut buf = [0u8; N];
        let inside = usize::try_from(offset)
            .ok()
            .and_then(|o| o.checked_add(N))
            .is_some_and(|end| end <= core::mem::size_of::<C>());
        if crate::warn_on!(!inside) {
            return buf;
        }
        if let Some(get) = self.dev.ops().get {
            // CAST: `N` is 1, 2, 4 or 8 (see the callers), which fits `u32`.
            let len = N as u32;
            // SAFETY: `self.dev.as_raw()` is a valid `struct virtio_device` by the type invariant
            // of `Device`, and `buf` is valid for writes of `len` bytes.
            unsafe { get(self.dev.as_raw(), offset, buf.as_mut_ptr().cast(), len) };
        }
        buf
    }

    /// Reads a `u8` field.
    pub fn u8(&self, offset: u32) -> u8 {
        self.raw::<1>(offset)[0]
    }

    /// Reads a little-endian 16-bit field (`__le16`, as in virtio 1.0 device configs).
    pub fn le16(&self, offset: u32) -> u16 {
        u16::from_le_bytes(self.raw::<2>(offset))
    }

    /// Reads a little-endian 32-bit field (`__le32`).
    pub fn le32(&self, offset: u32) -> u32 {
        u32::from_le_bytes(self.raw::<4>(offset))
    }

    /// Reads a little-endian 64-bit field (`__le64`).
    ///
    /// Transports may split the access in two; [`Device::read_config`]'s generation check makes
    /// the two halves consistent.
    pub fn le64(&self, offset: u32) -> u64 {
        u64::from_le_bytes(self.raw::<8>(offset))
    }

    /// Reads a 16-bit field in the device's byte order (`__virtio16`): little-endian for virtio
    /// 1.0 devices, guest-native for legacy ones.
    pub fn virtio16(&self, offset: u32) -> u16 {
        let b = self.raw::<2>(offset);
        if self.dev.is_little_endian() {
            u16::from_le_bytes(b)
        } else {
            u16::from_ne_bytes(b)
        }
    }

    /// Reads a 32-bit field in the device's byte order (`__virtio32`).
    pub fn virtio32(&self, offset: u32) -> u32 {
        let b = self.raw::<4>(offset);
        if self.dev.is_little_endian() {
            u32::from_le_bytes(b)
        } else {
            u32::from_ne_bytes(b)
        }
    }

    /// Reads a 64-bit field in the device's byte order (`__virtio64`).
    pub fn virtio64(&self, offset: u32) -> u64 {
        let b = self.raw::<8>(offset);
        if self.dev.is_little_endian() {
            u64::from_le_bytes(b)
        } else {
            u64::from_ne_bytes(b)
        }
    }
}

/// Writes `bytes` at `offset` of the configuration space laid out as `C`, with one access of
/// that size. A write outside `C` is a driver bug: it WARNs and writes nothing.
pub(super) fn write<C>(dev: &Device, offset: u32, bytes: &[u8]) {
    let inside = usize::try_from(offset)
        .ok()
        .and_then(|o| o.checked_add(bytes.len()))
        .is_some_and(|end| end <= core::mem::size_of::<C>());
    if crate::warn_on!(!inside) {
        return;
    }
    let Ok(len) = u32::try_from(bytes.len()) else {
        return;
    };
    if let Some(set) = dev.ops().set {
        // SAFETY: `dev.as_raw()` is a valid `struct virtio_device` by the type invariant of
        // `Device`, and `bytes` is valid for reads of `len` bytes.
        unsafe { set(dev.as_raw(), offset, bytes.as_ptr().cast(), len) };
    }
}
