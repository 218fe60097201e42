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

struct ls_instance;
struct ls_io;
struct ls_timer;

/*
 * The listening socket for MHD_OPTION_LISTEN_SOCKET, made here so a bind failure is logged with
 * its errno, and with SO_REUSEADDR so a SIGHUP reload binds again at once. backlog 0: the
 * system's maximum. where gets "host:port" as bound (port 0: the one chosen). LS_OK / LS_ERROR.
 */
int mhd_api_listen(struct ls_instance *ins, const char *addr, long long port, int backlog,
                   int *fdp, char *where, size_t wlen);

/*
 * A daemon started with MHD_USE_EPOLL and no thread, run on the engine's loop: its epoll
 * descriptor is one read watcher and MHD_get_timeout drives a timer, so every request is
 * handled on the loop thread.
 */
struct mhd_api_loop {
    struct MHD_Daemon *mhd;
    struct ls_io *io;
    struct ls_timer *timer;
    bool in_run;
};
/* Take over mhd (stopped by mhd_api_loop_stop). LS_ERROR (logged) when it has no epoll fd. */
int mhd_api_loop_start(struct mhd_api_loop *l, struct ls_instance *ins, struct MHD_Daemon *mhd);
/* MHD's work now (not re-entered from its own callbacks), then the timer for its next one. */
void mhd_api_loop_run(struct mhd_api_loop *l);
/* Free the watchers and stop the daemon (which closes the listening socket). */
void mhd_api_loop_stop(struct mhd_api_loop *l);

/*
 * Connections bounded by closing the oldest idle one for a new one, not by refusing new ones:
 * with a plain limit (MHD's CONNECTION_LIMIT) idle clients fill every slot and the listen
 * backlog, and new clients wait until they time out. Give mhd_api_conns_notify as
 * MHD_OPTION_NOTIFY_CONNECTION with the struct as its argument (and a CONNECTION_LIMIT above
 * max as the safety net for when none is idle).
 */
struct mhd_api_conn {
    int fd;                            /* -1 once closed for a newer one */
    bool busy;                         /* a request is under way: never closed for a newer one */
    struct mhd_api_conn *prev, *next;  /* prev: newer, next: older */
};
struct mhd_api_conns {
    unsigned long max;
    unsigned long n;
    struct mhd_api_conn *newest, *oldest;
};
void mhd_api_conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code);
/* conn's entry (to mark it busy while a request is under way), or NULL. */
struct mhd_api_conn *mhd_api_conn_of(struct MHD_Connection *conn);

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
