/*
 * multiline.c - the `multiline` parser: joins lines into one event (stack
 * traces, multi-line application logs), fluentd's parser_multiline as
 * in_tail drives it.
 *
 * With format_firstline, a line matching it starts a new event and the
 * pending one is parsed with format1..formatN, concatenated into one regexp
 * with Ruby's /m (dot matches newline); lines before the first first-line
 * are declined. Without format_firstline, lines are appended until the
 * joined text matches. The joined text (lines separated by "\n") lives in a
 * buffer this parser owns, capped by max_bytes (further lines of an event
 * are dropped with a warning). Two buffers alternate: the returned
 * record's fields are slices of the finished event while the new line
 * already sits in the other one. The v0.12 flat form (format multiline +
 * format_firstline + format1.. in the <source>) binds the same names.
 */
#include "plugin.h"
#include "parser.h"
#include "log.h"

#define ML_MAX_FORMATS 20

struct ml_ctx {
    char *format_firstline;
    char *formats[ML_MAX_FORMATS];
    int64_t max_bytes;
    struct ls_regex *first;
    struct ls_regex *re;
    struct ls_buf pend;
    struct ls_buf out;
    bool have_pend;
    bool truncated;
};

#define ML_FMT(n)                                                                               \
    { "format" #n, LS_P_STR, NULL, 0, offsetof(struct ml_ctx, formats[n - 1]),                  \
      "regexp part " #n " (parts are concatenated)", NULL, NULL, 0, 0 }

static const struct ls_param ml_params[] = {
    { "format_firstline", LS_P_STR, NULL, 0, offsetof(struct ml_ctx, format_firstline),
      "regexp matching the first line of an event", NULL, NULL, 0, 0 },
    ML_FMT(1), ML_FMT(2), ML_FMT(3), ML_FMT(4), ML_FMT(5), ML_FMT(6), ML_FMT(7), ML_FMT(8),
    ML_FMT(9), ML_FMT(10), ML_FMT(11), ML_FMT(12), ML_FMT(13), ML_FMT(14), ML_FMT(15),
    ML_FMT(16), ML_FMT(17), ML_FMT(18), ML_FMT(19), ML_FMT(20),
    { "max_bytes", LS_P_SIZE, "1m", 0, offsetof(struct ml_ctx, max_bytes),
      "cap on one joined event; later lines of a longer event are dropped", NULL, NULL, 1024,
      1LL << 30 },
    LS_PARAM_END
};

/*
 * fluentd's multiline parser takes format_firstline and formatN only as /regexp/ (its
 * check_format_regexp): "/.../m" or a bare body is a configuration error there, so here too.
 */
static int ml_check_slashes(struct ls_conf_section *sec, const char *key, const char *v,
                            char *err, size_t errlen)
{
    size_t n = strlen(v);

    if (n >= 2 && v[0] == '/' && v[n - 1] == '/') {
        return LS_OK;
    }
    ls_conf_param_error(sec, key, err, errlen, "%s should be Regexp, need //: '%s'", key, v);
    return LS_ERROR;
}

/* "/body/" -> body (fluentd strips the slashes: f[1..-2]). */
static void ml_strip(const char *s, const char **body, size_t *len)
{
    size_t n = strlen(s);

    if (n >= 2 && s[0] == '/' && s[n - 1] == '/') {
        *body = s + 1;
        *len = n - 2;
    } else {
        *body = s;
        *len = n;
    }
}

static int ml_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                   size_t errlen)
{
    struct ml_ctx *ctx = ins->ctx;
    const char *file = sec ? sec->file : "(default)";
    int line = sec ? sec->line : 0;
    struct ls_buf joined;
    char e[256];
    int i, last = -1;

    ls_buf_init(&ctx->pend, (size_t)ctx->max_bytes);
    ls_buf_init(&ctx->out, (size_t)ctx->max_bytes);
    ls_buf_init(&joined, 0);
    for (i = 0; i < ML_MAX_FORMATS; i++) {
        const char *b;
        size_t n;
        if (ctx->formats[i] == NULL) {
            continue;
        }
        if (last != i - 1) {
            snprintf(err, errlen, "%s:%d: jump of format index found: format%d is missing", file,
                     line, last + 2);
            ls_buf_release(&joined);
            return LS_ERROR;
        }
        last = i;
        snprintf(e, sizeof(e), "format%d", i + 1);
        if (ml_check_slashes(sec, e, ctx->formats[i], err, errlen) != LS_OK) {
            ls_buf_release(&joined);
            return LS_ERROR;
        }
        ml_strip(ctx->formats[i], &b, &n);
        ls_buf_append(&joined, b, n);
    }
    if (last < 0) {
        snprintf(err, errlen, "%s:%d: multiline parser needs format1 (format1..format20)", file,
                 line);
        ls_buf_release(&joined);
        return LS_ERROR;
    }
    ctx->re = ls_regex_compile(ls_buf_cstr(&joined), true, e, sizeof(e));
    ls_buf_release(&joined);
    if (ctx->re == NULL) {
        snprintf(err, errlen, "%s:%d: format1..: %s", file, line, e);
        return LS_ERROR;
    }
    if (ls_regex_names(ctx->re) == 0) {
        snprintf(err, errlen, "%s:%d: no named captures in format1..format%d", file, line,
                 last + 1);
        return LS_ERROR;
    }
    if (ctx->format_firstline && *ctx->format_firstline) {
        const char *b;
        size_t n;
        char *body;

        if (ml_check_slashes(sec, "format_firstline", ctx->format_firstline, err, errlen) !=
            LS_OK) {
            return LS_ERROR;
        }
        ml_strip(ctx->format_firstline, &b, &n);
        body = ls_strndup(b, n);
        ctx->first = ls_regex_compile(body, false, e, sizeof(e));
        ls_free(body);
        if (ctx->first == NULL) {
            snprintf(err, errlen, "%s:%d: format_firstline: %s", file, line, e);
            return LS_ERROR;
        }
    }
    return ls_parser_set_defaults(ins, "time", NULL, -1, err, errlen);
}

static void ml_destroy(struct ls_instance *ins)
{
    struct ml_ctx *ctx = ins->ctx;

    ls_regex_free(ctx->first);
    ls_regex_free(ctx->re);
    ls_buf_release(&ctx->pend);
    ls_buf_release(&ctx->out);
}

static void ml_swap(struct ml_ctx *ctx)
{
    struct ls_buf t = ctx->out;
    ctx->out = ctx->pend;
    ctx->pend = t;
    ls_buf_reset(&ctx->pend);
    ctx->have_pend = false;
    ctx->truncated = false;
}

static void ml_append(struct ls_instance *ins, struct ml_ctx *ctx, const char *line, size_t len)
{
    size_t need = len + (ctx->have_pend ? 1 : 0);

    if (ctx->truncated || ls_buf_reserve(&ctx->pend, need) != LS_OK) {
        if (!ctx->truncated) {
            ls_plg_warn(ins, "multiline event longer than max_bytes (%lld); dropping its "
                        "remaining lines", (long long)ctx->max_bytes);
            ins->metrics.dropped++;
        }
        ctx->truncated = true;
        return;
    }
    if (ctx->have_pend) {
        ls_buf_add_unchecked(&ctx->pend, "\n", 1);
    }
    ls_buf_add_unchecked(&ctx->pend, line, len);
    ctx->have_pend = true;
}

static int ml_parse_out(struct ls_instance *ins, struct ml_ctx *ctx, struct ls_record *rec)
{
    unsigned start = rec->nfields;
    int rc = ls_regex_match_record(ctx->re, ctx->out.p, ctx->out.len, rec);

    if (rc != LS_OK) {
        rec->nfields = start;
        ls_parser_set_declined_text(ins, ctx->out.p, ctx->out.len);
    }
    return rc;
}

static int ml_parse(struct ls_instance *ins, const char *line, size_t len, struct ls_record *rec)
{
    struct ml_ctx *ctx = ins->ctx;

    if (ctx->first == NULL) {
        ml_append(ins, ctx, line, len);
        if (ctx->truncated) {
            ml_swap(ctx);
            ls_parser_set_error(ins, "multiline event longer than max_bytes never matched");
            return LS_DECLINED;
        }
        if (ls_regex_search(ctx->re, ctx->pend.p, ctx->pend.len) == 1) {
            ml_swap(ctx);
            return ml_parse_out(ins, ctx, rec);
        }
        return LS_AGAIN;
    }
    if (ls_regex_search(ctx->first, line, len) == 1) {
        if (ctx->have_pend) {
            ml_swap(ctx);
            ml_append(ins, ctx, line, len);
            return ml_parse_out(ins, ctx, rec);
        }
        ml_append(ins, ctx, line, len);
        return LS_AGAIN;
    }
    if (!ctx->have_pend) {
        ls_parser_set_error(ins, "got incomplete line before first line");
        return LS_DECLINED;
    }
    ml_append(ins, ctx, line, len);
    return LS_AGAIN;
}

static int ml_flush(struct ls_instance *ins, struct ls_record *rec)
{
    struct ml_ctx *ctx = ins->ctx;

    if (!ctx->have_pend) {
        return LS_DECLINED;
    }
    ml_swap(ctx);
    return ml_parse_out(ins, ctx, rec);
}

const struct ls_plugin ls_plugin_parser_multiline = {
    .name = "multiline",
    .kind = LS_PLUGIN_PARSER,
    .description = "joins lines into one event: format_firstline + format1..format20",
    .params = ml_params,
    .ctx_size = sizeof(struct ml_ctx),
    .init = ml_init,
    .destroy = ml_destroy,
    .parse = ml_parse,
    .parse_flush = ml_flush,
};
