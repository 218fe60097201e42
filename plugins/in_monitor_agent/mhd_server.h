/*
 * mhd_server.h - an HTTP server on the engine's loop (plugin-private; monitor_agent and
 * prometheus share it).
 *
 * libmicrohttpd runs in "external" mode with its epoll set (MHD_USE_EPOLL without an internal
 * thread): its epoll descriptor is one read watcher on the libev loop and MHD_get_timeout
 * drives a timer, so every request is answered by MHD_run on the loop thread and a handler
 * reads the engine's counters without locks or races. The listener, loop driver and connection
 * bound are agent/mhd_api's (shared with in_http). mhd_api_load() must have succeeded (in the
 * plugin's init).
 */
#ifndef LS_MHD_SERVER_H
#define LS_MHD_SERVER_H

#include "plugin.h"
#include "mhd_api.h"

struct mhd_server;

/*
 * Listen on bind:port (port 0: any free one) and answer every request with handler(cls, ...).
 * where gets the address as bound ("127.0.0.1:24220", "[::1]:80"). Warns when it is not a
 * loopback address. NULL on failure, logged through ins.
 */
struct mhd_server *mhd_server_start(struct ls_instance *ins, const char *bind, int64_t port,
                                    MHD_AccessHandlerCallback handler, void *cls, char *where,
                                    size_t wlen);
void mhd_server_stop(struct mhd_server *s);     /* NULL is fine */

/* Queue a copy of body as the answer (Cache-Control: no-store; Content-Encoding: encoding
 * unless NULL). */
enum MHD_Result mhd_server_reply(struct MHD_Connection *conn, unsigned status, const char *type,
                                 const char *encoding, const void *body, size_t len);

#endif
