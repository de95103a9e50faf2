// SPDX-License-Identifier: GPL-2.0

#include <linux/mm.h>

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
