/*
 * out_http.c - fluentd's out_http (core since v1.7): each chunk is one POST (or PUT) of its
 * formatted records to an endpoint, with fluentd's parameters, defaults and answers.
 *
 * The body is the chunk's payload as the formatter wrote it (json: one object per line,
 * Content-Type application/x-ndjson), with json_array the objects joined into one JSON array
 * exactly as fluentd writes it ("[" + each line + "," ... without the last "," + "]"), and
 * with compress gzip one gzip stream (Content-Encoding: gzip). It is built on a worker thread
 * into a memfd, so the loop thread never reads or compresses a chunk, and sent by the
 * logship-http helper (agent/http.h), which keeps connections alive between chunks.
 *
 * Answers, as fluentd's: 2xx delivers the chunk; a code in retryable_response_codes (503 when
 * unset, with fluentd's warning) and any connection error or timeout are retried with the
 * buffer's backoff while the chunk stays buffered; any other code is unrecoverable (the chunk
 * goes to <secondary> or the backup directory at once) unless error_response_as_unrecoverable
 * is false, when it is logged and the chunk dropped, as fluentd drops it.
 *
 * Not supported: <auth> method aws_sigv4 (a configuration error naming its line).
 */
#include "plugin.h"
#include "log.h"
#include "http.h"
#include "compress.h"
#include "param.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum { OH_TEXT, OH_GZIP };

struct oh {
    char *endpoint;
    int http_method;                /* 0 post, 1 put */
    char *proxy;
    char *content_type;
    bool json_array;
    struct ls_kvv headers;
    struct ls_kvv headers_ph;
    int64_t open_timeout, read_timeout, ssl_timeout;
    bool reuse_connections;
    char *tls_ca_cert_path, *tls_client_cert_path, *tls_private_key_path;
    char *tls_private_key_passphrase;
    int tls_verify_mode;            /* 0 none, 1 peer */
    int tls_version;
    char *tls_ciphers;
    bool error_response_as_unrecoverable;
    struct ls_strv retryable_response_codes;
    int compress;
    /* <auth> */
    int auth_method;                /* 0 basic, 1 aws_sigv4 */
    char *username, *password, *aws_service, *aws_region, *aws_role_arn;

    /* derived */
    struct ls_instance *ins;
    bool auth;
    long *codes;
    size_t ncodes;
    char *ctype;
    char *auth_header;
    bool tls;
};

#define F(f) offsetof(struct oh, f)

static const struct ls_param oh_params[] = {
    { "endpoint", LS_P_STR, NULL, LS_PF_REQUIRED, F(endpoint),
      "URL of the requests; placeholders ${tag}, ${tag[N]}, ${key} and strftime %-sequences "
      "come from the chunk's keys", NULL, NULL, 0, 0 },
    { "http_method", LS_P_ENUM, "post", 0, F(http_method), "post or put", NULL, "post|put", 0,
      0 },
    { "proxy", LS_P_STR, "", LS_PF_NULLABLE, F(proxy),
      "proxy URL (unset: $HTTP_PROXY or $http_proxy, as fluentd)", NULL, NULL, 0, 0 },
    { "content_type", LS_P_STR, "", LS_PF_NULLABLE, F(content_type),
      "Content-Type (unset: from the formatter: json application/x-ndjson, or application/json "
      "with json_array; csv text/csv; tsv and ltsv text/tab-separated-values; msgpack "
      "application/x-msgpack; out_file, single_value, stdout, hash text/plain)", NULL, NULL, 0,
      0 },
    { "json_array", LS_P_BOOL, "false", 0, F(json_array),
      "send the records as one JSON array (json formatter only)", NULL, NULL, 0, 0 },
    { "headers", LS_P_HASH, NULL, 0, F(headers), "more request headers", NULL, NULL, 0, 0 },
    { "headers_from_placeholders", LS_P_HASH, NULL, 0, F(headers_ph),
      "more request headers whose values take the chunk's placeholders", NULL, NULL, 0, 0 },
    { "open_timeout", LS_P_INT, "0", 0, F(open_timeout),
      "seconds to connect (0: 60, Net::HTTP's default)", NULL, NULL, 0, 1e6 },
    { "read_timeout", LS_P_INT, "0", 0, F(read_timeout),
      "give up when no byte moves for this many seconds (0: 60, Net::HTTP's default)", NULL,
      NULL, 0, 1e6 },
    { "ssl_timeout", LS_P_INT, "0", 0, F(ssl_timeout),
      "accepted; the TLS session lifetime it sets in Ruby has no use here", NULL, NULL, 0, 1e6 },
    { "reuse_connections", LS_P_BOOL, "false", 0, F(reuse_connections),
      "accepted; connections are always kept alive between requests", NULL, NULL, 0, 0 },
    { "tls_ca_cert_path", LS_P_STR, "", LS_PF_NULLABLE, F(tls_ca_cert_path),
      "CA certificates to trust (unset: the system's)", NULL, NULL, 0, 0 },
    { "tls_client_cert_path", LS_P_STR, "", LS_PF_NULLABLE, F(tls_client_cert_path),
      "client certificate (PEM, intermediates after it)", NULL, NULL, 0, 0 },
    { "tls_private_key_path", LS_P_STR, "", LS_PF_NULLABLE, F(tls_private_key_path),
      "its private key (PEM)", NULL, NULL, 0, 0 },
    { "tls_private_key_passphrase", LS_P_SECRET, "", LS_PF_NULLABLE,
      F(tls_private_key_passphrase), "the key's passphrase", NULL, NULL, 0, 0 },
    { "tls_verify_mode", LS_P_ENUM, "peer", 0, F(tls_verify_mode),
      "peer: check the server's certificate and name; none: do not", NULL, "none|peer", 0, 0 },
    { "tls_version", LS_P_ENUM, "TLSv1_2", 0, F(tls_version),
      "lowest TLS version (fluentd's Ruby speaks only this one)", NULL,
      "TLSv1_1|TLSv1_2|TLSv1_3|TLS1_1|TLS1_2|TLS1_3", 0, 0 },
    { "tls_ciphers", LS_P_STR, "ALL:!aNULL:!eNULL:!SSLv2", 0, F(tls_ciphers),
      "OpenSSL cipher list (TLS 1.2 and lower)", NULL, NULL, 0, 0 },
    { "error_response_as_unrecoverable", LS_P_BOOL, "true", 0,
      F(error_response_as_unrecoverable),
      "a non-2xx answer not in retryable_response_codes sends the chunk to <secondary> or "
      "backup; false: it is logged and the chunk dropped", NULL, NULL, 0, 0 },
    { "retryable_response_codes", LS_P_ARRAY, NULL, 0, F(retryable_response_codes),
      "answers retried with backoff (unset: [503], with fluentd's warning)", NULL, NULL, 0, 0 },
    { "compress", LS_P_ENUM, "text", 0, F(compress),
      "gzip: a gzip body with Content-Encoding: gzip", NULL, "text|gzip", 0, 0 },
    { "auth: method, username, password", LS_P_SECRET, NULL, LS_PF_NO_STORE, 0,
      "`<auth>`: method basic (the only one supported; aws_sigv4 is refused) with username "
      "and password", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static const struct ls_param oh_auth_params[] = {
    { "method", LS_P_ENUM, "basic", 0, F(auth_method), "basic or aws_sigv4", NULL,
      "basic|aws_sigv4", 0, 0 },
    { "username", LS_P_STR, "", 0, F(username), "user", NULL, NULL, 0, 0 },
    { "password", LS_P_SECRET, "", 0, F(password), "password", NULL, NULL, 0, 0 },
    { "aws_service", LS_P_STR, "", LS_PF_NULLABLE, F(aws_service), "not supported", NULL, NULL,
      0, 0 },
    { "aws_region", LS_P_STR, "", LS_PF_NULLABLE, F(aws_region), "not supported", NULL, NULL,
      0, 0 },
    { "aws_role_arn", LS_P_STR, "", LS_PF_NULLABLE, F(aws_role_arn), "not supported", NULL,
      NULL, 0, 0 },
    LS_PARAM_END
};

/* fluentd's setup_content_type */
static const char *oh_default_type(const char *fmt, bool json_array)
{
    if (strcmp(fmt, "json") == 0) {
        return json_array ? "application/json" : "application/x-ndjson";
    }
    if (strcmp(fmt, "csv") == 0) {
        return "text/csv";
    }
    if (strcmp(fmt, "tsv") == 0 || strcmp(fmt, "ltsv") == 0) {
        return "text/tab-separated-values";
    }
    if (strcmp(fmt, "msgpack") == 0) {
        return "application/x-msgpack";
    }
    if (strcmp(fmt, "out_file") == 0 || strcmp(fmt, "single_value") == 0 ||
        strcmp(fmt, "stdout") == 0 || strcmp(fmt, "hash") == 0) {
        return "text/plain";
    }
    return NULL;
}

static bool oh_file_ok(struct oh *o, struct ls_conf_section *sec, const char *key,
                       const char *path, char *err, size_t errlen)
{
    struct stat st;

    if (path == NULL || !o->tls || (stat(path, &st) == 0 && S_ISREG(st.st_mode))) {
        return true;
    }
    ls_conf_param_error(sec, key, err, errlen, "%s is wrong: %s", key, path);
    return false;
}

/* Net::HTTP's basic_auth: the header with "user:password" in base64 */
static char *oh_basic_auth(const char *user, const char *password)
{
    char *up = ls_asprintf("%s:%s", user ? user : "", password ? password : "");
    size_t n = strlen(up);
    char *b = ls_malloc(4 * ((n + 2) / 3) + 1), *h;

    ls_base64((const unsigned char *)up, n, b);
    h = ls_asprintf("Authorization: Basic %s", b);
    ls_free(b);
    ls_free(up);
    return h;
}

static int oh_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                   size_t errlen)
{
    struct oh *o = ins->ctx;
    struct ls_conf_section *fs = ls_conf_child(sec, "format"), *as = ls_conf_child(sec, "auth");
    const char *fmt = fs && ls_conf_type(fs) ? ls_conf_type(fs) : "json";
    size_t i;

    o->ins = ins;
    if (fs == NULL && ls_conf_get_param(sec, "format") != NULL) {
        fmt = ls_conf_get(sec, "format");         /* v0.12 flat format */
    }
    o->tls = strncmp(o->endpoint, "https", 5) == 0;
    if (o->json_array && strcmp(fmt, "json") != 0) {
        ls_conf_param_error(sec, "json_array", err, errlen,
                            "json_array option could be used with json formatter only");
        return LS_ERROR;
    }
    if (o->content_type) {
        o->ctype = ls_strdup(o->content_type);
    } else if (oh_default_type(fmt, o->json_array)) {
        o->ctype = ls_strdup(oh_default_type(fmt, o->json_array));
    } else {
        snprintf(err, errlen, "%s:%d: can't determine Content-Type from formatter type '%s'. "
                 "Set content_type parameter explicitly", sec->file, sec->line, fmt);
        return LS_ERROR;
    }
    if (ls_conf_get_param(sec, "retryable_response_codes") == NULL) {
        ls_plg_warn(ins, "Status code 503 is going to be removed from default "
                    "`retryable_response_codes` from fluentd v2. Please add it by yourself if "
                    "you wish");
        o->codes = ls_calloc(1, sizeof(*o->codes));
        o->codes[0] = 503;
        o->ncodes = 1;
    } else {
        o->codes = ls_calloc(o->retryable_response_codes.n + 1, sizeof(*o->codes));
        for (i = 0; i < o->retryable_response_codes.n; i++) {
            int64_t v;
            if (ls_parse_int(o->retryable_response_codes.v[i], &v) != LS_OK || v < 100 ||
                v > 999) {
                ls_conf_param_error(sec, "retryable_response_codes", err, errlen,
                                    "retryable_response_codes: '%s' is not an HTTP status code",
                                    o->retryable_response_codes.v[i]);
                return LS_ERROR;
            }
            o->codes[o->ncodes++] = (long)v;
        }
    }
    if (!oh_file_ok(o, sec, "tls_ca_cert_path", o->tls_ca_cert_path, err, errlen) ||
        !oh_file_ok(o, sec, "tls_client_cert_path", o->tls_client_cert_path, err, errlen) ||
        !oh_file_ok(o, sec, "tls_private_key_path", o->tls_private_key_path, err, errlen)) {
        return LS_ERROR;
    }
    if (o->proxy == NULL) {
        const char *p = getenv("HTTP_PROXY");
        if (p == NULL || p[0] == '\0') {
            p = getenv("http_proxy");
        }
        if (p && p[0]) {
            o->proxy = ls_strdup(p);
        }
    }
    if (as) {
        o->auth = true;
        if (ls_param_bind(oh_auth_params, as, o, err, errlen) != LS_OK) {
            return LS_ERROR;
        }
        if (o->auth_method == 1) {
            snprintf(err, errlen, "%s:%d: <auth> method aws_sigv4 is not supported by logship's "
                     "http output (basic is)", as->file, as->line);
            return LS_ERROR;
        }
        o->auth_header = oh_basic_auth(o->username, o->password);
    }
    if (o->compress == OH_GZIP && ls_compress_load(LS_COMPRESS_GZIP, err, errlen) != LS_OK) {
        return LS_ERROR;
    }
    return LS_OK;
}

/* ---- one chunk ---- */

struct oh_job {
    struct oh *o;
    struct ls_chunk *c;
    int fd;                      /* the body, in a memfd */
    uint64_t size;
    int rc;
    char err[256];
    char *url;
    /* json_array's reader state */
    struct ls_chunk_reader *r;
    int stage;                   /* 0: "[" not yet, 1: records, 2: "]" given */
    bool comma;                  /* a record ended: "," before the next byte */
    char *buf;
    size_t blen, boff;
};

/* The chunk as fluentd's json_array body: "[" + "rec\n" + "," + "rec\n" ... + "]" */
static long oh_array_read(void *arg, void *out, size_t n)
{
    struct oh_job *j = arg;
    char *o = out;
    size_t k = 0;

    while (k < n && j->stage < 2) {
        if (j->stage == 0) {
            o[k++] = '[';
            j->stage = 1;
            continue;
        }
        if (j->boff == j->blen) {
            long got = ls_chunk_reader_read(j->r, j->buf, 65536);
            if (got < 0) {
                return -1;
            }
            if (got == 0) {
                o[k++] = ']';
                j->stage = 2;
                break;
            }
            j->blen = (size_t)got;
            j->boff = 0;
        }
        if (j->comma) {
            o[k++] = ',';
            j->comma = false;
            continue;
        }
        while (k < n && j->boff < j->blen) {
            char c = j->buf[j->boff++];
            o[k++] = c;
            if (c == '\n') {
                j->comma = true;
                break;
            }
        }
    }
    return (long)k;
}

static long oh_plain_read(void *arg, void *out, size_t n)
{
    struct oh_job *j = arg;
    return ls_chunk_reader_read(j->r, out, n);
}

/* Worker thread: the body into a memfd. */
static void oh_build(void *arg)
{
    struct oh_job *j = arg;
    struct oh *o = j->o;
    char cerr[200] = "";
    struct stat st;

    j->rc = LS_ERROR;
    j->fd = memfd_create("logship-http-body", MFD_CLOEXEC);
    j->r = ls_chunk_reader_open(j->c);
    if (j->fd < 0 || j->r == NULL) {
        snprintf(j->err, sizeof(j->err), "cannot read chunk %s into a memfd (%d: %s)",
                 ls_chunk_info(j->c)->id, errno, strerror(errno));
        goto out;
    }
    if (o->json_array) {
        j->buf = ls_malloc(65536);
    }
    if (ls_compress_stream(o->compress == OH_GZIP ? LS_COMPRESS_GZIP : LS_COMPRESS_TEXT, -1,
                           o->json_array ? oh_array_read : oh_plain_read, j, j->fd, NULL, cerr,
                           sizeof(cerr)) != LS_OK || fstat(j->fd, &st) != 0) {
        snprintf(j->err, sizeof(j->err), "building the body of chunk %s failed: %s",
                 ls_chunk_info(j->c)->id, cerr[0] ? cerr : strerror(errno));
        goto out;
    }
    j->size = (uint64_t)st.st_size;
    j->rc = LS_OK;
out:
    if (j->r) {
        ls_chunk_reader_close(j->r);
        j->r = NULL;
    }
    ls_free(j->buf);
    j->buf = NULL;
}

static void oh_job_free(struct oh_job *j)
{
    if (j->fd >= 0) {
        close(j->fd);
    }
    ls_free(j->url);
    ls_free(j);
}

static bool oh_retryable(const struct oh *o, long status)
{
    for (size_t i = 0; i < o->ncodes; i++) {
        if (o->codes[i] == status) {
            return true;
        }
    }
    return false;
}

/* "503 Service Unavailable <body>", as fluentd words an error answer */
static void oh_answer_text(const struct ls_http_resp *resp, char *out, size_t outlen)
{
    const char *h = resp->headers.p ? resp->headers.p : "";
    const char *sp = strchr(h, ' '), *reason = "", *eol;
    size_t rlen = 0, blen = resp->body.len;
    const char *body = resp->body.p ? resp->body.p : "";

    if (sp && (sp = strchr(sp + 1, ' ')) != NULL) {
        reason = sp + 1;
        eol = strpbrk(reason, "\r\n");
        rlen = eol ? (size_t)(eol - reason) : strlen(reason);
    }
    while (blen > 0 && (*body == ' ' || *body == '\n' || *body == '\r' || *body == '\t')) {
        body++;
        blen--;
    }
    snprintf(out, outlen, "%ld %.*s %.*s", resp->status, (int)(rlen > 80 ? 80 : rlen), reason,
             (int)(blen > 160 ? 160 : blen), body);
}

static void oh_sent(struct ls_http_resp *resp, void *arg)
{
    struct oh_job *j = arg;
    struct oh *o = j->o;
    struct ls_instance *ins = o->ins;
    const char *m = o->http_method ? "PUT" : "POST";
    char msg[300];
    int rc;

    if (resp->status >= 200 && resp->status < 300) {
        ins->metrics.write_bytes += j->size;
        ls_output_delivered(ins, j->c, j->url, j->size);
        rc = LS_OK;
    } else if (resp->status == 0) {
        snprintf(msg, sizeof(msg), "%s %s failed: %s", m, j->url,
                 resp->error[0] ? resp->error : "no answer");
        rc = LS_ERROR;
    } else {
        char text[260];
        oh_answer_text(resp, text, sizeof(text));
        snprintf(msg, sizeof(msg), "%s %s: %s", m, j->url, text);
        if (oh_retryable(o, resp->status)) {
            rc = LS_ERROR;
        } else if (o->error_response_as_unrecoverable) {
            rc = LS_DECLINED;
        } else {
            /* fluentd logs it and takes the chunk as written */
            ls_plg_error(ins, "got error response from '%s %s' : %s", m, j->url, text);
            rc = LS_OK;
        }
    }
    ls_output_write_done(ins, j->c, rc, rc == LS_OK ? NULL : msg);
    oh_job_free(j);
}

static bool oh_is(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

/* Loop thread: the body is built; send it. */
static void oh_built(void *arg)
{
    struct oh_job *j = arg;
    struct oh *o = j->o;
    struct ls_instance *ins = o->ins;
    struct ls_http_req req;
    struct ls_buf h;
    size_t i;

    if (j->rc != LS_OK) {
        ls_output_write_done(ins, j->c, LS_ERROR, j->err);
        oh_job_free(j);
        return;
    }
    j->url = ls_chunk_expand_str(j->c, o->endpoint);
    if (j->url == NULL) {
        snprintf(j->err, sizeof(j->err), "endpoint '%s' has a placeholder chunk %s cannot fill",
                 o->endpoint, ls_chunk_info(j->c)->id);
        ls_output_write_done(ins, j->c, LS_DECLINED, j->err);
        oh_job_free(j);
        return;
    }
    /* Net::HTTP's order: headers, then headers_from_placeholders, then Content-Type, each
     * replacing a header of the same name */
    ls_buf_init(&h, 0);
    for (i = 0; i < o->headers.n; i++) {
        if (!oh_is(o->headers.v[i].key, "Content-Type") &&
            ls_kvv_get(&o->headers_ph, o->headers.v[i].key) == NULL) {
            ls_http_hdr_set(&h, o->headers.v[i].key, o->headers.v[i].value);
        }
    }
    for (i = 0; i < o->headers_ph.n; i++) {
        char *v = ls_chunk_expand_str(j->c, o->headers_ph.v[i].value);
        if (!oh_is(o->headers_ph.v[i].key, "Content-Type")) {
            ls_http_hdr_set(&h, o->headers_ph.v[i].key, v ? v : "");
        }
        ls_free(v);
    }
    ls_http_hdr_set(&h, "Content-Type", o->ctype);
    if (o->compress == OH_GZIP) {
        ls_http_hdr_set(&h, "Content-Encoding", "gzip");
    }
    if (o->auth_header) {
        ls_http_hdr_add(&h, o->auth_header);
    }
    ls_http_hdr_add(&h, "Expect:");      /* Net::HTTP does not wait for 100-continue */
    memset(&req, 0, sizeof(req));
    req.method = o->http_method ? "PUT" : "POST";
    req.url = j->url;
    req.headers = &h;
    req.body_fd = j->fd;
    req.body_off = 0;
    req.body_file_len = j->size;
    req.connect_timeout = o->open_timeout > 0 ? (double)o->open_timeout : 60;
    req.low_speed_time = o->read_timeout > 0 ? (double)o->read_timeout : 60;
    req.verify_peer = o->tls_verify_mode == 1;
    req.ca_file = o->tls_ca_cert_path;
    req.proxy = o->proxy;
    req.max_response = 64 * 1024;
    if (o->tls) {
        req.client_cert = o->tls_client_cert_path;
        req.client_key = o->tls_private_key_path;
        req.key_passwd = o->tls_private_key_passphrase;
        req.ciphers = o->tls_ciphers;
        req.tls_min = o->tls_version % 3 + 1;
    }
    ls_output_write_sending(ins, j->c);
    if (ls_http_submit(ins->engine, &req, oh_sent, j) != LS_OK) {
        ls_buf_release(&h);
        snprintf(j->err, sizeof(j->err), "cannot start the request to %s", j->url);
        ls_output_write_done(ins, j->c, LS_ERROR, j->err);
        oh_job_free(j);
        return;
    }
    ls_buf_release(&h);
}

static int oh_write(struct ls_instance *ins, struct ls_chunk *c)
{
    struct oh_job *j = ls_calloc(1, sizeof(*j));

    j->o = ins->ctx;
    j->c = c;
    j->fd = -1;
    if (ls_work_submit(ins->engine, oh_build, oh_built, j) != LS_OK) {
        ls_free(j);
        return LS_ERROR;
    }
    return LS_AGAIN;
}

static void oh_destroy(struct ls_instance *ins)
{
    struct oh *o = ins->ctx;

    if (o->auth) {
        ls_param_release(oh_auth_params, o);
    }
    ls_free(o->codes);
    ls_free(o->ctype);
    ls_free(o->auth_header);
}

const struct ls_plugin ls_plugin_out_http = {
    .name = "http",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "POST (or PUT) each chunk's records to an HTTP endpoint (fluentd's out_http)",
    .params = oh_params,
    .ctx_size = sizeof(struct oh),
    .init = oh_init,
    .destroy = oh_destroy,
    .output_flags = LS_OUT_BUFFERED,
    .default_formatter = "json",
    .write = oh_write,
};
