/*
 * http.c - libcurl's multi socket API on libev (see http.h).
 *
 * The pattern is curl's own "multi-event" example shape: curl owns the
 * protocol, we own the waiting. Each socket curl cares about gets an ev_io
 * in a small struct hung on curl's socket pointer (curl_multi_assign); the
 * single ev_timer follows CURLMOPT_TIMERFUNCTION. After every
 * curl_multi_socket_action we drain curl_multi_info_read and complete the
 * finished transfers.
 */
#include "http.h"
#include "engine.h"
#include "log.h"

#include <curl/curl.h>
#include <ev.h>
#include <stdio.h>
#include <strings.h>

struct http_xfer;
struct http_sock;

struct http_multi {
    CURLM *multi;
    struct ev_loop *loop;
    ev_timer timer;
    int running;
    struct http_xfer *xfers;     /* in flight, so shutdown can complete them */
    struct http_sock *socks;     /* watched, so shutdown can free them */
};

struct http_sock {
    ev_io io;
    struct http_multi *hm;
    curl_socket_t fd;
    struct http_sock *prev, *next;
};

struct http_xfer {
    CURL *easy;
    struct ls_http_resp resp;
    ls_http_cb cb;
    void *arg;
    int body_fd;
    uint64_t body_off, body_left;
    const char *mem;
    size_t mem_left;
    size_t max_response;
    struct http_xfer *prev, *next;
};

static void xfer_unlink(struct http_multi *hm, struct http_xfer *x)
{
    if (x->prev) {
        x->prev->next = x->next;
    } else {
        hm->xfers = x->next;
    }
    if (x->next) {
        x->next->prev = x->prev;
    }
}

static void sock_free(struct http_multi *hm, struct http_sock *s)
{
    ev_io_stop(hm->loop, &s->io);
    if (s->prev) {
        s->prev->next = s->next;
    } else {
        hm->socks = s->next;
    }
    if (s->next) {
        s->next->prev = s->prev;
    }
    ls_free(s);
}

static struct http_multi *multis[4];
static struct ls_engine *multi_owner[4];

static void check_done(struct http_multi *hm)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(hm->multi, &left)) != NULL) {
        struct http_xfer *x = NULL;
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        x->resp.curl_code = (int)msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &x->resp.status);
        curl_easy_getinfo(msg->easy_handle, CURLINFO_TOTAL_TIME, &x->resp.total_time);
        if (msg->data.result != CURLE_OK && x->resp.error[0] == '\0') {
            snprintf(x->resp.error, sizeof(x->resp.error), "%s",
                     curl_easy_strerror(msg->data.result));
        }
        curl_multi_remove_handle(hm->multi, msg->easy_handle);
        curl_easy_cleanup(msg->easy_handle);
        xfer_unlink(hm, x);
        x->cb(&x->resp, x->arg);
        ls_buf_release(&x->resp.body);
        ls_buf_release(&x->resp.headers);
        ls_free(x);
    }
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct http_sock *s = ls_container_of(w, struct http_sock, io);
    struct http_multi *hm = s->hm;
    int action = (revents & EV_READ ? CURL_CSELECT_IN : 0) |
                 (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);
    LS_UNUSED(loop);

    /* curl may close the socket in this call (sock_cb REMOVE frees s): use s no more */
    curl_multi_socket_action(hm->multi, s->fd, action, &hm->running);
    check_done(hm);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct http_multi *hm = ls_container_of(w, struct http_multi, timer);
    LS_UNUSED(loop);
    LS_UNUSED(revents);

    curl_multi_socket_action(hm->multi, CURL_SOCKET_TIMEOUT, 0, &hm->running);
    check_done(hm);
}

static int sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct http_multi *hm = userp;
    struct http_sock *s = socketp;
    int ev = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    LS_UNUSED(e);

    if (what == CURL_POLL_REMOVE) {
        if (s) {
            sock_free(hm, s);
            curl_multi_assign(hm->multi, fd, NULL);
        }
        return 0;
    }
    if (s == NULL) {
        s = ls_calloc(1, sizeof(*s));
        s->hm = hm;
        s->fd = fd;
        s->next = hm->socks;
        if (hm->socks) {
            hm->socks->prev = s;
        }
        hm->socks = s;
        ev_init(&s->io, io_cb);
        curl_multi_assign(hm->multi, fd, s);
    }
    ev_io_stop(hm->loop, &s->io);
    ev_io_set(&s->io, fd, ev);
    ev_io_start(hm->loop, &s->io);
    return 0;
}

static int mtimer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct http_multi *hm = userp;
    LS_UNUSED(multi);

    ev_timer_stop(hm->loop, &hm->timer);
    if (timeout_ms >= 0) {
        /* 0 means "as soon as possible": run from the loop, not re-entrantly */
        ev_timer_set(&hm->timer, (double)timeout_ms / 1000.0, 0.0);
        ev_timer_start(hm->loop, &hm->timer);
    }
    return 0;
}

static struct http_multi *multi_for(struct ls_engine *eng)
{
    size_t i, free_slot = LS_ARRAY_LEN(multis);
    struct http_multi *hm;

    for (i = 0; i < LS_ARRAY_LEN(multis); i++) {
        if (multi_owner[i] == eng) {
            return multis[i];
        }
        if (multi_owner[i] == NULL && free_slot == LS_ARRAY_LEN(multis)) {
            free_slot = i;
        }
    }
    if (free_slot == LS_ARRAY_LEN(multis)) {
        return NULL;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    hm = ls_calloc(1, sizeof(*hm));
    hm->multi = curl_multi_init();
    hm->loop = ls_engine_loop(eng);
    ev_init(&hm->timer, timer_cb);
    curl_multi_setopt(hm->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(hm->multi, CURLMOPT_SOCKETDATA, hm);
    curl_multi_setopt(hm->multi, CURLMOPT_TIMERFUNCTION, mtimer_cb);
    curl_multi_setopt(hm->multi, CURLMOPT_TIMERDATA, hm);
    curl_multi_setopt(hm->multi, CURLMOPT_MAXCONNECTS, 16L);
    multis[free_slot] = hm;
    multi_owner[free_slot] = eng;
    return hm;
}

static size_t write_cb(char *p, size_t size, size_t n, void *arg)
{
    struct http_xfer *x = arg;
    size_t len = size * n;

    if (x->resp.body.len + len > x->max_response) {
        /* keep what fits: an error body is small, a huge body is not ours to keep */
        size_t room = x->max_response - x->resp.body.len;
        if (room) {
            ls_buf_append(&x->resp.body, p, room);
        }
        return len;
    }
    ls_buf_append(&x->resp.body, p, len);
    return len;
}

static size_t header_cb(char *p, size_t size, size_t n, void *arg)
{
    struct http_xfer *x = arg;
    size_t len = size * n;

    /* a new status line (after 100-continue or a redirect) starts the final headers again */
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        ls_buf_reset(&x->resp.headers);
    }
    if (x->resp.headers.len + len <= 64 * 1024) {
        ls_buf_append(&x->resp.headers, p, len);
    }
    return len;
}

static size_t read_cb(char *p, size_t size, size_t n, void *arg)
{
    struct http_xfer *x = arg;
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
    if (got < 0) {
        return CURL_READFUNC_ABORT;
    }
    x->body_off += (uint64_t)got;
    x->body_left -= (uint64_t)got;
    return (size_t)got;
}

static int seek_cb(void *arg, curl_off_t offset, int origin)
{
    /* curl rewinds the body when it must resend (e.g. after a 100-continue refusal) */
    struct http_xfer *x = arg;
    LS_UNUSED(x);
    LS_UNUSED(offset);
    LS_UNUSED(origin);
    return CURL_SEEKFUNC_CANTSEEK;
}

int ls_http_submit(struct ls_engine *eng, const struct ls_http_req *req, ls_http_cb cb, void *arg)
{
    struct http_multi *hm = multi_for(eng);
    struct http_xfer *x;
    CURL *e;
    bool has_body = req->body != NULL || req->body_fd >= 0;

    if (hm == NULL) {
        return LS_ERROR;
    }
    x = ls_calloc(1, sizeof(*x));
    e = curl_easy_init();
    x->easy = e;
    x->cb = cb;
    x->arg = arg;
    x->max_response = req->max_response ? req->max_response : (1 << 20);
    ls_buf_init(&x->resp.body, 0);
    ls_buf_init(&x->resp.headers, 0);
    x->body_fd = req->body_fd;
    x->body_off = req->body_off;
    x->body_left = req->body_file_len;
    x->mem = req->body;
    x->mem_left = req->body_len;

    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->resp.error);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, req->verify_peer ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, req->verify_peer ? 2L : 0L);
    if (req->ca_file) {
        curl_easy_setopt(e, CURLOPT_CAINFO, req->ca_file);
    }
    if (req->proxy) {
        curl_easy_setopt(e, CURLOPT_PROXY, req->proxy);
    }
    if (req->timeout > 0) {
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(req->timeout * 1000));
    }
    if (req->connect_timeout > 0) {
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(req->connect_timeout * 1000));
    }
    if (req->low_speed_time > 0) {
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)req->low_speed_time);
    }
    if (req->path_as_is) {
        curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    }
    if (req->headers) {
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers);
    }
    if (strcmp(req->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
        if (has_body || strcmp(req->method, "PUT") == 0 || strcmp(req->method, "POST") == 0) {
            curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb);
            curl_easy_setopt(e, CURLOPT_READDATA, x);
            curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, seek_cb);
            curl_easy_setopt(e, CURLOPT_SEEKDATA, x);
            curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE,
                             (curl_off_t)(req->body ? req->body_len : req->body_file_len));
        }
    }
    if (curl_multi_add_handle(hm->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        ls_buf_release(&x->resp.body);
        ls_buf_release(&x->resp.headers);
        ls_free(x);
        return LS_ERROR;
    }
    x->next = hm->xfers;
    if (hm->xfers) {
        hm->xfers->prev = x;
    }
    hm->xfers = x;
    return LS_OK;
}

const char *ls_http_resp_header(const struct ls_http_resp *resp, const char *name, char *out,
                                size_t outlen)
{
    const char *p = resp->headers.p;
    const char *end = p ? p + resp->headers.len : NULL;
    size_t n = strlen(name);

    while (p && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if ((size_t)(le - p) > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            size_t len;
            while (v < le && (*v == ' ' || *v == '\t')) {
                v++;
            }
            len = (size_t)(le - v);
            while (len && (v[len - 1] == '\r' || v[len - 1] == ' ')) {
                len--;
            }
            if (len >= outlen) {
                len = outlen - 1;
            }
            memcpy(out, v, len);
            out[len] = '\0';
            return out;
        }
        p = nl ? nl + 1 : end;
    }
    return NULL;
}

void ls_http_shutdown(struct ls_engine *eng)
{
    size_t i;

    for (i = 0; i < LS_ARRAY_LEN(multis); i++) {
        if (multi_owner[i] == eng) {
            struct http_multi *hm = multis[i];
            ev_timer_stop(hm->loop, &hm->timer);
            /* complete what is still in flight, with an error, so owners can clean up */
            while (hm->xfers) {
                struct http_xfer *x = hm->xfers;
                xfer_unlink(hm, x);
                curl_multi_remove_handle(hm->multi, x->easy);
                curl_easy_cleanup(x->easy);
                x->resp.curl_code = CURLE_ABORTED_BY_CALLBACK;
                snprintf(x->resp.error, sizeof(x->resp.error), "aborted at shutdown");
                x->cb(&x->resp, x->arg);
                ls_buf_release(&x->resp.body);
                ls_buf_release(&x->resp.headers);
                ls_free(x);
            }
            curl_multi_cleanup(hm->multi);
            while (hm->socks) {
                sock_free(hm, hm->socks);
            }
            ls_free(hm);
            multis[i] = NULL;
            multi_owner[i] = NULL;
        }
    }
}
