/*
 * fault.c - a buffered output for tests: it fails, stalls, then delivers.
 *
 * fail_times N fails the first N writes, fail_for T fails every write in
 * the first T seconds after start, hang T completes each write only T
 * seconds later (asynchronously: the write returns LS_AGAIN and a timer
 * calls ls_output_write_done, so the loop keeps running and inputs keep
 * filling the buffer). A delivered chunk's payload is appended to `path`
 * once (idempotent per chunk, as real stores are), so a test can count what
 * arrived; every attempt is logged with its wall
 * time to `attempts_path`, so a test can measure the retry backoff.
 * unrecoverable makes the injected failures unrecoverable (no retries).
 *
 * Not meant for production configurations.
 */
#include "plugin.h"
#include "log.h"

#include <fcntl.h>
#include <stdio.h>

struct fault_pending {
    struct ls_instance *ins;
    struct ls_chunk *chunk;
    struct ls_timer *timer;
    struct fault_pending *next;
};

struct fault_ctx {
    int64_t fail_times;
    double fail_for;
    double hang;
    char *path;
    char *attempts_path;
    bool unrecoverable;
    /* state */
    double started;
    int64_t attempts;
    struct fault_pending *pending;
};

static const struct ls_param fault_params[] = {
    { "fail_times", LS_P_INT, "0", 0, offsetof(struct fault_ctx, fail_times),
      "fail the first N writes", NULL, NULL, 0, 1e12 },
    { "fail_for", LS_P_TIME, "0", 0, offsetof(struct fault_ctx, fail_for),
      "fail every write during the first T seconds after start", NULL, NULL, 0, 0 },
    { "hang", LS_P_TIME, "0", 0, offsetof(struct fault_ctx, hang),
      "complete each (non-failing) write only T seconds later", NULL, NULL, 0, 0 },
    { "path", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct fault_ctx, path),
      "append delivered payloads to this file (none: discard)", NULL, NULL, 0, 0 },
    { "attempts_path", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct fault_ctx, attempts_path),
      "log each attempt here: '<epoch> <chunk_id> <n> <records> fail|hang|ok'", NULL, NULL, 0,
      0 },
    { "unrecoverable", LS_P_BOOL, "false", 0, offsetof(struct fault_ctx, unrecoverable),
      "injected failures are unrecoverable (no retries)", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static int fault_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                      size_t errlen)
{
    struct fault_ctx *ctx = ins->ctx;
    LS_UNUSED(sec);
    LS_UNUSED(err);
    LS_UNUSED(errlen);

    ctx->started = ls_mono_now();
    return LS_OK;
}

static void fault_log(struct ls_instance *ins, const struct ls_chunk_info *info, const char *what)
{
    struct fault_ctx *ctx = ins->ctx;
    int64_t sec;
    int32_t nsec;
    char line[160];
    int fd, n;

    if (ctx->attempts_path == NULL) {
        return;
    }
    ls_wall_now(&sec, &nsec);
    n = snprintf(line, sizeof(line), "%lld.%06d %s %lld %llu %s\n", (long long)sec,
                 (int)(nsec / 1000), info->id, (long long)ctx->attempts,
                 (unsigned long long)info->records, what);
    fd = open(ctx->attempts_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 || ls_write_all(fd, line, (size_t)n) != LS_OK) {
        ls_plg_warn(ins, "cannot log to '%s' (%d: %s)", ctx->attempts_path, errno,
                    strerror(errno));
    }
    if (fd >= 0) {
        close(fd);
    }
}

/*
 * Deliveries are idempotent per chunk, as the real stores are (an S3 key, out_file's link of a
 * chunk-named part file), by out_file's `append true` scheme: the chunk's state holds the
 * file's size before its payload is appended ("start <offset>"), then "done". A chunk
 * delivered again because a kill -9 came before the buffer deleted it is not appended twice;
 * an append a kill cut short is cut off the file at start (fault_start), before anything else
 * is written, and the chunk is appended whole when it comes again. Without this the
 * crash-loop tests saw this test output's own duplicates and half lines, not logship's.
 */
static void fault_cut_torn(struct ls_chunk *c, void *arg)
{
    struct ls_instance *ins = arg;
    struct fault_ctx *ctx = ins->ctx;
    const char *st = ls_chunk_state(c);
    long long off;

    if (st && sscanf(st, "start %lld", &off) == 1) {
        /* deliveries run one at a time: nothing was appended after a torn one */
        if (truncate(ctx->path, (off_t)off) != 0 && errno != ENOENT) {
            ls_plg_warn(ins, "cannot cut '%s' back to %lld bytes (%d: %s)", ctx->path, off,
                        errno, strerror(errno));
        }
        (void)ls_chunk_set_state(c, NULL);
    }
}

static int fault_start(struct ls_instance *ins)
{
    struct fault_ctx *ctx = ins->ctx;

    if (ctx->path) {
        ls_output_each_chunk(ins, fault_cut_torn, ins);
    }
    return LS_OK;
}

static int fault_deliver(struct ls_instance *ins, struct ls_chunk *chunk)
{
    struct fault_ctx *ctx = ins->ctx;
    const char *st = ls_chunk_state(chunk);
    struct ls_chunk_reader *r;
    char buf[65536], state[64];
    long n;
    off_t off = -1;
    int fd, rc = LS_OK;

    if (ctx->path == NULL || (st && strcmp(st, "done") == 0)) {
        return LS_OK;
    }
    r = ls_chunk_reader_open(chunk);
    fd = open(ctx->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
        off = lseek(fd, 0, SEEK_END);
        snprintf(state, sizeof(state), "start %lld", (long long)off);
    }
    if (r == NULL || fd < 0 || off < 0 || ls_chunk_set_state(chunk, state) != LS_OK) {
        snprintf(ins->metrics.last_error, sizeof(ins->metrics.last_error),
                 "cannot open '%s' or the chunk (%d: %s)", ctx->path, errno, strerror(errno));
        rc = LS_ERROR;
    }
    while (rc == LS_OK && (n = ls_chunk_reader_read(r, buf, sizeof(buf))) != 0) {
        if (n < 0 || ls_write_all(fd, buf, (size_t)n) != LS_OK) {
            snprintf(ins->metrics.last_error, sizeof(ins->metrics.last_error),
                     "copying the chunk to '%s' failed (%d: %s)", ctx->path, errno,
                     strerror(errno));
            rc = LS_ERROR;
            break;
        }
        ins->metrics.write_bytes += (uint64_t)n;
    }
    if (rc == LS_OK) {
        (void)ls_chunk_set_state(chunk, "done");
    } else if (off >= 0 && ftruncate(fd, off) == 0) {
        (void)ls_chunk_set_state(chunk, NULL);   /* the part written is gone again */
    }
    if (fd >= 0) {
        close(fd);
    }
    ls_chunk_reader_close(r);
    return rc;
}

static void fault_hang_done(struct ls_timer *t, void *arg)
{
    struct fault_pending *p = arg, **pp;
    struct fault_ctx *ctx = p->ins->ctx;
    int rc;
    LS_UNUSED(t);

    for (pp = &ctx->pending; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    rc = fault_deliver(p->ins, p->chunk);
    fault_log(p->ins, ls_chunk_info(p->chunk), rc == LS_OK ? "ok" : "fail");
    ls_timer_free(p->timer);
    ls_output_write_done(p->ins, p->chunk, rc, rc == LS_OK ? NULL : p->ins->metrics.last_error);
    ls_free(p);
}

static int fault_write(struct ls_instance *ins, struct ls_chunk *chunk)
{
    struct fault_ctx *ctx = ins->ctx;
    const struct ls_chunk_info *info = ls_chunk_info(chunk);
    int rc;

    ctx->attempts++;
    if (ctx->attempts <= ctx->fail_times || ls_mono_now() - ctx->started < ctx->fail_for) {
        fault_log(ins, info, "fail");
        snprintf(ins->metrics.last_error, sizeof(ins->metrics.last_error),
                 "fault: injected failure (attempt %lld)", (long long)ctx->attempts);
        return ctx->unrecoverable ? LS_DECLINED : LS_ERROR;
    }
    if (ctx->hang > 0) {
        struct fault_pending *p = ls_calloc(1, sizeof(*p));
        p->ins = ins;
        p->chunk = chunk;
        p->timer = ls_timer_new(ins, fault_hang_done, p);
        p->next = ctx->pending;
        ctx->pending = p;
        fault_log(ins, info, "hang");
        ls_timer_start(p->timer, ctx->hang, 0);
        return LS_AGAIN;
    }
    rc = fault_deliver(ins, chunk);
    fault_log(ins, info, rc == LS_OK ? "ok" : "fail");
    return rc;
}

static void fault_destroy(struct ls_instance *ins)
{
    struct fault_ctx *ctx = ins->ctx;
    struct fault_pending *p, *next;

    /* writes still hanging at exit are simply not finished: the chunks stay buffered */
    for (p = ctx->pending; p; p = next) {
        next = p->next;
        ls_timer_free(p->timer);
        ls_free(p);
    }
    ctx->pending = NULL;
}

const struct ls_plugin ls_plugin_out_fault = {
    .name = "fault",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "test output: fails (fail_times, fail_for), stalls (hang), then appends "
                   "chunks to a file; for tests only",
    .params = fault_params,
    .ctx_size = sizeof(struct fault_ctx),
    .init = fault_init,
    .start = fault_start,
    .destroy = fault_destroy,
    .output_flags = LS_OUT_BUFFERED,
    .default_formatter = "out_file",
    .write = fault_write,
};
