/*
 * test_parquet.c - the Parquet writer's building blocks: the Thrift compact
 * encoder against the byte dumps DuckDB accepted (shared/reference/parquet.md
 * §2.5), the RLE/bit-packing hybrid against known bytes and a decoder written
 * from the spec here, and the file frame (magic, footer length) of whole files.
 * DuckDB reading the files is tests/integration/test_parquet.py.
 */
#include <check.h>

#include "parquet.h"

static void assert_prefix(const struct ls_buf *b, const char *want, size_t n)
{
    ck_assert_uint_ge(b->len, n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg((unsigned char)b->p[i] == (unsigned char)want[i], "byte %zu: %02x, want %02x",
                      i, (unsigned char)b->p[i], (unsigned char)want[i]);
    }
}

static void assert_bytes(const struct ls_buf *b, const char *want, size_t n)
{
    ck_assert_uint_eq(b->len, n);
    assert_prefix(b, want, n);
}

START_TEST(tc_data_page_header)
{
    struct ls_buf b;
    struct lsq_tc t;

    ls_buf_init(&b, 0);
    lsq_tc_init(&t, &b);
    lsq_tc_i32(&t, 1, 0);
    lsq_tc_i32(&t, 2, 32);
    lsq_tc_i32(&t, 3, 32);
    lsq_tc_struct_begin(&t, 5);
    lsq_tc_i32(&t, 1, 4);
    lsq_tc_i32(&t, 2, 0);
    lsq_tc_i32(&t, 3, 3);
    lsq_tc_i32(&t, 4, 3);
    lsq_tc_struct_end(&t);
    lsq_tc_struct_end(&t);
    assert_bytes(&b, "\x15\x00\x15\x40\x15\x40\x2c\x15\x08\x15\x00\x15\x06\x15\x06\x00\x00", 17);
    ls_buf_release(&b);
}
END_TEST

/* The footer of the reference's 83-byte 0-row file, field by field. */
START_TEST(tc_footer_lists_and_strings)
{
    struct ls_buf b;
    struct lsq_tc t;
    const char *cb = "logship version 0.1.0 (build 0000000)";

    ls_buf_init(&b, 0);
    lsq_tc_init(&t, &b);
    lsq_tc_i32(&t, 1, 1);
    lsq_tc_list_begin(&t, 2, LSQ_TC_STRUCT, 2);
    lsq_tc_elem_struct_begin(&t);
    lsq_tc_bin(&t, 4, "schema", 6);
    lsq_tc_i32(&t, 5, 1);
    lsq_tc_struct_end(&t);
    lsq_tc_elem_struct_begin(&t);
    lsq_tc_i32(&t, 1, 6);
    lsq_tc_i32(&t, 3, 1);
    lsq_tc_bin(&t, 4, "msg", 3);
    lsq_tc_i32(&t, 6, 0);
    lsq_tc_struct_end(&t);
    lsq_tc_i64(&t, 3, 0);
    lsq_tc_list_begin(&t, 4, LSQ_TC_STRUCT, 0);
    lsq_tc_bin(&t, 6, cb, strlen(cb));
    lsq_tc_struct_end(&t);
    ck_assert_uint_eq(b.len, 71);
    assert_prefix(&b, "\x15\x02\x19\x2c\x48\x06schema\x15\x02\x00\x15\x0c\x25\x02\x18\x03msg\x25\x00\x00"
                     "\x16\x00\x19\x0c\x28\x25", 33);
    ck_assert(memcmp(b.p + 33, cb, 37) == 0);
    ck_assert_int_eq(b.p[70], 0);
    ls_buf_release(&b);
}
END_TEST

START_TEST(tc_long_forms)
{
    struct ls_buf b;
    struct lsq_tc t;

    ls_buf_init(&b, 0);
    lsq_tc_init(&t, &b);
    lsq_tc_i64(&t, 20, -1);           /* delta 20 > 15: long header, id zigzag 40 */
    lsq_tc_bool(&t, 21, true);
    lsq_tc_bool(&t, 22, false);
    lsq_tc_i8(&t, 23, 16);
    lsq_tc_list_begin(&t, 24, LSQ_TC_I32, 15);   /* 15 elements: long list header */
    assert_bytes(&b, "\x06\x28\x01\x11\x12\x13\x10\x19\xf5\x0f", 10);
    ls_buf_reset(&b);
    lsq_tc_varint(&b, 50399);
    assert_bytes(&b, "\xdf\x89\x03", 3);
    ls_buf_release(&b);
}
END_TEST

/* A decoder written from Encodings.md, to check round trips. */
static size_t rle_decode(const unsigned char *p, size_t len, int bw, uint32_t *out, size_t n)
{
    size_t at = 0, got = 0;

    while (at < len && got < n) {
        uint64_t h = 0;
        int shift = 0;
        while (p[at] & 0x80) {
            h |= (uint64_t)(p[at++] & 0x7f) << shift;
            shift += 7;
        }
        h |= (uint64_t)p[at++] << shift;
        if (h & 1) {
            size_t cnt = (size_t)(h >> 1) * 8;
            uint64_t acc = 0;
            int bits = 0;
            for (size_t i = 0; i < cnt; i++) {
                while (bits < bw) {
                    acc |= (uint64_t)p[at++] << bits;
                    bits += 8;
                }
                if (got < n) {
                    out[got++] = (uint32_t)(acc & ((1ull << bw) - 1));
                }
                acc >>= bw;
                bits -= bw;
            }
        } else {
            size_t cnt = (size_t)(h >> 1);
            uint32_t v = 0;
            for (int i = 0; i < (bw + 7) / 8; i++) {
                v |= (uint32_t)p[at++] << (8 * i);
            }
            for (size_t i = 0; i < cnt && got < n; i++) {
                out[got++] = v;
            }
        }
    }
    ck_assert_uint_eq(at, len);
    return got;
}

START_TEST(rle_known_bytes)
{
    struct ls_buf b;
    uint32_t lv[] = { 1, 0, 1, 1 }, ix[] = { 0, 1, 0 }, same[20];

    ls_buf_init(&b, 0);
    lsq_rle_encode(&b, lv, 4, 1);
    assert_bytes(&b, "\x03\x0d", 2);        /* one bit-packed group: 1011 LSB first */
    ls_buf_reset(&b);
    lsq_rle_encode(&b, ix, 3, 1);
    assert_bytes(&b, "\x03\x02", 2);        /* the reference's dictionary indices */
    ls_buf_reset(&b);
    for (int i = 0; i < 20; i++) {
        same[i] = 300;
    }
    lsq_rle_encode(&b, same, 20, 9);
    assert_bytes(&b, "\x28\x2c\x01", 3);    /* RLE run of 20, value in 2 bytes */
    ls_buf_release(&b);
}
END_TEST

START_TEST(rle_round_trips)
{
    struct ls_buf b;
    uint32_t in[3000], out[3000];
    unsigned seed = 7;

    ls_buf_init(&b, 0);
    for (int bw = 1; bw <= 32; bw += (bw < 4 ? 1 : 7)) {
        for (int shape = 0; shape < 4; shape++) {
            size_t n = (size_t)(shape == 0 ? 1 : shape == 1 ? 13 : 3000);
            for (size_t i = 0; i < n; i++) {
                seed = seed * 1103515245u + 12345u;
                uint32_t r = seed >> 8;
                /* shape 2: long runs broken by short literals; 3: noise */
                uint32_t v = shape == 2 ? (uint32_t)((i / 37) % 3 + (i % 11 == 0)) : r;
                in[i] = bw == 32 ? v : v & ((1u << bw) - 1);
            }
            ls_buf_reset(&b);
            lsq_rle_encode(&b, in, n, bw);
            ck_assert_uint_eq(rle_decode((unsigned char *)b.p, b.len, bw, out, n), n);
            for (size_t i = 0; i < n; i++) {
                ck_assert_msg(in[i] == out[i], "bw %d shape %d value %zu", bw, shape, i);
            }
        }
    }
    ls_buf_release(&b);
}
END_TEST

static int sink_buf(void *arg, const void *p, size_t n)
{
    return ls_buf_append(arg, p, n);
}

static uint32_t le32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

START_TEST(writer_frames_and_row_groups)
{
    struct lsq_column cols[] = {
        { "time", LSQ_TS_MILLIS, true }, { "msg", LSQ_STRING, false }, { "code", LSQ_INT32, false },
    };
    struct lsq_opts o = { LSQ_ZSTD, 3, 4096, 512, "logship version 1 (build x)" };
    struct ls_buf b;
    char err[200];
    struct lsq_writer *w;

    ls_buf_init(&b, 0);
    w = lsq_writer_new(cols, 3, &o, sink_buf, &b, err, sizeof(err));
    ck_assert_ptr_nonnull(w);
    for (int i = 0; i < 1000; i++) {
        struct lsq_value v[3] = { { .i = 1700000000000 + i }, { .s = "GET /", .len = 5 },
                                  { .i = 200 + i % 3 } };
        v[1].null = i % 5 == 0;
        ck_assert_int_eq(lsq_add_row(w, v), LS_OK);
    }
    {
        struct lsq_value v[3] = { { .null = true }, { .null = true }, { .null = true } };
        ck_assert_int_eq(lsq_add_row(w, v), LS_DECLINED);    /* required time missing */
    }
    ck_assert_uint_gt(lsq_row_groups(w), 1);                 /* flushed as it filled */
    ck_assert_int_eq(lsq_finish(w, err, sizeof(err)), LS_OK);
    ck_assert_uint_eq(lsq_rows(w), 1000);
    lsq_writer_free(w);
    ck_assert_uint_gt(b.len, 12);
    ck_assert(memcmp(b.p, "PAR1", 4) == 0);
    ck_assert(memcmp(b.p + b.len - 4, "PAR1", 4) == 0);
    ck_assert_uint_lt(le32(b.p + b.len - 8), b.len - 12);
    ls_buf_release(&b);
}
END_TEST

START_TEST(writer_refuses_bad_schemas)
{
    struct lsq_column dup[] = { { "a", LSQ_INT64, false }, { "a", LSQ_STRING, false } };
    struct lsq_opts o = { LSQ_SNAPPY, 0, 0, 0, NULL };
    char err[200] = "";

    ck_assert_ptr_null(lsq_writer_new(dup, 2, &o, sink_buf, NULL, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "twice"));
    ck_assert_ptr_null(lsq_writer_new(dup, 0, &o, sink_buf, NULL, err, sizeof(err)));
    ck_assert_int_eq(lsq_codec_from_name("zstd"), LSQ_ZSTD);
    ck_assert_int_eq(lsq_codec_from_name("lz4"), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("parquet");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, tc_data_page_header);
    tcase_add_test(tc, tc_footer_lists_and_strings);
    tcase_add_test(tc, tc_long_forms);
    tcase_add_test(tc, rle_known_bytes);
    tcase_add_test(tc, rle_round_trips);
    tcase_add_test(tc, writer_frames_and_row_groups);
    tcase_add_test(tc, writer_refuses_bad_schemas);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
