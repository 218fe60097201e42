/*
 * ltsv.c - fluentd's ltsv formatter: label:value pairs joined by TAB.
 *
 * Values print as Ruby's to_s (nil as empty, nested objects as Ruby's
 * Hash#inspect). Like fluentd since 1.12.2, occurrences of the delimiter
 * inside a pair are replaced by `replacement` (a space) so a value with a
 * TAB cannot split the line into a bogus extra field.
 */
#include "plugin.h"
#include "json.h"

struct fl_ctx {
    char *delimiter;
    char *label_delimiter;
    char *replacement;
    bool add_newline;
    int newline;
    struct ls_buf pair;
};

#define C(f) offsetof(struct fl_ctx, f)

static const struct ls_param fl_params[] = {
    { "delimiter", LS_P_STR, "\t", 0, C(delimiter), "between pairs", NULL, NULL, 0, 0 },
    { "label_delimiter", LS_P_STR, ":", 0, C(label_delimiter), "between label and value", NULL, NULL, 0, 0 },
    { "replacement", LS_P_STR, " ", 0, C(replacement), "replaces the delimiter inside labels and values",
      NULL, NULL, 0, 0 },
    { "add_newline", LS_P_BOOL, "true", 0, C(add_newline), "end each record with a newline", NULL, NULL, 0, 0 },
    { "newline", LS_P_ENUM, "lf", 0, C(newline), "line ending: lf or crlf", NULL, "lf|crlf", 0, 0 },
    LS_PARAM_END
};

static int fl_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct fl_ctx *c = ins->ctx;

    if (c->delimiter[0] == '\0') {
        snprintf(err, errlen, "%s:%d: 'delimiter' must not be empty", sec ? sec->file : "(default)",
                 sec ? sec->line : 0);
        return LS_ERROR;
    }
    ls_buf_init(&c->pair, 0);
    return LS_OK;
}

static void fl_destroy(struct ls_instance *ins)
{
    struct fl_ctx *c = ins->ctx;

    ls_buf_release(&c->pair);
}

/* Append p with every occurrence of the delimiter replaced. */
static int put_replaced(struct fl_ctx *c, struct ls_buf *out, const char *p, size_t n)
{
    size_t dl = strlen(c->delimiter), rl = strlen(c->replacement);
    const char *end = p + n;

    while (p < end) {
        const char *hit = memmem(p, (size_t)(end - p), c->delimiter, dl);
        size_t run = hit ? (size_t)(hit - p) : (size_t)(end - p);
        if (ls_buf_append(out, p, run) != LS_OK) {
            return LS_AGAIN;
        }
        if (hit == NULL) {
            break;
        }
        if (ls_buf_append(out, c->replacement, rl) != LS_OK) {
            return LS_AGAIN;
        }
        p = hit + dl;
    }
    return LS_OK;
}

static int fl_format(struct ls_instance *ins, const struct ls_record *rec, struct ls_buf *out)
{
    struct fl_ctx *c = ins->ctx;
    size_t start = out->len;
    unsigned i;

    for (i = 0; i < rec->nfields; i++) {
        const struct ls_field *f = &rec->fields[i];
        ls_buf_reset(&c->pair);
        ls_buf_append(&c->pair, f->key, f->key_len);
        ls_buf_append(&c->pair, c->label_delimiter, strlen(c->label_delimiter));
        ls_ruby_put_value(&c->pair, &f->v, false);
        if ((i > 0 && ls_buf_append(out, c->delimiter, strlen(c->delimiter)) != LS_OK)
            || put_replaced(c, out, c->pair.p, c->pair.len) != LS_OK) {
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

const struct ls_plugin ls_plugin_formatter_ltsv = {
    .name = "ltsv",
    .kind = LS_PLUGIN_FORMATTER,
    .description = "LTSV: label:value pairs separated by TAB",
    .params = fl_params,
    .ctx_size = sizeof(struct fl_ctx),
    .init = fl_init,
    .destroy = fl_destroy,
    .format = fl_format,
};
