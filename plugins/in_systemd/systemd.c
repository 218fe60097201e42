/*
 * systemd.c - fluent-plugin-systemd's in_systemd (1.x): read the systemd journal with
 * libsystemd's sd-journal (loaded with dlopen, sd_api.h).
 *
 * As the plugin: the journal directory `path` (default /var/log/journal; a file is opened as
 * one journal file), `matches` (or the deprecated `filters`): an array of hashes, the pairs of
 * one hash ANDed, the hashes ORed, a field's array of values ORed, field names upper-cased,
 * as the systemd-journal gem adds them; each entry's fields in the journal's order (a field
 * repeated in one entry: the last value, at the first one's place), its time the entry's
 * realtime timestamp (microseconds); `<entry>` mutates the fields (sd_entry.c). Reading
 * starts at the cursor in `<storage>` (fluentd's local storage, JSON {"journal": cursor}),
 * else at the head with `read_from_head`, else at the last entry (the plugin's seek to the
 * tail and two back). It reads every second, as the plugin's timer does.
 *
 * Where logship does better:
 *  - the cursor is saved only after the records are durable in every buffer
 *    (ls_input_commit), and records carry src/pos (a counter kept with the cursor, under an
 *    id made when the storage file is created) so a kill -9 between the buffer's write and
 *    the cursor's is neither lost nor sent twice: the entries the buffers already hold are
 *    skipped at start. The plugin saves the cursor as each record is emitted, before the
 *    buffer writes it (kill -9 can lose them), or only in memory without `persistent`;
 *  - a cursor whose entry was vacuumed: the plugin moves one past where the seek lands,
 *    skipping an entry it never read; logship checks that it landed on the cursor;
 *  - `pos_file` (the plugin's pre-1.0 parameter, a file holding the cursor) is kept as the
 *    storage path instead of being ignored, and `strip_underscores` as
 *    `<entry> fields_strip_underscores`;
 *  - a field's value is read whole (no 64 KiB data threshold).
 */
#include "plugin.h"
#include "log.h"
#include "json.h"
#include "compress.h"
#include "dynlib.h"
#include "sd_api.h"
#include "sd_entry.h"

#include <signal.h>
#include <sys/stat.h>
#include <inttypes.h>
#include <unistd.h>

struct ls_sd_api ls_sd;

static const struct ls_dynsym ls_sd_syms[] = {
#define LS_SD_SYM(f) { #f, offsetof(struct ls_sd_api, f##_p) },
    LS_SD_FUNCS(LS_SD_SYM)
#undef LS_SD_SYM
};

static struct ls_dynlib ls_sd_lib = {
    .soname = "libsystemd.so.0",
    .package = "libsystemd0",
    .syms = ls_sd_syms,
    .nsyms = LS_ARRAY_LEN(ls_sd_syms),
    .table = &ls_sd,
};

int ls_sd_load(char *err, size_t errlen)
{
    return ls_dynlib_load(&ls_sd_lib, err, errlen);
}

/* entries read per tick before a commit (bounds the memory of one batch and the time the
 * loop spends here) */
#define SD_BATCH 2000

struct sd_storage {
    char *type;
    char *path;
    bool persistent;
};

struct sd_ctx {
    /* parameters */
    char *path;
    char *filters;
    char *matches;
    bool read_from_head;
    char *tag;
    char *pos_file;
    bool strip_underscores;
    struct sd_storage storage;
    struct sd_mutator mut;

    /* state */
    struct ls_instance *ins;
    sd_journal *j;
    bool have_current;          /* positioned on an entry not yet emitted */
    char *cursor;               /* of the last entry committed */
    char *pending_cursor;       /* of the last entry emitted */
    uint64_t seq;               /* entries emitted under this storage id */
    uint64_t seq_committed;
    char id[33];
    uint64_t src;
    bool loaded;
    uint64_t skip;              /* entries after the cursor already durable (kill -9) */
    struct ls_timer *timer;
    bool paused;
    bool done;
    double warned_at;
    bool fresh;                 /* no storage file yet */
    const char *kill_at;        /* test hook: LOGSHIP_TEST_SYSTEMD_KILL_AT=committed */
    struct ls_arena arena;
    struct ls_record raw, rec;
};

#define F(f) offsetof(struct sd_ctx, f)

static const struct ls_param sd_params[] = {
    { "path", LS_P_STR, "/var/log/journal", 0, F(path), "journal directory (or one journal file)",
      NULL, NULL, 0, 0 },
    { "matches", LS_P_STR, NULL, LS_PF_NULLABLE, F(matches),
      "JSON array of hashes: [{\"_SYSTEMD_UNIT\": \"kubelet.service\"}] (pairs ANDed, hashes ORed)",
      NULL, NULL, 0, 0 },
    { "filters", LS_P_STR, NULL, LS_PF_NULLABLE, F(filters), "deprecated name of matches", NULL,
      NULL, 0, 0 },
    { "read_from_head", LS_P_BOOL, "false", 0, F(read_from_head),
      "without a saved cursor, start at the oldest entry (else at the last one)", NULL, NULL, 0, 0 },
    { "tag", LS_P_STR, NULL, LS_PF_REQUIRED, F(tag), "tag of the records", NULL, NULL, 0, 0 },
    { "pos_file", LS_P_STR, NULL, LS_PF_NULLABLE, F(pos_file),
      "pre-1.0 cursor file: used as <storage> path", NULL, NULL, 0, 0 },
    { "strip_underscores", LS_P_BOOL, "false", 0, F(strip_underscores),
      "pre-1.0: <entry> fields_strip_underscores", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

#define S(f) offsetof(struct sd_storage, f)
static const struct ls_param sd_storage_params[] = {
    { "@type", LS_P_STR, "local", 0, S(type), "local", NULL, NULL, 0, 0 },
    { "path", LS_P_STR, NULL, LS_PF_NULLABLE, S(path), "the cursor's JSON file", NULL, NULL, 0, 0 },
    { "persistent", LS_P_BOOL, "false", 0, S(persistent), "accepted (the cursor is written at "
      "every commit)", NULL, NULL, 0, 0 },
    { "autosave", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL, 0, 0 },
    { "autosave_interval", LS_P_TIME, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL, 0, 0 },
    { "save_at_shutdown", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL, 0, 0 },
    { "mode", LS_P_STR, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL, 0, 0 },
    { "dir_mode", LS_P_STR, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL, 0, 0 },
    { "pretty_print", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

/* ---- matches ---- */

struct sd_match {
    char **terms;               /* "FIELD=value" */
    size_t nterms;
    size_t *group_end;          /* a disjunction after terms[group_end[g] - 1] */
    size_t ngroups;
};

static void match_release(struct sd_match *m)
{
    for (size_t i = 0; i < m->nterms; i++) {
        ls_free(m->terms[i]);
    }
    ls_free(m->terms);
    ls_free(m->group_end);
    memset(m, 0, sizeof(*m));
}

static void match_add(struct sd_match *m, const char *k, size_t kl, const char *v, size_t vl)
{
    char *t = ls_malloc(kl + vl + 2);

    for (size_t i = 0; i < kl; i++) {
        t[i] = (char)((k[i] >= 'a' && k[i] <= 'z') ? k[i] - 32 : k[i]);   /* to_s.upcase */
    }
    t[kl] = '=';
    memcpy(t + kl + 1, v, vl);
    t[kl + 1 + vl] = '\0';
    m->terms = ls_realloc(m->terms, (m->nterms + 1) * sizeof(char *));
    m->terms[m->nterms++] = t;
}

/* A hash value as the gem's "#{value}": strings as they are, numbers and booleans as text. */
static int match_value(struct ls_arena *a, const struct ls_value *v, struct sd_match *m,
                       const char *k, size_t kl)
{
    size_t n;
    const char *s;

    if (v->type == LS_V_JSON && v->u.s.len && v->u.s.p[0] == '[') {
        size_t off = 0, elen;
        const char *elem;
        int r;
        while ((r = ls_json_array_next(v->u.s.p, v->u.s.len, &off, &elem, &elen)) == LS_OK) {
            struct ls_value ev;
            if (elen && elem[0] == '"') {
                size_t used;
                if (ls_json_string_at(elem, elen, a, &s, &n, &used) != LS_OK) {
                    return LS_ERROR;
                }
                ev = ls_vstr(s, n);
            } else {
                ev = ls_vstr(elem, elen);   /* a number as written */
            }
            s = ls_value_to_text(a, &ev, &n);
            match_add(m, k, kl, s, n);
        }
        return r == LS_DECLINED ? LS_OK : LS_ERROR;
    }
    if (v->type == LS_V_JSON || v->type == LS_V_NULL) {
        return LS_ERROR;
    }
    s = ls_value_to_text(a, v, &n);
    match_add(m, k, kl, s, n);
    return LS_OK;
}

static int match_parse(const char *text, struct sd_match *m, char *err, size_t errlen)
{
    struct ls_arena a;
    struct ls_record r;
    size_t off = 0, elen;
    const char *elem;
    int rc = LS_OK, it;

    ls_arena_init(&a, 1024);
    ls_record_init(&r, &a);
    while ((it = ls_json_array_next(text, strlen(text), &off, &elem, &elen)) == LS_OK) {
        ls_record_clear(&r);
        if (ls_json_parse_object(elem, elen, &r) != LS_OK) {
            snprintf(err, errlen, "matches: each element must be a hash: %.*s", (int)elen, elem);
            rc = LS_ERROR;
            break;
        }
        for (unsigned i = 0; i < r.nfields && rc == LS_OK; i++) {
            if (match_value(&a, &r.fields[i].v, m, r.fields[i].key, r.fields[i].key_len) != LS_OK) {
                snprintf(err, errlen, "matches: the value of '%.*s' must be a string, a number "
                         "or an array of them", (int)r.fields[i].key_len, r.fields[i].key);
                rc = LS_ERROR;
            }
        }
        m->group_end = ls_realloc(m->group_end, (m->ngroups + 1) * sizeof(size_t));
        m->group_end[m->ngroups++] = m->nterms;
    }
    if (rc == LS_OK && it == LS_ERROR) {
        snprintf(err, errlen, "matches: not a JSON array of hashes: %s", text);
        rc = LS_ERROR;
    }
    ls_record_release(&r);
    ls_arena_release(&a);
    return rc;
}

/* ---- the storage file ---- */

static void storage_load(struct sd_ctx *ctx)
{
    char *text = NULL;
    size_t len = 0;
    const char *p = ctx->storage.path;

    ctx->loaded = true;
    if (p == NULL || ls_read_file(p, 1 << 20, &text, &len) != LS_OK) {
        return;
    }
    {
        struct ls_arena a;
        struct ls_record r;
        ls_arena_init(&a, 1024);
        ls_record_init(&r, &a);
        if (ls_json_parse_object(text, len, &r) == LS_OK) {
            struct ls_field *c = ls_record_get(&r, "journal", 7);
            struct ls_field *sq = ls_record_get(&r, "logship_seq", 11);
            struct ls_field *id = ls_record_get(&r, "logship_id", 10);
            if (c && c->v.type == LS_V_STR && c->v.u.s.len) {
                ctx->cursor = ls_strndup(c->v.u.s.p, c->v.u.s.len);
            }
            if (sq && sq->v.type == LS_V_INT && sq->v.u.i >= 0 && id && id->v.type == LS_V_STR &&
                id->v.u.s.len == 32) {
                ctx->seq = ctx->seq_committed = (uint64_t)sq->v.u.i;
                memcpy(ctx->id, id->v.u.s.p, 32);
                ctx->id[32] = '\0';
            }
        } else {
            /* the plugin's pre-1.0 pos_file: the cursor alone */
            size_t n = len;
            while (n && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' ')) {
                n--;
            }
            if (n) {
                ctx->cursor = ls_strndup(text, n);
            }
        }
        ls_record_release(&r);
        ls_arena_release(&a);
    }
    ls_free(text);
}

static int storage_save(struct sd_ctx *ctx)
{
    struct ls_buf b;
    int rc;

    if (ctx->storage.path == NULL) {
        return LS_OK;
    }
    ls_buf_init(&b, 0);
    ls_buf_putc(&b, '{');
    if (ctx->cursor) {
        ls_buf_append(&b, "\"journal\":", 10);
        ls_json_put_str(&b, ctx->cursor, strlen(ctx->cursor));
        ls_buf_putc(&b, ',');
    }
    ls_buf_printf(&b, "\"logship_id\":\"%s\",\"logship_seq\":%" PRIu64 "}", ctx->id,
                  ctx->seq_committed);
    rc = ls_write_file_atomic(ctx->storage.path, b.p, b.len, 0644);
    ls_buf_release(&b);
    if (rc != LS_OK) {
        ls_plg_error(ctx->ins, "cannot write the cursor to '%s' (%d: %s)", ctx->storage.path,
                     errno, strerror(errno));
    }
    return rc;
}

static void new_id(struct sd_ctx *ctx)
{
    unsigned char r[16];
    FILE *f = fopen("/dev/urandom", "rb");
    size_t got = f ? fread(r, 1, sizeof(r), f) : 0;

    if (f) {
        fclose(f);
    }
    if (got != sizeof(r)) {
        int64_t s;
        int32_t ns;
        ls_wall_now(&s, &ns);
        uint64_t x = (uint64_t)s * 1000000007u ^ (uint64_t)ns ^ ((uint64_t)getpid() << 32);
        memcpy(r, &x, 8);
        memcpy(r + 8, &x, 8);
    }
    ls_hex(r, sizeof(r), ctx->id);
}

/* ---- reading ---- */

static void sd_warn(struct sd_ctx *ctx, const char *what, int r)
{
    int64_t s;
    int32_t ns;

    ls_wall_now(&s, &ns);
    if ((double)s - ctx->warned_at >= 60) {
        ctx->warned_at = (double)s;
        ls_plg_warn(ctx->ins, "%s: %s (retrying every second)", what, strerror(-r));
    }
}

/* After a kill -9 between the buffer's commit and the cursor's save: step over the entries
 * the buffers already hold (ctx->skip, from ls_source_durable_pos) and save the cursor. */
static void sd_skip_durable(struct sd_ctx *ctx)
{
    if (ctx->skip == 0) {
        return;
    }
    ls_plg_info(ctx->ins, "%" PRIu64 " entries after the saved position are already buffered; "
                "skipping them", ctx->skip);
    for (; ctx->skip > 0; ctx->skip--) {
        if (ctx->have_current) {
            ctx->have_current = false;
        } else if (sd_journal_next(ctx->j) <= 0) {
            break;
        }
        ctx->seq++;
        ctx->seq_committed = ctx->seq;
        free(ctx->pending_cursor);
        ctx->pending_cursor = NULL;
        if (sd_journal_get_cursor(ctx->j, &ctx->pending_cursor) >= 0) {
            ls_free(ctx->cursor);
            ctx->cursor = ls_strdup(ctx->pending_cursor);
        }
    }
    ctx->skip = 0;
    if (ctx->cursor) {
        (void)storage_save(ctx);
    }
}

static int sd_open(struct sd_ctx *ctx)
{
    struct sd_match m = { 0 };
    struct stat st;
    int r;
    char err[200];

    if (ctx->matches || ctx->filters) {
        (void)match_parse(ctx->matches ? ctx->matches : ctx->filters, &m, err, sizeof(err));
    }
    if (stat(ctx->path, &st) == 0 && S_ISREG(st.st_mode)) {
        const char *files[2] = { ctx->path, NULL };
        r = sd_journal_open_files(&ctx->j, files, 0);
    } else {
        r = sd_journal_open_directory(&ctx->j, ctx->path, 0);
    }
    if (r < 0) {
        char what[600];
        snprintf(what, sizeof(what), "cannot open the journal at '%s'", ctx->path);
        sd_warn(ctx, what, r);
        ctx->j = NULL;
        match_release(&m);
        return LS_ERROR;
    }
    (void)sd_journal_set_data_threshold(ctx->j, 0);
    /* sets up the inotify watch that sd_journal_process reads: new and rotated files */
    (void)sd_journal_get_fd(ctx->j);
    for (size_t g = 0, t = 0; g < m.ngroups; g++) {
        for (; t < m.group_end[g]; t++) {
            (void)sd_journal_add_match(ctx->j, m.terms[t], strlen(m.terms[t]));
        }
        if (g + 1 < m.ngroups) {
            (void)sd_journal_add_disjunction(ctx->j);
        }
    }
    match_release(&m);

    ctx->have_current = false;
    if (ctx->cursor) {
        r = sd_journal_seek_cursor(ctx->j, ctx->cursor);
        if (r >= 0) {
            r = sd_journal_next(ctx->j);
            if (r > 0 && sd_journal_test_cursor(ctx->j, ctx->cursor) <= 0) {
                /* the cursor's entry is gone (vacuumed): this one was never read */
                ctx->have_current = true;
            }
            sd_skip_durable(ctx);
            return LS_OK;
        }
        ls_plg_warn(ctx->ins, "Could not seek to cursor %s found in position file: %s, falling "
                    "back to reading from %s", ctx->cursor,
                    ctx->storage.path ? ctx->storage.path : "(memory)",
                    ctx->read_from_head ? "head" : "tail");
        ctx->skip = 0;
    }
    if (ctx->read_from_head) {
        (void)sd_journal_seek_head(ctx->j);
        sd_skip_durable(ctx);       /* the head is where the first run started too */
    } else {
        /* the plugin's seek(:tail) then move(-2): its first read returns the last entry */
        (void)sd_journal_seek_tail(ctx->j);
        (void)sd_journal_previous_skip(ctx->j, 2);
        ctx->skip = 0;
    }
    return LS_OK;
}

/* The current entry into ctx->raw (fields as the gem's current_entry). */
static int sd_entry(struct sd_ctx *ctx)
{
    const void *data;
    size_t len;
    uint64_t usec = 0;
    int r;

    ls_record_clear(&ctx->raw);
    ctx->raw.tag = ctx->tag;
    ctx->raw.tag_len = strlen(ctx->tag);
    if (sd_journal_get_realtime_usec(ctx->j, &usec) < 0) {
        usec = 0;
    }
    ctx->raw.time.sec = (int64_t)(usec / 1000000);
    ctx->raw.time.nsec = (int32_t)(usec % 1000000) * 1000;
    sd_journal_restart_data(ctx->j);
    while ((r = sd_journal_enumerate_data(ctx->j, &data, &len)) > 0) {
        const char *p = data, *eq = memchr(p, '=', len);
        char *copy;
        struct ls_value v;
        if (eq == NULL) {
            continue;
        }
        /* sd-journal's buffer is reused by the next call: copy */
        copy = ls_arena_memdup(&ctx->arena, p, len);
        v = ls_vstr(copy + (eq - p) + 1, len - (size_t)(eq - p) - 1);
        ls_record_set(&ctx->raw, copy, (size_t)(eq - p), &v);
    }
    return r < 0 ? r : 0;
}

static void sd_commit(struct sd_ctx *ctx)
{
    if (ctx->seq == ctx->seq_committed || ctx->pending_cursor == NULL) {
        return;
    }
    if (ls_input_commit(ctx->ins) != LS_OK) {
        return;     /* not durable: the cursor stays; the records are de-duplicated by pos */
    }
    if (ctx->kill_at && strcmp(ctx->kill_at, "committed") == 0) {
        raise(SIGKILL);     /* durable in the buffer, the cursor not saved yet */
    }
    ls_free(ctx->cursor);
    ctx->cursor = ls_strdup(ctx->pending_cursor);
    ctx->seq_committed = ctx->seq;
    (void)storage_save(ctx);
}

static void sd_read(struct sd_ctx *ctx)
{
    int n = 0, r;

    if (ctx->j == NULL && sd_open(ctx) != LS_OK) {
        if (ls_oneshot(ctx->ins->engine) && !ctx->done) {
            ctx->done = true;
            ls_input_fail(ctx->ins);
        }
        return;
    }
    (void)sd_journal_process(ctx->j);
    while (!ctx->paused) {
        int rc;
        if (!ctx->have_current) {
            r = sd_journal_next(ctx->j);
            if (r < 0) {
                sd_warn(ctx, "Error moving to next Journal entry", r);
                break;
            }
            if (r == 0) {
                if (ls_oneshot(ctx->ins->engine) && !ctx->done) {
                    sd_commit(ctx);
                    ctx->done = true;
                    ls_input_done(ctx->ins);
                }
                break;
            }
            ctx->have_current = true;
        }
        r = sd_entry(ctx);
        if (r < 0) {
            sd_warn(ctx, "Error reading from Journal", r);
        }
        sd_mutator_run(&ctx->mut, &ctx->raw, &ctx->rec);
        ctx->rec.src = ctx->src;
        ctx->rec.pos = ctx->seq + 1;
        rc = ls_emit(ctx->ins, &ctx->rec);
        if (rc == LS_AGAIN) {
            ls_arena_reset(&ctx->arena);
            break;      /* the buffer is full: this entry again after .resume */
        }
        ctx->have_current = false;
        ctx->seq++;
        {
            char *c = NULL;
            if (sd_journal_get_cursor(ctx->j, &c) >= 0) {
                free(ctx->pending_cursor);
                ctx->pending_cursor = c;
            }
        }
        ls_arena_reset(&ctx->arena);
        if (++n >= SD_BATCH) {
            sd_commit(ctx);
            n = 0;
        }
    }
    sd_commit(ctx);
}

static void sd_tick(struct ls_timer *t, void *arg)
{
    struct sd_ctx *ctx = arg;
    LS_UNUSED(t);

    if (!ctx->done) {
        sd_read(ctx);
    }
}

/* ---- lifecycle ---- */

static int sd_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct sd_ctx *ctx = ins->ctx;
    struct ls_conf_section *ss = ls_conf_child(sec, "storage");
    struct ls_conf_section *es = ls_conf_child(sec, "entry");
    struct sd_match m = { 0 };
    char msg[300];
    char key[1200];

    ctx->ins = ins;
    ctx->kill_at = getenv("LOGSHIP_TEST_SYSTEMD_KILL_AT");
    ls_arena_init(&ctx->arena, 16384);
    ls_record_init(&ctx->raw, &ctx->arena);
    ls_record_init(&ctx->rec, &ctx->arena);
    if (ls_param_bind(sd_storage_params, ss, &ctx->storage, err, errlen) != LS_OK ||
        ls_param_bind(sd_mutator_params, es, &ctx->mut, err, errlen) != LS_OK) {
        return LS_ERROR;
    }
    if (strcmp(ctx->storage.type, "local") != 0) {
        ls_conf_param_error(ss, "@type", err, errlen, "<storage> @type %s: only local is "
                            "supported", ctx->storage.type);
        return LS_ERROR;
    }
    if (ctx->strip_underscores && es == NULL) {
        ctx->mut.fields_strip_underscores = true;
    }
    if (sd_mutator_init(&ctx->mut, msg, sizeof(msg)) != LS_OK) {
        ls_conf_param_error(es ? es : sec, "field_map", err, errlen, "%s", msg);
        return LS_ERROR;
    }
    if (ctx->matches || ctx->filters) {
        if (match_parse(ctx->matches ? ctx->matches : ctx->filters, &m, msg, sizeof(msg)) != LS_OK) {
            ls_conf_param_error(sec, ctx->matches ? "matches" : "filters", err, errlen, "%s", msg);
            match_release(&m);
            return LS_ERROR;
        }
        if (!ctx->matches) {
            ls_plg_warn(ins, "'filters' is deprecated: use 'matches'");
        }
        match_release(&m);
    }
    if (ctx->storage.path == NULL && ctx->pos_file) {
        ctx->storage.path = ls_strdup(ctx->pos_file);
    } else if (ctx->storage.path == NULL && ls_conf_root_dir(sec) && ls_conf_get(sec, "@id")) {
        /* fluentd's storage under the plugin's root: <root_dir>/worker0/<@id>/storage.json */
        char *dir = ls_asprintf("%s/worker0/%s", ls_conf_root_dir(sec), ls_conf_get(sec, "@id"));
        ctx->storage.path = ls_asprintf("%s/storage.json", dir);
        (void)ls_mkdir_p(dir, 0755);
        ls_free(dir);
    } else if (ctx->storage.path == NULL) {
        if (ctx->storage.persistent) {
            snprintf(err, errlen, "%s:%d: Plugin @id or path for <storage> required when "
                     "'persistent' is true", ss ? ss->file : sec->file, ss ? ss->line : sec->line);
            return LS_ERROR;
        }
        ls_plg_info(ins, "both of Plugin @id and path for <storage> are not specified. Using "
                    "on-memory store.");
    }
    if (ls_sd_load(msg, sizeof(msg)) != LS_OK) {
        snprintf(err, errlen, "%s:%d: %s", sec->file, sec->line, msg);
        return LS_ERROR;
    }
    storage_load(ctx);
    if (ctx->id[0] == '\0') {
        /* written before anything is read: the records' src must name this storage across a
         * kill -9 that comes before the first cursor is saved */
        new_id(ctx);
        ctx->seq = ctx->seq_committed = 0;
        ctx->fresh = true;      /* saved at start (not in --dry-run) */
    }
    snprintf(key, sizeof(key), "systemd\t%s\t%s", ctx->id,
             ctx->storage.path ? ctx->storage.path : "");
    ctx->src = ls_source_key(key, strlen(key));
    return LS_OK;
}

static int sd_start(struct ls_instance *ins)
{
    struct sd_ctx *ctx = ins->ctx;
    uint64_t durable = ls_source_durable_pos(ins->engine, ctx->src);

    if (durable > ctx->seq_committed && (ctx->cursor || ctx->read_from_head)) {
        ctx->skip = durable - ctx->seq_committed;   /* kill -9 after the commit, before the save */
    }
    if (ctx->fresh && ctx->storage.path && storage_save(ctx) != LS_OK) {
        return LS_ERROR;
    }
    ctx->fresh = false;
    ctx->timer = ls_timer_new(ins, sd_tick, ctx);
    ls_timer_start(ctx->timer, 0.0, ls_oneshot(ins->engine) ? 0.05 : 1.0);
    return LS_OK;
}

static void sd_stop(struct ls_instance *ins)
{
    struct sd_ctx *ctx = ins->ctx;

    ls_timer_free(ctx->timer);
    ctx->timer = NULL;
    if (ctx->j) {
        sd_commit(ctx);
    }
}

static void sd_pause(struct ls_instance *ins)
{
    ((struct sd_ctx *)ins->ctx)->paused = true;
}

static void sd_resume(struct ls_instance *ins)
{
    struct sd_ctx *ctx = ins->ctx;

    ctx->paused = false;
    if (ctx->timer) {
        ls_timer_start(ctx->timer, 0.0, ls_oneshot(ins->engine) ? 0.05 : 1.0);
    }
}

static int sd_check(struct ls_instance *ins)
{
    struct sd_ctx *ctx = ins->ctx;
    int bad = 0;

    if (ctx->storage.path) {
        bad += ls_check_writable(ins, "path", ctx->storage.path, false);
    }
    if (access(ctx->path, R_OK) != 0 && errno != ENOENT) {
        ls_plg_error(ins, "cannot read the journal at '%s' (%s)", ctx->path, strerror(errno));
        bad++;
    }
    return bad;
}

static void sd_destroy(struct ls_instance *ins)
{
    struct sd_ctx *ctx = ins->ctx;

    ls_timer_free(ctx->timer);
    if (ctx->j) {
        sd_journal_close(ctx->j);
    }
    ls_free(ctx->cursor);
    free(ctx->pending_cursor);      /* from sd_journal_get_cursor: libc's */
    sd_mutator_release(&ctx->mut);
    ls_param_release(sd_mutator_params, &ctx->mut);
    ls_param_release(sd_storage_params, &ctx->storage);
    ls_record_release(&ctx->raw);
    ls_record_release(&ctx->rec);
    ls_arena_release(&ctx->arena);
}

const struct ls_plugin ls_plugin_in_systemd = {
    .name = "systemd",
    .kind = LS_PLUGIN_INPUT,
    .description = "read the systemd journal (fluent-plugin-systemd's in_systemd)",
    .params = sd_params,
    .ctx_size = sizeof(struct sd_ctx),
    .init = sd_init,
    .destroy = sd_destroy,
    .start = sd_start,
    .stop = sd_stop,
    .pause = sd_pause,
    .resume = sd_resume,
    .check = sd_check,
};
