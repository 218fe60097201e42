/*
 * flowcounter_simple.c - fluent-plugin-flowcounter-simple (bundled with td-agent 4 and
 * fluent-package): a filter and an output that count records (indicator num) or their
 * MessagePack bytes (byte) and log the count every unit, e.g.
 *
 *     plugin:out_flowcounter_simple<TAB>count:4521<TAB>indicator:num<TAB>unit:second
 *
 * As lib/fluent/plugin/flowcounter_simple.rb: nothing is logged for a unit without records;
 * the filter passes every record on unchanged, the output discards it. The plugin's thread
 * looks every 0.1 s whether a unit has passed since the last report; so does the timer here.
 */
#include "plugin.h"
#include "msgpack.h"
#include "log.h"

enum { IND_NUM, IND_BYTE };

struct fcs {
    char *indicator;
    char *unit;
    char *comment;
    bool is_byte;
    double tick;
    double last;
    uint64_t count;
    struct ls_arena arena;     /* nested values decoded to measure their MessagePack size */
    struct ls_timer *timer;
};

static const struct ls_param fcs_params[] = {
    { "indicator", LS_P_STR, "num", 0, offsetof(struct fcs, indicator),
      "count records (num) or their MessagePack bytes (byte)", NULL, NULL, 0, 0 },
    { "unit", LS_P_STR, "second", 0, offsetof(struct fcs, unit),
      "log the count every second, minute, hour or day", NULL, NULL, 0, 0 },
    { "comment", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct fcs, comment),
      "added to the log line as comment:...", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static int fcs_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                    size_t errlen)
{
    struct fcs *c = ins->ctx;
    static const struct { const char *name; double tick; } units[] = {
        { "second", 1 }, { "minute", 60 }, { "hour", 3600 }, { "day", 86400 },
    };

    ls_arena_init(&c->arena, 1024);
    if (strcmp(c->indicator, "num") != 0 && strcmp(c->indicator, "byte") != 0) {
        ls_conf_param_error(sec, "indicator", err, errlen,
                            "flowcounter-simple count allows num/byte");
        return LS_ERROR;
    }
    c->is_byte = strcmp(c->indicator, "byte") == 0;
    for (size_t i = 0; i < LS_ARRAY_LEN(units); i++) {
        if (strcmp(c->unit, units[i].name) == 0) {
            c->tick = units[i].tick;
        }
    }
    if (c->tick == 0) {
        ls_conf_param_error(sec, "unit", err, errlen,
                            "flowcounter-simple unit allows second/minute/hour/day");
        return LS_ERROR;
    }
    return LS_OK;
}

static void fcs_count(struct ls_instance *ins, const struct ls_record *rec)
{
    struct fcs *c = ins->ctx;

    if (c->is_byte) {
        c->count += ls_msgpack_record_size(&c->arena, rec);
        ls_arena_reset(&c->arena);
    } else {
        c->count++;
    }
}

static void fcs_tick(struct ls_timer *t, void *arg)
{
    struct ls_instance *ins = arg;
    struct fcs *c = ins->ctx;
    double now = ls_mono_now();
    LS_UNUSED(t);

    if (now - c->last < c->tick) {
        return;
    }
    c->last = now;
    if (c->count > 0) {
        const char *kind = ins->plugin->kind == LS_PLUGIN_FILTER ? "filter" : "out";
        if (c->comment) {
            ls_plg_info(ins, "plugin:%s_flowcounter_simple\tcount:%llu\tindicator:%s\tunit:%s"
                        "\tcomment:%s", kind, (unsigned long long)c->count, c->indicator,
                        c->unit, c->comment);
        } else {
            ls_plg_info(ins, "plugin:%s_flowcounter_simple\tcount:%llu\tindicator:%s\tunit:%s",
                        kind, (unsigned long long)c->count, c->indicator, c->unit);
        }
    }
    c->count = 0;
}

static int fcs_start(struct ls_instance *ins)
{
    struct fcs *c = ins->ctx;

    c->last = ls_mono_now();
    c->timer = ls_timer_new(ins, fcs_tick, ins);
    ls_timer_start(c->timer, 0.1, 0.1);
    return LS_OK;
}

static void fcs_stop(struct ls_instance *ins)
{
    struct fcs *c = ins->ctx;

    ls_timer_free(c->timer);
    c->timer = NULL;
}

static void fcs_destroy(struct ls_instance *ins)
{
    struct fcs *c = ins->ctx;

    ls_timer_free(c->timer);
    ls_arena_release(&c->arena);
}

static int fcs_filter(struct ls_instance *ins, struct ls_record *rec)
{
    fcs_count(ins, rec);
    return LS_OK;
}

static int fcs_emit(struct ls_instance *ins, const struct ls_record *rec)
{
    fcs_count(ins, rec);
    return LS_OK;
}

const struct ls_plugin ls_plugin_filter_flowcounter_simple = {
    .name = "flowcounter_simple",
    .kind = LS_PLUGIN_FILTER,
    .description = "log how many records (or bytes) pass every unit "
                   "(fluent-plugin-flowcounter-simple); passes them on",
    .params = fcs_params,
    .ctx_size = sizeof(struct fcs),
    .init = fcs_init,
    .destroy = fcs_destroy,
    .start = fcs_start,
    .stop = fcs_stop,
    .filter = fcs_filter,
};

const struct ls_plugin ls_plugin_out_flowcounter_simple = {
    .name = "flowcounter_simple",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "log how many records (or bytes) arrive every unit "
                   "(fluent-plugin-flowcounter-simple); then discards them",
    .params = fcs_params,
    .ctx_size = sizeof(struct fcs),
    .init = fcs_init,
    .destroy = fcs_destroy,
    .start = fcs_start,
    .stop = fcs_stop,
    .output_flags = LS_OUT_UNBUFFERED,
    .emit = fcs_emit,
};
