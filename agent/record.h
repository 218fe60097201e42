/*
 * record.h - an event: tag, time (sec + nsec) and ordered fields.
 *
 * Ownership (see docs/internals/CHUNKS.md):
 *  - An input owns its read buffer. Parsed fields are *borrowed slices* of
 *    it (no copy per field), valid only until the input's next read.
 *  - Anything a parser or filter has to build (unescaped strings, values
 *    computed by record_transformer) is allocated from the record's arena,
 *    which the input resets after each emit.
 *  - The output's formatter copies bytes into a chunk; after ls_emit()
 *    returns, the record is dead.
 *
 * Strings are byte slices: they may contain NUL and invalid UTF-8. The JSON
 * formatter escapes them into valid output.
 *
 * Delivery tracking: an input that can re-read (tail, rds_slowlog) sets
 * src (a 64-bit key naming the source, see ls_source_key) and pos (its
 * position *after* this record). Outputs remember the highest pos they
 * durably hold per source and drop a re-read record at or below it, which
 * is what makes restart after kill -9 exactly-once. src == 0: untracked.
 */
#ifndef LS_RECORD_H
#define LS_RECORD_H

#include "common.h"

enum ls_vtype {
    LS_V_NULL = 0,
    LS_V_BOOL,
    LS_V_INT,
    LS_V_FLOAT,
    LS_V_STR,
    LS_V_JSON,      /* raw, valid JSON text of an object or array (nested values) */
};

struct ls_value {
    enum ls_vtype type;
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            const char *p;
            size_t len;
        } s;        /* LS_V_STR and LS_V_JSON */
    } u;
};

struct ls_field {
    const char *key;
    size_t key_len;
    struct ls_value v;
};

/* Bump allocator for per-record memory; reset (not freed) between records. */
struct ls_arena_block;
struct ls_arena {
    struct ls_arena_block *head;
    size_t block_size;
};

void ls_arena_init(struct ls_arena *a, size_t block_size);
void ls_arena_reset(struct ls_arena *a);     /* keeps the first block for reuse */
void ls_arena_release(struct ls_arena *a);
void *ls_arena_alloc(struct ls_arena *a, size_t n);
char *ls_arena_memdup(struct ls_arena *a, const void *p, size_t n);   /* NUL-terminated copy */

struct ls_time {
    int64_t sec;
    int32_t nsec;
};

struct ls_record {
    const char *tag;
    size_t tag_len;
    struct ls_time time;
    struct ls_field *fields;
    unsigned nfields;
    unsigned cap;
    struct ls_arena *arena;   /* owned by whoever created the record */
    uint64_t src;             /* source key, 0 = untracked */
    uint64_t pos;             /* position after this record in src */
};

/* rec->fields storage is owned by the record (grown with ls_realloc). */
void ls_record_init(struct ls_record *rec, struct ls_arena *arena);
void ls_record_release(struct ls_record *rec);
/* Drop fields (keeps capacity), resets tag/time/src/pos; does not reset the arena. */
void ls_record_clear(struct ls_record *rec);

/* Room for one more field (ls_record_add's slow path). */
void ls_record_grow(struct ls_record *rec);

/* Append a field (no duplicate check: parsers produce unique keys). Key and value borrowed.
 * Inline: parsers call it for every field of every line. */
static inline __attribute__((always_inline)) struct ls_field *
ls_record_add(struct ls_record *rec, const char *key, size_t key_len, const struct ls_value *v)
{
    struct ls_field *f;

    if (rec->nfields == rec->cap) {
        ls_record_grow(rec);
    }
    f = &rec->fields[rec->nfields++];
    f->key = key;
    f->key_len = key_len;
    f->v = *v;
    return f;
}
/* Set: replace the value of an existing key, or append. */
struct ls_field *ls_record_set(struct ls_record *rec, const char *key, size_t key_len,
                               const struct ls_value *v);
struct ls_field *ls_record_get(const struct ls_record *rec, const char *key, size_t key_len);
/* Remove a field, keeping the order of the others. Returns true if it existed. */
bool ls_record_del(struct ls_record *rec, const char *key, size_t key_len);

static inline struct ls_value ls_vstr(const char *p, size_t len)
{
    struct ls_value v;
    v.type = LS_V_STR;
    v.u.s.p = p;
    v.u.s.len = len;
    return v;
}

static inline struct ls_value ls_vint(int64_t i)
{
    struct ls_value v;
    v.type = LS_V_INT;
    v.u.i = i;
    return v;
}

static inline struct ls_value ls_vfloat(double f)
{
    struct ls_value v;
    v.type = LS_V_FLOAT;
    v.u.f = f;
    return v;
}

static inline struct ls_value ls_vbool(bool b)
{
    struct ls_value v;
    v.type = LS_V_BOOL;
    v.u.b = b;
    return v;
}

static inline struct ls_value ls_vnull(void)
{
    struct ls_value v;
    v.type = LS_V_NULL;
    v.u.i = 0;
    return v;
}

/*
 * Render a value as text (for placeholders like ${host}, chunk keys, ltsv):
 * strings as-is, numbers in decimal, bools true/false, null as "". Appends
 * into an arena-allocated string; returns its length via *len.
 */
const char *ls_value_to_text(struct ls_arena *a, const struct ls_value *v, size_t *len);

/*
 * fluentd's record_accessor (plugin_helper/record_accessor.rb): "$.a.b[0]" (dot form) or
 * "$['a']['b'][0]" (bracket form) walks nested objects and arrays; anything else is one
 * top-level key, as written. Nested values are LS_V_JSON text, read on demand.
 */
struct ls_accessor_step {
    char *key;          /* NULL for an array index */
    size_t key_len;
    long index;
};

struct ls_accessor {
    struct ls_accessor_step *steps;
    size_t n;
    char *spec;         /* as written, for messages */
};

/* LS_OK, or LS_ERROR with a message in err ("invalid record accessor '$.a['"). */
int ls_accessor_compile(struct ls_accessor *acc, const char *spec, char *err, size_t errlen);
void ls_accessor_release(struct ls_accessor *acc);
/* The value at the path (true), or false when any step is missing (fluentd: nil). */
bool ls_accessor_get(const struct ls_accessor *acc, const struct ls_record *rec,
                     struct ls_value *out);
/* Delete the value at the path (nested objects are rewritten in rec's arena). True if found. */
bool ls_accessor_del(const struct ls_accessor *acc, struct ls_record *rec);

/*
 * Ruby's String#to_i of p[0..len): leading space, a sign, digits with '_' between them, else 0.
 * A value past int64 stays exact as fluentd's bignum does: its digits as an LS_V_JSON number
 * (copied into arena), which the JSON formatter writes as they are.
 */
struct ls_value ls_value_ruby_to_i(struct ls_arena *arena, const char *p, size_t len);

#endif
