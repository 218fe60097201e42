/*
 * in_prometheus.c - fluent-plugin-prometheus's `<source> @type prometheus`: serves the
 * process's registry (prom.h), which the prometheus filter, output and monitor inputs fill, in
 * the text exposition format at metrics_path (and at aggregated_metrics_path, which with
 * logship's single worker is the same).
 *
 * The HTTP server is libmicrohttpd in external mode on the engine's loop, as monitor_agent's:
 * its epoll descriptor is one read watcher and MHD_get_timeout drives a timer, so a scrape is
 * answered on the loop thread and reads the registry without locks while records are counted.
 * Defaults are the released plugin's (v2.2.2: bind 0.0.0.0, port 24231).
 */
#include "prom.h"
#include "log.h"
#include "../in_monitor_agent/mhd_api.h"

#include <arpa/inet.h>
#include <libdeflate.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>

#define PIN_RESPONSE_MAX (64u << 20)

struct pin_ctx {
    char *bind;
    int64_t port;
    char *metrics_path;
    char *aggregated_metrics_path;
    int content_encoding;
    double ignore_error_log_interval;
    /* state */
    struct ls_instance *ins;
    struct MHD_Daemon *mhd;
    struct ls_io *io;
    struct ls_timer *timer;
    struct prom_registry *reg;
};

static const struct ls_param pin_params[] = {
    { "bind", LS_P_STR, "0.0.0.0", 0, offsetof(struct pin_ctx, bind),
      "address to listen on (the released plugin's default; 127.0.0.1 keeps it local)", NULL,
      NULL, 0, 0 },
    { "port", LS_P_INT, "24231", 0, offsetof(struct pin_ctx, port),
      "TCP port (0: any free port, logged at start)", NULL, NULL, 0, 65535 },
    { "metrics_path", LS_P_STR, "/metrics", 0, offsetof(struct pin_ctx, metrics_path),
      "path of the metrics", NULL, NULL, 0, 0 },
    { "aggregated_metrics_path", LS_P_STR, "/aggregated_metrics", 0,
      offsetof(struct pin_ctx, aggregated_metrics_path),
      "every worker's metrics: the same as metrics_path (logship runs one worker)", NULL, NULL,
      0, 0 },
    { "content_encoding", LS_P_ENUM, "identity", 0, offsetof(struct pin_ctx, content_encoding),
      "gzip: compress the answer", NULL, "identity|gzip", 0, 0 },
    { "ignore_error_log_interval", LS_P_TIME, "3600", 0,
      offsetof(struct pin_ctx, ignore_error_log_interval), "accepted (no errors to repeat)",
      NULL, NULL, 0, 1e9 },
    LS_PARAM_END
};

static enum MHD_Result pin_reply(struct pin_ctx *ctx, struct MHD_Connection *conn,
                                 unsigned status, const char *type, const char *body,
                                 size_t len)
{
    struct MHD_Response *resp;
    enum MHD_Result rc;
    void *gz = NULL;

    if (ctx->content_encoding == 1 && status == MHD_HTTP_OK) {
        struct libdeflate_compressor *c = libdeflate_alloc_compressor(6);
        size_t cap = c ? libdeflate_gzip_compress_bound(c, len) : 0;
        gz = c ? ls_malloc(cap) : NULL;
        len = gz ? libdeflate_gzip_compress(c, body, len, gz, cap) : 0;
        libdeflate_free_compressor(c);
        body = gz;
    }
    resp = MHD_create_response_from_buffer(len, (void *)(body ? body : ""),
                                           MHD_RESPMEM_MUST_COPY);
    ls_free(gz);
    if (resp == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (ctx->content_encoding == 1 && status == MHD_HTTP_OK) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    }
    rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result pin_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version,
                                   const char *upload_data, size_t *upload_data_size,
                                   void **con_cls)
{
    struct pin_ctx *ctx = cls;
    struct ls_buf out;
    enum MHD_Result rc;
    LS_UNUSED(version);
    LS_UNUSED(upload_data);
    LS_UNUSED(upload_data_size);
    LS_UNUSED(con_cls);

    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        static const char msg[] = "only GET and HEAD are supported\n";
        return pin_reply(ctx, conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", msg,
                         sizeof(msg) - 1);
    }
    if (strcmp(url, ctx->metrics_path) != 0 && strcmp(url, ctx->aggregated_metrics_path) != 0) {
        static const char msg[] = "Not Found\n";
        return pin_reply(ctx, conn, MHD_HTTP_NOT_FOUND, "text/plain", msg, sizeof(msg) - 1);
    }
    ls_buf_init(&out, PIN_RESPONSE_MAX);
    prom_render(ctx->reg, &out);
    rc = pin_reply(ctx, conn, MHD_HTTP_OK, "text/plain; version=0.0.4", out.p, out.len);
    ls_buf_release(&out);
    return rc;
}

/* MHD's work, then its next deadline (connection timeouts, or at once when it has more). */
static void pin_run(struct pin_ctx *ctx)
{
    MHD_UNSIGNED_LONG_LONG ms = 0;

    if (ctx->mhd == NULL) {
        return;
    }
    (void)MHD_run(ctx->mhd);
    if (MHD_get_timeout(ctx->mhd, &ms) == MHD_YES) {
        ls_timer_start(ctx->timer, (double)ms / 1000.0, 0);
    } else {
        ls_timer_stop(ctx->timer);
    }
}

static void pin_io_cb(struct ls_io *io, int revents, void *arg)
{
    LS_UNUSED(io);
    LS_UNUSED(revents);
    pin_run(arg);
}

static void pin_timer_cb(struct ls_timer *t, void *arg)
{
    LS_UNUSED(t);
    pin_run(arg);
}

/* The listening socket, made here so that a failure names its errno. */
static int pin_listen(struct pin_ctx *ctx, int *fdp, unsigned *port)
{
    struct addrinfo hints, *res = NULL, *ai;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char pstr[16];
    int fd = -1, one = 1, gai, saved = 0;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(pstr, sizeof(pstr), "%lld", (long long)ctx->port);
    gai = getaddrinfo(ctx->bind, pstr, &hints, &res);
    if (gai != 0) {
        ls_plg_error(ctx->ins, "cannot resolve bind address '%s': %s", ctx->bind,
                     gai_strerror(gai));
        return LS_ERROR;
    }
    for (ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0) {
            saved = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        ls_plg_error(ctx->ins, "cannot listen on %s:%lld (%d: %s)", ctx->bind,
                     (long long)ctx->port, saved, strerror(saved));
        return LS_ERROR;
    }
    *port = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        *port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    *fdp = fd;
    return LS_OK;
}

static void pin_stop(struct ls_instance *ins)
{
    struct pin_ctx *ctx = ins->ctx;

    ls_io_free(ctx->io);
    ctx->io = NULL;
    ls_timer_free(ctx->timer);
    ctx->timer = NULL;
    if (ctx->mhd) {
        MHD_stop_daemon(ctx->mhd);   /* closes the listening socket too */
        ctx->mhd = NULL;
    }
}

static int pin_start(struct ls_instance *ins)
{
    struct pin_ctx *ctx = ins->ctx;
    const union MHD_DaemonInfo *info;
    unsigned port;
    int fd;

    if (ls_oneshot(ins->engine)) {
        ls_input_done(ins);
    }
    if (pin_listen(ctx, &fd, &port) != LS_OK) {
        return LS_ERROR;
    }
    /* a scrape is one short request: few connections, short timeouts */
    ctx->mhd = MHD_start_daemon(MHD_USE_EPOLL, 0, NULL, NULL, pin_handler, ctx,
                                MHD_OPTION_LISTEN_SOCKET, fd,
                                MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64,
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
                                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                                MHD_OPTION_END);
    if (ctx->mhd == NULL) {
        close(fd);
        ls_plg_error(ins, "cannot start the HTTP server on %s:%u", ctx->bind, port);
        return LS_ERROR;
    }
    info = MHD_get_daemon_info(ctx->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    if (info == NULL || info->epoll_fd < 0) {
        ls_plg_error(ins, "the HTTP server has no epoll descriptor");
        pin_stop(ins);
        return LS_ERROR;
    }
    ctx->timer = ls_timer_new(ins, pin_timer_cb, ctx);
    ctx->io = ls_io_new(ins, info->epoll_fd, LS_IO_READ, pin_io_cb, ctx);
    pin_run(ctx);
    if (strcmp(ctx->bind, "127.0.0.1") != 0 && strcmp(ctx->bind, "::1") != 0 &&
        strcmp(ctx->bind, "localhost") != 0) {
        ls_plg_warn(ins, "listening on %s: every host that can reach it can read the metrics "
                    "(bind 127.0.0.1 keeps them local)", ctx->bind);
    }
    ls_plg_info(ins, "listening on http://%s%s%s:%u%s", strchr(ctx->bind, ':') ? "[" : "",
                ctx->bind, strchr(ctx->bind, ':') ? "]" : "", port, ctx->metrics_path);
    return LS_OK;
}

static int pin_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                    size_t errlen)
{
    struct pin_ctx *ctx = ins->ctx;
    char why[512];

    ctx->ins = ins;
    ctx->reg = prom_registry_ref(ins->engine);
    if (ctx->metrics_path[0] != '/') {
        ls_conf_param_error(sec, "metrics_path", err, errlen, "metrics_path must start with /");
        return LS_ERROR;
    }
    if (mhd_api_load(why, sizeof(why)) != LS_OK) {
        snprintf(err, errlen, "%s:%d: %s", sec->file, sec->line, why);
        return LS_ERROR;
    }
    return LS_OK;
}

static void pin_destroy(struct ls_instance *ins)
{
    struct pin_ctx *ctx = ins->ctx;

    pin_stop(ins);
    prom_registry_unref(ctx->reg);
}

const struct ls_plugin ls_plugin_in_prometheus = {
    .name = "prometheus",
    .kind = LS_PLUGIN_INPUT,
    .description = "serve the prometheus plugins' metrics over HTTP (fluent-plugin-prometheus)",
    .params = pin_params,
    .ctx_size = sizeof(struct pin_ctx),
    .init = pin_init,
    .destroy = pin_destroy,
    .start = pin_start,
    .stop = pin_stop,
};
