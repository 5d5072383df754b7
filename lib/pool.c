/*
 * pool.c - tk_pool: the registry of live pools (end-of-program procedure,
 * fork), submission, shutdown, map, and the thread pool's workers.
 *
 * A thread pool is a FIFO of futures (a queue submitters push to without
 * any lock; workers pop under the pool's adaptive mutex) and N worker
 * threads. The hot path makes no system call while the workers are busy:
 * a worker that runs out of work first spins for a few microseconds
 * watching the queue (one worker at a time, yielding the CPU between
 * short bursts, since with its submitters the pool has more threads than
 * CPUs), and only then parks (pushes
 * itself on the parked stack and sleeps on its own futex word). A
 * submitter wakes a worker only when none spins and one is parked, and
 * takes it off the stack under the lock, so a burst of submits wakes each
 * sleeper once rather than once per task; a worker that takes a task while
 * more wait wakes the next sleeper, so a backlog still gets every worker.
 * A worker takes the lock once per task: to mark the previous task over and
 * pop the next.
 *
 * Per-task stops: each worker points its thread's stop state
 * (tk__tls()->stop) at a struct tk__stop of its own. tk_future_interrupt
 * requests a stop there, under the pool lock and only while that worker
 * runs that future; the worker resets it, under the same lock, before the
 * next task. So a stop never leaks into another task.
 */
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool_int.h"
#include "spin_int.h"
#include "taskkit/process.h"

#define POOL_MAX_WORKERS 1024
/* Released futures a thread pool keeps for reuse: up to 8 MiB. Besides
 * the allocator calls, keeping them spares the heap a cycle seen with
 * bursts of tiny tasks: once the futures of a burst are freed, glibc
 * coalesces them with the freed argument bags between them, trims the
 * heap top, and the next burst page-faults it all in again (more than
 * half of the per-task time in bench/pool.c). */
#define POOL_FUTURE_CACHE 65536

__thread tk_pool *tk__current_pool;

static pthread_mutex_t pools_lock = PTHREAD_MUTEX_INITIALIZER;
static tk_pool *live_pools;
static atomic_int thread_pool_ids, process_pool_ids;

static void pools_shutdown_hook(void);
static void pools_prepare(void) { pthread_mutex_lock(&pools_lock); }
static void pools_parent(void) { pthread_mutex_unlock(&pools_lock); }
static void pools_child(void)
{
    /* The child has no pools: the inherited ones are foreign (their owner
     * pid differs) and refuse work. The forking thread took the lock in
     * prepare and is the child's only thread: it releases it (rather than
     * re-initialising it, which ThreadSanitizer sees as a lock still held). */
    live_pools = NULL;
    pthread_mutex_unlock(&pools_lock);
}

static struct tk__module pool_module = {
    .name = "pool",
    .order = 0,
    .shutdown = pools_shutdown_hook,
    .atfork_prepare = pools_prepare,
    .atfork_parent = pools_parent,
    .atfork_child = pools_child,
};

void tk__pool_lock(tk_pool *p)
{
    if (pthread_mutex_lock(&p->lock) != 0)
        tk__panic("tk_pool: cannot lock the pool mutex");
}

void tk__pool_unlock(tk_pool *p)
{
    pthread_mutex_unlock(&p->lock);
}

void tk__block_signals(sigset_t *old)
{
    sigset_t all;
    sigfillset(&all);
    /* Faults must still kill the process, not hang it. */
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGTRAP);
    sigdelset(&all, SIGSYS);
    pthread_sigmask(SIG_BLOCK, &all, old);
}

tk_future *tk__pool_pop(tk_pool *p)
{
    tk_future *f = p->head;
    if (f) {
        p->head = f->next;
        if (!p->head)
            p->tail = NULL;
        f->next = NULL;
        p->queued--;
    }
    return f;
}

/* ----------------------------------------------------- thread pool queue
 *
 * An intrusive multi-producer queue of futures with a placeholder node
 * (the stub), in the manner of D. Vyukov's MPSC queue: a submitter pushes
 * with one atomic exchange of qtail and a store linking the previous node,
 * without the pool lock, so it never waits for a worker that holds it;
 * workers pop under the pool lock (one consumer at a time). The queue is
 * empty when qhead is the stub and nothing follows it. All operations are
 * sequentially consistent: the parking protocol (wait_for_work, enqueue)
 * relies on it.
 */

static tk_future *future_of(struct tk__qnode *n)
{
    return (tk_future *)((char *)n - offsetof(tk_future, qn));
}

static void qpush(tk_pool *p, struct tk__qnode *n)
{
    atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
    struct tk__qnode *prev = atomic_exchange(&p->qtail, n);
    atomic_store(&prev->next, n);
}

/* True when no future is queued (a push still linking counts as queued
 * once linked; its submitter then wakes a parked worker). Safe without the
 * lock: it reads no node but the stub. */
static bool queue_empty(tk_pool *p)
{
    return atomic_load(&p->qhead) == &p->stub && atomic_load(&p->stub.next) == NULL;
}

/* The node after h, which a push in progress is about to link: its
 * submitter was preempted between its two steps at worst. */
static struct tk__qnode *wait_link(struct tk__qnode *h)
{
    struct tk__qnode *next;
    for (int i = 0; (next = atomic_load(&h->next)) == NULL; i++) {
        if (i < 64)
            tk__cpu_relax();
        else
            sched_yield();
    }
    return next;
}

/* Pool lock held: the oldest queued future, or NULL when empty. */
static tk_future *tpop(tk_pool *p)
{
    struct tk__qnode *h = atomic_load(&p->qhead);
    struct tk__qnode *next = atomic_load(&h->next);
    if (h == &p->stub) {
        if (!next)
            return NULL;
        h = next;
        next = atomic_load(&h->next);
    }
    if (!next) {
        /* h is the last one: the stub goes behind it, so that h can leave
         * (unless a push is already in progress behind h). */
        if (h == atomic_load(&p->qtail))
            qpush(p, &p->stub);
        next = wait_link(h);
    }
    atomic_store(&p->qhead, next);
    return future_of(h);
}

/* Pool lock held: wakes one parked worker, if any. The futex call happens
 * after the unlock (the caller passes *towake to wake_parked). */
static struct tk__tworker *unpark_one(tk_pool *p)
{
    struct tk__tworker *w = p->parked;
    if (w) {
        p->parked = w->next_parked;
        w->parked = false;
        atomic_fetch_sub(&p->nparked, 1);
        atomic_fetch_add(&w->wake_seq, 1);
    }
    return w;
}

static void wake_parked(struct tk__tworker *w)
{
    if (w)
        tk__futex_wake(&w->wake_seq, 1, 0);
}

/* Pool lock held: wakes every parked worker (shutdown). */
static void unpark_all(tk_pool *p)
{
    struct tk__tworker *w;
    while ((w = unpark_one(p)) != NULL)
        wake_parked(w); /* rare (shutdown): waking under the lock is fine */
}

static void pool_unref(tk_pool *p)
{
    if (atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    if (p->kind == TK_POOL_PROCESSES)
        tk__pp_free(p);
    if (p->owner == tk__getpid()) {
        pthread_mutex_destroy(&p->lock);
        pthread_mutex_destroy(&p->join_lock);
    }
    for (int i = 0; p->tw && i < p->nworkers; i++) {
        tk_args_free(p->tw[i].scratch);
        if (p->owner == tk__getpid())
            tk__stop_destroy(&p->tw[i].stop);
    }
    for (tk_future *f = p->fc_head, *n; f; f = n) {
        n = f->next;
        tk__free(f);
    }
    tk__free(p->tw);
    tk_args_free(p->initargs);
    tk__free(p->mem);
}

void tk__pool_thread_enter(tk_pool *p)
{
    atomic_fetch_add(&p->refs, 1);
}

void tk__pool_thread_leave(tk_pool *p)
{
    atomic_fetch_sub(&p->refs, 1); /* never the last: the creator holds one */
}

void tk__pool_thread_exit(tk_pool *p)
{
    tk__tls()->stop = NULL;
    tk__current_pool = NULL;
    /* Set before the shutdown that lets us end, so it is seen by now. */
    if (atomic_load(&p->orphaned))
        pthread_detach(pthread_self());
    pool_unref(p); /* may free p, and the worker state we ran on */
}

/* ------------------------------------------------------- thread workers */

static void run_initializer(tk_pool *p, const char *who)
{
    if (!p->init)
        return;
    /* The shared empty bags cost no allocation once made. If making them
     * fails, the initializer cannot run: that is its failure, reported as
     * pool.h documents for a failing initializer, never skipped silently. */
    const tk_kwargs *kw = tk__empty_kwargs();
    const tk_args *a = p->initargs ? p->initargs : tk__empty_args();
    if (!a || !kw || p->init(a, kw) < 0)
        fprintf(stderr, "Exception in initializer of %s: %s\n", who, tk_last_error());
}

/* Called with the pool lock held after a task: the stop it may have
 * received belongs to that task only. */
static void reset_task_stop(struct tk__tworker *w)
{
    w->current = NULL;
    if (atomic_load(&w->stop.requested)) {
        tk__stop_destroy(&w->stop);
        tk__stop_init(&w->stop);
    }
}

static bool work_seen(void *arg)
{
    tk_pool *p = arg;
    return !queue_empty(p) || atomic_load_explicit(&p->stopping, memory_order_relaxed);
}

/* Shut down, and no future is queued or still being pushed. The order of
 * the reads matters: a submitter that passed its shutdown check counts in
 * `submitting` until its future is linked. */
static bool drained(tk_pool *p)
{
    return atomic_load(&p->stopping) && atomic_load(&p->submitting) == 0 && queue_empty(p);
}

/* Pool lock held: takes w off the parked stack if it is still there. */
static void unpark_self(tk_pool *p, struct tk__tworker *w)
{
    if (!w->parked)
        return;
    for (struct tk__tworker **pp = &p->parked; *pp; pp = &(*pp)->next_parked)
        if (*pp == w) {
            *pp = w->next_parked;
            break;
        }
    w->parked = false;
    atomic_fetch_sub(&p->nparked, 1);
}

/* Spins briefly (without the lock) until work or shutdown shows up. Only
 * one worker spins at a time: more would take the CPUs the submitters
 * need, and one is enough to pick up the next task without a wake-up.
 * *ended is set (>= 0) when this worker spun in vain. */
static bool spin_for_work(tk_pool *p, struct tk__tworker *w, long long *ended)
{
    int none = 0;
    if (!atomic_compare_exchange_strong(&p->spinning, &none, 1))
        return false;
    bool seen = tk__spin_yielding(&w->spin, work_seen, p, ended);
    atomic_store(&p->spinning, 0);
    return seen;
}

/* Pool lock held, queue empty: spins, then parks until a submitter or
 * shutdown unparks it. Returns with the lock held. */
static void wait_for_work(tk_pool *p, struct tk__tworker *w)
{
    long long ended = -1;
    tk__pool_unlock(p);
    if (atomic_load(&p->stopping)) {
        /* Not drained: a submitter is between its shutdown check and
         * its push (or its refusal). It is about to finish. */
        sched_yield();
        tk__pool_lock(p);
        return;
    }
    bool seen = spin_for_work(p, w, &ended);
    tk__pool_lock(p);
    if (seen || !queue_empty(p) || atomic_load(&p->stopping))
        return;
    uint32_t s = atomic_load(&w->wake_seq);
    w->parked = true;
    w->next_parked = p->parked;
    p->parked = w;
    atomic_fetch_add(&p->nparked, 1);
    /* A submitter links its future, then looks for parked workers: if it
     * looked before we counted ourselves, we see its future now. */
    if (!queue_empty(p) || atomic_load(&p->stopping)) {
        unpark_self(p, w);
        return;
    }
    tk__pool_unlock(p);
    tk__deadline forever = {.kind = TK__DL_FOREVER};
    tk__futex_wait(&w->wake_seq, s, 0, &forever);
    if (ended >= 0)
        tk__spin_learn(&w->spin, ended);
    tk__pool_lock(p);
    unpark_self(p, w); /* after a spurious wake-up */
}

static void *thread_worker(void *arg)
{
    struct tk__tworker *w = arg;
    tk_pool *p = w->pool;
    char name[32];
    snprintf(name, sizeof name, "ThreadPool-%d_%d", p->id, w->index);
    pthread_setname_np(pthread_self(), name);
    tk__tls()->stop = &w->stop;
    tk__current_pool = p;
    run_initializer(p, name);
    tk__pool_lock(p);
    for (;;) {
        tk_future *f = tpop(p);
        if (!f) {
            if (drained(p))
                break;
            wait_for_work(p, w);
            continue;
        }
        if (atomic_load(&p->cancel_all)) {
            /* Queued by a submit that raced with shutdown(cancel_futures).
             * Cancelling runs callbacks: not under the lock. */
            tk__pool_unlock(p);
            tk__future_cancel_pending(f);
            tk__future_unref(f);
            tk__pool_lock(p);
            continue;
        }
        int st = TK__F_PENDING;
        if (!atomic_compare_exchange_strong(&f->state, &st, TK__F_RUNNING)) {
            tk__future_unref(f); /* cancelled while queued */
            continue;
        }
        w->current = f;
        /* More work than this worker: hand it to a parked one. */
        struct tk__tworker *other = !queue_empty(p) ? unpark_one(p) : NULL;
        tk__pool_unlock(p);
        wake_parked(other);
        tk__future_run(f, &w->scratch);
        tk__future_unref(f);
        tk__pool_lock(p);
        reset_task_stop(w);
    }
    tk__pool_unlock(p);
    tk__pool_thread_exit(p);
    return NULL;
}

static int start_thread_workers(tk_pool *p)
{
    sigset_t old;
    tk__block_signals(&old); /* inherited by the workers from birth */
    int r = 0, i;
    for (i = 0; i < p->nworkers; i++) {
        struct tk__tworker *w = &p->tw[i];
        w->pool = p;
        w->index = i;
        tk__stop_init(&w->stop);
        tk__pool_thread_enter(p);
        int e = pthread_create(&w->th, NULL, thread_worker, w);
        if (e != 0) {
            tk__pool_thread_leave(p);
            r = tk__os_error(e, "cannot start a pool worker thread");
            break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r < 0) {
        /* Stop and join the ones that started. */
        tk__pool_lock(p);
        p->shutdown = true;
        atomic_store(&p->stopping, true);
        unpark_all(p);
        tk__pool_unlock(p);
        for (int j = 0; j < i; j++)
            pthread_join(p->tw[j].th, NULL);
        p->joined = true;
    }
    return r;
}

/* --------------------------------------------------------- constructors */

static tk_pool *pool_alloc(tk_pool_kind kind, int workers, tk_target init, tk_args *initargs)
{
    /* Aligned, so that the hot fields' cache lines are the pool's own. */
    void *mem = tk__calloc(1, sizeof(tk_pool) + TK__CACHE_LINE);
    if (!mem) {
        tk_args_free(initargs);
        return NULL;
    }
    size_t skip = (TK__CACHE_LINE - (uintptr_t)mem % TK__CACHE_LINE) % TK__CACHE_LINE;
    tk_pool *p = (tk_pool *)((char *)mem + skip);
    p->mem = mem;
    atomic_init(&p->qhead, &p->stub);
    atomic_init(&p->qtail, &p->stub);
    p->kind = kind;
    p->nworkers = workers;
    p->owner = tk__getpid();
    p->init = init;
    p->initargs = initargs;
    atomic_init(&p->refs, 1);
    /* Adaptive: the lock is held for a few instructions at a time, so a
     * contender spins a little rather than sleeping in the kernel. */
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
    pthread_mutex_init(&p->lock, &ma);
    pthread_mutexattr_destroy(&ma);
    pthread_mutex_init(&p->join_lock, NULL);
    atomic_flag_clear(&p->fc_lock);
    if (kind == TK_POOL_THREADS) {
        p->id = atomic_fetch_add(&thread_pool_ids, 1) + 1;
        p->tw = tk__calloc((size_t)workers, sizeof *p->tw);
        if (!p->tw) {
            pool_unref(p);
            return NULL;
        }
    } else {
        p->id = atomic_fetch_add(&process_pool_ids, 1) + 1;
    }
    return p;
}

static int cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

TK_API tk_pool *tk_pool_new_ex(tk_pool_kind kind, int workers, tk_target initializer,
                               tk_args *initargs)
{
    if (kind != TK_POOL_THREADS && kind != TK_POOL_PROCESSES) {
        tk_args_free(initargs);
        return tk__error_null(TK_EINVAL, "tk_pool_new: unknown pool kind %d", (int)kind);
    }
    if (workers < 0 || workers > POOL_MAX_WORKERS) {
        tk_args_free(initargs);
        return tk__error_null(TK_EINVAL, "max_workers must be between 1 and %d, not %d",
                              POOL_MAX_WORKERS, workers);
    }
    if (workers == 0)
        workers = cpu_count();
    if (kind == TK_POOL_PROCESSES && tk_process_daemon(tk_current_process())) {
        /* multiprocessing's rule: a daemonic process is killed when its
         * parent ends and could not clean up children of its own. */
        tk_args_free(initargs);
        return tk__error_null(TK_ESTATE, "daemonic processes are not allowed to have children");
    }
    if (tk__runtime_starting() < 0) {
        tk_args_free(initargs);
        return NULL;
    }
    tk__module_register(&pool_module);
    tk_pool *p = pool_alloc(kind, workers, initializer, initargs);
    if (!p)
        return NULL;
    int r = kind == TK_POOL_THREADS ? start_thread_workers(p) : tk__pp_start(p);
    if (r < 0) {
        pool_unref(p);
        return NULL;
    }
    pthread_mutex_lock(&pools_lock);
    p->next_live = live_pools;
    live_pools = p;
    pthread_mutex_unlock(&pools_lock);
    return p;
}

TK_API tk_pool *tk_pool_new(tk_pool_kind kind, int workers)
{
    return tk_pool_new_ex(kind, workers, NULL, NULL);
}

/* ------------------------------------------------------------- submit */

static int check_usable(tk_pool *p)
{
    if (p->owner != tk__getpid())
        return tk__error(TK_ESTATE, "cannot schedule new futures after shutdown "
                                    "(the pool belongs to a parent process)");
    return 0;
}

/* Thread pools: queues f without the pool lock, and wakes a parked worker
 * when no worker spins (a spinning one takes it without a wake-up). */
static int tenqueue(tk_pool *p, tk_future *f)
{
    atomic_fetch_add(&p->submitting, 1);
    if (atomic_load(&p->stopping)) {
        atomic_fetch_sub(&p->submitting, 1);
        tk__future_unref(f);
        return tk__error(TK_ESTATE, "cannot schedule new futures after shutdown");
    }
    f->pool = p;
    qpush(p, &f->qn);
    atomic_fetch_sub(&p->submitting, 1);
    if (atomic_load(&p->spinning) == 0 && atomic_load(&p->nparked) > 0) {
        tk__pool_lock(p);
        struct tk__tworker *w = unpark_one(p);
        tk__pool_unlock(p);
        wake_parked(w);
    }
    return 0;
}

/* Queues f (which holds the pool's ref) and wakes a worker. Takes f's
 * pool reference on failure. */
static int enqueue(tk_pool *p, tk_future *f)
{
    if (p->kind == TK_POOL_THREADS)
        return tenqueue(p, f);
    tk__pool_lock(p);
    if (p->shutdown) {
        tk__pool_unlock(p);
        tk__future_unref(f);
        return tk__error(TK_ESTATE, "cannot schedule new futures after shutdown");
    }
    f->pool = p;
    if (p->tail)
        p->tail->next = f;
    else
        p->head = f;
    p->tail = f;
    p->queued++;
    tk__pp_notify(p);
    tk__pool_unlock(p);
    return 0;
}

/* The future cache's lock: it guards two pointer moves, taken twice per
 * task, so a spin lock (an atomic exchange to take, a store to release)
 * rather than a mutex's two atomic operations and its bookkeeping. */
static void fc_lock(tk_pool *p)
{
    for (int spins = 0; atomic_flag_test_and_set_explicit(&p->fc_lock, memory_order_acquire);)
        if (++spins % 64 == 0)
            sched_yield(); /* its holder was preempted */
        else
            tk__cpu_relax();
}

static void fc_unlock(tk_pool *p)
{
    atomic_flag_clear_explicit(&p->fc_lock, memory_order_release);
}

/* Thread pools: a future from the pool's cache, or a new one. It holds a
 * pool reference until released (tk__pool_recycle). */
static tk_future *tfuture_new(tk_pool *p, tk_task fn, tk_args *args, tk_kwargs *kwargs)
{
    fc_lock(p);
    tk_future *f = p->fc_head;
    if (f) {
        p->fc_head = f->next;
        p->fc_n--;
    }
    fc_unlock(p);
    if (f) {
        memset(f, 0, sizeof *f);
        tk__future_init(f, fn, args, kwargs);
    } else if (!(f = tk__future_new(fn, args, kwargs, false))) {
        return NULL;
    }
    f->home = p;
    atomic_fetch_add(&p->refs, 1);
    return f;
}

void tk__pool_recycle(tk_pool *p, tk_future *f)
{
    bool kept = false;
    /* Not in a forked child (the lock may be held by a thread that did
     * not follow), nor once the pool is shut down (no more submits). */
    if (p->owner == tk__getpid() && !atomic_load(&p->stopping)) {
        fc_lock(p);
        if (p->fc_n < POOL_FUTURE_CACHE) {
            f->next = p->fc_head;
            p->fc_head = f;
            p->fc_n++;
            kept = true;
        }
        fc_unlock(p);
    }
    if (!kept)
        tk__free(f);
    pool_unref(p);
}

/* Prepares and queues a future; on failure both references are gone. */
static int submit_future(tk_pool *p, tk_future *f)
{
    int r = 0;
    if (p->kind == TK_POOL_PROCESSES && (r = tk__pp_encode(f)) < 0) {
        tk__future_unref(f);
        tk__future_unref(f);
        return r;
    }
    r = enqueue(p, f);
    if (r < 0)
        tk__future_unref(f);
    return r;
}

TK_API tk_future *tk_pool_submit(tk_pool *p, tk_task fn, tk_args *args, tk_kwargs *kwargs)
{
    if (!p || !fn) {
        tk_args_free(args);
        tk_kwargs_free(kwargs);
        return tk__error_null(TK_EINVAL, "tk_pool_submit: NULL %s", p ? "task" : "pool");
    }
    if (check_usable(p) < 0) {
        tk_args_free(args);
        tk_kwargs_free(kwargs);
        return NULL;
    }
    tk_future *f = p->kind == TK_POOL_THREADS ? tfuture_new(p, fn, args, kwargs)
                                              : tk__future_new(fn, args, kwargs, true);
    if (!f)
        return NULL;
    return submit_future(p, f) < 0 ? NULL : f;
}

/* ---------------------------------------------------------------- map */

static size_t pick_chunksize(tk_pool *p, size_t n, size_t chunksize)
{
    if (chunksize > 0)
        return chunksize;
    /* CPython's Pool.map: divmod(len, 4 * workers), rounded up. */
    size_t w4 = 4 * (size_t)p->nworkers;
    size_t c = n / w4 + (n % w4 != 0);
    return c ? c : 1;
}

static void free_items(tk_args **items, size_t from, size_t n)
{
    for (size_t i = from; items && i < n; i++) {
        tk_args_free(items[i]);
        items[i] = NULL;
    }
}

/* Submits the chunks; returns how many were queued (all on success). */
static size_t submit_chunks(tk_pool *p, tk_task fn, tk_args **items, size_t n,
                            tk_args **results, size_t cs, tk_future **fs, int *err)
{
    size_t k = 0;
    for (size_t off = 0; off < n; off += cs, k++) {
        tk_future *f = tk__future_new(fn, NULL, NULL, true);
        if (!f) {
            *err = TK_ENOMEM;
            free_items(items, off, n);
            return k;
        }
        f->x->items = items + off;
        f->nitems = n - off < cs ? n - off : cs;
        f->x->results = results + off;
        size_t taken = f->nitems;
        /* Of its two references, map holds the caller's while it waits. */
        int r = submit_future(p, f);
        if (r < 0) {
            /* The future took its items with it; free the rest. */
            *err = r;
            free_items(items, off + taken, n);
            return k;
        }
        fs[k] = f;
    }
    return k;
}

static int map_failure(tk_future *f, size_t base)
{
    int st = f->status;
    size_t idx = base + (f->x ? f->x->fail_index : 0);
    if (st == TK_EBROKEN)
        return tk__error(TK_EBROKEN, "map item %zu: %s", idx, tk_future_error(f));
    if (st == TK_ECANCELED && f->cancelled)
        return tk__error(TK_ECANCELED, "map item %zu: %s", idx, tk_future_error(f));
    return tk__error(TK_ETASK, "map item %zu failed (status %d): %s", idx, st,
                     tk_future_error(f));
}

TK_API int tk_pool_map_ex(tk_pool *p, tk_task fn, tk_args **items, size_t n,
                          tk_args **results, size_t chunksize)
{
    if (!p || !fn || (n > 0 && (!items || !results))) {
        free_items(items, 0, n);
        return tk__error(TK_EINVAL, "tk_pool_map: NULL %s",
                         !p ? "pool" : !fn ? "task" : !items ? "items" : "results");
    }
    for (size_t i = 0; i < n; i++)
        results[i] = NULL;
    if (check_usable(p) < 0) {
        free_items(items, 0, n);
        return TK_ESTATE;
    }
    if (n == 0)
        return 0;
    size_t cs = pick_chunksize(p, n, chunksize);
    size_t nchunks = n / cs + (n % cs != 0);
    tk_future **fs = tk__calloc(nchunks, sizeof(tk_future *));
    if (!fs) {
        free_items(items, 0, n);
        return TK_ENOMEM;
    }
    int err = 0;
    size_t k = submit_chunks(p, fn, items, n, results, cs, fs, &err);
    tk__deadline forever = {.kind = TK__DL_FOREVER};
    int r = err;
    /* Chunks finish roughly in order: sleeping once on the last one, rather
     * than on each in turn, spares a wake-up per chunk. Not cancellable:
     * the chunks write into the caller's array. */
    if (k > 0)
        tk__future_wait(fs[k - 1], 0, &forever);
    for (size_t i = 0; i < k; i++) {
        tk__future_wait(fs[i], 0, &forever);
        if (r == 0 && fs[i]->status != 0)
            r = map_failure(fs[i], i * cs);
        if (p->kind == TK_POOL_PROCESSES) {
            int d = tk__pp_chunk_results(fs[i], results + i * cs, i * cs);
            r = r == 0 ? d : r;
        }
        tk__future_unref(fs[i]);
    }
    tk__free(fs);
    return r;
}

TK_API int tk_pool_map(tk_pool *p, tk_task fn, tk_args **items, size_t n, tk_args **results)
{
    return tk_pool_map_ex(p, fn, items, n, results, 1);
}

/* ----------------------------------------------------------- shutdown */

static void join_workers(tk_pool *p)
{
    pthread_mutex_lock(&p->join_lock);
    if (!p->joined) {
        if (p->kind == TK_POOL_THREADS)
            for (int i = 0; i < p->nworkers; i++)
                pthread_join(p->tw[i].th, NULL);
        else
            tk__pp_join(p);
        p->joined = true;
    }
    pthread_mutex_unlock(&p->join_lock);
}

TK_API int tk_pool_shutdown(tk_pool *p, bool wait, bool cancel_futures)
{
    if (!p)
        return tk__error(TK_EINVAL, "tk_pool_shutdown: NULL pool");
    if (p->owner != tk__getpid())
        return 0; /* foreign: its workers live in the parent */
    if (wait && tk__current_pool == p)
        return tk__error(TK_EDEADLK, "cannot shut down a pool and wait from one of its own "
                                     "tasks or callbacks");
    tk_future *cancelled = NULL;
    tk__pool_lock(p);
    p->shutdown = true;
    atomic_store(&p->stopping, true);
    if (p->kind == TK_POOL_PROCESSES) {
        if (cancel_futures) {
            cancelled = p->head;
            p->head = p->tail = NULL;
            p->queued = 0;
        }
        tk__pp_notify(p);
    } else {
        if (cancel_futures) {
            /* What is queued now is taken here; what a racing submit
             * queues later, the workers cancel. */
            atomic_store(&p->cancel_all, true);
            tk_future **end = &cancelled, *f;
            while ((f = tpop(p)) != NULL) {
                *end = f;
                end = &f->next;
            }
            *end = NULL;
        }
        unpark_all(p);
    }
    tk__pool_unlock(p);
    while (cancelled) {
        tk_future *n = cancelled->next;
        tk__future_cancel_pending(cancelled);
        tk__future_unref(cancelled);
        cancelled = n;
    }
    if (wait)
        join_workers(p);
    return 0;
}

static void unlink_live(tk_pool *p)
{
    pthread_mutex_lock(&pools_lock);
    for (tk_pool **pp = &live_pools; *pp; pp = &(*pp)->next_live)
        if (*pp == p) {
            *pp = p->next_live;
            break;
        }
    pthread_mutex_unlock(&pools_lock);
}

TK_API void tk_pool_free(tk_pool *p)
{
    if (!p)
        return;
    if (p->owner == tk__getpid()) {
        if (tk__current_pool == p) {
            /* From its own task: cannot wait; the pool ends when drained,
             * its threads detaching themselves (they hold references). */
            atomic_store(&p->orphaned, true);
            tk_pool_shutdown(p, false, false);
        } else {
            tk_pool_shutdown(p, true, false);
        }
        unlink_live(p);
    }
    pool_unref(p);
}

static void pools_shutdown_hook(void)
{
    /* Snapshot with references, then shut down without the registry lock:
     * a pool's result thread may fork, which takes that lock. */
    pthread_mutex_lock(&pools_lock);
    size_t n = 0;
    for (tk_pool *p = live_pools; p; p = p->next_live)
        n++;
    tk_pool **snap = n ? calloc(n, sizeof(tk_pool *)) : NULL;
    size_t k = 0;
    for (tk_pool *p = live_pools; snap && p; p = p->next_live) {
        atomic_fetch_add(&p->refs, 1);
        snap[k++] = p;
    }
    pthread_mutex_unlock(&pools_lock);
    for (size_t i = 0; i < k; i++) {
        if (tk__current_pool != snap[i])
            tk_pool_shutdown(snap[i], true, false);
        pool_unref(snap[i]);
    }
    free(snap);
}

/* ----------------------------------------------------------- interrupt */

TK_API int tk_future_interrupt(tk_future *f)
{
    if (!f)
        return tk__error(TK_EINVAL, "tk_future_interrupt: NULL future");
    int r = TK_ESTATE;
    /* pools_lock keeps the pool alive: a pool leaves the registry only
     * after its workers ended, and then no future of it runs. */
    pthread_mutex_lock(&pools_lock);
    while (atomic_flag_test_and_set_explicit(&f->cb_lock, memory_order_acquire))
        ;
    tk_pool *p = atomic_load(&f->state) == TK__F_RUNNING ? f->pool : NULL;
    atomic_flag_clear_explicit(&f->cb_lock, memory_order_release);
    if (p && p->owner == tk__getpid()) {
        tk__pool_lock(p);
        if (p->kind == TK_POOL_PROCESSES) {
            r = tk__pp_interrupt(p, f);
        } else {
            for (int i = 0; i < p->nworkers; i++)
                if (p->tw[i].current == f) {
                    tk__stop_request(&p->tw[i].stop);
                    r = 0;
                }
        }
        tk__pool_unlock(p);
    }
    pthread_mutex_unlock(&pools_lock);
    return r == TK_ESTATE ? tk__error(r, "future is not running") : r;
}
