/*
 * forward.c - fluentd's out_forward: chunks to other agents over the Forward
 * protocol v1, with fluentd's parameters and defaults.
 *
 * A chunk is stored by the msgpack formatter as PackedForward entries, so
 * sending it is one message: [tag, entries (bin), {size, compressed[, chunk]}].
 * With require_ack_response the chunk is deleted only when the server answers
 * {"ack": <chunk>}; no answer within ack_response_timeout (or a closed
 * connection) leaves it in the buffer, and the retry sends it again with the
 * same chunk id: Base64 of the buffer chunk's persistent 16-byte id, the same
 * across retries and restarts, so a receiver can tell a retransmit.
 *
 * Server choice follows fluentd's load_balancer.rb (weights, standby nodes
 * taking over the weight of unavailable ones) and failure detection its
 * heartbeats with hard_timeout and the phi accrual detector.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <netinet/in.h>

#include "fwd.h"
#include "log.h"
#include "engine.h"
#include "compress.h"

#define F(f) offsetof(struct fw, f)

/* out_forward's rows before and after keepalive, shared with secure_forward's table (whose
 * keepalive is a time) */
#define FW_ROWS_1 \
    { "transport", LS_P_ENUM, "tcp", 0, F(transport), "tcp or tls", NULL, "tcp|tls", 0, 0 }, \
    { "send_timeout", LS_P_TIME, "60", 0, F(send_timeout), \
      "give up sending a chunk (and the handshake) after this long", NULL, NULL, 0, 0 }, \
    { "connect_timeout", LS_P_TIME, NULL, 0, F(connect_timeout), \
      "give up connecting after this long (unset: send_timeout bounds it)", NULL, NULL, 0, 0 }, \
    { "heartbeat_type", LS_P_ENUM, "transport", 0, F(heartbeat_type), \
      "transport (connect over tcp/tls), udp (0x00 datagram) or none (nodes always available); " \
      "tcp is the old name of transport", NULL, "transport|tcp|udp|none", 0, 0 }, \
    { "heartbeat_interval", LS_P_TIME, "1", 0, F(heartbeat_interval), "seconds between heartbeats", \
      NULL, NULL, 0.01, 3600 }, \
    { "recover_wait", LS_P_TIME, "10", 0, F(recover_wait), \
      "a detached node comes back after this long of successful heartbeats", NULL, NULL, 0, 0 }, \
    { "hard_timeout", LS_P_TIME, "60", 0, F(hard_timeout), \
      "detach a node after this long without a heartbeat", NULL, NULL, 0, 0 }, \
    { "phi_failure_detector", LS_P_BOOL, "true", 0, F(phi_failure_detector), \
      "detach nodes by the phi accrual failure detector", NULL, NULL, 0, 0 }, \
    { "phi_threshold", LS_P_FLOAT, "16", 0, F(phi_threshold), "phi above which a node is detached", \
      NULL, NULL, 0, 0 }, \
    { "require_ack_response", LS_P_BOOL, "false", 0, F(require_ack_response), \
      "ask the server to ack each chunk; delete it only then (at-least-once; exactly once with a " \
      "logship in_forward)", NULL, NULL, 0, 0 }, \
    { "ack_response_timeout", LS_P_TIME, "190", 0, F(ack_response_timeout), \
      "no ack within this long: the chunk is sent again", NULL, NULL, 1, 1e9 }, \
    { "expire_dns_cache", LS_P_STR, "", LS_PF_NULLABLE, F(expire_dns_cache), \
      "seconds a resolved address is kept (unset: forever; 0: resolve every time)", NULL, NULL, 0, \
      0 }, \
    { "dns_round_robin", LS_P_BOOL, "false", 0, F(dns_round_robin), \
      "connect to a random one of the host's addresses", NULL, NULL, 0, 0 }, \
    { "ignore_network_errors_at_startup", LS_P_BOOL, "false", 0, \
      F(ignore_network_errors_at_startup), "start even when a server's name does not resolve", \
      NULL, NULL, 0, 0 }, \
    { "verify_connection_at_startup", LS_P_BOOL, "false", 0, F(verify_connection_at_startup), \
      "do not start unless a connection (with the handshake) to a server succeeds", NULL, NULL, 0, \
      0 }, \
    { "compress", LS_P_ENUM, "text", 0, F(compress), \
      "gzip: send CompressedPackedForward", NULL, "text|gzip", 0, 0 },
#define FW_ROWS_2 \
    { "keepalive_timeout", LS_P_STR, "", LS_PF_NULLABLE, F(keepalive_timeout), \
      "close an idle kept-alive connection after this long (unset: never)", NULL, NULL, 0, 0 }, \
    { "send_keepalive_packet", LS_P_BOOL, "false", 0, F(send_keepalive_packet), \
      "TCP keepalive probes on the connections", NULL, NULL, 0, 0 }, \
    { "time_as_integer", LS_P_BOOL, "false", LS_PF_NO_STORE, 0, \
      "send time as integer seconds, not EventTime (for fluentd v0.12); read by the msgpack " \
      "formatter", NULL, NULL, 0, 0 }, \
    { "tls_version", LS_P_ENUM, "TLSv1_2", 0, F(tls_version), "lowest TLS version", \
      NULL, "TLSv1_1|TLSv1_2|TLSv1_3", 0, 0 }, \
    { "tls_ciphers", LS_P_STR, "ALL:!aNULL:!eNULL:!SSLv2", 0, F(tls_ciphers), \
      "OpenSSL cipher list (TLS 1.2 and lower)", NULL, NULL, 0, 0 }, \
    { "tls_insecure_mode", LS_P_BOOL, "false", 0, F(tls_insecure_mode), \
      "do not verify the server's certificate at all", NULL, NULL, 0, 0 }, \
    { "tls_allow_self_signed_cert", LS_P_BOOL, "false", 0, F(tls_allow_self_signed_cert), \
      "accept a self-signed server certificate", NULL, NULL, 0, 0 }, \
    { "tls_verify_hostname", LS_P_BOOL, "true", 0, F(tls_verify_hostname), \
      "check the certificate names the server's host (or <server> name when host is an IP)", \
      NULL, NULL, 0, 0 }, \
    { "tls_cert_path", LS_P_ARRAY, NULL, 0, F(tls_cert_path), \
      "CA certificate files to trust (default: the system's)", NULL, NULL, 0, 0 }, \
    { "tls_ca_cert_path", LS_P_ARRAY, NULL, 0, F(tls_ca_cert_path), \
      "more CA certificate files to trust", NULL, NULL, 0, 0 }, \
    { "tls_client_cert_path", LS_P_STR, "", LS_PF_NULLABLE, F(tls_client_cert_path), \
      "client certificate (PEM) for servers that check clients", NULL, NULL, 0, 0 }, \
    { "tls_client_private_key_path", LS_P_STR, "", LS_PF_NULLABLE, \
      F(tls_client_private_key_path), "its private key (PEM)", NULL, NULL, 0, 0 }, \
    { "tls_client_private_key_passphrase", LS_P_SECRET, "", LS_PF_NULLABLE, \
      F(tls_client_private_key_passphrase), "the key's passphrase", NULL, NULL, 0, 0 },

static const struct ls_param fw_params[] = {
    FW_ROWS_1
    { "keepalive", LS_P_BOOL, "false", 0, F(keepalive), "reuse connections between chunks", NULL,
      NULL, 0, 0 },
    FW_ROWS_2
    /* the sections' rows, for --describe and docs/plugins.md (bound by fw_server_params and
     * fw_security_params) */
    { "server: host, port, name", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "`<server>` (one or more, required): address, port (24224) and a name for logs and the "
      "TLS check", NULL, NULL, 0, 0 },
    { "server: weight, standby", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "share of chunks (60; 0: never used); standby: used only while regular servers are "
      "unavailable", NULL, NULL, 0, 0 },
    { "server: shared_key, username, password", LS_P_SECRET, NULL, LS_PF_NO_STORE, 0,
      "this server's key (default: <security>'s) and its user_auth login", NULL, NULL, 0, 0 },
    { "security: self_hostname, shared_key", LS_P_SECRET, NULL, LS_PF_NO_STORE, 0,
      "`<security>`: the handshake (HELO/PING/PONG): this host's name (must differ from the "
      "server's) and the key both sides know", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

#define N(f) offsetof(struct fw_node, f)

static const struct ls_param fw_server_params[] = {
    { "host", LS_P_STR, NULL, LS_PF_REQUIRED, N(host), "server name or address", NULL, NULL, 0, 0 },
    { "name", LS_P_STR, "", LS_PF_NULLABLE, N(name),
      "name for logs and the TLS certificate check", NULL, NULL, 0, 0 },
    { "port", LS_P_INT, "24224", 0, N(port), "TCP (and heartbeat UDP) port", NULL, NULL, 1, 65535 },
    { "shared_key", LS_P_SECRET, "", LS_PF_NULLABLE, N(shared_key),
      "this server's key (default: <security> shared_key)", NULL, NULL, 0, 0 },
    { "username", LS_P_STR, "", 0, N(username), "user for the server's user_auth", NULL, NULL, 0, 0 },
    { "password", LS_P_SECRET, "", 0, N(password), "its password", NULL, NULL, 0, 0 },
    { "standby", LS_P_BOOL, "false", 0, N(standby),
      "used only while regular servers are unavailable", NULL, NULL, 0, 0 },
    { "weight", LS_P_INT, "60", 0, N(weight), "share of chunks (0: never used)", NULL, NULL, 0,
      1000000 },
    LS_PARAM_END
};

#define S(f) offsetof(struct fw, f)

static const struct ls_param fw_security_params[] = {
    { "self_hostname", LS_P_STR, NULL, LS_PF_REQUIRED, S(self_hostname),
      "this host's name in the handshake (must differ from the server's)", NULL, NULL, 0, 0 },
    { "shared_key", LS_P_SECRET, NULL, LS_PF_REQUIRED, S(sec_shared_key),
      "the key both sides know", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

/* ---- node state and load balancing (callers hold fw->mu) ---- */

static void fw_node_set(struct fw *fw, struct fw_node *n, bool up, const char *why)
{
    if (n->available == up) {
        return;
    }
    n->available = up;
    n->recover_count = 0;
    fw->wa_dirty = true;
    if (up) {
        ls_plg_info(fw->ins, "recovered forwarding server %s", n->label);
    } else {
        ls_plg_warn(fw->ins, "detached forwarding server %s: %s", n->label, why);
    }
}

static void fw_arrival(struct fw *fw, struct fw_node *n, double now)
{
    if (n->last_arrival > 0) {
        n->gaps[n->gap_next] = now - n->last_arrival;
        n->gap_next = (n->gap_next + 1) % FW_WINDOW;
        if (n->ngaps < FW_WINDOW) {
            n->ngaps++;
        }
    }
    n->last_arrival = now;
}

/* phi as fluentd's failure_detector.rb: later gaps weigh more */
static double fw_phi(const struct fw *fw, const struct fw_node *n, double now)
{
    double sum = 0, wsum = 0, mean;
    int i, w = 1;
    int first = n->ngaps < FW_WINDOW ? 0 : n->gap_next;

    if (n->ngaps == 0) {
        return 0;
    }
    for (i = 0; i < n->ngaps; i++, w++) {
        sum += n->gaps[(first + i) % FW_WINDOW] * w;
        wsum += w;
    }
    mean = sum / wsum;
    return (1 / log(10.0)) * (now - n->last_arrival - fw->heartbeat_interval + 1)
           / (mean - fw->heartbeat_interval + 1);
}

static uint64_t fw_rand(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

static int64_t fw_gcd(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* load_balancer.rb rebuild_weight_array: regular nodes, standby ones covering lost weight */
static void fw_rebuild(struct fw *fw)
{
    int64_t lost = 0, g = 0;
    size_t i, k, n = 0, total = 0;
    bool *use = ls_calloc(fw->nnodes, sizeof(bool));
    uint64_t seed = 0x5eed;

    for (i = 0; i < fw->nnodes; i++) {
        struct fw_node *nd = &fw->nodes[i];
        if (!nd->standby && nd->weight > 0) {
            use[i] = true;
            if (!nd->available) {
                lost += nd->weight;
            }
        }
    }
    for (i = 0; i < fw->nnodes && lost > 0; i++) {
        struct fw_node *nd = &fw->nodes[i];
        if (nd->standby && nd->weight > 0 && nd->available) {
            use[i] = true;
            lost -= nd->weight;
        }
    }
    for (i = 0; i < fw->nnodes; i++) {
        if (use[i]) {
            g = fw_gcd(g, fw->nodes[i].weight);
            n++;
        }
    }
    ls_free(fw->wa);
    fw->wa = NULL;
    fw->nwa = 0;
    if (n > 0) {
        for (i = 0; i < fw->nnodes; i++) {
            total += use[i] ? (size_t)(fw->nodes[i].weight / g) : 0;
        }
        size_t reps = (6 * n + total - 1) / total;
        fw->wa = ls_calloc(total * reps, sizeof(size_t));
        for (size_t r = 0; r < reps; r++) {
            for (i = 0; i < fw->nnodes; i++) {
                for (k = 0; use[i] && k < (size_t)(fw->nodes[i].weight / g); k++) {
                    fw->wa[fw->nwa++] = i;
                }
            }
        }
        /* shuffled with a fixed seed, as fluentd does per process: the order is spread, the
           shares exact over each pass */
        for (i = fw->nwa; i > 1; i--) {
            size_t j = (size_t)(fw_rand(&seed) % i), t = fw->wa[i - 1];
            fw->wa[i - 1] = fw->wa[j];
            fw->wa[j] = t;
        }
    }
    ls_free(use);
    fw->wa_dirty = false;
}

/* The nodes to try for one chunk, in order, distinct; the cursor moves on by one. */
static size_t fw_candidates(struct fw *fw, struct fw_node **out)
{
    size_t i, k, n = 0;

    pthread_mutex_lock(&fw->mu);
    if (fw->wa_dirty) {
        fw_rebuild(fw);
    }
    for (i = 0; i < fw->nwa; i++) {
        struct fw_node *nd = &fw->nodes[fw->wa[(fw->cursor + i) % fw->nwa]];
        if (!nd->available) {
            continue;
        }
        for (k = 0; k < n && out[k] != nd; k++) {
        }
        if (k == n) {
            out[n++] = nd;
        }
    }
    if (fw->nwa) {
        fw->cursor = (fw->cursor + 1) % fw->nwa;
    }
    pthread_mutex_unlock(&fw->mu);
    return n;
}

/* ---- connections ---- */

static struct fw_conn *fw_get_conn(struct fw *fw, struct fw_node *n, char *err, size_t errlen)
{
    struct fw_conn *c = NULL;

    if (fw->keepalive) {
        double now = ls_mono_now();

        pthread_mutex_lock(&fw->mu);
        while ((c = n->idle) != NULL) {
            n->idle = c->next;
            if (fw->ka_timeout < 0 || now - c->last_used < fw->ka_timeout) {
                break;
            }
            pthread_mutex_unlock(&fw->mu);
            fw_conn_close(c);
            pthread_mutex_lock(&fw->mu);
        }
        pthread_mutex_unlock(&fw->mu);
        if (c) {
            /* a peer that closed the idle connection shows as readable: do not send into it */
            struct pollfd p = { .fd = c->fd, .events = POLLIN };
            if (poll(&p, 1, 0) == 0) {
                return c;
            }
            fw_conn_close(c);
        }
    }
    return fw_connect(fw, n, ls_mono_now() + fw->send_timeout, err, errlen);
}

static void fw_put_conn(struct fw *fw, struct fw_conn *c)
{
    if (!fw->keepalive) {
        fw_conn_close_gracefully(c);
        return;
    }
    c->last_used = ls_mono_now();
    pthread_mutex_lock(&fw->mu);
    c->next = c->node->idle;
    c->node->idle = c;
    pthread_mutex_unlock(&fw->mu);
}

/* ---- sending ---- */

static void fw_send(struct fw *fw, struct fw_job *j)
{
    struct fw_node *cand[64];
    size_t nc = fw_candidates(fw, cand), i;
    char err[256] = "";

    if (nc > 64) {
        nc = 64;
    }
    j->rc = LS_ERROR;
    if (nc == 0) {
        snprintf(j->err, sizeof(j->err), "no nodes are available");
        return;
    }
    for (i = 0; i < nc; i++) {
        struct fw_node *n = cand[i];
        struct fw_conn *c = fw_get_conn(fw, n, err, sizeof(err));

        if (c == NULL || fw_conn_write(fw, c, j->msg.p, j->msg.len,
                                       ls_mono_now() + fw->send_timeout, err, sizeof(err)) != LS_OK) {
            fw_conn_close(c);
            snprintf(j->err, sizeof(j->err), "%.100s: %.150s", n->label, err);
            ls_plg_warn(fw->ins, "failed to send chunk to %s: %s", n->label, err);
            if (fw->heartbeat_type != FW_HB_NONE && !fw_quitting(fw)) {
                pthread_mutex_lock(&fw->mu);
                fw_node_set(fw, n, false, err);
                pthread_mutex_unlock(&fw->mu);
            }
            continue;
        }
        if (fw->require_ack_response) {
            msgpack_unpacked res;
            size_t idlen = strlen(j->chunk_b64);
            int rc;

            msgpack_unpacked_init(&res);
            rc = fw_conn_next(fw, c, &res, ls_mono_now() + fw->ack_response_timeout, err,
                              sizeof(err));
            if (rc == LS_OK && !fw_is_ack(&res.data, j->chunk_b64, idlen)) {
                snprintf(err, sizeof(err), "ack in response and chunk id in sent data are "
                         "different");
                rc = LS_ERROR;
            }
            msgpack_unpacked_destroy(&res);
            if (rc != LS_OK) {
                /* never reuse it: a late ack would be taken for the next chunk's */
                fw_conn_close(c);
                snprintf(j->err, sizeof(j->err), "no ack from %.80s: %.100s; the chunk is sent again",
                         n->label, err);
                if (fw->heartbeat_type != FW_HB_NONE && !fw_quitting(fw)) {
                    pthread_mutex_lock(&fw->mu);
                    fw_node_set(fw, n, false, err);
                    pthread_mutex_unlock(&fw->mu);
                }
                return;
            }
        }
        pthread_mutex_lock(&fw->mu);
        fw_arrival(fw, n, ls_mono_now());
        pthread_mutex_unlock(&fw->mu);
        fw_put_conn(fw, c);
        memcpy(j->where, n->label, sizeof(j->where));
        j->rc = LS_OK;
        return;
    }
}

static void fw_post(struct fw *fw, struct fw_job *j)
{
    uint64_t one = 1;

    pthread_mutex_lock(&fw->mu);
    j->next = NULL;
    if (fw->d_tail) {
        fw->d_tail->next = j;
    } else {
        fw->d_head = j;
    }
    fw->d_tail = j;
    pthread_mutex_unlock(&fw->mu);
    if (write(fw->efd, &one, sizeof(one)) < 0) {
        /* the counter cannot overflow in practice; the loop reads the list anyway */
    }
}

static void *fw_sender_main(void *arg)
{
    struct fw *fw = arg;

    for (;;) {
        struct fw_job *j;

        pthread_mutex_lock(&fw->mu);
        while (!fw->quit && fw->q_head == NULL) {
            pthread_cond_wait(&fw->cv, &fw->mu);
        }
        if (fw->quit) {
            pthread_mutex_unlock(&fw->mu);
            return NULL;
        }
        j = fw->q_head;
        fw->q_head = j->next;
        if (fw->q_head == NULL) {
            fw->q_tail = NULL;
        }
        pthread_mutex_unlock(&fw->mu);
        fw_send(fw, j);
        fw_post(fw, j);
    }
}

/* ---- heartbeats ---- */

static void fw_hb_udp(struct fw *fw, int us, double until)
{
    size_t i;

    for (i = 0; i < fw->nnodes; i++) {
        struct fw_node *n = &fw->nodes[i];
        char err[200];

        if (fw_resolve(fw, n, false, err, sizeof(err)) != LS_OK) {
            continue;
        }
        pthread_mutex_lock(&fw->mu);
        struct sockaddr_storage sa = n->addrs[0];
        socklen_t len = n->addrlens[0];
        pthread_mutex_unlock(&fw->mu);
        if (sa.ss_family == AF_INET) {
            (void)sendto(us, "\0", 1, 0, (struct sockaddr *)&sa, len);
        }
    }
    for (;;) {
        double left = until - ls_mono_now();
        struct pollfd p = { .fd = us, .events = POLLIN };
        char b[128];
        struct sockaddr_in from;
        socklen_t fl = sizeof(from);

        if (left <= 0 || fw_quitting(fw) || poll(&p, 1, (int)(left * 1000) + 1) <= 0) {
            return;
        }
        if (recvfrom(us, b, sizeof(b), 0, (struct sockaddr *)&from, &fl) < 0) {
            continue;
        }
        pthread_mutex_lock(&fw->mu);
        for (i = 0; i < fw->nnodes; i++) {
            struct sockaddr_in *a = (struct sockaddr_in *)&fw->nodes[i].addrs[0];
            if (fw->nodes[i].naddrs > 0 && a->sin_family == AF_INET
                && a->sin_port == from.sin_port && a->sin_addr.s_addr == from.sin_addr.s_addr) {
                struct fw_node *n = &fw->nodes[i];
                fw_arrival(fw, n, ls_mono_now());
                if (!n->available && ++n->recover_count >= fw->recover_wait / fw->heartbeat_interval) {
                    fw_node_set(fw, n, true, NULL);
                }
            }
        }
        pthread_mutex_unlock(&fw->mu);
    }
}

static void fw_hb_tick(struct fw *fw, double now)
{
    pthread_mutex_lock(&fw->mu);
    for (size_t i = 0; i < fw->nnodes; i++) {
        struct fw_node *n = &fw->nodes[i];
        char why[100];

        if (!n->available) {
            continue;
        }
        if (now - n->last_arrival > fw->hard_timeout) {
            snprintf(why, sizeof(why), "no heartbeat for %.0f s (hard_timeout)",
                     now - n->last_arrival);
            fw_node_set(fw, n, false, why);
        } else if (fw->phi_failure_detector && fw_phi(fw, n, now) > fw->phi_threshold) {
            snprintf(why, sizeof(why), "phi %.1f over phi_threshold", fw_phi(fw, n, now));
            fw_node_set(fw, n, false, why);
        }
    }
    pthread_mutex_unlock(&fw->mu);
}

static void fw_expire_idle(struct fw *fw, double now)
{
    if (!fw->keepalive || fw->ka_timeout < 0) {
        return;
    }
    for (size_t i = 0; i < fw->nnodes; i++) {
        struct fw_conn *keep = NULL, *drop = NULL, *c, *next;

        pthread_mutex_lock(&fw->mu);
        for (c = fw->nodes[i].idle; c; c = next) {
            next = c->next;
            if (now - c->last_used >= fw->ka_timeout) {
                c->next = drop;
                drop = c;
            } else {
                c->next = keep;
                keep = c;
            }
        }
        fw->nodes[i].idle = keep;
        pthread_mutex_unlock(&fw->mu);
        for (c = drop; c; c = next) {
            next = c->next;
            fw_conn_close(c);
        }
    }
}

static void *fw_hb_main(void *arg)
{
    struct fw *fw = arg;
    int us = -1;

    if (fw->heartbeat_type == FW_HB_UDP) {
        us = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    }
    while (!fw_quitting(fw)) {
        double start = ls_mono_now(), until = start + fw->heartbeat_interval;

        if (fw->heartbeat_type == FW_HB_UDP && us >= 0) {
            fw_hb_udp(fw, us, until);
        } else if (fw->heartbeat_type == FW_HB_TRANSPORT || fw->heartbeat_type == FW_HB_TCP) {
            for (size_t i = 0; i < fw->nnodes && !fw_quitting(fw); i++) {
                struct fw_node *n = &fw->nodes[i];
                char err[256];
                double lim = fw->heartbeat_interval > 1 ? fw->heartbeat_interval : 1;
                struct fw_conn *c = fw_connect(fw, n, ls_mono_now() + lim, err, sizeof(err));

                if (c == NULL) {
                    ls_plg_debug(fw->ins, "heartbeat to %s failed: %s", n->label, err);
                    continue;
                }
                fw_conn_close(c);
                pthread_mutex_lock(&fw->mu);
                fw_arrival(fw, n, ls_mono_now());
                if (!n->available && ++n->recover_count >= fw->recover_wait / fw->heartbeat_interval) {
                    fw_node_set(fw, n, true, NULL);
                }
                pthread_mutex_unlock(&fw->mu);
            }
        }
        fw_hb_tick(fw, ls_mono_now());
        fw_expire_idle(fw, ls_mono_now());
        while (!fw_quitting(fw) && ls_mono_now() < until) {
            poll(NULL, 0, 50);
        }
    }
    if (us >= 0) {
        close(us);
    }
    return NULL;
}

/* ---- the loop side ---- */

static void fw_done_cb(struct ls_io *io, int revents, void *arg)
{
    struct fw *fw = arg;
    struct fw_job *list, *next;
    uint64_t v;

    if (read(fw->efd, &v, sizeof(v)) < 0) {
        /* EAGAIN: nothing new; the list is read anyway */
    }
    pthread_mutex_lock(&fw->mu);
    list = fw->d_head;
    fw->d_head = fw->d_tail = NULL;
    pthread_mutex_unlock(&fw->mu);
    for (; list; list = next) {
        next = list->next;
        if (list->verify) {
            if (list->rc != LS_OK) {
                ls_plg_error(fw->ins, "verify_connection_at_startup: %s", list->err);
            }
            ls_engine_release_start(fw->ins->engine, list->rc == LS_OK);
        } else if (list->rc == LS_OK) {
            fw->ins->metrics.write_bytes += list->msg.len;
            ls_output_delivered(fw->ins, list->chunk, list->where, list->msg.len);
            ls_output_write_done(fw->ins, list->chunk, LS_OK, NULL);
        } else {
            ls_output_write_done(fw->ins, list->chunk, list->rc, list->err);
        }
        ls_buf_release(&list->msg);
        ls_free(list->tag);
        ls_free(list);
    }
}

static void fw_enqueue(struct fw *fw, struct fw_job *j)
{
    pthread_mutex_lock(&fw->mu);
    j->next = NULL;
    if (fw->q_tail) {
        fw->q_tail->next = j;
    } else {
        fw->q_head = j;
    }
    fw->q_tail = j;
    pthread_cond_signal(&fw->cv);
    pthread_mutex_unlock(&fw->mu);
}

struct fw_prep {
    struct fw *fw;
    struct fw_job *j;
    struct ls_chunk_reader *r;
};

static long fw_read_cb(void *arg, void *buf, size_t n)
{
    return ls_chunk_reader_read(arg, buf, n);
}

static int fw_w(void *data, const char *buf, size_t len)
{
    return ls_buf_append(data, buf, len) == LS_OK ? 0 : -1;
}

/* Worker pool: the message is [tag, entries, option] with entries as bin 32 (its length is
   patched in once the chunk is read, and compressed with gzip). */
static void fw_prep_work(void *arg)
{
    struct fw_prep *p = arg;
    struct fw *fw = p->fw;
    struct fw_job *j = p->j;
    msgpack_packer pk;
    size_t at, len;
    char buf[65536];
    long r;

    msgpack_packer_init(&pk, &j->msg, fw_w);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_str_with_body(&pk, j->tag, strlen(j->tag));
    at = j->msg.len;
    ls_buf_append(&j->msg, "\xc6\0\0\0\0", 5);
    j->rc = LS_ERROR;
    if (fw->compress == 1) {
        if (ls_compress_to_buf(LS_COMPRESS_GZIP, -1, fw_read_cb, p->r, &j->msg, NULL, j->err,
                               sizeof(j->err)) != LS_OK) {
            return;
        }
    } else {
        while ((r = ls_chunk_reader_read(p->r, buf, sizeof(buf))) > 0) {
            if (ls_buf_append(&j->msg, buf, (size_t)r) != LS_OK) {
                snprintf(j->err, sizeof(j->err), "out of memory");
                return;
            }
        }
        if (r < 0) {
            snprintf(j->err, sizeof(j->err), "cannot read the chunk");
            return;
        }
    }
    len = j->msg.len - at - 5;
    if (len > UINT32_MAX) {
        snprintf(j->err, sizeof(j->err), "chunk over 4 GiB");
        return;
    }
    for (int i = 0; i < 4; i++) {
        j->msg.p[at + 1 + i] = (char)(len >> (24 - 8 * i));
    }
    msgpack_pack_map(&pk, fw->require_ack_response ? 3 : 2);
    msgpack_pack_str_with_body(&pk, "size", 4);
    msgpack_pack_uint64(&pk, j->records);
    msgpack_pack_str_with_body(&pk, "compressed", 10);
    if (fw->compress == 1) {
        msgpack_pack_str_with_body(&pk, "gzip", 4);
    } else {
        msgpack_pack_str_with_body(&pk, "text", 4);
    }
    if (fw->require_ack_response) {
        msgpack_pack_str_with_body(&pk, "chunk", 5);
        msgpack_pack_str_with_body(&pk, j->chunk_b64, strlen(j->chunk_b64));
    }
    j->rc = LS_OK;
}

static void fw_prep_done(void *arg)
{
    struct fw_prep *p = arg;
    struct fw_job *j = p->j;

    ls_chunk_reader_close(p->r);
    if (j->rc != LS_OK) {
        ls_output_write_done(p->fw->ins, j->chunk, LS_ERROR, j->err);
        ls_buf_release(&j->msg);
        ls_free(j->tag);
        ls_free(j);
    } else {
        fw_enqueue(p->fw, j);
    }
    ls_free(p);
}

static int fw_hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                            : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static int fw_write(struct ls_instance *ins, struct ls_chunk *chunk)
{
    struct fw *fw = ins->ctx;
    const struct ls_chunk_info *info = ls_chunk_info(chunk);
    struct fw_prep *p;
    struct fw_job *j;
    unsigned char id[16];

    if (info->tag == NULL || info->tag[0] == '\0') {
        ls_plg_error(ins, "a forward chunk needs its tag: put tag in the <buffer> chunk keys");
        return LS_DECLINED;
    }
    /* the buffer chunk's id is 32 hex digits, kept across retries and restarts */
    for (int i = 0; i < 16; i++) {
        int hi = fw_hexval(info->id[2 * i]), lo = hi < 0 ? -1 : fw_hexval(info->id[2 * i + 1]);
        if (lo < 0) {
            ls_plg_error(ins, "chunk id '%s' is not 32 hex digits", info->id);
            return LS_DECLINED;
        }
        id[i] = (unsigned char)(hi << 4 | lo);
    }
    j = ls_calloc(1, sizeof(*j));
    j->chunk = chunk;
    j->tag = ls_strdup(info->tag);
    j->records = info->records;
    ls_base64(id, sizeof(id), j->chunk_b64);
    memcpy(j->chunk_b64 + 24, "\n", 2);      /* Ruby's Base64.encode64, as fluentd sends it */
    ls_buf_init(&j->msg, 0);
    p = ls_calloc(1, sizeof(*p));
    p->fw = fw;
    p->j = j;
    p->r = ls_chunk_reader_open(chunk);
    if (p->r == NULL) {
        ls_free(p);
        ls_free(j->tag);
        ls_free(j);
        return LS_ERROR;
    }
    ls_work_submit(ins->engine, fw_prep_work, fw_prep_done, p);
    return LS_AGAIN;
}

/* ---- lifecycle ---- */

static int fw_opt_time(struct ls_conf_section *sec, const char *key, const char *v, double *out,
                       char *err, size_t errlen)
{
    *out = -1;
    if (v && ls_parse_time(v, out) != LS_OK) {
        ls_conf_param_error(sec, key, err, errlen, "invalid %s '%s' (expected seconds)", key, v);
        return LS_ERROR;
    }
    return LS_OK;
}

static int fw_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct fw *fw = ins->ctx;
    struct ls_conf_section *s, *buf = ls_conf_child(sec, "buffer");
    size_t i = 0;

    fw->ins = ins;
    fw->efd = -1;
    pthread_mutex_init(&fw->mu, NULL);
    pthread_cond_init(&fw->cv, NULL);
    fw->mu_ready = true;
    fw->rng = (uint64_t)getpid() * 2654435761u;
    if (fw_opt_time(sec, "expire_dns_cache", fw->expire_dns_cache, &fw->dns_ttl, err, errlen)
        || fw_opt_time(sec, "keepalive_timeout", fw->keepalive_timeout, &fw->ka_timeout, err, errlen)) {
        return LS_ERROR;
    }
    if (buf && buf->arg[0] && strstr(buf->arg, "tag") == NULL) {
        snprintf(err, errlen, "%s:%d: out_forward needs tag in the <buffer> chunk keys ('%s')",
                 buf->file, buf->line, buf->arg);
        return LS_ERROR;
    }
    if (fw->dns_round_robin && fw->heartbeat_type == FW_HB_UDP) {
        ls_conf_param_error(sec, "dns_round_robin", err, errlen,
                            "dns_round_robin cannot be used with heartbeat_type udp");
        return LS_ERROR;
    }
    for (s = sec->children; s; s = s->next) {
        fw->nnodes += strcmp(s->name, "server") == 0;
    }
    if (fw->nnodes == 0) {
        snprintf(err, errlen, "%s:%d: out_forward needs at least one <server>", sec->file,
                 sec->line);
        return LS_ERROR;
    }
    fw->nodes = ls_calloc(fw->nnodes, sizeof(*fw->nodes));
    for (s = sec->children; s; s = s->next) {
        struct fw_node *n;

        if (strcmp(s->name, "server") != 0) {
            continue;
        }
        n = &fw->nodes[i++];
        if (ls_param_bind(fw_server_params, s, n, err, errlen) != LS_OK) {
            return LS_ERROR;
        }
        snprintf(n->label, sizeof(n->label), "%s%s%s:%lld%s", n->name ? n->name : "",
                 n->name ? " (" : "", n->host, (long long)n->port, n->name ? ")" : "");
        n->available = true;
    }
    s = ls_conf_child(sec, "security");
    if (s) {
        fw->security = true;
        if (ls_param_bind(fw_security_params, s, fw, err, errlen) != LS_OK) {
            return LS_ERROR;
        }
    }
    if (fw->transport == 1 && fw_tls_init(fw, err, errlen) != LS_OK) {
        return LS_ERROR;
    }
    fw->wa_dirty = true;
    for (i = 0; i < fw->nnodes; i++) {
        char e[256];

        if (fw_resolve(fw, &fw->nodes[i], true, e, sizeof(e)) != LS_OK) {
            if (!fw->ignore_network_errors_at_startup) {
                snprintf(err, errlen, "%s:%d: %s (ignore_network_errors_at_startup starts anyway)",
                         sec->file, sec->line, e);
                return LS_ERROR;
            }
            ls_plg_warn(ins, "%s; resolving again at each connection", e);
        }
    }
    if (fw->verify_connection_at_startup) {
        ls_engine_hold_start(ins->engine);
    }
    return LS_OK;
}

static void *fw_verify_main(void *arg)
{
    struct fw *fw = arg;
    struct fw_job *j = ls_calloc(1, sizeof(*j));
    size_t i;

    j->verify = true;
    j->rc = LS_ERROR;
    snprintf(j->err, sizeof(j->err), "no server could be reached");
    for (i = 0; i < fw->nnodes && j->rc != LS_OK; i++) {
        char err[256];
        struct fw_conn *c = fw_connect(fw, &fw->nodes[i], ls_mono_now() + fw->send_timeout, err,
                                       sizeof(err));
        if (c) {
            fw_conn_close(c);
            j->rc = LS_OK;
        } else {
            snprintf(j->err, sizeof(j->err), "%.100s: %.150s", fw->nodes[i].label, err);
        }
    }
    fw_post(fw, j);
    return NULL;
}

static int fw_start(struct ls_instance *ins)
{
    struct fw *fw = ins->ctx;

    fw->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fw->efd < 0) {
        ls_plg_error(ins, "eventfd: %s", strerror(errno));
        return LS_ERROR;
    }
    fw->eio = ls_io_new(ins, fw->efd, LS_IO_READ, fw_done_cb, fw);
    fw->nthreads = ls_output_concurrency(ins);
    fw->threads = ls_calloc((size_t)fw->nthreads + 1, sizeof(pthread_t));
    for (int i = 0; i < fw->nthreads; i++) {
        pthread_create(&fw->threads[i], NULL, fw_sender_main, fw);
    }
    if (fw->verify_connection_at_startup) {
        pthread_create(&fw->threads[fw->nthreads++], NULL, fw_verify_main, fw);
    }
    if (fw->heartbeat_type != FW_HB_NONE || (fw->keepalive && fw->ka_timeout >= 0)) {
        double now = ls_mono_now();
        for (size_t i = 0; i < fw->nnodes; i++) {
            fw->nodes[i].last_arrival = now;
        }
        fw->hb_running = pthread_create(&fw->hb_thread, NULL, fw_hb_main, fw) == 0;
    }
    ls_plg_info(ins, "forwarding to %zu server%s over %s%s%s", fw->nnodes,
                fw->nnodes == 1 ? "" : "s", fw->transport ? "tls" : "tcp",
                fw->security ? " with the shared_key handshake" : "",
                fw->require_ack_response ? ", each chunk acknowledged" : "");
    return LS_OK;
}

static void fw_free_jobs(struct fw_job *j)
{
    while (j) {
        struct fw_job *next = j->next;
        ls_buf_release(&j->msg);
        ls_free(j->tag);
        ls_free(j);
        j = next;
    }
}

static void fw_destroy(struct ls_instance *ins)
{
    struct fw *fw = ins->ctx;

    if (fw->mu_ready) {
        pthread_mutex_lock(&fw->mu);
        fw->quit = true;
        pthread_cond_broadcast(&fw->cv);
        pthread_mutex_unlock(&fw->mu);
    }
    for (int i = 0; i < fw->nthreads; i++) {
        pthread_join(fw->threads[i], NULL);
    }
    if (fw->hb_running) {
        pthread_join(fw->hb_thread, NULL);
    }
    ls_free(fw->threads);
    /* jobs still queued or finished unseen: their chunks stay in the buffer */
    fw_free_jobs(fw->q_head);
    fw_free_jobs(fw->d_head);
    ls_io_free(fw->eio);
    if (fw->efd >= 0) {
        close(fw->efd);
    }
    for (size_t i = 0; i < fw->nnodes; i++) {
        struct fw_conn *c, *next;
        for (c = fw->nodes[i].idle; c; c = next) {
            next = c->next;
            fw_conn_close(c);
        }
        ls_param_release(fw_server_params, &fw->nodes[i]);
    }
    ls_free(fw->nodes);
    ls_free(fw->wa);
    if (fw->security) {
        ls_param_release(fw_security_params, fw);
    }
    fw_tls_free(fw);
    if (fw->mu_ready) {
        pthread_mutex_destroy(&fw->mu);
        pthread_cond_destroy(&fw->cv);
    }
}

/* out_forward always stores MessagePack entries; the formatter reads time_as_integer from the
   <match> itself, as fluentd's Output does */
static const char *fw_formatter_for(struct ls_conf_section *sec, struct ls_conf_section **fsec,
                                    char *err, size_t errlen)
{
    *fsec = sec;
    return "msgpack";
}

/* ---- secure_forward: fluent-plugin-secure-forward's output ---- */

/*
 * out_secure_forward (0.4) is out_forward over TLS with the shared_key handshake, which
 * fluentd's forward took from it; set up from the plugin's flat parameters: self_hostname
 * (__HOSTNAME__ / ${hostname} replaced by hostname, default the host name) and shared_key as a
 * <security>, <server> with port 24284 by default and hostlabel as the name the certificate
 * is checked against, ssl_version, ssl_ciphers, keepalive (how long a connection is kept for
 * more chunks; unset or 0: a connection per chunk, as out_forward without keepalive). secure false
 * checks no certificate (with the plugin's warning); secure true trusts ca_cert_path, or the
 * system's CAs with enable_strict_verification (the host name checked), as the plugin
 * requires.
 */
static const struct ls_param sfw_params[] = {
    FW_ROWS_1
    FW_ROWS_2
    { "secure", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0,
      "(required) true: check the server's certificate (ca_cert_path, or a public CA with "
      "enable_strict_verification); false: do not", NULL, NULL, 0, 0 },
    { "self_hostname", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "(required) this host's name in the handshake; __HOSTNAME__ and ${hostname} are replaced",
      NULL, NULL, 0, 0 },
    { "hostname", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "what __HOSTNAME__ and ${hostname} stand for (default: the host name)", NULL, NULL, 0,
      0 },
    { "shared_key", LS_P_SECRET, NULL, LS_PF_NO_STORE, 0,
      "(required) the handshake's key (a <server> may have its own)", NULL, NULL, 0, 0 },
    { "keepalive", LS_P_TIME, NULL, LS_PF_NO_STORE, 0,
      "keep a connection for chunks this long (unset or 0: one connection per chunk)", NULL,
      NULL, 0, 0 },
    { "ca_cert_path", LS_P_STR, NULL, LS_PF_NO_STORE, 0, "the CA to trust (secure true)", NULL,
      NULL, 0, 0 },
    { "enable_strict_verification", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0,
      "check the certificate names the server (hostlabel or host)", NULL, NULL, 0, 0 },
    { "ssl_version", LS_P_STR, "TLSv1_2", LS_PF_NO_STORE, 0, "lowest TLS version", NULL, NULL,
      0, 0 },
    { "ssl_ciphers", LS_P_STR, NULL, LS_PF_NO_STORE, 0, "OpenSSL cipher list", NULL, NULL, 0,
      0 },
    { "connection_hard_timeout", LS_P_TIME, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL, 0,
      0 },
    { "read_length", LS_P_SIZE, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL, 0, 0 },
    { "read_interval_msec, socket_interval_msec, reconnect_interval, established_timeout",
      LS_P_STR, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL, 0, 0 },
    { "server: host, port, hostlabel", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "`<server>` (one or more): address, port (24284) and the name its certificate has", NULL,
      NULL, 0, 0 },
    { "server: shared_key, username, password, standby", LS_P_SECRET, NULL, LS_PF_NO_STORE, 0,
      "its own key, login, and whether it is used only while the others are down", NULL, NULL,
      0, 0 },
    LS_PARAM_END
};

/* the flat parameters that are not out_forward's, bound (and checked) by the binder */
struct sf_flags {
    bool secure;
    bool enable_strict_verification;
    char *hostname;
};

static const struct ls_param sf_flag_params[] = {
    { "secure", LS_P_BOOL, NULL, LS_PF_REQUIRED, offsetof(struct sf_flags, secure), NULL, NULL,
      NULL, 0, 0 },
    { "enable_strict_verification", LS_P_BOOL, "false", 0,
      offsetof(struct sf_flags, enable_strict_verification), NULL, NULL, NULL, 0, 0 },
    { "hostname", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct sf_flags, hostname), NULL,
      NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static int sfw_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                    size_t errlen)
{
    struct fw *fw = ins->ctx;
    struct ls_conf_section *s, *ssec;
    struct ls_conf_param *cp;
    struct sf_flags fl;
    const char *v;
    bool secure, strict;
    char host[256] = "localhost";
    struct ls_buf name;

    memset(&fl, 0, sizeof(fl));
    if (ls_param_bind(sf_flag_params, sec, &fl, err, errlen) != LS_OK) {
        ls_param_release(sf_flag_params, &fl);
        return LS_ERROR;
    }
    secure = fl.secure;
    strict = fl.enable_strict_verification;
    snprintf(host, sizeof(host), "%s", fl.hostname ? fl.hostname : "");
    if (fl.hostname == NULL) {
        (void)gethostname(host, sizeof(host) - 1);
    }
    ls_param_release(sf_flag_params, &fl);
    /* the plugin's flat handshake settings as the <security> out_forward reads */
    if (ls_conf_child(sec, "security") == NULL) {
        ssec = ls_conf_add_child(sec, "security", "");
        ssec->file = sec->file;
        ssec->line = sec->line;
        ls_buf_init(&name, 0);
        if ((v = ls_conf_get(sec, "self_hostname")) != NULL) {
            for (const char *p = v; *p;) {
                if (strncmp(p, "__HOSTNAME__", 12) == 0) {
                    ls_buf_append(&name, host, strlen(host));
                    p += 12;
                } else if (strncmp(p, "${hostname}", 11) == 0) {
                    ls_buf_append(&name, host, strlen(host));
                    p += 11;
                } else {
                    ls_buf_putc(&name, *p++);
                }
            }
            ls_conf_set(ssec, "self_hostname", ls_buf_cstr(&name), sec->file, sec->line);
        }
        ls_buf_release(&name);
        if ((v = ls_conf_get(sec, "shared_key")) != NULL) {
            ls_conf_set(ssec, "shared_key", v, sec->file, sec->line);
        }
    }
    for (s = sec->children; s; s = s->next) {
        if (strcmp(s->name, "server") != 0) {
            continue;
        }
        if (ls_conf_get(s, "port") == NULL) {
            ls_conf_set(s, "port", "24284", s->file, s->line);
        }
        if ((v = ls_conf_get(s, "hostlabel")) != NULL && ls_conf_get(s, "name") == NULL) {
            ls_conf_set(s, "name", v, s->file, s->line);
        }
        if ((cp = ls_conf_get_param(s, "proxy_uri")) != NULL) {
            cp->used = true;
        }
    }
    fw->transport = 1;
    if ((v = ls_conf_get(sec, "ssl_version")) != NULL) {
        static const char *const versions[] = { "TLSv1_1", "TLSv1_2", "TLSv1_3" };
        size_t k;
        for (k = 0; k < LS_ARRAY_LEN(versions) && strcmp(v, versions[k]) != 0; k++) {
        }
        if (k == LS_ARRAY_LEN(versions)) {
            ls_conf_param_error(sec, "ssl_version", err, errlen, "unknown TLS version '%s' "
                                "(TLSv1_1, TLSv1_2, TLSv1_3)", v);
            return LS_ERROR;
        }
        fw->tls_version = (int)k;
    }
    if ((v = ls_conf_get(sec, "ssl_ciphers")) != NULL) {
        ls_free(fw->tls_ciphers);
        fw->tls_ciphers = ls_strdup(v);
    }
    if ((v = ls_conf_get(sec, "keepalive")) != NULL) {
        double t;
        if (ls_parse_time(v, &t) != LS_OK || t < 0) {
            ls_conf_param_error(sec, "keepalive", err, errlen, "invalid value '%s' for "
                                "'keepalive' (expected a time like 3600 or 1h)", v);
            return LS_ERROR;
        }
        if (t > 0) {
            fw->keepalive = true;
            ls_free(fw->keepalive_timeout);
            fw->keepalive_timeout = ls_strdup(v);
        }
    }
    if (!secure) {
        ls_warn("%s:%d: 'insecure' mode has vulnerability for man-in-the-middle attacks.",
                sec->file, sec->line);
        fw->tls_insecure_mode = true;
    } else if ((v = ls_conf_get(sec, "ca_cert_path")) != NULL) {
        if (access(v, R_OK) != 0) {
            ls_conf_param_error(sec, "ca_cert_path", err, errlen, "CA cert file not found nor "
                                "readable at '%s'", v);
            return LS_ERROR;
        }
        ls_strv_release(&fw->tls_ca_cert_path);
        (void)ls_parse_array(v, &fw->tls_ca_cert_path);
        fw->tls_verify_hostname = strict;
    } else if (!strict) {
        snprintf(err, errlen, "%s:%d: FQDN verification required for certificates issued from "
                 "public CA", sec->file, sec->line);
        return LS_ERROR;
    } else {
        fw->tls_verify_hostname = true;
    }
    return fw_init(ins, sec, err, errlen);
}

const struct ls_plugin ls_plugin_out_secure_forward = {
    .name = "secure_forward",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "fluent-plugin-secure-forward's client: out_forward over TLS with the "
                   "shared_key handshake, from the plugin's parameters",
    .params = sfw_params,
    .ctx_size = sizeof(struct fw),
    .init = sfw_init,
    .destroy = fw_destroy,
    .start = fw_start,
    .output_flags = LS_OUT_BUFFERED,
    .default_formatter = "msgpack",
    .default_chunk_keys = "tag",
    .formatter_for = fw_formatter_for,
    .write = fw_write,
};

const struct ls_plugin ls_plugin_out_forward = {
    .name = "forward",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "send chunks to fluentd/logship servers over the Forward protocol "
                   "(<server>, <security>, tls, acks)",
    .params = fw_params,
    .ctx_size = sizeof(struct fw),
    .init = fw_init,
    .destroy = fw_destroy,
    .start = fw_start,
    .output_flags = LS_OUT_BUFFERED,
    .default_formatter = "msgpack",
    .default_chunk_keys = "tag",
    .formatter_for = fw_formatter_for,
    .write = fw_write,
};
