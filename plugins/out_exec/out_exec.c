/*
 * out_exec.c - fluentd's out_exec: each chunk is written to a file and a command runs with
 * that file's path as its last argument; exit status 0 delivers the chunk.
 *
 * As lib/fluent/plugin/out_exec.rb: the command line is `command <path>` run by the shell,
 * its stdout discarded and its stderr the agent's; <format> defaults to tsv (give keys);
 * the buffer's chunk key defaults to time (the v0.12 flat keys too). A command that exits
 * non-zero, is killed by a signal, or runs past command_timeout (270 s; then SIGKILL to its
 * process group) fails the write, which is retried with the buffer's backoff. Commands of
 * several chunks may run at once (flush_thread_count), as the plugin's run in parallel.
 *
 * The file is next to the chunk (the buffer's directory, or a temp directory for a memory
 * buffer), named by the chunk, written whole and fsynced before the command starts, and
 * removed once it has exited. A crash after the command succeeded and before the chunk is
 * gone runs it again at the restart: at least once, as with fluentd.
 */
#include "plugin.h"
#include "compress.h"
#include "log.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct oe {
    char *command;
    double command_timeout;
    struct ls_instance *ins;
};

static const struct ls_param oe_params[] = {
    { "command", LS_P_STR, NULL, LS_PF_REQUIRED, offsetof(struct oe, command),
      "the command line; the chunk's file is its last argument", NULL, NULL, 0, 0 },
    { "command_timeout", LS_P_TIME, "270", 0, offsetof(struct oe, command_timeout),
      "kill the command (and fail the write) after this long", NULL, NULL, 0, 1e9 },
    LS_PARAM_END
};

static int oe_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                   size_t errlen)
{
    LS_UNUSED(sec);
    LS_UNUSED(err);
    LS_UNUSED(errlen);
    ((struct oe *)ins->ctx)->ins = ins;
    return LS_OK;
}

struct oe_job {
    struct oe *o;
    struct ls_chunk *c;
    char *path;
    pid_t pid;
    double started;
    double step;
    bool killed;
    struct ls_timer *wait;
    int rc;
    char err[300];
};

static void oe_job_free(struct oe_job *j)
{
    if (j->path) {
        (void)unlink(j->path);
    }
    ls_timer_free(j->wait);
    ls_free(j->path);
    ls_free(j);
}

/* Worker: the chunk's formatted records into its file. */
static void oe_build(void *arg)
{
    struct oe_job *j = arg;
    uint64_t written;

    j->path = ls_chunk_side_path(j->c, ".exec");
    j->rc = ls_chunk_write_file(j->c, LS_COMPRESS_TEXT, j->path, &written, j->err,
                                sizeof(j->err));
}

/* '...' for the shell, as one argument */
static void shell_quote(struct ls_buf *b, const char *s)
{
    ls_buf_putc(b, '\'');
    for (; *s; s++) {
        if (*s == '\'') {
            ls_buf_append(b, "'\\''", 4);
        } else {
            ls_buf_putc(b, *s);
        }
    }
    ls_buf_putc(b, '\'');
}

static void oe_wait(struct ls_timer *t, void *arg)
{
    struct oe_job *j = arg;
    struct ls_instance *ins = j->o->ins;
    int st;
    pid_t r = waitpid(j->pid, &st, WNOHANG);

    LS_UNUSED(t);
    if (r == j->pid) {
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && !j->killed) {
            ls_output_delivered(ins, j->c, j->o->command, 0);
            ls_output_write_done(ins, j->c, LS_OK, NULL);
        } else {
            char msg[400];
            if (j->killed) {
                snprintf(msg, sizeof(msg), "command timed out after %.0f s: %s",
                         j->o->command_timeout, j->o->command);
            } else if (WIFEXITED(st)) {
                snprintf(msg, sizeof(msg), "command exits with error code %d: %s",
                         WEXITSTATUS(st), j->o->command);
            } else {
                snprintf(msg, sizeof(msg), "command killed by signal %d: %s", WTERMSIG(st),
                         j->o->command);
            }
            ls_output_write_done(ins, j->c, LS_ERROR, msg);
        }
        oe_job_free(j);
        return;
    }
    if (r < 0 && errno != EINTR) {
        ls_output_write_done(ins, j->c, LS_ERROR, "lost track of the command");
        oe_job_free(j);
        return;
    }
    if (!j->killed && j->o->command_timeout > 0 &&
        ls_mono_now() - j->started >= j->o->command_timeout) {
        j->killed = true;
        (void)kill(-j->pid, SIGKILL);
    }
    j->step = j->step < 0.01 ? 0.01 : j->step * 2 > 0.5 ? 0.5 : j->step * 2;
    ls_timer_start(j->wait, j->step, 0);
}

static void oe_built(void *arg)
{
    struct oe_job *j = arg;
    struct oe *o = j->o;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, dflt;
    struct ls_buf cmd;
    char *argv[] = { (char *)"sh", (char *)"-c", NULL, NULL };
    int rc;

    if (j->rc != LS_OK) {
        ls_output_write_done(o->ins, j->c, LS_ERROR, j->err);
        oe_job_free(j);
        return;
    }
    ls_buf_init(&cmd, 0);
    ls_buf_append(&cmd, o->command, strlen(o->command));
    ls_buf_putc(&cmd, ' ');
    shell_quote(&cmd, j->path);
    argv[2] = (char *)ls_buf_cstr(&cmd);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawnattr_init(&at);
    sigemptyset(&none);
    sigfillset(&dflt);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dflt);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                  POSIX_SPAWN_SETPGROUP);
    rc = posix_spawn(&j->pid, "/bin/sh", &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    ls_buf_release(&cmd);
    if (rc != 0) {
        snprintf(j->err, sizeof(j->err), "cannot run /bin/sh (%d: %s)", rc, strerror(rc));
        ls_output_write_done(o->ins, j->c, LS_ERROR, j->err);
        oe_job_free(j);
        return;
    }
    ls_output_write_sending(o->ins, j->c);
    j->started = ls_mono_now();
    j->wait = ls_timer_new(o->ins, oe_wait, j);
    ls_timer_start(j->wait, 0.01, 0);
}

static int oe_write(struct ls_instance *ins, struct ls_chunk *c)
{
    struct oe_job *j = ls_calloc(1, sizeof(*j));

    j->o = ins->ctx;
    j->c = c;
    if (ls_work_submit(ins->engine, oe_build, oe_built, j) != LS_OK) {
        ls_free(j);
        return LS_ERROR;
    }
    return LS_AGAIN;
}

const struct ls_plugin ls_plugin_out_exec = {
    .name = "exec",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "run a command on each chunk's file (fluentd's out_exec)",
    .params = oe_params,
    .ctx_size = sizeof(struct oe),
    .init = oe_init,
    .output_flags = LS_OUT_BUFFERED,
    .default_formatter = "tsv",
    .default_chunk_keys = "time",
    .write = oe_write,
};
