/*
 * flowcounter.c - fluent-plugin-flowcounter's output: counts the records (and the bytes of
 * count_keys) it receives per tag, and every unit emits the counts and their per-second rates
 * as a record under `tag` (default "flowcount"), e.g.
 *
 *     {"nginx.access_count":120,"nginx.access_bytes":40213,"nginx.access_count_rate":2.0,...}
 *
 * As lib/fluent/plugin/out_flowcounter.rb (0.4 / 1.x): aggregate tag (keys "<tag>_count",
 * "<tag>_bytes" in order of first sight, input_tag_remove_prefix taken off) or all ("count",
 * "bytes"); output_style tagged emits one record per tag with "tag"; bytes are the sum of the
 * count_keys' values' sizes, or with count_keys * the record's MessagePack size; a rate is
 * floor(count * 100 / seconds) / 100. A tag seen once stays in every later record with 0
 * unless delete_idle. Without timestamp_counting the unit is measured on the monotonic
 * clock from the previous emit and the record has the current time; with it, units are
 * aligned to the wall clock (to timestamp_timezone for day) and the record has the unit's
 * end. The record is emitted into the <match>'s @label, else from the top of its label.
 */
#include "plugin.h"
#include "msgpack.h"
#include "timefmt.h"
#include "log.h"

#include <math.h>

enum { U_SECOND, U_MINUTE, U_HOUR, U_DAY };
enum { AGG_TAG, AGG_ALL };
enum { OS_JOINED, OS_TAGGED };

struct counter {
    char *name;                 /* "<name>_count" or "count" etc. */
    size_t len;
    uint64_t value;
};

struct flowcounter {
    int unit;
    bool timestamp_counting;
    char *timestamp_timezone;
    int aggregate;
    int output_style;
    char *tag;
    char *input_tag_remove_prefix;
    struct ls_strv count_keys;
    char *delimiter;
    bool delete_idle;

    double tick;
    bool count_all, count_bytes;
    int tz_offset;
    double last;                /* monotonic, or wall seconds with timestamp_counting */
    struct counter *c;
    size_t n;
    struct ls_arena arena;
    struct ls_buf name;
    struct ls_timer *timer;
};

#define F(f) offsetof(struct flowcounter, f)

static const struct ls_param fc_params[] = {
    { "unit", LS_P_ENUM, "minute", 0, F(unit), "emit the counts every", NULL,
      "second|minute|hour|day", 0, 0 },
    { "timestamp_counting", LS_P_BOOL, "false", 0, F(timestamp_counting),
      "units aligned to the wall clock; the record has the unit's end as its time", NULL, NULL,
      0, 0 },
    { "timestamp_timezone", LS_P_STR, NULL, LS_PF_NULLABLE, F(timestamp_timezone),
      "with timestamp_counting and unit day: the offset days start at (-0700)", NULL, NULL, 0,
      0 },
    { "aggregate", LS_P_ENUM, "tag", 0, F(aggregate), "count per tag, or all together", NULL,
      "tag|all", 0, 0 },
    { "output_style", LS_P_ENUM, "joined", 0, F(output_style),
      "one record for all tags, or one per tag (tagged, with aggregate tag)", NULL,
      "joined|tagged", 0, 0 },
    { "tag", LS_P_STR, "flowcount", 0, F(tag), "tag of the emitted records", NULL, NULL, 0, 0 },
    { "input_tag_remove_prefix", LS_P_STR, NULL, LS_PF_NULLABLE, F(input_tag_remove_prefix),
      "taken off the counted tags' names (with its dot)", NULL, NULL, 0, 0 },
    { "count_keys", LS_P_ARRAY, NULL, 0, F(count_keys),
      "fields whose sizes are counted as bytes (* : the whole record's MessagePack)", NULL, NULL,
      0, 0 },
    { "delimiter", LS_P_STR, "_", 0, F(delimiter), "between the tag's name and count/bytes",
      NULL, NULL, 0, 0 },
    { "delete_idle", LS_P_BOOL, "false", 0, F(delete_idle),
      "drop tags without records from the next record (default: they stay, with 0)", NULL,
      NULL, 0, 0 },
    LS_PARAM_END
};

static struct counter *counter_find(struct flowcounter *fc, const char *name, size_t len)
{
    for (size_t i = 0; i < fc->n; i++) {
        if (fc->c[i].len == len && memcmp(fc->c[i].name, name, len) == 0) {
            return &fc->c[i];
        }
    }
    return NULL;
}

static struct counter *counter_get(struct flowcounter *fc, const char *name, size_t len)
{
    struct counter *c = counter_find(fc, name, len);

    if (c) {
        return c;
    }
    fc->c = ls_realloc(fc->c, (fc->n + 1) * sizeof(*fc->c));
    fc->c[fc->n].name = ls_malloc(len + 1);
    memcpy(fc->c[fc->n].name, name, len);
    fc->c[fc->n].name[len] = '\0';
    fc->c[fc->n].len = len;
    fc->c[fc->n].value = 0;
    return &fc->c[fc->n++];
}

static void counters_reset(struct flowcounter *fc)
{
    if (fc->delete_idle && fc->aggregate == AGG_TAG) {
        for (size_t i = 0; i < fc->n; i++) {
            ls_free(fc->c[i].name);
        }
        fc->n = 0;
        return;
    }
    for (size_t i = 0; i < fc->n; i++) {
        fc->c[i].value = 0;
    }
}

static void countup(struct flowcounter *fc, const char *name, size_t nlen, uint64_t bytes)
{
    if (fc->aggregate == AGG_ALL) {
        fc->c[0].value++;
        if (fc->count_bytes) {
            fc->c[1].value += bytes;
        }
        return;
    }
    ls_buf_reset(&fc->name);
    ls_buf_append(&fc->name, name, nlen);
    ls_buf_append(&fc->name, fc->delimiter, strlen(fc->delimiter));
    ls_buf_append(&fc->name, "count", 5);
    counter_get(fc, fc->name.p, fc->name.len)->value++;
    if (fc->count_bytes) {
        fc->name.len -= 5;
        ls_buf_append(&fc->name, "bytes", 5);
        counter_get(fc, fc->name.p, fc->name.len)->value += bytes;
    }
}

static int fc_emit(struct ls_instance *ins, const struct ls_record *rec)
{
    struct flowcounter *fc = ins->ctx;
    const char *name = rec->tag;
    size_t nlen = rec->tag_len;
    uint64_t bytes = 0;

    if (fc->input_tag_remove_prefix) {
        size_t plen = strlen(fc->input_tag_remove_prefix);
        if (nlen > plen + 1 && memcmp(name, fc->input_tag_remove_prefix, plen) == 0
            && name[plen] == '.') {
            name += plen + 1;
            nlen -= plen + 1;
        } else if (nlen == plen && memcmp(name, fc->input_tag_remove_prefix, plen) == 0) {
            nlen = 0;   /* the plugin's tag[len+1..] is nil here and raises; an empty name */
        }
    }
    if (fc->count_all) {
        bytes = ls_msgpack_record_size(&fc->arena, rec);
        ls_arena_reset(&fc->arena);
    } else if (fc->count_bytes) {
        for (size_t i = 0; i < fc->count_keys.n; i++) {
            const struct ls_field *f = ls_record_get(rec, fc->count_keys.v[i],
                                                     strlen(fc->count_keys.v[i]));
            size_t len = 0;
            if (f) {
                ls_value_to_text(&fc->arena, &f->v, &len);
            }
            bytes += len;
        }
        ls_arena_reset(&fc->arena);
    }
    countup(fc, name, nlen, bytes);
    return LS_OK;
}

/* floor(count * 100 / step) / 100.0, the plugin's rate */
static double rate(uint64_t v, double step)
{
    return floor(((double)v * 100.0) / step) / 100.0;
}

/* Emit one record: the n counters cs under names, their rates after them, and "tag" when
 * tagged_name is set (output_style tagged). */
static void emit_counts(struct ls_instance *ins, const struct ls_time *now, double step,
                        const struct counter *const *cs, size_t n, const char **names,
                        const char *tagged_name, size_t tagged_len)
{
    struct flowcounter *fc = ins->ctx;
    struct ls_record rec;
    struct ls_value v;

    ls_arena_reset(&fc->arena);
    ls_record_init(&rec, &fc->arena);
    for (size_t i = 0; i < n; i++) {
        v = ls_vint((int64_t)cs[i]->value);
        ls_record_add(&rec, names[i], strlen(names[i]), &v);
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        char *k = ls_arena_alloc(&fc->arena, len + 6);
        memcpy(k, names[i], len);
        memcpy(k + len, "_rate", 6);
        v = ls_vfloat(rate(cs[i]->value, step));
        ls_record_add(&rec, k, len + 5, &v);
    }
    if (tagged_name) {
        v = ls_vstr(tagged_name, tagged_len);
        ls_record_add(&rec, "tag", 3, &v);
    }
    rec.tag = fc->tag;
    rec.tag_len = strlen(fc->tag);
    rec.time = *now;
    (void)ls_output_reemit(ins, NULL, &rec);
    ls_record_release(&rec);
}

static void flush_emit(struct ls_instance *ins, const struct ls_time *now, double step)
{
    struct flowcounter *fc = ins->ctx;
    size_t n = fc->n, dlen = strlen(fc->delimiter);
    const struct counter **cs = ls_malloc((n + 1) * sizeof(*cs));
    const char **names = ls_malloc((n + 1) * sizeof(*names));

    if (fc->output_style == OS_JOINED) {
        for (size_t i = 0; i < n; i++) {
            cs[i] = &fc->c[i];
            names[i] = fc->c[i].name;
        }
        emit_counts(ins, now, step, cs, n, names, NULL, 0);
    } else {
        /* one record per "<name><delimiter>count" counter, in order */
        for (size_t i = 0; i < n; i++) {
            const struct counter *c = &fc->c[i];
            size_t k = 0, nlen;
            if (c->len < dlen + 5 || memcmp(c->name + c->len - dlen - 5, fc->delimiter, dlen) != 0
                || memcmp(c->name + c->len - 5, "count", 5) != 0) {
                continue;
            }
            nlen = c->len - dlen - 5;
            cs[k] = c;
            names[k++] = "count";
            if (fc->count_bytes) {
                ls_buf_reset(&fc->name);
                ls_buf_append(&fc->name, c->name, nlen + dlen);
                ls_buf_append(&fc->name, "bytes", 5);
                /* countup made it with the count; nothing is added while cs points in */
                cs[k] = counter_find(fc, fc->name.p, fc->name.len);
                if (cs[k]) {
                    names[k++] = "bytes";
                }
            }
            emit_counts(ins, now, step, cs, k, names, c->name, nlen);
        }
    }
    ls_free(cs);
    ls_free(names);
    counters_reset(fc);
}

static void fc_tick(struct ls_timer *t, void *arg)
{
    struct ls_instance *ins = arg;
    struct flowcounter *fc = ins->ctx;
    struct ls_time now;
    double step;
    LS_UNUSED(t);

    ls_wall_now(&now.sec, &now.nsec);
    if (fc->timestamp_counting) {
        if ((double)now.sec - fc->last < fc->tick) {
            return;
        }
        fc->last += fc->tick;
        now.sec = (int64_t)fc->last;
        now.nsec = 0;
        step = fc->tick;
    } else {
        double m = ls_mono_now();
        if (m - fc->last < fc->tick) {
            return;
        }
        step = m - fc->last;
        fc->last = m;
    }
    flush_emit(ins, &now, step);
    /* records emitted from a timer: buffered outputs write their frames now */
    (void)ls_input_commit(ins);
}

static int fc_start(struct ls_instance *ins)
{
    struct flowcounter *fc = ins->ctx;

    if (fc->timestamp_counting) {
        int64_t s;
        int32_t ns;
        ls_wall_now(&s, &ns);
        fc->last = (double)(s - s % (int64_t)fc->tick - fc->tz_offset);
    } else {
        fc->last = ls_mono_now();
    }
    fc->timer = ls_timer_new(ins, fc_tick, ins);
    ls_timer_start(fc->timer, 0.5, 0.5);
    return LS_OK;
}

static int fc_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                   size_t errlen)
{
    struct flowcounter *fc = ins->ctx;
    static const double ticks[] = { 1, 60, 3600, 86400 };

    ls_arena_init(&fc->arena, 1024);
    ls_buf_init(&fc->name, 0);
    fc->tick = ticks[fc->unit];
    if (fc->output_style == OS_TAGGED && fc->aggregate != AGG_TAG) {
        snprintf(err, errlen, "%s:%d: flowcounter aggregate must be 'tag' when output_style is "
                 "'tagged'", sec->file, sec->line);
        return LS_ERROR;
    }
    if (fc->count_keys.n) {
        fc->count_all = fc->count_keys.n == 1 && strcmp(fc->count_keys.v[0], "*") == 0;
        fc->count_bytes = true;
    }
    if (fc->timestamp_counting) {
        if (fc->unit == U_SECOND) {
            snprintf(err, errlen, "%s:%d: timestamp_counting cannot be enabled with unit: second",
                     sec->file, sec->line);
            return LS_ERROR;
        }
        if (fc->unit == U_DAY) {
            if (fc->timestamp_timezone == NULL) {
                snprintf(err, errlen, "%s:%d: timestamp_counting requires timestamp_timezone to "
                         "be configured (e.g., '-0700') if unit is day", sec->file, sec->line);
                return LS_ERROR;
            }
            if (ls_tz_offset(fc->timestamp_timezone, 0, &fc->tz_offset) != LS_OK) {
                ls_conf_param_error(sec, "timestamp_timezone", err, errlen,
                                    "invalid timestamp_timezone value (specify like '-0700')");
                return LS_ERROR;
            }
        }
    }
    if (fc->aggregate == AGG_ALL) {
        counter_get(fc, "count", 5);
        if (fc->count_bytes) {
            counter_get(fc, "bytes", 5);
        }
    }
    return LS_OK;
}

static void fc_destroy(struct ls_instance *ins)
{
    struct flowcounter *fc = ins->ctx;

    ls_timer_free(fc->timer);
    for (size_t i = 0; i < fc->n; i++) {
        ls_free(fc->c[i].name);
    }
    ls_free(fc->c);
    ls_arena_release(&fc->arena);
    ls_buf_release(&fc->name);
}

const struct ls_plugin ls_plugin_out_flowcounter = {
    .name = "flowcounter",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "count records and bytes per tag and emit the counts and rates every unit "
                   "(fluent-plugin-flowcounter)",
    .params = fc_params,
    .ctx_size = sizeof(struct flowcounter),
    .init = fc_init,
    .destroy = fc_destroy,
    .start = fc_start,
    .output_flags = LS_OUT_UNBUFFERED,
    .emit = fc_emit,
};
