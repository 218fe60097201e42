/*
 * buffer.c - chunks, time slices, the file buffer, flushing and retries.
 *
 * Write path (loop thread, per record): pick the staged chunk for the
 * record's key (tag / time slice / record keys; the last chunk used is
 * checked first, so a steady stream costs one compare), then format the
 * record into the buffer's single *pending frame*. The pending frame
 * belongs to one chunk at a time: when a record goes to another chunk, the
 * pending frame is written first. So frames reach the disk in record order,
 * and each frame carries the highest (src, pos) of the records in it. After
 * kill -9 the highest position found in the frames of an output is exactly
 * what that output durably holds: re-read records at or below it are
 * dropped here, records above it are taken. No journal, no fsync per line.
 *
 * Commit (ls_buffer_commit, when an input is about to advance its pos_file)
 * writes the pending frame with one writev(2). A frame that fails to write
 * completely is cut off again with ftruncate, so a full disk never leaves a
 * half frame behind; the input then does not advance and retries later.
 *
 * Chunk file (file buffer), see docs/internals/BUFFER.md:
 *   "LSCHUNK1" u32 header_len, header text ("tag\t..\n", "timekey\t..\n",
 *   "key\tname\tvalue\n", "created\t..\n"), then frames:
 *   u32 magic "LSFR", u32 payload_len, u32 records, u16 nsrc, u16 0,
 *   u32 crc32(src entries + payload), nsrc x (u64 src, u64 pos), payload.
 * Names: <dir>/logship.b<id>.chunk (staged), .q<id>. (queued); per-chunk
 * output state in <dir>/logship.<id>.state; side files <dir>/logship.<id>.*.
 *
 * Flushing and retries follow fluentd v1: enqueue when full, when the time
 * slice closes + timekey_wait, on flush_interval; write up to
 * flush_thread_count chunks at once; exponential backoff with jitter; after
 * retry_max_times / retry_timeout the chunk goes to <secondary>, or, with
 * none, to a backup directory (never deleted), or in --oneshot stays queued
 * and the run exits non-zero.
 */
#include "buffer.h"
#include "engine.h"
#include "timefmt.h"
#include "compress.h"
#include "log.h"

#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>

#define CHUNK_MAGIC "LSCHUNK1"
#define CHUNK_WRITEBACK_STEP (8u << 20)   /* see frame_write */
#define FRAME_MAGIC 0x5246534cu   /* "LSFR" little-endian */
#define FRAME_HDR 20
#define FRAME_MAX_SRC 64

enum { BUF_MEMORY, BUF_FILE };
enum { FLUSH_DEFAULT, FLUSH_LAZY, FLUSH_INTERVAL, FLUSH_IMMEDIATE };
enum { RETRY_EXP, RETRY_PERIODIC };
enum { OVERFLOW_THROW, OVERFLOW_BLOCK, OVERFLOW_DROP_OLDEST };
enum chunk_state { CH_STAGED, CH_QUEUED, CH_WRITING };

struct buffer_conf {
    char *path;
    double timekey;
    double timekey_wait;
    bool timekey_use_utc;
    char *timekey_zone;
    int64_t chunk_limit_size;
    int64_t chunk_limit_records;
    int64_t total_limit_size;
    int64_t queue_limit_length;
    int64_t queued_chunks_limit_size;
    double chunk_full_threshold;
    int flush_mode;
    double flush_interval;
    int64_t flush_thread_count;
    double flush_thread_interval;
    double flush_thread_burst_interval;
    bool flush_at_shutdown;
    int retry_type;
    double retry_wait;
    double retry_exponential_backoff_base;
    double retry_max_interval;
    bool retry_randomize;
    double retry_timeout;
    int64_t retry_max_times;
    bool retry_forever;
    double retry_secondary_threshold;
    int overflow_action;
    bool disable_chunk_backup;
    char *compress;
    char *path_suffix;
    double delayed_commit_timeout;
    int64_t file_permission;
    int64_t dir_permission;
};

const struct ls_param ls_buffer_params[] = {
    { "path", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct buffer_conf, path),
      "directory of the file buffer (@type file)", "buffer_path", NULL, 0, 0 },
    { "timekey", LS_P_TIME, NULL, 0, offsetof(struct buffer_conf, timekey),
      "time slice length when time is a chunk key (default 1d)", NULL, NULL, 0, 0 },
    { "timekey_wait", LS_P_TIME, "600", 0, offsetof(struct buffer_conf, timekey_wait),
      "how long after a slice ends its chunk is flushed", "time_slice_wait", NULL, 0, 0 },
    { "timekey_use_utc", LS_P_BOOL, "false", 0, offsetof(struct buffer_conf, timekey_use_utc),
      "align slices and format placeholders in UTC", NULL, NULL, 0, 0 },
    { "timekey_zone", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct buffer_conf, timekey_zone),
      "zone of slices and placeholders (+0900, Asia/Tokyo); default local", "timezone", NULL,
      0, 0 },
    { "chunk_limit_size", LS_P_SIZE, NULL, 0, offsetof(struct buffer_conf, chunk_limit_size),
      "max bytes of a chunk (default 8m memory, 256m file)", "buffer_chunk_limit", NULL, 0, 0 },
    { "chunk_limit_records", LS_P_INT, "0", 0, offsetof(struct buffer_conf, chunk_limit_records),
      "max records of a chunk (0: no limit)", NULL, NULL, 0, 0 },
    { "total_limit_size", LS_P_SIZE, NULL, 0, offsetof(struct buffer_conf, total_limit_size),
      "max bytes staged + queued (default 512m memory, 64g file)", NULL, NULL, 0, 0 },
    { "queue_limit_length", LS_P_INT, "0", 0, offsetof(struct buffer_conf, queue_limit_length),
      "v0.12: total_limit_size = chunk_limit_size x this", "buffer_queue_limit", NULL, 0, 0 },
    { "queued_chunks_limit_size", LS_P_INT, "0", 0,
      offsetof(struct buffer_conf, queued_chunks_limit_size),
      "stop enqueuing by time when this many chunks are queued (0: flush_thread_count)", NULL,
      NULL, 0, 0 },
    { "chunk_full_threshold", LS_P_FLOAT, "0.95", 0,
      offsetof(struct buffer_conf, chunk_full_threshold),
      "a chunk this full (ratio of chunk_limit_size) is enqueued", NULL, NULL, 0.1, 1 },
    { "flush_mode", LS_P_ENUM, "default", 0, offsetof(struct buffer_conf, flush_mode),
      "default: lazy with a time key, else interval", NULL, "default|lazy|interval|immediate",
      0, 0 },
    { "flush_interval", LS_P_TIME, "60", 0, offsetof(struct buffer_conf, flush_interval),
      "interval mode: flush chunks this old", NULL, NULL, 0, 0 },
    { "flush_thread_count", LS_P_INT, "1", 0, offsetof(struct buffer_conf, flush_thread_count),
      "chunks written in parallel", "num_threads", NULL, 1, 256 },
    { "flush_thread_interval", LS_P_TIME, "1", 0,
      offsetof(struct buffer_conf, flush_thread_interval), "accepted (the loop is event driven)",
      "try_flush_interval", NULL, 0, 0 },
    { "flush_thread_burst_interval", LS_P_TIME, "1", 0,
      offsetof(struct buffer_conf, flush_thread_burst_interval),
      "accepted (the loop is event driven)", "queued_chunk_flush_interval", NULL, 0, 0 },
    { "flush_at_shutdown", LS_P_BOOL, NULL, 0, offsetof(struct buffer_conf, flush_at_shutdown),
      "flush on stop (default: true for memory, false for file)", NULL, NULL, 0, 0 },
    { "retry_type", LS_P_ENUM, "exponential_backoff", 0, offsetof(struct buffer_conf, retry_type),
      "backoff between retries", NULL, "exponential_backoff|periodic", 0, 0 },
    { "retry_wait", LS_P_TIME, "1", 0, offsetof(struct buffer_conf, retry_wait),
      "first retry wait", NULL, NULL, 0, 0 },
    { "retry_exponential_backoff_base", LS_P_FLOAT, "2", 0,
      offsetof(struct buffer_conf, retry_exponential_backoff_base), "backoff base", NULL, NULL,
      1, 100 },
    { "retry_max_interval", LS_P_TIME, "0", 0, offsetof(struct buffer_conf, retry_max_interval),
      "cap on one wait (0: none)", "max_retry_wait", NULL, 0, 0 },
    { "retry_randomize", LS_P_BOOL, "true", 0, offsetof(struct buffer_conf, retry_randomize),
      "add +-12.5% jitter to waits", NULL, NULL, 0, 0 },
    { "retry_timeout", LS_P_TIME, "72h", 0, offsetof(struct buffer_conf, retry_timeout),
      "give up retrying after this long", NULL, NULL, 0, 0 },
    { "retry_max_times", LS_P_INT, "-1", 0, offsetof(struct buffer_conf, retry_max_times),
      "give up after this many retries (-1: no limit)", "retry_limit", NULL, 0, 0 },
    { "retry_forever", LS_P_BOOL, "false", 0, offsetof(struct buffer_conf, retry_forever),
      "never give up", "disable_retry_limit", NULL, 0, 0 },
    { "retry_secondary_threshold", LS_P_FLOAT, "0.8", 0,
      offsetof(struct buffer_conf, retry_secondary_threshold),
      "accepted; the secondary takes over when retries are exhausted", NULL, NULL, 0, 0 },
    { "overflow_action", LS_P_ENUM, "throw_exception", 0,
      offsetof(struct buffer_conf, overflow_action),
      "when full: refuse (inputs retry), block (pause inputs) or drop the oldest chunk",
      "buffer_queue_full_action", "throw_exception|block|drop_oldest_chunk", 0, 0 },
    { "disable_chunk_backup", LS_P_BOOL, "false", 0,
      offsetof(struct buffer_conf, disable_chunk_backup),
      "discard chunks that cannot be delivered instead of keeping them in backup/", NULL, NULL,
      0, 0 },
    { "compress", LS_P_STR, "text", 0, offsetof(struct buffer_conf, compress),
      "accepted; chunks are stored as text and compressed when sealed", NULL, NULL, 0, 0 },
    { "path_suffix", LS_P_STR, ".log", 0, offsetof(struct buffer_conf, path_suffix),
      "accepted (fluentd's file buffer names .log); logship names its chunk files itself",
      NULL, NULL, 0, 0 },
    { "delayed_commit_timeout", LS_P_TIME, "60", 0,
      offsetof(struct buffer_conf, delayed_commit_timeout),
      "accepted for compatibility", NULL, NULL, 0, 0 },
    { "file_permission", LS_P_INT, "0640", 0, offsetof(struct buffer_conf, file_permission),
      "mode of chunk files", NULL, NULL, 0, 0 },
    { "dir_permission", LS_P_INT, "0750", 0, offsetof(struct buffer_conf, dir_permission),
      "mode of buffer directories", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

struct ls_chunk {
    struct ls_buffer *b;
    struct ls_chunk_info info;
    char id[33];
    char *tag;
    struct ls_kvv keys;
    int64_t timekey;
    enum chunk_state state;
    double created_mono;
    double write_mono;           /* when the current write started (progress lines) */
    char *path;                 /* file buffer: current file name */
    int fd;                     /* file buffer: open for append while staged; -1 otherwise */
    uint64_t file_size;         /* bytes in the file (header + frames) */
    uint64_t wb_from;           /* file buffer: what is not yet handed to writeback */
    struct ls_buf mem;          /* memory buffer: the payload */
    char *state_text;
    bool state_on_disk;         /* state_text is what the state file holds */
    struct ls_instance *writer; /* who is writing it (primary or secondary) */
    bool sending;               /* its writer is only waiting on the network now */
    bool failed;
    struct ls_gz_early *early;  /* file buffer, until its write starts: pieces compressed early */
    bool early_here;            /* its early side file was written by this process */
    struct ls_chunk *next;      /* in staged list or queue */
};

struct src_pos {
    uint64_t src;
    uint64_t durable;
    uint64_t pending;
    uint64_t emit_seq;      /* the input emit that set pending (ls_engine.emit_seq) */
};

struct ls_buffer {
    struct ls_instance *out;
    struct ls_engine *eng;
    struct buffer_conf c;
    int type;
    bool key_tag, key_time;
    char **rkeys;               /* record chunk keys, as written */
    struct ls_accessor *racc;   /* per rkey: a nested key ("$.a.b"), or none (n 0): top level */
    size_t nrkeys;
    char *dir;
    int lock_fd;
    bool reserve_held;          /* .reserve holds RESERVE_BYTES (file buffer) */
    pthread_mutex_t reserve_lock; /* out_file saves chunk states from the worker pool */
    bool utc;
    char *zone;
    int64_t zone_cache_hour;
    int zone_cache_off;

    struct ls_chunk *staged;
    struct ls_chunk *queue_head, *queue_tail;
    struct ls_chunk *last;
    size_t nqueued;
    int inflight;
    int sending;                /* of inflight, those in ls_output_write_sending's state */
    uint64_t total_bytes;

    /* pending frame */
    struct ls_chunk *pchunk;
    struct ls_buf pending;
    uint32_t precords;
    struct src_pos psrc[FRAME_MAX_SRC];
    unsigned npsrc;

    /* durable positions per source */
    struct src_pos *hwm;
    size_t hwm_cap, hwm_n;

    double slow_flush;           /* the output's slow_flush_log_threshold (fluentd: 20 s) */
    /* progress lines (ls_output_delivered): the last line's time, what came since */
    double prog_last;
    uint64_t prog_n, prog_records, prog_bytes;

    /* retry state (per buffer, like fluentd) */
    int retries;
    double first_failure;
    double next_try;
    bool failed;
    bool blocked;
    bool warned_full;
    bool warned_soft;

    struct ls_arena arena;
};

static uint64_t seq_counter;

/*
 * Space kept aside in the buffer directory for the small files that must be written before a
 * chunk can leave and free its space (an upload's state: key, digest, upload id). Without it a
 * buffer that filled its file system could never deliver again: every upload would first need
 * a new state file. It is given up when such a write meets ENOSPC and taken again once a chunk
 * is purged. 64 KiB holds a few state files' pages plus their temporary copies.
 */
#define RESERVE_BYTES (64 * 1024)

static char *reserve_path(const struct ls_buffer *b)
{
    return ls_asprintf("%s/.reserve", b->dir);
}

static void reserve_take(struct ls_buffer *b)
{
    char *p;
    int fd, rc;

    if (b->type != BUF_FILE) {
        return;
    }
    pthread_mutex_lock(&b->reserve_lock);
    if (!b->reserve_held) {
        p = reserve_path(b);
        fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0) {
            rc = posix_fallocate(fd, 0, RESERVE_BYTES);
            b->reserve_held = rc == 0;
            close(fd);
            if (rc != 0) {
                unlink(p);    /* a partial reserve is no use; the next purge tries again */
            }
        }
        ls_free(p);
    }
    pthread_mutex_unlock(&b->reserve_lock);
}

static bool reserve_give_up(struct ls_buffer *b)
{
    char *p;
    bool had;

    pthread_mutex_lock(&b->reserve_lock);
    had = b->reserve_held;
    if (had) {
        p = reserve_path(b);
        unlink(p);
        ls_free(p);
        b->reserve_held = false;
    }
    pthread_mutex_unlock(&b->reserve_lock);
    return had;
}

/* ---------------------------------------------------------------- */

static struct src_pos *hwm_slot(struct ls_buffer *b, uint64_t src, bool create)
{
    size_t i;

    if (b->hwm_cap == 0) {
        if (!create) {
            return NULL;
        }
        b->hwm_cap = 64;
        b->hwm = ls_calloc(b->hwm_cap, sizeof(*b->hwm));
    }
    if (create && (b->hwm_n + 1) * 2 > b->hwm_cap) {
        struct src_pos *old = b->hwm;
        size_t oldcap = b->hwm_cap, j;
        b->hwm_cap *= 2;
        b->hwm = ls_calloc(b->hwm_cap, sizeof(*b->hwm));
        b->hwm_n = 0;
        for (j = 0; j < oldcap; j++) {
            if (old[j].src) {
                struct src_pos *s = hwm_slot(b, old[j].src, true);
                *s = old[j];
            }
        }
        ls_free(old);
    }
    i = (size_t)(src * 0x9E3779B97F4A7C15ULL >> 7) & (b->hwm_cap - 1);
    while (b->hwm[i].src) {
        if (b->hwm[i].src == src) {
            return &b->hwm[i];
        }
        i = (i + 1) & (b->hwm_cap - 1);
    }
    if (!create) {
        return NULL;
    }
    b->hwm[i].src = src;
    b->hwm_n++;
    return &b->hwm[i];
}

uint64_t ls_buffer_durable_pos(const struct ls_buffer *b, uint64_t src, bool *known)
{
    struct src_pos *s = hwm_slot((struct ls_buffer *)b, src, false);

    *known = s != NULL;
    return s ? s->durable : 0;
}

/* ---------------------------------------------------------------- */
/* configuration                                                     */

static int timekey_from_slice_format(const char *fmt, double *timekey)
{
    if (strstr(fmt, "%S") || strstr(fmt, "%s") || strstr(fmt, "%T")) {
        *timekey = 1;
    } else if (strstr(fmt, "%M") || strstr(fmt, "%R")) {
        *timekey = 60;
    } else if (strstr(fmt, "%H") || strstr(fmt, "%k") || strstr(fmt, "%I")) {
        *timekey = 3600;
    } else if (strstr(fmt, "%d") || strstr(fmt, "%e") || strstr(fmt, "%j") || strstr(fmt, "%F")) {
        *timekey = 86400;
    } else {
        return LS_ERROR;
    }
    return LS_OK;
}

static int parse_chunk_keys(struct ls_buffer *b, const char *arg, const char *file, int line,
                            char *err, size_t errlen)
{
    char *copy = ls_strdup(arg), *s = copy, *tok;

    if (strcmp(arg, "[]") == 0) {
        ls_free(copy);
        return LS_OK;
    }
    while ((tok = strsep(&s, ", ")) != NULL) {
        const char *c;
        if (*tok == '\0') {
            continue;
        }
        if (strcmp(tok, "tag") == 0) {
            b->key_tag = true;
            continue;
        }
        if (strcmp(tok, "time") == 0) {
            b->key_time = true;
            continue;
        }
        b->racc = ls_realloc(b->racc, (b->nrkeys + 1) * sizeof(*b->racc));
        memset(&b->racc[b->nrkeys], 0, sizeof(*b->racc));
        if (tok[0] == '$' && (tok[1] == '.' || tok[1] == '[')) {
            /* fluentd's record_accessor syntax: a nested key, its placeholder ${$.a.b} */
            char aerr[160];
            if (ls_accessor_compile(&b->racc[b->nrkeys], tok, aerr, sizeof(aerr)) != LS_OK) {
                snprintf(err, errlen, "%s:%d: invalid chunk key: %s", file, line, aerr);
                ls_free(copy);
                return LS_ERROR;
            }
            b->rkeys = ls_realloc(b->rkeys, (b->nrkeys + 1) * sizeof(char *));
            b->rkeys[b->nrkeys++] = ls_strdup(tok);
            continue;
        }
        for (c = tok; *c; c++) {
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' || *c == '.' || *c == '@')) {
                snprintf(err, errlen, "%s:%d: invalid chunk key '%s' (expected tag, time or a "
                         "record key of [-_.@a-zA-Z0-9])", file, line, tok);
                ls_free(copy);
                return LS_ERROR;
            }
        }
        b->rkeys = ls_realloc(b->rkeys, (b->nrkeys + 1) * sizeof(char *));
        b->rkeys[b->nrkeys++] = ls_strdup(tok);
    }
    ls_free(copy);
    return LS_OK;
}

struct ls_buffer *ls_buffer_create(struct ls_instance *out, struct ls_conf_section *bufsec,
                                   struct ls_conf_section *outsec, char *err, size_t errlen)
{
    struct ls_buffer *b = ls_calloc(1, sizeof(*b));
    struct ls_conf_section *src = bufsec ? bufsec : outsec;
    const char *type = NULL, *v, *file = src ? src->file : "(default)";
    int line = src ? src->line : 0;
    bool flat_flush_interval = false;
    const char *slice_fmt = outsec ? ls_conf_get(outsec, "time_slice_format") : NULL;

    b->out = out;
    b->eng = out->engine;
    b->lock_fd = -1;
    pthread_mutex_init(&b->reserve_lock, NULL);
    b->zone_cache_hour = INT64_MIN;
    ls_buf_init(&b->pending, 0);
    ls_arena_init(&b->arena, 1024);

    if (bufsec) {
        type = ls_conf_type(bufsec);
    } else if (outsec) {
        type = ls_conf_get(outsec, "buffer_type");
        flat_flush_interval = ls_conf_get(outsec, "flush_interval") != NULL;
    }
    if (bufsec && outsec && ls_conf_get(outsec, "flush_interval")) {
        /* fluentd: flush_interval outside <buffer> forces interval mode */
        flat_flush_interval = true;
    }
    if (ls_param_bind(ls_buffer_params, src, &b->c, err, errlen) != LS_OK) {
        goto fail;
    }
    /* the output's own defaults (fluentd's config_set_default in its config_section :buffer)
     * for what the configuration leaves out */
    for (const char *const *d = out->plugin->buffer_defaults; d && d[0]; d += 2) {
        const struct ls_param *row = ls_param_find(ls_buffer_params, d[0]);
        char *field = row ? (char *)&b->c + row->offset : NULL;
        if (row == NULL || (src && ls_conf_get(src, d[0]) != NULL)) {
            continue;
        }
        if (row->type == LS_P_TIME) {
            (void)ls_parse_time(d[1], (double *)(void *)field);
        } else if (row->type == LS_P_SIZE) {
            (void)ls_parse_size(d[1], (int64_t *)(void *)field);
        } else if (row->type == LS_P_INT) {
            (void)ls_parse_int(d[1], (int64_t *)(void *)field);
        } else if (row->type == LS_P_BOOL) {
            (void)ls_parse_bool(d[1], (bool *)(void *)field);
        }
    }
    /* an output parameter in fluentd (not <buffer>'s), read here where writes are timed */
    b->slow_flush = 20.0;
    if (outsec && (v = ls_conf_get(outsec, "slow_flush_log_threshold")) != NULL) {
        struct ls_conf_param *sp = ls_conf_get_param(outsec, "slow_flush_log_threshold");

        sp->used = true;
        if (ls_parse_time(v, &b->slow_flush) != LS_OK || b->slow_flush < 0) {
            snprintf(err, errlen, "%s:%d: slow_flush_log_threshold '%s' is not a time like 20s",
                     sp->file, sp->line, v);
            goto fail;
        }
    }
    if (!bufsec && outsec) {
        /*
         * Flat v0.12 names: only buffer_path names the buffer. The output's
         * own 'path' (out_file's file name, out_s3's key prefix) is bound to
         * the "path" row above because it is the primary name, but it is
         * not the buffer's (fluentd's compat layer maps buffer_path only).
         */
        const char *bp = ls_conf_get(outsec, "buffer_path");
        ls_free(b->c.path);
        b->c.path = bp && *bp ? ls_strdup(bp) : NULL;
    }
    /* permissions are octal ("0640"), as in fluentd; the INT row parsed them as decimal */
    {
        static const char *const pk[2] = { "file_permission", "dir_permission" };
        int64_t *pv[2] = { &b->c.file_permission, &b->c.dir_permission };
        int64_t pd[2] = { 0640, 0750 };
        for (int k = 0; k < 2; k++) {
            const char *pval = src ? ls_conf_get(src, pk[k]) : NULL;
            char *end;
            long mode = pd[k];
            if (pval) {
                mode = strtol(pval, &end, 8);
                if (end == pval || *end != '\0' || mode < 0 || mode > 07777) {
                    struct ls_conf_param *pp = ls_conf_get_param(src, pk[k]);
                    snprintf(err, errlen, "%s:%d: %s '%s' is not an octal mode like 0640",
                             pp->file, pp->line, pk[k], pval);
                    goto fail;
                }
            }
            *pv[k] = mode;
        }
    }
    if (type == NULL || *type == '\0') {
        /* v0.12: an output with buffer_path had a file buffer (TimeSlicedOutput) */
        type = b->c.path ? "file" : "memory";
    }
    if (strcmp(type, "file") == 0 || strcmp(type, "file_single") == 0) {
        b->type = BUF_FILE;
    } else if (strcmp(type, "memory") == 0) {
        b->type = BUF_MEMORY;
    } else {
        snprintf(err, errlen, "%s:%d: unknown buffer type '%s' (memory or file)", file, line, type);
        goto fail;
    }
    /* chunk keys: the section's argument, or the plugin's default */
    if (bufsec && bufsec->arg[0]) {
        if (parse_chunk_keys(b, bufsec->arg, bufsec->file, bufsec->line, err, errlen) != LS_OK) {
            goto fail;
        }
    } else if (out->plugin->default_chunk_keys) {
        if (parse_chunk_keys(b, out->plugin->default_chunk_keys, file, line, err, errlen) != LS_OK) {
            goto fail;
        }
    }
    if (slice_fmt && !bufsec) {
        double tk;
        if (timekey_from_slice_format(slice_fmt, &tk) != LS_OK) {
            struct ls_conf_param *p = ls_conf_get_param(outsec, "time_slice_format");
            snprintf(err, errlen, "%s:%d: time_slice_format '%s' needs %%d, %%H, %%M or %%S "
                     "(a slice of a month or a year is too long)", p->file, p->line, slice_fmt);
            goto fail;
        }
        b->key_time = true;
        if (b->c.timekey == 0) {
            b->c.timekey = tk;
        }
    }
    if (b->key_time && b->c.timekey <= 0 && out->plugin->default_timekey && outsec) {
        b->c.timekey = out->plugin->default_timekey(outsec);
    }
    if (b->key_time && b->c.timekey <= 0) {
        b->c.timekey = 86400;
    }
    /*
     * v0.12 utc / localtime flags reach the buffer only with time_slice_format (fluentd's
     * compat layer); without it the slices stay local and the flags only change how times are
     * formatted (engine.c makes the <format>).
     */
    if (!bufsec && outsec && slice_fmt) {
        if (ls_conf_get(outsec, "utc") && ls_conf_get(outsec, "localtime")) {
            ls_conf_param_error(outsec, "localtime", err, errlen, "both of utc and localtime "
                                "are specified, use only one of them");
            goto fail;
        }
        if (ls_conf_get(outsec, "utc")) {
            bool u = true;
            (void)ls_parse_bool(ls_conf_get(outsec, "utc"), &u);
            b->c.timekey_use_utc = u;
        }
        if ((v = ls_conf_get(outsec, "localtime")) != NULL) {
            bool l = true;
            (void)ls_parse_bool(v, &l);
            if (!l) {
                b->c.timekey_use_utc = true;
            }
        }
    }
    b->utc = b->c.timekey_use_utc;
    b->zone = b->c.timekey_zone ? ls_strdup(b->c.timekey_zone) : NULL;
    if (b->utc) {
        ls_free(b->zone);
        b->zone = ls_strdup("UTC");
    }
    if (b->zone) {
        int off;
        if (ls_tz_offset(b->zone, 0, &off) != LS_OK) {
            snprintf(err, errlen, "%s:%d: unknown time zone '%s'", file, line, b->zone);
            goto fail;
        }
    }
    if (b->c.chunk_limit_size == 0) {
        b->c.chunk_limit_size = b->type == BUF_FILE ? (int64_t)256 << 20 : (int64_t)8 << 20;
    }
    if (b->c.total_limit_size == 0) {
        b->c.total_limit_size = b->type == BUF_FILE ? (int64_t)64 << 30 : (int64_t)512 << 20;
        if (b->c.queue_limit_length > 0) {
            b->c.total_limit_size = b->c.chunk_limit_size * b->c.queue_limit_length;
        }
    }
    if (ls_conf_get_param(src, "flush_at_shutdown") == NULL) {
        b->c.flush_at_shutdown = b->type == BUF_MEMORY;
    }
    if (b->c.queued_chunks_limit_size <= 0) {
        b->c.queued_chunks_limit_size = b->c.flush_thread_count;
    }
    if (b->c.flush_mode == FLUSH_DEFAULT) {
        b->c.flush_mode = b->key_time ? FLUSH_LAZY : FLUSH_INTERVAL;
    }
    if (flat_flush_interval) {
        b->c.flush_mode = FLUSH_INTERVAL;
    }
    if (b->type == BUF_FILE) {
        if (b->c.path == NULL) {
            struct ls_engine *eng = out->engine;
            if (eng && eng->sys.root_dir && out->conf && ls_conf_get(out->conf, "@id")) {
                b->dir = ls_asprintf("%s/worker0/%s/buffer", eng->sys.root_dir, out->id);
            } else {
                snprintf(err, errlen, "%s:%d: the file buffer needs 'path' (or <system> root_dir "
                         "and an @id)", file, line);
                goto fail;
            }
        } else {
            char *star = strchr(b->c.path, '*');
            /* "path /x/buf.*" names files; a plain path is a directory */
            if (star) {
                char *slash;
                b->dir = ls_strdup(b->c.path);
                slash = strrchr(b->dir, '/');
                if (slash) {
                    *slash = '\0';
                } else {
                    ls_free(b->dir);
                    b->dir = ls_strdup(".");
                }
            } else {
                b->dir = ls_strdup(b->c.path);
            }
        }
    }
    return b;

fail:
    ls_buffer_destroy(b);
    return NULL;
}

bool ls_buffer_flush_at_shutdown(const struct ls_buffer *b)
{
    return b->c.flush_at_shutdown;
}

/* ---------------------------------------------------------------- */
/* chunks                                                            */

static void make_id(char out[33])
{
    static bool seeded;
    int64_t sec;
    int32_t nsec;
    uint64_t usec;
    uint32_t r1, r2;

    if (!seeded) {
        srandom((unsigned)(getpid() ^ (unsigned)time(NULL)));
        seeded = true;
    }
    ls_wall_now(&sec, &nsec);
    usec = (uint64_t)sec * 1000000u + (uint64_t)nsec / 1000u;
    /* fluentd's unique_id layout: time-ordered hex, then randomness */
    r1 = (uint32_t)random() ^ (uint32_t)(++seq_counter << 16);
    r2 = (uint32_t)random();
    snprintf(out, 33, "%016llx%08x%08x",
             (unsigned long long)((usec << 12) | ((uint64_t)random() & 0xfff)), r1, r2);
}

static char *chunk_file_name(struct ls_buffer *b, const char *id, char state)
{
    return ls_asprintf("%s/logship.%c%s.chunk", b->dir, state, id);
}

static void chunk_fill_info(struct ls_chunk *c)
{
    c->info.id = c->id;
    c->info.tag = c->tag ? c->tag : "";
    c->info.timekey = c->timekey;
    c->info.keys = &c->keys;
}

/* percent-escape tab, newline and % so header values stay on one line */
static void put_escaped(struct ls_buf *o, const char *s)
{
    for (; *s; s++) {
        if (*s == '\t' || *s == '\n' || *s == '%' || *s == '\r') {
            ls_buf_printf(o, "%%%02X", (unsigned char)*s);
        } else {
            ls_buf_putc(o, *s);
        }
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

static char *unescape(const char *s, size_t n)
{
    char *o = ls_malloc(n + 1);
    size_t i, j = 0;

    for (i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            o[j++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
            continue;
        }
        o[j++] = s[i];
    }
    o[j] = '\0';
    return o;
}

static int chunk_write_header(struct ls_chunk *c)
{
    struct ls_buf h;
    size_t i;
    uint32_t hl;
    int rc;

    ls_buf_init(&h, 0);
    ls_buf_append(&h, CHUNK_MAGIC, 8);
    ls_buf_append(&h, "\0\0\0\0", 4);
    if (c->tag) {
        ls_buf_append(&h, "tag\t", 4);
        put_escaped(&h, c->tag);
        ls_buf_putc(&h, '\n');
    }
    ls_buf_printf(&h, "timekey\t%lld\ncreated\t%lld\n", (long long)c->timekey,
                  (long long)c->info.created);
    for (i = 0; i < c->keys.n; i++) {
        ls_buf_append(&h, "key\t", 4);
        put_escaped(&h, c->keys.v[i].key);
        ls_buf_putc(&h, '\t');
        put_escaped(&h, c->keys.v[i].value);
        ls_buf_putc(&h, '\n');
    }
    hl = (uint32_t)(h.len - 12);
    memcpy(h.p + 8, &hl, 4);
    rc = ls_write_all(c->fd, h.p, h.len);
    c->file_size = h.len;
    ls_buf_release(&h);
    return rc;
}

/* The payload of a chunk's frames, read back from its file on an ls_gz_early thread: only
 * frames written whole before ls_gz_early_avail allowed them, so no lock (a chunk file only
 * grows, and a rename or a salvage leaves this descriptor's file as it was). */
struct early_reader {
    int fd;
    uint64_t off;           /* the next frame header */
    uint32_t left;          /* payload bytes left in the current frame */
};

/* Up to n payload bytes of the frames at *off (*left: what is left of the current frame),
 * stopping at file offset end: bytes read, 0 at the end, -1 on a read error or a bad frame.
 * ls_chunk_reader_read and the early reader share it. */
static long frames_read(int fd, uint64_t *off, uint32_t *left, uint64_t end, void *buf, size_t n)
{
    ssize_t got;

    while (*left == 0) {
        unsigned char fh[FRAME_HDR];
        uint32_t magic, plen;
        uint16_t nsrc;
        if (*off >= end) {
            return 0;
        }
        if (pread(fd, fh, FRAME_HDR, (off_t)*off) != FRAME_HDR) {
            return -1;
        }
        memcpy(&magic, fh, 4);
        memcpy(&plen, fh + 4, 4);
        memcpy(&nsrc, fh + 12, 2);
        if (magic != FRAME_MAGIC) {
            return -1;
        }
        *off += FRAME_HDR + (uint64_t)nsrc * 16;
        *left = plen;
    }
    if (n > *left) {
        n = *left;
    }
    if (buf == NULL) {
        /* a skip (compress.h's trusted early pieces) */
        *off += n;
        *left -= (uint32_t)n;
        return (long)n;
    }
    do {
        got = pread(fd, buf, n, (off_t)*off);
    } while (got < 0 && errno == EINTR);
    if (got <= 0) {
        return -1;
    }
    *off += (uint64_t)got;
    *left -= (uint32_t)got;
    return (long)got;
}

static long early_read(void *arg, void *buf, size_t n)
{
    struct early_reader *r = arg;

    /* no end: ls_gz_early reads only within what ls_gz_early_avail allowed */
    return frames_read(r->fd, &r->off, &r->left, UINT64_MAX, buf, n);
}

static void early_reader_free(void *arg)
{
    struct early_reader *r = arg;

    close(r->fd);
    ls_free(r);
}

/* Start compressing c's pieces early if its output asked for it (a new chunk, header only). */
static void chunk_early_start(struct ls_chunk *c)
{
    struct ls_buffer *b = c->b;
    struct early_reader *r;
    char *side;
    int in_fd, out_fd;

    if (b->out == NULL || b->out->early_gzip == 0) {
        return;
    }
    in_fd = open(c->path, O_RDONLY | O_CLOEXEC);
    if (in_fd < 0) {
        return;
    }
    side = ls_chunk_side_path(c, "gzp");
    out_fd = open(side, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640);
    if (out_fd < 0) {
        close(in_fd);
        ls_free(side);
        return;
    }
    r = ls_calloc(1, sizeof(*r));
    r->fd = in_fd;
    r->off = c->file_size;
    c->early = ls_gz_early_new(b->out->early_gzip < 0 ? 6 : b->out->early_gzip, early_read, r,
                               early_reader_free, out_fd);
    if (c->early == NULL) {
        early_reader_free(r);
        close(out_fd);
        unlink(side);
    } else {
        c->early_here = true;
    }
    ls_free(side);
}

void ls_output_early_gzip(struct ls_instance *out, int level)
{
    out->early_gzip = level == 0 ? -1 : level;
}

int ls_chunk_early_open(const struct ls_chunk *c, bool *trusted)
{
    char *side;
    int fd;

    /* a side file left by an earlier process is checked piece by piece against the chunk:
     * recovery may have cut the chunk short at a frame lost in a crash, and the frames
     * written since are not what that process compressed */
    *trusted = c->early_here;
    if (c->b->type != BUF_FILE) {
        return -1;
    }
    side = ls_chunk_side_path(c, "gzp");
    fd = open(side, O_RDONLY | O_CLOEXEC);
    ls_free(side);
    return fd;
}

static struct ls_chunk *chunk_new(struct ls_buffer *b, const char *tag, size_t tag_len,
                                  int64_t timekey, const struct ls_kvv *keys)
{
    struct ls_chunk *c = ls_calloc(1, sizeof(*c));
    size_t i;
    int32_t ns;

    c->b = b;
    c->fd = -1;
    make_id(c->id);
    c->tag = tag ? ls_strndup(tag, tag_len) : NULL;
    c->timekey = timekey;
    ls_wall_now(&c->info.created, &ns);
    c->created_mono = ls_mono_now();
    ls_buf_init(&c->mem, 0);
    if (keys) {
        c->keys.v = ls_calloc(keys->n ? keys->n : 1, sizeof(struct ls_kv));
        for (i = 0; i < keys->n; i++) {
            c->keys.v[i].key = ls_strdup(keys->v[i].key);
            c->keys.v[i].value = ls_strdup(keys->v[i].value);
        }
        c->keys.n = keys->n;
    }
    chunk_fill_info(c);
    c->state = CH_STAGED;
    if (b->type == BUF_FILE) {
        c->path = chunk_file_name(b, c->id, 'b');
        c->fd = open(c->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC,
                     (int)b->c.file_permission);
        if (c->fd < 0 && errno == ENOENT) {
            /* the directory was removed under us (rm -rf): make it again, keep buffering */
            ls_plg_warn(b->out, "buffer directory '%s' is gone (deleted while running?); "
                        "creating it again", b->dir);
            if (ls_mkdir_p(b->dir, (int)b->c.dir_permission) == LS_OK) {
                c->fd = open(c->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC,
                             (int)b->c.file_permission);
            }
        }
        if (c->fd < 0 || chunk_write_header(c) != LS_OK) {
            ls_plg_error(b->out, "cannot create chunk file '%s' (%d: %s)", c->path, errno,
                         strerror(errno));
            if (c->fd >= 0) {
                close(c->fd);
                unlink(c->path);
            }
            ls_free(c->path);
            ls_free(c->tag);
            ls_kvv_release(&c->keys);
            ls_free(c);
            return NULL;
        }
        b->total_bytes += c->file_size;
        chunk_early_start(c);
    }
    c->next = b->staged;
    b->staged = c;
    return c;
}

static void unlink_side_files_in(const char *dir, const char *id)
{
    char *pat = ls_asprintf("%s/logship.%s.*", dir, id);
    glob_t g;
    size_t i;

    if (glob(pat, 0, NULL, &g) == 0) {
        for (i = 0; i < g.gl_pathc; i++) {
            unlink(g.gl_pathv[i]);
        }
        globfree(&g);
    }
    ls_free(pat);
}

static void unlink_side_files(struct ls_buffer *b, const char *id)
{
    unlink_side_files_in(b->dir, id);
}

/*
 * A delivered chunk's files, deleted on a worker: unlinking a chunk of 100 MB took the loop
 * thread 12-27 ms (ext4 freeing its blocks, the kernel dropping its cached pages), during
 * which the next upload of a backlog's end waited. The chunk file goes first, its side
 * files (out_s3's upload state among them) after it, as on the loop: a crash between the
 * two leaves what a crash during the unlink left, a chunk whose state proves it uploaded.
 */
struct purge_job {
    char *path, *dir;
    char id[33];
};

static void purge_work(void *arg)
{
    struct purge_job *j = arg;

    unlink(j->path);
    unlink_side_files_in(j->dir, j->id);
}

static void purge_done(void *arg)
{
    struct purge_job *j = arg;

    ls_free(j->path);
    ls_free(j->dir);
    ls_free(j);
}

static bool purge_on_worker(struct ls_chunk *c)
{
    struct ls_buffer *b = c->b;
    struct purge_job *j;
    bool held;

    if (b->eng == NULL || b->eng->threads == NULL) {
        return false;
    }
    pthread_mutex_lock(&b->reserve_lock);
    held = b->reserve_held;
    pthread_mutex_unlock(&b->reserve_lock);
    if (!held) {
        return false;     /* a full disk: the reserve is taken again right after the unlink */
    }
    j = ls_calloc(1, sizeof(*j));
    j->path = ls_strdup(c->path);
    j->dir = ls_strdup(b->dir);
    snprintf(j->id, sizeof(j->id), "%s", c->id);
    if (ls_work_submit(b->eng, purge_work, purge_done, j) != LS_OK) {
        purge_done(j);
        return false;
    }
    return true;
}

static void chunk_free(struct ls_chunk *c)
{
    ls_gz_early_end(c->early);
    if (c->fd >= 0) {
        close(c->fd);
    }
    ls_free(c->path);
    ls_free(c->tag);
    ls_kvv_release(&c->keys);
    ls_buf_release(&c->mem);
    ls_free(c->state_text);
    ls_free(c);
}

static uint64_t chunk_bytes(const struct ls_chunk *c)
{
    return c->b->type == BUF_FILE ? c->file_size : c->mem.len;
}

/* delete a delivered (or given-up) chunk and everything that belongs to it */
static void chunk_purge(struct ls_chunk *c)
{
    struct ls_buffer *b = c->b;

    b->total_bytes -= chunk_bytes(c) <= b->total_bytes ? chunk_bytes(c) : b->total_bytes;
    if (b->type == BUF_FILE) {
        if (c->fd >= 0) {
            close(c->fd);
            c->fd = -1;
        }
        if (!purge_on_worker(c)) {
            unlink(c->path);
            unlink_side_files(b, c->id);
            /* before any input can write into the space just freed */
            reserve_take(b);
        }
    } else if (b->dir) {
        unlink_side_files(b, c->id);
    }
    chunk_free(c);
}

/* ---------------------------------------------------------------- */
/* pending frame                                                     */

static int frame_write(struct ls_buffer *b)
{
    struct ls_chunk *c = b->pchunk;
    unsigned char hdr[FRAME_HDR];
    unsigned char srcs[FRAME_MAX_SRC * 16];
    uint32_t magic = FRAME_MAGIC, plen, nrec, crc;
    uint16_t nsrc, zero = 0;
    unsigned i;
    struct iovec iov[3];
    ssize_t want, got;

    if (c == NULL || (b->pending.len == 0 && b->npsrc == 0)) {
        return LS_OK;
    }
    if (b->type == BUF_MEMORY) {
        if (ls_buf_append(&c->mem, b->pending.p, b->pending.len) != LS_OK) {
            return LS_ERROR;
        }
        b->total_bytes += b->pending.len;
        goto committed;
    }
    plen = (uint32_t)b->pending.len;
    nrec = b->precords;
    nsrc = (uint16_t)b->npsrc;
    for (i = 0; i < b->npsrc; i++) {
        memcpy(srcs + i * 16, &b->psrc[i].src, 8);
        memcpy(srcs + i * 16 + 8, &b->psrc[i].pending, 8);
    }
    crc = ls_crc32(0, srcs, (size_t)nsrc * 16);
    crc = ls_crc32(crc, b->pending.p, plen);
    memcpy(hdr, &magic, 4);
    memcpy(hdr + 4, &plen, 4);
    memcpy(hdr + 8, &nrec, 4);
    memcpy(hdr + 12, &nsrc, 2);
    memcpy(hdr + 14, &zero, 2);
    memcpy(hdr + 16, &crc, 4);
    iov[0].iov_base = hdr;
    iov[0].iov_len = FRAME_HDR;
    iov[1].iov_base = srcs;
    iov[1].iov_len = (size_t)nsrc * 16;
    iov[2].iov_base = b->pending.p;
    iov[2].iov_len = plen;
    want = (ssize_t)(FRAME_HDR + (size_t)nsrc * 16 + plen);
    do {
        got = writev(c->fd, iov, 3);
    } while (got < 0 && errno == EINTR);
    if (got != want) {
        int saved = errno;
        /* never leave half a frame: cut the file back to the last whole frame */
        if (ftruncate(c->fd, (off_t)c->file_size) != 0) {
            ls_plg_error(b->out, "ftruncate() '%s' failed (%d: %s)", c->path, errno,
                         strerror(errno));
        }
        ls_plg_error(b->out, "write() of a frame to '%s' failed (%d: %s); input will retry",
                     c->path, got < 0 ? saved : ENOSPC, strerror(got < 0 ? saved : ENOSPC));
        snprintf(b->out->metrics.last_error, sizeof(b->out->metrics.last_error),
                 "chunk write failed: %s", strerror(got < 0 ? saved : ENOSPC));
        return LS_ERROR;
    }
    c->file_size += (uint64_t)want;
    b->total_bytes += (uint64_t)want;
    if (c->file_size - c->wb_from >= CHUNK_WRITEBACK_STEP) {
        /* start writing it to the disk now: the fsync at enqueue then waits for the last few
         * MiB instead of the whole chunk, on the loop thread (a backlog's end enqueues its
         * 100 MB chunks together, and the upload completions waited behind 0.3 s of fsync).
         * SYNC_FILE_RANGE_WRITE only starts the I/O; where it is not supported nothing
         * changes. */
        (void)sync_file_range(c->fd, (off_t)c->wb_from, (off_t)(c->file_size - c->wb_from),
                              SYNC_FILE_RANGE_WRITE);
        c->wb_from = c->file_size;
    }
    ls_gz_early_avail(c->early, c->info.bytes + plen);

committed:
    c->info.bytes += b->pending.len;
    c->info.records += b->precords;
    b->out->metrics.emit_bytes += b->pending.len;
    for (i = 0; i < b->npsrc; i++) {
        struct src_pos *s = hwm_slot(b, b->psrc[i].src, true);
        if (b->psrc[i].pending > s->durable) {
            s->durable = b->psrc[i].pending;
        }
        s->pending = s->durable;
    }
    ls_buf_reset(&b->pending);
    b->precords = 0;
    b->npsrc = 0;
    return LS_OK;
}

/* forget what is pending (after a failed frame write): the input reads it again */
static void frame_discard(struct ls_buffer *b)
{
    unsigned i;

    for (i = 0; i < b->npsrc; i++) {
        struct src_pos *s = hwm_slot(b, b->psrc[i].src, true);
        s->pending = s->durable;
    }
    ls_buf_reset(&b->pending);
    b->precords = 0;
    b->npsrc = 0;
}

static void enqueue(struct ls_buffer *b, struct ls_chunk *c);

int ls_buffer_commit(struct ls_buffer *b)
{
    int rc = frame_write(b);

    if (rc != LS_OK) {
        frame_discard(b);
        return LS_ERROR;
    }
    if (b->c.flush_mode == FLUSH_IMMEDIATE) {
        ls_buffer_enqueue_all(b);
    }
    return LS_OK;
}

/* ---------------------------------------------------------------- */
/* write path                                                        */

static int64_t slice_of(struct ls_buffer *b, int64_t t)
{
    int64_t tk = (int64_t)b->c.timekey;
    int64_t off = 0;
    int64_t hour = t / 3600;

    if (!b->utc) {
        if (hour != b->zone_cache_hour) {
            int o = 0;
            (void)ls_tz_offset(b->zone, t, &o);
            b->zone_cache_hour = hour;
            b->zone_cache_off = o;
        }
        off = b->zone_cache_off;
    }
    /* the window is [t - ((t + offset) mod timekey), ... + timekey), as fluentd */
    return t - ((((t + off) % tk) + tk) % tk);
}

static bool chunk_key_equal(const struct ls_chunk *c, const char *tag, size_t tag_len,
                            int64_t timekey, const struct ls_kvv *keys)
{
    size_t i;

    if (c->timekey != timekey) {
        return false;
    }
    if ((c->tag == NULL) != (tag == NULL)) {
        return false;
    }
    if (tag && (strlen(c->tag) != tag_len || memcmp(c->tag, tag, tag_len) != 0)) {
        return false;
    }
    for (i = 0; i < keys->n; i++) {
        if (strcmp(c->keys.v[i].value, keys->v[i].value) != 0) {
            return false;
        }
    }
    return true;
}

/*
 * A memory buffer holds at most the staged chunk plus queued_chunks_limit_size
 * queued ones (default: flush_thread_count), not fluentd's 512 MB total: the inputs
 * that feed it can wait (tail's file on disk, the RDS table, is the real buffer), and a
 * parser that outruns compression ten to one would otherwise fill memory up to the
 * total limit. An explicit smaller total_limit_size still wins.
 */
static uint64_t effective_limit(const struct ls_buffer *b)
{
    uint64_t limit = (uint64_t)b->c.total_limit_size;

    if (b->type == BUF_MEMORY) {
        uint64_t soft = (uint64_t)(b->c.queued_chunks_limit_size + 1) *
                        (uint64_t)b->c.chunk_limit_size;
        if (soft < limit) {
            limit = soft;
        }
    }
    return limit;
}

const char *ls_buffer_dir(const struct ls_buffer *b)
{
    return b->dir;
}

bool ls_buffer_over_limit(const struct ls_buffer *b)
{
    return b->total_bytes + b->pending.len >= effective_limit(b);
}

static void chunk_abandon(struct ls_buffer *b, struct ls_chunk *c);

static void drop_oldest(struct ls_buffer *b)
{
    struct ls_chunk *c = b->queue_head;

    /* the oldest queued chunk that is not being written */
    while (c && c->state == CH_WRITING) {
        c = c->next;
    }
    if (c == NULL) {
        return;
    }
    if (c == b->queue_head) {
        b->queue_head = c->next;
        if (b->queue_tail == c) {
            b->queue_tail = NULL;
        }
    } else {
        struct ls_chunk *p = b->queue_head;
        while (p->next != c) {
            p = p->next;
        }
        p->next = c->next;
        if (b->queue_tail == c) {
            b->queue_tail = p;
        }
    }
    b->nqueued--;
    b->out->metrics.dropped += c->info.records;
    ls_plg_warn(b->out, "buffer full: dropping the oldest chunk %s (%llu records) as "
                "overflow_action drop_oldest_chunk says", c->id,
                (unsigned long long)c->info.records);
    chunk_abandon(b, c);
    chunk_purge(c);
}

int ls_buffer_write(struct ls_buffer *b, const struct ls_record *rec)
{
    struct ls_chunk *c;
    struct ls_kvv keys = { NULL, 0 };
    struct ls_kv kvs[8];
    int64_t timekey = LS_NO_TIMEKEY;
    const char *tag = NULL;
    size_t tag_len = 0, before, i;
    struct src_pos *sp = NULL;
    struct ls_output_core *core = b->out->core;

    /*
     * A record this output already holds (re-read after a restart) is dropped. The same
     * record arriving again within one input emit is another copy of it (copy, or outputs
     * that re-emit, such as rewrite_tag_filter, sending it here twice) and is kept.
     */
    if (rec->src) {
        sp = hwm_slot(b, rec->src, true);
        if ((rec->pos <= sp->pending || rec->pos <= sp->durable) &&
            !(rec->pos == sp->pending && sp->emit_seq == b->eng->emit_seq)) {
            return LS_OK;
        }
    }
    if (ls_buffer_over_limit(b)) {
        /* only the configured total_limit_size is "full"; the memory buffer's bound is flow
         * control, which makes inputs wait but never drops anything */
        bool hard = b->total_bytes + b->pending.len >= (uint64_t)b->c.total_limit_size;
        if (hard && b->c.overflow_action == OVERFLOW_DROP_OLDEST && b->queue_head) {
            drop_oldest(b);
        }
        if (ls_buffer_over_limit(b)) {
            if (!hard && b->nqueued == 0 && b->inflight == 0) {
                /* many small staged chunks (tags, slices) and nothing to drain: ship them
                 * now, or the inputs would wait forever */
                ls_buffer_enqueue_all(b);
            }
            if (!b->warned_full) {
                b->warned_full = true;
                if (hard) {
                    ls_plg_warn(b->out, "buffer is full (total_limit_size %lld bytes); %s",
                                (long long)b->c.total_limit_size,
                                b->c.overflow_action == OVERFLOW_BLOCK ? "pausing inputs"
                                                                       : "inputs will retry");
                } else if (!b->warned_soft) {
                    /* normal flow control: said once, not at every pause */
                    b->warned_soft = true;
                    ls_plg_info(b->out, "memory buffer is full (%llu bytes: the staged chunk and "
                                "%lld queued); inputs wait for the output",
                                (unsigned long long)effective_limit(b),
                                (long long)b->c.queued_chunks_limit_size);
                }
            }
            b->blocked = true;
            ls_engine_backpressure(b->eng, true);
            return LS_AGAIN;
        }
    }
    if (b->key_tag) {
        tag = rec->tag;
        tag_len = rec->tag_len;
    }
    if (b->key_time) {
        timekey = slice_of(b, rec->time.sec);
    }
    if (b->nrkeys) {
        keys.v = kvs;
        for (i = 0; i < b->nrkeys && i < LS_ARRAY_LEN(kvs); i++) {
            size_t n = 0;
            const char *t = "";
            if (b->racc[i].n) {
                struct ls_value v;
                if (ls_accessor_get(&b->racc[i], rec, &v)) {
                    t = ls_value_to_text(&b->arena, &v, &n);
                }
            } else {
                struct ls_field *f = ls_record_get(rec, b->rkeys[i], strlen(b->rkeys[i]));
                if (f) {
                    t = ls_value_to_text(&b->arena, &f->v, &n);
                }
            }
            kvs[i].key = b->rkeys[i];
            kvs[i].value = ls_arena_memdup(&b->arena, t, n);
        }
        keys.n = i;
    }
    c = b->last;
    if (c == NULL || c->state != CH_STAGED || !chunk_key_equal(c, tag, tag_len, timekey, &keys)) {
        for (c = b->staged; c; c = c->next) {
            if (chunk_key_equal(c, tag, tag_len, timekey, &keys)) {
                break;
            }
        }
    }
    if (c == NULL) {
        c = chunk_new(b, tag, tag_len, timekey, &keys);
        if (c == NULL) {
            ls_arena_reset(&b->arena);
            return LS_AGAIN;     /* cannot create a chunk file: the input retries later */
        }
    }
    ls_arena_reset(&b->arena);
    /* the pending frame holds one chunk's records: write it before switching */
    if (b->pchunk && b->pchunk != c) {
        if (frame_write(b) != LS_OK) {
            frame_discard(b);
            return LS_AGAIN;
        }
        if (rec->src) {
            sp = hwm_slot(b, rec->src, true);
        }
    }
    b->pchunk = c;
    before = b->pending.len;
    if (core->formatter) {
        if (ls_formatter_format(core->formatter, rec, &b->pending) != LS_OK) {
            b->pending.len = before;
            return LS_ERROR;
        }
    }
    b->precords++;
    if (sp) {
        unsigned k;
        sp->pending = rec->pos;
        sp->emit_seq = b->eng->emit_seq;
        for (k = 0; k < b->npsrc; k++) {
            if (b->psrc[k].src == rec->src) {
                break;
            }
        }
        if (k == b->npsrc) {
            if (b->npsrc == FRAME_MAX_SRC) {
                /* too many sources in one frame: write it and start another */
                b->pending.len = before;
                b->precords--;
                if (frame_write(b) != LS_OK) {
                    frame_discard(b);
                    return LS_AGAIN;
                }
                return ls_buffer_write(b, rec);
            }
            b->psrc[b->npsrc].src = rec->src;
            b->npsrc++;
        }
        b->psrc[k].pending = rec->pos;
    }
    b->last = c;
    /* full: write the frame and enqueue the chunk; the next record starts a new one */
    if ((double)(chunk_bytes(c) + b->pending.len) >=
            (double)b->c.chunk_limit_size * b->c.chunk_full_threshold ||
        (b->c.chunk_limit_records > 0 &&
         (int64_t)(c->info.records + b->precords) >= b->c.chunk_limit_records)) {
        if (frame_write(b) != LS_OK) {
            frame_discard(b);
            return LS_AGAIN;
        }
        enqueue(b, c);
    }
    return LS_OK;
}

/* ---------------------------------------------------------------- */
/* queue and flushing                                                */

/*
 * A staged chunk whose file was unlinked under us (rm -rf of the buffer
 * directory) holds its records only in the still-open file: the input has
 * advanced past them. Copy them to a new file at the same path, reading the
 * deleted file through /proc/self/fd (our descriptor is write-only).
 */
static void chunk_salvage(struct ls_buffer *b, struct ls_chunk *c)
{
    struct stat st;
    char proc[64], buf[65536];
    int in, out;
    ssize_t n = 0;

    if (c->fd < 0 || fstat(c->fd, &st) != 0 || st.st_nlink > 0) {
        return;
    }
    ls_plg_warn(b->out, "chunk file '%s' was deleted while open; writing its %llu records "
                "again", c->path, (unsigned long long)c->info.records);
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", c->fd);
    in = open(proc, O_RDONLY | O_CLOEXEC);
    (void)ls_mkdir_p(b->dir, (int)b->c.dir_permission);
    out = open(c->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (int)b->c.file_permission);
    if (in >= 0 && out >= 0) {
        while ((n = read(in, buf, sizeof(buf))) > 0) {
            if (write(out, buf, (size_t)n) != n) {
                n = -1;
                break;
            }
        }
    }
    if (in < 0 || out < 0 || n < 0) {
        ls_plg_error(b->out, "cannot rewrite deleted chunk '%s' (%d: %s): its %llu records are "
                     "lost", c->path, errno, strerror(errno), (unsigned long long)c->info.records);
    }
    if (in >= 0) {
        close(in);
    }
    if (out >= 0) {
        close(c->fd);
        c->fd = out;     /* fsynced and closed by enqueue */
    }
}

static void enqueue(struct ls_buffer *b, struct ls_chunk *c)
{
    struct ls_chunk **pp;

    if (c->state != CH_STAGED) {
        return;
    }
    if (b->pchunk == c) {
        if (frame_write(b) != LS_OK) {
            frame_discard(b);
        }
        b->pchunk = NULL;
    }
    for (pp = &b->staged; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    if (b->last == c) {
        b->last = NULL;
    }
    if (c->info.records == 0 && c->state_text == NULL) {
        /* nothing in it (e.g. every record was a duplicate): no empty object */
        chunk_purge(c);
        return;
    }
    if (b->type == BUF_FILE) {
        char *q = chunk_file_name(b, c->id, 'q');
        chunk_salvage(b, c);
        /* fsync before it can be uploaded and before the rename makes it "queued" */
        if (fsync(c->fd) != 0) {
            ls_plg_warn(b->out, "fsync() '%s' failed (%d: %s)", c->path, errno, strerror(errno));
        }
        close(c->fd);
        c->fd = -1;
        if (rename(c->path, q) != 0) {
            ls_plg_error(b->out, "rename() '%s' failed (%d: %s)", c->path, errno, strerror(errno));
            ls_free(q);
        } else {
            ls_free(c->path);
            c->path = q;
            (void)ls_fsync_dir_of(c->path);
        }
    }
    c->state = CH_QUEUED;
    c->next = NULL;
    if (b->queue_tail) {
        b->queue_tail->next = c;
    } else {
        b->queue_head = c;
    }
    b->queue_tail = c;
    b->nqueued++;
    b->out->metrics.chunks_queued = b->nqueued;
    ls_plg_debug(b->out, "enqueued chunk %s (%llu records, %llu bytes)", c->id,
                 (unsigned long long)c->info.records, (unsigned long long)c->info.bytes);
}

static void dispatch(struct ls_buffer *b, double now_mono);

void ls_buffer_enqueue_all(struct ls_buffer *b)
{
    while (b->staged) {
        enqueue(b, b->staged);
        /* each file chunk's enqueue waits for its fsync (tens of ms for 100 MB): the flush
         * threads start on the first chunks meanwhile instead of after the last (a backlog's
         * end, SIGUSR1, shutdown) */
        if (b->staged && b->type == BUF_FILE && b->eng && b->eng->threads) {
            dispatch(b, ls_mono_now());
        }
    }
}

static double backoff(struct ls_buffer *b)
{
    double w;

    if (b->c.retry_type == RETRY_PERIODIC) {
        w = b->c.retry_wait;
    } else {
        w = b->c.retry_wait * pow(b->c.retry_exponential_backoff_base, (double)(b->retries - 1));
    }
    if (b->c.retry_max_interval > 0 && w > b->c.retry_max_interval) {
        w = b->c.retry_max_interval;
    }
    if (b->c.retry_randomize) {
        /* +-12.5%, as fluentd's retry_state */
        w *= 0.875 + 0.25 * ((double)random() / (double)RAND_MAX);
    }
    return w;
}

static void queue_remove(struct ls_buffer *b, struct ls_chunk *c)
{
    struct ls_chunk **pp;

    for (pp = &b->queue_head; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            if (b->queue_tail == c) {
                struct ls_chunk *p = b->queue_head;
                b->queue_tail = NULL;
                while (p) {
                    b->queue_tail = p;
                    p = p->next;
                }
            }
            b->nqueued--;
            b->out->metrics.chunks_queued = b->nqueued;
            return;
        }
    }
}

/* keep a chunk that could not be delivered: backup/ in the buffer dir (never deleted) */
/* why: what the error line says made logship give the chunk up */
static void chunk_backup(struct ls_buffer *b, struct ls_chunk *c, const char *why)
{
    char *dir, *dst;
    const char *root;

    queue_remove(b, c);
    if (b->c.disable_chunk_backup) {
        ls_plg_error(b->out, "%s for chunk %s (%llu records); disable_chunk_backup is set: it is "
                     "dropped", why, c->id, (unsigned long long)c->info.records);
        b->out->metrics.dropped += c->info.records;
        chunk_purge(c);
        return;
    }
    if (b->type == BUF_FILE) {
        dir = ls_asprintf("%s/backup", b->dir);
    } else {
        root = b->eng && b->eng->sys.root_dir ? b->eng->sys.root_dir : "/tmp/logship";
        dir = ls_asprintf("%s/backup/%s", root, b->out->id);
    }
    (void)ls_mkdir_p(dir, 0750);
    dst = ls_asprintf("%s/%s.%s", dir, c->id, b->type == BUF_FILE ? "chunk" : "log");
    if (b->type == BUF_FILE) {
        if (rename(c->path, dst) != 0) {
            ls_plg_error(b->out, "rename() '%s' to '%s' failed (%d: %s); the chunk stays queued",
                         c->path, dst, errno, strerror(errno));
            ls_free(dst);
            ls_free(dir);
            b->failed = true;
            return;
        }
        ls_free(c->path);
        c->path = NULL;
    } else {
        if (ls_write_file_atomic(dst, c->mem.p ? c->mem.p : "", c->mem.len, 0640) != LS_OK) {
            ls_plg_error(b->out, "cannot write backup '%s' (%d: %s)", dst, errno, strerror(errno));
        }
    }
    ls_plg_error(b->out, "%s for chunk %s (%llu records); kept in '%s'", why, c->id,
                 (unsigned long long)c->info.records, dst);
    b->total_bytes -= chunk_bytes(c) <= b->total_bytes ? chunk_bytes(c) : b->total_bytes;
    if (b->type == BUF_FILE) {
        unlink_side_files(b, c->id);
    }
    chunk_free(c);
    ls_free(dst);
    ls_free(dir);
}

static void start_write(struct ls_buffer *b, struct ls_chunk *c, struct ls_instance *writer);

static bool retries_exhausted(struct ls_buffer *b)
{
    if (b->c.retry_forever) {
        return false;
    }
    if (b->c.retry_max_times >= 0 && b->retries > b->c.retry_max_times) {
        return true;
    }
    return ls_mono_now() - b->first_failure >= b->c.retry_timeout;
}

/*
 * The primary output gives a chunk up (secondary, backup/ or dropped): let it release what it
 * holds for the chunk elsewhere, e.g. out_s3's half-done multipart upload, whose parts the
 * store would otherwise keep (and bill) until a lifecycle rule removes them.
 */
static void chunk_abandon(struct ls_buffer *b, struct ls_chunk *c)
{
    if (b->out->plugin->abandon) {
        b->out->plugin->abandon(b->out, c);
    }
}

static void write_finished(struct ls_buffer *b, struct ls_chunk *c, int rc, const char *msg)
{
    struct ls_output_core *core = b->out->core;
    struct ls_instance *writer = c->writer;

    b->inflight--;
    if (c->sending) {
        c->sending = false;
        b->sending--;
    }
    c->writer = NULL;
    if (rc == LS_OK) {
        double took = ls_mono_now() - c->write_mono;

        b->out->metrics.chunks_flushed++;
        b->out->metrics.write_records += c->info.records;
        b->out->metrics.flush_time_ms += (uint64_t)(took * 1000.0);
        if (took > b->slow_flush) {
            b->out->metrics.slow_flushes++;
            ls_plg_warn(b->out, "buffer flush took longer time than slow_flush_log_threshold: "
                        "elapsed_time=%.3f slow_flush_log_threshold=%.1f chunk=%s", took,
                        b->slow_flush, c->id);
        }
        if (b->retries) {
            ls_plg_info(b->out, "retry succeeded after %d retries", b->retries);
        }
        b->retries = 0;
        b->next_try = 0;
        queue_remove(b, c);
        chunk_purge(c);
        if (b->blocked && !ls_buffer_over_limit(b)) {
            b->blocked = false;
            b->warned_full = false;
            ls_engine_backpressure(b->eng, false);
        }
        return;
    }
    c->state = CH_QUEUED;
    b->out->metrics.errors++;
    if (msg && msg != b->out->metrics.last_error) {
        /* start_write passes the writer's own last_error: copying it onto itself is UB */
        snprintf(b->out->metrics.last_error, sizeof(b->out->metrics.last_error), "%s", msg);
    }
    if (core->secondary && writer == core->secondary) {
        ls_plg_error(b->out, "secondary output failed for chunk %s: %s", c->id,
                     msg ? msg : "error");
        if (b->eng && b->eng->oneshot) {
            b->failed = true;
            return;
        }
        chunk_backup(b, c, "the secondary output failed");
        return;
    }
    if (rc == LS_DECLINED) {
        /* unrecoverable (fluentd's UnrecoverableError): retrying cannot help */
        if (core->secondary) {
            ls_plg_warn(b->out, "unrecoverable error for chunk %s (%s); handing it to the "
                        "secondary output", c->id, msg ? msg : "error");
            chunk_abandon(b, c);
            start_write(b, c, core->secondary);
            return;
        }
        if (b->eng && b->eng->oneshot) {
            b->failed = true;
        }
        chunk_abandon(b, c);
        {
            char *why = ls_asprintf("unrecoverable error (%s)", msg ? msg : "error");
            chunk_backup(b, c, why);
            ls_free(why);
        }
        return;
    }
    if (b->retries == 0) {
        b->first_failure = ls_mono_now();
    }
    b->retries++;
    b->out->metrics.retries++;
    if (retries_exhausted(b)) {
        if (core->secondary) {
            ls_plg_warn(b->out, "retries exhausted (%d); handing chunk %s to the secondary output",
                        b->retries, c->id);
            chunk_abandon(b, c);
            start_write(b, c, core->secondary);
            return;
        }
        if (b->eng && b->eng->oneshot) {
            /* cron run: keep it in the file buffer for the next run, exit non-zero */
            ls_plg_error(b->out, "retries exhausted (%d) for chunk %s: %s; it stays in the buffer",
                         b->retries, c->id, msg ? msg : "error");
            b->failed = true;
            c->failed = true;
            return;
        }
        chunk_abandon(b, c);
        chunk_backup(b, c, "retries exhausted");
        b->retries = 0;
        return;
    }
    {
        double w = backoff(b);
        b->next_try = ls_mono_now() + w;
        ls_plg_warn(b->out, "failed to flush chunk %s (retry %d in %.1fs): %s", c->id, b->retries,
                    w, msg ? msg : "error");
    }
}

void ls_output_write_done(struct ls_instance *out, struct ls_chunk *c, int rc, const char *errmsg)
{
    struct ls_buffer *b = c->b;
    LS_UNUSED(out);

    write_finished(b, c, rc, errmsg);
    /*
     * Start the next queued chunk now instead of at the next 0.2 s tick:
     * otherwise an asynchronous output writes at most 5 chunks per second
     * per flush thread, and many small chunks (many tags, short
     * flush_interval) pile up without bound. Not during the worker pool's
     * shutdown, when new work could no longer run.
     */
    if (b->eng && b->eng->threads) {
        ls_buffer_tick(b);
    }
}

/*
 * flush_thread_count bounds the chunks whose write is still working (compressing, in
 * out_s3's case); those only waiting on the network count apart, up to flush_thread_count
 * more. Otherwise a backlog's next chunk waits for the previous upload: with the default
 * single flush thread that left a core idle for every object's PUT.
 */
static bool may_start_write(const struct ls_buffer *b)
{
    return b->inflight - b->sending < b->c.flush_thread_count &&
           b->inflight < 2 * b->c.flush_thread_count;
}

void ls_output_write_sending(struct ls_instance *out, struct ls_chunk *c)
{
    struct ls_buffer *b = c->b;
    LS_UNUSED(out);

    if (c->sending || c->state != CH_WRITING) {
        return;
    }
    c->sending = true;
    b->sending++;
    if (b->eng && b->eng->threads) {
        ls_buffer_tick(b);
    }
}

static void start_write(struct ls_buffer *b, struct ls_chunk *c, struct ls_instance *writer)
{
    int rc;

    /* early compression goes on while the chunk waits in the queue (a backlog's last chunks
     * are all enqueued at once) and stops when its own compression starts */
    ls_gz_early_end(c->early);
    c->early = NULL;
    c->state = CH_WRITING;
    c->writer = writer;
    c->write_mono = ls_mono_now();
    b->inflight++;
    rc = writer->plugin->write(writer, c);
    if (rc == LS_AGAIN) {
        return;     /* the plugin calls ls_output_write_done later */
    }
    write_finished(b, c, rc, rc == LS_OK ? NULL : writer->metrics.last_error);
}

static bool enqueue_due(struct ls_buffer *b, struct ls_chunk *c, double now_mono, int64_t now)
{
    if (b->c.flush_mode == FLUSH_INTERVAL && c->created_mono + b->c.flush_interval <= now_mono) {
        return true;
    }
    if (b->key_time && c->timekey != LS_NO_TIMEKEY) {
        int64_t tk = (int64_t)b->c.timekey;
        int64_t current = slice_of(b, now);
        if (c->timekey < current && (double)(c->timekey + tk) + b->c.timekey_wait <= (double)now) {
            return true;
        }
        /* a slice later than the clock: the clock was set back (an NTP step, a restored VM), or
         * the records carry future times. Waiting for the wall clock could take hours; a slice
         * closes at the latest timekey + timekey_wait after its chunk was opened, by the
         * monotonic clock */
        if (c->timekey > current && c->created_mono + (double)tk + b->c.timekey_wait <= now_mono) {
            ls_plg_warn(b->out, "chunk %s is for the time slice from %lld, later than the clock "
                        "now (%lld): the clock went back or the records carry future times; "
                        "flushing it after timekey + timekey_wait", c->id,
                        (long long)c->timekey, (long long)now);
            return true;
        }
    }
    return false;
}

/* The deliveries no line has shown yet, as one line, once a second has passed since the last. */
static void progress_summary(struct ls_buffer *b, double now, bool force)
{
    if (b->prog_n == 0 || (!force && now - b->prog_last < 1.0)) {
        return;
    }
    ls_log_events_off = true;     /* see ls_output_delivered */
    ls_plg_info(b->out, "delivered %llu more chunk%s (%llu records, %llu bytes) in the last %.1fs",
                (unsigned long long)b->prog_n, b->prog_n == 1 ? "" : "s",
                (unsigned long long)b->prog_records, (unsigned long long)b->prog_bytes,
                now - b->prog_last);
    ls_log_events_off = false;
    b->prog_n = b->prog_records = b->prog_bytes = 0;
    b->prog_last = now;
}

void ls_buffer_progress_flush(struct ls_buffer *b)
{
    progress_summary(b, ls_mono_now(), true);
}

void ls_output_delivered(struct ls_instance *out, struct ls_chunk *c, const char *where,
                         uint64_t bytes)
{
    struct ls_buffer *b = c->b;
    double now = ls_mono_now();

    if (now - b->prog_last < 1.0) {
        b->prog_n++;
        b->prog_records += c->info.records;
        b->prog_bytes += bytes;
        return;
    }
    progress_summary(b, now, true);
    /* progress lines do not become fluent.* events: each would be a record to deliver */
    ls_log_events_off = true;
    ls_plg_info(out, "delivered %s (%llu records, %llu bytes, %.2fs)", where,
                (unsigned long long)c->info.records, (unsigned long long)bytes,
                now - c->write_mono);
    ls_log_events_off = false;
    b->prog_last = now;
}

/* Start writing queued chunks while the flush threads have room (and no backoff waits). */
static void dispatch(struct ls_buffer *b, double now_mono)
{
    struct ls_chunk *c, *next;

    if (b->next_try > now_mono) {
        return;
    }
    for (c = b->queue_head; c && may_start_write(b); c = next) {
        next = c->next;
        if (c->state != CH_QUEUED || c->failed) {
            continue;
        }
        start_write(b, c, b->out);
        if (b->next_try > now_mono) {
            break;   /* it failed: wait for the backoff */
        }
        /* start_write may have purged c; next was saved */
    }
}

void ls_buffer_tick(struct ls_buffer *b)
{
    double now_mono = ls_mono_now();
    int64_t now;
    int32_t ns;
    struct ls_chunk *c, *next;

    progress_summary(b, now_mono, false);
    ls_wall_now(&now, &ns);
    for (c = b->staged; c; c = next) {
        next = c->next;
        /* a chunk being sent does not hold back the next one (may_start_write) */
        if ((int64_t)b->nqueued - b->sending >= b->c.queued_chunks_limit_size &&
            b->c.flush_mode != FLUSH_IMMEDIATE) {
            break;
        }
        if (enqueue_due(b, c, now_mono, now)) {
            enqueue(b, c);
        }
    }
    dispatch(b, now_mono);
    b->out->metrics.buffer_bytes = b->total_bytes;
}

bool ls_buffer_idle(const struct ls_buffer *b)
{
    const struct ls_chunk *c;

    if (b->staged || b->inflight || b->pending.len) {
        return false;
    }
    for (c = b->queue_head; c; c = c->next) {
        if (!c->failed) {
            return false;
        }
    }
    return true;
}

bool ls_buffer_busy(const struct ls_buffer *b)
{
    return b->inflight > 0;
}

bool ls_buffer_failed(const struct ls_buffer *b)
{
    return b->failed;
}

/* ---------------------------------------------------------------- */
/* recovery                                                          */

/* Read a chunk file: header, then frames; cut a torn tail; learn positions. */
static struct ls_chunk *recover_file(struct ls_buffer *b, const char *path, char state)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    struct ls_chunk *c;
    unsigned char head[12];
    uint32_t hl;
    char *htext = NULL;
    struct stat st;
    uint64_t off;
    const char *base = strrchr(path, '/');

    if (fd < 0 || fstat(fd, &st) != 0) {
        ls_plg_error(b->out, "cannot open chunk '%s' (%d: %s)", path, errno, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return NULL;
    }
    if (st.st_size < 12 || read(fd, head, 12) != 12 || memcmp(head, CHUNK_MAGIC, 8) != 0) {
        ls_plg_warn(b->out, "chunk '%s' has no valid header (torn at creation); removing it", path);
        close(fd);
        unlink(path);
        return NULL;
    }
    memcpy(&hl, head + 8, 4);
    if (hl > 1 << 20 || (off_t)(12 + hl) > st.st_size) {
        ls_plg_warn(b->out, "chunk '%s' has a torn header; removing it", path);
        close(fd);
        unlink(path);
        return NULL;
    }
    c = ls_calloc(1, sizeof(*c));
    c->b = b;
    c->fd = -1;
    ls_buf_init(&c->mem, 0);
    c->timekey = LS_NO_TIMEKEY;
    snprintf(c->id, sizeof(c->id), "%.32s", base + 1 + strlen("logship.") + 1);
    htext = ls_malloc(hl + 1);
    if (read(fd, htext, hl) != (ssize_t)hl) {
        hl = 0;
    }
    htext[hl] = '\0';
    {
        char *line = htext, *nl;
        while (line && *line) {
            char *tab;
            nl = strchr(line, '\n');
            if (nl) {
                *nl = '\0';
            }
            tab = strchr(line, '\t');
            if (tab) {
                *tab = '\0';
                if (strcmp(line, "tag") == 0) {
                    /* a damaged header may repeat a line: the last one wins */
                    ls_free(c->tag);
                    c->tag = unescape(tab + 1, strlen(tab + 1));
                } else if (strcmp(line, "timekey") == 0 && b->key_time) {
                    /* without time among the chunk keys the value is the old -1 or
                       LS_NO_TIMEKEY: either way, none */
                    c->timekey = strtoll(tab + 1, NULL, 10);
                } else if (strcmp(line, "created") == 0) {
                    c->info.created = strtoll(tab + 1, NULL, 10);
                } else if (strcmp(line, "key") == 0) {
                    char *t2 = strchr(tab + 1, '\t');
                    if (t2) {
                        *t2 = '\0';
                        c->keys.v = ls_realloc(c->keys.v, (c->keys.n + 1) * sizeof(struct ls_kv));
                        c->keys.v[c->keys.n].key = unescape(tab + 1, strlen(tab + 1));
                        c->keys.v[c->keys.n].value = unescape(t2 + 1, strlen(t2 + 1));
                        c->keys.n++;
                    }
                }
            }
            line = nl ? nl + 1 : NULL;
        }
    }
    ls_free(htext);
    off = 12 + hl;
    for (;;) {
        unsigned char fh[FRAME_HDR];
        uint32_t magic, plen, nrec, crc, calc;
        uint16_t nsrc;
        unsigned char *body;
        size_t blen;
        unsigned i;

        if ((off_t)(off + FRAME_HDR) > st.st_size) {
            break;
        }
        if (pread(fd, fh, FRAME_HDR, (off_t)off) != FRAME_HDR) {
            break;
        }
        memcpy(&magic, fh, 4);
        memcpy(&plen, fh + 4, 4);
        memcpy(&nrec, fh + 8, 4);
        memcpy(&nsrc, fh + 12, 2);
        memcpy(&crc, fh + 16, 4);
        if (magic != FRAME_MAGIC || nsrc > FRAME_MAX_SRC) {
            break;
        }
        blen = (size_t)nsrc * 16 + plen;
        if ((off_t)(off + FRAME_HDR + blen) > st.st_size) {
            break;
        }
        body = ls_malloc(blen ? blen : 1);
        if (pread(fd, body, blen, (off_t)(off + FRAME_HDR)) != (ssize_t)blen) {
            ls_free(body);
            break;
        }
        calc = ls_crc32(0, body, blen);
        if (calc != crc) {
            ls_free(body);
            break;
        }
        for (i = 0; i < nsrc; i++) {
            uint64_t src, pos;
            struct src_pos *s;
            memcpy(&src, body + i * 16, 8);
            memcpy(&pos, body + i * 16 + 8, 8);
            s = hwm_slot(b, src, true);
            if (pos > s->durable) {
                s->durable = pos;
                s->pending = pos;
            }
        }
        ls_free(body);
        c->info.records += nrec;
        c->info.bytes += plen;
        off += FRAME_HDR + blen;
    }
    if ((off_t)off < st.st_size) {
        ls_plg_warn(b->out, "chunk '%s': cutting a torn tail at byte %llu of %lld", path,
                    (unsigned long long)off, (long long)st.st_size);
        if (ftruncate(fd, (off_t)off) != 0) {
            ls_plg_error(b->out, "ftruncate() '%s' failed (%d: %s)", path, errno, strerror(errno));
        }
    }
    close(fd);
    c->file_size = off;
    c->path = ls_strdup(path);
    c->created_mono = ls_mono_now();
    {
        char *sp = ls_asprintf("%s/logship.%s.state", b->dir, c->id);
        char *text = NULL;
        if (ls_read_file(sp, 1 << 20, &text, NULL) == LS_OK) {
            c->state_text = text;
            c->state_on_disk = true;
        }
        ls_free(sp);
    }
    chunk_fill_info(c);
    LS_UNUSED(state);
    return c;
}

/* "<dir>/logship.<b|q><id>.chunk": the id, past the state letter */
static const char *chunk_path_id(const char *path)
{
    const char *base = strrchr(path, '/');

    return (base ? base + 1 : path) + strlen("logship.") + 1;
}

/*
 * Oldest first by id alone: sorting whole names put every staged ('b') chunk
 * before every queued ('q') one, so a newer chunk could be written before an
 * older one after a crash.
 */
static int cmp_chunk_id(const void *a, const void *b)
{
    return strcmp(chunk_path_id(*(char *const *)a), chunk_path_id(*(char *const *)b));
}

int ls_buffer_start(struct ls_buffer *b)
{
    char *pat;
    glob_t g;
    size_t i, recovered = 0;

    if (b->type != BUF_FILE) {
        return LS_OK;
    }
    if (ls_mkdir_p(b->dir, (int)b->c.dir_permission) != LS_OK) {
        return ls_error("%s cannot create buffer directory '%s' (%d: %s)", b->out->name, b->dir,
                        errno, strerror(errno));
    }
    {
        char *lp = ls_asprintf("%s/.lock", b->dir);
        b->lock_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
        if (b->lock_fd < 0 || flock(b->lock_fd, LOCK_EX | LOCK_NB) != 0) {
            int saved = errno;
            ls_free(lp);
            return ls_error("%s buffer directory '%s' is used by another process (%d: %s)",
                            b->out->name, b->dir, saved, strerror(saved));
        }
        ls_free(lp);
    }
    pat = ls_asprintf("%s/logship.[bq]*.chunk", b->dir);
    if (glob(pat, 0, NULL, &g) == 0) {
        /* ids are time-ordered hex: sorting by id replays chunks oldest first */
        char **names = ls_calloc(g.gl_pathc, sizeof(char *));
        for (i = 0; i < g.gl_pathc; i++) {
            names[i] = g.gl_pathv[i];
        }
        qsort(names, g.gl_pathc, sizeof(char *), cmp_chunk_id);
        for (i = 0; i < g.gl_pathc; i++) {
            const char *base = strrchr(names[i], '/') + 1;
            char st = base[strlen("logship.")];
            struct ls_chunk *c = recover_file(b, names[i], st);
            if (c == NULL) {
                continue;
            }
            recovered++;
            b->total_bytes += c->file_size;
            if (c->info.records == 0 && c->state_text == NULL) {
                chunk_purge(c);
                recovered--;
                continue;
            }
            if (st == 'b') {
                /* a staged chunk from before the crash: enqueue it as it is */
                char *q = chunk_file_name(b, c->id, 'q');
                if (rename(c->path, q) == 0) {
                    ls_free(c->path);
                    c->path = q;
                } else {
                    ls_free(q);
                }
            }
            c->state = CH_QUEUED;
            if (b->queue_tail) {
                b->queue_tail->next = c;
            } else {
                b->queue_head = c;
            }
            b->queue_tail = c;
            b->nqueued++;
        }
        ls_free(names);
        globfree(&g);
    }
    ls_free(pat);
    if (recovered) {
        ls_plg_info(b->out, "recovered %zu chunks from '%s'", recovered, b->dir);
    }
    {
        /* td-agent's own buffer files are not ours to read: say so once */
        char *fp = ls_asprintf("%s/buffer.[bq]*.log", b->dir);
        if (glob(fp, 0, NULL, &g) == 0) {
            ls_plg_warn(b->out, "'%s' holds %zu fluentd buffer files; logship does not read them "
                        "(flush td-agent's buffer before switching)", b->dir, g.gl_pathc);
            globfree(&g);
        }
        ls_free(fp);
    }
    b->out->metrics.chunks_queued = b->nqueued;
    reserve_take(b);
    return LS_OK;
}

void ls_buffer_destroy(struct ls_buffer *b)
{
    struct ls_chunk *c, *next;

    if (b == NULL) {
        return;
    }
    progress_summary(b, ls_mono_now(), true);
    if (b->pending.len) {
        (void)frame_write(b);
    }
    for (c = b->staged; c; c = next) {
        next = c->next;
        if (c->fd >= 0) {
            (void)fsync(c->fd);
        }
        chunk_free(c);
    }
    for (c = b->queue_head; c; c = next) {
        next = c->next;
        chunk_free(c);
    }
    if (b->lock_fd >= 0) {
        close(b->lock_fd);
    }
    ls_param_release(ls_buffer_params, &b->c);
    pthread_mutex_destroy(&b->reserve_lock);
    for (size_t i = 0; i < b->nrkeys; i++) {
        ls_accessor_release(&b->racc[i]);
        ls_free(b->rkeys[i]);
    }
    ls_free(b->rkeys);
    ls_free(b->racc);
    ls_free(b->dir);
    ls_free(b->zone);
    ls_free(b->hwm);
    ls_buf_release(&b->pending);
    ls_arena_release(&b->arena);
    ls_free(b);
}

struct ls_chunk *ls_buffer_queue_head(struct ls_buffer *b)
{
    return b->queue_head;
}

/* ---------------------------------------------------------------- */
/* chunk API for outputs                                             */

const struct ls_chunk_info *ls_chunk_info(const struct ls_chunk *c)
{
    return &c->info;
}

struct ls_chunk_reader {
    struct ls_chunk *c;
    int fd;
    uint64_t off;           /* file offset of the next frame header */
    uint32_t left;          /* payload bytes left in the current frame */
    size_t mem_off;
};

struct ls_chunk_reader *ls_chunk_reader_open(struct ls_chunk *c)
{
    struct ls_chunk_reader *r = ls_calloc(1, sizeof(*r));
    unsigned char head[12];
    uint32_t hl;

    r->c = c;
    r->fd = -1;
    if (c->b->type == BUF_FILE) {
        r->fd = open(c->path, O_RDONLY | O_CLOEXEC);
        if (r->fd < 0 || pread(r->fd, head, 12, 0) != 12) {
            if (r->fd >= 0) {
                close(r->fd);
            }
            ls_free(r);
            return NULL;
        }
        memcpy(&hl, head + 8, 4);
        r->off = 12 + hl;
    }
    return r;
}

long ls_chunk_reader_read(struct ls_chunk_reader *r, void *buf, size_t n)
{
    struct ls_chunk *c = r->c;

    if (c->b->type == BUF_MEMORY) {
        size_t left = c->mem.len - r->mem_off;
        if (n > left) {
            n = left;
        }
        if (n && buf) {
            memcpy(buf, c->mem.p + r->mem_off, n);
        }
        r->mem_off += n;
        return (long)n;
    }
    return frames_read(r->fd, &r->off, &r->left, c->file_size, buf, n);
}

void ls_chunk_reader_close(struct ls_chunk_reader *r)
{
    if (r == NULL) {
        return;
    }
    if (r->fd >= 0) {
        close(r->fd);
    }
    ls_free(r);
}

void ls_output_each_chunk(struct ls_instance *out, void (*cb)(struct ls_chunk *c, void *arg),
                          void *arg)
{
    struct ls_output_core *core = out->core;
    struct ls_chunk *c, *next;

    if (core && core->primary) {
        core = core->primary->core;
    }
    if (core == NULL || core->buffer == NULL) {
        return;
    }
    for (c = core->buffer->queue_head; c; c = next) {
        next = c->next;
        cb(c, arg);
    }
    for (c = core->buffer->staged; c; c = next) {
        next = c->next;
        cb(c, arg);
    }
}

const char *ls_chunk_state(const struct ls_chunk *c)
{
    return c->state_text;
}

int ls_chunk_set_state(struct ls_chunk *c, const char *text)
{
    struct ls_buffer *b = c->b;
    char *sp;
    int rc = LS_OK;

    if (b->type == BUF_FILE && text && c->state_on_disk && c->state_text &&
        strcmp(text, c->state_text) == 0) {
        return LS_OK;     /* a retry saving what is saved: no write, so none can fail */
    }
    ls_free(c->state_text);
    c->state_text = text ? ls_strdup(text) : NULL;
    c->state_on_disk = false;
    if (b->type != BUF_FILE) {
        return LS_OK;
    }
    sp = ls_asprintf("%s/logship.%s.state", b->dir, c->id);
    if (text) {
        rc = ls_write_file_atomic(sp, text, strlen(text), 0640);
        if (rc != LS_OK && (errno == ENOSPC || errno == EDQUOT) && reserve_give_up(b)) {
            ls_plg_warn(b->out, "buffer file system is full: gave up the %d KiB reserve in '%s' "
                        "to save chunk %s's state", RESERVE_BYTES / 1024, b->dir, c->id);
            rc = ls_write_file_atomic(sp, text, strlen(text), 0640);
        }
        c->state_on_disk = rc == LS_OK;
    } else {
        unlink(sp);
    }
    ls_free(sp);
    return rc;
}

char *ls_chunk_side_path(const struct ls_chunk *c, const char *suffix)
{
    struct ls_buffer *b = c->b;

    if (b->type == BUF_FILE) {
        return ls_asprintf("%s/logship.%s.%s", b->dir, c->id, suffix);
    }
    if (b->dir == NULL) {
        const char *tmp = getenv("TMPDIR");
        b->dir = ls_asprintf("%s/logship-%d", tmp ? tmp : "/tmp", (int)getpid());
        (void)ls_mkdir_p(b->dir, 0700);
    }
    return ls_asprintf("%s/logship.%s.%s", b->dir, c->id, suffix);
}

static long chunk_read_cb(void *arg, void *buf, size_t n)
{
    return ls_chunk_reader_read(arg, buf, n);
}

/* The formatter of the output that filled c, when it makes whole files (parquet). */
static struct ls_instance *whole_file_formatter(const struct ls_chunk *c)
{
    const struct ls_output_core *core = c->b->out ? c->b->out->core : NULL;

    if (core && core->formatter && core->formatter->plugin->finish) {
        return core->formatter;
    }
    return NULL;
}

bool ls_chunk_whole_file(const struct ls_chunk *c)
{
    return whole_file_formatter(c) != NULL;
}

int ls_chunk_write_fd(struct ls_chunk *c, int algo, int fd, uint64_t *written, char *err,
                      size_t errlen)
{
    struct ls_instance *whole = whole_file_formatter(c);
    struct ls_chunk_reader *r;
    struct stat st;
    off_t before, after;
    char cerr[200] = "";
    int rc;

    /* the file's growth gives the size: digests of every byte would cost a fifth of the
     * CPU of writing a text chunk just for a metric */
    before = fstat(fd, &st) == 0 ? st.st_size : 0;
    if (whole && (algo != LS_COMPRESS_TEXT || before > 0)) {
        snprintf(err, errlen, "a %s file can be neither compressed again nor appended to: "
                 "use the formatter's compression, and append false", whole->plugin->file_ext);
        return LS_ERROR;
    }
    r = ls_chunk_reader_open(c);
    if (r == NULL) {
        snprintf(err, errlen, "cannot read chunk %s (%d: %s)", c->id, errno, strerror(errno));
        return LS_ERROR;
    }
    if (whole) {
        rc = whole->plugin->finish(whole, chunk_read_cb, r, fd, cerr, sizeof(cerr));
    } else {
        bool trusted = false;
        int efd = algo == LS_COMPRESS_GZIP ? ls_chunk_early_open(c, &trusted) : -1;
        rc = ls_compress_stream_expect((enum ls_compress_algo)algo, -1, c->info.bytes, efd,
                                       trusted, chunk_read_cb, r, fd, NULL, cerr, sizeof(cerr));
        if (efd >= 0) {
            close(efd);
        }
    }
    ls_chunk_reader_close(r);
    if (rc != LS_OK) {
        snprintf(err, errlen, "writing chunk %s failed: %s", c->id,
                 cerr[0] ? cerr : strerror(errno));
        return LS_ERROR;
    }
    if (fsync(fd) != 0) {
        snprintf(err, errlen, "fsync() failed (%d: %s)", errno, strerror(errno));
        return LS_ERROR;
    }
    after = fstat(fd, &st) == 0 ? st.st_size : before;
    if (written) {
        *written = after > before ? (uint64_t)(after - before) : 0;
    }
    return LS_OK;
}

int ls_chunk_write_file(struct ls_chunk *c, int algo, const char *path, uint64_t *written,
                        char *err, size_t errlen)
{
    const char *slash = strrchr(path, '/');
    char *tmp = slash ? ls_asprintf("%.*s/.%s.%s.tmp", (int)(slash - path), path, slash + 1, c->id)
                      : ls_asprintf(".%s.%s.tmp", path, c->id);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    if (fd < 0) {
        snprintf(err, errlen, "open() '%s' failed (%d: %s)", tmp, errno, strerror(errno));
        ls_free(tmp);
        return LS_ERROR;
    }
    if (ls_chunk_write_fd(c, algo, fd, written, err, errlen) != LS_OK) {
        close(fd);
        unlink(tmp);
        ls_free(tmp);
        return LS_ERROR;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "rename() '%s' failed (%d: %s)", tmp, errno, strerror(errno));
        unlink(tmp);
        ls_free(tmp);
        return LS_ERROR;
    }
    ls_free(tmp);
    (void)ls_fsync_dir_of(path);
    return LS_OK;
}

static char *part_path(const struct ls_chunk *c, const char *dir_of)
{
    const char *slash = strrchr(dir_of, '/');

    return ls_asprintf("%.*s.logship-%s.part", slash ? (int)(slash - dir_of + 1) : 0, dir_of,
                       c->id);
}

/* The other name of part (by inode, in its directory), or NULL. */
static char *linked_name(const char *part, const struct stat *pst)
{
    char *copy = ls_strdup(part);
    char *slash = strrchr(copy, '/');
    const char *self = slash ? slash + 1 : copy;
    DIR *dh;
    struct dirent *de;
    char *found = NULL;

    if (slash) {
        *slash = '\0';
    }
    dh = opendir(slash ? (copy[0] ? copy : "/") : ".");
    while (dh && found == NULL && (de = readdir(dh)) != NULL) {
        struct stat st;
        if (strcmp(de->d_name, self) == 0 ||
            fstatat(dirfd(dh), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            continue;
        }
        if (st.st_ino == pst->st_ino && st.st_dev == pst->st_dev) {
            found = slash ? ls_asprintf("%s/%s", copy, de->d_name) : ls_strdup(de->d_name);
        }
    }
    if (dh) {
        closedir(dh);
    }
    ls_free(copy);
    return found;
}

int ls_chunk_publish_file(struct ls_chunk *c, int algo, const char *dir_of,
                          char *(*name_at)(void *arg, unsigned i), void *name_arg,
                          int (*record)(void *arg, const char *name), void *record_arg,
                          char **final, uint64_t *written, char *err, size_t errlen)
{
    char *part = part_path(c, dir_of);
    struct stat st;
    int fd = open(part, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    int rc = LS_ERROR;
    bool linked = false;        /* keep the part until the name is recorded */
    unsigned i;

    *final = NULL;
    *written = 0;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "open() '%s' failed (%d: %s)", part, errno, strerror(errno));
        goto out;
    }
    if (st.st_nlink > 1) {
        /* linked before a crash that came before the record: that is its name */
        linked = true;
        *final = linked_name(part, &st);
        ls_info("chunk %s was written to '%s' before the process stopped; not writing it "
                "again", c->id, *final ? *final : "a name no longer in its directory");
        rc = record(record_arg, *final);
        goto out;
    }
    if (ftruncate(fd, 0) != 0) {
        snprintf(err, errlen, "ftruncate() '%s' failed (%d: %s)", part, errno, strerror(errno));
        goto out;
    }
    if (ls_chunk_write_fd(c, algo, fd, written, err, errlen) != LS_OK) {
        goto out;
    }
    for (i = 0; *final == NULL; i++) {
        char *name = name_at(name_arg, i);
        int e;
        if (name && link(part, name) == 0) {
            *final = name;
            linked = true;
            break;
        }
        if (name == NULL || i > 1000000) {
            snprintf(err, errlen, "no free name for chunk %s in the directory of '%s'", c->id,
                     dir_of);
            ls_free(name);
            goto out;
        }
        e = errno;
        if (e != EEXIST) {
            snprintf(err, errlen, "link() '%s' to '%s' failed (%d: %s)%s", part, name, e,
                     strerror(e), e == EPERM || e == ENOTSUP ?
                     "; this output needs a file system with hard links" : "");
            ls_free(name);
            goto out;
        }
        ls_free(name);
    }
    /* the name must be durable before the state says the chunk is in it */
    (void)ls_fsync_dir_of(*final);
    rc = record(record_arg, *final);
out:
    if (fd >= 0) {
        close(fd);
    }
    if (rc == LS_OK || !linked) {
        unlink(part);
    }
    ls_free(part);
    return rc;
}

void ls_chunk_publish_done(struct ls_chunk *c, const char *dir_of)
{
    char *part = part_path(c, dir_of);

    unlink(part);
    ls_free(part);
}

const char *ls_timekey_format(double timekey)
{
    if (timekey < 60) {
        return "%Y%m%d%H%M%S";
    }
    if (timekey < 3600) {
        return "%Y%m%d%H%M";
    }
    if (timekey < 86400) {
        return "%Y%m%d%H";
    }
    return "%Y%m%d";
}

int ls_output_concurrency(const struct ls_instance *out)
{
    const struct ls_output_core *core = out->core;

    return core && core->buffer ? (int)core->buffer->c.flush_thread_count : 1;
}

/* ${tag}, ${tag[N]}, ${key}, ${chunk_id} and strftime on the chunk's timekey */
char *ls_chunk_expand_str(const struct ls_chunk *c, const char *tmpl)
{
    struct ls_buf o;
    char *r = NULL;

    ls_buf_init(&o, 0);
    if (ls_chunk_expand(c, tmpl, &o) == LS_OK && o.len > 0) {
        r = ls_strndup(o.p, o.len);
    }
    ls_buf_release(&o);
    return r;
}

int ls_chunk_expand(const struct ls_chunk *c, const char *tmpl, struct ls_buf *out)
{
    struct ls_buffer *b = c->b;
    struct ls_buf tmp;
    const char *s = tmpl;

    ls_buf_init(&tmp, 0);
    while (*s) {
        if (s[0] == '$' && s[1] == '{') {
            const char *end = strchr(s + 2, '}');
            if (end) {
                size_t n = (size_t)(end - s - 2);
                const char *name = s + 2;
                size_t i;
                bool done = false;
                if (n == 3 && memcmp(name, "tag", 3) == 0) {
                    ls_buf_append(&tmp, c->info.tag, strlen(c->info.tag));
                    done = true;
                } else if (n == 8 && memcmp(name, "chunk_id", 8) == 0) {
                    ls_buf_append(&tmp, c->id, 32);
                    done = true;
                } else if (n > 5 && memcmp(name, "tag[", 4) == 0 && name[n - 1] == ']') {
                    long idx = strtol(name + 4, NULL, 10);
                    const char *t = c->info.tag, *p = t;
                    long parts = 1, k = 0;
                    for (; *p; p++) {
                        parts += *p == '.';
                    }
                    if (idx < 0) {
                        idx += parts;
                    }
                    for (p = t; idx >= 0 && idx < parts; k++) {
                        const char *dot = strchr(p, '.');
                        size_t len = dot ? (size_t)(dot - p) : strlen(p);
                        if (k == idx) {
                            ls_buf_append(&tmp, p, len);
                            break;
                        }
                        if (!dot) {
                            break;
                        }
                        p = dot + 1;
                    }
                    done = true;
                } else {
                    for (i = 0; i < c->keys.n; i++) {
                        /* ${$.a} or, as logship always took it, ${a} for a chunk key $.a */
                        const char *k = c->keys.v[i].key;
                        size_t kl = strlen(k);
                        bool same = kl == n && memcmp(k, name, n) == 0;
                        if (!same && kl == n + 2 && k[0] == '$' && k[1] == '.') {
                            same = memcmp(k + 2, name, n) == 0;
                        }
                        if (same) {
                            ls_buf_append(&tmp, c->keys.v[i].value, strlen(c->keys.v[i].value));
                            done = true;
                            break;
                        }
                    }
                }
                if (done) {
                    s = end + 1;
                    continue;
                }
            }
        }
        ls_buf_putc(&tmp, *s++);
    }
    if (c->timekey != LS_NO_TIMEKEY && strchr(tmp.p ? ls_buf_cstr(&tmp) : "", '%')) {
        char errbuf[128];
        struct ls_timefmt *tf = ls_timefmt_create(ls_buf_cstr(&tmp), b->zone, errbuf,
                                                  sizeof(errbuf));
        struct ls_time t = { c->timekey, 0 };
        int rc = LS_ERROR;
        if (tf) {
            rc = ls_timefmt_format(tf, &t, out);
            ls_timefmt_destroy(tf);
        }
        ls_buf_release(&tmp);
        return rc;
    }
    if (tmp.len) {
        ls_buf_append(out, tmp.p, tmp.len);
    }
    ls_buf_release(&tmp);
    return LS_OK;
}

/* Monitoring snapshot; monotonic retry times are converted to wall clock. */
bool ls_buffer_unsent(const struct ls_buffer *b, uint64_t *records, size_t *chunks)
{
    const struct ls_chunk *c;
    const struct ls_chunk *lists[2] = { b->staged, b->queue_head };

    *records = 0;
    *chunks = 0;
    if (b->type == BUF_FILE) {
        return false;       /* its chunks wait on disk for the next start */
    }
    for (int i = 0; i < 2; i++) {
        for (c = lists[i]; c; c = c->next) {
            if (c->info.records > 0) {
                *records += c->info.records;
                (*chunks)++;
            }
        }
    }
    return *chunks > 0;
}

void ls_buffer_get_stats(const struct ls_buffer *b, struct ls_buffer_stats *st)
{
    const struct ls_chunk *c;
    double mono = ls_mono_now(), wall;
    int64_t sec;
    int32_t nsec;
    size_t i;

    memset(st, 0, sizeof(*st));
    ls_wall_now(&sec, &nsec);
    wall = (double)sec + (double)nsec / 1e9;
    for (c = b->staged; c; c = c->next) {
        if (c->info.created > 0 && wall - (double)c->info.created > st->oldest_age) {
            st->oldest_age = wall - (double)c->info.created;
        }
        st->stage_length++;
        st->stage_bytes += chunk_bytes(c);
        if (c->timekey != LS_NO_TIMEKEY && st->ntimekeys < LS_BUFFER_STATS_TIMEKEYS) {
            for (i = 0; i < st->ntimekeys && st->timekeys[i] != c->timekey; i++) {
            }
            if (i == st->ntimekeys) {
                st->timekeys[st->ntimekeys++] = c->timekey;
            }
        }
    }
    for (c = b->queue_head; c; c = c->next) {
        if (c->info.created > 0 && wall - (double)c->info.created > st->oldest_age) {
            st->oldest_age = wall - (double)c->info.created;
        }
        st->queue_length++;
        st->queue_bytes += chunk_bytes(c);
    }
    st->total_bytes = b->total_bytes;
    st->total_limit = b->c.total_limit_size > 0 ? (uint64_t)b->c.total_limit_size : 0;
    st->inflight = b->inflight;
    st->retry_steps = b->retries;
    if (b->retries > 0) {
        st->retry_start = wall - (mono - b->first_failure);
        st->retry_next = b->next_try > 0 ? wall + (b->next_try - mono) : 0;
    }
}
