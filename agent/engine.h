/*
 * engine.h - core-internal: the engine that owns the loop, the instances
 * built from the configuration, the router's labels and the buffers.
 * Plugins never include this; they see plugin.h only.
 */
#ifndef LS_ENGINE_H
#define LS_ENGINE_H

#include "plugin.h"
#include "router.h"

#include <ev.h>
#include <pthread.h>

struct ls_buffer;
struct ls_inject;

struct ls_system {
    char *root_dir;
    char *log_level;
    char *log_path;
    bool suppress_config_dump;
    bool without_source;
    char *process_name;
    int64_t file_permission;
    int64_t dir_permission;
    int64_t workers;
};

/* ins->core of an output instance */
struct ls_output_core {
    struct ls_instance *formatter;      /* NULL: plugin formats itself / unbuffered */
    struct ls_inject *inject;           /* NULL: nothing to inject */
    struct ls_buffer *buffer;           /* NULL: unbuffered */
    struct ls_instance *secondary;      /* <secondary>, or NULL */
    struct ls_instance *primary;        /* a <secondary>'s primary (whose chunks it writes) */
    struct ls_label *label;             /* the label its <match> is in (re-emits start there) */
    const char *emit_label;             /* its own @label: where re-emits go instead (or NULL) */
    struct ls_record scratch;           /* inject's shallow copy */
    struct ls_record prep;              /* the plugin's .prepare copy */
    struct ls_arena arena;
    bool is_secondary;
};

/* ins->core of an input instance */
struct ls_input_core {
    struct ls_label *label;             /* where its records go (root or @label) */
    bool done;                          /* oneshot: reached the end of its data */
    bool paused;                        /* by back-pressure */
};

struct ls_work;

struct ls_hold;

struct ls_engine {
    struct ev_loop *loop;
    struct ls_conf *conf;
    char *config_path;
    struct ls_system sys;

    struct ls_instance **inputs;
    size_t ninputs;
    struct ls_instance **outputs;       /* every output incl. copy stores and secondaries */
    size_t noutputs;
    struct ls_instance **filters;
    size_t nfilters;

    struct ls_label *root;
    struct ls_label **labels;
    size_t nlabels;
    struct ls_label *error_label;       /* @ERROR, or NULL */
    struct ls_label *log_label;         /* where fluent.* log events go (fluentlog.c), or NULL */

    bool oneshot;
    bool dry_run;
    bool stopping;
    bool flushing_for_exit;
    int exit_code;
    /* outputs' start-up checks that inputs wait for (ls_engine_hold_start), and whether one
       failed so that the start stops */
    int start_holds;
    bool start_failed;
    bool check_remote;                  /* --check-remote: any failed check is final */
    double started_mono;                /* for --oneshot's totals */
    bool term_seen;                     /* TERM/INT acted on: stop, and start nothing next */
    /*
     * SIGHUP: main's hook builds and validates the next configuration while this engine
     * keeps running; NULL (invalid) keeps it running untouched. A configuration it returns
     * is kept in next_conf and main runs it once this engine has stopped.
     */
    struct ls_conf *(*reload)(void *arg);
    void *reload_arg;
    struct ls_conf *next_conf;
    unsigned instance_seq[8];           /* ids of instances without @id, per plugin kind */

    ev_io sig_io;                       /* the process's signalfd (ls_signals_init) */
    ev_timer tick;                      /* 0.2 s housekeeping: buffer enqueue, oneshot's flush */
    ev_prepare exit_check;              /* --oneshot, once flushing: done after any event? */
    ev_async work_async;
    struct ls_notify *notify;           /* the inotify instance of path watchers (notify.c) */

    /* worker pool */
    pthread_t *threads;
    int nthreads;
    pthread_mutex_t work_mu;
    pthread_cond_t work_cv;
    struct ls_work *work_head, *work_tail;   /* pending */
    struct ls_work *done_head, *done_tail;   /* finished, to run done() on the loop */
    bool work_quit;
    int work_inflight;

    /* pause/resume bookkeeping */
    bool inputs_paused;

    struct ls_label *building_label;    /* while building: the label outputs are created in */
    bool filters_stopped;               /* stop_inputs has stopped the filters */
    int route_depth;                    /* nesting of route_record (re-emitting outputs) */
    uint64_t emit_seq;                  /* counts ls_emit calls: copies of one record share it */
    struct ls_hold *holds;              /* ls_source_hold: positions filters still hold */
    size_t nholds, capholds;
    bool loop_error;                    /* handling a rewrite loop: do not recurse again */
    uint64_t error_events;              /* records emit_error has handled (routed or dumped) */
    struct ls_record reemit[LS_ROUTE_DEPTH_MAX + 1];   /* ls_output_reemit_copy, per level */
};

/* Build everything from conf (no start). NULL on error, message in err. */
struct ls_engine *ls_engine_create(struct ls_conf *conf, const char *config_path, bool oneshot,
                                   bool dry_run, char *err, size_t errlen);
int ls_engine_run(struct ls_engine *eng);         /* start, run the loop, stop; exit code */
void ls_engine_destroy(struct ls_engine *eng);
void ls_engine_stop(struct ls_engine *eng);       /* request a graceful stop */
void ls_engine_flush(struct ls_engine *eng);      /* SIGUSR1 */
/*
 * An output's start-up check (s3's check_apikey_on_start / check_bucket) that must settle
 * before any input starts: hold in init, release once known. A release with ok false stops
 * the start and logship exits 1, as fluentd does when a plugin's start raises.
 */
void ls_engine_hold_start(struct ls_engine *eng);
/* --dry-run: every plugin's check hook and every file buffer's directory; problems found */
int ls_engine_check_local(struct ls_engine *eng);
/* --dry-run --check-remote: resolve credentials and run the outputs' start-up checks (no
   buffer, input or upload starts); 0 when every check passed */
int ls_engine_check_remote(struct ls_engine *eng);
void ls_engine_release_start(struct ls_engine *eng, bool ok);

/*
 * Block TERM, INT, HUP and USR1 for the rest of the process's life (threads and engines
 * created later inherit the mask) and receive them through a signalfd that each running
 * engine watches. So at no instant does one of them take its default action (a HUP
 * between two pipelines used to end the process), and one that arrives while no engine
 * runs waits for the next. Call once, early in main. LS_OK or LS_ERROR (logged).
 */
int ls_signals_init(void);

/* loop.c */
void ls_work_init(struct ls_engine *eng, int nthreads);
void ls_work_shutdown(struct ls_engine *eng);
void ls_loop_init_instance_watchers(void);

/* Deliver rec to one output (formatter/inject/buffer or plugin emit). */
int ls_output_emit(struct ls_instance *out, struct ls_record *rec);
/* Output lookup for plugins that own stores (copy). */
void ls_engine_add_output(struct ls_engine *eng, struct ls_instance *out);
/* Create an output instance with its formatter/buffer/secondary (used by the engine and copy). */
struct ls_instance *ls_output_create(struct ls_engine *eng, struct ls_conf_section *sec,
                                     char *err, size_t errlen);
void ls_output_destroy(struct ls_instance *out);
/* Called by buffers when they cross the total limit (block) and go back under it. */
void ls_engine_backpressure(struct ls_engine *eng, bool on);

/* Route rec, from no input, through label (the root or a named label). Returns like ls_emit. */
int ls_engine_route(struct ls_engine *eng, struct ls_label *label, struct ls_record *rec);
/* Make what every output took durable/visible (ls_input_commit without an input). */
int ls_engine_commit_outputs(struct ls_engine *eng);
/* logship's own log lines as fluent.<level> events (fluentlog.c): decided and started once the
 * outputs run, stopped (queue routed) when the engine begins to stop. */
void ls_fluentlog_start(struct ls_engine *eng);
void ls_fluentlog_stop(struct ls_engine *eng);

#endif
