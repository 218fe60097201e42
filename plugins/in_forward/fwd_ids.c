/*
 * fwd_ids.c - the chunk ids in_forward has made durable, kept across restarts.
 *
 * Records get increasing sequence numbers (the `pos` of one delivery source per in_forward
 * instance), so a file buffer's frames tell after kill -9 how far the input got (see
 * ls_source_durable_pos). Around each request that asks for an ack this file journals:
 *   i  before emitting: chunk id's records start at sequence S (D of them durable before)
 *   p  the request stopped part way (connection gone, back-pressure): D records durable
 *   a  durable and acknowledged: N records from S
 * one line "<epoch> <i|p|a> <S> <D|N> <hex id>\n" each, appended with one write(2) per
 * batch and no fsync, as the buffer writes its frames and tail its pos_file: this survives a
 * kill -9 of logship, not an operating system crash. At most one request is unresolved (the
 * input emits one request at a time), and its line is settled at open time from what the
 * buffers hold: everything up to their durable sequence was written.
 *
 * Bounded: ids older than `expiry` seconds, or beyond the newest `max`, are forgotten (the
 * file is rewritten atomically, and the memory pruned to max, when it has grown to twice the
 * live entries or the ids to an eighth over max).
 */
#include "forward.h"
#include "log.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#define IDS_FILE_MAX (1u << 30)
#define IDS_ID_MAX 512          /* longer ids are not remembered (acked at-least-once) */

struct fwd_id {
    char *id;
    size_t len;
    int64_t t;              /* epoch of the last line */
    uint64_t start;         /* first sequence of the current attempt */
    uint64_t done;          /* records durable (before start for 'i') / count for 'a' */
    char state;             /* 'i', 'p', 'a'; 0: dropped */
};

struct fwd_ids {
    char *path;
    int fd;
    double expiry;
    size_t max;
    struct fwd_id *v;       /* in order of first appearance */
    size_t n, cap, live;
    uint32_t *slots;        /* index + 1 into v; 0 empty */
    size_t nslots;
    size_t file_lines;
    uint64_t max_seq;       /* highest sequence any line mentions */
    struct ls_buf queued;   /* lines not yet written */
};

static int64_t now_sec(void)
{
    int64_t s;
    int32_t ns;

    ls_wall_now(&s, &ns);
    return s;
}

static size_t slot_of(const struct fwd_ids *ids, const char *id, size_t len)
{
    return (size_t)ls_source_key(id, len) & (ids->nslots - 1);
}

static struct fwd_id *find(const struct fwd_ids *ids, const char *id, size_t len)
{
    size_t i;

    if (ids->nslots == 0) {
        return NULL;
    }
    for (i = slot_of(ids, id, len); ids->slots[i]; i = (i + 1) & (ids->nslots - 1)) {
        struct fwd_id *e = &ids->v[ids->slots[i] - 1];
        if (e->state && e->len == len && memcmp(e->id, id, len) == 0) {
            return e;
        }
    }
    return NULL;
}

static void rehash(struct fwd_ids *ids)
{
    size_t want = 64, i, j;

    while (want < ids->n * 2 + 2) {
        want *= 2;
    }
    ls_free(ids->slots);
    ids->slots = ls_calloc(want, sizeof(*ids->slots));
    ids->nslots = want;
    for (i = 0; i < ids->n; i++) {
        if (!ids->v[i].state) {
            continue;
        }
        for (j = slot_of(ids, ids->v[i].id, ids->v[i].len); ids->slots[j];
             j = (j + 1) & (ids->nslots - 1)) {
        }
        ids->slots[j] = (uint32_t)(i + 1);
    }
}

static void drop(struct fwd_ids *ids, struct fwd_id *e)
{
    ls_free(e->id);
    e->id = NULL;
    e->state = 0;
    ids->live--;
}

/* Forget expired ids and the oldest beyond max; squeeze v; rebuild the index. */
static void prune(struct fwd_ids *ids)
{
    int64_t cut = now_sec() - (int64_t)ids->expiry;
    size_t i, k = 0, over = ids->live > ids->max ? ids->live - ids->max : 0;

    for (i = 0; i < ids->n; i++) {
        struct fwd_id *e = &ids->v[i];
        if (e->state && (over > 0 || e->t < cut)) {
            if (over > 0) {
                over--;
            }
            drop(ids, e);
        }
        if (e->state) {
            ids->v[k++] = *e;
        }
    }
    ids->n = k;
    rehash(ids);
}

static void put_line(struct ls_buf *b, const struct fwd_id *e)
{
    size_t i;

    (void)ls_buf_printf(b, "%" PRId64 " %c %" PRIu64 " %" PRIu64 " ", e->t, e->state, e->start,
                        e->done);
    for (i = 0; i < e->len; i++) {
        (void)ls_buf_printf(b, "%02x", (unsigned char)e->id[i]);
    }
    (void)ls_buf_putc(b, '\n');
}

static struct fwd_id *upsert(struct fwd_ids *ids, const char *id, size_t len)
{
    struct fwd_id *e = find(ids, id, len);

    if (e) {
        return e;
    }
    if (ids->n == ids->cap) {
        ids->cap = ids->cap ? ids->cap * 2 : 256;
        ids->v = ls_realloc(ids->v, ids->cap * sizeof(*ids->v));
    }
    e = &ids->v[ids->n++];
    memset(e, 0, sizeof(*e));
    e->id = ls_malloc(len ? len : 1);
    memcpy(e->id, id, len);
    e->len = len;
    e->state = 'i';
    ids->live++;
    if (ids->n * 2 + 2 > ids->nslots) {
        rehash(ids);
    } else {
        size_t j;
        for (j = slot_of(ids, id, len); ids->slots[j]; j = (j + 1) & (ids->nslots - 1)) {
        }
        ids->slots[j] = (uint32_t)ids->n;
    }
    return e;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* One journal line; false when it is not one (a torn tail after a crash). */
static bool load_line(struct fwd_ids *ids, const char *p, size_t n)
{
    char line[2 * IDS_ID_MAX + 128], id[IDS_ID_MAX], st;
    int64_t t;
    uint64_t start, done;
    int off = 0;
    size_t i, len;
    struct fwd_id *e;

    if (n == 0 || n >= sizeof(line)) {
        return false;
    }
    memcpy(line, p, n);
    line[n] = '\0';
    if (sscanf(line, "%" SCNd64 " %c %" SCNu64 " %" SCNu64 " %n", &t, &st, &start, &done,
               &off) != 4 || off <= 0 || (st != 'i' && st != 'p' && st != 'a')) {
        return false;
    }
    len = (n - (size_t)off) / 2;
    if ((n - (size_t)off) % 2 || len > IDS_ID_MAX) {
        return false;
    }
    for (i = 0; i < len; i++) {
        int hi = hexval(line[off + 2 * i]), lo = hexval(line[off + 2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        id[i] = (char)(hi << 4 | lo);
    }
    e = upsert(ids, id, len);
    e->t = t;
    e->state = st;
    e->start = start;
    e->done = done;
    if (start > ids->max_seq) {
        ids->max_seq = start;
    }
    if (st == 'a' && start + done > ids->max_seq) {
        ids->max_seq = start + done - 1;
    }
    return true;
}

/* Rewrite the file with the live entries (atomic rename), and reopen it for appending. */
static int compact(struct fwd_ids *ids, char *err, size_t errlen)
{
    struct ls_buf b;
    size_t i;
    int rc;

    prune(ids);
    if (ids->path == NULL) {
        return LS_OK;
    }
    ls_buf_init(&b, 0);
    for (i = 0; i < ids->n; i++) {
        put_line(&b, &ids->v[i]);
    }
    rc = ls_write_file_atomic(ids->path, b.p ? b.p : "", b.len, 0644);
    ls_buf_release(&b);
    if (rc != LS_OK) {
        snprintf(err, errlen, "cannot rewrite '%s' (%d: %s)", ids->path, errno, strerror(errno));
        return LS_ERROR;
    }
    if (ids->fd >= 0) {
        close(ids->fd);
    }
    ids->fd = open(ids->path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (ids->fd < 0) {
        snprintf(err, errlen, "open() '%s' failed (%d: %s)", ids->path, errno, strerror(errno));
        return LS_ERROR;
    }
    ids->file_lines = ids->n;
    return LS_OK;
}

struct fwd_ids *fwd_ids_open(const char *path, double expiry, size_t max, uint64_t durable,
                             char *err, size_t errlen)
{
    struct fwd_ids *ids = ls_calloc(1, sizeof(*ids));
    char *data = NULL;
    size_t len = 0, i, start = 0;

    ids->fd = -1;
    ids->expiry = expiry;
    ids->max = max ? max : 1;
    ls_buf_init(&ids->queued, 0);
    rehash(ids);
    if (path) {
        ids->path = ls_strdup(path);
        if (ls_read_file(path, IDS_FILE_MAX, &data, &len) != LS_OK && errno != ENOENT) {
            snprintf(err, errlen, "cannot read '%s' (%d: %s)", path, errno, strerror(errno));
            fwd_ids_close(ids);
            return NULL;
        }
        for (i = 0; i < len; i++) {
            if (data[i] == '\n') {
                if (load_line(ids, data + start, i - start)) {
                    ids->file_lines++;
                }
                start = i + 1;
            }
        }
        ls_free(data);
    }
    /* the request a crash interrupted: its records up to `durable` are in the buffers */
    for (i = 0; i < ids->n; i++) {
        struct fwd_id *e = &ids->v[i];
        if (e->state == 'i') {
            if (durable >= e->start) {
                e->done += durable - e->start + 1;
            }
            e->state = 'p';
            e->t = now_sec();
        }
    }
    if (durable > ids->max_seq) {
        ids->max_seq = durable;
    }
    if (compact(ids, err, errlen) != LS_OK) {
        fwd_ids_close(ids);
        return NULL;
    }
    return ids;
}

void fwd_ids_close(struct fwd_ids *ids)
{
    size_t i;

    if (ids == NULL) {
        return;
    }
    for (i = 0; i < ids->n; i++) {
        ls_free(ids->v[i].id);
    }
    if (ids->fd >= 0) {
        close(ids->fd);
    }
    ls_free(ids->v);
    ls_free(ids->slots);
    ls_free(ids->path);
    ls_buf_release(&ids->queued);
    ls_free(ids);
}

uint64_t fwd_ids_next_seq(const struct fwd_ids *ids)
{
    return ids->max_seq + 1;
}

enum fwd_id_state fwd_ids_lookup(struct fwd_ids *ids, const char *id, size_t len, uint64_t *done)
{
    struct fwd_id *e = len <= IDS_ID_MAX ? find(ids, id, len) : NULL;

    *done = 0;
    if (e == NULL || e->t < now_sec() - (int64_t)ids->expiry) {
        return FWD_ID_UNKNOWN;
    }
    if (e->state == 'a') {
        return FWD_ID_ACKED;
    }
    *done = e->done;
    return FWD_ID_PARTIAL;
}

static void record(struct fwd_ids *ids, struct fwd_id *e)
{
    e->t = now_sec();
    put_line(&ids->queued, e);
    ids->file_lines++;
}

void fwd_ids_begin(struct fwd_ids *ids, const char *id, size_t len, uint64_t seq, uint64_t done)
{
    struct fwd_id *e;

    if (len > IDS_ID_MAX) {
        return;
    }
    e = upsert(ids, id, len);
    e->state = 'i';
    e->start = seq;
    e->done = done;
    if (seq > ids->max_seq) {
        ids->max_seq = seq;
    }
    record(ids, e);
}

void fwd_ids_progress(struct fwd_ids *ids, const char *id, size_t len, uint64_t end, char state)
{
    struct fwd_id *e = len <= IDS_ID_MAX ? find(ids, id, len) : NULL;
    uint64_t n;

    if (e == NULL) {
        return;
    }
    n = end > e->start ? end - e->start : 0;
    if (state == 'a') {
        /* for 'a', done counts the records of the last attempt from start: enough to keep
         * the next sequence above them */
        e->done = n;
    } else {
        e->done += n;
        e->start = end;
    }
    e->state = state;
    if (end > 0 && end - 1 > ids->max_seq) {
        ids->max_seq = end - 1;
    }
    record(ids, e);
}

int fwd_ids_flush(struct fwd_ids *ids, char *err, size_t errlen)
{
    int rc = LS_OK;

    if (ids->queued.len && ids->fd >= 0) {
        if (ls_write_all(ids->fd, ids->queued.p, ids->queued.len) != LS_OK) {
            snprintf(err, errlen, "write() '%s' failed (%d: %s)", ids->path, errno,
                     strerror(errno));
            rc = LS_ERROR;
        }
    }
    ls_buf_reset(&ids->queued);
    /* with some slack, so that a full memory is not rewritten at every request */
    if (rc == LS_OK && (ids->live > ids->max + ids->max / 8 + 16 ||
                        ids->file_lines > 2 * ids->live + 1024)) {
        rc = compact(ids, err, errlen);
    }
    return rc;
}

size_t fwd_ids_count(const struct fwd_ids *ids)
{
    return ids->live;
}
