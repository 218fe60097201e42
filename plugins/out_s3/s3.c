/*
 * s3.c - fluent-plugin-s3's `@type s3` output: time-sliced chunks,
 * compressed, uploaded to S3 or an S3-compatible store.
 *
 * Configuration follows fluent-plugin-s3 1.8.5 (names, defaults, key
 * format, credentials precedence, start-up checks), and the 2014-era v0.12
 * flat form (`type s3`, buffer_path, time_slice_format, scheme-less
 * s3_endpoint) runs unchanged. The upload itself is s3_upload.c /
 * s3_multipart.c, keys are s3_key.c, the protocol is s3.h.
 *
 * Nothing here blocks the event loop. Credentials are resolved (and
 * refreshed) in a worker; the start-up checks (check_apikey_on_start,
 * check_bucket / auto_create_bucket) are requests on the loop. Both sit
 * behind a "gate" that every write passes: writes that arrive while it is
 * busy wait in a list; if it fails (bad keys, no bucket), the waiting
 * writes fail with its message and the buffer retries them with backoff,
 * reopening the gate, so a daemon keeps its data until the cause is fixed
 * instead of exiting as fluentd does.
 */
#include "s3_out.h"
#include "log.h"
#include "engine.h"

#include <strings.h>

#define S3_DEFAULT_KEY_FORMAT "%{path}%{time_slice}_%{index}.%{file_extension}"
#define S3_NOCHECK_KEY_FORMAT "%{path}/%{time_slice}_%{hms_slice}.%{file_extension}"

static const struct ls_param s3_params[] = {
    { "aws_key_id", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct s3_out, aws_key_id),
      "AWS access key id (static credentials)", NULL, NULL, 0, 0 },
    { "aws_sec_key", LS_P_SECRET, NULL, LS_PF_NULLABLE, offsetof(struct s3_out, aws_sec_key),
      "AWS secret access key", NULL, NULL, 0, 0 },
    { "aws_profile", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct s3_out, aws_profile),
      "profile of the shared credentials file", NULL, NULL, 0, 0 },
    { "aws_credential_process", LS_P_STR, NULL, LS_PF_NULLABLE,
      offsetof(struct s3_out, aws_credential_process),
      "not supported (an external command): use a credentials file or a role", NULL, NULL, 0, 0 },
    { "aws_iam_retries", LS_P_INT, "0", LS_PF_DEPRECATED, offsetof(struct s3_out, aws_iam_retries),
      "deprecated: instance profile credentials with this many retries", NULL, NULL, 0, 0 },
    { "s3_bucket", LS_P_STR, NULL, LS_PF_REQUIRED, offsetof(struct s3_out, s3_bucket),
      "bucket name", NULL, NULL, 0, 0 },
    { "s3_region", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct s3_out, s3_region),
      "region, also the SigV4 signing region (default $AWS_REGION or us-east-1)", NULL, NULL, 0,
      0 },
    { "s3_endpoint", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct s3_out, s3_endpoint),
      "endpoint of an S3-compatible service (http(s)://host[:port]; no scheme = https)", NULL,
      NULL, 0, 0 },
    { "use_ssl", LS_P_BOOL, "true", 0, offsetof(struct s3_out, use_ssl),
      "2014 plugin: https for a scheme-less s3_endpoint", NULL, NULL, 0, 0 },
    { "force_path_style", LS_P_BOOL, "false", 0, offsetof(struct s3_out, force_path_style),
      "path-style URLs (https://host/bucket/key)", NULL, NULL, 0, 0 },
    { "enable_transfer_acceleration", LS_P_BOOL, "false", 0,
      offsetof(struct s3_out, enable_transfer_acceleration), "not supported (AWS only)", NULL,
      NULL, 0, 0 },
    { "enable_dual_stack", LS_P_BOOL, "false", 0, offsetof(struct s3_out, enable_dual_stack),
      "not supported (AWS only)", NULL, NULL, 0, 0 },
    { "ssl_verify_peer", LS_P_BOOL, "true", 0, offsetof(struct s3_out, ssl_verify_peer),
      "verify the server certificate", NULL, NULL, 0, 0 },
    { "ssl_ca_bundle", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct s3_out, ssl_ca_bundle),
      "CA bundle file (default: the system's)", "ssl_ca_file", NULL, 0, 0 },
    { "ssl_ca_directory", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct s3_out, ssl_ca_directory),
      "not supported: use ssl_ca_bundle", NULL, NULL, 0, 0 },
    { "use_bundled_cert", LS_P_BOOL, "false", 0, offsetof(struct s3_out, use_bundled_cert),
      "accepted; the system CA bundle is used", NULL, NULL, 0, 0 },
    { "signature_version", LS_P_ENUM, "v4", 0, offsetof(struct s3_out, signature_version),
      "v4, or s3 (SigV2) for stores that accept only V2", NULL, "v4|s3", 0, 0 },
    { "compute_checksums", LS_P_BOOL, "true", 0, offsetof(struct s3_out, compute_checksums),
      "send Content-MD5 with PutObject and UploadPart", NULL, NULL, 0, 0 },
    { "checksum_algorithm", LS_P_STR, NULL, LS_PF_NULLABLE,
      offsetof(struct s3_out, checksum_algorithm),
      "ignored: no flexible-checksum headers are sent (S3-compatible stores reject them)", NULL,
      NULL, 0, 0 },
    { "proxy_uri", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct s3_out, proxy_uri),
      "HTTP proxy", NULL, NULL, 0, 0 },
    { "path", LS_P_STR, "", 0, offsetof(struct s3_out, path),
      "key prefix (%{path}); ${tag}, ${key}, strftime allowed", NULL, NULL, 0, 0 },
    { "s3_object_key_format", LS_P_STR, S3_DEFAULT_KEY_FORMAT, 0,
      offsetof(struct s3_out, s3_object_key_format),
      "object key; with check_object false the default is " S3_NOCHECK_KEY_FORMAT, NULL, NULL,
      0, 0 },
    { "index_format", LS_P_STR, "%d", 0, offsetof(struct s3_out, index_format),
      "printf format of %{index} (%d, %03d, %x...)", NULL, NULL, 0, 0 },
    { "hex_random_length", LS_P_INT, "4", 0, offsetof(struct s3_out, hex_random_length),
      "length of %{hex_random}", NULL, NULL, 1, 16 },
    { "store_as", LS_P_STR, "gzip", 0, offsetof(struct s3_out, store_as),
      "gzip, zstd, lzma2 (.xz), json, text (gzip_command is taken as gzip) or parquet (its "
      "parameters in <compress>: see --describe parquet)", NULL, NULL, 0, 0 },
    { "command_parameter", LS_P_STR, NULL, LS_PF_NULLABLE,
      offsetof(struct s3_out, command_parameter),
      "lzma2: xz's options, of which the preset (-0..-9) is used (default -qf0); else ignored",
      NULL, NULL, 0, 0 },
    { "compression_level", LS_P_INT, NULL, 0, offsetof(struct s3_out, compression_level),
      "level of store_as: gzip 1-9 (default 6), zstd 1-22 (3), lzma2 0-9 (0); zstd's <compress> "
      "level also sets it (logship extension)",
      NULL, NULL, 0, 22 },
    { "check_object", LS_P_BOOL, "true", 0, offsetof(struct s3_out, check_object),
      "make sure the key is free (%{index}) before uploading", NULL, NULL, 0, 0 },
    { "overwrite", LS_P_BOOL, "false", 0, offsetof(struct s3_out, overwrite),
      "overwrite an existing object when the key has no %{index}", NULL, NULL, 0, 0 },
    { "check_bucket", LS_P_BOOL, "true", 0, offsetof(struct s3_out, check_bucket),
      "check the bucket exists at start", NULL, NULL, 0, 0 },
    { "auto_create_bucket", LS_P_BOOL, "true", 0, offsetof(struct s3_out, auto_create_bucket),
      "create the bucket if it does not exist (with check_bucket)", NULL, NULL, 0, 0 },
    { "check_apikey_on_start", LS_P_BOOL, "true", 0,
      offsetof(struct s3_out, check_apikey_on_start),
      "list the path prefix at start to check the credentials", NULL, NULL, 0, 0 },
    { "storage_class", LS_P_STR, "STANDARD", 0, offsetof(struct s3_out, storage_class),
      "x-amz-storage-class", NULL, NULL, 0, 0 },
    { "reduced_redundancy", LS_P_BOOL, "false", LS_PF_DEPRECATED,
      offsetof(struct s3_out, reduced_redundancy), "deprecated: storage_class REDUCED_REDUNDANCY",
      NULL, NULL, 0, 0 },
    { "acl", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct s3_out, acl),
      "canned ACL (private, bucket-owner-full-control...)", NULL, NULL, 0, 0 },
    { "grant_full_control", LS_P_STR, NULL, LS_PF_NULLABLE,
      offsetof(struct s3_out, grant_full_control), "x-amz-grant-full-control", NULL, NULL, 0, 0 },
    { "grant_read", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct s3_out, grant_read),
      "x-amz-grant-read", NULL, NULL, 0, 0 },
    { "grant_read_acp", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct s3_out, grant_read_acp),
      "x-amz-grant-read-acp", NULL, NULL, 0, 0 },
    { "grant_write_acp", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct s3_out, grant_write_acp),
      "x-amz-grant-write-acp", NULL, NULL, 0, 0 },
    { "use_server_side_encryption", LS_P_STR, NULL, LS_PF_NULLABLE,
      offsetof(struct s3_out, use_server_side_encryption), "AES256 or aws:kms", NULL, NULL, 0, 0 },
    { "ssekms_key_id", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct s3_out, ssekms_key_id),
      "KMS key id for aws:kms", NULL, NULL, 0, 0 },
    { "sse_customer_algorithm", LS_P_STR, NULL, LS_PF_NULLABLE,
      offsetof(struct s3_out, sse_customer_algorithm), "SSE-C algorithm (AES256)", NULL, NULL, 0,
      0 },
    { "sse_customer_key", LS_P_SECRET, NULL, LS_PF_NULLABLE,
      offsetof(struct s3_out, sse_customer_key), "SSE-C key (base64)", NULL, NULL, 0, 0 },
    { "sse_customer_key_md5", LS_P_STR, NULL, LS_PF_NULLABLE,
      offsetof(struct s3_out, sse_customer_key_md5), "SSE-C key MD5 (base64)", NULL, NULL, 0, 0 },
    { "s3_metadata", LS_P_HASH, NULL, 0, offsetof(struct s3_out, s3_metadata),
      "x-amz-meta-* headers; values take ${...} placeholders and %{index}", NULL, NULL, 0, 0 },
    { "tagging", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct s3_out, tagging),
      "object tags K1=V1&K2=V2", NULL, NULL, 0, 0 },
    { "content_type", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct s3_out, content_type),
      "Content-Type (default: by store_as)", NULL, NULL, 0, 0 },
    { "warn_for_delay", LS_P_TIME, "0", 0, offsetof(struct s3_out, warn_for_delay),
      "warn when a chunk is uploaded this long after its slice started (0: off)", NULL, NULL, 0,
      0 },
    { "time_slice_format", LS_P_STR, NULL, LS_PF_NULLABLE,
      offsetof(struct s3_out, time_slice_format),
      "%{time_slice} format (default from timekey: %Y%m%d for 1d, %Y%m%d%H for 1h...)", NULL,
      NULL, 0, 0 },
    { "multipart_threshold", LS_P_SIZE, "64m", 0, offsetof(struct s3_out, multipart_threshold),
      "upload compressed chunks larger than this in parts (logship extension)", NULL, NULL, 0,
      0 },
    { "multipart_chunk_size", LS_P_SIZE, "16m", 0, offsetof(struct s3_out, multipart_chunk_size),
      "part size of multipart uploads, >= 5m (logship extension)", NULL, NULL, 5 << 20,
      (double)(5ll << 30) },
    { "http_connect_timeout", LS_P_TIME, "10", 0, offsetof(struct s3_out, http_connect_timeout),
      "connect timeout (logship extension)", NULL, NULL, 0, 0 },
    { "http_stall_timeout", LS_P_TIME, "60", 0, offsetof(struct s3_out, http_stall_timeout),
      "abort a request that moves no byte for this long (logship extension)", NULL, NULL, 0, 0 },
    LS_PARAM_END
};


/* the parquet rows are fluent-plugin-s3's parquet compressor's; the parquet formatter reads them
 * (s3_formatter_for gives it this section), so they are declared here only */
#define S3_PQ_ROW(name, type, help) \
    { name, type, NULL, LS_PF_NO_STORE, 0, help " (store_as parquet; --describe parquet)", NULL, \
      NULL, 0, 0 }
static const struct ls_param s3_compress_params[] = {
    { "level", LS_P_INT, NULL, 0, offsetof(struct s3_compress_conf, level),
      "zstd level 1-22 (default 3), as fluent-plugin-s3's; also takes the other store_as levels, "
      "and the page codec's level with store_as parquet (zstd pages: 8)", NULL, NULL, 0, 22 },
    S3_PQ_ROW("parquet_compression_codec", LS_P_STR, "page compression"),
    S3_PQ_ROW("parquet_row_group_size", LS_P_SIZE, "buffered value bytes that end a row group"),
    S3_PQ_ROW("parquet_page_size", LS_P_SIZE, "value bytes per data page"),
    S3_PQ_ROW("schema_type", LS_P_STR, "format of schema_file: avro or bigquery"),
    S3_PQ_ROW("schema_file", LS_P_STR, "Avro or BigQuery JSON schema file"),
    S3_PQ_ROW("record_type", LS_P_STR, "accepted, ignored"),
    LS_PARAM_END
};


/* ------------------------------------------------------------------ */
/* the gate: credentials and start-up checks                            */

struct s3_cred_work {
    struct s3_out *s;
    struct aws_creds creds;
    int rc;
    char err[256];
};

static void s3_gate_fail(struct s3_out *s, long status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void s3_gate_settle(struct s3_out *s, bool ok)
{
    struct s3_job *w = s->waiters, *rev = NULL, *next;

    s->waiters = NULL;
    s->gate = ok ? S3_GATE_READY : S3_GATE_FAILED;
    for (; w; w = next) {        /* pushed in front: restore arrival order */
        next = w->next;
        w->next = rev;
        rev = w;
    }
    for (w = rev; w; w = next) {
        next = w->next;
        w->next = NULL;
        if (ok) {
            s3_job_resume(w);
        } else {
            s3_job_finish(w, LS_ERROR, s->gate_err);
        }
    }
}

/*
 * status: the HTTP status that failed the check, 0 for no answer, -1 for an answer no retry
 * changes that is not HTTP (no credentials anywhere). At start, an answer that no retry will
 * change (a 4xx: bad credentials, AccessDenied, no such bucket; a redirect to another region)
 * stops the start, as fluent-plugin-s3's start raises. The store being away (no connection, 5xx,
 * throttling) is not the configuration's fault: logship starts, keeps the records in its
 * buffer and retries, where fluentd would refuse to start.
 */
static void s3_gate_fail(struct s3_out *s, long status, const char *fmt, ...)
{
    va_list ap;
    bool final = status < 0 || (status >= 300 && status < 500 && status != 408 && status != 429) ||
                 s->eng->check_remote;

    va_start(ap, fmt);
    vsnprintf(s->gate_err, sizeof(s->gate_err), fmt, ap);
    va_end(ap);
    /* after the start, the buffer's retry line carries the message: one line per attempt */
    if (s->start_hold || s->eng->check_remote) {
        ls_plg_error(s->ins, "%s", s->gate_err);
    }
    if (s->start_hold) {
        s->start_hold = false;
        if (!final) {
            ls_plg_warn(s->ins, "starting anyway: records stay in the buffer and the check is "
                        "retried before the first upload");
        }
        ls_engine_release_start(s->eng, !final);
    }
    s3_gate_settle(s, false);
}

static void s3_gate_ready(struct s3_out *s)
{
    s->checks_done = true;
    s->gate_err[0] = '\0';
    if (s->start_hold) {
        s->start_hold = false;
        ls_engine_release_start(s->eng, true);
    }
    s3_gate_settle(s, true);
}

/* A check answered from the wrong region: S3 names the bucket's own in x-amz-bucket-region. */
static const char *s3_region_hint(struct s3_out *s, struct ls_http_resp *r, char *out, size_t n)
{
    char region[64];

    if (ls_http_resp_header(r, "x-amz-bucket-region", region, sizeof(region)) == NULL ||
        strcmp(region, s->addr.region) == 0) {
        return "";
    }
    snprintf(out, n, "; the bucket is in region '%s', not '%s': set s3_region %s", region,
             s->addr.region, region);
    return out;
}

static void s3_create_bucket_cb(struct s3_out *s, struct ls_http_resp *r, void *arg)
{
    char msg[512];
    LS_UNUSED(arg);

    if (r->status >= 200 && r->status < 300) {
        s3_gate_ready(s);
        return;
    }
    s3_describe_error(s, "CreateBucket", NULL, r, msg, sizeof(msg), NULL, 0);
    s3_gate_fail(s, r->status, "cannot create bucket '%s': %s", s->s3_bucket, msg);
}

static void s3_head_bucket_cb(struct s3_out *s, struct ls_http_resp *r, void *arg)
{
    char msg[512], hint[256];
    LS_UNUSED(arg);

    if (r->status >= 200 && r->status < 300) {
        s3_gate_ready(s);
        return;
    }
    if (r->status == 404) {
        if (s->auto_create_bucket) {
            struct ls_buf body;
            struct s3_call_opts o = { .method = "PUT", .fd = -1, .timeout = 60 };
            struct aws_kv h[1] = { { "Content-Type", "application/xml" } };
            int rc;
            ls_buf_init(&body, 0);
            if (strcmp(s->addr.region, "us-east-1") != 0) {
                ls_buf_printf(&body, "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/"
                              "doc/2006-03-01/\"><LocationConstraint>%s</LocationConstraint>"
                              "</CreateBucketConfiguration>", s->addr.region);
                o.body = body.p;
                o.body_len = body.len;
                o.headers = h;
                o.nheaders = 1;
            }
            ls_plg_info(s->ins, "Creating bucket %s on %s", s->s3_bucket, s->addr.base_url);
            rc = s3_call(s, &o, s3_create_bucket_cb, NULL);
            ls_buf_release(&body);
            if (rc != LS_OK) {
                s3_gate_fail(s, 0, "cannot create bucket '%s'", s->s3_bucket);
            }
            return;
        }
        s3_gate_fail(s, r->status, "The specified bucket does not exist: bucket = %s",
                     s->s3_bucket);
        return;
    }
    s3_describe_error(s, "HeadBucket", NULL, r, msg, sizeof(msg), NULL, 0);
    s3_gate_fail(s, r->status, "cannot check bucket '%s': %s%s", s->s3_bucket, msg,
                 s3_region_hint(s, r, hint, sizeof(hint)));
}

static void s3_check_bucket(struct s3_out *s)
{
    struct s3_call_opts o = { .method = "HEAD", .fd = -1, .timeout = 60 };

    if (!s->check_bucket) {
        s3_gate_ready(s);
        return;
    }
    if (s3_call(s, &o, s3_head_bucket_cb, NULL) != LS_OK) {
        s3_gate_fail(s, 0, "cannot check bucket '%s'", s->s3_bucket);
    }
}

static void s3_apikey_cb(struct s3_out *s, struct ls_http_resp *r, void *arg)
{
    char msg[512], hint[256];
    LS_UNUSED(arg);

    if (r->status >= 200 && r->status < 300) {
        s3_check_bucket(s);
        return;
    }
    s3_describe_error(s, "ListObjects", NULL, r, msg, sizeof(msg), NULL, 0);
    s3_gate_fail(s, r->status, "can't call S3 API. Please check your credentials or s3_region "
                 "configuration. error = %s%s", msg, s3_region_hint(s, r, hint, sizeof(hint)));
}

static void s3_run_checks(struct s3_out *s)
{
    struct aws_kv q[2] = { { "prefix", s->path }, { "max-keys", "1" } };
    struct s3_call_opts o = { .method = "GET", .query = q, .nquery = 2, .fd = -1, .timeout = 60 };

    if (!s->check_apikey_on_start) {
        s3_check_bucket(s);
        return;
    }
    if (s3_call(s, &o, s3_apikey_cb, NULL) != LS_OK) {
        s3_gate_fail(s, 0, "can't call S3 API: cannot start the request");
    }
}

static void s3_cred_work_run(void *arg)
{
    struct s3_cred_work *w = arg;

    w->rc = aws_cred_resolve(&w->s->cc, &w->creds, w->err, sizeof(w->err));
}

static void s3_cred_work_done(void *arg)
{
    struct s3_cred_work *w = arg;
    struct s3_out *s = w->s;

    if (w->rc != LS_OK) {
        aws_creds_release(&w->creds);
        s3_gate_fail(s, -1, "failed to get AWS credentials: %s", w->err);
        ls_free(w);
        return;
    }
    {
        char was[160], now[160];

        aws_creds_describe(&w->creds, now, sizeof(now));
        if (s->have_creds) {
            aws_creds_describe(&s->creds, was, sizeof(was));
        }
        /* once, and when they change: not at every retry of a store that is away */
        if (!s->have_creds || s->creds_stale || strcmp(was, now) != 0) {
            ls_info("s3: credentials from %s", now);
        }
    }
    aws_creds_release(&s->creds);
    s->creds = w->creds;       /* moved */
    s->have_creds = true;
    s->creds_stale = false;
    memset(&s->sigcache, 0, sizeof(s->sigcache));
    ls_free(w);
    if (!s->checks_done) {
        s3_run_checks(s);
    } else {
        s3_gate_ready(s);
    }
}

bool s3_gate_needed(struct s3_out *s)
{
    int64_t sec;
    int32_t ns;

    if (s->gate != S3_GATE_READY) {
        return true;
    }
    if (strcmp(s->creds.source, "config") == 0) {
        return false;     /* static keys never change */
    }
    ls_wall_now(&sec, &ns);
    return s->creds_stale || aws_cred_needs_refresh(&s->creds, sec);
}

void s3_gate_open(struct s3_out *s)
{
    struct s3_cred_work *w;

    if (s->gate == S3_GATE_BUSY) {
        return;
    }
    s->gate = S3_GATE_BUSY;
    w = ls_calloc(1, sizeof(*w));
    w->s = s;
    if (ls_work_submit(s->eng, s3_cred_work_run, s3_cred_work_done, w) != LS_OK) {
        ls_free(w);
        s3_gate_fail(s, 0, "cannot submit the credentials job");
    }
}

static void s3_start_cb(struct ls_timer *t, void *arg)
{
    struct s3_out *s = arg;
    LS_UNUSED(t);

    if (s->gate == S3_GATE_NONE) {
        s3_gate_open(s);
    }
}

/* ------------------------------------------------------------------ */
/* configuration                                                        */

static int s3_bind_sub(struct ls_conf_section *sec, const char *name, const struct ls_param *table,
                       void *dst, bool *present, char *err, size_t errlen)
{
    struct ls_conf_section *sub = ls_conf_child(sec, name);

    *present = sub != NULL;
    if (sub == NULL) {
        return LS_OK;
    }
    return ls_param_bind(table, sub, dst, err, errlen);
}

static bool s3_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

int s3_xz_preset(const char *cmd, bool *extreme)
{
    char *copy = ls_strdup(cmd), *rest = copy, *tok;
    bool skip_next = false;
    int preset = 6;

    *extreme = false;
    while ((tok = strsep(&rest, " \t")) != NULL) {
        if (tok[0] == '\0') {
            continue;
        }
        if (skip_next || tok[0] != '-' || tok[1] == '\0') {
            skip_next = false;
            continue;
        }
        if (tok[1] == '-') {
            if (strcmp(tok, "--fast") == 0) {
                preset = 0;
            } else if (strcmp(tok, "--best") == 0) {
                preset = 9;
            } else if (strcmp(tok, "--extreme") == 0) {
                *extreme = true;
            }
            continue;
        }
        for (const char *c = tok + 1; *c; c++) {
            if (*c >= '0' && *c <= '9') {
                preset = *c - '0';
            } else if (*c == 'e') {
                *extreme = true;
            } else if (strchr("TMFCS", *c)) {
                skip_next = c[1] == '\0';     /* the argument is the next word */
                break;
            }
        }
    }
    ls_free(copy);
    return preset;
}

/*
 * store_as: the payload's compression, extension and content type as
 * fluent-plugin-s3 names them, and the level: compression_level (logship's)
 * or <compress> level (the plugin's, for zstd), else the plugin's default
 * (zstd 3; lzma2 from command_parameter, "-qf0" = 0) or gzip's 6.
 */
static int s3_store_init(struct ls_instance *ins, struct ls_conf_section *sec, const char *file,
                         int line, char *err, size_t errlen)
{
    struct s3_out *s = ins->ctx;
    struct ls_conf_param *sp = sec ? ls_conf_get_param(sec, "store_as") : NULL;
    struct ls_conf_param *lp = sec ? ls_conf_get_param(sec, "compression_level") : NULL;
    struct ls_conf_section *cs = sec ? ls_conf_child(sec, "compress") : NULL;
    struct ls_conf_param *cp = cs ? ls_conf_get_param(cs, "level") : NULL;
    char range[16], why[256];

    s->algo = LS_COMPRESS_TEXT;
    s->level = -1;
    if (strcmp(s->store_as, "gzip") == 0 || strcmp(s->store_as, "gzip_command") == 0) {
        s->store = S3_STORE_GZIP;
        s->algo = LS_COMPRESS_GZIP;
        s->ext = "gz";
        s->ctype = "application/x-gzip";
        if (strcmp(s->store_as, "gzip_command") == 0) {
            ls_plg_info(ins, "store_as gzip_command: compressing in process (same .gz output)%s",
                        s->command_parameter ? "; command_parameter is ignored" : "");
        }
    } else if (strcmp(s->store_as, "zstd") == 0) {
        s->store = S3_STORE_ZSTD;
        s->algo = LS_COMPRESS_ZSTD;
        s->ext = "zst";
        s->ctype = "application/x-zst";
    } else if (strcmp(s->store_as, "lzma2") == 0) {
        bool extreme = false;
        s->store = S3_STORE_XZ;
        s->algo = LS_COMPRESS_XZ;
        s->ext = "xz";
        s->ctype = "application/x-xz";
        s->level = s->command_parameter ? s3_xz_preset(s->command_parameter, &extreme) : 0;
        if (extreme) {
            ls_plg_warn(ins, "command_parameter '%s': -e (extreme) is ignored; preset %d is used",
                        s->command_parameter, s->level);
        }
    } else if (strcmp(s->store_as, "json") == 0) {
        s->store = S3_STORE_JSON;
        s->ext = "json";
        s->ctype = "application/json";
    } else if (strcmp(s->store_as, "text") == 0) {
        s->store = S3_STORE_TEXT;
        s->ext = "txt";
        s->ctype = "text/plain";
    } else if (strcmp(s->store_as, "parquet") == 0) {
        /* the parquet formatter (s3_formatter_for) makes the whole file, with its own level */
        s->store = S3_STORE_PARQUET;
        s->ext = "parquet";
        s->ctype = "application/vnd.apache.parquet";
    } else if (strcmp(s->store_as, "lzo") == 0) {
        snprintf(err, errlen, "%s:%d: store_as '%s' is not supported (gzip, zstd, lzma2, json, "
                 "text or parquet)", sp ? sp->file : file, sp ? sp->line : line, s->store_as);
        return LS_ERROR;
    } else {
        /* fluent-plugin-s3: "'txt' not supported. Use 'text' instead" and falls back to text */
        ls_plg_warn(ins, "'%s' not supported. Use 'text' instead", s->store_as);
        s->store = S3_STORE_TEXT;
        s->ext = "txt";
        s->ctype = "text/plain";
    }
    if (ls_compress_load(s->algo, why, sizeof(why)) != LS_OK) {
        snprintf(err, errlen, "%s:%d: store_as %s: %s", sp ? sp->file : file, sp ? sp->line : line,
                 s->store_as, why);
        return LS_ERROR;
    }
    /* a side file of a compressed payload is named by its format; text and json are copies */
    s->side_ext = s->algo == LS_COMPRESS_TEXT && s->store != S3_STORE_PARQUET ? "txt" : s->ext;
    if (s->store == S3_STORE_PARQUET) {
        /* the formatter reads compression_level here only when it has no section of its own */
        if (lp && (cs || ls_conf_child(sec, "format"))) {
            snprintf(err, errlen, "%s:%d: with store_as parquet give compression_level in the "
                     "section with the Parquet parameters (<compress> or <format>)", lp->file,
                     lp->line);
            return LS_ERROR;
        }
        return LS_OK;
    }
    for (const struct ls_param *r = s3_compress_params; cs && r->name; r++) {
        struct ls_conf_param *q = (r->flags & LS_PF_NO_STORE) ? ls_conf_get_param(cs, r->name) : NULL;
        if (q) {
            ls_plg_warn(ins, "%s:%d: '%s' in <compress> is used only with store_as parquet", q->file,
                        q->line, r->name);
        }
    }
    if (lp && cp) {
        snprintf(err, errlen, "%s:%d: both compression_level (line %d) and <compress> level set "
                 "the level: keep one", cp->file, cp->line, lp->line);
        return LS_ERROR;
    }
    if (lp || cp) {
        struct ls_conf_param *p = lp ? lp : cp;
        s->level = (int)(lp ? s->compression_level : s->compress.level);
        if (!ls_compress_level_ok(s->algo, s->level, range, sizeof(range))) {
            snprintf(err, errlen, "%s:%d: store_as %s takes a level in %s, got %d", p->file,
                     p->line, s->store_as, range, s->level);
            return LS_ERROR;
        }
    }
    return LS_OK;
}

static int s3_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct s3_out *s = ins->ctx;
    const char *file = sec ? sec->file : "(config)";
    int line = sec ? sec->line : 0;
    char host[256] = "localhost";
    const char *fmt, *region;
    bool fmt_given = sec && ls_conf_get(sec, "s3_object_key_format") != NULL;
    struct ls_conf_section *bs;
    char msg[256];

    s->ins = ins;
    s->eng = ins->engine;
    s3_xml_global_init();

    if (aws_cred_sections_bind(sec, &s->credsec, err, errlen) != LS_OK ||
        s3_bind_sub(sec, "compress", s3_compress_params, &s->compress, &s->has_compress, err,
                    errlen) != LS_OK) {
        return LS_ERROR;
    }
    if (sec && ls_conf_child(sec, "bucket_lifecycle_rule")) {
        ls_plg_warn(ins, "<bucket_lifecycle_rule> is not supported; configure the rule on the "
                    "bucket instead");
    }
    if (s->aws_credential_process) {
        snprintf(err, errlen, "%s:%d: aws_credential_process is not supported (it runs an "
                 "external command); use <shared_credentials>, a role or static keys", file, line);
        return LS_ERROR;
    }
    if ((s->aws_key_id == NULL) != (s->aws_sec_key == NULL)) {
        snprintf(err, errlen, "%s:%d: aws_key_id and aws_sec_key must be given together", file,
                 line);
        return LS_ERROR;
    }
    {
        char herr[512];
        if (ls_http_helper_path(herr, sizeof(herr)) == NULL) {
            snprintf(err, errlen, "%s:%d: @type s3: %s", file, line, herr);
            return LS_ERROR;
        }
    }
    if (s->enable_transfer_acceleration || s->enable_dual_stack) {
        ls_plg_warn(ins, "enable_transfer_acceleration / enable_dual_stack are not supported; "
                    "set s3_endpoint to the accelerated or dual-stack host instead");
    }
    if (s->ssl_ca_directory) {
        ls_plg_warn(ins, "ssl_ca_directory is not supported; use ssl_ca_bundle");
    }
    if (s->checksum_algorithm) {
        ls_plg_warn(ins, "checksum_algorithm %s is ignored: logship sends Content-MD5 and the "
                    "SigV4 payload hash only", s->checksum_algorithm);
    }

    if (s3_store_init(ins, sec, file, line, err, errlen) != LS_OK) {
        return LS_ERROR;
    }
    if (s->algo == LS_COMPRESS_GZIP) {
        ls_output_early_gzip(ins, s->level);
    }
    if (s->content_type) {
        s->ctype = s->content_type;
    }

    /* key format */
    if (!s3_index_format_ok(s->index_format)) {
        snprintf(err, errlen, "%s:%d: index_format '%s' is invalid (%%d, %%0Nd, %%x, %%X)", file,
                 line, s->index_format);
        return LS_ERROR;
    }
    fmt = s->s3_object_key_format;
    if (!s->check_object && !fmt_given) {
        fmt = S3_NOCHECK_KEY_FORMAT;
    }
    if (strstr(fmt, "%{hostname}")) {
        ls_plg_warn(ins, "%%{hostname} will be removed in the future. Use \"#{Socket.gethostname}\" "
                    "instead");
    }
    if (gethostname(host, sizeof(host) - 1) != 0) {
        snprintf(host, sizeof(host), "localhost");
    }
    s->key_tmpl = s3_tmpl_prepare(fmt, s->path, s->ext, host, msg, sizeof(msg));
    if (s->key_tmpl == NULL) {
        ls_conf_param_error(sec, "s3_object_key_format", err, errlen, "%s", msg);
        return LS_ERROR;
    }
    {
        char ph[4] = { S3_PH_START, S3_PH_INDEX, S3_PH_END, 0 };
        s->key_has_index = strstr(s->key_tmpl, ph) != NULL;
    }
    if (s->s3_metadata.n) {
        s->meta_tmpl = ls_calloc(s->s3_metadata.n, sizeof(char *));
        for (size_t i = 0; i < s->s3_metadata.n; i++) {
            s->meta_tmpl[i] = s3_tmpl_prepare(s->s3_metadata.v[i].value, "", "", host, err,
                                              errlen);
            if (s->meta_tmpl[i] == NULL) {
                return LS_ERROR;
            }
        }
    }
    /* %{time_slice}: time_slice_format, else from the buffer's timekey (fluent-plugin-s3) */
    if (s->time_slice_format) {
        s->slice_fmt = ls_strdup(s->time_slice_format);
    } else {
        double tk = 86400;
        const char *v;
        bs = sec ? ls_conf_child(sec, "buffer") : NULL;
        if (bs && (v = ls_conf_get(bs, "timekey")) != NULL && ls_parse_time(v, &tk) != LS_OK) {
            tk = 86400;
        }
        s->slice_fmt = ls_strdup(ls_timekey_format(tk));
    }
    if (s->multipart_chunk_size < (5 << 20)) {
        snprintf(err, errlen, "%s:%d: multipart_chunk_size must be at least 5m (S3's minimum "
                 "part size)", file, line);
        return LS_ERROR;
    }

    /* endpoint */
    if (s->s3_endpoint && s->s3_endpoint[0]) {
        const char *e = s->s3_endpoint;
        const char *hostpart = strstr(e, "://") ? strstr(e, "://") + 3 : e;
        char hbuf[256];
        size_t hl = strcspn(hostpart, ":/");
        snprintf(hbuf, sizeof(hbuf), "%.*s", (int)(hl < 255 ? hl : 255), hostpart);
        if (s3_ends_with(hbuf, "amazonaws.com") && !strstr(hbuf, "vpce.amazonaws.com") &&
            !strstr(hbuf, "fips") && !strstr(hbuf, "gov")) {
            snprintf(err, errlen, "%s:%d: s3_endpoint parameter is not supported for S3, use "
                     "s3_region instead. This parameter is for S3 compatible services", file,
                     line);
            return LS_ERROR;
        }
        if (!strstr(e, "://")) {
            /* 2014 configs: "s3_endpoint b.storage.sakura.ad.jp" (+ use_ssl) */
            s->endpoint_url = ls_asprintf("%s://%s", s->use_ssl ? "https" : "http", e);
        } else {
            s->endpoint_url = ls_strdup(e);
        }
    }
    region = s->s3_region && s->s3_region[0] ? s->s3_region : getenv("AWS_REGION");
    if (s3_addr_init(&s->addr, s->endpoint_url, region, s->s3_bucket, s->force_path_style, err,
                     errlen) != LS_OK) {
        char tmp[256];
        snprintf(tmp, sizeof(tmp), "%s", err);
        snprintf(err, errlen, "%s:%d: %s", file, line, tmp);
        return LS_ERROR;
    }

    /* credentials */
    s->cc.key_id = s->aws_key_id;
    s->cc.secret = s->aws_sec_key;
    s->cc.aws_profile = s->aws_profile;
    aws_cred_sections_fill(ins, &s->credsec, &s->cc);
    if (!s->credsec.has_imds && s->aws_iam_retries > 0) {
        s->cc.instance_profile = true;      /* the deprecated flat form */
        s->cc.imds_retries = (int)s->aws_iam_retries;
    }

    ls_plg_info(ins, "s3 output: bucket '%s' at %s (%s, %s style, signature %s), keys '%s'",
                s->s3_bucket, s->addr.base_url, s->addr.region,
                s->addr.path_style ? "path" : "virtual-hosted",
                s->signature_version == S3_SIG_V2 ? "V2" : "V4", fmt);
    /* the first loop iteration resolves credentials and runs the start-up checks */
    s->start_timer = ls_timer_new(ins, s3_start_cb, s);
    ls_timer_start(s->start_timer, 0, 0);
    if (s->check_apikey_on_start || s->check_bucket) {
        s->start_hold = true;
        ls_engine_hold_start(s->eng);
    }
    return LS_OK;
}

static void s3_destroy(struct ls_instance *ins)
{
    struct s3_out *s = ins->ctx;

    if (s == NULL) {
        return;
    }
    ls_timer_free(s->start_timer);
    s->start_timer = NULL;
    aws_creds_release(&s->creds);
    s3_addr_release(&s->addr);
    s3_key_release_all(s);
    if (s->meta_tmpl) {
        for (size_t i = 0; i < s->s3_metadata.n; i++) {
            ls_free(s->meta_tmpl[i]);
        }
        ls_free(s->meta_tmpl);
    }
    ls_free(s->key_tmpl);
    ls_free(s->slice_fmt);
    ls_free(s->endpoint_url);
    aws_cred_sections_release(&s->credsec);
    ls_param_release(s3_compress_params, &s->compress);
}

static int s3_write(struct ls_instance *ins, struct ls_chunk *c)
{
    return s3_job_start(ins->ctx, c);
}

static void s3_abandon(struct ls_instance *ins, struct ls_chunk *c)
{
    s3_job_abandon(ins->ctx, c);
}

/*
 * store_as parquet writes with the parquet formatter, whose parameters are read from
 * fluent-plugin-s3's <compress> section (parquet_compression_codec, schema_file...), from
 * <format> (@type parquet or none), or else from the s3 section itself.
 */
static const char *s3_formatter_for(struct ls_conf_section *sec, struct ls_conf_section **fsec,
                                    char *err, size_t errlen)
{
    const char *store = ls_conf_get(sec, "store_as");
    struct ls_conf_section *fs = ls_conf_child(sec, "format");
    struct ls_conf_section *cs = ls_conf_child(sec, "compress");

    if (store == NULL || strcmp(store, "parquet") != 0) {
        if (fs && ls_conf_type(fs) && strcmp(ls_conf_type(fs), "parquet") == 0) {
            snprintf(err, errlen, "%s:%d: <format> @type parquet needs store_as parquet (a "
                     "Parquet file is compressed inside)", fs->file, fs->line);
        }
        return NULL;
    }
    if (fs && ls_conf_type(fs) && strcmp(ls_conf_type(fs), "parquet") != 0) {
        snprintf(err, errlen, "%s:%d: store_as parquet writes Parquet files: <format> @type %s "
                 "cannot be used with it (drop <format>, or use @type parquet)", fs->file,
                 fs->line, ls_conf_type(fs));
        return NULL;
    }
    if (fs && cs) {
        snprintf(err, errlen, "%s:%d: give the Parquet parameters in <format> or in <compress>, "
                 "not both", cs->file, cs->line);
        return NULL;
    }
    *fsec = fs ? fs : cs ? cs : sec;
    return "parquet";
}

const struct ls_plugin ls_plugin_out_s3 = {
    .name = "s3",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "upload time-sliced chunks to S3 or an S3-compatible store "
                   "(fluent-plugin-s3 compatible)",
    .params = s3_params,
    .ctx_size = sizeof(struct s3_out),
    .init = s3_init,
    .destroy = s3_destroy,
    .output_flags = LS_OUT_BUFFERED,
    .default_formatter = "out_file",
    .default_chunk_keys = "time",
    .formatter_for = s3_formatter_for,
    .write = s3_write,
    .abandon = s3_abandon,
};
