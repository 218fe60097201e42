/*
 * pq_schema.c - schemas for the Parquet formatter (see pq_schema.h).
 *
 * Avro (as columnify maps it): boolean, int, long, float, double, string,
 * enum, bytes, fixed, and long with logicalType timestamp-millis/-micros;
 * a field is OPTIONAL only as the union ["null", T] ("null" first), every
 * other field REQUIRED. BigQuery: {"name","type","mode"} with mode
 * REQUIRED / NULLABLE (default); BOOLEAN/BOOL, INTEGER/INT64, FLOAT/FLOAT64
 * (DOUBLE), STRING, BYTES, TIMESTAMP. Nested records, arrays, maps and the
 * rest are refused with the field's name: the writer is flat.
 */
#include "pq_schema.h"

#include <ctype.h>

static void add_col(struct pqs *s, const char *key, enum lsq_type t, bool required)
{
    struct pqs_col *c;

    s->cols = ls_realloc(s->cols, (s->n + 1) * sizeof(*s->cols));
    c = &s->cols[s->n++];
    memset(c, 0, sizeof(*c));
    c->key = ls_strdup(key);
    c->key_len = strlen(key);
    c->name = ls_strdup(key);
    for (char *p = c->name; *p; p++) {
        *p = (char)tolower((unsigned char)*p);
    }
    c->type = t;
    c->required = required;
}

static struct pqs_col *find_col(struct pqs *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->cols[i].key, key) == 0) {
            return &s->cols[i];
        }
    }
    return NULL;
}

/* fluentd `types` names plus Avro/SQL spellings. 0 if unknown. */
static enum lsq_type type_from_name(const char *t, bool micros)
{
    static const struct { const char *name; enum lsq_type t; } tab[] = {
        { "string", LSQ_STRING }, { "integer", LSQ_INT64 }, { "long", LSQ_INT64 },
        { "int64", LSQ_INT64 }, { "int", LSQ_INT32 }, { "int32", LSQ_INT32 },
        { "float", LSQ_DOUBLE }, { "double", LSQ_DOUBLE }, { "float64", LSQ_DOUBLE },
        { "bool", LSQ_BOOL }, { "boolean", LSQ_BOOL }, { "bytes", LSQ_BYTES },
        { "binary", LSQ_BYTES },
    };
    char low[32];
    size_t i;

    for (i = 0; t[i] && i + 1 < sizeof(low); i++) {
        low[i] = (char)tolower((unsigned char)t[i]);
    }
    low[i] = '\0';
    if (strcmp(low, "time") == 0 || strcmp(low, "timestamp") == 0) {
        return micros ? LSQ_TS_MICROS : LSQ_TS_MILLIS;
    }
    for (i = 0; i < LS_ARRAY_LEN(tab); i++) {
        if (strcmp(low, tab[i].name) == 0) {
            return tab[i].t;
        }
    }
    return 0;
}

/* An Avro type: a name, or {"type": name, "logicalType": ...}. 0 if unsupported. */
static enum lsq_type avro_type(const char *t)
{
    if (t[0] == '{') {
        struct ls_kvv h;
        enum lsq_type r = 0;
        if (ls_parse_hash(t, &h) != LS_OK) {
            return 0;
        }
        const char *base = ls_kvv_get(&h, "type"), *lt = ls_kvv_get(&h, "logicalType");
        if (base && lt && strcmp(lt, "timestamp-millis") == 0 && strcmp(base, "long") == 0) {
            r = LSQ_TS_MILLIS;
        } else if (base && lt && strcmp(lt, "timestamp-micros") == 0 && strcmp(base, "long") == 0) {
            r = LSQ_TS_MICROS;
        } else if (base && strcmp(base, "enum") == 0) {
            r = LSQ_STRING;
        } else if (base && strcmp(base, "fixed") == 0) {
            r = LSQ_BYTES;
        } else if (base && base[0] != '{' && base[0] != '[' && lt == NULL) {
            r = avro_type(base);
        }
        ls_kvv_release(&h);
        return r;
    }
    if (strcmp(t, "boolean") == 0) {
        return LSQ_BOOL;
    }
    if (strcmp(t, "int") == 0) {
        return LSQ_INT32;
    }
    if (strcmp(t, "long") == 0) {
        return LSQ_INT64;
    }
    if (strcmp(t, "float") == 0 || strcmp(t, "double") == 0) {
        return LSQ_DOUBLE;
    }
    if (strcmp(t, "string") == 0) {
        return LSQ_STRING;
    }
    if (strcmp(t, "bytes") == 0) {
        return LSQ_BYTES;
    }
    return 0;
}

int pqs_load_avro(struct pqs *s, const char *text, bool micros, char *err, size_t errlen)
{
    struct ls_kvv top;
    struct ls_strv fields = { NULL, 0 };
    const char *f, *type;
    int rc = LS_ERROR;

    LS_UNUSED(micros);
    while (isspace((unsigned char)*text)) {
        text++;
    }
    if (*text != '{' || ls_parse_hash(text, &top) != LS_OK) {
        snprintf(err, errlen, "not an Avro schema (a JSON object)");
        return LS_ERROR;
    }
    type = ls_kvv_get(&top, "type");
    f = ls_kvv_get(&top, "fields");
    if (type == NULL || strcmp(type, "record") != 0 || f == NULL || f[0] != '[') {
        snprintf(err, errlen, "an Avro schema must be {\"type\": \"record\", \"fields\": [...]}");
        goto out;
    }
    if (ls_parse_array(f, &fields) != LS_OK) {
        snprintf(err, errlen, "Avro 'fields' is not a JSON array");
        goto out;
    }
    for (size_t i = 0; i < fields.n; i++) {
        struct ls_kvv fh;
        const char *name, *ft;
        enum lsq_type t = 0;
        bool required = true;

        if (fields.v[i][0] != '{' || ls_parse_hash(fields.v[i], &fh) != LS_OK) {
            snprintf(err, errlen, "Avro field %zu is not an object", i + 1);
            goto out;
        }
        name = ls_kvv_get(&fh, "name");
        ft = ls_kvv_get(&fh, "type");
        if (name == NULL || name[0] == '\0' || ft == NULL) {
            snprintf(err, errlen, "Avro field %zu needs a name and a type", i + 1);
            ls_kvv_release(&fh);
            goto out;
        }
        if (ft[0] == '[') {
            struct ls_strv u = { NULL, 0 };
            /* nullable only as ["null", T], as columnify accepts it */
            if (ls_parse_array(ft, &u) == LS_OK && u.n == 2 && strcmp(u.v[0], "null") == 0) {
                t = avro_type(u.v[1]);
                required = false;
            }
            ls_strv_release(&u);
        } else {
            t = avro_type(ft);
        }
        if (t == 0) {
            snprintf(err, errlen, "Avro field '%s': type %s is not supported (boolean, int, long, "
                     "float, double, string, enum, bytes, fixed, timestamp-millis/-micros, or "
                     "[\"null\", one of them])", name, ft);
            ls_kvv_release(&fh);
            goto out;
        }
        add_col(s, name, t, required);
        ls_kvv_release(&fh);
    }
    rc = LS_OK;
out:
    ls_strv_release(&fields);
    ls_kvv_release(&top);
    return rc;
}

int pqs_load_bigquery(struct pqs *s, const char *text, bool micros, char *err, size_t errlen)
{
    struct ls_strv fields = { NULL, 0 };
    int rc = LS_ERROR;

    while (isspace((unsigned char)*text)) {
        text++;
    }
    if (*text != '[' || ls_parse_array(text, &fields) != LS_OK) {
        snprintf(err, errlen, "not a BigQuery schema (a JSON array of fields)");
        return LS_ERROR;
    }
    for (size_t i = 0; i < fields.n; i++) {
        struct ls_kvv fh;
        const char *name, *ft, *mode;
        enum lsq_type t = 0;

        if (fields.v[i][0] != '{' || ls_parse_hash(fields.v[i], &fh) != LS_OK) {
            snprintf(err, errlen, "BigQuery field %zu is not an object", i + 1);
            goto out;
        }
        name = ls_kvv_get(&fh, "name");
        ft = ls_kvv_get(&fh, "type");
        mode = ls_kvv_get(&fh, "mode");
        if (name == NULL || name[0] == '\0' || ft == NULL) {
            snprintf(err, errlen, "BigQuery field %zu needs a name and a type", i + 1);
            ls_kvv_release(&fh);
            goto out;
        }
        if (strcasecmp(ft, "INTEGER") == 0 || strcasecmp(ft, "INT64") == 0) {
            t = LSQ_INT64;
        } else if (strcasecmp(ft, "FLOAT") == 0 || strcasecmp(ft, "FLOAT64") == 0) {
            t = LSQ_DOUBLE;
        } else if (strcasecmp(ft, "BOOLEAN") == 0 || strcasecmp(ft, "BOOL") == 0) {
            t = LSQ_BOOL;
        } else if (strcasecmp(ft, "STRING") == 0) {
            t = LSQ_STRING;
        } else if (strcasecmp(ft, "BYTES") == 0) {
            t = LSQ_BYTES;
        } else if (strcasecmp(ft, "TIMESTAMP") == 0) {
            t = micros ? LSQ_TS_MICROS : LSQ_TS_MILLIS;
        }
        if (t == 0 || (mode && strcasecmp(mode, "REPEATED") == 0)) {
            snprintf(err, errlen, "BigQuery field '%s': %s%s is not supported (INTEGER, FLOAT, "
                     "BOOLEAN, STRING, BYTES, TIMESTAMP; REQUIRED or NULLABLE)", name,
                     mode && strcasecmp(mode, "REPEATED") == 0 ? "REPEATED " : "", ft);
            ls_kvv_release(&fh);
            goto out;
        }
        add_col(s, name, t, mode && strcasecmp(mode, "REQUIRED") == 0);
        ls_kvv_release(&fh);
    }
    rc = LS_OK;
out:
    ls_strv_release(&fields);
    return rc;
}

int pqs_load_inline(struct pqs *s, const struct ls_kvv *h, bool micros, char *err, size_t errlen)
{
    for (size_t i = 0; i < h->n; i++) {
        enum lsq_type t = type_from_name(h->v[i].value, micros);
        if (t == 0) {
            snprintf(err, errlen, "column '%s': unknown type '%s' (string, integer, int, float, "
                     "bool, bytes, timestamp)", h->v[i].key, h->v[i].value);
            return LS_ERROR;
        }
        add_col(s, h->v[i].key, t, false);
    }
    return LS_OK;
}

struct parser_fields {
    const char *parser;
    const char *fields;     /* name:type, as the parser emits them (numbers from strings too) */
};

/*
 * What each parser emits. nginx's code and size are strings in fluentd (and
 * here) unless `types` says otherwise; they are integer columns because the
 * formatter converts a string that is exactly a number, and '-' becomes null.
 */
static const struct parser_fields parser_tab[] = {
    { "nginx", "remote:string,host:string,user:string,method:string,path:string,code:integer,"
               "size:integer,referer:string,agent:string,http_x_forwarded_for:string" },
    { "apache2", "host:string,user:string,method:string,path:string,code:integer,size:integer,"
                 "referer:string,agent:string" },
    { "syslog", "pri:integer,host:string,ident:string,pid:string,msgid:string,extradata:string,"
                "message:string" },
    { "mysql_slow", "user:string,host:string,host_ip:string,thread_id:integer,query_time:float,"
                    "lock_time:float,rows_sent:integer,rows_examined:integer,db:string,sql:string" },
};

int pqs_load_parser(struct pqs *s, const char *parser, const struct ls_strv *keys, char *err,
                    size_t errlen)
{
    if (strcmp(parser, "csv") == 0 || strcmp(parser, "ltsv") == 0 || strcmp(parser, "tsv") == 0) {
        if (keys == NULL || keys->n == 0) {
            snprintf(err, errlen, "schema_parser %s needs keys (the parser's field names)", parser);
            return LS_ERROR;
        }
        for (size_t i = 0; i < keys->n; i++) {
            add_col(s, keys->v[i], LSQ_STRING, false);
        }
        return LS_OK;
    }
    for (size_t i = 0; i < LS_ARRAY_LEN(parser_tab); i++) {
        if (strcmp(parser, parser_tab[i].parser) == 0) {
            struct ls_kvv h;
            int rc;
            if (ls_parse_hash(parser_tab[i].fields, &h) != LS_OK) {
                snprintf(err, errlen, "internal: bad field table for %s", parser);
                return LS_ERROR;
            }
            rc = pqs_load_inline(s, &h, false, err, errlen);
            ls_kvv_release(&h);
            return rc;
        }
    }
    snprintf(err, errlen, "schema_parser '%s' is not known (nginx, apache2, syslog, mysql_slow, "
             "csv, tsv, ltsv)", parser);
    return LS_ERROR;
}

int pqs_apply_types(struct pqs *s, const struct ls_kvv *types, bool micros, char *err,
                    size_t errlen)
{
    for (size_t i = 0; i < types->n; i++) {
        const char *tn = types->v[i].value;
        char base[32];
        size_t n = strcspn(tn, ":");   /* time:%d/%b... and array:, keep the type name */
        enum lsq_type t;
        struct pqs_col *c;

        snprintf(base, sizeof(base), "%.*s", (int)(n < 31 ? n : 31), tn);
        t = type_from_name(base, micros);
        if (t == 0) {
            snprintf(err, errlen, "types '%s': unknown type '%s'", types->v[i].key, tn);
            return LS_ERROR;
        }
        c = find_col(s, types->v[i].key);
        if (c) {
            c->type = t;
        } else {
            add_col(s, types->v[i].key, t, false);
        }
    }
    return LS_OK;
}

int pqs_finish(struct pqs *s, const char *time_col, bool micros, char *err, size_t errlen)
{
    struct pqs_col *c = find_col(s, time_col);

    if (c) {
        if (c->type == LSQ_INT64) {
            c->type = micros ? LSQ_TS_MICROS : LSQ_TS_MILLIS;
        }
        if (c->type != LSQ_TS_MILLIS && c->type != LSQ_TS_MICROS) {
            snprintf(err, errlen, "column '%s' holds the event time: its type must be a timestamp "
                     "(or long)", time_col);
            return LS_ERROR;
        }
        c->is_time = true;
        c->required = true;
    } else {
        add_col(s, time_col, micros ? LSQ_TS_MICROS : LSQ_TS_MILLIS, true);
        /* first, where readers expect it */
        struct pqs_col t = s->cols[s->n - 1];
        memmove(s->cols + 1, s->cols, (s->n - 1) * sizeof(*s->cols));
        s->cols[0] = t;
        s->cols[0].is_time = true;
    }
    for (size_t i = 0; i < s->n; i++) {
        for (size_t k = 0; k < i; k++) {
            if (strcmp(s->cols[i].name, s->cols[k].name) == 0) {
                snprintf(err, errlen, "columns '%s' and '%s' have the same lowercase name",
                         s->cols[k].key, s->cols[i].key);
                return LS_ERROR;
            }
        }
    }
    return LS_OK;
}

void pqs_release(struct pqs *s)
{
    for (size_t i = 0; i < s->n; i++) {
        ls_free(s->cols[i].key);
        ls_free(s->cols[i].name);
    }
    ls_free(s->cols);
    s->cols = NULL;
    s->n = 0;
}
