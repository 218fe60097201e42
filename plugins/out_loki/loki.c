/*
 * loki.c - Grafana's fluent-plugin-grafana-loki (out_loki): each chunk is one POST of its
 * records to <url>/loki/api/v1/push as JSON streams.
 *
 * As clients/cmd/fluentd/lib/fluent/plugin/out_loki.rb: each <label> entry takes a field
 * (a record accessor; the key itself when the value is empty) out of the record into the
 * stream's labels under the key with . - / as _; extract_kubernetes_labels copies
 * kubernetes.labels; remove_keys; the rest is the line: JSON (line_format json) or
 * key=value pairs (key_value, the default: values as Ruby's to_s, " and \ escaped, quoted
 * when they hold a space or =), or with drop_single_key the only value. Records are
 * grouped into streams by their labels (extra_labels added, only string values kept, " as
 * \"), each stream's entries in time order with the time in nanoseconds; tenant (with the
 * chunk's placeholders) as X-Scope-OrgID, basic auth or a bearer token file,
 * custom_headers, compress gzip, the TLS parameters. With flush_thread_count over 1 a
 * fluentd_thread label keeps streams of chunks sent at once apart, as in the plugin.
 *
 * Answers: 2xx done; 429 and 5xx retried with backoff. The plugin drops a chunk that gets any
 * other answer (a 400 "entry too far behind", a 401) after a warning; logship makes it
 * unrecoverable instead, so it goes to <secondary> or the backup directory and is not lost.
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
#include <unistd.h>

struct loki_label {
    char *name;                 /* the label: the key with . - / as _ */
    struct ls_accessor acc;
};

struct loki {
    char *url;
    char *username;
    char *password;
    char *bearer_token_file;
    char *cert;
    char *key;
    char *ca_cert;
    char *ciphers;
    char *min_version;
    bool insecure_tls;
    struct ls_kvv custom_headers;
    char *compress_text;
    char *tenant;
    struct ls_kvv extra_labels;
    int line_format;                /* 0 json, 1 key_value */
    bool extract_kubernetes_labels;
    struct ls_strv remove_keys;
    bool drop_single_key;
    bool include_thread_label;
    /* derived */
    struct ls_instance *ins;
    bool compress;
    char *push_url;
    struct loki_label *labels;
    size_t nlabels;
    struct ls_accessor *removes;
    size_t nremoves;
    char *auth;
    int threads;
    uint64_t sent;
};

#define F(f) offsetof(struct loki, f)

static const struct ls_param loki_params[] = {
    { "url", LS_P_STR, "https://logs-prod-us-central1.grafana.net", 0, F(url),
      "Loki's base URL (the push API is <url>/loki/api/v1/push)", NULL, NULL, 0, 0 },
    { "username", LS_P_STR, NULL, LS_PF_NULLABLE, F(username), "basic authentication user",
      NULL, NULL, 0, 0 },
    { "password", LS_P_SECRET, NULL, LS_PF_NULLABLE, F(password), "its password", NULL, NULL,
      0, 0 },
    { "bearer_token_file", LS_P_STR, NULL, LS_PF_NULLABLE, F(bearer_token_file),
      "file holding a token for Authorization: Bearer (read at start)", NULL, NULL, 0, 0 },
    { "cert", LS_P_STR, NULL, LS_PF_NULLABLE, F(cert), "client certificate (PEM)", NULL, NULL,
      0, 0 },
    { "key", LS_P_STR, NULL, LS_PF_NULLABLE, F(key), "its key (PEM)", NULL, NULL, 0, 0 },
    { "ca_cert", LS_P_STR, NULL, LS_PF_NULLABLE, F(ca_cert), "CA certificates to trust", NULL,
      NULL, 0, 0 },
    { "ciphers", LS_P_STR, NULL, LS_PF_NULLABLE, F(ciphers), "OpenSSL cipher list", NULL, NULL,
      0, 0 },
    { "min_version", LS_P_STR, NULL, LS_PF_NULLABLE, F(min_version),
      "lowest TLS version (TLS1_1, TLS1_2, TLS1_3)", NULL, NULL, 0, 0 },
    { "insecure_tls", LS_P_BOOL, "false", 0, F(insecure_tls),
      "do not check the server's certificate", NULL, NULL, 0, 0 },
    { "custom_headers", LS_P_HASH, NULL, 0, F(custom_headers), "more request headers", NULL,
      NULL, 0, 0 },
    { "compress", LS_P_STR, NULL, LS_PF_NULLABLE, F(compress_text),
      "gzip: a gzip body (Content-Encoding: gzip)", NULL, NULL, 0, 0 },
    { "tenant", LS_P_STR, NULL, LS_PF_NULLABLE, F(tenant),
      "X-Scope-OrgID (placeholders from the chunk's keys)", NULL, NULL, 0, 0 },
    { "extra_labels", LS_P_HASH, NULL, 0, F(extra_labels), "labels added to every stream",
      NULL, NULL, 0, 0 },
    { "line_format", LS_P_ENUM, "key_value", 0, F(line_format),
      "json, or key_value (k=v pairs)", NULL, "json|key_value", 0, 0 },
    { "extract_kubernetes_labels", LS_P_BOOL, "false", 0, F(extract_kubernetes_labels),
      "kubernetes.labels as stream labels", NULL, NULL, 0, 0 },
    { "remove_keys", LS_P_ARRAY, NULL, 0, F(remove_keys),
      "fields left out of the line (record accessors)", NULL, NULL, 0, 0 },
    { "drop_single_key", LS_P_BOOL, "false", 0, F(drop_single_key),
      "a record of one field: the line is its value", NULL, NULL, 0, 0 },
    { "include_thread_label", LS_P_BOOL, "true", 0, F(include_thread_label),
      "with flush_thread_count over 1, a fluentd_thread label", NULL, NULL, 0, 0 },
    { "label", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "<label> section: name field_or_accessor (empty: the field of that name)", NULL, NULL, 0,
      0 },
    LS_PARAM_END
};

static char *loki_label_name(const char *k)
{
    char *s = ls_strdup(k), *p;

    for (p = s; *p; p++) {
        if (*p == '.' || *p == '-' || *p == '/') {
            *p = '_';
        }
    }
    return s;
}

static int loki_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                     size_t errlen)
{
    struct loki *o = ins->ctx;
    struct ls_conf_section *ch;
    char msg[300];
    size_t i;

    o->ins = ins;
    if (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0) {
        ls_conf_param_error(sec, "url", err, errlen, "URL parameter must have HTTP/HTTPS scheme");
        return LS_ERROR;
    }
    o->push_url = ls_asprintf("%s/loki/api/v1/push", o->url);
    if (o->compress_text) {
        if (strcmp(o->compress_text, "gzip") != 0) {
            ls_conf_param_error(sec, "compress", err, errlen, "valid options are gzip");
            return LS_ERROR;
        }
        o->compress = true;
    }
    for (ch = sec->children; ch; ch = ch->next) {
        struct ls_conf_param *p;
        if (strcmp(ch->name, "label") != 0) {
            continue;
        }
        for (p = ch->params; p; p = p->next) {
            struct loki_label *l;
            p->used = true;
            o->labels = ls_realloc(o->labels, (o->nlabels + 1) * sizeof(*o->labels));
            l = &o->labels[o->nlabels];
            memset(l, 0, sizeof(*l));
            if (ls_accessor_compile(&l->acc, p->value[0] ? p->value : p->key, msg,
                                    sizeof(msg)) != LS_OK) {
                snprintf(err, errlen, "%s:%d: %s", p->file, p->line, msg);
                return LS_ERROR;
            }
            l->name = loki_label_name(p->key);
            o->nlabels++;
        }
    }
    o->removes = ls_calloc(o->remove_keys.n + 1, sizeof(*o->removes));
    for (i = 0; i < o->remove_keys.n; i++) {
        if (ls_accessor_compile(&o->removes[i], o->remove_keys.v[i], msg, sizeof(msg)) != LS_OK) {
            ls_conf_param_error(sec, "remove_keys", err, errlen, "%s", msg);
            return LS_ERROR;
        }
        o->nremoves++;
    }
    if (o->username) {
        char *up = ls_asprintf("%s:%s", o->username, o->password ? o->password : "");
        char *b = ls_malloc(4 * ((strlen(up) + 2) / 3) + 1);
        ls_base64((const unsigned char *)up, strlen(up), b);
        o->auth = ls_asprintf("Authorization: Basic %s", b);
        ls_free(b);
        ls_free(up);
    }
    if (o->bearer_token_file) {
        FILE *f = fopen(o->bearer_token_file, "r");
        char tok[4096];
        size_t n;
        if (f == NULL) {
            ls_conf_param_error(sec, "bearer_token_file", err, errlen,
                                "bearer_token_file %s not found", o->bearer_token_file);
            return LS_ERROR;
        }
        n = fread(tok, 1, sizeof(tok) - 1, f);
        fclose(f);
        tok[n] = '\0';
        if (n == 0) {
            ls_conf_param_error(sec, "bearer_token_file", err, errlen,
                                "bearer_token_file %s is empty", o->bearer_token_file);
            return LS_ERROR;
        }
        /* the plugin sends the file as it is: a trailing newline would break the header */
        while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r')) {
            tok[--n] = '\0';
        }
        ls_free(o->auth);
        o->auth = ls_asprintf("Authorization: Bearer %s", tok);
        ls_plg_info(ins, "will use Bearer token from bearer_token_file %s in Authorization "
                    "header", o->bearer_token_file);
    }
    if (o->ca_cert && access(o->ca_cert, R_OK) != 0) {
        ls_conf_param_error(sec, "ca_cert", err, errlen, "CA certificate file %s not found",
                            o->ca_cert);
        return LS_ERROR;
    }
    if (o->compress && ls_compress_load(LS_COMPRESS_GZIP, err, errlen) != LS_OK) {
        return LS_ERROR;
    }
    return LS_OK;
}

/* ---- one chunk ---- */

struct loki_entry {
    int64_t ns;
    size_t seq;                 /* arrival order, for a stable sort */
    size_t off, len;            /* the line in job->lines */
};

struct loki_stream {
    char *key;                  /* the raw labels, for grouping (as the plugin's Hash key) */
    char *labels;               /* the formatted {"k":"v",...} */
    struct loki_entry *e;
    size_t n, cap;
};

struct loki_job {
    struct loki *o;
    struct ls_chunk *c;
    int thread;
    int fd;
    uint64_t size;
    int rc;
    char err[300];
    struct loki_stream *s;
    size_t ns;
    struct ls_buf lines;
};

/* Ruby's to_s of a value, escaped for key_value: " and \ get a backslash. */
static void kv_value(struct ls_buf *out, const struct ls_value *v, struct ls_buf *tmp)
{
    size_t i;
    bool quote = false;

    ls_buf_reset(tmp);
    ls_ruby_put_value(tmp, v, false);
    for (i = 0; i < tmp->len; i++) {
        if (tmp->p[i] == ' ' || tmp->p[i] == '=') {
            quote = true;
        }
    }
    if (quote) {
        ls_buf_putc(out, '"');
    }
    for (i = 0; i < tmp->len; i++) {
        if (tmp->p[i] == '"' || tmp->p[i] == '\\') {
            ls_buf_putc(out, '\\');
        }
        ls_buf_putc(out, tmp->p[i]);
    }
    if (quote) {
        ls_buf_putc(out, '"');
    }
}

static int entry_cmp(const void *a, const void *b)
{
    const struct loki_entry *x = a, *y = b;

    if (x->ns != y->ns) {
        return x->ns < y->ns ? -1 : 1;
    }
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* One [time, record] entry: its labels and line into the job. */
static void loki_entry(struct loki_job *j, const msgpack_object *e, size_t seq,
                       struct ls_arena *a, struct ls_buf *key, struct ls_buf *fmt,
                       struct ls_buf *tmp)
{
    struct loki *o = j->o;
    struct ls_record rec;
    struct ls_time t;
    struct ls_value v;
    struct loki_stream *st = NULL;
    size_t i, off;
    bool first = true;

    if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size < 2 ||
        !ls_msgpack_event_time(&e->via.array.ptr[0], &t)) {
        return;
    }
    ls_record_init(&rec, a);
    if (ls_msgpack_map_to_record(&e->via.array.ptr[1], &rec) != LS_OK) {
        ls_record_release(&rec);
        return;
    }
    /* labels: the raw values for grouping, the formatted object for the stream */
    ls_buf_reset(key);
    ls_buf_reset(fmt);
    ls_buf_putc(fmt, '{');
    for (i = 0; i < o->nlabels; i++) {
        bool have = ls_accessor_get(&o->labels[i].acc, &rec, &v);
        ls_buf_printf(key, "%s=", o->labels[i].name);
        if (have) {
            ls_json_put_value(key, &v);
        }
        ls_buf_putc(key, '\n');
        /* extra_labels win over a record label of the same name */
        if (have && v.type == LS_V_STR && ls_kvv_get(&o->extra_labels, o->labels[i].name) == NULL) {
            ls_buf_reset(tmp);
            for (off = 0; off < v.u.s.len; off++) {
                if (v.u.s.p[off] == '"') {
                    ls_buf_putc(tmp, '\\');
                }
                ls_buf_putc(tmp, v.u.s.p[off]);
            }
            if (!first) {
                ls_buf_putc(fmt, ',');
            }
            ls_json_put_str(fmt, o->labels[i].name, strlen(o->labels[i].name));
            ls_buf_putc(fmt, ':');
            ls_json_put_str(fmt, tmp->p ? tmp->p : "", tmp->len);
            first = false;
        }
        if (have) {
            ls_accessor_del(&o->labels[i].acc, &rec);
        }
    }
    if (o->extract_kubernetes_labels) {
        struct ls_field *k = ls_record_get(&rec, "kubernetes", 10);
        struct ls_record kr, lr;
        ls_record_init(&kr, a);
        ls_record_init(&lr, a);
        if (k && k->v.type == LS_V_JSON &&
            ls_json_parse_object(k->v.u.s.p, k->v.u.s.len, &kr) == LS_OK) {
            struct ls_field *l = ls_record_get(&kr, "labels", 6);
            if (l && l->v.type == LS_V_JSON &&
                ls_json_parse_object(l->v.u.s.p, l->v.u.s.len, &lr) == LS_OK) {
                for (i = 0; i < lr.nfields; i++) {
                    char *nk = ls_strndup(lr.fields[i].key, lr.fields[i].key_len), *name;
                    name = loki_label_name(nk);
                    ls_buf_printf(key, "%s=", name);
                    ls_json_put_value(key, &lr.fields[i].v);
                    ls_buf_putc(key, '\n');
                    if (lr.fields[i].v.type == LS_V_STR && !ls_kvv_get(&o->extra_labels, name)) {
                        if (!first) {
                            ls_buf_putc(fmt, ',');
                        }
                        ls_json_put_str(fmt, name, strlen(name));
                        ls_buf_putc(fmt, ':');
                        ls_json_put_str(fmt, lr.fields[i].v.u.s.p, lr.fields[i].v.u.s.len);
                        first = false;
                    }
                    ls_free(name);
                    ls_free(nk);
                }
            }
        }
        ls_record_release(&kr);
        ls_record_release(&lr);
    }
    if (o->include_thread_label && o->threads > 1) {
        char name[32];
        snprintf(name, sizeof(name), "flush_thread_%d", j->thread);
        ls_buf_printf(key, "fluentd_thread=%s\n", name);
        if (!ls_kvv_get(&o->extra_labels, "fluentd_thread")) {
            ls_buf_printf(fmt, "%s\"fluentd_thread\":\"%s\"", first ? "" : ",", name);
            first = false;
        }
    }
    for (i = 0; i < o->extra_labels.n; i++) {
        const char *val = o->extra_labels.v[i].value;
        if (!first) {
            ls_buf_putc(fmt, ',');
        }
        ls_json_put_str(fmt, o->extra_labels.v[i].key, strlen(o->extra_labels.v[i].key));
        ls_buf_putc(fmt, ':');
        ls_buf_reset(tmp);
        for (off = 0; val[off]; off++) {
            if (val[off] == '"') {
                ls_buf_putc(tmp, '\\');
            }
            ls_buf_putc(tmp, val[off]);
        }
        ls_json_put_str(fmt, tmp->p ? tmp->p : "", tmp->len);
        first = false;
    }
    ls_buf_putc(fmt, '}');
    for (i = 0; i < o->nremoves; i++) {
        ls_accessor_del(&o->removes[i], &rec);
    }
    /* the line */
    off = j->lines.len;
    if (o->drop_single_key && rec.nfields == 1) {
        if (rec.fields[0].v.type == LS_V_STR) {
            ls_buf_append(&j->lines, rec.fields[0].v.u.s.p, rec.fields[0].v.u.s.len);
        } else {
            ls_ruby_put_value(&j->lines, &rec.fields[0].v, false);
        }
    } else if (o->line_format == 0) {
        ls_json_put_record(&j->lines, &rec);
    } else {
        for (i = 0; i < rec.nfields; i++) {
            if (i) {
                ls_buf_putc(&j->lines, ' ');
            }
            ls_buf_append(&j->lines, rec.fields[i].key, rec.fields[i].key_len);
            ls_buf_putc(&j->lines, '=');
            kv_value(&j->lines, &rec.fields[i].v, tmp);
        }
    }
    /* the stream of these labels */
    for (i = 0; i < j->ns; i++) {
        if (strlen(j->s[i].key) == key->len &&
            (key->len == 0 || memcmp(j->s[i].key, key->p, key->len) == 0)) {
            st = &j->s[i];
            break;
        }
    }
    if (st == NULL) {
        j->s = ls_realloc(j->s, (j->ns + 1) * sizeof(*j->s));
        st = &j->s[j->ns++];
        memset(st, 0, sizeof(*st));
        st->key = ls_strndup(key->p ? key->p : "", key->len);
        st->labels = ls_strndup(fmt->p, fmt->len);
    }
    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 256;
        st->e = ls_realloc(st->e, st->cap * sizeof(*st->e));
    }
    st->e[st->n].ns = t.sec * 1000000000 + t.nsec;
    st->e[st->n].seq = seq;
    st->e[st->n].off = off;
    st->e[st->n].len = j->lines.len - off;
    st->n++;
    ls_record_release(&rec);
}

/* Worker: the chunk into streams, then the JSON body into a memfd (gzip'd with compress). */
static void loki_build(void *arg)
{
    struct loki_job *j = arg;
    struct ls_chunk_entries *en = ls_chunk_entries_open(j->c);
    const msgpack_object *e;
    struct ls_arena a;
    struct ls_buf key, fmt, tmp, body;
    size_t seq = 0, i, k;
    char cerr[200] = "";

    j->rc = LS_ERROR;
    ls_buf_init(&j->lines, 0);
    if (en == NULL) {
        snprintf(j->err, sizeof(j->err), "cannot read chunk %s", ls_chunk_info(j->c)->id);
        return;
    }
    ls_arena_init(&a, 4096);
    ls_buf_init(&key, 0);
    ls_buf_init(&fmt, 0);
    ls_buf_init(&tmp, 0);
    ls_buf_init(&body, 0);
    while ((e = ls_chunk_entries_next(en)) != NULL) {
        ls_arena_reset(&a);
        loki_entry(j, e, seq++, &a, &key, &fmt, &tmp);
    }
    if (ls_chunk_entries_failed(en)) {
        snprintf(j->err, sizeof(j->err), "cannot read chunk %s", ls_chunk_info(j->c)->id);
        goto out;
    }
    /* {"streams":[{"stream":{...},"values":[["ns","line"],...]},...]} */
    ls_buf_append(&body, "{\"streams\":[", 12);
    for (i = 0; i < j->ns; i++) {
        struct loki_stream *st = &j->s[i];
        qsort(st->e, st->n, sizeof(*st->e), entry_cmp);
        ls_buf_printf(&body, "%s{\"stream\":%s,\"values\":[", i ? "," : "", st->labels);
        for (k = 0; k < st->n; k++) {
            ls_buf_printf(&body, "%s[\"%lld\",", k ? "," : "", (long long)st->e[k].ns);
            ls_json_put_str(&body, j->lines.p + st->e[k].off, st->e[k].len);
            ls_buf_putc(&body, ']');
        }
        ls_buf_append(&body, "]}", 2);
    }
    ls_buf_append(&body, "]}", 2);
    j->fd = memfd_create("logship-loki-push", MFD_CLOEXEC);
    if (j->fd < 0) {
        snprintf(j->err, sizeof(j->err), "memfd_create failed (%d: %s)", errno, strerror(errno));
    } else if (ls_compress_mem(j->o->compress ? LS_COMPRESS_GZIP : LS_COMPRESS_TEXT, -1,
                               body.p, body.len, j->fd, &j->size, cerr,
                               sizeof(cerr)) != LS_OK) {
        snprintf(j->err, sizeof(j->err), "building the push of chunk %s failed: %s",
                 ls_chunk_info(j->c)->id, cerr);
    } else {
        j->rc = LS_OK;
    }
out:
    ls_chunk_entries_close(en);
    ls_buf_release(&body);
    ls_buf_release(&key);
    ls_buf_release(&fmt);
    ls_buf_release(&tmp);
    ls_arena_release(&a);
}

static void loki_job_free(struct loki_job *j)
{
    size_t i;

    if (j->fd >= 0) {
        close(j->fd);
    }
    for (i = 0; i < j->ns; i++) {
        ls_free(j->s[i].key);
        ls_free(j->s[i].labels);
        ls_free(j->s[i].e);
    }
    ls_free(j->s);
    ls_buf_release(&j->lines);
    ls_free(j);
}

static void loki_sent(struct ls_http_resp *resp, void *arg)
{
    struct loki_job *j = arg;
    struct loki *o = j->o;
    char msg[400];
    int rc;

    if (resp->status >= 200 && resp->status < 300) {
        o->ins->metrics.write_bytes += j->size;
        ls_output_delivered(o->ins, j->c, o->push_url, j->size);
        rc = LS_OK;
    } else {
        char what[300];
        /* only 429 and 5xx are retried; the plugin drops the chunk on any other answer */
        snprintf(what, sizeof(what), "failed to write post to %s", o->push_url);
        rc = ls_http_refusal(resp, what, msg, sizeof(msg));
    }
    ls_output_write_done(o->ins, j->c, rc, rc == LS_OK ? NULL : msg);
    loki_job_free(j);
}

static void loki_built(void *arg)
{
    struct loki_job *j = arg;
    struct loki *o = j->o;
    struct ls_http_req req;
    struct ls_buf h;

    if (j->rc != LS_OK) {
        ls_output_write_done(o->ins, j->c, LS_ERROR, j->err);
        loki_job_free(j);
        return;
    }
    ls_buf_init(&h, 0);
    ls_http_hdr_add_kvv(&h, &o->custom_headers);
    ls_http_hdr_add(&h, "Content-Type: application/json");
    if (o->auth) {
        ls_http_hdr_add(&h, o->auth);
    }
    if (o->tenant) {
        char *t = ls_chunk_expand_str(j->c, o->tenant);
        ls_http_hdr_set(&h, "X-Scope-OrgID", t ? t : "");
        ls_free(t);
    }
    if (o->compress) {
        ls_http_hdr_add(&h, "Content-Encoding: gzip");
    }
    ls_http_hdr_add(&h, "Expect:");
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = o->push_url;
    req.headers = &h;
    req.body_fd = j->fd;
    req.body_file_len = j->size;
    req.connect_timeout = 60;
    req.low_speed_time = 60;
    req.verify_peer = !o->insecure_tls;
    req.ca_file = o->ca_cert;
    req.client_cert = o->cert;
    req.client_key = o->key;
    req.ciphers = o->ciphers;
    req.tls_min = o->min_version == NULL ? 0 : strstr(o->min_version, "1_3") ? 3
                  : strstr(o->min_version, "1_2") ? 2 : strstr(o->min_version, "1_1") ? 1 : 0;
    req.max_response = 64 * 1024;
    ls_output_write_sending(o->ins, j->c);
    if (ls_http_submit(o->ins->engine, &req, loki_sent, j) != LS_OK) {
        ls_output_write_done(o->ins, j->c, LS_ERROR, "cannot start the push request");
        loki_job_free(j);
    }
    ls_buf_release(&h);
}

static int loki_write(struct ls_instance *ins, struct ls_chunk *c)
{
    struct loki *o = ins->ctx;
    struct loki_job *j = ls_calloc(1, sizeof(*j));

    j->o = o;
    j->c = c;
    j->fd = -1;
    o->threads = ls_output_concurrency(ins);      /* the buffer exists only after init */
    j->thread = o->threads > 1 ? (int)(o->sent++ % (uint64_t)o->threads) : 0;
    if (ls_work_submit(ins->engine, loki_build, loki_built, j) != LS_OK) {
        ls_free(j);
        return LS_ERROR;
    }
    return LS_AGAIN;
}

static void loki_destroy(struct ls_instance *ins)
{
    struct loki *o = ins->ctx;
    size_t i;

    for (i = 0; i < o->nlabels; i++) {
        ls_free(o->labels[i].name);
        ls_accessor_release(&o->labels[i].acc);
    }
    ls_free(o->labels);
    for (i = 0; i < o->nremoves; i++) {
        ls_accessor_release(&o->removes[i]);
    }
    ls_free(o->removes);
    ls_free(o->push_url);
    ls_free(o->auth);
}

const struct ls_plugin ls_plugin_out_loki = {
    .name = "loki",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "push records to Grafana Loki (fluent-plugin-grafana-loki)",
    .params = loki_params,
    .ctx_size = sizeof(struct loki),
    .init = loki_init,
    .destroy = loki_destroy,
    .output_flags = LS_OUT_BUFFERED,
    .default_formatter = "msgpack",
    .formatter_for = ls_msgpack_formatter_for,
    .write = loki_write,
};
