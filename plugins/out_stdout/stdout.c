/*
 * stdout.c - fluentd's out_stdout: print each record, by default as
 * "2026-11-21 12:00:00.000000000 +0000 tag: {json}".
 *
 * Records are formatted into a batch buffer and written when the input
 * commits, so an input's position never advances past a record that is not
 * yet on stdout (the acknowledgement rule), without a write(2) per record.
 */
#include "plugin.h"
#include "log.h"

#include <stdio.h>

struct stdout_ctx {
    char *output_type;
    struct ls_instance *formatter;
    struct ls_buf batch;
    uint64_t batch_records;
};

static const struct ls_param stdout_params[] = {
    { "output_type", LS_P_STR, "json", 0, offsetof(struct stdout_ctx, output_type),
      "v0.12 name: formatter of the record part (json, hash, ltsv...)", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static int stdout_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                       size_t errlen)
{
    struct stdout_ctx *ctx = ins->ctx;
    struct ls_conf_section *fs = ls_conf_child(sec, "format");

    ls_buf_init(&ctx->batch, 0);
    ctx->formatter = ls_instance_create(ins->engine, ins, LS_PLUGIN_FORMATTER, "stdout", fs, err,
                                        errlen);
    return ctx->formatter ? LS_OK : LS_ERROR;
}

static int stdout_emit(struct ls_instance *ins, const struct ls_record *rec)
{
    struct stdout_ctx *ctx = ins->ctx;

    if (ls_formatter_format(ctx->formatter, rec, &ctx->batch) != LS_OK) {
        return LS_ERROR;
    }
    ctx->batch_records++;
    if (ctx->batch.len >= 64 * 1024) {
        return ins->plugin->commit(ins);
    }
    return LS_OK;
}

static int stdout_commit(struct ls_instance *ins)
{
    struct stdout_ctx *ctx = ins->ctx;

    if (ctx->batch.len == 0) {
        return LS_OK;
    }
    if (ls_write_all(1, ctx->batch.p, ctx->batch.len) != LS_OK) {
        ls_plg_error(ins, "write() to stdout failed (%d: %s)", errno, strerror(errno));
        return LS_ERROR;
    }
    ins->metrics.write_records += ctx->batch_records;
    ins->metrics.write_bytes += ctx->batch.len;
    ctx->batch_records = 0;
    ls_buf_reset(&ctx->batch);
    return LS_OK;
}

static void stdout_destroy(struct ls_instance *ins)
{
    struct stdout_ctx *ctx = ins->ctx;

    if (ctx->batch.len) {
        (void)stdout_commit(ins);
    }
    ls_instance_destroy(ctx->formatter);
    ls_buf_release(&ctx->batch);
}

const struct ls_plugin ls_plugin_out_stdout = {
    .name = "stdout",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "print records to standard output (fluentd's out_stdout)",
    .params = stdout_params,
    .ctx_size = sizeof(struct stdout_ctx),
    .init = stdout_init,
    .destroy = stdout_destroy,
    .output_flags = LS_OUT_UNBUFFERED | LS_OUT_INJECT,
    .emit = stdout_emit,
    .commit = stdout_commit,
};
