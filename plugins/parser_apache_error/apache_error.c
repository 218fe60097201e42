/*
 * apache_error.c - the `apache_error` parser: fluentd's regexp preset for
 * Apache's error_log ("[Wed Oct 11 14:32:52 2000] [error] [client 1.2.3.4]
 * msg", and 2.4's "[core:error] [pid 1:tid 2]"). There is no time_format:
 * the time is read with the flexible (Time.parse-like) parser, as fluentd.
 */
#include "plugin.h"
#include "parser.h"

struct apache_error_ctx {
    struct ls_regex *re;
};

static const char apache_error_expression[] =
    "^\\[[^ ]* (?<time>[^\\]]*)\\] \\[(?<level>[^\\]]*)\\](?: \\[pid (?<pid>[^\\]]*)\\])?"
    "( \\[client (?<client>[^\\]]*)\\])? (?<message>.*)$";

static int apache_error_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                             size_t errlen)
{
    struct apache_error_ctx *ctx = ins->ctx;
    char e[256];

    LS_UNUSED(sec);
    ctx->re = ls_regex_compile(apache_error_expression, false, e, sizeof(e));
    if (ctx->re == NULL) {
        snprintf(err, errlen, "apache_error parser: %s", e);
        return LS_ERROR;
    }
    return ls_parser_set_defaults(ins, "time", NULL, -1, err, errlen);
}

static void apache_error_destroy(struct ls_instance *ins)
{
    struct apache_error_ctx *ctx = ins->ctx;
    ls_regex_free(ctx->re);
}

static int apache_error_parse(struct ls_instance *ins, const char *line, size_t len,
                              struct ls_record *rec)
{
    struct apache_error_ctx *ctx = ins->ctx;
    return ls_regex_match_record(ctx->re, line, len, rec);
}

const struct ls_plugin ls_plugin_parser_apache_error = {
    .name = "apache_error",
    .kind = LS_PLUGIN_PARSER,
    .description = "Apache error_log lines (fluentd's apache_error regexp)",
    .ctx_size = sizeof(struct apache_error_ctx),
    .init = apache_error_init,
    .destroy = apache_error_destroy,
    .parse = apache_error_parse,
};
