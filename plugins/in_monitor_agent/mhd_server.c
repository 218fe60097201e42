/*
 * mhd_server.c - the server behind mhd_server.h, on agent/mhd_api's listener, loop driver and
 * connection bound (shared with in_http).
 */
#include "mhd_server.h"
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/*
 * Connections are bounded by closing the oldest, not by refusing new ones (mhd_api.h): with a
 * plain limit a few dozen idle local connections filled every slot and the listen backlog, so
 * /metrics went unanswered until they timed out. A scrape connects, asks and is answered
 * within one loop turn, so the oldest connection is the one least likely to be one in progress.
 */
#define MHD_SERVER_MAX_CONNS 32u

struct mhd_server {
    struct mhd_api_loop loop;
    struct mhd_api_conns conns;     /* never marked busy */
};

void mhd_server_stop(struct mhd_server *s)
{
    if (s == NULL) {
        return;
    }
    mhd_api_loop_stop(&s->loop);    /* closes the listening socket and every connection */
    ls_free(s);
}

struct mhd_server *mhd_server_start(struct ls_instance *ins, const char *bind, int64_t port,
                                    MHD_AccessHandlerCallback handler, void *cls, char *where,
                                    size_t wlen)
{
    struct mhd_server *s;
    struct MHD_Daemon *mhd;
    int fd;

    if (mhd_api_listen(ins, bind, (long long)port, 64, &fd, where, wlen) != LS_OK) {
        return NULL;
    }
    s = ls_calloc(1, sizeof(*s));
    s->conns.max = MHD_SERVER_MAX_CONNS;
    mhd = MHD_start_daemon(MHD_USE_EPOLL, 0, NULL, NULL, handler, cls,
                           MHD_OPTION_LISTEN_SOCKET, fd,
                           /* a safety net: mhd_api_conns_notify keeps it at MAX_CONNS */
                           MHD_OPTION_CONNECTION_LIMIT, MHD_SERVER_MAX_CONNS * 2,
                           MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
                           MHD_OPTION_NOTIFY_CONNECTION, mhd_api_conns_notify, &s->conns,
                           MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                           MHD_OPTION_END);
    if (mhd == NULL) {
        close(fd);
        ls_plg_error(ins, "cannot start the HTTP server on %s", where);
        ls_free(s);
        return NULL;
    }
    if (mhd_api_loop_start(&s->loop, ins, mhd) != LS_OK) {
        ls_free(s);
        return NULL;
    }
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
