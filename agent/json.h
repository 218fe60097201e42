/*
 * json.h - JSON writing (the hot path of the json / out_file formatters) and
 * a small reader used by the json parser and configuration values.
 *
 * Writing: strings are raw bytes; control bytes are escaped (\n \t \u0001),
 * '"' and '\\' are escaped, valid UTF-8 passes through, and invalid UTF-8
 * becomes U+FFFD per maximal invalid subpart (a stray byte, or the valid
 * prefix of a truncated sequence, is one U+FFFD; Ruby's scrub and Python's
 * "replace" do the same), so the output is always valid JSON and UTF-8.
 * Fast path: a run of safe ASCII bytes is copied with one memcpy.
 */
#ifndef LS_JSON_H
#define LS_JSON_H

#include "common.h"
#include "buf.h"
#include "record.h"

/* Append "escaped" (with the quotes). */
int ls_json_put_str(struct ls_buf *out, const char *p, size_t len);
/* Append a value (strings quoted, LS_V_JSON verbatim, floats like Ruby's to_s / %.17g trimmed). */
int ls_json_put_value(struct ls_buf *out, const struct ls_value *v);
/* Ruby Float#to_s text of d (shortest round trip: 0.1, 1.0, 1.0e+20) into out
 * (32 bytes); returns the length, 0 for NaN/Infinity. */
size_t ls_json_fmt_double(char *out, double d);
/* Append {"k":v,...} for every field of rec (no newline). */
int ls_json_put_record(struct ls_buf *out, const struct ls_record *rec);

/*
 * Ruby's rendering of values, for the text formatters (ltsv, csv, tsv,
 * single_value, hash), which print record values with to_s / inspect.
 * inspect false: to_s (strings raw, nil as "", floats like Float#to_s);
 * true: inspect (strings quoted and escaped, nil). Nested objects/arrays
 * (LS_V_JSON) print as Ruby's Hash/Array#inspect: {"k"=>"v", "n"=>[1, nil]}.
 */
int ls_ruby_put_value(struct ls_buf *out, const struct ls_value *v, bool inspect);
/* Hash#inspect of the whole record: {"k"=>"v", "n"=>1} */
int ls_ruby_put_record(struct ls_buf *out, const struct ls_record *rec);

/*
 * Parse a JSON object's top level into rec's fields, without copying where
 * possible: string values without escapes are slices of p; escaped ones are
 * decoded into rec->arena; nested objects/arrays become LS_V_JSON slices.
 * Numbers become LS_V_INT or LS_V_FLOAT. LS_OK, or LS_ERROR if p[0..len) is
 * not exactly one JSON object (surrounding whitespace allowed).
 */
int ls_json_parse_object(const char *p, size_t len, struct ls_record *rec);
/* Bytes of p[0..len) before its first invalid UTF-8 sequence (len: all valid). */
size_t ls_utf8_valid_prefix(const char *p, size_t len);
/* Append p with each maximal invalid UTF-8 subpart replaced by U+FFFD, as the writer does. */
int ls_utf8_scrub(struct ls_buf *out, const char *p, size_t len);
/* Element index of the JSON array p[0..len) into *out (as ls_json_parse_object reads
 * values). LS_OK; LS_DECLINED when p is not an array or is too short; LS_ERROR if malformed. */
int ls_json_array_get(const char *p, size_t len, size_t index, struct ls_arena *arena,
                      struct ls_value *out);
/*
 * Walk the elements of the JSON array p[0..len) one at a time: *off is 0 before the first
 * call and carries the position between calls (copy it to read an element again). LS_OK with
 * the element's text in *elem and *elen; LS_DECLINED at the end of the array; LS_ERROR if p is
 * not an array or is malformed up to the element asked for.
 */
int ls_json_array_next(const char *p, size_t len, size_t *off, const char **elem, size_t *elen);
/*
 * Find the first value of a stream of JSON documents in p[0..len): *start skips white space;
 * 1 with the value's end in *end, 0 if it is not complete yet (more bytes needed). Objects,
 * arrays and strings are delimited by brackets and quotes (not validated: the parser that
 * takes the value does that); anything else (a number, true, null, not JSON) is taken to
 * the end of its line. fluentd's JSON parser reads a command's output this way (parse_io).
 */
int ls_json_stream_next(const char *p, size_t len, size_t *start, size_t *end);
/* The JSON string at p (p[0] == '"', within len bytes) decoded, escapes resolved into arena
 * (otherwise a slice of p): LS_OK with its text in *out and *olen and the bytes it took, quotes
 * included, in *used; LS_ERROR if it is not a whole string. */
struct ls_arena;
int ls_json_string_at(const char *p, size_t len, struct ls_arena *arena, const char **out,
                      size_t *olen, size_t *used);
/* Validate a JSON text (any value). Returns true if valid. */
bool ls_json_valid(const char *p, size_t len);

#endif
