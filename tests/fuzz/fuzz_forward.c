/*
 * fuzz_forward.c - libFuzzer target for in_forward's decoder: the stream scanner, the
 * request decoder (all four modes, gzip entries), entry iteration and validation, and the
 * MessagePack to record conversion (agent/msgpack.c).
 *
 * The input is a connection's byte stream. The scanner must agree with libmsgpack-c on
 * where each object ends (for the objects libmsgpack-c accepts), and every record built
 * must write back as valid JSON. The input is copied to an exact-size heap block so that
 * any read past the end is caught by ASan.
 */
#include "../../plugins/in_forward/forward.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one_request(const msgpack_object *o)
{
    struct ls_buf inflated, out;
    struct fwd_req req;
    struct fwd_iter it;
    struct ls_arena a;
    struct ls_record rec;
    const msgpack_object *t, *r;
    char err[256];
    int n, guard = 0;

    ls_buf_init(&inflated, 1 << 20);
    ls_buf_init(&out, 0);
    ls_arena_init(&a, 0);
    ls_record_init(&rec, &a);
    if (fwd_req_decode(o, &inflated, &req, err, sizeof(err)) == LS_OK) {
        fwd_iter_init(&it, &req);
        while ((n = fwd_iter_next(&it, &t, &r)) == 1 && guard++ < 10000) {
            struct ls_time tm;
            if (!fwd_entry_valid(t, r, &tm)) {
                continue;
            }
            ls_record_clear(&rec);
            if (ls_msgpack_map_to_record(r, &rec) == LS_OK) {
                ls_buf_reset(&out);
                if (ls_json_put_record(&out, &rec) != LS_OK || !ls_json_valid(out.p, out.len)) {
                    __builtin_trap();
                }
            }
            ls_arena_reset(&a);
        }
        fwd_iter_release(&it);
    }
    ls_record_release(&rec);
    ls_arena_release(&a);
    ls_buf_release(&out);
    ls_buf_release(&inflated);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p = ls_malloc(size ? size : 1);
    size_t off = 0;

    memcpy(p, data, size);
    while (off < size) {
        struct ls_mp_scan sc;
        msgpack_unpacked up;
        size_t moff = 0;
        long n;
        int rc;

        memset(&sc, 0, sizeof(sc));
        /* resumable: feed the stream in two pieces, as reads would */
        n = ls_mp_scan(&sc, p + off, (size - off) / 2, 1 << 20);
        if (n == LS_MP_MORE) {
            n = ls_mp_scan(&sc, p + off, size - off, 1 << 20);
        }
        if (n <= 0) {
            break;
        }
        msgpack_unpacked_init(&up);
        rc = msgpack_unpack_next(&up, p + off, (size_t)n, &moff);
        if (rc == MSGPACK_UNPACK_SUCCESS || rc == MSGPACK_UNPACK_EXTRA_BYTES) {
            if (moff != (size_t)n) {
                __builtin_trap();       /* the scanner and libmsgpack-c disagree */
            }
            one_request(&up.data);
        }
        msgpack_unpacked_destroy(&up);
        off += (size_t)n;
    }
    ls_free(p);
    return 0;
}
