/*
 * file.c - fluentd v1's out_file: write each sealed chunk to a file named
 * from `path` (placeholders ${tag}, ${key}, strftime on the chunk's time
 * slice), optionally gzip- or zstd-compressed, one file per chunk or appended.
 *
 * File names follow out_file's generate_path_template exactly: a path
 * without placeholders gets ".<slice>" (%Y%m%d for a 1d timekey), "_<N>"
 * (first free index; not with append) and path_suffix (".log") added; a
 * '*' in path is replaced by "<slice>_<N>"; ".gz" is added with gzip,
 * ".zstd" (fluentd 1.19's suffix, not zstd's ".zst") with zstd. An append
 * adds one gzip member or zstd frame to the file, which gzip and zstd read
 * as one stream, as fluentd's appends are.
 *
 * The write itself runs on the worker pool (it reads the chunk, compresses,
 * fsyncs). The design decision is idempotency across crashes: the target
 * name is resolved once per chunk and stored as the chunk's state (which
 * the file buffer persists next to the chunk), so a chunk retried after
 * kill -9 goes to the same name, never to a second file:
 *  - one file per chunk: the data is written to a hidden part file named
 *    by the chunk, which link() then gives the first free index (so no
 *    other chunk, in this process or after a restart, can take it), and the
 *    state records the name ("done"). A crash between the two is recognised
 *    by the part file's link count, and the name is found by its inode. No
 *    reader ever sees a name whose data is incomplete or missing.
 *  - append: renaming cannot help, so the file size *before* the append is
 *    stored in the state, and once the data is fsynced, still holding the
 *    file's append lock, the state says "done". So at most one chunk per file
 *    is ever mid-append (stored size, not done), and it is the file's last
 *    append: at start, before anything else is written, the file is cut back
 *    to its size and the chunk forgets it (file_start). A done chunk that a
 *    crash left in the buffer is not written twice. A failure inside the
 *    process cuts back at once and forgets the size. Cutting at retry time
 *    instead, as this file once did, cut the data of every chunk appended in
 *    between whenever the retry order differed from the append order.
 * Tag and record-key values that would leave the configured directory
 * ("../", a leading "/") are refused as unrecoverable (fluentd 1.19).
 */
#include "plugin.h"
#include "compress.h"
#include "log.h"

#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>

enum { FILE_TEXT, FILE_GZ, FILE_GZIP, FILE_ZSTD };

struct file_ctx {
    char *path;
    bool add_path_suffix;
    char *path_suffix;
    bool append;
    int compress;
    bool recompress;
    char *symlink_path;
    /* derived */
    char *tmpl;                 /* path template; "_**" marks the index (non-append) */
    bool uses_tag;
    bool uses_keys;
    pthread_mutex_t append_mu;  /* appends to one file never interleave */
    bool mu_ready;
};

static const struct ls_param file_params[] = {
    { "path", LS_P_STR, NULL, LS_PF_REQUIRED, offsetof(struct file_ctx, path),
      "file path; placeholders ${tag}, ${key}, %Y%m%d..., '*' marks where the slice goes", NULL,
      NULL, 0, 0 },
    { "add_path_suffix", LS_P_BOOL, "true", 0, offsetof(struct file_ctx, add_path_suffix),
      "add path_suffix to a path without '*'", NULL, NULL, 0, 0 },
    { "path_suffix", LS_P_STR, ".log", 0, offsetof(struct file_ctx, path_suffix),
      "suffix added to the file name", NULL, NULL, 0, 0 },
    { "append", LS_P_BOOL, "false", 0, offsetof(struct file_ctx, append),
      "append chunks of a slice to one file (false: one file per chunk, _0, _1...)", NULL, NULL,
      0, 0 },
    { "compress", LS_P_ENUM, "text", 0, offsetof(struct file_ctx, compress),
      "gzip (.gz is added) or zstd (.zstd) the files", NULL, "text|gz|gzip|zstd", 0, 0 },
    { "recompress", LS_P_BOOL, "false", 0, offsetof(struct file_ctx, recompress),
      "accepted; chunks are stored as text, so they are always compressed once", NULL, NULL, 0,
      0 },
    { "symlink_path", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct file_ctx, symlink_path),
      "keep a symlink here to the latest file written", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

/* ------------------------------------------------------------------ */
/* configuration                                                        */

static enum ls_compress_algo file_algo(const struct file_ctx *ctx)
{
    return ctx->compress == FILE_TEXT ? LS_COMPRESS_TEXT
           : ctx->compress == FILE_ZSTD ? LS_COMPRESS_ZSTD : LS_COMPRESS_GZIP;
}

static bool keys_have(const char *keys, const char *name)
{
    char buf[256];
    char *s = buf, *tok;

    snprintf(buf, sizeof(buf), "%s", keys);
    while ((tok = strsep(&s, ", ")) != NULL) {
        if (strcmp(tok, name) == 0) {
            return true;
        }
    }
    return false;
}

/*
 * How the chunks this instance receives are keyed: from the <buffer> of its
 * own <match>, or of the primary's when it is a <secondary>. *timekey is 0
 * when time is not a chunk key; *slice_fmt is a v0.12 time_slice_format.
 */
static void chunking_of(struct ls_conf_section *sec, const char **keys, double *timekey,
                        const char **slice_fmt)
{
    struct ls_conf_section *m = sec;
    struct ls_conf_section *bs;
    const char *def = "time";
    const char *v;

    if (strcmp(sec->name, "secondary") == 0 && sec->parent) {
        const char *pt = ls_conf_type(sec->parent);
        const struct ls_plugin *p = pt ? ls_plugin_find(LS_PLUGIN_OUTPUT, pt) : NULL;
        m = sec->parent;
        def = p ? (p->default_chunk_keys ? p->default_chunk_keys : "") : "time";
    }
    bs = ls_conf_child(m, "buffer");
    *keys = bs && bs->arg[0] ? bs->arg : def;
    if (strcmp(*keys, "[]") == 0) {
        *keys = "";
    }
    *slice_fmt = NULL;
    *timekey = 0;
    if (!bs && (v = ls_conf_get(m, "time_slice_format")) != NULL && *v) {
        *slice_fmt = v;
        *keys = "time";
    }
    if (!keys_have(*keys, "time")) {
        return;
    }
    *timekey = 86400;
    v = bs ? ls_conf_get(bs, "timekey") : NULL;
    if (v && ls_parse_time(v, timekey) != LS_OK) {
        *timekey = 86400;
    }
    if (*slice_fmt) {
        if (strstr(*slice_fmt, "%S")) {
            *timekey = 1;
        } else if (strstr(*slice_fmt, "%M")) {
            *timekey = 60;
        } else if (strstr(*slice_fmt, "%H")) {
            *timekey = 3600;
        }
    }
}

/* fluentd's generate_path_template */
static int build_template(struct file_ctx *ctx, double timekey, const char *slice_fmt,
                          struct ls_buf *o, char *msg, size_t msglen)
{
    const char *comp = ctx->compress == FILE_TEXT   ? ""
                       : ctx->compress == FILE_ZSTD ? ".zstd"
                                                    : ".gz";
    const char *index = ctx->append ? "" : "_**";
    const char *suffix = ctx->add_path_suffix ? ctx->path_suffix : "";
    const char *p;

    if (strchr(ctx->path, '*')) {
        const char *tf = slice_fmt ? slice_fmt : ls_timekey_format(timekey);
        if (timekey <= 0) {
            snprintf(msg, msglen, "path including '*' must be used with buffer chunk key 'time'");
            return LS_ERROR;
        }
        for (p = ctx->path; *p; p++) {
            if (*p == '*') {
                ls_buf_printf(o, "%s%s", tf, index);
            } else {
                ls_buf_putc(o, *p);
            }
        }
        ls_buf_printf(o, "%s", comp);
        return LS_OK;
    }
    if (timekey > 0) {
        if (slice_fmt) {
            ls_buf_printf(o, "%s.%s%s%s%s", ctx->path, slice_fmt, index, suffix, comp);
            return LS_OK;
        } else {
            const char *tf = ls_timekey_format(timekey);
            size_t i, n = strlen(tf), have = 0;
            for (i = 0; i + 1 < n; i += 2) {
                char ph[3] = { tf[i], tf[i + 1], 0 };
                have += strstr(ctx->path, ph) != NULL;
            }
            if (have > 0 && have < n / 2) {
                snprintf(msg, msglen, "insufficient timestamp placeholders in path (a timekey of "
                         "%gs needs %s)", timekey, tf);
                return LS_ERROR;
            }
            if (have) {
                ls_buf_printf(o, "%s%s%s%s", ctx->path, index, suffix, comp);
            } else {
                ls_buf_printf(o, "%s.%s%s%s%s", ctx->path, tf, index, suffix, comp);
            }
            return LS_OK;
        }
    }
    ls_buf_printf(o, "%s%s%s%s", ctx->path, index, suffix, comp);
    return LS_OK;
}

static int file_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                     size_t errlen)
{
    struct file_ctx *ctx = ins->ctx;
    const char *keys, *slice_fmt;
    double timekey;
    struct ls_buf t;
    char msg[256];
    const char *s;
    bool secondary = strcmp(sec->name, "secondary") == 0;

    pthread_mutex_init(&ctx->append_mu, NULL);
    ctx->mu_ready = true;
    if (ls_compress_load(file_algo(ctx), msg, sizeof(msg)) != LS_OK) {
        ls_conf_param_error(sec, "compress", err, errlen, "compress %s: %s",
                            ctx->compress == FILE_ZSTD ? "zstd" : "gzip", msg);
        return LS_ERROR;
    }
    if (file_algo(ctx) == LS_COMPRESS_GZIP && !secondary) {
        ls_output_early_gzip(ins, -1);
    }
    chunking_of(sec, &keys, &timekey, &slice_fmt);
    ls_buf_init(&t, 0);
    if (build_template(ctx, timekey, slice_fmt, &t, msg, sizeof(msg)) != LS_OK) {
        ls_conf_param_error(sec, "path", err, errlen, "%s", msg);
        ls_buf_release(&t);
        return LS_ERROR;
    }
    ctx->tmpl = ls_strndup(t.p, t.len);
    ls_buf_release(&t);
    /* a placeholder whose chunk key is not configured is an error, as in fluentd */
    for (s = strstr(ctx->tmpl, "${"); s; s = strstr(s + 2, "${")) {
        const char *end = strchr(s, '}');
        char name[128];
        size_t n;
        if (end == NULL) {
            break;
        }
        n = (size_t)(end - s - 2);
        snprintf(name, sizeof(name), "%.*s", (int)(n < sizeof(name) ? n : sizeof(name) - 1),
                 s + 2);
        if (strncmp(name, "tag", 3) == 0 && (name[3] == '\0' || name[3] == '[')) {
            ctx->uses_tag = true;
            if (!keys_have(keys, "tag") && !secondary) {
                snprintf(err, errlen, "%s:%d: path uses ${%s} but 'tag' is not a chunk key "
                         "(add it: <buffer tag,time>)", sec->file, sec->line, name);
                return LS_ERROR;
            }
        } else if (strcmp(name, "chunk_id") != 0) {
            ctx->uses_keys = true;
            if (!keys_have(keys, name) && !secondary) {
                snprintf(err, errlen, "%s:%d: path uses ${%s} but '%s' is not a chunk key",
                         sec->file, sec->line, name, name);
                return LS_ERROR;
            }
        }
    }
    if (ctx->symlink_path && secondary) {
        snprintf(err, errlen, "%s:%d: symlink_path option is unavailable in <secondary>: "
                 "consider to use secondary_file plugin", sec->file, sec->line);
        return LS_ERROR;
    }
    if (!secondary) {
        /*
         * out_file's buffer is a file buffer in the directory `path` unless
         * the configuration says otherwise (fluentd: config_set_default
         * @type file, and buffer path = path). Flat v0.12 configs name it
         * with buffer_path / buffer_type.
         */
        struct ls_conf_section *bs = ls_conf_child(sec, "buffer");
        bool root_ok = ls_conf_root_dir(sec) && ls_conf_get(sec, "@id");
        if (bs) {
            if (ls_conf_type(bs) == NULL) {
                ls_conf_set(bs, "@type", "file", bs->file, bs->line);
            }
            if (ls_conf_get(bs, "path") == NULL && !root_ok) {
                ls_conf_set(bs, "path", ctx->path, bs->file, bs->line);
            }
        } else {
            if (ls_conf_get(sec, "buffer_type") == NULL) {
                ls_conf_set(sec, "buffer_type", "file", sec->file, sec->line);
            }
            if (ls_conf_get(sec, "buffer_path") == NULL && !root_ok) {
                ls_conf_set(sec, "buffer_path", ctx->path, sec->file, sec->line);
            }
        }
    }
    return LS_OK;
}

static void file_destroy(struct ls_instance *ins)
{
    struct file_ctx *ctx = ins->ctx;

    if (ctx->mu_ready) {
        pthread_mutex_destroy(&ctx->append_mu);
    }
    ls_free(ctx->tmpl);
}

/* ------------------------------------------------------------------ */
/* writing (worker thread)                                              */

struct file_job {
    struct ls_instance *ins;
    struct ls_chunk *chunk;
    char *target;               /* expanded template, when the chunk has no state yet */
    char *final;                /* the file written */
    char *state_path;           /* from a stored state */
    bool state_done;            /* the chunk is in its file (a crash came before the purge) */
    int rc;
    uint64_t out_bytes;
    char err[256];
};

static int mkdir_parent(const char *path)
{
    char *copy = ls_strdup(path);
    char *dir = dirname(copy);
    int rc = ls_mkdir_p(dir, 0755);

    ls_free(copy);
    return rc;
}

/* Compress the chunk's payload to fd (at its current offset / O_APPEND). */
static int write_chunk_to(struct file_job *j, int fd)
{
    return ls_chunk_write_fd(j->chunk, file_algo(j->ins->ctx), fd, &j->out_bytes, j->err,
                             sizeof(j->err));
}

/* Replace the "_**" index mark with "_<i>". */
static char *with_index(const char *tmpl, unsigned i)
{
    const char *m = strstr(tmpl, "_**");

    if (m == NULL) {
        return ls_strdup(tmpl);
    }
    return ls_asprintf("%.*s_%u%s", (int)(m - tmpl), tmpl, i, m + 3);
}

/* Store state (consumed) as the chunk's state; on failure, a message in j->err. */
static int save_state(struct file_job *j, char *state)
{
    int rc = ls_chunk_set_state(j->chunk, state);

    if (rc != LS_OK) {
        snprintf(j->err, sizeof(j->err), "cannot save the state of chunk %s (%d: %s)",
                 ls_chunk_info(j->chunk)->id, errno, strerror(errno));
    }
    ls_free(state);
    return rc;
}

/* ls_chunk_publish_file's record: the chunk is in name (NULL: in a file renamed since) */
static int record_one_file(void *arg, const char *name)
{
    struct file_job *j = arg;

    return save_state(j, name ? ls_asprintf("owner\t%s\npath\t%s\ndone\n", j->ins->id, name)
                              : ls_asprintf("owner\t%s\ndone\n", j->ins->id));
}

static char *indexed_name(void *arg, unsigned i)
{
    return i == 0 || strstr(arg, "_**") ? with_index(arg, i) : NULL;
}

/*
 * One file per chunk: ls_chunk_publish_file writes the data to a hidden part file and
 * gives it the first free index with link() (which fails on a taken one, as O_EXCL did),
 * and the state records the name ("done"). Reserving the name first with an empty file,
 * as this once did, left that empty (for gzip, invalid) file behind whenever a crash came
 * before the state named it: the retry could not know it and took the next index.
 */
static int publish_one_file(struct file_job *j)
{
    if (mkdir_parent(j->target) != LS_OK) {
        snprintf(j->err, sizeof(j->err), "cannot create the directory of '%s' (%d: %s)",
                 j->target, errno, strerror(errno));
        return LS_ERROR;
    }
    return ls_chunk_publish_file(j->chunk, file_algo(j->ins->ctx), j->target, indexed_name,
                                 j->target, record_one_file, j, &j->final, &j->out_bytes, j->err,
                                 sizeof(j->err));
}

static int write_one_file(struct file_job *j)
{
    if (j->state_done) {
        /* in its file before a crash, and the state said so: only the part link may be left */
        ls_chunk_publish_done(j->chunk, j->state_path ? j->state_path : j->target);
        j->final = j->state_path ? ls_strdup(j->state_path) : NULL;
        return LS_OK;
    }
    if (j->state_path == NULL) {
        return publish_one_file(j);
    }
    /*
     * A state without "done" names a file reserved, and perhaps written in part, by an
     * older logship before a crash: overwrite it.
     */
    j->final = ls_strdup(j->state_path);
    if (mkdir_parent(j->final) != LS_OK) {
        snprintf(j->err, sizeof(j->err), "mkdir '%s' failed (%d: %s)", j->final, errno,
                 strerror(errno));
        return LS_ERROR;
    }
    return ls_chunk_write_file(j->chunk, file_algo(j->ins->ctx), j->final, &j->out_bytes, j->err,
                               sizeof(j->err));
}

/* The append state of a chunk: where it goes, the file's size before it, and once in, done. */
static char *append_state(const struct ls_instance *ins, const char *path, long long before,
                          bool done)
{
    return ls_asprintf("owner\t%s\npath\t%s\nsize\t%lld\n%s", ins->id, path, before,
                       done ? "done\n" : "");
}

static int save_append_state(struct file_job *j, long long before, bool done)
{
    return save_state(j, append_state(j->ins, j->final, before, done));
}

static int append_file(struct file_job *j)
{
    struct file_ctx *ctx = j->ins->ctx;
    struct stat st;
    long long before;
    int fd, rc = LS_ERROR;

    pthread_mutex_lock(&ctx->append_mu);
    j->final = ls_strdup(j->state_path ? j->state_path : j->target);
    if (j->state_done) {
        rc = LS_OK;     /* appended and fsynced before a crash: writing again would duplicate */
        goto out;
    }
    if (mkdir_parent(j->final) != LS_OK) {
        snprintf(j->err, sizeof(j->err), "cannot create the directory of '%s' (%d: %s)",
                 j->final, errno, strerror(errno));
        goto out;
    }
    fd = open(j->final, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(j->err, sizeof(j->err), "open() '%s' failed (%d: %s)", j->final, errno,
                 strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        goto out;
    }
    /* file_start settled any append a crash interrupted: this one starts at the end */
    before = (long long)st.st_size;
    if (save_append_state(j, before, false) != LS_OK) {
        close(fd);
        goto out;
    }
    rc = write_chunk_to(j, fd);
    if (rc == LS_OK) {
        /* before the lock goes: the next append must find this one finished */
        rc = save_append_state(j, before, true);
    }
    if (rc != LS_OK) {
        /*
         * Cut back now and forget the size either way: another chunk may append to
         * this file before our retry, and the retry must not cut its data. If the
         * cut fails, the torn part stays and some records may be there twice.
         */
        if (ftruncate(fd, (off_t)before) != 0) {
            ls_plg_error(j->ins, "ftruncate() '%s' failed (%d: %s); the torn append stays",
                         j->final, errno, strerror(errno));
        }
        (void)ls_chunk_set_state(j->chunk, NULL);
    }
    close(fd);
out:
    pthread_mutex_unlock(&ctx->append_mu);
    return rc;
}

static void file_work(void *arg)
{
    struct file_job *j = arg;
    struct file_ctx *ctx = j->ins->ctx;

    j->rc = ctx->append ? append_file(j) : write_one_file(j);
}

static void update_symlink(struct ls_instance *ins, const char *target)
{
    struct file_ctx *ctx = ins->ctx;
    char *tmp = ls_asprintf("%s.tmp.%d", ctx->symlink_path, (int)getpid());

    unlink(tmp);
    if (symlink(target, tmp) != 0 || rename(tmp, ctx->symlink_path) != 0) {
        ls_plg_warn(ins, "cannot link '%s' to '%s' (%d: %s)", ctx->symlink_path, target, errno,
                    strerror(errno));
        unlink(tmp);
    }
    ls_free(tmp);
}

static void file_done(void *arg)
{
    struct file_job *j = arg;
    struct ls_instance *ins = j->ins;
    struct file_ctx *ctx = ins->ctx;

    if (j->rc == LS_OK) {
        ins->metrics.write_bytes += j->out_bytes;
        ls_plg_debug(ins, "chunk %s written to '%s'", ls_chunk_info(j->chunk)->id,
                     j->final ? j->final : "?");
        ls_output_delivered(ins, j->chunk, j->final ? j->final : "?", j->out_bytes);
        if (ctx->symlink_path && j->final) {
            update_symlink(ins, j->final);
        }
        ls_output_write_done(ins, j->chunk, LS_OK, NULL);
    } else {
        /* the buffer's retry line carries the message: one line per failed attempt */
        ls_output_write_done(ins, j->chunk, LS_ERROR, j->err);
    }
    ls_free(j->target);
    ls_free(j->final);
    ls_free(j->state_path);
    ls_free(j);
}

/*
 * Parse "owner\t<id>\npath\t...\nsize\t...\n". A state written by another
 * instance (the primary, when this one is its <secondary>) is not ours.
 */
static void parse_state(const char *st, const char *id, char **path, long long *size,
                        bool *done)
{
    const char *line = st;
    size_t idlen = strlen(id);

    if (strncmp(st, "owner\t", 6) != 0 || strncmp(st + 6, id, idlen) != 0 ||
        st[6 + idlen] != '\n') {
        return;
    }
    while (line && *line) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        if (n > 5 && strncmp(line, "path\t", 5) == 0) {
            ls_free(*path);
            *path = ls_strndup(line + 5, n - 5);
        } else if (n > 5 && strncmp(line, "size\t", 5) == 0) {
            *size = strtoll(line + 5, NULL, 10);
        } else if (n == 4 && strncmp(line, "done", 4) == 0) {
            *done = true;
        }
        line = nl ? nl + 1 : NULL;
    }
}

/* ------------------------------------------------------------------ */
/* start: settle appends a crash interrupted                            */

struct torn {
    struct ls_chunk *chunk;
    char *path;
    long long size;
};

struct torn_list {
    struct ls_instance *ins;
    struct torn *v;
    size_t n;
};

static void torn_collect(struct ls_chunk *c, void *arg)
{
    struct torn_list *l = arg;
    const char *st = ls_chunk_state(c);
    char *path = NULL;
    long long size = -1;
    bool done = false;

    if (st) {
        parse_state(st, l->ins->id, &path, &size, &done);
    }
    if (path == NULL || size < 0 || done) {
        ls_free(path);
        return;
    }
    l->v = ls_realloc(l->v, (l->n + 1) * sizeof(*l->v));
    l->v[l->n].chunk = c;
    l->v[l->n].path = path;
    l->v[l->n].size = size;
    l->n++;
}

/*
 * Runs before anything is written. A chunk with a stored size and no "done"
 * was appending when the process died, so its bytes may be in the file, whole
 * or torn, and nothing was appended after them: cut the file back to that size
 * and let the chunk be written again. Several such chunks for one file come
 * only from states written before "done" existed, when appends to a file also
 * ran one at a time: all but the last (largest size) had finished.
 */
static int file_start(struct ls_instance *ins)
{
    struct file_ctx *ctx = ins->ctx;
    struct torn_list l = { ins, NULL, 0 };
    size_t i, k;
    int rc = LS_OK;

    if (!ctx->append) {
        return LS_OK;
    }
    ls_output_each_chunk(ins, torn_collect, &l);
    for (i = 0; i < l.n; i++) {
        struct torn *t = &l.v[i];
        bool last = true;
        struct stat st;
        int fd;

        for (k = 0; k < l.n && last; k++) {
            last = k == i || strcmp(l.v[k].path, t->path) != 0 || l.v[k].size < t->size ||
                   (l.v[k].size == t->size && k > i);
        }
        if (!last) {
            char *state = append_state(ins, t->path, t->size, true);
            (void)ls_chunk_set_state(t->chunk, state);
            ls_free(state);
            continue;
        }
        fd = open(t->path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 && errno != ENOENT) {
            ls_plg_error(ins, "cannot open '%s' to cut the append chunk %s left unfinished "
                         "(%d: %s)", t->path, ls_chunk_info(t->chunk)->id, errno,
                         strerror(errno));
            rc = LS_ERROR;
            continue;
        }
        if (fd >= 0 && fstat(fd, &st) == 0 && (long long)st.st_size > t->size) {
            if (ftruncate(fd, (off_t)t->size) != 0 || fsync(fd) != 0) {
                ls_plg_error(ins, "cannot cut '%s' back to %lld bytes, where chunk %s began "
                             "appending before a crash (%d: %s)", t->path, t->size,
                             ls_chunk_info(t->chunk)->id, errno, strerror(errno));
                close(fd);
                rc = LS_ERROR;
                continue;
            }
            ls_plg_info(ins, "cut '%s' from %lld back to %lld bytes: chunk %s was appending "
                        "there when the process stopped; it is written again",
                        t->path, (long long)st.st_size, t->size, ls_chunk_info(t->chunk)->id);
        }
        if (fd >= 0) {
            close(fd);
        }
        (void)ls_chunk_set_state(t->chunk, NULL);
    }
    for (i = 0; i < l.n; i++) {
        ls_free(l.v[i].path);
    }
    ls_free(l.v);
    return rc;
}

static int file_write(struct ls_instance *ins, struct ls_chunk *chunk)
{
    struct file_ctx *ctx = ins->ctx;
    const struct ls_chunk_info *info = ls_chunk_info(chunk);
    struct file_job *j = ls_calloc(1, sizeof(*j));
    const char *st = ls_chunk_state(chunk);
    size_t i;

    j->ins = ins;
    j->chunk = chunk;
    if (st) {
        long long size = -1;    /* file_start has settled it */
        parse_state(st, ins->id, &j->state_path, &size, &j->state_done);
    }
    if (j->state_path == NULL) {
        if ((ctx->uses_tag && ls_path_unsafe(info->tag)) || (ctx->uses_keys && info->keys)) {
            bool bad = ctx->uses_tag && ls_path_unsafe(info->tag);
            for (i = 0; ctx->uses_keys && i < info->keys->n && !bad; i++) {
                bad = ls_path_unsafe(info->keys->v[i].value);
            }
            if (bad) {
                snprintf(ins->metrics.last_error, sizeof(ins->metrics.last_error),
                         "chunk %s: a tag or key value would leave the directory of path "
                         "(\"../\" or a leading \"/\"); refusing to write it", info->id);
                ls_plg_error(ins, "%s", ins->metrics.last_error);
                ls_free(j);
                return LS_DECLINED;
            }
        }
        j->target = ls_chunk_expand_str(chunk, ctx->tmpl);
        if (j->target == NULL) {
            snprintf(ins->metrics.last_error, sizeof(ins->metrics.last_error),
                     "cannot expand path '%s' for chunk %s", ctx->tmpl, info->id);
            ls_free(j);
            return LS_ERROR;
        }
    }
    ls_work_submit(ins->engine, file_work, file_done, j);
    return LS_AGAIN;
}

/* A formatter that makes whole files (parquet) compresses inside them and cannot be appended to. */
static int file_formatter_check(struct ls_instance *ins, const struct ls_instance *fmt, char *err,
                                size_t errlen)
{
    struct file_ctx *ctx = ins->ctx;
    const char *key = ctx->compress != FILE_TEXT ? "compress" : ctx->append ? "append" : NULL;
    struct ls_conf_param *p;

    if (fmt->plugin->finish == NULL || key == NULL) {
        return LS_OK;
    }
    p = ls_conf_get_param(ins->conf, key);
    snprintf(err, errlen, "%s:%d: the %s formatter writes whole %s files: '%s' cannot be used "
             "with it (its compression parameter compresses inside the file)",
             p ? p->file : ins->conf->file, p ? p->line : ins->conf->line, fmt->plugin->name,
             fmt->plugin->file_ext, key);
    return LS_ERROR;
}

/* --dry-run: the output directory can be made and written by this user */
static int file_check_access(struct ls_instance *ins)
{
    struct file_ctx *ctx = ins->ctx;

    return ls_check_writable(ins, "path", ctx->path, false);
}

const struct ls_plugin ls_plugin_out_file = {
    .name = "file",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "write chunks to time-sliced files, optionally gzipped (fluentd's out_file)",
    .params = file_params,
    .ctx_size = sizeof(struct file_ctx),
    .init = file_init,
    .destroy = file_destroy,
    .start = file_start,
    .formatter_check = file_formatter_check,
    .output_flags = LS_OUT_BUFFERED,
    .default_formatter = "out_file",
    .default_chunk_keys = "time",
    .write = file_write,
    .check = file_check_access,
};
