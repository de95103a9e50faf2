// SPDX-License-Identifier: GPL-2.0
/*
 * pinhold: hold pages that migration cannot move.
 *
 *   pinhold MIB STEP_KIB DIR
 *
 * Maps MIB MiB of anonymous memory and fills it, then vmsplice()s one page of
 * every STEP_KIB KiB into a pipe that nobody reads. The pipe holds a reference
 * on each of those pages, so migration fails on them (the page has more
 * references than its mappings explain) until the pipe is closed: the memory
 * around them cannot be offlined or taken by alloc_contig_range().
 *
 * Writes the physical address of every held page, one hexadecimal number per
 * line, to DIR/held (from /proc/self/pagemap; needs CAP_SYS_ADMIN), then
 * DIR/ready. Closes the pipe and exits when DIR/stop appears.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#define PAGE 4096UL

static void path(char *buf, size_t len, const char *dir, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

int main(int argc, char **argv)
{
	char p[256], tmp[256];
	size_t bytes, step, n = 0;
	int pipefd[2], pagemap;
	unsigned char *mem;
	FILE *out;

	if (argc != 4) {
		fprintf(stderr, "usage: pinhold MIB STEP_KIB DIR\n");
		return 2;
	}
	bytes = strtoul(argv[1], NULL, 0) << 20;
	step = strtoul(argv[2], NULL, 0) << 10;
	if (!bytes || step < PAGE || step % PAGE) {
		fprintf(stderr, "pinhold: bad size or step\n");
		return 2;
	}
	mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (mem == MAP_FAILED) {
		perror("pinhold: mmap");
		return 1;
	}
	for (size_t off = 0; off < bytes; off += PAGE)
		memset(mem + off, (int)(off / PAGE) | 1, PAGE);
	if (pipe(pipefd)) {
		perror("pinhold: pipe");
		return 1;
	}
	/* One pipe slot per held page. */
	if (fcntl(pipefd[1], F_SETPIPE_SZ, (int)(bytes / step * PAGE)) < 0) {
		perror("pinhold: F_SETPIPE_SZ");
		return 1;
	}
	pagemap = open("/proc/self/pagemap", O_RDONLY);
	if (pagemap < 0) {
		perror("pinhold: pagemap");
		return 1;
	}
	path(tmp, sizeof(tmp), argv[3], "held.tmp");
	out = fopen(tmp, "w");
	if (!out) {
		perror("pinhold: held");
		return 1;
	}
	for (size_t off = 0; off < bytes; off += step) {
		struct iovec iov = { .iov_base = mem + off, .iov_len = PAGE };
		uint64_t ent;
		off_t at = (off_t)((uintptr_t)(mem + off) / PAGE * 8);

		if (vmsplice(pipefd[1], &iov, 1, 0) != (ssize_t)PAGE) {
			perror("pinhold: vmsplice");
			return 1;
		}
		if (pread(pagemap, &ent, sizeof(ent), at) != sizeof(ent) ||
		    !(ent & (1ULL << 63)) || !(ent & ((1ULL << 55) - 1))) {
			fprintf(stderr, "pinhold: no pfn in pagemap\n");
			return 1;
		}
		fprintf(out, "0x%llx\n",
			(unsigned long long)((ent & ((1ULL << 55) - 1)) * PAGE));
		n++;
	}
	fclose(out);
	path(p, sizeof(p), argv[3], "held");
	rename(tmp, p);
	path(p, sizeof(p), argv[3], "ready");
	close(open(p, O_CREAT | O_WRONLY, 0644));
	fprintf(stderr, "pinhold: holding %zu pages\n", n);

	path(p, sizeof(p), argv[3], "stop");
	while (access(p, F_OK))
		usleep(100 * 1000);
	close(pipefd[0]);
	close(pipefd[1]);
	return 0;
}
