/*
 * csv.c - fluentd's csv formatter: the values of `fields`, as Ruby's CSV
 * library writes them.
 *
 * force_quotes (default true) quotes every field; otherwise a field is
 * quoted only when it contains the delimiter, a quote, CR or LF, or is an
 * empty string (Ruby's CSV tells "" from nil that way). Quotes inside are
 * doubled. Values print with Ruby's to_s. Nested field paths ($.a.b,
 * record_accessor syntax) are not supported: the name is looked up as is.
 */
#include "plugin.h"
#include "json.h"

struct fc_ctx {
    char *delimiter;
    bool force_quotes;
    struct ls_strv fields;
    bool add_newline;
    int newline;
    const char *delim;
    size_t dlen;
    struct ls_buf val;
};

#define C(f) offsetof(struct fc_ctx, f)

static const struct ls_param fc_params[] = {
    { "delimiter", LS_P_STR, ",", 0, C(delimiter), "between fields ('\\t' or TAB for a tab)", NULL, NULL, 0, 0 },
    { "force_quotes", LS_P_BOOL, "true", 0, C(force_quotes), "quote every field", NULL, NULL, 0, 0 },
    { "fields", LS_P_ARRAY, NULL, LS_PF_REQUIRED, C(fields), "record keys to print, in order", NULL, NULL, 0, 0 },
    { "add_newline", LS_P_BOOL, "true", 0, C(add_newline), "end each record with a newline", NULL, NULL, 0, 0 },
    { "newline", LS_P_ENUM, "lf", 0, C(newline), "line ending: lf or crlf", NULL, "lf|crlf", 0, 0 },
    LS_PARAM_END
};

static int fc_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct fc_ctx *c = ins->ctx;
    size_t i, w = 0;

    /* empty names are dropped, as fluentd does */
    for (i = 0; i < c->fields.n; i++) {
        if (c->fields.v[i][0] == '\0') {
            ls_free(c->fields.v[i]);
        } else {
            c->fields.v[w++] = c->fields.v[i];
        }
    }
    c->fields.n = w;
    if (w == 0) {
        snprintf(err, errlen, "%s:%d: empty value is specified in fields parameter", sec ? sec->file : "(default)",
                 sec ? sec->line : 0);
        return LS_ERROR;
    }
    if (strcmp(c->delimiter, "\\t") == 0 || strcmp(c->delimiter, "TAB") == 0) {
        c->delim = "\t";
    } else {
        c->delim = c->delimiter;
    }
    c->dlen = strlen(c->delim);
    ls_buf_init(&c->val, 0);
    return LS_OK;
}

static void fc_destroy(struct ls_instance *ins)
{
    struct fc_ctx *c = ins->ctx;

    ls_buf_release(&c->val);
}

static int put_field(struct fc_ctx *c, struct ls_buf *out, const struct ls_field *f)
{
    const char *p, *q;
    size_t n;
    bool quote;

    ls_buf_reset(&c->val);
    if (f && ls_ruby_put_value(&c->val, &f->v, false) != LS_OK) {
        return LS_AGAIN;
    }
    p = c->val.p ? c->val.p : "";
    n = c->val.len;
    quote = c->force_quotes;
    if (!quote && f && f->v.type != LS_V_NULL) {
        quote = n == 0 || memchr(p, '"', n) || memchr(p, '\r', n) || memchr(p, '\n', n)
                || (c->dlen && memmem(p, n, c->delim, c->dlen));
    }
    if (!quote) {
        return ls_buf_append(out, p, n);
    }
    if (ls_buf_putc(out, '"') != LS_OK) {
        return LS_AGAIN;
    }
    while ((q = memchr(p, '"', n)) != NULL) {
        size_t run = (size_t)(q - p) + 1;
        if (ls_buf_append(out, p, run) != LS_OK || ls_buf_putc(out, '"') != LS_OK) {
            return LS_AGAIN;
        }
        p += run;
        n -= run;
    }
    if (ls_buf_append(out, p, n) != LS_OK || ls_buf_putc(out, '"') != LS_OK) {
        return LS_AGAIN;
    }
    return LS_OK;
}

static int fc_format(struct ls_instance *ins, const struct ls_record *rec, struct ls_buf *out)
{
    struct fc_ctx *c = ins->ctx;
    size_t start = out->len, i;

    for (i = 0; i < c->fields.n; i++) {
        const char *k = c->fields.v[i];
        const struct ls_field *f = ls_record_get(rec, k, strlen(k));
        if ((i > 0 && ls_buf_append(out, c->delim, c->dlen) != LS_OK) || put_field(c, out, f) != LS_OK) {
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

const struct ls_plugin ls_plugin_formatter_csv = {
    .name = "csv",
    .kind = LS_PLUGIN_FORMATTER,
    .description = "CSV of the listed fields (Ruby CSV quoting)",
    .params = fc_params,
    .ctx_size = sizeof(struct fc_ctx),
    .init = fc_init,
    .destroy = fc_destroy,
    .format = fc_format,
};
