/*
 * buffer.h - the chunk buffer behind every buffered output (core-internal).
 *
 * fluentd v1's <buffer> (and the v0.12 flat names mapped onto it): records
 * are formatted straight into the staged chunk of their key (tag, time
 * slice, record keys); chunks are enqueued when full, when their time slice
 * closes (+ timekey_wait), on flush_interval, on USR1 / shutdown / end of a
 * --oneshot run; queued chunks are written by the output with retries and
 * exponential backoff; after the retry limit they go to <secondary>.
 *
 * With @type file, a chunk is a file of CRC-checked frames; each frame
 * records the source positions (src, pos) of the records it holds, so after
 * kill -9 the buffer knows exactly which records it already has and drops
 * the ones the input reads again (see docs/internals/BUFFER.md).
 */
#ifndef LS_BUFFER_H
#define LS_BUFFER_H

#include "plugin.h"

struct ls_buffer;
struct ls_engine;

struct ls_buffer *ls_buffer_create(struct ls_instance *out, struct ls_conf_section *bufsec,
                                   struct ls_conf_section *outsec, char *err, size_t errlen);
/* Recover chunks left on disk (file buffer). */
int ls_buffer_start(struct ls_buffer *b);
/*
 * Format rec into its chunk. LS_OK (taken, or dropped as a duplicate),
 * LS_AGAIN (full, overflow_action block: not taken), LS_ERROR (full with
 * throw_exception, or a formatting error).
 */
int ls_buffer_write(struct ls_buffer *b, const struct ls_record *rec);
/* Make pending frames durable (file) / visible. LS_OK / LS_ERROR. */
int ls_buffer_commit(struct ls_buffer *b);
/* Housekeeping: enqueue due chunks, start writes, retries. Called every tick and on events. */
void ls_buffer_tick(struct ls_buffer *b);
/* Enqueue every staged chunk now (USR1, shutdown, oneshot). */
void ls_buffer_enqueue_all(struct ls_buffer *b);
/* Nothing staged, queued or in flight. */
bool ls_buffer_idle(const struct ls_buffer *b);
/* A write is in flight (the output has not called back yet). */
bool ls_buffer_busy(const struct ls_buffer *b);
/* Some chunk hit its retry limit and could not be handed to a secondary. */
bool ls_buffer_failed(const struct ls_buffer *b);
bool ls_buffer_flush_at_shutdown(const struct ls_buffer *b);
bool ls_buffer_over_limit(const struct ls_buffer *b);
/* The progress line for deliveries not shown yet (ls_output_delivered), now. */
void ls_buffer_progress_flush(struct ls_buffer *b);
/* A file buffer's directory, or NULL for a memory buffer (--dry-run checks it). */
const char *ls_buffer_dir(const struct ls_buffer *b);
/* Highest position of src durably held (known=false if never seen). */
uint64_t ls_buffer_durable_pos(const struct ls_buffer *b, uint64_t src, bool *known);
void ls_buffer_destroy(struct ls_buffer *b);
/* Test hook (tests/fuzz/fuzz_chunk.c): the oldest queued chunk, or NULL. */
struct ls_chunk *ls_buffer_queue_head(struct ls_buffer *b);
/* Parameter table of <buffer> (for --describe and docs). */
extern const struct ls_param ls_buffer_params[];

/* A snapshot of a buffer's state for monitoring (monitor_agent, /metrics). */
#define LS_BUFFER_STATS_TIMEKEYS 32
struct ls_buffer_stats {
    size_t stage_length;        /* staged (open) chunks */
    uint64_t stage_bytes;
    size_t queue_length;        /* sealed chunks waiting or being written */
    uint64_t queue_bytes;
    uint64_t total_bytes;       /* staged + queued, as counted against total_limit_size */
    uint64_t total_limit;       /* total_limit_size */
    int inflight;               /* writes in progress */
    int retry_steps;            /* failed flushes in the current retry episode (0: not retrying) */
    double retry_start;         /* wall clock (epoch sec) of the episode's first failure, or 0 */
    double retry_next;          /* wall clock of the next attempt, or 0 */
    double oldest_age;          /* seconds since the oldest undelivered chunk was made, or 0 */
    int64_t timekeys[LS_BUFFER_STATS_TIMEKEYS];   /* staged chunks' timekeys (first ones) */
    size_t ntimekeys;
};
void ls_buffer_get_stats(const struct ls_buffer *b, struct ls_buffer_stats *st);
/* A memory buffer's records and chunks not yet delivered (what a stop now loses); false
 * when there are none, and always for a file buffer, whose chunks outlive the process. */
bool ls_buffer_unsent(const struct ls_buffer *b, uint64_t *records, size_t *chunks);

#endif
