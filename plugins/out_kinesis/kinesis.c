/*
 * kinesis.c - aws-fluent-plugin-kinesis (3.x): kinesis_streams (PutRecords) and
 * kinesis_firehose (PutRecordBatch), AWS JSON 1.1 requests signed with SigV4.
 *
 * Each record becomes one Kinesis record, as the plugin's format: the record with <inject>
 * (whose defaults here are time_type string and %Y-%m-%dT%H:%M:%S.%N%z) through <format>
 * (json by default), or with data_key the value of that field alone; chomp_record removes
 * the line end; compression zlib or gzip compresses each record; firehose adds one "\n"
 * after the line end is removed (append_new_line, default true). Streams' partition key is
 * the value of partition_key, or 32 random hex digits. A record larger than
 * max_record_size (1 MiB), or without its data_key / partition_key, is logged and left out
 * (as the plugin does). Requests carry at most batch_request_max_count records (500) and
 * batch_request_max_size bytes (5 MiB streams, 4 MiB firehose).
 *
 * The chunk holds MessagePack [time, record] entries; requests are built from it on a
 * worker thread. Where the plugin retries the records a batch refused (throughput
 * exceeded, internal failure) in a sleep loop inside the flush thread and then drops them
 * (drop_failed_records_after_batch_request_retries, true by default), logship keeps them:
 * the chunk's state records which entries were accepted, and the chunk is retried with the
 * buffer's backoff sending only the others, until they are accepted or the buffer's retry
 * limit sends the rest to the secondary. A request that fails whole is retried the same way.
 *
 * Credentials: aws_key_id / aws_sec_key (/ aws_ses_token), the credential sections
 * (aws_conf.c), else the SDK's default chain; region (else AWS_REGION) and endpoint as the
 * plugin takes them.
 */
#include "plugin.h"
#include "aws.h"
#include "compress.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "msgpack.h"
#include "ordset.h"
#include "param.h"

#include <pthread.h>
#include <sys/random.h>
#include <zlib.h>

#define KIN_DONE "kinesis-done "
#define KIN_MAX_RECORD (1024 * 1024)

struct kin {
    /* parameters */
    char *stream_name;
    char *partition_key;
    char *delivery_stream_name;
    bool append_new_line;
    char *region;
    char *endpoint;
    bool ssl_verify_peer;
    char *http_proxy;
    char *aws_key_id;
    char *aws_sec_key;
    char *aws_ses_token;
    char *data_key;
    int64_t log_truncate_max_size;
    char *compression;
    bool chomp_record;
    int64_t max_record_size;
    int64_t batch_request_max_count;
    int64_t batch_request_max_size;

    /* derived */
    struct ls_instance *ins;
    bool firehose;
    int comp;                       /* 0 none, 1 zlib, 2 gzip */
    struct ls_instance *fmt;        /* <format> */
    struct aws_cred_sections credsec;
    struct aws_cred_config cc;
    char *url, *host, *sign_region;
    pthread_mutex_t mu;
    bool mu_init;
    struct aws_creds creds;
    bool have_creds;
    char described[160];
    struct aws_sigv4_cache cache;
};

#define F(f) offsetof(struct kin, f)

#define KIN_COMMON_PARAMS                                                                         \
    { "region", LS_P_STR, NULL, LS_PF_NULLABLE, F(region), "AWS region (default $AWS_REGION)",     \
      NULL, NULL, 0, 0 },                                                                         \
    { "endpoint", LS_P_STR, NULL, LS_PF_NULLABLE, F(endpoint),                                    \
      "another endpoint URL (a VPC endpoint, a local stand-in)", NULL, NULL, 0, 0 },              \
    { "ssl_verify_peer", LS_P_BOOL, "true", 0, F(ssl_verify_peer), "check the certificate",       \
      NULL, NULL, 0, 0 },                                                                         \
    { "http_proxy", LS_P_SECRET, NULL, LS_PF_NULLABLE, F(http_proxy), "proxy URL", NULL, NULL,    \
      0, 0 },                                                                                     \
    { "aws_key_id", LS_P_SECRET, NULL, LS_PF_NULLABLE, F(aws_key_id), "access key id", NULL,      \
      NULL, 0, 0 },                                                                               \
    { "aws_sec_key", LS_P_SECRET, NULL, LS_PF_NULLABLE, F(aws_sec_key), "secret access key",      \
      NULL, NULL, 0, 0 },                                                                         \
    { "aws_ses_token", LS_P_SECRET, NULL, LS_PF_NULLABLE, F(aws_ses_token), "session token",      \
      NULL, NULL, 0, 0 },                                                                         \
    { "data_key", LS_P_STR, NULL, LS_PF_NULLABLE, F(data_key),                                    \
      "send this field's value instead of the formatted record", NULL, NULL, 0, 0 },              \
    { "log_truncate_max_size", LS_P_INT, "1024", 0, F(log_truncate_max_size),                     \
      "cut logged records to this many bytes (0: whole)", NULL, NULL, 0, 0 },                     \
    { "compression", LS_P_STR, NULL, LS_PF_NULLABLE, F(compression), "zlib or gzip per record",   \
      NULL, NULL, 0, 0 },                                                                         \
    { "chomp_record", LS_P_BOOL, "false", 0, F(chomp_record), "remove the formatted line end",    \
      NULL, NULL, 0, 0 },                                                                         \
    { "max_record_size", LS_P_INT, "1048576", 0, F(max_record_size),                              \
      "larger records are logged and left out", NULL, NULL, 1, KIN_MAX_RECORD },                  \
    { "retries_on_batch_request", LS_P_INT, NULL, LS_PF_NO_STORE, 0,                              \
      "accepted: refused records are retried with the buffer's backoff", NULL, NULL, 0, 0 },      \
    { "reset_backoff_if_success", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL,     \
      0, 0 },                                                                                     \
    { "drop_failed_records_after_batch_request_retries", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0,      \
      "accepted: refused records are kept, not dropped", NULL, NULL, 0, 0 },                      \
    { "monitor_num_of_batch_request_retries", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0, "accepted",     \
      NULL, NULL, 0, 0 },                                                                         \
    { "debug", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL, 0, 0 }

static const struct ls_param streams_params[] = {
    { "stream_name", LS_P_STR, NULL, LS_PF_REQUIRED, F(stream_name),
      "stream (placeholders from the chunk keys)", NULL, NULL, 0, 0 },
    { "partition_key", LS_P_STR, NULL, LS_PF_NULLABLE, F(partition_key),
      "field giving the partition key (default: random)", NULL, NULL, 0, 0 },
    { "batch_request_max_count", LS_P_INT, "500", 0, F(batch_request_max_count),
      "records per PutRecords", NULL, NULL, 1, 500 },
    { "batch_request_max_size", LS_P_INT, "5242880", 0, F(batch_request_max_size),
      "bytes per PutRecords", NULL, NULL, 1, 5242880 },
    KIN_COMMON_PARAMS,
    LS_PARAM_END
};

static const struct ls_param firehose_params[] = {
    { "delivery_stream_name", LS_P_STR, NULL, LS_PF_REQUIRED, F(delivery_stream_name),
      "delivery stream (placeholders from the chunk keys)", NULL, NULL, 0, 0 },
    { "append_new_line", LS_P_BOOL, "true", 0, F(append_new_line),
      "end each record with \"\\n\"", NULL, NULL, 0, 0 },
    { "batch_request_max_count", LS_P_INT, "500", 0, F(batch_request_max_count),
      "records per PutRecordBatch", NULL, NULL, 1, 500 },
    { "batch_request_max_size", LS_P_INT, "4194304", 0, F(batch_request_max_size),
      "bytes per PutRecordBatch", NULL, NULL, 1, 4194304 },
    KIN_COMMON_PARAMS,
    LS_PARAM_END
};

/* ---- configuration ---- */

static void inject_default(struct ls_conf_section *sec, const char *key, const char *value)
{
    struct ls_conf_section *inj = ls_conf_child(sec, "inject");

    if (inj && ls_conf_get_param(inj, key) == NULL) {
        ls_conf_set(inj, key, value, inj->file, inj->line);
    }
}

static int kin_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct kin *k = ins->ctx;
    struct ls_conf_section *fs = ls_conf_child(sec, "format");
    const char *region;
    const char *svc;

    k->ins = ins;
    k->firehose = strcmp(ins->plugin->name, "kinesis_firehose") == 0;
    svc = k->firehose ? "firehose" : "kinesis";
    pthread_mutex_init(&k->mu, NULL);
    k->mu_init = true;
    /* the plugin's <inject> defaults (the core builds <inject> after this init) */
    if (ls_conf_child(sec, "inject")) {
        inject_default(sec, "time_type", "string");
        inject_default(sec, "time_format", "%Y-%m-%dT%H:%M:%S.%N%z");
    }
    if (k->compression == NULL || k->compression[0] == '\0') {
        k->comp = 0;
    } else if (strcmp(k->compression, "zlib") == 0) {
        k->comp = 1;
    } else if (strcmp(k->compression, "gzip") == 0) {
        k->comp = 2;
    } else {
        /* the plugin sends such records uncompressed; a typo should not go unnoticed */
        ls_conf_param_error(sec, "compression", err, errlen, "compression: '%s' (zlib or gzip)",
                            k->compression);
        return LS_ERROR;
    }
    if (k->data_key == NULL) {
        k->fmt = ls_instance_create(ins->engine, ins, LS_PLUGIN_FORMATTER, "json", fs, err,
                                    errlen);
        if (k->fmt == NULL) {
            return LS_ERROR;
        }
    }
    if (aws_cred_sections_bind(sec, &k->credsec, err, errlen) != LS_OK) {
        return LS_ERROR;
    }
    if (ls_conf_child(sec, "process_credentials")) {
        struct ls_conf_section *p = ls_conf_child(sec, "process_credentials");
        snprintf(err, errlen, "%s:%d: <process_credentials> is not supported (it runs an "
                 "external command); use <shared_credentials>, a role or static keys", p->file,
                 p->line);
        return LS_ERROR;
    }
    k->cc.key_id = k->aws_key_id;
    k->cc.secret = k->aws_sec_key;
    k->cc.session_token = k->aws_ses_token;
    aws_cred_sections_fill(ins, &k->credsec, &k->cc);

    region = k->region && k->region[0] ? k->region : getenv("AWS_REGION");
    if (region == NULL || region[0] == '\0') {
        region = getenv("AWS_DEFAULT_REGION");
    }
    if (region == NULL || region[0] == '\0') {
        snprintf(err, errlen, "%s:%d: no region: set region (or AWS_REGION)", sec->file, sec->line);
        return LS_ERROR;
    }
    k->sign_region = ls_strdup(region);
    if (k->endpoint && k->endpoint[0]) {
        const char *p = strstr(k->endpoint, "://");
        const char *h = p ? p + 3 : k->endpoint;
        size_t hl = strcspn(h, "/?");
        bool https = p == NULL || strncasecmp(k->endpoint, "https://", 8) == 0;
        if (p && !https && strncasecmp(k->endpoint, "http://", 7) != 0) {
            ls_conf_param_error(sec, "endpoint", err, errlen, "endpoint: not an http(s) URL: %s",
                                k->endpoint);
            return LS_ERROR;
        }
        if (hl == 0) {
            ls_conf_param_error(sec, "endpoint", err, errlen, "endpoint: no host in %s",
                                k->endpoint);
            return LS_ERROR;
        }
        k->host = ls_strndup(h, hl);
        {
            char *colon = strrchr(k->host, ':');
            if (colon && !strchr(colon, ']') && strcmp(colon + 1, https ? "443" : "80") == 0) {
                *colon = '\0';
            }
        }
        k->url = ls_asprintf("%s://%.*s/", https ? "https" : "http", (int)hl, h);
    } else {
        k->host = ls_asprintf("%s.%s.amazonaws.com%s", svc, region,
                              strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
        k->url = ls_asprintf("https://%s/", k->host);
    }
    ls_plg_info(ins, "%s output: %s at %s (region %s)", ins->plugin->name,
                k->firehose ? k->delivery_stream_name : k->stream_name, k->url, region);
    return LS_OK;
}

static void kin_destroy(struct ls_instance *ins)
{
    struct kin *k = ins->ctx;

    aws_creds_release(&k->creds);
    aws_cred_sections_release(&k->credsec);
    ls_free(k->url);
    ls_free(k->host);
    ls_free(k->sign_region);
    if (k->mu_init) {
        pthread_mutex_destroy(&k->mu);
    }
    ls_instance_destroy(k->fmt);
}

/* ---- one chunk ---- */

struct kin_job {
    struct kin *k;
    struct ls_chunk *c;
    char *stream;                   /* placeholders expanded */
    struct ls_chunk_entries *en;
    struct ls_ordset done;
    uint64_t ordinal;               /* of the next entry */
    /* this request */
    struct ls_buf body;
    struct ls_buf sig;              /* SigV4 header lines */
    uint64_t *sent;
    size_t nsent, capsent;
    uint64_t *skipped;              /* left out: too large, key missing */
    size_t nskipped, capskipped;
    bool more;                      /* entries left after this request */
    bool carry;                     /* the entry that did not fit opens the next request */
    uint64_t carry_ord;
    struct ls_buf carry_data;
    char carry_pk[300];
    uint64_t refused;
    struct ls_arena arena;
    struct ls_record rec;
    struct ls_buf data, tmp;
    int rc;
    char err[400];
};

static void push(uint64_t **v, size_t *n, size_t *cap, uint64_t x)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *v = ls_realloc(*v, *cap * sizeof(uint64_t));
    }
    (*v)[(*n)++] = x;
}

static void job_free(struct kin_job *j)
{
    ls_chunk_entries_close(j->en);
    ls_ordset_free(&j->done);
    ls_free(j->stream);
    ls_free(j->sent);
    ls_free(j->skipped);
    ls_buf_release(&j->body);
    ls_buf_release(&j->sig);
    ls_buf_release(&j->data);
    ls_buf_release(&j->tmp);
    ls_buf_release(&j->carry_data);
    ls_record_release(&j->rec);
    ls_arena_release(&j->arena);
    ls_free(j);
}

/* Log a left-out record as the plugin does (its message, the record cut to
 * log_truncate_max_size). Worker thread. */
static void kin_skip_log(struct kin_job *j, const char *why)
{
    struct ls_buf b;
    size_t max = (size_t)j->k->log_truncate_max_size;

    ls_buf_init(&b, 0);
    ls_json_put_record(&b, &j->rec);
    ls_plg_error(j->k->ins, "%s: %.*s", why, (int)(max && b.len > max ? max : b.len), b.p);
    ls_buf_release(&b);
}

static int compress_data(struct kin_job *j)
{
    z_stream zs;
    int rc;

    if (j->k->comp == 0) {
        return LS_OK;
    }
    memset(&zs, 0, sizeof(zs));
    /* zlib: Zlib::Deflate.deflate (level 6, zlib header); gzip: Zlib::GzipWriter */
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, j->k->comp == 1 ? 15 : 31, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        return LS_ERROR;
    }
    ls_buf_reset(&j->tmp);
    ls_buf_reserve(&j->tmp, deflateBound(&zs, (uLong)j->data.len) + 16);
    zs.next_in = (Bytef *)j->data.p;
    zs.avail_in = (uInt)j->data.len;
    zs.next_out = (Bytef *)j->tmp.p;
    zs.avail_out = (uInt)(j->tmp.cap);
    rc = deflate(&zs, Z_FINISH);
    if (rc == Z_STREAM_END) {
        j->tmp.len = zs.total_out;
    }
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        return LS_ERROR;
    }
    ls_buf_reset(&j->data);
    ls_buf_append(&j->data, j->tmp.p, j->tmp.len);
    return LS_OK;
}

/* The entry as the plugin's format: data (and partition key). 1: add it, 0: left out. */
static int kin_entry(struct kin_job *j, const msgpack_object *e, char *pk, size_t pklen)
{
    struct kin *k = j->k;
    const msgpack_object *rec;

    ls_arena_reset(&j->arena);
    ls_record_clear(&j->rec);
    if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size < 2) {
        return 0;
    }
    rec = &e->via.array.ptr[1];
    (void)ls_msgpack_event_time(&e->via.array.ptr[0], &j->rec.time);
    j->rec.tag = ls_chunk_info(j->c)->tag;
    j->rec.tag_len = strlen(j->rec.tag);
    if (ls_msgpack_map_to_record(rec, &j->rec) != LS_OK) {
        return 0;
    }
    ls_buf_reset(&j->data);
    if (k->data_key) {
        const struct ls_field *f = ls_record_get(&j->rec, k->data_key, strlen(k->data_key));
        size_t n;
        const char *s;
        if (f == NULL || f->v.type == LS_V_NULL) {
            char why[300];
            snprintf(why, sizeof(why), "Key '%s' doesn't exist", k->data_key);
            kin_skip_log(j, why);
            return 0;
        }
        s = ls_value_to_text(&j->arena, &f->v, &n);
        ls_buf_append(&j->data, s, n);
    } else {
        int frc;
        pthread_mutex_lock(&k->mu);     /* a formatter keeps scratch state: one job at a time */
        frc = ls_formatter_format(k->fmt, &j->rec, &j->data);
        pthread_mutex_unlock(&k->mu);
        if (frc != LS_OK) {
            kin_skip_log(j, "cannot format the record");
            return 0;
        }
        if (k->chomp_record || (k->firehose && k->append_new_line)) {
            /* Ruby's chomp: one "\r\n", "\n" or "\r" */
            if (j->data.len && j->data.p[j->data.len - 1] == '\n') {
                j->data.len--;
                if (j->data.len && j->data.p[j->data.len - 1] == '\r') {
                    j->data.len--;
                }
            } else if (j->data.len && j->data.p[j->data.len - 1] == '\r') {
                j->data.len--;
            }
        }
    }
    if (compress_data(j) != LS_OK) {
        kin_skip_log(j, "cannot compress the record");
        return 0;
    }
    if (k->firehose && k->append_new_line) {
        /* after compression, as the plugin wraps its formatter: org.call(...).chomp + "\n" */
        ls_buf_putc(&j->data, '\n');
    }
    if (!k->firehose) {
        if (k->partition_key) {
            const struct ls_field *f = ls_record_get(&j->rec, k->partition_key,
                                                     strlen(k->partition_key));
            size_t n;
            const char *s;
            if (f == NULL) {
                char why[300];
                snprintf(why, sizeof(why), "Key '%s' doesn't exist", k->partition_key);
                kin_skip_log(j, why);
                return 0;
            }
            s = ls_value_to_text(&j->arena, &f->v, &n);
            snprintf(pk, pklen, "%.*s", (int)n, s);
        } else {
            unsigned char r[16];    /* SecureRandom.hex(16) */
            if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
                for (size_t i = 0; i < sizeof(r); i++) {
                    r[i] = (unsigned char)rand();
                }
            }
            ls_hex(r, sizeof(r), pk);
        }
    }
    if (j->data.len + (k->firehose ? 0 : strlen(pk)) > (size_t)k->max_record_size) {
        char why[100];
        snprintf(why, sizeof(why), "Record size limit exceeded in %zu KB",
                 (j->data.len + (k->firehose ? 0 : strlen(pk))) / 1024);
        kin_skip_log(j, why);
        return 0;
    }
    return 1;
}

static int kin_creds(struct kin *k, int64_t now, struct aws_creds *out, char *err, size_t errlen)
{
    int rc = LS_OK;

    pthread_mutex_lock(&k->mu);
    if (!k->have_creds || (!k->cc.key_id && aws_cred_needs_refresh(&k->creds, now))) {
        struct aws_creds c;
        char cerr[300] = "";
        if (aws_cred_resolve(&k->cc, &c, cerr, sizeof(cerr)) != LS_OK) {
            snprintf(err, errlen, "failed to get AWS credentials: %s", cerr);
            rc = LS_ERROR;
        } else {
            char d[160];
            aws_creds_describe(&c, d, sizeof(d));
            if (strcmp(d, k->described) != 0) {
                ls_plg_info(k->ins, "credentials from %s", d);
                snprintf(k->described, sizeof(k->described), "%s", d);
            }
            aws_creds_release(&k->creds);
            k->creds = c;
            k->have_creds = true;
        }
    }
    if (rc == LS_OK) {
        aws_creds_copy(out, &k->creds);
    }
    pthread_mutex_unlock(&k->mu);
    return rc;
}

/* Worker: the next request's body from the entries not done yet, signed. */
static void kin_build(void *arg)
{
    struct kin_job *j = arg;
    struct kin *k = j->k;
    size_t size = 0;
    char pk[300];
    const msgpack_object *e;
    int64_t now;
    int32_t ns;

    j->rc = LS_ERROR;
    j->nsent = j->nskipped = 0;
    j->more = false;
    if (j->en == NULL) {
        j->en = ls_chunk_entries_open(j->c);
        if (j->en == NULL) {
            snprintf(j->err, sizeof(j->err), "cannot read chunk %s", ls_chunk_info(j->c)->id);
            return;
        }
    }
    ls_buf_reset(&j->body);
    ls_buf_printf(&j->body, "{\"%s\":", k->firehose ? "DeliveryStreamName" : "StreamName");
    ls_json_put_str(&j->body, j->stream, strlen(j->stream));
    ls_buf_append(&j->body, ",\"Records\":[", 12);
    for (;;) {
        uint64_t ord;
        size_t rsize;
        if (j->carry) {
            ord = j->carry_ord;
            ls_buf_reset(&j->data);
            ls_buf_append(&j->data, j->carry_data.p, j->carry_data.len);
            snprintf(pk, sizeof(pk), "%s", j->carry_pk);
            j->carry = false;
        } else {
            if ((e = ls_chunk_entries_next(j->en)) == NULL) {
                break;
            }
            ord = j->ordinal++;
            if (ls_ordset_has(&j->done, ord)) {
                continue;
            }
            if (kin_entry(j, e, pk, sizeof(pk)) == 0) {
                push(&j->skipped, &j->nskipped, &j->capskipped, ord);
                continue;
            }
        }
        rsize = j->data.len + (k->firehose ? 0 : strlen(pk));
        if (j->nsent > 0 && ((int64_t)(j->nsent + 1) > k->batch_request_max_count ||
                             (int64_t)(size + rsize) > k->batch_request_max_size)) {
            /* this entry opens the next request */
            j->carry = true;
            j->carry_ord = ord;
            ls_buf_reset(&j->carry_data);
            ls_buf_append(&j->carry_data, j->data.p, j->data.len);
            snprintf(j->carry_pk, sizeof(j->carry_pk), "%s", pk);
            j->more = true;
            break;
        }
        size += rsize;
        {
            char *enc = ls_malloc(4 * ((j->data.len + 2) / 3) + 1);
            ls_base64((const unsigned char *)j->data.p, j->data.len, enc);
            ls_buf_printf(&j->body, "%s{\"Data\":\"%s\"", j->nsent ? "," : "", enc);
            ls_free(enc);
        }
        if (!k->firehose) {
            ls_buf_append(&j->body, ",\"PartitionKey\":", 16);
            ls_json_put_str(&j->body, pk, strlen(pk));
        }
        ls_buf_putc(&j->body, '}');
        push(&j->sent, &j->nsent, &j->capsent, ord);
    }
    if (ls_chunk_entries_failed(j->en)) {
        snprintf(j->err, sizeof(j->err), "cannot read chunk %s", ls_chunk_info(j->c)->id);
        return;
    }
    ls_buf_append(&j->body, "]}", 2);
    ls_buf_reset(&j->sig);
    if (j->nsent > 0) {
        struct aws_creds cr;
        struct aws_signed sg;
        char ph[65];
        char target[64];
        char *path;
        memset(&cr, 0, sizeof(cr));
        memset(&sg, 0, sizeof(sg));
        ls_wall_now(&now, &ns);
        if (kin_creds(k, now, &cr, j->err, sizeof(j->err)) != LS_OK) {
            return;
        }
        snprintf(target, sizeof(target), "%s", k->firehose ? "Firehose_20150804.PutRecordBatch"
                                                            : "Kinesis_20131202.PutRecords");
        aws_sha256_hex(j->body.p, j->body.len, ph);
        {
            const char *u = strstr(k->url, "://");
            path = ls_strdup(u && strchr(u + 3, '/') ? strchr(u + 3, '/') : "/");
        }
        {
            struct aws_kv h[3] = { { "content-type", "application/x-amz-json-1.1" },
                                   { "host", k->host }, { "x-amz-target", target } };
            struct aws_request rq = { .method = "POST", .path = path, .headers = h,
                                      .nheaders = 3, .payload_hash = ph };
            pthread_mutex_lock(&k->mu);
            int rc = aws_sigv4_sign(&rq, &cr, k->sign_region, k->firehose ? "firehose" : "kinesis",
                                    now, AWS_SIGV4_NORMALIZE_PATH, &k->cache, &sg);
            pthread_mutex_unlock(&k->mu);
            if (rc != LS_OK) {
                snprintf(j->err, sizeof(j->err), "cannot sign the request");
                aws_creds_release(&cr);
                ls_free(path);
                return;
            }
        }
        {
            char *line = ls_asprintf("Host: %s", k->host);
            ls_http_hdr_add(&j->sig, line);
            ls_free(line);
            line = ls_asprintf("X-Amz-Target: %s", target);
            ls_http_hdr_add(&j->sig, line);
            ls_free(line);
            ls_http_hdr_add(&j->sig, "Content-Type: application/x-amz-json-1.1");
            for (size_t i = 0; i < sg.nheaders; i++) {
                ls_http_hdr_add(&j->sig, sg.headers[i]);
            }
        }
        aws_signed_release(&sg);
        aws_creds_release(&cr);
        ls_free(path);
    }
    j->rc = LS_OK;
}

static void kin_finish(struct kin_job *j, int rc, const char *msg)
{
    struct ls_instance *ins = j->k->ins;
    struct ls_chunk *c = j->c;
    char copy[sizeof(j->err)];

    snprintf(copy, sizeof(copy), "%s", msg ? msg : "");     /* msg may be j->err */
    job_free(j);
    ls_output_write_done(ins, c, rc, msg ? copy : NULL);
}

static void kin_built(void *arg);

static void kin_next(struct kin_job *j)
{
    if (ls_work_submit(j->k->ins->engine, kin_build, kin_built, j) != LS_OK) {
        kin_finish(j, LS_ERROR, "cannot start building the next request");
    }
}

/* The answer's per-record results: which of j->sent were accepted. */
static void kin_answer(struct kin_job *j, struct ls_http_resp *resp)
{
    struct kin *k = j->k;
    struct ls_arena a;
    struct ls_record top, item;
    struct ls_field *recs;
    uint64_t *ok = ls_calloc(j->nsent + 1, sizeof(uint64_t));
    size_t nok = 0, i = 0, off = 0, elen;
    const char *elem;
    char first_err[300] = "";

    ls_arena_init(&a, 4096);
    ls_record_init(&top, &a);
    ls_record_init(&item, &a);
    if (ls_json_parse_object(resp->body.p ? resp->body.p : "", resp->body.len, &top) != LS_OK ||
        (recs = ls_record_get(&top, k->firehose ? "RequestResponses" : "Records",
                              k->firehose ? 16 : 7)) == NULL || recs->v.type != LS_V_JSON) {
        ls_record_release(&top);
        ls_record_release(&item);
        ls_arena_release(&a);
        ls_free(ok);
        snprintf(j->err, sizeof(j->err), "unexpected answer: %.200s", ls_buf_cstr(&resp->body));
        kin_finish(j, LS_ERROR, j->err);
        return;
    }
    while (i < j->nsent &&
           ls_json_array_next(recs->v.u.s.p, recs->v.u.s.len, &off, &elem, &elen) == LS_OK) {
        struct ls_field *ec;
        ls_record_clear(&item);
        if (ls_json_parse_object(elem, elen, &item) == LS_OK &&
            (ec = ls_record_get(&item, "ErrorCode", 9)) != NULL && ec->v.type == LS_V_STR) {
            if (first_err[0] == '\0') {
                struct ls_field *em = ls_record_get(&item, "ErrorMessage", 12);
                snprintf(first_err, sizeof(first_err), "%.*s/%.*s", (int)ec->v.u.s.len,
                         ec->v.u.s.p, em && em->v.type == LS_V_STR ? (int)em->v.u.s.len : 0,
                         em && em->v.type == LS_V_STR ? em->v.u.s.p : "");
            }
        } else {
            ok[nok++] = j->sent[i];
        }
        i++;
    }
    ls_record_release(&top);
    ls_record_release(&item);
    ls_arena_release(&a);
    /* an answer shorter than the request: the rest is not known to be accepted */
    j->refused += j->nsent - nok;
    {
        size_t nall = nok + j->nskipped;
        uint64_t *all = ls_malloc((nall + 1) * sizeof(uint64_t));
        memcpy(all, ok, nok * sizeof(uint64_t));
        if (j->nskipped) {
            memcpy(all + nok, j->skipped, j->nskipped * sizeof(uint64_t));
        }
        if ((j->more || j->refused > 0) &&
            ls_chunk_mark_done(j->c, &j->done, all, nall, KIN_DONE) != LS_OK) {
            ls_free(all);
            ls_free(ok);
            kin_finish(j, LS_ERROR, "cannot store the chunk's state");
            return;
        }
        ls_free(all);
    }
    ls_free(ok);
    k->ins->metrics.write_bytes += j->body.len;
    if (j->nsent - nok > 0) {
        snprintf(j->err, sizeof(j->err), "%zu of %zu records refused (%s); they stay in the "
                 "chunk and are sent again", j->nsent - nok, j->nsent, first_err);
        if (j->more) {
            /* the rest of the chunk first; the refused ones with the chunk's retry */
            ls_plg_warn(k->ins, "%s", j->err);
            kin_next(j);
            return;
        }
        kin_finish(j, LS_ERROR, j->err);
        return;
    }
    if (j->more) {
        kin_next(j);
        return;
    }
    if (j->refused > 0) {
        snprintf(j->err, sizeof(j->err), "%llu records were refused; sent again",
                 (unsigned long long)j->refused);
        kin_finish(j, LS_ERROR, j->err);
        return;
    }
    kin_finish(j, LS_OK, NULL);
}

static void kin_sent(struct ls_http_resp *resp, void *arg)
{
    struct kin_job *j = arg;

    if (resp->status == 200) {
        kin_answer(j, resp);
        return;
    }
    if (resp->status == 0) {
        snprintf(j->err, sizeof(j->err), "%s: %s", j->k->url,
                 resp->error[0] ? resp->error : "no answer");
    } else {
        snprintf(j->err, sizeof(j->err), "%s: HTTP %ld %.240s", j->k->url, resp->status,
                 ls_buf_cstr(&resp->body));
    }
    /* 4xx too: a missing stream or refused credentials can be fixed while the data waits */
    kin_finish(j, LS_ERROR, j->err);
}

static void kin_built(void *arg)
{
    struct kin_job *j = arg;
    struct kin *k = j->k;
    struct ls_http_req req;

    if (j->rc != LS_OK) {
        kin_finish(j, LS_ERROR, j->err);
        return;
    }
    if (j->nsent == 0) {
        /* nothing to send: every entry done or left out */
        if (j->nskipped && ls_chunk_mark_done(j->c, &j->done, j->skipped, j->nskipped,
                                              KIN_DONE) != LS_OK) {
            kin_finish(j, LS_ERROR, "cannot store the chunk's state");
            return;
        }
        if (j->more) {
            kin_next(j);
            return;
        }
        if (j->refused > 0) {
            kin_finish(j, LS_ERROR, "records were refused; sent again");
            return;
        }
        kin_finish(j, LS_OK, NULL);
        return;
    }
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = k->url;
    req.headers = &j->sig;
    req.body = j->body.p;
    req.body_len = j->body.len;
    req.body_fd = -1;
    req.timeout = 60;
    req.connect_timeout = 10;
    req.verify_peer = k->ssl_verify_peer;
    req.proxy = k->http_proxy;
    req.max_response = 8u << 20;
    ls_output_write_sending(k->ins, j->c);
    if (ls_http_submit(k->ins->engine, &req, kin_sent, j) != LS_OK) {
        kin_finish(j, LS_ERROR, "cannot start the request");
    }
}

static int kin_write(struct ls_instance *ins, struct ls_chunk *c)
{
    struct kin *k = ins->ctx;
    struct kin_job *j = ls_calloc(1, sizeof(*j));

    j->k = k;
    j->c = c;
    j->stream = ls_chunk_expand_str(c, k->firehose ? k->delivery_stream_name : k->stream_name);
    if (j->stream == NULL) {
        j->stream = ls_strdup(k->firehose ? k->delivery_stream_name : k->stream_name);
    }
    ls_arena_init(&j->arena, 4096);
    ls_record_init(&j->rec, &j->arena);
    ls_buf_init(&j->body, 0);
    ls_buf_init(&j->sig, 0);
    ls_buf_init(&j->data, 0);
    ls_buf_init(&j->tmp, 0);
    ls_buf_init(&j->carry_data, 0);
    ls_ordset_parse(&j->done, ls_chunk_state(c), KIN_DONE);
    if (ls_work_submit(ins->engine, kin_build, kin_built, j) != LS_OK) {
        job_free(j);
        return LS_ERROR;
    }
    return LS_AGAIN;
}

const struct ls_plugin ls_plugin_out_kinesis_streams = {
    .name = "kinesis_streams",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "put records into an Amazon Kinesis data stream (aws-fluent-plugin-kinesis)",
    .params = streams_params,
    .ctx_size = sizeof(struct kin),
    .init = kin_init,
    .destroy = kin_destroy,
    .output_flags = LS_OUT_BUFFERED,
    .default_formatter = "msgpack",
    .formatter_for = ls_msgpack_formatter_for,
    .write = kin_write,
};

const struct ls_plugin ls_plugin_out_kinesis_firehose = {
    .name = "kinesis_firehose",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "put records into an Amazon Data Firehose stream (aws-fluent-plugin-kinesis)",
    .params = firehose_params,
    .ctx_size = sizeof(struct kin),
    .init = kin_init,
    .destroy = kin_destroy,
    .output_flags = LS_OUT_BUFFERED,
    .default_formatter = "msgpack",
    .formatter_for = ls_msgpack_formatter_for,
    .write = kin_write,
};
