/*
 * record_transformer.c - fluentd's filter_record_transformer without Ruby.
 *
 * <record> values are templates expanded per record: ${hostname}, ${tag},
 * ${tag_parts[N]} (negative N from the end), ${tag_prefix[N]},
 * ${tag_suffix[N]}, ${time} (the event time, as fluentd prints it), and
 * ${record["key"]} / ${key} for a field of the record. A value that is a
 * single placeholder of a field keeps that field's type (fluentd's
 * auto_typecast). enable_ruby expressions cannot be evaluated in C: a
 * template that needs Ruby is a configuration error that says so.
 * Templates are parsed once at init into literal/placeholder parts.
 */
#include "plugin.h"
#include "log.h"

#include <stdio.h>
#include <time.h>

enum part_kind { P_LIT, P_HOST, P_TAG, P_TAG_PART, P_TAG_PREFIX, P_TAG_SUFFIX, P_TIME, P_FIELD };

struct part {
    enum part_kind kind;
    char *text;     /* literal text, or field name */
    size_t len;
    int index;
};

struct rt_field {
    char *key;
    struct part *parts;
    size_t nparts;
};

struct rt_ctx {
    struct ls_strv remove_keys;
    struct ls_strv keep_keys;
    bool renew_record;
    char *renew_time_key;
    bool enable_ruby;
    bool auto_typecast;
    struct rt_field *fields;
    size_t nfields;
    char hostname[256];
};

static const struct ls_param rt_params[] = {
    { "remove_keys", LS_P_ARRAY, NULL, 0, offsetof(struct rt_ctx, remove_keys),
      "keys to delete from the record", NULL, NULL, 0, 0 },
    { "keep_keys", LS_P_ARRAY, NULL, 0, offsetof(struct rt_ctx, keep_keys),
      "with renew_record: keys of the old record to keep", NULL, NULL, 0, 0 },
    { "renew_record", LS_P_BOOL, "false", 0, offsetof(struct rt_ctx, renew_record),
      "start from an empty record instead of the incoming one", NULL, NULL, 0, 0 },
    { "renew_time_key", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct rt_ctx, renew_time_key),
      "use this field (unix time) as the event time", NULL, NULL, 0, 0 },
    { "enable_ruby", LS_P_BOOL, "false", 0, offsetof(struct rt_ctx, enable_ruby),
      "accepted only for templates that need no Ruby", NULL, NULL, 0, 0 },
    { "auto_typecast", LS_P_BOOL, "true", 0, offsetof(struct rt_ctx, auto_typecast),
      "a value that is just ${field} keeps the field's type", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static void add_part(struct rt_field *f, enum part_kind k, const char *text, size_t len, int index)
{
    struct part *p;

    f->parts = ls_realloc(f->parts, (f->nparts + 1) * sizeof(*f->parts));
    p = &f->parts[f->nparts++];
    p->kind = k;
    p->text = text ? ls_strndup(text, len) : NULL;
    p->len = len;
    p->index = index;
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

static int compile_template(struct rt_field *f, const char *tmpl, char *msg, size_t msglen)
{
    const char *s = tmpl;

    while (*s) {
        const char *open = strstr(s, "${");
        const char *close;
        char *expr;
        int index;

        if (open == NULL) {
            add_part(f, P_LIT, s, strlen(s), 0);
            break;
        }
        if (open > s) {
            add_part(f, P_LIT, s, (size_t)(open - s), 0);
        }
        close = strchr(open + 2, '}');
        if (close == NULL) {
            snprintf(msg, msglen, "unterminated placeholder in '%s'", tmpl);
            return LS_ERROR;
        }
        expr = ls_strndup(open + 2, (size_t)(close - open - 2));
        if (strcmp(expr, "hostname") == 0) {
            add_part(f, P_HOST, NULL, 0, 0);
        } else if (strcmp(expr, "tag") == 0) {
            add_part(f, P_TAG, NULL, 0, 0);
        } else if (strcmp(expr, "time") == 0) {
            add_part(f, P_TIME, NULL, 0, 0);
        } else if (parse_index(expr, "tag_parts[", &index)) {
            add_part(f, P_TAG_PART, NULL, 0, index);
        } else if (parse_index(expr, "tag_prefix[", &index)) {
            add_part(f, P_TAG_PREFIX, NULL, 0, index);
        } else if (parse_index(expr, "tag_suffix[", &index)) {
            add_part(f, P_TAG_SUFFIX, NULL, 0, index);
        } else if (strncmp(expr, "record[\"", 8) == 0 || strncmp(expr, "record['", 8) == 0) {
            size_t n = strlen(expr);
            if (n < 11 || expr[n - 1] != ']' || expr[n - 2] != expr[7]) {
                snprintf(msg, msglen, "${%s} is a Ruby expression; logship evaluates only "
                         "${hostname}, ${tag}, ${tag_parts[N]}, ${tag_prefix[N]}, "
                         "${tag_suffix[N]}, ${time}, ${record[\"key\"]} and ${key}", expr);
                ls_free(expr);
                return LS_ERROR;
            }
            add_part(f, P_FIELD, expr + 8, n - 10, 0);
        } else {
            const char *c;
            for (c = expr; *c; c++) {
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                      (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' || *c == '.')) {
                    snprintf(msg, msglen, "${%s} is a Ruby expression; logship evaluates only "
                             "${hostname}, ${tag}, ${tag_parts[N]}, ${tag_prefix[N]}, "
                             "${tag_suffix[N]}, ${time}, ${record[\"key\"]} and ${key}", expr);
                    ls_free(expr);
                    return LS_ERROR;
                }
            }
            add_part(f, P_FIELD, expr, strlen(expr), 0);
        }
        ls_free(expr);
        s = close + 1;
    }
    return LS_OK;
}

static int rt_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct rt_ctx *ctx = ins->ctx;
    struct ls_conf_section *rec = ls_conf_child(sec, "record");
    struct ls_conf_param *p;

    if (gethostname(ctx->hostname, sizeof(ctx->hostname) - 1) != 0) {
        snprintf(ctx->hostname, sizeof(ctx->hostname), "localhost");
    }
    if (rec == NULL) {
        return LS_OK;
    }
    for (p = rec->params; p; p = p->next) {
        struct rt_field *f;
        char msg[512];
        size_t i;

        p->used = true;
        /* a repeated key: the later one wins, as in fluentd */
        for (i = 0; i < ctx->nfields; i++) {
            if (strcmp(ctx->fields[i].key, p->key) == 0) {
                break;
            }
        }
        if (i == ctx->nfields) {
            ctx->fields = ls_realloc(ctx->fields, (ctx->nfields + 1) * sizeof(*ctx->fields));
            f = &ctx->fields[ctx->nfields++];
            memset(f, 0, sizeof(*f));
            f->key = ls_strdup(p->key);
        } else {
            size_t j;
            f = &ctx->fields[i];
            for (j = 0; j < f->nparts; j++) {
                ls_free(f->parts[j].text);
            }
            f->nparts = 0;
        }
        if (compile_template(f, p->value, msg, sizeof(msg)) != LS_OK) {
            snprintf(err, errlen, "%s:%d: %s", p->file, p->line, msg);
            return LS_ERROR;
        }
    }
    return LS_OK;
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

static void expand_part(struct rt_ctx *ctx, const struct part *p, const struct ls_record *rec,
                        struct ls_buf *b)
{
    const char *s;
    size_t n;
    char tbuf[64];
    struct tm tm;
    time_t t;
    struct ls_field *f;
    int i;

    switch (p->kind) {
    case P_LIT:
        append(b, p->text, p->len);
        break;
    case P_HOST:
        append(b, ctx->hostname, strlen(ctx->hostname));
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
        /* fluentd prints Time#to_s: "2026-11-21 12:00:00 +0000" */
        t = (time_t)rec->time.sec;
        localtime_r(&t, &tm);
        n = strftime(tbuf, sizeof(tbuf), "%Y-%m-%d %H:%M:%S %z", &tm);
        append(b, tbuf, n);
        break;
    case P_FIELD:
        f = ls_record_get(rec, p->text, p->len);
        if (f) {
            s = ls_value_to_text(rec->arena, &f->v, &n);
            append(b, s, n);
        }
        break;
    }
}

static int rt_filter(struct ls_instance *ins, struct ls_record *rec)
{
    struct rt_ctx *ctx = ins->ctx;
    struct ls_value *vals;
    size_t i, j;

    if (ctx->nfields == 0 && ctx->remove_keys.n == 0 && !ctx->renew_record &&
        ctx->renew_time_key == NULL) {
        return LS_OK;
    }
    /* compute every new value against the incoming record before changing it */
    vals = ls_arena_alloc(rec->arena, (ctx->nfields ? ctx->nfields : 1) * sizeof(*vals));
    for (i = 0; i < ctx->nfields; i++) {
        struct rt_field *f = &ctx->fields[i];
        struct ls_buf b;
        if (ctx->auto_typecast && f->nparts == 1 && f->parts[0].kind == P_FIELD) {
            struct ls_field *src = ls_record_get(rec, f->parts[0].text, f->parts[0].len);
            vals[i] = src ? src->v : ls_vnull();
            continue;
        }
        ls_buf_init(&b, 0);
        for (j = 0; j < f->nparts; j++) {
            expand_part(ctx, &f->parts[j], rec, &b);
        }
        vals[i] = ls_vstr(ls_arena_memdup(rec->arena, b.p ? b.p : "", b.len), b.len);
        ls_buf_release(&b);
    }
    if (ctx->renew_record) {
        struct ls_field *old = NULL;
        unsigned nold = rec->nfields;
        if (nold) {
            old = ls_arena_alloc(rec->arena, nold * sizeof(*old));
            memcpy(old, rec->fields, nold * sizeof(*old));
        }
        rec->nfields = 0;
        for (i = 0; i < ctx->keep_keys.n; i++) {
            unsigned k;
            for (k = 0; k < nold; k++) {
                if (old[k].key_len == strlen(ctx->keep_keys.v[i]) &&
                    memcmp(old[k].key, ctx->keep_keys.v[i], old[k].key_len) == 0) {
                    ls_record_add(rec, old[k].key, old[k].key_len, &old[k].v);
                }
            }
        }
    }
    for (i = 0; i < ctx->nfields; i++) {
        ls_record_set(rec, ctx->fields[i].key, strlen(ctx->fields[i].key), &vals[i]);
    }
    for (i = 0; i < ctx->remove_keys.n; i++) {
        ls_record_del(rec, ctx->remove_keys.v[i], strlen(ctx->remove_keys.v[i]));
    }
    if (ctx->renew_time_key) {
        struct ls_field *f = ls_record_get(rec, ctx->renew_time_key, strlen(ctx->renew_time_key));
        if (f && f->v.type == LS_V_INT) {
            rec->time.sec = f->v.u.i;
            rec->time.nsec = 0;
        } else if (f && f->v.type == LS_V_FLOAT) {
            rec->time.sec = (int64_t)f->v.u.f;
            rec->time.nsec = (int32_t)((f->v.u.f - (double)rec->time.sec) * 1e9);
        } else if (f && f->v.type == LS_V_STR) {
            char tmp[32];
            size_t n = f->v.u.s.len < sizeof(tmp) - 1 ? f->v.u.s.len : sizeof(tmp) - 1;
            memcpy(tmp, f->v.u.s.p, n);
            tmp[n] = '\0';
            rec->time.sec = strtoll(tmp, NULL, 10);
            rec->time.nsec = 0;
        }
    }
    return LS_OK;
}

static void rt_destroy(struct ls_instance *ins)
{
    struct rt_ctx *ctx = ins->ctx;
    size_t i, j;

    for (i = 0; i < ctx->nfields; i++) {
        for (j = 0; j < ctx->fields[i].nparts; j++) {
            ls_free(ctx->fields[i].parts[j].text);
        }
        ls_free(ctx->fields[i].parts);
        ls_free(ctx->fields[i].key);
    }
    ls_free(ctx->fields);
}

const struct ls_plugin ls_plugin_filter_record_transformer = {
    .name = "record_transformer",
    .kind = LS_PLUGIN_FILTER,
    .description = "add, change and remove fields with placeholders (fluentd's record_transformer)",
    .params = rt_params,
    .ctx_size = sizeof(struct rt_ctx),
    .init = rt_init,
    .destroy = rt_destroy,
    .filter = rt_filter,
};
