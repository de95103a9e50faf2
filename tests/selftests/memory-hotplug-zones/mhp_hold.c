// SPDX-License-Identifier: GPL-2.0
/*
 * mhp_hold: hold memory with a known pattern, verify it, report where it is.
 *
 *   mhp_hold MIB DIR
 *
 * Maps MIB MiB of private anonymous memory (no THP, so every 4 KiB page can
 * migrate on its own), writes a per-page pattern, then writes the physical
 * frame number of every page to DIR/pfns (one decimal number a line, read
 * from /proc/self/pagemap; 0 when the kernel hides PFNs, i.e. without
 * CAP_SYS_ADMIN) and creates DIR/ready.
 *
 * Whenever DIR/verify appears it removes it, checks every page, rewrites
 * DIR/pfns and writes "pages N corrupted M" to DIR/result. It exits after a
 * last check when DIR/stop appears; the exit status is the number of
 * corrupted pages, capped at 255.
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

static void path(char *buf, size_t len, const char *dir, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

static int exists(const char *dir, const char *name)
{
	char p[512];

	path(p, sizeof(p), dir, name);
	return access(p, F_OK) == 0;
}

/* Write DIR/NAME atomically (write a temporary file, rename it). */
static FILE *begin(const char *dir, const char *name)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/%s.tmp", dir, name);
	return fopen(p, "w");
}

static void commit(FILE *f, const char *dir, const char *name)
{
	char from[512], to[512];

	fclose(f);
	snprintf(from, sizeof(from), "%s/%s.tmp", dir, name);
	path(to, sizeof(to), dir, name);
	rename(from, to);
}

static int write_pfns(const char *dir, void *mem, size_t pages)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	uint64_t e[512];
	FILE *f = begin(dir, "pfns");

	if (fd < 0 || !f)
		return -1;
	for (size_t p = 0; p < pages; p += 512) {
		size_t n = pages - p < 512 ? pages - p : 512;
		off_t off = ((uintptr_t)mem / PAGE + p) * sizeof(uint64_t);

		if (pread(fd, e, n * sizeof(uint64_t), off) != (ssize_t)(n * sizeof(uint64_t)))
			return -1;
		for (size_t i = 0; i < n; i++)
			fprintf(f, "%llu\n", (e[i] >> 63) ?
				(unsigned long long)(e[i] & ((1ULL << 55) - 1)) : 0ULL);
	}
	close(fd);
	commit(f, dir, "pfns");
	return 0;
}

int main(int argc, char **argv)
{
	size_t pages, bad = 0;
	uint64_t *mem;
	const char *dir;
	FILE *f;

	if (argc != 3) {
		fprintf(stderr, "usage: mhp_hold MIB DIR\n");
		return 254;
	}
	dir = argv[2];
	pages = strtoul(argv[1], NULL, 0) * (1024 * 1024 / PAGE);
	mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		return 254;
	}
	madvise(mem, pages * PAGE, MADV_NOHUGEPAGE);
	for (size_t p = 0; p < pages; p++)
		for (size_t i = 0; i < PAGE / 8; i++)
			mem[p * (PAGE / 8) + i] = pattern(p, i);
	if (write_pfns(dir, mem, pages))
		return 254;
	f = begin(dir, "ready");
	if (!f)
		return 254;
	commit(f, dir, "ready");

	for (;;) {
		int stop = exists(dir, "stop");

		if (stop || exists(dir, "verify")) {
			char p[512];

			path(p, sizeof(p), dir, "verify");
			unlink(p);
			bad = verify(mem, pages);
			if (write_pfns(dir, mem, pages))
				return 254;
			f = begin(dir, "result");
			if (!f)
				return 254;
			fprintf(f, "pages %zu corrupted %zu\n", pages, bad);
			commit(f, dir, "result");
			if (stop)
				return bad > 255 ? 255 : (int)bad;
		}
		usleep(20000);
	}
}
