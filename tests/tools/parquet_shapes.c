/*
 * parquet_shapes.c - write the Parquet file the fuzz target makes from an input file
 * (tests/fuzz/parquet_shapes.h), for DuckDB to read in the integration tests.
 *
 *   parquet_shapes INPUT OUTPUT.parquet    prints the number of rows written
 */
#include "../fuzz/parquet_shapes.h"

int main(int argc, char **argv)
{
    struct ls_buf out;
    char *in = NULL;
    size_t len, accepted;
    int rc;

    if (argc != 3 || ls_read_file(argv[1], 1u << 24, &in, &len) != LS_OK) {
        fprintf(stderr, "usage: parquet_shapes INPUT OUTPUT.parquet\n");
        return 2;
    }
    ls_buf_init(&out, 0);
    rc = shapes_write((const uint8_t *)in, len, &out, &accepted);
    if (rc == LS_OK && ls_write_file_atomic(argv[2], out.p, out.len, 0644) != LS_OK) {
        rc = LS_ERROR;
    }
    printf("%zu\n", rc == LS_OK ? accepted : 0);
    ls_buf_release(&out);
    ls_free(in);
    return rc == LS_ERROR ? 1 : 0;
}
