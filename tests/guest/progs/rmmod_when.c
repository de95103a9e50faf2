// SPDX-License-Identifier: GPL-2.0
/*
 * rmmod_when: unload a module the moment a status file shows a line.
 *
 *   rmmod_when FILE LINE MODULE TIMEOUT_S
 *
 * Reads FILE (a debugfs status) in a tight loop until one of its lines is LINE,
 * then calls delete_module(MODULE) at once: no fork or exec stands between what
 * the file showed and the unload, so the unload lands in windows a shell's
 * rmmod would miss. Prints how many reads it took and the file's last contents,
 * then exits with delete_module()'s status (1 on a timeout or a failed unload).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Whether the NUL-terminated text buf has a line that is exactly line. */
static int has_line(const char *buf, const char *line)
{
	size_t len = strlen(line);
	const char *p = buf;

	while ((p = strstr(p, line))) {
		if ((p == buf || p[-1] == '\n') && (p[len] == '\n' || !p[len]))
			return 1;
		p += len;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static char buf[16384];
	unsigned long reads = 0;
	double end;
	ssize_t n;
	int fd;

	if (argc != 5) {
		fprintf(stderr, "usage: rmmod_when FILE LINE MODULE TIMEOUT_S\n");
		return 2;
	}
	end = now() + atof(argv[4]);
	for (;;) {
		fd = open(argv[1], O_RDONLY);
		if (fd < 0) {
			perror(argv[1]);
			return 1;
		}
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		buf[n > 0 ? n : 0] = 0;
		reads++;
		if (has_line(buf, argv[2]))
			break;
		if (now() > end) {
			fprintf(stderr, "rmmod_when: no line '%s' in %s after %s s\n", argv[2],
				argv[1], argv[4]);
			return 1;
		}
	}
	if (syscall(SYS_delete_module, argv[3], O_NONBLOCK)) {
		perror("delete_module");
		return 1;
	}
	printf("# rmmod_when: %s unloaded after %lu reads; the status read last:\n", argv[3], reads);
	for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n"))
		printf("#   %s\n", l);
	return 0;
}
