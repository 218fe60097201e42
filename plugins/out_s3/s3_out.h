/*
 * s3_out.h - the out_s3 plugin's private structures, shared by s3.c (the
 * plugin: parameters, start-up checks, credentials), s3_key.c (object keys
 * and the %{index} allocator), s3_upload.c (signed requests on the loop,
 * chunk state, PutObject) and s3_multipart.c (resumable multipart uploads).
 * The protocol layer underneath (signing, addressing, XML, credential
 * chain) is s3.h.
 */
#ifndef LS_S3_OUT_H
#define LS_S3_OUT_H

#include "plugin.h"
#include "http.h"
#include "compress.h"
#include "s3.h"

enum { S3_STORE_GZIP, S3_STORE_JSON, S3_STORE_TEXT, S3_STORE_ZSTD, S3_STORE_XZ,
       S3_STORE_PARQUET };
enum { S3_SIG_V4, S3_SIG_V2 };
enum { S3_GATE_NONE, S3_GATE_BUSY, S3_GATE_READY, S3_GATE_FAILED };

/* Sentinels that stand for %{...} placeholders while ${...}/strftime run over a template. */
#define S3_PH_START '\x01'
#define S3_PH_END '\x02'
#define S3_PH_TIME_SLICE 't'
#define S3_PH_INDEX 'i'
#define S3_PH_HEX_RANDOM 'h'
#define S3_PH_UUID_FLUSH 'u'
#define S3_PH_DATE_SLICE 'd'
#define S3_PH_HMS_SLICE 'm'

/* <compress>: fluent-plugin-s3's section for the zstd compressor's options */
struct s3_compress_conf {
    int64_t level;
};

struct s3_job;
struct s3_prefix;

struct s3_out {
    /* parameters (bound by the core from the table in s3.c) */
    char *aws_key_id;
    char *aws_sec_key;
    char *aws_profile;
    char *aws_credential_process;
    int64_t aws_iam_retries;
    char *s3_bucket;
    char *s3_region;
    char *s3_endpoint;
    bool use_ssl;
    bool force_path_style;
    bool enable_transfer_acceleration;
    bool enable_dual_stack;
    bool ssl_verify_peer;
    char *ssl_ca_bundle;
    char *ssl_ca_directory;
    bool use_bundled_cert;
    int signature_version;
    bool compute_checksums;
    char *checksum_algorithm;
    char *proxy_uri;
    char *path;
    char *s3_object_key_format;
    char *index_format;
    int64_t hex_random_length;
    char *store_as;
    char *command_parameter;
    int64_t compression_level;
    bool check_object;
    bool overwrite;
    bool check_bucket;
    bool auto_create_bucket;
    bool check_apikey_on_start;
    char *storage_class;
    bool reduced_redundancy;
    char *acl;
    char *grant_full_control;
    char *grant_read;
    char *grant_read_acp;
    char *grant_write_acp;
    char *use_server_side_encryption;
    char *ssekms_key_id;
    char *sse_customer_algorithm;
    char *sse_customer_key;
    char *sse_customer_key_md5;
    struct ls_kvv s3_metadata;
    char *tagging;
    char *content_type;
    double warn_for_delay;
    char *time_slice_format;
    int64_t multipart_threshold;
    int64_t multipart_chunk_size;
    double http_connect_timeout;
    double http_stall_timeout;

    /* credential sub-sections */
    struct aws_cred_sections credsec;   /* <assume_role_credentials> and the others */
    struct s3_compress_conf compress;
    bool has_compress;

    /* derived */
    struct ls_instance *ins;
    struct ls_engine *eng;
    int store;
    enum ls_compress_algo algo;  /* what store_as compresses with */
    int level;                   /* its level, -1: the library's default */
    const char *side_ext;        /* suffix of the side file holding the payload */
    const char *ext;
    const char *ctype;
    char *key_tmpl;              /* key format with %{...} as sentinels, %{path}/ext/hostname resolved */
    bool key_has_index;
    char **meta_tmpl;            /* s3_metadata values, prepared the same way */
    char *slice_fmt;             /* strftime format of %{time_slice} */
    char *endpoint_url;          /* endpoint with scheme */
    struct s3_addr addr;
    struct aws_cred_config cc;

    struct aws_creds creds;       /* loop thread only */
    bool have_creds;
    bool creds_stale;            /* ExpiredToken & co: refresh before the next request */
    bool checks_done;            /* check_apikey_on_start / check_bucket passed */
    bool start_hold;             /* the engine's inputs wait for our first checks */
    int gate;
    char gate_err[768];
    struct s3_job *waiters;      /* writes waiting for the gate (start-up, refresh) */
    int net_busy;                /* jobs past compression, at most flush_thread_count */
    struct s3_job *net_wait, *net_wait_tail;   /* compressed, waiting for one of those */
    struct ls_timer *start_timer;
    struct aws_sigv4_cache sigcache;
    int64_t clock_offset;        /* seconds added to now when signing (RequestTimeTooSkewed) */

    struct s3_prefix **prefixes; /* %{index} allocator: one entry per key prefix */
    size_t nprefixes;
    bool list_denied_warned;
    uint64_t seq;                /* job ids for logs */
    int64_t side_disk_after_ms;  /* monotonic: payloads go to memory until then (disk full) */
};

/* One multipart part of a job. */
struct s3_jpart {
    uint64_t off, len;
    char md5b64[25];
    char md5hex[33];
    char sha[65];
    char *etag;                  /* from UploadPart / ListParts; NULL = not uploaded */
};

/* One .write of a chunk, from compression to the last response. */
struct s3_job {
    struct s3_out *s;
    struct ls_chunk *c;
    struct s3_job *next;         /* gate / prefix / network waiter lists */
    bool net;                    /* counted in s->net_busy */
    uint64_t id;

    /* persisted in the chunk state */
    char *key;
    bool have_digest;
    uint64_t size;
    char md5hex[33];
    char sha[65];
    char *upload_id;
    int64_t part_size;
    char **state_etags;          /* ETags recorded in the state, by part number - 1 */
    size_t nstate_etags;

    /* derived */
    char md5b64[25];
    char *side;                  /* compressed (or copied) payload next to the chunk */
    int fd;
    bool digest_changed;         /* recompressed output differs from the recorded digest */
    bool side_bad;               /* the cached side file did not match its digest */
    bool side_in_memory;         /* the payload is a memfd: the buffer's disk could not hold it */
    char side_err[256];          /* why the side file could not be written */
    struct s3_jpart *parts;
    size_t nparts;
    size_t cur;
    char werr[256];
    int wrc;

    /* key resolution */
    char *base;                  /* key with the %{index} sentinels still in it */
    struct s3_prefix *prefix;
    int64_t index;
    char *list_marker;
    int list_pages;
    int probes;
    void (*key_done)(struct s3_job *j, int rc, const char *msg);
};

/* s3_upload.c: signed requests ------------------------------------------------------------ */

typedef void (*s3_call_cb)(struct s3_out *s, struct ls_http_resp *r, void *arg);

struct s3_call_opts {
    const char *method;
    const char *key;                 /* NULL: the bucket */
    const struct aws_kv *query;
    size_t nquery;
    const struct aws_kv *headers;     /* besides Host, dates, auth */
    size_t nheaders;
    const void *body;                /* memory body (copied) */
    size_t body_len;
    int fd;                          /* file body when >= 0 (borrowed until the callback) */
    uint64_t off, len;
    const char *sha256_hex;          /* payload hash for file bodies */
    double timeout;                  /* 0: none (uploads rely on the stall timeout) */
};

/* Sign and submit; cb runs exactly once on the loop. LS_OK / LS_ERROR (msg filled). */
int s3_call(struct s3_out *s, const struct s3_call_opts *o, s3_call_cb cb, void *arg);
/*
 * Turn a non-2xx (or failed) response into "OP 'key': HTTP 503 SlowDown: msg" in msg,
 * adjusting the clock offset (RequestTimeTooSkewed) and marking credentials stale
 * (ExpiredToken...). code (may be NULL) receives the S3 error code. Returns LS_ERROR.
 */
int s3_describe_error(struct s3_out *s, const char *op, const char *key, struct ls_http_resp *r,
                      char *msg, size_t msglen, char *code, size_t codelen);
/* After an error answer: BadDigest and its kin make the next attempt rebuild the payload. */
void s3_job_check_digest_error(struct s3_job *j, const char *code);
/* The headers PutObject and CreateMultipartUpload share (content type, class, ACL, SSE, meta). */
void s3_object_headers(struct s3_job *j, struct aws_kv *h, size_t *n, size_t max, char ***owned,
                       size_t *nowned);
/* SSE-C headers that every UploadPart repeats. */
size_t s3_ssec_headers(struct s3_out *s, struct aws_kv *h);
/* Parse an RFC 1123 HTTP date; -1 if it is not one. */
int64_t s3_parse_http_date(const char *s);
/* Wall clock plus the skew correction. */
int64_t s3_now(const struct s3_out *s);

int s3_job_start(struct s3_out *s, struct ls_chunk *c);
/*
 * The xz preset in a command line for the xz command, as fluent-plugin-s3
 * runs it (`xz <command_parameter> -c`): the last -0..-9 among the short
 * options (its default "-qf0" is preset 0), --fast (0) or --best (9); the
 * arguments of -T, -M, -F, -C and -S are skipped ("-T0" is a thread count).
 * xz's own default, 6, when none is there. *extreme: -e was seen.
 */
int s3_xz_preset(const char *cmd, bool *extreme);
void s3_job_resume(struct s3_job *j);        /* after the gate opened */
void s3_job_finish(struct s3_job *j, int rc, const char *msg);
int s3_job_save_state(struct s3_job *j);
/* The object key a chunk's saved state holds (caller frees), or NULL. */
char *s3_state_key(const char *state);
/* The core gave chunk c up (secondary, backup/, dropped): abort its multipart upload. */
void s3_job_abandon(struct s3_out *s, struct ls_chunk *c);
/* Remember part's ETag in the state (saved by the next s3_job_save_state). */
void s3_job_record_etag(struct s3_job *j, size_t part, const char *etag);
/* AbortMultipartUpload, fire and forget (logged). */
void s3_abort_upload(struct s3_out *s, const char *key, const char *upload_id);

/* s3.c: the gate every write passes (credentials, start-up checks) */
void s3_gate_open(struct s3_out *s);
bool s3_gate_needed(struct s3_out *s);

/* s3_multipart.c ---------------------------------------------------------------------------- */
void s3_mpu_run(struct s3_job *j);

/* s3_key.c: keys ------------------------------------------------------------------------------ */

/*
 * Step 1 of fluent-plugin-s3's key construction, done once at configure time:
 * %{path}, %{file_extension} and %{hostname} are substituted, the %{...} that are
 * filled per chunk become sentinels, unknown ones vanish. NULL + err on a removed
 * placeholder (%{uuid}...).
 */
char *s3_tmpl_prepare(const char *fmt, const char *path, const char *ext, const char *hostname,
                      char *err, size_t errlen);
/* Steps 2-3: ${...} and strftime on the chunk, then the sentinels except %{index}. */
char *s3_tmpl_render(struct s3_out *s, struct s3_job *j, const char *tmpl);
/* Replace the %{index} sentinels of base with index formatted by fmt ("%d", "%03x"). */
char *s3_key_with_index(const char *base, const char *fmt, int64_t index);
/* Validate index_format against /^%(0\d*)?[dxX]$/. */
bool s3_index_format_ok(const char *fmt);
/* Resolve j->key (LIST/HEAD as configured), then call s3_job_resume-like continuation. */
void s3_key_resolve(struct s3_job *j, void (*done)(struct s3_job *j, int rc, const char *msg));
void s3_key_release_all(struct s3_out *s);
/* If key is base with some index i, return i, else -1 (used to seed from a LIST). */
int64_t s3_key_index_of(const char *base, const char *fmt, const char *key);

/* a chunk is in the store: metrics and the progress line */
void s3_delivered(struct s3_job *j);

#endif
