/*
 * param.c - the generic parameter binder and the typed value parsers.
 *
 * A plugin's struct ls_param table is the single source of truth: the binder
 * parses the default text and the user's text with the same functions
 * (ls_parse_size, ls_parse_time, ...), so a default can never mean something
 * different from the same text written in a config file. Values are written
 * into the plugin's struct through the row's offset.
 *
 * Value syntax follows fluentd's types.rb, with one deliberate change: fluentd
 * matches sizes and times with unanchored regexes ("1h30m" is 30 minutes,
 * "abc" is 0 seconds); we anchor them and reject anything else with an error
 * naming the expected form, because a silently misread flush interval is
 * worse than a refused start.
 *
 * JSON arrays/objects in values are read by a small hand-written reader
 * rather than a library: config values are tiny, we need nested values kept
 * as their exact compact text (byte-preserving), and the conf parser already
 * hands us compact JSON.
 */
#include "param.h"
#include "log.h"
#include "buf.h"

#include <ctype.h>
#include <math.h>

#define PARAM_VALUE_MAX (1024 * 1024)   /* cap on a decoded value (outside input) */
#define PARAM_JSON_DEPTH 64             /* nesting cap for JSON values */

/* ------------------------------------------------------------------ */
/* small helpers                                                        */

static const char *skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') {
        s++;
    }
    return s;
}

/* A trimmed copy of [s, s+n). */
static char *dup_trim(const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) {
        n--;
    }
    return ls_strndup(s, n);
}

/* Is name one of the '|'-separated entries of list? Returns its index or -1. */
static int list_index(const char *list, const char *name)
{
    const char *p = list;
    size_t n = strlen(name);
    int i = 0;

    if (list == NULL) {
        return -1;
    }
    for (;;) {
        const char *e = strchr(p, '|');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0) {
            return i;
        }
        if (e == NULL) {
            return -1;
        }
        p = e + 1;
        i++;
    }
}

/* ------------------------------------------------------------------ */
/* scalar parsers                                                       */

int ls_parse_int(const char *s, int64_t *out)
{
    char *end;
    long long v;

    s = skip_ws(s);
    if (*s == '\0') {
        return LS_ERROR;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *skip_ws(end) != '\0') {
        return LS_ERROR;
    }
    *out = v;
    return LS_OK;
}

int ls_parse_float(const char *s, double *out)
{
    char *end;
    double v;

    s = skip_ws(s);
    if (*s == '\0') {
        return LS_ERROR;
    }
    errno = 0;
    v = strtod(s, &end);
    if (errno == ERANGE || end == s || *skip_ws(end) != '\0' || isnan(v) || isinf(v)) {
        return LS_ERROR;
    }
    *out = v;
    return LS_OK;
}

/*
 * "8m", "1G", "256MB", "1024": an integer with an optional k/m/g/t suffix
 * (case-insensitive, powers of 1024, as types.rb) and an optional trailing
 * "b" (fluentd's unanchored regex accepts "8mb", so configs contain it).
 */
int ls_parse_size(const char *s, int64_t *out)
{
    const char *p = skip_ws(s);
    uint64_t v = 0;
    int shift = 0;
    bool digits = false;

    while (*p >= '0' && *p <= '9') {
        if (v > (UINT64_MAX - 9) / 10) {
            return LS_ERROR;
        }
        v = v * 10 + (uint64_t)(*p - '0');
        p++;
        digits = true;
    }
    if (!digits) {
        return LS_ERROR;
    }
    switch (tolower((unsigned char)*p)) {
    case 'k': shift = 10; p++; break;
    case 'm': shift = 20; p++; break;
    case 'g': shift = 30; p++; break;
    case 't': shift = 40; p++; break;
    default: break;
    }
    if (*p == 'b' || *p == 'B') {
        p++;
    }
    if (*skip_ws(p) != '\0') {
        return LS_ERROR;
    }
    if (v > ((uint64_t)INT64_MAX >> shift)) {
        return LS_ERROR;
    }
    *out = (int64_t)(v << shift);
    return LS_OK;
}

/*
 * "10s", "1440m", "1h", "1d", "0.5": a number with an optional s/m/h/d
 * suffix, else seconds. Suffixes are lower-case like fluentd's regexes
 * ("1H" is 1 second in fluentd; here it is an error rather than a surprise).
 * "1.5h" is 5400 s (fluentd's unanchored regex would read "5h").
 */
int ls_parse_time(const char *s, double *out)
{
    const char *p = skip_ws(s);
    char *end;
    double v;
    double mul = 1;

    if (!((*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '+')) {
        return LS_ERROR;
    }
    errno = 0;
    v = strtod(p, &end);
    if (end == p || errno == ERANGE || isnan(v) || isinf(v)) {
        return LS_ERROR;
    }
    /* strtod also reads hex floats and exponents; keep to plain decimals */
    for (const char *q = p; q < end; q++) {
        if (!((*q >= '0' && *q <= '9') || *q == '.' || *q == '-' || *q == '+')) {
            return LS_ERROR;
        }
    }
    switch (*end) {
    case 's': mul = 1; end++; break;
    case 'm': mul = 60; end++; break;
    case 'h': mul = 3600; end++; break;
    case 'd': mul = 86400; end++; break;
    default: break;
    }
    if (*skip_ws(end) != '\0') {
        return LS_ERROR;
    }
    *out = v * mul;
    return LS_OK;
}

/*
 * true/yes and false/no; a bare key ("") is true, and so is a value starting
 * with '#' (fluentd: "flag # comment" hands the plugin "# comment").
 */
int ls_parse_bool(const char *s, bool *out)
{
    const char *p = skip_ws(s);
    size_t n = strlen(p);

    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) {
        n--;
    }
    if (n == 0 || p[0] == '#' || (n == 4 && strncasecmp(p, "true", 4) == 0) ||
        (n == 3 && strncasecmp(p, "yes", 3) == 0)) {
        *out = true;
        return LS_OK;
    }
    if ((n == 5 && strncasecmp(p, "false", 5) == 0) || (n == 2 && strncasecmp(p, "no", 2) == 0)) {
        *out = false;
        return LS_OK;
    }
    return LS_ERROR;
}

/* ------------------------------------------------------------------ */
/* a minimal JSON reader for array/hash values                          */

struct pj {
    const char *s;
    size_t pos;
};

static void pj_ws(struct pj *j)
{
    while (j->s[j->pos] == ' ' || j->s[j->pos] == '\t' || j->s[j->pos] == '\r' ||
           j->s[j->pos] == '\n') {
        j->pos++;
    }
}

static int hexval(int c)
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

static void put_utf8(struct ls_buf *b, uint32_t cp)
{
    char u[4];
    size_t n;

    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    ls_buf_append(b, u, n);
}

static int pj_hex4(struct pj *j, uint32_t *cp)
{
    uint32_t v = 0;

    for (int i = 0; i < 4; i++) {
        int h = hexval((unsigned char)j->s[j->pos + (size_t)i]);
        if (h < 0) {
            return LS_ERROR;
        }
        v = (v << 4) | (uint32_t)h;
    }
    j->pos += 4;
    *cp = v;
    return LS_OK;
}

/* A JSON string at j->pos ('"'), decoded into dec (if not NULL). */
static int pj_string(struct pj *j, struct ls_buf *dec)
{
    j->pos++;
    for (;;) {
        unsigned char c = (unsigned char)j->s[j->pos];
        if (c == '\0' || c < 0x20) {
            return LS_ERROR;
        }
        j->pos++;
        if (c == '"') {
            return LS_OK;
        }
        if (c != '\\') {
            if (dec && ls_buf_putc(dec, (char)c) != LS_OK) {
                return LS_ERROR;
            }
            continue;
        }
        c = (unsigned char)j->s[j->pos++];
        switch (c) {
        case '"': case '\\': case '/':
            break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (pj_hex4(j, &cp) != LS_OK) {
                return LS_ERROR;
            }
            if (cp >= 0xd800 && cp < 0xdc00 && j->s[j->pos] == '\\' && j->s[j->pos + 1] == 'u') {
                uint32_t lo;
                j->pos += 2;
                if (pj_hex4(j, &lo) != LS_OK || lo < 0xdc00 || lo > 0xdfff) {
                    return LS_ERROR;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (dec) {
                put_utf8(dec, cp);
                if (dec->max && dec->len >= dec->max) {
                    return LS_ERROR;
                }
            }
            continue;
        }
        default:
            return LS_ERROR;
        }
        if (dec && ls_buf_putc(dec, (char)c) != LS_OK) {
            return LS_ERROR;
        }
    }
}

static int pj_value(struct pj *j, int depth);

static int pj_container(struct pj *j, char close, int depth)
{
    if (depth > PARAM_JSON_DEPTH) {
        return LS_ERROR;
    }
    j->pos++;
    pj_ws(j);
    if (j->s[j->pos] == close) {
        j->pos++;
        return LS_OK;
    }
    for (;;) {
        pj_ws(j);
        if (close == '}') {
            if (j->s[j->pos] != '"' || pj_string(j, NULL) != LS_OK) {
                return LS_ERROR;
            }
            pj_ws(j);
            if (j->s[j->pos] != ':') {
                return LS_ERROR;
            }
            j->pos++;
        }
        if (pj_value(j, depth + 1) != LS_OK) {
            return LS_ERROR;
        }
        pj_ws(j);
        if (j->s[j->pos] == ',') {
            j->pos++;
            continue;
        }
        if (j->s[j->pos] == close) {
            j->pos++;
            return LS_OK;
        }
        return LS_ERROR;
    }
}

static int pj_number(struct pj *j)
{
    const char *s = j->s;
    size_t p = j->pos;

    if (s[p] == '-') {
        p++;
    }
    if (s[p] == '0') {
        p++;
    } else if (s[p] >= '1' && s[p] <= '9') {
        while (s[p] >= '0' && s[p] <= '9') {
            p++;
        }
    } else {
        return LS_ERROR;
    }
    if (s[p] == '.') {
        p++;
        if (!(s[p] >= '0' && s[p] <= '9')) {
            return LS_ERROR;
        }
        while (s[p] >= '0' && s[p] <= '9') {
            p++;
        }
    }
    if (s[p] == 'e' || s[p] == 'E') {
        p++;
        if (s[p] == '+' || s[p] == '-') {
            p++;
        }
        if (!(s[p] >= '0' && s[p] <= '9')) {
            return LS_ERROR;
        }
        while (s[p] >= '0' && s[p] <= '9') {
            p++;
        }
    }
    j->pos = p;
    return LS_OK;
}

/* Validate one JSON value at j->pos (skipping leading blanks). */
static int pj_value(struct pj *j, int depth)
{
    pj_ws(j);
    switch (j->s[j->pos]) {
    case '{':
        return pj_container(j, '}', depth);
    case '[':
        return pj_container(j, ']', depth);
    case '"':
        return pj_string(j, NULL);
    case 't':
        if (strncmp(j->s + j->pos, "true", 4) == 0) {
            j->pos += 4;
            return LS_OK;
        }
        return LS_ERROR;
    case 'f':
        if (strncmp(j->s + j->pos, "false", 5) == 0) {
            j->pos += 5;
            return LS_OK;
        }
        return LS_ERROR;
    case 'n':
        if (strncmp(j->s + j->pos, "null", 4) == 0) {
            j->pos += 4;
            return LS_OK;
        }
        return LS_ERROR;
    default:
        return pj_number(j);
    }
}

/*
 * One element as a C string: strings decoded, null as "", everything else
 * (numbers, booleans, nested arrays/objects) as its JSON text with the
 * insignificant blanks of nested values kept as written.
 */
static char *pj_item(struct pj *j)
{
    size_t start;

    pj_ws(j);
    if (j->s[j->pos] == '"') {
        struct ls_buf b;
        ls_buf_init(&b, PARAM_VALUE_MAX);
        if (pj_string(j, &b) != LS_OK) {
            ls_buf_release(&b);
            return NULL;
        }
        ls_buf_cstr(&b);
        if (b.p == NULL) {
            return ls_strdup("");
        }
        return ls_buf_detach(&b, NULL);
    }
    start = j->pos;
    if (pj_value(j, 1) != LS_OK) {
        return NULL;
    }
    if (j->pos - start == 4 && memcmp(j->s + start, "null", 4) == 0) {
        return ls_strdup("");
    }
    return ls_strndup(j->s + start, j->pos - start);
}

static int parse_json_array(const char *s, struct ls_strv *out)
{
    struct pj j = { s, 0 };

    pj_ws(&j);
    if (s[j.pos] != '[') {
        return LS_ERROR;
    }
    j.pos++;
    pj_ws(&j);
    if (s[j.pos] == ']') {
        j.pos++;
        pj_ws(&j);
        return s[j.pos] == '\0' ? LS_OK : LS_ERROR;
    }
    for (;;) {
        char *item = pj_item(&j);
        if (item == NULL) {
            return LS_ERROR;
        }
        out->v = ls_realloc(out->v, (out->n + 1) * sizeof(char *));
        out->v[out->n++] = item;
        pj_ws(&j);
        if (s[j.pos] == ',') {
            j.pos++;
            continue;
        }
        if (s[j.pos] != ']') {
            return LS_ERROR;
        }
        j.pos++;
        pj_ws(&j);
        return s[j.pos] == '\0' ? LS_OK : LS_ERROR;
    }
}

/* Add or replace (a later key wins, as in a Ruby Hash). Takes ownership. */
static void kvv_put(struct ls_kvv *h, char *k, char *v)
{
    for (size_t i = 0; i < h->n; i++) {
        if (strcmp(h->v[i].key, k) == 0) {
            ls_free(h->v[i].value);
            h->v[i].value = v;
            ls_free(k);
            return;
        }
    }
    h->v = ls_realloc(h->v, (h->n + 1) * sizeof(struct ls_kv));
    h->v[h->n].key = k;
    h->v[h->n].value = v;
    h->n++;
}

static int parse_json_hash(const char *s, struct ls_kvv *out)
{
    struct pj j = { s, 0 };

    pj_ws(&j);
    if (s[j.pos] != '{') {
        return LS_ERROR;
    }
    j.pos++;
    pj_ws(&j);
    if (s[j.pos] == '}') {
        j.pos++;
        pj_ws(&j);
        return s[j.pos] == '\0' ? LS_OK : LS_ERROR;
    }
    for (;;) {
        char *k;
        char *v;

        pj_ws(&j);
        if (s[j.pos] != '"' || (k = pj_item(&j)) == NULL) {
            return LS_ERROR;
        }
        pj_ws(&j);
        if (s[j.pos] != ':') {
            ls_free(k);
            return LS_ERROR;
        }
        j.pos++;
        v = pj_item(&j);
        if (v == NULL) {
            ls_free(k);
            return LS_ERROR;
        }
        kvv_put(out, k, v);
        pj_ws(&j);
        if (s[j.pos] == ',') {
            j.pos++;
            continue;
        }
        if (s[j.pos] != '}') {
            return LS_ERROR;
        }
        j.pos++;
        pj_ws(&j);
        return s[j.pos] == '\0' ? LS_OK : LS_ERROR;
    }
}

/* ------------------------------------------------------------------ */
/* array / hash                                                         */

void ls_strv_release(struct ls_strv *v)
{
    if (v == NULL) {
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        ls_free(v->v[i]);
    }
    ls_free(v->v);
    v->v = NULL;
    v->n = 0;
}

void ls_kvv_release(struct ls_kvv *v)
{
    if (v == NULL) {
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        ls_free(v->v[i].key);
        ls_free(v->v[i].value);
    }
    ls_free(v->v);
    v->v = NULL;
    v->n = 0;
}

const char *ls_kvv_get(const struct ls_kvv *v, const char *key)
{
    const char *r = NULL;

    for (size_t i = 0; v && i < v->n; i++) {
        if (strcmp(v->v[i].key, key) == 0) {
            r = v->v[i].value;
        }
    }
    return r;
}

/* JSON array, or "a, b ,c" (split on commas, blanks around items dropped). */
int ls_parse_array(const char *s, struct ls_strv *out)
{
    const char *p = skip_ws(s);

    out->v = NULL;
    out->n = 0;
    if (*p == '[') {
        if (parse_json_array(p, out) != LS_OK) {
            ls_strv_release(out);
            return LS_ERROR;
        }
        return LS_OK;
    }
    if (*p == '\0') {
        return LS_OK;
    }
    for (;;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        out->v = ls_realloc(out->v, (out->n + 1) * sizeof(char *));
        out->v[out->n++] = dup_trim(p, n);
        if (e == NULL) {
            break;
        }
        p = e + 1;
    }
    return LS_OK;
}

/* JSON object, or "k1:v1,k2:v2" (split on commas, then on the first ':'). */
int ls_parse_hash(const char *s, struct ls_kvv *out)
{
    const char *p = skip_ws(s);

    out->v = NULL;
    out->n = 0;
    if (*p == '{') {
        if (parse_json_hash(p, out) != LS_OK) {
            ls_kvv_release(out);
            return LS_ERROR;
        }
        return LS_OK;
    }
    if (*p == '\0') {
        return LS_OK;
    }
    for (;;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *c = memchr(p, ':', n);
        if (c == NULL) {
            ls_kvv_release(out);
            return LS_ERROR;
        }
        kvv_put(out, dup_trim(p, (size_t)(c - p)), dup_trim(c + 1, n - (size_t)(c - p) - 1));
        if (e == NULL) {
            break;
        }
        p = e + 1;
    }
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* the binder                                                           */

const char *ls_param_type_name(enum ls_param_type t)
{
    switch (t) {
    case LS_P_STR: return "string";
    case LS_P_SECRET: return "secret";
    case LS_P_INT: return "integer";
    case LS_P_FLOAT: return "float";
    case LS_P_SIZE: return "size";
    case LS_P_TIME: return "time";
    case LS_P_BOOL: return "bool";
    case LS_P_ENUM: return "enum";
    case LS_P_ARRAY: return "array";
    case LS_P_HASH: return "hash";
    }
    return "?";
}

static const char *expected_form(enum ls_param_type t)
{
    switch (t) {
    case LS_P_INT: return "an integer like 10 or -1";
    case LS_P_FLOAT: return "a number like 0.5 or 10";
    case LS_P_SIZE: return "a size like 1024, 8k, 8m, 1g or 1t";
    case LS_P_TIME: return "a time like 10s, 5m, 1h, 1d or 0.5 (seconds)";
    case LS_P_BOOL: return "true, yes, false or no";
    case LS_P_ARRAY: return "a JSON array like [\"a\",\"b\"] or a,b,c";
    case LS_P_HASH: return "a JSON object like {\"k\":\"v\"} or k1:v1,k2:v2";
    default: return "a string";
    }
}

const struct ls_param *ls_param_find(const struct ls_param *table, const char *name)
{
    for (const struct ls_param *p = table; p && p->name; p++) {
        if (strcmp(p->name, name) == 0) {
            return p;
        }
    }
    for (const struct ls_param *p = table; p && p->name; p++) {
        if (list_index(p->aliases, name) >= 0) {
            return p;
        }
    }
    return NULL;
}

/* Free whatever a row currently holds and set it to the zero value. */
static void release_row(const struct ls_param *p, void *ctx)
{
    char *f = (char *)ctx + p->offset;

    switch (p->type) {
    case LS_P_STR:
    case LS_P_SECRET:
        ls_free(*(char **)(void *)f);
        *(char **)(void *)f = NULL;
        break;
    case LS_P_ARRAY:
        ls_strv_release((struct ls_strv *)(void *)f);
        break;
    case LS_P_HASH:
        ls_kvv_release((struct ls_kvv *)(void *)f);
        break;
    default:
        break;
    }
}

static void zero_row(const struct ls_param *p, void *ctx)
{
    char *f = (char *)ctx + p->offset;

    switch (p->type) {
    case LS_P_STR:
    case LS_P_SECRET:
        *(char **)(void *)f = NULL;
        break;
    case LS_P_INT:
    case LS_P_SIZE:
        *(int64_t *)(void *)f = 0;
        break;
    case LS_P_FLOAT:
    case LS_P_TIME:
        *(double *)(void *)f = 0;
        break;
    case LS_P_BOOL:
        *(bool *)(void *)f = false;
        break;
    case LS_P_ENUM:
        *(int *)(void *)f = 0;
        break;
    case LS_P_ARRAY:
        ((struct ls_strv *)(void *)f)->v = NULL;
        ((struct ls_strv *)(void *)f)->n = 0;
        break;
    case LS_P_HASH:
        ((struct ls_kvv *)(void *)f)->v = NULL;
        ((struct ls_kvv *)(void *)f)->n = 0;
        break;
    }
}

static void enum_options(const char *enums, char *buf, size_t len)
{
    size_t o = 0;

    buf[0] = '\0';
    for (const char *p = enums ? enums : ""; *p && o + 3 < len; p++) {
        if (*p == '|') {
            buf[o++] = ',';
            buf[o++] = ' ';
        } else {
            buf[o++] = *p;
        }
    }
    buf[o < len ? o : len - 1] = '\0';
}

/* A bound as the user would write it: sizes with k/m/g, times with s/m/h/d, integers in
 * full (%g printed 5 MiB as 5.24288e+06). */
static void bound_str(enum ls_param_type type, double v, char *buf, size_t len)
{
    static const struct { double unit; char suffix; } sizes[] = {
        { 1099511627776.0, 't' }, { 1073741824.0, 'g' }, { 1048576.0, 'm' }, { 1024.0, 'k' } };
    static const struct { double unit; char suffix; } times[] = {
        { 86400, 'd' }, { 3600, 'h' }, { 60, 'm' }, { 1, 's' } };

    if (type == LS_P_SIZE) {
        for (size_t i = 0; i < LS_ARRAY_LEN(sizes); i++) {
            if (v >= sizes[i].unit && fmod(v, sizes[i].unit) == 0) {
                snprintf(buf, len, "%.0f%c", v / sizes[i].unit, sizes[i].suffix);
                return;
            }
        }
        snprintf(buf, len, "%.0f", v);
    } else if (type == LS_P_TIME) {
        for (size_t i = 0; i < LS_ARRAY_LEN(times); i++) {
            if (v >= times[i].unit && fmod(v, times[i].unit) == 0) {
                snprintf(buf, len, "%.0f%c", v / times[i].unit, times[i].suffix);
                return;
            }
        }
        snprintf(buf, len, "%gs", v);
    } else if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, len, "%.0f", v);
    } else {
        snprintf(buf, len, "%g", v);
    }
}

static int check_bounds(const struct ls_param *p, double v, const char *where, const char *text,
                        char *err, size_t errlen)
{
    char lo[32], hi[32];

    if (p->min < p->max && (v < p->min || v > p->max)) {
        bound_str(p->type, p->min, lo, sizeof(lo));
        bound_str(p->type, p->max, hi, sizeof(hi));
        snprintf(err, errlen, "%s'%s' must be between %s and %s (got '%s')", where, p->name,
                 lo, hi, text);
        return LS_ERROR;
    }
    return LS_OK;
}

/*
 * Parse text for row p and, unless store is false, write it into ctx.
 * where is the "file:line: " prefix for messages.
 */
static int set_row(const struct ls_param *p, const char *text, bool store, void *ctx,
                   const char *where, char *err, size_t errlen)
{
    char *f = (char *)ctx + p->offset;
    int64_t i64;
    double d;
    bool b;
    int idx;
    struct ls_strv sv;
    struct ls_kvv kv;

    switch (p->type) {
    case LS_P_STR:
    case LS_P_SECRET:
        if (store) {
            release_row(p, ctx);
            *(char **)(void *)f = ls_strdup(text);
        }
        return LS_OK;
    case LS_P_INT:
    case LS_P_SIZE:
        if ((p->type == LS_P_INT ? ls_parse_int(text, &i64) : ls_parse_size(text, &i64)) != LS_OK) {
            break;
        }
        if (check_bounds(p, (double)i64, where, text, err, errlen) != LS_OK) {
            return LS_ERROR;
        }
        if (store) {
            *(int64_t *)(void *)f = i64;
        }
        return LS_OK;
    case LS_P_FLOAT:
    case LS_P_TIME:
        if ((p->type == LS_P_FLOAT ? ls_parse_float(text, &d) : ls_parse_time(text, &d)) != LS_OK) {
            break;
        }
        if (check_bounds(p, d, where, text, err, errlen) != LS_OK) {
            return LS_ERROR;
        }
        if (store) {
            *(double *)(void *)f = d;
        }
        return LS_OK;
    case LS_P_BOOL:
        if (ls_parse_bool(text, &b) != LS_OK) {
            break;
        }
        if (store) {
            *(bool *)(void *)f = b;
        }
        return LS_OK;
    case LS_P_ENUM: {
        char *t = dup_trim(text, strlen(text));
        idx = *t ? list_index(p->enums, t) : -1;
        ls_free(t);
        if (idx < 0) {
            char opts[512];
            enum_options(p->enums, opts, sizeof(opts));
            snprintf(err, errlen, "%sinvalid value '%s' for '%s': valid options are %s", where,
                     text, p->name, opts);
            return LS_ERROR;
        }
        if (store) {
            *(int *)(void *)f = idx;
        }
        return LS_OK;
    }
    case LS_P_ARRAY:
        if (ls_parse_array(text, &sv) != LS_OK) {
            break;
        }
        if (store) {
            release_row(p, ctx);
            *(struct ls_strv *)(void *)f = sv;
        } else {
            ls_strv_release(&sv);
        }
        return LS_OK;
    case LS_P_HASH:
        if (ls_parse_hash(text, &kv) != LS_OK) {
            break;
        }
        if (store) {
            release_row(p, ctx);
            *(struct ls_kvv *)(void *)f = kv;
        } else {
            ls_kvv_release(&kv);
        }
        return LS_OK;
    }
    snprintf(err, errlen, "%sinvalid value '%s' for '%s' (expected %s)", where, text, p->name,
             expected_form(p->type));
    return LS_ERROR;
}

/* The param that sets row p in sec: the primary name wins over aliases. Marks all used. */
static struct ls_conf_param *find_value(const struct ls_param *p, struct ls_conf_section *sec)
{
    struct ls_conf_param *found = NULL;
    struct ls_conf_param *alias = NULL;
    const char *a;

    if (sec == NULL) {
        return NULL;
    }
    found = ls_conf_get_param(sec, p->name);
    a = p->aliases;
    while (a && *a) {
        const char *e = strchr(a, '|');
        size_t n = e ? (size_t)(e - a) : strlen(a);
        char name[128];
        if (n > 0 && n < sizeof(name)) {
            struct ls_conf_param *cp;
            memcpy(name, a, n);
            name[n] = '\0';
            cp = ls_conf_get_param(sec, name);
            if (cp && alias == NULL) {
                alias = cp;
            }
        }
        a = e ? e + 1 : NULL;
    }
    return found ? found : alias;
}

int ls_param_bind(const struct ls_param *table, struct ls_conf_section *sec, void *ctx,
                  char *err, size_t errlen)
{
    char where[512];

    if (err && errlen) {
        err[0] = '\0';
    }
    if (sec && table && sec->nbound < sizeof(sec->bound) / sizeof(sec->bound[0])) {
        unsigned i = 0;

        while (i < sec->nbound && sec->bound[i] != table) {
            i++;
        }
        if (i == sec->nbound) {
            sec->bound[sec->nbound++] = table;
        }
    }
    /* zero first, so a failure half-way leaves ctx safe to ls_param_release() */
    for (const struct ls_param *p = table; p && p->name; p++) {
        if (!(p->flags & LS_PF_NO_STORE)) {
            zero_row(p, ctx);
        }
    }
    for (const struct ls_param *p = table; p && p->name; p++) {
        struct ls_conf_param *cp = find_value(p, sec);
        bool store = !(p->flags & LS_PF_NO_STORE);

        if (cp == NULL) {
            if (p->flags & LS_PF_REQUIRED) {
                if (sec) {
                    snprintf(err, errlen, "%s:%d: '%s' parameter is required in <%s%s%s>",
                             sec->file ? sec->file : "?", sec->line, p->name, sec->name,
                             sec->arg && *sec->arg ? " " : "", sec->arg ? sec->arg : "");
                } else {
                    snprintf(err, errlen, "'%s' parameter is required", p->name);
                }
                return LS_ERROR;
            }
            if (p->def == NULL || ((p->flags & LS_PF_NULLABLE) && p->def[0] == '\0')) {
                continue;
            }
            snprintf(where, sizeof(where), "default of '%s': ", p->name);
            if (set_row(p, p->def, store, ctx, where, err, errlen) != LS_OK) {
                return LS_ERROR;
            }
            continue;
        }
        snprintf(where, sizeof(where), "%s:%d: ", cp->file ? cp->file : "?", cp->line);
        if (p->flags & LS_PF_DEPRECATED) {
            /* helps of deprecated parameters say so themselves (for --describe) */
            const char *h = p->help && strncmp(p->help, "deprecated: ", 12) == 0 ? p->help + 12
                                                                                  : p->help;
            ls_warn("%s:%d: parameter '%s' is deprecated%s%s", cp->file ? cp->file : "?", cp->line,
                    cp->key, h ? ": " : "", h ? h : "");
        }
        /* a nullable non-string given "" means "unset", like its default */
        if ((p->flags & LS_PF_NULLABLE) && cp->value[0] == '\0' && p->type != LS_P_STR &&
            p->type != LS_P_SECRET && p->type != LS_P_BOOL) {
            continue;
        }
        if (set_row(p, cp->value, store, ctx, where, err, errlen) != LS_OK) {
            return LS_ERROR;
        }
    }
    return LS_OK;
}

void ls_param_release(const struct ls_param *table, void *ctx)
{
    if (ctx == NULL) {
        return;
    }
    for (const struct ls_param *p = table; p && p->name; p++) {
        if (!(p->flags & LS_PF_NO_STORE)) {
            release_row(p, ctx);
        }
    }
}

/* ------------------------------------------------------------------ */
/* --describe                                                           */

static void describe_default(const struct ls_param *p, char *buf, size_t len)
{
    if (p->flags & LS_PF_REQUIRED) {
        snprintf(buf, len, "(required)");
    } else if (p->def == NULL || (p->def[0] == '\0' && (p->flags & LS_PF_NULLABLE))) {
        snprintf(buf, len, "-");
    } else if (p->type == LS_P_SECRET) {
        snprintf(buf, len, "xxxxxx");
    } else if (p->def[0] == '\0') {
        snprintf(buf, len, "\"\"");
    } else if (strpbrk(p->def, "\n\t\r")) {
        /* a newline or tab default, as fluentd's docs write it (and a table survives it) */
        size_t o = 0;
        for (const char *c = p->def; *c && o + 3 < len; c++) {
            const char *e = *c == '\n' ? "\\n" : *c == '\t' ? "\\t" : *c == '\r' ? "\\r" : NULL;
            if (e) {
                buf[o++] = e[0];
                buf[o++] = e[1];
            } else {
                buf[o++] = *c;
            }
        }
        buf[o] = '\0';
    } else {
        snprintf(buf, len, "%s", p->def);
    }
}

static void describe_type(const struct ls_param *p, char *buf, size_t len)
{
    if (p->type == LS_P_ENUM) {
        char opts[400];
        enum_options(p->enums, opts, sizeof(opts));
        snprintf(buf, len, "enum (%s)", opts);
    } else {
        snprintf(buf, len, "%s", ls_param_type_name(p->type));
    }
}

static void describe_aliases(const struct ls_param *p, char *buf, size_t len)
{
    enum_options(p->aliases, buf, len);
    if (buf[0] == '\0') {
        snprintf(buf, len, "-");
    }
}

/* Markdown cell: '|' must be escaped, newlines cannot appear. */
static void md_cell(struct ls_buf *b, const char *s)
{
    ls_buf_append(b, " ", 1);
    for (; *s; s++) {
        if (*s == '|') {
            ls_buf_append(b, "\\|", 2);
        } else if (*s == '\n' || *s == '\r') {
            ls_buf_putc(b, ' ');
        } else {
            ls_buf_putc(b, *s);
        }
    }
    ls_buf_append(b, " |", 2);
}

static void pad(struct ls_buf *b, const char *s, size_t w)
{
    size_t n = strlen(s);
    ls_buf_append(b, s, n);
    while (n++ < w) {
        ls_buf_putc(b, ' ');
    }
}

void ls_param_describe(const struct ls_param *table, bool markdown,
                       void (*out)(const char *s, void *arg), void *arg)
{
    size_t wn = 4, wt = 4, wd = 7, wa = 7;
    char ty[512], def[512], al[256];
    struct ls_buf b;

    ls_buf_init(&b, 0);
    if (markdown) {
        ls_buf_printf(&b, "| name | type | default | aliases | description |\n"
                          "|---|---|---|---|---|\n");
    } else {
        for (const struct ls_param *p = table; p && p->name; p++) {
            describe_type(p, ty, sizeof(ty));
            describe_default(p, def, sizeof(def));
            describe_aliases(p, al, sizeof(al));
            wn = strlen(p->name) > wn ? strlen(p->name) : wn;
            wt = strlen(ty) > wt ? strlen(ty) : wt;
            wd = strlen(def) > wd ? strlen(def) : wd;
            wa = strlen(al) > wa ? strlen(al) : wa;
        }
        pad(&b, "NAME", wn + 2);
        pad(&b, "TYPE", wt + 2);
        pad(&b, "DEFAULT", wd + 2);
        pad(&b, "ALIASES", wa + 2);
        ls_buf_printf(&b, "DESCRIPTION\n");
    }
    for (const struct ls_param *p = table; p && p->name; p++) {
        const char *help = p->help ? p->help : "";
        char helpx[1024];

        describe_type(p, ty, sizeof(ty));
        describe_default(p, def, sizeof(def));
        describe_aliases(p, al, sizeof(al));
        snprintf(helpx, sizeof(helpx), "%s%s", help,
                 (p->flags & LS_PF_DEPRECATED) ? " (deprecated)" : "");
        if (markdown) {
            ls_buf_putc(&b, '|');
            md_cell(&b, p->name);
            md_cell(&b, ty);
            md_cell(&b, def);
            md_cell(&b, al);
            md_cell(&b, helpx);
            ls_buf_putc(&b, '\n');
        } else {
            pad(&b, p->name, wn + 2);
            pad(&b, ty, wt + 2);
            pad(&b, def, wd + 2);
            pad(&b, al, wa + 2);
            ls_buf_printf(&b, "%s\n", helpx);
        }
    }
    out(ls_buf_cstr(&b), arg);
    ls_buf_release(&b);
}
