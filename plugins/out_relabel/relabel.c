/*
 * relabel.c - fluentd's out_relabel: send records on to the label named by
 * the <match>'s @label.
 */
#include "plugin.h"

#include <stdio.h>

struct relabel_ctx {
    char *label;
};

static const struct ls_param relabel_params[] = {
    { "@label", LS_P_STR, NULL, LS_PF_REQUIRED, offsetof(struct relabel_ctx, label),
      "the label to send records to", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static int relabel_emit(struct ls_instance *ins, const struct ls_record *rec)
{
    struct relabel_ctx *ctx = ins->ctx;

    return ls_emit_to_label(ins, ctx->label, (struct ls_record *)rec);
}

const struct ls_plugin ls_plugin_out_relabel = {
    .name = "relabel",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "route records to another <label> (fluentd's out_relabel)",
    .params = relabel_params,
    .ctx_size = sizeof(struct relabel_ctx),
    .output_flags = LS_OUT_UNBUFFERED,
    .emit = relabel_emit,
};
