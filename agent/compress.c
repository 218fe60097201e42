/*
 * compress.c - chunk compression and digests for uploads (see compress.h).
 *
 * One streaming pass: read a piece from the chunk reader, deflate it, hash
 * what comes out (MD5 for Content-MD5, SHA-256 for x-amz-content-sha256)
 * and write it. The payload is read exactly once and memory is bounded by
 * the piece size, whatever the chunk size.
 *
 * gzip uses libdeflate, not zlib's streaming deflate: at the same level it
 * costs about 0.65x the CPU of `gzip -6` (zlib: 0.87x) for slightly smaller
 * output, and compression is most of a log shipper's CPU. libdeflate only
 * compresses whole buffers, and each result ends with a final block
 * (BFINAL=1), so pieces of CZ_PIECE bytes are compressed separately and
 * stitched into the one gzip member compress.h promises: for every piece
 * but the last, gz_unfinal() clears the BFINAL bit of its last block and
 * appends an empty stored block (the 00 00 FF FF of zlib's Z_SYNC_FLUSH),
 * which ends the piece on a byte boundary so the next piece's bytes follow
 * as they are. A piece does not refer back into the previous one (it was
 * compressed alone), which a decoder allows; the cost is a dictionary reset
 * every piece. The piece size trades memory (an input piece and its output
 * bound live at once, per compressing thread) against size: on the bench's
 * JSON lines 2 MiB -> 1 MiB pieces cost 0.4% more output (512 KiB: 1.4%,
 * 256 KiB: 3.5%) and save 1.3 MB of peak RSS with the memory buffer.
 * Where the last block starts is only known by walking the stream:
 * ls_deflate_last_block (deflate_walk.c) skips through the blocks without
 * decoding them (zlib's inflate in Z_BLOCK mode, the technique of zlib's
 * examples/gzjoin.c, did it before at about 11% of an S3 backlog's CPU;
 * libdeflate cannot end a stream unfinished). The CRC-32 of the
 * trailer comes from libdeflate_crc32 over each piece, joined with zlib's
 * crc32_combine. Since pieces are independent, they are compressed (and
 * walked) on several threads at once and written in order (see gz_par).
 *
 * zstd and xz need none of this: libzstd and liblzma compress streams, so
 * the chunk goes through one encoder in CZ_BLOCK pieces and comes out as
 * one zstd frame or one .xz stream. No dictionary reset, and a multipart
 * upload's parts are byte ranges of that one stream (s3_upload.c), so the
 * object decompresses as a whole whatever the part size. zstd frames carry
 * their content checksum, as the zstd command writes them; xz streams
 * CRC64, as xz writes them. Both libraries are loaded when a configuration
 * first asks for them (dynlib.h): linked, they cost every agent 0.3 MB of
 * idle RSS for a choice most configurations do not make.
 */
#include "compress.h"
#include "buf.h"
#include "deflate_walk.h"
#include "dynlib.h"

#include <libdeflate.h>
#include <pthread.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>
#include <openssl/evp.h>

#define CZ_BLOCK (128 * 1024)
/* gzip: input bytes compressed by one libdeflate call (see the top comment) */
#define CZ_PIECE (1024 * 1024)

/* libzstd's and liblzma's functions that compress.c calls, filled by ls_compress_load */
static struct {
    ZSTD_CCtx *(*createCCtx)(void);
    size_t (*freeCCtx)(ZSTD_CCtx *cctx);
    size_t (*setParameter)(ZSTD_CCtx *cctx, ZSTD_cParameter param, int value);
    size_t (*compressStream2)(ZSTD_CCtx *cctx, ZSTD_outBuffer *output, ZSTD_inBuffer *input,
                              ZSTD_EndDirective end_op);
    unsigned (*isError)(size_t code);
    const char *(*getErrorName)(size_t code);
} zs;

static struct {
    lzma_ret (*easy_encoder)(lzma_stream *strm, uint32_t preset, lzma_check check);
    lzma_ret (*code)(lzma_stream *strm, lzma_action action);
    void (*end)(lzma_stream *strm);
} xz;

static const struct ls_dynsym zs_syms[] = {
    { "ZSTD_createCCtx", offsetof(__typeof__(zs), createCCtx) },
    { "ZSTD_freeCCtx", offsetof(__typeof__(zs), freeCCtx) },
    { "ZSTD_CCtx_setParameter", offsetof(__typeof__(zs), setParameter) },
    { "ZSTD_compressStream2", offsetof(__typeof__(zs), compressStream2) },
    { "ZSTD_isError", offsetof(__typeof__(zs), isError) },
    { "ZSTD_getErrorName", offsetof(__typeof__(zs), getErrorName) },
};

static const struct ls_dynsym xz_syms[] = {
    { "lzma_easy_encoder", offsetof(__typeof__(xz), easy_encoder) },
    { "lzma_code", offsetof(__typeof__(xz), code) },
    { "lzma_end", offsetof(__typeof__(xz), end) },
};

/* the SONAMEs of the ABIs zstd.h and lzma.h describe, as Debian 12 ships them */
static struct ls_dynlib zs_lib = { .soname = "libzstd.so.1", .package = "libzstd1",
                                   .syms = zs_syms, .nsyms = LS_ARRAY_LEN(zs_syms), .table = &zs };
static struct ls_dynlib xz_lib = { .soname = "liblzma.so.5", .package = "liblzma5",
                                   .syms = xz_syms, .nsyms = LS_ARRAY_LEN(xz_syms), .table = &xz };

int ls_compress_load(enum ls_compress_algo algo, char *err, size_t errlen)
{
    if (algo == LS_COMPRESS_ZSTD) {
        return ls_dynlib_load(&zs_lib, err, errlen);
    }
    if (algo == LS_COMPRESS_XZ) {
        return ls_dynlib_load(&xz_lib, err, errlen);
    }
    return LS_OK;
}

struct cz_sink {
    int fd;                 /* write here when buf is NULL */
    struct ls_buf *buf;     /* else append here */
    EVP_MD_CTX *md5;
    EVP_MD_CTX *sha;
    uint64_t size;
    uint64_t expect;        /* the input's expected size, 0: unknown (gz_helpers_take) */
    int early_fd;           /* gzip: a side file of early pieces (ls_gz_early), -1: none */
    uint64_t early_off;     /* its next record */
    bool early_done;        /* nothing more to take from it */
    bool early_trusted;     /* its pieces were read from this input: no need to read it again */
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

/* The message for a failed read, unless the reader left its own in err. */
static void read_failed(char *err, size_t errlen)
{
    if (err[0] == '\0') {
        snprintf(err, errlen, "reading the chunk failed (%d: %s)", errno, strerror(errno));
    }
}

/* Read up to n bytes (short reads joined). Bytes read, -1 on error; fewer than n: end of input. */
static long read_full(ls_read_cb read_cb, void *arg, unsigned char *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        long k = read_cb(arg, buf + got, n - got);
        if (k < 0) {
            return -1;
        }
        if (k == 0) {
            break;
        }
        got += (size_t)k;
    }
    return (long)got;
}

/*
 * p[0..len) is one complete raw deflate stream from libdeflate: the bit
 * position of its last block's header (*last_hdr, the BFINAL bit) and the bit
 * just after that block's end-of-block code (*end). LS_OK, or LS_ERROR if p
 * is not what it should be.
 */
static int gz_find_last(const unsigned char *p, size_t len, uint64_t *last_hdr, uint64_t *end)
{
    if (ls_deflate_last_block(p, len, last_hdr, end) != 0 ||
        !(p[*last_hdr / 8] & (1u << (*last_hdr % 8)))) {
        return LS_ERROR;
    }
    return LS_OK;
}

/*
 * Make p[0..*len), whose last block gz_find_last located, a non-final part
 * of a longer stream ending on a byte boundary: clear the BFINAL bit of its
 * last block, then append an empty stored block (BFINAL=0 BTYPE=00 in the
 * 3 bits after the end-of-block code, zero padding to the byte boundary,
 * LEN=0000 NLEN=FFFF). p has room for 5 more bytes.
 */
static void gz_unfinal(unsigned char *p, size_t *len, uint64_t last_hdr, uint64_t end)
{
    size_t n, i;

    p[last_hdr / 8] &= (unsigned char)~(1u << (last_hdr % 8));
    if (end % 8) {
        p[end / 8] &= (unsigned char)((1u << (end % 8)) - 1);   /* padding bits become the header */
    }
    n = (size_t)((end + 3 + 7) / 8);
    for (i = *len; i < n; i++) {
        p[i] = 0;
    }
    memcpy(p + n, "\x00\x00\xff\xff", 4);
    *len = n + 4;
}

uint32_t ls_crc32(uint32_t crc, const void *p, size_t n)
{
    return libdeflate_crc32(crc, p, n);
}

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/*
 * Parallel gzip. The pieces of one member are independent until they are
 * joined, so the thread that compresses a chunk (a worker of the pool) lends
 * pieces to helper threads and writes the results in order: with two cores
 * a backlog's chunk is compressed on both while the loop thread parses.
 * Helpers are started per stream, only once a stream has a second piece,
 * and are counted process-wide (at most gz_threads - 1 of them, gz_threads
 * being the CPUs the process may run on, capped at GZ_MAX_THREADS), so memory stays bounded
 * by one input piece, its output and a libdeflate compressor per compressing
 * thread whatever flush_thread_count is. A stream that finds no helper free
 * compresses alone, as before. Helpers join only after the first
 * gz_par_after pieces (8 MiB): the memory buffer's chunks (8 MiB by default)
 * stay on one thread, since with two of them in memory a helper's piece and
 * compressor (1.7 MB) would take out_s3's default configuration past the
 * 32 MB the README promises, and a backlog's file-buffer chunks are larger.
 * A stream whose caller says it is longer than that (ls_compress_stream_expect)
 * takes them from its second piece.
 */
#define GZ_MAX_THREADS 4

enum { GZ_FREE, GZ_FILLED, GZ_BUSY, GZ_DONE, GZ_FAILED };

struct gz_slot {
    unsigned char *in, *out;    /* CZ_PIECE; compress bound + 5 */
    size_t n, olen;
    uint32_t crc;
    uint64_t last_hdr, end;     /* gz_find_last's answer */
    uint64_t seq;
    int state;
};

/* what one compressing thread owns */
struct gz_worker {
    struct libdeflate_compressor *c;
};

struct gz_par {
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* any slot's state changed, or quit */
    struct gz_slot slot[GZ_MAX_THREADS];
    int nslot;
    int level;
    size_t cap;
    bool quit;
};

static pthread_mutex_t gz_budget_mu = PTHREAD_MUTEX_INITIALIZER;
static int gz_threads;          /* 0: not decided yet */
static int gz_helpers_busy;
static uint64_t gz_par_after = 8;

void ls_compress_threads(int n, int after)
{
    pthread_mutex_lock(&gz_budget_mu);
    gz_threads = n < 1 ? 1 : n > GZ_MAX_THREADS ? GZ_MAX_THREADS : n;
    gz_par_after = after < 1 ? 1 : (uint64_t)after;
    pthread_mutex_unlock(&gz_budget_mu);
}

/* gz_threads, decided on first use. Called with gz_budget_mu held. */
static void gz_threads_decide(void)
{
    if (gz_threads == 0) {
        /* the CPUs this process may run on (taskset, cgroup cpusets), not all that are online */
        cpu_set_t set;
        int cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set)
                                                                : (int)sysconf(_SC_NPROCESSORS_ONLN);
        gz_threads = cpus < 1 ? 1 : cpus > GZ_MAX_THREADS ? GZ_MAX_THREADS : cpus;
    }
}

static int gz_threads_decided(void)
{
    int n;

    pthread_mutex_lock(&gz_budget_mu);
    gz_threads_decide();
    n = gz_threads;
    pthread_mutex_unlock(&gz_budget_mu);
    return n;
}

/* Up to want helpers from the process-wide budget for a stream that has read
 * nread pieces and has more, expecting expect bytes in all (0: unknown); how many
 * were granted: none before gz_par_after pieces unless the stream is known to be
 * longer (a file buffer's chunk: why wait, when the limit is for the memory
 * buffer's 8 MiB chunks); a stream that found the budget taken asks again at its
 * next piece. */
static int gz_helpers_take(int want, uint64_t nread, uint64_t expect)
{
    int got;

    pthread_mutex_lock(&gz_budget_mu);
    if (nread < gz_par_after && expect <= gz_par_after * CZ_PIECE) {
        pthread_mutex_unlock(&gz_budget_mu);
        return 0;
    }
    gz_threads_decide();
    got = gz_threads - 1 - gz_helpers_busy;
    got = got < 0 ? 0 : got > want ? want : got;
    gz_helpers_busy += got;
    pthread_mutex_unlock(&gz_budget_mu);
    return got;
}

static void gz_helpers_give(int n)
{
    pthread_mutex_lock(&gz_budget_mu);
    gz_helpers_busy -= n;
    pthread_mutex_unlock(&gz_budget_mu);
}

static int gz_worker_init(struct gz_worker *w, int level)
{
    memset(w, 0, sizeof(*w));
    w->c = libdeflate_alloc_compressor(level);
    return w->c == NULL ? LS_ERROR : LS_OK;
}

static void gz_worker_free(struct gz_worker *w)
{
    libdeflate_free_compressor(w->c);
}

/* Compress a slot's piece and locate its last block: GZ_DONE or GZ_FAILED. */
static int gz_piece(struct gz_worker *w, struct gz_slot *sl, size_t cap)
{
    sl->crc = libdeflate_crc32(0, sl->in, sl->n);
    sl->olen = libdeflate_deflate_compress(w->c, sl->in, sl->n, sl->out, cap);
    if (sl->olen == 0
        || gz_find_last(sl->out, sl->olen, &sl->last_hdr, &sl->end) != LS_OK) {
        return GZ_FAILED;
    }
    return GZ_DONE;
}

/* The oldest piece waiting to be compressed, or NULL. Called with mu held. */
static struct gz_slot *gz_next_filled(struct gz_par *p)
{
    struct gz_slot *best = NULL;
    int i;

    for (i = 0; i < p->nslot; i++) {
        if (p->slot[i].state == GZ_FILLED && (best == NULL || p->slot[i].seq < best->seq)) {
            best = &p->slot[i];
        }
    }
    return best;
}

/* Compress sl (taken as GZ_BUSY under mu) with w; returns with mu held again. */
static void gz_run_slot(struct gz_par *p, struct gz_worker *w, struct gz_slot *sl)
{
    int st;

    sl->state = GZ_BUSY;
    pthread_mutex_unlock(&p->mu);
    st = gz_piece(w, sl, p->cap);
    pthread_mutex_lock(&p->mu);
    sl->state = st;
    pthread_cond_broadcast(&p->cv);
}

static void *gz_helper_main(void *arg)
{
    struct gz_par *p = arg;
    struct gz_worker w;
    bool ok = gz_worker_init(&w, p->level) == LS_OK;

    pthread_setname_np(pthread_self(), "logship-gzhelp");

    pthread_mutex_lock(&p->mu);
    /* without its compressor a helper takes nothing: the stream's own thread does the work */
    while (ok && !p->quit) {
        struct gz_slot *sl = gz_next_filled(p);
        if (sl == NULL) {
            pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        gz_run_slot(p, &w, sl);
    }
    pthread_mutex_unlock(&p->mu);
    gz_worker_free(&w);
    return NULL;
}

/* The slot holding piece seq, or with seq UINT64_MAX a free one. Called with mu held. */
static struct gz_slot *gz_slot_of(struct gz_par *p, uint64_t seq)
{
    int i;

    for (i = 0; i < p->nslot; i++) {
        struct gz_slot *sl = &p->slot[i];
        if (seq == UINT64_MAX ? sl->state == GZ_FREE : sl->state != GZ_FREE && sl->seq == seq) {
            return sl;
        }
    }
    return NULL;
}

/*
 * Wait until sl is compressed, compressing pieces meanwhile (sl first) so
 * the stream's own thread is one of the compressing threads. mu held.
 */
static int gz_wait_slot(struct gz_par *p, struct gz_worker *w, struct gz_slot *sl)
{
    while (sl->state != GZ_DONE && sl->state != GZ_FAILED) {
        struct gz_slot *todo = sl->state == GZ_FILLED ? sl : gz_next_filled(p);
        if (todo) {
            gz_run_slot(p, w, todo);
        } else {
            pthread_cond_wait(&p->cv, &p->mu);
        }
    }
    return sl->state == GZ_DONE ? LS_OK : LS_ERROR;
}

/* ------------------------------------------------------------------ */
/* Early pieces                                                        */
/*
 * A backlog's file-buffer chunks fill for seconds while the loop thread parses, and were
 * compressed only once enqueued: on two cores the compressing threads waited for the first
 * chunks, then compressed what was left once parsing ended (2 cores took 0.72x the wall
 * time of 1). Pieces are independent, so a chunk's full pieces are compressed while it
 * fills and while it waits in the queue (buffer.c ends that when its write starts):
 * background threads (one less than gz_threads; none with one CPU, where it
 * would only move the same work earlier) read each full piece back from the chunk file,
 * compress it and append a record to a side file: a header of GZE_HDR bytes (magic, level,
 * piece number, input length and CRC-32, output length and CRC-32, gz_find_last's two bit
 * positions) and the piece's complete deflate stream. gz_run takes piece k from there when
 * the next record is piece k at the same level, length and input CRC and its bytes match
 * their CRC; anything else (no file, a short or stale one, a piece the background did not
 * reach) is compressed as before. The side file is a cache: losing or damaging it costs
 * CPU, never bytes. One chunk's pieces are compressed in order by one thread at a time
 * (several chunks on several threads), so each record follows the previous one.
 */
#define GZE_MAGIC 0x5047534cu   /* "LSGP" little-endian */
#define GZE_HDR 48

struct ls_gz_early {
    ls_read_cb read_cb;     /* reads the payload from its start (the runner only) */
    void *arg;
    void (*free_arg)(void *arg);
    int out_fd;
    int level;
    uint64_t avail;         /* payload bytes that may be read now */
    uint64_t done;          /* payload bytes compressed (or given up) */
    uint64_t seq;
    bool queued, running, ended, failed;
    struct ls_gz_early *next;
};

static pthread_mutex_t gze_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gze_cv = PTHREAD_COND_INITIALIZER;
static struct ls_gz_early *gze_head, *gze_tail;
static int gze_threads, gze_idle;
static uint64_t gze_taken;

uint64_t ls_gz_early_taken(void)
{
    return __atomic_load_n(&gze_taken, __ATOMIC_RELAXED);
}

static void gze_free(struct ls_gz_early *e)
{
    if (e->free_arg) {
        e->free_arg(e->arg);
    }
    if (e->out_fd >= 0) {
        close(e->out_fd);
    }
    ls_free(e);
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static uint32_t get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const unsigned char *p)
{
    return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/* One piece of e into its side file; the runner thread, without gze_mu. */
static bool gze_piece(struct ls_gz_early *e, struct gz_worker *w, unsigned char *in,
                      unsigned char *out, size_t cap)
{
    uint64_t last_hdr, end;
    size_t olen, put = 0;
    long n = read_full(e->read_cb, e->arg, in, CZ_PIECE);

    if (n != CZ_PIECE) {
        return false;
    }
    olen = libdeflate_deflate_compress(w->c, in, CZ_PIECE, out + GZE_HDR, cap);
    if (olen == 0 || gz_find_last(out + GZE_HDR, olen, &last_hdr, &end) != LS_OK) {
        return false;
    }
    put_le32(out, GZE_MAGIC);
    put_le32(out + 4, (uint32_t)e->level);
    put_le64(out + 8, e->seq);
    put_le32(out + 16, CZ_PIECE);
    put_le32(out + 20, libdeflate_crc32(0, in, CZ_PIECE));
    put_le32(out + 24, (uint32_t)olen);
    put_le32(out + 28, libdeflate_crc32(0, out + GZE_HDR, olen));
    put_le64(out + 32, last_hdr);
    put_le64(out + 40, end);
    while (put < GZE_HDR + olen) {
        ssize_t k = write(e->out_fd, out + put, GZE_HDR + olen - put);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            return false;       /* a full disk: the chunk's own compression does the rest */
        }
        put += (size_t)k;
    }
    return true;
}

static void *gze_main(void *unused)
{
    struct gz_worker w = { NULL };
    unsigned char *in = ls_malloc(CZ_PIECE), *out = NULL;
    size_t cap = 0;
    int wlevel = 0;

    (void)unused;
    pthread_setname_np(pthread_self(), "logship-early");    /* top -H, perf */
    pthread_mutex_lock(&gze_mu);
    for (;;) {
        struct ls_gz_early *e = gze_head;
        if (e == NULL) {
            /* an idle agent keeps no thread, buffers or compressor for this */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 5;
            gze_idle++;
            int wr = pthread_cond_timedwait(&gze_cv, &gze_mu, &ts);
            gze_idle--;
            if (wr == ETIMEDOUT && gze_head == NULL) {
                break;
            }
            continue;
        }
        gze_head = e->next;
        if (gze_head == NULL) {
            gze_tail = NULL;
        }
        e->next = NULL;
        e->queued = false;
        e->running = true;
        while (!e->ended && !e->failed && e->avail - e->done >= CZ_PIECE) {
            bool ok;
            pthread_mutex_unlock(&gze_mu);
            if (w.c == NULL || wlevel != e->level) {
                gz_worker_free(&w);
                ok = gz_worker_init(&w, e->level) == LS_OK;
                wlevel = e->level;
                if (ok) {
                    ls_free(out);
                    cap = libdeflate_deflate_compress_bound(w.c, CZ_PIECE);
                    out = ls_malloc(GZE_HDR + cap);
                }
            } else {
                ok = true;
            }
            ok = ok && gze_piece(e, &w, in, out, cap);
            pthread_mutex_lock(&gze_mu);
            __atomic_store_n(&e->done, e->done + CZ_PIECE, __ATOMIC_RELAXED);
            e->seq++;
            e->failed = !ok;
        }
        e->running = false;
        if (e->ended) {
            gze_free(e);
        }
    }
    gze_threads--;
    pthread_mutex_unlock(&gze_mu);
    gz_worker_free(&w);
    ls_free(in);
    ls_free(out);
    return NULL;
}

struct ls_gz_early *ls_gz_early_new(int level, ls_read_cb read_cb, void *arg,
                                    void (*free_arg)(void *arg), int out_fd)
{
    struct ls_gz_early *e;

    if (gz_threads_decided() < 2 || level < 1 || level > 12) {
        return NULL;
    }
    e = ls_calloc(1, sizeof(*e));
    e->read_cb = read_cb;
    e->arg = arg;
    e->free_arg = free_arg;
    e->out_fd = out_fd;
    e->level = level;
    return e;
}

void ls_gz_early_avail(struct ls_gz_early *e, uint64_t avail)
{
    /* done only grows: reading it unlocked can only queue e once more, never miss it */
    if (e == NULL || avail - __atomic_load_n(&e->done, __ATOMIC_RELAXED) < CZ_PIECE) {
        return;
    }
    pthread_mutex_lock(&gze_mu);
    e->avail = avail;
    if (!e->queued && !e->running && !e->failed && e->avail - e->done >= CZ_PIECE) {
        e->queued = true;
        if (gze_tail) {
            gze_tail->next = e;
        } else {
            gze_head = e;
        }
        gze_tail = e;
        if (gze_idle > 0) {
            pthread_cond_signal(&gze_cv);
        } else if (gze_threads < gz_threads_decided() - 1) {
            pthread_t t;
            pthread_attr_t a;
            pthread_attr_init(&a);
            pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
            if (pthread_create(&t, &a, gze_main, NULL) == 0) {
                gze_threads++;
            }
            pthread_attr_destroy(&a);
        }
    }
    pthread_mutex_unlock(&gze_mu);
}

void ls_gz_early_end(struct ls_gz_early *e)
{
    if (e == NULL) {
        return;
    }
    pthread_mutex_lock(&gze_mu);
    e->ended = true;
    if (e->queued) {
        struct ls_gz_early **pp = &gze_head;
        while (*pp != e) {
            pp = &(*pp)->next;
        }
        *pp = e->next;
        if (gze_tail == e) {
            gze_tail = NULL;
            for (struct ls_gz_early *q = gze_head; q; q = q->next) {
                gze_tail = q;
            }
        }
        e->queued = false;
    }
    if (!e->running) {
        gze_free(e);
    }
    pthread_mutex_unlock(&gze_mu);
}

/*
 * Is the next record of the early file piece sl (sl->n bytes at level)? Then its output, CRC
 * and last block are sl's and true. Its output is checked against the CRC-32 the record
 * carries, and, unless the side file is trusted (ls_compress_stream_expect), the input just
 * read into sl->in against the input's; a trusted piece need not have been read at all.
 * The stream's own thread.
 */
static bool gze_take(struct cz_sink *s, struct gz_slot *sl, int level, size_t cap)
{
    unsigned char h[GZE_HDR];

    while (s->early_fd >= 0 && !s->early_done) {
        uint64_t seq, last_hdr, end;
        uint32_t olen, crc;

        if (pread(s->early_fd, h, GZE_HDR, (off_t)s->early_off) != GZE_HDR
            || get_le32(h) != GZE_MAGIC || get_le32(h + 24) > cap) {
            s->early_done = true;
            break;
        }
        seq = get_le64(h + 8);
        olen = get_le32(h + 24);
        if (seq > sl->seq) {
            return false;       /* a later piece's: kept for it */
        }
        s->early_off += GZE_HDR + olen;
        if (seq < sl->seq) {
            continue;
        }
        if (get_le32(h + 4) != (uint32_t)level || get_le32(h + 16) != sl->n) {
            return false;
        }
        crc = s->early_trusted ? get_le32(h + 20) : libdeflate_crc32(0, sl->in, sl->n);
        last_hdr = get_le64(h + 32);
        end = get_le64(h + 40);
        if (crc != get_le32(h + 20) || olen == 0 || end > (uint64_t)olen * 8 || last_hdr >= end
            || pread(s->early_fd, sl->out, olen, (off_t)(s->early_off - olen)) != (ssize_t)olen
            || libdeflate_crc32(0, sl->out, olen) != get_le32(h + 28)
            || !(sl->out[last_hdr / 8] & (1u << (last_hdr % 8)))) {
            return false;
        }
        sl->crc = crc;
        sl->olen = olen;
        sl->last_hdr = last_hdr;
        sl->end = end;
        __atomic_add_fetch(&gze_taken, 1, __ATOMIC_RELAXED);
        return true;
    }
    return false;
}

/*
 * A full piece taken from a trusted early side file without reading the input: the reader
 * skips it (read_cb with a NULL buffer). Only where the input is known to hold the whole
 * piece (s->expect), so the skip cannot come short and leave the reader in between.
 */
static int early_skip(struct cz_sink *s, struct gz_slot *sl, int level, size_t cap,
                      ls_read_cb read_cb, void *arg)
{
    size_t got = 0;

    if (!s->early_trusted || (sl->seq + 1) * CZ_PIECE > s->expect) {
        return 0;
    }
    sl->n = CZ_PIECE;
    if (!gze_take(s, sl, level, cap)) {
        return 0;
    }
    while (got < CZ_PIECE) {
        long k = read_cb(arg, NULL, CZ_PIECE - got);
        if (k <= 0) {
            return -1;      /* shorter than its size said: a read error */
        }
        got += (size_t)k;
    }
    return 1;
}

/*
 * One gzip member from read_cb into s (see the top comment and gz_par).
 * Pieces are read in order into free slots, compressed by whichever thread
 * is free, and written in order. A piece known to be the last keeps its
 * final block; every other one is made non-final. A full piece written
 * before the next read told whether more follows (one slot, or all slots
 * waiting) is made non-final too, and if nothing followed the member ends
 * with an empty final block (03 00, zlib's Z_FINISH after a flush).
 */
static int gz_run(int level, ls_read_cb read_cb, void *arg, struct cz_sink *s, uint64_t *in_size,
                  char *err, size_t errlen)
{
    unsigned char hdr[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3 };   /* no name, mtime 0, Unix */
    unsigned char trailer[8];
    struct gz_par p;
    struct gz_worker w;
    pthread_t helper[GZ_MAX_THREADS];
    int nhelper = 0, i;
    uint64_t nread = 0, nwritten = 0, total = 0;
    uint32_t crc = 0;
    bool eof = false, open_end = false;
    int rc = LS_ERROR, st;

    memset(&p, 0, sizeof(p));
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    p.level = level;
    p.nslot = 1;
    if (gz_worker_init(&w, level) != LS_OK) {
        snprintf(err, errlen, "libdeflate_alloc_compressor() failed");
        goto out;
    }
    p.cap = libdeflate_deflate_compress_bound(w.c, CZ_PIECE);
    hdr[8] = level >= 9 ? 2 : level <= 1 ? 4 : 0;     /* XFL as zlib sets it */
    if (sink_put(s, hdr, sizeof(hdr), err, errlen) != LS_OK) {
        goto out;
    }
    for (;;) {
        struct gz_slot *sl;
        bool last;

        /* fill the free slots */
        while (!eof && nread - nwritten < (uint64_t)p.nslot) {
            long n;
            pthread_mutex_lock(&p.mu);
            sl = gz_slot_of(&p, UINT64_MAX);   /* there is one: fewer than nslot are in use */
            pthread_mutex_unlock(&p.mu);
            if (sl->in == NULL) {
                sl->in = ls_malloc(CZ_PIECE);
                sl->out = ls_malloc(p.cap + 5);
            }
            sl->seq = nread;
            st = early_skip(s, sl, level, p.cap, read_cb, arg);
            if (st < 0) {
                read_failed(err, errlen);
                goto out;
            }
            if (st > 0) {
                pthread_mutex_lock(&p.mu);
                nread++;
                sl->state = GZ_DONE;
                pthread_cond_broadcast(&p.cv);
                pthread_mutex_unlock(&p.mu);
                continue;
            }
            n = read_full(read_cb, arg, sl->in, CZ_PIECE);
            if (n < 0) {
                read_failed(err, errlen);
                goto out;
            }
            if (n == 0 && nread > 0) {
                eof = true;
                break;
            }
            eof = (size_t)n < CZ_PIECE;
            sl->n = (size_t)n;
            sl->seq = nread;
            st = gze_take(s, sl, level, p.cap) ? GZ_DONE : GZ_FILLED;
            pthread_mutex_lock(&p.mu);
            nread++;
            sl->state = st;
            pthread_cond_broadcast(&p.cv);
            pthread_mutex_unlock(&p.mu);
            if (!eof && nhelper == 0) {
                /* more follows: lend pieces to helpers (from gz_par_after pieces on) */
                nhelper = gz_helpers_take(GZ_MAX_THREADS - 1, nread, s->expect);
                for (i = 0; i < nhelper; i++) {
                    if (pthread_create(&helper[i], NULL, gz_helper_main, &p) != 0) {
                        gz_helpers_give(nhelper - i);
                        nhelper = i;
                        break;
                    }
                }
                pthread_mutex_lock(&p.mu);
                p.nslot = 1 + nhelper;
                pthread_mutex_unlock(&p.mu);
            }
        }
        if (nwritten == nread) {
            break;
        }
        /* write the oldest piece */
        pthread_mutex_lock(&p.mu);
        sl = gz_slot_of(&p, nwritten);
        rc = gz_wait_slot(&p, &w, sl);
        pthread_mutex_unlock(&p.mu);
        if (rc != LS_OK) {
            snprintf(err, errlen, "libdeflate_deflate_compress() or joining its pieces failed");
            goto out;
        }
        rc = LS_ERROR;
        last = eof && nwritten + 1 == nread;
        if (!last) {
            gz_unfinal(sl->out, &sl->olen, sl->last_hdr, sl->end);
        }
        open_end = !last;
        crc = nwritten == 0 ? sl->crc : (uint32_t)crc32_combine(crc, sl->crc, (z_off_t)sl->n);
        total += sl->n;
        if (sink_put(s, sl->out, sl->olen, err, errlen) != LS_OK) {
            goto out;
        }
        pthread_mutex_lock(&p.mu);     /* helpers look at every slot's state */
        sl->state = GZ_FREE;
        pthread_mutex_unlock(&p.mu);
        nwritten++;
    }
    if (open_end && sink_put(s, "\x03\x00", 2, err, errlen) != LS_OK) {
        goto out;
    }
    put_le32(trailer, crc);
    put_le32(trailer + 4, (uint32_t)total);
    if (sink_put(s, trailer, sizeof(trailer), err, errlen) != LS_OK) {
        goto out;
    }
    *in_size = total;
    rc = LS_OK;
out:
    pthread_mutex_lock(&p.mu);
    p.quit = true;
    pthread_cond_broadcast(&p.cv);
    pthread_mutex_unlock(&p.mu);
    for (i = 0; i < nhelper; i++) {
        pthread_join(helper[i], NULL);
    }
    gz_helpers_give(nhelper);
    gz_worker_free(&w);
    for (i = 0; i < GZ_MAX_THREADS; i++) {
        ls_free(p.slot[i].in);
        ls_free(p.slot[i].out);
    }
    pthread_mutex_destroy(&p.mu);
    pthread_cond_destroy(&p.cv);
    return rc;
}

/*
 * A streaming encoder for stream_run: code() takes in[0..n) whole and puts
 * what comes out into s through out[0..CZ_BLOCK); with finish (n is 0 then)
 * it ends the stream. LS_OK / LS_ERROR with a message in err.
 */
struct cz_coder {
    int (*code)(void *st, const unsigned char *in, size_t n, bool finish, unsigned char *out,
                struct cz_sink *s, char *err, size_t errlen);
    void *st;
};

/* Feed everything read_cb gives, CZ_BLOCK at a time, through c into s. */
static int stream_run(const struct cz_coder *c, ls_read_cb read_cb, void *arg, struct cz_sink *s,
                      uint64_t *in_size, char *err, size_t errlen)
{
    unsigned char *in = ls_malloc(CZ_BLOCK), *out = ls_malloc(CZ_BLOCK);
    int rc = LS_ERROR;

    for (;;) {
        long n = read_cb(arg, in, CZ_BLOCK);
        if (n < 0) {
            read_failed(err, errlen);
            goto out;
        }
        if (c->code(c->st, in, (size_t)n, n == 0, out, s, err, errlen) != LS_OK) {
            goto out;
        }
        if (n == 0) {
            break;
        }
        *in_size += (uint64_t)n;
    }
    rc = LS_OK;
out:
    ls_free(in);
    ls_free(out);
    return rc;
}

static int copy_code(void *st, const unsigned char *in, size_t n, bool finish, unsigned char *out,
                     struct cz_sink *s, char *err, size_t errlen)
{
    return sink_put(s, in, n, err, errlen);
}

static int zs_code(void *st, const unsigned char *in, size_t n, bool finish, unsigned char *out,
                   struct cz_sink *s, char *err, size_t errlen)
{
    ZSTD_inBuffer ib = { in, n, 0 };
    size_t left;

    do {
        ZSTD_outBuffer ob = { out, CZ_BLOCK, 0 };
        left = zs.compressStream2(st, &ob, &ib, finish ? ZSTD_e_end : ZSTD_e_continue);
        if (zs.isError(left)) {
            snprintf(err, errlen, "ZSTD_compressStream2() failed: %s", zs.getErrorName(left));
            return LS_ERROR;
        }
        if (sink_put(s, out, ob.pos, err, errlen) != LS_OK) {
            return LS_ERROR;
        }
        /* e_continue: done when the input is taken; e_end: when nothing is left to flush */
    } while (finish ? left != 0 : ib.pos < ib.size);
    return LS_OK;
}

static int zs_run(int level, ls_read_cb read_cb, void *arg, struct cz_sink *s, uint64_t *in_size,
                  char *err, size_t errlen)
{
    ZSTD_CCtx *cc = zs.createCCtx();
    struct cz_coder c = { zs_code, cc };
    int rc;

    if (cc == NULL || zs.isError(zs.setParameter(cc, ZSTD_c_compressionLevel, level))
        || zs.isError(zs.setParameter(cc, ZSTD_c_checksumFlag, 1))) {
        snprintf(err, errlen, "cannot set up a zstd compressor at level %d", level);
        zs.freeCCtx(cc);
        return LS_ERROR;
    }
    rc = stream_run(&c, read_cb, arg, s, in_size, err, errlen);
    zs.freeCCtx(cc);
    return rc;
}

static bool zs_set(ZSTD_CCtx *cc, ZSTD_cParameter param, int v)
{
    return v <= 0 || !zs.isError(zs.setParameter(cc, param, v));
}

int ls_zstd_frame(void **cctx, const struct ls_zstd_params *p, const void *src, size_t n,
                  struct ls_buf *dst, char *err, size_t errlen)
{
    ZSTD_inBuffer ib = { src, n, 0 };
    size_t left;

    if (*cctx == NULL) {
        ZSTD_CCtx *cc;
        if (ls_dynlib_load(&zs_lib, err, errlen) != LS_OK) {
            return LS_ERROR;
        }
        cc = zs.createCCtx();
        if (cc == NULL || zs.isError(zs.setParameter(cc, ZSTD_c_compressionLevel, p->level))
            || !zs_set(cc, ZSTD_c_hashLog, p->table_log) || !zs_set(cc, ZSTD_c_chainLog, p->table_log)
            || !zs_set(cc, ZSTD_c_minMatch, p->min_match)
            || !zs_set(cc, ZSTD_c_searchLog, p->search_log)) {
            snprintf(err, errlen, "cannot set up a zstd compressor at level %d", p->level);
            zs.freeCCtx(cc);
            return LS_ERROR;
        }
        *cctx = cc;
    }
    /* with room for the bound, one call ends the frame; the loop is for the rest */
    do {
        ZSTD_outBuffer ob;
        if (ls_buf_reserve(dst, ZSTD_COMPRESSBOUND(ib.size - ib.pos) + 64) != LS_OK) {
            snprintf(err, errlen, "out of memory for a zstd frame of %zu bytes", n);
            return LS_ERROR;
        }
        ob = (ZSTD_outBuffer){ dst->p + dst->len, dst->cap - dst->len - 1, 0 };
        left = zs.compressStream2(*cctx, &ob, &ib, ZSTD_e_end);
        if (zs.isError(left)) {
            snprintf(err, errlen, "ZSTD_compressStream2() failed: %s", zs.getErrorName(left));
            return LS_ERROR;
        }
        dst->len += ob.pos;
    } while (left != 0);
    return LS_OK;
}

void ls_zstd_frame_free(void *cctx)
{
    if (cctx) {
        zs.freeCCtx(cctx);    /* made only after the library loaded */
    }
}

static int xz_code(void *st, const unsigned char *in, size_t n, bool finish, unsigned char *out,
                   struct cz_sink *s, char *err, size_t errlen)
{
    lzma_stream *z = st;
    lzma_ret lr;

    z->next_in = in;
    z->avail_in = n;
    do {
        z->next_out = out;
        z->avail_out = CZ_BLOCK;
        lr = xz.code(z, finish ? LZMA_FINISH : LZMA_RUN);
        if (lr != LZMA_OK && lr != LZMA_STREAM_END) {
            snprintf(err, errlen, "lzma_code() failed (%d)", (int)lr);
            return LS_ERROR;
        }
        if (sink_put(s, out, CZ_BLOCK - z->avail_out, err, errlen) != LS_OK) {
            return LS_ERROR;
        }
    } while (finish ? lr != LZMA_STREAM_END : z->avail_in > 0);
    return LS_OK;
}

static int xz_run(int level, ls_read_cb read_cb, void *arg, struct cz_sink *s, uint64_t *in_size,
                  char *err, size_t errlen)
{
    lzma_stream z = LZMA_STREAM_INIT;
    struct cz_coder c = { xz_code, &z };
    lzma_ret lr = xz.easy_encoder(&z, (uint32_t)level, LZMA_CHECK_CRC64);
    int rc;

    if (lr != LZMA_OK) {
        snprintf(err, errlen, "lzma_easy_encoder() at preset %d failed (%d%s)", level, (int)lr,
                 lr == LZMA_MEM_ERROR ? ": out of memory" : "");
        xz.end(&z);
        return LS_ERROR;
    }
    rc = stream_run(&c, read_cb, arg, s, in_size, err, errlen);
    xz.end(&z);
    return rc;
}

bool ls_compress_level_ok(enum ls_compress_algo algo, int level, char *range, size_t rangelen)
{
    int lo = 0, hi = 0;

    switch (algo) {
    case LS_COMPRESS_TEXT:
        return true;
    case LS_COMPRESS_GZIP:
        lo = 1;
        hi = 9;
        break;
    case LS_COMPRESS_ZSTD:
        lo = 1;
        hi = 22;    /* ZSTD_maxCLevel() of every libzstd release so far */
        break;
    case LS_COMPRESS_XZ:
        lo = 0;
        hi = 9;
        break;
    }
    if (range && rangelen) {
        snprintf(range, rangelen, "%d-%d", lo, hi);
    }
    return level == -1 || (level >= lo && level <= hi);
}

static int run(enum ls_compress_algo algo, int level, ls_read_cb read_cb, void *arg,
               struct cz_sink *s, struct ls_digest *dig, char *err, size_t errlen)
{
    struct cz_coder copy = { copy_code, NULL };
    uint64_t in_size = 0;
    int rc = LS_ERROR;
    char dummy[8], range[16];

    if (err == NULL || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    if (algo != LS_COMPRESS_TEXT && algo != LS_COMPRESS_GZIP && algo != LS_COMPRESS_ZSTD
        && algo != LS_COMPRESS_XZ) {
        snprintf(err, errlen, "unknown compression %d", (int)algo);
        return LS_ERROR;
    }
    if (!ls_compress_level_ok(algo, level, range, sizeof(range))) {
        snprintf(err, errlen, "compression level %d is not in %s", level, range);
        return LS_ERROR;
    }
    if (ls_compress_load(algo, err, errlen) != LS_OK
        || digest_init(s, dig != NULL, err, errlen) != LS_OK) {
        goto out;
    }
    switch (algo) {
    case LS_COMPRESS_GZIP:
        rc = gz_run(level < 0 ? 6 : level, read_cb, arg, s, &in_size, err, errlen);
        break;
    case LS_COMPRESS_ZSTD:
        rc = zs_run(level < 0 ? ZSTD_CLEVEL_DEFAULT : level, read_cb, arg, s, &in_size, err,
                    errlen);
        break;
    case LS_COMPRESS_XZ:
        rc = xz_run(level < 0 ? (int)LZMA_PRESET_DEFAULT : level, read_cb, arg, s, &in_size, err,
                    errlen);
        break;
    default:
        rc = stream_run(&copy, read_cb, arg, s, &in_size, err, errlen);
        break;
    }
    if (rc != LS_OK || digest_final(s, dig, err, errlen) != LS_OK) {
        rc = LS_ERROR;
        goto out;
    }
    if (dig) {
        dig->in_size = in_size;
    }
out:
    EVP_MD_CTX_free(s->md5);
    EVP_MD_CTX_free(s->sha);
    return rc;
}

int ls_compress_stream(enum ls_compress_algo algo, int level, ls_read_cb read_cb, void *arg,
                       int out_fd, struct ls_digest *dig, char *err, size_t errlen)
{
    return ls_compress_stream_expect(algo, level, 0, -1, false, read_cb, arg, out_fd, dig, err,
                                     errlen);
}

int ls_compress_stream_expect(enum ls_compress_algo algo, int level, uint64_t expect,
                              int early_fd, bool early_trusted, ls_read_cb read_cb, void *arg,
                              int out_fd, struct ls_digest *dig, char *err, size_t errlen)
{
    struct cz_sink s;

    memset(&s, 0, sizeof(s));
    s.fd = out_fd;
    s.expect = expect;
    s.early_fd = early_fd;
    s.early_trusted = early_fd >= 0 && early_trusted;
    return run(algo, level, read_cb, arg, &s, dig, err, errlen);
}

struct mem_src {
    const unsigned char *p;
    size_t n, off;
};

static long mem_src_read(void *arg, void *buf, size_t n)
{
    struct mem_src *m = arg;
    size_t k = m->n - m->off < n ? m->n - m->off : n;

    if (k) {
        memcpy(buf, m->p + m->off, k);
    }
    m->off += k;
    return (long)k;
}

int ls_compress_mem(enum ls_compress_algo algo, int level, const void *p, size_t n, int out_fd,
                    uint64_t *written, char *err, size_t errlen)
{
    struct mem_src m = { p, n, 0 };
    struct stat st;

    if (ls_compress_stream(algo, level, mem_src_read, &m, out_fd, NULL, err, errlen) != LS_OK) {
        return LS_ERROR;
    }
    if (fstat(out_fd, &st) != 0) {
        snprintf(err, errlen, "fstat() failed (%d: %s)", errno, strerror(errno));
        return LS_ERROR;
    }
    *written = (uint64_t)st.st_size;
    return LS_OK;
}

int ls_compress_to_buf(enum ls_compress_algo algo, int level, ls_read_cb read_cb, void *arg,
                       struct ls_buf *out, struct ls_digest *dig, char *err, size_t errlen)
{
    struct cz_sink s;
    size_t start = out->len;
    int rc;

    memset(&s, 0, sizeof(s));
    s.fd = -1;
    s.early_fd = -1;
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

void ls_sha512_hex(const void *const *parts, const size_t *lens, int n, char out[129])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    bool ok = c && EVP_DigestInit_ex(c, EVP_sha512(), NULL) == 1;

    for (int i = 0; ok && i < n; i++) {
        ok = EVP_DigestUpdate(c, parts[i], lens[i]) == 1;
    }
    ok = ok && EVP_DigestFinal_ex(c, md, &mdlen) == 1 && mdlen == 64;
    EVP_MD_CTX_free(c);
    if (ok) {
        ls_hex(md, 64, out);
    } else {
        out[0] = '\0';
    }
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
