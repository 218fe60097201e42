/*
 * enc.c - in_tail's `encoding` / `from_encoding` (and record_modifier's `char_encoding`):
 * convert each line or value with glibc iconv.
 *
 * fluentd reads lines as raw bytes; `encoding X` alone only tags them as X
 * (force_encoding, no conversion: fluentd#5010), and `from_encoding F` +
 * `encoding X` transcodes every line with Ruby's
 * encode(X, F, invalid: :replace, undef: :replace). We do the same with
 * glibc's iconv, no extra library: fluentd/Ruby names are mapped to glibc's
 * (Ruby's "SJIS" is Windows-31J = glibc CP932, "Shift_JIS" is strict
 * JIS X 0208 = glibc SHIFT_JIS).
 *
 * Design decisions:
 * - Lines are split on the byte 0x0A before conversion, so only
 *   ASCII-compatible encodings are accepted (checked at configure time by
 *   converting an ASCII sample both ways); UTF-16/UTF-32 are refused.
 * - Runs of ASCII bytes are copied as they are and only the other bytes go
 *   through iconv. That is faster (log lines are mostly ASCII) and it is
 *   what Ruby does for Shift_JIS, whose single bytes are ASCII: glibc's
 *   SHIFT_JIS would turn '\' into YEN SIGN and '~' into OVERLINE, which
 *   would break paths and escapes in Japanese Windows logs.
 * - iconv stops at a bad spot without saying whether the input was invalid
 *   or just has no equivalent in the target. We look at the byte structure
 *   of the source (Shift_JIS/CP932, EUC-JP, UTF-8): a well-formed character
 *   that iconv refuses is one unconvertible character and gets one
 *   replacement (Ruby's undef: :replace); anything else is an invalid byte
 *   and gets one replacement per byte (invalid: :replace). The replacement
 *   is U+FFFD when the target is UTF-8, else "?", as Ruby.
 * - The output buffer is reused for every line and capped, so a long line
 *   costs at most its cap once, never an allocation per line.
 */
#include "enc.h"

#include <errno.h>
#include <iconv.h>
#include <strings.h>

enum {
    ENC_UNICODE = 1 << 0,    /* target replacement is U+FFFD */
    ENC_BINARY  = 1 << 1,    /* Ruby ASCII-8BIT: bytes; converting it means 7-bit ASCII */
};

enum enc_shape {             /* byte structure of a source encoding */
    SHAPE_OTHER = 0,         /* unknown: the whole line goes through iconv */
    SHAPE_ASCII,             /* ASCII, ISO-8859-x...: bytes >= 0x80 are single characters */
    SHAPE_UTF8,
    SHAPE_SJIS,              /* Shift_JIS, CP932: the second byte may be in 0x40-0x7E */
    SHAPE_EUCJP,
};

struct enc_alias {
    const char *ruby;        /* compared case-insensitively */
    const char *iconv;
    unsigned flags;
    enum enc_shape shape;
};

static const struct enc_alias enc_aliases[] = {
    { "ASCII-8BIT", "ASCII", ENC_BINARY, SHAPE_ASCII },
    { "BINARY", "ASCII", ENC_BINARY, SHAPE_ASCII },
    { "US-ASCII", "ASCII", 0, SHAPE_ASCII },
    { "ASCII", "ASCII", 0, SHAPE_ASCII },
    { "ANSI_X3.4-1968", "ASCII", 0, SHAPE_ASCII },
    { "646", "ASCII", 0, SHAPE_ASCII },
    { "UTF-8", "UTF-8", ENC_UNICODE, SHAPE_UTF8 },
    { "CP65001", "UTF-8", ENC_UNICODE, SHAPE_UTF8 },
    { "Shift_JIS", "SHIFT_JIS", 0, SHAPE_SJIS },
    { "Windows-31J", "CP932", 0, SHAPE_SJIS },
    { "CP932", "CP932", 0, SHAPE_SJIS },
    { "csWindows31J", "CP932", 0, SHAPE_SJIS },
    { "SJIS", "CP932", 0, SHAPE_SJIS },            /* Ruby: SJIS is Windows-31J */
    { "PCK", "CP932", 0, SHAPE_SJIS },
    { "EUC-JP", "EUC-JP", 0, SHAPE_EUCJP },
    { "eucJP", "EUC-JP", 0, SHAPE_EUCJP },
    { "eucJP-ms", "EUC-JP-MS", 0, SHAPE_EUCJP },
    { "euc-jp-ms", "EUC-JP-MS", 0, SHAPE_EUCJP },
    { "ISO-8859-1", "ISO-8859-1", 0, SHAPE_ASCII },
    { "ISO8859-1", "ISO-8859-1", 0, SHAPE_ASCII },
};

struct enc_info {
    const char *iconv;
    unsigned flags;
    enum enc_shape shape;
};

static void enc_resolve(const char *name, struct enc_info *ei)
{
    size_t i;

    for (i = 0; i < sizeof(enc_aliases) / sizeof(enc_aliases[0]); i++) {
        if (strcasecmp(name, enc_aliases[i].ruby) == 0) {
            ei->iconv = enc_aliases[i].iconv;
            ei->flags = enc_aliases[i].flags;
            ei->shape = enc_aliases[i].shape;
            return;
        }
    }
    ei->iconv = name;           /* glibc knows many names itself (EUC-KR, GB18030, CP1252...) */
    ei->flags = 0;
    ei->shape = SHAPE_OTHER;
}

/* UTF-16/UTF-32/UCS-2/UCS-4 and friends: 0x0A is not a line end there */
static bool enc_is_wide(const char *name)
{
    static const char *const wide[] = { "UTF16", "UTF32", "UCS2", "UCS4", "UNICODE", "WCHART",
                                        "INTERNAL", "UTF7", NULL };
    char norm[32];
    size_t n = 0, i;

    for (; *name && n + 1 < sizeof(norm); name++) {
        if (*name != '-' && *name != '_') {
            norm[n++] = (char)(*name >= 'a' && *name <= 'z' ? *name - 32 : *name);
        }
    }
    norm[n] = '\0';
    for (i = 0; wide[i]; i++) {
        if (strncmp(norm, wide[i], strlen(wide[i])) == 0) {
            return true;
        }
    }
    return false;
}

/* Convert in with a fresh cd; true if it converts completely to exactly expect. */
static bool enc_roundtrip(const char *to, const char *from, const char *in, const char *expect)
{
    iconv_t cd = iconv_open(to, from);
    char out[64];
    char *ip = (char *)(uintptr_t)in, *op = out;
    size_t il = strlen(in), ol = sizeof(out);
    bool ok;

    if (cd == (iconv_t)-1) {
        return false;
    }
    ok = iconv(cd, &ip, &il, &op, &ol) != (size_t)-1 && il == 0 &&
         iconv(cd, NULL, NULL, &op, &ol) != (size_t)-1 &&
         (size_t)(op - out) == strlen(expect) && memcmp(out, expect, strlen(expect)) == 0;
    iconv_close(cd);
    return ok;
}

/* Does writing a non-ASCII character switch a shift state (ISO-2022-JP's ESC $ B, SO/SI)? */
static bool enc_stateful_target(const char *to)
{
    static const char probe[] = "a\xe3\x81\x82\xc3\xa9\xd0\x96\xe4\xb8\x80" "b";
    iconv_t cd = iconv_open(to, "UTF-8");
    char out[64];
    char *ip = (char *)(uintptr_t)probe, *op = out;
    size_t il = strlen(probe), ol = sizeof(out);
    bool stateful = false;

    if (cd == (iconv_t)-1) {
        return false;
    }
    /* characters the target lacks stop the probe early; what was written is enough */
    (void)iconv(cd, &ip, &il, &op, &ol);
    (void)iconv(cd, NULL, NULL, &op, &ol);
    stateful = memchr(out, 0x1b, (size_t)(op - out)) || memchr(out, 0x0e, (size_t)(op - out));
    iconv_close(cd);
    return stateful;
}

int ls_enc_check(const char *name, bool as_target, char *err, size_t errlen)
{
    /* no backslash or tilde: glibc's SHIFT_JIS maps them to YEN SIGN and OVERLINE (see above) */
    static const char sample[] = "\t\r\n !\"#09:@AZ[]^_`az{|}";
    struct enc_info ei;
    iconv_t cd;

    if (*name == '\0' || strpbrk(name, "/,") != NULL) {
        snprintf(err, errlen, "unknown encoding name - %s", name);
        return LS_ERROR;
    }
    if (enc_is_wide(name)) {
        snprintf(err, errlen, "encoding '%s' is not supported: lines are split on the byte 0x0A, "
                 "so only ASCII-compatible encodings work (not UTF-16/UTF-32)", name);
        return LS_ERROR;
    }
    enc_resolve(name, &ei);
    cd = iconv_open("UTF-8", ei.iconv);
    if (cd == (iconv_t)-1) {
        snprintf(err, errlen, "unknown encoding name - %s", name);
        return LS_ERROR;
    }
    iconv_close(cd);
    if (!enc_roundtrip("UTF-8", ei.iconv, sample, sample) ||
        !enc_roundtrip(ei.iconv, "UTF-8", sample, sample)) {
        snprintf(err, errlen, "encoding '%s' is not supported: it is not ASCII-compatible "
                 "(lines are split on the byte 0x0A)", name);
        return LS_ERROR;
    }
    if (as_target && enc_stateful_target(ei.iconv)) {
        snprintf(err, errlen, "encoding '%s' is not supported as 'encoding': it is stateful "
                 "(shift sequences)", name);
        return LS_ERROR;
    }
    return LS_OK;
}

bool ls_enc_same(const char *a, const char *b)
{
    struct enc_info ea, eb;

    enc_resolve(a, &ea);
    enc_resolve(b, &eb);
    return strcasecmp(ea.iconv, eb.iconv) == 0 && ea.flags == eb.flags;
}

/* ------------------------------------------------------------------ */
/* conversion                                                           */

/* The byte length of a well-formed character at p (n bytes left), 0 when p is ill-formed. */
static size_t enc_char_len(enum enc_shape shape, const unsigned char *p, size_t n)
{
    unsigned c = p[0];

    switch (shape) {
    case SHAPE_SJIS:
        if ((c >= 0x81 && c <= 0x9f) || (c >= 0xe0 && c <= 0xfc)) {
            if (n >= 2 && ((p[1] >= 0x40 && p[1] <= 0x7e) || (p[1] >= 0x80 && p[1] <= 0xfc))) {
                return 2;
            }
            return 0;
        }
        return c >= 0xa1 && c <= 0xdf ? 1 : 0;     /* half-width katakana */
    case SHAPE_EUCJP:
        if (c == 0x8e) {
            return n >= 2 && p[1] >= 0xa1 && p[1] <= 0xdf ? 2 : 0;
        }
        if (c == 0x8f) {
            return n >= 3 && p[1] >= 0xa1 && p[1] <= 0xfe && p[2] >= 0xa1 && p[2] <= 0xfe ? 3
                                                                                          : 0;
        }
        if (c >= 0xa1 && c <= 0xfe) {
            return n >= 2 && p[1] >= 0xa1 && p[1] <= 0xfe ? 2 : 0;
        }
        return 0;
    case SHAPE_UTF8: {
        size_t len, i;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n < len) {
            return 0;
        }
        for (i = 1; i < len; i++) {
            if ((p[i] & 0xc0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
            return 0;
        }
        return len;
    }
    case SHAPE_ASCII:
        return 1;            /* a byte iconv refuses is a character without equivalent */
    case SHAPE_OTHER:
        break;
    }
    return 0;
}

/* Convert in[0..n) through iconv into e->out. LS_OK, or LS_AGAIN when the cap is reached. */
static int enc_run(struct ls_enc *e, enum enc_shape shape, const char *in, size_t n, long *bad)
{
    char *ip = (char *)(uintptr_t)in;
    size_t il = n;

    while (il > 0) {
        size_t room, want, ol;
        char *op;
        size_t r;

        /* most text grows by at most half (2 Shift_JIS bytes -> 3 UTF-8); E2BIG asks for more */
        want = il + il / 2 + 8;
        if (e->out.max && want > e->out.max - e->out.len) {
            want = e->out.max - e->out.len;
        }
        if (want == 0 || ls_buf_reserve(&e->out, want) != LS_OK) {
            return LS_AGAIN;
        }
        room = e->out.cap - 1 - e->out.len;   /* ls_buf keeps one byte for a NUL */
        if (e->out.max && room > e->out.max - e->out.len) {
            room = e->out.max - e->out.len;
        }
        op = e->out.p + e->out.len;
        ol = room;
        r = iconv((iconv_t)e->cd, &ip, &il, &op, &ol);
        e->out.len += room - ol;
        if (r != (size_t)-1) {
            continue;
        }
        if (errno == E2BIG) {
            if (room - ol == 0) {
                /* no progress at all: room for one more character is needed */
                if (e->out.max && e->out.len + 16 > e->out.max) {
                    return LS_AGAIN;
                }
                if (ls_buf_reserve(&e->out, room + 16) != LS_OK) {
                    return LS_AGAIN;
                }
            }
            continue;
        }
        /* EILSEQ (invalid or unconvertible) or EINVAL (incomplete at the end) */
        {
            size_t skip = enc_char_len(shape, (const unsigned char *)ip, il);
            if (skip == 0 || errno == EINVAL) {
                skip = 1;
            }
            if (ls_buf_append(&e->out, e->repl, e->repl_len) != LS_OK) {
                return LS_AGAIN;
            }
            (*bad)++;
            ip += skip;
            il -= skip;
            iconv((iconv_t)e->cd, NULL, NULL, NULL, NULL);
        }
    }
    return LS_OK;
}

int ls_enc_open(struct ls_enc *e, const char *from, const char *to, size_t max_out,
                  char *err, size_t errlen)
{
    struct enc_info ef, et;
    iconv_t cd;

    enc_resolve(from, &ef);
    enc_resolve(to, &et);
    cd = iconv_open(et.iconv, ef.iconv);
    if (cd == (iconv_t)-1) {
        snprintf(err, errlen, "cannot convert from '%s' to '%s' (%d: %s)", from, to, errno,
                 strerror(errno));
        return LS_ERROR;
    }
    e->cd = (void *)cd;
    e->shape = ef.shape;
    if (et.flags & ENC_UNICODE) {
        memcpy(e->repl, "\xef\xbf\xbd", 3);
        e->repl_len = 3;
    } else {
        e->repl[0] = '?';
        e->repl_len = 1;
    }
    ls_buf_init(&e->out, max_out);
    return LS_OK;
}

long ls_enc_convert(struct ls_enc *e, const char *in, size_t len, const char **out,
                      size_t *outlen)
{
    const unsigned char *p = (const unsigned char *)in;
    enum enc_shape shape = (enum enc_shape)e->shape;
    size_t i = 0;
    long bad = 0;

    ls_buf_reset(&e->out);
    iconv((iconv_t)e->cd, NULL, NULL, NULL, NULL);
    while (i < len) {
        size_t j = i;

        if (shape == SHAPE_OTHER) {
            j = len;
        } else {
            while (j < len && p[j] < 0x80) {
                j++;
            }
            if (j > i) {
                /* ASCII is ASCII in every shape we know (Ruby's Shift_JIS included) */
                if (ls_buf_append(&e->out, in + i, j - i) != LS_OK) {
                    return -1;
                }
                i = j;
                continue;
            }
            while (j < len && p[j] >= 0x80) {
                /* a Shift_JIS second byte may be ASCII: keep the pair in the run */
                size_t cl = shape == SHAPE_SJIS ? enc_char_len(shape, p + j, len - j) : 0;
                j += cl ? cl : 1;
            }
        }
        if (enc_run(e, shape, in + i, j - i, &bad) != LS_OK) {
            return -1;
        }
        i = j;
    }
    *out = e->out.p ? e->out.p : "";
    *outlen = e->out.len;
    return bad;
}

void ls_enc_close(struct ls_enc *e)
{
    if (e->cd) {
        iconv_close((iconv_t)e->cd);
        e->cd = NULL;
    }
    ls_buf_release(&e->out);
}
