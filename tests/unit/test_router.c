/*
 * test_router.c - fluentd's match semantics, from its documentation
 * ("How do the match patterns work?") and match.rb's corner cases, plus
 * route computation: filters before the first match, first match wins.
 */
#include <check.h>
#include "router.h"

static bool m(const char *pat, const char *tag)
{
    char err[256];
    struct ls_pattern *p = ls_pattern_compile(pat, err, sizeof(err));
    bool r;

    ck_assert_msg(p != NULL, "compile '%s': %s", pat, err);
    r = ls_pattern_match(p, tag, strlen(tag));
    ls_pattern_free(p);
    return r;
}

START_TEST(star_is_one_part)
{
    ck_assert(m("a.*", "a.b"));
    ck_assert(!m("a.*", "a"));
    ck_assert(!m("a.*", "a.b.c"));
    ck_assert(m("a.*", "a."));          /* match.rb: * may be empty */
    ck_assert(m("*.b", "a.b"));
    ck_assert(!m("*.b", "x.a.b"));
}
END_TEST

START_TEST(double_star_is_zero_or_more_parts)
{
    ck_assert(m("a.**", "a"));
    ck_assert(m("a.**", "a.b"));
    ck_assert(m("a.**", "a.b.c"));
    ck_assert(!m("a.**", "ab"));
    ck_assert(!m("a.**", "b.a"));
    ck_assert(m("**", "anything.at.all"));
    ck_assert(m("**.b", "b"));
    ck_assert(m("**.b", "x.y.b"));
    ck_assert(!m("**.b", "x.yb"));
    ck_assert(m("a.**.b", "a.b"));
    ck_assert(m("a.**.b", "a.x.y.b"));
}
END_TEST

START_TEST(braces_are_alternatives)
{
    ck_assert(m("{a,b}.c", "a.c"));
    ck_assert(m("{a,b}.c", "b.c"));
    ck_assert(!m("{a,b}.c", "c.c"));
    ck_assert(m("a.{b,c}.*", "a.b.x"));
    ck_assert(m("a.{b,c.**}", "a.c.d.e"));
    ck_assert(!m("a.{b,c.**}", "a.b.d"));
    ck_assert(m("{a.*,b}", "a.z"));
}
END_TEST

START_TEST(several_patterns_and_literals)
{
    ck_assert(m("a b", "a"));
    ck_assert(m("a b", "b"));
    ck_assert(!m("a b", "c"));
    ck_assert(m("a.** b.*", "b.x"));
    ck_assert(m("", "whatever"));            /* <match> with no argument means ** */
    ck_assert(!m("a.b", "aXb"));             /* the dot is literal */
    ck_assert(m("a\\*b", "a*b"));
    ck_assert(m("/^app\\.(web|api)$/", "app.api"));
    ck_assert(!m("/app\\.(web|api)/", "app.db"));
    ck_assert(m("nginx-access", "nginx-access"));
}
END_TEST

static struct ls_instance fake[4];

START_TEST(first_match_wins_and_filters_before_it)
{
    char err[256];
    struct ls_label *l = ls_label_create("@ROOT");
    struct ls_route *r;

    ck_assert_int_eq(ls_label_add_rule(l, false, "app.**", &fake[0], err, sizeof(err)), LS_OK);
    ck_assert_int_eq(ls_label_add_rule(l, true, "app.web", &fake[1], err, sizeof(err)), LS_OK);
    ck_assert_int_eq(ls_label_add_rule(l, false, "app.*", &fake[2], err, sizeof(err)), LS_OK);
    ck_assert_int_eq(ls_label_add_rule(l, true, "app.**", &fake[3], err, sizeof(err)), LS_OK);

    r = ls_label_route(l, "app.web", 7);
    ck_assert_ptr_eq(r->output, &fake[1]);
    ck_assert_uint_eq(r->nfilters, 1);       /* the filter after the match never runs */
    ck_assert_ptr_eq(r->filters[0], &fake[0]);

    r = ls_label_route(l, "app.api", 7);
    ck_assert_ptr_eq(r->output, &fake[3]);
    ck_assert_uint_eq(r->nfilters, 2);
    ck_assert_ptr_eq(r->filters[1], &fake[2]);

    r = ls_label_route(l, "other", 5);
    ck_assert_ptr_null(r->output);
    /* cached: the same route object comes back */
    ck_assert_ptr_eq(ls_label_route(l, "other", 5), r);
    ls_label_destroy(l);
}
END_TEST

/* The last tag routed is answered without hashing: a different tag, a tag that is a prefix
 * of it, and a rule added since (which empties the cache) must each get their own route. */
START_TEST(last_route_is_only_reused_for_the_same_tag)
{
    char err[256];
    struct ls_label *l = ls_label_create("@ROOT");
    struct ls_route *web, *api;

    ck_assert_int_eq(ls_label_add_rule(l, true, "app.web", &fake[1], err, sizeof(err)), LS_OK);
    ck_assert_int_eq(ls_label_add_rule(l, true, "app.**", &fake[3], err, sizeof(err)), LS_OK);
    web = ls_label_route(l, "app.web", 7);
    ck_assert_ptr_eq(web->output, &fake[1]);
    ck_assert_ptr_eq(ls_label_route(l, "app.web", 7), web);
    ck_assert_ptr_eq(ls_label_route(l, "app.web", 7), web);
    api = ls_label_route(l, "app.api", 7);
    ck_assert_ptr_eq(api->output, &fake[3]);
    ck_assert_ptr_eq(ls_label_route(l, "app.web", 7), web);   /* found again by its hash */
    ck_assert_ptr_eq(ls_label_route(l, "app.web", 7), web);
    ck_assert_ptr_eq(ls_label_route(l, "app.we", 6)->output, &fake[3]);
    ck_assert_ptr_eq(ls_label_route(l, "app.web", 7)->output, &fake[1]);

    /* a rule added after: the cached routes, the last one among them, are gone */
    ck_assert_ptr_null(ls_label_route(l, "other", 5)->output);
    ck_assert_ptr_null(ls_label_route(l, "other", 5)->output);
    ck_assert_ptr_null(ls_label_route(l, "other", 5)->output);
    ck_assert_int_eq(ls_label_add_rule(l, true, "other", &fake[2], err, sizeof(err)), LS_OK);
    ck_assert_ptr_eq(ls_label_route(l, "other", 5)->output, &fake[2]);
    ls_label_destroy(l);
}
END_TEST

START_TEST(bad_regex_is_an_error)
{
    char err[256];
    struct ls_pattern *p = ls_pattern_compile("/a(/", err, sizeof(err));
    ck_assert_ptr_null(p);
    ck_assert(strstr(err, "invalid match pattern") != NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, star_is_one_part);
    tcase_add_test(tc, double_star_is_zero_or_more_parts);
    tcase_add_test(tc, braces_are_alternatives);
    tcase_add_test(tc, several_patterns_and_literals);
    tcase_add_test(tc, first_match_wins_and_filters_before_it);
    tcase_add_test(tc, last_route_is_only_reused_for_the_same_tag);
    tcase_add_test(tc, bad_regex_is_an_error);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
