/*
 * tail_pos.c - the pos_file, in fluentd's exact format.
 *
 * One line per followed file: "path TAB 16-hex offset TAB 16-hex inode LF",
 * so a td-agent pos_file can be adopted as it is and ours can be read by
 * fluentd. The design follows fluentd's: fields have a fixed width, so an
 * update is one pwrite(2) of the 16 (or 33) bytes in place and never moves
 * another line; a kill -9 can interrupt us only between two whole writes
 * (a page-cache write of a few bytes is not torn). New entries are appended
 * with one write of the whole line. Anything that removes lines
 * (compaction) writes a new file and renames it over the old one, so there
 * is never a moment where the file on disk is half rewritten.
 *
 * No fsync per update (fluentd does not either): the positions only need
 * to survive a process crash; after a power loss the file buffer's
 * high-water marks (ls_source_durable_pos) put the input back where the
 * buffer is.
 */
#include "tail.h"
#include "log.h"

#include <fcntl.h>
#include <sys/stat.h>

#define POS_MAX_FILE (64u << 20)

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Hex digits at s (at least one). Values wider than 64 bits do not match. */
static size_t parse_hex(const char *s, const char *end, uint64_t *out, bool *ok)
{
    size_t n = 0, sig = 0;
    uint64_t v = 0;

    *ok = true;
    while (s + n < end && hexval(s[n]) >= 0) {
        int d = hexval(s[n]);
        if (sig > 0 || d != 0) {
            sig++;
        }
        if (sig > 16) {
            *ok = false;
        }
        v = (v << 4) | (uint64_t)d;
        n++;
    }
    if (n == 0) {
        *ok = false;
    }
    *out = v;
    return n;
}

size_t tail_pos_parse(const char *buf, size_t len, tail_pos_line_cb cb, void *arg)
{
    const char *p = buf, *end = buf + len;
    size_t bad = 0;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *tab, *q;
        uint64_t pos, ino;
        bool ok1, ok2;
        size_t n;

        if (le == p) {
            p = le + 1;
            continue;
        }
        tab = memchr(p, '\t', (size_t)(le - p));
        if (tab == NULL || tab == p) {
            bad++;
            goto next;
        }
        q = tab + 1;
        n = parse_hex(q, le, &pos, &ok1);
        if (n == 0 || q + n >= le || q[n] != '\t') {
            bad++;
            goto next;
        }
        q += n + 1;
        n = parse_hex(q, le, &ino, &ok2);
        if (n == 0 || !ok1 || !ok2) {
            bad++;
            goto next;
        }
        /* like fluentd's unanchored regex, text after the inode is ignored */
        cb(arg, p, (size_t)(tab - p), pos, ino);
next:
        if (nl == NULL) {
            break;
        }
        p = nl + 1;
    }
    return bad;
}

static struct tail_pos_entry *entry_new(struct tail_pos *pf, const char *path, size_t plen,
                                        uint64_t pos, uint64_t ino)
{
    struct tail_pos_entry *e = ls_calloc(1, sizeof(*e));

    e->path = ls_strndup(path, plen);
    e->pos = pos;
    e->ino = ino;
    e->field = -1;
    if (pf->n == pf->cap) {
        pf->cap = pf->cap ? pf->cap * 2 : 16;
        pf->v = ls_realloc(pf->v, pf->cap * sizeof(*pf->v));
    }
    pf->v[pf->n++] = e;
    return e;
}

static void entry_free(struct tail_pos_entry *e)
{
    if (e) {
        ls_free(e->path);
        ls_free(e);
    }
}

static bool same_key(const struct tail_pos *pf, const struct tail_pos_entry *e, const char *path,
                     size_t plen, uint64_t ino)
{
    if (pf->follow_inodes) {
        return e->ino == ino;
    }
    return strlen(e->path) == plen && memcmp(e->path, path, plen) == 0;
}

/*
 * Loading: an open-addressing index from each key (path, or inode with follow_inodes) to
 * its entry, so a duplicate is found in constant time. Searching the entries for every line
 * made a start with 50,000 entries take 9.6 s.
 */
struct pos_load {
    struct tail_pos *pf;
    size_t *slot;               /* index into pf->v plus one; 0: empty */
    size_t mask;
};

static size_t key_slot(const struct pos_load *l, const char *path, size_t plen, uint64_t ino)
{
    uint64_t h = l->pf->follow_inodes ? ls_source_key(&ino, sizeof(ino))
                                      : ls_source_key(path, plen);
    size_t i = (size_t)h & l->mask;

    while (l->slot[i] && !same_key(l->pf, l->pf->v[l->slot[i] - 1], path, plen, ino)) {
        i = (i + 1) & l->mask;
    }
    return i;
}

static void load_line(void *arg, const char *path, size_t plen, uint64_t pos, uint64_t ino)
{
    struct pos_load *l = arg;
    struct tail_pos *pf = l->pf;
    size_t i;

    if (pos == TAIL_POS_UNWATCHED) {
        return;
    }
    i = key_slot(l, path, plen, ino);
    if (l->slot[i]) {
        /* the later line wins, as in fluentd: it takes the earlier one's place at the end */
        pf->duplicates++;
        entry_free(pf->v[l->slot[i] - 1]);
        pf->v[l->slot[i] - 1] = NULL;
    }
    (void)entry_new(pf, path, plen, pos, ino);
    l->slot[i] = pf->n;
}

/* Parse text into pf's entries; the replaced ones leave gaps, closed here in one pass. */
static void load(struct tail_pos *pf, const char *text, size_t len)
{
    struct pos_load l = { pf, NULL, 0 };
    size_t lines = 1, cap = 16, i, j = 0;
    const char *p;

    for (p = text; (p = memchr(p, '\n', (size_t)(text + len - p))) != NULL; p++) {
        lines++;
    }
    while (cap < 2 * lines) {
        cap *= 2;
    }
    l.slot = ls_calloc(cap, sizeof(*l.slot));
    l.mask = cap - 1;
    pf->unparsable = tail_pos_parse(text, len, load_line, &l);
    ls_free(l.slot);
    for (i = 0; i < pf->n; i++) {
        if (pf->v[i]) {
            pf->v[j++] = pf->v[i];
        }
    }
    pf->n = j;
}

static bool path_storable(const char *path)
{
    return path[0] != '\0' && strchr(path, '\t') == NULL && strchr(path, '\n') == NULL;
}

static int reopen(struct tail_pos *pf)
{
    struct stat st;

    if (pf->fd >= 0) {
        close(pf->fd);
    }
    pf->fd = open(pf->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (pf->fd < 0) {
        return LS_ERROR;
    }
    if (fstat(pf->fd, &st) != 0) {
        return LS_ERROR;
    }
    pf->size = (uint64_t)st.st_size;
    return LS_OK;
}

/* Rewrite the file with the entries selected (all when live_only is false). */
static int rewrite(struct tail_pos *pf, bool live_only)
{
    struct ls_buf b;
    size_t i, j = 0;
    int rc;

    ls_buf_init(&b, 0);
    for (i = 0; i < pf->n; i++) {
        struct tail_pos_entry *e = pf->v[i];
        if (live_only && !e->live) {
            entry_free(e);
            continue;
        }
        pf->v[j++] = e;
        if (!path_storable(e->path) || e->pos == TAIL_POS_UNWATCHED) {
            e->field = -1;
            continue;
        }
        e->field = (int64_t)(b.len + strlen(e->path) + 1);
        ls_buf_printf(&b, "%s\t%016llx\t%016llx\n", e->path, (unsigned long long)e->pos,
                      (unsigned long long)e->ino);
    }
    pf->n = j;
    rc = ls_write_file_atomic(pf->path, b.p ? b.p : "", b.len, 0644);
    ls_buf_release(&b);
    if (rc != LS_OK) {
        return LS_ERROR;
    }
    return reopen(pf);
}

struct tail_pos *tail_pos_open(const char *path, bool follow_inodes, char *err, size_t errlen)
{
    struct tail_pos *pf = ls_calloc(1, sizeof(*pf));
    char *text = NULL;
    size_t len = 0;

    pf->path = ls_strdup(path);
    pf->fd = -1;
    pf->follow_inodes = follow_inodes;
    if (ls_read_file(path, POS_MAX_FILE, &text, &len) == LS_OK) {
        load(pf, text, len);
        ls_free(text);
    } else if (errno != ENOENT) {
        snprintf(err, errlen, "cannot read pos_file '%s' (%d: %s)", path, errno, strerror(errno));
        tail_pos_close(pf);
        return NULL;
    }
    if (rewrite(pf, false) != LS_OK) {
        snprintf(err, errlen, "cannot write pos_file '%s' (%d: %s)", path, errno, strerror(errno));
        tail_pos_close(pf);
        return NULL;
    }
    return pf;
}

void tail_pos_close(struct tail_pos *pf)
{
    size_t i;

    if (pf == NULL) {
        return;
    }
    if (pf->fd >= 0) {
        close(pf->fd);
    }
    for (i = 0; i < pf->n; i++) {
        entry_free(pf->v[i]);
    }
    ls_free(pf->v);
    ls_free(pf->path);
    ls_free(pf);
}

struct tail_pos_entry *tail_pos_find(struct tail_pos *pf, const char *path, uint64_t ino)
{
    size_t i;

    if (pf == NULL) {
        return NULL;
    }
    for (i = pf->n; i > 0; i--) {
        struct tail_pos_entry *e = pf->v[i - 1];
        if (e->pos != TAIL_POS_UNWATCHED && same_key(pf, e, path, strlen(path), ino)) {
            return e;
        }
    }
    return NULL;
}

/* Append e's line; on failure (a full disk) e->field stays -1 and the next update tries
 * again, so a new file's position is not lost for good to a moment without space. */
static void append_entry(struct tail_pos *pf, struct tail_pos_entry *e)
{
    char *line = ls_asprintf("%s\t%016llx\t%016llx\n", e->path, (unsigned long long)e->pos,
                             (unsigned long long)e->ino);
    size_t len = strlen(line);
    ssize_t w;

    /* one write of the whole line: a crash leaves it either absent or complete */
    do {
        w = pwrite(pf->fd, line, len, (off_t)pf->size);
    } while (w < 0 && errno == EINTR);
    if (w == (ssize_t)len) {
        e->field = (int64_t)(pf->size + strlen(e->path) + 1);
        pf->size += len;
    } else {
        /* a short write leaves junk that fluentd's reader and ours skip */
        if (w > 0) {
            pf->size += (uint64_t)w;
        }
        ls_warn("pwrite() pos_file '%s' failed (%d: %s)", pf->path, errno, strerror(errno));
    }
    ls_free(line);
}

struct tail_pos_entry *tail_pos_add(struct tail_pos *pf, const char *path, uint64_t pos,
                                    uint64_t ino)
{
    struct tail_pos_entry *e = entry_new(pf, path, strlen(path), pos, ino);

    if (pf->fd >= 0 && path_storable(path)) {
        append_entry(pf, e);
    }
    return e;
}

static int write_field(struct tail_pos *pf, struct tail_pos_entry *e, const char *text, size_t len)
{
    ssize_t w;

    if (pf == NULL || pf->fd < 0) {
        return LS_OK;
    }
    if (e->field < 0) {
        if (path_storable(e->path) && e->pos != TAIL_POS_UNWATCHED) {
            append_entry(pf, e);      /* its first append failed: the line holds the update */
            return e->field < 0 ? LS_ERROR : LS_OK;
        }
        return LS_OK;
    }
    do {
        w = pwrite(pf->fd, text, len, (off_t)e->field);
    } while (w < 0 && errno == EINTR);
    if (w != (ssize_t)len) {
        ls_warn("pwrite() pos_file '%s' failed (%d: %s)", pf->path, errno, strerror(errno));
        return LS_ERROR;
    }
    return LS_OK;
}

int tail_pos_update(struct tail_pos *pf, struct tail_pos_entry *e, uint64_t pos)
{
    char f[24];

    if (e == NULL) {
        return LS_OK;
    }
    if (e->pos == pos) {
        return LS_OK;
    }
    e->pos = pos;
    snprintf(f, sizeof(f), "%016llx", (unsigned long long)pos);
    return write_field(pf, e, f, 16);
}

int tail_pos_update2(struct tail_pos *pf, struct tail_pos_entry *e, uint64_t pos, uint64_t ino)
{
    char f[40];

    if (e == NULL) {
        return LS_OK;
    }
    if (e->pos == pos && e->ino == ino) {
        return LS_OK;
    }
    e->pos = pos;
    e->ino = ino;
    snprintf(f, sizeof(f), "%016llx\t%016llx", (unsigned long long)pos, (unsigned long long)ino);
    return write_field(pf, e, f, 33);
}

int tail_pos_rename(struct tail_pos *pf, struct tail_pos_entry *e, const char *path)
{
    ls_free(e->path);
    e->path = ls_strdup(path);
    if (pf == NULL || pf->fd < 0) {
        return LS_OK;
    }
    return rewrite(pf, false);
}

int tail_pos_compact(struct tail_pos *pf)
{
    size_t i;
    int rc;

    if (pf == NULL) {
        return LS_OK;
    }
    /* unwatched entries go as well: their position no longer means anything */
    for (i = 0; i < pf->n; i++) {
        if (pf->v[i]->pos == TAIL_POS_UNWATCHED) {
            pf->v[i]->live = false;
        }
    }
    rc = rewrite(pf, true);
    if (rc != LS_OK) {
        ls_warn("compacting pos_file '%s' failed (%d: %s)", pf->path, errno, strerror(errno));
    }
    return rc;
}
