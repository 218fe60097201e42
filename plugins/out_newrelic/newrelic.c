/*
 * newrelic.c - New Relic's fluentd output (newrelic-fluentd-output, `@type newrelic`): each
 * chunk's records POSTed to the Log API as gzip'd JSON.
 *
 * As lib/fluent/plugin/out_newrelic.rb: a record becomes {"timestamp", "attributes",
 * "message"}: timestamp is the record's own "timestamp" when it has one (kept as it is), else
 * the event time in milliseconds; "message" (or "log", which wins, Docker's and Kubernetes'
 * field) moves out of the attributes to the top; an empty record is skipped. A payload is
 * [{"common": {"attributes": {"plugin": {...}}}, "logs": [...]}]; one whose gzip is over
 * 1,000,000 bytes is split in halves until each fits, and a single record that cannot fit is
 * logged and left out, as the plugin does. X-Insert-Key (api_key) or X-License-Key
 * (license_key), falling back to $NEW_RELIC_API_KEY / $NEW_RELIC_LICENSE_KEY. The buffer's
 * defaults are the plugin's: memory, chunk key time, timekey 5 s, timekey_wait 0.
 *
 * Where logship differs, so that nothing is lost or sent twice: the plugin logs a non-2xx
 * answer and drops the payload; here 429, 5xx and no answer are retried with the buffer's
 * backoff, and other answers make the chunk unrecoverable (secondary or backup). A chunk's
 * payloads go in order and its state counts those accepted, so a retry sends only the rest.
 * The plugin always connects to port 443 with TLS whatever base_uri says; logship uses
 * base_uri's scheme and port. The common attributes name logship as the plugin.
 */
#include "plugin.h"
#include "log.h"
#include "http.h"
#include "json.h"
#include "msgpack.h"
#include "compress.h"

#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#define NR_MAX_PAYLOAD 1000000

struct nr {
    char *api_key;
    char *license_key;
    char *base_uri;
    struct ls_instance *ins;
};

#define F(f) offsetof(struct nr, f)

static const struct ls_param nr_params[] = {
    { "api_key", LS_P_SECRET, NULL, LS_PF_NULLABLE, F(api_key),
      "Insert API key (X-Insert-Key; default $NEW_RELIC_API_KEY)", NULL, NULL, 0, 0 },
    { "license_key", LS_P_SECRET, NULL, LS_PF_NULLABLE, F(license_key),
      "license key (X-License-Key; default $NEW_RELIC_LICENSE_KEY), when there is no api_key",
      NULL, NULL, 0, 0 },
    { "base_uri", LS_P_STR, "https://log-api.newrelic.com/log/v1", 0, F(base_uri),
      "the Log API's URL", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static const char *const nr_buffer_defaults[] = { "timekey", "5", "timekey_wait", "0", NULL };

static int nr_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                   size_t errlen)
{
    struct nr *o = ins->ctx;
    const char *e;

    o->ins = ins;
    if ((o->api_key == NULL || !o->api_key[0]) && (e = getenv("NEW_RELIC_API_KEY")) && *e) {
        ls_free(o->api_key);
        o->api_key = ls_strdup(e);
    }
    if ((o->license_key == NULL || !o->license_key[0]) &&
        (e = getenv("NEW_RELIC_LICENSE_KEY")) && *e) {
        ls_free(o->license_key);
        o->license_key = ls_strdup(e);
    }
    if ((o->api_key == NULL || !o->api_key[0]) &&
        (o->license_key == NULL || !o->license_key[0])) {
        snprintf(err, errlen, "%s:%d: 'api_key' or 'license_key' parameter is required",
                 sec->file, sec->line);
        return LS_ERROR;
    }
    if (strncmp(o->base_uri, "http://", 7) != 0 && strncmp(o->base_uri, "https://", 8) != 0) {
        ls_conf_param_error(sec, "base_uri", err, errlen, "base_uri '%s' is not an http(s) URL",
                            o->base_uri);
        return LS_ERROR;
    }
    return ls_compress_load(LS_COMPRESS_GZIP, err, errlen);
}

/* ---- one chunk ---- */

struct payload {
    int fd;
    uint64_t size;
};

struct nr_job {
    struct nr *o;
    struct ls_chunk *c;
    struct ls_buf events;       /* every record's log object, back to back */
    size_t *ev_off;
    size_t nev, capev;
    struct payload *pl;         /* the chunk's payloads, gzip'd, in order */
    size_t npl, cappl;
    size_t next;                /* payload to send */
    uint64_t too_big;           /* records left out: over the limit alone */
    int rc;
    char err[300];
};

/* package_record: the log object of one [time, record] entry into j->events */
static void nr_event(struct nr_job *j, const msgpack_object *e, struct ls_arena *a)
{
    struct ls_record rec;
    struct ls_time t;
    const struct ls_field *ts, *msg;
    struct ls_value mv;
    bool has_msg = false;
    size_t off = j->events.len;

    if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size < 2 ||
        !ls_msgpack_event_time(&e->via.array.ptr[0], &t)) {
        return;
    }
    ls_record_init(&rec, a);
    if (ls_msgpack_map_to_record(&e->via.array.ptr[1], &rec) != LS_OK || rec.nfields == 0) {
        ls_record_release(&rec);
        return;
    }
    ls_buf_append(&j->events, "{\"timestamp\":", 13);
    ts = ls_record_get(&rec, "timestamp", 9);
    if (ts && ts->v.type != LS_V_NULL && !(ts->v.type == LS_V_BOOL && !ts->v.u.b)) {
        ls_json_put_value(&j->events, &ts->v);
    } else {
        ls_buf_printf(&j->events, "%lld", (long long)t.sec * 1000 + t.nsec / 1000000);
    }
    /* "log" wins over "message"; both leave the attributes */
    if ((msg = ls_record_get(&rec, "message", 7)) != NULL) {
        mv = msg->v;
        has_msg = true;
        ls_record_del(&rec, "message", 7);
    }
    if ((msg = ls_record_get(&rec, "log", 3)) != NULL) {
        mv = msg->v;
        has_msg = true;
        ls_record_del(&rec, "log", 3);
    }
    ls_buf_append(&j->events, ",\"attributes\":", 14);
    ls_json_put_record(&j->events, &rec);
    if (j->events.len && j->events.p[j->events.len - 1] == '\n') {
        j->events.len--;
    }
    if (has_msg) {
        ls_buf_append(&j->events, ",\"message\":", 11);
        ls_json_put_value(&j->events, &mv);
    }
    ls_buf_putc(&j->events, '}');
    if (j->nev == j->capev) {
        j->capev = j->capev ? j->capev * 2 : 1024;
        j->ev_off = ls_realloc(j->ev_off, (j->capev + 1) * sizeof(size_t));
    }
    j->ev_off[j->nev++] = off;
    j->ev_off[j->nev] = j->events.len;
    ls_record_release(&rec);
}

/* get_compressed_payloads over events [from, to): gzip them as one payload, or halves */
static int nr_split(struct nr_job *j, size_t from, size_t to)
{
    struct ls_buf body;
    char cerr[200] = "";
    uint64_t size = 0;
    int fd, rc;

    if (from >= to) {
        return LS_OK;
    }
    ls_buf_init(&body, 0);
    ls_buf_printf(&body, "[{\"common\":{\"attributes\":{\"plugin\":{\"type\":\"logship\","
                  "\"version\":\"%s\"}}},\"logs\":[", LS_VERSION);
    for (size_t i = from; i < to; i++) {
        if (i > from) {
            ls_buf_putc(&body, ',');
        }
        ls_buf_append(&body, j->events.p + j->ev_off[i], j->ev_off[i + 1] - j->ev_off[i]);
    }
    ls_buf_append(&body, "]}]", 3);
    fd = memfd_create("logship-newrelic", MFD_CLOEXEC);
    if (fd < 0) {
        snprintf(j->err, sizeof(j->err), "memfd_create failed (%d: %s)", errno, strerror(errno));
        ls_buf_release(&body);
        return LS_ERROR;
    }
    rc = ls_compress_mem(LS_COMPRESS_GZIP, 6, body.p, body.len, fd, &size, cerr, sizeof(cerr));
    ls_buf_release(&body);
    if (rc != LS_OK) {
        snprintf(j->err, sizeof(j->err), "compressing a payload of chunk %s failed: %s",
                 ls_chunk_info(j->c)->id, cerr);
        close(fd);
        return LS_ERROR;
    }
    if (size <= NR_MAX_PAYLOAD) {
        if (j->npl == j->cappl) {
            j->cappl = j->cappl ? 2 * j->cappl : 4;
            j->pl = ls_realloc(j->pl, j->cappl * sizeof(*j->pl));
        }
        j->pl[j->npl].fd = fd;
        j->pl[j->npl++].size = size;
        return LS_OK;
    }
    close(fd);
    if (to - from == 1) {
        j->too_big++;
        return LS_OK;
    }
    if (nr_split(j, from, from + (to - from) / 2) != LS_OK) {
        return LS_ERROR;
    }
    return nr_split(j, from + (to - from) / 2, to);
}

/* Worker: the chunk's log objects, then its payloads. */
static void nr_build(void *arg)
{
    struct nr_job *j = arg;
    struct ls_chunk_entries *en = ls_chunk_entries_open(j->c);
    const msgpack_object *e;
    struct ls_arena a;
    bool failed;

    j->rc = LS_ERROR;
    if (en == NULL) {
        snprintf(j->err, sizeof(j->err), "cannot read chunk %s", ls_chunk_info(j->c)->id);
        return;
    }
    ls_arena_init(&a, 4096);
    while ((e = ls_chunk_entries_next(en)) != NULL) {
        ls_arena_reset(&a);
        nr_event(j, e, &a);
    }
    failed = ls_chunk_entries_failed(en);
    ls_chunk_entries_close(en);
    ls_arena_release(&a);
    if (failed) {
        snprintf(j->err, sizeof(j->err), "cannot read chunk %s", ls_chunk_info(j->c)->id);
        return;
    }
    j->rc = nr_split(j, 0, j->nev);
}

static void nr_job_free(struct nr_job *j)
{
    for (size_t i = 0; i < j->npl; i++) {
        close(j->pl[i].fd);
    }
    ls_free(j->pl);
    ls_buf_release(&j->events);
    ls_free(j->ev_off);
    ls_free(j);
}

static void nr_send(struct nr_job *j);

static void nr_sent(struct ls_http_resp *resp, void *arg)
{
    struct nr_job *j = arg;
    struct nr *o = j->o;
    char msg[400], state[64];

    if (resp->status >= 200 && resp->status < 300) {
        o->ins->metrics.write_bytes += j->pl[j->next].size;
        j->next++;
        if (j->next < j->npl) {
            /* the payloads accepted so far are not sent again by a retry */
            snprintf(state, sizeof(state), "nr-payloads %zu", j->next);
            if (ls_chunk_set_state(j->c, state) != LS_OK) {
                ls_output_write_done(o->ins, j->c, LS_ERROR, "cannot store the chunk's state");
                nr_job_free(j);
                return;
            }
        }
        nr_send(j);
        return;
    }
    ls_output_write_done(o->ins, j->c, ls_http_refusal(resp, "Response was", msg, sizeof(msg)),
                         msg);
    nr_job_free(j);
}

static void nr_send(struct nr_job *j)
{
    struct nr *o = j->o;
    struct ls_http_req req;
    struct ls_buf h;
    uint64_t total = 0;

    if (j->next >= j->npl) {
        for (size_t i = 0; i < j->npl; i++) {
            total += j->pl[i].size;
        }
        if (j->npl) {
            ls_output_delivered(o->ins, j->c, o->base_uri, total);
        }
        ls_output_write_done(o->ins, j->c, LS_OK, NULL);
        nr_job_free(j);
        return;
    }
    ls_buf_init(&h, 0);
    ls_http_hdr_add(&h, "X-Event-Source: logs");
    ls_http_hdr_add(&h, "Content-Encoding: gzip");
    ls_http_hdr_add(&h, "Content-Type: application/json");
    if (o->api_key && o->api_key[0]) {
        ls_http_hdr_set(&h, "X-Insert-Key", o->api_key);
    } else {
        ls_http_hdr_set(&h, "X-License-Key", o->license_key);
    }
    ls_http_hdr_add(&h, "Expect:");
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = o->base_uri;
    req.headers = &h;
    req.body_fd = j->pl[j->next].fd;
    req.body_file_len = j->pl[j->next].size;
    req.connect_timeout = 60;
    req.low_speed_time = 60;
    req.verify_peer = true;
    req.max_response = 64 * 1024;
    ls_output_write_sending(o->ins, j->c);
    if (ls_http_submit(o->ins->engine, &req, nr_sent, j) != LS_OK) {
        ls_output_write_done(o->ins, j->c, LS_ERROR, "cannot start the request");
        nr_job_free(j);
    }
    ls_buf_release(&h);
}

static void nr_built(void *arg)
{
    struct nr_job *j = arg;
    struct nr *o = j->o;

    if (j->rc != LS_OK) {
        ls_output_write_done(o->ins, j->c, LS_ERROR, j->err);
        nr_job_free(j);
        return;
    }
    if (j->too_big) {
        ls_plg_error(o->ins, "Can't compress record below required maximum packet size and it "
                     "will be discarded: %llu record(s) of chunk %s",
                     (unsigned long long)j->too_big, ls_chunk_info(j->c)->id);
        o->ins->metrics.dropped += j->too_big;
    }
    nr_send(j);
}

static int nr_write(struct ls_instance *ins, struct ls_chunk *c)
{
    struct nr *o = ins->ctx;
    struct nr_job *j = ls_calloc(1, sizeof(*j));
    const char *st = ls_chunk_state(c);

    j->o = o;
    j->c = c;
    ls_buf_init(&j->events, 0);
    if (st && strncmp(st, "nr-payloads ", 12) == 0) {
        j->next = (size_t)strtoull(st + 12, NULL, 10);
    }
    if (ls_work_submit(ins->engine, nr_build, nr_built, j) != LS_OK) {
        nr_job_free(j);
        return LS_ERROR;
    }
    return LS_AGAIN;
}

const struct ls_plugin ls_plugin_out_newrelic = {
    .name = "newrelic",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "send records to New Relic's Log API (newrelic-fluentd-output)",
    .params = nr_params,
    .ctx_size = sizeof(struct nr),
    .init = nr_init,
    .output_flags = LS_OUT_BUFFERED,
    .default_formatter = "msgpack",
    .formatter_for = ls_msgpack_formatter_for,
    .default_chunk_keys = "time",
    .buffer_defaults = nr_buffer_defaults,
    .write = nr_write,
};
