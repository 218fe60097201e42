/*
 * ordset.c - the delivered records of a chunk as ranges of ordinals (ordset.h).
 */
#include "ordset.h"
#include "buf.h"
#include "plugin.h"

void ls_ordset_parse(struct ls_ordset *d, const char *state, const char *prefix)
{
    size_t pl = strlen(prefix);
    const char *p;

    memset(d, 0, sizeof(*d));
    if (state == NULL || strncmp(state, prefix, pl) != 0) {
        return;
    }
    p = state + pl;
    while (*p) {
        char *e;
        unsigned long long a = strtoull(p, &e, 10), b = a;
        if (e == p) {
            break;
        }
        if (*e == '-') {
            b = strtoull(e + 1, &e, 10);
        }
        d->lo = ls_realloc(d->lo, (d->n + 1) * sizeof(uint64_t));
        d->hi = ls_realloc(d->hi, (d->n + 1) * sizeof(uint64_t));
        d->lo[d->n] = a;
        d->hi[d->n] = b;
        d->n++;
        p = *e == ',' ? e + 1 : e;
        if (*e != ',') {
            break;
        }
    }
}

bool ls_ordset_has(const struct ls_ordset *d, uint64_t k)
{
    size_t lo = 0, hi = d->n;

    while (lo < hi) {
        size_t m = (lo + hi) / 2;
        if (k < d->lo[m]) {
            hi = m;
        } else if (k > d->hi[m]) {
            lo = m + 1;
        } else {
            return true;
        }
    }
    return false;
}

void ls_ordset_free(struct ls_ordset *d)
{
    ls_free(d->lo);
    ls_free(d->hi);
    memset(d, 0, sizeof(*d));
}

/* d plus the sorted ordinals v[0..n), as state text */
static char *ordset_add(const struct ls_ordset *d, const uint64_t *v, size_t n, const char *prefix)
{
    struct ls_buf b;
    size_t i = 0, j = 0, k = 0, m = 0;
    uint64_t *lo = ls_malloc((d->n + n + 1) * sizeof(uint64_t));
    uint64_t *hi = ls_malloc((d->n + n + 1) * sizeof(uint64_t));

    /* merge the ranges' endpoints and the new points as ranges */
    while (i < d->n || j < n) {
        uint64_t a, z;
        if (j >= n || (i < d->n && d->lo[i] <= v[j])) {
            a = d->lo[i];
            z = d->hi[i++];
        } else {
            a = z = v[j++];
        }
        if (m > 0 && a <= hi[m - 1] + 1) {
            if (z > hi[m - 1]) {
                hi[m - 1] = z;
            }
        } else {
            lo[m] = a;
            hi[m++] = z;
        }
    }
    ls_buf_init(&b, 0);
    ls_buf_printf(&b, "%s", prefix);
    for (k = 0; k < m; k++) {
        if (lo[k] == hi[k]) {
            ls_buf_printf(&b, "%s%llu", k ? "," : "", (unsigned long long)lo[k]);
        } else {
            ls_buf_printf(&b, "%s%llu-%llu", k ? "," : "", (unsigned long long)lo[k],
                          (unsigned long long)hi[k]);
        }
    }
    ls_free(lo);
    ls_free(hi);
    return ls_buf_detach(&b, NULL);
}

int ls_chunk_mark_done(struct ls_chunk *c, struct ls_ordset *d, const uint64_t *v, size_t n,
                       const char *prefix)
{
    uint64_t *all;
    char *text;
    int rc;

    if (n == 0) {
        return LS_OK;
    }
    all = ls_malloc(n * sizeof(uint64_t));
    memcpy(all, v, n * sizeof(uint64_t));
    for (size_t i = 1; i < n; i++) {        /* usually in order already */
        uint64_t x = all[i];
        size_t k = i;
        while (k > 0 && all[k - 1] > x) {
            all[k] = all[k - 1];
            k--;
        }
        all[k] = x;
    }
    text = ordset_add(d, all, n, prefix);
    rc = ls_chunk_set_state(c, text);
    ls_ordset_free(d);
    ls_ordset_parse(d, text, prefix);
    ls_free(text);
    ls_free(all);
    return rc;
}
