/*
 * engine.c - builds the pipeline from the configuration and runs it.
 *
 * The engine owns the libev loop, every plugin instance, the labels the
 * router walks, and each output's formatter/inject/buffer/secondary. It is
 * built completely before anything starts, so --dry-run exercises the same
 * code path as a real start (every plugin's init runs) without opening
 * files or sockets.
 *
 * Emission is synchronous on the loop thread: an input calls ls_emit(), the
 * record runs through its label's filters into the matched output, which
 * formats it into a chunk, and ls_emit() returns. Then the input calls
 * ls_input_commit(), which makes the chunk frames durable, and only then
 * advances its own position. That ordering is the delivery guarantee.
 */
#include "engine.h"
#include "buffer.h"
#include "inject.h"
#include "http.h"
#include "log.h"

#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <sys/signalfd.h>

static const struct ls_param system_params[] = {
    { "root_dir", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct ls_system, root_dir),
      "directory for file buffers of outputs with an @id but no path", NULL, NULL, 0, 0 },
    { "log_level", LS_P_STR, "info", 0, offsetof(struct ls_system, log_level),
      "fatal, error, warn, info, debug or trace", NULL, NULL, 0, 0 },
    { "suppress_config_dump", LS_P_BOOL, "false", 0,
      offsetof(struct ls_system, suppress_config_dump), "do not print the configuration at start",
      NULL, NULL, 0, 0 },
    { "without_source", LS_P_BOOL, "false", 0, offsetof(struct ls_system, without_source),
      "start without inputs (flush buffers only)", NULL, NULL, 0, 0 },
    { "process_name", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct ls_system, process_name),
      "accepted for compatibility", NULL, NULL, 0, 0 },
    { "file_permission", LS_P_INT, "0644", 0, offsetof(struct ls_system, file_permission),
      "permission of files logship creates (octal)", NULL, NULL, 0, 0 },
    { "dir_permission", LS_P_INT, "0755", 0, offsetof(struct ls_system, dir_permission),
      "permission of directories logship creates (octal)", NULL, NULL, 0, 0 },
    { "workers", LS_P_INT, "1", 0, offsetof(struct ls_system, workers),
      "accepted; logship runs one worker (it uses a thread pool for compression)", NULL, NULL,
      1, 1024 },
    /* fluentd's log-noise and Ruby settings: real td-agent.conf files set them; nothing in
     * logship to turn (its repeated errors are rate-limited anyway) */
    { "suppress_repeated_stacktrace", LS_P_BOOL, "true", LS_PF_NO_STORE, 0,
      "accepted (logship prints no stack traces)", NULL, NULL, 0, 0 },
    { "emit_error_log_interval", LS_P_TIME, NULL, LS_PF_NO_STORE, 0,
      "accepted (repeated errors are rate-limited already)", NULL, NULL, 0, 0 },
    { "ignore_repeated_log_interval", LS_P_TIME, NULL, LS_PF_NO_STORE, 0,
      "accepted (repeated errors are rate-limited already)", NULL, NULL, 0, 0 },
    { "ignore_same_log_interval", LS_P_TIME, NULL, LS_PF_NO_STORE, 0,
      "accepted (repeated errors are rate-limited already)", NULL, NULL, 0, 0 },
    { "enable_msgpack_time_support", LS_P_BOOL, "false", LS_PF_NO_STORE, 0,
      "accepted (EventTime is always understood)", NULL, NULL, 0, 0 },
    { "enable_input_metrics", LS_P_BOOL, "false", LS_PF_NO_STORE, 0,
      "accepted (input metrics are always kept)", NULL, NULL, 0, 0 },
    { "enable_size_metrics", LS_P_BOOL, "false", LS_PF_NO_STORE, 0,
      "accepted (byte counts are always kept)", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

/* the process's signals (ls_signals_init): received, not yet acted on */
enum { SIG_SEEN_TERM = 1, SIG_SEEN_USR1 = 2, SIG_SEEN_HUP = 4 };
static int sig_fd = -1;
static unsigned sig_seen;

/* ------------------------------------------------------------------ */
/* outputs                                                              */

void ls_engine_add_output(struct ls_engine *eng, struct ls_instance *out)
{
    if (eng == NULL) {
        return;
    }
    eng->outputs = ls_realloc(eng->outputs, (eng->noutputs + 1) * sizeof(*eng->outputs));
    eng->outputs[eng->noutputs++] = out;
}

/* v0.12 flat parser/formatter name: `format json` on the output itself. */
static struct ls_instance *make_formatter(struct ls_engine *eng, struct ls_instance *out,
                                          struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct ls_conf_section *fs = ls_conf_child(sec, "format");
    const char *flat;

    if (out->plugin->formatter_for) {
        struct ls_conf_section *fsec = NULL;
        const char *t;
        err[0] = '\0';
        t = out->plugin->formatter_for(sec, &fsec, err, errlen);
        if (t) {
            return ls_instance_create(eng, out, LS_PLUGIN_FORMATTER, t, fsec, err, errlen);
        }
        if (err[0]) {
            return NULL;
        }
    }
    if (fs) {
        return ls_instance_create(eng, out, LS_PLUGIN_FORMATTER, out->plugin->default_formatter,
                                  fs, err, errlen);
    }
    flat = ls_conf_get(sec, "format");
    if (flat && *flat) {
        /* v0.12: the output's own section carries the formatter's flat parameters */
        return ls_instance_create(eng, out, LS_PLUGIN_FORMATTER, flat, sec, err, errlen);
    }
    /*
     * fluentd's compat layer makes a <format> of the plugin's default type from any of these
     * flat keys even without `format` (so a flat `utc` puts UTC times in out_file's lines).
     * Not time_format: in v1 that one only goes to <inject>.
     */
    {
        static const char *const keys[] = { "delimiter", "force_quotes", "keys", "fields",
                                            "json_parser", "label_delimiter", "output_time",
                                            "output_tag", "localtime", "utc", "timezone",
                                            "message_key", "add_newline", "output_type", NULL };
        struct ls_conf_section *gen = NULL;

        for (struct ls_conf_param *cp = sec->params; cp; cp = cp->next) {
            bool epoch = strcmp(cp->key, "time_as_epoch") == 0;
            size_t k = 0;

            while (keys[k] && strcmp(keys[k], cp->key) != 0) {
                k++;
            }
            if (keys[k] == NULL && !epoch) {
                continue;
            }
            if (gen == NULL) {
                gen = ls_conf_add_child(sec, "format", "");
            }
            /* the <format> copy is checked by the formatter; this one was not "unused" */
            cp->used = true;
            if (epoch) {
                bool on = false;

                if (ls_parse_bool(cp->value, &on) == LS_OK && on) {
                    ls_conf_set(gen, "time_type", "unixtime", cp->file, cp->line);
                }
            } else {
                ls_conf_set(gen, cp->key, cp->value, cp->file, cp->line);
            }
        }
        if (gen) {
            return ls_instance_create(eng, out, LS_PLUGIN_FORMATTER,
                                      out->plugin->default_formatter, gen, err, errlen);
        }
    }
    return ls_instance_create(eng, out, LS_PLUGIN_FORMATTER, out->plugin->default_formatter, NULL,
                              err, errlen);
}

static struct ls_instance *output_create(struct ls_engine *eng, struct ls_conf_section *sec,
                                         bool is_secondary, char *err, size_t errlen);

struct ls_instance *ls_output_create(struct ls_engine *eng, struct ls_conf_section *sec,
                                     char *err, size_t errlen)
{
    return output_create(eng, sec, false, err, errlen);
}

/*
 * A <secondary> gets the primary's chunks handed to its .write directly (as in
 * fluentd), so it has no buffer, inject or formatter of its own.
 */
static int make_inject(struct ls_output_core *core, struct ls_conf_section *sec, char *err,
                       size_t errlen)
{
    struct ls_conf_section *sub = ls_conf_child(sec, "inject");

    err[0] = '\0';
    core->inject = ls_inject_create(sub ? sub : sec, err, errlen);
    return core->inject == NULL && err[0] ? LS_ERROR : LS_OK;
}

static struct ls_instance *output_create(struct ls_engine *eng, struct ls_conf_section *sec,
                                         bool is_secondary, char *err, size_t errlen)
{
    struct ls_instance *out;
    struct ls_output_core *core;
    struct ls_conf_section *sub;

    out = ls_instance_create(eng, NULL, LS_PLUGIN_OUTPUT, NULL, sec, err, errlen);
    if (out == NULL) {
        return NULL;
    }
    core = ls_calloc(1, sizeof(*core));
    out->core = core;
    ls_arena_init(&core->arena, 4096);
    ls_record_init(&core->scratch, &core->arena);
    ls_record_init(&core->prep, &core->arena);
    core->is_secondary = is_secondary;
    core->label = eng->building_label;
    core->emit_label = ls_conf_get(sec, "@label");
    if ((out->plugin->output_flags & LS_OUT_BUFFERED) && !is_secondary) {
        if (out->plugin->default_formatter) {
            core->formatter = make_formatter(eng, out, sec, err, errlen);
            if (core->formatter == NULL) {
                goto fail;
            }
            if (out->plugin->formatter_check
                && out->plugin->formatter_check(out, core->formatter, err, errlen) != LS_OK) {
                goto fail;
            }
        }
        if (make_inject(core, sec, err, errlen) != LS_OK) {
            goto fail;
        }
        core->buffer = ls_buffer_create(out, ls_conf_child(sec, "buffer"), sec, err, errlen);
        if (core->buffer == NULL) {
            goto fail;
        }
        sub = ls_conf_child(sec, "secondary");
        if (sub) {
            if (ls_conf_type(sub) == NULL) {
                ls_conf_set(sub, "@type", out->plugin->name, sub->file, sub->line);
            }
            core->secondary = output_create(eng, sub, true, err, errlen);
            if (core->secondary == NULL) {
                goto fail;
            }
            ((struct ls_output_core *)core->secondary->core)->primary = out;
        }
    } else if ((out->plugin->output_flags & LS_OUT_INJECT) && !is_secondary
               && make_inject(core, sec, err, errlen) != LS_OK) {
        goto fail;
    }
    ls_engine_add_output(eng, out);
    return out;

fail:
    ls_output_destroy(out);
    return NULL;
}

void ls_output_destroy(struct ls_instance *out)
{
    struct ls_output_core *core;

    if (out == NULL) {
        return;
    }
    core = out->core;
    if (core) {
        ls_buffer_destroy(core->buffer);
        ls_instance_destroy(core->formatter);
        ls_inject_destroy(core->inject);
        /* the secondary is in eng->outputs and destroyed with them */
        ls_record_release(&core->scratch);
        ls_record_release(&core->prep);
        ls_arena_release(&core->arena);
        ls_free(core);
        out->core = NULL;
    }
    ls_instance_destroy(out);
}

int ls_output_emit(struct ls_instance *out, struct ls_record *rec)
{
    struct ls_output_core *core = out->core;
    const struct ls_record *r = rec;
    int rc;

    out->metrics.emit_records++;
    if (core && core->inject) {
        ls_record_clear(&core->scratch);
        r = ls_inject_apply(core->inject, rec, &core->scratch);
    }
    if (core && core->buffer && out->plugin->prepare) {
        ls_record_clear(&core->prep);
        r = out->plugin->prepare(out, r, &core->prep);
    }
    if (core && core->buffer) {
        rc = ls_buffer_write(core->buffer, r);
    } else if (out->plugin->emit) {
        rc = out->plugin->emit(out, r);
    } else {
        rc = LS_ERROR;
    }
    if (core && (core->inject || (core->buffer && out->plugin->prepare))) {
        ls_arena_reset(&core->arena);
    }
    if (rc == LS_ERROR) {
        out->metrics.errors++;
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* emit                                                                 */

static int emit_error(struct ls_engine *eng, struct ls_instance *in, struct ls_record *rec,
                      const char *why);

/* The filters of route from the start'th on, then its output (route_record's second half;
 * ls_filter_emit_next enters here after the filter that calls it). */
static int route_from(struct ls_engine *eng, struct ls_instance *in, struct ls_label *label,
                      struct ls_route *route, size_t start, struct ls_record *rec)
{
    uint64_t errors;
    size_t i;
    int rc;

    eng->route_depth++;
    for (i = start; i < route->nfilters; i++) {
        struct ls_instance *f = route->filters[i];
        f->metrics.emit_records++;
        rc = f->plugin->filter(f, rec);
        if (rc == LS_DECLINED) {
            eng->route_depth--;
            return LS_OK;
        }
        if (rc == LS_AGAIN) {
            /* a filter that emits records of its own (concat) met a full buffer: nothing
             * was taken, the input pauses and offers the record again */
            eng->route_depth--;
            return LS_AGAIN;
        }
        if (rc == LS_ERROR) {
            f->metrics.errors++;
            eng->route_depth--;
            return emit_error(eng, in, rec, "filter rejected the record");
        }
    }
    if (route->output == NULL) {
        eng->route_depth--;
        if (in) {
            in->metrics.unmatched++;
        }
        if (!route->warned) {
            route->warned = true;
            ls_warn("no patterns matched tag=\"%.*s\"", (int)rec->tag_len, rec->tag);
        }
        return LS_OK;
    }
    errors = eng->error_events;
    rc = ls_output_emit(route->output, rec);
    eng->route_depth--;
    /* a record the output refuses (its formatter's schema, say) goes to @ERROR, as
     * fluentd's emit_error_event; never from @ERROR itself, which would loop, and not
     * again when a re-emitting output's nested route has already sent it there */
    if (rc == LS_ERROR && eng->error_label && label != eng->error_label
        && eng->error_events == errors) {
        return emit_error(eng, in, rec, "the output refused the record");
    }
    return rc;
}

/* fluentd has no loop detection: a rewrite_tag_filter whose new tag matches its own
 * <match> again recurses until the Ruby stack overflows. A bound on the nesting turns
 * that into one error per record. */
static int route_loop(struct ls_engine *eng, struct ls_instance *in, struct ls_record *rec)
{
    static double last_warn;
    double now = ls_mono_now();
    int rc, depth;

    if (now - last_warn >= 1.0) {
        last_warn = now;
        ls_warn("routing loop: a record was re-emitted %d times (last tag \"%.*s\"); check "
                "rewrite_tag_filter/relabel rules whose new tag matches their own <match>",
                LS_ROUTE_DEPTH_MAX, (int)(rec->tag_len > 120 ? 120 : rec->tag_len), rec->tag);
    }
    if (eng->loop_error) {
        return LS_ERROR;     /* @ERROR's own rules loop too */
    }
    depth = eng->route_depth;
    eng->loop_error = true;
    eng->route_depth = 0;
    rc = emit_error(eng, in, rec, "routing loop");
    eng->route_depth = depth;
    eng->loop_error = false;
    return rc == LS_OK ? LS_ERROR : rc;
}

static int route_record(struct ls_engine *eng, struct ls_instance *in, struct ls_label *label,
                        struct ls_record *rec)
{
    if (eng->route_depth >= LS_ROUTE_DEPTH_MAX) {
        return route_loop(eng, in, rec);
    }
    return route_from(eng, in, label, ls_label_route(label, rec->tag, rec->tag_len), 0, rec);
}

int ls_filter_emit_next(struct ls_instance *f, struct ls_record *rec)
{
    struct ls_engine *eng = f->engine;
    struct ls_label *label = f->core ? f->core : eng->root;
    struct ls_route *route;
    size_t i;

    if (eng->route_depth >= LS_ROUTE_DEPTH_MAX) {
        return route_loop(eng, NULL, rec);
    }
    route = ls_label_route(label, rec->tag, rec->tag_len);
    for (i = 0; i < route->nfilters && route->filters[i] != f; i++) {
    }
    /* a tag this filter's pattern does not match (a timeout flush keeps the tag the records
     * came with, so only a reload could do it): the label's whole route */
    return route_from(eng, NULL, label, route, i < route->nfilters ? i + 1 : 0, rec);
}

bool ls_has_error_label(const struct ls_engine *eng)
{
    return eng->error_label != NULL;
}

int ls_emit(struct ls_instance *in, struct ls_record *rec)
{
    struct ls_engine *eng = in->engine;
    struct ls_input_core *core = in->core;
    struct ls_label *label = core && core->label ? core->label : eng->root;
    int rc;

    eng->emit_seq++;
    rc = route_record(eng, in, label, rec);
    if (rc == LS_OK) {
        in->metrics.emit_records++;
    } else if (rc == LS_ERROR) {
        in->metrics.errors++;
    }
    return rc;
}

/* eng may be NULL (no engine: only the warning) */
static int emit_error(struct ls_engine *eng, struct ls_instance *in, struct ls_record *rec,
                      const char *why)
{
    static double last_warn;
    double now = ls_mono_now();

    if (eng) {
        eng->error_events++;
    }
    if (eng && eng->error_label) {
        return route_record(eng, NULL, eng->error_label, rec);
    }
    /* rate-limited: a flood of bad lines must not flood the log */
    if (now - last_warn >= 1.0) {
        last_warn = now;
        if (in) {
            ls_plg_warn(in, "dump an error event: %s (tag=\"%.*s\")", why, (int)rec->tag_len,
                        rec->tag);
        } else {
            ls_warn("dump an error event: %s (tag=\"%.*s\")", why, (int)rec->tag_len, rec->tag);
        }
    }
    return LS_ERROR;
}

int ls_emit_error(struct ls_instance *in, struct ls_record *rec, const char *why)
{
    return emit_error(in ? in->engine : NULL, in, rec, why);
}

static struct ls_label *find_label(struct ls_engine *eng, const char *name);

/* A label-aware emit used by relabel: route rec into the named label. */
int ls_emit_to_label(struct ls_instance *from, const char *label, struct ls_record *rec)
{
    struct ls_engine *eng = from->engine;
    struct ls_label *l = find_label(eng, label);

    if (l == NULL) {
        return LS_ERROR;
    }
    return route_record(eng, NULL, l, rec);
}

struct ls_record *ls_output_reemit_copy(struct ls_instance *out, const struct ls_record *rec)
{
    struct ls_engine *eng = out->engine;
    struct ls_record *c = &eng->reemit[eng->route_depth];
    unsigned i;

    c->arena = rec->arena;
    c->nfields = 0;
    for (i = 0; i < rec->nfields; i++) {
        ls_record_add(c, rec->fields[i].key, rec->fields[i].key_len, &rec->fields[i].v);
    }
    c->tag = rec->tag;
    c->tag_len = rec->tag_len;
    c->time = rec->time;
    c->src = rec->src;
    c->pos = rec->pos;
    return c;
}

int ls_output_reemit(struct ls_instance *out, const char *label, struct ls_record *copy)
{
    struct ls_engine *eng = out->engine;
    struct ls_output_core *core = out->core;
    struct ls_label *l;

    if ((label == NULL || *label == '\0') && core) {
        label = core->emit_label;    /* fluentd's event_emitter: an output's @label */
    }
    if (label && *label) {
        l = find_label(eng, label);
        if (l == NULL) {
            return emit_error(eng, NULL, copy, "unknown label");
        }
    } else {
        l = core && core->label ? core->label : eng->root;
    }
    return route_record(eng, NULL, l, copy);
}

int ls_input_commit(struct ls_instance *in)
{
    return ls_engine_commit_outputs(in->engine);
}

int ls_engine_route(struct ls_engine *eng, struct ls_label *label, struct ls_record *rec)
{
    return route_record(eng, NULL, label, rec);
}

int ls_engine_commit_outputs(struct ls_engine *eng)
{
    size_t i;
    int rc = LS_OK;

    for (i = 0; i < eng->noutputs; i++) {
        struct ls_instance *out = eng->outputs[i];
        struct ls_output_core *core = out->core;
        if (core && core->buffer) {
            if (ls_buffer_commit(core->buffer) != LS_OK) {
                rc = LS_ERROR;
            }
        } else if (out->plugin->commit) {
            if (out->plugin->commit(out) != LS_OK) {
                rc = LS_ERROR;
            }
        }
    }
    return rc;
}

uint64_t ls_source_key(const void *p, size_t len)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ULL;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    return h ? h : 1;
}

static uint64_t source_durable(struct ls_engine *eng, uint64_t src, bool *known_any)
{
    uint64_t best = 0;
    bool any = false;
    size_t i;

    for (i = 0; i < eng->noutputs; i++) {
        struct ls_output_core *core = eng->outputs[i]->core;
        bool known = false;
        uint64_t pos;
        if (core == NULL || core->buffer == NULL) {
            continue;
        }
        pos = ls_buffer_durable_pos(core->buffer, src, &known);
        if (!known) {
            continue;
        }
        /* every output that has seen src must hold the records: take the minimum */
        if (!any || pos < best) {
            best = pos;
        }
        any = true;
    }
    *known_any = any;
    return any ? best : 0;
}

uint64_t ls_source_durable_pos(struct ls_engine *eng, uint64_t src)
{
    bool any;

    return source_durable(eng, src, &any);
}

bool ls_source_known(struct ls_engine *eng, uint64_t src)
{
    bool any;

    (void)source_durable(eng, src, &any);
    return any;
}

struct ls_hold {
    const void *owner;
    uint64_t src, pos;
};

/* A plain array: one entry per unfinished group (per concat stream), looked up once per input
 * commit. */
void ls_source_hold(struct ls_engine *eng, const void *owner, uint64_t src, uint64_t pos)
{
    size_t i;

    if (src == 0) {
        return;
    }
    for (i = 0; i < eng->nholds; i++) {
        if (eng->holds[i].owner == owner) {
            break;
        }
    }
    if (i == eng->nholds) {
        if (eng->nholds == eng->capholds) {
            eng->capholds = eng->capholds ? 2 * eng->capholds : 16;
            eng->holds = ls_realloc(eng->holds, eng->capholds * sizeof(*eng->holds));
        }
        eng->nholds++;
    }
    eng->holds[i] = (struct ls_hold){ owner, src, pos };
}

void ls_source_release(struct ls_engine *eng, const void *owner)
{
    for (size_t i = 0; i < eng->nholds; i++) {
        if (eng->holds[i].owner == owner) {
            eng->holds[i] = eng->holds[--eng->nholds];
            return;
        }
    }
}

bool ls_source_held(const struct ls_engine *eng, uint64_t src, uint64_t *pos)
{
    bool any = false;

    for (size_t i = 0; i < eng->nholds; i++) {
        if (eng->holds[i].src == src && (!any || eng->holds[i].pos < *pos)) {
            *pos = eng->holds[i].pos;
            any = true;
        }
    }
    return any;
}

bool ls_oneshot(const struct ls_engine *eng)
{
    return eng && eng->oneshot;
}

static bool all_inputs_done(struct ls_engine *eng);

void ls_input_done(struct ls_instance *in)
{
    struct ls_input_core *core = in->core;

    if (core && !core->done) {
        core->done = true;
        ls_plg_debug(in, "input reached the end of its data");
        /* --oneshot: flush now, not at the next 0.2 s tick; a backlog's chunks all close at
         * the end of its input, and until then the compressing threads have nothing to do */
        if (in->engine && in->engine->oneshot && all_inputs_done(in->engine)) {
            ev_feed_event(in->engine->loop, &in->engine->tick, EV_TIMER);
        }
    }
}

void ls_input_fail(struct ls_instance *in)
{
    /* sticky: tick_cb and ls_engine_run only ever raise exit_code */
    in->engine->exit_code = 1;
    ls_input_done(in);
}

void ls_engine_backpressure(struct ls_engine *eng, bool on)
{
    size_t i;

    if (eng == NULL || eng->inputs_paused == on) {
        return;
    }
    if (on) {
        /* only pause when some buffer is really over its limit */
        eng->inputs_paused = true;
    } else {
        for (i = 0; i < eng->noutputs; i++) {
            struct ls_output_core *core = eng->outputs[i]->core;
            if (core && core->buffer && ls_buffer_over_limit(core->buffer)) {
                return;
            }
        }
        eng->inputs_paused = false;
    }
    for (i = 0; i < eng->ninputs; i++) {
        struct ls_instance *in = eng->inputs[i];
        struct ls_input_core *core = in->core;
        if (on && !core->paused && in->plugin->pause) {
            core->paused = true;
            ls_plg_debug(in, "paused: an output buffer is full");
            in->plugin->pause(in);
        } else if (!on && core->paused && in->plugin->resume) {
            core->paused = false;
            ls_plg_debug(in, "resumed");
            in->plugin->resume(in);
        }
    }
}

/* ------------------------------------------------------------------ */
/* building                                                             */

bool ls_label_exists(struct ls_engine *eng, const char *name)
{
    return find_label(eng, name) != NULL;
}

static struct ls_label *find_label(struct ls_engine *eng, const char *name)
{
    size_t i;

    if (strcmp(name, "@ROOT") == 0) {
        return eng->root;
    }
    for (i = 0; i < eng->nlabels; i++) {
        if (strcmp(eng->labels[i]->name, name) == 0) {
            return eng->labels[i];
        }
    }
    return NULL;
}

static int add_filter(struct ls_engine *eng, struct ls_label *label, struct ls_conf_section *sec,
                      char *err, size_t errlen)
{
    struct ls_instance *f = ls_instance_create(eng, NULL, LS_PLUGIN_FILTER, NULL, sec, err, errlen);
    char perr[256];

    if (f == NULL) {
        return LS_ERROR;
    }
    eng->filters = ls_realloc(eng->filters, (eng->nfilters + 1) * sizeof(*eng->filters));
    eng->filters[eng->nfilters++] = f;
    f->core = label;     /* ls_filter_emit_next continues in this label */
    if (ls_label_add_rule(label, false, sec->arg, f, perr, sizeof(perr)) != LS_OK) {
        snprintf(err, errlen, "%s:%d: %s", sec->file, sec->line, perr);
        return LS_ERROR;
    }
    return LS_OK;
}

static int add_match(struct ls_engine *eng, struct ls_label *label, struct ls_conf_section *sec,
                     char *err, size_t errlen)
{
    struct ls_instance *out;
    char perr[256];

    eng->building_label = label;
    out = ls_output_create(eng, sec, err, errlen);
    if (out == NULL) {
        return LS_ERROR;
    }
    if (ls_label_add_rule(label, true, sec->arg, out, perr, sizeof(perr)) != LS_OK) {
        snprintf(err, errlen, "%s:%d: %s", sec->file, sec->line, perr);
        return LS_ERROR;
    }
    return LS_OK;
}

static int build_rules(struct ls_engine *eng, struct ls_label *label, struct ls_conf_section *parent,
                       char *err, size_t errlen)
{
    struct ls_conf_section *s;

    for (s = parent->children; s; s = s->next) {
        if (strcmp(s->name, "filter") == 0) {
            if (add_filter(eng, label, s, err, errlen) != LS_OK) {
                return LS_ERROR;
            }
        } else if (strcmp(s->name, "match") == 0) {
            if (add_match(eng, label, s, err, errlen) != LS_OK) {
                return LS_ERROR;
            }
        }
    }
    return LS_OK;
}

/*
 * <worker N> / <worker N-M>: fluentd runs N workers as processes, each with the top-level
 * sections and its own <worker> ones. logship is one process doing all the workers' work, so
 * every worker section's sources, filters, matches and labels are built once, in file order,
 * as if they were top level (a worker-1 source is not lost because worker 0 is the only
 * one). The ids are checked as fluentd checks them.
 */
static int check_worker(const struct ls_engine *eng, const struct ls_conf_section *s, char *err,
                        size_t errlen)
{
    long a, b;
    char *end;
    int64_t n = eng->sys.workers > 0 ? eng->sys.workers : 1;

    errno = 0;
    a = strtol(s->arg, &end, 10);
    b = a;
    if (end != s->arg && *end == '-') {
        const char *r = end + 1;
        b = strtol(r, &end, 10);
        if (end == r) {
            end = (char *)s->arg;
        }
    }
    if (end == s->arg || *end != '\0' || errno != 0) {
        snprintf(err, errlen, "%s:%d: <worker %s>: a worker id or a range (N-M) is required",
                 s->file, s->line, s->arg);
        return LS_ERROR;
    }
    if (a < 0 || b >= n || a > b) {
        snprintf(err, errlen, "%s:%d: worker id %s specified by <worker> directive is not "
                 "allowed. Available worker id is between 0 and %" PRId64, s->file, s->line,
                 s->arg, n - 1);
        return LS_ERROR;
    }
    return LS_OK;
}

/* Top-level sections, with each <worker>'s children in its place (check_worker and
 * build_root vet them first: a <worker> holds no <worker>). */
static struct ls_conf_section *walk_top(struct ls_conf_section *s)
{
    while (s && strcmp(s->name, "worker") == 0) {
        if (s->children) {
            return s->children;
        }
        s = s->next;
    }
    return s;
}

static struct ls_conf_section *next_top(struct ls_conf_section *s)
{
    if (s->next == NULL && s->parent && strcmp(s->parent->name, "worker") == 0) {
        return walk_top(s->parent->next);
    }
    return walk_top(s->next);
}

static int build_root(struct ls_engine *eng, struct ls_conf_section *root, char *err, size_t errlen)
{
    struct ls_conf_section *s;
    size_t i;

    for (s = root->children; s; s = s->next) {
        if (strcmp(s->name, "worker") == 0) {
            struct ls_conf_section *w;
            if (check_worker(eng, s, err, errlen) != LS_OK) {
                return LS_ERROR;
            }
            for (w = s->children; w; w = w->next) {
                if (strcmp(w->name, "source") != 0 && strcmp(w->name, "filter") != 0
                    && strcmp(w->name, "match") != 0 && strcmp(w->name, "label") != 0) {
                    snprintf(err, errlen, "%s:%d: <%s> is not allowed in <worker> (source, "
                             "filter, match or label)", w->file, w->line, w->name);
                    return LS_ERROR;
                }
            }
            if (s->children && eng->sys.workers > 1) {
                ls_info("%s:%d: <worker %s>: logship runs every worker's sections in its "
                            "one process", s->file, s->line, s->arg);
            }
        }
    }
    /* labels first: sources may name a label defined later in the file */
    for (s = walk_top(root->children); s; s = next_top(s)) {
        if (strcmp(s->name, "label") == 0) {
            struct ls_label *l;
            if (s->arg[0] != '@') {
                snprintf(err, errlen, "%s:%d: label name must start with '@' (got '%s')", s->file,
                         s->line, s->arg);
                return LS_ERROR;
            }
            if (strcmp(s->arg, "@ROOT") == 0) {
                snprintf(err, errlen, "%s:%d: @ROOT is reserved and cannot be declared", s->file,
                         s->line);
                return LS_ERROR;
            }
            if (find_label(eng, s->arg)) {
                snprintf(err, errlen, "%s:%d: label %s is defined twice", s->file, s->line, s->arg);
                return LS_ERROR;
            }
            l = ls_label_create(s->arg);
            eng->labels = ls_realloc(eng->labels, (eng->nlabels + 1) * sizeof(*eng->labels));
            eng->labels[eng->nlabels++] = l;
            if (strcmp(s->arg, "@ERROR") == 0) {
                eng->error_label = l;
            }
        }
    }
    for (s = walk_top(root->children); s; s = next_top(s)) {
        if (strcmp(s->name, "system") == 0) {
            continue;   /* handled before */
        } else if (strcmp(s->name, "source") == 0) {
            struct ls_instance *in;
            struct ls_input_core *core;
            const char *lbl;
            if (eng->sys.without_source) {
                continue;
            }
            in = ls_instance_create(eng, NULL, LS_PLUGIN_INPUT, NULL, s, err, errlen);
            if (in == NULL) {
                return LS_ERROR;
            }
            core = ls_calloc(1, sizeof(*core));
            in->core = core;
            eng->inputs = ls_realloc(eng->inputs, (eng->ninputs + 1) * sizeof(*eng->inputs));
            eng->inputs[eng->ninputs++] = in;
            lbl = ls_conf_get(s, "@label");
            if (lbl && *lbl) {
                core->label = find_label(eng, lbl);
                if (core->label == NULL) {
                    struct ls_conf_param *p = ls_conf_get_param(s, "@label");
                    snprintf(err, errlen, "%s:%d: unknown label %s", p->file, p->line, lbl);
                    return LS_ERROR;
                }
            }
        } else if (strcmp(s->name, "filter") == 0) {
            if (add_filter(eng, eng->root, s, err, errlen) != LS_OK) {
                return LS_ERROR;
            }
        } else if (strcmp(s->name, "match") == 0) {
            if (add_match(eng, eng->root, s, err, errlen) != LS_OK) {
                return LS_ERROR;
            }
        } else if (strcmp(s->name, "label") == 0) {
            if (build_rules(eng, find_label(eng, s->arg), s, err, errlen) != LS_OK) {
                return LS_ERROR;
            }
        } else {
            snprintf(err, errlen, "%s:%d: unknown directive <%s> (expected source, match, filter, "
                     "label, system or worker)", s->file, s->line, s->name);
            return LS_ERROR;
        }
    }
    /* a relabel output may name a label: checked by the plugin through ls_emit_to_label */
    for (i = 0; i < eng->noutputs; i++) {
        const char *lbl = eng->outputs[i]->conf ? ls_conf_get(eng->outputs[i]->conf, "@label")
                                                : NULL;
        if (lbl && *lbl && find_label(eng, lbl) == NULL) {
            struct ls_conf_param *p = ls_conf_get_param(eng->outputs[i]->conf, "@label");
            snprintf(err, errlen, "%s:%d: unknown label %s", p->file, p->line, lbl);
            return LS_ERROR;
        }
    }
    return LS_OK;
}

struct ls_engine *ls_engine_create(struct ls_conf *conf, const char *config_path, bool oneshot,
                                   bool dry_run, char *err, size_t errlen)
{
    struct ls_engine *eng = ls_calloc(1, sizeof(*eng));
    struct ls_conf_section *sys;

    eng->conf = conf;
    eng->config_path = config_path ? ls_strdup(config_path) : NULL;
    eng->oneshot = oneshot;
    eng->dry_run = dry_run;
    eng->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    eng->root = ls_label_create("@ROOT");
    err[0] = '\0';

    sys = ls_conf_child(conf->root, "system");
    if (ls_param_bind(system_params, sys, &eng->sys, err, errlen) != LS_OK) {
        goto fail;
    }
    if (sys && ls_conf_get(sys, "log_level")) {
        int l = ls_log_level_parse(eng->sys.log_level);
        if (l < 0) {
            struct ls_conf_param *p = ls_conf_get_param(sys, "log_level");
            snprintf(err, errlen, "%s:%d: invalid log_level '%s' (fatal, error, warn, info, debug, "
                     "trace)", p->file, p->line, eng->sys.log_level);
            goto fail;
        }
        if (ls_log_level == LS_LOG_INFO) {
            ls_log_level = l;    /* -v / -q on the command line win */
        }
    }
    if (sys) {
        /* <log> inside <system> is accepted: logship's log goes to -o or stderr */
        struct ls_conf_section *lg = ls_conf_child(sys, "log");
        if (lg) {
            struct ls_conf_param *p;
            for (p = lg->params; p; p = p->next) {
                p->used = true;
            }
        }
    }
    if (build_root(eng, conf->root, err, errlen) != LS_OK) {
        goto fail;
    }
    ls_conf_warn_unused(conf->root);
    return eng;

fail:
    if (err[0] == '\0') {
        snprintf(err, errlen, "configuration error");
    }
    ls_engine_destroy(eng);
    return NULL;
}

void ls_engine_destroy(struct ls_engine *eng)
{
    size_t i;

    if (eng == NULL) {
        return;
    }
    for (i = 0; i < eng->ninputs; i++) {
        ls_free(eng->inputs[i]->core);
        eng->inputs[i]->core = NULL;
        ls_instance_destroy(eng->inputs[i]);
    }
    for (i = 0; i < eng->nfilters; i++) {
        ls_instance_destroy(eng->filters[i]);
    }
    for (i = eng->noutputs; i > 0; i--) {
        ls_output_destroy(eng->outputs[i - 1]);
    }
    for (i = 0; i < eng->nlabels; i++) {
        ls_label_destroy(eng->labels[i]);
    }
    ls_label_destroy(eng->root);
    for (i = 0; i < LS_ARRAY_LEN(eng->reemit); i++) {
        ls_record_release(&eng->reemit[i]);
    }
    ls_free(eng->inputs);
    ls_free(eng->filters);
    ls_free(eng->holds);
    ls_free(eng->outputs);
    ls_free(eng->labels);
    ls_param_release(system_params, &eng->sys);
    ls_conf_destroy(eng->next_conf);
    ls_free(eng->config_path);
    if (eng->loop) {
        ev_loop_destroy(eng->loop);
    }
    ls_free(eng);
}

/* ------------------------------------------------------------------ */
/* running                                                              */

/*
 * Where the outputs' buffers stand, for the two waits on them (--oneshot's exit and the
 * shutdown drain):
 * OUT_PENDING  something is left to deliver; at shutdown, a buffer that does not flush at
 *              shutdown (a file buffer by default) counts only while a write is in flight:
 *              its staged and queued chunks stay on disk for the next start, and waiting for
 *              them would burn the whole drain deadline;
 * OUT_BUSY     a write is in flight (or the thread pool has work out);
 * OUT_FAILED   a chunk gave up for good.
 */
enum { OUT_PENDING = 1, OUT_BUSY = 2, OUT_FAILED = 4 };

static unsigned outputs_state(struct ls_engine *eng, bool at_shutdown)
{
    unsigned st = eng->work_inflight > 0 ? OUT_PENDING | OUT_BUSY : 0;

    for (size_t i = 0; i < eng->noutputs; i++) {
        struct ls_output_core *core = eng->outputs[i]->core;
        bool busy;
        if (core == NULL || core->buffer == NULL) {
            continue;
        }
        busy = ls_buffer_busy(core->buffer);
        if (ls_buffer_failed(core->buffer)) {
            st |= OUT_FAILED;
        }
        if (busy) {
            st |= OUT_BUSY | OUT_PENDING;
        } else if ((!at_shutdown || ls_buffer_flush_at_shutdown(core->buffer))
                   && !ls_buffer_idle(core->buffer)) {
            st |= OUT_PENDING;
        }
    }
    return st;
}

static void tick_buffers(struct ls_engine *eng)
{
    size_t i;

    for (i = 0; i < eng->noutputs; i++) {
        struct ls_output_core *core = eng->outputs[i]->core;
        if (core && core->buffer) {
            ls_buffer_tick(core->buffer);
        }
    }
}

static void enqueue_all(struct ls_engine *eng, bool shutdown)
{
    size_t i;

    for (i = 0; i < eng->noutputs; i++) {
        struct ls_output_core *core = eng->outputs[i]->core;
        if (core && core->buffer && (!shutdown || ls_buffer_flush_at_shutdown(core->buffer))) {
            ls_buffer_enqueue_all(core->buffer);
        }
    }
}

static bool all_inputs_done(struct ls_engine *eng)
{
    size_t i;

    for (i = 0; i < eng->ninputs; i++) {
        struct ls_input_core *core = eng->inputs[i]->core;
        if (!core->done) {
            return false;
        }
    }
    return true;
}

static void stop_inputs(struct ls_engine *eng)
{
    size_t i;

    /* filters that hold records (concat) let them go first, once, while the outputs still
     * take them: their holds on the inputs' positions end, and the inputs, stopping next,
     * persist what they have read (records that inputs flush as they stop pass such filters
     * as they are) */
    if (!eng->filters_stopped) {
        eng->filters_stopped = true;
        for (i = 0; i < eng->nfilters; i++) {
            if (eng->filters[i]->plugin->stop) {
                eng->filters[i]->plugin->stop(eng->filters[i]);
            }
        }
    }
    for (i = 0; i < eng->ninputs; i++) {
        struct ls_instance *in = eng->inputs[i];
        if (in->plugin->stop) {
            in->plugin->stop(in);
        }
    }
    if (eng->ninputs) {
        (void)ls_input_commit(eng->inputs[0]);
    }
}

/* --oneshot after the flush: stop as soon as the last chunk is delivered (or one failed for
 * good), whichever event delivered it; checked on the 0.2 s tick alone, every backlog ran up
 * to 0.2 s longer than its work. A prepare watcher, not a check watcher: libev runs check
 * watchers before the callbacks of the events just polled, so a check saw the last upload's
 * completion only after the next poll, which slept until the tick. */
static void exit_check_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct ls_engine *eng = ls_container_of(w, struct ls_engine, exit_check);
    unsigned st = outputs_state(eng, false);
    LS_UNUSED(revents);

    if (st & OUT_BUSY) {
        /* also when a chunk gave up: the writes of others in flight end first, as they
         * may yet deliver (the exit would abort them, and their chunks wait for the next
         * run) */
        return;
    }
    if (st & OUT_FAILED) {
        ls_err("oneshot: some chunks could not be delivered; they stay in the buffer");
        eng->exit_code = 1;
    } else if (!(st & OUT_PENDING)) {
        ls_info("oneshot: everything was delivered");
    } else {
        return;
    }
    ev_prepare_stop(loop, w);
    ev_break(loop, EVBREAK_ALL);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct ls_engine *eng = ls_container_of(w, struct ls_engine, tick);
    LS_UNUSED(revents);

    if (eng->oneshot && !eng->stopping && !eng->flushing_for_exit && all_inputs_done(eng)) {
        ls_info("oneshot: every input reached its end; flushing all chunks");
        stop_inputs(eng);
        eng->flushing_for_exit = true;
        enqueue_all(eng, false);
        ev_prepare_init(&eng->exit_check, exit_check_cb);
        ev_prepare_start(loop, &eng->exit_check);
    }
    tick_buffers(eng);
}

void ls_engine_stop(struct ls_engine *eng)
{
    eng->stopping = true;
    ev_break(eng->loop, EVBREAK_ALL);
}

void ls_engine_flush(struct ls_engine *eng)
{
    ls_info("flushing all buffers (SIGUSR1)");
    if (eng->ninputs) {
        (void)ls_input_commit(eng->inputs[0]);
    }
    enqueue_all(eng, false);
    tick_buffers(eng);
}

int ls_signals_init(void)
{
    sigset_t set;

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) {
        return ls_error("sigprocmask() failed (%d: %s)", errno, strerror(errno));
    }
    sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sig_fd < 0) {
        return ls_error("signalfd() failed (%d: %s)", errno, strerror(errno));
    }
    return LS_OK;
}

/* Move what the kernel holds for us into sig_seen (standard signals coalesce anyway). */
static void signals_read(void)
{
    struct signalfd_siginfo si;

    while (sig_fd >= 0 && read(sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
            if (!(sig_seen & SIG_SEEN_TERM)) {
                ls_info("received signal %u; shutting down", si.ssi_signo);
            }
            sig_seen |= SIG_SEEN_TERM;
        } else if (si.ssi_signo == SIGUSR1) {
            sig_seen |= SIG_SEEN_USR1;
        } else if (si.ssi_signo == SIGHUP) {
            sig_seen |= SIG_SEEN_HUP;
        }
    }
}

bool ls_stop_requested(void)
{
    signals_read();
    return (sig_seen & SIG_SEEN_TERM) != 0;
}

/*
 * HUP: the log file is reopened, and the next configuration is validated by main's hook
 * while this pipeline keeps running; only a valid one stops it (main then starts the new
 * one). A HUP that comes while the pipeline is already stopping stays pending for the next.
 */
static void reload(struct ls_engine *eng)
{
    ls_info("received SIGHUP; reloading the configuration");
    ls_log_reopen();
    if (eng->reload == NULL) {
        return;
    }
    eng->next_conf = eng->reload(eng->reload_arg);
    if (eng->next_conf) {
        ls_engine_stop(eng);
    }
}

static void signal_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct ls_engine *eng = ls_container_of(w, struct ls_engine, sig_io);
    LS_UNUSED(loop);
    LS_UNUSED(revents);

    signals_read();
    if (sig_seen & SIG_SEEN_TERM) {
        if (!eng->term_seen) {
            /* a stop wins over a reload under way: the new configuration is not started */
            eng->term_seen = true;
            ls_conf_destroy(eng->next_conf);
            eng->next_conf = NULL;
            ls_engine_stop(eng);
        }
        return;
    }
    if (sig_seen & SIG_SEEN_USR1) {
        sig_seen &= ~(unsigned)SIG_SEEN_USR1;
        ls_engine_flush(eng);
    }
    if ((sig_seen & SIG_SEEN_HUP) && !eng->stopping) {
        sig_seen &= ~(unsigned)SIG_SEEN_HUP;
        reload(eng);
    }
}

/* Run the loop until nothing is in flight or the deadline passes (shutdown drain). A chunk
 * that gave up ends the wait once the other writes in flight have ended: they may yet
 * deliver, and a memory buffer's would be lost. */
static void drain(struct ls_engine *eng, double seconds)
{
    double deadline = ls_mono_now() + seconds;

    while (ls_mono_now() < deadline) {
        unsigned st;
        tick_buffers(eng);
        st = outputs_state(eng, true);
        if (!(st & OUT_PENDING) || ((st & OUT_FAILED) && !(st & OUT_BUSY))) {
            break;
        }
        ev_run(eng->loop, EVRUN_ONCE);
    }
}

/* After the drain: a memory buffer's leftovers die with the process. Say how many, as an
 * error, and make the exit status say it too (a silent exit 0 looked like a clean stop). */
static void report_unsent(struct ls_engine *eng)
{
    size_t i, chunks;
    uint64_t records;

    for (i = 0; i < eng->noutputs; i++) {
        struct ls_output_core *core = eng->outputs[i]->core;
        if (core && core->buffer && ls_buffer_unsent(core->buffer, &records, &chunks)) {
            ls_plg_error(eng->outputs[i], "stopped with %llu records in %zu chunks of the memory "
                         "buffer not delivered: they are dropped (a file buffer would keep them "
                         "for the next start)", (unsigned long long)records, chunks);
            eng->exit_code = 1;
        }
    }
}

static int start_each(struct ls_instance **v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (v[i]->plugin->start && v[i]->plugin->start(v[i]) != LS_OK) {
            ls_plg_error(v[i], "failed to start");
            return LS_ERROR;
        }
    }
    return LS_OK;
}

/* --oneshot's last word: what this run did, for the cron mail or the log */
static void log_totals(struct ls_engine *eng)
{
    uint64_t in = 0, out = 0, chunks = 0, bytes = 0, retries = 0, errors = 0;

    for (size_t i = 0; i < eng->noutputs; i++) {
        struct ls_output_core *core = eng->outputs[i]->core;

        if (core && core->buffer) {
            ls_buffer_progress_flush(core->buffer);
        }
    }
    for (size_t i = 0; i < eng->ninputs; i++) {
        in += eng->inputs[i]->metrics.emit_records;
    }
    for (size_t i = 0; i < eng->noutputs; i++) {
        const struct ls_metrics *m = &eng->outputs[i]->metrics;

        out += m->write_records;
        chunks += m->chunks_flushed;
        bytes += m->write_bytes;
        retries += m->retries;
        errors += m->errors;
    }
    ls_info("oneshot totals: %llu records read, %llu delivered in %llu chunks (%llu bytes), "
            "%llu retries, %llu failed writes, %.1fs", (unsigned long long)in,
            (unsigned long long)out, (unsigned long long)chunks, (unsigned long long)bytes,
            (unsigned long long)retries, (unsigned long long)errors,
            ls_mono_now() - eng->started_mono);
}

void ls_engine_hold_start(struct ls_engine *eng)
{
    eng->start_holds++;
}

void ls_engine_release_start(struct ls_engine *eng, bool ok)
{
    if (eng->start_holds > 0) {
        eng->start_holds--;
    }
    if (!ok) {
        eng->start_failed = true;
    }
}

static int check_each(struct ls_instance **v, size_t n)
{
    int bad = 0;
    char why[PATH_MAX + 128];

    for (size_t i = 0; i < n; i++) {
        struct ls_output_core *core = v[i]->plugin->kind == LS_PLUGIN_OUTPUT ? v[i]->core : NULL;
        const char *dir = core && core->buffer ? ls_buffer_dir(core->buffer) : NULL;

        if (dir && !ls_dir_writable(dir, why, sizeof(why))) {
            ls_plg_error(v[i], "%s:%d: buffer path: %s", v[i]->conf ? v[i]->conf->file : "?",
                         v[i]->conf ? v[i]->conf->line : 0, why);
            bad++;
        }
        if (v[i]->plugin->check) {
            bad += v[i]->plugin->check(v[i]);
        }
    }
    return bad;
}

int ls_engine_check_local(struct ls_engine *eng)
{
    return check_each(eng->inputs, eng->ninputs) + check_each(eng->outputs, eng->noutputs) +
           check_each(eng->filters, eng->nfilters);
}

int ls_engine_check_remote(struct ls_engine *eng)
{
    int rc;

    eng->check_remote = true;
    ls_work_init(eng, 2);
    if (eng->start_holds == 0) {
        ls_info("check-remote: no output has a remote start-up check");
    }
    while (eng->start_holds > 0 && !eng->start_failed) {
        ev_run(eng->loop, EVRUN_ONCE);
    }
    rc = eng->start_failed ? 1 : 0;
    ls_work_shutdown(eng);
    ls_http_shutdown(eng);
    return rc;
}

int ls_engine_run(struct ls_engine *eng)
{
    size_t i;

    if (sig_fd >= 0) {
        ev_io_init(&eng->sig_io, signal_cb, sig_fd, EV_READ);
        ev_io_start(eng->loop, &eng->sig_io);
    }
    ev_timer_init(&eng->tick, tick_cb, 0.2, 0.2);
    ev_timer_start(eng->loop, &eng->tick);
    ls_work_init(eng, 2);
    eng->started_mono = ls_mono_now();

    for (i = 0; i < eng->noutputs; i++) {
        struct ls_output_core *core = eng->outputs[i]->core;
        if (core && core->buffer && ls_buffer_start(core->buffer) != LS_OK) {
            eng->exit_code = 1;
            goto out;
        }
    }
    /* outputs look at what the buffers recovered (a crash's leftovers) before new data comes */
    if (start_each(eng->outputs, eng->noutputs) != LS_OK) {
        eng->exit_code = 1;
        goto out;
    }
    if (start_each(eng->filters, eng->nfilters) != LS_OK) {
        eng->exit_code = 1;
        goto out;
    }
    ls_fluentlog_start(eng);
    /* no input reads a line before the outputs' start-up checks have answered */
    while (eng->start_holds > 0 && !eng->start_failed && !eng->stopping) {
        ev_run(eng->loop, EVRUN_ONCE);
    }
    if (eng->start_failed) {
        ls_error("an output's start-up check failed; not starting (see above)");
        eng->exit_code = 1;
        goto out;
    }
    if (eng->stopping) {
        goto out;
    }
    if (start_each(eng->inputs, eng->ninputs) != LS_OK) {
        eng->exit_code = 1;
        goto out;
    }
    if (eng->oneshot && eng->ninputs == 0) {
        ls_info("oneshot: no inputs; flushing buffers");
    }
    if (ls_stop_requested()) {
        /* TERM during start (an input's start may have given up early for it) */
        eng->term_seen = eng->stopping = true;
        goto out;
    }
    ls_info("logship started");
    if (sig_fd >= 0) {
        /* signals that came while no pipeline ran (a HUP during a reload) are acted on now */
        ev_feed_event(eng->loop, &eng->sig_io, EV_READ);
    }
    ev_run(eng->loop, 0);

out:
    ls_fluentlog_stop(eng);
    stop_inputs(eng);
    if (!eng->oneshot || eng->stopping) {
        enqueue_all(eng, true);
        drain(eng, 30.0);
    }
    report_unsent(eng);
    ls_work_shutdown(eng);
    ls_http_shutdown(eng);
    ev_timer_stop(eng->loop, &eng->tick);
    if (eng->flushing_for_exit) {
        ev_prepare_stop(eng->loop, &eng->exit_check);
    }
    ev_io_stop(eng->loop, &eng->sig_io);
    if (eng->oneshot && eng->exit_code == 0 && eng->stopping) {
        eng->exit_code = 1;     /* interrupted before everything was delivered */
    }
    if (eng->oneshot) {
        log_totals(eng);
    }
    ls_info("logship stopped");
    return eng->exit_code;
}
