// SPDX-License-Identifier: GPL-2.0
/*
 * mhp_write: write to sysfs files and report the exact error code.
 *
 *   mhp_write FILE STRING
 *	Writes STRING (exactly, no newline added) to FILE in one write() and
 *	prints "OK" or the errno name (e.g. "EINVAL"). Exit status 0 either
 *	way: the caller compares the printed name.
 *
 *   mhp_write -l SECONDS STRING FILE...
 *	Opens every FILE, then writes STRING to the first one again and again
 *	until a write succeeds or the file goes away (ENODEV), then to the
 *	next one, and so on, for at most SECONDS in all. Prints one line per
 *	FILE with the run-length encoded sequence of results, e.g.
 *	"memory40/state ENOMEM*812 EPERM*1 ENODEV*1". Used to race onlining
 *	against a driver that is removing the blocks, in the order it does.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *errname(int e)
{
	static char buf[16];

	switch (e) {
	case 0: return "OK";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EINTR: return "EINTR";
	case EIO: return "EIO";
	case ENXIO: return "ENXIO";
	case E2BIG: return "E2BIG";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case ENODEV: return "ENODEV";
	case EINVAL: return "EINVAL";
	case ENOSPC: return "ENOSPC";
	case ERANGE: return "ERANGE";
	case ETXTBSY: return "ETXTBSY";
	case EOPNOTSUPP: return "EOPNOTSUPP";
#ifdef EHWPOISON
	case EHWPOISON: return "EHWPOISON";
#endif
	}
	snprintf(buf, sizeof(buf), "E%d", e);
	return buf;
}

static int write_once(int fd, const char *s)
{
	ssize_t n = pwrite(fd, s, strlen(s), 0);

	if (n < 0)
		return errno;
	return n == (ssize_t)strlen(s) ? 0 : EIO;
}

struct target {
	const char *path;
	int fd;
	int done;
	char log[512];
	int last, count;
};

static void flush_run(struct target *t)
{
	size_t len = strlen(t->log);

	if (t->count && len < sizeof(t->log) - 32)
		snprintf(t->log + len, sizeof(t->log) - len, " %s*%d",
			 errname(t->last), t->count);
	t->count = 0;
}

static void record(struct target *t, int e)
{
	if (t->count && e != t->last)
		flush_run(t);
	t->last = e;
	t->count++;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int loop(double seconds, const char *s, int n, char **files)
{
	struct target *t = calloc(n, sizeof(*t));
	double end = now() + seconds;
	int left = n;

	if (!t)
		return 2;
	for (int i = 0; i < n; i++) {
		t[i].path = files[i];
		t[i].fd = open(files[i], O_WRONLY);
		if (t[i].fd < 0) {
			record(&t[i], errno);
			t[i].done = 1;
			left--;
		}
	}
	for (int i = 0; i < n && left && now() < end; i++) {
		while (!t[i].done && now() < end) {
			int e = write_once(t[i].fd, s);

			record(&t[i], e);
			if (e == 0 || e == ENODEV || e == ENOENT) {
				t[i].done = 1;
				left--;
			}
		}
	}
	for (int i = 0; i < n; i++) {
		flush_run(&t[i]);
		printf("%s%s%s\n", t[i].path, t[i].log, t[i].done ? "" : " TIMEOUT");
	}
	return 0;
}

int main(int argc, char **argv)
{
	int fd;

	if (argc >= 5 && !strcmp(argv[1], "-l"))
		return loop(atof(argv[2]), argv[3], argc - 4, argv + 4);
	if (argc != 3) {
		fprintf(stderr,
			"usage: mhp_write FILE STRING | mhp_write -l SECONDS STRING FILE...\n");
		return 2;
	}
	fd = open(argv[1], O_WRONLY);
	if (fd < 0) {
		printf("%s\n", errname(errno));
		return 0;
	}
	printf("%s\n", errname(write_once(fd, argv[2])));
	close(fd);
	return 0;
}
