/*
 * timefmt.c - strptime/strftime for fluentd's time_format, fast (timefmt.h).
 *
 * A format is compiled once into a small array of steps; parsing walks the
 * steps over the input with hand-written digit loops (no strptime, no
 * mktime per line). The expensive part of turning a broken-down time into
 * epoch seconds - calendar arithmetic and, for zoned formats, finding the
 * UTC offset - is cached per (year, month, day, hour, offset): an access
 * log's lines share the hour, so a hit costs two multiplications and two
 * additions. The cache relies on UTC offsets changing only at whole local
 * hours, which holds for every DST rule in use except Lord Howe Island's
 * half-hour shift (its half hour around the switch may be off by 30 min).
 *
 * Zones. UTC and fixed offsets are constants. "localtime" asks libc
 * (localtime_r, only at cache misses). Named zones ("Asia/Tokyo") are NOT
 * done by switching the TZ environment variable: setenv is not thread-safe
 * and would change the zone of every other thread's localtime_r (the log
 * timestamps, for one). Instead the zone's TZif file under
 * /usr/share/zoneinfo is read once (RFC 8536: 64-bit transition table plus
 * the POSIX TZ footer rule for times after the last transition, so slim
 * zone files work too), kept immutable in a process-wide list, and looked
 * up with a binary search. Loading takes a mutex; lookups take none.
 *
 * Without a format (NULL or ""), parsing is a flexible Time.parse
 * substitute: ISO 8601 / RFC 3339, "YYYY/MM/DD HH:MM:SS", the access-log
 * form "21/Nov/2026:12:00:00 +0900", RFC 2822 and ctime/syslog forms
 * ("Sat Nov 21 12:00:00 2026", "Nov 21 12:00:00"). "%iso8601" is fluentd's
 * special ISO 8601 format. Formatting without a format writes ISO 8601
 * with the zone offset, as fluentd's default output time format does.
 *
 * Formatting renders a whole second once into a cache and only patches the
 * fraction digits (%N, %L, %3N) for each call within that second.
 */
#include "timefmt.h"
#include "buf.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>

/* ---- calendar ---- */

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const unsigned char dm[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (era arithmetic). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int64_t ls_timegm(int year, int mon, int day, int hour, int min, int sec)
{
    return days_from_civil(year, mon, day) * 86400 + (int64_t)hour * 3600 + min * 60 + sec;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* ---- zones ---- */

struct tz_type {
    int32_t off;
    bool dst;
    char abbr[12];
};

/* POSIX TZ rule date: Mm.w.d (kind 'M'), Jn (kind 'J'), n (kind 'n') */
struct tz_rdate {
    char kind;
    int m, w, d, n;
    int32_t time;       /* seconds after local midnight (may be negative / > 24h) */
};

struct tzdata {
    char *name;
    int64_t *trans;
    uint8_t *idx;
    size_t ntrans;
    struct tz_type *types;
    size_t ntypes;
    bool has_rule;      /* footer rule, used after the last transition */
    bool rule_dst;      /* footer has a DST part */
    struct tz_type rstd, rdst;
    struct tz_rdate rstart, rend;
    struct tzdata *next;
};

enum tz_kind { TZK_UTC, TZK_LOCAL, TZK_FIXED, TZK_NAMED };

struct zone {
    enum tz_kind kind;
    int32_t fixed;
    const struct tzdata *tz;
};

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tzdata *tz_list;

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const unsigned char *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* POSIX TZ string pieces. Each returns the position after what it read, or NULL. */
static const char *rule_name(const char *s, char *out, size_t outlen)
{
    size_t n = 0;
    const char *start;

    if (*s == '<') {
        start = ++s;
        while (*s && *s != '>') {
            s++;
        }
        if (*s != '>') {
            return NULL;
        }
        n = (size_t)(s - start);
        s++;
    } else {
        start = s;
        while (isalpha((unsigned char)*s)) {
            s++;
        }
        n = (size_t)(s - start);
        if (n < 3) {
            return NULL;
        }
    }
    if (n >= outlen) {
        n = outlen - 1;
    }
    memcpy(out, start, n);
    out[n] = '\0';
    return s;
}

static const char *rule_hms(const char *s, int32_t *out)
{
    int sign = 1, h = 0, m = 0, sec = 0;

    if (*s == '+' || *s == '-') {
        sign = *s == '-' ? -1 : 1;
        s++;
    }
    if (!isdigit((unsigned char)*s)) {
        return NULL;
    }
    while (isdigit((unsigned char)*s) && h < 1000) {
        h = h * 10 + (*s++ - '0');
    }
    if (*s == ':') {
        s++;
        while (isdigit((unsigned char)*s) && m < 100) {
            m = m * 10 + (*s++ - '0');
        }
        if (*s == ':') {
            s++;
            while (isdigit((unsigned char)*s) && sec < 100) {
                sec = sec * 10 + (*s++ - '0');
            }
        }
    }
    *out = sign * (h * 3600 + m * 60 + sec);
    return s;
}

static const char *rule_int(const char *s, int *out)
{
    int v = 0;

    if (!isdigit((unsigned char)*s)) {
        return NULL;
    }
    while (isdigit((unsigned char)*s) && v < 10000) {
        v = v * 10 + (*s++ - '0');
    }
    *out = v;
    return s;
}

static const char *rule_date(const char *s, struct tz_rdate *rd)
{
    rd->time = 7200;
    if (*s == 'M') {
        rd->kind = 'M';
        if (!(s = rule_int(s + 1, &rd->m)) || *s++ != '.' || !(s = rule_int(s, &rd->w)) ||
            *s++ != '.' || !(s = rule_int(s, &rd->d))) {
            return NULL;
        }
        if (rd->m < 1 || rd->m > 12 || rd->w < 1 || rd->w > 5 || rd->d > 6) {
            return NULL;
        }
    } else if (*s == 'J') {
        rd->kind = 'J';
        if (!(s = rule_int(s + 1, &rd->n)) || rd->n < 1 || rd->n > 365) {
            return NULL;
        }
    } else {
        rd->kind = 'n';
        if (!(s = rule_int(s, &rd->n)) || rd->n > 365) {
            return NULL;
        }
    }
    if (*s == '/') {
        s = rule_hms(s + 1, &rd->time);
    }
    return s;
}

/* Parse the footer rule, e.g. "EST5EDT,M3.2.0,M11.1.0" or "JST-9". */
static bool rule_parse(struct tzdata *tz, const char *s)
{
    int32_t off;

    if (!(s = rule_name(s, tz->rstd.abbr, sizeof(tz->rstd.abbr))) || !(s = rule_hms(s, &off))) {
        return false;
    }
    tz->rstd.off = -off;
    tz->rstd.dst = false;
    if (*s == '\0') {
        tz->has_rule = true;
        return true;
    }
    if (!(s = rule_name(s, tz->rdst.abbr, sizeof(tz->rdst.abbr)))) {
        return false;
    }
    tz->rdst.off = tz->rstd.off + 3600;
    tz->rdst.dst = true;
    if (*s != ',' && *s != '\0') {
        if (!(s = rule_hms(s, &off))) {
            return false;
        }
        tz->rdst.off = -off;
    }
    if (*s != ',' || !(s = rule_date(s + 1, &tz->rstart)) || *s != ',' ||
        !(s = rule_date(s + 1, &tz->rend)) || *s != '\0') {
        return false;
    }
    tz->rule_dst = true;
    tz->has_rule = true;
    return true;
}

/* Local seconds since the epoch of a rule date in year y (local midnight + time). */
static int64_t rule_when(const struct tz_rdate *rd, int64_t y)
{
    int64_t days;

    if (rd->kind == 'M') {
        int64_t first = days_from_civil(y, rd->m, 1);
        int wday1 = (int)((first % 7 + 11) % 7);   /* 1970-01-01 was a Thursday (4) */
        int day = 1 + (rd->d - wday1 + 7) % 7 + (rd->w - 1) * 7;
        while (day > days_in_month(y, rd->m)) {
            day -= 7;
        }
        days = first + day - 1;
    } else if (rd->kind == 'J') {
        days = days_from_civil(y, 1, 1) + rd->n - 1 + (is_leap(y) && rd->n >= 60);
    } else {
        days = days_from_civil(y, 1, 1) + rd->n;
    }
    return days * 86400 + rd->time;
}

static const struct tz_type *rule_type(const struct tzdata *tz, int64_t t)
{
    int64_t y, start, end;
    int m, d;

    if (!tz->rule_dst) {
        return &tz->rstd;
    }
    civil_from_days(floor_div(t + tz->rstd.off, 86400), &y, &m, &d);
    start = rule_when(&tz->rstart, y) - tz->rstd.off;
    end = rule_when(&tz->rend, y) - tz->rdst.off;
    if (start < end) {
        return t >= start && t < end ? &tz->rdst : &tz->rstd;
    }
    return t >= end && t < start ? &tz->rstd : &tz->rdst;
}

static const struct tz_type *tzdata_type(const struct tzdata *tz, int64_t t)
{
    size_t lo, hi;

    if (tz->ntrans == 0 || t < tz->trans[0]) {
        if (tz->ntrans == 0 && tz->has_rule) {
            return rule_type(tz, t);
        }
        return &tz->types[0];
    }
    if (t >= tz->trans[tz->ntrans - 1] && tz->has_rule) {
        return rule_type(tz, t);
    }
    lo = 0;
    hi = tz->ntrans;          /* invariant: trans[lo] <= t, t < trans[hi] (hi may be end) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->trans[mid] <= t) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return &tz->types[tz->idx[lo]];
}

static void tzdata_free(struct tzdata *tz)
{
    if (tz) {
        ls_free(tz->name);
        ls_free(tz->trans);
        ls_free(tz->idx);
        ls_free(tz->types);
        ls_free(tz);
    }
}

/* Read and check a TZif file (RFC 8536). NULL if absent or malformed. */
static struct tzdata *tzdata_load(const char *name)
{
    char path[512];
    char *raw = NULL;
    size_t len = 0, pos, i;
    const unsigned char *p;
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
    int tsize = 4;
    struct tzdata *tz;
    const char *dir = getenv("TZDIR");

    if (name[0] == '\0' || name[0] == '/' || strstr(name, "..")) {
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    if (ls_read_file(path, 1 << 20, &raw, &len) != LS_OK) {
        return NULL;
    }
    p = (const unsigned char *)raw;
    pos = 0;
    for (;;) {
        size_t block;
        if (len - pos < 44 || memcmp(p + pos, "TZif", 4) != 0) {
            goto bad;
        }
        isutcnt = be32(p + pos + 20);
        isstdcnt = be32(p + pos + 24);
        leapcnt = be32(p + pos + 28);
        timecnt = be32(p + pos + 32);
        typecnt = be32(p + pos + 36);
        charcnt = be32(p + pos + 40);
        if (timecnt > 100000 || typecnt == 0 || typecnt > 256 || charcnt > 10000 ||
            leapcnt > 10000 || isutcnt > 256 || isstdcnt > 256) {
            goto bad;
        }
        block = (size_t)timecnt * (tsize + 1) + (size_t)typecnt * 6 + charcnt +
                (size_t)leapcnt * (tsize + 4) + isstdcnt + isutcnt;
        if (len - pos - 44 < block) {
            goto bad;
        }
        if (tsize == 4 && p[pos + 4] >= '2') {
            pos += 44 + block;       /* skip the 32-bit data: use the 64-bit block */
            tsize = 8;
            continue;
        }
        pos += 44;
        break;
    }
    tz = ls_calloc(1, sizeof(*tz));
    tz->name = ls_strdup(name);
    tz->ntrans = timecnt;
    tz->trans = ls_calloc(timecnt ? timecnt : 1, sizeof(int64_t));
    tz->idx = ls_calloc(timecnt ? timecnt : 1, 1);
    tz->ntypes = typecnt;
    tz->types = ls_calloc(typecnt, sizeof(struct tz_type));
    for (i = 0; i < timecnt; i++) {
        tz->trans[i] = tsize == 8 ? (int64_t)be64(p + pos + i * 8) : (int32_t)be32(p + pos + i * 4);
    }
    pos += (size_t)timecnt * tsize;
    for (i = 0; i < timecnt; i++) {
        tz->idx[i] = p[pos + i];
        if (tz->idx[i] >= typecnt) {
            tzdata_free(tz);
            goto bad;
        }
    }
    pos += timecnt;
    for (i = 0; i < typecnt; i++) {
        const unsigned char *t = p + pos + i * 6;
        const unsigned char *chars = p + pos + (size_t)typecnt * 6;
        tz->types[i].off = (int32_t)be32(t);
        tz->types[i].dst = t[4] != 0;
        if (t[5] < charcnt) {
            size_t n = strnlen((const char *)chars + t[5], charcnt - t[5]);
            if (n >= sizeof(tz->types[i].abbr)) {
                n = sizeof(tz->types[i].abbr) - 1;
            }
            memcpy(tz->types[i].abbr, chars + t[5], n);
        }
    }
    pos += (size_t)typecnt * 6 + charcnt + (size_t)leapcnt * (tsize + 4) + isstdcnt + isutcnt;
    if (tsize == 8 && pos < len && p[pos] == '\n') {
        const char *start = raw + pos + 1;
        const char *nl = memchr(start, '\n', len - pos - 1);
        if (nl && nl > start) {
            char *rule = ls_strndup(start, (size_t)(nl - start));
            if (!rule_parse(tz, rule)) {
                tz->has_rule = false;
            }
            ls_free(rule);
        }
    }
    ls_free(raw);
    return tz;
bad:
    ls_free(raw);
    return NULL;
}

static const struct tzdata *tzdata_get(const char *name)
{
    struct tzdata *tz;

    pthread_mutex_lock(&tz_lock);
    for (tz = tz_list; tz; tz = tz->next) {
        if (strcmp(tz->name, name) == 0) {
            break;
        }
    }
    if (tz == NULL && (tz = tzdata_load(name)) != NULL) {
        tz->next = tz_list;
        tz_list = tz;
    }
    pthread_mutex_unlock(&tz_lock);
    return tz;
}

/* "+09:00" "+0900" "-05" "+9" -> seconds east. Whole string must match. */
static bool parse_fixed_offset(const char *s, int32_t *off)
{
    int sign, h = 0, m = 0, nd = 0;

    if (*s != '+' && *s != '-') {
        return false;
    }
    sign = *s++ == '-' ? -1 : 1;
    while (isdigit((unsigned char)*s) && nd < 4) {
        h = h * 10 + (*s++ - '0');
        nd++;
    }
    if (nd == 0) {
        return false;
    }
    if (nd == 4 || nd == 3) {
        m = h % 100;
        h /= 100;
    } else if (*s == ':') {
        s++;
        if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1])) {
            return false;
        }
        m = (s[0] - '0') * 10 + (s[1] - '0');
        s += 2;
    }
    if (*s != '\0' || h > 24 || m > 59) {
        return false;
    }
    *off = sign * (h * 3600 + m * 60);
    return true;
}

static int zone_init(struct zone *z, const char *name)
{
    z->tz = NULL;
    z->fixed = 0;
    if (name == NULL || *name == '\0' || strcasecmp(name, "localtime") == 0 ||
        strcasecmp(name, "local") == 0) {
        z->kind = TZK_LOCAL;
        tzset();
        return LS_OK;
    }
    if (strcasecmp(name, "UTC") == 0 || strcasecmp(name, "GMT") == 0 || strcmp(name, "Z") == 0 ||
        strcmp(name, "Etc/UTC") == 0 || strcmp(name, "UCT") == 0 || strcmp(name, "Etc/GMT") == 0) {
        z->kind = TZK_UTC;
        return LS_OK;
    }
    if (parse_fixed_offset(name, &z->fixed)) {
        z->kind = TZK_FIXED;
        return LS_OK;
    }
    z->tz = tzdata_get(name);
    if (z->tz == NULL) {
        return LS_ERROR;
    }
    z->kind = TZK_NAMED;
    return LS_OK;
}

/* UTC offset (seconds east) of the zone at UTC instant t; abbr optional. */
static int32_t zone_offset(const struct zone *z, int64_t t, const char **abbr)
{
    static __thread char local_abbr[16];

    switch (z->kind) {
    case TZK_UTC:
        if (abbr) {
            *abbr = "UTC";
        }
        return 0;
    case TZK_FIXED:
        if (abbr) {
            *abbr = NULL;
        }
        return z->fixed;
    case TZK_NAMED: {
        const struct tz_type *ty = tzdata_type(z->tz, t);
        if (abbr) {
            *abbr = ty->abbr;
        }
        return ty->off;
    }
    case TZK_LOCAL:
    default: {
        struct tm tm;
        time_t tt = (time_t)t;
        if (localtime_r(&tt, &tm) == NULL) {
            return 0;
        }
        if (abbr) {
            snprintf(local_abbr, sizeof(local_abbr), "%s", tm.tm_zone ? tm.tm_zone : "");
            *abbr = local_abbr;
        }
        return (int32_t)tm.tm_gmtoff;
    }
    }
}

/*
 * Local wall-clock seconds (as if UTC) -> UTC instant. In an overlap (the
 * repeated hour when DST ends) the earlier instant wins; in a gap (the
 * skipped hour) the time is read with the offset in force before the gap,
 * as mktime does (02:30 that does not exist becomes 03:30).
 */
static int64_t zone_local_to_utc(const struct zone *z, int64_t local)
{
    int32_t o1, o2;
    int64_t c1, c2;
    bool ok1, ok2;

    if (z->kind == TZK_UTC) {
        return local;
    }
    if (z->kind == TZK_FIXED) {
        return local - z->fixed;
    }
    o1 = zone_offset(z, local, NULL);
    c1 = local - o1;
    o2 = zone_offset(z, c1, NULL);
    c2 = local - o2;
    ok1 = zone_offset(z, c1, NULL) == o1;
    ok2 = zone_offset(z, c2, NULL) == o2;
    if (ok1 && ok2) {
        return c1 < c2 ? c1 : c2;
    }
    if (ok1) {
        return c1;
    }
    if (ok2) {
        return c2;
    }
    return o1 < o2 ? c1 : c2;
}

int ls_tz_offset(const char *zone, int64_t t, int *offset)
{
    struct zone z;

    if (zone_init(&z, zone) != LS_OK) {
        return LS_ERROR;
    }
    *offset = zone_offset(&z, t, NULL);
    return LS_OK;
}

/* ---- compiled formats ---- */

enum step_op {
    ST_LIT,        /* exact bytes */
    ST_WS,         /* any run of whitespace (also none) */
    ST_YEAR,       /* %Y */
    ST_YEAR2,      /* %y */
    ST_CENTURY,    /* %C */
    ST_MON,        /* %m */
    ST_DAY,        /* %d %e */
    ST_HOUR,       /* %H %k */
    ST_HOUR12,     /* %I %l */
    ST_MIN,        /* %M */
    ST_SEC,        /* %S */
    ST_YDAY,       /* %j */
    ST_WDAYNUM,    /* %u %w (read, ignored) */
    ST_MONNAME,    /* %b %B %h */
    ST_WDAYNAME,   /* %a %A (read, ignored) */
    ST_AMPM,       /* %p %P */
    ST_ZONE,       /* %z %Z */
    ST_FRAC,       /* %N %L %3N ... */
    ST_EPOCH,      /* %s */
    ST_ISO8601,    /* fluentd's %iso8601 */
    ST_FLEX,       /* no format: Time.parse-like */
};

struct step {
    enum step_op op;
    int width;             /* max digits (0 = default) */
    const char *lit;       /* ST_LIT: into tf->fmt */
    size_t lit_len;
};

struct frac_slot {
    size_t pos;
    int width;
};

struct ls_timefmt {
    char *fmt;             /* strftime source (NULL = ISO 8601 default) */
    struct zone zone;
    struct step *steps;
    size_t nsteps;
    bool has_date;         /* the format gives year/month/day itself */
    bool clf;              /* exactly "%d/%b/%Y:%H:%M:%S %z" (nginx, apache): fast path */

    /* parse cache: the epoch of (y, m, d, h) at offset (or in the zone) */
    bool pc_valid;
    bool pc_zoned;         /* offset came from the zone, not from the string */
    int64_t pc_year;
    int pc_mon, pc_day, pc_hour;
    int32_t pc_off;
    int64_t pc_base;

    /* last input string and its result (fluentd caches the last strings too) */
    char memo[48];
    size_t memo_len;            /* 0 = empty */
    struct ls_time memo_val;

    /* format cache: one rendered second, fraction digits patched per call */
    bool fc_valid;
    int64_t fc_sec;
    struct ls_buf fc;
    struct frac_slot fslots[4];
    int nfslots;
};

static const char *const mon_names[12] = {
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
};
static const char *const wday_names[7] = {
    "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
};

static void add_step(struct ls_timefmt *tf, size_t *cap, enum step_op op, int width,
                     const char *lit, size_t lit_len)
{
    struct step *st;

    if (op == ST_LIT && tf->nsteps > 0 && tf->steps[tf->nsteps - 1].op == ST_LIT &&
        tf->steps[tf->nsteps - 1].lit + tf->steps[tf->nsteps - 1].lit_len == lit) {
        tf->steps[tf->nsteps - 1].lit_len += lit_len;
        return;
    }
    if (op == ST_WS && tf->nsteps > 0 && tf->steps[tf->nsteps - 1].op == ST_WS) {
        return;
    }
    if (tf->nsteps == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        tf->steps = ls_realloc(tf->steps, *cap * sizeof(*tf->steps));
    }
    st = &tf->steps[tf->nsteps++];
    st->op = op;
    st->width = width;
    st->lit = lit;
    st->lit_len = lit_len;
}

/* Compile fmt into steps; expands %T %D %F %R recursively. */
static int compile(struct ls_timefmt *tf, size_t *cap, const char *f, int depth, char *err,
                   size_t errlen)
{
    static const char *const expand[][2] = {
        { "T", "%H:%M:%S" }, { "D", "%m/%d/%y" }, { "F", "%Y-%m-%d" }, { "R", "%H:%M" },
        { "r", "%I:%M:%S %p" }, { "c", "%a %b %e %H:%M:%S %Y" }, { "x", "%m/%d/%y" },
        { "X", "%H:%M:%S" }, { "v", "%e-%b-%Y" }, { "+", "%a %b %e %H:%M:%S %Z %Y" },
    };
    size_t i;

    while (*f) {
        int width = 0;
        char c;

        if (*f != '%') {
            if (isspace((unsigned char)*f)) {
                add_step(tf, cap, ST_WS, 0, NULL, 0);
            } else {
                add_step(tf, cap, ST_LIT, 0, f, 1);
            }
            f++;
            continue;
        }
        f++;
        while (*f == '-' || *f == '_' || *f == '0' || *f == '^' || *f == '#') {
            f++;
        }
        while (isdigit((unsigned char)*f)) {
            width = width * 10 + (*f++ - '0');
            if (width > 99) {
                width = 99;
            }
        }
        if (*f == ':') {
            while (*f == ':') {
                f++;
            }
            if (*f != 'z') {
                snprintf(err, errlen, "invalid time format '%s': ':' only before 'z'", tf->fmt);
                return LS_ERROR;
            }
        }
        if (*f == 'E' || *f == 'O') {
            f++;
        }
        c = *f;
        if (c == '\0') {
            snprintf(err, errlen, "invalid time format '%s': trailing '%%'", tf->fmt);
            return LS_ERROR;
        }
        f++;
        for (i = 0; i < LS_ARRAY_LEN(expand); i++) {
            if (expand[i][0][0] == c) {
                break;
            }
        }
        if (i < LS_ARRAY_LEN(expand)) {
            if (depth > 2 || compile(tf, cap, expand[i][1], depth + 1, err, errlen) != LS_OK) {
                return LS_ERROR;
            }
            continue;
        }
        switch (c) {
        case 'Y': add_step(tf, cap, ST_YEAR, width, NULL, 0); tf->has_date = true; break;
        case 'y': add_step(tf, cap, ST_YEAR2, 2, NULL, 0); tf->has_date = true; break;
        case 'C': add_step(tf, cap, ST_CENTURY, 2, NULL, 0); break;
        case 'm': add_step(tf, cap, ST_MON, 2, NULL, 0); break;
        case 'd': case 'e': add_step(tf, cap, ST_DAY, 2, NULL, 0); break;
        case 'H': case 'k': add_step(tf, cap, ST_HOUR, 2, NULL, 0); break;
        case 'I': case 'l': add_step(tf, cap, ST_HOUR12, 2, NULL, 0); break;
        case 'M': add_step(tf, cap, ST_MIN, 2, NULL, 0); break;
        case 'S': add_step(tf, cap, ST_SEC, 2, NULL, 0); break;
        case 'j': add_step(tf, cap, ST_YDAY, 3, NULL, 0); break;
        case 'u': case 'w': add_step(tf, cap, ST_WDAYNUM, 1, NULL, 0); break;
        case 'b': case 'B': case 'h': add_step(tf, cap, ST_MONNAME, 0, NULL, 0); break;
        case 'a': case 'A': add_step(tf, cap, ST_WDAYNAME, 0, NULL, 0); break;
        case 'p': case 'P': add_step(tf, cap, ST_AMPM, 0, NULL, 0); break;
        case 'z': case 'Z': add_step(tf, cap, ST_ZONE, 0, NULL, 0); break;
        case 'N': add_step(tf, cap, ST_FRAC, width, NULL, 0); break;
        case 'L': add_step(tf, cap, ST_FRAC, width, NULL, 0); break;
        case 's': add_step(tf, cap, ST_EPOCH, 0, NULL, 0); break;
        case 'n': case 't': add_step(tf, cap, ST_WS, 0, NULL, 0); break;
        case '%': add_step(tf, cap, ST_LIT, 0, f - 1, 1); break;
        default:
            snprintf(err, errlen, "invalid time format '%s': unsupported conversion '%%%c'",
                     tf->fmt, c);
            return LS_ERROR;
        }
    }
    return LS_OK;
}

struct ls_timefmt *ls_timefmt_create(const char *fmt, const char *zone, char *err, size_t errlen)
{
    struct ls_timefmt *tf = ls_calloc(1, sizeof(*tf));
    size_t cap = 0;

    if (zone_init(&tf->zone, zone) != LS_OK) {
        snprintf(err, errlen, "invalid timezone '%s' (use UTC, localtime, +09:00 or a name like "
                 "Asia/Tokyo)", zone);
        ls_free(tf);
        return NULL;
    }
    ls_buf_init(&tf->fc, 4096);
    if (fmt == NULL || *fmt == '\0') {
        add_step(tf, &cap, ST_FLEX, 0, NULL, 0);
        tf->has_date = true;
        return tf;
    }
    tf->fmt = ls_strdup(fmt);
    if (strcmp(fmt, "%iso8601") == 0) {
        add_step(tf, &cap, ST_ISO8601, 0, NULL, 0);
        tf->has_date = true;
        return tf;
    }
    if (compile(tf, &cap, tf->fmt, 0, err, errlen) != LS_OK) {
        ls_timefmt_destroy(tf);
        return NULL;
    }
    tf->clf = strcmp(fmt, "%d/%b/%Y:%H:%M:%S %z") == 0;
    if (tf->nsteps == 0) {
        add_step(tf, &cap, ST_LIT, 0, tf->fmt, 0);
    }
    return tf;
}

void ls_timefmt_destroy(struct ls_timefmt *tf)
{
    if (tf) {
        ls_free(tf->fmt);
        ls_free(tf->steps);
        ls_buf_release(&tf->fc);
        ls_free(tf);
    }
}

/* ---- parsing ---- */

struct tparts {
    int64_t year;
    int mon, day, hour, min, sec, yday;
    int32_t nsec;
    int32_t off;
    bool have_year, have_mon, have_day, have_yday, have_off, have_epoch, pm, have_ampm, century;
    int64_t epoch;
    int cent, year2;
};

/* Read 1..maxd digits (after optional spaces when allow_sp). Returns digits read. */
static inline int read_num(const char **pp, const char *end, int maxd, bool allow_sp, int *out)
{
    const char *p = *pp;
    int v = 0, n = 0;

    if (allow_sp) {
        while (p < end && *p == ' ') {
            p++;
        }
    }
    while (p < end && n < maxd && (unsigned)(*p - '0') < 10) {
        v = v * 10 + (*p - '0');
        p++;
        n++;
    }
    if (n == 0) {
        return 0;
    }
    *pp = p;
    *out = v;
    return n;
}

/*
 * Case-insensitive name match: the 3-letter form, or the full name. The
 * first three letters are folded and packed into one integer, so the
 * common case (an access log's "Nov") is one load and up to 12 compares.
 */
static int read_name(const char **pp, const char *end, const char *const *names, int count)
{
    const unsigned char *p = (const unsigned char *)*pp;
    uint32_t key;
    int i;

    if (end - *pp < 3) {
        return -1;
    }
    key = (uint32_t)(p[0] | 0x20) << 16 | (uint32_t)(p[1] | 0x20) << 8 | (uint32_t)(p[2] | 0x20);
    for (i = 0; i < count; i++) {
        const unsigned char *n = (const unsigned char *)names[i];
        uint32_t nk = (uint32_t)(n[0] | 0x20) << 16 | (uint32_t)n[1] << 8 | n[2];
        if (nk == key) {
            size_t full = strlen(names[i]);
            if ((size_t)(end - *pp) > 3 && isalpha(p[3]) && (size_t)(end - *pp) >= full &&
                strncasecmp(*pp + 3, names[i] + 3, full - 3) == 0) {
                *pp += full;
            } else {
                *pp += 3;
            }
            return i;
        }
    }
    return -1;
}

/* %z: Z, UTC, GMT, UT, +HH, +HHMM, +HH:MM, +HH:MM:SS, also "GMT+9". */
static bool read_zone(const char **pp, const char *end, int32_t *off)
{
    const char *p = *pp;
    int sign, h = 0, m = 0, s = 0, nd;

    if (p < end && (*p == 'Z' || *p == 'z')) {
        *off = 0;
        *pp = p + 1;
        return true;
    }
    if (p < end && (*p == '+' || *p == '-')) {
        goto numeric;
    }
    if (end - p >= 3 && (strncasecmp(p, "UTC", 3) == 0 || strncasecmp(p, "GMT", 3) == 0)) {
        p += 3;
        if (p == end || (*p != '+' && *p != '-')) {
            *off = 0;
            *pp = p;
            return true;
        }
    } else if (end - p >= 2 && strncasecmp(p, "UT", 2) == 0) {
        *off = 0;
        *pp = p + 2;
        return true;
    }
    if (p >= end || (*p != '+' && *p != '-')) {
        return false;
    }
numeric:
    sign = *p++ == '-' ? -1 : 1;
    nd = read_num(&p, end, 2, false, &h);
    if (nd == 0) {
        return false;
    }
    if (p < end && *p == ':') {
        p++;
        if (read_num(&p, end, 2, false, &m) != 2) {
            return false;
        }
        if (p < end && *p == ':') {
            p++;
            if (read_num(&p, end, 2, false, &s) != 2) {
                return false;
            }
        }
    } else if (nd == 2 && read_num(&p, end, 2, false, &m) == 1) {
        return false;
    }
    if (h > 24 || m > 59 || s > 59) {
        return false;
    }
    *off = sign * (h * 3600 + m * 60 + s);
    *pp = p;
    return true;
}

static bool read_frac(const char **pp, const char *end, int maxd, int32_t *nsec)
{
    const char *p = *pp;
    int32_t v = 0;
    int n = 0;

    if (maxd <= 0) {
        maxd = 1 << 30;
    }
    while (p < end && n < maxd && (unsigned)(*p - '0') < 10) {
        if (n < 9) {
            v = v * 10 + (*p - '0');
        }
        p++;
        n++;
    }
    if (n == 0) {
        return false;
    }
    for (; n < 9; n++) {
        v *= 10;
    }
    *nsec = v;
    *pp = p;
    return true;
}

/* HH:MM[:SS[.frac]] */
static bool read_clock(const char **pp, const char *end, struct tparts *tp)
{
    const char *p = *pp;

    if (read_num(&p, end, 2, false, &tp->hour) == 0 || p >= end || *p != ':') {
        return false;
    }
    p++;
    if (read_num(&p, end, 2, false, &tp->min) != 2) {
        return false;
    }
    if (p < end && *p == ':') {
        p++;
        if (read_num(&p, end, 2, false, &tp->sec) != 2) {
            return false;
        }
        if (p < end && (*p == '.' || *p == ',') && p + 1 < end &&
            (unsigned)(p[1] - '0') < 10) {
            p++;
            read_frac(&p, end, 0, &tp->nsec);
        }
    }
    *pp = p;
    return true;
}

static void skip_ws(const char **pp, const char *end)
{
    while (*pp < end && isspace((unsigned char)**pp)) {
        (*pp)++;
    }
}

/* Optional trailing zone and/or year after a clock (flexible forms). */
static bool read_flex_tail(const char **pp, const char *end, struct tparts *tp)
{
    const char *p = *pp;

    for (;;) {
        const char *q = p;
        int y;
        skip_ws(&q, end);
        if (q == end) {
            break;
        }
        if (!tp->have_off && read_zone(&q, end, &tp->off)) {
            tp->have_off = true;
            p = q;
            continue;
        }
        if (!tp->have_year && read_num(&q, end, 4, false, &y) == 4) {
            tp->year = y;
            tp->have_year = true;
            p = q;
            continue;
        }
        break;
    }
    skip_ws(&p, end);
    *pp = p;
    return p == end;
}

/* ISO 8601: YYYY-MM-DD[(T| )HH:MM[:SS[.f]][zone]], also basic YYYYMMDDTHHMMSS. */
static bool parse_iso(const char **pp, const char *end, struct tparts *tp, bool allow_tail)
{
    const char *p = *pp;
    int y, v;

    if (read_num(&p, end, 4, false, &y) != 4) {
        return false;
    }
    tp->year = y;
    tp->have_year = tp->have_mon = tp->have_day = true;
    if (p < end && (*p == '-' || *p == '/')) {
        char sep = *p++;
        if (read_num(&p, end, 2, false, &tp->mon) == 0 || p >= end || *p++ != sep ||
            read_num(&p, end, 2, false, &tp->day) == 0) {
            return false;
        }
    } else {
        if (read_num(&p, end, 2, false, &tp->mon) != 2 || read_num(&p, end, 2, false, &tp->day) != 2) {
            return false;
        }
        if (p < end && (*p == 'T' || *p == 't')) {
            p++;
            if (read_num(&p, end, 2, false, &tp->hour) != 2 ||
                read_num(&p, end, 2, false, &tp->min) != 2) {
                return false;
            }
            if (read_num(&p, end, 2, false, &v) == 2) {
                tp->sec = v;
                if (p < end && (*p == '.' || *p == ',')) {
                    p++;
                    if (!read_frac(&p, end, 0, &tp->nsec)) {
                        return false;
                    }
                }
            }
            goto zone;
        }
        goto done;
    }
    if (p < end && (*p == 'T' || *p == 't' || *p == ' ')) {
        const char *q = p + 1;
        skip_ws(&q, end);
        if (read_clock(&q, end, tp)) {
            p = q;
        } else if (*p != ' ') {
            return false;
        }
    }
zone:
    if (p < end) {
        const char *q = p;
        if (allow_tail) {
            skip_ws(&q, end);
        }
        if (read_zone(&q, end, &tp->off)) {
            tp->have_off = true;
            p = q;
        }
    }
done:
    *pp = p;
    return true;
}

/* Time.parse-like: the forms real logs use. */
static bool parse_flex(const char **pp, const char *end, struct tparts *tp)
{
    const char *p = *pp;
    const char *q;
    int v;

    skip_ws(&p, end);
    /* optional weekday name and comma */
    q = p;
    if (read_name(&q, end, wday_names, 7) >= 0 && (q == end || !isalpha((unsigned char)*q))) {
        p = q;
        if (p < end && *p == ',') {
            p++;
        }
        skip_ws(&p, end);
    }
    if (end - p >= 5 && isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1]) &&
        isdigit((unsigned char)p[2]) && isdigit((unsigned char)p[3])) {
        if (!parse_iso(&p, end, tp, true)) {
            return false;
        }
        *pp = p;
        return read_flex_tail(pp, end, tp);
    }
    if (p < end && isdigit((unsigned char)*p)) {
        /* 21/Nov/2026:12:00:00 +0900, 21 Nov 2026 12:00:00 +0000, 21-Nov-2026 ... */
        char sep;
        read_num(&p, end, 2, false, &tp->day);
        if (p >= end || (*p != '/' && *p != ' ' && *p != '-')) {
            return false;
        }
        sep = *p++;
        if ((tp->mon = read_name(&p, end, mon_names, 12) + 1) == 0) {
            return false;
        }
        if (p >= end || (*p != sep && !(sep == ' ' && *p == ' '))) {
            return false;
        }
        p++;
        if (read_num(&p, end, 4, false, &v) < 2) {
            return false;
        }
        tp->year = v < 100 ? (v < 69 ? 2000 + v : 1900 + v) : v;
        tp->have_year = tp->have_mon = tp->have_day = true;
        if (p < end && (*p == ':' || *p == ' ')) {
            q = p + 1;
            skip_ws(&q, end);
            if (read_clock(&q, end, tp)) {
                p = q;
            }
        }
        *pp = p;
        return read_flex_tail(pp, end, tp);
    }
    /* Nov 21 12:00:00 [2026] (ctime, syslog, apache_error) */
    if ((tp->mon = read_name(&p, end, mon_names, 12) + 1) == 0) {
        return false;
    }
    tp->have_mon = true;
    skip_ws(&p, end);
    if (read_num(&p, end, 2, false, &tp->day) == 0) {
        return false;
    }
    tp->have_day = true;
    if (p < end && *p == ',') {
        p++;
    }
    skip_ws(&p, end);
    q = p;
    if (read_num(&q, end, 4, false, &v) == 4 && (q == end || *q == ' ')) {
        tp->year = v;
        tp->have_year = true;
        p = q;
        skip_ws(&p, end);
    }
    if (p < end && !read_clock(&p, end, tp)) {
        return false;
    }
    *pp = p;
    return read_flex_tail(pp, end, tp);
}

static int64_t current_year_in(struct ls_timefmt *tf, int *mon, int *day)
{
    int64_t now, y;
    int32_t ns;
    int m, d;

    ls_wall_now(&now, &ns);
    now += zone_offset(&tf->zone, now, NULL);
    civil_from_days(floor_div(now, 86400), &y, &m, &d);
    if (mon) {
        *mon = m;
    }
    if (day) {
        *day = d;
    }
    return y;
}

static inline int dig2(const char *s)
{
    unsigned a = (unsigned)(s[0] - '0'), b = (unsigned)(s[1] - '0');
    return a < 10 && b < 10 ? (int)(a * 10 + b) : -1;
}

/*
 * "21/Nov/2026:12:00:00 +0900" at fixed positions, the access-log case.
 * Returns false for anything unusual (one-digit day, "Z", other lengths),
 * which then takes the general path; a hit reuses the hour cache.
 */
static bool parse_clf(struct ls_timefmt *tf, const char *s, struct ls_time *out)
{
    const char *mp = s + 3;
    int d = dig2(s), y1 = dig2(s + 7), y2 = dig2(s + 9), h = dig2(s + 12), mi = dig2(s + 15);
    int se = dig2(s + 18), oh = dig2(s + 22), om = dig2(s + 24), m;
    int32_t off;
    int64_t y, base;

    if ((d | y1 | y2 | h | mi | se | oh | om) < 0 || s[2] != '/' || s[6] != '/' || s[11] != ':' ||
        s[14] != ':' || s[17] != ':' || s[20] != ' ' || (s[21] != '+' && s[21] != '-')) {
        return false;
    }
    m = read_name(&mp, s + 6, mon_names, 12) + 1;
    if (m == 0 || mp != s + 6 || h > 23 || mi > 59 || se > 60 || d < 1 || oh > 24 || om > 59) {
        return false;
    }
    y = y1 * 100 + y2;
    off = (oh * 3600 + om * 60) * (s[21] == '-' ? -1 : 1);
    if (tf->pc_valid && !tf->pc_zoned && tf->pc_off == off && tf->pc_hour == h &&
        tf->pc_day == d && tf->pc_mon == m && tf->pc_year == y) {
        base = tf->pc_base;
    } else {
        /* 29/Feb/2023 is 1 Mar, as fluentd's strptime and Ruby's Time make it (day <= 31) */
        if (d > 31) {
            return false;
        }
        base = ls_timegm((int)y, m, d, h, 0, 0) - off;
        tf->pc_valid = true;
        tf->pc_zoned = false;
        tf->pc_year = y;
        tf->pc_mon = m;
        tf->pc_day = d;
        tf->pc_hour = h;
        tf->pc_off = off;
        tf->pc_base = base;
    }
    out->sec = base + mi * 60 + se;
    out->nsec = 0;
    memcpy(tf->memo, s, 26);
    tf->memo_len = 26;
    tf->memo_val = *out;
    return true;
}

int ls_timefmt_parse(struct ls_timefmt *tf, const char *s, size_t len, struct ls_time *out)
{
    const char *p = s, *end = s + len;
    struct tparts tp;
    size_t i;
    int v;
    int64_t base;

    if (len == tf->memo_len && len > 0 && memcmp(s, tf->memo, len) == 0) {
        *out = tf->memo_val;
        return LS_OK;
    }
    if (tf->clf && len == 26 && parse_clf(tf, s, out)) {
        return LS_OK;
    }
    memset(&tp, 0, sizeof(tp));
    tp.mon = 1;
    tp.day = 1;
    for (i = 0; i < tf->nsteps; i++) {
        const struct step *st = &tf->steps[i];
        switch (st->op) {
        case ST_LIT:
            if ((size_t)(end - p) < st->lit_len || memcmp(p, st->lit, st->lit_len) != 0) {
                return LS_ERROR;
            }
            p += st->lit_len;
            break;
        case ST_WS:
            while (p < end && isspace((unsigned char)*p)) {
                p++;
            }
            break;
        case ST_YEAR: {
            int sign = 1;
            if (p < end && (*p == '-' || *p == '+')) {
                sign = *p++ == '-' ? -1 : 1;
            }
            if (read_num(&p, end, st->width > 0 ? st->width : 4, false, &v) == 0) {
                return LS_ERROR;
            }
            tp.year = sign * v;
            tp.have_year = true;
            break;
        }
        case ST_YEAR2:
            if (read_num(&p, end, 2, false, &v) == 0) {
                return LS_ERROR;
            }
            tp.year2 = v;
            tp.year = v < 69 ? 2000 + v : 1900 + v;
            tp.have_year = true;
            break;
        case ST_CENTURY:
            if (read_num(&p, end, 2, false, &tp.cent) == 0) {
                return LS_ERROR;
            }
            tp.century = true;
            break;
        case ST_MON:
            if (read_num(&p, end, 2, true, &tp.mon) == 0) {
                return LS_ERROR;
            }
            tp.have_mon = true;
            break;
        case ST_DAY:
            if (read_num(&p, end, 2, true, &tp.day) == 0) {
                return LS_ERROR;
            }
            tp.have_day = true;
            break;
        case ST_HOUR:
        case ST_HOUR12:
            if (read_num(&p, end, 2, true, &tp.hour) == 0) {
                return LS_ERROR;
            }
            if (st->op == ST_HOUR12 && (tp.hour < 1 || tp.hour > 12)) {
                return LS_ERROR;
            }
            break;
        case ST_MIN:
            if (read_num(&p, end, 2, true, &tp.min) == 0) {
                return LS_ERROR;
            }
            break;
        case ST_SEC:
            if (read_num(&p, end, 2, true, &tp.sec) == 0) {
                return LS_ERROR;
            }
            break;
        case ST_YDAY:
            if (read_num(&p, end, 3, true, &tp.yday) == 0) {
                return LS_ERROR;
            }
            tp.have_yday = true;
            break;
        case ST_WDAYNUM:
            if (read_num(&p, end, 1, false, &v) == 0 || v > 7) {
                return LS_ERROR;
            }
            break;
        case ST_MONNAME:
            if ((v = read_name(&p, end, mon_names, 12)) < 0) {
                return LS_ERROR;
            }
            tp.mon = v + 1;
            tp.have_mon = true;
            break;
        case ST_WDAYNAME:
            if (read_name(&p, end, wday_names, 7) < 0) {
                return LS_ERROR;
            }
            break;
        case ST_AMPM:
            if (end - p < 2 || (p[1] != 'M' && p[1] != 'm')) {
                return LS_ERROR;
            }
            if (*p == 'P' || *p == 'p') {
                tp.pm = true;
            } else if (*p != 'A' && *p != 'a') {
                return LS_ERROR;
            }
            tp.have_ampm = true;
            p += 2;
            break;
        case ST_ZONE:
            if (!read_zone(&p, end, &tp.off)) {
                return LS_ERROR;
            }
            tp.have_off = true;
            break;
        case ST_FRAC:
            if (!read_frac(&p, end, st->width, &tp.nsec)) {
                return LS_ERROR;
            }
            break;
        case ST_EPOCH: {
            int64_t e = 0;
            int sign = 1, n = 0;
            if (p < end && *p == '-') {
                sign = -1;
                p++;
            }
            while (p < end && (unsigned)(*p - '0') < 10 && n < 18) {
                e = e * 10 + (*p++ - '0');
                n++;
            }
            if (n == 0) {
                return LS_ERROR;
            }
            tp.epoch = sign * e;
            tp.have_epoch = true;
            break;
        }
        case ST_ISO8601:
            if (!parse_iso(&p, end, &tp, false)) {
                return LS_ERROR;
            }
            break;
        case ST_FLEX:
            if (!parse_flex(&p, end, &tp)) {
                return LS_ERROR;
            }
            break;
        }
    }
    if (p != end) {
        return LS_ERROR;
    }
    if (tp.have_epoch) {
        out->sec = tp.epoch;
        out->nsec = tp.nsec;
        return LS_OK;
    }
    if (tp.have_ampm) {
        tp.hour = tp.hour % 12 + (tp.pm ? 12 : 0);
    }
    if (tp.century) {
        tp.year = (int64_t)tp.cent * 100 + (tp.have_year && tf->has_date ? tp.year2 : 0);
        tp.have_year = true;
    }
    /* ranges; the day-of-month check happens at cache misses (a hit has the same y/m/d) */
    if (tp.hour > 24 || tp.min > 59 || tp.sec > 60 || tp.mon < 1 || tp.mon > 12 || tp.day < 1 ||
        (tp.hour == 24 && (tp.min != 0 || tp.sec != 0))) {
        return LS_ERROR;
    }
    if (ls_unlikely(!tp.have_year)) {
        int cm, cd;
        tp.year = current_year_in(tf, &cm, &cd);
        if (!tp.have_mon && !tp.have_day && !tp.have_yday) {
            tp.mon = cm;
            tp.day = cd;
        }
    }
    if (ls_unlikely(tp.have_yday)) {
        int m = 1, d = tp.yday;
        if (d < 1 || d > (is_leap(tp.year) ? 366 : 365)) {
            return LS_ERROR;
        }
        while (d > days_in_month(tp.year, m)) {
            d -= days_in_month(tp.year, m);
            m++;
        }
        tp.mon = m;
        tp.day = d;
    }
    if (ls_likely(tf->pc_valid && tp.year == tf->pc_year && tp.mon == tf->pc_mon &&
                  tp.day == tf->pc_day && tp.hour == tf->pc_hour &&
                  (tp.have_off ? (!tf->pc_zoned && tp.off == tf->pc_off) : tf->pc_zoned))) {
        base = tf->pc_base;
    } else {
        int64_t local;
        /* a day past the month's end rolls over, as in fluentd (strptime gem, Ruby's Time) */
        if (tp.day > 31 || tp.year < -100000 || tp.year > 100000) {
            return LS_ERROR;
        }
        local = ls_timegm((int)tp.year, tp.mon, tp.day, tp.hour, 0, 0);
        if (tp.have_off) {
            base = local - tp.off;
        } else {
            base = zone_local_to_utc(&tf->zone, local);
        }
        tf->pc_valid = true;
        tf->pc_zoned = !tp.have_off;
        tf->pc_year = tp.year;
        tf->pc_mon = tp.mon;
        tf->pc_day = tp.day;
        tf->pc_hour = tp.hour;
        tf->pc_off = tp.off;
        tf->pc_base = base;
    }
    out->sec = base + tp.min * 60 + tp.sec;
    out->nsec = tp.nsec;
    /* a result that depended on today's date must not be replayed later */
    if (len > 0 && len <= sizeof(tf->memo) && tp.have_year) {
        memcpy(tf->memo, s, len);
        tf->memo_len = len;
        tf->memo_val = *out;
    }
    return LS_OK;
}

/* ---- formatting ---- */

static void put_num(struct ls_buf *b, int64_t v, int width, char pad)
{
    char tmp[24];
    int n = 0;
    bool neg = v < 0;
    uint64_t u = neg ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u && n < 20);
    if (neg) {
        ls_buf_putc(b, '-');
        width--;
    }
    if (pad) {
        while (width-- > n) {
            ls_buf_putc(b, pad);
        }
    }
    while (n > 0) {
        ls_buf_putc(b, tmp[--n]);
    }
}

static void put_offset(struct ls_buf *b, int32_t off, int colons)
{
    int32_t a = off < 0 ? -off : off;

    ls_buf_putc(b, off < 0 ? '-' : '+');
    put_num(b, a / 3600, 2, '0');
    if (colons >= 1) {
        ls_buf_putc(b, ':');
    }
    put_num(b, a / 60 % 60, 2, '0');
    if (colons >= 2) {
        ls_buf_putc(b, ':');
        put_num(b, a % 60, 2, '0');
    }
}

/* Render second sec into tf->fc; fraction digits are zeros, their places remembered. */
static int render_second(struct ls_timefmt *tf, int64_t sec)
{
    const char *abbr = NULL;
    int32_t off = zone_offset(&tf->zone, sec, &abbr);
    int64_t local = sec + off;
    int64_t days = floor_div(local, 86400);
    int64_t sod = local - days * 86400;
    int64_t y;
    int m, d, hour = (int)(sod / 3600), min = (int)(sod / 60 % 60), s = (int)(sod % 60);
    int wday = (int)((days % 7 + 11) % 7);
    int yday;
    const char *f = tf->fmt ? tf->fmt : "%Y-%m-%dT%H:%M:%S%:z";
    struct ls_buf *b = &tf->fc;

    if (tf->fmt && strcmp(tf->fmt, "%iso8601") == 0) {
        f = "%Y-%m-%dT%H:%M:%S%:z";
    }
    civil_from_days(days, &y, &m, &d);
    yday = (int)(days - days_from_civil(y, 1, 1)) + 1;
    ls_buf_reset(b);
    tf->nfslots = 0;
    while (*f) {
        char pad = '0', c;
        int width = -1, colons = 0;
        bool upper = false;
        if (*f != '%') {
            ls_buf_putc(b, *f++);
            continue;
        }
        f++;
        for (;; f++) {
            if (*f == '-') {
                pad = 0;
            } else if (*f == '_') {
                pad = ' ';
            } else if (*f == '0') {
                pad = '0';
            } else if (*f == '^') {
                upper = true;
            } else if (*f != '#') {
                break;
            }
        }
        if (isdigit((unsigned char)*f)) {
            width = 0;
            while (isdigit((unsigned char)*f)) {
                width = width * 10 + (*f++ - '0');
                if (width > 64) {
                    width = 64;
                }
            }
        }
        while (*f == ':') {
            colons++;
            f++;
        }
        if (*f == 'E' || *f == 'O') {
            f++;
        }
        c = *f;
        if (c == '\0') {
            ls_buf_putc(b, '%');
            break;
        }
        f++;
#define NUM(v, w) put_num(b, (v), width >= 0 ? width : (w), pad)
        switch (c) {
        case 'Y': NUM(y, 1); break;
        case 'C': NUM(floor_div(y, 100), 2); break;
        case 'y': NUM(((y % 100) + 100) % 100, 2); break;
        case 'm': NUM(m, 2); break;
        case 'd': NUM(d, 2); break;
        case 'e': put_num(b, d, width >= 0 ? width : 2, pad == '0' ? ' ' : pad); break;
        case 'j': NUM(yday, 3); break;
        case 'H': NUM(hour, 2); break;
        case 'k': put_num(b, hour, width >= 0 ? width : 2, pad == '0' ? ' ' : pad); break;
        case 'I': NUM(hour % 12 ? hour % 12 : 12, 2); break;
        case 'l': put_num(b, hour % 12 ? hour % 12 : 12, width >= 0 ? width : 2,
                          pad == '0' ? ' ' : pad); break;
        case 'M': NUM(min, 2); break;
        case 'S': NUM(s, 2); break;
        case 'u': NUM(wday ? wday : 7, 1); break;
        case 'w': NUM(wday, 1); break;
        case 's': NUM(sec, 1); break;
        case 'L':
        case 'N': {
            int w = width > 0 ? width : (c == 'L' ? 3 : 9);
            if (tf->nfslots < (int)LS_ARRAY_LEN(tf->fslots)) {
                tf->fslots[tf->nfslots].pos = b->len;
                tf->fslots[tf->nfslots].width = w;
                tf->nfslots++;
            }
            while (w-- > 0) {
                ls_buf_putc(b, '0');
            }
            break;
        }
        case 'b': case 'h': case 'B': case 'a': case 'A': {
            const char *name = (c == 'a' || c == 'A') ? wday_names[wday] : mon_names[m - 1];
            size_t n = (c == 'B' || c == 'A') ? strlen(name) : 3;
            size_t k;
            for (k = 0; k < n; k++) {
                ls_buf_putc(b, upper ? (char)toupper((unsigned char)name[k]) : name[k]);
            }
            break;
        }
        case 'p': ls_buf_append(b, hour < 12 ? "AM" : "PM", 2); break;
        case 'P': ls_buf_append(b, hour < 12 ? "am" : "pm", 2); break;
        case 'z': put_offset(b, off, colons); break;
        case 'Z':
            if (abbr && *abbr) {
                ls_buf_append(b, abbr, strlen(abbr));
            } else {
                put_offset(b, off, 1);
            }
            break;
        case 'T':
            NUM(hour, 2); ls_buf_putc(b, ':'); NUM(min, 2); ls_buf_putc(b, ':'); NUM(s, 2);
            break;
        case 'R': NUM(hour, 2); ls_buf_putc(b, ':'); NUM(min, 2); break;
        case 'F':
            put_num(b, y, 4, '0'); ls_buf_putc(b, '-'); put_num(b, m, 2, '0');
            ls_buf_putc(b, '-'); put_num(b, d, 2, '0');
            break;
        case 'D':
            put_num(b, m, 2, '0'); ls_buf_putc(b, '/'); put_num(b, d, 2, '0');
            ls_buf_putc(b, '/'); put_num(b, ((y % 100) + 100) % 100, 2, '0');
            break;
        case 'n': ls_buf_putc(b, '\n'); break;
        case 't': ls_buf_putc(b, '\t'); break;
        case '%': ls_buf_putc(b, '%'); break;
        default:
            ls_buf_putc(b, '%');
            ls_buf_putc(b, c);
            break;
        }
#undef NUM
    }
    tf->fc_valid = true;
    tf->fc_sec = sec;
    return LS_OK;
}

int ls_timefmt_format(struct ls_timefmt *tf, const struct ls_time *t, struct ls_buf *out)
{
    size_t start;
    int i;

    if (!tf->fc_valid || tf->fc_sec != t->sec) {
        render_second(tf, t->sec);
    }
    start = out->len;
    if (ls_buf_append(out, tf->fc.p, tf->fc.len) != LS_OK) {
        return LS_AGAIN;
    }
    for (i = 0; i < tf->nfslots; i++) {
        char *dst = out->p + start + tf->fslots[i].pos;
        int w = tf->fslots[i].width, k;
        uint32_t ns = (uint32_t)(t->nsec < 0 ? 0 : t->nsec % 1000000000);
        char digits[9];
        for (k = 8; k >= 0; k--) {
            digits[k] = (char)('0' + ns % 10);
            ns /= 10;
        }
        for (k = 0; k < w; k++) {
            dst[k] = k < 9 ? digits[k] : '0';
        }
    }
    return LS_OK;
}
