/*
 * main.c - the command line, fluentd's flags where fluentd has one.
 *
 *   logship -c FILE            run in the foreground
 *   logship -c FILE --dry-run  validate (every plugin's init runs), exit 0 or 1
 *   logship -c FILE --oneshot  read every input to its end, deliver, exit 0 only if all delivered
 *   logship -d PIDFILE         daemonize; -o LOGFILE logs to a file
 *   logship --describe NAME    a plugin's parameters from its table
 *
 * Reload (SIGHUP) validates the new configuration while the running pipeline
 * keeps going (reload_validate, called from the engine's loop); if it is bad,
 * nothing else happens. If it is good, the pipeline stops gracefully (buffers
 * and positions are on disk) and the same process builds the new one, which
 * is simpler and more robust than rebuilding in place.
 */
#include "engine.h"
#include "buffer.h"
#include "inject.h"
#include "parser.h"
#include "log.h"
#include "http.h"

#include <fcntl.h>
#include <getopt.h>
#include <sys/resource.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <sys/stat.h>


static void usage(FILE *f)
{
    fprintf(f,
            "Usage: logship [options]\n"
            "  -c, --config FILE      configuration file (default $LOGSHIP_CONF or /etc/logship/logship.conf)\n"
            "  -i, --inline-config S  configuration text appended to the file (fluentd's -i)\n"
            "      --dry-run          check the configuration, and that the files and directories it\n"
            "                         names can be read/written by this user; exit 0 ok, 1 error\n"
            "      --check-remote     --dry-run, then resolve credentials and run the outputs'\n"
            "                         start-up checks (s3: check_apikey_on_start, check_bucket)\n"
            "      --oneshot          read every input to its end, deliver everything, then exit;\n"
            "                         exit 0 only if everything was delivered (for cron)\n"
            "  -d, --daemon PIDFILE   run in the background, writing the pid to PIDFILE\n"
            "  -o, --log FILE         write logship's own log to FILE (reopened on SIGHUP)\n"
            "  -v, -vv                more log (debug, trace)\n"
            "  -q, -qq                less log (warn, error)\n"
            "      --describe NAME    print a plugin's parameters, types and defaults\n"
            "      --describe-md KIND:NAME  the same as a Markdown section (make docs);\n"
            "                         also buffer, inject, parse for the common tables\n"
            "      --list-plugins     list the built-in plugins\n"
            "      --version          print the version\n"
            "  -h, --help             this help\n"
            "Signals: TERM/INT stop gracefully, USR1 flushes buffers, HUP reloads the configuration.\n");
}

static void out_stdout(const char *s, void *arg)
{
    LS_UNUSED(arg);
    fputs(s, stdout);
}

static int describe(const char *name)
{
    size_t i;
    int found = 0;

    for (i = 0; ls_plugins[i]; i++) {
        const struct ls_plugin *p = ls_plugins[i];
        if (ls_plugin_find(p->kind, name) != p) {
            continue;
        }
        found = 1;
        printf("%s plugin '%s'%s%s: %s\n\n", ls_plugin_kind_name(p->kind), p->name,
               p->aliases ? " (also " : "", p->aliases ? p->aliases : "",
               p->description ? p->description : "");
        if (p->aliases) {
            /* keep the parenthesis balanced in the header above */
        }
        if (p->params && p->params[0].name) {
            ls_param_describe(p->params, false, out_stdout, NULL);
        } else {
            printf("  (no parameters)\n");
        }
        if (p->kind == LS_PLUGIN_PARSER) {
            printf("\nCommon parser parameters:\n");
            ls_param_describe(ls_parser_common_params, false, out_stdout, NULL);
        }
        if (p->kind == LS_PLUGIN_OUTPUT && (p->output_flags & LS_OUT_BUFFERED)) {
            printf("\n<buffer%s%s> parameters:\n", p->default_chunk_keys ? " " : "",
                   p->default_chunk_keys ? p->default_chunk_keys : "");
            ls_param_describe(ls_buffer_params, false, out_stdout, NULL);
            printf("\n<inject> parameters:\n");
            ls_param_describe(ls_inject_params, false, out_stdout, NULL);
        }
        printf("\n");
    }
    if (!found) {
        fprintf(stderr, "logship: no plugin named '%s' (see --list-plugins)\n", name);
        return 1;
    }
    return 0;
}

/*
 * --describe-md KIND:NAME prints one plugin's section of docs/plugins.md
 * (heading, description, Markdown parameter table); --describe-md buffer,
 * inject or parse prints the common tables. scripts/gen-docs.sh (make docs)
 * strings them together, so the reference comes from the tables themselves.
 */
static int describe_md(const char *what)
{
    static const struct {
        const char *name, *title, *text;
        const struct ls_param *table;
    } common[] = {
        { "buffer", "`<buffer>` parameters",
          "Every buffered output takes a `<buffer CHUNK_KEYS>` section (or the v0.12 flat names "
          "listed as aliases).", ls_buffer_params },
        { "inject", "`<inject>` parameters",
          "Outputs and formatters that add the tag or time to each record take an `<inject>` "
          "section (or the v0.12 flat names).", ls_inject_params },
        { "parse", "Common parser parameters",
          "Every parser (`<parse>` section, or an input's flat v0.12 `format`) also takes these.",
          ls_parser_common_params },
    };
    const char *colon = strchr(what, ':');
    size_t i;

    for (i = 0; i < sizeof(common) / sizeof(common[0]); i++) {
        if (strcmp(what, common[i].name) == 0) {
            printf("## %s\n\n%s\n\n", common[i].title, common[i].text);
            ls_param_describe(common[i].table, true, out_stdout, NULL);
            printf("\n");
            return 0;
        }
    }
    for (i = 0; colon && ls_plugins[i]; i++) {
        const struct ls_plugin *p = ls_plugins[i];
        const char *kind = ls_plugin_kind_name(p->kind);
        if (strlen(kind) != (size_t)(colon - what) || strncmp(kind, what, strlen(kind)) != 0 ||
            strcmp(p->name, colon + 1) != 0) {
            continue;
        }
        printf("## %s `%s`\n\n%s\n\n", kind, p->name, p->description ? p->description : "");
        if (p->aliases) {
            printf("Also accepted as `@type %s`.\n\n", p->aliases);
        }
        if (p->kind == LS_PLUGIN_OUTPUT && (p->output_flags & LS_OUT_BUFFERED)) {
            printf("Buffered: takes a `<buffer%s%s>` section ([buffer parameters](#buffer-parameters))"
                   " and `<inject>` ([inject parameters](#inject-parameters)).\n\n",
                   p->default_chunk_keys ? " " : "",
                   p->default_chunk_keys ? p->default_chunk_keys : "");
        }
        if (p->kind == LS_PLUGIN_PARSER) {
            printf("Also takes the [common parser parameters](#common-parser-parameters).\n\n");
        }
        if (p->params && p->params[0].name) {
            ls_param_describe(p->params, true, out_stdout, NULL);
        } else {
            printf("No parameters.\n");
        }
        printf("\n");
        return 0;
    }
    fprintf(stderr, "logship: no plugin '%s' (use KIND:NAME as --list-plugins shows, "
            "or buffer, inject, parse)\n", what);
    return 1;
}

static void list_plugins(void)
{
    size_t i;

    for (i = 0; ls_plugins[i]; i++) {
        const struct ls_plugin *p = ls_plugins[i];
        printf("%-10s %-20s %s\n", ls_plugin_kind_name(p->kind), p->name,
               p->description ? p->description : "");
    }
}

static int daemonize(const char *pidfile)
{
    pid_t pid = fork();
    int fd;
    char buf[32];
    int n;

    if (pid < 0) {
        return ls_error("fork() failed (%d: %s)", errno, strerror(errno));
    }
    if (pid > 0) {
        _exit(0);
    }
    setsid();
    pid = fork();
    if (pid < 0) {
        return ls_error("fork() failed (%d: %s)", errno, strerror(errno));
    }
    if (pid > 0) {
        _exit(0);
    }
    /* detach from the terminal or pipe that started us; the log goes to -o's file */
    fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2) {
            close(fd);
        }
    }
    ls_log_detect_journal();
    n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (pidfile && ls_write_file_atomic(pidfile, buf, (size_t)n, 0644) != LS_OK) {
        return ls_error("cannot write pid file '%s' (%d: %s)", pidfile, errno, strerror(errno));
    }
    return LS_OK;
}

static struct ls_conf *load_config(const char *path, const char *inline_conf, char *err,
                                   size_t errlen)
{
    struct ls_conf *conf;

    if (inline_conf == NULL) {
        return ls_conf_load_file(path, err, errlen);
    } else {
        /* fluentd's -i: the inline text is appended to the file's content */
        char *text = NULL, *all;
        size_t len = 0;
        if (path && ls_read_file(path, 64 << 20, &text, &len) != LS_OK) {
            snprintf(err, errlen, "%s: cannot read (%d: %s)", path, errno, strerror(errno));
            return NULL;
        }
        all = ls_asprintf("%s\n%s\n", text ? text : "", inline_conf);
        conf = ls_conf_load_string(path ? path : "(inline)", all, strlen(all), err, errlen);
        ls_free(text);
        ls_free(all);
        return conf;
    }
}

/*
 * Warn when a configuration that holds secrets can be read by others. A secret is a
 * literal value of a secret-looking parameter; a value taken from the environment
 * ("#{ENV[...]}") is not in the file and does not count.
 */
static bool line_has_literal_secret(const char *line)
{
    static const char *const keys[] = { "aws_sec_key", "password", "sse_customer_key",
                                        "secret_access_key", "aws_secret_access_key" };
    const char *p = line;
    size_t i, n;

    while (*p == ' ' || *p == '\t') {
        p++;
    }
    for (i = 0; i < LS_ARRAY_LEN(keys); i++) {
        n = strlen(keys[i]);
        if (strncmp(p, keys[i], n) == 0 && (p[n] == ' ' || p[n] == '\t')) {
            const char *v = p + n;
            while (*v == ' ' || *v == '\t') {
                v++;
            }
            return *v != '\0' && *v != '\n' && *v != '#' && strstr(v, "#{") == NULL &&
                   strncmp(v, "\"\"", 2) != 0;
        }
    }
    return false;
}

static void check_config_permissions(struct ls_conf *conf)
{
    size_t i;

    for (i = 0; i < conf->nfiles; i++) {
        char *text = NULL, *line, *next;
        struct stat st;
        bool secrets = false;

        if (ls_read_file(conf->files[i], 16 << 20, &text, NULL) != LS_OK) {
            continue;
        }
        for (line = text; line && !secrets; line = next) {
            next = strchr(line, '\n');
            if (next) {
                *next++ = '\0';
            }
            secrets = line_has_literal_secret(line);
        }
        ls_free(text);
        if (secrets && stat(conf->files[i], &st) == 0 && (st.st_mode & S_IROTH)) {
            ls_warn("'%s' holds secrets and is readable by every user (mode %04o); chmod 640 it",
                    conf->files[i], (unsigned)(st.st_mode & 07777));
        }
    }
}

struct reload_ctx {
    const char *config, *inline_conf;
    bool oneshot;
    int log_level;              /* from the command line */
};

/* The engine's SIGHUP hook: the next configuration if it is valid, else NULL (logged). */
static struct ls_conf *reload_validate(void *arg)
{
    struct reload_ctx *r = arg;
    char err[2048] = "";
    int running_level = ls_log_level;
    struct ls_conf *nconf = load_config(r->config, r->inline_conf, err, sizeof(err));
    struct ls_engine *neng;

    /* the <system> log_level of a file that is not running yet must not apply */
    ls_log_level = r->log_level;
    neng = nconf ? ls_engine_create(nconf, r->config, r->oneshot, true, err, sizeof(err)) : NULL;
    ls_log_level = running_level;
    if (neng == NULL) {
        ls_err("reload: the new configuration is invalid, keeping the running one: %s", err);
        ls_conf_destroy(nconf);
        return NULL;
    }
    ls_engine_destroy(neng);
    ls_info("reload: the new configuration is valid; restarting the pipeline");
    return nconf;
}

/*
 * in_tail keeps every followed file open (fluentd does too), so 10,000 logs need 10,000
 * descriptors, while the soft limit is often 1024 under a hard one of 512k. The loop is epoll,
 * nothing uses select(), so the soft limit goes up to the hard one (the unit file sets both).
 */
static void raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "inline-config", required_argument, NULL, 'i' },
        { "dry-run", no_argument, NULL, 'D' },
        { "check-remote", no_argument, NULL, 'R' },
        { "oneshot", no_argument, NULL, 'O' },
        { "daemon", required_argument, NULL, 'd' },
        { "log", required_argument, NULL, 'o' },
        { "verbose", no_argument, NULL, 'v' },
        { "quiet", no_argument, NULL, 'q' },
        { "describe", required_argument, NULL, 'S' },
        { "describe-md", required_argument, NULL, 'M' },
        { "list-plugins", no_argument, NULL, 'L' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { "use-v1-config", no_argument, NULL, '1' },
        { "no-supervisor", no_argument, NULL, 'N' },
        { NULL, 0, NULL, 0 }
    };
    const char *config = NULL, *inline_conf = NULL, *pidfile = NULL, *logfile = NULL;
    bool dry_run = false, oneshot = false, check_remote = false;
    struct ls_conf *conf;
    struct reload_ctx rctx;
    int verbose = 0, quiet = 0, c, rc;
    char err[2048];

#ifdef __GLIBC__
    /*
     * Pin glibc's mmap threshold. By default it rises to the size of the largest
     * block freed (up to 32 MiB), after which memory chunks, compression pieces and
     * upload bodies come from the heap and stay resident when freed; measured with
     * the default memory buffer, peak RSS 37.3 -> 31.2 MB. Big blocks then live in
     * their own mappings and go back to the kernel on free().
     */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
    raise_nofile();
    ls_http_set_argv0(argv[0]);
    ls_log_detect_journal();

    while ((c = getopt_long(argc, argv, "c:i:d:o:vqhp:", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'i': inline_conf = optarg; break;
        case 'D': dry_run = true; break;
        case 'R': dry_run = check_remote = true; break;
        case 'O': oneshot = true; break;
        case 'd': pidfile = optarg; break;
        case 'o': logfile = optarg; break;
        case 'v': verbose++; break;
        case 'q': quiet++; break;
        case 'S': return describe(optarg);
        case 'M': return describe_md(optarg);
        case 'L': list_plugins(); return 0;
        case 'V': printf("logship %s\n", LS_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        case '1': case 'N': break;   /* fluentd flags accepted for compatibility */
        case 'p':
            fprintf(stderr, "logship: -p (plugin directory) is ignored: plugins are built in\n");
            break;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "logship: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    ls_log_level = LS_LOG_INFO + verbose - quiet;
    if (ls_log_level < LS_LOG_ERROR) {
        ls_log_level = LS_LOG_ERROR;
    }
    if (ls_log_level > LS_LOG_TRACE) {
        ls_log_level = LS_LOG_TRACE;
    }
    if (config == NULL) {
        config = getenv("LOGSHIP_CONF");
    }
    if (config == NULL) {
        config = getenv("FLUENT_CONF");
    }
    if (config == NULL && inline_conf == NULL) {
        config = "/etc/logship/logship.conf";
    }
    if (!dry_run && ls_signals_init() != LS_OK) {
        return 1;
    }
    if (logfile && ls_log_open(logfile) != LS_OK) {
        fprintf(stderr, "%slogship: cannot open log file '%s' (%d: %s)\n",
                ls_log_stderr_prefix(LS_LOG_ERROR), logfile, errno,
                strerror(errno));
        return 1;
    }

    err[0] = '\0';
    conf = load_config(config, inline_conf, err, sizeof(err));
    if (conf == NULL) {
        fprintf(stderr, "%slogship: configuration error: %s\n", ls_log_stderr_prefix(LS_LOG_ERROR), err);
        return 1;
    }
    check_config_permissions(conf);
    rctx.config = config;
    rctx.inline_conf = inline_conf;
    rctx.oneshot = oneshot;
    rctx.log_level = ls_log_level;
    for (;;) {
        struct ls_engine *eng;

        if (!dry_run && ls_stop_requested()) {
            /* TERM while one pipeline stopped for a reload: the next one does not start */
            ls_conf_destroy(conf);
            return 0;
        }
        ls_log_level = rctx.log_level;      /* the configuration's <system> log_level may apply */
        eng = ls_engine_create(conf, config, oneshot, dry_run, err, sizeof(err));
        if (eng == NULL) {
            fprintf(stderr, "%slogship: configuration error: %s\n", ls_log_stderr_prefix(LS_LOG_ERROR), err);
            ls_conf_destroy(conf);
            return 1;
        }
        if (dry_run) {
            /* valid is not enough: what the start would trip on here, as this user */
            int bad = ls_engine_check_local(eng);

            if (bad == 0 && check_remote) {
                bad = ls_engine_check_remote(eng);
            }
            if (bad == 0) {
                printf("logship: configuration '%s' is valid%s\n", config ? config : "(inline)",
                       check_remote ? "; the remote checks passed" : "");
            } else {
                fprintf(stderr, "logship: configuration '%s' is valid, but the start would fail "
                        "(see above)\n", config ? config : "(inline)");
            }
            ls_engine_destroy(eng);
            ls_conf_destroy(conf);
            return bad == 0 ? 0 : 1;
        }
        if (pidfile) {
            if (logfile == NULL) {
                ls_warn("daemonized without -o LOGFILE: logship's own log is discarded");
            }
            if (daemonize(pidfile) != LS_OK) {
                return 1;
            }
            pidfile = NULL;
        }
        eng->reload = reload_validate;
        eng->reload_arg = &rctx;
        rc = ls_engine_run(eng);
        if (eng->next_conf) {
            struct ls_conf *nconf = eng->next_conf;
            eng->next_conf = NULL;
            ls_engine_destroy(eng);
            ls_conf_destroy(conf);
            conf = nconf;
            continue;
        }
        ls_engine_destroy(eng);
        ls_conf_destroy(conf);
        return rc;
    }
}
