/*
 * fwd_net.c - out_forward's connections: DNS cache, non-blocking connect,
 * TLS (OpenSSL, CA verification on by default), the shared_key handshake
 * (HELO, PING, PONG as fluentd's handshake_protocol.rb), and reads and
 * writes bounded by deadlines. Runs on out_forward's own threads, never on
 * the loop; every wait is a poll() of at most 200 ms so that a stopping
 * process is not held by a stalled peer.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "fwd.h"
#include "ssl_api.h"
#include "log.h"
#include "compress.h"

#define FW_MSG_MAX (1 << 20)    /* a handshake message or an ack is far smaller */

bool fw_quitting(struct fw *fw)
{
    bool q;

    pthread_mutex_lock(&fw->mu);
    q = fw->quit;
    pthread_mutex_unlock(&fw->mu);
    return q;
}

/* 1: ready, 0: deadline passed, -1: stopping */
static int fw_wait(struct fw *fw, int fd, short ev, double deadline)
{
    for (;;) {
        struct pollfd p = { .fd = fd, .events = ev };
        double left = deadline - ls_mono_now();
        int ms, r;

        if (fw_quitting(fw)) {
            return -1;
        }
        if (left <= 0) {
            return 0;
        }
        ms = left > 0.2 ? 200 : (int)(left * 1000) + 1;
        r = poll(&p, 1, ms);
        if (r > 0) {
            return 1;
        }
        if (r < 0 && errno != EINTR) {
            return 1;   /* let the caller's read/write report the error */
        }
    }
}

static void fw_ssl_err(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[200];

    if (e) {
        ERR_error_string_n(e, buf, sizeof(buf));
    } else {
        snprintf(buf, sizeof(buf), "%s", errno ? strerror(errno) : "connection closed");
    }
    ERR_clear_error();
    snprintf(err, errlen, "%s: %s", what, buf);
}

static int fw_pass_cb(char *buf, int size, int rwflag, void *u)
{
    size_t n = u ? strlen(u) : 0;

    if (n > (size_t)size) {
        return 0;
    }
    memcpy(buf, u, n);
    return (int)n;
}

static int fw_verify_cb(int ok, X509_STORE_CTX *x)
{
    int e = X509_STORE_CTX_get_error(x);

    /* tls_allow_self_signed_cert: a server certificate that signs itself is accepted */
    if (!ok && (e == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
                || e == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN)) {
        return 1;
    }
    return ok;
}

void fw_tls_free(struct fw *fw)
{
    if (fw->ssl) {
        SSL_CTX_free(fw->ssl);
        fw->ssl = NULL;
    }
}

int fw_tls_init(struct fw *fw, char *err, size_t errlen)
{
    static const int versions[] = { TLS1_1_VERSION, TLS1_2_VERSION, TLS1_3_VERSION };
    SSL_CTX *ctx;
    size_t i, ncas = 0;

    if (ssl_api_load(err, errlen) != LS_OK) {
        return LS_ERROR;
    }
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        fw_ssl_err(err, errlen, "TLS context");
        return LS_ERROR;
    }
    fw->ssl = ctx;
    SSL_CTX_set_min_proto_version(ctx, versions[fw->tls_version]);
    if (fw->tls_ciphers && *fw->tls_ciphers && !SSL_CTX_set_cipher_list(ctx, fw->tls_ciphers)) {
        fw_ssl_err(err, errlen, "tls_ciphers");
        return LS_ERROR;
    }
    if (fw->tls_insecure_mode) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER,
                           fw->tls_allow_self_signed_cert ? fw_verify_cb : NULL);
        for (i = 0; i < fw->tls_cert_path.n + fw->tls_ca_cert_path.n; i++) {
            const char *p = i < fw->tls_cert_path.n ? fw->tls_cert_path.v[i]
                                                     : fw->tls_ca_cert_path.v[i - fw->tls_cert_path.n];
            if (!SSL_CTX_load_verify_locations(ctx, p, NULL)) {
                char what[300];

                snprintf(what, sizeof(what), "CA certificate '%s'", p);
                fw_ssl_err(err, errlen, what);
                return LS_ERROR;
            }
            ncas++;
        }
        if (ncas == 0 && !SSL_CTX_set_default_verify_paths(ctx)) {
            fw_ssl_err(err, errlen, "system CA certificates");
            return LS_ERROR;
        }
    }
    if (fw->tls_client_cert_path) {
        if (fw->tls_client_private_key_passphrase) {
            SSL_CTX_set_default_passwd_cb(ctx, fw_pass_cb);
            SSL_CTX_set_default_passwd_cb_userdata(ctx, fw->tls_client_private_key_passphrase);
        }
        if (!SSL_CTX_use_certificate_chain_file(ctx, fw->tls_client_cert_path)
            || !SSL_CTX_use_PrivateKey_file(ctx, fw->tls_client_private_key_path
                                                ? fw->tls_client_private_key_path
                                                : fw->tls_client_cert_path, SSL_FILETYPE_PEM)
            || !SSL_CTX_check_private_key(ctx)) {
            fw_ssl_err(err, errlen, "client certificate or key");
            return LS_ERROR;
        }
    }
    return LS_OK;
}

int fw_resolve(struct fw *fw, struct fw_node *n, bool force, char *err, size_t errlen)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL, *ai;
    char port[16];
    double now = ls_mono_now();
    int rc, k = 0;
    struct sockaddr_storage addrs[FW_ADDRS_MAX];
    socklen_t lens[FW_ADDRS_MAX];

    pthread_mutex_lock(&fw->mu);
    if (!force && n->naddrs > 0 && (fw->dns_ttl < 0 || now - n->resolved_at < fw->dns_ttl)) {
        pthread_mutex_unlock(&fw->mu);
        return LS_OK;
    }
    pthread_mutex_unlock(&fw->mu);
    snprintf(port, sizeof(port), "%lld", (long long)n->port);
    rc = getaddrinfo(n->host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve '%s': %s", n->host, gai_strerror(rc));
        return LS_ERROR;
    }
    for (ai = res; ai && k < FW_ADDRS_MAX; ai = ai->ai_next) {
        if (ai->ai_addrlen <= sizeof(addrs[0])) {
            memcpy(&addrs[k], ai->ai_addr, ai->ai_addrlen);
            lens[k++] = ai->ai_addrlen;
        }
    }
    freeaddrinfo(res);
    if (k == 0) {
        snprintf(err, errlen, "'%s' has no address", n->host);
        return LS_ERROR;
    }
    pthread_mutex_lock(&fw->mu);
    memcpy(n->addrs, addrs, sizeof(addrs));
    memcpy(n->addrlens, lens, sizeof(lens));
    n->naddrs = k;
    n->resolved_at = now;
    pthread_mutex_unlock(&fw->mu);
    return LS_OK;
}

void fw_conn_close_gracefully(struct fw_conn *c)
{
    char sink[4096];

    if (c == NULL || c->ssl == NULL || c->fd < 0) {
        fw_conn_close(c);
        return;
    }
    /*
     * A TLS server may have sent what this side never reads (TLS 1.3 session tickets): closing
     * with it unread makes the kernel answer with an RST, which some servers take as a failed
     * connection and drop what they had not processed yet. So: close_notify, our half of the
     * stream closed, and what has arrived read and dropped; no waiting for the server.
     */
    (void)SSL_shutdown(c->ssl);
    (void)shutdown(c->fd, SHUT_WR);
    while (recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT) > 0) {
    }
    ERR_clear_error();
    fw_conn_close(c);
}

void fw_conn_close(struct fw_conn *c)
{
    if (c == NULL) {
        return;
    }
    if (c->ssl) {
        SSL_free(c->ssl);
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    ls_buf_release(&c->rbuf);
    ls_free(c);
}

int fw_conn_write(struct fw *fw, struct fw_conn *c, const void *p, size_t n, double deadline,
                  char *err, size_t errlen)
{
    const char *b = p;

    while (n > 0) {
        ssize_t w;
        short ev = POLLOUT;

        if (c->ssl) {
            int r = SSL_write(c->ssl, b, n > INT32_MAX ? INT32_MAX : (int)n);

            if (r > 0) {
                w = r;
            } else {
                int e = SSL_get_error(c->ssl, r);

                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                    fw_ssl_err(err, errlen, "TLS write");
                    return LS_ERROR;
                }
                ev = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
                w = -1;
                errno = EAGAIN;
            }
        } else {
            w = send(c->fd, b, n, MSG_NOSIGNAL);
        }
        if (w > 0) {
            b += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            snprintf(err, errlen, "send: %s", strerror(errno));
            return LS_ERROR;
        }
        int r = fw_wait(fw, c->fd, ev, deadline);
        if (r <= 0) {
            snprintf(err, errlen, r == 0 ? "send timed out (send_timeout)" : "stopping");
            return LS_ERROR;
        }
    }
    return LS_OK;
}

/* >0 bytes, 0 EOF, -1 error (err set) */
static ssize_t fw_conn_read(struct fw *fw, struct fw_conn *c, void *p, size_t n, double deadline,
                            const char *what, char *err, size_t errlen)
{
    for (;;) {
        ssize_t r;
        short ev = POLLIN;

        if (c->ssl) {
            int s = SSL_read(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);

            if (s > 0) {
                return s;
            }
            int e = SSL_get_error(c->ssl, s);
            if (e == SSL_ERROR_ZERO_RETURN) {
                return 0;
            }
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0) {
                    return 0;
                }
                fw_ssl_err(err, errlen, "TLS read");
                return -1;
            }
            ev = e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
        } else {
            r = recv(c->fd, p, n, 0);
            if (r >= 0) {
                return r;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                snprintf(err, errlen, "recv: %s", strerror(errno));
                return -1;
            }
        }
        int w = fw_wait(fw, c->fd, ev, deadline);
        if (w <= 0) {
            snprintf(err, errlen, w == 0 ? "no %s in time" : "stopping", what);
            return -1;
        }
    }
}

int fw_conn_next(struct fw *fw, struct fw_conn *c, msgpack_unpacked *res, double deadline,
                 char *err, size_t errlen)
{
    ls_buf_consume(&c->rbuf, c->consumed);
    c->consumed = 0;
    for (;;) {
        struct ls_mp_scan sc;
        size_t n = 0, off = 0;
        long w;
        ssize_t r;

        /* only a whole object reaches libmsgpack-c (see ls_mp_scan) */
        memset(&sc, 0, sizeof(sc));
        w = ls_mp_scan(&sc, c->rbuf.p, c->rbuf.len, FW_MSG_MAX);
        if (w > 0) {
            n = (size_t)w;
            if (msgpack_unpack_next(res, c->rbuf.p, n, &off) != MSGPACK_UNPACK_SUCCESS) {
                snprintf(err, errlen, "the server sent invalid MessagePack");
                return LS_ERROR;
            }
            /* res's strings point into these bytes: they stay until the next call */
            c->consumed = n;
            return LS_OK;
        }
        if (w < 0 || c->rbuf.len > FW_MSG_MAX) {
            snprintf(err, errlen, "the server sent invalid or oversized MessagePack");
            return LS_ERROR;
        }
        if (ls_buf_reserve(&c->rbuf, 4096) != LS_OK) {
            snprintf(err, errlen, "out of memory");
            return LS_ERROR;
        }
        r = fw_conn_read(fw, c, c->rbuf.p + c->rbuf.len, c->rbuf.cap - c->rbuf.len, deadline,
                         "answer", err, errlen);
        if (r == 0) {
            snprintf(err, errlen, "the server closed the connection");
            return LS_ERROR;
        }
        if (r < 0) {
            return LS_ERROR;
        }
        c->rbuf.len += (size_t)r;
    }
}

static int fw_pack_write(void *data, const char *buf, size_t len)
{
    return ls_buf_append(data, buf, len) == LS_OK ? 0 : -1;
}

int fw_helo_parse(const msgpack_object *o, const char **nonce, size_t *nonce_len,
                  const char **auth, size_t *auth_len)
{
    const msgpack_object *nonce_o, *auth_o;

    *auth = "";
    *auth_len = 0;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 2
        || !ls_msgpack_str_eq(&o->via.array.ptr[0], "HELO")
        || (nonce_o = ls_msgpack_map_get(&o->via.array.ptr[1], "nonce")) == NULL
        || !ls_msgpack_bytes(nonce_o, nonce, nonce_len)) {
        return LS_ERROR;
    }
    auth_o = ls_msgpack_map_get(&o->via.array.ptr[1], "auth");
    if (auth_o && !ls_msgpack_bytes(auth_o, auth, auth_len)) {
        *auth = "";
        *auth_len = 0;
    }
    return LS_OK;
}

int fw_pong_check(const msgpack_object *o, const char *self_hostname, const char *salt,
                  const char *nonce, size_t nonce_len, const char *key, char *err, size_t errlen)
{
    const msgpack_object *a;
    const char *host, *dig, *reason;
    size_t host_len, dig_len, reason_len;
    char want[129];

    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 5
        || !ls_msgpack_str_eq(&o->via.array.ptr[0], "PONG")) {
        snprintf(err, errlen, "the server's answer to PING is not a PONG");
        return LS_ERROR;
    }
    a = o->via.array.ptr;
    if (a[1].type != MSGPACK_OBJECT_BOOLEAN || !a[1].via.boolean) {
        if (!ls_msgpack_bytes(&a[2], &reason, &reason_len)) {
            reason = "";
            reason_len = 0;
        }
        snprintf(err, errlen, "authentication failed: %.*s", (int)(reason_len > 200 ? 200 : reason_len),
                 reason);
        return LS_ERROR;
    }
    if (!ls_msgpack_bytes(&a[3], &host, &host_len) || !ls_msgpack_bytes(&a[4], &dig, &dig_len)) {
        snprintf(err, errlen, "invalid PONG");
        return LS_ERROR;
    }
    if (host_len == strlen(self_hostname) && memcmp(host, self_hostname, host_len) == 0) {
        snprintf(err, errlen, "same hostname between input and output: invalid configuration "
                 "(self_hostname must differ)");
        return LS_ERROR;
    }
    const void *parts[] = { salt, host, nonce, key };
    size_t lens[] = { strlen(salt), host_len, nonce_len, strlen(key) };
    ls_sha512_hex(parts, lens, 4, want);
    if (dig_len != 128 || memcmp(dig, want, 128) != 0) {
        snprintf(err, errlen, "shared_key mismatch in the server's PONG");
        return LS_ERROR;
    }
    return LS_OK;
}

bool fw_is_ack(const msgpack_object *o, const char *id, size_t idlen)
{
    const msgpack_object *v = ls_msgpack_map_get(o, "ack");
    const char *p;
    size_t n;

    return v && ls_msgpack_bytes(v, &p, &n) && n == idlen && memcmp(p, id, n) == 0;
}

static int fw_handshake(struct fw *fw, struct fw_conn *c, double deadline, char *err,
                        size_t errlen)
{
    struct fw_node *n = c->node;
    const char *key = n->shared_key ? n->shared_key : fw->sec_shared_key;
    msgpack_unpacked res;
    const char *nonce = NULL, *auth = "";
    size_t nonce_len = 0, auth_len = 0;
    unsigned char rnd[16];
    char salt[33], ping_dig[129], pass_dig[129] = "", nonce_copy[256];
    struct ls_buf out;
    msgpack_packer pk;
    int rc = LS_ERROR;

    msgpack_unpacked_init(&res);
    ls_buf_init(&out, 0);
    if (fw_conn_next(fw, c, &res, deadline, err, errlen) != LS_OK) {
        goto done;
    }
    if (fw_helo_parse(&res.data, &nonce, &nonce_len, &auth, &auth_len) != LS_OK) {
        snprintf(err, errlen, "the server did not send a HELO (is <security> set on both sides?)");
        goto done;
    }
    /* nonce points into res, which the next read replaces: the PONG check needs a copy */
    if (nonce_len > sizeof(nonce_copy)) {
        snprintf(err, errlen, "the server's HELO nonce is too long");
        goto done;
    }
    memcpy(nonce_copy, nonce, nonce_len);
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        snprintf(err, errlen, "no random bytes for the salt");
        goto done;
    }
    ls_hex(rnd, sizeof(rnd), salt);
    {
        const void *parts[] = { salt, fw->self_hostname, nonce, key };
        size_t lens[] = { 32, strlen(fw->self_hostname), nonce_len, strlen(key) };
        ls_sha512_hex(parts, lens, 4, ping_dig);
    }
    if (auth_len > 0) {
        const void *parts[] = { auth, n->username, n->password };
        size_t lens[] = { auth_len, strlen(n->username), strlen(n->password) };
        ls_sha512_hex(parts, lens, 3, pass_dig);
    }
    msgpack_packer_init(&pk, &out, fw_pack_write);
    msgpack_pack_array(&pk, 6);
    msgpack_pack_str_with_body(&pk, "PING", 4);
    msgpack_pack_str_with_body(&pk, fw->self_hostname, strlen(fw->self_hostname));
    msgpack_pack_str_with_body(&pk, salt, 32);
    msgpack_pack_str_with_body(&pk, ping_dig, 128);
    /* fluentd's client sends the user only when the server asks (a non-empty auth salt) */
    msgpack_pack_str_with_body(&pk, auth_len ? n->username : "", auth_len ? strlen(n->username) : 0);
    msgpack_pack_str_with_body(&pk, pass_dig, strlen(pass_dig));
    if (fw_conn_write(fw, c, out.p, out.len, deadline, err, errlen) != LS_OK
        || fw_conn_next(fw, c, &res, deadline, err, errlen) != LS_OK) {
        goto done;
    }
    rc = fw_pong_check(&res.data, fw->self_hostname, salt, nonce_copy, nonce_len, key, err, errlen);
done:
    msgpack_unpacked_destroy(&res);
    ls_buf_release(&out);
    return rc;
}

static bool fw_is_ip(const char *h)
{
    unsigned char b[16];

    return inet_pton(AF_INET, h, b) == 1 || inet_pton(AF_INET6, h, b) == 1;
}

static int fw_tls_start(struct fw *fw, struct fw_conn *c, double deadline, char *err,
                        size_t errlen)
{
    struct fw_node *n = c->node;
    const char *check = n->name && fw_is_ip(n->host) ? n->name : n->host;

    c->ssl = SSL_new(fw->ssl);
    if (c->ssl == NULL || !SSL_set_fd(c->ssl, c->fd)) {
        fw_ssl_err(err, errlen, "TLS");
        return LS_ERROR;
    }
    if (!fw_is_ip(check)) {
        SSL_set_tlsext_host_name(c->ssl, check);
    }
    if (fw->tls_verify_hostname && !fw->tls_insecure_mode) {
        if (fw_is_ip(check)) {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), check);
        } else {
            SSL_set1_host(c->ssl, check);
        }
    }
    for (;;) {
        int r = SSL_connect(c->ssl), e, w;

        if (r == 1) {
            return LS_OK;
        }
        e = SSL_get_error(c->ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            long v = SSL_get_verify_result(c->ssl);

            if (v != X509_V_OK) {
                ERR_clear_error();
                snprintf(err, errlen, "TLS: the server's certificate is not trusted: %s",
                         X509_verify_cert_error_string(v));
            } else {
                fw_ssl_err(err, errlen, "TLS handshake");
            }
            return LS_ERROR;
        }
        w = fw_wait(fw, c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
        if (w <= 0) {
            snprintf(err, errlen, w == 0 ? "TLS handshake timed out" : "stopping");
            return LS_ERROR;
        }
    }
}

struct fw_conn *fw_connect(struct fw *fw, struct fw_node *n, double deadline, char *err,
                           size_t errlen)
{
    struct fw_conn *c;
    struct sockaddr_storage sa;
    socklen_t salen;
    int k, one = 1, e = 0, w;
    socklen_t elen = sizeof(e);

    if (fw_resolve(fw, n, false, err, errlen) != LS_OK) {
        return NULL;
    }
    pthread_mutex_lock(&fw->mu);
    k = fw->dns_round_robin && n->naddrs > 1 ? (int)(fw->rng++ % (uint64_t)n->naddrs) : 0;
    sa = n->addrs[k];
    salen = n->addrlens[k];
    pthread_mutex_unlock(&fw->mu);

    c = ls_calloc(1, sizeof(*c));
    c->node = n;
    ls_buf_init(&c->rbuf, 0);
    c->fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        goto fail;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (fw->send_keepalive_packet) {
        setsockopt(c->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    }
    if (connect(c->fd, (struct sockaddr *)&sa, salen) != 0 && errno != EINPROGRESS) {
        snprintf(err, errlen, "connect: %s", strerror(errno));
        goto fail;
    }
    {
        double cd = fw->connect_timeout > 0 ? ls_mono_now() + fw->connect_timeout : deadline;
        w = fw_wait(fw, c->fd, POLLOUT, cd < deadline ? cd : deadline);
    }
    if (w <= 0) {
        snprintf(err, errlen, w == 0 ? "connect timed out" : "stopping");
        goto fail;
    }
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &elen) != 0 || e != 0) {
        snprintf(err, errlen, "connect: %s", strerror(e ? e : errno));
        goto fail;
    }
    if (fw->transport == 1 && fw_tls_start(fw, c, deadline, err, errlen) != LS_OK) {
        goto fail;
    }
    if (fw->security && fw_handshake(fw, c, deadline, err, errlen) != LS_OK) {
        goto fail;
    }
    c->last_used = ls_mono_now();
    return c;
fail:
    fw_conn_close(c);
    return NULL;
}
