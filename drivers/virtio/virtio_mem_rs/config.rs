// SPDX-License-Identifier: GPL-2.0

//! The device configuration: what the device reports, validated before the driver uses it.
//!
//! The device is not trusted. Unlike the C driver, which divides by a zero block size and only
//! warns about a misaligned region, every value is checked here: the static layout is refused
//! at probe if it is unusable, and the sizes that change at run time are clamped to what is
//! safe, with a note of what was clamped.

use core::num::NonZeroU64;
use kernel::prelude::*;

/// The configuration space as read from the device: untrusted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RawConfig {
    pub(crate) block_size: u64,
    pub(crate) node_id: u16,
    pub(crate) addr: u64,
    pub(crate) region_size: u64,
    pub(crate) usable_region_size: u64,
    pub(crate) plugged_size: u64,
    pub(crate) requested_size: u64,
}

/// What this kernel allows, against which the device's values are checked.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Where memory can be hot-added: first and last address, if anywhere.
    pub(crate) pluggable: Option<(u64, u64)>,
    /// The page size.
    pub(crate) page_size: u64,
}

/// The part of the configuration that cannot change, validated.
///
/// # Invariants
///
/// `block_size` is a power of two of at least a page; `addr` and `region_size` are non-zero
/// multiples of it; `addr + region_size` does not overflow; `[usable_start, usable_end)` is the
/// non-empty, block-aligned part of the region where memory can be hot-added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) block_size: NonZeroU64,
    pub(crate) addr: u64,
    pub(crate) region_size: u64,
    pub(crate) usable_start: u64,
    pub(crate) usable_end: u64,
}

impl Layout {
    /// The whole `unit`-aligned units of size `unit` in the usable range: the address of the
    /// first and how many there are. `None` if not one fits.
    pub(crate) fn whole_units(&self, unit: NonZeroU64) -> Option<(u64, usize)> {
        let first = (self.usable_start / unit)
            .checked_add(u64::from(self.usable_start % unit != 0))?
            .checked_mul(unit.get())?;
        let end = self.usable_end / unit * unit.get();
        if first >= end {
            return None;
        }
        Some((first, usize::try_from((end - first) / unit).ok()?))
    }
}

/// Why the device's layout was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConfigError {
    BlockSizeZero,
    BlockSizeNotPowerOfTwo,
    BlockSizeBelowPage,
    RegionEmpty,
    BlockSizeLargerThanRegion,
    AddrUnaligned,
    RegionSizeUnaligned,
    RegionWraps,
    RegionNotPluggable,
    PluggedLargerThanRegion,
    PluggedUnaligned,
}

impl ConfigError {
    /// A message for the kernel log.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::BlockSizeZero => "device block size is 0",
            Self::BlockSizeNotPowerOfTwo => "device block size is not a power of two",
            Self::BlockSizeBelowPage => "device block size is smaller than a page",
            Self::RegionEmpty => "region size is 0",
            Self::BlockSizeLargerThanRegion => "device block size is larger than the region",
            Self::AddrUnaligned => "start address is not aligned to the device block size",
            Self::RegionSizeUnaligned => "region size is not a multiple of the device block size",
            Self::RegionWraps => "region wraps around the physical address space",
            Self::RegionNotPluggable => "no part of the region can be hot-added on this system",
            Self::PluggedLargerThanRegion => "plugged size is larger than the region",
            Self::PluggedUnaligned => "plugged size is not a multiple of the device block size",
        }
    }

    /// The error probe fails with.
    pub(crate) fn to_error(self) -> Error {
        EINVAL
    }
}

/// Validates the layout the device reports at probe.
pub(crate) fn validate_layout(raw: &RawConfig, limits: &Limits) -> Result<Layout, ConfigError> {
    let Some(bs) = NonZeroU64::new(raw.block_size) else {
        return Err(ConfigError::BlockSizeZero);
    };
    if !bs.is_power_of_two() {
        return Err(ConfigError::BlockSizeNotPowerOfTwo);
    }
    if bs.get() < limits.page_size {
        return Err(ConfigError::BlockSizeBelowPage);
    }
    if raw.region_size == 0 {
        return Err(ConfigError::RegionEmpty);
    }
    if bs.get() > raw.region_size {
        return Err(ConfigError::BlockSizeLargerThanRegion);
    }
    if raw.addr % bs != 0 {
        return Err(ConfigError::AddrUnaligned);
    }
    if raw.region_size % bs != 0 {
        return Err(ConfigError::RegionSizeUnaligned);
    }
    let end = raw
        .addr
        .checked_add(raw.region_size)
        .ok_or(ConfigError::RegionWraps)?;
    if raw.plugged_size > raw.region_size {
        return Err(ConfigError::PluggedLargerThanRegion);
    }
    if raw.plugged_size % bs != 0 {
        return Err(ConfigError::PluggedUnaligned);
    }
    // Clip the region to where memory can be hot-added, on block boundaries.
    let (plug_first, plug_last) = limits.pluggable.ok_or(ConfigError::RegionNotPluggable)?;
    let usable_start = (raw.addr.max(plug_first) / bs)
        .checked_add(u64::from(raw.addr.max(plug_first) % bs != 0))
        .and_then(|n| n.checked_mul(bs.get()))
        .ok_or(ConfigError::RegionNotPluggable)?;
    let usable_end = match plug_last.checked_add(1) {
        Some(plug_end) => end.min(plug_end) / bs * bs.get(),
        None => end,
    };
    if usable_start >= usable_end {
        return Err(ConfigError::RegionNotPluggable);
    }
    // INVARIANT: Checked above.
    Ok(Layout {
        block_size: bs,
        addr: raw.addr,
        region_size: raw.region_size,
        usable_start,
        usable_end,
    })
}

/// What [`clamp_sizes`] had to correct.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Clamped {
    pub(crate) usable_beyond_region: bool,
    pub(crate) usable_unaligned: bool,
    pub(crate) requested_beyond_usable: bool,
    pub(crate) requested_unaligned: bool,
    pub(crate) plugged_beyond_region: bool,
    pub(crate) plugged_unaligned: bool,
}

impl Clamped {
    /// Whether anything was corrected.
    pub(crate) fn any(&self) -> bool {
        *self != Self::default()
    }
}

/// The sizes that change at run time, made safe to act on.
///
/// # Invariants
///
/// All three are multiples of the block size; `requested <= usable <= region_size`, and
/// `plugged <= region_size`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sizes {
    /// How much of the region may be plugged, counted from its start.
    pub(crate) usable: u64,
    /// How much the device says is plugged.
    pub(crate) plugged: u64,
    /// How much the device wants plugged.
    pub(crate) requested: u64,
}

/// Clamps the run-time sizes the device reports to `layout`.
pub(crate) fn clamp_sizes(raw: &RawConfig, layout: &Layout) -> (Sizes, Clamped) {
    let bs = layout.block_size;
    let mut c = Clamped::default();
    let mut usable = raw.usable_region_size;
    if usable > layout.region_size {
        usable = layout.region_size;
        c.usable_beyond_region = true;
    }
    if usable % bs != 0 {
        usable -= usable % bs;
        c.usable_unaligned = true;
    }
    let mut requested = raw.requested_size;
    if requested > usable {
        requested = usable;
        c.requested_beyond_usable = true;
    }
    if requested % bs != 0 {
        requested -= requested % bs;
        c.requested_unaligned = true;
    }
    let mut plugged = raw.plugged_size;
    if plugged > layout.region_size {
        plugged = layout.region_size;
        c.plugged_beyond_region = true;
    }
    if plugged % bs != 0 {
        plugged -= plugged % bs;
        c.plugged_unaligned = true;
    }
    // INVARIANT: Clamped and aligned above; `usable <= region_size` is a multiple of `bs`.
    (
        Sizes {
            usable,
            plugged,
            requested,
        },
        c,
    )
}

#[kunit_tests(virtio_mem_rs_config)]
mod tests {
    use super::*;
    use kernel::sizes::SizeConstants;

    const M: u64 = u64::SZ_1M;
    const G: u64 = u64::SZ_1G;

    fn limits() -> Limits {
        Limits {
            pluggable: Some((0, (1 << 46) - 1)),
            page_size: 4096,
        }
    }

    fn good() -> RawConfig {
        RawConfig {
            block_size: 2 * M,
            node_id: 0,
            addr: 4 * G,
            region_size: 8 * G,
            usable_region_size: 8 * G,
            plugged_size: 0,
            requested_size: G,
        }
    }

    fn refused(raw: RawConfig) -> Option<ConfigError> {
        validate_layout(&raw, &limits()).err()
    }

    #[test]
    fn good_layout_is_accepted() {
        let l = validate_layout(&good(), &limits());
        assert_eq!(
            l.map(|l| (
                l.block_size.get(),
                l.addr,
                l.region_size,
                l.usable_start,
                l.usable_end
            )),
            Ok((2 * M, 4 * G, 8 * G, 4 * G, 12 * G))
        );
    }

    #[test]
    fn bad_block_sizes_are_refused() {
        let r = |bs| {
            refused(RawConfig {
                block_size: bs,
                ..good()
            })
        };
        assert_eq!(r(0), Some(ConfigError::BlockSizeZero));
        assert_eq!(r(3 * M), Some(ConfigError::BlockSizeNotPowerOfTwo));
        assert_eq!(r(u64::MAX), Some(ConfigError::BlockSizeNotPowerOfTwo));
        assert_eq!(r(512), Some(ConfigError::BlockSizeBelowPage));
        assert_eq!(r(16 * G), Some(ConfigError::BlockSizeLargerThanRegion));
    }

    #[test]
    fn bad_regions_are_refused() {
        let r = |addr, size| {
            refused(RawConfig {
                addr,
                region_size: size,
                usable_region_size: size,
                ..good()
            })
        };
        assert_eq!(r(4 * G, 0), Some(ConfigError::RegionEmpty));
        assert_eq!(r(4 * G + 4096, 8 * G), Some(ConfigError::AddrUnaligned));
        assert_eq!(r(4 * G, 8 * G + M), Some(ConfigError::RegionSizeUnaligned));
        // Aligned to the 2 MiB block size, but the end does not fit 64 bits.
        assert_eq!(
            r(u64::MAX - 2 * M + 1, 4 * M),
            Some(ConfigError::RegionWraps)
        );
        // Entirely above what can be hot-added.
        assert_eq!(r(1 << 47, 8 * G), Some(ConfigError::RegionNotPluggable));
    }

    #[test]
    fn region_is_clipped_to_the_pluggable_range() {
        let lim = Limits {
            pluggable: Some((5 * G + 1, 10 * G - 1)),
            page_size: 4096,
        };
        let l = validate_layout(&good(), &lim);
        assert_eq!(
            l.map(|l| (l.usable_start, l.usable_end)),
            Ok((5 * G + 2 * M, 10 * G))
        );
        let none = Limits {
            pluggable: None,
            page_size: 4096,
        };
        assert_eq!(
            validate_layout(&good(), &none).err(),
            Some(ConfigError::RegionNotPluggable)
        );
    }

    #[test]
    fn bad_plugged_sizes_are_refused() {
        let r = |p| {
            refused(RawConfig {
                plugged_size: p,
                ..good()
            })
        };
        assert_eq!(r(9 * G), Some(ConfigError::PluggedLargerThanRegion));
        assert_eq!(r(M), Some(ConfigError::PluggedUnaligned));
        assert_eq!(r(2 * G), None);
    }

    #[test]
    fn run_time_sizes_are_clamped() -> Result {
        let l = validate_layout(&good(), &limits()).map_err(|_| EINVAL)?;
        let (s, c) = clamp_sizes(&good(), &l);
        assert_eq!((s.usable, s.requested, s.plugged), (8 * G, G, 0));
        assert!(!c.any());

        let raw = RawConfig {
            usable_region_size: 100 * G,
            requested_size: 200 * G,
            plugged_size: 50 * G,
            ..good()
        };
        let (s, c) = clamp_sizes(&raw, &l);
        assert_eq!((s.usable, s.requested, s.plugged), (8 * G, 8 * G, 8 * G));
        assert!(c.usable_beyond_region && c.requested_beyond_usable && c.plugged_beyond_region);

        let raw = RawConfig {
            usable_region_size: 4 * G + M,
            requested_size: G + 4096,
            ..good()
        };
        let (s, c) = clamp_sizes(&raw, &l);
        assert_eq!((s.usable, s.requested), (4 * G, G));
        assert!(c.usable_unaligned && c.requested_unaligned);

        // A plugged size that is not block-aligned is rounded down, and says so.
        let raw = RawConfig {
            plugged_size: G + 4096,
            ..good()
        };
        let (s, c) = clamp_sizes(&raw, &l);
        assert_eq!(s.plugged, G);
        assert!(c.plugged_unaligned && c.any());

        // The usable region shrinks below what is plugged: the request follows it down, so
        // the worker unplugs what lies beyond.
        let raw = RawConfig {
            usable_region_size: 2 * G,
            requested_size: 4 * G,
            plugged_size: 4 * G,
            ..good()
        };
        let (s, c) = clamp_sizes(&raw, &l);
        assert_eq!((s.usable, s.requested, s.plugged), (2 * G, 2 * G, 4 * G));
        assert!(c.requested_beyond_usable && !c.plugged_beyond_region);
        Ok(())
    }

    #[test]
    fn whole_units_are_aligned_and_inside() {
        let unit = |u| NonZeroU64::new(u).unwrap_or(NonZeroU64::MIN);
        let l = Layout {
            block_size: unit(2 * M),
            addr: 3 * G - 2 * M,
            region_size: 4 * G,
            usable_start: 3 * G - 2 * M,
            usable_end: 7 * G - 2 * M,
        };
        // 128 MiB units: from 3 GiB up to the last one that ends by 7 GiB - 2 MiB.
        assert_eq!(l.whole_units(unit(128 * M)), Some((3 * G, 31)));
        // Device blocks: the whole range.
        assert_eq!(l.whole_units(unit(2 * M)), Some((l.usable_start, 2048)));
        // 4 GiB units: [4 GiB, 8 GiB) does not fit.
        assert_eq!(l.whole_units(unit(4 * G)), None);
        // A unit whose first aligned address would overflow.
        let top = Layout {
            usable_start: u64::MAX - G,
            usable_end: u64::MAX - 2 * M,
            ..l
        };
        assert_eq!(top.whole_units(unit(1 << 63)), None);
    }

    #[test]
    fn edge_regions() {
        // A block as large as the whole region is fine.
        let raw = RawConfig {
            block_size: 8 * G,
            addr: 8 * G,
            requested_size: 0,
            ..good()
        };
        assert!(validate_layout(&raw, &limits()).is_ok());
        // Entirely below the pluggable range.
        let lim = Limits {
            pluggable: Some((64 * G, (1 << 46) - 1)),
            page_size: 4096,
        };
        assert_eq!(
            validate_layout(&good(), &lim).err(),
            Some(ConfigError::RegionNotPluggable)
        );
    }
}
