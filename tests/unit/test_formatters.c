/*
 * test_formatters.c - every formatter's exact bytes (expected strings are
 * fluentd's documented outputs for the same event), and <inject>.
 *
 * The event of fluentd's formatter docs: tag app.event, time 1362020400
 * (2013-02-28 12:00:00 +09:00), record {"host":"192.168.0.1","size":777,
 * "method":"PUT"}. Local time is pinned to Asia/Tokyo.
 */
#include <check.h>
#include <math.h>

#include "plugin.h"
#include "inject.h"
#include "json.h"

static struct ls_arena arena;
static struct ls_record rec;
static struct ls_conf *conf;
static struct ls_instance *fmt;
static struct ls_buf out;
static char err[512];

static void setup(void)
{
    struct ls_value v;

    ls_arena_init(&arena, 0);
    ls_record_init(&rec, &arena);
    rec.tag = "app.event";
    rec.tag_len = 9;
    rec.time.sec = 1362020400;
    rec.time.nsec = 0;
    v = ls_vstr("192.168.0.1", 11);
    ls_record_add(&rec, "host", 4, &v);
    v = ls_vint(777);
    ls_record_add(&rec, "size", 4, &v);
    v = ls_vstr("PUT", 3);
    ls_record_add(&rec, "method", 6, &v);
    ls_buf_init(&out, 0);
    conf = NULL;
    fmt = NULL;
    err[0] = '\0';
}

static void teardown(void)
{
    ls_instance_destroy(fmt);
    if (conf) {
        ls_conf_destroy(conf);
    }
    ls_buf_release(&out);
    ls_record_release(&rec);
    ls_arena_release(&arena);
}

/* Load "<format>\n body </format>" and return the section. */
static struct ls_conf_section *section(const char *name, const char *body)
{
    char text[2048];
    int n = snprintf(text, sizeof(text), "<%s>\n%s\n</%s>\n", name, body, name);

    if (conf) {
        ls_conf_destroy(conf);
    }
    conf = ls_conf_load_string("test.conf", text, (size_t)n, err, sizeof(err));
    ck_assert_msg(conf != NULL, "%s", err);
    return ls_conf_child(conf->root, name);
}

static struct ls_instance *make(const char *body)
{
    struct ls_conf_section *sec = section("format", body);

    ls_instance_destroy(fmt);
    fmt = ls_instance_create(NULL, NULL, LS_PLUGIN_FORMATTER, NULL, sec, err, sizeof(err));
    return fmt;
}

static const char *run(const char *body)
{
    ck_assert_msg(make(body) != NULL, "%s", err);
    ls_buf_reset(&out);
    ck_assert_int_eq(fmt->plugin->format(fmt, &rec, &out), LS_OK);
    ls_buf_cstr(&out);
    return out.p;
}

#define DOC_JSON "{\"host\":\"192.168.0.1\",\"size\":777,\"method\":\"PUT\"}"

START_TEST(out_file)
{
    ck_assert_str_eq(run("@type out_file"), "2013-02-28T12:00:00+09:00\tapp.event\t" DOC_JSON "\n");
    ck_assert_str_eq(run("@type out_file\nutc true"), "2013-02-28T03:00:00Z\tapp.event\t" DOC_JSON "\n");
    ck_assert_str_eq(run("@type out_file\nlocaltime false"), "2013-02-28T03:00:00Z\tapp.event\t" DOC_JSON "\n");
    ck_assert_str_eq(run("@type out_file\ntimezone +05:30"), "2013-02-28T08:30:00+05:30\tapp.event\t" DOC_JSON "\n");
    ck_assert_str_eq(run("@type out_file\ntimezone America/New_York"),
                     "2013-02-27T22:00:00-05:00\tapp.event\t" DOC_JSON "\n");
    ck_assert_str_eq(run("@type out_file\ndelimiter SPACE"), "2013-02-28T12:00:00+09:00 app.event " DOC_JSON "\n");
    ck_assert_str_eq(run("@type out_file\ndelimiter comma"), "2013-02-28T12:00:00+09:00,app.event," DOC_JSON "\n");
    /* fluentd maps anything that is not SPACE/COMMA to TAB, even "," */
    ck_assert_str_eq(run("@type out_file\ndelimiter ,"), "2013-02-28T12:00:00+09:00\tapp.event\t" DOC_JSON "\n");
    ck_assert_str_eq(run("@type out_file\noutput_tag false"), "2013-02-28T12:00:00+09:00\t" DOC_JSON "\n");
    ck_assert_str_eq(run("@type out_file\noutput_time false"), "app.event\t" DOC_JSON "\n");
    ck_assert_str_eq(run("@type out_file\noutput_time false\noutput_tag false\nnewline crlf"), DOC_JSON "\r\n");
    ck_assert_str_eq(run("@type out_file\ntime_type unixtime\noutput_tag false"), "1362020400\t" DOC_JSON "\n");
    rec.time.nsec = 123456789;
    ck_assert_str_eq(run("@type out_file\ntime_type float\noutput_tag false"), "1362020400.1234567\t" DOC_JSON "\n");
    ck_assert_str_eq(run("@type out_file\ntime_format %Y%m%d %H:%M:%S.%3N %z\nutc"),
                     "20130228 03:00:00.123 +0000\tapp.event\t" DOC_JSON "\n");
    /* errors */
    ck_assert_ptr_null(make("@type out_file\nutc true\nlocaltime true"));
    ck_assert(strstr(err, "both of utc and localtime") != NULL);
    ck_assert_ptr_null(make("@type out_file\ntime_type epoch"));
    ck_assert_ptr_null(make("@type out_file\ntimezone Nowhere/Special"));
}
END_TEST

START_TEST(json)
{
    struct ls_value v;

    ck_assert_str_eq(run("@type json"), DOC_JSON "\n");
    ck_assert_str_eq(run("@type json\nadd_newline false"), DOC_JSON);
    ck_assert_str_eq(run("@type json\nnewline crlf"), DOC_JSON "\r\n");
    ck_assert_str_eq(run("@type json\njson_parser yajl"), DOC_JSON "\n");
    /* binary and invalid UTF-8 values come out as valid JSON */
    ls_record_clear(&rec);
    v = ls_vstr("a\0b\xff\n", 5);
    ls_record_add(&rec, "m", 1, &v);
    ck_assert_str_eq(run("@type json"), "{\"m\":\"a\\u0000b\xef\xbf\xbd\\n\"}\n");
    /* a full buffer: LS_AGAIN and the buffer untouched */
    ck_assert_ptr_nonnull(make("@type json"));
    {
        struct ls_buf small;
        ls_buf_init(&small, 12);
        ls_buf_append(&small, "abc", 3);
        ck_assert_int_eq(fmt->plugin->format(fmt, &rec, &small), LS_AGAIN);
        ck_assert_uint_eq(small.len, 3);
        ls_buf_release(&small);
    }
}
END_TEST

START_TEST(ltsv)
{
    struct ls_value v;

    ck_assert_str_eq(run("@type ltsv"), "host:192.168.0.1\tsize:777\tmethod:PUT\n");
    ck_assert_str_eq(run("@type ltsv\ndelimiter ,\nlabel_delimiter =\nadd_newline false"),
                     "host=192.168.0.1,size=777,method=PUT");
    v = ls_vstr("a\tb", 3);
    ls_record_add(&rec, "ta\tb", 4, &v);
    v = ls_vnull();
    ls_record_add(&rec, "nil", 3, &v);
    v.type = LS_V_JSON;
    v.u.s.p = "{\"a\": [1, null]}";
    v.u.s.len = strlen(v.u.s.p);
    ls_record_add(&rec, "obj", 3, &v);
    ck_assert_str_eq(run("@type ltsv"),
                     "host:192.168.0.1\tsize:777\tmethod:PUT\tta b:a b\tnil:\tobj:{\"a\"=>[1, nil]}\n");
    ck_assert_str_eq(run("@type ltsv\nreplacement _\nnewline crlf"),
                     "host:192.168.0.1\tsize:777\tmethod:PUT\tta_b:a_b\tnil:\tobj:{\"a\"=>[1, nil]}\r\n");
}
END_TEST

START_TEST(csv)
{
    struct ls_value v;

    ck_assert_str_eq(run("@type csv\nfields host,method"), "\"192.168.0.1\",\"PUT\"\n");
    ck_assert_str_eq(run("@type csv\nfields host,method\nforce_quotes false"), "192.168.0.1,PUT\n");
    ck_assert_str_eq(run("@type csv\nfields [\"size\",\"host\"]\ndelimiter TAB\nadd_newline false"),
                     "\"777\"\t\"192.168.0.1\"");
    ck_assert_str_eq(run("@type csv\nfields size,host\ndelimiter '\\t'\nforce_quotes false"), "777\t192.168.0.1\n");
    v = ls_vstr("say \"hi\", ok", 12);
    ls_record_add(&rec, "q", 1, &v);
    v = ls_vstr("", 0);
    ls_record_add(&rec, "empty", 5, &v);
    v = ls_vnull();
    ls_record_add(&rec, "nil", 3, &v);
    v = ls_vfloat(0.5);
    ls_record_add(&rec, "f", 1, &v);
    ck_assert_str_eq(run("@type csv\nfields q,empty,nil,missing,f"), "\"say \"\"hi\"\", ok\",\"\",\"\",\"\",\"0.5\"\n");
    ck_assert_str_eq(run("@type csv\nfields q,empty,nil,missing,f,,method\nforce_quotes false"),
                     "\"say \"\"hi\"\", ok\",\"\",,,0.5,PUT\n");
    ck_assert_ptr_null(make("@type csv"));
    ck_assert(strstr(err, "fields") != NULL);
    ck_assert_ptr_null(make("@type csv\nfields ,"));
}
END_TEST

START_TEST(tsv)
{
    ck_assert_str_eq(run("@type tsv\nkeys host,size,method"), "192.168.0.1\t777\tPUT\n");
    ck_assert_str_eq(run("@type tsv\nkeys host,missing,method\ndelimiter |\nadd_newline false"), "192.168.0.1||PUT");
    ck_assert_ptr_null(make("@type tsv"));
}
END_TEST

START_TEST(single_value)
{
    struct ls_value v = ls_vstr("raw line\n", 9);

    ls_record_add(&rec, "message", 7, &v);
    ck_assert_str_eq(run("@type single_value"), "raw line\n\n");
    ck_assert_str_eq(run("@type single_value\nadd_newline false"), "raw line\n");
    ck_assert_str_eq(run("@type single_value\nmessage_key size"), "777\n");
    ck_assert_str_eq(run("@type single_value\nmessage_key nope"), "\n");
}
END_TEST

START_TEST(hash)
{
    struct ls_value v;

    ck_assert_str_eq(run("@type hash"), "{\"host\"=>\"192.168.0.1\", \"size\"=>777, \"method\"=>\"PUT\"}\n");
    ls_record_clear(&rec);
    v = ls_vstr("#{x} #y \"q\" \\ \x1b\x01\xc3\xa9\xff", 19);
    ls_record_add(&rec, "s", 1, &v);
    v = ls_vnull();
    ls_record_add(&rec, "n", 1, &v);
    v = ls_vfloat(1e20);
    ls_record_add(&rec, "f", 1, &v);
    v = ls_vbool(true);
    ls_record_add(&rec, "b", 1, &v);
    v.type = LS_V_JSON;
    v.u.s.p = "{\"a\":[1,-0,2.50,1e2,null,true,\"x\\ny\"],\"e\":{}}";
    v.u.s.len = strlen(v.u.s.p);
    ls_record_add(&rec, "j", 1, &v);
    ck_assert_str_eq(run("@type hash\nadd_newline false"),
                     "{\"s\"=>\"\\#{x} #y \\\"q\\\" \\\\ \\e\\u0001\xc3\xa9\\xFF\", \"n\"=>nil, \"f\"=>1.0e+20, "
                     "\"b\"=>true, \"j\"=>{\"a\"=>[1, 0, 2.5, 100.0, nil, true, \"x\\ny\"], \"e\"=>{}}}");
}
END_TEST

START_TEST(stdout_fmt)
{
    rec.time.nsec = 5;
    ck_assert_str_eq(run("@type stdout"), "2013-02-28 12:00:00.000000005 +0900 app.event: " DOC_JSON "\n");
    ck_assert_str_eq(run("@type stdout\noutput_type hash"),
                     "2013-02-28 12:00:00.000000005 +0900 app.event: {\"host\"=>\"192.168.0.1\", \"size\"=>777, "
                     "\"method\"=>\"PUT\"}\n");
    /* the sub-formatter reads its parameters from the same section */
    ck_assert_str_eq(run("@type stdout\noutput_type csv\nfields method,size\nnewline crlf"),
                     "2013-02-28 12:00:00.000000005 +0900 app.event: \"PUT\",\"777\"\n");
    ck_assert_str_eq(run("@type stdout\noutput_type ltsv"),
                     "2013-02-28 12:00:00.000000005 +0900 app.event: host:192.168.0.1\tsize:777\tmethod:PUT\n");
    ck_assert_ptr_null(make("@type stdout\noutput_type stdout"));
    ck_assert_ptr_null(make("@type stdout\noutput_type nosuch"));
    /* @type is restored after the sub-formatter was made */
    ck_assert_ptr_nonnull(make("@type stdout\noutput_type json"));
    ck_assert_str_eq(ls_conf_type(ls_conf_child(conf->root, "format")), "stdout");
}
END_TEST

START_TEST(unknown_params_marked)
{
    struct ls_conf_section *sec;

    ck_assert_ptr_nonnull(make("@type out_file\ndelimiter SPACE\nbogus 1"));
    sec = ls_conf_child(conf->root, "format");
    ck_assert_int_eq(ls_conf_warn_unused(sec), 1);
}
END_TEST

/* ---- inject ---- */

static struct ls_inject *inj_make(const char *name, const char *body)
{
    struct ls_conf_section *sec = section(name, body);
    return ls_inject_create(sec, err, sizeof(err));
}

static const char *inj_json(struct ls_inject *inj)
{
    struct ls_record scratch;
    const struct ls_record *r;

    ls_record_init(&scratch, NULL);
    r = ls_inject_apply(inj, &rec, &scratch);
    ls_buf_reset(&out);
    ck_assert_int_eq(ls_json_put_record(&out, r), LS_OK);
    ls_buf_cstr(&out);
    ls_record_release(&scratch);
    return out.p;
}

START_TEST(inject_section)
{
    struct ls_inject *inj;

    rec.time.nsec = 123456789;
    ck_assert_ptr_null(ls_inject_create(NULL, err, sizeof(err)));
    ck_assert_str_eq(err, "");
    inj = inj_make("inject", "tag_key t\ntime_key ts");
    ck_assert_ptr_nonnull(inj);
    /* time_type float by default, truncated to microseconds */
    ck_assert_str_eq(inj_json(inj), "{\"host\":\"192.168.0.1\",\"size\":777,\"method\":\"PUT\",\"t\":\"app.event\","
                                    "\"ts\":1362020400.123456}");
    /* the input record is untouched */
    ck_assert_uint_eq(rec.nfields, 3);
    ls_inject_destroy(inj);

    inj = inj_make("inject", "time_key time\ntime_type string");
    ck_assert_str_eq(inj_json(inj), "{\"host\":\"192.168.0.1\",\"size\":777,\"method\":\"PUT\","
                                    "\"time\":\"2013-02-28T12:00:00+09:00\"}");
    ls_inject_destroy(inj);
    inj = inj_make("inject", "time_key time\ntime_type string\nutc true");
    ck_assert(strstr(inj_json(inj), "\"time\":\"2013-02-28T03:00:00Z\"}") != NULL);
    ls_inject_destroy(inj);
    inj = inj_make("inject", "time_key time\ntime_type string\ntime_format %Y-%m-%d %H:%M:%S.%L\ntimezone +00:00");
    ck_assert(strstr(inj_json(inj), "\"time\":\"2013-02-28 03:00:00.123\"}") != NULL);
    ls_inject_destroy(inj);
    inj = inj_make("inject", "time_key size\ntime_type unixtime");
    /* an existing key keeps its place and gets the new value */
    ck_assert_str_eq(inj_json(inj), "{\"host\":\"192.168.0.1\",\"size\":1362020400,\"method\":\"PUT\"}");
    ck_assert_int_eq(rec.fields[1].v.u.i, 777);
    ls_inject_destroy(inj);
    inj = inj_make("inject", "hostname_key h\nhostname web-1\nworker_id_key w\ntag_key tag");
    ck_assert_str_eq(inj_json(inj), "{\"host\":\"192.168.0.1\",\"size\":777,\"method\":\"PUT\",\"h\":\"web-1\","
                                    "\"w\":0,\"tag\":\"app.event\"}");
    ls_inject_destroy(inj);
    inj = inj_make("inject", "hostname_key h");
    {
        char host[256], want[300];
        gethostname(host, sizeof(host));
        snprintf(want, sizeof(want), "\"h\":\"%s\"}", host);
        ck_assert(strstr(inj_json(inj), want) != NULL);
    }
    ls_inject_destroy(inj);
    /* nothing configured: no inject */
    ck_assert_ptr_null(inj_make("inject", "time_type string"));
    ck_assert_str_eq(err, "");
    /* errors */
    ck_assert_ptr_null(inj_make("inject", "time_key t\ntime_type epoch"));
    ck_assert(err[0] != '\0');
    ck_assert_ptr_null(inj_make("inject", "time_key t\ntime_type string\ntimezone Not/AZone"));
    ck_assert(err[0] != '\0');
    ck_assert_ptr_null(inj_make("inject", "time_key t\nutc true\nlocaltime false"));
    ck_assert(strstr(err, "both") != NULL);
}
END_TEST

START_TEST(inject_flat_v012)
{
    struct ls_inject *inj;
    struct ls_record scratch;

    /* an output's own section with the v0.12 names */
    inj = inj_make("match", "@type s3\ninclude_time_key true\ninclude_tag_key true\nutc");
    ck_assert_ptr_nonnull(inj);
    ck_assert_str_eq(inj_json(inj), "{\"host\":\"192.168.0.1\",\"size\":777,\"method\":\"PUT\",\"tag\":\"app.event\","
                                    "\"time\":\"2013-02-28T03:00:00Z\"}");
    ls_inject_destroy(inj);
    inj = inj_make("match", "include_time_key true\ntime_key @timestamp\ntime_format %s");
    ck_assert(strstr(inj_json(inj), "\"@timestamp\":\"1362020400\"}") != NULL);
    ls_inject_destroy(inj);
    inj = inj_make("match", "include_time_key true\ntime_as_epoch true");
    ck_assert(strstr(inj_json(inj), "\"time\":1362020400}") != NULL);
    ls_inject_destroy(inj);
    /* time_key alone injects a float time (fluentd v1 compat behaviour) */
    inj = inj_make("match", "time_key t");
    ck_assert(strstr(inj_json(inj), "\"t\":1362020400.0}") != NULL);
    ls_inject_destroy(inj);
    /* flat keys that inject nothing */
    ck_assert_ptr_null(inj_make("match", "@type s3\ntimezone +09:00"));
    ck_assert_ptr_null(inj_make("match", "@type s3\npath /x"));
    ck_assert_ptr_null(inj_make("match", "include_time_key false"));
    ck_assert_str_eq(err, "");
    /* apply with no inject returns the record itself */
    ls_record_init(&scratch, NULL);
    ck_assert_ptr_eq(ls_inject_apply(NULL, &rec, &scratch), &rec);
    ls_record_release(&scratch);
    /* used flags: the flat names are consumed, others are left for the output */
    inj = inj_make("match", "include_tag_key true\nother 1");
    ck_assert_int_eq(ls_conf_warn_unused(ls_conf_child(conf->root, "match")), 1);
    ls_inject_destroy(inj);
}
END_TEST

START_TEST(time_formatter_float)
{
    struct ls_time_formatter *tf = ls_time_formatter_create(LS_TIME_FLOAT, NULL, true, NULL, false, err, sizeof(err));
    struct ls_time t = { 1700000000, 500000000 };
    struct ls_value v;

    ck_assert_ptr_nonnull(tf);
    ls_buf_reset(&out);
    ck_assert_int_eq(ls_time_formatter_put(tf, &t, &out), LS_OK);
    ls_buf_cstr(&out);
    ck_assert_str_eq(out.p, "1700000000.5");
    v = ls_time_formatter_value(tf, &t);
    ck_assert_int_eq(v.type, LS_V_FLOAT);
    ck_assert(v.u.f == 1700000000.5);
    ls_time_formatter_destroy(tf);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("formatters");
    TCase *t = tcase_create("formatters");
    SRunner *sr;
    int nf;

    setenv("TZ", "Asia/Tokyo", 1);
    tzset();
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, out_file);
    tcase_add_test(t, json);
    tcase_add_test(t, ltsv);
    tcase_add_test(t, csv);
    tcase_add_test(t, tsv);
    tcase_add_test(t, single_value);
    tcase_add_test(t, hash);
    tcase_add_test(t, stdout_fmt);
    tcase_add_test(t, unknown_params_marked);
    tcase_add_test(t, inject_section);
    tcase_add_test(t, inject_flat_v012);
    tcase_add_test(t, time_formatter_float);
    suite_add_tcase(s, t);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf != 0;
}
