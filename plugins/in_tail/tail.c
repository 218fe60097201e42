/*
 * tail.c - fluentd's in_tail: follow log files, parse each line, emit.
 *
 * Same parameters, defaults and pos_file as fluentd (tail_pos.c), with the
 * delivery rules of logship: a file's position (in the pos_file) only
 * advances past lines whose records every output has made durable
 * (ls_input_commit returned LS_OK). Every record carries src = a key of one
 * *generation* of one file (device, inode and a hash of the file's first
 * line, so copytruncate and inode reuse give a new key) and pos = the byte
 * offset just after its last line; outputs drop records they already hold,
 * so re-reading after kill -9 or a failed commit never duplicates. At start
 * a file resumes at max(pos_file offset, what the file buffer durably holds
 * for its key), which closes the window between a chunk write and the
 * pos_file write.
 *
 * The file on disk is the buffer: under back-pressure (ls_emit returns
 * LS_AGAIN, or .pause) reading stops and later starts again from the first
 * record not taken. Nothing is held in memory but the partial last line.
 *
 * Rotation (rename + create, copytruncate, delete, inode reuse) is detected
 * by stat(path) against the open fd's inode, a size below the read offset,
 * or a changed first line (checked after every read, before its bytes are
 * taken; copytruncate's copy then gives the old generation's unread end,
 * tail_read_copy). A renamed file keeps
 * being read through its fd until rotate_wait has passed *and* its end was
 * reached; while it drains, it has its own pos_file entry under the name
 * it has now (access.log.1), so a crash in that window finds it again at
 * restart (the path's own entry, which names the old file until a successor claims it,
 * follows the drain: tail_sync_stale_entries), and a file rotated while logship was down is
 * looked up by its
 * inode in the same directory, so its unread tail is not lost either.
 * A renamed file that a glob matches again (access.log.1) is recognised by
 * (device, inode, first line) and continued, not read twice (fluentd#3532).
 *
 * Notifications: inotify through ls_fstat (enable_stat_watcher: one persistent
 * watch per file on the engine's one inotify instance, polled where inotify is
 * unavailable or out of watches) and a 1 s timer (enable_watch_timer), as
 * fluentd; the timer's look at an unchanged file is one stat.
 */
#include "tail.h"
#include "parser.h"
#include "log.h"
#include "timefmt.h"

#include <fcntl.h>
#include <glob.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define TAIL_RBUF (64u * 1024u)
#define TAIL_CALL_MAX (8u << 20)      /* bytes per file per callback before yielding */
#define TAIL_FP_MAX 256               /* fingerprint: first line, at most this many bytes */
#define TAIL_GHOSTS 256

enum { GLOB_BACKWARD, GLOB_EXTENDED, GLOB_ALWAYS };

struct tail_file;

/* A file we stopped following, remembered so that a glob finding it again under another name
 * (the rotated access.log.1) continues where we were instead of starting over. */
struct tail_ghost {
    uint64_t dev, ino, fp, pos;
    double at;
};

struct tail_ctx {
    /* parameters */
    char *path;
    char *path_delimiter;
    int glob_policy;
    char *path_timezone;
    char *tag;
    struct ls_strv exclude_path;
    char *pos_file;
    double pos_file_compaction_interval;
    bool read_from_head;
    double refresh_interval;
    double rotate_wait;
    double progress_next;       /* backlog progress lines: when to look next (mono) */
    bool follow_inodes;
    double limit_recently_modified;
    bool skip_refresh_on_startup;
    int64_t read_lines_limit;
    char *read_bytes_limit_str;
    int64_t max_line_size;
    double multiline_flush_interval;
    bool emit_unmatched_lines;
    bool emit_invalid_record_to_error;
    bool enable_watch_timer;
    bool enable_stat_watcher;
    bool open_on_every_update;
    char *encoding;
    char *from_encoding;
    char *path_key;
    bool ignore_repeated_permission_error;

    /* state */
    struct ls_instance *ins;
    struct ls_conf_section *parse_sec;
    struct ls_instance *parser;        /* shared by every file (single-line parsers) */
    bool multiline;                    /* one parser per file: it holds a pending record */
    char **paths;
    size_t npaths;
    char *tag_prefix, *tag_suffix;
    bool tag_star;
    struct tail_pos *pf;
    struct tail_file *files;
    struct tail_ghost ghosts[TAIL_GHOSTS];
    size_t nghosts, ghost_next;
    struct ls_timer *tick, *refresh, *compact, *kick;
    char *rbuf;
    struct ls_arena arena;
    struct ls_record rec;
    /* the wall time of the read whose lines are being parsed (read_time_set), for records
     * whose time the parser does not set: one clock read per 64 KiB read, not per line */
    int64_t read_sec;
    int32_t read_nsec;
    bool read_time_set;
    bool started, stopped, paused, startup, done;
    double warn_unmatched_at, warn_long_at, warn_enc_at;
    bool convert;                      /* from_encoding + encoding differ: convert every line */
    struct ls_enc enc;
    uint64_t enc_bad_lines;            /* lines with replaced bytes since the last warning */
    struct ls_strv perm_warned;
    int64_t read_bytes_limit_per_second;     /* parsed; <= 0: off */
    int64_t pos_mtime;                 /* the pos_file's last write before this start (ns) */
};

struct tail_file {
    struct tail_ctx *ctx;
    char *path;
    char *tag;
    size_t tag_len;
    bool literal;            /* from a path entry without a glob: watched even while absent */
    int fd;                  /* -1: waiting for the file, or closed (open_on_every_update) */
    uint64_t dev, ino;
    uint64_t fp;             /* hash of the first line; 0 until it exists */
    uint64_t key;            /* source key of this generation; 0 until fp */
    bool new_gen;            /* key: a generation after a truncation (tail_ensure_key) */
    uint64_t read_pos;       /* next byte to read */
    uint64_t line_start;     /* offset of the first byte of the current (partial) line */
    uint64_t safe;           /* every line before this is handled and nothing is pending */
    uint64_t committed;      /* persisted in the pos_file */
    uint64_t sig_pos;        /* sig: the last bytes before this offset (a line's end) */
    uint8_t sig_len;
    char sig[32];
    struct ls_buf carry;     /* the partial line */
    bool skipping;           /* inside a line longer than max_line_size */
    struct tail_pos_entry *pe;
    struct ls_fstat *st;
    struct timespec seen_mtim, seen_ctim;   /* the path's times at the timer's last look */
    bool draining;           /* rotated away or unwatched: read until rotate_wait and EOF */
    bool type_warned;        /* said once that the path is not a regular file */
    bool unwatched;          /* no longer matched: entry becomes ffff.. when closed */
    double drain_deadline;
    /* multiline */
    struct ls_instance *mparser;
    bool ml_pending;
    uint64_t ml_start, ml_end;
    double last_line_at;
    /* flow */
    bool blocked;            /* back-pressure or failed commit: retry on the timer */
    bool eof;
    uint64_t batch_lines;
    uint64_t window_bytes;
    struct tail_file *next;
};

static const struct ls_param tail_params[] = {
    { "path", LS_P_STR, NULL, LS_PF_REQUIRED, offsetof(struct tail_ctx, path),
      "files to follow: comma-separated, '*' globs and strftime %Y%m%d..., evaluated at refresh",
      NULL, NULL, 0, 0 },
    { "path_delimiter", LS_P_STR, ",", 0, offsetof(struct tail_ctx, path_delimiter),
      "separator of the entries in path", NULL, NULL, 0, 0 },
    { "glob_policy", LS_P_ENUM, "backward_compatible", 0, offsetof(struct tail_ctx, glob_policy),
      "backward_compatible: only '*'; extended: also ? and []; always: also {a,b}", NULL,
      "backward_compatible|extended|always", 0, 0 },
    { "path_timezone", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct tail_ctx, path_timezone),
      "time zone for strftime in path (default: local time)", NULL, NULL, 0, 0 },
    { "tag", LS_P_STR, NULL, LS_PF_REQUIRED, offsetof(struct tail_ctx, tag),
      "tag of the records; '*' is replaced by the path with '/' turned into '.'", NULL, NULL, 0,
      0 },
    { "exclude_path", LS_P_ARRAY, "[]", 0, offsetof(struct tail_ctx, exclude_path),
      "paths or globs (strftime'd) removed from the expanded set", NULL, NULL, 0, 0 },
    { "pos_file", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct tail_ctx, pos_file),
      "position database (fluentd's format); strongly recommended", NULL, NULL, 0, 0 },
    { "pos_file_compaction_interval", LS_P_TIME, NULL, LS_PF_NULLABLE,
      offsetof(struct tail_ctx, pos_file_compaction_interval),
      "rewrite the pos_file without stale entries this often (default: only at start)", NULL, NULL,
      0, 0 },
    { "read_from_head", LS_P_BOOL, "false", 0, offsetof(struct tail_ctx, read_from_head),
      "files without a pos entry at start are read from the beginning, not the end", NULL, NULL,
      0, 0 },
    { "refresh_interval", LS_P_TIME, "60", 0, offsetof(struct tail_ctx, refresh_interval),
      "how often path is expanded again", NULL, NULL, 0.001, 1e9 },
    { "rotate_wait", LS_P_TIME, "5", 0, offsetof(struct tail_ctx, rotate_wait),
      "keep reading a rotated file this long after the new one appeared", NULL, NULL, 0, 1e9 },
    { "follow_inodes", LS_P_BOOL, "false", 0, offsetof(struct tail_ctx, follow_inodes),
      "key pos_file entries by inode instead of path (globs that match rotated files)", NULL,
      NULL, 0, 0 },
    { "limit_recently_modified", LS_P_TIME, NULL, LS_PF_NULLABLE,
      offsetof(struct tail_ctx, limit_recently_modified),
      "ignore glob results not modified within this time", NULL, NULL, 0, 0 },
    { "skip_refresh_on_startup", LS_P_BOOL, "false", 0,
      offsetof(struct tail_ctx, skip_refresh_on_startup),
      "do not expand path at start; wait for the first refresh", NULL, NULL, 0, 0 },
    { "read_lines_limit", LS_P_INT, "1000", 0, offsetof(struct tail_ctx, read_lines_limit),
      "lines per batch: the position is committed after each batch", NULL, NULL, 1, 1e9 },
    { "read_bytes_limit_per_second", LS_P_STR, "-1", 0,
      offsetof(struct tail_ctx, read_bytes_limit_str),
      "per file throttle, a size (-1: off; values below 64k are raised to 64k)", NULL, NULL, 0, 0 },
    { "max_line_size", LS_P_SIZE, "1m", 0, offsetof(struct tail_ctx, max_line_size),
      "longer lines are skipped and counted as dropped (fluentd: unlimited)", NULL, NULL, 1,
      1073741824.0 },
    { "multiline_flush_interval", LS_P_TIME, NULL, LS_PF_NULLABLE,
      offsetof(struct tail_ctx, multiline_flush_interval),
      "multiline parsers: emit the pending record after this idle time", NULL, NULL, 0, 0 },
    { "emit_unmatched_lines", LS_P_BOOL, "false", 0,
      offsetof(struct tail_ctx, emit_unmatched_lines),
      "emit lines that do not parse as {\"unmatched_line\": line}", NULL, NULL, 0, 0 },
    { "emit_invalid_record_to_error", LS_P_BOOL, "false", 0,
      offsetof(struct tail_ctx, emit_invalid_record_to_error),
      "logship: also route lines that do not parse to @ERROR as {\"message\": line}", NULL, NULL,
      0, 0 },
    { "enable_watch_timer", LS_P_BOOL, "true", 0, offsetof(struct tail_ctx, enable_watch_timer),
      "poll every file once a second", NULL, NULL, 0, 0 },
    { "enable_stat_watcher", LS_P_BOOL, "true", 0, offsetof(struct tail_ctx, enable_stat_watcher),
      "inotify watch on every path", NULL, NULL, 0, 0 },
    { "open_on_every_update", LS_P_BOOL, "false", 0,
      offsetof(struct tail_ctx, open_on_every_update),
      "open, read and close the file at every notification", NULL, NULL, 0, 0 },
    { "encoding", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct tail_ctx, encoding),
      "encoding of the lines (e.g. UTF-8); alone it only names them: bytes pass unchanged",
      NULL, NULL, 0, 0 },
    { "from_encoding", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct tail_ctx, from_encoding),
      "convert each line from this encoding (Shift_JIS, CP932, EUC-JP...) to 'encoding' (iconv); "
      "bad bytes become U+FFFD (or '?'); not UTF-16/32", NULL, NULL, 0, 0 },
    { "path_key", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct tail_ctx, path_key),
      "add the file path to each record under this key", NULL, NULL, 0, 0 },
    { "ignore_repeated_permission_error", LS_P_BOOL, "false", 0,
      offsetof(struct tail_ctx, ignore_repeated_permission_error),
      "warn about an unreadable file only once", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

/*
 * pos_files held by tail sources, per engine: two sources of one configuration must not
 * share one (fluentd refuses too), but a reload validates the next configuration while the running engine still
 * holds its pos_file, and that is no conflict.
 */
struct tail_pos_use {
    const struct ls_engine *eng;
    char *path;
};
static struct tail_pos_use *tail_pos_in_use;
static size_t tail_npos_in_use;

static void tail_read(struct tail_file *f);
static void tail_file_close(struct tail_file *f);
static void tail_new_generation(struct tail_file *f);
static void tail_read_copy(struct tail_file *f, uint64_t fp, uint64_t key, uint64_t at);

/* ------------------------------------------------------------------ */
/* configuration                                                        */

/* v0.12 flat parser parameters that fluentd's compat layer moves into <parse> */
static void tail_split_paths(struct tail_ctx *ctx)
{
    const char *p = ctx->path;
    const char *d = ctx->path_delimiter;
    size_t dl = strlen(d);

    while (p) {
        const char *e = dl ? strstr(p, d) : NULL;
        size_t len = e ? (size_t)(e - p) : strlen(p);
        const char *s = p;
        size_t i;
        bool dup = false;

        while (len && (*s == ' ' || *s == '\t')) {
            s++;
            len--;
        }
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t')) {
            len--;
        }
        for (i = 0; i < ctx->npaths; i++) {
            if (strlen(ctx->paths[i]) == len && memcmp(ctx->paths[i], s, len) == 0) {
                dup = true;
            }
        }
        if (len && !dup) {
            ctx->paths = ls_realloc(ctx->paths, (ctx->npaths + 1) * sizeof(char *));
            ctx->paths[ctx->npaths++] = ls_strndup(s, len);
        }
        p = e ? e + dl : NULL;
    }
}

/* fluentd's configure_encoding: names checked here, with the parameter's file:line */
static int tail_init_encoding(struct tail_ctx *ctx, struct ls_conf_section *sec, char *err,
                              size_t errlen)
{
    char msg[256];

    if (ctx->from_encoding && !ctx->encoding) {
        ls_conf_param_error(sec, "from_encoding", err, errlen, "'from_encoding' parameter must "
                            "be specified with 'encoding' parameter");
        return LS_ERROR;
    }
    if (ctx->encoding &&
        ls_enc_check(ctx->encoding, ctx->from_encoding != NULL, msg, sizeof(msg)) != LS_OK) {
        ls_conf_param_error(sec, "encoding", err, errlen, "'encoding': %s", msg);
        return LS_ERROR;
    }
    if (ctx->from_encoding &&
        ls_enc_check(ctx->from_encoding, false, msg, sizeof(msg)) != LS_OK) {
        ls_conf_param_error(sec, "from_encoding", err, errlen, "'from_encoding': %s", msg);
        return LS_ERROR;
    }
    if (!ctx->from_encoding) {
        return LS_OK;     /* encoding alone names the bytes (force_encoding): nothing to do */
    }
    if (ls_enc_same(ctx->from_encoding, ctx->encoding)) {
        ls_plg_warn(ctx->ins, "'encoding' and 'from_encoding' are same encoding. No effect");
        return LS_OK;
    }
    /* 1 source byte becomes at most 3 UTF-8 bytes (half-width katakana, U+FFFD for a bad byte) */
    if (ls_enc_open(&ctx->enc, ctx->from_encoding, ctx->encoding,
                      (size_t)ctx->max_line_size * 4 + 16, msg, sizeof(msg)) != LS_OK) {
        ls_conf_param_error(sec, "from_encoding", err, errlen, "%s", msg);
        return LS_ERROR;
    }
    ctx->convert = true;
    return LS_OK;
}

static int tail_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct tail_ctx *ctx = ins->ctx;
    struct ls_conf_section *ps;
    const char *star;
    size_t i;

    ctx->ins = ins;
    ls_arena_init(&ctx->arena, 8192);
    ls_record_init(&ctx->rec, &ctx->arena);
    if (strpbrk(ctx->path_delimiter, "/*%") || ctx->path_delimiter[0] == '\0') {
        ls_conf_param_error(sec, "path_delimiter", err, errlen,
                            "path_delimiter must not be empty or contain '/', '*' or '%%'");
        return LS_ERROR;
    }
    tail_split_paths(ctx);
    if (ctx->npaths == 0) {
        struct ls_conf_param *p = ls_conf_get_param(sec, "path");
        snprintf(err, errlen, "%s:%d: 'path' is empty", p->file, p->line);
        return LS_ERROR;
    }
    if (!ctx->enable_watch_timer && !ctx->enable_stat_watcher) {
        snprintf(err, errlen, "%s:%d: either enable_watch_timer or enable_stat_watcher has to be "
                 "true", sec->file, sec->line);
        return LS_ERROR;
    }
    if (ctx->follow_inodes && ctx->pos_file == NULL) {
        snprintf(err, errlen, "%s:%d: follow_inodes requires pos_file", sec->file, sec->line);
        return LS_ERROR;
    }
    if (strcmp(ctx->read_bytes_limit_str, "-1") == 0) {
        ctx->read_bytes_limit_per_second = -1;
    } else if (ls_parse_size(ctx->read_bytes_limit_str, &ctx->read_bytes_limit_per_second) !=
               LS_OK) {
        ls_conf_param_error(sec, "read_bytes_limit_per_second", err, errlen,
                            "invalid value '%s' for 'read_bytes_limit_per_second' "
                            "(expected -1 or a size like 8k, 1m)", ctx->read_bytes_limit_str);
        return LS_ERROR;
    }
    if (ctx->read_bytes_limit_per_second > 0 &&
        ctx->read_bytes_limit_per_second < (int64_t)TAIL_RBUF) {
        ctx->read_bytes_limit_per_second = TAIL_RBUF;
    }
    star = strchr(ctx->tag, '*');
    if (star) {
        const char *star2 = strchr(star + 1, '*');
        ctx->tag_star = true;
        ctx->tag_prefix = ls_strndup(ctx->tag, (size_t)(star - ctx->tag));
        ctx->tag_suffix = star2 ? ls_strndup(star + 1, (size_t)(star2 - star - 1))
                                : ls_strdup(star + 1);
    }
    if (ctx->pos_file) {
        for (i = 0; i < tail_npos_in_use; i++) {
            if (tail_pos_in_use[i].eng == ins->engine &&
                strcmp(tail_pos_in_use[i].path, ctx->pos_file) == 0) {
                struct ls_conf_param *p = ls_conf_get_param(sec, "pos_file");
                snprintf(err, errlen, "%s:%d: pos_file '%s' is already used by another tail "
                         "source", p->file, p->line, ctx->pos_file);
                ls_free(ctx->pos_file);
                ctx->pos_file = NULL;   /* not ours: destroy must not release it */
                return LS_ERROR;
            }
        }
        tail_pos_in_use = ls_realloc(tail_pos_in_use,
                                     (tail_npos_in_use + 1) * sizeof(*tail_pos_in_use));
        tail_pos_in_use[tail_npos_in_use].eng = ins->engine;
        tail_pos_in_use[tail_npos_in_use++].path = ls_strdup(ctx->pos_file);
    } else {
        ls_plg_warn(ins, "'pos_file PATH' parameter is not set to a 'tail' source; this "
                    "parameter is highly recommended to save the position to resume tailing");
    }
    if (tail_init_encoding(ctx, sec, err, errlen) != LS_OK) {
        return LS_ERROR;
    }
    ps = ls_conf_child(sec, "parse");
    if (ps == NULL) {
        const char *fmt = ls_conf_get(sec, "format");
        if (fmt == NULL || *fmt == '\0') {
            snprintf(err, errlen, "%s:%d: <parse> section is required", sec->file, sec->line);
            return LS_ERROR;
        }
        ps = ls_parser_flat_section(sec);
    }
    ctx->parse_sec = ps;
    if (ctx->emit_unmatched_lines && ls_conf_get_param(ps, "unmatched_lines") == NULL) {
        /* fluentd hands this to the (multiline) parser too */
        ls_conf_set(ps, "unmatched_lines", "true", sec->file, sec->line)->used = true;
    }
    ctx->parser = ls_instance_create(ins->engine, ins, LS_PLUGIN_PARSER, NULL, ps, err, errlen);
    if (ctx->parser == NULL) {
        return LS_ERROR;
    }
    ctx->multiline = ls_parser_is_multiline(ctx->parser);
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* helpers                                                              */

static char *tail_make_tag(struct tail_ctx *ctx, const char *path, size_t *len)
{
    struct ls_buf b;
    const char *p;
    bool last_dot = true;     /* drops leading dots: .sub(/^\./, '') after squeeze */

    if (!ctx->tag_star) {
        *len = strlen(ctx->tag);
        return ls_strdup(ctx->tag);
    }
    ls_buf_init(&b, 0);
    ls_buf_append(&b, ctx->tag_prefix, strlen(ctx->tag_prefix));
    for (p = path; *p; p++) {
        char c = *p == '/' ? '.' : *p;
        if (c == '.' && last_dot) {
            continue;
        }
        last_dot = c == '.';
        ls_buf_putc(&b, c);
    }
    ls_buf_append(&b, ctx->tag_suffix, strlen(ctx->tag_suffix));
    ls_buf_cstr(&b);
    return ls_buf_detach(&b, len);
}

static bool tail_is_glob(const struct tail_ctx *ctx, const char *p)
{
    if (ctx->glob_policy == GLOB_BACKWARD) {
        return strchr(p, '*') != NULL;
    }
    if (ctx->glob_policy == GLOB_EXTENDED) {
        return strpbrk(p, "*?[") != NULL;
    }
    return strpbrk(p, "*?[{") != NULL;
}

/* strftime the path entry with the current time (path_timezone or local) */
static char *tail_strftime(struct tail_ctx *ctx, const char *pattern, time_t now)
{
    char out[4096];
    struct tm tm;
    size_t n;

    if (strchr(pattern, '%') == NULL) {
        return ls_strdup(pattern);
    }
    if (ctx->path_timezone) {
        int off = 0;
        time_t t;
        (void)ls_tz_offset(ctx->path_timezone, (int64_t)now, &off);
        t = now + off;
        gmtime_r(&t, &tm);
    } else {
        localtime_r(&now, &tm);
    }
    /* the pattern is the user's path entry, as fluentd's Time#strftime(path) */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    n = strftime(out, sizeof(out), pattern, &tm);
#pragma GCC diagnostic pop
    if (n == 0) {
        return ls_strdup(pattern);
    }
    return ls_strdup(out);
}

/* glob(3) with the policy's metacharacters only: escape the others */
static void tail_glob(struct tail_ctx *ctx, const char *pattern, glob_t *g)
{
    struct ls_buf b;
    const char *p;
    int flags = 0;

    ls_buf_init(&b, 0);
    for (p = pattern; *p; p++) {
        bool esc = false;
        if (ctx->glob_policy == GLOB_BACKWARD) {
            esc = *p == '?' || *p == '[' || *p == ']' || *p == '\\';
        }
        if (esc) {
            ls_buf_putc(&b, '\\');
        }
        ls_buf_putc(&b, *p);
    }
    if (ctx->glob_policy == GLOB_ALWAYS) {
        flags |= GLOB_BRACE;
    }
    memset(g, 0, sizeof(*g));
    if (glob(ls_buf_cstr(&b), flags, NULL, g) != 0) {
        globfree(g);
        memset(g, 0, sizeof(*g));
    }
    ls_buf_release(&b);
}

static bool strv_has(const struct ls_strv *v, const char *s)
{
    size_t i;

    for (i = 0; i < v->n; i++) {
        if (strcmp(v->v[i], s) == 0) {
            return true;
        }
    }
    return false;
}

static void strv_add(struct ls_strv *v, const char *s)
{
    v->v = ls_realloc(v->v, (v->n + 1) * sizeof(char *));
    v->v[v->n++] = ls_strdup(s);
}

/* once per path, or once per refresh without ignore_repeated_permission_error */
static void tail_perm_warn(struct tail_ctx *ctx, const char *path, int e)
{
    if (strv_has(&ctx->perm_warned, path)) {
        return;
    }
    strv_add(&ctx->perm_warned, path);
    ls_plg_warn(ctx->ins, "open() '%s' failed (%d: %s); skipping it", path, e, strerror(e));
}

/* ---- fingerprint and source key ---- */

static bool tail_fingerprint(int fd, uint64_t *fp)
{
    char b[TAIL_FP_MAX];
    ssize_t n;
    const char *nl;
    size_t len;

    do {
        n = pread(fd, b, sizeof(b), 0);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
        return false;
    }
    nl = memchr(b, '\n', (size_t)n);
    if (nl) {
        len = (size_t)(nl - b);
    } else if ((size_t)n == sizeof(b)) {
        len = sizeof(b);
    } else {
        return false;       /* the first line is not complete yet */
    }
    /* an empty first line still identifies something: hash its newline */
    *fp = ls_source_key(b, nl ? len + 1 : len);
    return true;
}

static void tail_set_key(struct tail_file *f)
{
    uint64_t k[3];

    k[0] = f->dev;
    k[1] = f->ino;
    k[2] = f->fp;
    f->key = ls_source_key(k, sizeof(k));
}

/*
 * The key (device, inode, first line) names a generation, but copytruncate and a truncating
 * writer keep the inode, and a file that starts with a header or a banner keeps its first
 * line: the new generation had the old one's key, and the outputs dropped its lines as
 * re-reads of the old one's up to where those ended (lost). After a truncation the key is
 * taken further, (key, 1), (key, 2)..., until it is one no buffer holds records of.
 * A restart cannot know how far the chain went; it starts from the plain key (README).
 */
static bool tail_ensure_key(struct tail_file *f)
{
    uint64_t k[2];

    if (f->key) {
        return true;
    }
    if (f->fd < 0 || !tail_fingerprint(f->fd, &f->fp)) {
        return false;
    }
    tail_set_key(f);
    /* the buffers keep a position for every key they saw while running: one step per
     * generation with this first line since the start */
    for (k[0] = f->key, k[1] = 1; f->new_gen && ls_source_known(f->ctx->ins->engine, f->key);
         k[1]++) {
        f->key = ls_source_key(k, sizeof(k));
    }
    f->new_gen = false;
    return true;
}

/* ---- ghosts ---- */

static void ghost_add(struct tail_ctx *ctx, const struct tail_file *f)
{
    struct tail_ghost *g;

    if (f->fp == 0 || f->ino == 0) {
        return;
    }
    g = &ctx->ghosts[ctx->ghost_next];
    ctx->ghost_next = (ctx->ghost_next + 1) % TAIL_GHOSTS;
    if (ctx->nghosts < TAIL_GHOSTS) {
        ctx->nghosts++;
    }
    g->dev = f->dev;
    g->ino = f->ino;
    g->fp = f->fp;
    g->pos = f->safe;
    g->at = ls_mono_now();
}

static bool ghost_find(struct tail_ctx *ctx, uint64_t dev, uint64_t ino, uint64_t fp,
                       uint64_t *pos)
{
    size_t i;

    for (i = 0; i < ctx->nghosts; i++) {
        struct tail_ghost *g = &ctx->ghosts[i];
        if (g->ino == ino && g->dev == dev && g->fp == fp && fp != 0) {
            *pos = g->pos;
            g->ino = 0;    /* used up: the file is followed again */
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------------ */
/* positions                                                            */

/*
 * A draining file's progress also goes to the other entries naming its inode that no watcher
 * holds: above all the path's own entry, which a rotation leaves naming the old file until a
 * successor appears and claims it. Left behind, that entry made a restart in the meantime
 * read the drained lines again (duplicates once their chunks were delivered), or all of
 * them once the drain had ended and its own entry was dropped as unwatched. Kept, it still
 * anchors the search for generations rotated away while logship was down.
 */
static bool tail_same_dir(const char *a, const char *b)
{
    const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');
    size_t la = sa ? (size_t)(sa - a) : 0, lb = sb ? (size_t)(sb - b) : 0;

    return la == lb && strncmp(a, b, la) == 0;
}

static void tail_sync_stale_entries(struct tail_file *f, uint64_t pos)
{
    struct tail_pos *pf = f->ctx->pf;
    size_t i;

    if (!f->draining || pf == NULL || pos == TAIL_POS_UNWATCHED) {
        return;
    }
    for (i = 0; i < pf->n; i++) {
        struct tail_pos_entry *e = pf->v[i];
        /* the same directory: entries carry no device, and another file system's file may
         * have the same inode number */
        if (e != f->pe && !e->live && e->ino == f->ino && e->pos < pos &&
            tail_same_dir(e->path, f->path)) {
            (void)tail_pos_update(pf, e, pos);
        }
    }
}

static void tail_persist(struct tail_file *f, uint64_t pos)
{
    f->committed = pos;
    if (f->pe) {
        if (f->pe->ino != f->ino) {
            (void)tail_pos_update2(f->ctx->pf, f->pe, pos, f->ino);
        } else {
            (void)tail_pos_update(f->ctx->pf, f->pe, pos);
        }
    }
    tail_sync_stale_entries(f, pos);
}

static void tail_parser_reset(struct tail_file *f)
{
    struct tail_ctx *ctx = f->ctx;
    char err[256];

    f->ml_pending = false;
    if (!ctx->multiline) {
        return;
    }
    ls_instance_destroy(f->mparser);
    err[0] = '\0';
    f->mparser = ls_instance_create(ctx->ins->engine, ctx->ins, LS_PLUGIN_PARSER, NULL,
                                    ctx->parse_sec, err, sizeof(err));
    if (f->mparser == NULL) {
        /* it was created once from the same section: only out of memory gets here */
        ls_plg_error(ctx->ins, "cannot re-create the multiline parser: %s", err);
    }
}

/* Read again from pos: the records after it were not taken (or not made durable). */
static void tail_rewind(struct tail_file *f, uint64_t pos)
{
    f->read_pos = pos;
    f->line_start = pos;
    f->safe = pos;
    f->skipping = false;
    f->eof = false;
    ls_buf_reset(&f->carry);
    tail_parser_reset(f);
}

/* Make what was emitted durable, then persist. LS_OK, or LS_ERROR (rewound to the last commit). */
/* Where f's position may be persisted: what it has read, unless a filter holds lines of it
 * (concat's unfinished group), then no further than before the first of them, so that kill -9
 * reads them again. */
static uint64_t tail_commit_target(const struct tail_file *f)
{
    uint64_t h = 0;

    if (f->key && ls_source_held(f->ctx->ins->engine, f->key, &h) && h < f->safe) {
        return h > f->committed ? h : f->committed;
    }
    return f->safe;
}

static int tail_commit(struct tail_file *f, bool after_again)
{
    struct tail_ctx *ctx = f->ctx;
    uint64_t target;

    f->batch_lines = 0;
    if (ls_input_commit(ctx->ins) != LS_OK) {
        ls_plg_warn(ctx->ins, "outputs could not make records durable; reading '%s' again from "
                    "offset %llu later", f->path, (unsigned long long)f->committed);
        tail_rewind(f, f->committed);
        f->blocked = true;
        return LS_ERROR;
    }
    target = tail_commit_target(f);
    if (after_again && f->key) {
        /* a buffer that refused a record may have dropped its pending frame: never persist past
         * what the buffers hold (re-reading costs nothing, outputs drop what they have) */
        uint64_t d = ls_source_durable_pos(ctx->ins->engine, f->key);
        if (d > 0 && d < target) {
            target = d > f->committed ? d : f->committed;
            tail_rewind(f, target);
        }
    }
    if (target != f->committed) {
        tail_persist(f, target);
    }
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* lines                                                                */

static void tail_rec_start(struct tail_file *f)
{
    struct tail_ctx *ctx = f->ctx;
    struct ls_record *rec = &ctx->rec;

    ls_record_clear(rec);
    ls_arena_reset(&ctx->arena);
    rec->tag = f->tag;
    rec->tag_len = f->tag_len;
    if (ctx->read_time_set) {
        rec->time.sec = ctx->read_sec;
        rec->time.nsec = ctx->read_nsec;
    } else {
        ls_wall_now(&rec->time.sec, &rec->time.nsec);
    }
}

static int tail_emit(struct tail_file *f, uint64_t pos)
{
    struct tail_ctx *ctx = f->ctx;
    struct ls_record *rec = &ctx->rec;
    int rc;

    rec->tag = f->tag;
    rec->tag_len = f->tag_len;
    rec->src = f->key;
    rec->pos = pos;
    if (ctx->path_key) {
        struct ls_value v = ls_vstr(f->path, strlen(f->path));
        ls_record_set(rec, ctx->path_key, strlen(ctx->path_key), &v);
    }
    rc = ls_emit(ctx->ins, rec);
    ls_record_clear(rec);
    ls_arena_reset(&ctx->arena);
    return rc;
}

/* A line (or joined multiline text) that did not parse. LS_AGAIN: back-pressure. */
static int tail_unmatched(struct tail_file *f, struct ls_instance *parser, const char *line,
                          size_t len, uint64_t pos)
{
    struct tail_ctx *ctx = f->ctx;
    const char *why = ls_parser_error(parser);
    size_t dlen = 0;
    const char *d = ls_parser_declined_text(parser, &dlen);
    double now = ls_mono_now();
    struct ls_value v;
    int rc = LS_OK;

    if (d) {
        line = d;
        len = dlen;
    }
    ctx->ins->metrics.errors++;
    if (now - ctx->warn_unmatched_at >= 1.0) {
        ctx->warn_unmatched_at = now;
        ls_plg_warn(ctx->ins, "%s: \"%.*s\"%s (file '%s')", why ? why : "pattern not matched",
                    (int)(len > 200 ? 200 : len), line, len > 200 ? "..." : "", f->path);
    }
    if (ctx->emit_unmatched_lines) {
        tail_rec_start(f);
        v = ls_vstr(line, len);
        ls_record_add(&ctx->rec, "unmatched_line", 14, &v);
        rc = tail_emit(f, pos);
        if (rc != LS_AGAIN) {
            rc = LS_OK;
        }
    }
    if (ctx->emit_invalid_record_to_error && rc == LS_OK) {
        tail_rec_start(f);
        v = ls_vstr(line, len);
        ls_record_add(&ctx->rec, "message", 7, &v);
        ctx->rec.src = f->key;
        ctx->rec.pos = pos;
        (void)ls_emit_error(ctx->ins, &ctx->rec, why ? why : "pattern not matched");
        ls_record_clear(&ctx->rec);
        ls_arena_reset(&ctx->arena);
    }
    return rc;
}

/* from_encoding -> encoding. LS_DECLINED: the converted line would pass its cap (skipped). */
static int tail_convert(struct tail_file *f, const char **line, size_t *len)
{
    struct tail_ctx *ctx = f->ctx;
    long bad = ls_enc_convert(&ctx->enc, *line, *len, line, len);
    double now;

    if (bad == 0) {
        return LS_OK;
    }
    now = ls_mono_now();
    if (bad < 0) {
        ctx->ins->metrics.dropped++;
        ls_plg_warn(ctx->ins, "a line of %zu bytes in '%s' is longer than %zu bytes once "
                    "converted from %s to %s; skipped", *len, f->path, ctx->enc.out.max,
                    ctx->from_encoding, ctx->encoding);
        return LS_DECLINED;
    }
    ctx->enc_bad_lines++;
    if (now - ctx->warn_enc_at >= 1.0) {
        ctx->warn_enc_at = now;
        ls_plg_warn(ctx->ins, "%llu line(s) had bytes that are not valid %s or have no %s "
                    "equivalent (last in '%s', %ld replaced): replaced with %s",
                    (unsigned long long)ctx->enc_bad_lines, ctx->from_encoding, ctx->encoding,
                    f->path, bad, ctx->enc.repl_len == 1 ? "'?'" : "U+FFFD");
        ctx->enc_bad_lines = 0;
    }
    return LS_OK;
}

/* One complete line [start, end). LS_AGAIN: not taken, the file was rewound. */
static int tail_line(struct tail_file *f, const char *line, size_t len, uint64_t start,
                     uint64_t end)
{
    struct tail_ctx *ctx = f->ctx;
    uint64_t before = f->safe;
    int rc, erc;

    if (len && line[len - 1] == '\r') {
        len--;
    }
    if (ctx->convert && tail_convert(f, &line, &len) != LS_OK) {
        if (!f->ml_pending) {
            f->safe = end;
        }
        return LS_OK;
    }
    tail_rec_start(f);
    if (!ctx->multiline) {
        rc = ls_parser_parse(ctx->parser, line, len, &ctx->rec);
        if (rc == LS_OK) {
            erc = tail_emit(f, end);
        } else {
            ls_record_clear(&ctx->rec);
            erc = tail_unmatched(f, ctx->parser, line, len, end);
        }
        if (erc == LS_AGAIN) {
            tail_rewind(f, before);
            return LS_AGAIN;
        }
        f->safe = end;
        return LS_OK;
    }

    if (f->mparser == NULL) {
        return LS_ERROR;
    }
    f->last_line_at = ls_mono_now();
    rc = ls_parser_parse(f->mparser, line, len, &ctx->rec);
    if (rc == LS_AGAIN) {
        /* buffered: part of the pending record */
        if (!f->ml_pending) {
            f->ml_pending = true;
            f->ml_start = start;
        }
        f->ml_end = end;
        f->safe = f->ml_start;
        return LS_OK;
    }
    if (rc == LS_OK) {
        /* the previous record is complete; this line starts the next one */
        erc = tail_emit(f, f->ml_pending ? f->ml_end : start);
    } else {
        ls_record_clear(&ctx->rec);
        erc = tail_unmatched(f, f->mparser, line, len, f->ml_pending ? f->ml_end : end);
    }
    if (erc == LS_AGAIN) {
        tail_rewind(f, before);
        return LS_AGAIN;
    }
    /* the current line may now be pending (it is if it was a first line) */
    f->ml_pending = true;
    f->ml_start = start;
    f->ml_end = end;
    f->safe = start;
    return LS_OK;
}

/* Emit the multiline parser's pending record. LS_AGAIN: not taken (rewound). */
static int tail_ml_flush(struct tail_file *f)
{
    struct tail_ctx *ctx = f->ctx;
    uint64_t before = f->safe;
    int rc, erc = LS_OK;

    if (!ctx->multiline || !f->ml_pending || f->mparser == NULL) {
        return LS_OK;
    }
    tail_rec_start(f);
    rc = ls_parser_flush(f->mparser, &ctx->rec);
    if (rc == LS_OK) {
        erc = tail_emit(f, f->ml_end);
    } else {
        ls_record_clear(&ctx->rec);
        if (ls_parser_declined_text(f->mparser, &(size_t){0}) != NULL) {
            erc = tail_unmatched(f, f->mparser, "", 0, f->ml_end);
        }
    }
    if (erc == LS_AGAIN) {
        tail_rewind(f, before);
        return LS_AGAIN;
    }
    f->ml_pending = false;
    f->safe = f->ml_end;
    return LS_OK;
}

static void tail_drop_long(struct tail_file *f, uint64_t len)
{
    struct tail_ctx *ctx = f->ctx;
    double now = ls_mono_now();

    ctx->ins->metrics.dropped++;
    if (now - ctx->warn_long_at >= 1.0) {
        ctx->warn_long_at = now;
        ls_plg_warn(ctx->ins, "a line of %s%llu bytes in '%s' is longer than max_line_size %lld; "
                    "skipped", len > (uint64_t)ctx->max_line_size ? "more than " : "",
                    (unsigned long long)(len > (uint64_t)ctx->max_line_size
                                         ? (uint64_t)ctx->max_line_size : len),
                    f->path, (long long)ctx->max_line_size);
    }
}

/* Remember the bytes before f->safe when this block [base, base + n) holds them: they tell a
 * copy of this generation (copytruncate's access.log.1) from any other file with its first line. */
static void tail_sign(struct tail_file *f, const char *p, uint64_t base, size_t n)
{
    size_t at, k;

    if (f->safe <= base || f->safe > base + n || f->safe == f->sig_pos) {
        return;
    }
    at = (size_t)(f->safe - base);
    k = at < sizeof(f->sig) ? at : sizeof(f->sig);
    memcpy(f->sig, p + at - k, k);
    f->sig_len = (uint8_t)k;
    f->sig_pos = f->safe;
}

/* Split a block read at f->read_pos into lines. LS_AGAIN: stopped (rewound or commit failed). */
static int tail_block(struct tail_file *f, const char *p, size_t n)
{
    struct tail_ctx *ctx = f->ctx;
    uint64_t base = f->read_pos;
    size_t i = 0;

    while (i < n) {
        const char *nl = memchr(p + i, '\n', n - i);
        size_t seg;
        uint64_t end;
        int rc;

        if (nl == NULL) {
            size_t rest = n - i;
            if (!f->skipping) {
                if (f->carry.len + rest > (size_t)ctx->max_line_size) {
                    tail_drop_long(f, f->carry.len + rest + 1);
                    ls_buf_reset(&f->carry);
                    f->skipping = true;
                } else {
                    ls_buf_append(&f->carry, p + i, rest);
                }
            }
            tail_sign(f, p, base, n);
            f->read_pos = base + n;
            return LS_OK;
        }
        seg = (size_t)(nl - (p + i));
        end = base + (uint64_t)(nl - p) + 1;
        if (f->skipping) {
            f->skipping = false;
            if (!f->ml_pending) {
                f->safe = end;
            }
            rc = LS_OK;
        } else if (f->carry.len + seg > (size_t)ctx->max_line_size) {
            tail_drop_long(f, f->carry.len + seg);
            ls_buf_reset(&f->carry);
            if (!f->ml_pending) {
                f->safe = end;
            }
            rc = LS_OK;
        } else {
            if (f->key == 0 && !tail_ensure_key(f)) {
                /* the first line vanished under us (truncated): start over at the next check */
                tail_rewind(f, 0);
                return LS_AGAIN;
            }
            if (f->carry.len) {
                ls_buf_append(&f->carry, p + i, seg);
                rc = tail_line(f, f->carry.p, f->carry.len, f->line_start, end);
            } else {
                rc = tail_line(f, p + i, seg, f->line_start, end);
            }
            if (rc == LS_AGAIN) {
                tail_sign(f, p, base, n);
                return LS_AGAIN;
            }
            ls_buf_reset(&f->carry);
        }
        f->line_start = end;
        f->read_pos = end;
        i = (size_t)(nl - p) + 1;
        if (++f->batch_lines >= (uint64_t)ctx->read_lines_limit) {
            if (tail_commit(f, false) != LS_OK) {
                return LS_AGAIN;
            }
        }
    }
    tail_sign(f, p, base, n);
    f->read_pos = base + n;
    return LS_OK;
}

/* The file no longer starts with the first line of the generation we read (checked after a
 * read, so a truncation before it cannot go unseen). */
static bool tail_generation_changed(struct tail_file *f)
{
    uint64_t fp;

    return !tail_fingerprint(f->fd, &fp) || fp != f->fp;
}

/* Read from the file until EOF, a limit, or back-pressure; commit what was emitted. */
static void tail_read(struct tail_file *f)
{
    struct tail_ctx *ctx = f->ctx;
    size_t total = 0;
    int rc = LS_OK;

    if (ctx->paused || ctx->stopped || f->fd < 0) {
        return;
    }
    f->blocked = false;
    for (;;) {
        ssize_t n;
        size_t want = TAIL_RBUF;

        if (ctx->read_bytes_limit_per_second > 0) {
            if (f->window_bytes >= (uint64_t)ctx->read_bytes_limit_per_second) {
                f->eof = false;
                break;    /* the 1 s timer opens the next window */
            }
        }
        if (total >= TAIL_CALL_MAX) {
            f->eof = false;
            ls_timer_start(ctx->kick, 0.0, 0.0);   /* let the loop breathe, then go on */
            break;
        }
        do {
            n = pread(f->fd, ctx->rbuf, want, (off_t)f->read_pos);
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
            ls_plg_warn(ctx->ins, "read() '%s' failed (%d: %s)", f->path, errno, strerror(errno));
            break;
        }
        if (n == 0) {
            f->eof = true;
            break;
        }
        if (f->key && tail_generation_changed(f)) {
            /* copytruncate and the writer already past our offset: these bytes are the new
             * generation's, and must not be taken for the rest of the old one */
            tail_new_generation(f);
            continue;
        }
        f->eof = false;
        f->window_bytes += (uint64_t)n;
        total += (size_t)n;
        ls_wall_now(&ctx->read_sec, &ctx->read_nsec);
        ctx->read_time_set = true;
        rc = tail_block(f, ctx->rbuf, (size_t)n);
        ctx->read_time_set = false;
        if (rc == LS_AGAIN) {
            break;
        }
        if ((size_t)n < want) {
            /* a short read of a regular file ends at its end: a write after it notifies again
             * (or the timer sees it), so one pread less per wake-up of a file written a little */
            f->eof = true;
            break;
        }
    }
    if (rc == LS_AGAIN) {
        f->blocked = true;
        (void)tail_commit(f, true);
        f->blocked = true;
        return;
    }
    /* in --oneshot the end of the file ends the pending multiline record */
    if (f->eof && ls_oneshot(ctx->ins->engine) && f->ml_pending) {
        if (tail_ml_flush(f) == LS_AGAIN) {
            f->blocked = true;
            (void)tail_commit(f, true);
            f->blocked = true;
            return;
        }
    }
    if (f->safe != f->committed || f->batch_lines) {
        (void)tail_commit(f, false);
    }
    if (f->eof && ctx->open_on_every_update && !f->draining && f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
}

/* ------------------------------------------------------------------ */
/* files                                                                */

static void tail_stat_cb(struct ls_fstat *st, void *arg);

static struct tail_file *tail_file_new(struct tail_ctx *ctx, const char *path, bool literal)
{
    struct tail_file *f = ls_calloc(1, sizeof(*f));

    f->ctx = ctx;
    f->path = ls_strdup(path);
    f->tag = tail_make_tag(ctx, path, &f->tag_len);
    f->literal = literal;
    f->fd = -1;
    ls_buf_init(&f->carry, 0);
    if (ctx->multiline) {
        tail_parser_reset(f);
    }
    f->next = ctx->files;
    ctx->files = f;
    if (ctx->enable_stat_watcher) {
        f->st = ls_fstat_new(ctx->ins, path, ctx->enable_watch_timer ? 5.0 : 1.0, tail_stat_cb, f);
    }
    return f;
}

static void tail_file_free(struct tail_file *f)
{
    struct tail_ctx *ctx = f->ctx;
    struct tail_file **pp;

    for (pp = &ctx->files; *pp; pp = &(*pp)->next) {
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    }
    ls_fstat_free(f->st);
    if (f->fd >= 0) {
        close(f->fd);
    }
    ls_instance_destroy(f->mparser);
    ls_buf_release(&f->carry);
    ls_free(f->path);
    ls_free(f->tag);
    ls_free(f);
}

/* Where a file found for the first time starts when not from the head: after the last complete
 * line (a line being written when we start is read whole once it ends). */
static uint64_t tail_eof_start(int fd, uint64_t size)
{
    char b[4096];
    uint64_t at = size;

    while (at > 0 && size - at < (1u << 20)) {
        size_t want = at > sizeof(b) ? sizeof(b) : (size_t)at;
        ssize_t n = pread(fd, b, want, (off_t)(at - want));
        const char *nl;
        if (n != (ssize_t)want) {
            return size;
        }
        nl = memrchr(b, '\n', want);
        if (nl) {
            return at - want + (uint64_t)(nl - b) + 1;
        }
        at -= want;
    }
    return at == 0 ? 0 : size;
}

/* Start reading f at pos (adjusted by what the buffers durably hold for this generation). */
static void tail_file_position(struct tail_file *f, uint64_t pos, uint64_t size)
{
    struct tail_ctx *ctx = f->ctx;

    if (tail_ensure_key(f)) {
        uint64_t d = ls_source_durable_pos(ctx->ins->engine, f->key);
        if (d > pos && d <= size) {
            ls_plg_info(ctx->ins, "'%s': the buffer already holds records up to offset %llu "
                        "(pos_file: %llu); resuming there", f->path, (unsigned long long)d,
                        (unsigned long long)pos);
            pos = d;
        }
    }
    f->read_pos = f->line_start = f->safe = pos;
    f->committed = pos;
}

static int tail_file_open_fd(struct tail_file *f, struct stat *st)
{
    int fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct rlimit rl;

    st->st_mode = 0;
    if (fd < 0) {
        return LS_ERROR;
    }
    /*
     * Leave an eighth of the fd limit (16..256) to the buffer's chunk files,
     * the outputs' sockets and the pos_file: a glob matching more files than
     * the limit must not starve the rest of the agent, or nothing at all
     * could be buffered. Descriptors are allocated lowest first, so fd
     * itself tells how many are in use.
     */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        rlim_t reserve = rl.rlim_cur / 8 < 16 ? 16 : rl.rlim_cur / 8 > 256 ? 256 : rl.rlim_cur / 8;
        if ((rlim_t)fd + reserve >= rl.rlim_cur) {
            close(fd);
            errno = EMFILE;
            return LS_ERROR;
        }
    }
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        errno = EISDIR;     /* st_mode tells what it is */
        return LS_ERROR;
    }
    f->fd = fd;
    f->dev = (uint64_t)st->st_dev;
    f->ino = (uint64_t)st->st_ino;
    f->fp = 0;
    f->key = 0;
    return LS_OK;
}

static struct tail_file *tail_find_ino(struct tail_ctx *ctx, uint64_t dev, uint64_t ino,
                                       const struct tail_file *except)
{
    struct tail_file *o;

    for (o = ctx->files; o; o = o->next) {
        if (o != except && o->fd >= 0 && o->ino == ino && o->dev == dev) {
            return o;
        }
    }
    return NULL;
}

/* The name a file has now (after a rename), from /proc; NULL when deleted or unknown. */
static char *tail_fd_path(int fd)
{
    char link[64], buf[4096];
    ssize_t n;

    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, buf, sizeof(buf) - 1);
    if (n <= 0) {
        return NULL;
    }
    buf[n] = '\0';
    if (n > 10 && strcmp(buf + n - 10, " (deleted)") == 0) {
        return NULL;
    }
    return ls_strdup(buf);
}

static bool tail_ino_followed(struct tail_ctx *ctx, uint64_t ino)
{
    struct tail_file *o;

    for (o = ctx->files; o; o = o->next) {
        if (o->fd >= 0 && o->ino == ino) {
            return true;
        }
    }
    return false;
}

/*
 * The names of one directory by inode, read once: the start-up search for the files of
 * many pos_file entries would otherwise read the directory again for each entry.
 */
struct ino_name {
    uint64_t ino;
    char *name;
};

struct dir_inos {
    char *dir;
    struct ino_name *v;         /* sorted by inode */
    size_t n;
};

struct dir_ino_cache {
    struct dir_inos *d;
    size_t n;
};

static int cmp_ino_name(const void *a, const void *b)
{
    uint64_t x = ((const struct ino_name *)a)->ino, y = ((const struct ino_name *)b)->ino;

    return x < y ? -1 : x > y;
}

static struct dir_inos *dir_inos_get(struct dir_ino_cache *c, const char *dir)
{
    struct dir_inos *di;
    struct dirent *de;
    size_t i, cap = 0;
    DIR *d;

    for (i = 0; i < c->n; i++) {
        if (strcmp(c->d[i].dir, dir) == 0) {
            return &c->d[i];
        }
    }
    c->d = ls_realloc(c->d, (c->n + 1) * sizeof(*c->d));
    di = &c->d[c->n++];
    di->dir = ls_strdup(dir);
    di->v = NULL;
    di->n = 0;
    d = opendir(dir);
    while (d && (de = readdir(d)) != NULL) {
        if (di->n == cap) {
            cap = cap ? cap * 2 : 64;
            di->v = ls_realloc(di->v, cap * sizeof(*di->v));
        }
        di->v[di->n].ino = (uint64_t)de->d_ino;
        di->v[di->n++].name = ls_strdup(de->d_name);
    }
    if (d) {
        closedir(d);
    }
    if (di->n) {
        qsort(di->v, di->n, sizeof(*di->v), cmp_ino_name);
    }
    return di;
}

static void dir_ino_cache_release(struct dir_ino_cache *c)
{
    size_t i, k;

    for (i = 0; i < c->n; i++) {
        for (k = 0; k < c->d[i].n; k++) {
            ls_free(c->d[i].v[k].name);
        }
        ls_free(c->d[i].v);
        ls_free(c->d[i].dir);
    }
    ls_free(c->d);
    c->d = NULL;
    c->n = 0;
}

/* name in dir, as tail_opendir_of split the path (slash: where its last '/' was); caller
 * frees */
static char *tail_dir_join(const char *dir, const char *slash, const char *name)
{
    return slash ? ls_asprintf("%s%s%s", dir, slash == dir ? "" : "/", name) : ls_strdup(name);
}

/* name in dir (slash: where path's last '/' was) if it is the regular file ino, else NULL */
static char *tail_locate_try(const char *dir, const char *slash, const char *name, uint64_t ino,
                             struct stat *st)
{
    char *p = tail_dir_join(dir, slash, name);

    if (stat(p, st) == 0 && (uint64_t)st->st_ino == ino && S_ISREG(st->st_mode)) {
        return p;
    }
    ls_free(p);
    return NULL;
}

/* Find inode ino as a regular file at path, or else in path's directory (logrotate renamed it
 * while we were down), that directory read through cache if there is one. The path found
 * (caller frees) with *st, or NULL. */
static char *tail_locate_in(const char *path, uint64_t ino, struct stat *st,
                            struct dir_ino_cache *cache)
{
    char *dir, *slash, *found = NULL;
    DIR *d = NULL;
    struct dirent *de;

    if (stat(path, st) == 0 && (uint64_t)st->st_ino == ino && S_ISREG(st->st_mode)) {
        return ls_strdup(path);
    }
    dir = ls_strdup(path);
    slash = strrchr(dir, '/');
    if (slash) {
        *(slash == dir ? slash + 1 : slash) = '\0';
    }
    if (cache) {
        struct dir_inos *di = dir_inos_get(cache, slash ? dir : ".");
        size_t lo = 0, hi = di->n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (di->v[mid].ino < ino) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        for (; lo < di->n && di->v[lo].ino == ino && found == NULL; lo++) {
            found = tail_locate_try(dir, slash, di->v[lo].name, ino, st);
        }
    } else {
        d = opendir(slash ? dir : ".");
    }
    while (d && found == NULL && (de = readdir(d)) != NULL) {
        if ((uint64_t)de->d_ino == ino) {
            found = tail_locate_try(dir, slash, de->d_name, ino, st);
        }
    }
    if (d) {
        closedir(d);
    }
    ls_free(dir);
    return found;
}

static char *tail_locate(const char *path, uint64_t ino, struct stat *st)
{
    return tail_locate_in(path, ino, st, NULL);
}

/*
 * A new entry for a file under the name path. An older entry with that name and another inode
 * is a file renamed again since its entry was written (a drain's access.log.1, now
 * access.log.2 after the next rotation): it moves first to the name its file has now. A start
 * keeps only the last line of a name (fluentd's rule), so two lines named access.log.1 lost
 * the older file's position: its lines written late were never read, and it was then taken
 * for a copytruncate copy newer than the pos_file, which read the followed file again.
 */
static struct tail_pos_entry *tail_pos_add_named(struct tail_ctx *ctx, const char *path,
                                                 uint64_t pos, uint64_t ino)
{
    struct tail_pos *pf = ctx->pf;
    size_t i;

    for (i = 0; !ctx->follow_inodes && i < pf->n; i++) {
        struct tail_pos_entry *e = pf->v[i];
        struct tail_file *o;
        struct stat st;
        char *now;

        if (e->ino == ino || e->pos == TAIL_POS_UNWATCHED || strcmp(e->path, path) != 0 ||
            (now = tail_locate(path, e->ino, &st)) == NULL) {
            continue;
        }
        if (strcmp(now, path) != 0) {
            for (o = ctx->files; o; o = o->next) {
                if (o->pe == e && strcmp(o->path, e->path) == 0) {
                    ls_free(o->path);
                    o->path = ls_strdup(now);
                }
            }
            (void)tail_pos_rename(pf, e, now);
        }
        ls_free(now);
    }
    return tail_pos_add(pf, path, pos, ino);
}

/* Read a file that is no longer under a followed path (found at start) from pos to its end. */
static struct tail_file *tail_drain_new(struct tail_ctx *ctx, char *path, struct stat *st,
                                        uint64_t pos, const char *tag, size_t tag_len)
{
    struct tail_file *of = ls_calloc(1, sizeof(*of));

    of->ctx = ctx;
    of->path = path;
    of->tag = ls_strndup(tag, tag_len);
    of->tag_len = tag_len;
    of->fd = -1;
    ls_buf_init(&of->carry, 0);
    if (ctx->multiline) {
        tail_parser_reset(of);
    }
    of->next = ctx->files;
    ctx->files = of;
    if (tail_file_open_fd(of, st) != LS_OK) {
        tail_file_free(of);
        return NULL;
    }
    tail_file_position(of, pos <= (uint64_t)st->st_size ? pos : 0, (uint64_t)st->st_size);
    of->draining = true;
    of->drain_deadline = ls_mono_now() + ctx->rotate_wait;
    ls_plg_info(ctx->ins, "reading the rest of rotated '%s' from offset %llu", path,
                (unsigned long long)of->read_pos);
    return of;
}

/* Birth time of fd (or of path when fd < 0) as ns; false when the file system keeps none. */
static bool tail_birth(int fd, const char *path, int64_t *ns)
{
    struct statx sx;
    int rc = fd >= 0 ? statx(fd, "", AT_EMPTY_PATH, STATX_BTIME, &sx)
                     : statx(AT_FDCWD, path, 0, STATX_BTIME, &sx);

    if (rc != 0 || !(sx.stx_mask & STATX_BTIME)) {
        return false;
    }
    *ns = (int64_t)sx.stx_btime.tv_sec * 1000000000 + sx.stx_btime.tv_nsec;
    return true;
}

static bool tail_pos_has_ino(const struct tail_pos *pf, uint64_t ino)
{
    size_t i;

    for (i = 0; pf && i < pf->n; i++) {
        if (pf->v[i]->ino == ino && pf->v[i]->pos != TAIL_POS_UNWATCHED) {
            return true;
        }
    }
    return false;
}

/* Names logrotate gives compressed generations: never text we could read. */
static bool tail_compressed_name(const char *name)
{
    static const char *const ext[] = { ".gz", ".bz2", ".xz", ".zst", ".lz4", ".lzo", ".Z",
                                       ".zip", ".br" };
    size_t n = strlen(name), i;

    for (i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
        size_t e = strlen(ext[i]);
        if (n > e && strcmp(name + n - e, ext[i]) == 0) {
            return true;
        }
    }
    return false;
}

/*
 * Generations between the one the pos_file names (A, born a_birth) and the one the path
 * names now (nf, C): logship was down, or slow to look, across more than one rotation, so
 * a generation B came and went that no pos_file entry ever named. fluentd and Fluent Bit
 * lose it. A file is taken as such a generation when its name is the path's name plus a
 * suffix (access.log.1, access.log-20261121), it is not compressed, no entry and no watcher
 * knows its inode, it was born after A and before C, it stopped growing about when C
 * appeared (a log still being written is another log, not a generation), and its first line
 * is not A's (cp access.log access.log.bak is a copy, not a generation). It is read from
 * its head, with its own pos_file entry written before the path's entry moves on.
 */
/* Open path's directory: *dir (caller frees) is its name, *slash where path's last '/' was
 * (NULL: the current directory), *base the file's name. */
static DIR *tail_opendir_of(const char *path, char **dir, char **slash, const char **base)
{
    *dir = ls_strdup(path);
    *slash = strrchr(*dir, '/');
    *base = *slash ? path + (*slash - *dir) + 1 : path;
    if (*slash) {
        *(*slash == *dir ? *slash + 1 : *slash) = '\0';
    }
    return opendir(*slash ? *dir : ".");
}

/* A directory entry that may be a generation or a copy of the path named base: base plus a
 * suffix, not compressed, neither inode ino nor other, followed by nobody, and named by no
 * live pos_file entry. */
static bool tail_unclaimed_sibling(struct tail_ctx *ctx, const struct dirent *de,
                                   const char *base, size_t blen, uint64_t ino, uint64_t other)
{
    uint64_t d_ino = (uint64_t)de->d_ino;

    return strncmp(de->d_name, base, blen) == 0 && de->d_name[blen] != '\0' &&
           !tail_compressed_name(de->d_name) && d_ino != ino && d_ino != other &&
           !tail_ino_followed(ctx, d_ino) && !tail_pos_has_ino(ctx->pf, d_ino);
}

static bool tail_path_fingerprint(const char *path, uint64_t *fp)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    bool ok;

    if (fd < 0) {
        return false;
    }
    ok = tail_fingerprint(fd, fp);
    close(fd);
    return ok;
}

/* A generation found after it left the path (p, taken): read from its head to its end under
 * its own key, with its own pos_file entry written before the path's entry moves on; now
 * (read_now, once started) or at the next look. */
static void tail_drain_whole(struct tail_ctx *ctx, char *p, struct stat *st,
                             const struct tail_file *like, bool read_now)
{
    struct tail_file *of = tail_drain_new(ctx, p, st, 0, like->tag, like->tag_len);

    if (of && ctx->pf) {
        of->pe = tail_pos_add_named(ctx, of->path, of->committed, of->ino);
        of->pe->live = true;
    }
    if (of && read_now && ctx->started) {
        tail_read(of);
    }
}

static void tail_find_generations(struct tail_ctx *ctx, struct tail_file *nf, uint64_t a_ino,
                                  int64_t a_birth, uint64_t a_fp)
{
    const int64_t slack = (int64_t)60 * 1000000000;   /* B's last write after C's birth */
    char *dir, *slash;
    const char *base;
    size_t blen;
    int64_t c_birth;
    DIR *d;
    struct dirent *de;

    if (ctx->follow_inodes || !tail_birth(nf->fd, NULL, &c_birth) || c_birth <= a_birth) {
        return;
    }
    d = tail_opendir_of(nf->path, &dir, &slash, &base);
    blen = strlen(base);
    while (d && (de = readdir(d)) != NULL) {
        struct stat st;
        int64_t b_birth, b_mtime;
        uint64_t b_fp;
        char *p;

        if (!tail_unclaimed_sibling(ctx, de, base, blen, nf->ino, a_ino)) {
            continue;
        }
        p = tail_dir_join(dir, slash, de->d_name);
        b_mtime = 0;
        if (stat(p, &st) == 0) {
            b_mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        }
        if (b_mtime == 0 || !S_ISREG(st.st_mode) || st.st_size == 0 ||
            (uint64_t)st.st_dev != nf->dev || !tail_birth(-1, p, &b_birth) ||
            b_birth <= a_birth || b_birth >= c_birth || b_mtime > c_birth + slack ||
            (a_fp != 0 && tail_path_fingerprint(p, &b_fp) && b_fp == a_fp)) {
            ls_free(p);
            continue;
        }
        ls_plg_info(ctx->ins, "'%s' is a generation of '%s' rotated away before logship "
                    "looked at it: reading it from the head", p, nf->path);
        tail_drain_whole(ctx, p, &st, nf, false);
    }
    if (d) {
        closedir(d);
    }
    ls_free(dir);
}

/*
 * Where A's unread end starts: the furthest of the entries naming A's inode. A rotation seen
 * live leaves two: the path's, frozen at the rotation until a successor file claims it, and
 * the drain's under A's new name (access.log.1), which goes on. A crash in between (the
 * successor not there yet, so not started) left the path's behind the drain's, and resuming
 * from it read the drained lines again: duplicates once their chunks had been delivered.
 * Only entries under the name the file has now (path, located by inode) count: an inode
 * number the file system gave again to a later file must not skip that file's lines. An
 * unwatched entry (all ones) does not count: the file may have grown since the drain ended,
 * and the path's entry got the drain's last position then (tail_sync_stale_entries).
 */
static uint64_t tail_furthest_pos(const struct tail_ctx *ctx, const struct tail_pos_entry *pe,
                                  const char *path)
{
    uint64_t pos = pe->pos;
    char *real = NULL;
    bool resolved = false;
    size_t i;

    for (i = 0; ctx->pf && i < ctx->pf->n; i++) {
        const struct tail_pos_entry *e = ctx->pf->v[i];
        if (e == pe || e->ino != pe->ino || e->pos <= pos || e->pos == TAIL_POS_UNWATCHED) {
            continue;
        }
        if (strcmp(e->path, path) != 0 && !resolved) {
            real = realpath(path, NULL);    /* only when a candidate names it otherwise */
            resolved = true;
        }
        if (strcmp(e->path, path) == 0 || (real && strcmp(e->path, real) == 0)) {
            pos = e->pos;
        }
    }
    free(real);
    return pos;
}

/* The path's entry names another inode (A): the file was rotated while we were down, or is
 * being rotated now (A is followed and draining). Drain A's unread end, and look for the
 * generations in between. */
static void tail_find_rotated(struct tail_ctx *ctx, struct tail_file *nf, struct tail_pos_entry *pe)
{
    struct tail_file *of;
    struct stat st;
    int64_t a_birth;
    uint64_t a_fp, a_pos;
    bool have_birth;
    char *p;

    for (of = ctx->files; of; of = of->next) {
        if (of != nf && of->fd >= 0 && of->ino == pe->ino) {
            break;
        }
    }
    if (of) {
        /* a rotation we saw happen: the old file is already being drained */
        if (tail_birth(of->fd, NULL, &a_birth)) {
            if (!tail_fingerprint(of->fd, &a_fp)) {
                a_fp = 0;
            }
            tail_find_generations(ctx, nf, pe->ino, a_birth, a_fp);
        }
        return;
    }
    p = tail_locate(nf->path, pe->ino, &st);
    if (p == NULL) {
        return;
    }
    have_birth = tail_birth(-1, p, &a_birth);
    if (!tail_path_fingerprint(p, &a_fp)) {
        a_fp = 0;
    }
    a_pos = tail_furthest_pos(ctx, pe, p);
    if ((uint64_t)st.st_size <= a_pos) {
        ls_free(p);
    } else {
        ls_plg_info(ctx->ins, "'%s' was rotated while logship was down", nf->path);
        of = tail_drain_new(ctx, p, &st, a_pos, nf->tag, nf->tag_len);
        if (of && ctx->pf) {
            /* its own entry, written before the path's entry moves to the new inode */
            of->pe = tail_pos_add_named(ctx, of->path, of->committed, of->ino);
            of->pe->live = true;
        }
    }
    if (have_birth) {
        tail_find_generations(ctx, nf, pe->ino, a_birth, a_fp);
    }
}

/*
 * Entries nobody claimed at start: files rotated away whose end we had not read yet. With
 * tens of thousands of entries this takes a while (a directory search each), so a TERM
 * stops it: false then, and the entries not looked at must stay (no compaction).
 */
static bool tail_recover_leftovers(struct tail_ctx *ctx)
{
    struct dir_ino_cache cache = { NULL, 0 };
    size_t i;

    for (i = 0; ctx->pf && i < ctx->pf->n; i++) {
        struct tail_pos_entry *e = ctx->pf->v[i];
        struct tail_file *o, *best = NULL;
        struct stat st;
        char *p;

        if (i % 256 == 255 && ls_stop_requested()) {
            ls_plg_info(ctx->ins, "stopping: %zu of %zu pos_file entries not checked for "
                        "unread rotated files; they are kept", ctx->pf->n - i, ctx->pf->n);
            dir_ino_cache_release(&cache);
            return false;
        }
        if (e->live || e->pos == TAIL_POS_UNWATCHED || e->ino == 0 ||
            tail_ino_followed(ctx, e->ino)) {
            continue;
        }
        p = tail_locate_in(e->path, e->ino, &st, &cache);
        if (p == NULL) {
            continue;
        }
        if ((uint64_t)st.st_size <= e->pos || tail_furthest_pos(ctx, e, p) > e->pos) {
            /* read to its end, or another entry (the drain's, under this name) is further
             * and is taken on its own, unless it says the file was read to its end */
            ls_free(p);
            continue;
        }
        /* its records get the tag of the followed path it was rotated from (access.log.1 ->
         * access.log): the longest followed path that prefixes its name */
        for (o = ctx->files; o; o = o->next) {
            if (!o->draining && strncmp(e->path, o->path, strlen(o->path)) == 0 &&
                (best == NULL || strlen(o->path) > strlen(best->path))) {
                best = o;
            }
        }
        if (best) {
            o = tail_drain_new(ctx, p, &st, e->pos, best->tag, best->tag_len);
        } else {
            size_t tl;
            char *tag = tail_make_tag(ctx, e->path, &tl);
            o = tail_drain_new(ctx, p, &st, e->pos, tag, tl);
            ls_free(tag);
        }
        if (o && (ctx->follow_inodes || strcmp(e->path, p) == 0)) {
            o->pe = e;
            e->live = true;
        } else if (o) {
            /* e is the path's own entry (access.log, naming the old file): the drain takes an
             * entry under the name the file has, and e stays free for the successor to
             * claim. Held by the drain, e made the successor append a second access.log
             * line, and loading keeps only the later one: the old file's was lost. */
            o->pe = tail_pos_add_named(ctx, o->path, e->pos, e->ino);
            o->pe->live = true;
        }
    }
    dir_ino_cache_release(&cache);
    return true;
}

static bool tail_line_end(int fd, uint64_t pos)
{
    char c;

    return pread(fd, &c, 1, (off_t)(pos - 1)) != 1 || c == '\n';
}

/* A file named after f's path (copytruncate's copy), written after logship's last pos_file
 * write, whose first line is not f's: f was truncated since. */
static bool tail_copied_since(struct tail_file *f)
{
    struct tail_ctx *ctx = f->ctx;
    char *dir, *slash;
    const char *base;
    uint64_t fp, cfp;
    bool yes = false;
    struct dirent *de;
    DIR *d;

    if (ctx->pos_mtime == 0 || ctx->follow_inodes || !tail_fingerprint(f->fd, &fp)) {
        return false;
    }
    d = tail_opendir_of(f->path, &dir, &slash, &base);
    while (d && !yes && (de = readdir(d)) != NULL) {
        struct stat st;
        char *p;

        /* a file the pos_file names or we follow is a rotated generation, not a copy (a
         * renamed access.log.1 that nginx wrote to until its reopen) */
        if (!tail_unclaimed_sibling(ctx, de, base, strlen(base), f->ino, f->ino)) {
            continue;
        }
        p = tail_dir_join(dir, slash, de->d_name);
        yes = stat(p, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_dev == f->dev &&
              (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec > ctx->pos_mtime &&
              tail_path_fingerprint(p, &cfp) && cfp != fp;
        ls_free(p);
    }
    if (d) {
        closedir(d);
    }
    ls_free(dir);
    return yes;
}

/* Open f (a path we follow) and choose where to start. */
static int tail_file_start(struct tail_file *f, bool from_head)
{
    struct tail_ctx *ctx = f->ctx;
    struct tail_pos_entry *pe;
    struct stat st;
    uint64_t pos, size, gpos;

    if (tail_file_open_fd(f, &st) != LS_OK) {
        if (errno == EACCES || errno == EPERM) {
            tail_perm_warn(ctx, f->path, errno);
        } else if (errno == EISDIR && st.st_mode != 0) {
            if (!f->type_warned) {
                /* a symlink to /dev/zero would otherwise be skipped without a word */
                char *real = realpath(f->path, NULL);
                ls_plg_warn(ctx->ins, "'%s'%s%s%s is %s, not a regular file: not followed "
                            "(looked at again on every refresh)", f->path,
                            real && strcmp(real, f->path) != 0 ? " (-> " : "",
                            real && strcmp(real, f->path) != 0 ? real : "",
                            real && strcmp(real, f->path) != 0 ? ")" : "",
                            S_ISDIR(st.st_mode) ? "a directory" : S_ISCHR(st.st_mode) ?
                            "a character device" : S_ISBLK(st.st_mode) ? "a block device" :
                            S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISSOCK(st.st_mode) ? "a socket" :
                            "special");
                free(real);
                f->type_warned = true;
            }
        } else if (errno == EMFILE || errno == ENFILE) {
            /* once a minute, not once per file: a glob can hold thousands */
            static double warned_at = -1e9;
            if (ls_mono_now() - warned_at >= 60) {
                warned_at = ls_mono_now();
                ls_plg_warn(ctx->ins, "open() '%s' failed (%d: %s): too many files for the "
                            "fd limit (ulimit -n / LimitNOFILE); following the others, "
                            "retrying on every refresh", f->path, errno, strerror(errno));
            }
        }
        return LS_ERROR;
    }
    f->type_warned = false;
    size = (uint64_t)st.st_size;
    pe = tail_pos_find(ctx->pf, f->path, f->ino);
    if (pe && pe->live) {
        pe = NULL;    /* held by another watcher */
    }
    if (pe && pe->ino == f->ino && pe->rotated) {
        ls_plg_info(ctx->ins, "'%s' has the inode number of the file it replaced; reading it "
                    "from the head", f->path);
        pos = 0;
        f->key = 0;
        f->new_gen = true;
        f->pe = pe;
        pe->live = true;
    } else if (pe && pe->ino == f->ino) {
        pos = pe->pos <= size ? pe->pos : 0;
        f->pe = pe;
        pe->live = true;
        if (pe->pos > size) {
            ls_plg_info(ctx->ins, "'%s' is smaller than its saved position: it was truncated; "
                        "reading from the head", f->path);
            tail_read_copy(f, 0, 0, pe->pos);
            f->key = 0;
            f->new_gen = true;
        } else if (pos > 0 && (!tail_line_end(f->fd, pos) || tail_copied_since(f))) {
            /* saved positions end lines, and a copy with another first line written after
             * them is copytruncate's: either way this is a generation written after a
             * truncation while logship was down, already grown past the saved position */
            ls_plg_info(ctx->ins, "'%s' was truncated and written again while logship was "
                        "down (%s at its saved position %llu); reading from the head", f->path,
                        tail_line_end(f->fd, pos) ? "a copy is newer than the pos_file"
                                                  : "no line end", (unsigned long long)pos);
            tail_read_copy(f, 0, 0, pos);
            /* no line end: the file changed; a copy newer than the pos_file with another first
             * line, whose own key the buffers may hold (the path's generation was read on
             * after logrotate's copy), keeps the plain key: re-reads of it are dropped */
            f->new_gen = !tail_line_end(f->fd, pos);
            pos = 0;
            f->key = 0;
        }
    } else if (pe) {
        /* the path has a new inode: the old file was rotated while we were down */
        pos = 0;
        if (pe->ino != 0) {
            tail_find_rotated(ctx, f, pe);
        }
        if (f->pe == NULL) {
            f->pe = pe;
            pe->live = true;
        }
    } else {
        if (tail_ensure_key(f) && ghost_find(ctx, f->dev, f->ino, f->fp, &gpos) && gpos <= size) {
            pos = gpos;
        } else if (from_head) {
            pos = 0;
        } else {
            pos = tail_eof_start(f->fd, size);
        }
        if (ctx->pf) {
            f->pe = tail_pos_add(ctx->pf, f->path, pos, f->ino);
            f->pe->live = true;
        }
    }
    tail_file_position(f, pos, size);
    tail_persist(f, f->committed);
    if (f->pe) {
        f->pe->rotated = false;
    }
    ls_plg_info(ctx->ins, "following tail of '%s' from offset %llu", f->path,
                (unsigned long long)f->read_pos);
    return LS_OK;
}

/* Stop following f: read what is left, flush, release its pos entry, close. */
static void tail_file_close(struct tail_file *f)
{
    struct tail_ctx *ctx = f->ctx;

    if (f->fd >= 0 && !ctx->paused) {
        tail_read(f);
        if (f->ml_pending && tail_ml_flush(f) == LS_OK) {
            (void)tail_commit(f, false);
        }
    }
    if (f->pe) {
        tail_sync_stale_entries(f, f->committed);
        /* fluentd's unwatch: the entry is dropped at the next compaction */
        (void)tail_pos_update(ctx->pf, f->pe, TAIL_POS_UNWATCHED);
        f->pe->live = false;
        f->pe = NULL;
    }
    ghost_add(ctx, f);
    tail_file_free(f);
}

/*
 * copytruncate ran twice or more before logship looked (a busy loop, a stalled disk): the
 * generations in between were never at the path while we looked, and their copies, born
 * after the copy of the one we read (copy_ino, born copy_birth), are all that is left of
 * them. A rename by the next rotation (access.log.1 -> .2) keeps a file's birth time, so
 * the older copies, read before, are not taken. Each is read from its head under its own
 * key and pos_file entry.
 */
static void tail_copies_after(struct tail_file *f, uint64_t copy_ino, int64_t copy_birth)
{
    struct tail_ctx *ctx = f->ctx;
    char *dir, *slash;
    const char *base;
    size_t blen;
    DIR *d = tail_opendir_of(f->path, &dir, &slash, &base);
    struct dirent *de;

    blen = strlen(base);
    while (d && (de = readdir(d)) != NULL) {
        struct stat st;
        int64_t birth;
        char *p;

        if (!tail_unclaimed_sibling(ctx, de, base, blen, f->ino, copy_ino)) {
            continue;
        }
        p = tail_dir_join(dir, slash, de->d_name);
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0 ||
            (uint64_t)st.st_dev != f->dev || !tail_birth(-1, p, &birth) ||
            birth <= copy_birth) {
            ls_free(p);
            continue;
        }
        ls_plg_info(ctx->ins, "'%s' is the copy of a generation of '%s' truncated before "
                    "logship looked at it: reading it from the head", p, f->path);
        tail_drain_whole(ctx, p, &st, f, true);
    }
    if (d) {
        closedir(d);
    }
    ls_free(dir);
}

/*
 * copytruncate copied the generation we read, then truncated it: the lines we had not read yet
 * are in the copy (access.log.1, access.log-20261203), and nowhere else. The copy is a file in
 * the same directory, named after the path, not compressed, followed by nobody, larger than our
 * offset at, with a line end just before it. Seen live (fp != 0), it also has the generation's
 * first line and the same bytes before our offset as we read, which an ordinary rotated file
 * (another generation) has not, even when all generations start with the same header line
 * (without those bytes, after a rewind: the newest file with that first line). At
 * start (fp == 0: the pos_file keeps no first line) it is the newest such file last written
 * after logship's last pos_file write (less 2 s: the copy may end just before that write; older
 * copies renamed since keep their older times); after two copytruncates while logship was down
 * that is the second one's copy, and the first one's rest is not read (README). It is read from
 * at, or from further on where the buffers already hold the old generation (key: its key,
 * else device, inode of the path, first line), under a key of its own. The lines written between the copy
 * and the truncation are in neither file: copytruncate loses them (README).
 */
static void tail_read_copy(struct tail_file *f, uint64_t fp, uint64_t key, uint64_t at)
{
    struct tail_ctx *ctx = f->ctx;
    char *dir, *slash, *found = NULL;
    const char *base;
    size_t blen;
    struct stat st, fst;
    int64_t found_mtime = 0;
    uint64_t found_fp = 0;
    bool found_ok = true;
    DIR *d;
    struct dirent *de;

    if (ctx->follow_inodes || at == 0 || (fp == 0 && ctx->pos_mtime == 0)) {
        return;
    }
    d = tail_opendir_of(f->path, &dir, &slash, &base);
    blen = strlen(base);
    while (d && found_mtime != INT64_MAX && (de = readdir(d)) != NULL) {
        char b[sizeof(f->sig)];
        uint64_t cfp = 0;
        int64_t mtime = 0;
        char *p;
        int fd;
        bool same;

        if (!tail_unclaimed_sibling(ctx, de, base, blen, f->ino, f->ino)) {
            continue;
        }
        p = tail_dir_join(dir, slash, de->d_name);
        fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        same = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
               (uint64_t)st.st_dev == f->dev;
        if (same && fp != 0 && f->sig_pos == at && f->sig_len) {
            same = (uint64_t)st.st_size >= at && tail_fingerprint(fd, &cfp) && cfp == fp &&
                   pread(fd, b, f->sig_len, (off_t)(at - f->sig_len)) == (ssize_t)f->sig_len &&
                   memcmp(b, f->sig, f->sig_len) == 0;
            if (same) {
                found_ok = true;
                mtime = INT64_MAX;     /* certain: ends the search */
            }
        } else if (same) {
            /* the newest copy, checked below: an older one that passes the size and line end
             * tests while the newest (read to its end) does not is another generation */
            mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
            same = (fp != 0 ? tail_fingerprint(fd, &cfp) && cfp == fp
                            : mtime >= ctx->pos_mtime - (int64_t)2 * 1000000000) &&
                   (found == NULL || mtime > found_mtime);
            if (same) {
                found_ok = (uint64_t)st.st_size > at && tail_line_end(fd, at) &&
                           tail_fingerprint(fd, &cfp);
            }
        }
        if (fd >= 0) {
            close(fd);
        }
        if (same) {
            ls_free(found);
            found = p;
            found_mtime = mtime;
            found_fp = cfp;
            fst = st;
        } else {
            ls_free(p);
        }
    }
    if (d) {
        closedir(d);
    }
    ls_free(dir);
    if (found && found_mtime == INT64_MAX) {
        /* certainly the copy of the generation we read: copies born after it are of the
         * generations in between, whatever their size or first line */
        int64_t birth;
        if (tail_birth(-1, found, &birth)) {
            tail_copies_after(f, (uint64_t)fst.st_ino, birth);
        }
        found_ok = (uint64_t)fst.st_size > at;    /* else we had read all of it */
    }
    if (found && !found_ok) {
        ls_free(found);
        found = NULL;
    }
    if (found) {
        struct tail_file *of;
        uint64_t k[3] = { f->dev, f->ino, found_fp };
        uint64_t old_key = key ? key : ls_source_key(k, sizeof(k));

        ls_plg_info(ctx->ins, "'%s' was copied to '%s' before it was truncated: reading the "
                    "copy from offset %llu", f->path, found, (unsigned long long)at);
        of = tail_drain_new(ctx, found, &fst, at, f->tag, f->tag_len);
        if (of) {
            uint64_t dpos;

            /* The drain keeps its own key (device, the copy's inode, first line): a restart
             * finds it through its pos_file entry under that key, and resumes where the
             * buffers are when the pos_file is behind them. Read under the truncated file's
             * key, the lines its chunks held past the entry were read again after a kill -9
             * (and would be after a power loss). That key still says how far the buffers
             * hold the generation we were reading. */
            if (of->key == 0) {
                of->fp = found_fp;
                tail_set_key(of);
            }
            dpos = ls_source_durable_pos(ctx->ins->engine, old_key);
            if (dpos > of->read_pos && dpos <= (uint64_t)fst.st_size) {
                of->read_pos = of->line_start = of->safe = of->committed = dpos;
            }
            if (ctx->pf) {
                of->pe = tail_pos_add_named(ctx, of->path, of->committed, of->ino);
                of->pe->live = true;
            }
            if (ctx->started) {
                tail_read(of);
            }
        }
    }
}

/* The file we follow was truncated (copytruncate) or rewritten in place: read the rest of the
 * old generation from its copy, then the new one from the head under a new key. */
static void tail_new_generation(struct tail_file *f)
{
    struct tail_ctx *ctx = f->ctx;
    uint64_t key = f->key, fp = f->fp;

    ls_plg_info(ctx->ins, "'%s' was truncated (copytruncate?) at offset %llu; reading it from "
                "the head", f->path, (unsigned long long)f->read_pos);
    if (f->safe != f->committed) {
        (void)tail_commit(f, false);
    }
    if (key) {
        tail_read_copy(f, fp, key, f->committed);
    }
    f->key = 0;
    f->new_gen = true;
    f->fp = 0;
    f->sig_pos = 0;
    f->sig_len = 0;
    tail_rewind(f, 0);
    f->committed = 0;
    tail_persist(f, 0);
}

/* The path now names another file: keep draining f, follow the new one. */
static void tail_rotated(struct tail_file *f, bool path_exists)
{
    struct tail_ctx *ctx = f->ctx;
    struct tail_file *nf = NULL;

    f->draining = true;
    f->drain_deadline = ls_mono_now() + ctx->rotate_wait;
    ls_fstat_free(f->st);
    f->st = NULL;
    if (!ctx->follow_inodes && f->pe) {
        /* the path's entry goes to the new file; the old one is saved under the name it has
         * now (access.log.1), written first, so a crash while it drains finds it again */
        struct tail_pos_entry *pe = f->pe;
        char *real = tail_fd_path(f->fd);
        f->pe = NULL;
        if (real && strcmp(real, f->path) != 0 && ctx->pf) {
            f->pe = tail_pos_add_named(ctx, real, f->committed, f->ino);
            f->pe->live = true;
        }
        ls_free(real);
        /* the position is the old file's: once that file is gone its inode number is free, and
         * a new file given the same number must not resume there (it is read from the head) */
        pe->rotated = true;
        pe->live = false;      /* claimed by the successor in tail_file_start */
    }
    if (path_exists || f->literal) {
        ls_plg_info(ctx->ins, "detected rotation of '%s'; waiting %g seconds", f->path,
                    ctx->rotate_wait);
        nf = tail_file_new(ctx, f->path, f->literal);
        if (path_exists && tail_file_start(nf, true) == LS_OK) {
            tail_read(nf);
        }
    } else {
        f->unwatched = true;
        ls_plg_info(ctx->ins, "'%s' was moved or removed; reading what is left for %g seconds",
                    f->path, ctx->rotate_wait);
    }
}

static bool ts_equal(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* Check f's path for rotation and truncation, then read. */
static void tail_check(struct tail_file *f, bool deep)
{
    struct tail_ctx *ctx = f->ctx;
    struct stat st;

    if (ctx->stopped) {
        return;
    }
    if (f->draining) {
        tail_read(f);
        return;
    }
    if (stat(f->path, &st) != 0) {
        if (f->fd >= 0) {
            tail_rotated(f, false);
            tail_read(f);
        }
        return;
    }
    if (f->fd < 0 && f->ino == 0) {
        /* a literal path that now exists: found after startup, so from the head */
        if (tail_file_start(f, true) == LS_OK) {
            tail_read(f);
        }
        return;
    }
    if ((uint64_t)st.st_ino != f->ino || (uint64_t)st.st_dev != f->dev) {
        if (f->fd < 0) {
            /* open_on_every_update: the old file cannot be drained any more */
            struct tail_file *nf;
            ls_plg_info(ctx->ins, "detected rotation of '%s'", f->path);
            nf = tail_file_new(ctx, f->path, f->literal);
            if (!ctx->follow_inodes && f->pe) {
                nf->pe = f->pe;
                f->pe = NULL;
                nf->pe->live = true;
            }
            tail_file_free(f);
            if (tail_file_start(nf, true) == LS_OK) {
                tail_read(nf);
            }
            return;
        }
        tail_rotated(f, true);
        tail_read(f);
        return;
    }
    /* the 1 s timer over many idle files: one stat each, no reads, when nothing changed */
    if (deep && f->fd >= 0 && f->eof && !f->blocked && (uint64_t)st.st_size == f->read_pos &&
        ts_equal(&st.st_mtim, &f->seen_mtim) && ts_equal(&st.st_ctim, &f->seen_ctim)) {
        return;
    }
    if (deep) {
        f->seen_mtim = st.st_mtim;
        f->seen_ctim = st.st_ctim;
    }
    if (f->fd < 0) {
        int fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) {
            return;
        }
        f->fd = fd;
    }
    if ((uint64_t)st.st_size < f->read_pos ||
        (deep && f->key && (uint64_t)st.st_size > 0)) {
        uint64_t fp = 0;
        bool have = tail_fingerprint(f->fd, &fp);
        if ((uint64_t)st.st_size < f->read_pos || (have && fp != f->fp) ||
            (!have && f->read_pos > 0)) {
            tail_new_generation(f);
        }
    }
    tail_read(f);
}

static void tail_stat_cb(struct ls_fstat *st, void *arg)
{
    struct tail_file *f = arg;

    if (f->ctx->paused) {
        return;
    }
    if (ls_fstat_only_written(st) && f->fd >= 0 && f->key && !f->draining && !f->blocked) {
        /* only writes since the last look: the path still names this file, so no stat; a
         * read that finds nothing new may mean a truncation, which tail_check sees */
        uint64_t before = f->read_pos;
        tail_read(f);
        if (f->read_pos != before || f->blocked || !f->eof) {
            return;
        }
    }
    tail_check(f, false);
}

/* ------------------------------------------------------------------ */
/* refresh                                                              */

struct tail_cand {
    char *path;
    bool literal;
};

static void cand_add(struct tail_cand **v, size_t *n, const char *p, bool literal)
{
    size_t i;

    for (i = 0; i < *n; i++) {
        if (strcmp((*v)[i].path, p) == 0) {
            return;
        }
    }
    *v = ls_realloc(*v, (*n + 1) * sizeof(**v));
    (*v)[*n].path = ls_strdup(p);
    (*v)[*n].literal = literal;
    (*n)++;
}

static void tail_refresh_now(struct tail_ctx *ctx)
{
    time_t now = time(NULL);
    struct tail_cand *cand = NULL;
    struct ls_strv excl = { NULL, 0 };
    size_t ncand = 0, i, j;
    struct tail_file *f, *next;
    bool from_head = !ctx->startup || ctx->read_from_head;

    if (!ctx->ignore_repeated_permission_error) {
        ls_strv_release(&ctx->perm_warned);
    }

    for (i = 0; i < ctx->exclude_path.n; i++) {
        char *p = tail_strftime(ctx, ctx->exclude_path.v[i], now);
        if (tail_is_glob(ctx, p)) {
            glob_t g;
            tail_glob(ctx, p, &g);
            for (j = 0; j < g.gl_pathc; j++) {
                strv_add(&excl, g.gl_pathv[j]);
            }
            globfree(&g);
        } else {
            strv_add(&excl, p);
        }
        ls_free(p);
    }
    for (i = 0; i < ctx->npaths; i++) {
        char *p = tail_strftime(ctx, ctx->paths[i], now);
        size_t had = ncand;
        struct stat pst;

        if (tail_is_glob(ctx, p)) {
            glob_t g;
            tail_glob(ctx, p, &g);
            for (j = 0; j < g.gl_pathc; j++) {
                struct stat st;
                const char *gp = g.gl_pathv[j];
                if (stat(gp, &st) != 0 || !S_ISREG(st.st_mode) || strv_has(&excl, gp)) {
                    continue;
                }
                if (access(gp, R_OK) != 0) {
                    tail_perm_warn(ctx, gp, errno);
                    continue;
                }
                if (ctx->limit_recently_modified > 0 &&
                    (double)st.st_mtime < (double)now - ctx->limit_recently_modified) {
                    continue;
                }
                cand_add(&cand, &ncand, gp, false);
            }
            globfree(&g);
        } else if (!strv_has(&excl, p)) {
            cand_add(&cand, &ncand, p, true);
            if (stat(p, &pst) != 0) {
                had = ncand;   /* named, not there yet */
            }
        }
        /* a typo in path is otherwise silent for ever: say so once, at start (fluentd too) */
        if (ctx->startup && ncand == had) {
            ls_plg_warn(ctx->ins, "path '%s' matches no file yet; it is checked again every %gs "
                        "(refresh_interval)", p, ctx->refresh_interval);
        }
        ls_free(p);
    }

    /* files no longer matched: drain for rotate_wait, then stop (fluentd's unwatch) */
    for (f = ctx->files; f; f = next) {
        bool found = false;
        next = f->next;
        if (f->draining) {
            continue;
        }
        for (i = 0; i < ncand; i++) {
            if (strcmp(cand[i].path, f->path) == 0) {
                found = true;
                break;
            }
        }
        if (!found) {
            if (f->fd < 0) {
                if (f->pe) {
                    f->pe->live = false;
                    f->pe = NULL;
                }
                tail_file_free(f);
            } else {
                f->draining = true;
                f->unwatched = true;
                f->drain_deadline = ls_mono_now() + ctx->rotate_wait;
                ls_fstat_free(f->st);
                f->st = NULL;
            }
        }
    }

    for (i = 0; i < ncand; i++) {
        struct stat st;
        bool have = false;
        for (f = ctx->files; f; f = f->next) {
            if (!f->draining && strcmp(f->path, cand[i].path) == 0) {
                have = true;
                break;
            }
        }
        if (have) {
            continue;
        }
        if (stat(cand[i].path, &st) == 0) {
            struct tail_file *o = tail_find_ino(ctx, (uint64_t)st.st_dev, (uint64_t)st.st_ino,
                                                NULL);
            if (o && o->draining) {
                /* a rotated file we are still reading, now matched under its new name
                 * (access.log.1): keep following it from where we are */
                if (o->pe && !ctx->follow_inodes && strcmp(o->pe->path, cand[i].path) != 0) {
                    (void)tail_pos_update(ctx->pf, o->pe, TAIL_POS_UNWATCHED);
                    o->pe->live = false;
                    o->pe = NULL;
                }
                if (o->pe == NULL && ctx->pf) {
                    o->pe = tail_pos_add_named(ctx, cand[i].path, o->committed, o->ino);
                    o->pe->live = true;
                }
                ls_free(o->path);
                o->path = ls_strdup(cand[i].path);
                o->draining = false;
                o->unwatched = false;
                o->literal = cand[i].literal;
                if (ctx->enable_stat_watcher) {
                    o->st = ls_fstat_new(ctx->ins, o->path, ctx->enable_watch_timer ? 5.0 : 1.0,
                                         tail_stat_cb, o);
                }
                ls_plg_info(ctx->ins, "'%s' is the file we were following before its rotation; "
                            "continuing at offset %llu", o->path, (unsigned long long)o->read_pos);
                continue;
            }
            if (o) {
                ls_plg_debug(ctx->ins, "'%s' is already followed as '%s'", cand[i].path, o->path);
                continue;
            }
        }
        f = tail_file_new(ctx, cand[i].path, cand[i].literal);
        if (stat(cand[i].path, &st) == 0) {
            if (tail_file_start(f, from_head) != LS_OK && !cand[i].literal) {
                tail_file_free(f);
                continue;
            }
        }
        if (ctx->started && !ctx->paused) {
            tail_read(f);
        }
    }

    for (i = 0; i < ncand; i++) {
        ls_free(cand[i].path);
    }
    ls_free(cand);
    ls_strv_release(&excl);
}

/* ------------------------------------------------------------------ */
/* timers                                                               */

static void tail_check_done(struct tail_ctx *ctx)
{
    struct tail_file *f;

    if (!ls_oneshot(ctx->ins->engine) || ctx->done || ctx->paused) {
        return;
    }
    for (f = ctx->files; f; f = f->next) {
        if (f->fd < 0) {
            continue;
        }
        if (!f->eof || f->blocked || f->ml_pending || f->committed != tail_commit_target(f)) {
            return;
        }
    }
    ctx->done = true;
    if (ctx->pf) {
        (void)tail_pos_compact(ctx->pf);
    }
    ls_input_done(ctx->ins);
}

/*
 * A backlog (a day of logs at the first start, a catch-up after an outage) shows how far it
 * has come: every 10 s, one line per file with more than 16 MiB still to read.
 */
static void tail_progress(struct tail_ctx *ctx, double now)
{
    struct stat st;

    if (now < ctx->progress_next) {
        return;
    }
    ctx->progress_next = now + 10.0;
    for (struct tail_file *f = ctx->files; f; f = f->next) {
        if (f->fd < 0 || fstat(f->fd, &st) != 0 || (uint64_t)st.st_size <= f->read_pos ||
            (uint64_t)st.st_size - f->read_pos < 16u << 20) {
            continue;
        }
        ls_plg_info(ctx->ins, "'%s': %.1f of %.1f MiB read (%.0f%%), %.1f MiB to go", f->path,
                    (double)f->read_pos / 1048576.0, (double)st.st_size / 1048576.0,
                    100.0 * (double)f->read_pos / (double)st.st_size,
                    (double)((uint64_t)st.st_size - f->read_pos) / 1048576.0);
    }
}

/*
 * The timer's look at a file inotify watches: its path still names it (a rename or unlink
 * would have notified), so fstat of the open file, cheaper than stat of the path, tells
 * whether anything was written since the last look; only then the full check.
 */
static bool tail_idle_watched(struct tail_file *f)
{
    struct stat st;

    if (f->st == NULL || !ls_fstat_watched(f->st) || f->fd < 0 || !f->eof ||
        fstat(f->fd, &st) != 0) {
        return false;
    }
    return (uint64_t)st.st_size == f->read_pos && ts_equal(&st.st_mtim, &f->seen_mtim) &&
           ts_equal(&st.st_ctim, &f->seen_ctim);
}

static void tail_tick_cb(struct ls_timer *t, void *arg)
{
    struct tail_ctx *ctx = arg;
    struct tail_file *f, *next;
    double now = ls_mono_now();
    LS_UNUSED(t);

    if (ctx->stopped) {
        return;
    }
    for (f = ctx->files; f; f = f->next) {
        f->window_bytes = 0;
    }
    tail_progress(ctx, now);
    if (ctx->paused) {
        return;
    }
    for (f = ctx->files; f; f = next) {
        next = f->next;
        if (f->draining) {
            tail_read(f);
            if (now >= f->drain_deadline && f->eof && !f->blocked) {
                ls_plg_info(ctx->ins, "stop following '%s' (offset %llu)", f->path,
                            (unsigned long long)f->read_pos);
                tail_file_close(f);
            }
            continue;
        }
        if (ctx->enable_watch_timer && !f->blocked && tail_idle_watched(f)) {
            /* nothing new */
        } else if (ctx->enable_watch_timer || f->blocked || f->fd < 0) {
            tail_check(f, true);
        }
        if (ctx->multiline && f->ml_pending && ctx->multiline_flush_interval > 0 &&
            now - f->last_line_at >= ctx->multiline_flush_interval && !f->blocked) {
            if (tail_ml_flush(f) == LS_OK) {
                (void)tail_commit(f, false);
            } else {
                f->blocked = true;
                (void)tail_commit(f, true);
            }
        }
    }
    tail_check_done(ctx);
}

static void tail_kick_cb(struct ls_timer *t, void *arg)
{
    struct tail_ctx *ctx = arg;
    struct tail_file *f, *next;
    LS_UNUSED(t);

    for (f = ctx->files; f && !ctx->paused && !ctx->stopped; f = next) {
        next = f->next;
        if (f->draining) {
            tail_read(f);
        } else {
            tail_check(f, false);
        }
    }
    tail_check_done(ctx);
}

static void tail_refresh_cb(struct ls_timer *t, void *arg)
{
    struct tail_ctx *ctx = arg;
    bool first = ctx->startup;
    LS_UNUSED(t);

    tail_refresh_now(ctx);
    ctx->startup = false;
    if (first && ctx->pf && tail_recover_leftovers(ctx)) {
        (void)tail_pos_compact(ctx->pf);
    }
}

static void tail_compact_cb(struct ls_timer *t, void *arg)
{
    struct tail_ctx *ctx = arg;
    LS_UNUSED(t);
    (void)tail_pos_compact(ctx->pf);
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                            */

static int tail_start(struct ls_instance *ins)
{
    struct tail_ctx *ctx = ins->ctx;
    char err[512];

    ctx->rbuf = ls_malloc(TAIL_RBUF);
    if (ctx->pos_file) {
        struct stat pst;
        if (stat(ctx->pos_file, &pst) == 0) {
            ctx->pos_mtime = (int64_t)pst.st_mtim.tv_sec * 1000000000 + pst.st_mtim.tv_nsec;
        }
        err[0] = '\0';
        ctx->pf = tail_pos_open(ctx->pos_file, ctx->follow_inodes, err, sizeof(err));
        if (ctx->pf == NULL) {
            ls_plg_error(ins, "%s", err);
            return LS_ERROR;
        }
        if (ctx->pf->unparsable) {
            ls_plg_warn(ins, "pos_file '%s': %zu unparsable line(s) dropped", ctx->pos_file,
                        ctx->pf->unparsable);
        }
        if (ctx->pf->duplicates) {
            ls_plg_warn(ins, "pos_file '%s': %zu duplicate entr%s (the last one wins)",
                        ctx->pos_file, ctx->pf->duplicates, ctx->pf->duplicates == 1 ? "y" : "ies");
        }
    }
    ctx->tick = ls_timer_new(ins, tail_tick_cb, ctx);
    ctx->kick = ls_timer_new(ins, tail_kick_cb, ctx);
    ctx->refresh = ls_timer_new(ins, tail_refresh_cb, ctx);
    ctx->startup = true;
    if (!ctx->skip_refresh_on_startup && !ls_stop_requested()) {
        tail_refresh_cb(ctx->refresh, ctx);
    }
    /* fluentd: files found after start (even with skip_refresh_on_startup) start at the head */
    ctx->startup = false;
    ctx->started = true;
    ls_timer_start(ctx->refresh, ctx->refresh_interval, ctx->refresh_interval);
    ls_timer_start(ctx->tick, 1.0, 1.0);
    ls_timer_start(ctx->kick, 0.0, 0.0);
    if (ctx->pf && ctx->pos_file_compaction_interval > 0) {
        ctx->compact = ls_timer_new(ins, tail_compact_cb, ctx);
        ls_timer_start(ctx->compact, ctx->pos_file_compaction_interval,
                       ctx->pos_file_compaction_interval);
    }
    return LS_OK;
}

static void tail_stop(struct ls_instance *ins)
{
    struct tail_ctx *ctx = ins->ctx;
    struct tail_file *f;

    if (!ctx->started || ctx->stopped) {
        return;
    }
    /* fluentd flushes pending multiline records at shutdown */
    for (f = ctx->files; f; f = f->next) {
        if (f->ml_pending && !ctx->paused && tail_ml_flush(f) == LS_OK) {
            (void)tail_commit(f, false);
        } else if (f->safe != f->committed) {
            /* held back by a filter that has let its lines go by now (filters stop first) */
            (void)tail_commit(f, false);
        }
    }
    ctx->stopped = true;
    ls_timer_free(ctx->tick);
    ls_timer_free(ctx->kick);
    ls_timer_free(ctx->refresh);
    ls_timer_free(ctx->compact);
    ctx->tick = ctx->kick = ctx->refresh = ctx->compact = NULL;
    while (ctx->files) {
        f = ctx->files;
        if (f->pe) {
            f->pe->live = false;
        }
        tail_file_free(f);
    }
}

static void tail_pause(struct ls_instance *ins)
{
    ((struct tail_ctx *)ins->ctx)->paused = true;
}

static void tail_resume(struct ls_instance *ins)
{
    struct tail_ctx *ctx = ins->ctx;

    ctx->paused = false;
    if (ctx->kick && !ctx->stopped) {
        ls_timer_start(ctx->kick, 0.0, 0.0);
    }
}

static void tail_destroy(struct ls_instance *ins)
{
    struct tail_ctx *ctx = ins->ctx;
    size_t i;

    tail_stop(ins);
    while (ctx->files) {
        tail_file_free(ctx->files);
    }
    ls_timer_free(ctx->tick);
    ls_timer_free(ctx->kick);
    ls_timer_free(ctx->refresh);
    ls_timer_free(ctx->compact);
    tail_pos_close(ctx->pf);
    if (ctx->enc_bad_lines) {
        /* the rate limit held these back: say so before going */
        ls_plg_warn(ins, "%llu more line(s) had bytes that are not valid %s or have no %s "
                    "equivalent: replaced", (unsigned long long)ctx->enc_bad_lines,
                    ctx->from_encoding, ctx->encoding);
    }
    ls_enc_close(&ctx->enc);
    ls_instance_destroy(ctx->parser);
    if (ctx->pos_file) {
        for (i = 0; i < tail_npos_in_use; i++) {
            if (tail_pos_in_use[i].eng == ins->engine &&
                strcmp(tail_pos_in_use[i].path, ctx->pos_file) == 0) {
                ls_free(tail_pos_in_use[i].path);
                tail_pos_in_use[i] = tail_pos_in_use[--tail_npos_in_use];
                break;
            }
        }
        if (tail_npos_in_use == 0) {
            ls_free(tail_pos_in_use);
            tail_pos_in_use = NULL;
        }
    }
    for (i = 0; i < ctx->npaths; i++) {
        ls_free(ctx->paths[i]);
    }
    ls_free(ctx->paths);
    ls_free(ctx->tag_prefix);
    ls_free(ctx->tag_suffix);
    ls_free(ctx->rbuf);
    ls_strv_release(&ctx->perm_warned);
    ls_record_release(&ctx->rec);
    ls_arena_release(&ctx->arena);
}

/* --dry-run: the files to follow readable, the pos_file's directory writable, by this user */
static int tail_check_access(struct ls_instance *ins)
{
    struct tail_ctx *ctx = ins->ctx;
    int bad = ls_check_writable(ins, "pos_file", ctx->pos_file, false);

    for (size_t i = 0; i < ctx->npaths; i++) {
        char *p = tail_strftime(ctx, ctx->paths[i], time(NULL));

        if (tail_is_glob(ctx, p)) {
            glob_t g;

            tail_glob(ctx, p, &g);
            for (size_t j = 0; j < g.gl_pathc; j++) {
                bad += ls_check_readable(ins, "path", g.gl_pathv[j]);
            }
            globfree(&g);
        } else {
            bad += ls_check_readable(ins, "path", p);
        }
        ls_free(p);
    }
    return bad;
}

/* fluentd's @tails: the watched files (not the rotated ones still being drained) */
static void tail_each_file(struct ls_instance *ins,
                           void (*cb)(void *arg, const char *path, uint64_t pos, uint64_t ino),
                           void *arg)
{
    const struct tail_ctx *ctx = ins->ctx;
    const struct tail_file *f;

    for (f = ctx->files; f; f = f->next) {
        if (!f->draining && !f->unwatched && f->ino != 0) {
            cb(arg, f->path, f->committed, f->ino);
        }
    }
}

const struct ls_plugin ls_plugin_in_tail = {
    .name = "tail",
    .kind = LS_PLUGIN_INPUT,
    .description = "follow log files (fluentd's in_tail): rotation, pos_file, exactly-once with "
                   "the file buffer",
    .params = tail_params,
    .ctx_size = sizeof(struct tail_ctx),
    .init = tail_init,
    .destroy = tail_destroy,
    .start = tail_start,
    .stop = tail_stop,
    .check = tail_check_access,
    .pause = tail_pause,
    .resume = tail_resume,
    .each_file = tail_each_file,
};
