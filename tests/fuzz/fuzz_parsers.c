/*
 * fuzz_parsers.c - libFuzzer target for every parser plugin and the
 * parser layer (time formats, types, null patterns).
 *
 * The first byte picks the parser; the rest is split on '\n' into lines,
 * fed in order, then flushed (multiline parsers). One extra selector runs
 * the nginx parser's hand-written fast path and fluentd's regex side by
 * side and aborts when they disagree. Build: make fuzz; run:
 * build/fuzz/bin/fuzz_parsers tests/fuzz/corpus/parsers
 */
#include "plugin.h"
#include "parser.h"
#include "conf.h"
#include "log.h"

#include <stdlib.h>

static const struct {
    const char *type;
    const char *body;
} fz_cfg[] = {
    { "regexp", "expression /^(?<a>[^ ]*) (?<b>.*?)(?<c>x*)+$/\ntypes a:integer,b:time:%d/%b/%Y\n"
                "null_value_pattern /^-$/\n" },
    { "nginx", "types code:integer,size:integer\n" },
    { "apache", "" },
    { "apache2", "" },
    { "apache_error", "" },
    { "syslog", "message_format auto\nwith_priority true\n" },
    { "json", "types a:array,b:bool,c:float\n" },
    { "ltsv", "time_type mixed\ntime_format_fallbacks unixtime,%iso8601\n" },
    { "csv", "keys a,b,c,time\ntime_key time\ntime_format %Y-%m-%dT%H:%M:%S.%N%z\n" },
    { "tsv", "keys a,b,time\ntime_key time\ntime_type float\n" },
    { "none", "" },
    { "multiline", "format_firstline /^\\S/\nformat1 /^(?<time>\\S+ \\S+) (?<msg>.*)/\n"
                   "max_bytes 16k\n" },
    { "mysql_slow", "max_bytes 16k\n" },
    /* in_syslog's other parser setups: rfc5424 without <pri>, rfc3164 with it */
    { "syslog", "message_format rfc5424\nwith_priority false\n" },
    { "syslog", "message_format rfc3164\nwith_priority true\nkeep_time_key true\n" },
    { "regexp", "expression /^(?<remote>[^ ]*) (?<host>[^ ]*) (?<user>[^ ]*) \\[(?<time>[^\\]]*)\\] "
                "\"(?<method>\\S+)(?: +(?<path>[^\\\"]*?)(?: +\\S*)?)?\" (?<code>[^ ]*) (?<size>[^ ]*)"
                "(?: \"(?<referer>[^\\\"]*)\" \"(?<agent>[^\\\"]*)\"(?:\\s+\\\"?(?<http_x_forwarded_for>"
                "[^\\\"]*)\\\"?)?)?$/\ntime_format %d/%b/%Y:%H:%M:%S %z\n" },
};
#define FZ_N (sizeof(fz_cfg) / sizeof(fz_cfg[0]))

static struct ls_conf *fz_conf[FZ_N];
static struct ls_instance *fz_ins[FZ_N];
static struct ls_arena fz_arena;
static struct ls_record fz_rec, fz_rec2;

static void fz_init(void)
{
    size_t i;
    char err[512];

    ls_log_level = LS_LOG_FATAL;
    setenv("TZ", "UTC", 1);
    for (i = 0; i < FZ_N; i++) {
        char *text = ls_asprintf("<parse>\n@type %s\n%s</parse>\n", fz_cfg[i].type, fz_cfg[i].body);
        fz_conf[i] = ls_conf_load_string("fuzz.conf", text, strlen(text), err, sizeof(err));
        ls_free(text);
        if (fz_conf[i] == NULL) {
            fprintf(stderr, "fuzz config %zu: %s\n", i, err);
            abort();
        }
        fz_ins[i] = ls_instance_create(NULL, NULL, LS_PLUGIN_PARSER, fz_cfg[i].type,
                                       ls_conf_child(fz_conf[i]->root, "parse"), err, sizeof(err));
        if (fz_ins[i] == NULL) {
            fprintf(stderr, "fuzz parser %zu: %s\n", i, err);
            abort();
        }
    }
    ls_arena_init(&fz_arena, 4096);
    ls_record_init(&fz_rec, &fz_arena);
    ls_record_init(&fz_rec2, &fz_arena);
}

static void fz_check_rc(int rc)
{
    if (rc != LS_OK && rc != LS_DECLINED && rc != LS_AGAIN) {
        abort();
    }
}

/* nginx fast path vs the regex: same rc, same fields */
static void fz_nginx_diff(const char *p, size_t len)
{
    int ra, rb;
    unsigned i;

    ls_record_clear(&fz_rec);
    ls_record_clear(&fz_rec2);
    ra = ls_parser_parse(fz_ins[1], p, len, &fz_rec);
    rb = ls_parser_parse(fz_ins[FZ_N - 1], p, len, &fz_rec2);
    if (ra != rb) {
        fprintf(stderr, "nginx rc %d vs regex %d\n", ra, rb);
        abort();
    }
    if (ra != LS_OK) {
        return;
    }
    /* the nginx instance converts code/size: compare the string fields */
    for (i = 0; i < fz_rec2.nfields; i++) {
        const struct ls_field *y = &fz_rec2.fields[i];
        const struct ls_field *x = ls_record_get(&fz_rec, y->key, y->key_len);
        if (x == NULL) {
            fprintf(stderr, "nginx lacks '%.*s'\n", (int)y->key_len, y->key);
            abort();
        }
        if (x->v.type == LS_V_STR &&
            (x->v.u.s.len != y->v.u.s.len || memcmp(x->v.u.s.p, y->v.u.s.p, x->v.u.s.len) != 0)) {
            fprintf(stderr, "nginx field '%.*s' differs\n", (int)y->key_len, y->key);
            abort();
        }
    }
    if (fz_rec.nfields != fz_rec2.nfields || fz_rec.time.sec != fz_rec2.time.sec) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool inited;
    size_t which, pos;
    const char *p;

    if (!inited) {
        fz_init();
        inited = true;
    }
    if (size < 1) {
        return 0;
    }
    which = data[0] % (FZ_N + 1);
    p = (const char *)data + 1;
    size--;
    pos = 0;
    while (pos <= size) {
        const char *nl = memchr(p + pos, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - (p + pos)) : size - pos;
        ls_arena_reset(&fz_arena);
        if (which == FZ_N) {
            fz_nginx_diff(p + pos, len);
        } else {
            ls_record_clear(&fz_rec);
            fz_check_rc(ls_parser_parse(fz_ins[which], p + pos, len, &fz_rec));
        }
        if (nl == NULL) {
            break;
        }
        pos += len + 1;
    }
    if (which < FZ_N) {
        int rc;
        ls_arena_reset(&fz_arena);
        ls_record_clear(&fz_rec);
        rc = ls_parser_flush(fz_ins[which], &fz_rec);
        if (rc != LS_OK && rc != LS_DECLINED) {
            abort();
        }
    }
    return 0;
}
