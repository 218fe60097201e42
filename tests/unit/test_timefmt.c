/*
 * test_timefmt.c - time parsing and formatting (agent/timefmt.c).
 *
 * Expected epochs are either constants computed independently (Python's
 * calendar.timegm) or cross-checked against glibc (timegm, mktime,
 * localtime_r) over many random instants, so the cache and the TZif reader
 * are tested against a second implementation, not against themselves.
 */
#include <check.h>

#include "timefmt.h"

static char err[256];

static struct ls_timefmt *mk(const char *fmt, const char *zone)
{
    struct ls_timefmt *tf = ls_timefmt_create(fmt, zone, err, sizeof(err));
    ck_assert_msg(tf != NULL, "create '%s' zone '%s': %s", fmt ? fmt : "(null)",
                  zone ? zone : "(null)", err);
    return tf;
}

static int64_t parse_ok(struct ls_timefmt *tf, const char *s, int32_t *nsec)
{
    struct ls_time t = { -1, -1 };
    int rc = ls_timefmt_parse(tf, s, strlen(s), &t);
    ck_assert_msg(rc == LS_OK, "parse '%s' failed", s);
    if (nsec) {
        *nsec = t.nsec;
    }
    return t.sec;
}

static void parse_bad(struct ls_timefmt *tf, const char *s)
{
    struct ls_time t;
    ck_assert_msg(ls_timefmt_parse(tf, s, strlen(s), &t) == LS_ERROR, "'%s' should not parse", s);
}

START_TEST(test_timegm_vs_glibc)
{
    unsigned seed = 12345;
    int i;

    ck_assert_int_eq(ls_timegm(2026, 11, 21, 12, 0, 0), 1795262400);
    ck_assert_int_eq(ls_timegm(2024, 2, 29, 0, 0, 0), 1709164800);
    ck_assert_int_eq(ls_timegm(1970, 1, 1, 0, 0, 0), 0);
    for (i = 0; i < 20000; i++) {
        struct tm tm;
        time_t t = (time_t)(rand_r(&seed) % 2000000000) * 3 - 2000000000;
        gmtime_r(&t, &tm);
        ck_assert_int_eq(ls_timegm(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                                   tm.tm_min, tm.tm_sec), (int64_t)t);
    }
}
END_TEST

START_TEST(test_nginx_format)
{
    struct ls_timefmt *tf = mk("%d/%b/%Y:%H:%M:%S %z", NULL);
    int64_t base = 1795262400;

    ck_assert_int_eq(parse_ok(tf, "21/Nov/2026:12:00:00 +0000", NULL), base);
    ck_assert_int_eq(parse_ok(tf, "21/Nov/2026:21:00:00 +0900", NULL), base);
    ck_assert_int_eq(parse_ok(tf, "21/Nov/2026:21:00:00 +09:00", NULL), base);
    ck_assert_int_eq(parse_ok(tf, "21/Nov/2026:05:00:00 -0700", NULL), base);
    ck_assert_int_eq(parse_ok(tf, "21/Nov/2026:12:34:56 +0000", NULL), base + 34 * 60 + 56);
    ck_assert_int_eq(parse_ok(tf, "21/nov/2026:12:00:00 Z", NULL), base);
    /* same hour, different offset: must not reuse the cached base */
    ck_assert_int_eq(parse_ok(tf, "21/Nov/2026:12:00:00 +0100", NULL), base - 3600);
    parse_bad(tf, "21/Nov/2026:12:00:00");
    parse_bad(tf, "21/Nov/2026:12:00:00 +0000 trailing");
    parse_bad(tf, "21/Foo/2026:12:00:00 +0000");
    parse_bad(tf, "");
    parse_bad(tf, "21/Nov/2026:12:60:00 +0000");
    parse_bad(tf, "21/Nov/2026:25:00:00 +0000");
    ck_assert_int_eq(parse_ok(tf, "31/Nov/2026:12:00:00 +0000", NULL), base + 10 * 86400);  /* 1 Dec */
    ls_timefmt_destroy(tf);
}
END_TEST

START_TEST(test_cache_boundaries)
{
    struct ls_timefmt *tf = mk("%d/%b/%Y:%H:%M:%S %z", NULL);
    static const char *const lines[] = {
        "31/Dec/2025:23:59:59 +0000", "01/Jan/2026:00:00:00 +0000", "01/Jan/2026:00:59:59 +0000",
        "01/Jan/2026:01:00:00 +0000", "28/Feb/2024:23:59:59 +0000", "29/Feb/2024:00:00:00 +0000",
        "01/Mar/2024:00:00:00 +0000", "28/Feb/2023:23:00:00 +0000", "01/Mar/2023:00:00:00 +0000",
        "29/Feb/2000:10:10:10 +0000", "31/Dec/1999:23:59:59 +0000", "15/Jun/2038:01:02:03 +0000",
    };
    size_t i;

    for (i = 0; i < LS_ARRAY_LEN(lines); i++) {
        struct tm tm;
        char *end;
        memset(&tm, 0, sizeof(tm));
        end = strptime(lines[i], "%d/%b/%Y:%H:%M:%S", &tm);
        ck_assert_ptr_nonnull(end);
        ck_assert_int_eq(parse_ok(tf, lines[i], NULL), (int64_t)timegm(&tm));
        /* twice: the second is a cache hit and must agree */
        ck_assert_int_eq(parse_ok(tf, lines[i], NULL), (int64_t)timegm(&tm));
    }
    /* a day past the month's end rolls over as in fluentd (its strptime, Ruby's Time), even
       right after a valid line of the same hour; day 0 and day 32 are refused */
    ck_assert_int_eq(parse_ok(tf, "28/Feb/2023:10:00:00 +0000", NULL), 1677578400);
    ck_assert_int_eq(parse_ok(tf, "29/Feb/2023:10:00:00 +0000", NULL), 1677664800);  /* 1 Mar */
    ck_assert_int_eq(parse_ok(tf, "31/Apr/2026:10:00:00 +0000", NULL), 1777629600);  /* 1 May */
    parse_bad(tf, "00/Jan/2026:10:00:00 +0000");
    parse_bad(tf, "32/Jan/2026:10:00:00 +0000");
    ls_timefmt_destroy(tf);
}
END_TEST

START_TEST(test_fractions)
{
    struct ls_timefmt *tf = mk("%Y-%m-%dT%H:%M:%S.%N%z", NULL);
    struct ls_timefmt *t3 = mk("%Y-%m-%d %H:%M:%S.%3N", "UTC");
    struct ls_timefmt *tl = mk("%Y-%m-%d %H:%M:%S.%L", "UTC");
    int32_t ns;

    ck_assert_int_eq(parse_ok(tf, "2026-11-21T12:00:00.123+00:00", &ns), 1795262400);
    ck_assert_int_eq(ns, 123000000);
    parse_ok(tf, "2026-11-21T12:00:00.123456789123Z", &ns);
    ck_assert_int_eq(ns, 123456789);
    parse_ok(tf, "2026-11-21T12:00:00.000000001Z", &ns);
    ck_assert_int_eq(ns, 1);
    parse_bad(tf, "2026-11-21T12:00:00.Z");
    ck_assert_int_eq(parse_ok(t3, "2026-11-21 12:00:00.987", &ns), 1795262400);
    ck_assert_int_eq(ns, 987000000);
    parse_bad(t3, "2026-11-21 12:00:00.9876");    /* %3N reads three digits, then trailing */
    parse_ok(tl, "2026-11-21 12:00:00.5", &ns);
    ck_assert_int_eq(ns, 500000000);
    ls_timefmt_destroy(tf);
    ls_timefmt_destroy(t3);
    ls_timefmt_destroy(tl);
}
END_TEST

START_TEST(test_zones)
{
    struct ls_timefmt *utc = mk("%Y-%m-%d %H:%M:%S", "UTC");
    struct ls_timefmt *tokyo = mk("%Y-%m-%d %H:%M:%S", "Asia/Tokyo");
    struct ls_timefmt *fixed = mk("%Y-%m-%d %H:%M:%S", "+09:00");
    struct ls_timefmt *ny = mk("%Y-%m-%d %H:%M:%S", "America/New_York");
    struct ls_timefmt *zoned = mk("%Y-%m-%d %H:%M:%S %z", "America/New_York");

    ck_assert_int_eq(parse_ok(utc, "2026-11-21 12:00:00", NULL), 1795262400);
    ck_assert_int_eq(parse_ok(tokyo, "2026-11-21 21:00:00", NULL), 1795262400);
    ck_assert_int_eq(parse_ok(fixed, "2026-11-21 21:00:00", NULL), 1795262400);
    /* New York around the 2026 spring-forward (Mar 8, 02:00 EST -> 03:00 EDT) */
    ck_assert_int_eq(parse_ok(ny, "2026-03-08 01:30:00", NULL), 1772951400);        /* EST */
    ck_assert_int_eq(parse_ok(ny, "2026-03-08 03:30:00", NULL), 1772951400 + 3600); /* EDT */
    ck_assert_int_eq(parse_ok(ny, "2026-03-08 01:59:59", NULL), 1772951400 + 1799);
    ck_assert_int_eq(parse_ok(ny, "2026-07-01 12:00:00", NULL), ls_timegm(2026, 7, 1, 16, 0, 0));
    ck_assert_int_eq(parse_ok(ny, "2026-11-21 07:00:00", NULL), 1795262400);
    /* fall back, Nov 1 2026: 00:30 EDT, 02:30 EST */
    ck_assert_int_eq(parse_ok(ny, "2026-11-01 00:30:00", NULL), ls_timegm(2026, 11, 1, 4, 30, 0));
    ck_assert_int_eq(parse_ok(ny, "2026-11-01 02:30:00", NULL), ls_timegm(2026, 11, 1, 7, 30, 0));
    /* an explicit offset wins over the zone */
    ck_assert_int_eq(parse_ok(zoned, "2026-11-21 12:00:00 +0000", NULL), 1795262400);
    parse_bad(zoned, "2026-11-21 07:00:00");
    ls_timefmt_destroy(utc);
    ls_timefmt_destroy(tokyo);
    ls_timefmt_destroy(fixed);
    ls_timefmt_destroy(ny);
    ls_timefmt_destroy(zoned);
    ck_assert_ptr_null(ls_timefmt_create("%Y", "Mars/Olympus", err, sizeof(err)));
    ck_assert_ptr_null(ls_timefmt_create("%Y", "../../etc/passwd", err, sizeof(err)));
    ck_assert_ptr_null(ls_timefmt_create("%Q", NULL, err, sizeof(err)));
}
END_TEST

/* The TZif reader (including the footer rule past 2037) against glibc for many instants. */
static void check_zone_vs_glibc(const char *zone)
{
    unsigned seed = 99;
    int i, off;

    setenv("TZ", zone, 1);
    tzset();
    for (i = 0; i < 5000; i++) {
        struct tm tm;
        time_t t = (time_t)((uint64_t)rand_r(&seed) * 2 % 4102444800u); /* 1970..2100 */
        localtime_r(&t, &tm);
        ck_assert_int_eq(ls_tz_offset(zone, (int64_t)t, &off), LS_OK);
        ck_assert_msg(off == tm.tm_gmtoff, "%s at %lld: %d vs glibc %ld", zone, (long long)t, off,
                      tm.tm_gmtoff);
    }
}

START_TEST(test_tzif_vs_glibc)
{
    int off;

    check_zone_vs_glibc("America/New_York");
    check_zone_vs_glibc("Europe/London");
    check_zone_vs_glibc("Australia/Sydney");
    check_zone_vs_glibc("Asia/Tokyo");
    ck_assert_int_eq(ls_tz_offset("America/New_York", ls_timegm(2100, 7, 1, 0, 0, 0), &off), LS_OK);
    ck_assert_int_eq(off, -4 * 3600);
    ck_assert_int_eq(ls_tz_offset("America/New_York", ls_timegm(2100, 1, 1, 0, 0, 0), &off), LS_OK);
    ck_assert_int_eq(off, -5 * 3600);
    ck_assert_int_eq(ls_tz_offset("+05:30", 0, &off), LS_OK);
    ck_assert_int_eq(off, 5 * 3600 + 1800);
    ck_assert_int_eq(ls_tz_offset("UTC", 0, &off), LS_OK);
    ck_assert_int_eq(off, 0);
    setenv("TZ", "UTC", 1);
    tzset();
}
END_TEST

START_TEST(test_localtime_vs_mktime)
{
    struct ls_timefmt *tf;
    unsigned seed = 7;
    int i;

    setenv("TZ", "America/New_York", 1);
    tzset();
    tf = mk("%Y-%m-%d %H:%M:%S", NULL);
    for (i = 0; i < 3000; i++) {
        struct tm tm;
        char s[64];
        time_t t = (time_t)(rand_r(&seed) % 2000000000);
        localtime_r(&t, &tm);
        if (tm.tm_isdst) {
            /* skip the repeated hour, which is ambiguous by nature */
            struct tm tm2;
            time_t t2 = t + 3600;
            localtime_r(&t2, &tm2);
            if (!tm2.tm_isdst) {
                continue;
            }
        }
        strftime(s, sizeof(s), "%Y-%m-%d %H:%M:%S", &tm);
        ck_assert_int_eq(parse_ok(tf, s, NULL), (int64_t)t);
    }
    ls_timefmt_destroy(tf);
    setenv("TZ", "UTC", 1);
    tzset();
}
END_TEST

START_TEST(test_flexible)
{
    struct ls_timefmt *tf = mk(NULL, "UTC");
    struct ls_timefmt *iso = mk("%iso8601", "UTC");
    int64_t b = 1795262400;
    int32_t ns;
    int64_t y2026 = ls_timegm(2026, 1, 1, 0, 0, 0);

    ck_assert_int_eq(parse_ok(tf, "2026-11-21T12:00:00.123Z", &ns), b);
    ck_assert_int_eq(ns, 123000000);
    ck_assert_int_eq(parse_ok(tf, "2026-11-21T21:00:00+09:00", NULL), b);
    ck_assert_int_eq(parse_ok(tf, "2026-11-21T21:00:00+0900", NULL), b);
    ck_assert_int_eq(parse_ok(tf, "2026-11-21 21:00:00 +0900", NULL), b);
    ck_assert_int_eq(parse_ok(tf, "2026-11-21 12:00:00", NULL), b);
    ck_assert_int_eq(parse_ok(tf, "2026/11/21 12:00:00", NULL), b);
    ck_assert_int_eq(parse_ok(tf, "20261121T120000Z", NULL), b);
    ck_assert_int_eq(parse_ok(tf, "2026-11-21", NULL), b - 12 * 3600);
    ck_assert_int_eq(parse_ok(tf, "Sat, 21 Nov 2026 12:00:00 +0000", NULL), b);
    ck_assert_int_eq(parse_ok(tf, "Sat, 21 Nov 2026 12:00:00 GMT", NULL), b);
    ck_assert_int_eq(parse_ok(tf, "Sat Nov 21 12:00:00 2026", NULL), b);
    ck_assert_int_eq(parse_ok(tf, "Nov 21 12:00:00.250 2026", &ns), b);
    ck_assert_int_eq(ns, 250000000);
    ck_assert_int_eq(parse_ok(tf, "21/Nov/2026:21:00:00 +0900", NULL), b);
    ck_assert_msg(parse_ok(tf, "Nov 21 12:00:00", NULL) >= y2026, "no year -> current year");
    parse_bad(tf, "garbage");
    parse_bad(tf, "2026-13-01T00:00:00Z");
    ck_assert_int_eq(parse_ok(tf, "2026-02-30T00:00:00Z", NULL), 1772409600);   /* 2 Mar */
    parse_bad(tf, "2026-11-21T12:00:00Z junk");
    parse_bad(tf, "");
    ck_assert_int_eq(parse_ok(iso, "2026-11-21T21:00:00+09:00", NULL), b);
    ck_assert_int_eq(parse_ok(iso, "2026-11-21T12:00:00.5Z", &ns), b);
    ck_assert_int_eq(ns, 500000000);
    parse_bad(iso, "Sat Nov 21 12:00:00 2026");
    ls_timefmt_destroy(tf);
    ls_timefmt_destroy(iso);
}
END_TEST

START_TEST(test_misc_conversions)
{
    struct ls_timefmt *sys = mk("%b %d %H:%M:%S", "UTC");
    struct ls_timefmt *ampm = mk("%Y-%m-%d %I:%M:%S %p", "UTC");
    struct ls_timefmt *epoch = mk("%s", "UTC");
    struct ls_timefmt *yday = mk("%Y %j %T", "UTC");
    struct ls_timefmt *mysql = mk("%y%m%d %k:%M:%S", "UTC");
    int64_t b = 1795262400;
    int64_t s;

    s = parse_ok(sys, "Nov  1 12:00:00", NULL);
    ck_assert_int_eq((s - 12 * 3600) % 86400, 0);
    ck_assert_int_eq(parse_ok(ampm, "2026-11-21 12:00:00 PM", NULL), b);
    ck_assert_int_eq(parse_ok(ampm, "2026-11-21 12:00:00 AM", NULL), b - 12 * 3600);
    ck_assert_int_eq(parse_ok(ampm, "2026-11-21 01:00:00 pm", NULL), b + 3600);
    ck_assert_int_eq(parse_ok(epoch, "1795262400", NULL), b);
    parse_bad(epoch, "17952624x");
    ck_assert_int_eq(parse_ok(yday, "2026 325 12:00:00", NULL), b);
    parse_bad(yday, "2026 366 12:00:00");
    ck_assert_int_eq(parse_ok(mysql, "261121 12:00:00", NULL), b);
    ck_assert_int_eq(parse_ok(mysql, "261121  2:00:00", NULL), b - 10 * 3600);
    ls_timefmt_destroy(sys);
    ls_timefmt_destroy(ampm);
    ls_timefmt_destroy(epoch);
    ls_timefmt_destroy(yday);
    ls_timefmt_destroy(mysql);
}
END_TEST

static void fmt_eq(struct ls_timefmt *tf, int64_t sec, int32_t nsec, const char *want)
{
    struct ls_buf b;
    struct ls_time t = { sec, nsec };

    ls_buf_init(&b, 0);
    ck_assert_int_eq(ls_timefmt_format(tf, &t, &b), LS_OK);
    ck_assert_msg(b.len == strlen(want) && memcmp(b.p, want, b.len) == 0, "got '%.*s' want '%s'",
                  (int)b.len, b.p, want);
    ls_buf_release(&b);
}

START_TEST(test_format)
{
    struct ls_timefmt *a = mk("%Y-%m-%dT%H:%M:%S.%3N%z", "UTC");
    struct ls_timefmt *tk = mk("%Y-%m-%dT%H:%M:%S.%N%:z %Z", "Asia/Tokyo");
    struct ls_timefmt *ny = mk("%a %b %e %-d %j %I%p %Z %s %L", "America/New_York");
    struct ls_timefmt *def = mk(NULL, "+09:00");
    struct ls_timefmt *slice = mk("%Y%m%d%H", "UTC");
    int64_t b = 1795262400;

    fmt_eq(a, b, 123456789, "2026-11-21T12:00:00.123+0000");
    fmt_eq(a, b, 5000000, "2026-11-21T12:00:00.005+0000");   /* same second: cache, new fraction */
    fmt_eq(a, b + 1, 0, "2026-11-21T12:00:01.000+0000");
    fmt_eq(tk, b, 1, "2026-11-21T21:00:00.000000001+09:00 JST");
    fmt_eq(ny, b, 42000000, "Sat Nov 21 21 325 07AM EST 1795262400 042");
    fmt_eq(ny, ls_timegm(2026, 7, 4, 16, 0, 0), 0, "Sat Jul  4 4 185 12PM EDT 1783180800 000");
    fmt_eq(def, b, 0, "2026-11-21T21:00:00+09:00");
    fmt_eq(slice, b, 0, "2026112112");
    fmt_eq(slice, -1, 0, "1969123123");
    ls_timefmt_destroy(a);
    ls_timefmt_destroy(tk);
    ls_timefmt_destroy(ny);
    ls_timefmt_destroy(def);
    ls_timefmt_destroy(slice);
}
END_TEST


/* The fixed-position access-log fast path agrees with the general step parser. */
START_TEST(test_clf_fast_path_vs_general)
{
    struct ls_timefmt *fast = mk("%d/%b/%Y:%H:%M:%S %z", NULL);
    struct ls_timefmt *gen = mk("%d/%b/%Y:%H:%M:%S%t%z", NULL);   /* same grammar, no fast path */
    static const char *const odd[] = {
        "21/Nov/2026:24:00:00 +0000", "1/Nov/2026:12:00:00 +0000", "21/nov/2026:12:00:00 +0000",
        "21/Nov/2026:12:00:60 +0000", "29/Feb/2023:12:00:00 +0000", "21/Nov/2026:12:00:00 -1230",
        "21/Xyz/2026:12:00:00 +0000", "21/Nov/2026:12:00:00 +2460", "21/Nov/2026:12:00:00 Z",
        "21/Nov/2026:12:0a:00 +0000", "00/Nov/2026:12:00:00 +0000",
    };
    unsigned seed = 11;
    size_t i;
    char buf[64];

    for (i = 0; i < 20000 + LS_ARRAY_LEN(odd); i++) {
        struct ls_time a = { 0, 0 }, b = { 0, 0 };
        int ra, rb;
        const char *s = buf;
        if (i < LS_ARRAY_LEN(odd)) {
            s = odd[i];
        } else {
            struct tm tm;
            time_t t = (time_t)(rand_r(&seed) % 4000000000u);
            int off = (rand_r(&seed) % 49 - 24) * 1800;
            time_t lt = t + off;
            gmtime_r(&lt, &tm);
            strftime(buf, 32, "%d/%b/%Y:%H:%M:%S", &tm);
            snprintf(buf + 20, sizeof(buf) - 20, " %c%02d%02d", off < 0 ? '-' : '+',
                     abs(off) / 3600, abs(off) / 60 % 60);
            ck_assert_int_eq(parse_ok(fast, buf, NULL), (int64_t)t);
        }
        ra = ls_timefmt_parse(fast, s, strlen(s), &a);
        rb = ls_timefmt_parse(gen, s, strlen(s), &b);
        ck_assert_msg(ra == rb && a.sec == b.sec && a.nsec == b.nsec, "'%s': %d/%lld vs %d/%lld", s,
                      ra, (long long)a.sec, rb, (long long)b.sec);
    }
    ls_timefmt_destroy(fast);
    ls_timefmt_destroy(gen);
}
END_TEST

/* Round trip: format then parse with the same format gives the same instant. */
START_TEST(test_roundtrip)
{
    static const char *const zones[] = { "UTC", "Asia/Tokyo", "America/New_York", "-03:30" };
    unsigned seed = 3;
    size_t z;
    int i;

    for (z = 0; z < LS_ARRAY_LEN(zones); z++) {
        struct ls_timefmt *tf = mk("%d/%b/%Y:%H:%M:%S.%6N %z", zones[z]);
        struct ls_buf b;
        ls_buf_init(&b, 0);
        for (i = 0; i < 5000; i++) {
            struct ls_time t = { (int64_t)(rand_r(&seed) % 2100000000), (rand_r(&seed) % 1000000) * 1000 };
            struct ls_time back;
            ls_buf_reset(&b);
            ck_assert_int_eq(ls_timefmt_format(tf, &t, &b), LS_OK);
            ck_assert_int_eq(ls_timefmt_parse(tf, b.p, b.len, &back), LS_OK);
            ck_assert_int_eq(back.sec, t.sec);
            ck_assert_int_eq(back.nsec, t.nsec);
        }
        ls_buf_release(&b);
        ls_timefmt_destroy(tf);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("timefmt");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    setenv("TZ", "UTC", 1);
    tzset();
    tcase_add_test(tc, test_timegm_vs_glibc);
    tcase_add_test(tc, test_nginx_format);
    tcase_add_test(tc, test_cache_boundaries);
    tcase_add_test(tc, test_fractions);
    tcase_add_test(tc, test_zones);
    tcase_add_test(tc, test_tzif_vs_glibc);
    tcase_add_test(tc, test_localtime_vs_mktime);
    tcase_add_test(tc, test_flexible);
    tcase_add_test(tc, test_misc_conversions);
    tcase_add_test(tc, test_format);
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_clf_fast_path_vs_general);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
