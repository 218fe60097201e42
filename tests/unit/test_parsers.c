/*
 * test_parsers.c - the parser layer (agent/parser.c) and every parser
 * plugin, with real-world lines: nginx combined (IPv6, x_forwarded_for,
 * HTTP/2.0, 64 KB URL, non-ASCII), apache2, apache_error, ltsv from an
 * nginx ltsv log_format, json, csv, tsv, syslog 3164/5424, multiline Java
 * stack traces, MySQL 5.7 and MariaDB slow logs, plus malformed input for
 * each parser (declined, never a crash).
 *
 * Set LS_BENCH=1 to also time the nginx parser on 1M synthetic lines.
 */
#include <check.h>

#include "plugin.h"
#include "parser.h"
#include "conf.h"
#include "timefmt.h"

struct tp {
    struct ls_conf *conf;
    struct ls_instance *ins;
    struct ls_arena arena;
    struct ls_record rec;
};

static char err[512];

static struct tp *tp_new_sec(const char *text, const char *secname, const char *type)
{
    struct tp *t = ls_calloc(1, sizeof(*t));
    struct ls_conf_section *sec;

    err[0] = '\0';
    t->conf = ls_conf_load_string("t.conf", text, strlen(text), err, sizeof(err));
    ck_assert_msg(t->conf != NULL, "conf: %s", err);
    sec = ls_conf_child(t->conf->root, secname);
    ck_assert_ptr_nonnull(sec);
    t->ins = ls_instance_create(NULL, NULL, LS_PLUGIN_PARSER, type, sec, err, sizeof(err));
    ck_assert_msg(t->ins != NULL, "create %s: %s", type, err);
    ls_arena_init(&t->arena, 4096);
    ls_record_init(&t->rec, &t->arena);
    return t;
}

static struct tp *tp_new(const char *type, const char *body)
{
    char text[8192];
    snprintf(text, sizeof(text), "<parse>\n  @type %s\n%s</parse>\n", type, body);
    return tp_new_sec(text, "parse", type);
}

/* Expect creation to fail (config error). */
static void tp_bad_config(const char *type, const char *body)
{
    char text[8192];
    struct ls_conf *conf;
    struct ls_instance *ins;

    snprintf(text, sizeof(text), "<parse>\n  @type %s\n%s</parse>\n", type, body);
    conf = ls_conf_load_string("t.conf", text, strlen(text), err, sizeof(err));
    ck_assert_ptr_nonnull(conf);
    err[0] = '\0';
    ins = ls_instance_create(NULL, NULL, LS_PLUGIN_PARSER, type, ls_conf_child(conf->root, "parse"),
                             err, sizeof(err));
    ck_assert_msg(ins == NULL, "%s with '%s' should be a config error", type, body);
    ck_assert_msg(strstr(err, "t.conf:") != NULL, "error names file:line: %s", err);
    ls_conf_destroy(conf);
}

static void tp_free(struct tp *t)
{
    ls_instance_destroy(t->ins);
    ls_record_release(&t->rec);
    ls_arena_release(&t->arena);
    ls_conf_destroy(t->conf);
    ls_free(t);
}

static int tp_parse_n(struct tp *t, const char *line, size_t len)
{
    ls_record_clear(&t->rec);
    ls_arena_reset(&t->arena);
    t->rec.time.sec = -12345;
    t->rec.time.nsec = 0;
    return ls_parser_parse(t->ins, line, len, &t->rec);
}

static int tp_parse(struct tp *t, const char *line)
{
    return tp_parse_n(t, line, strlen(line));
}

static int tp_flush(struct tp *t)
{
    ls_record_clear(&t->rec);
    ls_arena_reset(&t->arena);
    t->rec.time.sec = -12345;
    return ls_parser_flush(t->ins, &t->rec);
}

static const struct ls_field *getf(struct tp *t, const char *key)
{
    return ls_record_get(&t->rec, key, strlen(key));
}

static void expect_str(struct tp *t, const char *key, const char *want)
{
    const struct ls_field *f = getf(t, key);
    ck_assert_msg(f != NULL, "field '%s' missing", key);
    ck_assert_msg(f->v.type == LS_V_STR, "field '%s' type %d, want string", key, f->v.type);
    ck_assert_msg(f->v.u.s.len == strlen(want) && memcmp(f->v.u.s.p, want, f->v.u.s.len) == 0,
                  "field '%s' = '%.*s', want '%s'", key, (int)f->v.u.s.len, f->v.u.s.p, want);
}

static void expect_int(struct tp *t, const char *key, int64_t want)
{
    const struct ls_field *f = getf(t, key);
    ck_assert_msg(f != NULL, "field '%s' missing", key);
    ck_assert_msg(f->v.type == LS_V_INT, "field '%s' type %d, want int", key, f->v.type);
    ck_assert_int_eq(f->v.u.i, want);
}

static void expect_float(struct tp *t, const char *key, double want)
{
    const struct ls_field *f = getf(t, key);
    ck_assert_msg(f != NULL, "field '%s' missing", key);
    ck_assert_msg(f->v.type == LS_V_FLOAT, "field '%s' type %d, want float", key, f->v.type);
    ck_assert_double_eq_tol(f->v.u.f, want, 1e-9);
}

static void expect_null(struct tp *t, const char *key)
{
    const struct ls_field *f = getf(t, key);
    ck_assert_msg(f != NULL, "field '%s' missing", key);
    ck_assert_msg(f->v.type == LS_V_NULL, "field '%s' type %d, want null", key, f->v.type);
}

static void expect_absent(struct tp *t, const char *key)
{
    ck_assert_msg(getf(t, key) == NULL, "field '%s' should be absent", key);
}

static void expect_keys(struct tp *t, const char *const *keys, unsigned n)
{
    unsigned i;
    ck_assert_int_eq(t->rec.nfields, n);
    for (i = 0; i < n; i++) {
        ck_assert_msg(t->rec.fields[i].key_len == strlen(keys[i]) &&
                      memcmp(t->rec.fields[i].key, keys[i], strlen(keys[i])) == 0,
                      "field %u is '%.*s', want '%s'", i, (int)t->rec.fields[i].key_len,
                      t->rec.fields[i].key, keys[i]);
    }
}

static bool slice_of(struct tp *t, const char *key, const char *buf, size_t len)
{
    const struct ls_field *f = getf(t, key);
    return f && f->v.type == LS_V_STR && f->v.u.s.p >= buf && f->v.u.s.p + f->v.u.s.len <= buf + len;
}

#define T0 1795262400   /* 2026-11-21T12:00:00Z */

/* ---- nginx ---- */

START_TEST(test_nginx_combined)
{
    struct tp *t = tp_new("nginx", "");
    static const char *const keys[] = { "remote", "host", "user", "method", "path", "code", "size",
                                        "referer", "agent" };
    const char *l1 = "203.0.113.5 - - [21/Nov/2026:21:00:00 +0900] \"GET /index.html HTTP/1.1\" "
                     "200 612 \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\"";

    ck_assert_int_eq(tp_parse(t, l1), LS_OK);
    expect_keys(t, keys, 9);
    expect_str(t, "remote", "203.0.113.5");
    expect_str(t, "host", "-");
    expect_str(t, "user", "-");
    expect_str(t, "method", "GET");
    expect_str(t, "path", "/index.html");
    expect_str(t, "code", "200");
    expect_str(t, "size", "612");
    expect_str(t, "referer", "-");
    expect_str(t, "agent", "Mozilla/5.0 (X11; Linux x86_64)");
    expect_absent(t, "http_x_forwarded_for");
    expect_absent(t, "time");
    ck_assert_int_eq(t->rec.time.sec, T0);
    ck_assert_int_eq(t->rec.time.nsec, 0);
    ck_assert(slice_of(t, "agent", l1, strlen(l1)));   /* zero-copy */

    /* IPv6 client, HTTP/2.0, a user, x_forwarded_for present */
    ck_assert_int_eq(tp_parse(t, "2001:db8::1 - alice [21/Nov/2026:12:00:00 +0000] \"POST "
                                 "/api/v1/items?id=1&x=%20y HTTP/2.0\" 201 0 \"https://example.com/a\" "
                                 "\"curl/8.5.0\" \"198.51.100.7, 10.0.0.1\""), LS_OK);
    expect_str(t, "remote", "2001:db8::1");
    expect_str(t, "user", "alice");
    expect_str(t, "method", "POST");
    expect_str(t, "path", "/api/v1/items?id=1&x=%20y");
    expect_str(t, "referer", "https://example.com/a");
    expect_str(t, "http_x_forwarded_for", "198.51.100.7, 10.0.0.1");
    ck_assert_int_eq(t->rec.time.sec, T0);

    /* x_forwarded_for "-" (nginx writes it quoted) */
    ck_assert_int_eq(tp_parse(t, "10.0.0.1 - - [21/Nov/2026:12:00:00 +0000] \"GET / HTTP/1.1\" 304 "
                                 "0 \"-\" \"ua\" \"-\""), LS_OK);
    expect_str(t, "http_x_forwarded_for", "-");

    /* a bad request nginx logs as "-" with status 400; no referer/agent part */
    ck_assert_int_eq(tp_parse(t, "10.0.0.1 - - [21/Nov/2026:12:00:00 +0000] \"-\" 400 0"), LS_OK);
    expect_str(t, "method", "-");
    expect_absent(t, "path");
    expect_absent(t, "agent");

    /* request without protocol */
    ck_assert_int_eq(tp_parse(t, "10.0.0.1 - - [21/Nov/2026:12:00:00 +0000] \"GET /x\" 200 1 \"-\" "
                                 "\"-\""), LS_OK);
    expect_str(t, "path", "/x");

    /* non-ASCII path (UTF-8 and an invalid byte) stays bytes */
    ck_assert_int_eq(tp_parse(t, "10.0.0.1 - - [21/Nov/2026:12:00:00 +0000] \"GET /日本語/\xff\xfe "
                                 "HTTP/1.1\" 200 1 \"-\" \"-\""), LS_OK);
    expect_str(t, "path", "/日本語/\xff\xfe");
    tp_free(t);
}
END_TEST

START_TEST(test_nginx_long_and_malformed)
{
    struct tp *t = tp_new("nginx", "");
    size_t n = 64 * 1024, i;
    char *line = ls_malloc(n + 512);
    int len;
    const struct ls_field *f;

    len = snprintf(line, 200, "10.0.0.1 - - [21/Nov/2026:12:00:00 +0000] \"GET /");
    for (i = 0; i < n; i++) {
        line[len++] = (char)('a' + i % 26);
    }
    len += snprintf(line + len, 200, " HTTP/1.1\" 414 0 \"-\" \"-\"");
    ck_assert_int_eq(tp_parse_n(t, line, (size_t)len), LS_OK);
    f = getf(t, "path");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(f->v.u.s.len, n + 1);
    expect_str(t, "code", "414");
    ls_free(line);

    /* fluentd's regex stops [^"]* at a \" inside the user agent: the line does not match */
    ck_assert_int_eq(tp_parse(t, "10.0.0.1 - - [21/Nov/2026:12:00:00 +0000] \"GET / HTTP/1.1\" 200 1 "
                                 "\"-\" \"Mozilla \\\"quoted\\\" x\""), LS_DECLINED);
    ck_assert_str_eq(ls_parser_error(t->ins), "pattern not matched");
    ck_assert_int_eq(tp_parse(t, "not an access log line"), LS_DECLINED);
    ck_assert_int_eq(tp_parse(t, ""), LS_DECLINED);
    ck_assert_int_eq(tp_parse_n(t, "\0\0\0", 3), LS_DECLINED);
    /* matches the regex, but the time does not parse: invalid record */
    ck_assert_int_eq(tp_parse(t, "10.0.0.1 - - [32/Nov/2026:12:00:00 +0000] \"GET / HTTP/1.1\" 200 1 "
                                 "\"-\" \"-\""), LS_DECLINED);
    ck_assert_str_eq(ls_parser_error(t->ins), "invalid time format");
    ck_assert_int_eq(tp_parse(t, "10.0.0.1 - - [yesterday] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\""),
                     LS_DECLINED);
    ck_assert_uint_ge(t->ins->metrics.errors, 5);
    tp_free(t);
}
END_TEST

START_TEST(test_nginx_types_and_options)
{
    struct tp *t = tp_new("nginx", "  types code:integer,size:integer,remote:string\n"
                                   "  keep_time_key true\n");
    struct tp *u = tp_new("nginx", "  null_value_pattern /^-$/\n  time_key nothere\n"
                                   "  estimate_current_event false\n");
    const char *l = "203.0.113.5 - - [21/Nov/2026:21:00:00 +0900] \"GET / HTTP/1.1\" 200 - \"-\" \"ua\"";

    ck_assert_int_eq(tp_parse(t, l), LS_OK);
    expect_int(t, "code", 200);
    expect_int(t, "size", 0);             /* Ruby's "-".to_i */
    expect_str(t, "time", "21/Nov/2026:21:00:00 +0900");
    ck_assert_int_eq(t->rec.time.sec, T0);
    ck_assert_int_eq(tp_parse(u, l), LS_OK);
    expect_null(u, "host");
    expect_null(u, "size");
    expect_str(u, "code", "200");
    expect_str(u, "time", "21/Nov/2026:21:00:00 +0900");   /* time_key points elsewhere */
    ck_assert_int_eq(u->rec.time.sec, -12345);              /* left as the caller set it */
    tp_free(t);
    tp_free(u);
}
END_TEST


/*
 * The nginx parser's hand-written fast path must agree with fluentd's regex
 * (run through the regexp parser) on every line: generated from tricky
 * pieces and by mutating real lines.
 */
#define NGINX_RE "/^(?<remote>[^ ]*) (?<host>[^ ]*) (?<user>[^ ]*) \\[(?<time>[^\\]]*)\\] " \
    "\"(?<method>\\S+)(?: +(?<path>[^\\\"]*?)(?: +\\S*)?)?\" (?<code>[^ ]*) (?<size>[^ ]*)" \
    "(?: \"(?<referer>[^\\\"]*)\" \"(?<agent>[^\\\"]*)\"(?:\\s+\\\"?(?<http_x_forwarded_for>" \
    "[^\\\"]*)\\\"?)?)?$/"

static void same_records(struct tp *a, struct tp *b, const char *line, size_t len)
{
    unsigned i;

    ck_assert_msg(a->rec.nfields == b->rec.nfields, "nfields %u vs %u for '%.*s'", a->rec.nfields,
                  b->rec.nfields, (int)len, line);
    for (i = 0; i < a->rec.nfields; i++) {
        const struct ls_field *x = &a->rec.fields[i], *y = &b->rec.fields[i];
        ck_assert_msg(x->key_len == y->key_len && memcmp(x->key, y->key, x->key_len) == 0 &&
                      x->v.type == y->v.type && x->v.u.s.len == y->v.u.s.len &&
                      memcmp(x->v.u.s.p, y->v.u.s.p, x->v.u.s.len) == 0,
                      "field %u: '%.*s'='%.*s' vs '%.*s'='%.*s' for line '%.*s'", i,
                      (int)x->key_len, x->key, (int)x->v.u.s.len, x->v.u.s.p, (int)y->key_len,
                      y->key, (int)y->v.u.s.len, y->v.u.s.p, (int)len, line);
    }
    ck_assert_int_eq(a->rec.time.sec, b->rec.time.sec);
}

START_TEST(test_nginx_fast_path_matches_regex)
{
    struct tp *fast = tp_new("nginx", "  keep_time_key true\n");
    struct tp *slow = tp_new("regexp", "  expression " NGINX_RE "\n  keep_time_key true\n"
                                       "  time_format %d/%b/%Y:%H:%M:%S %z\n");
    static const char *const pieces[] = {
        " ", "  ", "\"", "[", "]", "-", "GET", "/p", "/a b", "HTTP/1.1", "200", "\t", "x", " \"",
        "\" \"", "\" ", "21/Nov/2026:12:00:00 +0000", "\\\"", "1.2.3.4", "\r", "\n", "\"-\"",
    };
    static const char *const bases[] = {
        "203.0.113.5 - - [21/Nov/2026:12:00:00 +0000] \"GET /index.html HTTP/1.1\" 200 612 \"-\" \"Mozilla/5.0 (X11)\"",
        "::1 - u [21/Nov/2026:12:00:00 +0000] \"POST /a b  c HTTP/2.0\" 201 0 \"r\" \"ua\" \"1.1.1.1, 2.2.2.2\"",
        "1.1.1.1 - - [21/Nov/2026:12:00:00 +0000] \"GET /x\" 200 1 \"-\" \"-\"  10.0.0.1",
        "1.1.1.1 - - [21/Nov/2026:12:00:00 +0000] \"GET  /x  y  \" 200 1",
    };
    unsigned seed = 2024;
    char line[512];
    int i, fast_ok = 0;

    for (i = 0; i < 200000; i++) {
        size_t len = 0;
        int ra, rb;
        if (i % 2 == 0) {
            /* mutate a real line: a few random edits with interesting bytes */
            const char *b = bases[(size_t)rand_r(&seed) % LS_ARRAY_LEN(bases)];
            int k, edits = 1 + rand_r(&seed) % 3;
            len = strlen(b);
            memcpy(line, b, len);
            for (k = 0; k < edits; k++) {
                const char *pc = pieces[(size_t)rand_r(&seed) % LS_ARRAY_LEN(pieces)];
                size_t pl = strlen(pc), at = (size_t)rand_r(&seed) % (len + 1);
                int op = rand_r(&seed) % 3;
                if (op == 0 && len + pl < sizeof(line)) {          /* insert */
                    memmove(line + at + pl, line + at, len - at);
                    memcpy(line + at, pc, pl);
                    len += pl;
                } else if (op == 1 && at < len) {                  /* delete a byte */
                    memmove(line + at, line + at + 1, len - at - 1);
                    len--;
                } else if (at < len) {                             /* replace a byte */
                    line[at] = pc[0];
                }
            }
        } else {
            /* build from pieces around a valid skeleton */
            int k, n = 5 + rand_r(&seed) % 25;
            len = (size_t)snprintf(line, sizeof(line), "1.2.3.4 - - [21/Nov/2026:12:00:00 +0000] \"");
            for (k = 0; k < n; k++) {
                const char *pc = pieces[(size_t)rand_r(&seed) % LS_ARRAY_LEN(pieces)];
                size_t pl = strlen(pc);
                if (len + pl >= sizeof(line)) {
                    break;
                }
                memcpy(line + len, pc, pl);
                len += pl;
            }
        }
        ra = tp_parse_n(fast, line, len);
        rb = tp_parse_n(slow, line, len);
        ck_assert_msg(ra == rb, "rc %d vs regex %d for '%.*s'", ra, rb, (int)len, line);
        if (ra == LS_OK) {
            fast_ok++;
            same_records(fast, slow, line, len);
        }
    }
    ck_assert_int_gt(fast_ok, 10000);   /* the comparison covered many matching lines */
    tp_free(fast);
    tp_free(slow);
}
END_TEST

/* ---- apache ---- */

START_TEST(test_apache2)
{
    struct tp *t = tp_new("apache2", "");
    static const char *const keys[] = { "host", "user", "method", "path", "code", "size",
                                        "referer", "agent" };

    ck_assert_int_eq(tp_parse(t, "192.168.0.1 - - [28/Feb/2013:12:00:00 +0900] \"GET / HTTP/1.1\" 200 "
                                 "777 \"-\" \"Opera/12.0\""), LS_OK);
    expect_keys(t, keys, 8);
    expect_str(t, "host", "192.168.0.1");
    expect_null(t, "user");
    expect_str(t, "method", "GET");
    expect_str(t, "path", "/");
    expect_int(t, "code", 200);
    expect_int(t, "size", 777);
    expect_null(t, "referer");
    expect_str(t, "agent", "Opera/12.0");
    ck_assert_int_eq(t->rec.time.sec, 1362020400);
    /* \" inside the agent is allowed by apache2's regex; size "-" is null */
    ck_assert_int_eq(tp_parse(t, "::1 - bob [28/Feb/2013:12:00:00 +0900] \"GET /a\\\"b HTTP/1.1\" 304 "
                                 "- \"http://r/\" \"Mozilla \\\"x\\\"\""), LS_OK);
    expect_str(t, "user", "bob");
    expect_str(t, "path", "/a\\\"b");
    expect_null(t, "size");
    expect_str(t, "agent", "Mozilla \\\"x\\\"");
    /* no referer/agent part: keys present as null */
    ck_assert_int_eq(tp_parse(t, "1.2.3.4 - - [28/Feb/2013:12:00:00 +0900] \"GET / HTTP/1.0\" 0 12"),
                     LS_OK);
    expect_null(t, "code");
    expect_null(t, "agent");
    ck_assert_int_eq(tp_parse(t, "garbage"), LS_DECLINED);
    tp_free(t);

    t = tp_new("apache", "");
    ck_assert_int_eq(tp_parse(t, "192.168.0.1 - - [28/Feb/2013:12:00:00 +0900] \"GET / HTTP/1.1\" 200 "
                                 "777 \"-\" \"Opera/12.0\""), LS_OK);
    expect_str(t, "code", "200");
    expect_str(t, "user", "-");
    tp_free(t);
}
END_TEST

START_TEST(test_apache_error)
{
    struct tp *t = tp_new("apache_error", "  utc true\n");

    ck_assert_int_eq(tp_parse(t, "[Wed Oct 11 14:32:52 2000] [error] [client 127.0.0.1] client denied "
                                 "by server configuration: /export/home/live/ap/htdocs/test"), LS_OK);
    expect_str(t, "level", "error");
    expect_str(t, "client", "127.0.0.1");
    expect_absent(t, "pid");
    expect_str(t, "message", "client denied by server configuration: /export/home/live/ap/htdocs/test");
    ck_assert_int_eq(t->rec.time.sec, 971274772);
    ck_assert_int_eq(tp_parse(t, "[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 1234:tid 5678] "
                                 "AH00037: Symbolic link not allowed"), LS_OK);
    expect_str(t, "level", "core:error");
    expect_str(t, "pid", "1234:tid 5678");
    ck_assert_int_eq(t->rec.time.nsec, 123456000);
    ck_assert_int_eq(tp_parse(t, "no brackets"), LS_DECLINED);
    tp_free(t);
}
END_TEST

/* ---- regexp ---- */

START_TEST(test_regexp)
{
    struct tp *t = tp_new("regexp", "  expression /^(?<key>\\w+)=(?<val>\\h+)(?: (?<opt>x))?$/i\n"
                                    "  types val:string\n");
    struct tp *m = tp_new("regexp", "  expression /^(?<a>.+)$/m\n");
    struct tp *f = tp_new("regexp", "  format /^(?<time>[^ ]+) (?<msg>.*)$/\n"
                                    "  time_format %Y-%m-%dT%H:%M:%S%z\n");
    struct tp *n = tp_new("regexp", "  expression ^(?<n>\\d+)$\n  types n:integer\n");
    /* Ruby takes group names PCRE2 refuses (a space, a leading digit, over 32 bytes); a
     * td-agent file of bind9 logs has (?<Client IP>...). Back references follow them. */
    struct tp *sp = tp_new("regexp", "  expression /^(?<Client IP>[^#]+)#(?<1st>\\d+) "
                                     "(?<a_name_that_is_longer_than_32_bytes>\\w+) "
                                     "(?<Client IP>x)?\\k<1st>$/\n");

    ck_assert_int_eq(tp_parse(sp, "192.0.2.1#53 q 53"), LS_OK);
    expect_str(sp, "Client IP", "192.0.2.1");
    expect_str(sp, "1st", "53");
    expect_str(sp, "a_name_that_is_longer_than_32_bytes", "q");
    ck_assert_int_eq(tp_parse(sp, "192.0.2.1#53 q 54"), LS_DECLINED);
    tp_free(sp);

    ck_assert_int_eq(tp_parse(t, "Abc=DEADbeef"), LS_OK);
    expect_str(t, "key", "Abc");
    expect_str(t, "val", "DEADbeef");
    expect_absent(t, "opt");                 /* a group that did not take part is left out */
    ck_assert_int_eq(tp_parse(t, "abc=xyz"), LS_DECLINED);   /* \h is a hex digit in Ruby */
    ck_assert_int_eq(tp_parse(t, "ABC=12 X"), LS_OK);        /* i flag */
    expect_str(t, "opt", "X");
    ck_assert_int_eq(tp_parse(m, "two\nlines"), LS_OK);       /* m = dot matches newline */
    expect_str(m, "a", "two\nlines");
    ck_assert_int_eq(tp_parse(f, "2026-11-21T12:00:00Z hello"), LS_OK);
    expect_str(f, "msg", "hello");
    ck_assert_int_eq(f->rec.time.sec, T0);
    ck_assert_int_eq(tp_parse(n, "0042"), LS_OK);
    expect_int(n, "n", 42);
    tp_free(t);
    tp_free(m);
    tp_free(f);
    tp_free(n);
    tp_bad_config("regexp", "");
    tp_bad_config("regexp", "  expression /(unclosed/\n");
    tp_bad_config("regexp", "  expression /^no names$/\n");
    tp_bad_config("regexp", "  expression /^(?<a>.)$/\n  types a:widget\n");
    tp_bad_config("regexp", "  expression /^(?<a>.)$/\n  time_format %Q\n");
    tp_bad_config("regexp", "  expression /^(?<a>.)$/\n  timezone Nowhere/Land\n");
}
END_TEST

START_TEST(test_types_and_time_types)
{
    struct tp *t = tp_new("ltsv", "  types i:integer,f:float,b:bool,b2:bool,a:array,a2:array:|,"
                                  "d:time:%Y-%m-%d,s:string\n  time_key t\n  time_type unixtime\n");
    struct tp *fl = tp_new("ltsv", "  time_type float\n");
    struct tp *mx = tp_new("ltsv", "  time_type mixed\n  time_format %d/%b/%Y:%H:%M:%S %z\n"
                                   "  time_format_fallbacks unixtime,%Y-%m-%d %H:%M:%S\n  utc true\n");
    struct tp *tz = tp_new("ltsv", "  time_format %Y-%m-%d %H:%M:%S\n  timezone Asia/Tokyo\n");
    struct tp *ne = tp_new("ltsv", "  null_empty_string true\n");
    const struct ls_field *fa;

    ck_assert_int_eq(tp_parse(t, "t:1795262400\ti: -12abc\tf:3.5x\tb:YES\tb2:no\ta:x,y,,z\t"
                                 "a2:p|q\td:2026-11-21\ts:plain"), LS_OK);
    ck_assert_int_eq(t->rec.time.sec, T0);
    expect_int(t, "i", -12);
    expect_float(t, "f", 3.5);
    ck_assert(getf(t, "b")->v.type == LS_V_BOOL && getf(t, "b")->v.u.b);
    ck_assert(getf(t, "b2")->v.type == LS_V_BOOL && !getf(t, "b2")->v.u.b);
    fa = getf(t, "a");
    ck_assert_int_eq(fa->v.type, LS_V_JSON);
    ck_assert_int_eq((int)fa->v.u.s.len, 16);
    ck_assert(memcmp(fa->v.u.s.p, "[\"x\",\"y\",\"\",\"z\"]", 16) == 0);
    fa = getf(t, "a2");
    ck_assert(fa->v.u.s.len == 9 && memcmp(fa->v.u.s.p, "[\"p\",\"q\"]", 9) == 0);
    expect_int(t, "d", T0 - 12 * 3600);
    expect_str(t, "s", "plain");
    /* unixtime of a text that is no number and no date: fluentd's "soon".to_i, 0, the record
     * kept; "12abc" is 12 */
    ck_assert_int_eq(tp_parse(t, "t:soon"), LS_OK);
    ck_assert_int_eq(t->rec.time.sec, 0);
    ck_assert_int_eq(tp_parse(t, "t: 1_2abc"), LS_OK);
    ck_assert_int_eq(t->rec.time.sec, 12);
    /* a types time that does not parse is nil, the record kept (->(v){ timep.parse(v) rescue
     * nil } in fluentd's parser.rb) */
    ck_assert_int_eq(tp_parse(t, "t:1\td:yesterday"), LS_OK);
    expect_null(t, "d");
    {
        /* time:[timezone:]format as fluentd splits it: unixtime/float are time types, a
         * first part that is no timezone belongs to the format; the value is the EventTime's
         * seconds */
        struct tp *z = tp_new("ltsv", "  types u:time:unixtime,f:time:float,"
                                      "j:time:Asia/Tokyo:%Y-%m-%d %H:%M:%S,p:time:+09:%d/%m/%Y\n");
        ck_assert_int_eq(tp_parse(z, "u:1795262400.9\tf:1795262400.5\tj:2026-11-21 21:00:00\t"
                                     "p:21/11/2026"), LS_OK);
        expect_int(z, "u", T0);
        expect_int(z, "f", T0);
        expect_int(z, "j", T0);
        expect_int(z, "p", T0 - 21 * 3600);
        tp_free(z);
    }

    ck_assert_int_eq(tp_parse(fl, "time:1795262400.123456789"), LS_OK);
    ck_assert_int_eq(fl->rec.time.sec, T0);
    ck_assert_int_eq(fl->rec.time.nsec, 123456789);
    ck_assert_int_eq(tp_parse(mx, "time:21/Nov/2026:12:00:00 +0000"), LS_OK);
    ck_assert_int_eq(mx->rec.time.sec, T0);
    ck_assert_int_eq(tp_parse(mx, "time:1795262400"), LS_OK);
    ck_assert_int_eq(mx->rec.time.sec, T0);
    ck_assert_int_eq(tp_parse(mx, "time:2026-11-21 12:00:00"), LS_OK);
    ck_assert_int_eq(mx->rec.time.sec, T0);
    /* every fallback failed, and one is unixtime: fluentd's "tomorrow".to_i, 0 */
    ck_assert_int_eq(tp_parse(mx, "time:tomorrow"), LS_OK);
    ck_assert_int_eq(mx->rec.time.sec, 0);
    ck_assert_int_eq(tp_parse(tz, "time:2026-11-21 21:00:00"), LS_OK);
    ck_assert_int_eq(tz->rec.time.sec, T0);
    ck_assert_int_eq(tp_parse(ne, "a:\tb:x"), LS_OK);
    expect_null(ne, "a");
    expect_str(ne, "b", "x");
    tp_free(t);
    tp_free(fl);
    tp_free(mx);
    tp_free(tz);
    tp_free(ne);
}
END_TEST

/* ---- ltsv, json, csv, tsv, none ---- */

START_TEST(test_ltsv_nginx)
{
    struct tp *t = tp_new("ltsv", "");
    /* nginx: log_format ltsv "time:$time_local\thost:$remote_addr\treq:$request\tstatus:$status..." */
    const char *l = "time:21/Nov/2026:21:00:00 +0900\thost:203.0.113.5\tforwardedfor:-\t"
                    "req:GET /search?q=a:b HTTP/1.1\tstatus:200\tsize:612\treferer:-\t"
                    "ua:Mozilla/5.0\treqtime:0.005\tapptime:-\tvhost:example.com\tbroken\t\t";

    ck_assert_int_eq(tp_parse(t, l), LS_OK);
    ck_assert_int_eq(t->rec.time.sec, T0);
    expect_absent(t, "time");
    expect_str(t, "host", "203.0.113.5");
    expect_str(t, "req", "GET /search?q=a:b HTTP/1.1");   /* split once on ':' */
    expect_str(t, "reqtime", "0.005");
    expect_absent(t, "broken");
    ck_assert_int_eq(t->rec.nfields, 10);
    ck_assert(slice_of(t, "ua", l, strlen(l)));
    ck_assert_int_eq(tp_parse(t, "a:1\ta:2"), LS_OK);       /* repeated label: last wins */
    expect_str(t, "a", "2");
    ck_assert_int_eq(t->rec.nfields, 1);
    tp_free(t);

    t = tp_new("ltsv", "  delimiter_pattern /\\s+/\n  label_delimiter =\n");
    ck_assert_int_eq(tp_parse(t, "a=1   b=2 c=x=y"), LS_OK);
    expect_str(t, "a", "1");
    expect_str(t, "b", "2");
    expect_str(t, "c", "x=y");
    tp_free(t);
}
END_TEST

START_TEST(test_json)
{
    struct tp *t = tp_new("json", "");
    struct tp *s = tp_new("json", "  time_format %Y-%m-%dT%H:%M:%S%z\n  keep_time_key true\n");
    const struct ls_field *f;

    ck_assert_int_eq(tp_parse(t, "{\"time\":1795262400.5,\"level\":\"info\",\"nested\":{\"a\":[1,2],"
                                 "\"b\":{\"c\":null}},\"msg\":\"he said \\\"hi\\\"\",\"n\":-3,\"ok\":true}"),
                     LS_OK);
    ck_assert_int_eq(t->rec.time.sec, T0);
    ck_assert_int_eq(t->rec.time.nsec, 500000000);
    expect_absent(t, "time");
    expect_str(t, "level", "info");
    expect_str(t, "msg", "he said \"hi\"");
    expect_int(t, "n", -3);
    f = getf(t, "nested");
    ck_assert_int_eq(f->v.type, LS_V_JSON);
    ck_assert(f->v.u.s.len == strlen("{\"a\":[1,2],\"b\":{\"c\":null}}"));
    ck_assert_int_eq(tp_parse(t, "{\"time\":\"1795262400\"}"), LS_OK);
    ck_assert_int_eq(t->rec.time.sec, T0);
    ck_assert_int_eq(tp_parse(t, "{\"time\":\"2026-11-21T12:00:00Z\"}"), LS_OK);
    ck_assert_int_eq(t->rec.time.sec, T0);
    ck_assert_int_eq(tp_parse(t, "{\"a\":1"), LS_DECLINED);
    ck_assert_int_eq(tp_parse(t, "[1,2]"), LS_DECLINED);
    ck_assert_int_eq(tp_parse(t, "{\"a\":1} trailing"), LS_DECLINED);
    ck_assert_int_eq(tp_parse(t, "{\"a\":\"\xff\xfe\"}"), LS_OK);
    ck_assert_int_eq(tp_parse(t, "not json"), LS_DECLINED);
    ck_assert_int_eq(tp_parse(s, "{\"time\":\"2026-11-21T21:00:00+0900\",\"x\":1}"), LS_OK);
    ck_assert_int_eq(s->rec.time.sec, T0);
    expect_str(s, "time", "2026-11-21T21:00:00+0900");
    ck_assert_int_eq(tp_parse(s, "{\"time\":\"21 Nov\"}"), LS_DECLINED);
    tp_free(t);
    tp_free(s);
}
END_TEST

START_TEST(test_csv_tsv_none)
{
    struct tp *c = tp_new("csv", "  keys a,b,c,d\n");
    struct tp *c2 = tp_new("csv", "  keys [\"x\",\"y\"]\n  delimiter ;\n  time_key x\n"
                                  "  time_format %Y-%m-%d\n  utc true\n");
    struct tp *t = tp_new("tsv", "  keys a,b,c\n");
    struct tp *n = tp_new("none", "");
    struct tp *n2 = tp_new("none", "  message_key log\n");
    int64_t before, after;
    int32_t ns;

    ck_assert_int_eq(tp_parse(c, "1,\"x, \"\"y\"\"\",,\"\""), LS_OK);
    expect_str(c, "a", "1");
    expect_str(c, "b", "x, \"y\"");
    expect_null(c, "c");
    expect_str(c, "d", "");
    ck_assert_int_eq(tp_parse(c, "only"), LS_OK);
    expect_str(c, "a", "only");
    expect_null(c, "d");
    ck_assert_int_eq(tp_parse(c, "1,2,3,4,5,6\r"), LS_OK);
    expect_str(c, "d", "4");
    ck_assert_int_eq(c->rec.nfields, 4);
    ck_assert_int_eq(tp_parse(c, "\"unclosed,1"), LS_DECLINED);
    ck_assert_int_eq(tp_parse(c, "a\"b,1"), LS_DECLINED);
    ck_assert_int_eq(tp_parse(c, "\"a\"b,1"), LS_DECLINED);
    ck_assert_int_eq(tp_parse(c2, "2026-11-21;\"q;r\""), LS_OK);
    ck_assert_int_eq(c2->rec.time.sec, T0 - 12 * 3600);
    expect_str(c2, "y", "q;r");

    ck_assert_int_eq(tp_parse(t, "1\t\t3\t4"), LS_OK);
    expect_str(t, "a", "1");
    expect_str(t, "b", "");
    expect_str(t, "c", "3\t4");
    ck_assert_int_eq(tp_parse(t, "1"), LS_OK);
    expect_null(t, "b");

    ls_wall_now(&before, &ns);
    ck_assert_int_eq(tp_parse(n, "time:anything at all"), LS_OK);
    ls_wall_now(&after, &ns);
    expect_str(n, "message", "time:anything at all");
    ck_assert(n->rec.time.sec >= before && n->rec.time.sec <= after);
    ck_assert_int_eq(tp_parse(n2, ""), LS_OK);
    expect_str(n2, "log", "");
    tp_free(c);
    tp_free(c2);
    tp_free(t);
    tp_free(n);
    tp_free(n2);
    tp_bad_config("csv", "");
}
END_TEST

/* ---- syslog ---- */

START_TEST(test_syslog)
{
    struct tp *t = tp_new("syslog", "  utc true\n");
    struct tp *p = tp_new("syslog", "  with_priority true\n  utc true\n");
    struct tp *r = tp_new("syslog", "  message_format rfc5424\n");
    struct tp *a = tp_new("syslog", "  message_format auto\n  utc true\n");
    struct tm tm;
    time_t now = time(NULL);
    int64_t want;

    gmtime_r(&now, &tm);
    want = ls_timegm(tm.tm_year + 1900, 11, 21, 12, 0, 0);
    ck_assert_int_eq(tp_parse(t, "Nov 21 12:00:00 web01 sshd[1234]: Accepted publickey for root"),
                     LS_OK);
    expect_str(t, "host", "web01");
    expect_str(t, "ident", "sshd");
    expect_str(t, "pid", "1234");
    expect_str(t, "message", "Accepted publickey for root");
    ck_assert_int_eq(t->rec.time.sec, want);
    ck_assert_int_eq(tp_parse(t, "Nov  1 02:03:04 host kernel: [ 1.0] boot"), LS_OK);
    expect_str(t, "ident", "kernel");
    expect_absent(t, "pid");
    expect_str(t, "message", "[ 1.0] boot");
    ck_assert_int_eq(tp_parse(t, "garbage"), LS_DECLINED);

    ck_assert_int_eq(tp_parse(p, "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick"),
                     LS_OK);
    expect_int(p, "pri", 34);
    expect_str(p, "ident", "su");
    expect_str(p, "message", "'su root' failed for lonvick");
    ck_assert_int_eq(tp_parse(p, "Oct 11 22:14:15 mymachine su: no pri"), LS_DECLINED);

    ck_assert_int_eq(tp_parse(r, "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - "
                                 "ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\"] An "
                                 "application event log entry"), LS_OK);
    expect_int(r, "pri", 165);
    expect_str(r, "host", "mymachine.example.com");
    expect_str(r, "ident", "evntslog");
    expect_str(r, "pid", "-");
    expect_str(r, "msgid", "ID47");
    expect_str(r, "extradata", "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\"]");
    expect_str(r, "message", "An application event log entry");
    expect_absent(r, "time");
    ck_assert_int_eq(r->rec.time.sec, 1065910455);
    ck_assert_int_eq(r->rec.time.nsec, 3000000);
    ck_assert_int_eq(tp_parse(r, "<13>1 2003-10-11T22:14:15Z host app 123 - - no fraction"), LS_OK);
    ck_assert_int_eq(r->rec.time.sec, 1065910455);
    expect_str(r, "extradata", "-");
    ck_assert_int_eq(tp_parse(r, "<13>1 not-a-time host app 123 - - x"), LS_DECLINED);

    ck_assert_int_eq(tp_parse(a, "<13>1 2003-10-11T22:14:15Z host app 123 - - auto 5424"), LS_OK);
    expect_str(a, "message", "auto 5424");
    ck_assert_int_eq(tp_parse(a, "Nov 21 12:00:00 web01 app: auto 3164"), LS_OK);
    expect_str(a, "message", "auto 3164");
    tp_free(t);
    tp_free(p);
    tp_free(r);
    tp_free(a);
}
END_TEST

/* ---- multiline ---- */

START_TEST(test_multiline_java)
{
    struct tp *t = tp_new("multiline",
                          "  format_firstline /^\\d{4}-\\d{2}-\\d{2}/\n"
                          "  format1 /^(?<time>\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2}) /\n"
                          "  format2 /(?<level>\\w+) (?<message>.*)/\n"
                          "  time_format %Y-%m-%d %H:%M:%S\n  utc true\n");

    ck_assert(ls_parser_is_multiline(t->ins));
    ck_assert_int_eq(tp_parse(t, "\tat orphan.Line(before first)"), LS_DECLINED);
    ck_assert_int_eq(tp_parse(t, "2026-11-21 12:00:00 ERROR Unhandled exception"), LS_AGAIN);
    ck_assert_int_eq(tp_parse(t, "java.lang.NullPointerException: boom"), LS_AGAIN);
    ck_assert_int_eq(tp_parse(t, "\tat com.example.Foo.bar(Foo.java:42)"), LS_AGAIN);
    ck_assert_int_eq(tp_parse(t, "\tat com.example.Main.main(Main.java:7)"), LS_AGAIN);
    ck_assert_int_eq(tp_parse(t, "2026-11-21 12:00:01 INFO next"), LS_OK);
    expect_str(t, "level", "ERROR");
    expect_str(t, "message", "Unhandled exception\njava.lang.NullPointerException: boom\n"
                             "\tat com.example.Foo.bar(Foo.java:42)\n"
                             "\tat com.example.Main.main(Main.java:7)");
    ck_assert_int_eq(t->rec.time.sec, T0);
    ck_assert_int_eq(tp_flush(t), LS_OK);
    expect_str(t, "message", "next");
    ck_assert_int_eq(t->rec.time.sec, T0 + 1);
    ck_assert_int_eq(tp_flush(t), LS_DECLINED);
    /* a first line whose block does not match the format */
    ck_assert_int_eq(tp_parse(t, "2026-11-21 bad"), LS_AGAIN);
    ck_assert_int_eq(tp_parse(t, "2026-11-21 12:00:02 WARN ok"), LS_DECLINED);
    {
        size_t n;
        const char *txt = ls_parser_declined_text(t->ins, &n);
        ck_assert(txt && n == 14 && memcmp(txt, "2026-11-21 bad", 14) == 0);
    }
    ck_assert_int_eq(tp_flush(t), LS_OK);
    expect_str(t, "level", "WARN");
    tp_free(t);
}
END_TEST

START_TEST(test_multiline_v012_and_cap)
{
    /* v0.12 flat style: the parser reads the <source> section itself */
    struct tp *t = tp_new_sec("<source>\n  format multiline\n"
                              "  format_firstline /^Started/\n"
                              "  format1 /^Started (?<method>\\S+) \"(?<path>[^\"]+)\"/\n"
                              "  format2 /.*Completed (?<code>\\d+)/\n</source>\n",
                              "source", "multiline");
    struct tp *nf = tp_new("multiline", "  format1 /^BEGIN(?<body>.*?)END$/\n  max_bytes 1k\n");
    char big[300];
    int i;

    ck_assert_int_eq(tp_parse(t, "Started GET \"/\" for 127.0.0.1"), LS_AGAIN);
    ck_assert_int_eq(tp_parse(t, "Processing by HomeController#index"), LS_AGAIN);
    ck_assert_int_eq(tp_parse(t, "Completed 200 OK in 5ms"), LS_AGAIN);
    ck_assert_int_eq(tp_flush(t), LS_OK);
    expect_str(t, "method", "GET");
    expect_str(t, "path", "/");
    expect_str(t, "code", "200");

    /* no format_firstline: lines are joined until the whole matches */
    ck_assert_int_eq(tp_parse(nf, "BEGIN a"), LS_AGAIN);
    ck_assert_int_eq(tp_parse(nf, "b END"), LS_OK);
    expect_str(nf, "body", " a\nb ");
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(tp_parse(nf, "BEGIN"), LS_AGAIN);
    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(tp_parse(nf, big), LS_AGAIN);
    }
    ck_assert_int_eq(tp_parse(nf, big), LS_DECLINED);    /* over max_bytes: dropped */
    ck_assert_int_eq(tp_parse(nf, "BEGIN ok END"), LS_OK);
    expect_str(nf, "body", " ok ");
    tp_free(t);
    tp_free(nf);
    tp_bad_config("multiline", "  format2 /(?<a>x)/\n");
    tp_bad_config("multiline", "  format1 /(?<a>x)/\n  format3 /y/\n");
}
END_TEST

/* ---- mysql_slow ---- */

static int feed(struct tp *t, const char *const *lines, size_t n, int *nrec)
{
    size_t i;
    int rc = 0;

    *nrec = 0;
    for (i = 0; i < n; i++) {
        rc = tp_parse(t, lines[i]);
        ck_assert_msg(rc == LS_AGAIN || rc == LS_OK, "line %zu '%s': rc %d", i, lines[i], rc);
        if (rc == LS_OK) {
            (*nrec)++;
        }
    }
    return rc;
}

START_TEST(test_mysql_slow_57)
{
    struct tp *t = tp_new("mysql_slow", "  utc true\n");
    static const char *const lines[] = {
        "/usr/sbin/mysqld, Version: 5.7.44-log (MySQL Community Server (GPL)). started with:",
        "Tcp port: 3306  Unix socket: /var/run/mysqld/mysqld.sock",
        "Time                 Id Command    Argument",
        "# Time: 2019-04-28T10:28:16.515000Z",
        "# User@Host: app[app] @ web01 [10.0.0.5]  Id:     3",
        "# Query_time: 2.000270  Lock_time: 0.000097 Rows_sent: 1  Rows_examined: 0",
        "use shop;",
        "SET timestamp=1556447296;",
        "SELECT SLEEP(2);",
    };
    static const char *const keys[] = { "user", "host", "host_ip", "thread_id", "query_time",
                                        "lock_time", "rows_sent", "rows_examined", "db", "sql" };
    int n;

    ck_assert(ls_parser_is_multiline(t->ins));
    feed(t, lines, LS_ARRAY_LEN(lines), &n);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(tp_parse(t, "# Time: 2019-04-28T10:29:00.100000Z"), LS_OK);
    expect_keys(t, keys, 10);
    expect_str(t, "user", "app");
    expect_str(t, "host", "web01");
    expect_str(t, "host_ip", "10.0.0.5");
    expect_int(t, "thread_id", 3);
    expect_float(t, "query_time", 2.000270);
    expect_float(t, "lock_time", 0.000097);
    expect_int(t, "rows_sent", 1);
    expect_int(t, "rows_examined", 0);
    expect_str(t, "db", "shop");
    expect_str(t, "sql", "SELECT SLEEP(2);");
    ck_assert_int_eq(t->rec.time.sec, 1556447296);
    ck_assert_int_eq(t->rec.time.nsec, 515000000);

    ck_assert_int_eq(tp_parse(t, "# User@Host: root[root] @ localhost []  Id:     4"), LS_AGAIN);
    ck_assert_int_eq(tp_parse(t, "# Query_time: 1.500000  Lock_time: 0.000000 Rows_sent: 0  "
                                 "Rows_examined: 1000"), LS_AGAIN);
    ck_assert_int_eq(tp_parse(t, "SET timestamp=1556447340;"), LS_AGAIN);
    ck_assert_int_eq(tp_parse(t, "UPDATE items"), LS_AGAIN);
    ck_assert_int_eq(tp_parse(t, "SET price = price * 1.1"), LS_AGAIN);
    ck_assert_int_eq(tp_parse(t, "WHERE id > 10;"), LS_AGAIN);
    ck_assert_int_eq(tp_flush(t), LS_OK);
    expect_str(t, "host", "localhost");
    expect_absent(t, "host_ip");
    expect_str(t, "db", "shop");          /* carried over: the server logs `use` on change */
    expect_str(t, "sql", "UPDATE items\nSET price = price * 1.1\nWHERE id > 10;");
    expect_int(t, "rows_examined", 1000);
    ck_assert_int_eq(t->rec.time.sec, 1556447340);
    ck_assert_int_eq(t->rec.time.nsec, 100000000);   /* # Time names the same second */
    ck_assert_int_eq(tp_flush(t), LS_DECLINED);

    /* an administrator command is SQL, not a header */
    ck_assert_int_eq(tp_parse(t, "# User@Host: root[root] @ localhost []"), LS_AGAIN);
    ck_assert_int_eq(tp_parse(t, "# Query_time: 0.1  Lock_time: 0 Rows_sent: 0  Rows_examined: 0"),
                     LS_AGAIN);
    ck_assert_int_eq(tp_parse(t, "SET timestamp=1556447350;"), LS_AGAIN);
    ck_assert_int_eq(tp_parse(t, "# administrator command: Quit;"), LS_AGAIN);
    ck_assert_int_eq(tp_flush(t), LS_OK);
    expect_str(t, "sql", "# administrator command: Quit;");
    /* body before any header */
    ck_assert_int_eq(tp_parse(t, "SELECT 1;"), LS_DECLINED);
    tp_free(t);
}
END_TEST

START_TEST(test_mysql_slow_mariadb)
{
    struct tp *t = tp_new("mysql_slow", "  utc true\n");
    static const char *const lines[] = {
        "# Time: 191028 10:28:16",
        "# User@Host: app[app] @  [192.168.1.20]",
        "# Thread_id: 9  Schema: test  QC_hit: No",
        "# Query_time: 0.000188  Lock_time: 0.000062  Rows_sent: 1  Rows_examined: 1",
        "# Rows_affected: 0  Bytes_sent: 57",
        "SET timestamp=1572258496;",
        "SELECT * FROM t WHERE id = 1;",
        "# Time: 191028  9:30:00",
        "# User@Host: app[app] @  [192.168.1.20]",
        "# Thread_id: 10  Schema:   QC_hit: No",
        "# Query_time: 3.5  Lock_time: 0.0  Rows_sent: 0  Rows_examined: 0",
        "SELECT SLEEP(3.5);",
    };
    int n;

    feed(t, lines, 7, &n);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(tp_parse(t, lines[7]), LS_OK);
    expect_str(t, "user", "app");
    expect_str(t, "host", "");
    expect_str(t, "host_ip", "192.168.1.20");
    expect_int(t, "thread_id", 9);
    expect_str(t, "schema", "test");
    expect_str(t, "qc_hit", "No");
    expect_float(t, "query_time", 0.000188);
    expect_int(t, "rows_affected", 0);
    expect_int(t, "bytes_sent", 57);
    expect_str(t, "db", "test");
    expect_str(t, "sql", "SELECT * FROM t WHERE id = 1;");
    ck_assert_int_eq(t->rec.time.sec, 1572258496);
    feed(t, lines + 8, 4, &n);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(tp_flush(t), LS_OK);
    expect_str(t, "schema", "");
    expect_absent(t, "db");
    expect_float(t, "query_time", 3.5);
    /* no SET timestamp: the old-style # Time (YYMMDD H:MM:SS, in the parser's zone) */
    ck_assert_int_eq(t->rec.time.sec, ls_timegm(2019, 10, 28, 9, 30, 0));
    tp_free(t);
}
END_TEST

/* ---- robustness: every parser, hostile input ---- */

static const char *const all_types[] = { "regexp", "nginx", "apache", "apache2", "apache_error",
                                         "syslog", "json", "ltsv", "csv", "tsv", "none",
                                         "multiline", "mysql_slow" };

static struct tp *tp_any(const char *type)
{
    if (strcmp(type, "regexp") == 0) {
        return tp_new(type, "  expression /^(?<a>[^ ]*) (?<b>.*?)(?<c>x*)+$/\n");
    }
    if (strcmp(type, "csv") == 0 || strcmp(type, "tsv") == 0) {
        return tp_new(type, "  keys a,b,c\n  types a:integer,b:float,c:array\n");
    }
    if (strcmp(type, "multiline") == 0) {
        return tp_new(type, "  format_firstline /^\\S/\n  format1 /^(?<a>\\S+)(?<b>.*)/\n"
                            "  max_bytes 64k\n");
    }
    if (strcmp(type, "syslog") == 0) {
        return tp_new(type, "  message_format auto\n");
    }
    return tp_new(type, "");
}

START_TEST(test_garbage_never_crashes)
{
    unsigned seed = 42;
    size_t big = 1 << 20, k, i;
    char *buf = ls_malloc(big);

    for (k = 0; k < LS_ARRAY_LEN(all_types); k++) {
        struct tp *t = tp_any(all_types[k]);
        for (i = 0; i < 3000; i++) {
            size_t len = (size_t)rand_r(&seed) % 300, j;
            int rc;
            for (j = 0; j < len; j++) {
                /* mostly bytes that matter to the parsers, some anything */
                static const char interesting[] = " \t\"\\[]:,-/#{}<>0123456789Nov\n\r";
                buf[j] = rand_r(&seed) % 3 ? interesting[(size_t)rand_r(&seed) % (sizeof(interesting) - 1)]
                                           : (char)rand_r(&seed);
            }
            rc = tp_parse_n(t, buf, len);
            ck_assert(rc == LS_OK || rc == LS_DECLINED || rc == LS_AGAIN);
        }
        /* 1 MB line of quotes and spaces (regex backtracking bait) */
        for (i = 0; i < big; i++) {
            buf[i] = i % 3 == 0 ? '"' : (i % 3 == 1 ? ' ' : 'a');
        }
        {
            int rc = tp_parse_n(t, buf, big);
            ck_assert(rc == LS_OK || rc == LS_DECLINED || rc == LS_AGAIN);
            rc = tp_flush(t);
            ck_assert(rc == LS_OK || rc == LS_DECLINED);
        }
        tp_free(t);
    }
    ls_free(buf);
}
END_TEST

START_TEST(test_bench_nginx)
{
    struct tp *t;
    const char *env = getenv("LS_BENCH");
    char line[512];
    int i, n = 1000000, len, ok = 0;
    double t0, dt;

    if (env == NULL || strcmp(env, "1") != 0) {
        return;
    }
    t = tp_new("nginx", "");
    t0 = ls_mono_now();
    for (i = 0; i < n; i++) {
        len = snprintf(line, sizeof(line),
                       "203.0.113.%d - - [21/Nov/2026:%02d:%02d:%02d +0900] \"GET /item/%d?ref=abc "
                       "HTTP/1.1\" 200 %d \"https://example.com/list\" \"Mozilla/5.0 (X11; Linux "
                       "x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\"",
                       i % 250, 12 + i / 360000, i / 6000 % 60, i / 100 % 60, i, 1000 + i % 5000);
        ok += tp_parse_n(t, line, (size_t)len) == LS_OK;
    }
    dt = ls_mono_now() - t0;
    ck_assert_int_eq(ok, n);
    fprintf(stderr, "nginx parser: %d lines in %.3f s = %.0f lines/s (%.0f ns/line, incl. "
            "snprintf of the line)\n", n, dt, n / dt, dt / n * 1e9);
    tp_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("parsers");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    setenv("TZ", "UTC", 1);
    tzset();
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_nginx_combined);
    tcase_add_test(tc, test_nginx_long_and_malformed);
    tcase_add_test(tc, test_nginx_types_and_options);
    tcase_add_test(tc, test_nginx_fast_path_matches_regex);
    tcase_add_test(tc, test_apache2);
    tcase_add_test(tc, test_apache_error);
    tcase_add_test(tc, test_regexp);
    tcase_add_test(tc, test_types_and_time_types);
    tcase_add_test(tc, test_ltsv_nginx);
    tcase_add_test(tc, test_json);
    tcase_add_test(tc, test_csv_tsv_none);
    tcase_add_test(tc, test_syslog);
    tcase_add_test(tc, test_multiline_java);
    tcase_add_test(tc, test_multiline_v012_and_cap);
    tcase_add_test(tc, test_mysql_slow_57);
    tcase_add_test(tc, test_mysql_slow_mariadb);
    tcase_add_test(tc, test_garbage_never_crashes);
    tcase_add_test(tc, test_bench_nginx);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
