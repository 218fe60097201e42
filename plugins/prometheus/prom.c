/*
 * prom.c - the registry behind prom.h, its exposition, and <labels>.
 *
 * A series is identified by its rendered label text (k1="v1",k2="v2", escaped as the text
 * format wants it): escaping is one-to-one, so equal text is an equal label set, and the
 * exposition prints the key as it is. Families and series keep their creation order, as
 * client_ruby's hashes do.
 */
#include "prom.h"
#include "log.h"

#include <math.h>
#include <stdio.h>
#include <unistd.h>

/* client_ruby's Histogram::DEFAULT_BUCKETS */
static const double prom_default_buckets[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                                               5, 10 };
static const char *const prom_default_bucket_texts[] = { "0.005", "0.01", "0.025", "0.05", "0.1",
                                                         "0.25", "0.5", "1", "2.5", "5", "10" };

struct prom_series {
    char *key;                   /* rendered labels, without braces */
    size_t key_len;
    uint64_t hash;
    double value;                /* counter, gauge; a summary's and histogram's sum */
    double count;                /* summary, histogram */
    double *buckets;             /* histogram: observations per bucket (not cumulative) */
    struct prom_family *fam;
    struct prom_series *hnext;   /* hash chain */
    struct prom_series *next;    /* creation order */
};

struct prom_family {
    char *name;
    char *help;
    enum prom_type type;
    char **labels;
    size_t nlabels;
    double *bounds;
    char **bound_texts;
    size_t nbounds;
    struct prom_series **tab;
    size_t tabsize, nseries;
    struct prom_series *first, *last;
    struct prom_registry *reg;
    struct prom_family *next;
};

struct prom_registry {
    const void *eng;
    unsigned refs;
    struct prom_family *first, *last;
    struct ls_buf scratch;       /* a series' key being looked up */
    struct prom_registry *next;
};

static struct prom_registry *prom_registries;

static const char *const prom_type_names[] = { "counter", "gauge", "summary", "histogram" };

struct prom_registry *prom_registry_ref(const void *eng)
{
    struct prom_registry *r;

    for (r = prom_registries; r && r->eng != eng; r = r->next) {
    }
    if (r == NULL) {
        r = ls_calloc(1, sizeof(*r));
        r->eng = eng;
        ls_buf_init(&r->scratch, 0);
        r->next = prom_registries;
        prom_registries = r;
    }
    r->refs++;
    return r;
}

static void prom_family_free(struct prom_family *f)
{
    struct prom_series *s, *n;
    size_t i;

    for (s = f->first; s; s = n) {
        n = s->next;
        ls_free(s->key);
        ls_free(s->buckets);
        ls_free(s);
    }
    for (i = 0; i < f->nlabels; i++) {
        ls_free(f->labels[i]);
    }
    for (i = 0; i < f->nbounds; i++) {
        ls_free(f->bound_texts[i]);
    }
    ls_free(f->labels);
    ls_free(f->bounds);
    ls_free(f->bound_texts);
    ls_free(f->tab);
    ls_free(f->name);
    ls_free(f->help);
    ls_free(f);
}

void prom_registry_unref(struct prom_registry *reg)
{
    struct prom_registry **pp;
    struct prom_family *f, *n;

    if (reg == NULL || --reg->refs > 0) {
        return;
    }
    for (f = reg->first; f; f = n) {
        n = f->next;
        prom_family_free(f);
    }
    for (pp = &prom_registries; *pp != reg; pp = &(*pp)->next) {
    }
    *pp = reg->next;
    ls_buf_release(&reg->scratch);
    ls_free(reg);
}

static bool prom_same_labels(const struct prom_family *f, char *const *labels, size_t n)
{
    size_t i;

    if (f->nlabels != n) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (strcmp(f->labels[i], labels[i]) != 0) {
            return false;
        }
    }
    return true;
}

struct prom_family *prom_family(struct prom_registry *reg, const char *name, enum prom_type type, const char *help,
                                char *const *labels, size_t nlabels, const double *buckets,
                                char *const *bucket_texts, size_t nbuckets, char *msg,
                                size_t msglen)
{
    struct prom_family *f;
    size_t i;

    for (f = reg->first; f; f = f->next) {
        if (strcmp(f->name, name) != 0) {
            continue;
        }
        if (f->type != type) {
            snprintf(msg, msglen, "%s has already been registered as %s type", name,
                     prom_type_names[f->type]);
            return NULL;
        }
        if (strcmp(f->help, help) != 0) {
            snprintf(msg, msglen, "%s has already been registered with different docstring",
                     name);
            return NULL;
        }
        if (!prom_same_labels(f, labels, nlabels)) {
            snprintf(msg, msglen, "%s has already been registered with other labels", name);
            return NULL;
        }
        return f;
    }
    f = ls_calloc(1, sizeof(*f));
    f->name = ls_strdup(name);
    f->help = ls_strdup(help);
    f->type = type;
    f->labels = ls_calloc(nlabels + 1, sizeof(char *));
    for (i = 0; i < nlabels; i++) {
        f->labels[i] = ls_strdup(labels[i]);
    }
    f->nlabels = nlabels;
    if (type == PROM_HISTOGRAM) {
        if (buckets == NULL) {
            buckets = prom_default_buckets;
            bucket_texts = (char *const *)prom_default_bucket_texts;
            nbuckets = LS_ARRAY_LEN(prom_default_buckets);
        }
        f->bounds = ls_calloc(nbuckets + 1, sizeof(double));
        f->bound_texts = ls_calloc(nbuckets + 1, sizeof(char *));
        for (i = 0; i < nbuckets; i++) {
            f->bounds[i] = buckets[i];
            f->bound_texts[i] = ls_strdup(bucket_texts[i]);
        }
        f->nbounds = nbuckets;
    }
    f->tabsize = 16;
    f->tab = ls_calloc(f->tabsize, sizeof(*f->tab));
    f->reg = reg;
    if (reg->last) {
        reg->last->next = f;
    } else {
        reg->first = f;
    }
    reg->last = f;
    return f;
}

/* a label value inside "..." (client_ruby escapes backslash, newline and the quote) */
static void prom_put_escaped(struct ls_buf *out, const char *v, size_t len, bool quote)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (v[i] == '\\') {
            ls_buf_append(out, "\\\\", 2);
        } else if (v[i] == '\n') {
            ls_buf_append(out, "\\n", 2);
        } else if (v[i] == '"' && quote) {
            ls_buf_append(out, "\\\"", 2);
        } else {
            ls_buf_putc(out, v[i]);
        }
    }
}

static uint64_t prom_hash(const char *p, size_t n)
{
    return ls_source_key(p, n);
}

static void prom_grow(struct prom_family *f)
{
    size_t size = f->tabsize * 2, i;
    struct prom_series **tab = ls_calloc(size, sizeof(*tab));
    struct prom_series *s;

    for (s = f->first; s; s = s->next) {
        i = s->hash & (size - 1);
        s->hnext = tab[i];
        tab[i] = s;
    }
    ls_free(f->tab);
    f->tab = tab;
    f->tabsize = size;
}

struct prom_series *prom_series(struct prom_family *f, const char *const *values,
                                const size_t *lens)
{
    struct ls_buf *k = &f->reg->scratch;
    struct prom_series *s;
    uint64_t h;
    size_t i;

    ls_buf_reset(k);
    for (i = 0; i < f->nlabels; i++) {
        /* per record on the filter's path: appends, not printf */
        if (i) {
            ls_buf_putc(k, ',');
        }
        ls_buf_append(k, f->labels[i], strlen(f->labels[i]));
        ls_buf_append(k, "=\"", 2);
        prom_put_escaped(k, values[i], lens[i], true);
        ls_buf_putc(k, '"');
    }
    h = prom_hash(k->p ? k->p : "", k->len);
    for (s = f->tab[h & (f->tabsize - 1)]; s; s = s->hnext) {
        if (s->hash == h && s->key_len == k->len && memcmp(s->key, k->p, k->len) == 0) {
            return s;
        }
    }
    s = ls_calloc(1, sizeof(*s));
    s->key = ls_malloc(k->len + 1);
    memcpy(s->key, k->p ? k->p : "", k->len);
    s->key[k->len] = '\0';
    s->key_len = k->len;
    s->hash = h;
    s->fam = f;
    if (f->type == PROM_HISTOGRAM) {
        s->buckets = ls_calloc(f->nbounds + 1, sizeof(double));
    }
    if (f->last) {
        f->last->next = s;
    } else {
        f->first = s;
    }
    f->last = s;
    if (++f->nseries > f->tabsize) {
        prom_grow(f);
    }
    i = h & (f->tabsize - 1);
    s->hnext = f->tab[i];
    f->tab[i] = s;
    return s;
}

void prom_set(struct prom_series *s, double v)
{
    s->value = v;
}

void prom_inc(struct prom_series *s, double v)
{
    s->value += v;
}

double prom_get(const struct prom_series *s)
{
    return s->value;
}

void prom_observe(struct prom_series *s, double v)
{
    const struct prom_family *f = s->fam;
    size_t i;

    s->count += 1;
    s->value += v;
    if (s->buckets) {
        for (i = 0; i < f->nbounds && !(f->bounds[i] >= v); i++) {
        }
        s->buckets[i] += 1;     /* i == nbounds: +Inf */
    }
}

void prom_observe_count_only(struct prom_series *s)
{
    s->count += 1;
}

void prom_put_float(struct ls_buf *out, double v)
{
    char digits[40], *e, mant[40];
    int prec, exp10;
    size_t nd;

    if (isnan(v)) {
        ls_buf_printf(out, "NaN");
        return;
    }
    if (isinf(v)) {
        ls_buf_printf(out, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == 0) {
        ls_buf_printf(out, signbit(v) ? "-0.0" : "0.0");
        return;
    }
    /* the shortest digits that read back as v, as Ruby prints them */
    for (prec = 1; prec <= 17; prec++) {
        snprintf(digits, sizeof(digits), "%.*e", prec - 1, v);
        if (strtod(digits, NULL) == v) {
            break;
        }
    }
    e = strchr(digits, 'e');
    exp10 = (int)strtol(e + 1, NULL, 10);
    *e = '\0';
    /* the mantissa's digits without sign and point */
    nd = 0;
    for (e = digits; *e; e++) {
        if (*e >= '0' && *e <= '9') {
            mant[nd++] = *e;
        }
    }
    mant[nd] = '\0';
    if (v < 0) {
        ls_buf_putc(out, '-');
    }
    if (exp10 >= 16 || exp10 < -4) {
        ls_buf_printf(out, "%c.%s", mant[0], nd > 1 ? mant + 1 : "0");
        ls_buf_printf(out, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    } else if (exp10 < 0) {
        ls_buf_append(out, "0.", 2);
        for (prec = exp10 + 1; prec < 0; prec++) {
            ls_buf_putc(out, '0');
        }
        ls_buf_append(out, mant, nd);
    } else if ((size_t)exp10 + 1 >= nd) {
        ls_buf_append(out, mant, nd);
        for (prec = (int)nd; prec < exp10 + 1; prec++) {
            ls_buf_putc(out, '0');
        }
        ls_buf_append(out, ".0", 2);
    } else {
        ls_buf_append(out, mant, (size_t)exp10 + 1);
        ls_buf_putc(out, '.');
        ls_buf_append(out, mant + exp10 + 1, nd - (size_t)exp10 - 1);
    }
}

static void prom_line(struct ls_buf *out, const char *name, const char *suffix,
                      const struct prom_series *s, const char *le, double v)
{
    ls_buf_printf(out, "%s%s", name, suffix);
    if (s->key_len || le) {
        ls_buf_putc(out, '{');
        ls_buf_append(out, s->key, s->key_len);
        if (le) {
            ls_buf_printf(out, "%sle=\"%s\"", s->key_len ? "," : "", le);
        }
        ls_buf_putc(out, '}');
    }
    ls_buf_putc(out, ' ');
    prom_put_float(out, v);
    ls_buf_putc(out, '\n');
}

void prom_render(const struct prom_registry *reg, struct ls_buf *out)
{
    const struct prom_family *f;
    const struct prom_series *s;
    size_t i;
    double cum;

    for (f = reg->first; f; f = f->next) {
        ls_buf_printf(out, "# TYPE %s %s\n# HELP %s ", f->name, prom_type_names[f->type],
                      f->name);
        prom_put_escaped(out, f->help, strlen(f->help), false);
        ls_buf_putc(out, '\n');
        for (s = f->first; s; s = s->next) {
            switch (f->type) {
            case PROM_COUNTER:
            case PROM_GAUGE:
                prom_line(out, f->name, "", s, NULL, s->value);
                break;
            case PROM_SUMMARY:
                prom_line(out, f->name, "_sum", s, NULL, s->value);
                prom_line(out, f->name, "_count", s, NULL, s->count);
                break;
            case PROM_HISTOGRAM:
                cum = 0;
                for (i = 0; i < f->nbounds; i++) {
                    cum += s->buckets[i];
                    prom_line(out, f->name, "_bucket", s, f->bound_texts[i], cum);
                }
                cum += s->buckets[f->nbounds];
                prom_line(out, f->name, "_bucket", s, "+Inf", cum);
                prom_line(out, f->name, "_sum", s, NULL, s->value);
                prom_line(out, f->name, "_count", s, NULL, s->count);
                break;
            }
        }
    }
}

/* ------------------------------------------------------------------ */
/* <labels>                                                             */

void prom_labels_release(struct prom_labels *l)
{
    size_t i;

    for (i = 0; i < l->n; i++) {
        ls_free(l->v[i].name);
        ls_free(l->v[i].value);
        if (l->v[i].accessor) {
            ls_accessor_release(&l->v[i].acc);
        }
    }
    ls_free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int prom_label_set(struct prom_labels *l, const char *name, const char *value, char *msg,
                          size_t msglen)
{
    struct prom_label *x = NULL;
    size_t i;

    for (i = 0; i < l->n; i++) {
        if (strcmp(l->v[i].name, name) == 0) {
            x = &l->v[i];
            ls_free(x->value);
            if (x->accessor) {
                ls_accessor_release(&x->acc);
            }
            break;
        }
    }
    if (x == NULL) {
        l->v = ls_realloc(l->v, (l->n + 1) * sizeof(*l->v));
        x = &l->v[l->n++];
        x->name = ls_strdup(name);
    }
    x->value = ls_strdup(value);
    x->accessor = strncmp(value, "$.", 2) == 0 || strncmp(value, "$[", 2) == 0;
    x->plain = !x->accessor && strstr(value, "${") == NULL;
    if (x->accessor && ls_accessor_compile(&x->acc, value, msg, msglen) != LS_OK) {
        x->accessor = false;
        return LS_ERROR;
    }
    return LS_OK;
}

/* Prometheus label names: [a-zA-Z_][a-zA-Z0-9_]*, and not __-prefixed (reserved) */
static bool prom_valid_label_name(const char *s)
{
    size_t i;

    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_') ||
        strncmp(s, "__", 2) == 0) {
        return false;
    }
    for (i = 1; s[i]; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '_' ||
              (s[i] >= '0' && s[i] <= '9'))) {
            return false;
        }
    }
    return true;
}

int prom_labels_parse(struct prom_labels *out, const struct prom_labels *base,
                      struct ls_conf_section *sec, bool allow_accessor, const char *who,
                      char *err, size_t errlen)
{
    struct ls_conf_section *c, *ls = NULL;
    struct ls_conf_param *p;
    char msg[300];
    size_t i;

    for (i = 0; base && i < base->n; i++) {
        (void)prom_label_set(out, base->v[i].name, base->v[i].value, msg, sizeof(msg));
    }
    for (c = sec->children; c; c = c->next) {
        if (strcmp(c->name, "labels") != 0) {
            continue;
        }
        if (ls) {
            snprintf(err, errlen, "%s:%d: labels section must have at most 1", c->file, c->line);
            return LS_ERROR;
        }
        ls = c;
    }
    for (p = ls ? ls->params : NULL; p; p = p->next) {
        p->used = true;
        if (!prom_valid_label_name(p->key)) {
            snprintf(err, errlen, "%s:%d: invalid label name '%s' (letters, digits and _, not "
                     "starting with a digit or __)", p->file, p->line, p->key);
            return LS_ERROR;
        }
        if (prom_label_set(out, p->key, p->value, msg, sizeof(msg)) != LS_OK) {
            snprintf(err, errlen, "%s:%d: %s", p->file, p->line, msg);
            return LS_ERROR;
        }
        if (!allow_accessor && out->v[out->n - 1].accessor) {
            snprintf(err, errlen, "%s:%d: record accessor syntax is not available in %s",
                     p->file, p->line, who);
            return LS_ERROR;
        }
    }
    return LS_OK;
}

char **prom_labels_names(const struct prom_labels *l, const char *const *extra, size_t nextra)
{
    char **v = ls_calloc(l->n + nextra + 1, sizeof(char *));
    size_t i;

    for (i = 0; i < l->n; i++) {
        v[i] = l->v[i].name;
    }
    for (i = 0; i < nextra; i++) {
        v[l->n + i] = (char *)extra[i];
    }
    return v;
}

void prom_put_value_text(struct ls_buf *out, const struct ls_value *v)
{
    switch (v->type) {
    case LS_V_STR:
    case LS_V_JSON:
        ls_buf_append(out, v->u.s.p, v->u.s.len);
        break;
    case LS_V_INT: {
        char d[24];
        size_t n = sizeof(d);
        uint64_t u = v->u.i < 0 ? (uint64_t)0 - (uint64_t)v->u.i : (uint64_t)v->u.i;
        do {
            d[--n] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (v->u.i < 0) {
            d[--n] = '-';
        }
        ls_buf_append(out, d + n, sizeof(d) - n);
        break;
    }
    case LS_V_FLOAT:
        prom_put_float(out, v->u.f);
        break;
    case LS_V_BOOL:
        ls_buf_printf(out, "%s", v->u.b ? "true" : "false");
        break;
    case LS_V_NULL:
        break;
    }
}

static const char *prom_hostname(void)
{
    static char host[256];

    if (host[0] == '\0' && gethostname(host, sizeof(host) - 1) != 0) {
        snprintf(host, sizeof(host), "localhost");
    }
    return host;
}

/* tag_parts[i] (negative from the end) as [*p, *p + *n); false past either end */
static bool prom_tag_part(const char *tag, size_t tlen, long i, const char **p, size_t *n)
{
    size_t parts = 1, k, start = 0, idx;

    for (k = 0; k < tlen; k++) {
        parts += tag[k] == '.';
    }
    if (i < 0) {
        i += (long)parts;
    }
    if (i < 0 || (size_t)i >= parts) {
        return false;
    }
    idx = 0;
    for (k = 0; k <= tlen; k++) {
        if (k == tlen || tag[k] == '.') {
            if (idx == (size_t)i) {
                *p = tag + start;
                *n = k - start;
                return true;
            }
            idx++;
            start = k + 1;
        }
    }
    return false;
}

/* One placeholder's text "${...}" (inner: between the braces). False: unknown. */
static bool prom_placeholder(const char *inner, size_t n, const struct ls_record *rec,
                             struct ls_buf *out)
{
    const char *br = memchr(inner, '[', n);
    size_t nlen = br ? (size_t)(br - inner) : n;
    char idxbuf[32];
    long idx = 0;
    bool numeric = false;

    if (br) {
        size_t il = n - nlen - 2;     /* inside [ ] */
        char *end;
        if (inner[n - 1] != ']' || il == 0 || il >= sizeof(idxbuf)) {
            return false;
        }
        memcpy(idxbuf, br + 1, il);
        idxbuf[il] = '\0';
        idx = strtol(idxbuf, &end, 10);
        numeric = *end == '\0';
    }
    if (!br && nlen == 8 && memcmp(inner, "hostname", 8) == 0) {
        ls_buf_append(out, prom_hostname(), strlen(prom_hostname()));
        return true;
    }
    if (!br && nlen == 9 && memcmp(inner, "worker_id", 9) == 0) {
        ls_buf_putc(out, '0');
        return true;
    }
    if (rec == NULL) {
        return false;
    }
    if (!br && nlen == 3 && memcmp(inner, "tag", 3) == 0) {
        ls_buf_append(out, rec->tag, rec->tag_len);
        return true;
    }
    if (br && numeric && ((nlen == 9 && memcmp(inner, "tag_parts", 9) == 0) ||
                          (nlen == 10 && memcmp(inner, "tag_prefix", 10) == 0) ||
                          (nlen == 10 && memcmp(inner, "tag_suffix", 10) == 0))) {
        const char *p;
        size_t pn;
        if (inner[4] == 'p' && inner[5] == 'a') {
            if (!prom_tag_part(rec->tag, rec->tag_len, idx, &p, &pn)) {
                return false;
            }
            ls_buf_append(out, p, pn);
            return true;
        }
        /* the plugin builds prefix and suffix for indexes 0.. only */
        if (idx < 0 || !prom_tag_part(rec->tag, rec->tag_len, idx, &p, &pn)) {
            return false;
        }
        if (inner[4] == 'p') {
            ls_buf_append(out, rec->tag, (size_t)(p + pn - rec->tag));
        } else {
            const char *q;
            size_t qn;
            long parts = 0;
            while (prom_tag_part(rec->tag, rec->tag_len, parts, &q, &qn)) {
                parts++;
            }
            (void)prom_tag_part(rec->tag, rec->tag_len, parts - 1 - idx, &p, &pn);
            ls_buf_append(out, p, rec->tag_len - (size_t)(p - rec->tag));
        }
        return true;
    }
    /* a record key: ${key}, ${key["sub"]} (a hash's member), ${key[N]} (an array's) */
    {
        const struct ls_field *f = ls_record_get(rec, inner, nlen);
        struct ls_accessor acc;
        struct ls_value v;
        struct ls_buf spec;
        char msg[128];
        bool ok;

        if (f == NULL) {
            return false;
        }
        if (!br) {
            /* the plugin makes ${k["x"]} / ${k[N]} of a hash or array, never ${k} */
            if (f->v.type == LS_V_JSON && f->v.u.s.len && (f->v.u.s.p[0] == '{' ||
                                                           f->v.u.s.p[0] == '[')) {
                return false;
            }
            prom_put_value_text(out, &f->v);
            return true;
        }
        if (f->v.type != LS_V_JSON || (numeric ? f->v.u.s.p[0] != '[' : f->v.u.s.p[0] != '{')) {
            return false;
        }
        if (!numeric && (n - nlen < 4 || br[1] != '"' || inner[n - 2] != '"')) {
            return false;
        }
        ls_buf_init(&spec, 0);
        ls_buf_printf(&spec, "$['%.*s']", (int)nlen, inner);
        if (numeric) {
            ls_buf_printf(&spec, "[%ld]", idx);
        } else {
            ls_buf_printf(&spec, "['%.*s']", (int)(n - nlen - 4), br + 2);
        }
        ls_buf_putc(&spec, '\0');
        ok = ls_accessor_compile(&acc, spec.p, msg, sizeof(msg)) == LS_OK;
        ls_buf_release(&spec);
        if (!ok) {
            return false;
        }
        ok = ls_accessor_get(&acc, rec, &v);
        ls_accessor_release(&acc);
        if (ok) {
            prom_put_value_text(out, &v);
        }
        return ok;
    }
}

void prom_label_expand(struct ls_instance *ins, const struct prom_label *l,
                       const struct ls_record *rec, struct ls_buf *out)
{
    const char *s = l->value, *open, *close;
    struct ls_value v;

    if (l->accessor) {
        if (rec && ls_accessor_get(&l->acc, rec, &v)) {
            prom_put_value_text(out, &v);
        }
        return;
    }
    if (l->plain) {
        ls_buf_append(out, s, strlen(s));
        return;
    }
    /* the plugin's /(\${[^\[}]+(\[[^\]]+\])?})/ */
    while ((open = strstr(s, "${")) != NULL) {
        const char *q = open + 2;
        while (*q && *q != '[' && *q != '}') {
            q++;
        }
        if (q == open + 2) {
            ls_buf_append(out, s, (size_t)(q - s));
            s = q;
            continue;
        }
        if (*q == '[') {
            const char *r = q + 1;
            while (*r && *r != ']') {
                r++;
            }
            close = (*r == ']' && r > q + 1 && r[1] == '}') ? r + 1 : NULL;
        } else {
            close = *q == '}' ? q : NULL;
        }
        if (close == NULL) {
            ls_buf_append(out, s, (size_t)(q - s));
            s = q;
            continue;
        }
        ls_buf_append(out, s, (size_t)(open - s));
        if (!prom_placeholder(open + 2, (size_t)(close - open - 2), rec, out)) {
            static double last;
            double now = ls_mono_now();
            if (now - last >= 10.0) {
                last = now;
                ls_plg_warn(ins, "unknown placeholder `%.*s` found", (int)(close + 1 - open),
                            open);
            }
            ls_buf_append(out, open, (size_t)(close + 1 - open));
        }
        s = close + 1;
    }
    ls_buf_append(out, s, strlen(s));
}
