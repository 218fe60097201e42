/*
 * parser.c - the common layer of every parser instance, and the shared
 * Ruby-syntax regular expressions on PCRE2 (parser.h, plugin.h).
 *
 * fluentd's Parser base class owns time_key / time_format / time_type /
 * types / null_value_pattern for every parser type, so they are bound here
 * once, from the same section as the plugin's own table (both mark their
 * keys used, so the unused-parameter warning stays right). After a plugin
 * produced fields, ls_parser_parse() turns the time_key field into the event
 * time and applies the conversions, in fluentd's order: time first (the
 * field is removed unless keep_time_key), then null patterns, then types.
 * A time that does not parse makes the record invalid (LS_DECLINED), as
 * fluentd raises ParserError.
 *
 * Per-parser defaults (fluentd's config_set_default: "time" for regexp,
 * none for csv; float time_type for json) are set by the plugin's init
 * through ls_parser_set_defaults(), which only fills what the user left
 * unset.
 *
 * Regexes: user patterns are Ruby (Onigmo) syntax. They compile with
 * PCRE2_MULTILINE (Ruby's ^ and $ are always line anchors), Ruby's /m
 * becomes PCRE2_DOTALL, and \h (a hex digit in Ruby) is rewritten. The JIT
 * code, match data, match context and a JIT stack are allocated once per
 * regex, so a match allocates nothing; a match limit bounds the time a
 * hostile line can take (fluentd's `timeout` guard, without a thread).
 */
#include "parser.h"
#include "timefmt.h"
#include "json.h"
#include "log.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <ctype.h>
#include <math.h>

/* ---- regular expressions ---- */

struct re_name {
    const char *name;
    size_t len;
    uint32_t group;
};

struct ls_regex {
    pcre2_code *code;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
    bool jit;
    bool dupnames;
    char *names_buf;
    struct re_name *names;     /* in group order */
    size_t nnames;
    char **renamed;            /* Ruby group names PCRE2 refuses, by their "_lsgN" stand-in */
    size_t nrenamed;
};

#define RE_MATCH_LIMIT 5000000u

/* PCRE2 takes a group name of up to 32 letters, digits and underscores, not starting with
 * a digit; Ruby takes more (a space: (?<Client IP>...), as real td-agent files have) */
static void re_renamed_free(struct ls_regex *re)
{
    for (size_t i = 0; i < re->nrenamed; i++) {
        ls_free(re->renamed[i]);
    }
    ls_free(re->renamed);
}

static bool pcre2_name_ok(const char *p, size_t len)
{
    if (len == 0 || len > 32 || isdigit((unsigned char)p[0])) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!isalnum((unsigned char)p[i]) && p[i] != '_') {
            return false;
        }
    }
    return true;
}

/* The stand-in index of a name PCRE2 refuses (the same name twice: the same stand-in, so
 * PCRE2_DUPNAMES sees the duplicate Ruby sees) */
static size_t rename_index(struct ls_regex *re, const char *p, size_t len)
{
    size_t i;

    for (i = 0; i < re->nrenamed; i++) {
        if (strlen(re->renamed[i]) == len && memcmp(re->renamed[i], p, len) == 0) {
            return i;
        }
    }
    re->renamed = ls_realloc(re->renamed, (re->nrenamed + 1) * sizeof(*re->renamed));
    re->renamed[re->nrenamed] = ls_malloc(len + 1);
    memcpy(re->renamed[re->nrenamed], p, len);
    re->renamed[re->nrenamed][len] = '\0';
    return re->nrenamed++;
}

/* At body[i] "(?<name>" or "\\k<name>" (with open/close the delimiters): copy it, the name
 * replaced by its stand-in when PCRE2 would refuse it. Returns the bytes consumed, 0 when
 * there is no name there. */
static size_t re_group_name(struct ls_regex *re, const char *body, size_t len, size_t i,
                            size_t prefix, struct ls_buf *b)
{
    size_t start = i + prefix, end = start;

    while (end < len && body[end] != '>' && body[end] != ')') {
        end++;
    }
    if (end >= len || body[end] != '>' || pcre2_name_ok(body + start, end - start)) {
        return 0;
    }
    ls_buf_append(b, body + i, prefix);
    ls_buf_printf(b, "_lsg%zu>", rename_index(re, body + start, end - start));
    return end + 1 - i;
}

/* Ruby pattern body -> PCRE2 pattern (\h, \H outside classes; group names PCRE2 refuses
 * renamed, see re->renamed). Caller frees. */
static char *re_translate(struct ls_regex *re, const char *body, size_t len)
{
    struct ls_buf b;
    size_t i, n;
    bool in_class = false;

    ls_buf_init(&b, 0);
    for (i = 0; i < len; i++) {
        char c = body[i];
        if (c == '\\' && i + 1 < len) {
            char nx = body[i + 1];
            if (nx == 'h') {
                ls_buf_append(&b, in_class ? "0-9a-fA-F" : "[0-9a-fA-F]", in_class ? 9 : 11);
            } else if (nx == 'H' && !in_class) {
                ls_buf_append(&b, "[^0-9a-fA-F]", 12);
            } else if (!in_class && (nx == 'k' || nx == 'g') && i + 2 < len && body[i + 2] == '<'
                       && (n = re_group_name(re, body, len, i, 3, &b)) != 0) {
                i += n - 1;
                continue;
            } else {
                ls_buf_putc(&b, c);
                ls_buf_putc(&b, nx);
            }
            i++;
            continue;
        }
        if (!in_class && c == '(' && i + 3 < len && body[i + 1] == '?' && body[i + 2] == '<'
            && body[i + 3] != '=' && body[i + 3] != '!'
            && (n = re_group_name(re, body, len, i, 3, &b)) != 0) {
            i += n - 1;
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = true;
            ls_buf_putc(&b, c);
            /* a ']' or '^]' right after '[' is literal */
            if (i + 1 < len && body[i + 1] == '^') {
                ls_buf_putc(&b, '^');
                i++;
            }
            if (i + 1 < len && body[i + 1] == ']') {
                ls_buf_putc(&b, ']');
                i++;
            }
            continue;
        }
        if (c == ']' && in_class) {
            in_class = false;
        }
        ls_buf_putc(&b, c);
    }
    ls_buf_cstr(&b);
    return ls_buf_detach(&b, &len);
}

static int re_name_cmp(const void *a, const void *b)
{
    const struct re_name *x = a, *y = b;
    return x->group < y->group ? -1 : x->group > y->group;
}

bool ls_pcre2_jit_wanted(void)
{
    const char *e = getenv("LOGSHIP_PCRE2_JIT");

    return !(e && strcmp(e, "0") == 0);
}

struct ls_regex *ls_regex_compile(const char *src, bool dotall, char *err, size_t errlen)
{
    struct ls_regex *re;
    const char *body = src;
    size_t blen = strlen(src);
    uint32_t opts = PCRE2_MULTILINE | PCRE2_DUPNAMES;
    char *pat;
    int ecode;
    PCRE2_SIZE eoff;
    uint32_t count = 0, esize = 0, i;
    PCRE2_SPTR table;

    /* "/body/flags" */
    if (blen >= 2 && src[0] == '/') {
        const char *last = strrchr(src, '/');
        const char *f;
        if (last > src) {
            for (f = last + 1; *f; f++) {
                if (*f == 'i') {
                    opts |= PCRE2_CASELESS;
                } else if (*f == 'm') {
                    opts |= PCRE2_DOTALL;
                } else if (*f == 'x') {
                    opts |= PCRE2_EXTENDED;
                } else if (*f == 'n' || *f == 'u' || *f == 'e' || *f == 's' || *f == 'o') {
                    /* encoding / once flags: nothing to do for byte matching */
                } else {
                    break;
                }
            }
            if (*f == '\0') {
                body = src + 1;
                blen = (size_t)(last - src - 1);
            }
        }
    }
    if (dotall) {
        opts |= PCRE2_DOTALL;
    }
    re = ls_calloc(1, sizeof(*re));
    pat = re_translate(re, body, blen);
    re->code = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, opts, &ecode, &eoff, NULL);
    ls_free(pat);
    if (re->code == NULL) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ecode, msg, sizeof(msg));
        snprintf(err, errlen, "invalid regexp '%s': %s at offset %zu", src, (const char *)msg,
                 (size_t)eoff);
        re_renamed_free(re);
        ls_free(re);
        return NULL;
    }
    /* LOGSHIP_PCRE2_JIT=0 runs the interpreter: Debian's PCRE2 is not built for valgrind,
     * which reports every JIT-compiled match as a use of uninitialised memory (the tests
     * set it when they run the agent under valgrind) */
    re->jit = ls_pcre2_jit_wanted() && pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE) == 0;
    re->md = pcre2_match_data_create_from_pattern(re->code, NULL);
    re->mctx = pcre2_match_context_create(NULL);
    pcre2_set_match_limit(re->mctx, RE_MATCH_LIMIT);
    pcre2_set_depth_limit(re->mctx, 10000);
    if (re->jit) {
        re->jstack = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, NULL);
        pcre2_jit_stack_assign(re->mctx, NULL, re->jstack);
    }
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMECOUNT, &count);
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMEENTRYSIZE, &esize);
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMETABLE, &table);
    if (count > 0) {
        re->names_buf = ls_malloc((size_t)count * esize);
        memcpy(re->names_buf, table, (size_t)count * esize);
        re->names = ls_calloc(count, sizeof(*re->names));
        for (i = 0; i < count; i++) {
            const unsigned char *e = (const unsigned char *)re->names_buf + (size_t)i * esize;
            re->names[i].group = (uint32_t)e[0] << 8 | e[1];
            re->names[i].name = (const char *)e + 2;
            if (strncmp(re->names[i].name, "_lsg", 4) == 0 && re->nrenamed) {
                unsigned long k = strtoul(re->names[i].name + 4, NULL, 10);
                if (k < re->nrenamed) {
                    re->names[i].name = re->renamed[k];
                }
            }
            re->names[i].len = strlen(re->names[i].name);
            if (i > 0 && re->names[i].len == re->names[i - 1].len &&
                memcmp(re->names[i].name, re->names[i - 1].name, re->names[i].len) == 0) {
                re->dupnames = true;
            }
        }
        qsort(re->names, count, sizeof(*re->names), re_name_cmp);
        re->nnames = count;
    }
    return re;
}

void ls_regex_free(struct ls_regex *re)
{
    if (re == NULL) {
        return;
    }
    pcre2_match_data_free(re->md);
    pcre2_match_context_free(re->mctx);
    if (re->jstack) {
        pcre2_jit_stack_free(re->jstack);
    }
    pcre2_code_free(re->code);
    ls_free(re->names_buf);
    ls_free(re->names);
    re_renamed_free(re);
    ls_free(re);
}

size_t ls_regex_names(const struct ls_regex *re)
{
    return re->nnames;
}

static int re_exec(struct ls_regex *re, const char *s, size_t len, size_t offset)
{
    int rc;

    if (s == NULL) {
        s = "";     /* PCRE2 rejects a NULL subject even when len is 0 */
    }
    if (re->jit) {
        rc = pcre2_jit_match(re->code, (PCRE2_SPTR)s, len, offset, 0, re->md, re->mctx);
    } else {
        rc = pcre2_match(re->code, (PCRE2_SPTR)s, len, offset, 0, re->md, re->mctx);
    }
    if (rc >= 0) {
        return 1;
    }
    if (rc == PCRE2_ERROR_NOMATCH) {
        return 0;
    }
    return -1;
}

int ls_regex_search(struct ls_regex *re, const char *s, size_t len)
{
    return re_exec(re, s, len, 0);
}

bool ls_regex_group(const struct ls_regex *re, unsigned n, size_t *start, size_t *end)
{
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(re->md);

    if (n >= pcre2_get_ovector_count(re->md) || ov[2 * n] == PCRE2_UNSET) {
        return false;
    }
    *start = ov[2 * n];
    *end = ov[2 * n + 1];
    return true;
}

bool ls_regex_named_group(const struct ls_regex *re, const char *name, size_t *start,
                          size_t *end)
{
    int n = pcre2_substring_number_from_name(re->code, (PCRE2_SPTR)name);

    return n > 0 && ls_regex_group(re, (unsigned)n, start, end);
}

int ls_regex_find(struct ls_regex *re, const char *s, size_t len, size_t offset, size_t *mstart,
                  size_t *mend)
{
    int rc = re_exec(re, s, len, offset);
    PCRE2_SIZE *ov;

    if (rc == 1) {
        ov = pcre2_get_ovector_pointer(re->md);
        *mstart = ov[0];
        *mend = ov[1];
    }
    return rc;
}

int ls_regex_match_record(struct ls_regex *re, const char *s, size_t len, struct ls_record *rec)
{
    PCRE2_SIZE *ov;
    size_t i;
    int rc = re_exec(re, s, len, 0);

    if (rc <= 0) {
        return rc == 0 ? LS_DECLINED : LS_ERROR;
    }
    ov = pcre2_get_ovector_pointer(re->md);
    for (i = 0; i < re->nnames; i++) {
        const struct re_name *n = &re->names[i];
        PCRE2_SIZE a = ov[2 * n->group], b = ov[2 * n->group + 1];
        struct ls_value v;
        if (a == PCRE2_UNSET) {
            continue;
        }
        if (re->dupnames && ls_record_get(rec, n->name, n->len)) {
            continue;
        }
        v = ls_vstr(s + a, b - a);
        ls_record_add(rec, n->name, n->len, &v);
    }
    return LS_OK;
}

/* ---- the common layer ---- */

struct parser_params {
    char *time_key;
    char *time_format;
    int time_type;
    bool localtime;
    bool utc;
    char *timezone;
    bool keep_time_key;
    struct ls_kvv types;
    char *null_value_pattern;
    bool null_empty_string;
    bool estimate_current_event;
    struct ls_strv time_format_fallbacks;
    double timeout;
    char *types_delimiter;
    char *types_label_delimiter;
};

#define PP(f) offsetof(struct parser_params, f)

const struct ls_param ls_parser_common_params[] = {
    { "time_key", LS_P_STR, "time", 0, PP(time_key),
      "field holding the event time (removed unless keep_time_key); csv/tsv/none: unset", NULL,
      NULL, 0, 0 },
    { "time_format", LS_P_STR, NULL, 0, PP(time_format),
      "strptime format of time_key (%N fraction, %z offset, %iso8601); unset: flexible parse",
      NULL, NULL, 0, 0 },
    { "time_type", LS_P_ENUM, "string", 0, PP(time_type),
      "how to read time_key: string (time_format), unixtime, float, mixed (with fallbacks)", NULL,
      "string|unixtime|float|mixed", 0, 0 },
    { "time_format_fallbacks", LS_P_ARRAY, NULL, 0, PP(time_format_fallbacks),
      "with time_type mixed: formats tried in order (unixtime, float or strptime formats)", NULL,
      NULL, 0, 0 },
    { "localtime", LS_P_BOOL, "true", 0, PP(localtime),
      "times without an offset are local time (false: UTC)", NULL, NULL, 0, 0 },
    { "utc", LS_P_BOOL, "false", 0, PP(utc), "times without an offset are UTC", NULL, NULL, 0, 0 },
    { "timezone", LS_P_STR, NULL, 0, PP(timezone),
      "zone for times without an offset: +09:00, UTC or a name like Asia/Tokyo", NULL, NULL, 0,
      0 },
    { "keep_time_key", LS_P_BOOL, "false", 0, PP(keep_time_key),
      "keep the time field in the record", NULL, NULL, 0, 0 },
    { "types", LS_P_HASH, NULL, 0, PP(types),
      "field conversions name:type (integer, float, bool, string, time[:format], array[:delim])",
      NULL, NULL, 0, 0 },
    { "types_delimiter", LS_P_STR, ",", LS_PF_DEPRECATED, PP(types_delimiter),
      "v0.12: separator between types entries (only ',' is supported)", NULL, NULL, 0, 0 },
    { "types_label_delimiter", LS_P_STR, ":", LS_PF_DEPRECATED, PP(types_label_delimiter),
      "v0.12: separator inside types entries (only ':' is supported)", NULL, NULL, 0, 0 },
    { "null_value_pattern", LS_P_STR, NULL, 0, PP(null_value_pattern),
      "string values matching this regexp become null", NULL, NULL, 0, 0 },
    { "null_empty_string", LS_P_BOOL, "false", 0, PP(null_empty_string),
      "empty string values become null", NULL, NULL, 0, 0 },
    { "estimate_current_event", LS_P_BOOL, "true", 0, PP(estimate_current_event),
      "use the current time when the record has no time field", NULL, NULL, 0, 0 },
    { "timeout", LS_P_TIME, NULL, 0, PP(timeout),
      "accepted for compatibility; regexps are bounded by a match limit instead", NULL, NULL, 0,
      0 },
    LS_PARAM_END
};

enum conv_type { CV_STRING, CV_INTEGER, CV_FLOAT, CV_BOOL, CV_TIME, CV_ARRAY };

struct conv {
    char *key;
    size_t key_len;
    enum conv_type type;
    struct ls_timefmt *tf;
    int ttype;                  /* CV_TIME: LS_PARSER_TT_*, or -1: by the value's type */
    char *delim;
};

/* Fluent::Timezone.validate: [+-]HH, [+-]HHMM, [+-]HH:MM, or Region/Zone[/Zone] that exists */
static bool fluent_zone_valid(const char *z)
{
    size_t n = strlen(z);
    const char *slash = strchr(z, '/');
    char e[160];
    struct ls_timefmt *tf;

    if ((z[0] == '+' || z[0] == '-') && n >= 3 && isdigit((unsigned char)z[1]) &&
        isdigit((unsigned char)z[2])) {
        if (n == 3) {
            return true;
        }
        if (n == 5 && isdigit((unsigned char)z[3]) && isdigit((unsigned char)z[4])) {
            return true;
        }
        return n == 6 && z[3] == ':' && isdigit((unsigned char)z[4]) &&
               isdigit((unsigned char)z[5]);
    }
    if (slash == NULL || slash == z || slash[1] == '\0') {
        return false;
    }
    tf = ls_timefmt_create("%Y", z, e, sizeof(e));
    if (tf == NULL) {
        return false;
    }
    ls_timefmt_destroy(tf);
    return true;
}

struct parser_core {
    struct parser_params p;
    bool user_time_key, user_time_format, user_time_type, user_estimate;
    char *def_time_format;          /* plugin default (owned) */
    const char *time_key;           /* effective; NULL = none */
    size_t time_key_len;
    int time_type;
    const char *time_format;        /* effective */
    const char *zone;               /* NULL = local */
    struct ls_timefmt *tf;
    struct ls_timefmt **fallbacks;  /* mixed: NULL entries mean unixtime/float */
    int *fallback_kind;
    size_t nfallbacks;
    struct conv *convs;
    size_t nconvs;
    struct ls_regex *null_re;
    struct ls_buf scratch;
    const char *why;
    const char *declined_text;
    size_t declined_len;
    char *owned_time_key;
    bool have_plugin_time;
    struct ls_time plugin_time;
};

static struct parser_core *core_of(const struct ls_instance *ins)
{
    return ins->core;
}

static void free_time(struct parser_core *c)
{
    size_t i;

    ls_timefmt_destroy(c->tf);
    c->tf = NULL;
    for (i = 0; i < c->nfallbacks; i++) {
        ls_timefmt_destroy(c->fallbacks[i]);
    }
    ls_free(c->fallbacks);
    ls_free(c->fallback_kind);
    c->fallbacks = NULL;
    c->fallback_kind = NULL;
    c->nfallbacks = 0;
}

static int build_time(struct ls_instance *ins, char *err, size_t errlen)
{
    struct parser_core *c = core_of(ins);
    const char *file = ins->conf ? ins->conf->file : "(default)";
    int line = ins->conf ? ins->conf->line : 0;
    char e[256];
    size_t i;

    free_time(c);
    c->time_format = c->p.time_format ? c->p.time_format : c->def_time_format;
    e[0] = '\0';
    c->tf = ls_timefmt_create(c->time_format, c->zone, e, sizeof(e));
    if (c->tf == NULL) {
        snprintf(err, errlen, "%s:%d: %s", file, line, e);
        return LS_ERROR;
    }
    if (c->time_type == LS_PARSER_TT_MIXED && c->p.time_format_fallbacks.n > 0) {
        c->nfallbacks = c->p.time_format_fallbacks.n;
        c->fallbacks = ls_calloc(c->nfallbacks, sizeof(*c->fallbacks));
        c->fallback_kind = ls_calloc(c->nfallbacks, sizeof(int));
        for (i = 0; i < c->nfallbacks; i++) {
            const char *f = c->p.time_format_fallbacks.v[i];
            if (strcmp(f, "unixtime") == 0) {
                c->fallback_kind[i] = LS_PARSER_TT_UNIXTIME;
            } else if (strcmp(f, "float") == 0) {
                c->fallback_kind[i] = LS_PARSER_TT_FLOAT;
            } else {
                c->fallback_kind[i] = LS_PARSER_TT_STRING;
                c->fallbacks[i] = ls_timefmt_create(f, c->zone, e, sizeof(e));
                if (c->fallbacks[i] == NULL) {
                    snprintf(err, errlen, "%s:%d: time_format_fallbacks: %s", file, line, e);
                    return LS_ERROR;
                }
            }
        }
    }
    return LS_OK;
}

static int build_convs(struct ls_instance *ins, char *err, size_t errlen)
{
    struct parser_core *c = core_of(ins);
    const char *file = ins->conf ? ins->conf->file : "(default)";
    int line = ins->conf ? ins->conf->line : 0;
    size_t i;

    if (c->p.types.n == 0) {
        return LS_OK;
    }
    c->convs = ls_calloc(c->p.types.n, sizeof(*c->convs));
    for (i = 0; i < c->p.types.n; i++) {
        struct conv *cv = &c->convs[c->nconvs];
        const char *t = c->p.types.v[i].value;
        const char *opt = strchr(t, ':');
        size_t tlen = opt ? (size_t)(opt - t) : strlen(t);
        char e[256];

        cv->key = ls_strdup(c->p.types.v[i].key);
        cv->key_len = strlen(cv->key);
        c->nconvs++;
        if (tlen == 6 && memcmp(t, "string", 6) == 0) {
            cv->type = CV_STRING;
        } else if ((tlen == 7 && memcmp(t, "integer", 7) == 0) || (tlen == 3 && memcmp(t, "int", 3) == 0)) {
            cv->type = CV_INTEGER;
        } else if (tlen == 5 && memcmp(t, "float", 5) == 0) {
            cv->type = CV_FLOAT;
        } else if ((tlen == 4 && memcmp(t, "bool", 4) == 0) || (tlen == 7 && memcmp(t, "boolean", 7) == 0)) {
            cv->type = CV_BOOL;
        } else if (tlen == 5 && memcmp(t, "array", 5) == 0) {
            cv->type = CV_ARRAY;
            cv->delim = ls_strdup(opt && opt[1] ? opt + 1 : ",");
        } else if (tlen == 4 && memcmp(t, "time", 4) == 0) {
            const char *fmt = opt ? opt + 1 : NULL;
            char *zone = NULL;
            cv->type = CV_TIME;
            cv->ttype = -1;
            /* fluentd's build_type_converters: time:[timezone:]time_format, split at the first
             * colon; when that part is not a timezone (Fluent::Timezone.validate) the whole is
             * the format; a format of unixtime, float, string or mixed is the time type */
            if (fmt) {
                const char *colon = strchr(fmt, ':');
                char *z = colon ? ls_strndup(fmt, (size_t)(colon - fmt)) : ls_strdup(fmt);
                if (fluent_zone_valid(z)) {
                    zone = z;
                    fmt = colon ? colon + 1 : NULL;
                } else {
                    ls_free(z);
                }
                if (fmt) {
                    static const char *const types[] = { "string", "unixtime", "float", "mixed" };
                    for (int k = 0; k < 4; k++) {
                        if (strcmp(fmt, types[k]) == 0) {
                            cv->ttype = k == 0 ? LS_PARSER_TT_STRING : k == 1 ?
                                        LS_PARSER_TT_UNIXTIME : k == 2 ? LS_PARSER_TT_FLOAT :
                                        LS_PARSER_TT_MIXED;
                            fmt = NULL;
                            break;
                        }
                    }
                }
            }
            e[0] = '\0';
            cv->tf = ls_timefmt_create(fmt && *fmt ? fmt : c->time_format, zone ? zone : c->zone, e,
                                       sizeof(e));
            ls_free(zone);
            if (cv->tf == NULL) {
                snprintf(err, errlen, "%s:%d: types '%s': %s", file, line, cv->key, e);
                return LS_ERROR;
            }
        } else {
            snprintf(err, errlen, "%s:%d: unknown type '%s' for field '%s' in types (expected "
                     "string, integer, float, bool, time or array)", file, line, t, cv->key);
            return LS_ERROR;
        }
    }
    return LS_OK;
}

int ls_parser_setup(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct parser_core *c = ls_calloc(1, sizeof(*c));
    const char *file = sec ? sec->file : "(default)";
    int line = sec ? sec->line : 0;

    ins->core = c;
    ls_buf_init(&c->scratch, 1 << 20);
    if (ls_param_bind(ls_parser_common_params, sec, &c->p, err, errlen) != LS_OK) {
        return LS_ERROR;
    }
    c->user_time_key = sec && ls_conf_get_param(sec, "time_key") != NULL;
    c->user_time_format = sec && ls_conf_get_param(sec, "time_format") != NULL;
    c->user_time_type = sec && ls_conf_get_param(sec, "time_type") != NULL;
    c->user_estimate = sec && ls_conf_get_param(sec, "estimate_current_event") != NULL;
    c->time_key = c->p.time_key && *c->p.time_key ? c->p.time_key : NULL;
    c->time_key_len = c->time_key ? strlen(c->time_key) : 0;
    c->time_type = c->p.time_type;
    if (c->p.timezone && *c->p.timezone) {
        c->zone = c->p.timezone;
    } else if (c->p.utc || !c->p.localtime) {
        c->zone = "UTC";
    } else {
        c->zone = NULL;
    }
    if (c->p.null_value_pattern && *c->p.null_value_pattern) {
        char e[256];
        c->null_re = ls_regex_compile(c->p.null_value_pattern, false, e, sizeof(e));
        if (c->null_re == NULL) {
            snprintf(err, errlen, "%s:%d: null_value_pattern: %s", file, line, e);
            return LS_ERROR;
        }
    }
    if (build_time(ins, err, errlen) != LS_OK || build_convs(ins, err, errlen) != LS_OK) {
        return LS_ERROR;
    }
    return LS_OK;
}

void ls_parser_teardown(struct ls_instance *ins)
{
    struct parser_core *c = core_of(ins);
    size_t i;

    if (c == NULL) {
        return;
    }
    free_time(c);
    for (i = 0; i < c->nconvs; i++) {
        ls_free(c->convs[i].key);
        ls_free(c->convs[i].delim);
        ls_timefmt_destroy(c->convs[i].tf);
    }
    ls_free(c->convs);
    ls_regex_free(c->null_re);
    ls_buf_release(&c->scratch);
    ls_free(c->def_time_format);
    ls_free(c->owned_time_key);
    ls_param_release(ls_parser_common_params, &c->p);
    ls_free(c);
    ins->core = NULL;
}

int ls_parser_set_defaults(struct ls_instance *ins, const char *time_key, const char *time_format,
                           int time_type, char *err, size_t errlen)
{
    struct parser_core *c = core_of(ins);

    if (time_key && !c->user_time_key) {
        ls_free(c->owned_time_key);
        c->owned_time_key = *time_key ? ls_strdup(time_key) : NULL;
        c->time_key = c->owned_time_key;
        c->time_key_len = c->time_key ? strlen(c->time_key) : 0;
    }
    if (time_type >= 0 && !c->user_time_type) {
        c->time_type = time_type;
    }
    if (time_format && !c->user_time_format) {
        ls_free(c->def_time_format);
        c->def_time_format = ls_strdup(time_format);
    }
    return build_time(ins, err, errlen);
}

void ls_parser_no_time_key(struct ls_instance *ins)
{
    struct parser_core *c = core_of(ins);

    c->time_key = NULL;
    c->time_key_len = 0;
}

void ls_parser_set_estimate_default(struct ls_instance *ins, bool estimate)
{
    struct parser_core *c = core_of(ins);

    if (!c->user_estimate) {
        c->p.estimate_current_event = estimate;
    }
}

const char *ls_parser_time_format(const struct ls_instance *ins)
{
    return core_of(ins)->time_format;
}

const char *ls_parser_zone(const struct ls_instance *ins)
{
    return core_of(ins)->zone;
}

void ls_parser_set_time(struct ls_instance *ins, const struct ls_time *t)
{
    core_of(ins)->have_plugin_time = true;
    core_of(ins)->plugin_time = *t;
}

bool ls_parser_keep_time_key(const struct ls_instance *ins)
{
    return core_of(ins)->p.keep_time_key;
}

void ls_parser_set_error(struct ls_instance *ins, const char *why)
{
    core_of(ins)->why = why;
}

void ls_parser_set_declined_text(struct ls_instance *ins, const char *p, size_t len)
{
    core_of(ins)->declined_text = p;
    core_of(ins)->declined_len = len;
}

const char *ls_parser_error(const struct ls_instance *parser)
{
    const char *w = core_of(parser)->why;
    return w ? w : "pattern not matched";
}

const char *ls_parser_declined_text(const struct ls_instance *parser, size_t *len)
{
    *len = core_of(parser)->declined_len;
    return core_of(parser)->declined_text;
}

/* "1795262400" / "1795262400.123" / " -5" -> time. Digits exact (no float rounding). */
static bool text_to_epoch(const char *p, size_t len, bool allow_frac, struct ls_time *out)
{
    const char *end = p + len;
    int64_t sec = 0;
    int32_t ns = 0;
    int nd = 0, fd = 0;
    bool neg = false;

    while (p < end && isspace((unsigned char)*p)) {
        p++;
    }
    while (end > p && isspace((unsigned char)end[-1])) {
        end--;
    }
    if (p < end && (*p == '-' || *p == '+')) {
        neg = *p++ == '-';
    }
    while (p < end && (unsigned)(*p - '0') < 10 && nd < 18) {
        sec = sec * 10 + (*p++ - '0');
        nd++;
    }
    if (nd == 0) {
        return false;
    }
    if (p < end && *p == '.') {
        p++;
        while (p < end && (unsigned)(*p - '0') < 10) {
            if (fd < 9) {
                ns = ns * 10 + (*p - '0');
                fd++;
            }
            p++;
        }
        for (; fd < 9; fd++) {
            ns *= 10;
        }
        if (!allow_frac) {
            ns = 0;
        }
    }
    if (p != end) {
        return false;
    }
    if (neg && ns) {
        sec = -sec - 1;
        ns = 1000000000 - ns;
    } else if (neg) {
        sec = -sec;
    }
    out->sec = sec;
    out->nsec = ns;
    return true;
}

static double ruby_to_f(const char *p, size_t n);

/* Ruby's String#to_i (digits with single underscores after an optional sign, leading white
 * space skipped; 0 when none) or #to_f, as an event time. */
static bool ruby_epoch(const char *p, size_t len, bool frac, struct ls_time *out)
{
    if (frac) {
        double f = ruby_to_f(p, len), s;
        if (!isfinite(f) || f > 9e15 || f < -9e15) {
            f = 0;
        }
        s = floor(f);
        out->sec = (int64_t)s;
        out->nsec = (int32_t)((f - s) * 1e9 + 0.5);
        if (out->nsec >= 1000000000) {
            out->sec++;
            out->nsec -= 1000000000;
        }
        return true;
    }
    {
        const char *e = p + len;
        int64_t sec = 0;
        bool neg = false;
        while (p < e && isspace((unsigned char)*p)) {
            p++;
        }
        if (p < e && (*p == '-' || *p == '+')) {
            neg = *p++ == '-';
        }
        bool digit = false;     /* the previous character was a digit */
        while (p < e) {
            if (isdigit((unsigned char)*p)) {
                if (sec < 100000000000000LL) {
                    sec = sec * 10 + (*p - '0');
                }
                digit = true;
            } else if (*p == '_' && digit && p + 1 < e && isdigit((unsigned char)p[1])) {
                digit = false;
            } else {
                break;
            }
            p++;
        }
        out->sec = neg ? -sec : sec;
        out->nsec = 0;
    }
    return true;
}

static bool value_to_time(struct parser_core *c, const struct ls_value *v, int kind,
                          struct ls_timefmt *tf, struct ls_time *out)
{
    switch (v->type) {
    case LS_V_INT:
        /* a number where a string was expected is read as epoch seconds */
        out->sec = v->u.i;
        out->nsec = 0;
        return true;
    case LS_V_FLOAT: {
        double f = v->u.f, s;
        if (!isfinite(f) || f > 9e15 || f < -9e15) {
            return false;
        }
        s = floor(f);
        out->sec = (int64_t)s;
        out->nsec = kind == LS_PARSER_TT_UNIXTIME ? 0 : (int32_t)((f - s) * 1e9 + 0.5);
        if (out->nsec >= 1000000000) {
            out->sec++;
            out->nsec -= 1000000000;
        }
        if (kind == LS_PARSER_TT_UNIXTIME && f < 0 && s != f) {
            out->sec++;
        }
        return true;
    }
    case LS_V_STR:
        if (kind == LS_PARSER_TT_UNIXTIME || kind == LS_PARSER_TT_FLOAT) {
            if (text_to_epoch(v->u.s.p, v->u.s.len, kind == LS_PARSER_TT_FLOAT, out)) {
                return true;
            }
            /* not a number: rather than a wrong epoch, try the (flexible) format */
            return tf != NULL && ls_timefmt_parse(tf, v->u.s.p, v->u.s.len, out) == LS_OK;
        }
        return ls_timefmt_parse(tf, v->u.s.p, v->u.s.len, out) == LS_OK;
    default:
        LS_UNUSED(c);
        return false;
    }
}

/*
 * value_to_time, then, for a string under unixtime or float that is neither a number nor a
 * date, what fluentd gives (value.to_i / value.to_f: its leading number, 0 when there is
 * none): fluentd keeps such a record, so logship does too.
 */
static bool value_to_time_rb(struct parser_core *c, const struct ls_value *v, int kind,
                             struct ls_timefmt *tf, struct ls_time *out)
{
    if (value_to_time(c, v, kind, tf, out)) {
        return true;
    }
    if (v->type == LS_V_STR && (kind == LS_PARSER_TT_UNIXTIME || kind == LS_PARSER_TT_FLOAT)) {
        return ruby_epoch(v->u.s.p, v->u.s.len, kind == LS_PARSER_TT_FLOAT, out);
    }
    return false;
}

bool ls_parser_value_time(const struct ls_value *v, int time_type, struct ls_timefmt *tf,
                          struct ls_time *out)
{
    return value_to_time_rb(NULL, v, time_type, tf, out);
}

static bool parse_event_time(struct parser_core *c, const struct ls_value *v, struct ls_time *out)
{
    size_t i;

    if (c->time_type != LS_PARSER_TT_MIXED) {
        return value_to_time_rb(c, v, c->time_type, c->tf, out);
    }
    if (value_to_time(c, v, LS_PARSER_TT_STRING, c->tf, out)) {
        return true;
    }
    for (i = 0; i < c->nfallbacks; i++) {
        if (value_to_time(c, v, c->fallback_kind[i], c->fallbacks[i], out)) {
            return true;
        }
    }
    /* a unixtime/float fallback takes anything in fluentd (to_i); here it does so only once
     * every fallback has failed, so a date after it in the list is still read as a date */
    for (i = 0; i < c->nfallbacks; i++) {
        if (value_to_time_rb(c, v, c->fallback_kind[i], c->fallbacks[i], out)) {
            return true;
        }
    }
    return false;
}

/* Ruby's String#to_f: the longest numeric prefix, else 0.0. */
static double ruby_to_f(const char *p, size_t len)
{
    char tmp[128];
    size_t n = len < sizeof(tmp) - 1 ? len : sizeof(tmp) - 1;
    char *endp;
    double d;
    size_t i;

    memcpy(tmp, p, n);
    tmp[n] = '\0';
    /* strtod also reads hex, inf and nan, which Ruby's to_f does not */
    for (i = 0; i < n && isspace((unsigned char)tmp[i]); i++) {
    }
    if (i < n && (tmp[i] == '+' || tmp[i] == '-')) {
        i++;
    }
    if (i >= n || !(isdigit((unsigned char)tmp[i]) || tmp[i] == '.')) {
        return 0.0;
    }
    if (tmp[i] == '0' && i + 1 < n && (tmp[i + 1] == 'x' || tmp[i + 1] == 'X')) {
        return 0.0;
    }
    d = strtod(tmp, &endp);
    return isfinite(d) ? d : 0.0;
}

static int convert_field(struct ls_instance *ins, struct parser_core *c, const struct conv *cv,
                         struct ls_field *f, struct ls_record *rec)
{
    struct ls_value *v = &f->v;
    const char *s;
    size_t len;

    if (v->type == LS_V_NULL) {
        return LS_OK;
    }
    switch (cv->type) {
    case CV_STRING:
        if (v->type != LS_V_STR) {
            s = ls_value_to_text(rec->arena, v, &len);
            *v = ls_vstr(s, len);
        }
        return LS_OK;
    case CV_INTEGER:
        if (v->type == LS_V_STR) {
            *v = ls_value_ruby_to_i(rec->arena, v->u.s.p, v->u.s.len);
        } else if (v->type == LS_V_FLOAT) {
            *v = ls_vint(isfinite(v->u.f) && fabs(v->u.f) < 9e18 ? (int64_t)v->u.f : 0);
        } else if (v->type == LS_V_BOOL) {
            return LS_OK;
        }
        return LS_OK;
    case CV_FLOAT:
        if (v->type == LS_V_STR) {
            *v = ls_vfloat(ruby_to_f(v->u.s.p, v->u.s.len));
        } else if (v->type == LS_V_INT) {
            *v = ls_vfloat((double)v->u.i);
        }
        return LS_OK;
    case CV_BOOL:
        if (v->type == LS_V_STR) {
            len = v->u.s.len;
            s = v->u.s.p;
            *v = ls_vbool((len == 4 && strncasecmp(s, "true", 4) == 0) ||
                          (len == 3 && strncasecmp(s, "yes", 3) == 0) || (len == 1 && s[0] == '1'));
        } else if (v->type == LS_V_INT) {
            *v = ls_vbool(v->u.i == 1);
        }
        return LS_OK;
    case CV_TIME: {
        struct ls_time t;
        int kind = cv->ttype >= 0 ? cv->ttype
                   : v->type == LS_V_STR ? LS_PARSER_TT_STRING : LS_PARSER_TT_FLOAT;
        if (!value_to_time_rb(c, v, kind, cv->tf, &t)) {
            /* fluentd's converter: ->(v){ timep.parse(v) rescue nil }, the record is kept */
            *v = ls_vnull();
            return LS_OK;
        }
        /* an EventTime, which fluentd writes as its seconds (EventTime#to_json, #to_s) */
        *v = ls_vint(t.sec);
        return LS_OK;
    }
    case CV_ARRAY: {
        struct ls_buf *b = &c->scratch;
        size_t dl = strlen(cv->delim);
        const char *p, *end;
        if (v->type != LS_V_STR) {
            return LS_OK;
        }
        ls_buf_reset(b);
        p = v->u.s.p;
        end = p + v->u.s.len;
        if (ls_buf_putc(b, '[') != LS_OK) {
            return LS_DECLINED;
        }
        /* Ruby's split drops trailing empty strings */
        while (p < end) {
            const char *q = dl ? memmem(p, (size_t)(end - p), cv->delim, dl) : NULL;
            const char *e = q ? q : end;
            if (b->len > 1) {
                ls_buf_putc(b, ',');
            }
            if (ls_json_put_str(b, p, (size_t)(e - p)) != LS_OK) {
                ls_parser_set_error(ins, "array value too long");
                return LS_DECLINED;
            }
            p = q ? q + dl : end;
        }
        if (ls_buf_putc(b, ']') != LS_OK) {
            return LS_DECLINED;
        }
        v->type = LS_V_JSON;
        v->u.s.p = ls_arena_memdup(rec->arena, b->p, b->len);
        v->u.s.len = b->len;
        return LS_OK;
    }
    }
    return LS_OK;
}

/* time_key -> event time, then null patterns and types. */
static int post_parse(struct ls_instance *ins, struct ls_record *rec)
{
    struct parser_core *c = core_of(ins);
    struct ls_field *f = NULL;
    unsigned i;
    size_t k;

    if (c->time_key && !c->have_plugin_time) {
        for (i = 0; i < rec->nfields; i++) {
            struct ls_field *x = &rec->fields[i];
            /* the first byte first: the keys before "time" were a libc memcmp call each
             * (1.8% of the text pipeline's instructions) */
            if (x->key_len == c->time_key_len &&
                (x->key_len == 0 || x->key[0] == c->time_key[0]) &&
                memcmp(x->key, c->time_key, x->key_len) == 0) {
                f = x;
                break;
            }
        }
    }
    if (f) {
        struct ls_time t;
        if (!parse_event_time(c, &f->v, &t)) {
            c->why = "invalid time format";
            ins->metrics.errors++;
            return LS_DECLINED;
        }
        rec->time = t;
        if (!c->p.keep_time_key) {
            memmove(f, f + 1, (rec->nfields - (unsigned)(f - rec->fields) - 1) * sizeof(*f));
            rec->nfields--;
        }
    } else if (c->have_plugin_time) {
        rec->time = c->plugin_time;
    } else if (c->p.estimate_current_event) {
        ls_wall_now(&rec->time.sec, &rec->time.nsec);
    }
    if (c->null_re || c->p.null_empty_string) {
        for (i = 0; i < rec->nfields; i++) {
            struct ls_value *v = &rec->fields[i].v;
            if (v->type != LS_V_STR) {
                continue;
            }
            if ((c->p.null_empty_string && v->u.s.len == 0) ||
                (c->null_re && ls_regex_search(c->null_re, v->u.s.p, v->u.s.len) == 1)) {
                *v = ls_vnull();
            }
        }
    }
    for (k = 0; k < c->nconvs; k++) {
        struct ls_field *x = ls_record_get(rec, c->convs[k].key, c->convs[k].key_len);
        if (x && convert_field(ins, c, &c->convs[k], x, rec) != LS_OK) {
            ins->metrics.errors++;
            return LS_DECLINED;
        }
    }
    return LS_OK;
}

int ls_parser_parse(struct ls_instance *parser, const char *line, size_t len, struct ls_record *rec)
{
    struct parser_core *c = core_of(parser);
    int rc;

    c->why = NULL;
    c->declined_text = NULL;
    c->declined_len = 0;
    c->have_plugin_time = false;
    rc = parser->plugin->parse(parser, line, len, rec);
    if (rc == LS_OK) {
        return post_parse(parser, rec);
    }
    if (rc == LS_DECLINED || rc == LS_ERROR) {
        if (rc == LS_ERROR && c->why == NULL) {
            c->why = "regexp match limit exceeded";
        }
        parser->metrics.errors++;
        return LS_DECLINED;
    }
    return rc;
}

int ls_parser_flush(struct ls_instance *parser, struct ls_record *rec)
{
    struct parser_core *c = core_of(parser);
    int rc;

    if (parser->plugin->parse_flush == NULL) {
        return LS_DECLINED;
    }
    c->why = NULL;
    c->declined_text = NULL;
    c->declined_len = 0;
    c->have_plugin_time = false;
    rc = parser->plugin->parse_flush(parser, rec);
    if (rc == LS_OK) {
        return post_parse(parser, rec);
    }
    if (c->declined_text) {
        parser->metrics.errors++;
    }
    return LS_DECLINED;
}

bool ls_parser_is_multiline(const struct ls_instance *parser)
{
    return parser->plugin->parse_flush != NULL;
}

/* v0.12: the flat parser parameters fluentd's compat layer moves into <parse>. */
static const char *const flat_parse_keys[] = {
    "time_key", "time_format", "keep_time_key", "null_empty_string", "null_value_pattern",
    "delimiter", "keys", "json_parser", "label_delimiter", "format_firstline", "message_key",
    "with_priority", "message_format", "rfc5424_time_format", "types", "localtime", "utc",
    "timezone", "time_type", "estimate_current_event", "unmatched_lines", NULL
};

struct ls_conf_section *ls_parser_flat_section(struct ls_conf_section *sec)
{
    struct ls_conf_param *fp = ls_conf_get_param(sec, "format");
    struct ls_conf_section *ps;
    const char *v = fp->value;
    size_t i, n = strlen(v);
    char key[16];

    ps = ls_conf_add_child(sec, "parse", "");
    ps->file = fp->file;
    ps->line = fp->line;
    if (n >= 2 && v[0] == '/' && strrchr(v + 1, '/') != NULL) {
        ls_conf_set(ps, "@type", "regexp", fp->file, fp->line);
        ls_conf_set(ps, "expression", v, fp->file, fp->line);
    } else {
        ls_conf_set(ps, "@type", v, fp->file, fp->line);
    }
    for (i = 0; flat_parse_keys[i]; i++) {
        struct ls_conf_param *p = ls_conf_get_param(sec, flat_parse_keys[i]);
        if (p) {
            p->used = true;
            ls_conf_set(ps, p->key, p->value, p->file, p->line);
            if (strcmp(p->key, "delimiter") == 0) {
                /* fluentd's compat layer copies it and leaves it to in_tcp/in_syslog as
                 * well (their framing): a parser without one has not ignored it */
                ls_conf_get_param(ps, p->key)->used = true;
            }
        }
    }
    for (i = 1; i <= 20; i++) {
        struct ls_conf_param *p;
        snprintf(key, sizeof(key), "format%zu", i);
        p = ls_conf_get_param(sec, key);
        if (p) {
            p->used = true;
            ls_conf_set(ps, p->key, p->value, p->file, p->line);
        }
    }
    return ps;
}

