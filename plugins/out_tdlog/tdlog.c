/*
 * tdlog.c - fluent-plugin-td's out_tdlog (Treasure Data), the output every stock
 * td-agent.conf carries for tags td.DATABASE.TABLE.
 *
 * As lib/fluent/plugin/out_tdlog.rb (1.x) with td-client-ruby: each chunk is one import,
 * PUT <import endpoint>/v3/table/import_with_id/<db>/<table>/<unique id>/msgpack.gz with
 * "Authorization: TD1 <apikey>", the body the gzip of the chunk's records as MessagePack
 * maps, each with "time" set to its event time in seconds. The database and table are the
 * last two parts of the tag (normalized as td-client does: lowercase, other characters
 * '_', at least 3 characters), or `database` and `table`. The unique id is the chunk's
 * persistent id, so Treasure Data takes a retried chunk once.
 *
 * Answers, as the plugin's: 2xx done; 404 with auto_create_table: create the table
 * (POST <api endpoint>/v3/table/create/<db>/<table>/log; on 404 the database first, 409
 * "exists" ignored) and import again at once; 429 and anything that is not a 4xx (5xx, no
 * answer) retried with the buffer's backoff; any other 4xx (a bad apikey...) unrecoverable.
 * Records with more than 512 keys are left out of the import and counted, as the plugin
 * sends them to @ERROR.
 *
 * Differences: the table is created at the first import, not at start; a tag without two
 * parts is unrecoverable (the plugin retries it forever); a <buffer> without @type is a file
 * buffer, as the plugin's default, but without any <buffer> the buffer is memory (the
 * plugin's file buffer would need a path it does not have).
 */
#include "plugin.h"
#include "log.h"
#include "http.h"
#include "msgpack.h"
#include "compress.h"
#include "param.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define TD_KEY_LIMIT 512

struct td {
    char *apikey;
    bool auto_create_table;
    char *database;
    char *table;
    bool use_gzip_command;
    char *import_endpoint;
    char *api_endpoint;
    bool use_ssl;
    char *tmpdir;
    char *http_proxy;
    int64_t connect_timeout;
    int64_t read_timeout;
    int64_t send_timeout;
    /* derived */
    struct ls_instance *ins;
    char *import_base, *api_base;
    char *auth;
    uint64_t too_many_keys;
};

#define F(f) offsetof(struct td, f)

static const struct ls_param td_params[] = {
    { "apikey", LS_P_SECRET, NULL, LS_PF_REQUIRED, F(apikey), "Treasure Data write API key",
      NULL, NULL, 0, 0 },
    { "auto_create_table", LS_P_BOOL, "true", 0, F(auto_create_table),
      "create a missing database and table", NULL, NULL, 0, 0 },
    { "database", LS_P_STR, NULL, LS_PF_NULLABLE, F(database),
      "database (with table; default: from the tag td.DATABASE.TABLE)", NULL, NULL, 0, 0 },
    { "table", LS_P_STR, NULL, LS_PF_NULLABLE, F(table), "table", NULL, NULL, 0, 0 },
    { "endpoint", LS_P_STR, "api-import.treasuredata.com", 0, F(import_endpoint),
      "import API host (or URL)", "import_endpoint", NULL, 0, 0 },
    { "api_endpoint", LS_P_STR, "api.treasuredata.com", 0, F(api_endpoint),
      "REST API host (or URL), for creating tables", NULL, NULL, 0, 0 },
    { "use_ssl", LS_P_BOOL, "true", 0, F(use_ssl), "https for a host without a scheme", NULL,
      NULL, 0, 0 },
    { "http_proxy", LS_P_STR, NULL, LS_PF_NULLABLE, F(http_proxy), "proxy URL", NULL, NULL, 0,
      0 },
    { "connect_timeout", LS_P_INT, "60", 0, F(connect_timeout), "seconds to connect", NULL,
      NULL, 1, 1e6 },
    { "read_timeout", LS_P_INT, "600", 0, F(read_timeout),
      "give up when no byte moves for this many seconds", NULL, NULL, 1, 1e6 },
    { "send_timeout", LS_P_INT, "600", 0, F(send_timeout), "accepted (see read_timeout)", NULL,
      NULL, 1, 1e6 },
    { "use_gzip_command", LS_P_BOOL, "false", 0, F(use_gzip_command),
      "accepted; libdeflate compresses", NULL, NULL, 0, 0 },
    { "tmpdir", LS_P_STR, NULL, LS_PF_NULLABLE, F(tmpdir),
      "accepted; the body is built in memory-backed files", NULL, NULL, 0, 0 },
    LS_PARAM_END
};

/* td-client's normalize_database_name / normalize_table_name */
static char *td_normalize(const char *s, size_t n)
{
    char *out = ls_malloc(n + 4);
    size_t i, len = n;

    memcpy(out, s, n);
    while (len < 3) {
        out[len++] = '_';
    }
    if (len > 255) {
        len = 255;
        out[253] = out[254] = '_';
    }
    out[len] = '\0';
    for (i = 0; i < len; i++) {
        char c = out[i];
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
            c = '_';
        }
        out[i] = c;
    }
    return out;
}

/* td-client's validate_name: 3 to 255 of [a-z0-9_] */
static bool td_valid(const char *s)
{
    size_t n = strlen(s);

    if (n < 3 || n > 255) {
        return false;
    }
    for (; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_')) {
            return false;
        }
    }
    return true;
}

static char *td_base(const char *endpoint, bool ssl)
{
    if (strstr(endpoint, "://")) {
        size_t n = strlen(endpoint);
        return ls_strndup(endpoint, n > 0 && endpoint[n - 1] == '/' ? n - 1 : n);
    }
    return ls_asprintf("%s://%s", ssl ? "https" : "http", endpoint);
}

static int td_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                   size_t errlen)
{
    struct td *o = ins->ctx;
    struct ls_conf_section *bs = ls_conf_child(sec, "buffer");

    o->ins = ins;
    if (o->database && o->table) {
        if (!td_valid(o->database)) {
            ls_conf_param_error(sec, "database", err, errlen, "Invalid database name \"%s\": "
                                "3 to 255 lower-case letters, digits and '_'", o->database);
            return LS_ERROR;
        }
        if (!td_valid(o->table)) {
            ls_conf_param_error(sec, "table", err, errlen, "Invalid table name \"%s\": 3 to 255 "
                                "lower-case letters, digits and '_'", o->table);
            return LS_ERROR;
        }
    } else if (bs && bs->arg[0] && !strstr(bs->arg, "tag")) {
        snprintf(err, errlen, "%s:%d: 'tag' must be included in <buffer ARG> when database and "
                 "table are not specified", bs->file, bs->line);
        return LS_ERROR;
    }
    /* the plugin's buffer defaults, where its <buffer> leaves them out */
    if (bs) {
        if (ls_conf_get_param(bs, "@type") == NULL && ls_conf_get_param(bs, "type") == NULL) {
            ls_conf_set(bs, "@type", "file", bs->file, bs->line);
        }
        if (ls_conf_get_param(bs, "flush_interval") == NULL) {
            ls_conf_set(bs, "flush_interval", "300", bs->file, bs->line);
        }
        if (ls_conf_get_param(bs, "chunk_limit_size") == NULL) {
            ls_conf_set(bs, "chunk_limit_size", "32m", bs->file, bs->line);
        }
        if (ls_conf_get_param(bs, "chunk_limit_records") == NULL) {
            ls_conf_set(bs, "chunk_limit_records", "8096", bs->file, bs->line);
        }
    }
    o->import_base = td_base(o->import_endpoint, o->use_ssl);
    o->api_base = td_base(o->api_endpoint, o->use_ssl);
    o->auth = ls_asprintf("Authorization: TD1 %s", o->apikey);
    return ls_compress_load(LS_COMPRESS_GZIP, err, errlen);
}

/* ---- one chunk ---- */

struct td_job {
    struct td *o;
    struct ls_chunk *c;
    char *db, *table;
    int fd;
    uint64_t size;
    uint64_t skipped;
    int rc;
    char err[300];
    char *url;
    int stage;                  /* 0 import, 1 table create, 2 database create, 3 table again */
    bool created;
    /* building */
    struct ls_chunk_entries *en;
    msgpack_sbuffer sb;
    size_t sboff;
};

/* ls_compress_stream's reader: each [time, record] entry as the record with "time" set. */
static long td_read(void *arg, void *buf, size_t n)
{
    struct td_job *j = arg;
    size_t k = 0;

    while (k < n) {
        const msgpack_object *e, *map;
        struct ls_time t;
        msgpack_packer pk;
        uint32_t i, size;
        bool has_time = false;

        if (j->sboff < j->sb.size) {
            size_t take = j->sb.size - j->sboff;
            if (take > n - k) {
                take = n - k;
            }
            memcpy((char *)buf + k, j->sb.data + j->sboff, take);
            j->sboff += take;
            k += take;
            continue;
        }
        msgpack_sbuffer_clear(&j->sb);
        j->sboff = 0;
        e = ls_chunk_entries_next(j->en);
        if (e == NULL) {
            if (ls_chunk_entries_failed(j->en)) {
                return -1;
            }
            break;
        }
        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size < 2 ||
            !ls_msgpack_event_time(&e->via.array.ptr[0], &t) ||
            e->via.array.ptr[1].type != MSGPACK_OBJECT_MAP) {
            j->skipped++;
            continue;
        }
        map = &e->via.array.ptr[1];
        size = map->via.map.size;
        for (i = 0; i < size; i++) {
            has_time = has_time || ls_msgpack_str_eq(&map->via.map.ptr[i].key, "time");
        }
        if (size + (has_time ? 0 : 1) > TD_KEY_LIMIT) {
            j->skipped++;       /* the plugin: "too many number of keys", to @ERROR */
            continue;
        }
        msgpack_packer_init(&pk, &j->sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, size + (has_time ? 0 : 1));
        for (i = 0; i < size; i++) {
            if (ls_msgpack_str_eq(&map->via.map.ptr[i].key, "time")) {
                continue;
            }
            msgpack_pack_object(&pk, map->via.map.ptr[i].key);
            msgpack_pack_object(&pk, map->via.map.ptr[i].val);
        }
        msgpack_pack_str_with_body(&pk, "time", 4);
        msgpack_pack_int64(&pk, t.sec);
    }
    return (long)k;
}

static void td_build(void *arg)
{
    struct td_job *j = arg;
    char cerr[200] = "";
    struct stat st;

    j->rc = LS_ERROR;
    j->fd = memfd_create("logship-td-import", MFD_CLOEXEC);
    j->en = ls_chunk_entries_open(j->c);
    msgpack_sbuffer_init(&j->sb);
    if (j->fd < 0 || j->en == NULL) {
        snprintf(j->err, sizeof(j->err), "cannot read chunk %s (%d: %s)",
                 ls_chunk_info(j->c)->id, errno, strerror(errno));
        goto out;
    }
    if (ls_compress_stream(LS_COMPRESS_GZIP, -1, td_read, j, j->fd, NULL, cerr,
                           sizeof(cerr)) != LS_OK || fstat(j->fd, &st) != 0) {
        snprintf(j->err, sizeof(j->err), "building the import of chunk %s failed: %s",
                 ls_chunk_info(j->c)->id, cerr[0] ? cerr : strerror(errno));
        goto out;
    }
    j->size = (uint64_t)st.st_size;
    j->rc = LS_OK;
out:
    ls_chunk_entries_close(j->en);
    j->en = NULL;
    msgpack_sbuffer_destroy(&j->sb);
}

static void td_job_free(struct td_job *j)
{
    if (j->fd >= 0) {
        close(j->fd);
    }
    ls_free(j->db);
    ls_free(j->table);
    ls_free(j->url);
    ls_free(j);
}

static void td_done(struct td_job *j, int rc, const char *msg)
{
    struct td *o = j->o;

    if (rc == LS_OK && j->skipped) {
        o->too_many_keys += j->skipped;
        ls_plg_warn(o->ins, "%llu records with more than %d keys were left out of the import "
                    "(%llu so far)", (unsigned long long)j->skipped, TD_KEY_LIMIT,
                    (unsigned long long)o->too_many_keys);
    }
    ls_output_write_done(o->ins, j->c, rc, msg);
    td_job_free(j);
}

static void td_request(struct td_job *j);

/* "<status> <message>" of a TD answer ({"message": ...} or the body). */
static void td_text(struct ls_http_resp *resp, char *out, size_t outlen)
{
    const char *b = ls_buf_cstr(&resp->body);
    const char *m = strstr(b, "\"message\"");

    if (m && (m = strchr(m + 9, '"')) != NULL) {
        const char *e = strchr(m + 1, '"');
        snprintf(out, outlen, "%ld %.*s", resp->status, e ? (int)(e - m - 1) : 80, m + 1);
    } else {
        snprintf(out, outlen, "%ld %.*s", resp->status,
                 (int)(resp->body.len > 160 ? 160 : resp->body.len), b);
    }
}

static void td_answer(struct ls_http_resp *resp, void *arg)
{
    struct td_job *j = arg;
    struct td *o = j->o;
    char text[260], msg[400];

    if (resp->status == 0) {
        snprintf(msg, sizeof(msg), "Failed to upload to Treasure Data '%s.%s' table: %s", j->db,
                 j->table, resp->error[0] ? resp->error : "no answer");
        td_done(j, LS_ERROR, msg);
        return;
    }
    td_text(resp, text, sizeof(text));
    switch (j->stage) {
    case 0:             /* the import */
        if (resp->status >= 200 && resp->status < 300) {
            o->ins->metrics.write_bytes += j->size;
            ls_output_delivered(o->ins, j->c, j->url, j->size);
            td_done(j, LS_OK, NULL);
            return;
        }
        if (resp->status == 404 && o->auto_create_table && !j->created) {
            ls_plg_info(o->ins, "Creating table %s.%s on TreasureData", j->db, j->table);
            j->stage = 1;
            td_request(j);
            return;
        }
        snprintf(msg, sizeof(msg), "Import failed into '%s.%s': %s", j->db, j->table, text);
        /* TooManyRequestsError is retried; other ClientErrors are unrecoverable */
        td_done(j, resp->status >= 400 && resp->status < 500 && resp->status != 429
                       ? LS_DECLINED : LS_ERROR, msg);
        return;
    case 1:             /* create the table */
    case 3:
        if ((resp->status >= 200 && resp->status < 300) || resp->status == 409) {
            j->created = true;
            j->stage = 0;
            td_request(j);
            return;
        }
        if (resp->status == 404 && j->stage == 1) {
            j->stage = 2;
            td_request(j);
            return;
        }
        break;
    case 2:             /* create the database, then the table again */
        if ((resp->status >= 200 && resp->status < 300) || resp->status == 409) {
            j->stage = 3;
            td_request(j);
            return;
        }
        break;
    default:
        break;
    }
    snprintf(msg, sizeof(msg), "Creating %s '%s.%s' failed: %s",
             j->stage == 2 ? "database" : "table", j->db, j->table, text);
    td_done(j, resp->status >= 400 && resp->status < 500 && resp->status != 429 ? LS_DECLINED
                                                                               : LS_ERROR, msg);
}

static void td_request(struct td_job *j)
{
    struct td *o = j->o;
    struct ls_http_req req;
    struct ls_buf h;

    ls_free(j->url);
    ls_buf_init(&h, 0);
    ls_http_hdr_add(&h, o->auth);
    ls_http_hdr_add(&h, "User-Agent: logship (fluent-plugin-td compatible)");
    ls_http_hdr_add(&h, "Expect:");
    memset(&req, 0, sizeof(req));
    req.body_fd = -1;
    if (j->stage == 0) {
        j->url = ls_asprintf("%s/v3/table/import_with_id/%s/%s/%s/msgpack.gz", o->import_base,
                             j->db, j->table, ls_chunk_info(j->c)->id);
        ls_http_hdr_add(&h, "Content-Type: application/octet-stream");
        req.method = "PUT";
        req.body_fd = j->fd;
        req.body_file_len = j->size;
    } else {
        if (j->stage == 2) {
            j->url = ls_asprintf("%s/v3/database/create/%s", o->api_base, j->db);
        } else {
            j->url = ls_asprintf("%s/v3/table/create/%s/%s/log", o->api_base, j->db, j->table);
        }
        ls_http_hdr_add(&h, "Content-Type: application/json; charset=utf-8");
        req.method = "POST";
        req.body = "";
        req.body_len = 0;
    }
    req.url = j->url;
    req.headers = &h;
    req.connect_timeout = (double)o->connect_timeout;
    req.low_speed_time = (double)o->read_timeout;
    req.verify_peer = true;
    req.proxy = o->http_proxy;
    req.max_response = 64 * 1024;
    if (j->stage == 0) {
        ls_output_write_sending(o->ins, j->c);
    }
    if (ls_http_submit(o->ins->engine, &req, td_answer, j) != LS_OK) {
        ls_buf_release(&h);
        td_done(j, LS_ERROR, "cannot start the request to Treasure Data");
        return;
    }
    ls_buf_release(&h);
}

static void td_built(void *arg)
{
    struct td_job *j = arg;

    if (j->rc != LS_OK) {
        td_done(j, LS_ERROR, j->err);
        return;
    }
    td_request(j);
}

static int td_write(struct ls_instance *ins, struct ls_chunk *c)
{
    struct td *o = ins->ctx;
    struct td_job *j;
    const char *tag = ls_chunk_info(c)->tag;

    j = ls_calloc(1, sizeof(*j));
    j->o = o;
    j->c = c;
    j->fd = -1;
    if (o->database && o->table) {
        j->db = ls_strdup(o->database);
        j->table = ls_strdup(o->table);
    } else {
        /* the tag's last two parts: td.DATABASE.TABLE */
        const char *last = strrchr(tag, '.'), *prev;
        if (last == NULL || last == tag) {
            char msg[300];
            snprintf(msg, sizeof(msg), "tag '%s' does not name a database and a table "
                     "(td.DATABASE.TABLE)", tag);
            ls_output_write_done(ins, c, LS_DECLINED, msg);
            ls_free(j);
            return LS_AGAIN;
        }
        for (prev = last - 1; prev > tag && *prev != '.'; prev--) {
        }
        if (*prev == '.') {
            prev++;
        }
        j->db = td_normalize(prev, (size_t)(last - prev));
        j->table = td_normalize(last + 1, strlen(last + 1));
    }
    if (ls_work_submit(ins->engine, td_build, td_built, j) != LS_OK) {
        td_job_free(j);
        return LS_ERROR;
    }
    return LS_AGAIN;
}

static void td_destroy(struct ls_instance *ins)
{
    struct td *o = ins->ctx;

    ls_free(o->import_base);
    ls_free(o->api_base);
    ls_free(o->auth);
}

const struct ls_plugin ls_plugin_out_tdlog = {
    .name = "tdlog",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "import records into Treasure Data tables (fluent-plugin-td)",
    .params = td_params,
    .ctx_size = sizeof(struct td),
    .init = td_init,
    .destroy = td_destroy,
    .output_flags = LS_OUT_BUFFERED,
    .default_formatter = "msgpack",
    .default_chunk_keys = "tag",
    .formatter_for = ls_msgpack_formatter_for,
    .write = td_write,
};
