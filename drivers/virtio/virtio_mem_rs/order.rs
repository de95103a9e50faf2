// SPDX-License-Identifier: GPL-2.0

//! The order in which online memory is tried for unplug.
//!
//! The C driver tries online memory highest block first, and within a block the highest
//! subblock first. That is the reverse of the order in which the page allocator hands out
//! hot-plugged memory (it puts onlined pages at the tail of its free lists), so on a freshly
//! plugged device the highest memory is the emptiest. Once the guest has run for a while it no
//! longer is: programs exit, their memory is freed wherever it was, and unmovable kernel
//! allocations settle anywhere. The C driver then migrates memory that another block could have
//! given back for free, and retries the blocks that failed last time before the ones that may
//! succeed.
//!
//! This driver orders online candidates by a [`Cost`] read from the memory map just before the
//! attempt: blocks `alloc_contig_range()` will refuse go last, then blocks that recently failed,
//! then the ones with the most memory to migrate. Equal costs keep the C driver's order, so an
//! idle device is unplugged exactly as the C driver would.

use kernel::{
    mm::hotplug::pages::{
        self,
        Pfn, //
    },
    prelude::*,
};

/// What taking a range of online memory would cost, from a lock-free read of the memory map.
///
/// Compared field by field in declaration order: lower is cheaper and more likely to succeed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Cost {
    /// Pageblocks whose migratetype is not movable: `alloc_contig_range()` fails on the
    /// unmovable allocations that such pageblocks hold.
    pub(crate) unmovable: usize,
    /// Subblocks of the block that could not be taken (-EBUSY) the last time it was tried: a
    /// pinned page or an allocation the memory map does not show as unmovable is likely still
    /// there.
    pub(crate) busy: usize,
    /// Pageblocks that are not entirely free in the buddy allocator: memory to migrate. Counted
    /// per pageblock, so that reading it costs a few reads per pageblock, and so that small
    /// differences (a page on a per-CPU list) do not reorder an otherwise idle device.
    pub(crate) used: usize,
}

impl Cost {
    /// The cost of `[pfn, pfn + nr)`, for a block whose last attempt had `busy` failures.
    ///
    /// # Safety
    ///
    /// The range must be memory the driver added, which is only removed by the driver itself
    /// and not during the call.
    pub(crate) unsafe fn of_range(pfn: Pfn, nr: usize, busy: usize) -> Self {
        Self {
            // SAFETY: Per the safety requirements.
            unmovable: unsafe { pages::unmovable_pageblocks(pfn, nr) },
            busy,
            // SAFETY: Per the safety requirements.
            used: unsafe { pages::used_pageblocks(pfn, nr) },
        }
    }

    /// The cost of several disjoint ranges of one block.
    pub(crate) fn add(self, other: Self) -> Self {
        Self {
            unmovable: self.unmovable.saturating_add(other.unmovable),
            busy: self.busy.max(other.busy),
            used: self.used.saturating_add(other.used),
        }
    }
}

/// Ids from `(key, id)` pairs, lowest key first; equal keys go highest id first (the C
/// driver's order), so all-equal keys keep that order. The kernel has no stable sort, hence
/// the explicit tie-break.
pub(crate) fn order_by_key<K: Ord + Copy>(mut ids: KVec<(K, usize)>) -> Result<KVec<usize>> {
    ids.sort_unstable_by_key(|&(key, id)| (key, core::cmp::Reverse(id)));
    let mut out = KVec::with_capacity(ids.len(), GFP_KERNEL)?;
    for (_, id) in ids {
        out.push(id, GFP_KERNEL)?;
    }
    Ok(out)
}

#[kunit_tests(virtio_mem_rs_order)]
mod tests {
    use super::*;

    fn cost(unmovable: usize, busy: usize, used: usize) -> Cost {
        Cost {
            unmovable,
            busy,
            used,
        }
    }

    fn order<K: Ord + Copy>(pairs: &[(K, usize)]) -> Result<KVec<usize>> {
        let mut v = KVec::new();
        for &p in pairs {
            v.push(p, GFP_KERNEL)?;
        }
        order_by_key(v)
    }

    #[test]
    fn equal_keys_keep_the_c_order() -> Result {
        let got = order(&[(0usize, 0), (0, 3), (0, 1), (0, 2)])?;
        assert_eq!(&got[..], &[3, 2, 1, 0]);
        let got = order(&[(Cost::default(), 5), (Cost::default(), 7)])?;
        assert_eq!(&got[..], &[7, 5]);
        Ok(())
    }

    #[test]
    fn cheapest_first() -> Result {
        // Block 3 is full, block 2 half used, blocks 1 and 0 empty.
        let got = order(&[
            (cost(0, 0, 0), 0),
            (cost(0, 0, 0), 1),
            (cost(0, 0, 100), 2),
            (cost(0, 0, 200), 3),
        ])?;
        assert_eq!(&got[..], &[1, 0, 2, 3]);
        Ok(())
    }

    #[test]
    fn unmovable_then_busy_then_used() -> Result {
        let got = order(&[
            (cost(1, 0, 0), 0),
            (cost(0, 1, 0), 1),
            (cost(0, 0, 9999), 2),
            (cost(2, 0, 0), 3),
        ])?;
        assert_eq!(&got[..], &[2, 1, 0, 3]);
        Ok(())
    }

    #[test]
    fn adding_costs() {
        let c = cost(1, 2, 3).add(cost(4, 1, 5));
        assert_eq!(c, cost(5, 2, 8));
        let c = cost(usize::MAX, 0, usize::MAX).add(cost(1, 0, 1));
        assert_eq!(c, cost(usize::MAX, 0, usize::MAX));
    }
}
