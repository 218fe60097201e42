/*
 * deflate_walk.c - find a raw deflate stream's final block by skipping, not decoding.
 *
 * compress.c joins pieces that libdeflate compressed separately into one gzip member, and
 * for that must clear the BFINAL bit of each piece's last block. libdeflate does not say
 * where that block starts and cannot leave a stream open (it has no sync flush), and
 * Debian's zlib-ng or ISA-L, which can, are not in Debian 12. zlib's inflate in Z_BLOCK
 * mode finds the block but decodes and copies every byte on the way: about 11% of an S3
 * backlog's CPU. This walker reads only what fixes the bit layout: block headers, the
 * Huffman code lengths of dynamic blocks, and each symbol's code length plus its extra
 * bits, looked up in a table that maps the next 10 bits straight to "bits to skip" (for a
 * length code, the code and its extra bits together). No output, no window, no distance
 * checks. It runs over libdeflate's own output, but is written for any bytes (bounds
 * checked, every code set validated as zlib's inflate_table does) and fuzzed against zlib
 * (tests/fuzz/fuzz_deflate_walk.c); compress.c also checks the result (the BFINAL bit is
 * set where it says, the stream ends where it says) before it touches a byte.
 */
#include "deflate_walk.h"

#include <endian.h>
#include <string.h>

#define MAXBITS 15
#define FAST_BITS 11
#define FAST_MASK ((1u << FAST_BITS) - 1)

enum { K_LIT, K_LEN, K_END };

/*
 * fast[]: bits to skip | kind << 8 for codes of at most FAST_BITS; 0: decode slowly. In a
 * literal/length table an entry can take two symbols (see compose).
 */
struct huff {
    uint16_t fast[1u << FAST_BITS];
    uint8_t clen[1u << FAST_BITS];  /* the code length of fast[]'s first symbol */
    uint16_t count[MAXBITS + 1];
    uint16_t symbol[288];       /* by code, for decode_slow */
};

enum { T_CODES, T_LIT, T_DIST };

static const uint8_t len_extra[29] = { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                       2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0 };
static const uint8_t dist_extra[30] = { 0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6,
                                        6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13 };
static const uint8_t cl_order[19] = { 16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13,
                                      2, 14, 1, 15 };

struct br {
    const unsigned char *p;
    size_t len;
    uint64_t pos, limit;        /* in bits; limit = len * 8 */
};

/* At least 57 bits from pos on, zeros past the end. */
static inline uint64_t peek(const struct br *b)
{
    size_t i = (size_t)(b->pos >> 3);
    uint64_t v = 0;

    if (i + 8 <= b->len) {
        memcpy(&v, b->p + i, 8);
        v = le64toh(v);
    } else {
        size_t k;
        for (k = 0; k < 8 && i + k < b->len; k++) {
            v |= (uint64_t)b->p[i + k] << (8 * k);
        }
    }
    return v >> (b->pos & 7);
}

static inline unsigned bits(struct br *b, unsigned n)
{
    unsigned v = (unsigned)(peek(b) & ((1u << n) - 1));

    b->pos += n;
    return v;
}

static unsigned rev(unsigned code, unsigned n)
{
    unsigned r = 0;

    while (n--) {
        r = (r << 1) | (code & 1);
        code >>= 1;
    }
    return r;
}

/* The bits a symbol of code length l takes with its extra bits, and its kind; 0: invalid */
static uint16_t entry(int type, int sym, unsigned l)
{
    if (type == T_LIT) {
        if (sym < 256) {
            return (uint16_t)(l | K_LIT << 8);
        }
        if (sym == 256) {
            return (uint16_t)(l | K_END << 8);
        }
        return sym <= 285 ? (uint16_t)((l + len_extra[sym - 257]) | K_LEN << 8) : 0;
    }
    return sym < 30 ? (uint16_t)(l + dist_extra[sym]) : 0;
}

/*
 * Two symbols per lookup: where the first code is a literal's and the index also holds
 * the whole next code, the entry skips both and has the second's kind (a literal, a length
 * with its extra bits, the end). Skipping a literal was a table load and a shift on the
 * critical path per symbol; JSON lines' literal codes are mostly 5 to 8 bits, so about
 * half the lookups now take two. On the bench's JSON in 1 MiB pieces the walk took 17%
 * less time (11 bits; 10 and 12 measured the same, 13 slower: the table leaves L1).
 * Skipping two codes at once lands where skipping them one by one does, so the walk's
 * result is unchanged (tests/fuzz/fuzz_deflate_walk.c checks it against zlib).
 */
static void compose(struct huff *h)
{
    uint16_t one[1u << FAST_BITS];
    unsigned i;

    memcpy(one, h->fast, sizeof(one));
    for (i = 0; i <= FAST_MASK; i++) {
        uint16_t e = one[i], e2;
        unsigned l1;

        if (e == 0 || e >> 8 != K_LIT) {
            continue;
        }
        l1 = e & 0xff;
        e2 = one[i >> l1];
        if (e2 != 0 && h->clen[i >> l1] + l1 <= FAST_BITS) {
            h->fast[i] = (uint16_t)((l1 + (e2 & 0xff)) | (e2 & 0xff00));
        }
    }
}

/*
 * Canonical code from n lengths, rejected as zlib's inflate_table rejects it: an
 * over-subscribed set, or an incomplete one unless it is a single code of one bit (or,
 * outside code length codes, no code at all: every symbol then fails to decode).
 */
static int build(struct huff *h, const uint8_t *lens, int n, int type)
{
    uint16_t offs[MAXBITS + 1], next[MAXBITS + 1];
    int sym, len, left = 1, max = 0;

    memset(h->count, 0, sizeof(h->count));
    for (sym = 0; sym < n; sym++) {
        h->count[lens[sym]]++;
    }
    for (len = 1; len <= MAXBITS; len++) {
        left = (left << 1) - h->count[len];
        if (left < 0) {
            return -1;
        }
        if (h->count[len]) {
            max = len;
        }
    }
    if (max != 0 && left > 0 && (type == T_CODES || max != 1)) {
        return -1;
    }
    offs[1] = 0;
    next[1] = 0;
    for (len = 1; len < MAXBITS; len++) {
        offs[len + 1] = (uint16_t)(offs[len] + h->count[len]);
        next[len + 1] = (uint16_t)((next[len] + h->count[len]) << 1);
    }
    if (type != T_CODES) {
        memset(h->fast, 0, sizeof(h->fast));
    }
    for (sym = 0; sym < n; sym++) {
        unsigned l = lens[sym];
        if (l == 0) {
            continue;
        }
        h->symbol[offs[l]++] = (uint16_t)sym;
        if (type != T_CODES && l <= FAST_BITS) {
            uint16_t e = entry(type, sym, l);
            unsigned i;
            for (i = rev(next[l], l); i <= FAST_MASK; i += 1u << l) {
                h->fast[i] = e;
                h->clen[i] = (uint8_t)l;
            }
        }
        next[l]++;
    }
    if (type == T_LIT) {
        compose(h);
    }
    return 0;
}

/* One symbol, bit by bit (codes longer than FAST_BITS, invalid ones); -1 if none matches. */
static int decode_slow(struct br *b, const struct huff *h)
{
    uint64_t v = peek(b);
    int code = 0, first = 0, index = 0, len;

    for (len = 1; len <= MAXBITS; len++) {
        int count = h->count[len];
        code |= (int)(v & 1);
        v >>= 1;
        if (code - count < first) {
            b->pos += (uint64_t)len;
            return h->symbol[index + (code - first)];
        }
        index += count;
        first = (first + count) << 1;
        code <<= 1;
    }
    return -1;
}

/* The careful loop: one symbol at a time through peek, valid up to the stream's last bit. */
static int skip_codes_slow(struct br *b, const struct huff *lit, const struct huff *dist)
{
    for (;;) {
        uint16_t e;

        if (b->pos > b->limit) {
            return -1;
        }
        e = lit->fast[peek(b) & FAST_MASK];
        if (e) {
            b->pos += e & 0xff;
            if (e >> 8 == K_LIT) {
                continue;
            }
            if (e >> 8 == K_END) {
                return 0;
            }
        } else {
            int sym = decode_slow(b, lit);
            if (sym < 0 || sym > 285) {
                return -1;
            }
            if (sym < 256) {
                continue;
            }
            if (sym == 256) {
                return 0;
            }
            b->pos += len_extra[sym - 257];
        }
        /* a length: its distance follows */
        e = dist->fast[peek(b) & FAST_MASK];
        if (e) {
            b->pos += e & 0xff;
        } else {
            int sym = decode_slow(b, dist);
            if (sym < 0 || sym >= 30) {
                return -1;
            }
            b->pos += dist_extra[sym];
        }
    }
}

/*
 * Skip one Huffman block's symbols up to and including its end-of-block code.
 *
 * This is most of the walk's time, so while 8 bytes can be loaded it keeps the bits in a
 * register, refilled without a branch as libdeflate's decoder does: bits [0, left) of bb
 * are the stream from bit (q - p) * 8 - left on, and bits above left are zeros or the
 * stream's own next bits, so OR-ing the next 8 bytes in at `left` is always right. A refill
 * leaves at least 56 bits, and one round takes at most 40 (a literal and a length code of
 * FAST_BITS together with 5 extra bits, a distance code of up to FAST_BITS with 13), so a
 * symbol costs a table load and a shift instead of an unaligned load per symbol (peek).
 * Codes longer than FAST_BITS and the last 8 bytes go through the careful loop.
 */
static int skip_codes(struct br *b, const struct huff *lit, const struct huff *dist)
{
    const unsigned char *end = b->p + b->len;

    for (;;) {
        const unsigned char *q = b->p + (b->pos >> 3);
        uint64_t bb, w;
        unsigned left;
        uint16_t e;

        if (b->pos > b->limit || end - q < 16) {
            return skip_codes_slow(b, lit, dist);
        }
        memcpy(&w, q, 8);
        bb = le64toh(w) >> (b->pos & 7);
        left = 56 - (unsigned)(b->pos & 7);     /* under 64, as the refill needs */
        q += 7;
        for (;;) {
            if (end - q < 8) {
                break;
            }
            memcpy(&w, q, 8);
            bb |= le64toh(w) << (left & 63);
            q += 7 - ((left >> 3) & 7);
            left |= 56;
            e = lit->fast[bb & FAST_MASK];
            if (e == 0) {
                break;
            }
            bb >>= e & 0xff;
            left -= e & 0xff;
            if (e >> 8 == K_LIT) {
                continue;
            }
            if (e >> 8 == K_END) {
                b->pos = (uint64_t)(q - b->p) * 8 - left;
                return 0;
            }
            e = dist->fast[bb & FAST_MASK];
            if (e == 0) {
                /* back to the careful loop at this distance code: it expects a literal or
                 * length code first, so take the distance here */
                int sym;
                b->pos = (uint64_t)(q - b->p) * 8 - left;
                sym = decode_slow(b, dist);
                if (sym < 0 || sym >= 30) {
                    return -1;
                }
                b->pos += dist_extra[sym];
                goto resync;
            }
            bb >>= e & 0xff;
            left -= e & 0xff;
        }
        /* a long code, or near the end: one symbol (and its distance) the careful way */
        b->pos = (uint64_t)(q - b->p) * 8 - left;
        {
            int sym = decode_slow(b, lit);
            if (sym < 0 || sym > 285) {
                return -1;
            }
            if (sym == 256) {
                return 0;
            }
            if (sym > 256) {
                b->pos += len_extra[sym - 257];
                if (b->pos > b->limit) {
                    return -1;
                }
                e = dist->fast[peek(b) & FAST_MASK];
                if (e) {
                    b->pos += e & 0xff;
                } else {
                    sym = decode_slow(b, dist);
                    if (sym < 0 || sym >= 30) {
                        return -1;
                    }
                    b->pos += dist_extra[sym];
                }
            }
        }
resync:;
    }
}

static int fixed_tables(struct huff *lit, struct huff *dist)
{
    uint8_t lens[288];

    memset(lens, 8, 144);
    memset(lens + 144, 9, 112);
    memset(lens + 256, 7, 24);
    memset(lens + 280, 8, 8);
    if (build(lit, lens, 288, T_LIT) != 0) {
        return -1;
    }
    /* 32 codes of 5 bits, a complete set; 30 and 31 are invalid where they occur */
    memset(lens, 5, 32);
    return build(dist, lens, 32, T_DIST);
}

static int dynamic_tables(struct br *b, struct huff *lit, struct huff *dist)
{
    uint8_t cl[19], lens[286 + 30];
    struct huff codes;
    unsigned nlen, ndist, ncode, i;

    if (b->pos + 14 > b->limit) {
        return -1;
    }
    nlen = bits(b, 5) + 257;
    ndist = bits(b, 5) + 1;
    ncode = bits(b, 4) + 4;
    if (nlen > 286 || ndist > 30) {
        return -1;
    }
    memset(cl, 0, sizeof(cl));
    for (i = 0; i < ncode; i++) {
        cl[cl_order[i]] = (uint8_t)bits(b, 3);
    }
    if (build(&codes, cl, 19, T_CODES) != 0) {
        return -1;
    }
    for (i = 0; i < nlen + ndist;) {
        int sym;
        unsigned rep;
        uint8_t l = 0;

        if (b->pos > b->limit || (sym = decode_slow(b, &codes)) < 0) {
            return -1;
        }
        if (sym < 16) {
            lens[i++] = (uint8_t)sym;
            continue;
        }
        if (sym == 16) {
            if (i == 0) {
                return -1;
            }
            l = lens[i - 1];
            rep = 3 + bits(b, 2);
        } else if (sym == 17) {
            rep = 3 + bits(b, 3);
        } else {
            rep = 11 + bits(b, 7);
        }
        if (i + rep > nlen + ndist) {
            return -1;
        }
        while (rep--) {
            lens[i++] = l;
        }
    }
    if (lens[256] == 0) {
        return -1;
    }
    if (build(lit, lens, (int)nlen, T_LIT) != 0 || build(dist, lens + nlen, (int)ndist, T_DIST) != 0) {
        return -1;
    }
    return 0;
}

int ls_deflate_last_block(const unsigned char *p, size_t len, uint64_t *last_hdr, uint64_t *end)
{
    struct br b = { p, len, 0, (uint64_t)len * 8 };
    struct huff lit, dist;

    for (;;) {
        uint64_t hdr = b.pos;
        unsigned h;

        if (b.pos + 3 > b.limit) {
            return -1;
        }
        h = bits(&b, 3);
        switch (h >> 1) {
        case 0: {   /* stored: LEN, NLEN from the next byte boundary, then LEN bytes */
            unsigned n;
            b.pos = (b.pos + 7) & ~(uint64_t)7;
            if (b.pos + 32 > b.limit) {
                return -1;
            }
            n = bits(&b, 16);
            if (bits(&b, 16) != (~n & 0xffffu)) {
                return -1;
            }
            b.pos += (uint64_t)n * 8;
            break;
        }
        case 1:
            if (fixed_tables(&lit, &dist) != 0 || skip_codes(&b, &lit, &dist) != 0) {
                return -1;
            }
            break;
        case 2:
            if (dynamic_tables(&b, &lit, &dist) != 0 || skip_codes(&b, &lit, &dist) != 0) {
                return -1;
            }
            break;
        default:
            return -1;
        }
        if (b.pos > b.limit) {
            return -1;
        }
        if (h & 1) {
            if ((b.pos + 7) / 8 != len) {
                return -1;
            }
            *last_hdr = hdr;
            *end = b.pos;
            return 0;
        }
    }
}
