/*
 * inject.h - fluentd's <inject> section (and the v0.12 flat names
 * include_time_key / include_tag_key): add time, tag, hostname fields to a
 * record just before an output formats it.
 *
 * The record must not be modified (several outputs share it), so apply
 * returns either rec itself (nothing to inject) or a shallow copy in scratch
 * with the extra fields.
 *
 * Also here: fluentd's output-side time formatter (TimeMixin::Formatter),
 * shared by <inject> and the formatters that print the event time
 * (out_file, stdout): time_type float/unixtime/string, time_format
 * (none = ISO 8601, "Z" in UTC), localtime/utc/timezone.
 */
#ifndef LS_INJECT_H
#define LS_INJECT_H

#include "plugin.h"

struct ls_inject;

/* sec: the <inject> child, or the output's own section for flat names. NULL result with
 * err[0] == '\0' means "nothing to inject"; with err set it is an error. */
struct ls_inject *ls_inject_create(struct ls_conf_section *sec, char *err, size_t errlen);
/* Injected string values (time, hostname) stay valid until the next apply on inj. */
const struct ls_record *ls_inject_apply(struct ls_inject *inj, const struct ls_record *rec,
                                        struct ls_record *scratch);
void ls_inject_destroy(struct ls_inject *inj);
/* The <inject> section's parameters (for docs). */
extern const struct ls_param ls_inject_params[];
/* The v0.12 flat names read from an output's own section (for docs). */
extern const struct ls_param ls_inject_flat_params[];

/* ---- time formatting for outputs ---- */

enum ls_time_type {
    LS_TIME_FLOAT = 0,      /* 1700000000.123456 (JSON number) */
    LS_TIME_UNIXTIME,       /* 1700000000 */
    LS_TIME_STRING,         /* time_format text */
};
#define LS_TIME_TYPE_ENUMS "float|unixtime|string"

struct ls_time_formatter;

/*
 * format NULL: ISO 8601 ("2026-11-21T12:00:00+09:00", or "...Z" in UTC),
 * as Ruby's Time#iso8601. tz_name (timezone; NULL = none) wins over localtime; else
 * localtime true = the process's zone, false = UTC. float_usec: floats are
 * truncated to microseconds (what <inject> does) rather than nanoseconds.
 */
struct ls_time_formatter *ls_time_formatter_create(enum ls_time_type type, const char *format,
                                                   bool localtime, const char *tz_name,
                                                   bool float_usec, char *err, size_t errlen);
/* Append the time as text (floats like Ruby's Float#to_s). LS_OK / LS_AGAIN (out full). */
int ls_time_formatter_put(struct ls_time_formatter *tf, const struct ls_time *t, struct ls_buf *out);
/* The time as a record value; a string points into tf (valid until the next call). */
struct ls_value ls_time_formatter_value(struct ls_time_formatter *tf, const struct ls_time *t);
void ls_time_formatter_destroy(struct ls_time_formatter *tf);

/*
 * fluentd's localtime/utc pair: "both of utc and localtime are specified"
 * is an error; utc X means localtime !X. Reads the two keys of sec (NULL ok)
 * and returns the effective localtime (default true). LS_OK / LS_ERROR.
 */
int ls_time_localtime_of(struct ls_conf_section *sec, bool *localtime, char *err, size_t errlen);

#endif
