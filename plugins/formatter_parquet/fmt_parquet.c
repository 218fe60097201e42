/*
 * fmt_parquet.c - the `parquet` formatter: each chunk becomes one Parquet
 * file (agent/parquet.c writes it), for out_file and out_s3's store_as parquet.
 *
 * Parquet is not a stream of records that can be appended to a chunk, so
 * the work is split in two:
 *  - .format (the input's thread, per record) checks the record against
 *    the schema and converts it: a value of the wrong type or a missing
 *    required field is refused here (LS_ERROR: the core counts it and routes
 *    it to @ERROR), so a bad record never reaches, or breaks, a chunk. What
 *    is appended to the chunk is the row already in column order and type,
 *    in a compact private layout (below), so the file buffer keeps it
 *    across restarts like any other payload.
 *  - .finish (a worker, when the chunk is written) reads those rows back
 *    and feeds the writer, which flushes a row group whenever
 *    row_group_size bytes of values are buffered: memory stays bounded by
 *    row_group_size whatever the chunk size.
 *
 * Row layout: 'Q', u32 LE length of the rest, u16 LE column count, then per
 * column a tag byte: 0 null, 1 integer (zigzag varint), 2 double (8 bytes
 * LE), 3 bytes (varint length + bytes), 4 false, 5 true. Strings are
 * already valid UTF-8 (invalid bytes became U+FFFD, as in the JSON
 * formatter). A chunk written under another schema (the configuration
 * changed while it was buffered) is refused as a whole with an error
 * saying so; it is kept (retries, then <secondary> or backup/), not lost.
 */
#include "plugin.h"
#include "json.h"
#include "log.h"
#include "parquet.h"
#include "pq_schema.h"

#include <math.h>


enum { PQ_SNAPPY, PQ_ZSTD, PQ_GZIP, PQ_NONE };
enum { PQ_MILLIS, PQ_MICROS };
enum { PQ_AVRO, PQ_BIGQUERY };

struct pq_ctx {
    char *schema_file;
    int schema_type;
    struct ls_kvv schema;
    char *schema_parser;
    struct ls_strv keys;
    struct ls_kvv types;
    char *time_column;
    int timestamp_unit;
    int compression;
    int64_t compression_level;
    int64_t row_group_size;
    int64_t page_size;
    char *record_type;
    /* derived */
    struct pqs s;
    struct lsq_column *cols;
    struct ls_buf row;          /* the row being built (loop thread only) */
    uint64_t rejected;
    double last_warn;
};

#define C(f) offsetof(struct pq_ctx, f)

static const struct ls_param pq_params[] = {
    { "schema_file", LS_P_STR, NULL, LS_PF_NULLABLE, C(schema_file),
      "Avro (.avsc) or BigQuery JSON schema file (see schema_type)", NULL, NULL, 0, 0 },
    { "schema_type", LS_P_ENUM, "avro", 0, C(schema_type), "format of schema_file", NULL,
      "avro|bigquery", 0, 0 },
    { "schema", LS_P_HASH, NULL, 0, C(schema),
      "inline schema: name:type,... (string, integer, int, float, bool, bytes, timestamp)", NULL,
      NULL, 0, 0 },
    { "schema_parser", LS_P_STR, NULL, LS_PF_NULLABLE, C(schema_parser),
      "columns from a parser's fields: nginx, apache2, syslog, mysql_slow, csv, tsv, ltsv (with keys)",
      NULL, NULL, 0, 0 },
    { "keys", LS_P_ARRAY, NULL, 0, C(keys), "with schema_parser csv/tsv/ltsv: the field names",
      NULL, NULL, 0, 0 },
    { "types", LS_P_HASH, NULL, 0, C(types),
      "column types as the parser's types (code:integer,size:integer); adds missing columns",
      NULL, NULL, 0, 0 },
    { "time_column", LS_P_STR, "time", 0, C(time_column),
      "the event time's column (TIMESTAMP, UTC); a schema column of that name takes it", NULL,
      NULL, 0, 0 },
    { "timestamp_unit", LS_P_ENUM, "millis", 0, C(timestamp_unit),
      "timestamp precision: millis (safest for Athena) or micros", NULL, "millis|micros", 0, 0 },
    { "compression", LS_P_ENUM, "snappy", 0, C(compression), "page compression",
      "parquet_compression_codec", "snappy|zstd|gzip|none", 0, 0 },
    { "compression_level", LS_P_INT, "0", 0, C(compression_level),
      "zstd 1-19 / gzip 1-12; 0 = the default (zstd 8 with matches of 6+ bytes, gzip 6)", "level", NULL, 0, 19 },
    /* 12m: on the bench's nginx log 64m cost 1.8x the CPU (cache misses, page faults of
     * fresh buffers) and 4x the memory for 2% smaller files; 12m instead of 8m stored 3%
     * fewer bytes (fewer dictionaries per file) at 29 MB peak RSS instead of 24 */
    { "row_group_size", LS_P_SIZE, "12m", 0, C(row_group_size),
      "buffered value bytes that end a row group (bounds memory per chunk written)",
      "parquet_row_group_size", NULL, 4096, 1099511627776.0 },
    { "page_size", LS_P_SIZE, "1m", 0, C(page_size), "value bytes per data page (about)",
      "parquet_page_size", NULL, 512, 268435456 },
    { "record_type", LS_P_STR, NULL, LS_PF_NULLABLE, C(record_type),
      "accepted for fluent-plugin-s3 compatibility (records are always typed by the schema)",
      NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static enum lsq_codec pq_codec(const struct pq_ctx *c)
{
    static const enum lsq_codec codecs[] = { LSQ_SNAPPY, LSQ_ZSTD, LSQ_GZIP, LSQ_UNCOMPRESSED };

    return codecs[c->compression];
}

static int param_err(struct ls_conf_section *sec, const char *key, char *err, size_t errlen,
                     const char *msg)
{
    struct ls_conf_param *p = sec ? ls_conf_get_param(sec, key) : NULL;

    if (p) {
        snprintf(err, errlen, "%s:%d: %s", p->file, p->line, msg);
    } else if (sec) {
        snprintf(err, errlen, "%s:%d: %s", sec->file, sec->line, msg);
    } else {
        snprintf(err, errlen, "%s", msg);
    }
    return LS_ERROR;
}

static int pq_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct pq_ctx *c = ins->ctx;
    bool micros = c->timestamp_unit == PQ_MICROS;
    int sources = (c->schema_file != NULL) + (c->schema.n > 0) + (c->schema_parser != NULL);
    char e[400] = "";
    const char *key = "schema_file";
    int rc = LS_OK;

    if (sources != 1 && !(sources == 0 && c->types.n > 0)) {
        return param_err(sec, sources ? "schema" : "@type", err, errlen,
                         sources ? "parquet: give only one of schema_file, schema and schema_parser"
                                 : "parquet: a schema is needed: schema_file (Avro or BigQuery "
                                   "JSON), schema name:type,... or schema_parser nginx|...");
    }
    if (c->schema_file) {
        char *text = NULL;
        size_t len;
        if (ls_read_file(c->schema_file, 10u << 20, &text, &len) != LS_OK) {
            snprintf(e, sizeof(e), "cannot read schema_file '%s' (%d: %s)", c->schema_file, errno,
                     strerror(errno));
            rc = LS_ERROR;
        } else {
            char m[300] = "";
            rc = c->schema_type == PQ_BIGQUERY ? pqs_load_bigquery(&c->s, text, micros, m, sizeof(m))
                                               : pqs_load_avro(&c->s, text, micros, m, sizeof(m));
            if (rc != LS_OK) {
                snprintf(e, sizeof(e), "schema_file '%s': %s", c->schema_file, m);
            }
        }
        ls_free(text);
    } else if (c->schema.n > 0) {
        key = "schema";
        rc = pqs_load_inline(&c->s, &c->schema, micros, e, sizeof(e));
    } else if (c->schema_parser) {
        key = "schema_parser";
        rc = pqs_load_parser(&c->s, c->schema_parser, &c->keys, e, sizeof(e));
    }
    if (rc == LS_OK && c->types.n > 0) {
        key = "types";
        rc = pqs_apply_types(&c->s, &c->types, micros, e, sizeof(e));
    }
    if (rc == LS_OK) {
        key = "time_column";
        rc = pqs_finish(&c->s, c->time_column, micros, e, sizeof(e));
    }
    if (rc != LS_OK) {
        char m[500];
        snprintf(m, sizeof(m), "parquet: %s", e);
        return param_err(sec, key, err, errlen, m);
    }
    if (c->compression_level > 12 && c->compression == PQ_GZIP) {
        return param_err(sec, "compression_level", err, errlen,
                         "parquet: gzip compression_level is 1..12");
    }
    /* libsnappy and libzstd are loaded when a configuration first needs them: missing, that
     * is a configuration error naming the package, not a failing write later */
    if (lsq_codec_load(pq_codec(c), e, sizeof(e)) != LS_OK) {
        char m[500];
        snprintf(m, sizeof(m), "parquet: compression: %s", e);
        return param_err(sec, "compression", err, errlen, m);
    }
    if (c->s.n > 65535) {
        return param_err(sec, key, err, errlen, "parquet: more than 65535 columns");
    }
    c->cols = ls_calloc(c->s.n, sizeof(*c->cols));
    for (size_t i = 0; i < c->s.n; i++) {
        c->cols[i].name = c->s.cols[i].name;
        c->cols[i].type = c->s.cols[i].type;
        c->cols[i].required = c->s.cols[i].required;
    }
    return LS_OK;
}

static void pq_destroy(struct ls_instance *ins)
{
    struct pq_ctx *c = ins->ctx;

    if (c->rejected) {
        ls_plg_info(ins, "%llu records did not fit the Parquet schema (sent to @ERROR)",
                    (unsigned long long)c->rejected);
    }
    ls_free(c->cols);
    ls_buf_release(&c->row);
    pqs_release(&c->s);
}

/* ---- rows ---- */

static void put_int(struct ls_buf *b, int64_t v)
{
    ls_buf_putc(b, 1);
    lsq_tc_varint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

/* A string value as a C string in tmp, if it may be a number (no surrounding blanks). */
static bool num_text(const struct ls_value *v, char *tmp, size_t cap)
{
    if (v->u.s.len == 0 || v->u.s.len >= cap || v->u.s.p[0] == ' '
        || v->u.s.p[v->u.s.len - 1] == ' ') {
        return false;
    }
    memcpy(tmp, v->u.s.p, v->u.s.len);
    tmp[v->u.s.len] = '\0';
    return true;
}

/* A string that is exactly a number. */
static bool str_int(const struct ls_value *v, int64_t *out)
{
    char tmp[32];

    return num_text(v, tmp, sizeof(tmp)) && ls_parse_int(tmp, out) == LS_OK;
}

static bool str_float(const struct ls_value *v, double *out)
{
    char tmp[64];

    return num_text(v, tmp, sizeof(tmp)) && ls_parse_float(tmp, out) == LS_OK;
}

static bool is_dash(const struct ls_value *v)
{
    return v->type == LS_V_STR && (v->u.s.len == 0 || (v->u.s.len == 1 && v->u.s.p[0] == '-'));
}

static const char *vtype_name(const struct ls_value *v)
{
    static const char *names[] = { "null", "bool", "integer", "float", "string", "object/array" };
    return (unsigned)v->type < LS_ARRAY_LEN(names) ? names[v->type] : "?";
}

/* One value into b. NULL, or why it does not fit. */
static const char *put_value(struct ls_buf *b, const struct pqs_col *col, const struct ls_value *v,
                             struct ls_arena *scratch)
{
    int64_t i;
    double d;

    if (v == NULL || v->type == LS_V_NULL) {
        if (col->required) {
            return "a required field is missing";
        }
        ls_buf_putc(b, 0);
        return NULL;
    }
    switch (col->type) {
    case LSQ_INT32:
    case LSQ_INT64:
    case LSQ_TS_MILLIS:
    case LSQ_TS_MICROS:
        if (v->type == LS_V_INT) {
            i = v->u.i;
        } else if (v->type == LS_V_FLOAT && col->type != LSQ_INT32 && col->type != LSQ_INT64
                   && v->u.f >= -62135596800.0 && v->u.f <= 253402300799.0) {
            /* timestamps: seconds with a fraction */
            if (col->type == LSQ_TS_MILLIS) {
                put_int(b, (int64_t)llround(v->u.f * 1e3));
            } else {
                put_int(b, (int64_t)llround(v->u.f * 1e6));
            }
            return NULL;
        } else if (v->type == LS_V_STR && str_int(v, &i)) {
            /* nginx's code and size are strings unless the parser's types say otherwise */
        } else if (is_dash(v) && !col->required) {
            ls_buf_putc(b, 0);      /* '-' is nginx/apache's "none" */
            return NULL;
        } else {
            return "expected an integer";
        }
        if (col->type == LSQ_INT32 && (i < INT32_MIN || i > INT32_MAX)) {
            return "integer out of the int32 range";
        }
        if (col->type == LSQ_TS_MILLIS || col->type == LSQ_TS_MICROS) {
            /* integers in timestamp columns are epoch seconds; years 1..9999 as readers
             * (DuckDB converts to microseconds and fails beyond) */
            if (i < -62135596800 || i > 253402300799) {
                return "timestamp out of range (years 1 to 9999)";
            }
            i *= col->type == LSQ_TS_MILLIS ? 1000 : 1000000;
        }
        put_int(b, i);
        return NULL;
    case LSQ_DOUBLE:
        if (v->type == LS_V_FLOAT) {
            d = v->u.f;
        } else if (v->type == LS_V_INT) {
            d = (double)v->u.i;
        } else if (v->type == LS_V_STR && str_float(v, &d)) {
            /* fine */
        } else if (is_dash(v) && !col->required) {
            ls_buf_putc(b, 0);
            return NULL;
        } else {
            return "expected a number";
        }
        {
            uint64_t u;
            unsigned char t[9];
            memcpy(&u, &d, 8);
            t[0] = 2;
            for (int k = 0; k < 8; k++) {
                t[1 + k] = (unsigned char)(u >> (8 * k));
            }
            ls_buf_append(b, t, 9);
        }
        return NULL;
    case LSQ_BOOL:
        if (v->type == LS_V_BOOL) {
            ls_buf_putc(b, v->u.b ? 5 : 4);
            return NULL;
        }
        if (v->type == LS_V_STR && v->u.s.len == 4 && memcmp(v->u.s.p, "true", 4) == 0) {
            ls_buf_putc(b, 5);
            return NULL;
        }
        if (v->type == LS_V_STR && v->u.s.len == 5 && memcmp(v->u.s.p, "false", 5) == 0) {
            ls_buf_putc(b, 4);
            return NULL;
        }
        return "expected true or false";
    case LSQ_STRING:
    case LSQ_BYTES: {
        const char *p;
        size_t len;
        if (v->type == LS_V_STR || v->type == LS_V_JSON) {
            p = v->u.s.p;
            len = v->u.s.len;       /* nested values as their JSON text */
        } else {
            p = ls_value_to_text(scratch, v, &len);
        }
        ls_buf_putc(b, 3);
        if (col->type == LSQ_STRING && ls_utf8_valid_prefix(p, len) != len) {
            struct ls_buf fixed;
            ls_buf_init(&fixed, 0);
            ls_utf8_scrub(&fixed, p, len);
            lsq_tc_varint(b, fixed.len);
            ls_buf_append(b, fixed.p, fixed.len);
            ls_buf_release(&fixed);
        } else {
            lsq_tc_varint(b, len);
            ls_buf_append(b, p, len);
        }
        return NULL;
    }
    }
    return "unsupported column type";
}

static int pq_format(struct ls_instance *ins, const struct ls_record *rec, struct ls_buf *out)
{
    struct pq_ctx *c = ins->ctx;
    struct ls_buf *b = &c->row;
    const char *why = NULL;
    const struct pqs_col *bad = NULL;
    struct ls_value bad_v = ls_vnull();

    ls_buf_reset(b);
    ls_buf_append(b, "Q\0\0\0\0", 5);
    ls_buf_putc(b, (char)(c->s.n & 0xff));
    ls_buf_putc(b, (char)(c->s.n >> 8));
    for (size_t i = 0; i < c->s.n && why == NULL; i++) {
        const struct pqs_col *col = &c->s.cols[i];
        if (col->is_time) {
            int64_t t = col->type == LSQ_TS_MILLIS
                            ? rec->time.sec * 1000 + rec->time.nsec / 1000000
                            : rec->time.sec * 1000000 + rec->time.nsec / 1000;
            put_int(b, t);
            continue;
        }
        const struct ls_field *f = ls_record_get(rec, col->key, col->key_len);
        why = put_value(b, col, f ? &f->v : NULL, rec->arena);
        if (why) {
            bad = col;
            bad_v = f ? f->v : ls_vnull();
        }
    }
    if (why == NULL && b->len - 5 > UINT32_MAX) {
        why = "the row is over 4 GiB";
    }
    if (why) {
        double now = ls_mono_now();
        c->rejected++;
        ins->metrics.errors++;
        /* one line a second at most: a flood of bad records must not flood the log */
        if (now - c->last_warn >= 1.0) {
            c->last_warn = now;
            ls_plg_warn(ins, "record does not fit the Parquet schema: column '%s': %s (got %s); "
                        "%llu so far, sent to @ERROR", bad ? bad->key : "?", why,
                        vtype_name(&bad_v), (unsigned long long)c->rejected);
        }
        return LS_ERROR;
    }
    {
        uint32_t n = (uint32_t)(b->len - 5);
        for (int k = 0; k < 4; k++) {
            b->p[1 + k] = (char)(n >> (8 * k));
        }
    }
    /* LS_AGAIN like the other formatters when the chunk's frame is full */
    return ls_buf_append(out, b->p, b->len) == LS_OK ? LS_OK : LS_AGAIN;
}

/* ---- the file ---- */

static int sink_fd(void *arg, const void *p, size_t n)
{
    return ls_write_all(*(int *)arg, p, n);
}

static bool get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    uint64_t r = 0;
    int shift = 0;

    while (*p < end && shift < 64) {
        unsigned char x = *(*p)++;
        r |= (uint64_t)(x & 0x7f) << shift;
        if (!(x & 0x80)) {
            *v = r;
            return true;
        }
        shift += 7;
    }
    return false;
}

/* Decode one row body into vals. False if it does not match the schema. */
static bool decode_row(const struct pq_ctx *c, const unsigned char *p, const unsigned char *end,
                       struct lsq_value *vals)
{
    size_t n;

    if (end - p < 2) {
        return false;
    }
    n = (size_t)p[0] | (size_t)p[1] << 8;
    p += 2;
    if (n != c->s.n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        enum lsq_type t = c->s.cols[i].type;
        struct lsq_value *v = &vals[i];
        uint64_t u;
        if (p >= end) {
            return false;
        }
        memset(v, 0, sizeof(*v));
        switch (*p++) {
        case 0:
            v->null = true;
            break;
        case 1:
            if (t == LSQ_DOUBLE || t == LSQ_STRING || t == LSQ_BYTES || t == LSQ_BOOL
                || !get_varint(&p, end, &u)) {
                return false;
            }
            v->i = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
            break;
        case 2:
            if (t != LSQ_DOUBLE || end - p < 8) {
                return false;
            }
            u = 0;
            for (int k = 0; k < 8; k++) {
                u |= (uint64_t)p[k] << (8 * k);
            }
            memcpy(&v->d, &u, 8);
            p += 8;
            break;
        case 3:
            if ((t != LSQ_STRING && t != LSQ_BYTES) || !get_varint(&p, end, &u)
                || u > (uint64_t)(end - p)) {
                return false;
            }
            v->s = (const char *)p;
            v->len = (size_t)u;
            p += u;
            break;
        case 4:
        case 5:
            if (t != LSQ_BOOL) {
                return false;
            }
            v->i = p[-1] == 5;
            break;
        default:
            return false;
        }
    }
    return p == end;
}

#define PQ_READ (1u << 20)

static int pq_finish(struct ls_instance *ins, long (*read_cb)(void *arg, void *buf, size_t n),
                     void *arg, int fd, char *err, size_t errlen)
{
    struct pq_ctx *c = ins->ctx;
    struct lsq_opts o = {
        .codec = pq_codec(c),
        .level = (int)c->compression_level,
        .row_group_size = (size_t)c->row_group_size,
        .page_size = (size_t)c->page_size,
        .created_by = "logship version " LS_VERSION " (build " LS_VERSION ")",
    };
    struct lsq_value *vals = ls_calloc(c->s.n, sizeof(*vals));
    struct lsq_writer *w = lsq_writer_new(c->cols, c->s.n, &o, sink_fd, &fd, err, errlen);
    struct ls_buf in;
    int rc = LS_ERROR;
    uint64_t row = 0;

    ls_buf_init(&in, 0);
    if (w == NULL) {
        goto out;
    }
    for (;;) {
        size_t at = 0;
        long n;
        ls_buf_reserve(&in, PQ_READ);
        n = read_cb(arg, in.p + in.len, PQ_READ);
        if (n < 0) {
            snprintf(err, errlen, "reading the chunk failed (%d: %s)", errno, strerror(errno));
            goto out;
        }
        in.len += (size_t)n;
        while (in.len - at >= 5) {
            const unsigned char *p = (const unsigned char *)in.p + at;
            uint32_t len = p[1] | (uint32_t)p[2] << 8 | (uint32_t)p[3] << 16 | (uint32_t)p[4] << 24;
            int arc;
            if (p[0] != 'Q') {
                snprintf(err, errlen, "the chunk's payload is not Parquet rows (at row %llu)",
                         (unsigned long long)row);
                goto out;
            }
            if (in.len - at - 5 < len) {
                break;
            }
            if (!decode_row(c, p + 5, p + 5 + len, vals)) {
                snprintf(err, errlen, "row %llu of the chunk does not match the Parquet schema "
                         "(was the schema changed while it was buffered?)",
                         (unsigned long long)row);
                goto out;
            }
            arc = lsq_add_row(w, vals);
            if (arc == LS_ERROR) {
                break;          /* the sink failed: lsq_finish reports it */
            }
            if (arc != LS_OK) {
                snprintf(err, errlen, "row %llu of the chunk has a null in a required column",
                         (unsigned long long)row);
                goto out;
            }
            row++;
            at += 5 + len;
        }
        ls_buf_consume(&in, at);
        if (n == 0) {
            if (in.len != 0) {
                snprintf(err, errlen, "the chunk ends inside a Parquet row");
                goto out;
            }
            break;
        }
    }
    rc = lsq_finish(w, err, errlen);
out:
    lsq_writer_free(w);
    ls_buf_release(&in);
    ls_free(vals);
    return rc;
}

const struct ls_plugin ls_plugin_formatter_parquet = {
    .name = "parquet",
    .kind = LS_PLUGIN_FORMATTER,
    .description = "one Parquet file per chunk, typed by a schema (Avro, BigQuery, inline, parser)",
    .params = pq_params,
    .ctx_size = sizeof(struct pq_ctx),
    .init = pq_init,
    .destroy = pq_destroy,
    .format = pq_format,
    .finish = pq_finish,
    .file_ext = "parquet",
};
