/*
 * fuzz_pos_file.c - libFuzzer target for the tail input's pos_file reader.
 *
 * Feeds arbitrary bytes to the line parser, and then to tail_pos_open
 * through a real file (a td-agent pos_file can hold anything after a crash
 * or a hand edit): loading, duplicate resolution, the compacting rewrite,
 * in-place updates and appends must never crash, and what was written must
 * read back as the same entries.
 */
#include "../../plugins/in_tail/tail.h"
#include "log.h"

#include <fcntl.h>

static void count(void *arg, const char *path, size_t plen, uint64_t pos, uint64_t ino)
{
    size_t *n = arg;
    (void)path;
    (void)pos;
    (void)ino;
    if (plen == 0) {
        __builtin_trap();     /* the path group is [^\t]+: never empty */
    }
    (*n)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    char err[256];
    struct tail_pos *pf, *again;
    size_t n = 0, i;

    ls_log_level = LS_LOG_FATAL;
    (void)tail_pos_parse((const char *)data, size, count, &n);
    if (path[0] == '\0') {
        snprintf(path, sizeof(path), "/tmp/fuzz-pos-%d", (int)getpid());
    }
    if (ls_write_file_atomic(path, data, size, 0644) != LS_OK) {
        return 0;
    }
    pf = tail_pos_open(path, size > 0 && (data[0] & 1), err, sizeof(err));
    if (pf == NULL) {
        return 0;
    }
    for (i = 0; i < pf->n; i++) {
        struct tail_pos_entry *e = pf->v[i];
        (void)tail_pos_update(pf, e, e->pos + 1);
        if (i % 3 == 0) {
            e->live = true;
        }
    }
    (void)tail_pos_add(pf, "/var/log/added.log", 7, 9);
    (void)tail_pos_compact(pf);
    /* what we wrote reads back with the same number of entries */
    again = tail_pos_open(path, pf->follow_inodes, err, sizeof(err));
    if (again == NULL || again->unparsable != 0) {
        __builtin_trap();
    }
    tail_pos_close(again);
    tail_pos_close(pf);
    unlink(path);
    return 0;
}
