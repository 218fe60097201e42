/*
 * datadog.c - fluent-plugin-datadog's out_datadog over HTTP: each chunk's records, enriched
 * as the plugin enriches them, POSTed as JSON arrays to <host>/api/v2/logs.
 *
 * As lib/fluent/plugin/out_datadog.rb: ddsourcecategory, ddsource, ddtags, service and
 * hostname (dd_hostname, default `hostname -f`) are added where the record has none;
 * include_tag_key puts the tag under tag_key; timestamp_key (default @timestamp; "nil",
 * "null", "false" or empty: none) gets the event time as ISO 8601 UTC with milliseconds when
 * the record has none; kubernetes and docker metadata become ddtags (image_name,
 * container_name, kube_namespace, pod_name, container_id), the fields removed with
 * delete_extracted_tag_attributes. Batches of at most 500 events and 5 MB, an event over
 * 5 MB cut with "...TRUNCATED..."; gzip at compression_level with use_compression (default);
 * DD-API-KEY, DD-EVP-ORIGIN and custom_headers; host from `site` (http-intake.logs.<site>),
 * https on ssl_port (443) or http on port with use_ssl false; force_v1_routes posts to
 * /v1/input/<api_key>.
 *
 * Answers: 2xx done; 429 and 5xx retried with the buffer's backoff, where the plugin sleeps
 * and retries in its flush thread forever; any other answer, which the plugin logs and
 * drops, makes the chunk unrecoverable (secondary or backup). A chunk's batches go in
 * order, and the chunk's state counts those done, so a retry sends only the rest.
 * use_http false (the TCP intake) is a configuration error.
 */
#include "plugin.h"
#include "log.h"
#include "http.h"
#include "json.h"
#include "msgpack.h"
#include "compress.h"
#include "param.h"

#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DD_MAX_BATCH_LENGTH 500
#define DD_MAX_BATCH_SIZE 5000000
#define DD_TRUNCATION_SUFFIX "...TRUNCATED..."

struct dd {
    bool include_tag_key;
    char *tag_key;
    char *timestamp_key;
    char *service;
    char *dd_sourcecategory;
    char *dd_source;
    char *dd_tags;
    char *dd_hostname;
    bool delete_extracted_tag_attributes;
    char *site;
    char *host;
    bool use_ssl;
    int64_t port;
    int64_t ssl_port;
    bool use_http;
    struct ls_kvv custom_headers;
    bool use_compression;
    int64_t compression_level;
    bool no_ssl_validation;
    char *http_proxy;
    bool force_v1_routes;
    char *api_key;
    /* derived */
    struct ls_instance *ins;
    char *url;
    bool ts;
};

#define F(f) offsetof(struct dd, f)

static const struct ls_param dd_params[] = {
    { "api_key", LS_P_SECRET, NULL, LS_PF_REQUIRED, F(api_key), "Datadog API key", NULL, NULL,
      0, 0 },
    { "site", LS_P_STR, "datadoghq.com", 0, F(site),
      "Datadog site: the host is http-intake.logs.<site>", NULL, NULL, 0, 0 },
    { "host", LS_P_STR, NULL, LS_PF_NULLABLE, F(host), "intake host (default from site)", NULL,
      NULL, 0, 0 },
    { "use_ssl", LS_P_BOOL, "true", 0, F(use_ssl), "https on ssl_port, else http on port",
      NULL, NULL, 0, 0 },
    { "port", LS_P_INT, "80", 0, F(port), "port without TLS", NULL, NULL, 1, 65535 },
    { "ssl_port", LS_P_INT, "443", 0, F(ssl_port), "port with TLS", NULL, NULL, 1, 65535 },
    { "use_http", LS_P_BOOL, "true", 0, F(use_http),
      "the HTTP intake (false, the TCP intake, is not supported)", NULL, NULL, 0, 0 },
    { "use_compression", LS_P_BOOL, "true", 0, F(use_compression), "gzip the batches", NULL,
      NULL, 0, 0 },
    { "compression_level", LS_P_INT, "6", 0, F(compression_level), "gzip level", NULL, NULL, 0,
      9 },
    { "include_tag_key", LS_P_BOOL, "false", 0, F(include_tag_key), "add the tag", NULL, NULL,
      0, 0 },
    { "tag_key", LS_P_STR, "tag", 0, F(tag_key), "key of the tag", NULL, NULL, 0, 0 },
    { "timestamp_key", LS_P_STR, "@timestamp", 0, F(timestamp_key),
      "key of the event time (nil, null, false or empty: none)", NULL, NULL, 0, 0 },
    { "service", LS_P_STR, NULL, LS_PF_NULLABLE, F(service), "service attribute", NULL, NULL,
      0, 0 },
    { "dd_source", LS_P_STR, NULL, LS_PF_NULLABLE, F(dd_source), "ddsource attribute", NULL,
      NULL, 0, 0 },
    { "dd_sourcecategory", LS_P_STR, NULL, LS_PF_NULLABLE, F(dd_sourcecategory),
      "ddsourcecategory attribute", NULL, NULL, 0, 0 },
    { "dd_tags", LS_P_STR, NULL, LS_PF_NULLABLE, F(dd_tags), "ddtags attribute", NULL, NULL, 0,
      0 },
    { "dd_hostname", LS_P_STR, NULL, LS_PF_NULLABLE, F(dd_hostname),
      "hostname attribute (default: `hostname -f`)", NULL, NULL, 0, 0 },
    { "delete_extracted_tag_attributes", LS_P_BOOL, "false", 0,
      F(delete_extracted_tag_attributes), "remove kubernetes and docker once made ddtags", NULL,
      NULL, 0, 0 },
    { "custom_headers", LS_P_HASH, NULL, 0, F(custom_headers), "more request headers", NULL,
      NULL, 0, 0 },
    { "no_ssl_validation", LS_P_BOOL, "false", 0, F(no_ssl_validation),
      "do not check the server's certificate", NULL, NULL, 0, 0 },
    { "http_proxy", LS_P_STR, NULL, LS_PF_NULLABLE, F(http_proxy), "proxy URL", NULL, NULL, 0,
      0 },
    { "force_v1_routes", LS_P_BOOL, "false", 0, F(force_v1_routes),
      "POST /v1/input/<api_key> instead of /api/v2/logs", NULL, NULL, 0, 0 },
    { "max_retries", LS_P_INT, NULL, LS_PF_NO_STORE, 0,
      "accepted; failed batches are retried with the buffer's backoff", NULL, NULL, 0, 0 },
    { "max_backoff", LS_P_INT, NULL, LS_PF_NO_STORE, 0, "accepted (see retry_max_interval)",
      NULL, NULL, 0, 0 },
    { "use_json", LS_P_BOOL, NULL, LS_PF_NO_STORE, 0, "accepted (HTTP always sends JSON)",
      NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static bool nilish(const char *s)
{
    return s[0] == '\0' || strcmp(s, "nil") == 0 || strcmp(s, "false") == 0 ||
           strcmp(s, "null") == 0;
}

static int dd_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                   size_t errlen)
{
    struct dd *o = ins->ctx;
    char *host;

    o->ins = ins;
    if (!o->use_http) {
        ls_conf_param_error(sec, "use_http", err, errlen, "use_http false (Datadog's TCP "
                            "intake) is not supported by logship's datadog output");
        return LS_ERROR;
    }
    host = o->host && o->host[0] ? ls_strdup(o->host)
                                 : ls_asprintf("http-intake.logs.%s", o->site);
    if (o->force_v1_routes) {
        o->url = ls_asprintf("%s://%s:%lld/v1/input/%s", o->use_ssl ? "https" : "http", host,
                             (long long)(o->use_ssl ? o->ssl_port : o->port), o->api_key);
    } else {
        o->url = ls_asprintf("%s://%s:%lld/api/v2/logs", o->use_ssl ? "https" : "http", host,
                             (long long)(o->use_ssl ? o->ssl_port : o->port));
    }
    ls_free(host);
    if (o->dd_hostname == NULL) {
        /* the plugin runs `hostname -f`, falling back to the short name */
        FILE *p = popen("hostname -f 2>/dev/null", "r");
        char name[256] = "";
        if (p) {
            if (fgets(name, sizeof(name), p) == NULL) {
                name[0] = '\0';
            }
            pclose(p);
        }
        name[strcspn(name, "\r\n")] = '\0';
        if (name[0] == '\0') {
            (void)gethostname(name, sizeof(name) - 1);
        }
        o->dd_hostname = ls_strdup(name);
    }
    o->ts = !nilish(o->timestamp_key);
    return o->use_compression ? ls_compress_load(LS_COMPRESS_GZIP, err, errlen) : LS_OK;
}

/* ---- one chunk ---- */

struct dd_job {
    struct dd *o;
    struct ls_chunk *c;
    /* every event of the chunk as JSON, and where each batch ends */
    struct ls_buf events;
    size_t *ev_off;
    size_t nev, capev;
    size_t *batch_end;          /* event index after each batch */
    size_t nbatch;
    size_t next;                /* batch to send */
    size_t done0;               /* batches the chunk's state said were done */
    int fd;
    uint64_t size;
    int rc;
    char err[300];
};

static const char *field_str(const struct ls_record *r, const char *k, size_t *n)
{
    const struct ls_field *f = ls_record_get(r, k, strlen(k));

    if (f == NULL || f->v.type != LS_V_STR) {
        return NULL;
    }
    *n = f->v.u.s.len;
    return f->v.u.s.p;
}

/* get_container_tags: kubernetes and docker metadata as Datadog tags. */
static void container_tags(struct ls_arena *a, const struct ls_record *rec, struct ls_buf *out)
{
    static const char *const kube[][2] = {
        { "container_image", "image_name" }, { "container_name", "container_name" },
        { "namespace_name", "kube_namespace" }, { "pod_name", "pod_name" },
        { "docker_id", "container_id" },
    };
    const struct ls_field *f;
    struct ls_record sub;
    size_t i, n;
    const char *v;
    bool first = true;

    ls_record_init(&sub, a);
    if ((f = ls_record_get(rec, "kubernetes", 10)) && f->v.type == LS_V_JSON &&
        ls_json_parse_object(f->v.u.s.p, f->v.u.s.len, &sub) == LS_OK) {
        for (i = 0; i < 5; i++) {
            if ((v = field_str(&sub, kube[i][0], &n)) != NULL) {
                ls_buf_printf(out, "%s%s:%.*s", first ? "" : ",", kube[i][1], (int)n, v);
                first = false;
            }
        }
    }
    ls_record_clear(&sub);
    sub.arena = a;
    if ((f = ls_record_get(rec, "docker", 6)) && f->v.type == LS_V_JSON &&
        ls_json_parse_object(f->v.u.s.p, f->v.u.s.len, &sub) == LS_OK &&
        (v = field_str(&sub, "container_id", &n)) != NULL) {
        /* [kube, docker].compact.join(","): a kubernetes without tags still adds its "," */
        bool had_kube = ls_record_get(rec, "kubernetes", 10) != NULL &&
                        ls_record_get(rec, "kubernetes", 10)->v.type != LS_V_NULL;
        ls_buf_printf(out, "%scontainer_id:%.*s", had_kube ? "," : "", (int)n, v);
    }
    ls_record_release(&sub);
}

/* enrich_record, then the event's JSON into j->events. */
static void dd_event(struct dd_job *j, const msgpack_object *e, struct ls_arena *a,
                     struct ls_buf *tmp)
{
    struct dd *o = j->o;
    struct ls_record rec;
    struct ls_time t;
    struct ls_value v;
    struct ls_field *f;
    static const char *const keys[] = { "ddsourcecategory", "ddsource", "ddtags", "service",
                                        "hostname" };
    const char *vals[5];
    size_t i, off;

    if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size < 2 ||
        !ls_msgpack_event_time(&e->via.array.ptr[0], &t)) {
        return;
    }
    ls_record_init(&rec, a);
    if (ls_msgpack_map_to_record(&e->via.array.ptr[1], &rec) != LS_OK || rec.nfields == 0) {
        ls_record_release(&rec);
        return;     /* the plugin skips an empty record */
    }
    vals[0] = o->dd_sourcecategory;
    vals[1] = o->dd_source;
    vals[2] = o->dd_tags;
    vals[3] = o->service;
    vals[4] = o->dd_hostname;
    for (i = 0; i < 5; i++) {
        /* ||=: a value the record has (not null, not false) stays */
        f = ls_record_get(&rec, keys[i], strlen(keys[i]));
        if (vals[i] && (f == NULL || f->v.type == LS_V_NULL ||
                        (f->v.type == LS_V_BOOL && !f->v.u.b))) {
            v = ls_vstr(vals[i], strlen(vals[i]));
            ls_record_set(&rec, keys[i], strlen(keys[i]), &v);
        }
    }
    /* include_tag_key / tag_key: the buffer's inject put the tag in when the record was
     * buffered, as the plugin's format does (the chunk has no tag key by default) */
    if (o->ts && ((f = ls_record_get(&rec, o->timestamp_key, strlen(o->timestamp_key))) == NULL ||
                  f->v.type == LS_V_NULL)) {
        struct tm tm;
        time_t s = (time_t)t.sec;
        char b[64];
        gmtime_r(&s, &tm);
        snprintf(b, sizeof(b), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(t.nsec / 1000000));
        v = ls_vstr(ls_arena_memdup(a, b, strlen(b)), strlen(b));
        ls_record_set(&rec, o->timestamp_key, strlen(o->timestamp_key), &v);
    }
    ls_buf_reset(tmp);
    container_tags(a, &rec, tmp);
    if (tmp->len) {
        size_t n;
        const char *old = field_str(&rec, "ddtags", &n);
        struct ls_buf joined;
        ls_buf_init(&joined, 0);
        if (old && n) {
            ls_buf_append(&joined, old, n);
            ls_buf_putc(&joined, ',');
        }
        ls_buf_append(&joined, tmp->p, tmp->len);
        v = ls_vstr(ls_arena_memdup(a, joined.p, joined.len), joined.len);
        ls_record_set(&rec, "ddtags", 6, &v);
        ls_buf_release(&joined);
    }
    if (o->delete_extracted_tag_attributes) {
        ls_record_del(&rec, "kubernetes", 10);
        ls_record_del(&rec, "docker", 6);
    }
    off = j->events.len;
    ls_json_put_record(&j->events, &rec);
    if (j->events.len - off > DD_MAX_BATCH_SIZE) {
        size_t keep = DD_MAX_BATCH_SIZE - (sizeof(DD_TRUNCATION_SUFFIX) - 1);
        j->events.len = off + keep;
        ls_buf_append(&j->events, DD_TRUNCATION_SUFFIX, sizeof(DD_TRUNCATION_SUFFIX) - 1);
    }
    if (j->nev == j->capev) {
        j->capev = j->capev ? j->capev * 2 : 1024;
        j->ev_off = ls_realloc(j->ev_off, (j->capev + 1) * sizeof(size_t));
    }
    j->ev_off[j->nev++] = off;
    j->ev_off[j->nev] = j->events.len;
    ls_record_release(&rec);
}

/* Worker: the chunk's events and batches (once), then the next batch's body. */
static void dd_build(void *arg)
{
    struct dd_job *j = arg;
    struct dd *o = j->o;
    struct ls_buf body;
    char cerr[200] = "";
    size_t from, i;

    j->rc = LS_ERROR;
    if (j->batch_end == NULL) {
        struct ls_chunk_entries *en = ls_chunk_entries_open(j->c);
        const msgpack_object *e;
        struct ls_arena a;
        struct ls_buf tmp;
        size_t size = 0;
        bool failed;

        if (en == NULL) {
            snprintf(j->err, sizeof(j->err), "cannot read chunk %s", ls_chunk_info(j->c)->id);
            return;
        }
        ls_arena_init(&a, 4096);
        ls_buf_init(&tmp, 0);
        while ((e = ls_chunk_entries_next(en)) != NULL) {
            ls_arena_reset(&a);
            dd_event(j, e, &a, &tmp);
        }
        failed = ls_chunk_entries_failed(en);
        ls_chunk_entries_close(en);
        ls_buf_release(&tmp);
        ls_arena_release(&a);
        if (failed) {
            snprintf(j->err, sizeof(j->err), "cannot read chunk %s", ls_chunk_info(j->c)->id);
            return;
        }
        /* batch_http_events: a new batch every 500 events, or before the 5 MB limit */
        j->batch_end = ls_calloc(j->nev + 1, sizeof(size_t));
        for (i = 0; i < j->nev; i++) {
            size_t n = j->ev_off[i + 1] - j->ev_off[i];
            if ((i > 0 && i % DD_MAX_BATCH_LENGTH == 0) || size + n > DD_MAX_BATCH_SIZE) {
                j->batch_end[j->nbatch++] = i;
                size = 0;
            }
            size += n;
        }
        j->batch_end[j->nbatch++] = j->nev;
        if (j->next > j->nbatch) {
            j->next = j->nbatch;
        }
    }
    if (j->next >= j->nbatch) {
        j->rc = LS_OK;          /* every batch went before a restart */
        return;
    }
    from = j->next == 0 ? 0 : j->batch_end[j->next - 1];
    ls_buf_init(&body, 0);
    ls_buf_putc(&body, '[');
    for (i = from; i < j->batch_end[j->next]; i++) {
        if (i > from) {
            ls_buf_putc(&body, ',');
        }
        ls_buf_append(&body, j->events.p + j->ev_off[i], j->ev_off[i + 1] - j->ev_off[i]);
    }
    ls_buf_putc(&body, ']');
    if (j->fd >= 0) {
        close(j->fd);
    }
    j->fd = memfd_create("logship-datadog", MFD_CLOEXEC);
    if (j->fd < 0) {
        snprintf(j->err, sizeof(j->err), "memfd_create failed (%d: %s)", errno, strerror(errno));
    } else {
        int level = o->compression_level < 1 ? 1 : (int)o->compression_level;
        if (ls_compress_mem(o->use_compression ? LS_COMPRESS_GZIP : LS_COMPRESS_TEXT, level,
                            body.p, body.len, j->fd, &j->size, cerr, sizeof(cerr)) != LS_OK) {
            snprintf(j->err, sizeof(j->err), "building a batch of chunk %s failed: %s",
                     ls_chunk_info(j->c)->id, cerr);
        } else {
            j->rc = LS_OK;
        }
    }
    ls_buf_release(&body);
}

static void dd_job_free(struct dd_job *j)
{
    if (j->fd >= 0) {
        close(j->fd);
    }
    ls_buf_release(&j->events);
    ls_free(j->ev_off);
    ls_free(j->batch_end);
    ls_free(j);
}

static void dd_built(void *arg);

static void dd_sent(struct ls_http_resp *resp, void *arg)
{
    struct dd_job *j = arg;
    struct dd *o = j->o;
    char msg[400], state[64];
    int rc;

    if (resp->status >= 200 && resp->status < 300) {
        o->ins->metrics.write_bytes += j->size;
        j->next++;
        if (j->next >= j->nbatch) {
            ls_output_delivered(o->ins, j->c, o->url, j->size);
            ls_output_write_done(o->ins, j->c, LS_OK, NULL);
            dd_job_free(j);
            return;
        }
        /* the batches sent so far are not sent again by a retry */
        snprintf(state, sizeof(state), "dd-batches %zu", j->next);
        if (ls_chunk_set_state(j->c, state) != LS_OK) {
            ls_output_write_done(o->ins, j->c, LS_ERROR, "cannot store the chunk's state");
            dd_job_free(j);
            return;
        }
        if (ls_work_submit(o->ins->engine, dd_build, dd_built, j) != LS_OK) {
            ls_output_write_done(o->ins, j->c, LS_ERROR, "cannot build the next batch");
            dd_job_free(j);
        }
        return;
    }
    /* RetryableError: 5xx and 429; the plugin logs other 4xx and drops the batch */
    rc = ls_http_refusal(resp, "Unable to send payload", msg, sizeof(msg));
    ls_output_write_done(o->ins, j->c, rc, msg);
    dd_job_free(j);
}

static void dd_built(void *arg)
{
    struct dd_job *j = arg;
    struct dd *o = j->o;
    struct ls_http_req req;
    struct ls_buf h;

    if (j->rc != LS_OK) {
        ls_output_write_done(o->ins, j->c, LS_ERROR, j->err);
        dd_job_free(j);
        return;
    }
    if (j->nev == 0 || j->next >= j->nbatch) {
        ls_output_write_done(o->ins, j->c, LS_OK, NULL);
        dd_job_free(j);
        return;
    }
    ls_buf_init(&h, 0);
    ls_http_hdr_add_kvv(&h, &o->custom_headers);
    if (!o->force_v1_routes) {
        ls_http_hdr_set(&h, "DD-API-KEY", o->api_key);
        ls_http_hdr_add(&h, "DD-EVP-ORIGIN: fluent");
    }
    ls_http_hdr_add(&h, "Content-Type: application/json");
    if (o->use_compression) {
        ls_http_hdr_add(&h, "Content-Encoding: gzip");
    }
    ls_http_hdr_add(&h, "Expect:");
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = o->url;
    req.headers = &h;
    req.body_fd = j->fd;
    req.body_file_len = j->size;
    req.connect_timeout = 60;
    req.low_speed_time = 60;
    req.verify_peer = !o->no_ssl_validation;
    req.proxy = o->http_proxy;
    req.max_response = 64 * 1024;
    ls_output_write_sending(o->ins, j->c);
    if (ls_http_submit(o->ins->engine, &req, dd_sent, j) != LS_OK) {
        ls_output_write_done(o->ins, j->c, LS_ERROR, "cannot start the request");
        dd_job_free(j);
    }
    ls_buf_release(&h);
}

static int dd_write(struct ls_instance *ins, struct ls_chunk *c)
{
    struct dd *o = ins->ctx;
    struct dd_job *j = ls_calloc(1, sizeof(*j));
    const char *st = ls_chunk_state(c);

    j->o = o;
    j->c = c;
    j->fd = -1;
    ls_buf_init(&j->events, 0);
    if (st && strncmp(st, "dd-batches ", 11) == 0) {
        j->next = (size_t)strtoull(st + 11, NULL, 10);
    }
    if (ls_work_submit(ins->engine, dd_build, dd_built, j) != LS_OK) {
        dd_job_free(j);
        return LS_ERROR;
    }
    return LS_AGAIN;
}

static void dd_destroy(struct ls_instance *ins)
{
    struct dd *o = ins->ctx;

    ls_free(o->url);
}

const struct ls_plugin ls_plugin_out_datadog = {
    .name = "datadog",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "send records to Datadog's HTTP log intake (fluent-plugin-datadog)",
    .params = dd_params,
    .ctx_size = sizeof(struct dd),
    .init = dd_init,
    .destroy = dd_destroy,
    .output_flags = LS_OUT_BUFFERED,
    .default_formatter = "msgpack",
    .formatter_for = ls_msgpack_formatter_for,
    .write = dd_write,
};
