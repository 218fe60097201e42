/*
 * instance.c - creating and destroying plugin instances, and the registry.
 *
 * Creation is the same for every kind: find the descriptor, allocate its
 * ctx, bind the section through the plugin's table (defaults are parsed by
 * the same code as user values), add the kind's common layer (parsers get
 * time_key/types/...), then call the plugin's init for cross-field checks.
 * Any failure destroys the half-built instance through the same path.
 */
#include "plugin.h"
#include "engine.h"
#include "parser.h"
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

const char *ls_plugin_kind_name(enum ls_plugin_kind kind)
{
    switch (kind) {
    case LS_PLUGIN_INPUT:     return "input";
    case LS_PLUGIN_PARSER:    return "parser";
    case LS_PLUGIN_FILTER:    return "filter";
    case LS_PLUGIN_FORMATTER: return "formatter";
    case LS_PLUGIN_OUTPUT:    return "output";
    }
    return "?";
}

static bool name_in_list(const char *name, const char *list)
{
    size_t n = strlen(name);
    const char *p = list;

    while (p && *p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0) {
            return true;
        }
        p = bar ? bar + 1 : NULL;
    }
    return false;
}

const struct ls_plugin *ls_plugin_find(enum ls_plugin_kind kind, const char *name)
{
    size_t i;

    for (i = 0; ls_plugins[i]; i++) {
        const struct ls_plugin *p = ls_plugins[i];
        if (p->kind == kind && (strcmp(p->name, name) == 0 || name_in_list(name, p->aliases))) {
            return p;
        }
    }
    return NULL;
}

/* for instances built without an engine (unit tests, fuzzers) */
static unsigned instance_seq[8];

struct ls_instance *ls_instance_create(struct ls_engine *eng, struct ls_instance *owner,
                                       enum ls_plugin_kind kind, const char *type,
                                       struct ls_conf_section *sec, char *err, size_t errlen)
{
    const struct ls_plugin *plugin;
    struct ls_instance *ins;
    const char *t = NULL;
    const char *id = NULL;
    const char *lvl = NULL;
    const char *file = sec ? sec->file : "(default)";
    int line = sec ? sec->line : 0;

    if (sec == NULL && owner && owner->conf) {
        /* a default sub-plugin (e.g. the formatter an output uses when it has no <format>):
         * errors point at the owner's section */
        file = owner->conf->file;
        line = owner->conf->line;
    }

    /*
     * A sub-plugin built from its owner's own section (v0.12 flat `format json` on a
     * <source> or <match>) must not take the owner's @type: the caller names the type.
     */
    bool flat = owner && sec && sec == owner->conf && type != NULL;

    if (sec && !flat) {
        t = ls_conf_type(sec);
        id = ls_conf_get(sec, "@id");
        if (id == NULL) {
            id = ls_conf_get(sec, "id");
        }
        lvl = ls_conf_get(sec, "@log_level");
        if (lvl == NULL) {
            lvl = ls_conf_get(sec, "log_level");
        }
    }
    if (flat) {
        id = NULL;
        lvl = NULL;
    }
    if (t == NULL || *t == '\0') {
        t = type;
    }
    if (t == NULL) {
        snprintf(err, errlen, "%s:%d: missing '@type' parameter on <%s> directive", file, line,
                 sec ? sec->name : "?");
        return NULL;
    }
    plugin = ls_plugin_find(kind, t);
    if (plugin == NULL) {
        snprintf(err, errlen, "%s:%d: unknown %s plugin '%s' (see logship --list-plugins)", file,
                 line, ls_plugin_kind_name(kind), t);
        return NULL;
    }
    ins = ls_calloc(1, sizeof(*ins));
    ins->plugin = plugin;
    ins->engine = eng;
    ins->owner = owner;
    ins->conf = sec;
    ins->log_level = owner ? owner->log_level : ls_log_level;
    if (lvl) {
        int l = ls_log_level_parse(lvl);
        if (l < 0) {
            snprintf(err, errlen, "%s:%d: invalid @log_level '%s' (fatal, error, warn, info, debug, trace)",
                     file, line, lvl);
            ls_free(ins);
            return NULL;
        }
        ins->log_level = l;
    }
    if (id) {
        ins->id = ls_strdup(id);
    } else {
        /*
         * Numbered per engine, so the pipeline a reload starts names its instances as the
         * one before did (file.0 stays file.0): out_file's chunk states name their owner.
         */
        unsigned *seq = eng ? eng->instance_seq : instance_seq;
        ins->id = ls_asprintf("%s.%u", plugin->name, seq[kind & 7]++);
    }
    if (owner) {
        ins->name = ls_asprintf("[%s.%s]", owner->id, plugin->name);
    } else {
        ins->name = ls_asprintf("[%s]", ins->id);
    }
    ins->ctx = ls_calloc(1, plugin->ctx_size ? plugin->ctx_size : 1);
    if (plugin->params && ls_param_bind(plugin->params, sec, ins->ctx, err, errlen) != LS_OK) {
        ls_instance_destroy(ins);
        return NULL;
    }
    if (kind == LS_PLUGIN_PARSER && ls_parser_setup(ins, sec, err, errlen) != LS_OK) {
        ls_instance_destroy(ins);
        return NULL;
    }
    if (plugin->init && plugin->init(ins, sec, err, errlen) != LS_OK) {
        if (err[0] == '\0') {
            snprintf(err, errlen, "%s:%d: %s plugin '%s' failed to initialise", file, line,
                     ls_plugin_kind_name(kind), plugin->name);
        }
        ls_instance_destroy(ins);
        return NULL;
    }
    return ins;
}

void ls_instance_destroy(struct ls_instance *ins)
{
    if (ins == NULL) {
        return;
    }
    if (ins->plugin->destroy && ins->ctx) {
        ins->plugin->destroy(ins);
    }
    if (ins->plugin->kind == LS_PLUGIN_PARSER) {
        ls_parser_teardown(ins);
    }
    if (ins->plugin->params && ins->ctx) {
        ls_param_release(ins->plugin->params, ins->ctx);
    }
    ls_free(ins->ctx);
    ls_free(ins->id);
    ls_free(ins->name);
    ls_free(ins);
}

int ls_instance_log_level(const struct ls_instance *ins)
{
    return ins ? ins->log_level : ls_log_level;
}

const char *ls_instance_name(const struct ls_instance *ins)
{
    return ins && ins->name ? ins->name : "";
}

int ls_formatter_format(struct ls_instance *fmt, const struct ls_record *rec, struct ls_buf *out)
{
    return fmt->plugin->format(fmt, rec, out);
}

int ls_check_writable(struct ls_instance *ins, const char *param, const char *path, bool is_dir)
{
    char dir[PATH_MAX], why[PATH_MAX + 128];
    size_t n;

    if (path == NULL || *path == '\0') {
        return 0;
    }
    /* the part before the first placeholder or glob character is fixed */
    n = strcspn(path, "%$*?[{");
    if (n >= sizeof(dir)) {
        return 0;
    }
    memcpy(dir, path, n);
    dir[n] = '\0';
    if (n < strlen(path) || !is_dir) {
        char *slash = strrchr(dir, '/');

        if (slash == NULL) {
            snprintf(dir, sizeof(dir), ".");
        } else {
            slash[slash == dir] = '\0';
        }
    }
    if (ls_dir_writable(dir, why, sizeof(why))) {
        return 0;
    }
    ls_plg_error(ins, "%s:%d: %s '%s': %s", ins->conf ? ins->conf->file : "?",
                 ins->conf ? ins->conf->line : 0, param, path, why);
    return 1;
}

int ls_check_readable(struct ls_instance *ins, const char *param, const char *path)
{
    if (access(path, F_OK) != 0 || access(path, R_OK) == 0) {
        return 0;
    }
    ls_plg_error(ins, "%s:%d: %s '%s' is not readable by uid %u (%s)",
                 ins->conf ? ins->conf->file : "?", ins->conf ? ins->conf->line : 0, param, path,
                 (unsigned)getuid(), strerror(errno));
    return 1;
}
