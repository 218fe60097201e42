/*
 * fuzz_rbexpr.c - libFuzzer target for the enable_ruby expression subset (agent/rbexpr.c).
 *
 * The first line is the expression (configuration text), the rest a JSON object: the record
 * it is evaluated against. The expression comes from the configuration, but the values it
 * works on (split, gsub, index, match...) come from the logs, so both the parser and the
 * evaluator are fed arbitrary bytes.
 */
#include "json.h"
#include "log.h"
#include "rbexpr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nl = memchr(data, '\n', size);
    size_t elen = nl ? (size_t)(nl - (const char *)data) : size;
    char *expr = ls_strndup((const char *)data, elen);
    char msg[256];
    struct rbx *x;

    ls_log_level = LS_LOG_FATAL;
    x = rbx_compile(expr, msg, sizeof(msg));
    if (x) {
        struct ls_arena a;
        struct ls_record rec;
        struct ls_value v;
        ls_arena_init(&a, 4096);
        ls_record_init(&rec, &a);
        rec.tag = "docker.app.web";
        rec.tag_len = 14;
        rec.time.sec = 1704164645;
        if (nl) {
            (void)ls_json_parse_object(nl + 1, size - elen - 1, &rec);
        }
        (void)rbx_eval(x, &rec, "host", &v);
        ls_record_release(&rec);
        ls_arena_release(&a);
        rbx_free(x);
    }
    ls_free(expr);
    return 0;
}
