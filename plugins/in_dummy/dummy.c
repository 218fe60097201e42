/*
 * dummy.c - fluentd's in_sample (formerly in_dummy): emit fixed records at
 * a rate. `sample` is a JSON hash or an array of hashes used in turn;
 * `count` (a logship extension, like Fluent Bit's `samples`) stops after N
 * records, which is what makes --oneshot runs of test pipelines finish.
 */
#include "plugin.h"
#include "json.h"
#include "log.h"

struct dummy_ctx {
    char *tag;
    int64_t rate;
    int64_t size;
    char *auto_increment_key;
    bool suspend;
    char *sample;
    int64_t count;
    /* state */
    char **objects;          /* each element of the sample array, as JSON text */
    size_t nobjects;
    size_t next;
    int64_t emitted;
    int64_t seq;
    struct ls_timer *timer;
    struct ls_arena arena;
    struct ls_record rec;
    bool paused;
};

static const struct ls_param dummy_params[] = {
    { "tag", LS_P_STR, NULL, LS_PF_REQUIRED, offsetof(struct dummy_ctx, tag),
      "tag of the generated records", NULL, NULL, 0, 0 },
    { "rate", LS_P_INT, "1", 0, offsetof(struct dummy_ctx, rate),
      "emits per second", NULL, NULL, 1, 1e9 },
    { "size", LS_P_INT, "1", 0, offsetof(struct dummy_ctx, size),
      "records per emit", NULL, NULL, 1, 1e6 },
    { "auto_increment_key", LS_P_STR, NULL, LS_PF_NULLABLE,
      offsetof(struct dummy_ctx, auto_increment_key),
      "add an increasing integer under this key", NULL, NULL, 0, 0 },
    { "suspend", LS_P_BOOL, "false", 0, offsetof(struct dummy_ctx, suspend),
      "accepted for compatibility (the sequence restarts at 0)", NULL, NULL, 0, 0 },
    { "sample", LS_P_STR, "[{\"message\":\"sample\"}]", 0, offsetof(struct dummy_ctx, sample),
      "JSON hash, or array of hashes emitted in turn", "dummy", NULL, 0, 0 },
    { "count", LS_P_INT, "0", 0, offsetof(struct dummy_ctx, count),
      "stop after this many records (0: never); ends the input for --oneshot", NULL, NULL,
      0, 9e18 },
    LS_PARAM_END
};

/* Split a JSON array of objects into the objects' texts (the value is valid JSON). */
static int split_objects(struct dummy_ctx *ctx, char *err, size_t errlen)
{
    const char *s = ctx->sample;
    size_t len = strlen(s), i = 0;

    while (i < len && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r')) {
        i++;
    }
    if (i < len && s[i] == '{') {
        ctx->objects = ls_calloc(1, sizeof(char *));
        ctx->objects[0] = ls_strdup(s + i);
        ctx->nobjects = 1;
        return LS_OK;
    }
    if (i >= len || s[i] != '[') {
        snprintf(err, errlen, "'sample' must be a JSON hash or an array of hashes");
        return LS_ERROR;
    }
    i++;
    while (i < len) {
        size_t start, depth = 0;
        bool in_str = false;
        while (i < len && (s[i] == ' ' || s[i] == ',' || s[i] == '\n' || s[i] == '\t' ||
                           s[i] == '\r')) {
            i++;
        }
        if (i >= len || s[i] == ']') {
            break;
        }
        if (s[i] != '{') {
            snprintf(err, errlen, "'sample' array elements must be hashes");
            return LS_ERROR;
        }
        start = i;
        for (; i < len; i++) {
            char c = s[i];
            if (in_str) {
                if (c == '\\') {
                    i++;
                } else if (c == '"') {
                    in_str = false;
                }
            } else if (c == '"') {
                in_str = true;
            } else if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                depth--;
                if (depth == 0) {
                    i++;
                    break;
                }
            }
        }
        ctx->objects = ls_realloc(ctx->objects, (ctx->nobjects + 1) * sizeof(char *));
        ctx->objects[ctx->nobjects++] = ls_strndup(s + start, i - start);
    }
    if (ctx->nobjects == 0) {
        snprintf(err, errlen, "'sample' is empty");
        return LS_ERROR;
    }
    return LS_OK;
}

static int dummy_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct dummy_ctx *ctx = ins->ctx;
    struct ls_conf_param *p = ls_conf_get_param(sec, "sample");
    char msg[256];
    size_t i;

    if (p == NULL) {
        p = ls_conf_get_param(sec, "dummy");
    }
    ls_arena_init(&ctx->arena, 4096);
    ls_record_init(&ctx->rec, &ctx->arena);
    if (split_objects(ctx, msg, sizeof(msg)) != LS_OK) {
        snprintf(err, errlen, "%s:%d: %s", p ? p->file : sec->file, p ? p->line : sec->line, msg);
        return LS_ERROR;
    }
    for (i = 0; i < ctx->nobjects; i++) {
        ls_record_clear(&ctx->rec);
        if (ls_json_parse_object(ctx->objects[i], strlen(ctx->objects[i]), &ctx->rec) != LS_OK) {
            snprintf(err, errlen, "%s:%d: 'sample' is not valid JSON: %s",
                     p ? p->file : sec->file, p ? p->line : sec->line, ctx->objects[i]);
            return LS_ERROR;
        }
    }
    ls_arena_reset(&ctx->arena);
    return LS_OK;
}

static void dummy_emit_batch(struct ls_timer *t, void *arg)
{
    struct ls_instance *ins = arg;
    struct dummy_ctx *ctx = ins->ctx;
    int64_t i;
    LS_UNUSED(t);

    if (ctx->paused) {
        return;
    }
    for (i = 0; i < ctx->size; i++) {
        const char *obj;
        int rc;

        if (ctx->count && ctx->emitted >= ctx->count) {
            break;
        }
        obj = ctx->objects[ctx->next];
        ls_record_clear(&ctx->rec);
        ctx->rec.tag = ctx->tag;
        ctx->rec.tag_len = strlen(ctx->tag);
        ls_wall_now(&ctx->rec.time.sec, &ctx->rec.time.nsec);
        (void)ls_json_parse_object(obj, strlen(obj), &ctx->rec);
        if (ctx->auto_increment_key) {
            struct ls_value v = ls_vint(ctx->seq);
            ls_record_set(&ctx->rec, ctx->auto_increment_key, strlen(ctx->auto_increment_key), &v);
        }
        rc = ls_emit(ins, &ctx->rec);
        ls_arena_reset(&ctx->arena);
        if (rc == LS_AGAIN) {
            break;      /* back-pressure: try this record again at the next tick */
        }
        ctx->seq++;
        ctx->emitted++;
        ctx->next = (ctx->next + 1) % ctx->nobjects;
    }
    (void)ls_input_commit(ins);
    if (ctx->count && ctx->emitted >= ctx->count) {
        ls_timer_stop(ctx->timer);
        ls_input_done(ins);
    }
}

static int dummy_start(struct ls_instance *ins)
{
    struct dummy_ctx *ctx = ins->ctx;
    double every = 1.0 / (double)ctx->rate;

    ctx->timer = ls_timer_new(ins, dummy_emit_batch, ins);
    /* in oneshot mode there is no reason to wait between emits */
    ls_timer_start(ctx->timer, ls_oneshot(ins->engine) ? 0.0 : every,
                   ls_oneshot(ins->engine) ? 0.0001 : every);
    return LS_OK;
}

static void dummy_stop(struct ls_instance *ins)
{
    struct dummy_ctx *ctx = ins->ctx;

    ls_timer_free(ctx->timer);
    ctx->timer = NULL;
}

static void dummy_pause(struct ls_instance *ins)
{
    ((struct dummy_ctx *)ins->ctx)->paused = true;
}

static void dummy_resume(struct ls_instance *ins)
{
    ((struct dummy_ctx *)ins->ctx)->paused = false;
}

static void dummy_destroy(struct ls_instance *ins)
{
    struct dummy_ctx *ctx = ins->ctx;
    size_t i;

    ls_timer_free(ctx->timer);
    for (i = 0; i < ctx->nobjects; i++) {
        ls_free(ctx->objects[i]);
    }
    ls_free(ctx->objects);
    ls_record_release(&ctx->rec);
    ls_arena_release(&ctx->arena);
}

const struct ls_plugin ls_plugin_in_dummy = {
    .name = "sample",
    .aliases = "dummy",
    .kind = LS_PLUGIN_INPUT,
    .description = "generate fixed sample records at a rate (fluentd's in_sample/in_dummy)",
    .params = dummy_params,
    .ctx_size = sizeof(struct dummy_ctx),
    .init = dummy_init,
    .destroy = dummy_destroy,
    .start = dummy_start,
    .stop = dummy_stop,
    .pause = dummy_pause,
    .resume = dummy_resume,
};
