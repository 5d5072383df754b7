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
    /* Thread queues. */
    pthread_mutex_t lock;
    tk_args **ring;
    size_t cap, head, count, maxsize, unfinished;
    bool closed;
    unsigned getters, putters, joiners;          /* threads blocked in each wait */
    _Atomic uint32_t not_empty, not_full, all_done; /* sequence words */
};

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
