/*
 * grep.c - fluentd's filter_grep: keep records whose fields match every
 * <regexp> and drop those matching any <exclude> (v1 sections, with
 * <and>/<or> blocks merged into fluentd's four condition sets), and the v0.12 flat `regexpN key pattern` /
 * `excludeN key pattern` forms. Patterns are PCRE2 with JIT; a `/re/flags`
 * pattern takes Ruby's i (caseless) and m (dotall) flags.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "plugin.h"
#include "log.h"
#include "parser.h"

#include <pcre2.h>
#include <stdio.h>

struct grep_rule {
    char *key;
    struct ls_accessor acc;     /* record_accessor: "$.a.b" nested, else one top-level key */
    pcre2_code *re;
};

/* a group: all rules (and) or any rule (or) must match */
struct grep_group {
    struct grep_rule *rules;
    size_t n;
    bool is_or;
};

/*
 * fluentd's four condition sets (filter_grep.rb configure): a record is dropped when a rule of
 * KEEP_AND fails, when KEEP_OR has rules and none matches, when DROP_AND has rules and all
 * match, or when a rule of DROP_OR matches.
 */
enum { KEEP_AND, KEEP_OR, DROP_AND, DROP_OR, GREP_SETS };

struct grep_ctx {
    struct grep_group set[GREP_SETS];
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
    if (ls_pcre2_jit_wanted()) {
        pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    }
    return re;
}

static int add_rule(struct grep_group *g, const char *key, const char *pattern, const char *file,
                    int line, const char *in, char *err, size_t errlen)
{
    char msg[300];
    pcre2_code *re;

    if (key == NULL || pattern == NULL) {
        snprintf(err, errlen, "%s:%d: 'key' and 'pattern' are required in a grep rule", file, line);
        return LS_ERROR;
    }
    /* a set is keyed by the key in fluentd: the same key twice in one set is refused */
    for (size_t i = 0; i < g->n; i++) {
        if (strcmp(g->rules[i].key, key) == 0) {
            snprintf(err, errlen, "%s:%d: Duplicate key%s%s: %s", file, line, in ? " in " : "",
                     in ? in : "", key);
            return LS_ERROR;
        }
    }
    re = compile_pattern(pattern, msg, sizeof(msg));
    if (re == NULL) {
        snprintf(err, errlen, "%s:%d: %s", file, line, msg);
        return LS_ERROR;
    }
    g->rules = ls_realloc(g->rules, (g->n + 1) * sizeof(*g->rules));
    if (ls_accessor_compile(&g->rules[g->n].acc, key, msg, sizeof(msg)) != LS_OK) {
        pcre2_code_free(re);
        snprintf(err, errlen, "%s:%d: %s", file, line, msg);
        return LS_ERROR;
    }
    g->rules[g->n].key = ls_strdup(key);
    g->rules[g->n].re = re;
    g->n++;
    return LS_OK;
}

static int rule_section(struct grep_group *g, struct ls_conf_section *s, const char *in,
                        char *err, size_t errlen)
{
    return add_rule(g, ls_conf_get(s, "key"), ls_conf_get(s, "pattern"), s->file, s->line, in,
                    err, errlen);
}

static int grep_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct grep_ctx *ctx = ins->ctx;
    struct ls_conf_section *s;
    struct ls_conf_param *p;

    ctx->md = pcre2_match_data_create(1, NULL);
    ctx->set[KEEP_OR].is_or = ctx->set[DROP_OR].is_or = true;
    for (s = sec->children; s; s = s->next) {
        if (strcmp(s->name, "regexp") == 0 || strcmp(s->name, "exclude") == 0) {
            if (rule_section(&ctx->set[s->name[0] == 'r' ? KEEP_AND : DROP_OR], s, NULL, err,
                             errlen) != LS_OK) {
                return LS_ERROR;
            }
        } else if (strcmp(s->name, "and") == 0 || strcmp(s->name, "or") == 0) {
            bool is_or = s->name[0] == 'o';
            bool seen_keep = false, seen_drop = false;
            char in[8];
            struct ls_conf_section *c;

            snprintf(in, sizeof(in), "<%s>", s->name);
            for (c = s->children; c; c = c->next) {
                bool keep = strcmp(c->name, "regexp") == 0;

                if (!keep && strcmp(c->name, "exclude") != 0) {
                    snprintf(err, errlen, "%s:%d: unexpected <%s> in <%s>", c->file, c->line,
                             c->name, s->name);
                    return LS_ERROR;
                }
                seen_keep |= keep;
                seen_drop |= !keep;
                if (seen_keep && seen_drop) {
                    snprintf(err, errlen, "%s:%d: Do not specify both <regexp> and <exclude> in "
                             "<%s>", s->file, s->line, s->name);
                    return LS_ERROR;
                }
                if (rule_section(&ctx->set[keep ? (is_or ? KEEP_OR : KEEP_AND)
                                                : (is_or ? DROP_OR : DROP_AND)],
                                 c, in, err, errlen) != LS_OK) {
                    return LS_ERROR;
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
            rc = add_rule(&ctx->set[k ? KEEP_AND : DROP_OR], key, sp, p->file, p->line, NULL, err,
                          errlen);
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
    struct ls_value v;
    const char *text;
    size_t len;

    /* fluentd matches against record_accessor's value .to_s: a missing key is nil, so "" */
    if (!ls_accessor_get(&r->acc, rec, &v)) {
        text = "";
        len = 0;
    } else {
        text = ls_value_to_text(arena, &v, &len);
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
    struct ls_arena *a = rec->arena;

    if (ctx->set[KEEP_AND].n && !group_matches(ctx, &ctx->set[KEEP_AND], rec, a)) {
        return LS_DECLINED;
    }
    if (ctx->set[KEEP_OR].n && !group_matches(ctx, &ctx->set[KEEP_OR], rec, a)) {
        return LS_DECLINED;
    }
    if (ctx->set[DROP_AND].n && group_matches(ctx, &ctx->set[DROP_AND], rec, a)) {
        return LS_DECLINED;
    }
    if (ctx->set[DROP_OR].n && group_matches(ctx, &ctx->set[DROP_OR], rec, a)) {
        return LS_DECLINED;
    }
    return LS_OK;
}

static void grep_destroy(struct ls_instance *ins)
{
    struct grep_ctx *ctx = ins->ctx;

    for (int k = 0; k < GREP_SETS; k++) {
        for (size_t j = 0; j < ctx->set[k].n; j++) {
            ls_free(ctx->set[k].rules[j].key);
            ls_accessor_release(&ctx->set[k].rules[j].acc);
            pcre2_code_free(ctx->set[k].rules[j].re);
        }
        ls_free(ctx->set[k].rules);
    }
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
