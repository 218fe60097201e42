/*
 * test_s3_key.c - the pure parts of out_s3's key construction: step 1 of
 * fluent-plugin-s3's format (%{path}, %{file_extension}, %{hostname}
 * substituted, per-chunk placeholders kept as sentinels, unknown ones
 * dropped, removed ones refused), index_format validation and rendering,
 * recognising an index in a listed key, RFC 1123 dates (clock skew), and
 * the xz preset in store_as lzma2's command_parameter.
 */
#include <check.h>

#include "../../plugins/out_s3/s3_out.h"

static char *prep(const char *fmt)
{
    char err[128] = "";
    char *s = s3_tmpl_prepare(fmt, "logs/${tag}/", "gz", "web1", err, sizeof(err));
    ck_assert_msg(s != NULL, "%s: %s", fmt, err);
    return s;
}

START_TEST(prepare_substitutes_step_one)
{
    char *s = prep("%{path}%{time_slice}_%{index}.%{file_extension}");
    ck_assert_str_eq(s, "logs/${tag}/\x01t\x02_\x01i\x02.gz");
    ls_free(s);
    s = prep("%{path}%{hostname}-%{hex_random}-%{uuid_flush}%{chunk_id}%{nope}.x");
    /* %{chunk_id} is not a placeholder in fluent-plugin-s3: it vanishes */
    ck_assert_str_eq(s, "logs/${tag}/web1-\x01h\x02-\x01u\x02.x");
    ls_free(s);
    s = prep("a%{date_slice}b%{hms_slice}c%{unterminated");
    ck_assert_str_eq(s, "a\x01" "d\x02" "b\x01" "m\x02" "c%{unterminated");
    ls_free(s);
}
END_TEST

START_TEST(prepare_refuses_removed_uuid)
{
    char err[128] = "";
    ck_assert_ptr_null(s3_tmpl_prepare("%{uuid:random}.gz", "", "gz", "h", err, sizeof(err)));
    ck_assert_str_eq(err, "%{uuid:random} placeholder in s3_object_key_format is removed");
    ck_assert_ptr_null(s3_tmpl_prepare("%{uuid}", "", "gz", "h", err, sizeof(err)));
}
END_TEST

START_TEST(index_format_rules)
{
    ck_assert(s3_index_format_ok("%d"));
    ck_assert(s3_index_format_ok("%03d"));
    ck_assert(s3_index_format_ok("%x"));
    ck_assert(s3_index_format_ok("%08X"));
    ck_assert(!s3_index_format_ok("%s"));
    ck_assert(!s3_index_format_ok("%3d"));      /* only 0-padded widths, as /^%(0\d*)?[dxX]$/ */
    ck_assert(!s3_index_format_ok("%d%d"));
    ck_assert(!s3_index_format_ok("x%d"));
    ck_assert(!s3_index_format_ok("%n"));
}
END_TEST

START_TEST(index_render_and_recognise)
{
    const char *base = "logs/2024010100_\x01i\x02.gz";
    char *k = s3_key_with_index(base, "%03d", 7);
    ck_assert_str_eq(k, "logs/2024010100_007.gz");
    ls_free(k);
    k = s3_key_with_index(base, "%x", 255);
    ck_assert_str_eq(k, "logs/2024010100_ff.gz");
    ls_free(k);
    k = s3_key_with_index("a\x01i\x02-\x01i\x02", "%d", 12);
    ck_assert_str_eq(k, "a12-12");
    ls_free(k);

    ck_assert_int_eq(s3_key_index_of(base, "%d", "logs/2024010100_0.gz"), 0);
    ck_assert_int_eq(s3_key_index_of(base, "%d", "logs/2024010100_41.gz"), 41);
    ck_assert_int_eq(s3_key_index_of(base, "%03d", "logs/2024010100_041.gz"), 41);
    /* not this format: a differently padded number, another suffix, another slice */
    ck_assert_int_eq(s3_key_index_of(base, "%03d", "logs/2024010100_41.gz"), -1);
    ck_assert_int_eq(s3_key_index_of(base, "%d", "logs/2024010100_1.gz.tmp"), -1);
    ck_assert_int_eq(s3_key_index_of(base, "%d", "logs/2024010101_1.gz"), -1);
    ck_assert_int_eq(s3_key_index_of(base, "%d", "logs/2024010100_.gz"), -1);
    ck_assert_int_eq(s3_key_index_of(base, "%x", "logs/2024010100_1f.gz"), 31);
    ck_assert_int_eq(s3_key_index_of(base, "%d", "logs/2024010100_99999999999999999999999.gz"), -1);
}
END_TEST

START_TEST(http_dates)
{
    ck_assert_int_eq(s3_parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
    ck_assert_int_eq(s3_parse_http_date("Mon, 01 Jan 2024 00:30:00 GMT"), 1704069000);
    ck_assert_int_eq(s3_parse_http_date("garbage"), -1);
    ck_assert_int_eq(s3_parse_http_date("Mon, 41 Jan 2024 00:30:00 GMT"), -1);
    ck_assert_int_eq(s3_parse_http_date("Mon, 01 Foo 2024 00:30:00 GMT"), -1);
    ck_assert_int_eq(s3_parse_http_date("Mon, 01 Jan 2024 25:30:00 GMT"), -1);
}
END_TEST

START_TEST(xz_preset_from_command_parameter)
{
    static const struct { const char *cmd; int preset; bool extreme; } c[] = {
        { "-qf0", 0, false },          /* fluent-plugin-s3's default */
        { "-9", 9, false },
        { "-q -f -3", 3, false },
        { "-6e", 6, true },
        { "-qf1 --extreme", 1, true },
        { "-T0 -2", 2, false },        /* -T0 is a thread count, not preset 0 */
        { "-T 4", 6, false },
        { "-T  4 -M 500MiB -1", 1, false },
        { "--fast", 0, false },
        { "--best -q", 9, false },
        { "-qf", 6, false },           /* no preset: xz's default */
        { "", 6, false },
        { "0 -- 5", 6, false },
    };
    size_t i;

    for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        bool extreme = !c[i].extreme;
        ck_assert_msg(s3_xz_preset(c[i].cmd, &extreme) == c[i].preset, "'%s'", c[i].cmd);
        ck_assert_msg(extreme == c[i].extreme, "'%s'", c[i].cmd);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("s3_key");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, prepare_substitutes_step_one);
    tcase_add_test(tc, prepare_refuses_removed_uuid);
    tcase_add_test(tc, index_format_rules);
    tcase_add_test(tc, index_render_and_recognise);
    tcase_add_test(tc, http_dates);
    tcase_add_test(tc, xz_preset_from_command_parameter);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
