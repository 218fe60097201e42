/*
 * s3_addr.c - where an S3 request goes: endpoint parsing and addressing.
 *
 * From s3_endpoint / s3_region / s3_bucket / force_path_style this computes,
 * once at configure time, the base URL, the Host header value and the signing
 * region, and then for each key the raw path the signer sees and the encoded
 * URL libcurl gets. The two are derived from the same raw path with the same
 * encoder (aws_uri_encode), so what is signed is what is sent.
 *
 * Addressing follows the AWS SDKs (what fluent-plugin-s3 users get):
 * virtual-hosted style by default, path style when asked
 * (force_path_style), when the endpoint is an IP address or localhost (no
 * DNS for bucket.host), when the bucket name is not DNS-compatible, and when
 * it contains dots over https (the *.host wildcard certificate does not match
 * a dotted bucket).
 */
#include <arpa/inet.h>
#include <ctype.h>

#include "s3.h"

__attribute__((format(printf, 3, 4)))
static void s3_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
}

void s3_addr_release(struct s3_addr *a)
{
    ls_free(a->scheme);
    ls_free(a->endpoint_host);
    ls_free(a->region);
    ls_free(a->bucket);
    ls_free(a->host);
    ls_free(a->base_url);
    memset(a, 0, sizeof(*a));
}

static bool s3_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* "ap-northeast-1", "us-gov-west-1", "cn-north-1", "eu-central-2": letters-...-digits. */
static bool s3_looks_like_region(const char *s, size_t n)
{
    size_t parts = 1, i = 0;
    if (n < 6 || !isalpha((unsigned char)s[0]) || !isalpha((unsigned char)s[1]) || s[2] != '-') {
        return false;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '-') {
            if (i + 1 == n || s[i + 1] == '-') {
                return false;
            }
            parts++;
        } else if (!islower(c) && !isdigit(c)) {
            return false;
        }
    }
    /* the last part is a number */
    size_t j = n;
    while (j > 0 && s[j - 1] != '-') {
        if (!isdigit((unsigned char)s[j - 1])) {
            return false;
        }
        j--;
    }
    return parts >= 3;
}

static bool s3_is_aws_host(const char *host)
{
    return s3_ends_with(host, ".amazonaws.com") || s3_ends_with(host, ".amazonaws.com.cn") ||
           strcmp(host, "amazonaws.com") == 0;
}

char *s3_region_from_host(const char *host_in)
{
    char *host = ls_strdup(host_in);
    for (char *p = host; *p; p++) {
        *p = (char)tolower((unsigned char)*p);
    }
    size_t hl = strlen(host);
    if (hl > 0 && host[hl - 1] == '.') {
        host[--hl] = '\0';
    }
    char *region = NULL;
    if (!s3_is_aws_host(host)) {
        ls_free(host);
        return NULL;
    }
    /* Labels before the amazonaws.com[.cn] suffix, scanned for a region name. */
    size_t end = hl - (s3_ends_with(host, ".com.cn") ? strlen(".amazonaws.com.cn") : strlen(".amazonaws.com"));
    bool s3 = false;
    size_t i = 0;
    while (i < end) {
        size_t j = i;
        while (j < end && host[j] != '.') {
            j++;
        }
        const char *lab = host + i;
        size_t n = j - i;
        if ((n == 2 && memcmp(lab, "s3", 2) == 0) || (n == 13 && memcmp(lab, "s3-external-1", 13) == 0) ||
            (n == 7 && memcmp(lab, "s3-fips", 7) == 0)) {
            s3 = true;
        } else if (n > 3 && memcmp(lab, "s3-", 3) == 0 && s3_looks_like_region(lab + 3, n - 3)) {
            s3 = true;
            ls_free(region);
            region = ls_strndup(lab + 3, n - 3);
        } else if (s3_looks_like_region(lab, n)) {
            ls_free(region);
            region = ls_strndup(lab, n);
        }
        i = j + 1;
    }
    if (region == NULL && s3) {
        region = ls_strdup("us-east-1");   /* s3.amazonaws.com, s3-external-1: the global endpoint */
    }
    ls_free(host);
    return region;
}

static bool s3_is_ipv4(const char *s)
{
    struct in_addr a;
    return inet_pton(AF_INET, s, &a) == 1;
}

bool s3_bucket_dns_compatible(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)b[i];
        if (!(islower(c) || isdigit(c) || c == '-' || c == '.')) {
            return false;
        }
        if (c == '.' && (i == 0 || b[i - 1] == '.' || b[i - 1] == '-' || (i + 1 < n && b[i + 1] == '-'))) {
            return false;
        }
    }
    if (!isalnum((unsigned char)b[0]) || !isalnum((unsigned char)b[n - 1])) {
        return false;
    }
    return !s3_is_ipv4(b);
}

static char *s3_default_endpoint(const char *region)
{
    if (strcmp(region, "us-east-1") == 0) {
        return ls_strdup("s3.amazonaws.com");
    }
    if (strncmp(region, "cn-", 3) == 0) {
        return ls_asprintf("s3.%s.amazonaws.com.cn", region);
    }
    return ls_asprintf("s3.%s.amazonaws.com", region);
}

/* Parse [scheme://]host[:port][/] into a. LS_OK or LS_ERROR with err. */
static int s3_parse_endpoint(struct s3_addr *a, const char *endpoint, char *err, size_t errlen)
{
    while (isspace((unsigned char)*endpoint)) {
        endpoint++;
    }
    size_t elen = strlen(endpoint);
    while (elen > 0 && isspace((unsigned char)endpoint[elen - 1])) {
        elen--;
    }
    char *ep = ls_strndup(endpoint, elen);
    const char *p = ep;
    const char *sep = strstr(ep, "://");
    if (sep) {
        size_t sl = (size_t)(sep - ep);
        if (sl == 4 && strncasecmp(ep, "http", 4) == 0) {
            a->scheme = ls_strdup("http");
        } else if (sl == 5 && strncasecmp(ep, "https", 5) == 0) {
            a->scheme = ls_strdup("https");
        } else {
            s3_seterr(err, errlen, "s3_endpoint '%s': scheme must be http or https", ep);
            ls_free(ep);
            return LS_ERROR;
        }
        p = sep + 3;
    } else {
        a->scheme = ls_strdup("https");
    }
    size_t alen = strcspn(p, "/?#");
    const char *rest = p + alen;
    if (*rest == '?' || *rest == '#' || (*rest == '/' && rest[1] != '\0')) {
        s3_seterr(err, errlen, "s3_endpoint '%s': a path, query or fragment is not supported", ep);
        ls_free(ep);
        return LS_ERROR;
    }
    char *auth = ls_strndup(p, alen);
    if (alen == 0 || strchr(auth, '@')) {
        s3_seterr(err, errlen, "s3_endpoint '%s': expected [http[s]://]host[:port]", ep);
        goto fail;
    }
    const char *port = NULL;
    if (auth[0] == '[') {
        char *close = strchr(auth, ']');
        struct in6_addr a6;
        if (close == NULL) {
            s3_seterr(err, errlen, "s3_endpoint '%s': unterminated IPv6 address", ep);
            goto fail;
        }
        *close = '\0';
        if (inet_pton(AF_INET6, auth + 1, &a6) != 1) {
            s3_seterr(err, errlen, "s3_endpoint '%s': bad IPv6 address", ep);
            goto fail;
        }
        if (close[1] == ':') {
            port = close + 2;
        } else if (close[1] != '\0') {
            s3_seterr(err, errlen, "s3_endpoint '%s': junk after the IPv6 address", ep);
            goto fail;
        }
        a->endpoint_host = ls_asprintf("[%s]", auth + 1);
        a->path_style = true;   /* no bucket.[v6] virtual hosts */
    } else {
        char *colon = strchr(auth, ':');
        if (colon) {
            *colon = '\0';
            port = colon + 1;
        }
        for (char *q = auth; *q; q++) {
            unsigned char c = (unsigned char)*q;
            if (!(isalnum(c) || c == '-' || c == '.' || c == '_')) {
                s3_seterr(err, errlen, "s3_endpoint '%s': bad character in host name", ep);
                goto fail;
            }
            *q = (char)tolower(c);
        }
        if (auth[0] == '\0') {
            s3_seterr(err, errlen, "s3_endpoint '%s': empty host", ep);
            goto fail;
        }
        a->endpoint_host = ls_strdup(auth);
        if (s3_is_ipv4(auth) || strcmp(auth, "localhost") == 0 || s3_ends_with(auth, ".localhost")) {
            a->path_style = true;
        }
    }
    if (port) {
        char *end = NULL;
        errno = 0;
        unsigned long v = strtoul(port, &end, 10);
        if (port[0] == '\0' || !isdigit((unsigned char)port[0]) || *end != '\0' || errno || v == 0 || v > 65535) {
            s3_seterr(err, errlen, "s3_endpoint '%s': bad port", ep);
            goto fail;
        }
        bool deflt = (v == 80 && strcmp(a->scheme, "http") == 0) || (v == 443 && strcmp(a->scheme, "https") == 0);
        a->port = deflt ? 0 : (int)v;
    }
    ls_free(auth);
    ls_free(ep);
    return LS_OK;
fail:
    ls_free(auth);
    ls_free(ep);
    return LS_ERROR;
}

int s3_addr_init(struct s3_addr *a, const char *endpoint, const char *region, const char *bucket,
                 bool force_path_style, char *err, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    if (bucket == NULL || bucket[0] == '\0' || strchr(bucket, '/')) {
        s3_seterr(err, errlen, "s3_bucket '%s': empty or contains '/'", bucket ? bucket : "");
        return LS_ERROR;
    }
    for (const char *q = bucket; *q; q++) {
        if ((unsigned char)*q <= ' ' || (unsigned char)*q >= 0x7f) {
            s3_seterr(err, errlen, "s3_bucket '%s': control, space or non-ASCII character", bucket);
            return LS_ERROR;
        }
    }
    if (endpoint && endpoint[0]) {
        if (s3_parse_endpoint(a, endpoint, err, errlen) != LS_OK) {
            s3_addr_release(a);
            return LS_ERROR;
        }
    }
    if (region && region[0]) {
        a->region = ls_strdup(region);
    } else if (a->endpoint_host) {
        a->region = s3_region_from_host(a->endpoint_host);
        if (a->region == NULL) {
            a->region = ls_strdup("us-east-1");   /* what S3-compatible stores default to (MinIO, R2 alias) */
        }
    } else {
        a->region = ls_strdup("us-east-1");
    }
    if (a->endpoint_host == NULL) {
        a->scheme = ls_strdup("https");
        a->endpoint_host = s3_default_endpoint(a->region);
    }
    a->aws = s3_is_aws_host(a->endpoint_host);
    a->bucket = ls_strdup(bucket);
    bool https = strcmp(a->scheme, "https") == 0;
    if (force_path_style || !s3_bucket_dns_compatible(bucket) || (https && strchr(bucket, '.'))) {
        a->path_style = true;
    }

    char portbuf[16] = "";
    if (a->port) {
        snprintf(portbuf, sizeof(portbuf), ":%d", a->port);
    }
    if (a->path_style) {
        struct ls_buf b;
        ls_buf_init(&b, 0);
        aws_uri_encode(&b, bucket, strlen(bucket), false);
        a->host = ls_asprintf("%s%s", a->endpoint_host, portbuf);
        a->base_url = ls_asprintf("%s://%s/%s", a->scheme, a->host, ls_buf_cstr(&b));
        ls_buf_release(&b);
    } else {
        a->host = ls_asprintf("%s.%s%s", bucket, a->endpoint_host, portbuf);
        a->base_url = ls_asprintf("%s://%s", a->scheme, a->host);
    }
    return LS_OK;
}

char *s3_addr_path(const struct s3_addr *a, const char *key)
{
    if (a->path_style) {
        return key ? ls_asprintf("/%s/%s", a->bucket, key) : ls_asprintf("/%s", a->bucket);
    }
    return ls_asprintf("/%s", key ? key : "");
}

char *s3_addr_resource(const struct s3_addr *a, const char *key)
{
    if (a->path_style) {
        return s3_addr_path(a, key);
    }
    return ls_asprintf("/%s/%s", a->bucket, key ? key : "");
}

char *s3_addr_url(const struct s3_addr *a, const char *key, const struct aws_kv *query, size_t nquery)
{
    struct ls_buf b;
    ls_buf_init(&b, 0);
    ls_buf_printf(&b, "%s", a->base_url);
    if (key) {
        ls_buf_putc(&b, '/');
        aws_uri_encode(&b, key, strlen(key), true);
    } else if (!a->path_style) {
        ls_buf_putc(&b, '/');
    }
    for (size_t i = 0; i < nquery; i++) {
        ls_buf_putc(&b, i ? '&' : '?');
        aws_uri_encode(&b, query[i].name, strlen(query[i].name), false);
        if (query[i].value) {
            ls_buf_putc(&b, '=');
            aws_uri_encode(&b, query[i].value, strlen(query[i].value), false);
        }
    }
    ls_buf_cstr(&b);
    return ls_buf_detach(&b, NULL);
}
