/*
 * router.h - fluentd's event routing: labels, <filter> chains and <match>.
 *
 * A label holds rules in file order. For a tag, the route is every
 * matching <filter> that comes before the first matching <match>, then that
 * match's output (fluentd: "first match wins"; a filter after the match
 * that catches the event never runs). Routes are computed once per tag and
 * cached, so the per-record cost is one hash lookup.
 */
#ifndef LS_ROUTER_H
#define LS_ROUTER_H

#include "plugin.h"

struct ls_pattern;

/* Compile one <match>/<filter> argument (space-separated patterns, "" = "**"). */
struct ls_pattern *ls_pattern_compile(const char *arg, char *err, size_t errlen);
bool ls_pattern_match(const struct ls_pattern *p, const char *tag, size_t len);
void ls_pattern_free(struct ls_pattern *p);

struct ls_route {
    struct ls_instance **filters;
    size_t nfilters;
    struct ls_instance *output;   /* NULL: no <match> matched */
    bool warned;                  /* "no patterns matched" said once per tag */
};

struct ls_rule {
    bool is_match;
    struct ls_pattern *pattern;
    char *arg;
    struct ls_instance *ins;
};

struct ls_route_cache;

struct ls_label {
    char *name;                   /* "@ROOT" for the root */
    struct ls_rule *rules;
    size_t nrules;
    struct ls_route_cache *cache;
};

struct ls_label *ls_label_create(const char *name);
int ls_label_add_rule(struct ls_label *l, bool is_match, const char *arg, struct ls_instance *ins,
                      char *err, size_t errlen);
/* Route for tag (cached). Never NULL. */
struct ls_route *ls_label_route(struct ls_label *l, const char *tag, size_t len);
void ls_label_destroy(struct ls_label *l);

#endif
