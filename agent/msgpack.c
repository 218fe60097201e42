/*
 * msgpack.c - MessagePack objects to record fields and JSON (see msgpack.h).
 *
 * Decoding itself is libmsgpack-c's; this file only walks its msgpack_object
 * trees. Nested maps and arrays become LS_V_JSON text because that is how
 * every logship formatter and the record accessor already carry nested
 * values (the JSON parser makes the same), so a record that came over the
 * forward protocol formats exactly like one read from a JSON log line.
 */
#include "msgpack.h"
#include "json.h"
#include "plugin.h"

#include <inttypes.h>
#include <stdio.h>

static int put_json(struct ls_buf *out, const msgpack_object *o, int depth);

/*
 * A key that is not a string is written as its JSON text, quoted; a map key within a map key
 * is quoted again, which doubles its escapes at each level: without a bound, 30 nested map
 * keys in 100 bytes of input would take gigabytes. Longer key texts are refused (LS_ERROR).
 */
#define LS_MSGPACK_KEY_MAX (64u * 1024)

static int put_key(struct ls_buf *out, const msgpack_object *k, int depth)
{
    struct ls_buf tmp;
    int rc;

    if (k->type == MSGPACK_OBJECT_STR) {
        return ls_json_put_str(out, k->via.str.ptr, k->via.str.size);
    }
    if (k->type == MSGPACK_OBJECT_BIN) {
        return ls_json_put_str(out, k->via.bin.ptr, k->via.bin.size);
    }
    /* JSON keys are strings: a number or nil key is shown as its text */
    ls_buf_init(&tmp, LS_MSGPACK_KEY_MAX);
    rc = put_json(&tmp, k, depth + 1);
    if (rc == LS_OK) {
        rc = ls_json_put_str(out, tmp.p ? tmp.p : "", tmp.len);
    }
    ls_buf_release(&tmp);
    return rc;
}

static int put_ext(struct ls_buf *out, const msgpack_object *o)
{
    struct ls_time t;

    if (ls_msgpack_event_time(o, &t)) {
        return ls_buf_printf(out, "%" PRId64, t.sec);
    }
    return ls_json_put_str(out, o->via.ext.ptr, o->via.ext.size);
}

static int put_json(struct ls_buf *out, const msgpack_object *o, int depth)
{
    struct ls_value v;
    uint32_t i;
    int rc = LS_OK;

    if (depth > LS_MSGPACK_DEPTH_MAX) {
        return LS_ERROR;
    }
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return ls_buf_append(out, "null", 4);
    case MSGPACK_OBJECT_BOOLEAN:
        return o->via.boolean ? ls_buf_append(out, "true", 4) : ls_buf_append(out, "false", 5);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return ls_buf_printf(out, "%" PRIu64, o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return ls_buf_printf(out, "%" PRId64, o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        v = ls_vfloat(o->via.f64);
        return ls_json_put_value(out, &v);
    case MSGPACK_OBJECT_STR:
        return ls_json_put_str(out, o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN:
        return ls_json_put_str(out, o->via.bin.ptr, o->via.bin.size);
    case MSGPACK_OBJECT_EXT:
        return put_ext(out, o);
    case MSGPACK_OBJECT_ARRAY:
        rc = ls_buf_putc(out, '[');
        for (i = 0; rc == LS_OK && i < o->via.array.size; i++) {
            if (i) {
                rc = ls_buf_putc(out, ',');
            }
            if (rc == LS_OK) {
                rc = put_json(out, &o->via.array.ptr[i], depth + 1);
            }
        }
        return rc == LS_OK ? ls_buf_putc(out, ']') : rc;
    case MSGPACK_OBJECT_MAP:
        rc = ls_buf_putc(out, '{');
        for (i = 0; rc == LS_OK && i < o->via.map.size; i++) {
            if (i) {
                rc = ls_buf_putc(out, ',');
            }
            if (rc == LS_OK) {
                rc = put_key(out, &o->via.map.ptr[i].key, depth);
            }
            if (rc == LS_OK) {
                rc = ls_buf_putc(out, ':');
            }
            if (rc == LS_OK) {
                rc = put_json(out, &o->via.map.ptr[i].val, depth + 1);
            }
        }
        return rc == LS_OK ? ls_buf_putc(out, '}') : rc;
    }
    return LS_ERROR;
}

int ls_msgpack_put_json(struct ls_buf *out, const msgpack_object *obj)
{
    return put_json(out, obj, 0);
}

/* JSON text of obj copied into arena (nested values, exact big integers) */
static int json_value(const msgpack_object *obj, struct ls_arena *arena, struct ls_value *out)
{
    struct ls_buf tmp;
    int rc;

    ls_buf_init(&tmp, 0);
    rc = put_json(&tmp, obj, 0);
    if (rc == LS_OK) {
        out->type = LS_V_JSON;
        out->u.s.p = ls_arena_memdup(arena, tmp.p ? tmp.p : "", tmp.len);
        out->u.s.len = tmp.len;
    }
    ls_buf_release(&tmp);
    return rc;
}

int ls_msgpack_to_value(const msgpack_object *obj, struct ls_arena *arena, struct ls_value *out)
{
    struct ls_time t;

    switch (obj->type) {
    case MSGPACK_OBJECT_NIL:
        *out = ls_vnull();
        return LS_OK;
    case MSGPACK_OBJECT_BOOLEAN:
        *out = ls_vbool(obj->via.boolean);
        return LS_OK;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (obj->via.u64 > (uint64_t)INT64_MAX) {
            return json_value(obj, arena, out);
        }
        *out = ls_vint((int64_t)obj->via.u64);
        return LS_OK;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *out = ls_vint(obj->via.i64);
        return LS_OK;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        *out = ls_vfloat(obj->via.f64);
        return LS_OK;
    case MSGPACK_OBJECT_STR:
        *out = ls_vstr(obj->via.str.ptr, obj->via.str.size);
        return LS_OK;
    case MSGPACK_OBJECT_BIN:
        *out = ls_vstr(obj->via.bin.ptr, obj->via.bin.size);
        return LS_OK;
    case MSGPACK_OBJECT_EXT:
        if (ls_msgpack_event_time(obj, &t)) {
            *out = ls_vint(t.sec);
        } else {
            *out = ls_vstr(obj->via.ext.ptr, obj->via.ext.size);
        }
        return LS_OK;
    case MSGPACK_OBJECT_ARRAY:
    case MSGPACK_OBJECT_MAP:
        return json_value(obj, arena, out);
    }
    return LS_ERROR;
}

int ls_msgpack_map_to_record(const msgpack_object *map, struct ls_record *rec)
{
    uint32_t i;

    if (map->type != MSGPACK_OBJECT_MAP) {
        return LS_DECLINED;
    }
    for (i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        struct ls_value v;
        const char *kp;
        size_t kl;

        if (!ls_msgpack_bytes(k, &kp, &kl)) {
            struct ls_buf tmp;
            ls_buf_init(&tmp, LS_MSGPACK_KEY_MAX);
            if (put_json(&tmp, k, 1) != LS_OK) {
                ls_buf_release(&tmp);
                return LS_ERROR;
            }
            kl = tmp.len;
            kp = ls_arena_memdup(rec->arena, tmp.p ? tmp.p : "", tmp.len);
            ls_buf_release(&tmp);
        }
        if (ls_msgpack_to_value(&map->via.map.ptr[i].val, rec->arena, &v) != LS_OK) {
            return LS_ERROR;
        }
        /* a map may repeat a key; the last one wins, as in a Ruby Hash */
        ls_record_set(rec, kp, kl, &v);
    }
    return LS_OK;
}

bool ls_msgpack_event_time(const msgpack_object *obj, struct ls_time *t)
{
    const unsigned char *p;

    if (obj->type == MSGPACK_OBJECT_ARRAY && obj->via.array.size > 0 &&
        obj->via.array.ptr[0].type != MSGPACK_OBJECT_ARRAY) {
        obj = &obj->via.array.ptr[0];
    }
    if (obj->type == MSGPACK_OBJECT_POSITIVE_INTEGER && obj->via.u64 <= (uint64_t)INT64_MAX) {
        t->sec = (int64_t)obj->via.u64;
        t->nsec = 0;
        return true;
    }
    if (obj->type == MSGPACK_OBJECT_EXT && obj->via.ext.type == LS_MSGPACK_EVENT_TIME &&
        obj->via.ext.size == 8) {
        uint32_t nsec;
        p = (const unsigned char *)obj->via.ext.ptr;
        t->sec = (int64_t)(((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
                           ((uint32_t)p[2] << 8) | p[3]);
        nsec = ((uint32_t)p[4] << 24) | ((uint32_t)p[5] << 16) | ((uint32_t)p[6] << 8) | p[7];
        if (nsec >= 1000000000u) {
            return false;
        }
        t->nsec = (int32_t)nsec;
        return true;
    }
    return false;
}

bool ls_msgpack_bytes(const msgpack_object *obj, const char **p, size_t *len)
{
    if (obj->type == MSGPACK_OBJECT_STR) {
        *p = obj->via.str.ptr;
        *len = obj->via.str.size;
        return true;
    }
    if (obj->type == MSGPACK_OBJECT_BIN) {
        *p = obj->via.bin.ptr;
        *len = obj->via.bin.size;
        return true;
    }
    return false;
}

bool ls_msgpack_str_eq(const msgpack_object *obj, const char *s)
{
    const char *p;
    size_t len;

    return ls_msgpack_bytes(obj, &p, &len) && len == strlen(s) && memcmp(p, s, len) == 0;
}

const msgpack_object *ls_msgpack_map_get(const msgpack_object *map, const char *key)
{
    uint32_t i;

    if (map == NULL || map->type != MSGPACK_OBJECT_MAP) {
        return NULL;
    }
    for (i = 0; i < map->via.map.size; i++) {
        if (ls_msgpack_str_eq(&map->via.map.ptr[i].key, key)) {
            return &map->via.map.ptr[i].val;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* the scanner: where does the next top-level object end?              */

static uint64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;

    for (int i = 0; i < n; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

long ls_mp_scan(struct ls_mp_scan *c, const char *data, size_t len, uint64_t limit)
{
    const unsigned char *p = (const unsigned char *)data;
    size_t off = c->scanned;

    if (off == 0) {
        c->pending = 1;
        c->skip = 0;
        c->depth = 0;
        c->left[0] = 1;
    }
    while (c->pending > 0 || c->skip > 0) {
        unsigned b;
        size_t hdr = 1;
        uint64_t skip = 0, add = 0;
        bool cont = false;          /* a map or an array, empty ones too */

        if (c->skip > 0) {
            size_t take = len - off < c->skip ? len - off : (size_t)c->skip;
            off += take;
            c->skip -= take;
            if (c->skip > 0) {
                break;
            }
            continue;
        }
        if (off >= len) {
            break;
        }
        b = p[off];
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            hdr = 1;
        } else if (b >= 0x80 && b <= 0x8f) {
            add = 2 * (uint64_t)(b & 0x0f);
            cont = true;
        } else if (b >= 0x90 && b <= 0x9f) {
            add = b & 0x0f;
            cont = true;
        } else if (b >= 0xa0 && b <= 0xbf) {
            skip = b & 0x1f;
        } else {
            static const unsigned char fixed[] = {
                /* c4..df: header bytes (before any length-given payload) */
                2, 3, 5, 3, 4, 6, 5, 9, 2, 3, 5, 9, 2, 3, 5, 9, 3, 4, 6, 10, 18, 2, 3, 5, 3, 5,
                3, 5,
            };
            if (b == 0xc1) {
                return LS_MP_BAD;
            }
            hdr = fixed[b - 0xc4];
            if (len - off < hdr) {
                break;
            }
            switch (b) {
            case 0xc4: case 0xd9: skip = p[off + 1]; break;
            case 0xc5: case 0xda: skip = be(p + off + 1, 2); break;
            case 0xc6: case 0xdb: skip = be(p + off + 1, 4); break;
            case 0xc7: skip = p[off + 1]; break;
            case 0xc8: skip = be(p + off + 1, 2); break;
            case 0xc9: skip = be(p + off + 1, 4); break;
            case 0xdc: add = be(p + off + 1, 2), cont = true; break;
            case 0xdd: add = be(p + off + 1, 4), cont = true; break;
            case 0xde: add = 2 * be(p + off + 1, 2), cont = true; break;
            case 0xdf: add = 2 * be(p + off + 1, 4), cont = true; break;
            default: break;       /* fixed-size values, fixext */
            }
        }
        if (len - off < hdr) {
            break;
        }
        /* libmsgpack-c refuses a container header, even an empty one's, with
         * LS_MP_NEST_MAX containers open */
        if (cont && c->depth == LS_MP_NEST_MAX) {
            return LS_MP_BAD;
        }
        off += hdr;
        c->pending--;
        c->left[c->depth]--;
        if (add > 0) {
            c->left[++c->depth] = add;
            c->pending += add;
        }
        while (c->depth > 0 && c->left[c->depth] == 0) {
            c->depth--;
        }
        c->skip = skip;
        if ((uint64_t)off + c->skip + c->pending > limit) {
            return LS_MP_BIG;
        }
    }
    c->scanned = off;
    if (c->pending == 0 && c->skip == 0) {
        c->scanned = 0;
        return (long)off;
    }
    if (off > limit) {
        return LS_MP_BIG;
    }
    return LS_MP_MORE;
}

/* ---- a chunk's entries ---- */

const char *ls_msgpack_formatter_for(struct ls_conf_section *sec, struct ls_conf_section **fsec,
                                     char *err, size_t errlen)
{
    LS_UNUSED(sec);
    LS_UNUSED(err);
    LS_UNUSED(errlen);
    *fsec = NULL;
    return "msgpack";
}

struct ls_chunk_entries {
    struct ls_chunk_reader *r;
    msgpack_unpacker up;
    msgpack_unpacked res;
    bool eof, failed;
};

struct ls_chunk_entries *ls_chunk_entries_open(struct ls_chunk *c)
{
    struct ls_chunk_entries *e = ls_calloc(1, sizeof(*e));

    e->r = ls_chunk_reader_open(c);
    if (e->r == NULL || !msgpack_unpacker_init(&e->up, 65536)) {
        if (e->r) {
            ls_chunk_reader_close(e->r);
        }
        ls_free(e);
        return NULL;
    }
    msgpack_unpacked_init(&e->res);
    return e;
}

const msgpack_object *ls_chunk_entries_next(struct ls_chunk_entries *e)
{
    for (;;) {
        msgpack_unpack_return ret = msgpack_unpacker_next(&e->up, &e->res);
        long got;

        if (ret == MSGPACK_UNPACK_SUCCESS) {
            return &e->res.data;
        }
        if (ret != MSGPACK_UNPACK_CONTINUE) {
            e->failed = true;       /* our own formatter wrote it: a damaged chunk */
            return NULL;
        }
        if (e->eof) {
            return NULL;
        }
        if (!msgpack_unpacker_reserve_buffer(&e->up, 65536)) {
            e->failed = true;
            return NULL;
        }
        got = ls_chunk_reader_read(e->r, msgpack_unpacker_buffer(&e->up), 65536);
        if (got < 0) {
            e->failed = true;
            return NULL;
        }
        if (got == 0) {
            e->eof = true;
            continue;
        }
        msgpack_unpacker_buffer_consumed(&e->up, (size_t)got);
    }
}

bool ls_chunk_entries_failed(const struct ls_chunk_entries *e)
{
    return e->failed;
}

void ls_chunk_entries_close(struct ls_chunk_entries *e)
{
    if (e == NULL) {
        return;
    }
    msgpack_unpacked_destroy(&e->res);
    msgpack_unpacker_destroy(&e->up);
    ls_chunk_reader_close(e->r);
    ls_free(e);
}
static int pack_value(msgpack_packer *pk, struct ls_arena *a, const struct ls_value *v,
                      int depth);

static int pack_str(msgpack_packer *pk, const char *p, size_t len)
{
    if (len > UINT32_MAX) {
        return -1;
    }
    return msgpack_pack_str_with_body(pk, p, len);
}

static int pack_json(msgpack_packer *pk, struct ls_arena *a, const char *p, size_t len, int depth)
{
    size_t i = 0, n;
    struct ls_value ev;
    struct ls_record tmp;
    int rc = 0;

    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) {
        i++;
    }
    /* deeper JSON than this is sent as its text (a record nested so deep is not a log line) */
    if (depth >= LS_MSGPACK_DEPTH_MAX || i == len) {
        return pack_str(pk, p, len);
    }
    if (p[i] == '{') {
        ls_record_init(&tmp, a);
        if (ls_json_parse_object(p, len, &tmp) != LS_OK) {
            ls_record_release(&tmp);
            return pack_str(pk, p, len);
        }
        rc = msgpack_pack_map(pk, tmp.nfields);
        for (unsigned f = 0; rc == 0 && f < tmp.nfields; f++) {
            rc = pack_str(pk, tmp.fields[f].key, tmp.fields[f].key_len);
            if (rc == 0) {
                rc = pack_value(pk, a, &tmp.fields[f].v, depth + 1);
            }
        }
        ls_record_release(&tmp);
        return rc;
    }
    /* an array: count first, then each element (arrays in log records are short) */
    for (n = 0; ls_json_array_get(p, len, n, a, &ev) == LS_OK; n++) {
    }
    if (n > UINT32_MAX) {
        return -1;
    }
    rc = msgpack_pack_array(pk, n);
    for (size_t k = 0; rc == 0 && k < n; k++) {
        if (ls_json_array_get(p, len, k, a, &ev) != LS_OK) {
            return -1;
        }
        rc = pack_value(pk, a, &ev, depth + 1);
    }
    return rc;
}

static int pack_value(msgpack_packer *pk, struct ls_arena *a, const struct ls_value *v, int depth)
{
    switch (v->type) {
    case LS_V_NULL:
        return msgpack_pack_nil(pk);
    case LS_V_BOOL:
        return v->u.b ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    case LS_V_INT:
        return msgpack_pack_int64(pk, v->u.i);
    case LS_V_FLOAT:
        return msgpack_pack_double(pk, v->u.f);
    case LS_V_STR:
        return pack_str(pk, v->u.s.p, v->u.s.len);
    case LS_V_JSON:
        return pack_json(pk, a, v->u.s.p, v->u.s.len, depth);
    }
    return msgpack_pack_nil(pk);
}

int ls_msgpack_pack_record(msgpack_packer *pk, struct ls_arena *a, const struct ls_record *rec)
{
    int rc = msgpack_pack_map(pk, rec->nfields);

    for (unsigned f = 0; rc == 0 && f < rec->nfields; f++) {
        rc = pack_str(pk, rec->fields[f].key, rec->fields[f].key_len);
        if (rc == 0) {
            rc = pack_value(pk, a, &rec->fields[f].v, 0);
        }
    }
    return rc;
}

static int count_write(void *data, const char *buf, size_t len)
{
    LS_UNUSED(buf);
    *(uint64_t *)data += len;
    return 0;
}

uint64_t ls_msgpack_record_size(struct ls_arena *a, const struct ls_record *rec)
{
    msgpack_packer pk;
    uint64_t n = 0;

    msgpack_packer_init(&pk, &n, count_write);
    (void)ls_msgpack_pack_record(&pk, a, rec);
    return n;
}
