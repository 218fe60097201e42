/*
 * fluentlog.c - logship's own log lines as events, as fluentd's fluent_log_event_router.
 *
 * fluentd turns each line it logs into an event tagged fluent.<level> with the record
 * {"message": <the line without its time and level>}, and routes it into <label @FLUENT_LOG>
 * when the configuration has one, else into the top level when a top-level <match> matches
 * those tags, else nowhere. td-agent files rely on it (`<match fluent.**>` to a file, to S3,
 * to null; `<label @FLUENT_LOG>`). One difference, on purpose: fluentd's top level counts a
 * catch-all such as <match **> (with a deprecation warning), so a plain td-agent file ships
 * fluentd's log lines mixed with its data; logship takes the top level only for a <match>
 * written for these tags (it matches fluent.info but not an unrelated tag).
 *
 * Lines are queued by the log hook from any thread and routed on the loop (an ev_async), as
 * fluentd's separate emitting thread; lines logged while the queue is routed are not captured
 * again, nor are the outputs' delivery progress lines (a delivery would log a line that makes
 * a record that makes a delivery, forever). The queue is bounded: what does not fit is counted
 * and said once the queue is routed.
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "log.h"
#include "record.h"
#include "router.h"

#define FLOG_QUEUE_MAX 4096

struct flog_ev {
    int level;
    struct ls_time time;
    char *msg;
    size_t len;
};

static pthread_mutex_t flog_mu = PTHREAD_MUTEX_INITIALIZER;
static struct flog_ev flog_q[FLOG_QUEUE_MAX];
static size_t flog_n;
static uint64_t flog_dropped;
static struct ls_engine *flog_eng;      /* capturing for this engine; NULL: not capturing */
static ev_async flog_async;
static pthread_t flog_loop_thread;
static bool flog_routing;               /* the loop thread is routing the queue */



static void flog_hook(int level, const char *line)
{
    const char *body;
    size_t len;
    struct timespec ts;
    struct ls_engine *eng;

    if (ls_log_events_off || (flog_routing && pthread_equal(pthread_self(), flog_loop_thread))) {
        return;
    }
    /* "2026-12-03 18:41:37 +0000 [info]: text\n" -> "text" */
    body = strstr(line, "]: ");
    body = body ? body + 3 : line;
    len = strlen(body);
    while (len > 0 && (body[len - 1] == '\n' || body[len - 1] == '\r')) {
        len--;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    pthread_mutex_lock(&flog_mu);
    eng = flog_eng;
    if (eng == NULL) {
        pthread_mutex_unlock(&flog_mu);
        return;
    }
    if (flog_n == FLOG_QUEUE_MAX) {
        flog_dropped++;
    } else {
        struct flog_ev *e = &flog_q[flog_n++];
        e->level = level;
        e->time.sec = ts.tv_sec;
        e->time.nsec = (int32_t)ts.tv_nsec;
        e->msg = ls_strndup(body, len);
        e->len = len;
    }
    pthread_mutex_unlock(&flog_mu);
    ev_async_send(eng->loop, &flog_async);
}

static void flog_route(struct ls_engine *eng)
{
    static struct flog_ev batch[FLOG_QUEUE_MAX];
    size_t n, i;
    uint64_t dropped;
    struct ls_arena arena;
    struct ls_record rec;
    char tag[32];
    static const char msgkey[] = "message";

    pthread_mutex_lock(&flog_mu);
    n = flog_n;
    memcpy(batch, flog_q, n * sizeof(*batch));
    flog_n = 0;
    dropped = flog_dropped;
    flog_dropped = 0;
    pthread_mutex_unlock(&flog_mu);
    if (n == 0 && dropped == 0) {
        return;
    }
    flog_routing = true;
    ls_arena_init(&arena, 4096);
    ls_record_init(&rec, &arena);
    for (i = 0; i < n; i++) {
        struct ls_value v = ls_vstr(batch[i].msg, batch[i].len);
        int tl = snprintf(tag, sizeof(tag), "fluent.%s", ls_log_level_name(batch[i].level));
        ls_record_clear(&rec);
        rec.tag = tag;
        rec.tag_len = (size_t)tl;
        rec.time = batch[i].time;
        ls_record_add(&rec, msgkey, sizeof(msgkey) - 1, &v);
        /* a full buffer that blocks cannot hold up logging: the event is dropped, counted */
        if (ls_engine_route(eng, eng->log_label, &rec) == LS_AGAIN) {
            dropped++;
        }
        ls_free(batch[i].msg);
        ls_arena_reset(&arena);
    }
    ls_record_release(&rec);
    ls_arena_release(&arena);
    ls_engine_commit_outputs(eng);
    if (dropped) {
        ls_warn("%llu of logship's own log lines were not routed as fluent.* events "
                "(more than %d queued, or a full buffer)", (unsigned long long)dropped,
                FLOG_QUEUE_MAX);
    }
    flog_routing = false;
}

static void flog_async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)revents;
    flog_route(w->data);
}

/* fluentd's rule for the top level: a <match> that takes fluent.<level> events. */
static bool written_for_fluent_tags(const struct ls_rule *r)
{
    static const char *const levels[] = { "fatal", "error", "warn", "info", "debug", "trace" };
    bool any = false;
    size_t i;

    for (i = 0; i < LS_ARRAY_LEN(levels); i++) {
        char tag[32];
        int n = snprintf(tag, sizeof(tag), "fluent.%s", levels[i]);
        any = any || ls_pattern_match(r->pattern, tag, (size_t)n);
    }
    /* a catch-all (**, *.*) also takes unrelated tags: not written for these */
    return any && !ls_pattern_match(r->pattern, "x", 1) && !ls_pattern_match(r->pattern, "x.y", 3);
}

void ls_fluentlog_start(struct ls_engine *eng)
{
    size_t i;

    eng->log_label = NULL;
    for (i = 0; i < eng->nlabels; i++) {
        if (strcmp(eng->labels[i]->name, "@FLUENT_LOG") == 0) {
            eng->log_label = eng->labels[i];
        }
    }
    if (eng->log_label == NULL) {
        for (i = 0; i < eng->root->nrules; i++) {
            const struct ls_rule *r = &eng->root->rules[i];
            if (r->is_match && written_for_fluent_tags(r)) {
                eng->log_label = eng->root;
                ls_warn("<match %s> takes logship's own log events at the top level, as fluentd's "
                        "deprecated form; <label @FLUENT_LOG> is the current one", r->arg);
                break;
            }
        }
        for (i = 0; eng->log_label == NULL && i < eng->root->nrules; i++) {
            const struct ls_rule *r = &eng->root->rules[i];
            char probe[] = "fluent.info";
            if (r->is_match && ls_pattern_match(r->pattern, probe, sizeof(probe) - 1)) {
                ls_debug("<match %s> also matches fluent.* but is a catch-all: logship's own log "
                         "events are not routed to it (fluentd would)", r->arg);
                break;
            }
        }
    }
    if (eng->log_label == NULL) {
        return;
    }
    ev_async_init(&flog_async, flog_async_cb);
    flog_async.data = eng;
    ev_async_start(eng->loop, &flog_async);
    flog_loop_thread = pthread_self();
    pthread_mutex_lock(&flog_mu);
    flog_eng = eng;
    pthread_mutex_unlock(&flog_mu);
    ls_log_set_hook(flog_hook);
}

void ls_fluentlog_stop(struct ls_engine *eng)
{
    bool was;

    pthread_mutex_lock(&flog_mu);
    was = flog_eng == eng && eng != NULL;
    flog_eng = NULL;
    pthread_mutex_unlock(&flog_mu);
    if (!was) {
        return;
    }
    /* fluentd's log_event_verbose false: what was logged before the stop is still routed,
     * then nothing more */
    flog_route(eng);
    ev_async_stop(eng->loop, &flog_async);
}
