/*
 * nginx.c - the `nginx` parser: fluentd's parser_nginx, i.e. a regexp
 * preset for nginx's default "combined" log_format (plus the optional
 * $http_x_forwarded_for that fluentd >= 1.2 accepts after the agent).
 *
 * The regex and the time format are fluentd's, character for character,
 * so lines that fluentd rejects (e.g. a user agent with a \" inside, which
 * ends [^"]* early) are rejected here too. Fields are strings, as in
 * fluentd; add `types code:integer,size:integer` for numbers.
 *
 * Hot path: this is the benchmark's parser, and PCRE2 JIT spends most of
 * its time on the lazy path group. nginx_fast() walks the line once and
 * accepts only shapes for which it can show the regex finds the same
 * match: every group before the request is "up to the next delimiter"
 * (no alternatives), the request's closing quote is its first quote when a
 * space follows it and the request holds a space before it (so neither
 * \S+ nor \S* can run past it), the lazy path ends where the last run of
 * spaces starts if only non-space follows, and the optional tail has two
 * simple forms. Anything else (a line with \n, "-" requests, stray
 * quotes, trailing text) goes to the regex, which then decides. The unit
 * tests compare both on generated and mutated lines.
 */
#include "plugin.h"
#include "parser.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

struct nginx_ctx {
    struct ls_regex *re;
};

static const char nginx_expression[] =
    "^(?<remote>[^ ]*) (?<host>[^ ]*) (?<user>[^ ]*) \\[(?<time>[^\\]]*)\\] "
    "\"(?<method>\\S+)(?: +(?<path>[^\\\"]*?)(?: +\\S*)?)?\" (?<code>[^ ]*) (?<size>[^ ]*)"
    "(?: \"(?<referer>[^\\\"]*)\" \"(?<agent>[^\\\"]*)\""
    "(?:\\s+\\\"?(?<http_x_forwarded_for>[^\\\"]*)\\\"?)?)?$";

static int nginx_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                      size_t errlen)
{
    struct nginx_ctx *ctx = ins->ctx;
    char e[256];

    LS_UNUSED(sec);
    ctx->re = ls_regex_compile(nginx_expression, false, e, sizeof(e));
    if (ctx->re == NULL) {
        snprintf(err, errlen, "nginx parser: %s", e);
        return LS_ERROR;
    }
    return ls_parser_set_defaults(ins, "time", "%d/%b/%Y:%H:%M:%S %z", -1, err, errlen);
}

static void nginx_destroy(struct ls_instance *ins)
{
    struct nginx_ctx *ctx = ins->ctx;
    ls_regex_free(ctx->re);
}

/* PCRE2's \s: space, \t, \n, \v, \f, \r */
static inline bool nginx_ws(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* always inlined: gcc made it a call, ten a line (4% of the text pipeline's instructions) */
static inline __attribute__((always_inline)) void nginx_add(struct ls_record *rec, const char *k,
                                                            size_t klen, const char *p, size_t n)
{
    struct ls_value v = ls_vstr(p, n);
    ls_record_add(rec, k, klen, &v);
}

#define NGINX_ADD(rec, k, p, n) nginx_add((rec), (k), sizeof(k) - 1, (p), (n))

/* Up to the next c from p (NULL if none). Most fields are short (an address, "-", a
 * status): one 16-byte compare finds their end without a call to memchr, which was 7% of
 * the text pipeline's CPU for about ten calls a line. */
static inline const char *nginx_upto(const char *p, const char *end, char c)
{
#ifdef __SSE2__
    if (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8(c)));
        if (m) {
            return p + __builtin_ctz(m);
        }
        p += 16;
    }
#endif
    return memchr(p, c, (size_t)(end - p));
}

/* 1: fields added, same result as the regex. 0: not a shape we prove; use the regex. */
static int nginx_fast(const char *line, size_t len, struct ls_record *rec)
{
    const char *p = line, *end = line + len;
    const char *remote, *host, *user, *time, *rq, *rq_end, *m_end, *path, *path_end, *code;
    const char *size, *size_end, *ref, *ref_end, *agent, *agent_end, *x;
    size_t remote_n, host_n, user_n, time_n, code_n;
    unsigned start = rec->nfields;

    if (memchr(line, '\n', len) != NULL) {
        return 0;
    }
    remote = p;
    if (!(p = nginx_upto(p, end, ' '))) {
        return 0;
    }
    remote_n = (size_t)(p - remote);
    host = ++p;
    if (!(p = nginx_upto(p, end, ' '))) {
        return 0;
    }
    host_n = (size_t)(p - host);
    user = ++p;
    if (!(p = nginx_upto(p, end, ' '))) {
        return 0;
    }
    user_n = (size_t)(p - user);
    p++;
    if (p >= end || *p != '[') {
        return 0;
    }
    time = ++p;
    if (!(p = nginx_upto(p, end, ']'))) {
        return 0;
    }
    time_n = (size_t)(p - time);
    p++;
    if (end - p < 2 || p[0] != ' ' || p[1] != '"') {
        return 0;
    }
    rq = p + 2;
    if (!(rq_end = nginx_upto(rq, end, '"')) || rq_end + 1 >= end || rq_end[1] != ' ') {
        return 0;
    }
    /* method: the non-whitespace run; it must end at a space inside the request */
    for (m_end = rq; m_end < rq_end && !nginx_ws(*m_end); m_end++) {
    }
    if (m_end == rq || m_end == rq_end || *m_end != ' ') {
        return 0;
    }
    path = m_end;
    while (path < rq_end && *path == ' ') {
        path++;
    }
    /* lazy path: ends where the last run of spaces starts, if only \S follows it */
    path_end = rq_end;
    for (x = rq_end; x > path && x[-1] != ' '; x--) {
    }
    if (x > path) {
        const char *y;
        bool all_s = true;
        for (y = x; y < rq_end; y++) {
            if (nginx_ws(*y)) {
                all_s = false;
                break;
            }
        }
        if (all_s) {
            while (x > path && x[-1] == ' ') {
                x--;
            }
            path_end = x;
        }
    }
    p = rq_end + 2;
    code = p;
    if (!(p = nginx_upto(p, end, ' '))) {
        return 0;
    }
    code_n = (size_t)(p - code);
    size = ++p;
    size_end = nginx_upto(p, end, ' ');
    if (size_end == NULL) {
        size_end = end;
        ref = NULL;
        ref_end = agent = agent_end = NULL;
    } else {
        p = size_end;
        if (end - p < 2 || p[1] != '"') {
            return 0;
        }
        ref = p + 2;
        if (!(ref_end = nginx_upto(ref, end, '"')) || end - ref_end < 3 || ref_end[1] != ' ' ||
            ref_end[2] != '"') {
            return 0;
        }
        agent = ref_end + 3;
        if (!(agent_end = nginx_upto(agent, end, '"'))) {
            return 0;
        }
        p = agent_end + 1;
    }
    x = NULL;
    if (ref && p < end) {
        /* (?:\s+"?(?<xff>[^"]*)"?)?$ in its two simple forms */
        const char *q = p, *xe;
        if (!nginx_ws(*q)) {
            return 0;
        }
        while (q < end && nginx_ws(*q)) {
            q++;
        }
        if (q < end && *q == '"') {
            xe = nginx_upto(q + 1, end, '"');
            if (xe == NULL || xe + 1 != end) {
                return 0;
            }
            x = q + 1;
            p = xe;
        } else {
            if (nginx_upto(q, end, '"') != NULL) {
                return 0;
            }
            x = q;
            p = end;
        }
    }
    NGINX_ADD(rec, "remote", remote, remote_n);
    NGINX_ADD(rec, "host", host, host_n);
    NGINX_ADD(rec, "user", user, user_n);
    NGINX_ADD(rec, "time", time, time_n);
    NGINX_ADD(rec, "method", rq, (size_t)(m_end - rq));
    NGINX_ADD(rec, "path", path, (size_t)(path_end - path));
    NGINX_ADD(rec, "code", code, code_n);
    NGINX_ADD(rec, "size", size, (size_t)(size_end - size));
    if (ref) {
        NGINX_ADD(rec, "referer", ref, (size_t)(ref_end - ref));
        NGINX_ADD(rec, "agent", agent, (size_t)(agent_end - agent));
        if (x) {
            NGINX_ADD(rec, "http_x_forwarded_for", x, (size_t)(p - x));
        }
    }
    LS_UNUSED(start);
    return 1;
}

static int nginx_parse(struct ls_instance *ins, const char *line, size_t len,
                       struct ls_record *rec)
{
    struct nginx_ctx *ctx = ins->ctx;

    if (ls_likely(nginx_fast(line, len, rec))) {
        return LS_OK;
    }
    return ls_regex_match_record(ctx->re, line, len, rec);
}

const struct ls_plugin ls_plugin_parser_nginx = {
    .name = "nginx",
    .kind = LS_PLUGIN_PARSER,
    .description = "nginx combined access log (fluentd's nginx regexp)",
    .ctx_size = sizeof(struct nginx_ctx),
    .init = nginx_init,
    .destroy = nginx_destroy,
    .parse = nginx_parse,
};
