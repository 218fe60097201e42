/*
 * timefmt.h - strptime/strftime as fluentd's time_format uses them, fast.
 *
 * Parsing is the per-line hot path of every log parser, so a compiled
 * format is a small program of steps, and the conversion of broken-down
 * time to epoch seconds is cached per (date, hour, offset) so a line whose
 * time differs from the previous one only in minutes/seconds costs a few
 * additions. Supports %Y %m %d %H %M %S %b %B %a %A %y %j %e %I %p %z %Z
 * %N (nanoseconds; also %L %3N %6N %9N), %s, %T %D %F %R %%, literal text
 * and whitespace. %z accepts +0900, +09:00 and Z.
 *
 * Zones: utc, localtime, or a name like "Asia/Tokyo" / "+09:00" (fluentd's
 * timezone parameter). Thread-compatible: one struct per thread.
 */
#ifndef LS_TIMEFMT_H
#define LS_TIMEFMT_H

#include "common.h"
#include "record.h"
#include "buf.h"

struct ls_timefmt;

/*
 * Compile fmt. zone: NULL or "" = local time, "UTC"/"utc" = UTC, or a tz name
 * or "+HH:MM" offset; a %z in the input overrides the zone.
 * NULL on error (message in err).
 */
struct ls_timefmt *ls_timefmt_create(const char *fmt, const char *zone, char *err, size_t errlen);
void ls_timefmt_destroy(struct ls_timefmt *tf);

/* Parse s[0..len) -> out. LS_OK, or LS_ERROR when it does not match. Trailing bytes are an error. */
int ls_timefmt_parse(struct ls_timefmt *tf, const char *s, size_t len, struct ls_time *out);

/* Format t with the compiled format into out (appends). Cached per second. */
int ls_timefmt_format(struct ls_timefmt *tf, const struct ls_time *t, struct ls_buf *out);

/* Seconds east of UTC for zone at epoch t (handles DST for named zones). */
int ls_tz_offset(const char *zone, int64_t t, int *offset);

/* Days-from-civil (proleptic Gregorian): epoch seconds of a UTC broken-down time. */
int64_t ls_timegm(int year, int mon /*1-12*/, int day, int hour, int min, int sec);

#endif
