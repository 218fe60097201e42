/*
 * ltsv.c - the `ltsv` parser (Labeled Tab-Separated Values, e.g. nginx's
 * popular `log_format ltsv "time:$time_local\thost:$remote_addr..."`).
 *
 * fluentd's parser_ltsv: split on delimiter (or delimiter_pattern), each
 * piece split once on label_delimiter; pieces without it are dropped, and
 * a repeated label keeps the last value. Values are slices of the line.
 * time_key "time"; without time_format the flexible parser reads nginx's
 * $time_local ("21/Nov/2026:12:00:00 +0900") and ISO 8601.
 */
#include "plugin.h"
#include "parser.h"

struct ltsv_ctx {
    char *delimiter;
    char *delimiter_pattern;
    char *label_delimiter;
    struct ls_regex *re;
    size_t dlen, llen;
};

static const struct ls_param ltsv_params[] = {
    { "delimiter", LS_P_STR, "\t", 0, offsetof(struct ltsv_ctx, delimiter),
      "separator between label:value pairs", NULL, NULL, 0, 0 },
    { "delimiter_pattern", LS_P_STR, NULL, 0, offsetof(struct ltsv_ctx, delimiter_pattern),
      "regexp separator between pairs (overrides delimiter)", NULL, NULL, 0, 0 },
    { "label_delimiter", LS_P_STR, ":", 0, offsetof(struct ltsv_ctx, label_delimiter),
      "separator between a label and its value", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static int ltsv_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                     size_t errlen)
{
    struct ltsv_ctx *ctx = ins->ctx;
    const char *file = sec ? sec->file : "(default)";
    int line = sec ? sec->line : 0;
    char e[256];

    ctx->dlen = ctx->delimiter ? strlen(ctx->delimiter) : 0;
    ctx->llen = ctx->label_delimiter ? strlen(ctx->label_delimiter) : 0;
    if (ctx->llen == 0 || (ctx->dlen == 0 && !ctx->delimiter_pattern)) {
        snprintf(err, errlen, "%s:%d: ltsv delimiter and label_delimiter must not be empty", file,
                 line);
        return LS_ERROR;
    }
    if (ctx->delimiter_pattern && *ctx->delimiter_pattern) {
        ctx->re = ls_regex_compile(ctx->delimiter_pattern, false, e, sizeof(e));
        if (ctx->re == NULL) {
            snprintf(err, errlen, "%s:%d: delimiter_pattern: %s", file, line, e);
            return LS_ERROR;
        }
    }
    return ls_parser_set_defaults(ins, "time", NULL, -1, err, errlen);
}

static void ltsv_destroy(struct ls_instance *ins)
{
    struct ltsv_ctx *ctx = ins->ctx;
    ls_regex_free(ctx->re);
}

static void ltsv_pair(struct ltsv_ctx *ctx, const char *p, size_t n, struct ls_record *rec)
{
    const char *sep = ctx->llen == 1 ? memchr(p, ctx->label_delimiter[0], n)
                                     : memmem(p, n, ctx->label_delimiter, ctx->llen);
    struct ls_value v;

    if (sep == NULL) {
        return;
    }
    v = ls_vstr(sep + ctx->llen, n - (size_t)(sep - p) - ctx->llen);
    ls_record_set(rec, p, (size_t)(sep - p), &v);
}

static int ltsv_parse(struct ls_instance *ins, const char *line, size_t len,
                      struct ls_record *rec)
{
    struct ltsv_ctx *ctx = ins->ctx;
    size_t pos = 0;

    while (pos < len) {
        size_t ms, me;
        const char *d;
        if (ctx->re) {
            int rc = ls_regex_find(ctx->re, line, len, pos, &ms, &me);
            if (rc < 0) {
                return LS_ERROR;
            }
            if (rc == 0 || me == ms) {
                ms = me = len;
            }
        } else {
            d = ctx->dlen == 1 ? memchr(line + pos, ctx->delimiter[0], len - pos)
                               : memmem(line + pos, len - pos, ctx->delimiter, ctx->dlen);
            ms = d ? (size_t)(d - line) : len;
            me = d ? ms + ctx->dlen : len;
        }
        ltsv_pair(ctx, line + pos, ms - pos, rec);
        pos = me;
    }
    return LS_OK;
}

const struct ls_plugin ls_plugin_parser_ltsv = {
    .name = "ltsv",
    .kind = LS_PLUGIN_PARSER,
    .description = "Labeled Tab-Separated Values (label:value pairs)",
    .params = ltsv_params,
    .ctx_size = sizeof(struct ltsv_ctx),
    .init = ltsv_init,
    .destroy = ltsv_destroy,
    .parse = ltsv_parse,
};
