/*
 * filter_prometheus.c - fluent-plugin-prometheus's `<filter> @type prometheus` (instruments,
 * passes every record on unchanged) and `<match> @type prometheus` (instruments, discards):
 * each `<metric>` is a counter, gauge, summary or histogram in the process's registry (prom.h),
 * served by `<source> @type prometheus`.
 *
 * Per record, as the plugin does: a counter without `key` counts records; otherwise the value is
 * record[key] (or the record accessor $.a.b) and a missing or null value skips that metric. A
 * value that is not a number (the string "5", true) fails that metric with a warning, as
 * client_ruby raises there; a summary still counts it (client_ruby bumps _count before _sum
 * fails). fluentd also routes such a record to @ERROR; here it is counted in the instance's
 * errors instead, since re-entering the router from inside a filter would let @ERROR's filters
 * change the record this filter passes on.
 */
#include "prom.h"
#include "log.h"

#include <stdio.h>

struct pm_metric {
    char *name;
    enum prom_type type;
    bool has_key;
    struct ls_accessor key;
    struct prom_labels labels;
    struct prom_family *fam;
};

struct pm_ctx {
    struct ls_instance *ins;
    struct pm_metric *m;
    size_t n;
    struct prom_registry *reg;
    struct ls_buf lb;            /* label values of one record, back to back */
    size_t *offs, *lens;
    const char **vals;
    size_t nvals;
    double warned_at;
};

/* one <metric>, bound through pm_metric_params */
struct pm_metric_conf {
    char *name;
    int type;
    char *desc;
    char *key;
    char *buckets;
    bool initialized;
};

static const struct ls_param pm_metric_params[] = {
    { "name", LS_P_STR, NULL, LS_PF_REQUIRED, offsetof(struct pm_metric_conf, name), NULL, NULL,
      NULL, 0, 0 },
    { "type", LS_P_ENUM, NULL, LS_PF_REQUIRED, offsetof(struct pm_metric_conf, type), NULL, NULL,
      "counter|gauge|summary|histogram", 0, 0 },
    { "desc", LS_P_STR, NULL, LS_PF_REQUIRED, offsetof(struct pm_metric_conf, desc), NULL, NULL,
      NULL, 0, 0 },
    { "key", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct pm_metric_conf, key), NULL, NULL,
      NULL, 0, 0 },
    { "buckets", LS_P_STR, NULL, LS_PF_NULLABLE, offsetof(struct pm_metric_conf, buckets), NULL,
      NULL, NULL, 0, 0 },
    { "initialized", LS_P_BOOL, "false", 0, offsetof(struct pm_metric_conf, initialized), NULL,
      NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static const struct ls_param pm_params[] = {
    { "labels: NAME", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "labels of every metric: a string, `${tag}`, `${tag_parts[N]}`, `${hostname}`, "
      "`${worker_id}`, `${key}` (a record key), or a record accessor `$.a.b`", NULL, NULL, 0, 0 },
    { "metric: name", LS_P_STR, NULL, LS_PF_NO_STORE, 0, "(required) the metric's name", NULL,
      NULL, 0, 0 },
    { "metric: type", LS_P_ENUM, NULL, LS_PF_NO_STORE, 0, "(required)", NULL,
      "counter|gauge|summary|histogram", 0, 0 },
    { "metric: desc", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "(required) its help text; a name used twice needs the same type and desc", NULL, NULL, 0,
      0 },
    { "metric: key", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "the record's value: a key or a record accessor `$.a.b` (required but for counters, "
      "which count records without it)", NULL, NULL, 0, 0 },
    { "metric: buckets", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "histogram: upper bounds, comma-separated (default 0.005,0.01,...,10)", NULL, NULL, 0, 0 },
    { "metric: initialized", LS_P_BOOL, "false", LS_PF_NO_STORE, 0,
      "create the series at start (value 0): the static labels, or each `<initlabels>`", NULL,
      NULL, 0, 0 },
    { "metric: labels: NAME", LS_P_STR, NULL, LS_PF_NO_STORE, 0,
      "this metric's labels, over the plugin's", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

/* the plugin's bucket rule: "1.5" is a float, anything else Ruby's to_i ("10" 10, "x" 0) */
static int pm_buckets(struct ls_conf_section *ms, const char *text, double **bounds,
                      char ***texts, size_t *n, char *err, size_t errlen)
{
    struct ls_buf b;
    const char *p = text;

    *bounds = NULL;
    *texts = NULL;
    *n = 0;
    ls_buf_init(&b, 0);
    while (1) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char item[64];
        double v;
        while (len && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
            len--;
        }
        if (len >= sizeof(item)) {
            len = sizeof(item) - 1;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        ls_buf_reset(&b);
        {
            size_t k = 0, d1 = 0, d2;
            while (item[k] >= '0' && item[k] <= '9') {
                k++;
            }
            d1 = k;
            d2 = d1 < len ? d1 + 1 : d1;
            while (item[d2] >= '0' && item[d2] <= '9') {
                d2++;
            }
            if (d1 > 0 && d1 < len && d2 == len && d2 > d1 + 1) {
                v = strtod(item, NULL);
                prom_put_float(&b, v);
            } else {
                v = (double)strtoll(item, NULL, 10);
                ls_buf_printf(&b, "%lld", (long long)v);
            }
        }
        if (*n && !(v > (*bounds)[*n - 1])) {
            ls_conf_param_error(ms, "buckets", err, errlen,
                                "histogram buckets must be in increasing order");
            ls_buf_release(&b);
            return LS_ERROR;
        }
        *bounds = ls_realloc(*bounds, (*n + 1) * sizeof(double));
        *texts = ls_realloc(*texts, (*n + 1) * sizeof(char *));
        (*bounds)[*n] = v;
        (*texts)[*n] = ls_malloc(b.len + 1);
        memcpy((*texts)[*n], b.p, b.len);
        (*texts)[*n][b.len] = '\0';
        (*n)++;
        if (e == NULL) {
            break;
        }
        p = e + 1;
    }
    ls_buf_release(&b);
    return LS_OK;
}

static void pm_free_buckets(double *bounds, char **texts, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        ls_free(texts[i]);
    }
    ls_free(texts);
    ls_free(bounds);
}

static bool pm_dynamic(const struct prom_label *l)
{
    return l->accessor || strncmp(l->value, "${", 2) == 0;
}

/* initialized: the series to create at start (the plugin's parse_initlabels_elements) */
static int pm_init_series(struct pm_ctx *ctx, struct pm_metric *m, struct ls_conf_section *ms,
                          char *err, size_t errlen)
{
    struct ls_conf_section *c;
    struct ls_buf b;
    bool any = false;
    size_t i;
    int rc = LS_OK;

    ls_buf_init(&b, 0);
    for (c = ms->children; c || !any; c = c ? c->next : NULL) {
        size_t *offs = ls_calloc(m->labels.n + 1, sizeof(size_t));
        size_t *lens = ls_calloc(m->labels.n + 1, sizeof(size_t));
        const char **vals = ls_calloc(m->labels.n + 1, sizeof(char *));
        struct ls_conf_param *p;

        if (c && strcmp(c->name, "initlabels") != 0) {
            ls_free(offs);
            ls_free(lens);
            ls_free(vals);
            continue;
        }
        ls_buf_reset(&b);
        for (p = c ? c->params : NULL; p; p = p->next) {
            p->used = true;
            for (i = 0; i < m->labels.n && strcmp(m->labels.v[i].name, p->key) != 0; i++) {
            }
            if (i == m->labels.n) {
                snprintf(err, errlen, "%s:%d: Key %s in <initlabels> is non existent in "
                         "<labels> for metric %s", p->file, p->line, p->key, m->name);
                rc = LS_ERROR;
            } else if (!pm_dynamic(&m->labels.v[i])) {
                snprintf(err, errlen, "%s:%d: Cannot set <initlabels> on non RecordAccessor/"
                         "Placeholder key %s (value %s) in metric %s", p->file, p->line, p->key,
                         p->value, m->name);
                rc = LS_ERROR;
            }
        }
        for (i = 0; rc == LS_OK && i < m->labels.n; i++) {
            const struct prom_label *l = &m->labels.v[i];
            struct ls_conf_param *given = NULL;
            for (p = c ? c->params : NULL; p; p = p->next) {
                if (strcmp(p->key, l->name) == 0) {
                    given = p;
                }
            }
            offs[i] = b.len;
            if (given) {
                ls_buf_append(&b, given->value, strlen(given->value));
            } else if (!pm_dynamic(l) || strcmp(l->value, "${hostname}") == 0 ||
                       strcmp(l->value, "${worker_id}") == 0) {
                prom_label_expand(ctx->ins, l, NULL, &b);
            } else {
                snprintf(err, errlen, "%s:%d: RecordAccessor/Placeholder key %s with value %s "
                         "has not been set in a <initlabels> for initialized metric %s",
                         c ? c->file : ms->file, c ? c->line : ms->line, l->name, l->value,
                         m->name);
                rc = LS_ERROR;
            }
            lens[i] = b.len - offs[i];
        }
        for (i = 0; rc == LS_OK && i < m->labels.n; i++) {
            vals[i] = b.p + offs[i];
        }
        if (rc == LS_OK) {
            (void)prom_series(m->fam, vals, lens);
        }
        ls_free(offs);
        ls_free(lens);
        ls_free(vals);
        any = true;
        if (rc != LS_OK || c == NULL) {
            break;
        }
    }
    ls_buf_release(&b);
    return rc;
}

static int pm_add_metric(struct pm_ctx *ctx, const struct prom_labels *base,
                         struct ls_conf_section *ms, char *err, size_t errlen)
{
    struct pm_metric_conf mc;
    struct pm_metric *m;
    double *bounds = NULL;
    char **texts = NULL, **names, msg[300];
    size_t nb = 0;
    int rc = LS_ERROR;

    if (ls_param_bind(pm_metric_params, ms, &mc, err, errlen) != LS_OK) {
        ls_param_release(pm_metric_params, &mc);
        return LS_ERROR;
    }
    ctx->m = ls_realloc(ctx->m, (ctx->n + 1) * sizeof(*ctx->m));
    m = &ctx->m[ctx->n++];
    memset(m, 0, sizeof(*m));
    m->name = ls_strdup(mc.name);
    m->type = (enum prom_type)mc.type;
    if (mc.key == NULL && m->type != PROM_COUNTER) {
        snprintf(err, errlen, "%s:%d: %s metric requires 'key' option", ms->file, ms->line,
                 ((const char *const[]){ "counter", "gauge", "summary", "histogram" })[m->type]);
        goto out;
    }
    if (mc.key) {
        if (ls_accessor_compile(&m->key, mc.key, msg, sizeof(msg)) != LS_OK) {
            ls_conf_param_error(ms, "key", err, errlen, "%s", msg);
            goto out;
        }
        m->has_key = true;
    }
    if (mc.buckets && m->type == PROM_HISTOGRAM &&
        pm_buckets(ms, mc.buckets, &bounds, &texts, &nb, err, errlen) != LS_OK) {
        goto out;
    }
    if (prom_labels_parse(&m->labels, base, ms, true, "prometheus", err, errlen) != LS_OK) {
        goto out;
    }
    names = prom_labels_names(&m->labels, NULL, 0);
    m->fam = prom_family(ctx->reg, mc.name, m->type, mc.desc, names, m->labels.n, bounds, texts,
                         nb, msg, sizeof(msg));
    ls_free(names);
    if (m->fam == NULL) {
        snprintf(err, errlen, "%s:%d: %s", ms->file, ms->line, msg);
        goto out;
    }
    if (m->labels.n > ctx->nvals) {
        ctx->nvals = m->labels.n;
    }
    if (mc.initialized && pm_init_series(ctx, m, ms, err, errlen) != LS_OK) {
        goto out;
    }
    rc = LS_OK;
out:
    pm_free_buckets(bounds, texts, nb);
    ls_param_release(pm_metric_params, &mc);
    return rc;
}

static int pm_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                   size_t errlen)
{
    struct pm_ctx *ctx = ins->ctx;
    struct prom_labels base = { NULL, 0 };
    struct ls_conf_section *c;
    int rc = LS_OK;

    ctx->ins = ins;
    ls_buf_init(&ctx->lb, 0);
    ctx->reg = prom_registry_ref(ins->engine);
    if (prom_labels_parse(&base, NULL, sec, true, "prometheus", err, errlen) != LS_OK) {
        prom_labels_release(&base);
        return LS_ERROR;
    }
    for (c = sec->children; c && rc == LS_OK; c = c->next) {
        if (strcmp(c->name, "metric") == 0) {
            rc = pm_add_metric(ctx, &base, c, err, errlen);
        }
    }
    prom_labels_release(&base);
    ctx->offs = ls_calloc(ctx->nvals + 1, sizeof(size_t));
    ctx->lens = ls_calloc(ctx->nvals + 1, sizeof(size_t));
    ctx->vals = ls_calloc(ctx->nvals + 1, sizeof(char *));
    return rc;
}

static void pm_destroy(struct ls_instance *ins)
{
    struct pm_ctx *ctx = ins->ctx;
    size_t i;

    for (i = 0; i < ctx->n; i++) {
        ls_free(ctx->m[i].name);
        if (ctx->m[i].has_key) {
            ls_accessor_release(&ctx->m[i].key);
        }
        prom_labels_release(&ctx->m[i].labels);
    }
    ls_free(ctx->m);
    ls_free(ctx->offs);
    ls_free(ctx->lens);
    ls_free(ctx->vals);
    ls_buf_release(&ctx->lb);
    prom_registry_unref(ctx->reg);
}

/* A number as client_ruby takes it: Integer or Float (a bignum's digits too). */
static bool pm_number(const struct ls_value *v, double *out)
{
    char tmp[64], *end;

    switch (v->type) {
    case LS_V_INT:
        *out = (double)v->u.i;
        return true;
    case LS_V_FLOAT:
        *out = v->u.f;
        return true;
    case LS_V_JSON:
        if (v->u.s.len == 0 || v->u.s.len >= sizeof(tmp) ||
            !(v->u.s.p[0] == '-' || (v->u.s.p[0] >= '0' && v->u.s.p[0] <= '9'))) {
            return false;
        }
        memcpy(tmp, v->u.s.p, v->u.s.len);
        tmp[v->u.s.len] = '\0';
        *out = strtod(tmp, &end);
        return *end == '\0';
    default:
        return false;
    }
}

static void pm_fail(struct pm_ctx *ctx, const struct pm_metric *m, const struct ls_record *rec,
                    const char *why)
{
    double now = ls_mono_now();

    ctx->ins->metrics.errors++;
    if (now - ctx->warned_at >= 10.0) {
        ctx->warned_at = now;
        ls_plg_warn(ctx->ins, "prometheus: failed to instrument a metric. error=\"%s\" "
                    "tag=\"%.*s\" name=\"%s\"", why, (int)rec->tag_len, rec->tag, m->name);
    }
}

static struct prom_series *pm_series(struct pm_ctx *ctx, const struct pm_metric *m,
                                     const struct ls_record *rec)
{
    size_t i;

    ls_buf_reset(&ctx->lb);
    for (i = 0; i < m->labels.n; i++) {
        ctx->offs[i] = ctx->lb.len;
        prom_label_expand(ctx->ins, &m->labels.v[i], rec, &ctx->lb);
        ctx->lens[i] = ctx->lb.len - ctx->offs[i];
    }
    for (i = 0; i < m->labels.n; i++) {
        ctx->vals[i] = ctx->lb.p ? ctx->lb.p + ctx->offs[i] : "";
    }
    return prom_series(m->fam, ctx->vals, ctx->lens);
}

static void pm_instrument(struct pm_ctx *ctx, const struct ls_record *rec)
{
    size_t i;

    for (i = 0; i < ctx->n; i++) {
        const struct pm_metric *m = &ctx->m[i];
        struct ls_value v;
        double x = 1;

        if (m->has_key) {
            if (!ls_accessor_get(&m->key, rec, &v) || v.type == LS_V_NULL) {
                continue;
            }
            if (!pm_number(&v, &x)) {
                if (m->type == PROM_SUMMARY) {
                    prom_observe_count_only(pm_series(ctx, m, rec));
                }
                pm_fail(ctx, m, rec, m->type == PROM_GAUGE ? "value must be a number"
                                     : m->type == PROM_COUNTER
                                         ? "increment must be a non-negative number"
                                         : "value is not a number");
                continue;
            }
        }
        switch (m->type) {
        case PROM_COUNTER:
            if (x < 0) {
                pm_fail(ctx, m, rec, "increment must be a non-negative number");
                continue;
            }
            prom_inc(pm_series(ctx, m, rec), x);
            break;
        case PROM_GAUGE:
            prom_set(pm_series(ctx, m, rec), x);
            break;
        case PROM_SUMMARY:
        case PROM_HISTOGRAM:
            prom_observe(pm_series(ctx, m, rec), x);
            break;
        }
    }
}

static int pm_filter(struct ls_instance *ins, struct ls_record *rec)
{
    pm_instrument(ins->ctx, rec);
    return LS_OK;
}

static int pm_emit(struct ls_instance *ins, const struct ls_record *rec)
{
    pm_instrument(ins->ctx, rec);
    ins->metrics.write_records++;
    return LS_OK;
}

const struct ls_plugin ls_plugin_filter_prometheus = {
    .name = "prometheus",
    .kind = LS_PLUGIN_FILTER,
    .description = "count and measure records as Prometheus metrics (fluent-plugin-prometheus); "
                   "passes them on unchanged",
    .params = pm_params,
    .ctx_size = sizeof(struct pm_ctx),
    .init = pm_init,
    .destroy = pm_destroy,
    .filter = pm_filter,
};

const struct ls_plugin ls_plugin_out_prometheus = {
    .name = "prometheus",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "count and measure records as Prometheus metrics (fluent-plugin-prometheus); "
                   "then discards them",
    .params = pm_params,
    .ctx_size = sizeof(struct pm_ctx),
    .init = pm_init,
    .destroy = pm_destroy,
    .output_flags = LS_OUT_UNBUFFERED,
    .emit = pm_emit,
};
