/*
 * apache.c - the legacy `apache` parser (fluentd's `format apache`): a
 * regexp preset for the combined log format whose fields stay strings.
 * Most configs use apache2, which converts code/size and "-".
 */
#include "plugin.h"
#include "parser.h"

struct apache_ctx {
    struct ls_regex *re;
};

static const char apache_expression[] =
    "^(?<host>[^ ]*) [^ ]* (?<user>[^ ]*) \\[(?<time>[^\\]]*)\\] \"(?<method>\\S+)"
    "(?: +(?<path>[^ ]*) +\\S*)?\" (?<code>[^ ]*) (?<size>[^ ]*)"
    "(?: \"(?<referer>[^\\\"]*)\" \"(?<agent>[^\\\"]*)\")?$";

static int apache_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                       size_t errlen)
{
    struct apache_ctx *ctx = ins->ctx;
    char e[256];

    LS_UNUSED(sec);
    ctx->re = ls_regex_compile(apache_expression, false, e, sizeof(e));
    if (ctx->re == NULL) {
        snprintf(err, errlen, "apache parser: %s", e);
        return LS_ERROR;
    }
    return ls_parser_set_defaults(ins, "time", "%d/%b/%Y:%H:%M:%S %z", -1, err, errlen);
}

static void apache_destroy(struct ls_instance *ins)
{
    struct apache_ctx *ctx = ins->ctx;
    ls_regex_free(ctx->re);
}

static int apache_parse(struct ls_instance *ins, const char *line, size_t len,
                        struct ls_record *rec)
{
    struct apache_ctx *ctx = ins->ctx;
    return ls_regex_match_record(ctx->re, line, len, rec);
}

const struct ls_plugin ls_plugin_parser_apache = {
    .name = "apache",
    .kind = LS_PLUGIN_PARSER,
    .description = "Apache combined log, legacy fluentd preset (all fields strings)",
    .ctx_size = sizeof(struct apache_ctx),
    .init = apache_init,
    .destroy = apache_destroy,
    .parse = apache_parse,
};
