/*
 * syslog.c - the `syslog` parser (fluentd's parser_syslog, regexp engine).
 *
 * RFC 3164 ("Nov 21 12:00:00 host ident[pid]: msg") is the default;
 * message_format rfc5424 reads "<pri>1 2026-11-21T12:00:00.1Z host app
 * pid msgid [sd] msg", and auto picks per line by the "<pri>version "
 * prefix, as fluentd does. The regexes are fluentd's. pri becomes an
 * integer. RFC 3164 times go through the common layer (time_format, default
 * "%b %d %H:%M:%S", year = current year); RFC 5424 times are read here with
 * rfc5424_time_format, falling back to ISO 8601 without a fraction (fluentd
 * keeps a second parser for that case too).
 */
#include "plugin.h"
#include "parser.h"
#include "timefmt.h"

enum { SYSLOG_RFC3164, SYSLOG_RFC5424, SYSLOG_AUTO };

struct syslog_ctx {
    int message_format;
    bool with_priority;
    char *rfc5424_time_format;
    int parser_engine;
    bool support_colonless_ident;
    struct ls_regex *re3164;
    struct ls_regex *re5424;
    struct ls_regex *re5424_pri;
    struct ls_timefmt *tf5424;
    struct ls_timefmt *tf5424_iso;
};

static const struct ls_param syslog_params[] = {
    { "message_format", LS_P_ENUM, "rfc3164", 0, offsetof(struct syslog_ctx, message_format),
      "rfc3164, rfc5424, or auto (detect per line)", NULL, "rfc3164|rfc5424|auto", 0, 0 },
    { "with_priority", LS_P_BOOL, "false", 0, offsetof(struct syslog_ctx, with_priority),
      "rfc3164 lines start with <pri>", NULL, NULL, 0, 0 },
    { "rfc5424_time_format", LS_P_STR, "%Y-%m-%dT%H:%M:%S.%L%z", 0,
      offsetof(struct syslog_ctx, rfc5424_time_format), "time format of rfc5424 lines", NULL,
      NULL, 0, 0 },
    { "parser_engine", LS_P_ENUM, "regexp", 0, offsetof(struct syslog_ctx, parser_engine),
      "accepted for compatibility (both use the same regexps here)", NULL, "regexp|string", 0,
      0 },
    { "support_colonless_ident", LS_P_BOOL, "true", 0,
      offsetof(struct syslog_ctx, support_colonless_ident),
      "accepted for compatibility (the regexp engine always allows it)", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static const char syslog_re3164[] =
    "^(?<time>[^ ]*\\s*[^ ]* [^ ]*) (?<host>[^ ]*) (?<ident>[^ :\\[]*)(?:\\[(?<pid>[0-9]+)\\])?"
    "(?:[^\\:]*\\:)? *(?<message>.*)$";
static const char syslog_re3164_pri[] =
    "^\\<(?<pri>[0-9]+)\\>(?<time>[^ ]* {1,2}[^ ]* [^ ]*) (?<host>[^ ]*) (?<ident>[^ :\\[]*)"
    "(?:\\[(?<pid>[0-9]+)\\])?(?:[^\\:]*\\:)? *(?<message>.*)$";
#define SYSLOG_5424_BODY                                                                        \
    "(?<time>[^ ]+) (?<host>[!-~]{1,255}) (?<ident>[!-~]{1,48}) (?<pid>[!-~]{1,128}) "          \
    "(?<msgid>[!-~]{1,32}) (?<extradata>(?:\\-|(?:\\[.*?(?<!\\\\)\\])+))(?: (?<message>.+))?"
static const char syslog_re5424[] = "\\A" SYSLOG_5424_BODY "\\z";
static const char syslog_re5424_pri[] = "\\A<(?<pri>[0-9]{1,3})\\>[1-9]\\d{0,2} " SYSLOG_5424_BODY "\\z";

static int syslog_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                       size_t errlen)
{
    struct syslog_ctx *ctx = ins->ctx;
    const char *file = sec ? sec->file : "(default)";
    int line = sec ? sec->line : 0;
    char e[256];

    e[0] = '\0';
    ctx->re3164 = ls_regex_compile(ctx->with_priority ? syslog_re3164_pri : syslog_re3164, false,
                                   e, sizeof(e));
    ctx->re5424 = ls_regex_compile(syslog_re5424, true, e, sizeof(e));
    ctx->re5424_pri = ls_regex_compile(syslog_re5424_pri, true, e, sizeof(e));
    if (!ctx->re3164 || !ctx->re5424 || !ctx->re5424_pri) {
        snprintf(err, errlen, "syslog parser: %s", e);
        return LS_ERROR;
    }
    if (ls_parser_set_defaults(ins, "time", "%b %d %H:%M:%S", -1, err, errlen) != LS_OK) {
        return LS_ERROR;
    }
    ctx->tf5424 = ls_timefmt_create(ctx->rfc5424_time_format, ls_parser_zone(ins), e, sizeof(e));
    ctx->tf5424_iso = ls_timefmt_create("%iso8601", ls_parser_zone(ins), e, sizeof(e));
    if (!ctx->tf5424 || !ctx->tf5424_iso) {
        snprintf(err, errlen, "%s:%d: rfc5424_time_format: %s", file, line, e);
        return LS_ERROR;
    }
    return LS_OK;
}

static void syslog_destroy(struct ls_instance *ins)
{
    struct syslog_ctx *ctx = ins->ctx;

    ls_regex_free(ctx->re3164);
    ls_regex_free(ctx->re5424);
    ls_regex_free(ctx->re5424_pri);
    ls_timefmt_destroy(ctx->tf5424);
    ls_timefmt_destroy(ctx->tf5424_iso);
}

/* "<13>1 " : fluentd's REGEXP_DETECT_RFC5424 = /^\<[0-9]{1,3}\>[1-9]\d{0,2}/ */
static bool syslog_is_5424(const char *p, size_t len)
{
    size_t i = 1, n = 0;

    if (len < 4 || p[0] != '<') {
        return false;
    }
    while (i < len && (unsigned)(p[i] - '0') < 10 && n < 4) {
        i++;
        n++;
    }
    if (n < 1 || n > 3 || i >= len || p[i] != '>') {
        return false;
    }
    i++;
    return i < len && p[i] >= '1' && p[i] <= '9';
}

/* pri string -> integer, as fluentd's record['pri'] = value.to_i */
static void syslog_pri_to_int(struct ls_record *rec)
{
    struct ls_field *f = ls_record_get(rec, "pri", 3);
    int64_t v = 0;
    size_t i;

    if (f == NULL || f->v.type != LS_V_STR) {
        return;
    }
    for (i = 0; i < f->v.u.s.len && i < 4; i++) {
        v = v * 10 + (f->v.u.s.p[i] - '0');
    }
    f->v = ls_vint(v);
}

/* fluentd's value.chomp! on message: one trailing \n, \r\n or \r (RFC 5424 senders such as
   rsyslog's SyslogProtocol23Format end each message with a newline) */
static void syslog_chomp_message(struct ls_record *rec)
{
    struct ls_field *f = ls_record_get(rec, "message", 7);
    size_t n;

    if (f == NULL || f->v.type != LS_V_STR || (n = f->v.u.s.len) == 0) {
        return;
    }
    if (f->v.u.s.p[n - 1] == '\n') {
        n--;
        if (n && f->v.u.s.p[n - 1] == '\r') {
            n--;
        }
    } else if (f->v.u.s.p[n - 1] == '\r') {
        n--;
    }
    f->v.u.s.len = n;
}

static int syslog_parse(struct ls_instance *ins, const char *line, size_t len,
                        struct ls_record *rec)
{
    struct syslog_ctx *ctx = ins->ctx;
    bool r5424 = ctx->message_format == SYSLOG_RFC5424 ||
                 (ctx->message_format == SYSLOG_AUTO && syslog_is_5424(line, len));
    struct ls_field *tf;
    struct ls_time t;
    int rc;

    if (!r5424) {
        rc = ls_regex_match_record(ctx->re3164, line, len, rec);
        if (rc == LS_OK) {
            syslog_pri_to_int(rec);
            syslog_chomp_message(rec);
        }
        return rc;
    }
    /* an empty line (an empty datagram) has no first byte to look at */
    rc = ls_regex_match_record(len > 0 && line[0] == '<' ? ctx->re5424_pri : ctx->re5424, line,
                               len, rec);
    if (rc != LS_OK) {
        return rc;
    }
    syslog_pri_to_int(rec);
    syslog_chomp_message(rec);
    tf = ls_record_get(rec, "time", 4);
    if (tf == NULL || tf->v.type != LS_V_STR) {
        return LS_DECLINED;
    }
    if (ls_timefmt_parse(ctx->tf5424, tf->v.u.s.p, tf->v.u.s.len, &t) != LS_OK &&
        ls_timefmt_parse(ctx->tf5424_iso, tf->v.u.s.p, tf->v.u.s.len, &t) != LS_OK) {
        ls_parser_set_error(ins, "invalid time format");
        return LS_DECLINED;
    }
    ls_parser_set_time(ins, &t);
    if (!ls_parser_keep_time_key(ins)) {
        ls_record_del(rec, "time", 4);
    }
    return LS_OK;
}

const struct ls_plugin ls_plugin_parser_syslog = {
    .name = "syslog",
    .kind = LS_PLUGIN_PARSER,
    .description = "syslog lines, RFC 3164 or RFC 5424 (fluentd's syslog regexps)",
    .params = syslog_params,
    .ctx_size = sizeof(struct syslog_ctx),
    .init = syslog_init,
    .destroy = syslog_destroy,
    .parse = syslog_parse,
};
