/*
 * fwd.h - out_forward's shared state: servers (nodes), connections, jobs.
 *
 * Threads: the loop thread owns chunks (write, write_done); the worker pool
 * reads a chunk and gzips it into a job's message; out_forward's own sender
 * threads (flush_thread_count) do the blocking network work with poll()
 * deadlines, and one heartbeat thread probes the nodes. Everything shared
 * between them is under fw->mu. A finished job comes back to the loop through
 * an eventfd, so the loop never waits on the network.
 */
#ifndef LS_FWD_H
#define LS_FWD_H

#include <pthread.h>
#include <sys/socket.h>
#include "msgpack.h"       /* agent/msgpack.h: libmsgpack-c and its object helpers */
#include <openssl/ssl.h>

#include "plugin.h"

#define FW_ADDRS_MAX 8
#define FW_WINDOW 1000          /* heartbeat gaps kept for the phi detector (fluentd's) */

struct fw_conn;

struct fw_node {
    /* <server> parameters */
    char *host;
    char *name;
    int64_t port;
    char *shared_key;
    char *username;
    char *password;
    bool standby;
    int64_t weight;

    char label[300];            /* "name (host:port)" for logs */
    /* DNS cache (under mu) */
    struct sockaddr_storage addrs[FW_ADDRS_MAX];
    socklen_t addrlens[FW_ADDRS_MAX];
    int naddrs;
    double resolved_at;
    /* failure detection (under mu) */
    bool available;
    int recover_count;
    double last_arrival;
    double gaps[FW_WINDOW];
    int ngaps, gap_next;
    struct fw_conn *idle;       /* keepalive pool */
};

struct fw_conn {
    int fd;
    SSL *ssl;
    struct ls_buf rbuf;         /* bytes read, not yet taken as objects */
    size_t consumed;            /* the last object's bytes, dropped at the next read */
    struct fw_node *node;
    double last_used;
    struct fw_conn *next;
};

struct fw_job {
    struct ls_chunk *chunk;     /* touched on the loop thread only */
    char *tag;
    uint64_t records;
    char chunk_b64[32];         /* option.chunk: Base64 of the 16-byte chunk id, "\n"-ended */
    struct ls_buf msg;          /* the whole PackedForward message */
    int rc;
    char err[256];
    char where[300];
    bool verify;                /* not a chunk: the verify_connection_at_startup result */
    struct fw_job *next;
};

enum fw_hb { FW_HB_TRANSPORT, FW_HB_TCP, FW_HB_UDP, FW_HB_NONE };

struct fw {
    /* parameters */
    int transport;              /* 0 tcp, 1 tls */
    double send_timeout;
    double connect_timeout;     /* 0: not set, send_timeout bounds it */
    int heartbeat_type;
    double heartbeat_interval;
    double recover_wait;
    double hard_timeout;
    bool phi_failure_detector;
    double phi_threshold;
    bool require_ack_response;
    double ack_response_timeout;
    char *expire_dns_cache;     /* unset: cache forever */
    bool dns_round_robin;
    bool ignore_network_errors_at_startup;
    bool verify_connection_at_startup;
    int compress;               /* 0 text, 1 gzip */
    bool keepalive;
    char *keepalive_timeout;    /* unset: forever */
    bool send_keepalive_packet;
    int tls_version;
    char *tls_ciphers;
    bool tls_insecure_mode;
    bool tls_allow_self_signed_cert;
    bool tls_verify_hostname;
    struct ls_strv tls_cert_path;
    struct ls_strv tls_ca_cert_path;
    char *tls_client_cert_path;
    char *tls_client_private_key_path;
    char *tls_client_private_key_passphrase;

    /* <security> */
    bool security;
    char *self_hostname;
    char *sec_shared_key;

    /* derived */
    double dns_ttl;             /* < 0: forever */
    double ka_timeout;          /* < 0: forever */
    struct ls_instance *ins;
    struct fw_node *nodes;
    size_t nnodes;
    SSL_CTX *ssl;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool mu_ready;
    bool quit;
    struct fw_job *q_head, *q_tail;        /* to the senders */
    struct fw_job *d_head, *d_tail;        /* back to the loop */
    pthread_t *threads;
    int nthreads;
    pthread_t hb_thread;
    bool hb_running;
    int efd;
    struct ls_io *eio;

    /* load balancing (under mu) */
    size_t *wa;                 /* weight array of node indexes */
    size_t nwa, cursor;
    bool wa_dirty;
    uint64_t rng;
};

/* fwd_net.c */
/* TLS client context (libssl loaded with dlopen, agent/ssl_api.h). */
int fw_tls_init(struct fw *fw, char *err, size_t errlen);
void fw_tls_free(struct fw *fw);
/* Resolve node's address (cache per expire_dns_cache). LS_OK or LS_ERROR with err. */
int fw_resolve(struct fw *fw, struct fw_node *n, bool force, char *err, size_t errlen);
/* Connect, TLS, handshake. NULL with err on failure. deadline: ls_mono_now() based. */
struct fw_conn *fw_connect(struct fw *fw, struct fw_node *n, double deadline, char *err,
                           size_t errlen);
void fw_conn_close(struct fw_conn *c);
/* After a chunk went out on a connection not kept alive: see fwd_net.c */
void fw_conn_close_gracefully(struct fw_conn *c);
int fw_conn_write(struct fw *fw, struct fw_conn *c, const void *p, size_t n, double deadline,
                  char *err, size_t errlen);
/* Next MessagePack object from c into res. LS_OK, or LS_ERROR with err (EOF, timeout). */
int fw_conn_next(struct fw *fw, struct fw_conn *c, msgpack_unpacked *res, double deadline,
                 char *err, size_t errlen);
bool fw_quitting(struct fw *fw);
/* Server messages (untrusted; tests/fuzz/fuzz_forward_out.c). HELO: LS_OK with the nonce and
 * auth salt (pointing into o). PONG: LS_OK when it accepts us with the right digest, else
 * LS_ERROR with the reason in err. */
int fw_helo_parse(const msgpack_object *o, const char **nonce, size_t *nonce_len,
                  const char **auth, size_t *auth_len);
int fw_pong_check(const msgpack_object *o, const char *self_hostname, const char *salt,
                  const char *nonce, size_t nonce_len, const char *key, char *err, size_t errlen);
/* Is o the map {"ack": id}? */
bool fw_is_ack(const msgpack_object *o, const char *id, size_t idlen);

#endif
