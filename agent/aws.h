/*
 * aws.h - what logship's AWS outputs share: SigV4 signing, the credentials
 * chain, and the XML of S3 and STS responses. out_s3 was the first user;
 * aws-elasticsearch-service signs its Elasticsearch requests with the same
 * signer and credentials, so they live in the agent, not in one plugin.
 *
 *  - signing (aws_sigv4.c): SigV4 header auth (any service) and SigV2 (S3's
 *    "signature_version s3"), the URI encoding and the canonical request.
 *    The caller says which headers it sends; the signer returns the extra
 *    headers to send (x-amz-date, x-amz-content-sha256,
 *    x-amz-security-token, Authorization) as ready "Name: value" lines.
 *  - XML (aws_xml.c): error bodies, ListObjectsV2, multipart results and
 *    request bodies, STS credentials. Hostile input is expected: no DTDs,
 *    no network, capped size.
 *  - credentials (aws_cred.c): the fluent-plugin-s3 / AWS SDK chain, logged
 *    by source, with expiry for refresh.
 *
 * Strings in and out are NUL-terminated; every char * the API returns is
 * owned by the caller (or by the struct it fills, freed by its _release).
 * Return codes are LS_OK / LS_ERROR (/ LS_DECLINED where documented).
 */
#ifndef LS_AWS_H
#define LS_AWS_H

#include "common.h"
#include "buf.h"

/* ------------------------------------------------------------------ */
/* Credentials                                                         */

struct aws_creds {
    char *key;           /* access key id */
    char *secret;        /* secret access key: never logged */
    char *token;         /* session token or NULL */
    int64_t expiration;  /* unix seconds; 0 = does not expire */
    char source[32];     /* "config", "env", "shared-file", "web-identity", "ecs", "imds", "assume-role" */
};

void aws_creds_release(struct aws_creds *c);
/* Deep copy (dst is overwritten, not released). */
void aws_creds_copy(struct aws_creds *dst, const struct aws_creds *src);

/* One STS role (fluent-plugin-s3 <assume_role_credentials> / <web_identity_credentials>). */
struct aws_sts_config {
    const char *role_arn;
    const char *role_session_name;   /* NULL = "logship-<pid>" */
    const char *external_id;         /* AssumeRole only */
    const char *policy;              /* inline session policy JSON or NULL */
    int duration_seconds;            /* 0 = STS default (3600) */
    const char *sts_region;          /* NULL = "us-east-1" */
    const char *sts_endpoint_url;    /* NULL = https://sts.<region>.amazonaws.com */
    const char *token_file;          /* web identity only: web_identity_token_file */
};

/*
 * What the configuration says. Every pointer may be NULL. With no explicit
 * source the SDK default chain runs: env -> shared file -> web identity (env)
 * -> ECS container credentials -> EC2 IMDS. Explicit sources follow
 * fluent-plugin-s3's precedence: aws_key_id/aws_sec_key, aws_profile,
 * <web_identity_credentials>, <instance_profile_credentials>,
 * <shared_credentials>. <assume_role_credentials> then runs on top of the
 * result (its base is the static keys if given, else the chain).
 */
struct aws_cred_config {
    const char *key_id;              /* aws_key_id */
    const char *secret;              /* aws_sec_key */
    const char *session_token;       /* optional with static keys */

    const char *aws_profile;         /* aws_profile: shared file with this profile */
    bool shared_credentials;         /* <shared_credentials> given */
    const char *shared_path;         /* its path (NULL = $AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials) */
    const char *shared_profile;      /* its profile_name (NULL = $AWS_PROFILE or "default") */

    bool instance_profile;           /* <instance_profile_credentials> given */
    const char *imds_endpoint;       /* "http://ip:port" (NULL = $AWS_EC2_METADATA_SERVICE_ENDPOINT or 169.254.169.254) */
    int imds_retries;                /* extra attempts after the first (0 = none) */
    long imds_timeout_ms;            /* per request; 0 = 1000 */

    bool web_identity;               /* <web_identity_credentials> given */
    struct aws_sts_config web;

    bool assume_role;                /* <assume_role_credentials> given */
    struct aws_sts_config assume;

    const char *ecs_relative_uri;    /* container credentials at this path only (aws-elasticsearch-service's
                                        ecs_container_credentials_relative_uri) */

    long http_timeout_ms;            /* STS / ECS requests; 0 = 5000 */
};

/* Refresh this long before Expiration (botocore's advisory window). */
#define AWS_CRED_REFRESH_BEFORE (15 * 60)

/*
 * Resolve credentials. Blocking (ls_http_fetch): call at start and
 * from a worker thread on refresh, never from the event loop. Logs the
 * source and key id at info level. LS_OK, or LS_ERROR with err filled.
 */
/* "env (access key id AKIA...WXYZ)": where credentials came from, the key id cut short */
void aws_creds_describe(const struct aws_creds *c, char *out, size_t outlen);
int aws_cred_resolve(const struct aws_cred_config *cfg, struct aws_creds *out, char *err, size_t errlen);
/* True when the credentials expire within AWS_CRED_REFRESH_BEFORE of now (unix seconds). */
bool aws_cred_needs_refresh(const struct aws_creds *c, int64_t now);
/* Parse an ISO-8601 UTC time ("2020-11-05T02:02:26Z", fraction allowed) -> unix seconds, or -1. */
int64_t aws_parse_iso8601(const char *s);

/* ------------------------------------------------------------------ */
/* Signing                                                             */

struct aws_kv {
    const char *name;
    const char *value;
};

/* A request to sign. Names and values are raw (not URI-encoded). */
struct aws_request {
    const char *method;              /* "PUT" */
    const char *path;                /* raw absolute path: "/bucket/my key" or "/my key" (vhost) */
    const struct aws_kv *query;       /* raw query parameters; value NULL or "" = "name=" */
    size_t nquery;
    const struct aws_kv *headers;     /* headers that will be sent and signed, Host included */
    size_t nheaders;
    const char *payload_hash;        /* hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"; NULL = empty body */
};

/* SigV4 options. */
#define AWS_SIGV4_NORMALIZE_PATH 0x1  /* non-S3 services: remove "." ".." and "//" from the path */
#define AWS_SIGV4_CONTENT_SHA    0x2  /* add and sign x-amz-content-sha256 (S3 requires it) */

/* Signing-key cache: one HMAC chain per (date, region, service, secret). */
struct aws_sigv4_cache {
    char date[9];
    char region[64];
    char service[32];
    unsigned char secret_id[32];     /* SHA-256 of the secret: the secret itself is not kept */
    unsigned char key[32];
    bool valid;
};

#define AWS_SIG_MAX_HEADERS 5

struct aws_signed {
    char amz_date[17];               /* 20130524T000000Z */
    char *authorization;             /* "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." */
    char *signature;                 /* hex */
    char *canonical_request;
    char *string_to_sign;
    char *headers[AWS_SIG_MAX_HEADERS];   /* "Name: value" lines to add, Authorization last */
    size_t nheaders;
};

void aws_signed_release(struct aws_signed *s);

/*
 * SigV4-sign req at time now (unix seconds). cache may be NULL. Signs every
 * header in req->headers except hop-by-hop/agent ones (user-agent, expect,
 * transfer-encoding, connection, authorization, x-amzn-trace-id), plus
 * x-amz-date, x-amz-security-token (when creds->token) and, with
 * AWS_SIGV4_CONTENT_SHA, x-amz-content-sha256. Duplicate header names are
 * joined with ',' in the order given. LS_OK or LS_ERROR (bad input).
 */
int aws_sigv4_sign(const struct aws_request *req, const struct aws_creds *creds, const char *region,
                  const char *service, int64_t now, unsigned flags, struct aws_sigv4_cache *cache,
                  struct aws_signed *out);

/*
 * SigV2 (HMAC-SHA1): "AWS key:signature". date is the Date header value the
 * caller sends (RFC 1123; empty if it sends x-amz-date instead). The
 * canonical resource is "/bucket" + the encoded key path + the
 * subresources among req->query (acl, uploads, uploadId, partNumber, ...),
 * so resource_path is the path-style raw path even for virtual-hosted
 * requests. out->authorization, out->signature and out->string_to_sign are
 * set; out->headers holds the Authorization line (and x-amz-security-token).
 */
int s3_sigv2_sign(const struct aws_request *req, const char *resource_path, const char *date,
                  const struct aws_creds *creds, struct aws_signed *out);

/* Format t as an RFC 1123 date ("Fri, 24 May 2013 00:00:00 GMT"). */
void s3_http_date(int64_t t, char out[32]);

/*
 * URI-encode: everything but A-Z a-z 0-9 - _ . ~ becomes %XX (upper case);
 * '/' is kept when keep_slash (paths). Appends to out.
 */
int aws_uri_encode(struct ls_buf *out, const char *s, size_t len, bool keep_slash);
/* The canonical query string of req (sorted by encoded name, then value). */
int aws_canonical_query(struct ls_buf *out, const struct aws_kv *q, size_t n);

/* Hex helpers (OpenSSL EVP). out must hold 65 bytes. */
void aws_sha256_hex(const void *p, size_t len, char out[65]);
#define AWS_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/* Base64 of the MD5 of p (Content-MD5). out must hold 25 bytes. */
void s3_md5_base64(const void *p, size_t len, char out[25]);

/* ------------------------------------------------------------------ */
/* XML                                                                 */

/* Bodies larger than this are refused without parsing. */
#define S3_XML_MAX_BODY (16u << 20)

struct s3_xml_error {
    char *code;
    char *message;
    char *request_id;
    char *host_id;
    char *region;         /* AuthorizationHeaderMalformed / PermanentRedirect */
    char *endpoint;       /* PermanentRedirect */
    char *server_time;    /* RequestTimeTooSkewed */
    char *request_time;
};

void s3_xml_error_release(struct s3_xml_error *e);

/* Call once from the main thread before using the parsers from threads. */
void s3_xml_global_init(void);

/*
 * Parse body as an S3 <Error> (or STS <ErrorResponse><Error>). LS_OK if it
 * is one (e filled), LS_DECLINED if it is well-formed XML of another kind,
 * LS_ERROR if it is not parseable (too big, DTD, malformed, empty).
 */
int s3_xml_parse_error(const char *body, size_t len, struct s3_xml_error *e);

/* InitiateMultipartUploadResult -> *upload_id. LS_ERROR with e filled for <Error>. */
int s3_xml_parse_initiate(const char *body, size_t len, char **upload_id, struct s3_xml_error *e);

/*
 * CompleteMultipartUploadResult. The response is HTTP 200 even when the
 * operation failed (S3 sends whitespace while it works, then the result or an
 * <Error>), so LS_OK only for a real result; <Error> -> LS_ERROR with e
 * filled (e->code set); anything else -> LS_ERROR with e->code NULL.
 * etag may be NULL.
 */
int s3_xml_parse_complete(const char *body, size_t len, char **etag, struct s3_xml_error *e);

struct s3_object {
    char *key;
    int64_t size;
    char *etag;
    char *last_modified;
};

struct s3_list_result {
    struct s3_object *objects;
    size_t n;
    bool truncated;
    char *next_token;     /* NextContinuationToken */
};

void s3_list_result_release(struct s3_list_result *r);
/* ListBucketResult (ListObjectsV2; v1 NextMarker is taken as next_token). */
int s3_xml_parse_list(const char *body, size_t len, struct s3_list_result *r, struct s3_xml_error *e);

struct s3_part {
    int number;
    char *etag;           /* as S3 sends it, quotes included */
    int64_t size;
};

struct s3_parts {
    struct s3_part *parts;
    size_t n;
    bool truncated;
    int next_marker;      /* NextPartNumberMarker */
};

void s3_parts_release(struct s3_parts *p);
/* ListPartsResult. */
int s3_xml_parse_parts(const char *body, size_t len, struct s3_parts *p, struct s3_xml_error *e);
/* Append the CompleteMultipartUpload request body for parts (in the order given). */
int s3_xml_build_complete(struct ls_buf *out, const struct s3_part *parts, size_t n);

/* STS AssumeRole / AssumeRoleWithWebIdentity response -> creds (source not set). */
int s3_xml_parse_sts_creds(const char *body, size_t len, struct aws_creds *c, struct s3_xml_error *e);

/* ------------------------------------------------------------------ */
/* The credential sections of fluentd's AWS plugins (aws_conf.c)       */

struct aws_shared_conf {
    char *path;
    char *profile_name;
};

struct aws_imds_conf {
    int64_t retries;
    char *ip_address;
    int64_t port;
    double http_open_timeout;
    double http_read_timeout;
};

struct aws_sts_conf {
    char *role_arn;
    char *role_session_name;
    char *policy;
    int64_t duration_seconds;
    char *external_id;
    char *sts_region;
    char *sts_endpoint_url;
    char *sts_http_proxy;
    char *web_identity_token_file;
};

/* <shared_credentials>, <instance_profile_credentials>, <assume_role_credentials>,
 * <web_identity_credentials> as fluent-plugin-s3 and fluent-plugin-kinesis take them */
struct aws_cred_sections {
    struct aws_shared_conf shared;
    struct aws_imds_conf imds;
    struct aws_sts_conf assume;
    struct aws_sts_conf web;
    bool has_shared, has_imds, has_assume, has_web;
    char *imds_endpoint;             /* "http://ip:port" built from imds */
};

struct ls_conf_section;
struct ls_instance;
/* Bind the sections present in sec. LS_OK, or LS_ERROR with "file:line: ..." in err. */
int aws_cred_sections_bind(struct ls_conf_section *sec, struct aws_cred_sections *s, char *err,
                           size_t errlen);
/* Set cc's shared, instance-profile, web-identity and assume-role fields from s (which must
 * outlive cc); warns through ins about what is accepted and not used. */
void aws_cred_sections_fill(struct ls_instance *ins, struct aws_cred_sections *s,
                            struct aws_cred_config *cc);
void aws_cred_sections_release(struct aws_cred_sections *s);

#endif
