/*
 * multi_format.c - fluent-plugin-multi-format-parser: several parsers tried in order on
 * each line, the first that gives a record (and a time) wins.
 *
 * As lib/fluent/plugin/parser_multi_format.rb (1.x): each <pattern> (or <format>) element
 * is a parser of type `format` with that element's parameters (its own time_key,
 * time_format, types...); `format /re/` is a regexp. A pattern that yields no time (its
 * estimate_current_event false and no time field) does not count as a match. With
 * format_key, the record gets the pattern's format_name under it (null when the pattern has
 * none: the plugin's `<< e.delete('format_name') || ...` pushes nil, its fallback never
 * runs). The multi_format parser itself reads no time field: the pattern's time stands.
 */
#include "plugin.h"
#include "log.h"
#include "parser.h"

#define MF_MAX 64

struct mf_ctx {
    char *format_key;
    struct ls_instance *parsers[MF_MAX];
    char *names[MF_MAX];
    size_t n;
};

static const struct ls_param mf_params[] = {
    { "format_key", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct mf_ctx, format_key),
      "add the matching pattern's format_name under this key", NULL, NULL, 0, 0 },
    { "pattern", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "<pattern> sections: `format` (a parser type, or /regexp/), format_name, and that "
      "parser's parameters; tried in order", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static int mf_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                   size_t errlen)
{
    struct mf_ctx *ctx = ins->ctx;
    struct ls_conf_section *e;

    for (e = sec ? sec->children : NULL; e; e = e->next) {
        struct ls_conf_param *fmt, *name;
        const char *type;

        if (strcmp(e->name, "pattern") != 0 && strcmp(e->name, "format") != 0) {
            continue;
        }
        fmt = ls_conf_get_param(e, "format");
        if (fmt == NULL) {
            snprintf(err, errlen, "%s:%d: <%s> needs a 'format' parameter", e->file, e->line,
                     e->name);
            return LS_ERROR;
        }
        if (ctx->n == MF_MAX) {
            snprintf(err, errlen, "%s:%d: more than %d patterns", e->file, e->line, MF_MAX);
            return LS_ERROR;
        }
        fmt->used = true;
        type = fmt->value;
        if (type[0] == '/' && strlen(type) > 1 && type[strlen(type) - 1] == '/') {
            ls_conf_set(e, "expression", type, fmt->file, fmt->line);
            type = "regexp";
        }
        name = ls_conf_get_param(e, "format_name");
        if (name) {
            name->used = true;
            ctx->names[ctx->n] = ls_strdup(name->value);
        }
        ctx->parsers[ctx->n] = ls_instance_create(ins->engine, ins, LS_PLUGIN_PARSER, type, e,
                                                  err, errlen);
        if (ctx->parsers[ctx->n] == NULL) {
            return LS_ERROR;
        }
        if (ls_parser_is_multiline(ctx->parsers[ctx->n++])) {
            snprintf(err, errlen, "%s:%d: a multiline parser cannot be a multi_format pattern",
                     e->file, e->line);
            return LS_ERROR;
        }
    }
    if (ctx->n == 0) {
        /* the plugin starts so (the patterns of a real td-agent file come from @include files
         * that may be missing) and then parses nothing: every line is a parse failure */
        ls_warn("%s:%d: multi_format has no <pattern> with a format: no line will parse",
                sec ? sec->file : "(default)", sec ? sec->line : 0);
    }
    /* the patterns read the time; this parser's own layer reads none */
    return ls_parser_set_defaults(ins, "", NULL, -1, err, errlen);
}

static int mf_parse(struct ls_instance *ins, const char *line, size_t len,
                    struct ls_record *rec)
{
    struct mf_ctx *ctx = ins->ctx;
    unsigned n0 = rec->nfields;
    struct ls_time t0 = rec->time;
    size_t i;

    for (i = 0; i < ctx->n; i++) {
        rec->nfields = n0;
        rec->time.sec = INT64_MIN;          /* set only if the pattern gives a time */
        rec->time.nsec = 0;
        if (ls_parser_parse(ctx->parsers[i], line, len, rec) == LS_OK &&
            rec->time.sec != INT64_MIN) {
            if (ctx->format_key) {
                struct ls_value v = ctx->names[i] ? ls_vstr(ctx->names[i], strlen(ctx->names[i]))
                                                  : ls_vnull();
                ls_record_set(rec, ctx->format_key, strlen(ctx->format_key), &v);
            }
            ls_parser_set_time(ins, &rec->time);
            return LS_OK;
        }
    }
    rec->nfields = n0;
    rec->time = t0;
    ls_parser_set_error(ins, "no multi_format pattern matched");
    return LS_DECLINED;
}

static void mf_destroy(struct ls_instance *ins)
{
    struct mf_ctx *ctx = ins->ctx;
    size_t i;

    for (i = 0; i < ctx->n; i++) {
        ls_instance_destroy(ctx->parsers[i]);
        ls_free(ctx->names[i]);
    }
}

const struct ls_plugin ls_plugin_parser_multi_format = {
    .name = "multi_format",
    .kind = LS_PLUGIN_PARSER,
    .description = "try several <pattern> parsers in order (fluent-plugin-multi-format-parser)",
    .params = mf_params,
    .ctx_size = sizeof(struct mf_ctx),
    .init = mf_init,
    .destroy = mf_destroy,
    .parse = mf_parse,
};
