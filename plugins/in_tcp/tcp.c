/*
 * tcp.c - fluentd's in_tcp and in_udp: lines over TCP (split on delimiter) or datagrams over
 * UDP, each parsed by the required <parse> and emitted with the configured tag. Both inputs
 * are here because they differ only in the socket (agent/net.c serves both).
 *
 * Every read's records are made durable before the next read (ls_net_commit); a full buffer
 * stops TCP reading; UDP datagrams that a full buffer refuses are counted and dropped.
 */
#include "plugin.h"
#include "parser.h"
#include "net.h"
#include "log.h"

struct tcp_ctx {
    char *tag;
    int64_t port;
    char *bind;
    char *delimiter;
    int64_t message_length_limit;
    bool remove_newline;
    int64_t receive_buffer_size;
    char *source_address_key;
    char *source_hostname_key;
    char *source_host_key;
    bool send_keepalive_packet;
    double blocking_timeout;
    int64_t max_connections;
    double idle_timeout;
    /* state */
    const char *host_key;
    bool udp;
    struct ls_instance *ins;
    struct ls_instance *parser;
    struct ls_net *net;
    struct ls_arena arena;
    struct ls_record rec;
    uint64_t bad;
    double bad_warn_at;
};

#define TCP_COMMON_PARAMS                                                                       \
    { "tag", LS_P_STR, NULL, LS_PF_REQUIRED, offsetof(struct tcp_ctx, tag),                     \
      "tag of the records", NULL, NULL, 0, 0 },                                                 \
    { "bind", LS_P_STR, "0.0.0.0", 0, offsetof(struct tcp_ctx, bind), "address to listen on",   \
      NULL, NULL, 0, 0 },                                                                       \
    { "source_address_key", LS_P_STR, NULL, LS_PF_NULLABLE,                                     \
      offsetof(struct tcp_ctx, source_address_key), "add the peer's IP address under this key", \
      NULL, NULL, 0, 0 },                                                                       \
    { "source_hostname_key", LS_P_STR, NULL, LS_PF_NULLABLE,                                    \
      offsetof(struct tcp_ctx, source_hostname_key),                                            \
      "add the peer's resolved host name under this key (blocking reverse DNS)", NULL, NULL, 0, \
      0 },                                                                                      \
    { "source_host_key", LS_P_STR, NULL, LS_PF_NULLABLE | LS_PF_DEPRECATED,                     \
      offsetof(struct tcp_ctx, source_host_key), "deprecated: use source_hostname_key", NULL,   \
      NULL, 0, 0 },                                                                             \
    { "blocking_timeout", LS_P_TIME, "0.5", 0, offsetof(struct tcp_ctx, blocking_timeout),      \
      "accepted for compatibility (the loop does not poll)", NULL, NULL, 0, 0 }

static const struct ls_param tcp_params[] = {
    TCP_COMMON_PARAMS,
    { "port", LS_P_INT, "5170", 0, offsetof(struct tcp_ctx, port), "port to listen on", NULL,
      NULL, 0, 65535 },
    { "delimiter", LS_P_STR, "\n", 0, offsetof(struct tcp_ctx, delimiter),
      "end of each message (default \"\\n\", a newline)", NULL, NULL, 0, 0 },
    { "message_length_limit", LS_P_SIZE, NULL, 0, offsetof(struct tcp_ctx, message_length_limit),
      "longer messages are dropped (unset: 1 MiB; fluentd: no limit)", NULL, NULL, 0, 1 << 30 },
    { "send_keepalive_packet", LS_P_BOOL, "false", 0,
      offsetof(struct tcp_ctx, send_keepalive_packet), "SO_KEEPALIVE", NULL, NULL, 0, 0 },
    { "max_connections", LS_P_INT, "1024", 0, offsetof(struct tcp_ctx, max_connections),
      "logship: peers served at once; more are refused (closed)", NULL, NULL, 1, 1000000 },
    { "idle_timeout", LS_P_TIME, "3600", 0, offsetof(struct tcp_ctx, idle_timeout),
      "logship: close connections silent this long (0: never)", NULL, NULL, 0, 1e9 },
    LS_PARAM_END
};

static const struct ls_param udp_params[] = {
    TCP_COMMON_PARAMS,
    { "port", LS_P_INT, "5160", 0, offsetof(struct tcp_ctx, port), "port to listen on", NULL,
      NULL, 0, 65535 },
    { "message_length_limit", LS_P_SIZE, "4096", 0,
      offsetof(struct tcp_ctx, message_length_limit),
      "bytes read of each datagram (longer ones are cut, counted and logged)", "body_size_limit",
      NULL, 1, 1 << 30 },
    { "remove_newline", LS_P_BOOL, "true", 0, offsetof(struct tcp_ctx, remove_newline),
      "remove one trailing newline from each datagram", NULL, NULL, 0, 0 },
    { "receive_buffer_size", LS_P_SIZE, NULL, 0, offsetof(struct tcp_ctx, receive_buffer_size),
      "SO_RCVBUF of the socket (unset: the system's)", NULL, NULL, 0, 1 << 30 },
    LS_PARAM_END
};

static int tcp_init_common(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                           size_t errlen)
{
    struct tcp_ctx *ctx = ins->ctx;
    struct ls_conf_section *ps = ls_conf_child(sec, "parse"), *tr = ls_conf_child(sec, "transport");

    ctx->ins = ins;
    ls_arena_init(&ctx->arena, 4096);
    ls_record_init(&ctx->rec, &ctx->arena);
    if (tr && tr->arg[0] && strcmp(tr->arg, ctx->udp ? "udp" : "tcp") != 0) {
        snprintf(err, errlen, "%s:%d: <transport %s> is not supported here (%s)", tr->file,
                 tr->line, tr->arg, ctx->udp ? "udp only" : "tcp only; tls is not supported yet");
        return LS_ERROR;
    }
    if (tr) {
        /* fluentd reads receive_buffer_size from <transport> too */
        const char *rbs = ls_conf_get(tr, "receive_buffer_size");
        if (rbs && ctx->udp && ls_parse_size(rbs, &ctx->receive_buffer_size) != LS_OK) {
            ls_conf_param_error(tr, "receive_buffer_size", err, errlen, "not a size: '%s'", rbs);
            return LS_ERROR;
        }
    }
    ctx->host_key = ctx->source_hostname_key ? ctx->source_hostname_key : ctx->source_host_key;
    if (ps == NULL) {
        if (ls_conf_get_param(sec, "format") == NULL) {
            snprintf(err, errlen, "%s:%d: <parse> section is required.", sec->file, sec->line);
            return LS_ERROR;
        }
        ps = ls_parser_flat_section(sec);
    }
    ctx->parser = ls_instance_create(ins->engine, ins, LS_PLUGIN_PARSER, NULL, ps, err, errlen);
    return ctx->parser ? LS_OK : LS_ERROR;
}

static int tcp_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct tcp_ctx *ctx = ins->ctx;

    if (ctx->delimiter[0] == '\0') {
        ls_conf_param_error(sec, "delimiter", err, errlen, "delimiter must not be empty");
        return LS_ERROR;
    }
    return tcp_init_common(ins, sec, err, errlen);
}

static int udp_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    ((struct tcp_ctx *)ins->ctx)->udp = true;
    return tcp_init_common(ins, sec, err, errlen);
}

static void tcp_destroy(struct ls_instance *ins)
{
    struct tcp_ctx *ctx = ins->ctx;

    ls_net_close(ctx->net);
    ls_instance_destroy(ctx->parser);
    ls_record_release(&ctx->rec);
    ls_arena_release(&ctx->arena);
}

/* One message: parse, add the peer, emit. Returns as net.h's on_message. */
static int tcp_message(struct tcp_ctx *ctx, const char *p, size_t len,
                       const struct ls_net_peer *peer)
{
    int rc;

    ls_record_clear(&ctx->rec);
    ls_arena_reset(&ctx->arena);
    ctx->rec.tag = ctx->tag;
    ctx->rec.tag_len = strlen(ctx->tag);
    ls_wall_now(&ctx->rec.time.sec, &ctx->rec.time.nsec);
    rc = ls_parser_parse(ctx->parser, p, len, &ctx->rec);
    if (rc != LS_OK) {
        double now = ls_mono_now();
        const char *why = ls_parser_error(ctx->parser);
        ctx->bad++;
        ctx->ins->metrics.errors++;
        if (now - ctx->bad_warn_at >= 1.0) {
            ctx->bad_warn_at = now;
            ls_plg_warn(ctx->ins, "%s: \"%.*s\"%s (%llu so far)", why ? why : "pattern not matched",
                        (int)(len > 200 ? 200 : len), p, len > 200 ? "..." : "",
                        (unsigned long long)ctx->bad);
        }
        ls_record_clear(&ctx->rec);
        return LS_DECLINED;
    }
    ls_net_add_peer(&ctx->rec, peer, ctx->source_address_key, ctx->host_key);
    rc = ls_emit(ctx->ins, &ctx->rec);
    ls_record_clear(&ctx->rec);
    ls_arena_reset(&ctx->arena);
    return rc == LS_AGAIN ? LS_AGAIN : LS_OK;
}

static int tcp_on_message(const char *p, size_t len, const struct ls_net_peer *peer, void *arg)
{
    struct tcp_ctx *ctx = arg;

    if (ctx->udp && ctx->remove_newline) {
        len = ls_net_chomp(p, len);
    }
    return tcp_message(ctx, p, len, peer);
}

static int tcp_start(struct ls_instance *ins)
{
    struct tcp_ctx *ctx = ins->ctx;
    struct ls_net_opts o;
    char err[512];

    memset(&o, 0, sizeof(o));
    o.bind = ctx->bind;
    o.port = (int)ctx->port;
    o.udp = ctx->udp;
    o.buf_limit = (size_t)ctx->message_length_limit;
    o.max_connections = (int)ctx->max_connections;
    o.idle_timeout = ctx->idle_timeout;
    o.keepalive = ctx->send_keepalive_packet;
    o.resolve_hostname = ctx->host_key != NULL;
    o.receive_buffer_size = ctx->receive_buffer_size;
    if (!ctx->udp) {
        o.framer.delim = ctx->delimiter;
        o.framer.dlen = strlen(ctx->delimiter);
        o.framer.max = ctx->message_length_limit ? (size_t)ctx->message_length_limit : 1 << 20;
    }
    o.on_message = tcp_on_message;
    o.arg = ctx;
    ctx->net = ls_net_listen(ins, &o, err, sizeof(err));
    if (ctx->net == NULL) {
        ls_plg_error(ins, "%s", err);
        return LS_ERROR;
    }
    ls_plg_info(ins, "listening %s socket on %s:%d", ctx->udp ? "udp" : "tcp", ctx->bind,
                ls_net_port(ctx->net));
    ls_net_start(ctx->net);
    return LS_OK;
}

static void tcp_stop(struct ls_instance *ins)
{
    struct tcp_ctx *ctx = ins->ctx;

    ls_net_close(ctx->net);
    ctx->net = NULL;
}

static void tcp_pause(struct ls_instance *ins)
{
    ls_net_pause(((struct tcp_ctx *)ins->ctx)->net);
}

static void tcp_resume(struct ls_instance *ins)
{
    ls_net_resume(((struct tcp_ctx *)ins->ctx)->net);
}

const struct ls_plugin ls_plugin_in_tcp = {
    .name = "tcp",
    .kind = LS_PLUGIN_INPUT,
    .description = "messages over TCP split on a delimiter, parsed by <parse> (fluentd's in_tcp)",
    .params = tcp_params,
    .ctx_size = sizeof(struct tcp_ctx),
    .init = tcp_init,
    .destroy = tcp_destroy,
    .start = tcp_start,
    .stop = tcp_stop,
    .pause = tcp_pause,
    .resume = tcp_resume,
};

const struct ls_plugin ls_plugin_in_udp = {
    .name = "udp",
    .kind = LS_PLUGIN_INPUT,
    .description = "one message per UDP datagram, parsed by <parse> (fluentd's in_udp)",
    .params = udp_params,
    .ctx_size = sizeof(struct tcp_ctx),
    .init = udp_init,
    .destroy = tcp_destroy,
    .start = tcp_start,
    .stop = tcp_stop,
    .pause = tcp_pause,
    .resume = tcp_resume,
};
