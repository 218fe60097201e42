/*
 * apache2.c - the `apache2` parser: fluentd's hand-coded Apache combined
 * log parser. Same regex idea as `apache` but quotes escaped as \" are
 * allowed inside path, referer and agent, and values are converted exactly
 * as fluentd's parser_apache2.rb does: code and size become integers, "-"
 * becomes null for host, user, size, referer and agent, a code of 0 (or
 * not a number) becomes null, and every key is present (null when its
 * group did not match), in fluentd's order.
 */
#include "plugin.h"
#include "parser.h"

struct apache2_ctx {
    struct ls_regex *re;
};

static const char apache2_expression[] =
    "^(?<host>[^ ]*) [^ ]* (?<user>[^ ]*) \\[(?<time>[^\\]]*)\\] \"(?<method>\\S+)"
    "(?: +(?<path>(?:[^\\\"]|\\\\\")*?)(?: +\\S*)?)?\" (?<code>[^ ]*) (?<size>[^ ]*)"
    "(?: \"(?<referer>(?:[^\\\"]|\\\\\")*)\" \"(?<agent>(?:[^\\\"]|\\\\\")*)\")?$";

static const char *const apache2_keys[] = {
    "host", "user", "method", "path", "code", "size", "referer", "agent", "time",
};

static int apache2_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                        size_t errlen)
{
    struct apache2_ctx *ctx = ins->ctx;
    char e[256];

    LS_UNUSED(sec);
    ctx->re = ls_regex_compile(apache2_expression, false, e, sizeof(e));
    if (ctx->re == NULL) {
        snprintf(err, errlen, "apache2 parser: %s", e);
        return LS_ERROR;
    }
    return ls_parser_set_defaults(ins, "time", "%d/%b/%Y:%H:%M:%S %z", -1, err, errlen);
}

static void apache2_destroy(struct ls_instance *ins)
{
    struct apache2_ctx *ctx = ins->ctx;
    ls_regex_free(ctx->re);
}

static bool is_dash(const struct ls_value *v)
{
    return v->type == LS_V_STR && v->u.s.len == 1 && v->u.s.p[0] == '-';
}

static int apache2_parse(struct ls_instance *ins, const char *line, size_t len,
                         struct ls_record *rec)
{
    struct apache2_ctx *ctx = ins->ctx;
    struct ls_value vals[LS_ARRAY_LEN(apache2_keys)];
    unsigned start = rec->nfields;
    size_t i;
    int rc = ls_regex_match_record(ctx->re, line, len, rec);

    if (rc != LS_OK) {
        return rc;
    }
    for (i = 0; i < LS_ARRAY_LEN(apache2_keys); i++) {
        struct ls_field *f = ls_record_get(rec, apache2_keys[i], strlen(apache2_keys[i]));
        vals[i] = f ? f->v : ls_vnull();
    }
    rec->nfields = start;
    for (i = 0; i < LS_ARRAY_LEN(apache2_keys); i++) {
        struct ls_value v = vals[i];
        const char *k = apache2_keys[i];
        if ((i == 0 || i == 1 || i == 6 || i == 7) && is_dash(&v)) {
            v = ls_vnull();
        } else if (i == 4 && v.type == LS_V_STR) {
            v = ls_value_ruby_to_i(rec->arena, v.u.s.p, v.u.s.len);
            if (v.type == LS_V_INT && v.u.i == 0) {
                v = ls_vnull();
            }
        } else if (i == 5 && v.type == LS_V_STR) {
            /* to_i as fluentd: a size past int64 keeps its digits (Ruby's bignum) */
            v = is_dash(&v) ? ls_vnull() : ls_value_ruby_to_i(rec->arena, v.u.s.p, v.u.s.len);
        }
        ls_record_add(rec, k, strlen(k), &v);
    }
    return LS_OK;
}

const struct ls_plugin ls_plugin_parser_apache2 = {
    .name = "apache2",
    .kind = LS_PLUGIN_PARSER,
    .description = "Apache combined log; code/size as integers, '-' as null (fluentd's apache2)",
    .ctx_size = sizeof(struct apache2_ctx),
    .init = apache2_init,
    .destroy = apache2_destroy,
    .parse = apache2_parse,
};
