/*
 * tsv.c - fluentd's tsv formatter: the values of `keys` joined by TAB.
 *
 * Values print with Ruby's to_s (a missing key or nil is empty). As in
 * fluentd, nothing is escaped: a value holding the delimiter shifts the
 * columns, which is what a fluentd user's downstream already expects.
 */
#include "plugin.h"
#include "json.h"

struct ft_ctx {
    struct ls_strv keys;
    char *delimiter;
    bool add_newline;
    int newline;
};

#define C(f) offsetof(struct ft_ctx, f)

static const struct ls_param ft_params[] = {
    { "keys", LS_P_ARRAY, NULL, LS_PF_REQUIRED, C(keys), "record keys to print, in order", NULL, NULL, 0, 0 },
    { "delimiter", LS_P_STR, "\t", 0, C(delimiter), "between values", NULL, NULL, 0, 0 },
    { "add_newline", LS_P_BOOL, "true", 0, C(add_newline), "end each record with a newline", NULL, NULL, 0, 0 },
    { "newline", LS_P_ENUM, "lf", 0, C(newline), "line ending: lf or crlf", NULL, "lf|crlf", 0, 0 },
    LS_PARAM_END
};

static int ft_format(struct ls_instance *ins, const struct ls_record *rec, struct ls_buf *out)
{
    struct ft_ctx *c = ins->ctx;
    size_t start = out->len, i, dl = strlen(c->delimiter);

    for (i = 0; i < c->keys.n; i++) {
        const char *k = c->keys.v[i];
        const struct ls_field *f = ls_record_get(rec, k, strlen(k));
        if ((i > 0 && ls_buf_append(out, c->delimiter, dl) != LS_OK)
            || (f && ls_ruby_put_value(out, &f->v, false) != LS_OK)) {
            goto full;
        }
    }
    if (c->add_newline && ls_buf_append(out, c->newline ? "\r\n" : "\n", c->newline ? 2 : 1) != LS_OK) {
        goto full;
    }
    return LS_OK;
full:
    out->len = start;
    return LS_AGAIN;
}

const struct ls_plugin ls_plugin_formatter_tsv = {
    .name = "tsv",
    .kind = LS_PLUGIN_FORMATTER,
    .description = "values of the listed keys separated by TAB",
    .params = ft_params,
    .ctx_size = sizeof(struct ft_ctx),
    .format = ft_format,
};
