/*
 * notify.c - path watchers (ls_fstat) on one inotify instance per engine.
 *
 * libev's ev_stat was used before: on every change it stats the path, removes and adds its
 * inotify watch again and calls statfs, so with many files written a little each (500 logs of
 * a few lines a second) the kernel work per line was ten times that of one busy file. Here each
 * path keeps one watch for as long as it names the same file; one read() of the inotify fd
 * drains every event of a wake-up, and a path with several events gets one callback.
 *
 * A watch follows the inode, not the path: after IN_MOVE_SELF, IN_DELETE_SELF or IN_IGNORED
 * the watcher is armed again on whatever the path names now. A path that cannot be watched
 * (missing, inotify unavailable, fs.inotify.max_user_watches reached) is polled with stat
 * every interval seconds, as ev_stat polled, and the callback runs when its attributes change
 * or it can be watched again. LOGSHIP_INOTIFY_MAX_WATCHES (tests) caps the watches this process
 * adds, so the fallback can be exercised without changing the system limit.
 */
#include "engine.h"
#include "log.h"

#include <limits.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#define NOTIFY_MASK (IN_MODIFY | IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF)
#define NOTIFY_REARM (IN_MOVE_SELF | IN_DELETE_SELF | IN_IGNORED | IN_UNMOUNT)
/*
 * Files written a line at a time would wake the loop once per write, and each file's read costs
 * a few system calls (the read, the first-line check, the pos_file) whether it brings one line
 * or a thousand. So after the first event the loop waits a little and takes every event at
 * once: 5 ms while few files are written, growing by 2 ms per file the last wake-up read, to at
 * most 1 s (500 files written at once are read about once a second each, as fluentd's watch
 * timer reads them, and cost about what one busy file costs per line).
 */
#define NOTIFY_COLLECT_MIN 0.005
#define NOTIFY_COLLECT_PER_FILE 0.002
#define NOTIFY_COLLECT_MAX 1.0

struct ls_notify {
    struct ls_engine *eng;
    int fd;                       /* -1: inotify unavailable, every watcher polls */
    ev_io io;
    ev_timer collect;             /* readable: wait NOTIFY_COLLECT, then drain at once */
    struct ls_fstat **tab;        /* wd -> watchers, chained by wd_next */
    size_t ntab;                  /* power of two */
    size_t nwatchers;             /* every ls_fstat of this engine */
    long watches, max_watches;    /* watches added by this process; < 0: no cap */
    struct ls_fstat *pend_head, *pend_tail;
    size_t npend;                 /* watchers the current wake-up notified */
    size_t last_batch;            /* ... and the last one */
    bool warned_limit;
    bool draining, dead;          /* in notify_collect_cb; its last watcher went meanwhile */
};

struct ls_fstat {
    struct ls_notify *n;
    struct ls_instance *ins;
    ls_fstat_cb cb;
    void *arg;
    char *path;
    double interval;
    int wd;                       /* -1: polled */
    struct ls_fstat *wd_next;
    struct ls_fstat *pend_prev, *pend_next;
    bool pending, rearm;
    bool only_written;            /* every event since the last callback was IN_MODIFY */
    ev_timer poll;
    struct stat last;             /* what the poll saw last (st_nlink 0: missing) */
};

static size_t wd_slot(const struct ls_notify *n, int wd)
{
    return ((size_t)(unsigned)wd * 2654435761u) & (n->ntab - 1);
}

static bool wd_in_use(const struct ls_notify *n, int wd)
{
    for (const struct ls_fstat *o = n->tab[wd_slot(n, wd)]; o; o = o->wd_next) {
        if (o->wd == wd) {
            return true;
        }
    }
    return false;
}

/* Take st off its watch; the watch goes when no other watcher shares it (same inode). */
static void fstat_unwatch(struct ls_fstat *st, bool kernel_dropped)
{
    struct ls_notify *n = st->n;
    struct ls_fstat **pp;
    int wd = st->wd;

    if (wd < 0) {
        return;
    }
    for (pp = &n->tab[wd_slot(n, wd)]; *pp; pp = &(*pp)->wd_next) {
        if (*pp == st) {
            *pp = st->wd_next;
            break;
        }
    }
    st->wd = -1;
    st->wd_next = NULL;
    if (!wd_in_use(n, wd)) {
        if (!kernel_dropped) {
            (void)inotify_rm_watch(n->fd, wd);
        }
        n->watches--;
    }
}

static void notify_grow(struct ls_notify *n)
{
    size_t ntab = n->ntab * 2;
    struct ls_fstat **tab = ls_calloc(ntab, sizeof(*tab));
    struct ls_fstat **old = n->tab;
    size_t nold = n->ntab;

    n->tab = tab;
    n->ntab = ntab;
    for (size_t i = 0; i < nold; i++) {
        struct ls_fstat *st = old[i], *next;
        for (; st; st = next) {
            size_t s = wd_slot(n, st->wd);
            next = st->wd_next;
            st->wd_next = tab[s];
            tab[s] = st;
        }
    }
    ls_free(old);
}

static void fstat_poll_start(struct ls_fstat *st)
{
    struct ev_loop *loop = st->n->eng->loop;

    if (!ev_is_active(&st->poll)) {
        ev_timer_set(&st->poll, st->interval, st->interval);
        ev_timer_start(loop, &st->poll);
    }
}

/* Watch what the path names now; false: it is polled instead. */
static bool fstat_arm(struct ls_fstat *st)
{
    struct ls_notify *n = st->n;
    int wd;

    fstat_unwatch(st, false);
    if (n->fd < 0) {
        fstat_poll_start(st);
        return false;
    }
    if (n->max_watches >= 0 && n->watches >= n->max_watches) {
        errno = ENOSPC;
        wd = -1;
    } else {
        wd = inotify_add_watch(n->fd, st->path, NOTIFY_MASK);
    }
    if (wd < 0) {
        if ((errno == ENOSPC || errno == ENOMEM) && !n->warned_limit) {
            n->warned_limit = true;
            ls_plg_warn(st->ins, "inotify watch limit reached at %ld watches (raise "
                        "fs.inotify.max_user_watches): '%s' and further files are polled every "
                        "%gs", n->watches, st->path, st->interval);
        }
        fstat_poll_start(st);
        return false;
    }
    st->wd = wd;
    if (!wd_in_use(n, wd)) {
        n->watches++;
    }
    if (n->watches > (long)n->ntab) {
        notify_grow(n);
    }
    st->wd_next = n->tab[wd_slot(n, wd)];
    n->tab[wd_slot(n, wd)] = st;
    ev_timer_stop(n->eng->loop, &st->poll);
    return true;
}

static void pend_remove(struct ls_fstat *st)
{
    struct ls_notify *n = st->n;

    if (!st->pending) {
        return;
    }
    if (st->pend_prev) {
        st->pend_prev->pend_next = st->pend_next;
    } else {
        n->pend_head = st->pend_next;
    }
    if (st->pend_next) {
        st->pend_next->pend_prev = st->pend_prev;
    } else {
        n->pend_tail = st->pend_prev;
    }
    st->pend_prev = st->pend_next = NULL;
    st->pending = false;
}

static void pend_add(struct ls_fstat *st, bool rearm, bool written)
{
    struct ls_notify *n = st->n;

    st->rearm |= rearm;
    if (st->pending) {
        st->only_written &= written;
        return;
    }
    st->only_written = written;
    st->pending = true;
    n->npend++;
    st->pend_next = NULL;
    st->pend_prev = n->pend_tail;
    if (n->pend_tail) {
        n->pend_tail->pend_next = st;
    } else {
        n->pend_head = st;
    }
    n->pend_tail = st;
}

/* Callbacks may free or create watchers (a rotation does both): take one at a time. */
static void notify_run_pending(struct ls_notify *n)
{
    struct ls_fstat *st;

    while ((st = n->pend_head) != NULL) {
        bool rearm = st->rearm;
        pend_remove(st);
        st->rearm = false;
        if (rearm) {
            (void)fstat_arm(st);
        }
        st->cb(st, st->arg);
    }
}

static void notify_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct ls_notify *n = ls_container_of(w, struct ls_notify, io);
    LS_UNUSED(revents);

    double wait = NOTIFY_COLLECT_PER_FILE * (double)n->last_batch;

    wait = wait < NOTIFY_COLLECT_MIN ? NOTIFY_COLLECT_MIN : wait > NOTIFY_COLLECT_MAX ?
           NOTIFY_COLLECT_MAX : wait;
    ev_io_stop(loop, &n->io);
    ev_timer_set(&n->collect, wait, 0.0);
    ev_timer_start(loop, &n->collect);
}

static void notify_collect_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct ls_notify *n = ls_container_of(w, struct ls_notify, collect);
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    LS_UNUSED(revents);

    ev_io_start(loop, &n->io);

    for (;;) {
        ssize_t len = read(n->fd, buf, sizeof(buf));
        if (len <= 0) {
            break;     /* EAGAIN: drained */
        }
        for (char *p = buf; p < buf + len;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
            bool rearm = (ev->mask & NOTIFY_REARM) != 0;
            struct ls_fstat *st, *next;

            p += sizeof(*ev) + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                /* events were lost: every watcher looks once */
                for (size_t i = 0; i < n->ntab; i++) {
                    for (st = n->tab[i]; st; st = st->wd_next) {
                        pend_add(st, false, false);
                    }
                }
                continue;
            }
            for (st = n->tab[wd_slot(n, ev->wd)]; st; st = next) {
                next = st->wd_next;
                if (st->wd != ev->wd) {
                    continue;
                }
                if (ev->mask & IN_IGNORED) {
                    fstat_unwatch(st, true);   /* the kernel removed it already */
                }
                pend_add(st, rearm, ev->mask == IN_MODIFY);
            }
        }
        if ((size_t)len < sizeof(buf) - sizeof(struct inotify_event) - NAME_MAX - 1) {
            break;     /* a short read took all there was */
        }
    }
    n->last_batch = n->npend;
    n->npend = 0;
    n->draining = true;
    notify_run_pending(n);
    n->draining = false;
    if (n->dead) {
        ls_free(n);    /* notify_put left it to us: a callback freed the last watcher */
    }
}

static bool stat_changed(const struct stat *a, const struct stat *b)
{
    return a->st_nlink != b->st_nlink || a->st_ino != b->st_ino || a->st_dev != b->st_dev ||
           a->st_size != b->st_size || a->st_mtim.tv_sec != b->st_mtim.tv_sec ||
           a->st_mtim.tv_nsec != b->st_mtim.tv_nsec || a->st_ctim.tv_sec != b->st_ctim.tv_sec ||
           a->st_ctim.tv_nsec != b->st_ctim.tv_nsec || a->st_mode != b->st_mode;
}

static void fstat_poll_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct ls_fstat *st = ls_container_of(w, struct ls_fstat, poll);
    struct stat now;
    bool changed;
    LS_UNUSED(loop);
    LS_UNUSED(revents);

    if (stat(st->path, &now) != 0) {
        memset(&now, 0, sizeof(now));
    }
    changed = stat_changed(&now, &st->last);
    st->last = now;
    /* a path that appeared (or a watch freed elsewhere) may be watched now */
    st->only_written = false;
    if ((now.st_nlink != 0 && st->n->fd >= 0 && fstat_arm(st)) || changed) {
        st->cb(st, st->arg);
    }
}

static struct ls_notify *notify_get(struct ls_engine *eng)
{
    struct ls_notify *n = eng->notify;
    const char *cap;

    if (n) {
        return n;
    }
    n = ls_calloc(1, sizeof(*n));
    n->eng = eng;
    n->ntab = 64;
    n->tab = ls_calloc(n->ntab, sizeof(*n->tab));
    n->max_watches = -1;
    cap = getenv("LOGSHIP_INOTIFY_MAX_WATCHES");
    if (cap && *cap) {
        n->max_watches = strtol(cap, NULL, 10);
    }
    n->fd = n->max_watches == 0 ? -1 : inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (n->fd < 0 && n->max_watches != 0) {
        ls_warn("inotify unavailable (%d: %s): files are polled", errno, strerror(errno));
    }
    if (n->fd >= 0) {
        ev_io_init(&n->io, notify_io_cb, n->fd, EV_READ);
        ev_init(&n->collect, notify_collect_cb);
        ev_io_start(eng->loop, &n->io);
    }
    eng->notify = n;
    return n;
}

static void notify_put(struct ls_notify *n)
{
    if (n->nwatchers > 0) {
        return;
    }
    if (n->fd >= 0) {
        ev_io_stop(n->eng->loop, &n->io);
        ev_timer_stop(n->eng->loop, &n->collect);
        close(n->fd);
    }
    n->eng->notify = NULL;
    ls_free(n->tab);
    n->tab = NULL;
    if (n->draining) {
        n->dead = true;
        return;
    }
    ls_free(n);
}

struct ls_fstat *ls_fstat_new(struct ls_instance *ins, const char *path, double interval,
                              ls_fstat_cb cb, void *arg)
{
    struct ls_fstat *st = ls_calloc(1, sizeof(*st));

    st->n = notify_get(ins->engine);
    st->n->nwatchers++;
    st->ins = ins;
    st->cb = cb;
    st->arg = arg;
    st->path = ls_strdup(path);
    st->interval = interval > 0 ? interval : 1.0;
    st->wd = -1;
    ev_init(&st->poll, fstat_poll_cb);
    if (stat(path, &st->last) != 0) {
        memset(&st->last, 0, sizeof(st->last));
    }
    (void)fstat_arm(st);
    return st;
}

bool ls_fstat_only_written(const struct ls_fstat *st)
{
    return st->only_written;
}

bool ls_fstat_watched(const struct ls_fstat *st)
{
    return st->wd >= 0;
}

void ls_fstat_free(struct ls_fstat *st)
{
    if (st == NULL) {
        return;
    }
    pend_remove(st);
    fstat_unwatch(st, false);
    ev_timer_stop(st->n->eng->loop, &st->poll);
    st->n->nwatchers--;
    notify_put(st->n);
    ls_free(st->path);
    ls_free(st);
}
