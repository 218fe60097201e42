/*
 * json.c - JSON writer (the formatters' hot path) and a zero-copy reader.
 *
 * Why hand-written: the writer appends escaped text straight into the
 * chunk's ls_buf, and the reader hands back slices of the caller's line
 * buffer as field values. No JSON library in Debian does either: json-c
 * and jansson build a heap tree per document and serialise through their
 * own strings, which would mean several allocations and copies per log
 * line on the one path that dominates the agent's CPU time.
 *
 * Writer: strings are scanned 8 bytes at a time (SWAR) for the few bytes
 * that need work (controls, '"', '\\', bytes >= 0x80); runs of plain ASCII
 * are copied with one memcpy. Non-ASCII is validated as UTF-8 and copied;
 * an invalid sequence is replaced by U+FFFD per maximal subpart (the
 * Unicode recommendation, which is what Ruby's String#scrub and Python's
 * "replace" do), so the output is always valid UTF-8 and valid JSON.
 * '/' is not escaped (Oj and yajl do not either). Floats print like Ruby's
 * Float#to_s (shortest round-trip digits, "1.0", "1.0e+20"), the text
 * fluentd's JSON dumpers produce.
 *
 * Reader: a strict recursive-descent parser with a depth limit, so hostile
 * input can neither overflow the stack nor make us allocate without bound
 * (decoded strings are never longer than their escaped form).
 */
#include "json.h"

#include <math.h>

#define JSON_MAX_DEPTH 512

/* ------------------------------------------------------------------ */
/* writer                                                             */
/* ------------------------------------------------------------------ */

/* 0: copy as is; 1: ASCII that needs an escape; 2: non-ASCII (UTF-8 check) */
static const unsigned char json_esc_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,     /* '"' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,     /* '\\' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

#define SWAR_ONES  0x0101010101010101ULL
#define SWAR_HIGH  0x8080808080808080ULL

static inline uint64_t swar_load(const unsigned char *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

/* Non-zero if any byte of x is < 0x20, '"', '\\' or >= 0x80. Exact as to
 * existence (the borrow tricks may mis-flag bytes above a real hit, which
 * does not matter: the byte loop finds the real one). */
static inline uint64_t swar_special(uint64_t x)
{
    uint64_t q = x ^ (SWAR_ONES * 0x22);
    uint64_t b = x ^ (SWAR_ONES * 0x5c);
    uint64_t lt = (x - SWAR_ONES * 0x20) & ~x;
    uint64_t zq = (q - SWAR_ONES) & ~q;
    uint64_t zb = (b - SWAR_ONES) & ~b;
    return (lt | zq | zb | x) & SWAR_HIGH;
}

#ifdef __SSE2__
#include <emmintrin.h>
/*
 * Offset of the first byte of s[0..16) that json_esc_class does not copy as
 * is (< 0x20, '"', '\\', >= 0x80), or 16. One signed compare finds both the
 * control bytes and the non-ASCII ones (negative as signed chars), and the
 * mask's lowest bit is the offset: no byte loop after a hit.
 */
static inline unsigned sse_special_bits(const unsigned char *s)
{
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)s);
    __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')),
                                          _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))),
                             _mm_cmplt_epi8(x, _mm_set1_epi8(0x20)));

    return (unsigned)_mm_movemask_epi8(m);
}

static inline unsigned sse_special(const unsigned char *s)
{
    unsigned bits = sse_special_bits(s);

    return bits ? (unsigned)__builtin_ctz(bits) : 16;
}
#endif

/* Non-zero if any byte of x is >= 0x80. */
static inline uint64_t swar_high(uint64_t x)
{
    return x & SWAR_HIGH;
}

/*
 * Length of the valid UTF-8 sequence starting at s (s[0] >= 0x80), or 0 if
 * invalid; *bad gets the length of the maximal invalid subpart (1..3) to
 * replace with one U+FFFD.
 */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t *bad)
{
    unsigned c = s[0];
    size_t need, i;
    unsigned lo = 0x80, hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        if (c == 0xe0) {
            lo = 0xa0;
        } else if (c == 0xed) {
            hi = 0x9f;          /* no UTF-16 surrogates */
        }
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        if (c == 0xf0) {
            lo = 0x90;          /* no overlongs */
        } else if (c == 0xf4) {
            hi = 0x8f;          /* <= U+10FFFF */
        }
    } else {
        *bad = 1;               /* continuation byte, C0/C1 overlong lead, F5..FF */
        return 0;
    }
    for (i = 1; i < need; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) {
            *bad = i;
            return 0;
        }
        lo = 0x80;
        hi = 0xbf;
    }
    return need;
}

size_t ls_utf8_valid_prefix(const char *p, size_t len)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0, bad;

    while (i < len) {
        /* ASCII eight bytes at a time: log fields are nearly all ASCII, and the Parquet
         * formatter checks every string it stores */
        while (len - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull) {
                break;
            }
            i += 8;
        }
        if (i >= len) {
            break;
        }
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = utf8_seq(s + i, len - i, &bad);
        if (n == 0) {
            return i;
        }
        i += n;
    }
    return len;
}

int ls_utf8_scrub(struct ls_buf *out, const char *p, size_t len)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0, start = out->len;

    while (i < len) {
        size_t ok = ls_utf8_valid_prefix(p + i, len - i), bad = 1;
        if (ls_buf_append(out, p + i, ok) != LS_OK) {
            out->len = start;
            return LS_AGAIN;
        }
        i += ok;
        if (i == len) {
            break;
        }
        (void)utf8_seq(s + i, len - i, &bad);
        if (ls_buf_append(out, "\xef\xbf\xbd", 3) != LS_OK) {
            out->len = start;
            return LS_AGAIN;
        }
        i += bad;
    }
    return LS_OK;
}

static const char json_hex[] = "0123456789abcdef";

/* Make room for need more output bytes at *o (which points into b). */
static inline int out_room(struct ls_buf *b, char **o, size_t need)
{
    if ((size_t)(b->p + b->cap - 1 - *o) >= need) {
        return LS_OK;
    }
    b->len = (size_t)(*o - b->p);
    if (ls_buf_reserve(b, need) != LS_OK) {
        return LS_AGAIN;
    }
    *o = b->p + b->len;
    return LS_OK;
}

/*
 * Escape s into b at b->len (no quotes). Returns LS_OK or LS_AGAIN (the
 * caller restores b->len). The caller has reserved room for len + slack
 * bytes; escapes grow the output and take more room on demand.
 */
static int put_escaped(struct ls_buf *b, const unsigned char *s, size_t len, size_t slack)
{
    char *o = b->p + b->len;
    size_t i = 0;

    while (i < len) {
        size_t run = i;
        unsigned c;
        bool hit = false;

#ifdef __SSE2__
        while (i + 16 <= len) {
            unsigned k = sse_special(s + i);
            i += k;
            if (k < 16) {
                hit = true;
                break;
            }
        }
        if (!hit && i < len && len >= 16) {
            /* the last 1..15 bytes: the string's last 16, shifted past those already
             * checked or written, instead of a byte loop (1.6% of the text pipeline) */
            unsigned bits = sse_special_bits(s + len - 16) >> (i - (len - 16));
            if (bits) {
                i += (unsigned)__builtin_ctz(bits);
                hit = true;
            } else {
                i = len;
            }
        }
#endif
        if (!hit) {
            while (i + 8 <= len && !swar_special(swar_load(s + i))) {
                i += 8;
            }
            while (i < len && json_esc_class[s[i]] == 0) {
                i++;
            }
        }
        memcpy(o, s + run, i - run);
        o += i - run;
        if (i == len) {
            break;
        }
        c = s[i];
        if (c < 0x80) {
            if (out_room(b, &o, len - i + 6 + slack) != LS_OK) {
                return LS_AGAIN;
            }
            *o++ = '\\';
            switch (c) {
            case '"':  *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '\n': *o++ = 'n'; break;
            case '\t': *o++ = 't'; break;
            case '\r': *o++ = 'r'; break;
            case '\b': *o++ = 'b'; break;
            case '\f': *o++ = 'f'; break;
            default:
                *o++ = 'u';
                *o++ = '0';
                *o++ = '0';
                *o++ = json_hex[c >> 4];
                *o++ = json_hex[c & 15];
                break;
            }
            i++;
        } else {
            size_t bad = 0;
            size_t n = utf8_seq(s + i, len - i, &bad);
            if (n) {
                memcpy(o, s + i, n);
                o += n;
                i += n;
            } else {
                if (out_room(b, &o, len - i + 3 + slack) != LS_OK) {
                    return LS_AGAIN;
                }
                *o++ = (char)0xef;
                *o++ = (char)0xbf;
                *o++ = (char)0xbd;
                i += bad;
            }
        }
    }
    b->len = (size_t)(o - b->p);
    return LS_OK;
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define JSON_ASAN 1
#endif
#endif
#ifdef __SANITIZE_ADDRESS__
#define JSON_ASAN 1
#endif

#if defined(__SSE2__) && !defined(JSON_ASAN)
/*
 * Most strings of a log record are keys and short values: below 16 bytes, one 16-byte load
 * checks the string and one store copies it, instead of the byte loop and a memcpy call.
 * The load reads past the string's end, so only when that stays inside the string's page
 * (it cannot fault), and not under ASan, which would rightly report the extra bytes
 * (valgrind's memcheck may too). The store writes bytes past the closing quote's place,
 * inside the room reserved for them, which later output overwrites.
 * 0 if the string has a byte to escape (the caller takes the general path), else its
 * output length.
 */
static inline __attribute__((always_inline)) size_t put_short_str(struct ls_buf *out,
                                                                   const char *p, size_t len)
{
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')),
                                          _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))),
                             _mm_cmplt_epi8(x, _mm_set1_epi8(0x20)));
    char *o = out->p + out->len;

    if ((unsigned)_mm_movemask_epi8(m) & ((1u << len) - 1)) {
        return 0;
    }
    o[0] = '"';
    _mm_storeu_si128((__m128i *)(void *)(o + 1), x);
    o[len + 1] = '"';
    out->len += len + 2;
    return len + 2;
}
#endif

#if defined(__SSE2__) && !defined(JSON_ASAN)
/* 1..15 bytes whose 16-byte load stays inside their page */
#define SHORT_STR(p, len) ((len) - 1 < 15 && ((uintptr_t)(p) & 4095) <= 4096 - 16)
#else
#define SHORT_STR(p, len) 0
#endif

/*
 * One string at out->len. The caller has reserved SHORT_STR's 18 bytes or len + 2; the
 * escapes grow the rest as they go, LS_AGAIN when a capped buffer cannot (out->len is then
 * the caller's to restore). Both writers share it: ls_json_put_str, which checks each
 * string, and put_record_fast, whose one reservation covers the whole record.
 */
static inline int put_str_here(struct ls_buf *out, const char *p, size_t len)
{
#if defined(__SSE2__) && !defined(JSON_ASAN)
    if (SHORT_STR(p, len) && put_short_str(out, p, len)) {
        return LS_OK;
    }
#endif
    out->p[out->len++] = '"';   /* the room for len + 1 more is put_escaped's */
    if (put_escaped(out, (const unsigned char *)p, len, 1) != LS_OK) {
        return LS_AGAIN;
    }
    out->p[out->len++] = '"';   /* slack of 1 was kept for it */
    return LS_OK;
}

int ls_json_put_str(struct ls_buf *out, const char *p, size_t len)
{
    size_t start = out->len;

    if (ls_buf_reserve(out, SHORT_STR(p, len) ? 18 : len + 2) != LS_OK) {
        return LS_AGAIN;
    }
    if (put_str_here(out, p, len) != LS_OK) {
        out->len = start;
        return LS_AGAIN;
    }
    return LS_OK;
}

/*
 * Raw JSON (LS_V_JSON): copied verbatim, except that invalid UTF-8 (which
 * can only sit inside strings of otherwise valid JSON) becomes U+FFFD.
 */
static int put_raw_json(struct ls_buf *b, const unsigned char *s, size_t len)
{
    size_t start = b->len;
    char *o;
    size_t i = 0;

    if (ls_buf_reserve(b, len) != LS_OK) {
        return LS_AGAIN;
    }
    o = b->p + b->len;
    while (i < len) {
        size_t run = i;
        while (i + 8 <= len && !swar_high(swar_load(s + i))) {
            i += 8;
        }
        while (i < len && s[i] < 0x80) {
            i++;
        }
        memcpy(o, s + run, i - run);
        o += i - run;
        if (i < len) {
            size_t bad = 0;
            size_t n = utf8_seq(s + i, len - i, &bad);
            if (n) {
                memcpy(o, s + i, n);
                o += n;
                i += n;
            } else {
                if (out_room(b, &o, len - i + 3) != LS_OK) {
                    b->len = start;
                    return LS_AGAIN;
                }
                *o++ = (char)0xef;
                *o++ = (char)0xbf;
                *o++ = (char)0xbd;
                i += bad;
            }
        }
    }
    b->len = (size_t)(o - b->p);
    return LS_OK;
}

static const char digit_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* Decimal text of v into out (at least 21 bytes); returns the length. */
static size_t fmt_int64(char *out, int64_t v)
{
    char tmp[24];
    char *e = tmp + sizeof(tmp), *q = e;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t n;

    while (u >= 100) {
        unsigned r = (unsigned)(u % 100);
        u /= 100;
        q -= 2;
        memcpy(q, digit_pairs + 2 * r, 2);
    }
    if (u >= 10) {
        q -= 2;
        memcpy(q, digit_pairs + 2 * u, 2);
    } else {
        *--q = (char)('0' + u);
    }
    if (v < 0) {
        *--q = '-';
    }
    n = (size_t)(e - q);
    memcpy(out, q, n);
    return n;
}

/*
 * Ruby's Float#to_s: the shortest digit string that reads back to the
 * same double; fixed notation when the decimal exponent is in (-4, 16],
 * otherwise d.ddde+XX; always at least one digit after the point.
 * out needs 32 bytes. Returns the length; 0 for NaN/Infinity.
 */
static size_t fmt_double(char *out, double d)
{
    char tmp[40];
    char digits[20];
    int prec, lo = 1, hi = 17, best = 17;
    int ndig = 0, exp10, decpt, i;
    char *e;
    size_t n = 0;

    if (!isfinite(d)) {
        return 0;
    }
    if (d == 0) {
        if (signbit(d)) {
            memcpy(out, "-0.0", 4);
            return 4;
        }
        memcpy(out, "0.0", 3);
        return 3;
    }
    /* round trip is monotone in precision: binary search the shortest */
    while (lo <= hi) {
        prec = (lo + hi) / 2;
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d) {
            best = prec;
            hi = prec - 1;
        } else {
            lo = prec + 1;
        }
    }
    snprintf(tmp, sizeof(tmp), "%.*e", best - 1, d);
    /* tmp: [-]d[.ddd]e[+-]XX */
    for (e = tmp; *e && *e != 'e'; e++) {
        if (*e >= '0' && *e <= '9') {
            digits[ndig++] = *e;
        }
    }
    exp10 = (int)strtol(e + 1, NULL, 10);
    while (ndig > 1 && digits[ndig - 1] == '0') {
        ndig--;
    }
    decpt = exp10 + 1;      /* digits are 0.DDDD x 10^decpt */
    if (d < 0) {
        out[n++] = '-';
    }
    if (decpt > 0 && decpt <= 16) {
        for (i = 0; i < decpt; i++) {
            out[n++] = i < ndig ? digits[i] : '0';
        }
        out[n++] = '.';
        if (ndig > decpt) {
            for (i = decpt; i < ndig; i++) {
                out[n++] = digits[i];
            }
        } else {
            out[n++] = '0';
        }
    } else if (decpt <= 0 && decpt > -4) {
        out[n++] = '0';
        out[n++] = '.';
        for (i = 0; i < -decpt; i++) {
            out[n++] = '0';
        }
        for (i = 0; i < ndig; i++) {
            out[n++] = digits[i];
        }
    } else {
        int x = decpt - 1;
        out[n++] = digits[0];
        out[n++] = '.';
        if (ndig > 1) {
            for (i = 1; i < ndig; i++) {
                out[n++] = digits[i];
            }
        } else {
            out[n++] = '0';
        }
        out[n++] = 'e';
        out[n++] = x < 0 ? '-' : '+';
        if (x < 0) {
            x = -x;
        }
        if (x >= 100) {
            out[n++] = (char)('0' + x / 100);
        }
        out[n++] = (char)('0' + (x / 10) % 10);
        out[n++] = (char)('0' + x % 10);
    }
    return n;
}

size_t ls_json_fmt_double(char *out, double d)
{
    return fmt_double(out, d);
}

int ls_json_put_value(struct ls_buf *out, const struct ls_value *v)
{
    char tmp[48];
    size_t n;

    switch (v->type) {
    case LS_V_STR:
        return ls_json_put_str(out, v->u.s.p, v->u.s.len);
    case LS_V_JSON:
        if (v->u.s.len == 0) {
            return ls_buf_append(out, "null", 4);
        }
        return put_raw_json(out, (const unsigned char *)v->u.s.p, v->u.s.len);
    case LS_V_INT:
        n = fmt_int64(tmp, v->u.i);
        return ls_buf_append(out, tmp, n);
    case LS_V_FLOAT:
        n = fmt_double(tmp, v->u.f);
        if (n == 0) {
            return ls_buf_append(out, "null", 4);     /* JSON has no NaN/Infinity */
        }
        return ls_buf_append(out, tmp, n);
    case LS_V_BOOL:
        return v->u.b ? ls_buf_append(out, "true", 4) : ls_buf_append(out, "false", 5);
    case LS_V_NULL:
        break;
    }
    return ls_buf_append(out, "null", 4);
}

/* One string at o, room reserved by the caller (put_record_fast); returns the new end. */
static inline char *put_str_at(struct ls_buf *out, char *o, const char *p, size_t len)
{
    out->len = (size_t)(o - out->p);
    (void)put_str_here(out, p, len);    /* has the room: no LS_AGAIN */
    return out->p + out->len;
}

/*
 * A record whose worst case fits the buffer: its room is taken once (every byte escaped as
 * \u00XX, every invalid UTF-8 byte of raw JSON as U+FFFD, 48 bytes a number, 16 of slack
 * for put_short_str's store) and then written without a check per string and separator,
 * which was a good part of the JSON writer's instructions (about 2,000 a record).
 * false: no such room (a capped buffer, or a worst case over PUT_RECORD_FAST_MAX); the
 * caller takes the checked path.
 */
#define PUT_RECORD_FAST_MAX (64u * 1024u)

static bool put_record_fast(struct ls_buf *out, const struct ls_record *rec)
{
    size_t need = 2 + 16;
    unsigned i;
    char *o;

    for (i = 0; i < rec->nfields; i++) {
        const struct ls_field *f = &rec->fields[i];
        need += f->key_len * 6 + 4;
        if (f->v.type == LS_V_STR) {
            need += f->v.u.s.len * 6 + 2;
        } else if (f->v.type == LS_V_JSON) {
            need += f->v.u.s.len * 3 + 4;
        } else {
            need += 48;
        }
    }
    /* a big record (a forwarded message of megabytes) would make the buffer grow to six
     * times its size for nothing: it takes the checked path, where the room grows as used */
    if (need > PUT_RECORD_FAST_MAX || ls_buf_reserve(out, need) != LS_OK) {
        return false;
    }
    o = out->p + out->len;
    *o++ = '{';
    for (i = 0; i < rec->nfields; i++) {
        const struct ls_field *f = &rec->fields[i];
        const struct ls_value *v = &f->v;
        if (i > 0) {
            *o++ = ',';
        }
        o = put_str_at(out, o, f->key, f->key_len);
        *o++ = ':';
        switch (v->type) {
        case LS_V_STR:
            o = put_str_at(out, o, v->u.s.p, v->u.s.len);
            break;
        case LS_V_INT:
            o += fmt_int64(o, v->u.i);
            break;
        default:
            out->len = (size_t)(o - out->p);
            (void)ls_json_put_value(out, v);    /* has the room: no LS_AGAIN */
            o = out->p + out->len;
            break;
        }
    }
    *o++ = '}';
    out->len = (size_t)(o - out->p);
    return true;
}

int ls_json_put_record(struct ls_buf *out, const struct ls_record *rec)
{
    size_t start = out->len;
    unsigned i;

    if (put_record_fast(out, rec)) {
        return LS_OK;
    }
    if (ls_buf_putc(out, '{') != LS_OK) {
        return LS_AGAIN;
    }
    for (i = 0; i < rec->nfields; i++) {
        const struct ls_field *f = &rec->fields[i];
        if (i > 0 && ls_buf_putc(out, ',') != LS_OK) {
            goto full;
        }
        if (ls_json_put_str(out, f->key, f->key_len) != LS_OK || ls_buf_putc(out, ':') != LS_OK
            || ls_json_put_value(out, &f->v) != LS_OK) {
            goto full;
        }
    }
    if (ls_buf_putc(out, '}') == LS_OK) {
        return LS_OK;
    }
full:
    out->len = start;
    return LS_AGAIN;
}

/* ------------------------------------------------------------------ */
/* reader                                                             */
/* ------------------------------------------------------------------ */

struct jp {
    const unsigned char *p;
    const unsigned char *end;
    int depth;
    bool dirty;         /* white space or an escape seen (jp_value's nested values) */
};

static inline void jp_ws(struct jp *j)
{
    const unsigned char *s = j->p;

    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) {
        j->p++;
    }
    j->dirty |= j->p != s;
}

static int hex4(const unsigned char *p, unsigned *out)
{
    unsigned v = 0;
    int i;

    for (i = 0; i < 4; i++) {
        unsigned c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') {
            v |= c - '0';
        } else if (c >= 'a' && c <= 'f') {
            v |= c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            v |= c - 'A' + 10;
        } else {
            return LS_ERROR;
        }
    }
    *out = v;
    return LS_OK;
}

/*
 * Scan a string at j->p (which is at the opening quote). On success j->p
 * is past the closing quote, *body and *blen give the raw text between the
 * quotes and *esc says whether it contains escapes. Raw control bytes are
 * rejected (JSON forbids them); other bytes, even invalid UTF-8, are kept
 * (the writer scrubs them) so one odd byte does not lose a log line.
 */
static int jp_string(struct jp *j, const unsigned char **body, size_t *blen, bool *esc)
{
    const unsigned char *s = ++j->p;
    bool e = false;

    for (;;) {
        while (j->p + 8 <= j->end) {
            uint64_t x = swar_load(j->p);
            uint64_t q = x ^ (SWAR_ONES * 0x22);
            uint64_t b = x ^ (SWAR_ONES * 0x5c);
            uint64_t hit = ((x - SWAR_ONES * 0x20) & ~x) | ((q - SWAR_ONES) & ~q)
                           | ((b - SWAR_ONES) & ~b);
            if (hit & SWAR_HIGH) {
                break;
            }
            j->p += 8;
        }
        if (j->p >= j->end) {
            return LS_ERROR;
        }
        if (*j->p == '"') {
            break;
        }
        if (*j->p == '\\') {
            unsigned u;
            e = true;
            if (j->end - j->p < 2) {
                return LS_ERROR;
            }
            switch (j->p[1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                j->p += 2;
                break;
            case 'u':
                if (j->end - j->p < 6 || hex4(j->p + 2, &u) != LS_OK) {
                    return LS_ERROR;
                }
                j->p += 6;
                break;
            default:
                return LS_ERROR;
            }
            continue;
        }
        if (*j->p < 0x20) {
            return LS_ERROR;
        }
        j->p++;
    }
    *body = s;
    *blen = (size_t)(j->p - s);
    *esc = e;
    j->p++;
    return LS_OK;
}

static size_t put_utf8(unsigned char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/*
 * Decode an already-validated string body with escapes into out (which has
 * at least len bytes: every escape is at least as long as what it decodes
 * to). \u surrogate pairs combine; a lone surrogate becomes U+FFFD.
 */
static size_t decode_string(const unsigned char *s, size_t len, unsigned char *out)
{
    const unsigned char *end = s + len;
    unsigned char *o = out;

    while (s < end) {
        unsigned cp;
        if (*s != '\\') {
            *o++ = *s++;
            continue;
        }
        switch (s[1]) {
        case 'b': *o++ = '\b'; s += 2; continue;
        case 'f': *o++ = '\f'; s += 2; continue;
        case 'n': *o++ = '\n'; s += 2; continue;
        case 'r': *o++ = '\r'; s += 2; continue;
        case 't': *o++ = '\t'; s += 2; continue;
        case 'u': break;
        default: *o++ = s[1]; s += 2; continue;    /* " \ / */
        }
        hex4(s + 2, &cp);
        s += 6;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            unsigned lo;
            if (end - s >= 6 && s[0] == '\\' && s[1] == 'u' && hex4(s + 2, &lo) == LS_OK
                && lo >= 0xdc00 && lo <= 0xdfff) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                s += 6;
            } else {
                cp = 0xfffd;
            }
        } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            cp = 0xfffd;
        }
        o += put_utf8(o, cp);
    }
    return (size_t)(o - out);
}

/* Number grammar; *is_int when there is no fraction and no exponent. */
static int jp_number(struct jp *j, bool *is_int)
{
    const unsigned char *p = j->p;

    *is_int = true;
    if (p < j->end && *p == '-') {
        p++;
    }
    if (p >= j->end) {
        return LS_ERROR;
    }
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < j->end && *p >= '0' && *p <= '9') {
            p++;
        }
    } else {
        return LS_ERROR;
    }
    if (p < j->end && *p == '.') {
        *is_int = false;
        p++;
        if (p >= j->end || *p < '0' || *p > '9') {
            return LS_ERROR;
        }
        while (p < j->end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < j->end && (*p == 'e' || *p == 'E')) {
        *is_int = false;
        p++;
        if (p < j->end && (*p == '+' || *p == '-')) {
            p++;
        }
        if (p >= j->end || *p < '0' || *p > '9') {
            return LS_ERROR;
        }
        while (p < j->end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    j->p = p;
    return LS_OK;
}

static int jp_literal(struct jp *j, const char *word, size_t n)
{
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0) {
        return LS_ERROR;
    }
    j->p += n;
    return LS_OK;
}

/* Validate one value of any type, skipping it. */
static int jp_skip_value(struct jp *j)
{
    const unsigned char *b;
    size_t bl;
    bool e;

    jp_ws(j);
    if (j->p >= j->end) {
        return LS_ERROR;
    }
    switch (*j->p) {
    case '{':
    case '[': {
        unsigned char close = *j->p == '{' ? '}' : ']';
        bool obj = close == '}';
        if (++j->depth > JSON_MAX_DEPTH) {
            return LS_ERROR;
        }
        j->p++;
        jp_ws(j);
        if (j->p < j->end && *j->p == close) {
            j->p++;
            j->depth--;
            return LS_OK;
        }
        for (;;) {
            if (obj) {
                jp_ws(j);
                if (j->p >= j->end || *j->p != '"' || jp_string(j, &b, &bl, &e) != LS_OK) {
                    return LS_ERROR;
                }
                j->dirty |= e;
                jp_ws(j);
                if (j->p >= j->end || *j->p != ':') {
                    return LS_ERROR;
                }
                j->p++;
            }
            if (jp_skip_value(j) != LS_OK) {
                return LS_ERROR;
            }
            jp_ws(j);
            if (j->p >= j->end) {
                return LS_ERROR;
            }
            if (*j->p == ',') {
                j->p++;
                continue;
            }
            if (*j->p == close) {
                j->p++;
                j->depth--;
                return LS_OK;
            }
            return LS_ERROR;
        }
    }
    case '"':
        if (jp_string(j, &b, &bl, &e) != LS_OK) {
            return LS_ERROR;
        }
        j->dirty |= e;
        return LS_OK;
    case 't':
        return jp_literal(j, "true", 4);
    case 'f':
        return jp_literal(j, "false", 5);
    case 'n':
        return jp_literal(j, "null", 4);
    default: {
        bool is_int;
        if (jp_number(j, &is_int) != LS_OK) {
            return LS_ERROR;
        }
        j->dirty |= !is_int;    /* a float is written back as Ruby's Float#to_s writes it */
        return LS_OK;
    }
    }
}

bool ls_json_valid(const char *p, size_t len)
{
    struct jp j = { (const unsigned char *)p, (const unsigned char *)p + len, 0, false };

    if (jp_skip_value(&j) != LS_OK) {
        return false;
    }
    jp_ws(&j);
    return j.p == j.end;
}

static int jp_str_value(struct jp *j, struct ls_arena *arena, const char **out, size_t *olen)
{
    const unsigned char *b;
    size_t bl;
    bool e;

    if (jp_string(j, &b, &bl, &e) != LS_OK) {
        return LS_ERROR;
    }
    if (!e) {
        *out = (const char *)b;
        *olen = bl;
        return LS_OK;
    }
    if (arena == NULL) {
        return LS_ERROR;
    }
    {
        unsigned char *d = ls_arena_alloc(arena, bl + 1);
        size_t n = decode_string(b, bl, d);
        d[n] = '\0';
        *out = (const char *)d;
        *olen = n;
    }
    return LS_OK;
}

static int jp_number_value(struct jp *j, struct ls_arena *arena, struct ls_value *v)
{
    const unsigned char *s = j->p;
    bool is_int;
    char tmp[64];
    char *txt = tmp;
    size_t n;

    if (jp_number(j, &is_int) != LS_OK) {
        return LS_ERROR;
    }
    n = (size_t)(j->p - s);
    if (n >= sizeof(tmp)) {
        /* strtod needs a terminated copy: the number may end the buffer */
        if (arena == NULL) {
            txt = NULL;
        } else {
            txt = ls_arena_alloc(arena, n + 1);
        }
    }
    if (is_int && n <= 20) {
        /* accumulate with overflow detection, no copy needed */
        const unsigned char *q = s;
        bool neg = *q == '-';
        uint64_t u = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        bool ok = true;
        if (neg) {
            q++;
        }
        for (; q < j->p; q++) {
            unsigned dg = (unsigned)(*q - '0');
            if (u > (lim - dg) / 10) {
                ok = false;
                break;
            }
            u = u * 10 + dg;
        }
        if (ok) {
            v->type = LS_V_INT;
            v->u.i = neg ? (int64_t)(0 - u) : (int64_t)u;
            return LS_OK;
        }
    }
    if (is_int && arena) {
        /* past int64: Ruby keeps a bignum exact, so the digits stay as they were written */
        char *raw = ls_arena_alloc(arena, n);

        memcpy(raw, s, n);
        v->type = LS_V_JSON;
        v->u.s.p = raw;
        v->u.s.len = n;
        return LS_OK;
    }
    if (txt == NULL) {
        return LS_ERROR;
    }
    memcpy(txt, s, n);
    txt[n] = '\0';
    v->type = LS_V_FLOAT;
    v->u.f = strtod(txt, NULL);
    return LS_OK;
}

/* Drop duplicate keys among fields [from, n): the last value wins, in the
 * position of the first (what a Ruby Hash built from the JSON does). */
static void dedup_fields(struct ls_record *rec, unsigned from)
{
    unsigned n = rec->nfields, i, k, w;

    if (n - from < 2) {
        return;
    }
    if (n - from <= 24) {
        bool any = false;
        for (i = from + 1; i < n && !any; i++) {
            for (k = from; k < i; k++) {
                if (rec->fields[k].key_len == rec->fields[i].key_len
                    && memcmp(rec->fields[k].key, rec->fields[i].key, rec->fields[i].key_len) == 0) {
                    any = true;
                    break;
                }
            }
        }
        if (!any) {
            return;
        }
    }
    {
        /* open addressing over field indexes; sized to a power of two >= 2n */
        size_t cap = 16, mask, h;
        unsigned *slot;
        while (cap < 2 * (size_t)(n - from)) {
            cap *= 2;
        }
        mask = cap - 1;
        slot = ls_malloc(cap * sizeof(*slot));
        memset(slot, 0xff, cap * sizeof(*slot));
        w = from;
        for (i = from; i < n; i++) {
            struct ls_field *f = &rec->fields[i];
            size_t q;
            uint64_t hh = 1469598103934665603ULL;
            for (q = 0; q < f->key_len; q++) {
                hh = (hh ^ (unsigned char)f->key[q]) * 1099511628211ULL;
            }
            h = (size_t)hh & mask;
            for (;;) {
                unsigned s = slot[h];
                if (s == UINT32_MAX) {
                    slot[h] = w;
                    rec->fields[w++] = *f;
                    break;
                }
                if (rec->fields[s].key_len == f->key_len
                    && memcmp(rec->fields[s].key, f->key, f->key_len) == 0) {
                    rec->fields[s].v = f->v;
                    break;
                }
                h = (h + 1) & mask;
            }
        }
        ls_free(slot);
        rec->nfields = w;
    }
}

int ls_json_string_at(const char *p, size_t len, struct ls_arena *arena, const char **out,
                      size_t *olen, size_t *used)
{
    struct jp j = { (const unsigned char *)p, (const unsigned char *)p + len, 0, false };

    if (len == 0 || *p != '"' || jp_str_value(&j, arena, out, olen) != LS_OK) {
        return LS_ERROR;
    }
    *used = (size_t)((const char *)j.p - p);
    return LS_OK;
}

/*
 * A nested value as fluentd writes it back (JSON.parse, then to_json): white space between
 * tokens dropped, strings written as every string is ("\u00e9" as the character, "\/" as
 * "/") and floats as Float#to_s (1.5e3 as 1500.0). Python's json.dumps separates with ", " and ": " and escapes
 * every non-ASCII character, so this is most nested JSON from applications.
 */
static int jp_compact(struct ls_arena *arena, const unsigned char *s, size_t n,
                      struct ls_value *v)
{
    struct jp j = { s, s + n, 0, false };
    struct ls_buf b;

    ls_buf_init(&b, 0);
    while (j.p < j.end) {
        unsigned char c = *j.p;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            j.p++;
        } else if (c == '"') {
            const char *sp;
            size_t sl;
            if (jp_str_value(&j, arena, &sp, &sl) != LS_OK) {
                ls_buf_release(&b);
                return LS_ERROR;
            }
            ls_json_put_str(&b, sp, sl);
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            struct ls_value nv;
            if (jp_number_value(&j, arena, &nv) != LS_OK) {
                ls_buf_release(&b);
                return LS_ERROR;
            }
            ls_json_put_value(&b, &nv);
        } else {
            ls_buf_putc(&b, (char)c);
            j.p++;
        }
    }
    v->u.s.p = ls_arena_alloc(arena, b.len ? b.len : 1);
    memcpy((char *)v->u.s.p, b.p ? b.p : "", b.len);
    v->u.s.len = b.len;
    ls_buf_release(&b);
    return LS_OK;
}

/* One value at j->p: strings decoded as in ls_json_parse_object, nested containers as
 * LS_V_JSON slices (compacted when they hold white space or escapes). */
static int jp_value(struct jp *j, struct ls_arena *arena, struct ls_value *out)
{
    const unsigned char *vs = j->p;
    struct ls_value v;

    switch (*j->p) {
    case '"':
        v.type = LS_V_STR;
        if (jp_str_value(j, arena, &v.u.s.p, &v.u.s.len) != LS_OK) {
            return LS_ERROR;
        }
        break;
    case '{':
    case '[':
        j->dirty = false;
        if (jp_skip_value(j) != LS_OK) {
            return LS_ERROR;
        }
        v.type = LS_V_JSON;
        v.u.s.p = (const char *)vs;
        v.u.s.len = (size_t)(j->p - vs);
        if (j->dirty && arena && jp_compact(arena, vs, v.u.s.len, &v) != LS_OK) {
            return LS_ERROR;
        }
        break;
    case 't':
        if (jp_literal(j, "true", 4) != LS_OK) {
            return LS_ERROR;
        }
        v = ls_vbool(true);
        break;
    case 'f':
        if (jp_literal(j, "false", 5) != LS_OK) {
            return LS_ERROR;
        }
        v = ls_vbool(false);
        break;
    case 'n':
        if (jp_literal(j, "null", 4) != LS_OK) {
            return LS_ERROR;
        }
        v = ls_vnull();
        break;
    default:
        if (jp_number_value(j, arena, &v) != LS_OK) {
            return LS_ERROR;
        }
        break;
    }
    *out = v;
    return LS_OK;
}

int ls_json_parse_object(const char *p, size_t len, struct ls_record *rec)
{
    struct jp j = { (const unsigned char *)p, (const unsigned char *)p + len, 1, false };
    unsigned start = rec->nfields;
    struct ls_value v;

    jp_ws(&j);
    if (j.p >= j.end || *j.p != '{') {
        return LS_ERROR;
    }
    j.p++;
    jp_ws(&j);
    if (j.p < j.end && *j.p == '}') {
        j.p++;
        goto done;
    }
    for (;;) {
        const char *key;
        size_t klen;

        jp_ws(&j);
        if (j.p >= j.end || *j.p != '"' || jp_str_value(&j, rec->arena, &key, &klen) != LS_OK) {
            goto fail;
        }
        jp_ws(&j);
        if (j.p >= j.end || *j.p != ':') {
            goto fail;
        }
        j.p++;
        jp_ws(&j);
        if (j.p >= j.end) {
            goto fail;
        }
        if (jp_value(&j, rec->arena, &v) != LS_OK) {
            goto fail;
        }
        ls_record_add(rec, key, klen, &v);
        jp_ws(&j);
        if (j.p >= j.end) {
            goto fail;
        }
        if (*j.p == ',') {
            j.p++;
            continue;
        }
        if (*j.p == '}') {
            j.p++;
            break;
        }
        goto fail;
    }
done:
    jp_ws(&j);
    if (j.p != j.end) {
        goto fail;
    }
    dedup_fields(rec, start);
    return LS_OK;
fail:
    rec->nfields = start;
    return LS_ERROR;
}

/* ------------------------------------------------------------------ */
/* Ruby to_s / inspect                                                */
/* ------------------------------------------------------------------ */

/* String#inspect of a UTF-8 string: \" \\ \n \t \r \f \v \b \a \e, other
 * controls as \u00XX (upper-case hex, as Ruby), invalid bytes as \xFF, and
 * '#' before '{', '$' or '@' as \# (so the text is a valid Ruby literal). */
static int ruby_put_str_inspect(struct ls_buf *b, const unsigned char *s, size_t len)
{
    static const char HX[] = "0123456789ABCDEF";
    size_t start = b->len, i = 0;

    if (ls_buf_putc(b, '"') != LS_OK) {
        return LS_AGAIN;
    }
    while (i < len) {
        unsigned c = s[i];
        size_t run = i;
        char e = 0;
        while (i < len && s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\' && s[i] != '#') {
            i++;
        }
        if (ls_buf_append(b, s + run, i - run) != LS_OK) {
            goto full;
        }
        if (i == len) {
            break;
        }
        c = s[i];
        switch (c) {
        case '"': e = '"'; break;
        case '\\': e = '\\'; break;
        case '\n': e = 'n'; break;
        case '\t': e = 't'; break;
        case '\r': e = 'r'; break;
        case '\f': e = 'f'; break;
        case '\v': e = 'v'; break;
        case '\b': e = 'b'; break;
        case '\a': e = 'a'; break;
        case 0x1b: e = 'e'; break;
        default: break;
        }
        if (e) {
            char two[2] = { '\\', e };
            if (ls_buf_append(b, two, 2) != LS_OK) {
                goto full;
            }
            i++;
            continue;
        }
        if (c == '#') {
            bool interp = i + 1 < len && (s[i + 1] == '{' || s[i + 1] == '$' || s[i + 1] == '@');
            if (ls_buf_append(b, interp ? "\\#" : "#", interp ? 2 : 1) != LS_OK) {
                goto full;
            }
            i++;
            continue;
        }
        if (c < 0x80) {
            char u[6] = { '\\', 'u', '0', '0', HX[c >> 4], HX[c & 15] };
            if (ls_buf_append(b, u, 6) != LS_OK) {
                goto full;
            }
            i++;
            continue;
        }
        {
            size_t bad = 0;
            size_t n = utf8_seq(s + i, len - i, &bad);
            if (n == 0) {
                size_t k;
                for (k = 0; k < bad; k++) {
                    char x[4] = { '\\', 'x', HX[s[i + k] >> 4], HX[s[i + k] & 15] };
                    if (ls_buf_append(b, x, 4) != LS_OK) {
                        goto full;
                    }
                }
                i += bad;
            } else if (n == 2 && s[i] == 0xc2 && s[i + 1] < 0xa0) {
                /* U+0080..U+009F are not printable */
                unsigned cp = s[i + 1];
                char u[6] = { '\\', 'u', '0', '0', HX[cp >> 4], HX[cp & 15] };
                if (ls_buf_append(b, u, 6) != LS_OK) {
                    goto full;
                }
                i += 2;
            } else {
                if (ls_buf_append(b, s + i, n) != LS_OK) {
                    goto full;
                }
                i += n;
            }
        }
    }
    if (ls_buf_putc(b, '"') == LS_OK) {
        return LS_OK;
    }
full:
    b->len = start;
    return LS_AGAIN;
}

static int ruby_put_float(struct ls_buf *b, double d)
{
    char tmp[40];
    size_t n;

    if (isnan(d)) {
        return ls_buf_append(b, "NaN", 3);
    }
    if (isinf(d)) {
        return d < 0 ? ls_buf_append(b, "-Infinity", 9) : ls_buf_append(b, "Infinity", 8);
    }
    n = fmt_double(tmp, d);
    return ls_buf_append(b, tmp, n);
}

/* Ruby's inspect of a JSON value (Hash/Array/String/Integer/Float/true/false/nil). */
static int ruby_json(struct jp *j, struct ls_buf *b)
{
    const unsigned char *s;
    size_t bl;
    bool e;
    int rc = LS_OK;

    jp_ws(j);
    if (j->p >= j->end) {
        return LS_ERROR;
    }
    switch (*j->p) {
    case '{':
    case '[': {
        unsigned char close = *j->p == '{' ? '}' : ']';
        bool obj = close == '}';
        bool first = true;
        if (++j->depth > JSON_MAX_DEPTH) {
            return LS_ERROR;
        }
        if (ls_buf_putc(b, (char)*j->p) != LS_OK) {
            return LS_AGAIN;
        }
        j->p++;
        for (;;) {
            jp_ws(j);
            if (first && j->p < j->end && *j->p == close) {
                j->p++;
                break;
            }
            if (!first && j->p < j->end && *j->p == close) {
                j->p++;
                break;
            }
            if (!first) {
                if (j->p >= j->end || *j->p != ',') {
                    return LS_ERROR;
                }
                j->p++;
                if (ls_buf_append(b, ", ", 2) != LS_OK) {
                    return LS_AGAIN;
                }
            }
            first = false;
            if (obj) {
                jp_ws(j);
                if (j->p >= j->end || *j->p != '"' || (rc = ruby_json(j, b)) != LS_OK) {
                    return rc != LS_OK ? rc : LS_ERROR;
                }
                jp_ws(j);
                if (j->p >= j->end || *j->p != ':') {
                    return LS_ERROR;
                }
                j->p++;
                if (ls_buf_append(b, "=>", 2) != LS_OK) {
                    return LS_AGAIN;
                }
            }
            if ((rc = ruby_json(j, b)) != LS_OK) {
                return rc;
            }
        }
        j->depth--;
        return ls_buf_putc(b, (char)close);
    }
    case '"':
        if (jp_string(j, &s, &bl, &e) != LS_OK) {
            return LS_ERROR;
        }
        if (!e) {
            return ruby_put_str_inspect(b, s, bl);
        } else {
            unsigned char *d = ls_malloc(bl + 1);
            size_t n = decode_string(s, bl, d);
            rc = ruby_put_str_inspect(b, d, n);
            ls_free(d);
            return rc;
        }
    case 't':
        return jp_literal(j, "true", 4) == LS_OK ? ls_buf_append(b, "true", 4) : LS_ERROR;
    case 'f':
        return jp_literal(j, "false", 5) == LS_OK ? ls_buf_append(b, "false", 5) : LS_ERROR;
    case 'n':
        return jp_literal(j, "null", 4) == LS_OK ? ls_buf_append(b, "nil", 3) : LS_ERROR;
    default: {
        bool is_int;
        const unsigned char *ns = j->p;
        size_t n;
        if (jp_number(j, &is_int) != LS_OK) {
            return LS_ERROR;
        }
        n = (size_t)(j->p - ns);
        if (is_int) {
            if (n == 2 && ns[0] == '-' && ns[1] == '0') {
                return ls_buf_putc(b, '0');
            }
            return ls_buf_append(b, ns, n);     /* Ruby integers are unbounded */
        } else {
            char *t = ls_malloc(n + 1);
            double d;
            memcpy(t, ns, n);
            t[n] = '\0';
            d = strtod(t, NULL);
            ls_free(t);
            return ruby_put_float(b, d);
        }
    }
    }
}

int ls_ruby_put_value(struct ls_buf *out, const struct ls_value *v, bool inspect)
{
    char tmp[32];
    size_t n;

    switch (v->type) {
    case LS_V_STR:
        if (inspect) {
            return ruby_put_str_inspect(out, (const unsigned char *)v->u.s.p, v->u.s.len);
        }
        return ls_buf_append(out, v->u.s.p, v->u.s.len);
    case LS_V_INT:
        n = fmt_int64(tmp, v->u.i);
        return ls_buf_append(out, tmp, n);
    case LS_V_FLOAT:
        return ruby_put_float(out, v->u.f);
    case LS_V_BOOL:
        return v->u.b ? ls_buf_append(out, "true", 4) : ls_buf_append(out, "false", 5);
    case LS_V_JSON: {
        struct jp j = { (const unsigned char *)v->u.s.p, (const unsigned char *)v->u.s.p + v->u.s.len, 0, false };
        size_t start = out->len;
        int rc = ruby_json(&j, out);
        if (rc == LS_AGAIN) {
            out->len = start;
            return LS_AGAIN;
        }
        if (rc != LS_OK) {
            /* not valid JSON after all: print it as it is */
            out->len = start;
            return ls_buf_append(out, v->u.s.p, v->u.s.len);
        }
        return LS_OK;
    }
    case LS_V_NULL:
        break;
    }
    return inspect ? ls_buf_append(out, "nil", 3) : LS_OK;
}

int ls_ruby_put_record(struct ls_buf *out, const struct ls_record *rec)
{
    size_t start = out->len;
    unsigned i;

    if (ls_buf_putc(out, '{') != LS_OK) {
        return LS_AGAIN;
    }
    for (i = 0; i < rec->nfields; i++) {
        const struct ls_field *f = &rec->fields[i];
        if ((i > 0 && ls_buf_append(out, ", ", 2) != LS_OK)
            || ruby_put_str_inspect(out, (const unsigned char *)f->key, f->key_len) != LS_OK
            || ls_buf_append(out, "=>", 2) != LS_OK || ls_ruby_put_value(out, &f->v, true) != LS_OK) {
            out->len = start;
            return LS_AGAIN;
        }
    }
    if (ls_buf_putc(out, '}') != LS_OK) {
        out->len = start;
        return LS_AGAIN;
    }
    return LS_OK;
}

int ls_json_array_get(const char *p, size_t len, size_t index, struct ls_arena *arena,
                      struct ls_value *out)
{
    struct jp j = { (const unsigned char *)p, (const unsigned char *)p + len, 1, false };
    size_t i;

    jp_ws(&j);
    if (j.p >= j.end || *j.p != '[') {
        return LS_DECLINED;
    }
    j.p++;
    jp_ws(&j);
    if (j.p < j.end && *j.p == ']') {
        return LS_DECLINED;
    }
    for (i = 0;; i++) {
        jp_ws(&j);
        if (j.p >= j.end) {
            return LS_ERROR;
        }
        if (i == index) {
            return jp_value(&j, arena, out);
        }
        if (jp_skip_value(&j) != LS_OK) {
            return LS_ERROR;
        }
        jp_ws(&j);
        if (j.p >= j.end || *j.p != ',') {
            return LS_DECLINED;
        }
        j.p++;
    }
}

int ls_json_array_next(const char *p, size_t len, size_t *off, const char **elem, size_t *elen)
{
    struct jp j = { (const unsigned char *)p + *off, (const unsigned char *)p + len, 1, false };
    const unsigned char *start;

    if (*off > len) {
        return LS_ERROR;
    }
    jp_ws(&j);
    if (*off == 0) {
        if (j.p >= j.end || *j.p != '[') {
            return LS_ERROR;
        }
        j.p++;
        jp_ws(&j);
        if (j.p < j.end && *j.p == ']') {
            *off = (size_t)(j.p - (const unsigned char *)p);   /* stays at the end */
            return LS_DECLINED;
        }
    } else if (j.p < j.end && *j.p == ',') {
        j.p++;
    } else if (j.p < j.end && *j.p == ']') {
        return LS_DECLINED;
    } else {
        return LS_ERROR;
    }
    jp_ws(&j);
    start = j.p;
    if (jp_skip_value(&j) != LS_OK) {
        return LS_ERROR;
    }
    *elem = (const char *)start;
    *elen = (size_t)(j.p - start);
    *off = (size_t)(j.p - (const unsigned char *)p);
    return LS_OK;
}

/* in_exec's JSON output: documents delimited, not parsed (the parser that takes each does). */
int ls_json_stream_next(const char *p, size_t len, size_t *start, size_t *end)
{
    size_t i = 0, depth = 0;
    bool in_str = false;

    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n')) {
        i++;
    }
    *start = i;
    if (i == len) {
        return 0;
    }
    if (p[i] != '{' && p[i] != '[' && p[i] != '"') {
        /* not a record (a number, true, null) or not JSON: the rest of the line, one error */
        const char *nl = memchr(p + i, '\n', len - i);
        if (nl == NULL) {
            return 0;
        }
        *end = (size_t)(nl - p);
        return 1;
    }
    for (; i < len; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_str = false;
                if (depth == 0) {
                    *end = i + 1;
                    return 1;
                }
            }
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0 || --depth == 0) {
                *end = i + 1;
                return 1;
            }
        }
    }
    return 0;
}
