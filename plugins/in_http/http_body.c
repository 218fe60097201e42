/*
 * http_body.c - see http_body.h.
 */
#include "http_body.h"
#include "json.h"
#include "msgpack.h"

#include <ctype.h>
#include <math.h>
#include <limits.h>
#include <stdio.h>
#include <zlib.h>

void hb_params_set(struct hb_params *pr, const char *k, size_t klen, const char *v, size_t vlen)
{
#define HB_SET(name)                                                                 \
    if (klen == sizeof(#name) - 1 && memcmp(k, #name, klen) == 0) {                  \
        pr->name = v;                                                                \
        pr->name##_len = vlen;                                                       \
        return;                                                                      \
    }
    HB_SET(json)
    HB_SET(ndjson)
    HB_SET(msgpack)
    HB_SET(time)
#undef HB_SET
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static const char *form_unescape(const char *p, size_t len, struct ls_arena *a, size_t *olen)
{
    char *o = ls_arena_alloc(a, len + 1);
    size_t i, n = 0;

    for (i = 0; i < len; i++) {
        int h, l;
        if (p[i] == '+') {
            o[n++] = ' ';
        } else if (p[i] == '%' && i + 2 < len && (h = hexval((unsigned char)p[i + 1])) >= 0 &&
                   (l = hexval((unsigned char)p[i + 2])) >= 0) {
            o[n++] = (char)(h * 16 + l);
            i += 2;
        } else {
            o[n++] = p[i];
        }
    }
    o[n] = '\0';
    *olen = n;
    return o;
}

void hb_form_urlencoded(struct hb_params *pr, const char *p, size_t len, struct ls_arena *a)
{
    const char *end = p + len;

    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *fe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(fe - p));
        if (fe > p) {
            size_t kl, vl;
            const char *k = form_unescape(p, (size_t)((eq ? eq : fe) - p), a, &kl);
            const char *v = eq ? form_unescape(eq + 1, (size_t)(fe - eq - 1), a, &vl) : "";
            if (!eq) {
                vl = 0;
            }
            hb_params_set(pr, k, kl, v, vl);
        }
        p = fe + (amp ? 1 : 0);
    }
}

const char *hb_multipart_boundary(const char *ctype, size_t *blen)
{
    static const char pre[] = "multipart/form-data;";
    const char *b;
    size_t n;

    if (ctype == NULL || strncmp(ctype, pre, sizeof(pre) - 1) != 0) {
        return NULL;
    }
    b = strstr(ctype + sizeof(pre) - 1, "boundary=");
    if (b == NULL) {
        return NULL;
    }
    b += 9;
    n = strlen(b);
    if (n >= 2 && b[0] == '"' && b[n - 1] == '"') {
        b++;
        n -= 2;
    }
    if (n == 0) {
        return NULL;
    }
    *blen = n;
    return b;
}

/* The name="..." of a part's Content-Disposition header (headers hp[0..hl)). */
static bool part_name(const char *hp, size_t hl, const char **name, size_t *nlen)
{
    const char *end = hp + hl;

    while (hp < end) {
        const char *eol = memmem(hp, (size_t)(end - hp), "\r\n", 2);
        const char *le = eol ? eol : end;
        if ((size_t)(le - hp) > 20 && strncasecmp(hp, "content-disposition:", 20) == 0) {
            const char *q = hp + 20;
            while (q + 6 <= le) {
                /* name=, not filename= */
                if (memcmp(q, "name=\"", 6) == 0 && (q == hp + 20 || q[-1] == ' ' || q[-1] == ';')) {
                    const char *s = q + 6;
                    const char *e = memchr(s, '"', (size_t)(le - s));
                    if (e == NULL) {
                        return false;
                    }
                    *name = s;
                    *nlen = (size_t)(e - s);
                    return true;
                }
                q++;
            }
        }
        hp = eol ? eol + 2 : end;
    }
    return false;
}

int hb_form_multipart(struct hb_params *pr, const char *p, size_t len, const char *boundary,
                      size_t blen, char *err, size_t errlen)
{
    const char *end = p + len;
    const char *cur;
    char delim[80];
    size_t dl;

    if (blen == 0 || blen > 70) {      /* RFC 2046: 1 to 70 characters */
        snprintf(err, errlen, "invalid multipart boundary");
        return LS_ERROR;
    }
    /* "\r\n--boundary": the body's first delimiter may come without the CRLF */
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, boundary, blen);
    dl = blen + 4;
    if (len >= dl - 2 && memcmp(p, delim + 2, dl - 2) == 0) {
        cur = p + dl - 2;
    } else {
        const char *f = memmem(p, len, delim, dl);
        if (f == NULL) {
            snprintf(err, errlen, "multipart body without its boundary");
            return LS_ERROR;
        }
        cur = f + dl;
    }
    for (;;) {
        const char *hend, *next, *name;
        size_t nlen;

        /* after a delimiter: "--" ends the body, else (transport padding and) CRLF */
        if (end - cur >= 2 && cur[0] == '-' && cur[1] == '-') {
            return LS_OK;
        }
        while (cur < end && (*cur == ' ' || *cur == '\t')) {
            cur++;
        }
        if (end - cur < 2 || cur[0] != '\r' || cur[1] != '\n') {
            snprintf(err, errlen, "malformed multipart delimiter");
            return LS_ERROR;
        }
        cur += 2;
        if (end - cur >= 2 && cur[0] == '\r' && cur[1] == '\n') {
            hend = cur;          /* a part without headers */
        } else {
            hend = memmem(cur, (size_t)(end - cur), "\r\n\r\n", 4);
            if (hend == NULL) {
                snprintf(err, errlen, "multipart part without the end of its headers");
                return LS_ERROR;
            }
        }
        next = memmem(hend, (size_t)(end - hend), delim, dl);
        if (next == NULL) {
            snprintf(err, errlen, "multipart part without a closing boundary");
            return LS_ERROR;
        }
        if (part_name(cur, (size_t)(hend - cur), &name, &nlen)) {
            const char *data = hend + (hend == cur ? 2 : 4);
            if (data > next) {
                data = next;
            }
            hb_params_set(pr, name, nlen, data, (size_t)(next - data));
        }
        cur = next + dl;
    }
}

bool hb_iter_init(struct hb_iter *it, const struct hb_params *pr)
{
    memset(it, 0, sizeof(*it));
    if (pr->msgpack) {
        it->kind = HB_MSGPACK;
        it->p = pr->msgpack;
        it->len = pr->msgpack_len;
    } else if (pr->json) {
        it->kind = HB_JSON;
        it->p = pr->json;
        it->len = pr->json_len;
    } else if (pr->ndjson) {
        it->kind = HB_NDJSON;
        it->p = pr->ndjson;
        it->len = pr->ndjson_len;
    } else {
        return false;
    }
    return true;
}

static int first_char(const char *p, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r') {
            return (unsigned char)p[i];
        }
    }
    return -1;
}

static int json_next(struct hb_iter *it, struct ls_record *rec, char *err, size_t errlen)
{
    for (;;) {
        const char *e;
        size_t el;
        int c, rc;

        if (it->state == 2) {
            return LS_DECLINED;
        }
        if (it->state == 0) {
            /* the whole text first: fluentd parses all of it before it emits anything */
            if (!ls_json_valid(it->p, it->len)) {
                snprintf(err, errlen, "invalid JSON");
                return LS_ERROR;
            }
            c = first_char(it->p, it->len);
            if (c == '{') {
                it->state = 2;
                return ls_json_parse_object(it->p, it->len, rec) == LS_OK ? LS_OK : LS_ERROR;
            }
            if (c != '[') {
                snprintf(err, errlen, "JSON is neither an object nor an array of objects");
                return LS_ERROR;
            }
            it->state = 1;
        }
        rc = ls_json_array_next(it->p, it->len, &it->off, &e, &el);
        if (rc == LS_DECLINED) {
            it->state = 2;
            return LS_DECLINED;
        }
        if (rc != LS_OK) {
            snprintf(err, errlen, "invalid JSON");
            return LS_ERROR;
        }
        if (first_char(e, el) != '{') {
            it->skipped++;
            continue;
        }
        if (ls_json_parse_object(e, el, rec) != LS_OK) {
            snprintf(err, errlen, "invalid JSON");
            return LS_ERROR;
        }
        return LS_OK;
    }
}

static int ndjson_next(struct hb_iter *it, struct ls_record *rec, char *err, size_t errlen)
{
    while (it->off < it->len) {
        const char *s = it->p + it->off;
        const char *nl = memchr(s, '\n', it->len - it->off);
        size_t l = nl ? (size_t)(nl - s) : it->len - it->off;
        size_t line = l;
        int c;

        it->off += l + (nl ? 1 : 0);
        if (l > 0 && s[l - 1] == '\r') {
            l--;
        }
        c = first_char(s, l);
        if (c < 0) {
            continue;
        }
        if (c != '{') {
            it->skipped++;
            continue;
        }
        if (ls_json_parse_object(s, l, rec) != LS_OK) {
            snprintf(err, errlen, "invalid JSON in an NDJSON line of %zu bytes", line);
            return LS_ERROR;
        }
        return LS_OK;
    }
    return LS_DECLINED;
}

/*
 * Where the one MessagePack object at p[0..len) ends (0: malformed or truncated). Every
 * container's count is checked against the bytes left (each element takes at least one), so
 * a forged header cannot make libmsgpack-c allocate more than the data could hold.
 */
static size_t mp_object_end(const unsigned char *p, size_t len)
{
    size_t i = 0;
    uint64_t pending = 1;

    while (pending) {
        unsigned c;
        uint64_t skip = 0, items = 0, n = 0;
        unsigned lenbytes = 0, k;
        bool map = false;

        if (i >= len) {
            return 0;
        }
        c = p[i++];
        pending--;
        if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
            /* fixint, nil, bool */
        } else if (c <= 0x8f) {
            items = 2u * (c & 0x0f);
        } else if (c <= 0x9f) {
            items = c & 0x0f;
        } else if (c <= 0xbf) {
            skip = c & 0x1f;
        } else {
            switch (c) {
            case 0xc4: case 0xd9: lenbytes = 1; break;             /* bin8, str8 */
            case 0xc5: case 0xda: lenbytes = 2; break;
            case 0xc6: case 0xdb: lenbytes = 4; break;
            case 0xc7: lenbytes = 1; skip = 1; break;              /* ext: + type byte */
            case 0xc8: lenbytes = 2; skip = 1; break;
            case 0xc9: lenbytes = 4; skip = 1; break;
            case 0xca: skip = 4; break;
            case 0xcb: skip = 8; break;
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xce: case 0xd2: skip = 4; break;
            case 0xcf: case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break;                            /* fixext: type + data */
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc: lenbytes = 2; items = 1; break;             /* array16/32 */
            case 0xdd: lenbytes = 4; items = 1; break;
            case 0xde: lenbytes = 2; items = 1; map = true; break; /* map16/32 */
            case 0xdf: lenbytes = 4; items = 1; map = true; break;
            default: return 0;                                     /* 0xc1: never used */
            }
        }
        if (lenbytes) {
            if (len - i < lenbytes) {
                return 0;
            }
            for (k = 0; k < lenbytes; k++) {
                n = (n << 8) | p[i++];
            }
            if (items) {
                items = map ? 2 * n : n;
            } else {
                skip += n;
            }
        }
        if (skip > len - i) {
            return 0;
        }
        i += skip;
        pending += items;
        if (pending > len - i) {
            return 0;
        }
    }
    return i;
}

static int mp_next(struct hb_iter *it, struct ls_record *rec, char *err, size_t errlen)
{
    msgpack_unpacked *up;

    if (it->mp == NULL) {
        it->mp = ls_calloc(1, sizeof(msgpack_unpacked));
        msgpack_unpacked_init(it->mp);
        it->mp_at = SIZE_MAX;
    }
    up = it->mp;
    for (;;) {
        const msgpack_object *o, *e;

        if (it->state == 2 || it->off >= it->len) {
            it->state = 2;
            return LS_DECLINED;
        }
        it->state = 1;
        if (it->mp_at != it->off) {
            size_t end = mp_object_end((const unsigned char *)it->p + it->off, it->len - it->off);
            size_t o2 = 0;
            if (end == 0) {
                snprintf(err, errlen, "invalid or truncated MessagePack at byte %zu", it->off);
                return LS_ERROR;
            }
            msgpack_unpacked_destroy(up);
            msgpack_unpacked_init(up);
            it->mp_at = SIZE_MAX;
            if (msgpack_unpack_next(up, it->p + it->off, end, &o2) <= 0 || o2 != end) {
                snprintf(err, errlen, "invalid MessagePack at byte %zu", it->off);
                return LS_ERROR;
            }
            it->mp_at = it->off;
            it->mp_end = it->off + end;
        }
        o = &up->data;
        e = NULL;
        if (o->type == MSGPACK_OBJECT_MAP) {
            if (it->idx == 0) {
                e = o;
                it->idx = 1;
            }
        } else if (o->type == MSGPACK_OBJECT_ARRAY) {
            while (it->idx < o->via.array.size && e == NULL) {
                e = &o->via.array.ptr[it->idx++];
                if (e->type != MSGPACK_OBJECT_MAP) {
                    it->skipped++;
                    e = NULL;
                }
            }
        } else if (it->idx == 0) {
            it->skipped++;
            it->idx = 1;
        }
        if (e == NULL) {
            it->off = it->mp_end;    /* the next top-level object */
            it->idx = 0;
            continue;
        }
        if (ls_msgpack_map_to_record(e, rec) != LS_OK) {
            snprintf(err, errlen, "MessagePack nested too deep");
            return LS_ERROR;
        }
        return LS_OK;
    }
}

void hb_iter_release(struct hb_iter *it)
{
    if (it->mp) {
        msgpack_unpacked_destroy(it->mp);
        ls_free(it->mp);
        it->mp = NULL;
    }
}

struct hb_pos hb_iter_tell(const struct hb_iter *it)
{
    struct hb_pos pos = { it->off, it->idx, it->state };
    return pos;
}

void hb_iter_seek(struct hb_iter *it, struct hb_pos pos)
{
    it->off = pos.off;
    it->idx = pos.idx;
    it->state = pos.state;
}

int hb_iter_next(struct hb_iter *it, struct ls_record *rec, char *err, size_t errlen)
{
    switch (it->kind) {
    case HB_JSON:
        return json_next(it, rec, err, errlen);
    case HB_NDJSON:
        return ndjson_next(it, rec, err, errlen);
    case HB_MSGPACK:
        return mp_next(it, rec, err, errlen);
    default:
        return LS_DECLINED;
    }
}

static void float_time(double f, struct ls_time *out)
{
    double s = floor(f);
    double ns = floor((f - s) * 1e9 + 0.5);

    if (ns >= 1e9) {
        s += 1;
        ns -= 1e9;
    }
    out->sec = (int64_t)s;
    out->nsec = (int32_t)ns;
}

bool hb_param_time(const char *p, size_t len, struct ls_time *out)
{
    char buf[64];
    double f;
    size_t i = 0, n;

    /* Ruby's to_f: leading spaces, then the longest number prefix; '_' between digits */
    while (i < len && isspace((unsigned char)p[i])) {
        i++;
    }
    for (n = 0; i < len && n < sizeof(buf) - 1; i++) {
        if (p[i] == '_' && n > 0 && isdigit((unsigned char)buf[n - 1]) && i + 1 < len &&
            isdigit((unsigned char)p[i + 1])) {
            continue;
        }
        if (!(isdigit((unsigned char)p[i]) || p[i] == '.' || p[i] == '-' || p[i] == '+' ||
              p[i] == 'e' || p[i] == 'E')) {
            break;
        }
        buf[n++] = p[i];
    }
    buf[n] = '\0';
    f = strtod(buf, NULL);
    if (f == 0 || !isfinite(f) || f > 9.2e18 || f < -9.2e18) {
        return false;
    }
    float_time(f, out);
    return true;
}

static const char *ruby_class(const struct ls_value *v)
{
    switch (v->type) {
    case LS_V_BOOL:
        return "true";
    case LS_V_STR:
        return "String";
    case LS_V_JSON:
        return v->u.s.len && v->u.s.p[0] == '[' ? "Array" : "Hash";
    default:
        return "Object";
    }
}

int hb_event_time(const struct hb_params *pr, struct ls_record *rec, const char *time_key,
                  bool keep, struct ls_time *out, char *err, size_t errlen)
{
    struct ls_field *f;
    struct ls_value v;
    int64_t sec;
    int32_t nsec;

    if (pr->time) {
        if (hb_param_time(pr->time, pr->time_len, out)) {
            return LS_OK;
        }
        goto now;
    }
    f = time_key ? ls_record_get(rec, time_key, strlen(time_key)) : NULL;
    if (f == NULL) {
        goto now;
    }
    v = f->v;
    if (!keep) {
        ls_record_del(rec, time_key, strlen(time_key));
    }
    switch (v.type) {
    case LS_V_NULL:
        goto now;
    case LS_V_BOOL:
        if (!v.u.b) {
            goto now;
        }
        break;
    case LS_V_INT:
        out->sec = v.u.i;
        out->nsec = 0;
        return LS_OK;
    case LS_V_FLOAT:
        if (isfinite(v.u.f) && v.u.f < 9.2e18 && v.u.f > -9.2e18) {
            float_time(v.u.f, out);
            return LS_OK;
        }
        snprintf(err, errlen, "time out of range");
        return LS_ERROR;
    default:
        break;
    }
    snprintf(err, errlen, "can't convert %s into an exact number", ruby_class(&v));
    return LS_ERROR;
now:
    ls_wall_now(&sec, &nsec);
    out->sec = sec;
    out->nsec = nsec;
    return LS_OK;
}

int hb_inflate(const char *p, size_t len, bool gzip, size_t limit, struct ls_buf *out, char *err,
               size_t errlen)
{
    z_stream zs;
    int zrc = Z_OK;

    memset(&zs, 0, sizeof(zs));
    /* gzip: Extractor.decompress_gzip; deflate: Zlib::Inflate.inflate, the zlib format */
    if (inflateInit2(&zs, gzip ? 15 + 16 : 15) != Z_OK) {
        snprintf(err, errlen, "cannot start zlib");
        return LS_ERROR;
    }
    zs.next_in = (Bytef *)(uintptr_t)p;
    zs.avail_in = (uInt)(len > UINT_MAX ? UINT_MAX : len);
    out->len = 0;
    while (zrc != Z_STREAM_END) {
        size_t room = 64 * 1024;
        if (out->len >= limit) {
            snprintf(err, errlen, "Decompressed data exceeds limit of %zu bytes", limit);
            inflateEnd(&zs);
            return LS_ERROR;
        }
        if (room > limit - out->len) {
            room = limit - out->len + 1;    /* one more byte tells that the limit is passed */
        }
        if (ls_buf_reserve(out, room) != LS_OK) {
            inflateEnd(&zs);
            snprintf(err, errlen, "out of memory");
            return LS_ERROR;
        }
        zs.next_out = (Bytef *)out->p + out->len;
        zs.avail_out = (uInt)room;
        zrc = inflate(&zs, Z_NO_FLUSH);
        out->len += room - zs.avail_out;
        if (zrc != Z_OK && zrc != Z_STREAM_END) {
            snprintf(err, errlen, "%s", zs.msg ? zs.msg : "invalid compressed data");
            inflateEnd(&zs);
            return LS_ERROR;
        }
        if (zrc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
            snprintf(err, errlen, "truncated compressed data");
            inflateEnd(&zs);
            return LS_ERROR;
        }
    }
    inflateEnd(&zs);
    if (out->len > limit) {
        snprintf(err, errlen, "Decompressed data exceeds limit of %zu bytes", limit);
        return LS_ERROR;
    }
    return LS_OK;
}
