/*
 * deflate_walk.h - where the last block of a raw deflate stream starts, without decoding it.
 */
#ifndef LS_DEFLATE_WALK_H
#define LS_DEFLATE_WALK_H

#include <stddef.h>
#include <stdint.h>

/*
 * p[0..len) should be one complete raw deflate stream (RFC 1951). Skip through its blocks,
 * reading Huffman codes only to know their lengths, and set *last_hdr to the bit position
 * of the final block's header (its BFINAL bit) and *end to the bit just after that block's
 * end-of-block code. Bit positions count from p's first byte, least significant bit first.
 * 0, or -1 if p is not such a stream (bad or incomplete codes, a truncated block, bytes
 * left over after the final block's byte). Never reads outside p[0..len).
 *
 * Only the stream's structure is checked: a distance reaching before the stream's start is
 * not (nothing is decoded), so a stream zlib would refuse for that alone passes here.
 */
int ls_deflate_last_block(const unsigned char *p, size_t len, uint64_t *last_hdr, uint64_t *end);

#endif
