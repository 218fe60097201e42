/*
 * mhd_api.h - the libmicrohttpd API through dlopen (monitor_agent, in_http).
 *
 * logship is not linked with libmicrohttpd, so processes without an HTTP
 * input do not map it and the GnuTLS stack it needs. Include this
 * instead of <microhttpd.h>: the call sites keep their names, and the macros
 * below send each call through the table that mhd_api_load() fills in the
 * plugin's init. A function missing from MHD_API_FUNCS fails at link time.
 */
#ifndef LS_MHD_API_H
#define LS_MHD_API_H

#include <microhttpd.h>

#define MHD_API_FUNCS(X) \
    X(MHD_start_daemon) X(MHD_stop_daemon) X(MHD_get_daemon_info) X(MHD_run) \
    X(MHD_get_timeout) X(MHD_lookup_connection_value) X(MHD_create_response_from_buffer) \
    X(MHD_add_response_header) X(MHD_queue_response) X(MHD_destroy_response) \
    X(MHD_get_connection_info) X(MHD_get_connection_values) X(MHD_lookup_connection_value_n) \
    X(MHD_suspend_connection) X(MHD_resume_connection)

struct mhd_api {
#define MHD_API_MEMBER(f) __typeof__(f) *f##_p;
    MHD_API_FUNCS(MHD_API_MEMBER)
#undef MHD_API_MEMBER
};

extern struct mhd_api mhd_api;

/* LS_OK, or LS_ERROR with "cannot load libmicrohttpd.so.12 (...)" in err. Any thread. */
int mhd_api_load(char *err, size_t errlen);

#define MHD_start_daemon(...)                   mhd_api.MHD_start_daemon_p(__VA_ARGS__)
#define MHD_stop_daemon(...)                    mhd_api.MHD_stop_daemon_p(__VA_ARGS__)
#define MHD_get_daemon_info(...)                mhd_api.MHD_get_daemon_info_p(__VA_ARGS__)
#define MHD_run(...)                            mhd_api.MHD_run_p(__VA_ARGS__)
#define MHD_get_timeout(...)                    mhd_api.MHD_get_timeout_p(__VA_ARGS__)
#define MHD_lookup_connection_value(...)        mhd_api.MHD_lookup_connection_value_p(__VA_ARGS__)
#define MHD_create_response_from_buffer(...)    mhd_api.MHD_create_response_from_buffer_p(__VA_ARGS__)
#define MHD_add_response_header(...)            mhd_api.MHD_add_response_header_p(__VA_ARGS__)
#define MHD_queue_response(...)                 mhd_api.MHD_queue_response_p(__VA_ARGS__)
#define MHD_destroy_response(...)               mhd_api.MHD_destroy_response_p(__VA_ARGS__)
#define MHD_get_connection_info(...)            mhd_api.MHD_get_connection_info_p(__VA_ARGS__)
#define MHD_get_connection_values(...)          mhd_api.MHD_get_connection_values_p(__VA_ARGS__)
#define MHD_lookup_connection_value_n(...)      mhd_api.MHD_lookup_connection_value_n_p(__VA_ARGS__)
#define MHD_suspend_connection(...)             mhd_api.MHD_suspend_connection_p(__VA_ARGS__)
#define MHD_resume_connection(...)              mhd_api.MHD_resume_connection_p(__VA_ARGS__)

#endif
