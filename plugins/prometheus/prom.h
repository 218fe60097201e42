/*
 * prom.h - fluent-plugin-prometheus's shared pieces (plugin-private): the process-wide metrics
 * registry that every prometheus plugin writes and `<source> @type prometheus` serves, its text
 * exposition as client_ruby writes it, and the plugin's `<labels>` (plain strings, ${...}
 * placeholders, $.record.accessors).
 *
 * Everything runs on the loop thread (filters, outputs' emit, timers, the HTTP server), so the
 * registry needs no lock. There is one per engine, which is the process's pipeline: it lives
 * while any prometheus instance of that engine does (the first creates it, the last one's
 * destroy frees it). So a SIGHUP reload starts from zero as a restarted fluentd does, and the
 * engine a reload builds only to validate the new file never touches the running one's.
 */
#ifndef LS_PROM_H
#define LS_PROM_H

#include "plugin.h"

enum prom_type { PROM_COUNTER, PROM_GAUGE, PROM_SUMMARY, PROM_HISTOGRAM };

struct prom_registry;
struct prom_family;
struct prom_series;

/* eng's registry (any pointer naming the pipeline), created by the first reference */
struct prom_registry *prom_registry_ref(const void *eng);
void prom_registry_unref(struct prom_registry *reg);

/*
 * The family called name, created at the first call. A later call must agree on type, help and
 * label names (client_ruby's AlreadyRegisteredError, and its InvalidLabelSetError at the first
 * record); NULL with the reason in msg otherwise. buckets: a histogram's upper bounds in
 * increasing order with their printed forms (le="..."); NULL for client_ruby's defaults.
 */
struct prom_family *prom_family(struct prom_registry *reg, const char *name, enum prom_type type, const char *help,
                                char *const *labels, size_t nlabels, const double *buckets,
                                char *const *bucket_texts, size_t nbuckets, char *msg,
                                size_t msglen);
/* The series with these label values (one per label name, in order), created when new. */
struct prom_series *prom_series(struct prom_family *f, const char *const *values,
                                const size_t *lens);
void prom_set(struct prom_series *s, double v);
void prom_inc(struct prom_series *s, double v);
double prom_get(const struct prom_series *s);
/* summary and histogram */
void prom_observe(struct prom_series *s, double v);
/* summary quirk of client_ruby: _count goes up before _sum refuses a non-number */
void prom_observe_count_only(struct prom_series *s);

/* The whole registry in the text format 0.0.4, as client_ruby's Formats::Text writes it. */
void prom_render(const struct prom_registry *reg, struct ls_buf *out);

/* Ruby's Float#to_s of v ("1.0", "0.005", "1.0e+16"): how client_ruby prints values. */
void prom_put_float(struct ls_buf *out, double v);

/* ---- <labels> ---- */

struct prom_label {
    char *name;
    char *value;                 /* as written */
    bool accessor;               /* $.a.b / $['a'] */
    bool plain;                  /* no placeholder: the value as written */
    struct ls_accessor acc;
};

struct prom_labels {
    struct prom_label *v;
    size_t n;
};

/*
 * Read the single <labels> child of sec (fluentd: "labels section must have at most 1") and
 * merge it over base (a later key replaces an earlier value in place, as Ruby's Hash#merge).
 * allow_accessor false: the monitors, where $.x is a configuration error. LS_OK, or LS_ERROR
 * with file:line in err.
 */
int prom_labels_parse(struct prom_labels *out, const struct prom_labels *base,
                      struct ls_conf_section *sec, bool allow_accessor, const char *who,
                      char *err, size_t errlen);
void prom_labels_release(struct prom_labels *l);
/* The label names in order (pointers into l), in a new array the caller frees; plus extra. */
char **prom_labels_names(const struct prom_labels *l, const char *const *extra, size_t nextra);

/*
 * Expand one label value for a record: an accessor's value (empty when missing), or the
 * placeholders ${tag}, ${tag_parts[N]}, ${tag_prefix[N]}, ${tag_suffix[N]}, ${hostname},
 * ${worker_id} and the record's top-level keys ${key} (${key["sub"]}, ${key[N]}); an unknown
 * placeholder stays as written, with a warning (rate-limited) through ins. rec NULL: only
 * hostname and worker_id (the monitors). Appends to out.
 */
void prom_label_expand(struct ls_instance *ins, const struct prom_label *l,
                       const struct ls_record *rec, struct ls_buf *out);

/* Ruby's to_s of a record value, as a label value. */
void prom_put_value_text(struct ls_buf *out, const struct ls_value *v);

#endif
