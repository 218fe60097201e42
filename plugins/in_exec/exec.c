/*
 * exec.c - fluentd's in_exec: run a command, parse what it writes and emit the records.
 *
 * The command line goes to /bin/sh -c, as Ruby's spawn hands a command line with shell
 * syntax to the shell; it runs in a process group of its own, so a stop reaches the
 * pipelines and sleeps a script starts, not only the shell (fluentd signals the one pid it
 * spawned, and a `while ...; sleep` script outlives it). stdin is /dev/null, stderr is
 * discarded or, with `connect_mode read_with_stderr`, read with stdout.
 *
 * Without run_interval the command runs once at start; with it, every run_interval, the
 * first one interval after start (fluentd's timer), skipped with a warning while the
 * previous run is still going. With --oneshot the command runs once, at once, and the
 * input is done when it has exited.
 *
 * What is read: the JSON parser takes a stream of JSON documents (fluentd's parse_io: one
 * per line, or spread over lines), every other parser one line at a time without its line
 * end; a last line without a newline is parsed too. The record's tag is <extract>'s
 * tag_key field or `tag`; its time the parser's time_key (none by default here), else
 * <extract>'s time_key, else now.
 *
 * Where fluentd loses data this does not: fluentd reads the output as binary and converts
 * it to UTF-8 replacing every byte above 0x7F with U+FFFD unless `encoding` is set
 * (fluentd issue 4460); here the bytes are kept, and `encoding` converts from that
 * encoding. A line that does not parse is counted and logged (as fluentd logs it) and the
 * next is read; a document the JSON stream cannot take ends only that document, where
 * fluentd's reader gave up the rest of the run's output.
 *
 * A full buffer (overflow_action block) stops the reading: the command then blocks on its
 * own write until the buffer has room. Records are not replayable (the command's output is
 * gone once read), so each read's records are committed before the next read.
 */
#include "plugin.h"
#include "parser.h"
#include "json.h"
#include "enc.h"
#include "timefmt.h"
#include "log.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

#define EXEC_READ_MIN (64u << 10)       /* bytes read at a time, at least */
#define EXEC_LINE_MAX (16u << 20)       /* a longer line (or JSON document) is dropped */
#define EXEC_KILL_WAIT 2.0              /* seconds from SIGTERM to SIGKILL at stop */

enum { CM_READ, CM_READ_WITH_STDERR };
enum { XT_FLOAT, XT_UNIXTIME, XT_STRING };

struct exec_extract {
    char *tag_key;
    bool keep_tag_key;
    char *time_key;
    bool keep_time_key;
    int time_type;
    char *time_format;
    bool localtime;
    bool utc;
    char *timezone;
};

struct exec_ctx {
    char *command;
    int connect_mode;
    char *tag;
    double run_interval;
    double command_timeout;
    int64_t read_block_size;
    char *encoding;
    struct exec_extract x;
    /* state */
    struct ls_instance *ins;
    struct ls_instance *parser;
    bool json_stream;
    bool have_x_time;
    struct ls_timefmt *x_tf;
    bool convert;
    struct ls_enc enc;
    pid_t pid;                  /* the running command (its process group), 0: none */
    int fd;                     /* its output, -1: read to the end */
    struct ls_io *io;
    struct ls_timer *every;
    struct ls_timer *reap;
    double eof_at;
    double reap_step;
    bool killed;
    struct ls_buf in;           /* read, not yet parsed: in.p[off..in.len) */
    size_t off;
    bool skipping;              /* dropping the rest of an over-long line */
    bool paused;
    bool eof;                   /* the output ended (read returned 0) */
    bool done;
    uint64_t bad;
    double bad_warn_at;
    struct ls_arena arena;
    struct ls_record rec;
};

#define XO(f) offsetof(struct exec_extract, f)

static const struct ls_param exec_params[] = {
    { "command", LS_P_STR, NULL, LS_PF_REQUIRED, offsetof(struct exec_ctx, command),
      "the command line to run (with /bin/sh -c, in a process group of its own)", NULL, NULL, 0,
      0 },
    { "connect_mode", LS_P_ENUM, "read", 0, offsetof(struct exec_ctx, connect_mode),
      "read: the command's stdout (stderr discarded); read_with_stderr: both", NULL,
      "read|read_with_stderr", 0, 0 },
    { "tag", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct exec_ctx, tag),
      "tag of the records (required unless <extract> tag_key)", NULL, NULL, 0, 0 },
    { "run_interval", LS_P_TIME, NULL, 0, offsetof(struct exec_ctx, run_interval),
      "run the command every this often, the first time one interval after start; unset: "
      "once at start", NULL, NULL, 0, 1e9 },
    { "command_timeout", LS_P_TIME, NULL, 0, offsetof(struct exec_ctx, command_timeout),
      "once the command has closed its output, kill it (SIGKILL) if it has not exited after "
      "this long; unset: wait", NULL, NULL, 0, 1e9 },
    { "read_block_size", LS_P_SIZE, "10240", 0, offsetof(struct exec_ctx, read_block_size),
      "bytes read at a time (logship reads at least 64 KiB)", NULL, NULL, 1, 1 << 30 },
    { "encoding", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct exec_ctx, encoding),
      "encoding of the output, converted to UTF-8 (unset: the bytes as they are)", NULL, NULL,
      0, 0 },
    { "tag_key", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "v0.12: <extract> tag_key (the field that holds the tag)", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static const struct ls_param extract_params[] = {
    { "tag_key", LS_P_STR, NULL, LS_PF_NULLABLE, XO(tag_key),
      "the record's tag is this field (removed unless keep_tag_key)", NULL, NULL, 0, 0 },
    { "keep_tag_key", LS_P_BOOL, "false", 0, XO(keep_tag_key), "keep the tag field", NULL,
      NULL, 0, 0 },
    { "time_key", LS_P_STR, NULL, LS_PF_NULLABLE, XO(time_key),
      "the record's time is this field (removed unless keep_time_key)", NULL, NULL, 0, 0 },
    { "keep_time_key", LS_P_BOOL, "false", 0, XO(keep_time_key), "keep the time field", NULL,
      NULL, 0, 0 },
    { "time_type", LS_P_ENUM, "float", 0, XO(time_type),
      "float, unixtime or string (time_format); string when time_format is set", NULL,
      "float|unixtime|string", 0, 0 },
    { "time_format", LS_P_STR, NULL, LS_PF_NULLABLE, XO(time_format),
      "strptime format of a string time (unset: flexible)", NULL, NULL, 0, 0 },
    { "localtime", LS_P_BOOL, "true", 0, XO(localtime), "times without an offset are local",
      NULL, NULL, 0, 0 },
    { "utc", LS_P_BOOL, "false", 0, XO(utc), "times without an offset are UTC", NULL, NULL, 0,
      0 },
    { "timezone", LS_P_STR, NULL, LS_PF_NULLABLE, XO(timezone),
      "zone of times without an offset", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

/* fluentd's compat layer: the flat keys that make a <parse> and an <extract> */
static const char *const flat_parse[] = {
    "format", "keys", "time_key", "time_format", "types", "delimiter", "keep_time_key",
    "null_empty_string", "null_value_pattern", "json_parser", "label_delimiter", "localtime",
    "utc", "message_key", "estimate_current_event", NULL
};
static const char *const flat_extract[] = { "time_key", "time_format", "timezone", "tag_key",
                                            NULL };

static bool has_any(struct ls_conf_section *sec, const char *const *keys)
{
    size_t i;

    for (i = 0; keys[i]; i++) {
        if (ls_conf_get_param(sec, keys[i])) {
            return true;
        }
    }
    return false;
}

/* The <parse> section: the user's, the flat v0.12 keys', or tsv (in_exec's default type). */
static struct ls_conf_section *parse_section(struct ls_conf_section *sec)
{
    struct ls_conf_section *ps = ls_conf_child(sec, "parse");

    if (ps == NULL) {
        if (has_any(sec, flat_parse)) {
            if (ls_conf_get_param(sec, "format") == NULL) {
                ls_conf_set(sec, "format", "tsv", sec->file, sec->line)->used = true;
            }
            ps = ls_parser_flat_section(sec);
        } else {
            ps = ls_conf_add_child(sec, "parse", "");
            ps->file = sec->file;
            ps->line = sec->line;
        }
    }
    if (ls_conf_get_param(ps, "@type") == NULL && ls_conf_get_param(ps, "type") == NULL) {
        ls_conf_set(ps, "@type", "tsv", ps->file, ps->line);
    }
    return ps;
}

/* The <extract> section, made from the flat keys as fluentd's compat layer does; or NULL. */
static struct ls_conf_section *extract_section(struct ls_conf_section *sec, char *err,
                                               size_t errlen)
{
    struct ls_conf_section *xs = ls_conf_child(sec, "extract");
    struct ls_conf_param *fmt = ls_conf_get_param(sec, "format");
    struct ls_conf_param *lt = ls_conf_get_param(sec, "localtime");
    struct ls_conf_param *utc = ls_conf_get_param(sec, "utc");
    struct ls_conf_param *tae = ls_conf_get_param(sec, "time_as_epoch");
    size_t i;

    if (xs) {
        return xs;
    }
    if (!has_any(sec, flat_extract) && !lt && !utc && !fmt) {
        return NULL;
    }
    xs = ls_conf_add_child(sec, "extract", "");
    xs->file = sec->file;
    xs->line = sec->line;
    for (i = 0; flat_extract[i]; i++) {
        struct ls_conf_param *p = ls_conf_get_param(sec, flat_extract[i]);
        if (p) {
            p->used = true;
            ls_conf_set(xs, p->key, p->value, p->file, p->line);
        }
    }
    if (tae) {
        bool on = false;
        tae->used = true;
        if (ls_parse_bool(tae->value, &on) == LS_OK && on) {
            if (ls_conf_get_param(xs, "time_key") == NULL) {
                ls_conf_set(xs, "time_key", "time", tae->file, tae->line);
            }
            ls_conf_set(xs, "time_type", "unixtime", tae->file, tae->line);
        }
    } else if (fmt && fmt->value[0] == '/' && strlen(fmt->value) > 1 &&
               fmt->value[strlen(fmt->value) - 1] == '/') {
        if (ls_conf_get_param(xs, "time_key") == NULL) {
            ls_conf_set(xs, "time_key", "time", fmt->file, fmt->line);
        }
        if (ls_conf_get_param(xs, "time_type") == NULL) {
            ls_conf_set(xs, "time_type", "string", fmt->file, fmt->line);
        }
    }
    if (lt && utc) {
        snprintf(err, errlen, "%s:%d: both of utc and localtime are specified, use only one of "
                 "them", utc->file, utc->line);
        return NULL;
    }
    if (lt || utc) {
        bool v = false;
        struct ls_conf_param *p = lt ? lt : utc;
        if (ls_parse_bool(p->value, &v) != LS_OK) {
            snprintf(err, errlen, "%s:%d: %s: not a boolean: '%s'", p->file, p->line, p->key,
                     p->value);
            return NULL;
        }
        ls_conf_set(xs, "localtime", (lt ? v : !v) ? "true" : "false", p->file, p->line);
    }
    return xs;
}

static int exec_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                     size_t errlen)
{
    struct exec_ctx *ctx = ins->ctx;
    struct ls_conf_section *ps, *xs;
    bool str_time;

    ctx->ins = ins;
    ctx->fd = -1;
    ls_arena_init(&ctx->arena, 4096);
    ls_record_init(&ctx->rec, &ctx->arena);
    ls_buf_init(&ctx->in, EXEC_LINE_MAX + EXEC_READ_MIN + (size_t)ctx->read_block_size);

    err[0] = '\0';
    xs = extract_section(sec, err, errlen);
    if (xs == NULL && err[0]) {
        return LS_ERROR;
    }
    ps = parse_section(sec);
    /* fluentd's in_exec: a time_format in either section makes its time_type string */
    str_time = ls_conf_get_param(ps, "time_format") != NULL;
    ctx->parser = ls_instance_create(ins->engine, ins, LS_PLUGIN_PARSER, NULL, ps, err, errlen);
    if (ctx->parser == NULL) {
        return LS_ERROR;
    }
    /* in_exec's <parse> defaults, over the parser's own: no time_key, float, no estimate */
    if (ls_parser_set_defaults(ctx->parser, "", NULL,
                               str_time ? LS_PARSER_TT_STRING : LS_PARSER_TT_FLOAT, err,
                               errlen) != LS_OK) {
        return LS_ERROR;
    }
    ls_parser_set_estimate_default(ctx->parser, false);
    ctx->json_stream = strcmp(ctx->parser->plugin->name, "json") == 0;

    if (xs) {
        if (ls_conf_get_param(xs, "time_format") && !ls_conf_get_param(xs, "time_type")) {
            ls_conf_set(xs, "time_type", "string", xs->file, xs->line);
        }
        if (ls_param_bind(extract_params, xs, &ctx->x, err, errlen) != LS_OK) {
            return LS_ERROR;
        }
        if (ctx->x.time_key) {
            const char *zone = ctx->x.timezone ? ctx->x.timezone
                                               : (ctx->x.localtime && !ctx->x.utc ? NULL : "UTC");
            char e[256];
            e[0] = '\0';
            ctx->x_tf = ls_timefmt_create(ctx->x.time_format, zone, e, sizeof(e));
            if (ctx->x_tf == NULL) {
                snprintf(err, errlen, "%s:%d: <extract>: %s", xs->file, xs->line, e);
                return LS_ERROR;
            }
            ctx->have_x_time = true;
        } else if (ctx->x.time_format) {
            ls_plg_warn(ins, "'time_format' specified without 'time_key', will be ignored");
        }
    } else {
        (void)ls_param_bind(extract_params, NULL, &ctx->x, err, errlen);
    }
    if (ctx->tag == NULL && ctx->x.tag_key == NULL) {
        snprintf(err, errlen, "%s:%d: 'tag' or 'tag_key' option is required on exec input",
                 sec->file, sec->line);
        return LS_ERROR;
    }
    if (ctx->encoding) {
        struct ls_conf_param *p = ls_conf_get_param(sec, "encoding");
        char e[256];
        if (ls_enc_check(ctx->encoding, false, e, sizeof(e)) != LS_OK) {
            snprintf(err, errlen, "%s:%d: encoding: %s", p->file, p->line, e);
            return LS_ERROR;
        }
        if (!ls_enc_same(ctx->encoding, "UTF-8")) {
            if (ls_enc_open(&ctx->enc, ctx->encoding, "UTF-8", EXEC_LINE_MAX, e, sizeof(e)) !=
                LS_OK) {
                snprintf(err, errlen, "%s:%d: encoding: %s", p->file, p->line, e);
                return LS_ERROR;
            }
            ctx->convert = true;
        }
    }
    return LS_OK;
}

static void warn_bad(struct exec_ctx *ctx, const char *why, const char *p, size_t len)
{
    double now = ls_mono_now();

    ctx->bad++;
    ctx->ins->metrics.errors++;
    if (now - ctx->bad_warn_at >= 1.0) {
        ctx->bad_warn_at = now;
        ls_plg_warn(ctx->ins, "%s: \"%.*s\"%s (%llu so far)", why, (int)(len > 200 ? 200 : len),
                    p, len > 200 ? "..." : "", (unsigned long long)ctx->bad);
    }
}

/* Tag and time from the record (fluentd's extract helper), then emit. Returns like ls_emit. */
static int emit_record(struct exec_ctx *ctx, bool parser_time)
{
    struct ls_record *rec = &ctx->rec;
    struct ls_field *f;

    rec->tag = ctx->tag;
    rec->tag_len = ctx->tag ? strlen(ctx->tag) : 0;
    if (ctx->x.tag_key && (f = ls_record_get(rec, ctx->x.tag_key, strlen(ctx->x.tag_key)))) {
        size_t n;
        const char *t = ls_value_to_text(rec->arena, &f->v, &n);
        rec->tag = ls_arena_memdup(rec->arena, t, n);
        rec->tag_len = n;
        if (!ctx->x.keep_tag_key) {
            ls_record_del(rec, ctx->x.tag_key, strlen(ctx->x.tag_key));
        }
    }
    if (rec->tag == NULL) {
        /* tag_key only, and this record has no such field: fluentd fails the emit */
        warn_bad(ctx, "no tag: the record has no tag_key field", "", 0);
        return LS_OK;
    }
    if (!parser_time) {
        if (ctx->have_x_time && (f = ls_record_get(rec, ctx->x.time_key,
                                                   strlen(ctx->x.time_key)))) {
            static const int kinds[] = { LS_PARSER_TT_FLOAT, LS_PARSER_TT_UNIXTIME,
                                         LS_PARSER_TT_STRING };
            struct ls_time t;
            if (!ls_parser_value_time(&f->v, kinds[ctx->x.time_type], ctx->x_tf, &t)) {
                size_t n;
                const char *s = ls_value_to_text(rec->arena, &f->v, &n);
                ls_wall_now(&rec->time.sec, &rec->time.nsec);
                warn_bad(ctx, "invalid time in the record's time_key field", s, n);
                return ls_emit_error(ctx->ins, rec, "invalid time");
            }
            rec->time = t;
            if (!ctx->x.keep_time_key) {
                ls_record_del(rec, ctx->x.time_key, strlen(ctx->x.time_key));
            }
        } else {
            ls_wall_now(&rec->time.sec, &rec->time.nsec);
        }
    }
    return ls_emit(ctx->ins, rec);
}

/* One line or JSON document (converted, parsed, emitted). LS_OK, or LS_AGAIN: a full buffer
 * did not take it; the caller keeps it for later. */
static int take_text(struct exec_ctx *ctx, const char *p, size_t len)
{
    int rc;

    if (ctx->convert) {
        const char *out;
        size_t outlen;
        if (ls_enc_convert(&ctx->enc, p, len, &out, &outlen) < 0) {
            warn_bad(ctx, "line too long after conversion to UTF-8", p, len);
            return LS_OK;
        }
        p = out;
        len = outlen;
    }
    ls_record_clear(&ctx->rec);
    ls_arena_reset(&ctx->arena);
    ctx->rec.time.sec = INT64_MIN;      /* set only if the parser finds a time */
    ctx->rec.time.nsec = 0;
    rc = ls_parser_parse(ctx->parser, p, len, &ctx->rec);
    if (rc == LS_AGAIN) {
        return LS_OK;                   /* a multiline parser keeps it */
    }
    if (rc != LS_OK) {
        const char *why = ls_parser_error(ctx->parser);
        warn_bad(ctx, why ? why : "pattern not matched", p, len);
        return LS_OK;
    }
    rc = emit_record(ctx, ctx->rec.time.sec != INT64_MIN);
    ls_record_clear(&ctx->rec);
    ls_arena_reset(&ctx->arena);
    return rc == LS_AGAIN ? LS_AGAIN : LS_OK;
}

/* Parse what is buffered; at_eof: the rest too. LS_AGAIN when a full buffer stopped it. */
static int drain(struct exec_ctx *ctx, bool at_eof)
{
    const char *base = ctx->in.p;
    int rc = LS_OK;

    while (ctx->off < ctx->in.len) {
        const char *p = base + ctx->off;
        size_t n = ctx->in.len - ctx->off, used, s = 0, e = 0;

        if (ctx->json_stream && !ctx->skipping) {
            if (ls_json_stream_next(p, n, &s, &e)) {
                used = e;
            } else if (s == n) {
                ctx->off = ctx->in.len;     /* only white space */
                break;
            } else if (at_eof) {
                /* once a run: not rate-limited as a line's errors are */
                ctx->bad_warn_at = 0;
                warn_bad(ctx, "JSON stream ended in the middle of a document; discarding "
                         "incomplete data", p + s, n - s);
                ctx->off = ctx->in.len;
                break;
            } else if (n > EXEC_LINE_MAX) {
                warn_bad(ctx, "JSON document over 16 MiB dropped (up to the next line)", p, n);
                ctx->skipping = true;
                continue;
            } else {
                break;
            }
            rc = take_text(ctx, p + s, e - s);
        } else {
            const char *nl = memchr(p, '\n', n);
            size_t l;
            if (nl == NULL) {
                if (!at_eof && n <= EXEC_LINE_MAX) {
                    break;
                }
                if (!at_eof || ctx->skipping) {
                    if (!ctx->skipping) {
                        warn_bad(ctx, "line over 16 MiB dropped", p, n);
                    }
                    ctx->skipping = !at_eof;
                    ctx->off = ctx->in.len;
                    break;
                }
                used = l = n;
            } else {
                used = (size_t)(nl - p) + 1;
                l = (size_t)(nl - p);
            }
            if (ctx->skipping) {
                ctx->skipping = false;      /* the dropped line ends here */
                ctx->off += used;
                continue;
            }
            /* Ruby's chomp: one \n, \r\n or \r */
            if (l > 0 && p[l - 1] == '\r') {
                l--;
            }
            rc = take_text(ctx, p, l);
        }
        if (rc == LS_AGAIN) {
            break;
        }
        ctx->off += used;
    }
    if (ctx->off > 0 && (ctx->off == ctx->in.len || ctx->off > (1u << 20))) {
        ls_buf_consume(&ctx->in, ctx->off);
        ctx->off = 0;
    }
    if (rc != LS_AGAIN && at_eof && ls_parser_is_multiline(ctx->parser)) {
        ls_record_clear(&ctx->rec);
        ls_arena_reset(&ctx->arena);
        ctx->rec.time.sec = INT64_MIN;
        if (ls_parser_flush(ctx->parser, &ctx->rec) == LS_OK) {
            (void)emit_record(ctx, ctx->rec.time.sec != INT64_MIN);
        }
        ls_record_clear(&ctx->rec);
        ls_arena_reset(&ctx->arena);
    }
    (void)ls_input_commit(ctx->ins);
    return rc;
}

static void exec_run(struct exec_ctx *ctx);

/* The command has exited (st from waitpid): log how, and end a --oneshot run. */
static void exited(struct exec_ctx *ctx, int st)
{
    if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
        ls_plg_warn(ctx->ins, "command exited with status %d: %s", WEXITSTATUS(st),
                    ctx->command);
    } else if (WIFSIGNALED(st) && !ctx->killed) {
        ls_plg_warn(ctx->ins, "command killed by signal %d: %s", WTERMSIG(st), ctx->command);
    }
    ctx->pid = 0;
    ls_timer_stop(ctx->reap);
    if (ls_oneshot(ctx->ins->engine) && !ctx->done) {
        ctx->done = true;
        ls_input_done(ctx->ins);
    }
}

/* After the output's end: wait for the command to exit (command_timeout: then kill it). */
static void reap_cb(struct ls_timer *t, void *arg)
{
    struct exec_ctx *ctx = arg;
    int st;
    pid_t r;

    LS_UNUSED(t);
    if (ctx->pid == 0) {
        return;
    }
    r = waitpid(ctx->pid, &st, WNOHANG);
    if (r == ctx->pid || (r < 0 && errno == ECHILD)) {
        exited(ctx, r == ctx->pid ? st : 0);
        return;
    }
    if (ctx->command_timeout > 0 && !ctx->killed &&
        ls_mono_now() - ctx->eof_at >= ctx->command_timeout) {
        ls_plg_warn(ctx->ins, "child process timed out: %s", ctx->command);
        ctx->killed = true;
        (void)kill(-ctx->pid, SIGKILL);
    }
    /* poll quickly at first, then back off: a command may keep running long after it
     * closed its output */
    ctx->reap_step = ctx->reap_step < 0.01 ? 0.01 : ctx->reap_step * 2;
    if (ctx->reap_step > 1.0) {
        ctx->reap_step = 1.0;
    }
    ls_timer_start(ctx->reap, ctx->reap_step, 0);
}

static void output_closed(struct exec_ctx *ctx)
{
    ls_io_free(ctx->io);
    ctx->io = NULL;
    close(ctx->fd);
    ctx->fd = -1;
    ctx->eof_at = ls_mono_now();
    ctx->reap_step = 0;
    reap_cb(ctx->reap, ctx);
}

static void read_cb(struct ls_io *io, int revents, void *arg)
{
    struct exec_ctx *ctx = arg;
    size_t want = (size_t)ctx->read_block_size < EXEC_READ_MIN ? EXEC_READ_MIN
                                                                : (size_t)ctx->read_block_size;
    ssize_t n;

    LS_UNUSED(io);
    LS_UNUSED(revents);
    if (ctx->paused || ctx->fd < 0) {
        return;
    }
    if (ls_buf_reserve(&ctx->in, want) != LS_OK) {
        /* cannot happen: drain() keeps at most EXEC_LINE_MAX unparsed */
        ctx->off = ctx->in.len;
        (void)drain(ctx, false);
        return;
    }
    do {
        n = read(ctx->fd, ctx->in.p + ctx->in.len, want);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN) {
            return;
        }
        ls_plg_error(ctx->ins, "read() from the command failed (%d: %s)", errno, strerror(errno));
        n = 0;
    }
    ctx->in.len += (size_t)n;
    ctx->eof = n == 0;
    if (drain(ctx, ctx->eof) == LS_AGAIN) {
        ls_io_set(ctx->io, 0);          /* resume() goes on */
        return;
    }
    if (ctx->eof) {
        output_closed(ctx);
    }
}

static void exec_run(struct exec_ctx *ctx)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, dflt;
    char *argv[] = { (char *)"sh", (char *)"-c", ctx->command, NULL };
    int pfd[2], rc;
    pid_t pid;

    if (ctx->pid != 0) {
        ls_plg_warn(ctx->ins, "previous child process is still running. skipped: %s",
                    ctx->command);
        return;
    }
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        ls_plg_error(ctx->ins, "pipe() failed (%d: %s)", errno, strerror(errno));
        return;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    if (ctx->connect_mode == CM_READ_WITH_STDERR) {
        posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
    } else {
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    }
    posix_spawnattr_init(&at);
    /* the engine blocks TERM/INT/HUP/USR1 and ignores SIGPIPE: the command gets defaults */
    sigemptyset(&none);
    sigfillset(&dflt);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dflt);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                  POSIX_SPAWN_SETPGROUP);
    rc = posix_spawn(&pid, "/bin/sh", &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(pfd[1]);
    if (rc != 0) {
        close(pfd[0]);
        ls_plg_error(ctx->ins, "cannot run /bin/sh -c '%s' (%d: %s)", ctx->command, rc,
                     strerror(rc));
        if (ls_oneshot(ctx->ins->engine) && !ctx->done) {
            ctx->done = true;
            ls_input_fail(ctx->ins);
        }
        return;
    }
    (void)fcntl(pfd[0], F_SETFL, fcntl(pfd[0], F_GETFL) | O_NONBLOCK);
    ls_plg_debug(ctx->ins, "started (pid %d): %s", (int)pid, ctx->command);
    ctx->pid = pid;
    ctx->fd = pfd[0];
    ctx->killed = false;
    ctx->skipping = false;
    ctx->eof = false;
    ls_buf_reset(&ctx->in);
    ctx->off = 0;
    ctx->io = ls_io_new(ctx->ins, ctx->fd, ctx->paused ? 0 : LS_IO_READ, read_cb, ctx);
}

static void every_cb(struct ls_timer *t, void *arg)
{
    LS_UNUSED(t);
    exec_run(arg);
}

static int exec_start(struct ls_instance *ins)
{
    struct exec_ctx *ctx = ins->ctx;

    ctx->reap = ls_timer_new(ins, reap_cb, ctx);
    if (ctx->run_interval > 0 && !ls_oneshot(ins->engine)) {
        ctx->every = ls_timer_new(ins, every_cb, ctx);
        ls_timer_start(ctx->every, ctx->run_interval, ctx->run_interval);
    } else {
        exec_run(ctx);
    }
    return LS_OK;
}

/* Stop the command's process group: TERM, then KILL if it is still there after a while. */
static void stop_child(struct exec_ctx *ctx)
{
    double until;
    int st;

    if (ctx->pid == 0) {
        return;
    }
    (void)kill(-ctx->pid, SIGTERM);
    until = ls_mono_now() + EXEC_KILL_WAIT;
    for (;;) {
        pid_t r = waitpid(ctx->pid, &st, WNOHANG);
        if (r == ctx->pid || (r < 0 && errno == ECHILD)) {
            break;
        }
        if (ls_mono_now() >= until) {
            (void)kill(-ctx->pid, SIGKILL);
            (void)waitpid(ctx->pid, &st, 0);
            break;
        }
        usleep(10000);
    }
    /* what else the script started and left in the group */
    (void)kill(-ctx->pid, SIGKILL);
    ctx->pid = 0;
}

static void exec_stop(struct ls_instance *ins)
{
    struct exec_ctx *ctx = ins->ctx;

    ls_timer_free(ctx->every);
    ctx->every = NULL;
    ls_timer_free(ctx->reap);
    ctx->reap = NULL;
    ls_io_free(ctx->io);
    ctx->io = NULL;
    if (ctx->fd >= 0) {
        close(ctx->fd);
        ctx->fd = -1;
    }
    stop_child(ctx);
}

static void exec_pause(struct ls_instance *ins)
{
    struct exec_ctx *ctx = ins->ctx;

    ctx->paused = true;
    if (ctx->io) {
        ls_io_set(ctx->io, 0);
    }
}

static void exec_resume(struct ls_instance *ins)
{
    struct exec_ctx *ctx = ins->ctx;

    ctx->paused = false;
    if (ctx->fd < 0) {
        return;
    }
    /* first what the full buffer refused, then the pipe again */
    if (drain(ctx, ctx->eof) == LS_AGAIN) {
        return;
    }
    if (ctx->eof) {
        output_closed(ctx);
    } else {
        ls_io_set(ctx->io, LS_IO_READ);
    }
}

static void exec_destroy(struct ls_instance *ins)
{
    struct exec_ctx *ctx = ins->ctx;

    exec_stop(ins);
    ls_instance_destroy(ctx->parser);
    ls_timefmt_destroy(ctx->x_tf);
    if (ctx->convert) {
        ls_enc_close(&ctx->enc);
    }
    ls_param_release(extract_params, &ctx->x);
    ls_buf_release(&ctx->in);
    ls_record_release(&ctx->rec);
    ls_arena_release(&ctx->arena);
}

const struct ls_plugin ls_plugin_in_exec = {
    .name = "exec",
    .kind = LS_PLUGIN_INPUT,
    .description = "run a command (once, or every run_interval) and parse its output "
                   "(fluentd's in_exec)",
    .params = exec_params,
    .ctx_size = sizeof(struct exec_ctx),
    .init = exec_init,
    .destroy = exec_destroy,
    .start = exec_start,
    .stop = exec_stop,
    .pause = exec_pause,
    .resume = exec_resume,
};
