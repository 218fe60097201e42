/*
 * test_forward_proto.c - in_forward's pieces without sockets: the handshake digests
 * (the reference's own test vectors, computed with Python's hashlib), the stream scanner
 * (split reads, declared lengths far beyond the data, the never-valid 0xc1), and the
 * chunk id journal (reload, a request a crash interrupted, expiry, the size bound).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../plugins/in_forward/forward.h"

static void starts_ends(const char *hex, const char *head, const char *tail)
{
    ck_assert_uint_eq(strlen(hex), 128);
    ck_assert_msg(strncmp(hex, head, strlen(head)) == 0, "%s does not start with %s", hex, head);
    ck_assert_msg(strcmp(hex + 128 - strlen(tail), tail) == 0, "%s does not end with %s", hex,
                  tail);
}

START_TEST(handshake_vectors)
{
    const char *salt = "0123456789abcdef0123456789abcdef";
    unsigned char nonce[16], auth[16];
    char out[129];
    int i;

    for (i = 0; i < 16; i++) {
        nonce[i] = (unsigned char)i;
        auth[i] = (unsigned char)(0x10 + i);
    }
    fwd_sha512_hex(out, salt, strlen(salt), "client.example", 14, nonce, 16, "secret", 6);
    starts_ends(out, "3a680037d3979b4f", "e171b30df");
    fwd_sha512_hex(out, salt, strlen(salt), "server.example", 14, nonce, 16, "secret", 6);
    starts_ends(out, "3389a63bef560542", "5ccf88cbbd");
    fwd_sha512_hex(out, auth, 16, "alice", 5, "pw1", 3, "", 0);
    starts_ends(out, "a6a3db015f106a43", "9f5e4c814");
}
END_TEST

START_TEST(scanner)
{
    /* ["a", {"k": [1, "xy"]}] then nil */
    static const char obj[] = "\x92\xa1" "a" "\x81\xa1" "k" "\x92\x01\xa2" "xy" "\xc0";
    size_t len = sizeof(obj) - 1, i;
    struct ls_mp_scan s;
    long n = 0;

    memset(&s, 0, sizeof(s));
    for (i = 0; i <= len - 1; i++) {       /* byte by byte, as a slow client sends */
        n = ls_mp_scan(&s, obj, i, 1000);
        if (n != LS_MP_MORE) {
            break;
        }
    }
    ck_assert_int_eq(n, (long)len - 1);
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(ls_mp_scan(&s, obj + len - 1, 1, 1000), 1);

    /* 2^32-1 elements announced in 5 bytes: too big at once, nothing allocated */
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(ls_mp_scan(&s, "\xdd\xff\xff\xff\xff", 5, 1 << 20), LS_MP_BIG);
    /* a str32 of 16 MiB under a 1 MiB limit */
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(ls_mp_scan(&s, "\xdb\x01\x00\x00\x00", 5, 1 << 20), LS_MP_BIG);
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(ls_mp_scan(&s, "\x92\xc1", 2, 100), LS_MP_BAD);
    /* fixext 8 (EventTime) and ext 8 */
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(ls_mp_scan(&s, "\xd7\x00" "12345678", 10, 100), 10);
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(ls_mp_scan(&s, "\xc7\x08\x00" "12345678", 11, 100), 11);
}
END_TEST

static char path[64];

static void ids_setup(void)
{
    snprintf(path, sizeof(path), "/tmp/test_fwd_ids.%d", (int)getpid());
    unlink(path);
}

static void ids_teardown(void)
{
    unlink(path);
}

START_TEST(ids_journal)
{
    char err[256];
    uint64_t done;
    struct fwd_ids *ids = fwd_ids_open(path, 3600, 100, 0, err, sizeof(err));

    ck_assert_ptr_nonnull(ids);
    ck_assert_uint_eq(fwd_ids_next_seq(ids), 1);
    fwd_ids_begin(ids, "a\n", 2, 1, 0);
    fwd_ids_progress(ids, "a\n", 2, 11, 'a');
    fwd_ids_begin(ids, "b", 1, 11, 0);
    ck_assert_int_eq(fwd_ids_flush(ids, err, sizeof(err)), LS_OK);
    ck_assert_int_eq(fwd_ids_lookup(ids, "a\n", 2, &done), FWD_ID_ACKED);
    ck_assert_int_eq(fwd_ids_lookup(ids, "a", 1, &done), FWD_ID_UNKNOWN);
    fwd_ids_close(ids);

    /* "b" was interrupted by a crash; the buffers hold up to sequence 14: 4 of its records */
    ids = fwd_ids_open(path, 3600, 100, 14, err, sizeof(err));
    ck_assert_ptr_nonnull(ids);
    ck_assert_int_eq(fwd_ids_lookup(ids, "a\n", 2, &done), FWD_ID_ACKED);
    ck_assert_int_eq(fwd_ids_lookup(ids, "b", 1, &done), FWD_ID_PARTIAL);
    ck_assert_uint_eq(done, 4);
    ck_assert_uint_eq(fwd_ids_next_seq(ids), 15);
    /* the retransmission: the rest from 15, then acknowledged */
    fwd_ids_begin(ids, "b", 1, 15, done);
    fwd_ids_progress(ids, "b", 1, 21, 'a');
    ck_assert_int_eq(fwd_ids_flush(ids, err, sizeof(err)), LS_OK);
    fwd_ids_close(ids);

    /* buffers empty now (uploaded): the journal alone still knows both */
    ids = fwd_ids_open(path, 3600, 100, 0, err, sizeof(err));
    ck_assert_int_eq(fwd_ids_lookup(ids, "b", 1, &done), FWD_ID_ACKED);
    ck_assert_uint_eq(fwd_ids_next_seq(ids), 21);
    fwd_ids_close(ids);
}
END_TEST

START_TEST(ids_bounded)
{
    char err[256], id[32];
    uint64_t done;
    struct fwd_ids *ids = fwd_ids_open(path, 3600, 16, 0, err, sizeof(err));
    int i;

    ck_assert_ptr_nonnull(ids);
    for (i = 0; i < 100; i++) {
        snprintf(id, sizeof(id), "id-%d", i);
        fwd_ids_begin(ids, id, strlen(id), (uint64_t)i * 10 + 1, 0);
        fwd_ids_progress(ids, id, strlen(id), (uint64_t)i * 10 + 11, 'a');
        ck_assert_int_eq(fwd_ids_flush(ids, err, sizeof(err)), LS_OK);
    }
    ck_assert_uint_le(fwd_ids_count(ids), 16 + 16 / 8 + 16);
    ck_assert_int_eq(fwd_ids_lookup(ids, "id-99", 5, &done), FWD_ID_ACKED);
    ck_assert_int_eq(fwd_ids_lookup(ids, "id-0", 4, &done), FWD_ID_UNKNOWN);
    fwd_ids_close(ids);
    /* expiry 0 s: forgotten at the next open, the sequence still goes on */
    ids = fwd_ids_open(path, 0, 16, 0, err, sizeof(err));
    sleep(1);
    ck_assert_int_eq(fwd_ids_lookup(ids, "id-99", 5, &done), FWD_ID_UNKNOWN);
    ck_assert_uint_ge(fwd_ids_next_seq(ids), 1001);
    fwd_ids_close(ids);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("forward_proto");
    TCase *t = tcase_create("proto");
    TCase *j = tcase_create("ids");
    SRunner *sr;
    int nf;

    tcase_add_test(t, handshake_vectors);
    tcase_add_test(t, scanner);
    suite_add_tcase(s, t);
    tcase_add_checked_fixture(j, ids_setup, ids_teardown);
    tcase_add_test(j, ids_journal);
    tcase_add_test(j, ids_bounded);
    suite_add_tcase(s, j);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf != 0;
}
