/*
 * conn.c - pipes: two connected ends exchanging whole tk_args messages.
 *
 * Both kinds of pipe are an AF_UNIX SOCK_SEQPACKET socketpair: sends use
 * MSG_NOSIGNAL, so a vanished peer is an EPIPE (TK_ECLOSED) and never a
 * SIGPIPE, and a one-way pipe simply shuts down the unused directions.
 *
 * Why SEQPACKET rather than a byte stream: a record arrives whole in one
 * recv, so a small message costs one system call on each side *and*
 * nothing is ever read ahead into a private buffer. That keeps
 * tk_conn_fileno() honest: the descriptor is readable exactly when a
 * message is waiting.
 *
 * Waiting: a receive that may block calls a blocking recv straight away,
 * on a socket whose SO_RCVTIMEO is CONN_TICK. A message that arrives within
 * the tick costs one system call and a direct wake-up (polling first, the
 * socket plus the stop descriptor, made a ping-pong round trip a third
 * slower). A recv the tick ends, or a signal interrupts, looks at the
 * thread's stop request and the deadline, then waits in poll as any other
 * cancellation point: a stop takes effect within the tick, and an idle
 * receiver does not wake periodically.
 *
 * Spinning first: a receive that finds no message watches, for a few
 * microseconds (spin_int.h), a count of the messages sent its way that
 * the sending end bumps after each message, in a page both processes
 * share. A receiver that catches the next message this way takes it with
 * one recv and never sleeps, so its sender's sendmsg has nobody to wake:
 * on a VM a sleep and its wake-up cost more than the message (a pipe
 * ping-pong took 5-100 us a round trip without it). The count is only a
 * hint, the socket stays the truth: a message the count did not announce
 * (a sender that died between its send and the bump, two receivers on one
 * end) costs a spin that times out, never a lost or invented message, and
 * fileno, end of file and EPIPE work as before.
 *
 * Framing: a message is its tk_args encoding preceded by a 4-byte
 * little-endian length. It travels as records of at most CONN_RECORD bytes:
 * the first carries the length and the start of the encoding, the rest
 * carry exactly min(CONN_RECORD, remaining) bytes each, so the receiver
 * always knows the size of the next record and can check it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "args_int.h"
#include "internal.h"
#include "spin_int.h"
#include "taskkit/queue.h"

#define CONN_RECORD ((size_t)32768)
/* How long a receive blocks in recv before it turns to poll (see above). */
#define CONN_TICK_US 5000
/* Larger messages are refused: a corrupt or hostile length must not make
 * the receiver allocate without bound. */
#define CONN_MAX_MESSAGE ((size_t)1 << 30)

/* The page the two ends share (MAP_SHARED, so a fork shares it too): for
 * each end, how many messages were sent to it. Each count has its own
 * cache line, as its writer and reader differ. */
struct conn_page {
    struct {
        _Alignas(64) atomic_uint n;
    } sent_to[2];
};

/* This process's hold on the page: both ends of a pair point at it, the
 * last one closed unmaps it. */
struct conn_pair {
    atomic_int refs;
    struct conn_page *page;
};

struct tk_conn {
    int fd;
    int side; /* 0 for the first end of the pair, 1 for the second */
    bool readable, writable;
    struct conn_pair *pair;
    unsigned taken;  /* sent_to[side] when this end last found it all taken */
    atomic_int spin; /* receive spin budget (spin_int.h) */
    pthread_mutex_t send_lock; /* a message's records must not interleave */
    pthread_mutex_t recv_lock; /* ... nor be split between two receivers */
    unsigned char *rbuf;       /* CONN_RECORD bytes, made on the first recv */
};

/* Messages up to this size are encoded on the stack: no allocation per
 * send for the small messages pipes mostly carry. */
#define CONN_STACK_MESSAGE 4096

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static tk_conn *conn_new(int fd, int side, bool readable, bool writable,
                         struct conn_pair *pair)
{
    tk_conn *c = tk__calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = fd;
    c->side = side;
    c->pair = pair;
    c->readable = readable;
    c->writable = writable;
    pthread_mutex_init(&c->send_lock, NULL);
    pthread_mutex_init(&c->recv_lock, NULL);
    return c;
}

TK_API int tk_pipe_new(tk_conn **a, tk_conn **b, bool duplex)
{
    if (a)
        *a = NULL;
    if (b)
        *b = NULL;
    if (!a || !b)
        return tk__error(TK_EINVAL, "tk_pipe_new: NULL output pointer");
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return tk__os_error(errno, "cannot create a pipe (socketpair)");
    if (!duplex) {
        /* Python's Pipe(False): the first end receives, the second sends. */
        shutdown(sv[0], SHUT_WR);
        shutdown(sv[1], SHUT_RD);
    }
    struct timeval tick = {.tv_sec = 0, .tv_usec = CONN_TICK_US};
    for (int i = 0; i < (duplex ? 2 : 1); i++) {
        if (setsockopt(sv[i], SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick) < 0) {
            int err = errno;
            close(sv[0]);
            close(sv[1]);
            return tk__os_error(err, "cannot create a pipe (SO_RCVTIMEO)");
        }
    }
    struct conn_pair *pair = tk__calloc(1, sizeof *pair);
    void *page = pair ? mmap(NULL, sizeof(struct conn_page), PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0)
                      : MAP_FAILED;
    tk_conn *ca = NULL, *cb = NULL;
    int r = pair ? 0 : TK_ENOMEM;
    if (pair && page == MAP_FAILED)
        r = tk__os_error(errno, "cannot create a pipe (mmap)");
    if (r == 0) {
        pair->page = page;
        atomic_init(&pair->refs, 2);
        ca = conn_new(sv[0], 0, true, duplex, pair);
        cb = ca ? conn_new(sv[1], 1, duplex, true, pair) : NULL;
        r = cb ? 0 : TK_ENOMEM;
    }
    if (r < 0) {
        if (page != MAP_FAILED)
            munmap(page, sizeof(struct conn_page));
        tk__free(pair);
        tk__free(ca);
        close(sv[0]);
        close(sv[1]);
        return r;
    }
    *a = ca;
    *b = cb;
    return 0;
}

/* ------------------------------------------------------------------ send */

/* Sends one record. Before the message's first byte (`cancellable`) a stop
 * may interrupt the wait for room; after it the message must go out whole,
 * so the wait is not cancellable. */
static int send_record(tk_conn *c, struct iovec *iov, int niov, bool cancellable)
{
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
    tk__deadline forever = {.kind = TK__DL_FOREVER};
    for (;;) {
        if (sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0)
            return 0;
        int err = errno;
        if (err == EPIPE || err == ECONNRESET)
            return tk__error(TK_ECLOSED, "broken pipe: the other end of the connection is closed");
        if (err == EINTR)
            continue;
        if (err != EAGAIN && err != EWOULDBLOCK && err != ENOBUFS)
            return tk__os_error(err, "cannot send on the connection");
        struct pollfd pfd[2] = {{.fd = c->fd, .events = POLLOUT}};
        int r = tk__wait_fds(pfd, 1, cancellable ? TK__WAIT_CANCEL : 0, &forever);
        if (r == TK_ECANCELED)
            return tk__error(r, "send interrupted: a stop was requested");
        if (r < 0)
            return r;
    }
}

static int send_frame(tk_conn *c, const unsigned char *enc, size_t len)
{
    unsigned char hdr[4];
    put_le32(hdr, (uint32_t)len);
    size_t first = len < CONN_RECORD - 4 ? len : CONN_RECORD - 4;
    struct iovec iov[2] = {{hdr, 4}, {(void *)enc, first}};
    int r = send_record(c, iov, 2, true);
    for (size_t off = first; r == 0 && off < len;) {
        size_t n = len - off < CONN_RECORD ? len - off : CONN_RECORD;
        struct iovec one = {(void *)(enc + off), n};
        r = send_record(c, &one, 1, false);
        off += n;
    }
    return r;
}

TK_API int tk_conn_send(tk_conn *c, const tk_args *msg)
{
    if (!c)
        return tk__error(TK_EINVAL, "tk_conn_send: NULL connection");
    if (!c->writable)
        return tk__error(TK_EPERM, "connection is read-only");
    size_t len = 0;
    int r = tk__args_encoded_len(msg, NULL, &len);
    if (r < 0)
        return r;
    if (len > CONN_MAX_MESSAGE)
        return tk__error(TK_EOVERFLOW, "message too long for a connection: %zu bytes (limit %zu)",
                         len, CONN_MAX_MESSAGE);
    unsigned char small[CONN_STACK_MESSAGE];
    unsigned char *enc = len <= sizeof small ? small : tk__malloc(len);
    if (!enc)
        return TK_ENOMEM;
    tk__args_encode_to(msg, NULL, enc);
    pthread_mutex_lock(&c->send_lock);
    r = send_frame(c, enc, len);
    pthread_mutex_unlock(&c->send_lock);
    if (r == 0) /* after the send: a receiver that sees the bump finds it */
        atomic_fetch_add_explicit(&c->pair->page->sent_to[1 - c->side].n, 1,
                                  memory_order_release);
    if (enc != small)
        tk__free(enc);
    return r;
}

/* ------------------------------------------------------------------ recv */

static int closed_error(void)
{
    return tk__error(TK_ECLOSED, "end of file: the other end of the connection is closed");
}

/* Waits until the conn is readable (a record or end of file). */
static int wait_readable(tk_conn *c, const tk__deadline *d, const char *what)
{
    struct pollfd pfd[2] = {{.fd = c->fd, .events = POLLIN}};
    int r = tk__wait_fds(pfd, 1, TK__WAIT_CANCEL, d);
    if (r == TK_ETIMEDOUT)
        return tk__error(r, "%s timed out", what);
    if (r == TK_ECANCELED)
        return tk__error(r, "%s interrupted: a stop was requested", what);
    return r < 0 ? r : 1;
}

enum recv_mode {
    RECV_NOWAIT, /* TK_EAGAIN at once when no record is waiting */
    RECV_TICK,   /* TK_EAGAIN after CONN_TICK_US without one, or on a signal */
    RECV_BLOCK,  /* until a record or end of file */
};

/* Reads one record of at most `cap` bytes. Returns its length, 0 at end of
 * file, or a negative error. */
static ssize_t recv_record(tk_conn *c, void *buf, size_t cap, enum recv_mode mode)
{
    for (;;) {
        ssize_t n = recv(c->fd, buf, cap, MSG_TRUNC | (mode == RECV_NOWAIT ? MSG_DONTWAIT : 0));
        if (n >= 0) {
            if ((size_t)n > cap)
                return tk__error(TK_EDECODE, "malformed message on the connection: "
                                             "record of %zd bytes exceeds %zu", n, cap);
            return n;
        }
        int err = errno;
        bool again = err == EAGAIN || err == EWOULDBLOCK;
        if (mode == RECV_BLOCK && (again || err == EINTR))
            continue;
        if (again || err == EINTR)
            return TK_EAGAIN; /* no record yet: the caller waits */
        if (err == ECONNRESET)
            return 0;
        return tk__os_error(err, "cannot receive on the connection");
    }
}

/* Collects the continuation records of a message whose first record held
 * `have` of its `total` bytes. They were sent right after the first one, so
 * blocking here is bounded by the sender's progress, and a dead sender ends
 * it with end of file. A NULL `dst` reads them into c->rbuf and drops them:
 * a message that cannot be kept must still leave the socket whole, or its
 * records would be taken for the next message's header. */
static int recv_rest(tk_conn *c, unsigned char *dst, size_t have, size_t total)
{
    while (have < total) {
        size_t want = total - have < CONN_RECORD ? total - have : CONN_RECORD;
        ssize_t n = recv_record(c, dst ? dst + have : c->rbuf, want, RECV_BLOCK);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return closed_error();
        if ((size_t)n != want)
            return tk__error(TK_EDECODE, "malformed message on the connection: "
                                         "record of %zd bytes, expected %zu", n, want);
        have += want;
    }
    return 0;
}

/* How the first recv of a receive may wait: blocking for a tick only when
 * no stop is pending and the deadline is at least a tick away (a tick must
 * not make a shorter timeout late). */
static enum recv_mode first_mode(const tk__deadline *d)
{
    if (d->kind == TK__DL_POLL || tk__stop_pending())
        return RECV_NOWAIT;
    if (d->kind == TK__DL_AT && tk__deadline_ms(d) <= CONN_TICK_US / 1000)
        return RECV_NOWAIT; /* ms round up: at most a tick left */
    return RECV_TICK;
}

struct sent_watch {
    const atomic_uint *sent;
    unsigned seen;
};

static bool sent_moved(void *arg)
{
    const struct sent_watch *w = arg;
    return atomic_load_explicit(w->sent, memory_order_acquire) != w->seen;
}

/* Receives one whole message's encoding into c->rbuf (small) or *heap. */
static int recv_frame(tk_conn *c, const tk__deadline *d, const unsigned char **enc,
                      size_t *len, unsigned char **heap)
{
    enum recv_mode mode = first_mode(d);
    struct sent_watch w = {&c->pair->page->sent_to[c->side].n, 0};
    w.seen = atomic_load_explicit(w.sent, memory_order_acquire);
    long long ended = -1;
    /* Every message counted so far is taken: watch for the next one. */
    if (mode == RECV_TICK && w.seen == c->taken && tk__spin(&c->spin, sent_moved, &w, &ended))
        ended = -1;
    ssize_t n = recv_record(c, c->rbuf, CONN_RECORD, mode);
    if (n == TK_EAGAIN || n == 0) /* resynchronise with what is truly there */
        c->taken = atomic_load_explicit(w.sent, memory_order_acquire);
    else if (n > 0)
        c->taken++;
    if (ended >= 0) /* a tick that ran out counts as a long wait */
        tk__spin_learn(&c->spin, ended);
    while (n == TK_EAGAIN) {
        int r = wait_readable(c, d, "recv");
        if (r < 0)
            return r;
        n = recv_record(c, c->rbuf, CONN_RECORD, RECV_NOWAIT);
    }
    if (n < 0)
        return (int)n;
    if (n == 0)
        return closed_error();
    size_t total = n >= 4 ? get_le32(c->rbuf) : 0;
    size_t first = total < CONN_RECORD - 4 ? total : CONN_RECORD - 4;
    if (n < 4 || (size_t)n != 4 + first || total > CONN_MAX_MESSAGE)
        return tk__error(TK_EDECODE, "malformed message on the connection: bad frame header");
    if (total == first) {
        *enc = c->rbuf + 4;
        *len = total;
        return 0;
    }
    *heap = tk__malloc(total);
    if (!*heap) {
        /* Drop the rest of the message so the next recv starts at a header
         * (CPython loses a message it cannot receive the same way). Only a
         * broken connection outranks the out of memory. */
        int r = recv_rest(c, NULL, first, total);
        return r < 0 ? r : tk__error(TK_ENOMEM, "out of memory");
    }
    memcpy(*heap, c->rbuf + 4, first);
    *enc = *heap;
    *len = total;
    return recv_rest(c, *heap, first, total);
}

TK_API int tk_conn_recv(tk_conn *c, tk_args **msg, double timeout)
{
    if (msg)
        *msg = NULL;
    if (!c || !msg)
        return tk__error(TK_EINVAL, "tk_conn_recv: NULL argument");
    if (!c->readable)
        return tk__error(TK_EPERM, "connection is write-only");
    tk__deadline d;
    int r = tk__deadline_init(&d, timeout, "tk_conn_recv");
    if (r < 0)
        return r;
    pthread_mutex_lock(&c->recv_lock);
    if (!c->rbuf && !(c->rbuf = tk__malloc(CONN_RECORD))) {
        pthread_mutex_unlock(&c->recv_lock);
        return TK_ENOMEM;
    }
    const unsigned char *enc = NULL;
    unsigned char *heap = NULL;
    size_t len = 0;
    r = recv_frame(c, &d, &enc, &len, &heap);
    if (r == 0)
        r = tk_args_decode(enc, len, msg, NULL); /* senders never add kwargs */
    pthread_mutex_unlock(&c->recv_lock);
    tk__free(heap);
    return r;
}

TK_API int tk_conn_poll(tk_conn *c, double timeout)
{
    if (!c)
        return tk__error(TK_EINVAL, "tk_conn_poll: NULL connection");
    if (!c->readable)
        return tk__error(TK_EPERM, "connection is write-only");
    tk__deadline d;
    int r = tk__deadline_init(&d, timeout, "tk_conn_poll");
    if (r < 0)
        return r;
    struct pollfd pfd[2] = {{.fd = c->fd, .events = POLLIN}};
    r = tk__wait_fds(pfd, 1, TK__WAIT_CANCEL, &d);
    if (r == TK_ETIMEDOUT)
        return 0;
    if (r == TK_ECANCELED)
        return tk__error(r, "poll interrupted: a stop was requested");
    return r < 0 ? r : 1;
}

TK_API int tk_conn_fileno(const tk_conn *c)
{
    return c ? c->fd : -1;
}

TK_API void tk_conn_close(tk_conn *c)
{
    if (!c)
        return;
    close(c->fd);
    if (atomic_fetch_sub(&c->pair->refs, 1) == 1) {
        munmap(c->pair->page, sizeof(struct conn_page));
        tk__free(c->pair);
    }
    pthread_mutex_destroy(&c->send_lock);
    pthread_mutex_destroy(&c->recv_lock);
    tk__free(c->rbuf);
    tk__free(c);
}
