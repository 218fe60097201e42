/*
 * plugin.h - the plugin API: descriptors, instances, and what the core
 * offers plugins (emit, commit, timers, fd and file watches, worker pool,
 * chunks).
 *
 * A plugin exports exactly one symbol, its descriptor:
 *
 *     const struct ls_plugin ls_plugin_out_stdout = {
 *         .name = "stdout", .kind = LS_PLUGIN_OUTPUT, ...
 *     };
 *
 * The build generates the registry (build/plugins.c) by scanning
 * plugins for "const struct ls_plugin ls_plugin_*" definitions, so adding
 * a plugin is adding a file. The core never includes a plugin header.
 *
 * Lifecycle of an instance: the core allocates ctx (ctx_size bytes,
 * zeroed), binds the section through .params (defaults + values), then calls
 * .init(ins, sec) for cross-field checks and setup. .start(ins) begins work
 * (inputs open files / timers), .stop(ins) ends it, .destroy(ins) frees what
 * init allocated (the core then releases the bound parameters and ctx).
 * .destroy must cope with a half-initialised ctx: init's error paths rely
 * on it.
 */
#ifndef LS_PLUGIN_H
#define LS_PLUGIN_H

#include "common.h"
#include "conf.h"
#include "param.h"
#include "record.h"
#include "buf.h"

struct ls_engine;
struct ls_instance;
struct ls_chunk;
struct ev_loop;

enum ls_plugin_kind {
    LS_PLUGIN_INPUT = 1,
    LS_PLUGIN_PARSER,
    LS_PLUGIN_FILTER,
    LS_PLUGIN_FORMATTER,
    LS_PLUGIN_OUTPUT,
};

enum ls_output_flags {
    LS_OUT_BUFFERED   = 1 << 0,   /* uses the chunk buffer; implements .write */
    LS_OUT_UNBUFFERED = 1 << 1,   /* implements .emit (stdout, null, copy) */
    LS_OUT_INJECT     = 1 << 2,   /* unbuffered, but takes <inject> (fluentd's out_stdout) */
};

struct ls_plugin {
    const char *name;             /* fluentd's @type name */
    const char *aliases;          /* '|'-separated other names ("sample" for "dummy"), or NULL */
    enum ls_plugin_kind kind;
    const char *description;      /* one line */
    const struct ls_param *params;
    size_t ctx_size;

    int (*init)(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen);
    void (*destroy)(struct ls_instance *ins);

    /* inputs; outputs: after every buffer has recovered its chunks, before any input starts */
    int (*start)(struct ls_instance *ins);
    void (*stop)(struct ls_instance *ins);
    void (*pause)(struct ls_instance *ins);    /* back-pressure: stop reading */
    void (*resume)(struct ls_instance *ins);

    /*
     * parsers: turn one line into fields of rec (tag/time/src/pos are set by
     * the caller; the common layer extracts time_key afterwards).
     * LS_OK: rec holds a record. LS_DECLINED: line does not match.
     * LS_AGAIN (multiline): line was buffered, no record yet.
     * For multiline parsers LS_OK means rec holds the *previous* pending
     * record and the current line started a new one.
     */
    int (*parse)(struct ls_instance *ins, const char *line, size_t len, struct ls_record *rec);
    /* multiline parsers: emit the pending record, if any (EOF, timeout). LS_OK / LS_DECLINED. */
    int (*parse_flush)(struct ls_instance *ins, struct ls_record *rec);

    /* filters: LS_OK keep (rec possibly modified), LS_DECLINED drop, LS_ERROR -> @ERROR;
     * LS_AGAIN (a filter that emits with ls_filter_emit_next and met a full buffer): the
     * record was not taken and the filter's state is as before it, the input offers it
     * again after .resume. Filters may have .start (after the outputs', before the inputs')
     * and .stop (once, after the inputs stopped, while the outputs still take records). */
    int (*filter)(struct ls_instance *ins, struct ls_record *rec);

    /* formatters: append rec's bytes (including any record separator) to out */
    int (*format)(struct ls_instance *ins, const struct ls_record *rec, struct ls_buf *out);
    /*
     * formatters whose output is one whole file per chunk, not a stream of records that
     * can be concatenated (parquet): .format appends the formatter's own rows, and
     * .finish turns a chunk's rows (read_cb: bytes read, 0 at end, -1 error) into the
     * file written to fd. Runs on a worker thread. file_ext names such files.
     */
    int (*finish)(struct ls_instance *ins, long (*read_cb)(void *arg, void *buf, size_t n),
                  void *arg, int fd, char *err, size_t errlen);
    const char *file_ext;

    /* outputs */
    unsigned output_flags;
    const char *default_formatter;   /* e.g. "out_file"; NULL = none */
    const char *default_chunk_keys;  /* <buffer> with empty arg means this ("time" for s3) */
    /* NULL-terminated name, value pairs: the output's defaults for <buffer> parameters
     * (time, size, integer or bool rows) the configuration does not set */
    const char *const *buffer_defaults;
    /* optional: the timekey when time is a chunk key and <buffer> sets none (webhdfs: from the
     * finest strftime field of its path); 0: the usual 1d */
    double (*default_timekey)(struct ls_conf_section *sec);
    /*
     * optional: the formatter the output's section implies (s3's store_as parquet), or
     * NULL for the usual <format> / format / default_formatter. *fsec: the section its
     * parameters are read from. NULL with err set: a configuration error (file:line).
     */
    const char *(*formatter_for)(struct ls_conf_section *sec, struct ls_conf_section **fsec,
                                 char *err, size_t errlen);
    /* optional: refuse a formatter the output cannot use (out_file: a whole-file formatter
     * with compress or append). LS_OK, or LS_ERROR with "file:line: ..." in err. */
    int (*formatter_check)(struct ls_instance *ins, const struct ls_instance *fmt, char *err,
                           size_t errlen);
    /* unbuffered: take a record now. LS_OK, LS_AGAIN (not accepted, retry), LS_ERROR */
    int (*emit)(struct ls_instance *ins, const struct ls_record *rec);
    /* make everything emitted so far durable/visible (stdout: fflush). LS_OK / LS_ERROR */
    int (*commit)(struct ls_instance *ins);
    /* buffered, optional: the record as the plugin's formatting sees it, built in scratch (its
     * values may point into rec), or rec itself (webhdfs' v0.12 null_value) */
    const struct ls_record *(*prepare)(struct ls_instance *ins, const struct ls_record *rec,
                                       struct ls_record *scratch);
    /*
     * buffered: deliver a sealed chunk. LS_OK: delivered (the core deletes
     * the chunk). LS_ERROR: failed, the core retries with backoff.
     * LS_DECLINED: unrecoverable (fluentd's UnrecoverableError, e.g. a tag
     * that would escape the output directory): no retries, the chunk goes
     * to <secondary> or backup/ at once.
     * LS_AGAIN: started asynchronously; the plugin calls
     * ls_output_write_done() exactly once later.
     */
    int (*write)(struct ls_instance *ins, struct ls_chunk *chunk);
    /* buffered, optional: called when a chunk is given up (moved to secondary/dropped) */
    void (*abandon)(struct ls_instance *ins, struct ls_chunk *chunk);

    /*
     * inputs, optional: call cb for every file followed now, with its path, the position its
     * pos_file holds and its inode (for monitors: prometheus_tail_monitor).
     */
    void (*each_file)(struct ls_instance *ins,
                      void (*cb)(void *arg, const char *path, uint64_t pos, uint64_t ino),
                      void *arg);

    /*
     * optional, --dry-run: what the start would trip on here, as the user running it (files
     * to read, directories to write). Logs each problem as an error; returns how many.
     */
    int (*check)(struct ls_instance *ins);
};

/* Metrics every instance keeps; monitoring (monitor_agent, /metrics) reads them. */
struct ls_metrics {
    uint64_t emit_records;      /* records in (outputs/filters) or emitted (inputs) */
    uint64_t emit_bytes;
    uint64_t write_records;     /* outputs: records delivered */
    uint64_t write_bytes;       /* outputs: bytes delivered (after compression) */
    uint64_t errors;            /* rejected records, failed writes */
    uint64_t retries;
    uint64_t dropped;           /* e.g. over-long lines, drop_oldest_chunk */
    uint64_t chunks_flushed;
    uint64_t chunks_queued;     /* gauge */
    uint64_t buffer_bytes;      /* gauge: staged + queued */
    uint64_t unmatched;         /* inputs: records that matched no <match> */
    uint64_t flush_time_ms;     /* outputs: time spent in successful writes (fluentd's
                                   flush_time_count) */
    uint64_t slow_flushes;      /* writes over slow_flush_log_threshold (slow_flush_count) */
    char last_error[256];
};

struct ls_instance {
    const struct ls_plugin *plugin;
    struct ls_engine *engine;
    void *ctx;                         /* the plugin's struct, filled by the binder */
    struct ls_conf_section *conf;      /* its section (valid while the engine lives) */
    char *id;                          /* @id, or "<type>.<n>" */
    char *name;                        /* "[type.id]"-style log prefix */
    int log_level;
    struct ls_metrics metrics;
    struct ls_instance *owner;         /* parser/formatter: the plugin that created it */
    void *core;                        /* core-private state (route, buffer, ...) */
    int early_gzip;                    /* output: ls_output_early_gzip's level, 0: none */
};

/* ---- registry ---- */
const struct ls_plugin *ls_plugin_find(enum ls_plugin_kind kind, const char *name);
/* NULL-terminated list of every built-in plugin. */
extern const struct ls_plugin *const ls_plugins[];
const char *ls_plugin_kind_name(enum ls_plugin_kind kind);

/*
 * Create a sub-plugin instance (parser or formatter) owned by owner, from a
 * section (<parse>, <format>, or the owner's own section for v0.12 flat
 * params). type: the @type to use when sec has none (NULL: required).
 * NULL on error with "file:line: message" in err.
 */
/*
 * For check hooks: can this user create files under path? path may be a template (a tag or
 * time placeholder, a glob): only its fixed leading directories are checked. is_dir: path
 * names the directory itself, else the file whose directory is checked. Logs an error naming
 * the section's file:line and param; returns 0 (fine) or 1 (a problem).
 */
int ls_check_writable(struct ls_instance *ins, const char *param, const char *path, bool is_dir);
/* Same for a file to read: 0 when it is readable or does not exist (yet), 1 with an error. */
int ls_check_readable(struct ls_instance *ins, const char *param, const char *path);

struct ls_instance *ls_instance_create(struct ls_engine *eng, struct ls_instance *owner,
                                       enum ls_plugin_kind kind, const char *type,
                                       struct ls_conf_section *sec, char *err, size_t errlen);
void ls_instance_destroy(struct ls_instance *ins);

/* ---- inputs: emitting records ---- */

/*
 * Route rec (tag, time, fields set) through filters to its output.
 * LS_OK: accepted (or dropped by a filter). LS_AGAIN: an output's buffer is
 * full and overflow_action is block: the record was NOT taken; stop
 * emitting, the core will call .resume. LS_ERROR: rejected (counted, routed
 * to @ERROR when configured).
 * Inputs reset rec's arena after the call; the record is dead.
 */
int ls_emit(struct ls_instance *in, struct ls_record *rec);
/* Route to @ERROR (parse failures with emit_invalid_record_to_error). */
int ls_emit_error(struct ls_instance *in, struct ls_record *rec, const char *why);
/*
 * Make everything emitted so far durable in every output (buffered outputs
 * write their pending frames). Only after LS_OK may an input advance its
 * persisted position (pos_file, watermark). LS_ERROR: not durable; do not
 * advance, retry later (already-accepted records are de-duplicated by
 * src/pos when re-emitted).
 */
int ls_input_commit(struct ls_instance *in);
/* oneshot: this input has reached the end of its data. */
void ls_input_done(struct ls_instance *in);
/*
 * oneshot: this input cannot reach the end of its data (source unreachable,
 * records refused by a full buffer). Marks it done, so what was emitted is
 * still flushed, and makes the run exit non-zero. Use only with --oneshot.
 */
void ls_input_fail(struct ls_instance *in);
/* True when running with --oneshot. */
bool ls_oneshot(const struct ls_engine *eng);
/*
 * True once a TERM or INT has arrived (it is read here if it is still pending). Long work
 * that runs before the loop does, such as loading a big pos_file at start, checks it now
 * and then and gives up early, so the process stops promptly.
 */
bool ls_stop_requested(void);
/* 64-bit key naming a delivery source (FNV-1a of bytes). Never 0. */
uint64_t ls_source_key(const void *p, size_t len);
/*
 * Highest position of src that is durably held by every buffered output
 * that has ever seen src (0 if none). Lets an input resume past records
 * written after its last persisted position (a crash between chunk write
 * and pos_file write).
 */
uint64_t ls_source_durable_pos(struct ls_engine *eng, uint64_t src);
/* Whether an output's buffer has seen records of src (and would drop re-reads of them). */
bool ls_source_known(struct ls_engine *eng, uint64_t src);
/*
 * Filters that hold records of a source in memory (concat's unfinished groups) tell inputs
 * not to persist their position past them, so that after kill -9 the input reads the held
 * records again instead of losing them. ls_source_hold: owner (one hold each) holds src's
 * records after position pos (0: after whatever the input had persisted when the first
 * held record was read); ls_source_release drops owner's hold. ls_source_held: the lowest
 * position held for src, false if none. Loop thread.
 */
void ls_source_hold(struct ls_engine *eng, const void *owner, uint64_t src, uint64_t pos);
void ls_source_release(struct ls_engine *eng, const void *owner);
bool ls_source_held(const struct ls_engine *eng, uint64_t src, uint64_t *pos);

/*
 * Filters that hold records and let them go later (concat: at the line that ends a group, on
 * a timer, at stop): route rec through the filters after f in its label, then to the
 * <match>, as fluentd's filter_stream returning more events than it took. Returns like
 * ls_emit; the record is dead afterwards.
 */
int ls_filter_emit_next(struct ls_instance *f, struct ls_record *rec);
/* Is there an <label @ERROR>? (fluentd's emit_error_event drops the record without one) */
bool ls_has_error_label(const struct ls_engine *eng);

/* ---- outputs that own outputs (copy) and relabel ---- */

/* Create an output (with its formatter, buffer and secondary) from a section such as <store>.
 * The engine owns it (commits, flushes and destroys it). NULL on error with file:line in err. */
struct ls_instance *ls_output_create(struct ls_engine *eng, struct ls_conf_section *sec,
                                     char *err, size_t errlen);
/* Give rec to one output. Returns like ls_emit. */
int ls_output_emit(struct ls_instance *out, struct ls_record *rec);
/* Route rec into the label named label ("@NAME"). LS_ERROR if there is no such label. */
int ls_emit_to_label(struct ls_instance *from, const char *label, struct ls_record *rec);
/* Is there a <label name>? Every label exists before any plugin's init runs. */
bool ls_label_exists(struct ls_engine *eng, const char *name);

/*
 * Outputs that re-emit under a new tag (rewrite_tag_filter, record_reformer), as fluentd's
 * router.emit does: first take a mutable copy of rec (fields borrowed, same arena, tag/time/
 * src/pos copied; the core owns it and reuses its storage per nesting level, so this does
 * not allocate in the steady state), change its tag or fields, then hand it to
 * ls_output_reemit, which routes it into label ("@NAME") when not NULL, else into the
 * <match>'s own @label, else from the top of the label out's <match> is in (its "context
 * router"; the root at top level), as fluentd's event_emitter does, so every filter of that
 * label runs again. Routing that nests deeper than LS_ROUTE_DEPTH_MAX (a
 * rewrite loop) stops: the record goes to @ERROR (or is dropped with a warning) and
 * LS_ERROR is returned. Otherwise returns like ls_emit.
 */
#define LS_ROUTE_DEPTH_MAX 32
struct ls_record *ls_output_reemit_copy(struct ls_instance *out, const struct ls_record *rec);
int ls_output_reemit(struct ls_instance *out, const char *label, struct ls_record *copy);

/* ---- event loop (the core owns every watcher) ---- */
struct ls_timer;
struct ls_io;
struct ls_fstat;
typedef void (*ls_timer_cb)(struct ls_timer *t, void *arg);
typedef void (*ls_io_cb)(struct ls_io *io, int revents, void *arg);
typedef void (*ls_fstat_cb)(struct ls_fstat *st, void *arg);

#define LS_IO_READ  0x01
#define LS_IO_WRITE 0x02

struct ls_timer *ls_timer_new(struct ls_instance *ins, ls_timer_cb cb, void *arg);
/* after seconds, then every repeat seconds (0 = once). Restarts if active. */
void ls_timer_start(struct ls_timer *t, double after, double repeat);
void ls_timer_stop(struct ls_timer *t);
void ls_timer_free(struct ls_timer *t);               /* stops it first; NULL ok */

struct ls_io *ls_io_new(struct ls_instance *ins, int fd, int events, ls_io_cb cb, void *arg);
void ls_io_set(struct ls_io *io, int events);         /* change events; 0 stops */
void ls_io_free(struct ls_io *io);

/*
 * Path watcher: cb runs when the file the path names may have changed (written, attributes,
 * moved, deleted) or the path appeared. One persistent inotify watch per file on the engine's
 * one inotify instance; polled with stat every interval seconds where it cannot be watched.
 */
struct ls_fstat *ls_fstat_new(struct ls_instance *ins, const char *path, double interval,
                              ls_fstat_cb cb, void *arg);
bool ls_fstat_watched(const struct ls_fstat *st);     /* false: polled */
/* In cb: every event since the last call was a write (IN_MODIFY), so the path still names the
 * same file (a rename or unlink would have said so); false after a poll. */
bool ls_fstat_only_written(const struct ls_fstat *st);
void ls_fstat_free(struct ls_fstat *st);

/* The raw libev loop, for libraries that need their own watchers (libcurl multi socket). */
struct ev_loop *ls_engine_loop(struct ls_engine *eng);

/*
 * Run work(arg) on the worker pool (off the loop thread), then done(arg)
 * on the loop thread. For CPU-heavy, non-per-line work: compression, digests.
 */
int ls_work_submit(struct ls_engine *eng, void (*work)(void *arg), void (*done)(void *arg),
                   void *arg);

/* ---- parsers (used by tail, rds_slowlog, filter_parser...) ---- */

/*
 * Parse one line with a parser instance: runs the plugin's .parse, then the
 * common layer (time_key + time_format/time_type, keep_time_key, types,
 * null_value_pattern, estimate_current_event). Returns like .parse.
 */
int ls_parser_parse(struct ls_instance *parser, const char *line, size_t len,
                    struct ls_record *rec);
int ls_parser_flush(struct ls_instance *parser, struct ls_record *rec);
/* Does this parser join lines (multiline / mysql_slow)? */
bool ls_parser_is_multiline(const struct ls_instance *parser);

/* ---- formatters ---- */
int ls_formatter_format(struct ls_instance *fmt, const struct ls_record *rec, struct ls_buf *out);

/* ---- buffered outputs: chunks ---- */

#define LS_NO_TIMEKEY INT64_MIN

struct ls_chunk_info {
    const char *id;             /* 32 hex chars, unique, stable across restarts */
    const char *tag;            /* "" when tag is not a chunk key */
    int64_t timekey;            /* start of the time slice (epoch sec; before 1970 it is
                                   negative), LS_NO_TIMEKEY if time is not a chunk key */
    const struct ls_kvv *keys;  /* record chunk keys' values (${host}...) */
    uint64_t bytes;             /* formatted payload bytes */
    uint64_t records;
    int64_t created;            /* epoch sec */
};

const struct ls_chunk_info *ls_chunk_info(const struct ls_chunk *c);
/*
 * Sequential reader over a chunk's formatted payload (frame headers are
 * stripped). Safe to use from a worker thread while the loop runs.
 */
struct ls_chunk_reader;
struct ls_chunk_reader *ls_chunk_reader_open(struct ls_chunk *c);
/* Returns bytes read, 0 at end, -1 on error. */
long ls_chunk_reader_read(struct ls_chunk_reader *r, void *buf, size_t n);
void ls_chunk_reader_close(struct ls_chunk_reader *r);
/*
 * Per-chunk output state (text the plugin chooses, e.g. the resolved S3 key
 * and multipart upload id/ETags). Persisted atomically next to the chunk
 * for the file buffer, so a restart sees it. NULL when none.
 */
const char *ls_chunk_state(const struct ls_chunk *c);
int ls_chunk_set_state(struct ls_chunk *c, const char *text);
/* Call cb for every chunk output out holds (queued, being written, staged): what earlier
 * attempts, or the process before a crash, left in their states. For a <secondary>, the
 * chunks of its primary. */
void ls_output_each_chunk(struct ls_instance *out, void (*cb)(struct ls_chunk *c, void *arg),
                          void *arg);
/* A stable path for derived files of this chunk (e.g. "<chunk>.gz"), in the
 * buffer dir for file buffers, in a temp dir for memory buffers. Caller owns it. */
char *ls_chunk_side_path(const struct ls_chunk *c, const char *suffix);
/*
 * Expand fluentd placeholders with the chunk's keys: ${tag}, ${tag[N]}
 * (negative N from the end), ${key} for record chunk keys, strftime %
 * sequences using the chunk's timekey (in the buffer's zone). Appends to out.
 */
int ls_chunk_expand(const struct ls_chunk *c, const char *tmpl, struct ls_buf *out);
/* The same into a new string (caller owns it); NULL when expansion fails or is empty. */
char *ls_chunk_expand_str(const struct ls_chunk *c, const char *tmpl);
/*
 * Blocking (call from a worker): write chunk c's payload, compressed with algo (an
 * enum ls_compress_algo, at its default level), to fd and fsync it. *written gets the bytes
 * written. LS_OK, or LS_ERROR with a message in err.
 */
int ls_chunk_write_fd(struct ls_chunk *c, int algo, int fd, uint64_t *written, char *err,
                      size_t errlen);
/*
 * Does chunk c's formatter make whole files (parquet, see .finish)? Then ls_chunk_write_fd
 * writes that file (and refuses compression and appending: the file is compressed inside).
 */
bool ls_chunk_whole_file(const struct ls_chunk *c);
/*
 * Blocking: write chunk c's payload to path atomically: a hidden temp file next to it
 * (".<name>.<chunk id>.tmp"), fsync, rename over path, fsync the directory. A crash
 * leaves either the old file or the whole new one, so a retry can simply write again.
 */
int ls_chunk_write_file(struct ls_chunk *c, int algo, const char *path, uint64_t *written,
                        char *err, size_t errlen);
/*
 * Blocking: write chunk c's payload to a new file, the first of name_at(name_arg, 0),
 * name_at(name_arg, 1)... that does not exist (name_at returns a name the caller owns, or
 * NULL when there is no further one), such that the name appears only with all its data:
 * the payload goes to a hidden part file in the names' directory (the directory of dir_of),
 * named by the chunk (".logship-<id>.part"), is fsynced, and link() gives it the name (link
 * fails on a taken one, so no two chunks get one name). Then record(record_arg, name) must
 * store the name in the chunk's state (LS_OK, or LS_ERROR with a message in err), and the
 * part file goes. If a crash came between the link and the record, the part file is still
 * linked when this is called again: nothing is written, and record gets the name it has
 * (NULL if it is no longer in that directory). *final gets the name (caller owns it),
 * before record is called.
 * LS_OK, or LS_ERROR with a message in err.
 */
int ls_chunk_publish_file(struct ls_chunk *c, int algo, const char *dir_of,
                          char *(*name_at)(void *arg, unsigned i), void *name_arg,
                          int (*record)(void *arg, const char *name), void *record_arg,
                          char **final, uint64_t *written, char *err, size_t errlen);
/* Remove c's part file in the directory of dir_of (left by a crash after the record). */
void ls_chunk_publish_done(struct ls_chunk *c, const char *dir_of);
/*
 * The strftime format fluentd derives from a timekey for a chunk's time slice
 * (timekey_to_timeformat): %Y%m%d%H%M%S below a minute, %Y%m%d%H%M below an hour,
 * %Y%m%d%H below a day, else %Y%m%d. Used for %{time_slice} and out_file names.
 */
const char *ls_timekey_format(double timekey);
/* Finish an asynchronous .write: rc LS_OK (delivered), LS_ERROR (retry) or LS_DECLINED
 * (unrecoverable, see .write). */
void ls_output_write_done(struct ls_instance *out, struct ls_chunk *c, int rc, const char *errmsg);
/*
 * During an asynchronous .write: chunk c's CPU part is done (compressed) and what is left
 * waits on the network, so the buffer may start the next chunk's write: flush_thread_count
 * counts the writes still working, and as many more may be sending.
 */
void ls_output_write_sending(struct ls_instance *out, struct ls_chunk *c);
/*
 * A buffered output delivered chunk c as `where` (an object's s3:// URL, a file's path) in
 * bytes bytes: logged at info level, at most one line a second per output, with a summary of
 * what was delivered in between (the operator sees progress without a line per chunk).
 */
void ls_output_delivered(struct ls_instance *out, struct ls_chunk *c, const char *where,
                         uint64_t bytes);
/* For outputs: the buffer's configured flush_thread_count (uploads in flight). */
int ls_output_concurrency(const struct ls_instance *out);
/*
 * For outputs, from init: its chunks will be gzip-compressed at level (1-12; -1: 6) through
 * ls_compress_stream_expect with ls_chunk_early_open's fd, so a file buffer may compress
 * their full pieces while they are staged (ls_gz_early, compress.h).
 */
void ls_output_early_gzip(struct ls_instance *out, int level);
/* The early pieces' side file of c, opened for reading, or -1 (none: pass -1 on);
 * *trusted: its pieces were read from c's file by this process (pass it on, with c's
 * size as expect, and the chunk reader skips them instead of reading them again). */
int ls_chunk_early_open(const struct ls_chunk *c, bool *trusted);

#endif
