/*
 * fuzz_http_body.c - libFuzzer target for in_http's request body path (http_body.c).
 *
 * The first byte picks how the rest arrives: urlencoded or multipart form fields, a JSON,
 * NDJSON or MessagePack body, or a gzip/deflate Content-Encoding of one. Every record is
 * decoded with fluentd's time rules, as the plugin does, and the position API is checked:
 * going back to a record reads it again with the same fields. The input is copied to an
 * exact-size heap block so that any read past the end is caught by ASan.
 */
#include "../../plugins/in_http/http_body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const struct hb_params *pr, struct ls_arena *a)
{
    struct hb_iter it;
    struct ls_record rec;
    char err[256];
    unsigned n = 0;

    ls_record_init(&rec, a);
    if (!hb_iter_init(&it, pr)) {
        ls_record_release(&rec);
        return;
    }
    for (;;) {
        struct hb_pos pos = hb_iter_tell(&it);
        struct ls_time t;
        unsigned nf;
        int rc;

        ls_record_clear(&rec);
        rc = hb_iter_next(&it, &rec, err, sizeof(err));
        if (rc != LS_OK) {
            break;
        }
        nf = rec.nfields;
        if (n++ < 4) {
            /* read the same record again, as after a full buffer */
            hb_iter_seek(&it, pos);
            ls_record_clear(&rec);
            if (hb_iter_next(&it, &rec, err, sizeof(err)) != LS_OK || rec.nfields != nf) {
                __builtin_trap();
            }
        }
        if (hb_event_time(pr, &rec, "time", n & 1, &t, err, sizeof(err)) == LS_OK &&
            (t.nsec < 0 || t.nsec >= 1000000000)) {
            __builtin_trap();
        }
        ls_arena_reset(a);
    }
    hb_iter_release(&it);
    ls_record_release(&rec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hb_params pr;
    struct ls_arena a;
    struct ls_buf inflated;
    char err[256];
    char *p;
    unsigned mode;

    if (size < 1) {
        return 0;
    }
    mode = data[0] % 7;
    size--;
    p = ls_malloc(size ? size : 1);
    memcpy(p, data + 1, size);
    memset(&pr, 0, sizeof(pr));
    ls_arena_init(&a, 0);
    ls_buf_init(&inflated, 0);
    switch (mode) {
    case 0:
        hb_form_urlencoded(&pr, p, size, &a);
        break;
    case 1: {
        size_t bl = 0;
        const char *b = hb_multipart_boundary("multipart/form-data; boundary=\"xYz\"", &bl);
        (void)hb_form_multipart(&pr, p, size, b, bl, err, sizeof(err));
        break;
    }
    case 2:
        hb_params_set(&pr, "json", 4, p, size);
        break;
    case 3:
        hb_params_set(&pr, "ndjson", 6, p, size);
        break;
    case 4:
        hb_params_set(&pr, "msgpack", 7, p, size);
        break;
    default:
        if (hb_inflate(p, size, mode == 5, 1 << 20, &inflated, err, sizeof(err)) == LS_OK) {
            const char *k = inflated.len && inflated.p[0] == '{' ? "json" : "msgpack";
            hb_params_set(&pr, k, strlen(k), inflated.p ? inflated.p : "", inflated.len);
        }
        break;
    }
    walk(&pr, &a);
    ls_buf_release(&inflated);
    ls_arena_release(&a);
    ls_free(p);
    return 0;
}
