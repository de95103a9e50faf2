// SPDX-License-Identifier: GPL-2.0

//! The byte order of virtio structures.
//!
//! Fields declared `__le16`, `__le32` and `__le64` are little-endian. Fields declared
//! `__virtio16`, `__virtio32` and `__virtio64`, in configuration spaces and virtqueue messages,
//! are in the device's byte order ([`Endian`]): little-endian for virtio 1.0 devices,
//! guest-native for legacy ones.
//!
//! C header: [`include/linux/virtio_byteorder.h`](srctree/include/linux/virtio_byteorder.h)

mod private {
    pub trait Sealed {}
}

/// An integer of a virtio structure: `u8`, `u16`, `u32` or `u64`.
pub trait VirtioInt: Copy + private::Sealed {
    /// Its bytes.
    type Bytes: Copy + Default + AsRef<[u8]> + AsMut<[u8]>;

    #[doc(hidden)]
    fn from_le_bytes(b: Self::Bytes) -> Self;

    #[doc(hidden)]
    fn from_ne_bytes(b: Self::Bytes) -> Self;

    #[doc(hidden)]
    fn to_le_bytes(self) -> Self::Bytes;

    #[doc(hidden)]
    fn to_ne_bytes(self) -> Self::Bytes;
}

macro_rules! impl_virtio_int {
    ($($t:ty),*) => {$(
        impl private::Sealed for $t {}

        impl VirtioInt for $t {
            type Bytes = [u8; core::mem::size_of::<$t>()];

            fn from_le_bytes(b: Self::Bytes) -> Self {
                <$t>::from_le_bytes(b)
            }

            fn from_ne_bytes(b: Self::Bytes) -> Self {
                <$t>::from_ne_bytes(b)
            }

            fn to_le_bytes(self) -> Self::Bytes {
                <$t>::to_le_bytes(self)
            }

            fn to_ne_bytes(self) -> Self::Bytes {
                <$t>::to_ne_bytes(self)
            }
        }
    )*};
}

impl_virtio_int!(u8, u16, u32, u64);

/// A device's byte order for `__virtio16`, `__virtio32` and `__virtio64` fields
/// ([`Device::endian`]).
///
/// # Examples
///
/// ```
/// use kernel::virtio::Endian;
///
/// let e = Endian::LITTLE;
/// assert_eq!(e.to_bytes(0x1234u16), [0x34, 0x12]);
/// assert_eq!(e.from_bytes::<u32>([1, 0, 0, 0]), 1);
/// assert_eq!(e.read::<u16>(&[0, 0x34, 0x12], 1), Some(0x1234));
/// assert_eq!(e.read::<u16>(&[0, 0x34], 1), None);
/// ```
///
/// [`Device::endian`]: super::Device::endian
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endian {
    little: bool,
}

impl Endian {
    /// Little-endian, as every virtio 1.0 device.
    pub const LITTLE: Self = Self { little: true };

    /// The order of a device: little-endian (`little`), or guest-native for a legacy device.
    pub(crate) const fn new(little: bool) -> Self {
        Self { little }
    }

    /// Whether this is little-endian.
    pub const fn is_little(self) -> bool {
        self.little
    }

    /// The bytes of `v` in this order.
    pub fn to_bytes<F: VirtioInt>(self, v: F) -> F::Bytes {
        if self.little {
            v.to_le_bytes()
        } else {
            v.to_ne_bytes()
        }
    }

    /// The value of the bytes `b` in this order.
    pub fn from_bytes<F: VirtioInt>(self, b: F::Bytes) -> F {
        if self.little {
            F::from_le_bytes(b)
        } else {
            F::from_ne_bytes(b)
        }
    }

    /// Writes `v` in this order into `buf` at `offset`; `None` if it does not fit.
    pub fn write<F: VirtioInt>(self, buf: &mut [u8], offset: usize, v: F) -> Option<()> {
        let b = self.to_bytes(v);
        let end = offset.checked_add(b.as_ref().len())?;
        buf.get_mut(offset..end)?.copy_from_slice(b.as_ref());
        Some(())
    }

    /// Reads a value in this order from `buf` at `offset`; `None` if it does not fit.
    pub fn read<F: VirtioInt>(self, buf: &[u8], offset: usize) -> Option<F> {
        let mut b = F::Bytes::default();
        let end = offset.checked_add(b.as_ref().len())?;
        b.as_mut().copy_from_slice(buf.get(offset..end)?);
        Some(self.from_bytes(b))
    }
}
