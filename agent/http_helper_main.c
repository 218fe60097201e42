/*
 * http_helper_main.c - logship-http: the agent's HTTP requests, run with libcurl.
 *
 * The agent (http.c) starts this program with one end of a SOCK_SEQPACKET
 * socketpair as descriptor 3 and sends it requests (http_wire.h). They run
 * concurrently on libcurl's multi socket API driven by libev, curl's own
 * "multi-event" example shape: curl owns the protocol, we own the waiting.
 * Each socket curl cares about gets an ev_io hung on curl's socket pointer
 * (curl_multi_assign); the single ev_timer follows CURLMOPT_TIMERFUNCTION.
 *
 * The program lives only as long as the agent wants it: end of file on the
 * socket (the agent closed it when idle, exited, or was killed -9) aborts
 * what is in flight and exits. SIGTERM/SIGINT/SIGHUP are ignored: systemd and
 * a terminal signal the whole group, and the agent still needs its uploads
 * while it flushes on the way out.
 */
#include "common.h"
#include "buf.h"
#include "http_wire.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

struct xfer;
struct hsock;

static struct {
    CURLM *multi;
    struct ev_loop *loop;
    ev_timer timer;
    ev_io rio;
    int fd;
    int running;
    struct xfer *xfers;
    struct hsock *socks;
} H;

struct hsock {
    ev_io io;
    curl_socket_t fd;
    struct hsock *prev, *next;
};

struct xfer {
    CURL *easy;
    uint32_t id;
    long status;
    double total_time;
    int curl_code;
    char error[CURL_ERROR_SIZE];
    struct ls_buf body;
    struct ls_buf headers;
    struct curl_slist *sl;
    char *msg;                   /* the request datagram: url, method... point into it */
    int body_fd;                 /* passed descriptor (owned) or -1 */
    uint64_t body_off, body_left;
    const char *mem;
    size_t mem_left;
    size_t max_response;
    struct xfer *prev, *next;
};

static void die(const char *what)
{
    fprintf(stderr, "logship-http: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void xfer_free(struct xfer *x)
{
    if (x->prev) {
        x->prev->next = x->next;
    } else {
        H.xfers = x->next;
    }
    if (x->next) {
        x->next->prev = x->prev;
    }
    if (x->easy) {
        curl_multi_remove_handle(H.multi, x->easy);
        curl_easy_cleanup(x->easy);
    }
    curl_slist_free_all(x->sl);
    if (x->body_fd >= 0) {
        close(x->body_fd);
    }
    ls_buf_release(&x->body);
    ls_buf_release(&x->headers);
    ls_free(x->msg);
    ls_free(x);
}

/* The agent reads every answer promptly; a blocking send only waits while it catches up. */
static void send_resp(struct xfer *x)
{
    struct ls_http_wire_resp r;
    char *msg;
    size_t len;
    int mfd = -1, sent;
    memset(&r, 0, sizeof(r));
    r.magic = LS_HTTP_WIRE_MAGIC;
    r.id = x->id;
    r.curl_code = x->curl_code;
    r.status = x->status;
    r.total_time = x->total_time;
    snprintf(r.error, sizeof(r.error), "%s", x->error);
    r.headers_len = (uint32_t)x->headers.len;
    r.body_len = (uint32_t)x->body.len;
    if (x->body.len > LS_HTTP_WIRE_INLINE) {
        /* a large body (a long ListObjects page) goes through a memfd, not the datagram */
        mfd = ls_wire_memfd(x->body.p, x->body.len);
        if (mfd < 0) {
            r.curl_code = CURLE_OUT_OF_MEMORY;
            r.status = 0;
            r.body_len = 0;
            snprintf(r.error, sizeof(r.error), "logship-http: cannot pass a %zu-byte response: %s",
                     x->body.len, strerror(errno));
        } else {
            r.flags |= LS_HTTP_W_BODY_FD;
        }
    }
    len = sizeof(r) + r.headers_len + (r.flags & LS_HTTP_W_BODY_FD ? 0 : r.body_len);
    msg = ls_malloc(len);
    memcpy(msg, &r, sizeof(r));
    if (r.headers_len) {
        memcpy(msg + sizeof(r), x->headers.p, r.headers_len);
    }
    if (!(r.flags & LS_HTTP_W_BODY_FD) && r.body_len) {
        memcpy(msg + sizeof(r) + r.headers_len, x->body.p, r.body_len);
    }
    sent = ls_wire_send(H.fd, msg, len, mfd, 0);
    if (sent < 0 && (errno == EPIPE || errno == ECONNRESET)) {
        _exit(0);   /* the agent is gone (killed): nobody to answer, nothing to clean up for */
    }
    if (sent != 1) {
        die("send");
    }
    if (mfd >= 0) {
        close(mfd);
    }
    ls_free(msg);
}

static void check_done(void)
{
    CURLMsg *m;
    int left;

    while ((m = curl_multi_info_read(H.multi, &left)) != NULL) {
        struct xfer *x = NULL;
        if (m->msg != CURLMSG_DONE) {
            continue;
        }
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        x->curl_code = (int)m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &x->status);
        curl_easy_getinfo(m->easy_handle, CURLINFO_TOTAL_TIME, &x->total_time);
        if (m->data.result != CURLE_OK && x->error[0] == '\0') {
            snprintf(x->error, sizeof(x->error), "%s", curl_easy_strerror(m->data.result));
        }
        send_resp(x);
        xfer_free(x);
    }
}

static void sock_free(struct hsock *s)
{
    ev_io_stop(H.loop, &s->io);
    if (s->prev) {
        s->prev->next = s->next;
    } else {
        H.socks = s->next;
    }
    if (s->next) {
        s->next->prev = s->prev;
    }
    ls_free(s);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct hsock *s = ls_container_of(w, struct hsock, io);
    int action = (revents & EV_READ ? CURL_CSELECT_IN : 0) | (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);
    LS_UNUSED(loop);

    /* curl may close the socket in this call (sock_cb REMOVE frees s): use s no more */
    curl_multi_socket_action(H.multi, s->fd, action, &H.running);
    check_done();
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    LS_UNUSED(loop);
    LS_UNUSED(w);
    LS_UNUSED(revents);
    curl_multi_socket_action(H.multi, CURL_SOCKET_TIMEOUT, 0, &H.running);
    check_done();
}

static int sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct hsock *s = socketp;
    int ev = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    LS_UNUSED(e);
    LS_UNUSED(userp);

    if (what == CURL_POLL_REMOVE) {
        if (s) {
            sock_free(s);
            curl_multi_assign(H.multi, fd, NULL);
        }
        return 0;
    }
    if (s == NULL) {
        s = ls_calloc(1, sizeof(*s));
        s->fd = fd;
        s->next = H.socks;
        if (H.socks) {
            H.socks->prev = s;
        }
        H.socks = s;
        ev_init(&s->io, io_cb);
        curl_multi_assign(H.multi, fd, s);
    }
    ev_io_stop(H.loop, &s->io);
    ev_io_set(&s->io, fd, ev);
    ev_io_start(H.loop, &s->io);
    return 0;
}

static int mtimer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    LS_UNUSED(multi);
    LS_UNUSED(userp);
    ev_timer_stop(H.loop, &H.timer);
    if (timeout_ms >= 0) {
        /* 0 means "as soon as possible": run from the loop, not re-entrantly */
        ev_timer_set(&H.timer, (double)timeout_ms / 1000.0, 0.0);
        ev_timer_start(H.loop, &H.timer);
    }
    return 0;
}

static size_t write_cb(char *p, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    size_t len = size * n;

    if (x->body.len + len > x->max_response) {
        /* keep what fits: an error body is small, a huge body is not ours to keep */
        size_t room = x->max_response - x->body.len;
        if (room) {
            ls_buf_append(&x->body, p, room);
        }
        return len;
    }
    ls_buf_append(&x->body, p, len);
    return len;
}

static size_t header_cb(char *p, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    size_t len = size * n;

    /* a new status line (after 100-continue or a redirect) starts the final headers again */
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        ls_buf_reset(&x->headers);
    }
    if (x->headers.len + len <= LS_HTTP_WIRE_HDRS) {
        ls_buf_append(&x->headers, p, len);
    }
    return len;
}

static size_t read_cb(char *p, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    size_t want = size * n;
    ssize_t got;

    if (x->mem) {
        if (want > x->mem_left) {
            want = x->mem_left;
        }
        memcpy(p, x->mem, want);
        x->mem += want;
        x->mem_left -= want;
        return want;
    }
    if (x->body_left == 0) {
        return 0;
    }
    if (want > x->body_left) {
        want = (size_t)x->body_left;
    }
    got = pread(x->body_fd, p, want, (off_t)x->body_off);
    if (got <= 0) {
        /* a short file is an error too: curl would otherwise wait for bytes that never come */
        return CURL_READFUNC_ABORT;
    }
    x->body_off += (uint64_t)got;
    x->body_left -= (uint64_t)got;
    return (size_t)got;
}

static int seek_cb(void *arg, curl_off_t offset, int origin)
{
    /* curl rewinds the body when it must resend (e.g. after a 100-continue refusal) */
    LS_UNUSED(arg);
    LS_UNUSED(offset);
    LS_UNUSED(origin);
    return CURL_SEEKFUNC_CANTSEEK;
}

static void fail_early(uint32_t id, int fd, const char *why)
{
    struct xfer x;

    memset(&x, 0, sizeof(x));
    x.id = id;
    x.curl_code = CURLE_BAD_FUNCTION_ARGUMENT;
    snprintf(x.error, sizeof(x.error), "logship-http: %s", why);
    send_resp(&x);
    if (fd >= 0) {
        close(fd);
    }
}

static const char *next_str(const char **p, const char *end)
{
    const char *s = *p;
    const char *z = s < end ? memchr(s, '\0', (size_t)(end - s)) : NULL;

    if (z == NULL) {
        return NULL;
    }
    *p = z + 1;
    return s;
}

static void start_request(char *msg, size_t len, int fd)
{
    struct ls_http_wire_req q;
    struct xfer *x;
    const char *p, *end, *method, *url, *ca, *proxy, *cert, *key, *passwd, *ciphers;
    CURL *e;
    uint32_t i;
    bool has_body;

    if (len < sizeof(q)) {
        ls_free(msg);
        if (fd >= 0) {
            close(fd);
        }
        return;
    }
    memcpy(&q, msg, sizeof(q));
    p = msg + sizeof(q);
    end = p + q.strings_len;
    if (q.magic != LS_HTTP_WIRE_MAGIC || q.strings_len > len - sizeof(q) ||
        ((q.flags & LS_HTTP_W_BODY_INLINE) && q.body_len > len - sizeof(q) - q.strings_len) ||
        ((q.flags & LS_HTTP_W_BODY_FD) && fd < 0)) {
        ls_free(msg);
        fail_early(q.id, fd, "malformed request (a helper from another build?)");
        return;
    }
    if (q.flags & LS_HTTP_W_PING) {
        struct xfer pong;
        memset(&pong, 0, sizeof(pong));
        pong.id = q.id;
        ls_buf_init(&pong.body, 0);
        ls_buf_init(&pong.headers, 0);
        send_resp(&pong);
        ls_free(msg);
        if (fd >= 0) {
            close(fd);
        }
        return;
    }
    method = next_str(&p, end);
    url = next_str(&p, end);
    ca = next_str(&p, end);
    proxy = next_str(&p, end);
    cert = next_str(&p, end);
    key = next_str(&p, end);
    passwd = next_str(&p, end);
    ciphers = next_str(&p, end);
    if (method == NULL || url == NULL || ca == NULL || proxy == NULL || cert == NULL ||
        key == NULL || passwd == NULL || ciphers == NULL) {
        ls_free(msg);
        fail_early(q.id, fd, "malformed request strings");
        return;
    }
    x = ls_calloc(1, sizeof(*x));
    x->id = q.id;
    x->msg = msg;
    x->body_fd = -1;
    ls_buf_init(&x->body, 0);
    ls_buf_init(&x->headers, 0);
    for (i = 0; i < q.nheaders; i++) {
        const char *h = next_str(&p, end);
        if (h == NULL) {
            break;
        }
        x->sl = curl_slist_append(x->sl, h);
    }
    x->max_response = q.max_response ? (size_t)q.max_response : (1 << 20);
    if (q.flags & LS_HTTP_W_BODY_INLINE) {
        x->mem = msg + sizeof(q) + q.strings_len;
        x->mem_left = (size_t)q.body_len;
    } else if (q.flags & LS_HTTP_W_BODY_FD) {
        x->body_fd = fd;
        fd = -1;
        x->body_off = q.body_off;
        x->body_left = q.body_len;
    }
    if (fd >= 0) {
        close(fd);
    }
    has_body = (q.flags & (LS_HTTP_W_BODY_INLINE | LS_HTTP_W_BODY_FD)) != 0;
    x->next = H.xfers;
    if (H.xfers) {
        H.xfers->prev = x;
    }
    H.xfers = x;

    e = curl_easy_init();
    if (e == NULL) {
        x->curl_code = CURLE_OUT_OF_MEMORY;
        snprintf(x->error, sizeof(x->error), "curl_easy_init() failed");
        send_resp(x);
        xfer_free(x);
        return;
    }
    x->easy = e;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->error);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "logship");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, (q.flags & LS_HTTP_W_VERIFY) ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, (q.flags & LS_HTTP_W_VERIFY) ? 2L : 0L);
    if (ca[0]) {
        curl_easy_setopt(e, CURLOPT_CAINFO, ca);
    }
    if (cert[0]) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, cert);
    }
    if (key[0]) {
        curl_easy_setopt(e, CURLOPT_SSLKEY, key);
    }
    if (passwd[0]) {
        curl_easy_setopt(e, CURLOPT_KEYPASSWD, passwd);
    }
    if (ciphers[0]) {
        curl_easy_setopt(e, CURLOPT_SSL_CIPHER_LIST, ciphers);
    }
    if (q.tls_min >= 1 && q.tls_min <= 3) {
        static const long v[] = { 0, CURL_SSLVERSION_TLSv1_1, CURL_SSLVERSION_TLSv1_2,
                                  CURL_SSLVERSION_TLSv1_3 };
        curl_easy_setopt(e, CURLOPT_SSLVERSION, v[q.tls_min]);
    }
    if (q.flags & LS_HTTP_W_NO_PROXY) {
        curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    } else if (proxy[0]) {
        curl_easy_setopt(e, CURLOPT_PROXY, proxy);
    }
    if (q.timeout > 0) {
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(q.timeout * 1000));
    }
    if (q.connect_timeout > 0) {
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(q.connect_timeout * 1000));
    }
    if (q.low_speed_time > 0) {
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)q.low_speed_time);
    }
    if (q.flags & LS_HTTP_W_PATH_AS_IS) {
        curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    }
    if (x->sl) {
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->sl);
    }
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        if (has_body || strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0) {
            curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb);
            curl_easy_setopt(e, CURLOPT_READDATA, x);
            curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, seek_cb);
            curl_easy_setopt(e, CURLOPT_SEEKDATA, x);
            curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)(has_body ? q.body_len : 0));
        }
    }
    if (curl_multi_add_handle(H.multi, e) != CURLM_OK) {
        x->curl_code = CURLE_OUT_OF_MEMORY;
        snprintf(x->error, sizeof(x->error), "curl_multi_add_handle() failed");
        send_resp(x);
        xfer_free(x);
    }
}

static void shutdown_all(void)
{
    ev_io_stop(H.loop, &H.rio);
    ev_timer_stop(H.loop, &H.timer);
    while (H.xfers) {
        xfer_free(H.xfers);
    }
    curl_multi_cleanup(H.multi);
    while (H.socks) {
        sock_free(H.socks);
    }
    curl_global_cleanup();
    close(H.fd);
    ev_loop_destroy(H.loop);
}

static void req_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    static char buf[LS_HTTP_WIRE_MAX];
    LS_UNUSED(w);
    LS_UNUSED(revents);

    for (;;) {
        int fd;
        ssize_t n = ls_wire_recv(H.fd, buf, sizeof(buf), &fd, MSG_DONTWAIT);
        char *msg;

        if (n < 0 && errno == EAGAIN) {
            return;
        }
        if (n < 0 && errno == EMSGSIZE) {
            struct ls_http_wire_req q;
            memcpy(&q, buf, sizeof(q));
            fail_early(q.id, -1, "request too large");
            continue;
        }
        if (n <= 0) {
            /* the agent closed its end (idle, exit, or killed): nothing left to do for anyone */
            ev_break(loop, EVBREAK_ALL);
            return;
        }
        /* the request's strings and inline body live as long as its transfer, at their size */
        msg = ls_malloc((size_t)n);
        memcpy(msg, buf, (size_t)n);
        start_request(msg, (size_t)n, fd);
    }
}

int main(int argc, char **argv)
{
    struct sigaction sa;
    LS_UNUSED(argv);

    if (argc != 1 || fcntl(LS_HTTP_HELPER_FD, F_GETFD) < 0) {
        fprintf(stderr, "logship-http: started by logship to run its HTTP requests; not for direct use\n");
        return 2;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    /* descriptors the agent did not mean to pass stay out of our way (and out of curl's) */
    close_range(LS_HTTP_HELPER_FD + 1, ~0u, 0);
    H.fd = LS_HTTP_HELPER_FD;
    fcntl(H.fd, F_SETFD, FD_CLOEXEC);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "logship-http: curl_global_init failed\n");
        return 1;
    }
    H.loop = ev_loop_new(EVFLAG_AUTO);
    if (H.loop == NULL) {
        die("ev_loop_new");
    }
    H.multi = curl_multi_init();
    ev_init(&H.timer, timer_cb);
    curl_multi_setopt(H.multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(H.multi, CURLMOPT_TIMERFUNCTION, mtimer_cb);
    curl_multi_setopt(H.multi, CURLMOPT_MAXCONNECTS, 16L);
    ev_io_init(&H.rio, req_cb, H.fd, EV_READ);
    ev_io_start(H.loop, &H.rio);
    ev_run(H.loop, 0);
    shutdown_all();
    return 0;
}
