/*
 * elasticsearch.c - fluent-plugin-elasticsearch's out_elasticsearch (5.x): each chunk is
 * POSTed to /_bulk as the plugin builds it, and the bulk answer is read item by item.
 *
 * The chunk holds MessagePack [time, record] entries (as out_forward's), so the event time
 * of each record is there when the bulk body is built, on a worker thread, into a memfd
 * (gzip with compression_level). Per record, as the plugin's process_message: @timestamp
 * (logstash_format or include_timestamp: from @timestamp, else time_key, else the event
 * time, ISO 8601 with time_precision digits in local time), the index (target_index_key,
 * else logstash_prefix + separator + the date in logstash_dateformat, UTC with utc_index,
 * else index_name; lowercased), the tag under tag_key with include_tag_key, _type by the
 * server's major version (type_name up to 6, _doc on 7 or none with suppress_type_name,
 * none from 8), _id / _parent / routing from id_key, parent_key and routing_key (record
 * accessors), pipeline, remove_keys; then the action line for write_operation index,
 * create, update or upsert (the last three only for records with an _id).
 *
 * The answer, as the plugin's error handler: 200/201 (and 409 for create) are done; 400, an
 * error given as a string, an error without a type and json_parse_exception go to @ERROR;
 * a type in unrecoverable_error_types makes the chunk unrecoverable (secondary or
 * backup); anything else (429, 5xx...) is retried. Where the plugin emits the records to
 * retry as new events (through the filters again, and lost if fluentd stops before they
 * are buffered), logship keeps them in the chunk: the chunk's state records which records
 * are done, and the retry, with the buffer's backoff, sends only the others. Without an
 * id_key a crash between the bulk's success and that state can still send a record twice
 * (as fluentd can); with one, a retry overwrites the same document.
 *
 * The server's version comes from GET / before the first bulk (verify_es_version_at_startup,
 * default true) instead of at start: a server that is down then delays the chunk, not the
 * agent's start. Templates, ILM, rollover, data streams and Elastic Cloud ids are not
 * supported (configuration errors naming the line).
 *
 * `@type opensearch` (fluent-plugin-opensearch, a fork of the same plugin) is this output with
 * that plugin's differences: _type _doc on OpenSearch 1 and none from 2 (type_name is not
 * used), routing always as "routing", its names for the version and 400 parameters,
 * unrecoverable_record_types and emit_error_label_event. `@type aws-elasticsearch-service`
 * (fluent-plugin-aws-elasticsearch-service) is the elasticsearch output sending to its
 * <endpoint> URLs with every request signed by AWS SigV4, as is opensearch with an
 * <endpoint> (es_aws.c).
 */
#include "plugin.h"
#include "log.h"
#include "http.h"
#include "json.h"
#include "msgpack.h"
#include "compress.h"
#include "param.h"
#include "timefmt.h"
#include "es_aws.h"
#include "ordset.h"

/* the chunk state's prefix for the records done (kept from the first version) */
#define ES_DONE "es-done "

#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { OP_INDEX, OP_CREATE, OP_UPDATE, OP_UPSERT };
enum { CL_NONE, CL_SPEED, CL_BEST, CL_DEFAULT };

struct es {
    char *host;
    int64_t port;
    char *user;
    char *password;
    char *path;
    int scheme;                     /* 0 http, 1 https */
    char *hosts;
    char *target_index_key;
    char *time_key_format;
    int64_t time_precision;
    bool include_timestamp;
    bool logstash_format;
    char *logstash_prefix;
    char *logstash_prefix_separator;
    char *logstash_dateformat;
    bool utc_index;
    char *type_name;
    bool suppress_type_name;
    char *index_name;
    char *id_key;
    int write_operation;
    char *parent_key;
    char *routing_key;
    double request_timeout;
    char *time_key;
    bool time_key_exclude_timestamp;
    bool ssl_verify;
    char *client_key;
    char *client_cert;
    char *client_key_pass;
    char *ca_file;
    char *remove_keys;
    char *remove_keys_on_update;
    char *remove_keys_on_update_key;
    bool include_tag_key;
    char *tag_key;
    char *pipeline;
    bool emit_error_for_missing_id;
    int content_type;
    bool include_index_in_url;
    struct ls_strv unrecoverable_error_types;
    struct ls_strv unrecoverable_record_types;  /* opensearch's parameter */
    bool emit_error_label_event;                /* opensearch's parameter */
    bool verify_es_version_at_startup;
    int64_t default_elasticsearch_version;
    bool log_es_400_reason;
    struct ls_kvv custom_headers;
    char *api_key;
    bool suppress_doc_wrap;
    char *bulk_threshold_text;
    int compression_level;
    char *retry_tag;

    /* derived */
    struct ls_instance *ins;
    bool opensearch;                /* @type opensearch (fluent-plugin-opensearch) */
    struct es_aws *aws;             /* <endpoint>s: requests signed with SigV4 (es_aws.c) */
    int64_t bulk_message_request_threshold;     /* <= 0: one request per chunk */
    char **bases;                   /* "scheme://host:port[/path]" per host */
    size_t nbases, next_base;
    struct ls_buf headers;          /* auth and custom headers, ls_http_hdr_add lines */
    struct ls_strv rm_keys, rm_update_keys;
    struct ls_accessor id_acc, parent_acc, routing_acc, target_acc;
    bool have_id, have_parent, have_routing, have_target;
    int version;                    /* the server's major version, 0 until known */
    bool asking_version;
    uint64_t time_errors;
    double time_warned_at;
};

#define F(f) offsetof(struct es, f)

/* the parameters both plugins have (fluent-plugin-opensearch forked the elasticsearch one) */
#define ES_COMMON_PARAMS \
    { "host", LS_P_STR, "localhost", 0, F(host), "Elasticsearch host", NULL, NULL, 0, 0 },         \
    { "port", LS_P_INT, "9200", 0, F(port), "its port", NULL, NULL, 1, 65535 },                    \
    { "hosts", LS_P_STR, NULL, LS_PF_NULLABLE, F(hosts),                                           \
      "several servers: host:port,host:port or URLs (https://user:pass@host:port/path), used "     \
      "in turn", NULL, NULL, 0, 0 },                                                               \
    { "scheme", LS_P_ENUM, "http", 0, F(scheme), "http or https", NULL, "http|https", 0, 0 },      \
    { "path", LS_P_STR, NULL, LS_PF_NULLABLE, F(path), "path prefix of the REST API", NULL,        \
      NULL, 0, 0 },                                                                                \
    { "user", LS_P_STR, NULL, LS_PF_NULLABLE, F(user), "basic authentication user", NULL, NULL,    \
      0, 0 },                                                                                      \
    { "password", LS_P_SECRET, NULL, LS_PF_NULLABLE, F(password), "its password", NULL, NULL,      \
      0, 0 },                                                                                      \
    { "api_key", LS_P_SECRET, NULL, LS_PF_NULLABLE, F(api_key),                                    \
      "Authorization: ApiKey base64(api_key)", NULL, NULL, 0, 0 },                                 \
    { "index_name", LS_P_STR, "fluentd", 0, F(index_name),                                         \
      "index (placeholders ${tag}, ${key}, strftime with a time chunk key)", NULL, NULL, 0, 0 },   \
    { "logstash_format", LS_P_BOOL, "false", 0, F(logstash_format),                                \
      "index per day: logstash_prefix-date, and @timestamp", NULL, NULL, 0, 0 },                   \
    { "logstash_prefix", LS_P_STR, "logstash", 0, F(logstash_prefix), "index name prefix",         \
      NULL, NULL, 0, 0 },                                                                          \
    { "logstash_prefix_separator", LS_P_STR, "-", 0, F(logstash_prefix_separator),                 \
      "between prefix and date", NULL, NULL, 0, 0 },                                               \
    { "logstash_dateformat", LS_P_STR, "%Y.%m.%d", 0, F(logstash_dateformat),                      \
      "strftime format of the index date", NULL, NULL, 0, 0 },                                     \
    { "utc_index", LS_P_BOOL, "true", 0, F(utc_index), "the index date in UTC (false: local)",     \
      NULL, NULL, 0, 0 },                                                                          \
    { "include_timestamp", LS_P_BOOL, "false", 0, F(include_timestamp),                            \
      "add @timestamp without logstash_format", NULL, NULL, 0, 0 },                                \
    { "time_key", LS_P_STR, NULL, LS_PF_NULLABLE, F(time_key),                                     \
      "field holding the time for @timestamp and the index date", NULL, NULL, 0, 0 },              \
    { "time_key_format", LS_P_STR, NULL, LS_PF_NULLABLE, F(time_key_format),                       \
      "strptime format of time_key (unset: flexible)", NULL, NULL, 0, 0 },                         \
    { "time_key_exclude_timestamp", LS_P_BOOL, "false", 0, F(time_key_exclude_timestamp),          \
      "with time_key: no @timestamp", NULL, NULL, 0, 0 },                                          \
    { "time_precision", LS_P_INT, "9", 0, F(time_precision),                                       \
      "fraction digits of @timestamp", NULL, NULL, 0, 9 },                                         \
    { "target_index_key", LS_P_STR, NULL, LS_PF_NULLABLE, F(target_index_key),                     \
      "field (a.b for nested) naming the index, removed from the record", NULL, NULL, 0, 0 },      \
    { "suppress_type_name", LS_P_BOOL, "false", 0, F(suppress_type_name),                          \
      "no _type on Elasticsearch 7", NULL, NULL, 0, 0 },                                           \
    { "include_tag_key", LS_P_BOOL, "false", 0, F(include_tag_key), "add the tag", NULL, NULL,     \
      0, 0 },                                                                                      \
    { "tag_key", LS_P_STR, "tag", 0, F(tag_key), "key of the tag", NULL, NULL, 0, 0 },             \
    { "id_key", LS_P_STR, NULL, LS_PF_NULLABLE, F(id_key), "field giving _id", NULL, NULL, 0,      \
      0 },                                                                                         \
    { "parent_key", LS_P_STR, NULL, LS_PF_NULLABLE, F(parent_key), "field giving _parent",         \
      NULL, NULL, 0, 0 },                                                                          \
    { "routing_key", LS_P_STR, NULL, LS_PF_NULLABLE, F(routing_key), "field giving routing",       \
      NULL, NULL, 0, 0 },                                                                          \
    { "remove_keys", LS_P_STR, NULL, LS_PF_NULLABLE, F(remove_keys),                               \
      "fields removed before sending (comma-separated)", NULL, NULL, 0, 0 },                       \
    { "write_operation", LS_P_ENUM, "index", 0, F(write_operation),                                \
      "index, create, update or upsert (the last three need id_key)", NULL,                        \
      "index|create|update|upsert", 0, 0 },                                                        \
    { "remove_keys_on_update", LS_P_STR, "", 0, F(remove_keys_on_update),                          \
      "fields left out of an update's doc (comma-separated)", NULL, NULL, 0, 0 },                  \
    { "remove_keys_on_update_key", LS_P_STR, NULL, LS_PF_NULLABLE,                                 \
      F(remove_keys_on_update_key), "field listing them per record", NULL, NULL, 0, 0 },           \
    { "suppress_doc_wrap", LS_P_BOOL, "false", 0, F(suppress_doc_wrap),                            \
      "update/upsert body without {\"doc\": ...}", NULL, NULL, 0, 0 },                             \
    { "emit_error_for_missing_id", LS_P_BOOL, "false", 0, F(emit_error_for_missing_id),            \
      "create/update/upsert without an _id: to @ERROR (false: dropped)", NULL, NULL, 0, 0 },       \
    { "pipeline", LS_P_STR, NULL, LS_PF_NULLABLE, F(pipeline), "ingest pipeline", NULL, NULL,      \
      0, 0 },                                                                                      \
    { "include_index_in_url", LS_P_BOOL, "false", 0, F(include_index_in_url),                      \
      "POST /<index_name>/_bulk (the action lines still name each record's index)", NULL,          \
      NULL, 0, 0 },                                                                                \
    { "content_type", LS_P_ENUM, "application/json", 0, F(content_type), "of the bulk body",       \
      NULL, "application/json|application/x-ndjson", 0, 0 },                                       \
    { "compression_level", LS_P_ENUM, "no_compression", 0, F(compression_level),                   \
      "gzip the body (Content-Encoding: gzip) unless no_compression", NULL,                        \
      "no_compression|best_speed|best_compression|default_compression", 0, 0 },                    \
    { "bulk_message_request_threshold", LS_P_STR, "-1", 0, F(bulk_threshold_text),                 \
      "split a chunk's bulk into requests of about this many bytes (a size; -1: one request)",     \
      NULL, NULL, 0, 0 },                                                                          \
    { "request_timeout", LS_P_TIME, "5", 0, F(request_timeout), "one request", NULL, NULL, 0,      \
      1e6 },                                                                                       \
    { "ssl_verify", LS_P_BOOL, "true", 0, F(ssl_verify), "check the server's certificate",         \
      NULL, NULL, 0, 0 },                                                                          \
    { "ca_file", LS_P_STR, NULL, LS_PF_NULLABLE, F(ca_file), "CA certificates", NULL, NULL, 0,     \
      0 },                                                                                         \
    { "client_cert", LS_P_STR, NULL, LS_PF_NULLABLE, F(client_cert), "client certificate",         \
      NULL, NULL, 0, 0 },                                                                          \
    { "client_key", LS_P_STR, NULL, LS_PF_NULLABLE, F(client_key), "its key", NULL, NULL, 0,       \
      0 },                                                                                         \
    { "client_key_pass", LS_P_SECRET, NULL, LS_PF_NULLABLE, F(client_key_pass),                    \
      "its passphrase", NULL, NULL, 0, 0 },                                                        \
    { "custom_headers", LS_P_HASH, NULL, 0, F(custom_headers), "more request headers", NULL,       \
      NULL, 0, 0 },                                                                                \
    { "verify_es_version_at_startup", LS_P_BOOL, "true", 0, F(verify_es_version_at_startup),       \
      "ask the server's version (GET /) before the first bulk", NULL, NULL, 0, 0 },                \
    { "retry_tag", LS_P_STR, NULL, LS_PF_NULLABLE, F(retry_tag),                                   \
      "accepted; records to retry stay in their chunk instead of being emitted again", NULL,       \
      NULL, 0, 0 },                                                                                \
    { "reload_connections", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0,                                    \
      "accepted (no sniffing: hosts are used in turn)", NULL, NULL, 0, 0 },                        \
    { "reload_on_failure", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL, 0, 0 },     \
    { "reload_after", LS_P_INT, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL, 0, 0 },           \
    { "resurrect_after", LS_P_TIME, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL, 0, 0 },       \
    { "reconnect_on_error", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0,                                    \
      "accepted (a failed connection is made again anyway)", NULL, NULL, 0, 0 },                   \
    { "with_transporter_log", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL, 0,       \
      0 },                                                                                         \
    { "http_backend", LS_P_STR, NULL, LS_PF_NO_STORE, 0, "accepted (libcurl)", NULL, NULL, 0,      \
      0 },                                                                                         \
    { "http_backend_excon_nonblock", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0, "accepted", NULL,         \
      NULL, 0, 0 },                                                                                \
    { "prefer_oj_serializer", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL, 0,       \
      0 },                                                                                         \
    { "validate_client_version", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL, 0,    \
      0 },                                                                                         \
    { "catch_transport_exception_on_retry", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0, "accepted",        \
      NULL, NULL, 0, 0 },                                                                          \
    { "ssl_version", LS_P_STR, NULL, LS_PF_NO_STORE, 0, "accepted (TLS 1.2 or newer)", NULL,       \
      NULL, 0, 0 },                                                                                \
    { "ssl_min_version", LS_P_STR, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL, 0, 0 },        \
    { "ssl_max_version", LS_P_STR, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL, 0, 0 },        \
    { "time_parse_error_tag", LS_P_STR, NULL, LS_PF_NO_STORE, 0,                                   \
      "accepted (a time_key that does not parse is logged, the event time used)", NULL, NULL,      \
      0, 0 },                                                                                      \
    { "sniffer_class_name", LS_P_STR, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL, 0, 0 },     \
    { "selector_class_name", LS_P_STR, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL, 0, 0 },    \
    { "truncate_caches_interval", LS_P_TIME, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL,      \
      0, 0 },                                                                                      \
    { "utc_index_placeholder", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL, 0,      \
      0 }

static const struct ls_param es_params[] = {
    ES_COMMON_PARAMS,
    { "type_name", LS_P_STR, "fluentd", 0, F(type_name),
      "_type up to Elasticsearch 6 (7: _doc, 8: none)", NULL, NULL, 0, 0 },
    { "unrecoverable_error_types", LS_P_ARRAY,
      "[\"out_of_memory_error\",\"es_rejected_execution_exception\"]", 0,
      F(unrecoverable_error_types), "item error types that make the chunk unrecoverable",
      NULL, NULL, 0, 0 },
    { "default_elasticsearch_version", LS_P_INT, "5", 0, F(default_elasticsearch_version),
      "the version assumed without asking", NULL, NULL, 1, 100 },
    { "log_es_400_reason", LS_P_BOOL, "false", 0, F(log_es_400_reason),
      "put the server's reason in a 400's error event", NULL, NULL, 0, 0 },
    { "max_retry_get_es_version", LS_P_INT, NULL, LS_PF_NO_STORE, 0,
      "accepted (asking is retried with the chunk)", NULL, NULL, 0, 0 },
    { "fail_on_detecting_es_version_retry_exceed", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0,
      "accepted", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static const struct ls_param os_params[] = {
    ES_COMMON_PARAMS,
    { "type_name", LS_P_STR, "_doc", 0, F(type_name),
      "accepted; _type is _doc on OpenSearch 1, none from 2", NULL, NULL, 0, 0 },
    { "unrecoverable_error_types", LS_P_ARRAY,
      "[\"out_of_memory_error\",\"rejected_execution_exception\"]", 0,
      F(unrecoverable_error_types), "item error types that make the chunk unrecoverable",
      NULL, NULL, 0, 0 },
    { "unrecoverable_record_types", LS_P_ARRAY, "[\"json_parse_exception\"]", 0,
      F(unrecoverable_record_types), "item error types whose record goes to @ERROR", NULL,
      NULL, 0, 0 },
    { "emit_error_label_event", LS_P_BOOL, "true", 0, F(emit_error_label_event),
      "send rejected records to @ERROR (false: log and drop them)", NULL, NULL, 0, 0 },
    { "default_opensearch_version", LS_P_INT, "1", 0, F(default_elasticsearch_version),
      "the version assumed without asking", NULL, NULL, 1, 100 },
    { "log_os_400_reason", LS_P_BOOL, "false", 0, F(log_es_400_reason),
      "put the server's reason in a 400's error event", NULL, NULL, 0, 0 },
    { "max_retry_get_os_version", LS_P_INT, NULL, LS_PF_NO_STORE, 0,
      "accepted (asking is retried with the chunk)", NULL, NULL, 0, 0 },
    { "fail_on_detecting_os_version_retry_exceed", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0,
      "accepted", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

/* what the plugin can do and logship does not: refused, naming the line */
static const char *const es_refused[] = {
    "template_name", "template_file", "templates", "customize_template", "rollover_index",
    "deflector_alias", "enable_ilm", "ilm_policy_id", "ilm_policy", "ilm_policies",
    "cloud_id", "cloud_auth", "target_type_key", "target_index_affinity", "flatten_hashes",
    "ignore_exceptions", NULL
};

/* ---- configuration ---- */

static char *es_base(const char *scheme, const char *host, int64_t port, const char *path)
{
    bool v6 = strchr(host, ':') != NULL && host[0] != '[';

    return ls_asprintf("%s://%s%s%s:%lld%s%s", scheme, v6 ? "[" : "", host, v6 ? "]" : "",
                       (long long)port, path && path[0] && path[0] != '/' ? "/" : "",
                       path ? path : "");
}

/* The plugin's get_connection_options: "host:port" entries, or URLs. */
static int es_hosts(struct es *o, struct ls_conf_section *sec, char *err, size_t errlen)
{
    const char *scheme = o->scheme ? "https" : "http";
    char *list, *save = NULL, *tok;

    if (o->hosts == NULL) {
        o->bases = ls_calloc(1, sizeof(char *));
        o->bases[o->nbases++] = es_base(scheme, o->host, o->port, o->path);
        return LS_OK;
    }
    list = ls_strdup(o->hosts);
    for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *h = tok, *colon;
        while (*h == ' ') {
            h++;
        }
        if (*h == '\0') {
            continue;
        }
        o->bases = ls_realloc(o->bases, (o->nbases + 1) * sizeof(char *));
        if (strstr(h, "://")) {
            /* a URL: user:pass@ go to a header of their own (curl would take them too, but
             * one Authorization line for all hosts is what the plugin's user/password do) */
            const char *at = strchr(h, '@'), *rest = strstr(h, "://") + 3;
            if (at && at > rest) {
                ls_conf_param_error(sec, "hosts", err, errlen,
                                    "hosts: credentials in a URL are not supported; use user "
                                    "and password");
                ls_free(list);
                return LS_ERROR;
            }
            o->bases[o->nbases++] = ls_strdup(h);
            if (o->bases[o->nbases - 1][strlen(h) - 1] == '/') {
                o->bases[o->nbases - 1][strlen(h) - 1] = '\0';
            }
        } else {
            int64_t port = o->port;
            colon = strrchr(h, ':');
            if (colon && strchr(h, ':') == colon) {
                *colon = '\0';
                if (ls_parse_int(colon + 1, &port) != LS_OK) {
                    ls_conf_param_error(sec, "hosts", err, errlen, "hosts: bad port in '%s'", h);
                    ls_free(list);
                    return LS_ERROR;
                }
            }
            o->bases[o->nbases++] = es_base(scheme, h, port, o->path);
        }
    }
    ls_free(list);
    if (o->nbases == 0) {
        ls_conf_param_error(sec, "hosts", err, errlen, "hosts is empty");
        return LS_ERROR;
    }
    return LS_OK;
}

/* The plugin's convert_compat_id_key: a dotted key is a path into nested objects. */
static int es_acc(struct ls_accessor *acc, const char *key, char *err, size_t errlen)
{
    char *spec = (strchr(key, '.') && strncmp(key, "$[", 2) != 0 && strncmp(key, "$.", 2) != 0)
                     ? ls_asprintf("$.%s", key) : ls_strdup(key);
    int rc = ls_accessor_compile(acc, spec, err, errlen);

    ls_free(spec);
    return rc;
}

static bool has_placeholder(const char *s)
{
    return s && (strstr(s, "${") || strchr(s, '%'));
}

static int es_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                   size_t errlen)
{
    struct es *o = ins->ctx;
    struct ls_conf_section *bs = ls_conf_child(sec, "buffer");
    char msg[300];
    size_t i;

    o->ins = ins;
    o->opensearch = strcmp(ins->plugin->name, "opensearch") == 0;
    if (!o->opensearch) {
        /* fixed in the elasticsearch plugin */
        o->emit_error_label_event = true;
        o->unrecoverable_record_types.v = ls_calloc(1, sizeof(char *));
        o->unrecoverable_record_types.v[0] = ls_strdup("json_parse_exception");
        o->unrecoverable_record_types.n = 1;
    }
    ls_buf_init(&o->headers, 0);
    if (strcmp(ins->plugin->name, "aws-elasticsearch-service") == 0 ||
        (o->opensearch && ls_conf_child(sec, "endpoint"))) {
        if (es_aws_init(sec, o->opensearch, &o->aws, &o->bases, &o->nbases, err, errlen) != LS_OK) {
            return LS_ERROR;
        }
    }
    for (i = 0; es_refused[i]; i++) {
        struct ls_conf_param *p = ls_conf_get_param(sec, es_refused[i]);
        if (p) {
            snprintf(err, errlen, "%s:%d: '%s' is not supported by logship's elasticsearch "
                     "output (index templates, ILM, rollover and Elastic Cloud are not)",
                     p->file, p->line, p->key);
            return LS_ERROR;
        }
    }
    if (o->user && o->password == NULL) {
        ls_conf_param_error(sec, "user", err, errlen, "`password` must be present if `user` "
                            "is present");
        return LS_ERROR;
    }
    /* the plugin's rule: the tag (or _index) must be a chunk key unless a name has a
     * placeholder */
    if (bs && bs->arg[0] && !strstr(bs->arg, "tag") && !strstr(bs->arg, "_index") &&
        !has_placeholder(o->index_name) && !has_placeholder(o->logstash_prefix) &&
        !has_placeholder(o->host) && !strstr(o->logstash_dateformat, "${")) {
        snprintf(err, errlen, "%s:%d: 'tag' or '_index' in chunk_keys is required.", bs->file,
                 bs->line);
        return LS_ERROR;
    }
    if (o->aws == NULL && es_hosts(o, sec, err, errlen) != LS_OK) {
        return LS_ERROR;
    }
    if (o->bulk_threshold_text[0] != '-' &&
        ls_parse_size(o->bulk_threshold_text, &o->bulk_message_request_threshold) != LS_OK) {
        ls_conf_param_error(sec, "bulk_message_request_threshold", err, errlen,
                            "bulk_message_request_threshold: not a size: '%s'",
                            o->bulk_threshold_text);
        return LS_ERROR;
    }
    if (o->user) {
        char *up = ls_asprintf("%s:%s", o->user, o->password);
        char *b = ls_malloc(4 * ((strlen(up) + 2) / 3) + 1), *line;
        ls_base64((const unsigned char *)up, strlen(up), b);
        line = ls_asprintf("Authorization: Basic %s", b);
        ls_http_hdr_add(&o->headers, line);
        ls_free(line);
        ls_free(b);
        ls_free(up);
    }
    if (o->api_key) {
        char *b = ls_malloc(4 * ((strlen(o->api_key) + 2) / 3) + 1), *line;
        ls_base64((const unsigned char *)o->api_key, strlen(o->api_key), b);
        line = ls_asprintf("Authorization: ApiKey %s", b);
        ls_http_hdr_add(&o->headers, line);
        ls_free(line);
        ls_free(b);
    }
    ls_http_hdr_add_kvv(&o->headers, &o->custom_headers);
    if (o->remove_keys) {
        (void)ls_parse_array(o->remove_keys, &o->rm_keys);
    }
    (void)ls_parse_array(o->remove_keys_on_update, &o->rm_update_keys);
    if (o->id_key) {
        if (es_acc(&o->id_acc, o->id_key, msg, sizeof(msg)) != LS_OK) {
            ls_conf_param_error(sec, "id_key", err, errlen, "%s", msg);
            return LS_ERROR;
        }
        o->have_id = true;
    }
    if (o->parent_key) {
        if (es_acc(&o->parent_acc, o->parent_key, msg, sizeof(msg)) != LS_OK) {
            ls_conf_param_error(sec, "parent_key", err, errlen, "%s", msg);
            return LS_ERROR;
        }
        o->have_parent = true;
    }
    if (o->routing_key) {
        if (es_acc(&o->routing_acc, o->routing_key, msg, sizeof(msg)) != LS_OK) {
            ls_conf_param_error(sec, "routing_key", err, errlen, "%s", msg);
            return LS_ERROR;
        }
        o->have_routing = true;
    }
    if (o->target_index_key) {
        char *spec = strchr(o->target_index_key, '.') ? ls_asprintf("$.%s", o->target_index_key)
                                                     : ls_strdup(o->target_index_key);
        int rc = ls_accessor_compile(&o->target_acc, spec, msg, sizeof(msg));
        ls_free(spec);
        if (rc != LS_OK) {
            ls_conf_param_error(sec, "target_index_key", err, errlen, "%s", msg);
            return LS_ERROR;
        }
        o->have_target = true;
    }
    if (o->time_key_format) {
        struct ls_timefmt *tf = ls_timefmt_create(o->time_key_format, "UTC", msg, sizeof(msg));
        if (tf == NULL) {
            ls_conf_param_error(sec, "time_key_format", err, errlen, "%s", msg);
            return LS_ERROR;
        }
        ls_timefmt_destroy(tf);
    }
    if (o->retry_tag) {
        ls_plg_warn(ins, "retry_tag: records that Elasticsearch asks to retry stay in their "
                    "chunk and are sent again from it, not emitted under '%s'", o->retry_tag);
    }
    if (o->compression_level != CL_NONE &&
        ls_compress_load(LS_COMPRESS_GZIP, err, errlen) != LS_OK) {
        return LS_ERROR;
    }
    o->version = o->verify_es_version_at_startup ? 0 : (int)o->default_elasticsearch_version;
    return LS_OK;
}

/* ---- one chunk ---- */

struct es_job {
    struct es *o;
    struct ls_chunk *c;
    int version;
    const char *base;
    /* placeholders expanded for this chunk */
    char *prefix, *dateformat, *index_name, *type_name, *pipeline;
    const char *tag;
    struct ls_ordset done;
    /* reading the chunk */
    struct ls_chunk_entries *en;
    uint64_t ordinal;               /* of the next entry */
    uint64_t total;                 /* entries seen */
    /* this request */
    int fd;
    uint64_t size;
    uint64_t *sent;                 /* ordinals of the bulk's items, in order */
    size_t nsent, capsent;
    uint64_t *skipped;              /* ordinals done without a request (no _id) */
    size_t nskipped, capskipped;
    struct ls_buf out;              /* bulk lines not yet handed to the compressor */
    size_t ooff;
    uint64_t bulk_bytes;
    bool part_full;                 /* bulk_message_request_threshold reached */
    struct ls_arena arena;
    struct ls_record rec;
    struct ls_buf tmp;
    struct ls_timefmt *tf;          /* time_key_format, made at the first string time */
    uint64_t time_errors;
    int rc;
    char err[300];
    char *url;
    size_t ep;                      /* index of base in o->bases (its <endpoint>) */
    struct ls_buf sig;              /* SigV4 header lines for this request */
    /* the answer, for the loop thread */
    struct ls_buf body;
    /* records for @ERROR, as [time, record] msgpack with their reasons */
    uint64_t *err_ord;
    char **err_why;
    size_t nerr;
    struct ls_buf err_entries;
    size_t *err_off, *err_len;
};

static void job_push(uint64_t **v, size_t *n, size_t *cap, uint64_t x)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        *v = ls_realloc(*v, *cap * sizeof(uint64_t));
    }
    (*v)[(*n)++] = x;
}

/* Ruby's DateTime#iso8601(n) of an instant in the given offset (seconds east). */
static void iso8601(struct ls_buf *b, const struct ls_time *t, int64_t prec, bool local)
{
    struct tm tm;
    time_t s = (time_t)t->sec;
    long off;
    char frac[16] = "";

    if (local) {
        localtime_r(&s, &tm);
        off = tm.tm_gmtoff;
    } else {
        gmtime_r(&s, &tm);
        off = 0;
    }
    if (prec > 0) {
        char ns[16];
        snprintf(ns, sizeof(ns), "%09d", (int)t->nsec);
        snprintf(frac, sizeof(frac), ".%.*s", (int)prec, ns);
    }
    ls_buf_printf(b, "%04d-%02d-%02dT%02d:%02d:%02d%s%c%02ld:%02ld", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac,
                  off < 0 ? '-' : '+', labs(off) / 3600, labs(off) % 3600 / 60);
}

/* The time of a time_key / @timestamp value (DateTime.parse or time_key_format). */
static bool es_value_time(struct es_job *j, const struct ls_value *v, struct ls_time *t,
                          bool *numeric)
{
    *numeric = false;
    if (v->type == LS_V_INT || v->type == LS_V_FLOAT) {
        double f = v->type == LS_V_INT ? (double)v->u.i : v->u.f;
        t->sec = (int64_t)f;
        t->nsec = (int32_t)((f - (double)t->sec) * 1e9);
        *numeric = true;
        return true;
    }
    if (v->type != LS_V_STR) {
        return false;
    }
    /* compiled once per chunk (on its worker: a timefmt is one thread's); DateTime.parse
     * takes a time without an offset as UTC */
    if (j->tf == NULL) {
        char e[128];
        j->tf = ls_timefmt_create(j->o->time_key_format, "UTC", e, sizeof(e));
        if (j->tf == NULL) {
            return false;
        }
    }
    return ls_timefmt_parse(j->tf, v->u.s.p, v->u.s.len, t) == LS_OK;
}

static void lower(char *s)
{
    for (; *s; s++) {
        if (*s >= 'A' && *s <= 'Z') {
            *s = (char)(*s - 'A' + 'a');
        }
    }
}

static void put_meta_str(struct ls_buf *b, bool *first, const char *k, const char *v, size_t n)
{
    ls_buf_printf(b, "%s\"%s\":", *first ? "" : ",", k);
    ls_json_put_str(b, v, n);
    *first = false;
}

static void put_meta_value(struct ls_buf *b, bool *first, const char *k, const struct ls_value *v)
{
    ls_buf_printf(b, "%s\"%s\":", *first ? "" : ",", k);
    ls_json_put_value(b, v);
    *first = false;
}

/*
 * One entry into bulk lines (j->out): process_message, then append_record_to_messages.
 * Returns 1 appended, 0 skipped (no _id for create/update/upsert), -1 bad entry.
 */
static int es_entry(struct es_job *j, const msgpack_object *entry)
{
    struct es *o = j->o;
    struct ls_record *rec = &j->rec;
    struct ls_time et, dt;
    struct ls_value v;
    struct ls_field *f;
    char *index;
    bool dt_local = true, first = true;
    size_t i;
    static const char *const ops[] = { "index", "create", "update", "update" };

    if (entry->type != MSGPACK_OBJECT_ARRAY || entry->via.array.size < 2 ||
        !ls_msgpack_event_time(&entry->via.array.ptr[0], &et)) {
        return -1;
    }
    ls_arena_reset(&j->arena);
    ls_record_clear(rec);
    if (ls_msgpack_map_to_record(&entry->via.array.ptr[1], rec) != LS_OK) {
        return -1;      /* the plugin skips a record that is not a Hash */
    }
    rec->time = et;
    if (o->logstash_format || o->include_timestamp) {
        bool numeric;
        if ((f = ls_record_get(rec, "@timestamp", 10)) != NULL) {
            if (es_value_time(j, &f->v, &dt, &numeric)) {
                dt_local = numeric;
            } else {
                j->time_errors++;
                dt = et;
            }
        } else if (o->time_key && (f = ls_record_get(rec, o->time_key, strlen(o->time_key)))) {
            if (es_value_time(j, &f->v, &dt, &numeric)) {
                dt_local = numeric;
            } else {
                j->time_errors++;
                dt = et;
            }
            if (!o->time_key_exclude_timestamp) {
                ls_buf_reset(&j->tmp);
                iso8601(&j->tmp, &dt, o->time_precision, dt_local);
                v = ls_vstr(ls_arena_memdup(&j->arena, j->tmp.p, j->tmp.len), j->tmp.len);
                ls_record_set(rec, "@timestamp", 10, &v);
            }
        } else {
            dt = et;
            ls_buf_reset(&j->tmp);
            iso8601(&j->tmp, &dt, o->time_precision, true);
            v = ls_vstr(ls_arena_memdup(&j->arena, j->tmp.p, j->tmp.len), j->tmp.len);
            ls_record_set(rec, "@timestamp", 10, &v);
        }
    }
    index = NULL;
    if (o->have_target && ls_accessor_get(&o->target_acc, rec, &v) && v.type != LS_V_NULL) {
        size_t n;
        const char *s = ls_value_to_text(&j->arena, &v, &n);
        index = ls_arena_memdup(&j->arena, s, n);
        ls_accessor_del(&o->target_acc, rec);
    } else if (o->logstash_format) {
        struct tm tm;
        time_t s = (time_t)dt.sec;
        char date[256];
        if (o->utc_index || !dt_local) {
            gmtime_r(&s, &tm);
        } else {
            localtime_r(&s, &tm);
        }
        /* logstash_dateformat is the user's strftime format (Ruby's and C's agree on the
         * usual %Y %m %d %H %j %U) */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        if (strftime(date, sizeof(date), j->dateformat, &tm) == 0) {
            date[0] = '\0';
        }
#pragma GCC diagnostic pop
        ls_buf_reset(&j->tmp);
        ls_buf_printf(&j->tmp, "%s%s%s", j->prefix, o->logstash_prefix_separator, date);
        index = ls_arena_memdup(&j->arena, j->tmp.p, j->tmp.len);
    } else {
        index = ls_arena_memdup(&j->arena, j->index_name, strlen(j->index_name));
    }
    lower(index);
    if (o->include_tag_key) {
        v = ls_vstr(j->tag, strlen(j->tag));
        ls_record_set(rec, o->tag_key, strlen(o->tag_key), &v);
    }
    /* the action line: {"op":{"_index":..,"_type":..,"pipeline":..,"_id":..}} */
    ls_buf_reset(&j->tmp);
    ls_buf_printf(&j->tmp, "{\"%s\":{", ops[o->write_operation]);
    put_meta_str(&j->tmp, &first, "_index", index, strlen(index));
    if (j->type_name) {
        put_meta_str(&j->tmp, &first, "_type", j->type_name, strlen(j->type_name));
    } else if (!o->opensearch && j->version < 8) {
        /* suppress_type_name on 7: the plugin sets the key to nil, and nil is written */
        ls_buf_printf(&j->tmp, ",\"_type\":null");
    }
    if (j->pipeline) {
        put_meta_str(&j->tmp, &first, "pipeline", j->pipeline, strlen(j->pipeline));
    }
    {
        bool has_id = false;
        if (o->have_id && ls_accessor_get(&o->id_acc, rec, &v) && v.type != LS_V_NULL &&
            !(v.type == LS_V_BOOL && !v.u.b)) {
            put_meta_value(&j->tmp, &first, "_id", &v);
            has_id = true;
        }
        if (o->have_parent && ls_accessor_get(&o->parent_acc, rec, &v) && v.type != LS_V_NULL &&
            !(v.type == LS_V_BOOL && !v.u.b)) {
            put_meta_value(&j->tmp, &first, "_parent", &v);
        }
        if (o->have_routing && ls_accessor_get(&o->routing_acc, rec, &v) &&
            v.type != LS_V_NULL && !(v.type == LS_V_BOOL && !v.u.b)) {
            put_meta_value(&j->tmp, &first,
                           o->opensearch || j->version >= 7 ? "routing" : "_routing", &v);
        }
        for (i = 0; i < o->rm_keys.n; i++) {
            ls_record_del(rec, o->rm_keys.v[i], strlen(o->rm_keys.v[i]));
        }
        if (o->write_operation != OP_INDEX && !has_id) {
            return 0;
        }
    }
    ls_buf_append(&j->tmp, "}}\n", 3);
    ls_buf_append(&j->out, j->tmp.p, j->tmp.len);
    if (o->write_operation == OP_UPDATE || o->write_operation == OP_UPSERT) {
        /* update_body: {"doc": record less remove_keys_on_update[, "doc_as_upsert": true]} */
        struct ls_strv keys = o->rm_update_keys;
        struct ls_strv own = { NULL, 0 };
        struct ls_record upd;
        bool same;
        if (o->remove_keys_on_update_key &&
            (f = ls_record_get(rec, o->remove_keys_on_update_key,
                               strlen(o->remove_keys_on_update_key))) != NULL) {
            if (f->v.type == LS_V_STR) {
                char *s = ls_strndup(f->v.u.s.p, f->v.u.s.len);
                (void)ls_parse_array(s, &own);
                ls_free(s);
                keys = own;
            }
            ls_record_del(rec, o->remove_keys_on_update_key,
                          strlen(o->remove_keys_on_update_key));
        }
        ls_record_init(&upd, &j->arena);
        for (i = 0; i < rec->nfields; i++) {
            size_t k;
            bool drop = false;
            for (k = 0; k < keys.n; k++) {
                if (strlen(keys.v[k]) == rec->fields[i].key_len &&
                    memcmp(keys.v[k], rec->fields[i].key, rec->fields[i].key_len) == 0) {
                    drop = true;
                }
            }
            if (!drop) {
                ls_record_set(&upd, rec->fields[i].key, rec->fields[i].key_len,
                              &rec->fields[i].v);
            }
        }
        same = upd.nfields == rec->nfields;
        if (o->suppress_doc_wrap) {
            ls_json_put_record(&j->out, &upd);
        } else {
            ls_buf_append(&j->out, "{\"doc\":", 7);
            ls_json_put_record(&j->out, &upd);
            if (o->write_operation == OP_UPSERT) {
                if (same) {
                    ls_buf_append(&j->out, ",\"doc_as_upsert\":true", 21);
                } else {
                    ls_buf_append(&j->out, ",\"upsert\":", 10);
                    ls_json_put_record(&j->out, rec);
                }
            }
            ls_buf_putc(&j->out, '}');
        }
        ls_record_release(&upd);
        ls_strv_release(&own);
    } else {
        ls_json_put_record(&j->out, rec);
    }
    ls_buf_putc(&j->out, '\n');
    return 1;
}

/* Next entry of the chunk, or NULL at its end; ord gets its ordinal. */
static const msgpack_object *es_next(struct es_job *j, uint64_t *ord)
{
    const msgpack_object *e = ls_chunk_entries_next(j->en);

    if (e) {
        *ord = j->ordinal++;
    }
    return e;
}

/* ls_compress_stream's reader: the bulk lines, entry by entry. */
static long es_bulk_read(void *arg, void *buf, size_t n)
{
    struct es_job *j = arg;
    struct es *o = j->o;
    size_t k = 0;

    while (k < n) {
        const msgpack_object *e;
        uint64_t ord;
        size_t take;
        int r;
        if (j->ooff < j->out.len) {
            take = j->out.len - j->ooff;
            if (take > n - k) {
                take = n - k;
            }
            memcpy((char *)buf + k, j->out.p + j->ooff, take);
            j->ooff += take;
            k += take;
            continue;
        }
        ls_buf_reset(&j->out);
        j->ooff = 0;
        if (j->part_full) {
            break;
        }
        e = es_next(j, &ord);
        if (e == NULL) {
            if (ls_chunk_entries_failed(j->en)) {
                return -1;
            }
            break;
        }
        j->total++;
        if (ls_ordset_has(&j->done, ord)) {
            continue;
        }
        r = es_entry(j, e);
        if (r == 1) {
            job_push(&j->sent, &j->nsent, &j->capsent, ord);
            j->bulk_bytes += j->out.len;
            if (o->bulk_message_request_threshold > 0 &&
                j->bulk_bytes > (uint64_t)o->bulk_message_request_threshold) {
                j->part_full = true;
            }
        } else {
            /* no _id (dropped, as the plugin drops it) or not a record: done */
            job_push(&j->skipped, &j->nskipped, &j->capskipped, ord);
        }
    }
    return (long)k;
}

/* Worker: the next request's body (a part of the chunk) into a memfd. */
static void es_build(void *arg)
{
    struct es_job *j = arg;
    struct es *o = j->o;
    char cerr[200] = "";
    struct stat st;
    int algo = o->compression_level == CL_NONE ? LS_COMPRESS_TEXT : LS_COMPRESS_GZIP;
    struct ls_digest dig;
    char sha[65];

    j->rc = LS_ERROR;
    j->nsent = 0;
    j->nskipped = 0;
    j->bulk_bytes = 0;
    j->part_full = false;
    if (j->fd >= 0) {
        close(j->fd);
    }
    j->fd = memfd_create("logship-es-bulk", MFD_CLOEXEC);
    if (j->en == NULL) {
        j->en = ls_chunk_entries_open(j->c);
    }
    if (j->fd < 0 || j->en == NULL) {
        snprintf(j->err, sizeof(j->err), "cannot read chunk %s (%d: %s)",
                 ls_chunk_info(j->c)->id, errno, strerror(errno));
        return;
    }
    /* a signed request needs the body's SHA-256: taken while the body is written */
    if (ls_compress_stream(algo, -1, es_bulk_read, j, j->fd, o->aws ? &dig : NULL, cerr,
                           sizeof(cerr)) != LS_OK ||
        fstat(j->fd, &st) != 0) {
        snprintf(j->err, sizeof(j->err), "building the bulk request of chunk %s failed: %s",
                 ls_chunk_info(j->c)->id, cerr[0] ? cerr : strerror(errno));
        return;
    }
    j->size = (uint64_t)st.st_size;
    ls_free(j->url);
    {
        /* signed requests carry the query encoded as SigV4 canonicalizes it, so no proxy
         * or server in between can read it another way */
        const char *fp = o->aws ? "errors%2Citems.%2A.status%2Citems.%2A.error"
                                : "errors,items.*.status,items.*.error";
        if (o->include_index_in_url) {
            j->url = ls_asprintf("%s/%s/_bulk?filter_path=%s", j->base, j->index_name, fp);
        } else {
            j->url = ls_asprintf("%s/_bulk?filter_path=%s", j->base, fp);
        }
    }
    ls_buf_reset(&j->sig);
    if (o->aws && j->nsent > 0) {
        ls_hex(dig.sha256, sizeof(dig.sha256), sha);
        if (es_aws_sign(o->aws, j->ep, "POST", j->url, sha, &j->sig, j->err, sizeof(j->err)) !=
            LS_OK) {
            return;
        }
    }
    j->rc = LS_OK;
}

static void es_job_free(struct es_job *j)
{
    size_t i;

    if (j->fd >= 0) {
        close(j->fd);
    }
    ls_chunk_entries_close(j->en);
    ls_timefmt_destroy(j->tf);
    ls_ordset_free(&j->done);
    ls_free(j->prefix);
    ls_free(j->dateformat);
    ls_free(j->index_name);
    ls_free(j->type_name);
    ls_free(j->pipeline);
    ls_free(j->sent);
    ls_free(j->skipped);
    ls_free(j->url);
    ls_buf_release(&j->sig);
    ls_buf_release(&j->out);
    ls_buf_release(&j->tmp);
    ls_buf_release(&j->body);
    ls_record_release(&j->rec);
    ls_arena_release(&j->arena);
    for (i = 0; i < j->nerr; i++) {
        ls_free(j->err_why[i]);
    }
    ls_free(j->err_ord);
    ls_free(j->err_why);
    ls_free(j->err_off);
    ls_free(j->err_len);
    ls_buf_release(&j->err_entries);
    ls_free(j);
}

static void es_built(void *arg);

static void es_finish(struct es_job *j, int rc, const char *msg)
{
    struct ls_instance *ins = j->o->ins;

    if (j->time_errors) {
        struct es *o = j->o;
        double now = ls_mono_now();
        o->time_errors += j->time_errors;
        if (now - o->time_warned_at >= 1.0) {
            o->time_warned_at = now;
            ls_plg_warn(ins, "a time_key or @timestamp value did not parse; the event time was "
                        "used (%llu so far)", (unsigned long long)o->time_errors);
        }
    }
    ls_output_write_done(ins, j->c, rc, msg);
    es_job_free(j);
}

/* Record the ordinals done so far in the chunk's state (so a retry sends only the others). */
static int es_mark_done(struct es_job *j, const uint64_t *v, size_t n)
{
    return ls_chunk_mark_done(j->c, &j->done, v, n, ES_DONE);
}

/* The whole chunk is done once the reader is at its end and nothing was left undone. */
static void es_next_part_or_done(struct es_job *j, size_t failed)
{
    if (failed == 0 && j->part_full) {
        /* bulk_message_request_threshold: the next part of the chunk */
        if (ls_work_submit(j->o->ins->engine, es_build, es_built, j) != LS_OK) {
            es_finish(j, LS_ERROR, "cannot start building the next bulk request");
        }
        return;
    }
    if (failed == 0) {
        es_finish(j, LS_OK, NULL);
        return;
    }
    snprintf(j->err, sizeof(j->err), "Elasticsearch did not index %zu of %zu records of the "
             "request; they stay in the chunk and are sent again", failed, j->nsent);
    es_finish(j, LS_ERROR, j->err);
}

/* Emit the records of the bulk's failed items to @ERROR: read them from the chunk again. */
struct es_err_job {
    struct es_job *j;
    size_t failed;
};

static void es_collect(void *arg)
{
    struct es_err_job *ej = arg;
    struct es_job *j = ej->j;
    struct ls_chunk_entries *en = ls_chunk_entries_open(j->c);
    const msgpack_object *e;
    uint64_t ord = 0;
    size_t next = 0;

    j->err_off = ls_calloc(j->nerr + 1, sizeof(size_t));
    j->err_len = ls_calloc(j->nerr + 1, sizeof(size_t));
    ls_buf_init(&j->err_entries, 0);
    while (en && next < j->nerr && (e = ls_chunk_entries_next(en)) != NULL) {
        if (ord++ == j->err_ord[next]) {
            msgpack_sbuffer sb;
            msgpack_packer pk;
            msgpack_sbuffer_init(&sb);
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            msgpack_pack_object(&pk, *e);
            j->err_off[next] = j->err_entries.len;
            j->err_len[next] = sb.size;
            ls_buf_append(&j->err_entries, sb.data, sb.size);
            msgpack_sbuffer_destroy(&sb);
            next++;
        }
    }
    ls_chunk_entries_close(en);
}

static void es_collected(void *arg)
{
    struct es_err_job *ej = arg;
    struct es_job *j = ej->j;
    struct ls_instance *ins = j->o->ins;
    struct ls_arena a;
    struct ls_record rec;
    size_t i;

    ls_arena_init(&a, 4096);
    ls_record_init(&rec, &a);
    for (i = 0; i < j->nerr; i++) {
        msgpack_unpacked res;
        size_t off = 0;
        if (j->err_len == NULL || j->err_len[i] == 0) {
            continue;
        }
        msgpack_unpacked_init(&res);
        if (msgpack_unpack_next(&res, j->err_entries.p + j->err_off[i], j->err_len[i], &off) ==
                MSGPACK_UNPACK_SUCCESS &&
            res.data.type == MSGPACK_OBJECT_ARRAY && res.data.via.array.size >= 2) {
            ls_record_clear(&rec);
            ls_arena_reset(&a);
            if (ls_msgpack_event_time(&res.data.via.array.ptr[0], &rec.time) &&
                ls_msgpack_map_to_record(&res.data.via.array.ptr[1], &rec) == LS_OK) {
                rec.tag = j->tag;
                rec.tag_len = strlen(j->tag);
                ls_emit_error(ins, &rec, j->err_why[i]);
            }
        }
        msgpack_unpacked_destroy(&res);
    }
    ls_record_release(&rec);
    ls_arena_release(&a);
    es_next_part_or_done(j, ej->failed);
    ls_free(ej);
}

/* The item's status and error (type, reason; error given as a string: *str) */
struct es_item {
    const char *op;
    size_t oplen;
    int64_t status;
    bool has_status;
    bool err_str, err_typed, has_err;
    char type[96];
    char reason[200];
};

static bool es_item(struct ls_arena *a, const char *p, size_t len, struct es_item *it)
{
    struct ls_record r, in, er;
    struct ls_field *f;
    bool ok = false;

    memset(it, 0, sizeof(*it));
    ls_record_init(&r, a);
    ls_record_init(&in, a);
    ls_record_init(&er, a);
    if (ls_json_parse_object(p, len, &r) != LS_OK || r.nfields < 1 ||
        r.fields[0].v.type != LS_V_JSON) {
        goto out;
    }
    it->op = r.fields[0].key;
    it->oplen = r.fields[0].key_len;
    if (ls_json_parse_object(r.fields[0].v.u.s.p, r.fields[0].v.u.s.len, &in) != LS_OK) {
        goto out;
    }
    if ((f = ls_record_get(&in, "status", 6)) && f->v.type == LS_V_INT) {
        it->status = f->v.u.i;
        it->has_status = true;
    }
    if ((f = ls_record_get(&in, "error", 5)) != NULL) {
        it->has_err = true;
        if (f->v.type == LS_V_STR) {
            it->err_str = true;
            snprintf(it->reason, sizeof(it->reason), "%.*s", (int)f->v.u.s.len, f->v.u.s.p);
        } else if (f->v.type == LS_V_JSON &&
                   ls_json_parse_object(f->v.u.s.p, f->v.u.s.len, &er) == LS_OK) {
            struct ls_field *t = ls_record_get(&er, "type", 4);
            struct ls_field *rs = ls_record_get(&er, "reason", 6);
            if (t && t->v.type == LS_V_STR) {
                it->err_typed = true;
                snprintf(it->type, sizeof(it->type), "%.*s", (int)t->v.u.s.len, t->v.u.s.p);
            }
            if (rs && rs->v.type == LS_V_STR) {
                snprintf(it->reason, sizeof(it->reason), "%.*s", (int)rs->v.u.s.len,
                         rs->v.u.s.p);
            }
        }
    }
    ok = true;
out:
    ls_record_release(&r);
    ls_record_release(&in);
    ls_record_release(&er);
    return ok;
}

static const char *es_name(const struct es *o)
{
    return o->opensearch ? "OpenSearch" : "Elasticsearch";
}

static bool es_record_type(const struct es *o, const char *type)
{
    for (size_t i = 0; i < o->unrecoverable_record_types.n; i++) {
        if (strcmp(o->unrecoverable_record_types.v[i], type) == 0) {
            return true;
        }
    }
    return false;
}

static bool es_unrecoverable_type(const struct es *o, const char *type)
{
    for (size_t i = 0; i < o->unrecoverable_error_types.n; i++) {
        if (strcmp(o->unrecoverable_error_types.v[i], type) == 0) {
            return true;
        }
    }
    return false;
}

/* The bulk answer (2xx), as the plugin's ElasticsearchErrorHandler reads it. */
static void es_answer(struct es_job *j)
{
    struct es *o = j->o;
    struct ls_arena a;
    struct ls_record top;
    struct ls_field *errors, *items;
    uint64_t *done = NULL;
    size_t ndone = 0, capdone = 0, failed = 0, i = 0, off = 0;
    const char *el;
    size_t elen;
    char msg[300];

    ls_arena_init(&a, 4096);
    ls_record_init(&top, &a);
    if (ls_json_parse_object(ls_buf_cstr(&j->body), j->body.len, &top) != LS_OK) {
        /* not JSON (a proxy's page): the Ruby client raises, and the plugin retries */
        snprintf(msg, sizeof(msg), "could not push logs to Elasticsearch cluster (%s): the "
                 "answer is not JSON: %.160s", j->base, ls_buf_cstr(&j->body));
        ls_record_release(&top);
        ls_arena_release(&a);
        es_finish(j, LS_ERROR, msg);
        return;
    }
    errors = ls_record_get(&top, "errors", 6);
    if (errors == NULL || errors->v.type != LS_V_BOOL || !errors->v.u.b) {
        /* every item indexed */
        for (i = 0; i < j->nskipped; i++) {
            job_push(&done, &ndone, &capdone, j->skipped[i]);
        }
        for (i = 0; i < j->nsent; i++) {
            job_push(&done, &ndone, &capdone, j->sent[i]);
        }
        if (j->part_full && es_mark_done(j, done, ndone) != LS_OK) {
            ls_free(done);
            ls_record_release(&top);
            ls_arena_release(&a);
            es_finish(j, LS_ERROR, "cannot store the chunk's state");
            return;
        }
        ls_free(done);
        ls_record_release(&top);
        ls_arena_release(&a);
        es_next_part_or_done(j, 0);
        return;
    }
    items = ls_record_get(&top, "items", 5);
    if (items == NULL || items->v.type != LS_V_JSON || items->v.u.s.len == 0 ||
        items->v.u.s.p[0] != '[') {
        snprintf(msg, sizeof(msg), "The response format was unrecognized: %.200s",
                 ls_buf_cstr(&j->body));
        goto unrecoverable;
    }
    {
        size_t count = 0, o2 = 0;
        while (ls_json_array_next(items->v.u.s.p, items->v.u.s.len, &o2, &el, &elen) == LS_OK) {
            count++;
        }
        if (count != j->nsent) {
            snprintf(msg, sizeof(msg), "The number of records submitted %zu do not match the "
                     "number returned %zu. Unable to process bulk response.", j->nsent, count);
            goto unrecoverable;
        }
    }
    for (i = 0; i < j->nskipped; i++) {
        job_push(&done, &ndone, &capdone, j->skipped[i]);
    }
    for (i = 0; ls_json_array_next(items->v.u.s.p, items->v.u.s.len, &off, &el, &elen) == LS_OK;
         i++) {
        struct ls_arena ia;
        struct es_item it;
        const char *why = NULL;
        char wbuf[400];
        ls_arena_init(&ia, 1024);
        if (!es_item(&ia, el, elen, &it) || !it.has_status) {
            /* an answer without the op or its status: counted, not retried (the plugin) */
            ls_arena_release(&ia);
            job_push(&done, &ndone, &capdone, j->sent[i]);
            continue;
        }
        if (it.status == 200 || it.status == 201 ||
            (o->write_operation == OP_CREATE && it.status == 409)) {
            job_push(&done, &ndone, &capdone, j->sent[i]);
        } else if (it.status == 400) {
            if (o->log_es_400_reason && it.err_typed) {
                snprintf(wbuf, sizeof(wbuf), "400 - Rejected by %s [error type]: %s [reason]: "
                         "'%s'", es_name(o), it.type, it.reason);
            } else {
                snprintf(wbuf, sizeof(wbuf), "400 - Rejected by %s", es_name(o));
            }
            why = wbuf;
        } else if (it.err_str) {
            snprintf(wbuf, sizeof(wbuf), "%lld - %s", (long long)it.status, it.reason);
            why = wbuf;
        } else if (it.err_typed) {
            if (es_unrecoverable_type(o, it.type)) {
                snprintf(msg, sizeof(msg), "Rejected %s due to %s", es_name(o), it.type);
                ls_arena_release(&ia);
                goto unrecoverable;
            }
            if (es_record_type(o, it.type)) {
                snprintf(wbuf, sizeof(wbuf), "%lld - %s: %s", (long long)it.status, it.type,
                         it.reason);
                why = wbuf;
            } else {
                failed++;       /* retried from the chunk */
            }
        } else {
            snprintf(wbuf, sizeof(wbuf), "%lld - No error type provided in the response",
                     (long long)it.status);
            why = wbuf;
        }
        if (why && !o->emit_error_label_event) {
            ls_plg_warn(o->ins, "record rejected (%s); emit_error_label_event is false: dropped",
                        why);
            job_push(&done, &ndone, &capdone, j->sent[i]);
        } else if (why) {
            job_push(&done, &ndone, &capdone, j->sent[i]);
            j->err_ord = ls_realloc(j->err_ord, (j->nerr + 1) * sizeof(uint64_t));
            j->err_why = ls_realloc(j->err_why, (j->nerr + 1) * sizeof(char *));
            j->err_ord[j->nerr] = j->sent[i];
            j->err_why[j->nerr++] = ls_strdup(why);
        }
        ls_arena_release(&ia);
    }
    ls_record_release(&top);
    ls_arena_release(&a);
    if ((failed > 0 || j->part_full) && es_mark_done(j, done, ndone) != LS_OK) {
        ls_free(done);
        es_finish(j, LS_ERROR, "cannot store the chunk's state");
        return;
    }
    ls_free(done);
    if (failed > 0) {
        j->part_full = false;   /* retry this part (and the rest) later */
    }
    if (j->nerr > 0) {
        struct es_err_job *ej = ls_calloc(1, sizeof(*ej));
        ej->j = j;
        ej->failed = failed;
        if (ls_work_submit(o->ins->engine, es_collect, es_collected, ej) == LS_OK) {
            return;
        }
        ls_free(ej);
    }
    es_next_part_or_done(j, failed);
    return;
unrecoverable:
    ls_free(done);
    ls_record_release(&top);
    ls_arena_release(&a);
    es_finish(j, LS_DECLINED, msg);
}

static void es_sent(struct ls_http_resp *resp, void *arg)
{
    struct es_job *j = arg;
    struct es *o = j->o;
    char msg[400];

    if (resp->status >= 200 && resp->status < 300) {
        o->ins->metrics.write_bytes += j->size;
        ls_buf_reset(&j->body);
        ls_buf_append(&j->body, resp->body.p ? resp->body.p : "", resp->body.len);
        es_answer(j);
        return;
    }
    /* the whole request failed: every record of it stays (RecoverableRequestFailure) */
    o->next_base++;
    if (resp->status == 0) {
        snprintf(msg, sizeof(msg), "could not push logs to Elasticsearch cluster (%s): %s",
                 j->base, resp->error[0] ? resp->error : "no answer");
    } else {
        snprintf(msg, sizeof(msg), "could not push logs to Elasticsearch cluster (%s): [%ld] "
                 "%.200s", j->base, resp->status, ls_buf_cstr(&resp->body));
    }
    /* parts sent before this one are done already: their records are in the chunk's state */
    es_finish(j, LS_ERROR, msg);
}

static void es_fill_req(struct es *o, struct ls_http_req *req)
{
    memset(req, 0, sizeof(*req));
    req->timeout = o->request_timeout > 0 ? o->request_timeout : 0;
    req->connect_timeout = o->request_timeout > 0 ? o->request_timeout : 5;
    req->verify_peer = o->ssl_verify;
    req->ca_file = o->ca_file;
    req->client_cert = o->client_cert;
    req->client_key = o->client_key;
    req->key_passwd = o->client_key_pass;
    req->tls_min = 2;
}

/* Loop thread: a part of the chunk is built; POST it. */
static void es_built(void *arg)
{
    struct es_job *j = arg;
    struct es *o = j->o;
    struct ls_http_req req;
    struct ls_buf h;

    if (j->rc != LS_OK) {
        es_finish(j, LS_ERROR, j->err);
        return;
    }
    if (j->nsent == 0) {
        /* nothing to send (every record done, or none had an _id) */
        if (j->nskipped > 0 && j->part_full) {
            (void)es_mark_done(j, j->skipped, j->nskipped);
        }
        es_next_part_or_done(j, 0);
        return;
    }
    ls_buf_init(&h, 0);
    if (o->headers.len) {
        ls_buf_append(&h, o->headers.p, o->headers.len);
    }
    if (j->sig.len) {
        ls_buf_append(&h, j->sig.p, j->sig.len);
    }
    ls_http_hdr_set(&h, "Content-Type", o->content_type ? "application/x-ndjson" : "application/json");
    if (o->compression_level != CL_NONE) {
        ls_http_hdr_set(&h, "Content-Encoding", "gzip");
    }
    ls_http_hdr_add(&h, "Expect:");
    es_fill_req(o, &req);
    req.method = "POST";
    req.url = j->url;
    req.headers = &h;
    req.body_fd = j->fd;
    req.body_file_len = j->size;
    req.max_response = 32u << 20;
    ls_output_write_sending(o->ins, j->c);
    if (ls_http_submit(o->ins->engine, &req, es_sent, j) != LS_OK) {
        ls_buf_release(&h);
        es_finish(j, LS_ERROR, "cannot start the bulk request");
        return;
    }
    ls_buf_release(&h);
}

/* The server's major version from GET / ({"version":{"number":"7.17.0"}}). */
static int es_version_of(struct ls_http_resp *resp, int dflt)
{
    const char *p = ls_buf_cstr(&resp->body);
    const char *v = strstr(p, "\"number\"");

    if (v == NULL) {
        return dflt;
    }
    v = strchr(v + 8, '"');
    if (v == NULL) {
        return dflt;
    }
    {
        long major = strtol(v + 1, NULL, 10);
        return major > 0 && major < 1000 ? (int)major : dflt;
    }
}

static void es_start_build(struct es_job *j)
{
    struct es *o = j->o;

    j->version = o->version;
    /* the type by version, as the plugin's configure and process_message choose it */
    if (o->opensearch) {
        /* fluent-plugin-opensearch: _doc on 1.x, none from 2 or with suppress_type_name */
        ls_free(j->type_name);
        j->type_name = o->suppress_type_name || j->version >= 2 ? NULL : ls_strdup("_doc");
    } else if (j->version >= 8 || (o->suppress_type_name && j->version >= 7)) {
        ls_free(j->type_name);
        j->type_name = NULL;
    } else if (j->version == 7) {
        ls_free(j->type_name);
        j->type_name = ls_strdup("_doc");
    }
    if (ls_work_submit(o->ins->engine, es_build, es_built, j) != LS_OK) {
        es_finish(j, LS_ERROR, "cannot start building the bulk request");
    }
}

static void es_version_answer(struct ls_http_resp *resp, void *arg)
{
    struct es_job *j = arg;
    struct es *o = j->o;
    char msg[400];

    o->asking_version = false;
    if (resp->status >= 200 && resp->status < 300) {
        o->version = es_version_of(resp, (int)o->default_elasticsearch_version);
        ls_plg_info(o->ins, "Elasticsearch %d at %s", o->version, j->base);
        es_start_build(j);
        return;
    }
    o->next_base++;
    if (resp->status == 0) {
        snprintf(msg, sizeof(msg), "cannot ask Elasticsearch's version (GET %s/): %s", j->base,
                 resp->error[0] ? resp->error : "no answer");
    } else {
        snprintf(msg, sizeof(msg), "cannot ask Elasticsearch's version (GET %s/): [%ld] %.160s",
                 j->base, resp->status, ls_buf_cstr(&resp->body));
    }
    es_finish(j, LS_ERROR, msg);
}

/* GET / for the server's version; j->sig holds the signature's headers, if any. */
static int es_ask_version_now(struct es_job *j)
{
    struct es *o = j->o;
    struct ls_http_req req;
    struct ls_buf h;
    char *url = ls_asprintf("%s/", j->base);
    int rc;

    ls_buf_init(&h, 0);
    if (o->headers.len) {
        ls_buf_append(&h, o->headers.p, o->headers.len);
    }
    if (j->sig.len) {
        ls_buf_append(&h, j->sig.p, j->sig.len);
    }
    es_fill_req(o, &req);
    req.method = "GET";
    req.url = url;
    req.headers = &h;
    req.body_fd = -1;
    req.max_response = 64 * 1024;
    rc = ls_http_submit(o->ins->engine, &req, es_version_answer, j);
    ls_free(url);
    ls_buf_release(&h);
    return rc;
}

/* Worker thread. */
static void es_sign_version(void *arg)
{
    struct es_job *j = arg;
    char *url = ls_asprintf("%s/", j->base);

    ls_buf_reset(&j->sig);
    j->rc = es_aws_sign(j->o->aws, j->ep, "GET", url, NULL, &j->sig, j->err, sizeof(j->err));
    ls_free(url);
}

/* Loop thread. */
static void es_ask_version(void *arg)
{
    struct es_job *j = arg;

    if (j->rc != LS_OK) {
        j->o->asking_version = false;
        es_finish(j, LS_ERROR, j->err);
        return;
    }
    if (es_ask_version_now(j) != LS_OK) {
        j->o->asking_version = false;
        es_finish(j, LS_ERROR, "cannot start asking Elasticsearch's version");
    }
}

static char *expand_or_copy(struct ls_chunk *c, const char *tmpl)
{
    char *s;

    if (tmpl == NULL) {
        return NULL;
    }
    s = ls_chunk_expand_str(c, tmpl);
    return s ? s : ls_strdup("");
}

static int es_write(struct ls_instance *ins, struct ls_chunk *c)
{
    struct es *o = ins->ctx;
    struct es_job *j = ls_calloc(1, sizeof(*j));
    const struct ls_chunk_info *ci = ls_chunk_info(c);

    j->o = o;
    j->c = c;
    j->fd = -1;
    j->tag = ci->tag;
    j->ep = o->next_base % o->nbases;
    j->base = o->bases[j->ep];
    j->prefix = expand_or_copy(c, o->logstash_prefix);
    j->dateformat = expand_or_copy(c, o->logstash_dateformat);
    j->index_name = expand_or_copy(c, o->index_name);
    j->type_name = expand_or_copy(c, o->type_name);
    j->pipeline = expand_or_copy(c, o->pipeline);
    ls_arena_init(&j->arena, 4096);
    ls_record_init(&j->rec, &j->arena);
    ls_buf_init(&j->out, 0);
    ls_buf_init(&j->tmp, 0);
    ls_buf_init(&j->body, 0);
    ls_buf_init(&j->sig, 0);
    ls_ordset_parse(&j->done, ls_chunk_state(c), ES_DONE);
    if (o->version == 0) {
        o->asking_version = true;
        if (o->aws) {
            /* signing may need credentials from STS or instance metadata: a worker's job */
            if (ls_work_submit(ins->engine, es_sign_version, es_ask_version, j) != LS_OK) {
                es_job_free(j);
                return LS_ERROR;
            }
            return LS_AGAIN;
        }
        if (es_ask_version_now(j) != LS_OK) {
            es_job_free(j);
            return LS_ERROR;
        }
        return LS_AGAIN;
    }
    es_start_build(j);
    return LS_AGAIN;
}

static void es_destroy(struct ls_instance *ins)
{
    struct es *o = ins->ctx;
    size_t i;

    for (i = 0; i < o->nbases; i++) {
        ls_free(o->bases[i]);
    }
    ls_free(o->bases);
    ls_buf_release(&o->headers);
    es_aws_destroy(o->aws);
    if (!o->opensearch) {
        ls_strv_release(&o->unrecoverable_record_types);
    }
    ls_strv_release(&o->rm_keys);
    ls_strv_release(&o->rm_update_keys);
    if (o->have_id) {
        ls_accessor_release(&o->id_acc);
    }
    if (o->have_parent) {
        ls_accessor_release(&o->parent_acc);
    }
    if (o->have_routing) {
        ls_accessor_release(&o->routing_acc);
    }
    if (o->have_target) {
        ls_accessor_release(&o->target_acc);
    }
}

const struct ls_plugin ls_plugin_out_opensearch = {
    .name = "opensearch",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "index records in OpenSearch with the bulk API (fluent-plugin-opensearch)",
    .params = os_params,
    .ctx_size = sizeof(struct es),
    .init = es_init,
    .destroy = es_destroy,
    .output_flags = LS_OUT_BUFFERED,
    .default_formatter = "msgpack",
    .default_chunk_keys = "tag",
    .formatter_for = ls_msgpack_formatter_for,
    .write = es_write,
};

const struct ls_plugin ls_plugin_out_elasticsearch = {
    .name = "elasticsearch",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "index records in Elasticsearch or OpenSearch with the bulk API "
                   "(fluent-plugin-elasticsearch)",
    .params = es_params,
    .ctx_size = sizeof(struct es),
    .init = es_init,
    .destroy = es_destroy,
    .output_flags = LS_OUT_BUFFERED,
    .default_formatter = "msgpack",
    .default_chunk_keys = "tag",
    .formatter_for = ls_msgpack_formatter_for,
    .write = es_write,
};

const struct ls_plugin ls_plugin_out_aws_elasticsearch_service = {
    .name = "aws-elasticsearch-service",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "index records in Amazon OpenSearch Service (Elasticsearch) with requests "
                   "signed by AWS SigV4, per <endpoint> (fluent-plugin-aws-elasticsearch-service)",
    .params = es_params,
    .ctx_size = sizeof(struct es),
    .init = es_init,
    .destroy = es_destroy,
    .output_flags = LS_OUT_BUFFERED,
    .default_formatter = "msgpack",
    .default_chunk_keys = "tag",
    .formatter_for = ls_msgpack_formatter_for,
    .write = es_write,
};
