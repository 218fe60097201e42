/*
 * rewrite_tag_filter.c - fluent-plugin-rewrite-tag-filter (2.4, bundled with td-agent):
 * an output that gives a record a new tag from the first <rule> whose pattern matches one
 * of its fields, and emits it again from the top of its label, so every filter and
 * <match> sees it under the new tag, exactly as the plugin's router.emit does.
 *
 * The tag template takes $1.. (the pattern's groups), ${tag} / __TAG__,
 * ${tag_parts[N]} and ${hostname} / __HOSTNAME__, by the plugin's own token rule
 * (/\${[a-z_]+(\[[0-9]+\])?}|__[A-Z_]+__/): so, as in the plugin, __TAG_PARTS[N]__ is not
 * a token and stays in the tag as written. The v0.12 form `rewriteruleN key pattern tag`
 * (plugin 1.x, where a pattern starting with '!' inverts it) is translated into rules in
 * numeric order instead of being refused as 2.x does, so td-agent 2 files run unchanged.
 *
 * A rule whose new tag matches the <match> it came from loops in fluentd until the Ruby
 * stack overflows; here the core stops the record after LS_ROUTE_DEPTH_MAX re-emits (to
 * @ERROR, with a warning). ${hostname} is gethostname(), or, with hostname_command, that
 * command's output run once at start by /bin/sh (the plugin's `#{hostname_command}`.chomp).
 */
#include "plugin.h"
#include "parser.h"
#include "json.h"
#include "log.h"

#include <stdio.h>

struct rtf_rule {
    struct ls_accessor key;
    struct ls_regex *re;
    char *pattern;
    char *tag;
    char *label;
    bool invert;
    const char *file;
    int line;
};

struct rtf_ctx {
    bool capitalize;
    char *remove_tag_prefix;
    char *remove_tag_regexp;
    char *hostname_command;
    int emit_mode;
    struct ls_regex *remove_re;
    struct rtf_rule *rules;
    size_t nrules;
    char hostname[256];
    /* scratch for one record: the key's text, the tag after $N, after placeholders. A nested
     * call (a re-emitted record reaching this output again) may reuse them: each is done with
     * before the record is emitted. */
    struct ls_buf vb, tb, nb;
};

/* one <rule> section, bound through rule_params */
struct rtf_rule_conf {
    char *key;
    char *pattern;
    char *tag;
    char *label;
    bool invert;
};

static const struct ls_param rule_params[] = {
    { "key", LS_P_STR, NULL, LS_PF_REQUIRED, offsetof(struct rtf_rule_conf, key), NULL, NULL,
      NULL, 0, 0 },
    { "pattern", LS_P_STR, NULL, LS_PF_REQUIRED, offsetof(struct rtf_rule_conf, pattern), NULL,
      NULL, NULL, 0, 0 },
    { "tag", LS_P_STR, NULL, LS_PF_REQUIRED, offsetof(struct rtf_rule_conf, tag), NULL, NULL, NULL,
      0, 0 },
    { "label", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct rtf_rule_conf, label), NULL, NULL,
      NULL, 0, 0 },
    { "invert", LS_P_BOOL, "false", 0, offsetof(struct rtf_rule_conf, invert), NULL, NULL, NULL,
      0, 0 },
    LS_PARAM_END
};

static const struct ls_param rtf_params[] = {
    { "capitalize_regex_backreference", LS_P_BOOL, "false", 0,
      offsetof(struct rtf_ctx, capitalize),
      "capitalize each $N (first letter up, the rest down, as Ruby's capitalize)", NULL, NULL, 0,
      0 },
    { "remove_tag_prefix", LS_P_STR, NULL, LS_PF_NULLABLE,
      offsetof(struct rtf_ctx, remove_tag_prefix),
      "strip this prefix (and a following '.') from the tag seen by ${tag} and ${tag_parts[N]}",
      NULL, NULL, 0, 0 },
    { "remove_tag_regexp", LS_P_STR, NULL, LS_PF_NULLABLE,
      offsetof(struct rtf_ctx, remove_tag_regexp),
      "strip the first match of this regexp from the tag seen by the placeholders (exclusive "
      "with remove_tag_prefix)", NULL, NULL, 0, 0 },
    { "hostname_command", LS_P_STR, NULL, LS_PF_NULLABLE,
      offsetof(struct rtf_ctx, hostname_command),
      "command whose output is ${hostname}, run once at start (default: gethostname())", NULL,
      NULL, 0, 0 },
    { "emit_mode", LS_P_ENUM, "batch", 0, offsetof(struct rtf_ctx, emit_mode),
      "accepted; records are re-emitted one by one in either mode", NULL, "record|batch", 0, 0 },
    { "rule: key", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "(required) field to test: a key, or a record accessor `$.a.b` / `$['a']['b']`", NULL, NULL,
      0, 0 },
    { "rule: pattern", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "(required) regexp, /re/ or /re/i or bare", NULL, NULL, 0, 0 },
    { "rule: tag", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "(required) new tag: `$1`.., `${tag}`, `__TAG__`, `${tag_parts[N]}`, `${hostname}`, "
      "`__HOSTNAME__`",
      NULL, NULL, 0, 0 },
    { "rule: label", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "emit into this `<label>` instead of the top of the current one", NULL, NULL, 0, 0 },
    { "rule: invert", LS_P_BOOL, "false", LS_PF_NO_STORE, 0,
      "fire when the pattern does not match (also for a missing key)", NULL, NULL, 0, 0 },
    { "rewriteruleN", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "v0.12 form 'key pattern tag' (N from 1; '!pattern' inverts), read as `<rule>`s in order",
      NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static int add_rule(struct rtf_ctx *ctx, const char *key, bool accessor, const char *pattern,
                    const char *tag, const char *label, bool invert, const char *file, int line,
                    char *err, size_t errlen)
{
    struct rtf_rule *r;
    char msg[400];
    size_t i;

    for (i = 0; i < ctx->nrules; i++) {
        if (strcmp(ctx->rules[i].key.spec, key) == 0 && ctx->rules[i].invert == invert &&
            strcmp(ctx->rules[i].pattern, pattern) == 0) {
            snprintf(err, errlen, "%s:%d: duplicated rewriterules (key '%s', pattern '%s')", file,
                     line, key, pattern);
            return LS_ERROR;
        }
    }
    if ((strstr(tag, "${tag_parts[") && strstr(tag, "..")) ||
        (strstr(tag, "__TAG_PARTS[") && strstr(tag, ".."))) {
        snprintf(err, errlen, "%s:%d: ${tag_parts[n]} and __TAG_PARTS[n]__ do not take a range "
                 "('%s')", file, line, tag);
        return LS_ERROR;
    }
    ctx->rules = ls_realloc(ctx->rules, (ctx->nrules + 1) * sizeof(*ctx->rules));
    r = &ctx->rules[ctx->nrules++];
    memset(r, 0, sizeof(*r));
    r->pattern = ls_strdup(pattern);
    r->tag = ls_strdup(tag);
    r->label = label && *label ? ls_strdup(label) : NULL;
    r->invert = invert;
    r->file = file;
    r->line = line;
    if (accessor) {
        if (ls_accessor_compile(&r->key, key, msg, sizeof(msg)) != LS_OK) {
            snprintf(err, errlen, "%s:%d: %s", file, line, msg);
            return LS_ERROR;
        }
    } else {
        /* v0.12 keys are plain record keys, never accessors */
        memset(&r->key, 0, sizeof(r->key));
        r->key.spec = ls_strdup(key);
        r->key.steps = ls_calloc(1, sizeof(*r->key.steps));
        r->key.steps[0].key = ls_strdup(key);
        r->key.steps[0].key_len = strlen(key);
        r->key.n = 1;
    }
    r->re = ls_regex_compile(pattern, false, msg, sizeof(msg));
    if (r->re == NULL) {
        snprintf(err, errlen, "%s:%d: %s", file, line, msg);
        return LS_ERROR;
    }
    if (strstr(tag, "__TAG_PARTS[")) {
        ls_warn("%s:%d: rewrite_tag_filter leaves __TAG_PARTS[N]__ in the tag as written (its "
                "placeholder rule never matches it); write ${tag_parts[N]}", file, line);
    }
    return LS_OK;
}

/* v0.12: rewriteruleN "key pattern tag"; the pattern may hold spaces (lazily matched). */
static int add_v012_rules(struct rtf_ctx *ctx, struct ls_conf_section *sec, char *err,
                          size_t errlen)
{
    long n, max = 0;
    struct ls_conf_param *p;

    for (p = sec->params; p; p = p->next) {
        if (strncmp(p->key, "rewriterule", 11) == 0) {
            char *end;
            n = strtol(p->key + 11, &end, 10);
            if (end == p->key + 11 || *end || n < 1) {
                snprintf(err, errlen, "%s:%d: '%s' is not rewriteruleN with N from 1", p->file,
                         p->line, p->key);
                return LS_ERROR;
            }
            if (n > max) {
                max = n;
            }
        }
    }
    /* plugin 1.x: rewriterule1..9 must not skip a number ("jump of rewriterule index") */
    for (n = 2; n <= 9 && n <= max; n++) {
        char name[32];
        snprintf(name, sizeof(name), "rewriterule%ld", n);
        p = ls_conf_get_param(sec, name);
        snprintf(name, sizeof(name), "rewriterule%ld", n - 1);
        if (p && ls_conf_get_param(sec, name) == NULL) {
            snprintf(err, errlen, "%s:%d: jump of rewriterule index found: %s without %s",
                     p->file, p->line, p->key, name);
            return LS_ERROR;
        }
    }
    for (n = 1; n <= max; n++) {
        char name[32], *v, *key, *pat, *tag;
        size_t len;
        bool invert = false;
        int rc;

        snprintf(name, sizeof(name), "rewriterule%ld", n);
        p = ls_conf_get_param(sec, name);
        if (p == NULL) {
            continue;
        }
        p->used = true;
        v = ls_strdup(p->value);
        len = strlen(v);
        while (len && (v[len - 1] == ' ' || v[len - 1] == '\t')) {
            v[--len] = '\0';
        }
        key = v;
        while (*key == ' ' || *key == '\t') {
            key++;
        }
        pat = key + strcspn(key, " \t");
        tag = strrchr(v, ' ');
        if (strrchr(v, '\t') > tag) {
            tag = strrchr(v, '\t');
        }
        if (*pat == '\0' || tag == NULL || tag < pat) {
            snprintf(err, errlen, "%s:%d: missing values at %s '%s' (expected: key pattern tag)",
                     p->file, p->line, name, p->value);
            ls_free(v);
            return LS_ERROR;
        }
        *pat++ = '\0';
        *tag++ = '\0';
        while (*pat == ' ' || *pat == '\t') {
            pat++;
        }
        len = strlen(pat);
        while (len && (pat[len - 1] == ' ' || pat[len - 1] == '\t')) {
            pat[--len] = '\0';
        }
        if (len == 0) {
            snprintf(err, errlen, "%s:%d: missing values at %s '%s' (expected: key pattern tag)",
                     p->file, p->line, name, p->value);
            ls_free(v);
            return LS_ERROR;
        }
        if (len >= 2 && pat[0] == '"' && pat[len - 1] == '"') {
            pat[len - 1] = '\0';     /* plugin 1.x: deprecated quotes around the pattern */
            pat++;
        }
        if (pat[0] == '!') {
            invert = true;
            pat++;
        }
        rc = add_rule(ctx, key, false, pat, tag, NULL, invert, p->file, p->line, err, errlen);
        ls_free(v);
        if (rc != LS_OK) {
            return rc;
        }
    }
    return LS_OK;
}

static int rtf_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct rtf_ctx *ctx = ins->ctx;
    struct ls_conf_section *s;
    struct ls_conf_param *p;
    char msg[400];

    ls_buf_init(&ctx->vb, 0);
    ls_buf_init(&ctx->tb, 0);
    ls_buf_init(&ctx->nb, 0);
    if (ctx->remove_tag_prefix && ctx->remove_tag_regexp) {
        ls_conf_param_error(sec, "remove_tag_regexp", err, errlen,
                            "remove_tag_prefix and remove_tag_regexp are exclusive");
        return LS_ERROR;
    }
    p = ls_conf_get_param(sec, "add_tag_prefix");
    if (p) {
        p->used = true;
        ls_warn("%s:%d: rewrite_tag_filter has no 'add_tag_prefix' (no version had it); fluentd "
                "ignores it and so does logship: write the prefix into each <rule> tag", p->file,
                p->line);
    }
    if (ctx->hostname_command) {
        /* Ruby's backticks: the command's stdout, one trailing newline chomped; a command that
         * fails gives what it printed (often nothing) */
        FILE *fp = popen(ctx->hostname_command, "r");
        size_t n = 0;
        if (fp == NULL) {
            ls_conf_param_error(sec, "hostname_command", err, errlen,
                                "cannot run hostname_command '%s': %s", ctx->hostname_command,
                                strerror(errno));
            return LS_ERROR;
        }
        n = fread(ctx->hostname, 1, sizeof(ctx->hostname) - 1, fp);
        (void)pclose(fp);
        ctx->hostname[n] = '\0';
        if (n && ctx->hostname[n - 1] == '\n') {
            ctx->hostname[--n] = '\0';
            if (n && ctx->hostname[n - 1] == '\r') {
                ctx->hostname[--n] = '\0';
            }
        }
    } else if (gethostname(ctx->hostname, sizeof(ctx->hostname) - 1) != 0) {
        snprintf(ctx->hostname, sizeof(ctx->hostname), "localhost");
    }
    if (ctx->remove_tag_prefix || ctx->remove_tag_regexp) {
        struct ls_buf b;
        const char *c;
        ls_buf_init(&b, 0);
        if (ctx->remove_tag_prefix) {
            /* the plugin's /^#{Regexp.escape(prefix)}\.?/ */
            ls_buf_putc(&b, '^');
            for (c = ctx->remove_tag_prefix; *c; c++) {
                if (strchr("\\^$.|?*+()[]{}/ -#", *c)) {
                    ls_buf_putc(&b, '\\');
                }
                ls_buf_putc(&b, *c);
            }
            ls_buf_append(&b, "\\.?", 3);
        } else {
            ls_buf_append(&b, ctx->remove_tag_regexp, strlen(ctx->remove_tag_regexp));
        }
        ctx->remove_re = ls_regex_compile(ls_buf_cstr(&b), false, msg, sizeof(msg));
        ls_buf_release(&b);
        if (ctx->remove_re == NULL) {
            ls_conf_param_error(sec, ctx->remove_tag_prefix ? "remove_tag_prefix"
                                                            : "remove_tag_regexp",
                                err, errlen, "%s", msg);
            return LS_ERROR;
        }
    }
    for (s = sec->children; s; s = s->next) {
        struct rtf_rule_conf rc;
        int r;
        if (strcmp(s->name, "rule") != 0) {
            continue;
        }
        if (ls_param_bind(rule_params, s, &rc, err, errlen) != LS_OK) {
            ls_param_release(rule_params, &rc);
            return LS_ERROR;
        }
        r = add_rule(ctx, rc.key, true, rc.pattern, rc.tag, rc.label, rc.invert, s->file, s->line,
                     err, errlen);
        ls_param_release(rule_params, &rc);
        if (r != LS_OK) {
            return LS_ERROR;
        }
    }
    if (add_v012_rules(ctx, sec, err, errlen) != LS_OK) {
        return LS_ERROR;
    }
    if (ctx->nrules == 0) {
        snprintf(err, errlen, "%s:%d: missing rewriterules: rewrite_tag_filter needs a <rule> "
                 "(key, pattern, tag)", sec->file, sec->line);
        return LS_ERROR;
    }
    return LS_OK;
}

/* Ruby's String#capitalize on ASCII letters */
static void put_capitalized(struct ls_buf *b, const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        char c = s[i];
        if (i == 0 && c >= 'a' && c <= 'z') {
            c = (char)(c - 'a' + 'A');
        } else if (i > 0 && c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        ls_buf_putc(b, c);
    }
}

/* the N-th part of tag split on '.' (Ruby's split: trailing empty parts dropped) */
static bool tag_part(const char *tag, size_t len, long want, const char **out, size_t *olen)
{
    size_t k, start = 0;
    long i = 0;

    while (len && tag[len - 1] == '.') {
        len--;
    }
    if (len == 0) {
        return false;
    }
    for (k = 0; k <= len; k++) {
        if (k == len || tag[k] == '.') {
            if (i == want) {
                *out = tag + start;
                *olen = k - start;
                return true;
            }
            i++;
            start = k + 1;
        }
    }
    return false;
}

/* Replace placeholder tokens of in into out; tag is the (prefix-stripped) tag. */
static void expand_placeholders(struct ls_instance *ins, const char *in, size_t n, const char *tag,
                                size_t tag_len, struct ls_buf *out)
{
    struct rtf_ctx *ctx = ins->ctx;
    size_t i = 0;

    while (i < n) {
        size_t j = i, tok = 0;
        if (in[i] == '$' && i + 1 < n && in[i + 1] == '{') {
            j = i + 2;
            while (j < n && ((in[j] >= 'a' && in[j] <= 'z') || in[j] == '_')) {
                j++;
            }
            if (j > i + 2) {
                size_t k = j;
                if (k < n && in[k] == '[') {
                    size_t d = k + 1;
                    while (d < n && in[d] >= '0' && in[d] <= '9') {
                        d++;
                    }
                    if (d > k + 1 && d < n && in[d] == ']') {
                        k = d + 1;
                    }
                }
                if (k < n && in[k] == '}') {
                    tok = k + 1 - i;
                }
            }
        } else if (in[i] == '_' && i + 1 < n && in[i + 1] == '_') {
            /* __[A-Z_]+__, leftmost-longest as Ruby's greedy match with backtracking */
            size_t k = i + 2, end = 0;
            while (k < n && ((in[k] >= 'A' && in[k] <= 'Z') || in[k] == '_')) {
                k++;
                if (k - i >= 5 && in[k - 1] == '_' && in[k - 2] == '_') {
                    end = k;
                }
            }
            if (end) {
                tok = end - i;
            }
        }
        if (tok == 0) {
            /* copy up to the next character that may start a token */
            j = i + 1;
            while (j < n && in[j] != '$' && in[j] != '_') {
                j++;
            }
            ls_buf_append(out, in + i, j - i);
            i = j;
            continue;
        }
        {
            const char *t = in + i;
            const char *part;
            size_t plen;
            if ((tok == 6 && memcmp(t, "${tag}", 6) == 0) ||
                (tok == 7 && memcmp(t, "__TAG__", 7) == 0)) {
                ls_buf_append(out, tag, tag_len);
            } else if ((tok == 11 && memcmp(t, "${hostname}", 11) == 0) ||
                       (tok == 12 && memcmp(t, "__HOSTNAME__", 12) == 0)) {
                ls_buf_append(out, ctx->hostname, strlen(ctx->hostname));
            } else if (tok > 13 && memcmp(t, "${tag_parts[", 12) == 0 &&
                       tag_part(tag, tag_len, strtol(t + 12, NULL, 10), &part, &plen)) {
                ls_buf_append(out, part, plen);
            } else {
                ls_plg_warn(ins, "unknown placeholder found: %.*s (tag %.*s)", (int)tok, t,
                            (int)tag_len, tag);
            }
        }
        i += tok;
    }
}

static int rtf_emit(struct ls_instance *ins, const struct ls_record *rec)
{
    struct rtf_ctx *ctx = ins->ctx;
    const char *tag = rec->tag;
    size_t tag_len = rec->tag_len, i;
    struct ls_buf *vb = &ctx->vb, *tb = &ctx->tb, *nb = &ctx->nb;
    struct rtf_rule *fired = NULL;
    struct ls_record *copy;
    int rc;

    if (ctx->remove_re && ls_regex_search(ctx->remove_re, tag, tag_len) == 1) {
        size_t s, e;
        if (ls_regex_group(ctx->remove_re, 0, &s, &e)) {
            char *t = ls_arena_alloc(rec->arena, tag_len - (e - s) + 1);
            memcpy(t, tag, s);
            memcpy(t + s, tag + e, tag_len - e);
            tag_len -= e - s;
            t[tag_len] = '\0';
            tag = t;
        }
    }
    ls_buf_reset(nb);
    for (i = 0; i < ctx->nrules && fired == NULL; i++) {
        struct rtf_rule *r = &ctx->rules[i];
        struct ls_value v;
        int m;

        ls_buf_reset(vb);
        if (ls_accessor_get(&r->key, rec, &v)) {
            ls_ruby_put_value(vb, &v, false);     /* the plugin's .to_s */
        }
        if (vb->len == 0 && !r->invert) {
            continue;
        }
        m = ls_regex_search(r->re, vb->p ? vb->p : "", vb->len);
        if (m < 0 || (r->invert ? m == 1 : m == 0)) {
            continue;
        }
        ls_buf_reset(tb);
        if (!r->invert) {
            /* every $ followed by digits is one back-reference ($10 is group ten) */
            const char *s = r->tag;
            while (*s) {
                if (*s == '$' && s[1] >= '0' && s[1] <= '9') {
                    char *end;
                    unsigned long g = strtoul(s + 1, &end, 10);
                    size_t gs, ge;
                    if (g > 0 && g < 65536 && ls_regex_group(r->re, (unsigned)g, &gs, &ge)) {
                        if (ctx->capitalize) {
                            put_capitalized(tb, vb->p + gs, ge - gs);
                        } else {
                            ls_buf_append(tb, vb->p + gs, ge - gs);
                        }
                    }
                    s = end;
                } else {
                    size_t run = strcspn(s + 1, "$") + 1;
                    ls_buf_append(tb, s, run);
                    s += run;
                }
            }
        } else {
            ls_buf_append(tb, r->tag, strlen(r->tag));
        }
        expand_placeholders(ins, tb->p ? tb->p : "", tb->len, tag, tag_len, nb);
        fired = r;
    }
    rc = LS_OK;
    if (fired == NULL || (fired->label == NULL && nb->len == rec->tag_len &&
                          memcmp(nb->p ? nb->p : "", rec->tag, nb->len) == 0)) {
        ls_plg_trace(ins, "tag has not been rewritten (tag %.*s)", (int)rec->tag_len, rec->tag);
    } else {
        copy = ls_output_reemit_copy(ins, rec);
        copy->tag = ls_arena_memdup(rec->arena, nb->p ? nb->p : "", nb->len);
        copy->tag_len = nb->len;
        rc = ls_output_reemit(ins, fired->label, copy);
    }
    return rc;
}

static void rtf_destroy(struct ls_instance *ins)
{
    struct rtf_ctx *ctx = ins->ctx;
    size_t i;

    for (i = 0; i < ctx->nrules; i++) {
        ls_accessor_release(&ctx->rules[i].key);
        ls_regex_free(ctx->rules[i].re);
        ls_free(ctx->rules[i].pattern);
        ls_free(ctx->rules[i].tag);
        ls_free(ctx->rules[i].label);
    }
    ls_free(ctx->rules);
    ls_regex_free(ctx->remove_re);
    ls_buf_release(&ctx->vb);
    ls_buf_release(&ctx->tb);
    ls_buf_release(&ctx->nb);
}

const struct ls_plugin ls_plugin_out_rewrite_tag_filter = {
    .name = "rewrite_tag_filter",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "re-emit records under a tag built from a field's regexp match "
                   "(fluent-plugin-rewrite-tag-filter)",
    .params = rtf_params,
    .ctx_size = sizeof(struct rtf_ctx),
    .init = rtf_init,
    .destroy = rtf_destroy,
    .output_flags = LS_OUT_UNBUFFERED,
    .emit = rtf_emit,
};
