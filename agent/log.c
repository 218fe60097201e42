/*
 * log.c - the logging module (see log.h).
 *
 * One line per message: "2026-11-21 12:00:00 +0000 [warn]: [in_tail.0] text".
 * The format follows fluentd's own log so operators' greps keep working.
 * Lines are written with one write(2) so concurrent writers (worker threads)
 * never interleave within a line.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int ls_log_level = LS_LOG_INFO;

static int log_fd = 2;
static char *log_path;
static void (*log_hook)(int level, const char *line);

static const char *const level_names[] = { "fatal", "error", "warn", "info", "debug", "trace" };

int ls_log_level_parse(const char *s)
{
    size_t i;

    for (i = 0; i < LS_ARRAY_LEN(level_names); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            return (int)i;
        }
    }
    if (strcmp(s, "warning") == 0) {
        return LS_LOG_WARN;
    }
    return -1;
}

const char *ls_log_level_name(int level)
{
    if (level < 0 || level >= (int)LS_ARRAY_LEN(level_names)) {
        return "?";
    }
    return level_names[level];
}

int ls_log_open(const char *path)
{
    int fd;

    if (path == NULL) {
        if (log_fd > 2) {
            close(log_fd);
        }
        log_fd = 2;
        ls_free(log_path);
        log_path = NULL;
        return LS_OK;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
        return LS_ERROR;
    }
    if (log_fd > 2) {
        close(log_fd);
    }
    log_fd = fd;
    if (log_path != path) {
        ls_free(log_path);
        log_path = ls_strdup(path);
    }
    return LS_OK;
}

void ls_log_reopen(void)
{
    if (log_path) {
        char *p = ls_strdup(log_path);
        ls_log_open(p);
        ls_free(p);
    }
}

void ls_log_write_raw(const char *p, size_t n)
{
    int saved = errno;

    (void)ls_write_all(log_fd, p, n);
    errno = saved;
}

void ls_log_set_hook(void (*hook)(int level, const char *line))
{
    log_hook = hook;
}

void ls_log_write(int level, const char *prefix, const char *fmt, ...)
{
    char line[4096];
    struct timespec ts;
    struct tm tm;
    size_t n;
    va_list ap;
    int r;
    int saved = errno;

    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S %z", &tm);
    r = snprintf(line + n, sizeof(line) - n, " [%s]: %s%s", ls_log_level_name(level),
                 prefix ? prefix : "", prefix ? " " : "");
    if (r > 0) {
        n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
    }
    va_start(ap, fmt);
    r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (r > 0) {
        n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
    }
    if (n >= sizeof(line) - 1) {
        n = sizeof(line) - 2;
    }
    line[n++] = '\n';
    line[n] = '\0';
    (void)ls_write_all(log_fd, line, n);
    if (log_hook) {
        log_hook(level, line);
    }
    errno = saved;
}

int ls_error(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;

    if (LS_LOG_ERROR <= ls_log_level) {
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        ls_log_write(LS_LOG_ERROR, NULL, "%s", msg);
    }
    return LS_ERROR;
}
