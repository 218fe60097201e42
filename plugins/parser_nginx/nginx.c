/*
 * nginx.c - the `nginx` parser: fluentd's parser_nginx, i.e. a regexp
 * preset for nginx's default "combined" log_format (plus the optional
 * $http_x_forwarded_for that fluentd >= 1.2 accepts after the agent).
 *
 * The regex and the time format are fluentd's, character for character,
 * so lines that fluentd rejects (e.g. a user agent with a \" inside, which
 * ends [^"]* early) are rejected here too. Fields are strings, as in
 * fluentd; add `types code:integer,size:integer` for numbers.
 */
#include "plugin.h"
#include "parser.h"

struct nginx_ctx {
    struct ls_regex *re;
};

static const char nginx_expression[] =
    "^(?<remote>[^ ]*) (?<host>[^ ]*) (?<user>[^ ]*) \\[(?<time>[^\\]]*)\\] "
    "\"(?<method>\\S+)(?: +(?<path>[^\\\"]*?)(?: +\\S*)?)?\" (?<code>[^ ]*) (?<size>[^ ]*)"
    "(?: \"(?<referer>[^\\\"]*)\" \"(?<agent>[^\\\"]*)\""
    "(?:\\s+\\\"?(?<http_x_forwarded_for>[^\\\"]*)\\\"?)?)?$";

static int nginx_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                      size_t errlen)
{
    struct nginx_ctx *ctx = ins->ctx;
    char e[256];

    LS_UNUSED(sec);
    ctx->re = ls_regex_compile(nginx_expression, false, e, sizeof(e));
    if (ctx->re == NULL) {
        snprintf(err, errlen, "nginx parser: %s", e);
        return LS_ERROR;
    }
    return ls_parser_set_defaults(ins, "time", "%d/%b/%Y:%H:%M:%S %z", -1, err, errlen);
}

static void nginx_destroy(struct ls_instance *ins)
{
    struct nginx_ctx *ctx = ins->ctx;
    ls_regex_free(ctx->re);
}

static int nginx_parse(struct ls_instance *ins, const char *line, size_t len,
                       struct ls_record *rec)
{
    struct nginx_ctx *ctx = ins->ctx;
    return ls_regex_match_record(ctx->re, line, len, rec);
}

const struct ls_plugin ls_plugin_parser_nginx = {
    .name = "nginx",
    .kind = LS_PLUGIN_PARSER,
    .description = "nginx combined access log (fluentd's nginx regexp)",
    .ctx_size = sizeof(struct nginx_ctx),
    .init = nginx_init,
    .destroy = nginx_destroy,
    .parse = nginx_parse,
};
