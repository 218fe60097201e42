/*
 * s3_upload.c - one chunk's journey to S3: compress in a worker, resolve
 * the key, PUT (or hand over to s3_multipart.c), all requests signed and
 * sent on the event loop through ls_http_submit.
 *
 * The design decision is that a chunk's upload is a small persisted state
 * machine: everything that must not change between attempts (the object
 * key, the digest of the compressed payload, a multipart upload id, part
 * size and part ETags) is written to the chunk's state (ls_chunk_set_state,
 * kept next to the chunk by the file buffer) before it is relied on. A
 * retry after a failure, or the next process after kill -9, reads it back
 * and continues: the same key is overwritten rather than a second object
 * written, a multipart upload resumes rather than restarting. The
 * compressed payload is a side file of the chunk (deleted with it); it is
 * written to a temporary name and renamed, so if it exists it is complete.
 *
 * Retries are the buffer's: every failure ends the write with LS_ERROR and
 * a message naming the S3 error code (never credentials). Two failures are
 * also corrected here before the retry: RequestTimeTooSkewed (the server's
 * Date sets a clock offset used when signing) and expired temporary
 * credentials (refreshed through the gate in s3.c before the next request).
 */
#include "s3_out.h"
#include "log.h"
#include "timefmt.h"

#include <ctype.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define S3_MAX_RESPONSE (8u << 20)

int64_t s3_now(const struct s3_out *s)
{
    int64_t sec;
    int32_t ns;

    ls_wall_now(&sec, &ns);
    return sec + s->clock_offset;
}

int64_t s3_parse_http_date(const char *s)
{
    /* "Sun, 06 Nov 1994 08:49:37 GMT" */
    static const char *const mons[12] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    const char *p = strchr(s, ',');
    char *end;
    long day, year, hh, mm, ss;
    int mon = -1;

    if (p == NULL) {
        return -1;
    }
    p++;
    day = strtol(p, &end, 10);
    if (end == p || day < 1 || day > 31) {
        return -1;
    }
    p = end;
    while (*p == ' ') {
        p++;
    }
    for (int i = 0; i < 12; i++) {
        if (strncmp(p, mons[i], 3) == 0) {
            mon = i + 1;
        }
    }
    if (mon < 0) {
        return -1;
    }
    p += 3;
    year = strtol(p, &end, 10);
    if (end == p || year < 1970 || year > 9999) {
        return -1;
    }
    p = end;
    hh = strtol(p, &end, 10);
    if (end == p || *end != ':') {
        return -1;
    }
    p = end + 1;
    mm = strtol(p, &end, 10);
    if (end == p || *end != ':') {
        return -1;
    }
    p = end + 1;
    ss = strtol(p, &end, 10);
    if (end == p || hh > 23 || mm > 59 || ss > 60) {
        return -1;
    }
    return ls_timegm((int)year, mon, (int)day, (int)hh, (int)mm, (int)ss);
}

/* ------------------------------------------------------------------ */
/* signed requests                                                      */

struct s3_pending {
    struct s3_out *s;
    s3_call_cb cb;
    void *arg;
    struct ls_buf hdrs;
    char *url;
    char *body;
};

/*
 * An error response's Date tells us how far our clock is off: 5 minutes or
 * more (or any amount with RequestTimeTooSkewed & co, force) becomes the
 * offset added to the signing time. Successful responses are not used: a
 * request that worked needs no correction.
 */
static void s3u_learn_clock(struct s3_out *s, struct ls_http_resp *r, bool force)
{
    char date[64];
    int64_t server, sec, skew;
    int32_t ns;

    if (r->status < 400 || ls_http_resp_header(r, "Date", date, sizeof(date)) == NULL) {
        return;
    }
    server = s3_parse_http_date(date);
    if (server < 0) {
        return;
    }
    ls_wall_now(&sec, &ns);
    skew = server - sec;
    if (!force && llabs(skew - s->clock_offset) < 300) {
        return;
    }
    if (!force && llabs(skew) < 300) {
        skew = 0;
    }
    if (skew != s->clock_offset) {
        ls_plg_warn(s->ins, "server clock differs from ours by %llds (Date: %s); signing "
                    "requests with that offset", (long long)skew, date);
        s->clock_offset = skew;
    }
}

static void s3u_call_done(struct ls_http_resp *r, void *arg)
{
    struct s3_pending *pd = arg;
    struct s3_out *s = pd->s;

    s3u_learn_clock(s, r, false);
    pd->cb(s, r, pd->arg);
    ls_buf_release(&pd->hdrs);
    ls_free(pd->url);
    ls_free(pd->body);
    ls_free(pd);
}

static bool s3u_bad_value(const char *v)
{
    return v == NULL || strpbrk(v, "\r\n") != NULL;
}

int s3_call(struct s3_out *s, const struct s3_call_opts *o, s3_call_cb cb, void *arg)
{
    struct aws_kv hv[48];
    size_t nh = 0, i;
    bool have_ctype = false;
    char sha[65], date[32], line[64];
    char *path, *url, *resource = NULL;
    struct aws_request req;
    struct aws_signed sig;
    struct ls_buf sl;
    struct s3_pending *pd;
    struct ls_http_req hr;
    int rc;
    int64_t now = s3_now(s);

    if (!s->have_creds || o->nheaders + 2 > LS_ARRAY_LEN(hv)) {
        return LS_ERROR;
    }
    hv[nh].name = "Host";
    hv[nh++].value = s->addr.host;
    for (i = 0; i < o->nheaders; i++) {
        if (s3u_bad_value(o->headers[i].value)) {
            ls_plg_error(s->ins, "refusing to send header '%s' with a line break",
                         o->headers[i].name);
            return LS_ERROR;
        }
        if (strcasecmp(o->headers[i].name, "Content-Type") == 0) {
            have_ctype = true;
        }
        hv[nh++] = o->headers[i];
    }
    if (o->key && strpbrk(o->key, "\r\n")) {
        return LS_ERROR;
    }
    s3_http_date(now, date);
    path = s3_addr_path(&s->addr, o->key);
    url = s3_addr_url(&s->addr, o->key, o->query, o->nquery);
    memset(&req, 0, sizeof(req));
    req.method = o->method;
    req.path = path;
    req.query = o->query;
    req.nquery = o->nquery;
    req.headers = hv;
    req.nheaders = nh;
    if (o->fd >= 0) {
        req.payload_hash = o->sha256_hex;
    } else if (o->body && o->body_len) {
        aws_sha256_hex(o->body, o->body_len, sha);
        req.payload_hash = sha;
    } else {
        req.payload_hash = AWS_EMPTY_SHA256;
    }
    if (s->signature_version == S3_SIG_V2) {
        resource = s3_addr_resource(&s->addr, o->key);
        rc = s3_sigv2_sign(&req, resource, date, &s->creds, &sig);
    } else {
        rc = aws_sigv4_sign(&req, &s->creds, s->addr.region, "s3", now, AWS_SIGV4_CONTENT_SHA,
                           &s->sigcache, &sig);
    }
    ls_free(resource);
    ls_free(path);
    if (rc != LS_OK) {
        ls_free(url);
        return LS_ERROR;
    }
    ls_buf_init(&sl, 0);
    for (i = 1; i < nh; i++) {
        char *l = ls_asprintf("%s: %s", hv[i].name, hv[i].value);
        ls_http_hdr_add(&sl, l);
        ls_free(l);
    }
    if (s->signature_version == S3_SIG_V2) {
        snprintf(line, sizeof(line), "Date: %s", date);
        ls_http_hdr_add(&sl, line);
    }
    for (i = 0; i < sig.nheaders; i++) {
        ls_http_hdr_add(&sl, sig.headers[i]);
    }
    /* no 100-continue round trip, no Content-Type curl would invent (it is signed in V2) */
    ls_http_hdr_add(&sl, "Expect:");
    if (!have_ctype) {
        ls_http_hdr_add(&sl, "Content-Type:");
    }
    aws_signed_release(&sig);

    pd = ls_calloc(1, sizeof(*pd));
    pd->s = s;
    pd->cb = cb;
    pd->arg = arg;
    pd->hdrs = sl;
    pd->url = url;
    if (o->body && o->body_len) {
        pd->body = ls_malloc(o->body_len);
        memcpy(pd->body, o->body, o->body_len);
    }
    memset(&hr, 0, sizeof(hr));
    hr.method = o->method;
    hr.url = url;
    hr.headers = &pd->hdrs;
    hr.body = pd->body;
    hr.body_len = pd->body ? o->body_len : 0;
    hr.body_fd = o->fd;
    hr.body_off = o->off;
    hr.body_file_len = o->len;
    hr.timeout = o->timeout;
    hr.connect_timeout = s->http_connect_timeout;
    hr.low_speed_time = s->http_stall_timeout;
    hr.verify_peer = s->ssl_verify_peer;
    hr.ca_file = s->ssl_ca_bundle;
    hr.proxy = s->proxy_uri;
    hr.max_response = S3_MAX_RESPONSE;
    hr.path_as_is = true;
    if (ls_http_submit(s->eng, &hr, s3u_call_done, pd) != LS_OK) {
        ls_buf_release(&pd->hdrs);
        ls_free(url);
        ls_free(pd->body);
        ls_free(pd);
        return LS_ERROR;
    }
    return LS_OK;
}

static bool s3u_code_in(const char *code, const char *const *list)
{
    for (; *list; list++) {
        if (strcmp(code, *list) == 0) {
            return true;
        }
    }
    return false;
}

int s3_describe_error(struct s3_out *s, const char *op, const char *key, struct ls_http_resp *r,
                      char *msg, size_t msglen, char *code, size_t codelen)
{
    static const char *const skew_codes[] = { "RequestTimeTooSkewed", "RequestExpired",
                                              "RequestInTheFuture", NULL };
    static const char *const token_codes[] = { "ExpiredToken", "ExpiredTokenException",
                                               "TokenRefreshRequired", "InvalidToken",
                                               "InvalidAccessKeyId", NULL };
    struct s3_xml_error e;
    const char *c = "";
    char cbuf[64];

    if (code && codelen) {
        code[0] = '\0';
    }
    if (r->status == 0) {
        if (r->curl_code == LS_HTTP_E_HELPER) {
            snprintf(msg, msglen, "%s '%s': %s", op, key ? key : s->s3_bucket,
                     r->error[0] ? r->error : "logship-http failed");
        } else {
            snprintf(msg, msglen, "%s '%s': %s (curl error %d)", op, key ? key : s->s3_bucket,
                     r->error[0] ? r->error : "connection failed", r->curl_code);
        }
        return LS_ERROR;
    }
    memset(&e, 0, sizeof(e));
    if (r->body.len && s3_xml_parse_error(r->body.p, r->body.len, &e) == LS_OK && e.code) {
        c = e.code;
    } else if (r->status == 404) {
        c = "NotFound";
    } else if (r->status == 403) {
        c = "Forbidden";
    } else if (r->status == 503) {
        c = "ServiceUnavailable";
    }
    snprintf(cbuf, sizeof(cbuf), "%s", c);
    snprintf(msg, msglen, "%s '%s': HTTP %ld %s%s%s", op, key ? key : s->s3_bucket, r->status,
             cbuf[0] ? cbuf : "error", e.message ? ": " : "", e.message ? e.message : "");
    if (code && codelen) {
        snprintf(code, codelen, "%s", cbuf);
    }
    if (s3u_code_in(cbuf, skew_codes)) {
        s3u_learn_clock(s, r, true);
    } else if (s3u_code_in(cbuf, token_codes)) {
        if (strcmp(s->creds.source, "config") != 0) {
            ls_plg_warn(s->ins, "%s: refreshing the %s credentials before the next attempt", cbuf,
                        s->creds.source);
            s->creds_stale = true;
        }
    } else if (r->status >= 400 && r->status < 500 && r->status != 404 && r->status != 408 &&
               r->status != 429 && strcmp(cbuf, "RequestTimeout") != 0 &&
               strcmp(cbuf, "SlowDown") != 0) {
        /* client errors are retried (as fluentd does) but they need a human: say so loudly */
        ls_plg_error(s->ins, "%s", msg);
    }
    s3_xml_error_release(&e);
    return LS_ERROR;
}

/* ------------------------------------------------------------------ */
/* chunk state                                                          */

static char *s3u_unescape(const char *s)
{
    size_t n = strlen(s), o = 0;
    char *out = ls_malloc(n + 1);

    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
            isxdigit((unsigned char)s[i + 2])) {
            char hex[3] = { s[i + 1], s[i + 2], 0 };
            out[o++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

int s3_job_save_state(struct s3_job *j)
{
    struct ls_buf b;
    int rc;

    ls_buf_init(&b, 0);
    ls_buf_printf(&b, "s3state\t1\n");
    if (j->key) {
        ls_buf_printf(&b, "key\t");
        aws_uri_encode(&b, j->key, strlen(j->key), true);
        ls_buf_putc(&b, '\n');
    }
    if (j->have_digest) {
        ls_buf_printf(&b, "digest\t%llu\t%s\t%s\n", (unsigned long long)j->size, j->md5hex,
                      j->sha);
    }
    if (j->upload_id) {
        ls_buf_printf(&b, "upload\t");
        aws_uri_encode(&b, j->upload_id, strlen(j->upload_id), false);
        ls_buf_printf(&b, "\t%lld\n", (long long)j->part_size);
        for (size_t i = 0; i < j->nstate_etags; i++) {
            if (j->state_etags[i]) {
                ls_buf_printf(&b, "etag\t%zu\t", i + 1);
                aws_uri_encode(&b, j->state_etags[i], strlen(j->state_etags[i]), false);
                ls_buf_putc(&b, '\n');
            }
        }
    }
    rc = ls_chunk_set_state(j->c, ls_buf_cstr(&b));
    ls_buf_release(&b);
    if (rc != LS_OK) {
        ls_plg_error(j->s->ins, "cannot save the upload state of chunk %s (%d: %s)",
                     ls_chunk_info(j->c)->id, errno, strerror(errno));
    }
    return rc;
}

char *s3_state_key(const char *st)
{
    const char *p, *e;
    char *enc, *key;

    if (st == NULL || strncmp(st, "s3state\t", 8) != 0) {
        return NULL;
    }
    for (p = st; p; p = (p = strchr(p, '\n')) ? p + 1 : NULL) {
        if (strncmp(p, "key\t", 4) == 0) {
            p += 4;
            e = strchr(p, '\n');
            enc = ls_strndup(p, e ? (size_t)(e - p) : strlen(p));
            key = enc[0] ? s3u_unescape(enc) : NULL;
            ls_free(enc);
            return key;
        }
    }
    return NULL;
}

static void s3u_state_set_etag(struct s3_job *j, size_t part, const char *etag)
{
    if (part == 0 || part > 10000) {
        return;
    }
    if (part > j->nstate_etags) {
        j->state_etags = ls_realloc(j->state_etags, part * sizeof(char *));
        for (size_t i = j->nstate_etags; i < part; i++) {
            j->state_etags[i] = NULL;
        }
        j->nstate_etags = part;
    }
    ls_free(j->state_etags[part - 1]);
    j->state_etags[part - 1] = etag ? ls_strdup(etag) : NULL;
}

static void s3u_load_state(struct s3_job *j)
{
    const char *st = ls_chunk_state(j->c);
    char *copy, *p, *line;

    if (st == NULL || strncmp(st, "s3state\t", 8) != 0) {
        return;
    }
    copy = ls_strdup(st);
    p = copy;
    while ((line = strsep(&p, "\n")) != NULL) {
        char *f[4] = { NULL, NULL, NULL, NULL };
        char *q = line;
        int nf = 0;
        while (nf < 4 && (f[nf] = strsep(&q, "\t")) != NULL) {
            nf++;
        }
        if (nf == 2 && strcmp(f[0], "key") == 0 && f[1][0]) {
            j->key = s3u_unescape(f[1]);
        } else if (nf == 4 && strcmp(f[0], "digest") == 0 && strlen(f[2]) == 32 &&
                   strlen(f[3]) == 64) {
            j->size = strtoull(f[1], NULL, 10);
            snprintf(j->md5hex, sizeof(j->md5hex), "%s", f[2]);
            snprintf(j->sha, sizeof(j->sha), "%s", f[3]);
            j->have_digest = true;
        } else if (nf == 3 && strcmp(f[0], "upload") == 0 && f[1][0]) {
            j->upload_id = s3u_unescape(f[1]);
            j->part_size = strtoll(f[2], NULL, 10);
        } else if (nf == 3 && strcmp(f[0], "etag") == 0) {
            char *e = s3u_unescape(f[2]);
            s3u_state_set_etag(j, (size_t)strtoul(f[1], NULL, 10), e);
            ls_free(e);
        }
    }
    ls_free(copy);
    if (j->upload_id && j->part_size < (5 << 20)) {
        /* unusable: forget it (the upload is aborted when a new one starts) */
        j->part_size = 0;
    }
}

void s3_job_record_etag(struct s3_job *j, size_t part, const char *etag)
{
    s3u_state_set_etag(j, part, etag);
}

/* ------------------------------------------------------------------ */
/* object headers                                                       */

size_t s3_ssec_headers(struct s3_out *s, struct aws_kv *h)
{
    size_t n = 0;

    if (s->sse_customer_algorithm) {
        h[n].name = "x-amz-server-side-encryption-customer-algorithm";
        h[n++].value = s->sse_customer_algorithm;
    }
    if (s->sse_customer_key) {
        h[n].name = "x-amz-server-side-encryption-customer-key";
        h[n++].value = s->sse_customer_key;
    }
    if (s->sse_customer_key_md5) {
        h[n].name = "x-amz-server-side-encryption-customer-key-MD5";
        h[n++].value = s->sse_customer_key_md5;
    }
    return n;
}

void s3_object_headers(struct s3_job *j, struct aws_kv *h, size_t *n, size_t max, char ***owned,
                       size_t *nowned)
{
    struct s3_out *s = j->s;
    const char *sc = s->reduced_redundancy ? "REDUCED_REDUNDANCY" : s->storage_class;
    size_t k = *n;

#define S3U_ADD(nm, val)                    \
    do {                                    \
        if ((val) && k < max) {             \
            h[k].name = (nm);               \
            h[k++].value = (val);           \
        }                                   \
    } while (0)
    S3U_ADD("Content-Type", s->ctype);
    if (sc && strcmp(sc, "STANDARD") != 0) {
        S3U_ADD("x-amz-storage-class", sc);
    }
    S3U_ADD("x-amz-acl", s->acl);
    S3U_ADD("x-amz-grant-full-control", s->grant_full_control);
    S3U_ADD("x-amz-grant-read", s->grant_read);
    S3U_ADD("x-amz-grant-read-acp", s->grant_read_acp);
    S3U_ADD("x-amz-grant-write-acp", s->grant_write_acp);
    S3U_ADD("x-amz-server-side-encryption", s->use_server_side_encryption);
    S3U_ADD("x-amz-server-side-encryption-aws-kms-key-id", s->ssekms_key_id);
    S3U_ADD("x-amz-tagging", s->tagging);
    if (k + 3 <= max) {
        k += s3_ssec_headers(s, h + k);
    }
    *owned = NULL;
    *nowned = 0;
    if (s->s3_metadata.n) {
        *owned = ls_calloc(s->s3_metadata.n * 2, sizeof(char *));
        for (size_t i = 0; i < s->s3_metadata.n && k < max; i++) {
            char *v = s3_tmpl_render(s, j, s->meta_tmpl[i]);
            char *name = ls_asprintf("x-amz-meta-%s", s->s3_metadata.v[i].key);
            char *val;
            if (v == NULL) {
                v = ls_strdup("");
            }
            val = s3_key_with_index(v, s->index_format, j->index >= 0 ? j->index : 0);
            ls_free(v);
            (*owned)[(*nowned)++] = name;
            (*owned)[(*nowned)++] = val;
            h[k].name = name;
            h[k++].value = val;
        }
    }
#undef S3U_ADD
    *n = k;
}

static void s3u_free_owned(char **owned, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ls_free(owned[i]);
    }
    ls_free(owned);
}

/* ------------------------------------------------------------------ */
/* jobs                                                                 */

static void s3u_net_start(struct s3_job *j);

void s3_job_finish(struct s3_job *j, int rc, const char *msg)
{
    struct s3_out *s = j->s;
    struct ls_chunk *c = j->c;
    struct ls_instance *ins = s->ins;

    if (j->fd >= 0) {
        close(j->fd);
    }
    ls_free(j->key);
    ls_free(j->base);
    ls_free(j->upload_id);
    ls_free(j->side);
    ls_free(j->list_marker);
    for (size_t i = 0; i < j->nstate_etags; i++) {
        ls_free(j->state_etags[i]);
    }
    ls_free(j->state_etags);
    for (size_t i = 0; i < j->nparts; i++) {
        ls_free(j->parts[i].etag);
    }
    ls_free(j->parts);
    if (j->net) {
        struct s3_job *w = s->net_wait;
        s->net_busy--;
        ls_free(j);
        if (w) {
            s->net_wait = w->next;
            if (s->net_wait == NULL) {
                s->net_wait_tail = NULL;
            }
            s3u_net_start(w);
        }
    } else {
        ls_free(j);
    }
    ls_output_write_done(ins, c, rc, msg);
}

static long s3u_read(void *arg, void *buf, size_t n)
{
    return ls_chunk_reader_read(arg, buf, n);
}

/* Digest of fd[off, off+len): MD5 (base64 and hex) and SHA-256 hex. Worker thread. */
static int s3u_digest_range(int fd, uint64_t off, uint64_t len, struct s3_jpart *p)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new(), *h = EVP_MD_CTX_new();
    unsigned char md5[16], sha[32];
    unsigned int l;
    char *buf = ls_malloc(1 << 20);
    int rc = LS_OK;

    EVP_DigestInit_ex(m, EVP_md5(), NULL);
    EVP_DigestInit_ex(h, EVP_sha256(), NULL);
    while (len > 0) {
        size_t want = len > (1u << 20) ? (1u << 20) : (size_t)len;
        ssize_t got = pread(fd, buf, want, (off_t)off);
        if (got <= 0) {
            if (got < 0 && errno == EINTR) {
                continue;
            }
            rc = LS_ERROR;
            break;
        }
        EVP_DigestUpdate(m, buf, (size_t)got);
        EVP_DigestUpdate(h, buf, (size_t)got);
        off += (uint64_t)got;
        len -= (uint64_t)got;
    }
    EVP_DigestFinal_ex(m, md5, &l);
    EVP_DigestFinal_ex(h, sha, &l);
    EVP_MD_CTX_free(m);
    EVP_MD_CTX_free(h);
    ls_free(buf);
    ls_base64(md5, 16, p->md5b64);
    ls_hex(md5, 16, p->md5hex);
    ls_hex(sha, 32, p->sha);
    return rc;
}

/*
 * Is the side file the payload the state's digest describes? Its size alone is not enough: a
 * flipped byte would be sent under the recorded Content-MD5 forever (400 BadDigest, the chunk
 * holding a flush slot each time), or stored corrupt by a store that does not check it.
 * Hashing the compressed file costs a small part of compressing it again. Worker thread.
 */
static bool s3u_side_valid(struct s3_job *j)
{
    struct stat st;
    struct s3_jpart p;
    bool ok;
    int fd;

    if (!j->have_digest || stat(j->side, &st) != 0) {
        return false;
    }
    if ((uint64_t)st.st_size != j->size) {
        j->side_bad = true;
        return false;
    }
    fd = open(j->side, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    ok = s3u_digest_range(fd, 0, j->size, &p) == LS_OK && strcmp(p.md5hex, j->md5hex) == 0 &&
         strcmp(p.sha, j->sha) == 0;
    if (ok) {
        j->fd = fd;
    } else {
        close(fd);
        j->side_bad = true;
    }
    return ok;
}

/* Compress the chunk into fd, from the chunk's CRC-checked frames. Worker thread. */
static int s3u_compress_into(struct s3_job *j, int fd, struct ls_digest *dig, char *err,
                             size_t errlen)
{
    struct s3_out *s = j->s;
    struct ls_chunk_reader *r;
    char cerr[200] = "";
    int rc, efd;
    bool trusted = false;

    if (s->store == S3_STORE_PARQUET) {
        /* one whole file, made by the formatter; then its digests */
        rc = ls_chunk_write_fd(j->c, LS_COMPRESS_TEXT, fd, NULL, cerr, sizeof(cerr));
        if (rc == LS_OK && ls_digest_fd(fd, dig) != LS_OK) {
            snprintf(cerr, sizeof(cerr), "digest failed (%d: %s)", errno, strerror(errno));
            rc = LS_ERROR;
        }
        if (rc != LS_OK) {
            int saved = errno;
            snprintf(err, errlen, "writing Parquet for chunk %s failed: %s",
                     ls_chunk_info(j->c)->id, cerr);
            errno = saved;
        }
        return rc;
    }
    r = ls_chunk_reader_open(j->c);
    if (r == NULL) {
        snprintf(err, errlen, "cannot read chunk %s", ls_chunk_info(j->c)->id);
        return LS_ERROR;
    }
    efd = s->algo == LS_COMPRESS_GZIP ? ls_chunk_early_open(j->c, &trusted) : -1;
    rc = ls_compress_stream_expect(s->algo, s->level, ls_chunk_info(j->c)->bytes, efd, trusted,
                                   s3u_read, r, fd, dig, cerr, sizeof(cerr));
    if (efd >= 0) {
        close(efd);
    }
    if (rc != LS_OK) {
        int saved = errno;
        snprintf(err, errlen, "compressing chunk %s failed: %s", ls_chunk_info(j->c)->id,
                 cerr[0] ? cerr : strerror(errno));
        errno = saved;
    }
    ls_chunk_reader_close(r);
    return rc;
}

/*
 * The side file on disk: written under a temporary name and renamed, so one that exists is
 * complete. Sets j->fd (readable) on success; errno tells why not. Worker thread.
 * Not fsynced: it is a cache of what compressing the chunk (fsynced at enqueue) makes, and
 * s3u_side_valid hashes it whole against the state's digest before using it, so one that a
 * power cut left short or stale is made again. Without the fsync the payload is normally
 * uploaded and deleted before writeback ever puts it on the disk, and a backlog's last
 * chunks no longer wait 10-50 ms each for the disk before their upload.
 */
static int s3u_side_to_disk(struct s3_job *j, struct ls_digest *dig)
{
    char *tmp = ls_asprintf("%s.tmp", j->side);
    int fd = open(tmp, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0640);
    int rc = LS_ERROR, saved;

    if (fd < 0) {
        saved = errno;
        snprintf(j->werr, sizeof(j->werr), "open('%s') failed (%d: %s)", tmp, errno,
                 strerror(errno));
    } else if (s3u_compress_into(j, fd, dig, j->werr, sizeof(j->werr)) != LS_OK) {
        saved = errno;
    } else if (rename(tmp, j->side) != 0) {
        saved = errno;
        snprintf(j->werr, sizeof(j->werr), "writing '%s' failed (%d: %s)", j->side, errno,
                 strerror(errno));
    } else {
        saved = 0;
        rc = LS_OK;
        j->fd = fd;
    }
    if (rc != LS_OK) {
        if (fd >= 0) {
            close(fd);
        }
        unlink(tmp);
    }
    ls_free(tmp);
    errno = saved;
    return rc;
}

/* The payload in memory (a memfd the helper reads like a file), when the buffer's file
 * system cannot hold it: a full buffer disk must still be drained. Costs the compressed size
 * in RAM per upload in flight, until the upload ends. Worker thread. */
static int s3u_side_to_memory(struct s3_job *j, struct ls_digest *dig)
{
    int fd = memfd_create("logship-s3-payload", MFD_CLOEXEC);

    if (fd < 0) {
        snprintf(j->werr, sizeof(j->werr), "memfd_create() failed (%d: %s)", errno,
                 strerror(errno));
        return LS_ERROR;
    }
    if (s3u_compress_into(j, fd, dig, j->werr, sizeof(j->werr)) != LS_OK) {
        close(fd);
        return LS_ERROR;
    }
    j->fd = fd;
    j->side_in_memory = true;
    return LS_OK;
}

/* Worker: make the side file (unless a verified one is already there) and the part digests. */
static void s3u_prep_work(void *arg)
{
    struct s3_job *j = arg;
    struct s3_out *s = j->s;

    j->wrc = LS_OK;
    if (!s3u_side_valid(j)) {
        struct ls_digest dig;
        char md5hex[33];
        int64_t now_ms = (int64_t)(ls_mono_now() * 1000);
        int rc = LS_ERROR;

        unlink(j->side);
        if (now_ms >= __atomic_load_n(&s->side_disk_after_ms, __ATOMIC_RELAXED)) {
            rc = s3u_side_to_disk(j, &dig);
            if (rc != LS_OK) {
                if (errno == ENOSPC || errno == EDQUOT) {
                    /* the next uploads go to memory at once rather than take the space
                     * the state files and the inputs are waiting for */
                    __atomic_store_n(&s->side_disk_after_ms, now_ms + 30000, __ATOMIC_RELAXED);
                }
                snprintf(j->side_err, sizeof(j->side_err), "%s", j->werr);
            }
        }
        if (rc != LS_OK) {
            rc = s3u_side_to_memory(j, &dig);
        }
        if (rc != LS_OK) {
            j->wrc = LS_ERROR;
            return;
        }
        ls_hex(dig.md5, 16, md5hex);
        if (j->have_digest && strcmp(md5hex, j->md5hex) != 0) {
            j->digest_changed = true;
        }
        memcpy(j->md5hex, md5hex, sizeof(md5hex));
        ls_hex(dig.sha256, 32, j->sha);
        j->size = dig.size;
        j->have_digest = true;
    }
    {
        unsigned char raw[16];
        for (int i = 0; i < 16; i++) {
            char hx[3] = { j->md5hex[2 * i], j->md5hex[2 * i + 1], 0 };
            raw[i] = (unsigned char)strtol(hx, NULL, 16);
        }
        ls_base64(raw, 16, j->md5b64);
    }
    if (j->size > (uint64_t)s->multipart_threshold && j->size > (uint64_t)s->multipart_chunk_size) {
        uint64_t ps = j->upload_id && j->part_size > 0 && !j->digest_changed
                          ? (uint64_t)j->part_size : (uint64_t)s->multipart_chunk_size;
        if ((j->size + ps - 1) / ps > 10000) {
            ps = (j->size + 9999) / 10000;
            ps = (ps + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
        }
        if (j->upload_id && (int64_t)ps != j->part_size) {
            j->digest_changed = true;     /* a different split: the old parts do not fit */
        }
        j->part_size = (int64_t)ps;
        j->nparts = (size_t)((j->size + ps - 1) / ps);
        j->parts = ls_calloc(j->nparts, sizeof(*j->parts));
        for (size_t i = 0; i < j->nparts; i++) {
            j->parts[i].off = i * ps;
            j->parts[i].len = i + 1 < j->nparts ? ps : j->size - i * ps;
            if (s3u_digest_range(j->fd, j->parts[i].off, j->parts[i].len, &j->parts[i]) != LS_OK) {
                snprintf(j->werr, sizeof(j->werr), "reading the payload of chunk %s failed",
                         ls_chunk_info(j->c)->id);
                j->wrc = LS_ERROR;
                return;
            }
        }
    }
}

static void s3u_abort_cb(struct s3_out *s, struct ls_http_resp *r, void *arg)
{
    char *what = arg;
    char msg[512];

    if (r->status >= 200 && r->status < 300) {
        ls_plg_info(s->ins, "aborted multipart upload %s", what);
    } else if (r->status != 404) {
        s3_describe_error(s, "AbortMultipartUpload", what, r, msg, sizeof(msg), NULL, 0);
        ls_plg_warn(s->ins, "%s (a bucket lifecycle rule for incomplete uploads cleans it up)",
                    msg);
    }
    ls_free(what);
}

void s3_abort_upload(struct s3_out *s, const char *key, const char *upload_id)
{
    struct aws_kv q[1] = { { "uploadId", upload_id } };
    struct s3_call_opts o = { .method = "DELETE", .key = key, .query = q, .nquery = 1, .fd = -1,
                              .timeout = 60 };
    char *what = ls_asprintf("%s of '%s'", upload_id, key);

    if (s3_call(s, &o, s3u_abort_cb, what) != LS_OK) {
        ls_free(what);
    }
}

/* The core gave the chunk up: abort the multipart upload its state names, if any. */
void s3_job_abandon(struct s3_out *s, struct ls_chunk *c)
{
    struct s3_job j;

    memset(&j, 0, sizeof(j));
    j.s = s;
    j.c = c;
    s3u_load_state(&j);
    if (j.key && j.upload_id) {
        ls_plg_info(s->ins, "chunk %s is given up: aborting its multipart upload",
                    ls_chunk_info(c)->id);
        s3_abort_upload(s, j.key, j.upload_id);
    }
    ls_free(j.key);
    ls_free(j.upload_id);
    for (size_t i = 0; i < j.nstate_etags; i++) {
        ls_free(j.state_etags[i]);
    }
    ls_free(j.state_etags);
}

void s3_delivered(struct s3_job *j)
{
    char *where = ls_asprintf("s3://%s/%s", j->s->s3_bucket, j->key);

    ls_plg_debug(j->s->ins, "uploaded chunk %s to %s (%llu bytes%s)", ls_chunk_info(j->c)->id,
                 where, (unsigned long long)j->size, j->nparts ? ", multipart" : "");
    ls_output_delivered(j->s->ins, j->c, where, j->size);
    ls_free(where);
}

void s3_job_check_digest_error(struct s3_job *j, const char *code)
{
    if (strcmp(code, "BadDigest") != 0 && strcmp(code, "InvalidDigest") != 0 &&
        strcmp(code, "XAmzContentSHA256Mismatch") != 0) {
        return;
    }
    /* the bytes sent did not match their digest: whatever the side file holds now, the retry
     * makes it again from the chunk, whose frames are CRC-checked, instead of sending it again */
    if (!j->side_in_memory && unlink(j->side) == 0) {
        ls_plg_warn(j->s->ins, "the store refused chunk %s's payload (%s): the retry compresses "
                    "it again from the chunk", ls_chunk_info(j->c)->id, code);
    }
}

static void s3u_put_cb(struct s3_out *s, struct ls_http_resp *r, void *arg)
{
    struct s3_job *j = arg;
    char msg[512], code[64] = "";

    if (r->status >= 200 && r->status < 300) {
        s->ins->metrics.write_bytes += j->size;
        s3_delivered(j);
        s3_job_finish(j, LS_OK, NULL);
        return;
    }
    s3_describe_error(s, "PutObject", j->key, r, msg, sizeof(msg), code, sizeof(code));
    s3_job_check_digest_error(j, code);
    s3_job_finish(j, LS_ERROR, msg);
}

static void s3u_put(struct s3_job *j)
{
    struct s3_out *s = j->s;
    struct aws_kv h[40];
    size_t n = 0, nowned;
    char **owned;
    struct s3_call_opts o;
    int rc;

    if (s->compute_checksums) {
        h[n].name = "Content-MD5";
        h[n++].value = j->md5b64;
    }
    s3_object_headers(j, h, &n, LS_ARRAY_LEN(h), &owned, &nowned);
    memset(&o, 0, sizeof(o));
    o.method = "PUT";
    o.key = j->key;
    o.headers = h;
    o.nheaders = n;
    o.fd = j->fd;
    o.off = 0;
    o.len = j->size;
    o.sha256_hex = j->sha;
    rc = s3_call(s, &o, s3u_put_cb, j);
    s3u_free_owned(owned, nowned);
    if (rc != LS_OK) {
        s3_job_finish(j, LS_ERROR, "PutObject: cannot start the request");
    }
}

static void s3u_upload(struct s3_job *j)
{
    if (j->nparts > 0) {
        s3_mpu_run(j);
        return;
    }
    if (j->upload_id) {
        /* the payload now fits one PUT (threshold changed): the old upload is not needed */
        s3_abort_upload(j->s, j->key, j->upload_id);
        ls_free(j->upload_id);
        j->upload_id = NULL;
        (void)s3_job_save_state(j);
    }
    s3u_put(j);
}

static void s3u_key_done(struct s3_job *j, int rc, const char *msg)
{
    if (rc != LS_OK) {
        s3_job_finish(j, rc, msg);
        return;
    }
    /* the key is fixed from now on: every retry, and the next process, use it */
    if (s3_job_save_state(j) != LS_OK) {
        s3_job_finish(j, LS_ERROR, "cannot save the chunk's upload state");
        return;
    }
    ls_plg_debug(j->s->ins, "chunk %s -> s3://%s/%s", ls_chunk_info(j->c)->id, j->s->s3_bucket,
                 j->key);
    s3u_upload(j);
}

static void s3u_prep_done(void *arg)
{
    struct s3_job *j = arg;
    const char *id = ls_chunk_info(j->c)->id;

    if (j->side_bad) {
        ls_plg_warn(j->s->ins, "the compressed payload '%s' of chunk %s does not match its "
                    "recorded digest (damaged on disk?): made again from the chunk", j->side, id);
    }
    if (j->wrc != LS_OK) {
        s3_job_finish(j, LS_ERROR, j->werr);
        return;
    }
    if (j->side_in_memory) {
        if (j->side_err[0]) {
            ls_plg_warn(j->s->ins, "%s; chunk %s is compressed in memory instead (%llu bytes)",
                        j->side_err, id, (unsigned long long)j->size);
        } else {
            ls_plg_debug(j->s->ins, "chunk %s is compressed in memory (%llu bytes): the buffer's "
                         "file system was full a moment ago", id, (unsigned long long)j->size);
        }
    }
    /*
     * The rest is the network's: the next chunk may compress meanwhile, but no more than
     * flush_thread_count chunks are sent at once (fluentd's meaning of it), so this one may
     * wait here for the one being sent. A job waits only while another holds a slot, and
     * every finishing job starts the next waiter.
     */
    ls_output_write_sending(j->s->ins, j->c);
    if (j->s->net_busy >= ls_output_concurrency(j->s->ins)) {
        j->next = NULL;
        if (j->s->net_wait_tail) {
            j->s->net_wait_tail->next = j;
        } else {
            j->s->net_wait = j;
        }
        j->s->net_wait_tail = j;
        return;
    }
    s3u_net_start(j);
}

static void s3u_net_start(struct s3_job *j)
{
    j->net = true;
    j->s->net_busy++;
    if (!j->s->have_creds || j->s->gate != S3_GATE_READY) {
        /* the gate closed meanwhile (shutdown or refresh failure) */
        s3_job_finish(j, LS_ERROR, j->s->gate_err[0] ? j->s->gate_err : "not ready");
        return;
    }
    if (j->key == NULL) {
        /* the digest is saved with the key: a state without a key protects nothing, and
         * writing one per attempt during an outage would take the space a full buffer disk
         * keeps for the uploads that can go */
        s3_key_resolve(j, s3u_key_done);
        return;
    }
    if (s3_job_save_state(j) != LS_OK) {
        s3_job_finish(j, LS_ERROR, "cannot save the chunk's upload state");
        return;
    }
    s3u_upload(j);
}

void s3_job_resume(struct s3_job *j)
{
    if (ls_work_submit(j->s->eng, s3u_prep_work, s3u_prep_done, j) != LS_OK) {
        s3_job_finish(j, LS_ERROR, "cannot submit the compression job");
    }
}

int s3_job_start(struct s3_out *s, struct ls_chunk *c)
{
    struct s3_job *j = ls_calloc(1, sizeof(*j));
    const struct ls_chunk_info *ci = ls_chunk_info(c);

    j->s = s;
    j->c = c;
    j->fd = -1;
    j->index = -1;
    j->id = ++s->seq;
    j->side = ls_chunk_side_path(c, s->side_ext);
    s3u_load_state(j);
    if (s->warn_for_delay > 0 && ci->timekey != LS_NO_TIMEKEY) {
        int64_t sec;
        int32_t ns;
        ls_wall_now(&sec, &ns);
        if ((double)ci->timekey < (double)sec - s->warn_for_delay) {
            ls_plg_warn(s->ins, "chunk %s for the slice starting at %lld is uploaded late",
                        ci->id, (long long)ci->timekey);
        }
    }
    if (s3_gate_needed(s)) {
        j->next = s->waiters;
        s->waiters = j;
        s3_gate_open(s);
        return LS_AGAIN;
    }
    s3_job_resume(j);
    return LS_AGAIN;
}
