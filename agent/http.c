/*
 * http.c - the agent's side of the HTTP helper (see http.h and http_wire.h).
 *
 * Each engine has at most one logship-http child. A request becomes one
 * datagram (plus a descriptor for a large or file body) as soon as it is
 * submitted, so the caller's buffers are free again at once; datagrams the
 * socket cannot take yet wait in submit order for EV_WRITE. Answers carry
 * the request's id. The agent, not the helper, decides when the helper is
 * idle: only the side that submits can know no request is on its way, so an
 * idle exit never races a new request.
 */
#include "http.h"
#include "http_wire.h"
#include "log.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct http_call {
    uint32_t id;
    ls_http_cb cb;
    void *arg;
    char *msg;             /* the datagram until it is sent */
    size_t len;
    int fd;                /* descriptor to pass with it, or -1 */
    bool own_fd;           /* a memfd we made: closed once sent */
    struct http_call *next;
};

struct http_client {
    struct ls_engine *eng;
    struct ev_loop *loop;
    int fd;                        /* our end of the socketpair, -1 when no helper runs */
    char *rbuf;                    /* LS_HTTP_WIRE_MAX bytes for answers, while a helper runs */
    pid_t pid;
    ev_io rio, wio;
    ev_timer idle;
    ev_timer reap;
    ev_timer watch;                /* while requests wait: is the helper still answering? */
    double last_heard;             /* monotonic: its last answer (or the first request) */
    double ping_sent;              /* > 0: a ping is out since then */
    bool stall_warned;
    struct zombie { pid_t pid; bool report; } zombies[8];
    size_t nzombies;
    uint32_t next_id;
    struct http_call *calls, *tail;   /* outstanding, in submit order */
    struct http_call *unsent;         /* first call not yet sent (calls are sent in order) */
    bool closing;                     /* ls_http_shutdown: no new request is taken */
};

static struct http_client *clients[4];

static void heard(struct http_client *c);
static pthread_mutex_t path_lock = PTHREAD_MUTEX_INITIALIZER;
static char helper_path[PATH_MAX];
static char argv0_dir[PATH_MAX];

/* ------------------------------------------------------------------ */
/* finding and starting the helper                                     */

void ls_http_set_argv0(const char *argv0)
{
    const char *slash = argv0 ? strrchr(argv0, '/') : NULL;
    char dir[PATH_MAX], *real;

    if (slash == NULL || (size_t)(slash - argv0) >= sizeof(dir)) {
        return;
    }
    memcpy(dir, argv0, (size_t)(slash - argv0));
    dir[slash - argv0] = '\0';
    /* absolute now: --daemon changes the working directory before the first request */
    real = realpath(dir[0] ? dir : "/", NULL);
    snprintf(argv0_dir, sizeof(argv0_dir), "%s", real ? real : dir);
    free(real);
}

static bool try_dir(const char *dir)
{
    static const char *const rel[] = { "logship-http", "../lib/logship/logship-http" };
    size_t i;

    for (i = 0; dir[0] && i < LS_ARRAY_LEN(rel); i++) {
        char p[PATH_MAX];
        char *real;
        if (snprintf(p, sizeof(p), "%s/%s", dir, rel[i]) >= (int)sizeof(p) || access(p, X_OK) != 0) {
            continue;
        }
        real = realpath(p, NULL);
        snprintf(helper_path, sizeof(helper_path), "%s", real ? real : p);
        free(real);
        return true;
    }
    return false;
}

/*
 * Next to the binary (a build tree) or in ../lib/logship (an installed
 * /usr/bin/logship, /usr/local/bin/logship). /proc/self/exe first, then
 * argv[0]'s directory: under valgrind /proc/self/exe is valgrind's tool.
 */
const char *ls_http_helper_path(char *err, size_t errlen)
{
    const char *env = getenv("LOGSHIP_HTTP_HELPER");
    char exe[PATH_MAX];
    ssize_t n;
    const char *found = NULL;

    pthread_mutex_lock(&path_lock);
    if (helper_path[0]) {
        found = helper_path;
    } else if (env && env[0]) {
        if (access(env, X_OK) == 0) {
            snprintf(helper_path, sizeof(helper_path), "%s", env);
            found = helper_path;
        } else if (err) {
            snprintf(err, errlen, "LOGSHIP_HTTP_HELPER=%s: %s", env, strerror(errno));
        }
    } else {
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n > 0) {
            char *slash;
            exe[n] = '\0';
            slash = strrchr(exe, '/');
            if (slash) {
                *slash = '\0';
            }
            if (try_dir(exe)) {
                found = helper_path;
            }
        }
        if (found == NULL && try_dir(argv0_dir)) {
            found = helper_path;
        }
        if (found == NULL && err) {
            snprintf(err, errlen, "cannot find logship-http (the program that runs logship's HTTP "
                     "requests) next to %s or in its ../lib/logship/; reinstall logship or set "
                     "LOGSHIP_HTTP_HELPER", n > 0 ? exe : "the logship binary");
        }
    }
    pthread_mutex_unlock(&path_lock);
    return found;
}

static int spawn_helper(int *fd_out, pid_t *pid_out, char *err, size_t errlen)
{
    const char *path = ls_http_helper_path(err, errlen);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, dflt;
    char *argv[] = { (char *)"logship-http", NULL };
    int sv[2], rc;
    pid_t pid;

    if (path == NULL) {
        return LS_ERROR;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        snprintf(err, errlen, "socketpair: %s", strerror(errno));
        return LS_ERROR;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, sv[1], LS_HTTP_HELPER_FD);
    posix_spawnattr_init(&at);
    /* the engine threads may block signals; the helper starts with a clean slate */
    sigemptyset(&none);
    sigfillset(&dflt);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dflt);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    rc = posix_spawn(&pid, path, &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(sv[1]);
    if (rc != 0) {
        close(sv[0]);
        snprintf(err, errlen, "cannot start %s: %s", path, strerror(rc));
        return LS_ERROR;
    }
    *fd_out = sv[0];
    *pid_out = pid;
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* datagrams                                                           */

int ls_http_refusal(const struct ls_http_resp *resp, const char *prefix, char *msg,
                    size_t msglen)
{
    if (resp->status == 0) {
        snprintf(msg, msglen, "%s: %s", prefix, resp->error[0] ? resp->error : "no answer");
    } else {
        snprintf(msg, msglen, "%s: %ld %.200s", prefix, resp->status,
                 ls_buf_cstr((struct ls_buf *)&resp->body));
    }
    return resp->status == 0 || resp->status == 429 || resp->status >= 500 ? LS_ERROR
                                                                             : LS_DECLINED;
}

void ls_http_hdr_add(struct ls_buf *h, const char *line)
{
    ls_buf_append(h, line, strlen(line) + 1);
}

void ls_http_hdr_set(struct ls_buf *h, const char *name, const char *value)
{
    ls_buf_printf(h, "%s: %s", name, value);
    ls_buf_putc(h, '\0');
}

void ls_http_hdr_add_kvv(struct ls_buf *h, const struct ls_kvv *headers)
{
    for (size_t i = 0; i < headers->n; i++) {
        ls_http_hdr_set(h, headers->v[i].key, headers->v[i].value);
    }
}

static void add_str(struct ls_buf *b, const char *s)
{
    ls_buf_append(b, s ? s : "", strlen(s ? s : "") + 1);
}

/* The request as a datagram; *pass_fd / *own_fd say which descriptor goes with it. */
static int build_req(const struct ls_http_req *req, uint32_t id, struct ls_buf *out, int *pass_fd, bool *own_fd,
                     char *err, size_t errlen)
{
    struct ls_http_wire_req q;
    size_t strings_at, i, nh = 0;

    memset(&q, 0, sizeof(q));
    q.magic = LS_HTTP_WIRE_MAGIC;
    q.id = id;
    q.flags = (req->verify_peer ? LS_HTTP_W_VERIFY : 0) | (req->path_as_is ? LS_HTTP_W_PATH_AS_IS : 0) |
              (req->no_proxy ? LS_HTTP_W_NO_PROXY : 0);
    q.max_response = req->max_response;
    q.timeout = req->timeout;
    q.connect_timeout = req->connect_timeout;
    q.low_speed_time = req->low_speed_time;
    q.tls_min = (uint32_t)req->tls_min;
    *pass_fd = -1;
    *own_fd = false;
    ls_buf_append(out, &q, sizeof(q));
    strings_at = out->len;
    add_str(out, req->method);
    add_str(out, req->url);
    add_str(out, req->ca_file);
    add_str(out, req->proxy);
    add_str(out, req->client_cert);
    add_str(out, req->client_key);
    add_str(out, req->key_passwd);
    add_str(out, req->ciphers);
    if (req->headers) {
        for (i = 0; i < req->headers->len; i += strlen(req->headers->p + i) + 1) {
            add_str(out, req->headers->p + i);
            nh++;
        }
    }
    q.nheaders = (uint32_t)nh;
    q.strings_len = (uint32_t)(out->len - strings_at);
    if (req->body) {
        q.body_len = req->body_len;
        if (req->body_len <= LS_HTTP_WIRE_INLINE) {
            q.flags |= LS_HTTP_W_BODY_INLINE;
            ls_buf_append(out, req->body, req->body_len);
        } else {
            /* larger than a datagram should be: hand it over as a memfd */
            int mfd = ls_wire_memfd(req->body, req->body_len);
            if (mfd < 0) {
                snprintf(err, errlen, "memfd for a %zu-byte body: %s", req->body_len, strerror(errno));
                return LS_ERROR;
            }
            q.flags |= LS_HTTP_W_BODY_FD;
            *pass_fd = mfd;
            *own_fd = true;
        }
    } else if (req->body_fd >= 0) {
        q.flags |= LS_HTTP_W_BODY_FD;
        q.body_off = req->body_off;
        q.body_len = req->body_file_len;
        *pass_fd = req->body_fd;
    }
    if (out->len > LS_HTTP_WIRE_MAX) {
        snprintf(err, errlen, "request too large (%zu bytes of URL and headers)", out->len);
        if (*own_fd) {
            close(*pass_fd);
        }
        return LS_ERROR;
    }
    memcpy(out->p, &q, sizeof(q));
    return LS_OK;
}

/*
 * One answer datagram into resp. The id is returned in *id. LS_ERROR if it
 * is not an answer of this build.
 */
static int parse_resp(const char *msg, size_t n, int fd, uint32_t *id, struct ls_http_resp *resp)
{
    struct ls_http_wire_resp r;

    if (n < sizeof(r)) {
        return LS_ERROR;
    }
    memcpy(&r, msg, sizeof(r));
    if (r.magic != LS_HTTP_WIRE_MAGIC || r.headers_len > n - sizeof(r) ||
        (!(r.flags & LS_HTTP_W_BODY_FD) && r.body_len > n - sizeof(r) - r.headers_len) ||
        ((r.flags & LS_HTTP_W_BODY_FD) && fd < 0)) {
        return LS_ERROR;
    }
    *id = r.id;
    resp->status = (long)r.status;
    resp->curl_code = r.curl_code;
    resp->total_time = r.total_time;
    memcpy(resp->error, r.error, sizeof(resp->error));
    resp->error[sizeof(resp->error) - 1] = '\0';
    ls_buf_append(&resp->headers, msg + sizeof(r), r.headers_len);
    if (r.flags & LS_HTTP_W_BODY_FD) {
        if (ls_buf_reserve(&resp->body, r.body_len) != LS_OK ||
            pread(fd, resp->body.p, r.body_len, 0) != (ssize_t)r.body_len) {
            resp->status = 0;
            resp->curl_code = LS_HTTP_E_HELPER;
            snprintf(resp->error, sizeof(resp->error), "cannot read a %u-byte response from logship-http",
                     r.body_len);
        } else {
            resp->body.len = r.body_len;
        }
    } else {
        ls_buf_append(&resp->body, msg + sizeof(r) + r.headers_len, r.body_len);
    }
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* the engine's helper                                                 */

static double idle_seconds(void)
{
    const char *e = getenv("LOGSHIP_HTTP_IDLE");
    double v = e ? atof(e) : 10.0;
    return v > 0 ? v : 10.0;
}

/*
 * A helper that closed its socket on its own (killed, crashed) is reported when
 * it is reaped: its descriptors close before it becomes a zombie, so the cause
 * is not known yet when the agent sees end of file, and the loop must not wait.
 */
static void report_exit(pid_t pid, int st)
{
    if (WIFSIGNALED(st)) {
        ls_warn("http: logship-http (pid %d) was killed by signal %d", (int)pid, WTERMSIG(st));
    } else if (WIFEXITED(st)) {
        ls_warn("http: logship-http (pid %d) exited with status %d", (int)pid, WEXITSTATUS(st));
    }
}

static void reap_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct http_client *c = ls_container_of(w, struct http_client, reap);
    size_t i = 0;
    LS_UNUSED(revents);

    while (i < c->nzombies) {
        int st = 0;
        pid_t r = waitpid(c->zombies[i].pid, &st, WNOHANG);
        if (r == 0) {
            i++;
            continue;
        }
        if (r > 0 && c->zombies[i].report) {
            report_exit(r, st);
        }
        c->zombies[i] = c->zombies[--c->nzombies];
    }
    if (c->nzombies == 0) {
        ev_timer_stop(loop, w);
    }
}

/*
 * Close our end: the helper sees end of file and exits; it is reaped from a
 * timer. report: it went away on its own (killed, crashed), so say how once
 * it is reaped.
 */
static void helper_close(struct http_client *c, bool report)
{
    if (c->fd < 0) {
        return;
    }
    ev_io_stop(c->loop, &c->rio);
    ev_io_stop(c->loop, &c->wio);
    ev_timer_stop(c->loop, &c->idle);
    ev_timer_stop(c->loop, &c->watch);
    c->ping_sent = 0;
    c->stall_warned = false;
    close(c->fd);
    c->fd = -1;
    ls_free(c->rbuf);
    c->rbuf = NULL;
    if (c->pid > 0) {
        if (c->nzombies == LS_ARRAY_LEN(c->zombies)) {
            /* helpers that will not exit (should not happen): do not let them pile up */
            kill(c->zombies[0].pid, SIGKILL);
            waitpid(c->zombies[0].pid, NULL, 0);
            c->zombies[0] = c->zombies[--c->nzombies];
        }
        c->zombies[c->nzombies].pid = c->pid;
        c->zombies[c->nzombies++].report = report;
        if (!ev_is_active(&c->reap)) {
            /* soon for a helper that died (its cause goes to the log), lazily for an idle one */
            ev_timer_set(&c->reap, report ? 0.01 : 0.05, report ? 0.05 : 0.2);
            ev_timer_start(c->loop, &c->reap);
        }
    }
    c->pid = 0;
}

static void call_free(struct http_call *k)
{
    if (k->own_fd && k->fd >= 0) {
        close(k->fd);
    }
    ls_free(k->msg);
    ls_free(k);
}

/* Every outstanding call completes with an error; callbacks may submit again. */
static void fail_all(struct http_client *c, const char *why)
{
    struct http_call *list = c->calls;

    c->calls = c->tail = c->unsent = NULL;
    helper_close(c, false);
    while (list) {
        struct http_call *k = list;
        struct ls_http_resp resp;
        list = k->next;
        memset(&resp, 0, sizeof(resp));
        ls_buf_init(&resp.body, 0);
        ls_buf_init(&resp.headers, 0);
        resp.curl_code = LS_HTTP_E_HELPER;
        snprintf(resp.error, sizeof(resp.error), "%s", why);
        k->cb(&resp, k->arg);
        ls_buf_release(&resp.body);
        ls_buf_release(&resp.headers);
        call_free(k);
    }
}

static void arm_idle(struct http_client *c)
{
    if (c->calls == NULL && c->fd >= 0) {
        ev_timer_stop(c->loop, &c->idle);
        ev_timer_set(&c->idle, idle_seconds(), 0.0);
        ev_timer_start(c->loop, &c->idle);
    }
}

static void flush_unsent(struct http_client *c)
{
    while (c->unsent) {
        struct http_call *k = c->unsent;
        int r = ls_wire_send(c->fd, k->msg, k->len, k->fd, MSG_DONTWAIT);
        if (r == 0) {
            ev_io_start(c->loop, &c->wio);
            return;
        }
        if (r < 0) {
            char why[160];
            snprintf(why, sizeof(why), "logship-http: send: %s", strerror(errno));
            ls_warn("http: %s", why);
            helper_close(c, true);   /* EPIPE, ECONNRESET: it died */
            fail_all(c, why);
            return;
        }
        ls_free(k->msg);
        k->msg = NULL;
        if (k->own_fd) {
            close(k->fd);
        }
        k->fd = -1;
        c->unsent = k->next;
    }
    ev_io_stop(c->loop, &c->wio);
}

static void wio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    LS_UNUSED(loop);
    LS_UNUSED(revents);
    flush_unsent(ls_container_of(w, struct http_client, wio));
}

static void rio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct http_client *c = ls_container_of(w, struct http_client, rio);
    LS_UNUSED(loop);
    LS_UNUSED(revents);

    while (c->fd >= 0) {
        int pfd;
        ssize_t n = ls_wire_recv(c->fd, c->rbuf, LS_HTTP_WIRE_MAX, &pfd, MSG_DONTWAIT);
        struct ls_http_resp resp;
        struct http_call *k, *prev = NULL;
        uint32_t id = 0;
        int ok;

        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        if (n <= 0) {
            char why[200];
            /* ECONNRESET when it died with requests still unread in its queue */
            if (n < 0) {
                snprintf(why, sizeof(why), "logship-http (pid %d): %s", (int)c->pid, strerror(errno));
            } else {
                snprintf(why, sizeof(why), "logship-http (pid %d) closed its socket", (int)c->pid);
            }
            if (c->calls) {
                ls_warn("http: %s; its requests will be retried", why);
            }
            helper_close(c, true);
            fail_all(c, why);
            break;
        }
        memset(&resp, 0, sizeof(resp));
        ls_buf_init(&resp.body, 0);
        ls_buf_init(&resp.headers, 0);
        ok = parse_resp(c->rbuf, (size_t)n, pfd, &id, &resp);
        if (pfd >= 0) {
            close(pfd);
        }
        for (k = c->calls; ok == LS_OK && k && k->id != id; prev = k, k = k->next) {
        }
        if (ok != LS_OK || k == NULL || k == c->unsent) {
            ls_buf_release(&resp.body);
            ls_buf_release(&resp.headers);
            ls_warn("http: a malformed or unexpected answer from logship-http; restarting it");
            fail_all(c, "logship-http answered out of protocol");
            break;
        }
        heard(c);
        if (prev) {
            prev->next = k->next;
        } else {
            c->calls = k->next;
        }
        if (c->tail == k) {
            c->tail = prev;
        }
        arm_idle(c);
        k->cb(&resp, k->arg);
        ls_buf_release(&resp.body);
        ls_buf_release(&resp.headers);
        call_free(k);
    }
}

static void idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct http_client *c = ls_container_of(w, struct http_client, idle);
    LS_UNUSED(loop);
    LS_UNUSED(revents);

    if (c->calls == NULL) {
        ls_debug("http: idle for %.0fs, stopping logship-http (pid %d)", idle_seconds(), (int)c->pid);
        helper_close(c, false);
    }
}

/*
 * A helper that stops answering (stopped, stuck in a library call) would leave every
 * request waiting without a word: transfers have their own timeouts, but only the helper
 * enforces them. So while requests wait and nothing was heard for HTTP_PING_AFTER seconds,
 * a ping goes out (answered at once by a live helper, whatever its transfers do); one
 * unanswered for HTTP_STALL_AFTER seconds is logged, and so is the helper's return.
 */
#define HTTP_PING_AFTER 3.0
#define HTTP_STALL_AFTER 5.0

static void enqueue_call(struct http_client *c, struct http_call *k);

static size_t count_calls(const struct http_client *c)
{
    size_t n = 0;

    for (const struct http_call *k = c->calls; k; k = k->next) {
        n++;
    }
    return n;
}

static void heard(struct http_client *c)
{
    double now = ev_now(c->loop);

    if (c->stall_warned) {
        ls_info("http: logship-http (pid %d) answers again after %.0fs", (int)c->pid,
                now - c->last_heard);
        c->stall_warned = false;
    }
    c->last_heard = now;
}

static void pong_cb(struct ls_http_resp *resp, void *arg)
{
    struct http_client *c = arg;
    LS_UNUSED(resp);

    c->ping_sent = 0;
}

static void send_ping(struct http_client *c)
{
    struct ls_http_wire_req q;
    struct http_call *k = ls_calloc(1, sizeof(*k));

    memset(&q, 0, sizeof(q));
    q.magic = LS_HTTP_WIRE_MAGIC;
    q.id = k->id = ++c->next_id;
    q.flags = LS_HTTP_W_PING;
    k->cb = pong_cb;
    k->arg = c;
    k->fd = -1;
    k->len = sizeof(q);
    k->msg = ls_malloc(sizeof(q));
    memcpy(k->msg, &q, sizeof(q));
    c->ping_sent = ev_now(c->loop);
    enqueue_call(c, k);
}

static void watch_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct http_client *c = ls_container_of(w, struct http_client, watch);
    double now = ev_now(loop);
    LS_UNUSED(revents);

    if (c->calls == NULL || c->fd < 0) {
        ev_timer_stop(loop, w);
        c->ping_sent = 0;
        c->stall_warned = false;
        return;
    }
    if (c->ping_sent > 0) {
        if (!c->stall_warned && now - c->ping_sent >= HTTP_STALL_AFTER) {
            ls_warn("http: logship-http (pid %d) has answered nothing for %.0fs, not even a "
                    "ping; %zu requests wait for it (stopped or stuck?)", (int)c->pid,
                    now - c->last_heard, count_calls(c) - 1);
            c->stall_warned = true;
        }
    } else if (now - c->last_heard >= HTTP_PING_AFTER) {
        send_ping(c);
    }
}

static struct http_client *client_for(struct ls_engine *eng)
{
    size_t i, free_slot = LS_ARRAY_LEN(clients);
    struct http_client *c;

    for (i = 0; i < LS_ARRAY_LEN(clients); i++) {
        if (clients[i] && clients[i]->eng == eng) {
            return clients[i];
        }
        if (clients[i] == NULL && free_slot == LS_ARRAY_LEN(clients)) {
            free_slot = i;
        }
    }
    if (free_slot == LS_ARRAY_LEN(clients)) {
        return NULL;
    }
    c = ls_calloc(1, sizeof(*c));
    c->eng = eng;
    c->loop = ls_engine_loop(eng);
    c->fd = -1;
    ev_init(&c->rio, rio_cb);
    ev_init(&c->wio, wio_cb);
    ev_init(&c->idle, idle_cb);
    ev_init(&c->reap, reap_cb);
    ev_init(&c->watch, watch_cb);
    clients[free_slot] = c;
    return c;
}

int ls_http_submit(struct ls_engine *eng, const struct ls_http_req *req, ls_http_cb cb, void *arg)
{
    struct http_client *c = client_for(eng);
    struct http_call *k;
    struct ls_buf msg;
    char err[512];

    if (c == NULL) {
        return LS_ERROR;
    }
    if (c->closing) {
        /* a callback of a request failed by the shutdown, starting its next step: a new
         * request (a new helper, even) would outlive the client that owns it */
        ls_debug("http: %s %s not sent: shutting down", req->method, req->url);
        return LS_ERROR;
    }
    if (c->fd < 0) {
        if (spawn_helper(&c->fd, &c->pid, err, sizeof(err)) != LS_OK) {
            ls_error("http: %s", err);
            c->fd = -1;
            return LS_ERROR;
        }
        ls_debug("http: started logship-http (pid %d)", (int)c->pid);
        c->rbuf = ls_malloc(LS_HTTP_WIRE_MAX);
        ev_io_set(&c->rio, c->fd, EV_READ);
        ev_io_set(&c->wio, c->fd, EV_WRITE);
        ev_io_start(c->loop, &c->rio);
    }
    k = ls_calloc(1, sizeof(*k));
    k->id = ++c->next_id;
    k->cb = cb;
    k->arg = arg;
    ls_buf_init(&msg, 0);
    if (build_req(req, k->id, &msg, &k->fd, &k->own_fd, err, sizeof(err)) != LS_OK) {
        ls_error("http: %s %s: %s", req->method, req->url, err);
        ls_buf_release(&msg);
        ls_free(k);
        arm_idle(c);
        return LS_ERROR;
    }
    k->msg = ls_buf_detach(&msg, &k->len);
    if (c->calls == NULL) {
        c->last_heard = ev_now(c->loop);     /* silence counts from the first request on */
    }
    enqueue_call(c, k);
    if (!ev_is_active(&c->watch)) {
        ev_timer_set(&c->watch, 1.0, 1.0);
        ev_timer_start(c->loop, &c->watch);
    }
    return LS_OK;
}

static void enqueue_call(struct http_client *c, struct http_call *k)
{
    if (c->tail) {
        c->tail->next = k;
    } else {
        c->calls = k;
    }
    c->tail = k;
    if (c->unsent == NULL) {
        c->unsent = k;
    }
    ev_timer_stop(c->loop, &c->idle);
    /* sent from the loop, not here: a failing send must not call back into the submitter */
    ev_io_start(c->loop, &c->wio);
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

/* Wait for a helper we closed, killing it if it will not go (shutdown only). */
static void reap_now(pid_t pid, bool report)
{
    int i, st = 0;

    for (i = 0; i < 500; i++) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r != 0) {
            if (r == pid && report) {
                report_exit(pid, st);
            }
            return;
        }
        if (i == 0) {
            continue;
        }
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

void ls_http_shutdown(struct ls_engine *eng)
{
    size_t i;

    for (i = 0; i < LS_ARRAY_LEN(clients); i++) {
        struct http_client *c = clients[i];
        if (c == NULL || c->eng != eng) {
            continue;
        }
        c->closing = true;
        fail_all(c, "aborted at shutdown");
        /* reaped here so its CPU time is counted in ours (getrusage RUSAGE_CHILDREN) */
        ev_timer_stop(c->loop, &c->reap);
        while (c->nzombies) {
            c->nzombies--;
            reap_now(c->zombies[c->nzombies].pid, c->zombies[c->nzombies].report);
        }
        ls_free(c);
        clients[i] = NULL;
    }
}

/* ------------------------------------------------------------------ */
/* one blocking request                                                */

int ls_http_fetch(const struct ls_http_req *req, struct ls_http_resp *resp)
{
    struct ls_buf msg;
    int fd, pass_fd = -1, rfd = -1;
    bool own_fd = false;
    pid_t pid;
    int rc = LS_ERROR;
    uint32_t id = 0;
    double wait_s = (req->timeout > 0 ? req->timeout : 300) + (req->connect_timeout > 0 ? req->connect_timeout : 0) + 10;
    struct pollfd pf;
    char *buf = NULL;
    ssize_t n;

    memset(resp, 0, sizeof(*resp));
    ls_buf_init(&resp->body, 0);
    ls_buf_init(&resp->headers, 0);
    if (spawn_helper(&fd, &pid, resp->error, sizeof(resp->error)) != LS_OK) {
        resp->curl_code = LS_HTTP_E_HELPER;
        return LS_ERROR;
    }
    ls_buf_init(&msg, 0);
    if (build_req(req, 1, &msg, &pass_fd, &own_fd, resp->error, sizeof(resp->error)) != LS_OK) {
        goto out;
    }
    if (ls_wire_send(fd, msg.p, msg.len, pass_fd, 0) != 1) {
        snprintf(resp->error, sizeof(resp->error), "logship-http: send: %s", strerror(errno));
        goto out;
    }
    pf.fd = fd;
    pf.events = POLLIN;
    if (poll(&pf, 1, (int)(wait_s * 1000)) != 1) {
        snprintf(resp->error, sizeof(resp->error), "logship-http did not answer in %.0fs", wait_s);
        goto out;
    }
    buf = ls_malloc(LS_HTTP_WIRE_MAX);
    n = ls_wire_recv(fd, buf, LS_HTTP_WIRE_MAX, &rfd, 0);
    if (n <= 0) {
        snprintf(resp->error, sizeof(resp->error), "logship-http exited without answering");
        goto out;
    }
    if (parse_resp(buf, (size_t)n, rfd, &id, resp) != LS_OK || id != 1) {
        snprintf(resp->error, sizeof(resp->error), "logship-http answered out of protocol");
        goto out;
    }
    rc = LS_OK;
out:
    if (rc != LS_OK) {
        resp->status = 0;
        resp->curl_code = LS_HTTP_E_HELPER;
    }
    if (rfd >= 0) {
        close(rfd);
    }
    if (own_fd) {
        close(pass_fd);
    }
    ls_free(buf);
    ls_buf_release(&msg);
    close(fd);
    reap_now(pid, false);
    return rc;
}
