/*
 * filter_stdout.c - fluentd's filter_stdout: print each record to logship's own log (stderr,
 * or the file of -o) and pass it on unchanged. The line is the <format>'s (default @type
 * stdout: "2026-11-21 12:00:00.000000000 +0000 tag: {json}", the record part chosen by
 * output_type); <inject> fields appear in the printed line only. The v0.12 flat form
 * (`output_type`, `format`, `include_time_key`...) is read as fluentd's compat layer reads it.
 */
#include "plugin.h"
#include "inject.h"
#include "log.h"

#include <stdio.h>

struct fs_ctx {
    char *output_type;
    struct ls_instance *formatter;
    struct ls_inject *inject;
    struct ls_record scratch;
    struct ls_arena arena;
    struct ls_buf line;
};

static const struct ls_param fs_params[] = {
    { "output_type", LS_P_STR, "json", LS_PF_NO_STORE, 0,
      "v0.12 flat form: the record part of the stdout format (json, hash, ltsv...)", NULL, NULL,
      0, 0 },
    { "format", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "v0.12 flat form: formatter @type (default stdout); or use a <format> section", NULL,
      NULL, 0, 0 },
    LS_PARAM_END
};

/* fluentd's compat layer: these flat keys make a <format> (lib/fluent/plugin_helper/compat_parameters.rb) */
static const char *const flat_format_keys[] = {
    "delimiter", "force_quotes", "keys", "fields", "json_parser", "label_delimiter",
    "output_time", "output_tag", "localtime", "utc", "timezone", "message_key", "add_newline",
    "output_type", NULL
};

static struct ls_conf_section *flat_format(struct ls_conf_section *sec)
{
    struct ls_conf_section *fs = NULL;
    struct ls_conf_param *fmt = ls_conf_get_param(sec, "format");
    size_t i;

    for (i = 0; flat_format_keys[i] && fmt == NULL; i++) {
        if (ls_conf_get_param(sec, flat_format_keys[i])) {
            break;
        }
    }
    if (fmt == NULL && flat_format_keys[i] == NULL) {
        return NULL;
    }
    fs = ls_conf_add_child(sec, "format", "");
    fs->file = sec->file;
    fs->line = sec->line;
    if (fmt) {
        fmt->used = true;
        ls_conf_set(fs, "@type", fmt->value, fmt->file, fmt->line);
    }
    for (i = 0; flat_format_keys[i]; i++) {
        struct ls_conf_param *p = ls_conf_get_param(sec, flat_format_keys[i]);
        if (p) {
            p->used = true;
            ls_conf_set(fs, p->key, p->value, p->file, p->line);
        }
    }
    return fs;
}

static int fs_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct fs_ctx *ctx = ins->ctx;
    struct ls_conf_section *fs = ls_conf_child(sec, "format");
    struct ls_conf_section *is = ls_conf_child(sec, "inject");

    ls_arena_init(&ctx->arena, 1024);
    ls_record_init(&ctx->scratch, &ctx->arena);
    ls_buf_init(&ctx->line, 0);
    if (fs == NULL) {
        fs = flat_format(sec);
    }
    ctx->formatter = ls_instance_create(ins->engine, ins, LS_PLUGIN_FORMATTER, "stdout", fs, err,
                                        errlen);
    if (ctx->formatter == NULL) {
        return LS_ERROR;
    }
    err[0] = '\0';
    ctx->inject = ls_inject_create(is ? is : sec, err, errlen);
    return ctx->inject == NULL && err[0] ? LS_ERROR : LS_OK;
}

static int fs_filter(struct ls_instance *ins, struct ls_record *rec)
{
    struct fs_ctx *ctx = ins->ctx;
    const struct ls_record *r = rec;

    if (ctx->inject) {
        ls_record_clear(&ctx->scratch);
        r = ls_inject_apply(ctx->inject, rec, &ctx->scratch);
    }
    ls_buf_reset(&ctx->line);
    if (ls_formatter_format(ctx->formatter, r, &ctx->line) == LS_OK) {
        ls_log_write_raw(ctx->line.p, ctx->line.len);
    } else {
        ls_plg_warn(ins, "cannot format the record of tag \"%.*s\"", (int)rec->tag_len, rec->tag);
    }
    if (ctx->inject) {
        ls_arena_reset(&ctx->arena);
    }
    return LS_OK;
}

static void fs_destroy(struct ls_instance *ins)
{
    struct fs_ctx *ctx = ins->ctx;

    ls_instance_destroy(ctx->formatter);
    ls_inject_destroy(ctx->inject);
    ls_record_release(&ctx->scratch);
    ls_arena_release(&ctx->arena);
    ls_buf_release(&ctx->line);
}

const struct ls_plugin ls_plugin_filter_stdout = {
    .name = "stdout",
    .kind = LS_PLUGIN_FILTER,
    .description = "print each record to logship's log and pass it on (fluentd's filter_stdout)",
    .params = fs_params,
    .ctx_size = sizeof(struct fs_ctx),
    .init = fs_init,
    .destroy = fs_destroy,
    .filter = fs_filter,
};
