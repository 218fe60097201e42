/*
 * rbexpr.c - a small evaluator for the Ruby subset of rbexpr.h.
 *
 * Written by hand: no Debian library evaluates Ruby without Ruby, and the subset is what
 * td-agent files put in ${...} with enable_ruby. The source is parsed once into a tree
 * (precedence climbing over Ruby's operator table); evaluation walks it per record with
 * values in the record's arena. Semantics follow Ruby 2.7/3.x where the subset reaches:
 * only nil and false are false, Integer / Integer floors, String#split with a string drops
 * trailing empty fields, Array#to_s is inspect, a missing Hash key is nil, a method on
 * nil that Ruby's nil lacks raises.
 */
#include "rbexpr.h"
#include "json.h"
#include "template.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <math.h>
#include <time.h>

/* the longest string one operation builds (String#*, rjust): a record field, not a file */
#define RBX_MAX_STR (1u << 20)

enum vt { V_NIL, V_BOOL, V_INT, V_FLOAT, V_STR, V_ARR, V_HASH, V_TIME, V_RE, V_RANGE, V_SYM };

struct val {
    enum vt t;
    bool b;
    int64_t i;
    double f;
    const char *s;              /* V_STR, V_SYM; V_HASH: JSON text (NULL: the record) */
    size_t n;
    struct val *a;              /* V_ARR elements; V_RANGE: [lo, hi] */
    size_t na;
    bool excl;                  /* V_RANGE: ... */
    bool md;                    /* V_ARR made by String#match: a MatchData ([0] the match) */
    int64_t sec;                /* V_TIME */
    int32_t nsec;
    bool utc;
    const pcre2_code *re;       /* V_RE */
};

enum nk { N_LIT, N_VAR, N_ASSIGN, N_SEQ, N_CALL, N_INDEX, N_BIN, N_NOT, N_NEG, N_AND, N_OR,
          N_TERN, N_ARRAY, N_INTERP, N_RANGE, N_RESCUE };

struct node {
    enum nk k;
    struct val lit;             /* N_LIT */
    char *name;                 /* N_VAR, N_ASSIGN, N_CALL (method), N_BIN (operator) */
    struct node **kids;         /* operands, receiver first for N_CALL */
    size_t nk;
    char *blocksym;             /* N_CALL: &:sym */
    pcre2_code *re;             /* owned regex of a literal */
};

struct rbx {
    struct node *root;
    char *src;
};

/* ---- parsing ---- */

struct ps {
    const char *s, *p;
    char msg[200];
    bool bad;
    char **vars;
    size_t nvars;
    int depth;
};

static struct node *mk(enum nk k)
{
    struct node *n = ls_calloc(1, sizeof(*n));
    n->k = k;
    return n;
}

static void add_kid(struct node *n, struct node *c)
{
    n->kids = ls_realloc(n->kids, (n->nk + 1) * sizeof(*n->kids));
    n->kids[n->nk++] = c;
}

static void node_free(struct node *n)
{
    if (n == NULL) {
        return;
    }
    for (size_t i = 0; i < n->nk; i++) {
        node_free(n->kids[i]);
    }
    ls_free(n->kids);
    ls_free(n->name);
    ls_free(n->blocksym);
    if (n->lit.t == V_STR || n->lit.t == V_SYM) {
        ls_free((char *)n->lit.s);
    }
    if (n->re) {
        pcre2_code_free(n->re);
    }
    ls_free(n);
}

static void fail(struct ps *ps, const char *what)
{
    if (!ps->bad) {
        snprintf(ps->msg, sizeof(ps->msg), "%.100s at '%.20s'", what, ps->p);
        ps->bad = true;
    }
}

static void ws(struct ps *ps)
{
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n') {
        ps->p++;
    }
}

static bool is_id0(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_id(char c)
{
    return is_id0(c) || (c >= '0' && c <= '9');
}

static bool eat(struct ps *ps, const char *tok)
{
    size_t n = strlen(tok);

    ws(ps);
    if (strncmp(ps->p, tok, n) == 0) {
        /* "=" must not be "==", "&" not "&&" and so on */
        if ((n == 1 && (tok[0] == '=' || tok[0] == '<' || tok[0] == '>' || tok[0] == '!') &&
             (ps->p[1] == '=' || ps->p[1] == '~')) ||
            (n == 1 && tok[0] == '.' && ps->p[1] == '.') ||
            (n == 2 && strcmp(tok, "..") == 0 && ps->p[2] == '.')) {
            return false;
        }
        ps->p += n;
        return true;
    }
    return false;
}

static struct node *parse_expr(struct ps *ps);
static struct node *parse_stmt(struct ps *ps);

static struct node *str_lit(const char *s, size_t n)
{
    struct node *x = mk(N_LIT);
    x->lit.t = V_STR;
    x->lit.s = ls_strndup(s, n);
    x->lit.n = n;
    return x;
}

/* '...' or "..." (with #{...}) at ps->p */
static struct node *parse_string(struct ps *ps)
{
    char q = *ps->p++;
    struct ls_buf b;
    struct node *interp = NULL;

    ls_buf_init(&b, 0);
    while (*ps->p && *ps->p != q) {
        char c = *ps->p++;
        if (c == '\\' && *ps->p) {
            char e = *ps->p++;
            if (q == '\'') {
                if (e != '\\' && e != '\'') {
                    ls_buf_putc(&b, '\\');
                }
                ls_buf_putc(&b, e);
            } else {
                ls_buf_putc(&b, e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r'
                            : e == '0' ? '\0' : e == 'e' ? 27 : e);
            }
        } else if (c == '#' && q == '"' && *ps->p == '{') {
            const char *start = ++ps->p;
            int depth = 1;
            struct ps sub;
            char *inner;
            while (*ps->p && depth) {
                depth += *ps->p == '{' ? 1 : *ps->p == '}' ? -1 : 0;
                ps->p++;
            }
            if (depth) {
                fail(ps, "unterminated #{");
                break;
            }
            if (interp == NULL) {
                interp = mk(N_INTERP);
            }
            add_kid(interp, str_lit(b.p ? b.p : "", b.len));
            ls_buf_reset(&b);
            inner = ls_strndup(start, (size_t)(ps->p - 1 - start));
            memset(&sub, 0, sizeof(sub));
            sub.s = sub.p = inner;
            sub.depth = ps->depth + 1;
            sub.vars = ps->vars;
            sub.nvars = ps->nvars;
            add_kid(interp, parse_expr(&sub));
            ws(&sub);
            if (sub.bad || *sub.p) {
                fail(ps, sub.bad ? sub.msg : "unexpected text in #{}");
            }
            ls_free(inner);
        } else {
            ls_buf_putc(&b, c);
        }
    }
    if (*ps->p != q) {
        fail(ps, "unterminated string");
    } else {
        ps->p++;
    }
    if (interp) {
        add_kid(interp, str_lit(b.p ? b.p : "", b.len));
        ls_buf_release(&b);
        return interp;
    }
    {
        struct node *x = str_lit(b.p ? b.p : "", b.len);
        ls_buf_release(&b);
        return x;
    }
}

static struct node *parse_regex(struct ps *ps)
{
    struct ls_buf b;
    uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
    int ec;
    PCRE2_SIZE eo;
    struct node *x = mk(N_LIT);

    ps->p++;
    ls_buf_init(&b, 0);
    while (*ps->p && *ps->p != '/') {
        if (*ps->p == '\\' && ps->p[1]) {
            ls_buf_putc(&b, *ps->p++);
        }
        ls_buf_putc(&b, *ps->p++);
    }
    if (*ps->p != '/') {
        fail(ps, "unterminated regular expression");
        ls_buf_release(&b);
        return x;
    }
    ps->p++;
    while (*ps->p == 'i' || *ps->p == 'm' || *ps->p == 'x') {
        opts |= *ps->p == 'i' ? PCRE2_CASELESS : *ps->p == 'm' ? PCRE2_DOTALL : PCRE2_EXTENDED;
        ps->p++;
    }
    x->re = pcre2_compile((PCRE2_SPTR)(b.p ? b.p : ""), b.len, opts, &ec, &eo, NULL);
    ls_buf_release(&b);
    if (x->re == NULL) {
        fail(ps, "bad regular expression");
        return x;
    }
    x->lit.t = V_RE;
    return x;
}

static bool var_known(struct ps *ps, const char *name)
{
    for (size_t i = 0; i < ps->nvars; i++) {
        if (strcmp(ps->vars[i], name) == 0) {
            return true;
        }
    }
    return false;
}

static void parse_args(struct ps *ps, struct node *call)
{
    ws(ps);
    if (eat(ps, ")")) {
        return;
    }
    for (;;) {
        ws(ps);
        if (ps->p[0] == '&' && ps->p[1] == ':') {
            const char *s = ps->p += 2;
            while (is_id(*ps->p) || *ps->p == '?' || *ps->p == '!') {
                ps->p++;
            }
            call->blocksym = ls_strndup(s, (size_t)(ps->p - s));
        } else {
            add_kid(call, parse_expr(ps));
        }
        if (ps->bad || eat(ps, ")")) {
            return;
        }
        if (!eat(ps, ",")) {
            fail(ps, "expected ',' or ')'");
            return;
        }
    }
}

static const char *const receivers[] = { "record", "tag", "tag_parts", "tag_prefix", "tag_suffix",
                                         "time", "hostname", NULL };

static struct node *parse_primary(struct ps *ps)
{
    struct node *x;

    ws(ps);
    if (*ps->p == '\'' || *ps->p == '"') {
        return parse_string(ps);
    }
    if (*ps->p == '/') {
        return parse_regex(ps);
    }
    if ((*ps->p >= '0' && *ps->p <= '9')) {
        char *end;
        const char *s = ps->p;
        x = mk(N_LIT);
        while ((*ps->p >= '0' && *ps->p <= '9') || *ps->p == '_') {
            ps->p++;
        }
        if (*ps->p == '.' && ps->p[1] >= '0' && ps->p[1] <= '9') {
            x->lit.t = V_FLOAT;
            x->lit.f = strtod(s, &end);
            ps->p = end;
        } else {
            char digits[32];
            size_t k = 0;
            for (const char *c = s; c < ps->p && k < sizeof(digits) - 1; c++) {
                if (*c != '_') {
                    digits[k++] = *c;
                }
            }
            digits[k] = '\0';
            x->lit.t = V_INT;
            x->lit.i = strtoll(digits, NULL, 10);
        }
        return x;
    }
    if (*ps->p == ':' && is_id0(ps->p[1])) {
        const char *s = ++ps->p;
        while (is_id(*ps->p)) {
            ps->p++;
        }
        x = mk(N_LIT);
        x->lit.t = V_STR;      /* a Symbol used as a Hash key or argument: its name */
        x->lit.s = ls_strndup(s, (size_t)(ps->p - s));
        x->lit.n = (size_t)(ps->p - s);
        return x;
    }
    if (eat(ps, "(")) {
        ps->depth++;
        x = parse_stmt(ps);
        ps->depth--;
        if (!eat(ps, ")")) {
            fail(ps, "expected ')'");
        }
        return x;
    }
    if (eat(ps, "[")) {
        ps->depth += 4;     /* arrays count more: each element is a whole expression */
        x = mk(N_ARRAY);
        if (eat(ps, "]")) {
            ps->depth -= 4;
            return x;
        }
        for (;;) {
            add_kid(x, parse_expr(ps));
            if (ps->bad || eat(ps, "]")) {
                ps->depth -= 4;
                return x;
            }
            if (!eat(ps, ",")) {
                fail(ps, "expected ',' or ']'");
                return x;
            }
        }
    }
    if (is_id0(*ps->p)) {
        const char *s = ps->p;
        char *name;
        while (is_id(*ps->p)) {
            ps->p++;
        }
        name = ls_strndup(s, (size_t)(ps->p - s));
        if (strcmp(name, "nil") == 0 || strcmp(name, "true") == 0 || strcmp(name, "false") == 0) {
            x = mk(N_LIT);
            x->lit.t = name[0] == 'n' ? V_NIL : V_BOOL;
            x->lit.b = name[0] == 't';
            ls_free(name);
            return x;
        }
        if (strcmp(name, "Time") == 0 || strcmp(name, "ENV") == 0 || strcmp(name, "Socket") == 0) {
            x = mk(N_VAR);
            x->name = name;
            return x;
        }
        for (size_t i = 0; receivers[i]; i++) {
            if (strcmp(name, receivers[i]) == 0) {
                x = mk(N_VAR);
                x->name = name;
                return x;
            }
        }
        if (var_known(ps, name)) {
            x = mk(N_VAR);
            x->name = name;
            return x;
        }
        ps->p = s;
        ls_free(name);
        fail(ps, "unknown name");
        return mk(N_LIT);
    }
    fail(ps, "unexpected text");
    return mk(N_LIT);
}

/* every method some receiver of the subset answers; another name is refused at compile
 * time, so that a configuration never fails record by record on a method logship lacks */
static const char *const known_methods[] = {
    "nil?", "to_s", "inspect", "to_json", "to_i", "to_f", "to_a", "strftime", "tv_sec", "nsec",
    "tv_nsec", "usec", "tv_usec", "utc", "getutc", "gmtime", "localtime", "getlocal", "iso8601",
    "xmlschema", "year", "month", "mon", "day", "mday", "hour", "min", "sec", "wday", "yday",
    "to_int", "truncate", "abs", "floor", "ceil", "round", "zero?", "between?", "to_str",
    "to_sym", "dup", "force_encoding", "encode", "scrub", "b", "length", "size", "bytesize",
    "empty?", "upcase", "downcase", "capitalize", "swapcase", "strip", "lstrip", "rstrip",
    "chomp", "chop", "reverse", "split", "gsub", "sub", "include?", "start_with?", "end_with?",
    "match?", "match", "index", "slice", "rjust", "ljust", "center", "chars", "lines", "count",
    "scan", "tr", "join", "first", "last", "take", "drop", "compact", "uniq", "map", "collect",
    "reject", "select", "filter", "dig", "fetch", "key?", "has_key?", "member?", "keys",
    "values", "now", "at", "gethostname", NULL
};

static bool method_known(const char *name)
{
    for (size_t i = 0; known_methods[i]; i++) {
        if (strcmp(known_methods[i], name) == 0) {
            return true;
        }
    }
    return false;
}

static struct node *parse_postfix(struct ps *ps)
{
    struct node *x = parse_primary(ps);

    while (!ps->bad) {
        if (eat(ps, ".")) {
            const char *s;
            struct node *c;
            ws(ps);
            s = ps->p;
            while (is_id(*ps->p)) {
                ps->p++;
            }
            if (*ps->p == '?' || *ps->p == '!') {
                ps->p++;
            }
            if (ps->p == s) {
                fail(ps, "expected a method name");
                break;
            }
            c = mk(N_CALL);
            c->name = ls_strndup(s, (size_t)(ps->p - s));
            if (!method_known(c->name)) {
                ps->p = s;
                fail(ps, "method not supported");
                add_kid(c, x);
                return c;
            }
            add_kid(c, x);
            if (*ps->p == '(') {
                ps->p++;
                parse_args(ps, c);
            }
            x = c;
        } else if (*ps->p == '[') {
            struct node *c = mk(N_INDEX);
            ps->p++;
            add_kid(c, x);
            for (;;) {
                add_kid(c, parse_expr(ps));
                if (ps->bad || eat(ps, "]")) {
                    break;
                }
                if (!eat(ps, ",")) {
                    fail(ps, "expected ']'");
                    break;
                }
            }
            x = c;
        } else {
            break;
        }
    }
    return x;
}

static struct node *parse_unary(struct ps *ps)
{
    ws(ps);
    if (ps->depth > 64) {
        fail(ps, "expression nested too deeply");
        return mk(N_LIT);
    }
    if (*ps->p == '!' && ps->p[1] != '=') {
        struct node *x = mk(N_NOT);
        ps->p++;
        ps->depth++;
        add_kid(x, parse_unary(ps));
        ps->depth--;
        return x;
    }
    if (*ps->p == '-' && !(ps->p[1] >= '0' && ps->p[1] <= '9')) {
        struct node *x = mk(N_NEG);
        ps->p++;
        ps->depth++;
        add_kid(x, parse_unary(ps));
        ps->depth--;
        return x;
    }
    if (*ps->p == '-') {
        struct node *x;
        ps->p++;
        x = parse_postfix(ps);
        if (x->k == N_LIT && x->lit.t == V_INT) {
            x->lit.i = -x->lit.i;
        } else if (x->k == N_LIT && x->lit.t == V_FLOAT) {
            x->lit.f = -x->lit.f;
        }
        return x;
    }
    return parse_postfix(ps);
}

static const struct {
    const char *op;
    int prec;
} binops[] = {
    { "||", 1 }, { "&&", 2 }, { "==", 4 }, { "!=", 4 }, { "=~", 4 }, { "!~", 4 },
    { "<=", 5 }, { ">=", 5 }, { "<", 5 }, { ">", 5 }, { "+", 7 }, { "-", 7 },
    { "**", 9 }, { "*", 8 }, { "/", 8 }, { "%", 8 },
};

static struct node *parse_bin(struct ps *ps, int min)
{
    struct node *l = parse_unary(ps);

    while (!ps->bad) {
        size_t i;
        ws(ps);
        for (i = 0; i < LS_ARRAY_LEN(binops); i++) {
            size_t n = strlen(binops[i].op);
            if (strncmp(ps->p, binops[i].op, n) == 0 && !(n == 1 && ps->p[1] == '=') &&
                !(binops[i].op[0] == '*' && n == 1 && ps->p[1] == '*')) {
                break;
            }
        }
        if (i == LS_ARRAY_LEN(binops) || binops[i].prec < min) {
            break;
        }
        ps->p += strlen(binops[i].op);
        {
            struct node *r;
            ps->depth++;
            r = parse_bin(ps, binops[i].prec + (binops[i].prec == 9 ? 0 : 1));
            ps->depth--;
            struct node *x = mk(binops[i].prec == 1 ? N_OR : binops[i].prec == 2 ? N_AND : N_BIN);
            x->name = ls_strdup(binops[i].op);
            add_kid(x, l);
            add_kid(x, r);
            l = x;
        }
    }
    return l;
}

static struct node *parse_expr_in(struct ps *ps);

static struct node *parse_expr(struct ps *ps)
{
    struct node *x;

    if (++ps->depth > 64) {
        fail(ps, "expression nested too deeply");
        ps->depth--;
        return mk(N_LIT);
    }
    x = parse_expr_in(ps);
    ps->depth--;
    return x;
}

static struct node *parse_expr_in(struct ps *ps)
{
    struct node *c = parse_bin(ps, 1);

    ws(ps);
    if ((ps->p[0] == '.' && ps->p[1] == '.')) {
        struct node *r = mk(N_RANGE);
        bool excl = ps->p[2] == '.';
        ps->p += excl ? 3 : 2;
        add_kid(r, c);
        add_kid(r, parse_bin(ps, 1));
        r->lit.excl = excl;
        return r;
    }
    if (*ps->p == '?' && ps->p[1] == ' ') {
        struct node *t = mk(N_TERN);
        ps->p++;
        add_kid(t, c);
        add_kid(t, parse_expr(ps));
        if (!eat(ps, ":")) {
            fail(ps, "expected ':' of ?:");
        }
        add_kid(t, parse_expr(ps));
        return t;
    }
    return c;
}

static struct node *parse_one_plain(struct ps *ps);

/* expr, or expr rescue fallback (the modifier: any error gives the fallback) */
static struct node *parse_one(struct ps *ps)
{
    struct node *x = parse_one_plain(ps);

    ws(ps);
    if (!ps->bad && strncmp(ps->p, "rescue", 6) == 0 && !is_id(ps->p[6])) {
        struct node *r = mk(N_RESCUE);
        ps->p += 6;
        add_kid(r, x);
        add_kid(r, parse_one_plain(ps));
        return r;
    }
    return x;
}

/* name = expr, or expr */
static struct node *parse_one_plain(struct ps *ps)
{
    const char *save;

    ws(ps);
    save = ps->p;
    if (is_id0(*ps->p) && !(*ps->p >= 'A' && *ps->p <= 'Z')) {
        const char *s = ps->p;
        while (is_id(*ps->p)) {
            ps->p++;
        }
        ws(ps);
        if (*ps->p == '=' && ps->p[1] != '=' && ps->p[1] != '~') {
            struct node *a = mk(N_ASSIGN);
            a->name = ls_strndup(s, (size_t)(ps->p - s));
            while (a->name[strlen(a->name) - 1] == ' ') {
                a->name[strlen(a->name) - 1] = '\0';
            }
            ps->p++;
            add_kid(a, parse_expr(ps));
            if (!var_known(ps, a->name)) {
                ps->vars = ls_realloc(ps->vars, (ps->nvars + 1) * sizeof(char *));
                ps->vars[ps->nvars++] = ls_strdup(a->name);
            }
            return a;
        }
        ps->p = save;
    }
    return parse_expr(ps);
}

static struct node *parse_stmt(struct ps *ps)
{
    struct node *first = parse_one(ps);
    struct node *seq = NULL;

    while (!ps->bad && eat(ps, ";")) {
        if (seq == NULL) {
            seq = mk(N_SEQ);
            add_kid(seq, first);
        }
        add_kid(seq, parse_one(ps));
    }
    return seq ? seq : first;
}

struct rbx *rbx_compile(const char *src, char *msg, size_t msglen)
{
    struct ps ps;
    struct rbx *x;

    memset(&ps, 0, sizeof(ps));
    ps.s = ps.p = src;
    x = ls_calloc(1, sizeof(*x));
    x->root = parse_stmt(&ps);
    ws(&ps);
    if (!ps.bad && *ps.p) {
        fail(&ps, "unexpected text");
    }
    for (size_t i = 0; i < ps.nvars; i++) {
        ls_free(ps.vars[i]);
    }
    ls_free(ps.vars);
    if (ps.bad) {
        snprintf(msg, msglen, "%s", ps.msg);
        rbx_free(x);
        return NULL;
    }
    x->src = ls_strdup(src);
    return x;
}

void rbx_free(struct rbx *x)
{
    if (x) {
        node_free(x->root);
        ls_free(x->src);
        ls_free(x);
    }
}

/* ---- evaluation ---- */

struct env {
    const struct ls_record *rec;
    struct ls_arena *a;
    const char *host;
    const char *names[16];
    struct val vals[16];
    size_t nv;
    bool err;
};

static struct val vnil(void)
{
    struct val v;
    memset(&v, 0, sizeof(v));
    return v;
}

static struct val vstr(struct env *e, const char *s, size_t n, bool copy)
{
    struct val v = vnil();
    v.t = V_STR;
    v.s = copy ? ls_arena_memdup(e->a, s, n) : s;
    v.n = n;
    return v;
}

static struct val vint(int64_t i)
{
    struct val v = vnil();
    v.t = V_INT;
    v.i = i;
    return v;
}

static struct val vflt(double f)
{
    struct val v = vnil();
    v.t = V_FLOAT;
    v.f = f;
    return v;
}

static struct val vbool(bool b)
{
    struct val v = vnil();
    v.t = V_BOOL;
    v.b = b;
    return v;
}

static bool truthy(const struct val *v)
{
    return !(v->t == V_NIL || (v->t == V_BOOL && !v->b));
}

static struct val bad(struct env *e)
{
    e->err = true;
    return vnil();
}

static struct val from_value(struct env *e, const struct ls_value *lv);

/* a JSON array's elements */
static struct val arr_of_json(struct env *e, const char *p, size_t len)
{
    struct val v = vnil();
    size_t off = 0, elen, cap = 0;
    const char *elem;

    v.t = V_ARR;
    while (ls_json_array_next(p, len, &off, &elem, &elen) == LS_OK) {
        struct ls_value lv;
        if (v.na == cap) {
            struct val *n;
            cap = cap ? cap * 2 : 8;
            n = ls_arena_alloc(e->a, cap * sizeof(*n));
            if (v.na) {
                memcpy(n, v.a, v.na * sizeof(*n));
            }
            v.a = n;
        }
        if (ls_json_array_get(p, len, v.na, e->a, &lv) != LS_OK) {
            lv = ls_vnull();
        }
        v.a[v.na++] = from_value(e, &lv);
    }
    return v;
}

static struct val from_value(struct env *e, const struct ls_value *lv)
{
    struct val v = vnil();

    switch (lv->type) {
    case LS_V_NULL:
        break;
    case LS_V_BOOL:
        v = vbool(lv->u.b);
        break;
    case LS_V_INT:
        v = vint(lv->u.i);
        break;
    case LS_V_FLOAT:
        v = vflt(lv->u.f);
        break;
    case LS_V_STR:
        v = vstr(e, lv->u.s.p, lv->u.s.len, false);
        break;
    case LS_V_JSON:
        if (lv->u.s.len && lv->u.s.p[0] == '[') {
            v = arr_of_json(e, lv->u.s.p, lv->u.s.len);
        } else if (lv->u.s.len && lv->u.s.p[0] == '{') {
            v.t = V_HASH;
            v.s = lv->u.s.p;
            v.n = lv->u.s.len;
        } else {
            v = vstr(e, lv->u.s.p, lv->u.s.len, false);   /* a huge number */
        }
        break;
    }
    (void)e;
    return v;
}

/* Hash lookup: the record (s == NULL) or a JSON object */
static struct val hash_get(struct env *e, const struct val *h, const struct val *k)
{
    struct ls_value lv;
    const char *ks;
    size_t kn;

    if (k->t != V_STR) {
        return vnil();          /* JSON keys are strings; h[0] or h[nil] is nil */
    }
    ks = k->s;
    kn = k->n;
    if (h->s == NULL) {
        const struct ls_field *f = ls_record_get(e->rec, ks, kn);
        return f ? from_value(e, &f->v) : vnil();
    }
    {
        struct ls_record r;
        struct val out = vnil();
        ls_record_init(&r, e->a);
        if (ls_json_parse_object(h->s, h->n, &r) == LS_OK) {
            const struct ls_field *f = ls_record_get(&r, ks, kn);
            if (f) {
                lv = f->v;
                out = from_value(e, &lv);
            }
        }
        ls_record_release(&r);
        return out;
    }
}

static void put_inspect(struct env *e, struct ls_buf *b, const struct val *v);
static void put_to_s(struct env *e, struct ls_buf *b, const struct val *v);

static void time_to_s(struct ls_buf *b, const struct val *v)
{
    ls_tmpl_strftime(b, v->utc ? "%Y-%m-%d %H:%M:%S UTC" : "%Y-%m-%d %H:%M:%S %z", v->sec,
                     v->nsec, v->utc);
}

static void put_float(struct ls_buf *b, double f)
{
    struct ls_value lv = ls_vfloat(f);
    ls_ruby_put_value(b, &lv, false);
}

static void put_to_s(struct env *e, struct ls_buf *b, const struct val *v)
{
    switch (v->t) {
    case V_NIL:
        break;
    case V_BOOL:
        ls_buf_printf(b, "%s", v->b ? "true" : "false");
        break;
    case V_INT:
        ls_buf_printf(b, "%lld", (long long)v->i);
        break;
    case V_FLOAT:
        put_float(b, v->f);
        break;
    case V_STR:
    case V_SYM:
        ls_buf_append(b, v->s, v->n);
        break;
    case V_TIME:
        time_to_s(b, v);
        break;
    case V_ARR:
        if (v->md) {
            put_to_s(e, b, &v->a[0]);
            break;
        }
        put_inspect(e, b, v);
        break;
    default:
        put_inspect(e, b, v);
        break;
    }
}

static void put_inspect(struct env *e, struct ls_buf *b, const struct val *v)
{
    switch (v->t) {
    case V_NIL:
        ls_buf_printf(b, "nil");
        break;
    case V_STR: {
        struct ls_value lv = ls_vstr(v->s, v->n);
        ls_ruby_put_value(b, &lv, true);
        break;
    }
    case V_ARR:
        ls_buf_putc(b, '[');
        for (size_t i = 0; i < v->na; i++) {
            if (i) {
                ls_buf_append(b, ", ", 2);
            }
            put_inspect(e, b, &v->a[i]);
        }
        ls_buf_putc(b, ']');
        break;
    case V_HASH:
        if (v->s == NULL) {
            ls_ruby_put_record(b, e->rec);
        } else {
            struct ls_value lv;
            lv.type = LS_V_JSON;
            lv.u.s.p = v->s;
            lv.u.s.len = v->n;
            ls_ruby_put_value(b, &lv, true);
        }
        break;
    case V_RE:
        ls_buf_printf(b, "/re/");
        break;
    case V_RANGE:
        put_inspect(e, b, &v->a[0]);
        ls_buf_printf(b, "%s", v->excl ? "..." : "..");
        put_inspect(e, b, &v->a[1]);
        break;
    default:
        put_to_s(e, b, v);
        break;
    }
}

static struct val to_s(struct env *e, const struct val *v)
{
    struct ls_buf b;
    struct val out;

    if (v->t == V_STR) {
        return *v;
    }
    ls_buf_init(&b, 0);
    put_to_s(e, &b, v);
    out = vstr(e, b.p ? b.p : "", b.len, true);
    ls_buf_release(&b);
    return out;
}

static void put_json(struct env *e, struct ls_buf *b, const struct val *v)
{
    switch (v->t) {
    case V_NIL:
        ls_buf_append(b, "null", 4);
        break;
    case V_BOOL:
        ls_buf_printf(b, "%s", v->b ? "true" : "false");
        break;
    case V_INT:
        ls_buf_printf(b, "%lld", (long long)v->i);
        break;
    case V_FLOAT: {
        struct ls_value lv = ls_vfloat(v->f);
        ls_json_put_value(b, &lv);
        break;
    }
    case V_ARR:
        ls_buf_putc(b, '[');
        for (size_t i = 0; i < v->na; i++) {
            if (i) {
                ls_buf_putc(b, ',');
            }
            put_json(e, b, &v->a[i]);
        }
        ls_buf_putc(b, ']');
        break;
    case V_HASH:
        if (v->s == NULL) {
            ls_json_put_record(b, e->rec);
        } else {
            ls_buf_append(b, v->s, v->n);
        }
        break;
    default: {
        struct val s = to_s(e, v);
        ls_json_put_str(b, s.s, s.n);
        break;
    }
    }
}

/* Ruby's String#to_i / to_f */
static int64_t str_to_i(const char *p, size_t n)
{
    char buf[64];
    size_t k = 0, i = 0;

    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n')) {
        i++;
    }
    if (i < n && (p[i] == '-' || p[i] == '+')) {
        buf[k++] = p[i++];
    }
    for (; i < n && k < sizeof(buf) - 1; i++) {
        if (p[i] >= '0' && p[i] <= '9') {
            buf[k++] = p[i];
        } else if (p[i] == '_' && i + 1 < n && p[i + 1] >= '0' && p[i + 1] <= '9' && k &&
                   buf[k - 1] >= '0') {
            continue;
        } else {
            break;
        }
    }
    buf[k] = '\0';
    return strtoll(buf, NULL, 10);
}

static double str_to_f(const char *p, size_t n)
{
    char buf[64];
    size_t k = n < sizeof(buf) - 1 ? n : sizeof(buf) - 1;

    memcpy(buf, p, k);
    buf[k] = '\0';
    return strtod(buf, NULL);
}

static struct val arr_new(struct env *e, size_t n)
{
    struct val v = vnil();
    v.t = V_ARR;
    v.a = ls_arena_alloc(e->a, (n ? n : 1) * sizeof(struct val));
    v.na = 0;
    return v;
}

static struct val tag_parts(struct env *e)
{
    const char *t = e->rec->tag ? e->rec->tag : "";
    size_t len = e->rec->tag_len, start = 0, parts = 1;
    struct val v;

    for (size_t i = 0; i < len; i++) {
        parts += t[i] == '.';
    }
    v = arr_new(e, parts);
    for (size_t i = 0; i <= len; i++) {
        if (i == len || t[i] == '.') {
            v.a[v.na++] = vstr(e, t + start, i - start, false);
            start = i + 1;
        }
    }
    return v;
}

/* tag_prefix / tag_suffix arrays, as record_transformer builds them */
static struct val tag_fixes(struct env *e, bool prefix)
{
    struct val p = tag_parts(e), v = arr_new(e, p.na);
    struct ls_buf b;

    ls_buf_init(&b, 0);
    for (size_t i = 0; i < p.na; i++) {
        ls_buf_reset(&b);
        if (prefix) {
            for (size_t k = 0; k <= i; k++) {
                if (k) {
                    ls_buf_putc(&b, '.');
                }
                ls_buf_append(&b, p.a[k].s, p.a[k].n);
            }
        } else {
            for (size_t k = i; k < p.na; k++) {
                if (k != i) {
                    ls_buf_putc(&b, '.');
                }
                ls_buf_append(&b, p.a[k].s, p.a[k].n);
            }
        }
        v.a[v.na++] = vstr(e, b.p ? b.p : "", b.len, true);
    }
    ls_buf_release(&b);
    return v;
}

static bool eq(struct env *e, const struct val *a, const struct val *b)
{
    if ((a->t == V_INT || a->t == V_FLOAT) && (b->t == V_INT || b->t == V_FLOAT)) {
        double x = a->t == V_INT ? (double)a->i : a->f, y = b->t == V_INT ? (double)b->i : b->f;
        return a->t == V_INT && b->t == V_INT ? a->i == b->i : x == y;
    }
    if (a->t != b->t) {
        return false;
    }
    switch (a->t) {
    case V_NIL:
        return true;
    case V_BOOL:
        return a->b == b->b;
    case V_STR:
        return a->n == b->n && memcmp(a->s, b->s, a->n) == 0;
    case V_ARR:
        if (a->na != b->na) {
            return false;
        }
        for (size_t i = 0; i < a->na; i++) {
            if (!eq(e, &a->a[i], &b->a[i])) {
                return false;
            }
        }
        return true;
    case V_TIME:
        return a->sec == b->sec && a->nsec == b->nsec;
    default: {
        struct ls_buf x, y;
        bool r;
        ls_buf_init(&x, 0);
        ls_buf_init(&y, 0);
        put_json(e, &x, a);
        put_json(e, &y, b);
        r = x.len == y.len && memcmp(x.p, y.p, x.len) == 0;
        ls_buf_release(&x);
        ls_buf_release(&y);
        return r;
    }
    }
}

/* regex match of s: true with the match's [start, end) */
static bool re_match(const pcre2_code *re, const char *s, size_t n, size_t from, size_t *ms,
                     size_t *me)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = pcre2_match(re, (PCRE2_SPTR)s, n, from, 0, md, NULL);
    if (rc >= 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        *ms = ov[0];
        *me = ov[1];
    }
    pcre2_match_data_free(md);
    return rc >= 0;
}

/* find pat (string or regex) in s from `from` */
static bool find(const struct val *pat, const char *s, size_t n, size_t from, size_t *ms, size_t *me)
{
    if (pat->t == V_RE) {
        return re_match(pat->re, s, n, from, ms, me);
    }
    for (size_t i = from; i + pat->n <= n; i++) {
        if (memcmp(s + i, pat->s, pat->n) == 0) {
            *ms = i;
            *me = i + pat->n;
            return true;
        }
    }
    return false;
}

static struct val split(struct env *e, const struct val *s, const struct val *pat, int64_t limit)
{
    struct val out = arr_new(e, s->n + 1);
    size_t start = 0, pos = 0, ms, me;

    if (pat == NULL || (pat->t == V_STR && pat->n == 1 && pat->s[0] == ' ')) {
        /* awk-style: runs of white space, leading ones ignored */
        size_t i = 0;
        while (i < s->n) {
            while (i < s->n && (s->s[i] == ' ' || s->s[i] == '\t' || s->s[i] == '\n')) {
                i++;
            }
            if (i >= s->n) {
                break;
            }
            start = i;
            if (limit > 0 && (int64_t)out.na == limit - 1) {
                out.a[out.na++] = vstr(e, s->s + start, s->n - start, false);
                return out;
            }
            while (i < s->n && !(s->s[i] == ' ' || s->s[i] == '\t' || s->s[i] == '\n')) {
                i++;
            }
            out.a[out.na++] = vstr(e, s->s + start, i - start, false);
        }
        return out;
    }
    if (pat->t == V_STR && pat->n == 0) {
        for (size_t i = 0; i < s->n; i++) {
            out.a[out.na++] = vstr(e, s->s + i, 1, false);
        }
        return out;
    }
    while (pos <= s->n && find(pat, s->s, s->n, pos, &ms, &me)) {
        if (limit > 0 && (int64_t)out.na == limit - 1) {
            break;
        }
        if (me == ms) {             /* an empty match: advance one character */
            if (ms >= s->n) {
                break;
            }
            me = ms + 1;
            out.a[out.na++] = vstr(e, s->s + start, me - start, false);
            start = pos = me;
            continue;
        }
        out.a[out.na++] = vstr(e, s->s + start, ms - start, false);
        start = pos = me;
    }
    out.a[out.na++] = vstr(e, s->s + start, s->n - start, false);
    if (limit == 0) {
        while (out.na > 0 && out.a[out.na - 1].n == 0) {
            out.na--;       /* trailing empty fields are dropped */
        }
    }
    return out;
}

/* gsub/sub with a string replacement (\\0 \\1.. back-references for a regex) */
static struct val subst(struct env *e, const struct val *s, const struct val *pat,
                        const struct val *rep, bool global)
{
    struct ls_buf b;
    size_t pos = 0, last = 0, ms, me;
    struct val out;

    ls_buf_init(&b, 0);
    while (pos <= s->n) {
        pcre2_match_data *md = NULL;
        PCRE2_SIZE *ov = NULL;
        int rc = 0;
        if (pat->t == V_RE) {
            md = pcre2_match_data_create_from_pattern(pat->re, NULL);
            rc = pcre2_match(pat->re, (PCRE2_SPTR)s->s, s->n, pos, 0, md, NULL);
            if (rc < 0) {
                pcre2_match_data_free(md);
                break;
            }
            ov = pcre2_get_ovector_pointer(md);
            ms = ov[0];
            me = ov[1];
        } else if (!find(pat, s->s, s->n, pos, &ms, &me)) {
            break;
        }
        ls_buf_append(&b, s->s + last, ms - last);
        for (size_t i = 0; i < rep->n; i++) {
            char c = rep->s[i];
            if (c == '\\' && i + 1 < rep->n && rep->s[i + 1] >= '0' && rep->s[i + 1] <= '9' && ov) {
                int g = rep->s[++i] - '0';
                if (g < rc && ov[2 * g] != PCRE2_UNSET) {
                    ls_buf_append(&b, s->s + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
                }
            } else if (c == '\\' && i + 1 < rep->n && rep->s[i + 1] == '\\') {
                ls_buf_putc(&b, '\\');
                i++;
            } else {
                ls_buf_putc(&b, c);
            }
        }
        if (md) {
            pcre2_match_data_free(md);
        }
        last = me;
        if (me == ms) {
            if (ms < s->n) {
                ls_buf_putc(&b, s->s[ms]);
            }
            last = me + 1;
            pos = me + 1;
        } else {
            pos = me;
        }
        if (!global) {
            break;
        }
    }
    if (last < s->n) {
        ls_buf_append(&b, s->s + last, s->n - last);
    }
    out = vstr(e, b.p ? b.p : "", b.len, true);
    ls_buf_release(&b);
    return out;
}

static struct val eval(struct env *e, const struct node *n);

static struct val index_val(struct env *e, const struct val *r, const struct val *args, size_t na)
{
    int64_t len;

    if (r->t == V_HASH) {
        return na == 1 ? hash_get(e, r, &args[0]) : bad(e);
    }
    if (r->t != V_ARR && r->t != V_STR) {
        return bad(e);
    }
    len = r->t == V_ARR ? (int64_t)r->na : (int64_t)r->n;
    if (na == 1 && args[0].t == V_INT) {
        int64_t i = args[0].i < 0 ? args[0].i + len : args[0].i;
        if (i < 0 || i >= len) {
            return vnil();
        }
        return r->t == V_ARR ? r->a[i] : vstr(e, r->s + i, 1, false);
    }
    if ((na == 1 && args[0].t == V_RANGE) || (na == 2 && args[0].t == V_INT && args[1].t == V_INT)) {
        int64_t lo, hi;
        if (na == 1) {
            if (args[0].a[0].t != V_INT || (args[0].a[1].t != V_INT && args[0].a[1].t != V_NIL)) {
                return bad(e);
            }
            lo = args[0].a[0].i;
            hi = args[0].a[1].t == V_NIL ? -1 : args[0].a[1].i;
            lo = lo < 0 ? lo + len : lo;
            hi = hi < 0 ? hi + len : hi;
            if (args[0].excl) {
                hi--;
            }
        } else {
            lo = args[0].i < 0 ? args[0].i + len : args[0].i;
            hi = lo + args[1].i - 1;
            if (args[1].i < 0) {
                return vnil();
            }
        }
        if (lo < 0 || lo > len) {
            return vnil();
        }
        if (hi >= len) {
            hi = len - 1;
        }
        if (r->t == V_STR) {
            return vstr(e, r->s + lo, hi >= lo ? (size_t)(hi - lo + 1) : 0, false);
        }
        {
            struct val out = arr_new(e, (size_t)(hi >= lo ? hi - lo + 1 : 0));
            for (int64_t i = lo; i <= hi; i++) {
                out.a[out.na++] = r->a[i];
            }
            return out;
        }
    }
    if (na == 1 && r->t == V_STR && args[0].t == V_STR) {
        size_t ms, me;
        return find(&args[0], r->s, r->n, 0, &ms, &me) ? args[0] : vnil();
    }
    if (na == 1 && r->t == V_STR && args[0].t == V_RE) {
        size_t ms, me;
        return re_match(args[0].re, r->s, r->n, 0, &ms, &me) ? vstr(e, r->s + ms, me - ms, false)
                                                              : vnil();
    }
    return bad(e);
}

static struct val call_sym(struct env *e, const struct val *r, const char *m);

static double num(const struct val *v)
{
    return v->t == V_INT ? (double)v->i : v->f;
}

static bool is_num(const struct val *v)
{
    return v->t == V_INT || v->t == V_FLOAT;
}

static struct val method(struct env *e, const struct val *r, const char *m, struct val *args,
                         size_t na, const char *blocksym)
{
    /* methods every object has */
    if (strcmp(m, "nil?") == 0) {
        return vbool(r->t == V_NIL);
    }
    if (strcmp(m, "to_s") == 0 && na == 0) {
        return to_s(e, r);
    }
    if (strcmp(m, "inspect") == 0) {
        struct ls_buf b;
        struct val out;
        ls_buf_init(&b, 0);
        put_inspect(e, &b, r);
        out = vstr(e, b.p ? b.p : "", b.len, true);
        ls_buf_release(&b);
        return out;
    }
    if (strcmp(m, "to_json") == 0) {
        struct ls_buf b;
        struct val out;
        ls_buf_init(&b, 0);
        put_json(e, &b, r);
        out = vstr(e, b.p ? b.p : "", b.len, true);
        ls_buf_release(&b);
        return out;
    }
    if (r->t == V_NIL) {
        if (strcmp(m, "to_i") == 0) {
            return vint(0);
        }
        if (strcmp(m, "to_f") == 0) {
            return vflt(0);
        }
        if (strcmp(m, "to_a") == 0) {
            return arr_new(e, 0);
        }
        return bad(e);          /* NoMethodError on nil */
    }
    if (r->t == V_TIME) {
        struct val t = *r;
        if (strcmp(m, "strftime") == 0 && na == 1 && args[0].t == V_STR) {
            struct ls_buf b;
            struct val out;
            char *fmt = ls_strndup(args[0].s, args[0].n);
            ls_buf_init(&b, 0);
            ls_tmpl_strftime(&b, fmt, r->sec, r->nsec, r->utc);
            ls_free(fmt);
            out = vstr(e, b.p ? b.p : "", b.len, true);
            ls_buf_release(&b);
            return out;
        }
        if (strcmp(m, "to_i") == 0 || strcmp(m, "tv_sec") == 0) {
            return vint(r->sec);
        }
        if (strcmp(m, "to_f") == 0) {
            return vflt((double)r->sec + (double)r->nsec / 1e9);
        }
        if (strcmp(m, "nsec") == 0 || strcmp(m, "tv_nsec") == 0) {
            return vint(r->nsec);
        }
        if (strcmp(m, "usec") == 0 || strcmp(m, "tv_usec") == 0) {
            return vint(r->nsec / 1000);
        }
        if (strcmp(m, "utc") == 0 || strcmp(m, "getutc") == 0 || strcmp(m, "gmtime") == 0) {
            t.utc = true;
            return t;
        }
        if (strcmp(m, "localtime") == 0 || strcmp(m, "getlocal") == 0) {
            t.utc = false;
            return t;
        }
        if ((strcmp(m, "iso8601") == 0 || strcmp(m, "xmlschema") == 0) && na <= 1) {
            struct ls_buf b;
            struct val out;
            int digits = na ? (int)(args[0].t == V_INT ? args[0].i : 0) : 0;
            char fmt[48];
            if (digits > 0) {
                snprintf(fmt, sizeof(fmt), "%%Y-%%m-%%dT%%H:%%M:%%S.%%%dN%s", digits > 9 ? 9 : digits,
                         r->utc ? "Z" : "%:z");
            } else {
                snprintf(fmt, sizeof(fmt), "%%Y-%%m-%%dT%%H:%%M:%%S%s", r->utc ? "Z" : "%:z");
            }
            ls_buf_init(&b, 0);
            ls_tmpl_strftime(&b, fmt, r->sec, r->nsec, r->utc);
            out = vstr(e, b.p ? b.p : "", b.len, true);
            ls_buf_release(&b);
            return out;
        }
        {
            static const char *const parts[] = { "year", "month", "mon", "day", "mday", "hour",
                                                 "min", "sec", "wday", "yday", NULL };
            for (int i = 0; parts[i]; i++) {
                if (strcmp(m, parts[i]) == 0) {
                    struct tm tm;
                    time_t s = (time_t)r->sec;
                    if (r->utc) {
                        gmtime_r(&s, &tm);
                    } else {
                        localtime_r(&s, &tm);
                    }
                    switch (i) {
                    case 0: return vint(tm.tm_year + 1900);
                    case 1: case 2: return vint(tm.tm_mon + 1);
                    case 3: case 4: return vint(tm.tm_mday);
                    case 5: return vint(tm.tm_hour);
                    case 6: return vint(tm.tm_min);
                    case 7: return vint(tm.tm_sec);
                    case 8: return vint(tm.tm_wday);
                    default: return vint(tm.tm_yday + 1);
                    }
                }
            }
        }
        return bad(e);
    }
    if (is_num(r)) {
        if (strcmp(m, "to_i") == 0 || strcmp(m, "to_int") == 0 || strcmp(m, "truncate") == 0) {
            return r->t == V_INT ? *r : (isfinite(r->f) ? vint((int64_t)r->f) : bad(e));
        }
        if (strcmp(m, "to_f") == 0) {
            return vflt(num(r));
        }
        if (strcmp(m, "abs") == 0) {
            return r->t == V_INT ? vint(r->i < 0 ? -r->i : r->i) : vflt(fabs(r->f));
        }
        if (strcmp(m, "floor") == 0 || strcmp(m, "ceil") == 0 || strcmp(m, "round") == 0) {
            if (r->t == V_INT) {
                return *r;
            }
            if (na == 1 && args[0].t == V_INT && args[0].i > 0) {
                double p = pow(10, (double)args[0].i);
                double x = m[0] == 'f' ? floor(r->f * p) : m[0] == 'c' ? ceil(r->f * p)
                                                                       : round(r->f * p);
                return vflt(x / p);
            }
            return vint((int64_t)(m[0] == 'f' ? floor(r->f) : m[0] == 'c' ? ceil(r->f)
                                                                          : round(r->f)));
        }
        if (strcmp(m, "zero?") == 0) {
            return vbool(num(r) == 0);
        }
        if (strcmp(m, "between?") == 0 && na == 2 && is_num(&args[0]) && is_num(&args[1])) {
            return vbool(num(r) >= num(&args[0]) && num(r) <= num(&args[1]));
        }
        if (strcmp(m, "to_s") == 0 && na == 1 && r->t == V_INT && args[0].t == V_INT &&
            args[0].i >= 2 && args[0].i <= 36) {
            char buf[72];
            size_t k = sizeof(buf);
            uint64_t u = r->i < 0 ? (uint64_t)0 - (uint64_t)r->i : (uint64_t)r->i;
            buf[--k] = '\0';
            do {
                buf[--k] = "0123456789abcdefghijklmnopqrstuvwxyz"[u % (uint64_t)args[0].i];
                u /= (uint64_t)args[0].i;
            } while (u);
            if (r->i < 0) {
                buf[--k] = '-';
            }
            return vstr(e, buf + k, strlen(buf + k), true);
        }
        return bad(e);
    }
    if (r->t == V_STR) {
        if (strcmp(m, "to_i") == 0) {
            return vint(str_to_i(r->s, r->n));
        }
        if (strcmp(m, "to_f") == 0) {
            return vflt(str_to_f(r->s, r->n));
        }
        if (strcmp(m, "to_str") == 0 || strcmp(m, "to_sym") == 0 || strcmp(m, "dup") == 0 ||
            strcmp(m, "force_encoding") == 0 || strcmp(m, "encode") == 0 ||
            strcmp(m, "scrub") == 0 || strcmp(m, "b") == 0) {
            return *r;
        }
        if (strcmp(m, "length") == 0 || strcmp(m, "size") == 0) {
            size_t chars = 0;
            for (size_t i = 0; i < r->n; i++) {
                chars += ((unsigned char)r->s[i] & 0xC0) != 0x80;
            }
            return vint((int64_t)chars);
        }
        if (strcmp(m, "bytesize") == 0) {
            return vint((int64_t)r->n);
        }
        if (strcmp(m, "empty?") == 0) {
            return vbool(r->n == 0);
        }
        if (strcmp(m, "upcase") == 0 || strcmp(m, "downcase") == 0 || strcmp(m, "capitalize") == 0 ||
            strcmp(m, "swapcase") == 0) {
            char *o = ls_arena_alloc(e->a, r->n + 1);
            for (size_t i = 0; i < r->n; i++) {
                char c = r->s[i];
                bool up = m[0] == 'u' || (m[0] == 'c' && i == 0) ||
                          (m[0] == 's' && c >= 'a' && c <= 'z');
                o[i] = up ? (char)(c >= 'a' && c <= 'z' ? c - 32 : c)
                          : (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            }
            o[r->n] = '\0';
            return vstr(e, o, r->n, false);
        }
        if (strcmp(m, "strip") == 0 || strcmp(m, "lstrip") == 0 || strcmp(m, "rstrip") == 0 ||
            strcmp(m, "chomp") == 0 || strcmp(m, "chop") == 0) {
            size_t a = 0, b = r->n;
            if (m[0] == 's' || m[0] == 'l') {
                while (a < b && strchr(" \t\n\v\f\r", r->s[a]) && r->s[a]) {
                    a++;
                }
            }
            if (m[0] == 's' || m[0] == 'r') {
                while (b > a && (strchr(" \t\n\v\f\r", r->s[b - 1]) || r->s[b - 1] == '\0')) {
                    b--;
                }
            }
            if (strcmp(m, "chomp") == 0) {
                if (b > a && r->s[b - 1] == '\n') {
                    b--;
                }
                if (b > a && r->s[b - 1] == '\r') {
                    b--;
                }
            }
            if (strcmp(m, "chop") == 0 && b > a) {
                b--;
            }
            return vstr(e, r->s + a, b - a, false);
        }
        if (strcmp(m, "reverse") == 0) {
            char *o = ls_arena_alloc(e->a, r->n + 1);
            for (size_t i = 0; i < r->n; i++) {
                o[i] = r->s[r->n - 1 - i];
            }
            o[r->n] = '\0';
            return vstr(e, o, r->n, false);
        }
        if (strcmp(m, "split") == 0 && na <= 2) {
            if (na >= 1 && args[0].t != V_STR && args[0].t != V_RE && args[0].t != V_NIL) {
                return bad(e);
            }
            return split(e, r, na && args[0].t != V_NIL ? &args[0] : NULL,
                         na == 2 && args[1].t == V_INT ? args[1].i : 0);
        }
        if ((strcmp(m, "gsub") == 0 || strcmp(m, "sub") == 0) && na == 2 &&
            (args[0].t == V_STR || args[0].t == V_RE) && args[1].t == V_STR) {
            return subst(e, r, &args[0], &args[1], m[0] == 'g');
        }
        if ((strcmp(m, "include?") == 0) && na == 1 && args[0].t == V_STR) {
            size_t ms, me;
            return vbool(find(&args[0], r->s, r->n, 0, &ms, &me));
        }
        if ((strcmp(m, "start_with?") == 0 || strcmp(m, "end_with?") == 0) && na >= 1) {
            for (size_t i = 0; i < na; i++) {
                if (args[i].t != V_STR) {
                    return bad(e);
                }
                if (args[i].n <= r->n &&
                    memcmp(m[0] == 's' ? r->s : r->s + r->n - args[i].n, args[i].s, args[i].n) == 0) {
                    return vbool(true);
                }
            }
            return vbool(false);
        }
        if ((strcmp(m, "match?") == 0 || strcmp(m, "match") == 0) && na == 1 &&
            (args[0].t == V_RE || args[0].t == V_STR)) {
            size_t ms, me;
            bool hit;
            if (m[5] == '\0' && args[0].t == V_RE) {
                /* MatchData: [0] the match, [1].. the groups (nil where a group took no part) */
                pcre2_match_data *mdata = pcre2_match_data_create_from_pattern(args[0].re, NULL);
                int rc = pcre2_match(args[0].re, (PCRE2_SPTR)r->s, r->n, 0, 0, mdata, NULL);
                struct val out = vnil();
                if (rc > 0) {
                    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(mdata);
                    uint32_t groups = pcre2_get_ovector_count(mdata);
                    out = arr_new(e, groups);
                    out.md = true;
                    for (uint32_t g = 0; g < groups; g++) {
                        out.a[out.na++] = (int)g < rc && ov[2 * g] != PCRE2_UNSET
                            ? vstr(e, r->s + ov[2 * g], ov[2 * g + 1] - ov[2 * g], false) : vnil();
                    }
                }
                pcre2_match_data_free(mdata);
                return out;
            }
            hit = find(&args[0], r->s, r->n, 0, &ms, &me);
            return m[5] == '?' ? vbool(hit) : hit ? vstr(e, r->s + ms, me - ms, false) : vnil();
        }
        if (strcmp(m, "index") == 0 && na == 1 && (args[0].t == V_STR || args[0].t == V_RE)) {
            size_t ms, me;
            return find(&args[0], r->s, r->n, 0, &ms, &me) ? vint((int64_t)ms) : vnil();
        }
        if (strcmp(m, "slice") == 0 || strcmp(m, "[]") == 0) {
            return index_val(e, r, args, na);
        }
        if ((strcmp(m, "rjust") == 0 || strcmp(m, "ljust") == 0 || strcmp(m, "center") == 0) &&
            (na == 1 || na == 2) && args[0].t == V_INT && (na == 1 || args[1].t == V_STR) &&
            args[0].i <= (int64_t)RBX_MAX_STR) {
            const char *pad = na == 2 ? args[1].s : " ";
            size_t pn = na == 2 ? args[1].n : 1, chars = 0, want = (size_t)(args[0].i < 0 ? 0 : args[0].i);
            struct ls_buf b;
            struct val out;
            size_t left, right;
            if (pn == 0) {
                return bad(e);      /* ArgumentError: zero width padding */
            }
            for (size_t i = 0; i < r->n; i++) {
                chars += ((unsigned char)r->s[i] & 0xC0) != 0x80;
            }
            if (want <= chars) {
                return *r;
            }
            left = m[0] == 'r' ? want - chars : m[0] == 'l' ? 0 : (want - chars) / 2;
            right = want - chars - left;
            ls_buf_init(&b, 0);
            for (size_t i = 0; i < left; i++) {
                ls_buf_putc(&b, pad[i % pn]);
            }
            ls_buf_append(&b, r->s, r->n);
            for (size_t i = 0; i < right; i++) {
                ls_buf_putc(&b, pad[i % pn]);
            }
            out = vstr(e, b.p, b.len, true);
            ls_buf_release(&b);
            return out;
        }
        if (strcmp(m, "count") == 0 && na == 1 && args[0].t == V_STR) {
            /* characters of the set (no ranges or ^ here: refused rather than guessed) */
            int64_t c = 0;
            if (memchr(args[0].s, '-', args[0].n) || (args[0].n && args[0].s[0] == '^')) {
                return bad(e);
            }
            for (size_t i = 0; i < r->n; i++) {
                c += memchr(args[0].s, r->s[i], args[0].n) != NULL;
            }
            return vint(c);
        }
        if (strcmp(m, "scan") == 0 && na == 1 && (args[0].t == V_RE || args[0].t == V_STR)) {
            struct val out = arr_new(e, r->n + 1);
            size_t pos = 0, ms, me;
            while (pos <= r->n && find(&args[0], r->s, r->n, pos, &ms, &me)) {
                out.a[out.na++] = vstr(e, r->s + ms, me - ms, false);
                pos = me > ms ? me : me + 1;
            }
            return out;
        }
        if (strcmp(m, "tr") == 0 && na == 2 && args[0].t == V_STR && args[1].t == V_STR &&
            args[0].n == args[1].n && !memchr(args[0].s, '-', args[0].n) &&
            !(args[0].n && args[0].s[0] == '^')) {
            char *o = ls_arena_alloc(e->a, r->n + 1);
            for (size_t i = 0; i < r->n; i++) {
                const char *hit = memchr(args[0].s, r->s[i], args[0].n);
                o[i] = hit ? args[1].s[hit - args[0].s] : r->s[i];
            }
            o[r->n] = '\0';
            return vstr(e, o, r->n, false);
        }
        if (strcmp(m, "chars") == 0) {
            struct val out = arr_new(e, r->n);
            for (size_t i = 0; i < r->n; i++) {
                out.a[out.na++] = vstr(e, r->s + i, 1, false);
            }
            return out;
        }
        if (strcmp(m, "lines") == 0) {
            struct val nl = vstr(e, "\n", 1, false);
            (void)nl;
            return split(e, r, &nl, -1);
        }
        return bad(e);
    }
    if (r->t == V_ARR) {
        if (strcmp(m, "length") == 0 || strcmp(m, "size") == 0 || (strcmp(m, "count") == 0 && na == 0)) {
            return vint((int64_t)r->na);
        }
        if (strcmp(m, "empty?") == 0) {
            return vbool(r->na == 0);
        }
        if (strcmp(m, "to_a") == 0 || strcmp(m, "dup") == 0) {
            return *r;
        }
        if (strcmp(m, "join") == 0 && na <= 1) {
            struct ls_buf b;
            struct val out;
            ls_buf_init(&b, 0);
            for (size_t i = 0; i < r->na; i++) {
                if (i && na) {
                    struct val sep = to_s(e, &args[0]);
                    ls_buf_append(&b, sep.s, sep.n);
                }
                if (r->a[i].t == V_ARR) {
                    struct val sub = method(e, &r->a[i], "join", args, na, NULL);
                    ls_buf_append(&b, sub.s, sub.n);
                } else {
                    put_to_s(e, &b, &r->a[i]);
                }
            }
            out = vstr(e, b.p ? b.p : "", b.len, true);
            ls_buf_release(&b);
            return out;
        }
        if ((strcmp(m, "first") == 0 || strcmp(m, "last") == 0) && na == 0) {
            return r->na ? r->a[m[0] == 'f' ? 0 : r->na - 1] : vnil();
        }
        if ((strcmp(m, "first") == 0 || strcmp(m, "last") == 0 || strcmp(m, "take") == 0 ||
             strcmp(m, "drop") == 0) && na == 1 && args[0].t == V_INT && args[0].i >= 0) {
            size_t k = (size_t)args[0].i > r->na ? r->na : (size_t)args[0].i;
            struct val out = arr_new(e, r->na);
            size_t from = m[0] == 'l' ? r->na - k : m[0] == 'd' ? k : 0;
            size_t to = m[0] == 'd' ? r->na : from + k;
            for (size_t i = from; i < to; i++) {
                out.a[out.na++] = r->a[i];
            }
            return out;
        }
        if (strcmp(m, "reverse") == 0 || strcmp(m, "compact") == 0 || strcmp(m, "uniq") == 0) {
            struct val out = arr_new(e, r->na);
            for (size_t i = 0; i < r->na; i++) {
                const struct val *x = &r->a[m[0] == 'r' ? r->na - 1 - i : i];
                bool skip = m[0] == 'c' && x->t == V_NIL;
                for (size_t k = 0; m[0] == 'u' && k < out.na && !skip; k++) {
                    skip = eq(e, &out.a[k], x);
                }
                if (!skip) {
                    out.a[out.na++] = *x;
                }
            }
            return out;
        }
        if (strcmp(m, "include?") == 0 && na == 1) {
            for (size_t i = 0; i < r->na; i++) {
                if (eq(e, &r->a[i], &args[0])) {
                    return vbool(true);
                }
            }
            return vbool(false);
        }
        if ((strcmp(m, "map") == 0 || strcmp(m, "collect") == 0 || strcmp(m, "reject") == 0 ||
             strcmp(m, "select") == 0 || strcmp(m, "filter") == 0) && na == 0 && blocksym) {
            struct val out = arr_new(e, r->na);
            for (size_t i = 0; i < r->na; i++) {
                struct val y = call_sym(e, &r->a[i], blocksym);
                if (e->err) {
                    return vnil();
                }
                if (m[0] == 'm' || m[0] == 'c') {
                    out.a[out.na++] = y;
                } else if ((m[0] == 'r') != truthy(&y)) {
                    out.a[out.na++] = r->a[i];
                }
            }
            return out;
        }
        if (strcmp(m, "slice") == 0 || strcmp(m, "[]") == 0) {
            return index_val(e, r, args, na);
        }
        return bad(e);
    }
    if (r->t == V_HASH) {
        if (strcmp(m, "dig") == 0 && na >= 1) {
            struct val cur = *r;
            for (size_t i = 0; i < na && cur.t != V_NIL; i++) {
                if (cur.t == V_HASH) {
                    cur = hash_get(e, &cur, &args[i]);
                } else if (cur.t == V_ARR && args[i].t == V_INT) {
                    cur = index_val(e, &cur, &args[i], 1);
                } else {
                    return bad(e);
                }
            }
            return cur;
        }
        if (strcmp(m, "fetch") == 0 && (na == 1 || na == 2)) {
            struct val v = hash_get(e, r, &args[0]);
            if (v.t == V_NIL) {
                /* a key present with null also gives nil here (fetch would return it) */
                return na == 2 ? args[1] : bad(e);
            }
            return v;
        }
        if ((strcmp(m, "key?") == 0 || strcmp(m, "has_key?") == 0 || strcmp(m, "include?") == 0 ||
             strcmp(m, "member?") == 0) && na == 1 && args[0].t == V_STR) {
            if (r->s == NULL) {
                return vbool(ls_record_get(e->rec, args[0].s, args[0].n) != NULL);
            }
            return vbool(hash_get(e, r, &args[0]).t != V_NIL);
        }
        if (strcmp(m, "keys") == 0 || strcmp(m, "values") == 0 || strcmp(m, "length") == 0 ||
            strcmp(m, "size") == 0 || strcmp(m, "empty?") == 0) {
            struct ls_record tmp;
            const struct ls_record *h = e->rec;
            struct val out;
            ls_record_init(&tmp, e->a);
            if (r->s) {
                if (ls_json_parse_object(r->s, r->n, &tmp) != LS_OK) {
                    ls_record_release(&tmp);
                    return bad(e);
                }
                h = &tmp;
            }
            if (m[0] == 'l' || m[0] == 's' || m[0] == 'e') {
                out = m[0] == 'e' ? vbool(h->nfields == 0) : vint((int64_t)h->nfields);
            } else {
                out = arr_new(e, h->nfields);
                for (unsigned i = 0; i < h->nfields; i++) {
                    out.a[out.na++] = m[0] == 'k'
                        ? vstr(e, h->fields[i].key, h->fields[i].key_len, true)
                        : from_value(e, &h->fields[i].v);
                }
            }
            ls_record_release(&tmp);
            return out;
        }
        if (strcmp(m, "[]") == 0) {
            return index_val(e, r, args, na);
        }
        return bad(e);
    }
    return bad(e);
}

static struct val call_sym(struct env *e, const struct val *r, const char *m)
{
    return method(e, r, m, NULL, 0, NULL);
}

static struct val binop(struct env *e, const char *op, struct val a, struct val b)
{
    if (strcmp(op, "==") == 0 || strcmp(op, "!=") == 0) {
        bool r = eq(e, &a, &b);
        return vbool(op[0] == '=' ? r : !r);
    }
    if (strcmp(op, "=~") == 0 || strcmp(op, "!~") == 0) {
        const struct val *s = a.t == V_RE ? &b : &a, *re = a.t == V_RE ? &a : &b;
        size_t ms, me;
        if (re->t != V_RE) {
            return bad(e);
        }
        if (s->t == V_NIL) {
            return op[0] == '=' ? vnil() : vbool(true);
        }
        if (s->t != V_STR) {
            return bad(e);
        }
        if (re_match(re->re, s->s, s->n, 0, &ms, &me)) {
            return op[0] == '=' ? vint((int64_t)ms) : vbool(false);
        }
        return op[0] == '=' ? vnil() : vbool(true);
    }
    if (op[0] == '<' || op[0] == '>') {
        int c;
        if (is_num(&a) && is_num(&b)) {
            double x = num(&a), y = num(&b);
            c = x < y ? -1 : x > y ? 1 : 0;
        } else if (a.t == V_STR && b.t == V_STR) {
            size_t n = a.n < b.n ? a.n : b.n;
            c = memcmp(a.s, b.s, n);
            c = c ? c : a.n < b.n ? -1 : a.n > b.n ? 1 : 0;
        } else if (a.t == V_TIME && b.t == V_TIME) {
            c = a.sec < b.sec ? -1 : a.sec > b.sec ? 1 : a.nsec < b.nsec ? -1 : a.nsec > b.nsec;
        } else {
            return bad(e);
        }
        return vbool(op[1] == '=' ? (op[0] == '<' ? c <= 0 : c >= 0) : (op[0] == '<' ? c < 0 : c > 0));
    }
    if (op[0] == '+' && a.t == V_STR) {
        char *o;
        if (b.t != V_STR) {
            return bad(e);      /* TypeError: no implicit conversion */
        }
        o = ls_arena_alloc(e->a, a.n + b.n + 1);
        memcpy(o, a.s, a.n);
        memcpy(o + a.n, b.s, b.n);
        o[a.n + b.n] = '\0';
        return vstr(e, o, a.n + b.n, false);
    }
    if (op[0] == '+' && a.t == V_ARR && b.t == V_ARR) {
        struct val out = arr_new(e, a.na + b.na);
        for (size_t i = 0; i < a.na; i++) {
            out.a[out.na++] = a.a[i];
        }
        for (size_t i = 0; i < b.na; i++) {
            out.a[out.na++] = b.a[i];
        }
        return out;
    }
    if (op[0] == '*' && op[1] == '\0' && a.t == V_STR && b.t == V_INT && b.i >= 0 &&
        (a.n == 0 || (uint64_t)b.i <= (uint64_t)RBX_MAX_STR / a.n)) {
        struct ls_buf buf;
        struct val out;
        if (a.n == 0 || b.i == 0) {
            return vstr(e, "", 0, false);
        }
        ls_buf_init(&buf, 0);
        for (int64_t i = 0; i < b.i; i++) {
            ls_buf_append(&buf, a.s, a.n);
        }
        out = vstr(e, buf.p ? buf.p : "", buf.len, true);
        ls_buf_release(&buf);
        return out;
    }
    if (a.t == V_TIME && is_num(&b) && (op[0] == '+' || op[0] == '-')) {
        double d = num(&b) * (op[0] == '+' ? 1 : -1);
        double whole = floor(d);
        a.sec += (int64_t)whole;
        a.nsec += (int32_t)((d - whole) * 1e9);
        if (a.nsec >= 1000000000) {
            a.sec++;
            a.nsec -= 1000000000;
        }
        return a;
    }
    if (a.t == V_TIME && b.t == V_TIME && op[0] == '-') {
        return vflt((double)(a.sec - b.sec) + (double)(a.nsec - b.nsec) / 1e9);
    }
    if (!is_num(&a) || !is_num(&b)) {
        return bad(e);
    }
    if (a.t == V_INT && b.t == V_INT) {
        int64_t x = a.i, y = b.i, r = 0;
        switch (op[0]) {
        case '+':
            if (__builtin_add_overflow(x, y, &r)) {
                return bad(e);
            }
            return vint(r);
        case '-':
            if (__builtin_sub_overflow(x, y, &r)) {
                return bad(e);
            }
            return vint(r);
        case '*':
            if (op[1] == '*') {
                int64_t base = x;
                if (y < 0) {
                    return vflt(pow((double)x, (double)y));
                }
                /* square and multiply: 1 ** (2 ** 62) must not loop */
                r = 1;
                while (y > 0) {
                    if ((y & 1) && __builtin_mul_overflow(r, base, &r)) {
                        return bad(e);      /* Ruby would make a Bignum */
                    }
                    y >>= 1;
                    if (y > 0 && __builtin_mul_overflow(base, base, &base)) {
                        return bad(e);
                    }
                }
                return vint(r);
            }
            if (__builtin_mul_overflow(x, y, &r)) {
                return bad(e);
            }
            return vint(r);
        case '/':
        case '%': {
            int64_t q, m;
            if (y == 0 || (x == INT64_MIN && y == -1)) {
                return bad(e);      /* ZeroDivisionError */
            }
            q = x / y;
            m = x % y;
            if (m != 0 && ((m < 0) != (y < 0))) {   /* Ruby floors */
                q--;
                m += y;
            }
            return vint(op[0] == '/' ? q : m);
        }
        }
        return bad(e);
    }
    {
        double x = num(&a), y = num(&b);
        switch (op[0]) {
        case '+':
            return vflt(x + y);
        case '-':
            return vflt(x - y);
        case '*':
            return vflt(op[1] == '*' ? pow(x, y) : x * y);
        case '/':
            return vflt(x / y);
        case '%':
            return vflt(y == 0 ? NAN : x - y * floor(x / y));
        }
    }
    return bad(e);
}

static struct val lookup(struct env *e, const char *name)
{
    for (size_t i = e->nv; i-- > 0;) {
        if (strcmp(e->names[i], name) == 0) {
            return e->vals[i];
        }
    }
    if (strcmp(name, "record") == 0) {
        struct val v = vnil();
        v.t = V_HASH;
        return v;
    }
    if (strcmp(name, "tag") == 0) {
        return vstr(e, e->rec->tag ? e->rec->tag : "", e->rec->tag_len, false);
    }
    if (strcmp(name, "tag_parts") == 0) {
        return tag_parts(e);
    }
    if (strcmp(name, "tag_prefix") == 0 || strcmp(name, "tag_suffix") == 0) {
        return tag_fixes(e, name[4] == 'p');
    }
    if (strcmp(name, "time") == 0) {
        struct val v = vnil();
        v.t = V_TIME;
        v.sec = e->rec->time.sec;
        v.nsec = e->rec->time.nsec;
        return v;
    }
    if (strcmp(name, "hostname") == 0) {
        return vstr(e, e->host, strlen(e->host), false);
    }
    return bad(e);
}

static struct val eval(struct env *e, const struct node *n)
{
    struct val a, b;

    if (e->err) {
        return vnil();
    }
    switch (n->k) {
    case N_LIT:
        if (n->lit.t == V_RE) {
            struct val v = vnil();
            v.t = V_RE;
            v.re = n->re;
            return v;
        }
        return n->lit;
    case N_VAR:
        if (strcmp(n->name, "Time") == 0 || strcmp(n->name, "ENV") == 0 ||
            strcmp(n->name, "Socket") == 0) {
            struct val v = vnil();
            v.t = V_SYM;        /* the class (the ENV object): only [] or methods follow */
            v.s = n->name;
            v.n = strlen(n->name);
            return v;
        }
        return lookup(e, n->name);
    case N_ASSIGN:
        a = eval(e, n->kids[0]);
        if (e->nv < LS_ARRAY_LEN(e->names)) {
            e->names[e->nv] = n->name;
            e->vals[e->nv++] = a;
        } else {
            return bad(e);
        }
        return a;
    case N_SEQ:
        a = vnil();
        for (size_t i = 0; i < n->nk && !e->err; i++) {
            a = eval(e, n->kids[i]);
        }
        return a;
    case N_INTERP: {
        struct ls_buf buf;
        ls_buf_init(&buf, 0);
        for (size_t i = 0; i < n->nk && !e->err; i++) {
            a = eval(e, n->kids[i]);
            put_to_s(e, &buf, &a);
        }
        a = vstr(e, buf.p ? buf.p : "", buf.len, true);
        ls_buf_release(&buf);
        return a;
    }
    case N_ARRAY: {
        struct val out = arr_new(e, n->nk);
        for (size_t i = 0; i < n->nk; i++) {
            out.a[out.na++] = eval(e, n->kids[i]);
        }
        return out;
    }
    case N_RANGE: {
        struct val r = vnil();
        r.t = V_RANGE;
        r.a = ls_arena_alloc(e->a, 2 * sizeof(struct val));
        r.a[0] = eval(e, n->kids[0]);
        r.a[1] = eval(e, n->kids[1]);
        r.na = 2;
        r.excl = n->lit.excl;
        return r;
    }
    case N_RESCUE:
        a = eval(e, n->kids[0]);
        if (e->err) {
            e->err = false;
            return eval(e, n->kids[1]);
        }
        return a;
    case N_NOT:
        a = eval(e, n->kids[0]);
        return vbool(!truthy(&a));
    case N_NEG:
        a = eval(e, n->kids[0]);
        if (a.t == V_INT) {
            return vint(-a.i);
        }
        if (a.t == V_FLOAT) {
            return vflt(-a.f);
        }
        return bad(e);
    case N_AND:
        a = eval(e, n->kids[0]);
        return truthy(&a) ? eval(e, n->kids[1]) : a;
    case N_OR:
        a = eval(e, n->kids[0]);
        return truthy(&a) ? a : eval(e, n->kids[1]);
    case N_TERN:
        a = eval(e, n->kids[0]);
        return eval(e, n->kids[truthy(&a) ? 1 : 2]);
    case N_BIN:
        a = eval(e, n->kids[0]);
        b = eval(e, n->kids[1]);
        return e->err ? vnil() : binop(e, n->name, a, b);
    case N_INDEX: {
        struct val args[4];
        size_t na = n->nk - 1 > 4 ? 4 : n->nk - 1;
        a = eval(e, n->kids[0]);
        for (size_t i = 0; i < na; i++) {
            args[i] = eval(e, n->kids[i + 1]);
        }
        if (e->err) {
            return vnil();
        }
        if (a.t == V_NIL) {
            return bad(e);      /* undefined method `[]' for nil */
        }
        if (a.t == V_SYM && strcmp(a.s, "ENV") == 0) {
            char *k;
            const char *v;
            if (na != 1 || args[0].t != V_STR) {
                return bad(e);
            }
            k = ls_strndup(args[0].s, args[0].n);
            v = getenv(k);
            ls_free(k);
            return v ? vstr(e, v, strlen(v), true) : vnil();
        }
        if (a.t == V_SYM) {
            return bad(e);
        }
        return index_val(e, &a, args, na);
    }
    case N_CALL: {
        struct val args[8];
        size_t na = n->nk - 1 > 8 ? 8 : n->nk - 1;
        a = eval(e, n->kids[0]);
        for (size_t i = 0; i < na; i++) {
            args[i] = eval(e, n->kids[i + 1]);
        }
        if (e->err) {
            return vnil();
        }
        if (a.t == V_SYM && strcmp(a.s, "Socket") == 0) {
            return strcmp(n->name, "gethostname") == 0 && na == 0
                       ? vstr(e, e->host, strlen(e->host), false) : bad(e);
        }
        if (a.t == V_SYM && strcmp(a.s, "ENV") == 0) {
            if (strcmp(n->name, "fetch") == 0 && (na == 1 || na == 2) && args[0].t == V_STR) {
                char *k = ls_strndup(args[0].s, args[0].n);
                const char *v = getenv(k);
                ls_free(k);
                return v ? vstr(e, v, strlen(v), true) : na == 2 ? args[1] : bad(e);
            }
            return bad(e);
        }
        if (a.t == V_SYM && strcmp(a.s, "Time") == 0) {
            if (strcmp(n->name, "now") == 0 && na == 0) {
                struct timespec ts;
                struct val t = vnil();
                clock_gettime(CLOCK_REALTIME, &ts);
                t.t = V_TIME;
                t.sec = ts.tv_sec;
                t.nsec = (int32_t)ts.tv_nsec;
                return t;
            }
            if (strcmp(n->name, "at") == 0 && na == 1 && (is_num(&args[0]) || args[0].t == V_TIME)) {
                struct val t = vnil();
                t.t = V_TIME;
                if (args[0].t == V_TIME) {
                    t.sec = args[0].sec;
                    t.nsec = args[0].nsec;
                } else if (args[0].t == V_INT) {
                    t.sec = args[0].i;
                } else {
                    double w = floor(args[0].f);
                    t.sec = (int64_t)w;
                    t.nsec = (int32_t)((args[0].f - w) * 1e9);
                }
                return t;
            }
            return bad(e);
        }
        return method(e, &a, n->name, args, na, n->blocksym);
    }
    }
    return bad(e);
}

static struct ls_value to_value(struct env *e, const struct val *v)
{
    switch (v->t) {
    case V_NIL:
        return ls_vnull();
    case V_BOOL:
        return ls_vbool(v->b);
    case V_INT:
        return ls_vint(v->i);
    case V_FLOAT:
        return ls_vfloat(v->f);
    case V_STR:
        return ls_vstr(v->s, v->n);
    case V_ARR:
    case V_HASH: {
        struct ls_buf b;
        struct ls_value lv;
        ls_buf_init(&b, 0);
        put_json(e, &b, v);
        lv.type = LS_V_JSON;
        lv.u.s.p = ls_arena_memdup(e->a, b.p ? b.p : "null", b.p ? b.len : 4);
        lv.u.s.len = b.p ? b.len : 4;
        ls_buf_release(&b);
        return lv;
    }
    default: {
        struct val s = to_s(e, v);
        return ls_vstr(s.s, s.n);
    }
    }
}

bool rbx_eval(const struct rbx *x, const struct ls_record *rec, const char *hostname,
              struct ls_value *out)
{
    struct env e;
    struct val v;

    memset(&e, 0, sizeof(e));
    e.rec = rec;
    e.a = rec->arena;
    e.host = hostname ? hostname : "";
    v = eval(&e, x->root);
    if (e.err) {
        *out = ls_vnull();
        return false;
    }
    *out = to_value(&e, &v);
    return true;
}
