/*
 * fuzz_parquet.c - libFuzzer target for the Parquet writer's inputs.
 *
 * The input chooses a schema (1-8 columns of any type, required or not),
 * a codec, tiny row-group and page sizes (so groups, pages, dictionaries
 * and their fallbacks all happen on small inputs), then rows of odd shapes:
 * nulls (also in required columns, which must be refused), empty and long
 * strings, bytes that are not UTF-8 in BYTES columns, NaN and -0.0,
 * extreme integers, repeated and distinct values. The file must be framed
 * (PAR1 ... footer length PAR1), its footer inside it, and the row count
 * what was accepted. DuckDB reading such files is tests/integration/test_parquet.py.
 */
#include "json.h"
#include "parquet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sink(void *arg, const void *p, size_t n)
{
    return ls_buf_append(arg, p, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int codecs[] = { LSQ_UNCOMPRESSED, LSQ_SNAPPY, LSQ_GZIP, LSQ_ZSTD };
    struct lsq_column cols[8];
    char names[8][4];
    struct lsq_value vals[8];
    struct lsq_opts o;
    struct lsq_writer *w;
    struct ls_buf out;
    char err[200];
    size_t at = 0, ncols, accepted = 0;
    char *copy;

    if (size < 3) {
        return 0;
    }
    copy = ls_malloc(size);     /* exact size: reads past the end are caught */
    memcpy(copy, data, size);
    ncols = 1 + data[0] % 8;
    memset(&o, 0, sizeof(o));
    o.codec = codecs[(data[0] >> 3) % 4];
    o.row_group_size = 64 + (size_t)data[1] * 16;
    o.page_size = 16 + (size_t)data[2];
    at = 3;
    for (size_t i = 0; i < ncols; i++) {
        uint8_t x = at < size ? data[at++] : 0;
        snprintf(names[i], sizeof(names[i]), "c%zu", i);
        cols[i].name = names[i];
        cols[i].type = (enum lsq_type)(1 + x % 8);
        cols[i].required = x & 0x80;
    }
    ls_buf_init(&out, 0);
    w = lsq_writer_new(cols, ncols, &o, sink, &out, err, sizeof(err));
    if (w == NULL) {
        __builtin_trap();
    }
    while (at < size) {
        int rc;
        for (size_t i = 0; i < ncols; i++) {
            uint8_t c = at < size ? data[at++] : 0;
            struct lsq_value *v = &vals[i];
            memset(v, 0, sizeof(*v));
            if (c % 5 == 0) {
                v->null = true;
                continue;
            }
            if (cols[i].type == LSQ_STRING || cols[i].type == LSQ_BYTES) {
                size_t len = c == 0xff ? 5000 : (size_t)(c / 5) % 48;
                if (c == 0xff) {
                    static char big[5000];
                    memset(big, 'x', sizeof(big));
                    v->s = big;
                } else {
                    if (len > size - at) {
                        len = size - at;
                    }
                    v->s = copy + at;
                    at += len;
                    if (cols[i].type == LSQ_STRING) {
                        /* the writer's callers repair UTF-8; keep STRING values valid */
                        len = ls_utf8_valid_prefix(v->s, len);
                    }
                }
                v->len = len;
                continue;
            }
            for (int k = 0; k < 8; k++) {
                uint64_t b = at < size ? data[at++] : c;
                v->i |= (int64_t)(b << (8 * k));
            }
            memcpy(&v->d, &v->i, 8);
            if (cols[i].type == LSQ_INT32) {
                v->i = (int32_t)v->i;
            }
        }
        rc = lsq_add_row(w, vals);
        if (rc == LS_OK) {
            accepted++;
        } else if (rc != LS_DECLINED) {
            __builtin_trap();
        }
    }
    if (lsq_finish(w, err, sizeof(err)) != LS_OK || lsq_rows(w) != accepted) {
        __builtin_trap();
    }
    if (out.len < 12 || memcmp(out.p, "PAR1", 4) != 0 || memcmp(out.p + out.len - 4, "PAR1", 4) != 0) {
        __builtin_trap();
    }
    {
        const unsigned char *e = (const unsigned char *)out.p + out.len - 8;
        uint32_t flen = e[0] | (uint32_t)e[1] << 8 | (uint32_t)e[2] << 16 | (uint32_t)e[3] << 24;
        if (flen == 0 || flen > out.len - 12) {
            __builtin_trap();
        }
    }
    lsq_writer_free(w);
    ls_buf_release(&out);
    ls_free(copy);
    return 0;
}
