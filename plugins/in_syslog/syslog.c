/*
 * syslog.c - fluentd's in_syslog: syslog messages over UDP or TCP (newline or RFC 6587 octet
 * framing), parsed by the syslog parser (with_priority on), tagged <tag>.<facility>.<severity>.
 *
 * Every read's records are made durable before the next read (ls_net_commit); a full buffer
 * stops TCP reading; UDP datagrams that a full buffer refuses are counted and dropped.
 */
#include "plugin.h"
#include "parser.h"
#include "net.h"
#include "log.h"

enum { PROTO_UDP, PROTO_TCP, PROTO_TLS };

struct syslog_ctx {
    char *tag;
    int64_t port;
    char *bind;
    char *protocol_type;
    int frame_type;
    char *delimiter;
    int64_t message_length_limit;
    char *severity_key;
    char *facility_key;
    char *source_address_key;
    char *source_hostname_key;
    bool include_source_host;
    char *source_host_key;
    bool resolve_hostname;
    bool send_keepalive_packet;
    bool emit_unmatched_lines;
    double blocking_timeout;
    int64_t max_connections;
    double idle_timeout;
    /* state */
    struct ls_instance *ins;
    struct ls_instance *parser;
    bool parser_pri;          /* the parser reads <pri> itself (with_priority) */
    int proto;
    struct ls_net *net;
    struct ls_arena arena;
    struct ls_record rec;
    uint64_t bad;
    double bad_warn_at;
};

static const struct ls_param syslog_params[] = {
    { "tag", LS_P_STR, NULL, LS_PF_REQUIRED, offsetof(struct syslog_ctx, tag),
      "tag prefix; records are tagged <tag>.<facility>.<severity>", NULL, NULL, 0, 0 },
    { "port", LS_P_INT, "5140", 0, offsetof(struct syslog_ctx, port), "port to listen on", NULL,
      NULL, 0, 65535 },
    { "bind", LS_P_STR, "0.0.0.0", 0, offsetof(struct syslog_ctx, bind),
      "address to listen on", NULL, NULL, 0, 0 },
    { "protocol_type", LS_P_STR, NULL, LS_PF_NULLABLE | LS_PF_DEPRECATED,
      offsetof(struct syslog_ctx, protocol_type),
      "deprecated: udp or tcp; use <transport udp|tcp> (this overrides it)", NULL, NULL, 0, 0 },
    { "frame_type", LS_P_ENUM, "traditional", 0, offsetof(struct syslog_ctx, frame_type),
      "TCP: traditional (split on delimiter) or octet_count (RFC 6587)", NULL,
      "traditional|octet_count", 0, 0 },
    { "delimiter", LS_P_STR, "\n", 0, offsetof(struct syslog_ctx, delimiter),
      "TCP traditional framing: message delimiter (default \"\\n\", a newline)", NULL, NULL, 0, 0 },
    { "message_length_limit", LS_P_SIZE, "2048", 0,
      offsetof(struct syslog_ctx, message_length_limit),
      "UDP: datagram size read (longer ones are cut); TCP: only when set, longer messages "
      "are dropped (else 1 MiB)", NULL, NULL, 1, 1 << 30 },
    { "severity_key", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct syslog_ctx, severity_key),
      "add the severity name under this key", "priority_key", NULL, 0, 0 },
    { "facility_key", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct syslog_ctx, facility_key),
      "add the facility name under this key", NULL, NULL, 0, 0 },
    { "source_address_key", LS_P_STR, NULL, LS_PF_NULLABLE,
      offsetof(struct syslog_ctx, source_address_key), "add the peer's IP address under this key",
      NULL, NULL, 0, 0 },
    { "source_hostname_key", LS_P_STR, NULL, LS_PF_NULLABLE,
      offsetof(struct syslog_ctx, source_hostname_key),
      "add the peer's resolved host name under this key (turns on resolve_hostname)", NULL, NULL,
      0, 0 },
    { "include_source_host", LS_P_BOOL, "false", LS_PF_DEPRECATED,
      offsetof(struct syslog_ctx, include_source_host),
      "deprecated: use source_address_key", NULL, NULL, 0, 0 },
    { "source_host_key", LS_P_STR, "source_host", LS_PF_DEPRECATED,
      offsetof(struct syslog_ctx, source_host_key),
      "deprecated: the key include_source_host uses", NULL, NULL, 0, 0 },
    { "resolve_hostname", LS_P_BOOL, "false", 0, offsetof(struct syslog_ctx, resolve_hostname),
      "look up peers' names (blocking reverse DNS, per TCP connection / once a minute per "
      "UDP peer)", NULL, NULL, 0, 0 },
    { "send_keepalive_packet", LS_P_BOOL, "false", 0,
      offsetof(struct syslog_ctx, send_keepalive_packet), "TCP: SO_KEEPALIVE", NULL, NULL, 0,
      0 },
    { "emit_unmatched_lines", LS_P_BOOL, "false", 0,
      offsetof(struct syslog_ctx, emit_unmatched_lines),
      "emit messages that do not parse as {\"unmatched_line\": text} tagged <tag>.unmatched",
      NULL, NULL, 0, 0 },
    { "blocking_timeout", LS_P_TIME, "0.5", 0, offsetof(struct syslog_ctx, blocking_timeout),
      "accepted for compatibility (the loop does not poll)", NULL, NULL, 0, 0 },
    { "max_connections", LS_P_INT, "1024", 0, offsetof(struct syslog_ctx, max_connections),
      "logship: TCP peers served at once; more are refused (closed)", NULL, NULL, 1, 1000000 },
    { "idle_timeout", LS_P_TIME, "3600", 0, offsetof(struct syslog_ctx, idle_timeout),
      "logship: close TCP connections silent this long (0: never)", NULL, NULL, 0, 1e9 },
    LS_PARAM_END
};

static const char *const syslog_facility[24] = {
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
    "authpriv", "ftp", "ntp", "audit", "alert", "at", "local0", "local1", "local2", "local3",
    "local4", "local5", "local6", "local7",
};
static const char *const syslog_severity[8] = {
    "emerg", "alert", "crit", "err", "warn", "notice", "info", "debug",
};

static int syslog_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                       size_t errlen)
{
    struct syslog_ctx *ctx = ins->ctx;
    struct ls_conf_section *ps, *tr = ls_conf_child(sec, "transport");
    struct ls_conf_param *rh = ls_conf_get_param(sec, "resolve_hostname");

    ctx->ins = ins;
    ls_arena_init(&ctx->arena, 4096);
    ls_record_init(&ctx->rec, &ctx->arena);
    ctx->proto = PROTO_UDP;
    if (tr) {
        if (strcmp(tr->arg, "tcp") == 0) {
            ctx->proto = PROTO_TCP;
        } else if (strcmp(tr->arg, "tls") == 0) {
            ctx->proto = PROTO_TLS;
        } else if (tr->arg[0] && strcmp(tr->arg, "udp") != 0) {
            snprintf(err, errlen, "%s:%d: <transport %s>: expected udp, tcp or tls", tr->file,
                     tr->line, tr->arg);
            return LS_ERROR;
        }
    }
    if (ctx->protocol_type) {
        if (strcmp(ctx->protocol_type, "udp") != 0 && strcmp(ctx->protocol_type, "tcp") != 0) {
            ls_conf_param_error(sec, "protocol_type", err, errlen,
                                "protocol_type: expected udp or tcp, not '%s'",
                                ctx->protocol_type);
            return LS_ERROR;
        }
        ctx->proto = ctx->protocol_type[0] == 'u' ? PROTO_UDP : PROTO_TCP;
    }
    if (ctx->proto == PROTO_TLS) {
        snprintf(err, errlen, "%s:%d: <transport tls> is not supported by logship's syslog "
                 "input yet", tr->file, tr->line);
        return LS_ERROR;
    }
    if (ctx->send_keepalive_packet && ctx->proto == PROTO_UDP) {
        ls_conf_param_error(sec, "send_keepalive_packet", err, errlen,
                            "send_keepalive_packet is available for tcp/tls");
        return LS_ERROR;
    }
    if (ctx->delimiter[0] == '\0') {
        ls_conf_param_error(sec, "delimiter", err, errlen, "delimiter must not be empty");
        return LS_ERROR;
    }
    if (ctx->include_source_host) {
        if (ctx->source_address_key) {
            ls_conf_param_error(sec, "include_source_host", err, errlen,
                                "specify either source_address_key or include_source_host");
            return LS_ERROR;
        }
        ctx->source_address_key = ls_strdup(ctx->source_host_key);
    }
    if (ctx->source_hostname_key) {
        if (rh && !ctx->resolve_hostname) {
            ls_conf_param_error(sec, "resolve_hostname", err, errlen,
                                "resolve_hostname must be true with source_hostname_key");
            return LS_ERROR;
        }
        ctx->resolve_hostname = true;
    }
    ps = ls_conf_child(sec, "parse");
    if (ps == NULL && ls_conf_get_param(sec, "format")) {
        ps = ls_parser_flat_section(sec);
    }
    if (ps == NULL) {
        ps = ls_conf_add_child(sec, "parse", "");
        ps->file = sec->file;
        ps->line = sec->line;
    }
    if (ls_conf_get_param(ps, "with_priority") == NULL) {
        ls_conf_set(ps, "with_priority", "true", ps->file, ps->line)->used = true;
    }
    ctx->parser = ls_instance_create(ins->engine, ins, LS_PLUGIN_PARSER, "syslog", ps, err,
                                     errlen);
    if (ctx->parser == NULL) {
        return LS_ERROR;
    }
    /* fluentd asks the parser (respond_to?(:with_priority)); only the syslog parser has it */
    ctx->parser_pri = strcmp(ctx->parser->plugin->name, "syslog") == 0;
    if (ctx->parser_pri) {
        const char *wp = ls_conf_get(ps, "with_priority");
        bool b = true;
        (void)ls_parse_bool(wp ? wp : "true", &b);
        ctx->parser_pri = b;
    }
    return LS_OK;
}

static void syslog_destroy(struct ls_instance *ins)
{
    struct syslog_ctx *ctx = ins->ctx;

    ls_net_close(ctx->net);
    ls_instance_destroy(ctx->parser);
    ls_record_release(&ctx->rec);
    ls_arena_release(&ctx->arena);
    if (ctx->include_source_host) {
        ls_free(ctx->source_address_key);
        ctx->source_address_key = NULL;
    }
}

static void syslog_warn_bad(struct syslog_ctx *ctx, const char *what, const char *p, size_t len)
{
    double now = ls_mono_now();

    ctx->bad++;
    ctx->ins->metrics.errors++;
    if (now - ctx->bad_warn_at >= 1.0) {
        ctx->bad_warn_at = now;
        ls_plg_warn(ctx->ins, "%s: \"%.*s\"%s (%llu so far)", what, (int)(len > 200 ? 200 : len),
                    p, len > 200 ? "..." : "", (unsigned long long)ctx->bad);
    }
}

/* LS_OK (taken, or refused for good and counted by the core) or LS_AGAIN */
static int syslog_emit(struct syslog_ctx *ctx)
{
    int rc = ls_emit(ctx->ins, &ctx->rec);

    ls_record_clear(&ctx->rec);
    ls_arena_reset(&ctx->arena);
    return rc == LS_AGAIN ? LS_AGAIN : LS_OK;
}

static int syslog_unmatched(struct syslog_ctx *ctx, const char *what, const char *p, size_t len)
{
    struct ls_value v;
    char *tag;

    syslog_warn_bad(ctx, what, p, len);
    if (!ctx->emit_unmatched_lines) {
        return LS_DECLINED;
    }
    ls_record_clear(&ctx->rec);
    ls_arena_reset(&ctx->arena);
    tag = ls_arena_alloc(&ctx->arena, strlen(ctx->tag) + 11);
    ctx->rec.tag_len = (size_t)snprintf(tag, strlen(ctx->tag) + 11, "%s.unmatched", ctx->tag);
    ctx->rec.tag = tag;
    ls_wall_now(&ctx->rec.time.sec, &ctx->rec.time.nsec);
    v = ls_vstr(p, len);
    ls_record_add(&ctx->rec, "unmatched_line", 14, &v);
    return syslog_emit(ctx);
}

/* fluentd's message_handler: one message; returns as net.h's on_message */
static int syslog_message(struct syslog_ctx *ctx, const char *data, size_t len,
                          const struct ls_net_peer *peer)
{
    const char *text = data;
    size_t tlen = len, i, taglen;
    int64_t pri = -1;
    struct ls_field *f;
    struct ls_value v;
    char *tag;
    int rc;

    if (!ctx->parser_pri) {
        /* SYSLOG_REGEXP = /^\<([0-9]+)\>(.*)/ */
        pri = 0;
        for (i = 1; i < len && data[i] >= '0' && data[i] <= '9'; i++) {
            pri = pri < 1000 ? pri * 10 + (data[i] - '0') : pri;
        }
        if (len < 3 || data[0] != '<' || i == 1 || i >= len || data[i] != '>') {
            return syslog_unmatched(ctx, "invalid syslog message", data, len);
        }
        text = data + i + 1;
        tlen = len - i - 1;
        for (i = 0; i < tlen && text[i] != '\n'; i++) {
        }
        tlen = i;
    }
    ls_record_clear(&ctx->rec);
    ls_arena_reset(&ctx->arena);
    ls_wall_now(&ctx->rec.time.sec, &ctx->rec.time.nsec);
    rc = ls_parser_parse(ctx->parser, text, tlen, &ctx->rec);
    if (rc != LS_OK) {
        return syslog_unmatched(ctx, "failed to parse message", text, tlen);
    }
    f = ls_record_get(&ctx->rec, "pri", 3);
    if (f) {
        if (pri < 0 && f->v.type == LS_V_INT) {
            pri = f->v.u.i;
        }
        ls_record_del(&ctx->rec, "pri", 3);
    }
    if (pri < 0 || pri > 191) {
        /* fluentd fails on these too ("invalid input"); here they count as unmatched */
        return syslog_unmatched(ctx, "invalid syslog priority", text, tlen);
    }
    if (ctx->severity_key) {
        v = ls_vstr(syslog_severity[pri & 7], strlen(syslog_severity[pri & 7]));
        ls_record_set(&ctx->rec, ctx->severity_key, strlen(ctx->severity_key), &v);
    }
    if (ctx->facility_key) {
        v = ls_vstr(syslog_facility[pri >> 3], strlen(syslog_facility[pri >> 3]));
        ls_record_set(&ctx->rec, ctx->facility_key, strlen(ctx->facility_key), &v);
    }
    ls_net_add_peer(&ctx->rec, peer, ctx->source_address_key, ctx->source_hostname_key);
    taglen = strlen(ctx->tag) + 32;
    tag = ls_arena_alloc(&ctx->arena, taglen);
    ctx->rec.tag_len = (size_t)snprintf(tag, taglen, "%s.%s.%s", ctx->tag,
                                        syslog_facility[pri >> 3], syslog_severity[pri & 7]);
    ctx->rec.tag = tag;
    return syslog_emit(ctx);
}

static int syslog_on_message(const char *p, size_t len, const struct ls_net_peer *peer, void *arg)
{
    struct syslog_ctx *ctx = arg;

    if (ctx->proto == PROTO_UDP) {
        len = ls_net_chomp(p, len);      /* data.chomp */
    }
    return syslog_message(ctx, p, len, peer);
}

static int syslog_start(struct ls_instance *ins)
{
    struct syslog_ctx *ctx = ins->ctx;
    struct ls_net_opts o;
    char err[512];
    bool udp = ctx->proto == PROTO_UDP;
    bool limit_set = ls_conf_get_param(ins->conf, "message_length_limit") != NULL;

    memset(&o, 0, sizeof(o));
    o.bind = ctx->bind;
    o.port = (int)ctx->port;
    o.udp = udp;
    o.buf_limit = (size_t)ctx->message_length_limit;
    o.max_connections = (int)ctx->max_connections;
    o.idle_timeout = ctx->idle_timeout;
    o.keepalive = ctx->send_keepalive_packet;
    o.resolve_hostname = ctx->resolve_hostname;
    o.framer.octet = ctx->frame_type == 1;
    o.framer.delim = ctx->delimiter;
    o.framer.dlen = strlen(ctx->delimiter);
    o.framer.max = limit_set ? (size_t)ctx->message_length_limit : 1 << 20;
    o.on_message = syslog_on_message;
    o.arg = ctx;
    ctx->net = ls_net_listen(ins, &o, err, sizeof(err));
    if (ctx->net == NULL) {
        ls_plg_error(ins, "%s", err);
        return LS_ERROR;
    }
    ls_plg_info(ins, "listening syslog socket on %s:%d with %s", ctx->bind, ls_net_port(ctx->net),
                udp ? "udp" : "tcp");
    ls_net_start(ctx->net);
    return LS_OK;
}

static void syslog_stop(struct ls_instance *ins)
{
    struct syslog_ctx *ctx = ins->ctx;

    ls_net_close(ctx->net);
    ctx->net = NULL;
}

static void syslog_pause(struct ls_instance *ins)
{
    ls_net_pause(((struct syslog_ctx *)ins->ctx)->net);
}

static void syslog_resume(struct ls_instance *ins)
{
    ls_net_resume(((struct syslog_ctx *)ins->ctx)->net);
}

const struct ls_plugin ls_plugin_in_syslog = {
    .name = "syslog",
    .kind = LS_PLUGIN_INPUT,
    .description = "syslog messages over UDP or TCP, RFC 3164 / RFC 5424 (fluentd's in_syslog)",
    .params = syslog_params,
    .ctx_size = sizeof(struct syslog_ctx),
    .init = syslog_init,
    .destroy = syslog_destroy,
    .start = syslog_start,
    .stop = syslog_stop,
    .pause = syslog_pause,
    .resume = syslog_resume,
};
