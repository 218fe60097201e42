/*
 * regexp.c - the `regexp` parser: a user regexp whose named groups become
 * fields (fluentd's parser_regexp).
 *
 * The expression is Ruby syntax, "/body/flags" or a bare body (see
 * ls_regex_compile). Field values are slices of the line (no copy); a group
 * that did not take part in the match is left out, as fluentd does. v0.12
 * configs write `format /.../`, accepted here as an alias of expression.
 */
#include "plugin.h"
#include "parser.h"

struct regexp_ctx {
    char *expression;
    bool ignorecase;
    bool multiline;
    struct ls_regex *re;
};

static const struct ls_param regexp_params[] = {
    { "expression", LS_P_STR, NULL, LS_PF_REQUIRED, offsetof(struct regexp_ctx, expression),
      "regexp with named captures, /.../ with optional i m x flags", "format", NULL, 0, 0 },
    { "ignorecase", LS_P_BOOL, "false", 0, offsetof(struct regexp_ctx, ignorecase),
      "case-insensitive match (same as the i flag)", NULL, NULL, 0, 0 },
    { "multiline", LS_P_BOOL, "false", 0, offsetof(struct regexp_ctx, multiline),
      "dot matches newline (same as Ruby's m flag)", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static int regexp_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                       size_t errlen)
{
    struct regexp_ctx *ctx = ins->ctx;
    const char *file = sec ? sec->file : "(default)";
    int line = sec ? sec->line : 0;
    char e[256];
    char *src = ctx->expression;

    if (ctx->ignorecase) {
        src = ls_asprintf("(?i)%s", ctx->expression);
        /* a "/body/flags" form keeps its flags: put (?i) inside the slashes */
        if (ctx->expression[0] == '/') {
            ls_free(src);
            src = ls_asprintf("/(?i)%s", ctx->expression + 1);
        }
    }
    ctx->re = ls_regex_compile(src, ctx->multiline, e, sizeof(e));
    if (src != ctx->expression) {
        ls_free(src);
    }
    if (ctx->re == NULL) {
        snprintf(err, errlen, "%s:%d: %s", file, line, e);
        return LS_ERROR;
    }
    if (ls_regex_names(ctx->re) == 0) {
        snprintf(err, errlen, "%s:%d: no named captures in regexp '%s' (use (?<name>...))", file,
                 line, ctx->expression);
        return LS_ERROR;
    }
    return LS_OK;
}

static void regexp_destroy(struct ls_instance *ins)
{
    struct regexp_ctx *ctx = ins->ctx;
    ls_regex_free(ctx->re);
}

static int regexp_parse(struct ls_instance *ins, const char *line, size_t len,
                        struct ls_record *rec)
{
    struct regexp_ctx *ctx = ins->ctx;
    return ls_regex_match_record(ctx->re, line, len, rec);
}

const struct ls_plugin ls_plugin_parser_regexp = {
    .name = "regexp",
    .kind = LS_PLUGIN_PARSER,
    .description = "named groups of a regular expression become fields",
    .params = regexp_params,
    .ctx_size = sizeof(struct regexp_ctx),
    .init = regexp_init,
    .destroy = regexp_destroy,
    .parse = regexp_parse,
};
