/*
 * test_log.c - logship's own log: fluentd's line format on a terminal or file, and the syslog
 * priority prefix ("<3>", sd-daemon(3)) when stderr is systemd's journal stream, which systemd
 * announces with JOURNAL_STREAM=<dev>:<ino> of that stream.
 */
#include <check.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static int saved_stderr = -1;
static int peer = -1;          /* the "journal" end of the socket that is our stderr */
static char hooked[4096];

static void hook(int level, const char *line)
{
    snprintf(hooked, sizeof(hooked), "%s", line);
}

/* stderr becomes one end of a stream socket, as systemd connects it to journald */
static void stderr_to_socket(bool announce)
{
    int sv[2];
    struct stat st;
    char env[64];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    saved_stderr = dup(2);
    ck_assert_int_ge(saved_stderr, 0);
    ck_assert_int_eq(dup2(sv[0], 2), 2);
    close(sv[0]);
    peer = sv[1];
    ck_assert_int_eq(fcntl(peer, F_SETFL, O_NONBLOCK), 0);
    ck_assert_int_eq(fstat(2, &st), 0);
    if (announce) {
        snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino);
    } else {
        /* another stream's: stderr was redirected after systemd started the process */
        snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino + 1);
    }
    ck_assert_int_eq(setenv("JOURNAL_STREAM", env, 1), 0);
    ls_log_detect_journal();
}

static void restore_stderr(void)
{
    if (saved_stderr >= 0) {
        dup2(saved_stderr, 2);
        close(saved_stderr);
        saved_stderr = -1;
    }
    if (peer >= 0) {
        close(peer);
        peer = -1;
    }
    unsetenv("JOURNAL_STREAM");
    ls_log_detect_journal();
    ls_log_set_hook(NULL);
}

static const char *received(void)
{
    static char buf[8192];
    ssize_t n = read(peer, buf, sizeof(buf) - 1);

    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

START_TEST(journal_lines_carry_priority)
{
    ls_log_level = LS_LOG_TRACE;
    ls_log_set_hook(hook);
    stderr_to_socket(true);
    ck_assert(ls_log_is_journal(2));

    ls_log_write(LS_LOG_FATAL, NULL, "f %d", 1);
    ls_log_write(LS_LOG_ERROR, "[in_tail.0]", "open() '%s' failed", "/x");
    ls_warn("w");
    ls_info("i");
    ls_debug("d");
    ls_trace("t");
    ck_assert_str_eq(received(), "<2>[fatal]: f 1\n"
                                 "<3>[error]: [in_tail.0] open() '/x' failed\n"
                                 "<4>[warn]: w\n"
                                 "<6>[info]: i\n"
                                 "<7>[debug]: d\n"
                                 "<7>[trace]: t\n");
    /* the hook (monitoring, tests) still sees the fluentd-format line with its timestamp */
    ck_assert_msg(hooked[0] == '2' && strstr(hooked, " [trace]: t\n") != NULL, "%s", hooked);
    ck_assert_str_eq(ls_log_stderr_prefix(LS_LOG_ERROR), "<3>");
    ck_assert_str_eq(ls_log_stderr_prefix(LS_LOG_WARN), "<4>");
    restore_stderr();
}
END_TEST

START_TEST(not_journal_keeps_timestamps)
{
    const char *r;

    ls_log_level = LS_LOG_INFO;
    /* JOURNAL_STREAM names another stream: stderr was redirected, no prefixes */
    stderr_to_socket(false);
    ck_assert(!ls_log_is_journal(2));
    ls_err("e");
    r = received();
    ck_assert_msg(r[0] == '2' && strstr(r, " [error]: e\n") != NULL && strchr(r, '<') == NULL, "%s", r);
    ck_assert_str_eq(ls_log_stderr_prefix(LS_LOG_ERROR), "");
    restore_stderr();

    /* no variable, or a malformed one */
    stderr_to_socket(true);
    unsetenv("JOURNAL_STREAM");
    ck_assert(!ls_log_is_journal(2));
    setenv("JOURNAL_STREAM", "8:x", 1);
    ck_assert(!ls_log_is_journal(2));
    setenv("JOURNAL_STREAM", "", 1);
    ck_assert(!ls_log_is_journal(2));
    restore_stderr();
}
END_TEST

START_TEST(log_file_has_no_prefix_under_journal)
{
    char path[] = "/tmp/ls-test-log-XXXXXX";
    int fd = mkstemp(path);
    char buf[512];
    ssize_t n;

    ck_assert_int_ge(fd, 0);
    ls_log_level = LS_LOG_INFO;
    stderr_to_socket(true);
    /* -o FILE under systemd: the file gets fluentd's format, the journal nothing */
    ck_assert_int_eq(ls_log_open(path), LS_OK);
    ls_warn("to the file");
    n = read(fd, buf, sizeof(buf) - 1);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_msg(buf[0] == '2' && strstr(buf, " [warn]: to the file\n") != NULL, "%s", buf);
    ck_assert_str_eq(received(), "");
    /* back to stderr: prefixed again */
    ck_assert_int_eq(ls_log_open(NULL), LS_OK);
    ls_warn("back");
    ck_assert_str_eq(received(), "<4>[warn]: back\n");
    restore_stderr();
    close(fd);
    unlink(path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("journal");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, journal_lines_carry_priority);
    tcase_add_test(tc, not_journal_keeps_timestamps);
    tcase_add_test(tc, log_file_has_no_prefix_under_journal);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
