/*
 * mongo.c - fluent-plugin-mongo's out_mongo and out_mongo_replset (1.x), with libmongoc
 * (loaded with dlopen, mongo_api.h).
 *
 * As the plugin: each chunk's records are inserted into `collection` of `database` (both with
 * the chunk keys' placeholders; tag_mapped is `collection ${tag}`; remove_tag_prefix; dots at
 * the ends of the name removed; default `untagged`), or with connection_string into its
 * database. The record keeps its fields; include_time_key (default true: time_key `time`)
 * puts the event time in time_key as a BSON date, and date_keys turn fields into dates
 * (integers as seconds, or milliseconds above 9999999999; floats; strings parsed as Ruby's
 * Time.parse; with parse_string_number_date a string of digits as a number); object_id_keys
 * turn 24-hex-digit strings into ObjectIds; replace_dot_in_key_with and
 * replace_dollar_in_key_with rename keys at every depth; an integer above INT64_MAX is a
 * Decimal128. `capped` with capped_size (and capped_max) creates a capped collection the
 * first time, expire_after a TTL index on time_key. user / password / auth_source /
 * auth_mech authenticate (SCRAM by default, as the server offers); ssl, ssl_cert (a PEM with
 * the key), ssl_ca_cert, ssl_verify; write_concern and journaled. mongo_replset connects to
 * `nodes` as replica set `replica_set`.
 *
 * Where logship does better:
 *  - Each record without an _id gets one made from the chunk's id and its place in it (an
 *    ObjectId whose first four bytes are the event time, as an ObjectId's are a creation
 *    time). A chunk sent again after a lost answer or a kill -9 then meets its own
 *    documents as duplicate keys, which count as delivered: exactly once. The Ruby driver
 *    makes a new random _id at every attempt, so a retried chunk is inserted twice.
 *  - A document the server refuses (a write error) is logged and counted, and the others
 *    are inserted. The plugin catches the BulkWriteError, logs how many were not inserted
 *    and considers the chunk written: with `ordered true` (its default) every document
 *    after the refused one is lost. logship inserts unordered for that reason.
 *  - A connection or server failure keeps the chunk for the buffer's retries (the
 *    plugin's exit! on an authentication failure stops fluentd instead).
 */
#include "plugin.h"
#include "dynlib.h"
#include "json.h"
#include "log.h"
#include "msgpack.h"
#include "param.h"
#include "timefmt.h"
#include "mongo_api.h"

#include <pthread.h>

struct ls_mongo_api ls_mongo;

static const struct ls_dynsym ls_mongo_syms[] = {
#define LS_MONGO_SYM(f) { #f, offsetof(struct ls_mongo_api, f##_p) },
    LS_MONGO_FUNCS(LS_MONGO_SYM)
#undef LS_MONGO_SYM
};

static struct ls_dynlib ls_mongo_lib = {
    .soname = "libmongoc-1.0.so.0",
    .package = "libmongoc-1.0-0",
    .syms = ls_mongo_syms,
    .nsyms = LS_ARRAY_LEN(ls_mongo_syms),
    .table = &ls_mongo,
};

static pthread_once_t mongo_once = PTHREAD_ONCE_INIT;

static void mongo_log(mongoc_log_level_t level, const char *domain, const char *message, void *u)
{
    LS_UNUSED(u);
    if (level <= MONGOC_LOG_LEVEL_WARNING) {
        ls_warn("mongo: %s: %s", domain, message);
    }
}

static void mongo_global_init(void)
{
    mongoc_init();
    mongoc_log_set_handler(mongo_log, NULL);
}

int ls_mongo_load(char *err, size_t errlen)
{
    if (ls_dynlib_load(&ls_mongo_lib, err, errlen) != LS_OK) {
        return LS_ERROR;
    }
    pthread_once(&mongo_once, mongo_global_init);
    return LS_OK;
}

#define MG_BATCH 1000       /* documents per insert call */

struct mongo {
    /* parameters */
    char *connection_string;
    char *database;
    char *collection;
    char *host;
    int64_t port;
    int64_t write_concern;
    bool journaled;
    char *replace_dot;
    char *replace_dollar;
    struct ls_strv date_keys;
    bool parse_string_number_date;
    struct ls_strv object_id_keys;
    bool tag_mapped;
    char *remove_tag_prefix;
    double expire_after;
    bool ssl;
    char *ssl_cert;
    char *ssl_key;
    char *ssl_key_pass_phrase;
    bool ssl_verify;
    char *ssl_ca_cert;
    bool ordered;
    char *capped_size_text;
    char *capped_max_text;
    char *user;
    char *password;
    char *auth_source;
    char *auth_mech;
    bool include_time_key;
    char *time_key;
    char *nodes;
    char *replica_set;
    char *read;

    /* derived */
    struct ls_instance *ins;
    bool capped;
    int64_t capped_size, capped_max;
    const char *date_field;         /* the event time as a date here (time_key), or NULL */
    struct ls_accessor *date_acc, *oid_acc;
    mongoc_client_pool_t *pool;
    char *uri_db;           /* connection_string's database, as Mongo::Client.new uses it */
    pthread_mutex_t mu;             /* the collections made */
    bool mu_init;
    char **made;
    size_t nmade;
};

#define F(f) offsetof(struct mongo, f)

#define MG_PARAMS                                                                                 \
    { "connection_string", LS_P_SECRET, NULL, LS_PF_NULLABLE, F(connection_string),               \
      "mongodb:// URI (its database is used)", NULL, NULL, 0, 0 },                               \
    { "database", LS_P_STR, NULL, LS_PF_NULLABLE, F(database), "database (placeholders)", NULL,   \
      NULL, 0, 0 },                                                                               \
    { "collection", LS_P_STR, "untagged", 0, F(collection), "collection (placeholders)", NULL,    \
      NULL, 0, 0 },                                                                               \
    { "host", LS_P_STR, "localhost", 0, F(host), "server", NULL, NULL, 0, 0 },                     \
    { "port", LS_P_INT, "27017", 0, F(port), "its port", NULL, NULL, 1, 65535 },                   \
    { "write_concern", LS_P_INT, "-1", 0, F(write_concern), "w (-1: the server's default)",      \
      NULL, NULL, -1, 1000 },                                                                     \
    { "journaled", LS_P_BOOL, "false", 0, F(journaled), "j: wait for the journal", NULL, NULL,    \
      0, 0 },                                                                                     \
    { "replace_dot_in_key_with", LS_P_STR, NULL, LS_PF_NULLABLE, F(replace_dot),                  \
      "replace '.' in keys", NULL, NULL, 0, 0 },                                                  \
    { "replace_dollar_in_key_with", LS_P_STR, NULL, LS_PF_NULLABLE, F(replace_dollar),            \
      "replace a leading '$' in keys", NULL, NULL, 0, 0 },                                        \
    { "date_keys", LS_P_ARRAY, NULL, 0, F(date_keys), "fields made BSON dates", NULL, NULL, 0,    \
      0 },                                                                                        \
    { "parse_string_number_date", LS_P_BOOL, "false", 0, F(parse_string_number_date),            \
      "a date_keys string of digits is a number", NULL, NULL, 0, 0 },                             \
    { "object_id_keys", LS_P_ARRAY, NULL, 0, F(object_id_keys), "fields made ObjectIds", NULL,    \
      NULL, 0, 0 },                                                                               \
    { "tag_mapped", LS_P_BOOL, "false", 0, F(tag_mapped), "deprecated: collection ${tag}", NULL,  \
      NULL, 0, 0 },                                                                               \
    { "remove_tag_prefix", LS_P_STR, NULL, LS_PF_NULLABLE, F(remove_tag_prefix),                  \
      "removed from the collection name", NULL, NULL, 0, 0 },                                     \
    { "expire_after", LS_P_TIME, "0", 0, F(expire_after), "TTL index on time_key (seconds)",      \
      NULL, NULL, 0, 1e12 },                                                                      \
    { "ssl", LS_P_BOOL, "false", 0, F(ssl), "TLS", NULL, NULL, 0, 0 },                            \
    { "ssl_cert", LS_P_STR, NULL, LS_PF_NULLABLE, F(ssl_cert), "client certificate (PEM, with "   \
      "its key)", NULL, NULL, 0, 0 },                                                             \
    { "ssl_key", LS_P_STR, NULL, LS_PF_NULLABLE, F(ssl_key), "accepted when it is ssl_cert's "    \
      "file", NULL, NULL, 0, 0 },                                                                 \
    { "ssl_key_pass_phrase", LS_P_SECRET, NULL, LS_PF_NULLABLE, F(ssl_key_pass_phrase),           \
      "its passphrase", NULL, NULL, 0, 0 },                                                       \
    { "ssl_verify", LS_P_BOOL, "false", 0, F(ssl_verify), "check the server's certificate",       \
      NULL, NULL, 0, 0 },                                                                         \
    { "ssl_ca_cert", LS_P_STR, NULL, LS_PF_NULLABLE, F(ssl_ca_cert), "CA file", NULL, NULL, 0,    \
      0 },                                                                                        \
    { "ordered", LS_P_BOOL, "true", 0, F(ordered), "accepted: documents after a refused one are " \
      "still inserted", NULL, NULL, 0, 0 },                                                       \
    { "capped", LS_P_STR, NULL, LS_PF_NO_STORE, 0,                                                \
      "create a capped collection (with capped_size)", NULL, NULL, 0, 0 },                        \
    { "capped_size", LS_P_STR, NULL, LS_PF_NULLABLE, F(capped_size_text), "its size", NULL, NULL, \
      0, 0 },                                                                                     \
    { "capped_max", LS_P_STR, NULL, LS_PF_NULLABLE, F(capped_max_text), "its document limit",     \
      NULL, NULL, 0, 0 },                                                                         \
    { "user", LS_P_STR, NULL, LS_PF_NULLABLE, F(user), "user", NULL, NULL, 0, 0 },                 \
    { "password", LS_P_SECRET, NULL, LS_PF_NULLABLE, F(password), "password", NULL, NULL, 0, 0 },  \
    { "auth_source", LS_P_STR, NULL, LS_PF_NULLABLE, F(auth_source), "authentication database",   \
      NULL, NULL, 0, 0 },                                                                         \
    { "auth_mech", LS_P_STR, NULL, LS_PF_NULLABLE, F(auth_mech), "authentication mechanism",      \
      NULL, NULL, 0, 0 },                                                                         \
    { "include_time_key", LS_P_BOOL, "true", 0, F(include_time_key),                              \
      "the event time as a date in time_key", NULL, NULL, 0, 0 },                                 \
    { "mongo_log_level", LS_P_STR, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL, 0, 0 },       \
    { "mongodb_smaller_bson_limit", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL,   \
      0, 0 }

static const struct ls_param mongo_params[] = {
    MG_PARAMS,
    LS_PARAM_END
};

static const struct ls_param replset_params[] = {
    MG_PARAMS,
    { "nodes", LS_P_STR, NULL, LS_PF_NULLABLE, F(nodes), "host:port,host:port", NULL, NULL, 0, 0 },
    { "replica_set", LS_P_STR, NULL, LS_PF_REQUIRED, F(replica_set), "replica set name", NULL,
      NULL, 0, 0 },
    { "read", LS_P_STR, NULL, LS_PF_NULLABLE, F(read), "accepted (writes go to the primary)",
      NULL, NULL, 0, 0 },
    { "num_retries", LS_P_INT, NULL, LS_PF_NO_STORE, 0, "accepted (the buffer retries)", NULL,
      NULL, 0, 0 },
    LS_PARAM_END
};

/* ---- configuration ---- */

static int mg_uri(struct mongo *m, struct ls_conf_section *sec, mongoc_uri_t **out, char *err,
                  size_t errlen)
{
    bson_error_t e;
    mongoc_uri_t *uri;
    char *s;

    if (m->connection_string) {
        s = ls_strdup(m->connection_string);
    } else if (m->nodes) {
        s = ls_asprintf("mongodb://%s/", m->nodes);
    } else {
        bool v6 = strchr(m->host, ':') != NULL;
        s = ls_asprintf("mongodb://%s%s%s:%lld/", v6 ? "[" : "", m->host, v6 ? "]" : "",
                        (long long)m->port);
    }
    uri = mongoc_uri_new_with_error(s, &e);
    ls_free(s);
    if (uri == NULL) {
        ls_conf_param_error(sec, m->connection_string ? "connection_string" : "host", err, errlen,
                            "%s", e.message);
        return LS_ERROR;
    }
    if (!m->connection_string) {
        if (m->user) {
            mongoc_uri_set_username(uri, m->user);
        }
        if (m->password && m->user) {
            mongoc_uri_set_password(uri, m->password);
        }
        if (m->auth_source) {
            mongoc_uri_set_auth_source(uri, m->auth_source);
        }
        if (m->auth_mech) {
            mongoc_uri_set_auth_mechanism(uri, m->auth_mech);
        }
        if (m->replica_set) {
            mongoc_uri_set_option_as_utf8(uri, MONGOC_URI_REPLICASET, m->replica_set);
        }
        if (m->ssl) {
            mongoc_uri_set_option_as_bool(uri, MONGOC_URI_TLS, true);
            if (m->ssl_cert) {
                mongoc_uri_set_option_as_utf8(uri, MONGOC_URI_TLSCERTIFICATEKEYFILE, m->ssl_cert);
            }
            if (m->ssl_key_pass_phrase) {
                mongoc_uri_set_option_as_utf8(uri, MONGOC_URI_TLSCERTIFICATEKEYFILEPASSWORD,
                                              m->ssl_key_pass_phrase);
            }
            if (m->ssl_ca_cert) {
                mongoc_uri_set_option_as_utf8(uri, MONGOC_URI_TLSCAFILE, m->ssl_ca_cert);
            }
            if (!m->ssl_verify) {
                mongoc_uri_set_option_as_bool(uri, MONGOC_URI_TLSINSECURE, true);
            }
        }
    }
    if (m->write_concern >= 0) {
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_W, (int32_t)m->write_concern);
    }
    if (m->journaled) {
        mongoc_uri_set_option_as_bool(uri, MONGOC_URI_JOURNAL, true);
    }
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 10000);
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, 10000);
    *out = uri;
    return LS_OK;
}

static int accessors(struct ls_strv *keys, struct ls_accessor **out, struct ls_conf_section *sec,
                     const char *param, char *err, size_t errlen)
{
    char msg[256];

    if (keys->n == 0) {
        return LS_OK;
    }
    *out = ls_calloc(keys->n, sizeof(struct ls_accessor));
    for (size_t i = 0; i < keys->n; i++) {
        if (ls_accessor_compile(&(*out)[i], keys->v[i], msg, sizeof(msg)) != LS_OK) {
            ls_conf_param_error(sec, param, err, errlen, "%s", msg);
            return LS_ERROR;
        }
    }
    return LS_OK;
}

static int mg_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct mongo *m = ins->ctx;
    struct ls_conf_section *inj = ls_conf_child(sec, "inject");
    mongoc_uri_t *uri = NULL;
    char msg[300];

    m->ins = ins;
    pthread_mutex_init(&m->mu, NULL);
    m->mu_init = true;
    if (m->connection_string == NULL && m->database == NULL) {
        snprintf(err, errlen, "%s:%d: connection_string or database parameter is required",
                 sec->file, sec->line);
        return LS_ERROR;
    }
    if (ls_conf_get_param(sec, "tag_mapped")) {
        ls_plg_warn(ins, "'tag_mapped' feature is replaced with built-in config placeholder. "
                    "Please consider to use 'collection ${tag}'.");
        ls_free(m->collection);
        m->collection = ls_strdup("${tag}");
    }
    if (!m->tag_mapped && ls_conf_get_param(sec, "collection") == NULL) {
        snprintf(err, errlen, "%s:%d: normal mode requires collection parameter", sec->file,
                 sec->line);
        return LS_ERROR;
    }
    if (ls_conf_get_param(sec, "capped")) {
        if (ls_conf_get_param(sec, "capped_size") == NULL) {
            snprintf(err, errlen, "%s:%d: 'capped_size' parameter is required on <store> of "
                     "Mongo output", sec->file, sec->line);
            return LS_ERROR;
        }
        m->capped = true;
        if (ls_parse_size(ls_conf_get(sec, "capped_size"), &m->capped_size) != LS_OK ||
            (ls_conf_get(sec, "capped_max") &&
             ls_parse_size(ls_conf_get(sec, "capped_max"), &m->capped_max) != LS_OK)) {
            ls_conf_param_error(sec, "capped_size", err, errlen, "capped_size / capped_max: "
                                "not a size");
            return LS_ERROR;
        }
    }
    if (m->ssl_key && (m->ssl_cert == NULL || strcmp(m->ssl_key, m->ssl_cert) != 0)) {
        ls_conf_param_error(sec, "ssl_key", err, errlen, "ssl_key: libmongoc reads the key from "
                            "ssl_cert's PEM file; put both in one file");
        return LS_ERROR;
    }
    /* the plugin's compat: without <inject>, the event time goes to time_key (default
     * "time") unless include_time_key false; with <inject>, to its time_key */
    if (inj) {
        m->date_field = ls_conf_get(inj, "time_key");
    } else if (m->include_time_key) {
        m->date_field = ls_conf_get(sec, "time_key") ? ls_conf_get(sec, "time_key") : "time";
    }
    if (accessors(&m->date_keys, &m->date_acc, sec, "date_keys", err, errlen) != LS_OK ||
        accessors(&m->object_id_keys, &m->oid_acc, sec, "object_id_keys", err, errlen) != LS_OK) {
        return LS_ERROR;
    }
    if (ls_mongo_load(msg, sizeof(msg)) != LS_OK) {
        snprintf(err, errlen, "%s:%d: %s", sec->file, sec->line, msg);
        return LS_ERROR;
    }
    if (mg_uri(m, sec, &uri, err, errlen) != LS_OK) {
        return LS_ERROR;
    }
    if (m->connection_string) {
        const char *d = mongoc_uri_get_database(uri);
        m->uri_db = ls_strdup(d ? d : (m->database ? m->database : "admin"));
    }
    m->pool = mongoc_client_pool_new(uri);
    mongoc_uri_destroy(uri);
    if (m->pool == NULL) {
        snprintf(err, errlen, "%s:%d: cannot make a MongoDB client", sec->file, sec->line);
        return LS_ERROR;
    }
    mongoc_client_pool_set_error_api(m->pool, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_pool_set_appname(m->pool, "logship");
    return LS_OK;
}

static void mg_destroy(struct ls_instance *ins)
{
    struct mongo *m = ins->ctx;

    if (m->pool) {
        mongoc_client_pool_destroy(m->pool);
    }
    ls_free(m->uri_db);
    for (size_t i = 0; m->date_acc && i < m->date_keys.n; i++) {
        ls_accessor_release(&m->date_acc[i]);
    }
    for (size_t i = 0; m->oid_acc && i < m->object_id_keys.n; i++) {
        ls_accessor_release(&m->oid_acc[i]);
    }
    ls_free(m->date_acc);
    ls_free(m->oid_acc);
    for (size_t i = 0; i < m->nmade; i++) {
        ls_free(m->made[i]);
    }
    ls_free(m->made);
    if (m->mu_init) {
        pthread_mutex_destroy(&m->mu);
    }
}

/* ---- records to BSON ---- */

struct mg_job {
    struct mongo *m;
    struct ls_chunk *c;
    char *db, *coll;
    struct ls_arena arena;
    struct ls_record rec;
    struct ls_timefmt *tf;          /* Time.parse for date_keys strings (this thread's) */
    uint64_t inserted, refused;
    int rc;
    char err[400];
    struct ls_buf key;
};

static const char *mg_key(struct mg_job *j, const char *k, size_t kl)
{
    struct mongo *m = j->m;

    ls_buf_reset(&j->key);
    if (m->replace_dollar && kl && k[0] == '$') {
        ls_buf_append(&j->key, m->replace_dollar, strlen(m->replace_dollar));
        k++;
        kl--;
    }
    for (size_t i = 0; i < kl; i++) {
        if (k[i] == '.' && m->replace_dot) {
            ls_buf_append(&j->key, m->replace_dot, strlen(m->replace_dot));
        } else if (k[i] == '\0') {
            ls_buf_append(&j->key, "\xef\xbf\xbd", 3);  /* BSON keys are C strings */
        } else {
            ls_buf_putc(&j->key, k[i]);
        }
    }
    return ls_buf_cstr(&j->key);
}

static void append_value(struct mg_job *j, bson_t *b, const char *key, const struct ls_value *v,
                         int depth);

/* JSON text (an object or an array) as a BSON document or array under key. */
static void append_json(struct mg_job *j, bson_t *b, const char *key, const char *p, size_t len,
                        int depth)
{
    bson_t child;
    struct ls_record r;

    if (depth > 64) {
        bson_append_null(b, key, -1);
        return;
    }
    ls_record_init(&r, &j->arena);
    if (p[0] == '{') {
        bson_append_document_begin(b, key, -1, &child);
        if (ls_json_parse_object(p, len, &r) == LS_OK) {
            for (unsigned i = 0; i < r.nfields; i++) {
                char *k = ls_strdup(mg_key(j, r.fields[i].key, r.fields[i].key_len));
                append_value(j, &child, k, &r.fields[i].v, depth + 1);
                ls_free(k);
            }
        }
        bson_append_document_end(b, &child);
    } else {
        size_t off = 0, elen, idx = 0;
        const char *elem;
        bson_append_array_begin(b, key, -1, &child);
        while (ls_json_array_next(p, len, &off, &elem, &elen) == LS_OK) {
            char ik[24];
            struct ls_value ev;
            snprintf(ik, sizeof(ik), "%zu", idx++);
            if (ls_json_array_get(p, len, idx - 1, &j->arena, &ev) == LS_OK) {
                append_value(j, &child, ik, &ev, depth + 1);
            } else {
                bson_append_null(&child, ik, -1);
            }
        }
        bson_append_array_end(b, &child);
    }
    ls_record_release(&r);
}

static void append_value(struct mg_job *j, bson_t *b, const char *key, const struct ls_value *v,
                         int depth)
{
    switch (v->type) {
    case LS_V_NULL:
        bson_append_null(b, key, -1);
        break;
    case LS_V_BOOL:
        bson_append_bool(b, key, -1, v->u.b);
        break;
    case LS_V_INT:
        /* Ruby's bson: an Integer that fits in 32 bits is an int32 */
        if (v->u.i >= INT32_MIN && v->u.i <= INT32_MAX) {
            bson_append_int32(b, key, -1, (int32_t)v->u.i);
        } else {
            bson_append_int64(b, key, -1, v->u.i);
        }
        break;
    case LS_V_FLOAT:
        bson_append_double(b, key, -1, v->u.f);
        break;
    case LS_V_STR: {
        size_t ok = ls_utf8_valid_prefix(v->u.s.p, v->u.s.len);
        if (ok == v->u.s.len) {
            bson_append_utf8(b, key, -1, v->u.s.p, (int)v->u.s.len);
        } else {
            struct ls_buf s;
            ls_buf_init(&s, 0);
            ls_utf8_scrub(&s, v->u.s.p, v->u.s.len);
            bson_append_utf8(b, key, -1, s.p, (int)s.len);
            ls_buf_release(&s);
        }
        break;
    }
    case LS_V_JSON:
        if (v->u.s.len && (v->u.s.p[0] == '{' || v->u.s.p[0] == '[')) {
            append_json(j, b, key, v->u.s.p, v->u.s.len, depth);
        } else {
            /* a number beyond int64 (msgpack's uint64): the plugin's Decimal128 */
            bson_decimal128_t d;
            char *t = ls_strndup(v->u.s.p, v->u.s.len);
            if (bson_decimal128_from_string(t, &d)) {
                bson_append_decimal128(b, key, -1, &d);
            } else {
                bson_append_utf8(b, key, -1, t, -1);
            }
            ls_free(t);
        }
        break;
    }
}

/* A date_keys value as milliseconds since the epoch; false: not a date (the field is nil). */
static bool date_of(struct mg_job *j, const struct ls_value *v, int64_t *ms)
{
    double f;

    if (v->type == LS_V_INT) {
        f = v->u.i > 9999999999LL ? (double)v->u.i / 1000.0 : (double)v->u.i;
    } else if (v->type == LS_V_FLOAT) {
        f = v->u.f;
    } else if (v->type == LS_V_STR) {
        struct ls_time t;
        char *s = ls_strndup(v->u.s.p, v->u.s.len);
        char *end = NULL;
        bool parsed = false;
        if (j->m->parse_string_number_date && s[0]) {
            long long n = strtoll(s, &end, 10);
            if (*end == '\0' && end != s) {
                f = n > 9999999999LL ? (double)n / 1000.0 : (double)n;
                parsed = true;
            } else {
                double d = strtod(s, &end);
                if (*end == '\0' && end != s && strchr(s, '.')) {
                    f = d;
                    parsed = true;
                }
            }
        }
        if (!parsed) {
            if (j->tf == NULL) {
                char e[128];
                j->tf = ls_timefmt_create(NULL, NULL, e, sizeof(e));
            }
            if (j->tf == NULL || ls_timefmt_parse(j->tf, s, strlen(s), &t) != LS_OK) {
                ls_free(s);
                return false;
            }
            f = (double)t.sec + (double)t.nsec / 1e9;
        }
        ls_free(s);
    } else {
        return false;
    }
    *ms = (int64_t)(f * 1000.0);      /* BSON dates hold milliseconds: Time's rest is cut */
    return true;
}

/* The document for the record, with the _id made for ordinal ord of the chunk. */
static bson_t *mg_doc(struct mg_job *j, uint64_t ord)
{
    struct mongo *m = j->m;
    struct ls_record *rec = &j->rec;
    bson_t *b = bson_new();
    bool has_id = ls_record_get(rec, "_id", 3) != NULL;
    bool date_done = false;

    if (!has_id) {
        /* 4 bytes of event time, 8 of the chunk id and the ordinal hashed: the same _id
         * at every attempt (see the top of the file) */
        uint8_t raw[12];
        bson_oid_t oid;
        const char *id = ls_chunk_info(j->c)->id;
        uint64_t h = 1469598103934665603ULL;
        uint32_t t = (uint32_t)rec->time.sec;
        for (const char *p = id; *p; p++) {
            h = (h ^ (uint8_t)*p) * 1099511628211ULL;
        }
        for (int i = 0; i < 8; i++) {
            h = (h ^ ((ord >> (8 * i)) & 0xff)) * 1099511628211ULL;
        }
        raw[0] = (uint8_t)(t >> 24);
        raw[1] = (uint8_t)(t >> 16);
        raw[2] = (uint8_t)(t >> 8);
        raw[3] = (uint8_t)t;
        for (int i = 0; i < 8; i++) {
            raw[4 + i] = (uint8_t)(h >> (56 - 8 * i));
        }
        bson_oid_init_from_data(&oid, raw);
        bson_append_oid(b, "_id", 3, &oid);
    }
    for (unsigned i = 0; i < rec->nfields; i++) {
        const struct ls_field *f = &rec->fields[i];
        const char *k = mg_key(j, f->key, f->key_len);
        char *key = ls_strdup(k);
        bool done = false;
        if (m->date_field && strlen(m->date_field) == f->key_len &&
            memcmp(m->date_field, f->key, f->key_len) == 0) {
            /* record[time_key] = Time.at(time) */
            bson_append_date_time(b, key, -1, rec->time.sec * 1000 + rec->time.nsec / 1000000);
            done = date_done = true;
        }
        for (size_t d = 0; !done && m->date_acc && d < m->date_keys.n; d++) {
            if (strlen(m->date_keys.v[d]) == f->key_len &&
                memcmp(m->date_keys.v[d], f->key, f->key_len) == 0) {
                int64_t ms;
                if (date_of(j, &f->v, &ms)) {
                    bson_append_date_time(b, key, -1, ms);
                } else {
                    size_t n;
                    const char *s = ls_value_to_text(&j->arena, &f->v, &n);
                    ls_plg_warn(m->ins, "Failed to parse '%s' field. Expected date types are "
                                "Integer/Float/String/EventTime: %.*s", m->date_keys.v[d],
                                (int)n, s);
                    bson_append_null(b, key, -1);
                }
                done = true;
            }
        }
        for (size_t d = 0; !done && m->oid_acc && d < m->object_id_keys.n; d++) {
            if (strlen(m->object_id_keys.v[d]) == f->key_len &&
                memcmp(m->object_id_keys.v[d], f->key, f->key_len) == 0) {
                char hex[25];
                if (f->v.type == LS_V_STR && f->v.u.s.len == 24) {
                    memcpy(hex, f->v.u.s.p, 24);
                    hex[24] = '\0';
                }
                if (f->v.type == LS_V_STR && f->v.u.s.len == 24 && bson_oid_is_valid(hex, 24)) {
                    bson_oid_t oid;
                    bson_oid_init_from_string(&oid, hex);
                    bson_append_oid(b, key, -1, &oid);
                } else {
                    size_t n;
                    const char *s = ls_value_to_text(&j->arena, &f->v, &n);
                    ls_plg_warn(m->ins, "Failed to parse '%s' field. Expected object_id types "
                                "are String: %.*s", m->object_id_keys.v[d], (int)n, s);
                    bson_append_null(b, key, -1);
                }
                done = true;
            }
        }
        if (!done) {
            append_value(j, b, key, &f->v, 0);
        }
        ls_free(key);
    }
    if (m->date_field && !date_done) {
        bson_append_date_time(b, mg_key(j, m->date_field, strlen(m->date_field)), -1,
                              rec->time.sec * 1000 + rec->time.nsec / 1000000);
    }
    return b;
}

/* ---- a chunk ---- */

static char *collection_name(struct mg_job *j)
{
    struct mongo *m = j->m;
    char *name = ls_chunk_expand_str(j->c, m->collection);
    char *p, *end;

    if (name == NULL) {
        name = ls_strdup(m->collection);
    }
    if (m->remove_tag_prefix) {
        size_t n = strlen(m->remove_tag_prefix);
        if (strncmp(name, m->remove_tag_prefix, n) == 0) {
            memmove(name, name + n, strlen(name + n) + 1);
        }
    }
    for (p = name; *p == '.'; p++) {
    }
    memmove(name, p, strlen(p) + 1);
    end = name + strlen(name);
    while (end > name && end[-1] == '.') {
        *--end = '\0';
    }
    if (name[0] == '\0') {
        ls_free(name);
        name = ls_strdup(m->collection);
    }
    return name;
}

static bool made_before(struct mongo *m, const char *key)
{
    bool found = false;

    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->nmade && !found; i++) {
        found = strcmp(m->made[i], key) == 0;
    }
    pthread_mutex_unlock(&m->mu);
    return found;
}

/* get_collection: create it (capped, TTL index) the first time; LS_OK or LS_ERROR. */
static int mg_prepare(struct mg_job *j, mongoc_client_t *cl)
{
    struct mongo *m = j->m;
    char *key = ls_asprintf("%s.%s", j->db, j->coll);
    mongoc_database_t *db;
    bson_error_t e;
    int rc = LS_OK;

    if ((!m->capped && m->expire_after <= 0) || made_before(m, key)) {
        ls_free(key);
        return LS_OK;
    }
    db = mongoc_client_get_database(cl, j->db);
    memset(&e, 0, sizeof(e));
    if (!mongoc_database_has_collection(db, j->coll, &e)) {
        if (e.code != 0) {
            snprintf(j->err, sizeof(j->err), "listCollections on %s: %.200s", j->db, e.message);
            rc = LS_ERROR;
        } else {
            bson_t opts;
            mongoc_collection_t *coll;
            bson_init(&opts);
            if (m->capped) {
                bson_append_bool(&opts, "capped", -1, true);
                bson_append_int64(&opts, "size", -1, m->capped_size);
                if (m->capped_max > 0) {
                    bson_append_int64(&opts, "max", -1, m->capped_max);
                }
            }
            coll = mongoc_database_create_collection(db, j->coll, &opts, &e);
            bson_destroy(&opts);
            if (coll == NULL && e.code != 48) {     /* 48: made by someone else meanwhile */
                snprintf(j->err, sizeof(j->err), "cannot create collection %s.%s: %.200s", j->db,
                         j->coll, e.message);
                rc = LS_ERROR;
            }
            if (coll) {
                mongoc_collection_destroy(coll);
            }
            if (rc == LS_OK && m->expire_after > 0 && m->date_field) {
                /* createIndexes: {key: {<time_key>: 1}, expireAfterSeconds: N} */
                bson_t cmd, arr, idx, keys, reply;
                char *name = ls_asprintf("%s_1", m->date_field);
                bson_init(&cmd);
                bson_append_utf8(&cmd, "createIndexes", -1, j->coll, -1);
                bson_append_array_begin(&cmd, "indexes", -1, &arr);
                bson_append_document_begin(&arr, "0", -1, &idx);
                bson_append_document_begin(&idx, "key", -1, &keys);
                bson_append_int32(&keys, m->date_field, -1, 1);
                bson_append_document_end(&idx, &keys);
                bson_append_utf8(&idx, "name", -1, name, -1);
                bson_append_int64(&idx, "expireAfterSeconds", -1, (int64_t)m->expire_after);
                bson_append_document_end(&arr, &idx);
                bson_append_array_end(&cmd, &arr);
                if (!mongoc_database_write_command_with_opts(db, &cmd, NULL, &reply, &e)) {
                    ls_plg_warn(m->ins, "cannot create the expire_after index on %s.%s: %s",
                                j->db, j->coll, e.message);
                }
                bson_destroy(&reply);
                bson_destroy(&cmd);
                ls_free(name);
            }
        }
    }
    mongoc_database_destroy(db);
    if (rc == LS_OK) {
        pthread_mutex_lock(&m->mu);
        m->made = ls_realloc(m->made, (m->nmade + 1) * sizeof(char *));
        m->made[m->nmade++] = key;
        pthread_mutex_unlock(&m->mu);
    } else {
        ls_free(key);
    }
    return rc;
}

/* Insert docs[0..n); refused ones are logged. LS_OK when every document is in (or refused
 * for good), LS_ERROR when the call failed otherwise (nothing known to be in). */
static int mg_insert(struct mg_job *j, mongoc_collection_t *coll, bson_t **docs, const bool *ours,
                     size_t n)
{
    bson_t opts, reply;
    bson_error_t e;
    bson_iter_t it, errs, one;
    bool ok;
    uint64_t refused = 0;

    bson_init(&opts);
    bson_append_bool(&opts, "ordered", -1, false);
    memset(&e, 0, sizeof(e));
    ok = mongoc_collection_insert_many(coll, (const bson_t **)docs, n, &opts, &reply, &e);
    bson_destroy(&opts);
    if (ok) {
        j->inserted += n;
        bson_destroy(&reply);
        return LS_OK;
    }
    if (!bson_iter_init_find(&it, &reply, "writeErrors") || !bson_iter_recurse(&it, &errs)) {
        snprintf(j->err, sizeof(j->err), "insert into %s.%s failed: %.200s", j->db, j->coll,
                 e.message);
        bson_destroy(&reply);
        return LS_ERROR;
    }
    while (bson_iter_next(&errs)) {
        int32_t code = 0, idx = -1;
        const char *msg = "";
        if (!bson_iter_recurse(&errs, &one)) {
            continue;
        }
        while (bson_iter_next(&one)) {
            const char *k = bson_iter_key(&one);
            if (strcmp(k, "code") == 0 && bson_iter_type(&one) == BSON_TYPE_INT32) {
                code = bson_iter_int32(&one);
            } else if (strcmp(k, "index") == 0 && bson_iter_type(&one) == BSON_TYPE_INT32) {
                idx = bson_iter_int32(&one);
            } else if (strcmp(k, "errmsg") == 0 && bson_iter_type(&one) == BSON_TYPE_UTF8) {
                msg = bson_iter_utf8(&one, NULL);
            }
        }
        if (code == 11000 && idx >= 0 && (size_t)idx < n) {
            /* the _id logship made, inserted by an earlier attempt: delivered */
            if (ours[idx]) {
                continue;
            }
        }
        refused++;
        ls_plg_warn(j->m->ins, "a document was not inserted into %s.%s (code %d: %s)", j->db,
                    j->coll, code, msg);
    }
    bson_destroy(&reply);
    j->refused += refused;
    j->inserted += n - refused;
    return LS_OK;
}

static void mg_work(void *arg)
{
    struct mg_job *j = arg;
    struct mongo *m = j->m;
    struct ls_chunk_entries *en = ls_chunk_entries_open(j->c);
    mongoc_client_t *cl = NULL;
    mongoc_collection_t *coll = NULL;
    bson_t *docs[MG_BATCH];
    bool ours[MG_BATCH];
    size_t nd = 0;
    uint64_t ord = 0;
    const msgpack_object *e;

    j->rc = LS_ERROR;
    if (en == NULL) {
        snprintf(j->err, sizeof(j->err), "cannot read chunk %s", ls_chunk_info(j->c)->id);
        return;
    }
    cl = mongoc_client_pool_pop(m->pool);
    if (mg_prepare(j, cl) != LS_OK) {
        goto out;
    }
    coll = mongoc_client_get_collection(cl, j->db, j->coll);
    for (;;) {
        e = ls_chunk_entries_next(en);
        if (e != NULL) {
            uint64_t me = ord++;
            ls_record_clear(&j->rec);
            if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size < 2 ||
                ls_msgpack_map_to_record(&e->via.array.ptr[1], &j->rec) != LS_OK) {
                continue;
            }
            (void)ls_msgpack_event_time(&e->via.array.ptr[0], &j->rec.time);
            ours[nd] = ls_record_get(&j->rec, "_id", 3) == NULL;
            docs[nd++] = mg_doc(j, me);
            ls_arena_reset(&j->arena);
        }
        if (nd == MG_BATCH || (e == NULL && nd > 0)) {
            int rc = mg_insert(j, coll, docs, ours, nd);
            for (size_t i = 0; i < nd; i++) {
                bson_destroy(docs[i]);
            }
            nd = 0;
            if (rc != LS_OK) {
                goto out;
            }
        }
        if (e == NULL) {
            break;
        }
    }
    if (ls_chunk_entries_failed(en)) {
        snprintf(j->err, sizeof(j->err), "cannot read chunk %s", ls_chunk_info(j->c)->id);
        goto out;
    }
    j->rc = LS_OK;
out:
    for (size_t i = 0; i < nd; i++) {
        bson_destroy(docs[i]);
    }
    if (coll) {
        mongoc_collection_destroy(coll);
    }
    if (cl) {
        mongoc_client_pool_push(m->pool, cl);
    }
    ls_chunk_entries_close(en);
}

static void mg_done(void *arg)
{
    struct mg_job *j = arg;
    struct ls_instance *ins = j->m->ins;
    struct ls_chunk *c = j->c;
    int rc = j->rc;
    char err[400];

    snprintf(err, sizeof(err), "%s", j->err);
    if (rc == LS_OK) {
        ins->metrics.errors += j->refused;
    }
    ls_timefmt_destroy(j->tf);
    ls_free(j->db);
    ls_free(j->coll);
    ls_buf_release(&j->key);
    ls_record_release(&j->rec);
    ls_arena_release(&j->arena);
    ls_free(j);
    ls_output_write_done(ins, c, rc, rc == LS_OK ? NULL : err);
}

static int mg_write(struct ls_instance *ins, struct ls_chunk *c)
{
    struct mongo *m = ins->ctx;
    struct mg_job *j = ls_calloc(1, sizeof(*j));

    j->m = m;
    j->c = c;
    if (m->uri_db) {
        j->db = ls_strdup(m->uri_db);
    } else {
        j->db = ls_chunk_expand_str(c, m->database);
        if (j->db == NULL) {
            j->db = ls_strdup(m->database);
        }
    }
    j->coll = collection_name(j);
    ls_arena_init(&j->arena, 4096);
    ls_record_init(&j->rec, &j->arena);
    ls_buf_init(&j->key, 0);
    if (ls_work_submit(ins->engine, mg_work, mg_done, j) != LS_OK) {
        ls_free(j->db);
        ls_free(j->coll);
        ls_buf_release(&j->key);
        ls_record_release(&j->rec);
        ls_arena_release(&j->arena);
        ls_free(j);
        return LS_ERROR;
    }
    return LS_AGAIN;
}

static const char *const mg_buffer_defaults[] = { "chunk_limit_size", "8m", NULL };

const struct ls_plugin ls_plugin_out_mongo = {
    .name = "mongo",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "insert records into MongoDB (fluent-plugin-mongo)",
    .params = mongo_params,
    .ctx_size = sizeof(struct mongo),
    .init = mg_init,
    .destroy = mg_destroy,
    .output_flags = LS_OUT_BUFFERED,
    .default_formatter = "msgpack",
    .default_chunk_keys = "tag",
    .buffer_defaults = mg_buffer_defaults,
    .formatter_for = ls_msgpack_formatter_for,
    .write = mg_write,
};

const struct ls_plugin ls_plugin_out_mongo_replset = {
    .name = "mongo_replset",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "insert records into a MongoDB replica set (fluent-plugin-mongo)",
    .params = replset_params,
    .ctx_size = sizeof(struct mongo),
    .init = mg_init,
    .destroy = mg_destroy,
    .output_flags = LS_OUT_BUFFERED,
    .default_formatter = "msgpack",
    .default_chunk_keys = "tag",
    .buffer_defaults = mg_buffer_defaults,
    .formatter_for = ls_msgpack_formatter_for,
    .write = mg_write,
};
