/*
 * test_accessor.c - fluentd's record_accessor ($.a.b, $['a'][0], plain keys): lookups in
 * nested objects and arrays, nested deletes, and the specs it refuses; and the record
 * placeholders built on it (template.c).
 */
#include <check.h>

#include "json.h"
#include "template.h"

static struct ls_arena arena;
static struct ls_record rec;

static void setup(void)
{
    static const char doc[] = "{\"a\":{\"b\":\"deep\",\"list\":[10,{\"x\":\"y\"}],\"n\":null},"
                              "\"$.odd\":1,\"s\":\"top\",\"i\":7}";
    ls_arena_init(&arena, 4096);
    ls_record_init(&rec, &arena);
    ck_assert_int_eq(ls_json_parse_object(doc, sizeof(doc) - 1, &rec), LS_OK);
    rec.tag = "app.web.access";
    rec.tag_len = strlen(rec.tag);
    rec.time.sec = 1700000000;
}

static void teardown(void)
{
    ls_record_release(&rec);
    ls_arena_release(&arena);
}

/* the value at spec as text ("<missing>" when absent) */
static const char *get(const char *spec)
{
    static char out[256];
    struct ls_accessor acc;
    struct ls_value v;
    struct ls_buf b;
    char err[200];

    ck_assert_msg(ls_accessor_compile(&acc, spec, err, sizeof(err)) == LS_OK, "%s", err);
    if (!ls_accessor_get(&acc, &rec, &v)) {
        ls_accessor_release(&acc);
        return "<missing>";
    }
    ls_buf_init(&b, 0);
    ls_json_put_value(&b, &v);
    snprintf(out, sizeof(out), "%.*s", (int)b.len, b.p);
    ls_buf_release(&b);
    ls_accessor_release(&acc);
    return out;
}

START_TEST(lookups)
{
    ck_assert_str_eq(get("s"), "\"top\"");
    ck_assert_str_eq(get("$.s"), "\"top\"");
    ck_assert_str_eq(get("$.a.b"), "\"deep\"");
    ck_assert_str_eq(get("$['a']['b']"), "\"deep\"");
    ck_assert_str_eq(get("$[\"a\"][\"list\"][0]"), "10");
    ck_assert_str_eq(get("$.a.list[1].x"), "\"y\"");
    ck_assert_str_eq(get("$.a.list[2]"), "<missing>");
    ck_assert_str_eq(get("$.a.n"), "null");
    ck_assert_str_eq(get("$.a.b.c"), "<missing>");
    ck_assert_str_eq(get("$.nope.x"), "<missing>");
    ck_assert_str_eq(get("$.odd"), "<missing>");
    ck_assert_str_eq(get("$['$.odd']"), "1");
    /* not an accessor: the key as written */
    ck_assert_str_eq(get("a.b"), "<missing>");
}
END_TEST

START_TEST(refused_specs)
{
    static const char *bad[] = { "$.", "$.a..b", "$['a'", "$['a']x", "$[0]", "$.a[x]", NULL };
    struct ls_accessor acc;
    char err[200];
    size_t i;

    for (i = 0; bad[i]; i++) {
        ck_assert_msg(ls_accessor_compile(&acc, bad[i], err, sizeof(err)) == LS_ERROR, "%s",
                      bad[i]);
        ck_assert_ptr_nonnull(strstr(err, "invalid record accessor"));
    }
}
END_TEST

START_TEST(nested_delete)
{
    struct ls_accessor acc;
    char err[200];

    ck_assert_int_eq(ls_accessor_compile(&acc, "$.a.list", err, sizeof(err)), LS_OK);
    ck_assert(ls_accessor_del(&acc, &rec));
    ck_assert(!ls_accessor_del(&acc, &rec));
    ls_accessor_release(&acc);
    ck_assert_str_eq(get("$.a"), "{\"b\":\"deep\",\"n\":null}");
    ck_assert_int_eq(ls_accessor_compile(&acc, "i", err, sizeof(err)), LS_OK);
    ck_assert(ls_accessor_del(&acc, &rec));
    ls_accessor_release(&acc);
    ck_assert_str_eq(get("i"), "<missing>");
}
END_TEST

static const char *expand(const char *tmpl, unsigned flags)
{
    static char out[256];
    struct ls_tmpl t;
    struct ls_value v;
    char msg[300];

    ck_assert_msg(ls_tmpl_compile(&t, tmpl, flags, msg, sizeof(msg)) == LS_OK, "%s", msg);
    v = ls_tmpl_expand_value(&t, &rec);
    snprintf(out, sizeof(out), "%.*s", (int)v.u.s.len, v.u.s.p);
    ls_tmpl_release(&t);
    return out;
}

START_TEST(templates)
{
    struct ls_tmpl t;
    struct ls_value v;
    char msg[300];

    ck_assert_str_eq(expand("${tag_parts[1]}/${tag_parts[-1]}/${tag_prefix[1]}/${tag_suffix[1]}",
                            0), "web/access/app.web/web.access");
    ck_assert_str_eq(expand("${record['a']['b']}-${record[\"i\"]}", 0), "deep-7");
    ck_assert_str_eq(expand("${i}", LS_TMPL_KEY_SHORTCUT), "7");
    ck_assert_str_eq(expand("t=${time}", LS_TMPL_TIME_EPOCH), "t=1700000000");
    ck_assert_str_eq(expand("plain $ {x}", 0), "plain $ {x}");
    ck_assert_str_eq(expand("${record['a']['list']}", 0), "[10, {\"x\"=>\"y\"}]");
    ck_assert_int_eq(ls_tmpl_compile(&t, "${i}", 0, msg, sizeof(msg)), LS_ERROR);
    ck_assert_int_eq(ls_tmpl_compile(&t, "${hostname}", LS_TMPL_NO_HOSTNAME, msg, sizeof(msg)),
                     LS_ERROR);
    ck_assert_int_eq(ls_tmpl_compile(&t, "${record['a'].upcase}", 0, msg, sizeof(msg)), LS_ERROR);
    ck_assert_ptr_nonnull(strstr(msg, "Ruby"));
    ck_assert_int_eq(ls_tmpl_compile(&t, "${tag_parts[7]}", 0, msg, sizeof(msg)), LS_OK);
    ck_assert(ls_tmpl_single_value(&t, &rec, &v));
    ck_assert_int_eq(v.type, LS_V_NULL);
    ls_tmpl_release(&t);
    ck_assert_int_eq(ls_tmpl_compile(&t, "${record['i']}", 0, msg, sizeof(msg)), LS_OK);
    ck_assert(ls_tmpl_single_value(&t, &rec, &v));
    ck_assert_int_eq(v.type, LS_V_INT);
    ck_assert_int_eq(v.u.i, 7);
    ls_tmpl_release(&t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("accessor");
    TCase *c = tcase_create("accessor");
    SRunner *sr;
    int nf;

    tcase_add_checked_fixture(c, setup, teardown);
    tcase_add_test(c, lookups);
    tcase_add_test(c, refused_specs);
    tcase_add_test(c, nested_delete);
    tcase_add_test(c, templates);
    suite_add_tcase(s, c);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf != 0;
}
