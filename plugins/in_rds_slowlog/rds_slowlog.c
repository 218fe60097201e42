/*
 * rds_slowlog.c - `@type rds_slowlog` and `@type rds_general_log`: harvest
 * MySQL/MariaDB log tables (mysql.slow_log / mysql.general_log) on Amazon
 * RDS, Aurora or a self-managed server, with no loss and no duplicates.
 *
 * The RDS way is "CALL mysql.rds_rotate_slow_log, then read
 * slow_log_backup"; the existing fluentd plugins lose the whole backup when
 * they die between the two, because the next rotation drops it. Here one
 * harvest cycle, under a MySQL named lock (GET_LOCK) so two harvesters never
 * interleave, is:
 *
 *   1. salvage: read slow_log_backup rows past the watermark (left by a
 *      crash, a failing output, or somebody else's rotation), buffer them,
 *      ls_input_commit(), then persist the watermark;
 *   2. only when the backup is completely and durably buffered: rotate;
 *   3. read the new backup the same way.
 *
 * The watermark (state file) names a table *generation* by a fingerprint
 * (hash of its first row, mixed with the row count for the immutable backup)
 * and counts rows in the table's natural scan order (CSV/MyISAM log tables
 * return rows in the order they were logged; a backup is never written
 * again). Records carry src = key(instance, table, fingerprint) and
 * pos = row index + 1, so a re-read after kill -9 between commit and the
 * state write is dropped by the outputs, and ls_source_durable_pos() lets us
 * skip it before even emitting. `rotate false` reads the append-only live
 * table with the same machinery (watermark = row count + hash of the last
 * row read, verified before resuming).
 *
 * Blocking client calls run on the worker pool (ls_work_submit), one step
 * at a time; rows come back in bounded batches that are emitted on the loop
 * thread, where the buffer lives. docs/rds_slowlog.md has the failure cases.
 */
#include "plugin.h"
#include "log.h"
#include "rds.h"
#include "mysql_api.h"

#include <limits.h>
#include <inttypes.h>
#include <signal.h>
#include <unistd.h>

#define RDS_MAX_COLS 64

struct rds_kind {
    const char *plugin;         /* "rds_slowlog" */
    const char *live;           /* "slow_log" */
    const char *backup;         /* "slow_log_backup" */
    const char *rotate_sql;     /* "CALL mysql.rds_rotate_slow_log" */
    const char *time_col;       /* "start_time" */
};

static const struct rds_kind rds_kind_slow = {
    "rds_slowlog", "slow_log", "slow_log_backup", "CALL mysql.rds_rotate_slow_log", "start_time",
};
static const struct rds_kind rds_kind_general = {
    "rds_general_log", "general_log", "general_log_backup", "CALL mysql.rds_rotate_general_log",
    "event_time",
};

enum rds_op { OP_BEGIN, OP_PROBE, OP_FETCH, OP_ROTATE, OP_END };
enum rds_phase { PH_IDLE, PH_SALVAGE, PH_ROTATE, PH_FRESH, PH_LIVE, PH_END };

struct rds_col {
    char *name;
    size_t name_len;
    enum enum_field_types type;
    bool is_unsigned;
};

struct rds_row {
    uint64_t index;             /* 0-based position in the table's scan order */
    uint64_t hash;
    char **vals;
    unsigned long *lens;
};

struct rds_ctx {
    /* parameters */
    char *tag;
    char *host;
    int64_t port;
    char *username;
    char *password;
    char *database;
    char *socket;
    double interval;
    bool ssl;
    char *ssl_ca;
    bool ssl_verify;
    double connect_timeout;
    double read_timeout;
    char *state_file;
    bool rotate;
    char *lock_name;
    double lock_timeout;
    char *time_zone;
    bool keep_time_key;
    int64_t batch_rows;
    int64_t batch_size;
    double wait_buffer_timeout;

    const struct rds_kind *kind;
    struct ls_instance *ins;
    const char *kill_at;        /* test hook: LOGSHIP_TEST_RDS_KILL_AT */
    char *state_path;
    char *lock;
    struct ls_timer *timer;
    struct ls_arena arena;
    struct ls_record rec;
    bool paused;
    bool stopping;
    bool busy;                  /* a worker step is in flight */
    bool in_cycle;
    bool finished;              /* oneshot: done or failed */
    bool blocked;               /* the last cycle stopped on a full buffer */
    double blocked_at;          /* when the buffer first refused rows (mono) */
    double cycle_at;            /* start of the last cycle (mono) */
    enum rds_phase phase;

    /* watermark */
    struct rds_state st;
    bool pending;               /* emitted rows not yet committed (commit failed) */
    struct rds_state pending_st;

    /* ---- owned by the worker while busy, by the loop otherwise ---- */
    MYSQL *db;
    MYSQL_RES *res;             /* open streaming result (OP_FETCH) */
    enum rds_op op;
    const char *table;          /* table of the current step */
    int rc;
    char errmsg[512];
    struct rds_col cols[RDS_MAX_COLS];
    unsigned ncols;             /* including the trailing UNIX_TIMESTAMP() column */
    /* probe results */
    bool empty;
    uint64_t row0_hash;
    uint64_t count;
    /* stream */
    uint64_t start;             /* first row to emit */
    bool verify;                /* check row start-1 against st.last first */
    bool verify_failed;
    uint64_t next_index;
    bool eof;
    struct ls_arena batch_arena;
    struct rds_row *rows;
    size_t nrows;
    size_t rows_cap;
    /* loop-side view of the current generation */
    uint64_t ident;
    uint64_t src;
};

static const struct ls_param rds_params[] = {
    { "tag", LS_P_STR, NULL, LS_PF_REQUIRED, offsetof(struct rds_ctx, tag),
      "tag of the records", NULL, NULL, 0, 0 },
    { "host", LS_P_STR, "localhost", 0, offsetof(struct rds_ctx, host),
      "server host name (the RDS endpoint)", NULL, NULL, 0, 0 },
    { "port", LS_P_INT, "3306", 0, offsetof(struct rds_ctx, port),
      "server TCP port", NULL, NULL, 1, 65535 },
    { "username", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct rds_ctx, username),
      "user (on RDS the master user, who may call mysql.rds_rotate_*)", "user", NULL, 0, 0 },
    { "password", LS_P_SECRET, NULL, LS_PF_NULLABLE, offsetof(struct rds_ctx, password),
      "password", NULL, NULL, 0, 0 },
    { "database", LS_P_STR, "mysql", 0, offsetof(struct rds_ctx, database),
      "default database of the connection (the log tables are always read from mysql.*)",
      NULL, NULL, 0, 0 },
    { "socket", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct rds_ctx, socket),
      "unix socket path (instead of host/port)", NULL, NULL, 0, 0 },
    { "interval", LS_P_TIME, "10s", 0, offsetof(struct rds_ctx, interval),
      "seconds between harvests (daemon mode)", "refresh_interval|emit_interval", NULL,
      0.1, 86400 },
    { "ssl", LS_P_BOOL, "false", 0, offsetof(struct rds_ctx, ssl),
      "require TLS", "tls", NULL, 0, 0 },
    { "ssl_ca", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct rds_ctx, ssl_ca),
      "CA bundle for TLS (for RDS: the AWS RDS CA bundle PEM)", "sslca|tls_ca", NULL, 0, 0 },
    { "ssl_verify", LS_P_BOOL, "true", 0, offsetof(struct rds_ctx, ssl_verify),
      "verify the server certificate and host name (with ssl true)", "tls_verify", NULL, 0, 0 },
    { "connect_timeout", LS_P_TIME, "10s", 0, offsetof(struct rds_ctx, connect_timeout),
      "connect timeout", NULL, NULL, 1, 3600 },
    { "read_timeout", LS_P_TIME, "60s", 0, offsetof(struct rds_ctx, read_timeout),
      "timeout of one network read", NULL, NULL, 1, 86400 },
    { "state_file", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct rds_ctx, state_file),
      "watermark file (default: rds_<table>-<hash>.state in <system> root_dir, else in "
      "/var/lib/logship when writable, else in the working directory; logged at start)",
      "pos_file", NULL, 0, 0 },
    { "rotate", LS_P_BOOL, "true", 0, offsetof(struct rds_ctx, rotate),
      "rotate with mysql.rds_rotate_* and read the backup table (RDS); false: read the live "
      "table only (self-managed servers)", NULL, NULL, 0, 0 },
    { "lock_name", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct rds_ctx, lock_name),
      "MySQL named lock held during a harvest (default logship.<table>)", NULL, NULL, 0, 0 },
    { "lock_timeout", LS_P_TIME, "5s", 0, offsetof(struct rds_ctx, lock_timeout),
      "how long to wait for the named lock", NULL, NULL, 0, 3600 },
    { "time_zone", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct rds_ctx, time_zone),
      "zone the server wrote the time column in (e.g. +00:00); default: the server's "
      "time_zone", "database_timezone", NULL, 0, 0 },
    { "keep_time_key", LS_P_BOOL, "true", 0, offsetof(struct rds_ctx, keep_time_key),
      "keep start_time/event_time as a field (text as stored)", NULL, NULL, 0, 0 },
    { "batch_rows", LS_P_INT, "1000", 0, offsetof(struct rds_ctx, batch_rows),
      "rows fetched per step", NULL, NULL, 1, 1e6 },
    { "batch_size", LS_P_SIZE, "4m", 0, offsetof(struct rds_ctx, batch_size),
      "bytes fetched per step (a single row may exceed it)", NULL, NULL, 4096, 1e9 },
    { "wait_buffer_timeout", LS_P_TIME, "30s", 0, offsetof(struct rds_ctx, wait_buffer_timeout),
      "--oneshot: how long to wait for a full buffer to drain before giving up (exit non-zero, "
      "no rotation)", NULL, NULL, 0, 86400 },
    LS_PARAM_END
};

/* ------------------------------------------------------------------ */
/* worker side: blocking client calls                                  */

static void rds_set_err(struct rds_ctx *ctx, const char *what)
{
    snprintf(ctx->errmsg, sizeof(ctx->errmsg), "%s: %s (%u)", what,
             ctx->db ? mysql_error(ctx->db) : "no connection", ctx->db ? mysql_errno(ctx->db) : 0);
    ctx->rc = LS_ERROR;
}

static void rds_close(struct rds_ctx *ctx)
{
    if (ctx->res) {
        /* closing the connection first saves draining a half-read stream */
        if (ctx->db) {
            mysql_close(ctx->db);
            ctx->db = NULL;
        }
        mysql_free_result(ctx->res);
        ctx->res = NULL;
    }
    if (ctx->db) {
        mysql_close(ctx->db);
        ctx->db = NULL;
    }
}

static int rds_query(struct rds_ctx *ctx, const char *sql)
{
    if (mysql_real_query(ctx->db, sql, strlen(sql)) != 0) {
        rds_set_err(ctx, sql);
        return LS_ERROR;
    }
    return LS_OK;
}

/* Run a one-row one-column query; the value (or NULL) into out. */
static int rds_scalar(struct rds_ctx *ctx, const char *sql, char *out, size_t outlen, bool *isnull)
{
    MYSQL_RES *r;
    MYSQL_ROW row;

    if (rds_query(ctx, sql) != LS_OK) {
        return LS_ERROR;
    }
    r = mysql_store_result(ctx->db);
    if (r == NULL) {
        rds_set_err(ctx, sql);
        return LS_ERROR;
    }
    row = mysql_fetch_row(r);
    *isnull = row == NULL || row[0] == NULL;
    snprintf(out, outlen, "%s", *isnull ? "" : row[0]);
    mysql_free_result(r);
    return LS_OK;
}

static void rds_connect(struct rds_ctx *ctx)
{
    unsigned int ct = (unsigned int)ctx->connect_timeout, rt = (unsigned int)ctx->read_timeout;
    unsigned long maxpkt = 1UL << 30;
    my_bool on = 1, verify = ctx->ssl_verify ? 1 : 0;

    ctx->db = mysql_init(NULL);
    if (ctx->db == NULL) {
        snprintf(ctx->errmsg, sizeof(ctx->errmsg), "mysql_init failed");
        ctx->rc = LS_ERROR;
        return;
    }
    mysql_optionsv(ctx->db, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
    mysql_optionsv(ctx->db, MYSQL_OPT_READ_TIMEOUT, &rt);
    mysql_optionsv(ctx->db, MYSQL_OPT_WRITE_TIMEOUT, &rt);
    /* sql_text is MEDIUMTEXT/MEDIUMBLOB: rows up to 16 MiB plus the other columns */
    mysql_optionsv(ctx->db, MYSQL_OPT_MAX_ALLOWED_PACKET, &maxpkt);
    mysql_optionsv(ctx->db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (ctx->ssl) {
        mysql_optionsv(ctx->db, MYSQL_OPT_SSL_ENFORCE, &on);
        if (ctx->ssl_ca) {
            mysql_optionsv(ctx->db, MYSQL_OPT_SSL_CA, ctx->ssl_ca);
        }
        mysql_optionsv(ctx->db, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
    }
    if (mysql_real_connect(ctx->db, ctx->socket ? NULL : ctx->host, ctx->username,
                           ctx->password, ctx->database, (unsigned int)ctx->port, ctx->socket,
                           0) == NULL) {
        rds_set_err(ctx, "connect");
        mysql_close(ctx->db);
        ctx->db = NULL;
    }
}

static void rds_op_begin(struct rds_ctx *ctx)
{
    char sql[512], val[64], name[300];
    bool isnull;

    if (ctx->db && mysql_ping(ctx->db) != 0) {
        rds_close(ctx);
    }
    if (ctx->db == NULL) {
        rds_connect(ctx);
        if (ctx->db == NULL) {
            return;
        }
        if (ctx->time_zone) {
            char tz[130];
            mysql_real_escape_string(ctx->db, tz, ctx->time_zone,
                                     (unsigned long)strnlen(ctx->time_zone, 64));
            snprintf(sql, sizeof(sql), "SET SESSION time_zone = '%s'", tz);
            if (rds_query(ctx, sql) != LS_OK) {
                return;
            }
        }
    }
    mysql_real_escape_string(ctx->db, name, ctx->lock, (unsigned long)strnlen(ctx->lock, 64));
    snprintf(sql, sizeof(sql), "SELECT GET_LOCK('%s', %d)", name, (int)ctx->lock_timeout);
    if (rds_scalar(ctx, sql, val, sizeof(val), &isnull) != LS_OK) {
        return;
    }
    if (isnull || strcmp(val, "1") != 0) {
        snprintf(ctx->errmsg, sizeof(ctx->errmsg),
                 "another harvester holds the lock '%s' (waited %.0fs)", ctx->lock,
                 ctx->lock_timeout);
        ctx->rc = LS_DECLINED;
    }
}

static void rds_take_cols(struct rds_ctx *ctx, MYSQL_RES *r)
{
    MYSQL_FIELD *f = mysql_fetch_fields(r);
    unsigned n = mysql_num_fields(r), i;

    for (i = 0; i < ctx->ncols; i++) {
        ls_free(ctx->cols[i].name);
        ctx->cols[i].name = NULL;
    }
    if (n > RDS_MAX_COLS) {
        n = RDS_MAX_COLS;
    }
    for (i = 0; i < n; i++) {
        ctx->cols[i].name = ls_strndup(f[i].name, f[i].name_length);
        ctx->cols[i].name_len = f[i].name_length;
        ctx->cols[i].type = f[i].type;
        ctx->cols[i].is_unsigned = (f[i].flags & UNSIGNED_FLAG) != 0;
    }
    ctx->ncols = n;
}

static uint64_t rds_row_hash(const struct rds_ctx *ctx, MYSQL_ROW row, const unsigned long *lens)
{
    uint64_t h = RDS_FNV_INIT;
    unsigned i;

    /* every table column; the trailing UNIX_TIMESTAMP() depends on the session zone */
    for (i = 0; i + 1 < ctx->ncols; i++) {
        h = rds_hash_value(h, row[i], lens[i], row[i] == NULL);
    }
    return h;
}

static void rds_select_sql(struct rds_ctx *ctx, char *sql, size_t len, const char *tail)
{
    snprintf(sql, len, "SELECT t.*, UNIX_TIMESTAMP(t.`%s`) FROM mysql.`%s` t %s",
             ctx->kind->time_col, ctx->table, tail);
}

static void rds_op_probe(struct rds_ctx *ctx)
{
    char sql[512], val[32];
    MYSQL_RES *r;
    MYSQL_ROW row;
    bool isnull;

    ctx->empty = true;
    ctx->count = 0;
    rds_select_sql(ctx, sql, sizeof(sql), "LIMIT 1");
    if (mysql_real_query(ctx->db, sql, strlen(sql)) != 0) {
        if (mysql_errno(ctx->db) == ER_NO_SUCH_TABLE) {
            return;     /* no backup yet: nothing was ever rotated */
        }
        rds_set_err(ctx, sql);
        return;
    }
    r = mysql_store_result(ctx->db);
    if (r == NULL) {
        rds_set_err(ctx, sql);
        return;
    }
    rds_take_cols(ctx, r);
    row = mysql_fetch_row(r);
    if (row) {
        ctx->empty = false;
        ctx->row0_hash = rds_row_hash(ctx, row, mysql_fetch_lengths(r));
    }
    mysql_free_result(r);
    if (ctx->empty || ctx->table != ctx->kind->backup) {
        return;
    }
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM mysql.`%s`", ctx->table);
    if (rds_scalar(ctx, sql, val, sizeof(val), &isnull) != LS_OK) {
        return;
    }
    ctx->count = strtoull(val, NULL, 10);
}

static int rds_open_stream(struct rds_ctx *ctx, uint64_t offset)
{
    char sql[600], tail[96];

    /* natural order: the order rows were logged; no filesort of MEDIUMBLOBs */
    snprintf(tail, sizeof(tail), "LIMIT 18446744073709551615 OFFSET %" PRIu64, offset);
    rds_select_sql(ctx, sql, sizeof(sql), tail);
    if (rds_query(ctx, sql) != LS_OK) {
        return LS_ERROR;
    }
    ctx->res = mysql_use_result(ctx->db);
    if (ctx->res == NULL) {
        rds_set_err(ctx, sql);
        return LS_ERROR;
    }
    rds_take_cols(ctx, ctx->res);
    ctx->next_index = offset;
    return LS_OK;
}

static void rds_op_fetch(struct rds_ctx *ctx)
{
    size_t bytes = 0;

    ls_arena_reset(&ctx->batch_arena);
    ctx->nrows = 0;
    ctx->eof = false;
    ctx->verify_failed = false;
    if (ctx->res == NULL) {
        if (rds_open_stream(ctx, ctx->verify ? ctx->start - 1 : ctx->start) != LS_OK) {
            return;
        }
    }
    while (ctx->nrows < (size_t)ctx->batch_rows && bytes < (size_t)ctx->batch_size) {
        MYSQL_ROW row = mysql_fetch_row(ctx->res);
        unsigned long *lens;
        struct rds_row *out;
        unsigned i;

        if (row == NULL) {
            if (mysql_errno(ctx->db)) {
                rds_set_err(ctx, "fetching rows");
                return;
            }
            mysql_free_result(ctx->res);
            ctx->res = NULL;
            if (ctx->verify) {
                /* the table is shorter than the watermark: it was truncated or replaced */
                ctx->verify = false;
                ctx->verify_failed = true;
                if (rds_open_stream(ctx, 0) != LS_OK) {
                    return;
                }
                continue;
            }
            ctx->eof = true;
            return;
        }
        lens = mysql_fetch_lengths(ctx->res);
        if (ctx->verify) {
            ctx->verify = false;
            ctx->next_index++;
            if (rds_row_hash(ctx, row, lens) != ctx->st.last) {
                /* restart from the first row: drain this stream, open another */
                mysql_free_result(ctx->res);
                ctx->res = NULL;
                ctx->verify_failed = true;
                if (rds_open_stream(ctx, 0) != LS_OK) {
                    return;
                }
            }
            continue;
        }
        if (ctx->nrows == ctx->rows_cap) {
            ctx->rows_cap = ctx->rows_cap ? ctx->rows_cap * 2 : 64;
            ctx->rows = ls_realloc(ctx->rows, ctx->rows_cap * sizeof(*ctx->rows));
        }
        out = &ctx->rows[ctx->nrows++];
        out->index = ctx->next_index++;
        out->hash = rds_row_hash(ctx, row, lens);
        out->vals = ls_arena_alloc(&ctx->batch_arena, ctx->ncols * sizeof(char *));
        out->lens = ls_arena_alloc(&ctx->batch_arena, ctx->ncols * sizeof(unsigned long));
        for (i = 0; i < ctx->ncols; i++) {
            out->lens[i] = lens[i];
            out->vals[i] = row[i] ? ls_arena_memdup(&ctx->batch_arena, row[i], lens[i]) : NULL;
            bytes += lens[i];
        }
    }
}

static void rds_work(void *arg)
{
    struct rds_ctx *ctx = arg;

    ctx->rc = LS_OK;
    ctx->errmsg[0] = '\0';
    if (ctx->op != OP_BEGIN && ctx->db == NULL) {
        snprintf(ctx->errmsg, sizeof(ctx->errmsg), "connection lost");
        ctx->rc = LS_ERROR;
        return;
    }
    switch (ctx->op) {
    case OP_BEGIN:
        rds_op_begin(ctx);
        break;
    case OP_PROBE:
        rds_op_probe(ctx);
        break;
    case OP_FETCH:
        rds_op_fetch(ctx);
        break;
    case OP_ROTATE:
        if (rds_query(ctx, ctx->kind->rotate_sql) == LS_OK) {
            /* a CALL returns a status result set; consume it so the connection is usable */
            while (mysql_next_result(ctx->db) == 0) {
                MYSQL_RES *r = mysql_store_result(ctx->db);
                if (r) {
                    mysql_free_result(r);
                }
            }
        }
        break;
    case OP_END: {
        char sql[300], name[140], val[16];
        bool isnull;
        mysql_real_escape_string(ctx->db, name, ctx->lock, (unsigned long)strnlen(ctx->lock, 64));
        snprintf(sql, sizeof(sql), "SELECT RELEASE_LOCK('%s')", name);
        (void)rds_scalar(ctx, sql, val, sizeof(val), &isnull);
        break;
    }
    }
    if (ctx->rc != LS_OK) {
        /* any failure drops the connection: the lock goes with it, the next cycle reconnects */
        rds_close(ctx);
    }
}

/* ------------------------------------------------------------------ */
/* loop side: the harvest cycle                                        */

/*
 * Crash injection for the integration tests: SIGKILL ourselves at a named
 * point of the cycle, which is exactly what kill -9 would do there. Unset
 * (the normal case) it costs one pointer test.
 */
static void rds_kill_point(const struct rds_ctx *ctx, const char *point)
{
    if (ctx->kill_at && strcmp(ctx->kill_at, point) == 0) {
        raise(SIGKILL);
    }
}

static void rds_done(void *arg);

static void rds_submit(struct rds_ctx *ctx, enum rds_op op)
{
    ctx->op = op;
    ctx->busy = true;
    ls_work_submit(ctx->ins->engine, rds_work, rds_done, ctx);
}

static void rds_oneshot_fail(struct rds_ctx *ctx)
{
    ctx->finished = true;
    ls_timer_stop(ctx->timer);
    ls_plg_error(ctx->ins, "harvest incomplete; exiting non-zero (the rows stay in "
                 "mysql.%s / the buffer for the next run)", ctx->kind->backup);
    ls_input_fail(ctx->ins);
}

static void rds_cycle_end(struct rds_ctx *ctx, bool ok)
{
    ctx->in_cycle = false;
    ctx->phase = PH_IDLE;
    if (ctx->res || !ok) {
        rds_close(ctx);
    }
    if (ok) {
        ctx->blocked = false;
        ctx->blocked_at = 0;
    } else if (ctx->blocked && ctx->blocked_at == 0) {
        ctx->blocked_at = ls_mono_now();
    }
    if (!ls_oneshot(ctx->ins->engine)) {
        return;
    }
    if (ok) {
        ctx->finished = true;
        ls_timer_stop(ctx->timer);
        ls_plg_info(ctx->ins, "harvest complete; delivering");
        ls_input_done(ctx->ins);
    } else if (!ctx->blocked) {
        rds_oneshot_fail(ctx);
    }
    /* blocked: rds_tick retries once the buffer drains, or gives up after wait_buffer_timeout */
}

static int rds_persist(struct rds_ctx *ctx, const struct rds_state *st)
{
    if (rds_state_save(ctx->state_path, st) != LS_OK) {
        ls_plg_error(ctx->ins, "cannot write state file '%s' (%d: %s)", ctx->state_path, errno,
                     strerror(errno));
        return LS_ERROR;
    }
    ctx->st = *st;
    return LS_OK;
}

/* Commit what was emitted and move the watermark; LS_OK when durable. */
static int rds_commit(struct rds_ctx *ctx)
{
    if (!ctx->pending) {
        return LS_OK;
    }
    rds_kill_point(ctx, "emitted");
    if (ls_input_commit(ctx->ins) != LS_OK) {
        ls_plg_warn(ctx->ins, "buffer commit failed; the watermark stays at row %" PRIu64,
                    ctx->st.done);
        return LS_ERROR;
    }
    rds_kill_point(ctx, "committed");
    ctx->pending = false;
    return rds_persist(ctx, &ctx->pending_st);
}

static void rds_next_table(struct rds_ctx *ctx);

static void rds_start_table(struct rds_ctx *ctx, const char *table)
{
    ctx->table = table;
    rds_submit(ctx, OP_PROBE);
}

/* The probe of ctx->table returned: decide where to start reading. */
static void rds_after_probe(struct rds_ctx *ctx)
{
    char key[512];
    uint64_t durable;
    bool same;

    if (ctx->empty) {
        rds_next_table(ctx);
        return;
    }
    ctx->ident = ctx->row0_hash;
    if (ctx->table == ctx->kind->backup) {
        /* the backup is immutable: its row count is part of its identity */
        ctx->ident = rds_fnv(ctx->ident, &ctx->count, sizeof(ctx->count));
    }
    if (ctx->ident == 0) {
        ctx->ident = 1;
    }
    snprintf(key, sizeof(key), "%s\t%s\t%s\t%" PRId64 "\t%s\t%016" PRIx64, ctx->kind->plugin,
             ctx->socket ? ctx->socket : "", ctx->host, ctx->port, ctx->table, ctx->ident);
    ctx->src = ls_source_key(key, strlen(key));
    same = ctx->st.ident == ctx->ident && strcmp(ctx->st.table, ctx->table) == 0;
    ctx->start = same ? ctx->st.done : 0;
    ctx->verify = same && ctx->start > 0 && ctx->table == ctx->kind->live;
    durable = ls_source_durable_pos(ctx->ins->engine, ctx->src);
    if (durable > ctx->start) {
        /* a crash after the buffer commit but before the state write */
        ls_plg_info(ctx->ins, "mysql.%s: rows up to %" PRIu64 " are already buffered",
                    ctx->table, durable);
        ctx->start = durable;
        ctx->verify = false;
    }
    if (!same && ctx->phase == PH_SALVAGE && ctx->start < ctx->count) {
        /* after our own crash between rotate and read, or a rotation by RDS / somebody else */
        ls_plg_info(ctx->ins, "mysql.%s holds %" PRIu64 " rows of a generation not read yet; "
                    "salvaging them", ctx->table, ctx->count - ctx->start);
    }
    if (ctx->table == ctx->kind->backup && ctx->start >= ctx->count) {
        if (!same) {
            struct rds_state st = ctx->st;
            snprintf(st.table, sizeof(st.table), "%s", ctx->table);
            st.ident = ctx->ident;
            st.done = ctx->count;
            st.last = 0;
            if (rds_persist(ctx, &st) != LS_OK) {
                rds_cycle_end(ctx, false);
                return;
            }
        }
        rds_next_table(ctx);
        return;
    }
    if (ctx->start > 0) {
        ls_plg_info(ctx->ins, "mysql.%s: resuming after row %" PRIu64, ctx->table, ctx->start);
    }
    rds_submit(ctx, OP_FETCH);
}

static void rds_add_str(struct ls_record *rec, const char *k, size_t klen, const char *p, size_t n)
{
    struct ls_value v = ls_vstr(p, n);
    ls_record_add(rec, k, klen, &v);
}

static void rds_build(struct rds_ctx *ctx, const struct rds_row *row)
{
    struct ls_record *rec = &ctx->rec;
    unsigned i, ncol = ctx->ncols - 1;
    const char *ep = row->vals[ncol];

    ls_record_clear(rec);
    rec->tag = ctx->tag;
    rec->tag_len = strlen(ctx->tag);
    if (ep == NULL || rds_parse_epoch(ep, row->lens[ncol], &rec->time.sec,
                                      &rec->time.nsec) != LS_OK) {
        ls_wall_now(&rec->time.sec, &rec->time.nsec);
    }
    rec->src = ctx->src;
    rec->pos = row->index + 1;
    for (i = 0; i < ncol; i++) {
        const struct rds_col *c = &ctx->cols[i];
        const char *p = row->vals[i];
        size_t n = row->lens[i];
        struct ls_value v;
        int64_t iv;
        double dv;

        if (p == NULL) {
            v = ls_vnull();
            ls_record_add(rec, c->name, c->name_len, &v);
            continue;
        }
        switch (c->type) {
        case MYSQL_TYPE_TIME:
        case MYSQL_TYPE_TIME2:
            /* query_time / lock_time: seconds with microseconds */
            if (rds_parse_duration(p, n, &dv) == LS_OK) {
                v = ls_vfloat(dv);
            } else {
                v = ls_vstr(p, n);
            }
            break;
        case MYSQL_TYPE_TINY:
        case MYSQL_TYPE_SHORT:
        case MYSQL_TYPE_INT24:
        case MYSQL_TYPE_LONG:
        case MYSQL_TYPE_LONGLONG:
        case MYSQL_TYPE_YEAR:
            /* unsigned BIGINT above INT64_MAX stays text rather than wrapping */
            v = rds_parse_int(p, n, &iv) == LS_OK ? ls_vint(iv) : ls_vstr(p, n);
            break;
        case MYSQL_TYPE_FLOAT:
        case MYSQL_TYPE_DOUBLE:
        case MYSQL_TYPE_DECIMAL:
        case MYSQL_TYPE_NEWDECIMAL: {
            char tmp[64], *end;
            if (n < sizeof(tmp)) {
                memcpy(tmp, p, n);
                tmp[n] = '\0';
                dv = strtod(tmp, &end);
                v = *end == '\0' ? ls_vfloat(dv) : ls_vstr(p, n);
            } else {
                v = ls_vstr(p, n);
            }
            break;
        }
        case MYSQL_TYPE_TIMESTAMP:
        case MYSQL_TYPE_TIMESTAMP2:
        case MYSQL_TYPE_DATETIME:
        case MYSQL_TYPE_DATETIME2:
            if (!ctx->keep_time_key && strcmp(c->name, ctx->kind->time_col) == 0) {
                continue;
            }
            v = ls_vstr(p, n);
            break;
        default:
            /* text and BLOBs (sql_text is MEDIUMBLOB on MySQL 5.7+): bytes as-is */
            v = ls_vstr(p, n);
            break;
        }
        ls_record_add(rec, c->name, c->name_len, &v);
        if (strcmp(c->name, "user_host") == 0) {
            struct rds_slice u, h, ip;
            if (rds_split_user_host(p, n, &u, &h, &ip) == LS_OK) {
                rds_add_str(rec, "user", 4, u.p, u.len);
                rds_add_str(rec, "host", 4, h.p, h.len);
                rds_add_str(rec, "host_ip", 7, ip.p, ip.len);
            }
        }
    }
}

/* A batch arrived: emit it, commit, move the watermark. */
static void rds_after_fetch(struct rds_ctx *ctx)
{
    size_t i;
    bool blocked = false;

    if (ctx->verify_failed) {
        /* same first row, different history: a new incarnation of the table */
        ls_plg_warn(ctx->ins, "mysql.%s no longer matches the watermark (truncated or "
                    "replaced); reading it from the first row", ctx->table);
        ctx->ident = rds_fnv(ctx->ident, &ctx->st.last, sizeof(ctx->st.last)) | 1;
        {
            char key[512];
            snprintf(key, sizeof(key), "%s\t%s\t%s\t%" PRId64 "\t%s\t%016" PRIx64,
                     ctx->kind->plugin, ctx->socket ? ctx->socket : "", ctx->host, ctx->port,
                     ctx->table, ctx->ident);
            ctx->src = ls_source_key(key, strlen(key));
        }
        ctx->verify_failed = false;
    }
    for (i = 0; i < ctx->nrows; i++) {
        const struct rds_row *row = &ctx->rows[i];
        int rc;

        rds_build(ctx, row);
        rc = ls_emit(ctx->ins, &ctx->rec);
        ls_arena_reset(&ctx->arena);
        if (rc == LS_AGAIN) {
            blocked = true;
            break;
        }
        if (rc == LS_ERROR) {
            ls_plg_warn(ctx->ins, "mysql.%s row %" PRIu64 " was rejected by the pipeline",
                        ctx->table, row->index);
        }
        ctx->pending = true;
        ctx->blocked_at = 0;        /* progress: wait_buffer_timeout counts from the next stall */
        snprintf(ctx->pending_st.table, sizeof(ctx->pending_st.table), "%s", ctx->table);
        ctx->pending_st.ident = ctx->ident;
        ctx->pending_st.done = row->index + 1;
        ctx->pending_st.last = row->hash;
    }
    if (rds_commit(ctx) != LS_OK) {
        rds_cycle_end(ctx, false);
        return;
    }
    if (blocked) {
        ls_plg_warn(ctx->ins, "buffer full: stopping at row %" PRIu64 " of mysql.%s; no "
                    "rotation until it is buffered", ctx->st.done, ctx->table);
        ctx->blocked = true;
        rds_cycle_end(ctx, false);
        return;
    }
    if (ctx->eof) {
        rds_next_table(ctx);
    } else {
        rds_submit(ctx, OP_FETCH);
    }
}

static void rds_next_table(struct rds_ctx *ctx)
{
    switch (ctx->phase) {
    case PH_SALVAGE:
        /* the backup is completely and durably buffered: now it may be dropped */
        rds_kill_point(ctx, "salvaged");
        ctx->phase = PH_ROTATE;
        rds_submit(ctx, OP_ROTATE);
        break;
    case PH_FRESH:
    case PH_LIVE:
        ctx->phase = PH_END;
        rds_submit(ctx, OP_END);
        break;
    default:
        rds_cycle_end(ctx, false);
        break;
    }
}

static void rds_done(void *arg)
{
    struct rds_ctx *ctx = arg;

    ctx->busy = false;
    if (ctx->stopping) {
        return;
    }
    if (ctx->rc != LS_OK) {
        if (ctx->rc == LS_DECLINED) {
            ls_plg_warn(ctx->ins, "%s", ctx->errmsg);
        } else {
            ls_plg_error(ctx->ins, "%s", ctx->errmsg);
        }
        snprintf(ctx->ins->metrics.last_error, sizeof(ctx->ins->metrics.last_error), "%.200s",
                 ctx->errmsg);
        ctx->ins->metrics.errors++;
        rds_cycle_end(ctx, false);
        return;
    }
    switch (ctx->op) {
    case OP_BEGIN:
        if (ctx->rotate) {
            ctx->phase = PH_SALVAGE;
            rds_start_table(ctx, ctx->kind->backup);
        } else {
            ctx->phase = PH_LIVE;
            rds_start_table(ctx, ctx->kind->live);
        }
        break;
    case OP_PROBE:
        rds_after_probe(ctx);
        break;
    case OP_FETCH:
        rds_after_fetch(ctx);
        break;
    case OP_ROTATE:
        ls_plg_debug(ctx->ins, "rotated mysql.%s", ctx->kind->live);
        rds_kill_point(ctx, "rotated");
        ctx->phase = PH_FRESH;
        rds_start_table(ctx, ctx->kind->backup);
        break;
    case OP_END:
        rds_cycle_end(ctx, true);
        break;
    }
}

static void rds_tick(struct ls_timer *t, void *arg)
{
    struct rds_ctx *ctx = arg;
    LS_UNUSED(t);

    if (ctx->in_cycle || ctx->busy || ctx->stopping || ctx->finished) {
        return;
    }
    if (ctx->paused && !ctx->blocked) {
        return;
    }
    if (ctx->blocked) {
        double now = ls_mono_now();
        if (ls_oneshot(ctx->ins->engine) && now - ctx->blocked_at > ctx->wait_buffer_timeout) {
            rds_oneshot_fail(ctx);
            return;
        }
        if (ctx->paused || now - ctx->cycle_at < 0.25) {
            return;     /* wait for .resume; without one (overflow throw), poll */
        }
    }
    ctx->in_cycle = true;
    ctx->cycle_at = ls_mono_now();
    rds_submit(ctx, OP_BEGIN);
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                            */

/* where the Debian package keeps state (packaging/debian) */
#define RDS_STATE_DIR "/var/lib/logship"

static const char *rds_root_dir(struct ls_conf_section *sec)
{
    struct ls_conf_section *root = sec, *sys;

    while (root && root->parent) {
        root = root->parent;
    }
    sys = root ? ls_conf_child(root, "system") : NULL;
    return sys ? ls_conf_get(sys, "root_dir") : NULL;
}

static int rds_init_kind(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                         size_t errlen, const struct rds_kind *kind)
{
    struct rds_ctx *ctx = ins->ctx;
    char why[512];

    ctx->kind = kind;
    ctx->ins = ins;
    ctx->kill_at = getenv("LOGSHIP_TEST_RDS_KILL_AT");
    ls_arena_init(&ctx->arena, 4096);
    ls_arena_init(&ctx->batch_arena, 64 * 1024);
    ls_record_init(&ctx->rec, &ctx->arena);
    if (ctx->state_file) {
        ctx->state_path = ls_strdup(ctx->state_file);
    } else {
        /*
         * The plugin's own README configures tag, host, username and password and nothing
         * else, so a default place is chosen, never an error: root_dir, else the package's
         * state directory when this user may write there, else the working directory.
         */
        const char *root = rds_root_dir(sec), *from = "<system> root_dir";
        char key[512], cwd[PATH_MAX];

        if (root == NULL || *root == '\0') {
            root = RDS_STATE_DIR;
            from = "the package's state directory";
            if (access(RDS_STATE_DIR, W_OK | X_OK) != 0) {
                root = getcwd(cwd, sizeof(cwd)) ? cwd : ".";
                from = "the working directory";
            }
        }
        snprintf(key, sizeof(key), "%s:%" PRId64 ":%s", ctx->host, ctx->port,
                 ctx->socket ? ctx->socket : "");
        ctx->state_path = ls_asprintf("%s/%s-%016" PRIx64 ".state", root, kind->plugin,
                                      ls_source_key(key, strlen(key)));
        ls_plg_info(ins, "state_file not set: keeping the watermark in '%s' (%s)",
                    ctx->state_path, from);
    }
    ctx->lock = ctx->lock_name ? ls_strdup(ctx->lock_name) : ls_asprintf("logship.%s", kind->live);
    if (strlen(ctx->lock) > 64) {
        snprintf(err, errlen, "%s:%d: 'lock_name' is longer than 64 characters", sec->file,
                 sec->line);
        return LS_ERROR;
    }
    if (ctx->ssl_ca && !ctx->ssl) {
        ls_plg_warn(ins, "ssl_ca is set but ssl is false: the connection is not encrypted");
    }
    if (ls_mysql_load(why, sizeof(why)) != LS_OK) {
        snprintf(err, errlen, "%s:%d: %s", sec->file, sec->line, why);
        return LS_ERROR;
    }
    /* not thread-safe on first use: do it here, before any worker touches the client */
    if (mysql_library_init(0, NULL, NULL) != 0) {
        snprintf(err, errlen, "%s:%d: cannot initialise the MariaDB client library", sec->file,
                 sec->line);
        return LS_ERROR;
    }
    return LS_OK;
}

static int rds_slow_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                         size_t errlen)
{
    return rds_init_kind(ins, sec, err, errlen, &rds_kind_slow);
}

static int rds_general_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                            size_t errlen)
{
    return rds_init_kind(ins, sec, err, errlen, &rds_kind_general);
}

static int rds_start(struct ls_instance *ins)
{
    struct rds_ctx *ctx = ins->ctx;
    char dir[4096];
    char *slash;

    snprintf(dir, sizeof(dir), "%s", ctx->state_path);
    slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        (void)ls_mkdir_p(dir, 0755);
    }
    if (rds_state_load(ctx->state_path, &ctx->st) != LS_OK) {
        /* refusing to start beats re-shipping (or skipping) a whole table on a guess */
        ls_plg_error(ins, "state file '%s' is unreadable or malformed; move it away to start "
                     "over", ctx->state_path);
        return LS_ERROR;
    }
    ctx->timer = ls_timer_new(ins, rds_tick, ctx);
    /* oneshot ticks often: a cycle blocked by a full buffer resumes as soon as it drains */
    ls_timer_start(ctx->timer, 0.0, ls_oneshot(ins->engine) ? 0.2 : ctx->interval);
    return LS_OK;
}

static void rds_stop(struct ls_instance *ins)
{
    struct rds_ctx *ctx = ins->ctx;

    ls_timer_free(ctx->timer);
    ctx->timer = NULL;
    /* rows emitted whose commit failed earlier: if they are durable now, say so */
    if (!ctx->busy) {
        (void)rds_commit(ctx);
    }
    ctx->stopping = true;
}

static void rds_pause(struct ls_instance *ins)
{
    ((struct rds_ctx *)ins->ctx)->paused = true;
}

static void rds_resume(struct ls_instance *ins)
{
    ((struct rds_ctx *)ins->ctx)->paused = false;
}

static void rds_destroy(struct ls_instance *ins)
{
    struct rds_ctx *ctx = ins->ctx;
    unsigned i;

    ls_timer_free(ctx->timer);
    ctx->timer = NULL;
    rds_close(ctx);
    for (i = 0; i < ctx->ncols; i++) {
        ls_free(ctx->cols[i].name);
    }
    ls_free(ctx->rows);
    ls_free(ctx->state_path);
    ls_free(ctx->lock);
    ls_record_release(&ctx->rec);
    ls_arena_release(&ctx->arena);
    ls_arena_release(&ctx->batch_arena);
}

/* --dry-run: the watermark's directory can be written by this user */
static int rds_check_access(struct ls_instance *ins)
{
    struct rds_ctx *ctx = ins->ctx;

    return ls_check_writable(ins, "state_file", ctx->state_path, false);
}

const struct ls_plugin ls_plugin_in_rds_slowlog = {
    .name = "rds_slowlog",
    .kind = LS_PLUGIN_INPUT,
    .description = "harvest mysql.slow_log (RDS rotate + backup, or read-only), no loss, "
                   "no duplicates",
    .params = rds_params,
    .ctx_size = sizeof(struct rds_ctx),
    .init = rds_slow_init,
    .check = rds_check_access,
    .destroy = rds_destroy,
    .start = rds_start,
    .stop = rds_stop,
    .pause = rds_pause,
    .resume = rds_resume,
};

const struct ls_plugin ls_plugin_in_rds_general_log = {
    .name = "rds_general_log",
    .kind = LS_PLUGIN_INPUT,
    .description = "harvest mysql.general_log (RDS rotate + backup, or read-only), no loss, "
                   "no duplicates",
    .params = rds_params,
    .ctx_size = sizeof(struct rds_ctx),
    .init = rds_general_init,
    .check = rds_check_access,
    .destroy = rds_destroy,
    .start = rds_start,
    .stop = rds_stop,
    .pause = rds_pause,
    .resume = rds_resume,
};
