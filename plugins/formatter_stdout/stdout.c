/*
 * stdout.c - fluentd's stdout formatter (out_stdout's default):
 * "2026-11-21 12:00:00.000000000 +0900 tag: <record>\n", where the record
 * part is another formatter (output_type, default json) configured from
 * the same section, and its trailing newline is chomped.
 *
 * The sub-formatter is created from this very section, as fluentd does,
 * so e.g. output_type csv reads `fields` here. Since a section's @type wins
 * over the requested type, @type is swapped for output_type during that
 * one call (config time, single-threaded) and restored at once.
 */
#include "plugin.h"
#include "inject.h"

struct fso_ctx {
    char *output_type;
    struct ls_time_formatter *timef;
    struct ls_instance *sub;
    struct ls_buf tmp;
};

static const struct ls_param fso_params[] = {
    { "output_type", LS_P_STR, "json", 0, offsetof(struct fso_ctx, output_type),
      "formatter of the record part (json, hash, ltsv, csv...)", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static int fso_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct fso_ctx *c = ins->ctx;
    struct ls_conf_param *tp = NULL, *p;
    char *saved = NULL;

    ls_buf_init(&c->tmp, 0);
    if (strcmp(c->output_type, "stdout") == 0) {
        snprintf(err, errlen, "%s:%d: output_type stdout would format forever", sec ? sec->file : "(default)",
                 sec ? sec->line : 0);
        return LS_ERROR;
    }
    c->timef = ls_time_formatter_create(LS_TIME_STRING, "%Y-%m-%d %H:%M:%S.%N %z", true, NULL, false, err, errlen);
    if (c->timef == NULL) {
        return LS_ERROR;
    }
    if (sec) {
        for (p = sec->params; p; p = p->next) {
            if (strcmp(p->key, "@type") == 0 || strcmp(p->key, "type") == 0) {
                tp = p;     /* the last one is the one in effect */
            }
        }
    }
    if (tp) {
        saved = tp->value;
        tp->value = c->output_type;
    }
    c->sub = ls_instance_create(ins->engine, ins->owner ? ins->owner : ins, LS_PLUGIN_FORMATTER, c->output_type,
                                sec, err, errlen);
    if (tp) {
        tp->value = saved;
    }
    return c->sub ? LS_OK : LS_ERROR;
}

static void fso_destroy(struct ls_instance *ins)
{
    struct fso_ctx *c = ins->ctx;

    ls_instance_destroy(c->sub);
    ls_time_formatter_destroy(c->timef);
    ls_buf_release(&c->tmp);
}

static int fso_format(struct ls_instance *ins, const struct ls_record *rec, struct ls_buf *out)
{
    struct fso_ctx *c = ins->ctx;
    size_t start = out->len, n;
    int rc;

    ls_buf_reset(&c->tmp);
    rc = c->sub->plugin->format(c->sub, rec, &c->tmp);
    if (rc != LS_OK) {
        return rc;
    }
    /* String#chomp: one trailing \n, \r\n or \r */
    n = c->tmp.len;
    if (n && c->tmp.p[n - 1] == '\n') {
        n--;
        if (n && c->tmp.p[n - 1] == '\r') {
            n--;
        }
    } else if (n && c->tmp.p[n - 1] == '\r') {
        n--;
    }
    if (ls_time_formatter_put(c->timef, &rec->time, out) != LS_OK || ls_buf_putc(out, ' ') != LS_OK
        || ls_buf_append(out, rec->tag ? rec->tag : "", rec->tag ? rec->tag_len : 0) != LS_OK
        || ls_buf_append(out, ": ", 2) != LS_OK || ls_buf_append(out, c->tmp.p, n) != LS_OK
        || ls_buf_putc(out, '\n') != LS_OK) {
        out->len = start;
        return LS_AGAIN;
    }
    return LS_OK;
}

const struct ls_plugin ls_plugin_formatter_stdout = {
    .name = "stdout",
    .kind = LS_PLUGIN_FORMATTER,
    .description = "\"<time> <tag>: <record>\" as fluentd's stdout output prints",
    .params = fso_params,
    .ctx_size = sizeof(struct fso_ctx),
    .init = fso_init,
    .destroy = fso_destroy,
    .format = fso_format,
};
