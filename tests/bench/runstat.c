/*
 * runstat.c - run a command and print its CPU time and peak RSS (bench.py).
 *
 *     runstat OUTFILE cmd args...   (stdin/stdout/stderr are the command's)
 *
 * writes "exit user_s sys_s maxrss_kb wall_s" to OUTFILE. Why not Python's
 * os.wait4: ru_maxrss is the high-water mark of the process across exec, and
 * a child forked (or vforked) from Python starts out sharing Python's ~16 MB,
 * which then shows as every command's "peak RSS". Forked from this small
 * program, the high-water mark before exec is a few hundred KiB, so
 * ru_maxrss is the command's own peak.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>

static double tv(struct timeval t)
{
    return (double)t.tv_sec + (double)t.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    struct timespec t0, t1;
    struct rusage ru;
    int status, code;
    pid_t pid;
    FILE *f;

    if (argc < 3) {
        fprintf(stderr, "usage: runstat OUTFILE cmd args...\n");
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid = fork();
    if (pid < 0) {
        perror("fork");
        return 2;
    }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        perror(argv[2]);
        _exit(127);
    }
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("wait4");
            return 2;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    f = fopen(argv[1], "w");
    if (f == NULL) {
        perror(argv[1]);
        return 2;
    }
    fprintf(f, "%d %.6f %.6f %ld %.6f\n", code, tv(ru.ru_utime), tv(ru.ru_stime), ru.ru_maxrss,
            (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    fclose(f);
    return code;
}
