/*
 * rds_util.c - the pure parts of the rds_slowlog input: the watermark state
 * file, conversions of log-table column text, and row fingerprints.
 *
 * The state file is a few "key value" lines written atomically (tmp file,
 * fsync, rename, fsync of the directory), so after kill -9 it holds either
 * the old or the new watermark, never a torn one. It is text so an operator
 * can read it (and delete it to re-ship a table on purpose).
 */
#include "rds.h"

#include <ctype.h>
#include <inttypes.h>

#define STATE_MAGIC "# logship rds log state v1"

uint64_t rds_fnv(uint64_t h, const void *p, size_t len)
{
    const unsigned char *s = p;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

uint64_t rds_hash_value(uint64_t h, const char *p, size_t len, bool is_null)
{
    unsigned char hdr[5];
    uint32_t n = (uint32_t)len;

    /* a length prefix keeps ("ab","c") apart from ("a","bc"); NULL has its own marker */
    hdr[0] = is_null ? 0 : 1;
    memcpy(hdr + 1, &n, 4);
    h = rds_fnv(h, hdr, sizeof(hdr));
    if (!is_null && len) {
        h = rds_fnv(h, p, len);
    }
    return h;
}

static int parse_hex64(const char *s, uint64_t *out)
{
    char *end;

    errno = 0;
    *out = strtoull(s, &end, 16);
    if (errno || end == s || (*end != '\0' && !isspace((unsigned char)*end))) {
        return LS_ERROR;
    }
    return LS_OK;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;

    if (*s == '-') {
        return LS_ERROR;
    }
    errno = 0;
    *out = strtoull(s, &end, 10);
    if (errno || end == s || (*end != '\0' && !isspace((unsigned char)*end))) {
        return LS_ERROR;
    }
    return LS_OK;
}

int rds_state_parse(const char *text, size_t len, struct rds_state *st)
{
    char line[256];
    size_t i = 0;
    bool magic = false;

    memset(st, 0, sizeof(*st));
    while (i < len) {
        size_t j = i, n;
        char *val;

        while (j < len && text[j] != '\n') {
            j++;
        }
        n = j - i;
        if (n >= sizeof(line)) {
            return LS_ERROR;
        }
        memcpy(line, text + i, n);
        line[n] = '\0';
        i = j + 1;
        if (n == 0) {
            continue;
        }
        if (line[0] == '#') {
            if (strcmp(line, STATE_MAGIC) == 0) {
                magic = true;
            }
            continue;
        }
        val = strchr(line, ' ');
        if (val == NULL) {
            return LS_ERROR;
        }
        *val++ = '\0';
        if (strcmp(line, "table") == 0) {
            if (strlen(val) >= sizeof(st->table)) {
                return LS_ERROR;
            }
            snprintf(st->table, sizeof(st->table), "%s", val);
        } else if (strcmp(line, "ident") == 0) {
            if (parse_hex64(val, &st->ident) != LS_OK) {
                return LS_ERROR;
            }
        } else if (strcmp(line, "done") == 0) {
            if (parse_u64(val, &st->done) != LS_OK) {
                return LS_ERROR;
            }
        } else if (strcmp(line, "last") == 0) {
            if (parse_hex64(val, &st->last) != LS_OK) {
                return LS_ERROR;
            }
        }
        /* unknown keys are ignored: a newer version may add some */
    }
    return magic ? LS_OK : LS_ERROR;
}

size_t rds_state_format(const struct rds_state *st, char *out, size_t outlen)
{
    int n = snprintf(out, outlen,
                     STATE_MAGIC "\n"
                     "table %s\n"
                     "ident %016" PRIx64 "\n"
                     "done %" PRIu64 "\n"
                     "last %016" PRIx64 "\n",
                     st->table, st->ident, st->done, st->last);
    if (n < 0) {
        return 0;
    }
    return (size_t)n < outlen ? (size_t)n : outlen - 1;
}

int rds_state_load(const char *path, struct rds_state *st)
{
    char *text = NULL;
    size_t len = 0;
    int rc;

    memset(st, 0, sizeof(*st));
    if (ls_read_file(path, 1 << 16, &text, &len) != LS_OK) {
        return errno == ENOENT ? LS_OK : LS_ERROR;
    }
    rc = rds_state_parse(text, len, st);
    ls_free(text);
    return rc;
}

int rds_state_save(const char *path, const struct rds_state *st)
{
    char buf[512];
    size_t n = rds_state_format(st, buf, sizeof(buf));

    return ls_write_file_atomic(path, buf, n, 0644);
}

int rds_parse_duration(const char *s, size_t len, double *out)
{
    size_t i = 0;
    bool neg = false;
    int64_t h = 0, m = 0, sec = 0;
    double frac = 0.0, scale = 0.1;
    int nd;

    if (i < len && s[i] == '-') {
        neg = true;
        i++;
    }
    /* hours: 1..4 digits (TIME reaches 838:59:59) */
    for (nd = 0; i < len && isdigit((unsigned char)s[i]) && nd < 4; nd++, i++) {
        h = h * 10 + (s[i] - '0');
    }
    if (nd == 0 || i >= len || s[i] != ':') {
        return LS_ERROR;
    }
    i++;
    if (i + 2 > len || !isdigit((unsigned char)s[i]) || !isdigit((unsigned char)s[i + 1])) {
        return LS_ERROR;
    }
    m = (s[i] - '0') * 10 + (s[i + 1] - '0');
    i += 2;
    if (i >= len || s[i] != ':') {
        return LS_ERROR;
    }
    i++;
    if (i + 2 > len || !isdigit((unsigned char)s[i]) || !isdigit((unsigned char)s[i + 1])) {
        return LS_ERROR;
    }
    sec = (s[i] - '0') * 10 + (s[i + 1] - '0');
    i += 2;
    if (m > 59 || sec > 59) {
        return LS_ERROR;
    }
    if (i < len && s[i] == '.') {
        i++;
        for (nd = 0; i < len && isdigit((unsigned char)s[i]); nd++, i++) {
            if (nd < 9) {
                frac += (s[i] - '0') * scale;
                scale /= 10.0;
            }
        }
        if (nd == 0) {
            return LS_ERROR;
        }
    }
    if (i != len) {
        return LS_ERROR;
    }
    *out = (double)(h * 3600 + m * 60 + sec) + frac;
    if (neg) {
        *out = -*out;
    }
    return LS_OK;
}

int rds_parse_epoch(const char *s, size_t len, int64_t *sec, int32_t *nsec)
{
    size_t i = 0;
    int64_t v = 0;
    int32_t ns = 0;
    int nd;

    if (len == 0) {
        return LS_ERROR;
    }
    for (nd = 0; i < len && isdigit((unsigned char)s[i]); nd++, i++) {
        if (nd >= 18) {
            return LS_ERROR;
        }
        v = v * 10 + (s[i] - '0');
    }
    if (nd == 0) {
        return LS_ERROR;
    }
    if (i < len && s[i] == '.') {
        int32_t scale = 100000000;
        i++;
        for (nd = 0; i < len && isdigit((unsigned char)s[i]); nd++, i++) {
            if (nd < 9) {
                ns += (s[i] - '0') * scale;
                scale /= 10;
            }
        }
    }
    if (i != len) {
        return LS_ERROR;
    }
    *sec = v;
    *nsec = ns;
    return LS_OK;
}

int rds_parse_int(const char *s, size_t len, int64_t *out)
{
    char tmp[32];
    char *end;
    long long v;

    if (len == 0 || len >= sizeof(tmp)) {
        return LS_ERROR;
    }
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    errno = 0;
    v = strtoll(tmp, &end, 10);
    if (errno || *end != '\0') {
        return LS_ERROR;
    }
    *out = v;
    return LS_OK;
}

int rds_split_user_host(const char *s, size_t len, struct rds_slice *user,
                        struct rds_slice *host, struct rds_slice *ip)
{
    const char *end = s + len, *lb, *rb, *at, *ilb, *irb;

    user->p = host->p = ip->p = s;
    user->len = host->len = ip->len = 0;
    /* priv_user[user] @ host [ip]: the bracketed name is the login user */
    lb = memchr(s, '[', len);
    if (lb == NULL) {
        return LS_DECLINED;
    }
    rb = memchr(lb, ']', (size_t)(end - lb));
    if (rb == NULL || rb + 3 > end || rb[1] != ' ' || rb[2] != '@') {
        return LS_DECLINED;
    }
    at = rb + 3;
    if (at < end && *at == ' ') {
        at++;
    }
    /* the ip in brackets is the last [...] of the string */
    irb = end;
    while (irb > at && irb[-1] == ' ') {
        irb--;
    }
    if (irb == at || irb[-1] != ']') {
        return LS_DECLINED;
    }
    irb--;
    ilb = irb;
    while (ilb > at && *ilb != '[') {
        ilb--;
    }
    if (*ilb != '[') {
        return LS_DECLINED;
    }
    user->p = lb + 1;
    user->len = (size_t)(rb - lb - 1);
    host->p = at;
    host->len = (size_t)(ilb - at);
    while (host->len && host->p[host->len - 1] == ' ') {
        host->len--;
    }
    ip->p = ilb + 1;
    ip->len = (size_t)(irb - ilb - 1);
    return LS_OK;
}
