/*
 * deflate_ref.h - the reference for ls_deflate_last_block (tests only): zlib's inflate in
 * Z_BLOCK mode, which stops after every block and reports the bit position (the way
 * zlib's examples/gzjoin.c finds a stream's last block). 0 with the final block's header
 * bit and the bit after its end-of-block code if p[0..len) is one complete raw deflate
 * stream with nothing after its last byte; -1 otherwise.
 */
#ifndef LS_DEFLATE_REF_H
#define LS_DEFLATE_REF_H

#include <stdint.h>
#include <stdlib.h>
#include <zlib.h>

static int deflate_ref_last_block(const unsigned char *p, size_t len, uint64_t *last_hdr,
                                  uint64_t *end)
{
    static unsigned char scratch[64 * 1024];
    z_stream z = { 0 };
    uint64_t hdr = 0;
    int rc = -1;

    if (inflateInit2(&z, -15) != Z_OK) {
        abort();
    }
    z.next_in = (unsigned char *)p;
    z.avail_in = (uInt)len;
    for (;;) {
        int zr;
        z.next_out = scratch;
        z.avail_out = sizeof(scratch);
        zr = inflate(&z, Z_BLOCK);
        if (zr != Z_OK && zr != Z_STREAM_END) {
            break;
        }
        if (z.data_type & 128) {
            uint64_t bit = (uint64_t)(z.next_in - p) * 8 - (uint64_t)(z.data_type & 7);
            if (z.data_type & 64) {
                if ((bit + 7) / 8 == len) {
                    *last_hdr = hdr;
                    *end = bit;
                    rc = 0;
                }
                break;
            }
            hdr = bit;
        } else if (zr == Z_STREAM_END || (z.avail_in == 0 && z.avail_out != 0)) {
            break;
        }
    }
    inflateEnd(&z);
    return rc;
}

#endif
