/*
 * sd_entry.c - fluent-plugin-systemd's entry mutator, and its `systemd_entry` filter.
 *
 * As SystemdEntryMutator#run: with every option at its default the entry is unchanged;
 * with field_map_strict only the mapped fields are kept; otherwise the mapped fields come
 * first, then every other field, its name stripped of leading underscores and/or
 * lowercased. field_map is inverted as the plugin inverts it: for each new name (in the
 * order the values list them) the source fields whose value is that name, or contains it
 * (Ruby's String#include? on a string value, so "message" also maps to "mess"), or whose
 * array holds it; several present sources are joined with a space. A renamed field that
 * meets a field already there is joined "its value, then the other", as the plugin's
 * format_fields does.
 */
#include "sd_entry.h"
#include "json.h"
#include "log.h"

#define F(f) offsetof(struct sd_mutator, f)

const struct ls_param sd_mutator_params[] = {
    { "field_map", LS_P_STR, "{}", 0, F(field_map_text),
      "JSON hash: journal field -> new name (or array of names)", NULL, NULL, 0, 0 },
    { "field_map_strict", LS_P_BOOL, "false", 0, F(field_map_strict),
      "keep only the fields field_map names", NULL, NULL, 0, 0 },
    { "fields_strip_underscores", LS_P_BOOL, "false", 0, F(fields_strip_underscores),
      "remove leading underscores from the other fields' names", NULL, NULL, 0, 0 },
    { "fields_lowercase", LS_P_BOOL, "false", 0, F(fields_lowercase),
      "lowercase the other fields' names", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

/* The JSON string at v (a string value of the parsed map), or NULL. */
static char *str_of(const struct ls_value *v)
{
    return v->type == LS_V_STR ? ls_strndup(v->u.s.p, v->u.s.len) : NULL;
}

struct sd_names {
    char **v;
    size_t n;
};

static void names_add_unique(struct sd_names *n, const char *s)
{
    for (size_t i = 0; i < n->n; i++) {
        if (strcmp(n->v[i], s) == 0) {
            return;
        }
    }
    n->v = ls_realloc(n->v, (n->n + 1) * sizeof(char *));
    n->v[n->n++] = ls_strdup(s);
}

int sd_mutator_init(struct sd_mutator *m, char *err, size_t errlen)
{
    struct ls_arena arena;
    struct ls_record rec;
    struct sd_names *vals = NULL;   /* per source: its new names (an array, or one string) */
    bool *is_str = NULL;
    struct sd_names all = { 0 };
    int rc = LS_OK;

    ls_arena_init(&arena, 1024);
    ls_record_init(&rec, &arena);
    if (ls_json_parse_object(m->field_map_text, strlen(m->field_map_text), &rec) != LS_OK) {
        snprintf(err, errlen, "field_map: not a JSON hash: %s", m->field_map_text);
        rc = LS_ERROR;
        goto out;
    }
    m->nsrc = rec.nfields;
    m->src = ls_calloc(rec.nfields + 1, sizeof(char *));
    vals = ls_calloc(rec.nfields + 1, sizeof(*vals));
    is_str = ls_calloc(rec.nfields + 1, sizeof(bool));
    for (unsigned i = 0; i < rec.nfields && rc == LS_OK; i++) {
        const struct ls_value *v = &rec.fields[i].v;
        m->src[i] = ls_strndup(rec.fields[i].key, rec.fields[i].key_len);
        if (v->type == LS_V_STR) {
            char *s = str_of(v);
            names_add_unique(&vals[i], s);
            names_add_unique(&all, s);
            ls_free(s);
            is_str[i] = true;
        } else if (v->type == LS_V_JSON && v->u.s.len && v->u.s.p[0] == '[') {
            size_t off = 0, elen;
            const char *elem;
            int r;
            while ((r = ls_json_array_next(v->u.s.p, v->u.s.len, &off, &elem, &elen)) == LS_OK) {
                const char *s;
                size_t sl, used;
                if (elen == 0 || elem[0] != '"' ||
                    ls_json_string_at(elem, elen, &arena, &s, &sl, &used) != LS_OK) {
                    r = LS_ERROR;
                    break;
                }
                char *c = ls_strndup(s, sl);
                vals[i].v = ls_realloc(vals[i].v, (vals[i].n + 1) * sizeof(char *));
                vals[i].v[vals[i].n++] = ls_strdup(c);
                names_add_unique(&all, c);
                ls_free(c);
            }
            if (r == LS_ERROR) {
                snprintf(err, errlen, "`field_map` values must be strings or an array of strings");
                rc = LS_ERROR;
            }
        } else {
            snprintf(err, errlen, "`field_map` values must be strings or an array of strings");
            rc = LS_ERROR;
        }
    }
    if (rc != LS_OK) {
        goto out;
    }
    m->targets = ls_calloc(all.n + 1, sizeof(*m->targets));
    m->ntargets = all.n;
    for (size_t t = 0; t < all.n; t++) {
        struct sd_map_target *tg = &m->targets[t];
        tg->name = ls_strdup(all.v[t]);
        tg->src = ls_calloc(m->nsrc + 1, sizeof(size_t));
        for (size_t i = 0; i < m->nsrc; i++) {
            bool hit = false;
            for (size_t k = 0; k < vals[i].n && !hit; k++) {
                /* v == cstm || v.include?(cstm): a substring for a string value */
                hit = is_str[i] ? strstr(vals[i].v[k], tg->name) != NULL
                                : strcmp(vals[i].v[k], tg->name) == 0;
            }
            if (hit) {
                tg->src[tg->nsrc++] = i;
            }
        }
    }
    if (m->field_map_strict && m->nsrc == 0) {
        ls_warn("`field_map_strict` set to true with empty `field_map`, expect no fields");
    }
    m->identity = m->nsrc == 0 && !m->field_map_strict && !m->fields_strip_underscores &&
                  !m->fields_lowercase;
out:
    for (size_t i = 0; vals && i < m->nsrc; i++) {
        for (size_t k = 0; k < vals[i].n; k++) {
            ls_free(vals[i].v[k]);
        }
        ls_free(vals[i].v);
    }
    ls_free(vals);
    ls_free(is_str);
    for (size_t i = 0; i < all.n; i++) {
        ls_free(all.v[i]);
    }
    ls_free(all.v);
    ls_record_release(&rec);
    ls_arena_release(&arena);
    return rc;
}

void sd_mutator_release(struct sd_mutator *m)
{
    for (size_t i = 0; i < m->nsrc; i++) {
        ls_free(m->src[i]);
    }
    ls_free(m->src);
    for (size_t t = 0; t < m->ntargets; t++) {
        ls_free(m->targets[t].name);
        ls_free(m->targets[t].src);
    }
    ls_free(m->targets);
    m->src = NULL;
    m->targets = NULL;
    m->nsrc = m->ntargets = 0;
}

/* a value as the text Ruby's Array#join makes of it */
static const char *text_of(struct ls_arena *a, const struct ls_value *v, size_t *len)
{
    return ls_value_to_text(a, v, len);
}

static struct ls_value join2(struct ls_arena *a, const struct ls_value *x, const struct ls_value *y)
{
    size_t xl, yl;
    const char *xs = text_of(a, x, &xl), *ys = text_of(a, y, &yl);
    char *s = ls_arena_alloc(a, xl + yl + 2);

    memcpy(s, xs, xl);
    s[xl] = ' ';
    memcpy(s + xl + 1, ys, yl);
    s[xl + 1 + yl] = '\0';
    return ls_vstr(s, xl + 1 + yl);
}

static void map_fields(const struct sd_mutator *m, const struct ls_record *in, struct ls_record *out)
{
    for (size_t t = 0; t < m->ntargets; t++) {
        const struct sd_map_target *tg = &m->targets[t];
        struct ls_value acc;
        bool have = false;
        for (size_t k = 0; k < tg->nsrc; k++) {
            const char *name = m->src[tg->src[k]];
            const struct ls_field *f = ls_record_get(in, name, strlen(name));
            if (f == NULL || f->v.type == LS_V_NULL) {
                continue;
            }
            acc = have ? join2(out->arena, &acc, &f->v) : f->v;
            have = true;
        }
        if (have) {
            ls_record_set(out, tg->name, strlen(tg->name), &acc);
        }
    }
}

void sd_mutator_run(const struct sd_mutator *m, const struct ls_record *in, struct ls_record *out)
{
    ls_record_clear(out);
    out->tag = in->tag;
    out->tag_len = in->tag_len;
    out->time = in->time;
    out->src = in->src;
    out->pos = in->pos;
    if (m->identity) {
        for (unsigned i = 0; i < in->nfields; i++) {
            ls_record_add(out, in->fields[i].key, in->fields[i].key_len, &in->fields[i].v);
        }
        return;
    }
    map_fields(m, in, out);
    if (m->field_map_strict) {
        return;
    }
    for (unsigned i = 0; i < in->nfields; i++) {
        const struct ls_field *f = &in->fields[i];
        const char *k = f->key;
        size_t kl = f->key_len;
        bool mapped_src = false;
        for (size_t s = 0; s < m->nsrc && !mapped_src; s++) {
            mapped_src = strlen(m->src[s]) == kl && memcmp(m->src[s], k, kl) == 0;
        }
        if (mapped_src) {
            continue;
        }
        if (m->fields_strip_underscores) {
            while (kl > 0 && *k == '_') {
                k++;
                kl--;
            }
        }
        if (m->fields_lowercase) {
            char *low = ls_arena_alloc(out->arena, kl + 1);
            for (size_t c = 0; c < kl; c++) {
                low[c] = (char)((k[c] >= 'A' && k[c] <= 'Z') ? k[c] + 32 : k[c]);
            }
            low[kl] = '\0';
            k = low;
        }
        {
            struct ls_field *have = ls_record_get(out, k, kl);
            if (have) {
                struct ls_value j = join2(out->arena, &f->v, &have->v);
                have->v = j;
            } else {
                ls_record_add(out, k, kl, &f->v);
            }
        }
    }
}

/* ---- the systemd_entry filter ---- */

struct sd_entry_filter {
    struct sd_mutator m;
    struct ls_record tmp;
    struct ls_arena arena;
};

static int sdf_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct sd_entry_filter *f = ins->ctx;
    char msg[256];

    ls_arena_init(&f->arena, 1024);
    ls_record_init(&f->tmp, &f->arena);
    if (sd_mutator_init(&f->m, msg, sizeof(msg)) != LS_OK) {
        ls_conf_param_error(sec, "field_map", err, errlen, "%s", msg);
        return LS_ERROR;
    }
    return LS_OK;
}

static int sdf_filter(struct ls_instance *ins, struct ls_record *rec)
{
    struct sd_entry_filter *f = ins->ctx;

    if (f->m.identity) {
        return LS_OK;
    }
    /* the input's record as it is, then the mutated one back into it (new strings in its
     * arena, which lives until the input's next record) */
    ls_record_clear(&f->tmp);
    f->tmp.tag = rec->tag;
    f->tmp.tag_len = rec->tag_len;
    f->tmp.time = rec->time;
    f->tmp.src = rec->src;
    f->tmp.pos = rec->pos;
    for (unsigned i = 0; i < rec->nfields; i++) {
        ls_record_add(&f->tmp, rec->fields[i].key, rec->fields[i].key_len, &rec->fields[i].v);
    }
    sd_mutator_run(&f->m, &f->tmp, rec);
    return LS_OK;
}

static void sdf_destroy(struct ls_instance *ins)
{
    struct sd_entry_filter *f = ins->ctx;

    sd_mutator_release(&f->m);
    ls_record_release(&f->tmp);
    ls_arena_release(&f->arena);
}

const struct ls_plugin ls_plugin_filter_systemd_entry = {
    .name = "systemd_entry",
    .kind = LS_PLUGIN_FILTER,
    .description = "rename, map and lowercase journal fields (fluent-plugin-systemd's filter)",
    .params = sd_mutator_params,
    .ctx_size = sizeof(struct sd_entry_filter),
    .init = sdf_init,
    .destroy = sdf_destroy,
    .filter = sdf_filter,
};
