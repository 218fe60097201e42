/*
 * mysql_slow.c - the `mysql_slow` parser: the MySQL / MariaDB / Percona
 * slow query log FILE format, as a multiline parser.
 *
 * An entry is a run of "# " header lines (# Time, # User@Host, # Thread_id,
 * # Query_time ...) followed by body lines (use db; SET timestamp=N; the
 * SQL). A header line that follows body lines starts the next entry, which
 * is the rule yuku/myslog uses. "# administrator command: Quit;" is body,
 * and the server's banner lines written at start-up and FLUSH LOGS
 * ("/usr/sbin/mysqld, Version: ...", "Tcp port: ...", "Time  Id Command
 * Argument") end an entry and are skipped.
 *
 * Fields: user, host, host_ip (when present), thread_id (MySQL's "Id:"),
 * then every "Key: value" pair of the other header lines, lower-cased, in
 * order (query_time, lock_time, rows_sent, rows_examined; MariaDB's
 * thread_id, schema, qc_hit, rows_affected, bytes_sent; MySQL 8's
 * log_slow_extra keys), numbers typed (Query_time/Lock_time float, digit
 * runs integer), then db and sql. db is the entry's `use`, else MariaDB's
 * Schema, else the last `use` seen (the server writes it only on change).
 * Time: SET timestamp=N (with the fraction of "# Time:" when it names the
 * same second), else "# Time:" (5.7+ ISO 8601 UTC, or the old YYMMDD
 * H:MM:SS in the parser's zone), else the current time.
 */
#include "plugin.h"
#include "parser.h"
#include "timefmt.h"
#include "log.h"

#include <ctype.h>

struct slow_ctx {
    int64_t max_bytes;
    struct ls_buf pend;
    struct ls_buf out;
    bool have_pend;
    bool pend_body;          /* pending entry already has body lines */
    bool truncated;
    char db[256];            /* last `use` seen, carried across entries */
    size_t db_len;
    struct ls_timefmt *tf_old;
    struct ls_timefmt *tf_iso;
};

static const struct ls_param slow_params[] = {
    { "max_bytes", LS_P_SIZE, "4m", 0, offsetof(struct slow_ctx, max_bytes),
      "cap on one entry (long SQL); later lines of a longer entry are dropped", NULL, NULL,
      1024, 1LL << 30 },
    LS_PARAM_END
};

static int slow_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                     size_t errlen)
{
    struct slow_ctx *ctx = ins->ctx;
    char e[256];

    LS_UNUSED(sec);
    ls_buf_init(&ctx->pend, (size_t)ctx->max_bytes);
    ls_buf_init(&ctx->out, (size_t)ctx->max_bytes);
    if (ls_parser_set_defaults(ins, "", NULL, -1, err, errlen) != LS_OK) {
        return LS_ERROR;
    }
    ctx->tf_old = ls_timefmt_create("%y%m%d %H:%M:%S", ls_parser_zone(ins), e, sizeof(e));
    ctx->tf_iso = ls_timefmt_create("%iso8601", ls_parser_zone(ins), e, sizeof(e));
    if (!ctx->tf_old || !ctx->tf_iso) {
        snprintf(err, errlen, "mysql_slow: %s", e);
        return LS_ERROR;
    }
    return LS_OK;
}

static void slow_destroy(struct ls_instance *ins)
{
    struct slow_ctx *ctx = ins->ctx;

    ls_buf_release(&ctx->pend);
    ls_buf_release(&ctx->out);
    ls_timefmt_destroy(ctx->tf_old);
    ls_timefmt_destroy(ctx->tf_iso);
}

static bool starts(const char *p, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(p, prefix, n) == 0;
}

static bool starts_ci(const char *p, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && strncasecmp(p, prefix, n) == 0;
}

static bool slow_is_header(const char *p, size_t len)
{
    return starts(p, len, "# ") && !starts(p, len, "# administrator command:");
}

static bool slow_is_banner(const char *p, size_t len)
{
    return (memmem(p, len, ", Version: ", 11) != NULL && memmem(p, len, "started with:", 13)) ||
           starts(p, len, "Tcp port: ") || starts(p, len, "Time                 Id Command");
}

static const char *trim(const char *p, size_t *len)
{
    while (*len > 0 && isspace((unsigned char)*p)) {
        p++;
        (*len)--;
    }
    while (*len > 0 && isspace((unsigned char)p[*len - 1])) {
        (*len)--;
    }
    return p;
}

static struct ls_value slow_typed(const char *key, size_t klen, const char *v, size_t n)
{
    size_t i, dots = 0;
    bool num = n > 0 && n < 19;
    char tmp[32];

    for (i = 0; i < n && num; i++) {
        if (v[i] == '.') {
            dots++;
        } else if (!isdigit((unsigned char)v[i])) {
            num = false;
        }
    }
    if (!num || dots > 1) {
        return ls_vstr(v, n);
    }
    if (dots == 1 || (klen == 10 && memcmp(key, "query_time", 10) == 0) ||
        (klen == 9 && memcmp(key, "lock_time", 9) == 0)) {
        memcpy(tmp, v, n);
        tmp[n] = '\0';
        return ls_vfloat(strtod(tmp, NULL));
    }
    {
        int64_t x = 0;
        for (i = 0; i < n; i++) {
            x = x * 10 + (v[i] - '0');
        }
        return ls_vint(x);
    }
}

/* "# Key: value  Key2: value2 ..." -> fields (keys lower-cased into the arena) */
static void slow_pairs(const char *p, size_t len, struct ls_record *rec, const char **schema,
                       size_t *schema_len)
{
    const char *end = p + len;

    while (p < end) {
        const char *ks, *ke, *vs, *ve;
        char *key;
        size_t klen, i;
        struct ls_value v;

        while (p < end && (*p == ' ' || *p == '\t' || *p == '#')) {
            p++;
        }
        ks = p;
        while (p < end && *p != ' ' && *p != ':') {
            p++;
        }
        if (p >= end || *p != ':' || p == ks) {
            /* not "Key:": skip this word */
            while (p < end && *p != ' ') {
                p++;
            }
            continue;
        }
        ke = p++;
        while (p < end && *p == ' ') {
            p++;
        }
        vs = p;
        while (p < end && *p != ' ' && *p != '\t') {
            p++;
        }
        ve = p;
        if (ve > vs && ve[-1] == ':') {
            /* "Schema:  Last_errno: 0": this key has no value, the word is the next key */
            p = vs;
            ve = vs;
        }
        klen = (size_t)(ke - ks);
        key = ls_arena_alloc(rec->arena, klen + 1);
        for (i = 0; i < klen; i++) {
            key[i] = (char)tolower((unsigned char)ks[i]);
        }
        key[klen] = '\0';
        if (klen == 6 && memcmp(key, "schema", 6) == 0 && ve > vs) {
            *schema = vs;
            *schema_len = (size_t)(ve - vs);
        }
        v = slow_typed(key, klen, vs, (size_t)(ve - vs));
        ls_record_set(rec, key, klen, &v);
    }
}

/* "# User@Host: user[user] @ host [ip]  Id: 3" */
static bool slow_user_host(const char *p, size_t len, struct ls_record *rec)
{
    const char *end = p + len, *s, *at, *lb, *rb;
    struct ls_value v;
    size_t n;

    p += 13;    /* "# User@Host: " */
    s = p;
    while (p < end && *p != '[' && *p != ' ') {
        p++;
    }
    v = ls_vstr(s, (size_t)(p - s));
    ls_record_add(rec, "user", 4, &v);
    at = memmem(p, (size_t)(end - p), " @ ", 3);
    if (at == NULL) {
        return false;
    }
    p = at + 3;
    lb = memchr(p, '[', (size_t)(end - p));
    n = (size_t)((lb ? lb : end) - p);
    s = trim(p, &n);
    v = ls_vstr(s, n);
    ls_record_add(rec, "host", 4, &v);
    if (lb) {
        rb = memchr(lb, ']', (size_t)(end - lb));
        if (rb && rb > lb + 1) {
            v = ls_vstr(lb + 1, (size_t)(rb - lb - 1));
            ls_record_add(rec, "host_ip", 7, &v);
        }
        if (rb) {
            const char *id = memmem(rb, (size_t)(end - rb), "Id:", 3);
            if (id) {
                int64_t x = 0;
                const char *q = id + 3;
                while (q < end && *q == ' ') {
                    q++;
                }
                if (q < end && isdigit((unsigned char)*q)) {
                    while (q < end && isdigit((unsigned char)*q) && x < INT64_MAX / 10 - 10) {
                        x = x * 10 + (*q++ - '0');
                    }
                    v = ls_vint(x);
                    ls_record_add(rec, "thread_id", 9, &v);
                }
            }
        }
    }
    return true;
}

static int slow_parse_entry(struct ls_instance *ins, struct slow_ctx *ctx, struct ls_record *rec)
{
    const char *p = ctx->out.p, *end = ctx->out.p + ctx->out.len;
    const char *sql = NULL, *sql_end = NULL, *schema = NULL, *use = NULL;
    size_t schema_len = 0, use_len = 0;
    unsigned start = rec->nfields;
    bool have_hdr_time = false, have_ts = false, known = false;
    struct ls_time hdr_time = { 0, 0 }, t;
    int64_t ts = 0;
    struct ls_value v;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        size_t len = (size_t)(le - p);

        if (sql == NULL && slow_is_header(p, len)) {
            if (starts(p, len, "# Time: ")) {
                size_t n = len - 8;
                const char *s = trim(p + 8, &n);
                if (ls_timefmt_parse(ctx->tf_iso, s, n, &hdr_time) == LS_OK ||
                    ls_timefmt_parse(ctx->tf_old, s, n, &hdr_time) == LS_OK) {
                    have_hdr_time = true;
                }
            } else if (starts(p, len, "# User@Host: ")) {
                known = slow_user_host(p, len, rec) || known;
            } else {
                if (starts(p, len, "# Query_time:")) {
                    known = true;
                }
                slow_pairs(p + 2, len - 2, rec, &schema, &schema_len);
            }
        } else if (sql == NULL && starts_ci(p, len, "use ") && len > 4 && p[len - 1] == ';') {
            size_t n = len - 5;
            use = trim(p + 4, &n);
            use_len = n;
            if (use_len > 1 && use[0] == '`' && use[use_len - 1] == '`') {
                use++;
                use_len -= 2;
            }
        } else if (sql == NULL && starts_ci(p, len, "SET timestamp=")) {
            const char *q = p + 14;
            ts = 0;
            while (q < le && isdigit((unsigned char)*q) && ts < INT64_MAX / 10 - 10) {
                ts = ts * 10 + (*q++ - '0');
            }
            have_ts = q > p + 14;
        } else {
            if (sql == NULL) {
                sql = p;
            }
            sql_end = le;
        }
        p = nl ? nl + 1 : end;
    }
    if (!known) {
        rec->nfields = start;
        ls_parser_set_error(ins, "slow log entry without User@Host or Query_time");
        ls_parser_set_declined_text(ins, ctx->out.p, ctx->out.len);
        return LS_DECLINED;
    }
    if (use) {
        ctx->db_len = use_len < sizeof(ctx->db) ? use_len : sizeof(ctx->db) - 1;
        memcpy(ctx->db, use, ctx->db_len);
        v = ls_vstr(use, use_len);
        ls_record_add(rec, "db", 2, &v);
    } else if (schema) {
        v = ls_vstr(schema, schema_len);
        ls_record_add(rec, "db", 2, &v);
    } else if (ctx->db_len) {
        v = ls_vstr(ctx->db, ctx->db_len);
        ls_record_add(rec, "db", 2, &v);
    }
    v = sql ? ls_vstr(sql, (size_t)(sql_end - sql)) : ls_vstr("", 0);
    ls_record_add(rec, "sql", 3, &v);
    if (have_ts) {
        t.sec = ts;
        t.nsec = have_hdr_time && hdr_time.sec == ts ? hdr_time.nsec : 0;
        ls_parser_set_time(ins, &t);
    } else if (have_hdr_time) {
        ls_parser_set_time(ins, &hdr_time);
    }
    return LS_OK;
}

static void slow_swap(struct slow_ctx *ctx)
{
    struct ls_buf t = ctx->out;
    ctx->out = ctx->pend;
    ctx->pend = t;
    ls_buf_reset(&ctx->pend);
    ctx->have_pend = false;
    ctx->pend_body = false;
    ctx->truncated = false;
}

static void slow_append(struct ls_instance *ins, struct slow_ctx *ctx, const char *line,
                        size_t len)
{
    size_t need = len + (ctx->have_pend ? 1 : 0);

    if (ctx->truncated || ls_buf_reserve(&ctx->pend, need) != LS_OK) {
        if (!ctx->truncated) {
            ls_plg_warn(ins, "slow log entry longer than max_bytes (%lld); truncating its SQL",
                        (long long)ctx->max_bytes);
            ins->metrics.dropped++;
        }
        ctx->truncated = true;
        return;
    }
    if (ctx->have_pend) {
        ls_buf_add_unchecked(&ctx->pend, "\n", 1);
    }
    ls_buf_add_unchecked(&ctx->pend, line, len);
    ctx->have_pend = true;
}

static int slow_parse(struct ls_instance *ins, const char *line, size_t len,
                      struct ls_record *rec)
{
    struct slow_ctx *ctx = ins->ctx;

    if (len > 0 && line[len - 1] == '\r') {
        len--;
    }
    if (slow_is_banner(line, len)) {
        if (ctx->have_pend && ctx->pend_body) {
            slow_swap(ctx);
            return slow_parse_entry(ins, ctx, rec);
        }
        return LS_AGAIN;
    }
    if (slow_is_header(line, len)) {
        if (ctx->have_pend && ctx->pend_body) {
            int rc;
            slow_swap(ctx);
            slow_append(ins, ctx, line, len);
            rc = slow_parse_entry(ins, ctx, rec);
            return rc;
        }
        slow_append(ins, ctx, line, len);
        return LS_AGAIN;
    }
    if (!ctx->have_pend) {
        if (len == 0) {
            return LS_AGAIN;
        }
        ls_parser_set_error(ins, "slow log line before any '# ' header");
        return LS_DECLINED;
    }
    slow_append(ins, ctx, line, len);
    ctx->pend_body = true;
    return LS_AGAIN;
}

static int slow_flush(struct ls_instance *ins, struct ls_record *rec)
{
    struct slow_ctx *ctx = ins->ctx;

    if (!ctx->have_pend) {
        return LS_DECLINED;
    }
    slow_swap(ctx);
    return slow_parse_entry(ins, ctx, rec);
}

const struct ls_plugin ls_plugin_parser_mysql_slow = {
    .name = "mysql_slow",
    .kind = LS_PLUGIN_PARSER,
    .description = "MySQL/MariaDB slow query log file entries (multiline)",
    .params = slow_params,
    .ctx_size = sizeof(struct slow_ctx),
    .init = slow_init,
    .destroy = slow_destroy,
    .parse = slow_parse,
    .parse_flush = slow_flush,
};
