/*
 * debug_agent.c - fluentd's in_debug_agent, accepted and inert. In fluentd it opens a dRuby
 * console into the running Ruby process; logship has no Ruby objects to inspect, and its
 * state is in monitor_agent and the log. The stock td-agent.conf (and fluentd's own
 * fluent.conf) carry a debug_agent source, so refusing it would refuse those files whole.
 */
#include "plugin.h"
#include "log.h"

struct dbg_ctx {
    char *bind;
    int64_t port;
};

static const struct ls_param dbg_params[] = {
    { "bind", LS_P_STR, "0.0.0.0", 0, offsetof(struct dbg_ctx, bind),
      "accepted; nothing listens", NULL, NULL, 0, 0 },
    { "port", LS_P_INT, "24230", 0, offsetof(struct dbg_ctx, port),
      "accepted; nothing listens", NULL, NULL, 0, 65535 },
    { "unix_path", LS_P_STR, NULL, LS_PF_NO_STORE, 0, "accepted; nothing listens", NULL, NULL,
      0, 0 },
    { "unix_perm", LS_P_STR, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL, 0, 0 },
    { "object", LS_P_STR, NULL, LS_PF_NO_STORE, 0, "accepted", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static int dbg_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                    size_t errlen)
{
    LS_UNUSED(sec);
    LS_UNUSED(err);
    LS_UNUSED(errlen);
    ls_plg_warn(ins, "debug_agent (a dRuby console into fluentd's Ruby process) has no logship "
                "equivalent: this source does nothing (see monitor_agent)");
    return LS_OK;
}

static int dbg_start(struct ls_instance *ins)
{
    if (ls_oneshot(ins->engine)) {
        ls_input_done(ins);
    }
    return LS_OK;
}

const struct ls_plugin ls_plugin_in_debug_agent = {
    .name = "debug_agent",
    .kind = LS_PLUGIN_INPUT,
    .description = "fluentd's dRuby debug console: accepted and inert (nothing to inspect)",
    .params = dbg_params,
    .ctx_size = sizeof(struct dbg_ctx),
    .init = dbg_init,
    .start = dbg_start,
};
