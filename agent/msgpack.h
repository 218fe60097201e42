/*
 * msgpack.h - MessagePack values (Debian's libmsgpack-c objects) as logship records.
 *
 * Shared by the inputs that receive MessagePack (forward, http): the caller
 * decodes with libmsgpack-c (msgpack_unpacker for streams, msgpack_unpack_next
 * for one body) and hands the msgpack_object here.
 *
 * Conversion, as fluentd's records look after MessagePack.unpack:
 *   nil -> null, bool -> bool, positive/negative int -> int (a uint64 above
 *   INT64_MAX becomes an exact LS_V_JSON number, as Ruby's bignum prints),
 *   float32/64 -> float, str and bin -> string (bytes as they are),
 *   map/array -> LS_V_JSON text (keys that are not strings are written as
 *   their JSON text in quotes, as Ruby's to_json does with Hash keys),
 *   ext type 0 (EventTime) -> integer seconds (EventTime#to_json is to_i),
 *   other ext types -> their payload as a string.
 * Top-level string values are borrowed slices of the msgpack data (valid
 * while the msgpack_unpacked / zone lives); anything built (JSON text) is
 * allocated in the record's arena.
 */
#ifndef LS_MSGPACK_H
#define LS_MSGPACK_H

#include "common.h"
#include "buf.h"
#include "record.h"

/* libmsgpack-c's own umbrella header is also called msgpack.h (shadowed by this one under
 * -Iagent), so its parts are included one by one, in its order */
#include <msgpack/util.h>
#include <msgpack/object.h>
#include <msgpack/zone.h>
#include <msgpack/pack.h>
#include <msgpack/unpack.h>
#include <msgpack/sbuffer.h>
#include <msgpack/vrefbuffer.h>
#include <msgpack/version.h>

/*
 * Where does the next top-level MessagePack object of a stream end? libmsgpack-c allocates a
 * container's elements as soon as it reads the header, so 5 bytes claiming 4 billion elements
 * would make it allocate 100 GB: objects are handed to it only once this scanner, which
 * allocates nothing, has found them whole. Resumable: call again with the same (grown) data;
 * zero the struct for a new object at data[0]. Returns the object's length (> 0),
 * LS_MP_MORE (need more bytes), LS_MP_BAD (0xc1, never valid, or nested deeper than
 * libmsgpack-c's LS_MP_NEST_MAX) or LS_MP_BIG (it cannot fit in limit bytes: every value
 * still announced needs at least one byte).
 */
#define LS_MP_NEST_MAX 32           /* libmsgpack-c's MSGPACK_EMBED_STACK_SIZE */
struct ls_mp_scan {
    size_t scanned;                 /* bytes of the current object looked at */
    uint64_t pending;               /* values still to read, at every depth */
    uint64_t skip;                  /* payload bytes still to skip */
    int depth;
    uint64_t left[LS_MP_NEST_MAX + 1];      /* values still to read per open container */
};
enum { LS_MP_MORE = 0, LS_MP_BAD = -1, LS_MP_BIG = -2 };
long ls_mp_scan(struct ls_mp_scan *s, const char *data, size_t len, uint64_t limit);

/* the forward protocol's EventTime: ext type 0, 8 bytes (u32 sec, u32 nsec, big-endian) */
#define LS_MSGPACK_EVENT_TIME 0

/* obj as a value; nested values as JSON text in arena. LS_OK, or LS_ERROR (too deep). */
int ls_msgpack_to_value(const msgpack_object *obj, struct ls_arena *arena, struct ls_value *out);
/*
 * Append map's pairs to rec as fields (keys must be str or bin; other keys are written as
 * their JSON text, as fluentd's JSON output would show them). LS_OK, LS_DECLINED when map
 * is not a map, LS_ERROR when a value nests deeper than LS_MSGPACK_DEPTH_MAX.
 */
int ls_msgpack_map_to_record(const msgpack_object *map, struct ls_record *rec);
/* Append obj as JSON to out (str/bin scrubbed to valid UTF-8 by the JSON writer). */
int ls_msgpack_put_json(struct ls_buf *out, const msgpack_object *obj);
/*
 * A forward-protocol time: a positive integer (seconds), EventTime (ext 0, 8 bytes), or,
 * from Fluent Bit's "v1.5" metadata form, an array whose first element is one of these.
 * true with *t set; false for anything else (float, string, nil...).
 */
bool ls_msgpack_event_time(const msgpack_object *obj, struct ls_time *t);
/* Is obj a str or a bin (the forward protocol accepts either for binary fields)? Gives
 * the bytes. */
bool ls_msgpack_bytes(const msgpack_object *obj, const char **p, size_t *len);
/* Does str/bin obj hold exactly the NUL-free C string s? */
bool ls_msgpack_str_eq(const msgpack_object *obj, const char *s);
/* The value of key in map (str/bin keys), or NULL. */
const msgpack_object *ls_msgpack_map_get(const msgpack_object *map, const char *key);

#define LS_MSGPACK_DEPTH_MAX 64

/* rec's fields as a MessagePack map (nested LS_V_JSON values as maps and arrays; arena holds
 * their decoded parts); libmsgpack-c's result, 0 ok. The msgpack formatter's record part. */
int ls_msgpack_pack_record(msgpack_packer *pk, struct ls_arena *a, const struct ls_record *rec);
/* How many bytes that map takes: Ruby's record.to_msgpack.bytesize (flowcounter's bytes). */
uint64_t ls_msgpack_record_size(struct ls_arena *a, const struct ls_record *rec);

/*
 * The [time, record] entries of a chunk the msgpack formatter wrote, one at a time, for the
 * outputs that keep their records as MessagePack and build their requests from them
 * (elasticsearch, loki, datadog, tdlog). Blocking reads: use it on a worker. next returns
 * the next entry (valid until the next call) or NULL at the end, or on a read error
 * (ls_chunk_entries_failed then says so).
 */
struct ls_chunk;
struct ls_chunk_entries;
/* The plugins' .formatter_for for these outputs: the msgpack formatter whatever <format>
 * says (they format records themselves when they write a chunk), with its defaults. */
struct ls_conf_section;
const char *ls_msgpack_formatter_for(struct ls_conf_section *sec, struct ls_conf_section **fsec,
                                     char *err, size_t errlen);
struct ls_chunk_entries *ls_chunk_entries_open(struct ls_chunk *c);
const msgpack_object *ls_chunk_entries_next(struct ls_chunk_entries *e);
bool ls_chunk_entries_failed(const struct ls_chunk_entries *e);
void ls_chunk_entries_close(struct ls_chunk_entries *e);

#endif
