/*
 * loop.c - the watchers the core lends to plugins, and the worker pool.
 *
 * Plugins get timers and fd watches through these wrappers (path watches: notify.c)
 * instead of libev types, so the core owns every watcher (it can stop an
 * input's watchers, and plugins do not depend on libev's macros). Each
 * wrapper embeds its ev watcher and finds itself again with container_of.
 *
 * The worker pool runs CPU-heavy work that is not per-line (compressing a
 * sealed chunk, hashing an upload) on other cores; results come back to the
 * loop through one ev_async, so plugin callbacks always run on the loop
 * thread and nothing on the per-line path takes a lock.
 */
#include "engine.h"
#include "log.h"

struct ls_timer {
    ev_timer w;
    struct ls_instance *ins;
    ls_timer_cb cb;
    void *arg;
};

struct ls_io {
    ev_io w;
    struct ls_instance *ins;
    ls_io_cb cb;
    void *arg;
};

struct ls_work {
    void (*work)(void *arg);
    void (*done)(void *arg);
    void *arg;
    struct ls_work *next;
};

struct ev_loop *ls_engine_loop(struct ls_engine *eng)
{
    return eng->loop;
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct ls_timer *t = ls_container_of(w, struct ls_timer, w);
    LS_UNUSED(loop);
    LS_UNUSED(revents);
    t->cb(t, t->arg);
}

struct ls_timer *ls_timer_new(struct ls_instance *ins, ls_timer_cb cb, void *arg)
{
    struct ls_timer *t = ls_calloc(1, sizeof(*t));

    ev_init(&t->w, timer_cb);
    t->ins = ins;
    t->cb = cb;
    t->arg = arg;
    return t;
}

void ls_timer_start(struct ls_timer *t, double after, double repeat)
{
    struct ev_loop *loop = t->ins->engine->loop;

    ev_timer_stop(loop, &t->w);
    ev_timer_set(&t->w, after, repeat);
    ev_timer_start(loop, &t->w);
}

void ls_timer_stop(struct ls_timer *t)
{
    ev_timer_stop(t->ins->engine->loop, &t->w);
}

void ls_timer_free(struct ls_timer *t)
{
    if (t == NULL) {
        return;
    }
    ls_timer_stop(t);
    ls_free(t);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct ls_io *io = ls_container_of(w, struct ls_io, w);
    int ev = 0;
    LS_UNUSED(loop);

    if (revents & EV_READ) {
        ev |= LS_IO_READ;
    }
    if (revents & EV_WRITE) {
        ev |= LS_IO_WRITE;
    }
    io->cb(io, ev, io->arg);
}

struct ls_io *ls_io_new(struct ls_instance *ins, int fd, int events, ls_io_cb cb, void *arg)
{
    struct ls_io *io = ls_calloc(1, sizeof(*io));

    ev_init(&io->w, io_cb);
    ev_io_set(&io->w, fd, 0);
    io->ins = ins;
    io->cb = cb;
    io->arg = arg;
    ls_io_set(io, events);
    return io;
}

void ls_io_set(struct ls_io *io, int events)
{
    struct ev_loop *loop = io->ins->engine->loop;
    int ev = 0;

    ev_io_stop(loop, &io->w);
    if (events & LS_IO_READ) {
        ev |= EV_READ;
    }
    if (events & LS_IO_WRITE) {
        ev |= EV_WRITE;
    }
    if (ev) {
        ev_io_set(&io->w, io->w.fd, ev);
        ev_io_start(loop, &io->w);
    }
}

void ls_io_free(struct ls_io *io)
{
    if (io == NULL) {
        return;
    }
    ev_io_stop(io->ins->engine->loop, &io->w);
    ls_free(io);
}

/* ---- worker pool ---- */

static void *worker_main(void *arg)
{
    struct ls_engine *eng = arg;

    pthread_setname_np(pthread_self(), "logship-worker");   /* top -H, perf */
    for (;;) {
        struct ls_work *w;

        pthread_mutex_lock(&eng->work_mu);
        while (eng->work_head == NULL && !eng->work_quit) {
            pthread_cond_wait(&eng->work_cv, &eng->work_mu);
        }
        if (eng->work_head == NULL && eng->work_quit) {
            pthread_mutex_unlock(&eng->work_mu);
            return NULL;
        }
        w = eng->work_head;
        eng->work_head = w->next;
        if (eng->work_head == NULL) {
            eng->work_tail = NULL;
        }
        pthread_mutex_unlock(&eng->work_mu);

        w->work(w->arg);

        pthread_mutex_lock(&eng->work_mu);
        w->next = NULL;
        if (eng->done_tail) {
            eng->done_tail->next = w;
        } else {
            eng->done_head = w;
        }
        eng->done_tail = w;
        pthread_mutex_unlock(&eng->work_mu);
        ev_async_send(eng->loop, &eng->work_async);
    }
}

static void work_async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    struct ls_engine *eng = ls_container_of(w, struct ls_engine, work_async);
    struct ls_work *list, *next;
    LS_UNUSED(loop);
    LS_UNUSED(revents);

    pthread_mutex_lock(&eng->work_mu);
    list = eng->done_head;
    eng->done_head = eng->done_tail = NULL;
    pthread_mutex_unlock(&eng->work_mu);
    for (; list; list = next) {
        next = list->next;
        eng->work_inflight--;
        if (list->done) {
            list->done(list->arg);
        }
        ls_free(list);
    }
}

void ls_work_init(struct ls_engine *eng, int nthreads)
{
    int i;

    pthread_mutex_init(&eng->work_mu, NULL);
    pthread_cond_init(&eng->work_cv, NULL);
    ev_async_init(&eng->work_async, work_async_cb);
    ev_async_start(eng->loop, &eng->work_async);
    eng->nthreads = nthreads;
    eng->threads = ls_calloc((size_t)nthreads, sizeof(pthread_t));
    for (i = 0; i < nthreads; i++) {
        pthread_create(&eng->threads[i], NULL, worker_main, eng);
    }
}

void ls_work_shutdown(struct ls_engine *eng)
{
    int i;

    if (eng->threads == NULL) {
        return;
    }
    pthread_mutex_lock(&eng->work_mu);
    eng->work_quit = true;
    pthread_cond_broadcast(&eng->work_cv);
    pthread_mutex_unlock(&eng->work_mu);
    for (i = 0; i < eng->nthreads; i++) {
        pthread_join(eng->threads[i], NULL);
    }
    ls_free(eng->threads);
    eng->threads = NULL;
    /* run the done callbacks of work that finished during shutdown */
    work_async_cb(eng->loop, &eng->work_async, 0);
    ev_async_stop(eng->loop, &eng->work_async);
    pthread_mutex_destroy(&eng->work_mu);
    pthread_cond_destroy(&eng->work_cv);
}

int ls_work_submit(struct ls_engine *eng, void (*work)(void *arg), void (*done)(void *arg),
                   void *arg)
{
    struct ls_work *w = ls_calloc(1, sizeof(*w));

    w->work = work;
    w->done = done;
    w->arg = arg;
    eng->work_inflight++;
    pthread_mutex_lock(&eng->work_mu);
    if (eng->work_tail) {
        eng->work_tail->next = w;
    } else {
        eng->work_head = w;
    }
    eng->work_tail = w;
    pthread_cond_signal(&eng->work_cv);
    pthread_mutex_unlock(&eng->work_mu);
    return LS_OK;
}
