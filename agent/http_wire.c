/*
 * http_wire.c - datagrams with an optional descriptor, for both ends of the
 * agent <-> logship-http socketpair (http_wire.h).
 */
#include "common.h"
#include "http_wire.h"

#include <errno.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

int ls_wire_send(int fd, const void *msg, size_t len, int pass_fd, int flags)
{
    struct msghdr mh;
    struct iovec iov = { (void *)msg, len };
    char cbuf[CMSG_SPACE(sizeof(int))];

    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (pass_fd >= 0) {
        struct cmsghdr *cm;
        memset(cbuf, 0, sizeof(cbuf));
        mh.msg_control = cbuf;
        mh.msg_controllen = sizeof(cbuf);
        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
    }
    for (;;) {
        if (sendmsg(fd, &mh, MSG_NOSIGNAL | flags) >= 0) {
            return 1;
        }
        if (errno == EINTR) {
            continue;
        }
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
}

ssize_t ls_wire_recv(int fd, void *buf, size_t cap, int *pass_fd, int flags)
{
    char cbuf[CMSG_SPACE(sizeof(int) * 4)];
    struct msghdr mh;
    struct iovec iov = { buf, cap };
    struct cmsghdr *cm;
    ssize_t n;

    *pass_fd = -1;
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof(cbuf);
    do {
        n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | flags);
    } while (n < 0 && errno == EINTR);
    /* keep the first descriptor; more than one is out of protocol and must not leak */
    for (cm = n >= 0 ? CMSG_FIRSTHDR(&mh) : NULL; cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            size_t k, cnt = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (k = 0; k < cnt; k++) {
                int f;
                memcpy(&f, CMSG_DATA(cm) + k * sizeof(int), sizeof(int));
                if (*pass_fd < 0) {
                    *pass_fd = f;
                } else {
                    close(f);
                }
            }
        }
    }
    if (n >= 0 && (mh.msg_flags & MSG_TRUNC)) {
        if (*pass_fd >= 0) {
            close(*pass_fd);
            *pass_fd = -1;
        }
        errno = EMSGSIZE;
        return -1;
    }
    return n;
}

int ls_wire_memfd(const void *p, size_t len)
{
    int mfd = memfd_create("logship-http-body", MFD_CLOEXEC);

    if (mfd >= 0 && write(mfd, p, len) != (ssize_t)len) {
        int e = errno;
        close(mfd);
        errno = e ? e : ENOSPC;
        return -1;
    }
    return mfd;
}
