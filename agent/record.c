/*
 * record.c - records and the per-record arena (see record.h).
 *
 * Records are small and short-lived: fields point into the input's buffer,
 * and what must be built lives in an arena that is reset, not freed, after
 * each emit, so the steady state allocates nothing per line.
 */
#include "record.h"

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

struct ls_field *ls_record_add(struct ls_record *rec, const char *key, size_t key_len,
                               const struct ls_value *v)
{
    struct ls_field *f;

    if (rec->nfields == rec->cap) {
        rec->cap = rec->cap ? rec->cap * 2 : 16;
        rec->fields = ls_realloc(rec->fields, rec->cap * sizeof(*rec->fields));
    }
    f = &rec->fields[rec->nfields++];
    f->key = key;
    f->key_len = key_len;
    f->v = *v;
    return f;
}

struct ls_field *ls_record_get(const struct ls_record *rec, const char *key, size_t key_len)
{
    unsigned i;

    for (i = 0; i < rec->nfields; i++) {
        struct ls_field *f = &rec->fields[i];
        if (f->key_len == key_len && memcmp(f->key, key, key_len) == 0) {
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
