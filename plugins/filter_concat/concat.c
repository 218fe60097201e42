/*
 * concat.c - fluent-plugin-concat's concat filter: the values of `key` of consecutive records
 * of one stream are joined into one record (multiline stack traces split into records by
 * Docker, CRI or a line-by-line source).
 *
 * As lib/fluent/plugin/filter_concat.rb: a stream is "tag:" plus the stream_identity_key's
 * value ("tag:default" without one; with use_partial_metadata the partial id is appended).
 * A group ends by n_lines, by multiline_start_regexp / multiline_end_regexp /
 * continuous_line_regexp, by partial_key's value differing from partial_value, by Docker's
 * partial metadata (partial_last "true") or by a CRI log tag "F". The record that ends a group
 * carries the group out: its own fields, overridden by the group's first record's, with key
 * set to the lines joined by separator (Ruby's record.merge(first.merge(key => joined))), at
 * its own time or, with use_first_timestamp, the first record's.
 *
 * A group that waits flush_interval seconds with no record for its stream, and every group
 * still held at shutdown, goes to timeout_label when set, else to <label @ERROR> as the
 * plugin's emit_error_event does. Without either, fluentd logs "dump an error event" and
 * drops the lines; logship sends the group on to this filter's <match> instead (the rest of
 * its filters, then the output), with an info line naming the stream, so nothing is lost.
 *
 * Back-pressure: a group's record is handed on before the filter's state moves, so when the
 * output's buffer is full (overflow_action block) the record that would end the group is
 * refused whole (LS_AGAIN) and offered again by the input, never half-taken.
 *
 * Held lines live in memory, as in fluentd, where kill -9 loses them: in_tail's pos_file has
 * moved past them. Here each unfinished group holds its source (ls_source_hold) at the
 * record before its first line, so in_tail persists no further and reads the lines again
 * after a crash; records of that source that pass on meanwhile are untracked, so no
 * buffer's high-water mark claims the held lines either. The price is a possible second
 * delivery of what passed on after the held position, where fluentd loses the group.
 */
#include "plugin.h"
#include "parser.h"
#include "json.h"
#include "log.h"

enum { M_LINE, M_PARTIAL, M_META, M_CRI, M_REGEXP };

/* A group that never ends (continuation lines that keep coming, a start line that never does)
 * would hold memory without bound; the plugin has no limit outside partial_key mode. Past this
 * many bytes held for one stream the group is handed on as it is, with a warning. */
#define CONCAT_GROUP_MAX ((size_t)16 << 20)
/* streams whose groups are empty are forgotten after this long even with flush_interval 0 */
#define CONCAT_IDLE_FORGET 60.0
enum { OV_IGNORE, OV_TRUNCATE, OV_DROP, OV_NEW };
enum { PM_FLUENTD, PM_JOURNALD, PM_JOURNALD_LC };

/* a held record: its time and a copy of its fields (in the stream's arena) */
struct item {
    struct ls_time time;
    struct ls_field *fields;
    unsigned nfields;
};

struct stream {
    char *id;                 /* "tag:identity", NUL-terminated */
    size_t id_len;
    size_t tag_len;           /* the tag is id's first tag_len bytes */
    struct ls_arena arena;
    struct item *items;
    size_t n, cap;
    int64_t size;             /* buffer_size: bytes counted toward buffer_limit_size */
    size_t held;              /* bytes of key values held (CONCAT_GROUP_MAX) */
    double last;              /* monotonic time of its last record */
    struct ls_engine *eng;    /* for ls_source_hold: its group's lines are read again after
                               * kill -9, not lost */
    uint64_t last_src, last_pos;    /* its last record's source position */
};

struct concat {
    char *key;
    char *separator;
    int64_t n_lines;
    char *start_src, *end_src, *cont_src;
    char *stream_identity_key;
    double flush_interval;
    char *timeout_label;
    bool use_first_timestamp;
    char *partial_key, *partial_value;
    bool keep_partial_key;
    bool use_partial_metadata;
    int partial_metadata_format;
    bool keep_partial_metadata;
    bool use_partial_cri_logtag;
    char *partial_cri_logtag_key;
    char *partial_cri_stream_key;
    int64_t buffer_limit_size;
    int buffer_overflow_method;

    int mode;
    struct ls_regex *start_re, *end_re, *cont_re;
    const char *pm_message, *pm_id, *pm_ordinal, *pm_last, *pm_indicator;
    struct stream **streams;
    size_t nstreams;
    struct ls_timer *timer;
    bool stopped;
    struct ls_arena arena;    /* records handed on by the timer and at stop */
    struct ls_buf text;       /* scratch: identities, joined lines, sizes */
};

#define F(f) offsetof(struct concat, f)

static const struct ls_param concat_params[] = {
    { "key", LS_P_STR, NULL, LS_PF_REQUIRED, F(key), "the field whose values are joined", NULL,
      NULL, 0, 0 },
    { "separator", LS_P_STR, "\n", 0, F(separator), "between the joined values", NULL, NULL, 0,
      0 },
    { "n_lines", LS_P_INT, NULL, LS_PF_NULLABLE, F(n_lines), "join every n records", NULL, NULL,
      1, 1e18 },
    { "multiline_start_regexp", LS_P_STR, NULL, LS_PF_NULLABLE, F(start_src),
      "/regexp/ matching the first line of a group", NULL, NULL, 0, 0 },
    { "multiline_end_regexp", LS_P_STR, NULL, LS_PF_NULLABLE, F(end_src),
      "/regexp/ matching the last line of a group", NULL, NULL, 0, 0 },
    { "continuous_line_regexp", LS_P_STR, NULL, LS_PF_NULLABLE, F(cont_src),
      "/regexp/ a line must match to join the group (default: any line)", NULL, NULL, 0, 0 },
    { "stream_identity_key", LS_P_STR, NULL, LS_PF_NULLABLE, F(stream_identity_key),
      "field that names the stream a record belongs to (container_id)", NULL, NULL, 0, 0 },
    { "flush_interval", LS_P_TIME, "60", 0, F(flush_interval),
      "a group waiting this long is handed on (0: never)", NULL, NULL, 0, 0 },
    { "timeout_label", LS_P_STR, NULL, LS_PF_NULLABLE, F(timeout_label),
      "label for groups handed on by flush_interval or at stop", NULL, NULL, 0, 0 },
    { "use_first_timestamp", LS_P_BOOL, "false", 0, F(use_first_timestamp),
      "a group takes its first record's time", NULL, NULL, 0, 0 },
    { "partial_key", LS_P_STR, NULL, LS_PF_NULLABLE, F(partial_key),
      "field whose value partial_value marks a partial record", NULL, NULL, 0, 0 },
    { "partial_value", LS_P_STR, NULL, LS_PF_NULLABLE, F(partial_value),
      "partial_key's value of a partial record", NULL, NULL, 0, 0 },
    { "keep_partial_key", LS_P_BOOL, "false", 0, F(keep_partial_key),
      "keep partial_key (or partial_cri_logtag_key) in the joined record", NULL, NULL, 0, 0 },
    { "use_partial_metadata", LS_P_BOOL, "false", 0, F(use_partial_metadata),
      "join by Docker's partial message metadata", NULL, NULL, 0, 0 },
    { "partial_metadata_format", LS_P_ENUM, "docker-fluentd", 0, F(partial_metadata_format),
      "the metadata's field names", NULL, "docker-fluentd|docker-journald|"
      "docker-journald-lowercase", 0, 0 },
    { "keep_partial_metadata", LS_P_BOOL, "false", 0, F(keep_partial_metadata),
      "keep the partial metadata fields in the joined record", NULL, NULL, 0, 0 },
    { "use_partial_cri_logtag", LS_P_BOOL, "false", 0, F(use_partial_cri_logtag),
      "join by the CRI log tag (P partial, F full)", NULL, NULL, 0, 0 },
    { "partial_cri_logtag_key", LS_P_STR, NULL, LS_PF_NULLABLE, F(partial_cri_logtag_key),
      "field holding the CRI log tag", NULL, NULL, 0, 0 },
    { "partial_cri_stream_key", LS_P_STR, "stream", 0, F(partial_cri_stream_key),
      "field holding the CRI stream (removed from joined records)", NULL, NULL, 0, 0 },
    { "buffer_limit_size", LS_P_SIZE, "512000", 0, F(buffer_limit_size),
      "partial_key mode: bytes a group may hold", NULL, NULL, 0, 0 },
    { "buffer_overflow_method", LS_P_ENUM, "ignore", 0, F(buffer_overflow_method),
      "partial_key mode, over buffer_limit_size: keep going, hand on the group without the "
      "record, drop the group, or hand it on and start a new one", NULL,
      "ignore|truncate|drop|new", 0, 0 },
    LS_PARAM_END
};

/* Ruby's to_s of a value (nil is "") */
static void put_to_s(struct ls_buf *b, const struct ls_value *v)
{
    if (v->type == LS_V_STR || v->type == LS_V_JSON) {
        ls_buf_append(b, v->u.s.p, v->u.s.len);
    } else if (v->type != LS_V_NULL) {
        ls_ruby_put_value(b, v, false);
    }
}

static const struct ls_field *get(const struct ls_field *f, unsigned n, const char *key)
{
    size_t len = strlen(key);

    for (unsigned i = 0; i < n; i++) {
        if (f[i].key_len == len && memcmp(f[i].key, key, len) == 0) {
            return &f[i];
        }
    }
    return NULL;
}

static const struct ls_field *rget(const struct ls_record *r, const char *key)
{
    return key ? get(r->fields, r->nfields, key) : NULL;
}

static bool str_is(const struct ls_field *f, const char *s)
{
    return f && f->v.type == LS_V_STR && f->v.u.s.len == strlen(s)
           && memcmp(f->v.u.s.p, s, f->v.u.s.len) == 0;
}

/* Regexp#match? on the key's value: 1, 0 (nil never matches), -1 (not a string: Ruby's
 * TypeError, which the plugin sends to @ERROR) */
static int matches(struct ls_regex *re, const struct ls_field *f)
{
    if (re == NULL || f == NULL || f->v.type == LS_V_NULL) {
        return 0;
    }
    if (f->v.type != LS_V_STR) {
        return -1;
    }
    return ls_regex_search(re, f->v.u.s.p, f->v.u.s.len) > 0 ? 1 : 0;
}

/* ---- streams ---- */

static struct stream *stream_get(struct concat *c, struct ls_engine *eng, const char *tag,
                                 size_t tag_len, const char *ident, size_t ident_len)
{
    struct stream *st;

    for (size_t i = 0; i < c->nstreams; i++) {
        st = c->streams[i];
        if (st->tag_len == tag_len && st->id_len == tag_len + 1 + ident_len
            && memcmp(st->id, tag, tag_len) == 0
            && memcmp(st->id + tag_len + 1, ident, ident_len) == 0) {
            return st;
        }
    }
    st = ls_calloc(1, sizeof(*st));
    st->id_len = tag_len + 1 + ident_len;
    st->id = ls_malloc(st->id_len + 1);
    memcpy(st->id, tag, tag_len);
    st->id[tag_len] = ':';
    memcpy(st->id + tag_len + 1, ident, ident_len);
    st->id[st->id_len] = '\0';
    st->tag_len = tag_len;
    st->eng = eng;
    ls_arena_init(&st->arena, 4096);
    c->streams = ls_realloc(c->streams, (c->nstreams + 1) * sizeof(*c->streams));
    c->streams[c->nstreams++] = st;
    return st;
}

static void stream_clear(struct stream *st)
{
    ls_source_release(st->eng, st);
    st->n = 0;
    st->size = 0;
    st->held = 0;
    ls_arena_reset(&st->arena);
}

static void stream_free(struct stream *st)
{
    ls_source_release(st->eng, st);
    ls_arena_release(&st->arena);
    ls_free(st->items);
    ls_free(st->id);
    ls_free(st);
}

static void copy_value(struct ls_arena *a, struct ls_value *dst, const struct ls_value *src)
{
    *dst = *src;
    if ((src->type == LS_V_STR || src->type == LS_V_JSON) && src->u.s.len) {
        dst->u.s.p = ls_arena_memdup(a, src->u.s.p, src->u.s.len);
    }
}

static void stream_push(struct stream *st, const struct ls_record *rec)
{
    struct item *it;

    if (st->n == 0) {
        /* a group starts: its source may not be persisted past the record before it (this
         * stream's last one, if from the same source; else what the input had persisted) */
        ls_source_hold(st->eng, st, rec->src, st->last_src == rec->src ? st->last_pos : 0);
    }
    if (st->n == st->cap) {
        st->cap = st->cap ? 2 * st->cap : 4;
        st->items = ls_realloc(st->items, st->cap * sizeof(*st->items));
    }
    it = &st->items[st->n++];
    it->time = rec->time;
    for (unsigned i = 0; i < rec->nfields; i++) {
        if (rec->fields[i].v.type == LS_V_STR || rec->fields[i].v.type == LS_V_JSON) {
            st->held += rec->fields[i].v.u.s.len;
        }
    }
    it->nfields = rec->nfields;
    it->fields = ls_arena_alloc(&st->arena, (rec->nfields ? rec->nfields : 1) * sizeof(*it->fields));
    for (unsigned i = 0; i < rec->nfields; i++) {
        it->fields[i].key = ls_arena_memdup(&st->arena, rec->fields[i].key, rec->fields[i].key_len);
        it->fields[i].key_len = rec->fields[i].key_len;
        copy_value(&st->arena, &it->fields[i].v, &rec->fields[i].v);
    }
}

/* ---- the record a group becomes ---- */

struct member {
    const struct ls_field *fields;
    unsigned nfields;
    struct ls_time time;
    int64_t ordinal;
};

static int by_ordinal(const void *a, const void *b)
{
    const struct member *x = a, *y = b;

    return (x->ordinal > y->ordinal) - (x->ordinal < y->ordinal);
}

/*
 * Build in out (strings from arena) the record the group items[0..k) of st, plus extra
 * when it belongs to the group, becomes; merged with cur (the record that ends the group,
 * Ruby's record.merge) unless cur is NULL (a timeout or the stop). *first: the group's first
 * record's time. LS_ERROR when the group is empty (the plugin's NoMethodError on nil).
 */
static int build(struct ls_instance *ins, struct stream *st, size_t k,
                 const struct ls_record *extra, const struct ls_record *cur,
                 struct ls_arena *arena, struct ls_record *out, struct ls_time *first)
{
    struct concat *c = ins->ctx;
    size_t n = k + (extra ? 1 : 0), i;
    struct member stackm[16], *m = n <= 16 ? stackm : ls_malloc(n * sizeof(*m));
    size_t keylen = strlen(c->key);
    struct ls_value v;
    const char *p;

    if (n == 0) {
        return LS_ERROR;
    }
    for (i = 0; i < k; i++) {
        m[i].fields = st->items[i].fields;
        m[i].nfields = st->items[i].nfields;
        m[i].time = st->items[i].time;
    }
    if (extra) {
        m[k].fields = extra->fields;
        m[k].nfields = extra->nfields;
        m[k].time = extra->time;
    }
    *first = m[0].time;
    /* the first record's fields, before the ordinal sort (the plugin takes .first unsorted) */
    if (cur) {
        for (i = 0; i < cur->nfields; i++) {
            ls_record_add(out, cur->fields[i].key, cur->fields[i].key_len, &cur->fields[i].v);
        }
    }
    for (i = 0; i < m[0].nfields; i++) {
        ls_record_set(out, m[0].fields[i].key, m[0].fields[i].key_len, &m[0].fields[i].v);
    }
    if (c->mode == M_META) {
        for (i = 0; i < n; i++) {
            const struct ls_field *o = get(m[i].fields, m[i].nfields, c->pm_ordinal);
            m[i].ordinal = 0;
            if (o && o->v.type == LS_V_INT) {
                m[i].ordinal = o->v.u.i;
            } else if (o && o->v.type == LS_V_STR) {
                struct ls_value iv = ls_value_ruby_to_i(arena, o->v.u.s.p, o->v.u.s.len);
                m[i].ordinal = iv.type == LS_V_INT ? iv.u.i : 0;
            }
        }
        qsort(m, n, sizeof(*m), by_ordinal);
    }
    ls_buf_reset(&c->text);
    for (i = 0; i < n; i++) {
        const struct ls_field *f = get(m[i].fields, m[i].nfields, c->key);
        if (i) {
            ls_buf_append(&c->text, c->separator, strlen(c->separator));
        }
        if (f) {
            put_to_s(&c->text, &f->v);
        }
    }
    if (m != stackm) {
        ls_free(m);
    }
    p = ls_arena_memdup(arena, c->text.len ? c->text.p : "", c->text.len);
    v = ls_vstr(p, c->text.len);
    ls_record_set(out, c->key, keylen, &v);
    return LS_OK;
}

/* The plugin's deletions: from the group's record (new_record.delete) and, when merged, from
 * the merged record. Removing from the merged record only is the same unless keep_* keeps
 * the key, in which case the ending record's own value stays (merge put it there first). */
static void strip(struct concat *c, struct ls_record *out, const struct ls_record *cur)
{
    const char *k = NULL;

    if (cur == NULL) {
        return;     /* a timeout or the stop: flush_buffer deletes nothing */
    }
    if (c->mode == M_PARTIAL) {
        k = c->partial_key;
    } else if (c->mode == M_CRI) {
        k = c->partial_cri_logtag_key;
    }
    if (k) {
        const struct ls_field *own = rget(cur, k);
        if (c->keep_partial_key && own) {
            ls_record_set(out, k, strlen(k), &own->v);
        } else {
            ls_record_del(out, k, strlen(k));
        }
    }
    if (c->mode == M_META && !c->keep_partial_metadata) {
        ls_record_del(out, c->pm_message, strlen(c->pm_message));
        ls_record_del(out, c->pm_id, strlen(c->pm_id));
        ls_record_del(out, c->pm_ordinal, strlen(c->pm_ordinal));
        ls_record_del(out, c->pm_last, strlen(c->pm_last));
    } else if (c->mode == M_CRI) {
        ls_record_del(out, c->partial_cri_stream_key, strlen(c->partial_cri_stream_key));
    }
}

/* Hand on the group items[0..k) (+ extra) ended by cur, as the plugin's filter_stream does. */
static int hand_on_as(struct ls_instance *ins, struct stream *st, size_t k,
                      const struct ls_record *extra, const struct ls_record *cur, bool merge,
                      struct ls_time *first)
{
    struct concat *c = ins->ctx;
    struct ls_record out;
    int rc;

    /* a record of its own, not one in ctx: a rewrite loop may bring a record back here
     * while this one is still on its way */
    ls_record_init(&out, cur->arena);
    if (build(ins, st, k, extra, merge ? cur : NULL, cur->arena, &out, first) != LS_OK) {
        ls_record_release(&out);
        return LS_ERROR;
    }
    if (merge) {
        strip(c, &out, cur);
    }
    out.tag = cur->tag;
    out.tag_len = cur->tag_len;
    out.time = c->use_first_timestamp || !merge ? *first : cur->time;
    /* untracked (src 0): a joined record is not one position of its source */
    rc = ls_filter_emit_next(ins, &out);
    ls_record_release(&out);
    return rc;
}

static int hand_on(struct ls_instance *ins, struct stream *st, size_t k,
                   const struct ls_record *extra, const struct ls_record *cur,
                   struct ls_time *first)
{
    return hand_on_as(ins, st, k, extra, cur, true, first);
}

/* A group given up waiting (timeout, stop): timeout_label, @ERROR, else on to the <match>. */
static int let_go(struct ls_instance *ins, struct stream *st, bool at_stop)
{
    struct concat *c = ins->ctx;
    struct ls_record out;
    struct ls_time first;
    const char *what = at_stop ? "Flush remaining buffer" : "Timeout flush";
    int rc;

    ls_arena_reset(&c->arena);
    ls_record_init(&out, &c->arena);
    if (build(ins, st, st->n, NULL, NULL, &c->arena, &out, &first) != LS_OK) {
        ls_record_release(&out);
        return LS_OK;
    }
    out.tag = st->id;
    out.tag_len = st->tag_len;
    if (c->use_first_timestamp || at_stop) {
        out.time = first;
    } else {
        ls_wall_now(&out.time.sec, &out.time.nsec);
    }
    if (c->timeout_label) {
        rc = ls_emit_to_label(ins, c->timeout_label, &out);
    } else if (ls_has_error_label(ins->engine)) {
        char why[300];
        snprintf(why, sizeof(why), "%s: %s", what, st->id);
        rc = ls_emit_error(ins, &out, why);
        if (rc == LS_ERROR) {
            rc = LS_OK;     /* routed to @ERROR: that is what emit_error_event does */
        }
    } else {
        rc = ls_filter_emit_next(ins, &out);
    }
    ls_record_release(&out);
    if (rc != LS_AGAIN) {
        ls_plg_info(ins, "%s: %s", what, st->id);
    }
    return rc;
}

/* ---- the modes ---- */

static int64_t bytesize(struct concat *c, const struct ls_record *rec)
{
    int64_t n = 0;

    for (unsigned i = 0; i < rec->nfields; i++) {
        ls_buf_reset(&c->text);
        put_to_s(&c->text, &rec->fields[i].v);
        n += (int64_t)(rec->fields[i].key_len + c->text.len);
    }
    return n;
}

static int do_regexp(struct ls_instance *ins, struct stream *st, struct ls_record *rec,
                     const struct ls_field *kf)
{
    struct concat *c = ins->ctx;
    int fl = matches(c->start_re, kf), ll = matches(c->end_re, kf), cont, rc;
    struct ls_time first;

    if (fl < 0 || ll < 0) {
        return LS_ERROR;
    }
    if (fl) {
        if (st->n == 0) {
            if (!ll) {
                stream_push(st, rec);
                return LS_DECLINED;
            }
            rc = hand_on(ins, st, 0, rec, rec, &first);
            return rc == LS_AGAIN ? LS_AGAIN : LS_DECLINED;
        }
        rc = hand_on(ins, st, st->n, NULL, rec, &first);
        if (rc == LS_AGAIN) {
            return LS_AGAIN;
        }
        stream_clear(st);
        if (ll) {
            rc = hand_on(ins, st, 0, rec, rec, &first);
            if (rc != LS_AGAIN) {
                return LS_DECLINED;
            }
            /* the first group is gone already: hold this line, it leaves with the next */
        }
        stream_push(st, rec);
        return LS_DECLINED;
    }
    if (ll) {
        rc = hand_on(ins, st, st->n, rec, rec, &first);
        if (rc == LS_AGAIN) {
            return LS_AGAIN;
        }
        stream_clear(st);
        return LS_DECLINED;
    }
    if (st->n == 0) {
        if (c->start_re == NULL) {
            stream_push(st, rec);
            return LS_DECLINED;
        }
        return LS_OK;       /* a line outside any group passes as it is */
    }
    cont = c->cont_re ? matches(c->cont_re, kf) : 1;
    if (cont < 0) {
        return LS_ERROR;
    }
    if (cont) {
        stream_push(st, rec);
        return LS_DECLINED;
    }
    rc = hand_on(ins, st, st->n, NULL, rec, &first);
    if (rc == LS_AGAIN) {
        return LS_AGAIN;
    }
    stream_clear(st);
    if (c->use_first_timestamp) {
        rec->time = first;
    }
    return LS_OK;
}

static int do_partial(struct ls_instance *ins, struct stream *st, struct ls_record *rec,
                      const struct ls_field *pf)
{
    struct concat *c = ins->ctx;
    int64_t size = bytesize(c, rec);
    bool over = st->size + size > c->buffer_limit_size, force = false, with_rec = true;
    bool complete = !str_is(pf, c->partial_value);
    size_t k = st->n;
    struct ls_time first;
    int rc;

    if (over) {
        switch (c->buffer_overflow_method) {
        case OV_IGNORE:
            break;
        case OV_TRUNCATE:
        case OV_NEW:
            force = true;
            with_rec = false;
            break;
        case OV_DROP:
            k = 0;
            with_rec = false;
            break;
        }
    }
    if (!force && !complete) {
        /* held: no record goes out, so nothing can be refused */
        if (over && c->buffer_overflow_method == OV_DROP) {
            stream_clear(st);
            ls_plg_debug(ins, "buffer_limit_size reached: a group of %s dropped", st->id);
        } else {
            st->size = over ? 0 : st->size + size;
            stream_push(st, rec);
        }
        return LS_DECLINED;
    }
    rc = hand_on(ins, st, k, with_rec ? rec : NULL, rec, &first);
    if (rc == LS_AGAIN) {
        return LS_AGAIN;
    }
    if (rc == LS_ERROR && k == 0 && !with_rec) {
        stream_clear(st);
        return LS_ERROR;    /* an empty group: the plugin's exception, this record to @ERROR */
    }
    stream_clear(st);
    if (force && c->buffer_overflow_method == OV_NEW) {
        if (!complete) {
            stream_push(st, rec);
            st->size = size;
            return LS_DECLINED;
        }
        rc = hand_on(ins, st, 0, rec, rec, &first);
        if (rc == LS_AGAIN) {
            stream_push(st, rec);
            st->size = size;
        }
    }
    return LS_DECLINED;
}

/* n_lines, partial metadata, CRI: hold rec, or hand on the group it ends */
static int do_until(struct ls_instance *ins, struct stream *st, struct ls_record *rec, bool last)
{
    struct ls_time first;
    int rc;

    if (!last) {
        stream_push(st, rec);
        return LS_DECLINED;
    }
    rc = hand_on(ins, st, st->n, rec, rec, &first);
    if (rc == LS_AGAIN) {
        return LS_AGAIN;
    }
    stream_clear(st);
    return LS_DECLINED;
}

static bool internal_tag(const struct ls_record *rec)
{
    static const char *const levels[] = { "trace", "debug", "info", "warn", "error", "fatal" };

    if (rec->tag_len < 7 || memcmp(rec->tag, "fluent.", 7) != 0) {
        return false;
    }
    for (size_t i = 0; i < LS_ARRAY_LEN(levels); i++) {
        if (rec->tag_len == 7 + strlen(levels[i])
            && memcmp(rec->tag + 7, levels[i], rec->tag_len - 7) == 0) {
            return true;
        }
    }
    return false;
}

static int concat_one(struct ls_instance *ins, struct ls_record *rec, struct stream **stp)
{
    struct concat *c = ins->ctx;
    const struct ls_field *kf = rget(rec, c->key), *pf = NULL, *f;
    struct stream *st;
    size_t ilen;

    if (internal_tag(rec) || kf == NULL || c->stopped) {
        return LS_OK;       /* after stop nothing is held: it would never be let go */
    }
    if (c->mode == M_PARTIAL && (pf = rget(rec, c->partial_key)) == NULL) {
        return LS_OK;
    }
    if (c->mode == M_META && rget(rec, c->pm_indicator) == NULL) {
        return LS_OK;
    }
    ls_buf_reset(&c->text);
    if (c->stream_identity_key) {
        if ((f = rget(rec, c->stream_identity_key)) != NULL) {
            put_to_s(&c->text, &f->v);
        }
    } else if (c->mode != M_META) {
        ls_buf_append(&c->text, "default", 7);
    }
    if (c->mode == M_META && (f = rget(rec, c->pm_id)) != NULL) {
        put_to_s(&c->text, &f->v);
    }
    ilen = c->text.len;
    st = stream_get(c, ins->engine, rec->tag, rec->tag_len, ilen ? c->text.p : "", ilen);
    *stp = st;
    st->last = ls_mono_now();
    if (st->n && st->held > CONCAT_GROUP_MAX) {
        struct ls_time first;
        int rc;
        ls_plg_warn(ins, "a group of %s holds more than %zu MiB: handed on as it is",
                    st->id, CONCAT_GROUP_MAX >> 20);
        /* the group alone, at its first record's time, not merged with this record */
        rc = hand_on_as(ins, st, st->n, NULL, rec, false, &first);
        if (rc == LS_AGAIN) {
            return LS_AGAIN;
        }
        stream_clear(st);
    }
    switch (c->mode) {
    case M_LINE:
        return do_until(ins, st, rec, (int64_t)st->n + 1 >= c->n_lines);
    case M_PARTIAL:
        return do_partial(ins, st, rec, pf);
    case M_META:
        return do_until(ins, st, rec, str_is(rget(rec, c->pm_last), "true"));
    case M_CRI: {
        const struct ls_field *t = rget(rec, c->partial_cri_logtag_key);
        const char *colon;
        size_t len;
        if (t == NULL || t->v.type != LS_V_STR) {
            return LS_ERROR;    /* nil.split: the plugin's NoMethodError */
        }
        colon = memchr(t->v.u.s.p, ':', t->v.u.s.len);
        len = colon ? (size_t)(colon - t->v.u.s.p) : t->v.u.s.len;
        return do_until(ins, st, rec, len == 1 && t->v.u.s.p[0] == 'F');
    }
    default:
        return do_regexp(ins, st, rec, kf);
    }
}

static int concat_filter(struct ls_instance *ins, struct ls_record *rec)
{
    uint64_t src = rec->src, pos = rec->pos, h;
    struct stream *st = NULL;
    int rc = concat_one(ins, rec, &st);

    if (rc != LS_AGAIN && st) {
        st->last_src = src;
        st->last_pos = pos;
    }
    if (rc == LS_OK && rec->src && ls_source_held(ins->engine, rec->src, &h)) {
        /* passing on while earlier lines of its source are held: untracked, or the output's
         * high-water mark would pass them, and a restart resumes from that mark */
        rec->src = 0;
    }
    return rc;
}

/* ---- timer, start, stop ---- */

static void remove_stream(struct concat *c, size_t i)
{
    /* in order: timeouts and the stop go through the streams as they were first seen, as
     * the plugin's hashes do */
    stream_free(c->streams[i]);
    memmove(&c->streams[i], &c->streams[i + 1], (c->nstreams - i - 1) * sizeof(*c->streams));
    c->nstreams--;
}

static void concat_tick(struct ls_timer *t, void *arg)
{
    struct ls_instance *ins = arg;
    struct concat *c = ins->ctx;
    double now = ls_mono_now();
    size_t i = 0;
    bool sent = false;
    LS_UNUSED(t);

    if (c->stopped) {
        return;
    }
    if (c->flush_interval <= 0) {
        /* no timeouts: only streams with nothing held are forgotten, or a stream_identity_key
         * with ever new values would keep an entry for each */
        while (i < c->nstreams) {
            if (c->streams[i]->n == 0 && now - c->streams[i]->last >= CONCAT_IDLE_FORGET) {
                remove_stream(c, i);
            } else {
                i++;
            }
        }
        return;
    }
    while (i < c->nstreams) {
        struct stream *st = c->streams[i];
        if (c->flush_interval > now - st->last) {
            i++;
            continue;
        }
        if (st->n) {
            sent = true;
            if (let_go(ins, st, false) == LS_AGAIN) {
                i++;        /* the output is full: the next tick tries again */
                continue;
            }
        }
        remove_stream(c, i);
    }
    if (sent) {
        /* what an input does after emitting: buffered outputs write their frames now, not
         * whenever an input next reads something */
        (void)ls_input_commit(ins);
    }
}

static int concat_start(struct ls_instance *ins)
{
    struct concat *c = ins->ctx;

    c->timer = ls_timer_new(ins, concat_tick, ins);
    ls_timer_start(c->timer, 1.0, 1.0);
    return LS_OK;
}

static void concat_stop(struct ls_instance *ins)
{
    struct concat *c = ins->ctx;
    uint64_t lost = 0;

    c->stopped = true;
    ls_timer_free(c->timer);
    c->timer = NULL;
    for (size_t i = 0; i < c->nstreams; i++) {
        struct stream *st = c->streams[i];
        if (st->n && let_go(ins, st, true) == LS_AGAIN) {
            lost += st->n;
        }
    }
    while (c->nstreams) {
        remove_stream(c, c->nstreams - 1);
    }
    if (lost) {
        ls_plg_error(ins, "%llu held records could not be handed on at stop: the output's "
                     "buffer is full", (unsigned long long)lost);
    }
}

/* ---- configuration ---- */

/* The plugin compiles value[1..-2]: the slashes go, whatever the flags after them */
static struct ls_regex *compile(struct ls_instance *ins, struct ls_conf_section *sec,
                                const char *param, const char *src, char *err, size_t errlen)
{
    char msg[256];
    struct ls_regex *re;
    size_t len = strlen(src);
    char *body = ls_malloc(len + 1);

    if (len >= 2) {
        memcpy(body, src + 1, len - 2);
        body[len - 2] = '\0';
    } else {
        body[0] = '\0';
    }
    re = ls_regex_compile(body, false, msg, sizeof(msg));
    ls_free(body);
    if (re == NULL) {
        ls_conf_param_error(sec, param, err, errlen, "invalid %s %s: %s", param, src, msg);
    }
    LS_UNUSED(ins);
    return re;
}

static int concat_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                       size_t errlen)
{
    struct concat *c = ins->ctx;
    bool nl = c->n_lines > 0, se = c->start_src || c->end_src, pk = c->partial_key != NULL;

    ls_arena_init(&c->arena, 4096);
    ls_buf_init(&c->text, 0);
    if (!nl && !c->start_src && !c->end_src && !pk && !c->use_partial_metadata
        && !c->use_partial_cri_logtag) {
        snprintf(err, errlen, "%s:%d: Either n_lines, multiline_start_regexp, "
                 "multiline_end_regexp, partial_key, use_partial_metadata or "
                 "use_partial_cri_logtag is required", sec->file, sec->line);
        return LS_ERROR;
    }
#define EXCL(a, b, what)                                                                  \
    if ((a) && (b)) {                                                                     \
        snprintf(err, errlen, "%s:%d: %s are exclusive", sec->file, sec->line, what);     \
        return LS_ERROR;                                                                  \
    }
    EXCL(nl, se, "n_lines and multiline_start_regexp/multiline_end_regexp")
    EXCL(pk, nl, "partial_key and n_lines")
    EXCL(pk, se, "partial_key and multiline_start_regexp/multiline_end_regexp")
    if (pk && c->partial_value == NULL) {
        snprintf(err, errlen, "%s:%d: partial_value is required when partial_key is specified",
                 sec->file, sec->line);
        return LS_ERROR;
    }
    EXCL(c->use_partial_metadata, nl, "use_partial_metadata and n_lines")
    EXCL(c->use_partial_metadata, se,
         "use_partial_metadata and multiline_start_regexp/multiline_end_regexp")
    EXCL(c->use_partial_metadata, pk, "use_partial_metadata and partial_key")
    EXCL(c->use_partial_cri_logtag, nl, "use_partial_cri_logtag and n_lines")
    EXCL(c->use_partial_cri_logtag, se,
         "use_partial_cri_logtag and multiline_start_regexp/multiline_end_regexp")
    EXCL(c->use_partial_cri_logtag, pk, "use_partial_cri_logtag and partial_key")
#undef EXCL
    if (c->timeout_label && !ls_label_exists(ins->engine, c->timeout_label)) {
        ls_conf_param_error(sec, "timeout_label", err, errlen, "no <label %s> for timeout_label",
                            c->timeout_label);
        return LS_ERROR;
    }
    if (nl) {
        c->mode = M_LINE;
    } else if (pk) {
        c->mode = M_PARTIAL;
    } else if (c->use_partial_metadata) {
        static const char *const names[][5] = {
            { "partial_message", "partial_id", "partial_ordinal", "partial_last",
              "partial_message" },
            /* the journald driver does not mark the last part partial: the id says it */
            { "CONTAINER_PARTIAL_MESSAGE", "CONTAINER_PARTIAL_ID", "CONTAINER_PARTIAL_ORDINAL",
              "CONTAINER_PARTIAL_LAST", "CONTAINER_PARTIAL_ID" },
            { "container_partial_message", "container_partial_id",
              "container_partial_ordinal", "container_partial_last", "container_partial_id" },
        };
        const char *const *n = names[c->partial_metadata_format];
        c->mode = M_META;
        c->pm_message = n[0];
        c->pm_id = n[1];
        c->pm_ordinal = n[2];
        c->pm_last = n[3];
        c->pm_indicator = n[4];
    } else if (c->use_partial_cri_logtag) {
        c->mode = M_CRI;
    } else {
        c->mode = M_REGEXP;
        if (c->start_src && (c->start_re = compile(ins, sec, "multiline_start_regexp",
                                                   c->start_src, err, errlen)) == NULL) {
            return LS_ERROR;
        }
        if (c->end_src && (c->end_re = compile(ins, sec, "multiline_end_regexp", c->end_src,
                                               err, errlen)) == NULL) {
            return LS_ERROR;
        }
        if (c->cont_src && (c->cont_re = compile(ins, sec, "continuous_line_regexp",
                                                 c->cont_src, err, errlen)) == NULL) {
            return LS_ERROR;
        }
    }
    return LS_OK;
}

static void concat_destroy(struct ls_instance *ins)
{
    struct concat *c = ins->ctx;

    ls_timer_free(c->timer);
    while (c->nstreams) {
        remove_stream(c, c->nstreams - 1);
    }
    ls_free(c->streams);
    ls_regex_free(c->start_re);
    ls_regex_free(c->end_re);
    ls_regex_free(c->cont_re);
    ls_arena_release(&c->arena);
    ls_buf_release(&c->text);
}

const struct ls_plugin ls_plugin_filter_concat = {
    .name = "concat",
    .kind = LS_PLUGIN_FILTER,
    .description = "join the values of a field of consecutive records into one record "
                   "(fluent-plugin-concat)",
    .params = concat_params,
    .ctx_size = sizeof(struct concat),
    .init = concat_init,
    .destroy = concat_destroy,
    .start = concat_start,
    .stop = concat_stop,
    .filter = concat_filter,
};
