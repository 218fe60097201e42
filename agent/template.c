/*
 * template.c - record placeholders (see template.h). The tag helpers follow fluentd's
 * filter_record_transformer: tag_parts split on '.', tag_prefix[N] joins parts 0..N,
 * tag_suffix[N] joins N..end, negative N counts from the end.
 */
#include "template.h"
#include "json.h"

#include <stdio.h>
#include <time.h>

enum part_kind { P_LIT, P_HOST, P_TAG, P_TAG_PART, P_TAG_PREFIX, P_TAG_SUFFIX, P_TIME, P_FIELD };

struct ls_tmpl_part {
    enum part_kind kind;
    char *text;                 /* literal text */
    size_t len;
    int index;
    bool epoch;                 /* P_TIME: integer seconds */
    struct ls_accessor field;   /* P_FIELD */
};

static char hostname[256];

static struct ls_tmpl_part *add_part(struct ls_tmpl *t, enum part_kind k, const char *text,
                                     size_t len, int index)
{
    struct ls_tmpl_part *p;

    t->parts = ls_realloc(t->parts, (t->n + 1) * sizeof(*t->parts));
    p = &t->parts[t->n++];
    memset(p, 0, sizeof(*p));
    p->kind = k;
    p->text = text ? ls_strndup(text, len) : NULL;
    p->len = len;
    p->index = index;
    if (k != P_LIT) {
        t->has_placeholder = true;
    }
    return p;
}

static bool parse_index(const char *s, const char *prefix, int *index)
{
    size_t n = strlen(prefix);
    char *end;
    long v;

    if (strncmp(s, prefix, n) != 0) {
        return false;
    }
    v = strtol(s + n, &end, 10);
    if (end == s + n || strcmp(end, "]") != 0) {
        return false;
    }
    *index = (int)v;
    return true;
}

/* record["a"]['b']... into accessor steps; false when expr is anything else */
static bool parse_record_ref(const char *expr, struct ls_accessor *acc)
{
    const char *s = expr + 6;      /* after "record" */
    struct ls_buf spec;
    bool ok = true;
    char err[64];

    if (*s != '[') {
        return false;
    }
    ls_buf_init(&spec, 0);
    ls_buf_putc(&spec, '$');
    while (*s && ok) {
        char q = s[1];
        const char *e;
        if (s[0] != '[' || (q != '"' && q != '\'')) {
            ok = false;
            break;
        }
        e = strchr(s + 2, q);
        if (e == NULL || e[1] != ']' || memchr(s + 2, '\'', (size_t)(e - s - 2)) ||
            memchr(s + 2, '"', (size_t)(e - s - 2))) {
            ok = false;
            break;
        }
        ls_buf_append(&spec, "['", 2);
        ls_buf_append(&spec, s + 2, (size_t)(e - s - 2));
        ls_buf_append(&spec, "']", 2);
        s = e + 2;
    }
    if (ok && ls_accessor_compile(acc, ls_buf_cstr(&spec), err, sizeof(err)) != LS_OK) {
        ok = false;
    }
    ls_buf_release(&spec);
    return ok;
}

int ls_tmpl_compile(struct ls_tmpl *t, const char *tmpl, unsigned flags, char *msg,
                    size_t msglen)
{
    const char *s = tmpl;

    memset(t, 0, sizeof(*t));
    if (hostname[0] == '\0' && gethostname(hostname, sizeof(hostname) - 1) != 0) {
        snprintf(hostname, sizeof(hostname), "localhost");
    }
    while (*s) {
        const char *open = strstr(s, "${");
        const char *close;
        char *expr;
        int index;
        bool ok = true;

        if (open == NULL) {
            add_part(t, P_LIT, s, strlen(s), 0);
            break;
        }
        if (open > s) {
            add_part(t, P_LIT, s, (size_t)(open - s), 0);
        }
        close = strchr(open + 2, '}');
        if (close == NULL) {
            snprintf(msg, msglen, "unterminated placeholder in '%s'", tmpl);
            return LS_ERROR;
        }
        expr = ls_strndup(open + 2, (size_t)(close - open - 2));
        if (strcmp(expr, "hostname") == 0 && !(flags & LS_TMPL_NO_HOSTNAME)) {
            add_part(t, P_HOST, NULL, 0, 0);
        } else if (strcmp(expr, "tag") == 0) {
            add_part(t, P_TAG, NULL, 0, 0);
        } else if (strcmp(expr, "time") == 0) {
            add_part(t, P_TIME, NULL, 0, 0)->epoch = (flags & LS_TMPL_TIME_EPOCH) != 0;
        } else if (parse_index(expr, "tag_parts[", &index)) {
            add_part(t, P_TAG_PART, NULL, 0, index);
        } else if (!(flags & LS_TMPL_NO_TAG_FIXES) && parse_index(expr, "tag_prefix[", &index)) {
            add_part(t, P_TAG_PREFIX, NULL, 0, index);
        } else if (!(flags & LS_TMPL_NO_TAG_FIXES) && parse_index(expr, "tag_suffix[", &index)) {
            add_part(t, P_TAG_SUFFIX, NULL, 0, index);
        } else if (strncmp(expr, "record[", 7) == 0) {
            struct ls_tmpl_part *p = add_part(t, P_FIELD, NULL, 0, 0);
            ok = parse_record_ref(expr, &p->field);
        } else if (flags & LS_TMPL_KEY_SHORTCUT) {
            const char *c;
            for (c = expr; *c && ok; c++) {
                ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                     (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' || *c == '.';
            }
            if (ok && *expr) {
                char err[64];
                struct ls_tmpl_part *p = add_part(t, P_FIELD, NULL, 0, 0);
                ls_accessor_compile(&p->field, expr, err, sizeof(err));
            } else {
                ok = false;
            }
        } else {
            ok = false;
        }
        if (!ok) {
            snprintf(msg, msglen, "${%s} is a Ruby expression; logship evaluates only "
                     "%s${tag}, ${tag_parts[N]}, %s${time}, ${record[\"key\"]}%s", expr,
                     (flags & LS_TMPL_NO_HOSTNAME) ? "" : "${hostname}, ",
                     (flags & LS_TMPL_NO_TAG_FIXES) ? "" : "${tag_prefix[N]}, ${tag_suffix[N]}, ",
                     (flags & LS_TMPL_KEY_SHORTCUT) ? " and ${key}" : "");
            ls_free(expr);
            ls_tmpl_release(t);
            return LS_ERROR;
        }
        ls_free(expr);
        s = close + 1;
    }
    return LS_OK;
}

void ls_tmpl_release(struct ls_tmpl *t)
{
    size_t i;

    for (i = 0; i < t->n; i++) {
        ls_free(t->parts[i].text);
        ls_accessor_release(&t->parts[i].field);
    }
    ls_free(t->parts);
    memset(t, 0, sizeof(*t));
}

/* the N-th dot-separated part of the tag (negative from the end) */
static bool tag_part(const char *tag, size_t len, int index, const char **out, size_t *olen)
{
    int nparts = 1, i, want;
    size_t k, start = 0;

    for (k = 0; k < len; k++) {
        if (tag[k] == '.') {
            nparts++;
        }
    }
    want = index < 0 ? nparts + index : index;
    if (want < 0 || want >= nparts) {
        return false;
    }
    for (i = 0, k = 0; k <= len; k++) {
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

static void append(struct ls_buf *b, const char *p, size_t n)
{
    (void)ls_buf_append(b, p, n);
}

static void expand_part(const struct ls_tmpl_part *p, const struct ls_record *rec,
                        struct ls_buf *b)
{
    const char *s;
    size_t n;
    char tbuf[64];
    struct tm tm;
    time_t t;
    struct ls_value v;
    int i;

    switch (p->kind) {
    case P_LIT:
        append(b, p->text, p->len);
        break;
    case P_HOST:
        append(b, hostname, strlen(hostname));
        break;
    case P_TAG:
        append(b, rec->tag, rec->tag_len);
        break;
    case P_TAG_PART:
        if (tag_part(rec->tag, rec->tag_len, p->index, &s, &n)) {
            append(b, s, n);
        }
        break;
    case P_TAG_PREFIX:
        /* tag_prefix[N]: parts 0..N joined */
        for (i = 0; i <= p->index; i++) {
            if (!tag_part(rec->tag, rec->tag_len, i, &s, &n)) {
                break;
            }
            if (i) {
                append(b, ".", 1);
            }
            append(b, s, n);
        }
        break;
    case P_TAG_SUFFIX:
        /* tag_suffix[N]: parts N..end joined */
        for (i = p->index; tag_part(rec->tag, rec->tag_len, i, &s, &n); i++) {
            if (i != p->index) {
                append(b, ".", 1);
            }
            append(b, s, n);
        }
        break;
    case P_TIME:
        if (p->epoch) {
            ls_buf_printf(b, "%lld", (long long)rec->time.sec);
            break;
        }
        /* fluentd prints Time#to_s: "2026-11-21 12:00:00 +0000" */
        t = (time_t)rec->time.sec;
        localtime_r(&t, &tm);
        n = strftime(tbuf, sizeof(tbuf), "%Y-%m-%d %H:%M:%S %z", &tm);
        append(b, tbuf, n);
        break;
    case P_FIELD:
        /* Ruby's to_s: nested objects print as Hash#inspect, nil as "" */
        if (ls_accessor_get(&p->field, rec, &v)) {
            ls_ruby_put_value(b, &v, false);
        }
        break;
    }
}

void ls_tmpl_expand(const struct ls_tmpl *t, const struct ls_record *rec, struct ls_buf *b)
{
    size_t i;

    for (i = 0; i < t->n; i++) {
        expand_part(&t->parts[i], rec, b);
    }
}

struct ls_value ls_tmpl_expand_value(const struct ls_tmpl *t, const struct ls_record *rec)
{
    struct ls_buf b;
    struct ls_value v;

    if (!t->has_placeholder && t->n == 1) {
        return ls_vstr(t->parts[0].text, t->parts[0].len);
    }
    ls_buf_init(&b, 0);
    ls_tmpl_expand(t, rec, &b);
    v = ls_vstr(ls_arena_memdup(rec->arena, b.p ? b.p : "", b.len), b.len);
    ls_buf_release(&b);
    return v;
}

bool ls_tmpl_field_value(const struct ls_tmpl *t, const struct ls_record *rec,
                         struct ls_value *out)
{
    if (t->n != 1 || t->parts[0].kind != P_FIELD) {
        return false;
    }
    if (!ls_accessor_get(&t->parts[0].field, rec, out)) {
        *out = ls_vnull();
    }
    return true;
}

bool ls_tmpl_single_value(const struct ls_tmpl *t, const struct ls_record *rec,
                          struct ls_value *out)
{
    const struct ls_tmpl_part *p;
    const char *s;
    size_t n;

    if (t->n != 1 || !t->has_placeholder) {
        return false;
    }
    p = &t->parts[0];
    if (p->kind == P_FIELD) {
        return ls_tmpl_field_value(t, rec, out);
    }
    if (p->kind == P_TIME && p->epoch) {
        *out = ls_vint(rec->time.sec);
        return true;
    }
    if (p->kind == P_TAG_PART && !tag_part(rec->tag, rec->tag_len, p->index, &s, &n)) {
        *out = ls_vnull();
        return true;
    }
    *out = ls_tmpl_expand_value(t, rec);
    return true;
}
