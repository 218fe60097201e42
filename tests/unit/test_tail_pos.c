/*
 * test_tail_pos.c - the tail input's pos_file reader and writer.
 *
 * The file must stay byte-compatible with fluentd's position_file.rb:
 * "path\t%016x\t%016x\n", in-place updates of the fixed-width fields,
 * appended entries, ffff... for unwatched entries, last duplicate wins,
 * unparsable lines dropped, compaction by tmp + rename.
 */
#include <check.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "../../plugins/in_tail/tail.h"
#include "log.h"

static char dir[256];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/ls-test-tailpos-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ls_log_level = LS_LOG_ERROR;
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static char *path_in(const char *name)
{
    return ls_asprintf("%s/%s", dir, name);
}

static char *slurp(const char *p)
{
    char *s = NULL;
    size_t n = 0;
    ck_assert_int_eq(ls_read_file(p, 1 << 20, &s, &n), LS_OK);
    return s;
}

static void put(const char *p, const char *text)
{
    ck_assert_int_eq(ls_write_file_atomic(p, text, strlen(text), 0644), LS_OK);
}

struct got {
    char path[8][64];
    uint64_t pos[8], ino[8];
    int n;
};

static void collect(void *arg, const char *path, size_t plen, uint64_t pos, uint64_t ino)
{
    struct got *g = arg;
    ck_assert_int_lt(g->n, 8);
    snprintf(g->path[g->n], sizeof(g->path[0]), "%.*s", (int)plen, path);
    g->pos[g->n] = pos;
    g->ino[g->n] = ino;
    g->n++;
}

START_TEST(parse_lines)
{
    const char *text =
        "/var/log/a.log\t00000000000876fa\t0000000000001eec\n"
        "\n"
        "garbage line\n"
        "/b\tzz\t01\n"
        "/c\t1\t2 trailing text is ignored like fluentd's unanchored regex\n"
        "/d\tFFFFFFFFFFFFFFFF\t0000000000000003\n"
        "\t0000000000000001\t0000000000000001\n"
        "/e\t10000000000000000\t1\n"
        "/f\t0\t";
    struct got g = { .n = 0 };
    size_t bad = tail_pos_parse(text, strlen(text), collect, &g);

    ck_assert_int_eq(g.n, 3);
    ck_assert_str_eq(g.path[0], "/var/log/a.log");
    ck_assert_uint_eq(g.pos[0], 0x876fa);
    ck_assert_uint_eq(g.ino[0], 0x1eec);
    ck_assert_str_eq(g.path[1], "/c");
    ck_assert_uint_eq(g.pos[1], 1);
    ck_assert_uint_eq(g.ino[1], 2);
    ck_assert_str_eq(g.path[2], "/d");
    ck_assert_uint_eq(g.pos[2], TAIL_POS_UNWATCHED);
    /* garbage, /b, empty path, 17-digit value, /f without inode digits */
    ck_assert_uint_eq(bad, 5);
}
END_TEST

START_TEST(open_compacts)
{
    char *p = path_in("pos");
    char err[256];
    struct tail_pos *pf;
    char *text;

    put(p, "/a\t0000000000000005\t0000000000000001\n"
           "/gone\tffffffffffffffff\t0000000000000002\n"
           "junk\n"
           "/a\t0000000000000009\t0000000000000001\n"
           "/b\t000000000000000a\t0000000000000003\n");
    pf = tail_pos_open(p, false, err, sizeof(err));
    ck_assert_msg(pf != NULL, "%s", err);
    ck_assert_uint_eq(pf->unparsable, 1);
    ck_assert_uint_eq(pf->duplicates, 1);
    ck_assert_uint_eq(pf->n, 2);
    text = slurp(p);
    /* the last /a wins; unwatched and junk are gone */
    ck_assert_str_eq(text, "/a\t0000000000000009\t0000000000000001\n"
                           "/b\t000000000000000a\t0000000000000003\n");
    ls_free(text);
    ck_assert_uint_eq(tail_pos_find(pf, "/a", 0)->pos, 9);
    ck_assert_ptr_null(tail_pos_find(pf, "/gone", 2));
    tail_pos_close(pf);
    ls_free(p);
}
END_TEST

START_TEST(update_in_place_and_append)
{
    char *p = path_in("pos");
    char err[256];
    struct tail_pos *pf = tail_pos_open(p, false, err, sizeof(err));
    struct tail_pos_entry *a, *b;
    struct stat st1, st2;
    char *text;

    ck_assert_ptr_nonnull(pf);
    a = tail_pos_add(pf, "/var/log/nginx/access.log", 0, 0x1eec);
    b = tail_pos_add(pf, "/x", 7, 8);
    ck_assert_int_eq(stat(p, &st1), 0);
    ck_assert_int_eq(tail_pos_update(pf, a, 0x876fa), LS_OK);
    ck_assert_int_eq(tail_pos_update2(pf, b, 0xabc, 0xdef), LS_OK);
    ck_assert_int_eq(stat(p, &st2), 0);
    /* same file (no rename), same size: updates are in place */
    ck_assert_uint_eq(st1.st_ino, st2.st_ino);
    ck_assert_int_eq(st1.st_size, st2.st_size);
    text = slurp(p);
    ck_assert_str_eq(text, "/var/log/nginx/access.log\t00000000000876fa\t0000000000001eec\n"
                           "/x\t0000000000000abc\t0000000000000def\n");
    ls_free(text);
    tail_pos_close(pf);

    /* reopened: the entries are back */
    pf = tail_pos_open(p, false, err, sizeof(err));
    ck_assert_ptr_nonnull(pf);
    ck_assert_uint_eq(tail_pos_find(pf, "/x", 0)->pos, 0xabc);
    ck_assert_uint_eq(tail_pos_find(pf, "/x", 0)->ino, 0xdef);
    tail_pos_close(pf);
    ls_free(p);
}
END_TEST

/* A file system that cannot take the new entry's line (RLIMIT_FSIZE stands in for a full disk:
 * the same failed append): the next update appends it, so the position is not lost for good. */
START_TEST(failed_append_is_retried_by_the_next_update)
{
    char *p = path_in("pos");
    char err[256];
    struct tail_pos *pf = tail_pos_open(p, false, err, sizeof(err));
    struct tail_pos_entry *a, *b;
    struct rlimit old, lim;
    int rl, ra, rb;
    struct stat st;
    char *text;

    ck_assert_ptr_nonnull(pf);
    a = tail_pos_add(pf, "/a", 1, 2);
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_IGN);
    lim = old;
    ck_assert_int_eq(stat(p, &st), 0);
    lim.rlim_cur = (rlim_t)st.st_size;     /* no byte beyond the end: the append fails */
    /* no ck_assert until the limit is lifted: check writes its own files too */
    rl = setrlimit(RLIMIT_FSIZE, &lim);
    b = tail_pos_add(pf, "/b", 3, 4);
    rb = tail_pos_update(pf, b, 5);
    ra = tail_pos_update(pf, a, 6);     /* in place: still works */
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    ck_assert_int_eq(rl, 0);
    ck_assert_int_eq(rb, LS_ERROR);
    ck_assert_int_eq(ra, LS_OK);
    ck_assert_int_eq(tail_pos_update(pf, b, 7), LS_OK);
    ck_assert_int_eq(tail_pos_update(pf, b, 8), LS_OK);
    text = slurp(p);
    ck_assert_str_eq(text, "/a\t0000000000000006\t0000000000000002\n"
                           "/b\t0000000000000008\t0000000000000004\n");
    ls_free(text);
    tail_pos_close(pf);
    ls_free(p);
}
END_TEST

START_TEST(unwatched_and_compaction)
{
    char *p = path_in("pos");
    char err[256];
    struct tail_pos *pf = tail_pos_open(p, false, err, sizeof(err));
    struct tail_pos_entry *a, *b, *c;
    char *text;

    ck_assert_ptr_nonnull(pf);
    a = tail_pos_add(pf, "/a", 1, 11);
    b = tail_pos_add(pf, "/b", 2, 12);
    c = tail_pos_add(pf, "/c", 3, 13);
    a->live = true;
    c->live = true;
    ck_assert_int_eq(tail_pos_update(pf, c, TAIL_POS_UNWATCHED), LS_OK);
    text = slurp(p);
    ck_assert_ptr_nonnull(strstr(text, "/c\tffffffffffffffff\t000000000000000d\n"));
    ls_free(text);
    (void)b;
    ck_assert_int_eq(tail_pos_compact(pf), LS_OK);
    ck_assert_uint_eq(pf->n, 1);
    text = slurp(p);
    ck_assert_str_eq(text, "/a\t0000000000000001\t000000000000000b\n");
    ls_free(text);
    /* after the rewrite, updates and appends land at the new offsets */
    ck_assert_int_eq(tail_pos_update(pf, a, 0x42), LS_OK);
    (void)tail_pos_add(pf, "/d", 4, 14);
    text = slurp(p);
    ck_assert_str_eq(text, "/a\t0000000000000042\t000000000000000b\n"
                           "/d\t0000000000000004\t000000000000000e\n");
    ls_free(text);
    tail_pos_close(pf);
    ls_free(p);
}
END_TEST

START_TEST(follow_inodes_keys)
{
    char *p = path_in("pos");
    char err[256];
    struct tail_pos *pf;

    put(p, "/a\t0000000000000005\t0000000000000001\n"
           "/a.1\t0000000000000006\t0000000000000001\n"
           "/a\t0000000000000007\t0000000000000002\n");
    pf = tail_pos_open(p, true, err, sizeof(err));
    ck_assert_ptr_nonnull(pf);
    /* keyed by inode: inode 1 appears twice, the later line wins */
    ck_assert_uint_eq(pf->n, 2);
    ck_assert_uint_eq(tail_pos_find(pf, "whatever", 1)->pos, 6);
    ck_assert_uint_eq(tail_pos_find(pf, "/a", 2)->pos, 7);
    ck_assert_ptr_null(tail_pos_find(pf, "/a", 3));
    tail_pos_close(pf);
    ls_free(p);
}
END_TEST

START_TEST(unstorable_paths_stay_in_memory)
{
    char *p = path_in("pos");
    char err[256];
    struct tail_pos *pf = tail_pos_open(p, false, err, sizeof(err));
    struct tail_pos_entry *e;
    char *text;

    ck_assert_ptr_nonnull(pf);
    e = tail_pos_add(pf, "/odd\tname", 1, 2);
    ck_assert_int_eq(e->field, -1);
    ck_assert_int_eq(tail_pos_update(pf, e, 5), LS_OK);
    ck_assert_uint_eq(e->pos, 5);
    text = slurp(p);
    ck_assert_str_eq(text, "");
    ls_free(text);
    tail_pos_close(pf);
    ls_free(p);
}
END_TEST

START_TEST(td_agent_file_roundtrip)
{
    /* a td-agent pos_file with its exact bytes survives a load + rewrite unchanged */
    const char *td = "/var/log/nginx/access.log\t00000000000876fa\t0000000000001eec\n"
                     "/var/log/nginx/error.log\t0000000000000000\t0000000000001eed\n";
    char *p = path_in("td.pos");
    char err[256];
    struct tail_pos *pf;
    char *text;

    put(p, td);
    pf = tail_pos_open(p, false, err, sizeof(err));
    ck_assert_ptr_nonnull(pf);
    text = slurp(p);
    ck_assert_str_eq(text, td);
    ls_free(text);
    tail_pos_close(pf);
    ls_free(p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tail_pos");
    TCase *tc = tcase_create("pos_file");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, parse_lines);
    tcase_add_test(tc, open_compacts);
    tcase_add_test(tc, update_in_place_and_append);
    tcase_add_test(tc, failed_append_is_retried_by_the_next_update);
    tcase_add_test(tc, unwatched_and_compaction);
    tcase_add_test(tc, follow_inodes_keys);
    tcase_add_test(tc, unstorable_paths_stay_in_memory);
    tcase_add_test(tc, td_agent_file_roundtrip);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
