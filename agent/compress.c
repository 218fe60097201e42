/*
 * compress.c - chunk compression and digests for uploads (see compress.h).
 *
 * One streaming pass: read a block from the chunk reader, deflate it into
 * a fixed output block, hash what comes out (MD5 for Content-MD5, SHA-256
 * for x-amz-content-sha256) and write it. Memory stays at two 128 KiB
 * blocks plus zlib's state (~256 KiB at memLevel 8) whatever the chunk
 * size, and the payload is read exactly once.
 *
 * zlib rather than libdeflate: libdeflate is faster per byte but only
 * compresses whole buffers, and its output always ends with a final block,
 * so separately compressed pieces cannot be stitched into the single gzip
 * member the format contract promises without re-encoding bit streams.
 * zlib's deflate with windowBits 31 streams one member in bounded memory.
 */
#include "compress.h"
#include "buf.h"

#include <zlib.h>
#include <openssl/evp.h>

#define CZ_BLOCK (128 * 1024)

struct cz_sink {
    int fd;                 /* write here when buf is NULL */
    struct ls_buf *buf;     /* else append here */
    EVP_MD_CTX *md5;
    EVP_MD_CTX *sha;
    uint64_t size;
};

static int sink_put(struct cz_sink *s, const void *p, size_t n, char *err, size_t errlen)
{
    if (n == 0) {
        return LS_OK;
    }
    if (s->md5 && (EVP_DigestUpdate(s->md5, p, n) != 1 || EVP_DigestUpdate(s->sha, p, n) != 1)) {
        snprintf(err, errlen, "EVP_DigestUpdate() failed");
        return LS_ERROR;
    }
    if (s->buf == NULL) {
        if (ls_write_all(s->fd, p, n) != LS_OK) {
            snprintf(err, errlen, "write() failed (%d: %s)", errno, strerror(errno));
            return LS_ERROR;
        }
    } else if (ls_buf_append(s->buf, p, n) != LS_OK) {
        snprintf(err, errlen, "output buffer limit of %zu bytes reached", s->buf->max);
        return LS_ERROR;
    }
    s->size += n;
    return LS_OK;
}

static int digest_init(struct cz_sink *s, bool want, char *err, size_t errlen)
{
    s->md5 = NULL;
    s->sha = NULL;
    if (!want) {
        return LS_OK;
    }
    s->md5 = EVP_MD_CTX_new();
    s->sha = EVP_MD_CTX_new();
    if (s->md5 == NULL || s->sha == NULL || EVP_DigestInit_ex(s->md5, EVP_md5(), NULL) != 1
        || EVP_DigestInit_ex(s->sha, EVP_sha256(), NULL) != 1) {
        snprintf(err, errlen, "EVP_DigestInit_ex() failed");
        return LS_ERROR;
    }
    return LS_OK;
}

static int digest_final(struct cz_sink *s, struct ls_digest *dig, char *err, size_t errlen)
{
    unsigned n;

    if (dig == NULL) {
        return LS_OK;
    }
    if (EVP_DigestFinal_ex(s->md5, dig->md5, &n) != 1 || EVP_DigestFinal_ex(s->sha, dig->sha256, &n) != 1) {
        snprintf(err, errlen, "EVP_DigestFinal_ex() failed");
        return LS_ERROR;
    }
    dig->size = s->size;
    return LS_OK;
}

static int run(enum ls_compress_algo algo, int level, ls_read_cb read_cb, void *arg,
               struct cz_sink *s, struct ls_digest *dig, char *err, size_t errlen)
{
    unsigned char *in = NULL, *out = NULL;
    z_stream z;
    bool zinit = false;
    uint64_t in_size = 0;
    int rc = LS_ERROR;
    long n;
    char dummy[8];

    if (err == NULL || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    if (algo != LS_COMPRESS_TEXT && algo != LS_COMPRESS_GZIP) {
        snprintf(err, errlen, "unknown compression %d", (int)algo);
        return LS_ERROR;
    }
    if (level < 0) {
        level = 6;
    }
    if (level < 1 || level > 9) {
        snprintf(err, errlen, "compression level %d is not in 1..9", level);
        return LS_ERROR;
    }
    if (digest_init(s, dig != NULL, err, errlen) != LS_OK) {
        goto out;
    }
    in = ls_malloc(CZ_BLOCK);
    if (algo == LS_COMPRESS_GZIP) {
        out = ls_malloc(CZ_BLOCK);
        memset(&z, 0, sizeof(z));
        if (deflateInit2(&z, level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            snprintf(err, errlen, "deflateInit2() failed");
            goto out;
        }
        zinit = true;
    }
    for (;;) {
        int flush;
        n = read_cb(arg, in, CZ_BLOCK);
        if (n < 0) {
            if (err[0] == '\0') {
                snprintf(err, errlen, "reading the chunk failed (%d: %s)", errno, strerror(errno));
            }
            goto out;
        }
        in_size += (uint64_t)n;
        if (algo == LS_COMPRESS_TEXT) {
            if (n == 0) {
                break;
            }
            if (sink_put(s, in, (size_t)n, err, errlen) != LS_OK) {
                goto out;
            }
            continue;
        }
        flush = n == 0 ? Z_FINISH : Z_NO_FLUSH;
        z.next_in = in;
        z.avail_in = (uInt)n;
        do {
            int zr;
            z.next_out = out;
            z.avail_out = CZ_BLOCK;
            zr = deflate(&z, flush);
            if (zr == Z_STREAM_ERROR) {
                snprintf(err, errlen, "deflate() failed");
                goto out;
            }
            if (sink_put(s, out, CZ_BLOCK - z.avail_out, err, errlen) != LS_OK) {
                goto out;
            }
        } while (z.avail_out == 0);
        if (flush == Z_FINISH) {
            break;
        }
    }
    if (digest_final(s, dig, err, errlen) != LS_OK) {
        goto out;
    }
    if (dig) {
        dig->in_size = in_size;
    }
    rc = LS_OK;
out:
    if (zinit) {
        deflateEnd(&z);
    }
    EVP_MD_CTX_free(s->md5);
    EVP_MD_CTX_free(s->sha);
    ls_free(in);
    ls_free(out);
    return rc;
}

int ls_compress_stream(enum ls_compress_algo algo, int level, ls_read_cb read_cb, void *arg,
                       int out_fd, struct ls_digest *dig, char *err, size_t errlen)
{
    struct cz_sink s;

    memset(&s, 0, sizeof(s));
    s.fd = out_fd;
    return run(algo, level, read_cb, arg, &s, dig, err, errlen);
}

int ls_compress_to_buf(enum ls_compress_algo algo, int level, ls_read_cb read_cb, void *arg,
                       struct ls_buf *out, struct ls_digest *dig, char *err, size_t errlen)
{
    struct cz_sink s;
    size_t start = out->len;
    int rc;

    memset(&s, 0, sizeof(s));
    s.fd = -1;
    s.buf = out;
    rc = run(algo, level, read_cb, arg, &s, dig, err, errlen);
    if (rc != LS_OK) {
        out->len = start;
    }
    return rc;
}

int ls_digest_fd(int fd, struct ls_digest *dig)
{
    struct cz_sink s;
    unsigned char *buf;
    char err[128];
    off_t off = 0;
    int rc = LS_ERROR;

    memset(&s, 0, sizeof(s));
    if (digest_init(&s, true, err, sizeof(err)) != LS_OK) {
        goto out;
    }
    buf = ls_malloc(CZ_BLOCK);
    for (;;) {
        ssize_t n = pread(fd, buf, CZ_BLOCK, off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            ls_free(buf);
            goto out;
        }
        if (n == 0) {
            break;
        }
        if (EVP_DigestUpdate(s.md5, buf, (size_t)n) != 1 || EVP_DigestUpdate(s.sha, buf, (size_t)n) != 1) {
            ls_free(buf);
            goto out;
        }
        off += n;
        s.size += (uint64_t)n;
    }
    ls_free(buf);
    if (digest_final(&s, dig, err, sizeof(err)) == LS_OK) {
        dig->in_size = s.size;
        rc = LS_OK;
    }
out:
    EVP_MD_CTX_free(s.md5);
    EVP_MD_CTX_free(s.sha);
    return rc;
}

void ls_hex(const unsigned char *p, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[2 * n] = '\0';
}

void ls_base64(const unsigned char *p, size_t n, char *out)
{
    static const char tb[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i;
    char *o = out;

    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8) | p[i + 2];
        *o++ = tb[v >> 18];
        *o++ = tb[(v >> 12) & 63];
        *o++ = tb[(v >> 6) & 63];
        *o++ = tb[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) {
            v |= (uint32_t)p[i + 1] << 8;
        }
        *o++ = tb[v >> 18];
        *o++ = tb[(v >> 12) & 63];
        *o++ = i + 1 < n ? tb[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
}
