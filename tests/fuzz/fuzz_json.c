/*
 * fuzz_json.c - libFuzzer target for the JSON reader and writer.
 *
 * Each input is parsed as an object (zero-copy fields, escapes decoded in
 * the arena) and validated as any value; the parse and the validator must
 * agree. Parsed records are written back (JSON and Ruby inspect) and the
 * JSON written must itself be valid and parse back to as many fields. Array
 * elements are read as the record accessor reads them ($.a[N]), and the input is framed as
 * a stream of documents as in_exec reads a command's output. The
 * input is copied to an exact-size heap block so that any read past the
 * end is caught by ASan.
 */
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p = ls_malloc(size ? size : 1);
    struct ls_arena a;
    struct ls_record r, r2;
    struct ls_buf b;
    bool valid;
    int rc;

    memcpy(p, data, size);
    ls_arena_init(&a, 0);
    ls_record_init(&r, &a);
    ls_record_init(&r2, &a);
    ls_buf_init(&b, 0);
    valid = ls_json_valid(p, size);
    rc = ls_json_parse_object(p, size, &r);
    if (rc == LS_OK && !valid) {
        __builtin_trap();       /* parsed an object the validator rejects */
    }
    if (rc == LS_OK) {
        unsigned i;
        if (ls_json_put_record(&b, &r) != LS_OK || !ls_json_valid(b.p, b.len)) {
            __builtin_trap();
        }
        if (ls_json_parse_object(b.p, b.len, &r2) != LS_OK || r2.nfields > r.nfields) {
            __builtin_trap();
        }
        ls_buf_reset(&b);
        ls_ruby_put_record(&b, &r);
        for (i = 0; i < r.nfields; i++) {
            ls_buf_reset(&b);
            ls_ruby_put_value(&b, &r.fields[i].v, false);
        }
    }
    /* the record accessor's array step: every element of an array, and one past the end */
    {
        struct ls_value v;
        size_t i;
        for (i = 0; i < 64; i++) {
            rc = ls_json_array_get(p, size, i, &a, &v);
            if (rc != LS_OK) {
                break;
            }
            if ((v.type == LS_V_STR || v.type == LS_V_JSON) && v.u.s.len > size * 4 + 4) {
                __builtin_trap();
            }
        }
    }
    /* in_exec's stream framing: in bounds, always forward; a whole object is one document */
    {
        size_t off = 0, st, en;
        while (off < size && ls_json_stream_next(p + off, size - off, &st, &en)) {
            if (st >= en || en > size - off) {
                __builtin_trap();
            }
            off += en;
        }
        if (valid && size > 0 && ls_json_stream_next(p, size, &st, &en) == 1 &&
            (p[st] == '{' || p[st] == '[')) {
            size_t k = en;
            while (k < size && (p[k] == ' ' || p[k] == '\t' || p[k] == '\r' || p[k] == '\n')) {
                k++;
            }
            if (k != size) {
                __builtin_trap();   /* one valid document framed as more than one */
            }
        }
    }
    /* the string writer on raw bytes: output must be valid JSON */
    ls_buf_reset(&b);
    if (ls_json_put_str(&b, p, size) != LS_OK || !ls_json_valid(b.p, b.len)) {
        __builtin_trap();
    }
    ls_buf_release(&b);
    ls_record_release(&r);
    ls_record_release(&r2);
    ls_arena_release(&a);
    ls_free(p);
    return 0;
}
