/*
 * log.h - the one logging module.
 *
 * Levels follow fluentd (fatal error warn info debug trace). The level test
 * happens in the macro, before the arguments are evaluated, so a disabled
 * debug line costs one compare. Plugins log through ls_plg_*(ins, ...), which
 * prefixes "[type.id]" so every message says where it came from.
 *
 * Message style: lower-case, no trailing period, failing call first, subject
 * quoted: open() '/var/log/nginx/access.log' failed (13: Permission denied)
 */
#ifndef LS_LOG_H
#define LS_LOG_H

#include "common.h"

enum ls_log_level {
    LS_LOG_FATAL = 0,
    LS_LOG_ERROR,
    LS_LOG_WARN,
    LS_LOG_INFO,
    LS_LOG_DEBUG,
    LS_LOG_TRACE
};

extern int ls_log_level;

/* Parse "info", "debug"... -> level, or -1. */
int ls_log_level_parse(const char *s);
const char *ls_log_level_name(int level);
/* Whether fd is systemd's journal stream ($JOURNAL_STREAM names its device and inode). */
bool ls_log_is_journal(int fd);
/* Check (again) whether stderr is the journal: at start and after stderr was redirected. Lines
 * to a journal stderr start with their syslog priority ("<3>") instead of a timestamp. */
void ls_log_detect_journal(void);
/* "<N>" for a message printed to stderr directly at this level when stderr is the journal;
 * "" otherwise. */
const char *ls_log_stderr_prefix(int level);
/* Send the log to a file (-o); NULL = stderr. LS_OK / LS_ERROR. Reopened on HUP. */
int ls_log_open(const char *path);
void ls_log_reopen(void);

void ls_log_write(int level, const char *prefix, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Hook called for every emitted line (monitoring counts warnings/errors; tests capture). */
/* Write text as it is to logship's log (stderr, or the -o file): filter stdout's lines. */
void ls_log_write_raw(const char *p, size_t n);
void ls_log_set_hook(void (*hook)(int level, const char *line));
/* Set by a thread around lines that must not become fluent.* events (fluentlog.c). */
extern __thread bool ls_log_events_off;

#define ls_log(level, ...)                                  \
    do {                                                    \
        if ((level) <= ls_log_level) {                      \
            ls_log_write((level), NULL, __VA_ARGS__);       \
        }                                                   \
    } while (0)

#define ls_fatal(...) ls_log(LS_LOG_FATAL, __VA_ARGS__)
#define ls_err(...)   ls_log(LS_LOG_ERROR, __VA_ARGS__)
#define ls_warn(...)  ls_log(LS_LOG_WARN, __VA_ARGS__)
#define ls_info(...)  ls_log(LS_LOG_INFO, __VA_ARGS__)
#define ls_debug(...) ls_log(LS_LOG_DEBUG, __VA_ARGS__)
#define ls_trace(...) ls_log(LS_LOG_TRACE, __VA_ARGS__)

/* Logs at error level and returns LS_ERROR, so error paths are one line. */
int ls_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Per-instance logging; ins is a struct ls_instance * (see plugin.h). */
struct ls_instance;
int ls_instance_log_level(const struct ls_instance *ins);
const char *ls_instance_name(const struct ls_instance *ins);

#define ls_plg_log(ins, level, ...)                                          \
    do {                                                                     \
        if ((level) <= ls_instance_log_level(ins)) {                         \
            ls_log_write((level), ls_instance_name(ins), __VA_ARGS__);       \
        }                                                                    \
    } while (0)

#define ls_plg_error(ins, ...) ls_plg_log(ins, LS_LOG_ERROR, __VA_ARGS__)
#define ls_plg_warn(ins, ...)  ls_plg_log(ins, LS_LOG_WARN, __VA_ARGS__)
#define ls_plg_info(ins, ...)  ls_plg_log(ins, LS_LOG_INFO, __VA_ARGS__)
#define ls_plg_debug(ins, ...) ls_plg_log(ins, LS_LOG_DEBUG, __VA_ARGS__)
#define ls_plg_trace(ins, ...) ls_plg_log(ins, LS_LOG_TRACE, __VA_ARGS__)

#endif
