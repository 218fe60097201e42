/*
 * sd_entry.h - fluent-plugin-systemd's SystemdEntryMutator: field_map, field_map_strict,
 * fields_strip_underscores, fields_lowercase. in_systemd's <entry> and the systemd_entry
 * filter share it. Private to plugins/in_systemd/.
 */
#ifndef LS_SD_ENTRY_H
#define LS_SD_ENTRY_H

#include "plugin.h"

struct sd_map_target {
    char *name;                     /* the new field */
    size_t *src;                    /* indexes into sd_mutator.src of the fields mapped to it */
    size_t nsrc;
};

struct sd_mutator {
    /* bound */
    char *field_map_text;           /* JSON object: {"SRC": "new" | ["new", ...]} */
    bool field_map_strict;
    bool fields_strip_underscores;
    bool fields_lowercase;
    /* derived */
    char **src;                     /* field_map's keys, in order */
    size_t nsrc;
    struct sd_map_target *targets;  /* the inverted map, in the order of the values */
    size_t ntargets;
    bool identity;                  /* every option at its default */
};

extern const struct ls_param sd_mutator_params[];

/* After binding: parse field_map. LS_OK, or LS_ERROR with the reason in err. */
int sd_mutator_init(struct sd_mutator *m, char *err, size_t errlen);
void sd_mutator_release(struct sd_mutator *m);
/* The mutator's run(entry): out (cleared first) gets the mutated fields of in; new strings
 * come from out's arena. in and out are different records. */
void sd_mutator_run(const struct sd_mutator *m, const struct ls_record *in, struct ls_record *out);

#endif
