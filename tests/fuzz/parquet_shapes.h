/*
 * parquet_shapes.h - turn arbitrary bytes into a Parquet file of odd shapes, shared by the
 * fuzz target (fuzz_parquet.c) and the tool the integration test runs (tests/tools/
 * parquet_shapes.c) so that DuckDB reads files made exactly as the fuzzer makes them.
 *
 * The input chooses a schema (1-8 columns of any type, required or not), a codec, tiny
 * row-group and page sizes (so groups, pages, dictionaries and their fallbacks all happen on
 * small inputs), then rows: nulls (also in required columns, which must be refused), empty
 * and long strings, bytes that are not UTF-8 in BYTES columns, NaN and -0.0, extreme
 * integers, repeated and distinct values.
 */
#include "json.h"
#include "parquet.h"

static int shapes_sink(void *arg, const void *p, size_t n)
{
    return ls_buf_append(arg, p, n);
}

/* LS_OK with the file in out and the rows accepted in *accepted; LS_DECLINED: input too
 * short; LS_ERROR: the writer failed (a bug). */
static int shapes_write(const uint8_t *data, size_t size, struct ls_buf *out, size_t *accepted)
{
    static const int codecs[] = { LSQ_UNCOMPRESSED, LSQ_SNAPPY, LSQ_GZIP, LSQ_ZSTD };
    static char big[5000];
    struct lsq_column cols[8];
    char names[8][4];
    struct lsq_value vals[8];
    struct lsq_opts o;
    struct lsq_writer *w;
    char err[200];
    size_t at, ncols;
    char *copy;
    int rc = LS_OK;

    *accepted = 0;
    if (size < 3) {
        return LS_DECLINED;
    }
    memset(big, 'x', sizeof(big));
    copy = ls_malloc(size);     /* exact size: reads past the end are caught */
    memcpy(copy, data, size);
    ncols = 1 + data[0] % 8;
    memset(&o, 0, sizeof(o));
    o.codec = codecs[(data[0] >> 3) % 4];
    o.row_group_size = 64 + (size_t)data[1] * 16;
    o.page_size = 16 + (size_t)data[2];
    o.created_by = "logship version 0 (build fuzz)";
    o.level = data[0] & 0x40 ? 3 : 0;
    at = 3;
    for (size_t i = 0; i < ncols; i++) {
        uint8_t x = at < size ? data[at++] : 0;
        snprintf(names[i], sizeof(names[i]), "c%zu", i);
        cols[i].name = names[i];
        cols[i].type = (enum lsq_type)(1 + x % 8);
        cols[i].required = x & 0x80;
    }
    w = lsq_writer_new(cols, ncols, &o, shapes_sink, out, err, sizeof(err));
    if (w == NULL) {
        ls_free(copy);
        return LS_ERROR;
    }
    while (at < size && rc == LS_OK) {
        for (size_t i = 0; i < ncols; i++) {
            uint8_t c = at < size ? data[at++] : 0;
            struct lsq_value *v = &vals[i];
            memset(v, 0, sizeof(*v));
            if (c % 5 == 0) {
                v->null = true;
                continue;
            }
            if (cols[i].type == LSQ_STRING || cols[i].type == LSQ_BYTES) {
                size_t len = c == 0xff ? sizeof(big) : (size_t)(c / 5) % 48;
                if (c == 0xff) {
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
            } else if (cols[i].type == LSQ_TS_MILLIS || cols[i].type == LSQ_TS_MICROS) {
                /* within years 1..9999 (about), as the formatter admits them */
                int64_t lim = cols[i].type == LSQ_TS_MILLIS ? 253402300800000 : 253402300800000000;
                v->i %= lim;
            }
        }
        switch (lsq_add_row(w, vals)) {
        case LS_OK:
            (*accepted)++;
            break;
        case LS_DECLINED:
            break;
        default:
            rc = LS_ERROR;
        }
    }
    if (rc == LS_OK && (lsq_finish(w, err, sizeof(err)) != LS_OK || lsq_rows(w) != *accepted)) {
        rc = LS_ERROR;
    }
    lsq_writer_free(w);
    ls_free(copy);
    return rc;
}
