/*
 * s3_key.c - object keys: fluent-plugin-s3's three-step key construction
 * and a %{index} allocator without the plugin's faults.
 *
 * Keys are built as fluent-plugin-s3 1.8 builds them: %{path} and
 * %{file_extension} first, then the buffer placeholders (${tag}, ${key},
 * strftime on the chunk's timekey), then %{time_slice}, %{index},
 * %{hex_random}, %{uuid_flush} (unknown %{...} vanish). Placeholders of the
 * last step become one-byte sentinels before step two, so the strftime of
 * step two cannot touch them.
 *
 * %{index} keeps the plugin's meaning (the first index whose object does
 * not exist) but not its cost or its race: instead of HEAD-probing 0, 1,
 * 2... on every flush (quadratic per slice, and two flushes can pick the
 * same index), the first flush of a key prefix (the key up to %{index})
 * LISTs that prefix once and seeds an in-process set of used indices; every
 * later flush in this process takes the first index not in the set
 * (reserving it at once, so concurrent flushes never collide), and one HEAD
 * confirms the object is free (check_object). The caller stores the key in
 * the chunk's state, so a retry or a restart reuses it.
 */
#include "s3_out.h"
#include "log.h"

#include <openssl/rand.h>

#define S3_MAX_PREFIXES 256
#define S3_MAX_LIST_PAGES 1000
#define S3_MAX_PROBES 10000

struct s3_prefix {
    char *prefix;
    bool seeded;
    bool listing;
    int refs;
    uint64_t last_use;
    int64_t *used;              /* sorted */
    size_t nused, cap;
    struct s3_job *waiters;     /* jobs waiting for the LIST */
};

/* ------------------------------------------------------------------ */
/* templates                                                            */

static void s3k_sentinel(struct ls_buf *b, char code)
{
    ls_buf_putc(b, S3_PH_START);
    ls_buf_putc(b, code);
    ls_buf_putc(b, S3_PH_END);
}

char *s3_tmpl_prepare(const char *fmt, const char *path, const char *ext, const char *hostname,
                      char *err, size_t errlen)
{
    struct ls_buf b;
    const char *p = fmt;

    ls_buf_init(&b, 0);
    while (*p) {
        const char *end;
        size_t n;
        if (p[0] != '%' || p[1] != '{' || (end = strchr(p + 2, '}')) == NULL || end == p + 2) {
            ls_buf_putc(&b, *p++);
            continue;
        }
        n = (size_t)(end - p - 2);
#define S3K_IS(lit) (n == sizeof(lit) - 1 && memcmp(p + 2, lit, n) == 0)
        if (S3K_IS("path")) {
            ls_buf_append(&b, path, strlen(path));
        } else if (S3K_IS("file_extension")) {
            ls_buf_append(&b, ext, strlen(ext));
        } else if (S3K_IS("hostname")) {
            ls_buf_append(&b, hostname, strlen(hostname));
        } else if (S3K_IS("time_slice")) {
            s3k_sentinel(&b, S3_PH_TIME_SLICE);
        } else if (S3K_IS("index")) {
            s3k_sentinel(&b, S3_PH_INDEX);
        } else if (S3K_IS("hex_random")) {
            s3k_sentinel(&b, S3_PH_HEX_RANDOM);
        } else if (S3K_IS("uuid_flush")) {
            s3k_sentinel(&b, S3_PH_UUID_FLUSH);
        } else if (S3K_IS("date_slice")) {
            s3k_sentinel(&b, S3_PH_DATE_SLICE);
        } else if (S3K_IS("hms_slice")) {
            s3k_sentinel(&b, S3_PH_HMS_SLICE);
        } else if (S3K_IS("uuid") || S3K_IS("uuid:random") || S3K_IS("uuid:hostname") ||
                   S3K_IS("uuid:timestamp")) {
            snprintf(err, errlen, "%%{%.*s} placeholder in s3_object_key_format is removed",
                     (int)n, p + 2);
            ls_buf_release(&b);
            return NULL;
        }
        /* anything else: fluent-plugin-s3's gsub with a Hash replaces it by "" */
#undef S3K_IS
        p = end + 1;
    }
    {
        char *out = ls_strdup(b.p ? ls_buf_cstr(&b) : "");
        ls_buf_release(&b);
        return out;
    }
}

static void s3k_uuid(char out[37])
{
    unsigned char r[16];

    if (RAND_bytes(r, sizeof(r)) != 1) {
        int64_t sec;
        int32_t ns;
        ls_wall_now(&sec, &ns);
        for (size_t i = 0; i < sizeof(r); i++) {
            r[i] = (unsigned char)((uint64_t)(sec * 1000000007 + ns) >> (i % 8 * 8)) ^
                   (unsigned char)(i * 37 + (unsigned)getpid());
        }
    }
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12],
             r[13], r[14], r[15]);
}

char *s3_tmpl_render(struct s3_out *s, struct s3_job *j, const char *tmpl)
{
    const struct ls_chunk_info *ci = ls_chunk_info(j->c);
    struct ls_buf step2, out, slice;
    const char *p, *end;
    char *res;

    ls_buf_init(&step2, 0);
    ls_buf_init(&out, 0);
    ls_buf_init(&slice, 0);
    if (ls_chunk_expand(j->c, tmpl, &step2) != LS_OK) {
        ls_buf_release(&step2);
        return NULL;
    }
    if (ci->timekey != LS_NO_TIMEKEY && ls_chunk_expand(j->c, s->slice_fmt, &slice) != LS_OK) {
        ls_buf_release(&step2);
        ls_buf_release(&slice);
        return NULL;
    }
    p = step2.p ? ls_buf_cstr(&step2) : "";
    end = p + step2.len;
    while (p < end) {
        if (p[0] != S3_PH_START || p + 2 >= end || p[2] != S3_PH_END) {
            ls_buf_putc(&out, *p++);
            continue;
        }
        switch (p[1]) {
        case S3_PH_TIME_SLICE:
            ls_buf_append(&out, slice.p ? slice.p : "", slice.len);
            break;
        case S3_PH_DATE_SLICE:
            if (!s->check_object) {
                ls_buf_append(&out, slice.p ? slice.p : "", slice.len);
            }
            break;
        case S3_PH_HMS_SLICE:
            if (!s->check_object) {
                /* Time.now.utc.strftime("%H%M%S") */
                int64_t sec;
                int32_t ns;
                time_t t;
                struct tm tm;
                char hms[16];
                ls_wall_now(&sec, &ns);
                t = (time_t)sec;
                gmtime_r(&t, &tm);
                strftime(hms, sizeof(hms), "%H%M%S", &tm);
                ls_buf_append(&out, hms, strlen(hms));
            }
            break;
        case S3_PH_HEX_RANDOM: {
            /* the first N hex digits of the reversed chunk id (stable per chunk) */
            size_t idlen = strlen(ci->id), k;
            for (k = 0; k < (size_t)s->hex_random_length && k < idlen; k++) {
                ls_buf_putc(&out, ci->id[idlen - 1 - k]);
            }
            break;
        }
        case S3_PH_UUID_FLUSH: {
            char u[37];
            s3k_uuid(u);
            ls_buf_append(&out, u, 36);
            break;
        }
        case S3_PH_INDEX:
            if (s->check_object) {
                ls_buf_append(&out, p, 3);   /* filled by the allocator */
            }
            break;
        default:
            break;
        }
        p += 3;
    }
    res = ls_strdup(out.p ? ls_buf_cstr(&out) : "");
    ls_buf_release(&step2);
    ls_buf_release(&out);
    ls_buf_release(&slice);
    return res;
}

bool s3_index_format_ok(const char *fmt)
{
    const char *p = fmt;

    if (*p++ != '%') {
        return false;
    }
    if (*p == '0') {
        while (*p >= '0' && *p <= '9') {
            p++;
        }
    }
    return (*p == 'd' || *p == 'x' || *p == 'X') && p[1] == '\0';
}

static void s3k_format_index(struct ls_buf *b, const char *fmt, int64_t v)
{
    const char *p = fmt + 1;
    bool zero = *p == '0';
    long width = zero ? strtol(p, (char **)&p, 10) : 0;
    int base = *p == 'd' ? 10 : 16;
    const char *digits = *p == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
    char tmp[32];
    int n = 0;
    uint64_t u = (uint64_t)(v < 0 ? 0 : v);

    do {
        tmp[n++] = digits[u % (uint64_t)base];
        u /= (uint64_t)base;
    } while (u && n < (int)sizeof(tmp));
    for (long k = n; k < width && k < 64; k++) {
        ls_buf_putc(b, '0');
    }
    while (n > 0) {
        ls_buf_putc(b, tmp[--n]);
    }
}

char *s3_key_with_index(const char *base, const char *fmt, int64_t index)
{
    struct ls_buf b;
    const char *p = base;
    char *res;

    ls_buf_init(&b, 0);
    while (*p) {
        if (p[0] == S3_PH_START && p[1] == S3_PH_INDEX && p[2] == S3_PH_END) {
            s3k_format_index(&b, fmt, index);
            p += 3;
            continue;
        }
        ls_buf_putc(&b, *p++);
    }
    res = ls_strdup(b.p ? ls_buf_cstr(&b) : "");
    ls_buf_release(&b);
    return res;
}

int64_t s3_key_index_of(const char *base, const char *fmt, const char *key)
{
    const char *sent = strchr(base, S3_PH_START);
    size_t plen = sent ? (size_t)(sent - base) : strlen(base);
    char conv = fmt[strlen(fmt) - 1];
    const char *q;
    int64_t v = 0;
    char *rebuilt;
    bool same;

    if (sent == NULL || strncmp(key, base, plen) != 0) {
        return -1;
    }
    q = key + plen;
    if (!*q) {
        return -1;
    }
    for (; *q; q++) {
        int d;
        if (*q >= '0' && *q <= '9') {
            d = *q - '0';
        } else if (conv == 'x' && *q >= 'a' && *q <= 'f') {
            d = *q - 'a' + 10;
        } else if (conv == 'X' && *q >= 'A' && *q <= 'F') {
            d = *q - 'A' + 10;
        } else {
            break;
        }
        if (v > (INT64_MAX - 16) / 16) {
            return -1;
        }
        v = v * (conv == 'd' ? 10 : 16) + d;
    }
    if (q == key + plen) {
        return -1;
    }
    rebuilt = s3_key_with_index(base, fmt, v);
    same = strcmp(rebuilt, key) == 0;
    ls_free(rebuilt);
    return same ? v : -1;
}

/* ------------------------------------------------------------------ */
/* the %{index} allocator                                               */

static bool s3k_used(const struct s3_prefix *pf, int64_t v)
{
    size_t lo = 0, hi = pf->nused;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (pf->used[mid] == v) {
            return true;
        }
        if (pf->used[mid] < v) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return false;
}

static void s3k_mark(struct s3_prefix *pf, int64_t v)
{
    size_t i;

    if (v < 0 || s3k_used(pf, v)) {
        return;
    }
    if (pf->nused == pf->cap) {
        pf->cap = pf->cap ? pf->cap * 2 : 16;
        pf->used = ls_realloc(pf->used, pf->cap * sizeof(*pf->used));
    }
    for (i = pf->nused; i > 0 && pf->used[i - 1] > v; i--) {
        pf->used[i] = pf->used[i - 1];
    }
    pf->used[i] = v;
    pf->nused++;
}

static void s3k_unmark(struct s3_prefix *pf, int64_t v)
{
    for (size_t i = 0; i < pf->nused; i++) {
        if (pf->used[i] == v) {
            memmove(&pf->used[i], &pf->used[i + 1], (pf->nused - i - 1) * sizeof(*pf->used));
            pf->nused--;
            return;
        }
    }
}

static int64_t s3k_first_free(const struct s3_prefix *pf)
{
    int64_t want = 0;

    for (size_t i = 0; i < pf->nused; i++) {
        if (pf->used[i] == want) {
            want++;
        } else if (pf->used[i] > want) {
            break;
        }
    }
    return want;
}

static void s3k_prefix_free(struct s3_prefix *pf)
{
    ls_free(pf->prefix);
    ls_free(pf->used);
    ls_free(pf);
}

static struct s3_prefix *s3k_prefix_get(struct s3_out *s, const char *prefix)
{
    size_t i, victim = SIZE_MAX;
    struct s3_prefix *pf;

    s->seq++;
    for (i = 0; i < s->nprefixes; i++) {
        if (strcmp(s->prefixes[i]->prefix, prefix) == 0) {
            s->prefixes[i]->last_use = s->seq;
            return s->prefixes[i];
        }
    }
    if (s->nprefixes >= S3_MAX_PREFIXES) {
        /* forget the least recently used idle prefix (old slices); it is re-listed if needed */
        for (i = 0; i < s->nprefixes; i++) {
            pf = s->prefixes[i];
            if (pf->refs == 0 && !pf->listing &&
                (victim == SIZE_MAX || pf->last_use < s->prefixes[victim]->last_use)) {
                victim = i;
            }
        }
        if (victim != SIZE_MAX) {
            s3k_prefix_free(s->prefixes[victim]);
            s->prefixes[victim] = s->prefixes[--s->nprefixes];
        }
    }
    pf = ls_calloc(1, sizeof(*pf));
    pf->prefix = ls_strdup(prefix);
    pf->last_use = s->seq;
    s->prefixes = ls_realloc(s->prefixes, (s->nprefixes + 1) * sizeof(*s->prefixes));
    s->prefixes[s->nprefixes++] = pf;
    return pf;
}

void s3_key_release_all(struct s3_out *s)
{
    for (size_t i = 0; i < s->nprefixes; i++) {
        s3k_prefix_free(s->prefixes[i]);
    }
    ls_free(s->prefixes);
    s->prefixes = NULL;
    s->nprefixes = 0;
}

static void s3k_done(struct s3_job *j, int rc, const char *msg)
{
    if (j->prefix) {
        j->prefix->refs--;
        j->prefix = NULL;
    }
    j->key_done(j, rc, msg);
}

static void s3k_pick(struct s3_job *j);

static void s3k_head_cb(struct s3_out *s, struct ls_http_resp *r, void *arg)
{
    struct s3_job *j = arg;
    char msg[512], code[64];

    if (r->status == 404) {
        if (j->prefix == NULL) {
            j->key = ls_strdup(j->base);
        }
        /* with %{index}, j->key was set by s3k_pick */
        s3k_done(j, LS_OK, NULL);
        return;
    }
    if (r->status >= 200 && r->status < 300) {
        if (j->prefix) {
            /* taken by someone else (another host, or deleted and re-created): next index */
            ls_free(j->key);
            j->key = NULL;
            s3k_pick(j);
            return;
        }
        if (s->overwrite) {
            ls_plg_warn(s->ins, "object '%s' already exists; overwriting it (overwrite true)",
                        j->base);
            j->key = ls_strdup(j->base);
            s3k_done(j, LS_OK, NULL);
            return;
        }
        snprintf(msg, sizeof(msg), "duplicated path is generated. use %%{index} in "
                 "s3_object_key_format: path = %s", j->base);
        s3k_done(j, LS_ERROR, msg);
        return;
    }
    s3_describe_error(s, "HEAD", j->prefix ? j->key : j->base, r, msg, sizeof(msg), code,
                      sizeof(code));
    if (j->prefix) {
        s3k_unmark(j->prefix, j->index);
        ls_free(j->key);
        j->key = NULL;
    }
    s3k_done(j, LS_ERROR, msg);
}

static void s3k_head(struct s3_job *j, const char *key)
{
    struct s3_call_opts o = { .method = "HEAD", .key = key, .fd = -1, .timeout = 60 };
    char msg[256];

    if (s3_call(j->s, &o, s3k_head_cb, j) != LS_OK) {
        snprintf(msg, sizeof(msg), "HEAD '%s': cannot start the request", key);
        if (j->prefix) {
            s3k_unmark(j->prefix, j->index);
            ls_free(j->key);
            j->key = NULL;
        }
        s3k_done(j, LS_ERROR, msg);
    }
}

static void s3k_pick(struct s3_job *j)
{
    struct s3_prefix *pf = j->prefix;

    if (++j->probes > S3_MAX_PROBES) {
        s3k_done(j, LS_ERROR, "no free %{index} found after 10000 probes");
        return;
    }
    j->index = s3k_first_free(pf);
    s3k_mark(pf, j->index);     /* reserved now: a concurrent flush takes the next one */
    j->key = s3_key_with_index(j->base, j->s->index_format, j->index);
    s3k_head(j, j->key);
}

static void s3k_list_page(struct s3_job *j);

struct s3k_reserved {
    struct s3_job *j;
    struct s3_prefix *pf;
};

static void s3k_reserved_cb(struct ls_chunk *c, void *arg)
{
    struct s3k_reserved *r = arg;
    char *key = s3_state_key(ls_chunk_state(c));

    if (key) {
        s3k_mark(r->pf, s3_key_index_of(r->j->base, r->j->s->index_format, key));
        ls_free(key);
    }
}

static void s3k_list_finish(struct s3_prefix *pf, int rc, const char *msg, struct s3_job *first)
{
    struct s3_job *w = pf->waiters, *next;

    pf->waiters = NULL;
    pf->listing = false;
    if (rc == LS_OK) {
        /*
         * The listing shows uploaded objects only. A chunk whose key was fixed earlier (by
         * this process before the prefix was last forgotten, or by the one before a crash)
         * and whose upload has not succeeded yet is not in it, yet its retry will PUT that
         * key: taking the index again would overwrite one chunk's object with the other's.
         */
        struct s3k_reserved r = { first, pf };
        ls_output_each_chunk(first->s->ins, s3k_reserved_cb, &r);
        pf->seeded = true;
    }
    /* waiters were pushed in front: run them in arrival order */
    {
        struct s3_job *rev = NULL;
        for (; w; w = next) {
            next = w->next;
            w->next = rev;
            rev = w;
        }
        w = rev;
    }
    if (rc == LS_OK) {
        s3k_pick(first);
    } else {
        s3k_done(first, rc, msg);
    }
    for (; w; w = next) {
        next = w->next;
        w->next = NULL;
        if (rc == LS_OK) {
            s3k_pick(w);
        } else {
            s3k_done(w, rc, msg);
        }
    }
}

static void s3k_list_cb(struct s3_out *s, struct ls_http_resp *r, void *arg)
{
    struct s3_job *j = arg;
    struct s3_prefix *pf = j->prefix;
    struct s3_list_result lr;
    struct s3_xml_error xe;
    char msg[512], code[64];

    if (r->status < 200 || r->status >= 300) {
        s3_describe_error(s, "ListObjects", pf->prefix, r, msg, sizeof(msg), code, sizeof(code));
        if (r->status == 403 && strcmp(code, "AccessDenied") == 0) {
            /* no s3:ListBucket: fall back to HEAD probing (what fluent-plugin-s3 needs) */
            if (!s->list_denied_warned) {
                ls_plg_warn(s->ins, "ListObjects is denied (no s3:ListBucket); %%{index} is "
                            "found by HEAD requests instead");
                s->list_denied_warned = true;
            }
            s3k_list_finish(pf, LS_OK, NULL, j);
            return;
        }
        s3k_list_finish(pf, LS_ERROR, msg, j);
        return;
    }
    memset(&lr, 0, sizeof(lr));
    memset(&xe, 0, sizeof(xe));
    if (s3_xml_parse_list(r->body.p, r->body.len, &lr, &xe) != LS_OK) {
        snprintf(msg, sizeof(msg), "ListObjects '%s': unreadable response%s%s", pf->prefix,
                 xe.code ? ": " : "", xe.code ? xe.code : "");
        s3_xml_error_release(&xe);
        s3_list_result_release(&lr);
        s3k_list_finish(pf, LS_ERROR, msg, j);
        return;
    }
    s3_xml_error_release(&xe);
    for (size_t i = 0; i < lr.n; i++) {
        int64_t v = s3_key_index_of(j->base, s->index_format, lr.objects[i].key);
        if (v >= 0) {
            s3k_mark(pf, v);
        }
    }
    ls_free(j->list_marker);
    j->list_marker = NULL;
    if (lr.truncated && lr.n > 0 && ++j->list_pages < S3_MAX_LIST_PAGES) {
        j->list_marker = ls_strdup(lr.next_token ? lr.next_token : lr.objects[lr.n - 1].key);
        s3_list_result_release(&lr);
        s3k_list_page(j);
        return;
    }
    if (lr.truncated && lr.n > 0) {
        /* still correct (each index is confirmed free by a HEAD), but every flush may now
         * probe its way past the unlisted keys: say why uploads got slow */
        ls_plg_warn(s->ins, "ListObjects of '%s' stopped at its cap of %d pages with more "
                    "keys left: %%{index} values past those listed are found by HEAD "
                    "requests (a more specific path or time_slice_format keeps prefixes "
                    "small)", pf->prefix, S3_MAX_LIST_PAGES);
    }
    s3_list_result_release(&lr);
    s3k_list_finish(pf, LS_OK, NULL, j);
}

static void s3k_list_page(struct s3_job *j)
{
    struct aws_kv q[2] = { { "prefix", j->prefix->prefix }, { "marker", j->list_marker } };
    struct s3_call_opts o = { .method = "GET", .key = NULL, .query = q,
                              .nquery = j->list_marker ? 2 : 1, .fd = -1, .timeout = 60 };

    if (s3_call(j->s, &o, s3k_list_cb, j) != LS_OK) {
        s3k_list_finish(j->prefix, LS_ERROR, "ListObjects: cannot start the request", j);
    }
}

void s3_key_resolve(struct s3_job *j, void (*done)(struct s3_job *j, int rc, const char *msg))
{
    struct s3_out *s = j->s;
    const char *sent;
    char *prefix;

    j->key_done = done;
    j->index = -1;
    ls_free(j->base);
    j->base = s3_tmpl_render(s, j, s->key_tmpl);
    if (j->base == NULL) {
        done(j, LS_DECLINED, "cannot expand s3_object_key_format for this chunk");
        return;
    }
    if (j->base[0] == '\0') {
        done(j, LS_DECLINED, "s3_object_key_format expands to an empty key");
        return;
    }
    if (!s->check_object) {
        j->key = ls_strdup(j->base);
        done(j, LS_OK, NULL);
        return;
    }
    sent = strchr(j->base, S3_PH_START);
    if (sent == NULL) {
        s3k_head(j, j->base);
        return;
    }
    prefix = ls_strndup(j->base, (size_t)(sent - j->base));
    j->prefix = s3k_prefix_get(s, prefix);
    ls_free(prefix);
    j->prefix->refs++;
    j->probes = 0;
    if (j->prefix->seeded) {
        s3k_pick(j);
    } else if (j->prefix->listing) {
        j->next = j->prefix->waiters;
        j->prefix->waiters = j;
    } else {
        j->prefix->listing = true;
        j->list_pages = 0;
        s3k_list_page(j);
    }
}
