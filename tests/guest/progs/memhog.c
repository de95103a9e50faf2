// SPDX-License-Identifier: GPL-2.0
/*
 * memhog: hold and verify memory.
 *
 *   memhog MIB DIR [thp]
 *
 * Maps MIB MiB of anonymous memory (in transparent huge pages with "thp",
 * else in base pages only), writes a per-page pattern into every
 * page, then writes DIR/ready. It verifies every page each time DIR/verify
 * appears (removing it and writing the result to DIR/result), and exits when
 * DIR/stop appears, after a last verification. The exit status is the number
 * of corrupted pages (capped at 255); the result line reads
 * "pages N corrupted M".
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096UL

static uint64_t pattern(size_t page, size_t word)
{
	return 0x9e3779b97f4a7c15ULL * (page + 1) ^ (word * 0x2545f4914f6cdd1dULL);
}

static size_t verify(uint64_t *mem, size_t pages)
{
	size_t bad = 0;

	for (size_t p = 0; p < pages; p++) {
		uint64_t *w = mem + p * (PAGE / 8);

		for (size_t i = 0; i < PAGE / 8; i++) {
			if (w[i] != pattern(p, i)) {
				bad++;
				break;
			}
		}
	}
	return bad;
}

static int exists(const char *dir, const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

static void put(const char *dir, const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.tmp", dir, name);
	f = fopen(path, "w");
	if (!f)
		exit(254);
	fputs(text, f);
	fclose(f);
	{
		char final[256];

		snprintf(final, sizeof(final), "%s/%s", dir, name);
		rename(path, final);
	}
}

int main(int argc, char **argv)
{
	size_t pages, bad = 0;
	uint64_t *mem;
	char line[64], path[256];

	int thp = argc == 4 && !strcmp(argv[3], "thp");
	size_t huge = 2UL << 20;
	char *map;

	if (argc != 3 && !thp) {
		fprintf(stderr, "usage: memhog MIB DIR [thp]\n");
		return 254;
	}
	pages = strtoul(argv[1], NULL, 0) * (1024 * 1024 / PAGE);
	/* With THP, one huge page more, to align the memory to one. */
	map = mmap(NULL, pages * PAGE + (thp ? huge : 0), PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED) {
		perror("mmap");
		return 254;
	}
	if (thp) {
		mem = (uint64_t *)(((uintptr_t)map + huge - 1) & ~(huge - 1));
		madvise(mem, pages * PAGE, MADV_HUGEPAGE);
	} else {
		mem = (uint64_t *)map;
		/* No THP: page-sized units migrate independently. */
		madvise(mem, pages * PAGE, MADV_NOHUGEPAGE);
	}
	for (size_t p = 0; p < pages; p++)
		for (size_t i = 0; i < PAGE / 8; i++)
			mem[p * (PAGE / 8) + i] = pattern(p, i);
	put(argv[2], "ready", "ready\n");

	for (;;) {
		int stop = exists(argv[2], "stop");

		if (stop || exists(argv[2], "verify")) {
			snprintf(path, sizeof(path), "%s/verify", argv[2]);
			unlink(path);
			bad = verify(mem, pages);
			snprintf(line, sizeof(line), "pages %zu corrupted %zu\n", pages, bad);
			put(argv[2], "result", line);
			if (stop)
				return bad > 255 ? 255 : (int)bad;
		}
		usleep(20000);
	}
}
