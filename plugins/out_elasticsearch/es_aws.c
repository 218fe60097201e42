/*
 * es_aws.c - AWS SigV4 for the Elasticsearch outputs.
 *
 * fluent-plugin-aws-elasticsearch-service (2.4) is out_elasticsearch with one or more
 * <endpoint> sections: each names a domain's URL and region and where the credentials come
 * from, and every request to it (GET / and the bulk POSTs) is signed for the service "es"
 * (faraday_middleware-aws-sigv4: x-amz-date, x-amz-content-sha256, the session token, the
 * Authorization header). fluent-plugin-opensearch has the same <endpoint> (one), with
 * aws_service_name "aoss" for OpenSearch Serverless and refresh_credentials_interval.
 *
 * Credentials, as the plugin's credentials(): access_key_id and secret_access_key when both
 * are set; else with assume_role_arn, STS AssumeRoleWithWebIdentity when
 * assume_role_web_identity_token_file is set or AssumeRole on top of the SDK's default chain
 * (sts_credentials_region, else region); else the container credentials at
 * ecs_container_credentials_relative_uri when set; else a chain. There the plugin asks only
 * the shared credentials file, EC2 instance metadata and the container credentials, so the
 * AWS_ACCESS_KEY_ID environment variables and an EKS pod's AWS_ROLE_ARN /
 * AWS_WEB_IDENTITY_TOKEN_FILE are not looked at (its requests then fail, or go out as the
 * node's instance role); logship runs the SDK's whole default chain instead (env, shared
 * file, web identity, container, instance metadata), the one out_s3 uses. The plugin builds
 * its credentials again for every request; logship keeps them and asks again before they
 * expire (aws.h's refresh window) or, for opensearch, after refresh_credentials_interval.
 *
 * The resolving and the signing run on worker threads (credentials may need HTTP calls);
 * each endpoint's credentials and signing-key cache sit behind its own mutex.
 */
#include "es_aws.h"

#include <pthread.h>

#include "aws.h"
#include "http.h"
#include "log.h"
#include "param.h"

struct es_aws_ep {
    /* bound from <endpoint> */
    char *url;
    char *region;
    char *access_key_id;
    char *secret_access_key;
    char *assume_role_arn;
    char *ecs_uri;
    char *session_name;
    char *token_file;
    char *sts_region;
    double refresh_interval;
    int service;                    /* 0 es, 1 aoss */

    /* derived */
    const char *file;
    int line;
    struct aws_cred_config cc;
    char *host;                     /* the Host header: host[:port], the port only if not the default */
    pthread_mutex_t mu;
    struct aws_creds creds;
    bool have;
    int64_t got_at;
    char described[160];
    struct aws_sigv4_cache cache;
};

struct es_aws {
    struct es_aws_ep *ep;
    size_t n;
};

#define F(f) offsetof(struct es_aws_ep, f)

static const struct ls_param ep_params[] = {
    { "url", LS_P_STR, NULL, LS_PF_REQUIRED, F(url), "the domain's endpoint URL (no trailing slash)",
      NULL, NULL, 0, 0 },
    { "region", LS_P_STR, NULL, LS_PF_REQUIRED, F(region), "its region (signing)", NULL, NULL, 0, 0 },
    { "access_key_id", LS_P_STR, "", 0, F(access_key_id), "static credentials (with secret_access_key)",
      NULL, NULL, 0, 0 },
    { "secret_access_key", LS_P_SECRET, "", 0, F(secret_access_key), "its secret", NULL, NULL, 0, 0 },
    { "assume_role_arn", LS_P_STR, NULL, LS_PF_NULLABLE, F(assume_role_arn), "STS role to assume",
      NULL, NULL, 0, 0 },
    { "ecs_container_credentials_relative_uri", LS_P_STR, NULL, LS_PF_NULLABLE, F(ecs_uri),
      "container credentials path", NULL, NULL, 0, 0 },
    { "assume_role_session_name", LS_P_STR, "fluentd", 0, F(session_name), "STS session name", NULL,
      NULL, 0, 0 },
    { "assume_role_web_identity_token_file", LS_P_STR, NULL, LS_PF_NULLABLE, F(token_file),
      "OIDC token file: AssumeRoleWithWebIdentity", NULL, NULL, 0, 0 },
    { "sts_credentials_region", LS_P_STR, NULL, LS_PF_NULLABLE, F(sts_region),
      "STS region (default: region)", NULL, NULL, 0, 0 },
    { "refresh_credentials_interval", LS_P_TIME, "5h", 0, F(refresh_interval),
      "ask for credentials again after this long", NULL, NULL, 0, 1e9 },
    { "aws_service_name", LS_P_ENUM, "es", 0, F(service), "es, or aoss (OpenSearch Serverless)",
      NULL, "es|aoss", 0, 0 },
    LS_PARAM_END
};

static int ep_bind(struct es_aws_ep *e, struct ls_conf_section *sub, char **base, char *err,
                   size_t errlen)
{
    const char *rest, *slash;
    size_t hl;
    bool https;

    if (ls_param_bind(ep_params, sub, e, err, errlen) != LS_OK) {
        return LS_ERROR;
    }
    e->file = sub->file;
    e->line = sub->line;
    pthread_mutex_init(&e->mu, NULL);
    if (e->url[0] && e->url[strlen(e->url) - 1] == '/') {
        ls_conf_param_error(sub, "url", err, errlen, "Ensure you don't have a trailing slash on "
                            "the endpoint URL in your fluentd configuration.");
        return LS_ERROR;
    }
    https = strncasecmp(e->url, "https://", 8) == 0;
    if (!https && strncasecmp(e->url, "http://", 7) != 0) {
        ls_conf_param_error(sub, "url", err, errlen, "url: '%s' is not an http:// or https:// URL",
                            e->url);
        return LS_ERROR;
    }
    rest = e->url + (https ? 8 : 7);
    slash = strchr(rest, '/');
    hl = slash ? (size_t)(slash - rest) : strlen(rest);
    if (hl == 0 || memchr(rest, '@', hl) || memchr(rest, '?', hl)) {
        ls_conf_param_error(sub, "url", err, errlen, "url: no host in '%s'", e->url);
        return LS_ERROR;
    }
    e->host = ls_strndup(rest, hl);
    {
        /* curl leaves the scheme's default port out of Host; the signature must match */
        char *colon = strrchr(e->host, ':');
        if (colon && !strchr(colon, ']') && strcmp(colon + 1, https ? "443" : "80") == 0) {
            *colon = '\0';
        }
    }
    *base = ls_strdup(e->url);

    if (e->access_key_id[0] && e->secret_access_key[0]) {
        e->cc.key_id = e->access_key_id;
        e->cc.secret = e->secret_access_key;
    } else if (e->assume_role_arn) {
        struct aws_sts_config *sc = e->token_file ? &e->cc.web : &e->cc.assume;
        sc->role_arn = e->assume_role_arn;
        sc->role_session_name = e->session_name;
        sc->sts_region = e->sts_region ? e->sts_region : e->region;
        sc->token_file = e->token_file;
        if (e->token_file) {
            e->cc.web_identity = true;
        } else {
            e->cc.assume_role = true;
        }
    } else if (e->ecs_uri) {
        e->cc.ecs_relative_uri = e->ecs_uri;
    }
    return LS_OK;
}

int es_aws_init(struct ls_conf_section *sec, bool opensearch, struct es_aws **out, char ***bases,
                size_t *nbases, char *err, size_t errlen)
{
    struct es_aws *a = ls_calloc(1, sizeof(*a));
    struct ls_conf_section *ch;
    size_t n = 0;

    for (ch = sec->children; ch; ch = ch->next) {
        n += strcmp(ch->name, "endpoint") == 0;
    }
    if (n == 0) {
        snprintf(err, errlen, "%s:%d: `endpoint` require.", sec->file, sec->line);
        ls_free(a);
        return LS_ERROR;
    }
    if (opensearch && n > 1) {
        snprintf(err, errlen, "%s:%d: only one <endpoint> section is allowed", sec->file, sec->line);
        ls_free(a);
        return LS_ERROR;
    }
    a->ep = ls_calloc(n, sizeof(*a->ep));
    *bases = ls_calloc(n, sizeof(char *));
    *nbases = 0;
    for (ch = sec->children; ch; ch = ch->next) {
        if (strcmp(ch->name, "endpoint") != 0) {
            continue;
        }
        a->n++;
        if (ep_bind(&a->ep[a->n - 1], ch, &(*bases)[*nbases], err, errlen) != LS_OK) {
            es_aws_destroy(a);
            return LS_ERROR;
        }
        (*nbases)++;
    }
    *out = a;
    return LS_OK;
}

void es_aws_destroy(struct es_aws *a)
{
    size_t i;

    if (a == NULL) {
        return;
    }
    for (i = 0; i < a->n; i++) {
        struct es_aws_ep *e = &a->ep[i];
        aws_creds_release(&e->creds);
        ls_param_release(ep_params, e);
        ls_free(e->host);
        if (e->file) {
            pthread_mutex_destroy(&e->mu);
        }
    }
    ls_free(a->ep);
    ls_free(a);
}

/* Under e->mu. */
static int ep_creds(struct es_aws_ep *e, int64_t now, char *err, size_t errlen)
{
    struct aws_creds c;
    char cerr[300] = "";

    if (e->have && (e->cc.key_id ||
                    (!aws_cred_needs_refresh(&e->creds, now) &&
                     (double)(now - e->got_at) < e->refresh_interval))) {
        return LS_OK;
    }
    if (aws_cred_resolve(&e->cc, &c, cerr, sizeof(cerr)) != LS_OK) {
        snprintf(err, errlen, "no AWS credentials for %s: %s", e->url, cerr);
        return LS_ERROR;
    }
    {
        char now_d[160];
        aws_creds_describe(&c, now_d, sizeof(now_d));
        if (strcmp(now_d, e->described) != 0) {
            ls_info("aws-elasticsearch-service: %s: credentials from %s", e->url, now_d);
            snprintf(e->described, sizeof(e->described), "%s", now_d);
        }
    }
    aws_creds_release(&e->creds);
    e->creds = c;
    e->have = true;
    e->got_at = now;
    return LS_OK;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static char *pct_decode(const char *s, size_t n)
{
    char *o = ls_malloc(n + 1);
    size_t i, k = 0;

    for (i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            o[k++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            o[k++] = s[i];
        }
    }
    o[k] = '\0';
    return o;
}

int es_aws_sign(struct es_aws *a, size_t ep, const char *method, const char *url,
                const char *body_sha256, struct ls_buf *hdrs, char *err, size_t errlen)
{
    struct es_aws_ep *e = &a->ep[ep % a->n];
    const char *p = strstr(url, "://"), *q;
    char ph[65];
    char *path;
    struct aws_kv *qv = NULL;
    size_t nq = 0, i;
    int64_t now;
    int32_t ns;
    int rc;
    struct aws_signed sg;

    memcpy(ph, body_sha256 ? body_sha256 : AWS_EMPTY_SHA256, 65);
    p = p ? strchr(p + 3, '/') : NULL;
    if (p == NULL) {
        p = "/";
    }
    q = strchr(p, '?');
    /* the path as sent: for services other than S3 the canonical URI is that path encoded
     * once more (botocore quotes the request's path), so it is not decoded here */
    path = ls_strndup(p, q ? (size_t)(q - p) : strlen(p));
    if (q && q[1]) {
        const char *s = q + 1;
        while (*s) {
            const char *amp = strchr(s, '&'), *end = amp ? amp : s + strlen(s), *eq;
            eq = memchr(s, '=', (size_t)(end - s));
            qv = ls_realloc(qv, (nq + 1) * sizeof(*qv));
            qv[nq].name = pct_decode(s, (size_t)((eq ? eq : end) - s));
            qv[nq].value = eq ? pct_decode(eq + 1, (size_t)(end - eq - 1)) : NULL;
            nq++;
            s = amp ? amp + 1 : end;
        }
    }
    ls_wall_now(&now, &ns);
    memset(&sg, 0, sizeof(sg));
    pthread_mutex_lock(&e->mu);
    rc = ep_creds(e, now, err, errlen);
    if (rc == LS_OK) {
        struct aws_kv h[1] = { { "host", e->host } };
        struct aws_request rq = { .method = method, .path = path, .query = qv, .nquery = nq,
                                  .headers = h, .nheaders = 1, .payload_hash = ph };
        rc = aws_sigv4_sign(&rq, &e->creds, e->region, e->service ? "aoss" : "es", now,
                            AWS_SIGV4_NORMALIZE_PATH | AWS_SIGV4_CONTENT_SHA, &e->cache, &sg);
        if (rc != LS_OK) {
            snprintf(err, errlen, "cannot sign the request to %s", url);
        }
    }
    pthread_mutex_unlock(&e->mu);
    if (rc == LS_OK) {
        char *line = ls_asprintf("Host: %s", e->host);
        ls_http_hdr_add(hdrs, line);
        ls_free(line);
        for (i = 0; i < sg.nheaders; i++) {
            ls_http_hdr_add(hdrs, sg.headers[i]);
        }
    }
    aws_signed_release(&sg);
    for (i = 0; i < nq; i++) {
        ls_free((char *)qv[i].name);
        ls_free((char *)qv[i].value);
    }
    ls_free(qv);
    ls_free(path);
    return rc;
}
