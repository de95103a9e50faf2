// SPDX-License-Identifier: GPL-2.0

//! Typed reads of a virtio device's configuration space.
//!
//! C header: [`include/linux/virtio_config.h`](srctree/include/linux/virtio_config.h)

use super::{
    Device,
    VirtioInt, //
};
use core::marker::PhantomData;
use pin_init::Zeroable;

/// The offset in `C` of the field `field` returns, which it must take from the `C` it is
/// given; anything else gives an offset outside `C`, which the accessors refuse.
fn offset_in<C: Zeroable, F>(field: impl FnOnce(&C) -> &F) -> usize {
    let c: C = pin_init::zeroed();
    let base = core::ptr::from_ref(&c).addr();
    core::ptr::from_ref(field(&c)).addr().wrapping_sub(base)
}

/// Whether `len` bytes at `offset` lie within `C`; WARNs if not, as that is a driver bug.
fn inside<C>(offset: usize, len: usize) -> bool {
    let inside = offset
        .checked_add(len)
        .is_some_and(|end| end <= core::mem::size_of::<C>());
    !crate::warn_on!(!inside)
}

/// Reads fields of a device's configuration space, laid out as `C` (typically the device's
/// UAPI config structure, e.g. `uapi::virtio_mem_config`).
///
/// Only handed out by [`Device::read_config`], which repeats the reads if the device changed its
/// configuration meanwhile, so that a set of fields read together is consistent.
///
/// A field is named by a closure that returns it from a `C`, such as `|c| &c.block_size`: its
/// type gives the size of the read, and every read uses one access of that size, as the virtio
/// specification requires. A closure that returns anything but a field of the `C` it is given
/// is a driver bug, which WARNs and reads zeroes instead of reaching the transport (whose own
/// range check is a `BUG_ON`). Drivers must still validate every value: the device is not
/// trusted.
pub struct ConfigReader<'a, C> {
    dev: &'a Device,
    _layout: PhantomData<C>,
}

impl<'a, C: Zeroable> ConfigReader<'a, C> {
    pub(super) fn new(dev: &'a Device) -> Self {
        Self {
            dev,
            _layout: PhantomData,
        }
    }

    /// Reads the bytes of a field of type `F` at `offset` with one access of their size.
    fn raw<F: VirtioInt>(&self, offset: usize) -> F::Bytes {
        let mut buf = F::Bytes::default();
        let len = buf.as_ref().len();
        if !inside::<C>(offset, len) {
            return buf;
        }
        if let Some(get) = self.dev.ops().get {
            // CAST: Both fit `u32`: `offset + len` is within `C`, a configuration structure of
            // a few hundred bytes at most, and `len` is at most 8.
            let (offset, len) = (offset as u32, len as u32);
            // SAFETY: `self.dev.as_raw()` is a valid `struct virtio_device` by the type invariant
            // of `Device`, and `buf` is valid for writes of `len` bytes.
            unsafe {
                get(
                    self.dev.as_raw(),
                    offset,
                    buf.as_mut().as_mut_ptr().cast(),
                    len,
                )
            };
        }
        buf
    }

    /// Reads a little-endian field (`__u8`, `__le16`, `__le32`, `__le64`, as in virtio 1.0
    /// device configurations, and in virtio-balloon's even for legacy devices).
    ///
    /// Transports may split a 64-bit access in two; [`Device::read_config`]'s generation check
    /// makes the two halves consistent.
    pub fn le<F: VirtioInt>(&self, field: impl FnOnce(&C) -> &F) -> F {
        F::from_le_bytes(self.raw::<F>(offset_in(field)))
    }

    /// Reads a field in the device's byte order (`__virtio16`, `__virtio32`, `__virtio64`):
    /// little-endian for virtio 1.0 devices, guest-native for legacy ones.
    pub fn virtio<F: VirtioInt>(&self, field: impl FnOnce(&C) -> &F) -> F {
        self.dev
            .endian()
            .from_bytes(self.raw::<F>(offset_in(field)))
    }
}

/// Writes `value` little-endian into the field `field` returns of the configuration space laid
/// out as `C`, with one access of its size. A closure that returns anything but a field of the
/// `C` it is given is a driver bug: it WARNs and writes nothing.
pub(super) fn write_le<C: Zeroable, F: VirtioInt>(
    dev: &Device,
    field: impl FnOnce(&C) -> &F,
    value: F,
) {
    let offset = offset_in(field);
    let bytes = value.to_le_bytes();
    let len = bytes.as_ref().len();
    if !inside::<C>(offset, len) {
        return;
    }
    if let Some(set) = dev.ops().set {
        // CAST: As in `ConfigReader::raw`.
        let (offset, len) = (offset as u32, len as u32);
        // SAFETY: `dev.as_raw()` is a valid `struct virtio_device` by the type invariant of
        // `Device`, and `bytes` is valid for reads of `len` bytes.
        unsafe { set(dev.as_raw(), offset, bytes.as_ref().as_ptr().cast(), len) };
    }
}

#[cfg(CONFIG_RUST_VIRTIO_KUNIT_TEST)]
#[macros::kunit_tests(rust_kernel_virtio_config)]
mod tests {
    use super::*;
    use crate::uapi::virtio_mem_config as Cfg;
    use core::mem::{
        offset_of,
        size_of, //
    };

    #[test]
    fn a_field_closure_gives_the_field_offset() {
        assert_eq!(
            offset_in(|c: &Cfg| &c.block_size),
            offset_of!(Cfg, block_size)
        );
        assert_eq!(offset_in(|c: &Cfg| &c.node_id), offset_of!(Cfg, node_id));
        assert_eq!(
            offset_in(|c: &Cfg| &c.requested_size),
            offset_of!(Cfg, requested_size)
        );
    }

    #[test]
    fn anything_but_a_field_is_outside() {
        static ELSEWHERE: u64 = 0;
        let off = offset_in(|_: &Cfg| &ELSEWHERE);
        assert!(off
            .checked_add(size_of::<u64>())
            .is_none_or(|end| end > size_of::<Cfg>()));
    }
}
