/*
 * log.c - the logging module (see log.h).
 *
 * One line per message: "2026-11-21 12:00:00 +0000 [warn]: [in_tail.0] text".
 * The format follows fluentd's own log so operators' greps keep working.
 * Lines are written with one write(2) so concurrent writers (worker threads)
 * never interleave within a line.
 *
 * Under systemd stderr is the journal: there each line starts with its syslog
 * priority, "<3>[error]: text" (sd-daemon(3)), so `journalctl -p err` filters,
 * and carries no timestamp (the journal has its own).
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int ls_log_level = LS_LOG_INFO;

static int log_fd = 2;
static bool stderr_journal;
static char *log_path;
static void (*log_hook)(int level, const char *line);
__thread bool ls_log_events_off;

static const char *const level_names[] = { "fatal", "error", "warn", "info", "debug", "trace" };
/* syslog priorities: crit, err, warning, info, debug, debug */
static const char *const journal_prefix[] = { "<2>", "<3>", "<4>", "<6>", "<7>", "<7>" };

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

bool ls_log_is_journal(int fd)
{
    const char *e = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    char extra;

    /* systemd's "<st_dev>:<st_ino>" of the stream it connected; a child whose stderr was
     * redirected elsewhere inherits the variable, so the fd itself must be that stream */
    if (e == NULL || sscanf(e, "%llu:%llu%c", &dev, &ino, &extra) != 2 || fstat(fd, &st) != 0) {
        return false;
    }
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void ls_log_detect_journal(void)
{
    stderr_journal = ls_log_is_journal(2);
}

const char *ls_log_stderr_prefix(int level)
{
    if (!stderr_journal) {
        return "";
    }
    if (level < 0) {
        level = 0;
    }
    if (level >= (int)LS_ARRAY_LEN(journal_prefix)) {
        level = (int)LS_ARRAY_LEN(journal_prefix) - 1;
    }
    return journal_prefix[level];
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
    size_t n, stamp;
    va_list ap;
    int r;
    int saved = errno;

    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S %z", &tm);
    stamp = n;
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
    if (log_fd == 2 && stderr_journal) {
        /* the priority in place of the timestamp; the hook still gets the whole line */
        char out[sizeof(line)];
        int m = snprintf(out, sizeof(out), "%s%s", ls_log_stderr_prefix(level), line + stamp + 1);
        if (m > 0) {
            (void)ls_write_all(log_fd, out, (size_t)m);
        }
    } else {
        (void)ls_write_all(log_fd, line, n);
    }
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
