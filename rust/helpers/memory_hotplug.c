// SPDX-License-Identifier: GPL-2.0

#include <linux/memory_hotplug.h>
#include <linux/mm.h>
#include <linux/page-flags.h>
#include <linux/page_ref.h>

__rust_helper struct page *rust_helper_pfn_to_page(unsigned long pfn)
{
	return pfn_to_page(pfn);
}

__rust_helper enum zone_type rust_helper_page_zonenum(const struct page *page)
{
	return page_zonenum(page);
}

__rust_helper unsigned long rust_helper_pageblock_nr_pages(void)
{
	return pageblock_nr_pages;
}

__rust_helper unsigned long rust_helper_totalram_pages(void)
{
	return totalram_pages();
}

/*
 * 1 if the pageblock of @pfn is of a movable migratetype (movable or CMA), 0 if not, -1 if the
 * page is not online memory.
 */
__rust_helper int rust_helper_pageblock_is_movable(unsigned long pfn)
{
	struct page *page = pfn_to_online_page(pfn);

	if (!page)
		return -1;
	return is_migrate_movable(get_pageblock_migratetype(page));
}

/*
 * The order of the free buddy that starts at @pfn, or -1 if @pfn is not the head of a free
 * buddy (or not online memory). Read without the zone lock, as compaction does with
 * buddy_order_unsafe(): the answer is only a hint and may be stale or, in a race, out of range.
 */
__rust_helper int rust_helper_pfn_buddy_order(unsigned long pfn)
{
	struct page *page = pfn_to_online_page(pfn);

	if (!page || !PageBuddy(page))
		return -1;
	/* buddy_order_unsafe() of mm/page_alloc.h, which is not ours to include. */
	return (int)READ_ONCE(page_private(page));
}

/*
 * Range versions of static inline page operations, for ranges of pages a driver owns: one call
 * per range, with the per-page operations inlined as in the C driver's loops, instead of two
 * out-of-line calls per page from Rust.
 */
__rust_helper void rust_helper_pfn_range_set_offline(unsigned long pfn, unsigned long nr)
{
	for (; nr--; pfn++)
		__SetPageOffline(pfn_to_page(pfn));
}

__rust_helper void rust_helper_pfn_range_clear_offline(unsigned long pfn, unsigned long nr)
{
	for (; nr--; pfn++)
		__ClearPageOffline(pfn_to_page(pfn));
}

/* Drops one reference of each page; returns how many still had references left. */
__rust_helper unsigned long rust_helper_pfn_range_ref_dec(unsigned long pfn, unsigned long nr)
{
	unsigned long busy = 0;

	for (; nr--; pfn++)
		busy += !page_ref_dec_and_test(pfn_to_page(pfn));
	return busy;
}

__rust_helper void rust_helper_pfn_range_ref_inc(unsigned long pfn, unsigned long nr)
{
	for (; nr--; pfn++)
		page_ref_inc(pfn_to_page(pfn));
}

/*
 * Whether [@pfn, @pfn + @nr) is online memory of one zone and inside that zone's span: only
 * such pages may go to the page allocator. Pages of a memory block that went offline meanwhile
 * would land in the free lists of a zone that no longer spans them.
 */
__rust_helper bool rust_helper_pfn_range_is_online_in_zone(unsigned long pfn, unsigned long nr)
{
	struct page *first = pfn_to_online_page(pfn);
	struct page *last = pfn_to_online_page(pfn + nr - 1);
	struct zone *zone;

	if (!nr || !first || !last)
		return false;
	zone = page_zone(first);
	return page_zone(last) == zone && zone_spans_pfn(zone, pfn) &&
	       zone_spans_pfn(zone, pfn + nr - 1);
}
