/*
 * record_modifier.c - fluent-plugin-record-modifier 2.x (bundled with td-agent): set fields
 * from <record> templates, then remove_keys or whitelist_keys, then <replace> regexp
 * substitutions, then char_encoding. Both the filter and the output form (which re-emits
 * under `tag`, as the plugin's router.emit does).
 *
 * The plugin evaluates "${...}" as Ruby; here the Ruby that real files write is evaluated
 * without Ruby through the shared templates: ${tag}, ${tag_parts[N]}, ${time} (integer
 * seconds, the plugin's EventTime), ${record['k']} and nested ${record['a']['b']}. As in
 * the plugin, a value that is exactly one "${...}" keeps the value's type (a number stays
 * a number, a missing key is null), fields are set one after the other (a later field sees
 * an earlier one), and a value without "${" is a literal. Other Ruby, prepare_value, and
 * ${hostname} (no such variable in the plugin: every record would fail) are configuration
 * errors naming file:line.
 */
#include "plugin.h"
#include "template.h"
#include "parser.h"
#include "enc.h"
#include "log.h"

#include <stdio.h>

struct rm_field {
    char *key;
    struct ls_tmpl tmpl;
    bool single;         /* exactly one "${...}": keeps the Ruby value's type */
};

struct rm_replace {
    char *key;
    struct ls_regex *re;
    char *replace;
};

struct rm_ctx {
    char *tag;                   /* output form */
    char *char_encoding;
    char *remove_keys;
    char *whitelist_keys;
    char *prepare_value;
    struct rm_field *fields;
    size_t nfields;
    struct ls_accessor *remove;
    size_t nremove;
    struct ls_strv whitelist;
    struct rm_replace *replaces;
    size_t nreplaces;
    struct ls_enc enc;
    bool convert;
    struct ls_buf tmp;
};

struct rm_replace_conf {
    char *key;
    char *expression;
    char *replace;
};

static const struct ls_param replace_params[] = {
    { "key", LS_P_STR, NULL, LS_PF_REQUIRED, offsetof(struct rm_replace_conf, key), NULL, NULL,
      NULL, 0, 0 },
    { "expression", LS_P_STR, NULL, LS_PF_REQUIRED, offsetof(struct rm_replace_conf, expression),
      NULL, NULL, NULL, 0, 0 },
    { "replace", LS_P_STR, NULL, LS_PF_REQUIRED, offsetof(struct rm_replace_conf, replace), NULL,
      NULL, NULL, 0, 0 },
    LS_PARAM_END
};

#define RM_COMMON_PARAMS                                                                         \
    { "char_encoding", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct rm_ctx, char_encoding),  \
      "`from` (only names the bytes) or `from:to` (convert every string, invalid bytes "        \
      "replaced)", NULL, NULL, 0, 0 },                                                           \
    { "remove_keys", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct rm_ctx, remove_keys),      \
      "comma-separated keys (or record accessors `$.a.b`) to delete", NULL, NULL, 0, 0 },       \
    { "whitelist_keys", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct rm_ctx, whitelist_keys),\
      "comma-separated keys to keep (plus the `<record>` keys); exclusive with remove_keys", NULL, \
      NULL, 0, 0 },                                                                              \
    { "prepare_value", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct rm_ctx, prepare_value),  \
      "Ruby run at start: refused (logship has no Ruby)", NULL, NULL, 0, 0 },                   \
    { "record: KEY", LS_P_STR, NULL, LS_PF_NO_STORE, 0,                                          \
      "field to set: a literal, or `${tag}`, `${tag_parts[N]}`, `${time}`, `${record['k']}`",  \
      NULL, NULL, 0, 0 },                                                                        \
    { "replace: key", LS_P_STR, NULL, LS_PF_NO_STORE, 0,                                         \
      "(required) field whose string value is rewritten", NULL, NULL, 0, 0 },                    \
    { "replace: expression", LS_P_STR, NULL, LS_PF_NO_STORE, 0,                                  \
      "(required) regexp `/re/`; every match is replaced", NULL, NULL, 0, 0 },                   \
    { "replace: replace", LS_P_STR, NULL, LS_PF_NO_STORE, 0,                                     \
      "(required) replacement; `\\1`, `\\k<name>`, `\\0` insert groups", NULL, NULL, 0, 0 }

static const struct ls_param rm_filter_params[] = {
    RM_COMMON_PARAMS,
    LS_PARAM_END
};

static const struct ls_param rm_output_params[] = {
    { "tag", LS_P_STR, NULL, LS_PF_REQUIRED, offsetof(struct rm_ctx, tag),
      "tag of the re-emitted records", NULL, NULL, 0, 0 },
    RM_COMMON_PARAMS,
    LS_PARAM_END
};

static int add_field(struct rm_ctx *ctx, struct ls_conf_param *p, char *err, size_t errlen)
{
    struct rm_field *f = NULL;
    char msg[512];
    size_t i;
    const char *first;

    p->used = true;
    for (i = 0; i < ctx->nfields; i++) {
        if (strcmp(ctx->fields[i].key, p->key) == 0) {
            f = &ctx->fields[i];          /* a later <record> wins, in the earlier's place */
            ls_tmpl_release(&f->tmpl);
            break;
        }
    }
    if (f == NULL) {
        ctx->fields = ls_realloc(ctx->fields, (ctx->nfields + 1) * sizeof(*ctx->fields));
        f = &ctx->fields[ctx->nfields++];
        memset(f, 0, sizeof(*f));
        f->key = ls_strdup(p->key);
    }
    if (strstr(p->value, "${hostname}") || strstr(p->value, "__HOSTNAME__")) {
        snprintf(err, errlen, "%s:%d: record_modifier has no hostname placeholder (fluentd fails "
                 "on every record); write \"#{Socket.gethostname}\" in double quotes", p->file,
                 p->line);
        return LS_ERROR;
    }
    first = strstr(p->value, "${");
    if (ls_tmpl_compile(&f->tmpl, p->value, LS_TMPL_TIME_EPOCH | LS_TMPL_NO_HOSTNAME |
                        LS_TMPL_NO_TAG_FIXES, msg, sizeof(msg)) != LS_OK) {
        snprintf(err, errlen, "%s:%d: %s", p->file, p->line, msg);
        return LS_ERROR;
    }
    f->single = first && first == p->value && strstr(first + 2, "${") == NULL &&
                p->value[strlen(p->value) - 1] == '}';
    return LS_OK;
}

static int rm_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct rm_ctx *ctx = ins->ctx;
    struct ls_conf_section *s;
    char msg[400];

    ls_buf_init(&ctx->tmp, 0);
    if (ctx->prepare_value) {
        ls_conf_param_error(sec, "prepare_value", err, errlen,
                            "prepare_value is Ruby run at start, which logship cannot run");
        return LS_ERROR;
    }
    if (ctx->remove_keys && ctx->whitelist_keys) {
        ls_conf_param_error(sec, "whitelist_keys", err, errlen,
                            "remove_keys and whitelist_keys are exclusive with each other");
        return LS_ERROR;
    }
    if (ls_conf_get_param(sec, "allowlist_keys")) {
        struct ls_conf_param *p = ls_conf_get_param(sec, "allowlist_keys");
        p->used = true;
        ls_warn("%s:%d: record_modifier has no 'allowlist_keys' (that is Fluent Bit's name); "
                "fluentd ignores it and keeps every key, and so does logship: write "
                "whitelist_keys", p->file, p->line);
    }
    for (s = sec->children; s; s = s->next) {
        struct ls_conf_param *p;
        if (strcmp(s->name, "record") != 0) {
            continue;
        }
        for (p = s->params; p; p = p->next) {
            if (add_field(ctx, p, err, errlen) != LS_OK) {
                return LS_ERROR;
            }
        }
    }
    if (ctx->remove_keys) {
        struct ls_strv keys = { NULL, 0 };
        size_t i;
        ls_parse_array(ctx->remove_keys, &keys);
        ctx->remove = ls_calloc(keys.n ? keys.n : 1, sizeof(*ctx->remove));
        for (i = 0; i < keys.n; i++) {
            if (ls_accessor_compile(&ctx->remove[ctx->nremove], keys.v[i], msg, sizeof(msg)) !=
                LS_OK) {
                ls_strv_release(&keys);
                ls_conf_param_error(sec, "remove_keys", err, errlen, "%s", msg);
                return LS_ERROR;
            }
            ctx->nremove++;
        }
        ls_strv_release(&keys);
    } else if (ctx->whitelist_keys) {
        size_t i;
        ls_parse_array(ctx->whitelist_keys, &ctx->whitelist);
        /* 2.1.0: the keys <record> sets are kept too */
        for (i = 0; i < ctx->nfields; i++) {
            ctx->whitelist.v = ls_realloc(ctx->whitelist.v,
                                          (ctx->whitelist.n + 1) * sizeof(*ctx->whitelist.v));
            ctx->whitelist.v[ctx->whitelist.n++] = ls_strdup(ctx->fields[i].key);
        }
    }
    for (s = sec->children; s; s = s->next) {
        struct rm_replace_conf rc;
        struct rm_replace *r;
        const char *e;
        size_t n;
        if (strcmp(s->name, "replace") != 0) {
            continue;
        }
        if (ls_param_bind(replace_params, s, &rc, err, errlen) != LS_OK) {
            ls_param_release(replace_params, &rc);
            return LS_ERROR;
        }
        ctx->replaces = ls_realloc(ctx->replaces, (ctx->nreplaces + 1) * sizeof(*ctx->replaces));
        r = &ctx->replaces[ctx->nreplaces++];
        memset(r, 0, sizeof(*r));
        r->key = ls_strdup(rc.key);
        r->replace = ls_strdup(rc.replace);
        e = rc.expression;
        n = strlen(e);
        if (n >= 2 && e[0] == '/' && e[n - 1] == '/') {
            char *body = ls_strndup(e + 1, n - 2);
            r->re = ls_regex_compile(body, false, msg, sizeof(msg));
            ls_free(body);
        } else {
            struct ls_conf_param *p = ls_conf_get_param(s, "expression");
            ls_warn("%s:%d: You should use \"expression /%s/\" instead of \"expression %s\"",
                    p->file, p->line, e, e);
            r->re = ls_regex_compile(e, false, msg, sizeof(msg));
        }
        if (r->re == NULL) {
            ls_conf_param_error(s, "expression", err, errlen, "%s", msg);
            ls_param_release(replace_params, &rc);
            return LS_ERROR;
        }
        ls_param_release(replace_params, &rc);
    }
    if (ctx->char_encoding) {
        char *from = ls_strdup(ctx->char_encoding);
        char *to = strchr(from, ':');
        int rc = LS_OK;
        if (to) {
            *to++ = '\0';
        }
        if (ls_enc_check(from, false, msg, sizeof(msg)) != LS_OK ||
            (to && ls_enc_check(to, true, msg, sizeof(msg)) != LS_OK)) {
            ls_conf_param_error(sec, "char_encoding", err, errlen, "%s", msg);
            rc = LS_ERROR;
        } else if (to && !ls_enc_same(from, to)) {
            if (ls_enc_open(&ctx->enc, from, to, 64 << 20, msg, sizeof(msg)) != LS_OK) {
                ls_conf_param_error(sec, "char_encoding", err, errlen, "%s", msg);
                rc = LS_ERROR;
            } else {
                ctx->convert = true;
            }
        }
        ls_free(from);
        if (rc != LS_OK) {
            return rc;
        }
    }
    return LS_OK;
}

/* Ruby's gsub replacement text: \N, \0, \&, \k<name>, \\ */
static void put_replacement(const struct rm_replace *r, const char *subj, struct ls_buf *b)
{
    const char *s = r->replace;
    size_t gs, ge;

    while (*s) {
        if (s[0] != '\\' || s[1] == '\0') {
            ls_buf_putc(b, *s++);
            continue;
        }
        if (s[1] >= '0' && s[1] <= '9') {
            if (ls_regex_group(r->re, (unsigned)(s[1] - '0'), &gs, &ge)) {
                ls_buf_append(b, subj + gs, ge - gs);
            }
            s += 2;
        } else if (s[1] == '&') {
            if (ls_regex_group(r->re, 0, &gs, &ge)) {
                ls_buf_append(b, subj + gs, ge - gs);
            }
            s += 2;
        } else if (s[1] == 'k' && s[2] == '<' && strchr(s + 3, '>')) {
            const char *e = strchr(s + 3, '>');
            char name[128];
            size_t n = (size_t)(e - s - 3);
            if (n < sizeof(name)) {
                memcpy(name, s + 3, n);
                name[n] = '\0';
                if (ls_regex_named_group(r->re, name, &gs, &ge)) {
                    ls_buf_append(b, subj + gs, ge - gs);
                }
            }
            s = e + 1;
        } else if (s[1] == '\\') {
            ls_buf_putc(b, '\\');
            s += 2;
        } else {
            ls_buf_putc(b, *s++);
        }
    }
}

/* LS_OK (changed or not), LS_ERROR: not a string (Ruby raises TypeError) */
static int do_replace(struct rm_ctx *ctx, const struct rm_replace *r, struct ls_record *rec)
{
    struct ls_field *f = ls_record_get(rec, r->key, strlen(r->key));
    const char *subj;
    size_t len, pos = 0, ms, me;
    bool any = false;
    int m;

    if (f == NULL) {
        return LS_OK;
    }
    if (f->v.type != LS_V_STR) {
        return LS_ERROR;
    }
    subj = f->v.u.s.p;
    len = f->v.u.s.len;
    ls_buf_reset(&ctx->tmp);
    while (pos <= len && (m = ls_regex_find(r->re, subj, len, pos, &ms, &me)) == 1) {
        any = true;
        ls_buf_append(&ctx->tmp, subj + pos, ms - pos);
        put_replacement(r, subj, &ctx->tmp);
        if (me == ms) {
            /* an empty match: copy one byte and go on, as gsub does */
            if (me < len) {
                ls_buf_putc(&ctx->tmp, subj[me]);
            }
            pos = me + 1;
        } else {
            pos = me;
        }
    }
    if (!any) {
        return LS_OK;
    }
    if (pos < len) {
        ls_buf_append(&ctx->tmp, subj + pos, len - pos);
    }
    f->v = ls_vstr(ls_arena_memdup(rec->arena, ctx->tmp.p ? ctx->tmp.p : "", ctx->tmp.len),
                   ctx->tmp.len);
    return LS_OK;
}

static void convert_value(struct rm_ctx *ctx, struct ls_arena *a, struct ls_value *v)
{
    const char *out;
    size_t outlen;

    /* nested objects are converted as their JSON text: its structure is ASCII */
    if ((v->type != LS_V_STR && v->type != LS_V_JSON) ||
        ls_enc_convert(&ctx->enc, v->u.s.p, v->u.s.len, &out, &outlen) < 0) {
        return;
    }
    v->u.s.p = ls_arena_memdup(a, out, outlen);
    v->u.s.len = outlen;
}

static int rm_modify(struct ls_instance *ins, struct ls_record *rec)
{
    struct rm_ctx *ctx = ins->ctx;
    size_t i;
    unsigned k;

    for (i = 0; i < ctx->nfields; i++) {
        struct rm_field *f = &ctx->fields[i];
        struct ls_value v;
        if (!(f->single && ls_tmpl_single_value(&f->tmpl, rec, &v))) {
            v = ls_tmpl_expand_value(&f->tmpl, rec);
        }
        ls_record_set(rec, f->key, strlen(f->key), &v);
    }
    for (i = 0; i < ctx->nremove; i++) {
        ls_accessor_del(&ctx->remove[i], rec);
    }
    if (ctx->whitelist.n) {
        unsigned out = 0;
        for (k = 0; k < rec->nfields; k++) {
            for (i = 0; i < ctx->whitelist.n; i++) {
                if (strlen(ctx->whitelist.v[i]) == rec->fields[k].key_len &&
                    memcmp(ctx->whitelist.v[i], rec->fields[k].key, rec->fields[k].key_len) == 0) {
                    rec->fields[out++] = rec->fields[k];
                    break;
                }
            }
        }
        rec->nfields = out;
    }
    for (i = 0; i < ctx->nreplaces; i++) {
        if (do_replace(ctx, &ctx->replaces[i], rec) != LS_OK) {
            return LS_ERROR;
        }
    }
    if (ctx->convert) {
        for (k = 0; k < rec->nfields; k++) {
            convert_value(ctx, rec->arena, &rec->fields[k].v);
        }
    }
    return LS_OK;
}

static int rm_filter(struct ls_instance *ins, struct ls_record *rec)
{
    return rm_modify(ins, rec);
}

static int rm_emit(struct ls_instance *ins, const struct ls_record *rec)
{
    struct rm_ctx *ctx = ins->ctx;
    struct ls_record *copy = ls_output_reemit_copy(ins, rec);

    if (rm_modify(ins, copy) != LS_OK) {
        return ls_emit_error(ins, copy, "record_modifier: <replace> on a value that is not a "
                             "string");
    }
    copy->tag = ctx->tag;
    copy->tag_len = strlen(ctx->tag);
    return ls_output_reemit(ins, NULL, copy);
}

static void rm_destroy(struct ls_instance *ins)
{
    struct rm_ctx *ctx = ins->ctx;
    size_t i;

    for (i = 0; i < ctx->nfields; i++) {
        ls_tmpl_release(&ctx->fields[i].tmpl);
        ls_free(ctx->fields[i].key);
    }
    ls_free(ctx->fields);
    for (i = 0; i < ctx->nremove; i++) {
        ls_accessor_release(&ctx->remove[i]);
    }
    ls_free(ctx->remove);
    ls_strv_release(&ctx->whitelist);
    for (i = 0; i < ctx->nreplaces; i++) {
        ls_free(ctx->replaces[i].key);
        ls_free(ctx->replaces[i].replace);
        ls_regex_free(ctx->replaces[i].re);
    }
    ls_free(ctx->replaces);
    if (ctx->convert) {
        ls_enc_close(&ctx->enc);
    }
    ls_buf_release(&ctx->tmp);
}

const struct ls_plugin ls_plugin_filter_record_modifier = {
    .name = "record_modifier",
    .kind = LS_PLUGIN_FILTER,
    .description = "set, remove and rewrite fields (fluent-plugin-record-modifier)",
    .params = rm_filter_params,
    .ctx_size = sizeof(struct rm_ctx),
    .init = rm_init,
    .destroy = rm_destroy,
    .filter = rm_filter,
};

const struct ls_plugin ls_plugin_out_record_modifier = {
    .name = "record_modifier",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "record_modifier's output form: modify, then re-emit under `tag`",
    .params = rm_output_params,
    .ctx_size = sizeof(struct rm_ctx),
    .init = rm_init,
    .destroy = rm_destroy,
    .output_flags = LS_OUT_UNBUFFERED,
    .emit = rm_emit,
};
