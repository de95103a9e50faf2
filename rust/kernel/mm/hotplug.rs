// SPDX-License-Identifier: GPL-2.0

//! Memory hotplug: adding and removing driver-managed System RAM.
//!
//! A driver that provides memory to the kernel (virtio-mem, for instance) claims the physical
//! region of its device with [`SystemRamRegion`], registers a dynamic [`MemoryGroup`] for it, and
//! adds memory with [`add_driver_managed`]. Each successful add returns an [`AddedMemory`] token;
//! only that token can remove the memory again, so a driver cannot remove memory it did not add.
//! The token keeps the group alive, so a group cannot be unregistered while memory of it is
//! still added. A driver that adds many blocks keeps their tokens in an [`AddedBlocks`] set, a
//! byte per block.
//!
//! Related interfaces live in the submodules: [`notifier`] (memory notifiers), [`online`] (the
//! online-page callback) and [`pages`] (contiguous ranges and offline pages).
//!
//! C headers: [`include/linux/memory_hotplug.h`](srctree/include/linux/memory_hotplug.h),
//! [`include/linux/memory.h`](srctree/include/linux/memory.h)

use crate::{
    alloc::KVVec,
    bindings,
    error::to_result,
    prelude::*,
    str::{
        CStr,
        CString, //
    },
    sync::Arc, //
};
use core::{
    mem::ManuallyDrop,
    ptr::NonNull, //
};

pub mod notifier;
pub mod online;
pub mod pages;

/// The size of a memory block in bytes: the unit in which memory is added, onlined, offlined
/// and removed, and in which it appears in `/sys/devices/system/memory/`.
pub fn block_size() -> u64 {
    // SAFETY: `memory_block_size_bytes()` has no preconditions.
    let size = unsafe { bindings::memory_block_size_bytes() };
    // CAST: `unsigned long` is at most 64 bits on every supported architecture.
    size as u64
}

/// A non-empty range of physical addresses, `[start, start + size)`, that does not wrap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysRange {
    start: u64,
    size: u64,
}

impl PhysRange {
    /// Returns the range, or `None` if it is empty or wraps around the address space.
    pub const fn new(start: u64, size: u64) -> Option<Self> {
        if size == 0 || start.checked_add(size - 1).is_none() {
            return None;
        }
        Some(Self { start, size })
    }

    /// The first address.
    pub const fn start(&self) -> u64 {
        self.start
    }

    /// The size in bytes.
    pub const fn size(&self) -> u64 {
        self.size
    }

    /// The last address (inclusive).
    pub const fn last(&self) -> u64 {
        // No overflow: `new` checked it.
        self.start + (self.size - 1)
    }

    /// Whether `other` lies entirely within `self`.
    pub const fn contains(&self, other: &PhysRange) -> bool {
        other.start >= self.start && other.last() <= self.last()
    }

    /// Whether address `addr` lies within `self`.
    pub const fn contains_addr(&self, addr: u64) -> bool {
        self.start <= addr && addr <= self.last()
    }

    /// Whether the two ranges share at least one address.
    pub const fn overlaps(&self, other: &PhysRange) -> bool {
        self.start <= other.last() && other.start <= self.last()
    }

    /// Whether start and size are multiples of `align`, which must be a power of two (else
    /// `false`).
    pub const fn is_aligned(&self, align: u64) -> bool {
        align.is_power_of_two() && self.start % align == 0 && self.size % align == 0
    }
}

/// The physical range in which memory can be hot-added.
///
/// With `need_mapping`, only the part the kernel can map directly. `None` if there is none.
pub fn pluggable_range(need_mapping: bool) -> Option<PhysRange> {
    // SAFETY: `mhp_get_pluggable_range()` has no preconditions.
    let r = unsafe { bindings::mhp_get_pluggable_range(need_mapping) };
    if r.start > r.end {
        return None;
    }
    // An inclusive range ending at `u64::MAX` loses its last byte; no memory lives there.
    PhysRange::new(r.start, (r.end - r.start).saturating_add(1))
}

/// The NUMA node that memory at physical address `addr` is added to by default.
pub fn node_of_phys(addr: u64) -> i32 {
    // SAFETY: `memory_add_physaddr_to_nid()` accepts any address.
    unsafe { bindings::memory_add_physaddr_to_nid(addr) }
}

/// The NUMA node of ACPI proximity domain `pxm`, or `None` if ACPI does not know it.
pub fn node_of_pxm(pxm: u32) -> Option<i32> {
    let pxm = c_int::try_from(pxm).ok()?;
    #[cfg(CONFIG_ACPI_NUMA)]
    {
        // SAFETY: `pxm_to_node()` accepts any value and returns `NUMA_NO_NODE` if unknown.
        let nid = unsafe { bindings::pxm_to_node(pxm) };
        (nid >= 0).then_some(nid)
    }
    #[cfg(not(CONFIG_ACPI_NUMA))]
    {
        let _ = pxm;
        None
    }
}

/// A dynamic memory group: memory blocks added by one driver for one device, which the
/// `auto-movable` online policy treats as a unit.
///
/// Unregistered when dropped. [`AddedMemory`] holds a reference, so the group outlives all the
/// memory added to it.
///
/// The group also carries the `/proc/iomem` name of its memory. The resource tree keeps a
/// pointer to it, possibly in a resource merged with memory of another group, so the name is a
/// heap copy that is never freed (a few bytes per group): it must outlive the driver's module.
///
/// # Invariants
///
/// `id` is a registered memory group id; `name` reads `System RAM (...)` and is never freed.
pub struct MemoryGroup {
    id: i32,
    name: &'static CStr,
}

impl MemoryGroup {
    /// Registers a dynamic memory group on node `nid` whose memory is added in units of
    /// `unit_bytes`, a power of two of at least [`block_size`], and named `name` in
    /// `/proc/iomem` (it must read `System RAM (...)`, as the hotplug core requires).
    pub fn register_dynamic(nid: i32, unit_bytes: u64, name: &CStr) -> Result<Arc<Self>> {
        if !unit_bytes.is_power_of_two() || unit_bytes < block_size() {
            return Err(EINVAL);
        }
        let bytes = name.to_bytes();
        if !bytes.starts_with(b"System RAM (") || !bytes.ends_with(b")") {
            return Err(EINVAL);
        }
        let owned = CString::try_from(name)?;
        // The resource tree may keep pointing at the name for good: never free it.
        let name: &'static CStr = KBox::leak(KBox::new(owned, GFP_KERNEL)?);
        let unit_pages =
            usize::try_from(unit_bytes >> crate::page::PAGE_SHIFT).map_err(|_| EINVAL)?;
        // SAFETY: No preconditions; the arguments are checked by the callee too.
        let id = unsafe { bindings::memory_group_register_dynamic(nid, unit_pages) };
        if id < 0 {
            return Err(Error::from_errno(id));
        }
        // INVARIANT: `id` was just registered. If the allocation fails, the value is dropped,
        // which unregisters it again.
        Ok(Arc::new(Self { id, name }, GFP_KERNEL)?)
    }

    /// The group id (`mgid`), as the memory hotplug core and sysfs know it.
    pub fn id(&self) -> i32 {
        self.id
    }
}

impl Drop for MemoryGroup {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `self.id` is registered; every `AddedMemory` of the group
        // holds a reference to it, so none is left.
        let ret = unsafe { bindings::memory_group_unregister(self.id) };
        if ret != 0 {
            pr_warn!("memory group {} not unregistered: error {}\n", self.id, ret);
        }
    }
}

/// An exclusive claim of a physical region as the parent `System RAM` resource of
/// driver-managed memory, visible in `/proc/iomem` under `name`.
///
/// Memory added with [`add_driver_managed`] inside the region nests below it. Released when
/// dropped.
///
/// # Invariants
///
/// `res` is a resource obtained from `__request_region()` on `iomem_resource`, not yet
/// released; its name points into `name`.
pub struct SystemRamRegion {
    res: NonNull<bindings::resource>,
    range: PhysRange,
    _name: CString,
}

// SAFETY: The resource is only touched by `drop`, and the resource tree has its own lock.
unsafe impl Send for SystemRamRegion {}
// SAFETY: `&SystemRamRegion` only reads `range`.
unsafe impl Sync for SystemRamRegion {}

impl SystemRamRegion {
    /// Claims `range` exclusively. `EBUSY` if any part of it is claimed already.
    pub fn claim(range: PhysRange, name: CString) -> Result<Arc<Self>> {
        // CAST: `__request_region()` takes the `IORESOURCE_*` bits, all below bit 31, as `int`.
        let flags = (bindings::IORESOURCE_SYSTEM_RAM | bindings::IORESOURCE_EXCLUSIVE) as c_int;
        // SAFETY: `iomem_resource` is the root of the I/O memory resource tree; `name` lives as
        // long as the claim (it is stored in `Self`).
        let res = unsafe {
            bindings::__request_region(
                &raw mut bindings::iomem_resource,
                range.start(),
                range.size(),
                name.as_char_ptr(),
                flags,
            )
        };
        let res = NonNull::new(res).ok_or(EBUSY)?;
        // Memory added below must nest in the region, so the region itself must not be busy,
        // as in virtio-mem's C driver.
        // CAST: `IORESOURCE_BUSY` is a single low bit.
        // SAFETY: `res` is ours and valid. It is already in the resource tree; like the C
        // driver, we clear the flag without the tree's lock, before anything nests below it.
        unsafe { (*res.as_ptr()).flags &= !(bindings::IORESOURCE_BUSY as c_ulong) };
        // INVARIANT: `res` comes from `__request_region()` with `name`.
        Ok(Arc::new(
            Self {
                res,
                range,
                _name: name,
            },
            GFP_KERNEL,
        )?)
    }

    /// The claimed range.
    pub fn range(&self) -> PhysRange {
        self.range
    }
}

impl Drop for SystemRamRegion {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `res` is a live resource from `__request_region()`,
        // which allocates it with `alloc_resource()`, i.e. `kzalloc()`.
        unsafe {
            bindings::release_resource(self.res.as_ptr());
            bindings::kfree(self.res.as_ptr().cast());
        }
    }
}

/// Options for [`add_driver_managed`].
#[derive(Clone, Copy, Debug, Default)]
pub struct AddOptions {
    /// Let the new resource merge with adjacent System RAM resources (`MHP_MERGE_RESOURCE`);
    /// `/proc/iomem` then shows one entry for contiguous additions.
    pub merge_resource: bool,
}

/// Adds `range` to the kernel as driver-managed System RAM of `group`, below `region`, named
/// after the group in `/proc/iomem`.
///
/// `range` must be aligned to [`block_size`], inside `region` and within
/// [`pluggable_range`]`(true)`; otherwise this fails with `EINVAL` (or `ERANGE`) before the
/// hotplug core is called.
///
/// The memory is onlined according to `/sys/devices/system/memory/auto_online_blocks`, before
/// this returns and in the caller's context: memory notifiers and the online-page callback run
/// synchronously, so the caller must not hold locks those take. Takes the device hotplug lock;
/// may sleep.
///
/// # Examples
///
/// ```
/// use kernel::mm::hotplug::{self, AddOptions, MemoryGroup, PhysRange, SystemRamRegion};
/// use kernel::sync::Arc;
///
/// /// Adds `range` of the device's claimed `region`, which the device just made accessible,
/// /// and takes it away again, offlining it first if it went online.
/// fn add_and_remove(region: &Arc<SystemRamRegion>, nid: i32, range: PhysRange) -> Result {
///     let group =
///         MemoryGroup::register_dynamic(nid, hotplug::block_size(), c"System RAM (example)")?;
///     let opts = AddOptions { merge_resource: true };
///     // SAFETY: The device keeps `range` accessible until the memory is removed below, or
///     // for good if that fails.
///     let mem = unsafe { hotplug::add_driver_managed(region, &group, range, opts)? };
///     // Memory in use that cannot migrate keeps it: a real driver keeps the token to retry.
///     // Dropping it, as here, leaves the memory added for good, with a warning.
///     mem.offline_and_remove().map_err(|(e, _mem)| e)?;
///     // Only now may the device take the memory back.
///     Ok(())
/// }
/// ```
///
/// # Safety
///
/// Every page of `range` that gets onlined, by the kernel or through an
/// [online-page handler](online) that passes it on, must be backed by RAM that stays
/// accessible until the memory is removed through the returned token, or forever if the token
/// is leaked.
pub unsafe fn add_driver_managed(
    region: &Arc<SystemRamRegion>,
    group: &Arc<MemoryGroup>,
    range: PhysRange,
    opts: AddOptions,
) -> Result<AddedMemory> {
    if !region.range().contains(&range) || !range.is_aligned(block_size()) {
        return Err(EINVAL);
    }
    if !pluggable_range(true).is_some_and(|p| p.contains(&range)) {
        return Err(ERANGE);
    }
    let mut flags = bindings::MHP_NID_IS_MGID;
    if opts.merge_resource {
        flags |= bindings::MHP_MERGE_RESOURCE;
    }
    // SAFETY: The range is checked above; the group's name is never freed, as the core keeps
    // the pointer; `group.id()` is a registered group, and `MHP_NID_IS_MGID` says so. The
    // caller guarantees that onlined pages are backed by RAM.
    to_result(unsafe {
        bindings::add_memory_driver_managed(
            group.id(),
            range.start(),
            range.size(),
            group.name.as_char_ptr(),
            flags,
        )
    })?;
    // INVARIANT: Just added to `group`, block-aligned, inside `region`.
    Ok(AddedMemory {
        range,
        owners: ManuallyDrop::new((region.clone(), group.clone())),
    })
}

/// Memory added by [`add_driver_managed`]: the only handle through which it can be removed.
///
/// It keeps its memory group and its parent [`SystemRamRegion`] alive. Dropping it without
/// removing the memory leaves the memory in the system for good (with a warning), and with it
/// the group and the region; [`AddedMemory::leak`] does so deliberately.
///
/// # Invariants
///
/// `range` is aligned to [`block_size`], inside the region of `owners`, and was added with
/// `add_memory_driver_managed()` to the group of `owners` and not removed since.
pub struct AddedMemory {
    range: PhysRange,
    owners: ManuallyDrop<(Arc<SystemRamRegion>, Arc<MemoryGroup>)>,
}

impl AddedMemory {
    /// The added range.
    pub fn range(&self) -> PhysRange {
        self.range
    }

    /// Removes the memory, which must be offline (`EBUSY` otherwise). Returns the token with
    /// the error if it fails. Takes the device hotplug lock; may sleep.
    pub fn remove(self) -> Result<(), (Error, Self)> {
        // SAFETY: By the type invariant the range was added and is aligned to the block size,
        // so `remove_memory()`'s `BUG_ON` range check cannot trigger.
        let ret = unsafe { bindings::remove_memory(self.range.start(), self.range.size()) };
        self.finish(ret)
    }

    /// Offlines the memory and removes it, atomically: if offlining any block fails, the blocks
    /// already offlined are onlined again and the error (`EBUSY` for an unmovable page,
    /// `EINTR` on a signal, or a notifier's veto) is returned with the token. Migrates pages;
    /// may take long and sleep.
    pub fn offline_and_remove(self) -> Result<(), (Error, Self)> {
        // SAFETY: By the type invariant the range was added.
        let ret =
            unsafe { bindings::offline_and_remove_memory(self.range.start(), self.range.size()) };
        self.finish(ret)
    }

    fn finish(self, ret: c_int) -> Result<(), (Error, Self)> {
        if ret != 0 {
            return Err((Error::from_errno(ret), self));
        }
        let mut this = ManuallyDrop::new(self);
        // SAFETY: The memory is removed, so the references are released exactly once, here;
        // `this` is never dropped.
        unsafe { ManuallyDrop::drop(&mut this.owners) };
        Ok(())
    }

    /// Keeps the memory added for good: it can no longer be removed, and its memory group
    /// stays registered.
    pub fn leak(self) {
        core::mem::forget(self);
    }
}

impl Drop for AddedMemory {
    fn drop(&mut self) {
        pr_warn!(
            "memory {:#x}..{:#x} stays added: dropped without removal\n",
            self.range.start(),
            self.range.last()
        );
        // The references are deliberately leaked: the group and the region still have this
        // memory.
    }
}

/// Memory blocks of one size in one region, added to one group and removed one at a time,
/// kept as a byte each rather than an [`AddedMemory`] token each.
///
/// For drivers that add many blocks: virtio-mem adds every memory block of a region of up to
/// terabytes on its own. Unit `i` is `[first + i * unit, first + (i + 1) * unit)`. Each unit
/// has a byte: its top bit says whether the unit is added, and the set alone changes it; the
/// other seven bits ([`Self::STATE_BITS`]) are the caller's, for its own per-block state, so
/// that the caller needs no array of its own. The bytes grow with [`Self::grow`], up to the
/// highest unit in use, a page at a time.
///
/// A unit moves in and out as an [`AddedMemory`] token: [`Self::put`] stores the token of an
/// added unit, [`Self::take`] gives it back to remove the memory. Dropping the set with units
/// still added leaves them added for good, with the group and the region, as dropping their
/// tokens would.
///
/// # Invariants
///
/// - `first` and `unit` are multiples of [`block_size`], `unit` is not zero;
/// - for every byte `units[i]` with `ADDED` set, unit `i` lies inside the region of `owners`
///   and was added with `add_memory_driver_managed()` to its group and not removed since.
pub struct AddedBlocks {
    first: u64,
    unit: u64,
    units: KVVec<u8>,
    owners: ManuallyDrop<(Arc<SystemRamRegion>, Arc<MemoryGroup>)>,
}

/// The capacity, in bytes or elements of a byte or less, to grow an array of per-block state
/// to for `len`: doubling up to a page, then whole pages, so that a large array never holds
/// more than a page it does not use, as the C virtio-mem driver's arrays.
pub fn grown_capacity(len: usize) -> usize {
    let page = crate::page::PAGE_SIZE;
    if len <= page {
        len.next_power_of_two()
    } else {
        len.div_ceil(page) * page
    }
}

/// The bit of a unit's byte that says it is added.
const ADDED: u8 = 1 << 7;

impl AddedBlocks {
    /// The caller's bits of a unit's byte.
    pub const STATE_BITS: u8 = !ADDED;

    /// An empty set of units of `unit` bytes from `first`, below `region` and in `group`.
    /// `EINVAL` unless `first` and `unit` are multiples of [`block_size`] and `unit` is not
    /// zero.
    pub fn new(
        region: &Arc<SystemRamRegion>,
        group: &Arc<MemoryGroup>,
        first: u64,
        unit: u64,
    ) -> Result<Self> {
        let bs = block_size();
        if unit == 0 || bs == 0 || unit % bs != 0 || first % bs != 0 {
            return Err(EINVAL);
        }
        // INVARIANT: Checked above; no unit is added yet.
        Ok(Self {
            first,
            unit,
            units: KVVec::new(),
            owners: ManuallyDrop::new((region.clone(), group.clone())),
        })
    }

    /// The number of units with a byte: those beyond are not added and have state 0.
    pub fn len(&self) -> usize {
        self.units.len()
    }

    /// Whether no unit has a byte yet.
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// Gives units up to `len` a byte (not added, state 0). The allocation doubles up to a page
    /// and grows a page at a time beyond (see [`grown_capacity`]).
    pub fn grow(&mut self, len: usize) -> Result {
        if len <= self.units.len() {
            return Ok(());
        }
        if len > self.units.capacity() {
            let mut units = KVVec::with_capacity(grown_capacity(len), GFP_KERNEL)?;
            units.extend_from_slice(&self.units, GFP_KERNEL)?;
            self.units = units;
        }
        self.units.resize(len, 0, GFP_KERNEL)?;
        Ok(())
    }

    /// Bytes of heap the set holds.
    pub fn heap_bytes(&self) -> usize {
        self.units.capacity()
    }

    /// Whether unit `i` is added.
    pub fn is_added(&self, i: usize) -> bool {
        self.units.get(i).is_some_and(|b| b & ADDED != 0)
    }

    /// The caller's state of unit `i` (0 beyond [`Self::len`]).
    pub fn state(&self, i: usize) -> u8 {
        self.units.get(i).map_or(0, |b| b & Self::STATE_BITS)
    }

    /// Sets the bits of `mask` in the caller's state of unit `i` to those of `bits`, leaving
    /// the others; only [`Self::STATE_BITS`] count. `EINVAL` beyond [`Self::len`].
    pub fn update_state(&mut self, i: usize, mask: u8, bits: u8) -> Result {
        let b = self.units.get_mut(i).ok_or(EINVAL)?;
        let mask = mask & Self::STATE_BITS;
        *b = (*b & !mask) | (bits & mask);
        Ok(())
    }

    /// The range of unit `i`.
    pub fn range(&self, i: usize) -> Option<PhysRange> {
        let off = u64::try_from(i).ok()?.checked_mul(self.unit)?;
        PhysRange::new(self.first.checked_add(off)?, self.unit)
    }

    /// Stores the token of an added unit and returns the unit's index. Gives `mem` back if it
    /// is not exactly a unit below [`Self::len`], not of this set's region and group, or if the
    /// unit is already stored.
    pub fn put(&mut self, mem: AddedMemory) -> Result<usize, AddedMemory> {
        let r = mem.range();
        let Some(off) = r.start().checked_sub(self.first) else {
            return Err(mem);
        };
        let Ok(i) = usize::try_from(off / self.unit) else {
            return Err(mem);
        };
        let same = Arc::ptr_eq(&mem.owners.0, &self.owners.0)
            && Arc::ptr_eq(&mem.owners.1, &self.owners.1);
        if !same || off % self.unit != 0 || r.size() != self.unit || i >= self.units.len() {
            return Err(mem);
        }
        if self.units[i] & ADDED != 0 {
            return Err(mem);
        }
        // INVARIANT: The token says unit `i` was added, inside the region and to the group of
        // `self.owners`, which are its own.
        self.units[i] |= ADDED;
        let mut mem = ManuallyDrop::new(mem);
        // SAFETY: `mem` is never dropped, so its references are released exactly once, here;
        // the set holds references of its own.
        unsafe { ManuallyDrop::drop(&mut mem.owners) };
        Ok(i)
    }

    /// Takes the token of unit `i` out of the set, if it is added.
    pub fn take(&mut self, i: usize) -> Option<AddedMemory> {
        if !self.is_added(i) {
            return None;
        }
        let range = self.range(i)?;
        self.units[i] &= !ADDED;
        // INVARIANT: By the type invariant, unit `i` was added inside the region and to the
        // group of `owners` and not removed since; it is aligned to the block size because
        // `first` and `unit` are.
        Some(AddedMemory {
            range,
            owners: ManuallyDrop::new((self.owners.0.clone(), self.owners.1.clone())),
        })
    }
}

impl Drop for AddedBlocks {
    fn drop(&mut self) {
        let added = self.units.iter().filter(|b| *b & ADDED != 0).count();
        if added != 0 {
            // Their memory stays: so do the group and the region, as with a dropped token.
            pr_warn!("{added} memory blocks stay added: dropped without removal\n");
            return;
        }
        // SAFETY: Dropped once, here, and nothing of the group or region is added any more.
        unsafe { ManuallyDrop::drop(&mut self.owners) };
    }
}
