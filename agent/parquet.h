/*
 * parquet.h - a minimal Apache Parquet writer for flat log records.
 *
 * What analysts' engines (Athena, Trino, Spark, DuckDB) need and no more
 * (shared/reference/parquet.md has the sources): data page v1, PLAIN values,
 * RLE definition levels for OPTIONAL columns, dictionary pages
 * (PLAIN dictionary + RLE_DICTIONARY indices) when a column repeats itself,
 * page compression (none, snappy, gzip, zstd), per column chunk statistics
 * (min_value/max_value/null_count with TYPE_ORDER column orders) so engines
 * skip row groups, and the footer in Thrift compact encoding.
 *
 * Memory is bounded by row_group_size: rows are buffered column by column
 * and a row group is written out as soon as the buffered values reach it,
 * so only the footer's per-row-group metadata grows with the file.
 *
 * Usage: lsq_writer_new(columns, opts, sink) -> lsq_add_row()... ->
 * lsq_finish() -> lsq_writer_free(). Values of BYTE_ARRAY columns must be
 * valid UTF-8 for LSQ_STRING (the caller repairs them: DuckDB refuses
 * invalid UTF-8 in STRING columns).
 */
#ifndef LS_PARQUET_H
#define LS_PARQUET_H

#include "common.h"
#include "buf.h"

enum lsq_type {
    LSQ_BOOL = 1,
    LSQ_INT32,
    LSQ_INT64,
    LSQ_DOUBLE,
    LSQ_STRING,         /* BYTE_ARRAY + STRING/UTF8 */
    LSQ_BYTES,          /* BYTE_ARRAY, no annotation */
    LSQ_TS_MILLIS,      /* INT64 + TIMESTAMP(isAdjustedToUTC=true, MILLIS) */
    LSQ_TS_MICROS,      /* INT64 + TIMESTAMP(isAdjustedToUTC=true, MICROS) */
};

enum lsq_codec {
    LSQ_UNCOMPRESSED = 0,   /* the values are Parquet's CompressionCodec ids */
    LSQ_SNAPPY = 1,
    LSQ_GZIP = 2,
    LSQ_ZSTD = 6,
};

struct lsq_column {
    char *name;         /* lowercase, unique (Trino lowercases names) */
    enum lsq_type type;
    bool required;
};

/* One value of a row: null, or the field matching the column's type. */
struct lsq_value {
    bool null;
    int64_t i;          /* BOOL (0/1), INT32, INT64, timestamps */
    double d;           /* DOUBLE */
    const char *s;      /* STRING, BYTES */
    size_t len;
};

struct lsq_opts {
    enum lsq_codec codec;
    int level;                  /* gzip 1-12 / zstd 1-19; <= 0: gzip 6, zstd 8 */
    size_t row_group_size;      /* buffered value bytes that end a row group */
    size_t page_size;           /* value bytes per data page (about) */
    const char *created_by;     /* "<app> version <x.y.z> (build <hash>)" */
};

/* The writer's output: LS_OK, or LS_ERROR with errno set. */
typedef int (*lsq_sink_fn)(void *arg, const void *p, size_t n);

struct lsq_writer;

/*
 * Load the library codec needs (libsnappy, libzstd: dlopen'd, see dynlib.h) unless that was
 * done; lsq_writer_new calls it too. LS_OK, or LS_ERROR naming the Debian package in err.
 */
int lsq_codec_load(enum lsq_codec codec, char *err, size_t errlen);
/* cols is copied. NULL (with a message in err) if the columns are unusable. */
struct lsq_writer *lsq_writer_new(const struct lsq_column *cols, size_t ncols,
                                  const struct lsq_opts *o, lsq_sink_fn sink, void *arg,
                                  char *err, size_t errlen);
/* vals[ncols]. A null in a required column is refused (LS_DECLINED) and nothing is added.
 * LS_ERROR: the sink failed while a full row group was written (see err of lsq_finish). */
int lsq_add_row(struct lsq_writer *w, const struct lsq_value *vals);
/* Write what is buffered and the footer. LS_OK / LS_ERROR with a message. */
int lsq_finish(struct lsq_writer *w, char *err, size_t errlen);
void lsq_writer_free(struct lsq_writer *w);
uint64_t lsq_rows(const struct lsq_writer *w);
uint64_t lsq_row_groups(const struct lsq_writer *w);
/* Names for configuration: "snappy"... -> codec; -1 if unknown. */
int lsq_codec_from_name(const char *name);

/* ---- building blocks, exposed for the unit tests ---- */

/* Thrift compact protocol writer (hand-written: Debian's Thrift C library, c_glib,
 * needs GLib and generated code for what is about sixty lines here). */
#define LSQ_TC_DEPTH 8
enum {
    LSQ_TC_TRUE = 1, LSQ_TC_FALSE = 2, LSQ_TC_I8 = 3, LSQ_TC_I16 = 4, LSQ_TC_I32 = 5,
    LSQ_TC_I64 = 6, LSQ_TC_DOUBLE = 7, LSQ_TC_BINARY = 8, LSQ_TC_LIST = 9, LSQ_TC_STRUCT = 12,
};
struct lsq_tc {
    struct ls_buf *b;
    int16_t last[LSQ_TC_DEPTH];     /* last field id written, per open struct */
    int depth;
};
void lsq_tc_init(struct lsq_tc *t, struct ls_buf *b);
void lsq_tc_i32(struct lsq_tc *t, int16_t id, int32_t v);
void lsq_tc_i64(struct lsq_tc *t, int16_t id, int64_t v);
void lsq_tc_i8(struct lsq_tc *t, int16_t id, int8_t v);
void lsq_tc_bool(struct lsq_tc *t, int16_t id, bool v);
void lsq_tc_bin(struct lsq_tc *t, int16_t id, const void *p, size_t n);
void lsq_tc_struct_begin(struct lsq_tc *t, int16_t id);     /* a struct field */
void lsq_tc_struct_end(struct lsq_tc *t);                   /* its stop byte */
void lsq_tc_list_begin(struct lsq_tc *t, int16_t id, int elem_type, size_t n);
void lsq_tc_elem_struct_begin(struct lsq_tc *t);            /* a struct list element */
void lsq_tc_elem_i32(struct lsq_tc *t, int32_t v);
void lsq_tc_elem_bin(struct lsq_tc *t, const void *p, size_t n);
void lsq_tc_varint(struct ls_buf *b, uint64_t v);

/* RLE / bit-packing hybrid (Parquet's RLE encoding) of vals[n], each < 2^bit_width
 * (bit_width 1..32), appended to out without a length prefix. */
void lsq_rle_encode(struct ls_buf *out, const uint32_t *vals, size_t n, int bit_width);

#endif
