/*
 * queue_int.h - the two queue kinds behind tk_queue: thread queues
 * (queue.c) store bags in a private ring; shared queues (shqueue.c) store
 * encodings in a ring of bytes in MAP_SHARED memory.
 */
#ifndef TK_QUEUE_INT_H
#define TK_QUEUE_INT_H

#include <pthread.h>

#include "internal.h"
#include "taskkit/queue.h"

struct tk__shq; /* the shared header + ring (shqueue.c) */

struct tk_queue {
    bool shared;
    /* Shared queues: this process's view of the mapping. */
    struct tk__shq *shm;
    size_t map_len;
    atomic_int spin;        /* getters' spin budget (spin_int.h) */
    /* Thread queues. */
    pthread_mutex_t lock;
    tk_args **ring;
    size_t cap, head, count, maxsize, unfinished;
    bool closed;
    unsigned getters, putters, joiners;          /* threads blocked in each wait */
    _Atomic uint32_t not_empty, not_full, all_done; /* sequence words */
};

/*
 * Wake-ups decided under a queue's lock and made after it is released: a
 * sleeper woken while the lock is still held would run straight into it
 * and sleep again (two context switches instead of one). The sequence word
 * is bumped under the lock, so a waiter that read it there cannot miss it.
 */
struct tk__qwake {
    _Atomic uint32_t *word[4];
    int n[4];
    unsigned k, flags;
};

static inline void tk__qwake_add(struct tk__qwake *w, _Atomic uint32_t *seq, unsigned nwait,
                                 int n)
{
    if (nwait == 0 || w->k == 4)
        return;
    atomic_fetch_add(seq, 1);
    w->word[w->k] = seq;
    w->n[w->k++] = n;
}

static inline void tk__qwake_flush(struct tk__qwake *w)
{
    for (unsigned i = 0; i < w->k; i++)
        tk__futex_wake(w->word[i], w->n[i], w->flags);
    w->k = 0;
}

/* Shared-queue halves of the public calls; arguments already checked. */
int tk__shq_init(tk_queue *q, size_t maxsize, size_t capacity);
void tk__shq_free(tk_queue *q);
int tk__shq_put(tk_queue *q, tk_args *item, const tk__deadline *d);
int tk__shq_get(tk_queue *q, tk_args **item, const tk__deadline *d);
size_t tk__shq_size(tk_queue *q);
int tk__shq_task_done(tk_queue *q);
int tk__shq_join(tk_queue *q, const tk__deadline *d);
int tk__shq_close(tk_queue *q);

/* The messages both kinds share. */
#define TK__Q_CLOSED "queue is closed"
#define TK__Q_TOO_MANY "task_done() called too many times"

#endif /* TK_QUEUE_INT_H */
