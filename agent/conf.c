/*
 * conf.c - fluentd's v1 configuration language, parsed into a tree.
 *
 * A hand-written recursive-descent parser over the whole file in memory,
 * following fluentd's v1_parser.rb / literal_parser.rb rule by rule (element
 * bodies, the four literal forms, comments, @include merged into the current
 * element, reserved '@' keys). Every section and parameter records the file
 * and line it came from, and every error is "file:line: what was wrong, what
 * was expected", because a config error is the first thing a user of a
 * fluentd replacement meets.
 *
 * Embedded Ruby ("#{...}") is not Ruby: a tiny evaluator understands the
 * subset real configs use (ENV lookups with fallbacks, the host name, the
 * worker id, string literals, '+') and refuses anything else, naming
 * file:line, instead of guessing.
 *
 * JSON values (arrays/hashes that may span lines) are read by a small
 * streaming scanner written here rather than a JSON library: we must find
 * where the value ends in the middle of a config file (with '#' comments and
 * #{} inside), report file:line for errors, and re-serialise compactly while
 * keeping the bytes of strings exactly as written; none of the Debian JSON
 * libraries do incremental "is this prefix complete" detection that way.
 *
 * Limits keep hostile or broken input (and the fuzzer) bounded: file size,
 * value size, section nesting, JSON nesting and include depth are capped.
 */
#include "conf.h"
#include "param.h"
#include "log.h"
#include "buf.h"

#include <ctype.h>
#include <stdarg.h>
#include <glob.h>
#include <limits.h>

#define CONF_FILE_MAX    (16 * 1024 * 1024)
#define CONF_VALUE_MAX   (1024 * 1024)
#define CONF_NEST_MAX    100
#define CONF_JSON_DEPTH  64
#define CONF_INCLUDE_MAX 32

/* One file being parsed (included files get their own, sharing conf and err). */
struct incl {
    const char *real;          /* realpath (or the name when there is no file) */
    const char *file;          /* as shown in messages */
    const struct incl *up;
};

struct cp {
    struct ls_conf *conf;
    const char *file;          /* interned */
    const char *s;
    size_t len;
    size_t pos;
    int line;
    char *err;
    size_t errlen;
    const struct incl *inc;    /* this file's entry on the include stack */
    int incdepth;
};

/* ------------------------------------------------------------------ */
/* helpers                                                              */

static int perr(struct cp *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int perr(struct cp *p, int line, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (p->err == NULL || p->errlen == 0) {
        return LS_ERROR;
    }
    n = snprintf(p->err, p->errlen, "%s:%d: ", p->file, line);
    if (n < 0 || (size_t)n >= p->errlen) {
        return LS_ERROR;
    }
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return LS_ERROR;
}

static const char *intern(struct ls_conf *c, const char *name)
{
    for (size_t i = 0; i < c->nfiles; i++) {
        if (strcmp(c->files[i], name) == 0) {
            return c->files[i];
        }
    }
    c->files = ls_realloc(c->files, (c->nfiles + 1) * sizeof(char *));
    c->files[c->nfiles] = ls_strdup(name);
    return c->files[c->nfiles++];
}

static int peek(const struct cp *p, size_t off)
{
    if (p->pos + off >= p->len) {
        return -1;
    }
    return (unsigned char)p->s[p->pos + off];
}

static bool eof(const struct cp *p)
{
    return p->pos >= p->len;
}

static void adv(struct cp *p)
{
    if (p->pos < p->len) {
        if (p->s[p->pos] == '\n') {
            p->line++;
        }
        p->pos++;
    }
}

static void skip_blanks(struct cp *p)
{
    while (peek(p, 0) == ' ' || peek(p, 0) == '\t') {
        adv(p);
    }
}

static void skip_to_eol(struct cp *p)
{
    while (!eof(p) && peek(p, 0) != '\n') {
        adv(p);
    }
}

/* fluentd's SPACING: blanks, newlines and whole '#' comments. */
static void skip_spacing(struct cp *p)
{
    for (;;) {
        int c = peek(p, 0);
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            adv(p);
        } else if (c == '#') {
            skip_to_eol(p);
        } else {
            return;
        }
    }
}

/* fluentd's LINE_END: optional blanks, an optional comment, then newline or EOF. */
static int expect_line_end(struct cp *p, const char *after)
{
    skip_blanks(p);
    if (peek(p, 0) == '#') {
        skip_to_eol(p);
    }
    if (eof(p) || peek(p, 0) == '\n' || peek(p, 0) == '\r') {
        return LS_OK;
    }
    {
        size_t n = 0;
        while (p->pos + n < p->len && n < 30 && p->s[p->pos + n] != '\n' && p->s[p->pos + n] != '\r') {
            n++;
        }
        return perr(p, p->line, "unexpected text '%.*s' after %s (expected end of line or a # comment)",
                    (int)n, p->s + p->pos, after);
    }
}

static bool is_name_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static bool in_list(const char *s, const char *const *list)
{
    for (; *list; list++) {
        if (strcmp(s, *list) == 0) {
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------------ */
/* embedded Ruby: the supported subset                                  */

enum { RB_NONE = 0, RB_USE_NIL = 1, RB_USE_DEFAULT = 2 };

struct rb {
    const char *s;
    size_t len;
    size_t pos;
    char *msg;
    size_t msglen;
    bool failed;
};

struct rv {                    /* a Ruby value: a string or nil (+ use_nil/use_default marker) */
    char *s;                   /* NULL = nil */
    int special;
    bool fls;                  /* Ruby's false: s is "false" (as "#{false}" prints), but falsy */
    bool num;                  /* a number literal: s is how Ruby prints it */
};

static void rb_ws(struct rb *r)
{
    while (r->pos < r->len && isspace((unsigned char)r->s[r->pos])) {
        r->pos++;
    }
}

static bool rb_lit(struct rb *r, const char *w)
{
    size_t n = strlen(w);

    rb_ws(r);
    if (r->len - r->pos >= n && memcmp(r->s + r->pos, w, n) == 0) {
        /* identifiers must not run on ("hostnamex") */
        if (is_name_char((unsigned char)w[n - 1]) && r->pos + n < r->len &&
            is_name_char((unsigned char)r->s[r->pos + n])) {
            return false;
        }
        r->pos += n;
        return true;
    }
    return false;
}

static int rb_fail(struct rb *r, const char *what)
{
    if (!r->failed) {
        snprintf(r->msg, r->msglen,
                 "unsupported embedded Ruby #{%.*s}: %s (supported: ENV[\"X\"], ENV['X'] || 'default', "
                 "ENV.fetch('X', 'default'), cond ? a : b, (...), Socket.gethostname, hostname, "
                 "File.join, Dir.pwd, worker_id, use_nil, use_default, true, false, nil, "
                 "numbers, 'strings' and +)",
                 (int)(r->len > 80 ? 80 : r->len), r->s, what);
    }
    r->failed = true;
    return LS_ERROR;
}

/* A Ruby string literal: '..' (only \' and \\ escapes) or ".." (common escapes). */
static int rb_string(struct rb *r, char **out)
{
    struct ls_buf b;
    char q;

    rb_ws(r);
    if (r->pos >= r->len || (r->s[r->pos] != '\'' && r->s[r->pos] != '"')) {
        return rb_fail(r, "expected a string literal");
    }
    q = r->s[r->pos++];
    ls_buf_init(&b, CONF_VALUE_MAX);
    while (r->pos < r->len && r->s[r->pos] != q) {
        char c = r->s[r->pos++];
        if (c == '\\' && r->pos < r->len) {
            char n = r->s[r->pos++];
            if (q == '\'') {
                if (n != '\'' && n != '\\') {
                    ls_buf_putc(&b, '\\');
                }
                c = n;
            } else {
                switch (n) {
                case 'n': c = '\n'; break;
                case 't': c = '\t'; break;
                case 'r': c = '\r'; break;
                case '0':
                    ls_buf_release(&b);
                    return rb_fail(r, "\\0 (a NUL byte) cannot be part of a configuration value");
                case 'e': c = 27; break;
                default: c = n; break;
                }
            }
        } else if (c == '#' && q == '"' && r->pos < r->len && r->s[r->pos] == '{') {
            ls_buf_release(&b);
            return rb_fail(r, "nested interpolation is not supported");
        }
        ls_buf_putc(&b, c);
    }
    if (r->pos >= r->len) {
        ls_buf_release(&b);
        return rb_fail(r, "unterminated string literal");
    }
    r->pos++;
    ls_buf_cstr(&b);
    *out = b.p ? ls_buf_detach(&b, NULL) : ls_strdup("");
    return LS_OK;
}

static char *rb_hostname(void)
{
    char h[256];

    if (gethostname(h, sizeof(h)) != 0) {
        return ls_strdup("");
    }
    h[sizeof(h) - 1] = '\0';
    return ls_strdup(h);
}

static int rb_expr(struct rb *r, struct rv *v);

static int rb_ternary(struct rb *r, struct rv *v);

/* File.join(a, b, ...): Ruby's separator rule: a part that starts with '/' drops the '/'s the
 * result ends with, another gets one added unless the result ends with '/'
 * (File.join('/var/log/', '', 'x.pos') is "/var/log/x.pos"). */
static int rb_file_join(struct rb *r, struct rv *v)
{
    struct ls_buf b;
    bool first = true;

    if (!rb_lit(r, "(")) {
        return rb_fail(r, "expected File.join(...)");
    }
    ls_buf_init(&b, CONF_VALUE_MAX);
    if (!rb_lit(r, ")")) {
        do {
            struct rv a;
            if (rb_ternary(r, &a) != LS_OK) {
                ls_buf_release(&b);
                return LS_ERROR;
            }
            if (a.s == NULL || a.fls || a.special != RB_NONE) {
                ls_free(a.s);
                ls_buf_release(&b);
                return rb_fail(r, "File.join of a value that is not a string (an unset ENV "
                                  "variable?)");
            }
            if (!first) {
                if (a.s[0] == '/') {
                    while (b.len > 0 && b.p[b.len - 1] == '/') {
                        b.len--;
                    }
                } else if (b.len == 0 || b.p[b.len - 1] != '/') {
                    ls_buf_putc(&b, '/');
                }
            }
            ls_buf_append(&b, a.s, strlen(a.s));
            ls_free(a.s);
            first = false;
        } while (rb_lit(r, ","));
        if (!rb_lit(r, ")")) {
            ls_buf_release(&b);
            return rb_fail(r, "expected ')' after File.join(...");
        }
    }
    ls_buf_cstr(&b);
    v->s = b.p ? ls_buf_detach(&b, NULL) : ls_strdup("");
    return LS_OK;
}

/*
 * A number literal, as Ruby prints it: 9243, 1_000 (1000), 0x1f / 0o17 / 0b11 / 017 (octal),
 * -5, 1.50 (1.5). Real files write "#{ENV['PORT'] ? ENV['PORT'] : 9243}". Exponents and
 * floats past 15 significant digits, whose Ruby text this would not reproduce, are refused.
 */
static int rb_number(struct rb *r, struct rv *v)
{
    char digits[64];
    size_t n = 0, i = r->pos;
    bool neg = false, dot = false;
    int base = 10;

    if (i < r->len && r->s[i] == '-') {
        neg = true;
        i++;
    }
    if (i + 1 < r->len && r->s[i] == '0' && strchr("xXoObB0123456789_", r->s[i + 1])) {
        char b = (char)tolower((unsigned char)r->s[i + 1]);
        base = b == 'x' ? 16 : b == 'b' ? 2 : 8;
        i += b == 'x' || b == 'b' || b == 'o' ? 2 : 1;
    }
    for (; i < r->len && n + 1 < sizeof(digits); i++) {
        char c = r->s[i];
        if (c == '_' && n > 0 && i + 1 < r->len && isxdigit((unsigned char)r->s[i + 1])) {
            continue;
        }
        if (c == '.' && base == 10 && !dot && n > 0 && i + 1 < r->len &&
            isdigit((unsigned char)r->s[i + 1])) {
            dot = true;
        } else if (!(base == 16 ? isxdigit((unsigned char)c) : c >= '0' && c < '0' + (base < 10 ? base : 10))) {
            break;
        }
        digits[n++] = c;
    }
    digits[n] = '\0';
    if (n == 0 || (i < r->len && (isalnum((unsigned char)r->s[i]) || r->s[i] == '.'))) {
        return rb_fail(r, "a number literal Ruby would read differently (exponent, or too long)");
    }
    r->pos = i;
    v->num = true;
    if (dot) {
        char *e = digits + n;
        if (n > 16) {
            return rb_fail(r, "a float literal of more than 15 digits");
        }
        while (e[-1] == '0' && e[-2] != '.') {
            *--e = '\0';
        }
        {
            /* Ruby prints 0.00001 as 1.0e-05 (four zeros or more after the point) */
            const char *f = strchr(digits, '.');
            if (strncmp(digits, "0.", 2) == 0 && strspn(f + 1, "0") >= 4 && f[1 + strspn(f + 1, "0")]) {
                return rb_fail(r, "a float literal Ruby prints with an exponent");
            }
        }
        v->s = ls_asprintf("%s%s", neg ? "-" : "", digits);
    } else {
        unsigned long long x;
        errno = 0;
        x = strtoull(digits, NULL, base);
        if (errno == ERANGE || x > (unsigned long long)LLONG_MAX) {
            return rb_fail(r, "an integer literal beyond 64 bits");
        }
        v->s = ls_asprintf("%s%llu", neg && x ? "-" : "", x);
    }
    return LS_OK;
}

static int rb_term(struct rb *r, struct rv *v)
{
    v->s = NULL;
    v->special = RB_NONE;
    v->fls = false;
    v->num = false;
    rb_ws(r);
    if (r->pos < r->len && (isdigit((unsigned char)r->s[r->pos]) ||
                            (r->s[r->pos] == '-' && r->pos + 1 < r->len &&
                             isdigit((unsigned char)r->s[r->pos + 1])))) {
        return rb_number(r, v);
    }
    if (r->pos < r->len && (r->s[r->pos] == '\'' || r->s[r->pos] == '"')) {
        return rb_string(r, &v->s);
    }
    if (rb_lit(r, "(")) {
        if (rb_ternary(r, v) != LS_OK) {
            return LS_ERROR;
        }
        if (!rb_lit(r, ")")) {
            ls_free(v->s);
            v->s = NULL;
            return rb_fail(r, "expected ')'");
        }
        return LS_OK;
    }
    if (rb_lit(r, "ENV")) {
        char *name = NULL;
        char *def = NULL;
        bool fetch = false;
        const char *e;

        if (rb_lit(r, "[")) {
            if (rb_string(r, &name) != LS_OK) {
                return LS_ERROR;
            }
            if (!rb_lit(r, "]")) {
                ls_free(name);
                return rb_fail(r, "expected ']' after ENV[...");
            }
        } else if (rb_lit(r, ".fetch") || (rb_lit(r, ".") && rb_lit(r, "fetch"))) {
            fetch = true;
            if (!rb_lit(r, "(") || rb_string(r, &name) != LS_OK) {
                return rb_fail(r, "expected ENV.fetch('NAME', 'default')");
            }
            if (rb_lit(r, ",")) {
                if (rb_string(r, &def) != LS_OK) {
                    ls_free(name);
                    return LS_ERROR;
                }
            }
            if (!rb_lit(r, ")")) {
                ls_free(name);
                ls_free(def);
                return rb_fail(r, "expected ')' after ENV.fetch(...");
            }
        } else {
            return rb_fail(r, "expected ENV[\"NAME\"] or ENV.fetch(\"NAME\", \"default\")");
        }
        e = getenv(name);
        if (e) {
            v->s = ls_strdup(e);
            ls_free(def);
        } else if (fetch) {
            if (def == NULL) {
                snprintf(r->msg, r->msglen,
                         "environment variable %s is not set (ENV.fetch without a default)", name);
                r->failed = true;
                ls_free(name);
                return LS_ERROR;
            }
            v->s = def;
        }
        ls_free(name);
        return LS_OK;
    }
    if (rb_lit(r, "Socket")) {
        if (!rb_lit(r, ".") || !rb_lit(r, "gethostname")) {
            return rb_fail(r, "only Socket.gethostname is supported");
        }
        rb_lit(r, "()");
        v->s = rb_hostname();
        return LS_OK;
    }
    if (rb_lit(r, "hostname")) {
        v->s = rb_hostname();
        return LS_OK;
    }
    if (rb_lit(r, "File")) {
        if (!rb_lit(r, ".") || !rb_lit(r, "join")) {
            return rb_fail(r, "only File.join is supported");
        }
        return rb_file_join(r, v);
    }
    if (rb_lit(r, "Dir")) {
        char cwd[PATH_MAX];
        if (!rb_lit(r, ".") || !rb_lit(r, "pwd")) {
            return rb_fail(r, "only Dir.pwd is supported");
        }
        rb_lit(r, "()");
        v->s = ls_strdup(getcwd(cwd, sizeof(cwd)) ? cwd : "");
        return LS_OK;
    }
    if (rb_lit(r, "true")) {
        v->s = ls_strdup("true");
        return LS_OK;
    }
    if (rb_lit(r, "false")) {
        v->s = ls_strdup("false");
        v->fls = true;
        return LS_OK;
    }
    if (rb_lit(r, "nil")) {
        return LS_OK;
    }
    if (rb_lit(r, "worker_id")) {
        const char *w = getenv("SERVERENGINE_WORKER_ID");
        v->s = ls_strdup(w ? w : "");
        return LS_OK;
    }
    if (rb_lit(r, "use_nil")) {
        v->special = RB_USE_NIL;
        return LS_OK;
    }
    if (rb_lit(r, "use_default")) {
        v->special = RB_USE_DEFAULT;
        return LS_OK;
    }
    return rb_fail(r, "unknown expression");
}

/* term ('+' term)* : nil + string is an error in Ruby too. */
static int rb_concat(struct rb *r, struct rv *v)
{
    if (rb_term(r, v) != LS_OK) {
        return LS_ERROR;
    }
    while (rb_lit(r, "+")) {
        struct rv w;
        char *j;
        if (rb_term(r, &w) != LS_OK) {
            ls_free(v->s);
            v->s = NULL;
            return LS_ERROR;
        }
        if (v->s == NULL || w.s == NULL || v->fls || w.fls) {
            ls_free(v->s);
            ls_free(w.s);
            v->s = NULL;
            return rb_fail(r, "'+' with a nil or false value (an unset ENV variable?)");
        }
        if (v->num || w.num) {
            ls_free(v->s);
            ls_free(w.s);
            v->s = NULL;
            return rb_fail(r, "'+' with a number (Ruby adds numbers, and refuses a string plus "
                              "a number)");
        }
        j = ls_asprintf("%s%s", v->s, w.s);
        ls_free(v->s);
        ls_free(w.s);
        v->s = j;
    }
    return LS_OK;
}

/* concat ('||' concat)* : the first non-nil value (Ruby's "" is truthy). */
static int rb_expr(struct rb *r, struct rv *v)
{
    if (rb_concat(r, v) != LS_OK) {
        return LS_ERROR;
    }
    while (rb_lit(r, "||")) {
        struct rv w;
        if (rb_concat(r, &w) != LS_OK) {
            ls_free(v->s);
            v->s = NULL;
            return LS_ERROR;
        }
        if ((v->s == NULL || v->fls) && v->special == RB_NONE) {
            ls_free(v->s);
            *v = w;
        } else {
            ls_free(w.s);
        }
    }
    return LS_OK;
}

/*
 * or ('?' ternary ':' ternary)? : Ruby's conditional, as real files write it
 * ("#{ENV['A'] ? ENV['A'] : 'x'}"): nil is false, any string (even "") is true.
 */
static int rb_ternary(struct rb *r, struct rv *v)
{
    struct rv a, b;
    bool truthy;

    if (rb_expr(r, v) != LS_OK) {
        return LS_ERROR;
    }
    if (!rb_lit(r, "?")) {
        return LS_OK;
    }
    truthy = v->s != NULL && !v->fls;
    ls_free(v->s);
    v->s = NULL;
    if (v->special != RB_NONE) {
        return rb_fail(r, "use_nil/use_default as a condition");
    }
    if (rb_ternary(r, &a) != LS_OK) {
        return LS_ERROR;
    }
    if (!rb_lit(r, ":")) {
        ls_free(a.s);
        return rb_fail(r, "':' expected in 'cond ? a : b'");
    }
    if (rb_ternary(r, &b) != LS_OK) {
        ls_free(a.s);
        return LS_ERROR;
    }
    if (truthy) {
        ls_free(b.s);
        *v = a;
    } else {
        ls_free(a.s);
        *v = b;
    }
    return LS_OK;
}

/* Evaluate code[0..len) and append the result to out. *special gets RB_USE_*. */
static int rb_eval(const char *code, size_t len, struct ls_buf *out, int *special, char *msg,
                   size_t msglen)
{
    struct rb r = { code, len, 0, msg, msglen, false };
    struct rv v;

    if (rb_ternary(&r, &v) != LS_OK) {
        return LS_ERROR;
    }
    rb_ws(&r);
    if (r.pos != r.len) {
        ls_free(v.s);
        return rb_fail(&r, "unexpected text after the expression");
    }
    if (v.special != RB_NONE) {
        *special = v.special;
    }
    if (v.s) {
        if (ls_buf_append(out, v.s, strlen(v.s)) != LS_OK) {
            ls_free(v.s);
            snprintf(msg, msglen, "value too long");
            return LS_ERROR;
        }
        ls_free(v.s);
    }
    return LS_OK;
}

/*
 * s[start] is just after "#{": find the matching '}' (skipping quoted
 * strings inside the code). Returns its index, or (size_t)-1.
 */
static size_t code_end(const char *s, size_t len, size_t start)
{
    int depth = 1;
    size_t i = start;

    while (i < len) {
        char c = s[i];
        if (c == '\'' || c == '"') {
            i++;
            while (i < len && s[i] != c) {
                if (s[i] == '\\') {
                    i++;
                }
                i++;
            }
            if (i >= len) {
                return (size_t)-1;
            }
        } else if (c == '{') {
            depth++;
        } else if (c == '}') {
            if (--depth == 0) {
                return i;
            }
        }
        i++;
    }
    return (size_t)-1;
}

char *ls_conf_interpolate(const char *s, char *err, size_t errlen)
{
    struct ls_buf b;
    size_t len = strlen(s);
    size_t i = 0;

    ls_buf_init(&b, CONF_VALUE_MAX);
    while (i < len) {
        if (s[i] == '#' && i + 1 < len && s[i + 1] == '{') {
            size_t e = code_end(s, len, i + 2);
            int special = RB_NONE;
            if (e == (size_t)-1) {
                snprintf(err, errlen, "unterminated #{ in '%.40s' (expected '}')", s);
                ls_buf_release(&b);
                return NULL;
            }
            if (rb_eval(s + i + 2, e - i - 2, &b, &special, err, errlen) != LS_OK) {
                ls_buf_release(&b);
                return NULL;
            }
            i = e + 1;
            continue;
        }
        if (ls_buf_putc(&b, s[i]) != LS_OK) {
            snprintf(err, errlen, "value too long");
            ls_buf_release(&b);
            return NULL;
        }
        i++;
    }
    ls_buf_cstr(&b);
    return b.p ? ls_buf_detach(&b, NULL) : ls_strdup("");
}

/*
 * At p->pos is "#{": evaluate up to the matching '}' and append to out,
 * JSON-escaping the result when json is true.
 */
static int interp_here(struct cp *p, struct ls_buf *out, int *special, bool json)
{
    size_t e = code_end(p->s, p->len, p->pos + 2);
    int line = p->line;
    char msg[512];
    struct ls_buf tmp;

    if (e == (size_t)-1) {
        return perr(p, line, "unterminated #{ embedded Ruby (expected '}')");
    }
    ls_buf_init(&tmp, CONF_VALUE_MAX);
    if (rb_eval(p->s + p->pos + 2, e - p->pos - 2, &tmp, special, msg, sizeof(msg)) != LS_OK) {
        ls_buf_release(&tmp);
        return perr(p, line, "%s", msg);
    }
    while (p->pos <= e) {
        adv(p);
    }
    if (!json) {
        int rc = ls_buf_append(out, tmp.p, tmp.len);
        ls_buf_release(&tmp);
        return rc == LS_OK ? LS_OK : perr(p, line, "value too long (max %d bytes)", CONF_VALUE_MAX);
    }
    for (size_t i = 0; i < tmp.len; i++) {
        unsigned char c = (unsigned char)tmp.p[i];
        int rc;
        if (c == '"' || c == '\\') {
            ls_buf_putc(out, '\\');
            rc = ls_buf_putc(out, (char)c);
        } else if (c < 0x20) {
            rc = ls_buf_printf(out, "\\u%04x", c);
        } else {
            rc = ls_buf_putc(out, (char)c);
        }
        if (rc != LS_OK) {
            ls_buf_release(&tmp);
            return perr(p, line, "value too long (max %d bytes)", CONF_VALUE_MAX);
        }
    }
    ls_buf_release(&tmp);
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* literals                                                             */

static int put(struct cp *p, struct ls_buf *b, char c)
{
    if (ls_buf_putc(b, c) != LS_OK) {
        return perr(p, p->line, "value too long (max %d bytes)", CONF_VALUE_MAX);
    }
    return LS_OK;
}

static char *take(struct ls_buf *b)
{
    ls_buf_cstr(b);
    return b->p ? ls_buf_detach(b, NULL) : ls_strdup("");
}

/*
 * "..." with fluentd's escapes. Newlines are kept (multi-line values);
 * a backslash before a newline joins the lines. #{} is evaluated.
 */
static char *parse_dq(struct cp *p, int *special)
{
    struct ls_buf b;
    int start = p->line;

    ls_buf_init(&b, CONF_VALUE_MAX);
    adv(p);
    for (;;) {
        int c = peek(p, 0);
        if (c < 0) {
            perr(p, p->line, "unterminated double-quoted string started at line %d (expected '\"')",
                 start);
            goto fail;
        }
        if (c == '"') {
            adv(p);
            return take(&b);
        }
        if (c == '\\') {
            int n = peek(p, 1);
            char o;
            if (n < 0) {
                adv(p);     /* EOF after the backslash: unterminated, next round */
                continue;
            }
            if (n == '\n' || (n == '\r' && peek(p, 2) == '\n')) {
                adv(p);
                if (n == '\r') {
                    adv(p);
                }
                adv(p);
                continue;
            }
            switch (n) {
            case 'r': o = '\r'; break;
            case 'n': o = '\n'; break;
            case 't': o = '\t'; break;
            case 'f': o = '\f'; break;
            case 'b': o = '\b'; break;
            case '0':
                /* values are C strings: a NUL would cut the value short without a word */
                perr(p, p->line, "\\0 (a NUL byte) cannot be part of a configuration value");
                goto fail;
            default:
                if (isalnum(n)) {
                    perr(p, p->line,
                         "invalid escape \\%c in double-quoted string (valid: \\\" \\' \\\\ \\r \\n \\t "
                         "\\f \\b \\0, or a backslash before punctuation)", n);
                    goto fail;
                }
                o = (char)n;
                break;
            }
            adv(p);
            adv(p);
            if (put(p, &b, o) != LS_OK) {
                goto fail;
            }
            continue;
        }
        if (c == '#' && peek(p, 1) == '{') {
            if (interp_here(p, &b, special, false) != LS_OK) {
                goto fail;
            }
            continue;
        }
        if (c == '\r' && peek(p, 1) == '\n') {
            adv(p);     /* CRLF files: a multi-line value gets plain newlines */
            continue;
        }
        adv(p);
        if (put(p, &b, (char)c) != LS_OK) {
            goto fail;
        }
    }
fail:
    ls_buf_release(&b);
    return NULL;
}

/* '...': only \' and \\ are escapes; no interpolation; cannot span lines. */
static char *parse_sq(struct cp *p)
{
    struct ls_buf b;
    int start = p->line;

    ls_buf_init(&b, CONF_VALUE_MAX);
    adv(p);
    for (;;) {
        int c = peek(p, 0);
        if (c < 0 || c == '\n' || c == '\r') {
            perr(p, start, "unterminated single-quoted string (expected a closing ' on the same line; "
                           "use double quotes for multi-line values)");
            ls_buf_release(&b);
            return NULL;
        }
        adv(p);
        if (c == '\'') {
            return take(&b);
        }
        if (c == '\\' && (peek(p, 0) == '\'' || peek(p, 0) == '\\')) {
            c = peek(p, 0);
            adv(p);
        }
        if (put(p, &b, (char)c) != LS_OK) {
            ls_buf_release(&b);
            return NULL;
        }
    }
}

/*
 * Unquoted: up to the end of the line, or up to blanks followed by '#'
 * (a '#' not preceded by a blank is part of the value: "foo#bar").
 * Trailing blanks are dropped.
 *
 * Deviation from fluentd: "#{...}" is interpolated here too (fluentd keeps
 * it literal in unquoted values). Users write `path /var/log/#{ENV["X"]}`
 * and expect it to work; our issue tracker asked for it.
 */
static char *parse_bare(struct cp *p, int *special)
{
    size_t start = p->pos;
    size_t end;
    char *raw;
    char *val;
    char msg[512];

    while (!eof(p)) {
        int c = peek(p, 0);
        if (c == '\n' || c == '\r') {
            break;
        }
        if (c == ' ' || c == '\t') {
            size_t k = 0;
            int d;
            while ((d = peek(p, k)) == ' ' || d == '\t') {
                k++;
            }
            if (d < 0 || d == '#' || d == '\n' || d == '\r') {
                break;
            }
        }
        adv(p);
    }
    end = p->pos;
    if (end - start > CONF_VALUE_MAX) {
        perr(p, p->line, "value too long (max %d bytes)", CONF_VALUE_MAX);
        return NULL;
    }
    raw = ls_strndup(p->s + start, end - start);
    if (strstr(raw, "#{") == NULL) {
        return raw;
    }
    /* a lone unterminated "#{" is left literal, as fluentd would */
    if (code_end(raw, strlen(raw), (size_t)(strstr(raw, "#{") - raw) + 2) == (size_t)-1) {
        return raw;
    }
    {
        struct ls_buf b;
        size_t i = 0, n = strlen(raw);
        ls_buf_init(&b, CONF_VALUE_MAX);
        while (i < n) {
            if (raw[i] == '$' && i + 1 < n && raw[i + 1] == '{') {
                /* a record placeholder (record_transformer's enable_ruby Ruby): its "#{}" is
                 * the plugin's to evaluate per record, so it is kept as written */
                size_t e = code_end(raw, n, i + 2);
                if (e != (size_t)-1) {
                    ls_buf_append(&b, raw + i, e + 1 - i);
                    i = e + 1;
                    continue;
                }
            }
            if (raw[i] == '#' && i + 1 < n && raw[i + 1] == '{') {
                size_t e = code_end(raw, n, i + 2);
                if (e == (size_t)-1) {
                    ls_buf_append(&b, raw + i, n - i);
                    break;
                }
                if (rb_eval(raw + i + 2, e - i - 2, &b, special, msg, sizeof(msg)) != LS_OK) {
                    perr(p, p->line, "%s", msg);
                    ls_buf_release(&b);
                    ls_free(raw);
                    return NULL;
                }
                i = e + 1;
                continue;
            }
            ls_buf_putc(&b, raw[i]);
            i++;
        }
        val = take(&b);
    }
    ls_free(raw);
    return val;
}

/* JSON: whitespace, newlines and '#' comments between tokens. */
static void json_ws(struct cp *p)
{
    skip_spacing(p);
}

static int json_value(struct cp *p, struct ls_buf *out, int depth, const char *kind, int start);

static int json_incomplete(struct cp *p, const char *kind, int start)
{
    return perr(p, start, "incomplete JSON %s (reached end of file at line %d; expected a closing %s)",
                kind, p->line, kind[0] == 'a' ? "']'" : "'}'");
}

static int json_bad(struct cp *p, const char *kind, int start, const char *expected)
{
    int c = peek(p, 0);

    if (c < 0) {
        return json_incomplete(p, kind, start);
    }
    return perr(p, p->line,
                "invalid JSON %s (started at line %d): unexpected '%c', expected %s (a value starting "
                "with '[' or '{' must be JSON; quote it if it is a plain string)",
                kind, start, isprint(c) ? c : '?', expected);
}

static int json_string(struct cp *p, struct ls_buf *out, const char *kind, int start)
{
    int special = RB_NONE;

    adv(p);
    if (put(p, out, '"') != LS_OK) {
        return LS_ERROR;
    }
    for (;;) {
        int c = peek(p, 0);
        if (c < 0) {
            return json_incomplete(p, kind, start);
        }
        if (c < 0x20) {
            return perr(p, p->line, "invalid JSON %s (started at line %d): a line break or control "
                                    "character inside a JSON string (use \\n)", kind, start);
        }
        if (c == '"') {
            adv(p);
            return put(p, out, '"');
        }
        if (c == '#' && peek(p, 1) == '{') {
            if (interp_here(p, out, &special, true) != LS_OK) {
                return LS_ERROR;
            }
            if (special != RB_NONE) {
                return perr(p, p->line, "use_nil/use_default cannot be used inside a JSON value");
            }
            continue;
        }
        if (c == '\\') {
            int n = peek(p, 1);
            if (n < 0) {
                return json_incomplete(p, kind, start);
            }
            if (!strchr("\"\\/bfnrtu", n)) {
                return perr(p, p->line, "invalid JSON %s (started at line %d): invalid escape \\%c in "
                                        "JSON string", kind, start, isprint(n) ? n : '?');
            }
            if (n == 'u') {
                for (size_t k = 2; k < 6; k++) {
                    if (!isxdigit(peek(p, k))) {
                        return perr(p, p->line, "invalid JSON %s (started at line %d): \\u needs "
                                                "4 hex digits", kind, start);
                    }
                }
            }
            if (put(p, out, '\\') != LS_OK) {
                return LS_ERROR;
            }
            adv(p);
            c = n;
        }
        adv(p);
        if (put(p, out, (char)c) != LS_OK) {
            return LS_ERROR;
        }
    }
}

static int json_number(struct cp *p, struct ls_buf *out, const char *kind, int start)
{
    size_t s0 = p->pos;

    if (peek(p, 0) == '-') {
        adv(p);
    }
    if (peek(p, 0) == '0') {
        adv(p);
    } else if (peek(p, 0) >= '1' && peek(p, 0) <= '9') {
        while (peek(p, 0) >= '0' && peek(p, 0) <= '9') {
            adv(p);
        }
    } else {
        return json_bad(p, kind, start, "a JSON value");
    }
    if (peek(p, 0) == '.') {
        adv(p);
        if (!(peek(p, 0) >= '0' && peek(p, 0) <= '9')) {
            return json_bad(p, kind, start, "digits after '.'");
        }
        while (peek(p, 0) >= '0' && peek(p, 0) <= '9') {
            adv(p);
        }
    }
    if (peek(p, 0) == 'e' || peek(p, 0) == 'E') {
        adv(p);
        if (peek(p, 0) == '+' || peek(p, 0) == '-') {
            adv(p);
        }
        if (!(peek(p, 0) >= '0' && peek(p, 0) <= '9')) {
            return json_bad(p, kind, start, "digits in the exponent");
        }
        while (peek(p, 0) >= '0' && peek(p, 0) <= '9') {
            adv(p);
        }
    }
    if (ls_buf_append(out, p->s + s0, p->pos - s0) != LS_OK) {
        return perr(p, p->line, "value too long (max %d bytes)", CONF_VALUE_MAX);
    }
    return LS_OK;
}

static int json_container(struct cp *p, struct ls_buf *out, int depth, const char *kind, int start)
{
    char close = peek(p, 0) == '[' ? ']' : '}';
    bool obj = close == '}';

    if (depth > CONF_JSON_DEPTH) {
        return perr(p, p->line, "JSON value nested too deeply (max %d levels)", CONF_JSON_DEPTH);
    }
    if (put(p, out, (char)peek(p, 0)) != LS_OK) {
        return LS_ERROR;
    }
    adv(p);
    json_ws(p);
    if (peek(p, 0) == close) {
        adv(p);
        return put(p, out, close);
    }
    for (;;) {
        json_ws(p);
        if (obj) {
            if (peek(p, 0) != '"') {
                return json_bad(p, kind, start, "a \"key\" string");
            }
            if (json_string(p, out, kind, start) != LS_OK) {
                return LS_ERROR;
            }
            json_ws(p);
            if (peek(p, 0) != ':') {
                return json_bad(p, kind, start, "':' after the key");
            }
            adv(p);
            if (put(p, out, ':') != LS_OK) {
                return LS_ERROR;
            }
        }
        if (json_value(p, out, depth + 1, kind, start) != LS_OK) {
            return LS_ERROR;
        }
        json_ws(p);
        if (peek(p, 0) == ',') {
            adv(p);
            if (put(p, out, ',') != LS_OK) {
                return LS_ERROR;
            }
            continue;
        }
        if (peek(p, 0) == close) {
            adv(p);
            return put(p, out, close);
        }
        return json_bad(p, kind, start, obj ? "',' or '}'" : "',' or ']'");
    }
}

static int json_value(struct cp *p, struct ls_buf *out, int depth, const char *kind, int start)
{
    static const char *const words[] = { "true", "false", "null", NULL };
    int c;

    json_ws(p);
    c = peek(p, 0);
    if (c < 0) {
        return json_incomplete(p, kind, start);
    }
    if (c == '[' || c == '{') {
        return json_container(p, out, depth, kind, start);
    }
    if (c == '"') {
        return json_string(p, out, kind, start);
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        return json_number(p, out, kind, start);
    }
    for (const char *const *w = words; *w; w++) {
        size_t n = strlen(*w);
        if (p->len - p->pos >= n && memcmp(p->s + p->pos, *w, n) == 0) {
            for (size_t i = 0; i < n; i++) {
                adv(p);
            }
            if (ls_buf_append(out, *w, n) != LS_OK) {
                return perr(p, p->line, "value too long (max %d bytes)", CONF_VALUE_MAX);
            }
            return LS_OK;
        }
    }
    return json_bad(p, kind, start, "a JSON value");
}

static char *parse_json(struct cp *p)
{
    struct ls_buf b;
    const char *kind = peek(p, 0) == '[' ? "array" : "hash";

    ls_buf_init(&b, CONF_VALUE_MAX);
    if (json_container(p, &b, 1, kind, p->line) != LS_OK) {
        ls_buf_release(&b);
        return NULL;
    }
    return take(&b);
}

/* A value after "key ": one of the four forms; *special gets use_nil/use_default. */
static char *parse_literal(struct cp *p, int *special, bool *quoted)
{
    int c = peek(p, 0);

    *quoted = false;
    if (c == '[' || c == '{') {
        *quoted = true;
        return parse_json(p);
    }
    if (c == '"') {
        *quoted = true;
        return parse_dq(p, special);
    }
    if (c == '\'') {
        *quoted = true;
        return parse_sq(p);
    }
    return parse_bare(p, special);
}

/* ------------------------------------------------------------------ */
/* tree building                                                        */

static struct ls_conf_section *section_new(const char *name, const char *arg, const char *file,
                                           int line)
{
    struct ls_conf_section *s = ls_calloc(1, sizeof(*s));

    s->name = ls_strdup(name);
    s->arg = ls_strdup(arg ? arg : "");
    s->file = file;
    s->line = line;
    return s;
}

static void section_append_child(struct ls_conf_section *sec, struct ls_conf_section *c)
{
    struct ls_conf_section **pp = &sec->children;

    while (*pp) {
        pp = &(*pp)->next;
    }
    c->parent = sec;
    *pp = c;
}

static struct ls_conf_param *param_append(struct ls_conf_section *sec, char *key, char *value,
                                          const char *file, int line)
{
    struct ls_conf_param *cp = ls_calloc(1, sizeof(*cp));
    struct ls_conf_param **pp = &sec->params;

    cp->key = key;
    cp->value = value;
    cp->file = file;
    cp->line = line;
    while (*pp) {
        pp = &(*pp)->next;
    }
    *pp = cp;
    return cp;
}

static void section_free(struct ls_conf_section *s)
{
    while (s) {
        struct ls_conf_section *next = s->next;
        struct ls_conf_param *cp = s->params;
        while (cp) {
            struct ls_conf_param *n = cp->next;
            ls_free(cp->key);
            ls_free(cp->value);
            ls_free(cp);
            cp = n;
        }
        section_free(s->children);
        ls_free(s->name);
        ls_free(s->arg);
        ls_free(s);
        s = next;
    }
}

/* ------------------------------------------------------------------ */
/* @include                                                             */

static int parse_body(struct cp *p, struct ls_conf_section *sec, bool root, int depth);

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int parse_text(struct ls_conf *conf, const char *file, const char *real, const char *text,
                      size_t len, struct ls_conf_section *into, const struct incl *up, int incdepth,
                      char *err, size_t errlen)
{
    struct incl me = { real, NULL, up };
    struct cp p;

    memset(&p, 0, sizeof(p));
    p.conf = conf;
    p.file = intern(conf, file);
    me.file = p.file;
    p.s = text;
    p.len = len;
    p.line = 1;
    p.err = err;
    p.errlen = errlen;
    p.inc = &me;
    p.incdepth = incdepth;
    /* a UTF-8 byte order mark (Windows editors add one) is not content */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        p.pos = 3;
    }
    {
        /* values are C strings: a NUL byte would cut one short without a word */
        const char *nul = memchr(text, '\0', len);
        if (nul) {
            int line = 1;
            for (const char *q = text; q < nul; q++) {
                line += *q == '\n';
            }
            return perr(&p, line, "a NUL byte in the configuration (not a text file, or a "
                        "value with a NUL in it): refused");
        }
    }
    return parse_body(&p, into, true, 0);
}

static int include_file(struct cp *p, struct ls_conf_section *sec, const char *path, int line)
{
    char real[PATH_MAX];
    char *text;
    size_t len;
    int rc;

    if (realpath(path, real) == NULL) {
        return perr(p, line, "include error: cannot resolve '%s': %s", path, strerror(errno));
    }
    for (const struct incl *i = p->inc; i; i = i->up) {
        if (strcmp(i->real, real) == 0) {
            if (i == p->inc) {
                return perr(p, line, "include loop: %s includes itself", base_name(p->file));
            }
            return perr(p, line, "include loop: %s includes %s, which is already being read",
                        base_name(p->file), path);
        }
    }
    if (p->incdepth + 1 > CONF_INCLUDE_MAX) {
        return perr(p, line, "includes nested too deeply (max %d levels)", CONF_INCLUDE_MAX);
    }
    if (ls_read_file(path, CONF_FILE_MAX + 1, &text, &len) != LS_OK) {
        return perr(p, line, "include error: cannot read '%s': %s", path, strerror(errno));
    }
    if (len > CONF_FILE_MAX) {
        ls_free(text);
        return perr(p, line, "include error: '%s' is larger than %d bytes", path, CONF_FILE_MAX);
    }
    rc = parse_text(p->conf, path, real, text, len, sec, p->inc, p->incdepth + 1, p->err, p->errlen);
    ls_free(text);
    return rc;
}

static int do_include(struct cp *p, struct ls_conf_section *sec, const char *spec, int line)
{
    char *path;
    glob_t g;
    int grc;
    int rc = LS_OK;
    const char *s = spec;

    while (*s == ' ' || *s == '\t') {
        s++;
    }
    if (*s == '\0') {
        return perr(p, line, "@include needs a path or glob (e.g. @include conf.d/*.conf)");
    }
    if (strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0 ||
        strncasecmp(s, "ftp://", 6) == 0) {
        return perr(p, line, "@include %s: remote includes are not supported (download the file and "
                             "@include its local path)", s);
    }
    if (strncmp(s, "file://", 7) == 0) {
        s += 7;
    } else if (strncmp(s, "file:", 5) == 0) {
        s += 5;
    }
    if (s[0] == '/') {
        path = ls_strdup(s);
    } else {
        const char *slash = strrchr(p->file, '/');
        if (slash) {
            path = ls_asprintf("%.*s/%s", (int)(slash - p->file), p->file, s);
        } else {
            path = ls_strdup(s);
        }
    }
    /* fluentd: Dir.glob(path).sort; no match (even for a plain path) is not an error */
    grc = glob(path, GLOB_BRACE | GLOB_NOSORT, NULL, &g);
    if (grc == GLOB_NOMATCH) {
        if (strpbrk(s, "*?[{") == NULL) {
            ls_warn("%s:%d: @include '%s': no such file (ignored, as fluentd does)", p->file, line,
                    path);
        }
        ls_free(path);
        return LS_OK;
    }
    if (grc != 0) {
        ls_free(path);
        return perr(p, line, "include error: cannot expand '%s'", s);
    }
    qsort(g.gl_pathv, g.gl_pathc, sizeof(char *), cmp_str);
    for (size_t i = 0; i < g.gl_pathc && rc == LS_OK; i++) {
        const char *b = base_name(g.gl_pathv[i]);
        /* like fluentd: a glob that picks up an editor/backup copy is probably a mistake */
        if (strpbrk(s, "*?[{") && (strstr(b, ".bak") || strstr(b, "_old") || strstr(b, ".orig") ||
                                   (*b && b[strlen(b) - 1] == '~'))) {
            ls_warn("%s:%d: @include %s also matched '%s', which looks like a backup copy", p->file,
                    line, s, g.gl_pathv[i]);
        }
        rc = include_file(p, sec, g.gl_pathv[i], line);
    }
    globfree(&g);
    ls_free(path);
    return rc;
}

/* ------------------------------------------------------------------ */
/* element bodies                                                       */

static const char *const reserved_keys[] = { "@type", "@id", "@label", "@log_level", NULL };
static const char *const strict_sections[] = { "source", "match", "filter", "system", NULL };

static int parse_element_open(struct cp *p, struct ls_conf_section *sec, int depth)
{
    int line = p->line;
    size_t n0;
    char *name;
    char *arg = NULL;
    struct ls_conf_section *child;
    int special = RB_NONE;
    char what[160];

    adv(p);                                    /* '<' */
    n0 = p->pos;
    while (is_name_char(peek(p, 0))) {
        adv(p);
    }
    if (p->pos == n0) {
        return perr(p, line, "invalid element: expected a name after '<' (like <source> or <match a.**>)");
    }
    name = ls_strndup(p->s + n0, p->pos - n0);
    if (depth + 1 > CONF_NEST_MAX) {
        perr(p, line, "sections nested too deeply (max %d levels)", CONF_NEST_MAX);
        ls_free(name);
        return LS_ERROR;
    }
    skip_blanks(p);
    if (peek(p, 0) == '"') {
        arg = parse_dq(p, &special);
    } else if (peek(p, 0) == '\'') {
        arg = parse_sq(p);
    } else {
        size_t a0 = p->pos, a1;
        while (!eof(p) && peek(p, 0) != '>' && peek(p, 0) != '\n') {
            adv(p);
        }
        a1 = p->pos;
        while (a1 > a0 && isspace((unsigned char)p->s[a1 - 1])) {
            a1--;
        }
        arg = ls_strndup(p->s + a0, a1 - a0);
    }
    if (arg == NULL) {
        ls_free(name);
        return LS_ERROR;
    }
    skip_blanks(p);
    if (peek(p, 0) != '>') {
        perr(p, line, "expected '>' to close <%s%s%s", name, *arg ? " " : "", arg);
        ls_free(name);
        ls_free(arg);
        return LS_ERROR;
    }
    adv(p);
    snprintf(what, sizeof(what), "<%s%s%.60s>", name, *arg ? " " : "", arg);
    if (expect_line_end(p, what) != LS_OK) {
        ls_free(name);
        ls_free(arg);
        return LS_ERROR;
    }
    child = section_new(name, arg, p->file, line);
    ls_free(name);
    ls_free(arg);
    section_append_child(sec, child);
    if (parse_body(p, child, false, depth + 1) != LS_OK) {
        return LS_ERROR;
    }
    return LS_OK;
}

/* "</name>" at p->pos: check it closes sec. */
static int parse_element_close(struct cp *p, struct ls_conf_section *sec, bool root)
{
    int line = p->line;
    size_t n0;
    char name[64];
    size_t n;

    adv(p);
    adv(p);
    n0 = p->pos;
    while (is_name_char(peek(p, 0))) {
        adv(p);
    }
    n = p->pos - n0;
    snprintf(name, sizeof(name), "%.*s", (int)(n < 60 ? n : 60), p->s + n0);
    skip_blanks(p);
    if (peek(p, 0) != '>') {
        return perr(p, line, "expected '>' to close the end tag </%s", name);
    }
    adv(p);
    if (root) {
        return perr(p, line, "unmatched end tag </%s> (no element is open here)", name);
    }
    if (strcmp(name, sec->name) != 0) {
        return perr(p, line, "unmatched end tag </%s> (expected </%s> to close the element opened at "
                             "line %d)", name, sec->name, sec->line);
    }
    {
        char what[80];
        snprintf(what, sizeof(what), "</%s>", name);
        return expect_line_end(p, what);
    }
}

static int parse_param(struct cp *p, struct ls_conf_section *sec, bool root)
{
    int line = p->line;
    size_t k0 = p->pos;
    char *key;
    char *value;
    int special = RB_NONE;
    bool quoted = false;
    bool include;

    /* fluentd: the key is any run of non-SPACING characters ([ \t\r\n]) */
    while (!eof(p) && peek(p, 0) != ' ' && peek(p, 0) != '\t' && peek(p, 0) != '\r' &&
           peek(p, 0) != '\n') {
        adv(p);
    }
    key = ls_strndup(p->s + k0, p->pos - k0);
    include = strcmp(key, "@include") == 0 || (root && strcmp(key, "include") == 0);
    skip_blanks(p);
    if (eof(p) || peek(p, 0) == '\n' || peek(p, 0) == '\r') {
        if (include) {
            ls_free(key);
            return perr(p, line, "@include needs a path or glob (e.g. @include conf.d/*.conf)");
        }
        value = ls_strdup("");
    } else {
        value = parse_literal(p, &special, &quoted);
        if (value == NULL) {
            ls_free(key);
            return LS_ERROR;
        }
        if (expect_line_end(p, quoted ? "a quoted value" : "the value") != LS_OK) {
            ls_free(key);
            ls_free(value);
            return LS_ERROR;
        }
    }
    if (include) {
        int rc;
        if (strcmp(key, "include") == 0) {
            ls_warn("%s:%d: 'include' is deprecated, use '@include'", p->file, line);
        }
        rc = do_include(p, sec, value, line);
        ls_free(key);
        ls_free(value);
        return rc;
    }
    if (key[0] == '@' && !in_list(key, reserved_keys)) {
        if (root || in_list(sec->name, strict_sections)) {
            perr(p, line, "'%s': '@' is the system reserved prefix (valid: @type, @id, @label, "
                          "@log_level, @include); remove the '@'", key);
            ls_free(key);
            ls_free(value);
            return LS_ERROR;
        }
        ls_warn("%s:%d: '%s': '@' is the system reserved prefix; it is kept as a plain parameter",
                p->file, line, key);
    }
    /*
     * use_default: the parameter's default applies, which is what leaving it
     * out means. use_nil: a C struct cannot tell nil from "not set", so it
     * is also treated as absent (right for the nullable parameters it is
     * used with).
     */
    if (special != RB_NONE) {
        ls_free(key);
        ls_free(value);
        return LS_OK;
    }
    param_append(sec, key, value, p->file, line);
    return LS_OK;
}

/*
 * The loop of fluentd's parse_element. root is true for the top of a file
 * (the main file or an included one, which is parsed "as root" but merges
 * into sec).
 */
static int parse_body(struct cp *p, struct ls_conf_section *sec, bool root, int depth)
{
    for (;;) {
        skip_spacing(p);
        if (eof(p)) {
            if (root) {
                return LS_OK;
            }
            return perr(p, p->line, "unclosed <%s%s%s> started at line %d (expected </%s>)", sec->name,
                        *sec->arg ? " " : "", sec->arg, sec->line, sec->name);
        }
        if (peek(p, 0) == '<' && peek(p, 1) == '/') {
            return parse_element_close(p, sec, root);
        }
        if (peek(p, 0) == '<') {
            if (parse_element_open(p, sec, depth) != LS_OK) {
                return LS_ERROR;
            }
            continue;
        }
        if (parse_param(p, sec, root) != LS_OK) {
            return LS_ERROR;
        }
    }
}

/* ------------------------------------------------------------------ */
/* public API                                                           */

static struct ls_conf *conf_new(void)
{
    struct ls_conf *c = ls_calloc(1, sizeof(*c));

    c->root = section_new("ROOT", "", "", 0);
    return c;
}

struct ls_conf *ls_conf_load_string(const char *name, const char *text, size_t len, char *err,
                                    size_t errlen)
{
    struct ls_conf *c = conf_new();
    char real[PATH_MAX];
    const char *r = name;

    if (err && errlen) {
        err[0] = '\0';
    }
    if (name == NULL) {
        name = "(string)";
        r = name;
    }
    if (realpath(name, real) != NULL) {
        r = real;
    }
    c->root->file = intern(c, name);
    if (parse_text(c, name, r, text, len, c->root, NULL, 0, err, errlen) != LS_OK) {
        ls_conf_destroy(c);
        return NULL;
    }
    return c;
}

struct ls_conf *ls_conf_load_file(const char *path, char *err, size_t errlen)
{
    char *text;
    size_t len;
    struct ls_conf *c;

    if (ls_read_file(path, CONF_FILE_MAX + 1, &text, &len) != LS_OK) {
        snprintf(err, errlen, "%s: cannot read configuration file: %s", path, strerror(errno));
        return NULL;
    }
    if (len > CONF_FILE_MAX) {
        snprintf(err, errlen, "%s: configuration file is larger than %d bytes", path, CONF_FILE_MAX);
        ls_free(text);
        return NULL;
    }
    c = ls_conf_load_string(path, text, len, err, errlen);
    ls_free(text);
    return c;
}

void ls_conf_destroy(struct ls_conf *conf)
{
    if (conf == NULL) {
        return;
    }
    section_free(conf->root);
    for (size_t i = 0; i < conf->nfiles; i++) {
        ls_free(conf->files[i]);
    }
    ls_free(conf->files);
    ls_free(conf);
}

void ls_conf_param_error(struct ls_conf_section *sec, const char *key, char *err, size_t errlen,
                         const char *fmt, ...)
{
    struct ls_conf_param *p = ls_conf_get_param(sec, key);
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "%s:%d: %s", p ? p->file : sec->file, p ? p->line : sec->line, msg);
}

struct ls_conf_param *ls_conf_get_param(struct ls_conf_section *sec, const char *key)
{
    struct ls_conf_param *last = NULL;

    if (sec == NULL) {
        return NULL;
    }
    /* a shadowed earlier occurrence counts as read too: it is not "unused" */
    for (struct ls_conf_param *cp = sec->params; cp; cp = cp->next) {
        if (strcmp(cp->key, key) == 0) {
            cp->used = true;
            last = cp;
        }
    }
    return last;
}

const char *ls_conf_root_dir(struct ls_conf_section *sec)
{
    struct ls_conf_section *root = sec, *sys;

    while (root && root->parent) {
        root = root->parent;
    }
    sys = root ? ls_conf_child(root, "system") : NULL;
    return sys ? ls_conf_get(sys, "root_dir") : NULL;
}

const char *ls_conf_get(struct ls_conf_section *sec, const char *key)
{
    struct ls_conf_param *cp = ls_conf_get_param(sec, key);
    return cp ? cp->value : NULL;
}

const char *ls_conf_type(struct ls_conf_section *sec)
{
    struct ls_conf_param *t = ls_conf_get_param(sec, "@type");
    struct ls_conf_param *old = NULL;
    bool seen = false;

    /* find 'type' by hand: warn only the first time it is read, not on every lookup */
    for (struct ls_conf_param *cp = sec ? sec->params : NULL; cp; cp = cp->next) {
        if (strcmp(cp->key, "type") == 0) {
            seen = seen || cp->used;
            cp->used = true;
            old = cp;
        }
    }
    if (t) {
        return t->value;
    }
    if (old) {
        if (seen) {
            return old->value;
        }
        ls_warn("%s:%d: 'type' is deprecated parameter name. use '@type' instead", old->file,
                old->line);
        return old->value;
    }
    return NULL;
}

struct ls_conf_section *ls_conf_child(struct ls_conf_section *sec, const char *name)
{
    for (struct ls_conf_section *c = sec ? sec->children : NULL; c; c = c->next) {
        if (strcmp(c->name, name) == 0) {
            return c;
        }
    }
    return NULL;
}

struct ls_conf_param *ls_conf_set(struct ls_conf_section *sec, const char *key, const char *value,
                                  const char *file, int line)
{
    return param_append(sec, ls_strdup(key), ls_strdup(value ? value : ""), file ? file : sec->file,
                        line);
}

struct ls_conf_section *ls_conf_add_child(struct ls_conf_section *sec, const char *name,
                                          const char *arg)
{
    struct ls_conf_section *c = section_new(name, arg, sec->file, sec->line);

    section_append_child(sec, c);
    return c;
}

/* Keys the core itself consumes; never reported as unused. */
static const char *const core_keys[] = { "@type", "type", "@id", "id", "@label", "@log_level",
                                         "log_level", NULL };

/*
 * Section names of fluentd, its bundled plugins and logship. A section outside this list is
 * a misspelling or a plugin logship does not have: either way fluentd's own answer ("section
 * <bufer> is not used") is the least a user must see, since the section's settings are lost.
 */
static const char *const known_sections[] = {
    "source", "match", "filter", "label", "system", "worker", "buffer", "format", "parse",
    "inject", "extract", "secondary", "store", "server", "record", "rule", "regexp", "exclude",
    "and", "or", "security", "transport", "user", "client", "metric", "labels", "storage",
    "service_discovery", "log", "user_host", "bucket_lifecycle_rule", "replace", "pattern",
    "elements", "compress", "auth", "route", "grok", "template", "assume_role_credentials",
    "web_identity_credentials", "instance_profile_credentials", "shared_credentials", "http",
    "health_check", "monitor", "counter", "gauge", "summary", "histogram", "initlabels", "metrics",
    "endpoint",
    NULL,
};

/* Edit distance with transpositions (a swapped pair counts once), case folded. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[3][64];

    if (la >= 63 || lb >= 63) {
        return (size_t)-1;
    }
    for (size_t j = 0; j <= lb; j++) {
        row[0][j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        size_t *cur = row[i % 3], *prev = row[(i - 1) % 3], *prev2 = row[(i + 1) % 3];

        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            size_t v = prev[j - 1] + (ca != cb);

            if (prev[j] + 1 < v) {
                v = prev[j] + 1;
            }
            if (cur[j - 1] + 1 < v) {
                v = cur[j - 1] + 1;
            }
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && prev2[j - 2] + 1 < v) {
                v = prev2[j - 2] + 1;
            }
            cur[j] = v;
        }
    }
    return row[la % 3][lb];
}

/* Is cand a closer plausible spelling of word than *best (distance *bestd)? */
static void consider(const char *word, const char *cand, size_t clen, const char **best,
                     size_t *bestd)
{
    char name[64];
    size_t d, n = strlen(word);

    if (clen == 0 || clen >= sizeof(name)) {
        return;
    }
    memcpy(name, cand, clen);
    name[clen] = '\0';
    d = edit_distance(word, name);
    /* one slip in a short word, about one in four in a long one; never most of the word */
    if (d == 0 || d > (n < 8 ? 1 : n / 4 + 1) || d * 2 >= n || d >= *bestd) {
        return;
    }
    *bestd = d;
    *best = cand;
}

/* The known parameter nearest to key in sec's bound tables, as "name" (length in *len). */
static const char *nearest_param(const struct ls_conf_section *sec, const char *key, size_t *len)
{
    const char *best = NULL;
    size_t bestd = (size_t)-1;

    for (unsigned t = 0; t < sec->nbound; t++) {
        for (const struct ls_param *p = sec->bound[t]; p->name; p++) {
            const char *before = best;

            consider(key, p->name, strlen(p->name), &best, &bestd);
            if (best != before) {
                *len = strlen(p->name);
            }
            for (const char *a = p->aliases; a && *a;) {
                size_t n = strcspn(a, "|");

                before = best;
                consider(key, a, n, &best, &bestd);
                if (best != before) {
                    *len = n;
                }
                a += n + (a[n] == '|');
            }
        }
    }
    return best;
}

int ls_conf_warn_unused(struct ls_conf_section *sec)
{
    int n = 0;

    if (sec == NULL) {
        return 0;
    }
    for (struct ls_conf_param *cp = sec->params; cp; cp = cp->next) {
        if (!cp->used && !in_list(cp->key, core_keys)) {
            size_t len = 0;
            const char *near = nearest_param(sec, cp->key, &len);

            if (near) {
                ls_warn("%s:%d: parameter '%s' in <%s%s%s> is not used; did you mean '%.*s'?",
                        cp->file, cp->line, cp->key, sec->name, *sec->arg ? " " : "", sec->arg,
                        (int)len, near);
            } else {
                ls_warn("%s:%d: parameter '%s' in <%s%s%s> is not used", cp->file, cp->line,
                        cp->key, sec->name, *sec->arg ? " " : "", sec->arg);
            }
            n++;
        }
    }
    for (struct ls_conf_section *c = sec->children; c; c = c->next) {
        if (!in_list(c->name, known_sections)) {
            const char *best = NULL;
            size_t bestd = (size_t)-1;

            for (const char *const *k = known_sections; *k; k++) {
                consider(c->name, *k, strlen(*k), &best, &bestd);
            }
            ls_warn("%s:%d: section <%s> in <%s%s%s> is not used%s%s%s", c->file, c->line,
                    c->name, sec->name, *sec->arg ? " " : "", sec->arg,
                    best ? "; did you mean <" : " (no plugin of logship reads it)",
                    best ? best : "", best ? ">?" : "");
            n++;
        }
        n += ls_conf_warn_unused(c);
    }
    return n;
}

/* Does v need quotes to read back as the same value? */
static bool needs_quotes(const char *v)
{
    size_t n = strlen(v);

    if (n == 0) {
        return false;
    }
    if (v[0] == ' ' || v[0] == '\t' || v[n - 1] == ' ' || v[n - 1] == '\t' || v[0] == '"' ||
        v[0] == '\'' || v[0] == '#') {
        return true;
    }
    for (const char *s = v; *s; s++) {
        if (*s == '\n' || *s == '\r' || (*s == '#' && s[1] == '{') ||
            ((*s == ' ' || *s == '\t') && s[1] == '#')) {
            return true;
        }
    }
    return false;
}

static void dump_quoted(struct ls_buf *b, const char *v)
{
    ls_buf_putc(b, '"');
    for (; *v; v++) {
        switch (*v) {
        case '"': ls_buf_append(b, "\\\"", 2); break;
        case '\\': ls_buf_append(b, "\\\\", 2); break;
        case '\n': ls_buf_append(b, "\\n", 2); break;
        case '\r': ls_buf_append(b, "\\r", 2); break;
        case '\t': ls_buf_append(b, "\\t", 2); break;
        case '#': ls_buf_append(b, "\\#", 2); break;
        default: ls_buf_putc(b, *v); break;
        }
    }
    ls_buf_putc(b, '"');
}

static void dump_section(const struct ls_conf_section *sec, int depth, struct ls_buf *b)
{
    int ind = depth * 2;

    for (const struct ls_conf_param *cp = sec->params; cp; cp = cp->next) {
        ls_buf_printf(b, "%*s%s", ind, "", cp->key);
        if (cp->value[0]) {
            ls_buf_putc(b, ' ');
            if (needs_quotes(cp->value)) {
                dump_quoted(b, cp->value);
            } else {
                ls_buf_append(b, cp->value, strlen(cp->value));
            }
        }
        ls_buf_putc(b, '\n');
    }
    for (const struct ls_conf_section *c = sec->children; c; c = c->next) {
        ls_buf_printf(b, "%*s<%s%s%s>\n", ind, "", c->name, *c->arg ? " " : "", c->arg);
        dump_section(c, depth + 1, b);
        ls_buf_printf(b, "%*s</%s>\n", ind, "", c->name);
    }
}

void ls_conf_dump(const struct ls_conf_section *sec, int depth, void (*out)(const char *s, void *arg),
                  void *arg)
{
    struct ls_buf b;

    if (sec == NULL) {
        return;
    }
    ls_buf_init(&b, 0);
    if (strcmp(sec->name, "ROOT") == 0 && sec->parent == NULL) {
        dump_section(sec, depth, &b);
    } else {
        ls_buf_printf(&b, "%*s<%s%s%s>\n", depth * 2, "", sec->name, *sec->arg ? " " : "", sec->arg);
        dump_section(sec, depth + 1, &b);
        ls_buf_printf(&b, "%*s</%s>\n", depth * 2, "", sec->name);
    }
    out(ls_buf_cstr(&b), arg);
    ls_buf_release(&b);
}
