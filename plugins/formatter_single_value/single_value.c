/*
 * single_value.c - fluentd's single_value formatter: one field's value per
 * line (by default "message"), e.g. to write back the raw lines that a
 * `none` parser read.
 *
 * The value prints with Ruby's to_s; a missing field gives an empty line.
 * With add_newline the newline is appended even when the value already
 * ends with one, as fluentd does.
 */
#include "plugin.h"
#include "json.h"

struct fs_ctx {
    char *message_key;
    bool add_newline;
    int newline;
};

#define C(f) offsetof(struct fs_ctx, f)

static const struct ls_param fs_params[] = {
    { "message_key", LS_P_STR, "message", 0, C(message_key), "the field to print", NULL, NULL, 0, 0 },
    { "add_newline", LS_P_BOOL, "true", 0, C(add_newline), "end each record with a newline", NULL, NULL, 0, 0 },
    { "newline", LS_P_ENUM, "lf", 0, C(newline), "line ending: lf or crlf", NULL, "lf|crlf", 0, 0 },
    LS_PARAM_END
};

static int fs_format(struct ls_instance *ins, const struct ls_record *rec, struct ls_buf *out)
{
    struct fs_ctx *c = ins->ctx;
    size_t start = out->len;
    const struct ls_field *f = ls_record_get(rec, c->message_key, strlen(c->message_key));

    if ((f && ls_ruby_put_value(out, &f->v, false) != LS_OK)
        || (c->add_newline && ls_buf_append(out, c->newline ? "\r\n" : "\n", c->newline ? 2 : 1) != LS_OK)) {
        out->len = start;
        return LS_AGAIN;
    }
    return LS_OK;
}

const struct ls_plugin ls_plugin_formatter_single_value = {
    .name = "single_value",
    .kind = LS_PLUGIN_FORMATTER,
    .description = "the value of one field (message_key) per line",
    .params = fs_params,
    .ctx_size = sizeof(struct fs_ctx),
    .format = fs_format,
};
