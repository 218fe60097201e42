/*
 * csv.c - the `csv` parser: one CSV row per line, values named by `keys`
 * (fluentd's parser_csv, Ruby CSV.parse_line semantics).
 *
 * RFC 4180 quoting: "a ""b"", c" is one field. Unquoted fields are slices
 * of the line; only quoted fields with doubled quotes are copied (into the
 * record's arena). As Ruby's CSV: an empty unquoted field is null, an
 * empty quoted one is ""; a quote inside an unquoted field, text after a
 * closing quote, or an unclosed quote is malformed (declined). Keys without
 * a value are null and extra values are ignored (keys.zip(values)).
 */
#include "plugin.h"
#include "parser.h"

struct csv_ctx {
    struct ls_strv keys;
    char *delimiter;
    int parser_engine;
    size_t dlen;
};

static const struct ls_param csv_params[] = {
    { "keys", LS_P_ARRAY, NULL, LS_PF_REQUIRED, offsetof(struct csv_ctx, keys),
      "field names, in column order", NULL, NULL, 0, 0 },
    { "delimiter", LS_P_STR, ",", 0, offsetof(struct csv_ctx, delimiter),
      "column separator", NULL, NULL, 0, 0 },
    { "parser_engine", LS_P_ENUM, "normal", 0, offsetof(struct csv_ctx, parser_engine),
      "accepted for compatibility (one RFC 4180 reader is used)", NULL, "normal|fast", 0, 0 },
    LS_PARAM_END
};

static int csv_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                    size_t errlen)
{
    struct csv_ctx *ctx = ins->ctx;

    ctx->dlen = ctx->delimiter ? strlen(ctx->delimiter) : 0;
    if (ctx->dlen == 0 || ctx->keys.n == 0) {
        snprintf(err, errlen, "%s:%d: csv needs non-empty keys and delimiter",
                 sec ? sec->file : "(default)", sec ? sec->line : 0);
        return LS_ERROR;
    }
    return ls_parser_set_defaults(ins, "", NULL, -1, err, errlen);
}

static bool csv_delim_at(const struct csv_ctx *ctx, const char *p, const char *end)
{
    return (size_t)(end - p) >= ctx->dlen && memcmp(p, ctx->delimiter, ctx->dlen) == 0;
}

static int csv_parse(struct ls_instance *ins, const char *line, size_t len,
                     struct ls_record *rec)
{
    struct csv_ctx *ctx = ins->ctx;
    const char *p = line, *end = line + len;
    size_t col = 0, i;

    if (len > 0 && end[-1] == '\r') {
        end--;
    }
    for (;;) {
        struct ls_value v;
        if (p < end && *p == '"') {
            const char *s = ++p;
            size_t quotes = 0;
            for (;;) {
                if (p >= end) {
                    ls_parser_set_error(ins, "csv: unclosed quoted field");
                    return LS_DECLINED;
                }
                if (*p == '"') {
                    if (p + 1 < end && p[1] == '"') {
                        quotes++;
                        p += 2;
                        continue;
                    }
                    break;
                }
                p++;
            }
            if (quotes == 0) {
                v = ls_vstr(s, (size_t)(p - s));
            } else {
                char *d = ls_arena_alloc(rec->arena, (size_t)(p - s) - quotes + 1);
                size_t n = 0;
                const char *q;
                for (q = s; q < p; q++) {
                    d[n++] = *q;
                    if (*q == '"') {
                        q++;
                    }
                }
                d[n] = '\0';
                v = ls_vstr(d, n);
            }
            p++;    /* closing quote */
            if (p < end && !csv_delim_at(ctx, p, end)) {
                ls_parser_set_error(ins, "csv: text after a closing quote");
                return LS_DECLINED;
            }
        } else {
            const char *s = p;
            while (p < end && !csv_delim_at(ctx, p, end)) {
                if (*p == '"' || *p == '\r' || *p == '\n') {
                    ls_parser_set_error(ins, "csv: illegal quote or newline in unquoted field");
                    return LS_DECLINED;
                }
                p++;
            }
            v = p == s ? ls_vnull() : ls_vstr(s, (size_t)(p - s));
        }
        if (col < ctx->keys.n) {
            ls_record_add(rec, ctx->keys.v[col], strlen(ctx->keys.v[col]), &v);
        }
        col++;
        if (p >= end) {
            break;
        }
        p += ctx->dlen;
    }
    for (i = col; i < ctx->keys.n; i++) {
        struct ls_value n = ls_vnull();
        ls_record_add(rec, ctx->keys.v[i], strlen(ctx->keys.v[i]), &n);
    }
    return LS_OK;
}

const struct ls_plugin ls_plugin_parser_csv = {
    .name = "csv",
    .kind = LS_PLUGIN_PARSER,
    .description = "one CSV row per line (RFC 4180 quotes), fields named by keys",
    .params = csv_params,
    .ctx_size = sizeof(struct csv_ctx),
    .init = csv_init,
    .parse = csv_parse,
};
