// SPDX-License-Identifier: GPL-2.0

//! Free page hinting: blocks of free memory that a guest shows its hypervisor while the
//! hypervisor migrates it, so that their contents need not be migrated.
//!
//! During a live migration the hypervisor asks the guest (virtio-balloon's
//! `VIRTIO_BALLOON_F_FREE_PAGE_HINT`) for free memory. The guest takes every free block of
//! [`FreeBlock::ORDER`] it can get without reclaiming anything, and tells the hypervisor where
//! they are. The hypervisor then skips these blocks unless the guest writes them later. The
//! guest keeps the blocks until the hypervisor says it is done, and may give them back to the
//! allocator at any time before, for example when memory gets short.
//!
//! C header: [`include/linux/gfp.h`](srctree/include/linux/gfp.h)

use crate::{
    bindings,
    page::PAGE_SIZE, //
};
use core::ptr::NonNull;

/// A block of `1 << ORDER` pages taken from the free memory for a hint.
///
/// The owner never reads or writes the block: its contents are whatever the previous user
/// left. Dropping it frees it.
///
/// # Invariants
///
/// `page` is the first page of a block of `1 << ORDER` pages allocated with `alloc_pages()`,
/// owned by this object, in the kernel's linear mapping.
pub struct FreeBlock {
    page: NonNull<bindings::page>,
}

// SAFETY: A block may be freed from any thread.
unsafe impl Send for FreeBlock {}
// SAFETY: `&FreeBlock` only gives its address and size.
unsafe impl Sync for FreeBlock {}

impl FreeBlock {
    /// The order of the blocks: the largest the page allocator has, as in the C driver.
    pub const ORDER: u32 = bindings::MAX_PAGE_ORDER;

    /// The size of a block in bytes.
    pub const SIZE: usize = PAGE_SIZE << Self::ORDER;

    /// The number of pages in a block.
    pub const PAGES: usize = 1 << Self::ORDER;

    /// Takes a free block, if one is free now: without reclaiming or compacting memory, without
    /// dipping into the reserves, and without warning when there is none.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::mm::free_page_hint::FreeBlock;
    ///
    /// // Take free blocks until there are none (or enough), then give them back.
    /// let mut blocks = KVec::new();
    /// while blocks.len() < 4 {
    ///     let Some(block) = FreeBlock::take() else {
    ///         break;
    ///     };
    ///     // Blocks are naturally aligned.
    ///     assert_eq!(block.pfn() % FreeBlock::PAGES, 0);
    ///     blocks.push(block, GFP_KERNEL)?;
    /// }
    /// drop(blocks);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn take() -> Option<Self> {
        let gfp = bindings::__GFP_NORETRY | bindings::__GFP_NOWARN | bindings::__GFP_NOMEMALLOC;
        // SAFETY: Without `__GFP_DIRECT_RECLAIM` the allocation does not sleep; it has no other
        // requirements.
        let page = NonNull::new(unsafe { bindings::alloc_pages(gfp, Self::ORDER) })?;
        // INVARIANT: A block of `1 << ORDER` pages, ours. Blocks come from the linear mapping:
        // without `__GFP_HIGHMEM` the allocator never returns high memory.
        Some(Self { page })
    }

    /// The page frame number of the block's first page.
    pub fn pfn(&self) -> usize {
        // SAFETY: `page` is a valid page (type invariant).
        unsafe { bindings::page_to_pfn(self.page.as_ptr()) }
    }

    /// The block's address in the linear mapping, to hand it to a device. Not to be read or
    /// written through.
    pub(crate) fn as_raw(&self) -> *mut u8 {
        // SAFETY: `page` is a valid page in the linear mapping (type invariant).
        unsafe { bindings::page_address(self.page.as_ptr()) }.cast()
    }
}

impl Drop for FreeBlock {
    fn drop(&mut self) {
        // SAFETY: We own the block, allocated with this order (type invariant).
        unsafe { bindings::__free_pages(self.page.as_ptr(), Self::ORDER) };
    }
}
