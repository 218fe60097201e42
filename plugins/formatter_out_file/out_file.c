/*
 * out_file.c - fluentd's out_file formatter, the default for file and s3
 * outputs: "<time><delimiter><tag><delimiter><json>\n".
 *
 * The time is ISO 8601 in local time by default ("2026-11-21T12:00:00+09:00",
 * "...Z" with utc), formatted once per second by the shared time formatter;
 * the record goes straight from the fields into the chunk buffer through
 * the JSON writer, so a line costs one pass over its bytes.
 *
 * delimiter follows fluentd exactly: a value containing SPACE or COMMA
 * (any case) selects ' ' or ','; anything else, even a literal ",", is TAB.
 */
#include "plugin.h"
#include "inject.h"
#include "json.h"

struct fo_ctx {
    bool output_time;
    bool output_tag;
    char *delimiter;
    int time_type;
    char *time_format;
    bool localtime;
    bool utc;
    char *timezone;
    int newline;
    char delim;
    struct ls_time_formatter *timef;
};

#define C(f) offsetof(struct fo_ctx, f)

static const struct ls_param fo_params[] = {
    { "output_time", LS_P_BOOL, "true", 0, C(output_time), "print the time first", NULL, NULL, 0, 0 },
    { "output_tag", LS_P_BOOL, "true", 0, C(output_tag), "print the tag after the time", NULL, NULL, 0, 0 },
    { "delimiter", LS_P_STR, "\t", 0, C(delimiter), "TAB (default), SPACE or COMMA", NULL, NULL, 0, 0 },
    { "time_type", LS_P_ENUM, "string", 0, C(time_type), "string, unixtime or float", NULL, LS_TIME_TYPE_ENUMS, 0, 0 },
    { "time_format", LS_P_STR, NULL, 0, C(time_format), "strftime format (default ISO 8601)", NULL, NULL, 0, 0 },
    { "localtime", LS_P_BOOL, "true", 0, C(localtime), "format the time in local time", NULL, NULL, 0, 0 },
    { "utc", LS_P_BOOL, "false", 0, C(utc), "format the time in UTC", NULL, NULL, 0, 0 },
    { "timezone", LS_P_STR, NULL, 0, C(timezone), "zone: +09:00 or Asia/Tokyo", NULL, NULL, 0, 0 },
    { "newline", LS_P_ENUM, "lf", 0, C(newline), "line ending: lf or crlf", NULL, "lf|crlf", 0, 0 },
    LS_PARAM_END
};

static int fo_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct fo_ctx *c = ins->ctx;
    bool localtime;
    char terr[200];

    if (strcasestr(c->delimiter, "SPACE")) {
        c->delim = ' ';
    } else if (strcasestr(c->delimiter, "COMMA")) {
        c->delim = ',';
    } else {
        c->delim = '\t';
    }
    if (ls_time_localtime_of(sec, &localtime, err, errlen) != LS_OK) {
        return LS_ERROR;
    }
    c->timef = ls_time_formatter_create((enum ls_time_type)c->time_type, c->time_format, localtime, c->timezone,
                                        false, terr, sizeof(terr));
    if (c->timef == NULL) {
        snprintf(err, errlen, "%s:%d: %s", sec ? sec->file : "(default)", sec ? sec->line : 0, terr);
        return LS_ERROR;
    }
    return LS_OK;
}

static void fo_destroy(struct ls_instance *ins)
{
    struct fo_ctx *c = ins->ctx;

    ls_time_formatter_destroy(c->timef);
}

static int fo_format(struct ls_instance *ins, const struct ls_record *rec, struct ls_buf *out)
{
    struct fo_ctx *c = ins->ctx;
    size_t start = out->len;

    if (c->output_time
        && (ls_time_formatter_put(c->timef, &rec->time, out) != LS_OK || ls_buf_putc(out, c->delim) != LS_OK)) {
        goto full;
    }
    if (c->output_tag
        && (ls_buf_append(out, rec->tag ? rec->tag : "", rec->tag ? rec->tag_len : 0) != LS_OK
            || ls_buf_putc(out, c->delim) != LS_OK)) {
        goto full;
    }
    if (ls_json_put_record(out, rec) != LS_OK
        || ls_buf_append(out, c->newline ? "\r\n" : "\n", c->newline ? 2 : 1) != LS_OK) {
        goto full;
    }
    return LS_OK;
full:
    out->len = start;
    return LS_AGAIN;
}

const struct ls_plugin ls_plugin_formatter_out_file = {
    .name = "out_file",
    .kind = LS_PLUGIN_FORMATTER,
    .description = "time<TAB>tag<TAB>JSON per line (fluentd's default for file and s3)",
    .params = fo_params,
    .ctx_size = sizeof(struct fo_ctx),
    .init = fo_init,
    .destroy = fo_destroy,
    .format = fo_format,
};
