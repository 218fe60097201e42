/*
 * mhd_server.c - the server behind mhd_server.h.
 */
#include "mhd_server.h"
#include "log.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>

/*
 * Connections are bounded by evicting the oldest, not by refusing new ones: with a plain
 * limit (MHD's CONNECTION_LIMIT) a few dozen idle local connections filled every slot and
 * the listen backlog, so /metrics went unanswered until they timed out, one batch after
 * another. A scrape connects, asks and is answered within one loop turn, so the oldest
 * connection is the one least likely to be a scrape in progress.
 */
#define MHD_SERVER_MAX_CONNS 32u

struct mhd_conn {
    int fd;
    struct mhd_conn *prev, *next;     /* prev: newer, next: older */
};

struct mhd_server {
    struct ls_instance *ins;
    struct MHD_Daemon *mhd;
    struct ls_io *io;
    struct ls_timer *timer;
    struct mhd_conn *conns;      /* open connections, newest first */
    struct mhd_conn *oldest;
    unsigned nconns;
};

/* Run MHD's work, then arm the timer for its next deadline (connection timeouts,
 * or at once when it still has buffered work that epoll will not report again). */
static void mhd_server_run(struct mhd_server *s)
{
    MHD_UNSIGNED_LONG_LONG ms = 0;

    (void)MHD_run(s->mhd);
    if (MHD_get_timeout(s->mhd, &ms) == MHD_YES) {
        ls_timer_start(s->timer, (double)ms / 1000.0, 0);
    } else {
        ls_timer_stop(s->timer);
    }
}

static void mhd_server_io_cb(struct ls_io *io, int revents, void *arg)
{
    LS_UNUSED(io);
    LS_UNUSED(revents);
    mhd_server_run(arg);
}

static void mhd_server_timer_cb(struct ls_timer *t, void *arg)
{
    LS_UNUSED(t);
    mhd_server_run(arg);
}

static void mhd_conn_unlink(struct mhd_server *s, struct mhd_conn *c)
{
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        s->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    } else {
        s->oldest = c->prev;
    }
    s->nconns--;
}

static void mhd_server_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                              enum MHD_ConnectionNotificationCode code)
{
    struct mhd_server *s = cls;
    struct mhd_conn *c = *socket_context;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci == NULL) {
            return;
        }
        c = ls_calloc(1, sizeof(*c));
        c->fd = ci->connect_fd;
        c->next = s->conns;
        if (s->conns) {
            s->conns->prev = c;
        } else {
            s->oldest = c;
        }
        s->conns = c;
        s->nconns++;
        *socket_context = c;
        if (s->nconns > MHD_SERVER_MAX_CONNS) {
            /* MHD closes it on its next run, when it reads the end of the stream; shutdown
             * rather than close, so the descriptor stays MHD's until then */
            struct mhd_conn *old = s->oldest;
            (void)shutdown(old->fd, SHUT_RDWR);
            mhd_conn_unlink(s, old);
            old->fd = -1;
            old->prev = old->next = NULL;
        }
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && c) {
        if (c->fd >= 0) {
            mhd_conn_unlink(s, c);
        }
        ls_free(c);
        *socket_context = NULL;
    }
}

/* Create the listening socket; LS_ERROR with the reason logged. */
static int mhd_server_listen(struct ls_instance *ins, const char *bind_addr, int64_t port_num,
                             int *fdp, char *where, size_t wlen)
{
    struct addrinfo hints, *res = NULL, *ai;
    char port[16];
    int fd = -1, one = 1, gai, saved = 0;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(port, sizeof(port), "%lld", (long long)port_num);
    gai = getaddrinfo(bind_addr, port, &hints, &res);
    if (gai != 0) {
        ls_plg_error(ins, "cannot resolve bind address '%s': %s", bind_addr, gai_strerror(gai));
        return LS_ERROR;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0) {
            break;
        }
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        ls_plg_error(ins, "cannot listen on %s:%lld (%d: %s)", bind_addr, (long long)port_num,
                     saved, strerror(saved));
        return LS_ERROR;
    }
    {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        char host[INET6_ADDRSTRLEN] = "?";
        unsigned pnum = 0;
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
            if (ss.ss_family == AF_INET) {
                struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
                inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
                pnum = ntohs(s4->sin_port);
            } else if (ss.ss_family == AF_INET6) {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
                inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
                pnum = ntohs(s6->sin6_port);
            }
        }
        snprintf(where, wlen, "%s%s%s:%u", strchr(host, ':') ? "[" : "", host,
                 strchr(host, ':') ? "]" : "", pnum);
    }
    *fdp = fd;
    return LS_OK;
}

void mhd_server_stop(struct mhd_server *s)
{
    if (s == NULL) {
        return;
    }
    ls_io_free(s->io);
    ls_timer_free(s->timer);
    if (s->mhd) {
        MHD_stop_daemon(s->mhd);   /* closes the listening socket and every connection */
    }
    ls_free(s);
}

struct mhd_server *mhd_server_start(struct ls_instance *ins, const char *bind, int64_t port,
                                    MHD_AccessHandlerCallback handler, void *cls, char *where,
                                    size_t wlen)
{
    struct mhd_server *s;
    const union MHD_DaemonInfo *info;
    int fd;

    if (mhd_server_listen(ins, bind, port, &fd, where, wlen) != LS_OK) {
        return NULL;
    }
    s = ls_calloc(1, sizeof(*s));
    s->ins = ins;
    s->mhd = MHD_start_daemon(MHD_USE_EPOLL, 0, NULL, NULL, handler, cls,
                              MHD_OPTION_LISTEN_SOCKET, fd,
                              /* a safety net: mhd_server_notify keeps it at MAX_CONNS */
                              MHD_OPTION_CONNECTION_LIMIT, MHD_SERVER_MAX_CONNS * 2,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
                              MHD_OPTION_NOTIFY_CONNECTION, mhd_server_notify, s,
                              MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                              MHD_OPTION_END);
    if (s->mhd == NULL) {
        close(fd);
        ls_plg_error(ins, "cannot start the HTTP server on %s", where);
        ls_free(s);
        return NULL;
    }
    info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    if (info == NULL || info->epoll_fd < 0) {
        ls_plg_error(ins, "the HTTP server has no epoll descriptor");
        mhd_server_stop(s);
        return NULL;
    }
    s->timer = ls_timer_new(ins, mhd_server_timer_cb, s);
    s->io = ls_io_new(ins, info->epoll_fd, LS_IO_READ, mhd_server_io_cb, s);
    mhd_server_run(s);
    if (strcmp(bind, "127.0.0.1") != 0 && strcmp(bind, "::1") != 0 &&
        strcmp(bind, "localhost") != 0) {
        ls_plg_warn(ins, "listening on %s: every host that can reach it can read the metrics",
                    where);
    }
    return s;
}

enum MHD_Result mhd_server_reply(struct MHD_Connection *conn, unsigned status, const char *type,
                                 const char *encoding, const void *body, size_t len)
{
    struct MHD_Response *resp;
    enum MHD_Result rc;

    resp = MHD_create_response_from_buffer(len, (void *)(body ? body : ""),
                                           MHD_RESPMEM_MUST_COPY);
    if (resp == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (encoding) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, encoding);
    }
    rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}
