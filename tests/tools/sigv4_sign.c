/*
 * sigv4_sign - sign request descriptions read on stdin with the out_s3
 * signer, for the botocore cross-check (tests/integration/test_sigv4_botocore.py).
 *
 * Input: blocks of "field<TAB>value" lines ended by an empty line. Values are
 * percent-decoded (%XX), so keys with tabs, newlines or '%' survive. Fields:
 *   mode v4|v2, method, path (raw), query <name>[<TAB><value>] (repeatable; no
 *   value = bare name), header <name><TAB><value> (repeatable), payload (hex
 *   sha256 or UNSIGNED-PAYLOAD), region, service, time (unix seconds), key,
 *   secret, token, normalize 0|1, content_sha 0|1, resource (v2), date (v2).
 * Output per block: "authorization", "creq" (v4) / "sts" (v2 string to sign)
 * lines, percent-encoded the same way, then an empty line; "error<TAB>..." on
 * failure. The secret is never printed.
 */
#include "../../agent/aws.h"

#define MAXKV 64

struct req {
    char *mode, *method, *path, *payload, *region, *service, *key, *secret, *token, *resource, *date;
    int64_t time;
    bool normalize, content_sha;
    struct aws_kv q[MAXKV], h[MAXKV];
    size_t nq, nh;
};

static int hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static char *decode(const char *s)
{
    char *d = ls_malloc(strlen(s) + 1);
    size_t o = 0;
    for (; *s; s++) {
        if (*s == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
            d[o++] = (char)(hexval(s[1]) * 16 + hexval(s[2]));
            s += 2;
        } else {
            d[o++] = *s;
        }
    }
    d[o] = '\0';
    return d;
}

static void put(const char *field, const char *v)
{
    fputs(field, stdout);
    fputc('\t', stdout);
    for (; v && *v; v++) {
        unsigned char c = (unsigned char)*v;
        if (c == '%' || c == '\n' || c == '\r' || c == '\t') {
            printf("%%%02X", c);
        } else {
            fputc(c, stdout);
        }
    }
    fputc('\n', stdout);
}

static void req_free(struct req *r)
{
    char **s[] = { &r->mode, &r->method, &r->path, &r->payload, &r->region, &r->service, &r->key,
                   &r->secret, &r->token, &r->resource, &r->date };
    for (size_t i = 0; i < LS_ARRAY_LEN(s); i++) {
        ls_free(*s[i]);
    }
    for (size_t i = 0; i < r->nq; i++) {
        ls_free((char *)r->q[i].name);
        ls_free((char *)r->q[i].value);
    }
    for (size_t i = 0; i < r->nh; i++) {
        ls_free((char *)r->h[i].name);
        ls_free((char *)r->h[i].value);
    }
    memset(r, 0, sizeof(*r));
}

static void sign(struct req *r, struct aws_sigv4_cache *cache)
{
    struct aws_creds c = { .key = r->key, .secret = r->secret, .token = r->token };
    struct aws_request q = { .method = r->method, .path = r->path, .query = r->q, .nquery = r->nq,
                            .headers = r->h, .nheaders = r->nh, .payload_hash = r->payload };
    struct aws_signed s;
    int rc;
    if (r->mode && strcmp(r->mode, "v2") == 0) {
        rc = s3_sigv2_sign(&q, r->resource ? r->resource : r->path, r->date ? r->date : "", &c, &s);
    } else {
        unsigned flags = (r->normalize ? AWS_SIGV4_NORMALIZE_PATH : 0) | (r->content_sha ? AWS_SIGV4_CONTENT_SHA : 0);
        rc = aws_sigv4_sign(&q, &c, r->region ? r->region : "us-east-1", r->service ? r->service : "s3", r->time,
                           flags, cache, &s);
    }
    if (rc != LS_OK) {
        put("error", "signing failed");
    } else {
        put("authorization", s.authorization);
        if (s.canonical_request) {
            put("creq", s.canonical_request);
        }
        put("sts", s.string_to_sign);
        aws_signed_release(&s);
    }
    fputc('\n', stdout);
    fflush(stdout);
}

int main(void)
{
    struct req r;
    memset(&r, 0, sizeof(r));
    struct aws_sigv4_cache cache;
    memset(&cache, 0, sizeof(cache));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    bool any = false;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
            line[--n] = '\0';
        }
        if (n == 0) {
            if (any) {
                sign(&r, &cache);
                req_free(&r);
                any = false;
            }
            continue;
        }
        any = true;
        char *tab = strchr(line, '\t');
        char *v1 = NULL, *v2 = NULL;
        if (tab) {
            *tab = '\0';
            v1 = tab + 1;
            char *tab2 = strchr(v1, '\t');
            if (tab2) {
                *tab2 = '\0';
                v2 = tab2 + 1;
            }
        }
        const char *f = line;
        char *val = v1 ? decode(v1) : ls_strdup("");
        if (strcmp(f, "query") == 0 && r.nq < MAXKV) {
            r.q[r.nq].name = val;
            r.q[r.nq].value = v2 ? decode(v2) : NULL;
            r.nq++;
            continue;
        }
        if (strcmp(f, "header") == 0 && r.nh < MAXKV) {
            r.h[r.nh].name = val;
            r.h[r.nh].value = decode(v2 ? v2 : "");
            r.nh++;
            continue;
        }
        struct {
            const char *name;
            char **slot;
        } fields[] = {
            { "mode", &r.mode }, { "method", &r.method }, { "path", &r.path }, { "payload", &r.payload },
            { "region", &r.region }, { "service", &r.service }, { "key", &r.key }, { "secret", &r.secret },
            { "token", &r.token }, { "resource", &r.resource }, { "date", &r.date },
        };
        char **slot = NULL;
        for (size_t i = 0; i < LS_ARRAY_LEN(fields); i++) {
            if (strcmp(f, fields[i].name) == 0) {
                slot = fields[i].slot;
            }
        }
        if (slot) {
            ls_free(*slot);
            *slot = val;
            continue;
        }
        if (strcmp(f, "time") == 0) {
            r.time = strtoll(val, NULL, 10);
        } else if (strcmp(f, "normalize") == 0) {
            r.normalize = strcmp(val, "1") == 0;
        } else if (strcmp(f, "content_sha") == 0) {
            r.content_sha = strcmp(val, "1") == 0;
        }
        ls_free(val);
    }
    if (any) {
        sign(&r, &cache);
    }
    req_free(&r);
    free(line);
    return 0;
}
