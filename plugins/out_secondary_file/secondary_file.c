/*
 * secondary_file.c - fluentd's out_secondary_file: the usual <secondary>.
 * When the primary output has exhausted its retries, the chunk's formatted
 * payload is written to <directory>/<basename>.<N> (N: first free index
 * from 0), or appended to <directory>/<basename> with append true; ".gz"
 * is added with compress gzip. basename takes ${chunk_id}, ${tag},
 * ${tag[N]}, ${key} and strftime placeholders from the chunk's keys.
 *
 * Like out_file, a new file gets its name only with all its data
 * (ls_chunk_publish_file: a hidden part file, then link() to the first free
 * index) and the chunk's state records it, so a retry after a crash never
 * dumps the chunk twice nor leaves an empty file; appends store the size
 * before them and cut back to it on a retry. The I/O runs on the worker pool.
 */
#include "plugin.h"
#include "compress.h"
#include "log.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>

enum { SF_TEXT, SF_GZ, SF_GZIP };

struct sf_ctx {
    char *directory;
    char *basename;
    bool append;
    int compress;
    char *tmpl;
    pthread_mutex_t mu;
    bool mu_ready;
};

static const struct ls_param sf_params[] = {
    { "directory", LS_P_STR, NULL, LS_PF_REQUIRED, offsetof(struct sf_ctx, directory),
      "directory of the dump files", NULL, NULL, 0, 0 },
    { "basename", LS_P_STR, "dump.bin", 0, offsetof(struct sf_ctx, basename),
      "file name; ${chunk_id}, ${tag}, ${key} and %Y%m%d... are expanded", NULL, NULL, 0, 0 },
    { "append", LS_P_BOOL, "false", 0, offsetof(struct sf_ctx, append),
      "append every chunk to one file (false: <basename>.0, .1, ...)", NULL, NULL, 0, 0 },
    { "compress", LS_P_ENUM, "text", 0, offsetof(struct sf_ctx, compress),
      "gzip the files (.gz is added)", NULL, "text|gz|gzip", 0, 0 },
    LS_PARAM_END
};

static int sf_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct sf_ctx *ctx = ins->ctx;
    size_t n;

    pthread_mutex_init(&ctx->mu, NULL);
    ctx->mu_ready = true;
    if (strcmp(sec->name, "secondary") != 0) {
        snprintf(err, errlen, "%s:%d: the secondary_file output can only be used in a "
                 "<secondary> section", sec->file, sec->line);
        return LS_ERROR;
    }
    if (strchr(ctx->basename, '/')) {
        ls_conf_param_error(sec, "basename", err, errlen, "basename should not include `/`");
        return LS_ERROR;
    }
    n = strlen(ctx->directory);
    while (n > 1 && ctx->directory[n - 1] == '/') {
        ctx->directory[--n] = '\0';
    }
    ctx->tmpl = ls_asprintf("%s/%s%s%s", ctx->directory, ctx->basename, ctx->append ? "" : ".**",
                            ctx->compress == SF_TEXT ? "" : ".gz");
    return LS_OK;
}

static void sf_destroy(struct ls_instance *ins)
{
    struct sf_ctx *ctx = ins->ctx;

    if (ctx->mu_ready) {
        pthread_mutex_destroy(&ctx->mu);
    }
    ls_free(ctx->tmpl);
}

struct sf_job {
    struct ls_instance *ins;
    struct ls_chunk *chunk;
    char *target;
    char *final;
    long long size;     /* append: size before this chunk, -1 unknown */
    bool done;          /* the state says the chunk is in its file (a crash before the purge) */
    int rc;
    uint64_t out_bytes;
    char err[256];
};

static int sf_copy(struct sf_job *j, int fd)
{
    struct sf_ctx *ctx = j->ins->ctx;

    return ls_chunk_write_fd(j->chunk, ctx->compress == SF_TEXT ? LS_COMPRESS_TEXT
                                                                : LS_COMPRESS_GZIP,
                             fd, &j->out_bytes, j->err, sizeof(j->err));
}

static int sf_save_state(struct sf_job *j)
{
    char *st = j->size >= 0 ? ls_asprintf("owner\t%s\npath\t%s\nsize\t%lld\n", j->ins->id,
                                          j->final, j->size)
             : j->final ? ls_asprintf("owner\t%s\npath\t%s\ndone\n", j->ins->id, j->final)
                        : ls_asprintf("owner\t%s\ndone\n", j->ins->id);
    int rc = ls_chunk_set_state(j->chunk, st);

    ls_free(st);
    if (rc != LS_OK) {
        snprintf(j->err, sizeof(j->err), "cannot save the state of chunk %s (%d: %s)",
                 ls_chunk_info(j->chunk)->id, errno, strerror(errno));
    }
    return rc;
}

/* ls_chunk_publish_file's record: the chunk is in j->final, already set to name */
static int sf_record(void *arg, const char *name)
{
    LS_UNUSED(name);
    return sf_save_state(arg);
}

/* "<basename>.<i>": the first free index; without an index mark, only the name itself */
static char *sf_name(void *arg, unsigned i)
{
    const char *target = arg;
    const char *m = strstr(target, ".**");

    if (m == NULL) {
        return i == 0 ? ls_strdup(target) : NULL;
    }
    return ls_asprintf("%.*s.%u%s", (int)(m - target), target, i, m + 3);
}

static int sf_write_new(struct sf_job *j)
{
    struct sf_ctx *ctx = j->ins->ctx;
    int algo = ctx->compress == SF_TEXT ? LS_COMPRESS_TEXT : LS_COMPRESS_GZIP;

    if (j->done) {
        ls_chunk_publish_done(j->chunk, j->final ? j->final : j->target);
        return LS_OK;
    }
    if (j->final) {
        /* a name an older logship reserved before a crash, perhaps written in part */
        return ls_chunk_write_file(j->chunk, algo, j->final, &j->out_bytes, j->err,
                                   sizeof(j->err));
    }
    return ls_chunk_publish_file(j->chunk, algo, j->target, sf_name, j->target, sf_record, j,
                                 &j->final, &j->out_bytes, j->err, sizeof(j->err));
}

static int sf_append(struct sf_job *j)
{
    struct stat st;
    int fd, rc;

    if (j->final == NULL) {
        j->final = ls_strdup(j->target);
    }
    fd = open(j->final, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(j->err, sizeof(j->err), "open() '%s' failed (%d: %s)", j->final, errno,
                 strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return LS_ERROR;
    }
    if (j->size >= 0) {
        /* a retry after a crash mid-append: cut back to where this chunk began */
        if ((long long)st.st_size > j->size && ftruncate(fd, (off_t)j->size) != 0) {
            snprintf(j->err, sizeof(j->err), "ftruncate() '%s' failed (%d: %s)", j->final,
                     errno, strerror(errno));
            close(fd);
            return LS_ERROR;
        }
    } else {
        j->size = (long long)st.st_size;
        if (sf_save_state(j) != LS_OK) {
            close(fd);
            return LS_ERROR;
        }
    }
    rc = sf_copy(j, fd);
    if (rc != LS_OK && ftruncate(fd, (off_t)j->size) == 0) {
        /* cut back now; forget the size so a later retry does not cut newer data */
        (void)ls_chunk_set_state(j->chunk, NULL);
    }
    close(fd);
    return rc;
}

static void sf_work(void *arg)
{
    struct sf_job *j = arg;
    struct sf_ctx *ctx = j->ins->ctx;
    const char *path = j->final ? j->final : j->target;
    char *dir = ls_strndup(path, (size_t)(strrchr(path, '/') - path));

    if (ls_mkdir_p(dir, 0755) != LS_OK) {
        snprintf(j->err, sizeof(j->err), "cannot create directory '%s' (%d: %s)", dir, errno,
                 strerror(errno));
        j->rc = LS_ERROR;
        ls_free(dir);
        return;
    }
    ls_free(dir);
    pthread_mutex_lock(&ctx->mu);
    j->rc = ctx->append ? sf_append(j) : sf_write_new(j);
    pthread_mutex_unlock(&ctx->mu);
}

static void sf_done(void *arg)
{
    struct sf_job *j = arg;

    if (j->rc == LS_OK) {
        j->ins->metrics.write_bytes += j->out_bytes;
        ls_plg_warn(j->ins, "chunk %s (%llu records) dumped to '%s'",
                    ls_chunk_info(j->chunk)->id,
                    (unsigned long long)ls_chunk_info(j->chunk)->records,
                    j->final ? j->final : "?");
        ls_output_write_done(j->ins, j->chunk, LS_OK, NULL);
    } else {
        /* the buffer's line carries the message: one line per failed attempt */
        ls_output_write_done(j->ins, j->chunk, LS_ERROR, j->err);
    }
    ls_free(j->target);
    ls_free(j->final);
    ls_free(j);
}

static int sf_write(struct ls_instance *ins, struct ls_chunk *chunk)
{
    struct sf_ctx *ctx = ins->ctx;
    const struct ls_chunk_info *info = ls_chunk_info(chunk);
    struct sf_job *j = ls_calloc(1, sizeof(*j));
    const char *st = ls_chunk_state(chunk);
    size_t idlen = strlen(ins->id), i;

    j->ins = ins;
    j->chunk = chunk;
    j->size = -1;
    if (st && strncmp(st, "owner\t", 6) == 0 && strncmp(st + 6, ins->id, idlen) == 0 &&
        st[6 + idlen] == '\n') {
        const char *p = strstr(st, "\npath\t"), *s = strstr(st, "\nsize\t");
        if (p) {
            const char *nl = strchr(p + 6, '\n');
            j->final = nl ? ls_strndup(p + 6, (size_t)(nl - p - 6)) : ls_strdup(p + 6);
        }
        if (s) {
            j->size = strtoll(s + 6, NULL, 10);
        }
        j->done = strstr(st, "\ndone\n") != NULL;
    }
    if (j->final == NULL) {
        bool bad = strstr(ctx->basename, "${tag") && ls_path_unsafe(info->tag);
        for (i = 0; info->keys && i < info->keys->n && !bad; i++) {
            bad = ls_path_unsafe(info->keys->v[i].value) || strchr(info->keys->v[i].value, '/');
        }
        if (bad || (strstr(ctx->basename, "${tag") && strchr(info->tag, '/'))) {
            snprintf(ins->metrics.last_error, sizeof(ins->metrics.last_error),
                     "chunk %s: a tag or key value would leave directory '%s'", info->id,
                     ctx->directory);
            ls_free(j);
            return LS_DECLINED;
        }
        j->target = ls_chunk_expand_str(chunk, ctx->tmpl);
        if (j->target == NULL) {
            snprintf(ins->metrics.last_error, sizeof(ins->metrics.last_error),
                     "cannot expand '%s' for chunk %s", ctx->tmpl, info->id);
            ls_free(j);
            return LS_ERROR;
        }
    }
    ls_work_submit(ins->engine, sf_work, sf_done, j);
    return LS_AGAIN;
}

/* --dry-run: the directory can be made and written by this user */
static int sf_check_access(struct ls_instance *ins)
{
    struct sf_ctx *ctx = ins->ctx;

    return ls_check_writable(ins, "directory", ctx->directory, true);
}

const struct ls_plugin ls_plugin_out_secondary_file = {
    .name = "secondary_file",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "dump chunks the primary output could not deliver to files (fluentd's "
                   "out_secondary_file; <secondary> only)",
    .params = sf_params,
    .ctx_size = sizeof(struct sf_ctx),
    .init = sf_init,
    .check = sf_check_access,
    .destroy = sf_destroy,
    .output_flags = LS_OUT_BUFFERED,
    .write = sf_write,
};
