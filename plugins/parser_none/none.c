/*
 * none.c - the `none` parser: the whole line becomes one field
 * (message_key, default "message"), the time is the current time.
 */
#include "plugin.h"
#include "parser.h"

struct none_ctx {
    char *message_key;
    size_t klen;
};

static const struct ls_param none_params[] = {
    { "message_key", LS_P_STR, "message", 0, offsetof(struct none_ctx, message_key),
      "field that receives the line", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static int none_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                     size_t errlen)
{
    struct none_ctx *ctx = ins->ctx;

    LS_UNUSED(sec);
    ctx->klen = strlen(ctx->message_key);
    return ls_parser_set_defaults(ins, "", NULL, -1, err, errlen);
}

static int none_parse(struct ls_instance *ins, const char *line, size_t len,
                      struct ls_record *rec)
{
    struct none_ctx *ctx = ins->ctx;
    struct ls_value v = ls_vstr(line, len);

    ls_record_add(rec, ctx->message_key, ctx->klen, &v);
    return LS_OK;
}

const struct ls_plugin ls_plugin_parser_none = {
    .name = "none",
    .kind = LS_PLUGIN_PARSER,
    .description = "the whole line as one field (message_key)",
    .params = none_params,
    .ctx_size = sizeof(struct none_ctx),
    .init = none_init,
    .parse = none_parse,
};
