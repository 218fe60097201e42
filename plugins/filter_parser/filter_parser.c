/*
 * filter_parser.c - fluentd's filter_parser: parse one field of the record (key_name, a
 * key or a record accessor) with any parser (<parse>, or the v0.12 flat `format` form)
 * and replace the record with the parsed fields.
 *
 * Semantics follow lib/fluent/plugin/filter_parser.rb: a missing key or a line the parser
 * does not match sends the original record to @ERROR (emit_invalid_record_to_error, on by
 * default) and drops it, unless reserve_data keeps it (then with `hash_value_field => {}`
 * when that is set); a parsed record takes the parser's time (the parser's own default,
 * estimate_current_event, makes that "now" when the text has no time field) unless
 * reserve_time keeps the original. Parsed keys get inject_key_prefix, go under
 * hash_value_field when set, and with reserve_data are merged over the original fields.
 */
#include "plugin.h"
#include "parser.h"
#include "json.h"
#include "log.h"

#include <stdio.h>

struct fp_ctx {
    char *key_name;
    bool reserve_data;
    bool reserve_time;
    bool remove_key_name_field;
    bool replace_invalid_sequence;
    char *inject_key_prefix;
    char *hash_value_field;
    bool emit_invalid_record_to_error;
    struct ls_accessor key;
    struct ls_instance *parser;
    struct ls_record parsed;      /* the parser's output (fields borrowed) */
    struct ls_buf text;
};

static const struct ls_param fp_params[] = {
    { "key_name", LS_P_STR, NULL, LS_PF_REQUIRED, offsetof(struct fp_ctx, key_name),
      "field to parse: a key or a record accessor (`$.a.b`)", NULL, NULL, 0, 0 },
    { "reserve_data", LS_P_BOOL, "false", 0, offsetof(struct fp_ctx, reserve_data),
      "keep the original fields (parsed ones overwrite them); a record that cannot be parsed "
      "passes unchanged", NULL, NULL, 0, 0 },
    { "reserve_time", LS_P_BOOL, "false", 0, offsetof(struct fp_ctx, reserve_time),
      "keep the original event time instead of the parsed one", NULL, NULL, 0, 0 },
    { "remove_key_name_field", LS_P_BOOL, "false", 0,
      offsetof(struct fp_ctx, remove_key_name_field),
      "with reserve_data: drop key_name from the record once it parsed", NULL, NULL, 0, 0 },
    { "replace_invalid_sequence", LS_P_BOOL, "false", 0,
      offsetof(struct fp_ctx, replace_invalid_sequence),
      "accepted; invalid UTF-8 never stops a parse here (formatters repair it)", NULL, NULL, 0,
      0 },
    { "inject_key_prefix", LS_P_STR, NULL, LS_PF_NULLABLE,
      offsetof(struct fp_ctx, inject_key_prefix), "prefix for every parsed key", NULL, NULL, 0,
      0 },
    { "hash_value_field", LS_P_STR, NULL, LS_PF_NULLABLE,
      offsetof(struct fp_ctx, hash_value_field),
      "put the parsed fields under this key as an object", NULL, NULL, 0, 0 },
    { "emit_invalid_record_to_error", LS_P_BOOL, "true", 0,
      offsetof(struct fp_ctx, emit_invalid_record_to_error),
      "send records whose key is missing or does not parse to @ERROR", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static int fp_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct fp_ctx *ctx = ins->ctx;
    struct ls_conf_section *ps = ls_conf_child(sec, "parse");
    char msg[300];

    ls_record_init(&ctx->parsed, NULL);
    ls_buf_init(&ctx->text, 0);
    if (ls_accessor_compile(&ctx->key, ctx->key_name, msg, sizeof(msg)) != LS_OK) {
        ls_conf_param_error(sec, "key_name", err, errlen, "%s", msg);
        return LS_ERROR;
    }
    if (ps == NULL) {
        const char *fmt = ls_conf_get(sec, "format");
        if (fmt == NULL || *fmt == '\0') {
            snprintf(err, errlen, "%s:%d: <parse> section is required", sec->file, sec->line);
            return LS_ERROR;
        }
        ps = ls_parser_flat_section(sec);
    }
    ctx->parser = ls_instance_create(ins->engine, ins, LS_PLUGIN_PARSER, NULL, ps, err, errlen);
    return ctx->parser ? LS_OK : LS_ERROR;
}

/* fluentd's error event: a copy of the record goes to @ERROR (or is dumped), rec passes on */
static void error_event(struct ls_instance *ins, const struct ls_record *rec, const char *why)
{
    struct fp_ctx *ctx = ins->ctx;

    if (ctx->emit_invalid_record_to_error) {
        ls_emit_error(ins, ls_output_reemit_copy(ins, rec), why);
    }
}

/* handle_parsed: the parsed fields (none on failure) into rec, per the options */
static void apply(struct fp_ctx *ctx, struct ls_record *rec, const struct ls_record *parsed)
{
    struct ls_arena *a = rec->arena;
    size_t plen = ctx->inject_key_prefix ? strlen(ctx->inject_key_prefix) : 0;
    unsigned i;

    if (!ctx->reserve_data) {
        rec->nfields = 0;
    }
    if (ctx->hash_value_field) {
        struct ls_buf b;
        struct ls_record tmp;
        struct ls_value v;
        ls_buf_init(&b, 0);
        ls_record_init(&tmp, a);
        for (i = 0; parsed && i < parsed->nfields; i++) {
            const struct ls_field *f = &parsed->fields[i];
            char *k = ls_arena_alloc(a, plen + f->key_len + 1);
            memcpy(k, ctx->inject_key_prefix ? ctx->inject_key_prefix : "", plen);
            memcpy(k + plen, f->key, f->key_len);
            ls_record_set(&tmp, k, plen + f->key_len, &f->v);
        }
        ls_json_put_record(&b, &tmp);
        v.type = LS_V_JSON;
        v.u.s.len = b.len;
        v.u.s.p = ls_arena_memdup(a, b.p, b.len);
        ls_record_set(rec, ctx->hash_value_field, strlen(ctx->hash_value_field), &v);
        ls_record_release(&tmp);
        ls_buf_release(&b);
        return;
    }
    for (i = 0; parsed && i < parsed->nfields; i++) {
        const struct ls_field *f = &parsed->fields[i];
        if (plen) {
            char *k = ls_arena_alloc(a, plen + f->key_len + 1);
            memcpy(k, ctx->inject_key_prefix, plen);
            memcpy(k + plen, f->key, f->key_len);
            ls_record_set(rec, k, plen + f->key_len, &f->v);
        } else {
            ls_record_set(rec, f->key, f->key_len, &f->v);
        }
    }
}

/*
 * Which failures fluentd's parsers raise (ParserError: a bad time, a type conversion, Ruby
 * CSV's MalformedCSVError) rather than yield no values (a regexp that does not match, JSON
 * that does not parse): only the latter lets reserve_data keep the record.
 */
static bool raises(const char *why)
{
    return why && (strncmp(why, "invalid time", 12) == 0 || strncmp(why, "csv:", 4) == 0 ||
                   strncmp(why, "regexp match limit", 18) == 0);
}

static int fp_filter(struct ls_instance *ins, struct ls_record *rec)
{
    struct fp_ctx *ctx = ins->ctx;
    struct ls_value raw;
    const char *text;
    size_t len;
    int rc;
    const char *why;
    char msg[512];

    if (!ls_accessor_get(&ctx->key, rec, &raw) || raw.type == LS_V_NULL) {
        snprintf(msg, sizeof(msg), "%s does not exist", ctx->key_name);
        error_event(ins, rec, msg);
        if (!ctx->reserve_data) {
            return LS_DECLINED;
        }
        if (ctx->hash_value_field) {
            apply(ctx, rec, NULL);
        }
        return LS_OK;
    }
    if (raw.type == LS_V_STR) {
        text = raw.u.s.p;
        len = raw.u.s.len;
    } else {
        ls_buf_reset(&ctx->text);
        ls_ruby_put_value(&ctx->text, &raw, false);
        text = ctx->text.p ? ctx->text.p : "";
        len = ctx->text.len;
    }
    ls_record_clear(&ctx->parsed);
    ctx->parsed.arena = rec->arena;
    ctx->parsed.tag = rec->tag;
    ctx->parsed.tag_len = rec->tag_len;
    ctx->parsed.time = rec->time;    /* a parser that finds no time leaves it (or takes now) */
    rc = ls_parser_parse(ctx->parser, text, len, &ctx->parsed);
    if (rc == LS_AGAIN) {
        /* a multiline parser holds the text as a first line: this one value is all there is */
        rc = ls_parser_flush(ctx->parser, &ctx->parsed);
    }
    if (rc == LS_OK) {
        if (!ctx->reserve_time) {
            rec->time = ctx->parsed.time;
        }
        if (ctx->remove_key_name_field) {
            ls_accessor_del(&ctx->key, rec);
        }
        apply(ctx, rec, &ctx->parsed);
        return LS_OK;
    }
    why = ls_parser_error(ctx->parser);
    if (raises(why)) {
        /* a ParserError (a bad time, a failed type conversion): dropped, even with reserve_data */
        snprintf(msg, sizeof(msg), "parse failed %s", why);
        error_event(ins, rec, msg);
        return LS_DECLINED;
    }
    snprintf(msg, sizeof(msg), "pattern not match with data '%.*s'",
             (int)(len > 400 ? 400 : len), text);
    error_event(ins, rec, msg);
    if (!ctx->reserve_data) {
        return LS_DECLINED;
    }
    if (ctx->hash_value_field) {
        apply(ctx, rec, NULL);
    }
    return LS_OK;
}

static void fp_destroy(struct ls_instance *ins)
{
    struct fp_ctx *ctx = ins->ctx;

    ls_instance_destroy(ctx->parser);
    ls_accessor_release(&ctx->key);
    ls_record_release(&ctx->parsed);
    ls_buf_release(&ctx->text);
}

const struct ls_plugin ls_plugin_filter_parser = {
    .name = "parser",
    .kind = LS_PLUGIN_FILTER,
    .description = "parse a field of the record with any parser (fluentd's filter_parser)",
    .params = fp_params,
    .ctx_size = sizeof(struct fp_ctx),
    .init = fp_init,
    .destroy = fp_destroy,
    .filter = fp_filter,
};
