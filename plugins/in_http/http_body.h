/*
 * http_body.h - in_http's request decoding, apart from the server so the fuzz target reaches
 * it: form fields (x-www-form-urlencoded, multipart/form-data), the payload (one JSON object,
 * a JSON array of objects, NDJSON lines, MessagePack) and fluentd's time rules.
 *
 * Every function works on bytes the caller keeps alive; values that must be decoded (percent
 * escapes) go into the arena given.
 */
#ifndef LS_HTTP_BODY_H
#define LS_HTTP_BODY_H

#include "record.h"
#include "buf.h"

/* The request parameters in_http looks at (fluentd's params hash, the parts it reads). */
struct hb_params {
    const char *json, *ndjson, *msgpack, *time;
    size_t json_len, ndjson_len, msgpack_len, time_len;
};

/* Remember key=value if it is one of hb_params' names (later values win, as fluentd's Hash). */
void hb_params_set(struct hb_params *pr, const char *k, size_t klen, const char *v, size_t vlen);

/* application/x-www-form-urlencoded (URI.decode_www_form): '&'-separated, '+' is a space,
 * %XX decoded (a bad escape stays as written). Decoded copies go into a. */
void hb_form_urlencoded(struct hb_params *pr, const char *p, size_t len, struct ls_arena *a);

/*
 * multipart/form-data with the boundary of the Content-Type (quotes removed): each part's
 * name (Content-Disposition name="...") and data. LS_OK, or LS_ERROR with err set when the
 * body has no valid delimiter or a part without a blank line after its headers.
 */
int hb_form_multipart(struct hb_params *pr, const char *p, size_t len, const char *boundary,
                      size_t blen, char *err, size_t errlen);

/* The boundary of a "multipart/form-data; boundary=..." Content-Type, or NULL. */
const char *hb_multipart_boundary(const char *ctype, size_t *blen);

enum hb_kind { HB_NONE = 0, HB_JSON, HB_NDJSON, HB_MSGPACK };

struct hb_iter {
    enum hb_kind kind;
    const char *p;
    size_t len;
    size_t off;             /* JSON: in the array; NDJSON: the next line; MessagePack: the
                               current top-level object */
    size_t idx;             /* MessagePack: the next element of the current object */
    int state;              /* 0 not started, 1 under way, 2 done */
    unsigned long skipped;  /* values that were not objects (fluentd skips them) */
    void *mp;               /* MessagePack: the decoded current object (msgpack_unpacked) */
    size_t mp_at, mp_end;   /* where it starts and ends in p */
};

/* Where the iterator is: hb_iter_seek goes back there to read the same record again. */
struct hb_pos {
    size_t off, idx;
    int state;
};

/* Pick the payload as fluentd does: msgpack, else json, else ndjson. False: none given. */
bool hb_iter_init(struct hb_iter *it, const struct hb_params *pr);
void hb_iter_release(struct hb_iter *it);
struct hb_pos hb_iter_tell(const struct hb_iter *it);
void hb_iter_seek(struct hb_iter *it, struct hb_pos pos);

/*
 * The next record into rec (fields appended; slices of the payload or rec's arena).
 * LS_OK: a record. LS_DECLINED: no more. LS_ERROR: malformed payload, message in err.
 */
int hb_iter_next(struct hb_iter *it, struct ls_record *rec, char *err, size_t errlen);

/*
 * fluentd's event time for a default-parsed record: the time parameter wins (Ruby's to_f;
 * 0 means now) and leaves the record alone; else the record's time_key is removed (kept with
 * keep) and read as Time.at does (integers and floats; nil/false mean now), else now.
 * LS_OK, or LS_ERROR with Ruby's message ("can't convert String into an exact number").
 */
int hb_event_time(const struct hb_params *pr, struct ls_record *rec, const char *time_key,
                  bool keep, struct ls_time *out, char *err, size_t errlen);

/* Ruby's String#to_f of p[0..len) into a time; false when it is 0 (fluentd: now). */
bool hb_param_time(const char *p, size_t len, struct ls_time *out);

/*
 * Content-Encoding gzip or deflate (zlib format) into out, at most limit bytes
 * (decompression_size_limit). LS_OK, or LS_ERROR with fluentd's message in err.
 */
int hb_inflate(const char *p, size_t len, bool gzip, size_t limit, struct ls_buf *out, char *err,
               size_t errlen);

#endif
