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
/* ls_buf_reserve's slow path: allocate (or refuse) room for n more bytes. */
int ls_buf_grow(struct ls_buf *b, size_t n);
/*
 * Ensure room for n more bytes. LS_OK, or LS_AGAIN if the cap would be passed.
 * Inline with ls_buf_append and ls_buf_putc: the JSON writer calls them dozens
 * of times per record, and the room is nearly always there already.
 */
static inline int ls_buf_reserve(struct ls_buf *b, size_t n)
{
    if (b->len + n + 1 <= b->cap && (b->max == 0 || b->len + n <= b->max)) {
        return LS_OK;   /* +1 keeps room for ls_buf_cstr's NUL */
    }
    return ls_buf_grow(b, n);
}

static inline int ls_buf_append(struct ls_buf *b, const void *p, size_t n)
{
    if (ls_buf_reserve(b, n) != LS_OK) {
        return LS_AGAIN;
    }
    if (n) {
        memcpy(b->p + b->len, p, n);
    }
    b->len += n;
    return LS_OK;
}

static inline int ls_buf_putc(struct ls_buf *b, char c)
{
    if (ls_buf_reserve(b, 1) != LS_OK) {
        return LS_AGAIN;
    }
    b->p[b->len++] = c;
    return LS_OK;
}
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
