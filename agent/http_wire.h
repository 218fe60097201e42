/*
 * http_wire.h - the messages between the agent (http.c) and logship-http.
 *
 * One SOCK_SEQPACKET socketpair: every message is one datagram, so there is
 * no framing to get wrong and a descriptor passed with SCM_RIGHTS arrives
 * with the request it belongs to. Both ends are the same build of the same
 * source, so the structs go as they are (native layout); the magic catches a
 * helper from another build. A body too large for a datagram travels as a
 * descriptor: the chunk file itself, or a memfd.
 */
#ifndef LS_HTTP_WIRE_H
#define LS_HTTP_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LS_HTTP_WIRE_MAGIC 0x4c534833u      /* "LSH3" */
#define LS_HTTP_WIRE_MAX (160 * 1024)       /* largest datagram either side sends */
#define LS_HTTP_WIRE_INLINE (32 * 1024)     /* bodies up to this travel inside the datagram */
#define LS_HTTP_WIRE_HDRS (64 * 1024)       /* response header bytes kept */
#define LS_HTTP_HELPER_FD 3                 /* the helper's end of the socketpair */

enum {
    LS_HTTP_W_VERIFY = 1u << 0,
    LS_HTTP_W_PATH_AS_IS = 1u << 1,
    LS_HTTP_W_NO_PROXY = 1u << 2,
    LS_HTTP_W_BODY_INLINE = 1u << 3,     /* body_len bytes follow the strings */
    LS_HTTP_W_BODY_FD = 1u << 4,         /* body_len bytes at body_off of the passed descriptor */
    LS_HTTP_W_PING = 1u << 5,            /* no request: answer at once (is the helper alive?) */
};

/* followed by strings_len bytes: method, url, ca_file, proxy, client_cert, client_key,
 * key_passwd, ciphers, then nheaders header lines, each NUL-terminated (an empty string means
 * none); then the inline body */
struct ls_http_wire_req {
    uint32_t magic;
    uint32_t id;
    uint32_t flags;
    uint32_t nheaders;
    uint32_t strings_len;
    uint32_t tls_min;             /* ls_http_req's tls_min */
    uint64_t body_off;
    uint64_t body_len;
    uint64_t max_response;
    double timeout;
    double connect_timeout;
    double low_speed_time;
};

/* followed by headers_len header bytes, then the body inline unless LS_HTTP_W_BODY_FD */
struct ls_http_wire_resp {
    uint32_t magic;
    uint32_t id;
    uint32_t flags;
    int32_t curl_code;
    int64_t status;
    double total_time;
    uint32_t headers_len;
    uint32_t body_len;
    char error[256];
};

/* Send one datagram, with pass_fd (>= 0) as SCM_RIGHTS: 1 sent, 0 would block, -1 error (errno). */
int ls_wire_send(int fd, const void *msg, size_t len, int pass_fd, int flags);
/*
 * Receive one datagram into buf; *pass_fd is the descriptor that came with it
 * or -1. A datagram larger than cap: -1 with errno EMSGSIZE, its first cap
 * bytes in buf (enough to answer its id).
 */
ssize_t ls_wire_recv(int fd, void *buf, size_t cap, int *pass_fd, int flags);
/* A memfd holding p[0..len), for a body too large for a datagram; -1 on error (errno). */
int ls_wire_memfd(const void *p, size_t len);

#endif
