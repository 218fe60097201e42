/*
 * common.c - allocation wrappers, clocks, and careful file I/O helpers.
 *
 * Allocation failure aborts: logship keeps its state on disk (pos_file,
 * file buffer), so dying and being restarted by systemd loses nothing,
 * while limping on after a failed allocation could.
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void oom(size_t n)
{
    fprintf(stderr, "logship: out of memory allocating %zu bytes\n", n);
    abort();
}

void *ls_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        oom(n);
    }
    return p;
}

void *ls_calloc(size_t nmemb, size_t n)
{
    void *p = calloc(nmemb ? nmemb : 1, n ? n : 1);
    if (p == NULL) {
        oom(nmemb * n);
    }
    return p;
}

void *ls_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) {
        oom(n);
    }
    return q;
}

char *ls_strdup(const char *s)
{
    return ls_strndup(s, strlen(s));
}

char *ls_strndup(const char *s, size_t n)
{
    char *p = ls_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void ls_free(void *p)
{
    free(p);
}

char *ls_asprintf(const char *fmt, ...)
{
    va_list ap;
    char *p;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&p, fmt, ap);
    va_end(ap);
    if (n < 0) {
        oom(0);
    }
    return p;
}

double ls_mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void ls_wall_now(int64_t *sec, int32_t *nsec)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    *sec = ts.tv_sec;
    *nsec = (int32_t)ts.tv_nsec;
}

int ls_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return LS_ERROR;
        }
        p += n;
        len -= (size_t)n;
    }
    return LS_OK;
}

int ls_fsync_dir_of(const char *path)
{
    char *copy = ls_strdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = LS_OK;

    ls_free(copy);
    if (fd < 0) {
        return LS_ERROR;
    }
    if (fsync(fd) != 0) {
        rc = LS_ERROR;
    }
    close(fd);
    return rc;
}

int ls_write_file_atomic(const char *path, const void *buf, size_t len, int mode)
{
    char *tmp = ls_asprintf("%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    int saved;

    if (fd < 0) {
        ls_free(tmp);
        return LS_ERROR;
    }
    if (ls_write_all(fd, buf, len) != LS_OK || fsync(fd) != 0) {
        saved = errno;
        close(fd);
        unlink(tmp);
        ls_free(tmp);
        errno = saved;
        return LS_ERROR;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        saved = errno;
        unlink(tmp);
        ls_free(tmp);
        errno = saved;
        return LS_ERROR;
    }
    ls_free(tmp);
    return ls_fsync_dir_of(path);
}

int ls_read_file(const char *path, size_t max, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t cap = 4096, n = 0;
    char *p;

    if (fd < 0) {
        return LS_ERROR;
    }
    p = ls_malloc(cap + 1);
    for (;;) {
        ssize_t r;
        if (n == cap) {
            if (max && cap >= max) {
                break;
            }
            cap *= 2;
            if (max && cap > max) {
                cap = max;
            }
            p = ls_realloc(p, cap + 1);
        }
        r = read(fd, p + n, cap - n);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            close(fd);
            ls_free(p);
            return LS_ERROR;
        }
        if (r == 0) {
            break;
        }
        n += (size_t)r;
    }
    close(fd);
    p[n] = '\0';
    *out = p;
    if (len) {
        *len = n;
    }
    return LS_OK;
}

int ls_mkdir_p(const char *path, int mode)
{
    char *p = ls_strdup(path);
    char *s;
    int rc = LS_OK;

    for (s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, mode) != 0 && errno != EEXIST) {
                rc = LS_ERROR;
                break;
            }
            *s = '/';
        }
    }
    if (rc == LS_OK && mkdir(p, mode) != 0 && errno != EEXIST) {
        rc = LS_ERROR;
    }
    ls_free(p);
    return rc;
}

bool ls_path_unsafe(const char *s)
{
    const char *p;

    if (s[0] == '/') {
        return true;
    }
    for (p = strstr(s, ".."); p; p = strstr(p + 1, "..")) {
        if ((p == s || p[-1] == '/') && (p[2] == '\0' || p[2] == '/')) {
            return true;
        }
    }
    return false;
}

bool ls_dir_writable(const char *dir, char *why, size_t whylen)
{
    char p[PATH_MAX];
    struct stat st;
    size_t n;

    if (snprintf(p, sizeof(p), "%s", dir) >= (int)sizeof(p) || p[0] == '\0') {
        snprintf(why, whylen, "'%s': path too long or empty", dir);
        return false;
    }
    /* the nearest existing ancestor is the one mkdir -p has to write into */
    while (stat(p, &st) != 0) {
        /* EACCES: an ancestor we cannot search; walking up finds it and says so */
        if (errno != ENOENT && errno != EACCES && errno != ENOTDIR) {
            snprintf(why, whylen, "'%s': %s", p, strerror(errno));
            return false;
        }
        n = strlen(p);
        while (n > 1 && p[n - 1] == '/') {
            p[--n] = '\0';
        }
        while (n > 1 && p[n - 1] != '/') {
            p[--n] = '\0';
        }
        if (n > 1) {
            p[--n] = '\0';
        }
        if (n <= 1) {
            snprintf(p, sizeof(p), "%s", dir[0] == '/' ? "/" : ".");
            if (stat(p, &st) != 0) {
                snprintf(why, whylen, "'%s': %s", p, strerror(errno));
                return false;
            }
            break;
        }
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(why, whylen, "'%s' is not a directory", p);
        return false;
    }
    /* access() asks with the real uid: the service user when run as it */
    if (access(p, W_OK | X_OK) != 0) {
        snprintf(why, whylen, "'%s'%s is not writable by uid %u (%s)", p,
                 strcmp(p, dir) != 0 ? " (where it would be created)" : "", (unsigned)getuid(),
                 strerror(errno));
        return false;
    }
    return true;
}
