/*
 * test_param.c - the parameter binder and value parsers (agent/param.c).
 *
 * The value parsers are checked against fluentd's types.rb arithmetic
 * (sizes in powers of 1024, times in s/m/h/d), written out as constants, and
 * against the garbage we deliberately reject. The binder is driven through
 * real config text (ls_conf_load_string) with a table holding every type,
 * aliases, bounds, required, nullable and no-store rows.
 */
#include <check.h>

#include "conf.h"
#include "param.h"
#include "log.h"

static char err[1024];
static char logbuf[8192];

static void hook(int level, const char *line)
{
    size_t n = strlen(logbuf);
    (void)level;
    snprintf(logbuf + n, sizeof(logbuf) - n, "%s", line);
}

static void setup(void)
{
    logbuf[0] = '\0';
    err[0] = '\0';
    ls_log_set_hook(hook);
    ls_log_level = LS_LOG_WARN;
}

struct ctx {
    char *str;
    char *opt;
    char *secret;
    int64_t count;
    double ratio;
    int64_t size;
    double interval;
    bool flag;
    bool flag2;
    int mode;
    struct ls_strv keys;
    struct ls_kvv tags;
    int64_t bounded;
    double nullable_time;
    int64_t nostore;
};

static const struct ls_param table[] = {
    { "str", LS_P_STR, "def", 0, offsetof(struct ctx, str), "a string", "old_str|older_str", NULL, 0, 0 },
    { "opt", LS_P_STR, "", LS_PF_NULLABLE, offsetof(struct ctx, opt), "optional", NULL, NULL, 0, 0 },
    { "secret", LS_P_SECRET, "topsecretdefault", 0, offsetof(struct ctx, secret), "the key", NULL, NULL,
      0, 0 },
    { "count", LS_P_INT, "10", 0, offsetof(struct ctx, count), "how many", NULL, NULL, 0, 0 },
    { "ratio", LS_P_FLOAT, "0.5", 0, offsetof(struct ctx, ratio), "a ratio", NULL, NULL, 0, 1 },
    { "size", LS_P_SIZE, "8m", 0, offsetof(struct ctx, size), "chunk size", "buffer_chunk_limit", NULL,
      0, 0 },
    { "interval", LS_P_TIME, "60s", 0, offsetof(struct ctx, interval), "flush interval",
      "flush_interval", NULL, 0, 0 },
    { "flag", LS_P_BOOL, "false", 0, offsetof(struct ctx, flag), "a flag", NULL, NULL, 0, 0 },
    { "flag2", LS_P_BOOL, "true", 0, offsetof(struct ctx, flag2), "another | flag", NULL, NULL, 0, 0 },
    { "mode", LS_P_ENUM, "gzip", 0, offsetof(struct ctx, mode), "compression", NULL, "gzip|text|zstd", 0,
      0 },
    { "keys", LS_P_ARRAY, "a,b", 0, offsetof(struct ctx, keys), "keys", NULL, NULL, 0, 0 },
    { "tags", LS_P_HASH, NULL, 0, offsetof(struct ctx, tags), "tags", NULL, NULL, 0, 0 },
    { "bounded", LS_P_INT, "5", 0, offsetof(struct ctx, bounded), "1..10", NULL, NULL, 1, 10 },
    { "ntime", LS_P_TIME, "", LS_PF_NULLABLE, offsetof(struct ctx, nullable_time), "maybe", NULL, NULL, 0,
      0 },
    { "nostore", LS_P_SIZE, "1k", LS_PF_NO_STORE, offsetof(struct ctx, nostore), "read by hand", NULL,
      NULL, 0, 0 },
    LS_PARAM_END
};

static const struct ls_param req_table[] = {
    { "bucket", LS_P_STR, NULL, LS_PF_REQUIRED, offsetof(struct ctx, str), "bucket", "s3_bucket", NULL, 0,
      0 },
    LS_PARAM_END
};

static struct ls_conf *conf;

/* Bind table against "<match x>\n" + body + "</match>". LS_OK/LS_ERROR, err filled. */
static int bind_text(const struct ls_param *t, const char *body, struct ctx *c)
{
    char text[4096];
    struct ls_conf_section *sec;

    snprintf(text, sizeof(text), "<match x>\n%s</match>\n", body);
    ls_conf_destroy(conf);
    conf = ls_conf_load_string("p.conf", text, strlen(text), err, sizeof(err));
    ck_assert_msg(conf != NULL, "conf: %s", err);
    sec = ls_conf_child(conf->root, "match");
    memset(c, 0x5a, sizeof(*c));   /* the binder must set every stored field */
    c->nostore = 777;
    return ls_param_bind(t, sec, c, err, sizeof(err));
}

static void teardown(void)
{
    ls_conf_destroy(conf);
    conf = NULL;
}

START_TEST(test_parse_size)
{
    static const struct { const char *s; int64_t v; } ok[] = {
        { "1024", 1024 }, { "0", 0 }, { "8k", 8192 }, { "8K", 8192 }, { "8m", 8388608 },
        { "256m", 268435456 }, { "1g", 1073741824LL }, { "1G", 1073741824LL },
        { "2t", 2199023255552LL }, { "256MB", 268435456 }, { "10kb", 10240 }, { " 5m ", 5242880 },
    };
    static const char *bad[] = { "", "abc", "m", "1.5m", "8x", "-1", "1mm", "8 m x", "99999999999999999999",
                                 "9000000000t" };
    int64_t v;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        ck_assert_msg(ls_parse_size(ok[i].s, &v) == LS_OK, "'%s'", ok[i].s);
        ck_assert_msg(v == ok[i].v, "'%s' -> %lld", ok[i].s, (long long)v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(ls_parse_size(bad[i], &v) == LS_ERROR, "'%s' accepted", bad[i]);
    }
}
END_TEST

START_TEST(test_parse_time)
{
    static const struct { const char *s; double v; } ok[] = {
        { "10s", 10 }, { "1440m", 86400 }, { "1h", 3600 }, { "1d", 86400 }, { "0.5", 0.5 },
        { "0.1", 0.1 }, { "60", 60 }, { "1.5h", 5400 }, { " 5m ", 300 }, { "-1", -1 },
    };
    static const char *bad[] = { "", "abc", "1h30m", "10x", "1H", "s", "0x10", "1e3", "nan", "inf" };
    double v;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        ck_assert_msg(ls_parse_time(ok[i].s, &v) == LS_OK, "'%s'", ok[i].s);
        ck_assert_msg(v == ok[i].v, "'%s' -> %g", ok[i].s, v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(ls_parse_time(bad[i], &v) == LS_ERROR, "'%s' accepted", bad[i]);
    }
}
END_TEST

START_TEST(test_parse_bool_int_float)
{
    bool b;
    int64_t i;
    double d;

    ck_assert(ls_parse_bool("true", &b) == LS_OK && b);
    ck_assert(ls_parse_bool("yes", &b) == LS_OK && b);
    ck_assert(ls_parse_bool("", &b) == LS_OK && b);
    ck_assert(ls_parse_bool("# comment", &b) == LS_OK && b);
    ck_assert(ls_parse_bool("false", &b) == LS_OK && !b);
    ck_assert(ls_parse_bool("no", &b) == LS_OK && !b);
    ck_assert_int_eq(ls_parse_bool("maybe", &b), LS_ERROR);
    ck_assert_int_eq(ls_parse_bool("1", &b), LS_ERROR);
    ck_assert(ls_parse_int("-42", &i) == LS_OK && i == -42);
    ck_assert(ls_parse_int(" 7 ", &i) == LS_OK && i == 7);
    ck_assert_int_eq(ls_parse_int("12abc", &i), LS_ERROR);
    ck_assert_int_eq(ls_parse_int("", &i), LS_ERROR);
    ck_assert_int_eq(ls_parse_int("99999999999999999999", &i), LS_ERROR);
    ck_assert(ls_parse_float("2.5", &d) == LS_OK && d == 2.5);
    ck_assert_int_eq(ls_parse_float("2.5x", &d), LS_ERROR);
    ck_assert_int_eq(ls_parse_float("nan", &d), LS_ERROR);
}
END_TEST

START_TEST(test_parse_array_hash)
{
    struct ls_strv a;
    struct ls_kvv h;

    ck_assert_int_eq(ls_parse_array("a, b ,c", &a), LS_OK);
    ck_assert_int_eq((int)a.n, 3);
    ck_assert_str_eq(a.v[0], "a");
    ck_assert_str_eq(a.v[1], "b");
    ck_assert_str_eq(a.v[2], "c");
    ls_strv_release(&a);
    ck_assert_int_eq(ls_parse_array("[\"x,y\", 1, true, null, {\"k\":[1]}, \"\\u00e9\\n\"]", &a), LS_OK);
    ck_assert_int_eq((int)a.n, 6);
    ck_assert_str_eq(a.v[0], "x,y");
    ck_assert_str_eq(a.v[1], "1");
    ck_assert_str_eq(a.v[2], "true");
    ck_assert_str_eq(a.v[3], "");
    ck_assert_str_eq(a.v[4], "{\"k\":[1]}");
    ck_assert_str_eq(a.v[5], "\xc3\xa9\n");
    ls_strv_release(&a);
    ck_assert_int_eq(ls_parse_array("", &a), LS_OK);
    ck_assert_int_eq((int)a.n, 0);
    ck_assert_int_eq(ls_parse_array("[]", &a), LS_OK);
    ck_assert_int_eq((int)a.n, 0);
    ck_assert_int_eq(ls_parse_array("[1,", &a), LS_ERROR);
    ck_assert_int_eq(ls_parse_array("[1] x", &a), LS_ERROR);
    ck_assert_int_eq(ls_parse_array("[\"a\" \"b\"]", &a), LS_ERROR);

    ck_assert_int_eq(ls_parse_hash("k1:v1, k2 : v2:with:colons", &h), LS_OK);
    ck_assert_int_eq((int)h.n, 2);
    ck_assert_str_eq(ls_kvv_get(&h, "k1"), "v1");
    ck_assert_str_eq(ls_kvv_get(&h, "k2"), "v2:with:colons");
    ck_assert_ptr_null(ls_kvv_get(&h, "k3"));
    ls_kvv_release(&h);
    ck_assert_int_eq(ls_parse_hash("{\"a\": \"1\", \"b\": 2, \"a\": \"3\"}", &h), LS_OK);
    ck_assert_int_eq((int)h.n, 2);
    ck_assert_str_eq(ls_kvv_get(&h, "a"), "3");
    ck_assert_str_eq(ls_kvv_get(&h, "b"), "2");
    ls_kvv_release(&h);
    ck_assert_int_eq(ls_parse_hash("novalue", &h), LS_ERROR);
    ck_assert_int_eq(ls_parse_hash("{\"a\" 1}", &h), LS_ERROR);
    ck_assert_int_eq(ls_parse_hash("{1: 2}", &h), LS_ERROR);
}
END_TEST

START_TEST(test_bind_defaults)
{
    struct ctx c;

    memset(&c, 0x5a, sizeof(c));
    c.nostore = 777;
    ck_assert_int_eq(ls_param_bind(table, NULL, &c, err, sizeof(err)), LS_OK);
    ck_assert_str_eq(c.str, "def");
    ck_assert_ptr_null(c.opt);
    ck_assert_str_eq(c.secret, "topsecretdefault");
    ck_assert_int_eq(c.count, 10);
    ck_assert(c.ratio == 0.5);
    ck_assert_int_eq(c.size, 8 * 1024 * 1024);
    ck_assert(c.interval == 60);
    ck_assert(!c.flag);
    ck_assert(c.flag2);
    ck_assert_int_eq(c.mode, 0);
    ck_assert_int_eq((int)c.keys.n, 2);
    ck_assert_str_eq(c.keys.v[1], "b");
    ck_assert_int_eq((int)c.tags.n, 0);
    ck_assert_int_eq(c.bounded, 5);
    ck_assert(c.nullable_time == 0);
    ck_assert_int_eq(c.nostore, 777);
    ls_param_release(table, &c);
    ck_assert_ptr_null(c.str);
}
END_TEST

START_TEST(test_bind_values)
{
    struct ctx c;
    int rc = bind_text(table,
                       "  str hello\n"
                       "  opt \"\"\n"
                       "  secret s3cr3t\n"
                       "  count -3\n"
                       "  ratio 0.25\n"
                       "  size 1g\n"
                       "  interval 1440m\n"
                       "  flag\n"
                       "  flag2 no\n"
                       "  mode zstd\n"
                       "  keys [\"tag\", \"time\"]\n"
                       "  tags env:prod,team:ops\n"
                       "  bounded 10\n"
                       "  ntime 2s\n"
                       "  nostore 2k\n",
                       &c);
    ck_assert_msg(rc == LS_OK, "%s", err);
    ck_assert_str_eq(c.str, "hello");
    ck_assert_str_eq(c.opt, "");
    ck_assert_str_eq(c.secret, "s3cr3t");
    ck_assert_int_eq(c.count, -3);
    ck_assert(c.ratio == 0.25);
    ck_assert_int_eq(c.size, 1073741824LL);
    ck_assert(c.interval == 86400);
    ck_assert(c.flag);
    ck_assert(!c.flag2);
    ck_assert_int_eq(c.mode, 2);
    ck_assert_int_eq((int)c.keys.n, 2);
    ck_assert_str_eq(c.keys.v[0], "tag");
    ck_assert_str_eq(ls_kvv_get(&c.tags, "team"), "ops");
    ck_assert_int_eq(c.bounded, 10);
    ck_assert(c.nullable_time == 2);
    ck_assert_int_eq(c.nostore, 777);   /* NO_STORE: validated, marked used, not written */
    ck_assert_int_eq(ls_conf_warn_unused(conf->root), 0);
    ls_param_release(table, &c);
}
END_TEST

START_TEST(test_bind_aliases)
{
    struct ctx c;

    ck_assert_int_eq(bind_text(table, "  old_str via_alias\n  flush_interval 5m\n", &c), LS_OK);
    ck_assert_str_eq(c.str, "via_alias");
    ck_assert(c.interval == 300);
    ck_assert_int_eq(ls_conf_warn_unused(conf->root), 0);
    ls_param_release(table, &c);

    /* both given: the primary name wins, the alias still counts as read */
    ck_assert_int_eq(bind_text(table, "  older_str alias2\n  str primary\n  buffer_chunk_limit 1m\n"
                                      "  size 2m\n", &c), LS_OK);
    ck_assert_str_eq(c.str, "primary");
    ck_assert_int_eq(c.size, 2 * 1024 * 1024);
    ck_assert_int_eq(ls_conf_warn_unused(conf->root), 0);
    ls_param_release(table, &c);

    ck_assert_ptr_eq(ls_param_find(table, "buffer_chunk_limit"), &table[5]);
    ck_assert_ptr_eq(ls_param_find(table, "size"), &table[5]);
    ck_assert_ptr_eq(ls_param_find(table, "older_str"), &table[0]);
    ck_assert_ptr_null(ls_param_find(table, "old"));
    ck_assert_ptr_null(ls_param_find(table, "nope"));
}
END_TEST

static void bind_fails(const char *body, const char *expect)
{
    struct ctx c;
    int rc = bind_text(table, body, &c);
    ck_assert_msg(rc == LS_ERROR, "accepted: %s", body);
    ck_assert_msg(strstr(err, expect) != NULL, "error '%s' lacks '%s'", err, expect);
    ls_param_release(table, &c);   /* must be safe after a failed bind */
}

START_TEST(test_bind_errors)
{
    bind_fails("  size 8x\n", "p.conf:2: invalid value '8x' for 'size' (expected a size like");
    bind_fails("\n\n  interval 1h30m\n", "p.conf:4: invalid value '1h30m' for 'interval' (expected a time");
    bind_fails("  interval abc\n", "expected a time like 10s, 5m, 1h, 1d or 0.5");
    bind_fails("  flag maybe\n", "p.conf:2: invalid value 'maybe' for 'flag' (expected true, yes, false or no)");
    bind_fails("  count 12abc\n", "invalid value '12abc' for 'count' (expected an integer");
    bind_fails("  ratio x\n", "'ratio'");
    bind_fails("  mode lz4\n", "p.conf:2: invalid value 'lz4' for 'mode': valid options are gzip, text, zstd");
    bind_fails("  mode\n", "valid options are gzip, text, zstd");
    bind_fails("  bounded 11\n", "p.conf:2: 'bounded' must be between 1 and 10 (got '11')");
    bind_fails("  bounded 0\n", "'bounded' must be between 1 and 10");
    bind_fails("  ratio 1.5\n", "'ratio' must be between 0 and 1");
}
END_TEST

/* Bounds are printed as they are written: sizes and times with units, not as %g floats
 * ("must be between 5.24288e+06 and 5.36871e+09"). */
START_TEST(test_bounds_printed_with_units)
{
    static const struct ls_param bt[] = {
        { "part", LS_P_SIZE, "16m", 0, offsetof(struct ctx, size), "", NULL, NULL, 5 << 20,
          (double)(5ll << 30) },
        { "odd", LS_P_SIZE, "4096", LS_PF_NO_STORE, offsetof(struct ctx, size), "", NULL, NULL,
          4096, 1e9 },
        { "every", LS_P_TIME, "10s", 0, offsetof(struct ctx, interval), "", NULL, NULL, 0.1, 86400 },
        { "wait", LS_P_TIME, "90", LS_PF_NO_STORE, offsetof(struct ctx, interval), "", NULL, NULL,
          90, 5400 },
        { "n", LS_P_INT, "1", 0, offsetof(struct ctx, count), "", NULL, NULL, 1, 2e6 },
        LS_PARAM_END
    };
    struct ctx c;

    ck_assert_int_eq(bind_text(bt, "  part 1k\n", &c), LS_ERROR);
    ck_assert_msg(strstr(err, "'part' must be between 5m and 5g (got '1k')") != NULL, "%s", err);
    ck_assert_int_eq(bind_text(bt, "  odd 1k\n", &c), LS_ERROR);
    ck_assert_msg(strstr(err, "'odd' must be between 4k and 1000000000 (got '1k')") != NULL, "%s", err);
    ck_assert_int_eq(bind_text(bt, "  every 2d\n", &c), LS_ERROR);
    ck_assert_msg(strstr(err, "'every' must be between 0.1s and 1d (got '2d')") != NULL, "%s", err);
    ck_assert_int_eq(bind_text(bt, "  wait 1s\n", &c), LS_ERROR);
    ck_assert_msg(strstr(err, "'wait' must be between 90s and 90m (got '1s')") != NULL, "%s", err);
    ck_assert_int_eq(bind_text(bt, "  n 0\n", &c), LS_ERROR);
    ck_assert_msg(strstr(err, "'n' must be between 1 and 2000000 (got '0')") != NULL, "%s", err);
}
END_TEST

START_TEST(test_bind_bad_json_value)
{
    struct ctx c;
    /* a hash value that is not a hash */
    ck_assert_int_eq(bind_text(table, "  tags [1,2]\n", &c), LS_ERROR);
    ck_assert_msg(strstr(err, "p.conf:2: invalid value '[1,2]' for 'tags' (expected a JSON object") != NULL,
                  "%s", err);
    ls_param_release(table, &c);
    ck_assert_int_eq(bind_text(table, "  tags novalue\n", &c), LS_ERROR);
    ls_param_release(table, &c);
    ck_assert_int_eq(bind_text(table, "  nostore 1q\n", &c), LS_ERROR);   /* NO_STORE still validates */
    ck_assert_msg(strstr(err, "'nostore'") != NULL, "%s", err);
    ls_param_release(table, &c);
}
END_TEST

START_TEST(test_bind_required_nullable)
{
    struct ctx c;

    ck_assert_int_eq(bind_text(req_table, "  other 1\n", &c), LS_ERROR);
    ck_assert_str_eq(err, "p.conf:1: 'bucket' parameter is required in <match x>");
    ck_assert_int_eq(bind_text(req_table, "  s3_bucket b1\n", &c), LS_OK);
    ck_assert_str_eq(c.str, "b1");
    ls_param_release(req_table, &c);
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(ls_param_bind(req_table, NULL, &c, err, sizeof(err)), LS_ERROR);
    ck_assert_msg(strstr(err, "'bucket' parameter is required") != NULL, "%s", err);

    /* nullable time given "" stays unset; nullable string default "" is NULL */
    ck_assert_int_eq(bind_text(table, "  ntime\n", &c), LS_OK);
    ck_assert(c.nullable_time == 0);
    ck_assert_ptr_null(c.opt);
    ls_param_release(table, &c);
}
END_TEST

START_TEST(test_bind_bad_default)
{
    static const struct ls_param bad[] = {
        { "t", LS_P_TIME, "soon", 0, offsetof(struct ctx, interval), "x", NULL, NULL, 0, 0 },
        LS_PARAM_END
    };
    struct ctx c;

    ck_assert_int_eq(ls_param_bind(bad, NULL, &c, err, sizeof(err)), LS_ERROR);
    ck_assert_msg(strstr(err, "default of 't'") != NULL, "%s", err);
}
END_TEST

START_TEST(test_deprecated_flag)
{
    static const struct ls_param dep[] = {
        { "old", LS_P_INT, "1", LS_PF_DEPRECATED, offsetof(struct ctx, count), "use new", NULL, NULL, 0, 0 },
        LS_PARAM_END
    };
    struct ctx c;

    ck_assert_int_eq(bind_text(dep, "", &c), LS_OK);
    ck_assert_msg(strstr(logbuf, "deprecated") == NULL, "%s", logbuf);
    ck_assert_int_eq(bind_text(dep, "  old 2\n", &c), LS_OK);
    ck_assert_int_eq(c.count, 2);
    ck_assert_msg(strstr(logbuf, "p.conf:2: parameter 'old' is deprecated") != NULL, "%s", logbuf);
}
END_TEST

static void collect(const char *s, void *arg)
{
    char *b = arg;
    size_t n = strlen(b);
    snprintf(b + n, 8192 - n, "%s", s);
}

START_TEST(test_describe)
{
    static char out[8192];

    out[0] = '\0';
    ls_param_describe(table, false, collect, out);
    ck_assert_msg(strstr(out, "topsecretdefault") == NULL, "secret leaked:\n%s", out);
    ck_assert_msg(strstr(out, "xxxxxx") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "NAME") != NULL && strstr(out, "DEFAULT") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "buffer_chunk_limit") != NULL, "alias missing:\n%s", out);
    ck_assert_msg(strstr(out, "flush interval") != NULL, "help missing:\n%s", out);
    ck_assert_msg(strstr(out, "enum (gzip, text, zstd)") != NULL, "%s", out);
    /* every row on its own line: header + 15 rows */
    {
        int lines = 0;
        for (const char *p = out; *p; p++) {
            lines += *p == '\n';
        }
        ck_assert_int_eq(lines, 16);
    }
    /* a row: name, type, default columns in order */
    {
        const char *r = strstr(out, "\nsize ");
        ck_assert_ptr_nonnull(r);
        ck_assert_ptr_nonnull(strstr(r, "size"));
        ck_assert_msg(strstr(r, "8m") < strstr(r, "buffer_chunk_limit"), "%s", r);
    }

    out[0] = '\0';
    ls_param_describe(table, true, collect, out);
    ck_assert_msg(strncmp(out, "| name | type | default | aliases | description |\n|---|", 50) == 0, "%s",
                  out);
    ck_assert_msg(strstr(out, "| secret | secret | xxxxxx | - | the key |") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "| str | string | def | old_str, older_str | a string |") != NULL, "%s",
                  out);
    ck_assert_msg(strstr(out, "another \\| flag") != NULL, "pipe not escaped:\n%s", out);
    ck_assert_msg(strstr(out, "topsecretdefault") == NULL, "secret leaked:\n%s", out);
    out[0] = '\0';
    ls_param_describe(req_table, true, collect, out);
    ck_assert_msg(strstr(out, "| bucket | string | (required) | s3_bucket | bucket |") != NULL, "%s", out);
}
END_TEST

START_TEST(test_type_names)
{
    ck_assert_str_eq(ls_param_type_name(LS_P_SIZE), "size");
    ck_assert_str_eq(ls_param_type_name(LS_P_TIME), "time");
    ck_assert_str_eq(ls_param_type_name(LS_P_BOOL), "bool");
    ck_assert_str_eq(ls_param_type_name(LS_P_ENUM), "enum");
    ck_assert_str_eq(ls_param_type_name(LS_P_ARRAY), "array");
    ck_assert_str_eq(ls_param_type_name(LS_P_HASH), "hash");
    ck_assert_str_eq(ls_param_type_name(LS_P_STR), "string");
    ck_assert_str_eq(ls_param_type_name(LS_P_INT), "integer");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("param");
    TCase *tc = tcase_create("param");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_parse_size);
    tcase_add_test(tc, test_parse_time);
    tcase_add_test(tc, test_parse_bool_int_float);
    tcase_add_test(tc, test_parse_array_hash);
    tcase_add_test(tc, test_bind_defaults);
    tcase_add_test(tc, test_bind_values);
    tcase_add_test(tc, test_bind_aliases);
    tcase_add_test(tc, test_bind_errors);
    tcase_add_test(tc, test_bounds_printed_with_units);
    tcase_add_test(tc, test_bind_bad_json_value);
    tcase_add_test(tc, test_bind_required_nullable);
    tcase_add_test(tc, test_bind_bad_default);
    tcase_add_test(tc, test_deprecated_flag);
    tcase_add_test(tc, test_describe);
    tcase_add_test(tc, test_type_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
