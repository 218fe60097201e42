/*
 * webhdfs.c - fluent-plugin-webhdfs's out_webhdfs (bundled with td-agent): each chunk's
 * formatted records, compressed as `compress` says, appended to (or, with append false,
 * written as) a file on HDFS over the WebHDFS REST API, or HttpFS with httpfs true.
 *
 * As lib/fluent/plugin/out_webhdfs.rb 1.x: path is a strftime template of the chunk's time
 * slice with ${tag}, ${key} and ${chunk_id} placeholders, the compressor's extension (or
 * `extension`) added; the buffer's chunk key is time and its timekey, unless <buffer> sets
 * one, the finest field of path (%S 1 s, %M 1 min, %H 1 h, else 1 d); the <format> is
 * out_file's with UTC times. namenode host:port or host and port; standby_namenode takes
 * over after failures_before_use_standby failed writes in a row, or at once when the active
 * one answers StandbyException. user.name is username. CREATE and APPEND go to the namenode
 * first and follow its redirection to a datanode with the body (HttpFS: one request with
 * data=true). The start checks the namenode with LISTSTATUS / and fails unless
 * ignore_start_check_error, as the plugin does.
 *
 * Better than the plugin, which loses or duplicates data here:
 *  - an append is not idempotent, and the plugin appends a chunk again when its answer was
 *    lost (a duplicate) or half done (a datanode lost mid-write). Here the file's length
 *    before the append is kept in the chunk's state (the file buffer keeps it next to the
 *    chunk, so across kill -9 too). A retry looks at the file first: still at that length,
 *    the chunk is appended; longer by the chunk's bytes and holding them (read back with
 *    OPEN), it was delivered; holding a part of them, the file is cut back (TRUNCATE) to
 *    that length and the chunk appended again.
 *  - a new file is created with overwrite=false: two writers that both found the path
 *    absent no longer overwrite one another's chunk (the plugin creates with the server's
 *    default, overwrite=true); the second one appends.
 *  - %{uuid} and %{uuid_flush} come from the chunk's id, so a retry writes the same file.
 * Writes of one instance go one at a time (appends to one file must not interleave).
 *
 * Not supported (a configuration error naming the line): kerberos, compress bzip2, snappy,
 * hadoop_snappy and lzo_command, remove_prefix and null_value, output_data_type other than
 * json.
 */
#include "plugin.h"
#include "log.h"
#include "http.h"
#include "json.h"
#include "compress.h"
#include "param.h"
#include "aws.h"

#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum { HD_TEXT, HD_GZIP, HD_BZIP2, HD_SNAPPY, HD_HADOOP_SNAPPY, HD_LZO, HD_ZSTD };

struct hd_job;

struct hdfs {
    char *host;
    int64_t port;
    char *namenode;
    char *standby_namenode;
    bool ignore_start_check_error;
    char *path;
    char *username;
    bool httpfs;
    int64_t open_timeout, read_timeout;
    int64_t failures_before_use_standby;
    bool append;
    bool ssl;
    char *ssl_ca_file;
    int ssl_verify_mode;            /* 0 none, 1 peer */
    bool kerberos;
    int compress;
    char *extension;
    char *remove_prefix;
    char *null_value;
    /* derived */
    bool null_compat;               /* v0.12 output_data_type: nil values written as "NULL" */
    struct ls_instance *ins;
    char *nn[2];                    /* "host:port" of the namenode and the standby */
    int active;
    int64_t failures;               /* writes failed in a row */
    bool busy;
    struct hd_job *queue_head, *queue_tail;
};

#define F(f) offsetof(struct hdfs, f)

static const struct ls_param hd_params[] = {
    { "host", LS_P_STR, NULL, LS_PF_NULLABLE, F(host), "WebHDFS/HttpFS host", NULL, NULL, 0,
      0 },
    { "port", LS_P_INT, "50070", 0, F(port), "WebHDFS/HttpFS port", NULL, NULL, 1, 65535 },
    { "namenode", LS_P_STR, NULL, LS_PF_NULLABLE, F(namenode), "namenode as host:port", NULL,
      NULL, 0, 0 },
    { "standby_namenode", LS_P_STR, NULL, LS_PF_NULLABLE, F(standby_namenode),
      "standby namenode (host:port) for namenode HA", NULL, NULL, 0, 0 },
    { "ignore_start_check_error", LS_P_BOOL, "false", 0, F(ignore_start_check_error),
      "start even when the namenode does not answer LISTSTATUS /", NULL, NULL, 0, 0 },
    { "path", LS_P_STR, NULL, LS_PF_REQUIRED, F(path),
      "file path on HDFS: strftime, ${tag}, ${key}, ${chunk_id}, %{uuid_flush}", NULL, NULL,
      0, 0 },
    { "username", LS_P_STR, NULL, LS_PF_NULLABLE, F(username),
      "user.name for pseudo authentication", NULL, NULL, 0, 0 },
    { "httpfs", LS_P_BOOL, "false", 0, F(httpfs), "the server is HttpFS (no redirection)",
      NULL, NULL, 0, 0 },
    { "open_timeout", LS_P_INT, "30", 0, F(open_timeout), "connect timeout, seconds", NULL,
      NULL, 0, 0 },
    { "read_timeout", LS_P_INT, "60", 0, F(read_timeout),
      "seconds without progress before a request fails", NULL, NULL, 0, 0 },
    { "retry_known_errors", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0,
      "accepted: failed writes are retried with the buffer's backoff", NULL, NULL, 0, 0 },
    { "retry_interval", LS_P_INT, NULL, LS_PF_NO_STORE, 0, "accepted (see retry_known_errors)",
      NULL, NULL, 0, 0 },
    { "retry_times", LS_P_INT, NULL, LS_PF_NO_STORE, 0, "accepted (see retry_known_errors)",
      NULL, NULL, 0, 0 },
    { "failures_before_use_standby", LS_P_INT, "11", 0, F(failures_before_use_standby),
      "failed writes in a row before the standby namenode is used", NULL, NULL, 0, 0 },
    { "end_with_newline", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0,
      "accepted: the formatters end each record with a newline", NULL, NULL, 0, 0 },
    { "append", LS_P_BOOL, "true", 0, F(append),
      "append to the path (false: one file per chunk, path needs ${chunk_id})", NULL, NULL, 0,
      0 },
    { "ssl", LS_P_BOOL, "false", 0, F(ssl), "https", NULL, NULL, 0, 0 },
    { "ssl_ca_file", LS_P_STR, NULL, LS_PF_NULLABLE, F(ssl_ca_file), "CA certificates (PEM)",
      NULL, NULL, 0, 0 },
    { "ssl_verify_mode", LS_P_ENUM, "none", 0, F(ssl_verify_mode),
      "check the server's certificate (peer) or not (none)", NULL, "none|peer", 0, 0 },
    { "kerberos", LS_P_BOOL, "false", 0, F(kerberos), "SPNEGO (not supported)", NULL, NULL, 0,
      0 },
    { "kerberos_keytab", LS_P_STR, NULL, LS_PF_NO_STORE, 0, "accepted with kerberos false",
      NULL, NULL, 0, 0 },
    { "renew_kerberos_delegation_token", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0,
      "accepted with kerberos false", NULL, NULL, 0, 0 },
    { "renew_kerberos_delegation_token_interval", LS_P_TIME, NULL, LS_PF_NO_STORE, 0,
      "accepted with kerberos false", NULL, NULL, 0, 0 },
    { "kerberos_delegation_token_max_lifetime", LS_P_TIME, NULL, LS_PF_NO_STORE, 0,
      "accepted with kerberos false", NULL, NULL, 0, 0 },
    { "compress", LS_P_ENUM, "text", 0, F(compress), "text, gzip or zstd", NULL,
      "text|gzip|bzip2|snappy|hadoop_snappy|lzo_command|zstd", 0, 0 },
    { "extension", LS_P_STR, NULL, LS_PF_NULLABLE, F(extension),
      "file extension instead of the compressor's (.gz, .zst)", NULL, NULL, 0, 0 },
    { "remove_prefix", LS_P_STR, NULL, LS_PF_NULLABLE, F(remove_prefix),
      "deprecated (not supported: use @label)", NULL, NULL, 0, 0 },
    { "default_tag", LS_P_STR, NULL, LS_PF_NO_STORE, 0, "deprecated, accepted", NULL, NULL, 0,
      0 },
    { "null_value", LS_P_STR, NULL, LS_PF_NULLABLE, F(null_value),
      "deprecated (not supported: use a filter)", NULL, NULL, 0, 0 },
    { "suppress_log_broken_string", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0, "deprecated, accepted",
      NULL, NULL, 0, 0 },
    { "output_data_type", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "v0.12: json (out_file lines); see <format>", NULL, NULL, 0, 0 },
    { "output_include_time", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0, "v0.12, with output_data_type",
      NULL, NULL, 0, 0 },
    { "output_include_tag", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0, "v0.12, with output_data_type",
      NULL, NULL, 0, 0 },
    { "field_separator", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "v0.12, with output_data_type: TAB, SPACE, COMMA, SOH or the characters", NULL, NULL, 0,
      0 },
    LS_PARAM_END
};

static const char *const hd_ext[] = { "", ".gz", ".bz2", ".sz", ".snappy", ".lzo", ".zst" };

/* ---- configuration ---- */

/* fluentd's out_webhdfs: the timekey from the finest strftime field of path */
static double hd_default_timekey(struct ls_conf_section *sec)
{
    const char *p = ls_conf_get(sec, "path");

    if (p == NULL) {
        return 0;
    }
    return strstr(p, "%S") ? 1 : strstr(p, "%M") ? 60 : strstr(p, "%H") ? 3600 : 86400;
}

/*
 * The <format>: out_file's with UTC times (the plugin's config_set_default :localtime,
 * false). The v0.12 parameters output_data_type json, output_include_time/tag and
 * field_separator become that formatter's output_time, output_tag and delimiter.
 */
static const char *hd_formatter_for(struct ls_conf_section *sec, struct ls_conf_section **fsec,
                                    char *err, size_t errlen)
{
    struct ls_conf_section *f = ls_conf_child(sec, "format");
    const char *odt = ls_conf_get(sec, "output_data_type");
    static const char *const flat[] = { "localtime", "utc", "timezone", "time_format", NULL };
    const char *type;

    if (f == NULL) {
        if (odt && *odt && strcmp(odt, "json") != 0) {
            ls_conf_param_error(sec, "output_data_type", err, errlen, "output_data_type '%s' is "
                                "not supported by logship's webhdfs output (json, or a <format> "
                                "section)", odt);
            return NULL;
        }
        f = ls_conf_add_child(sec, "format", "");
        for (size_t i = 0; flat[i]; i++) {
            struct ls_conf_param *p = ls_conf_get_param(sec, flat[i]);
            if (p) {
                p->used = true;
                ls_conf_set(f, p->key, p->value, p->file, p->line);
            }
        }
        if (odt) {
            static const char *const inc[2][2] = { { "output_include_time", "output_time" },
                                                   { "output_include_tag", "output_tag" } };
            const char *fs = ls_conf_get(sec, "field_separator");
            for (int i = 0; i < 2; i++) {
                struct ls_conf_param *p = ls_conf_get_param(sec, inc[i][0]);
                ls_conf_set(f, inc[i][1], p ? p->value : "true", p ? p->file : sec->file,
                            p ? p->line : sec->line);
            }
            if (fs) {
                /* checked by hd_init: TAB, SPACE, COMMA, or those characters */
                const char *d = strcmp(fs, ",") == 0 ? "COMMA" : strcmp(fs, " ") == 0 ? "SPACE" :
                                strcmp(fs, "\t") == 0 ? "TAB" : fs;
                ls_conf_set(f, "delimiter", d, sec->file, sec->line);
            }
        }
    }
    type = ls_conf_type(f);
    if ((type == NULL || *type == '\0' || strcmp(type, "out_file") == 0) &&
        ls_conf_get(f, "localtime") == NULL && ls_conf_get(f, "utc") == NULL &&
        ls_conf_get(f, "timezone") == NULL) {
        ls_conf_set(f, "localtime", "false", f->file, f->line);
    }
    *fsec = f;
    return type && *type ? type : "out_file";
}

static bool hd_hostport(const char *s)
{
    const char *c = strrchr(s, ':');
    size_t i;

    if (c == NULL || c == s || c[1] == '\0' || !((s[0] >= 'a' && s[0] <= 'z') ||
        (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= '0' && s[0] <= '9'))) {
        return false;
    }
    for (i = 0; s + i < c; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '.')) {
            return false;
        }
    }
    for (c++; *c; c++) {
        if (*c < '0' || *c > '9') {
            return false;
        }
    }
    return true;
}

static int hd_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                   size_t errlen)
{
    struct hdfs *h = ins->ctx;

    h->ins = ins;
    if (h->kerberos) {
        ls_conf_param_error(sec, "kerberos", err, errlen, "kerberos (SPNEGO) is not supported "
                            "by logship's webhdfs output");
        return LS_ERROR;
    }
    if (h->compress != HD_TEXT && h->compress != HD_GZIP && h->compress != HD_ZSTD) {
        ls_conf_param_error(sec, "compress", err, errlen, "compress %s is not supported by "
                            "logship's webhdfs output (text, gzip or zstd)",
                            h->compress == HD_BZIP2 ? "bzip2" : h->compress == HD_SNAPPY ?
                            "snappy" : h->compress == HD_HADOOP_SNAPPY ? "hadoop_snappy" :
                            "lzo_command");
        return LS_ERROR;
    }
    if (h->remove_prefix || h->null_value) {
        ls_conf_param_error(sec, h->remove_prefix ? "remove_prefix" : "null_value", err, errlen,
                            "%s is deprecated in fluent-plugin-webhdfs and not supported by "
                            "logship (%s)", h->remove_prefix ? "remove_prefix" : "null_value",
                            h->remove_prefix ? "use @label for routing" :
                            "use a filter to replace null values");
        return LS_ERROR;
    }
    if (ls_conf_child(sec, "format") == NULL && ls_conf_get(sec, "output_data_type")) {
        const char *fs = ls_conf_get(sec, "field_separator");
        h->null_compat = true;
        if (fs && strcmp(fs, "TAB") != 0 && strcmp(fs, "SPACE") != 0 &&
            strcmp(fs, "COMMA") != 0 && strcmp(fs, "\t") != 0 && strcmp(fs, " ") != 0 &&
            strcmp(fs, ",") != 0) {
            ls_conf_param_error(sec, "field_separator", err, errlen, "field_separator '%s' is "
                                "not supported by logship's webhdfs output (TAB, SPACE or "
                                "COMMA)", fs);
            return LS_ERROR;
        }
    }
    if (h->host) {
        h->nn[0] = ls_asprintf("%s:%lld", h->host, (long long)h->port);
    } else if (h->namenode) {
        if (!hd_hostport(h->namenode)) {
            ls_conf_param_error(sec, "namenode", err, errlen, "Invalid config value about "
                                "namenode: '%s', needs NAMENODE_HOST:PORT", h->namenode);
            return LS_ERROR;
        }
        h->nn[0] = ls_strdup(h->namenode);
    } else {
        snprintf(err, errlen, "%s:%d: WebHDFS host or namenode missing", sec->file, sec->line);
        return LS_ERROR;
    }
    if (h->standby_namenode) {
        if (!hd_hostport(h->standby_namenode)) {
            ls_conf_param_error(sec, "standby_namenode", err, errlen, "Invalid config value "
                                "about standby namenode: '%s', needs "
                                "STANDBY_NAMENODE_HOST:PORT", h->standby_namenode);
            return LS_ERROR;
        }
        if (h->httpfs) {
            ls_conf_param_error(sec, "standby_namenode", err, errlen, "Invalid configuration: "
                                "specified to use both of standby_namenode and httpfs.");
            return LS_ERROR;
        }
        h->nn[1] = ls_strdup(h->standby_namenode);
    }
    if (h->path[0] != '/') {
        ls_conf_param_error(sec, "path", err, errlen, "Path on hdfs MUST starts with '/', but "
                            "'%s'", h->path);
        return LS_ERROR;
    }
    if (!h->append && strstr(h->path, "${chunk_id}") == NULL) {
        ls_conf_param_error(sec, "path", err, errlen, "path must contain ${chunk_id}, which is "
                            "the placeholder for chunk_id, when append is set to false.");
        return LS_ERROR;
    }
    return LS_OK;
}

/* ---- requests ---- */

/* http(s)://<namenode>/webhdfs/v1<path>?op=OP[&user.name=..]<more> */
static char *hd_url(const struct hdfs *h, const char *path, const char *op, const char *more)
{
    struct ls_buf u;
    char *s;

    ls_buf_init(&u, 0);
    ls_buf_printf(&u, "%s://%s/webhdfs/v1", h->ssl ? "https" : "http", h->nn[h->active]);
    aws_uri_encode(&u, path, strlen(path), true);
    ls_buf_printf(&u, "?op=%s", op);
    if (h->username) {
        ls_buf_append(&u, "&user.name=", 11);
        aws_uri_encode(&u, h->username, strlen(h->username), false);
    }
    if (more) {
        ls_buf_append(&u, more, strlen(more));
    }
    s = ls_strdup(ls_buf_cstr(&u));
    ls_buf_release(&u);
    return s;
}

static void hd_req_init(const struct hdfs *h, struct ls_http_req *req, const char *method,
                        const char *url)
{
    memset(req, 0, sizeof(*req));
    req->method = method;
    req->url = url;
    req->body_fd = -1;
    req->connect_timeout = h->open_timeout > 0 ? (double)h->open_timeout : 30;
    req->low_speed_time = h->read_timeout > 0 ? (double)h->read_timeout : 60;
    req->verify_peer = h->ssl_verify_mode == 1;
    req->ca_file = h->ssl_ca_file;
    req->max_response = 1024 * 1024;
}

/* "FileNotFoundException: File does not exist: /x" from a RemoteException answer */
static void hd_remote_error(const struct ls_http_resp *resp, char *out, size_t outlen,
                            char *exc, size_t exclen)
{
    struct ls_arena a;
    struct ls_record r, e;
    const struct ls_field *f;

    exc[0] = '\0';
    ls_arena_init(&a, 1024);
    ls_record_init(&r, &a);
    ls_record_init(&e, &a);
    if (resp->body.len && ls_json_parse_object(resp->body.p, resp->body.len, &r) == LS_OK &&
        (f = ls_record_get(&r, "RemoteException", 15)) != NULL && f->v.type == LS_V_JSON &&
        ls_json_parse_object(f->v.u.s.p, f->v.u.s.len, &e) == LS_OK) {
        const struct ls_field *x = ls_record_get(&e, "exception", 9);
        const struct ls_field *m = ls_record_get(&e, "message", 7);
        if (x && x->v.type == LS_V_STR) {
            snprintf(exc, exclen, "%.*s", (int)x->v.u.s.len, x->v.u.s.p);
        }
        snprintf(out, outlen, "%ld %s: %.*s", resp->status, exc,
                 m && m->v.type == LS_V_STR ? (int)(m->v.u.s.len > 300 ? 300 : m->v.u.s.len) : 0,
                 m && m->v.type == LS_V_STR ? m->v.u.s.p : "");
    } else if (resp->status == 0) {
        snprintf(out, outlen, "%s", resp->error[0] ? resp->error : "no answer");
    } else {
        snprintf(out, outlen, "%ld %.*s", resp->status,
                 (int)(resp->body.len > 200 ? 200 : resp->body.len),
                 resp->body.p ? resp->body.p : "");
    }
    ls_record_release(&r);
    ls_record_release(&e);
    ls_arena_release(&a);
}

/* ---- one chunk ---- */

enum hd_step { HS_STAT, HS_VERIFY, HS_VERIFY_DN, HS_TRUNCATE, HS_SEND_NN, HS_SEND_DN };

struct hd_job {
    struct hdfs *h;
    struct ls_chunk *c;
    struct hd_job *next;
    int fd;                         /* the body (memfd) */
    uint64_t size;
    char *path;                     /* on HDFS */
    char *url;                      /* of the request under way */
    enum hd_step step;
    bool exists;                    /* the file was there at the last look */
    uint64_t flen;                  /* its length then */
    uint64_t at;                    /* append: the length before this chunk (chunk state) */
    int restat;                     /* stat rounds (create raced) */
    int rc;
    char err[600];
};

static void hd_next(struct hdfs *h);
static void hd_stat(struct hd_job *j);

static void hd_job_free(struct hd_job *j)
{
    if (j->fd >= 0) {
        close(j->fd);
    }
    ls_free(j->path);
    ls_free(j->url);
    ls_free(j);
}

static void hd_finish(struct hd_job *j, int rc, const char *msg)
{
    struct hdfs *h = j->h;

    if (rc == LS_OK) {
        h->failures = 0;
        h->ins->metrics.write_bytes += j->size;
        ls_output_delivered(h->ins, j->c, j->path, j->size);
    } else if (h->nn[1] && ++h->failures >= h->failures_before_use_standby) {
        h->failures = 0;
        h->active ^= 1;
        ls_plg_warn(h->ins, "Too many failures. Try to use the standby namenode instead: now "
                    "using %s", h->nn[h->active]);
    }
    ls_output_write_done(h->ins, j->c, rc, rc == LS_OK ? NULL : msg);
    hd_job_free(j);
    h->busy = false;
    hd_next(h);
}

static long hd_read(void *arg, void *out, size_t n)
{
    return ls_chunk_reader_read(arg, out, n);
}

/* Worker: the body into a memfd */
static void hd_build(void *arg)
{
    struct hd_job *j = arg;
    static const int algo[] = { LS_COMPRESS_TEXT, LS_COMPRESS_GZIP, 0, 0, 0, 0,
                                LS_COMPRESS_ZSTD };
    struct ls_chunk_reader *r = ls_chunk_reader_open(j->c);
    char cerr[200] = "";
    struct stat st;

    j->rc = LS_ERROR;
    j->fd = memfd_create("logship-webhdfs", MFD_CLOEXEC);
    if (j->fd < 0 || r == NULL) {
        snprintf(j->err, sizeof(j->err), "cannot read chunk %s (%d: %s)",
                 ls_chunk_info(j->c)->id, errno, strerror(errno));
    } else if (ls_compress_stream((enum ls_compress_algo)algo[j->h->compress], -1, hd_read, r,
                                  j->fd, NULL, cerr, sizeof(cerr)) != LS_OK ||
               fstat(j->fd, &st) != 0) {
        snprintf(j->err, sizeof(j->err), "compressing chunk %s failed: %s",
                 ls_chunk_info(j->c)->id, cerr[0] ? cerr : strerror(errno));
    } else {
        j->size = (uint64_t)st.st_size;
        j->rc = LS_OK;
    }
    if (r) {
        ls_chunk_reader_close(r);
    }
}

static bool hd_submit(struct hd_job *j, struct ls_http_req *req, ls_http_cb cb)
{
    if (ls_http_submit(j->h->ins->engine, req, cb, j) != LS_OK) {
        snprintf(j->err, sizeof(j->err), "cannot start the request to %s", req->url);
        hd_finish(j, LS_ERROR, j->err);
        return false;
    }
    return true;
}

/* A failed answer: StandbyException switches namenodes at once (then the retry goes there) */
static void hd_failed(struct hd_job *j, const char *what, struct ls_http_resp *resp)
{
    struct hdfs *h = j->h;
    char msg[500], exc[100];

    hd_remote_error(resp, msg, sizeof(msg), exc, sizeof(exc));
    if (strcmp(exc, "StandbyException") == 0 && h->nn[1]) {
        ls_plg_warn(h->ins, "Seems the connected host status is not active (maybe due to "
                    "failovers): now using %s", h->nn[h->active ^ 1]);
        h->active ^= 1;
        h->failures = 0;
    }
    snprintf(j->err, sizeof(j->err), "failed to communicate hdfs cluster, path: %s: %s: %s",
             j->path, what, msg);
    hd_finish(j, LS_ERROR, j->err);
}

static void hd_sent(struct ls_http_resp *resp, void *arg);

/* CREATE (overwrite false, or true for one file per chunk) or APPEND */
static void hd_send(struct hd_job *j)
{
    struct hdfs *h = j->h;
    struct ls_http_req req;
    struct ls_buf hdr;
    bool create = !h->append || !j->exists;
    const char *more = !h->append ? "&overwrite=true" : create ? "&overwrite=false" : NULL;
    char *m2 = NULL;

    if (h->httpfs) {
        m2 = ls_asprintf("%s&data=true", more ? more : "");
        more = m2;
    }
    ls_free(j->url);
    j->url = hd_url(h, j->path, create ? "CREATE" : "APPEND", more);
    ls_free(m2);
    hd_req_init(h, &req, create ? "PUT" : "POST", j->url);
    ls_buf_init(&hdr, 0);
    ls_http_hdr_add(&hdr, "Expect:");
    if (h->httpfs) {
        ls_http_hdr_set(&hdr, "Content-Type", "application/octet-stream");
        req.body_fd = j->fd;
        req.body_file_len = j->size;
        j->step = HS_SEND_DN;
    } else {
        /* the namenode answers 307 with the datanode that takes the body */
        req.body = "";
        req.body_len = 0;
        ls_http_hdr_add(&hdr, "Content-Type:");
        j->step = HS_SEND_NN;
    }
    req.headers = &hdr;
    ls_output_write_sending(h->ins, j->c);
    (void)hd_submit(j, &req, hd_sent);
    ls_buf_release(&hdr);
}

static void hd_sent(struct ls_http_resp *resp, void *arg)
{
    struct hd_job *j = arg;
    struct hdfs *h = j->h;
    bool create = !h->append || !j->exists;

    if (j->step == HS_SEND_NN) {
        char loc[2048];
        struct ls_http_req req;
        struct ls_buf hdr;

        if (resp->status < 300 || resp->status >= 400 ||
            ls_http_resp_header(resp, "Location", loc, sizeof(loc)) == NULL) {
            if (create && resp->status == 403 && strstr(ls_buf_cstr(&resp->body),
                                                         "FileAlreadyExistsException") &&
                j->restat++ < 3) {
                hd_stat(j);           /* another writer created it: append */
                return;
            }
            if (resp->status >= 200 && resp->status < 300) {
                snprintf(j->err, sizeof(j->err), "failed to communicate hdfs cluster, path: "
                         "%s: NameNode returns non-redirection (or without location header), "
                         "code:%ld", j->path, resp->status);
                hd_finish(j, LS_ERROR, j->err);
                return;
            }
            hd_failed(j, create ? "CREATE" : "APPEND", resp);
            return;
        }
        ls_free(j->url);
        j->url = ls_strdup(loc);
        hd_req_init(h, &req, create ? "PUT" : "POST", j->url);
        ls_buf_init(&hdr, 0);
        ls_http_hdr_add(&hdr, "Expect:");
        ls_http_hdr_set(&hdr, "Content-Type", "application/octet-stream");
        req.headers = &hdr;
        req.body_fd = j->fd;
        req.body_file_len = j->size;
        j->step = HS_SEND_DN;
        (void)hd_submit(j, &req, hd_sent);
        ls_buf_release(&hdr);
        return;
    }
    if ((create && resp->status == 201) || (!create && resp->status == 200)) {
        hd_finish(j, LS_OK, NULL);
        return;
    }
    if (create && resp->status == 403 && strstr(ls_buf_cstr(&resp->body),
                                                "FileAlreadyExistsException") &&
        j->restat++ < 3) {
        hd_stat(j);
        return;
    }
    hd_failed(j, create ? "CREATE" : "APPEND", resp);
}

/* "webhdfs <at> <size> <path>": this chunk is appended at <at> (its length before). Kept
 * before the append is sent, or the append is not sent. */
static bool hd_save_state(struct hd_job *j)
{
    char *s = ls_asprintf("webhdfs %llu %llu %s", (unsigned long long)j->at,
                          (unsigned long long)j->size, j->path);
    int rc = ls_chunk_set_state(j->c, s);

    ls_free(s);
    if (rc != LS_OK) {
        snprintf(j->err, sizeof(j->err), "cannot save the state of chunk %s (where it is "
                 "appended): not appending it", ls_chunk_info(j->c)->id);
        hd_finish(j, LS_ERROR, j->err);
        return false;
    }
    return true;
}

static bool hd_state(struct hd_job *j, uint64_t *at)
{
    const char *s = ls_chunk_state(j->c);
    unsigned long long a, n;
    int off = 0;

    if (s == NULL || sscanf(s, "webhdfs %llu %llu %n", &a, &n, &off) != 2 || off == 0 ||
        n != j->size || strcmp(s + off, j->path) != 0) {
        return false;
    }
    *at = a;
    return true;
}

static void hd_truncated(struct ls_http_resp *resp, void *arg)
{
    struct hd_job *j = arg;

    if (resp->status != 200 || strstr(ls_buf_cstr(&resp->body), "true") == NULL) {
        /* "false": the cut is still under way (block recovery); look again at the retry */
        if (resp->status == 200) {
            snprintf(j->err, sizeof(j->err), "failed to communicate hdfs cluster, path: %s: "
                     "TRUNCATE to %llu is not finished yet", j->path,
                     (unsigned long long)j->at);
            hd_finish(j, LS_ERROR, j->err);
            return;
        }
        hd_failed(j, "TRUNCATE", resp);
        return;
    }
    ls_plg_warn(j->h->ins, "'%s' held a part of chunk %s (a write cut short): cut back to "
                "%llu bytes, appending the chunk again", j->path, ls_chunk_info(j->c)->id,
                (unsigned long long)j->at);
    j->exists = true;
    hd_send(j);
}

static void hd_truncate(struct hd_job *j)
{
    struct ls_http_req req;
    char more[64];

    snprintf(more, sizeof(more), "&newlength=%llu", (unsigned long long)j->at);
    ls_free(j->url);
    j->url = hd_url(j->h, j->path, "TRUNCATE", more);
    hd_req_init(j->h, &req, "POST", j->url);
    req.body = "";
    j->step = HS_TRUNCATE;
    (void)hd_submit(j, &req, hd_truncated);
}

/* How much of the file from at is read back: what it holds of the chunk, 64 MiB at most */
static uint64_t hd_verify_len(const struct hd_job *j)
{
    uint64_t have = j->flen - j->at;
    uint64_t n = have < j->size ? have : j->size;

    return n > 64 * 1024 * 1024 ? 64 * 1024 * 1024 : n;
}

/* The bytes read back from at: ours (a write that went through), a part of ours, or not */
static void hd_verified(struct ls_http_resp *resp, void *arg)
{
    struct hd_job *j = arg;
    uint64_t have = j->flen - j->at;
    uint64_t want = hd_verify_len(j);
    bool same = false;

    if (resp->status >= 300 && resp->status < 400 && j->step == HS_VERIFY) {
        /* the namenode sends OPEN to a datanode */
        char loc[2048];
        struct ls_http_req req;

        if (ls_http_resp_header(resp, "Location", loc, sizeof(loc)) != NULL) {
            ls_free(j->url);
            j->url = ls_strdup(loc);
            hd_req_init(j->h, &req, "GET", j->url);
            req.max_response = (size_t)want + 1;
            j->step = HS_VERIFY_DN;
            (void)hd_submit(j, &req, hd_verified);
            return;
        }
    }
    if (resp->status != 200) {
        hd_failed(j, "OPEN", resp);
        return;
    }
    if (want > 0 && resp->body.len == want) {
        void *m = mmap(NULL, (size_t)want, PROT_READ, MAP_SHARED, j->fd, 0);
        if (m != MAP_FAILED) {
            same = memcmp(m, resp->body.p, (size_t)want) == 0;
            munmap(m, (size_t)want);
        }
    }
    if (same && have >= j->size) {
        ls_plg_info(j->h->ins, "chunk %s is already in '%s' at %llu (its answer was lost): "
                    "not appended again", ls_chunk_info(j->c)->id, j->path,
                    (unsigned long long)j->at);
        hd_finish(j, LS_OK, NULL);
    } else if (same) {
        hd_truncate(j);
    } else {
        /* another writer's bytes: ours never got there */
        j->at = j->flen;
        if (hd_save_state(j)) {
            hd_send(j);
        }
    }
}

static void hd_verify(struct hd_job *j)
{
    struct hdfs *h = j->h;
    uint64_t n = hd_verify_len(j);
    struct ls_http_req req;
    char more[80];

    snprintf(more, sizeof(more), "&offset=%llu&length=%llu", (unsigned long long)j->at,
             (unsigned long long)n);
    ls_free(j->url);
    j->url = hd_url(h, j->path, "OPEN", more);
    hd_req_init(h, &req, "GET", j->url);
    req.max_response = (size_t)n + 1;
    j->step = HS_VERIFY;
    (void)hd_submit(j, &req, hd_verified);
}

static void hd_statted(struct ls_http_resp *resp, void *arg)
{
    struct hd_job *j = arg;
    uint64_t at;

    if (resp->status == 404) {
        j->exists = false;
        j->flen = 0;
    } else if (resp->status == 200) {
        struct ls_arena a;
        struct ls_record r, fs;
        const struct ls_field *f, *l = NULL;

        ls_arena_init(&a, 1024);
        ls_record_init(&r, &a);
        ls_record_init(&fs, &a);
        if (ls_json_parse_object(resp->body.p, resp->body.len, &r) == LS_OK &&
            (f = ls_record_get(&r, "FileStatus", 10)) != NULL && f->v.type == LS_V_JSON &&
            ls_json_parse_object(f->v.u.s.p, f->v.u.s.len, &fs) == LS_OK) {
            l = ls_record_get(&fs, "length", 6);
        }
        j->exists = l && l->v.type == LS_V_INT && l->v.u.i >= 0;
        j->flen = j->exists ? (uint64_t)l->v.u.i : 0;
        ls_record_release(&r);
        ls_record_release(&fs);
        ls_arena_release(&a);
        if (!j->exists) {
            snprintf(j->err, sizeof(j->err), "failed to communicate hdfs cluster, path: %s: "
                     "GETFILESTATUS answered without a length", j->path);
            hd_finish(j, LS_ERROR, j->err);
            return;
        }
    } else {
        hd_failed(j, "GETFILESTATUS", resp);
        return;
    }
    if (!hd_state(j, &at) || j->flen < at) {
        /* first try, or the file was replaced or cut since: append at its end now */
        j->at = j->flen;
        if (hd_save_state(j)) {
            hd_send(j);
        }
    } else if (j->flen == at) {
        j->at = at;
        hd_send(j);
    } else {
        j->at = at;
        hd_verify(j);
    }
}

static void hd_stat(struct hd_job *j)
{
    struct ls_http_req req;

    ls_free(j->url);
    j->url = hd_url(j->h, j->path, "GETFILESTATUS", NULL);
    hd_req_init(j->h, &req, "GET", j->url);
    j->step = HS_STAT;
    (void)hd_submit(j, &req, hd_statted);
}

/* %{uuid} and %{uuid_flush}: the chunk's id as a UUID, the same at every retry */
static char *hd_uuid(char *path, const char *id)
{
    static const char *const ph[] = { "%{uuid}", "%{uuid_flush}" };
    char u[40];

    snprintf(u, sizeof(u), "%.8s-%.4s-%.4s-%.4s-%.12s", id, id + 8, id + 12, id + 16, id + 20);
    for (size_t k = 0; k < 2; k++) {
        char *at;
        while ((at = strstr(path, ph[k])) != NULL) {
            char *n = ls_asprintf("%.*s%s%s", (int)(at - path), path, u, at + strlen(ph[k]));
            ls_free(path);
            path = n;
        }
    }
    return path;
}

static void hd_built(void *arg)
{
    struct hd_job *j = arg;
    struct hdfs *h = j->h;
    char *p, *u;

    if (j->rc != LS_OK) {
        hd_finish(j, LS_ERROR, j->err);
        return;
    }
    u = hd_uuid(ls_strdup(h->path), ls_chunk_info(j->c)->id);
    p = ls_chunk_expand_str(j->c, u);
    ls_free(u);
    if (p == NULL) {
        snprintf(j->err, sizeof(j->err), "path '%s' has a placeholder chunk %s cannot fill",
                 h->path, ls_chunk_info(j->c)->id);
        hd_finish(j, LS_DECLINED, j->err);
        return;
    }
    j->path = ls_asprintf("%s%s", p, h->extension ? h->extension : hd_ext[h->compress]);
    ls_free(p);
    if (h->append) {
        hd_stat(j);
    } else {
        hd_send(j);       /* overwrite=true: a retry writes the same file again */
    }
}

static void hd_next(struct hdfs *h)
{
    struct hd_job *j = h->queue_head;

    if (h->busy || j == NULL) {
        return;
    }
    h->queue_head = j->next;
    if (h->queue_head == NULL) {
        h->queue_tail = NULL;
    }
    h->busy = true;
    if (ls_work_submit(h->ins->engine, hd_build, hd_built, j) != LS_OK) {
        hd_finish(j, LS_ERROR, "cannot start compressing the chunk");
    }
}

static int hd_write(struct ls_instance *ins, struct ls_chunk *c)
{
    struct hdfs *h = ins->ctx;
    struct hd_job *j = ls_calloc(1, sizeof(*j));

    j->h = h;
    j->c = c;
    j->fd = -1;
    if (h->queue_tail) {
        h->queue_tail->next = j;
    } else {
        h->queue_head = j;
    }
    h->queue_tail = j;
    hd_next(h);
    return LS_AGAIN;
}

/* v0.12 (output_data_type without <format>): the plugin's null_value, "NULL", for every nil
 * value of the record's top level */
static const struct ls_record *hd_prepare(struct ls_instance *ins, const struct ls_record *rec,
                                          struct ls_record *scratch)
{
    struct hdfs *h = ins->ctx;
    size_t i;

    if (!h->null_compat) {
        return rec;
    }
    for (i = 0; i < rec->nfields; i++) {
        if (rec->fields[i].v.type == LS_V_NULL) {
            break;
        }
    }
    if (i == rec->nfields) {
        return rec;
    }
    scratch->tag = rec->tag;
    scratch->tag_len = rec->tag_len;
    scratch->time = rec->time;
    scratch->src = rec->src;
    scratch->pos = rec->pos;
    for (i = 0; i < rec->nfields; i++) {
        const struct ls_field *f = &rec->fields[i];
        struct ls_value v = f->v.type == LS_V_NULL ? ls_vstr("NULL", 4) : f->v;
        ls_record_add(scratch, f->key, f->key_len, &v);
    }
    return scratch;
}

/* the plugin's start: LISTSTATUS / on the namenode, then the standby */
static int hd_start(struct ls_instance *ins)
{
    struct hdfs *h = ins->ctx;

    for (int k = 0; k < 2 && h->nn[k]; k++) {
        struct ls_http_req req;
        struct ls_http_resp resp;
        char msg[500], exc[100];
        char *url;
        int save = h->active;

        h->active = k;
        url = hd_url(h, "/", "LISTSTATUS", NULL);
        h->active = save;
        hd_req_init(h, &req, "GET", url);
        req.timeout = (double)(h->open_timeout + h->read_timeout);
        memset(&resp, 0, sizeof(resp));
        if (ls_http_fetch(&req, &resp) == LS_OK && resp.status == 200) {
            ls_plg_info(ins, "webhdfs connection confirmed: %s", h->nn[k]);
            h->active = k;
            ls_buf_release(&resp.body);
            ls_buf_release(&resp.headers);
            ls_free(url);
            return LS_OK;
        }
        hd_remote_error(&resp, msg, sizeof(msg), exc, sizeof(exc));
        ls_plg_warn(ins, "webhdfs check request failed. (namenode: %s, error: %s)", h->nn[k],
                    msg);
        ls_buf_release(&resp.body);
        ls_buf_release(&resp.headers);
        ls_free(url);
    }
    if (!h->ignore_start_check_error) {
        ls_plg_error(ins, "webhdfs is not available now (ignore_start_check_error true starts "
                     "anyway and retries the writes)");
        return LS_ERROR;
    }
    return LS_OK;
}

static void hd_destroy(struct ls_instance *ins)
{
    struct hdfs *h = ins->ctx;

    while (h->queue_head) {
        struct hd_job *j = h->queue_head;
        h->queue_head = j->next;
        hd_job_free(j);
    }
    ls_free(h->nn[0]);
    ls_free(h->nn[1]);
}

const struct ls_plugin ls_plugin_out_webhdfs = {
    .name = "webhdfs",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "append chunks to files on HDFS over WebHDFS or HttpFS "
                   "(fluent-plugin-webhdfs)",
    .params = hd_params,
    .ctx_size = sizeof(struct hdfs),
    .init = hd_init,
    .destroy = hd_destroy,
    .start = hd_start,
    .output_flags = LS_OUT_BUFFERED,
    .default_formatter = "out_file",
    .default_chunk_keys = "time",
    .default_timekey = hd_default_timekey,
    .formatter_for = hd_formatter_for,
    .prepare = hd_prepare,
    .write = hd_write,
};
