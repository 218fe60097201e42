/*
 * k8s_meta.c - fluent-plugin-kubernetes_metadata_filter's kubernetes_metadata filter: the
 * pod a container log line came from, read from the tag in_tail gives it
 * (kubernetes.var.log.containers.<pod>_<namespace>_<container>-<id>.log, or /var/log/pods),
 * added to the record as "kubernetes" and "docker", with the pod's and its namespace's
 * metadata from the Kubernetes API when there is one.
 *
 * As the plugin's v3 (lib/fluent/plugin/filter_kubernetes_metadata.rb,
 * kubernetes_metadata_common.rb, kubernetes_metadata_cache_strategy.rb):
 * - kubernetes_url, else https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/api, else
 *   none: then only what the tag says (container_name, namespace_name, pod_name, and the
 *   container id as docker.container_id). ca.crt and token of secret_dir (the pod's service
 *   account) are the defaults of ca_file and bearer_token_file. With an API, a GET of it at
 *   start must succeed (the plugin's api_valid?), or the configuration fails.
 * - A pod first seen is looked up (GET .../namespaces/NS/pods/NAME, then the namespace): its
 *   uid, IP, node, labels, the annotations annotation_match selects, the API's URL, and for
 *   the record's container its image, image id and container id; the namespace's uid, labels
 *   and annotations. A pod the API does not know whose namespace is older than the record
 *   gets the cache key as pod_id; one whose namespace is unknown too is an orphan
 *   (namespace_name orphaned_namespace_name, the real one as orphaned_namespace). The result is
 *   kept per container (cache_size entries, least recently used out, cache_ttl seconds).
 * - The record becomes record.merge("docker" => ..., "kubernetes" => ...): existing keys keep
 *   their place, docker only with a container id; the nested key order is the plugin's.
 * - lookup_from_k8s_field: a record that already has kubernetes.namespace_name/pod_name/
 *   container_name and docker.container_id is looked up by those.
 *
 * Differs: the plugin's watch threads (which update cached pods as they change) are not
 * built; a cached pod is looked up again after cache_ttl. A lookup that fails (the API down)
 * is remembered for 5 seconds: the plugin retries it for every record, each waiting up to
 * open_timeout + read_timeout on the one thread that handles records; here it is done on the
 * loop thread too, which is why the failures are not retried per record. Lookups use the
 * logship-http helper (ls_http_fetch), so TLS is libcurl's, as everywhere in logship.
 */
#include "plugin.h"
#include "parser.h"
#include "http.h"
#include "json.h"
#include "log.h"

#include <ctype.h>
#include <math.h>
#include <time.h>

#define NEG_TTL 5.0

struct kcont {
    char *name, *image, *image_id, *container_id;
};

struct kentry {
    char *key;
    double expires;                 /* monotonic; INFINITY: never */
    char *meta;                     /* the pod's and namespace's metadata, a JSON object */
    struct kcont *conts;
    size_t nconts;
    struct kentry *hnext;           /* hash chain */
    struct kentry *prev, *next;     /* recency list, most recent first */
};

struct k8s {
    char *kubernetes_url;
    int64_t cache_size;
    int64_t cache_ttl;
    char *ignore_nil;
    bool watch;
    char *api_version;
    char *client_cert, *client_key, *ca_file;
    bool verify_ssl;
    int64_t open_timeout, read_timeout;
    char *tag_regexp;
    char *bearer_token_file;
    char *secret_dir;
    struct ls_strv annotation_match;
    int64_t stats_interval;
    bool allow_orphans;
    char *orphaned_namespace_name, *orphaned_namespace_id;
    bool lookup_from_k8s_field;
    bool ssl_partial_chain;
    bool skip_labels, skip_pod_labels, skip_namespace_labels, skip_container_metadata;
    bool skip_master_url, skip_namespace_metadata, include_ownerrefs_metadata;
    char *test_api_adapter;
    int64_t watch_retry_interval, watch_retry_exponential_backoff_base, watch_retry_max_times;

    char *url;                      /* the API's URL in use, NULL: none */
    char *master_url;               /* the URL as configured (the plugin's master_url) */
    char *token_file, *ca;          /* in use (secret_dir's when not given) */
    struct ls_regex *tag_re;
    struct ls_regex **ann_re;
    size_t nann;
    struct ls_accessor acc[4];      /* lookup_from_k8s_field's paths */
    struct kentry **buckets;
    size_t nbuckets, nentries;
    struct kentry *head, *tail;
    struct ls_arena arena;          /* per record */
};

#define F(f) offsetof(struct k8s, f)

/* the plugin's REGEX_VAR_LOG_PODS and REGEX_VAR_LOG_CONTAINERS */
#define RE_VAR_LOG_PODS "(var\\.log\\.pods)\\.(?<namespace>[^_]+)_" \
    "(?<pod_name>[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)_" \
    "(?<pod_uuid>[a-z0-9-]*)\\.(?<container_name>.+)\\..*\\.log$"
#define RE_VAR_LOG_CONTAINERS "(var\\.log\\.containers)\\." \
    "(?<pod_name>[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)_" \
    "(?<namespace>[^_]+)_(?<container_name>.+)-(?<docker_id>[a-z0-9]{64})\\.log$"

static const struct ls_param k8s_params[] = {
    { "kubernetes_url", LS_P_STR, NULL, LS_PF_NULLABLE, F(kubernetes_url),
      "the API (default: $KUBERNETES_SERVICE_HOST and _PORT, else none: the tag only)", NULL,
      NULL, 0, 0 },
    { "cache_size", LS_P_INT, "1000", 0, F(cache_size), "containers whose metadata is kept",
      NULL, NULL, 1, 10000000 },
    { "cache_ttl", LS_P_INT, "3600", 0, F(cache_ttl),
      "seconds a container's metadata is kept (< 0: for ever)", NULL, NULL, 0, 0 },
    { "ignore_nil", LS_P_STR, "true", 0, F(ignore_nil), "accepted (the plugin's cache option)",
      NULL, NULL, 0, 0 },
    { "watch", LS_P_BOOL, "true", 0, F(watch),
      "accepted; pods are looked up again after cache_ttl instead of watched", NULL, NULL, 0,
      0 },
    { "apiVersion", LS_P_STR, "v1", 0, F(api_version), "the API version", NULL, NULL, 0, 0 },
    { "client_cert", LS_P_STR, NULL, LS_PF_NULLABLE, F(client_cert),
      "TLS client certificate (PEM)", NULL, NULL, 0, 0 },
    { "client_key", LS_P_STR, NULL, LS_PF_NULLABLE, F(client_key), "its key (PEM)", NULL, NULL,
      0, 0 },
    { "ca_file", LS_P_STR, NULL, LS_PF_NULLABLE, F(ca_file),
      "CA of the API (default: secret_dir/ca.crt)", NULL, NULL, 0, 0 },
    { "verify_ssl", LS_P_BOOL, "true", 0, F(verify_ssl), "verify the API's certificate", NULL,
      NULL, 0, 0 },
    { "open_timeout", LS_P_INT, "3", 0, F(open_timeout), "connect timeout, seconds", NULL,
      NULL, 0, 0 },
    { "read_timeout", LS_P_INT, "10", 0, F(read_timeout), "response timeout, seconds", NULL,
      NULL, 0, 0 },
    { "tag_to_kubernetes_name_regexp", LS_P_STR, "(" RE_VAR_LOG_PODS "|" RE_VAR_LOG_CONTAINERS ")",
      0, F(tag_regexp),
      "named groups namespace, pod_name, container_name and docker_id or pod_uuid", NULL, NULL,
      0, 0 },
    { "bearer_token_file", LS_P_STR, NULL, LS_PF_NULLABLE, F(bearer_token_file),
      "token for the API (default: secret_dir/token)", NULL, NULL, 0, 0 },
    { "secret_dir", LS_P_STR, "/var/run/secrets/kubernetes.io/serviceaccount", 0,
      F(secret_dir), "the pod's service account (ca.crt, token)", NULL, NULL, 0, 0 },
    { "annotation_match", LS_P_ARRAY, NULL, 0, F(annotation_match),
      "regexps: the annotations whose names match are added", NULL, NULL, 0, 0 },
    { "stats_interval", LS_P_INT, "30", 0, F(stats_interval), "accepted (no stats log)", NULL,
      NULL, 0, 0 },
    { "allow_orphans", LS_P_BOOL, "true", 0, F(allow_orphans),
      "a record of an unknown pod and namespace goes to orphaned_namespace_name", NULL, NULL, 0,
      0 },
    { "orphaned_namespace_name", LS_P_STR, ".orphaned", 0, F(orphaned_namespace_name),
      "namespace_name of orphans", NULL, NULL, 0, 0 },
    { "orphaned_namespace_id", LS_P_STR, "orphaned", 0, F(orphaned_namespace_id),
      "namespace_id of orphans", NULL, NULL, 0, 0 },
    { "lookup_from_k8s_field", LS_P_BOOL, "true", 0, F(lookup_from_k8s_field),
      "look up by the record's own kubernetes and docker fields", NULL, NULL, 0, 0 },
    { "ssl_partial_chain", LS_P_BOOL, "false", 0, F(ssl_partial_chain),
      "accepted (trust an intermediate CA)", NULL, NULL, 0, 0 },
    { "skip_labels", LS_P_BOOL, "false", 0, F(skip_labels), "no labels", NULL, NULL, 0, 0 },
    { "skip_pod_labels", LS_P_BOOL, "false", 0, F(skip_pod_labels), "no pod labels", NULL,
      NULL, 0, 0 },
    { "skip_namespace_labels", LS_P_BOOL, "false", 0, F(skip_namespace_labels),
      "no namespace labels", NULL, NULL, 0, 0 },
    { "skip_container_metadata", LS_P_BOOL, "false", 0, F(skip_container_metadata),
      "no container image and id", NULL, NULL, 0, 0 },
    { "skip_master_url", LS_P_BOOL, "false", 0, F(skip_master_url), "no master_url", NULL,
      NULL, 0, 0 },
    { "skip_namespace_metadata", LS_P_BOOL, "false", 0, F(skip_namespace_metadata),
      "do not look up namespaces", NULL, NULL, 0, 0 },
    { "include_ownerrefs_metadata", LS_P_BOOL, "false", 0, F(include_ownerrefs_metadata),
      "add the pod's owner references (kind, name)", NULL, NULL, 0, 0 },
    { "test_api_adapter", LS_P_STR, NULL, LS_PF_NULLABLE, F(test_api_adapter),
      "accepted (the plugin's tests)", NULL, NULL, 0, 0 },
    { "watch_retry_interval", LS_P_INT, "1", 0, F(watch_retry_interval), "accepted", NULL, NULL,
      0, 0 },
    { "watch_retry_exponential_backoff_base", LS_P_INT, "2", 0,
      F(watch_retry_exponential_backoff_base), "accepted", NULL, NULL, 0, 0 },
    { "watch_retry_max_times", LS_P_INT, "10", 0, F(watch_retry_max_times), "accepted", NULL,
      NULL, 0, 0 },
    LS_PARAM_END
};

/* a value's text, NUL-terminated, in a (ls_value_to_text may hand back a slice) */
static const char *arena_str(struct ls_arena *a, const struct ls_value *v)
{
    size_t n;
    const char *p = ls_value_to_text(a, v, &n);

    return ls_arena_memdup(a, p, n);
}

/* ---- the API ---- */

/* GET url (an API path below k->url); the body on 200, else NULL with *status set (0: no
 * answer) and a message in err. */
static char *api_get(struct ls_instance *ins, const char *path, long *status, size_t *len,
                     char *err, size_t errlen)
{
    struct k8s *k = ins->ctx;
    struct ls_http_req req;
    struct ls_http_resp resp;
    struct ls_buf h;
    char *url = ls_asprintf("%s%s", k->url, path), *tok = NULL, *body = NULL;
    size_t toklen = 0;

    memset(&req, 0, sizeof(req));
    memset(&resp, 0, sizeof(resp));
    ls_buf_init(&h, 0);
    ls_http_hdr_add(&h, "Accept: application/json");
    if (k->token_file && ls_read_file(k->token_file, 1 << 20, &tok, &toklen) == LS_OK) {
        /* read at every request: the kubelet rotates projected tokens */
        while (toklen && (tok[toklen - 1] == '\n' || tok[toklen - 1] == '\r' ||
                          tok[toklen - 1] == ' ')) {
            toklen--;
        }
        tok[toklen] = '\0';
        char *line = ls_asprintf("Authorization: Bearer %s", tok);
        ls_http_hdr_add(&h, line);
        ls_free(line);
        ls_free(tok);
    }
    req.method = "GET";
    req.url = url;
    req.headers = &h;
    req.body_fd = -1;
    req.connect_timeout = (double)k->open_timeout;
    req.timeout = (double)(k->open_timeout + k->read_timeout);
    req.verify_peer = k->verify_ssl;
    req.ca_file = k->ca;
    req.client_cert = k->client_cert;
    req.client_key = k->client_key;
    req.max_response = 16u << 20;
    *status = 0;
    if (ls_http_fetch(&req, &resp) != LS_OK || resp.curl_code != 0) {
        snprintf(err, errlen, "%s", resp.error[0] ? resp.error : "no answer");
    } else if (resp.status != 200) {
        *status = resp.status;
        snprintf(err, errlen, "HTTP %ld: %.*s", resp.status,
                 (int)(resp.body.len < 200 ? resp.body.len : 200), resp.body.p ? resp.body.p : "");
    } else {
        *status = 200;
        body = ls_strndup(resp.body.p ? resp.body.p : "", resp.body.len);
        *len = resp.body.len;
    }
    ls_buf_release(&resp.body);
    ls_buf_release(&resp.headers);
    ls_buf_release(&h);
    ls_free(url);
    return body;
}

/* the nested value at a dotted path of a parsed object (false: missing or null) */
static bool path_get(const struct ls_record *obj, const char *path, struct ls_value *out)
{
    struct ls_accessor acc;
    char err[128];
    bool ok;

    if (ls_accessor_compile(&acc, path, err, sizeof(err)) != LS_OK) {
        return false;
    }
    ok = ls_accessor_get(&acc, obj, out) && out->type != LS_V_NULL;
    ls_accessor_release(&acc);
    return ok;
}

/* t's text as a nested JSON value in a */
static struct ls_value json_in(struct ls_arena *a, const struct ls_buf *t)
{
    struct ls_value v = { 0 };

    v.type = LS_V_JSON;
    v.u.s.p = ls_arena_memdup(a, t->p ? t->p : "", t->len);
    v.u.s.len = t->len;
    return v;
}

/* An object's text compacted (and nothing when it is empty), or its members whose names one
 * of res matches, in the plugin's order: by regexp, then by name order. */
static bool object_text(struct ls_arena *a, const struct ls_value *v, struct ls_regex **res,
                        size_t nres, struct ls_buf *out)
{
    struct ls_record r, sel;
    size_t i, j;
    bool any;

    if (v->type != LS_V_JSON) {
        return false;
    }
    ls_record_init(&r, a);
    ls_record_init(&sel, a);
    if (ls_json_parse_object(v->u.s.p, v->u.s.len, &r) != LS_OK) {
        ls_record_release(&r);
        ls_record_release(&sel);
        return false;
    }
    if (res == NULL) {
        for (i = 0; i < r.nfields; i++) {
            ls_record_set(&sel, r.fields[i].key, r.fields[i].key_len, &r.fields[i].v);
        }
    } else {
        for (j = 0; j < nres; j++) {
            for (i = 0; i < r.nfields; i++) {
                if (ls_regex_search(res[j], r.fields[i].key, r.fields[i].key_len) == 1) {
                    ls_record_set(&sel, r.fields[i].key, r.fields[i].key_len, &r.fields[i].v);
                }
            }
        }
    }
    any = sel.nfields > 0;
    if (any) {
        ls_json_put_record(out, &sel);
    }
    ls_record_release(&r);
    ls_record_release(&sel);
    return any;
}

static void add_object(struct ls_arena *a, struct ls_record *meta, const char *key,
                       const struct ls_value *v, struct ls_regex **res, size_t nres)
{
    struct ls_buf t;

    ls_buf_init(&t, 0);
    if (object_text(a, v, res, nres, &t)) {
        struct ls_value j = json_in(a, &t);
        ls_record_set(meta, key, strlen(key), &j);
    }
    ls_buf_release(&t);
}

static void add_str(struct ls_record *meta, const struct ls_record *obj, const char *key,
                    const char *path)
{
    struct ls_value v;

    if (path_get(obj, path, &v)) {
        ls_record_set(meta, key, strlen(key), &v);
    }
}

/* The pod's metadata into meta and its containers into e (parse_pod_metadata); false when
 * the API did not give it. */
static bool fetch_pod(struct ls_instance *ins, const char *ns, const char *pod,
                      struct ls_record *meta, struct kentry *e)
{
    struct k8s *k = ins->ctx;
    char err[512], *path, *body;
    size_t len = 0;
    long status;
    struct ls_record obj;
    struct ls_value v;
    bool ok = false;

    path = ls_asprintf("/%s/namespaces/%s/pods/%s?resourceVersion=0", k->api_version, ns, pod);
    body = api_get(ins, path, &status, &len, err, sizeof(err));
    ls_free(path);
    if (body == NULL) {
        if (status == 404) {
            ls_plg_debug(ins, "pod %s/%s not found", ns, pod);
        } else {
            ls_plg_error(ins, "Exception '%s' encountered fetching pod metadata from Kubernetes "
                         "API %s endpoint %s", err, k->api_version, k->url);
        }
        return false;
    }
    ls_record_init(&obj, meta->arena);
    if (ls_json_parse_object(body, len, &obj) != LS_OK) {
        ls_plg_error(ins, "pod %s/%s: the API's answer is not a JSON object", ns, pod);
        goto out;
    }
    if (path_get(&obj, "$.status.containerStatuses", &v) && v.type == LS_V_JSON) {
        size_t off = 0, elen;
        const char *el;
        while (ls_json_array_next(v.u.s.p, v.u.s.len, &off, &el, &elen) == LS_OK) {
            struct ls_record c;
            struct ls_value n, x;
            ls_record_init(&c, meta->arena);
            if (ls_json_parse_object(el, elen, &c) == LS_OK && path_get(&c, "name", &n)) {
                struct kcont *kc;
                const char *id = "", *s;
                size_t i;
                e->conts = ls_realloc(e->conts, (e->nconts + 1) * sizeof(*e->conts));
                kc = &e->conts[e->nconts++];
                memset(kc, 0, sizeof(*kc));
                kc->name = ls_strdup(arena_str(meta->arena, &n));
                if (path_get(&c, "image", &x)) {
                    kc->image = ls_strdup(arena_str(meta->arena, &x));
                }
                if (path_get(&c, "imageID", &x)) {
                    kc->image_id = ls_strdup(arena_str(meta->arena, &x));
                }
                if (path_get(&c, "containerID", &x)) {
                    id = arena_str(meta->arena, &x);
                }
                /* sub(%r{^[-_a-zA-Z0-9]+://}, ''): "docker://abc" -> "abc" */
                s = strstr(id, "://");
                if (s && s > id) {
                    for (i = 0; id + i < s && (isalnum((unsigned char)id[i]) || id[i] == '-' ||
                                               id[i] == '_'); i++) {
                    }
                    if (id + i == s) {
                        id = s + 3;
                    }
                }
                kc->container_id = ls_strdup(id);
            }
            ls_record_release(&c);
        }
    }
    add_str(meta, &obj, "namespace_name", "$.metadata.namespace");
    add_str(meta, &obj, "pod_id", "$.metadata.uid");
    add_str(meta, &obj, "pod_name", "$.metadata.name");
    add_str(meta, &obj, "pod_ip", "$.status.podIP");
    add_str(meta, &obj, "host", "$.spec.nodeName");
    if (k->include_ownerrefs_metadata && path_get(&obj, "$.metadata.ownerReferences", &v) &&
        v.type == LS_V_JSON) {
        struct ls_buf t;
        size_t off = 0, elen;
        const char *el;
        struct ls_value j;
        ls_buf_init(&t, 0);
        ls_buf_putc(&t, '[');
        while (ls_json_array_next(v.u.s.p, v.u.s.len, &off, &el, &elen) == LS_OK) {
            struct ls_record o, r;
            struct ls_value x;
            ls_record_init(&o, meta->arena);
            ls_record_init(&r, meta->arena);
            if (ls_json_parse_object(el, elen, &o) == LS_OK) {
                x = ls_vnull();
                (void)path_get(&o, "kind", &x);
                ls_record_set(&r, "kind", 4, &x);
                x = ls_vnull();
                (void)path_get(&o, "name", &x);
                ls_record_set(&r, "name", 4, &x);
                if (t.len > 1) {
                    ls_buf_putc(&t, ',');
                }
                ls_json_put_record(&t, &r);
            }
            ls_record_release(&o);
            ls_record_release(&r);
        }
        ls_buf_putc(&t, ']');
        j = json_in(meta->arena, &t);
        ls_record_set(meta, "ownerrefs", 9, &j);
        ls_buf_release(&t);
    }
    if (!k->skip_labels && !k->skip_pod_labels && path_get(&obj, "$.metadata.labels", &v)) {
        add_object(meta->arena, meta, "labels", &v, NULL, 0);
    }
    if (k->nann && path_get(&obj, "$.metadata.annotations", &v)) {
        add_object(meta->arena, meta, "annotations", &v, k->ann_re, k->nann);
    }
    if (!k->skip_master_url) {
        struct ls_value u = ls_vstr(k->master_url, strlen(k->master_url));
        ls_record_set(meta, "master_url", 10, &u);
    }
    ok = true;
out:
    ls_record_release(&obj);
    ls_free(body);
    return ok;
}

/* The namespace's metadata into meta (parse_namespace_metadata); its creation time in
 * *created (0: unknown). False when the API did not give it. */
static bool fetch_namespace(struct ls_instance *ins, const char *ns, struct ls_record *meta,
                            int64_t *created)
{
    struct k8s *k = ins->ctx;
    char err[512], *path, *body;
    size_t len = 0;
    long status;
    struct ls_record obj;
    struct ls_value v;
    bool ok = false;

    *created = 0;
    path = ls_asprintf("/%s/namespaces/%s?resourceVersion=0", k->api_version, ns);
    body = api_get(ins, path, &status, &len, err, sizeof(err));
    ls_free(path);
    if (body == NULL) {
        ls_plg_error(ins, "Exception '%s' encountered fetching namespace metadata from "
                     "Kubernetes API %s endpoint %s", err, k->api_version, k->url);
        return false;
    }
    ls_record_init(&obj, meta->arena);
    if (ls_json_parse_object(body, len, &obj) == LS_OK && path_get(&obj, "$.metadata.uid", &v)) {
        struct ls_value c;
        ls_record_set(meta, "namespace_id", 12, &v);
        if (path_get(&obj, "$.metadata.creationTimestamp", &c) && c.type == LS_V_STR) {
            struct tm tm;
            char buf[64];
            size_t n = c.u.s.len < sizeof(buf) - 1 ? c.u.s.len : sizeof(buf) - 1;
            memcpy(buf, c.u.s.p, n);
            buf[n] = '\0';
            memset(&tm, 0, sizeof(tm));
            if (strptime(buf, "%Y-%m-%dT%H:%M:%S", &tm)) {
                *created = (int64_t)timegm(&tm);
            }
        }
        if (!k->skip_labels && !k->skip_namespace_labels &&
            path_get(&obj, "$.metadata.labels", &v)) {
            add_object(meta->arena, meta, "namespace_labels", &v, NULL, 0);
        }
        if (k->nann && path_get(&obj, "$.metadata.annotations", &v)) {
            add_object(meta->arena, meta, "namespace_annotations", &v, k->ann_re, k->nann);
        }
        ok = true;
    }
    ls_record_release(&obj);
    ls_free(body);
    return ok;
}

/* ---- the cache (the plugin's id, pod and namespace caches in one: per container) ---- */

static size_t hash_of(const char *s)
{
    return (size_t)ls_source_key(s, strlen(s));
}

static void entry_free(struct kentry *e)
{
    for (size_t i = 0; i < e->nconts; i++) {
        ls_free(e->conts[i].name);
        ls_free(e->conts[i].image);
        ls_free(e->conts[i].image_id);
        ls_free(e->conts[i].container_id);
    }
    ls_free(e->conts);
    ls_free(e->meta);
    ls_free(e->key);
    ls_free(e);
}

static void list_unlink(struct k8s *k, struct kentry *e)
{
    if (e->prev) {
        e->prev->next = e->next;
    } else {
        k->head = e->next;
    }
    if (e->next) {
        e->next->prev = e->prev;
    } else {
        k->tail = e->prev;
    }
    e->prev = e->next = NULL;
}

static void list_front(struct k8s *k, struct kentry *e)
{
    e->next = k->head;
    e->prev = NULL;
    if (k->head) {
        k->head->prev = e;
    }
    k->head = e;
    if (k->tail == NULL) {
        k->tail = e;
    }
}

static void cache_remove(struct k8s *k, struct kentry *e)
{
    struct kentry **pp = &k->buckets[hash_of(e->key) & (k->nbuckets - 1)];

    while (*pp && *pp != e) {
        pp = &(*pp)->hnext;
    }
    if (*pp) {
        *pp = e->hnext;
    }
    list_unlink(k, e);
    k->nentries--;
    entry_free(e);
}

static struct kentry *cache_get(struct k8s *k, const char *key)
{
    struct kentry *e = k->buckets[hash_of(key) & (k->nbuckets - 1)];

    while (e && strcmp(e->key, key) != 0) {
        e = e->hnext;
    }
    if (e == NULL) {
        return NULL;
    }
    if (ls_mono_now() >= e->expires) {
        cache_remove(k, e);
        return NULL;
    }
    if (k->head != e) {
        list_unlink(k, e);
        list_front(k, e);
    }
    return e;
}

static void cache_put(struct k8s *k, struct kentry *e)
{
    size_t b = hash_of(e->key) & (k->nbuckets - 1);

    while (k->nentries >= (size_t)k->cache_size && k->tail) {
        cache_remove(k, k->tail);
    }
    e->hnext = k->buckets[b];
    k->buckets[b] = e;
    list_front(k, e);
    k->nentries++;
}

/* get_pod_metadata: the entry for key, looked up through the API when not cached. */
static struct kentry *pod_metadata(struct ls_instance *ins, const char *key, const char *ns,
                                   const char *pod, int64_t rec_time)
{
    struct k8s *k = ins->ctx;
    struct kentry *e = cache_get(k, key);
    struct ls_record pm, nm;
    struct ls_buf t;
    bool pod_ok, ns_ok = false, negative = false;
    int64_t created = 0;
    size_t i;

    if (e) {
        return e;
    }
    e = ls_calloc(1, sizeof(*e));
    e->key = ls_strdup(key);
    ls_record_init(&pm, &k->arena);
    ls_record_init(&nm, &k->arena);
    pod_ok = fetch_pod(ins, ns, pod, &pm, e);
    if (!k->skip_namespace_metadata) {
        ns_ok = fetch_namespace(ins, ns, &nm, &created);
    }
    if (k->skip_namespace_metadata) {
        negative = !pod_ok;
    } else if (pod_ok && ns_ok) {
        for (i = 0; i < nm.nfields; i++) {
            ls_record_set(&pm, nm.fields[i].key, nm.fields[i].key_len, &nm.fields[i].v);
        }
    } else if (!pod_ok && ns_ok) {
        /* a pod the API no longer knows, in a namespace older than the record: the cache key
         * stands for its id */
        if (created <= rec_time) {
            struct ls_value v = ls_vstr(key, strlen(key));
            ls_record_set(&pm, "pod_id", 6, &v);
        }
        for (i = 0; i < nm.nfields; i++) {
            ls_record_set(&pm, nm.fields[i].key, nm.fields[i].key_len, &nm.fields[i].v);
        }
    } else {
        negative = true;
        ls_record_clear(&pm);
        if (k->allow_orphans) {
            struct ls_value v = ls_vstr(ns, strlen(ns));
            ls_record_set(&pm, "orphaned_namespace", 18, &v);
            v = ls_vstr(k->orphaned_namespace_name, strlen(k->orphaned_namespace_name));
            ls_record_set(&pm, "namespace_name", 14, &v);
            v = ls_vstr(k->orphaned_namespace_id, strlen(k->orphaned_namespace_id));
            ls_record_set(&pm, "namespace_id", 12, &v);
        }
    }
    ls_buf_init(&t, 0);
    ls_json_put_record(&t, &pm);
    e->meta = ls_strndup(t.p, t.len);
    ls_buf_release(&t);
    ls_record_release(&pm);
    ls_record_release(&nm);
    /* the plugin does not keep a lookup that found nothing (it asks again for every record);
     * one that failed is kept briefly here, see the top comment */
    e->expires = negative ? ls_mono_now() + NEG_TTL
                 : k->cache_ttl < 0 ? INFINITY : ls_mono_now() + (double)k->cache_ttl;
    cache_put(k, e);
    return e;
}

/* ---- the filter ---- */


/* get_metadata_for_record: "docker" and "kubernetes" set on rec (merge order kept) */
static void add_metadata(struct ls_instance *ins, struct ls_record *rec, const char *ns,
                         const char *pod, const char *container, const char *key,
                         const char *docker_id)
{
    struct k8s *k = ins->ctx;
    struct ls_arena *a = rec->arena;
    struct ls_record kube;
    struct ls_buf t;
    struct ls_value v;
    const char *cid = docker_id ? docker_id : "";

    ls_record_init(&kube, a);
    v = ls_vstr(container, strlen(container));
    ls_record_set(&kube, "container_name", 14, &v);
    v = ls_vstr(ns, strlen(ns));
    ls_record_set(&kube, "namespace_name", 14, &v);
    v = ls_vstr(pod, strlen(pod));
    ls_record_set(&kube, "pod_name", 8, &v);
    if (k->url && key) {
        struct kentry *e = pod_metadata(ins, key, ns, pod, rec->time.sec);
        struct ls_record pm;
        size_t i;
        for (i = 0; i < e->nconts && !k->skip_container_metadata; i++) {
            struct kcont *c = &e->conts[i];
            if (strcmp(c->name, container) != 0) {
                continue;
            }
            v = c->image ? ls_vstr(c->image, strlen(c->image)) : ls_vnull();
            ls_record_set(&kube, "container_image", 15, &v);
            if (c->image_id && c->image_id[0]) {
                v = ls_vstr(c->image_id, strlen(c->image_id));
                ls_record_set(&kube, "container_image_id", 18, &v);
            }
            if (c->container_id && c->container_id[0]) {
                cid = c->container_id;
            }
            break;
        }
        ls_record_init(&pm, a);
        if (ls_json_parse_object(e->meta, strlen(e->meta), &pm) == LS_OK) {
            for (i = 0; i < pm.nfields; i++) {
                if (pm.fields[i].v.type != LS_V_NULL) {
                    ls_record_set(&kube, pm.fields[i].key, pm.fields[i].key_len,
                                  &pm.fields[i].v);
                }
            }
        }
        ls_record_release(&pm);
    }
    ls_buf_init(&t, 0);
    if (cid[0]) {
        ls_buf_append(&t, "{\"container_id\":", 16);
        ls_json_put_str(&t, cid, strlen(cid));
        ls_buf_putc(&t, '}');
        v = json_in(a, &t);
        ls_record_set(rec, "docker", 6, &v);
        ls_buf_reset(&t);
    }
    ls_json_put_record(&t, &kube);
    v = json_in(a, &t);
    ls_record_set(rec, "kubernetes", 10, &v);
    ls_buf_release(&t);
    ls_record_release(&kube);
}

static int k8s_filter(struct ls_instance *ins, struct ls_record *rec)
{
    struct k8s *k = ins->ctx;
    struct ls_record m;
    const struct ls_field *f;
    struct ls_value kv[4];

    ls_arena_reset(&k->arena);
    if (k->lookup_from_k8s_field) {
        /* the record's own fields win over the tag's (the plugin looks both up, then takes
         * these); read before anything is added */
        size_t i;
        for (i = 0; i < 4; i++) {
            if (!ls_accessor_get(&k->acc[i], rec, &kv[i]) || kv[i].type == LS_V_NULL) {
                break;
            }
        }
        if (i == 4) {
            const char *id = arena_str(rec->arena, &kv[3]);
            add_metadata(ins, rec, arena_str(rec->arena, &kv[0]), arena_str(rec->arena, &kv[1]),
                         arena_str(rec->arena, &kv[2]), id, id);
            return LS_OK;
        }
    }
    ls_record_init(&m, rec->arena);
    if (ls_regex_match_record(k->tag_re, rec->tag, rec->tag_len, &m) == LS_OK) {
        const char *ns = "", *pod = "", *cont = "", *uuid = NULL, *docker = NULL;
        if ((f = ls_record_get(&m, "namespace", 9))) {
            ns = arena_str(rec->arena, &f->v);
        }
        if ((f = ls_record_get(&m, "pod_name", 8))) {
            pod = arena_str(rec->arena, &f->v);
        }
        if ((f = ls_record_get(&m, "container_name", 14))) {
            cont = arena_str(rec->arena, &f->v);
        }
        if ((f = ls_record_get(&m, "pod_uuid", 8))) {
            uuid = arena_str(rec->arena, &f->v);
        }
        if ((f = ls_record_get(&m, "docker_id", 9))) {
            docker = arena_str(rec->arena, &f->v);
        }
        add_metadata(ins, rec, ns, pod, cont, uuid ? uuid : docker, docker);
    }
    ls_record_release(&m);
    return LS_OK;
}

/* ---- configuration ---- */

static bool present(const char *s)
{
    return s && s[0];
}

static int k8s_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                    size_t errlen)
{
    struct k8s *k = ins->ctx;
    char rerr[256];
    size_t i;

    static const char *const paths[4] = { "$.kubernetes.namespace_name", "$.kubernetes.pod_name",
                                          "$.kubernetes.container_name",
                                          "$.docker.container_id" };

    ls_arena_init(&k->arena, 4096);
    for (i = 0; i < 4; i++) {
        if (ls_accessor_compile(&k->acc[i], paths[i], rerr, sizeof(rerr)) != LS_OK) {
            snprintf(err, errlen, "%s", rerr);
            return LS_ERROR;
        }
    }
    k->nbuckets = 16;
    while (k->nbuckets < (size_t)k->cache_size * 2 && k->nbuckets < (1u << 24)) {
        k->nbuckets <<= 1;
    }
    k->buckets = ls_calloc(k->nbuckets, sizeof(*k->buckets));
    k->tag_re = ls_regex_compile(k->tag_regexp, false, rerr, sizeof(rerr));
    if (k->tag_re == NULL) {
        ls_conf_param_error(sec, "tag_to_kubernetes_name_regexp", err, errlen,
                            "invalid tag_to_kubernetes_name_regexp: %s", rerr);
        return LS_ERROR;
    }
    for (i = 0; i < k->annotation_match.n; i++) {
        struct ls_regex *re = ls_regex_compile(k->annotation_match.v[i], false, rerr,
                                               sizeof(rerr));
        if (re == NULL) {
            /* the plugin logs this and goes on without the expression */
            ls_plg_error(ins, "Error: invalid regular expression in annotation_match: %s", rerr);
            continue;
        }
        k->ann_re = ls_realloc(k->ann_re, (k->nann + 1) * sizeof(*k->ann_re));
        k->ann_re[k->nann++] = re;
    }
    if (present(k->kubernetes_url)) {
        k->url = ls_strdup(k->kubernetes_url);
    } else {
        const char *h = getenv("KUBERNETES_SERVICE_HOST"), *p = getenv("KUBERNETES_SERVICE_PORT");
        if (present(h) && present(p)) {
            k->url = strchr(h, ':') ? ls_asprintf("https://[%s]:%s/api", h, p)
                                    : ls_asprintf("https://%s:%s/api", h, p);
        } else {
            ls_plg_debug(ins, "No Kubernetes URL could be found in config or environ");
        }
    }
    if (k->url) {
        k->master_url = ls_strdup(k->url);
        /* kubeclient: an endpoint without a path is the core API's, /api */
        const char *s = strstr(k->url, "://");
        const char *slash = s ? strchr(s + 3, '/') : NULL;
        if (s && (slash == NULL || strcmp(slash, "/") == 0)) {
            char *u = slash ? ls_asprintf("%.*sapi", (int)(slash - k->url + 1), k->url)
                            : ls_asprintf("%s/api", k->url);
            ls_free(k->url);
            k->url = u;
        }
        while (strlen(k->url) > 1 && k->url[strlen(k->url) - 1] == '/') {
            k->url[strlen(k->url) - 1] = '\0';
        }
    }
    k->ca = present(k->ca_file) ? ls_strdup(k->ca_file) : NULL;
    k->token_file = present(k->bearer_token_file) ? ls_strdup(k->bearer_token_file) : NULL;
    if (present(k->secret_dir)) {
        char *ca = ls_asprintf("%s/ca.crt", k->secret_dir);
        char *tok = ls_asprintf("%s/token", k->secret_dir);
        if (k->ca == NULL && access(ca, R_OK) == 0) {
            k->ca = ca;
            ca = NULL;
        }
        if (k->token_file == NULL && access(tok, R_OK) == 0) {
            k->token_file = tok;
            tok = NULL;
        }
        ls_free(ca);
        ls_free(tok);
    }
    if (k->url) {
        /* the plugin's api_valid?: a GET of the endpoint must succeed */
        long status;
        size_t len;
        char gerr[512];
        char *body = api_get(ins, "", &status, &len, gerr, sizeof(gerr));
        if (body == NULL) {
            snprintf(err, errlen, "%s:%d: Invalid Kubernetes API %s endpoint %s: %s", sec->file,
                     sec->line, k->api_version, k->url, gerr);
            return LS_ERROR;
        }
        ls_free(body);
    }
    return LS_OK;
}

static void k8s_destroy(struct ls_instance *ins)
{
    struct k8s *k = ins->ctx;

    while (k->head) {
        struct kentry *e = k->head;
        k->head = e->next;
        entry_free(e);
    }
    ls_free(k->buckets);
    for (size_t i = 0; i < k->nann; i++) {
        ls_regex_free(k->ann_re[i]);
    }
    ls_free(k->ann_re);
    if (k->tag_re) {
        ls_regex_free(k->tag_re);
    }
    ls_free(k->url);
    ls_free(k->master_url);
    ls_free(k->ca);
    ls_free(k->token_file);
    for (size_t i = 0; i < 4; i++) {
        ls_accessor_release(&k->acc[i]);
    }
    ls_arena_release(&k->arena);
}

const struct ls_plugin ls_plugin_filter_kubernetes_metadata = {
    .name = "kubernetes_metadata",
    .kind = LS_PLUGIN_FILTER,
    .description = "add the pod's Kubernetes metadata to container logs "
                   "(fluent-plugin-kubernetes_metadata_filter)",
    .params = k8s_params,
    .ctx_size = sizeof(struct k8s),
    .init = k8s_init,
    .destroy = k8s_destroy,
    .filter = k8s_filter,
};
