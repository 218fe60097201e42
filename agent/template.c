/*
 * template.c - record placeholders (see template.h). The tag helpers follow fluentd's
 * filter_record_transformer: tag_parts split on '.', tag_prefix[N] joins parts 0..N,
 * tag_suffix[N] joins N..end, negative N counts from the end.
 */
#include "template.h"
#include "json.h"
#include "rbexpr.h"

#include <stdio.h>
#include <time.h>

enum part_kind { P_LIT, P_HOST, P_TAG, P_TAG_PART, P_TAG_PREFIX, P_TAG_SUFFIX, P_TIME, P_FIELD,
                 P_RUBY, P_NIL, P_RBX };

/* enable_ruby: a receiver, then methods (see rb_compile) */
enum rb_recv { RB_TIME, RB_NOW, RB_FIELD, RB_TAG, RB_HOST, RB_TAG_PART, RB_RECORD };
enum rb_method { RM_STRFTIME, RM_TO_I, RM_TO_F, RM_TO_S, RM_ISO8601, RM_UTC, RM_LOCALTIME,
                 RM_STRIP, RM_DOWNCASE, RM_UPCASE, RM_LENGTH };

struct rb_call {
    enum rb_method m;
    char *arg;                  /* strftime's format */
};

struct ls_tmpl_part {
    enum part_kind kind;
    char *text;                 /* literal text */
    size_t len;
    int index;
    bool epoch;                 /* P_TIME: integer seconds */
    struct ls_accessor field;   /* P_FIELD, P_RUBY's RB_FIELD */
    enum rb_recv recv;          /* P_RUBY */
    struct rb_call *calls;
    size_t ncalls;
    struct rbx *rbx;            /* P_RBX: an expression beyond the chains (rbexpr.c) */
};

static bool tmpl_error;

bool ls_tmpl_take_error(void)
{
    bool e = tmpl_error;

    tmpl_error = false;
    return e;
}

static char hostname[256];

static struct ls_tmpl_part *add_part(struct ls_tmpl *t, enum part_kind k, const char *text,
                                     size_t len, int index)
{
    struct ls_tmpl_part *p;

    t->parts = ls_realloc(t->parts, (t->n + 1) * sizeof(*t->parts));
    p = &t->parts[t->n++];
    memset(p, 0, sizeof(*p));
    p->kind = k;
    p->text = text ? ls_strndup(text, len) : NULL;
    p->len = len;
    p->index = index;
    if (k != P_LIT) {
        t->has_placeholder = true;
    }
    return p;
}

static bool parse_index(const char *s, const char *prefix, int *index)
{
    size_t n = strlen(prefix);
    char *end;
    long v;

    if (strncmp(s, prefix, n) != 0) {
        return false;
    }
    v = strtol(s + n, &end, 10);
    if (end == s + n || strcmp(end, "]") != 0) {
        return false;
    }
    *index = (int)v;
    return true;
}

/* record["a"]['b']... into accessor steps; false when expr is anything else */
static bool parse_record_ref(const char *expr, struct ls_accessor *acc)
{
    const char *s = expr + 6;      /* after "record" */
    struct ls_buf spec;
    bool ok = true;
    char err[64];

    if (*s != '[') {
        return false;
    }
    ls_buf_init(&spec, 0);
    ls_buf_putc(&spec, '$');
    while (*s && ok) {
        char q = s[1];
        const char *e;
        if (s[0] != '[' || (q != '"' && q != '\'')) {
            ok = false;
            break;
        }
        e = strchr(s + 2, q);
        if (e == NULL || e[1] != ']' || memchr(s + 2, '\'', (size_t)(e - s - 2)) ||
            memchr(s + 2, '"', (size_t)(e - s - 2))) {
            ok = false;
            break;
        }
        ls_buf_append(&spec, "['", 2);
        ls_buf_append(&spec, s + 2, (size_t)(e - s - 2));
        ls_buf_append(&spec, "']", 2);
        s = e + 2;
    }
    if (ok && acc && ls_accessor_compile(acc, ls_buf_cstr(&spec), err, sizeof(err)) != LS_OK) {
        ok = false;
    }
    ls_buf_release(&spec);
    return ok;
}

/* ------------------------------------------------------------------ */
/* enable_ruby: the expressions real files write                        */

static const struct {
    const char *name;
    enum rb_method m;
} rb_methods[] = {
    { "strftime", RM_STRFTIME }, { "to_i", RM_TO_I }, { "to_f", RM_TO_F }, { "to_s", RM_TO_S },
    { "iso8601", RM_ISO8601 }, { "xmlschema", RM_ISO8601 }, { "utc", RM_UTC },
    { "getutc", RM_UTC }, { "gmtime", RM_UTC }, { "localtime", RM_LOCALTIME },
    { "getlocal", RM_LOCALTIME }, { "strip", RM_STRIP }, { "downcase", RM_DOWNCASE },
    { "upcase", RM_UPCASE }, { "length", RM_LENGTH }, { "size", RM_LENGTH },
};

/*
 * A receiver (time, Time.now, Time.at(time), record["k"]..., tag, hostname, tag_parts[N]) and
 * a chain of methods: strftime('fmt'), to_i, to_f, to_s, iso8601, utc, localtime, strip,
 * downcase, upcase, length. That covers the @timestamp ${time.strftime('%Y-%m-%dT%H:%M:%S%z')}
 * of Elasticsearch configurations, ${Time.now.to_i}, ${record["level"].downcase}; anything
 * else would need Ruby and is refused here, not expanded to something else.
 */
static int rb_compile(struct ls_tmpl_part *p, const char *expr, unsigned flags, char *msg,
                      size_t msglen)
{
    const char *s = expr;
    int index;

    while (*s == ' ') {
        s++;
    }
    if (strncmp(s, "Time.now", 8) == 0 && (s[8] == '.' || s[8] == '\0' || s[8] == ' ')) {
        p->recv = RB_NOW;
        s += 8;
    } else if (strncmp(s, "Time.at(time)", 13) == 0) {
        p->recv = RB_TIME;
        s += 13;
    } else if (strncmp(s, "time", 4) == 0 && (s[4] == '.' || s[4] == '\0' || s[4] == ' ')) {
        if (flags & LS_TMPL_TIME_EPOCH) {
            goto refuse;
        }
        p->recv = RB_TIME;
        s += 4;
    } else if (strncmp(s, "record.dig(", 11) == 0) {
        /* Hash#dig("a", "b", 0): record["a"]["b"][0], nil where a step is missing */
        struct ls_buf spec;
        char aerr[64];
        bool ok = true;
        s += 11;
        ls_buf_init(&spec, 0);
        ls_buf_putc(&spec, '$');
        for (;;) {
            while (*s == ' ') {
                s++;
            }
            if (*s == '"' || *s == '\'') {
                const char *q = strchr(s + 1, *s);
                if (q == NULL || memchr(s + 1, '\\', (size_t)(q - s - 1)) ||
                    memchr(s + 1, *s == '"' ? '\'' : '"', (size_t)(q - s - 1)) ||
                    (*s == '"' && memchr(s + 1, '#', (size_t)(q - s - 1)))) {
                    ok = false;
                    break;
                }
                ls_buf_printf(&spec, "['%.*s']", (int)(q - s - 1), s + 1);
                s = q + 1;
            } else if ((*s >= '0' && *s <= '9') || *s == '-') {
                char *end;
                long idx = strtol(s, &end, 10);
                if (end == s) {
                    ok = false;
                    break;
                }
                ls_buf_printf(&spec, "[%ld]", idx);
                s = end;
            } else {
                ok = false;
                break;
            }
            while (*s == ' ') {
                s++;
            }
            if (*s == ',') {
                s++;
                continue;
            }
            break;
        }
        ok = ok && *s == ')' && spec.len > 1 &&
             ls_accessor_compile(&p->field, ls_buf_cstr(&spec), aerr, sizeof(aerr)) == LS_OK;
        ls_buf_release(&spec);
        if (!ok) {
            goto refuse;
        }
        p->recv = RB_FIELD;
        s++;
    } else if (strncmp(s, "record", 6) == 0 && (s[6] == '.' || s[6] == '\0' || s[6] == ' ')) {
        p->recv = RB_RECORD;        /* the Hash itself: an object, or Hash#to_s in a string */
        s += 6;
    } else if (strncmp(s, "record[", 7) == 0) {
        const char *e = s + 6;
        char *ref;
        bool ok;
        while (e[0] == '[' && (e[1] == '"' || e[1] == '\'')) {
            const char *q = strchr(e + 2, e[1]);
            if (q == NULL || q[1] != ']') {
                goto refuse;
            }
            e = q + 2;
        }
        ref = ls_strndup(s, (size_t)(e - s));
        ok = parse_record_ref(ref, &p->field);
        ls_free(ref);
        if (!ok) {
            goto refuse;
        }
        p->recv = RB_FIELD;
        s = e;
    } else if (strncmp(s, "tag_parts[", 10) == 0) {
        const char *e = strchr(s, ']');
        char *ref;
        bool ok;
        if (e == NULL) {
            goto refuse;
        }
        ref = ls_strndup(s, (size_t)(e + 1 - s));
        ok = parse_index(ref, "tag_parts[", &index);
        ls_free(ref);
        if (!ok) {
            goto refuse;
        }
        p->recv = RB_TAG_PART;
        p->index = index;
        s = e + 1;
    } else if (strncmp(s, "tag", 3) == 0 && (s[3] == '.' || s[3] == '\0')) {
        p->recv = RB_TAG;
        s += 3;
    } else if (strncmp(s, "hostname", 8) == 0 && (s[8] == '.' || s[8] == '\0') &&
               !(flags & LS_TMPL_NO_HOSTNAME)) {
        p->recv = RB_HOST;
        s += 8;
    } else {
        goto refuse;
    }
    while (*s == '.') {
        const char *name = ++s;
        size_t n = 0, i;
        struct rb_call c = { RM_TO_S, NULL };
        bool found = false;
        while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_') {
            n++;
        }
        for (i = 0; i < sizeof(rb_methods) / sizeof(rb_methods[0]); i++) {
            if (strlen(rb_methods[i].name) == n && strncmp(rb_methods[i].name, name, n) == 0) {
                c.m = rb_methods[i].m;
                found = true;
            }
        }
        if (!found) {
            goto refuse;
        }
        s += n;
        if (c.m == RM_STRFTIME) {
            const char *q;
            if (s[0] != '(' || (s[1] != '\'' && s[1] != '"') || (q = strchr(s + 2, s[1])) == NULL ||
                q[1] != ')' || memchr(s + 2, '\\', (size_t)(q - s - 2)) ||
                (s[1] == '"' && memchr(s + 2, '#', (size_t)(q - s - 2)))) {
                goto refuse;
            }
            c.arg = ls_strndup(s + 2, (size_t)(q - s - 2));
            s = q + 2;
        } else if (s[0] == '(' && s[1] == ')') {
            s += 2;
        }
        p->calls = ls_realloc(p->calls, (p->ncalls + 1) * sizeof(*p->calls));
        p->calls[p->ncalls++] = c;
    }
    while (*s == ' ') {
        s++;
    }
    if (*s == '\0') {
        return LS_OK;
    }
refuse:
    snprintf(msg, msglen, "${%s} is Ruby that logship does not evaluate: with enable_ruby it "
             "takes time, Time.now, Time.at(time), record, record[\"key\"], record.dig(...), "
             "tag, tag_parts[N]%s, then "
             "methods strftime('...'), to_i, to_f, to_s, iso8601, utc, localtime, strip, "
             "downcase, upcase, length", expr,
             (flags & LS_TMPL_NO_HOSTNAME) ? "" : " or hostname");
    return LS_ERROR;
}

static void part_release(struct ls_tmpl_part *p)
{
    rbx_free(p->rbx);
    p->rbx = NULL;
    size_t k;

    ls_free(p->text);
    ls_accessor_release(&p->field);
    for (k = 0; k < p->ncalls; k++) {
        ls_free(p->calls[k].arg);
    }
    ls_free(p->calls);
}

/* expr starts with a name that is Ruby's in enable_ruby (time, Time, record...), not a key */
static bool rb_receiver_word(const char *expr)
{
    static const char *const words[] = { "time", "Time", "record", "tag", "tag_parts",
                                         "tag_prefix", "tag_suffix", "hostname", NULL };
    size_t i, n;

    while (*expr == ' ') {
        expr++;
    }
    n = strcspn(expr, ".([ ");
    for (i = 0; words[i]; i++) {
        if (strlen(words[i]) == n && strncmp(words[i], expr, n) == 0) {
            return true;
        }
    }
    return false;
}

/* expr calls something: a '(' or a last dotted part that is a method logship knows */
static bool rb_method_like(const char *expr)
{
    const char *dot = strrchr(expr, '.');
    size_t i;

    if (strchr(expr, '(')) {
        return true;
    }
    for (i = 0; dot && i < sizeof(rb_methods) / sizeof(rb_methods[0]); i++) {
        if (strcmp(dot + 1, rb_methods[i].name) == 0) {
            return true;
        }
    }
    return false;
}

/* expr as a P_RUBY part of t; false (no part added, the reason in msg) if rb_compile
 * refuses it, so that a v0.12 ${key.with.dots} can still be a field */
static bool rb_try(struct ls_tmpl *t, const char *expr, unsigned flags, char *msg, size_t msglen)
{
    struct ls_tmpl_part *p = add_part(t, P_RUBY, NULL, 0, 0);

    if (rb_compile(p, expr, flags, msg, msglen) == LS_OK) {
        return true;
    }
    part_release(p);
    t->n--;
    return false;
}

/* expr as a P_RBX part (the Ruby subset of rbexpr.c); false with the reason in why */
static bool rbx_try(struct ls_tmpl *t, const char *expr, char *why, size_t whylen)
{
    struct rbx *x = rbx_compile(expr, why, whylen);

    if (x == NULL) {
        return false;
    }
    add_part(t, P_RBX, NULL, 0, 0)->rbx = x;
    return true;
}

/* The '}' closing the placeholder that starts at open: with enable_ruby, braces and quotes
 * inside the expression ("#{...}", '}') are skipped. */
static const char *placeholder_end(const char *open, unsigned flags)
{
    const char *c = open + 2;
    int depth = 0;
    char q = 0;

    if (!(flags & LS_TMPL_RUBY)) {
        return strchr(open + 2, '}');
    }
    for (; *c; c++) {
        if (q) {
            if (*c == '\\' && c[1]) {
                c++;
            } else if (*c == q) {
                q = 0;
            } else if (q == '"' && *c == '#' && c[1] == '{') {
                /* interpolation inside a string: its braces nest */
                int d = 0;
                for (c++; *c; c++) {
                    d += *c == '{' ? 1 : *c == '}' ? -1 : 0;
                    if (d == 0) {
                        break;
                    }
                }
                if (*c == '\0') {
                    return NULL;
                }
            }
            continue;
        }
        if (*c == '"' || *c == '\'') {
            q = *c;
        } else if (*c == '{') {
            depth++;
        } else if (*c == '}') {
            if (depth == 0) {
                return c;
            }
            depth--;
        }
    }
    return NULL;
}

int ls_tmpl_compile(struct ls_tmpl *t, const char *tmpl, unsigned flags, char *msg,
                    size_t msglen)
{
    char why[200] = "";

    const char *s = tmpl;

    memset(t, 0, sizeof(*t));
    if (hostname[0] == '\0' && gethostname(hostname, sizeof(hostname) - 1) != 0) {
        snprintf(hostname, sizeof(hostname), "localhost");
    }
    while (*s) {
        const char *open = strstr(s, "${");
        const char *close;
        char *expr;
        int index;
        bool ok = true, ruby_refused = false;

        if (open == NULL) {
            add_part(t, P_LIT, s, strlen(s), 0);
            break;
        }
        if (open > s) {
            add_part(t, P_LIT, s, (size_t)(open - s), 0);
        }
        close = placeholder_end(open, flags);
        if (close == NULL && (flags & LS_TMPL_RUBY)) {
            close = strchr(open + 2, '}');     /* so that the error shows the expression */
        }
        if (close == NULL) {
            snprintf(msg, msglen, "unterminated placeholder in '%s'", tmpl);
            return LS_ERROR;
        }
        expr = ls_strndup(open + 2, (size_t)(close - open - 2));
        if (strcmp(expr, "hostname") == 0 && !(flags & LS_TMPL_NO_HOSTNAME)) {
            add_part(t, P_HOST, NULL, 0, 0);
        } else if (strcmp(expr, "tag") == 0) {
            add_part(t, P_TAG, NULL, 0, 0);
        } else if (strcmp(expr, "time") == 0) {
            add_part(t, P_TIME, NULL, 0, 0)->epoch = (flags & LS_TMPL_TIME_EPOCH) != 0;
        } else if (parse_index(expr, "tag_parts[", &index)) {
            add_part(t, P_TAG_PART, NULL, 0, index);
        } else if (!(flags & LS_TMPL_NO_TAG_FIXES) && parse_index(expr, "tag_prefix[", &index)) {
            add_part(t, P_TAG_PREFIX, NULL, 0, index);
        } else if (!(flags & LS_TMPL_NO_TAG_FIXES) && parse_index(expr, "tag_suffix[", &index)) {
            add_part(t, P_TAG_SUFFIX, NULL, 0, index);
        } else if (strncmp(expr, "record[", 7) == 0 && parse_record_ref(expr, NULL)) {
            struct ls_tmpl_part *p = add_part(t, P_FIELD, NULL, 0, 0);
            ok = parse_record_ref(expr, &p->field);
        } else if ((flags & LS_TMPL_RUBY) && (strpbrk(expr, ".([") || strcmp(expr, "record") == 0) &&
                   (ruby_refused = !rb_try(t, expr, flags, msg, msglen)) == false) {
            /* Ruby: "Time.now.to_i" is a method call, not the field "Time.now.to_i" */
        } else if ((flags & LS_TMPL_RUBY) && rbx_try(t, expr, why, sizeof(why))) {
            ruby_refused = false;
        } else if (flags & LS_TMPL_KEY_SHORTCUT) {
            const char *c;
            for (c = expr; *c && ok; c++) {
                ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                     (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' || *c == '.';
            }
            if (ok && *expr) {
                char err[64];
                struct ls_tmpl_part *p = add_part(t, P_FIELD, NULL, 0, 0);
                ls_accessor_compile(&p->field, expr, err, sizeof(err));
            } else {
                ok = false;
            }
        } else if (flags & LS_TMPL_UNKNOWN_NIL) {
            /* fluentd v1 warns on every record and expands it to nil; once here is enough */
            add_part(t, P_NIL, NULL, 0, 0);
            snprintf(msg, msglen, "unknown placeholder `${%s}`: fluentd v1 expands it to nothing "
                     "(null as a whole value)%s", expr,
                     strpbrk(expr, "[.(\"' ") ? "" : "; for the record's field write "
                     "${record[\"...\"]} (${key} was fluentd v0.12's shortcut)");
        } else {
            ok = false;
        }
        if (ruby_refused && (rb_receiver_word(expr) || rb_method_like(expr))) {
            /* time.year, message.downcase: Ruby logship does not do, not the fields named so
             * (fluentd's record_transformer raises NameError for message.downcase) */
            ok = false;
        }
        if (!ok && ruby_refused) {
            size_t used = strlen(msg);
            if (why[0] && used + 8 < msglen) {
                snprintf(msg + used, msglen - used, " (%s)", why);
            }
            ls_free(expr);
            ls_tmpl_release(t);
            return LS_ERROR;      /* rb_compile's message says what enable_ruby takes */
        }
        if (!ok) {
            snprintf(msg, msglen, "${%s} is a Ruby expression; logship evaluates only "
                     "%s${tag}, ${tag_parts[N]}, %s${time}, ${record[\"key\"]}%s", expr,
                     (flags & LS_TMPL_NO_HOSTNAME) ? "" : "${hostname}, ",
                     (flags & LS_TMPL_NO_TAG_FIXES) ? "" : "${tag_prefix[N]}, ${tag_suffix[N]}, ",
                     (flags & LS_TMPL_KEY_SHORTCUT) ? " and ${key}" : "");
            ls_free(expr);
            ls_tmpl_release(t);
            return LS_ERROR;
        }
        ls_free(expr);
        s = close + 1;
    }
    return LS_OK;
}

void ls_tmpl_release(struct ls_tmpl *t)
{
    size_t i;

    for (i = 0; i < t->n; i++) {
        part_release(&t->parts[i]);
    }
    ls_free(t->parts);
    memset(t, 0, sizeof(*t));
}

/* the N-th dot-separated part of the tag (negative from the end) */
static bool tag_part(const char *tag, size_t len, int index, const char **out, size_t *olen)
{
    int nparts = 1, i, want;
    size_t k, start = 0;

    for (k = 0; k < len; k++) {
        if (tag[k] == '.') {
            nparts++;
        }
    }
    want = index < 0 ? nparts + index : index;
    if (want < 0 || want >= nparts) {
        return false;
    }
    for (i = 0, k = 0; k <= len; k++) {
        if (k == len || tag[k] == '.') {
            if (i == want) {
                *out = tag + start;
                *olen = k - start;
                return true;
            }
            i++;
            start = k + 1;
        }
    }
    return false;
}

/* A Ruby value while a chain is evaluated: a Time, or a record value (strings in the arena). */
struct rbv {
    bool is_time;
    bool utc;
    int64_t sec;
    int32_t nsec;
    struct ls_value v;
};

/* Ruby's strftime over C's: %L (milliseconds), %N / %3N / %6N / %9N (fractions) and %:z are
 * Ruby's own, so they are written here and the rest is left to strftime(3). */
static void rb_strftime(struct ls_buf *b, const char *fmt, const struct rbv *t)
{
    struct ls_buf f;
    struct tm tm;
    time_t sec = (time_t)t->sec;
    char out[512];
    const char *c;
    size_t n;

    if (t->utc) {
        gmtime_r(&sec, &tm);
    } else {
        localtime_r(&sec, &tm);
    }
    ls_buf_init(&f, 0);
    for (c = fmt; *c; c++) {
        int digits = 0;
        const char *d = c + 1;
        if (*c != '%') {
            ls_buf_putc(&f, *c);
            continue;
        }
        if (*d >= '1' && *d <= '9' && d[1] == 'N') {
            digits = *d - '0';
            d++;
        }
        if (*d == 'L' || *d == 'N') {
            char frac[16];
            int k, want = *d == 'L' ? 3 : digits ? digits : 9;
            snprintf(frac, sizeof(frac), "%09d", (int)t->nsec);
            for (k = 0; k < want; k++) {
                ls_buf_putc(&f, k < 9 ? frac[k] : '0');
            }
            c = d;
        } else if (d[0] == ':' && d[1] == 'z') {
            long off = t->utc ? 0 : tm.tm_gmtoff;
            char z[40];
            snprintf(z, sizeof(z), "%c%02ld:%02ld", off < 0 ? '-' : '+', labs(off) / 3600,
                     labs(off) % 3600 / 60);
            ls_buf_append(&f, z, strlen(z));
            c = d + 1;
        } else if (*d == '%') {
            ls_buf_append(&f, "%%", 2);
            c = d;
        } else if (*d == 'Z' && t->utc) {
            ls_buf_append(&f, "UTC", 3);      /* gmtime_r's zone is "GMT" */
            c = d;
        } else if (*d == 's') {
            char e[24];
            /* glibc's %s is mktime() of the broken-down time: wrong for a UTC one */
            snprintf(e, sizeof(e), "%lld", (long long)t->sec);
            ls_buf_append(&f, e, strlen(e));
            c = d;
        } else {
            ls_buf_putc(&f, '%');
        }
    }
    ls_buf_cstr(&f);
    if (f.len) {
        /* the format is the configuration's (Ruby's directives replaced above); an output
         * past the stack buffer is made again in a bigger one (0 is also a legal result) */
        size_t cap = sizeof(out);
        char *big = NULL, *o = out;
        for (;;) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
            n = strftime(o, cap, f.p, &tm);
#pragma GCC diagnostic pop
            if (n > 0 || cap >= 64 * f.len + 4096) {
                break;
            }
            cap *= 4;
            big = ls_realloc(big, cap);
            o = big;
        }
        ls_buf_append(b, o, n);
        ls_free(big);
    }
    ls_buf_release(&f);
}

void ls_tmpl_strftime(struct ls_buf *b, const char *fmt, int64_t sec, int32_t nsec, bool utc)
{
    struct rbv t;

    memset(&t, 0, sizeof(t));
    t.is_time = true;
    t.sec = sec;
    t.nsec = nsec;
    t.utc = utc;
    rb_strftime(b, fmt, &t);
}

/* Ruby's String#to_i: leading blanks, a sign, digits with single underscores between; else 0. */
static int64_t rb_str_to_i(const char *p, size_t n)
{
    size_t i = 0;
    bool neg = false;
    uint64_t v = 0;
    bool digit = false;

    while (i < n && (p[i] == ' ' || (p[i] >= '\t' && p[i] <= '\r'))) {
        i++;
    }
    if (i < n && (p[i] == '-' || p[i] == '+')) {
        neg = p[i++] == '-';
    }
    for (; i < n; i++) {
        if (p[i] == '_' && digit && i + 1 < n && p[i + 1] >= '0' && p[i + 1] <= '9') {
            continue;
        }
        digit = true;
        if (p[i] < '0' || p[i] > '9') {
            break;
        }
        v = v * 10 + (uint64_t)(p[i] - '0');
        if (v > (uint64_t)INT64_MAX) {
            v = (uint64_t)INT64_MAX;     /* Ruby would make a Bignum */
        }
    }
    return neg ? -(int64_t)v : (int64_t)v;
}

/* The value as "#{v}" prints it, into the arena. */
static struct ls_value rb_to_s(const struct ls_record *rec, const struct rbv *x)
{
    struct ls_buf b;
    struct ls_value out;

    if (!x->is_time && x->v.type == LS_V_STR) {
        return x->v;
    }
    ls_buf_init(&b, 0);
    if (x->is_time) {
        rb_strftime(&b, x->utc ? "%Y-%m-%d %H:%M:%S UTC" : "%Y-%m-%d %H:%M:%S %z", x);
    } else if (x->v.type != LS_V_NULL) {
        ls_ruby_put_value(&b, &x->v, false);
    }
    out = ls_vstr(ls_arena_memdup(rec->arena, b.p ? b.p : "", b.len), b.len);
    ls_buf_release(&b);
    return out;
}

/* Evaluate p's receiver and methods. false: Ruby would raise (NoMethodError on nil...). */
static bool rb_eval(const struct ls_tmpl_part *p, const struct ls_record *rec, struct rbv *x)
{
    size_t i;
    const char *s;
    size_t n;

    memset(x, 0, sizeof(*x));
    x->v = ls_vnull();
    switch (p->recv) {
    case RB_TIME:
        x->is_time = true;
        x->sec = rec->time.sec;
        x->nsec = (int32_t)rec->time.nsec;
        break;
    case RB_NOW: {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        x->is_time = true;
        x->sec = ts.tv_sec;
        x->nsec = (int32_t)ts.tv_nsec;
        break;
    }
    case RB_FIELD:
        if (!ls_accessor_get(&p->field, rec, &x->v)) {
            x->v = ls_vnull();
        }
        break;
    case RB_TAG:
        x->v = ls_vstr(rec->tag, rec->tag_len);
        break;
    case RB_HOST:
        x->v = ls_vstr(hostname, strlen(hostname));
        break;
    case RB_TAG_PART:
        if (tag_part(rec->tag, rec->tag_len, p->index, &s, &n)) {
            x->v = ls_vstr(s, n);
        }
        break;
    case RB_RECORD: {
        struct ls_buf b;
        ls_buf_init(&b, 0);
        ls_json_put_record(&b, rec);
        x->v.type = LS_V_JSON;
        x->v.u.s.p = ls_arena_memdup(rec->arena, b.p ? b.p : "{}", b.p ? b.len : 2);
        x->v.u.s.len = b.p ? b.len : 2;
        ls_buf_release(&b);
        break;
    }
    }
    for (i = 0; i < p->ncalls; i++) {
        const struct rb_call *c = &p->calls[i];
        int t = x->is_time ? -1 : (int)x->v.type;
        switch (c->m) {
        case RM_TO_S:
            x->v = rb_to_s(rec, x);
            x->is_time = false;
            break;
        case RM_TO_I:
            if (x->is_time) {
                x->v = ls_vint(x->sec);
            } else if (t == LS_V_STR) {
                x->v = ls_vint(rb_str_to_i(x->v.u.s.p, x->v.u.s.len));
            } else if (t == LS_V_FLOAT) {
                double fv = x->v.u.f;
                if (fv != fv || fv == 1.0 / 0.0 || fv == -1.0 / 0.0) {
                    return false;       /* Ruby: FloatDomainError */
                }
                /* past 64 bits Ruby makes a Bignum; the nearest 64-bit value here */
                x->v = ls_vint(fv >= 9.2233720368547758e18 ? INT64_MAX
                               : fv <= -9.2233720368547758e18 ? INT64_MIN : (int64_t)fv);
            } else if (t == LS_V_NULL) {
                x->v = ls_vint(0);
            } else if (t != LS_V_INT) {
                return false;
            }
            x->is_time = false;
            break;
        case RM_TO_F:
            if (x->is_time) {
                x->v = ls_vfloat((double)x->sec + (double)x->nsec / 1e9);
            } else if (t == LS_V_STR) {
                char *z = ls_arena_memdup(rec->arena, x->v.u.s.p, x->v.u.s.len);
                const char *q = z;
                while (*q == ' ' || (*q >= '\t' && *q <= '\r')) {
                    q++;
                }
                /* Ruby reads decimal digits only: no hex, inf or nan */
                const char *d = q + (*q == '-' || *q == '+');
                bool num = (*d >= '0' && *d <= '9') || (*d == '.' && d[1] >= '0' && d[1] <= '9');
                if (d[0] == '0' && (d[1] == 'x' || d[1] == 'X')) {
                    num = false;     /* Ruby reads the "0" and stops; strtod would read hex */
                }
                x->v = ls_vfloat(num ? strtod(q, NULL) : 0.0);
            } else if (t == LS_V_INT) {
                x->v = ls_vfloat((double)x->v.u.i);
            } else if (t == LS_V_NULL) {
                x->v = ls_vfloat(0.0);
            } else if (t != LS_V_FLOAT) {
                return false;
            }
            x->is_time = false;
            break;
        case RM_STRFTIME:
        case RM_ISO8601: {
            struct ls_buf b;
            if (!x->is_time) {
                return false;
            }
            ls_buf_init(&b, 0);
            rb_strftime(&b, c->m == RM_STRFTIME ? c->arg
                            : x->utc ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%dT%H:%M:%S%:z", x);
            x->v = ls_vstr(ls_arena_memdup(rec->arena, b.p ? b.p : "", b.len), b.len);
            ls_buf_release(&b);
            x->is_time = false;
            break;
        }
        case RM_UTC:
        case RM_LOCALTIME:
            if (!x->is_time) {
                return false;
            }
            x->utc = c->m == RM_UTC;
            break;
        case RM_STRIP:
        case RM_DOWNCASE:
        case RM_UPCASE: {
            char *z;
            size_t a = 0, e, k;
            if (t != LS_V_STR) {
                return false;
            }
            s = x->v.u.s.p;
            e = x->v.u.s.len;
            if (c->m == RM_STRIP) {
                /* Ruby: whitespace both ends, and NULs at the end */
                while (a < e && (s[a] == ' ' || (s[a] >= '\t' && s[a] <= '\r'))) {
                    a++;
                }
                while (e > a && (s[e - 1] == ' ' || s[e - 1] == '\0' ||
                                 (s[e - 1] >= '\t' && s[e - 1] <= '\r'))) {
                    e--;
                }
                x->v = ls_vstr(s + a, e - a);
                break;
            }
            /* ASCII letters; Ruby also maps other scripts' cases */
            z = ls_arena_memdup(rec->arena, s, e);
            for (k = 0; k < e; k++) {
                if (c->m == RM_DOWNCASE && z[k] >= 'A' && z[k] <= 'Z') {
                    z[k] = (char)(z[k] + 32);
                } else if (c->m == RM_UPCASE && z[k] >= 'a' && z[k] <= 'z') {
                    z[k] = (char)(z[k] - 32);
                }
            }
            x->v = ls_vstr(z, e);
            break;
        }
        case RM_LENGTH: {
            int64_t chars = 0;
            size_t k;
            if (t == LS_V_JSON && x->v.u.s.len && (x->v.u.s.p[0] == '[' || x->v.u.s.p[0] == '{')) {
                /* Array#length / Hash#length: its elements or pairs */
                struct ls_record tmp;
                size_t off = 0, elen;
                const char *elem;
                if (x->v.u.s.p[0] == '[') {
                    while (ls_json_array_next(x->v.u.s.p, x->v.u.s.len, &off, &elem, &elen) ==
                           LS_OK) {
                        chars++;
                    }
                } else {
                    ls_record_init(&tmp, rec->arena);
                    if (ls_json_parse_object(x->v.u.s.p, x->v.u.s.len, &tmp) == LS_OK) {
                        chars = tmp.nfields;
                    }
                    ls_record_release(&tmp);
                }
                x->v = ls_vint(chars);
                break;
            }
            if (t != LS_V_STR) {
                return false;
            }
            for (k = 0; k < x->v.u.s.len; k++) {
                chars += ((unsigned char)x->v.u.s.p[k] & 0xc0) != 0x80;   /* UTF-8 characters */
            }
            x->v = ls_vint(chars);
            break;
        }
        }
    }
    return true;
}

/* P_RUBY's value; nil (and the error flag) where Ruby would raise. */
static struct ls_value rb_value(const struct ls_tmpl_part *p, const struct ls_record *rec)
{
    struct rbv x;

    if (!rb_eval(p, rec, &x)) {
        tmpl_error = true;
        return ls_vnull();
    }
    return x.is_time ? rb_to_s(rec, &x) : x.v;
}

static void append(struct ls_buf *b, const char *p, size_t n)
{
    (void)ls_buf_append(b, p, n);
}

static void expand_part(const struct ls_tmpl_part *p, const struct ls_record *rec,
                        struct ls_buf *b)
{
    const char *s;
    size_t n;
    char tbuf[64];
    struct tm tm;
    time_t t;
    struct ls_value v;
    int i;

    switch (p->kind) {
    case P_LIT:
        append(b, p->text, p->len);
        break;
    case P_HOST:
        append(b, hostname, strlen(hostname));
        break;
    case P_TAG:
        append(b, rec->tag, rec->tag_len);
        break;
    case P_TAG_PART:
        if (tag_part(rec->tag, rec->tag_len, p->index, &s, &n)) {
            append(b, s, n);
        }
        break;
    case P_TAG_PREFIX:
        /* tag_prefix[N]: parts 0..N joined */
        for (i = 0; i <= p->index; i++) {
            if (!tag_part(rec->tag, rec->tag_len, i, &s, &n)) {
                break;
            }
            if (i) {
                append(b, ".", 1);
            }
            append(b, s, n);
        }
        break;
    case P_TAG_SUFFIX:
        /* tag_suffix[N]: parts N..end joined */
        for (i = p->index; tag_part(rec->tag, rec->tag_len, i, &s, &n); i++) {
            if (i != p->index) {
                append(b, ".", 1);
            }
            append(b, s, n);
        }
        break;
    case P_TIME:
        if (p->epoch) {
            ls_buf_printf(b, "%lld", (long long)rec->time.sec);
            break;
        }
        /* fluentd prints Time#to_s: "2026-11-21 12:00:00 +0000" */
        t = (time_t)rec->time.sec;
        localtime_r(&t, &tm);
        n = strftime(tbuf, sizeof(tbuf), "%Y-%m-%d %H:%M:%S %z", &tm);
        append(b, tbuf, n);
        break;
    case P_FIELD:
        /* Ruby's to_s: nested objects print as Hash#inspect, nil as "" */
        if (ls_accessor_get(&p->field, rec, &v)) {
            ls_ruby_put_value(b, &v, false);
        }
        break;
    case P_RUBY:
        v = rb_value(p, rec);
        if (v.type != LS_V_NULL) {
            ls_ruby_put_value(b, &v, false);
        }
        break;
    case P_NIL:
        break;
    case P_RBX:
        if (!rbx_eval(p->rbx, rec, hostname, &v)) {
            tmpl_error = true;
        } else if (v.type != LS_V_NULL) {
            ls_ruby_put_value(b, &v, false);
        }
        break;
    }
}

void ls_tmpl_expand(const struct ls_tmpl *t, const struct ls_record *rec, struct ls_buf *b)
{
    size_t i;

    for (i = 0; i < t->n; i++) {
        expand_part(&t->parts[i], rec, b);
    }
}

struct ls_value ls_tmpl_expand_value(const struct ls_tmpl *t, const struct ls_record *rec)
{
    struct ls_buf b;
    struct ls_value v;

    if (!t->has_placeholder && t->n == 1) {
        return ls_vstr(t->parts[0].text, t->parts[0].len);
    }
    ls_buf_init(&b, 0);
    ls_tmpl_expand(t, rec, &b);
    v = ls_vstr(ls_arena_memdup(rec->arena, b.p ? b.p : "", b.len), b.len);
    ls_buf_release(&b);
    return v;
}

bool ls_tmpl_field_value(const struct ls_tmpl *t, const struct ls_record *rec,
                         struct ls_value *out)
{
    if (t->n == 1 && t->parts[0].kind == P_RUBY) {
        *out = rb_value(&t->parts[0], rec);
        return true;
    }
    if (t->n == 1 && t->parts[0].kind == P_NIL) {
        *out = ls_vnull();
        return true;
    }
    if (t->n == 1 && t->parts[0].kind == P_RBX) {
        if (!rbx_eval(t->parts[0].rbx, rec, hostname, out)) {
            tmpl_error = true;
        }
        return true;
    }
    if (t->n != 1 || t->parts[0].kind != P_FIELD) {
        return false;
    }
    if (!ls_accessor_get(&t->parts[0].field, rec, out)) {
        *out = ls_vnull();
    }
    return true;
}

bool ls_tmpl_single_value(const struct ls_tmpl *t, const struct ls_record *rec,
                          struct ls_value *out)
{
    const struct ls_tmpl_part *p;
    const char *s;
    size_t n;

    if (t->n != 1 || !t->has_placeholder) {
        return false;
    }
    p = &t->parts[0];
    if (p->kind == P_FIELD || p->kind == P_RUBY || p->kind == P_NIL || p->kind == P_RBX) {
        return ls_tmpl_field_value(t, rec, out);
    }
    if (p->kind == P_TIME && p->epoch) {
        *out = ls_vint(rec->time.sec);
        return true;
    }
    if (p->kind == P_TAG_PART && !tag_part(rec->tag, rec->tag_len, p->index, &s, &n)) {
        *out = ls_vnull();
        return true;
    }
    *out = ls_tmpl_expand_value(t, rec);
    return true;
}
