/*
 * net.c - listening sockets shared by the network inputs (see net.h).
 */
#include "net.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#define NET_READ_MAX   65536
#define NET_ACCEPT_MAX 64        /* accepts per wake-up */
#define NET_DNS_CACHE  64        /* UDP: peers whose names are remembered */
#define NET_DNS_TTL    60.0

struct ls_net_conn {
    struct ls_net *net;
    int fd;
    struct ls_io *io;
    char *buf;
    size_t len, cap;
    double last_active;
    struct ls_net_peer peer;
    struct ls_framer framer;
    struct ls_net_conn *prev, *next;
};

struct net_dns {
    struct sockaddr_storage sa;
    socklen_t salen;
    double at;
    struct ls_net_peer peer;
};

struct ls_net {
    struct ls_instance *ins;
    struct ls_net_opts o;
    char *bind;
    int fd;
    int port;
    size_t tcp_limit;             /* a connection's buffer: one frame and its header */
    struct ls_io *io;
    struct ls_timer *sweep;       /* idle connections (TCP) */
    struct ls_timer *later;       /* resume replay; accept retry after EMFILE */
    struct ls_net_conn *conns;
    bool paused;                  /* back-pressure from the buffers */
    bool held;                    /* the last commit failed: no reads until one succeeds */
    bool accept_blocked;
    double commit_warn_at, drop_warn_at;
    size_t emitted;               /* messages emitted since the last commit */
    char *rbuf;                   /* UDP datagram area */
    struct net_dns *dns;
    double refused_warn_at, trunc_warn_at, emfile_warn_at, overlong_warn_at;
    struct ls_net_stats st;
};

/* ------------------------------------------------------------------ */
/* framing                                                              */

static int frame_delim(struct ls_framer *f, const char *p, size_t len, size_t *off,
                       const char **frame, size_t *flen, size_t *dropped)
{
    const char *s = p + *off, *d;
    size_t rem = len - *off, keep = f->dlen - 1;

    d = rem >= f->dlen ? memmem(s, rem, f->delim, f->dlen) : NULL;
    if (f->discarding) {
        if (d == NULL) {
            if (rem > keep) {
                *off = len - keep;
            }
            return LS_AGAIN;
        }
        f->discarding = false;
        *off += (size_t)(d - s) + f->dlen;
        return frame_delim(f, p, len, off, frame, flen, dropped);
    }
    if (d != NULL) {
        size_t n = (size_t)(d - s);
        *off += n + f->dlen;
        if (n > f->max) {
            *dropped = n;
            return LS_DECLINED;
        }
        *frame = s;
        *flen = n;
        return LS_OK;
    }
    if (rem > keep && rem - keep > f->max) {
        /* no delimiter within max bytes: this frame can only be too long */
        *dropped = rem - keep;
        *off = len - keep;
        f->discarding = true;
        return LS_DECLINED;
    }
    return LS_AGAIN;
}

static int frame_octet(struct ls_framer *f, const char *p, size_t len, size_t *off,
                       const char **frame, size_t *flen, size_t *dropped)
{
    size_t i, n = 0, digits = 0;

    if (f->skip) {
        size_t take = len - *off < f->skip ? len - *off : (size_t)f->skip;
        *off += take;
        f->skip -= take;
        if (f->skip) {
            return LS_AGAIN;
        }
    }
    /* fluentd reads the length with Integer(), which allows whitespace around it (a stray LF
       between frames); a space there would be taken as the end of an empty length */
    while (*off < len && (p[*off] == '\n' || p[*off] == '\r' || p[*off] == '\t' ||
                          p[*off] == '\v' || p[*off] == '\f')) {
        (*off)++;
    }
    for (i = *off; i < len && p[i] != ' '; i++) {
        if (p[i] < '0' || p[i] > '9' || ++digits > 10) {
            return LS_ERROR;
        }
        n = n * 10 + (size_t)(p[i] - '0');
    }
    if (i >= len) {
        return LS_AGAIN;
    }
    if (digits == 0) {
        return LS_ERROR;
    }
    if (n > f->max) {
        *off = i + 1;
        f->skip = n;
        *dropped = n;
        return LS_DECLINED;
    }
    if (len - (i + 1) < n) {
        return LS_AGAIN;
    }
    *frame = p + i + 1;
    *flen = n;
    *off = i + 1 + n;
    return LS_OK;
}

int ls_framer_next(struct ls_framer *f, const char *p, size_t len, size_t *off, const char **frame,
                   size_t *flen, size_t *dropped)
{
    *dropped = 0;
    if (*off >= len && !f->discarding && !f->skip) {
        return LS_AGAIN;
    }
    if (f->octet) {
        return frame_octet(f, p, len, off, frame, flen, dropped);
    }
    return frame_delim(f, p, len, off, frame, flen, dropped);
}

/* ------------------------------------------------------------------ */
/* peers                                                                */

static void net_peer(struct ls_net *n, const struct sockaddr *sa, socklen_t salen,
                     struct ls_net_peer *peer)
{
    if (getnameinfo(sa, salen, peer->addr, sizeof(peer->addr), NULL, 0, NI_NUMERICHOST) != 0) {
        snprintf(peer->addr, sizeof(peer->addr), "?");
    }
    /* fluentd shows IPv4 peers of a dual-stack socket as plain IPv4 */
    if (strncmp(peer->addr, "::ffff:", 7) == 0 && strchr(peer->addr + 7, '.')) {
        memmove(peer->addr, peer->addr + 7, strlen(peer->addr + 7) + 1);
    }
    snprintf(peer->host, sizeof(peer->host), "%s", peer->addr);
    if (n->o.resolve_hostname &&
        getnameinfo(sa, salen, peer->host, sizeof(peer->host), NULL, 0, NI_NAMEREQD) != 0) {
        snprintf(peer->host, sizeof(peer->host), "%s", peer->addr);
    }
}

/* UDP: reverse lookups are blocking, so each address is looked up once a minute at most */
static const struct ls_net_peer *net_udp_peer(struct ls_net *n, const struct sockaddr_storage *sa,
                                              socklen_t salen)
{
    double now = ls_mono_now();
    struct net_dns *slot = NULL;
    size_t i;

    if (n->dns == NULL) {
        n->dns = ls_calloc(NET_DNS_CACHE, sizeof(*n->dns));
    }
    for (i = 0; i < NET_DNS_CACHE; i++) {
        struct net_dns *d = &n->dns[i];
        if (d->salen == salen && memcmp(&d->sa, sa, salen) == 0) {
            if (!n->o.resolve_hostname || now - d->at < NET_DNS_TTL) {
                return &d->peer;
            }
            slot = d;
            break;
        }
        if (slot == NULL || d->at < slot->at) {
            slot = d;     /* the oldest entry gives way */
        }
    }
    memcpy(&slot->sa, sa, salen);
    slot->salen = salen;
    slot->at = now;
    net_peer(n, (const struct sockaddr *)sa, salen, &slot->peer);
    return &slot->peer;
}

static void net_commit(struct ls_net *n);

/* ------------------------------------------------------------------ */
/* TCP connections                                                      */

static void conn_close(struct ls_net_conn *c)
{
    struct ls_net *n = c->net;

    if (c->prev) {
        c->prev->next = c->next;
    } else {
        n->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    ls_io_free(c->io);
    close(c->fd);
    ls_free(c->buf);
    ls_free(c);
    n->st.conns--;
    if (n->st.conns == 0 && n->sweep) {
        ls_timer_stop(n->sweep);
    }
}

/* Hand the connection's complete frames to the plugin. false: the connection was closed. */
static bool conn_deliver(struct ls_net_conn *c)
{
    struct ls_net *n = c->net;
    size_t off = 0;
    bool ok = true;

    while (!n->paused) {
        const char *frame = NULL;
        size_t flen = 0, dropped = 0, at = off;
        int rc = ls_framer_next(&c->framer, c->buf, c->len, &off, &frame, &flen, &dropped);

        if (rc == LS_AGAIN) {
            break;
        }
        if (rc == LS_DECLINED) {
            double now = ls_mono_now();
            n->ins->metrics.dropped++;
            n->st.overlong++;
            if (now - n->overlong_warn_at >= 10.0) {
                n->overlong_warn_at = now;
                ls_plg_warn(n->ins, "a message of %zu+ bytes from %s is longer than "
                            "message_length_limit %zu; dropped (%llu so far)", dropped,
                            c->peer.addr, c->framer.max, (unsigned long long)n->st.overlong);
            }
            continue;
        }
        if (rc != LS_OK) {
            n->ins->metrics.errors++;
            ls_plg_warn(n->ins, "connection from %s: not an octet count at \"%.*s\"; closed",
                        c->peer.addr, (int)(c->len - off > 16 ? 16 : c->len - off),
                        c->buf + off);
            ok = false;
            break;
        }
        rc = n->o.on_message(frame, flen, &c->peer, n->o.arg);
        if (rc == LS_AGAIN) {
            off = at;     /* the frame stays for the replay after resume */
            ls_net_pause(n);
            break;
        }
        n->emitted += rc == LS_OK;
    }
    if (off) {
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
    }
    if (c->len == 0 && c->cap > 16384) {
        /* a burst of long messages is over: idle connections keep no big buffers */
        ls_free(c->buf);
        c->buf = NULL;
        c->cap = 0;
    }
    if (!ok) {
        conn_close(c);
    }
    return ok;
}

static void conn_read_cb(struct ls_io *io, int revents, void *arg)
{
    struct ls_net_conn *c = arg;
    struct ls_net *n = c->net;
    size_t want;
    ssize_t r;
    LS_UNUSED(io);
    LS_UNUSED(revents);

    if (n->paused) {
        return;
    }
    want = n->tcp_limit - c->len;
    if (want > NET_READ_MAX) {
        want = NET_READ_MAX;
    }
    if (c->cap - c->len < want) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap - c->len < want) {
            cap *= 2;
        }
        if (cap > n->tcp_limit) {
            cap = n->tcp_limit;
        }
        c->buf = ls_realloc(c->buf, cap);
        c->cap = cap;
        want = cap - c->len;
    }
    r = read(c->fd, c->buf + c->len, want);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        return;
    }
    if (r <= 0) {
        if (c->len && !c->framer.discarding) {
            /* fluentd drops an unterminated tail too; say so */
            ls_plg_warn(n->ins, "connection from %s closed in the middle of a message (%zu "
                        "bytes without a delimiter); dropped", c->peer.addr, c->len);
            n->ins->metrics.dropped++;
        }
        if (r < 0) {
            ls_plg_debug(n->ins, "read from %s: %s", c->peer.addr, strerror(errno));
        }
        conn_close(c);
        return;
    }
    c->len += (size_t)r;
    c->last_active = ls_mono_now();
    (void)conn_deliver(c);
    net_commit(n);
}

static void net_sweep_cb(struct ls_timer *t, void *arg)
{
    struct ls_net *n = arg;
    struct ls_net_conn *c = n->conns, *next;
    double now = ls_mono_now();
    LS_UNUSED(t);

    for (; c; c = next) {
        next = c->next;
        if (now - c->last_active >= n->o.idle_timeout) {
            ls_plg_debug(n->ins, "connection from %s idle for %.0fs; closed", c->peer.addr,
                         now - c->last_active);
            n->st.idle_closed++;
            conn_close(c);
        }
    }
}

static void net_accept_cb(struct ls_io *io, int revents, void *arg)
{
    struct ls_net *n = arg;
    int i;
    LS_UNUSED(io);
    LS_UNUSED(revents);

    for (i = 0; i < NET_ACCEPT_MAX && !n->paused; i++) {
        struct sockaddr_storage sa;
        socklen_t salen = sizeof(sa);
        struct ls_net_conn *c;
        double now;
        int fd = accept4(n->fd, (struct sockaddr *)&sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* out of descriptors: stop accepting for a second instead of spinning */
                now = ls_mono_now();
                if (now - n->emfile_warn_at >= 10.0) {
                    n->emfile_warn_at = now;
                    ls_plg_warn(n->ins, "cannot accept connections on port %d: %s (%llu "
                                "connected); retrying in 1s", n->port, strerror(errno),
                                (unsigned long long)n->st.conns);
                }
                n->accept_blocked = true;
                ls_io_set(n->io, 0);
                if (!n->held) {
                    ls_timer_start(n->later, 1.0, 0);
                }
            }
            return;
        }
        if (n->st.conns >= (uint64_t)n->o.max_connections) {
            close(fd);
            n->st.refused++;
            now = ls_mono_now();
            if (now - n->refused_warn_at >= 10.0) {
                n->refused_warn_at = now;
                ls_plg_warn(n->ins, "%llu connection(s) refused: max_connections %d reached",
                            (unsigned long long)n->st.refused, n->o.max_connections);
            }
            continue;
        }
        c = ls_calloc(1, sizeof(*c));
        c->net = n;
        c->fd = fd;
        c->framer = n->o.framer;
        c->last_active = ls_mono_now();
        net_peer(n, (struct sockaddr *)&sa, salen, &c->peer);
        if (n->o.keepalive) {
            int one = 1;
            (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        }
        c->next = n->conns;
        if (n->conns) {
            n->conns->prev = c;
        }
        n->conns = c;
        n->st.conns++;
        n->st.accepted++;
        c->io = ls_io_new(n->ins, fd, LS_IO_READ, conn_read_cb, c);
        if (n->st.conns == 1 && n->o.idle_timeout > 0) {
            double every = n->o.idle_timeout / 4;
            every = every < 1 ? 1 : every > 60 ? 60 : every;
            ls_timer_start(n->sweep, every, every);
        }
    }
}

/* ------------------------------------------------------------------ */
/* UDP                                                                  */

static void net_udp_cb(struct ls_io *io, int revents, void *arg)
{
    struct ls_net *n = arg;
    int i, got = 0;
    LS_UNUSED(io);
    LS_UNUSED(revents);

    for (i = 0; i < LS_NET_UDP_BATCH; i++) {
        struct sockaddr_storage sa;
        struct iovec iov = { n->rbuf, n->o.buf_limit };
        struct msghdr mh;
        ssize_t r;
        bool trunc;
        int rc;

        memset(&mh, 0, sizeof(mh));
        mh.msg_name = &sa;
        mh.msg_namelen = sizeof(sa);
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        r = recvmsg(n->fd, &mh, 0);
        if (r < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                ls_plg_debug(n->ins, "recvmsg: %s", strerror(errno));
            }
            break;
        }
        got++;
        trunc = (mh.msg_flags & MSG_TRUNC) != 0;
        if (trunc) {
            double now = ls_mono_now();
            n->st.truncated++;
            if (now - n->trunc_warn_at >= 10.0) {
                n->trunc_warn_at = now;
                ls_plg_warn(n->ins, "%llu datagram(s) longer than message_length_limit %zu "
                            "were cut to that length", (unsigned long long)n->st.truncated,
                            n->o.buf_limit);
            }
        }
        rc = n->o.on_message(n->rbuf, (size_t)r, net_udp_peer(n, &sa, mh.msg_namelen), n->o.arg);
        if (rc == LS_AGAIN) {
            double now = ls_mono_now();
            n->st.udp_dropped++;
            n->ins->metrics.dropped++;
            if (now - n->drop_warn_at >= 10.0) {
                n->drop_warn_at = now;
                ls_plg_warn(n->ins, "the buffer is full: %llu datagram(s) dropped so far (UDP "
                            "peers cannot be made to wait)", (unsigned long long)n->st.udp_dropped);
            }
        }
        n->emitted += rc == LS_OK;
    }
    if (got) {
        net_commit(n);
    }
}

/* ------------------------------------------------------------------ */
/* listener                                                             */

static void net_watch(struct ls_net *n, bool on)
{
    struct ls_net_conn *c;

    if (n->io) {
        ls_io_set(n->io, on ? LS_IO_READ : 0);
    }
    for (c = n->conns; c; c = c->next) {
        ls_io_set(c->io, on ? LS_IO_READ : 0);
    }
}

static void net_later_cb(struct ls_timer *t, void *arg)
{
    struct ls_net *n = arg;
    struct ls_net_conn *c, *next;
    LS_UNUSED(t);

    n->accept_blocked = false;
    if (n->held) {
        if (ls_input_commit(n->ins) != LS_OK) {
            ls_timer_start(n->later, 1.0, 0);
            return;
        }
        ls_plg_info(n->ins, "records are durable again; reading resumes");
        n->held = false;
    }
    if (n->paused) {
        return;
    }
    /* what was read before the pause and not yet taken goes first */
    for (c = n->conns; c && !n->paused; c = next) {
        next = c->next;
        (void)conn_deliver(c);
    }
    net_commit(n);
    if (!n->paused && !n->held) {
        net_watch(n, true);
    }
}

static void net_commit(struct ls_net *n)
{
    double now;

    if (n->emitted == 0) {
        return;
    }
    n->emitted = 0;
    if (ls_input_commit(n->ins) == LS_OK) {
        return;
    }
    now = ls_mono_now();
    if (now - n->commit_warn_at >= 10.0) {
        n->commit_warn_at = now;
        ls_plg_warn(n->ins, "received records are not durable yet (the buffer cannot write)%s",
                    n->o.udp ? "" : "; reading stops until they are");
    }
    if (n->o.udp || n->held) {
        return;       /* UDP peers cannot be told to wait */
    }
    n->held = true;
    net_watch(n, false);
    ls_timer_start(n->later, 1.0, 0);
}

struct ls_net *ls_net_listen(struct ls_instance *ins, const struct ls_net_opts *o, char *err,
                             size_t errlen)
{
    struct addrinfo hints, *res = NULL, *ai;
    struct ls_net *n;
    char port[16];
    int rc, fd = -1, one = 1, e = 0;
    struct sockaddr_storage sa;
    socklen_t salen = sizeof(sa);

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = o->udp ? SOCK_DGRAM : SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%d", o->port);
    rc = getaddrinfo(o->bind && *o->bind ? o->bind : NULL, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s:%d: %s", o->bind, o->port, gai_strerror(rc));
        return NULL;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            e = errno;
            continue;
        }
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (o->receive_buffer_size > 0) {
            int v = o->receive_buffer_size > INT32_MAX ? INT32_MAX : (int)o->receive_buffer_size;
            (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
        }
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && (o->udp || listen(fd, 1024) == 0)) {
            break;
        }
        e = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errlen, "cannot listen on %s:%d (%s): %s", o->bind, o->port,
                 o->udp ? "udp" : "tcp", strerror(e));
        return NULL;
    }
    n = ls_calloc(1, sizeof(*n));
    n->ins = ins;
    n->o = *o;
    n->bind = ls_strdup(o->bind ? o->bind : "");
    n->o.bind = n->bind;
    n->fd = fd;
    n->port = o->port;
    if (getsockname(fd, (struct sockaddr *)&sa, &salen) == 0) {
        n->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                                 : ((struct sockaddr_in *)&sa)->sin_port);
    }
    n->tcp_limit = o->framer.max + o->framer.dlen + 32;
    if (o->udp) {
        n->rbuf = ls_malloc(o->buf_limit ? o->buf_limit : 1);
    }
    n->later = ls_timer_new(ins, net_later_cb, n);
    n->sweep = ls_timer_new(ins, net_sweep_cb, n);
    return n;
}

void ls_net_start(struct ls_net *n)
{
    n->io = ls_io_new(n->ins, n->fd, LS_IO_READ, n->o.udp ? net_udp_cb : net_accept_cb, n);
}

void ls_net_close(struct ls_net *n)
{
    if (n == NULL) {
        return;
    }
    while (n->conns) {
        conn_close(n->conns);
    }
    ls_io_free(n->io);
    ls_timer_free(n->later);
    ls_timer_free(n->sweep);
    close(n->fd);
    ls_free(n->rbuf);
    ls_free(n->dns);
    ls_free(n->bind);
    ls_free(n);
}

void ls_net_pause(struct ls_net *n)
{
    /* UDP keeps reading: the plugin counts what it cannot take, the kernel would not */
    if (n == NULL || n->paused || n->o.udp) {
        return;
    }
    n->paused = true;
    net_watch(n, false);
}

void ls_net_resume(struct ls_net *n)
{
    if (n == NULL || !n->paused) {
        return;
    }
    n->paused = false;
    /* from the loop, not from inside whatever relieved the buffer */
    if (!n->held) {
        ls_timer_start(n->later, 0, 0);
    }
}

int ls_net_port(const struct ls_net *n)
{
    return n->port;
}

const struct ls_net_stats *ls_net_stats(const struct ls_net *n)
{
    return &n->st;
}

void ls_net_add_peer(struct ls_record *rec, const struct ls_net_peer *peer, const char *addr_key,
                     const char *host_key)
{
    struct ls_value v;

    if (addr_key) {
        v = ls_vstr(peer->addr, strlen(peer->addr));
        ls_record_set(rec, addr_key, strlen(addr_key), &v);
    }
    if (host_key) {
        v = ls_vstr(peer->host, strlen(peer->host));
        ls_record_set(rec, host_key, strlen(host_key), &v);
    }
}

size_t ls_net_chomp(const char *p, size_t len)
{
    if (len && p[len - 1] == '\n') {
        len--;
        if (len && p[len - 1] == '\r') {
            len--;
        }
    } else if (len && p[len - 1] == '\r') {
        len--;
    }
    return len;
}
