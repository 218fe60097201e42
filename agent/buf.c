/*
 * buf.c - growable byte buffer with a hard cap (see buf.h).
 */
#include "buf.h"

#include <stdio.h>

void ls_buf_init(struct ls_buf *b, size_t max)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void ls_buf_release(struct ls_buf *b)
{
    ls_free(b->p);
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}

int ls_buf_grow(struct ls_buf *b, size_t n)
{
    size_t need = b->len + n + 1;   /* +1 keeps room for ls_buf_cstr's NUL */
    size_t cap;

    if (b->max && b->len + n > b->max) {
        return LS_AGAIN;
    }
    if (need <= b->cap) {
        return LS_OK;
    }
    cap = b->cap ? b->cap : 256;
    while (cap < need) {
        cap *= 2;
    }
    if (b->max && cap > b->max + 1) {
        cap = b->max + 1;
    }
    b->p = ls_realloc(b->p, cap);
    b->cap = cap;
    return LS_OK;
}

int ls_buf_printf(struct ls_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || ls_buf_reserve(b, (size_t)n) != LS_OK) {
        return LS_AGAIN;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return LS_OK;
}

const char *ls_buf_cstr(struct ls_buf *b)
{
    if (b->p == NULL || b->len + 1 > b->cap) {
        size_t max = b->max;
        b->max = 0;
        ls_buf_reserve(b, 0);
        b->max = max;
    }
    b->p[b->len] = '\0';
    return b->p;
}

void ls_buf_consume(struct ls_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

char *ls_buf_detach(struct ls_buf *b, size_t *len)
{
    char *p;

    ls_buf_cstr(b);
    p = b->p;
    if (len) {
        *len = b->len;
    }
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
