// SPDX-License-Identifier: GPL-2.0
/*
 * vmcore_scan: read the part of /proc/vmcore that holds physical range [START, START+SIZE)
 * and count its non-zero pages.
 *
 *   vmcore_scan START SIZE    prints "pages N nonzero M", exit 0; exit 1 if no PT_LOAD
 *                             segment of the dump covers the range.
 */
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	static char page[4096];
	unsigned long long start, size, off = 0, n, nz = 0;
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	int fd, i;

	if (argc != 3) {
		fprintf(stderr, "usage: vmcore_scan START SIZE\n");
		return 2;
	}
	start = strtoull(argv[1], NULL, 0);
	size = strtoull(argv[2], NULL, 0);
	fd = open("/proc/vmcore", O_RDONLY);
	if (fd < 0 || pread(fd, &eh, sizeof(eh), 0) != sizeof(eh) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG)) {
		perror("/proc/vmcore");
		return 2;
	}
	for (i = 0; i < eh.e_phnum; i++) {
		if (pread(fd, &ph, sizeof(ph), eh.e_phoff + i * sizeof(ph)) != sizeof(ph))
			return 2;
		if (ph.p_type == PT_LOAD && ph.p_paddr <= start &&
		    start + size <= ph.p_paddr + ph.p_memsz) {
			off = ph.p_offset + (start - ph.p_paddr);
			break;
		}
	}
	if (i == eh.e_phnum) {
		fprintf(stderr, "no PT_LOAD covers %#llx+%#llx\n", start, size);
		return 1;
	}
	for (n = 0; n < size / sizeof(page); n++) {
		if (pread(fd, page, sizeof(page), off + n * sizeof(page)) != sizeof(page)) {
			perror("read");
			return 2;
		}
		for (i = 0; i < (int)sizeof(page); i++)
			if (page[i]) {
				nz++;
				break;
			}
	}
	printf("pages %llu nonzero %llu\n", n, nz);
	return 0;
}
