/*
 * test_tail_enc.c - in_tail's from_encoding -> encoding line conversion (agent/enc.c).
 *
 * Expected bytes are written out by hand from the code tables (Shift_JIS /
 * CP932 / EUC-JP -> Unicode), not produced by iconv, so a wrong mapping or
 * a wrong replacement rule fails here: Ruby's Shift_JIS keeps '\' and '~'
 * ASCII, a second byte in 0x40-0x7E stays inside its character, invalid
 * bytes become one U+FFFD each, a well-formed character without a mapping
 * becomes one U+FFFD, the iconv state does not leak into the next line,
 * and the output cap holds.
 */
#include <check.h>

#include "enc.h"
#include "log.h"

#define FFFD "\xef\xbf\xbd"

static struct ls_enc enc;

static void open_enc(const char *from, const char *to, size_t max)
{
    char err[256];

    memset(&enc, 0, sizeof(enc));
    ck_assert_msg(ls_enc_open(&enc, from, to, max, err, sizeof(err)) == LS_OK, "%s", err);
}

/* Convert in (n bytes) and compare with want; returns the replaced count. */
static long conv_eq(const char *in, size_t n, const char *want, size_t wn)
{
    const char *out = NULL;
    size_t outlen = 0;
    long bad = ls_enc_convert(&enc, in, n, &out, &outlen);

    ck_assert_int_ge(bad, 0);
    ck_assert_ptr_nonnull(out);
    ck_assert_msg(outlen == wn && memcmp(out, want, wn) == 0,
                  "converted to %zu bytes '%.*s', want %zu bytes '%.*s'", outlen, (int)outlen,
                  out, wn, (int)wn, want);
    return bad;
}

#define CONV(in, want) conv_eq(in, sizeof(in) - 1, want, sizeof(want) - 1)

START_TEST(sjis_to_utf8)
{
    open_enc("Shift_JIS", "UTF-8", 4096);
    /* ロ=83 8D グ=83 4F ('O' as second byte) */
    ck_assert_int_eq(CONV("\x83\x8d\x83\x4f", "\xe3\x83\xad\xe3\x82\xb0"), 0);
    /* 表=95 5C: the second byte is '\' and must stay inside the character */
    ck_assert_int_eq(CONV("a\x95\x5c" "b", "a\xe8\xa1\xa8" "b"), 0);
    /* Ruby's Shift_JIS single bytes are ASCII: no YEN SIGN, no OVERLINE */
    ck_assert_int_eq(CONV("C:\\logs\\~x", "C:\\logs\\~x"), 0);
    /* 81 60 is WAVE DASH U+301C in JIS X 0208 (CP932 says FULLWIDTH TILDE) */
    ck_assert_int_eq(CONV("\x81\x60", "\xe3\x80\x9c"), 0);
    /* half-width katakana ｶ = B6 -> U+FF76 */
    ck_assert_int_eq(CONV("\xb6", "\xef\xbd\xb6"), 0);
    /* NEC's ① (87 40) is not in Shift_JIS: one character, one U+FFFD, no stray '@' */
    ck_assert_int_eq(CONV("x\x87\x40y", "x" FFFD "y"), 1);
    ls_enc_close(&enc);
}
END_TEST

START_TEST(cp932_to_utf8)
{
    open_enc("CP932", "UTF-8", 4096);
    ck_assert_int_eq(CONV("\x87\x40", "\xe2\x91\xa0"), 0);               /* ① */
    ck_assert_int_eq(CONV("\x81\x60", "\xef\xbd\x9e"), 0);               /* ～ U+FF5E */
    ck_assert_int_eq(CONV("\\~", "\\~"), 0);
    /* 85 40 is well-formed but unassigned: one replacement for the pair */
    ck_assert_int_eq(CONV("\x85\x40z", FFFD "z"), 1);
    ls_enc_close(&enc);
    /* Ruby's names for the same table */
    open_enc("Windows-31J", "utf-8", 4096);
    ck_assert_int_eq(CONV("\x87\x40", "\xe2\x91\xa0"), 0);
    ls_enc_close(&enc);
    open_enc("sjis", "UTF-8", 4096);
    ck_assert_int_eq(CONV("\x87\x40", "\xe2\x91\xa0"), 0);
    ls_enc_close(&enc);
}
END_TEST

START_TEST(eucjp_to_utf8)
{
    open_enc("EUC-JP", "UTF-8", 4096);
    ck_assert_int_eq(CONV("\xa5\xed\xa5\xb0 ok", "\xe3\x83\xad\xe3\x82\xb0 ok"), 0);
    ck_assert_int_eq(CONV("\x8e\xb6", "\xef\xbd\xb6"), 0);                 /* SS2 katakana */
    /* a first byte followed by ASCII is invalid: one U+FFFD, the ASCII stays */
    ck_assert_int_eq(CONV("\xa5" "A", FFFD "A"), 1);
    ls_enc_close(&enc);
}
END_TEST

START_TEST(invalid_bytes_one_fffd_each)
{
    open_enc("Shift_JIS", "UTF-8", 4096);
    ck_assert_int_eq(CONV("a\xff\xfd" "b", "a" FFFD FFFD "b"), 2);
    /* a first byte whose second byte is invalid: the first byte only, the space stays */
    ck_assert_int_eq(CONV("\x81 x", FFFD " x"), 1);
    /* truncated at the end of the line */
    ck_assert_int_eq(CONV("ab\x83", "ab" FFFD), 1);
    /* the state is reset: the next line converts cleanly */
    ck_assert_int_eq(CONV("\x83\x8d", "\xe3\x83\xad"), 0);
    ls_enc_close(&enc);

    /* Ruby: ASCII-8BIT -> UTF-8 replaces every byte above 0x7F */
    open_enc("ASCII-8BIT", "UTF-8", 4096);
    ck_assert_int_eq(CONV("\xe3\x81\x82!", FFFD FFFD FFFD "!"), 3);
    ls_enc_close(&enc);

    /* to a non-Unicode target the replacement is '?', one per character (é) or bad byte */
    open_enc("UTF-8", "US-ASCII", 4096);
    ck_assert_int_eq(CONV("caf\xc3\xa9 \xff.", "caf? ?."), 2);
    ls_enc_close(&enc);
}
END_TEST

START_TEST(empty_line)
{
    const char *out = NULL;
    size_t outlen = 99;

    open_enc("Shift_JIS", "UTF-8", 64);
    ck_assert_int_eq(ls_enc_convert(&enc, "", 0, &out, &outlen), 0);
    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq(outlen, 0);
    ls_enc_close(&enc);
}
END_TEST

START_TEST(long_line_and_cap)
{
    enum { N = 100000 };
    char *in = ls_malloc(N);
    const char *out = NULL;
    size_t outlen = 0, i;
    long bad;

    /* worst growth: every byte becomes 3 (half-width katakana, or U+FFFD for a bad byte);
     * tail sizes the cap at 4x max_line_size + 16 */
    open_enc("Shift_JIS", "UTF-8", (size_t)N * 4 + 16);
    memset(in, 0xb6, N);
    ck_assert_int_eq(ls_enc_convert(&enc, in, N, &out, &outlen), 0);
    ck_assert_uint_eq(outlen, (size_t)N * 3);
    for (i = 0; i < outlen; i += 3) {
        ck_assert(memcmp(out + i, "\xef\xbd\xb6", 3) == 0);
    }
    memset(in, 0xff, N);
    bad = ls_enc_convert(&enc, in, N, &out, &outlen);
    ck_assert_int_eq(bad, N);
    ck_assert_uint_eq(outlen, (size_t)N * 3);
    /* mixed: 2-byte characters whose second byte is ASCII, across iconv's internal chunks */
    for (i = 0; i + 1 < N; i += 2) {
        in[i] = (char)0x83;
        in[i + 1] = 0x4f;                     /* グ */
    }
    ck_assert_int_eq(ls_enc_convert(&enc, in, N, &out, &outlen), 0);
    ck_assert_uint_eq(outlen, (size_t)N / 2 * 3);
    ck_assert(memcmp(out + outlen - 3, "\xe3\x82\xb0", 3) == 0);
    ck_assert_uint_le(enc.out.cap, (size_t)N * 4 + 17);
    ls_enc_close(&enc);

    /* a cap that is too small: -1, and the next line still works */
    open_enc("Shift_JIS", "UTF-8", 100);
    memset(in, 0xb6, 50);
    ck_assert_int_eq(ls_enc_convert(&enc, in, 50, &out, &outlen), -1);
    ck_assert_int_eq(ls_enc_convert(&enc, in, 33, &out, &outlen), 0);
    ck_assert_uint_eq(outlen, 99);
    memset(in, 0xff, 34);
    ck_assert_int_eq(ls_enc_convert(&enc, in, 34, &out, &outlen), -1);
    ls_enc_close(&enc);
    ls_free(in);
}
END_TEST

START_TEST(names)
{
    static const char *const good[] = { "Shift_JIS", "shift_jis", "CP932", "Windows-31J", "SJIS",
                                        "EUC-JP", "eucJP-ms", "UTF-8", "utf-8", "ASCII-8BIT",
                                        "BINARY", "US-ASCII", "ISO-8859-1", "EUC-KR", "GB18030",
                                        "CP1252", NULL };
    static const char *const bad[] = { "nope", "UTF-16LE", "UTF-16", "utf32", "UCS-2", "EBCDIC-US",
                                       "x//IGNORE", "UTF-8//TRANSLIT", "", NULL };
    char err[256];
    size_t i;

    for (i = 0; good[i]; i++) {
        ck_assert_msg(ls_enc_check(good[i], true, err, sizeof(err)) == LS_OK, "%s: %s",
                      good[i], err);
    }
    for (i = 0; bad[i]; i++) {
        ck_assert_msg(ls_enc_check(bad[i], false, err, sizeof(err)) == LS_ERROR, "%s accepted",
                      bad[i]);
    }
    ck_assert_int_eq(ls_enc_check("nope", false, err, sizeof(err)), LS_ERROR);
    ck_assert_str_eq(err, "unknown encoding name - nope");
    ck_assert_int_eq(ls_enc_check("UTF-16LE", false, err, sizeof(err)), LS_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "UTF-16"));
    /* stateful: fine to read from, not to write to */
    ck_assert_int_eq(ls_enc_check("ISO-2022-JP", false, err, sizeof(err)), LS_OK);
    ck_assert_int_eq(ls_enc_check("ISO-2022-JP", true, err, sizeof(err)), LS_ERROR);

    ck_assert(ls_enc_same("CP932", "Windows-31J"));
    ck_assert(ls_enc_same("SJIS", "cp932"));
    ck_assert(ls_enc_same("utf-8", "UTF-8"));
    ck_assert(!ls_enc_same("Shift_JIS", "SJIS"));
    ck_assert(!ls_enc_same("ASCII-8BIT", "US-ASCII"));
    ck_assert(!ls_enc_same("EUC-JP", "UTF-8"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tail_enc");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int nf;

    ls_log_level = LS_LOG_ERROR;
    tcase_add_test(tc, sjis_to_utf8);
    tcase_add_test(tc, cp932_to_utf8);
    tcase_add_test(tc, eucjp_to_utf8);
    tcase_add_test(tc, invalid_bytes_one_fffd_each);
    tcase_add_test(tc, empty_line);
    tcase_add_test(tc, long_line_and_cap);
    tcase_add_test(tc, names);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf != 0;
}
