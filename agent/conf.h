/*
 * conf.h - fluentd's configuration language, parsed into a tree.
 *
 * The parser implements fluentd's v1 grammar (which also reads v0.12-era
 * files): elements <name arg>...</name>, "key value" parameters, quoted
 * strings with fluentd's escapes, multi-line JSON arrays/hashes (stored
 * re-serialised compactly, as fluentd does), comments, @include (file or
 * glob, relative to the including file, merged into the current element),
 * and the subset of embedded Ruby that real configs use inside double-quoted
 * values: ENV["X"], ENV['X'] || 'default', ENV.fetch("X", "default"),
 * Socket.gethostname, hostname, worker_id. Anything else inside #{} is an
 * error naming file:line.
 *
 * Values are kept as strings exactly as fluentd's parser hands them to
 * plugins; typed conversion (size, time, bool, ...) is the binder's job
 * (param.h), so the same code parses defaults and user input.
 *
 * Every node carries the file and line it came from, so every later error
 * can name file:line.
 */
#ifndef LS_CONF_H
#define LS_CONF_H

#include "common.h"

struct ls_conf_param {
    char *key;               /* as written ("@type", "type", "path"...) */
    char *value;             /* after literal parsing / interpolation; "" for a bare key */
    const char *file;        /* interned in the ls_conf (valid while the tree lives) */
    int line;
    bool used;               /* set by the binder / ls_conf_get; unused ones are warned about */
    struct ls_conf_param *next;
};

struct ls_param;

struct ls_conf_section {
    char *name;              /* "ROOT", "source", "match", "buffer", ... */
    char *arg;               /* text between name and '>', trimmed; "" when absent */
    const char *file;
    int line;
    struct ls_conf_param *params;        /* in file order; a repeated key: the later one wins
                                            (ls_conf_get returns the last) */
    struct ls_conf_section *children;    /* in file order */
    struct ls_conf_section *next;        /* next sibling */
    struct ls_conf_section *parent;
    /* the parameter tables bound to this section (ls_param_bind), so that an unused
       parameter's warning can suggest the nearest known name */
    const struct ls_param *bound[4];
    unsigned nbound;
};

struct ls_conf {
    struct ls_conf_section *root;        /* name "ROOT" */
    char **files;                        /* every file read (interned names) */
    size_t nfiles;
};

/*
 * Parse a configuration file. On error returns NULL and writes
 * "file:line: message" into err (errlen bytes). Warnings (deprecated
 * 'type', unknown '@' keys deep down) are logged with ls_warn.
 */
struct ls_conf *ls_conf_load_file(const char *path, char *err, size_t errlen);
/* Same, from memory; name is used in messages and as the base for relative @include. */
struct ls_conf *ls_conf_load_string(const char *name, const char *text, size_t len,
                                    char *err, size_t errlen);
void ls_conf_destroy(struct ls_conf *conf);

/* Last value of key in section (NULL if absent); marks it used. */
const char *ls_conf_get(struct ls_conf_section *sec, const char *key);
/* <system> root_dir of the configuration sec belongs to, or NULL (the state of plugins
 * with an @id goes under it, as fluentd's plugin_root_dir). */
const char *ls_conf_root_dir(struct ls_conf_section *sec);
struct ls_conf_param *ls_conf_get_param(struct ls_conf_section *sec, const char *key);
/*
 * A plugin's own check of a parameter failed: write "file:line: message" into err, naming
 * the line of key in sec (or the section's line when key is absent).
 */
void ls_conf_param_error(struct ls_conf_section *sec, const char *key, char *err, size_t errlen,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* @type, falling back to v0.12 'type' (marks both used). NULL if absent. */
const char *ls_conf_type(struct ls_conf_section *sec);
/* First child named name, or NULL. */
struct ls_conf_section *ls_conf_child(struct ls_conf_section *sec, const char *name);
/* Add a parameter programmatically (v0.12 flat -> v1 section mapping uses this). */
struct ls_conf_param *ls_conf_set(struct ls_conf_section *sec, const char *key, const char *value,
                                  const char *file, int line);
/* Create an empty child section (e.g. synthesised <buffer> for v0.12 flat params). */
struct ls_conf_section *ls_conf_add_child(struct ls_conf_section *sec, const char *name,
                                          const char *arg);
/*
 * Warn (fluentd's "parameter 'x' in <match a> is not used") about every
 * parameter under sec that no one read. Returns how many.
 */
int ls_conf_warn_unused(struct ls_conf_section *sec);
/* Print the tree back as config text (for tests and -vv dumps); secrets are not known here. */
void ls_conf_dump(const struct ls_conf_section *sec, int depth, void (*out)(const char *s, void *arg),
                  void *arg);

/* Expand "#{...}" embedded Ruby (the supported subset) in s. Caller owns the result.
 * Returns NULL and writes a message into err on an unsupported expression. */
char *ls_conf_interpolate(const char *s, char *err, size_t errlen);

#endif
