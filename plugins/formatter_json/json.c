/*
 * json.c - fluentd's json formatter: the record as one JSON object per line.
 *
 * The hot path of the S3 benchmark: fields are escaped straight into the
 * chunk buffer by the JSON writer (agent/json.c). json_parser (oj, yajl,
 * json) is accepted for compatibility; every choice gives the same text.
 */
#include "plugin.h"
#include "json.h"

struct fj_ctx {
    int json_parser;
    bool add_newline;
    int newline;
};

static const struct ls_param fj_params[] = {
    { "json_parser", LS_P_ENUM, "oj", 0, offsetof(struct fj_ctx, json_parser),
      "accepted for compatibility (oj, yajl, json); the output is the same", NULL, "oj|yajl|json", 0, 0 },
    { "add_newline", LS_P_BOOL, "true", 0, offsetof(struct fj_ctx, add_newline), "end each record with a newline",
      NULL, NULL, 0, 0 },
    { "newline", LS_P_ENUM, "lf", 0, offsetof(struct fj_ctx, newline), "line ending: lf or crlf", NULL, "lf|crlf",
      0, 0 },
    LS_PARAM_END
};

static int fj_format(struct ls_instance *ins, const struct ls_record *rec, struct ls_buf *out)
{
    struct fj_ctx *c = ins->ctx;
    size_t start = out->len;

    if (ls_json_put_record(out, rec) != LS_OK) {
        return LS_AGAIN;
    }
    if (c->add_newline && ls_buf_append(out, c->newline ? "\r\n" : "\n", c->newline ? 2 : 1) != LS_OK) {
        out->len = start;
        return LS_AGAIN;
    }
    return LS_OK;
}

const struct ls_plugin ls_plugin_formatter_json = {
    .name = "json",
    .kind = LS_PLUGIN_FORMATTER,
    .description = "one JSON object per line",
    .params = fj_params,
    .ctx_size = sizeof(struct fj_ctx),
    .format = fj_format,
};
