// SPDX-License-Identifier: GPL-2.0

#include <linux/balloon.h>
#include <linux/list.h>
#include <linux/mm.h>

__rust_helper void rust_helper_balloon_devinfo_init(struct balloon_dev_info *balloon)
{
	balloon_devinfo_init(balloon);
}

/* A driver-owned list of pages, linked through page->lru (see rust/kernel/mm/balloon.rs). */
__rust_helper void rust_helper_balloon_list_push(struct list_head *head, struct page *page)
{
	list_add(&page->lru, head);
}

__rust_helper struct page *rust_helper_balloon_list_pop(struct list_head *head)
{
	struct page *page = list_first_entry_or_null(head, struct page, lru);

	if (page)
		list_del(&page->lru);
	return page;
}

__rust_helper struct page *rust_helper_balloon_list_next(struct list_head *head,
							 struct page *page)
{
	struct list_head *next = page ? page->lru.next : head->next;

	return next == head ? NULL : list_entry(next, struct page, lru);
}
