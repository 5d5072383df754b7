/*
 * stress_ops.c - the operations the stress workers pick at random, and the
 * long-lived objects they share. Every call's result is checked: a wait may
 * time out (that is allowed and counted as done), anything else unexpected
 * is a failure.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stress.h"

/* Modules that may not be in the library yet: weak references, NULL when
 * absent (the program links the whole archive, so present ones resolve). */
#pragma weak tk_process_new
#pragma weak tk_process_start
#pragma weak tk_process_join
#pragma weak tk_process_terminate
#pragma weak tk_process_kill
#pragma weak tk_process_exitcode
#pragma weak tk_process_free
#pragma weak tk_queue_new
#pragma weak tk_queue_new_ex
#pragma weak tk_queue_put
#pragma weak tk_queue_get
#pragma weak tk_queue_free
#pragma weak tk_pool_new
#pragma weak tk_pool_submit
#pragma weak tk_pool_map
#pragma weak tk_pool_free
#pragma weak tk_future_result
#pragma weak tk_future_cancel
#pragma weak tk_future_free

bool st_have_threads(void) { return true; }
bool st_have_processes(void) { return tk_process_new != NULL; }
bool st_have_queues(void) { return tk_queue_new != NULL; }
bool st_have_pools(void) { return tk_pool_new != NULL; }

/* ------------------------------------------------------------- objects */

static tk_lock *lock;
static tk_rlock *rlock;
static tk_sem *sem;
static tk_cond *cond;
static tk_event *never; /* never set: waits on it end by timeout or stop */
static long guarded, rguarded; /* changed only under lock / rlock */
static atomic_long expect, rexpect;
static atomic_int sem_holders;
#define SEM_SLOTS 2

static tk_queue *queue, *shqueue;
static pthread_mutex_t shqueue_turn = PTHREAD_MUTEX_INITIALIZER;
static tk_pool *tpool, *ppool;

void st_setup(void)
{
    lock = tk_lock_new(0);
    rlock = tk_rlock_new(0);
    sem = tk_sem_new(SEM_SLOTS, TK_BOUNDED);
    cond = tk_cond_new(0);
    never = tk_event_new(0);
    ST_CHECK(lock && rlock && sem && cond && never);
    if (st_have_queues()) {
        queue = tk_queue_new(64, 0);
        shqueue = tk_queue_new(16, TK_SHARED);
        ST_CHECK(queue && shqueue);
    }
    if (st_have_pools()) {
        tpool = tk_pool_new(TK_POOL_THREADS, 2);
        ppool = tk_pool_new(TK_POOL_PROCESSES, 2);
        ST_CHECK(tpool && ppool);
    }
}

static double pick_timeout(uint64_t *seed)
{
    switch (st_rand(seed) % 4) {
    case 0: return 0;
    case 1: return 0.001;
    case 2: return 0.02;
    default: return TK_FOREVER;
    }
}

/* ---------------------------------------------------------------- sync */

void st_sync_op(uint64_t *seed)
{
    int rc;
    switch (st_rand(seed) % 4) {
    case 0:
        rc = tk_lock_acquire(lock, pick_timeout(seed));
        if (rc == 0) {
            guarded++;
            atomic_fetch_add(&expect, 1);
            ST_CHECK(tk_lock_release(lock) == 0);
        } else {
            ST_CHECK(rc == TK_ETIMEDOUT);
        }
        st_done(OP_LOCK);
        break;
    case 1: {
        unsigned depth = 1 + st_rand(seed) % 3;
        for (unsigned i = 0; i < depth; i++)
            ST_CHECK(tk_rlock_acquire(rlock, TK_FOREVER) == 0);
        rguarded++;
        atomic_fetch_add(&rexpect, 1);
        for (unsigned i = 0; i < depth; i++)
            ST_CHECK(tk_rlock_release(rlock) == 0);
        st_done(OP_RLOCK);
        break;
    }
    case 2:
        rc = tk_sem_acquire(sem, 0.01);
        if (rc == 0) {
            ST_CHECK(atomic_fetch_add(&sem_holders, 1) < SEM_SLOTS);
            usleep(st_rand(seed) % 200);
            atomic_fetch_sub(&sem_holders, 1);
            ST_CHECK(tk_sem_release(sem) == 0);
        } else {
            ST_CHECK(rc == TK_ETIMEDOUT);
        }
        st_done(OP_SEM);
        break;
    default:
        ST_CHECK(tk_cond_acquire(cond, TK_FOREVER) == 0);
        if (st_rand(seed) % 2) {
            rc = tk_cond_wait(cond, 0.002);
            ST_CHECK(rc == 0 || rc == TK_ETIMEDOUT);
        } else {
            ST_CHECK(tk_cond_notify(cond, 1) == 0);
        }
        ST_CHECK(tk_cond_release(cond) == 0);
        st_done(OP_COND);
        break;
    }
}

/* -------------------------------------------------------------- threads */

/* Sleeps (a cancellation point) or waits on an event nobody sets; returns
 * 42 when the sleep ran out, 43 when a stop cut it short. */
static int sleeper(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    int64_t ms = 0, mode = 0;
    tk_args_get_int(a, 0, &ms);
    tk_args_get_int(a, 1, &mode);
    int rc = mode ? tk_event_wait(never, (double)ms / 1000)
                  : tk_sleep((double)ms / 1000);
    if (rc == TK_ECANCELED)
        return 43;
    return (rc == 0 || rc == TK_ETIMEDOUT) ? 42 : 1;
}

void st_thread_op(uint64_t *seed)
{
    int mode = (int)(st_rand(seed) % 2);
    int64_t ms = mode ? 10000 : (int64_t)(st_rand(seed) % 20);
    tk_thread *t = tk_thread_new(sleeper, tk_args_of("ll", ms, (int64_t)mode), NULL);
    ST_CHECK(t != NULL);
    if (!t)
        return;
    ST_CHECK(tk_thread_start(t) == 0);
    int rc = tk_thread_join(t, mode ? 0.001 * (st_rand(seed) % 5) : pick_timeout(seed));
    bool stopped = false;
    if (rc == TK_ETIMEDOUT) {
        ST_CHECK(tk_thread_stop(t) == 0);
        stopped = true;
        ST_CHECK(tk_thread_join(t, TK_FOREVER) == 0);
    } else {
        ST_CHECK(rc == 0);
    }
    int res = tk_thread_result(t);
    ST_CHECK(res == 42 || (stopped && res == 43));
    tk_thread_free(t);
    st_done(stopped ? OP_THREAD_STOP : OP_THREAD);
}

/* ------------------------------------------------------------ processes */

static int child_work(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    int64_t ms = 0, code = 0;
    tk_args_get_int(a, 0, &ms);
    tk_args_get_int(a, 1, &code);
    usleep((useconds_t)ms * 1000);
    return (int)code;
}

void st_process_op(uint64_t *seed)
{
    if (!st_have_processes())
        return;
    int64_t ms = st_rand(seed) % 30, code = st_rand(seed) % 100;
    tk_process *p = tk_process_new(child_work, tk_args_of("ll", ms, code), NULL);
    ST_CHECK(p != NULL);
    if (!p)
        return;
    ST_CHECK(tk_process_start(p) == 0);
    int action = (int)(st_rand(seed) % 4), signo = 0;
    int rc = tk_process_join(p, 0.001 * (st_rand(seed) % 10));
    ST_CHECK(rc == 0 || rc == TK_ETIMEDOUT);
    if (rc == TK_ETIMEDOUT && action == 1) {
        ST_CHECK(tk_process_terminate(p) == 0);
        signo = SIGTERM;
    } else if (rc == TK_ETIMEDOUT && action == 2) {
        ST_CHECK(tk_process_kill(p) == 0);
        signo = SIGKILL;
    }
    ST_CHECK(tk_process_join(p, TK_FOREVER) == 0);
    int ec = tk_process_exitcode(p);
    /* A signal sent to a process that was just ending may arrive too late. */
    ST_CHECK(ec == code || (signo && ec == -signo));
    tk_process_free(p);
    st_done(OP_PROCESS);
}

/* --------------------------------------------------------------- queues */

static tk_args *message(uint32_t id)
{
    return tk_args_of("ls", (int64_t)id, "payload");
}

static void receive(tk_args *m)
{
    int64_t id = -1;
    ST_CHECK(tk_args_get_int(m, 0, &id) == 0);
    st_delivered((uint32_t)id);
    tk_args_free(m);
}

/* Puts and gets on one thread queue shared by all workers. A message whose
 * put failed was never sent: it is accounted here so the exactly-once check
 * covers every id. */
static void thread_queue_op(uint64_t *seed)
{
    unsigned n = 1 + st_rand(seed) % 8;
    for (unsigned i = 0; i < n; i++) {
        uint32_t id = st_new_ids(1);
        if (id == UINT32_MAX)
            break;
        tk_args *m = message(id);
        int rc = tk_queue_put(queue, m, pick_timeout(seed) == TK_FOREVER ? 0.05 : 0.001);
        if (rc != 0) {
            ST_CHECK(rc == TK_EFULL || rc == TK_ETIMEDOUT);
            receive(m); /* still ours */
        }
    }
    for (unsigned i = 0; i < n; i++) {
        tk_args *m = NULL;
        int rc = tk_queue_get(queue, &m, 0.002);
        if (rc == 0)
            receive(m);
        else
            ST_CHECK(rc == TK_EEMPTY || rc == TK_ETIMEDOUT);
    }
    st_done(OP_QUEUE);
}

/* A child forked with plain fork() puts a batch on the TK_SHARED queue
 * while this thread gets it; one worker at a time, so every message of the
 * batch is this worker's to receive. */
static void shared_queue_op(uint64_t *seed)
{
    unsigned n = 1 + st_rand(seed) % 40;
    pthread_mutex_lock(&shqueue_turn);
    uint32_t first = st_new_ids(n); /* a block: other workers take ids too */
    if (first == UINT32_MAX) {
        pthread_mutex_unlock(&shqueue_turn);
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        for (unsigned i = 0; i < n; i++) {
            tk_args *m = message(first + i);
            if (tk_queue_put(shqueue, m, 10) != 0)
                _exit(1);
        }
        _exit(0);
    }
    ST_CHECK(pid > 0);
    for (unsigned i = 0; pid > 0 && i < n; i++) {
        tk_args *m = NULL;
        int rc = tk_queue_get(shqueue, &m, 20);
        ST_CHECK(rc == 0);
        if (rc != 0)
            break;
        receive(m);
    }
    int st = 0;
    while (pid > 0 && waitpid(pid, &st, 0) < 0)
        ;
    ST_CHECK(pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    pthread_mutex_unlock(&shqueue_turn);
    st_done(OP_SHARED_QUEUE);
}

/* A child forked with plain fork() echoes messages on a duplex pipe; some
 * are far larger than the ring and stream through it. Every echo must be
 * the message sent. A quarter of the time the child is killed half-way:
 * then a call may fail (TK_ECLOSED, TK_EBROKEN, or TK_ETIMEDOUT while
 * another worker's child still holds an inherited copy of the dead
 * child's end), but must never hang or return a wrong message. Killed
 * rounds send only small messages, so no send waits for room that a dead
 * reader would never make. */
static void pipe_op(uint64_t *seed)
{
    tk_conn *a, *b;
    ST_CHECK(tk_pipe_new(&a, &b, true) == 0);
    unsigned n = 1 + st_rand(seed) % 12;
    bool kill_it = st_rand(seed) % 4 == 0;
    pid_t pid = fork();
    if (pid == 0) {
        tk_conn_close(a);
        for (;;) {
            tk_args *m = NULL;
            int64_t tag = 0;
            if (tk_conn_recv(b, &m, 20) != 0 || tk_args_get_int(m, 0, &tag) != 0)
                _exit(1);
            if (tag < 0)
                _exit(0);
            int rc = tk_conn_send(b, m);
            tk_args_free(m);
            if (rc != 0)
                _exit(2);
        }
    }
    ST_CHECK(pid > 0);
    tk_conn_close(b);
    bool dead = false;
    for (unsigned i = 0; pid > 0 && i < n; i++) {
        size_t len = !kill_it && st_rand(seed) % 4 == 0 ? st_rand(seed) % 400000
                                                         : st_rand(seed) % 200;
        unsigned char *buf = malloc(len + 1);
        ST_CHECK(buf != NULL);
        if (!buf)
            break;
        for (size_t k = 0; k < len; k++)
            buf[k] = (unsigned char)(k * 31 + i);
        tk_args *m = tk_args_of("ly", (int64_t)i, buf, len), *r = NULL;
        if (kill_it && i == n / 2) {
            kill(pid, SIGKILL);
            dead = true;
        }
        int rc = tk_conn_send(a, m);
        if (rc == 0)
            rc = tk_conn_recv(a, &r, dead ? 2 : 20);
        if (dead)
            ST_CHECK(rc == 0 || rc == TK_ECLOSED || rc == TK_EBROKEN || rc == TK_ETIMEDOUT);
        else
            ST_CHECK(rc == 0);
        if (rc == 0) {
            int64_t tag = -1;
            const void *y = NULL;
            size_t ylen = 0;
            ST_CHECK(tk_args_get_int(r, 0, &tag) == 0 && tag == (int64_t)i);
            ST_CHECK(tk_args_get_bytes(r, 1, &y, &ylen) == 0 && ylen == len &&
                     memcmp(y, buf, len) == 0);
        }
        tk_args_free(r);
        tk_args_free(m);
        free(buf);
        if (rc != 0)
            break;
    }
    if (!dead) {
        tk_args *stop = tk_args_of("l", (int64_t)-1);
        ST_CHECK(tk_conn_send(a, stop) == 0);
        tk_args_free(stop);
    }
    tk_conn_close(a);
    int st = 0;
    while (pid > 0 && waitpid(pid, &st, 0) < 0)
        ;
    if (dead)
        ST_CHECK(WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) == 0));
    else
        ST_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    st_done(OP_PIPE);
}

void st_queue_op(uint64_t *seed)
{
    if (!st_have_queues())
        return;
    uint32_t pick = st_rand(seed) % 8;
    if (pick < 5)
        thread_queue_op(seed);
    else if (pick < 7)
        shared_queue_op(seed);
    else
        pipe_op(seed);
}

/* ---------------------------------------------------------------- pools */

static int double_it(const tk_args *a, const tk_kwargs *k, tk_args *result)
{
    (void)k;
    int64_t x = 0;
    if (tk_args_get_int(a, 0, &x) < 0)
        return 1;
    return tk_args_add_int(result, 2 * x) < 0 ? 1 : 0;
}

static void pool_op_on(tk_pool *p, enum st_op op, uint64_t *seed)
{
    int64_t x = st_rand(seed) % 1000;
    tk_future *f = tk_pool_submit(p, double_it, tk_args_of("l", x), NULL);
    ST_CHECK(f != NULL);
    if (!f)
        return;
    bool cancelled = st_rand(seed) % 8 == 0 && tk_future_cancel(f);
    const tk_args *res = NULL;
    int rc = tk_future_result(f, TK_FOREVER, &res);
    if (cancelled) {
        ST_CHECK(rc == TK_ECANCELED);
    } else {
        int64_t y = -1;
        ST_CHECK(rc == 0 && res && tk_args_get_int(res, 0, &y) == 0 && y == 2 * x);
    }
    tk_future_free(f);
    st_done(op);
}

void st_pool_op(uint64_t *seed)
{
    if (!st_have_pools())
        return;
    if (st_rand(seed) % 3)
        pool_op_on(tpool, OP_THREAD_POOL, seed);
    else
        pool_op_on(ppool, OP_PROCESS_POOL, seed);
}

/* ------------------------------------------------------------- teardown */

void st_teardown(void)
{
    if (queue) { /* what is left was sent and must be received once */
        tk_args *m = NULL;
        while (tk_queue_get(queue, &m, 0) == 0)
            receive(m);
        tk_queue_free(queue);
        tk_queue_free(shqueue);
    }
    if (tpool) {
        tk_pool_free(tpool);
        tk_pool_free(ppool);
    }
    tk_lock_free(lock);
    tk_rlock_free(rlock);
    tk_sem_free(sem);
    tk_cond_free(cond);
    tk_event_free(never);
}

void st_check_counters(void)
{
    if (guarded != atomic_load(&expect) || rguarded != atomic_load(&rexpect)) {
        fprintf(stderr, "stress: lock counter %ld (expected %ld), rlock %ld (expected %ld)\n",
                guarded, atomic_load(&expect), rguarded, atomic_load(&rexpect));
        ST_FAIL("counters changed under a lock add up");
    }
}
