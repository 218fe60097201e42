/*
 * aws_sigv4.c - AWS request signing: SigV4 (header auth) and SigV2.
 *
 * SigV4 builds the canonical request from a raw description of the request
 * (raw path, raw query pairs, the headers the caller will send), so the one
 * place that knows S3's encoding rules is here: the path is URI-encoded once
 * with '/' kept, and for S3 it is *not* normalised ("//" and "." segments
 * are part of the key). Other services (STS) normalise the path, behind a
 * flag. The signing key (four HMACs) depends only on the day, region,
 * service and secret, so it is cached; the cache keeps a hash of the secret,
 * never the secret.
 *
 * SigV2 ("signature_version s3") is the legacy HMAC-SHA1 scheme some old
 * S3-compatible stores still require; it signs the standard headers, the
 * x-amz-* headers and the path-style resource with the subresources.
 *
 * Nothing here does I/O; the results are ready header lines.
 */
#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "aws.h"

#define S3_SIG_MAX_STR (1u << 20)   /* canonical requests are small; caps hostile input */

static const char s3_hexdig[] = "0123456789abcdef";

static void s3_hex(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = s3_hexdig[p[i] >> 4];
        out[2 * i + 1] = s3_hexdig[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static void s3_sha256(const void *p, size_t len, unsigned char out[32])
{
    unsigned int n = 32;
    EVP_Digest(p, len, out, &n, EVP_sha256(), NULL);
}

void aws_sha256_hex(const void *p, size_t len, char out[65])
{
    unsigned char d[32];
    s3_sha256(p, len, d);
    s3_hex(d, 32, out);
}

void s3_md5_base64(const void *p, size_t len, char out[25])
{
    unsigned char d[16];
    unsigned int n = 16;
    EVP_Digest(p, len, d, &n, EVP_md5(), NULL);
    EVP_EncodeBlock((unsigned char *)out, d, 16);
}

static void s3_hmac256(const void *key, size_t klen, const void *msg, size_t mlen, unsigned char out[32])
{
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &n);
}

void s3_http_date(int64_t t, char out[32])
{
    static const char *const wday[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    /* Not strftime: %a/%b follow the locale, HTTP wants English names. */
    snprintf(out, 32, "%s, %02d %s %04d %02d:%02d:%02d GMT", wday[tm.tm_wday], tm.tm_mday,
             mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static bool s3_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.' || c == '~';
}

int aws_uri_encode(struct ls_buf *out, const char *s, size_t len, bool keep_slash)
{
    static const char up[] = "0123456789ABCDEF";
    if (ls_buf_reserve(out, len) != LS_OK) {
        return LS_ERROR;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (s3_unreserved(c) || (keep_slash && c == '/')) {
            if (ls_buf_putc(out, (char)c) != LS_OK) {
                return LS_ERROR;
            }
        } else {
            char e[3] = { '%', up[c >> 4], up[c & 15] };
            if (ls_buf_append(out, e, 3) != LS_OK) {
                return LS_ERROR;
            }
        }
    }
    return LS_OK;
}

/* ---- canonical query ---- */

struct s3_qpair {
    char *k;
    char *v;
};

static int s3_qpair_cmp(const void *a, const void *b)
{
    const struct s3_qpair *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    return c != 0 ? c : strcmp(x->v, y->v);
}

static char *s3_encode_dup(const char *s, bool keep_slash)
{
    struct ls_buf b;
    ls_buf_init(&b, S3_SIG_MAX_STR);
    if (aws_uri_encode(&b, s ? s : "", s ? strlen(s) : 0, keep_slash) != LS_OK) {
        ls_buf_release(&b);
        return NULL;
    }
    ls_buf_cstr(&b);
    return ls_buf_detach(&b, NULL);
}

int aws_canonical_query(struct ls_buf *out, const struct aws_kv *q, size_t n)
{
    if (n == 0) {
        return LS_OK;
    }
    struct s3_qpair *pairs = ls_calloc(n, sizeof(*pairs));
    int rc = LS_OK;
    for (size_t i = 0; i < n; i++) {
        pairs[i].k = s3_encode_dup(q[i].name, false);
        pairs[i].v = s3_encode_dup(q[i].value, false);
        if (pairs[i].k == NULL || pairs[i].v == NULL) {
            rc = LS_ERROR;
        }
    }
    if (rc == LS_OK) {
        qsort(pairs, n, sizeof(*pairs), s3_qpair_cmp);
        for (size_t i = 0; i < n && rc == LS_OK; i++) {
            rc = ls_buf_printf(out, "%s%s=%s", i ? "&" : "", pairs[i].k, pairs[i].v) == LS_OK
                     ? LS_OK : LS_ERROR;
        }
    }
    for (size_t i = 0; i < n; i++) {
        ls_free(pairs[i].k);
        ls_free(pairs[i].v);
    }
    ls_free(pairs);
    return rc;
}

/* ---- canonical path ---- */

/*
 * Dot-segment and empty-segment removal, for non-S3 services only. Like
 * botocore (the reference AWS services are tested against), the result ends
 * in '/' only when the input did and something is left.
 */
static char *s3_normalize_path(const char *path)
{
    size_t len = strlen(path);
    char *out = ls_malloc(len + 2);
    size_t *starts = ls_calloc(len + 1, sizeof(size_t));   /* segment start offsets in out */
    size_t nseg = 0, o = 0;
    const char *p = path;
    while (*p) {
        while (*p == '/') {
            p++;
        }
        const char *s = p;
        while (*p && *p != '/') {
            p++;
        }
        size_t sl = (size_t)(p - s);
        if (sl == 0 || (sl == 1 && s[0] == '.')) {
            continue;
        }
        if (sl == 2 && s[0] == '.' && s[1] == '.') {
            if (nseg > 0) {
                o = starts[--nseg];
            }
            continue;
        }
        starts[nseg++] = o;
        out[o++] = '/';
        memcpy(out + o, s, sl);
        o += sl;
    }
    if (o == 0 || (len > 0 && path[len - 1] == '/')) {
        out[o++] = '/';
    }
    out[o] = '\0';
    ls_free(starts);
    return out;
}

/* ---- canonical headers ---- */

struct s3_hdr {
    char *name;    /* lower case */
    char *value;   /* trimmed, inner whitespace runs collapsed */
    size_t idx;    /* input order, so duplicates keep it */
};

static int s3_hdr_cmp(const void *a, const void *b)
{
    const struct s3_hdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0) {
        return c;
    }
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static char *s3_lower_dup(const char *s)
{
    char *d = ls_strdup(s);
    for (char *p = d; *p; p++) {
        *p = (char)tolower((unsigned char)*p);
    }
    return d;
}

static bool s3_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* SigV4 "Trimall": strip, and turn each whitespace run into one space. */
static char *s3_trimall(const char *s)
{
    char *d = ls_malloc(strlen(s) + 1);
    size_t o = 0;
    bool pend = false;
    for (; *s; s++) {
        if (s3_ws(*s)) {
            pend = o > 0;
            continue;
        }
        if (pend) {
            d[o++] = ' ';
            pend = false;
        }
        d[o++] = *s;
    }
    d[o] = '\0';
    return d;
}

static bool s3_header_unsigned(const char *lname)
{
    static const char *const skip[] = {
        "authorization", "connection", "expect", "keep-alive", "proxy-authenticate",
        "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "user-agent",
        "x-amzn-trace-id",
        /* owned by the signer: added below, never taken from the caller */
        "x-amz-date", "x-amz-content-sha256", "x-amz-security-token",
    };
    for (size_t i = 0; i < LS_ARRAY_LEN(skip); i++) {
        if (strcmp(lname, skip[i]) == 0) {
            return true;
        }
    }
    return false;
}

void aws_signed_release(struct aws_signed *s)
{
    ls_free(s->authorization);
    ls_free(s->signature);
    ls_free(s->canonical_request);
    ls_free(s->string_to_sign);
    for (size_t i = 0; i < s->nheaders; i++) {
        ls_free(s->headers[i]);
    }
    memset(s, 0, sizeof(*s));
}

static void s3_signing_key(const char *secret, const char *date, const char *region,
                           const char *service, unsigned char out[32])
{
    size_t sl = strlen(secret);
    char *k = ls_malloc(sl + 5);
    memcpy(k, "AWS4", 4);
    memcpy(k + 4, secret, sl + 1);
    unsigned char a[32], b[32];
    s3_hmac256(k, sl + 4, date, strlen(date), a);
    OPENSSL_cleanse(k, sl + 4);
    ls_free(k);
    s3_hmac256(a, 32, region, strlen(region), b);
    s3_hmac256(b, 32, service, strlen(service), a);
    s3_hmac256(a, 32, "aws4_request", 12, out);
    OPENSSL_cleanse(a, sizeof(a));
    OPENSSL_cleanse(b, sizeof(b));
}

static void s3_get_signing_key(struct aws_sigv4_cache *cache, const char *secret, const char *date,
                               const char *region, const char *service, unsigned char out[32])
{
    if (cache == NULL || strlen(region) >= sizeof(cache->region) ||
        strlen(service) >= sizeof(cache->service)) {
        s3_signing_key(secret, date, region, service, out);
        return;
    }
    unsigned char sid[32];
    s3_sha256(secret, strlen(secret), sid);
    if (!cache->valid || strcmp(cache->date, date) != 0 || strcmp(cache->region, region) != 0 ||
        strcmp(cache->service, service) != 0 || memcmp(cache->secret_id, sid, 32) != 0) {
        s3_signing_key(secret, date, region, service, cache->key);
        snprintf(cache->date, sizeof(cache->date), "%s", date);
        snprintf(cache->region, sizeof(cache->region), "%s", region);
        snprintf(cache->service, sizeof(cache->service), "%s", service);
        memcpy(cache->secret_id, sid, 32);
        cache->valid = true;
    }
    memcpy(out, cache->key, 32);
}

static bool s3_has_ctl(const char *s)
{
    for (; s && *s; s++) {
        if (*s == '\r' || *s == '\n') {
            return true;
        }
    }
    return false;
}

int aws_sigv4_sign(const struct aws_request *req, const struct aws_creds *creds, const char *region,
                  const char *service, int64_t now, unsigned flags, struct aws_sigv4_cache *cache,
                  struct aws_signed *out)
{
    memset(out, 0, sizeof(*out));
    if (req->method == NULL || creds == NULL || creds->key == NULL || creds->secret == NULL ||
        region == NULL || service == NULL || s3_has_ctl(creds->key) || s3_has_ctl(creds->token)) {
        return LS_ERROR;
    }
    const char *payload = req->payload_hash ? req->payload_hash : AWS_EMPTY_SHA256;
    if (s3_has_ctl(payload)) {
        return LS_ERROR;
    }
    time_t tt = (time_t)now;
    struct tm tm;
    gmtime_r(&tt, &tm);
    /* Numeric strftime conversions do not depend on the locale. */
    if (strftime(out->amz_date, sizeof(out->amz_date), "%Y%m%dT%H%M%SZ", &tm) != 16) {
        return LS_ERROR;
    }
    char date[9];
    memcpy(date, out->amz_date, 8);
    date[8] = '\0';

    /* Headers: the caller's (minus the blacklist) plus the ones the signer owns. */
    size_t cap = req->nheaders + 3, nh = 0;
    struct s3_hdr *h = ls_calloc(cap, sizeof(*h));
    for (size_t i = 0; i < req->nheaders; i++) {
        if (req->headers[i].name == NULL || req->headers[i].value == NULL) {
            continue;
        }
        char *ln = s3_lower_dup(req->headers[i].name);
        if (s3_header_unsigned(ln)) {
            ls_free(ln);
            continue;
        }
        h[nh].name = ln;
        h[nh].value = s3_trimall(req->headers[i].value);
        h[nh].idx = nh;
        nh++;
    }
    h[nh].name = ls_strdup("x-amz-date");
    h[nh].value = ls_strdup(out->amz_date);
    h[nh].idx = nh;
    nh++;
    if (flags & AWS_SIGV4_CONTENT_SHA) {
        h[nh].name = ls_strdup("x-amz-content-sha256");
        h[nh].value = ls_strdup(payload);
        h[nh].idx = nh;
        nh++;
    }
    if (creds->token && creds->token[0]) {
        h[nh].name = ls_strdup("x-amz-security-token");
        h[nh].value = s3_trimall(creds->token);
        h[nh].idx = nh;
        nh++;
    }
    qsort(h, nh, sizeof(*h), s3_hdr_cmp);

    struct ls_buf cr, sh;
    ls_buf_init(&cr, S3_SIG_MAX_STR);
    ls_buf_init(&sh, S3_SIG_MAX_STR);
    int rc = LS_OK;

    /* method, path, query */
    const char *path = (req->path && req->path[0]) ? req->path : "/";
    char *npath = (flags & AWS_SIGV4_NORMALIZE_PATH) ? s3_normalize_path(path) : ls_strdup(path);
    if (ls_buf_printf(&cr, "%s\n", req->method) != LS_OK ||
        aws_uri_encode(&cr, npath, strlen(npath), true) != LS_OK || ls_buf_putc(&cr, '\n') != LS_OK ||
        aws_canonical_query(&cr, req->query, req->nquery) != LS_OK || ls_buf_putc(&cr, '\n') != LS_OK) {
        rc = LS_ERROR;
    }
    ls_free(npath);

    /* canonical headers and the signed-headers list */
    for (size_t i = 0; i < nh && rc == LS_OK; i++) {
        bool first = i == 0 || strcmp(h[i].name, h[i - 1].name) != 0;
        bool last = i + 1 == nh || strcmp(h[i].name, h[i + 1].name) != 0;
        if (first) {
            if (ls_buf_printf(&cr, "%s:", h[i].name) != LS_OK ||
                ls_buf_printf(&sh, "%s%s", sh.len ? ";" : "", h[i].name) != LS_OK) {
                rc = LS_ERROR;
            }
        } else if (ls_buf_putc(&cr, ',') != LS_OK) {
            rc = LS_ERROR;
        }
        if (ls_buf_printf(&cr, "%s%s", h[i].value, last ? "\n" : "") != LS_OK) {
            rc = LS_ERROR;
        }
    }
    if (rc == LS_OK && ls_buf_printf(&cr, "\n%s\n%s", ls_buf_cstr(&sh), payload) != LS_OK) {
        rc = LS_ERROR;
    }
    for (size_t i = 0; i < nh; i++) {
        ls_free(h[i].name);
        ls_free(h[i].value);
    }
    ls_free(h);
    if (rc != LS_OK) {
        ls_buf_release(&cr);
        ls_buf_release(&sh);
        return LS_ERROR;
    }

    char crhash[65];
    aws_sha256_hex(cr.p, cr.len, crhash);
    out->canonical_request = ls_strndup(cr.p, cr.len);
    ls_buf_release(&cr);
    out->string_to_sign = ls_asprintf("AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", out->amz_date,
                                      date, region, service, crhash);

    unsigned char key[32], sig[32];
    s3_get_signing_key(cache, creds->secret, date, region, service, key);
    s3_hmac256(key, 32, out->string_to_sign, strlen(out->string_to_sign), sig);
    OPENSSL_cleanse(key, sizeof(key));
    char sighex[65];
    s3_hex(sig, 32, sighex);
    out->signature = ls_strdup(sighex);
    out->authorization = ls_asprintf("AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, "
                                     "SignedHeaders=%s, Signature=%s",
                                     creds->key, date, region, service, ls_buf_cstr(&sh), sighex);
    ls_buf_release(&sh);

    out->headers[out->nheaders++] = ls_asprintf("x-amz-date: %s", out->amz_date);
    if (flags & AWS_SIGV4_CONTENT_SHA) {
        out->headers[out->nheaders++] = ls_asprintf("x-amz-content-sha256: %s", payload);
    }
    if (creds->token && creds->token[0]) {
        out->headers[out->nheaders++] = ls_asprintf("x-amz-security-token: %s", creds->token);
    }
    out->headers[out->nheaders++] = ls_asprintf("Authorization: %s", out->authorization);
    return LS_OK;
}

/* ---- SigV2 ---- */

/* Query parameters that are part of the V2 canonical resource (the S3 subresources). */
static const char *const s3_v2_subresources[] = {
    "accelerate", "acl", "analytics", "cors", "defaultObjectAcl", "delete", "inventory",
    "lifecycle", "location", "logging", "metrics", "notification", "object-lock", "partNumber",
    "policy", "replication", "requestPayment", "response-cache-control",
    "response-content-disposition", "response-content-encoding", "response-content-language",
    "response-content-type", "response-expires", "restore", "select", "select-type",
    "storageClass", "tagging", "torrent", "uploadId", "uploads", "versionId", "versioning",
    "versions", "website",
};

static bool s3_v2_is_subresource(const char *name)
{
    for (size_t i = 0; i < LS_ARRAY_LEN(s3_v2_subresources); i++) {
        if (strcmp(name, s3_v2_subresources[i]) == 0) {
            return true;
        }
    }
    return false;
}

static int s3_kv_name_cmp(const void *a, const void *b)
{
    const struct aws_kv *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* Trim leading/trailing whitespace only (V2 does not collapse inner runs). */
static char *s3_strip_dup(const char *s)
{
    while (s3_ws(*s)) {
        s++;
    }
    size_t n = strlen(s);
    while (n > 0 && s3_ws(s[n - 1])) {
        n--;
    }
    return ls_strndup(s, n);
}

struct s3_amz {
    char *name;
    char *value;
    size_t idx;
};

static int s3_amz_cmp(const void *a, const void *b)
{
    const struct s3_amz *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c != 0 ? c : (x->idx < y->idx ? -1 : x->idx > y->idx);
}

int s3_sigv2_sign(const struct aws_request *req, const char *resource_path, const char *date,
                  const struct aws_creds *creds, struct aws_signed *out)
{
    memset(out, 0, sizeof(*out));
    if (req->method == NULL || creds == NULL || creds->key == NULL || creds->secret == NULL ||
        s3_has_ctl(creds->key) || s3_has_ctl(creds->token)) {
        return LS_ERROR;
    }
    struct ls_buf s;
    ls_buf_init(&s, S3_SIG_MAX_STR);
    int rc = LS_OK;
    const char *md5 = "", *ctype = "";
    size_t cap = req->nheaders + 1, na = 0;
    struct s3_amz *amz = ls_calloc(cap, sizeof(*amz));
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct aws_kv *hv = &req->headers[i];
        if (hv->name == NULL || hv->value == NULL) {
            continue;
        }
        if (strcasecmp(hv->name, "content-md5") == 0) {
            md5 = hv->value;
        } else if (strcasecmp(hv->name, "content-type") == 0) {
            ctype = hv->value;
        } else if (strncasecmp(hv->name, "x-amz-", 6) == 0 &&
                   strcasecmp(hv->name, "x-amz-security-token") != 0) {
            amz[na].name = s3_lower_dup(hv->name);
            amz[na].value = s3_strip_dup(hv->value);
            amz[na].idx = na;
            na++;
        }
    }
    if (creds->token && creds->token[0]) {
        amz[na].name = ls_strdup("x-amz-security-token");
        amz[na].value = s3_strip_dup(creds->token);
        amz[na].idx = na;
        na++;
    }
    qsort(amz, na, sizeof(*amz), s3_amz_cmp);

    char *smd5 = s3_strip_dup(md5), *sct = s3_strip_dup(ctype), *sdate = s3_strip_dup(date ? date : "");
    if (ls_buf_printf(&s, "%s\n%s\n%s\n%s\n", req->method, smd5, sct, sdate) != LS_OK) {
        rc = LS_ERROR;
    }
    ls_free(smd5);
    ls_free(sct);
    ls_free(sdate);
    for (size_t i = 0; i < na && rc == LS_OK; i++) {
        bool first = i == 0 || strcmp(amz[i].name, amz[i - 1].name) != 0;
        bool last = i + 1 == na || strcmp(amz[i].name, amz[i + 1].name) != 0;
        if (ls_buf_printf(&s, "%s%s%s%s", first ? amz[i].name : "", first ? ":" : ",", amz[i].value,
                          last ? "\n" : "") != LS_OK) {
            rc = LS_ERROR;
        }
    }
    for (size_t i = 0; i < na; i++) {
        ls_free(amz[i].name);
        ls_free(amz[i].value);
    }
    ls_free(amz);

    /* Resource: the encoded path-style path, then "?" and the sorted subresources (raw values). */
    const char *rp = (resource_path && resource_path[0]) ? resource_path : "/";
    if (rc == LS_OK && aws_uri_encode(&s, rp, strlen(rp), true) != LS_OK) {
        rc = LS_ERROR;
    }
    const struct aws_kv **sub = ls_calloc(req->nquery + 1, sizeof(*sub));
    size_t ns = 0;
    for (size_t i = 0; i < req->nquery; i++) {
        if (req->query[i].name && s3_v2_is_subresource(req->query[i].name)) {
            sub[ns++] = &req->query[i];
        }
    }
    /* Stable sort by name: insertion order decides among equal names (as Python's sort). */
    for (size_t i = 1; i < ns; i++) {
        for (size_t j = i; j > 0 && s3_kv_name_cmp(&sub[j - 1], &sub[j]) > 0; j--) {
            const struct aws_kv *t = sub[j];
            sub[j] = sub[j - 1];
            sub[j - 1] = t;
        }
    }
    for (size_t i = 0; i < ns && rc == LS_OK; i++) {
        if (ls_buf_printf(&s, "%s%s%s%s", i ? "&" : "?", sub[i]->name, sub[i]->value ? "=" : "",
                          sub[i]->value ? sub[i]->value : "") != LS_OK) {
            rc = LS_ERROR;
        }
    }
    ls_free(sub);
    if (rc != LS_OK) {
        ls_buf_release(&s);
        return LS_ERROR;
    }

    unsigned char mac[20];
    unsigned int mlen = 20;
    HMAC(EVP_sha1(), creds->secret, (int)strlen(creds->secret), (const unsigned char *)s.p, s.len, mac,
         &mlen);
    char b64[32];
    EVP_EncodeBlock((unsigned char *)b64, mac, 20);
    out->string_to_sign = ls_strndup(s.p, s.len);
    ls_buf_release(&s);
    out->signature = ls_strdup(b64);
    out->authorization = ls_asprintf("AWS %s:%s", creds->key, b64);
    if (creds->token && creds->token[0]) {
        out->headers[out->nheaders++] = ls_asprintf("x-amz-security-token: %s", creds->token);
    }
    out->headers[out->nheaders++] = ls_asprintf("Authorization: %s", out->authorization);
    return LS_OK;
}
