/*
 * common.h - what every logship source file includes.
 *
 * A tiny fixed set of return codes (nginx style), allocation wrappers that
 * abort on out-of-memory (a log shipper that limps on after a failed malloc
 * loses data silently; dying loudly lets systemd restart us and the file
 * buffer and pos_file carry on), container_of, and the banned-function list.
 */
#ifndef LS_COMMON_H
#define LS_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>
#include <stdarg.h>
/* System headers that declare banned functions must come before banned.h. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <errno.h>

/* the release, in one place: --version, Parquet's created_by, newrelic's plugin attribute */
#ifndef LS_VERSION
#define LS_VERSION "0.1.0"
#endif
#include <unistd.h>

#define LS_OK        0
#define LS_ERROR    -1
#define LS_AGAIN    -2   /* would block / not now: back-pressure, call again later */
#define LS_DECLINED -3   /* not mine / dropped (e.g. a filter removed the record) */

#define LS_UNUSED(x) ((void)(x))
#define LS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define ls_likely(x)   __builtin_expect(!!(x), 1)
#define ls_unlikely(x) __builtin_expect(!!(x), 0)

#define ls_container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

void *ls_malloc(size_t n);
void *ls_calloc(size_t nmemb, size_t n);
void *ls_realloc(void *p, size_t n);
char *ls_strdup(const char *s);
char *ls_strndup(const char *s, size_t n);
void ls_free(void *p);
/* printf into a freshly allocated string; caller owns the result */
char *ls_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Monotonic clock in seconds, and wall clock split into sec/nsec. */
double ls_mono_now(void);
void ls_wall_now(int64_t *sec, int32_t *nsec);

/* Write all of buf to fd, retrying on EINTR/short writes. LS_OK or LS_ERROR (errno set). */
int ls_write_all(int fd, const void *buf, size_t len);
/* Write a whole file atomically: tmp file + fsync + rename + fsync(dir). */
int ls_write_file_atomic(const char *path, const void *buf, size_t len, int mode);
/* Read a whole file (capped at max bytes). Caller owns *out (NUL-terminated). */
int ls_read_file(const char *path, size_t max, char **out, size_t *len);
/* mkdir -p */
int ls_mkdir_p(const char *path, int mode);
/*
 * True when s, used inside a file path (a tag or record value in a placeholder), could
 * leave the configured directory: it starts with '/' or has a ".." component. fluentd
 * 1.19 refuses the same values.
 */
bool ls_path_unsafe(const char *s);
/* fsync the directory containing path (so a rename/create in it is durable). */
int ls_fsync_dir_of(const char *path);
/*
 * Could this process create files in dir (made with mkdir -p if missing)? true, or false with
 * the reason in why ("'/var/lib/x' is not writable by uid 998", a read-only file system...).
 * For --dry-run: the start would trip on it.
 */
bool ls_dir_writable(const char *dir, char *why, size_t whylen);

#include "banned.h"

#endif
