/*
 * pq_schema.h - the Parquet formatter's schema: flat columns read from an
 * Avro record schema (.avsc, fluent-plugin-s3/columnify's default), a
 * BigQuery JSON schema, an inline `name:type,...` list, or the fields a
 * parser is known to produce; normalised to {name, type, required}.
 */
#ifndef LS_PQ_SCHEMA_H
#define LS_PQ_SCHEMA_H

#include "common.h"
#include "param.h"
#include "parquet.h"

struct pqs_col {
    char *key;          /* record field name */
    size_t key_len;
    char *name;         /* column name: the key lowercased (Trino lowercases names) */
    enum lsq_type type;
    bool required;
    bool is_time;       /* the event time */
};

struct pqs {
    struct pqs_col *cols;
    size_t n;
};

/* Each loader appends columns; LS_ERROR with a message (without file:line) in err. */
int pqs_load_avro(struct pqs *s, const char *text, bool micros, char *err, size_t errlen);
int pqs_load_bigquery(struct pqs *s, const char *text, bool micros, char *err, size_t errlen);
/* "name:type" pairs (types as the parser's `types`: string, integer, float, bool, ...). */
int pqs_load_inline(struct pqs *s, const struct ls_kvv *h, bool micros, char *err, size_t errlen);
/* The fields parser (nginx, apache2, syslog, mysql_slow, csv, ltsv) produces; keys for csv/ltsv. */
int pqs_load_parser(struct pqs *s, const char *parser, const struct ls_strv *keys, char *err,
                    size_t errlen);
/* Override column types as the parser's `types` would (adds missing columns). */
int pqs_apply_types(struct pqs *s, const struct ls_kvv *types, bool micros, char *err,
                    size_t errlen);
/* Make time_col the event time column (an existing timestamp/long column, or a new
 * required first column), then check names are unique once lowercased. */
int pqs_finish(struct pqs *s, const char *time_col, bool micros, char *err, size_t errlen);
void pqs_release(struct pqs *s);

#endif
