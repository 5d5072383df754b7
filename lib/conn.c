/*
 * conn.c - pipes: two connected ends exchanging whole tk_args messages.
 *
 * Messages travel through rings in memory both processes share, one ring
 * per direction; a socketpair only tells each end whether the other is
 * still there. Why not send the messages through the socket (as this file
 * did first): a socket send and a receive are a system call each, and on
 * a VM a system call costs about a microsecond, more than copying a small
 * message in and out of shared memory many times over. A busy pair moves
 * messages through a ring with no system call at all.
 *
 * The socketpair: no data ever crosses it. A pipe end is gone when every
 * process holding its socket has closed it or died, which is exactly when
 * the other end's socket reads end of file; the kernel knows it without
 * the ends' cooperation, so a crashed peer is seen like a closed one.
 *   - A send first checks its peer (recv with MSG_PEEK | MSG_DONTWAIT: end
 *     of file means gone) and fails TK_ECLOSED instead of writing into a
 *     ring nobody will read. No SIGPIPE can arise: nothing is written.
 *     A check stays good for 50 us, unless an event says otherwise (see
 *     send_peer_gone).
 *   - A receiver that finds its ring empty sleeps in poll on the socket
 *     (end of file wakes it) and its ring's eventfd (a sender rings it).
 *
 * A ring (struct conn_dir) is a byte ring between positions that only
 * grow: senders publish `wpos`, receivers publish `rpos`. One sender at a
 * time writes (the send token, a robust process-shared mutex) and one
 * receiver at a time reads (the receive token), so between the two token
 * holders the ring is single-producer single-consumer and lock-free. A
 * message is a 4-byte length and its tk_args encoding. One that fits is
 * published whole in one store, so a receiver sees whole messages or
 * none; a longer one streams through in pieces, its sender and receiver
 * taking turns.
 *
 * Wake-ups: a receiver about to sleep counts itself in `sleepers` and
 * re-checks the ring; a sender publishes and then rings the eventfd if
 * anyone sleeps (both orders sequentially consistent, so one of the two
 * sees the other). A sender that finds no room counts itself in
 * `room_waiters` and sleeps on the futex word `room_seq`, which a
 * receiver bumps after taking. A receive that finds nothing first watches
 * the ring for a few microseconds (spin_int.h): a busy pair then never
 * sleeps, and its senders have nobody to wake. It yields the CPU between
 * short bursts of watching: a forked peer often starts on the same CPU,
 * and a plain spin there holds back the very answer it waits for (fresh
 * ping-pong pairs then stayed at ~31 us a round trip; with the yield a
 * quick bench round reads 1.0x-1.2x of a raw pipe instead of 2x).
 *
 * tk_conn_fileno: a readable end answers an epoll descriptor, made on the
 * first call, that watches the eventfd and the socket. From then on every
 * send to that end rings the eventfd, and a receive that empties the ring
 * resets it, so the descriptor is readable while a message waits or at
 * end of file. As with select(2) on a socket, it can be readable
 * spuriously for a moment (a ring that arrives after its message was
 * taken): an event loop receives with a timeout of 0.
 *
 * A process that dies holding a token in the middle of a message leaves
 * the ring half written or half read: the next holder of that token gets
 * EOWNERDEAD, sees the message was unfinished, and marks the direction
 * broken; every later send or receive on it fails TK_EBROKEN instead of
 * reading garbage.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "args_int.h"
#include "internal.h"
#include "spin_int.h"
#include "taskkit/queue.h"

/* Bytes of ring per direction (a power of two). Pages are only backed as
 * the ring wraps through them. */
#define CONN_RING ((uint64_t)1 << 17)
/* Larger messages are refused: a corrupt or hostile length must not make
 * the receiver allocate without bound. */
#define CONN_MAX_MESSAGE ((size_t)1 << 30)
/* A wait in the middle of a message, or a sender's wait for room,
 * re-checks that the other side is still there this often (seconds). */
#define CONN_TICK 0.02
/* A send checks its peer unless a check this recent found it there. */
#define CONN_CHECK_NS 50000LL
/* Messages up to this size are copied through the stack: no allocation
 * per message for the small messages pipes mostly carry. */
#define CONN_STACK_MESSAGE 4096

struct conn_dir {
    /* Each group on its own cache line, by who writes it: on a VM a line
     * that moves between CPUs for every message costs more than the copy. */
    _Alignas(64) pthread_mutex_t send_token;
    uint32_t send_partial; /* the holder is mid-message */
    _Alignas(64) pthread_mutex_t recv_token;
    uint32_t recv_partial;
    /* Read with every message, written rarely. */
    _Alignas(64) _Atomic uint32_t broken;
    _Atomic uint32_t fileno_mode;  /* ring the eventfd for every message */
    _Atomic uint32_t sleepers;     /* receivers waiting for the eventfd */
    _Atomic uint32_t room_waiters; /* senders waiting on room_seq */
    _Alignas(64) _Atomic uint64_t wpos; /* bytes published by senders */
    _Alignas(64) _Atomic uint64_t rpos; /* bytes taken by receivers */
    _Atomic uint32_t room_seq;          /* futex word, bumped after a take */
    _Alignas(64) unsigned char data[CONN_RING];
};

/* The mapping both ends share (MAP_SHARED, so a fork shares it too):
 * dir[i] carries the messages sent to end i. */
struct conn_page {
    struct conn_dir dir[2];
    _Alignas(64) _Atomic uint32_t closes; /* bumped by tk_conn_close */
};

/* This process's hold on the mapping and the eventfds: both ends of a pair
 * point at it, the last one closed releases it. */
struct conn_pair {
    atomic_int refs;
    struct conn_page *page;
    int efd[2]; /* rung for messages to end i (-1 when nothing goes that way) */
};

struct tk_conn {
    int fd; /* this end's socket: end of file there means the peer is gone */
    int side;
    bool readable, writable;
    struct conn_pair *pair;
    struct conn_dir *rx, *tx; /* rings to and from this end, or NULL */
    int rx_efd, tx_efd;
    /* The last peer check (send token held): when, and what it had seen
     * of the two events that make a send check at once. */
    long long checked_at;
    unsigned ended_seen;
    uint32_t closes_seen;
    /* Last seen rpos (send token held) and wpos: bounds that only grow,
     * so the other side's line is read again only when they fall short. */
    uint64_t seen_rpos;
    _Atomic uint64_t seen_wpos;
    atomic_int spin;      /* receive spin budget (spin_int.h) */
    atomic_int spin_room; /* send spin budget while the ring is full */
    pthread_mutex_t fileno_lock;
    int epfd; /* made by tk_conn_fileno, else -1 */
};

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

/* -------------------------------------------------------------- setup */

static int dir_init(struct conn_dir *d)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    int r = pthread_mutex_init(&d->send_token, &a);
    if (r == 0 && (r = pthread_mutex_init(&d->recv_token, &a)) != 0)
        pthread_mutex_destroy(&d->send_token);
    pthread_mutexattr_destroy(&a);
    return r;
}

static tk_conn *conn_new(int fd, int side, bool duplex, struct conn_pair *pair)
{
    tk_conn *c = tk__calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = fd;
    c->side = side;
    c->pair = pair;
    /* Python's Pipe(False): the first end receives, the second sends. */
    c->readable = duplex || side == 0;
    c->writable = duplex || side == 1;
    c->rx = c->readable ? &pair->page->dir[side] : NULL;
    c->tx = c->writable ? &pair->page->dir[1 - side] : NULL;
    c->rx_efd = c->readable ? pair->efd[side] : -1;
    c->tx_efd = c->writable ? pair->efd[1 - side] : -1;
    c->epfd = -1;
    pthread_mutex_init(&c->fileno_lock, NULL);
    return c;
}

static void pair_release(struct conn_pair *p)
{
    munmap(p->page, sizeof *p->page);
    for (int i = 0; i < 2; i++)
        if (p->efd[i] >= 0)
            close(p->efd[i]);
    tk__free(p);
}

/* The shared mapping and eventfds of a new pair, or NULL (error set). */
static struct conn_pair *pair_new(bool duplex)
{
    struct conn_pair *pair = tk__calloc(1, sizeof *pair);
    if (!pair)
        return NULL;
    pair->efd[0] = pair->efd[1] = -1;
    void *m = mmap(NULL, sizeof(struct conn_page), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        tk__os_error(errno, "cannot create a pipe (mmap)");
        tk__free(pair);
        return NULL;
    }
    pair->page = m;
    atomic_init(&pair->refs, 2);
    for (int i = 0; i < (duplex ? 2 : 1); i++) {
        int e = dir_init(&pair->page->dir[i]);
        if (e != 0) {
            tk__os_error(e, "cannot create a pipe (mutex)");
            pair_release(pair);
            return NULL;
        }
        if ((pair->efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
            tk__os_error(errno, "cannot create a pipe (eventfd)");
            pair_release(pair);
            return NULL;
        }
    }
    return pair;
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
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return tk__os_error(errno, "cannot create a pipe (socketpair)");
    struct conn_pair *pair = pair_new(duplex);
    tk_conn *ca = pair ? conn_new(sv[0], 0, duplex, pair) : NULL;
    tk_conn *cb = ca ? conn_new(sv[1], 1, duplex, pair) : NULL;
    if (!cb) {
        int r = tk_last_error_code();
        if (pair)
            pair_release(pair);
        tk__free(ca);
        close(sv[0]);
        close(sv[1]);
        return pair ? TK_ENOMEM : r;
    }
    *a = ca;
    *b = cb;
    return 0;
}

/* ------------------------------------------------------------ helpers */

static int closed_error(void)
{
    return tk__error(TK_ECLOSED, "end of file: the other end of the connection is closed");
}

static int broken_pipe_error(void)
{
    return tk__error(TK_ECLOSED, "broken pipe: the other end of the connection is closed");
}

static int broken_error(void)
{
    return tk__error(TK_EBROKEN, "connection is broken: a process died in the middle of "
                                 "a message");
}

/* True once every holder of the other end has closed it or died. */
static bool peer_gone(const tk_conn *c)
{
    char b;
    for (;;) {
        ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
    }
}

/* Send token held: is the peer gone? A system call costs more than a
 * small message, so a check is good for CONN_CHECK_NS: a send that starts
 * later than that after the peer vanished always fails, one that starts
 * sooner may succeed, as one a moment earlier would have. Two events make
 * the next send check at once: any end of this pipe closed (the count in
 * the shared page), and this process reaping a child (tk__children_ended),
 * so a parent that has joined its child never sends into the void. */
static bool send_peer_gone(tk_conn *c)
{
    long long now = tk__spin_now();
    unsigned ended = atomic_load_explicit(&tk__children_ended, memory_order_acquire);
    uint32_t closes = atomic_load(&c->pair->page->closes);
    if (c->checked_at && now - c->checked_at < CONN_CHECK_NS && ended == c->ended_seen &&
        closes == c->closes_seen)
        return false;
    if (peer_gone(c))
        return true;
    c->checked_at = now;
    c->ended_seen = ended;
    c->closes_seen = closes;
    return false;
}

static void ring_bell(int efd)
{
    uint64_t one = 1;
    while (write(efd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

static void reset_bell(int efd)
{
    uint64_t v;
    while (read(efd, &v, sizeof v) < 0 && errno == EINTR)
        ;
}

/* Marks a direction broken and wakes everyone who waits on it: sleeping
 * receivers (the eventfd) and senders waiting for room (room_seq). */
static void mark_broken(struct conn_dir *d, int efd)
{
    atomic_store(&d->broken, 1);
    ring_bell(efd);
    atomic_fetch_add(&d->room_seq, 1);
    tk__futex_wake(&d->room_seq, INT_MAX, TK__WAIT_SHARED);
}

/* A token's holder died in the middle of a message (`partial`), or not.
 * Called with the token just taken with EOWNERDEAD. */
static void token_recover(struct conn_dir *d, pthread_mutex_t *m, uint32_t *partial, int efd)
{
    if (*partial) {
        mark_broken(d, efd);
        *partial = 0;
    }
    pthread_mutex_consistent(m);
}

/* Takes a token. A holder that died mid-message breaks the direction. */
static void token_lock(struct conn_dir *d, pthread_mutex_t *m, uint32_t *partial, int efd)
{
    int r = EBUSY;
    for (int i = 0; i < 100 && r == EBUSY; i++) {
        r = pthread_mutex_trylock(m);
        if (r == EBUSY)
            tk__cpu_relax();
    }
    if (r == EBUSY)
        r = pthread_mutex_lock(m);
    if (r == EOWNERDEAD)
        token_recover(d, m, partial, efd);
    else if (r != 0) {
        tk__panic("tk_conn: cannot lock a pipe token (%d)", r);
    }
}

/* While waiting in the middle of a message for the other side: has the
 * other side's token holder died (with other holders of its end alive,
 * no end of file tells)? A trylock finds out, and breaks the direction
 * if that holder was mid-message. */
static bool holder_died(struct conn_dir *d, pthread_mutex_t *m, uint32_t *partial, int efd)
{
    int r = pthread_mutex_trylock(m);
    if (r == EOWNERDEAD)
        token_recover(d, m, partial, efd);
    if (r == 0 || r == EOWNERDEAD)
        pthread_mutex_unlock(m);
    return atomic_load(&d->broken) != 0;
}

static void ring_copy_in(struct conn_dir *d, uint64_t pos, const unsigned char *src, size_t n)
{
    size_t at = (size_t)(pos & (CONN_RING - 1));
    size_t first = CONN_RING - at < n ? (size_t)(CONN_RING - at) : n;
    memcpy(d->data + at, src, first);
    memcpy(d->data, src + first, n - first);
}

static void ring_copy_out(const struct conn_dir *d, uint64_t pos, unsigned char *dst, size_t n)
{
    size_t at = (size_t)(pos & (CONN_RING - 1));
    size_t first = CONN_RING - at < n ? (size_t)(CONN_RING - at) : n;
    if (dst) {
        memcpy(dst, d->data + at, first);
        memcpy(dst + first, d->data, n - first);
    }
}

static uint64_t ring_used(struct conn_dir *d)
{
    return atomic_load(&d->wpos) - atomic_load(&d->rpos);
}

/* Send token held: free bytes, reading rpos only when the last value seen
 * does not leave `need`. */
static uint64_t tx_room(tk_conn *c, uint64_t need)
{
    uint64_t w = atomic_load_explicit(&c->tx->wpos, memory_order_relaxed);
    /* Also when the copy is more than a ring behind (other processes
     * sent meanwhile): then the difference is no measure of anything. */
    if (w - c->seen_rpos > CONN_RING - need)
        c->seen_rpos = atomic_load_explicit(&c->tx->rpos, memory_order_acquire);
    return CONN_RING - (w - c->seen_rpos);
}

/* Whether more than `beyond` bytes wait, reading wpos only when the last
 * value seen does not show them. */
static bool rx_more_than(tk_conn *c, uint64_t beyond)
{
    uint64_t r = atomic_load_explicit(&c->rx->rpos, memory_order_acquire);
    /* Acquire/release: a thread that trusts another's sighting must also
     * see the bytes that sighting vouches for. */
    uint64_t w = atomic_load_explicit(&c->seen_wpos, memory_order_acquire);
    if (w > r && w - r > beyond)
        return true;
    w = atomic_load(&c->rx->wpos);
    atomic_store_explicit(&c->seen_wpos, w, memory_order_release);
    return w - r > beyond;
}

/* ------------------------------------------------------------------ send */

struct pos_watch {
    _Atomic uint64_t *pos;
    uint64_t seen;
};

static bool pos_moved(void *arg)
{
    struct pos_watch *w = arg;
    return atomic_load_explicit(w->pos, memory_order_acquire) != w->seen;
}

/* Send token held: waits until `need` bytes are free. Before a message's
 * first byte (`cancellable`) a stop may end the wait; after it the
 * message must go out whole. A peer that goes away ends it too. */
static int wait_room(tk_conn *c, uint64_t need, bool cancellable)
{
    struct conn_dir *d = c->tx;
    bool spun = cancellable && tk__stop_pending();
    long long ended = -1;
    for (;;) {
        if (tx_room(c, need) >= need)
            break;
        if (atomic_load(&d->broken))
            return broken_error();
        if (!spun) {
            spun = true;
            struct pos_watch w = {&d->rpos, atomic_load(&d->rpos)};
            if (tk__spin(&c->spin_room, pos_moved, &w, &ended))
                continue;
        }
        if (peer_gone(c))
            return broken_pipe_error();
        uint32_t seq = atomic_load(&d->room_seq);
        atomic_fetch_add(&d->room_waiters, 1);
        c->seen_rpos = atomic_load(&d->rpos);
        if (tx_room(c, need) >= need) {
            atomic_fetch_sub(&d->room_waiters, 1);
            break;
        }
        /* A full ring with a receiver asleep should not happen (every
         * publish rings for sleepers); if it ever did, this wakes it
         * rather than leaving both sides waiting. */
        if (atomic_load(&d->sleepers))
            ring_bell(c->tx_efd);
        tk__deadline tick;
        tk__deadline_init(&tick, CONN_TICK, "tk_conn");
        int r = tk__futex_wait(&d->room_seq, seq,
                               TK__WAIT_SHARED | (cancellable ? TK__WAIT_CANCEL : 0u), &tick);
        atomic_fetch_sub(&d->room_waiters, 1);
        if (r == TK_ECANCELED)
            return tk__error(r, "send interrupted: a stop was requested");
        /* A receiver that died mid-message while others hold its end. */
        if (r == TK_ETIMEDOUT && holder_died(d, &d->recv_token, &d->recv_partial, c->tx_efd))
            return broken_error();
        if (r == 0 && ended >= 0)
            tk__spin_learn(&c->spin_room, ended);
        ended = -1;
    }
    return 0;
}

/* After publishing up to `end`: wakes a receiver that sleeps or watches
 * the eventfd. In fileno mode a receiver that has already taken the bytes
 * needs no ring (one now would only make the descriptor readable with
 * nothing to read). */
static void after_publish(tk_conn *c, uint64_t end)
{
    struct conn_dir *d = c->tx;
    if (atomic_load(&d->sleepers) ||
        (atomic_load(&d->fileno_mode) && atomic_load(&d->rpos) < end))
        ring_bell(c->tx_efd);
}

/* Send token held: writes the frame header and encoding. */
static int send_frame(tk_conn *c, const unsigned char *enc, size_t len)
{
    struct conn_dir *d = c->tx;
    unsigned char hdr[4];
    put_le32(hdr, (uint32_t)len);
    uint64_t total = 4 + (uint64_t)len;
    if (total <= CONN_RING) { /* whole, in one store */
        int r = wait_room(c, total, true);
        if (r < 0)
            return r;
        uint64_t w = atomic_load_explicit(&d->wpos, memory_order_relaxed);
        ring_copy_in(d, w, hdr, 4);
        ring_copy_in(d, w + 4, enc, len);
        atomic_store(&d->wpos, w + total);
        after_publish(c, w + total);
        return 0;
    }
    /* Streamed: the header goes with the first piece, so a receiver never
     * sees part of a header. */
    for (uint64_t off = 0; off < total;) {
        int r = wait_room(c, off == 0 ? CONN_RING / 4 : 1, off == 0);
        if (r < 0) {
            if (off > 0) /* the receiver must not wait for the rest */
                mark_broken(d, c->tx_efd);
            d->send_partial = 0;
            return r;
        }
        d->send_partial = 1;
        uint64_t w = atomic_load_explicit(&d->wpos, memory_order_relaxed);
        uint64_t n = tx_room(c, total - off);
        if (n > total - off)
            n = total - off;
        uint64_t from = off;
        if (from == 0) {
            ring_copy_in(d, w, hdr, 4);
            ring_copy_in(d, w + 4, enc, (size_t)n - 4);
        } else {
            ring_copy_in(d, w, enc + (from - 4), (size_t)n);
        }
        atomic_store(&d->wpos, w + n);
        off += n;
        after_publish(c, w + n);
    }
    d->send_partial = 0;
    return 0;
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
    struct conn_dir *d = c->tx;
    token_lock(d, &d->send_token, &d->send_partial, c->tx_efd);
    if (atomic_load(&d->broken))
        r = broken_error();
    else if (send_peer_gone(c))
        r = broken_pipe_error();
    else
        r = send_frame(c, enc, len);
    pthread_mutex_unlock(&d->send_token);
    if (enc != small)
        tk__free(enc);
    return r;
}

/* ------------------------------------------------------------------ recv */

/* True once a message's header is in the ring. */
static bool has_message(tk_conn *c)
{
    return rx_more_than(c, 3);
}

/* Fileno mode: the eventfd must be readable exactly while a message waits
 * (give or take a late ring). Resets it, then re-rings it if one does. */
static void settle_bell(tk_conn *c)
{
    reset_bell(c->rx_efd);
    if (has_message(c))
        ring_bell(c->rx_efd);
}

/* Waits until a message's header is in the ring (1), the peer is gone with
 * the ring empty (TK_ECLOSED, unreported), or the deadline or a stop
 * (TK_ETIMEDOUT, TK_ECANCELED, unreported). `cancel` is false in the middle
 * of a message, which must be taken whole. */
static int wait_message(tk_conn *c, const tk__deadline *dl, bool cancel, uint64_t beyond)
{
    struct conn_dir *d = c->rx;
    bool spun = dl->kind == TK__DL_POLL || (cancel && tk__stop_pending());
    long long ended = -1;
    for (;;) {
        if (rx_more_than(c, beyond))
            return 1;
        if (atomic_load(&d->broken))
            return TK_EBROKEN;
        if (!spun) {
            spun = true;
            struct pos_watch w = {&d->wpos, atomic_load(&d->wpos)};
            if (tk__spin_yielding(&c->spin, pos_moved, &w, &ended))
                continue;
        }
        atomic_fetch_add(&d->sleepers, 1);
        if (rx_more_than(c, beyond)) {
            atomic_fetch_sub(&d->sleepers, 1);
            return 1;
        }
        struct pollfd pfd[3] = {{.fd = c->rx_efd, .events = POLLIN},
                                {.fd = c->fd, .events = POLLIN}};
        int r = tk__wait_fds(pfd, 2, cancel ? TK__WAIT_CANCEL : 0u, dl);
        atomic_fetch_sub(&d->sleepers, 1);
        if (r < 0)
            return r;
        if (pfd[1].revents) /* the socket is only ever readable at end of file */
            return rx_more_than(c, beyond) ? 1 : atomic_load(&d->broken) ? TK_EBROKEN : TK_ECLOSED;
        if (ended >= 0) {
            tk__spin_learn(&c->spin, ended);
            ended = -1;
        }
        /* Rung: clear the bell before looking again, or the next sleep would
         * end at once. In fileno mode it stays up while a message waits. */
        if (pfd[0].revents) {
            if (!atomic_load(&d->fileno_mode)) {
                reset_bell(c->rx_efd);
                /* The ring was maybe for another sleeper (this waiter may
                 * not take what it found: a poll, a receiver that loses
                 * the token): hand it on while anything waits. And a
                 * tk_conn_fileno() that began meanwhile must keep its
                 * descriptor readable. */
                if (atomic_load(&d->fileno_mode))
                    settle_bell(c);
                else if (atomic_load(&d->sleepers) && rx_more_than(c, 0))
                    ring_bell(c->rx_efd);
            } else if (!rx_more_than(c, beyond)) {
                settle_bell(c);
            }
        }
    }
}

static int wait_error(int r, const char *what)
{
    switch (r) {
    case TK_ETIMEDOUT:
        return tk__error(r, "%s timed out", what);
    case TK_ECANCELED:
        return tk__error(r, "%s interrupted: a stop was requested", what);
    case TK_ECLOSED:
        return closed_error();
    case TK_EBROKEN:
        return broken_error();
    default:
        return r;
    }
}

/* After a take: lets senders waiting for room go on, and hands the bell
 * on to another sleeping receiver when messages remain. */
static void after_take(tk_conn *c)
{
    struct conn_dir *d = c->rx;
    if (atomic_load(&d->room_waiters)) {
        atomic_fetch_add(&d->room_seq, 1);
        tk__futex_wake(&d->room_seq, INT_MAX, TK__WAIT_SHARED);
    }
    if (atomic_load(&d->fileno_mode))
        settle_bell(c);
    else if (atomic_load(&d->sleepers) && has_message(c))
        ring_bell(c->rx_efd);
}

/* Receive token held, a header in the ring: takes the message into `small`
 * or a new buffer (*heap). A message that cannot be kept (no memory) is
 * still taken whole, so the next receive starts at a header. */
static int take_message(tk_conn *c, unsigned char *small, unsigned char **heap, size_t *len)
{
    struct conn_dir *d = c->rx;
    unsigned char hdr[4];
    uint64_t rp = atomic_load_explicit(&d->rpos, memory_order_relaxed);
    ring_copy_out(d, rp, hdr, 4);
    size_t n = get_le32(hdr);
    if (n > CONN_MAX_MESSAGE) {
        mark_broken(d, c->rx_efd);
        return tk__error(TK_EDECODE, "malformed message on the connection: bad frame header");
    }
    unsigned char *buf = n <= CONN_STACK_MESSAGE ? small : (*heap = tk__malloc(n));
    int nomem = buf ? 0 : TK_ENOMEM;
    uint64_t total = 4 + (uint64_t)n;
    if (total <= CONN_RING) { /* published whole */
        ring_copy_out(d, rp + 4, buf, n);
        atomic_store(&d->rpos, rp + total);
        after_take(c);
    } else {
        d->recv_partial = 1;
        uint64_t off = 4;
        atomic_store(&d->rpos, rp + 4);
        while (off < total) {
            tk__deadline tick;
            tk__deadline_init(&tick, CONN_TICK, "tk_conn");
            int r = wait_message(c, &tick, false, 0);
            if (r == TK_ETIMEDOUT) /* a sender that died mid-message? */
                r = holder_died(d, &d->send_token, &d->send_partial, c->rx_efd) ? TK_EBROKEN : 0;
            if (r == 0)
                continue;
            if (r < 0) {
                d->recv_partial = 0;
                after_take(c);
                return wait_error(r, "recv");
            }
            rp = atomic_load_explicit(&d->rpos, memory_order_relaxed);
            uint64_t k = ring_used(d);
            if (k > total - off)
                k = total - off;
            ring_copy_out(d, rp, buf ? buf + (off - 4) : NULL, (size_t)k);
            atomic_store(&d->rpos, rp + k);
            off += k;
            after_take(c);
        }
        d->recv_partial = 0;
    }
    *len = n;
    return nomem ? tk__error(TK_ENOMEM, "out of memory") : 0;
}

TK_API int tk_conn_recv(tk_conn *c, tk_args **msg, double timeout)
{
    if (msg)
        *msg = NULL;
    if (!c || !msg)
        return tk__error(TK_EINVAL, "tk_conn_recv: NULL argument");
    if (!c->readable)
        return tk__error(TK_EPERM, "connection is write-only");
    tk__deadline dl;
    int r = tk__deadline_init(&dl, timeout, "tk_conn_recv");
    if (r < 0)
        return r;
    struct conn_dir *d = c->rx;
    unsigned char small[CONN_STACK_MESSAGE];
    unsigned char *heap = NULL;
    size_t len = 0;
    for (;;) {
        r = wait_message(c, &dl, true, 3);
        if (r < 0)
            return wait_error(r, "recv");
        /* Another receiver may have taken it meanwhile: look again with
         * the token held. */
        token_lock(d, &d->recv_token, &d->recv_partial, c->rx_efd);
        if (atomic_load(&d->broken)) {
            pthread_mutex_unlock(&d->recv_token);
            return broken_error();
        }
        if (has_message(c))
            break;
        pthread_mutex_unlock(&d->recv_token);
    }
    r = take_message(c, small, &heap, &len);
    pthread_mutex_unlock(&d->recv_token);
    if (r == 0)
        r = tk_args_decode(heap ? heap : small, len, msg, NULL); /* senders add no kwargs */
    tk__free(heap);
    return r;
}

TK_API int tk_conn_poll(tk_conn *c, double timeout)
{
    if (!c)
        return tk__error(TK_EINVAL, "tk_conn_poll: NULL connection");
    if (!c->readable)
        return tk__error(TK_EPERM, "connection is write-only");
    tk__deadline dl;
    int r = tk__deadline_init(&dl, timeout, "tk_conn_poll");
    if (r < 0)
        return r;
    r = wait_message(c, &dl, true, 3);
    if (r == 1 || r == TK_ECLOSED || r == TK_EBROKEN)
        return 1; /* end of file is readable, as a broken pipe's error is */
    if (r == TK_ETIMEDOUT)
        return 0;
    return wait_error(r, "poll");
}

TK_API int tk_conn_fileno(const tk_conn *cc)
{
    if (!cc)
        return -1;
    if (!cc->readable)
        return cc->fd;
    tk_conn *c = (tk_conn *)cc; /* made on first use; the caller's view is const */
    pthread_mutex_lock(&c->fileno_lock);
    if (c->epfd < 0) {
        int ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN};
        if (ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, c->rx_efd, &ev) == 0 &&
            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) == 0) {
            atomic_store(&c->rx->fileno_mode, 1);
            if (has_message(c))
                ring_bell(c->rx_efd);
            c->epfd = ep;
        } else {
            tk__os_error(errno, "tk_conn_fileno: cannot make the descriptor (epoll)");
            if (ep >= 0)
                close(ep);
        }
    }
    int fd = c->epfd;
    pthread_mutex_unlock(&c->fileno_lock);
    return fd;
}

TK_API void tk_conn_close(tk_conn *c)
{
    if (!c)
        return;
    close(c->fd);
    if (c->epfd >= 0)
        close(c->epfd);
    atomic_fetch_add(&c->pair->page->closes, 1); /* after the close: see send_peer_gone */
    if (atomic_fetch_sub(&c->pair->refs, 1) == 1)
        pair_release(c->pair);
    pthread_mutex_destroy(&c->fileno_lock);
    tk__free(c);
}
