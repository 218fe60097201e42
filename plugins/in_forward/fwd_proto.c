/*
 * fwd_proto.c - Forward Protocol v1 requests (fluentd's in_forward on_message), decoded
 * from libmsgpack-c objects without I/O.
 *
 * The mode is told by the type of element 1 (SPEC "Fluentd Forward Server"): str/bin is
 * PackedForward (gzip when option "compressed" is "gzip": possibly several members back to
 * back, inflated into a capped buffer), an array is Forward, anything else is Message.
 * Packed entries are read one at a time with msgpack_unpack_next, so a broken stream costs
 * the rest of that request only.
 */
#include "forward.h"

#include "compress.h"
#include <stdio.h>
#include <zlib.h>

/* gzip (one or more members) of p[0..n) into out; LS_AGAIN past out's cap */
static int gunzip(const char *p, size_t n, struct ls_buf *out, char *err, size_t errlen)
{
    z_stream z;
    int zrc = Z_OK, rc = LS_OK;

    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
        snprintf(err, errlen, "inflateInit2() failed");
        return LS_ERROR;
    }
    z.next_in = (unsigned char *)(uintptr_t)p;
    z.avail_in = (uInt)n;
    while (rc == LS_OK) {
        if (ls_buf_reserve(out, 64 * 1024) != LS_OK) {
            /* near the cap: try with what room is left */
            if (out->max == 0 || out->len >= out->max || ls_buf_reserve(out, 1) != LS_OK) {
                snprintf(err, errlen, "inflated entries exceed %zu bytes", out->max);
                rc = LS_AGAIN;
                break;
            }
        }
        z.next_out = (unsigned char *)out->p + out->len;
        z.avail_out = (uInt)(out->max ? (out->max - out->len < out->cap - out->len ?
                                         out->max - out->len : out->cap - out->len)
                                      : out->cap - out->len);
        zrc = inflate(&z, Z_NO_FLUSH);
        out->len = (size_t)((char *)z.next_out - out->p);
        if (zrc == Z_STREAM_END) {
            if (z.avail_in == 0) {
                break;
            }
            /* another gzip member follows (SPEC: concatenated members are allowed) */
            if (inflateReset(&z) != Z_OK) {
                rc = LS_ERROR;
            }
            continue;
        }
        if (zrc == Z_BUF_ERROR && z.avail_in == 0) {
            snprintf(err, errlen, "gzip data is truncated");
            rc = LS_ERROR;
        } else if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
            snprintf(err, errlen, "gzip data is broken (%s)", z.msg ? z.msg : "inflate failed");
            rc = LS_ERROR;
        }
    }
    inflateEnd(&z);
    return rc;
}

int fwd_req_decode(const msgpack_object *o, struct ls_buf *inflated, struct fwd_req *r,
                   char *err, size_t errlen)
{
    const msgpack_object *a, *v;
    const char *p;
    size_t n;

    memset(r, 0, sizeof(*r));
    if (o->type == MSGPACK_OBJECT_NIL) {
        return LS_DECLINED;
    }
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 2) {
        snprintf(err, errlen, "incoming chunk is broken: not an array of at least 2 elements");
        return LS_ERROR;
    }
    a = o->via.array.ptr;
    if (!ls_msgpack_bytes(&a[0], &r->tag, &r->tag_len)) {
        snprintf(err, errlen, "incoming chunk is broken: the tag is not a string");
        return LS_ERROR;
    }
    if (ls_msgpack_bytes(&a[1], &p, &n)) {
        r->mode = FWD_PACKED;
        r->packed = p;
        r->packed_len = n;
        r->option = o->via.array.size > 2 ? &a[2] : NULL;
    } else if (a[1].type == MSGPACK_OBJECT_ARRAY) {
        r->mode = FWD_FORWARD;
        r->entries = &a[1];
        r->option = o->via.array.size > 2 ? &a[2] : NULL;
    } else {
        r->mode = FWD_MESSAGE;
        if (o->via.array.size < 3) {
            snprintf(err, errlen, "incoming chunk is broken: a message without a record");
            return LS_ERROR;
        }
        r->time = &a[1];
        r->record = &a[2];
        r->option = o->via.array.size > 3 ? &a[3] : NULL;
    }
    if (r->option && r->option->type != MSGPACK_OBJECT_MAP) {
        r->option = NULL;          /* SPEC: ignore what is not understood */
    }
    v = ls_msgpack_map_get(r->option, "chunk");
    if (v && ls_msgpack_bytes(v, &r->chunk, &r->chunk_len) && r->chunk_len == 0) {
        r->chunk = NULL;
    }
    v = ls_msgpack_map_get(r->option, "compressed");
    if (r->mode == FWD_PACKED && v && !ls_msgpack_str_eq(v, "text")) {
        int rc;
        if (!ls_msgpack_str_eq(v, "gzip")) {
            snprintf(err, errlen, "unsupported compression in option 'compressed' (gzip and "
                     "text are)");
            return LS_ERROR;
        }
        ls_buf_reset(inflated);
        rc = gunzip(r->packed, r->packed_len, inflated, err, errlen);
        if (rc != LS_OK) {
            return LS_ERROR;
        }
        r->packed = inflated->p ? inflated->p : "";
        r->packed_len = inflated->len;
    }
    return LS_OK;
}

void fwd_iter_init(struct fwd_iter *it, const struct fwd_req *req)
{
    memset(it, 0, sizeof(*it));
    it->req = req;
    msgpack_unpacked_init(&it->up);
}

void fwd_iter_release(struct fwd_iter *it)
{
    msgpack_unpacked_destroy(&it->up);
}

int fwd_iter_next(struct fwd_iter *it, const msgpack_object **time, const msgpack_object **record)
{
    const struct fwd_req *r = it->req;
    const msgpack_object *e;
    msgpack_unpack_return urc;

    *time = *record = NULL;
    switch (r->mode) {
    case FWD_MESSAGE:
        if (it->idx++ > 0) {
            return 0;
        }
        *time = r->time;
        *record = r->record;
        return 1;
    case FWD_FORWARD:
        if (it->idx >= r->entries->via.array.size) {
            return 0;
        }
        e = &r->entries->via.array.ptr[it->idx++];
        break;
    case FWD_PACKED:
        if (it->off >= r->packed_len) {
            return 0;
        }
        {
            /* libmsgpack-c allocates an array from its declared length: only hand it an
             * entry whose end the scanner found within the data */
            struct ls_mp_scan sc;
            long n;
            memset(&sc, 0, sizeof(sc));
            n = ls_mp_scan(&sc, r->packed + it->off, r->packed_len - it->off,
                           r->packed_len - it->off);
            if (n <= 0) {
                it->off = r->packed_len;
                return -1;
            }
            urc = msgpack_unpack_next(&it->up, r->packed, it->off + (size_t)n, &it->off);
        }
        if (urc != MSGPACK_UNPACK_SUCCESS && urc != MSGPACK_UNPACK_EXTRA_BYTES) {
            it->off = r->packed_len;
            return -1;
        }
        it->idx++;
        e = &it->up.data;
        break;
    default:
        return 0;
    }
    /* an entry that is not [time, record] is handed on as such and found invalid there */
    if (e->type == MSGPACK_OBJECT_ARRAY && e->via.array.size == 2) {
        *time = &e->via.array.ptr[0];
        *record = &e->via.array.ptr[1];
    } else {
        *time = e;
        *record = e;
    }
    return 1;
}

int fwd_iter_skip(struct fwd_iter *it, uint64_t n)
{
    const msgpack_object *t, *r;
    int rc = 1;

    while (n-- > 0 && rc == 1) {
        rc = fwd_iter_next(it, &t, &r);
    }
    return rc;
}

bool fwd_entry_valid(const msgpack_object *time, const msgpack_object *record, struct ls_time *t)
{
    return time && record && record->type == MSGPACK_OBJECT_MAP && time != record &&
           ls_msgpack_event_time(time, t);
}

void fwd_sha512_hex(char out[129], const void *p1, size_t n1, const void *p2, size_t n2,
                    const void *p3, size_t n3, const void *p4, size_t n4)
{
    const void *parts[] = { p1, p2, p3, p4 };
    const size_t lens[] = { n1, n2, n3, n4 };

    ls_sha512_hex(parts, lens, 4, out);
}
