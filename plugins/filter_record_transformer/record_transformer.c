/*
 * record_transformer.c - fluentd's filter_record_transformer without Ruby.
 *
 * <record> values are templates expanded per record: ${hostname}, ${tag},
 * ${tag_parts[N]} (negative N from the end), ${tag_prefix[N]},
 * ${tag_suffix[N]}, ${time} (the event time, as fluentd prints it), and
 * ${record["key"]} for a field of the record. Any other ${...} is fluentd v1's unknown
 * placeholder: nothing (nil as a whole value), warned at start; v0.12's shortcut ${key} for
 * a field went in fluentd v0.14.10. A value that is a single placeholder keeps its
 * value's type (fluentd's auto_typecast). With enable_ruby, also the Ruby real files
 * write (template.c:
 * ${time.strftime('%Y-%m-%dT%H:%M:%S%z')}, ${Time.now.to_i}, ${record["k"].downcase});
 * a template that needs more Ruby is a configuration error that says so.
 * Templates are parsed once at init into literal/placeholder parts.
 */
#include "plugin.h"
#include "template.h"
#include "json.h"
#include "log.h"

#include <ctype.h>
#include <stdio.h>

/* a piece of a JSON value: text copied as it is, or a string whose text is a template */
struct rt_jpart {
    char *lit;                  /* literal JSON text (whitespace removed); NULL for a string */
    struct ls_tmpl tmpl;        /* the string's decoded text as a template */
    bool is_key;                /* an object key: always a string (force_stringify) */
};

struct rt_field {
    char *key;
    struct ls_tmpl tmpl;
    struct rt_jpart *jparts;    /* a value that is a JSON object or array (parse_value) */
    size_t njparts;
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
    struct ls_accessor *removers;   /* remove_keys as record_accessor ("$.a.b" nested) */
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
      "evaluate the Ruby subset real files write: time/Time.now/record[\"k\"] then strftime, "
      "to_i, to_f, to_s, iso8601, utc, strip, downcase, upcase, length", NULL, NULL, 0, 0 },
    { "auto_typecast", LS_P_BOOL, "true", 0, offsetof(struct rt_ctx, auto_typecast),
      "a value that is just ${field} keeps the field's type", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static void jparts_release(struct rt_field *f)
{
    for (size_t i = 0; i < f->njparts; i++) {
        ls_free(f->jparts[i].lit);
        ls_tmpl_release(&f->jparts[i].tmpl);
    }
    ls_free(f->jparts);
    f->jparts = NULL;
    f->njparts = 0;
}

static struct rt_jpart *jpart_add(struct rt_field *f)
{
    struct rt_jpart *jp;

    f->jparts = ls_realloc(f->jparts, (f->njparts + 1) * sizeof(*f->jparts));
    jp = &f->jparts[f->njparts++];
    memset(jp, 0, sizeof(*jp));
    return jp;
}

/*
 * fluentd's parse_value: a value that starts with { or [ and is JSON is that object or array,
 * and expand_placeholders then expands every string in it (keys as strings, a value that is
 * one placeholder with its type under auto_typecast). Split the (valid) JSON text into
 * literal runs, whitespace dropped as JSON.parse + to_json drop it, and strings, each
 * decoded and compiled as a template.
 */
static int compile_json_value(struct rt_field *f, const char *v, unsigned flags, char *msg,
                              size_t msglen)
{
    struct ls_buf lit;
    struct ls_arena a;
    const char *p = v, *end = v + strlen(v);
    int rc = LS_OK;

    ls_buf_init(&lit, 0);
    ls_arena_init(&a, 1024);
    while (p < end && rc == LS_OK) {
        const char *text, *q;
        size_t tlen, used;
        struct rt_jpart *jp;
        if (*p != '"') {
            if (!isspace((unsigned char)*p)) {
                ls_buf_putc(&lit, *p);
            }
            p++;
            continue;
        }
        /* the value is valid JSON (checked by the caller), so the string is whole */
        if (ls_json_string_at(p, (size_t)(end - p), &a, &text, &tlen, &used) != LS_OK) {
            rc = LS_ERROR;
            snprintf(msg, msglen, "invalid JSON string in %s", v);
            break;
        }
        for (p += used, q = p; isspace((unsigned char)*q); q++) {
        }
        if (lit.len) {
            jpart_add(f)->lit = ls_strndup(lit.p, lit.len);
            ls_buf_reset(&lit);
        }
        jp = jpart_add(f);
        jp->is_key = *q == ':';
        text = ls_arena_memdup(&a, text, tlen);     /* NUL-terminated for the compiler */
        rc = ls_tmpl_compile(&jp->tmpl, text, flags, msg, msglen);
    }
    if (rc == LS_OK && lit.len) {
        jpart_add(f)->lit = ls_strndup(lit.p, lit.len);
    }
    ls_buf_release(&lit);
    ls_arena_release(&a);
    return rc;
}

static struct ls_value json_value(const struct rt_ctx *ctx, const struct rt_field *f,
                                  const struct ls_record *rec)
{
    struct ls_buf b, s;
    struct ls_value v;

    ls_buf_init(&b, 0);
    ls_buf_init(&s, 0);
    for (size_t i = 0; i < f->njparts; i++) {
        const struct rt_jpart *jp = &f->jparts[i];
        struct ls_value one;
        if (jp->lit) {
            ls_buf_append(&b, jp->lit, strlen(jp->lit));
        } else if (!jp->is_key && ctx->auto_typecast &&
                   ls_tmpl_single_value(&jp->tmpl, rec, &one)) {
            ls_json_put_value(&b, &one);
        } else {
            ls_buf_reset(&s);
            ls_tmpl_expand(&jp->tmpl, rec, &s);
            ls_json_put_str(&b, s.p ? s.p : "", s.len);
        }
    }
    v.type = LS_V_JSON;
    v.u.s.p = ls_arena_memdup(rec->arena, b.p ? b.p : "", b.len);
    v.u.s.len = b.len;
    ls_buf_release(&b);
    ls_buf_release(&s);
    return v;
}

static int rt_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct rt_ctx *ctx = ins->ctx;
    struct ls_conf_section *rec;
    struct ls_conf_param *p;

    if (ctx->remove_keys.n) {
        ctx->removers = ls_calloc(ctx->remove_keys.n, sizeof(*ctx->removers));
        for (size_t i = 0; i < ctx->remove_keys.n; i++) {
            char aerr[200];
            if (ls_accessor_compile(&ctx->removers[i], ctx->remove_keys.v[i], aerr,
                                    sizeof(aerr)) != LS_OK) {
                ls_conf_param_error(sec, "remove_keys", err, errlen, "%s", aerr);
                return LS_ERROR;
            }
        }
    }
    if (ctx->keep_keys.n && !ctx->renew_record) {
        ls_conf_param_error(sec, "keep_keys", err, errlen,
                            "`renew_record` must be true to use `keep_keys`");
        return LS_ERROR;
    }
    /* every <record> section, in file order, as fluentd merges them (a later key wins) */
    for (rec = sec->children; rec; rec = rec->next) {
        if (strcmp(rec->name, "record") != 0) {
            continue;
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
                f = &ctx->fields[i];
                ls_tmpl_release(&f->tmpl);
                jparts_release(f);
            }
            msg[0] = '\0';
            if (p->value[0] == '{' || p->value[0] == '[') {
                if (ls_json_valid(p->value, strlen(p->value))) {
                    if (compile_json_value(f, p->value,
                                           ctx->enable_ruby ? LS_TMPL_RUBY : LS_TMPL_UNKNOWN_NIL,
                                           msg, sizeof(msg)) != LS_OK) {
                        snprintf(err, errlen, "%s:%d: %s", p->file, p->line, msg);
                        return LS_ERROR;
                    }
                    if (msg[0]) {
                        ls_plg_warn(ins, "%s:%d: %s", p->file, p->line, msg);
                    }
                    continue;
                }
                ls_plg_warn(ins, "failed to parse %s as json. Assuming %s is a string", p->value,
                            p->value);
            }
            if (ls_tmpl_compile(&f->tmpl, p->value,
                                ctx->enable_ruby ? LS_TMPL_RUBY : LS_TMPL_UNKNOWN_NIL, msg,
                                sizeof(msg)) != LS_OK) {
                snprintf(err, errlen, "%s:%d: %s", p->file, p->line, msg);
                return LS_ERROR;
            }
            if (msg[0]) {
                ls_plg_warn(ins, "%s:%d: %s", p->file, p->line, msg);
            }
        }
    }
    return LS_OK;
}

static int rt_filter(struct ls_instance *ins, struct ls_record *rec)
{
    struct rt_ctx *ctx = ins->ctx;
    struct ls_value *vals;
    size_t i;

    if (ctx->nfields == 0 && ctx->remove_keys.n == 0 && !ctx->renew_record &&
        ctx->renew_time_key == NULL) {
        return LS_OK;
    }
    /* compute every new value against the incoming record before changing it */
    vals = ls_arena_alloc(rec->arena, (ctx->nfields ? ctx->nfields : 1) * sizeof(*vals));
    for (i = 0; i < ctx->nfields; i++) {
        struct rt_field *f = &ctx->fields[i];
        if (f->jparts) {
            vals[i] = json_value(ctx, f, rec);
            continue;
        }
        if (ctx->auto_typecast && ls_tmpl_single_value(&f->tmpl, rec, &vals[i])) {
            continue;
        }
        vals[i] = ls_tmpl_expand_value(&f->tmpl, rec);
    }
    if (ls_tmpl_take_error()) {
        return LS_ERROR;    /* Ruby raised (a method of nil): fluentd's error stream */
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
        (void)ls_accessor_del(&ctx->removers[i], rec);
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
    size_t i;

    for (i = 0; i < ctx->nfields; i++) {
        ls_tmpl_release(&ctx->fields[i].tmpl);
        jparts_release(&ctx->fields[i]);
        ls_free(ctx->fields[i].key);
    }
    ls_free(ctx->fields);
    for (i = 0; ctx->removers && i < ctx->remove_keys.n; i++) {
        ls_accessor_release(&ctx->removers[i]);
    }
    ls_free(ctx->removers);
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
