/*
 * spawn RESULT ROOT COMMAND...: run COMMAND (chrooted into ROOT unless ROOT
 * is "-") and write "wall_ns cpu_us maxrss_kib status" to the file RESULT.
 *
 * A process forked from the benchmark's Python carries Python's memory in
 * its peak RSS (the kernel keeps the high-water mark across exec); forked
 * from this small program instead, the command's own peak is what shows.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
	struct timespec start, end;
	struct rusage usage;
	int status;
	pid_t pid;
	FILE *out;

	if (argc < 4) {
		fprintf(stderr, "usage: spawn RESULT ROOT|- COMMAND...\n");
		return 2;
	}
	if (strcmp(argv[2], "-") != 0 && (chroot(argv[2]) != 0 || chdir("/") != 0)) {
		perror("spawn: chroot");
		return 2;
	}
	/* The preload path is the command's (inside ROOT), not this program's. */
	if (getenv("SPAWN_LD_PRELOAD")) {
		setenv("LD_PRELOAD", getenv("SPAWN_LD_PRELOAD"), 1);
		unsetenv("SPAWN_LD_PRELOAD");
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	pid = fork();
	if (pid == 0) {
		execve(argv[3], argv + 3, environ);
		perror("spawn: exec");
		_exit(127);
	}
	if (pid < 0 || wait4(pid, &status, 0, &usage) < 0) {
		perror("spawn");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	out = fopen(argv[1], "w");
	if (!out) {
		perror("spawn: result");
		return 2;
	}
	fprintf(out, "%lld %lld %ld %d\n",
		(long long)(end.tv_sec - start.tv_sec) * 1000000000LL + (end.tv_nsec - start.tv_nsec),
		(long long)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000LL
			+ usage.ru_utime.tv_usec + usage.ru_stime.tv_usec,
		usage.ru_maxrss,
		WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	fclose(out);
	return 0;
}
