/*
 * fuzz_framing.c - libFuzzer target for the stream framing of the network inputs (ls_framer:
 * delimiter and RFC 6587 octet counting), driven the way agent/net.c drives it: bytes arrive
 * in pieces of arbitrary size into a buffer bounded like a connection's, frames are taken
 * until more bytes are needed, the rest is kept.
 *
 * Input: byte 0 picks the framing (newline, "\r\n", octet counting) and the frame limit;
 * byte 1 seeds the piece sizes; the rest is the stream. Checks: every frame is within the
 * limit and inside the buffer, the buffer never holds more than the limit allows, and
 * progress is always made. Build: make fuzz; run:
 * build/fuzz/bin/fuzz_framing tests/fuzz/corpus/framing
 */
#include "net.h"
#include "log.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t limits[4] = { 1, 7, 64, 1000 };
    struct ls_framer f;
    char *buf;
    size_t cap, len = 0, pos = 2, frames = 0;
    unsigned seed;

    if (size < 2) {
        return 0;
    }
    ls_log_level = LS_LOG_FATAL;
    memset(&f, 0, sizeof(f));
    f.octet = (data[0] & 3) == 2;
    f.delim = (data[0] & 3) == 1 ? "\r\n" : "\n";
    f.dlen = strlen(f.delim);
    f.max = limits[(data[0] >> 2) & 3];
    seed = data[1];
    cap = f.max + f.dlen + 32;    /* as net.c sizes a connection's buffer */
    buf = malloc(cap);
    while (pos < size) {
        size_t piece = 1 + (seed = seed * 1103515245u + 12345u) % 97;
        size_t off = 0;

        if (piece > cap - len) {
            piece = cap - len;
        }
        if (piece > size - pos) {
            piece = size - pos;
        }
        if (piece == 0) {
            abort();      /* the buffer is full and the framer took nothing: a stuck peer */
        }
        memcpy(buf + len, data + pos, piece);
        len += piece;
        pos += piece;
        for (;;) {
            const char *fr = NULL;
            size_t flen = 0, dropped = 0, before = off;
            int rc = ls_framer_next(&f, buf, len, &off, &fr, &flen, &dropped);

            if (off > len || off < before) {
                abort();
            }
            if (rc == LS_OK) {
                if (flen > f.max || fr < buf || fr + flen > buf + len || off == before) {
                    abort();
                }
                frames++;
                continue;
            }
            if (rc == LS_DECLINED) {
                continue;
            }
            if (rc == LS_ERROR) {
                free(buf);
                return 0;        /* broken octet counting: net.c closes the connection */
            }
            break;
        }
        memmove(buf, buf + off, len - off);
        len -= off;
        if (len >= cap) {
            abort();
        }
    }
    free(buf);
    (void)frames;
    return 0;
}
