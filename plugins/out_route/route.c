/*
 * route.c - fluent-plugin-route 1.x (out_route): re-emit each record under a rewritten tag
 * through the first <route PATTERN> its tag matches, or through every matching one up to and
 * including the first without `copy`.
 *
 * The plugin's remove_tag_prefix / add_tag_prefix rewrite the tag first; routes match that
 * tag, then apply their own. The rewrite is the plugin's tag_modifier: a tag that starts with
 * "<remove_tag_prefix>." loses it and gets "<add_tag_prefix>." instead; any other tag just
 * gets "<add_tag_prefix>." in front. A route with @label sends the records into that label;
 * without, into the <match>'s own @label, else from the top of the label the <match> is in
 * (fluentd's event_emitter, which the plugin uses). A record no route matches is dropped, as
 * in the plugin. <store> sections are refused, as the plugin refuses them.
 */
#include "plugin.h"
#include "router.h"

#include <stdio.h>

struct route {
    struct ls_pattern *pattern;
    char *label;
    char *remove_tag_prefix, *add_tag_prefix;
    bool copy;
};

struct route_ctx {
    char *remove_tag_prefix, *add_tag_prefix;
    int64_t match_cache_size, tag_cache_size;
    struct route *routes;
    size_t nroutes;
};

#define C(f) offsetof(struct route_ctx, f)

static const struct ls_param route_params[] = {
    { "remove_tag_prefix", LS_P_STR, "", LS_PF_NULLABLE, C(remove_tag_prefix),
      "a tag starting with this and a dot loses them (before the routes match)", NULL, NULL, 0,
      0 },
    { "add_tag_prefix", LS_P_STR, "", LS_PF_NULLABLE, C(add_tag_prefix),
      "put this and a dot in front of the tag (before the routes match)", NULL, NULL, 0, 0 },
    { "match_cache_size", LS_P_INT, "256", 0, C(match_cache_size),
      "accepted (the plugin's cache; logship matches without one)", NULL, NULL, 0, 1e9 },
    { "tag_cache_size", LS_P_INT, "256", 0, C(tag_cache_size),
      "accepted (the plugin's cache)", NULL, NULL, 0, 1e9 },
    { "route: pattern, @label, remove_tag_prefix, add_tag_prefix, copy", LS_P_STR, NULL,
      LS_PF_NO_STORE, 0,
      "`<route PATTERN>` (one or more, required; PATTERN default **): its own tag prefixes, "
      "@label to send to, copy to go on to the next matching route", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

#define R(f) offsetof(struct route, f)

static const struct ls_param route_route_params[] = {
    { "@label", LS_P_STR, "", LS_PF_NULLABLE, R(label), "label to send the records to", NULL,
      NULL, 0, 0 },
    { "remove_tag_prefix", LS_P_STR, "", LS_PF_NULLABLE, R(remove_tag_prefix),
      "a tag starting with this and a dot loses them", NULL, NULL, 0, 0 },
    { "add_tag_prefix", LS_P_STR, "", LS_PF_NULLABLE, R(add_tag_prefix),
      "put this and a dot in front of the tag", NULL, NULL, 0, 0 },
    { "copy", LS_P_BOOL, "false", 0, R(copy), "go on to the next matching route too", NULL,
      NULL, 0, 0 },
    LS_PARAM_END
};

/* The plugin's tag_modifier, into the record's arena. */
static void route_modify(struct ls_arena *arena, const char *remove, const char *add,
                         const char **tag, size_t *len)
{
    size_t rl = remove ? strlen(remove) : 0, al = add ? strlen(add) : 0, skip = 0, n;
    char *t;

    if (remove == NULL && add == NULL) {
        return;
    }
    if (remove && *len > rl && memcmp(*tag, remove, rl) == 0 && (*tag)[rl] == '.') {
        skip = rl + 1;
    }
    n = (al ? al + 1 : 0) + *len - skip;
    t = ls_arena_alloc(arena, n + 1);
    if (al) {
        memcpy(t, add, al);
        t[al] = '.';
    }
    memcpy(t + (al ? al + 1 : 0), *tag + skip, *len - skip);
    t[n] = '\0';
    *tag = t;
    *len = n;
}

static int route_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                      size_t errlen)
{
    struct route_ctx *ctx = ins->ctx;
    struct ls_conf_section *s;
    size_t i = 0;

    for (s = sec->children; s; s = s->next) {
        if (strcmp(s->name, "store") == 0) {
            snprintf(err, errlen, "%s:%d: <store> section is not available in route plugin",
                     s->file, s->line);
            return LS_ERROR;
        }
        ctx->nroutes += strcmp(s->name, "route") == 0;
    }
    if (ctx->nroutes == 0) {
        snprintf(err, errlen, "%s:%d: route needs at least one <route> section", sec->file,
                 sec->line);
        return LS_ERROR;
    }
    ctx->routes = ls_calloc(ctx->nroutes, sizeof(*ctx->routes));
    for (s = sec->children; s; s = s->next) {
        struct route *r;
        char perr[200];

        if (strcmp(s->name, "route") != 0) {
            continue;
        }
        r = &ctx->routes[i++];
        if (ls_param_bind(route_route_params, s, r, err, errlen) != LS_OK) {
            return LS_ERROR;
        }
        r->pattern = ls_pattern_compile(s->arg && s->arg[0] ? s->arg : "**", perr,
                                        sizeof(perr));
        if (r->pattern == NULL) {
            snprintf(err, errlen, "%s:%d: %s", s->file, s->line, perr);
            return LS_ERROR;
        }
        if (r->label && !ls_label_exists(ins->engine, r->label)) {
            snprintf(err, errlen, "%s:%d: <route> @label %s: no such <label>", s->file, s->line,
                     r->label);
            return LS_ERROR;
        }
    }
    return LS_OK;
}

static int route_emit(struct ls_instance *ins, const struct ls_record *rec)
{
    struct route_ctx *ctx = ins->ctx;
    const char *tag = rec->tag;
    size_t len = rec->tag_len, i;
    int result = LS_OK;

    route_modify(rec->arena, ctx->remove_tag_prefix, ctx->add_tag_prefix, &tag, &len);
    for (i = 0; i < ctx->nroutes; i++) {
        struct route *r = &ctx->routes[i];
        struct ls_record *copy;
        int rc;

        if (!ls_pattern_match(r->pattern, tag, len)) {
            continue;
        }
        copy = ls_output_reemit_copy(ins, rec);
        copy->tag = tag;
        copy->tag_len = len;
        route_modify(rec->arena, r->remove_tag_prefix, r->add_tag_prefix, &copy->tag,
                     &copy->tag_len);
        /* as out_copy: a store that pushes back makes the whole emit come again, and the
         * outputs that took the record already drop it then by its position */
        rc = ls_output_reemit(ins, r->label, copy);
        if (rc == LS_AGAIN) {
            result = LS_AGAIN;
        } else if (rc != LS_OK && result == LS_OK) {
            result = rc;
        }
        if (!r->copy) {
            break;
        }
    }
    return result;
}

static void route_destroy(struct ls_instance *ins)
{
    struct route_ctx *ctx = ins->ctx;
    size_t i;

    for (i = 0; i < ctx->nroutes; i++) {
        ls_pattern_free(ctx->routes[i].pattern);
        ls_param_release(route_route_params, &ctx->routes[i]);
    }
    ls_free(ctx->routes);
}

const struct ls_plugin ls_plugin_out_route = {
    .name = "route",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "re-emit records under rewritten tags through <route> sections "
                   "(fluent-plugin-route)",
    .params = route_params,
    .ctx_size = sizeof(struct route_ctx),
    .init = route_init,
    .destroy = route_destroy,
    .output_flags = LS_OUT_UNBUFFERED,
    .emit = route_emit,
};
