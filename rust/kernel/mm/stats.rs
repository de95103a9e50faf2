// SPDX-License-Identifier: GPL-2.0

//! A snapshot of the system's memory statistics, as `/proc/meminfo` and `/proc/vmstat` show
//! them; what a balloon reports to its hypervisor.
//!
//! C headers: [`include/linux/mm.h`](srctree/include/linux/mm.h),
//! [`include/linux/vmstat.h`](srctree/include/linux/vmstat.h)

use crate::{bindings, page::PAGE_SIZE};

/// Memory statistics. Sizes are in bytes; event counts are since boot.
#[derive(Clone, Copy, Debug, Default)]
pub struct MemStats {
    /// Bytes swapped in (`pswpin`).
    pub swap_in: u64,
    /// Bytes swapped out (`pswpout`).
    pub swap_out: u64,
    /// Major page faults (`pgmajfault`).
    pub major_faults: u64,
    /// Page faults (`pgfault`).
    pub minor_faults: u64,
    /// Tasks killed by the OOM killer (`oom_kill`).
    pub oom_kills: u64,
    /// Direct-reclaim stalls, all zones (`allocstall_*`).
    pub alloc_stalls: u64,
    /// Bytes scanned by kswapd (`pgscan_kswapd`).
    pub async_scan: u64,
    /// Bytes scanned by direct reclaim (`pgscan_direct`).
    pub direct_scan: u64,
    /// Bytes reclaimed by kswapd (`pgsteal_kswapd`).
    pub async_reclaim: u64,
    /// Bytes reclaimed by direct reclaim (`pgsteal_direct`).
    pub direct_reclaim: u64,
    /// Huge pages the hugetlb pool got from the page allocator (`htlb_buddy_alloc_success`).
    pub hugetlb_allocs: u64,
    /// Huge pages the hugetlb pool failed to get from it (`htlb_buddy_alloc_fail`).
    pub hugetlb_alloc_fails: u64,
    /// `MemFree`.
    pub free: u64,
    /// `MemTotal`.
    pub total: u64,
    /// `MemAvailable`.
    pub available: u64,
    /// Page cache (`NR_FILE_PAGES`).
    pub caches: u64,
    /// Whether the event counters above are real: without `CONFIG_VM_EVENT_COUNTERS` the
    /// kernel does not keep them, and they read 0.
    pub has_events: bool,
    /// Whether the hugetlb counters are real: the kernel keeps them with event counters and
    /// `CONFIG_HUGETLB_PAGE`.
    pub has_hugetlb: bool,
}

fn bytes(pages: u64) -> u64 {
    // CAST: `PAGE_SIZE` fits `u64`.
    pages.saturating_mul(PAGE_SIZE as u64)
}

fn node_pages(item: bindings::node_stat_item) -> u64 {
    // SAFETY: `item` is a valid node statistic.
    let n = unsafe { bindings::global_node_page_state(item) };
    // CAST: `unsigned long` fits `u64`.
    n as u64
}

impl MemStats {
    /// Takes a snapshot. Each value is read on its own: the set is not atomic. Process context
    /// only: summing the per-CPU event counters may sleep.
    pub fn snapshot() -> Self {
        let mut s = Self::default();
        s.read_events();
        let mut info = core::mem::MaybeUninit::<bindings::sysinfo>::zeroed();
        // SAFETY: `info` is valid for writes of a `struct sysinfo`.
        unsafe { bindings::si_meminfo(info.as_mut_ptr()) };
        // SAFETY: `si_meminfo` filled it (and it was zeroed to start with).
        let info = unsafe { info.assume_init() };
        // SAFETY: FFI call without preconditions.
        let available = unsafe { bindings::si_mem_available() };
        // CAST: Page counts fit `u64`; `si_mem_available` never returns a negative count.
        let (free, total, available) = (
            info.freeram as u64,
            info.totalram as u64,
            available.max(0) as u64,
        );
        s.free = bytes(free);
        s.total = bytes(total);
        s.available = bytes(available);
        s.caches = bytes(node_pages(bindings::node_stat_item_NR_FILE_PAGES));
        s.async_scan = bytes(node_pages(bindings::node_stat_item_PGSCAN_KSWAPD));
        s.direct_scan = bytes(node_pages(bindings::node_stat_item_PGSCAN_DIRECT));
        s.async_reclaim = bytes(node_pages(bindings::node_stat_item_PGSTEAL_KSWAPD));
        s.direct_reclaim = bytes(node_pages(bindings::node_stat_item_PGSTEAL_DIRECT));
        s
    }

    #[cfg(CONFIG_VM_EVENT_COUNTERS)]
    fn read_events(&mut self) {
        const N: usize = bindings::vm_event_item_NR_VM_EVENT_ITEMS as usize;
        let mut ev = [0usize; N];
        // SAFETY: `ev` holds `NR_VM_EVENT_ITEMS` counters, as `all_vm_events` writes.
        unsafe { bindings::all_vm_events(ev.as_mut_ptr()) };
        // CAST: Event items are below `N`; counters fit `u64`.
        let get = |item: u32| ev.get(item as usize).map_or(0, |&v| v as u64);
        self.swap_in = bytes(get(bindings::vm_event_item_PSWPIN));
        self.swap_out = bytes(get(bindings::vm_event_item_PSWPOUT));
        self.major_faults = get(bindings::vm_event_item_PGMAJFAULT);
        self.minor_faults = get(bindings::vm_event_item_PGFAULT);
        self.oom_kills = get(bindings::vm_event_item_OOM_KILL);
        // One ALLOCSTALL counter per zone, in zone order, as the C balloon driver sums them.
        let first = bindings::vm_event_item_ALLOCSTALL_NORMAL - bindings::zone_type_ZONE_NORMAL;
        self.alloc_stalls = (0..bindings::zone_type___MAX_NR_ZONES)
            .map(|z| get(first + z))
            .sum();
        self.has_events = true;
        #[cfg(CONFIG_HUGETLB_PAGE)]
        {
            self.hugetlb_allocs = get(bindings::vm_event_item_HTLB_BUDDY_PGALLOC);
            self.hugetlb_alloc_fails = get(bindings::vm_event_item_HTLB_BUDDY_PGALLOC_FAIL);
            self.has_hugetlb = true;
        }
    }

    #[cfg(not(CONFIG_VM_EVENT_COUNTERS))]
    fn read_events(&mut self) {}
}
