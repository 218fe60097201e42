/*
 * http.h - asynchronous HTTP on the engine's loop, performed by a helper process.
 *
 * libcurl, and the TLS, Kerberos, LDAP, SSH, IDN and PSL libraries Debian's
 * libcurl is linked with, cost an idle process about 6 MB of RSS just by being
 * mapped and relocated (tests/bench/RESULTS.md). logship therefore does not
 * link libcurl: requests are passed over a socketpair to `logship-http`, a
 * small program that runs them with libcurl's multi socket API on its own
 * libev loop, keeps connections alive while requests keep coming, and exits
 * when the agent has had nothing to send for a while (LOGSHIP_HTTP_IDLE
 * seconds, 10 by default). The agent starts it again on the next request.
 *
 * Request bodies come from memory or from a file range; a file body is
 * passed as a descriptor (SCM_RIGHTS), so a 256 MB chunk is never copied
 * through the socket or loaded into memory. Response bodies are capped. The
 * callback runs on the loop thread. If the helper dies, every request it held
 * completes with an error (status 0), which callers already retry.
 */
#ifndef LS_HTTP_H
#define LS_HTTP_H

#include "plugin.h"

struct ls_http_req {
    const char *method;           /* "GET", "PUT", "POST", "HEAD", "DELETE" */
    const char *url;
    const struct ls_buf *headers; /* "Name: value" lines, each ended by a NUL (ls_http_hdr_add);
                                     copied at submit */
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
    bool no_proxy;                /* never via a proxy (link-local metadata endpoints) */
    /* TLS client authentication and protocol choice (out_http's tls_* parameters); NULL/0:
     * none, curl's defaults */
    const char *client_cert;      /* PEM file: the certificate, then any intermediates */
    const char *client_key;       /* PEM file */
    const char *key_passwd;
    const char *ciphers;          /* OpenSSL cipher list (TLS 1.2 and lower) */
    int tls_min;                  /* lowest TLS version: 0 curl's default, 1 1.1, 2 1.2, 3 1.3 */
};

struct ls_http_resp {
    long status;                  /* 0 when no response (connection error) */
    int curl_code;                /* CURLcode (LS_HTTP_E_HELPER: the helper failed or died) */
    char error[256];              /* curl's message when curl_code != 0 */
    struct ls_buf body;
    struct ls_buf headers;        /* raw header lines of the final response */
    double total_time;
};

/* curl_code of a request lost with its helper; like a connection error, callers retry */
#define LS_HTTP_E_HELPER 1000

typedef void (*ls_http_cb)(struct ls_http_resp *resp, void *arg);

/* Start a request. LS_OK (cb will be called exactly once) or LS_ERROR. */
int ls_http_submit(struct ls_engine *eng, const struct ls_http_req *req, ls_http_cb cb, void *arg);
/* Value of a response header (case-insensitive), copied into out; NULL if absent. */
const char *ls_http_resp_header(const struct ls_http_resp *resp, const char *name, char *out,
                                size_t outlen);
/* Tear down the engine's helper (pending requests complete with an error). */
void ls_http_shutdown(struct ls_engine *eng);

/*
 * A log intake's refusal (a response that is not 2xx) as a write result: no answer, 429 and
 * 5xx are retried (LS_ERROR), any other answer makes the chunk unrecoverable (LS_DECLINED),
 * where the intakes' plugins log and drop it. msg: "<prefix>: <status> <body>" or the error.
 */
int ls_http_refusal(const struct ls_http_resp *resp, const char *prefix, char *msg,
                    size_t msglen);

/* Append one header line ("Name: value", or "Name:" to suppress one curl would add). */
void ls_http_hdr_add(struct ls_buf *h, const char *line);
/* The same from a name and a value. */
void ls_http_hdr_set(struct ls_buf *h, const char *name, const char *value);
/* Each of a configuration's custom headers (custom_headers, headers). */
void ls_http_hdr_add_kvv(struct ls_buf *h, const struct ls_kvv *headers);

/*
 * One blocking request, run by a helper started for it (credentials lookups
 * on a worker thread). LS_OK when the helper answered (resp->status and
 * curl_code say how the request went); LS_ERROR when no helper could run,
 * with resp->error filled. The caller releases resp->body and resp->headers.
 */
int ls_http_fetch(const struct ls_http_req *req, struct ls_http_resp *resp);

/* Where logship-http is; NULL with err filled when it cannot be found. */
const char *ls_http_helper_path(char *err, size_t errlen);
/* Remember argv[0]: under a wrapper (valgrind), /proc/self/exe is not logship. */
void ls_http_set_argv0(const char *argv0);

#endif
