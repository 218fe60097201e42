/*
 * fuzz_deflate_walk.c - libFuzzer target for ls_deflate_last_block (deflate_walk.c).
 *
 * The first byte chooses: odd, the rest is compressed with libdeflate at level
 * (byte >> 1) % 13 and the walker must find the same last block as zlib's inflate (the
 * way compress.c uses it); even, the rest is taken as a raw deflate stream as it is, the
 * walker must stay inside it, and wherever zlib decodes the whole of it the two agree.
 * The walker checks structure only, so it may accept a stream zlib refuses (a distance
 * before the start), never the other way round. Inputs are copied to exact-size heap
 * blocks so that ASan catches any read past the end.
 */
#include "deflate_walk.h"
#include "deflate_ref.h"

#include <libdeflate.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t h1 = 0, e1 = 0, h2 = 0, e2 = 0;
    unsigned char *p;
    size_t n;
    int r1, r2;

    if (size == 0) {
        return 0;
    }
    if (data[0] & 1) {
        struct libdeflate_compressor *c = libdeflate_alloc_compressor((data[0] >> 1) % 13);
        size_t cap = libdeflate_deflate_compress_bound(c, size - 1);
        unsigned char *out = malloc(cap);
        n = libdeflate_deflate_compress(c, data + 1, size - 1, out, cap);
        libdeflate_free_compressor(c);
        if (n == 0) {
            __builtin_trap();
        }
        p = malloc(n);
        memcpy(p, out, n);
        free(out);
        if (ls_deflate_last_block(p, n, &h1, &e1) != 0 || deflate_ref_last_block(p, n, &h2, &e2) != 0
            || h1 != h2 || e1 != e2) {
            __builtin_trap();
        }
        free(p);
        return 0;
    }
    n = size - 1;
    p = malloc(n ? n : 1);
    memcpy(p, data + 1, n);
    r1 = ls_deflate_last_block(p, n, &h1, &e1);
    r2 = deflate_ref_last_block(p, n, &h2, &e2);
    if (r1 == 0 && (e1 > (uint64_t)n * 8 || h1 >= e1)) {
        __builtin_trap();
    }
    if (r2 == 0 && (r1 != 0 || h1 != h2 || e1 != e2)) {
        __builtin_trap();
    }
    free(p);
    return 0;
}
