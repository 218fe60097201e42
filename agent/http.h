/*
 * http.h - asynchronous HTTP on the engine's loop (libcurl multi socket API).
 *
 * One curl multi handle per engine, driven by libev: curl tells us which
 * sockets to watch (CURLMOPT_SOCKETFUNCTION -> ev_io) and when to time out
 * (CURLMOPT_TIMERFUNCTION -> ev_timer). Connections are kept alive and
 * reused across requests to the same host. Request bodies come from memory
 * or from a file range (so a 256 MB chunk is never loaded into memory);
 * response bodies are capped. The callback runs on the loop thread.
 */
#ifndef LS_HTTP_H
#define LS_HTTP_H

#include "plugin.h"

struct curl_slist;

struct ls_http_req {
    const char *method;           /* "GET", "PUT", "POST", "HEAD", "DELETE" */
    const char *url;
    struct curl_slist *headers;   /* borrowed until the callback */
    const void *body;             /* memory body, or NULL */
    size_t body_len;
    int body_fd;                  /* file body when body == NULL and body_fd >= 0 */
    uint64_t body_off;
    uint64_t body_file_len;
    double timeout;               /* whole request, seconds (0: none) */
    double connect_timeout;
    double low_speed_time;        /* abort a stalled transfer after this many seconds (0: off) */
    bool verify_peer;
    const char *ca_file;          /* NULL: system bundle */
    const char *proxy;            /* NULL: none (curl also reads the *_proxy env vars) */
    size_t max_response;          /* cap on the response body (0: 1 MiB) */
    bool path_as_is;              /* send the URL path as given (no "/../" squashing): signed S3 keys */
};

struct ls_http_resp {
    long status;                  /* 0 when no response (connection error) */
    int curl_code;                /* CURLcode */
    char error[256];              /* curl's message when curl_code != 0 */
    struct ls_buf body;
    struct ls_buf headers;        /* raw header lines of the final response */
    double total_time;
};

typedef void (*ls_http_cb)(struct ls_http_resp *resp, void *arg);

/* Start a request. LS_OK (cb will be called exactly once) or LS_ERROR. */
int ls_http_submit(struct ls_engine *eng, const struct ls_http_req *req, ls_http_cb cb, void *arg);
/* Value of a response header (case-insensitive), copied into out; NULL if absent. */
const char *ls_http_resp_header(const struct ls_http_resp *resp, const char *name, char *out,
                                size_t outlen);
/* Tear down the engine's multi handle (pending requests complete with an error). */
void ls_http_shutdown(struct ls_engine *eng);

#endif
