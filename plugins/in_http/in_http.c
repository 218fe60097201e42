/*
 * in_http.c - fluentd's in_http: POST /<tag> with a JSON or MessagePack body, form fields or
 * NDJSON, answered only once the records are durable in every matching output's buffer.
 *
 * The server is libmicrohttpd (agent/mhd_api.h) in external mode on the libev loop, as
 * monitor_agent runs it: its epoll descriptor is one read watcher and MHD_get_timeout drives
 * a timer, so requests are decoded and emitted on the loop thread, where ls_emit belongs.
 *
 * A request is decoded in full first (fluentd answers 400 before it emits anything), then its
 * records are emitted and ls_input_commit makes them durable before the response is queued:
 * a 200 means "in the buffer". When a buffer is full (ls_emit says LS_AGAIN) the connection
 * is suspended with its position in the payload, and later requests queue behind it; .resume
 * (or a once-a-second retry) carries on from that record. A request that waited longer than
 * buffer_wait_timeout is answered 500 as fluentd answers a BufferOverflowError: what it had
 * emitted before is durable, the rest was never taken, so the client's retry loses nothing.
 *
 * Limits (memory stays bounded): max_connections connections (past it the oldest idle one is
 * closed; with none idle MHD accepts up to twice as many, then waits), each with
 * at most 64 KiB of request line and headers (MHD answers 431 and closes) and
 * body_size_limit of body (413 "Too large", then close), decompressed bodies at most
 * decompression_size_limit. Idle and slow clients are closed after keepalive_timeout
 * without a byte; suspended requests are not timed out by MHD but by buffer_wait_timeout.
 */
#include "engine.h"
#include "log.h"
#include "mhd_api.h"
#include "parser.h"
#include "http_body.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>

/* 1x1 transparent GIF, the bytes fluentd's EMPTY_GIF_IMAGE holds */
static const unsigned char empty_gif[] = {
    'G', 'I', 'F', '8', '9', 'a', 0x01, 0x00, 0x01, 0x00, 0x80, 0xff, 0x00, 0xff, 0xff, 0xff,
    0x00, 0x00, 0x00, ',', 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02,
    'D', 0x01, 0x00, ';'
};

struct http_ctx {
    int64_t port;
    char *bind;
    int64_t body_size_limit;
    int64_t decompression_size_limit;
    double keepalive_timeout;
    int64_t backlog;
    bool add_http_headers;
    bool add_remote_addr;
    bool add_query_params;
    double blocking_timeout;
    struct ls_strv cors_allow_origins;
    bool cors_allow_credentials;
    bool respond_with_empty_img;
    bool use_204_response;
    bool dump_error_log;
    char *add_tag_prefix;
    int64_t max_connections;
    double buffer_wait_timeout;
    /* state */
    struct ls_instance *ins;
    struct ls_instance *parser;        /* <parse> other than the built-in (in_http) */
    struct mhd_api_loop srv;
    struct ls_timer *drain_timer;
    struct ls_arena arena;
    struct ls_record rec;
    bool paused;
    char last_msg[256];
    double last_msg_at;
    unsigned long suppressed;
    struct hreq *wait_head, *wait_tail;    /* suspended requests, oldest first */
    struct mhd_api_conns conns;
};

enum hreq_state { HR_READING, HR_WAITING, HR_DONE };


struct hreq {
    struct http_ctx *ctx;
    struct MHD_Connection *conn;
    struct mhd_api_conn *hc;
    enum hreq_state state;
    bool refused;              /* a response was queued before the body ended (413, 417) */
    bool too_large;            /* the body passed body_size_limit: 413 when it ends */
    uint64_t dropped;
    struct ls_buf body;
    struct ls_buf inflated;
    struct ls_arena arena;     /* form values, header copies */
    struct hb_params params;
    struct hb_iter it;
    char *tag;
    char *origin;
    char *remote_addr;
    double wait_since;
    unsigned long emitted;
    struct hreq *next;
    /* the response, once known */
    unsigned status;
    char *resp_body;
    size_t resp_len;
    const char *resp_type;
};

#define C(f) offsetof(struct http_ctx, f)
static const struct ls_param http_params[] = {
    { "port", LS_P_INT, "9880", 0, C(port), "TCP port (0: any free port, logged at start)", NULL,
      NULL, 0, 65535 },
    { "bind", LS_P_STR, "0.0.0.0", 0, C(bind), "address to listen on", NULL, NULL, 0, 0 },
    { "body_size_limit", LS_P_SIZE, "32m", 0, C(body_size_limit),
      "larger bodies are answered 413 Request Entity Too Large", NULL, NULL, 1, 4e9 },
    { "decompression_size_limit", LS_P_SIZE, "256m", 0, C(decompression_size_limit),
      "a gzip or deflate Content-Encoding body may inflate to this much (else 400)", NULL, NULL,
      1, 4e9 },
    { "keepalive_timeout", LS_P_TIME, "10", 0, C(keepalive_timeout),
      "close a connection after this many seconds without a byte from the client", NULL, NULL,
      1, 86400 },
    { "backlog", LS_P_INT, "0", 0, C(backlog), "listen backlog (0: the system's maximum)", NULL,
      NULL, 0, 65535 },
    { "add_http_headers", LS_P_BOOL, "false", 0, C(add_http_headers),
      "add every request header as HTTP_<NAME> (upper case, '-' as '_')", NULL, NULL, 0, 0 },
    { "add_remote_addr", LS_P_BOOL, "false", 0, C(add_remote_addr),
      "add REMOTE_ADDR: the first X-Forwarded-For element, else the peer's address", NULL, NULL,
      0, 0 },
    { "add_query_params", LS_P_BOOL, "false", 0, C(add_query_params),
      "add every query parameter as QUERY_<NAME>", NULL, NULL, 0, 0 },
    { "blocking_timeout", LS_P_TIME, "0.5", 0, C(blocking_timeout),
      "accepted for fluentd configurations; logship's loop needs no polling", NULL, NULL, 0, 0 },
    { "cors_allow_origins", LS_P_ARRAY, NULL, 0, C(cors_allow_origins),
      "origins allowed for CORS ('*', or with one '*' wildcard each); unset: CORS off", NULL,
      NULL, 0, 0 },
    { "cors_allow_credentials", LS_P_BOOL, "false", 0, C(cors_allow_credentials),
      "send Access-Control-Allow-Credentials (needs specific origins)", NULL, NULL, 0, 0 },
    { "respond_with_empty_img", LS_P_BOOL, "false", 0, C(respond_with_empty_img),
      "answer with a 1x1 GIF (image/gif)", NULL, NULL, 0, 0 },
    { "use_204_response", LS_P_BOOL, "false", 0, C(use_204_response),
      "answer 204 No Content instead of 200", NULL, NULL, 0, 0 },
    { "dump_error_log", LS_P_BOOL, "true", 0, C(dump_error_log),
      "log requests answered 400 or 500", NULL, NULL, 0, 0 },
    { "add_tag_prefix", LS_P_STR, NULL, LS_PF_NULLABLE, C(add_tag_prefix),
      "prefix for the tag taken from the path", NULL, NULL, 0, 0 },
    { "max_connections", LS_P_INT, "1024", 0, C(max_connections),
      "connections kept; past it the oldest idle one is closed for a new one (logship)", NULL, NULL, 1, 100000 },
    { "buffer_wait_timeout", LS_P_TIME, "30", 0, C(buffer_wait_timeout),
      "a request whose records wait this long for a full buffer is answered 500 (logship)",
      NULL, NULL, 0.1, 86400 },
    LS_PARAM_END
};
#undef C


/* ------------------------------------------------------------------ */
/* responses                                                           */

static void set_response(struct hreq *r, unsigned status, const char *type, const void *body,
                         size_t len)
{
    ls_free(r->resp_body);
    r->status = status;
    r->resp_type = type;
    r->resp_body = ls_malloc(len ? len : 1);
    memcpy(r->resp_body, body, len);
    r->resp_len = len;
    r->state = HR_DONE;
}

static void set_text(struct hreq *r, unsigned status, const char *line, const char *why)
{
    char *s = why ? ls_asprintf("%s\n%s\n", line, why) : ls_strdup(line ? line : "");
    set_response(r, status, "text/plain", s, strlen(s));
    ls_free(s);
}

/* fluentd's include_cors_allow_origin: exact, or one '*' as a prefix/suffix match */
static bool origin_allowed(const struct http_ctx *ctx, const char *origin)
{
    size_t i, ol;

    if (origin == NULL) {
        return false;
    }
    ol = strlen(origin);
    for (i = 0; i < ctx->cors_allow_origins.n; i++) {
        const char *a = ctx->cors_allow_origins.v[i];
        const char *star = strchr(a, '*');
        size_t pl, sl;
        if (strcmp(a, origin) == 0) {
            return true;
        }
        if (*a == '\0' || star == NULL) {
            continue;
        }
        pl = (size_t)(star - a);
        sl = strlen(star + 1);
        if (ol >= pl && ol >= sl && strncmp(origin, a, pl) == 0 &&
            strcmp(origin + ol - sl, star + 1) == 0) {
            return true;
        }
    }
    return false;
}

static bool cors_on(const struct http_ctx *ctx)
{
    return ctx->cors_allow_origins.n > 0;
}

static bool cors_any(const struct http_ctx *ctx)
{
    size_t i;

    for (i = 0; i < ctx->cors_allow_origins.n; i++) {
        if (strcmp(ctx->cors_allow_origins.v[i], "*") == 0) {
            return true;
        }
    }
    return false;
}

static enum MHD_Result queue(struct hreq *r, unsigned status, const char *type, const void *body,
                             size_t len, bool cors, bool close_after)
{
    struct http_ctx *ctx = r->ctx;
    struct MHD_Response *resp;
    enum MHD_Result rc;

    resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (resp == NULL) {
        return MHD_NO;
    }
    if (type) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    }
    if (cors && cors_on(ctx)) {
        if (cors_any(ctx)) {
            MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN, "*");
        } else if (origin_allowed(ctx, r->origin)) {
            MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN, r->origin);
            if (ctx->cors_allow_credentials) {
                MHD_add_response_header(resp, "Access-Control-Allow-Credentials", "true");
            }
        }
    }
    if (close_after) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    }
    rc = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result queue_text(struct hreq *r, unsigned status, const char *body,
                                  bool close_after)
{
    return queue(r, status, "text/plain", body, strlen(body), false, close_after);
}

/* ------------------------------------------------------------------ */
/* the request's records                                               */

struct hdr_walk {
    struct http_ctx *ctx;
    struct hreq *r;
    struct ls_record *rec;
    const char *prefix;
};

/* HTTP_<NAME> / QUERY_<NAME> fields: fluentd's k.tr('-','_').upcase */
static enum MHD_Result add_prefixed(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    struct hdr_walk *w = cls;
    size_t pl = strlen(w->prefix), kl = strlen(key), i;
    char *k = ls_arena_alloc(w->rec->arena, pl + kl + 1);
    struct ls_value v = ls_vstr(value ? value : "", value ? strlen(value) : 0);
    LS_UNUSED(kind);

    memcpy(k, w->prefix, pl);
    for (i = 0; i < kl; i++) {
        char c = key[i] == '-' ? '_' : key[i];
        k[pl + i] = (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
    }
    k[pl + kl] = '\0';
    ls_record_set(w->rec, k, pl + kl, &v);
    return MHD_YES;
}

/* The next record of r into ctx->rec, with its time and the added fields. LS_OK, LS_DECLINED
 * (no more), LS_ERROR (err: a 400). */
static int next_record(struct http_ctx *ctx, struct hreq *r, struct ls_record *rec, char *err,
                       size_t errlen)
{
    int rc;

    ls_record_clear(rec);
    rec->tag = r->tag;
    rec->tag_len = strlen(r->tag);
    if (ctx->parser) {
        /* a custom <parse> gets the whole body once */
        struct ls_time t;
        if (r->it.state == 2) {
            return LS_DECLINED;
        }
        r->it.state = 2;
        ls_wall_now(&rec->time.sec, &rec->time.nsec);
        rc = ls_parser_parse(ctx->parser, r->it.p, r->it.len, rec);
        if (rc == LS_AGAIN || (rc == LS_OK && ls_parser_is_multiline(ctx->parser))) {
            rc = ls_parser_flush(ctx->parser, rec) == LS_OK ? LS_OK : rc;
        }
        if (rc != LS_OK) {
            snprintf(err, errlen, "%s", ls_parser_error(ctx->parser));
            return LS_ERROR;
        }
        if (r->params.time && hb_param_time(r->params.time, r->params.time_len, &t)) {
            rec->time = t;
        } else if (r->params.time) {
            ls_wall_now(&rec->time.sec, &rec->time.nsec);
        }
    } else {
        rc = hb_iter_next(&r->it, rec, err, errlen);
        if (rc != LS_OK) {
            return rc;
        }
        if (hb_event_time(&r->params, rec, "time", false, &rec->time, err, errlen) != LS_OK) {
            return LS_ERROR;
        }
    }
    if (ctx->add_http_headers) {
        struct hdr_walk w = { ctx, r, rec, "HTTP_" };
        MHD_get_connection_values(r->conn, MHD_HEADER_KIND, add_prefixed, &w);
    }
    if (ctx->add_query_params) {
        struct hdr_walk w = { ctx, r, rec, "QUERY_" };
        MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, add_prefixed, &w);
    }
    if (ctx->add_remote_addr) {
        struct ls_value v = r->remote_addr ? ls_vstr(r->remote_addr, strlen(r->remote_addr))
                                           : ls_vnull();
        ls_record_set(rec, "REMOTE_ADDR", 11, &v);
    }
    return LS_OK;
}

/* Emit r's records from where it stopped. LS_OK: all taken and durable, the response set;
 * LS_AGAIN: a buffer is full, r waits (its position kept). */
static int emit_request(struct http_ctx *ctx, struct hreq *r)
{
    char err[256];

    for (;;) {
        struct hb_pos pos = hb_iter_tell(&r->it);
        int rc;

        ls_arena_reset(&ctx->arena);
        rc = next_record(ctx, r, &ctx->rec, err, sizeof(err));
        if (rc == LS_DECLINED) {
            break;
        }
        if (rc != LS_OK) {
            /* validated before: only a parser that changed its mind gets here */
            ls_plg_error(ctx->ins, "request for %s: %s", r->tag, err);
            set_text(r, 500, "500 Internal Server Error", err);
            goto commit;
        }
        rc = ls_emit(ctx->ins, &ctx->rec);
        if (rc == LS_AGAIN) {
            hb_iter_seek(&r->it, pos);
            if (ctx->parser) {
                r->it.state = 0;
            }
            ls_arena_reset(&ctx->arena);
            if (ls_mono_now() - r->wait_since >= ctx->buffer_wait_timeout) {
                if (ctx->dump_error_log) {
                    ls_plg_error(ctx->ins, "failed to emit data: the buffer stayed full for %gs; "
                                 "answered 500 after %lu of the request's records",
                                 ctx->buffer_wait_timeout, r->emitted);
                }
                set_text(r, 500, "500 Internal Server Error", "buffer space has too many data");
                goto commit;
            }
            (void)ls_input_commit(ctx->ins);    /* what was taken is durable meanwhile */
            return LS_AGAIN;
        }
        ls_arena_reset(&ctx->arena);
        if (rc == LS_OK) {
            r->emitted++;
        } else {
            if (ctx->dump_error_log) {
                ls_plg_error(ctx->ins, "failed to emit data for %s", r->tag);
            }
            set_text(r, 500, "500 Internal Server Error", "failed to emit data");
            goto commit;
        }
    }
    if (ctx->respond_with_empty_img) {
        set_response(r, 200, "image/gif; charset=utf-8", empty_gif, sizeof(empty_gif));
    } else if (ctx->use_204_response) {
        set_response(r, 204, "text/plain", "", 0);
    } else {
        set_response(r, 200, "text/plain", "", 0);
    }
commit:
    if (ls_input_commit(ctx->ins) != LS_OK) {
        ls_plg_error(ctx->ins, "records for %s could not be made durable; answered 500", r->tag);
        set_text(r, 500, "500 Internal Server Error", "the records could not be made durable");
    }
    return LS_OK;
}

static void wait_push(struct http_ctx *ctx, struct hreq *r)
{
    r->state = HR_WAITING;
    r->next = NULL;
    if (ctx->wait_tail) {
        ctx->wait_tail->next = r;
    } else {
        ctx->wait_head = r;
    }
    ctx->wait_tail = r;
    MHD_suspend_connection(r->conn);
    if (ctx->wait_head == r) {
        ls_timer_start(ctx->drain_timer, 1.0, 1.0);    /* retries, and buffer_wait_timeout */
    }
}

/* Carry on with the suspended requests, oldest first. */
static void drain(struct http_ctx *ctx)
{
    bool any = false;

    while (ctx->wait_head) {
        struct hreq *r = ctx->wait_head;
        /* while paused only a request that waited too long is answered (500) */
        if (ctx->paused && ls_mono_now() - r->wait_since < ctx->buffer_wait_timeout) {
            break;
        }
        if (emit_request(ctx, r) == LS_AGAIN) {
            break;
        }
        ctx->wait_head = r->next;
        if (ctx->wait_head == NULL) {
            ctx->wait_tail = NULL;
        }
        r->next = NULL;
        MHD_resume_connection(r->conn);
        any = true;
    }
    if (ctx->wait_head == NULL) {
        ls_timer_stop(ctx->drain_timer);
    }
    if (any) {
        mhd_api_loop_run(&ctx->srv);
    }
}

static void drain_cb(struct ls_timer *t, void *arg)
{
    LS_UNUSED(t);
    drain(arg);
}

/* ------------------------------------------------------------------ */
/* the request                                                         */

static char *path_tag(struct http_ctx *ctx, const char *url)
{
    struct ls_buf b;
    const char *p = url, *end;

    ls_buf_init(&b, 0);
    if (ctx->add_tag_prefix) {
        ls_buf_printf(&b, "%s.", ctx->add_tag_prefix);
    }
    if (*p == '/') {
        p++;
    }
    /* path.split('/').join('.'): empty parts kept inside, dropped at the end */
    end = p + strlen(p);
    while (end > p && end[-1] == '/') {
        end--;
    }
    for (; p < end; p++) {
        ls_buf_putc(&b, *p == '/' ? '.' : *p);
    }
    ls_buf_putc(&b, '\0');
    return ls_buf_detach(&b, NULL);
}

static void remote_addr(struct hreq *r)
{
    const char *xff = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Forwarded-For");
    const union MHD_ConnectionInfo *ci;
    char host[INET6_ADDRSTRLEN] = "";

    if (xff) {
        const char *comma = strchr(xff, ',');
        r->remote_addr = comma ? ls_strndup(xff, (size_t)(comma - xff)) : ls_strdup(xff);
        return;
    }
    ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET) {
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, host,
                      sizeof(host));
        } else if (sa->sa_family == AF_INET6) {
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                      host, sizeof(host));
        }
    }
    r->remote_addr = host[0] ? ls_strdup(host) : NULL;
}

static void query_param(struct hreq *r, const char *name)
{
    const char *v = NULL;
    size_t vl = 0;

    if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), &v,
                                      &vl) == MHD_YES && v) {
        hb_params_set(&r->params, name, strlen(name), v, vl);
    }
}

static bool ctype_is(const char *ctype, const char *prefix)
{
    return ctype && strncmp(ctype, prefix, strlen(prefix)) == 0;
}

/* The body is complete: decode it, check every record, then emit. */
static void handle_post(struct http_ctx *ctx, struct hreq *r, const char *url)
{
    const char *ctype = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type");
    const char *cenc = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                   "Content-Encoding");
    const char *body = r->body.p ? r->body.p : "";
    size_t blen = r->body.len;
    char err[256];
    int rc;

    r->tag = path_tag(ctx, url);
    if (cenc && (strcmp(cenc, "gzip") == 0 || strcmp(cenc, "deflate") == 0)) {
        if (hb_inflate(body, blen, cenc[0] == 'g', (size_t)ctx->decompression_size_limit,
                       &r->inflated, err, sizeof(err)) != LS_OK) {
            ls_plg_warn(ctx->ins, "fails to decode payload: %s", err);
            set_response(r, 400, "text/plain", "", 0);
            return;
        }
        body = r->inflated.p ? r->inflated.p : "";
        blen = r->inflated.len;
    }
    query_param(r, "json");
    query_param(r, "ndjson");
    query_param(r, "msgpack");
    query_param(r, "time");
    memset(&r->it, 0, sizeof(r->it));
    if (ctx->parser) {
        r->it.p = body;
        r->it.len = blen;
    } else {
        size_t bl;
        const char *bd;
        if (ctype_is(ctype, "application/x-www-form-urlencoded")) {
            hb_form_urlencoded(&r->params, body, blen, &r->arena);
        } else if ((bd = hb_multipart_boundary(ctype, &bl)) != NULL) {
            if (hb_form_multipart(&r->params, body, blen, bd, bl, err, sizeof(err)) != LS_OK) {
                goto bad;
            }
        } else if (ctype_is(ctype, "application/json") ||
                   ctype_is(ctype, "application/csp-report")) {
            hb_params_set(&r->params, "json", 4, body, blen);
        } else if (ctype_is(ctype, "application/msgpack")) {
            hb_params_set(&r->params, "msgpack", 7, body, blen);
        } else if (ctype_is(ctype, "application/x-ndjson")) {
            hb_params_set(&r->params, "ndjson", 6, body, blen);
        }
        if (!hb_iter_init(&r->it, &r->params)) {
            snprintf(err, sizeof(err), "'json', 'ndjson' or 'msgpack' parameter is required");
            goto bad;
        }
    }
    if (ctx->add_remote_addr) {
        remote_addr(r);
    }
    /* every record first: a bad one answers 400 before anything is emitted, as fluentd */
    {
        unsigned long n = 0;
        while ((rc = next_record(ctx, r, &ctx->rec, err, sizeof(err))) == LS_OK) {
            n++;
            ls_arena_reset(&ctx->arena);
        }
        ls_arena_reset(&ctx->arena);
        if (rc == LS_ERROR) {
            goto bad;
        }
        if (r->it.skipped) {
            ls_plg_debug(ctx->ins, "request for %s: %lu values were not objects (skipped)",
                         r->tag, r->it.skipped);
        }
        hb_iter_seek(&r->it, (struct hb_pos){ 0, 0, 0 });
        r->it.skipped = 0;
    }
    r->wait_since = ls_mono_now();
    if (ctx->wait_head || ctx->paused) {
        wait_push(ctx, r);     /* behind the requests already waiting */
        return;
    }
    if (emit_request(ctx, r) == LS_AGAIN) {
        wait_push(ctx, r);
    }
    return;
bad:
    if (ctx->dump_error_log) {
        ls_plg_error(ctx->ins, "failed to process request for '%s': %s", r->tag, err);
    }
    set_text(r, 400, "400 Bad Request", err);
}

/* OPTIONS: fluentd's handle_options_request (CORS preflight) */
static enum MHD_Result handle_options(struct http_ctx *ctx, struct hreq *r)
{
    const char *method = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                     "Access-Control-Request-Method");
    const char *hdrs = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                   "Access-Control-Request-Headers");
    struct MHD_Response *resp;
    enum MHD_Result rc;
    const char *allow;
    bool any;

    if (!cors_on(ctx) || method == NULL || strcmp(method, "POST") != 0) {
        return queue_text(r, 403, "", true);
    }
    any = cors_any(ctx);
    if (any) {
        allow = "*";
    } else if (origin_allowed(ctx, r->origin)) {
        allow = r->origin;
    } else {
        return queue_text(r, 403, "", true);
    }
    resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Access-Control-Allow-Methods", "POST");
    MHD_add_response_header(resp, "Access-Control-Allow-Headers", hdrs ? hdrs : "");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN, allow);
    if (!any && ctx->cors_allow_credentials) {
        MHD_add_response_header(resp, "Access-Control-Allow-Credentials", "true");
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    rc = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result http_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **con_cls)
{
    struct http_ctx *ctx = cls;
    struct hreq *r = *con_cls;
    LS_UNUSED(version);

    if (r == NULL) {
        const char *expect, *clen, *origin;
        r = ls_calloc(1, sizeof(*r));
        r->ctx = ctx;
        r->conn = conn;
        r->hc = mhd_api_conn_of(conn);
        if (r->hc) {
            r->hc->busy = true;
        }
        ls_buf_init(&r->body, 0);
        ls_buf_init(&r->inflated, 0);
        ls_arena_init(&r->arena, 0);
        *con_cls = r;
        origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
        r->origin = origin ? ls_strdup(origin) : NULL;
        if (strcmp(method, MHD_HTTP_METHOD_GET) == 0) {
            /* a health check (Azure App Service), as fluentd answers it */
            r->refused = true;
            return queue_text(r, 200, "", true);
        }
        if (strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0) {
            r->refused = true;
            return handle_options(ctx, r);
        }
        expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Expect");
        clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (expect && strcasecmp(expect, "100-continue") != 0) {
            r->refused = true;
            return queue_text(r, 417, "", true);
        }
        if (clen && strtoull(clen, NULL, 10) > (unsigned long long)ctx->body_size_limit) {
            /* known from the headers: no need to read the body first */
            r->refused = true;
            ls_plg_warn(ctx->ins, "request body of %s bytes is over body_size_limit (%lld)",
                        clen, (long long)ctx->body_size_limit);
            return queue_text(r, 413, "Too large", true);
        }
        /* CORS: a browser's request from an origin not allowed (no Origin: server to server) */
        if (cors_on(ctx) && !cors_any(ctx) && r->origin && !origin_allowed(ctx, r->origin)) {
            r->refused = true;
            return queue_text(r, 403, "", true);
        }
        return MHD_YES;
    }
    if (r->refused) {
        *upload_data_size = 0;      /* the rest of a refused body is read and dropped */
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (r->too_large) {
            /* read and dropped so the 413 can be sent when the body ends (MHD queues no
             * response mid-body), but only up to another body_size_limit: then close */
            r->dropped += *upload_data_size;
            *upload_data_size = 0;
            return r->dropped > 2 * (uint64_t)ctx->body_size_limit ? MHD_NO : MHD_YES;
        }
        if (r->body.len + *upload_data_size > (size_t)ctx->body_size_limit) {
            ls_plg_warn(ctx->ins, "request body over body_size_limit (%lld bytes): 413",
                        (long long)ctx->body_size_limit);
            r->too_large = true;
            r->dropped = r->body.len + *upload_data_size;
            *upload_data_size = 0;
            ls_buf_release(&r->body);
            return MHD_YES;
        }
        if (ls_buf_append(&r->body, upload_data, *upload_data_size) != LS_OK) {
            return MHD_NO;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->too_large) {
        r->refused = true;
        return queue_text(r, 413, "Too large", true);
    }
    if (r->state == HR_READING) {
        handle_post(ctx, r, url);
    }
    if (r->state == HR_DONE) {
        return queue(r, r->status, r->resp_type, r->resp_body, r->resp_len, true, false);
    }
    return MHD_YES;    /* suspended: called again after MHD_resume_connection */
}

static void http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    struct hreq *r = *con_cls;
    LS_UNUSED(cls);
    LS_UNUSED(conn);
    LS_UNUSED(toe);

    if (r == NULL) {
        return;
    }
    if (r->hc) {
        r->hc->busy = false;
    }
    hb_iter_release(&r->it);
    ls_buf_release(&r->body);
    ls_buf_release(&r->inflated);
    ls_arena_release(&r->arena);
    ls_free(r->tag);
    ls_free(r->origin);
    ls_free(r->remote_addr);
    ls_free(r->resp_body);
    ls_free(r);
    *con_cls = NULL;
}

/* ------------------------------------------------------------------ */
/* the server on the loop                                              */

/* libmicrohttpd's messages (a malformed request line, a header over the memory limit, the
 * connection limit): a flood of one message (10,000 connections) is logged once a second */
__attribute__((format(printf, 2, 0)))
static void http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct http_ctx *ctx = cls;
    char msg[sizeof(ctx->last_msg)];
    double now = ls_mono_now();
    size_t n;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) {
        msg[--n] = '\0';
    }
    if (strcmp(msg, ctx->last_msg) == 0 && now - ctx->last_msg_at < 1.0) {
        ctx->suppressed++;
        return;
    }
    if (ctx->suppressed) {
        ls_plg_warn(ctx->ins, "%s (%lu more times since)", ctx->last_msg, ctx->suppressed);
        ctx->suppressed = 0;
    }
    if (strcmp(msg, ctx->last_msg) != 0 || now - ctx->last_msg_at >= 1.0) {
        ls_plg_warn(ctx->ins, "%s", msg);
    }
    memcpy(ctx->last_msg, msg, sizeof(msg));
    ctx->last_msg_at = now;
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                           */

static int http_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                     size_t errlen)
{
    struct http_ctx *ctx = ins->ctx;
    struct ls_conf_section *ps = ls_conf_child(sec, "parse");
    char why[512];

    ctx->ins = ins;
    ls_arena_init(&ctx->arena, 8192);
    ls_record_init(&ctx->rec, &ctx->arena);
    if (ctx->cors_allow_credentials && (!cors_on(ctx) || cors_any(ctx))) {
        ls_conf_param_error(sec, "cors_allow_credentials", err, errlen,
                            "Cannot enable cors_allow_credentials without specific origins");
        return LS_ERROR;
    }
    if (ctx->add_tag_prefix && *ctx->add_tag_prefix == '\0') {
        ls_conf_param_error(sec, "add_tag_prefix", err, errlen,
                            "'add_tag_prefix' parameter must not be empty");
        return LS_ERROR;
    }
    if (ps == NULL && ls_conf_get(sec, "format")) {
        ps = ls_parser_flat_section(sec);
    }
    if (ps) {
        const char *type = ls_conf_get(ps, "@type");
        if (type && strcmp(type, "in_http") == 0) {
            snprintf(err, errlen, "%s:%d: <parse> @type in_http is the default: leave the "
                     "<parse> section out", ps->file, ps->line);
            return LS_ERROR;
        }
        ctx->parser = ls_instance_create(ins->engine, ins, LS_PLUGIN_PARSER, NULL, ps, err,
                                         errlen);
        if (ctx->parser == NULL) {
            return LS_ERROR;
        }
    }
    if (mhd_api_load(why, sizeof(why)) != LS_OK) {
        snprintf(err, errlen, "%s:%d: %s", sec->file, sec->line, why);
        return LS_ERROR;
    }
    return LS_OK;
}

static void http_stop(struct ls_instance *ins)
{
    struct http_ctx *ctx = ins->ctx;

    ls_timer_free(ctx->drain_timer);
    ctx->drain_timer = NULL;
    /* waiting requests are closed unanswered: nothing of theirs was acknowledged */
    while (ctx->wait_head) {
        struct hreq *r = ctx->wait_head;
        ctx->wait_head = r->next;
        MHD_resume_connection(r->conn);
    }
    ctx->wait_tail = NULL;
    mhd_api_loop_stop(&ctx->srv);
}

static int http_start(struct ls_instance *ins)
{
    struct http_ctx *ctx = ins->ctx;
    struct MHD_Daemon *mhd;
    char where[INET6_ADDRSTRLEN + 16];
    int fd;

    if (ls_oneshot(ins->engine)) {
        ls_input_done(ins);
    }
    ctx->conns.max = (unsigned long)ctx->max_connections;
    if (mhd_api_listen(ins, ctx->bind, (long long)ctx->port, (int)ctx->backlog, &fd, where,
                       sizeof(where)) != LS_OK) {
        return LS_ERROR;
    }
    mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL,
                           NULL, http_handler, ctx,
                           /* first, or MHD prints its first messages itself */
                           MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, ctx,
                           MHD_OPTION_LISTEN_SOCKET, fd,
                           /* a safety net: mhd_api_conns_notify keeps to max_connections
                            * while some are idle */
                           MHD_OPTION_CONNECTION_LIMIT, (unsigned int)ctx->max_connections * 2,
                           MHD_OPTION_NOTIFY_CONNECTION, mhd_api_conns_notify, &ctx->conns,
                           MHD_OPTION_CONNECTION_TIMEOUT,
                           (unsigned int)(ctx->keepalive_timeout + 0.5),
                           MHD_OPTION_NOTIFY_COMPLETED, http_completed, ctx,
                           MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                           MHD_OPTION_END);
    if (mhd == NULL) {
        close(fd);
        ls_plg_error(ins, "cannot start the HTTP server on %s", where);
        return LS_ERROR;
    }
    if (mhd_api_loop_start(&ctx->srv, ins, mhd) != LS_OK) {
        return LS_ERROR;
    }
    ctx->drain_timer = ls_timer_new(ins, drain_cb, ctx);
    ls_plg_info(ins, "listening on http://%s", where);
    return LS_OK;
}

static void http_pause(struct ls_instance *ins)
{
    ((struct http_ctx *)ins->ctx)->paused = true;
}

static void http_resume(struct ls_instance *ins)
{
    struct http_ctx *ctx = ins->ctx;

    ctx->paused = false;
    /* not from inside this call: the core may be in the middle of a flush */
    if (ctx->drain_timer && ctx->wait_head) {
        ls_timer_start(ctx->drain_timer, 0, 1.0);
    }
}

static void http_destroy(struct ls_instance *ins)
{
    struct http_ctx *ctx = ins->ctx;

    http_stop(ins);
    ls_instance_destroy(ctx->parser);
    ls_record_release(&ctx->rec);
    ls_arena_release(&ctx->arena);
}

const struct ls_plugin ls_plugin_in_http = {
    .name = "http",
    .kind = LS_PLUGIN_INPUT,
    .description = "HTTP input: POST /<tag> with JSON, MessagePack, NDJSON or form fields",
    .params = http_params,
    .ctx_size = sizeof(struct http_ctx),
    .init = http_init,
    .destroy = http_destroy,
    .start = http_start,
    .stop = http_stop,
    .pause = http_pause,
    .resume = http_resume,
};
