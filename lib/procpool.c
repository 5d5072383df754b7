/*
 * procpool.c - process pools: forked workers fed over socketpairs by one
 * pool-internal thread.
 *
 * The result thread ("ProcessPool-N") owns every worker: it forks them (so
 * PR_SET_PDEATHSIG, which follows the forking *thread*, ties the workers to
 * a thread that lives as long as the pool), sends them tasks, reads their
 * results, runs done-callbacks, notices deaths (end of file, pidfd) and
 * replaces the dead. Submitters only encode their task (so encoding errors
 * reach them) and queue it; the thread is woken through an eventfd only
 * when it sleeps.
 *
 * Each worker has at most PP_WINDOW tasks sent and unanswered, which
 * bounds the encodings held per worker and lets several tasks travel in one
 * write. A worker answers in order, one result per task, committed as soon
 * as the task ends to its *result ring*: a byte ring in memory shared with
 * the pool (struct ring), so a result costs the worker no system call. The
 * pool thread reads the rings every round; a worker sends a wake-up byte
 * over its socket only when the pool thread has said it is going to sleep.
 * A committed result survives its worker's death (the ring is the pool's
 * memory), so when a worker dies, the pool first takes every result it
 * committed; the oldest unanswered task is then the one it was running
 * (that future fails with TK_EBROKEN) and the others were not started (they
 * are sent to the replacement).
 *
 * Wire format, all little-endian: a frame is a u32 payload length and the
 * payload. Task: the function pointer's bytes (8, zero-padded), u32 item count (0: one call with
 * kwargs), then per item a u32 length and a tk_args encoding. Result: u32
 * item count, then per item an i32 status, a u32 length and either the
 * result's encoding (status 0) or the error text.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "args_int.h"
#include "taskkit/process.h"
#include "pool_int.h"
#include "process_int.h"

/* Tasks sent to one worker and not yet answered: map chunks up to
 * PP_WINDOW (internal futures nobody cancels one by one: a deep window keeps
 * the worker busy while the pool thread is away, and lets many tasks travel
 * in one write); submitted futures only up to PP_SUBMIT_AHEAD, since a sent
 * task can no longer be cancelled. */
#define PP_WINDOW 64
#define PP_SUBMIT_AHEAD 4
/* ... and beyond PP_SUBMIT_AHEAD map chunks, only as long as they hold at
 * most this many items: big chunks stay in the shared queue for whichever
 * worker is free first, small ones travel many at a time. */
#define PP_WINDOW_ITEMS 64
#define PP_MAX_FRAME ((size_t)1 << 30)

struct pw {
    pid_t pid;  /* 0: no live worker in this slot */
    int fd;     /* our end of its socketpair, non-blocking */
    int pidfd;  /* -1 where pidfd_open is unavailable */
    bool killed;
    tk_future *inq[PP_WINDOW]; /* sent, unanswered, oldest first */
    unsigned ihead, n;
    size_t items;                /* map items (1 per submitted task) in inq */
    unsigned char *out;          /* bytes not yet written to it */
    size_t out_off, out_len, out_cap;
    unsigned char *in;           /* bytes read, not yet a whole frame */
    size_t in_len, in_cap;
};

/* A worker's result ring (see the top): the worker writes at `tail`, the
 * pool thread reads at `head`; both only grow, the offset in data[] is
 * modulo PP_RING. */
#define PP_RING ((size_t)256 * 1024)

struct ring {
    _Atomic uint64_t tail, head;
    _Atomic uint32_t pool_sleeps;  /* the pool thread is (about to be) in poll() */
    _Atomic uint32_t worker_waits; /* the worker waits for room */
    _Atomic uint32_t room_seq;     /* the word it waits on */
    unsigned char data[PP_RING];
};

struct tk__pp {
    pthread_t th;
    struct ring *rings;           /* nworkers rings, MAP_SHARED */
    bool th_started;
    int evfd;
    bool sleeping, notified;      /* guarded by the pool lock */
    tk_future *redo, *redo_tail;  /* result thread only */
    bool retry;                   /* result thread: a send buffer could not grow */
    struct pw *w;
    struct pollfd *pfd;           /* the result thread's, made by tk__pp_start */
    _Atomic uint32_t started;     /* start handshake */
    int start_err;
    char start_msg[TK__ERRMSG_MAX];
};

/* ---------------------------------------------------------- byte buffers */

static void le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

struct buf {
    unsigned char *p;
    size_t len, cap;
    bool oom;
};

/* Makes room for n more bytes; NULL (and oom) on failure. */
static unsigned char *buf_room(struct buf *b, size_t n)
{
    if (b->oom)
        return NULL;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *q = tk__realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return NULL;
        }
        b->p = q;
        b->cap = cap;
    }
    return b->p + b->len;
}

static void buf_put(struct buf *b, const void *src, size_t n)
{
    unsigned char *d = buf_room(b, n);
    if (d) {
        memcpy(d, src, n);
        b->len += n;
    }
}

static void buf_u32(struct buf *b, uint32_t v)
{
    unsigned char x[4];
    le32(x, v);
    buf_put(b, x, 4);
}

/* Appends one item: a length and the encoding of args + kwargs, encoded
 * straight into the buffer (no intermediate allocation). */
static int buf_encoding(struct buf *b, const tk_args *a, const tk_kwargs *kw)
{
    size_t len = 0;
    int r = tk__args_encoded_len(a, kw, &len);
    if (r < 0)
        return r;
    if (len > PP_MAX_FRAME)
        return tk__error(TK_EOVERFLOW, "task too large for a process pool: %zu bytes", len);
    buf_u32(b, (uint32_t)len);
    unsigned char *d = buf_room(b, len);
    if (d)
        b->len += tk__args_encode_to(a, kw, d);
    return 0;
}

int tk__pp_encode(tk_future *f)
{
    /* Sized first, so the frame is one exact allocation. */
    size_t total = 16, len = 0;
    int r = 0;
    if (f->nitems == 0 && (r = tk__args_encoded_len(f->args, f->kwargs, &len)) == 0)
        total += 4 + len;
    for (size_t i = 0; r == 0 && i < f->nitems; i++)
        if ((r = tk__args_encoded_len(f->x->items[i], NULL, &len)) == 0)
            total += 4 + len;
    if (r < 0)
        return r;
    if (total > PP_MAX_FRAME)
        return tk__error(TK_EOVERFLOW, "task too large for a process pool: %zu bytes", total);
    struct buf b = {.p = tk__malloc(total), .cap = total};
    if (!b.p)
        return TK_ENOMEM;
    unsigned char fx[8] = {0};
    _Static_assert(sizeof(tk_task) <= sizeof fx, "a function pointer fits 8 bytes");
    memcpy(fx, &f->fn, sizeof f->fn);
    buf_u32(&b, (uint32_t)(total - 4));
    buf_put(&b, fx, 8);
    buf_u32(&b, (uint32_t)f->nitems);
    if (f->nitems == 0)
        buf_encoding(&b, f->args, f->kwargs);
    for (size_t i = 0; i < f->nitems; i++)
        buf_encoding(&b, f->x->items[i], NULL);
    if (b.len != total)
        tk__panic("tk_pool: task frame of %zu bytes, computed %zu", b.len, total);
    /* The inputs now live in the encoding. */
    tk__future_drop_inputs(f);
    f->x->enc = b.p;
    f->x->enc_len = b.len;
    return 0;
}

/* ------------------------------------------------------- worker process */

/* Worker: if the pool thread sleeps, wakes it with a byte on the socket. */
static void wake_pool(struct ring *r, int fd)
{
    if (atomic_exchange(&r->pool_sleeps, 0)) {
        char one = 1;
        while (send(fd, &one, 1, MSG_NOSIGNAL) < 0 && errno == EINTR)
            ;
    }
}

/* Worker: commits n bytes to the ring, waiting for room as needed (the
 * pool thread frees it as it reads). */
static void ring_put(struct ring *r, int fd, const unsigned char *src, size_t n)
{
    tk__deadline forever = {.kind = TK__DL_FOREVER};
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    while (n > 0) {
        size_t room = PP_RING - (size_t)(tail - atomic_load(&r->head));
        if (room == 0) {
            uint32_t v = atomic_load(&r->room_seq);
            atomic_store(&r->worker_waits, 1);
            wake_pool(r, fd);
            if (PP_RING - (size_t)(tail - atomic_load(&r->head)) == 0)
                tk__futex_wait(&r->room_seq, v, TK__WAIT_SHARED, &forever);
            atomic_store(&r->worker_waits, 0);
            continue;
        }
        size_t k = n < room ? n : room, at = (size_t)(tail % PP_RING);
        size_t first = PP_RING - at < k ? PP_RING - at : k;
        memcpy(r->data + at, src, first);
        memcpy(r->data, src + first, k - first);
        tail += k;
        atomic_store(&r->tail, tail);
        src += k;
        n -= k;
    }
    wake_pool(r, fd);
}

/* Runs one item in the worker and appends its status and payload. Items
 * of a chunk never carry kwargs, so they decode without a kwargs bag. */
static void worker_item(tk_task fn, const unsigned char *enc, size_t len, bool with_kwargs,
                        struct buf *out)
{
    tk_args *a = NULL, *res = NULL;
    tk_kwargs *kw = NULL;
    size_t rlen = 0;
    int st = tk_args_decode(enc, len, &a, with_kwargs ? &kw : NULL);
    const tk_kwargs *kwv = kw ? kw : tk__empty_kwargs();
    if (st == 0 && (!(res = tk_args_new()) || !kwv))
        st = TK_ENOMEM;
    if (st == 0) {
        tk__tls()->err_code = 0;
        tk__tls()->err_msg[0] = '\0';
        st = fn(a, kwv, res);
        if (st == 0)
            st = tk__args_encoded_len(res, NULL, &rlen);
    }
    unsigned char sx[4];
    le32(sx, (uint32_t)st);
    buf_put(out, sx, 4);
    if (st == 0) {
        buf_u32(out, (uint32_t)rlen);
        unsigned char *d = buf_room(out, rlen);
        if (d)
            out->len += tk__args_encode_to(res, NULL, d);
    } else {
        char *text = tk__task_error_text(st);
        const char *t = text ? text : "out of memory";
        buf_u32(out, (uint32_t)strlen(t));
        buf_put(out, t, strlen(t));
        tk__free(text);
    }
    tk_args_free(a);
    tk_args_free(res);
    tk_kwargs_free(kw);
}

/* Runs one task frame's payload and sends the result frame. */
static bool worker_task(struct ring *r, int fd, const unsigned char *p, size_t len)
{
    if (len < 12)
        return false;
    /* The function pointer's own bytes: the worker is a fork of the
     * submitter, so the same address names the same function. */
    tk_task fn;
    memcpy(&fn, p, sizeof fn);
    uint32_t nitems = rd32(p + 8);
    size_t count = nitems ? nitems : 1, off = 12;
    struct buf out = {0};
    buf_u32(&out, 0);
    buf_u32(&out, nitems);
    for (size_t i = 0; i < count; i++) {
        if (off + 4 > len || rd32(p + off) > len - off - 4)
            return false;
        uint32_t l = rd32(p + off);
        worker_item(fn, p + off + 4, l, nitems == 0, &out);
        off += 4 + l;
    }
    if (out.oom)
        return false;
    le32(out.p, (uint32_t)(out.len - 4));
    ring_put(r, fd, out.p, out.len);
    tk__free(out.p);
    return true;
}

static _Noreturn void worker_main(tk_pool *p, int idx, int fd, pid_t parent)
{
    char name[32];
    snprintf(name, sizeof name, "ProcessPool-%d_%d", p->id, idx);
    prctl(PR_SET_NAME, name); /* the OS keeps 15 bytes ... */
    tk_process_set_name(tk_current_process(), name); /* ... libtaskkit all */
    tk__process_mark_daemonic(); /* workers are daemonic, as in CPython */
    /* Die with the pool's result thread (the forking thread). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    /* The siblings' descriptors came along with the fork: drop them. */
    close(p->pp->evfd);
    for (int i = 0; i < p->nworkers; i++) {
        if (p->pp->w[i].pid > 0 && i != idx) {
            close(p->pp->w[i].fd);
            if (p->pp->w[i].pidfd >= 0)
                close(p->pp->w[i].pidfd);
        }
    }
    tk__current_pool = NULL;
    if (p->init) {
        /* As in a thread worker: a bag that cannot be made is reported as
         * the initializer's failure, never skipped silently. */
        const tk_kwargs *kw = tk__empty_kwargs();
        const tk_args *a = p->initargs ? p->initargs : tk__empty_args();
        if (!a || !kw || p->init(a, kw) < 0)
            fprintf(stderr, "Exception in initializer of %s: %s\n", name, tk_last_error());
    }
    struct buf in = {0};
    size_t used = 0;
    for (;;) {
        while (in.len - used >= 4 && in.len - used - 4 >= rd32(in.p + used)) {
            uint32_t l = rd32(in.p + used);
            if (!worker_task(&p->pp->rings[idx], fd, in.p + used + 4, l))
                goto out;
            used += 4 + l;
        }
        if (used > 0) {
            memmove(in.p, in.p + used, in.len - used);
            in.len -= used;
            used = 0;
        }
        unsigned char chunk[65536];
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* the pool closed our socket: shut down */
        buf_put(&in, chunk, (size_t)n);
        if (in.oom)
            break;
    }
out:
    tk__flush_stdio();
    _exit(0);
}

/* ------------------------------------------------------- parent: workers */

static int spawn(tk_pool *p, int idx)
{
    struct pw *w = &p->pp->w[idx];
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return tk__os_error(errno, "cannot create a socket for a pool worker");
    /* A fresh ring: whatever a dead predecessor left was taken already. */
    struct ring *rg = &p->pp->rings[idx];
    atomic_store(&rg->tail, 0);
    atomic_store(&rg->head, 0);
    atomic_store(&rg->pool_sleeps, 0);
    atomic_store(&rg->worker_waits, 0);
    pid_t parent = getpid();
    tk__flush_stdio();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(sv[0]);
        close(sv[1]);
        return tk__os_error(e, "cannot fork a pool worker");
    }
    if (pid == 0) {
        close(sv[0]);
        worker_main(p, idx, sv[1], parent);
    }
    close(sv[1]);
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    w->pid = pid;
    w->fd = sv[0];
    w->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    w->killed = false;
    w->ihead = w->n = 0;
    w->items = 0;
    w->out_off = w->out_len = 0;
    w->in_len = 0;
    return 0;
}

static tk_future *inq_head(struct pw *w)
{
    return w->n ? w->inq[w->ihead] : NULL;
}

static void inq_push(struct pw *w, tk_future *f)
{
    w->inq[(w->ihead + w->n++) % PP_WINDOW] = f;
    w->items += f->nitems ? f->nitems : 1;
}

static tk_future *inq_pop(struct pw *w)
{
    tk_future *f = w->inq[w->ihead];
    w->ihead = (w->ihead + 1) % PP_WINDOW;
    w->n--;
    w->items -= f->nitems ? f->nitems : 1;
    return f;
}

/* May f be sent to w now? */
static bool has_room(const struct pw *w, const tk_future *f)
{
    if (w->n >= PP_WINDOW)
        return false;
    if (f->nitems == 0)
        return w->n < PP_SUBMIT_AHEAD;
    return w->n < PP_SUBMIT_AHEAD || w->items + f->nitems <= PP_WINDOW_ITEMS;
}

static bool out_append(struct pw *w, const void *src, size_t n)
{
    if (w->out_off > 0 && w->out_off == w->out_len)
        w->out_off = w->out_len = 0;
    if (w->out_len + n > w->out_cap) {
        size_t cap = w->out_cap ? w->out_cap : 4096;
        while (cap < w->out_len + n)
            cap *= 2;
        unsigned char *q = tk__realloc(w->out, cap);
        if (!q)
            return false;
        w->out = q;
        w->out_cap = cap;
    }
    memcpy(w->out + w->out_len, src, n);
    w->out_len += n;
    return true;
}

static void flush_out(struct pw *w)
{
    while (w->pid > 0 && w->out_off < w->out_len) {
        ssize_t n = send(w->fd, w->out + w->out_off, w->out_len - w->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* full (POLLOUT wakes us) or dead (end of file tells us) */
        w->out_off += (size_t)n;
    }
}

/* ------------------------------------------------------ parent: results */

static char *text_copy(const unsigned char *p, size_t n)
{
    char *s = tk__malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

/* Parses one item of a result frame. */
static bool parse_item(const unsigned char *p, size_t len, size_t *off, int *st,
                       tk_args **res, char **err, bool decode)
{
    if (*off + 8 > len || rd32(p + *off + 4) > len - *off - 8)
        return false;
    *st = (int)rd32(p + *off);
    uint32_t l = rd32(p + *off + 4);
    const unsigned char *d = p + *off + 8;
    *off += 8 + l;
    *res = NULL;
    *err = NULL;
    if (*st != 0) {
        *err = text_copy(d, l);
        return true;
    }
    int r = decode ? tk_args_decode(d, l, res, NULL) : 0;
    if (r < 0) {
        /* TK_ENOMEM stays itself: the caller's memory failed, not the task. */
        *st = r == TK_ENOMEM ? TK_ENOMEM : TK_EDECODE;
        *err = text_copy((const unsigned char *)tk_last_error(), strlen(tk_last_error()));
    }
    return true;
}

/* A chunk's results are decoded by the map call that waits for it
 * (tk__pp_chunk_results), not here: the bags are then allocated by the
 * thread that frees them, and this thread only keeps a copy of the frame. */
static void complete(tk_future *f, const unsigned char *p, size_t len)
{
    size_t off = 4, count = f->nitems ? f->nitems : 1;
    int first_st = 0;
    char *first_err = NULL;
    tk_args *single = NULL;
    for (size_t i = 0; i < count; i++) {
        int st;
        tk_args *res = NULL;
        char *err;
        if (!parse_item(p, len, &off, &st, &res, &err, f->nitems == 0)) {
            st = TK_EDECODE;
            err = text_copy((const unsigned char *)"malformed result from a pool worker", 35);
            count = i + 1; /* the rest cannot be found */
        }
        if (f->nitems == 0)
            single = res;
        if (st != 0 && first_st == 0) {
            first_st = st;
            first_err = err;
            f->x->fail_index = i;
        } else {
            tk__free(err);
        }
    }
    if (single && tk_args_len(single) == 0) {
        tk_args_free(single);
        single = NULL;
    }
    tk__free(f->x->enc);
    f->x->enc = NULL;
    /* Failing this copy fails the map in the caller with TK_ENOMEM. */
    if (f->nitems > 0 && (f->x->enc = tk__malloc(len ? len : 1)) != NULL) {
        memcpy(f->x->enc, p, len);
        f->x->enc_len = len;
    }
    tk__future_finish(f, first_st, single, first_err);
    tk__future_unref(f);
}

int tk__pp_chunk_results(tk_future *f, tk_args **results, size_t base)
{
    const unsigned char *p = f->x->enc;
    size_t off = 4, len = f->x->enc_len;
    if (!p)
        return f->status == 0 ? tk__error(TK_ENOMEM, "out of memory") : 0;
    int r = 0;
    for (size_t i = 0; i < f->nitems && off + 8 <= len; i++) {
        bool ok = rd32(p + off) == 0; /* the task succeeded */
        int st;
        char *err;
        if (!parse_item(p, len, &off, &st, &results[i], &err, true))
            break; /* reported by complete() already */
        if (ok && st == TK_ENOMEM && r == 0)
            r = tk__error(TK_ENOMEM, "out of memory"); /* decoding, here */
        else if (ok && st != 0 && r == 0)
            r = tk__error(TK_ETASK, "map item %zu failed (status %d): %s", base + i, st,
                          err ? err : "out of memory");
        tk__free(err);
    }
    return r;
}

static void kill_if_interrupted(struct pw *w)
{
    tk_future *h = inq_head(w);
    if (h && h->interrupted && !w->killed && w->pid > 0) {
        kill(w->pid, SIGKILL);
        w->killed = true;
    }
}

/* Pool thread: moves what the worker committed to its ring into w->in and
 * lets it go on if it waited for room. False if memory ran out. */
static bool take_ring(tk_pool *p, int idx)
{
    struct pw *w = &p->pp->w[idx];
    struct ring *r = &p->pp->rings[idx];
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    size_t n = (size_t)(atomic_load(&r->tail) - head);
    if (n == 0)
        return true;
    if (w->in_cap - w->in_len < n) {
        size_t cap = w->in_cap ? w->in_cap : 65536;
        while (cap - w->in_len < n)
            cap *= 2;
        unsigned char *q = tk__realloc(w->in, cap);
        if (!q)
            return false; /* try again later */
        w->in = q;
        w->in_cap = cap;
    }
    size_t at = (size_t)(head % PP_RING), first = PP_RING - at < n ? PP_RING - at : n;
    memcpy(w->in + w->in_len, r->data + at, first);
    memcpy(w->in + w->in_len + first, r->data, n - first);
    w->in_len += n;
    atomic_store(&r->head, head + n);
    if (atomic_load(&r->worker_waits)) {
        atomic_fetch_add(&r->room_seq, 1);
        tk__futex_wake(&r->room_seq, 1, TK__WAIT_SHARED);
    }
    return true;
}

/* Pool thread: reads the worker's socket (wake-up bytes, end of file).
 * Returns false at end of file. */
static bool drain_socket(struct pw *w)
{
    unsigned char junk[256];
    for (;;) {
        ssize_t n = recv(w->fd, junk, sizeof junk, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            return false;
        if (n < 0)
            return true;
    }
}

/* Completes the futures the worker in slot idx has answered. */
static void read_results(tk_pool *p, int idx)
{
    struct pw *w = &p->pp->w[idx];
    take_ring(p, idx);
    size_t used = 0;
    while (w->in_len - used >= 4 && w->in_len - used - 4 >= rd32(w->in + used) && w->n > 0) {
        uint32_t l = rd32(w->in + used);
        tk__pool_lock(p);
        tk_future *f = inq_pop(w);
        kill_if_interrupted(w);
        tk__pool_unlock(p);
        complete(f, w->in + used + 4, l);
        used += 4 + l;
    }
    if (used > 0) {
        memmove(w->in, w->in + used, w->in_len - used);
        w->in_len -= used;
    }
}

/* Before poll(): tells the workers to wake us, then checks that none has
 * committed a result meanwhile. True if poll() may block. */
static bool may_sleep(tk_pool *p)
{
    bool quiet = true;
    for (int i = 0; i < p->nworkers; i++) {
        struct ring *r = &p->pp->rings[i];
        if (p->pp->w[i].pid <= 0)
            continue;
        atomic_store(&r->pool_sleeps, 1);
        quiet &= atomic_load(&r->tail) == atomic_load_explicit(&r->head, memory_order_relaxed);
    }
    return quiet;
}

static void fail_future(tk_future *f, int status, const char *text)
{
    for (size_t i = 0; i < f->nitems; i++)
        f->x->results[i] = NULL;
    tk__free(f->x->enc);
    f->x->enc = NULL;
    tk__future_finish(f, status, NULL, text ? text_copy((const unsigned char *)text, strlen(text))
                                            : NULL);
    tk__future_unref(f);
}

static void redo_push_front(struct tk__pp *pp, tk_future **fs, unsigned n)
{
    for (unsigned i = n; i-- > 0;) {
        fs[i]->next = pp->redo;
        pp->redo = fs[i];
        if (!pp->redo_tail)
            pp->redo_tail = fs[i];
    }
}

/* The worker in slot idx has died: reap it, fail the task it was running,
 * queue the unstarted ones again and start a replacement. */
static void handle_death(tk_pool *p, int idx)
{
    struct pw *w = &p->pp->w[idx];
    int status = 0;
    while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
        ;
    close(w->fd);
    if (w->pidfd >= 0)
        close(w->pidfd);
    char why[160];
    if (WIFSIGNALED(status))
        snprintf(why, sizeof why, "A process in the process pool was terminated abruptly "
                 "(killed by signal %d) while the future was running", WTERMSIG(status));
    else
        snprintf(why, sizeof why, "A process in the process pool was terminated abruptly "
                 "(exit code %d) while the future was running", WEXITSTATUS(status));
    tk_future *again[PP_WINDOW], *failed = NULL;
    unsigned na = 0;
    tk__pool_lock(p);
    bool killed = w->killed;
    while (w->n > 0) {
        tk_future *f = inq_pop(w);
        if (!failed && (killed ? f->interrupted : true))
            failed = f;
        else
            again[na++] = f;
    }
    w->pid = 0;
    tk__pool_unlock(p);
    redo_push_front(p->pp, again, na);
    if (failed) {
        if (failed->interrupted)
            fail_future(failed, TK_ECANCELED, NULL);
        else
            fail_future(failed, TK_EBROKEN, why);
    }
    /* The next round starts a replacement. */
}

/* ----------------------------------------------------- parent: dispatch */

/* Takes the next task to send (pool lock held), or NULL; with w, NULL also
 * when the next task does not fit w's window. */
static tk_future *take_task(tk_pool *p, const struct pw *w)
{
    struct tk__pp *pp = p->pp;
    for (;;) {
        tk_future *f = pp->redo;
        if (f) {
            if (w && !has_room(w, f))
                return NULL;
            pp->redo = f->next;
            if (!pp->redo)
                pp->redo_tail = NULL;
            f->next = NULL;
            return f;
        }
        f = p->head;
        if (!f || (w && !has_room(w, f)))
            return NULL;
        tk__pool_pop(p);
        int st = TK__F_PENDING;
        if (atomic_compare_exchange_strong(&f->state, &st, TK__F_RUNNING))
            return f;
        tk__future_unref(f); /* cancelled while queued */
    }
}

static tk_future *next_task(tk_pool *p)
{
    return take_task(p, NULL);
}

/* Gives w one more task if it has room (pool lock held); false when it
 * took none. Interrupted tasks never sent are collected in *dropped. */
static bool assign_one(tk_pool *p, struct pw *w, tk_future **dropped)
{
    if (w->pid <= 0 || w->killed)
        return false;
    tk_future *f;
    while ((f = take_task(p, w)) != NULL && f->interrupted) {
        f->next = *dropped;
        *dropped = f;
    }
    if (!f)
        return false;
    if (!out_append(w, f->x->enc, f->x->enc_len)) {
        p->pp->retry = true; /* soon: nothing else may wake the thread */
        f->next = p->pp->redo;
        p->pp->redo = f;
        if (!p->pp->redo_tail)
            p->pp->redo_tail = f;
        return false;
    }
    inq_push(w, f);
    return true;
}

/* Deals queued tasks round-robin to the workers with room (pool lock
 * held), so equal work spreads evenly. */
static void assign(tk_pool *p, tk_future **dropped)
{
    bool progress = true;
    while (progress) {
        progress = false;
        for (int i = 0; i < p->nworkers; i++)
            progress |= assign_one(p, &p->pp->w[i], dropped);
    }
}

static bool all_idle(tk_pool *p)
{
    for (int i = 0; i < p->nworkers; i++)
        if (p->pp->w[i].n > 0)
            return false;
    return !p->head && !p->pp->redo;
}

static bool any_alive(tk_pool *p)
{
    for (int i = 0; i < p->nworkers; i++)
        if (p->pp->w[i].pid > 0)
            return true;
    return false;
}

/* Fails everything still queued: no worker can be started. */
static void fail_queued(tk_pool *p)
{
    tk__pool_lock(p);
    tk_future *f;
    tk_future *list = NULL;
    while ((f = next_task(p)) != NULL) {
        f->next = list;
        list = f;
    }
    tk__pool_unlock(p);
    while (list) {
        tk_future *n = list->next;
        fail_future(list, TK_EBROKEN, "no worker process could be started for the pool");
        list = n;
    }
}

/* One round: assign work, write, wait, read. Returns false when done. */
static bool dispatch_round(tk_pool *p, struct pollfd *pfd)
{
    struct tk__pp *pp = p->pp;
    tk_future *dropped = NULL;
    tk__pool_lock(p);
    bool idle = p->shutdown && all_idle(p);
    tk__pool_unlock(p);
    /* Replace dead workers before handing out work (not when finishing). */
    for (int i = 0; !idle && i < p->nworkers; i++)
        if (pp->w[i].pid <= 0 && spawn(p, i) < 0)
            fprintf(stderr, "ProcessPool-%d: cannot start a worker: %s\n", p->id,
                    tk_last_error());
    tk__pool_lock(p);
    pp->retry = false;
    assign(p, &dropped);
    bool done = p->shutdown && all_idle(p);
    pp->sleeping = !done;
    tk__pool_unlock(p);
    while (dropped) {
        tk_future *n = dropped->next;
        fail_future(dropped, TK_ECANCELED, NULL);
        dropped = n;
    }
    if (done)
        return false;
    if (!any_alive(p))
        fail_queued(p); /* then sleep until more work or shutdown */
    nfds_t n = 0;
    pfd[n++] = (struct pollfd){.fd = pp->evfd, .events = POLLIN};
    for (int i = 0; i < p->nworkers; i++) {
        struct pw *w = &pp->w[i];
        flush_out(w);
        short ev = POLLIN | (w->out_off < w->out_len ? POLLOUT : 0);
        pfd[n++] = (struct pollfd){.fd = w->pid > 0 ? w->fd : -1, .events = ev};
        pfd[n++] = (struct pollfd){.fd = w->pid > 0 ? w->pidfd : -1, .events = POLLIN};
    }
    /* A task left unsent for want of memory is retried after a pause. */
    int timeout = !may_sleep(p) ? 0 : pp->retry ? 10 : -1;
    while (poll(pfd, n, timeout) < 0 && errno == EINTR)
        ;
    tk__pool_lock(p);
    pp->sleeping = false;
    pp->notified = false;
    tk__pool_unlock(p);
    uint64_t v;
    if (pfd[0].revents && read(pp->evfd, &v, sizeof v) < 0)
        v = 0;
    for (int i = 0; i < p->nworkers; i++) {
        struct pw *w = &pp->w[i];
        if (w->pid <= 0)
            continue;
        atomic_store(&pp->rings[i].pool_sleeps, 0);
        bool alive = true;
        if (pfd[1 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR))
            alive = drain_socket(w);
        if (pfd[2 + 2 * i].revents)
            alive = false; /* it has exited */
        /* A dead worker's committed results are all in its ring now: take
         * them before burying it. */
        read_results(p, i);
        if (!alive)
            handle_death(p, i);
    }
    return true;
}

static void *result_thread(void *arg)
{
    tk_pool *p = arg;
    struct tk__pp *pp = p->pp;
    char name[16];
    snprintf(name, sizeof name, "ProcessPool-%d", p->id);
    pthread_setname_np(pthread_self(), name);
    tk__current_pool = p;
    int r = 0, i;
    for (i = 0; i < p->nworkers && r == 0; i++)
        r = spawn(p, i);
    pp->start_err = r;
    if (r < 0)
        snprintf(pp->start_msg, sizeof pp->start_msg, "%s", tk_last_error());
    atomic_store(&pp->started, 1);
    tk__futex_wake(&pp->started, INT_MAX, 0);
    if (r == 0)
        while (dispatch_round(p, pp->pfd))
            ;
    /* Closing our ends makes idle workers leave; then reap them. */
    for (i = 0; i < p->nworkers; i++) {
        struct pw *w = &pp->w[i];
        if (w->pid <= 0)
            continue;
        close(w->fd);
        if (w->pidfd >= 0)
            close(w->pidfd);
        while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        w->pid = 0;
    }
    tk__pool_thread_exit(p);
    return NULL;
}

int tk__pp_start(tk_pool *p)
{
    struct tk__pp *pp = tk__calloc(1, sizeof *pp);
    if (!pp)
        return TK_ENOMEM;
    p->pp = pp;
    pp->evfd = -1;
    pp->w = tk__calloc((size_t)p->nworkers, sizeof *pp->w);
    /* Made here, where a failure can be reported: the result thread could
     * only give up, leaving every task unanswered. */
    pp->pfd = pp->w ? tk__calloc(1 + 2 * (size_t)p->nworkers, sizeof *pp->pfd) : NULL;
    if (!pp->pfd)
        return TK_ENOMEM;
    pp->rings = mmap(NULL, (size_t)p->nworkers * sizeof(struct ring), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (pp->rings == MAP_FAILED) {
        pp->rings = NULL;
        return tk__os_error(errno, "cannot map the pool's result rings");
    }
    pp->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (pp->evfd < 0)
        return tk__os_error(errno, "cannot create the pool's wake-up descriptor");
    sigset_t old;
    tk__block_signals(&old);
    tk__pool_thread_enter(p);
    int e = pthread_create(&pp->th, NULL, result_thread, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        tk__pool_thread_leave(p);
        return tk__os_error(e, "cannot start the pool's result thread");
    }
    pp->th_started = true;
    tk__deadline forever = {.kind = TK__DL_FOREVER};
    while (atomic_load(&pp->started) == 0)
        tk__futex_wait(&pp->started, 0, 0, &forever);
    if (pp->start_err < 0) {
        pthread_join(pp->th, NULL);
        pp->th_started = false;
        return tk__error(pp->start_err, "%s", pp->start_msg);
    }
    return 0;
}

void tk__pp_notify(tk_pool *p)
{
    struct tk__pp *pp = p->pp;
    if (pp->sleeping && !pp->notified) {
        uint64_t one = 1;
        pp->notified = true;
        if (write(pp->evfd, &one, sizeof one) < 0)
            pp->notified = true; /* the counter is already non-zero */
    }
}

void tk__pp_join(tk_pool *p)
{
    if (p->pp && p->pp->th_started) {
        pthread_join(p->pp->th, NULL);
        p->pp->th_started = false;
    }
}

void tk__pp_free(tk_pool *p)
{
    struct tk__pp *pp = p->pp;
    if (!pp)
        return;
    /* In a forked child these descriptors are the parent's: not ours. */
    if (p->owner == tk__getpid() && pp->evfd >= 0)
        close(pp->evfd);
    for (int i = 0; pp->w && i < p->nworkers; i++) {
        tk__free(pp->w[i].out);
        tk__free(pp->w[i].in);
    }
    if (pp->rings)
        munmap(pp->rings, (size_t)p->nworkers * sizeof(struct ring));
    tk__free(pp->w);
    tk__free(pp->pfd);
    tk__free(pp);
    p->pp = NULL;
}

int tk__pp_interrupt(tk_pool *p, tk_future *f)
{
    f->interrupted = true;
    for (int i = 0; i < p->nworkers; i++)
        kill_if_interrupted(&p->pp->w[i]);
    return 0;
}
