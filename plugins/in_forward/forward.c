/*
 * forward.c - fluentd's in_forward: the Forward Protocol v1 server (TCP, optionally TLS,
 * with the shared_key handshake) and the UDP heartbeat responder on the same port.
 *
 * Everything runs on the loop thread with non-blocking sockets. A connection's bytes go
 * into its own capped buffer; a small scanner finds where each top-level MessagePack
 * object ends (without allocating: libmsgpack-c's streaming unpacker would allocate an
 * array from its declared length before its bytes arrive, so 5 bytes could ask for
 * gigabytes), then libmsgpack-c decodes the complete object. So a connection never holds
 * more than chunk_size_limit (+ one read) of input, and decoding allocates in proportion
 * to bytes actually received.
 *
 * Acknowledged means durable: the records of every request a read brought are emitted,
 * then ls_input_commit() writes the buffers' frames, then the chunk ids are journaled as
 * acknowledged (fwd_ids.c), and only then are the {"ack": id} answers written. Records
 * carry one delivery source per instance with increasing positions, so after kill -9 the
 * buffers tell how far a request got, and a retransmitted chunk id is answered without
 * writing its records again (exactly once between logship hosts).
 *
 * Back-pressure: when an output's buffer is full (overflow_action block) an emit returns
 * LS_AGAIN; the input then stops reading every socket (TCP slows the senders down) and
 * continues the interrupted request where it stopped when the core resumes it.
 */
#include "forward.h"
#include "log.h"
#include "ssl_api.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define FWD_READ_CHUNK (256 * 1024)
#define FWD_DEFAULT_LIMIT ((int64_t)256 << 20)
#define FWD_OUT_MAX (16u << 20)       /* acks a client does not read: then it is dropped */
#define FWD_STATE_DIR "/var/lib/logship"
#define FWD_PING_MAX (64u * 1024)

struct fwd_user {
    char *username;
    char *password;
};

struct fwd_client {
    struct sockaddr_storage addr[8];   /* host: its addresses; network: the base address */
    size_t naddr;
    int prefix;                        /* network: prefix length; host: -1 */
    char *shared_key;                  /* NULL: <security>'s */
    struct ls_strv users;
    char *desc;
};

struct fwd_ctx {
    /* parameters */
    int64_t port;
    char *bind;
    char *tag;
    char *add_tag_prefix;
    double linger_timeout;
    bool resolve_hostname;
    bool deny_keepalive;
    bool send_keepalive_packet;
    int64_t chunk_size_warn_limit;
    int64_t chunk_size_limit;
    int64_t decompression_size_limit;
    bool skip_invalid_event;
    char *source_address_key;
    char *source_hostname_key;
    int64_t max_connections;
    char *chunk_id_file;
    double chunk_id_expiry;
    int64_t chunk_id_max;
    /* <security> */
    bool security;
    char *self_hostname;
    char *shared_key;
    bool user_auth;
    bool allow_anonymous_source;
    struct fwd_user *users;
    size_t nusers;
    struct fwd_client *clients;
    size_t nclients;
    /* <transport tls> */
    SSL_CTX *tls;
    /* state */
    struct ls_instance *ins;
    int lfd, ufd;
    struct ls_io *lio, *uio;
    struct fwd_conn *conns;
    size_t nconns;
    struct fwd_conn *active;           /* the request back-pressure interrupted */
    bool paused;
    struct ls_timer *retry;
    struct fwd_ids *ids;
    char *ids_path;
    char *ids_dir;              /* the per-user fallback directory, made at start; or NULL */
    uint64_t src;
    uint64_t seq;                      /* next record position */
    char *scratch;
    struct ls_arena arena;
    struct ls_record rec;
    struct ls_buf tagbuf;
    double last_warn[16];              /* per kind of warning (enum warn_kind) */
    uint64_t n_evicted;
    uint64_t n_refused, n_broken, n_oversize, n_invalid, n_auth_failed, n_tls_failed,
             n_duplicate;
};

enum conn_state { C_TLS, C_HELO, C_OPEN };

struct fwd_ack {
    char *id;
    size_t len;
    bool bin;
    bool again;                        /* acknowledged before: nothing to journal */
    uint64_t start, end;               /* the positions its records got */
};

struct fwd_conn {
    struct fwd_ctx *ctx;
    struct fwd_conn *next, *prev;
    int fd;
    struct ls_io *io;
    SSL *ssl;
    enum conn_state state;
    bool closing;                      /* close once out is written */
    bool dead;
    bool eof;
    bool served;                       /* deny_keepalive: one request was handled */
    struct sockaddr_storage peer;
    char addr[64];
    char *host;                        /* source_hostname_key */
    struct ls_buf in;                  /* bytes not yet handled */
    struct ls_mp_scan scan;              /* where the next object ends */
    size_t warned_at;
    struct ls_buf out;                 /* bytes to write */
    unsigned char nonce[16], auth[16];
    const struct fwd_client *client;
    /* the request being emitted */
    bool in_req;
    size_t req_len;                    /* its bytes at the front of in */
    msgpack_unpacked obj;
    struct fwd_req req;
    struct fwd_iter it;
    struct ls_buf inflated;
    uint64_t req_start;                /* first position of this attempt */
    bool req_tracked;                  /* chunk id journaled */
    bool emitted;                      /* records emitted since the last commit */
    struct fwd_ack *acks;
    size_t nacks, acap;
    double last_seen;                  /* monotonic: accepted, or its last bytes read */
};

static const struct ls_param user_params[] = {
    { "username", LS_P_STR, NULL, LS_PF_REQUIRED, offsetof(struct fwd_user, username), NULL,
      NULL, NULL, 0, 0 },
    { "password", LS_P_SECRET, NULL, LS_PF_REQUIRED, offsetof(struct fwd_user, password), NULL,
      NULL, NULL, 0, 0 },
    LS_PARAM_END
};

struct fwd_client_conf {
    char *host;
    char *network;
    char *shared_key;
    struct ls_strv users;
};

static const struct ls_param client_params[] = {
    { "host", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct fwd_client_conf, host), NULL,
      NULL, NULL, 0, 0 },
    { "network", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct fwd_client_conf, network), NULL,
      NULL, NULL, 0, 0 },
    { "shared_key", LS_P_SECRET, NULL, LS_PF_NULLABLE,
      offsetof(struct fwd_client_conf, shared_key), NULL, NULL, NULL, 0, 0 },
    { "users", LS_P_ARRAY, NULL, 0, offsetof(struct fwd_client_conf, users), NULL, NULL, NULL, 0,
      0 },
    LS_PARAM_END
};

static const struct ls_param security_params[] = {
    { "self_hostname", LS_P_STR, NULL, LS_PF_REQUIRED, offsetof(struct fwd_ctx, self_hostname),
      NULL, NULL, NULL, 0, 0 },
    { "shared_key", LS_P_SECRET, NULL, LS_PF_REQUIRED, offsetof(struct fwd_ctx, shared_key), NULL,
      NULL, NULL, 0, 0 },
    { "user_auth", LS_P_BOOL, "false", 0, offsetof(struct fwd_ctx, user_auth), NULL, NULL, NULL,
      0, 0 },
    { "allow_anonymous_source", LS_P_BOOL, "true", 0,
      offsetof(struct fwd_ctx, allow_anonymous_source), NULL, NULL, NULL, 0, 0 },
    LS_PARAM_END
};

struct fwd_tls_conf {
    char *cert_path;
    char *private_key_path;
    char *private_key_passphrase;
    char *ca_path;
    bool client_cert_auth;
    char *version, *min_version, *max_version, *ciphers;
    bool insecure;
    double linger_timeout;
    /* no cert_path: a server certificate made at start (fluentd's cert_option.rb) */
    char *ca_cert_path, *ca_private_key_path, *ca_private_key_passphrase;
    int64_t generate_private_key_length;
    char *generate_cert_country, *generate_cert_state, *generate_cert_locality;
    char *generate_cert_common_name;
    double generate_cert_expiration;
    int generate_cert_digest;
};

static const struct ls_param tls_params[] = {
    { "cert_path", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct fwd_tls_conf, cert_path), NULL,
      NULL, NULL, 0, 0 },
    { "private_key_path", LS_P_STR, NULL, LS_PF_NULLABLE,
      offsetof(struct fwd_tls_conf, private_key_path), NULL, NULL, NULL, 0, 0 },
    { "private_key_passphrase", LS_P_SECRET, NULL, LS_PF_NULLABLE,
      offsetof(struct fwd_tls_conf, private_key_passphrase), NULL, NULL, NULL, 0, 0 },
    { "ca_path", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct fwd_tls_conf, ca_path), NULL,
      NULL, NULL, 0, 0 },
    { "client_cert_auth", LS_P_BOOL, "false", 0, offsetof(struct fwd_tls_conf, client_cert_auth),
      NULL, NULL, NULL, 0, 0 },
    { "version", LS_P_STR, "TLSv1_2", 0, offsetof(struct fwd_tls_conf, version), NULL, NULL, NULL,
      0, 0 },
    { "min_version", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct fwd_tls_conf, min_version),
      NULL, NULL, NULL, 0, 0 },
    { "max_version", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct fwd_tls_conf, max_version),
      NULL, NULL, NULL, 0, 0 },
    { "ciphers", LS_P_STR, "ALL:!aNULL:!eNULL:!SSLv2", 0, offsetof(struct fwd_tls_conf, ciphers),
      NULL, NULL, NULL, 0, 0 },
    { "insecure", LS_P_BOOL, "false", 0, offsetof(struct fwd_tls_conf, insecure), NULL, NULL,
      NULL, 0, 0 },
    { "linger_timeout", LS_P_TIME, "0", 0, offsetof(struct fwd_tls_conf, linger_timeout), NULL,
      NULL, NULL, 0, 3600 },
    { "ca_cert_path", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct fwd_tls_conf, ca_cert_path),
      NULL, NULL, NULL, 0, 0 },
    { "ca_private_key_path", LS_P_STR, NULL, LS_PF_NULLABLE,
      offsetof(struct fwd_tls_conf, ca_private_key_path), NULL, NULL, NULL, 0, 0 },
    { "ca_private_key_passphrase", LS_P_SECRET, NULL, LS_PF_NULLABLE,
      offsetof(struct fwd_tls_conf, ca_private_key_passphrase), NULL, NULL, NULL, 0, 0 },
    { "generate_private_key_length", LS_P_INT, "2048", 0,
      offsetof(struct fwd_tls_conf, generate_private_key_length), NULL, NULL, NULL, 1024, 16384 },
    { "generate_cert_country", LS_P_STR, "US", 0,
      offsetof(struct fwd_tls_conf, generate_cert_country), NULL, NULL, NULL, 0, 0 },
    { "generate_cert_state", LS_P_STR, "CA", 0, offsetof(struct fwd_tls_conf, generate_cert_state),
      NULL, NULL, NULL, 0, 0 },
    { "generate_cert_locality", LS_P_STR, "Mountain View", 0,
      offsetof(struct fwd_tls_conf, generate_cert_locality), NULL, NULL, NULL, 0, 0 },
    { "generate_cert_common_name", LS_P_STR, NULL, LS_PF_NULLABLE,
      offsetof(struct fwd_tls_conf, generate_cert_common_name), NULL, NULL, NULL, 0, 0 },
    { "generate_cert_expiration", LS_P_TIME, "315360000", 0,
      offsetof(struct fwd_tls_conf, generate_cert_expiration), NULL, NULL, NULL, 0, 0 },
    { "generate_cert_digest", LS_P_ENUM, "sha256", 0,
      offsetof(struct fwd_tls_conf, generate_cert_digest), NULL, NULL, "sha1|sha256|sha384|sha512",
      0, 0 },
    LS_PARAM_END
};

/* in_forward's rows after port, shared with secure_forward's table */
#define FWD_COMMON_ROWS \
    { "bind", LS_P_STR, "0.0.0.0", 0, offsetof(struct fwd_ctx, bind), "address to listen on", \
      NULL, NULL, 0, 0 }, \
    { "tag", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct fwd_ctx, tag), \
      "replace the incoming tag", NULL, NULL, 0, 0 }, \
    { "add_tag_prefix", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct fwd_ctx, add_tag_prefix), \
      "prefix the tag with this and '.' (after `tag`)", NULL, NULL, 0, 0 }, \
    { "linger_timeout", LS_P_TIME, "0", 0, offsetof(struct fwd_ctx, linger_timeout), \
      "SO_LINGER seconds on close; 0 (default) is a normal close (fluentd: an RST, which can " \
      "drop the last ack)", NULL, NULL, 0, 3600 }, \
    { "resolve_hostname", LS_P_BOOL, "false", 0, offsetof(struct fwd_ctx, resolve_hostname), \
      "resolve the peer's name (true by default with source_hostname_key)", NULL, NULL, 0, 0 }, \
    { "deny_keepalive", LS_P_BOOL, "false", 0, offsetof(struct fwd_ctx, deny_keepalive), \
      "close a connection after its first request (and ack)", NULL, NULL, 0, 0 }, \
    { "send_keepalive_packet", LS_P_BOOL, "false", 0, \
      offsetof(struct fwd_ctx, send_keepalive_packet), "TCP keepalive (SO_KEEPALIVE)", NULL, \
      NULL, 0, 0 }, \
    { "chunk_size_warn_limit", LS_P_SIZE, NULL, 0, offsetof(struct fwd_ctx, chunk_size_warn_limit), \
      "warn about larger requests", NULL, NULL, 0, 0 }, \
    { "chunk_size_limit", LS_P_SIZE, NULL, 0, offsetof(struct fwd_ctx, chunk_size_limit), \
      "refuse larger requests: logged, no ack, the connection is closed (unset: 256m, which " \
      "also bounds a connection's memory)", NULL, NULL, 0, 0 }, \
    { "decompression_size_limit", LS_P_SIZE, "256m", 0, \
      offsetof(struct fwd_ctx, decompression_size_limit), \
      "refuse gzip entries that inflate to more", NULL, NULL, 1024, 1e12 }, \
    { "skip_invalid_event", LS_P_BOOL, "true", 0, offsetof(struct fwd_ctx, skip_invalid_event), \
      "skip events whose time is not an integer/EventTime or record not a map (false: such " \
      "an event fails its request: no ack, the connection is closed)", NULL, NULL, 0, 0 }, \
    { "source_address_key", LS_P_STR, NULL, LS_PF_NULLABLE, \
      offsetof(struct fwd_ctx, source_address_key), "add the peer's IP address under this key", \
      NULL, NULL, 0, 0 }, \
    { "source_hostname_key", LS_P_STR, NULL, LS_PF_NULLABLE, \
      offsetof(struct fwd_ctx, source_hostname_key), \
      "add the peer's resolved host name under this key", NULL, NULL, 0, 0 }, \
    { "max_connections", LS_P_INT, "1024", 0, offsetof(struct fwd_ctx, max_connections), \
      "(logship) open connections at most; more are closed at once, with a warning", NULL, \
      NULL, 1, 1e6 }, \
    { "chunk_id_file", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct fwd_ctx, chunk_id_file), \
      "(logship) journal of acknowledged chunk ids (default: in_forward-<bind:port hash>." \
      "chunk_ids in <system> root_dir, else /var/lib/logship when writable, else the working " \
      "directory)", NULL, NULL, 0, 0 }, \
    { "chunk_id_expiry", LS_P_TIME, "72h", 0, offsetof(struct fwd_ctx, chunk_id_expiry), \
      "(logship) how long an acknowledged chunk id is remembered (a retransmission after " \
      "that is written again)", NULL, NULL, 1, 1e9 }, \
    { "chunk_id_max", LS_P_INT, "262144", 0, offsetof(struct fwd_ctx, chunk_id_max), \
      "(logship) how many acknowledged chunk ids are remembered at most", NULL, NULL, 16, 1e8 },

static const struct ls_param fwd_params[] = {
    { "port", LS_P_INT, "24224", 0, offsetof(struct fwd_ctx, port),
      "TCP port, and the UDP heartbeat port", NULL, NULL, 0, 65535 },
    FWD_COMMON_ROWS
    { "security: self_hostname", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "(required in <security>) the name sent in PONG", NULL, NULL, 0, 0 },
    { "security: shared_key", LS_P_SECRET, NULL, LS_PF_NO_STORE, 0,
      "(required in <security>) the key of the HELO/PING/PONG handshake", NULL, NULL, 0, 0 },
    { "security: user_auth", LS_P_BOOL, "false", LS_PF_NO_STORE, 0,
      "also check a <user>'s username/password", NULL, NULL, 0, 0 },
    { "security: allow_anonymous_source", LS_P_BOOL, "true", LS_PF_NO_STORE, 0,
      "accept peers that match no <client>", NULL, NULL, 0, 0 },
    { "user: username, password", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "`<user>` in `<security>` (repeatable): a user for user_auth", NULL, NULL, 0, 0 },
    { "client: host, network", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "`<client>` in `<security>` (repeatable): a peer by host name or CIDR network (one of "
      "them)", NULL, NULL, 0, 0 },
    { "client: shared_key, users", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "that peer's own shared_key, and the users it may log in as", NULL, NULL, 0, 0 },
    { "tls: cert_path, private_key_path", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "`<transport tls>`: the server certificate (PEM, chain) and its key", NULL, NULL, 0, 0 },
    { "tls: private_key_passphrase", LS_P_SECRET, NULL, LS_PF_NO_STORE, 0,
      "the key's passphrase", NULL, NULL, 0, 0 },
    { "tls: ca_path, client_cert_auth", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "require client certificates signed by this CA (mutual TLS; client_cert_auth false)",
      NULL, NULL, 0, 0 },
    { "tls: version, min_version, max_version", LS_P_STR, "TLSv1_2", LS_PF_NO_STORE, 0,
      "lowest (version or min_version) and highest accepted: TLSv1_2, TLSv1_3", NULL, NULL, 0,
      0 },
    { "tls: ciphers, insecure, linger_timeout", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "OpenSSL cipher list (ALL:!aNULL:!eNULL:!SSLv2); insecure allows TLS < 1.2 and, without "
      "cert_path, a self-signed certificate made at start; linger_timeout as above", NULL, NULL,
      0, 0 },
    { "tls: ca_cert_path, ca_private_key_path, ca_private_key_passphrase", LS_P_STR, NULL,
      LS_PF_NO_STORE, 0, "without cert_path: a server certificate made at start, signed by this "
      "CA", NULL, NULL, 0, 0 },
    { "tls: generate_private_key_length, generate_cert_*", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "the made certificate: key bits (2048), country (US), state (CA), locality (Mountain "
      "View), common_name (host name), expiration (10 years), digest (sha256)", NULL, NULL, 0,
      0 },
    LS_PARAM_END
};

/* ------------------------------------------------------------------ */
/* logging helpers                                                     */

enum warn_kind { W_BROKEN, W_PACKED, W_BIG, W_INVALID, W_AUTH, W_TLS, W_LIMIT, W_OTHER, W_N };
_Static_assert(W_N <= 16, "fwd_ctx.last_warn is too small");

/* a flood of bad clients must not flood the log: one warning of a kind a second, with the
 * counts so far in the message */
static bool warn_ok(struct fwd_ctx *ctx, enum warn_kind k)
{
    double now = ls_mono_now();

    if (ctx->last_warn[k] != 0 && now - ctx->last_warn[k] < 1.0) {
        return false;
    }
    ctx->last_warn[k] = now;
    return true;
}

#define conn_warn(c, kind, ...)                                                     \
    do {                                                                            \
        if (warn_ok((c)->ctx, kind)) {                                              \
            ls_plg_warn((c)->ctx->ins, __VA_ARGS__);                                \
        }                                                                           \
    } while (0)

/* ------------------------------------------------------------------ */
/* configuration                                                       */

static int tls_version_of(const char *s, int *v)
{
    if (s == NULL) {
        return LS_DECLINED;
    }
    if (strcmp(s, "TLSv1_2") == 0 || strcmp(s, "TLS1_2") == 0) {
        *v = TLS1_2_VERSION;
    } else if (strcmp(s, "TLSv1_3") == 0 || strcmp(s, "TLS1_3") == 0) {
        *v = TLS1_3_VERSION;
    } else if (strcmp(s, "TLSv1_1") == 0 || strcmp(s, "TLS1_1") == 0) {
        *v = TLS1_1_VERSION;
    } else if (strcmp(s, "TLSv1") == 0 || strcmp(s, "TLS1") == 0) {
        *v = TLS1_VERSION;
    } else {
        return LS_ERROR;
    }
    return LS_OK;
}

static int passphrase_cb(char *buf, int size, int rwflag, void *u)
{
    const char *pw = u;
    int n = pw ? (int)strlen(pw) : 0;

    LS_UNUSED(rwflag);
    if (n > size) {
        n = size;
    }
    memcpy(buf, pw ? pw : "", (size_t)n);
    return n;
}

static void ssl_errors(char *out, size_t outlen)
{
    unsigned long e = ERR_get_error();

    if (e == 0) {
        snprintf(out, outlen, "unknown error");
        return;
    }
    ERR_error_string_n(e, out, outlen);
    ERR_clear_error();
}

/* Read a PEM file with f (PEM_read_X509 / PEM_read_PrivateKey); NULL if it cannot. */
static void *read_pem(const char *path, void *(*f)(FILE *, void **, pem_password_cb *, void *),
                      const char *pass)
{
    FILE *fp = fopen(path, "r");
    void *x;

    if (fp == NULL) {
        return NULL;
    }
    x = f(fp, NULL, NULL, (void *)(uintptr_t)(pass ? pass : ""));
    fclose(fp);
    return x;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509_EXTENSION *ex;
    int ok;

    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    ex = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (ex == NULL) {
        return 0;
    }
    ok = X509_add_ext(x, ex, -1);
    X509_EXTENSION_free(ex);
    return ok;
}

/*
 * fluentd's cert_option_generate_server_pair_self_signed / _by_ca: an RSA key and a server
 * certificate valid from 1970 for generate_cert_expiration, subject C/ST/L/CN from the
 * generate_* parameters (CN: the host name), signed by itself or by ca_cert_path's key. Kept
 * in memory only, as fluentd does.
 */
static int generate_cert(SSL_CTX *ssl, const struct fwd_tls_conf *tc, char *why, size_t whylen)
{
    static const char *const digests[] = { "SHA1", "SHA256", "SHA384", "SHA512" };
    const EVP_MD *md = EVP_get_digestbyname(digests[tc->generate_cert_digest]);
    X509 *ca = NULL, *x = NULL;
    EVP_PKEY *ca_key = NULL, *key = NULL;
    X509_NAME *name;
    BIGNUM *serial = NULL;
    char host[256] = "localhost";
    const char *cn = tc->generate_cert_common_name;
    int rc = LS_ERROR;

    if (tc->ca_cert_path) {
        ca = read_pem(tc->ca_cert_path, (void *(*)(FILE *, void **, pem_password_cb *, void *))
                      PEM_read_X509, NULL);
        ca_key = read_pem(tc->ca_private_key_path, (void *(*)(FILE *, void **,
                          pem_password_cb *, void *))PEM_read_PrivateKey,
                          tc->ca_private_key_passphrase);
        if (ca == NULL || ca_key == NULL) {
            snprintf(why, whylen, "cannot read %s '%s'", ca ? "ca_private_key_path"
                     : "ca_cert_path", ca ? tc->ca_private_key_path : tc->ca_cert_path);
            goto out;
        }
    }
    if (cn == NULL) {
        (void)gethostname(host, sizeof(host) - 1);
        cn = host;
    }
    key = EVP_RSA_gen((unsigned int)tc->generate_private_key_length);
    x = X509_new();
    serial = BN_new();
    if (md == NULL || key == NULL || x == NULL || serial == NULL ||
        !BN_rand(serial, 80, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
        !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) || !X509_set_version(x, 2) ||
        !ASN1_TIME_set(X509_getm_notBefore(x), 0) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), (long)tc->generate_cert_expiration) ||
        !X509_set_pubkey(x, key)) {
        snprintf(why, whylen, "generating a key and certificate failed");
        goto out;
    }
    name = X509_get_subject_name(x);
    if (!X509_NAME_add_entry_by_txt(name, "C", MBSTRING_UTF8,
                                    (const unsigned char *)tc->generate_cert_country, -1, -1, 0) ||
        !X509_NAME_add_entry_by_txt(name, "ST", MBSTRING_UTF8,
                                    (const unsigned char *)tc->generate_cert_state, -1, -1, 0) ||
        !X509_NAME_add_entry_by_txt(name, "L", MBSTRING_UTF8,
                                    (const unsigned char *)tc->generate_cert_locality, -1, -1, 0) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                    -1, 0) ||
        !X509_set_issuer_name(x, ca ? X509_get_subject_name(ca) : name) ||
        !add_ext(x, ca ? ca : x, NID_basic_constraints, "CA:FALSE") ||
        !add_ext(x, ca ? ca : x, NID_netscape_cert_type, "server") ||
        (ca && (!add_ext(x, ca, NID_key_usage, "digitalSignature,keyEncipherment") ||
                !add_ext(x, ca, NID_ext_key_usage, "serverAuth"))) ||
        !X509_sign(x, ca_key ? ca_key : key, md)) {
        snprintf(why, whylen, "signing the certificate failed (a country code of 2 letters?)");
        goto out;
    }
    if (SSL_CTX_use_certificate(ssl, x) != 1 || SSL_CTX_use_PrivateKey(ssl, key) != 1) {
        snprintf(why, whylen, "the generated certificate was refused");
        goto out;
    }
    rc = LS_OK;
out:
    if (rc != LS_OK) {
        size_t n = strlen(why);
        if (n + 3 < whylen && ERR_peek_error()) {
            snprintf(why + n, whylen - n, ": ");
            ssl_errors(why + n + 2, whylen - n - 2);
        }
    }
    ERR_clear_error();
    BN_free(serial);
    X509_free(x);
    X509_free(ca);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
    return rc;
}

/* <transport tls> tsec, or (secure_forward) the settings given, which this takes over; tsec
 * is then the section messages name */
static int setup_tls(struct fwd_ctx *ctx, struct ls_conf_section *tsec, struct fwd_tls_conf *given,
                     char *err, size_t errlen)
{
    struct fwd_tls_conf tc;
    char why[256];
    int v = 0, rc = LS_ERROR;

    memset(&tc, 0, sizeof(tc));
    if (given) {
        tc = *given;
    } else if (ls_param_bind(tls_params, tsec, &tc, err, errlen) != LS_OK) {
        return LS_ERROR;
    }
    /* fluentd's cert_option_server_validate!: a certificate from files, or made now */
    if (tc.cert_path && tc.private_key_path == NULL) {
        snprintf(err, errlen, "%s:%d: private_key_path is required when cert_path is specified",
                 tsec->file, tsec->line);
        goto out;
    }
    if (tc.cert_path == NULL && tc.ca_cert_path && tc.ca_private_key_path == NULL) {
        snprintf(err, errlen, "%s:%d: ca_private_key_path is required when ca_cert_path is "
                 "specified", tsec->file, tsec->line);
        goto out;
    }
    if (tc.cert_path == NULL && tc.ca_cert_path == NULL && !tc.insecure) {
        snprintf(err, errlen, "%s:%d: no valid cert options configured. specify either "
                 "'cert_path', 'ca_cert_path' or 'insecure'", tsec->file, tsec->line);
        goto out;
    }
    if (tc.client_cert_auth && tc.ca_path == NULL) {
        snprintf(err, errlen, "%s:%d: client_cert_auth needs ca_path", tsec->file, tsec->line);
        goto out;
    }
    if (ssl_api_load(why, sizeof(why)) != LS_OK) {
        snprintf(err, errlen, "%s:%d: <transport tls>: %s", tsec->file, tsec->line, why);
        goto out;
    }
    ctx->tls = SSL_CTX_new(TLS_server_method());
    if (ctx->tls == NULL) {
        snprintf(err, errlen, "%s:%d: SSL_CTX_new() failed", tsec->file, tsec->line);
        goto out;
    }
    if (tls_version_of(tc.min_version ? tc.min_version : tc.version, &v) == LS_ERROR ||
        (v && !tc.insecure && v < TLS1_2_VERSION && tc.min_version == NULL)) {
        snprintf(err, errlen, "%s:%d: unknown TLS version '%s' (TLSv1_2, TLSv1_3)", tsec->file,
                 tsec->line, tc.min_version ? tc.min_version : tc.version);
        goto out;
    }
    SSL_CTX_set_min_proto_version(ctx->tls, v);
    /* no TLS 1.3 session tickets: a client that never reads (out_forward without <security>
     * or acks) would close with them unread, and its kernel's RST can throw away the request
     * this side has not read yet; nothing here resumes sessions anyway */
    SSL_CTX_set_num_tickets(ctx->tls, 0);
    if (tls_version_of(tc.max_version, &v) == LS_OK) {
        SSL_CTX_set_max_proto_version(ctx->tls, v);
    }
    if (SSL_CTX_set_cipher_list(ctx->tls, tc.ciphers) != 1) {
        snprintf(err, errlen, "%s:%d: bad ciphers '%s'", tsec->file, tsec->line, tc.ciphers);
        goto out;
    }
    if (tc.cert_path == NULL) {
        if (tc.ca_cert_path == NULL) {
            ls_warn("%s:%d: insecure TLS communication server is configured (using 'insecure' "
                    "mode): a self-signed certificate is made", tsec->file, tsec->line);
        }
        if (generate_cert(ctx->tls, &tc, why, sizeof(why)) != LS_OK) {
            snprintf(err, errlen, "%s:%d: <transport tls>: %s", tsec->file, tsec->line, why);
            goto out;
        }
    } else {
        SSL_CTX_set_default_passwd_cb(ctx->tls, passphrase_cb);
        SSL_CTX_set_default_passwd_cb_userdata(ctx->tls, tc.private_key_passphrase);
        if (SSL_CTX_use_certificate_chain_file(ctx->tls, tc.cert_path) != 1) {
            ssl_errors(why, sizeof(why));
            snprintf(err, errlen, "%s:%d: cannot load cert_path '%s': %s", tsec->file,
                     tsec->line, tc.cert_path, why);
            goto out;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx->tls, tc.private_key_path, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx->tls) != 1) {
            ssl_errors(why, sizeof(why));
            snprintf(err, errlen, "%s:%d: cannot load private_key_path '%s': %s", tsec->file,
                     tsec->line, tc.private_key_path, why);
            goto out;
        }
    }
    /* the passphrase is only needed while loading: do not keep a pointer to it */
    SSL_CTX_set_default_passwd_cb_userdata(ctx->tls, NULL);
    if (tc.ca_path) {
        if (SSL_CTX_load_verify_locations(ctx->tls, tc.ca_path, NULL) != 1) {
            ssl_errors(why, sizeof(why));
            snprintf(err, errlen, "%s:%d: cannot load ca_path '%s': %s", tsec->file, tsec->line,
                     tc.ca_path, why);
            goto out;
        }
    }
    if (tc.client_cert_auth) {
        SSL_CTX_set_verify(ctx->tls, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    if (given == NULL && ls_conf_get_param(tsec, "linger_timeout")) {
        ctx->linger_timeout = tc.linger_timeout;
    }
    rc = LS_OK;
out:
    ls_param_release(tls_params, &tc);
    return rc;
}

/* one <client>: host (resolved now, as fluentd does at start) or network (CIDR) */
static int add_client(struct fwd_ctx *ctx, struct ls_conf_section *s, char *err, size_t errlen)
{
    struct fwd_client_conf cc;
    struct fwd_client *cl;
    int rc = LS_ERROR;

    memset(&cc, 0, sizeof(cc));
    if (ls_param_bind(client_params, s, &cc, err, errlen) != LS_OK) {
        return LS_ERROR;
    }
    if ((cc.host == NULL) == (cc.network == NULL)) {
        snprintf(err, errlen, "%s:%d: a <client> needs either host or network", s->file,
                 s->line);
        goto out;
    }
    ctx->clients = ls_realloc(ctx->clients, (ctx->nclients + 1) * sizeof(*ctx->clients));
    cl = &ctx->clients[ctx->nclients++];
    memset(cl, 0, sizeof(*cl));
    cl->prefix = -1;
    cl->desc = ls_strdup(cc.host ? cc.host : cc.network);
    if (cc.shared_key) {
        cl->shared_key = ls_strdup(cc.shared_key);
    }
    cl->users = cc.users;
    memset(&cc.users, 0, sizeof(cc.users));
    if (cc.host) {
        struct addrinfo hints, *res = NULL, *ai;
        memset(&hints, 0, sizeof(hints));
        hints.ai_socktype = SOCK_STREAM;
        if (getaddrinfo(cc.host, NULL, &hints, &res) != 0) {
            snprintf(err, errlen, "%s:%d: cannot resolve <client> host '%s'", s->file, s->line,
                     cc.host);
            goto out;
        }
        for (ai = res; ai && cl->naddr < 8; ai = ai->ai_next) {
            memcpy(&cl->addr[cl->naddr++], ai->ai_addr, ai->ai_addrlen);
        }
        freeaddrinfo(res);
    } else {
        char net[128], *slash;
        struct sockaddr_in *a4 = (struct sockaddr_in *)&cl->addr[0];
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&cl->addr[0];
        long bits;
        snprintf(net, sizeof(net), "%s", cc.network);
        slash = strchr(net, '/');
        if (slash) {
            *slash++ = '\0';
        }
        if (inet_pton(AF_INET, net, &a4->sin_addr) == 1) {
            a4->sin_family = AF_INET;
            bits = 32;
        } else if (inet_pton(AF_INET6, net, &a6->sin6_addr) == 1) {
            a6->sin6_family = AF_INET6;
            bits = 128;
        } else {
            snprintf(err, errlen, "%s:%d: <client> network '%s' is not an IP network", s->file,
                     s->line, cc.network);
            goto out;
        }
        if (slash) {
            char *end;
            long b = strtol(slash, &end, 10);
            if (*end || end == slash || b < 0 || b > bits) {
                snprintf(err, errlen, "%s:%d: <client> network '%s': bad prefix length",
                         s->file, s->line, cc.network);
                goto out;
            }
            bits = b;
        }
        cl->prefix = (int)bits;
        cl->naddr = 1;
    }
    rc = LS_OK;
out:
    ls_param_release(client_params, &cc);
    return rc;
}

static int security_users_clients(struct fwd_ctx *ctx, struct ls_conf_section *ssec, char *err,
                                  size_t errlen);

static int setup_security(struct fwd_ctx *ctx, struct ls_conf_section *ssec, char *err,
                          size_t errlen)
{
    if (ls_param_bind(security_params, ssec, ctx, err, errlen) != LS_OK) {
        return LS_ERROR;
    }
    return security_users_clients(ctx, ssec, err, errlen);
}

/* <security>'s <user> and <client> sections (secure_forward: the source's own), checked */
static int security_users_clients(struct fwd_ctx *ctx, struct ls_conf_section *ssec, char *err,
                                  size_t errlen)
{
    struct ls_conf_section *s;

    ctx->security = true;
    for (s = ssec->children; s; s = s->next) {
        if (strcmp(s->name, "user") == 0) {
            struct fwd_user *u;
            ctx->users = ls_realloc(ctx->users, (ctx->nusers + 1) * sizeof(*ctx->users));
            u = &ctx->users[ctx->nusers++];
            memset(u, 0, sizeof(*u));
            if (ls_param_bind(user_params, s, u, err, errlen) != LS_OK) {
                return LS_ERROR;
            }
        } else if (strcmp(s->name, "client") == 0) {
            if (add_client(ctx, s, err, errlen) != LS_OK) {
                return LS_ERROR;
            }
        }
    }
    if (ctx->user_auth && ctx->nusers == 0) {
        snprintf(err, errlen, "%s:%d: user_auth needs at least one <user>", ssec->file,
                 ssec->line);
        return LS_ERROR;
    }
    if (!ctx->allow_anonymous_source && ctx->nclients == 0) {
        snprintf(err, errlen, "%s:%d: allow_anonymous_source false needs at least one <client>",
                 ssec->file, ssec->line);
        return LS_ERROR;
    }
    return LS_OK;
}

static int fwd_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                    size_t errlen)
{
    struct fwd_ctx *ctx = ins->ctx;
    struct ls_conf_section *s;
    char key[300];

    ctx->ins = ins;
    ctx->lfd = ctx->ufd = -1;
    ls_arena_init(&ctx->arena, 16 * 1024);
    ls_record_init(&ctx->rec, &ctx->arena);
    ls_buf_init(&ctx->tagbuf, 0);
    if (ctx->tag && *ctx->tag == '\0') {
        ls_conf_param_error(sec, "tag", err, errlen, "'tag' parameter must not be empty");
        return LS_ERROR;
    }
    if (ctx->source_hostname_key) {
        if (ls_conf_get_param(sec, "resolve_hostname") && !ctx->resolve_hostname) {
            ls_conf_param_error(sec, "resolve_hostname", err, errlen,
                                "resolve_hostname must be true with source_hostname_key");
            return LS_ERROR;
        }
        ctx->resolve_hostname = true;
    }
    if (ctx->deny_keepalive && ctx->send_keepalive_packet) {
        ls_conf_param_error(sec, "send_keepalive_packet", err, errlen,
                            "send_keepalive_packet cannot be set with deny_keepalive");
        return LS_ERROR;
    }
    if (ctx->chunk_size_limit <= 0) {
        ctx->chunk_size_limit = FWD_DEFAULT_LIMIT;
    }
    if (ls_conf_get_param(sec, "linger_timeout")) {
        ls_plg_debug(ins, "linger_timeout is deprecated in fluentd; <transport> has it too");
    }
    for (s = sec->children; s; s = s->next) {
        if (strcmp(s->name, "security") == 0) {
            if (setup_security(ctx, s, err, errlen) != LS_OK) {
                return LS_ERROR;
            }
        } else if (strcmp(s->name, "transport") == 0) {
            if (strcmp(s->arg, "tls") == 0) {
                if (setup_tls(ctx, s, NULL, err, errlen) != LS_OK) {
                    return LS_ERROR;
                }
            } else if (*s->arg && strcmp(s->arg, "tcp") != 0) {
                snprintf(err, errlen, "%s:%d: in_forward supports <transport tcp> and "
                         "<transport tls>, not '%s'", s->file, s->line, s->arg);
                return LS_ERROR;
            }
        }
    }
    snprintf(key, sizeof(key), "in_forward:%s:%" PRId64, ctx->bind, ctx->port);
    ctx->src = ls_source_key(key, strlen(key));
    if (ctx->chunk_id_file) {
        ctx->ids_path = ls_strdup(ctx->chunk_id_file);
    } else {
        const char *root = ls_conf_root_dir(sec);
        char cwd[PATH_MAX];
        if (root == NULL || *root == '\0') {
            if (access(FWD_STATE_DIR, W_OK | X_OK) == 0) {
                root = FWD_STATE_DIR;
            } else if (getcwd(cwd, sizeof(cwd)) && access(cwd, W_OK | X_OK) == 0) {
                root = cwd;
            } else {
                /* a user's td-agent.conf with a forward source, run by someone who may write
                 * neither place: fluentd keeps no journal and starts, so this starts too, with
                 * a journal that lasts until the next boot (fwd_start makes the directory) */
                const char *xdg = getenv("XDG_RUNTIME_DIR");
                ctx->ids_dir = xdg && *xdg == '/' ? ls_asprintf("%s/logship", xdg)
                                                  : ls_asprintf("/tmp/logship-%u",
                                                                (unsigned)getuid());
                root = ctx->ids_dir;
            }
        }
        ctx->ids_path = ls_asprintf("%s/in_forward-%016" PRIx64 ".chunk_ids", root, ctx->src);
    }
    ctx->scratch = ls_malloc(FWD_READ_CHUNK);
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* connections                                                         */

static void conn_close(struct fwd_conn *c);
static bool conn_flush(struct fwd_conn *c);
static void conn_process(struct fwd_conn *c);

static void conn_update_io(struct fwd_conn *c)
{
    int ev = 0;

    if (c->dead) {
        return;
    }
    if (!c->closing && !c->eof && !c->ctx->paused) {
        ev |= LS_IO_READ;
    }
    if (c->out.len) {
        ev |= LS_IO_WRITE;
    }
    /* a TLS handshake may need to read while the input is paused */
    if (c->state == C_TLS) {
        ev |= LS_IO_READ;
    }
    ls_io_set(c->io, ev);
}

static void pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void conn_send(struct fwd_conn *c, const msgpack_sbuffer *sb)
{
    if (ls_buf_append(&c->out, sb->data, sb->size) != LS_OK) {
        conn_warn(c, W_OTHER, "client %s does not read its acks: closing the connection", c->addr);
        c->closing = true;
        c->dead = true;
    }
}

static void send_helo(struct fwd_conn *c)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;

    if (RAND_bytes(c->nonce, sizeof(c->nonce)) != 1 || RAND_bytes(c->auth, sizeof(c->auth)) != 1) {
        ls_plg_error(c->ctx->ins, "RAND_bytes() failed: closing %s", c->addr);
        c->dead = true;
        return;
    }
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    pack_str(&pk, "HELO", 4);
    msgpack_pack_map(&pk, 3);
    pack_str(&pk, "nonce", 5);
    msgpack_pack_bin(&pk, sizeof(c->nonce));
    msgpack_pack_bin_body(&pk, c->nonce, sizeof(c->nonce));
    pack_str(&pk, "auth", 4);
    msgpack_pack_bin(&pk, sizeof(c->auth));
    msgpack_pack_bin_body(&pk, c->auth, sizeof(c->auth));
    pack_str(&pk, "keepalive", 9);
    if (c->ctx->deny_keepalive) {
        msgpack_pack_false(&pk);
    } else {
        msgpack_pack_true(&pk);
    }
    conn_send(c, &sb);
    msgpack_sbuffer_destroy(&sb);
    c->state = C_HELO;
}

static bool addr_in(const struct sockaddr_storage *peer, const struct fwd_client *cl)
{
    size_t i;

    for (i = 0; i < cl->naddr; i++) {
        const struct sockaddr_storage *a = &cl->addr[i];
        const unsigned char *x, *y;
        size_t len;
        int bits;
        if (a->ss_family != peer->ss_family) {
            continue;
        }
        if (a->ss_family == AF_INET) {
            x = (const unsigned char *)&((const struct sockaddr_in *)a)->sin_addr;
            y = (const unsigned char *)&((const struct sockaddr_in *)peer)->sin_addr;
            len = 4;
        } else {
            x = (const unsigned char *)&((const struct sockaddr_in6 *)a)->sin6_addr;
            y = (const unsigned char *)&((const struct sockaddr_in6 *)peer)->sin6_addr;
            len = 16;
        }
        bits = cl->prefix < 0 ? (int)len * 8 : cl->prefix;
        if (memcmp(x, y, (size_t)bits / 8) == 0 &&
            (bits % 8 == 0 ||
             ((x[bits / 8] ^ y[bits / 8]) & (0xff << (8 - bits % 8)) & 0xff) == 0)) {
            return true;
        }
    }
    return false;
}

/* fluentd's check_ping; NULL on success, else the reason sent in PONG */
static const char *check_ping(struct fwd_conn *c, const msgpack_object *o, const char **key,
                              const char **salt, size_t *salt_len)
{
    struct fwd_ctx *ctx = c->ctx;
    const msgpack_object *a;
    const char *host, *digest, *user, *pwd;
    size_t host_len, dlen, ulen, plen, i;
    char want[129];
    static char reason[320];

    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 6 ||
        !ls_msgpack_str_eq(&o->via.array.ptr[0], "PING")) {
        return "invalid ping message";
    }
    a = o->via.array.ptr;
    if (!ls_msgpack_bytes(&a[1], &host, &host_len) || !ls_msgpack_bytes(&a[2], salt, salt_len) ||
        !ls_msgpack_bytes(&a[3], &digest, &dlen) || !ls_msgpack_bytes(&a[4], &user, &ulen) ||
        !ls_msgpack_bytes(&a[5], &pwd, &plen)) {
        return "invalid ping message";
    }
    c->client = NULL;
    for (i = 0; i < ctx->nclients; i++) {
        if (addr_in(&c->peer, &ctx->clients[i])) {
            c->client = &ctx->clients[i];
            break;
        }
    }
    if (c->client == NULL && !ctx->allow_anonymous_source) {
        snprintf(reason, sizeof(reason), "anonymous source host '%s' denied", c->addr);
        return reason;
    }
    *key = c->client && c->client->shared_key ? c->client->shared_key : ctx->shared_key;
    fwd_sha512_hex(want, *salt, *salt_len, host, host_len, c->nonce, sizeof(c->nonce), *key,
                   strlen(*key));
    if (dlen != 128 || memcmp(want, digest, 128) != 0) {
        return "shared_key mismatch";
    }
    if (ctx->user_auth) {
        bool ok = false;
        for (i = 0; i < ctx->nusers && !ok; i++) {
            const struct fwd_user *u = &ctx->users[i];
            size_t k;
            bool allowed = c->client == NULL || c->client->users.n == 0;
            if (strlen(u->username) != ulen || memcmp(u->username, user, ulen) != 0) {
                continue;
            }
            for (k = 0; c->client && k < c->client->users.n; k++) {
                allowed = allowed || strcmp(c->client->users.v[k], u->username) == 0;
            }
            if (!allowed) {
                continue;
            }
            fwd_sha512_hex(want, c->auth, sizeof(c->auth), u->username, ulen, u->password,
                           strlen(u->password), "", 0);
            ok = plen == 128 && memcmp(want, pwd, 128) == 0;
        }
        if (!ok) {
            return "username/password mismatch";
        }
    }
    return NULL;
}

static void handle_ping(struct fwd_conn *c, const msgpack_object *o)
{
    struct fwd_ctx *ctx = c->ctx;
    const char *key = NULL, *salt = NULL, *why;
    size_t salt_len = 0;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    char digest[129];

    why = check_ping(c, o, &key, &salt, &salt_len);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 5);
    pack_str(&pk, "PONG", 4);
    if (why) {
        ctx->n_auth_failed++;
        ctx->ins->metrics.errors++;
        conn_warn(c, W_AUTH, "handshake with %s failed: %s (%" PRIu64 " refused so far)", c->addr, why,
                  ctx->n_auth_failed);
        msgpack_pack_false(&pk);
        pack_str(&pk, why, strlen(why));
        pack_str(&pk, "", 0);
        pack_str(&pk, "", 0);
        c->closing = true;
    } else {
        fwd_sha512_hex(digest, salt, salt_len, ctx->self_hostname, strlen(ctx->self_hostname),
                       c->nonce, sizeof(c->nonce), key, strlen(key));
        msgpack_pack_true(&pk);
        pack_str(&pk, "", 0);
        pack_str(&pk, ctx->self_hostname, strlen(ctx->self_hostname));
        pack_str(&pk, digest, 128);
        c->state = C_OPEN;
    }
    conn_send(c, &sb);
    msgpack_sbuffer_destroy(&sb);
}

/* ------------------------------------------------------------------ */
/* requests                                                            */

static void add_ack(struct fwd_conn *c, const struct fwd_req *r, const msgpack_object *opt)
{
    const msgpack_object *v = ls_msgpack_map_get(opt, "chunk");
    struct fwd_ack *a;

    if (c->nacks == c->acap) {
        c->acap = c->acap ? c->acap * 2 : 4;
        c->acks = ls_realloc(c->acks, c->acap * sizeof(*c->acks));
    }
    a = &c->acks[c->nacks++];
    a->id = ls_malloc(r->chunk_len ? r->chunk_len : 1);
    memcpy(a->id, r->chunk, r->chunk_len);
    a->len = r->chunk_len;
    a->bin = v && v->type == MSGPACK_OBJECT_BIN;
    a->again = false;
    a->start = c->req_start;
    a->end = c->ctx->seq;
}

static void release_req(struct fwd_conn *c)
{
    if (c->in_req) {
        fwd_iter_release(&c->it);
        msgpack_unpacked_destroy(&c->obj);
        c->in_req = false;
    }
    if (c->ctx->active == c) {
        c->ctx->active = NULL;
    }
}

static const char *final_tag(struct fwd_ctx *ctx, const struct fwd_req *r, size_t *len)
{
    const char *t = ctx->tag ? ctx->tag : r->tag;
    size_t n = ctx->tag ? strlen(ctx->tag) : r->tag_len;

    if (ctx->add_tag_prefix == NULL) {
        *len = n;
        return t;
    }
    ls_buf_reset(&ctx->tagbuf);
    (void)ls_buf_printf(&ctx->tagbuf, "%s.", ctx->add_tag_prefix);
    (void)ls_buf_append(&ctx->tagbuf, t, n);
    *len = ctx->tagbuf.len;
    return ctx->tagbuf.p;
}

/* Emit the rest of the current request. LS_OK done, LS_AGAIN back-pressure, LS_ERROR the
 * connection must go (skip_invalid_event false). */
static int emit_entries(struct fwd_conn *c)
{
    struct fwd_ctx *ctx = c->ctx;
    const msgpack_object *t, *r;
    size_t tag_len;
    const char *tag = final_tag(ctx, &c->req, &tag_len);
    int n;

    for (;;) {
        struct ls_time tm;
        /* the iterator before this entry: back-pressure restarts from it */
        size_t idx = c->it.idx, off = c->it.off;

        n = fwd_iter_next(&c->it, &t, &r);
        if (n == 0) {
            return LS_OK;
        }
        if (n < 0) {
            ctx->n_broken++;
            ctx->ins->metrics.errors++;
            conn_warn(c, W_PACKED, "broken packed entries from %s (tag '%.*s'): the rest of the request "
                      "is skipped", c->addr, (int)c->req.tag_len, c->req.tag);
            return LS_OK;
        }
        if (!fwd_entry_valid(t, r, &tm)) {
            ctx->n_invalid++;
            ctx->ins->metrics.errors++;
            if (!ctx->skip_invalid_event && c->req.mode != FWD_MESSAGE) {
                ls_plg_error(ctx->ins, "invalid event from %s (tag '%.*s'): time must be an "
                             "integer or EventTime and the record a map; skip_invalid_event is "
                             "false: closing without ack", c->addr, (int)c->req.tag_len,
                             c->req.tag);
                return LS_ERROR;
            }
            conn_warn(c, W_INVALID, "skip invalid event from %s (tag '%.*s'): time must be an integer or "
                      "EventTime and the record a map (%" PRIu64 " so far)", c->addr,
                      (int)c->req.tag_len, c->req.tag, ctx->n_invalid);
            continue;
        }
        if (tm.sec == 0 && tm.nsec == 0) {
            ls_wall_now(&tm.sec, &tm.nsec);     /* fluentd: time 0 means now */
        }
        ls_record_clear(&ctx->rec);
        ctx->rec.tag = tag;
        ctx->rec.tag_len = tag_len;
        ctx->rec.time = tm;
        if (ls_msgpack_map_to_record(r, &ctx->rec) != LS_OK) {
            ctx->n_invalid++;
            ls_arena_reset(&ctx->arena);
            continue;
        }
        if (ctx->source_address_key) {
            struct ls_value v = ls_vstr(c->addr, strlen(c->addr));
            ls_record_set(&ctx->rec, ctx->source_address_key, strlen(ctx->source_address_key),
                          &v);
        }
        if (ctx->source_hostname_key) {
            const char *h = c->host ? c->host : c->addr;
            struct ls_value v = ls_vstr(h, strlen(h));
            ls_record_set(&ctx->rec, ctx->source_hostname_key, strlen(ctx->source_hostname_key),
                          &v);
        }
        ctx->rec.src = ctx->src;
        ctx->rec.pos = ctx->seq;
        n = ls_emit(ctx->ins, &ctx->rec);
        ls_arena_reset(&ctx->arena);
        if (n == LS_AGAIN) {
            /* not taken: this entry again when the core resumes us (a packed entry is
             * decoded again from its offset) */
            c->it.idx = idx;
            c->it.off = off;
            return LS_AGAIN;
        }
        ctx->seq++;
        c->emitted = true;
    }
}

static uint64_t durable_end(struct fwd_ctx *ctx, uint64_t start)
{
    uint64_t d = ls_source_durable_pos(ctx->ins->engine, ctx->src) + 1;

    if (d < start) {
        d = start;
    }
    if (d > ctx->seq) {
        d = ctx->seq;
    }
    return d;
}

/* journal what a stopped request got durable: state 'p' (stops) or 'i' (goes on later) */
static void settle_req(struct fwd_conn *c, char state)
{
    struct fwd_ctx *ctx = c->ctx;
    char err[256];

    if (!c->in_req || !c->req_tracked || ctx->ids == NULL) {
        return;
    }
    (void)ls_input_commit(ctx->ins);
    c->emitted = false;
    fwd_ids_progress(ctx->ids, c->req.chunk, c->req.chunk_len,
                     durable_end(ctx, c->req_start), state);
    if (state == 'i') {
        c->req_start = durable_end(ctx, c->req_start);
    }
    if (fwd_ids_flush(ctx->ids, err, sizeof(err)) != LS_OK) {
        ls_plg_error(ctx->ins, "chunk id journal: %s", err);
    }
}

/* Start the request at the front of c->in (len bytes). LS_OK handled (or dropped),
 * LS_AGAIN back-pressure (c->in_req stays), LS_ERROR close the connection. */
static int start_request(struct fwd_conn *c, size_t len)
{
    struct fwd_ctx *ctx = c->ctx;
    char err[256];
    size_t off = 0;
    int rc;

    if (ctx->chunk_size_warn_limit > 0 && (int64_t)len > ctx->chunk_size_warn_limit) {
        conn_warn(c, W_BIG, "request from %s is %zu bytes, over chunk_size_warn_limit %" PRId64,
                  c->addr, len, ctx->chunk_size_warn_limit);
    }
    msgpack_unpacked_init(&c->obj);
    rc = msgpack_unpack_next(&c->obj, c->in.p, len, &off);
    if (rc != MSGPACK_UNPACK_SUCCESS && rc != MSGPACK_UNPACK_EXTRA_BYTES) {
        msgpack_unpacked_destroy(&c->obj);
        ctx->n_broken++;
        ctx->ins->metrics.errors++;
        conn_warn(c, W_BROKEN, "malformed MessagePack from %s (%s): closing the connection", c->addr,
                  rc == MSGPACK_UNPACK_NOMEM_ERROR ? "out of memory" : "parse error");
        return LS_ERROR;
    }
    if (c->state == C_HELO) {
        handle_ping(c, &c->obj.data);
        msgpack_unpacked_destroy(&c->obj);
        return LS_OK;
    }
    rc = fwd_req_decode(&c->obj.data, &c->inflated, &c->req, err, sizeof(err));
    if (rc != LS_OK) {
        msgpack_unpacked_destroy(&c->obj);
        if (rc == LS_ERROR) {
            ctx->n_broken++;
            ctx->ins->metrics.errors++;
            conn_warn(c, W_BROKEN, "%s (from %s); no ack", err, c->addr);
        }
        return LS_OK;
    }
    c->in_req = true;
    c->req_len = len;
    c->req_tracked = false;
    fwd_iter_init(&c->it, &c->req);
    c->req_start = ctx->seq;
    if (c->req.chunk && ctx->ids) {
        uint64_t done = 0;
        enum fwd_id_state st = fwd_ids_lookup(ctx->ids, c->req.chunk, c->req.chunk_len, &done);
        struct fwd_conn *o;

        for (o = ctx->conns; o; o = o->next) {
            if (o != c && o->in_req && o->req_tracked && o->req.chunk_len == c->req.chunk_len &&
                memcmp(o->req.chunk, c->req.chunk, c->req.chunk_len) == 0) {
                /* the same chunk is still being written from another connection: the
                 * sender gets its ack when it asks again */
                release_req(c);
                return LS_OK;
            }
        }
        if (st == FWD_ID_ACKED) {
            ctx->n_duplicate++;
            ls_plg_debug(ctx->ins, "chunk %.*s from %s was acknowledged before: ack again, "
                         "nothing written", (int)c->req.chunk_len, c->req.chunk, c->addr);
            add_ack(c, &c->req, c->req.option);
            c->acks[c->nacks - 1].again = true;
            release_req(c);
            return LS_OK;
        }
        if (st == FWD_ID_PARTIAL && done > 0) {
            ctx->n_duplicate++;
            (void)fwd_iter_skip(&c->it, done);
        }
        fwd_ids_begin(ctx->ids, c->req.chunk, c->req.chunk_len, ctx->seq, done);
        /* the intent must be on disk before any frame can be */
        if (fwd_ids_flush(ctx->ids, err, sizeof(err)) != LS_OK) {
            ls_plg_error(ctx->ins, "chunk id journal: %s; closing %s without ack", err,
                         c->addr);
            release_req(c);
            return LS_ERROR;
        }
        c->req_tracked = true;
    }
    return LS_OK;
}

static void fwd_pause(struct ls_instance *ins);

/* Continue (or finish) the current request. */
static int continue_request(struct fwd_conn *c)
{
    int rc = emit_entries(c);

    if (rc == LS_AGAIN) {
        /* stop everything: the next record of the fleet is this request's next one */
        c->ctx->active = c;
        fwd_pause(c->ctx->ins);
        return LS_AGAIN;
    }
    if (rc == LS_OK && c->req.chunk) {
        add_ack(c, &c->req, c->req.option);
    }
    if (rc != LS_OK) {
        settle_req(c, 'p');
    }
    release_req(c);
    return rc;
}

/* commit what was emitted, journal the chunk ids, then write the acks */
static int finish_batch(struct fwd_conn *c)
{
    struct fwd_ctx *ctx = c->ctx;
    char err[256];
    size_t i;
    int rc = LS_OK;

    if (c->emitted || c->nacks) {
        if (ls_input_commit(ctx->ins) != LS_OK) {
            ls_plg_error(ctx->ins, "the output buffers could not write the records of %s: "
                         "closing without ack (the sender retries)", c->addr);
            rc = LS_ERROR;
        }
        c->emitted = false;
    }
    if (c->nacks && ctx->ids) {
        uint64_t durable = ls_source_durable_pos(ctx->ins->engine, ctx->src);
        for (i = 0; i < c->nacks; i++) {
            const struct fwd_ack *a = &c->acks[i];
            uint64_t end = durable + 1 < a->start ? a->start : durable + 1;
            if (a->again) {
                continue;
            }
            /* not acknowledged: journal exactly what reached the buffers, since requests
             * after it will move the buffers' positions on */
            fwd_ids_progress(ctx->ids, a->id, a->len, rc == LS_OK ? a->end :
                             end < a->end ? end : a->end, rc == LS_OK ? 'a' : 'p');
        }
        if (fwd_ids_flush(ctx->ids, err, sizeof(err)) != LS_OK) {
            ls_plg_error(ctx->ins, "chunk id journal: %s; closing %s without ack", err, c->addr);
            rc = LS_ERROR;
        }
    }
    for (i = 0; i < c->nacks; i++) {
        if (rc == LS_OK) {
            msgpack_sbuffer sb;
            msgpack_packer pk;
            msgpack_sbuffer_init(&sb);
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            msgpack_pack_map(&pk, 1);
            pack_str(&pk, "ack", 3);
            if (c->acks[i].bin) {
                msgpack_pack_bin(&pk, c->acks[i].len);
                msgpack_pack_bin_body(&pk, c->acks[i].id, c->acks[i].len);
            } else {
                pack_str(&pk, c->acks[i].id, c->acks[i].len);
            }
            conn_send(c, &sb);
            msgpack_sbuffer_destroy(&sb);
        }
        ls_free(c->acks[i].id);
    }
    c->nacks = 0;
    return rc;
}

static void conn_process(struct fwd_conn *c)
{
    struct fwd_ctx *ctx = c->ctx;
    size_t used = 0;
    int rc = LS_OK;

    while (!c->dead && !c->closing && !ctx->paused) {
        long n;
        if (c->in_req) {
            rc = continue_request(c);
            if (rc == LS_AGAIN) {
                break;
            }
            used = c->req_len;
            ls_buf_consume(&c->in, used);
            c->served = true;
            if (rc == LS_ERROR) {
                break;
            }
            if (ctx->deny_keepalive) {
                c->closing = true;
            }
            continue;
        }
        if (c->in.len == 0) {
            break;
        }
        /* before the handshake a peer is unknown: a PING is a few hundred bytes */
        n = ls_mp_scan(&c->scan, c->in.p, c->in.len,
                       c->state == C_HELO ? FWD_PING_MAX : (uint64_t)ctx->chunk_size_limit);
        if (n == LS_MP_MORE) {
            break;
        }
        if (n < 0) {
            ctx->ins->metrics.errors++;
            if (n == LS_MP_BIG) {
                ctx->n_oversize++;
                conn_warn(c, W_BIG, "request from %s is over chunk_size_limit %" PRId64 " bytes: "
                          "dropped without ack, connection closed (%" PRIu64 " so far)",
                          c->addr, ctx->chunk_size_limit, ctx->n_oversize);
            } else {
                ctx->n_broken++;
                conn_warn(c, W_BROKEN, "malformed MessagePack from %s: closing the connection", c->addr);
            }
            rc = LS_ERROR;
            break;
        }
        rc = start_request(c, (size_t)n);
        if (rc == LS_ERROR) {
            break;
        }
        if (!c->in_req) {
            ls_buf_consume(&c->in, (size_t)n);
            if (c->state == C_OPEN && ctx->deny_keepalive && c->nacks) {
                c->closing = true;
            }
        }
    }
    if (rc == LS_AGAIN || (ctx->paused && c->in_req)) {
        settle_req(c, 'i');
    }
    if (finish_batch(c) != LS_OK || rc == LS_ERROR) {
        c->closing = true;           /* what is in out (acks of earlier requests) still goes */
    }
    if (c->in.len == 0 && c->in.cap > 4 * FWD_READ_CHUNK) {
        ls_buf_release(&c->in);      /* after a big request: give the memory back */
    }
    conn_flush(c);
}

static int conn_read(struct fwd_conn *c, void *buf, size_t n)
{
    int got;

    if (c->ssl) {
        int r = SSL_read(c->ssl, buf, (int)n);
        if (r > 0) {
            c->last_seen = ls_mono_now();
            return r;
        }
        switch (SSL_get_error(c->ssl, r)) {
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_WANT_WRITE:
            errno = EAGAIN;
            return -1;
        case SSL_ERROR_ZERO_RETURN:
            return 0;
        case SSL_ERROR_SSL:
        case SSL_ERROR_SYSCALL:
            /* a peer that closes without close_notify (out_forward clients, fluentd's among
             * them, do): OpenSSL 3 calls it an error, but it is the end of what was sent,
             * and what was sent before it is processed, not dropped with the connection */
            if (ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING ||
                (ERR_peek_last_error() == 0 && errno == 0)) {
                ERR_clear_error();
                return 0;
            }
            ERR_clear_error();
            errno = ECONNRESET;
            return -1;
        default:
            ERR_clear_error();
            errno = ECONNRESET;
            return -1;
        }
    }
    got = (int)read(c->fd, buf, n);
    if (got > 0) {
        c->last_seen = ls_mono_now();
    }
    return got;
}

/* Write what is queued; true when the connection was closed (and freed). */
static bool conn_flush(struct fwd_conn *c)
{
    while (!c->dead && c->out.len > 0 && c->state != C_TLS) {
        long w;
        if (c->ssl) {
            int r = SSL_write(c->ssl, c->out.p, (int)c->out.len);
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                    break;
                }
                ERR_clear_error();
                c->dead = true;
                break;
            }
            w = r;
        } else {
            w = send(c->fd, c->out.p, c->out.len, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    break;
                }
                c->dead = true;
                break;
            }
        }
        ls_buf_consume(&c->out, (size_t)w);
    }
    if (c->dead || ((c->closing || c->eof) && c->out.len == 0 && !c->in_req)) {
        conn_close(c);
        return true;
    }
    conn_update_io(c);
    return false;
}

/* 1 handshake done, 0 in progress, -1 failed (the connection is closed and freed) */
static int tls_accept_step(struct fwd_conn *c)
{
    int r = SSL_accept(c->ssl);
    char why[256];

    if (r == 1) {
        c->state = C_OPEN;
        if (c->ctx->security) {
            send_helo(c);
        }
        return conn_flush(c) ? -1 : 1;
    }
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        ls_io_set(c->io, LS_IO_READ);
        return 0;
    case SSL_ERROR_WANT_WRITE:
        ls_io_set(c->io, LS_IO_READ | LS_IO_WRITE);
        return 0;
    default:
        ssl_errors(why, sizeof(why));
        c->ctx->n_tls_failed++;
        c->ctx->ins->metrics.errors++;
        conn_warn(c, W_TLS, "TLS handshake with %s failed: %s (%" PRIu64 " so far)", c->addr, why,
                  c->ctx->n_tls_failed);
        c->dead = true;
        conn_close(c);
        return -1;
    }
}

static void conn_cb(struct ls_io *io, int revents, void *arg)
{
    struct fwd_conn *c = arg;
    struct fwd_ctx *ctx = c->ctx;
    size_t total = 0;
    LS_UNUSED(io);

    if (c->state == C_TLS) {
        if (tls_accept_step(c) != 1) {
            return;
        }
        /* the client's first bytes may already sit in OpenSSL's buffer */
        revents |= LS_IO_READ;
    }
    if ((revents & LS_IO_WRITE) && conn_flush(c)) {
        return;
    }
    if (!(revents & LS_IO_READ) || ctx->paused || c->closing) {
        return;
    }
    /*
     * A bounded amount per wakeup, so one fast sender cannot starve the others (the
     * level-triggered watcher brings us back). TLS reads go on until OpenSSL wants the
     * socket again: bytes it has decrypted would not wake the watcher.
     */
    while (c->ssl || total < 4 * FWD_READ_CHUNK) {
        int n = conn_read(c, ctx->scratch, FWD_READ_CHUNK);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                break;
            }
            /* a reset after the peer wrote: what was read is processed, as at an end */
            c->eof = true;
            break;
        }
        if (n == 0) {
            c->eof = true;
            break;
        }
        total += (size_t)n;
        if (ls_buf_append(&c->in, ctx->scratch, (size_t)n) != LS_OK) {
            c->dead = true;
            break;
        }
        if (c->in.len > (size_t)ctx->chunk_size_limit + FWD_READ_CHUNK) {
            break;      /* the scanner refuses it */
        }
        if (c->ssl == NULL && (size_t)n < FWD_READ_CHUNK) {
            break;
        }
    }
    if (c->dead) {
        if (c->in_req) {
            settle_req(c, 'p');
        }
        conn_close(c);
        return;
    }
    conn_process(c);
}

static void conn_close(struct fwd_conn *c)
{
    struct fwd_ctx *ctx = c->ctx;
    size_t i;

    if (c->in_req) {
        settle_req(c, 'p');
        release_req(c);
    }
    if (ctx->active == c) {
        ctx->active = NULL;
    }
    ls_io_free(c->io);
    c->io = NULL;
    if (c->ssl) {
        SSL_free(c->ssl);
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        ctx->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    ctx->nconns--;
    for (i = 0; i < c->nacks; i++) {
        ls_free(c->acks[i].id);
    }
    ls_free(c->acks);
    ls_buf_release(&c->in);
    ls_buf_release(&c->out);
    ls_buf_release(&c->inflated);
    ls_free(c->host);
    ls_free(c);
}

/*
 * At max_connections, make room for a new client by closing the connection that has been
 * silent longest, if that is over FWD_EVICT_IDLE s and it has nothing in flight (no request
 * being written, no ack owed). Without this, max_connections clients that connect and then
 * send nothing would shut every other client out for good. (A client that sends a byte now
 * and then is not silent: slow links are served.) A client closed this way only reconnects: loggers keep
 * idle connections open and open a new one on their next send, and an unacknowledged
 * chunk is sent again.
 */
#define FWD_EVICT_IDLE 10.0

static bool evict_idlest(struct fwd_ctx *ctx)
{
    struct fwd_conn *c, *victim = NULL;
    double now = ls_mono_now();

    for (c = ctx->conns; c; c = c->next) {
        if (c->in_req || c->nacks > 0 || c->closing || c->dead || ctx->active == c) {
            continue;
        }
        if (victim == NULL || c->last_seen < victim->last_seen) {
            victim = c;
        }
    }
    if (victim == NULL || now - victim->last_seen < FWD_EVICT_IDLE) {
        return false;
    }
    ctx->n_evicted++;
    if (warn_ok(ctx, W_LIMIT)) {
        ls_plg_warn(ctx->ins, "max_connections %" PRId64 " reached: closed the connection from "
                    "%s, silent for %.0f s, for a new one (%" PRIu64 " so far)",
                    ctx->max_connections, victim->addr, now - victim->last_seen, ctx->n_evicted);
    }
    conn_close(victim);
    return true;
}

static void accept_cb(struct ls_io *io, int revents, void *arg)
{
    struct fwd_ctx *ctx = arg;
    int i;
    LS_UNUSED(io);
    LS_UNUSED(revents);

    for (i = 0; i < 64; i++) {
        struct sockaddr_storage sa;
        socklen_t salen = sizeof(sa);
        struct fwd_conn *c;
        int fd = accept4(ctx->lfd, (struct sockaddr *)&sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        int one = 1;

        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED && warn_ok(ctx, W_OTHER)) {
                ls_plg_warn(ctx->ins, "accept() failed (%d: %s)", errno, strerror(errno));
            }
            return;
        }
        if ((int64_t)ctx->nconns >= ctx->max_connections && !evict_idlest(ctx)) {
            ctx->n_refused++;
            ctx->ins->metrics.errors++;
            if (warn_ok(ctx, W_LIMIT)) {
                ls_plg_warn(ctx->ins, "max_connections %" PRId64 " reached: closing a new "
                            "connection (%" PRIu64 " refused so far)", ctx->max_connections,
                            ctx->n_refused);
            }
            close(fd);
            continue;
        }
        c = ls_calloc(1, sizeof(*c));
        c->ctx = ctx;
        c->fd = fd;
        c->peer = sa;
        c->last_seen = ls_mono_now();
        ls_buf_init(&c->in, 0);
        ls_buf_init(&c->out, FWD_OUT_MAX);
        ls_buf_init(&c->inflated, (size_t)ctx->decompression_size_limit);
        if (sa.ss_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, c->addr, sizeof(c->addr));
        } else if (sa.ss_family == AF_INET6) {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, c->addr,
                      sizeof(c->addr));
        } else {
            snprintf(c->addr, sizeof(c->addr), "unknown");
        }
        if (ctx->resolve_hostname) {
            char host[NI_MAXHOST];
            if (getnameinfo((struct sockaddr *)&sa, salen, host, sizeof(host), NULL, 0,
                            NI_NAMEREQD) == 0) {
                c->host = ls_strdup(host);
            }
        }
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (ctx->send_keepalive_packet) {
            (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        }
        if (ctx->linger_timeout > 0) {
            struct linger lg = { 1, (int)ctx->linger_timeout };
            (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
        c->next = ctx->conns;
        if (ctx->conns) {
            ctx->conns->prev = c;
        }
        ctx->conns = c;
        ctx->nconns++;
        c->io = ls_io_new(ctx->ins, fd, LS_IO_READ, conn_cb, c);
        if (ctx->tls) {
            c->ssl = SSL_new(ctx->tls);
            if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) {
                conn_close(c);
                continue;
            }
            c->state = C_TLS;
            tls_accept_step(c);
            continue;
        }
        c->state = C_OPEN;
        if (ctx->security) {
            send_helo(c);
        }
        conn_flush(c);
    }
}

/* UDP heartbeat: answer every datagram with one 0x00 byte to its source (fluentd) */
static void udp_cb(struct ls_io *io, int revents, void *arg)
{
    struct fwd_ctx *ctx = arg;
    char buf[128];
    int i;
    LS_UNUSED(io);
    LS_UNUSED(revents);

    for (i = 0; i < 256; i++) {
        struct sockaddr_storage sa;
        socklen_t salen = sizeof(sa);
        ssize_t n = recvfrom(ctx->ufd, buf, sizeof(buf), 0, (struct sockaddr *)&sa, &salen);
        if (n < 0) {
            return;
        }
        (void)sendto(ctx->ufd, "\0", 1, MSG_DONTWAIT, (struct sockaddr *)&sa, salen);
    }
}

static int open_socket(struct fwd_ctx *ctx, int type)
{
    struct addrinfo hints, *res = NULL, *ai;
    char port[16];
    int fd = -1, one = 1, rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = type;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%" PRId64, ctx->port);
    rc = getaddrinfo(ctx->bind, port, &hints, &res);
    if (rc != 0) {
        ls_plg_error(ctx->ins, "cannot resolve bind '%s' (%s)", ctx->bind, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            continue;
        }
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
            (type != SOCK_STREAM || listen(fd, 1024) == 0)) {
            break;
        }
        ls_plg_error(ctx->ins, "%s() %s:%s failed (%d: %s)",
                     type == SOCK_STREAM ? "bind/listen tcp" : "bind udp", ctx->bind, port,
                     errno, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void conn_cb(struct ls_io *io, int revents, void *arg);

static void process_all(struct fwd_ctx *ctx)
{
    struct fwd_conn *c, *next;

    /* the interrupted request first: one request at a time keeps positions in order */
    if (ctx->active) {
        conn_process(ctx->active);
    }
    for (c = ctx->conns; c && !ctx->paused; c = next) {
        next = c->next;
        if (c->ssl && c->state != C_TLS && SSL_pending(c->ssl) > 0) {
            conn_cb(c->io, LS_IO_READ, c);      /* decrypted bytes wake no watcher */
        } else {
            conn_process(c);
        }
    }
    for (c = ctx->conns; c; c = c->next) {
        conn_update_io(c);
    }
}

static void retry_cb(struct ls_timer *t, void *arg)
{
    struct fwd_ctx *ctx = arg;
    LS_UNUSED(t);

    /* a safety net besides .resume: try the interrupted request again */
    if (ctx->active || ctx->paused) {
        ctx->paused = false;
        process_all(ctx);
    }
    if (ctx->paused) {
        ls_timer_start(ctx->retry, 1.0, 0);
    }
}

static int fwd_start(struct ls_instance *ins)
{
    struct fwd_ctx *ctx = ins->ctx;
    char err[512];
    uint64_t durable = ls_source_durable_pos(ins->engine, ctx->src);

    if (ctx->ids_dir) {
        struct stat st;
        if (mkdir(ctx->ids_dir, 0700) != 0 && errno != EEXIST) {
            ls_plg_error(ins, "cannot make '%s' for the chunk id journal (%d: %s); set "
                         "chunk_id_file", ctx->ids_dir, errno, strerror(errno));
            return LS_ERROR;
        }
        /* in /tmp another user could have made it first: it must be ours and private */
        if (lstat(ctx->ids_dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
            (st.st_mode & 077) != 0) {
            ls_plg_error(ins, "'%s' is not a private directory of this user; set chunk_id_file",
                         ctx->ids_dir);
            return LS_ERROR;
        }
        ls_plg_warn(ins, "neither %s nor the working directory is writable: the chunk id "
                    "journal is '%s', which does not last past a reboot (set chunk_id_file or "
                    "<system> root_dir)", FWD_STATE_DIR, ctx->ids_path);
    }
    ctx->ids = fwd_ids_open(ctx->ids_path, ctx->chunk_id_expiry, (size_t)ctx->chunk_id_max,
                            durable, err, sizeof(err));
    if (ctx->ids == NULL) {
        ls_plg_error(ins, "chunk id journal: %s", err);
        return LS_ERROR;
    }
    ctx->seq = fwd_ids_next_seq(ctx->ids);
    ctx->lfd = open_socket(ctx, SOCK_STREAM);
    if (ctx->lfd < 0) {
        return LS_ERROR;
    }
    ctx->ufd = open_socket(ctx, SOCK_DGRAM);
    if (ctx->ufd < 0) {
        return LS_ERROR;
    }
    ctx->lio = ls_io_new(ins, ctx->lfd, LS_IO_READ, accept_cb, ctx);
    ctx->uio = ls_io_new(ins, ctx->ufd, LS_IO_READ, udp_cb, ctx);
    ctx->retry = ls_timer_new(ins, retry_cb, ctx);
    ls_plg_info(ins, "listening on %s:%" PRId64 " (tcp%s%s, udp heartbeat); %zu chunk ids "
                "remembered in '%s'", ctx->bind, ctx->port, ctx->tls ? " tls" : "",
                ctx->security ? ", shared_key handshake" : "", fwd_ids_count(ctx->ids),
                ctx->ids_path);
    return LS_OK;
}

static void fwd_stop(struct ls_instance *ins)
{
    struct fwd_ctx *ctx = ins->ctx;

    if (ctx->lfd >= 0 && ctx->n_evicted) {
        ls_plg_info(ins, "since start: %" PRIu64 " idle connections closed at max_connections "
                    "for new ones", ctx->n_evicted);
    }
    if (ctx->lfd >= 0 && (ctx->n_refused || ctx->n_broken || ctx->n_oversize || ctx->n_invalid ||
                          ctx->n_auth_failed || ctx->n_tls_failed || ctx->n_duplicate)) {
        ls_plg_info(ins, "since start: %" PRIu64 " connections over max_connections, %" PRIu64
                    " malformed, %" PRIu64 " over chunk_size_limit, %" PRIu64 " invalid events, "
                    "%" PRIu64 " failed handshakes, %" PRIu64 " failed TLS handshakes, %" PRIu64
                    " retransmitted chunks not written again", ctx->n_refused, ctx->n_broken,
                    ctx->n_oversize, ctx->n_invalid, ctx->n_auth_failed, ctx->n_tls_failed,
                    ctx->n_duplicate);
    }

    while (ctx->conns) {
        conn_close(ctx->conns);
    }
    ls_io_free(ctx->lio);
    ls_io_free(ctx->uio);
    ctx->lio = ctx->uio = NULL;
    if (ctx->lfd >= 0) {
        close(ctx->lfd);
    }
    if (ctx->ufd >= 0) {
        close(ctx->ufd);
    }
    ctx->lfd = ctx->ufd = -1;
    ls_timer_free(ctx->retry);
    ctx->retry = NULL;
}

static void fwd_pause(struct ls_instance *ins)
{
    struct fwd_ctx *ctx = ins->ctx;
    struct fwd_conn *c;

    ctx->paused = true;
    for (c = ctx->conns; c; c = c->next) {
        conn_update_io(c);
    }
    if (ctx->retry) {
        ls_timer_start(ctx->retry, 1.0, 0);
    }
}

static void fwd_resume(struct ls_instance *ins)
{
    struct fwd_ctx *ctx = ins->ctx;

    ctx->paused = false;
    /* not from inside the core's call: let the loop run it */
    if (ctx->retry) {
        ls_timer_start(ctx->retry, 0.0, 0);
    }
}

static void fwd_destroy(struct ls_instance *ins)
{
    struct fwd_ctx *ctx = ins->ctx;
    size_t i;

    fwd_stop(ins);
    fwd_ids_close(ctx->ids);
    ctx->ids = NULL;
    for (i = 0; i < ctx->nusers; i++) {
        ls_param_release(user_params, &ctx->users[i]);
    }
    ls_free(ctx->users);
    for (i = 0; i < ctx->nclients; i++) {
        ls_free(ctx->clients[i].shared_key);
        ls_free(ctx->clients[i].desc);
        ls_strv_release(&ctx->clients[i].users);
    }
    ls_free(ctx->clients);
    ls_param_release(security_params, ctx);
    if (ctx->tls) {
        SSL_CTX_free(ctx->tls);
    }
    ls_free(ctx->ids_path);
    ls_free(ctx->ids_dir);
    ls_free(ctx->scratch);
    ls_buf_release(&ctx->tagbuf);
    ls_record_release(&ctx->rec);
    ls_arena_release(&ctx->arena);
}

static int fwd_check(struct ls_instance *ins)
{
    struct fwd_ctx *ctx = ins->ctx;

    return ls_check_writable(ins, "chunk_id_file", ctx->ids_path, false);
}

/* ---- secure_forward: fluent-plugin-secure-forward's input ---- */

/*
 * in_secure_forward (0.4) speaks what in_forward with <security> and <transport tls> speaks
 * (fluentd took its HELO/PING/PONG handshake into v0.14's forward), so it is in_forward set
 * up from the plugin's flat parameters: port 24284, self_hostname (with __HOSTNAME__ or
 * ${hostname} replaced by hostname, default the host name), shared_key,
 * allow_anonymous_source, authentication (user_auth) with <user> and <client> in the source
 * itself, ssl_version, ssl_ciphers, and the certificate as the plugin finds it: cert_path,
 * else one made and signed by ca_cert_path, else a self-signed one; secure true requires one
 * of the first two (with their passphrases), secure false warns.
 */
static const struct ls_param sfwd_params[] = {
    { "port", LS_P_INT, "24284", 0, offsetof(struct fwd_ctx, port), "TCP port", NULL, NULL, 0,
      65535 },
    FWD_COMMON_ROWS
    { "secure", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0,
      "(required) true: a certificate from cert_path or made by ca_cert_path; false: a "
      "self-signed one (no protection from a man in the middle)", NULL, NULL, 0, 0 },
    { "self_hostname", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "(required) the name sent in PONG; __HOSTNAME__ and ${hostname} are replaced", NULL,
      NULL, 0, 0 },
    { "hostname", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "what __HOSTNAME__ and ${hostname} stand for (default: the host name)", NULL, NULL, 0,
      0 },
    { "shared_key", LS_P_SECRET, NULL, LS_PF_NO_STORE, 0, "(required) the handshake's key",
      NULL, NULL, 0, 0 },
    { "allow_anonymous_source", LS_P_BOOL, "true", LS_PF_NO_STORE, 0,
      "false: only the <client> peers", NULL, NULL, 0, 0 },
    { "authentication", LS_P_BOOL, "false", LS_PF_NO_STORE, 0,
      "clients log in as a <user> (username, password)", NULL, NULL, 0, 0 },
    { "allow_keepalive", LS_P_BOOL, "true", LS_PF_NO_STORE, 0, "accepted", NULL, NULL, 0, 0 },
    { "cert_auto_generate", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0,
      "accepted (0.2's name: a certificate is made when none is given)", NULL, NULL, 0, 0 },
    { "ssl_version", LS_P_STR, "TLSv1_2", LS_PF_NO_STORE, 0, "lowest TLS version", NULL, NULL,
      0, 0 },
    { "ssl_ciphers", LS_P_STR, NULL, LS_PF_NO_STORE, 0, "OpenSSL cipher list", NULL, NULL, 0,
      0 },
    { "cert_path, private_key_path, private_key_passphrase", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "the server certificate (PEM) and its key", NULL, NULL, 0, 0 },
    { "ca_cert_path, ca_private_key_path, ca_private_key_passphrase", LS_P_STR, NULL,
      LS_PF_NO_STORE, 0, "make the server certificate at start, signed by this CA", NULL, NULL,
      0, 0 },
    { "generate_private_key_length, generate_cert_*", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "the made certificate: key bits (2048), country (US), state (CA), locality (Mountain "
      "View), common_name (host name)", NULL, NULL, 0, 0 },
    { "read_length", LS_P_SIZE, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL, 0, 0 },
    { "read_interval_msec", LS_P_INT, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL, 0, 0 },
    { "socket_interval_msec", LS_P_INT, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL, 0,
      0 },
    { "user: username, password", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "`<user>` (repeatable): a login for authentication", NULL, NULL, 0, 0 },
    { "client: host, network, shared_key, users", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "`<client>` (repeatable): a peer by host name or network, its own shared_key, its users",
      NULL, NULL, 0, 0 },
    LS_PARAM_END
};

/* the flat parameters that are not in_forward's, bound (and checked) by the binder */
struct sf_flags {
    bool secure;
    bool authentication;
    char *hostname;
};

static const struct ls_param sf_flag_params[] = {
    { "secure", LS_P_BOOL, NULL, LS_PF_REQUIRED, offsetof(struct sf_flags, secure), NULL, NULL,
      NULL, 0, 0 },
    { "authentication", LS_P_BOOL, "false", 0, offsetof(struct sf_flags, authentication), NULL,
      NULL, NULL, 0, 0 },
    { "hostname", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct sf_flags, hostname), NULL,
      NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static char *replace_all(const char *s, const char *from, const char *to)
{
    struct ls_buf b;
    size_t n = strlen(from), len;
    const char *p;

    ls_buf_init(&b, 0);
    while ((p = strstr(s, from)) != NULL) {
        ls_buf_append(&b, s, (size_t)(p - s));
        ls_buf_append(&b, to, strlen(to));
        s = p + n;
    }
    ls_buf_append(&b, s, strlen(s));
    ls_buf_cstr(&b);
    return ls_buf_detach(&b, &len);
}

static int sfwd_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                     size_t errlen)
{
    struct fwd_ctx *ctx = ins->ctx;
    struct fwd_tls_conf tc;
    struct sf_flags fl;
    const char *v;
    bool secure;
    char host[256] = "localhost";

    memset(&fl, 0, sizeof(fl));
    if (ls_param_bind(sf_flag_params, sec, &fl, err, errlen) != LS_OK) {
        ls_param_release(sf_flag_params, &fl);
        return LS_ERROR;
    }
    secure = fl.secure;
    if (ls_param_bind(security_params, sec, ctx, err, errlen) != LS_OK) {
        ls_param_release(sf_flag_params, &fl);
        return LS_ERROR;
    }
    ctx->user_auth = fl.authentication;
    snprintf(host, sizeof(host), "%s", fl.hostname ? fl.hostname : "");
    if (fl.hostname == NULL) {
        (void)gethostname(host, sizeof(host) - 1);
    }
    ls_param_release(sf_flag_params, &fl);
    for (int k = 0; k < 2; k++) {
        char *r = replace_all(ctx->self_hostname, k ? "${hostname}" : "__HOSTNAME__", host);
        ls_free(ctx->self_hostname);
        ctx->self_hostname = r;
    }
    if (security_users_clients(ctx, sec, err, errlen) != LS_OK) {
        return LS_ERROR;
    }
    /* the certificate settings have <transport tls>'s names, the version and ciphers not */
    memset(&tc, 0, sizeof(tc));
    if (ls_param_bind(tls_params, sec, &tc, err, errlen) != LS_OK) {
        return LS_ERROR;
    }
    if ((v = ls_conf_get(sec, "ssl_version")) != NULL) {
        ls_free(tc.version);
        tc.version = ls_strdup(v);
    }
    if ((v = ls_conf_get(sec, "ssl_ciphers")) != NULL) {
        ls_free(tc.ciphers);
        tc.ciphers = ls_strdup(v);
    }
    v = NULL;
    if (secure && tc.cert_path == NULL && tc.ca_cert_path == NULL) {
        v = "cert_path or ca_cert_path required for secure communication";
    } else if (secure && tc.cert_path && tc.private_key_path == NULL) {
        v = "private_key_path required";
    } else if (secure && tc.cert_path && tc.private_key_passphrase == NULL) {
        v = "private_key_passphrase required";
    } else if (secure && !tc.cert_path && tc.ca_private_key_path == NULL) {
        v = "ca_private_key_path required";
    } else if (secure && !tc.cert_path && tc.ca_private_key_passphrase == NULL) {
        v = "ca_private_key_passphrase required";
    }
    if (v) {
        snprintf(err, errlen, "%s:%d: %s", sec->file, sec->line, v);
        ls_param_release(tls_params, &tc);
        return LS_ERROR;
    }
    if (!secure) {
        ls_warn("%s:%d: 'insecure' mode has vulnerability for man-in-the-middle attacks for "
                "clients (output plugins).", sec->file, sec->line);
        tc.insecure = true;     /* without a cert_path: a self-signed certificate */
    }
    if (setup_tls(ctx, sec, &tc, err, errlen) != LS_OK) {
        return LS_ERROR;
    }
    return fwd_init(ins, sec, err, errlen);
}

const struct ls_plugin ls_plugin_in_secure_forward = {
    .name = "secure_forward",
    .kind = LS_PLUGIN_INPUT,
    .description = "fluent-plugin-secure-forward's server: in_forward over TLS with the "
                   "shared_key handshake, from the plugin's parameters",
    .params = sfwd_params,
    .ctx_size = sizeof(struct fwd_ctx),
    .init = sfwd_init,
    .destroy = fwd_destroy,
    .start = fwd_start,
    .stop = fwd_stop,
    .pause = fwd_pause,
    .resume = fwd_resume,
    .check = fwd_check,
};

const struct ls_plugin ls_plugin_in_forward = {
    .name = "forward",
    .kind = LS_PLUGIN_INPUT,
    .description = "Forward Protocol v1 server (fluent-logger, fluentd/Fluent Bit/logship "
                   "out_forward), acks only once records are durable",
    .params = fwd_params,
    .ctx_size = sizeof(struct fwd_ctx),
    .init = fwd_init,
    .destroy = fwd_destroy,
    .start = fwd_start,
    .stop = fwd_stop,
    .pause = fwd_pause,
    .resume = fwd_resume,
    .check = fwd_check,
};
