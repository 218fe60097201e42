/*
 * parquet.c - the Parquet writer (see parquet.h; the format facts and their
 * sources are in shared/reference/parquet.md).
 *
 * A row group is buffered column by column: definition levels (one byte a
 * row, OPTIONAL columns only), the non-null values (fixed-width types as
 * int64/double arrays, byte arrays already in PLAIN form, 4-byte length +
 * bytes, with an offset per value), and running min/max/null counts. When
 * the buffered values reach row_group_size the group is written: per
 * column, a dictionary is tried (first-seen order, hashed), kept when it
 * pays (repeats, under 1 MiB), and the pages are cut at about page_size
 * value bytes. Each page body is compressed on its own and preceded by its
 * Thrift PageHeader. Offsets, sizes and statistics stay in memory for the
 * footer, which lsq_finish writes after the last group.
 *
 * Thrift compact encoding is hand-written: Parquet uses a handful of
 * structs, and Debian's only C binding (thrift c_glib) would bring GLib and
 * generated code for what the lsq_tc_* functions do in a few lines.
 */
#include "parquet.h"
#include "compress.h"
#include "dynlib.h"

#include <libdeflate.h>
#include <math.h>
#include <snappy-c.h>

#define LSQ_MAX_PAGE_ROWS 20000
#define LSQ_DICT_MAX_BYTES (1024 * 1024)
/* min/max larger than this are left out (Arrow's DEFAULT_MAX_STATISTICS_SIZE) */
#define LSQ_STATS_MAX 4096
/* zstd pages: level 8 by default. Its lazy match finder shrank the bench's paths (half of a
 * web log's Parquet bytes, PLAIN) and body sizes 10-20% more than level 3, for about the
 * same CPU of the whole pipeline (page bytes are a fraction of what a chunk costs). What
 * level 8 costs is its match tables, 2^21 entries each (16 MB a context); a page is at most
 * about 1 MiB, and 2^17 entries (1 MB a context) stored within 0.2% of the default tables. */
#define LSQ_ZSTD_LEVEL 8
#define LSQ_ZSTD_TABLE_LOG 17
/* Without a compression_level, level 8 searches matches of 6 bytes or more (its own: 5) and
 * 2^5 candidates a position (2^4): on the bench's 200 MB log 13.37 -> 13.08 MB (0.504x ->
 * 0.492x the gzip JSON bytes, -2.2%), mostly in the paths; the shorter matches level 8 takes
 * cost more as sequences than their bytes as Huffman literals. An explicit compression_level
 * gets that level's own search. */
#define LSQ_ZSTD_MIN_MATCH 6
#define LSQ_ZSTD_SEARCH_LOG 5
static const struct ls_zstd_params lsq_zstd_default = {
    LSQ_ZSTD_LEVEL, LSQ_ZSTD_TABLE_LOG, LSQ_ZSTD_MIN_MATCH, LSQ_ZSTD_SEARCH_LOG
};

/* ------------------------------------------------------------------ */
/* Thrift compact protocol                                              */

void lsq_tc_varint(struct ls_buf *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;

    do {
        unsigned char c = v & 0x7f;
        v >>= 7;
        tmp[n++] = v ? (unsigned char)(c | 0x80) : c;
    } while (v);
    ls_buf_append(b, tmp, n);
}

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

void lsq_tc_init(struct lsq_tc *t, struct ls_buf *b)
{
    t->b = b;
    t->depth = 0;
    t->last[0] = 0;
}

static void tc_field(struct lsq_tc *t, int16_t id, int type)
{
    int delta = id - t->last[t->depth];

    if (delta > 0 && delta <= 15) {
        ls_buf_putc(t->b, (char)((delta << 4) | type));
    } else {
        ls_buf_putc(t->b, (char)type);
        lsq_tc_varint(t->b, zigzag(id));
    }
    t->last[t->depth] = id;
}

void lsq_tc_i32(struct lsq_tc *t, int16_t id, int32_t v)
{
    tc_field(t, id, LSQ_TC_I32);
    lsq_tc_varint(t->b, zigzag(v));
}

void lsq_tc_i64(struct lsq_tc *t, int16_t id, int64_t v)
{
    tc_field(t, id, LSQ_TC_I64);
    lsq_tc_varint(t->b, zigzag(v));
}

void lsq_tc_i8(struct lsq_tc *t, int16_t id, int8_t v)
{
    tc_field(t, id, LSQ_TC_I8);
    ls_buf_putc(t->b, (char)v);
}

void lsq_tc_bool(struct lsq_tc *t, int16_t id, bool v)
{
    tc_field(t, id, v ? LSQ_TC_TRUE : LSQ_TC_FALSE);   /* the type nibble is the value */
}

void lsq_tc_bin(struct lsq_tc *t, int16_t id, const void *p, size_t n)
{
    tc_field(t, id, LSQ_TC_BINARY);
    lsq_tc_varint(t->b, n);
    ls_buf_append(t->b, p, n);
}

static void tc_push(struct lsq_tc *t)
{
    if (t->depth + 1 >= LSQ_TC_DEPTH) {
        abort();    /* Parquet's metadata nests five deep at most: a bug, not input */
    }
    t->last[++t->depth] = 0;
}

void lsq_tc_struct_begin(struct lsq_tc *t, int16_t id)
{
    tc_field(t, id, LSQ_TC_STRUCT);
    tc_push(t);
}

void lsq_tc_struct_end(struct lsq_tc *t)
{
    ls_buf_putc(t->b, 0);
    if (t->depth > 0) {
        t->depth--;
    }
}

void lsq_tc_list_begin(struct lsq_tc *t, int16_t id, int elem_type, size_t n)
{
    tc_field(t, id, LSQ_TC_LIST);
    if (n < 15) {
        ls_buf_putc(t->b, (char)((n << 4) | (size_t)elem_type));
    } else {
        ls_buf_putc(t->b, (char)(0xf0 | elem_type));
        lsq_tc_varint(t->b, n);
    }
}

void lsq_tc_elem_struct_begin(struct lsq_tc *t)
{
    tc_push(t);
}

void lsq_tc_elem_i32(struct lsq_tc *t, int32_t v)
{
    lsq_tc_varint(t->b, zigzag(v));
}

void lsq_tc_elem_bin(struct lsq_tc *t, const void *p, size_t n)
{
    lsq_tc_varint(t->b, n);
    ls_buf_append(t->b, p, n);
}

/* ------------------------------------------------------------------ */
/* RLE / bit-packing hybrid                                             */

static void rle_put_value(struct ls_buf *out, uint32_t v, int bit_width)
{
    int nbytes = (bit_width + 7) / 8;

    for (int i = 0; i < nbytes; i++) {
        ls_buf_putc(out, (char)(v >> (8 * i)));
    }
}

/* vals[0..n) as one bit-packed run; n is padded with zeros to a multiple of 8. */
static void rle_put_packed(struct ls_buf *out, const uint32_t *vals, size_t n, int bit_width)
{
    size_t groups = (n + 7) / 8;
    size_t nbytes = groups * (size_t)bit_width;
    uint64_t acc = 0;
    int bits = 0;
    size_t i, written = 0;

    lsq_tc_varint(out, (groups << 1) | 1);
    ls_buf_reserve(out, nbytes);
    for (i = 0; i < groups * 8; i++) {
        uint64_t v = i < n ? vals[i] : 0;
        acc |= v << bits;
        bits += bit_width;
        while (bits >= 8) {
            ls_buf_putc(out, (char)(acc & 0xff));
            acc >>= 8;
            bits -= 8;
            written++;
        }
    }
    if (bits > 0) {     /* cannot happen: 8 values of any width fill whole bytes */
        ls_buf_putc(out, (char)acc);
        written++;
    }
    (void)written;
}

/*
 * Runs of 8 or more equal values become RLE runs; everything else is collected
 * into bit-packed runs, which must hold a multiple of 8 values except at the
 * very end. Before an RLE run, the pending literals are topped up to a
 * multiple of 8 with values taken from the start of that run.
 */
void lsq_rle_encode(struct ls_buf *out, const uint32_t *vals, size_t n, int bit_width)
{
    size_t i = 0, lit_start = 0, lit_n = 0;

    while (i < n) {
        size_t j = i + 1;
        while (j < n && vals[j] == vals[i]) {
            j++;
        }
        if (j - i >= 8) {
            size_t run = j - i;
            if (lit_n > 0) {
                size_t pad = (8 - lit_n % 8) % 8;
                lit_n += pad;
                run -= pad;
                rle_put_packed(out, vals + lit_start, lit_n, bit_width);
                lit_n = 0;
            }
            if (run > 0) {
                lsq_tc_varint(out, (uint64_t)run << 1);
                rle_put_value(out, vals[i], bit_width);
            }
        } else {
            if (lit_n == 0) {
                lit_start = i;
            }
            lit_n += j - i;
        }
        i = j;
    }
    if (lit_n > 0) {
        rle_put_packed(out, vals + lit_start, lit_n, bit_width);
    }
}

static int bits_for(uint32_t max)
{
    int b = 1;

    while (b < 32 && (max >> b) != 0) {
        b++;
    }
    return b;
}

/* ------------------------------------------------------------------ */
/* the writer                                                           */

struct lsq_stats {
    bool have;              /* min/max set (some non-null, non-NaN value) */
    bool too_long;          /* a byte array over LSQ_STATS_MAX: no min/max */
    int64_t imin, imax;
    double dmin, dmax;
    size_t smin_off, smin_len, smax_off, smax_len;   /* into the column's data */
    uint64_t nulls, nans;
};

/* What the footer needs of one written column chunk. */
struct lsq_chunk_meta {
    int64_t data_off, dict_off;     /* dict_off -1: none */
    int64_t usize, csize;
    int64_t num_values;
    bool dict;
    uint64_t nulls, nans;
    bool have_minmax;
    struct ls_buf min, max;         /* PLAIN bytes of one value, no length prefix */
};

struct lsq_rg_meta {
    int64_t num_rows;
    int64_t file_offset;
    int64_t total_usize, total_csize;
    struct lsq_chunk_meta *cols;
};

/* An interning slot carries what a probe needs (hash, length, where the first copy is
 * and its entry), so a miss costs one cache line and a hit one more for the bytes;
 * with only a value index in the slot, every probe also loaded that value's offset
 * (in perf, those dependent loads were most of lsq_add_row). */
struct lsq_islot {
    uint32_t hash;          /* low 32 bits of hash_bytes: position and first check */
    uint32_t len;
    uint32_t off;           /* first copy in data */
    uint32_t id;            /* entry + 1, 0 empty */
};

struct lsq_col {
    struct lsq_column c;
    uint8_t *def;           /* OPTIONAL: 1 present / 0 null, per row */
    int64_t *iv;            /* fixed-width non-null values */
    double *dv;
    size_t nvals, cap;      /* non-null values buffered */
    struct ls_buf data;     /* byte arrays: PLAIN (len4 + bytes) */
    uint32_t *off;          /* byte arrays: offset of each value in data */
    struct lsq_stats st;
    /* Byte arrays are interned as they are added (col_intern): a repeated value keeps
     * only its offset and entry, pointing at its first copy. A row group of a web log
     * then holds twice the rows in the same row_group_size (client addresses, referers
     * and agents repeat), so fewer dictionaries are written per file, and the
     * dictionary is known at flush without hashing every value again. */
    bool intern;            /* still interning in this group */
    bool shared;            /* some offsets point at an earlier copy */
    uint32_t *ids;          /* dictionary entry of each value, while interning */
    struct lsq_islot *hslots;   /* open addressing over the entries */
    size_t hcap, nent, dict_bytes;
};

struct lsq_writer {
    struct lsq_col *cols;
    size_t ncols;
    struct lsq_opts o;
    char *created_by;
    lsq_sink_fn sink;
    void *sink_arg;
    int64_t pos;            /* bytes written so far */
    size_t rows;            /* rows in the buffered group */
    size_t rows_cap;
    size_t bytes;           /* value bytes in the buffered group */
    uint64_t total_rows;
    struct lsq_rg_meta *rgs;
    size_t nrgs;
    bool failed;
    char err[200];
    /* scratch reused for every page */
    struct ls_buf page, comp, hdr, dictbuf;
    uint32_t *idx;
    size_t idx_cap;
    uint32_t *levels;
    size_t levels_cap;
    uint32_t *dscratch;     /* frequency order of the dictionary: 5 words an entry */
    size_t dscratch_cap;
    uint32_t *slots;        /* the dictionary's hash table, reused */
    size_t slots_cap;
    struct libdeflate_compressor *gz;
    void *zs;               /* zstd context (compress.c: libzstd is dlopen'd) */
};

/* libsnappy's functions, filled by lsq_codec_load: linked, libsnappy brought libstdc++ into
 * every process and 1.0 MB of idle RSS, for a codec only Parquet outputs use */
static struct {
    snappy_status (*compress)(const char *in, size_t n, char *out, size_t *out_len);
    size_t (*max_compressed_length)(size_t n);
} sn;

static const struct ls_dynsym sn_syms[] = {
    { "snappy_compress", offsetof(__typeof__(sn), compress) },
    { "snappy_max_compressed_length", offsetof(__typeof__(sn), max_compressed_length) },
};

/* the SONAME of the ABI snappy-c.h describes, as Debian 12 ships it */
static struct ls_dynlib sn_lib = { .soname = "libsnappy.so.1", .package = "libsnappy1v5",
                                   .syms = sn_syms, .nsyms = LS_ARRAY_LEN(sn_syms), .table = &sn };

int lsq_codec_load(enum lsq_codec codec, char *err, size_t errlen)
{
    if (codec == LSQ_SNAPPY) {
        return ls_dynlib_load(&sn_lib, err, errlen);
    }
    if (codec == LSQ_ZSTD) {
        return ls_compress_load(LS_COMPRESS_ZSTD, err, errlen);
    }
    return LS_OK;
}

int lsq_codec_from_name(const char *name)
{
    if (strcmp(name, "none") == 0 || strcmp(name, "uncompressed") == 0) {
        return LSQ_UNCOMPRESSED;
    }
    if (strcmp(name, "snappy") == 0) {
        return LSQ_SNAPPY;
    }
    if (strcmp(name, "gzip") == 0) {
        return LSQ_GZIP;
    }
    if (strcmp(name, "zstd") == 0) {
        return LSQ_ZSTD;
    }
    return -1;
}

static bool is_bytes(enum lsq_type t)
{
    return t == LSQ_STRING || t == LSQ_BYTES;
}

static int physical(enum lsq_type t)
{
    switch (t) {
    case LSQ_BOOL: return 0;
    case LSQ_INT32: return 1;
    case LSQ_INT64: case LSQ_TS_MILLIS: case LSQ_TS_MICROS: return 2;
    case LSQ_DOUBLE: return 5;
    case LSQ_STRING: case LSQ_BYTES: return 6;
    }
    return 6;
}

static size_t fixed_size(enum lsq_type t)
{
    switch (t) {
    case LSQ_INT32: return 4;
    case LSQ_DOUBLE: case LSQ_INT64: case LSQ_TS_MILLIS: case LSQ_TS_MICROS: return 8;
    default: return 1;
    }
}

static void col_reset(struct lsq_col *c);

struct lsq_writer *lsq_writer_new(const struct lsq_column *cols, size_t ncols,
                                  const struct lsq_opts *o, lsq_sink_fn sink, void *arg,
                                  char *err, size_t errlen)
{
    struct lsq_writer *w;

    if (ncols == 0) {
        snprintf(err, errlen, "a Parquet schema needs at least one column");
        return NULL;
    }
    for (size_t i = 0; i < ncols; i++) {
        for (size_t k = 0; k < i; k++) {
            if (strcmp(cols[i].name, cols[k].name) == 0) {
                snprintf(err, errlen, "column '%s' appears twice", cols[i].name);
                return NULL;
            }
        }
    }
    if (o->codec != LSQ_UNCOMPRESSED && o->codec != LSQ_SNAPPY && o->codec != LSQ_GZIP
        && o->codec != LSQ_ZSTD) {
        snprintf(err, errlen, "unknown Parquet codec %d", (int)o->codec);
        return NULL;
    }
    if (lsq_codec_load(o->codec, err, errlen) != LS_OK) {
        return NULL;
    }
    w = ls_calloc(1, sizeof(*w));
    w->cols = ls_calloc(ncols, sizeof(*w->cols));
    w->ncols = ncols;
    for (size_t i = 0; i < ncols; i++) {
        w->cols[i].c = cols[i];
        w->cols[i].c.name = ls_strdup(cols[i].name);
        ls_buf_init(&w->cols[i].data, 0);
        col_reset(&w->cols[i]);
    }
    w->o = *o;
    if (w->o.row_group_size == 0) {
        w->o.row_group_size = 64u << 20;
    }
    if (w->o.page_size == 0) {
        w->o.page_size = 1u << 20;
    }
    w->created_by = ls_strdup(o->created_by ? o->created_by : "logship version 0 (build unknown)");
    w->sink = sink;
    w->sink_arg = arg;
    ls_buf_init(&w->page, 0);
    ls_buf_init(&w->comp, 0);
    ls_buf_init(&w->hdr, 0);
    ls_buf_init(&w->dictbuf, 0);
    if (o->codec == LSQ_GZIP) {
        w->gz = libdeflate_alloc_compressor(o->level > 0 && o->level <= 12 ? o->level : 6);
    }
    return w;
}

static void col_reset(struct lsq_col *c)
{
    c->nvals = 0;
    ls_buf_reset(&c->data);
    memset(&c->st, 0, sizeof(c->st));
    c->intern = is_bytes(c->c.type);
    c->shared = false;
    c->nent = 0;
    c->dict_bytes = 0;
    if (c->hslots) {
        memset(c->hslots, 0, c->hcap * sizeof(*c->hslots));
    }
}

static void col_grow(struct lsq_writer *w, struct lsq_col *c)
{
    if (c->nvals < c->cap) {
        return;
    }
    c->cap = c->cap ? c->cap * 2 : 1024;
    if (is_bytes(c->c.type)) {
        c->off = ls_realloc(c->off, c->cap * sizeof(*c->off));
        c->ids = ls_realloc(c->ids, c->cap * sizeof(*c->ids));
    } else if (c->c.type == LSQ_DOUBLE) {
        c->dv = ls_realloc(c->dv, c->cap * sizeof(*c->dv));
    } else {
        c->iv = ls_realloc(c->iv, c->cap * sizeof(*c->iv));
    }
    (void)w;
}

static int emit(struct lsq_writer *w, const void *p, size_t n)
{
    if (w->failed) {
        return LS_ERROR;
    }
    if (n > 0 && w->sink(w->sink_arg, p, n) != LS_OK) {
        w->failed = true;
        snprintf(w->err, sizeof(w->err), "writing the Parquet file failed (%d: %s)", errno,
                 strerror(errno));
        return LS_ERROR;
    }
    w->pos += (int64_t)n;
    return LS_OK;
}

/* Compress w->page into w->comp per the codec. */
static int compress_page(struct lsq_writer *w)
{
    size_t n = w->page.len, bound = 0, got = 0;

    ls_buf_reset(&w->comp);
    switch (w->o.codec) {
    case LSQ_UNCOMPRESSED:
        ls_buf_append(&w->comp, w->page.p, n);
        return LS_OK;
    case LSQ_SNAPPY:
        bound = sn.max_compressed_length(n);
        ls_buf_reserve(&w->comp, bound);
        got = bound;
        if (sn.compress(w->page.p, n, w->comp.p, &got) != SNAPPY_OK) {
            break;
        }
        w->comp.len = got;
        return LS_OK;
    case LSQ_GZIP:
        if (w->gz == NULL) {
            break;
        }
        bound = libdeflate_gzip_compress_bound(w->gz, n);
        ls_buf_reserve(&w->comp, bound);
        got = libdeflate_gzip_compress(w->gz, w->page.p, n, w->comp.p, bound);
        if (got == 0) {
            break;
        }
        w->comp.len = got;
        return LS_OK;
    case LSQ_ZSTD: {
        struct ls_zstd_params zp = lsq_zstd_default;
        if (w->o.level > 0) {
            zp.level = w->o.level;      /* with that level's own search */
            zp.min_match = zp.search_log = 0;
        }
        if (ls_zstd_frame(&w->zs, &zp, w->page.p, n, &w->comp, w->err, sizeof(w->err)) != LS_OK) {
            w->failed = true;
            return LS_ERROR;
        }
        return LS_OK;
    }
    }
    w->failed = true;
    snprintf(w->err, sizeof(w->err), "compressing a Parquet page failed");
    return LS_ERROR;
}

/* Write w->page as a page: header (type 0 data / 2 dictionary), compressed body. */
static int write_page(struct lsq_writer *w, int type, int32_t num_values, int encoding,
                      struct lsq_chunk_meta *m)
{
    struct lsq_tc t;

    if (compress_page(w) != LS_OK) {
        return LS_ERROR;
    }
    ls_buf_reset(&w->hdr);
    lsq_tc_init(&t, &w->hdr);
    lsq_tc_i32(&t, 1, type);
    lsq_tc_i32(&t, 2, (int32_t)w->page.len);
    lsq_tc_i32(&t, 3, (int32_t)w->comp.len);
    if (type == 0) {
        lsq_tc_struct_begin(&t, 5);
        lsq_tc_i32(&t, 1, num_values);
        lsq_tc_i32(&t, 2, encoding);
        lsq_tc_i32(&t, 3, 3);       /* definition levels: RLE */
        lsq_tc_i32(&t, 4, 3);       /* repetition levels: RLE (none stored) */
        lsq_tc_struct_end(&t);
    } else {
        lsq_tc_struct_begin(&t, 7);
        lsq_tc_i32(&t, 1, num_values);
        lsq_tc_i32(&t, 2, 0);       /* PLAIN: PLAIN_DICTIONARY is the deprecated spelling */
        lsq_tc_struct_end(&t);
    }
    lsq_tc_struct_end(&t);
    m->usize += (int64_t)(w->hdr.len + w->page.len);
    m->csize += (int64_t)(w->hdr.len + w->comp.len);
    if (emit(w, w->hdr.p, w->hdr.len) != LS_OK || emit(w, w->comp.p, w->comp.len) != LS_OK) {
        return LS_ERROR;
    }
    return LS_OK;
}

static void put_le(struct ls_buf *b, uint64_t v, size_t n)
{
    unsigned char tmp[8];

    for (size_t i = 0; i < n; i++) {
        tmp[i] = (unsigned char)(v >> (8 * i));
    }
    ls_buf_append(b, tmp, n);
}

/* The PLAIN bytes of non-null value k (byte arrays with their length prefix). */
static void put_plain(struct ls_buf *b, const struct lsq_col *c, size_t k)
{
    if (is_bytes(c->c.type)) {
        uint32_t len;
        memcpy(&len, c->data.p + c->off[k], 4);
        ls_buf_append(b, c->data.p + c->off[k], 4 + (size_t)len);
    } else if (c->c.type == LSQ_DOUBLE) {
        uint64_t u;
        memcpy(&u, &c->dv[k], 8);
        put_le(b, u, 8);
    } else {
        put_le(b, (uint64_t)c->iv[k], fixed_size(c->c.type));
    }
}

static size_t value_bytes(const struct lsq_col *c, size_t k)
{
    if (is_bytes(c->c.type)) {
        uint32_t len;
        memcpy(&len, c->data.p + c->off[k], 4);
        return 4 + (size_t)len;
    }
    return fixed_size(c->c.type);
}

/* 64-bit words at a time (the dictionary hashes every value of every chunk) */
static uint64_t hash_bytes(const unsigned char *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    const size_t len = n;

    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    /* The tail in whole loads: a memcpy of a variable 1-7 bytes compiled to byte stores
     * and an 8-byte load of them, which stalls on store forwarding (a fifth of
     * lsq_add_row in perf). With 8 bytes or more before it, the last 8 bytes overlap. */
    if (n) {
        uint64_t w = 0;
        if (len >= 8) {
            memcpy(&w, p + n - 8, 8);
        } else if (n >= 4) {
            uint32_t a, b;
            memcpy(&a, p, 4);
            memcpy(&b, p + n - 4, 4);
            w = (uint64_t)a << 32 | b;
        } else {
            w = (uint64_t)p[0] << 16 | (uint64_t)p[n / 2] << 8 | p[n - 1];
        }
        h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    }
    h ^= h >> 29;
    return h * 0x94d049bb133111ebull;
}

/* fixed-width values only: byte arrays are interned as they are added (col_intern) */
static uint64_t hash_value(const struct lsq_col *c, size_t k)
{
    if (c->c.type == LSQ_DOUBLE) {
        return hash_bytes((const unsigned char *)&c->dv[k], 8);
    }
    return hash_bytes((const unsigned char *)&c->iv[k], 8);
}

static bool same_value(const struct lsq_col *c, size_t a, size_t b)
{
    if (c->c.type == LSQ_DOUBLE) {
        return memcmp(&c->dv[a], &c->dv[b], 8) == 0;
    }
    return c->iv[a] == c->iv[b];
}

/*
 * Try a dictionary for column c: w->idx gets each value's index and
 * w->dictbuf the PLAIN dictionary. False when it does not pay: too big, or
 * no repeats worth the indirection.
 */
static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/*
 * Renumber the n entries of a built dictionary by falling frequency (ties: first seen first)
 * and rewrite w->dictbuf in that order. Frequent values then get small indices, and the
 * packed indices repeat more for zstd (a few clients, pages, referers make most rows of a
 * log): 1.2% fewer bytes for the whole file on the bench's log, at zstd 3.
 */
static void order_dict(struct lsq_writer *w, const struct lsq_col *c, size_t n)
{
    uint64_t *key;
    uint32_t *first, *cnt, *rank;

    if (n < 2) {
        return;
    }
    if (w->dscratch_cap < n) {
        ls_free(w->dscratch);
        /* key (2 words) + first + cnt + rank */
        w->dscratch = ls_malloc(n * 5 * sizeof(*w->dscratch));
        w->dscratch_cap = n;
    }
    key = (uint64_t *)(void *)w->dscratch;
    first = w->dscratch + 2 * n;
    cnt = first + n;
    rank = cnt + n;
    memset(cnt, 0, n * sizeof(*cnt));
    for (size_t k = 0; k < c->nvals; k++) {
        if (cnt[w->idx[k]]++ == 0) {
            first[w->idx[k]] = (uint32_t)k;
        }
    }
    for (size_t e = 0; e < n; e++) {
        key[e] = (uint64_t)(UINT32_MAX - cnt[e]) << 32 | e;
    }
    qsort(key, n, sizeof(*key), cmp_u64);
    ls_buf_reset(&w->dictbuf);
    for (size_t r = 0; r < n; r++) {
        uint32_t e = (uint32_t)key[r];
        rank[e] = (uint32_t)r;
        put_plain(&w->dictbuf, c, first[e]);
    }
    for (size_t k = 0; k < c->nvals; k++) {
        w->idx[k] = rank[w->idx[k]];
    }
}

static bool build_dict(struct lsq_writer *w, const struct lsq_col *c, uint32_t *nentries)
{
    size_t cap = 16, n = 0;
    uint32_t *slots;        /* value index + 1 of each entry's first occurrence, 0 empty */
    bool ok = true;

    if (c->c.type == LSQ_BOOL || c->nvals == 0) {
        return false;
    }
    if (is_bytes(c->c.type)) {
        /* interned as added: the entries are known, or the column gave up on them */
        n = c->nent;
        if (!c->intern || n * 2 > c->nvals) {
            return false;
        }
        if (w->idx_cap < c->nvals) {
            w->idx_cap = c->nvals;
            w->idx = ls_realloc(w->idx, w->idx_cap * sizeof(*w->idx));
        }
        memcpy(w->idx, c->ids, c->nvals * sizeof(*w->idx));
        ls_buf_reset(&w->dictbuf);
        if (n == 1) {
            put_plain(&w->dictbuf, c, 0);
        }
        order_dict(w, c, n);
        *nentries = (uint32_t)n;
        return true;
    }
    while (cap < c->nvals * 2) {
        cap *= 2;
    }
    if (cap > (1u << 20) * 2) {
        cap = (1u << 20) * 2;
    }
    if (w->slots_cap < cap) {
        ls_free(w->slots);
        w->slots = ls_malloc(cap * sizeof(*w->slots));
        w->slots_cap = cap;
    }
    slots = w->slots;
    memset(slots, 0, cap * sizeof(*slots));
    if (w->idx_cap < c->nvals) {
        w->idx_cap = c->nvals;
        w->idx = ls_realloc(w->idx, w->idx_cap * sizeof(*w->idx));
    }
    ls_buf_reset(&w->dictbuf);
    for (size_t k = 0; k < c->nvals; k++) {
        size_t h = (size_t)hash_value(c, k) & (cap - 1);
        while (slots[h] && !same_value(c, slots[h] - 1, k)) {
            h = (h + 1) & (cap - 1);
        }
        if (slots[h] == 0) {
            if (n + 1 > cap / 2 || n + 1 > 65536) {
                ok = false;
                break;
            }
            slots[h] = (uint32_t)(k + 1);
            w->idx[k] = (uint32_t)n++;
            put_plain(&w->dictbuf, c, k);
            if (w->dictbuf.len > LSQ_DICT_MAX_BYTES) {
                ok = false;
                break;
            }
        } else {
            size_t first = slots[h] - 1;
            /* the entry of the first occurrence is the index recorded for it */
            w->idx[k] = w->idx[first];
        }
        /* three quarters distinct after a quarter of the values: it will not pay, stop
         * hashing. Not half: a column drawn from a pool (client addresses) meets most of its
         * distinct values early, and a cut at half cost the bench's remote column its
         * dictionary (38% more bytes for that column) */
        if (k + 1 == c->nvals / 4 && k >= 1024 && n * 4 > (k + 1) * 3) {
            ok = false;
            break;
        }
    }
    /* a dictionary with few repeats only adds an indirection: on the bench's nginx log, body
     * sizes (8-byte values that zstd shrinks to 2-3 bytes) were smaller PLAIN over 25%
     * distinct (byte arrays: over 50%, in the interned branch above) */
    if (ok && n * 4 > c->nvals) {
        ok = false;
    }
    if (ok) {
        order_dict(w, c, n);
    }
    *nentries = (uint32_t)n;
    return ok;
}

/* Definition levels of rows [r0, r1) with their 4-byte length prefix. */
static void put_levels(struct lsq_writer *w, const struct lsq_col *c, size_t r0, size_t r1)
{
    size_t n = r1 - r0, at;

    if (w->levels_cap < n) {
        w->levels_cap = n;
        w->levels = ls_realloc(w->levels, n * sizeof(*w->levels));
    }
    for (size_t r = 0; r < n; r++) {
        w->levels[r] = c->def[r0 + r];
    }
    at = w->page.len;
    put_le(&w->page, 0, 4);
    lsq_rle_encode(&w->page, w->levels, n, 1);
    {
        uint32_t len = (uint32_t)(w->page.len - at - 4);
        for (int i = 0; i < 4; i++) {
            w->page.p[at + (size_t)i] = (char)(len >> (8 * i));
        }
    }
}

static void stats_to_meta(const struct lsq_col *c, struct lsq_chunk_meta *m)
{
    const struct lsq_stats *s = &c->st;

    m->nulls = s->nulls;
    m->nans = s->nans;
    m->have_minmax = s->have && !s->too_long;
    ls_buf_init(&m->min, 0);
    ls_buf_init(&m->max, 0);
    if (!m->have_minmax) {
        return;
    }
    if (is_bytes(c->c.type)) {
        ls_buf_append(&m->min, c->data.p + s->smin_off, s->smin_len);
        ls_buf_append(&m->max, c->data.p + s->smax_off, s->smax_len);
    } else if (c->c.type == LSQ_DOUBLE) {
        /* a zero bound is written as -0.0 (min) / +0.0 (max), per parquet.thrift */
        double lo = s->dmin == 0 ? -0.0 : s->dmin, hi = s->dmax == 0 ? 0.0 : s->dmax;
        uint64_t u;
        memcpy(&u, &lo, 8);
        put_le(&m->min, u, 8);
        memcpy(&u, &hi, 8);
        put_le(&m->max, u, 8);
    } else {
        put_le(&m->min, (uint64_t)s->imin, fixed_size(c->c.type));
        put_le(&m->max, (uint64_t)s->imax, fixed_size(c->c.type));
    }
}

static int write_column(struct lsq_writer *w, struct lsq_col *c, struct lsq_chunk_meta *m)
{
    uint32_t nent = 0;
    bool dict = build_dict(w, c, &nent);
    int bw = dict ? bits_for(nent > 0 ? nent - 1 : 0) : 0;
    size_t r = 0, k = 0;

    m->dict_off = -1;
    m->dict = dict;
    m->num_values = (int64_t)w->rows;
    stats_to_meta(c, m);
    if (dict) {
        m->dict_off = w->pos;
        ls_buf_reset(&w->page);
        ls_buf_append(&w->page, w->dictbuf.p, w->dictbuf.len);
        if (write_page(w, 2, (int32_t)nent, 0, m) != LS_OK) {
            return LS_ERROR;
        }
    }
    m->data_off = w->pos;
    /* pages: cut at about page_size value bytes or LSQ_MAX_PAGE_ROWS rows */
    do {
        size_t r0 = r, k0 = k, bytes = 0;
        while (r < w->rows && r - r0 < LSQ_MAX_PAGE_ROWS && bytes < w->o.page_size) {
            if (c->c.required || c->def[r]) {
                bytes += dict ? 2 : value_bytes(c, k);
                k++;
            }
            r++;
        }
        ls_buf_reset(&w->page);
        if (!c->c.required) {
            put_levels(w, c, r0, r);
        }
        if (dict) {
            ls_buf_putc(&w->page, (char)bw);
            lsq_rle_encode(&w->page, w->idx + k0, k - k0, bw);
        } else if (c->c.type == LSQ_BOOL) {
            unsigned char acc = 0;
            for (size_t i = k0; i < k; i++) {
                if (c->iv[i]) {
                    acc |= (unsigned char)(1u << ((i - k0) % 8));
                }
                if ((i - k0) % 8 == 7) {
                    ls_buf_putc(&w->page, (char)acc);
                    acc = 0;
                }
            }
            if ((k - k0) % 8) {
                ls_buf_putc(&w->page, (char)acc);
            }
        } else if (is_bytes(c->c.type) && k > k0 && !c->shared) {
            size_t end = k < c->nvals ? c->off[k] : c->data.len;
            ls_buf_append(&w->page, c->data.p + c->off[k0], end - c->off[k0]);
        } else {
            for (size_t i = k0; i < k; i++) {
                put_plain(&w->page, c, i);
            }
        }
        if (write_page(w, 0, (int32_t)(r - r0), dict ? 8 : 0, m) != LS_OK) {
            return LS_ERROR;
        }
    } while (r < w->rows);
    return LS_OK;
}

static int flush_group(struct lsq_writer *w)
{
    struct lsq_rg_meta *rg;

    if (w->rows == 0) {
        return LS_OK;       /* never an empty row group: readers choke on them */
    }
    if (w->pos == 0 && emit(w, "PAR1", 4) != LS_OK) {
        return LS_ERROR;
    }
    w->rgs = ls_realloc(w->rgs, (w->nrgs + 1) * sizeof(*w->rgs));
    rg = &w->rgs[w->nrgs++];
    memset(rg, 0, sizeof(*rg));
    rg->cols = ls_calloc(w->ncols, sizeof(*rg->cols));
    rg->num_rows = (int64_t)w->rows;
    rg->file_offset = w->pos;
    for (size_t i = 0; i < w->ncols; i++) {
        if (write_column(w, &w->cols[i], &rg->cols[i]) != LS_OK) {
            return LS_ERROR;
        }
        rg->total_usize += rg->cols[i].usize;
        rg->total_csize += rg->cols[i].csize;
    }
    w->total_rows += w->rows;
    w->rows = 0;
    w->bytes = 0;
    for (size_t i = 0; i < w->ncols; i++) {
        col_reset(&w->cols[i]);
    }
    return LS_OK;
}

static void update_stats(struct lsq_col *c, const struct lsq_value *v, size_t k)
{
    struct lsq_stats *s = &c->st;

    if (is_bytes(c->c.type)) {
        size_t off = c->off[k] + 4;
        if (v->len > LSQ_STATS_MAX) {
            s->too_long = true;
            return;
        }
        if (!s->have) {
            s->have = true;
            s->smin_off = s->smax_off = off;
            s->smin_len = s->smax_len = v->len;
            return;
        }
        {
            size_t m = v->len < s->smin_len ? v->len : s->smin_len;
            int cmp = memcmp(v->s, c->data.p + s->smin_off, m);
            if (cmp < 0 || (cmp == 0 && v->len < s->smin_len)) {
                s->smin_off = off;
                s->smin_len = v->len;
            }
            m = v->len < s->smax_len ? v->len : s->smax_len;
            cmp = memcmp(v->s, c->data.p + s->smax_off, m);
            if (cmp > 0 || (cmp == 0 && v->len > s->smax_len)) {
                s->smax_off = off;
                s->smax_len = v->len;
            }
        }
    } else if (c->c.type == LSQ_DOUBLE) {
        if (isnan(v->d)) {
            s->nans++;
            return;
        }
        if (!s->have) {
            s->have = true;
            s->dmin = s->dmax = v->d;
        } else {
            s->dmin = v->d < s->dmin ? v->d : s->dmin;
            s->dmax = v->d > s->dmax ? v->d : s->dmax;
        }
    } else {
        if (!s->have) {
            s->have = true;
            s->imin = s->imax = v->i;
        } else {
            s->imin = v->i < s->imin ? v->i : s->imin;
            s->imax = v->i > s->imax ? v->i : s->imax;
        }
    }
}

static void intern_grow(struct lsq_col *c)
{
    size_t cap = c->hcap ? c->hcap * 2 : 1024;
    struct lsq_islot *t = ls_calloc(cap, sizeof(*t));

    for (size_t i = 0; i < c->hcap; i++) {
        if (c->hslots[i].id) {
            size_t h;
            for (h = c->hslots[i].hash & (cap - 1); t[h].id; h = (h + 1) & (cap - 1)) {
            }
            t[h] = c->hslots[i];
        }
    }
    ls_free(c->hslots);
    c->hslots = t;
    c->hcap = cap;
}

/*
 * Value k (v) of byte-array column c, while interning: true when it repeats an earlier
 * value (off and ids of k now point at that one), false when it is new (the caller stores
 * it; its entry is recorded here). Interning stops for the group when the dictionary
 * would not be written anyway: over 65536 entries or LSQ_DICT_MAX_BYTES, or three
 * quarters distinct after 4096 values (paths with ids and query strings).
 */
static bool col_intern(struct lsq_col *c, const struct lsq_value *v, size_t k)
{
    uint32_t hv;
    size_t h;

    if (c->nent + 1 > c->hcap / 2) {
        intern_grow(c);
    }
    hv = (uint32_t)hash_bytes((const unsigned char *)v->s, v->len);
    for (h = hv & (c->hcap - 1); c->hslots[h].id; h = (h + 1) & (c->hcap - 1)) {
        const struct lsq_islot *e = &c->hslots[h];
        if (e->hash == hv && e->len == v->len
            && memcmp(c->data.p + e->off + 4, v->s, v->len) == 0) {
            c->off[k] = e->off;
            c->ids[k] = e->id - 1;
            c->shared = true;
            return true;
        }
    }
    if (c->nent + 1 > 65536 || c->dict_bytes + 4 + v->len > LSQ_DICT_MAX_BYTES
        || (k + 1 == 4096 && (c->nent + 1) * 4 > (k + 1) * 3)) {
        c->intern = false;
        return false;
    }
    /* the caller appends the bytes at data.len: that is where the first copy will be */
    c->hslots[h].hash = hv;
    c->hslots[h].len = (uint32_t)v->len;
    c->hslots[h].off = (uint32_t)c->data.len;
    c->ids[k] = (uint32_t)c->nent++;
    c->hslots[h].id = c->ids[k] + 1;
    c->dict_bytes += 4 + v->len;
    return false;
}

int lsq_add_row(struct lsq_writer *w, const struct lsq_value *vals)
{
    if (w->failed) {
        return LS_ERROR;
    }
    for (size_t i = 0; i < w->ncols; i++) {
        if (vals[i].null && w->cols[i].c.required) {
            return LS_DECLINED;
        }
        if (!vals[i].null && is_bytes(w->cols[i].c.type) && vals[i].len > UINT32_MAX - 8) {
            return LS_DECLINED;
        }
    }
    if (w->rows == w->rows_cap) {
        w->rows_cap = w->rows_cap ? w->rows_cap * 2 : 1024;
        for (size_t i = 0; i < w->ncols; i++) {
            if (!w->cols[i].c.required) {
                w->cols[i].def = ls_realloc(w->cols[i].def, w->rows_cap);
            }
        }
    }
    for (size_t i = 0; i < w->ncols; i++) {
        struct lsq_col *c = &w->cols[i];
        const struct lsq_value *v = &vals[i];
        size_t k;

        if (!c->c.required) {
            c->def[w->rows] = v->null ? 0 : 1;
        }
        if (v->null) {
            c->st.nulls++;
            w->bytes += 1;
            continue;
        }
        col_grow(w, c);
        k = c->nvals++;
        if (is_bytes(c->c.type) && c->intern && col_intern(c, v, k)) {
            w->bytes += 2 * sizeof(uint32_t);
            continue;       /* a repeat: its statistics are already counted */
        }
        if (is_bytes(c->c.type)) {
            c->off[k] = (uint32_t)c->data.len;
            put_le(&c->data, v->len, 4);
            ls_buf_append(&c->data, v->s, v->len);
            w->bytes += 4 + v->len;
        } else if (c->c.type == LSQ_DOUBLE) {
            c->dv[k] = v->d;
            w->bytes += 8;
        } else {
            c->iv[k] = c->c.type == LSQ_BOOL ? (v->i != 0) : v->i;
            w->bytes += fixed_size(c->c.type);
        }
        update_stats(c, v, k);
    }
    w->rows++;
    /* byte-array offsets are 32-bit: a group ends well before 4 GiB of values too */
    if (w->bytes >= w->o.row_group_size || w->rows >= INT32_MAX / 2) {
        return flush_group(w);
    }
    for (size_t i = 0; i < w->ncols; i++) {
        if (w->cols[i].data.len > UINT32_MAX / 2) {
            return flush_group(w);
        }
    }
    return LS_OK;
}

static void put_logical(struct lsq_tc *t, enum lsq_type type)
{
    switch (type) {
    case LSQ_STRING:
        lsq_tc_i32(t, 6, 0);                /* converted_type UTF8 */
        lsq_tc_struct_begin(t, 10);         /* logicalType: STRING */
        lsq_tc_struct_begin(t, 1);
        lsq_tc_struct_end(t);
        lsq_tc_struct_end(t);
        break;
    case LSQ_TS_MILLIS:
    case LSQ_TS_MICROS:
        lsq_tc_i32(t, 6, type == LSQ_TS_MILLIS ? 9 : 10);
        lsq_tc_struct_begin(t, 10);
        lsq_tc_struct_begin(t, 8);          /* TimestampType */
        lsq_tc_bool(t, 1, true);            /* isAdjustedToUTC */
        lsq_tc_struct_begin(t, 2);          /* TimeUnit */
        lsq_tc_struct_begin(t, type == LSQ_TS_MILLIS ? 1 : 2);
        lsq_tc_struct_end(t);
        lsq_tc_struct_end(t);
        lsq_tc_struct_end(t);
        lsq_tc_struct_end(t);
        break;
    default:
        break;              /* INT32/INT64/DOUBLE/BOOLEAN need no annotation */
    }
}

static void put_chunk_meta(struct lsq_tc *t, const struct lsq_col *c, const struct lsq_chunk_meta *m,
                           enum lsq_codec codec)
{
    size_t nenc = 1 + (c->c.required ? 0 : 1) + (m->dict ? 1 : 0);

    lsq_tc_elem_struct_begin(t);                    /* ColumnChunk */
    lsq_tc_i64(t, 2, 0);                            /* file_offset: deprecated, 0 */
    lsq_tc_struct_begin(t, 3);                      /* ColumnMetaData */
    lsq_tc_i32(t, 1, physical(c->c.type));
    lsq_tc_list_begin(t, 2, LSQ_TC_I32, nenc);
    lsq_tc_elem_i32(t, 0);                          /* PLAIN */
    if (!c->c.required) {
        lsq_tc_elem_i32(t, 3);                      /* RLE */
    }
    if (m->dict) {
        lsq_tc_elem_i32(t, 8);                      /* RLE_DICTIONARY */
    }
    lsq_tc_list_begin(t, 3, LSQ_TC_BINARY, 1);
    lsq_tc_elem_bin(t, c->c.name, strlen(c->c.name));
    lsq_tc_i32(t, 4, (int32_t)codec);
    lsq_tc_i64(t, 5, m->num_values);
    lsq_tc_i64(t, 6, m->usize);
    lsq_tc_i64(t, 7, m->csize);
    lsq_tc_i64(t, 9, m->data_off);
    if (m->dict_off >= 0) {
        lsq_tc_i64(t, 11, m->dict_off);
    }
    lsq_tc_struct_begin(t, 12);                     /* Statistics */
    if (m->have_minmax && c->c.type != LSQ_STRING && c->c.type != LSQ_BYTES) {
        /* the deprecated signed-order pair, meaningful for signed types only */
        lsq_tc_bin(t, 1, m->max.p, m->max.len);
        lsq_tc_bin(t, 2, m->min.p, m->min.len);
    }
    lsq_tc_i64(t, 3, (int64_t)m->nulls);
    if (m->have_minmax) {
        lsq_tc_bin(t, 5, m->max.p, m->max.len);
        lsq_tc_bin(t, 6, m->min.p, m->min.len);
        lsq_tc_bool(t, 7, true);
        lsq_tc_bool(t, 8, true);
    }
    if (c->c.type == LSQ_DOUBLE) {
        lsq_tc_i64(t, 9, (int64_t)m->nans);
    }
    lsq_tc_struct_end(t);                           /* Statistics */
    lsq_tc_struct_end(t);                           /* ColumnMetaData */
    lsq_tc_struct_end(t);                           /* ColumnChunk */
}

int lsq_finish(struct lsq_writer *w, char *err, size_t errlen)
{
    struct ls_buf f;
    struct lsq_tc t;
    int rc = LS_ERROR;

    if (!w->failed) {
        flush_group(w);
    }
    if (w->failed) {
        snprintf(err, errlen, "%s", w->err);
        return LS_ERROR;
    }
    ls_buf_init(&f, 0);
    if (w->pos == 0) {
        if (emit(w, "PAR1", 4) != LS_OK) {
            goto out;
        }
    }
    lsq_tc_init(&t, &f);
    lsq_tc_i32(&t, 1, 1);                           /* version */
    lsq_tc_list_begin(&t, 2, LSQ_TC_STRUCT, w->ncols + 1);
    lsq_tc_elem_struct_begin(&t);                   /* root */
    lsq_tc_bin(&t, 4, "schema", 6);
    lsq_tc_i32(&t, 5, (int32_t)w->ncols);
    lsq_tc_struct_end(&t);
    for (size_t i = 0; i < w->ncols; i++) {
        const struct lsq_col *c = &w->cols[i];
        lsq_tc_elem_struct_begin(&t);
        lsq_tc_i32(&t, 1, physical(c->c.type));
        lsq_tc_i32(&t, 3, c->c.required ? 0 : 1);
        lsq_tc_bin(&t, 4, c->c.name, strlen(c->c.name));
        put_logical(&t, c->c.type);
        lsq_tc_struct_end(&t);
    }
    lsq_tc_i64(&t, 3, (int64_t)w->total_rows);
    lsq_tc_list_begin(&t, 4, LSQ_TC_STRUCT, w->nrgs);
    for (size_t g = 0; g < w->nrgs; g++) {
        const struct lsq_rg_meta *rg = &w->rgs[g];
        lsq_tc_elem_struct_begin(&t);
        lsq_tc_list_begin(&t, 1, LSQ_TC_STRUCT, w->ncols);
        for (size_t i = 0; i < w->ncols; i++) {
            put_chunk_meta(&t, &w->cols[i], &rg->cols[i], w->o.codec);
        }
        lsq_tc_i64(&t, 2, rg->total_usize);
        lsq_tc_i64(&t, 3, rg->num_rows);
        lsq_tc_i64(&t, 5, rg->file_offset);
        lsq_tc_i64(&t, 6, rg->total_csize);
        lsq_tc_struct_end(&t);
    }
    lsq_tc_bin(&t, 6, w->created_by, strlen(w->created_by));
    lsq_tc_list_begin(&t, 7, LSQ_TC_STRUCT, w->ncols);
    for (size_t i = 0; i < w->ncols; i++) {
        lsq_tc_elem_struct_begin(&t);               /* ColumnOrder */
        lsq_tc_struct_begin(&t, 1);                 /* TYPE_ORDER */
        lsq_tc_struct_end(&t);
        lsq_tc_struct_end(&t);
    }
    lsq_tc_struct_end(&t);
    put_le(&f, f.len, 4);
    ls_buf_append(&f, "PAR1", 4);
    if (emit(w, f.p, f.len) != LS_OK) {
        goto out;
    }
    rc = LS_OK;
out:
    if (rc != LS_OK) {
        snprintf(err, errlen, "%s", w->err);
    }
    ls_buf_release(&f);
    return rc;
}

uint64_t lsq_rows(const struct lsq_writer *w)
{
    return w->total_rows + w->rows;
}

uint64_t lsq_row_groups(const struct lsq_writer *w)
{
    return w->nrgs;
}

void lsq_writer_free(struct lsq_writer *w)
{
    if (w == NULL) {
        return;
    }
    for (size_t i = 0; i < w->ncols; i++) {
        struct lsq_col *c = &w->cols[i];
        ls_free(c->c.name);
        ls_free(c->def);
        ls_free(c->iv);
        ls_free(c->dv);
        ls_free(c->off);
        ls_free(c->ids);
        ls_free(c->hslots);
        ls_buf_release(&c->data);
    }
    for (size_t g = 0; g < w->nrgs; g++) {
        for (size_t i = 0; i < w->ncols; i++) {
            ls_buf_release(&w->rgs[g].cols[i].min);
            ls_buf_release(&w->rgs[g].cols[i].max);
        }
        ls_free(w->rgs[g].cols);
    }
    ls_free(w->rgs);
    ls_free(w->cols);
    ls_free(w->created_by);
    ls_buf_release(&w->page);
    ls_buf_release(&w->comp);
    ls_buf_release(&w->hdr);
    ls_buf_release(&w->dictbuf);
    ls_free(w->idx);
    ls_free(w->levels);
    ls_free(w->slots);
    ls_free(w->dscratch);
    if (w->gz) {
        libdeflate_free_compressor(w->gz);
    }
    ls_zstd_frame_free(w->zs);
    ls_free(w);
}
