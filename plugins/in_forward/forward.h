/*
 * forward.h - in_forward internals: the Forward Protocol v1 decoder (fwd_proto.c), the
 * handshake digests, and the memory of acknowledged chunk ids (fwd_ids.c). The decoder
 * does no I/O, so the fuzz target and the unit tests drive it directly.
 */
#ifndef LS_IN_FORWARD_H
#define LS_IN_FORWARD_H

#include "plugin.h"
#include "msgpack.h"

enum fwd_mode {
    FWD_MESSAGE = 1,        /* [tag, time, record, option?] */
    FWD_FORWARD,            /* [tag, [[time, record], ...], option?] */
    FWD_PACKED,             /* [tag, bin/str of concatenated entries, option?] (maybe gzip) */
};

/* One request (a top-level array of the stream), decoded in place: pointers into the
 * msgpack object it came from, or into the inflate buffer for CompressedPackedForward. */
struct fwd_req {
    enum fwd_mode mode;
    const char *tag;
    size_t tag_len;
    const msgpack_object *time, *record;     /* FWD_MESSAGE */
    const msgpack_object *entries;           /* FWD_FORWARD: the array */
    const char *packed;                      /* FWD_PACKED: entries' bytes (inflated) */
    size_t packed_len;
    const msgpack_object *option;            /* map or NULL */
    const char *chunk;                       /* option "chunk" (ack wanted), or NULL */
    size_t chunk_len;
};

/*
 * Decode request o. inflated: where gzip entries are inflated to (its max caps the
 * inflated size). LS_OK; LS_DECLINED for nil (a no-op heartbeat); LS_ERROR with a reason in
 * err (not an array, no tag, bad entries type, unsupported or broken compression).
 */
int fwd_req_decode(const msgpack_object *o, struct ls_buf *inflated, struct fwd_req *r,
                   char *err, size_t errlen);

/* Entries of a request, in order. */
struct fwd_iter {
    const struct fwd_req *req;
    size_t idx;                 /* FWD_FORWARD: next element; FWD_MESSAGE: 0 or 1 */
    size_t off;                 /* FWD_PACKED: offset of the next entry */
    msgpack_unpacked up;        /* FWD_PACKED: the current entry */
};

void fwd_iter_init(struct fwd_iter *it, const struct fwd_req *req);
void fwd_iter_release(struct fwd_iter *it);
/*
 * Next entry: 1 with *time / *record set (not validated: see fwd_entry_valid), 0 at the
 * end, -1 when a packed stream is broken (the rest of the request is unreadable).
 */
int fwd_iter_next(struct fwd_iter *it, const msgpack_object **time, const msgpack_object **record);
/* Skip n entries (a retransmission whose first n records are already durable). */
int fwd_iter_skip(struct fwd_iter *it, uint64_t n);
/* fluentd's invalid_event?: time is an integer or EventTime, record is a map. */
bool fwd_entry_valid(const msgpack_object *time, const msgpack_object *record, struct ls_time *t);

/* ---- handshake (fluentd's in_forward: generate_helo / check_ping / generate_pong) ---- */

/* lowercase hex SHA-512 of the concatenation of parts (NULL-terminated pointer/length list):
 * out gets 129 bytes */
void fwd_sha512_hex(char out[129], const void *p1, size_t n1, const void *p2, size_t n2,
                    const void *p3, size_t n3, const void *p4, size_t n4);

/* ---- memory of acknowledged chunk ids (fwd_ids.c) ---- */

struct fwd_ids;

enum fwd_id_state {
    FWD_ID_UNKNOWN = 0,     /* never seen (or forgotten): emit it */
    FWD_ID_PARTIAL,         /* seen, `done` records durable: emit the rest, then ack */
    FWD_ID_ACKED,           /* durable and acknowledged: ack again, write nothing */
};

/*
 * Open (creating) the state file at path (NULL: memory only). expiry: seconds an id is
 * remembered; max: how many ids. Lines left by a crash in the middle of a request are
 * resolved with durable (the highest record sequence every output durably holds, see
 * ls_source_durable_pos). NULL with err set on an unreadable or unwritable file.
 */
struct fwd_ids *fwd_ids_open(const char *path, double expiry, size_t max, uint64_t durable,
                             char *err, size_t errlen);
void fwd_ids_close(struct fwd_ids *ids);
/* The next record sequence number (above every one used before, across restarts). */
uint64_t fwd_ids_next_seq(const struct fwd_ids *ids);
/* What is known of chunk id; *done: records of it durable (FWD_ID_PARTIAL). */
enum fwd_id_state fwd_ids_lookup(struct fwd_ids *ids, const char *id, size_t len,
                                 uint64_t *done);
/*
 * Journal, before emitting: chunk id's records get sequence numbers from seq on, and done
 * of them are durable already (a retransmission of a partial one). Queued; written by
 * fwd_ids_flush.
 */
void fwd_ids_begin(struct fwd_ids *ids, const char *id, size_t len, uint64_t seq, uint64_t done);
/*
 * Records of id below sequence end are durable. state 'a': all of them, acknowledged; 'i':
 * the request goes on later in this process (back-pressure), so after a crash the buffers
 * say how far it got; 'p': it stops here (connection gone), so later sequences are not its.
 */
void fwd_ids_progress(struct fwd_ids *ids, const char *id, size_t len, uint64_t end,
                      char state);
/* Write what is queued (one write). LS_OK, or LS_ERROR (logged by the caller). */
int fwd_ids_flush(struct fwd_ids *ids, char *err, size_t errlen);
size_t fwd_ids_count(const struct fwd_ids *ids);

#endif
