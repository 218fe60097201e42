/*
 * tsv.c - the `tsv` parser: delimiter-separated values named by `keys`
 * (fluentd's parser_tsv: keys.zip(line.split(delimiter, keys.size))). The
 * last key takes the rest of the line; missing values are null. Values are
 * slices of the line; no quoting.
 */
#include "plugin.h"
#include "parser.h"

struct tsv_ctx {
    struct ls_strv keys;
    char *delimiter;
    size_t dlen;
};

static const struct ls_param tsv_params[] = {
    { "keys", LS_P_ARRAY, NULL, LS_PF_REQUIRED, offsetof(struct tsv_ctx, keys),
      "field names, in column order", NULL, NULL, 0, 0 },
    { "delimiter", LS_P_STR, "\t", 0, offsetof(struct tsv_ctx, delimiter),
      "column separator", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static int tsv_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                    size_t errlen)
{
    struct tsv_ctx *ctx = ins->ctx;

    ctx->dlen = ctx->delimiter ? strlen(ctx->delimiter) : 0;
    if (ctx->dlen == 0 || ctx->keys.n == 0) {
        snprintf(err, errlen, "%s:%d: tsv needs non-empty keys and delimiter",
                 sec ? sec->file : "(default)", sec ? sec->line : 0);
        return LS_ERROR;
    }
    return ls_parser_set_defaults(ins, "", NULL, -1, err, errlen);
}

static int tsv_parse(struct ls_instance *ins, const char *line, size_t len,
                     struct ls_record *rec)
{
    struct tsv_ctx *ctx = ins->ctx;
    size_t pos = 0, col;
    bool done = false;

    for (col = 0; col < ctx->keys.n; col++) {
        struct ls_value v;
        const char *k = ctx->keys.v[col];
        if (done) {
            v = ls_vnull();
        } else if (col == ctx->keys.n - 1) {
            v = ls_vstr(line + pos, len - pos);
            done = true;
        } else {
            const char *d = ctx->dlen == 1 ? memchr(line + pos, ctx->delimiter[0], len - pos)
                                           : memmem(line + pos, len - pos, ctx->delimiter, ctx->dlen);
            if (d == NULL) {
                v = ls_vstr(line + pos, len - pos);
                done = true;
            } else {
                v = ls_vstr(line + pos, (size_t)(d - line) - pos);
                pos = (size_t)(d - line) + ctx->dlen;
            }
        }
        ls_record_add(rec, k, strlen(k), &v);
    }
    return LS_OK;
}

const struct ls_plugin ls_plugin_parser_tsv = {
    .name = "tsv",
    .kind = LS_PLUGIN_PARSER,
    .description = "delimiter-separated values named by keys (no quoting)",
    .params = tsv_params,
    .ctx_size = sizeof(struct tsv_ctx),
    .init = tsv_init,
    .parse = tsv_parse,
};
