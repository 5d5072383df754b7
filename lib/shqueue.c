/*
 * shqueue.c - TK_SHARED queues: a ring of encodings in MAP_SHARED memory.
 *
 * The mapping holds a header (a robust, process-shared mutex, the counters
 * and three futex sequence words) followed by `cap` bytes of ring. Each item
 * is a 4-byte length and its tk_args encoding, copied in and out with
 * wrap-around; the ring never grows, so a full ring blocks producers.
 *
 * Why no feeder thread (CPython has one): a put encodes in the caller and
 * copies into shared memory before returning, so encoding errors reach the
 * caller and a producer may exit the moment its put returns.
 *
 * A process that dies holding the mutex leaves the ring possibly half
 * written: the next locker gets EOWNERDEAD, marks the queue broken and
 * every later call fails with TK_EBROKEN instead of reading garbage.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "args_int.h"
#include "queue_int.h"
#include "spin_int.h"

struct tk__shq {
    pthread_mutex_t lock;
    _Atomic uint32_t not_empty, not_full, all_done; /* sequence words */
    uint32_t getters, putters, joiners;
    /* A getter was woken and has not run yet: later puts need not wake
     * another (it would find nothing to do); every getter that returns from
     * its wait clears it, and one that takes an item while more wait hands
     * the wake-up on, so none is lost. */
    uint32_t get_wake_pending;
    uint32_t closed, broken;
    /* Bumped by every put: a getter about to sleep watches it for a few
     * microseconds first, without the lock, so a steady producer never
     * has to wake it. */
    _Atomic uint32_t puts;
    _Atomic uint32_t gets; /* the same for a putter waiting for room */
    uint64_t head, used;                 /* ring offset of the oldest byte; bytes in use */
    uint64_t count, maxsize, unfinished; /* items */
    uint64_t cap;
    unsigned char data[];
};

#define W (TK__WAIT_SHARED | TK__WAIT_CANCEL)

#define SQ_LOCK_SPIN 200

static int broken_error(void)
{
    return tk__error(TK_EBROKEN, "queue is broken: a process died while using it");
}

static void wake(_Atomic uint32_t *seq, uint32_t nwait, int n)
{
    if (nwait == 0)
        return;
    atomic_fetch_add(seq, 1);
    tk__futex_wake(seq, n, TK__WAIT_SHARED);
}

static void wake_all(struct tk__shq *s)
{
    wake(&s->not_empty, s->getters, INT_MAX);
    wake(&s->not_full, s->putters, INT_MAX);
    wake(&s->all_done, s->joiners, INT_MAX);
}

/* Lock held: wakes one sleeping getter unless one is already on its way. */
static void wake_getter(struct tk__shq *s, struct tk__qwake *wk)
{
    if (s->getters > 0 && !s->get_wake_pending) {
        s->get_wake_pending = 1;
        tk__qwake_add(wk, &s->not_empty, s->getters, 1);
    }
}

/* Locks the queue. Returns 0, or TK_EBROKEN with the lock held when the
 * queue is (or has just become) broken: the caller unlocks and fails. */
static int sq_lock(struct tk__shq *s)
{
    /* The lock is held for a copy of one item: a contender spins a little
     * rather than sleeping in the kernel (and making the holder pay a
     * wake-up on unlock). A robust mutex has no adaptive kind, so by hand. */
    int r = EBUSY;
    for (int i = 0; i < SQ_LOCK_SPIN && r == EBUSY; i++) {
        r = pthread_mutex_trylock(&s->lock);
        if (r == EBUSY)
            tk__cpu_relax();
    }
    if (r == EBUSY)
        r = pthread_mutex_lock(&s->lock);
    if (r == EOWNERDEAD) {
        s->broken = 1;
        pthread_mutex_consistent(&s->lock);
        wake_all(s);
    } else if (r != 0) {
        tk__panic("tk_queue: cannot lock the shared queue mutex (%d)", r);
    }
    return s->broken ? broken_error() : 0;
}

static void sq_unlock(struct tk__shq *s)
{
    pthread_mutex_unlock(&s->lock);
}

static int sq_wait(struct tk__shq *s, _Atomic uint32_t *seq, uint32_t *nwait,
                   const tk__deadline *d)
{
    uint32_t v = atomic_load(seq);
    (*nwait)++;
    sq_unlock(s);
    int r = tk__futex_wait(seq, v, W, d);
    int b = sq_lock(s);
    (*nwait)--;
    return b < 0 ? b : r;
}

static int wait_error(int r, int timeout_code, const char *what)
{
    if (r == TK_ECANCELED)
        return tk__error(r, "%s interrupted: a stop was requested", what);
    if (r == TK_ETIMEDOUT)
        return tk__error(timeout_code, "%s timed out: %s", what,
                         timeout_code == TK_EFULL    ? "the queue is full"
                         : timeout_code == TK_EEMPTY ? "the queue is empty"
                                                     : "unfinished tasks remain");
    return r; /* TK_EBROKEN, already described */
}

/* ------------------------------------------------------------ lifecycle */

int tk__shq_init(tk_queue *q, size_t maxsize, size_t capacity)
{
    size_t len = sizeof(struct tk__shq) + capacity;
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return tk__os_error(errno, "cannot map the shared queue");
    struct tk__shq *s = m;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    int r = pthread_mutex_init(&s->lock, &a);
    pthread_mutexattr_destroy(&a);
    if (r != 0) {
        munmap(m, len);
        return tk__os_error(r, "cannot create the shared queue's lock");
    }
    s->cap = capacity;
    s->maxsize = maxsize;
    q->shm = s;
    q->map_len = len;
    return 0;
}

void tk__shq_free(tk_queue *q)
{
    /* Other processes may still use the queue: only unmap our view. */
    munmap(q->shm, q->map_len);
}

/* ----------------------------------------------------------------- ring */

static void ring_write(struct tk__shq *s, uint64_t off, const void *src, size_t n)
{
    size_t at = (size_t)(off % s->cap), first = s->cap - at < n ? s->cap - at : n;
    memcpy(s->data + at, src, first);
    memcpy(s->data, (const unsigned char *)src + first, n - first);
}

static void ring_read(struct tk__shq *s, uint64_t off, void *dst, size_t n)
{
    size_t at = (size_t)(off % s->cap), first = s->cap - at < n ? s->cap - at : n;
    memcpy(dst, s->data + at, first);
    memcpy((unsigned char *)dst + first, s->data, n - first);
}

static bool has_room(struct tk__shq *s, size_t need)
{
    return (s->maxsize == 0 || s->count < s->maxsize) && s->used + need <= s->cap;
}

/* ------------------------------------------------------------------- put */

static bool get_seen(void *arg);

/* Lock held, no room: releases the lock, watches for a get briefly
 * (spin_int.h), and takes the lock again. */
static void spin_for_get(tk_queue *q, int *r, long long *ended);

static int put_encoded(tk_queue *q, const void *enc, size_t len, const tk__deadline *d)
{
    struct tk__shq *s = q->shm;
    struct tk__qwake wk = {.flags = TK__WAIT_SHARED};
    int r = sq_lock(s), err = 0;
    bool spun = d->kind == TK__DL_POLL || tk__stop_pending();
    long long ended = -1;
    while (r == 0) {
        if (s->closed) {
            r = tk__error(TK_ECLOSED, TK__Q_CLOSED);
        } else if (has_room(s, 4 + len)) {
            uint32_t n = (uint32_t)len;
            ring_write(s, s->head + s->used, &n, 4);
            ring_write(s, s->head + s->used + 4, enc, len);
            s->used += 4 + len;
            s->count++;
            s->unfinished++;
            atomic_fetch_add_explicit(&s->puts, 1, memory_order_release);
            wake_getter(s, &wk);
            break;
        } else if (err) {
            r = wait_error(err, TK_EFULL, "put");
        } else if (!spun) {
            /* A full ring with a busy getter: room comes within
             * microseconds, and then nobody pays a wake-up. */
            spun = true;
            spin_for_get(q, &r, &ended);
        } else {
            err = sq_wait(s, &s->not_full, &s->putters, d);
            if (err == TK_EBROKEN)
                r = err;
            if (ended >= 0 && err == 0)
                tk__spin_learn(&q->spin_put, ended);
            ended = -1;
        }
    }
    sq_unlock(s);
    tk__qwake_flush(&wk);
    return r;
}

/* Items up to this size are encoded on the stack: no allocation per put
 * or get for the small messages queues mostly carry. */
#define SHQ_STACK_ITEM 4096

int tk__shq_put(tk_queue *q, tk_args *item, const tk__deadline *d)
{
    size_t len = 0;
    int r = tk__args_encoded_len(item, NULL, &len);
    if (r < 0)
        return r;
    if (len + 4 > q->shm->cap)
        return tk__error(TK_EOVERFLOW, "item too large for the queue: %zu bytes encoded, "
                         "buffer holds %llu", len, (unsigned long long)q->shm->cap - 4);
    unsigned char small[SHQ_STACK_ITEM];
    unsigned char *enc = len <= sizeof small ? small : tk__malloc(len);
    if (!enc)
        return TK_ENOMEM;
    tk__args_encode_to(item, NULL, enc);
    r = put_encoded(q, enc, len, d);
    if (enc != small)
        tk__free(enc);
    if (r == 0)
        tk_args_free(item);
    return r;
}

/* ------------------------------------------------------------------- get */

/* Takes the oldest item's encoding out of the ring into `small` when it
 * fits, else into a new buffer. */
static int take_item(struct tk__shq *s, unsigned char *small, unsigned char **buf, size_t *len,
                     struct tk__qwake *wk)
{
    uint32_t n;
    ring_read(s, s->head, &n, 4);
    if ((uint64_t)n + 4 > s->used) {
        s->broken = 1;
        wake_all(s);
        return broken_error();
    }
    /* Allocated before the item leaves the ring, so a failure loses nothing. */
    *buf = n <= SHQ_STACK_ITEM ? small : tk__malloc(n);
    if (!*buf)
        return TK_ENOMEM;
    ring_read(s, s->head + 4, *buf, n);
    s->head = (s->head + 4 + n) % s->cap;
    s->used -= 4 + (uint64_t)n;
    s->count--;
    atomic_fetch_add_explicit(&s->gets, 1, memory_order_release);
    *len = n;
    /* Items differ in size: every putter must re-check whether it fits. */
    tk__qwake_add(wk, &s->not_full, s->putters, INT_MAX);
    return 0;
}

struct put_watch {
    struct tk__shq *s;
    uint32_t seen;
};

static bool put_seen(void *arg)
{
    struct put_watch *w = arg;
    return atomic_load_explicit(&w->s->puts, memory_order_relaxed) != w->seen;
}

/* Lock held, queue empty: releases the lock, watches for a put briefly
 * (spin_int.h), and takes the lock again. The watch yields the CPU between
 * bursts, as tk_conn's receive does: a forked peer often runs on the
 * waiter's CPU, and a plain spin there holds back the very put it waits
 * for (quick-bench ping-pong: 27-30 us a round trip against 16 us). */
static void spin_for_put(tk_queue *q, int *r, long long *ended)
{
    struct put_watch w = {q->shm, atomic_load_explicit(&q->shm->puts, memory_order_relaxed)};
    sq_unlock(q->shm);
    tk__spin_yielding(&q->spin, put_seen, &w, ended);
    *r = sq_lock(q->shm);
}

static bool get_seen(void *arg)
{
    struct put_watch *w = arg;
    return atomic_load_explicit(&w->s->gets, memory_order_relaxed) != w->seen;
}

static void spin_for_get(tk_queue *q, int *r, long long *ended)
{
    struct put_watch w = {q->shm, atomic_load_explicit(&q->shm->gets, memory_order_relaxed)};
    sq_unlock(q->shm);
    tk__spin_yielding(&q->spin_put, get_seen, &w, ended);
    *r = sq_lock(q->shm);
}

int tk__shq_get(tk_queue *q, tk_args **item, const tk__deadline *d)
{
    struct tk__shq *s = q->shm;
    struct tk__qwake wk = {.flags = TK__WAIT_SHARED};
    unsigned char small[SHQ_STACK_ITEM];
    unsigned char *buf = NULL;
    size_t len = 0;
    int r = sq_lock(s), err = 0;
    bool spun = d->kind == TK__DL_POLL || tk__stop_pending();
    long long ended = -1;
    while (r == 0) {
        if (s->count > 0) {
            r = take_item(s, small, &buf, &len, &wk);
            if (s->count > 0)
                wake_getter(s, &wk);
            break;
        }
        if (s->closed) {
            r = tk__error(TK_ECLOSED, TK__Q_CLOSED);
        } else if (err) {
            r = wait_error(err, TK_EEMPTY, "get");
        } else if (!spun) {
            spun = true;
            spin_for_put(q, &r, &ended);
        } else {
            err = sq_wait(s, &s->not_empty, &s->getters, d);
            s->get_wake_pending = 0;
            if (err == TK_EBROKEN)
                r = err;
            if (ended >= 0 && err == 0)
                tk__spin_learn(&q->spin, ended);
            ended = -1;
        }
    }
    if (r < 0 && r != TK_EBROKEN && s->count > 0)
        wake_getter(s, &wk); /* hand on a wake-up we did not use */
    sq_unlock(s);
    tk__qwake_flush(&wk);
    if (r == 0)
        r = tk_args_decode(buf, len, item, NULL);
    if (buf != small)
        tk__free(buf);
    return r;
}

/* ------------------------------------------------------------ the rest */

size_t tk__shq_size(tk_queue *q)
{
    struct tk__shq *s = q->shm;
    sq_lock(s);
    size_t n = (size_t)s->count;
    sq_unlock(s);
    return n;
}

int tk__shq_task_done(tk_queue *q)
{
    struct tk__shq *s = q->shm;
    struct tk__qwake wk = {.flags = TK__WAIT_SHARED};
    int r = sq_lock(s);
    if (r == 0) {
        if (s->unfinished == 0)
            r = tk__error(TK_ESTATE, TK__Q_TOO_MANY);
        else if (--s->unfinished == 0)
            tk__qwake_add(&wk, &s->all_done, s->joiners, INT_MAX);
    }
    sq_unlock(s);
    tk__qwake_flush(&wk);
    return r;
}

int tk__shq_join(tk_queue *q, const tk__deadline *d)
{
    struct tk__shq *s = q->shm;
    int r = sq_lock(s), err = 0;
    while (r == 0 && s->unfinished > 0) {
        if (err) {
            r = wait_error(err, TK_ETIMEDOUT, "join");
        } else {
            err = sq_wait(s, &s->all_done, &s->joiners, d);
            if (err == TK_EBROKEN)
                r = err;
        }
    }
    sq_unlock(s);
    return r;
}

int tk__shq_close(tk_queue *q)
{
    struct tk__shq *s = q->shm;
    int r = sq_lock(s);
    if (r == 0) {
        s->closed = 1;
        wake_all(s);
    }
    sq_unlock(s);
    return r;
}
