/*
 * net.h - listening sockets for the network inputs (syslog, tcp, udp; meant for forward and
 * http later), on the engine's loop through ls_io/ls_timer.
 *
 * TCP: a listener accepts up to max_connections peers (more are accepted and closed at once,
 * counted and logged, so the kernel backlog never fills with peers nobody serves); each peer
 * has one buffer of at most one frame (framer.max) plus its header, split into frames by
 * ls_framer (over-long frames are dropped, counted and logged; broken octet counting closes
 * the connection), and is closed after idle_timeout seconds without data. One read per
 * wake-up per connection, so one busy peer cannot starve the others.
 * UDP: up to LS_NET_UDP_BATCH datagrams are read per wake-up and handed over one by one;
 * the callback returns after the batch so the plugin can commit once.
 *
 * Back-pressure: a frame callback that returns LS_AGAIN (a full buffer with overflow_action
 * block) pauses the listener: the frame stays buffered, and there are no more reads or
 * accepts until ls_net_resume, which first hands every connection's buffered frames over.
 *
 * Memory is bounded by max_connections x (framer.max + 32) for TCP, message_length_limit
 * for UDP.
 */
#ifndef LS_NET_H
#define LS_NET_H

#include "plugin.h"

#include <sys/socket.h>

#define LS_NET_UDP_BATCH 64

struct ls_net;
struct ls_net_conn;

/*
 * Framing of a byte stream (pure functions, fuzzed): fluentd's traditional framing (split on a
 * delimiter) or RFC 6587 octet counting ("LEN SP MSG"). Frames longer than max are dropped:
 * with a delimiter everything up to the next delimiter, with octet counting the LEN bytes.
 */
struct ls_framer {
    bool octet;
    const char *delim;
    size_t dlen;
    size_t max;
    bool discarding;        /* delimiter: an over-long frame is being skipped */
    uint64_t skip;          /* octet: bytes of an over-long frame still to skip */
};

struct ls_net_peer {
    char addr[64];        /* numeric address, as fluentd's remote_addr */
    char host[256];       /* resolved name (addr when resolving is off or fails) */
};

struct ls_net_opts {
    const char *bind;
    int port;
    bool udp;
    size_t buf_limit;          /* UDP: datagram size (TCP: from framer.max) */
    int max_connections;       /* TCP */
    double idle_timeout;       /* TCP: seconds; 0 = never */
    bool keepalive;            /* TCP: SO_KEEPALIVE */
    bool resolve_hostname;
    int64_t receive_buffer_size;   /* SO_RCVBUF when > 0 */
    /* TCP: how the stream is cut into frames (a template copied per connection) */
    struct ls_framer framer;
    /*
     * One message: a TCP frame or a UDP datagram (cut to buf_limit when longer). LS_OK:
     * records were emitted (made durable with ls_input_commit after the read's batch, before
     * the next read); LS_DECLINED: none (a message that did not parse); LS_AGAIN: the buffer
     * refused it (TCP: kept, and reading pauses; UDP: counted as dropped and logged).
     */
    int (*on_message)(const char *p, size_t len, const struct ls_net_peer *peer, void *arg);
    void *arg;
};

/* Bind and listen (not yet serving). NULL with "bind:port: why" in err. */
struct ls_net *ls_net_listen(struct ls_instance *ins, const struct ls_net_opts *o, char *err,
                             size_t errlen);
void ls_net_start(struct ls_net *n);
/* Stop serving, close every connection and the socket. NULL ok. */
void ls_net_close(struct ls_net *n);
void ls_net_pause(struct ls_net *n);
void ls_net_resume(struct ls_net *n);
/* Add the peer's address / name to rec under these keys (NULL: not wanted). */
void ls_net_add_peer(struct ls_record *rec, const struct ls_net_peer *peer, const char *addr_key,
                     const char *host_key);
/* Ruby's chomp: len without one trailing \n, \r\n or \r */
size_t ls_net_chomp(const char *p, size_t len);
/* The port actually bound (for port 0). */
int ls_net_port(const struct ls_net *n);

/* Counters the plugin logs and tests read. */
struct ls_net_stats {
    uint64_t accepted, refused, idle_closed, truncated, overlong, udp_dropped, conns;
};
const struct ls_net_stats *ls_net_stats(const struct ls_net *n);

/*
 * Next frame in p[*off, len). LS_OK: *frame and *flen set, *off advanced. LS_AGAIN: need more
 * bytes (*off advanced past anything skipped). LS_DECLINED: an over-long frame was dropped
 * from here on (*dropped gets the bytes seen); call again. LS_ERROR: not octet-counted
 * (a non-digit where a length belongs): the stream cannot be resynchronised.
 */
int ls_framer_next(struct ls_framer *f, const char *p, size_t len, size_t *off, const char **frame,
                   size_t *flen, size_t *dropped);

#endif
