/*
 * queue.c - tk_queue: the public calls, and the thread queue.
 *
 * A thread queue is a growable ring of tk_args pointers under one mutex.
 * Blocked getters, putters and joiners sleep on futex *sequence words*
 * rather than condition variables, because every wait must be a
 * cancellation point and the runtime's stop mechanism wakes a thread by
 * bumping the word it sleeps on (internal.h). A waker bumps the word under
 * the lock, so a waiter that read the word under the lock cannot miss it.
 *
 * Wake-ups are handed on: a put wakes one getter, and a getter that leaves
 * without an item (timeout, stop) while items remain wakes the next, so a
 * wake-up is never lost to a waiter that gave up.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "queue_int.h"

#define QUEUE_MIN_CAP 8
#define SHQ_MIN_CAPACITY ((size_t)64)
#define SHQ_MAX_CAPACITY ((size_t)1 << 30)

static void q_lock(tk_queue *q)
{
    if (pthread_mutex_lock(&q->lock) != 0)
        tk__panic("tk_queue: cannot lock the queue mutex");
}

static void q_unlock(tk_queue *q)
{
    pthread_mutex_unlock(&q->lock);
}

/* Sleeps on `seq` with the lock released; `nwait` counts the sleepers so
 * wakers skip the system call when nobody waits. */
static int q_wait(tk_queue *q, _Atomic uint32_t *seq, unsigned *nwait, const tk__deadline *d)
{
    uint32_t s = atomic_load(seq);
    (*nwait)++;
    q_unlock(q);
    int r = tk__futex_wait(seq, s, TK__WAIT_CANCEL, d);
    q_lock(q);
    (*nwait)--;
    return r;
}

static void q_wake(_Atomic uint32_t *seq, unsigned nwait, int n)
{
    if (nwait == 0)
        return;
    atomic_fetch_add(seq, 1);
    tk__futex_wake(seq, n, 0);
}

/* Unlocks, then makes the wake-ups decided under the lock. */
static void q_unlock_wake(tk_queue *q, struct tk__qwake *wk)
{
    q_unlock(q);
    tk__qwake_flush(wk);
}

static int wait_error(int r, const char *op)
{
    if (r == TK_ECANCELED)
        return tk__error(r, "%s interrupted: a stop was requested", op);
    if (strcmp(op, "put") == 0)
        return tk__error(TK_EFULL, "put timed out: the queue is full");
    if (strcmp(op, "get") == 0)
        return tk__error(TK_EEMPTY, "get timed out: the queue is empty");
    return tk__error(TK_ETIMEDOUT, "join timed out: unfinished tasks remain");
}

/* ---------------------------------------------------------- constructors */

static tk_queue *thread_queue_new(size_t maxsize)
{
    tk_queue *q = tk__calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->maxsize = maxsize;
    pthread_mutex_init(&q->lock, NULL);
    return q;
}

TK_API tk_queue *tk_queue_new_ex(size_t maxsize, unsigned flags, size_t capacity_bytes)
{
    if (flags & ~TK_SHARED)
        return tk__error_null(TK_EINVAL, "tk_queue_new: unknown flags 0x%x", flags & ~TK_SHARED);
    if (!(flags & TK_SHARED))
        return thread_queue_new(maxsize);
    if (capacity_bytes == 0)
        capacity_bytes = TK_QUEUE_DEFAULT_CAPACITY;
    if (capacity_bytes < SHQ_MIN_CAPACITY || capacity_bytes > SHQ_MAX_CAPACITY)
        return tk__error_null(TK_EINVAL, "tk_queue_new_ex: capacity %zu bytes out of range "
                              "(%zu to %zu)", capacity_bytes, SHQ_MIN_CAPACITY, SHQ_MAX_CAPACITY);
    tk_queue *q = tk__calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->shared = true;
    if (tk__shq_init(q, maxsize, capacity_bytes) < 0) {
        tk__free(q);
        return NULL;
    }
    return q;
}

TK_API tk_queue *tk_queue_new(size_t maxsize, unsigned flags)
{
    return tk_queue_new_ex(maxsize, flags, 0);
}

TK_API void tk_queue_free(tk_queue *q)
{
    if (!q)
        return;
    if (q->shared) {
        tk__shq_free(q);
    } else {
        for (size_t i = 0; i < q->count; i++)
            tk_args_free(q->ring[(q->head + i) % q->cap]);
        tk__free(q->ring);
        pthread_mutex_destroy(&q->lock);
    }
    tk__free(q);
}

/* ------------------------------------------------------------------- put */

/* Doubles the ring; the items keep their order. */
static int ring_grow(tk_queue *q)
{
    size_t ncap = q->cap ? q->cap * 2 : QUEUE_MIN_CAP;
    tk_args **n = tk__malloc(ncap * sizeof(tk_args *));
    if (!n)
        return TK_ENOMEM;
    for (size_t i = 0; i < q->count; i++)
        n[i] = q->ring[(q->head + i) % q->cap];
    tk__free(q->ring);
    q->ring = n;
    q->cap = ncap;
    q->head = 0;
    return 0;
}

static int thread_put(tk_queue *q, tk_args *item, const tk__deadline *d)
{
    struct tk__qwake wk = {0};
    int r = 0, err = 0;
    q_lock(q);
    for (;;) {
        if (q->closed) {
            r = tk__error(TK_ECLOSED, TK__Q_CLOSED);
            break;
        }
        if (q->maxsize == 0 || q->count < q->maxsize) {
            if (q->count == q->cap && (r = ring_grow(q)) < 0)
                break;
            q->ring[(q->head + q->count) % q->cap] = item;
            q->count++;
            q->unfinished++;
            tk__qwake_add(&wk, &q->not_empty, q->getters, 1);
            break;
        }
        if (err) {
            r = wait_error(err, "put");
            break;
        }
        err = q_wait(q, &q->not_full, &q->putters, d);
    }
    /* Pass on a wake-up this putter may have taken but not used. */
    if (r < 0 && !q->closed && (q->maxsize == 0 || q->count < q->maxsize))
        tk__qwake_add(&wk, &q->not_full, q->putters, 1);
    q_unlock_wake(q, &wk);
    return r;
}

TK_API int tk_queue_put(tk_queue *q, tk_args *item, double timeout)
{
    if (!q || !item)
        return tk__error(TK_EINVAL, "tk_queue_put: NULL %s", q ? "item" : "queue");
    tk__deadline d;
    int r = tk__deadline_init(&d, timeout, "tk_queue_put");
    if (r < 0)
        return r;
    return q->shared ? tk__shq_put(q, item, &d) : thread_put(q, item, &d);
}

/* ------------------------------------------------------------------- get */

static int thread_get(tk_queue *q, tk_args **item, const tk__deadline *d)
{
    struct tk__qwake wk = {0};
    int r = 0, err = 0;
    q_lock(q);
    for (;;) {
        if (q->count > 0) {
            *item = q->ring[q->head];
            q->head = (q->head + 1) % q->cap;
            q->count--;
            tk__qwake_add(&wk, &q->not_full, q->putters, 1);
            break;
        }
        if (q->closed) {
            r = tk__error(TK_ECLOSED, TK__Q_CLOSED);
            break;
        }
        if (err) {
            r = wait_error(err, "get");
            break;
        }
        err = q_wait(q, &q->not_empty, &q->getters, d);
    }
    if (r < 0 && q->count > 0)
        tk__qwake_add(&wk, &q->not_empty, q->getters, 1);
    q_unlock_wake(q, &wk);
    return r;
}

TK_API int tk_queue_get(tk_queue *q, tk_args **item, double timeout)
{
    if (item)
        *item = NULL;
    if (!q || !item)
        return tk__error(TK_EINVAL, "tk_queue_get: NULL %s", q ? "item pointer" : "queue");
    tk__deadline d;
    int r = tk__deadline_init(&d, timeout, "tk_queue_get");
    if (r < 0)
        return r;
    return q->shared ? tk__shq_get(q, item, &d) : thread_get(q, item, &d);
}

/* ------------------------------------------------------------ the rest */

TK_API size_t tk_queue_size(tk_queue *q)
{
    if (!q)
        return 0;
    if (q->shared)
        return tk__shq_size(q);
    q_lock(q);
    size_t n = q->count;
    q_unlock(q);
    return n;
}

TK_API int tk_queue_task_done(tk_queue *q)
{
    if (!q)
        return tk__error(TK_EINVAL, "tk_queue_task_done: NULL queue");
    if (q->shared)
        return tk__shq_task_done(q);
    struct tk__qwake wk = {0};
    int r = 0;
    q_lock(q);
    if (q->unfinished == 0)
        r = tk__error(TK_ESTATE, TK__Q_TOO_MANY);
    else if (--q->unfinished == 0)
        tk__qwake_add(&wk, &q->all_done, q->joiners, INT_MAX);
    q_unlock_wake(q, &wk);
    return r;
}

TK_API int tk_queue_join(tk_queue *q, double timeout)
{
    if (!q)
        return tk__error(TK_EINVAL, "tk_queue_join: NULL queue");
    tk__deadline d;
    int r = tk__deadline_init(&d, timeout, "tk_queue_join");
    if (r < 0)
        return r;
    if (q->shared)
        return tk__shq_join(q, &d);
    int err = 0;
    r = 0;
    q_lock(q);
    while (q->unfinished > 0) {
        if (err) {
            r = wait_error(err, "join");
            break;
        }
        err = q_wait(q, &q->all_done, &q->joiners, &d);
    }
    q_unlock(q);
    return r;
}

TK_API int tk_queue_close(tk_queue *q)
{
    if (!q)
        return tk__error(TK_EINVAL, "tk_queue_close: NULL queue");
    if (q->shared)
        return tk__shq_close(q);
    q_lock(q);
    q->closed = true;
    q_wake(&q->not_empty, q->getters, INT_MAX);
    q_wake(&q->not_full, q->putters, INT_MAX);
    q_unlock(q);
    return 0;
}
