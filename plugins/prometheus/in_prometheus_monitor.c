/*
 * in_prometheus_monitor.c - fluent-plugin-prometheus's three monitor inputs, which copy the
 * engine's per-plugin counters into the registry every `interval` (first after one interval,
 * as the plugin's timer does), under the plugin's own metric names and labels so that
 * dashboards and alerts written for fluentd work unchanged:
 *
 *   prometheus_monitor         fluentd_status_* for every plugin
 *                              (labels: <labels>, plugin_id, plugin_category, type)
 *   prometheus_output_monitor  fluentd_output_status_* for every output (<labels>, plugin_id,
 *                              type); gauge_all false makes the cumulative ones counters
 *   prometheus_tail_monitor    fluentd_tail_file_position / _inode per followed file
 *                              (<labels>, plugin_id, type, path)
 *
 * The values are the ones monitor_agent's /api/plugins.json reports for the same plugin (its
 * mon_row): the instance's ls_metrics and its buffer's ls_buffer_stats. Like monitor_agent this
 * reads the engine's instance lists (engine.h, buffer.h), which ordinary plugins never do.
 */
#include "engine.h"
#include "buffer.h"
#include "log.h"
#include "prom.h"

#include <stdio.h>

enum pmon_kind { PMON_ALL, PMON_OUTPUT, PMON_TAIL };

struct pmon_ctx {
    double interval;
    bool gauge_all;
    /* state */
    enum pmon_kind kind;
    struct ls_instance *ins;
    struct prom_labels labels;
    size_t nbase;
    struct ls_buf base;          /* the <labels> values, expanded once */
    size_t *offs;
    struct prom_family **fams;   /* one per row of the kind's table */
    size_t nfams;
    struct ls_timer *timer;
    struct prom_registry *reg;
    /* one series' label values */
    const char **vals;
    size_t *lens;
};

static const struct ls_param pmon_params[] = {
    { "interval", LS_P_TIME, "5", 0, offsetof(struct pmon_ctx, interval),
      "seconds between updates", NULL, NULL, 0.01, 1e9 },
    { "labels: NAME", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "extra labels: a string, `${hostname}` or `${worker_id}`", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static const struct ls_param pmon_output_params[] = {
    { "interval", LS_P_TIME, "5", 0, offsetof(struct pmon_ctx, interval),
      "seconds between updates", NULL, NULL, 0.01, 1e9 },
    { "gauge_all", LS_P_BOOL, "true", 0, offsetof(struct pmon_ctx, gauge_all),
      "false: retry_count, num_errors, emit_count, emit_records, write_count, flush_time_count "
      "and slow_flush_count are counters", NULL, NULL, 0, 0 },
    { "labels: NAME", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "extra labels: a string, `${hostname}` or `${worker_id}`", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

struct pmon_family {
    const char *name;
    const char *help;
    bool cumulative;             /* a counter when gauge_all is false */
};

/* the plugin's families, in its order */
enum { PS_NEWEST, PS_OLDEST, PS_QUEUE, PS_TOTAL, PS_RETRY };
static const struct pmon_family pmon_status[] = {
    [PS_NEWEST] = { "fluentd_status_buffer_newest_timekey", "Newest timekey in buffer.", false },
    [PS_OLDEST] = { "fluentd_status_buffer_oldest_timekey", "Oldest timekey in buffer.", false },
    [PS_QUEUE] = { "fluentd_status_buffer_queue_length", "Current buffer queue length.", false },
    [PS_TOTAL] = { "fluentd_status_buffer_total_bytes", "Current total size of queued buffers.",
                   false },
    [PS_RETRY] = { "fluentd_status_retry_count", "Current retry counts.", false },
};

enum {
    PO_TOTAL, PO_STAGE_LEN, PO_STAGE_BYTES, PO_QUEUE_LEN, PO_QUEUE_BYTES, PO_AVAIL, PO_NEWEST,
    PO_OLDEST, PO_RETRY, PO_ERRORS, PO_EMIT_COUNT, PO_EMIT_RECORDS, PO_WRITE, PO_ROLLBACK,
    PO_FLUSH_TIME, PO_SLOW, PO_RETRY_WAIT,
};
static const struct pmon_family pmon_output[] = {
    [PO_TOTAL] = { "fluentd_output_status_buffer_total_bytes",
                   "Current total size of stage and queue buffers.", false },
    [PO_STAGE_LEN] = { "fluentd_output_status_buffer_stage_length",
                       "Current length of stage buffers.", false },
    [PO_STAGE_BYTES] = { "fluentd_output_status_buffer_stage_byte_size",
                         "Current total size of stage buffers.", false },
    [PO_QUEUE_LEN] = { "fluentd_output_status_buffer_queue_length",
                       "Current length of queue buffers.", false },
    [PO_QUEUE_BYTES] = { "fluentd_output_status_buffer_queue_byte_size",
                         "Current total size of queue buffers.", false },
    [PO_AVAIL] = { "fluentd_output_status_buffer_available_space_ratio",
                   "Ratio of available space in buffer.", false },
    [PO_NEWEST] = { "fluentd_output_status_buffer_newest_timekey", "Newest timekey in buffer.",
                    false },
    [PO_OLDEST] = { "fluentd_output_status_buffer_oldest_timekey", "Oldest timekey in buffer.",
                    false },
    [PO_RETRY] = { "fluentd_output_status_retry_count", "Current retry counts.", true },
    [PO_ERRORS] = { "fluentd_output_status_num_errors", "Current number of errors.", true },
    [PO_EMIT_COUNT] = { "fluentd_output_status_emit_count", "Current emit counts.", true },
    [PO_EMIT_RECORDS] = { "fluentd_output_status_emit_records", "Current emit records.", true },
    [PO_WRITE] = { "fluentd_output_status_write_count", "Current write counts.", true },
    [PO_ROLLBACK] = { "fluentd_output_status_rollback_count", "Current rollback counts.", false },
    [PO_FLUSH_TIME] = { "fluentd_output_status_flush_time_count", "Total flush time.", true },
    [PO_SLOW] = { "fluentd_output_status_slow_flush_count", "Current slow flush counts.", true },
    [PO_RETRY_WAIT] = { "fluentd_output_status_retry_wait", "Current retry wait", false },
};

enum { PT_POSITION, PT_INODE };
static const struct pmon_family pmon_tail[] = {
    [PT_POSITION] = { "fluentd_tail_file_position", "Current position of file.", false },
    [PT_INODE] = { "fluentd_tail_file_inode", "Current inode of file.", false },
};

static const char *const pmon_extra_all[] = { "plugin_id", "plugin_category", "type" };
static const char *const pmon_extra_output[] = { "plugin_id", "type" };
static const char *const pmon_extra_tail[] = { "plugin_id", "type", "path" };

static const char *const pmon_names[] = { "prometheus_monitor", "prometheus_output_monitor",
                                          "prometheus_tail_monitor" };

/* the series of family i for the base labels plus extra values */
static struct prom_series *pmon_series(struct pmon_ctx *ctx, size_t fam,
                                       const char *const *extra, size_t nextra)
{
    size_t i;

    for (i = 0; i < ctx->nbase; i++) {
        ctx->vals[i] = ctx->base.p + ctx->offs[i];
        ctx->lens[i] = ctx->offs[i + 1] - ctx->offs[i];
    }
    for (i = 0; i < nextra; i++) {
        ctx->vals[ctx->nbase + i] = extra[i];
        ctx->lens[ctx->nbase + i] = strlen(extra[i]);
    }
    return prom_series(ctx->fams[fam], ctx->vals, ctx->lens);
}

/* fluentd's gauge set, or (gauge_all false) a counter's increment by the difference */
static void pmon_put(struct pmon_ctx *ctx, size_t fam, const char *const *extra, size_t nextra,
                     double v)
{
    struct prom_series *s = pmon_series(ctx, fam, extra, nextra);

    if (ctx->kind == PMON_OUTPUT && !ctx->gauge_all && pmon_output[fam].cumulative) {
        prom_inc(s, v - prom_get(s));
    } else {
        prom_set(s, v);
    }
}

static struct ls_buffer *pmon_buffer(const struct ls_instance *ins)
{
    const struct ls_output_core *core = ins->core;

    return core ? core->buffer : NULL;
}

static void pmon_timekeys(const struct ls_buffer_stats *st, double *newest, double *oldest)
{
    size_t i;

    *newest = *oldest = (double)st->timekeys[0];
    for (i = 1; i < st->ntimekeys; i++) {
        if ((double)st->timekeys[i] > *newest) {
            *newest = (double)st->timekeys[i];
        }
        if ((double)st->timekeys[i] < *oldest) {
            *oldest = (double)st->timekeys[i];
        }
    }
}

static void pmon_status_one(struct pmon_ctx *ctx, struct ls_instance *ins, const char *cat)
{
    const char *extra[] = { ins->id, cat, ins->plugin->name };
    struct ls_buffer *b = strcmp(cat, "output") == 0 ? pmon_buffer(ins) : NULL;
    struct ls_buffer_stats st;

    if (b) {
        ls_buffer_get_stats(b, &st);
        pmon_put(ctx, PS_QUEUE, extra, 3, (double)st.queue_length);
        pmon_put(ctx, PS_TOTAL, extra, 3, (double)st.total_bytes);
    }
    if (strcmp(cat, "output") == 0) {
        pmon_put(ctx, PS_RETRY, extra, 3, (double)ins->metrics.retries);
    }
    if (b && st.ntimekeys > 0) {
        double newest, oldest;
        pmon_timekeys(&st, &newest, &oldest);
        pmon_put(ctx, PS_NEWEST, extra, 3, newest);
        pmon_put(ctx, PS_OLDEST, extra, 3, oldest);
    }
}

static void pmon_output_one(struct pmon_ctx *ctx, struct ls_instance *ins)
{
    const char *extra[] = { ins->id, ins->plugin->name };
    const struct ls_metrics *m = &ins->metrics;
    struct ls_buffer *b = pmon_buffer(ins);
    struct ls_buffer_stats st;

    if (b) {
        ls_buffer_get_stats(b, &st);
        pmon_put(ctx, PO_TOTAL, extra, 2, (double)st.total_bytes);
        pmon_put(ctx, PO_STAGE_LEN, extra, 2, (double)st.stage_length);
        pmon_put(ctx, PO_STAGE_BYTES, extra, 2, (double)st.stage_bytes);
        pmon_put(ctx, PO_QUEUE_LEN, extra, 2, (double)st.queue_length);
        pmon_put(ctx, PO_QUEUE_BYTES, extra, 2, (double)st.queue_bytes);
        if (st.total_limit > 0) {
            /* percent free, two decimals, as monitor_agent's buffer_available_buffer_space_ratios */
            double used = (double)st.total_bytes / (double)st.total_limit;
            double avail = used >= 1.0 ? 0.0 : 100.0 * (1.0 - used);
            pmon_put(ctx, PO_AVAIL, extra, 2, (double)(int64_t)(avail * 100.0 + 0.5) / 100.0);
        }
        if (st.ntimekeys > 0) {
            double newest, oldest;
            pmon_timekeys(&st, &newest, &oldest);
            pmon_put(ctx, PO_NEWEST, extra, 2, newest);
            pmon_put(ctx, PO_OLDEST, extra, 2, oldest);
        }
    }
    pmon_put(ctx, PO_RETRY, extra, 2, (double)m->retries);
    pmon_put(ctx, PO_ERRORS, extra, 2, (double)m->retries);
    /* every record is one emit call here (fluentd counts event streams) */
    pmon_put(ctx, PO_EMIT_COUNT, extra, 2, (double)m->emit_records);
    pmon_put(ctx, PO_EMIT_RECORDS, extra, 2, (double)m->emit_records);
    pmon_put(ctx, PO_WRITE, extra, 2, b ? (double)(m->chunks_flushed + m->retries) : 0);
    pmon_put(ctx, PO_ROLLBACK, extra, 2, b ? (double)m->retries : 0);
    pmon_put(ctx, PO_FLUSH_TIME, extra, 2, (double)m->flush_time_ms);
    pmon_put(ctx, PO_SLOW, extra, 2, (double)m->slow_flushes);
    if (b && st.retry_steps > 0) {
        double wait = st.retry_next > 0 && st.retry_start > 0 ? st.retry_next - st.retry_start : 0;
        pmon_put(ctx, PO_RETRY_WAIT, extra, 2, wait);
    }
}

struct pmon_tail_arg {
    struct pmon_ctx *ctx;
    struct ls_instance *ins;
};

static void pmon_tail_file(void *arg, const char *path, uint64_t pos, uint64_t ino)
{
    struct pmon_tail_arg *a = arg;
    const char *extra[] = { a->ins->id, a->ins->plugin->name, path };

    pmon_put(a->ctx, PT_POSITION, extra, 3, (double)pos);
    pmon_put(a->ctx, PT_INODE, extra, 3, (double)ino);
}

static void pmon_update(struct pmon_ctx *ctx)
{
    struct ls_engine *eng = ctx->ins->engine;
    size_t i;

    switch (ctx->kind) {
    case PMON_ALL:
        /* monitor_agent's order: inputs, outputs, filters */
        for (i = 0; i < eng->ninputs; i++) {
            pmon_status_one(ctx, eng->inputs[i], "input");
        }
        for (i = 0; i < eng->noutputs; i++) {
            pmon_status_one(ctx, eng->outputs[i], "output");
        }
        for (i = 0; i < eng->nfilters; i++) {
            pmon_status_one(ctx, eng->filters[i], "filter");
        }
        break;
    case PMON_OUTPUT:
        for (i = 0; i < eng->noutputs; i++) {
            pmon_output_one(ctx, eng->outputs[i]);
        }
        break;
    case PMON_TAIL:
        for (i = 0; i < eng->ninputs; i++) {
            struct pmon_tail_arg a = { ctx, eng->inputs[i] };
            if (eng->inputs[i]->plugin->each_file) {
                eng->inputs[i]->plugin->each_file(eng->inputs[i], pmon_tail_file, &a);
            }
        }
        break;
    }
}

static void pmon_timer_cb(struct ls_timer *t, void *arg)
{
    LS_UNUSED(t);
    pmon_update(arg);
}

static int pmon_init_kind(struct ls_instance *ins, struct ls_conf_section *sec,
                          enum pmon_kind kind, char *err, size_t errlen)
{
    struct pmon_ctx *ctx = ins->ctx;
    const struct pmon_family *fams = kind == PMON_ALL ? pmon_status
                                     : kind == PMON_OUTPUT ? pmon_output : pmon_tail;
    size_t nfams = kind == PMON_ALL ? LS_ARRAY_LEN(pmon_status)
                   : kind == PMON_OUTPUT ? LS_ARRAY_LEN(pmon_output) : LS_ARRAY_LEN(pmon_tail);
    const char *const *extra = kind == PMON_ALL ? pmon_extra_all
                               : kind == PMON_OUTPUT ? pmon_extra_output : pmon_extra_tail;
    size_t nextra = kind == PMON_OUTPUT ? 2 : 3;
    char **names, msg[300];
    size_t i;

    ctx->ins = ins;
    ctx->kind = kind;
    ls_buf_init(&ctx->base, 0);
    ctx->reg = prom_registry_ref(ins->engine);
    if (prom_labels_parse(&ctx->labels, NULL, sec, false, pmon_names[kind], err, errlen) !=
        LS_OK) {
        return LS_ERROR;
    }
    ctx->nbase = ctx->labels.n;
    ctx->offs = ls_calloc(ctx->nbase + 1, sizeof(size_t));
    for (i = 0; i < ctx->nbase; i++) {
        ctx->offs[i] = ctx->base.len;
        prom_label_expand(ins, &ctx->labels.v[i], NULL, &ctx->base);
    }
    ctx->offs[ctx->nbase] = ctx->base.len;
    ls_buf_putc(&ctx->base, '\0');
    ctx->vals = ls_calloc(ctx->nbase + nextra, sizeof(char *));
    ctx->lens = ls_calloc(ctx->nbase + nextra, sizeof(size_t));
    ctx->fams = ls_calloc(nfams, sizeof(*ctx->fams));
    ctx->nfams = nfams;
    names = prom_labels_names(&ctx->labels, extra, nextra);
    for (i = 0; i < nfams; i++) {
        enum prom_type type = kind == PMON_OUTPUT && !ctx->gauge_all && fams[i].cumulative
                                  ? PROM_COUNTER : PROM_GAUGE;
        ctx->fams[i] = prom_family(ctx->reg, fams[i].name, type, fams[i].help, names,
                                   ctx->nbase + nextra, NULL, NULL, 0, msg, sizeof(msg));
        if (ctx->fams[i] == NULL) {
            snprintf(err, errlen, "%s:%d: %s", sec->file, sec->line, msg);
            ls_free(names);
            return LS_ERROR;
        }
    }
    ls_free(names);
    return LS_OK;
}

static int pmon_init_all(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                         size_t errlen)
{
    return pmon_init_kind(ins, sec, PMON_ALL, err, errlen);
}

static int pmon_init_output(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                            size_t errlen)
{
    return pmon_init_kind(ins, sec, PMON_OUTPUT, err, errlen);
}

static int pmon_init_tail(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                          size_t errlen)
{
    return pmon_init_kind(ins, sec, PMON_TAIL, err, errlen);
}

static int pmon_start(struct ls_instance *ins)
{
    struct pmon_ctx *ctx = ins->ctx;

    if (ls_oneshot(ins->engine)) {
        ls_input_done(ins);
    }
    ctx->timer = ls_timer_new(ins, pmon_timer_cb, ctx);
    ls_timer_start(ctx->timer, ctx->interval, ctx->interval);
    return LS_OK;
}

static void pmon_stop(struct ls_instance *ins)
{
    struct pmon_ctx *ctx = ins->ctx;

    ls_timer_free(ctx->timer);
    ctx->timer = NULL;
}

static void pmon_destroy(struct ls_instance *ins)
{
    struct pmon_ctx *ctx = ins->ctx;

    pmon_stop(ins);
    prom_labels_release(&ctx->labels);
    ls_buf_release(&ctx->base);
    ls_free(ctx->offs);
    ls_free(ctx->vals);
    ls_free(ctx->lens);
    ls_free(ctx->fams);
    prom_registry_unref(ctx->reg);
}

const struct ls_plugin ls_plugin_in_prometheus_monitor = {
    .name = "prometheus_monitor",
    .kind = LS_PLUGIN_INPUT,
    .description = "fluentd_status_* metrics of every plugin (fluent-plugin-prometheus)",
    .params = pmon_params,
    .ctx_size = sizeof(struct pmon_ctx),
    .init = pmon_init_all,
    .destroy = pmon_destroy,
    .start = pmon_start,
    .stop = pmon_stop,
};

const struct ls_plugin ls_plugin_in_prometheus_output_monitor = {
    .name = "prometheus_output_monitor",
    .kind = LS_PLUGIN_INPUT,
    .description = "fluentd_output_status_* metrics of every output (fluent-plugin-prometheus)",
    .params = pmon_output_params,
    .ctx_size = sizeof(struct pmon_ctx),
    .init = pmon_init_output,
    .destroy = pmon_destroy,
    .start = pmon_start,
    .stop = pmon_stop,
};

const struct ls_plugin ls_plugin_in_prometheus_tail_monitor = {
    .name = "prometheus_tail_monitor",
    .kind = LS_PLUGIN_INPUT,
    .description = "fluentd_tail_file_position and _inode of every followed file "
                   "(fluent-plugin-prometheus)",
    .params = pmon_params,
    .ctx_size = sizeof(struct pmon_ctx),
    .init = pmon_init_tail,
    .destroy = pmon_destroy,
    .start = pmon_start,
    .stop = pmon_stop,
};
