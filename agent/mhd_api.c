/*
 * mhd_api.c - the table behind mhd_api.h.
 */
#include "common.h"
#include "dynlib.h"
#include "log.h"
#include "mhd_api.h"
#include "plugin.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>

struct mhd_api mhd_api;

static const struct ls_dynsym mhd_api_syms[] = {
#define MHD_API_SYM(f) { #f, offsetof(struct mhd_api, f##_p) },
    MHD_API_FUNCS(MHD_API_SYM)
#undef MHD_API_SYM
};

/* the SONAME of the ABI microhttpd.h describes; Debian ships it in libmicrohttpd12 */
static struct ls_dynlib mhd_api_lib = {
    .soname = "libmicrohttpd.so.12",
    .package = "libmicrohttpd12",
    .syms = mhd_api_syms,
    .nsyms = LS_ARRAY_LEN(mhd_api_syms),
    .table = &mhd_api,
};

int mhd_api_load(char *err, size_t errlen)
{
    return ls_dynlib_load(&mhd_api_lib, err, errlen);
}

int mhd_api_listen(struct ls_instance *ins, const char *addr, long long port, int backlog,
                   int *fdp, char *where, size_t wlen)
{
    struct addrinfo hints, *res = NULL, *ai;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char pstr[24], host[INET6_ADDRSTRLEN] = "?";
    unsigned pnum = 0;
    int fd = -1, one = 1, gai, saved = 0;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(pstr, sizeof(pstr), "%lld", port);
    gai = getaddrinfo(addr, pstr, &hints, &res);
    if (gai != 0) {
        ls_plg_error(ins, "cannot resolve bind address '%s': %s", addr, gai_strerror(gai));
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
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
            listen(fd, backlog > 0 ? backlog : SOMAXCONN) == 0) {
            break;
        }
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        ls_plg_error(ins, "cannot listen on %s:%lld (%d: %s)", addr, port, saved,
                     strerror(saved));
        return LS_ERROR;
    }
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
    *fdp = fd;
    return LS_OK;
}

void mhd_api_loop_run(struct mhd_api_loop *l)
{
    MHD_UNSIGNED_LONG_LONG ms = 0;

    if (l->mhd == NULL || l->in_run) {
        return;
    }
    l->in_run = true;
    (void)MHD_run(l->mhd);
    l->in_run = false;
    /* its next deadline (connection timeouts), or at once when it still has buffered work
     * that epoll will not report again */
    if (MHD_get_timeout(l->mhd, &ms) == MHD_YES) {
        ls_timer_start(l->timer, (double)ms / 1000.0, 0);
    } else {
        ls_timer_stop(l->timer);
    }
}

static void loop_io_cb(struct ls_io *io, int revents, void *arg)
{
    LS_UNUSED(io);
    LS_UNUSED(revents);
    mhd_api_loop_run(arg);
}

static void loop_timer_cb(struct ls_timer *t, void *arg)
{
    LS_UNUSED(t);
    mhd_api_loop_run(arg);
}

int mhd_api_loop_start(struct mhd_api_loop *l, struct ls_instance *ins, struct MHD_Daemon *mhd)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_EPOLL_FD);

    l->mhd = mhd;
    if (info == NULL || info->epoll_fd < 0) {
        ls_plg_error(ins, "the HTTP server has no epoll descriptor");
        mhd_api_loop_stop(l);
        return LS_ERROR;
    }
    l->timer = ls_timer_new(ins, loop_timer_cb, l);
    l->io = ls_io_new(ins, info->epoll_fd, LS_IO_READ, loop_io_cb, l);
    mhd_api_loop_run(l);
    return LS_OK;
}

void mhd_api_loop_stop(struct mhd_api_loop *l)
{
    ls_io_free(l->io);
    l->io = NULL;
    ls_timer_free(l->timer);
    l->timer = NULL;
    if (l->mhd) {
        MHD_stop_daemon(l->mhd);
        l->mhd = NULL;
    }
}

static void conns_unlink(struct mhd_api_conns *cs, struct mhd_api_conn *c)
{
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        cs->newest = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    } else {
        cs->oldest = c->prev;
    }
    c->prev = c->next = NULL;
    cs->n--;
}

void mhd_api_conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct mhd_api_conns *cs = cls;
    struct mhd_api_conn *c = *socket_context, *old;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci == NULL) {
            return;
        }
        c = ls_calloc(1, sizeof(*c));
        c->fd = ci->connect_fd;
        c->next = cs->newest;
        if (cs->newest) {
            cs->newest->prev = c;
        } else {
            cs->oldest = c;
        }
        cs->newest = c;
        cs->n++;
        *socket_context = c;
        if (cs->n <= cs->max) {
            return;
        }
        for (old = cs->oldest; old && old->busy; old = old->prev) {
        }
        if (old && old != c) {
            /* MHD closes it on its next run, when it reads the end of the stream; shutdown
             * rather than close, so the descriptor stays MHD's until then */
            (void)shutdown(old->fd, SHUT_RDWR);
            conns_unlink(cs, old);
            old->fd = -1;
        }
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && c) {
        if (c->fd >= 0) {
            conns_unlink(cs, c);
        }
        ls_free(c);
        *socket_context = NULL;
    }
}

struct mhd_api_conn *mhd_api_conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return ci ? ci->socket_context : NULL;
}
