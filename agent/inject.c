/*
 * inject.c - fluentd's <inject> (time_key, tag_key, hostname_key,
 * worker_id_key) and the output-side time formatter (see inject.h).
 *
 * Injection never touches the shared input record: the output gets a
 * shallow copy (field array only; keys and values stay borrowed) with the
 * extra fields set the way a Ruby Hash assignment does it - an existing key
 * keeps its position and gets the new value, a new key goes last - in
 * fluentd's order hostname, worker_id, tag, time.
 *
 * The v0.12 flat names are mapped as fluentd's compat_parameters does:
 * the flat section only becomes an <inject> when one of its keys is
 * present; include_time_key true defaults time_key to "time" and time_type
 * to string, include_tag_key true defaults tag_key to "tag". A flat
 * time_key without include_time_key injects too (a float time), as in
 * fluentd v1.
 *
 * Time text is produced by timefmt (cached per second), so the per-record
 * cost of a string time is a copy of ~25 bytes.
 */
#include "inject.h"
#include "json.h"
#include "log.h"
#include "timefmt.h"

/* ------------------------------------------------------------------ */
/* time formatter                                                      */
/* ------------------------------------------------------------------ */

struct ls_time_formatter {
    enum ls_time_type type;
    bool float_usec;
    struct ls_timefmt *tf;      /* string */
    struct ls_buf text;         /* the last value's text */
};

struct ls_time_formatter *ls_time_formatter_create(enum ls_time_type type, const char *format,
                                                   bool localtime, const char *tz_name,
                                                   bool float_usec, char *err, size_t errlen)
{
    struct ls_time_formatter *t = ls_calloc(1, sizeof(*t));
    const char *zone;

    t->type = type;
    t->float_usec = float_usec;
    ls_buf_init(&t->text, 0);
    if (type != LS_TIME_STRING) {
        return t;
    }
    if (format && *format == '\0') {
        format = NULL;
    }
    if (tz_name && *tz_name) {
        zone = tz_name;
    } else if (localtime) {
        zone = NULL;
    } else {
        zone = "UTC";
        if (format == NULL) {
            format = "%Y-%m-%dT%H:%M:%SZ";    /* Time#utc.iso8601 says Z, not +00:00 */
        }
    }
    if (format == NULL) {
        format = "%Y-%m-%dT%H:%M:%S%:z";
    }
    t->tf = ls_timefmt_create(format, zone, err, errlen);
    if (t->tf == NULL) {
        ls_time_formatter_destroy(t);
        return NULL;
    }
    return t;
}

void ls_time_formatter_destroy(struct ls_time_formatter *t)
{
    if (t == NULL) {
        return;
    }
    if (t->tf) {
        ls_timefmt_destroy(t->tf);
    }
    ls_buf_release(&t->text);
    ls_free(t);
}

static double time_float(const struct ls_time_formatter *t, const struct ls_time *tm)
{
    int32_t ns = tm->nsec;

    if (t->float_usec) {
        ns -= ns % 1000;
    }
    return (double)tm->sec + (double)ns / 1e9;
}

int ls_time_formatter_put(struct ls_time_formatter *t, const struct ls_time *tm, struct ls_buf *out)
{
    char tmp[40];
    size_t n;

    switch (t->type) {
    case LS_TIME_STRING:
        return ls_timefmt_format(t->tf, tm, out);
    case LS_TIME_UNIXTIME:
        n = (size_t)snprintf(tmp, sizeof(tmp), "%lld", (long long)tm->sec);
        return ls_buf_append(out, tmp, n);
    case LS_TIME_FLOAT:
        break;
    }
    n = ls_json_fmt_double(tmp, time_float(t, tm));
    return ls_buf_append(out, tmp, n);
}

struct ls_value ls_time_formatter_value(struct ls_time_formatter *t, const struct ls_time *tm)
{
    switch (t->type) {
    case LS_TIME_STRING:
        ls_buf_reset(&t->text);
        ls_timefmt_format(t->tf, tm, &t->text);
        return ls_vstr(t->text.p ? t->text.p : "", t->text.len);
    case LS_TIME_UNIXTIME:
        return ls_vint(tm->sec);
    case LS_TIME_FLOAT:
        break;
    }
    return ls_vfloat(time_float(t, tm));
}

int ls_time_localtime_of(struct ls_conf_section *sec, bool *localtime, char *err, size_t errlen)
{
    struct ls_conf_param *lt = sec ? ls_conf_get_param(sec, "localtime") : NULL;
    struct ls_conf_param *utc = sec ? ls_conf_get_param(sec, "utc") : NULL;
    bool v = true;

    if (lt && utc) {
        snprintf(err, errlen, "%s:%d: both of utc and localtime are specified, use only one of them",
                 utc->file, utc->line);
        return LS_ERROR;
    }
    if (lt || utc) {
        struct ls_conf_param *p = lt ? lt : utc;
        if (ls_parse_bool(p->value, &v) != LS_OK) {
            snprintf(err, errlen, "%s:%d: '%s' must be true or false, not '%s'", p->file, p->line, p->key,
                     p->value);
            return LS_ERROR;
        }
        if (utc) {
            v = !v;
        }
    }
    *localtime = v;
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* inject                                                              */
/* ------------------------------------------------------------------ */

struct inject_conf {
    char *hostname_key;
    char *hostname;
    char *worker_id_key;
    char *tag_key;
    char *time_key;
    int time_type;
    char *time_format;
    bool localtime;
    bool utc;
    char *timezone;
    /* v0.12 flat */
    bool include_time_key;
    bool include_tag_key;
    bool time_as_epoch;
};

struct ls_inject {
    struct inject_conf c;
    const struct ls_param *table;
    struct ls_time_formatter *timef;
    char *host;
};

#define IC(f) offsetof(struct inject_conf, f)

const struct ls_param ls_inject_params[] = {
    { "hostname_key", LS_P_STR, NULL, 0, IC(hostname_key), "add the host name under this key", NULL, NULL, 0, 0 },
    { "hostname", LS_P_STR, NULL, 0, IC(hostname), "host name to add (default: gethostname())", NULL, NULL, 0, 0 },
    { "worker_id_key", LS_P_STR, NULL, 0, IC(worker_id_key), "add the worker id (always 0) under this key",
      NULL, NULL, 0, 0 },
    { "tag_key", LS_P_STR, NULL, 0, IC(tag_key), "add the tag under this key", NULL, NULL, 0, 0 },
    { "time_key", LS_P_STR, NULL, 0, IC(time_key), "add the event time under this key", NULL, NULL, 0, 0 },
    { "time_type", LS_P_ENUM, "float", 0, IC(time_type), "float (microseconds), unixtime or string",
      NULL, LS_TIME_TYPE_ENUMS, 0, 0 },
    { "time_format", LS_P_STR, NULL, 0, IC(time_format), "strftime format for time_type string (default ISO 8601)",
      NULL, NULL, 0, 0 },
    { "localtime", LS_P_BOOL, "true", 0, IC(localtime), "format in local time", NULL, NULL, 0, 0 },
    { "utc", LS_P_BOOL, "false", 0, IC(utc), "format in UTC", NULL, NULL, 0, 0 },
    { "timezone", LS_P_STR, NULL, 0, IC(timezone), "zone for formatting: +09:00 or Asia/Tokyo", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

const struct ls_param ls_inject_flat_params[] = {
    { "include_time_key", LS_P_BOOL, "false", 0, IC(include_time_key),
      "v0.12: add the time (time_key, default \"time\", as a string)", NULL, NULL, 0, 0 },
    { "include_tag_key", LS_P_BOOL, "false", 0, IC(include_tag_key),
      "v0.12: add the tag (tag_key, default \"tag\")", NULL, NULL, 0, 0 },
    { "time_key", LS_P_STR, NULL, 0, IC(time_key), "v0.12: key of the injected time", NULL, NULL, 0, 0 },
    { "tag_key", LS_P_STR, NULL, 0, IC(tag_key), "v0.12: key of the injected tag", NULL, NULL, 0, 0 },
    { "time_format", LS_P_STR, NULL, 0, IC(time_format), "v0.12: format of the injected time", NULL, NULL, 0, 0 },
    { "time_as_epoch", LS_P_BOOL, "false", 0, IC(time_as_epoch), "v0.12: inject the time as epoch seconds",
      NULL, NULL, 0, 0 },
    { "localtime", LS_P_BOOL, "true", 0, IC(localtime), "v0.12: format in local time", NULL, NULL, 0, 0 },
    { "utc", LS_P_BOOL, "false", 0, IC(utc), "v0.12: format in UTC", NULL, NULL, 0, 0 },
    { "timezone", LS_P_STR, NULL, 0, IC(timezone), "v0.12: zone for formatting", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static bool flat_has_any(struct ls_conf_section *sec)
{
    static const char *keys[] = { "include_time_key", "time_key", "time_format", "timezone",
                                  "include_tag_key", "tag_key", "localtime", "utc" };
    struct ls_conf_param *p;
    size_t i;

    for (p = sec->params; p; p = p->next) {
        for (i = 0; i < LS_ARRAY_LEN(keys); i++) {
            if (strcmp(p->key, keys[i]) == 0) {
                return true;
            }
        }
    }
    return false;
}

static void str_default(char **slot, const char *def)
{
    if (*slot == NULL) {
        *slot = ls_strdup(def);
    }
}

struct ls_inject *ls_inject_create(struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct ls_inject *inj;
    bool flat, localtime;
    int type;

    if (err && errlen) {
        err[0] = '\0';
    }
    if (sec == NULL) {
        return NULL;
    }
    flat = strcmp(sec->name, "inject") != 0;
    if (flat && !flat_has_any(sec)) {
        return NULL;
    }
    inj = ls_calloc(1, sizeof(*inj));
    inj->table = flat ? ls_inject_flat_params : ls_inject_params;
    if (ls_param_bind(inj->table, sec, &inj->c, err, errlen) != LS_OK) {
        goto fail;
    }
    if (ls_time_localtime_of(sec, &localtime, err, errlen) != LS_OK) {
        goto fail;
    }
    type = inj->c.time_type;
    if (flat) {
        type = LS_TIME_FLOAT;
        if (inj->c.include_time_key) {
            str_default(&inj->c.time_key, "time");
            type = LS_TIME_STRING;
        }
        if (inj->c.time_as_epoch) {
            type = LS_TIME_UNIXTIME;
        }
        if (inj->c.include_tag_key) {
            str_default(&inj->c.tag_key, "tag");
        }
    }
    if (inj->c.hostname_key) {
        if (inj->c.hostname) {
            inj->host = ls_strdup(inj->c.hostname);
        } else {
            char h[256];
            if (gethostname(h, sizeof(h)) != 0) {
                snprintf(err, errlen, "%s:%d: gethostname() failed (%d: %s)", sec->file, sec->line, errno,
                         strerror(errno));
                goto fail;
            }
            h[sizeof(h) - 1] = '\0';
            inj->host = ls_strdup(h);
            ls_info("using hostname for specified field host_key=\"%s\" host_name=\"%s\"", inj->c.hostname_key,
                    inj->host);
        }
    }
    if (inj->c.time_key) {
        char terr[256];
        inj->timef = ls_time_formatter_create((enum ls_time_type)type, inj->c.time_format, localtime,
                                              inj->c.timezone, true, terr, sizeof(terr));
        if (inj->timef == NULL) {
            snprintf(err, errlen, "%s:%d: %s", sec->file, sec->line, terr);
            goto fail;
        }
    }
    if (!inj->c.hostname_key && !inj->c.worker_id_key && !inj->c.tag_key && !inj->c.time_key) {
        ls_inject_destroy(inj);
        return NULL;
    }
    return inj;
fail:
    ls_inject_destroy(inj);
    return NULL;
}

void ls_inject_destroy(struct ls_inject *inj)
{
    if (inj == NULL) {
        return;
    }
    ls_time_formatter_destroy(inj->timef);
    ls_param_release(inj->table, &inj->c);
    ls_free(inj->host);
    ls_free(inj);
}

const struct ls_record *ls_inject_apply(struct ls_inject *inj, const struct ls_record *rec,
                                        struct ls_record *scratch)
{
    struct ls_value v;
    unsigned i;

    if (inj == NULL) {
        return rec;
    }
    ls_record_clear(scratch);
    scratch->tag = rec->tag;
    scratch->tag_len = rec->tag_len;
    scratch->time = rec->time;
    scratch->src = rec->src;
    scratch->pos = rec->pos;
    if (scratch->arena == NULL) {
        scratch->arena = rec->arena;
    }
    for (i = 0; i < rec->nfields; i++) {
        ls_record_add(scratch, rec->fields[i].key, rec->fields[i].key_len, &rec->fields[i].v);
    }
    if (inj->c.hostname_key) {
        v = ls_vstr(inj->host, strlen(inj->host));
        ls_record_set(scratch, inj->c.hostname_key, strlen(inj->c.hostname_key), &v);
    }
    if (inj->c.worker_id_key) {
        v = ls_vint(0);
        ls_record_set(scratch, inj->c.worker_id_key, strlen(inj->c.worker_id_key), &v);
    }
    if (inj->c.tag_key) {
        v = ls_vstr(rec->tag ? rec->tag : "", rec->tag ? rec->tag_len : 0);
        ls_record_set(scratch, inj->c.tag_key, strlen(inj->c.tag_key), &v);
    }
    if (inj->c.time_key) {
        v = ls_time_formatter_value(inj->timef, &rec->time);
        ls_record_set(scratch, inj->c.time_key, strlen(inj->c.time_key), &v);
    }
    return scratch;
}
