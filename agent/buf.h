/*
 * buf.h - a growable byte buffer with a hard cap.
 *
 * Every buffer that grows from outside input (log lines, HTTP bodies, chunk
 * frames) has a maximum given at init (curl's dynbuf idea). Appending past it
 * fails with LS_AGAIN and leaves the buffer unchanged, so callers can skip
 * and count an over-long line instead of allocating without bound.
 * Contents are not NUL-terminated unless ls_buf_cstr() is called.
 */
#ifndef LS_BUF_H
#define LS_BUF_H

#include "common.h"

struct ls_buf {
    char *p;      /* data (owned) */
    size_t len;   /* bytes used */
    size_t cap;   /* bytes allocated */
    size_t max;   /* hard cap on len; 0 = unlimited */
};

void ls_buf_init(struct ls_buf *b, size_t max);
void ls_buf_release(struct ls_buf *b);               /* free memory, back to empty */
static inline void ls_buf_reset(struct ls_buf *b) { b->len = 0; }
/* Ensure room for n more bytes. LS_OK, or LS_AGAIN if the cap would be passed. */
int ls_buf_reserve(struct ls_buf *b, size_t n);
int ls_buf_append(struct ls_buf *b, const void *p, size_t n);
int ls_buf_putc(struct ls_buf *b, char c);
int ls_buf_printf(struct ls_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* NUL-terminate (not counted in len) and return p. */
const char *ls_buf_cstr(struct ls_buf *b);
/* Drop the first n bytes. */
void ls_buf_consume(struct ls_buf *b, size_t n);
/* Take the memory: caller owns the returned pointer; buffer becomes empty. */
char *ls_buf_detach(struct ls_buf *b, size_t *len);

/* Fast unchecked append for hot paths after ls_buf_reserve(). */
static inline void ls_buf_add_unchecked(struct ls_buf *b, const void *p, size_t n)
{
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

#endif
