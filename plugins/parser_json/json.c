/*
 * json.c - the `json` parser: one JSON object per line (fluentd's
 * parser_json). Top-level keys become fields; string values without
 * escapes are slices of the line, nested objects/arrays stay raw JSON text
 * (ls_json_parse_object). The time key defaults to "time" read as a float
 * epoch (fluentd's json default), or with time_format when one is set;
 * a string time that is not a number is also tried with the flexible
 * parser instead of becoming a wrong epoch.
 */
#include "plugin.h"
#include "parser.h"
#include "json.h"

struct json_ctx {
    int json_parser;
    int64_t stream_buffer_size;
};

static const struct ls_param json_params[] = {
    { "json_parser", LS_P_ENUM, "oj", 0, offsetof(struct json_ctx, json_parser),
      "accepted for compatibility; one built-in reader is used", NULL, "oj|yajl|json", 0, 0 },
    { "stream_buffer_size", LS_P_SIZE, "8192", 0, offsetof(struct json_ctx, stream_buffer_size),
      "accepted for compatibility (yajl only)", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static int json_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                     size_t errlen)
{
    LS_UNUSED(sec);
    return ls_parser_set_defaults(ins, "time", NULL,
                                  ls_parser_time_format(ins) ? -1 : LS_PARSER_TT_FLOAT, err,
                                  errlen);
}

static int json_parse(struct ls_instance *ins, const char *line, size_t len,
                      struct ls_record *rec)
{
    unsigned start = rec->nfields;
    size_t i = 0;

    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) {
        i++;
    }
    if (i < len && line[i] == '[') {
        ls_parser_set_error(ins, "top-level JSON array (one event per element) is not supported");
        return LS_DECLINED;
    }
    if (ls_json_parse_object(line, len, rec) != LS_OK) {
        rec->nfields = start;
        ls_parser_set_error(ins, "invalid JSON object");
        return LS_DECLINED;
    }
    return LS_OK;
}

const struct ls_plugin ls_plugin_parser_json = {
    .name = "json",
    .kind = LS_PLUGIN_PARSER,
    .description = "one JSON object per line",
    .params = json_params,
    .ctx_size = sizeof(struct json_ctx),
    .init = json_init,
    .parse = json_parse,
};
