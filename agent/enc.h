/*
 * enc.h - fluentd's (Ruby's) character encodings with glibc iconv: in_tail's
 * `from_encoding` / `encoding` and record_modifier's `char_encoding` (see enc.c).
 */
#ifndef LS_ENC_H
#define LS_ENC_H

#include "common.h"
#include "buf.h"

/*
 * One source -> target conversion. Lines are converted one at a time into
 * out, a buffer reused for every line and capped; the iconv state is reset
 * per line, so a bad byte never leaks into the next line.
 */
struct ls_enc {
    void *cd;                /* iconv_t; NULL: no conversion */
    int shape;               /* byte structure of the source (enc.c's enc_shape) */
    char repl[4];            /* replacement for a bad byte: U+FFFD in UTF-8, else "?" */
    size_t repl_len;
    struct ls_buf out;
};

/*
 * Check one fluentd (Ruby) encoding name: known to glibc's iconv,
 * ASCII-compatible, not a UTF-16/UTF-32 family (lines are split on the byte
 * 0x0A); as_target: also not stateful (ISO-2022-JP). LS_OK, or LS_ERROR
 * with a message (no file:line) in err.
 */
int ls_enc_check(const char *name, bool as_target, char *err, size_t errlen);
/* Do the two names mean the same encoding (no conversion needed)? Both must pass the check. */
bool ls_enc_same(const char *a, const char *b);
/*
 * Prepare a from -> to conversion; max_out caps one converted line.
 * Both names must have passed ls_enc_check. LS_OK / LS_ERROR (message in err).
 */
int ls_enc_open(struct ls_enc *e, const char *from, const char *to, size_t max_out,
                  char *err, size_t errlen);
/*
 * Convert one line. *out / *outlen point into e->out (valid until the next
 * call). Bad or unconvertible input bytes become e->repl, one per byte.
 * Returns how many bytes were replaced, or -1 when the converted line would
 * pass max_out (nothing usable in *out).
 */
long ls_enc_convert(struct ls_enc *e, const char *in, size_t len, const char **out,
                      size_t *outlen);
void ls_enc_close(struct ls_enc *e);

#endif
