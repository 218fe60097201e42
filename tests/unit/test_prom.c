/*
 * test_prom.c - the prometheus plugins' registry and exposition (plugins/prometheus/prom.c).
 *
 * Values print as client_ruby prints them, which is Ruby's Float#to_s ("1.0", "0.005",
 * "1.0e+16", "1.0e-05"); label values are escaped as the text format wants; a histogram's
 * buckets are cumulative and end with +Inf; a name registered twice must agree.
 */
#include <check.h>
#include <math.h>

#include "../../plugins/prometheus/prom.h"
#include "log.h"

static void float_is(double v, const char *want)
{
    struct ls_buf b;

    ls_buf_init(&b, 0);
    prom_put_float(&b, v);
    ls_buf_putc(&b, '\0');
    ck_assert_msg(strcmp(b.p, want) == 0, "%.17g printed as %s, want %s", v, b.p, want);
    ls_buf_release(&b);
}

START_TEST(ruby_float_to_s)
{
    float_is(1, "1.0");
    float_is(0, "0.0");
    float_is(-2, "-2.0");
    float_is(15.5, "15.5");
    float_is(0.005, "0.005");
    float_is(0.0001, "0.0001");
    float_is(0.00001, "1.0e-05");
    float_is(3.05, "3.05");
    float_is(0.1 + 0.2, "0.30000000000000004");
    float_is(1796256000, "1796256000.0");
    float_is(1e15, "1000000000000000.0");
    float_is(1e16, "1.0e+16");
    float_is(1.5e20, "1.5e+20");
    float_is(123456.789, "123456.789");
    float_is(INFINITY, "+Inf");
    float_is(-INFINITY, "-Inf");
    float_is(NAN, "NaN");
}
END_TEST

START_TEST(exposition)
{
    char *names[] = { "a", "b" };
    double bounds[] = { 1, 2.5 };
    char *texts[] = { "1", "2.5" };
    const char *v1[] = { "x\"y", "line\nbreak\\" };
    size_t l1[] = { 3, 11 };
    const char *none[] = { NULL };
    size_t nl[] = { 0 };
    char msg[200];
    struct prom_family *c, *h, *s;
    struct prom_series *x;
    struct ls_buf out;

    struct prom_registry *reg = prom_registry_ref(&reg), *other;

    c = prom_family(reg, "c_total", PROM_COUNTER, "help \\ with\nnewline", names, 2, NULL, NULL, 0,
                    msg, sizeof(msg));
    ck_assert_ptr_nonnull(c);
    x = prom_series(c, v1, l1);
    prom_inc(x, 2);
    ck_assert_ptr_eq(prom_series(c, v1, l1), x);
    prom_inc(prom_series(c, v1, l1), 0.5);
    h = prom_family(reg, "h", PROM_HISTOGRAM, "hist", NULL, 0, bounds, texts, 2, msg, sizeof(msg));
    ck_assert_ptr_nonnull(h);
    x = prom_series(h, none, nl);
    prom_observe(x, 1);
    prom_observe(x, 2);
    prom_observe(x, 7);
    s = prom_family(reg, "s", PROM_SUMMARY, "sum", NULL, 0, NULL, NULL, 0, msg, sizeof(msg));
    x = prom_series(s, none, nl);
    prom_observe(x, 4);
    prom_observe_count_only(x);
    /* the same name again: same type, help and labels, else client_ruby's errors */
    ck_assert_ptr_eq(prom_family(reg, "h", PROM_HISTOGRAM, "hist", NULL, 0, NULL, NULL, 0, msg,
                                 sizeof(msg)), h);
    ck_assert_ptr_null(prom_family(reg, "h", PROM_GAUGE, "hist", NULL, 0, NULL, NULL, 0, msg,
                                   sizeof(msg)));
    ck_assert_str_eq(msg, "h has already been registered as histogram type");
    ck_assert_ptr_null(prom_family(reg, "h", PROM_HISTOGRAM, "other", NULL, 0, NULL, NULL, 0, msg,
                                   sizeof(msg)));
    ck_assert_str_eq(msg, "h has already been registered with different docstring");
    ck_assert_ptr_null(prom_family(reg, "c_total", PROM_COUNTER, "help \\ with\nnewline", names, 1,
                                   NULL, NULL, 0, msg, sizeof(msg)));

    /* another engine's registry (a reload's validation) is a separate one */
    other = prom_registry_ref(&other);
    ck_assert_ptr_ne(other, reg);
    ck_assert_ptr_nonnull(prom_family(other, "h", PROM_GAUGE, "x", NULL, 0, NULL, NULL, 0, msg,
                                      sizeof(msg)));
    prom_registry_unref(other);
    ls_buf_init(&out, 0);
    prom_render(reg, &out);
    ls_buf_putc(&out, '\0');
    ck_assert_str_eq(out.p,
                     "# TYPE c_total counter\n"
                     "# HELP c_total help \\\\ with\\nnewline\n"
                     "c_total{a=\"x\\\"y\",b=\"line\\nbreak\\\\\"} 2.5\n"
                     "# TYPE h histogram\n"
                     "# HELP h hist\n"
                     "h_bucket{le=\"1\"} 1.0\n"
                     "h_bucket{le=\"2.5\"} 2.0\n"
                     "h_bucket{le=\"+Inf\"} 3.0\n"
                     "h_sum 10.0\n"
                     "h_count 3.0\n"
                     "# TYPE s summary\n"
                     "# HELP s sum\n"
                     "s_sum 4.0\n"
                     "s_count 2.0\n");
    ls_buf_release(&out);
    ck_assert_ptr_eq(prom_registry_ref(&reg), reg);
    prom_registry_unref(reg);
    prom_registry_unref(reg);
    /* the last reference frees it all: the next user starts empty */
    reg = prom_registry_ref(&reg);
    ls_buf_init(&out, 0);
    prom_render(reg, &out);
    ck_assert_uint_eq(out.len, 0);
    ls_buf_release(&out);
    prom_registry_unref(reg);
}
END_TEST

START_TEST(many_series_stay_distinct)
{
    char *names[] = { "k" };
    char msg[200], v[32];
    struct prom_family *g;
    size_t i, len;
    struct ls_buf out;

    struct prom_registry *reg = prom_registry_ref(&g);

    g = prom_family(reg, "g", PROM_GAUGE, "g", names, 1, NULL, NULL, 0, msg, sizeof(msg));
    for (i = 0; i < 5000; i++) {
        const char *vp = v;
        len = (size_t)snprintf(v, sizeof(v), "%zu", i % 1000);
        prom_inc(prom_series(g, &vp, &len), 1);
    }
    ls_buf_init(&out, 0);
    prom_render(reg, &out);
    ls_buf_putc(&out, '\0');
    ck_assert_ptr_nonnull(strstr(out.p, "g{k=\"0\"} 5.0\ng{k=\"1\"} 5.0\n"));
    ck_assert_ptr_nonnull(strstr(out.p, "g{k=\"999\"} 5.0\n"));
    for (i = 0, len = 0; out.p[i]; i++) {
        len += out.p[i] == '\n';
    }
    ck_assert_uint_eq(len, 1000 + 2);
    ls_buf_release(&out);
    prom_registry_unref(reg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("prom");
    TCase *tc = tcase_create("registry");
    SRunner *sr;
    int failed;

    ls_log_level = LS_LOG_ERROR;
    tcase_add_test(tc, ruby_float_to_s);
    tcase_add_test(tc, exposition);
    tcase_add_test(tc, many_series_stay_distinct);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
