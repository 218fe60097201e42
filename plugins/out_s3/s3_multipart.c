/*
 * s3_multipart.c - resumable multipart uploads of one compressed chunk.
 *
 * Used when the compressed payload is larger than multipart_threshold.
 * The upload id, the part size and each part's ETag are written to the
 * chunk's state as soon as S3 returns them, so a failed attempt or a new
 * process after kill -9 resumes the same upload: ListParts says which
 * parts S3 holds, and a part is skipped only when S3's ETag is the MD5 of
 * our part (or, for stores whose part ETags are not MD5s, the ETag we
 * recorded for the same unchanged side file). Parts go one at a time per
 * chunk: concurrency is across chunks (flush_thread_count), which keeps
 * each chunk's state simple. An upload that cannot be resumed (S3 forgot
 * it: NoSuchUpload; or the side file had to be recompressed into different
 * bytes) is aborted and started over under the same key.
 * CompleteMultipartUpload can fail after "200 OK" (S3 sends whitespace
 * while it works, then <Error>), so its body is always parsed.
 */
#include "s3_out.h"
#include "log.h"

#include <strings.h>

static void s3m_initiate(struct s3_job *j);
static void s3m_next(struct s3_job *j);

static void s3m_fail(struct s3_job *j, const char *op, struct ls_http_resp *r)
{
    char msg[512];

    s3_describe_error(j->s, op, j->key, r, msg, sizeof(msg), NULL, 0);
    s3_job_finish(j, LS_ERROR, msg);
}

static void s3m_forget_upload(struct s3_job *j)
{
    ls_free(j->upload_id);
    j->upload_id = NULL;
    for (size_t i = 0; i < j->nstate_etags; i++) {
        ls_free(j->state_etags[i]);
        j->state_etags[i] = NULL;
    }
    for (size_t i = 0; i < j->nparts; i++) {
        ls_free(j->parts[i].etag);
        j->parts[i].etag = NULL;
    }
}

/* ---- complete ---- */

static void s3m_complete_cb(struct s3_out *s, struct ls_http_resp *r, void *arg)
{
    struct s3_job *j = arg;
    struct s3_xml_error e;
    char msg[512];

    if (r->status < 200 || r->status >= 300) {
        s3m_fail(j, "CompleteMultipartUpload", r);
        return;
    }
    memset(&e, 0, sizeof(e));
    if (s3_xml_parse_complete(r->body.p, r->body.len, NULL, &e) != LS_OK) {
        snprintf(msg, sizeof(msg), "CompleteMultipartUpload '%s': HTTP %ld with %s%s%s", j->key,
                 r->status, e.code ? e.code : "an unreadable body", e.message ? ": " : "",
                 e.message ? e.message : "");
        if (e.code == NULL && r->curl_code != 0) {
            snprintf(msg, sizeof(msg), "CompleteMultipartUpload '%s': %s", j->key, r->error);
        }
        s3_xml_error_release(&e);
        s3_job_finish(j, LS_ERROR, msg);
        return;
    }
    s3_xml_error_release(&e);
    s->ins->metrics.write_bytes += j->size;
    s3_delivered(j);
    s3_job_finish(j, LS_OK, NULL);
}

static void s3m_complete(struct s3_job *j)
{
    struct s3_part *parts = ls_calloc(j->nparts, sizeof(*parts));
    struct ls_buf body;
    struct aws_kv q[1] = { { "uploadId", j->upload_id } };
    struct aws_kv h[1] = { { "Content-Type", "application/xml" } };
    struct s3_call_opts o = { .method = "POST", .key = j->key, .query = q, .nquery = 1,
                              .headers = h, .nheaders = 1, .fd = -1 };
    int rc;

    for (size_t i = 0; i < j->nparts; i++) {
        parts[i].number = (int)i + 1;
        parts[i].etag = j->parts[i].etag;
        parts[i].size = (int64_t)j->parts[i].len;
    }
    ls_buf_init(&body, 0);
    rc = s3_xml_build_complete(&body, parts, j->nparts);
    ls_free(parts);
    if (rc != LS_OK) {
        ls_buf_release(&body);
        s3_job_finish(j, LS_ERROR, "cannot build the CompleteMultipartUpload body");
        return;
    }
    o.body = body.p;
    o.body_len = body.len;
    rc = s3_call(j->s, &o, s3m_complete_cb, j);
    ls_buf_release(&body);
    if (rc != LS_OK) {
        s3_job_finish(j, LS_ERROR, "CompleteMultipartUpload: cannot start the request");
    }
}

/* ---- parts ---- */

static void s3m_part_cb(struct s3_out *s, struct ls_http_resp *r, void *arg)
{
    struct s3_job *j = arg;
    char etag[256], msg[512];
    struct s3_jpart *p = &j->parts[j->cur];

    if (r->status < 200 || r->status >= 300) {
        char op[48], code[64] = "";
        snprintf(op, sizeof(op), "UploadPart %zu", j->cur + 1);
        s3_describe_error(s, op, j->key, r, msg, sizeof(msg), code, sizeof(code));
        s3_job_check_digest_error(j, code);
        s3_job_finish(j, LS_ERROR, msg);
        return;
    }
    if (ls_http_resp_header(r, "ETag", etag, sizeof(etag)) == NULL || etag[0] == '\0') {
        snprintf(msg, sizeof(msg), "UploadPart %zu '%s': no ETag in the response", j->cur + 1,
                 j->key);
        s3_job_finish(j, LS_ERROR, msg);
        return;
    }
    p->etag = ls_strdup(etag);
    s3_job_record_etag(j, j->cur + 1, etag);
    (void)s3_job_save_state(j);
    ls_plg_trace(s->ins, "part %zu/%zu of '%s' uploaded", j->cur + 1, j->nparts, j->key);
    j->cur++;
    s3m_next(j);
}

static void s3m_next(struct s3_job *j)
{
    struct s3_out *s = j->s;
    char num[24];
    struct aws_kv q[2];
    struct aws_kv h[5];
    size_t nh = 0;
    struct s3_call_opts o;

    while (j->cur < j->nparts && j->parts[j->cur].etag) {
        j->cur++;
    }
    if (j->cur >= j->nparts) {
        s3m_complete(j);
        return;
    }
    snprintf(num, sizeof(num), "%zu", j->cur + 1);
    q[0].name = "partNumber";
    q[0].value = num;
    q[1].name = "uploadId";
    q[1].value = j->upload_id;
    if (s->compute_checksums) {
        h[nh].name = "Content-MD5";
        h[nh++].value = j->parts[j->cur].md5b64;
    }
    nh += s3_ssec_headers(s, h + nh);
    memset(&o, 0, sizeof(o));
    o.method = "PUT";
    o.key = j->key;
    o.query = q;
    o.nquery = 2;
    o.headers = h;
    o.nheaders = nh;
    o.fd = j->fd;
    o.off = j->parts[j->cur].off;
    o.len = j->parts[j->cur].len;
    o.sha256_hex = j->parts[j->cur].sha;
    if (s3_call(s, &o, s3m_part_cb, j) != LS_OK) {
        s3_job_finish(j, LS_ERROR, "UploadPart: cannot start the request");
    }
}

/* ---- resume: ListParts ---- */

static void s3m_list_parts(struct s3_job *j, int marker);

static void s3m_list_cb(struct s3_out *s, struct ls_http_resp *r, void *arg)
{
    struct s3_job *j = arg;
    struct s3_parts ps;
    struct s3_xml_error e;
    char code[64], msg[512];

    if (r->status < 200 || r->status >= 300) {
        s3_describe_error(s, "ListParts", j->key, r, msg, sizeof(msg), code, sizeof(code));
        if (strcmp(code, "NoSuchUpload") == 0) {
            ls_plg_info(s->ins, "multipart upload %s of '%s' no longer exists; starting over",
                        j->upload_id, j->key);
            s3m_forget_upload(j);
            s3m_initiate(j);
            return;
        }
        s3_job_finish(j, LS_ERROR, msg);
        return;
    }
    memset(&ps, 0, sizeof(ps));
    memset(&e, 0, sizeof(e));
    if (s3_xml_parse_parts(r->body.p, r->body.len, &ps, &e) != LS_OK) {
        snprintf(msg, sizeof(msg), "ListParts '%s': unreadable response", j->key);
        s3_xml_error_release(&e);
        s3_parts_release(&ps);
        s3_job_finish(j, LS_ERROR, msg);
        return;
    }
    s3_xml_error_release(&e);
    for (size_t i = 0; i < ps.n; i++) {
        size_t k = (size_t)ps.parts[i].number;
        struct s3_jpart *p;
        char want[40];
        bool ok;
        if (k < 1 || k > j->nparts || ps.parts[i].etag == NULL) {
            continue;
        }
        p = &j->parts[k - 1];
        snprintf(want, sizeof(want), "\"%s\"", p->md5hex);
        ok = (uint64_t)ps.parts[i].size == p->len &&
             (strcasecmp(ps.parts[i].etag, want) == 0 ||
              (k <= j->nstate_etags && j->state_etags[k - 1] &&
               strcmp(j->state_etags[k - 1], ps.parts[i].etag) == 0));
        if (ok) {
            ls_free(p->etag);
            p->etag = ls_strdup(ps.parts[i].etag);
        }
    }
    if (ps.truncated && ps.next_marker > 0) {
        int next = ps.next_marker;
        s3_parts_release(&ps);
        s3m_list_parts(j, next);
        return;
    }
    s3_parts_release(&ps);
    {
        size_t have = 0;
        for (size_t i = 0; i < j->nparts; i++) {
            have += j->parts[i].etag != NULL;
        }
        ls_plg_info(s->ins, "resuming multipart upload of '%s': %zu of %zu parts already there",
                    j->key, have, j->nparts);
    }
    j->cur = 0;
    s3m_next(j);
}

static void s3m_list_parts(struct s3_job *j, int marker)
{
    char m[16];
    struct aws_kv q[2] = { { "uploadId", j->upload_id }, { "part-number-marker", m } };
    struct s3_call_opts o = { .method = "GET", .key = j->key, .query = q,
                              .nquery = marker > 0 ? 2 : 1, .fd = -1, .timeout = 60 };

    snprintf(m, sizeof(m), "%d", marker);
    if (s3_call(j->s, &o, s3m_list_cb, j) != LS_OK) {
        s3_job_finish(j, LS_ERROR, "ListParts: cannot start the request");
    }
}

/* ---- initiate ---- */

static void s3m_initiate_cb(struct s3_out *s, struct ls_http_resp *r, void *arg)
{
    struct s3_job *j = arg;
    struct s3_xml_error e;
    char *id = NULL, msg[512];

    if (r->status < 200 || r->status >= 300) {
        s3m_fail(j, "CreateMultipartUpload", r);
        return;
    }
    memset(&e, 0, sizeof(e));
    if (s3_xml_parse_initiate(r->body.p, r->body.len, &id, &e) != LS_OK || id == NULL) {
        snprintf(msg, sizeof(msg), "CreateMultipartUpload '%s': %s", j->key,
                 e.code ? e.code : "no UploadId in the response");
        s3_xml_error_release(&e);
        ls_free(id);
        s3_job_finish(j, LS_ERROR, msg);
        return;
    }
    s3_xml_error_release(&e);
    j->upload_id = id;
    /* persisted before the first part: a restart resumes (or aborts) this upload */
    if (s3_job_save_state(j) != LS_OK) {
        s3_abort_upload(s, j->key, j->upload_id);
        s3_job_finish(j, LS_ERROR, "cannot save the multipart upload id");
        return;
    }
    ls_plg_debug(s->ins, "multipart upload %s of '%s': %zu parts of %lld bytes", id, j->key,
                 j->nparts, (long long)j->part_size);
    j->cur = 0;
    s3m_next(j);
}

static void s3m_initiate(struct s3_job *j)
{
    struct aws_kv q[1] = { { "uploads", NULL } };
    struct aws_kv h[40];
    size_t n = 0, nowned;
    char **owned;
    struct s3_call_opts o;
    int rc;

    s3_object_headers(j, h, &n, LS_ARRAY_LEN(h), &owned, &nowned);
    memset(&o, 0, sizeof(o));
    o.method = "POST";
    o.key = j->key;
    o.query = q;
    o.nquery = 1;
    o.headers = h;
    o.nheaders = n;
    o.fd = -1;
    o.timeout = 60;
    rc = s3_call(j->s, &o, s3m_initiate_cb, j);
    for (size_t i = 0; i < nowned; i++) {
        ls_free(owned[i]);
    }
    ls_free(owned);
    if (rc != LS_OK) {
        s3_job_finish(j, LS_ERROR, "CreateMultipartUpload: cannot start the request");
    }
}

void s3_mpu_run(struct s3_job *j)
{
    if (j->upload_id && j->digest_changed) {
        ls_plg_info(j->s->ins, "the payload of '%s' changed since multipart upload %s started; "
                    "aborting it and starting over", j->key, j->upload_id);
        s3_abort_upload(j->s, j->key, j->upload_id);
        s3m_forget_upload(j);
        (void)s3_job_save_state(j);
    }
    if (j->upload_id) {
        s3m_list_parts(j, 0);
        return;
    }
    s3m_initiate(j);
}
