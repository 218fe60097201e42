/*
 * test_msgpack.c - MessagePack objects as record fields: scalars, str/bin, nested maps and
 * arrays as JSON text, big unsigned integers, EventTime (fixext 8 and ext 8) and the
 * forward protocol's time forms. Inputs are packed with libmsgpack-c's own packer.
 */
#include <check.h>

#include "msgpack.h"
#include "json.h"

static msgpack_sbuffer sb;
static msgpack_packer pk;
static msgpack_unpacked up;

static void setup(void)
{
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_unpacked_init(&up);
}

static void teardown(void)
{
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
}

static const msgpack_object *unpack(void)
{
    size_t off = 0;

    ck_assert_int_eq(msgpack_unpack_next(&up, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    ck_assert_uint_eq(off, sb.size);
    return &up.data;
}

static void pack_str(const char *s)
{
    msgpack_pack_str(&pk, strlen(s));
    msgpack_pack_str_body(&pk, s, strlen(s));
}

static void pack_event_time(uint32_t sec, uint32_t nsec, bool ext8)
{
    unsigned char b[10] = { 0xd7, 0x00 };
    unsigned char e[11] = { 0xc7, 0x08, 0x00 };
    unsigned char *p = ext8 ? e + 3 : b + 2;
    int i;

    for (i = 0; i < 4; i++) {
        p[i] = (unsigned char)(sec >> (24 - 8 * i));
        p[4 + i] = (unsigned char)(nsec >> (24 - 8 * i));
    }
    msgpack_sbuffer_write(&sb, ext8 ? (const char *)e : (const char *)b, ext8 ? 11 : 10);
}

static const char *field_text(struct ls_record *r, const char *key, struct ls_buf *b)
{
    struct ls_field *f = ls_record_get(r, key, strlen(key));

    ck_assert_ptr_nonnull(f);
    ls_buf_reset(b);
    ck_assert_int_eq(ls_json_put_value(b, &f->v), LS_OK);
    return ls_buf_cstr(b);
}

START_TEST(record_values)
{
    struct ls_arena a;
    struct ls_record r;
    struct ls_buf b;

    ls_arena_init(&a, 0);
    ls_record_init(&r, &a);
    ls_buf_init(&b, 0);
    msgpack_pack_map(&pk, 10);
    pack_str("s");
    pack_str("v\n");
    pack_str("b");
    msgpack_pack_bin(&pk, 3);
    msgpack_pack_bin_body(&pk, "a\0b", 3);
    pack_str("i");
    msgpack_pack_int64(&pk, -5);
    pack_str("u");
    msgpack_pack_uint64(&pk, UINT64_MAX);
    pack_str("f");
    msgpack_pack_double(&pk, 1.5);
    pack_str("n");
    msgpack_pack_nil(&pk);
    pack_str("t");
    msgpack_pack_true(&pk);
    pack_str("nest");
    msgpack_pack_map(&pk, 2);
    pack_str("a");
    msgpack_pack_array(&pk, 3);
    msgpack_pack_int(&pk, 1);
    pack_str("x\"y");
    msgpack_pack_false(&pk);
    msgpack_pack_int(&pk, 7);        /* a non-string key */
    msgpack_pack_nil(&pk);
    pack_str("et");
    pack_event_time(1700000000, 5, false);
    pack_str("s");                   /* repeated key: the last wins */
    pack_str("w");
    ck_assert_int_eq(ls_msgpack_map_to_record(unpack(), &r), LS_OK);
    ck_assert_uint_eq(r.nfields, 9);
    ck_assert_str_eq(field_text(&r, "s", &b), "\"w\"");
    ck_assert_str_eq(field_text(&r, "b", &b), "\"a\\u0000b\"");
    ck_assert_str_eq(field_text(&r, "i", &b), "-5");
    ck_assert_str_eq(field_text(&r, "u", &b), "18446744073709551615");
    ck_assert_str_eq(field_text(&r, "f", &b), "1.5");
    ck_assert_str_eq(field_text(&r, "n", &b), "null");
    ck_assert_str_eq(field_text(&r, "t", &b), "true");
    ck_assert_str_eq(field_text(&r, "nest", &b), "{\"a\":[1,\"x\\\"y\",false],\"7\":null}");
    ck_assert_str_eq(field_text(&r, "et", &b), "1700000000");
    ck_assert(ls_json_valid(b.p, b.len));
    ls_buf_release(&b);
    ls_record_release(&r);
    ls_arena_release(&a);
}
END_TEST

START_TEST(not_a_map)
{
    struct ls_arena a;
    struct ls_record r;

    ls_arena_init(&a, 0);
    ls_record_init(&r, &a);
    msgpack_pack_array(&pk, 0);
    ck_assert_int_eq(ls_msgpack_map_to_record(unpack(), &r), LS_DECLINED);
    ls_record_release(&r);
    ls_arena_release(&a);
}
END_TEST

START_TEST(event_times)
{
    struct ls_time t;

    pack_event_time(1700000000, 500000000, false);
    ck_assert(ls_msgpack_event_time(unpack(), &t));
    ck_assert_int_eq(t.sec, 1700000000);
    ck_assert_int_eq(t.nsec, 500000000);

    msgpack_sbuffer_clear(&sb);
    pack_event_time(4000000000u, 1, true);      /* ext 8, seconds past INT32_MAX */
    ck_assert(ls_msgpack_event_time(unpack(), &t));
    ck_assert_int_eq(t.sec, 4000000000LL);
    ck_assert_int_eq(t.nsec, 1);

    msgpack_sbuffer_clear(&sb);
    msgpack_pack_uint32(&pk, 1700000001);
    ck_assert(ls_msgpack_event_time(unpack(), &t));
    ck_assert_int_eq(t.sec, 1700000001);
    ck_assert_int_eq(t.nsec, 0);

    msgpack_sbuffer_clear(&sb);          /* Fluent Bit's [[time, meta], record] */
    msgpack_pack_array(&pk, 2);
    pack_event_time(1700000002, 3, false);
    msgpack_pack_map(&pk, 0);
    ck_assert(ls_msgpack_event_time(unpack(), &t));
    ck_assert_int_eq(t.sec, 1700000002);

    msgpack_sbuffer_clear(&sb);          /* float: not a forward-protocol time */
    msgpack_pack_double(&pk, 1700000000.5);
    ck_assert(!ls_msgpack_event_time(unpack(), &t));

    msgpack_sbuffer_clear(&sb);
    msgpack_pack_int(&pk, -1);
    ck_assert(!ls_msgpack_event_time(unpack(), &t));

    msgpack_sbuffer_clear(&sb);
    pack_event_time(1, 1000000000u, false);   /* nanoseconds out of range */
    ck_assert(!ls_msgpack_event_time(unpack(), &t));
}
END_TEST

/* ls_mp_scan ends an object where libmsgpack-c does, and refuses the nesting it refuses */
START_TEST(scan_nesting_as_libmsgpack)
{
    for (int depth = 30; depth <= 34; depth++) {
        char buf[64];
        struct ls_mp_scan sc;
        msgpack_unpacked mu;
        size_t off = 0;
        long n;
        int rc;

        memset(buf, 0x91, (size_t)depth);       /* [[[...[1]...]]] */
        buf[depth] = 0x01;
        memset(&sc, 0, sizeof(sc));
        n = ls_mp_scan(&sc, buf, (size_t)depth + 1, 1000);
        msgpack_unpacked_init(&mu);
        rc = msgpack_unpack_next(&mu, buf, (size_t)depth + 1, &off);
        msgpack_unpacked_destroy(&mu);
        if (depth <= LS_MP_NEST_MAX) {
            ck_assert_int_eq(n, depth + 1);
            ck_assert_int_eq(rc, MSGPACK_UNPACK_SUCCESS);
        } else {
            ck_assert_int_eq(n, LS_MP_BAD);
            ck_assert_int_ne(rc, MSGPACK_UNPACK_SUCCESS);
        }
    }
    {
        /* an empty map with 32 containers open: libmsgpack-c refuses it too */
        char buf[40];
        struct ls_mp_scan sc;
        memset(buf, 0x91, 32);
        buf[32] = (char)0x80;
        memset(&sc, 0, sizeof(sc));
        ck_assert_int_eq(ls_mp_scan(&sc, buf, 33, 1000), LS_MP_BAD);
        buf[31] = (char)0x80;       /* 31 open: fine */
        memset(&sc, 0, sizeof(sc));
        ck_assert_int_eq(ls_mp_scan(&sc, buf, 32, 1000), 32);
    }
    {
        /* a map whose last value is an array, then a top-level value after it */
        static const char two[] = "\x82\xa1" "a" "\x01\xa1" "b" "\x92\x02\x93\x03\x04\x05" "\xc3";
        struct ls_mp_scan sc;
        memset(&sc, 0, sizeof(sc));
        ck_assert_int_eq(ls_mp_scan(&sc, two, sizeof(two) - 1, 1000), (long)sizeof(two) - 2);
    }
}
END_TEST

START_TEST(map_lookup)
{
    const msgpack_object *o, *v;

    msgpack_pack_map(&pk, 2);
    pack_str("chunk");
    pack_str("abc\n");
    msgpack_pack_bin(&pk, 4);
    msgpack_pack_bin_body(&pk, "size", 4);
    msgpack_pack_int(&pk, 3);
    o = unpack();
    v = ls_msgpack_map_get(o, "chunk");
    ck_assert_ptr_nonnull(v);
    ck_assert(ls_msgpack_str_eq(v, "abc\n"));
    v = ls_msgpack_map_get(o, "size");
    ck_assert_ptr_nonnull(v);
    ck_assert_uint_eq(v->via.u64, 3);
    ck_assert_ptr_null(ls_msgpack_map_get(o, "compressed"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("msgpack");
    TCase *t = tcase_create("convert");
    SRunner *sr;
    int nf;

    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, record_values);
    tcase_add_test(t, not_a_map);
    tcase_add_test(t, event_times);
    tcase_add_test(t, map_lookup);
    tcase_add_test(t, scan_nesting_as_libmsgpack);
    suite_add_tcase(s, t);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf != 0;
}
