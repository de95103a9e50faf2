// SPDX-License-Identifier: GPL-2.0
/*
 * kexec_load: load a kernel for kexec or kdump, or jump into a loaded one.
 *
 *   kexec_load [--crash] KERNEL INITRD CMDLINE
 *                      kexec_file_load() KERNEL (a bzImage) with INITRD and
 *                      CMDLINE; --crash loads it as the crash kernel
 *                      (KEXEC_FILE_ON_CRASH), run by the next panic.
 *   kexec_load --exec  reboot into the loaded kernel (LINUX_REBOOT_CMD_KEXEC).
 *
 * What kexec-tools' "kexec -s" does, without kexec-tools in the initramfs.
 */
#include <fcntl.h>
#include <linux/kexec.h>
#include <linux/reboot.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	unsigned long flags = 0;
	int kfd, ifd, a = 1;

	if (argc == 2 && !strcmp(argv[1], "--exec")) {
		sync();
		syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
			LINUX_REBOOT_CMD_KEXEC, NULL);
		perror("kexec_load: reboot(LINUX_REBOOT_CMD_KEXEC)");
		return 1;
	}
	if (argc > 1 && !strcmp(argv[1], "--crash")) {
		flags |= KEXEC_FILE_ON_CRASH;
		a++;
	}
	if (argc - a != 3) {
		fprintf(stderr, "usage: kexec_load [--crash] KERNEL INITRD CMDLINE | --exec\n");
		return 2;
	}
	kfd = open(argv[a], O_RDONLY);
	ifd = open(argv[a + 1], O_RDONLY);
	if (kfd < 0 || ifd < 0) {
		perror("kexec_load: open");
		return 1;
	}
	if (syscall(SYS_kexec_file_load, kfd, ifd, strlen(argv[a + 2]) + 1,
		    argv[a + 2], flags)) {
		perror("kexec_load: kexec_file_load");
		return 1;
	}
	return 0;
}
