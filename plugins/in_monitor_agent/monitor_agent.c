/*
 * monitor_agent.c - fluentd's in_monitor_agent plus a Prometheus /metrics
 * endpoint: an HTTP server (libmicrohttpd) that reports every plugin
 * instance's counters, and, with `tag`, emits the same rows as records every
 * emit_interval.
 *
 * Endpoints (GET/HEAD):
 *   /api/plugins.json   fluentd's JSON ({"plugins":[{plugin_id, plugin_category,
 *                       type, output_plugin, buffer_queue_length, ...}]})
 *   /api/plugins        the same rows as LTSV (one line per plugin, hashes left out)
 *   /api/config.json    process information (pid, ppid, config_path); /api/config as LTSV
 *   /metrics            Prometheus text exposition format 0.0.4
 * The plugins endpoints accept fluentd's ?@id=ID and ?@type=TYPE filters.
 *
 * This is a core-adjacent plugin: it includes engine.h and buffer.h to walk
 * the engine's instances and read buffer state, which ordinary plugins
 * never do.
 *
 * Threading: the server (mhd_server.h) answers every request on the loop
 * thread, so the counters and buffer lists are read without locks or races,
 * and a request can never observe a chunk list half-updated. Responses are
 * small (one row per plugin) and built in microseconds, so serving them on
 * the loop costs the pipeline nothing measurable.
 *
 * Security: bind defaults to 127.0.0.1 (fluentd defaults to 0.0.0.0);
 * include_config and include_retry default to false as in fluentd >= 1.19.3.
 * With include_config, parameter values are shown except secrets:
 * LS_P_SECRET parameters of the plugin and any key that looks like one
 * (password, secret, token, sec_key, ...) are masked as "xxxxxx", and
 * passwords inside URLs (scheme://user:pass@host) are masked too.
 */
#include "engine.h"
#include "buffer.h"
#include "json.h"
#include "log.h"
#include "mhd_server.h"

#include <ctype.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

#define MON_MASK "xxxxxx"
#define MON_RESPONSE_MAX (32u << 20)

struct mon_ctx {
    char *bind;
    int64_t port;
    char *tag;
    double emit_interval;
    bool include_config;
    bool include_retry;
    double unhealthy_after;
    /* state */
    struct ls_instance *ins;
    struct mhd_server *srv;
    struct ls_timer *emit_timer;
    struct ls_arena arena;
    struct ls_record rec;
    bool paused;
};

static const struct ls_param mon_params[] = {
    { "bind", LS_P_STR, "127.0.0.1", 0, offsetof(struct mon_ctx, bind),
      "address to listen on (fluentd defaults to 0.0.0.0; loopback is safer)", NULL, NULL,
      0, 0 },
    { "port", LS_P_INT, "24220", 0, offsetof(struct mon_ctx, port),
      "TCP port (0: any free port, logged at start)", NULL, NULL, 0, 65535 },
    { "tag", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct mon_ctx, tag),
      "when set, also emit one record per plugin with this tag every emit_interval", NULL,
      NULL, 0, 0 },
    { "emit_interval", LS_P_TIME, "60", 0, offsetof(struct mon_ctx, emit_interval),
      "seconds between metric records (with tag)", NULL, NULL, 0.01, 1e9 },
    { "include_config", LS_P_BOOL, "false", 0, offsetof(struct mon_ctx, include_config),
      "add each plugin's parameters (secrets masked) as 'config'", NULL, NULL, 0, 0 },
    { "include_retry", LS_P_BOOL, "false", 0, offsetof(struct mon_ctx, include_retry),
      "add the buffered outputs' retry state (start, steps, next_time) as 'retry'", NULL,
      NULL, 0, 0 },
    { "unhealthy_after", LS_P_TIME, "60", 0, offsetof(struct mon_ctx, unhealthy_after),
      "/api/health answers 503 once an output has failed to deliver for this long (logship)",
      NULL, NULL, 0, 1e9 },
    LS_PARAM_END
};

/* ------------------------------------------------------------------ */
/* secrets                                                              */

static bool mon_key_is_secret(const struct ls_plugin *p, const char *key)
{
    static const char *const words[] = {
        "password", "passwd", "secret", "sec_key", "token", "credential", "passphrase",
        "private_key", "access_key", "api_key", "apikey", "auth", NULL
    };
    const struct ls_param *row = p && p->params ? ls_param_find(p->params, key) : NULL;
    char low[128];
    size_t i;

    if (row && row->type == LS_P_SECRET) {
        return true;
    }
    for (i = 0; key[i] && i + 1 < sizeof(low); i++) {
        low[i] = (char)tolower((unsigned char)key[i]);
    }
    low[i] = '\0';
    for (i = 0; words[i]; i++) {
        if (strstr(low, words[i])) {
            return true;
        }
    }
    return false;
}

/* Append value with the password of any "scheme://user:pass@host" replaced by the mask. */
static void mon_put_masked_url(struct ls_buf *out, const char *v)
{
    const char *s = strstr(v, "://");
    const char *at, *colon, *end;

    if (s == NULL) {
        ls_json_put_str(out, v, strlen(v));
        return;
    }
    s += 3;
    end = s + strcspn(s, "/?#");
    at = memchr(s, '@', (size_t)(end - s));
    colon = at ? memchr(s, ':', (size_t)(at - s)) : NULL;
    if (colon == NULL) {
        ls_json_put_str(out, v, strlen(v));
        return;
    }
    {
        struct ls_buf tmp;
        ls_buf_init(&tmp, 0);
        ls_buf_append(&tmp, v, (size_t)(colon + 1 - v));
        ls_buf_append(&tmp, MON_MASK, strlen(MON_MASK));
        ls_buf_append(&tmp, at, strlen(at));
        ls_json_put_str(out, tmp.p, tmp.len);
        ls_buf_release(&tmp);
    }
}

/* fluentd's "config" hash: the section's own parameters as strings, secrets masked. */
static void mon_put_config(struct ls_buf *out, const struct ls_instance *ins)
{
    const struct ls_conf_param *p, *q;
    bool first = true;

    ls_buf_putc(out, '{');
    for (p = ins->conf ? ins->conf->params : NULL; p; p = p->next) {
        bool later = false;
        for (q = p->next; q; q = q->next) {
            if (strcmp(q->key, p->key) == 0) {
                later = true;   /* the later one wins, as in the binder */
                break;
            }
        }
        if (later) {
            continue;
        }
        if (!first) {
            ls_buf_putc(out, ',');
        }
        first = false;
        ls_json_put_str(out, p->key, strlen(p->key));
        ls_buf_putc(out, ':');
        if (mon_key_is_secret(ins->plugin, p->key)) {
            ls_json_put_str(out, MON_MASK, strlen(MON_MASK));
        } else {
            mon_put_masked_url(out, p->value);
        }
    }
    ls_buf_putc(out, '}');
}

/* ------------------------------------------------------------------ */
/* rows                                                                 */

enum mon_category { MON_INPUT, MON_OUTPUT, MON_FILTER };

static const char *const mon_category_names[] = { "input", "output", "filter" };

/* The buffer of an output instance, or NULL (unbuffered). */
static struct ls_buffer *mon_buffer(const struct ls_instance *ins)
{
    const struct ls_output_core *core = ins->core;

    return core ? core->buffer : NULL;
}

/* Records an output has delivered: buffered ones count written chunks'
 * records; unbuffered ones deliver what they accept. */
static uint64_t mon_records_out(const struct ls_instance *ins)
{
    const struct ls_metrics *m = &ins->metrics;

    if (mon_buffer(ins)) {
        return m->write_records;
    }
    return m->emit_records >= m->errors ? m->emit_records - m->errors : 0;
}

static char *mon_json_dup(struct mon_ctx *ctx, struct ls_buf *b, size_t *len)
{
    *len = b->len;
    return ls_arena_memdup(&ctx->arena, b->p ? b->p : "", b->len);
}

static void mon_put_local_time(struct ls_buf *out, double t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    char s[64];

    localtime_r(&tt, &tm);
    strftime(s, sizeof(s), "%Y-%m-%d %H:%M:%S %z", &tm);
    ls_json_put_str(out, s, strlen(s));
}

static void mon_add(struct ls_record *r, const char *key, struct ls_value v)
{
    ls_record_add(r, key, strlen(key), &v);
}

static void mon_add_u(struct ls_record *r, const char *key, uint64_t n)
{
    mon_add(r, key, ls_vint(n > INT64_MAX ? INT64_MAX : (int64_t)n));
}

/* Fill rec with one plugin's row; strings live in ctx->arena or the instance. */
static void mon_row(struct mon_ctx *ctx, struct ls_instance *ins, enum mon_category cat,
                    struct ls_record *r)
{
    const struct ls_metrics *m = &ins->metrics;
    struct ls_buffer *b = cat == MON_OUTPUT ? mon_buffer(ins) : NULL;
    struct ls_buffer_stats st;
    struct ls_buf tmp;
    const char *p;
    size_t len, i;

    ls_buf_init(&tmp, 0);
    mon_add(r, "plugin_id", ls_vstr(ins->id, strlen(ins->id)));
    p = mon_category_names[cat];
    mon_add(r, "plugin_category", ls_vstr(p, strlen(p)));
    mon_add(r, "type", ls_vstr(ins->plugin->name, strlen(ins->plugin->name)));
    mon_add(r, "output_plugin", ls_vbool(cat == MON_OUTPUT));
    if (b) {
        ls_buffer_get_stats(b, &st);
        mon_add_u(r, "buffer_queue_length", st.queue_length);
        ls_buf_putc(&tmp, '[');
        for (i = 0; i < st.ntimekeys; i++) {
            ls_buf_printf(&tmp, "%s%lld", i ? "," : "", (long long)st.timekeys[i]);
        }
        ls_buf_putc(&tmp, ']');
        p = mon_json_dup(ctx, &tmp, &len);
        mon_add(r, "buffer_timekeys", (struct ls_value){ .type = LS_V_JSON, .u.s = { p, len } });
        mon_add_u(r, "buffer_total_queued_size", st.total_bytes);
    }
    if (cat == MON_OUTPUT) {
        mon_add_u(r, "retry_count", m->retries);
    } else {
        mon_add(r, "retry_count", ls_vnull());
    }
    mon_add_u(r, "emit_records", m->emit_records);
    mon_add_u(r, "emit_size", m->emit_bytes);
    if (cat == MON_OUTPUT) {
        /* every record is one emit call here (fluentd counts event streams) */
        mon_add_u(r, "emit_count", m->emit_records);
    }
    if (b) {
        mon_add_u(r, "write_count", m->chunks_flushed + m->retries);
        mon_add_u(r, "rollback_count", m->retries);
        mon_add_u(r, "buffer_stage_length", st.stage_length);
        mon_add_u(r, "buffer_stage_byte_size", st.stage_bytes);
        mon_add_u(r, "buffer_queue_byte_size", st.queue_bytes);
        if (st.total_limit > 0) {
            double used = (double)st.total_bytes / (double)st.total_limit;
            double avail = used >= 1.0 ? 0.0 : 100.0 * (1.0 - used);
            mon_add(r, "buffer_available_buffer_space_ratios",
                    ls_vfloat((double)(int64_t)(avail * 100.0 + 0.5) / 100.0));
        }
    }
    /* logship's own counters (fluentd has no equivalent) */
    if (cat == MON_OUTPUT) {
        mon_add_u(r, "write_records", mon_records_out(ins));
        mon_add_u(r, "write_bytes", m->write_bytes);
    }
    if (b) {
        mon_add_u(r, "chunks_flushed", m->chunks_flushed);
        /* fluentd's output metrics of the same names (milliseconds; writes over the threshold) */
        mon_add_u(r, "flush_time_count", m->flush_time_ms);
        mon_add_u(r, "slow_flush_count", m->slow_flushes);
    }
    mon_add_u(r, "errors", m->errors);
    mon_add_u(r, "dropped_records", m->dropped);
    if (cat == MON_INPUT) {
        mon_add_u(r, "unmatched_records", m->unmatched);
    }
    if (m->last_error[0]) {
        mon_add(r, "last_error", ls_vstr(m->last_error, strnlen(m->last_error,
                                                                 sizeof(m->last_error))));
    }
    if (ctx->include_config) {
        ls_buf_reset(&tmp);
        mon_put_config(&tmp, ins);
        p = mon_json_dup(ctx, &tmp, &len);
        mon_add(r, "config", (struct ls_value){ .type = LS_V_JSON, .u.s = { p, len } });
    }
    if (ctx->include_retry && cat == MON_OUTPUT) {
        ls_buf_reset(&tmp);
        ls_buf_putc(&tmp, '{');
        if (b && st.retry_steps > 0) {
            ls_buf_printf(&tmp, "\"start\":");
            mon_put_local_time(&tmp, st.retry_start);
            ls_buf_printf(&tmp, ",\"steps\":%d", st.retry_steps);
            if (st.retry_next > 0) {
                ls_buf_printf(&tmp, ",\"next_time\":");
                mon_put_local_time(&tmp, st.retry_next);
            }
        }
        ls_buf_putc(&tmp, '}');
        p = mon_json_dup(ctx, &tmp, &len);
        mon_add(r, "retry", (struct ls_value){ .type = LS_V_JSON, .u.s = { p, len } });
    }
    ls_buf_release(&tmp);
}

/* Call fn for every instance in fluentd's order: inputs, outputs, filters. */
typedef void (*mon_visit_fn)(struct mon_ctx *ctx, struct ls_instance *ins,
                             enum mon_category cat, void *arg);

static void mon_visit(struct mon_ctx *ctx, mon_visit_fn fn, void *arg)
{
    struct ls_engine *eng = ctx->ins->engine;
    size_t i;

    for (i = 0; i < eng->ninputs; i++) {
        fn(ctx, eng->inputs[i], MON_INPUT, arg);
    }
    for (i = 0; i < eng->noutputs; i++) {
        fn(ctx, eng->outputs[i], MON_OUTPUT, arg);
    }
    for (i = 0; i < eng->nfilters; i++) {
        fn(ctx, eng->filters[i], MON_FILTER, arg);
    }
}

/* ------------------------------------------------------------------ */
/* /api/plugins(.json)                                                  */

struct mon_render {
    struct ls_buf *out;
    bool json;
    size_t n;
    const char *want_id;     /* ?@id= */
    const char *want_type;   /* ?@type= */
};

/* LTSV value: to_s of scalars; arrays as comma lists; tabs/newlines become spaces. */
static void mon_ltsv_value(struct ls_buf *out, const struct ls_value *v)
{
    struct ls_buf tmp;
    size_t i, from, to;

    ls_buf_init(&tmp, 0);
    if (v->type == LS_V_JSON) {
        from = v->u.s.len ? 1 : 0;
        to = v->u.s.len ? v->u.s.len - 1 : 0;
        ls_buf_append(&tmp, v->u.s.p + from, to - from);
    } else {
        ls_ruby_put_value(&tmp, v, false);
    }
    for (i = 0; i < tmp.len; i++) {
        char c = tmp.p[i];
        ls_buf_putc(out, c == '\t' || c == '\n' || c == '\r' ? ' ' : c);
    }
    ls_buf_release(&tmp);
}

static void mon_render_one(struct mon_ctx *ctx, struct ls_instance *ins, enum mon_category cat,
                           void *arg)
{
    struct mon_render *rd = arg;
    unsigned i;

    if (rd->want_id && strcmp(rd->want_id, ins->id) != 0) {
        return;
    }
    if (rd->want_type && strcmp(rd->want_type, ins->plugin->name) != 0) {
        return;
    }
    ls_record_clear(&ctx->rec);
    mon_row(ctx, ins, cat, &ctx->rec);
    if (rd->json) {
        if (rd->n) {
            ls_buf_putc(rd->out, ',');
        }
        ls_json_put_record(rd->out, &ctx->rec);
    } else {
        bool first = true;
        for (i = 0; i < ctx->rec.nfields; i++) {
            const struct ls_field *f = &ctx->rec.fields[i];
            if (f->v.type == LS_V_JSON && f->v.u.s.len && f->v.u.s.p[0] == '{') {
                continue;   /* hashes (config, retry) are left out, as fluentd does */
            }
            if (!first) {
                ls_buf_putc(rd->out, '\t');
            }
            first = false;
            ls_buf_append(rd->out, f->key, f->key_len);
            ls_buf_putc(rd->out, ':');
            mon_ltsv_value(rd->out, &f->v);
        }
        ls_buf_putc(rd->out, '\n');
    }
    ls_arena_reset(&ctx->arena);
    rd->n++;
}

static void mon_plugins(struct mon_ctx *ctx, struct ls_buf *out, bool json, const char *want_id,
                        const char *want_type)
{
    struct mon_render rd = { out, json, 0, want_id, want_type };

    if (json) {
        ls_buf_printf(out, "{\"plugins\":[");
    }
    mon_visit(ctx, mon_render_one, &rd);
    if (json) {
        ls_buf_printf(out, "]}\n");
    }
}

/* /api/config(.json): process information */
static void mon_config(struct mon_ctx *ctx, struct ls_buf *out, bool json)
{
    struct ls_engine *eng = ctx->ins->engine;
    const char *cp = eng->config_path ? eng->config_path : "";
    const char *lp = eng->sys.log_path;

    if (json) {
        ls_buf_printf(out, "{\"pid\":%d,\"ppid\":%d,\"config_path\":", (int)getpid(),
                      (int)getppid());
        ls_json_put_str(out, cp, strlen(cp));
        ls_buf_printf(out, ",\"log_path\":");
        if (lp) {
            ls_json_put_str(out, lp, strlen(lp));
        } else {
            ls_buf_printf(out, "null");
        }
        ls_buf_printf(out, ",\"workers\":1}\n");
    } else {
        ls_buf_printf(out, "pid:%d\tppid:%d\tconfig_path:%s\tlog_path:%s\tworkers:1\n",
                      (int)getpid(), (int)getppid(), cp, lp ? lp : "");
    }
}

/* ------------------------------------------------------------------ */
/* /metrics (Prometheus text format 0.0.4)                              */

enum mon_metric {
    MM_RECORDS_IN, MM_RECORDS_OUT, MM_BYTES_OUT, MM_CHUNKS_FLUSHED, MM_RETRIES, MM_ERRORS,
    MM_DROPPED, MM_UNMATCHED, MM_BUFFER_BYTES, MM_BUFFER_QUEUE, MM_BUFFER_STAGE,
    MM_BUFFER_LIMIT, MM_RETRY_STEPS,
};

/* which instances a family covers */
#define MF_IN   1u
#define MF_OUT  2u
#define MF_FLT  4u
#define MF_BUF  8u      /* only buffered outputs */

static const struct {
    enum mon_metric id;
    const char *name;
    const char *type;
    unsigned who;
    const char *help;
} mon_families[] = {
    { MM_RECORDS_IN, "logship_records_in_total", "counter", MF_IN | MF_OUT | MF_FLT,
      "Records emitted by an input, or handed to a filter or an output." },
    { MM_RECORDS_OUT, "logship_records_out_total", "counter", MF_OUT,
      "Records an output delivered (buffered: in chunks written successfully)." },
    { MM_BYTES_OUT, "logship_bytes_out_total", "counter", MF_OUT,
      "Bytes an output delivered (after compression)." },
    { MM_CHUNKS_FLUSHED, "logship_chunks_flushed_total", "counter", MF_OUT | MF_BUF,
      "Buffer chunks written successfully." },
    { MM_RETRIES, "logship_retries_total", "counter", MF_OUT,
      "Failed chunk writes that were scheduled for a retry." },
    { MM_ERRORS, "logship_errors_total", "counter", MF_IN | MF_OUT | MF_FLT,
      "Rejected records and failed writes." },
    { MM_DROPPED, "logship_dropped_records_total", "counter", MF_IN | MF_OUT | MF_FLT,
      "Records dropped (over-long lines, drop_oldest_chunk, given-up chunks)." },
    { MM_UNMATCHED, "logship_unmatched_records_total", "counter", MF_IN,
      "Records that matched no <match>." },
    { MM_BUFFER_BYTES, "logship_buffer_bytes", "gauge", MF_OUT | MF_BUF,
      "Bytes held by the buffer (staged and queued chunks)." },
    { MM_BUFFER_QUEUE, "logship_buffer_queue_length", "gauge", MF_OUT | MF_BUF,
      "Sealed chunks waiting to be written or being written." },
    { MM_BUFFER_STAGE, "logship_buffer_stage_length", "gauge", MF_OUT | MF_BUF,
      "Open (staged) chunks." },
    { MM_BUFFER_LIMIT, "logship_buffer_total_limit_bytes", "gauge", MF_OUT | MF_BUF,
      "The buffer's total_limit_size." },
    { MM_RETRY_STEPS, "logship_buffer_retry_steps", "gauge", MF_OUT | MF_BUF,
      "Failed flushes in the current retry episode (0: not retrying)." },
};

struct mon_prom {
    struct ls_buf *out;
    size_t family;
};

static void mon_prom_label(struct ls_buf *out, const char *name, const char *v, bool comma)
{
    ls_buf_printf(out, "%s%s=\"", comma ? "," : "", name);
    for (; *v; v++) {
        if (*v == '\\') {
            ls_buf_append(out, "\\\\", 2);
        } else if (*v == '"') {
            ls_buf_append(out, "\\\"", 2);
        } else if (*v == '\n') {
            ls_buf_append(out, "\\n", 2);
        } else {
            ls_buf_putc(out, *v);
        }
    }
    ls_buf_putc(out, '"');
}

static void mon_prom_one(struct mon_ctx *ctx, struct ls_instance *ins, enum mon_category cat,
                         void *arg)
{
    struct mon_prom *pr = arg;
    const struct ls_metrics *m = &ins->metrics;
    unsigned who = mon_families[pr->family].who;
    struct ls_buffer *b = cat == MON_OUTPUT ? mon_buffer(ins) : NULL;
    struct ls_buffer_stats st;
    uint64_t v = 0;
    LS_UNUSED(ctx);

    if ((cat == MON_INPUT && !(who & MF_IN)) || (cat == MON_OUTPUT && !(who & MF_OUT)) ||
        (cat == MON_FILTER && !(who & MF_FLT)) || ((who & MF_BUF) && b == NULL)) {
        return;
    }
    if (b) {
        ls_buffer_get_stats(b, &st);
    }
    switch (mon_families[pr->family].id) {
    case MM_RECORDS_IN: v = m->emit_records; break;
    case MM_RECORDS_OUT: v = mon_records_out(ins); break;
    case MM_BYTES_OUT: v = m->write_bytes; break;
    case MM_CHUNKS_FLUSHED: v = m->chunks_flushed; break;
    case MM_RETRIES: v = m->retries; break;
    case MM_ERRORS: v = m->errors; break;
    case MM_DROPPED: v = m->dropped; break;
    case MM_UNMATCHED: v = m->unmatched; break;
    case MM_BUFFER_BYTES: v = st.total_bytes; break;
    case MM_BUFFER_QUEUE: v = st.queue_length; break;
    case MM_BUFFER_STAGE: v = st.stage_length; break;
    case MM_BUFFER_LIMIT: v = st.total_limit; break;
    case MM_RETRY_STEPS: v = (uint64_t)(st.retry_steps > 0 ? st.retry_steps : 0); break;
    }
    ls_buf_printf(pr->out, "%s{", mon_families[pr->family].name);
    mon_prom_label(pr->out, "plugin_id", ins->id, false);
    mon_prom_label(pr->out, "type", ins->plugin->name, true);
    mon_prom_label(pr->out, "plugin_category", mon_category_names[cat], true);
    ls_buf_printf(pr->out, "} %llu\n", (unsigned long long)v);
}

static void mon_prom_head(struct ls_buf *out, const char *name, const char *type,
                          const char *help)
{
    ls_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* process_* metrics from /proc/self, as the Prometheus client libraries name them. */
static void mon_prom_process(struct ls_buf *out)
{
    char buf[2048], *p;
    long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
    long long rss = 0, btime = 0;
    ssize_t n;
    int fd, fds = 0;
    DIR *d;
    struct rlimit rl;

    fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    if (fd >= 0) {
        close(fd);
    }
    if (n > 0) {
        buf[n] = '\0';
        /* fields after "(comm)": the command name may hold spaces and parentheses */
        p = strrchr(buf, ')');
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu "
                        "%*d %*d %*d %*d %*d %*d %llu %llu %lld", &utime, &stime, &start, &vsize,
                        &rss) == 5) {
            fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
            if (fd >= 0) {
                char sbuf[8192];
                ssize_t m = read(fd, sbuf, sizeof(sbuf) - 1);
                close(fd);
                if (m > 0) {
                    char *bt;
                    sbuf[m] = '\0';
                    bt = strstr(sbuf, "\nbtime ");
                    if (bt) {
                        btime = strtoll(bt + 7, NULL, 10);
                    }
                }
            }
            if (tck <= 0) {
                tck = 100;
            }
            mon_prom_head(out, "process_cpu_seconds_total", "counter",
                          "Total user and system CPU time spent in seconds.");
            ls_buf_printf(out, "process_cpu_seconds_total %.2f\n",
                          (double)(utime + stime) / (double)tck);
            mon_prom_head(out, "process_resident_memory_bytes", "gauge",
                          "Resident memory size in bytes.");
            ls_buf_printf(out, "process_resident_memory_bytes %lld\n",
                          rss * (long long)(page > 0 ? page : 4096));
            mon_prom_head(out, "process_virtual_memory_bytes", "gauge",
                          "Virtual memory size in bytes.");
            ls_buf_printf(out, "process_virtual_memory_bytes %llu\n", vsize);
            if (btime > 0) {
                mon_prom_head(out, "process_start_time_seconds", "gauge",
                              "Start time of the process since unix epoch in seconds.");
                ls_buf_printf(out, "process_start_time_seconds %.2f\n",
                              (double)btime + (double)start / (double)tck);
            }
        }
    }
    d = opendir("/proc/self/fd");
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] != '.') {
                fds++;
            }
        }
        closedir(d);
        mon_prom_head(out, "process_open_fds", "gauge", "Number of open file descriptors.");
        ls_buf_printf(out, "process_open_fds %d\n", fds > 0 ? fds - 1 : 0);  /* minus the DIR's */
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        mon_prom_head(out, "process_max_fds", "gauge",
                      "Maximum number of open file descriptors.");
        ls_buf_printf(out, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
    }
}

static void mon_metrics(struct mon_ctx *ctx, struct ls_buf *out)
{
    struct mon_prom pr = { out, 0 };

    for (pr.family = 0; pr.family < sizeof(mon_families) / sizeof(mon_families[0]);
         pr.family++) {
        mon_prom_head(out, mon_families[pr.family].name, mon_families[pr.family].type,
                      mon_families[pr.family].help);
        mon_visit(ctx, mon_prom_one, &pr);
    }
    mon_prom_process(out);
}

/* ------------------------------------------------------------------ */
/* HTTP                                                                 */

/*
 * /api/health: is every buffered output delivering? For load balancers and Kubernetes probes:
 * 200 when yes, 503 when an output has been failing for longer than unhealthy_after. The body
 * says which, how old its oldest undelivered data is, and its last error.
 */
struct mon_health {
    struct ls_buf *out;
    double now;
    double grace;
    bool ok;
    int n;
};

static void mon_health_one(struct mon_ctx *ctx, struct ls_instance *ins, enum mon_category cat,
                           void *arg)
{
    struct mon_health *h = arg;
    struct ls_buffer *b = cat == MON_OUTPUT ? mon_buffer(ins) : NULL;
    struct ls_buffer_stats st;
    double failing;
    bool ok;
    LS_UNUSED(ctx);

    if (b == NULL) {
        return;
    }
    ls_buffer_get_stats(b, &st);
    failing = st.retry_steps > 0 ? h->now - st.retry_start : 0;
    ok = !(st.retry_steps > 0 && failing >= h->grace);
    h->ok = h->ok && ok;
    ls_buf_printf(h->out, "%s{\"plugin_id\":", h->n++ ? "," : "");
    ls_json_put_str(h->out, ins->id, strlen(ins->id));
    ls_buf_printf(h->out, ",\"type\":");
    ls_json_put_str(h->out, ins->plugin->name, strlen(ins->plugin->name));
    ls_buf_printf(h->out, ",\"delivering\":%s,\"failing_seconds\":%.0f,\"retry_steps\":%d,"
                  "\"oldest_undelivered_seconds\":%.0f,\"buffer_queue_length\":%zu,"
                  "\"buffer_total_queued_size\":%llu", ok ? "true" : "false", failing,
                  st.retry_steps, st.oldest_age, st.queue_length,
                  (unsigned long long)st.total_bytes);
    if (st.retry_steps > 0 && ins->metrics.last_error[0]) {
        ls_buf_printf(h->out, ",\"last_error\":");
        ls_json_put_str(h->out, ins->metrics.last_error,
                       strnlen(ins->metrics.last_error, sizeof(ins->metrics.last_error)));
    }
    ls_buf_putc(h->out, '}');
}

static unsigned mon_health(struct mon_ctx *ctx, struct ls_buf *out)
{
    int64_t sec;
    int32_t ns;
    struct mon_health h = { .out = out, .grace = ctx->unhealthy_after, .ok = true };

    ls_wall_now(&sec, &ns);
    h.now = (double)sec + (double)ns / 1e9;
    ls_buf_printf(out, "{\"outputs\":[");
    mon_visit(ctx, mon_health_one, &h);
    ls_buf_printf(out, "],\"status\":\"%s\"}\n", h.ok ? "ok" : "failing");
    return h.ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
}

static enum MHD_Result mon_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version,
                                   const char *upload_data, size_t *upload_data_size,
                                   void **con_cls)
{
    struct mon_ctx *ctx = cls;
    struct ls_buf out;
    const char *type = "application/json";
    const char *want_id, *want_type;
    enum MHD_Result rc;
    unsigned status = MHD_HTTP_OK;
    LS_UNUSED(version);
    LS_UNUSED(upload_data);
    LS_UNUSED(upload_data_size);
    LS_UNUSED(con_cls);

    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        static const char msg[] = "only GET and HEAD are supported\n";
        return mhd_server_reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", NULL, msg,
                                sizeof(msg) - 1);
    }
    want_id = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "@id");
    want_type = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "@type");
    ls_buf_init(&out, MON_RESPONSE_MAX);
    if (strcmp(url, "/api/plugins.json") == 0) {
        mon_plugins(ctx, &out, true, want_id, want_type);
    } else if (strcmp(url, "/api/plugins") == 0) {
        type = "text/plain; charset=utf-8";
        mon_plugins(ctx, &out, false, want_id, want_type);
    } else if (strcmp(url, "/api/config.json") == 0) {
        mon_config(ctx, &out, true);
    } else if (strcmp(url, "/api/config") == 0) {
        type = "text/plain; charset=utf-8";
        mon_config(ctx, &out, false);
    } else if (strcmp(url, "/api/health") == 0) {
        status = mon_health(ctx, &out);
    } else if (strcmp(url, "/metrics") == 0) {
        type = "text/plain; version=0.0.4; charset=utf-8";
        mon_metrics(ctx, &out);
    } else {
        type = "text/plain; charset=utf-8";
        status = MHD_HTTP_NOT_FOUND;
        ls_buf_printf(&out, "not found; try /api/plugins.json, /api/plugins, /api/config.json, "
                            "/api/health or /metrics\n");
    }
    rc = mhd_server_reply(conn, status, type, NULL, out.p, out.len);
    ls_buf_release(&out);
    return rc;
}

/* ------------------------------------------------------------------ */
/* emitting metrics as records (tag)                                    */

static void mon_emit_one(struct mon_ctx *ctx, struct ls_instance *ins, enum mon_category cat,
                         void *arg)
{
    int *stop = arg;
    int64_t sec;
    int32_t nsec;

    if (*stop) {
        return;
    }
    ls_record_clear(&ctx->rec);
    ctx->rec.tag = ctx->tag;
    ctx->rec.tag_len = strlen(ctx->tag);
    ls_wall_now(&sec, &nsec);
    ctx->rec.time.sec = sec;
    ctx->rec.time.nsec = nsec;
    mon_row(ctx, ins, cat, &ctx->rec);
    if (ls_emit(ctx->ins, &ctx->rec) == LS_AGAIN) {
        *stop = 1;   /* back-pressure: skip the rest of this round */
    }
    ls_arena_reset(&ctx->arena);
}

static void mon_emit_cb(struct ls_timer *t, void *arg)
{
    struct mon_ctx *ctx = arg;
    int stop = 0;
    LS_UNUSED(t);

    if (ctx->paused) {
        return;
    }
    mon_visit(ctx, mon_emit_one, &stop);
    (void)ls_input_commit(ctx->ins);
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                            */

static int mon_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                    size_t errlen)
{
    struct mon_ctx *ctx = ins->ctx;
    char why[512];

    ctx->ins = ins;
    ls_arena_init(&ctx->arena, 8192);
    ls_record_init(&ctx->rec, &ctx->arena);
    if (mhd_api_load(why, sizeof(why)) != LS_OK) {
        snprintf(err, errlen, "%s:%d: %s", sec->file, sec->line, why);
        return LS_ERROR;
    }
    return LS_OK;
}

static void mon_stop(struct ls_instance *ins)
{
    struct mon_ctx *ctx = ins->ctx;

    ls_timer_free(ctx->emit_timer);
    ctx->emit_timer = NULL;
    mhd_server_stop(ctx->srv);
    ctx->srv = NULL;
}

static int mon_start(struct ls_instance *ins)
{
    struct mon_ctx *ctx = ins->ctx;
    char where[80];

    /* a --oneshot run has nothing to wait for from this input */
    if (ls_oneshot(ins->engine)) {
        ls_input_done(ins);
    }
    ctx->srv = mhd_server_start(ins, ctx->bind, ctx->port, mon_handler, ctx, where,
                                sizeof(where));
    if (ctx->srv == NULL) {
        return LS_ERROR;
    }
    if (ctx->tag) {
        ctx->emit_timer = ls_timer_new(ins, mon_emit_cb, ctx);
        ls_timer_start(ctx->emit_timer, ctx->emit_interval, ctx->emit_interval);
    }
    ls_plg_info(ins, "listening on http://%s (/api/plugins.json, /api/plugins, /metrics)",
                where);
    return LS_OK;
}

static void mon_pause(struct ls_instance *ins)
{
    ((struct mon_ctx *)ins->ctx)->paused = true;
}

static void mon_resume(struct ls_instance *ins)
{
    ((struct mon_ctx *)ins->ctx)->paused = false;
}

static void mon_destroy(struct ls_instance *ins)
{
    struct mon_ctx *ctx = ins->ctx;

    mon_stop(ins);
    ls_record_release(&ctx->rec);
    ls_arena_release(&ctx->arena);
}

const struct ls_plugin ls_plugin_in_monitor_agent = {
    .name = "monitor_agent",
    .kind = LS_PLUGIN_INPUT,
    .description = "HTTP metrics: fluentd's /api/plugins.json and Prometheus /metrics",
    .params = mon_params,
    .ctx_size = sizeof(struct mon_ctx),
    .init = mon_init,
    .destroy = mon_destroy,
    .start = mon_start,
    .stop = mon_stop,
    .pause = mon_pause,
    .resume = mon_resume,
};
