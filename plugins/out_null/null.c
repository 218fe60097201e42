/*
 * null.c - fluentd's out_null: accept and discard. Used to measure the
 * input and parser stages alone.
 */
#include "plugin.h"

struct null_ctx {
    int unused;
};

static int null_emit(struct ls_instance *ins, const struct ls_record *rec)
{
    LS_UNUSED(rec);
    ins->metrics.write_records++;
    return LS_OK;
}

const struct ls_plugin ls_plugin_out_null = {
    .name = "null",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "discard every record (fluentd's out_null)",
    .ctx_size = sizeof(struct null_ctx),
    .output_flags = LS_OUT_UNBUFFERED,
    .emit = null_emit,
};
