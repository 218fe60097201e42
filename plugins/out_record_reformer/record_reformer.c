/*
 * record_reformer.c - fluent-plugin-record-reformer (retired, but in many td-agent files):
 * an output that builds a new record the way record_transformer does and emits it again
 * under a new `tag` from the top of its label (router.emit), with the plugin's own
 * defaults: every top-level parameter that is not one of its own is a field, like a
 * <record> entry (a <record> entry wins); `${key}` is a field; enable_ruby defaults to
 * true and auto_typecast to false; missing keep_keys become null; renew_time_key is
 * read as Ruby's to_i.
 *
 * The placeholders are the shared templates (${tag}, ${tag_parts[N]} or the old
 * ${tags[N]}, ${tag_prefix[N]}, ${tag_suffix[N]}, ${hostname}, ${time}, ${record["k"]},
 * ${k}); with enable_ruby these are the expressions real files write, and anything else
 * that would need Ruby is a configuration error naming file:line. A value starting with
 * `{` or `[` that is JSON is kept as a nested value.
 */
#include "plugin.h"
#include "template.h"
#include "json.h"
#include "log.h"

#include <stdio.h>

struct rr_field {
    char *name;                /* the key as written (a later entry replaces it) */
    struct ls_tmpl key;
    struct ls_tmpl value;
    bool json;                 /* value is nested JSON, kept as it is */
    char *json_text;
};

struct rr_ctx {
    char *tag;
    char *output_tag;
    char *remove_keys;
    char *keep_keys;
    bool renew_record;
    char *renew_time_key;
    bool enable_ruby;
    bool auto_typecast;
    struct ls_tmpl tag_tmpl;
    struct rr_field *fields;
    size_t nfields;
    struct ls_strv remove;
    struct ls_strv keep;
};

static const struct ls_param rr_params[] = {
    { "tag", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct rr_ctx, tag),
      "(required) tag of the new record; placeholders allowed", NULL, NULL, 0, 0 },
    { "output_tag", LS_P_STR, NULL, LS_PF_NULLABLE | LS_PF_DEPRECATED,
      offsetof(struct rr_ctx, output_tag), "old name of tag, used when tag is not set", NULL,
      NULL, 0, 0 },
    { "remove_keys", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct rr_ctx, remove_keys),
      "comma-separated keys to delete (after renew_time_key)", NULL, NULL, 0, 0 },
    { "keep_keys", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct rr_ctx, keep_keys),
      "with renew_record: comma-separated keys to keep (missing ones become null)", NULL, NULL,
      0, 0 },
    { "renew_record", LS_P_BOOL, "false", 0, offsetof(struct rr_ctx, renew_record),
      "start from an empty record", NULL, NULL, 0, 0 },
    { "renew_time_key", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct rr_ctx, renew_time_key),
      "use this field of the new record (integer seconds, as Ruby's to_i) as the event time",
      NULL, NULL, 0, 0 },
    { "enable_ruby", LS_P_BOOL, "true", 0, offsetof(struct rr_ctx, enable_ruby),
      "the placeholders and record_transformer's Ruby subset (strftime, to_i...) are "
      "evaluated; other Ruby is refused", NULL, NULL, 0, 0 },
    { "auto_typecast", LS_P_BOOL, "false", 0, offsetof(struct rr_ctx, auto_typecast),
      "a value that is just ${field} keeps the field's type", NULL, NULL, 0, 0 },
    { "KEY", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "any other parameter, and each `<record>` entry, is a field of the new record", NULL,
      NULL, 0, 0 },
    LS_PARAM_END
};

/* the plugin's own parameters (and fluentd's); every other top-level key is a field */
static const char *const builtin_keys[] = {
    "@id", "@type", "@label", "@log_level", "type", "id", "log_level", "tag", "output_tag",
    "remove_keys", "renew_record", "keep_keys", "enable_ruby", "renew_time_key",
    "auto_typecast", NULL
};

static bool is_builtin(const char *k)
{
    size_t i;

    for (i = 0; builtin_keys[i]; i++) {
        if (strcmp(builtin_keys[i], k) == 0) {
            return true;
        }
    }
    return false;
}

/* ${tags[N]} is the plugin's old name of ${tag_parts[N]} */
static int compile(struct ls_tmpl *t, const char *text, bool ruby, char *msg, size_t msglen)
{
    struct ls_buf b;
    const char *s = text, *hit;
    int rc;

    ls_buf_init(&b, 0);
    while ((hit = strstr(s, "${tags[")) != NULL) {
        ls_buf_append(&b, s, (size_t)(hit - s));
        ls_buf_append(&b, "${tag_parts[", 12);
        s = hit + 7;
    }
    ls_buf_append(&b, s, strlen(s));
    rc = ls_tmpl_compile(t, ls_buf_cstr(&b), LS_TMPL_KEY_SHORTCUT | (ruby ? LS_TMPL_RUBY : 0),
                         msg, msglen);
    ls_buf_release(&b);
    return rc;
}

static int add_field(struct rr_ctx *ctx, struct ls_conf_param *p, char *err, size_t errlen)
{
    struct rr_field *f = NULL;
    char msg[512];
    size_t i;

    p->used = true;
    for (i = 0; i < ctx->nfields; i++) {
        if (strcmp(ctx->fields[i].name, p->key) == 0) {
            f = &ctx->fields[i];
            ls_tmpl_release(&f->key);
            ls_tmpl_release(&f->value);
            ls_free(f->json_text);
            f->json_text = NULL;
            f->json = false;
            break;
        }
    }
    if (f == NULL) {
        ctx->fields = ls_realloc(ctx->fields, (ctx->nfields + 1) * sizeof(*ctx->fields));
        f = &ctx->fields[ctx->nfields++];
        memset(f, 0, sizeof(*f));
        f->name = ls_strdup(p->key);
    }
    if (compile(&f->key, p->key, ctx->enable_ruby, msg, sizeof(msg)) != LS_OK) {
        snprintf(err, errlen, "%s:%d: %s", p->file, p->line, msg);
        return LS_ERROR;
    }
    if ((p->value[0] == '{' || p->value[0] == '[') && strstr(p->value, "${") == NULL) {
        if (ls_json_valid(p->value, strlen(p->value))) {
            f->json = true;
            f->json_text = ls_strdup(p->value);
            return LS_OK;
        }
        ls_warn("%s:%d: '%s' is not valid JSON; kept as a string", p->file, p->line, p->value);
    }
    if (compile(&f->value, p->value, ctx->enable_ruby, msg, sizeof(msg)) != LS_OK) {
        snprintf(err, errlen, "%s:%d: %s", p->file, p->line, msg);
        return LS_ERROR;
    }
    return LS_OK;
}

static int rr_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct rr_ctx *ctx = ins->ctx;
    struct ls_conf_section *s;
    struct ls_conf_param *p;
    const char *tag = ctx->tag;
    char msg[512];

    if (tag == NULL) {
        tag = ctx->output_tag;
    }
    if (tag == NULL) {
        snprintf(err, errlen, "%s:%d: `tag` must be specified", sec->file, sec->line);
        return LS_ERROR;
    }
    if (ctx->keep_keys && !ctx->renew_record) {
        ls_conf_param_error(sec, "keep_keys", err, errlen,
                            "`renew_record` must be true to use `keep_keys`");
        return LS_ERROR;
    }
    if (compile(&ctx->tag_tmpl, tag, ctx->enable_ruby, msg, sizeof(msg)) != LS_OK) {
        ls_conf_param_error(sec, ctx->tag ? "tag" : "output_tag", err, errlen, "%s", msg);
        return LS_ERROR;
    }
    for (p = sec->params; p; p = p->next) {
        if (!is_builtin(p->key) && add_field(ctx, p, err, errlen) != LS_OK) {
            return LS_ERROR;
        }
    }
    for (s = sec->children; s; s = s->next) {
        if (strcmp(s->name, "record") != 0) {
            continue;
        }
        for (p = s->params; p; p = p->next) {
            if (add_field(ctx, p, err, errlen) != LS_OK) {
                return LS_ERROR;
            }
        }
    }
    if (ctx->remove_keys) {
        ls_parse_array(ctx->remove_keys, &ctx->remove);
    }
    if (ctx->keep_keys) {
        ls_parse_array(ctx->keep_keys, &ctx->keep);
    }
    return LS_OK;
}

/* Ruby's String#to_i: optional sign and leading digits, else 0 */
static int64_t ruby_to_i(const struct ls_value *v)
{
    char tmp[32];
    size_t n;

    switch (v->type) {
    case LS_V_INT:
        return v->u.i;
    case LS_V_FLOAT:
        return (int64_t)v->u.f;
    case LS_V_STR:
        n = v->u.s.len < sizeof(tmp) - 1 ? v->u.s.len : sizeof(tmp) - 1;
        memcpy(tmp, v->u.s.p, n);
        tmp[n] = '\0';
        return strtoll(tmp, NULL, 10);
    default:
        return 0;
    }
}

static int rr_emit(struct ls_instance *ins, const struct ls_record *rec)
{
    struct rr_ctx *ctx = ins->ctx;
    struct ls_record *copy = ls_output_reemit_copy(ins, rec);
    struct ls_value *vals, tagv;
    const char **keys;
    size_t *klens;
    size_t i;

    /* every expansion reads the incoming record, before anything changes */
    tagv = ls_tmpl_expand_value(&ctx->tag_tmpl, rec);
    vals = ls_arena_alloc(rec->arena, (ctx->nfields + 1) * sizeof(*vals));
    keys = ls_arena_alloc(rec->arena, (ctx->nfields + 1) * sizeof(*keys));
    klens = ls_arena_alloc(rec->arena, (ctx->nfields + 1) * sizeof(*klens));
    for (i = 0; i < ctx->nfields; i++) {
        struct rr_field *f = &ctx->fields[i];
        struct ls_value k = ls_tmpl_expand_value(&f->key, rec);
        keys[i] = k.u.s.p;
        klens[i] = k.u.s.len;
        if (f->json) {
            vals[i].type = LS_V_JSON;
            vals[i].u.s.p = f->json_text;
            vals[i].u.s.len = strlen(f->json_text);
        } else if (!(ctx->auto_typecast && ls_tmpl_field_value(&f->value, rec, &vals[i]))) {
            vals[i] = ls_tmpl_expand_value(&f->value, rec);
        }
    }
    /* a method of nil (Ruby raises) left the value nil; the flag is the transformer's */
    (void)ls_tmpl_take_error();
    if (ctx->renew_record) {
        copy->nfields = 0;
        for (i = 0; i < ctx->keep.n; i++) {
            struct ls_field *old = ls_record_get(rec, ctx->keep.v[i], strlen(ctx->keep.v[i]));
            struct ls_value nv = ls_vnull();
            ls_record_set(copy, ctx->keep.v[i], strlen(ctx->keep.v[i]), old ? &old->v : &nv);
        }
    }
    for (i = 0; i < ctx->nfields; i++) {
        ls_record_set(copy, keys[i], klens[i], &vals[i]);
    }
    if (ctx->renew_time_key) {
        struct ls_field *f = ls_record_get(copy, ctx->renew_time_key, strlen(ctx->renew_time_key));
        if (f) {
            copy->time.sec = ruby_to_i(&f->v);
            copy->time.nsec = 0;
        }
    }
    for (i = 0; i < ctx->remove.n; i++) {
        ls_record_del(copy, ctx->remove.v[i], strlen(ctx->remove.v[i]));
    }
    copy->tag = tagv.u.s.p;
    copy->tag_len = tagv.u.s.len;
    return ls_output_reemit(ins, NULL, copy);
}

static void rr_destroy(struct ls_instance *ins)
{
    struct rr_ctx *ctx = ins->ctx;
    size_t i;

    ls_tmpl_release(&ctx->tag_tmpl);
    for (i = 0; i < ctx->nfields; i++) {
        ls_tmpl_release(&ctx->fields[i].key);
        ls_tmpl_release(&ctx->fields[i].value);
        ls_free(ctx->fields[i].json_text);
        ls_free(ctx->fields[i].name);
    }
    ls_free(ctx->fields);
    ls_strv_release(&ctx->remove);
    ls_strv_release(&ctx->keep);
}

const struct ls_plugin ls_plugin_out_record_reformer = {
    .name = "record_reformer",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "build a new record like record_transformer and re-emit it under a new tag "
                   "(fluent-plugin-record-reformer)",
    .params = rr_params,
    .ctx_size = sizeof(struct rr_ctx),
    .init = rr_init,
    .destroy = rr_destroy,
    .output_flags = LS_OUT_UNBUFFERED,
    .emit = rr_emit,
};
