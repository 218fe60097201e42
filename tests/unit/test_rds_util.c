/*
 * test_rds_util.c - the pure helpers of the rds_slowlog input: state file
 * round trip and rejection of damaged files, TIME/epoch/int parsing as the
 * server prints them, user_host splitting, row fingerprints.
 */
#include <check.h>
#include <stdlib.h>

#include "../../plugins/in_rds_slowlog/rds.h"

START_TEST(state_roundtrip)
{
    struct rds_state a, b;
    char text[512];
    size_t n;

    memset(&a, 0, sizeof(a));
    snprintf(a.table, sizeof(a.table), "slow_log_backup");
    a.ident = 0xfedcba9876543210ULL;
    a.done = 123456789012ULL;
    a.last = 1;
    n = rds_state_format(&a, text, sizeof(text));
    ck_assert_uint_gt(n, 0);
    ck_assert_int_eq(rds_state_parse(text, n, &b), LS_OK);
    ck_assert_str_eq(b.table, "slow_log_backup");
    ck_assert(b.ident == a.ident && b.done == a.done && b.last == a.last);
}
END_TEST

START_TEST(state_rejects_damage)
{
    struct rds_state st;
    const char *nomagic = "table slow_log\nident 1\ndone 2\nlast 3\n";
    const char *bad = "# logship rds log state v1\ntable x\ndone -5\n";
    const char *junk = "# logship rds log state v1\ndone 12abc\n";
    const char *novalue = "# logship rds log state v1\ndone\n";

    ck_assert_int_eq(rds_state_parse(nomagic, strlen(nomagic), &st), LS_ERROR);
    ck_assert_int_eq(rds_state_parse(bad, strlen(bad), &st), LS_ERROR);
    ck_assert_int_eq(rds_state_parse(junk, strlen(junk), &st), LS_ERROR);
    ck_assert_int_eq(rds_state_parse(novalue, strlen(novalue), &st), LS_ERROR);
}
END_TEST

START_TEST(state_file_missing_is_empty)
{
    struct rds_state st;
    char path[] = "/tmp/test_rds_util.XXXXXX";
    int fd = mkstemp(path);

    ck_assert_int_ge(fd, 0);
    close(fd);
    unlink(path);
    ck_assert_int_eq(rds_state_load(path, &st), LS_OK);
    ck_assert(st.ident == 0 && st.done == 0);
    snprintf(st.table, sizeof(st.table), "slow_log");
    st.ident = 7;
    st.done = 9;
    ck_assert_int_eq(rds_state_save(path, &st), LS_OK);
    memset(&st, 0, sizeof(st));
    ck_assert_int_eq(rds_state_load(path, &st), LS_OK);
    ck_assert(st.ident == 7 && st.done == 9);
    unlink(path);
}
END_TEST

static double dur(const char *s)
{
    double d = -1;
    ck_assert_msg(rds_parse_duration(s, strlen(s), &d) == LS_OK, "%s", s);
    return d;
}

START_TEST(durations)
{
    double d;

    ck_assert_double_eq_tol(dur("00:00:00.000111"), 0.000111, 1e-9);
    ck_assert_double_eq_tol(dur("00:00:12.000215"), 12.000215, 1e-9);
    ck_assert_double_eq_tol(dur("01:02:03"), 3723.0, 1e-9);
    ck_assert_double_eq_tol(dur("838:59:59.000000"), 838 * 3600 + 59 * 60 + 59, 1e-6);
    ck_assert_double_eq_tol(dur("-00:00:01.5"), -1.5, 1e-9);
    ck_assert_int_eq(rds_parse_duration("", 0, &d), LS_ERROR);
    ck_assert_int_eq(rds_parse_duration("00:60:00", 8, &d), LS_ERROR);
    ck_assert_int_eq(rds_parse_duration("00:00:00.", 9, &d), LS_ERROR);
    ck_assert_int_eq(rds_parse_duration("12345:00:00", 11, &d), LS_ERROR);
    ck_assert_int_eq(rds_parse_duration("00:00:00x", 9, &d), LS_ERROR);
}
END_TEST

START_TEST(epochs_and_ints)
{
    int64_t sec, i;
    int32_t nsec;

    ck_assert_int_eq(rds_parse_epoch("1795264073.489156", 17, &sec, &nsec), LS_OK);
    ck_assert_int_eq(sec, 1795264073);
    ck_assert_int_eq(nsec, 489156000);
    ck_assert_int_eq(rds_parse_epoch("1400000000", 10, &sec, &nsec), LS_OK);
    ck_assert_int_eq(nsec, 0);
    ck_assert_int_eq(rds_parse_epoch("", 0, &sec, &nsec), LS_ERROR);
    ck_assert_int_eq(rds_parse_epoch("12a", 3, &sec, &nsec), LS_ERROR);
    ck_assert_int_eq(rds_parse_int("18446744073709551615", 20, &i), LS_ERROR);
    ck_assert_int_eq(rds_parse_int("9223372036854775807", 19, &i), LS_OK);
    ck_assert_int_eq(rds_parse_int("42", 2, &i), LS_OK);
    ck_assert_int_eq(i, 42);
}
END_TEST

static void split(const char *s, const char *u, const char *h, const char *ip)
{
    struct rds_slice a, b, c;

    ck_assert_int_eq(rds_split_user_host(s, strlen(s), &a, &b, &c), LS_OK);
    ck_assert_int_eq((int)a.len, (int)strlen(u));
    ck_assert(memcmp(a.p, u, a.len) == 0);
    ck_assert_msg(b.len == strlen(h) && memcmp(b.p, h, b.len) == 0, "host '%.*s' in %s",
                  (int)b.len, b.p, s);
    ck_assert_msg(c.len == strlen(ip) && memcmp(c.p, ip, c.len) == 0, "ip in %s", s);
}

START_TEST(user_host)
{
    struct rds_slice a, b, c;

    split("root[root] @ localhost []", "root", "localhost", "");
    split("rdsuser[rdsuser] @  [127.0.0.1]", "rdsuser", "", "127.0.0.1");
    split("app[app] @ web-1.example.com [10.0.0.5]", "app", "web-1.example.com", "10.0.0.5");
    split("[bob] @ h [1.2.3.4]", "bob", "h", "1.2.3.4");
    ck_assert_int_eq(rds_split_user_host("garbage", 7, &a, &b, &c), LS_DECLINED);
    ck_assert_int_eq(rds_split_user_host("u[u] x", 6, &a, &b, &c), LS_DECLINED);
}
END_TEST

START_TEST(fingerprints)
{
    uint64_t h1 = rds_hash_value(rds_hash_value(RDS_FNV_INIT, "ab", 2, false), "c", 1, false);
    uint64_t h2 = rds_hash_value(rds_hash_value(RDS_FNV_INIT, "a", 1, false), "bc", 2, false);
    uint64_t n1 = rds_hash_value(RDS_FNV_INIT, NULL, 0, true);
    uint64_t n2 = rds_hash_value(RDS_FNV_INIT, "", 0, false);

    ck_assert(h1 != h2);
    ck_assert(n1 != n2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rds_util");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, state_roundtrip);
    tcase_add_test(tc, state_rejects_damage);
    tcase_add_test(tc, state_file_missing_is_empty);
    tcase_add_test(tc, durations);
    tcase_add_test(tc, epochs_and_ints);
    tcase_add_test(tc, user_host);
    tcase_add_test(tc, fingerprints);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
