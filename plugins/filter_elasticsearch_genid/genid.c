/*
 * genid.c - fluent-plugin-elasticsearch's elasticsearch_genid filter: an id for each record
 * under hash_id_key, for the elasticsearch output's id_key, so a chunk sent again overwrites
 * its documents instead of adding them twice.
 *
 * As lib/fluent/plugin/filter_elasticsearch_genid.rb: by default Base64 of a random UUID
 * (its text); with use_record_as_seed, Base64 of the hash_type digest of a seed: the tag and
 * the time in seconds (include_tag_in_seed, include_time_in_seed) each followed by
 * separator, then the record_keys' values (Ruby's to_s, a missing key as "") joined by
 * separator, or with use_entire_record "|key|value" for every key in sorted order. The id is
 * made when the record passes the filter, so it is in the buffer and a retry sends it again.
 */
#include "plugin.h"
#include "json.h"
#include "compress.h"
#include "log.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

enum { H_MD5, H_SHA1, H_SHA256, H_SHA512 };

struct genid {
    char *hash_id_key;
    bool include_tag_in_seed;
    bool include_time_in_seed;
    bool use_record_as_seed;
    bool use_entire_record;
    struct ls_strv record_keys;
    char *separator;
    int hash_type;
    struct ls_buf seed;
};

#define F(f) offsetof(struct genid, f)

static const struct ls_param genid_params[] = {
    { "hash_id_key", LS_P_STR, "_hash", 0, F(hash_id_key), "field that receives the id", NULL,
      NULL, 0, 0 },
    { "use_record_as_seed", LS_P_BOOL, "false", 0, F(use_record_as_seed),
      "the id is a digest of the record (false: of a random UUID)", NULL, NULL, 0, 0 },
    { "use_entire_record", LS_P_BOOL, "false", 0, F(use_entire_record),
      "with use_record_as_seed: every field in the seed", NULL, NULL, 0, 0 },
    { "record_keys", LS_P_ARRAY, NULL, 0, F(record_keys),
      "with use_record_as_seed: the fields in the seed", NULL, NULL, 0, 0 },
    { "include_tag_in_seed", LS_P_BOOL, "false", 0, F(include_tag_in_seed),
      "the tag first in the seed", NULL, NULL, 0, 0 },
    { "include_time_in_seed", LS_P_BOOL, "false", 0, F(include_time_in_seed),
      "the time in seconds in the seed", NULL, NULL, 0, 0 },
    { "separator", LS_P_STR, "_", 0, F(separator), "between the seed's parts", NULL, NULL, 0,
      0 },
    { "hash_type", LS_P_ENUM, "sha1", 0, F(hash_type), "digest of the seed", NULL,
      "md5|sha1|sha256|sha512", 0, 0 },
    LS_PARAM_END
};

static int genid_init(struct ls_instance *ins, struct ls_conf_section *sec, char *err,
                      size_t errlen)
{
    struct genid *g = ins->ctx;

    ls_buf_init(&g->seed, 0);
    if (!g->use_entire_record && g->record_keys.n == 0 && g->use_record_as_seed) {
        snprintf(err, errlen, "%s:%d: When using record as hash seed, users must specify "
                 "`record_keys`.", sec->file, sec->line);
        return LS_ERROR;
    }
    return LS_OK;
}

/* Ruby's "#{v}" of a value (to_s; nil is "") */
static void put_to_s(struct ls_buf *b, const struct ls_value *v)
{
    if (v->type == LS_V_STR) {
        ls_buf_append(b, v->u.s.p, v->u.s.len);
    } else {
        ls_ruby_put_value(b, v, false);
    }
}

static int key_cmp(const void *a, const void *b)
{
    const struct ls_field *x = *(const struct ls_field *const *)a;
    const struct ls_field *y = *(const struct ls_field *const *)b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);

    return c ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

static int genid_filter(struct ls_instance *ins, struct ls_record *rec)
{
    struct genid *g = ins->ctx;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 64];
    struct ls_value v;
    size_t i;

    if (!g->use_record_as_seed) {
        /* SecureRandom.uuid: a version 4 UUID as text; its Base64 is the id */
        unsigned char r[16];
        char uuid[37];
        if (RAND_bytes(r, sizeof(r)) != 1) {
            return LS_ERROR;
        }
        r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
        r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
        snprintf(uuid, sizeof(uuid), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                 "%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7],
                 r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
        ls_base64((const unsigned char *)uuid, 36, b64);
    } else {
        const EVP_MD *type = g->hash_type == H_MD5 ? EVP_md5()
                             : g->hash_type == H_SHA1 ? EVP_sha1()
                             : g->hash_type == H_SHA256 ? EVP_sha256() : EVP_sha512();
        ls_buf_reset(&g->seed);
        if (g->include_tag_in_seed) {
            ls_buf_append(&g->seed, rec->tag, rec->tag_len);
            ls_buf_append(&g->seed, g->separator, strlen(g->separator));
        }
        if (g->include_time_in_seed) {
            ls_buf_printf(&g->seed, "%lld%s", (long long)rec->time.sec, g->separator);
        }
        if (g->use_entire_record) {
            const struct ls_field **order = ls_malloc((rec->nfields + 1) * sizeof(*order));
            for (i = 0; i < rec->nfields; i++) {
                order[i] = &rec->fields[i];
            }
            qsort(order, rec->nfields, sizeof(*order), key_cmp);
            for (i = 0; i < rec->nfields; i++) {
                ls_buf_putc(&g->seed, '|');
                ls_buf_append(&g->seed, order[i]->key, order[i]->key_len);
                ls_buf_putc(&g->seed, '|');
                put_to_s(&g->seed, &order[i]->v);
            }
            ls_free(order);
        } else {
            for (i = 0; i < g->record_keys.n; i++) {
                const struct ls_field *f = ls_record_get(rec, g->record_keys.v[i],
                                                         strlen(g->record_keys.v[i]));
                if (i) {
                    ls_buf_append(&g->seed, g->separator, strlen(g->separator));
                }
                if (f) {
                    put_to_s(&g->seed, &f->v);
                }
            }
        }
        if (EVP_Digest(g->seed.p ? g->seed.p : "", g->seed.len, md, &mdlen, type, NULL) != 1) {
            return LS_ERROR;
        }
        ls_base64(md, mdlen, b64);
    }
    v = ls_vstr(ls_arena_memdup(rec->arena, b64, strlen(b64)), strlen(b64));
    ls_record_set(rec, g->hash_id_key, strlen(g->hash_id_key), &v);
    return LS_OK;
}

static void genid_destroy(struct ls_instance *ins)
{
    struct genid *g = ins->ctx;

    ls_buf_release(&g->seed);
}

const struct ls_plugin ls_plugin_filter_elasticsearch_genid = {
    .name = "elasticsearch_genid",
    .kind = LS_PLUGIN_FILTER,
    .description = "add a document id for the elasticsearch output's id_key "
                   "(fluent-plugin-elasticsearch)",
    .params = genid_params,
    .ctx_size = sizeof(struct genid),
    .init = genid_init,
    .destroy = genid_destroy,
    .filter = genid_filter,
};
