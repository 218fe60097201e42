/*
 * copy.c - fluentd's out_copy: give every record to each <store>.
 *
 * Each store is a full output with its own buffer, created and owned by the
 * engine. A store that fails stops the rest unless it is marked
 * `<store ignore_error>` (fluentd v1 semantics). A store that pushes back
 * (LS_AGAIN) makes the whole emit push back; stores that already took the
 * record drop it when it comes again, by its (src, pos).
 */
#include "plugin.h"
#include "log.h"

#include <stdio.h>

struct copy_ctx {
    char *copy_mode;
    struct ls_instance **stores;
    bool *ignore_error;
    size_t n;
};

static const struct ls_param copy_params[] = {
    { "copy_mode", LS_P_ENUM, "no_copy", 0, offsetof(struct copy_ctx, copy_mode),
      "accepted for compatibility; records are never modified by outputs", NULL,
      "no_copy|shallow|deep|marshal", 0, 0 },
    { "deep_copy", LS_P_BOOL, "false", LS_PF_NO_STORE | LS_PF_DEPRECATED, 0,
      "fluentd's old name for copy_mode shallow; accepted", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static int copy_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct copy_ctx *ctx = ins->ctx;
    struct ls_conf_section *s;

    for (s = sec->children; s; s = s->next) {
        struct ls_instance *out;
        if (strcmp(s->name, "store") != 0) {
            continue;
        }
        out = ls_output_create(ins->engine, s, err, errlen);
        if (out == NULL) {
            return LS_ERROR;
        }
        ctx->stores = ls_realloc(ctx->stores, (ctx->n + 1) * sizeof(*ctx->stores));
        ctx->ignore_error = ls_realloc(ctx->ignore_error, (ctx->n + 1) * sizeof(bool));
        ctx->stores[ctx->n] = out;
        ctx->ignore_error[ctx->n] = strstr(s->arg, "ignore_error") != NULL;
        ctx->n++;
    }
    if (ctx->n == 0) {
        snprintf(err, errlen, "%s:%d: <match> with @type copy needs at least one <store>",
                 sec->file, sec->line);
        return LS_ERROR;
    }
    return LS_OK;
}

static int copy_emit(struct ls_instance *ins, const struct ls_record *rec)
{
    struct copy_ctx *ctx = ins->ctx;
    int result = LS_OK;
    size_t i;

    for (i = 0; i < ctx->n; i++) {
        int rc = ls_output_emit(ctx->stores[i], (struct ls_record *)rec);
        if (rc == LS_AGAIN) {
            result = LS_AGAIN;
        } else if (rc == LS_ERROR && !ctx->ignore_error[i]) {
            return LS_ERROR;
        }
    }
    return result;
}

static void copy_destroy(struct ls_instance *ins)
{
    struct copy_ctx *ctx = ins->ctx;

    /* the stores belong to the engine */
    ls_free(ctx->stores);
    ls_free(ctx->ignore_error);
}

const struct ls_plugin ls_plugin_out_copy = {
    .name = "copy",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "copy every record to each <store> output (fluentd's out_copy)",
    .params = copy_params,
    .ctx_size = sizeof(struct copy_ctx),
    .init = copy_init,
    .destroy = copy_destroy,
    .output_flags = LS_OUT_UNBUFFERED,
    .emit = copy_emit,
};
