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
 *
 * Also fluent-plugin-parser's out_parser (`@type parser` in a <match>, the v0.12 form that
 * filter_parser replaced, common in td-agent 2 configurations): the same parse, and the
 * result emitted again under `tag`, or the tag with remove_prefix / add_prefix. As in
 * lib/fluent/plugin/out_parser.rb (0.6): no @ERROR events, failures are logged unless
 * suppress_parse_error_log (logship: once a second with a count), the original time is kept
 * when the text has none (estimate_current_event false), `time_parse false` reads no time
 * field, a value that is not a string is dropped ("parse failed") even with reserve_data.
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

/* ---- fluent-plugin-parser's out_parser ---- */

struct op_ctx {
    struct fp_ctx f;            /* key_name, reserve_data, inject_key_prefix, hash_value_field */
    char *tag;
    char *remove_prefix;
    char *add_prefix;
    bool suppress_parse_error_log;
    bool time_parse;
    bool ignore_key_not_exist;
    size_t rlen, alen;
    uint64_t failed;
    double warned_at;
};

#define OP(f) offsetof(struct op_ctx, f)

static const struct ls_param op_params[] = {
    { "key_name", LS_P_STR, NULL, LS_PF_REQUIRED, OP(f.key_name), "field to parse", NULL, NULL,
      0, 0 },
    { "tag", LS_P_STR, NULL, LS_PF_NULLABLE, OP(tag),
      "tag of the parsed records (or remove_prefix / add_prefix)", NULL, NULL, 0, 0 },
    { "remove_prefix", LS_P_STR, NULL, LS_PF_NULLABLE, OP(remove_prefix),
      "remove this prefix (and its dot) from the tag", NULL, NULL, 0, 0 },
    { "add_prefix", LS_P_STR, NULL, LS_PF_NULLABLE, OP(add_prefix),
      "add this prefix and a dot to the tag", NULL, NULL, 0, 0 },
    { "reserve_data", LS_P_BOOL, "false", 0, OP(f.reserve_data),
      "keep the original fields (parsed ones overwrite them); a record that does not match "
      "is emitted unchanged", NULL, NULL, 0, 0 },
    { "inject_key_prefix", LS_P_STR, NULL, LS_PF_NULLABLE, OP(f.inject_key_prefix),
      "prefix for every parsed key", NULL, NULL, 0, 0 },
    { "hash_value_field", LS_P_STR, NULL, LS_PF_NULLABLE, OP(f.hash_value_field),
      "put the parsed fields under this key as an object", NULL, NULL, 0, 0 },
    { "replace_invalid_sequence", LS_P_BOOL, "false", 0, OP(f.replace_invalid_sequence),
      "accepted; invalid UTF-8 never stops a parse here (formatters repair it)", NULL, NULL, 0,
      0 },
    { "suppress_parse_error_log", LS_P_BOOL, "false", 0, OP(suppress_parse_error_log),
      "do not log values that do not parse", NULL, NULL, 0, 0 },
    { "time_parse", LS_P_BOOL, "true", 0, OP(time_parse),
      "false: read no time field (the record keeps its time)", NULL, NULL, 0, 0 },
    { "ignore_key_not_exist", LS_P_BOOL, "false", 0, OP(ignore_key_not_exist),
      "do not log records without key_name", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static int op_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct op_ctx *ctx = ins->ctx;
    struct ls_conf_section *ps = ls_conf_child(sec, "parse");

    ls_record_init(&ctx->f.parsed, NULL);
    ls_buf_init(&ctx->f.text, 0);
    if (!ctx->tag && !ctx->remove_prefix && !ctx->add_prefix) {
        snprintf(err, errlen, "%s:%d: missing both of remove_prefix and add_prefix", sec->file,
                 sec->line);
        return LS_ERROR;
    }
    if (ctx->tag && (ctx->remove_prefix || ctx->add_prefix)) {
        snprintf(err, errlen, "%s:%d: both of tag and remove_prefix/add_prefix must not be "
                 "specified", sec->file, sec->line);
        return LS_ERROR;
    }
    ctx->rlen = ctx->remove_prefix ? strlen(ctx->remove_prefix) : 0;
    ctx->alen = ctx->add_prefix ? strlen(ctx->add_prefix) : 0;
    if (ps == NULL) {
        const char *fmt = ls_conf_get(sec, "format");
        if (fmt == NULL || *fmt == '\0') {
            snprintf(err, errlen, "%s:%d: 'format' parameter is required", sec->file, sec->line);
            return LS_ERROR;
        }
        ps = ls_parser_flat_section(sec);
    }
    ctx->f.parser = ls_instance_create(ins->engine, ins, LS_PLUGIN_PARSER, NULL, ps, err,
                                       errlen);
    if (ctx->f.parser == NULL) {
        return LS_ERROR;
    }
    ls_parser_set_estimate_default(ctx->f.parser, false);
    if (!ctx->time_parse) {
        ls_parser_no_time_key(ctx->f.parser);
    }
    return LS_OK;
}

/* One failure counted; logged (prefix, the value's text, suffix) at most once a second. */
static void op_warn(struct ls_instance *ins, bool quiet, const char *prefix, const char *a,
                    size_t alen, const char *suffix)
{
    struct op_ctx *ctx = ins->ctx;
    double now = ls_mono_now();

    ctx->failed++;      /* not ins->metrics.errors: that counts failed writes */
    if (!quiet && now - ctx->warned_at >= 1.0) {
        ctx->warned_at = now;
        ls_plg_warn(ins, "%s%.*s%s (%llu so far)", prefix, (int)(alen > 400 ? 400 : alen), a,
                    suffix, (unsigned long long)ctx->failed);
    }
}

/* The plugin's tag: `tag`, or remove_prefix (a whole dotted prefix, or the whole tag) then
 * add_prefix (alone when nothing is left), into the record's arena. */
static void op_tag(struct op_ctx *ctx, struct ls_record *copy, const struct ls_record *rec)
{
    const char *t = rec->tag;
    size_t n = rec->tag_len;
    char *out;

    if (ctx->tag) {
        copy->tag = ctx->tag;
        copy->tag_len = strlen(ctx->tag);
        return;
    }
    if (ctx->remove_prefix) {
        if (n > ctx->rlen + 1 && memcmp(t, ctx->remove_prefix, ctx->rlen) == 0 &&
            t[ctx->rlen] == '.') {
            t += ctx->rlen + 1;
            n -= ctx->rlen + 1;
        } else if (n == ctx->rlen && memcmp(t, ctx->remove_prefix, n) == 0) {
            n = 0;
        }
    }
    if (ctx->add_prefix) {
        out = ls_arena_alloc(copy->arena, ctx->alen + 1 + n + 1);
        memcpy(out, ctx->add_prefix, ctx->alen);
        if (n > 0) {
            out[ctx->alen] = '.';
            memcpy(out + ctx->alen + 1, t, n);
            n += ctx->alen + 1;
        } else {
            n = ctx->alen;
        }
        out[n] = '\0';
        t = out;
    }
    copy->tag = t;
    copy->tag_len = n;
}

static int op_emit(struct ls_instance *ins, const struct ls_record *rec)
{
    struct op_ctx *ctx = ins->ctx;
    const struct ls_field *raw = ls_record_get(rec, ctx->f.key_name, strlen(ctx->f.key_name));
    struct ls_record *copy;
    int rc;

    if (raw == NULL || raw->v.type == LS_V_NULL) {
        op_warn(ins, ctx->ignore_key_not_exist, "", ctx->f.key_name, strlen(ctx->f.key_name),
                " does not exist");
        if (!ctx->f.reserve_data) {
            return LS_OK;
        }
        copy = ls_output_reemit_copy(ins, rec);
        op_tag(ctx, copy, rec);
        if (ctx->f.hash_value_field) {
            apply(&ctx->f, copy, NULL);
        }
        return ls_output_reemit(ins, NULL, copy);
    }
    if (raw->v.type != LS_V_STR) {
        /* Ruby's regexp match (or JSON load) of a number raises: "parse failed", dropped */
        op_warn(ins, ctx->suppress_parse_error_log, "parse failed: ", ctx->f.key_name,
                strlen(ctx->f.key_name), " is not a string");
        return LS_OK;
    }
    copy = ls_output_reemit_copy(ins, rec);
    op_tag(ctx, copy, rec);
    ls_record_clear(&ctx->f.parsed);
    ctx->f.parsed.arena = copy->arena;
    ctx->f.parsed.tag = copy->tag;
    ctx->f.parsed.tag_len = copy->tag_len;
    ctx->f.parsed.time = rec->time;     /* no time in the text: the record's own */
    rc = ls_parser_parse(ctx->f.parser, raw->v.u.s.p, raw->v.u.s.len, &ctx->f.parsed);
    if (rc == LS_AGAIN) {
        rc = ls_parser_flush(ctx->f.parser, &ctx->f.parsed);
    }
    if (rc == LS_OK) {
        copy->time = ctx->f.parsed.time;
        apply(&ctx->f, copy, &ctx->f.parsed);
        return ls_output_reemit(ins, NULL, copy);
    }
    if (raises(ls_parser_error(ctx->f.parser))) {
        const char *why = ls_parser_error(ctx->f.parser);
        op_warn(ins, ctx->suppress_parse_error_log, "parse failed ", why, strlen(why), "");
        return LS_OK;
    }
    op_warn(ins, ctx->suppress_parse_error_log, "pattern not match with data '", raw->v.u.s.p,
            raw->v.u.s.len, "'");
    if (!ctx->f.reserve_data) {
        return LS_OK;
    }
    if (ctx->f.hash_value_field) {
        apply(&ctx->f, copy, NULL);
    }
    return ls_output_reemit(ins, NULL, copy);
}

static void op_destroy(struct ls_instance *ins)
{
    fp_destroy(ins);
}

const struct ls_plugin ls_plugin_out_parser = {
    .name = "parser",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "parse a field and emit the result under a new tag (fluent-plugin-parser's "
                   "v0.12 out_parser)",
    .params = op_params,
    .ctx_size = sizeof(struct op_ctx),
    .init = op_init,
    .destroy = op_destroy,
    .output_flags = LS_OUT_UNBUFFERED,
    .emit = op_emit,
};
