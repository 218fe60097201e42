/*
 * param.h - plugin parameter tables and the generic binder.
 *
 * One table per plugin is the only source of truth for its parameters:
 * name, type, default (as a string, parsed by the same code as user input),
 * offset into the plugin's struct, v0.12 aliases, bounds, and one line of
 * help. The binder fills the struct from a config section, the same table
 * prints `logship --describe NAME` and generates the README reference.
 *
 * Value syntax follows fluentd's types.rb:
 *   size   "8m" "1g" "1024" ("k" x1024, "m" x1024^2, "g", "t")
 *   time   "10s" "1440m" "1h" "1d" "0.5" (seconds, as double)
 *   bool   true/yes/false/no; a bare key ("") is true
 *   enum   one of the '|'-separated names in .enums
 *   array  JSON array or "a,b,c" shorthand
 *   hash   JSON object or "k1:v1,k2:v2" shorthand
 */
#ifndef LS_PARAM_H
#define LS_PARAM_H

#include "common.h"
#include "conf.h"

enum ls_param_type {
    LS_P_STR = 1,   /* char *            (NULL when no default and not set) */
    LS_P_SECRET,    /* char *, masked as "xxxxxx" in --describe and dumps */
    LS_P_INT,       /* int64_t */
    LS_P_FLOAT,     /* double */
    LS_P_SIZE,      /* int64_t bytes */
    LS_P_TIME,      /* double seconds */
    LS_P_BOOL,      /* bool */
    LS_P_ENUM,      /* int: index into the '|'-separated .enums list */
    LS_P_ARRAY,     /* struct ls_strv */
    LS_P_HASH,      /* struct ls_kvv */
};

enum ls_param_flags {
    LS_PF_REQUIRED   = 1 << 0,  /* error "'x' parameter is required" when absent */
    LS_PF_DEPRECATED = 1 << 1,  /* accepted, warns */
    LS_PF_NO_STORE   = 1 << 2,  /* declared for validation/docs only; the plugin reads it itself */
    LS_PF_NULLABLE   = 1 << 3,  /* default "" means unset (NULL / not present), e.g. optional strings */
};

struct ls_strv {             /* array of strings */
    char **v;
    size_t n;
};

struct ls_kv {
    char *key;
    char *value;
};

struct ls_kvv {              /* ordered hash of strings */
    struct ls_kv *v;
    size_t n;
};

struct ls_param {
    const char *name;
    enum ls_param_type type;
    const char *def;         /* default as text; NULL = no default (0 / NULL / false / empty) */
    unsigned flags;
    size_t offset;           /* offsetof(struct ctx, field) */
    const char *help;        /* one line */
    const char *aliases;     /* '|'-separated other names accepted (v0.12), or NULL */
    const char *enums;       /* for LS_P_ENUM: "a|b|c" */
    double min, max;         /* bounds for INT/FLOAT/SIZE/TIME when min < max */
};

/* Table terminator. */
#define LS_PARAM_END { NULL, 0, NULL, 0, 0, NULL, NULL, NULL, 0, 0 }

/*
 * Fill ctx from sec through table: defaults first, then the section's
 * values (marking them used). On error returns LS_ERROR with
 * "file:line: message" in err. Errors: bad value for the type (naming the
 * expected form), out of bounds, required missing (names the section's line),
 * bad enum (lists valid options). sec may be NULL (defaults only).
 */
int ls_param_bind(const struct ls_param *table, struct ls_conf_section *sec, void *ctx,
                  char *err, size_t errlen);
/* Free what the binder allocated in ctx (strings, arrays, hashes). */
void ls_param_release(const struct ls_param *table, void *ctx);

/* Look up a row by name or alias (NULL if absent). */
const struct ls_param *ls_param_find(const struct ls_param *table, const char *name);

/* Typed value parsers, shared with plugins that read values by hand. LS_OK / LS_ERROR. */
int ls_parse_size(const char *s, int64_t *out);
int ls_parse_time(const char *s, double *out);
int ls_parse_bool(const char *s, bool *out);
int ls_parse_int(const char *s, int64_t *out);
int ls_parse_float(const char *s, double *out);
int ls_parse_array(const char *s, struct ls_strv *out);   /* caller releases with ls_strv_release */
int ls_parse_hash(const char *s, struct ls_kvv *out);     /* caller releases with ls_kvv_release */
void ls_strv_release(struct ls_strv *v);
void ls_kvv_release(struct ls_kvv *v);
const char *ls_kvv_get(const struct ls_kvv *v, const char *key);

/* Human name of a type, as printed by --describe ("size", "time", ...). */
const char *ls_param_type_name(enum ls_param_type t);
/*
 * Print a table for --describe: one row per parameter with name, type,
 * default (secrets masked), aliases and help. out() receives pieces of text.
 * If markdown is true, print a Markdown table (used by `make docs`).
 */
void ls_param_describe(const struct ls_param *table, bool markdown,
                       void (*out)(const char *s, void *arg), void *arg);

#endif
