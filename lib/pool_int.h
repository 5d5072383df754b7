/*
 * pool_int.h - what future.c, pool.c (thread pools, map, registry) and
 * procpool.c (process pools) share.
 *
 * Lock order: pools_lock (pool.c) -> tk_pool.lock -> tk_future.cb_lock.
 */
#ifndef TK_POOL_INT_H
#define TK_POOL_INT_H

#include <pthread.h>
#include <stdalign.h>

#include "args_int.h"
#include "internal.h"
#include "taskkit/pool.h"

enum { TK__F_PENDING, TK__F_RUNNING, TK__F_CANCELLING, TK__F_DONE };

struct tk__cb {
    void (*cb)(tk_future *f, void *ud);
    void *ud;
    struct tk__cb *next;
};

/* What only map chunks and process-pool futures need: allocated with
 * the future, behind it, so a thread pool's submitted future stays small
 * (it then lives in the allocator's fast bins). */
struct tk__fx {
    tk_args **items;           /* chunk: nitems bags (the caller's array) */
    tk_args **results;         /* chunk: where results go (the caller's array) */
    size_t fail_index;         /* chunk: the first failed item */
    void *enc;                 /* process pools: the encoded task frame */
    size_t enc_len;
};

/* A link in a thread pool's queue (see pool.c). */
struct tk__qnode {
    struct tk__qnode *_Atomic next;
};

struct tk_future {
    atomic_int refs;           /* the caller's and the pool's */
    atomic_int state;          /* TK__F_* */
    _Atomic uint32_t seq;      /* sequence word waiters sleep on */
    atomic_int waiters;        /* skip the wake-up system call when 0 */
    atomic_flag cb_lock;       /* guards cbs and pool */
    bool cancelled;            /* cancelled before it started */
    bool interrupted;          /* process pools: the worker was killed for it */
    int status;                /* valid once DONE */
    tk_args *result;           /* NULL: empty */
    char *error;               /* the failed task's text, or NULL */
    struct tk__cb *cbs;
    tk_pool *pool;             /* while not done: for interrupt */
    /* The task: a submitted call has one bag in args (nitems 0); a chunk
     * (map) has nitems bags at x->items. */
    tk_task fn;
    tk_args *args;
    tk_kwargs *kwargs;
    size_t nitems;
    struct tk__fx *x;          /* NULL for a thread pool's submitted call */
    tk_pool *home;             /* thread pools: the pool whose cache takes it back (a ref) */
    union {
        tk_future *next;       /* a process pool's queue; shutdown's list */
        struct tk__qnode qn;   /* a thread pool's queue */
    };
};

/* A new future with refs 2 (caller + pool), state PENDING, with an
 * extension (x) when `ext`. Takes args and kwargs (frees them on failure). */
tk_future *tk__future_new(tk_task fn, tk_args *args, tk_kwargs *kwargs, bool ext);
/* Makes f (zeroed, no extension) a new future as tk__future_new does. */
void tk__future_init(tk_future *f, tk_task fn, tk_args *args, tk_kwargs *kwargs);
/* Thread pools: takes back the memory of a released future of p (its
 * `home`) and drops the future's pool reference. */
void tk__pool_recycle(tk_pool *p, tk_future *f);
/* Drops one reference. */
void tk__future_unref(tk_future *f);
/* Marks a RUNNING future done with status/result/error (taken) and runs
 * its callbacks in the calling thread. Does not drop the pool's ref. */
void tk__future_finish(tk_future *f, int status, tk_args *result, char *error);
/* Cancels a PENDING future; true if this call cancelled it. */
bool tk__future_cancel_pending(tk_future *f);
/* Waits for DONE; `flags` as for tk__futex_wait (TK__WAIT_CANCEL or 0). */
int tk__future_wait(tk_future *f, unsigned flags, const tk__deadline *d);
/* Frees the task's inputs: a chunk's once run, a call's when the future
 * goes (or either when cancelled). */
void tk__future_drop_inputs(tk_future *f);


/* Runs a future's task (or chunk) in this process and finishes it. */
void tk__future_run(tk_future *f, tk_args **scratch);
/* A task's error text after it failed: a copy of tk_last_error() or of a
 * fallback naming the status. */
char *tk__task_error_text(int status);

/* ------------------------------------------------------------------ pool */

struct tk__tworker {
    tk_pool *pool;
    pthread_t th;
    int index;
    struct tk__stop stop;  /* per-task stop: reset after every task */
    tk_future *current;    /* guarded by pool->lock */
    tk_args *scratch;      /* an empty result bag kept between tasks */
    /* Parking: an idle worker sleeps on its own word; a submitter that
     * finds it parked unparks it (pool lock held) and then wakes it, so
     * each wake-up system call goes to a worker that really sleeps, and at
     * most once. */
    _Atomic uint32_t wake_seq;
    atomic_int spin;                  /* spin budget before parking (spin_int.h) */
    bool parked;                      /* guarded by pool->lock */
    struct tk__tworker *next_parked;  /* guarded by pool->lock */
};

struct tk__pp; /* process pool state (procpool.c) */

#define TK__CACHE_LINE 64

struct tk_pool {
    void *mem;              /* the allocation (the pool is aligned in it) */
    tk_pool_kind kind;
    int nworkers;
    int id;
    pid_t owner;
    pthread_mutex_t join_lock;
    tk_future *head, *tail; /* process pools: submitted, not started */
    size_t queued;          /* process pools */
    /* Mirror of `shutdown` (written under the lock), read without it. */
    atomic_bool stopping;
    atomic_bool cancel_all; /* thread pools: shutdown cancels what has not started */
    /* Freed from one of its own threads: nobody will join its threads, so
     * each detaches itself as it ends (tk__pool_thread_exit). */
    atomic_bool orphaned;
    bool shutdown;          /* refuse new work; workers leave when drained */
    bool joined;
    tk_target init;
    tk_args *initargs;
    struct tk__tworker *tw;
    struct tk__pp *pp;
    tk_pool *next_live;     /* the registry (pool.c) */

    /* Thread pools keep what submitters write, what workers write and what
     * both write on separate cache lines (pool.c explains the queue). */
    alignas(TK__CACHE_LINE) struct tk__qnode *_Atomic qtail; /* submitters */
    atomic_int submitting;  /* submitters between their shutdown check and push */

    alignas(TK__CACHE_LINE) pthread_mutex_t lock; /* workers (and process pools) */
    struct tk__qnode *_Atomic qhead;
    struct tk__tworker *parked; /* thread pools: parked workers (a stack) */

    alignas(TK__CACHE_LINE) atomic_int spinning; /* thread pools: workers spinning */
    atomic_int nparked;     /* thread pools: how many are on `parked` */

    /* Thread pools: released futures kept for reuse (see pool.c). */
    alignas(TK__CACHE_LINE) atomic_flag fc_lock; /* a spin lock: held for a pointer swap */
    /* The user's, the end-of-program snapshot's, and one per live future
     * of a thread pool (so its cache outlives the futures). */
    atomic_int refs;
    tk_future *fc_head;     /* linked through `next` */
    size_t fc_n;

    alignas(TK__CACHE_LINE) struct tk__qnode stub; /* the queue's placeholder */
    char pad_[TK__CACHE_LINE - sizeof(struct tk__qnode)];
};

/* A pool's own threads (thread workers, a process pool's result thread)
 * each hold a reference to it, so a tk_pool_free() from inside one of them
 * (a task, a done-callback) cannot free it under the others' feet.
 * _enter takes the reference before the thread is created (_leave gives it
 * back if creation fails); _exit is the thread's last call. */
void tk__pool_thread_enter(tk_pool *p);
void tk__pool_thread_leave(tk_pool *p);
void tk__pool_thread_exit(tk_pool *p);

/* The pool whose worker (or result thread) is the calling thread. */
extern __thread tk_pool *tk__current_pool;

void tk__pool_lock(tk_pool *p);
void tk__pool_unlock(tk_pool *p);
/* Pops the oldest queued future (pool lock held), or NULL. */
tk_future *tk__pool_pop(tk_pool *p);
/* Blocks the calling thread's asynchronous signals, saving the old mask. */
void tk__block_signals(sigset_t *old);

/* Process pools. */
int tk__pp_start(tk_pool *p);
int tk__pp_encode(tk_future *f);        /* builds f->x->enc from its inputs */
/* A done chunk of a process pool, whose first item is map item `base`:
 * decodes its results into results[] (the failed ones stay NULL). 0, or
 * TK_ETASK for a result that cannot be decoded. */
int tk__pp_chunk_results(tk_future *f, tk_args **results, size_t base);
void tk__pp_notify(tk_pool *p);         /* pool lock held: new work or shutdown */
void tk__pp_join(tk_pool *p);
void tk__pp_free(tk_pool *p);
int tk__pp_interrupt(tk_pool *p, tk_future *f); /* pool lock held */

#endif /* TK_POOL_INT_H */
