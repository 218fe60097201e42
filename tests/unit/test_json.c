/*
 * test_json.c - the JSON writer (escaping, UTF-8 scrubbing, numbers) and
 * the zero-copy object reader. Escaping is also cross-checked against
 * Python's json module on random byte strings.
 */
#include <check.h>
#include <sys/mman.h>
#include <unistd.h>
#include <math.h>

#include "json.h"

static char got[1 << 16];

/* Escape p[0..n) and return the text (NUL-terminated copy in got). */
static const char *esc(const char *p, size_t n)
{
    struct ls_buf b;

    ls_buf_init(&b, 0);
    ck_assert_int_eq(ls_json_put_str(&b, p, n), LS_OK);
    ck_assert_uint_lt(b.len, sizeof(got));
    memcpy(got, b.p, b.len);
    got[b.len] = '\0';
    ls_buf_release(&b);
    return got;
}

#define ESC_IS(lit, want) ck_assert_str_eq(esc(lit, sizeof(lit) - 1), want)

START_TEST(escape_controls)
{
    /* every control byte, one at a time */
    static const char *want[32] = {
        "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
        "\\b", "\\t", "\\n", "\\u000b", "\\f", "\\r", "\\u000e", "\\u000f",
        "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017",
        "\\u0018", "\\u0019", "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
    };
    char in[1], exp[32];
    int c;

    for (c = 0; c < 32; c++) {
        in[0] = (char)c;
        snprintf(exp, sizeof(exp), "\"%s\"", want[c]);
        ck_assert_str_eq(esc(in, 1), exp);
    }
    ESC_IS("a\"b\\c/d\x7f", "\"a\\\"b\\\\c/d\x7f\"");
    ESC_IS("", "\"\"");
    /* NUL in the middle does not end the string */
    ESC_IS("ab\0cd", "\"ab\\u0000cd\"");
    /* escapes inside long runs (exercise the 8-byte scan on both sides) */
    ESC_IS("0123456789abcdef\n0123456789abcdef\"0123456789", "\"0123456789abcdef\\n0123456789abcdef\\\"0123456789\"");
}
END_TEST

/*
 * Short strings (1..15 bytes) take a 16-byte load when it stays in their page: strings
 * ending just before an unmapped page (the load must not be taken there) and at every
 * offset in a page, with and without a byte to escape at every position, come out as the
 * general path writes them, and appending after one leaves no stray byte.
 */
START_TEST(escape_short_strings)
{
    long pg = sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    size_t len, at, off;

    ck_assert(m != MAP_FAILED);
    ck_assert_int_eq(munmap(m + pg, (size_t)pg), 0);
    memset(m, 'x', (size_t)pg);
    for (len = 1; len < 16; len++) {
        for (off = 0; off < 40; off++) {
            /* ending 0..19 bytes before the unmapped page, or starting 0..19 into the page */
            char *p = off < 20 ? m + pg - (long)len - (long)off : m + (off - 20);
            for (at = 0; at <= len; at++) {
                char want[64];
                struct ls_buf b;
                size_t k;
                memset(p, 'a', len);
                if (at < len) {
                    p[at] = '"';
                }
                k = 0;
                want[k++] = '"';
                for (size_t i = 0; i < len; i++) {
                    if (p[i] == '"') {
                        want[k++] = '\\';
                    }
                    want[k++] = p[i];
                }
                want[k++] = '"';
                want[k++] = ',';
                want[k] = 0;
                ls_buf_init(&b, 0);
                ck_assert_int_eq(ls_json_put_str(&b, p, len), LS_OK);
                ck_assert_int_eq(ls_buf_putc(&b, ','), LS_OK);
                ck_assert_uint_eq(b.len, k);
                ck_assert(memcmp(b.p, want, k) == 0);
                ls_buf_release(&b);
            }
        }
    }
    munmap(m, (size_t)pg);
}
END_TEST

START_TEST(escape_utf8)
{
    /* valid 2/3/4-byte sequences pass through */
    ESC_IS("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf \xf4\x8f\xbf\xbf",
           "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf \xf4\x8f\xbf\xbf\"");
    /* lone continuation and invalid lead bytes: one U+FFFD each */
    ESC_IS("a\x80z", "\"a\xef\xbf\xbdz\"");
    ESC_IS("\xff\xfe", "\"\xef\xbf\xbd\xef\xbf\xbd\"");
    ESC_IS("\xf5\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\"");
    /* overlong encodings */
    ESC_IS("\xc0\xaf", "\"\xef\xbf\xbd\xef\xbf\xbd\"");
    ESC_IS("\xc1\xbf", "\"\xef\xbf\xbd\xef\xbf\xbd\"");
    ESC_IS("\xe0\x80\xaf", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    ESC_IS("\xf0\x80\x80\xaf", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    /* UTF-16 surrogates encoded in UTF-8 */
    ESC_IS("\xed\xa0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    ESC_IS("\xed\xbf\xbf", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    /* above U+10FFFF */
    ESC_IS("\xf4\x90\x80\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    /* truncated sequences: the valid prefix is one maximal subpart */
    ESC_IS("\xe2\x82", "\"\xef\xbf\xbd\"");
    ESC_IS("\xe2\x82z", "\"\xef\xbf\xbdz\"");
    ESC_IS("\xf0\x9f\x98", "\"\xef\xbf\xbd\"");
    ESC_IS("\xf0\x9f\x98\n", "\"\xef\xbf\xbd\\n\"");
    ESC_IS("\xc3", "\"\xef\xbf\xbd\"");
}
END_TEST

START_TEST(escape_cap)
{
    struct ls_buf b;
    char big[100];

    memset(big, '\n', sizeof(big));
    ls_buf_init(&b, 150);
    ck_assert_int_eq(ls_buf_append(&b, "xx", 2), LS_OK);
    /* needs 202 bytes: fails and leaves the buffer as it was */
    ck_assert_int_eq(ls_json_put_str(&b, big, sizeof(big)), LS_AGAIN);
    ck_assert_uint_eq(b.len, 2);
    ck_assert_int_eq(ls_json_put_str(&b, big, 74), LS_AGAIN);
    ck_assert_uint_eq(b.len, 2);
    ck_assert_int_eq(ls_json_put_str(&b, big, 70), LS_OK);   /* 142 + 2 fits in 150 */
    ck_assert_uint_eq(b.len, 2 + 142);
    ck_assert_uint_le(b.len, b.max);
    ls_buf_release(&b);
}
END_TEST

/* Random byte strings: our escaping must equal Python's
 * json.dumps(bytes.decode("utf-8", "replace"), ensure_ascii=False). */
START_TEST(escape_vs_python)
{
    char dir[] = "/tmp/ls-json-XXXXXX";
    char inpath[256], outpath[256], cmd[1024];
    FILE *f;
    struct ls_buf all;
    unsigned seed = 12345;
    int i, k;
    char *want;
    size_t wlen;

    if (system("python3 -c 'import json' 2>/dev/null") != 0) {
        return;     /* no python: nothing to compare with */
    }
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(inpath, sizeof(inpath), "%s/in", dir);
    snprintf(outpath, sizeof(outpath), "%s/out", dir);
    f = fopen(inpath, "wb");
    ck_assert_ptr_nonnull(f);
    ls_buf_init(&all, 0);
    for (i = 0; i < 4000; i++) {
        unsigned char s[160];
        /* the second half: long runs of plain text with a rare special byte anywhere in them,
         * for the 16- and 8-byte scans (every offset of a hit, runs of any length) */
        bool sparse = i >= 2000;
        int n = (int)(rand_r(&seed) % (sparse ? 160 : 40));
        for (k = 0; k < n; k++) {
            unsigned r = (unsigned)rand_r(&seed);
            /* bias towards interesting bytes */
            switch (sparse && r % 40 >= 6 ? 6 : r % 6) {
            case 0: s[k] = (unsigned char)(r >> 8); break;
            case 1: s[k] = (unsigned char)(0x80 + ((r >> 8) % 0x80)); break;
            case 2: s[k] = (unsigned char)((r >> 8) % 0x20); break;
            case 3: s[k] = (unsigned char)(0xc0 + ((r >> 8) % 0x38)); break;
            default: s[k] = (unsigned char)('a' + (r >> 8) % 26); break;
            }
        }
        /* length-prefixed records: 2 bytes big endian */
        fputc(n >> 8, f);
        fputc(n & 255, f);
        fwrite(s, 1, (size_t)n, f);
        ck_assert_int_eq(ls_json_put_str(&all, (char *)s, (size_t)n), LS_OK);
        ls_buf_putc(&all, '\n');
    }
    fclose(f);
    snprintf(cmd, sizeof(cmd),
             "python3 -c 'import json,sys\n"
             "d=open(sys.argv[1],\"rb\").read(); o=[]; i=0\n"
             "while i < len(d):\n"
             "  n=d[i]*256+d[i+1]; s=d[i+2:i+2+n]; i+=2+n\n"
             "  o.append(json.dumps(s.decode(\"utf-8\",\"replace\"), ensure_ascii=False))\n"
             "open(sys.argv[2],\"wb\").write((\"\\n\".join(o)+\"\\n\").encode())' %s %s",
             inpath, outpath);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(ls_read_file(outpath, 1 << 24, &want, &wlen), LS_OK);
    ck_assert_uint_eq(wlen, all.len);
    ck_assert(memcmp(want, all.p, wlen) == 0);
    ls_free(want);
    ls_buf_release(&all);
    unlink(inpath);
    unlink(outpath);
    rmdir(dir);
}
END_TEST

static const char *fmt_value(struct ls_value v)
{
    struct ls_buf b;

    ls_buf_init(&b, 0);
    ck_assert_int_eq(ls_json_put_value(&b, &v), LS_OK);
    memcpy(got, b.p, b.len);
    got[b.len] = '\0';
    ls_buf_release(&b);
    return got;
}

START_TEST(values)
{
    ck_assert_str_eq(fmt_value(ls_vint(0)), "0");
    ck_assert_str_eq(fmt_value(ls_vint(-1)), "-1");
    ck_assert_str_eq(fmt_value(ls_vint(1234567890)), "1234567890");
    ck_assert_str_eq(fmt_value(ls_vint(INT64_MAX)), "9223372036854775807");
    ck_assert_str_eq(fmt_value(ls_vint(INT64_MIN)), "-9223372036854775808");
    ck_assert_str_eq(fmt_value(ls_vbool(true)), "true");
    ck_assert_str_eq(fmt_value(ls_vbool(false)), "false");
    ck_assert_str_eq(fmt_value(ls_vnull()), "null");
    {
        struct ls_value v;
        v.type = LS_V_JSON;
        v.u.s.p = "{\"a\":[1,2,{\"b\":null}]}";
        v.u.s.len = strlen(v.u.s.p);
        ck_assert_str_eq(fmt_value(v), "{\"a\":[1,2,{\"b\":null}]}");
        v.u.s.p = "[\"\xff\"]";       /* invalid UTF-8 inside raw JSON is scrubbed */
        v.u.s.len = strlen(v.u.s.p);
        ck_assert_str_eq(fmt_value(v), "[\"\xef\xbf\xbd\"]");
    }
}
END_TEST

START_TEST(floats_like_ruby)
{
    /* expected strings are Ruby's Float#to_s */
    static const struct {
        double d;
        const char *s;
    } t[] = {
        { 0.1, "0.1" }, { 1.0, "1.0" }, { -2.5, "-2.5" }, { 100.0, "100.0" },
        { 1e20, "1.0e+20" }, { 1e16, "1.0e+16" }, { 1e15, "1000000000000000.0" },
        { 1234567.25, "1234567.25" }, { 0.0001, "0.0001" }, { 0.00001, "1.0e-05" },
        { 2.5e-5, "2.5e-05" }, { 1.0 / 3, "0.3333333333333333" }, { 2.0 / 3, "0.6666666666666666" },
        { 5e-324, "5.0e-324" }, { 1.7976931348623157e308, "1.7976931348623157e+308" },
        { 0.0, "0.0" }, { -0.0, "-0.0" }, { 123.456, "123.456" }, { 0.30000000000000004, "0.30000000000000004" },
        { 1e100, "1.0e+100" }, { 9007199254740993.0, "9007199254740992.0" }, { 0.001, "0.001" },
        { 12345678901234567890.0, "1.2345678901234567e+19" },
    };
    size_t i;

    for (i = 0; i < LS_ARRAY_LEN(t); i++) {
        ck_assert_msg(strcmp(fmt_value(ls_vfloat(t[i].d)), t[i].s) == 0, "%.17g -> %s, want %s",
                      t[i].d, got, t[i].s);
    }
    ck_assert_str_eq(fmt_value(ls_vfloat(NAN)), "null");
    ck_assert_str_eq(fmt_value(ls_vfloat(INFINITY)), "null");
    ck_assert_str_eq(fmt_value(ls_vfloat(-INFINITY)), "null");
}
END_TEST

START_TEST(float_round_trip)
{
    /* the shortest text must read back to the same double */
    unsigned seed = 7;
    char buf[48];
    int i;

    for (i = 0; i < 20000; i++) {
        uint64_t bits = ((uint64_t)rand_r(&seed) << 33) ^ ((uint64_t)rand_r(&seed) << 11) ^ (uint64_t)rand_r(&seed);
        double d;
        size_t n;
        memcpy(&d, &bits, 8);
        n = ls_json_fmt_double(buf, d);
        if (!isfinite(d)) {
            ck_assert_uint_eq(n, 0);
            continue;
        }
        buf[n] = '\0';
        ck_assert_msg(strtod(buf, NULL) == d, "%s does not round trip", buf);
        ck_assert_msg(ls_json_valid(buf, n), "%s is not JSON", buf);
    }
}
END_TEST

/*
 * A record is written with its room reserved once for the worst case, or, where a capped
 * buffer cannot give that much, field by field: both give the same bytes. (The checked path
 * wants 18 bytes of room for a short string, so the cap leaves that much over.) One byte
 * short of the record, the buffer is left as it was.
 */
START_TEST(record_room_once_or_checked)
{
    static const char *strs[] = { "", "-", "1.2.3.4", "GET /a\"b HTTP/1.1", "tab\there",
                                  "\xc3\xa9t\xc3\xa9", "bad \xff\xfe utf-8", "ctl \x01\x1f",
                                  "a fairly long value, over sixteen bytes, \\ and \"quotes\"" };
    struct ls_arena a;
    struct ls_record r;
    struct ls_value v;
    struct ls_buf fast, exact;
    size_t i, k;

    ls_arena_init(&a, 0);
    ls_record_init(&r, &a);
    for (k = 0; k < 64; k++) {
        ls_record_clear(&r);
        for (i = 0; i < 1 + k % 9; i++) {
            const char *sv = strs[(i + k) % LS_ARRAY_LEN(strs)];
            const char *kv = strs[(i * 3 + k + 1) % LS_ARRAY_LEN(strs)];
            switch ((i + k / 9) % 6) {
            case 0: v = ls_vint((int64_t)(k * 1000003) - 31); break;
            case 1: v = ls_vfloat((double)k / 7.0); break;
            case 2: v = ls_vbool(k & 1); break;
            case 3: v = ls_vnull(); break;
            case 4: v = ls_vstr("{\"x\":[1,\"\xff\"]}", 13); v.type = LS_V_JSON; break;
            default: v = ls_vstr(sv, strlen(sv)); break;
            }
            ls_record_add(&r, kv, strlen(kv), &v);
        }
        ls_buf_init(&fast, 0);
        ck_assert_int_eq(ls_json_put_record(&fast, &r), LS_OK);
        ck_assert(ls_json_valid(fast.p, fast.len));
        ls_buf_init(&exact, fast.len + 18);
        ck_assert_int_eq(ls_json_put_record(&exact, &r), LS_OK);
        ck_assert_uint_eq(exact.len, fast.len);
        ck_assert(memcmp(exact.p, fast.p, fast.len) == 0);
        ls_buf_release(&exact);
        ls_buf_init(&exact, fast.len - 1);
        ck_assert_int_eq(ls_json_put_record(&exact, &r), LS_AGAIN);
        ck_assert_uint_eq(exact.len, 0);
        ls_buf_release(&exact);
        ls_buf_release(&fast);
    }
    /* a big value takes the checked path: the buffer grows with what is written, not to
     * six times the value for a worst case of escapes that is not there */
    {
        size_t n = 200 * 1024;
        char *big = malloc(n);
        memset(big, 'x', n);
        ls_record_clear(&r);
        v = ls_vstr(big, n);
        ls_record_add(&r, "message", 7, &v);
        ls_buf_init(&fast, 0);
        ck_assert_int_eq(ls_json_put_record(&fast, &r), LS_OK);
        ck_assert_uint_eq(fast.len, n + 14);
        ck_assert(ls_json_valid(fast.p, fast.len));
        ck_assert_msg(fast.cap < 3 * n, "buffer grew to %zu for a %zu-byte value", fast.cap, n);
        ls_buf_release(&fast);
        free(big);
    }
    ls_record_release(&r);
    ls_arena_release(&a);
}
END_TEST

START_TEST(record_out)
{
    struct ls_arena a;
    struct ls_record r;
    struct ls_value v;
    struct ls_buf b;

    ls_arena_init(&a, 0);
    ls_record_init(&r, &a);
    v = ls_vstr("1.2.3.4", 7);
    ls_record_add(&r, "remote", 6, &v);
    v = ls_vint(200);
    ls_record_add(&r, "code", 4, &v);
    v = ls_vstr("GET /a\"b HTTP/1.1", 17);
    ls_record_add(&r, "req", 3, &v);
    v = ls_vnull();
    ls_record_add(&r, "k\n", 2, &v);
    ls_buf_init(&b, 0);
    ck_assert_int_eq(ls_json_put_record(&b, &r), LS_OK);
    ck_assert_int_eq(ls_buf_putc(&b, 0), LS_OK);
    ck_assert_str_eq(b.p, "{\"remote\":\"1.2.3.4\",\"code\":200,\"req\":\"GET /a\\\"b HTTP/1.1\",\"k\\n\":null}");
    ck_assert(ls_json_valid(b.p, b.len - 1));
    ls_buf_release(&b);
    /* empty record; and a capped buffer is left untouched */
    ls_record_clear(&r);
    ls_buf_init(&b, 10);
    ck_assert_int_eq(ls_json_put_record(&b, &r), LS_OK);
    ck_assert_uint_eq(b.len, 2);
    v = ls_vstr("0123456789", 10);
    ls_record_add(&r, "k", 1, &v);
    ck_assert_int_eq(ls_json_put_record(&b, &r), LS_AGAIN);
    ck_assert_uint_eq(b.len, 2);
    ls_buf_release(&b);
    ls_record_release(&r);
    ls_arena_release(&a);
}
END_TEST

static struct ls_arena pa;
static struct ls_record pr;

static void parse_setup(void)
{
    ls_arena_init(&pa, 0);
    ls_record_init(&pr, &pa);
}

static void parse_teardown(void)
{
    ls_record_release(&pr);
    ls_arena_release(&pa);
}

static int parse(const char *s)
{
    ls_record_clear(&pr);
    ls_arena_reset(&pa);
    return ls_json_parse_object(s, strlen(s), &pr);
}

static struct ls_value *get(const char *key)
{
    struct ls_field *f = ls_record_get(&pr, key, strlen(key));
    ck_assert_msg(f != NULL, "no field %s", key);
    return &f->v;
}

static void str_is(const char *key, const char *want, size_t wlen)
{
    struct ls_value *v = get(key);
    ck_assert_int_eq(v->type, LS_V_STR);
    ck_assert_uint_eq(v->u.s.len, wlen);
    ck_assert(memcmp(v->u.s.p, want, wlen) == 0);
}

/* Nested values come back as fluentd writes them after JSON.parse: white space gone, strings
 * re-escaped as every string, floats as Float#to_s; a canonical one stays a slice of the line */
START_TEST(parse_nested_compacted)
{
    const char *line = "{\"a\": {\"b\": [1, 2.50e1, \"\\u00e9\\/\", {}], \"c\" : null}, "
                       "\"d\":[1,{\"e\":\"x\"}]}";
    struct ls_value *v;

    ck_assert_int_eq(parse(line), LS_OK);
    v = get("a");
    ck_assert_int_eq(v->type, LS_V_JSON);
    ck_assert_msg(v->u.s.len == strlen("{\"b\":[1,25.0,\"\xc3\xa9/\",{}],\"c\":null}") &&
                  memcmp(v->u.s.p, "{\"b\":[1,25.0,\"\xc3\xa9/\",{}],\"c\":null}", v->u.s.len) == 0,
                  "%.*s", (int)v->u.s.len, v->u.s.p);
    v = get("d");
    ck_assert(v->u.s.p > line && v->u.s.p < line + strlen(line));
    ck_assert_msg(v->u.s.len == 13 && memcmp(v->u.s.p, "[1,{\"e\":\"x\"}]", 13) == 0, "%.*s", (int)v->u.s.len, v->u.s.p);
}
END_TEST

START_TEST(parse_basic)
{
    const char *line = " {\"host\":\"example.com\", \"code\" : 200,\"t\":0.25,\"neg\":-7,"
                       "\"ok\":true,\"no\":false,\"nil\":null,\"e\":1e3,\"z\":-0} \n";
    struct ls_value *v;

    ck_assert_int_eq(parse(line), LS_OK);
    ck_assert_uint_eq(pr.nfields, 9);
    ck_assert(memcmp(pr.fields[0].key, "host", 4) == 0);
    ck_assert_uint_eq(pr.fields[0].key_len, 4);
    str_is("host", "example.com", 11);
    /* zero copy: the value points into the line */
    v = get("host");
    ck_assert(v->u.s.p > line && v->u.s.p < line + strlen(line));
    ck_assert_int_eq(get("code")->type, LS_V_INT);
    ck_assert_int_eq(get("code")->u.i, 200);
    ck_assert_int_eq(get("t")->type, LS_V_FLOAT);
    ck_assert(get("t")->u.f == 0.25);
    ck_assert_int_eq(get("neg")->u.i, -7);
    ck_assert_int_eq(get("ok")->type, LS_V_BOOL);
    ck_assert(get("ok")->u.b);
    ck_assert(!get("no")->u.b);
    ck_assert_int_eq(get("nil")->type, LS_V_NULL);
    ck_assert_int_eq(get("e")->type, LS_V_FLOAT);
    ck_assert(get("e")->u.f == 1000.0);
    ck_assert_int_eq(get("z")->type, LS_V_INT);
    ck_assert_int_eq(get("z")->u.i, 0);
    ck_assert_int_eq(parse("{}"), LS_OK);
    ck_assert_uint_eq(pr.nfields, 0);
}
END_TEST

START_TEST(parse_numbers)
{
    ck_assert_int_eq(parse("{\"a\":9223372036854775807,\"b\":-9223372036854775808,"
                           "\"c\":9223372036854775808,\"d\":123456789012345678901234567890}"), LS_OK);
    ck_assert_int_eq(get("a")->type, LS_V_INT);
    ck_assert_int_eq(get("a")->u.i, INT64_MAX);
    ck_assert_int_eq(get("b")->type, LS_V_INT);
    ck_assert_int_eq(get("b")->u.i, INT64_MIN);
    /* past int64 the digits stay exact, as Ruby's bignum (written back as they were) */
    ck_assert_int_eq(get("c")->type, LS_V_JSON);
    ck_assert_int_eq(get("c")->u.s.len, 19);
    ck_assert(memcmp(get("c")->u.s.p, "9223372036854775808", 19) == 0);
    ck_assert_int_eq(get("d")->type, LS_V_JSON);
    ck_assert(memcmp(get("d")->u.s.p, "123456789012345678901234567890", 30) == 0);
    /* a number that ends the buffer exactly (no terminator after it in memory) */
    {
        char *p = ls_malloc(8);
        memcpy(p, "{\"a\":1.5", 8);
        ck_assert_int_eq(ls_json_parse_object(p, 8, &pr), LS_ERROR);
        ls_free(p);
    }
}
END_TEST

START_TEST(parse_escapes)
{
    ck_assert_int_eq(parse("{\"m\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\",\"u\":\"\\u00e9\\u20ac\\u0000x\","
                           "\"s\":\"\\ud83d\\ude00\",\"lone\":\"\\ud83dx\\ude00\",\"k\\u0041\":1}"), LS_OK);
    str_is("m", "a\"b\\c/d\b\f\n\r\t", 12);
    str_is("u", "\xc3\xa9\xe2\x82\xac\0x", 7);
    str_is("s", "\xf0\x9f\x98\x80", 4);
    str_is("lone", "\xef\xbf\xbdx\xef\xbf\xbd", 7);
    ck_assert_int_eq(get("kA")->u.i, 1);
    /* invalid UTF-8 in a string is kept (the writer scrubs it) */
    ck_assert_int_eq(parse("{\"b\":\"\xff\"}"), LS_OK);
    str_is("b", "\xff", 1);
}
END_TEST

START_TEST(parse_nested)
{
    ck_assert_int_eq(parse("{\"a\": {\"b\": [1, 2, {\"c\": \"d\"}], \"e\": {}} , \"f\":[]}"), LS_OK);
    ck_assert_int_eq(get("a")->type, LS_V_JSON);
    /* compacted, as fluentd writes it back (parse_nested_compacted) */
    ck_assert_uint_eq(get("a")->u.s.len, strlen("{\"b\":[1,2,{\"c\":\"d\"}],\"e\":{}}"));
    ck_assert(memcmp(get("a")->u.s.p, "{\"b\":[1,2,{\"c\":\"d\"}],\"e\":{}}", get("a")->u.s.len) == 0);
    ck_assert_int_eq(get("f")->type, LS_V_JSON);
    ck_assert_uint_eq(get("f")->u.s.len, 2);
}
END_TEST

START_TEST(parse_duplicates)
{
    ck_assert_int_eq(parse("{\"a\":1,\"b\":2,\"a\":3}"), LS_OK);
    ck_assert_uint_eq(pr.nfields, 2);
    ck_assert_int_eq(pr.fields[0].v.u.i, 3);
    ck_assert_int_eq(pr.fields[1].v.u.i, 2);
    {
        /* many keys: the hashed path */
        struct ls_buf b;
        int i;
        ls_buf_init(&b, 0);
        ls_buf_putc(&b, '{');
        for (i = 0; i < 200; i++) {
            ls_buf_printf(&b, "%s\"k%d\":%d", i ? "," : "", i % 50, i);
        }
        ls_buf_putc(&b, '}');
        ls_record_clear(&pr);
        ck_assert_int_eq(ls_json_parse_object(b.p, b.len, &pr), LS_OK);
        ck_assert_uint_eq(pr.nfields, 50);
        ck_assert_int_eq(get("k0")->u.i, 150);
        ck_assert_int_eq(get("k49")->u.i, 199);
        ck_assert_uint_eq(pr.fields[7].key_len, 2);
        ck_assert(memcmp(pr.fields[7].key, "k7", 2) == 0);
        ls_buf_release(&b);
    }
}
END_TEST

START_TEST(parse_malformed)
{
    static const char *bad[] = {
        "", " ", "{", "}", "[1]", "\"a\"", "1", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{,}",
        "{\"a\":1} x", "{\"a\":1}{}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":-}",
        "{\"a\":1e}", "{\"a\":+1}", "{\"a\":\"\x01\"}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}",
        "{\"a\":\"\\u12g4\"}", "{\"a\":tru}", "{\"a\":nul}", "{\"a\":True}", "{\"a\":\"b}",
        "{\"a\":1 \"b\":2}", "{a:1}", "{'a':1}", "{\"a\":[1,]}", "{\"a\":[1 2]}", "{\"a\":{\"b\"}}",
        "{\"a\":[}", "{\"a\":NaN}", "{\"a\":\"\\", "{\"a\":1,\"b\"",
    };
    size_t i;

    for (i = 0; i < LS_ARRAY_LEN(bad); i++) {
        ck_assert_msg(parse(bad[i]) == LS_ERROR, "accepted: %s", bad[i]);
        ck_assert_uint_eq(pr.nfields, 0);
        ck_assert_msg(!ls_json_valid(bad[i], strlen(bad[i])) || bad[i][0] != '{', "valid: %s", bad[i]);
    }
    /* a failed parse leaves earlier fields alone */
    {
        struct ls_value v = ls_vint(1);
        ls_record_clear(&pr);
        ls_record_add(&pr, "x", 1, &v);
        ck_assert_int_eq(ls_json_parse_object("{\"a\":1,}", 8, &pr), LS_ERROR);
        ck_assert_uint_eq(pr.nfields, 1);
    }
}
END_TEST

START_TEST(depth_limit)
{
    struct ls_buf b;
    int i;

    ls_buf_init(&b, 0);
    ls_buf_append(&b, "{\"a\":", 5);
    for (i = 0; i < 100000; i++) {
        ls_buf_putc(&b, '[');
    }
    for (i = 0; i < 100000; i++) {
        ls_buf_putc(&b, ']');
    }
    ls_buf_putc(&b, '}');
    ck_assert_int_eq(ls_json_parse_object(b.p, b.len, &pr), LS_ERROR);
    ck_assert(!ls_json_valid(b.p + 5, b.len - 6));
    ls_buf_reset(&b);
    ls_buf_append(&b, "{\"a\":", 5);
    for (i = 0; i < 400; i++) {
        ls_buf_putc(&b, '[');
    }
    for (i = 0; i < 400; i++) {
        ls_buf_putc(&b, ']');
    }
    ls_buf_putc(&b, '}');
    ck_assert_int_eq(ls_json_parse_object(b.p, b.len, &pr), LS_OK);
    ls_buf_release(&b);
}
END_TEST

START_TEST(valid_any)
{
    static const char *good[] = {
        "1", "-0.5e+3", "\"x\"", "true", "null", " [ ] ", "{\"a\":[{},[],\"\\u00e9\"]}", "[1,2,3]",
    };
    static const char *bad[] = { "", "[", "1 2", "tru", "\"\\q\"", "[1,]", "01", "-", "{\"a\" 1}" };
    size_t i;

    for (i = 0; i < LS_ARRAY_LEN(good); i++) {
        ck_assert_msg(ls_json_valid(good[i], strlen(good[i])), "rejected: %s", good[i]);
    }
    for (i = 0; i < LS_ARRAY_LEN(bad); i++) {
        ck_assert_msg(!ls_json_valid(bad[i], strlen(bad[i])), "accepted: %s", bad[i]);
    }
}
END_TEST

/* Writer output parsed back gives the same fields (strings valid UTF-8). */
START_TEST(write_parse_round_trip)
{
    struct ls_arena a;
    struct ls_record r;
    struct ls_buf b;
    struct ls_value v;
    const char *s = "tab\there \"q\" \\ \xc3\xa9 \x01 end";

    ls_arena_init(&a, 0);
    ls_record_init(&r, &a);
    v = ls_vstr(s, strlen(s));
    ls_record_add(&r, "msg", 3, &v);
    v = ls_vfloat(0.1);
    ls_record_add(&r, "f", 1, &v);
    v = ls_vint(-42);
    ls_record_add(&r, "i", 1, &v);
    ls_buf_init(&b, 0);
    ck_assert_int_eq(ls_json_put_record(&b, &r), LS_OK);
    ck_assert_int_eq(ls_json_parse_object(b.p, b.len, &pr), LS_OK);
    str_is("msg", s, strlen(s));
    ck_assert(get("f")->u.f == 0.1);
    ck_assert_int_eq(get("i")->u.i, -42);
    ls_buf_release(&b);
    ls_record_release(&r);
    ls_arena_release(&a);
}
END_TEST

/* Throughput of the writer on nginx-like records (printed, not asserted
 * beyond a very loose floor so slow sanitizer builds pass). */
START_TEST(writer_throughput)
{
    static const char *keys[] = { "remote", "host", "user", "method", "path", "code", "size", "referer", "agent",
                                  "http_x_forwarded_for" };
    struct ls_arena a;
    struct ls_record r;
    struct ls_buf b;
    struct ls_value v;
    char path[64];
    size_t i, total = 0;
    double t0, dt;
    int rep;

    ls_arena_init(&a, 0);
    ls_record_init(&r, &a);
    ls_buf_init(&b, 0);
    t0 = ls_mono_now();
    for (rep = 0; rep < 200000; rep++) {
        ls_record_clear(&r);
        v = ls_vstr("203.0.113.195", 13); ls_record_add(&r, keys[0], 6, &v);
        v = ls_vstr("-", 1); ls_record_add(&r, keys[1], 4, &v);
        v = ls_vstr("-", 1); ls_record_add(&r, keys[2], 4, &v);
        v = ls_vstr("GET", 3); ls_record_add(&r, keys[3], 6, &v);
        i = (size_t)snprintf(path, sizeof(path), "/api/v1/items/%d?page=2&sort=desc", rep);
        v = ls_vstr(path, i); ls_record_add(&r, keys[4], 4, &v);
        v = ls_vstr("200", 3); ls_record_add(&r, keys[5], 4, &v);
        v = ls_vstr("5123", 4); ls_record_add(&r, keys[6], 4, &v);
        v = ls_vstr("https://www.example.com/start/page.html", 39); ls_record_add(&r, keys[7], 7, &v);
        v = ls_vstr("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36", 98);
        ls_record_add(&r, keys[8], 5, &v);
        v = ls_vstr("-", 1); ls_record_add(&r, keys[9], 20, &v);
        ck_assert_int_eq(ls_json_put_record(&b, &r), LS_OK);
        ls_buf_putc(&b, '\n');
        if (b.len > (1 << 20)) {
            total += b.len;
            ls_buf_reset(&b);
        }
    }
    total += b.len;
    dt = ls_mono_now() - t0;
    fprintf(stderr, "json writer: %zu bytes in %.3f s = %.0f MB/s (incl. record building)\n", total, dt,
            (double)total / dt / 1e6);
    ck_assert(total > 0);
    ls_buf_release(&b);
    ls_record_release(&r);
    ls_arena_release(&a);
}
END_TEST

/* The valid prefix, read eight ASCII bytes at a time, stops exactly at the first invalid
 * sequence wherever it falls against the 8-byte steps. */
START_TEST(valid_prefix_any_position)
{
    static const char *bad[] = {"\x80", "\xc3", "\xe2\x82", "\xff", "\xed\xa0\x80", "\xf4\x90"};
    char s[64];

    for (size_t len = 0; len <= 40; len++) {
        memset(s, 'a', len);
        ck_assert_uint_eq(ls_utf8_valid_prefix(s, len), len);
        for (size_t at = 0; at < len; at++) {
            for (size_t b = 0; b < sizeof(bad) / sizeof(*bad); b++) {
                size_t bl = strlen(bad[b]);
                memset(s, 'a', sizeof(s));
                if (at + bl > len) {
                    continue;
                }
                memcpy(s + at, bad[b], bl);
                ck_assert_uint_eq(ls_utf8_valid_prefix(s, len), at);
            }
            /* a valid 3-byte sequence in the middle of an ASCII run does not stop it */
            if (at + 3 <= len) {
                memset(s, 'a', sizeof(s));
                memcpy(s + at, "\xe2\x82\xac", 3);
                ck_assert_uint_eq(ls_utf8_valid_prefix(s, len), len);
            }
        }
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("json");
    TCase *w = tcase_create("writer");
    TCase *p = tcase_create("reader");
    SRunner *sr;
    int nf;

    tcase_add_test(w, escape_controls);
    tcase_add_test(w, escape_utf8);
    tcase_add_test(w, valid_prefix_any_position);
    tcase_add_test(w, escape_short_strings);
    tcase_add_test(w, escape_cap);
    tcase_add_test(w, record_room_once_or_checked);
    tcase_add_test(w, escape_vs_python);
    tcase_add_test(w, values);
    tcase_add_test(w, floats_like_ruby);
    tcase_add_test(w, float_round_trip);
    tcase_add_test(w, record_out);
    tcase_add_test(w, writer_throughput);
    tcase_set_timeout(w, 120);
    suite_add_tcase(s, w);
    tcase_add_checked_fixture(p, parse_setup, parse_teardown);
    tcase_add_test(p, parse_basic);
    tcase_add_test(p, parse_numbers);
    tcase_add_test(p, parse_escapes);
    tcase_add_test(p, parse_nested);
    tcase_add_test(p, parse_duplicates);
    tcase_add_test(p, parse_malformed);
    tcase_add_test(p, depth_limit);
    tcase_add_test(p, valid_any);
    tcase_add_test(p, write_parse_round_trip);
    tcase_add_test(p, parse_nested_compacted);
    suite_add_tcase(s, p);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf != 0;
}
