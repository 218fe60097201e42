/*
 * compress.h - compression of sealed chunks, off the event-loop thread.
 *
 * gzip output is always a single gzip member (one stream) that `gzip -t`
 * and `zcat` accept, whatever the size, produced in bounded memory by
 * streaming. zstd output is one zstd frame (with its checksum), xz output
 * one .xz stream (CRC64 check), also streamed; `zstd -t` and `xz -t` accept
 * them. The digests S3 needs (MD5 for Content-MD5, SHA-256 for
 * x-amz-content-sha256) are computed over the output in the same pass, so
 * the payload is read once.
 */
#ifndef LS_COMPRESS_H
#define LS_COMPRESS_H

#include "common.h"

enum ls_compress_algo {
    LS_COMPRESS_TEXT = 0,   /* no compression */
    LS_COMPRESS_GZIP,
    LS_COMPRESS_ZSTD,
    LS_COMPRESS_XZ,
};

struct ls_digest {
    unsigned char md5[16];
    unsigned char sha256[32];
    uint64_t size;          /* output bytes */
    uint64_t in_size;       /* input bytes */
};

/* read_cb returns bytes read, 0 at end, -1 on error. */
typedef long (*ls_read_cb)(void *arg, void *buf, size_t n);

/*
 * Read everything from read_cb, compress with algo at level, write to out_fd.
 * Levels: gzip 1-9, zstd 1-22, xz 0-9 (the presets of `xz -0`...`-9`); -1
 * is the library's default (gzip 6, zstd 3, xz 6); ls_compress_level_ok
 * tells. Memory grows with the level: zstd 3 takes 3.5 MiB and xz 0 2.7 MiB,
 * but xz 6 93 MiB, xz 9 673 MiB and zstd 22 778 MiB per compressing thread. dig may be NULL. LS_OK / LS_ERROR (errno or
 * a message in err). Blocking: call it from ls_work_submit's work function.
 */
int ls_compress_stream(enum ls_compress_algo algo, int level, ls_read_cb read_cb, void *arg,
                       int out_fd, struct ls_digest *dig, char *err, size_t errlen);
/* The same for an input of about expect bytes (0: unknown): a gzip stream known to be
 * longer than ls_compress_threads' `after` pieces is compressed on several threads from
 * its second piece on. early_fd (-1: none) is a side file ls_gz_early wrote for this input
 * at this level: the pieces it holds that match (length, CRC-32) are taken from it.
 * early_trusted: its pieces were read from this very input in this process (and expect is
 * its exact size), so a piece it holds is not read again to be checked: read_cb is then
 * called with a NULL buffer to skip it. */
int ls_compress_stream_expect(enum ls_compress_algo algo, int level, uint64_t expect,
                              int early_fd, bool early_trusted, ls_read_cb read_cb, void *arg,
                              int out_fd, struct ls_digest *dig, char *err, size_t errlen);
/*
 * Early gzip pieces of a growing input (a chunk being filled, then queued), compressed by
 * background threads until the consumer starts, into out_fd (append-only; owned from here on) for a later
 * ls_compress_stream_expect at the same level to take. read_cb(arg) reads the input from
 * its start, only ever within what ls_gz_early_avail allowed, on a background thread;
 * free_arg(arg) is called when it is no longer needed. NULL (nothing to do: out_fd stays
 * the caller's) with one CPU, where it would only move work earlier. avail: bytes of the
 * input readable now (the loop thread, after each append). end: no more (the chunk's write
 * starts or it is dropped): a piece in progress finishes, the rest is left to the consumer;
 * e is freed. Neither blocks on compression.
 */
struct ls_gz_early;
struct ls_gz_early *ls_gz_early_new(int level, ls_read_cb read_cb, void *arg,
                                    void (*free_arg)(void *arg), int out_fd);
void ls_gz_early_avail(struct ls_gz_early *e, uint64_t avail);
void ls_gz_early_end(struct ls_gz_early *e);
/* Pieces taken from early side files so far, process-wide (tests, A/B runs). */
uint64_t ls_gz_early_taken(void);
/*
 * Load the library algo needs (libzstd, liblzma: they are not linked, see
 * compress.c) unless that was done; safe from any thread. Outputs call it in
 * init so that a missing package is a configuration error; ls_compress_stream
 * calls it too. LS_OK, or LS_ERROR naming the Debian package in err.
 */
int ls_compress_load(enum ls_compress_algo algo, char *err, size_t errlen);
struct ls_buf;
/*
 * Append src[0..n) to dst as one zstd frame (no checksum: Parquet pages, whose format
 * has its own), through the same dlopen'd libzstd. *cctx (opaque, start NULL) is made
 * with p on first use and reused; free it with ls_zstd_frame_free. LS_OK / LS_ERROR + err.
 * p->table_log > 0 caps the match finder's hash and chain tables at 2^table_log entries
 * each: from level 6 on their default grows to 2^21-2^22 (16-32 MB a context), which a
 * page of about 1 MiB does not need. min_match and search_log > 0 replace the level's
 * own; 0 leaves them.
 */
struct ls_zstd_params {
    int level, table_log, min_match, search_log;
};
int ls_zstd_frame(void **cctx, const struct ls_zstd_params *p, const void *src, size_t n,
                  struct ls_buf *dst, char *err, size_t errlen);
void ls_zstd_frame_free(void *cctx);
/* Whether level fits algo (see ls_compress_stream); if not, "lo-hi" in range. */
bool ls_compress_level_ok(enum ls_compress_algo algo, int level, char *range, size_t rangelen);
/* p[0..n) compressed (or copied, LS_COMPRESS_TEXT) to out_fd; *written: the bytes written.
 * For request bodies built in memory (loki, datadog). Blocking. LS_OK / LS_ERROR (err). */
int ls_compress_mem(enum ls_compress_algo algo, int level, const void *p, size_t n, int out_fd,
                    uint64_t *written, char *err, size_t errlen);
/* The same into memory (out is appended to). */
struct ls_buf;
int ls_compress_to_buf(enum ls_compress_algo algo, int level, ls_read_cb read_cb, void *arg,
                       struct ls_buf *out, struct ls_digest *dig, char *err, size_t errlen);
/*
 * gzip streams longer than `after` 1 MiB pieces (8 by default) are compressed
 * by up to n threads (the calling one and n - 1 helpers, counted process-wide;
 * 1 to 4). The default n is the number of CPUs the process may run on
 * (taskset, cpusets); tests set both.
 */
void ls_compress_threads(int n, int after);
/*
 * CRC-32 (zlib's and gzip's: crc32(0, p, n) of zlib gives the same value, and
 * crc may carry a previous call's result on), with libdeflate's carry-less
 * multiply code: the file buffer's frame checks use it.
 */
uint32_t ls_crc32(uint32_t crc, const void *p, size_t n);
/* Digests of a whole file (for uploads of uncompressed chunks / resume). */
int ls_digest_fd(int fd, struct ls_digest *dig);

void ls_hex(const unsigned char *p, size_t n, char *out /* 2n+1 */);
/* Lower-case hex SHA-512 of the n parts one after another ("" when libcrypto fails): the
 * forward protocol's handshake digests. */
void ls_sha512_hex(const void *const *parts, const size_t *lens, int n, char out[129]);
/* base64 (standard alphabet, padded); out needs 4*((n+2)/3)+1 bytes. */
void ls_base64(const unsigned char *p, size_t n, char *out);

#endif
