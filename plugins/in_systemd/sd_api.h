/*
 * sd_api.h - the sd-journal API of libsystemd through dlopen (in_systemd).
 *
 * logship is not linked with libsystemd, so only agents that read the journal map it (as
 * libmariadb and libmicrohttpd, agent/dynlib.h). Include this instead of
 * <systemd/sd-journal.h>: the call sites keep their names and go through the table that
 * ls_sd_load() fills in the plugin's init.
 */
#ifndef LS_SD_API_H
#define LS_SD_API_H

#include <systemd/sd-journal.h>

#define LS_SD_FUNCS(X) \
    X(sd_journal_open_directory) X(sd_journal_open_files) X(sd_journal_close) \
    X(sd_journal_add_match) X(sd_journal_add_disjunction) X(sd_journal_seek_head) \
    X(sd_journal_seek_tail) X(sd_journal_seek_cursor) X(sd_journal_next) \
    X(sd_journal_previous_skip) X(sd_journal_get_cursor) X(sd_journal_test_cursor) \
    X(sd_journal_get_realtime_usec) X(sd_journal_restart_data) X(sd_journal_enumerate_data) \
    X(sd_journal_set_data_threshold) X(sd_journal_get_fd) X(sd_journal_process)

struct ls_sd_api {
#define LS_SD_MEMBER(f) __typeof__(f) *f##_p;
    LS_SD_FUNCS(LS_SD_MEMBER)
#undef LS_SD_MEMBER
};

extern struct ls_sd_api ls_sd;

/* LS_OK, or LS_ERROR with "cannot load libsystemd.so.0 (...)" in err. Any thread. */
int ls_sd_load(char *err, size_t errlen);

#define sd_journal_open_directory(...)     ls_sd.sd_journal_open_directory_p(__VA_ARGS__)
#define sd_journal_open_files(...)         ls_sd.sd_journal_open_files_p(__VA_ARGS__)
#define sd_journal_close(...)              ls_sd.sd_journal_close_p(__VA_ARGS__)
#define sd_journal_add_match(...)          ls_sd.sd_journal_add_match_p(__VA_ARGS__)
#define sd_journal_add_disjunction(...)    ls_sd.sd_journal_add_disjunction_p(__VA_ARGS__)
#define sd_journal_seek_head(...)          ls_sd.sd_journal_seek_head_p(__VA_ARGS__)
#define sd_journal_seek_tail(...)          ls_sd.sd_journal_seek_tail_p(__VA_ARGS__)
#define sd_journal_seek_cursor(...)        ls_sd.sd_journal_seek_cursor_p(__VA_ARGS__)
#define sd_journal_next(...)               ls_sd.sd_journal_next_p(__VA_ARGS__)
#define sd_journal_previous_skip(...)      ls_sd.sd_journal_previous_skip_p(__VA_ARGS__)
#define sd_journal_get_cursor(...)         ls_sd.sd_journal_get_cursor_p(__VA_ARGS__)
#define sd_journal_test_cursor(...)        ls_sd.sd_journal_test_cursor_p(__VA_ARGS__)
#define sd_journal_get_realtime_usec(...)  ls_sd.sd_journal_get_realtime_usec_p(__VA_ARGS__)
#define sd_journal_restart_data(...)       ls_sd.sd_journal_restart_data_p(__VA_ARGS__)
#define sd_journal_enumerate_data(...)     ls_sd.sd_journal_enumerate_data_p(__VA_ARGS__)
#define sd_journal_set_data_threshold(...) ls_sd.sd_journal_set_data_threshold_p(__VA_ARGS__)
#define sd_journal_get_fd(...)             ls_sd.sd_journal_get_fd_p(__VA_ARGS__)
#define sd_journal_process(...)            ls_sd.sd_journal_process_p(__VA_ARGS__)

#endif
