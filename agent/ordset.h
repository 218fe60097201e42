/*
 * ordset.h - which records of a chunk are delivered already, kept in the chunk's state.
 *
 * Outputs whose store accepts some records of a request and refuses others (Elasticsearch's
 * bulk items, Kinesis' PutRecords) record the ordinals of the delivered ones in the chunk's
 * state ("<prefix>a-b,c,..."), so a retry of the chunk sends only the others, after a crash
 * too. Ordinals are entries in chunk order from 0.
 */
#ifndef LS_ORDSET_H
#define LS_ORDSET_H

#include "common.h"

struct ls_ordset {
    uint64_t *lo, *hi;              /* sorted, disjoint, inclusive ranges */
    size_t n;
};

/* From a state text that starts with prefix (anything else: the empty set). */
void ls_ordset_parse(struct ls_ordset *d, const char *state, const char *prefix);
bool ls_ordset_has(const struct ls_ordset *d, uint64_t k);
void ls_ordset_free(struct ls_ordset *d);
/* Add the ordinals v[0..n) (any order) to d and store the result as c's state.
 * LS_OK, or LS_ERROR when the state could not be written (d is updated either way). */
struct ls_chunk;
int ls_chunk_mark_done(struct ls_chunk *c, struct ls_ordset *d, const uint64_t *v, size_t n,
                       const char *prefix);

#endif
