/*
 * router.c - match patterns and per-tag route caching (see router.h).
 *
 * Patterns are translated to anchored PCRE2 regexes by the same rules as
 * fluentd's GlobMatchPattern (lib/fluent/match.rb), so corner cases agree
 * with fluentd by construction rather than by a re-derived matcher:
 *   *      -> [^.]*            (one part; may be empty)
 *   a.**   -> a(?![^.]).*      (the dot before ** is optional)
 *   **.b   -> (?:.*\.|\A)b
 *   {x,y}  -> (?:x|y)          (nestable)
 *   /re/   -> re               (raw regex)
 * Matching runs once per new tag; the result is cached.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "router.h"
#include "buf.h"
#include "log.h"

#include <pcre2.h>
#include <stdio.h>

struct ls_pattern {
    pcre2_code **re;
    size_t n;
    bool all;                 /* one of the parts is "**": matches everything */
};

static void append_escaped(struct ls_buf *b, char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_') {
        ls_buf_putc(b, c);
    } else {
        ls_buf_putc(b, '\\');
        ls_buf_putc(b, c);
    }
}

/* Translate one glob into a regex body, following match.rb step by step. */
static void glob_to_regex(const char *pat, size_t len, struct ls_buf *out)
{
    /* stack of alternation groups: each level is a list of finished alternatives */
    struct ls_buf levels[32];
    int nalts[32];
    int depth = 0;
    bool escape = false, dot = false;
    size_t i = 0;

    ls_buf_init(&levels[0], 0);
    nalts[0] = 0;
    while (i < len) {
        char c = pat[i];
        struct ls_buf *cur = &levels[depth];

        if (escape) {
            append_escaped(cur, c);
            escape = false;
            i++;
            continue;
        }
        if (c == '*' && i + 1 < len && pat[i + 1] == '*') {
            if (dot) {
                ls_buf_append(cur, "(?![^\\.])", 9);
                dot = false;
            }
            if (i + 2 < len && pat[i + 2] == '.') {
                ls_buf_append(cur, "(?:.*\\.|\\A)", 11);
                i += 3;
            } else {
                ls_buf_append(cur, ".*", 2);
                i += 2;
            }
            continue;
        }
        if (dot) {
            ls_buf_append(cur, "\\.", 2);
            dot = false;
        }
        if (c == '\\') {
            escape = true;
        } else if (c == '.') {
            dot = true;
        } else if (c == '*') {
            ls_buf_append(cur, "[^\\.]*", 6);
        } else if (c == '{' && depth + 1 < (int)LS_ARRAY_LEN(levels)) {
            /* open a group: the current text is the prefix, kept in levels[depth] */
            depth++;
            ls_buf_init(&levels[depth], 0);
            ls_buf_append(&levels[depth], "(?:", 3);
            nalts[depth] = 0;
        } else if (c == ',' && depth > 0) {
            ls_buf_putc(cur, '|');
            nalts[depth]++;
        } else if (c == '}' && depth > 0) {
            ls_buf_putc(cur, ')');
            ls_buf_append(&levels[depth - 1], cur->p, cur->len);
            ls_buf_release(cur);
            depth--;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '_') {
            ls_buf_putc(cur, c);
        } else {
            append_escaped(cur, c);
        }
        i++;
    }
    /* unclosed groups are closed, as match.rb does at the end */
    while (depth > 0) {
        struct ls_buf *cur = &levels[depth];
        ls_buf_putc(cur, ')');
        ls_buf_append(&levels[depth - 1], cur->p, cur->len);
        ls_buf_release(cur);
        depth--;
    }
    ls_buf_append(out, "\\A", 2);
    if (levels[0].len) {
        ls_buf_append(out, levels[0].p, levels[0].len);
    }
    ls_buf_append(out, "\\z", 2);
    ls_buf_release(&levels[0]);
}

struct ls_pattern *ls_pattern_compile(const char *arg, char *err, size_t errlen)
{
    struct ls_pattern *p = ls_calloc(1, sizeof(*p));
    const char *s = arg ? arg : "";
    bool any = false;

    while (*s) {
        const char *e;
        struct ls_buf re;
        pcre2_code *code;
        int ec;
        PCRE2_SIZE eo;

        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
            s++;
        }
        if (*s == '\0') {
            break;
        }
        e = s;
        while (*e && *e != ' ' && *e != '\t' && *e != '\n' && *e != '\r') {
            e++;
        }
        any = true;
        ls_buf_init(&re, 0);
        if (e - s == 2 && s[0] == '*' && s[1] == '*') {
            p->all = true;
        }
        if (e - s >= 2 && s[0] == '/' && e[-1] == '/') {
            ls_buf_append(&re, "\\A(?:", 5);
            ls_buf_append(&re, s + 1, (size_t)(e - s - 2));
            ls_buf_append(&re, ")\\z", 3);
        } else {
            glob_to_regex(s, (size_t)(e - s), &re);
        }
        code = pcre2_compile((PCRE2_SPTR)re.p, re.len, PCRE2_DOTALL, &ec, &eo, NULL);
        if (code == NULL) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(ec, msg, sizeof(msg));
            snprintf(err, errlen, "invalid match pattern '%.*s': %s", (int)(e - s), s, msg);
            ls_buf_release(&re);
            ls_pattern_free(p);
            return NULL;
        }
        p->re = ls_realloc(p->re, (p->n + 1) * sizeof(*p->re));
        p->re[p->n++] = code;
        ls_buf_release(&re);
        s = e;
    }
    if (!any) {
        p->all = true;      /* <match> with no argument means ** */
    }
    return p;
}

bool ls_pattern_match(const struct ls_pattern *p, const char *tag, size_t len)
{
    size_t i;
    bool found = false;

    if (p->all) {
        return true;
    }
    for (i = 0; i < p->n && !found; i++) {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(p->re[i], NULL);
        int rc = pcre2_match(p->re[i], (PCRE2_SPTR)tag, len, 0, 0, md, NULL);
        pcre2_match_data_free(md);
        found = rc >= 0;
    }
    return found;
}

void ls_pattern_free(struct ls_pattern *p)
{
    size_t i;

    if (p == NULL) {
        return;
    }
    for (i = 0; i < p->n; i++) {
        pcre2_code_free(p->re[i]);
    }
    ls_free(p->re);
    ls_free(p);
}

/* ---- route cache: open addressing, tag -> route ---- */

#define ROUTE_CACHE_MAX 8192

struct route_entry {
    char *tag;
    size_t len;
    uint64_t hash;
    struct ls_route *route;
};

struct ls_route_cache {
    struct route_entry *v;
    size_t cap;
    size_t n;
    /* the slot found last: a stream of records mostly has one tag, and comparing it costs
     * less than hashing the tag byte by byte (2.6% of the tail > file pipeline's
     * instructions). Whatever the slot holds after a rehash or a clear, a slot whose tag
     * equals this one's holds this tag's route. */
    size_t last;
};

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static void route_free(struct ls_route *r)
{
    ls_free(r->filters);
    ls_free(r);
}

static void cache_clear(struct ls_route_cache *c)
{
    size_t i;

    for (i = 0; i < c->cap; i++) {
        if (c->v[i].tag) {
            ls_free(c->v[i].tag);
            route_free(c->v[i].route);
        }
    }
    ls_free(c->v);
    c->v = NULL;
    c->cap = c->n = 0;
}

static void cache_insert(struct ls_route_cache *c, char *tag, size_t len, uint64_t h,
                         struct ls_route *r)
{
    size_t i;

    if ((c->n + 1) * 2 > c->cap) {
        struct route_entry *old = c->v;
        size_t oldcap = c->cap, j;
        c->cap = c->cap ? c->cap * 2 : 64;
        c->v = ls_calloc(c->cap, sizeof(*c->v));
        c->n = 0;
        for (j = 0; j < oldcap; j++) {
            if (old[j].tag) {
                cache_insert(c, old[j].tag, old[j].len, old[j].hash, old[j].route);
            }
        }
        ls_free(old);
    }
    i = h & (c->cap - 1);
    while (c->v[i].tag) {
        i = (i + 1) & (c->cap - 1);
    }
    c->v[i].tag = tag;
    c->v[i].len = len;
    c->v[i].hash = h;
    c->v[i].route = r;
    c->n++;
}

struct ls_label *ls_label_create(const char *name)
{
    struct ls_label *l = ls_calloc(1, sizeof(*l));

    l->name = ls_strdup(name);
    l->cache = ls_calloc(1, sizeof(*l->cache));
    return l;
}

int ls_label_add_rule(struct ls_label *l, bool is_match, const char *arg, struct ls_instance *ins,
                      char *err, size_t errlen)
{
    struct ls_pattern *p = ls_pattern_compile(arg, err, errlen);
    struct ls_rule *r;

    if (p == NULL) {
        return LS_ERROR;
    }
    l->rules = ls_realloc(l->rules, (l->nrules + 1) * sizeof(*l->rules));
    r = &l->rules[l->nrules++];
    r->is_match = is_match;
    r->pattern = p;
    r->arg = ls_strdup(arg ? arg : "");
    r->ins = ins;
    cache_clear(l->cache);
    return LS_OK;
}

static struct ls_route *route_compute(struct ls_label *l, const char *tag, size_t len)
{
    struct ls_route *r = ls_calloc(1, sizeof(*r));
    size_t i;

    for (i = 0; i < l->nrules; i++) {
        struct ls_rule *rule = &l->rules[i];
        if (!ls_pattern_match(rule->pattern, tag, len)) {
            continue;
        }
        if (rule->is_match) {
            r->output = rule->ins;
            break;
        }
        r->filters = ls_realloc(r->filters, (r->nfilters + 1) * sizeof(*r->filters));
        r->filters[r->nfilters++] = rule->ins;
    }
    return r;
}

struct ls_route *ls_label_route(struct ls_label *l, const char *tag, size_t len)
{
    struct ls_route_cache *c = l->cache;
    uint64_t h;
    struct ls_route *r;

    if (c->last < c->cap) {
        const struct route_entry *e = &c->v[c->last];
        if (e->tag && e->len == len && memcmp(e->tag, tag, len) == 0) {
            return e->route;
        }
    }
    h = hash_bytes(tag, len);
    if (c->cap) {
        size_t i = h & (c->cap - 1);
        while (c->v[i].tag) {
            if (c->v[i].hash == h && c->v[i].len == len && memcmp(c->v[i].tag, tag, len) == 0) {
                c->last = i;
                return c->v[i].route;
            }
            i = (i + 1) & (c->cap - 1);
        }
    }
    if (c->n >= ROUTE_CACHE_MAX) {
        cache_clear(c);     /* unbounded tag sets (tags from paths) cannot grow memory forever */
    }
    r = route_compute(l, tag, len);
    cache_insert(c, ls_strndup(tag, len), len, h, r);
    return r;
}

void ls_label_destroy(struct ls_label *l)
{
    size_t i;

    if (l == NULL) {
        return;
    }
    cache_clear(l->cache);
    ls_free(l->cache);
    for (i = 0; i < l->nrules; i++) {
        ls_pattern_free(l->rules[i].pattern);
        ls_free(l->rules[i].arg);
    }
    ls_free(l->rules);
    ls_free(l->name);
    ls_free(l);
}
