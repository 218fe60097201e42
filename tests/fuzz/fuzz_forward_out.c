/*
 * fuzz_forward_out.c - libFuzzer target for what out_forward reads from a server (HELO,
 * PONG, ack maps) and for the msgpack formatter.
 *
 * The input is a MessagePack stream: ls_mp_scan (the guard that keeps a claimed count of
 * billions from reaching libmsgpack-c's allocator) must end each object where libmsgpack-c
 * does, and every object goes through the HELO parser, the PONG check and the ack test (a
 * PONG that passes must carry the digest of the fixed key, which random bytes cannot). The
 * same bytes are then read as a JSON object, formatted as a [time, record] entry, and that
 * entry must unpack as exactly one 2-element array.
 */
#include "../../plugins/out_forward/fwd.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_server_messages(const char *p, size_t size)
{
    msgpack_unpacked res;
    size_t off = 0, n;
    struct ls_mp_scan sc;
    long w;

    msgpack_unpacked_init(&res);
    /* only objects ls_mp_scan calls whole reach libmsgpack-c, as in fw_conn_next */
    while (off < size && (memset(&sc, 0, sizeof(sc)),
                          w = ls_mp_scan(&sc, p + off, size - off, 1 << 20)) > 0) {
        const char *nonce, *auth;
        size_t nl, al, used = 0;
        char err[256];

        n = (size_t)w;
        if (msgpack_unpack_next(&res, p + off, n, &used) != MSGPACK_UNPACK_SUCCESS || used != n) {
            abort();    /* ls_mp_scan and libmsgpack-c disagree on where the object ends */
        }
        if (fw_helo_parse(&res.data, &nonce, &nl, &auth, &al) == LS_OK && (nl > n || al > n)) {
            abort();
        }
        if (fw_pong_check(&res.data, "client", "00112233445566778899aabbccddeeff", "n", 1,
                          "key", err, sizeof(err)) == LS_OK) {
            abort();
        }
        (void)fw_is_ack(&res.data, "id\n", 3);
        off += n;
    }
    msgpack_unpacked_destroy(&res);
}

static void check_formatter(const char *p, size_t size)
{
    const struct ls_plugin *pl = ls_plugin_find(LS_PLUGIN_FORMATTER, "msgpack");
    struct ls_instance ins = { .plugin = pl };
    struct ls_arena a;
    struct ls_record r;
    struct ls_buf b;
    char err[64];

    ins.ctx = ls_calloc(1, pl->ctx_size);
    pl->init(&ins, NULL, err, sizeof(err));
    ls_arena_init(&a, 0);
    ls_record_init(&r, &a);
    ls_buf_init(&b, 0);
    if (ls_json_parse_object(p, size, &r) == LS_OK && pl->format(&ins, &r, &b) == LS_OK) {
        msgpack_unpacked res;
        size_t off = 0;

        msgpack_unpacked_init(&res);
        if (msgpack_unpack_next(&res, b.p, b.len, &off) != MSGPACK_UNPACK_SUCCESS || off != b.len
            || res.data.type != MSGPACK_OBJECT_ARRAY || res.data.via.array.size != 2
            || res.data.via.array.ptr[1].type != MSGPACK_OBJECT_MAP) {
            abort();
        }
        msgpack_unpacked_destroy(&res);
    }
    ls_buf_release(&b);
    ls_record_release(&r);
    ls_arena_release(&a);
    pl->destroy(&ins);
    ls_free(ins.ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p = ls_malloc(size ? size : 1);

    memcpy(p, data, size);
    check_server_messages(p, size);
    check_formatter(p, size);
    ls_free(p);
    return 0;
}
