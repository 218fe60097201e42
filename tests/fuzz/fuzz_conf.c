/*
 * fuzz_conf.c - libFuzzer target for the configuration parser.
 *
 * Feeds arbitrary bytes to ls_conf_load_string and, when they parse, walks
 * the tree the way the engine does (type lookup, unused-parameter warnings,
 * dump) so the tree code is fuzzed too, not only the parser. Logging is
 * silenced; an @include in the input resolves relative to a name that does
 * not exist on disk, so the fuzzer cannot wander the file system much.
 */
#include "conf.h"
#include "log.h"

static void sink(const char *s, void *arg)
{
    (void)s;
    (void)arg;
}

static void walk(struct ls_conf_section *s)
{
    for (; s; s = s->next) {
        (void)ls_conf_type(s);
        (void)ls_conf_get(s, "path");
        walk(s->children);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    struct ls_conf *c;

    ls_log_level = LS_LOG_FATAL;
    c = ls_conf_load_string("/nonexistent-fuzz-dir/fuzz.conf", (const char *)data, size, err,
                            sizeof(err));
    if (c) {
        walk(c->root);
        (void)ls_conf_warn_unused(c->root);
        ls_conf_dump(c->root, 0, sink, NULL);
    }
    ls_conf_destroy(c);
    return 0;
}
