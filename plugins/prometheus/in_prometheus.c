/*
 * in_prometheus.c - fluent-plugin-prometheus's `<source> @type prometheus`: serves the
 * process's registry (prom.h), which the prometheus filter, output and monitor inputs fill, in
 * the text exposition format at metrics_path (and at aggregated_metrics_path, which with
 * logship's single worker is the same).
 *
 * The HTTP server is monitor_agent's (mhd_server.h): a scrape is answered on the loop thread and
 * reads the registry without locks while records are counted.
 * Defaults are the released plugin's (v2.2.2: bind 0.0.0.0, port 24231).
 */
#include "prom.h"
#include "log.h"
#include "../in_monitor_agent/mhd_server.h"

#include <libdeflate.h>
#include <stdio.h>

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
    struct mhd_server *srv;
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
                                 unsigned status, const char *body, size_t len)
{
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
    rc = mhd_server_reply(conn, status, status == MHD_HTTP_OK ? "text/plain; version=0.0.4"
                                        : "text/plain", gz ? "gzip" : NULL, body, len);
    ls_free(gz);
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
        return pin_reply(ctx, conn, MHD_HTTP_METHOD_NOT_ALLOWED, msg, sizeof(msg) - 1);
    }
    if (strcmp(url, ctx->metrics_path) != 0 && strcmp(url, ctx->aggregated_metrics_path) != 0) {
        static const char msg[] = "Not Found\n";
        return pin_reply(ctx, conn, MHD_HTTP_NOT_FOUND, msg, sizeof(msg) - 1);
    }
    ls_buf_init(&out, PIN_RESPONSE_MAX);
    prom_render(ctx->reg, &out);
    rc = pin_reply(ctx, conn, MHD_HTTP_OK, out.p, out.len);
    ls_buf_release(&out);
    return rc;
}

static void pin_stop(struct ls_instance *ins)
{
    struct pin_ctx *ctx = ins->ctx;

    mhd_server_stop(ctx->srv);
    ctx->srv = NULL;
}

static int pin_start(struct ls_instance *ins)
{
    struct pin_ctx *ctx = ins->ctx;
    char where[80];

    if (ls_oneshot(ins->engine)) {
        ls_input_done(ins);
    }
    ctx->srv = mhd_server_start(ins, ctx->bind, ctx->port, pin_handler, ctx, where,
                                sizeof(where));
    if (ctx->srv == NULL) {
        return LS_ERROR;
    }
    ls_plg_info(ins, "listening on http://%s%s", where, ctx->metrics_path);
    return LS_OK;
}

static int pin_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                    size_t errlen)
{
    struct pin_ctx *ctx = ins->ctx;
    struct ls_conf_section *c;
    bool tls = false;
    char why[512];

    ctx->ins = ins;
    ctx->reg = prom_registry_ref(ins->engine);
    if (ctx->metrics_path[0] != '/') {
        ls_conf_param_error(sec, "metrics_path", err, errlen, "metrics_path must start with /");
        return LS_ERROR;
    }
    /* plaintext where the file asks for TLS would be a silent downgrade: refuse it */
    for (c = sec->children; c; c = c->next) {
        const char *en = strcmp(c->name, "ssl") == 0 ? ls_conf_get(c, "enable") : NULL;
        if ((strcmp(c->name, "transport") == 0 && strcmp(c->arg, "tls") == 0) ||
            (en && (ls_parse_bool(en, &tls) != LS_OK || tls))) {
            snprintf(err, errlen, "%s:%d: <%s%s%s> is not supported: logship serves the metrics "
                     "over plain HTTP (put a TLS proxy in front, or bind 127.0.0.1)", c->file,
                     c->line, c->name, c->arg[0] ? " " : "", c->arg);
            return LS_ERROR;
        }
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
