/*
 * record.c - records and the per-record arena (see record.h).
 *
 * Records are small and short-lived: fields point into the input's buffer,
 * and what must be built lives in an arena that is reset, not freed, after
 * each emit, so the steady state allocates nothing per line.
 */
#include "record.h"
#include "buf.h"
#include "json.h"

#include <inttypes.h>
#include <stdio.h>

struct ls_arena_block {
    struct ls_arena_block *next;
    size_t size;
    size_t used;
    char data[];
};

void ls_arena_init(struct ls_arena *a, size_t block_size)
{
    a->head = NULL;
    a->block_size = block_size ? block_size : 4096;
}

void ls_arena_release(struct ls_arena *a)
{
    struct ls_arena_block *b = a->head, *next;

    while (b) {
        next = b->next;
        ls_free(b);
        b = next;
    }
    a->head = NULL;
}

void ls_arena_reset(struct ls_arena *a)
{
    struct ls_arena_block *b, *next;

    if (a->head == NULL) {
        return;
    }
    /* keep the last (oldest, normal-sized) block; free the extra ones */
    b = a->head;
    while (b->next) {
        next = b->next;
        ls_free(b);
        b = next;
    }
    b->used = 0;
    a->head = b;
}

void *ls_arena_alloc(struct ls_arena *a, size_t n)
{
    struct ls_arena_block *b = a->head;
    size_t size;

    n = (n + 15) & ~(size_t)15;
    if (b == NULL || b->size - b->used < n) {
        size = n > a->block_size ? n : a->block_size;
        b = ls_malloc(sizeof(*b) + size);
        b->size = size;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    b->used += n;
    return b->data + b->used - n;
}

char *ls_arena_memdup(struct ls_arena *a, const void *p, size_t n)
{
    char *d = ls_arena_alloc(a, n + 1);
    if (n) {
        memcpy(d, p, n);
    }
    d[n] = '\0';
    return d;
}

void ls_record_init(struct ls_record *rec, struct ls_arena *arena)
{
    memset(rec, 0, sizeof(*rec));
    rec->arena = arena;
}

void ls_record_release(struct ls_record *rec)
{
    ls_free(rec->fields);
    rec->fields = NULL;
    rec->nfields = rec->cap = 0;
}

void ls_record_clear(struct ls_record *rec)
{
    rec->nfields = 0;
    rec->tag = NULL;
    rec->tag_len = 0;
    rec->time.sec = 0;
    rec->time.nsec = 0;
    rec->src = 0;
    rec->pos = 0;
}

void ls_record_grow(struct ls_record *rec)
{
    rec->cap = rec->cap ? rec->cap * 2 : 16;
    rec->fields = ls_realloc(rec->fields, rec->cap * sizeof(*rec->fields));
}

struct ls_field *ls_record_get(const struct ls_record *rec, const char *key, size_t key_len)
{
    unsigned i;

    for (i = 0; i < rec->nfields; i++) {
        struct ls_field *f = &rec->fields[i];
        /* an empty key may have no bytes at all (a MessagePack "" decodes to NULL) */
        if (f->key_len == key_len && (key_len == 0 || memcmp(f->key, key, key_len) == 0)) {
            return f;
        }
    }
    return NULL;
}

struct ls_field *ls_record_set(struct ls_record *rec, const char *key, size_t key_len,
                               const struct ls_value *v)
{
    struct ls_field *f = ls_record_get(rec, key, key_len);

    if (f) {
        f->v = *v;
        return f;
    }
    return ls_record_add(rec, key, key_len, v);
}

bool ls_record_del(struct ls_record *rec, const char *key, size_t key_len)
{
    struct ls_field *f = ls_record_get(rec, key, key_len);
    size_t i;

    if (f == NULL) {
        return false;
    }
    i = (size_t)(f - rec->fields);
    memmove(f, f + 1, (rec->nfields - i - 1) * sizeof(*f));
    rec->nfields--;
    return true;
}

const char *ls_value_to_text(struct ls_arena *a, const struct ls_value *v, size_t *len)
{
    char tmp[64];
    int n;

    switch (v->type) {
    case LS_V_STR:
    case LS_V_JSON:
        *len = v->u.s.len;
        return v->u.s.p;
    case LS_V_INT:
        n = snprintf(tmp, sizeof(tmp), "%" PRId64, v->u.i);
        break;
    case LS_V_FLOAT:
        n = snprintf(tmp, sizeof(tmp), "%.17g", v->u.f);
        break;
    case LS_V_BOOL:
        n = snprintf(tmp, sizeof(tmp), "%s", v->u.b ? "true" : "false");
        break;
    default:
        *len = 0;
        return "";
    }
    *len = (size_t)n;
    return ls_arena_memdup(a, tmp, (size_t)n);
}

/* ---- record_accessor ---- */

static void acc_add(struct ls_accessor *acc, const char *key, size_t len, long index)
{
    struct ls_accessor_step *st;

    acc->steps = ls_realloc(acc->steps, (acc->n + 1) * sizeof(*acc->steps));
    st = &acc->steps[acc->n++];
    st->key = key ? ls_strndup(key, len) : NULL;
    st->key_len = len;
    st->index = index;
}

int ls_accessor_compile(struct ls_accessor *acc, const char *spec, char *err, size_t errlen)
{
    const char *s = spec;

    memset(acc, 0, sizeof(*acc));
    acc->spec = ls_strdup(spec);
    if (!(s[0] == '$' && (s[1] == '.' || s[1] == '['))) {
        acc_add(acc, s, strlen(s), 0);
        return LS_OK;
    }
    s++;
    while (*s) {
        if (*s == '.') {
            const char *e = ++s;
            while (*e && *e != '.' && *e != '[') {
                e++;
            }
            if (e == s) {
                goto bad;
            }
            acc_add(acc, s, (size_t)(e - s), 0);
            s = e;
        } else if (*s == '[' && (s[1] == '\'' || s[1] == '"')) {
            char q = s[1];
            const char *e = strchr(s + 2, q);
            if (e == NULL || e[1] != ']') {
                goto bad;
            }
            acc_add(acc, s + 2, (size_t)(e - s - 2), 0);
            s = e + 2;
        } else if (*s == '[') {
            char *end;
            long v = strtol(s + 1, &end, 10);
            if (end == s + 1 || *end != ']' || acc->n == 0) {
                goto bad;
            }
            acc_add(acc, NULL, 0, v);
            s = end + 1;
        } else {
            goto bad;
        }
    }
    if (acc->n == 0) {
        goto bad;
    }
    return LS_OK;

bad:
    snprintf(err, errlen, "invalid record accessor '%s' (expected $.key.sub, $['key'][0] or a "
             "plain key)", spec);
    ls_accessor_release(acc);
    return LS_ERROR;
}

void ls_accessor_release(struct ls_accessor *acc)
{
    size_t i;

    for (i = 0; i < acc->n; i++) {
        ls_free(acc->steps[i].key);
    }
    ls_free(acc->steps);
    ls_free(acc->spec);
    memset(acc, 0, sizeof(*acc));
}

/* One step into a nested value v (LS_V_JSON). */
static bool acc_step(const struct ls_accessor_step *st, struct ls_arena *arena,
                     const struct ls_value *v, struct ls_value *out)
{
    if (v->type != LS_V_JSON) {
        return false;
    }
    if (st->key == NULL) {
        int64_t idx = st->index;
        if (idx < 0) {
            /* Ruby's Array#dig(-1): from the end */
            struct ls_value ev;
            int64_t n = 0;
            while (ls_json_array_get(v->u.s.p, v->u.s.len, (size_t)n, arena, &ev) == LS_OK) {
                n++;
            }
            idx += n;
        }
        return idx >= 0 &&
               ls_json_array_get(v->u.s.p, v->u.s.len, (size_t)idx, arena, out) == LS_OK;
    } else {
        struct ls_record tmp;
        struct ls_field *f;
        bool found = false;
        ls_record_init(&tmp, arena);
        if (ls_json_parse_object(v->u.s.p, v->u.s.len, &tmp) == LS_OK) {
            f = ls_record_get(&tmp, st->key, st->key_len);
            if (f) {
                *out = f->v;
                found = true;
            }
        }
        ls_record_release(&tmp);
        return found;
    }
}

bool ls_accessor_get(const struct ls_accessor *acc, const struct ls_record *rec,
                     struct ls_value *out)
{
    struct ls_field *f;
    struct ls_value v;
    size_t i;

    if (acc->n == 0 || acc->steps[0].key == NULL) {
        return false;
    }
    f = ls_record_get(rec, acc->steps[0].key, acc->steps[0].key_len);
    if (f == NULL) {
        return false;
    }
    v = f->v;
    for (i = 1; i < acc->n; i++) {
        struct ls_value next;
        if (!acc_step(&acc->steps[i], rec->arena, &v, &next)) {
            return false;
        }
        v = next;
    }
    *out = v;
    return true;
}

/* Delete steps[i..] inside the object text v; on success *out is the rewritten text. */
static bool acc_del_in(const struct ls_accessor *acc, size_t i, struct ls_arena *arena,
                       const struct ls_value *v, struct ls_value *out)
{
    const struct ls_accessor_step *st = &acc->steps[i];
    struct ls_record tmp;
    struct ls_field *f;
    struct ls_buf b;
    bool found = false;

    if (v->type != LS_V_JSON || st->key == NULL) {
        return false;    /* deleting from arrays is left out */
    }
    ls_record_init(&tmp, arena);
    if (ls_json_parse_object(v->u.s.p, v->u.s.len, &tmp) != LS_OK) {
        ls_record_release(&tmp);
        return false;
    }
    if (i + 1 == acc->n) {
        found = ls_record_del(&tmp, st->key, st->key_len);
    } else {
        f = ls_record_get(&tmp, st->key, st->key_len);
        if (f) {
            struct ls_value inner;
            found = acc_del_in(acc, i + 1, arena, &f->v, &inner);
            if (found) {
                f->v = inner;
            }
        }
    }
    if (found) {
        ls_buf_init(&b, 0);
        ls_json_put_record(&b, &tmp);
        out->type = LS_V_JSON;
        out->u.s.p = ls_arena_memdup(arena, b.p ? b.p : "{}", b.len ? b.len : 2);
        out->u.s.len = b.len ? b.len : 2;
        ls_buf_release(&b);
    }
    ls_record_release(&tmp);
    return found;
}

bool ls_accessor_del(const struct ls_accessor *acc, struct ls_record *rec)
{
    struct ls_field *f;
    struct ls_value nv;

    if (acc->n == 0 || acc->steps[0].key == NULL) {
        return false;
    }
    if (acc->n == 1) {
        return ls_record_del(rec, acc->steps[0].key, acc->steps[0].key_len);
    }
    f = ls_record_get(rec, acc->steps[0].key, acc->steps[0].key_len);
    if (f == NULL || !acc_del_in(acc, 1, rec->arena, &f->v, &nv)) {
        return false;
    }
    f->v = nv;
    return true;
}

struct ls_value ls_value_ruby_to_i(struct ls_arena *arena, const char *p, size_t len)
{
    const char *end = p + len, *digits;
    char *txt;
    uint64_t v = 0;
    bool neg = false, big = false;
    size_t nd = 0, k;

    while (p < end && (*p == ' ' || (*p >= '\t' && *p <= '\r'))) {
        p++;
    }
    if (p < end && (*p == '-' || *p == '+')) {
        neg = *p++ == '-';
    }
    while (p < end && *p == '0' && p + 1 < end && (unsigned)(p[1] - '0') < 10) {
        p++;                                       /* leading zeros: not part of the value */
    }
    digits = p;
    for (; p < end; p++) {
        if ((unsigned)(*p - '0') < 10) {
            if (!big && v > (UINT64_MAX - 9) / 10) {
                big = true;
            }
            v = v * 10 + (uint64_t)(*p - '0');
            nd++;
        } else if (!(*p == '_' && nd > 0 && p + 1 < end && (unsigned)(p[1] - '0') < 10)) {
            break;
        }
    }
    if (!big && v <= (uint64_t)INT64_MAX + neg) {
        return ls_vint(neg ? (int64_t)(0 - v) : (int64_t)v);
    }
    if (arena == NULL) {
        return ls_vint(neg ? INT64_MIN : INT64_MAX);
    }
    txt = ls_arena_alloc(arena, nd + 2);
    k = 0;
    if (neg) {
        txt[k++] = '-';
    }
    for (const char *q = digits; q < p; q++) {
        if (*q != '_') {
            txt[k++] = *q;
        }
    }
    return (struct ls_value){ .type = LS_V_JSON, .u.s = { txt, k } };
}
