/*
 * gelf.c - fluent-plugin-gelf's output (`@type gelf`): records as GELF 1.1 messages to
 * Graylog over UDP (zlib-compressed, chunked past 1420 bytes) or TCP (JSON ended by a NUL).
 *
 * As lib/fluent/plugin/out_gelf.rb with gelf-rb's Notifier (facility "fluentd", the "direct"
 * level mapping, no file and line): the message is gelf-rb's defaults (facility, protocol,
 * version 1.1, host = this host's name, level) merged with the record's fields: timestamp is
 * the event time in seconds with 3 decimals, _tag the tag; version, timestamp, host (unless
 * use_record_host) and msec (unless add_msec_time, which adds it to the timestamp) get a "_";
 * level names and numbers become syslog levels (emergency/alert and 0/1 become 1, as gelf-rb
 * has no level for them); short_message, full_message, facility, line and file stay; every
 * other field gets a "_". Without a non-blank short_message, message, msg, log or record
 * takes its place, else "(no message)". UDP datagrams of more than 128 chunks are left out, as
 * gelf-rb refuses them (logged, counted as dropped).
 *
 * The tag comes from the chunk: the buffer's chunk keys default to tag here (a <buffer []>
 * leaves _tag out). UDP cannot say whether Graylog got a message; TCP can say the connection
 * failed, and then the chunk is retried with the buffer's backoff.
 */
#include "plugin.h"
#include "log.h"
#include "json.h"
#include "msgpack.h"
#include "net.h"

#include <math.h>
#include <netdb.h>
#include <openssl/md5.h>
#include <openssl/rand.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#define GELF_CHUNK 1420         /* gelf-rb's 'WAN' */
#define GELF_MAX_CHUNKS 128

struct gelf {
    bool use_record_host;
    bool add_msec_time;
    char *host;
    int64_t port;
    char *protocol;
    bool tcp;
    char hostname[256];
    struct ls_instance *ins;
};

#define F(f) offsetof(struct gelf, f)

static const struct ls_param gelf_params[] = {
    { "host", LS_P_STR, NULL, LS_PF_REQUIRED, F(host), "Graylog's host name or address", NULL,
      NULL, 0, 0 },
    { "port", LS_P_INT, "12201", 0, F(port), "its GELF input's port", NULL, NULL, 1, 65535 },
    { "protocol", LS_P_STR, "udp", 0, F(protocol), "udp or tcp", NULL, NULL, 0, 0 },
    { "use_record_host", LS_P_BOOL, "false", 0, F(use_record_host),
      "the record's host is the message's host (else it is _host)", NULL, NULL, 0, 0 },
    { "add_msec_time", LS_P_BOOL, "false", 0, F(add_msec_time),
      "the record's msec (3 digits) is the timestamp's fraction", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

static int gelf_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                     size_t errlen)
{
    struct gelf *g = ins->ctx;

    g->ins = ins;
    if (strcmp(g->protocol, "udp") == 0) {
        g->tcp = false;
    } else if (strcmp(g->protocol, "tcp") == 0) {
        g->tcp = true;
    } else {
        ls_conf_param_error(sec, "protocol", err, errlen, "'protocol' parameter should be "
                            "either 'udp' (default) or 'tcp'");
        return LS_ERROR;
    }
    if (gethostname(g->hostname, sizeof(g->hostname) - 1) != 0) {
        snprintf(g->hostname, sizeof(g->hostname), "localhost");
    }
    return LS_OK;
}

/* gelf-rb's direct mapping of the plugin's GELF::Levels value; -1: not a level name */
static int level_of(const struct ls_value *v, struct ls_buf *tmp)
{
    static const struct { const char *name; int level; } names[] = {
        { "0", 1 }, { "emergency", 1 }, { "1", 1 }, { "alert", 1 }, { "2", 2 },
        { "critical", 2 }, { "crit", 2 }, { "3", 3 }, { "error", 3 }, { "err", 3 },
        { "4", 4 }, { "warning", 4 }, { "warn", 4 }, { "5", 6 }, { "notice", 6 },
        { "6", 6 }, { "informational", 6 }, { "info", 6 }, { "7", 7 }, { "debug", 7 },
    };

    ls_buf_reset(tmp);
    if (v->type == LS_V_STR) {
        ls_buf_append(tmp, v->u.s.p, v->u.s.len);
    } else if (v->type != LS_V_NULL) {
        ls_ruby_put_value(tmp, v, false);
    }
    for (size_t i = 0; i < tmp->len; i++) {
        if (tmp->p[i] >= 'A' && tmp->p[i] <= 'Z') {
            tmp->p[i] = (char)(tmp->p[i] + 32);
        }
    }
    for (size_t i = 0; i < LS_ARRAY_LEN(names); i++) {
        if (strlen(names[i].name) == tmp->len && memcmp(names[i].name, tmp->p, tmp->len) == 0) {
            return names[i].level;
        }
    }
    return -1;
}

static bool blank(const struct ls_value *v, struct ls_buf *tmp)
{
    ls_buf_reset(tmp);
    if (v->type == LS_V_STR) {
        ls_buf_append(tmp, v->u.s.p, v->u.s.len);
    } else if (v->type != LS_V_NULL) {
        ls_ruby_put_value(tmp, v, false);
    }
    for (size_t i = 0; i < tmp->len; i++) {
        char c = tmp->p[i];
        if (c != ' ' && (c < '\t' || c > '\r') && c != '\0') {
            return false;
        }
    }
    return true;
}

/* The message of one record as JSON into out (the hash gelf-rb sends, in its key order). */
static void build_message(struct gelf *g, const struct ls_record *rec, const struct ls_time *t,
                          const char *tag, struct ls_arena *a, struct ls_buf *out)
{
    struct ls_record m;
    struct ls_buf tmp, key;
    struct ls_value v;
    double ts = (double)t->sec + round((double)t->nsec / 1e6) / 1000.0;
    int level = 1;              /* GELF::UNKNOWN in the direct mapping */
    bool has_level = false, bad_level = false;
    struct ls_value bad;

    ls_record_init(&m, a);
    ls_buf_init(&tmp, 0);
    ls_buf_init(&key, 0);
    /* default_options first: facility, protocol, version, host, level */
    v = ls_vstr("fluentd", 7);
    ls_record_add(&m, "facility", 8, &v);
    v = ls_vint(g->tcp ? 1 : 0);
    ls_record_add(&m, "protocol", 8, &v);
    v = ls_vstr("1.1", 3);
    ls_record_add(&m, "version", 7, &v);
    v = ls_vstr(g->hostname, strlen(g->hostname));
    ls_record_add(&m, "host", 4, &v);
    v = ls_vint(1);
    ls_record_add(&m, "level", 5, &v);
    v = ls_vfloat(ts);
    ls_record_add(&m, "timestamp", 9, &v);
    if (tag[0]) {
        v = ls_vstr(tag, strlen(tag));
        ls_record_add(&m, "_tag", 4, &v);
    }
    for (unsigned i = 0; i < rec->nfields; i++) {
        const struct ls_field *f = &rec->fields[i];
        const char *k = f->key;
        size_t kl = f->key_len;
#define IS(s) (kl == sizeof(s) - 1 && memcmp(k, s, kl) == 0)
        if (IS("host") && g->use_record_host) {
            ls_record_set(&m, "host", 4, &f->v);
        } else if (IS("level")) {
            int l = level_of(&f->v, &tmp);
            if (l >= 0) {
                level = l;
                has_level = true;
            } else {
                bad_level = true;
                bad = f->v;
            }
        } else if (IS("msec") && g->add_msec_time) {
            /* "#{time.to_s}.#{v}".to_f */
            ls_buf_reset(&tmp);
            ls_buf_printf(&tmp, "%lld.", (long long)t->sec);
            if (f->v.type == LS_V_STR) {
                ls_buf_append(&tmp, f->v.u.s.p, f->v.u.s.len);
            } else {
                ls_ruby_put_value(&tmp, &f->v, false);
            }
            v = ls_vfloat(strtod(ls_buf_cstr(&tmp), NULL));
            ls_record_set(&m, "timestamp", 9, &v);
        } else if (IS("short_message") || IS("full_message") || IS("facility") || IS("line") ||
                   IS("file")) {
            ls_record_set(&m, k, kl, &f->v);
        } else {
            char *nk;
            ls_buf_reset(&key);
            ls_buf_putc(&key, '_');
            ls_buf_append(&key, k, kl);
            nk = ls_arena_memdup(a, key.p, key.len);
            ls_record_set(&m, nk, key.len, &f->v);
        }
#undef IS
    }
    if (bad_level) {
        ls_record_set(&m, "_level", 6, &bad);
    }
    (void)has_level;
    v = ls_vint(level);
    ls_record_set(&m, "level", 5, &v);
    {
        const struct ls_field *sm = ls_record_get(&m, "short_message", 13);
        if (sm == NULL || blank(&sm->v, &tmp)) {
            static const char *const alts[] = { "_message", "_msg", "_log", "_record" };
            bool done = false;
            for (size_t i = 0; i < LS_ARRAY_LEN(alts) && !done; i++) {
                const struct ls_field *f = ls_record_get(&m, alts[i], strlen(alts[i]));
                if (f && !blank(&f->v, &tmp)) {
                    struct ls_value mv = f->v;
                    ls_record_del(&m, alts[i], strlen(alts[i]));
                    ls_record_set(&m, "short_message", 13, &mv);
                    done = true;
                }
            }
            if (!done) {
                v = ls_vstr("(no message)", 12);
                ls_record_set(&m, "short_message", 13, &v);
            }
        }
    }
    ls_json_put_record(out, &m);
    ls_record_release(&m);
    ls_buf_release(&tmp);
    ls_buf_release(&key);
}

/* ---- sending, on a worker thread ---- */

struct gelf_job {
    struct gelf *g;
    struct ls_chunk *c;
    int rc;
    uint64_t sent, dropped;
    char err[300];
};

static int open_socket(struct gelf *g, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL, *ai;
    char port[16];
    int fd = -1, rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = g->tcp ? SOCK_STREAM : SOCK_DGRAM;
    snprintf(port, sizeof(port), "%lld", (long long)g->port);
    rc = getaddrinfo(g->host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve '%s': %s", g->host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errlen, "cannot connect to %s:%lld (%s)", g->host, (long long)g->port,
                 strerror(errno));
    }
    return fd;
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *b = p;

    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* gelf-rb's datagrams_from_hash: zlib, then chunks of 1420 bytes with a random id */
static int send_udp(struct gelf_job *j, int fd, const struct ls_buf *json)
{
    uLongf zlen = compressBound((uLong)json->len);
    unsigned char *z = ls_malloc(zlen);
    int rc = 0;

    if (compress2(z, &zlen, (const Bytef *)json->p, (uLong)json->len, Z_DEFAULT_COMPRESSION)
        != Z_OK) {
        ls_free(z);
        return -1;
    }
    if (zlen <= GELF_CHUNK) {
        rc = send(fd, z, zlen, MSG_NOSIGNAL) < 0 && errno != ECONNREFUSED ? -1 : 0;
    } else {
        size_t count = (zlen + GELF_CHUNK - 1) / GELF_CHUNK;
        unsigned char dg[12 + GELF_CHUNK], id[8];
        if (count > GELF_MAX_CHUNKS) {
            j->dropped++;
            ls_free(z);
            return 0;
        }
        if (RAND_bytes(id, sizeof(id)) != 1) {
            ls_free(z);
            return -1;
        }
        for (size_t i = 0; i < count && rc == 0; i++) {
            size_t off = i * GELF_CHUNK, n = zlen - off < GELF_CHUNK ? zlen - off : GELF_CHUNK;
            dg[0] = 0x1e;
            dg[1] = 0x0f;
            memcpy(dg + 2, id, 8);
            dg[10] = (unsigned char)i;
            dg[11] = (unsigned char)count;
            memcpy(dg + 12, z + off, n);
            if (send(fd, dg, 12 + n, MSG_NOSIGNAL) < 0 && errno != ECONNREFUSED) {
                rc = -1;
            }
        }
    }
    ls_free(z);
    return rc;
}

static void gelf_send(void *arg)
{
    struct gelf_job *j = arg;
    struct gelf *g = j->g;
    struct ls_chunk_entries *en = ls_chunk_entries_open(j->c);
    const char *tag = ls_chunk_info(j->c)->tag;
    const msgpack_object *e;
    struct ls_arena a;
    struct ls_buf json;
    int fd;

    j->rc = LS_ERROR;
    if (en == NULL) {
        snprintf(j->err, sizeof(j->err), "cannot read chunk %s", ls_chunk_info(j->c)->id);
        return;
    }
    fd = open_socket(g, j->err, sizeof(j->err));
    if (fd < 0) {
        ls_chunk_entries_close(en);
        return;
    }
    ls_arena_init(&a, 4096);
    ls_buf_init(&json, 0);
    j->rc = LS_OK;
    while (j->rc == LS_OK && (e = ls_chunk_entries_next(en)) != NULL) {
        struct ls_record rec;
        struct ls_time t;

        ls_arena_reset(&a);
        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size < 2 ||
            !ls_msgpack_event_time(&e->via.array.ptr[0], &t)) {
            continue;
        }
        ls_record_init(&rec, &a);
        if (ls_msgpack_map_to_record(&e->via.array.ptr[1], &rec) == LS_OK) {
            ls_buf_reset(&json);
            build_message(g, &rec, &t, tag ? tag : "", &a, &json);
            if (g->tcp) {
                ls_buf_putc(&json, '\0');
                if (send_all(fd, json.p, json.len) != 0) {
                    snprintf(j->err, sizeof(j->err), "sending to %s:%lld failed (%s)", g->host,
                             (long long)g->port, strerror(errno));
                    j->rc = LS_ERROR;
                }
            } else if (send_udp(j, fd, &json) != 0) {
                snprintf(j->err, sizeof(j->err), "sending to %s:%lld failed (%s)", g->host,
                         (long long)g->port, strerror(errno));
                j->rc = LS_ERROR;
            }
            j->sent += json.len;
        }
        ls_record_release(&rec);
    }
    if (j->rc == LS_OK && ls_chunk_entries_failed(en)) {
        snprintf(j->err, sizeof(j->err), "cannot read chunk %s", ls_chunk_info(j->c)->id);
        j->rc = LS_ERROR;
    }
    ls_chunk_entries_close(en);
    ls_buf_release(&json);
    ls_arena_release(&a);
    close(fd);
}

static void gelf_sent(void *arg)
{
    struct gelf_job *j = arg;
    struct gelf *g = j->g;

    if (j->dropped) {
        ls_plg_error(g->ins, "%llu message(s) of chunk %s left out: over %d chunks of %d bytes "
                     "(gelf-rb refuses them too)", (unsigned long long)j->dropped,
                     ls_chunk_info(j->c)->id, GELF_MAX_CHUNKS, GELF_CHUNK);
        g->ins->metrics.dropped += j->dropped;
    }
    if (j->rc == LS_OK) {
        g->ins->metrics.write_bytes += j->sent;
    }
    ls_output_write_done(g->ins, j->c, j->rc, j->rc == LS_OK ? NULL : j->err);
    ls_free(j);
}

static int gelf_write(struct ls_instance *ins, struct ls_chunk *c)
{
    struct gelf_job *j = ls_calloc(1, sizeof(*j));

    j->g = ins->ctx;
    j->c = c;
    if (ls_work_submit(ins->engine, gelf_send, gelf_sent, j) != LS_OK) {
        ls_free(j);
        return LS_ERROR;
    }
    return LS_AGAIN;
}

const struct ls_plugin ls_plugin_out_gelf = {
    .name = "gelf",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "send records to Graylog as GELF over UDP or TCP (fluent-plugin-gelf)",
    .params = gelf_params,
    .ctx_size = sizeof(struct gelf),
    .init = gelf_init,
    .output_flags = LS_OUT_BUFFERED,
    .default_formatter = "msgpack",
    .formatter_for = ls_msgpack_formatter_for,
    .default_chunk_keys = "tag",
    .write = gelf_write,
};
