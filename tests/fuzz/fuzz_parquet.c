/*
 * fuzz_parquet.c - libFuzzer target for the Parquet writer's inputs: records of odd shapes
 * (parquet_shapes.h). The file must be framed (PAR1 ... footer length PAR1), its footer
 * inside it, and the row count what was accepted. DuckDB reads files made the same way in
 * tests/integration/test_parquet.py (test_odd_shapes_read_by_duckdb).
 */
#include "parquet_shapes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ls_buf out;
    size_t accepted;
    int rc;

    ls_buf_init(&out, 0);
    rc = shapes_write(data, size, &out, &accepted);
    if (rc == LS_ERROR) {
        __builtin_trap();
    }
    if (rc == LS_OK) {
        const unsigned char *e = (const unsigned char *)out.p + out.len - 8;
        uint32_t flen;
        if (out.len < 12 || memcmp(out.p, "PAR1", 4) != 0
            || memcmp(out.p + out.len - 4, "PAR1", 4) != 0) {
            __builtin_trap();
        }
        flen = e[0] | (uint32_t)e[1] << 8 | (uint32_t)e[2] << 16 | (uint32_t)e[3] << 24;
        if (flen == 0 || flen > out.len - 12) {
            __builtin_trap();
        }
    }
    ls_buf_release(&out);
    return 0;
}
