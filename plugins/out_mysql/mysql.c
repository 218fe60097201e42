/*
 * mysql.c - fluent-plugin-mysql's outputs: mysql_bulk (one multi-row INSERT per chunk) and
 * the older, deprecated mysql (a statement per record), over MariaDB Connector/C.
 *
 * As lib/fluent/plugin/out_mysql_bulk.rb: column_names (required) and key_names (default:
 * the same) map record fields to columns; "${time}" is the event time as "%Y-%m-%d %H:%M:%S"
 * (local time); a char/varchar(N) column's value is cut to N characters (SHOW COLUMNS before
 * each write); json_key_names are written as JSON; unixtimestamp_key_names' numbers become
 * "%Y-%m-%d %H:%M:%S"; on_duplicate_key_update with on_duplicate_update_keys (and
 * on_duplicate_update_custom_values, "${...}" written as it is); table and database take the
 * chunk's placeholders with '.' as '_'; transaction_isolation_level. Values are written as
 * mysql2-cs-bind's pseudo_bind writes them: nil NULL, true TRUE, false FALSE, anything else
 * its Ruby to_s quoted with Mysql2::Client.escape's escapes (an array spliced as several
 * values).
 *
 * As lib/fluent/plugin/out_mysql.rb: `sql` with a ? per key_names value (or `table` and
 * `columns`), format raw (the key_names values) or json (the record as JSON, one value).
 * Where that plugin runs one autocommitted statement per record, so a failure half-way
 * through a chunk writes its first records again on the retry, logship runs the chunk's
 * statements in one transaction: a failed chunk leaves nothing behind.
 *
 * A write connects, writes and disconnects, on a worker thread; any MySQL error fails the
 * write and the buffer retries it, as the plugins' raised errors do. A crash after the
 * commit and before the chunk is gone writes it again (unique keys and
 * on_duplicate_key_update make that harmless), as with fluentd.
 */
#include "plugin.h"
#include "log.h"
#include "json.h"
#include "msgpack.h"
#include "mysql_api.h"
#include "param.h"

#include <stdio.h>
#include <time.h>

enum { ISO_NONE, ISO_RU, ISO_RC, ISO_RR, ISO_SER };

struct my {
    char *host;
    int64_t port;
    char *database;
    char *username;
    char *password;
    char *sslkey, *sslcert, *sslca, *sslcapath, *sslcipher;
    bool sslverify;
    /* mysql_bulk */
    char *column_names;
    char *key_names;
    char *json_key_names;
    char *table;
    char *unixtimestamp_key_names;
    bool on_duplicate_key_update;
    char *on_duplicate_update_keys;
    char *on_duplicate_update_custom_values;
    int transaction_isolation_level;
    /* mysql */
    char *sql;
    char *columns;
    char *format;
    /* derived */
    struct ls_instance *ins;
    bool bulk;
    bool json;
    struct ls_strv cols, keys, jkeys, ukeys;
    char *dup_sql;
};

#define F(f) offsetof(struct my, f)

#define MY_CONN_PARAMS(host_default, host_flags)                                               \
    { "host", LS_P_STR, host_default, host_flags, F(host), "MySQL server", NULL, NULL, 0, 0 },   \
    { "port", LS_P_INT, "3306", 0, F(port), "its port", NULL, NULL, 1, 65535 },                   \
    { "database", LS_P_STR, NULL, LS_PF_REQUIRED, F(database), "database", NULL, NULL, 0, 0 },   \
    { "username", LS_P_STR, NULL, LS_PF_REQUIRED, F(username), "user", NULL, NULL, 0, 0 },       \
    { "password", LS_P_SECRET, "", 0, F(password), "password", NULL, NULL, 0, 0 },              \
    { "sslkey", LS_P_STR, NULL, LS_PF_NULLABLE, F(sslkey), "TLS client key", NULL, NULL, 0, 0 },  \
    { "sslcert", LS_P_STR, NULL, LS_PF_NULLABLE, F(sslcert), "TLS client certificate", NULL,     \
      NULL, 0, 0 },                                                                               \
    { "sslca", LS_P_STR, NULL, LS_PF_NULLABLE, F(sslca), "TLS CA file", NULL, NULL, 0, 0 },       \
    { "sslcapath", LS_P_STR, NULL, LS_PF_NULLABLE, F(sslcapath), "TLS CA directory", NULL, NULL,  \
      0, 0 },                                                                                     \
    { "sslcipher", LS_P_STR, NULL, LS_PF_NULLABLE, F(sslcipher), "TLS ciphers", NULL, NULL, 0,    \
      0 },                                                                                        \
    { "sslverify", LS_P_BOOL, "false", 0, F(sslverify), "check the server's certificate", NULL,  \
      NULL, 0, 0 }

static const struct ls_param bulk_params[] = {
    MY_CONN_PARAMS("127.0.0.1", 0),
    { "table", LS_P_STR, NULL, LS_PF_REQUIRED, F(table),
      "table (placeholders from the chunk's keys, '.' as '_')", NULL, NULL, 0, 0 },
    { "column_names", LS_P_STR, NULL, LS_PF_REQUIRED, F(column_names),
      "columns of the INSERT (comma-separated)", NULL, NULL, 0, 0 },
    { "key_names", LS_P_STR, NULL, LS_PF_NULLABLE, F(key_names),
      "record fields for them, in order (${time}: the event time; default: column_names)",
      NULL, NULL, 0, 0 },
    { "json_key_names", LS_P_STR, NULL, LS_PF_NULLABLE, F(json_key_names),
      "fields written as JSON", NULL, NULL, 0, 0 },
    { "unixtimestamp_key_names", LS_P_STR, NULL, LS_PF_NULLABLE, F(unixtimestamp_key_names),
      "fields holding epoch seconds, written as %Y-%m-%d %H:%M:%S", NULL, NULL, 0, 0 },
    { "on_duplicate_key_update", LS_P_BOOL, "false", 0, F(on_duplicate_key_update),
      "ON DUPLICATE KEY UPDATE on_duplicate_update_keys", NULL, NULL, 0, 0 },
    { "on_duplicate_update_keys", LS_P_STR, NULL, LS_PF_NULLABLE, F(on_duplicate_update_keys),
      "columns updated on a duplicate key", NULL, NULL, 0, 0 },
    { "on_duplicate_update_custom_values", LS_P_STR, NULL, LS_PF_NULLABLE,
      F(on_duplicate_update_custom_values), "their values (${sql} or the column itself)",
      NULL, NULL, 0, 0 },
    { "transaction_isolation_level", LS_P_ENUM, "none", 0, F(transaction_isolation_level),
      "SET SESSION TRANSACTION ISOLATION LEVEL first (none: the server's)", NULL,
      "none|read_uncommitted|read_committed|repeatable_read|serializable", 0, 0 },
    LS_PARAM_END
};

static const struct ls_param mysql_params[] = {
    MY_CONN_PARAMS(NULL, LS_PF_REQUIRED),
    { "sql", LS_P_STR, NULL, LS_PF_NULLABLE, F(sql),
      "statement run for each record, a ? per value", NULL, NULL, 0, 0 },
    { "table", LS_P_STR, NULL, LS_PF_NULLABLE, F(table), "table (with columns, instead of sql)",
      NULL, NULL, 0, 0 },
    { "columns", LS_P_STR, NULL, LS_PF_NULLABLE, F(columns), "columns (comma-separated)", NULL,
      NULL, 0, 0 },
    { "key_names", LS_P_STR, NULL, LS_PF_NULLABLE, F(key_names),
      "record fields for the ?s (format raw)", NULL, NULL, 0, 0 },
    { "format", LS_P_STR, "raw", 0, F(format),
      "raw: the key_names values; json: the record as JSON", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static bool in_list(const struct ls_strv *l, const char *k)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->v[i], k) == 0) {
            return true;
        }
    }
    return false;
}

static size_t count_q(const char *s)
{
    size_t n = 0;

    for (; *s; s++) {
        n += *s == '?';
    }
    return n;
}

static int my_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                   size_t errlen)
{
    struct my *o = ins->ctx;
    char why[300];

    o->ins = ins;
    o->bulk = strcmp(ins->plugin->name, "mysql_bulk") == 0;
    if (o->bulk) {
        (void)ls_parse_array(o->column_names, &o->cols);
        (void)ls_parse_array(o->key_names ? o->key_names : o->column_names, &o->keys);
        if (o->json_key_names) {
            (void)ls_parse_array(o->json_key_names, &o->jkeys);
        }
        if (o->unixtimestamp_key_names) {
            (void)ls_parse_array(o->unixtimestamp_key_names, &o->ukeys);
        }
        if (o->on_duplicate_key_update) {
            struct ls_strv uk = { NULL, 0 }, cv = { NULL, 0 };
            struct ls_buf b;
            size_t i;
            if (o->on_duplicate_update_keys == NULL) {
                snprintf(err, errlen, "%s:%d: on_duplicate_key_update = true , "
                         "on_duplicate_update_keys nil!", sec->file, sec->line);
                return LS_ERROR;
            }
            (void)ls_parse_array(o->on_duplicate_update_keys, &uk);
            if (o->on_duplicate_update_custom_values) {
                (void)ls_parse_array(o->on_duplicate_update_custom_values, &cv);
                if (cv.n != uk.n) {
                    ls_strv_release(&uk);
                    ls_strv_release(&cv);
                    snprintf(err, errlen, "%s:%d: on_duplicate_update_keys and "
                             "on_duplicate_update_custom_values must be the same length",
                             sec->file, sec->line);
                    return LS_ERROR;
                }
            }
            ls_buf_init(&b, 0);
            ls_buf_printf(&b, " ON DUPLICATE KEY UPDATE ");
            for (i = 0; i < uk.n; i++) {
                const char *cv_i = cv.n ? cv.v[i] : NULL;
                const char *open = cv_i ? strstr(cv_i, "${") : NULL;
                if (i) {
                    ls_buf_putc(&b, ',');
                }
                if (cv_i == NULL || strcmp(cv_i, uk.v[i]) == 0 || open == NULL) {
                    ls_buf_printf(&b, "%s = VALUES(%s)", uk.v[i], uk.v[i]);
                } else {
                    /* ${...}: written as it is (the plugin escapes it with Mysql2's escape,
                     * which leaves SQL such as NOW() alone) */
                    const char *close = strrchr(open, '}');
                    ls_buf_printf(&b, "%s = %.*s", uk.v[i],
                                  (int)(close && close > open ? close - open - 2 : 0), open + 2);
                }
            }
            o->dup_sql = ls_buf_detach(&b, NULL);
            ls_strv_release(&uk);
            ls_strv_release(&cv);
        }
    } else {
        ls_plg_warn(ins, "[mysql] This plugin deprecated. You should use mysql_bulk.");
        o->json = strcmp(o->format, "json") == 0;
        if (strcmp(o->format, "jsonpath") == 0) {
            ls_conf_param_error(sec, "format", err, errlen, "format jsonpath is not supported");
            return LS_ERROR;
        }
        if (!o->json) {
            if (o->key_names == NULL) {
                ls_conf_param_error(sec, "key_names", err, errlen, "key_names is required "
                                    "with format %s", o->format);
                return LS_ERROR;
            }
            (void)ls_parse_array(o->key_names, &o->keys);
        }
        if (o->columns == NULL && o->sql == NULL) {
            snprintf(err, errlen, "%s:%d: columns or sql MUST be specified, but missing",
                     sec->file, sec->line);
            return LS_ERROR;
        }
        if (o->columns && o->sql) {
            snprintf(err, errlen, "%s:%d: both of columns and sql are specified, but specify "
                     "one of them", sec->file, sec->line);
            return LS_ERROR;
        }
        if (o->sql == NULL) {
            struct ls_buf b;
            size_t i, n = o->json ? 1 : o->keys.n;
            if (o->table == NULL) {
                snprintf(err, errlen, "%s:%d: table missing", sec->file, sec->line);
                return LS_ERROR;
            }
            (void)ls_parse_array(o->columns, &o->cols);
            ls_buf_init(&b, 0);
            ls_buf_printf(&b, "INSERT INTO %s (", o->table);
            for (i = 0; i < o->cols.n; i++) {
                ls_buf_printf(&b, "%s%s", i ? "," : "", o->cols.v[i]);
            }
            ls_buf_printf(&b, ") VALUES (");
            for (i = 0; i < n; i++) {
                ls_buf_printf(&b, "%s?", i ? "," : "");
            }
            ls_buf_putc(&b, ')');
            o->sql = ls_buf_detach(&b, NULL);
        } else if (count_q(o->sql) != (o->json ? 1 : o->keys.n)) {
            ls_conf_param_error(sec, "sql", err, errlen,
                                "mismatch between sql placeholders and key_names");
            return LS_ERROR;
        }
    }
    if (ls_mysql_load(why, sizeof(why)) != LS_OK) {
        snprintf(err, errlen, "%s:%d: %s", sec->file, sec->line, why);
        return LS_ERROR;
    }
    return LS_OK;
}

/* ---- values as pseudo_bind writes them ---- */

/* Mysql2::Client.escape */
static void my_escape(struct ls_buf *b, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (p[i]) {
        case '\0': ls_buf_append(b, "\\0", 2); break;
        case '\n': ls_buf_append(b, "\\n", 2); break;
        case '\r': ls_buf_append(b, "\\r", 2); break;
        case '\\': ls_buf_append(b, "\\\\", 2); break;
        case '\'': ls_buf_append(b, "\\'", 2); break;
        case '"': ls_buf_append(b, "\\\"", 2); break;
        case '\032': ls_buf_append(b, "\\Z", 2); break;
        default: ls_buf_putc(b, p[i]); break;
        }
    }
}

static void quote_text(struct ls_buf *b, const char *p, size_t n)
{
    ls_buf_putc(b, '\'');
    my_escape(b, p, n);
    ls_buf_putc(b, '\'');
}

/* quote(v): nil NULL, true TRUE, false FALSE, else 'to_s'; an array spliced */
static void quote_value(struct ls_buf *b, struct ls_arena *a, const struct ls_value *v)
{
    struct ls_buf t;

    if (v == NULL || v->type == LS_V_NULL) {
        ls_buf_append(b, "NULL", 4);
        return;
    }
    if (v->type == LS_V_BOOL) {
        ls_buf_printf(b, "%s", v->u.b ? "TRUE" : "FALSE");
        return;
    }
    if (v->type == LS_V_STR) {
        quote_text(b, v->u.s.p, v->u.s.len);
        return;
    }
    if (v->type == LS_V_JSON && v->u.s.len && v->u.s.p[0] == '[') {
        size_t off = 0, elen;
        const char *el;
        bool first = true;
        while (ls_json_array_next(v->u.s.p, v->u.s.len, &off, &el, &elen) == LS_OK) {
            struct ls_value ev;
            struct ls_record one;
            char *doc = ls_asprintf("{\"v\":%.*s}", (int)elen, el);
            ls_record_init(&one, a);
            if (!first) {
                ls_buf_putc(b, ',');
            }
            first = false;
            if (ls_json_parse_object(doc, strlen(doc), &one) == LS_OK && one.nfields == 1) {
                ev = one.fields[0].v;
                if (ev.type == LS_V_STR) {
                    ev.u.s.p = ls_arena_memdup(a, ev.u.s.p, ev.u.s.len);
                }
                quote_value(b, a, &ev);
            } else {
                quote_text(b, el, elen);
            }
            ls_record_release(&one);
            ls_free(doc);
        }
        return;
    }
    ls_buf_init(&t, 0);
    ls_ruby_put_value(&t, v, false);
    quote_text(b, t.p ? t.p : "", t.len);
    ls_buf_release(&t);
}

static void local_time(struct ls_buf *b, int64_t sec)
{
    struct tm tm;
    time_t s = (time_t)sec;

    localtime_r(&s, &tm);
    ls_buf_printf(b, "'%04d-%02d-%02d %02d:%02d:%02d'", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Ruby's String#slice(0, n) on UTF-8: n characters */
static size_t utf8_prefix(const char *p, size_t len, size_t chars)
{
    size_t i = 0, c = 0;

    while (i < len && c < chars) {
        unsigned char x = (unsigned char)p[i];
        i += x < 0x80 ? 1 : x < 0xe0 ? 2 : x < 0xf0 ? 3 : 4;
        c++;
    }
    return i < len ? i : len;
}

/* ---- one chunk ---- */

struct my_job {
    struct my *o;
    struct ls_chunk *c;
    int rc;
    char err[400];
    uint64_t rows;
};

static MYSQL *my_connect(struct my *o, const char *db, char *err, size_t errlen)
{
    MYSQL *m = mysql_init(NULL);
    unsigned int timeout = 30;

    if (m == NULL) {
        snprintf(err, errlen, "mysql_init failed");
        return NULL;
    }
    mysql_optionsv(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    if (o->sslkey) {
        mysql_optionsv(m, MYSQL_OPT_SSL_KEY, o->sslkey);
    }
    if (o->sslcert) {
        mysql_optionsv(m, MYSQL_OPT_SSL_CERT, o->sslcert);
    }
    if (o->sslca) {
        mysql_optionsv(m, MYSQL_OPT_SSL_CA, o->sslca);
    }
    if (o->sslcapath) {
        mysql_optionsv(m, MYSQL_OPT_SSL_CAPATH, o->sslcapath);
    }
    if (o->sslcipher) {
        mysql_optionsv(m, MYSQL_OPT_SSL_CIPHER, o->sslcipher);
    }
    if (o->sslverify) {
        my_bool v = 1;
        mysql_optionsv(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &v);
    }
    mysql_optionsv(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (mysql_real_connect(m, o->host, o->username, o->password, db, (unsigned)o->port, NULL,
                           0) == NULL) {
        snprintf(err, errlen, "cannot connect to MySQL %s:%lld as %s: %s", o->host,
                 (long long)o->port, o->username, mysql_error(m));
        mysql_close(m);
        return NULL;
    }
    return m;
}

static int my_query(MYSQL *m, const char *sql, size_t len, char *err, size_t errlen)
{
    if (mysql_real_query(m, sql, (unsigned long)len) != 0) {
        snprintf(err, errlen, "%s (%u) in: %.160s", mysql_error(m), mysql_errno(m), sql);
        return LS_ERROR;
    }
    return LS_OK;
}

static char *expand_dotless(struct ls_chunk *c, const char *tmpl)
{
    char *s = ls_chunk_expand_str(c, tmpl), *p;

    if (s == NULL) {
        return ls_strdup(tmpl);
    }
    for (p = s; *p; p++) {
        if (*p == '.') {
            *p = '_';
        }
    }
    return s;
}

/* check_table_schema: the char/varchar(N) length of each column, 0 for none */
static size_t *bulk_max_lengths(struct my *o, MYSQL *m, const char *table, char *err,
                                size_t errlen)
{
    size_t *max = ls_calloc(o->cols.n + 1, sizeof(size_t));
    char *sql = ls_asprintf("SHOW COLUMNS FROM %s", table);
    MYSQL_RES *res;
    MYSQL_ROW row;

    if (my_query(m, sql, strlen(sql), err, errlen) != LS_OK ||
        (res = mysql_store_result(m)) == NULL) {
        if (!err[0]) {
            snprintf(err, errlen, "SHOW COLUMNS FROM %s: %s", table, mysql_error(m));
        }
        ls_free(sql);
        ls_free(max);
        return NULL;
    }
    while ((row = mysql_fetch_row(res)) != NULL) {
        for (size_t i = 0; i < o->cols.n; i++) {
            const char *type = row[1], *paren;
            if (row[0] == NULL || strcmp(row[0], o->cols.v[i]) != 0 || type == NULL) {
                continue;
            }
            if ((strncmp(type, "char(", 5) == 0 || strncmp(type, "varchar(", 8) == 0) &&
                (paren = strchr(type, '(')) != NULL) {
                max[i] = (size_t)strtoul(paren + 1, NULL, 10);
            }
        }
    }
    mysql_free_result(res);
    ls_free(sql);
    return max;
}

static void bulk_row(struct my *o, struct ls_buf *b, struct ls_arena *a,
                     const struct ls_record *rec, const size_t *max)
{
    size_t i;

    ls_buf_putc(b, '(');
    for (i = 0; i < o->keys.n; i++) {
        const char *k = o->keys.v[i];
        const struct ls_field *f;
        struct ls_value v;
        struct ls_buf t;

        if (i) {
            ls_buf_putc(b, ',');
        }
        if (strcmp(k, "${time}") == 0) {
            local_time(b, rec->time.sec);
            continue;
        }
        f = ls_record_get(rec, k, strlen(k));
        v = f ? f->v : ls_vnull();
        ls_buf_init(&t, 0);
        if (max && i < o->cols.n && max[i] && v.type != LS_V_NULL) {
            /* record[key].to_s.slice(0, max) */
            if (v.type == LS_V_STR) {
                ls_buf_append(&t, v.u.s.p, v.u.s.len);
            } else {
                ls_ruby_put_value(&t, &v, false);
            }
            t.len = utf8_prefix(t.p ? t.p : "", t.len, max[i]);
            v = ls_vstr(ls_arena_memdup(a, t.p ? t.p : "", t.len), t.len);
        }
        if (in_list(&o->jkeys, k)) {
            /* Oj.dump(value) */
            ls_buf_reset(&t);
            if (ls_json_put_value(&t, &v) == LS_OK) {
                v = ls_vstr(ls_arena_memdup(a, t.p ? t.p : "", t.len), t.len);
            }
        }
        if (in_list(&o->ukeys, k) && (v.type == LS_V_INT || v.type == LS_V_FLOAT)) {
            local_time(b, v.type == LS_V_INT ? v.u.i : (int64_t)v.u.f);
            ls_buf_release(&t);
            continue;
        }
        ls_buf_release(&t);
        quote_value(b, a, &v);
    }
    ls_buf_putc(b, ')');
}

/* pseudo_bind(sql, values) for the old plugin */
static void bind_row(struct my *o, struct ls_buf *b, struct ls_arena *a,
                     const struct ls_record *rec)
{
    const char *s = o->sql;
    size_t k = 0;

    for (; *s; s++) {
        if (*s != '?') {
            ls_buf_putc(b, *s);
            continue;
        }
        if (o->json) {
            struct ls_buf t;
            ls_buf_init(&t, 0);
            ls_json_put_record(&t, rec);
            quote_text(b, t.p ? t.p : "", t.len);
            ls_buf_release(&t);
        } else {
            const struct ls_field *f = ls_record_get(rec, o->keys.v[k], strlen(o->keys.v[k]));
            quote_value(b, a, f ? &f->v : NULL);
        }
        k++;
    }
}

static void my_build(void *arg)
{
    struct my_job *j = arg;
    struct my *o = j->o;
    char *db = expand_dotless(j->c, o->database);
    char *table = o->table ? expand_dotless(j->c, o->table) : NULL;
    struct ls_chunk_entries *en = NULL;
    const msgpack_object *e;
    struct ls_arena a;
    struct ls_record rec;
    struct ls_buf sql;
    size_t *max = NULL;
    MYSQL *m;

    j->rc = LS_ERROR;
    j->err[0] = '\0';
    ls_arena_init(&a, 4096);
    ls_record_init(&rec, &a);
    ls_buf_init(&sql, 0);
    m = my_connect(o, db, j->err, sizeof(j->err));
    if (m == NULL) {
        goto out;
    }
    if (o->bulk && (max = bulk_max_lengths(o, m, table, j->err, sizeof(j->err))) == NULL) {
        goto out;
    }
    en = ls_chunk_entries_open(j->c);
    if (en == NULL) {
        snprintf(j->err, sizeof(j->err), "cannot read chunk %s", ls_chunk_info(j->c)->id);
        goto out;
    }
    if (o->bulk) {
        static const char *const levels[] = { "", "READ UNCOMMITTED", "READ COMMITTED",
                                              "REPEATABLE READ", "SERIALIZABLE" };
        size_t i;
        if (o->transaction_isolation_level) {
            char *q = ls_asprintf("SET SESSION TRANSACTION ISOLATION LEVEL %s",
                                  levels[o->transaction_isolation_level]);
            int rc = my_query(m, q, strlen(q), j->err, sizeof(j->err));
            ls_free(q);
            if (rc != LS_OK) {
                goto out;
            }
        }
        ls_buf_printf(&sql, "INSERT INTO %s (", table);
        for (i = 0; i < o->cols.n; i++) {
            const char *c = o->cols.v[i];
            ls_buf_printf(&sql, "%s`", i ? "," : "");
            for (; *c; c++) {
                ls_buf_append(&sql, *c == '`' ? "``" : c, *c == '`' ? 2 : 1);
            }
            ls_buf_putc(&sql, '`');
        }
        ls_buf_append(&sql, ") VALUES ", 9);
        while ((e = ls_chunk_entries_next(en)) != NULL) {
            if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size < 2) {
                continue;
            }
            ls_arena_reset(&a);
            ls_record_clear(&rec);
            rec.arena = &a;
            if (!ls_msgpack_event_time(&e->via.array.ptr[0], &rec.time) ||
                ls_msgpack_map_to_record(&e->via.array.ptr[1], &rec) != LS_OK) {
                continue;
            }
            if (j->rows++) {
                ls_buf_putc(&sql, ',');
            }
            bulk_row(o, &sql, &a, &rec, max);
        }
        if (o->dup_sql) {
            ls_buf_append(&sql, o->dup_sql, strlen(o->dup_sql));
        }
        if (ls_chunk_entries_failed(en)) {
            snprintf(j->err, sizeof(j->err), "cannot read chunk %s", ls_chunk_info(j->c)->id);
            goto out;
        }
        if (j->rows > 0 && my_query(m, sql.p, sql.len, j->err, sizeof(j->err)) != LS_OK) {
            goto out;
        }
    } else {
        /* one transaction for the chunk's statements: all or nothing */
        if (my_query(m, "START TRANSACTION", 17, j->err, sizeof(j->err)) != LS_OK) {
            goto out;
        }
        while ((e = ls_chunk_entries_next(en)) != NULL) {
            if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size < 2) {
                continue;
            }
            ls_arena_reset(&a);
            ls_record_clear(&rec);
            rec.arena = &a;
            if (!ls_msgpack_event_time(&e->via.array.ptr[0], &rec.time) ||
                ls_msgpack_map_to_record(&e->via.array.ptr[1], &rec) != LS_OK) {
                continue;
            }
            ls_buf_reset(&sql);
            bind_row(o, &sql, &a, &rec);
            if (my_query(m, sql.p, sql.len, j->err, sizeof(j->err)) != LS_OK) {
                (void)my_query(m, "ROLLBACK", 8, j->err + strlen(j->err), 0);
                goto out;
            }
            j->rows++;
        }
        if (ls_chunk_entries_failed(en)) {
            (void)my_query(m, "ROLLBACK", 8, j->err, 0);
            snprintf(j->err, sizeof(j->err), "cannot read chunk %s", ls_chunk_info(j->c)->id);
            goto out;
        }
        if (my_query(m, "COMMIT", 6, j->err, sizeof(j->err)) != LS_OK) {
            goto out;
        }
    }
    j->rc = LS_OK;
out:
    ls_chunk_entries_close(en);
    if (m) {
        mysql_close(m);
    }
    ls_free(max);
    ls_free(db);
    ls_free(table);
    ls_buf_release(&sql);
    ls_record_release(&rec);
    ls_arena_release(&a);
}

static void my_built(void *arg)
{
    struct my_job *j = arg;
    struct my *o = j->o;

    if (j->rc == LS_OK) {
        if (o->bulk) {
            ls_plg_info(o->ins, "bulk insert values size (table: %s) => %llu", o->table,
                        (unsigned long long)j->rows);
        }
        ls_output_write_done(o->ins, j->c, LS_OK, NULL);
    } else {
        ls_output_write_done(o->ins, j->c, LS_ERROR, j->err);
    }
    ls_free(j);
}

static int my_write(struct ls_instance *ins, struct ls_chunk *c)
{
    struct my_job *j = ls_calloc(1, sizeof(*j));

    j->o = ins->ctx;
    j->c = c;
    if (ls_work_submit(ins->engine, my_build, my_built, j) != LS_OK) {
        ls_free(j);
        return LS_ERROR;
    }
    return LS_AGAIN;
}

static void my_destroy(struct ls_instance *ins)
{
    struct my *o = ins->ctx;

    ls_strv_release(&o->cols);
    ls_strv_release(&o->keys);
    ls_strv_release(&o->jkeys);
    ls_strv_release(&o->ukeys);
    ls_free(o->dup_sql);
}

const struct ls_plugin ls_plugin_out_mysql_bulk = {
    .name = "mysql_bulk",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "one multi-row INSERT per chunk into MySQL/MariaDB (fluent-plugin-mysql)",
    .params = bulk_params,
    .ctx_size = sizeof(struct my),
    .init = my_init,
    .destroy = my_destroy,
    .output_flags = LS_OUT_BUFFERED,
    .default_formatter = "msgpack",
    .formatter_for = ls_msgpack_formatter_for,
    .write = my_write,
};

const struct ls_plugin ls_plugin_out_mysql = {
    .name = "mysql",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "a statement per record into MySQL/MariaDB, in one transaction per chunk "
                   "(fluent-plugin-mysql's deprecated out_mysql)",
    .params = mysql_params,
    .ctx_size = sizeof(struct my),
    .init = my_init,
    .destroy = my_destroy,
    .output_flags = LS_OUT_BUFFERED,
    .default_formatter = "msgpack",
    .formatter_for = ls_msgpack_formatter_for,
    .write = my_write,
};
