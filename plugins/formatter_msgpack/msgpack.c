/*
 * msgpack.c - fluentd's msgpack formatter: each record as the MessagePack
 * Forward-protocol entry [time, record], back to back.
 *
 * A chunk of such entries is exactly PackedForward's `entries`, so
 * out_forward sends a chunk's bytes as they are stored (fluentd does the
 * same). Time is the EventTime ext (type 0, fixext 8: seconds and
 * nanoseconds as big-endian uint32) unless time_as_integer, which fluentd
 * v0.12 receivers need. Packing is Debian's libmsgpack-c.
 *
 * Nested values (LS_V_JSON text) become MessagePack maps and arrays, so a
 * receiver sees the same structure fluentd would send.
 */
#include <msgpack.h>

#include "plugin.h"
#include "json.h"

struct fm_ctx {
    bool time_as_integer;
    struct ls_arena arena;     /* nested values' decoded fields, reset per record */
};

static const struct ls_param fm_params[] = {
    { "time_as_integer", LS_P_BOOL, "false", 0, offsetof(struct fm_ctx, time_as_integer),
      "write time as integer seconds instead of the EventTime ext (for fluentd v0.12 receivers)",
      NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static int fm_write(void *data, const char *buf, size_t len)
{
    return ls_buf_append(data, buf, len) == LS_OK ? 0 : -1;
}

/* The EventTime payload: big-endian uint32 seconds, then nanoseconds. */
static void fm_event_time(const struct ls_time *t, char out[8])
{
    uint32_t s = (uint32_t)t->sec, ns = (uint32_t)(t->nsec < 0 ? 0 : t->nsec);

    for (int i = 0; i < 4; i++) {
        out[i] = (char)(s >> (24 - 8 * i));
        out[4 + i] = (char)(ns >> (24 - 8 * i));
    }
}

static int fm_format(struct ls_instance *ins, const struct ls_record *rec, struct ls_buf *out)
{
    struct fm_ctx *c = ins->ctx;
    size_t start = out->len;
    msgpack_packer pk;
    int rc;

    msgpack_packer_init(&pk, out, fm_write);
    rc = msgpack_pack_array(&pk, 2);
    if (rc == 0 && c->time_as_integer) {
        rc = msgpack_pack_int64(&pk, rec->time.sec);
    } else if (rc == 0) {
        char et[8];

        fm_event_time(&rec->time, et);
        rc = msgpack_pack_ext_with_body(&pk, et, sizeof(et), 0);
    }
    if (rc == 0) {
        rc = ls_msgpack_pack_record(&pk, &c->arena, rec);
    }
    ls_arena_reset(&c->arena);
    if (rc != 0) {
        out->len = start;
        return LS_AGAIN;
    }
    return LS_OK;
}

static int fm_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err, size_t errlen)
{
    struct fm_ctx *c = ins->ctx;

    ls_arena_init(&c->arena, 4096);
    return LS_OK;
}

static void fm_destroy(struct ls_instance *ins)
{
    struct fm_ctx *c = ins->ctx;

    ls_arena_release(&c->arena);
}

const struct ls_plugin ls_plugin_formatter_msgpack = {
    .name = "msgpack",
    .kind = LS_PLUGIN_FORMATTER,
    .description = "MessagePack [time, record] entries (the Forward protocol's PackedForward)",
    .params = fm_params,
    .ctx_size = sizeof(struct fm_ctx),
    .init = fm_init,
    .destroy = fm_destroy,
    .format = fm_format,
};
