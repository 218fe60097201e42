/*
 * grep.c - fluentd's filter_grep: keep records whose fields match every
 * <regexp> and drop those matching any <exclude> (v1 sections, with
 * <and>/<or> groups), and the v0.12 flat `regexpN key pattern` /
 * `excludeN key pattern` forms. Patterns are PCRE2 with JIT; a `/re/flags`
 * pattern takes Ruby's i (caseless) and m (dotall) flags.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "plugin.h"
#include "log.h"

#include <pcre2.h>
#include <stdio.h>

struct grep_rule {
    char *key;
    pcre2_code *re;
};

/* a group: all rules (and) or any rule (or) must match */
struct grep_group {
    struct grep_rule *rules;
    size_t n;
    bool is_or;
};

struct grep_ctx {
    struct grep_group *keep;      /* every group must be satisfied */
    size_t nkeep;
    struct grep_group *drop;      /* any satisfied group drops the record */
    size_t ndrop;
    pcre2_match_data *md;
};

static pcre2_code *compile_pattern(const char *pat, char *msg, size_t msglen)
{
    size_t len = strlen(pat);
    uint32_t opts = 0;
    const char *body = pat;
    size_t blen = len;
    pcre2_code *re;
    int ec;
    PCRE2_SIZE eo;

    if (len >= 2 && pat[0] == '/') {
        const char *end = strrchr(pat, '/');
        if (end > pat) {
            const char *f;
            for (f = end + 1; *f; f++) {
                if (*f == 'i') {
                    opts |= PCRE2_CASELESS;
                } else if (*f == 'm') {
                    opts |= PCRE2_DOTALL;
                } else if (*f == 'x') {
                    opts |= PCRE2_EXTENDED;
                } else {
                    snprintf(msg, msglen, "unknown regexp flag '%c'", *f);
                    return NULL;
                }
            }
            body = pat + 1;
            blen = (size_t)(end - pat - 1);
        }
    }
    re = pcre2_compile((PCRE2_SPTR)body, blen, opts, &ec, &eo, NULL);
    if (re == NULL) {
        PCRE2_UCHAR m[200];
        pcre2_get_error_message(ec, m, sizeof(m));
        snprintf(msg, msglen, "invalid pattern '%s': %s (at offset %zu)", pat, m, (size_t)eo);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

static int add_rule(struct grep_group *g, const char *key, const char *pattern, const char *file,
                    int line, char *err, size_t errlen)
{
    char msg[300];
    pcre2_code *re;

    if (key == NULL || pattern == NULL) {
        snprintf(err, errlen, "%s:%d: 'key' and 'pattern' are required in a grep rule", file, line);
        return LS_ERROR;
    }
    re = compile_pattern(pattern, msg, sizeof(msg));
    if (re == NULL) {
        snprintf(err, errlen, "%s:%d: %s", file, line, msg);
        return LS_ERROR;
    }
    g->rules = ls_realloc(g->rules, (g->n + 1) * sizeof(*g->rules));
    /* record_accessor "$.key" is accepted for top-level keys */
    if (key[0] == '$' && key[1] == '.') {
        key += 2;
    }
    g->rules[g->n].key = ls_strdup(key);
    g->rules[g->n].re = re;
    g->n++;
    return LS_OK;
}

static struct grep_group *new_group(struct grep_group **v, size_t *n, bool is_or)
{
    struct grep_group *g;

    *v = ls_realloc(*v, (*n + 1) * sizeof(**v));
    g = &(*v)[(*n)++];
    memset(g, 0, sizeof(*g));
    g->is_or = is_or;
    return g;
}

static int rule_section(struct grep_group *g, struct ls_conf_section *s, char *err, size_t errlen)
{
    return add_rule(g, ls_conf_get(s, "key"), ls_conf_get(s, "pattern"), s->file, s->line, err,
                    errlen);
}

static int grep_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct grep_ctx *ctx = ins->ctx;
    struct ls_conf_section *s;
    struct ls_conf_param *p;

    ctx->md = pcre2_match_data_create(1, NULL);
    for (s = sec->children; s; s = s->next) {
        bool is_keep = strcmp(s->name, "regexp") == 0;
        bool is_drop = strcmp(s->name, "exclude") == 0;
        if (is_keep || is_drop) {
            /* each <regexp> must match (and); any <exclude> drops (or) */
            struct grep_group *g = is_keep ? new_group(&ctx->keep, &ctx->nkeep, false)
                                           : new_group(&ctx->drop, &ctx->ndrop, false);
            if (rule_section(g, s, err, errlen) != LS_OK) {
                return LS_ERROR;
            }
        } else if (strcmp(s->name, "and") == 0 || strcmp(s->name, "or") == 0) {
            bool is_or = s->name[0] == 'o';
            struct ls_conf_section *c;
            struct grep_group *gk = NULL, *gd = NULL;
            for (c = s->children; c; c = c->next) {
                struct grep_group **gp;
                if (strcmp(c->name, "regexp") == 0) {
                    gp = &gk;
                    if (*gp == NULL) {
                        *gp = new_group(&ctx->keep, &ctx->nkeep, is_or);
                    }
                } else if (strcmp(c->name, "exclude") == 0) {
                    gp = &gd;
                    if (*gp == NULL) {
                        /* <and><exclude>...: drop when all match; <or>: when any matches */
                        *gp = new_group(&ctx->drop, &ctx->ndrop, is_or);
                    }
                } else {
                    snprintf(err, errlen, "%s:%d: unexpected <%s> in <%s>", c->file, c->line,
                             c->name, s->name);
                    return LS_ERROR;
                }
                if (rule_section(*gp, c, err, errlen) != LS_OK) {
                    return LS_ERROR;
                }
                /* pointers into ctx->keep/drop move when they grow: refetch */
                if (gp == &gk) {
                    gk = &ctx->keep[ctx->nkeep - 1];
                } else {
                    gd = &ctx->drop[ctx->ndrop - 1];
                }
            }
        }
    }
    /* v0.12: regexp1 "key pattern" ... exclude20 */
    for (p = sec->params; p; p = p->next) {
        bool k = strncmp(p->key, "regexp", 6) == 0 && p->key[6] >= '1' && p->key[6] <= '9';
        bool d = strncmp(p->key, "exclude", 7) == 0 && p->key[7] >= '1' && p->key[7] <= '9';
        if (k || d) {
            const char *sp = strchr(p->value, ' ');
            char *key;
            int rc;
            p->used = true;
            if (sp == NULL) {
                snprintf(err, errlen, "%s:%d: %s needs 'key pattern'", p->file, p->line, p->key);
                return LS_ERROR;
            }
            key = ls_strndup(p->value, (size_t)(sp - p->value));
            while (*sp == ' ') {
                sp++;
            }
            rc = add_rule(k ? new_group(&ctx->keep, &ctx->nkeep, false)
                            : new_group(&ctx->drop, &ctx->ndrop, false),
                          key, sp, p->file, p->line, err, errlen);
            ls_free(key);
            if (rc != LS_OK) {
                return LS_ERROR;
            }
        }
    }
    return LS_OK;
}

static bool rule_matches(struct grep_ctx *ctx, struct grep_rule *r, const struct ls_record *rec,
                         struct ls_arena *arena)
{
    struct ls_field *f = ls_record_get(rec, r->key, strlen(r->key));
    const char *text;
    size_t len;

    /* fluentd matches against record_accessor's value .to_s: a missing key is nil, so "" */
    if (f == NULL) {
        text = "";
        len = 0;
    } else {
        text = ls_value_to_text(arena, &f->v, &len);
    }
    return pcre2_match(r->re, (PCRE2_SPTR)text, len, 0, 0, ctx->md, NULL) >= 0;
}

static bool group_matches(struct grep_ctx *ctx, struct grep_group *g, const struct ls_record *rec,
                          struct ls_arena *arena)
{
    size_t i;

    for (i = 0; i < g->n; i++) {
        bool m = rule_matches(ctx, &g->rules[i], rec, arena);
        if (g->is_or && m) {
            return true;
        }
        if (!g->is_or && !m) {
            return false;
        }
    }
    return !g->is_or;
}

static int grep_filter(struct ls_instance *ins, struct ls_record *rec)
{
    struct grep_ctx *ctx = ins->ctx;
    size_t i;

    for (i = 0; i < ctx->nkeep; i++) {
        if (!group_matches(ctx, &ctx->keep[i], rec, rec->arena)) {
            return LS_DECLINED;
        }
    }
    for (i = 0; i < ctx->ndrop; i++) {
        if (group_matches(ctx, &ctx->drop[i], rec, rec->arena)) {
            return LS_DECLINED;
        }
    }
    return LS_OK;
}

static void free_groups(struct grep_group *v, size_t n)
{
    size_t i, j;

    for (i = 0; i < n; i++) {
        for (j = 0; j < v[i].n; j++) {
            ls_free(v[i].rules[j].key);
            pcre2_code_free(v[i].rules[j].re);
        }
        ls_free(v[i].rules);
    }
    ls_free(v);
}

static void grep_destroy(struct ls_instance *ins)
{
    struct grep_ctx *ctx = ins->ctx;

    free_groups(ctx->keep, ctx->nkeep);
    free_groups(ctx->drop, ctx->ndrop);
    pcre2_match_data_free(ctx->md);
}

const struct ls_plugin ls_plugin_filter_grep = {
    .name = "grep",
    .kind = LS_PLUGIN_FILTER,
    .description = "keep or drop records by regular expressions on fields (fluentd's filter_grep)",
    .ctx_size = sizeof(struct grep_ctx),
    .init = grep_init,
    .destroy = grep_destroy,
    .filter = grep_filter,
};
