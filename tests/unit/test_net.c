/*
 * test_net.c - the network inputs' stream framing (agent/net.c ls_framer): fluentd's
 * delimiter split and RFC 6587 octet counting, over-long frames, pieces of any size.
 */
#include <check.h>

#include "net.h"

/* Feed s in pieces of `piece` bytes into a buffer as net.c does; collect frames as
   "a|b|" and over-long drops as "!"; a broken stream ends with "E". */
static void run(struct ls_framer *f, const char *s, size_t piece, char *out, size_t outlen)
{
    char buf[4096];
    size_t len = 0, pos = 0, n = strlen(s), o = 0;

    out[0] = '\0';
    while (pos < n) {
        size_t take = n - pos < piece ? n - pos : piece, off = 0;
        memcpy(buf + len, s + pos, take);
        len += take;
        pos += take;
        for (;;) {
            const char *fr;
            size_t flen, dropped;
            int rc = ls_framer_next(f, buf, len, &off, &fr, &flen, &dropped);
            if (rc == LS_OK) {
                o += (size_t)snprintf(out + o, outlen - o, "%.*s|", (int)flen, fr);
            } else if (rc == LS_DECLINED) {
                o += (size_t)snprintf(out + o, outlen - o, "!");
            } else if (rc == LS_ERROR) {
                snprintf(out + o, outlen - o, "E");
                return;
            } else {
                break;
            }
        }
        memmove(buf, buf + off, len - off);
        len -= off;
        ck_assert_uint_lt(len, f->max + f->dlen + 32);
    }
}

static void check(bool octet, const char *delim, size_t max, const char *in, const char *want)
{
    static const size_t pieces[] = { 1, 2, 3, 7, 4096 };
    char out[4096];
    size_t i;

    for (i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        struct ls_framer f = { octet, delim, delim ? strlen(delim) : 0, max, false, 0 };
        run(&f, in, pieces[i], out, sizeof(out));
        ck_assert_msg(strcmp(out, want) == 0, "'%s' in pieces of %zu: got '%s', want '%s'", in,
                      pieces[i], out, want);
    }
}

START_TEST(test_delimiter)
{
    check(false, "\n", 100, "a\nbb\n\nccc", "a|bb||");
    check(false, "\r\n", 100, "a\r\nb\nc\r\n\r", "a|b\nc|");
    /* an over-long line is dropped up to its delimiter, the next line is whole */
    check(false, "\n", 4, "abcd\nabcde\nxy\n", "abcd|!xy|");
    check(false, "\n", 4, "abcdefghijklmnop\nxy\n", "!xy|");
    check(false, "\r\n", 3, "abcdefg\r\nxy\r\n", "!xy|");
}
END_TEST

START_TEST(test_octet_count)
{
    check(true, " ", 100, "5 hello3 abc0 ", "hello|abc||");
    /* frames may hold newlines; whitespace other than a space may stand before a length */
    check(true, " ", 100, "3 a\nb\n\r\n2 xy", "a\nb|xy|");
    check(true, " ", 100, "12 short", "");
    /* an over-long frame is skipped by its length, the next frame is whole */
    check(true, " ", 4, "10 01234567892 ok", "!ok|");
    check(true, " ", 4, "5 abcde3 xyz", "!xyz|");
    /* not a length: the stream cannot be resynchronised */
    check(true, " ", 100, "x5 hello", "E");
    check(true, " ", 100, "3 abc 3 abc", "abc|E");       /* a space after a frame, as fluentd */
    check(true, " ", 100, "99999999999 a", "E");
}
END_TEST

START_TEST(test_chomp)
{
    ck_assert_uint_eq(ls_net_chomp("a\r\n", 3), 1);
    ck_assert_uint_eq(ls_net_chomp("a\n\n", 3), 2);
    ck_assert_uint_eq(ls_net_chomp("a\r", 2), 1);
    ck_assert_uint_eq(ls_net_chomp("a\n\r", 3), 2);
    ck_assert_uint_eq(ls_net_chomp("", 0), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("net");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_delimiter);
    tcase_add_test(tc, test_octet_count);
    tcase_add_test(tc, test_chomp);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
