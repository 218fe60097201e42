/*
 * aws_cred.c - where the AWS credentials come from.
 *
 * One function, aws_cred_resolve(), walks the sources in the order users of
 * fluent-plugin-s3 and the AWS SDKs expect and returns the first that works,
 * naming it in the log (never the secret), so a silent fall-through from,
 * say, web identity to the instance role is visible.
 *
 *   explicit (fluent-plugin-s3 precedence): aws_key_id/aws_sec_key,
 *     aws_profile, <web_identity_credentials>, <instance_profile_credentials>
 *     (ECS when $AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is set),
 *     <shared_credentials>;
 *   otherwise the SDK default chain: env -> shared credentials/config file ->
 *     web identity from env -> ECS container endpoint -> EC2 IMDSv2 (v1
 *     fallback only when the token PUT is refused with 403/404/405, as
 *     botocore does);
 *   then <assume_role_credentials> (STS AssumeRole, SigV4 "sts") on top.
 *
 * The HTTP calls are blocking (ls_http_fetch, one logship-http run each)
 * with short timeouts. That is deliberate: resolution runs once at start and then on refresh from
 * a worker thread, never on the event loop, and a blocking call keeps this
 * code linear and easy to audit. Every response body is capped.
 */
#include <ctype.h>

#include "http.h"

#include "log.h"
#include "aws.h"

#define S3_CRED_MAX_BODY (256 * 1024)
#define S3_CRED_MAX_FILE (1024 * 1024)
#define S3_IMDS_DEFAULT "http://169.254.169.254"
#define S3_ECS_HOST "http://169.254.170.2"

__attribute__((format(printf, 3, 4)))
static void s3c_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
}

void aws_creds_release(struct aws_creds *c)
{
    if (c->secret) {
        memset(c->secret, 0, strlen(c->secret));
    }
    ls_free(c->key);
    ls_free(c->secret);
    ls_free(c->token);
    memset(c, 0, sizeof(*c));
}

void aws_creds_copy(struct aws_creds *dst, const struct aws_creds *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->key = src->key ? ls_strdup(src->key) : NULL;
    dst->secret = src->secret ? ls_strdup(src->secret) : NULL;
    dst->token = src->token ? ls_strdup(src->token) : NULL;
    dst->expiration = src->expiration;
    memcpy(dst->source, src->source, sizeof(dst->source));
}

bool aws_cred_needs_refresh(const struct aws_creds *c, int64_t now)
{
    return c->expiration > 0 && now >= c->expiration - AWS_CRED_REFRESH_BEFORE;
}

int64_t aws_parse_iso8601(const char *s)
{
    int f[6] = { 0 };
    static const int width[6] = { 4, 2, 2, 2, 2, 2 };
    static const char sep[6] = { '-', '-', 'T', ':', ':', '\0' };
    const char *p = s;
    for (int i = 0; i < 6; i++) {
        for (int j = 0; j < width[i]; j++, p++) {
            if (!isdigit((unsigned char)*p)) {
                return -1;
            }
            f[i] = f[i] * 10 + (*p - '0');
        }
        if (sep[i] && !(*p == sep[i] || (sep[i] == 'T' && (*p == 't' || *p == ' ')))) {
            return -1;
        }
        if (sep[i]) {
            p++;
        }
    }
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            p++;
        }
    }
    if (!(strcmp(p, "Z") == 0 || strcmp(p, "z") == 0 || strcmp(p, "+00:00") == 0 || *p == '\0')) {
        return -1;
    }
    if (f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 || f[3] > 23 || f[4] > 59 || f[5] > 60) {
        return -1;
    }
    struct tm tm = { .tm_year = f[0] - 1900, .tm_mon = f[1] - 1, .tm_mday = f[2],
                     .tm_hour = f[3], .tm_min = f[4], .tm_sec = f[5] };
    return (int64_t)timegm(&tm);
}

static bool s3c_has_ctl(const char *s)
{
    for (; s && *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            return true;
        }
    }
    return false;
}

static const char *s3c_env(const char *name)
{
    const char *v = getenv(name);
    return (v && v[0]) ? v : NULL;
}

/* Trim surrounding whitespace in place. */
static char *s3c_trim(char *s)
{
    while (isspace((unsigned char)*s)) {
        s++;
    }
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) {
        s[--n] = '\0';
    }
    return s;
}

static int s3c_set(struct aws_creds *out, const char *key, const char *secret, const char *token,
                   int64_t expiration, const char *source, char *err, size_t errlen)
{
    if (key == NULL || secret == NULL || key[0] == '\0' || secret[0] == '\0') {
        s3c_err(err, errlen, "%s: access key id or secret missing", source);
        return LS_ERROR;
    }
    if (s3c_has_ctl(key) || s3c_has_ctl(secret) || s3c_has_ctl(token)) {
        s3c_err(err, errlen, "%s: control characters in credentials", source);
        return LS_ERROR;
    }
    memset(out, 0, sizeof(*out));
    out->key = ls_strdup(key);
    out->secret = ls_strdup(secret);
    out->token = (token && token[0]) ? ls_strdup(token) : NULL;
    out->expiration = expiration;
    snprintf(out->source, sizeof(out->source), "%s", source);
    return LS_OK;
}

/* Free a buffer that held a token or a key, zeroing it first. */
static void s3c_buf_wipe(struct ls_buf *b)
{
    if (b->p) {
        memset(b->p, 0, b->len);
    }
    ls_buf_release(b);
}

/* ---- HTTP (blocking, see the file comment) ---- */

/*
 * One request. method "GET"/"PUT"/"POST"; body for POST/PUT (may be "").
 * hdrs: NUL-separated header lines (ls_http_hdr_add) or NULL.
 * Sets *status (0 when no HTTP response). LS_OK when a response arrived
 * (any status), LS_ERROR on transport failure with err filled.
 */
static int s3c_http(const char *method, const char *url, const struct ls_buf *hdrs, const char *body,
                    long timeout_ms, bool no_proxy, long *status, struct ls_buf *out, char *err, size_t errlen)
{
    struct ls_http_req req;
    struct ls_http_resp resp;

    *status = 0;
    ls_buf_reset(out);
    memset(&req, 0, sizeof(req));
    req.method = method;
    req.url = url;
    req.headers = hdrs;
    req.body = strcmp(method, "GET") != 0 ? (body ? body : "") : NULL;
    req.body_len = req.body ? strlen(req.body) : 0;
    req.body_fd = -1;
    req.timeout = (double)timeout_ms / 1000.0;
    req.connect_timeout = (double)timeout_ms / 1000.0;
    req.verify_peer = true;
    req.no_proxy = no_proxy;   /* link-local metadata endpoints never go via a proxy */
    req.max_response = out->max ? out->max : S3_CRED_MAX_BODY;
    if (ls_http_fetch(&req, &resp) != LS_OK || resp.curl_code != 0) {
        s3c_err(err, errlen, "%s %s failed: %s", method, url, resp.error[0] ? resp.error : "no response");
        ls_buf_release(&resp.body);
        ls_buf_release(&resp.headers);
        return LS_ERROR;
    }
    *status = resp.status;
    ls_buf_append(out, resp.body.p, resp.body.len);
    ls_buf_release(&resp.body);
    ls_buf_release(&resp.headers);
    ls_buf_cstr(out);
    return LS_OK;
}

/* ---- a flat JSON object reader (IMDS / ECS responses) ---- */

static const char *s3c_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
        p++;
    }
    return p;
}

static void s3c_put_utf8(struct ls_buf *b, unsigned cp)
{
    if (cp < 0x80) {
        ls_buf_putc(b, (char)cp);
    } else if (cp < 0x800) {
        ls_buf_putc(b, (char)(0xc0 | (cp >> 6)));
        ls_buf_putc(b, (char)(0x80 | (cp & 0x3f)));
    } else {
        ls_buf_putc(b, (char)(0xe0 | (cp >> 12)));
        ls_buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
        ls_buf_putc(b, (char)(0x80 | (cp & 0x3f)));
    }
}

/* Parse a JSON string at p (at the quote). Decoded into b if non-NULL. Returns the end or NULL. */
static const char *s3c_json_string(const char *p, struct ls_buf *b)
{
    if (*p != '"') {
        return NULL;
    }
    for (p++; *p && *p != '"'; p++) {
        char c = *p;
        if ((unsigned char)c < 0x20) {
            return NULL;
        }
        if (c == '\\') {
            p++;
            switch (*p) {
            case '"': case '\\': case '/': c = *p; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'u': {
                unsigned cp = 0;
                for (int i = 1; i <= 4; i++) {
                    char h = p[i];
                    if (!isxdigit((unsigned char)h)) {
                        return NULL;
                    }
                    cp = cp * 16 + (unsigned)(isdigit((unsigned char)h) ? h - '0' : (tolower((unsigned char)h) - 'a' + 10));
                }
                p += 4;
                if (b) {
                    s3c_put_utf8(b, cp);   /* surrogates are not expected in credentials */
                }
                continue;
            }
            default:
                return NULL;
            }
        }
        if (b) {
            ls_buf_putc(b, c);
        }
    }
    return *p == '"' ? p + 1 : NULL;
}

/* Skip any JSON value (nested containers too). */
static const char *s3c_json_skip(const char *p)
{
    int depth = 0;
    p = s3c_ws(p);
    do {
        if (*p == '"') {
            p = s3c_json_string(p, NULL);
            if (p == NULL) {
                return NULL;
            }
            continue;
        }
        if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            if (depth == 0) {
                return p;
            }
            depth--;
        } else if (*p == ',' && depth == 0) {
            return p;
        } else if (*p == '\0') {
            return depth == 0 ? p : NULL;
        }
        p++;
    } while (depth > 0 || (*p != ',' && *p != '}' && *p != ']' && *p != '\0'));
    return p;
}

/* The string value of top-level key in a JSON object, or NULL. */
static char *s3c_json_get(const char *json, const char *key)
{
    const char *p = s3c_ws(json);
    if (*p != '{') {
        return NULL;
    }
    p = s3c_ws(p + 1);
    struct ls_buf k, v;
    ls_buf_init(&k, S3_CRED_MAX_BODY);
    ls_buf_init(&v, S3_CRED_MAX_BODY);
    char *result = NULL;
    while (*p == '"') {
        ls_buf_reset(&k);
        p = s3c_json_string(p, &k);
        if (p == NULL) {
            break;
        }
        p = s3c_ws(p);
        if (*p != ':') {
            break;
        }
        p = s3c_ws(p + 1);
        bool match = strcmp(ls_buf_cstr(&k), key) == 0;
        if (*p == '"') {
            ls_buf_reset(&v);
            p = s3c_json_string(p, &v);
            if (p == NULL) {
                break;
            }
            if (match && result == NULL) {
                result = ls_strdup(ls_buf_cstr(&v));
            }
        } else {
            p = s3c_json_skip(p);
            if (p == NULL) {
                break;
            }
        }
        p = s3c_ws(p);
        if (*p != ',') {
            break;
        }
        p = s3c_ws(p + 1);
    }
    ls_buf_release(&k);
    ls_buf_release(&v);
    return result;
}

/* {"AccessKeyId":..,"SecretAccessKey":..,"Token":..,"Expiration":..} -> out. */
static int s3c_from_json(const char *json, const char *source, struct aws_creds *out, char *err, size_t errlen)
{
    char *code = s3c_json_get(json, "Code");
    if (code && strcmp(code, "Success") != 0) {
        s3c_err(err, errlen, "%s: credentials response Code '%s'", source, code);
        ls_free(code);
        return LS_ERROR;
    }
    ls_free(code);
    char *k = s3c_json_get(json, "AccessKeyId");
    char *s = s3c_json_get(json, "SecretAccessKey");
    char *t = s3c_json_get(json, "Token");
    char *e = s3c_json_get(json, "Expiration");
    int64_t exp = 0;
    int rc = LS_OK;
    if (e) {
        exp = aws_parse_iso8601(e);
        if (exp < 0) {
            s3c_err(err, errlen, "%s: bad Expiration '%s'", source, e);
            rc = LS_ERROR;
        }
    }
    if (rc == LS_OK) {
        rc = s3c_set(out, k, s, t, exp, source, err, errlen);
    }
    if (s) {
        memset(s, 0, strlen(s));
    }
    ls_free(k);
    ls_free(s);
    ls_free(t);
    ls_free(e);
    return rc;
}

/* ---- shared credentials / config files ---- */

static char *s3c_home_path(const char *rel)
{
    const char *home = s3c_env("HOME");
    return home ? ls_asprintf("%s/%s", home, rel) : NULL;
}

/*
 * Look up profile in an INI file. In the credentials file sections are
 * "[name]"; in the config file "[profile name]" (and "[default]").
 * LS_OK (found with keys), LS_DECLINED (no file / no such profile),
 * LS_ERROR (profile found but unusable).
 */
static int s3c_ini(const char *path, const char *profile, bool config_style, const char *source,
                   struct aws_creds *out, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    if (ls_read_file(path, S3_CRED_MAX_FILE, &text, &len) != LS_OK) {
        return LS_DECLINED;
    }
    char *want = config_style && strcmp(profile, "default") != 0 ? ls_asprintf("profile %s", profile)
                                                                   : ls_strdup(profile);
    bool in = false, found = false;
    char *key = NULL, *secret = NULL, *token = NULL;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        bool indented = line[0] == ' ' || line[0] == '\t';
        char *l = s3c_trim(line);
        if (l[0] == '\0' || l[0] == '#' || l[0] == ';') {
            continue;
        }
        if (l[0] == '[') {
            char *end = strchr(l, ']');
            if (end == NULL) {
                continue;
            }
            *end = '\0';
            char *name = s3c_trim(l + 1);
            /* collapse "profile   x" to "profile x" */
            char norm[512];
            if (strncmp(name, "profile", 7) == 0 && isspace((unsigned char)name[7])) {
                snprintf(norm, sizeof(norm), "profile %s", s3c_trim(name + 8));
                name = norm;
            }
            in = strcmp(name, want) == 0 || (config_style && strcmp(profile, "default") == 0 &&
                                               strcmp(name, "profile default") == 0);
            found = found || in;
            continue;
        }
        if (!in || indented) {
            continue;   /* indented lines are nested sub-settings (e.g. "s3 =") */
        }
        char *eq = strchr(l, '=');
        if (eq == NULL) {
            continue;
        }
        *eq = '\0';
        char *k = s3c_trim(l), *v = s3c_trim(eq + 1);
        if (strcasecmp(k, "aws_access_key_id") == 0) {
            ls_free(key);
            key = ls_strdup(v);
        } else if (strcasecmp(k, "aws_secret_access_key") == 0) {
            ls_free(secret);
            secret = ls_strdup(v);
        } else if (strcasecmp(k, "aws_session_token") == 0 || strcasecmp(k, "aws_security_token") == 0) {
            ls_free(token);
            token = ls_strdup(v);
        }
    }
    int rc;
    if (!found) {
        rc = LS_DECLINED;
    } else if (key == NULL && secret == NULL) {
        rc = LS_DECLINED;   /* e.g. a config profile with only region/output */
    } else {
        rc = s3c_set(out, key, secret, token, 0, source, err, errlen);
        if (rc != LS_OK) {
            s3c_err(err, errlen, "profile '%s' in '%s': aws_access_key_id or aws_secret_access_key missing",
                    profile, path);
        }
    }
    if (secret) {
        memset(secret, 0, strlen(secret));
    }
    ls_free(key);
    ls_free(secret);
    ls_free(token);
    ls_free(want);
    memset(text, 0, len);
    ls_free(text);
    return rc;
}

/* Credentials file then config file, for profile. explicit: the profile was named, so missing is an error. */
static int s3c_shared(const char *cred_path, const char *profile, bool explicit_profile, struct aws_creds *out,
                      char *err, size_t errlen)
{
    char *cp = cred_path ? ls_strdup(cred_path)
                         : (s3c_env("AWS_SHARED_CREDENTIALS_FILE") ? ls_strdup(s3c_env("AWS_SHARED_CREDENTIALS_FILE"))
                                                                   : s3c_home_path(".aws/credentials"));
    char *cfg = s3c_env("AWS_CONFIG_FILE") ? ls_strdup(s3c_env("AWS_CONFIG_FILE")) : s3c_home_path(".aws/config");
    int rc = LS_DECLINED;
    if (cp) {
        rc = s3c_ini(cp, profile, false, "shared-file", out, err, errlen);
    }
    if (rc == LS_DECLINED && cfg) {
        rc = s3c_ini(cfg, profile, true, "shared-file", out, err, errlen);
    }
    if (rc == LS_DECLINED && explicit_profile) {
        s3c_err(err, errlen, "profile '%s' has no credentials in '%s' or '%s'", profile, cp ? cp : "(no HOME)",
                cfg ? cfg : "(no HOME)");
        rc = LS_ERROR;
    }
    ls_free(cp);
    ls_free(cfg);
    return rc;
}

/* ---- EC2 instance metadata (IMDSv2) ---- */

static int s3c_imds(const char *endpoint, int retries, long timeout_ms, struct aws_creds *out, char *err,
                    size_t errlen)
{
    const char *ep = endpoint ? endpoint : s3c_env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    char *base = ls_strdup(ep ? ep : S3_IMDS_DEFAULT);
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/') {
        base[--bl] = '\0';
    }
    struct ls_buf body;
    ls_buf_init(&body, S3_CRED_MAX_BODY);
    int rc = LS_ERROR;
    char *token = NULL, *url = NULL;
    for (int attempt = 0; attempt <= retries && rc != LS_OK; attempt++) {
        long st = 0;
        ls_free(token);
        token = NULL;
        ls_free(url);
        url = ls_asprintf("%s/latest/api/token", base);
        struct ls_buf h;
        ls_buf_init(&h, 0);
        ls_http_hdr_add(&h, "X-aws-ec2-metadata-token-ttl-seconds: 21600");
        int hr = s3c_http("PUT", url, &h, "", timeout_ms, true, &st, &body, err, errlen);
        ls_buf_release(&h);
        if (hr != LS_OK) {
            continue;
        }
        if (st == 200) {
            token = ls_strdup(s3c_trim((char *)ls_buf_cstr(&body)));
            if (token[0] == '\0' || s3c_has_ctl(token)) {
                s3c_err(err, errlen, "imds: bad token");
                continue;
            }
        } else if (st != 403 && st != 404 && st != 405) {
            s3c_err(err, errlen, "imds: PUT %s: HTTP %ld", url, st);
            continue;
        } else {
            ls_debug("aws: imds token refused (HTTP %ld), falling back to IMDSv1", st);
        }
        char *th = token ? ls_asprintf("X-aws-ec2-metadata-token: %s", token) : NULL;
        ls_buf_init(&h, 0);
        if (th) {
            ls_http_hdr_add(&h, th);
        }
        ls_free(url);
        url = ls_asprintf("%s/latest/meta-data/iam/security-credentials/", base);
        hr = s3c_http("GET", url, &h, NULL, timeout_ms, true, &st, &body, err, errlen);
        if (hr == LS_OK && st != 200) {
            s3c_err(err, errlen, "imds: GET %s: HTTP %ld%s", url, st, st == 404 ? " (no IAM role attached?)" : "");
        }
        if (hr == LS_OK && st == 200) {
            char *role = (char *)ls_buf_cstr(&body);
            role[strcspn(role, "\r\n")] = '\0';
            role = ls_strdup(s3c_trim(role));
            if (role[0] == '\0' || strchr(role, '/') || s3c_has_ctl(role)) {
                s3c_err(err, errlen, "imds: bad role name");
            } else {
                ls_free(url);
                url = ls_asprintf("%s/latest/meta-data/iam/security-credentials/%s", base, role);
                hr = s3c_http("GET", url, &h, NULL, timeout_ms, true, &st, &body, err, errlen);
                if (hr == LS_OK && st == 200) {
                    rc = s3c_from_json(ls_buf_cstr(&body), "imds", out, err, errlen);
                } else if (hr == LS_OK) {
                    s3c_err(err, errlen, "imds: GET %s: HTTP %ld", url, st);
                }
            }
            ls_free(role);
        }
        s3c_buf_wipe(&h);   /* the session token */
        ls_free(th);
    }
    if (token) {
        memset(token, 0, strlen(token));
    }
    ls_free(token);
    ls_free(url);
    ls_free(base);
    ls_buf_release(&body);
    return rc;
}

/* ---- ECS / container credentials endpoint ---- */

static bool s3c_ecs_host_allowed(const char *url)
{
    if (strncasecmp(url, "https://", 8) == 0) {
        return true;
    }
    static const char *const ok[] = { "http://127.", "http://localhost", "http://[::1]", "http://169.254.170.2",
                                      "http://169.254.170.23", "http://[fd00:ec2::23]" };
    for (size_t i = 0; i < LS_ARRAY_LEN(ok); i++) {
        size_t n = strlen(ok[i]);
        if (strncasecmp(url, ok[i], n) == 0 &&
            (ok[i][n - 1] == '.' || url[n] == '\0' || url[n] == ':' || url[n] == '/')) {
            return true;
        }
    }
    return false;
}

static int s3c_ecs(const char *rel_given, long timeout_ms, struct aws_creds *out, char *err, size_t errlen)
{
    const char *rel = rel_given ? rel_given : s3c_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = rel ? NULL : s3c_env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    char *url = rel ? ls_asprintf("%s%s%s", S3_ECS_HOST, rel[0] == '/' ? "" : "/", rel) : ls_strdup(full);
    if (!rel && !s3c_ecs_host_allowed(url)) {
        s3c_err(err, errlen, "ecs: AWS_CONTAINER_CREDENTIALS_FULL_URI must be https or a loopback/ECS/EKS address");
        ls_free(url);
        return LS_ERROR;
    }
    char *tok = NULL;
    const char *tf = s3c_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    if (tf) {
        size_t n;
        if (ls_read_file(tf, 16384, &tok, &n) != LS_OK) {
            s3c_err(err, errlen, "ecs: cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE '%s'", tf);
            ls_free(url);
            return LS_ERROR;
        }
    } else if (s3c_env("AWS_CONTAINER_AUTHORIZATION_TOKEN")) {
        tok = ls_strdup(s3c_env("AWS_CONTAINER_AUTHORIZATION_TOKEN"));
    }
    struct ls_buf h;
    char *ah = NULL;
    ls_buf_init(&h, 0);
    if (tok) {
        char *t = s3c_trim(tok);
        if (s3c_has_ctl(t)) {
            s3c_err(err, errlen, "ecs: control characters in the authorization token");
            ls_free(tok);
            ls_free(url);
            return LS_ERROR;
        }
        ah = ls_asprintf("Authorization: %s", t);
        ls_http_hdr_add(&h, ah);
    }
    struct ls_buf body;
    ls_buf_init(&body, S3_CRED_MAX_BODY);
    long st = 0;
    int rc = s3c_http("GET", url, &h, NULL, timeout_ms, true, &st, &body, err, errlen);
    if (rc == LS_OK && st != 200) {
        s3c_err(err, errlen, "ecs: GET %s: HTTP %ld", url, st);
        rc = LS_ERROR;
    }
    if (rc == LS_OK) {
        rc = s3c_from_json(ls_buf_cstr(&body), "ecs", out, err, errlen);
    }
    s3c_buf_wipe(&h);   /* the authorization token */
    if (ah) {
        memset(ah, 0, strlen(ah));
    }
    ls_free(ah);
    ls_free(tok);
    ls_free(url);
    ls_buf_release(&body);
    return rc;
}

/* ---- STS ---- */

static void s3c_form_add(struct ls_buf *b, const char *k, const char *v)
{
    if (v == NULL) {
        return;
    }
    if (b->len) {
        ls_buf_putc(b, '&');
    }
    aws_uri_encode(b, k, strlen(k), false);
    ls_buf_putc(b, '=');
    aws_uri_encode(b, v, strlen(v), false);
}

static char *s3c_sts_url(const struct aws_sts_config *sc, const char **region)
{
    *region = sc->sts_region ? sc->sts_region
                             : (s3c_env("AWS_REGION") ? s3c_env("AWS_REGION")
                                                      : (s3c_env("AWS_DEFAULT_REGION") ? s3c_env("AWS_DEFAULT_REGION")
                                                                                       : "us-east-1"));
    if (sc->sts_endpoint_url) {
        return ls_strdup(sc->sts_endpoint_url);
    }
    if (s3c_env("AWS_ENDPOINT_URL_STS")) {
        return ls_strdup(s3c_env("AWS_ENDPOINT_URL_STS"));
    }
    return ls_asprintf(strncmp(*region, "cn-", 3) == 0 ? "https://sts.%s.amazonaws.com.cn"
                                                        : "https://sts.%s.amazonaws.com", *region);
}

/*
 * scheme://host[:port][/path][?query] into its parts (host keeps an IPv6
 * literal's brackets, port is NULL when absent, path is "/" when empty):
 * what the STS request needs for its Host header and canonical path.
 */
static int s3c_split_url(const char *url, char **scheme, char **host, char **port, char **path)
{
    const char *p = strstr(url, "://");
    const char *h, *hend, *pstart;

    if (p == NULL || p == url) {
        return LS_ERROR;
    }
    for (const char *q = url; q < p; q++) {
        if (!isalpha((unsigned char)*q)) {
            return LS_ERROR;
        }
    }
    h = p + 3;
    pstart = h + strcspn(h, "/?#");
    if (h[0] == '[') {
        hend = memchr(h, ']', (size_t)(pstart - h));
        if (hend == NULL) {
            return LS_ERROR;
        }
        hend++;
    } else {
        hend = memchr(h, ':', (size_t)(pstart - h));
        if (hend == NULL) {
            hend = pstart;
        }
    }
    if (hend == h || memchr(h, '@', (size_t)(pstart - h))) {
        return LS_ERROR;   /* no host, or user info we would not send anyway */
    }
    if (hend < pstart) {
        if (*hend != ':' || hend + 1 == pstart) {
            return LS_ERROR;
        }
        for (const char *q = hend + 1; q < pstart; q++) {
            if (!isdigit((unsigned char)*q)) {
                return LS_ERROR;
            }
        }
        *port = ls_strndup(hend + 1, (size_t)(pstart - hend - 1));
    } else {
        *port = NULL;
    }
    *scheme = ls_strndup(url, (size_t)(p - url));
    for (char *q = *scheme; *q; q++) {
        *q = (char)tolower((unsigned char)*q);
    }
    *host = ls_strndup(h, (size_t)(hend - h));
    if (*pstart == '/') {
        *path = ls_strndup(pstart, strcspn(pstart, "?#"));
    } else {
        *path = ls_strdup("/");
    }
    return LS_OK;
}

/*
 * POST an STS query action. base != NULL: SigV4-signed with it (AssumeRole);
 * NULL: unsigned (AssumeRoleWithWebIdentity authenticates with the token).
 */
static int s3c_sts_call(const struct aws_sts_config *sc, const char *form, const struct aws_creds *base,
                        const char *action, const char *source, long timeout_ms, struct aws_creds *out, char *err,
                        size_t errlen)
{
    const char *region;
    char *url = s3c_sts_url(sc, &region);
    char *host = NULL, *port = NULL, *path = NULL, *scheme = NULL;
    int rc = LS_ERROR;
    if (s3c_split_url(url, &scheme, &host, &port, &path) != LS_OK) {
        s3c_err(err, errlen, "%s: bad sts_endpoint_url '%s'", source, url);
        goto out;
    }
    bool deflt = port == NULL || (strcmp(scheme, "http") == 0 && strcmp(port, "80") == 0) ||
                 (strcmp(scheme, "https") == 0 && strcmp(port, "443") == 0);
    char *hosthdr = deflt ? ls_strdup(host) : ls_asprintf("%s:%s", host, port);
    const char *ctype = "application/x-www-form-urlencoded; charset=utf-8";
    struct ls_buf h;
    ls_buf_init(&h, 0);
    char *line = ls_asprintf("Host: %s", hosthdr);
    ls_http_hdr_add(&h, line);
    ls_free(line);
    line = ls_asprintf("Content-Type: %s", ctype);
    ls_http_hdr_add(&h, line);
    ls_free(line);
    ls_http_hdr_add(&h, "Accept:");
    struct aws_signed sig;
    memset(&sig, 0, sizeof(sig));
    if (base) {
        char sha[65];
        aws_sha256_hex(form, strlen(form), sha);
        struct aws_kv hv[] = { { "Host", hosthdr }, { "Content-Type", ctype } };
        struct aws_request req = { .method = "POST", .path = path, .headers = hv, .nheaders = 2, .payload_hash = sha };
        if (aws_sigv4_sign(&req, base, region, "sts", (int64_t)time(NULL), AWS_SIGV4_NORMALIZE_PATH, NULL, &sig) !=
            LS_OK) {
            s3c_err(err, errlen, "%s: signing the STS request failed", source);
            ls_buf_release(&h);
            ls_free(hosthdr);
            goto out;
        }
        for (size_t i = 0; i < sig.nheaders; i++) {
            ls_http_hdr_add(&h, sig.headers[i]);
        }
    }
    struct ls_buf body;
    ls_buf_init(&body, S3_CRED_MAX_BODY);
    long st = 0;
    if (s3c_http("POST", url, &h, form, timeout_ms, false, &st, &body, err, errlen) == LS_OK) {
        struct s3_xml_error xe = { 0 };
        if (st == 200 && s3_xml_parse_sts_creds(body.p, body.len, out, &xe) == LS_OK) {
            snprintf(out->source, sizeof(out->source), "%s", source);
            if (s3c_has_ctl(out->key) || s3c_has_ctl(out->secret) || s3c_has_ctl(out->token)) {
                aws_creds_release(out);
                s3c_err(err, errlen, "%s: control characters in STS credentials", source);
            } else {
                rc = LS_OK;
            }
        } else {
            if (xe.code == NULL) {
                s3_xml_parse_error(body.p, body.len, &xe);
            }
            s3c_err(err, errlen, "%s: STS %s at %s: HTTP %ld %s: %s", source, action, url, st,
                    xe.code ? xe.code : "(no error code)", xe.message ? xe.message : "");
        }
        s3_xml_error_release(&xe);
    }
    ls_buf_release(&body);
    s3c_buf_wipe(&h);   /* the session token, if signed with one */
    aws_signed_release(&sig);
    ls_free(hosthdr);
out:
    ls_free(host);
    ls_free(port);
    ls_free(path);
    ls_free(scheme);
    ls_free(url);
    return rc;
}

static char *s3c_session_name(const struct aws_sts_config *sc, const char *env_name)
{
    if (sc->role_session_name) {
        return ls_strdup(sc->role_session_name);
    }
    if (env_name && s3c_env(env_name)) {
        return ls_strdup(s3c_env(env_name));
    }
    return ls_asprintf("logship-%lld", (long long)time(NULL));
}

static int s3c_assume_role(const struct aws_sts_config *sc, const struct aws_creds *base, long timeout_ms,
                           struct aws_creds *out, char *err, size_t errlen)
{
    if (sc->role_arn == NULL) {
        s3c_err(err, errlen, "assume-role: role_arn is required");
        return LS_ERROR;
    }
    struct ls_buf f;
    ls_buf_init(&f, S3_CRED_MAX_BODY);
    char dur[16];
    char *sn = s3c_session_name(sc, NULL);
    snprintf(dur, sizeof(dur), "%d", sc->duration_seconds);
    s3c_form_add(&f, "Action", "AssumeRole");
    s3c_form_add(&f, "Version", "2011-06-15");
    s3c_form_add(&f, "RoleArn", sc->role_arn);
    s3c_form_add(&f, "RoleSessionName", sn);
    s3c_form_add(&f, "DurationSeconds", sc->duration_seconds > 0 ? dur : NULL);
    s3c_form_add(&f, "ExternalId", sc->external_id);
    s3c_form_add(&f, "Policy", sc->policy);
    int rc = s3c_sts_call(sc, ls_buf_cstr(&f), base, "AssumeRole", "assume-role", timeout_ms, out, err, errlen);
    ls_buf_release(&f);
    ls_free(sn);
    return rc;
}

static int s3c_web_identity(const struct aws_sts_config *sc, long timeout_ms, struct aws_creds *out, char *err,
                            size_t errlen)
{
    if (sc->role_arn == NULL || sc->token_file == NULL) {
        s3c_err(err, errlen, "web-identity: role_arn and web_identity_token_file are required");
        return LS_ERROR;
    }
    char *tok = NULL;
    size_t n = 0;
    if (ls_read_file(sc->token_file, 65536, &tok, &n) != LS_OK) {
        s3c_err(err, errlen, "web-identity: cannot read token file '%s'", sc->token_file);
        return LS_ERROR;
    }
    struct ls_buf f;
    ls_buf_init(&f, S3_CRED_MAX_BODY);
    char dur[16];
    char *sn = s3c_session_name(sc, "AWS_ROLE_SESSION_NAME");
    snprintf(dur, sizeof(dur), "%d", sc->duration_seconds);
    s3c_form_add(&f, "Action", "AssumeRoleWithWebIdentity");
    s3c_form_add(&f, "Version", "2011-06-15");
    s3c_form_add(&f, "RoleArn", sc->role_arn);
    s3c_form_add(&f, "RoleSessionName", sn);
    s3c_form_add(&f, "WebIdentityToken", s3c_trim(tok));
    s3c_form_add(&f, "DurationSeconds", sc->duration_seconds > 0 ? dur : NULL);
    s3c_form_add(&f, "Policy", sc->policy);
    int rc = s3c_sts_call(sc, ls_buf_cstr(&f), NULL, "AssumeRoleWithWebIdentity", "web-identity", timeout_ms, out,
                          err, errlen);
    s3c_buf_wipe(&f);   /* the web identity token */
    memset(tok, 0, n);
    ls_free(tok);
    ls_free(sn);
    return rc;
}

/* ---- the chain ---- */

static int s3c_env_creds(struct aws_creds *out, char *err, size_t errlen)
{
    const char *k = s3c_env("AWS_ACCESS_KEY_ID"), *s = s3c_env("AWS_SECRET_ACCESS_KEY");
    if (k == NULL && s == NULL) {
        return LS_DECLINED;
    }
    const char *t = s3c_env("AWS_SESSION_TOKEN") ? s3c_env("AWS_SESSION_TOKEN") : s3c_env("AWS_SECURITY_TOKEN");
    if (s3c_set(out, k, s, t, 0, "env", err, errlen) != LS_OK) {
        s3c_err(err, errlen, "env: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must both be set");
        return LS_ERROR;
    }
    return LS_OK;
}

static int s3c_default_chain(const struct aws_cred_config *cfg, long http_ms, struct aws_creds *out, char *err,
                             size_t errlen)
{
    int rc = s3c_env_creds(out, err, errlen);
    if (rc != LS_DECLINED) {
        return rc;
    }
    const char *prof = s3c_env("AWS_PROFILE") ? s3c_env("AWS_PROFILE") : s3c_env("AWS_DEFAULT_PROFILE");
    rc = s3c_shared(NULL, prof ? prof : "default", prof != NULL, out, err, errlen);
    if (rc != LS_DECLINED) {
        return rc;
    }
    if (s3c_env("AWS_WEB_IDENTITY_TOKEN_FILE") && s3c_env("AWS_ROLE_ARN")) {
        struct aws_sts_config sc = cfg->web;
        sc.role_arn = s3c_env("AWS_ROLE_ARN");
        sc.token_file = s3c_env("AWS_WEB_IDENTITY_TOKEN_FILE");
        return s3c_web_identity(&sc, http_ms, out, err, errlen);
    }
    if (s3c_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") || s3c_env("AWS_CONTAINER_CREDENTIALS_FULL_URI")) {
        return s3c_ecs(NULL, http_ms, out, err, errlen);
    }
    const char *dis = s3c_env("AWS_EC2_METADATA_DISABLED");
    if (dis && strcasecmp(dis, "true") == 0) {
        s3c_err(err, errlen, "no credentials: none in env or shared files, and AWS_EC2_METADATA_DISABLED=true");
        return LS_ERROR;
    }
    char ierr[256] = "";
    rc = s3c_imds(cfg->imds_endpoint, cfg->imds_retries,
                  cfg->imds_timeout_ms > 0 ? cfg->imds_timeout_ms : 1000, out, ierr, sizeof(ierr));
    if (rc != LS_OK) {
        s3c_err(err, errlen, "no credentials found (env, shared file, web identity, container, instance metadata: %s)",
                ierr);
    }
    return rc;
}

static int s3c_base(const struct aws_cred_config *cfg, long http_ms, struct aws_creds *out, char *err, size_t errlen)
{
    if (cfg->key_id || cfg->secret) {
        if (s3c_set(out, cfg->key_id, cfg->secret, cfg->session_token, 0, "config", err, errlen) != LS_OK) {
            s3c_err(err, errlen, "aws_key_id and aws_sec_key must both be set");
            return LS_ERROR;
        }
        return LS_OK;
    }
    if (cfg->ecs_relative_uri) {
        return s3c_ecs(cfg->ecs_relative_uri, http_ms, out, err, errlen);
    }
    if (cfg->aws_profile) {
        return s3c_shared(cfg->shared_path, cfg->aws_profile, true, out, err, errlen);
    }
    if (cfg->web_identity) {
        return s3c_web_identity(&cfg->web, http_ms, out, err, errlen);
    }
    if (cfg->instance_profile) {
        if (s3c_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")) {
            return s3c_ecs(NULL, http_ms, out, err, errlen);
        }
        return s3c_imds(cfg->imds_endpoint, cfg->imds_retries,
                        cfg->imds_timeout_ms > 0 ? cfg->imds_timeout_ms : 1000, out, err, errlen);
    }
    if (cfg->shared_credentials) {
        const char *prof = cfg->shared_profile ? cfg->shared_profile
                                               : (s3c_env("AWS_PROFILE") ? s3c_env("AWS_PROFILE") : "default");
        return s3c_shared(cfg->shared_path, prof, true, out, err, errlen);
    }
    return s3c_default_chain(cfg, http_ms, out, err, errlen);
}

int aws_cred_resolve(const struct aws_cred_config *cfg, struct aws_creds *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    long http_ms = cfg->http_timeout_ms > 0 ? cfg->http_timeout_ms : 5000;
    struct aws_creds base;
    memset(&base, 0, sizeof(base));
    if (s3c_base(cfg, http_ms, &base, err, errlen) != LS_OK) {
        aws_creds_release(&base);
        return LS_ERROR;
    }
    if (cfg->assume_role) {
        int rc = s3c_assume_role(&cfg->assume, &base, http_ms, out, err, errlen);
        if (rc == LS_OK) {
            ls_info("aws: assumed role '%s' with base credentials from %s", cfg->assume.role_arn, base.source);
        }
        aws_creds_release(&base);
        if (rc != LS_OK) {
            return LS_ERROR;
        }
    } else {
        *out = base;
    }
    /* logged by the caller, aws_creds_describe: only when they change */
    return LS_OK;
}

void aws_creds_describe(const struct aws_creds *c, char *out, size_t outlen)
{
    size_t kl = strlen(c->key);

    snprintf(out, outlen, "%s (access key id %.4s...%s%s)", c->source, c->key,
             kl > 8 ? c->key + kl - 4 : "", c->token ? ", session token" : "");
}
