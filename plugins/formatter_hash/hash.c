/*
 * hash.c - fluentd's hash formatter: the record as Ruby's Hash#to_s prints
 * it, {"host"=>"192.168.0.1", "size"=>777} (the Ruby 2.x/3.x form that
 * fluentd's documentation shows), one per line.
 */
#include "plugin.h"
#include "json.h"

struct fh_ctx {
    bool add_newline;
};

static const struct ls_param fh_params[] = {
    { "add_newline", LS_P_BOOL, "true", 0, offsetof(struct fh_ctx, add_newline), "end each record with a newline",
      NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static int fh_format(struct ls_instance *ins, const struct ls_record *rec, struct ls_buf *out)
{
    struct fh_ctx *c = ins->ctx;
    size_t start = out->len;

    if (ls_ruby_put_record(out, rec) != LS_OK || (c->add_newline && ls_buf_putc(out, '\n') != LS_OK)) {
        out->len = start;
        return LS_AGAIN;
    }
    return LS_OK;
}

const struct ls_plugin ls_plugin_formatter_hash = {
    .name = "hash",
    .kind = LS_PLUGIN_FORMATTER,
    .description = "Ruby Hash#to_s of the record: {\"k\"=>\"v\"}",
    .params = fh_params,
    .ctx_size = sizeof(struct fh_ctx),
    .format = fh_format,
};
