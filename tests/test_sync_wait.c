/* test_sync_wait.c - the waiting primitives: tk_cond, tk_sem, tk_event and
 * tk_barrier. Their rules and messages, timeouts, stops (tk_thread_stop on
 * a tk_thread, and the runtime's tk__stop_request from a raw pthread), and
 * the TK_SHARED variants between processes, including participants that
 * die. */
#include "common/testutil.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "sync_int.h"
#include "taskkit.h"

static unsigned kinds[] = {0, TK_SHARED};
#define FLAGS(state) (*(unsigned *)*(state))

static double slack(void) { return tt_slow_mode() ? 10.0 : 2.0; }

static void check_timeout(int (*fn)(void *), void *obj, double timeout)
{
    double t0 = tt_now();
    assert_int_equal(fn(obj), TK_ETIMEDOUT);
    double el = tt_now() - t0;
    assert_true(el >= timeout - 0.01);
    assert_true(el < timeout + slack());
    assert_non_null(strstr(tk_last_error(), "timed out"));
}

static void reap(pid_t pid, int want_status)
{
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (want_status >= 0)
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == want_status);
}

/* --------------------------------------------------------------- stopping */

struct stopped {
    struct tk__stop stop; /* the raw variant's own stop state */
    int (*wait)(void *obj);
    void *obj;
    bool stop_first;  /* request the stop before the wait starts */
    atomic_int started;
    int result;
    double elapsed;
};

static void stopped_body(struct stopped *s, void (*request)(struct stopped *))
{
    if (s->stop_first)
        request(s);
    atomic_store(&s->started, 1);
    double t0 = tt_now();
    s->result = s->wait(s->obj);
    s->elapsed = tt_now() - t0;
}

static void request_self(struct stopped *s) { tk_thread_stop(tk_current_thread()); (void)s; }
static void request_raw(struct stopped *s) { tk__stop_request(&s->stop); }

static int stoppable_target(const tk_args *args, const tk_kwargs *kwargs)
{
    (void)kwargs;
    void *p = NULL;
    tk_args_get_ptr(args, 0, &p);
    stopped_body(p, request_self);
    return 0;
}

/* The runtime directly, as tk_thread_stop does it: a raw pthread whose TLS
 * points at a struct tk__stop that the test requests. */
static void *raw_stoppable_thread(void *arg)
{
    struct stopped *s = arg;
    tk__tls()->stop = &s->stop;
    stopped_body(s, request_raw);
    tk__tls()->stop = NULL;
    return NULL;
}

static void wait_started_and_blocked(struct stopped *s)
{
    while (!atomic_load(&s->started))
        usleep(1000);
    usleep(100000); /* let it block */
}

/* Runs wait(obj) in a tk_thread, stops it with tk_thread_stop while it
 * blocks (or before it starts waiting), checks that it came back promptly
 * and returns the wait's result. With `raw`, uses a raw pthread and
 * tk__stop_request instead (the runtime mechanism under tk_thread_stop). */
static int run_stopped_ex(int (*wait)(void *), void *obj, bool stop_first, bool raw)
{
    struct stopped s = {.wait = wait, .obj = obj, .stop_first = stop_first};
    double t0;
    if (raw) {
        tk__stop_init(&s.stop);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, raw_stoppable_thread, &s), 0);
        wait_started_and_blocked(&s);
        t0 = tt_now();
        tk__stop_request(&s.stop);
        pthread_join(t, NULL);
        tk__stop_destroy(&s.stop);
    } else {
        tk_thread *t = tk_thread_new(stoppable_target, tk_args_of("p", (void *)&s), NULL);
        assert_non_null(t);
        assert_int_equal(tk_thread_start(t), 0);
        wait_started_and_blocked(&s);
        t0 = tt_now();
        assert_int_equal(tk_thread_stop(t), 0);
        assert_int_equal(tk_thread_join(t, 30.0), 0);
        tk_thread_free(t);
    }
    assert_true(tt_now() - t0 < slack());
    assert_true(s.elapsed < 0.1 + slack());
    return s.result;
}

static int run_stopped(int (*wait)(void *), void *obj, bool stop_first)
{
    return run_stopped_ex(wait, obj, stop_first, false);
}

/* ------------------------------------------------------------- condition */

static void cond_rules_and_messages(void **state)
{
    unsigned flags = FLAGS(state);
    assert_null(tk_cond_new(TK_BOUNDED));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    assert_null(tk_cond_new_with_lock(NULL));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    tk_cond *c = tk_cond_new(flags);
    assert_non_null(c);
    assert_int_equal(tk_cond_wait(c, 0), TK_ESTATE);
    assert_string_equal(tk_last_error(), "cannot wait on un-acquired lock");
    assert_int_equal(tk_cond_notify(c, 1), TK_ESTATE);
    assert_string_equal(tk_last_error(), "cannot notify on un-acquired lock");
    assert_int_equal(tk_cond_notify_all(c), TK_ESTATE);
    assert_string_equal(tk_last_error(), "cannot notify on un-acquired lock");
    assert_int_equal(tk_cond_release(c), TK_ESTATE);
    assert_string_equal(tk_last_error(), "release unlocked lock");
    assert_int_equal(tk_cond_acquire(c, TK_FOREVER), 0);
    assert_int_equal(tk_cond_acquire(c, TK_FOREVER), TK_EDEADLK); /* own lock: not re-entrant */
    assert_int_equal(tk_cond_wait(c, NAN), TK_EINVAL);
    assert_int_equal(tk_cond_notify(c, 0), 0);
    assert_int_equal(tk_cond_notify(c, 5), 0); /* nobody waits: nothing happens */
    assert_int_equal(tk_cond_notify_all(c), 0);
    /* an earlier notify does not satisfy a later wait */
    double t0 = tt_now();
    assert_int_equal(tk_cond_wait(c, 0), TK_ETIMEDOUT);
    assert_int_equal(tk_cond_wait(c, -2), TK_ETIMEDOUT);
    assert_true(tt_now() - t0 < 0.05 * slack());
    t0 = tt_now();
    assert_int_equal(tk_cond_wait(c, 0.15), TK_ETIMEDOUT);
    assert_true(tt_now() - t0 >= 0.14);
    assert_non_null(strstr(tk_last_error(), "tk_cond_wait: timed out"));
    /* and it came back holding the lock */
    assert_int_equal(tk_cond_release(c), 0);
    assert_int_equal(tk_cond_wait(NULL, 0), TK_EINVAL);
    assert_int_equal(tk_cond_notify(NULL, 1), TK_EINVAL);
    tk_cond_free(c);
    tk_cond_free(NULL);
}

struct cwait {
    tk_cond *c;
    int ready, woken, results;
};

static void *cond_waiter(void *arg)
{
    struct cwait *w = arg;
    tk_cond_acquire(w->c, TK_FOREVER);
    w->ready++;
    int r = tk_cond_wait(w->c, 30.0);
    w->woken++;
    if (r != 0)
        w->results++;
    tk_cond_release(w->c);
    return NULL;
}

static int cond_read(struct cwait *w, int *field)
{
    tk_cond_acquire(w->c, TK_FOREVER);
    int v = *field;
    tk_cond_release(w->c);
    return v;
}

static void cond_notify_wakes_at_most_n(void **state)
{
    struct cwait w = {.c = tk_cond_new(FLAGS(state))};
    pthread_t t[5];
    for (int i = 0; i < 5; i++)
        pthread_create(&t[i], NULL, cond_waiter, &w);
    while (cond_read(&w, &w.ready) < 5)
        usleep(1000);
    /* All five are waiting now: they released the lock inside the wait. */
    const int steps[][2] = {{2, 2}, {1, 3}, {0, 3}};
    for (int i = 0; i < 3; i++) {
        tk_cond_acquire(w.c, TK_FOREVER);
        assert_int_equal(tk_cond_notify(w.c, (unsigned)steps[i][0]), 0);
        tk_cond_release(w.c);
        usleep(200000);
        assert_int_equal(cond_read(&w, &w.woken), steps[i][1]);
    }
    tk_cond_acquire(w.c, TK_FOREVER);
    assert_int_equal(tk_cond_notify_all(w.c), 0);
    tk_cond_release(w.c);
    for (int i = 0; i < 5; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(w.woken, 5);
    assert_int_equal(w.results, 0);
    tk_cond_free(w.c);
}

/* The bounded-buffer pattern: two conditions share one lock. */
#define CAP 4
struct buffer {
    tk_lock *lock;
    tk_cond *not_empty, *not_full;
    long items[CAP];
    int head, len;
    long sum;
};

static void *producer(void *arg)
{
    struct buffer *b = arg;
    for (long i = 1; i <= 20000 + 2; i++) {
        long v = i <= 20000 ? i : -1; /* one -1 per consumer ends it */
        tk_lock_acquire(b->lock, TK_FOREVER);
        while (b->len == CAP)
            tk_cond_wait(b->not_full, TK_FOREVER);
        b->items[(b->head + b->len++) % CAP] = v;
        tk_cond_notify(b->not_empty, 1);
        tk_lock_release(b->lock);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    struct buffer *b = arg;
    for (;;) {
        tk_lock_acquire(b->lock, TK_FOREVER);
        while (b->len == 0)
            tk_cond_wait(b->not_empty, TK_FOREVER);
        long v = b->items[b->head];
        b->head = (b->head + 1) % CAP;
        b->len--;
        if (v > 0)
            b->sum += v;
        tk_cond_notify(b->not_full, 1);
        tk_lock_release(b->lock);
        if (v < 0)
            return NULL;
    }
}

static void cond_bounded_buffer_shares_a_lock(void **state)
{
    struct buffer b = {.lock = tk_lock_new(FLAGS(state))};
    b.not_empty = tk_cond_new_with_lock(b.lock);
    b.not_full = tk_cond_new_with_lock(b.lock);
    assert_non_null(b.not_full);
    pthread_t t[3];
    pthread_create(&t[0], NULL, producer, &b);
    pthread_create(&t[1], NULL, consumer, &b);
    pthread_create(&t[2], NULL, consumer, &b);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(b.sum, 20000L * 20001 / 2);
    tk_cond_free(b.not_empty);
    tk_cond_free(b.not_full);
    assert_false(tk_lock_locked(b.lock)); /* the shared lock outlives its conds */
    tk_lock_free(b.lock);
}

static int cond_wait_holding(void *obj)
{
    tk_cond *c = obj;
    tk_cond_acquire(c, TK_FOREVER);
    int r = tk_cond_wait(c, TK_FOREVER);
    /* must come back holding the lock */
    if (tk_cond_release(c) != 0)
        return 12345;
    return r;
}

static void cond_wait_is_stoppable(void **state)
{
    tk_cond *c = tk_cond_new(FLAGS(state));
    assert_int_equal(run_stopped(cond_wait_holding, c, false), TK_ECANCELED);
    assert_int_equal(run_stopped_ex(cond_wait_holding, c, false, true), TK_ECANCELED);
    assert_int_equal(run_stopped(cond_wait_holding, c, true), TK_ECANCELED);
    assert_false(tk_cond_release(c) == 0);
    /* a stop does not disturb the other waiters' accounting */
    struct cwait w = {.c = c};
    pthread_t t;
    pthread_create(&t, NULL, cond_waiter, &w);
    while (cond_read(&w, &w.ready) < 1)
        usleep(1000);
    tk_cond_acquire(c, TK_FOREVER);
    tk_cond_notify(c, 1);
    tk_cond_release(c);
    pthread_join(t, NULL);
    assert_int_equal(w.results, 0);
    tk_cond_free(c);
}

struct shared_flag {
    int flag, ready;
};

static void cond_between_processes(void **state)
{
    (void)state;
    tk_cond *c = tk_cond_new(TK_SHARED);
    struct shared_flag *f = tk_shm_alloc(sizeof *f);
    /* child waits, parent notifies */
    pid_t pid = fork();
    if (pid == 0) {
        tk_cond_acquire(c, TK_FOREVER);
        f->ready = 1;
        while (!f->flag)
            if (tk_cond_wait(c, 30.0) < 0)
                _exit(2);
        tk_cond_release(c);
        _exit(0);
    }
    for (;;) {
        tk_cond_acquire(c, TK_FOREVER);
        if (f->ready)
            break;
        tk_cond_release(c);
        usleep(1000);
    }
    f->flag = 1;
    assert_int_equal(tk_cond_notify(c, 1), 0);
    tk_cond_release(c);
    reap(pid, 0);
    /* parent waits, child notifies */
    f->flag = 0;
    pid = fork();
    if (pid == 0) {
        usleep(50000);
        tk_cond_acquire(c, TK_FOREVER);
        f->flag = 1;
        tk_cond_notify_all(c);
        tk_cond_release(c);
        _exit(0);
    }
    tk_cond_acquire(c, TK_FOREVER);
    while (!f->flag)
        assert_int_equal(tk_cond_wait(c, 30.0), 0);
    tk_cond_release(c);
    reap(pid, 0);
    tk_shm_free(f);
    tk_cond_free(c);
}

static void cond_survives_a_dead_waiter(void **state)
{
    (void)state;
    tk_cond *c = tk_cond_new(TK_SHARED);
    struct shared_flag *f = tk_shm_alloc(sizeof *f);
    pid_t pid = fork();
    if (pid == 0) {
        tk_cond_acquire(c, TK_FOREVER);
        f->ready = 1;
        tk_cond_wait(c, TK_FOREVER);
        _exit(0);
    }
    for (;;) {
        tk_cond_acquire(c, TK_FOREVER);
        int ready = f->ready;
        tk_cond_release(c);
        if (ready)
            break;
        usleep(1000);
    }
    kill(pid, SIGKILL);
    reap(pid, -1);
    struct cwait w = {.c = c};
    pthread_t t;
    pthread_create(&t, NULL, cond_waiter, &w);
    while (cond_read(&w, &w.ready) < 1)
        usleep(1000);
    tk_cond_acquire(c, TK_FOREVER);
    assert_int_equal(tk_cond_notify(c, 1), 0);
    tk_cond_release(c);
    pthread_join(t, NULL); /* woken, not lost on the dead one */
    assert_int_equal(w.results, 0);
    tk_shm_free(f);
    tk_cond_free(c);
}

static void cond_dead_in_notify_is_broken(void **state)
{
    (void)state;
    tk_cond *c = tk_cond_new(TK_SHARED);
    pid_t pid = fork();
    if (pid == 0) {
        tk_cond_acquire(c, TK_FOREVER);
        c->busy = 1; /* as if it died half-way through a notify */
        _exit(0);
    }
    reap(pid, 0);
    assert_int_equal(tk_cond_acquire(c, TK_FOREVER), TK_OWNERDEAD);
    assert_int_equal(tk_cond_notify(c, 1), TK_EBROKEN);
    assert_non_null(strstr(tk_last_error(), "broken"));
    assert_int_equal(tk_cond_wait(c, 0.1), TK_EBROKEN);
    assert_int_equal(tk_cond_notify_all(c), TK_EBROKEN);
    assert_int_equal(tk_cond_release(c), 0); /* the lock itself stays usable */
    assert_int_equal(tk_cond_acquire(c, 0), 0);
    assert_int_equal(tk_cond_wait(c, 0), TK_EBROKEN);
    assert_int_equal(tk_cond_release(c), 0);
    tk_cond_free(c);
}

/* ------------------------------------------------------------- semaphore */

static int sem_acq_02(void *s) { return tk_sem_acquire(s, 0.2); }
static int sem_acq_forever(void *s) { return tk_sem_acquire(s, TK_FOREVER); }

static void sem_counts_and_times_out(void **state)
{
    unsigned flags = FLAGS(state);
    assert_null(tk_sem_new(1, 4));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    tk_sem *s = tk_sem_new(2, flags);
    assert_non_null(s);
    assert_int_equal(tk_sem_acquire(s, 0), 0);
    assert_int_equal(tk_sem_acquire(s, TK_FOREVER), 0);
    assert_int_equal(tk_sem_acquire(s, 0), TK_ETIMEDOUT);
    assert_int_equal(tk_sem_acquire(s, -7), TK_ETIMEDOUT);
    assert_int_equal(tk_sem_acquire(s, NAN), TK_EINVAL);
    assert_non_null(strstr(tk_last_error(), "NaN"));
    check_timeout(sem_acq_02, s, 0.2);
    for (int i = 0; i < 5; i++) /* unbounded: releases beyond the start are fine */
        assert_int_equal(tk_sem_release(s), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(tk_sem_acquire(s, 0), 0);
    assert_int_equal(tk_sem_acquire(s, 0), TK_ETIMEDOUT);
    assert_int_equal(tk_sem_acquire(NULL, 0), TK_EINVAL);
    assert_int_equal(tk_sem_release(NULL), TK_EINVAL);
    tk_sem_free(s);
    tk_sem_free(NULL);
    s = tk_sem_new(UINT_MAX, flags);
    assert_int_equal(tk_sem_release(s), TK_EOVERFLOW);
    tk_sem_free(s);
}

static void sem_bounded_refuses_extra_release(void **state)
{
    tk_sem *s = tk_sem_new(2, FLAGS(state) | TK_BOUNDED);
    assert_non_null(s);
    assert_int_equal(tk_sem_release(s), TK_EOVERFLOW);
    assert_string_equal(tk_last_error(), "Semaphore released too many times");
    assert_int_equal(tk_sem_acquire(s, 0), 0);
    assert_int_equal(tk_sem_release(s), 0);
    assert_int_equal(tk_sem_release(s), TK_EOVERFLOW);
    tk_sem_free(s);
}

struct delayed {
    void *obj;
    int (*op)(void *);
    double delay;
};

static void *delayed_op(void *arg)
{
    struct delayed *d = arg;
    usleep((useconds_t)(d->delay * 1e6));
    d->op(d->obj);
    return NULL;
}

static int sem_release_op(void *s) { return tk_sem_release(s); }

static void sem_release_wakes_waiter(void **state)
{
    tk_sem *s = tk_sem_new(0, FLAGS(state));
    struct delayed d = {s, sem_release_op, 0.1};
    pthread_t t;
    pthread_create(&t, NULL, delayed_op, &d);
    double t0 = tt_now();
    assert_int_equal(tk_sem_acquire(s, 9e9), 0);
    assert_true(tt_now() - t0 >= 0.09);
    pthread_join(t, NULL);
    tk_sem_free(s);
}

static void sem_acquire_is_stoppable(void **state)
{
    tk_sem *s = tk_sem_new(0, FLAGS(state));
    assert_int_equal(run_stopped(sem_acq_forever, s, false), TK_ECANCELED);
    assert_int_equal(run_stopped_ex(sem_acq_forever, s, false, true), TK_ECANCELED);
    assert_int_equal(run_stopped(sem_acq_forever, s, true), TK_ECANCELED);
    /* a wait that can complete still completes, stop or not */
    tk_sem_release(s);
    assert_int_equal(run_stopped(sem_acq_forever, s, true), 0);
    tk_sem_free(s);
}

struct gate {
    atomic_int inside, max_inside;
};

static void sem_of_one_admits_one_process(void **state)
{
    (void)state;
    tk_sem *s = tk_sem_new(1, TK_SHARED | TK_BOUNDED);
    struct gate *g = tk_shm_alloc(sizeof *g);
    const int rounds = tt_slow_mode() ? 300 : 3000;
    pid_t pids[4];
    for (int i = 0; i < 4; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            for (int r = 0; r < rounds; r++) {
                if (tk_sem_acquire(s, 30.0) != 0)
                    _exit(2);
                int n = atomic_fetch_add(&g->inside, 1) + 1;
                int m = atomic_load(&g->max_inside);
                while (n > m && !atomic_compare_exchange_weak(&g->max_inside, &m, n))
                    ;
                if (r % 100 == 0)
                    usleep(100);
                atomic_fetch_sub(&g->inside, 1);
                if (tk_sem_release(s) != 0)
                    _exit(3);
            }
            _exit(0);
        }
    }
    for (int i = 0; i < 4; i++)
        reap(pids[i], 0);
    assert_int_equal(atomic_load(&g->max_inside), 1);
    assert_int_equal(tk_sem_acquire(s, 0), 0); /* its one unit is back */
    assert_int_equal(tk_sem_acquire(s, 0), TK_ETIMEDOUT);
    tk_shm_free(g);
    tk_sem_free(s);
}

static void sem_survives_a_dead_waiter(void **state)
{
    (void)state;
    tk_sem *s = tk_sem_new(0, TK_SHARED);
    pid_t pid = fork();
    if (pid == 0) {
        tk_sem_acquire(s, TK_FOREVER);
        _exit(0);
    }
    usleep(100000);
    kill(pid, SIGKILL);
    reap(pid, -1);
    assert_int_equal(tk_sem_release(s), 0);
    assert_int_equal(tk_sem_acquire(s, 0), 0);
    struct delayed d = {s, sem_release_op, 0.05};
    pthread_t t;
    pthread_create(&t, NULL, delayed_op, &d);
    assert_int_equal(tk_sem_acquire(s, 10.0), 0);
    pthread_join(t, NULL);
    tk_sem_free(s);
}

/* ----------------------------------------------------------------- event */

static int event_wait_02(void *e) { return tk_event_wait(e, 0.2); }
static int event_wait_forever(void *e) { return tk_event_wait(e, TK_FOREVER); }
static int event_set_op(void *e) { return tk_event_set(e); }

static void event_set_clear_wait(void **state)
{
    unsigned flags = FLAGS(state);
    assert_null(tk_event_new(TK_BOUNDED));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    tk_event *e = tk_event_new(flags);
    assert_false(tk_event_is_set(e));
    assert_int_equal(tk_event_wait(e, 0), TK_ETIMEDOUT);
    assert_int_equal(tk_event_wait(e, -1.5), TK_ETIMEDOUT);
    assert_int_equal(tk_event_wait(e, NAN), TK_EINVAL);
    check_timeout(event_wait_02, e, 0.2);
    assert_int_equal(tk_event_set(e), 0);
    assert_true(tk_event_is_set(e));
    assert_int_equal(tk_event_set(e), 0);
    assert_int_equal(tk_event_wait(e, 0), 0);
    assert_int_equal(tk_event_wait(e, TK_FOREVER), 0);
    assert_int_equal(tk_event_clear(e), 0);
    assert_false(tk_event_is_set(e));
    assert_int_equal(tk_event_wait(e, 0), TK_ETIMEDOUT);
    assert_int_equal(tk_event_set(NULL), TK_EINVAL);
    assert_int_equal(tk_event_clear(NULL), TK_EINVAL);
    assert_int_equal(tk_event_wait(NULL, 0), TK_EINVAL);
    assert_false(tk_event_is_set(NULL));
    tk_event_free(e);
    tk_event_free(NULL);
}

struct ewait {
    tk_event *e;
    atomic_int started, ok;
};

static void *event_waiter(void *arg)
{
    struct ewait *w = arg;
    atomic_fetch_add(&w->started, 1);
    if (tk_event_wait(w->e, 30.0) == 0)
        atomic_fetch_add(&w->ok, 1);
    return NULL;
}

static void event_set_wakes_all_even_if_cleared(void **state)
{
    struct ewait w = {.e = tk_event_new(FLAGS(state))};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, event_waiter, &w);
    while (atomic_load(&w.started) < 4)
        usleep(1000);
    usleep(100000);
    tk_event_set(w.e);
    tk_event_clear(w.e); /* Python: threads woken by set still return True */
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&w.ok), 4);
    tk_event_free(w.e);
}

static void event_wait_is_stoppable(void **state)
{
    tk_event *e = tk_event_new(FLAGS(state));
    assert_int_equal(run_stopped(event_wait_forever, e, false), TK_ECANCELED);
    assert_int_equal(run_stopped_ex(event_wait_forever, e, false, true), TK_ECANCELED);
    assert_int_equal(run_stopped(event_wait_forever, e, true), TK_ECANCELED);
    tk_event_set(e);
    assert_int_equal(run_stopped(event_wait_forever, e, true), 0);
    tk_event_free(e);
}

static void event_set_by_child_wakes_parent(void **state)
{
    (void)state;
    tk_event *e = tk_event_new(TK_SHARED);
    pid_t pid = fork();
    if (pid == 0) {
        usleep(100000);
        tk_event_set(e);
        _exit(0);
    }
    double t0 = tt_now();
    assert_int_equal(tk_event_wait(e, 30.0), 0);
    assert_true(tt_now() - t0 >= 0.09);
    reap(pid, 0);
    /* a child that dies while waiting blocks nobody */
    tk_event_clear(e);
    pid = fork();
    if (pid == 0) {
        tk_event_wait(e, TK_FOREVER);
        _exit(0);
    }
    usleep(50000);
    kill(pid, SIGKILL);
    reap(pid, -1);
    struct delayed d = {e, event_set_op, 0.05};
    pthread_t t;
    pthread_create(&t, NULL, delayed_op, &d);
    assert_int_equal(tk_event_wait(e, 10.0), 0);
    pthread_join(t, NULL);
    tk_event_free(e);
}

/* --------------------------------------------------------------- barrier */

static void barrier_rules(void **state)
{
    unsigned flags = FLAGS(state);
    assert_null(tk_barrier_new(0, flags));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    assert_string_equal(tk_last_error(), "parties must be > 0");
    assert_null(tk_barrier_new((unsigned)INT_MAX + 1u, flags));
    assert_null(tk_barrier_new(2, TK_BOUNDED));
    tk_barrier *b = tk_barrier_new(1, flags);
    assert_int_equal(tk_barrier_parties(b), 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(tk_barrier_wait(b, 0), 0); /* one party passes alone */
    assert_int_equal(tk_barrier_wait(b, NAN), TK_EINVAL);
    assert_int_equal(tk_barrier_wait(NULL, 0), TK_EINVAL);
    assert_int_equal(tk_barrier_abort(NULL), TK_EINVAL);
    assert_int_equal(tk_barrier_reset(NULL), TK_EINVAL);
    assert_false(tk_barrier_broken(NULL));
    assert_int_equal(tk_barrier_parties(NULL), 0);
    assert_int_equal(tk_barrier_n_waiting(NULL), 0);
    tk_barrier_free(b);
    tk_barrier_free(NULL);
}

struct rounds {
    tk_barrier *b;
    int n;
    atomic_int masks[1000];
    atomic_int errors;
};

static void *barrier_runner(void *arg)
{
    struct rounds *r = arg;
    for (int i = 0; i < r->n; i++) {
        int idx = tk_barrier_wait(r->b, 30.0);
        if (idx < 0 || idx > 2)
            atomic_fetch_add(&r->errors, 1);
        else
            atomic_fetch_or(&r->masks[i], 1 << idx);
    }
    return NULL;
}

static void barrier_reused_over_1000_rounds(void **state)
{
    struct rounds *r = calloc(1, sizeof *r);
    r->b = tk_barrier_new(3, FLAGS(state));
    r->n = tt_slow_mode() ? 200 : 1000;
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, barrier_runner, r);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&r->errors), 0);
    for (int i = 0; i < r->n; i++)
        assert_int_equal(atomic_load(&r->masks[i]), 7); /* indices 0, 1, 2 once each */
    assert_int_equal(tk_barrier_n_waiting(r->b), 0);
    assert_false(tk_barrier_broken(r->b));
    tk_barrier_free(r->b);
    free(r);
}

static void barrier_between_processes(void **state)
{
    (void)state;
    struct rounds *r = tk_shm_alloc(sizeof *r);
    r->b = tk_barrier_new(3, TK_SHARED);
    r->n = tt_slow_mode() ? 50 : 300;
    pid_t pids[3];
    for (int i = 0; i < 3; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            barrier_runner(r);
            _exit(0);
        }
    }
    for (int i = 0; i < 3; i++)
        reap(pids[i], 0);
    assert_int_equal(atomic_load(&r->errors), 0);
    for (int i = 0; i < r->n; i++)
        assert_int_equal(atomic_load(&r->masks[i]), 7);
    tk_barrier_free(r->b);
    tk_shm_free(r);
}

struct bwait {
    tk_barrier *b;
    double timeout;
    int result;
};

static void *barrier_waiter(void *arg)
{
    struct bwait *w = arg;
    w->result = tk_barrier_wait(w->b, w->timeout);
    return NULL;
}

static void wait_for_waiters(tk_barrier *b, unsigned n)
{
    while (tk_barrier_n_waiting(b) < n)
        usleep(1000);
}

static void barrier_timeout_breaks_it(void **state)
{
    tk_barrier *b = tk_barrier_new(3, FLAGS(state));
    struct bwait other = {b, TK_FOREVER, 99};
    pthread_t t;
    pthread_create(&t, NULL, barrier_waiter, &other);
    wait_for_waiters(b, 1);
    assert_int_equal(tk_barrier_n_waiting(b), 1);
    double t0 = tt_now();
    assert_int_equal(tk_barrier_wait(b, 0.2), TK_ETIMEDOUT);
    assert_true(tt_now() - t0 >= 0.19);
    assert_non_null(strstr(tk_last_error(), "broken"));
    pthread_join(t, NULL);
    assert_int_equal(other.result, TK_EBROKEN); /* every other waiter */
    assert_true(tk_barrier_broken(b));
    assert_int_equal(tk_barrier_n_waiting(b), 0);
    assert_int_equal(tk_barrier_wait(b, TK_FOREVER), TK_EBROKEN); /* later waits */
    assert_non_null(strstr(tk_last_error(), "the barrier is broken"));
    assert_int_equal(tk_barrier_reset(b), 0);
    assert_false(tk_barrier_broken(b));
    /* usable again: a polling wait alone breaks it at once */
    assert_int_equal(tk_barrier_wait(b, 0), TK_ETIMEDOUT);
    assert_true(tk_barrier_broken(b));
    tk_barrier_reset(b);
    tk_barrier_free(b);
}

static void barrier_abort_and_reset(void **state)
{
    tk_barrier *b = tk_barrier_new(2, FLAGS(state));
    struct bwait w = {b, TK_FOREVER, 99};
    pthread_t t;
    pthread_create(&t, NULL, barrier_waiter, &w);
    wait_for_waiters(b, 1);
    assert_int_equal(tk_barrier_abort(b), 0);
    pthread_join(t, NULL);
    assert_int_equal(w.result, TK_EBROKEN);
    assert_true(tk_barrier_broken(b));
    assert_int_equal(tk_barrier_wait(b, 1.0), TK_EBROKEN);
    assert_int_equal(tk_barrier_reset(b), 0);
    assert_false(tk_barrier_broken(b));
    /* reset while a thread waits: that thread is broken, the barrier is not */
    w.result = 99;
    pthread_create(&t, NULL, barrier_waiter, &w);
    wait_for_waiters(b, 1);
    assert_int_equal(tk_barrier_reset(b), 0);
    pthread_join(t, NULL);
    assert_int_equal(w.result, TK_EBROKEN);
    assert_false(tk_barrier_broken(b));
    /* and a full round works */
    w.result = 99;
    pthread_create(&t, NULL, barrier_waiter, &w);
    int mine = tk_barrier_wait(b, 30.0);
    pthread_join(t, NULL);
    assert_true((mine == 0 && w.result == 1) || (mine == 1 && w.result == 0));
    tk_barrier_free(b);
}

static int barrier_wait_forever(void *b) { return tk_barrier_wait(b, TK_FOREVER); }

static void barrier_wait_is_stoppable(void **state)
{
    tk_barrier *b = tk_barrier_new(3, FLAGS(state));
    struct bwait other = {b, TK_FOREVER, 99};
    pthread_t t;
    pthread_create(&t, NULL, barrier_waiter, &other);
    wait_for_waiters(b, 1);
    assert_int_equal(run_stopped(barrier_wait_forever, b, false), TK_ECANCELED);
    pthread_join(t, NULL);
    assert_int_equal(other.result, TK_EBROKEN); /* a stopped wait breaks the barrier */
    assert_true(tk_barrier_broken(b));
    tk_barrier_reset(b);
    assert_int_equal(run_stopped(barrier_wait_forever, b, true), TK_ECANCELED);
    assert_true(tk_barrier_broken(b));
    tk_barrier_reset(b);
    assert_int_equal(run_stopped_ex(barrier_wait_forever, b, false, true), TK_ECANCELED);
    assert_true(tk_barrier_broken(b));
    tk_barrier_free(b);
}

static void barrier_survives_dead_waiter_breaks_on_dead_operation(void **state)
{
    (void)state;
    tk_barrier *b = tk_barrier_new(2, TK_SHARED);
    /* a party that dies while waiting still counts as arrived */
    pid_t pid = fork();
    if (pid == 0) {
        tk_barrier_wait(b, TK_FOREVER);
        _exit(0);
    }
    wait_for_waiters(b, 1);
    kill(pid, SIGKILL);
    reap(pid, -1);
    assert_int_equal(tk_barrier_wait(b, 10.0), 1);
    assert_false(tk_barrier_broken(b));
    /* one that dies inside an operation (holding the internal lock) breaks it */
    pid = fork();
    if (pid == 0) {
        tk__mutex_acquire(&b->m, TK_FOREVER, "test");
        _exit(0);
    }
    reap(pid, 0);
    assert_int_equal(tk_barrier_wait(b, 1.0), TK_EBROKEN);
    assert_true(tk_barrier_broken(b));
    assert_int_equal(tk_barrier_reset(b), 0);
    assert_false(tk_barrier_broken(b));
    struct bwait w = {b, 30.0, 99};
    pthread_t t;
    pthread_create(&t, NULL, barrier_waiter, &w);
    int mine = tk_barrier_wait(b, 30.0);
    pthread_join(t, NULL);
    assert_int_equal(mine + w.result, 1);
    tk_barrier_free(b);
}


/* ------------------------------------------------------------------ EINTR */

static void on_signal(int sig) { (void)sig; }

struct pester {
    pthread_t target;
    atomic_int stop;
};

static void *pester_thread(void *arg)
{
    struct pester *p = arg;
    while (!atomic_load(&p->stop)) {
        pthread_kill(p->target, SIGUSR1);
        usleep(5000);
    }
    return NULL;
}

static void *hold_lock_thread(void *arg)
{
    tk_lock *l = arg;
    tk_lock_acquire(l, TK_FOREVER);
    usleep(600000);
    tk_lock_release(l);
    return NULL;
}

/* Signals (without SA_RESTART) hitting a waiting thread neither end its
 * wait early nor stretch it. */
static void waits_survive_signals(void **state)
{
    unsigned flags = FLAGS(state);
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_signal;
    sigaction(SIGUSR1, &sa, &old);
    struct pester p = {.target = pthread_self()};
    pthread_t t;
    pthread_create(&t, NULL, pester_thread, &p);

    tk_event *e = tk_event_new(flags);
    tk_sem *s = tk_sem_new(0, flags);
    tk_cond *c = tk_cond_new(flags);
    tk_lock *l = tk_lock_new(flags);
    const double to = 0.25;
    double t0 = tt_now();
    assert_int_equal(tk_event_wait(e, to), TK_ETIMEDOUT);
    assert_int_equal(tk_sem_acquire(s, to), TK_ETIMEDOUT);
    tk_cond_acquire(c, TK_FOREVER);
    assert_int_equal(tk_cond_wait(c, to), TK_ETIMEDOUT);
    tk_cond_release(c);
    tk_lock_acquire(l, TK_FOREVER);
    assert_int_equal(tk_lock_acquire(l, to), TK_ETIMEDOUT); /* sleeping on itself */
    tk_lock_release(l);
    double el = tt_now() - t0;
    assert_true(el >= 4 * to - 0.02);
    assert_true(el < 4 * to + slack());
    /* and a contended lock */
    pthread_t h;
    pthread_create(&h, NULL, hold_lock_thread, l);
    while (!tk_lock_locked(l))
        usleep(1000);
    t0 = tt_now();
    assert_int_equal(tk_lock_acquire(l, to), TK_ETIMEDOUT);
    assert_true(tt_now() - t0 >= to - 0.01);
    assert_int_equal(tk_lock_acquire(l, 30.0), 0);
    tk_lock_release(l);
    pthread_join(h, NULL);

    atomic_store(&p.stop, 1);
    pthread_join(t, NULL);
    sigaction(SIGUSR1, &old, NULL);
    tk_event_free(e);
    tk_sem_free(s);
    tk_cond_free(c);
    tk_lock_free(l);
}

/* ---------------------------------------------------------- allocation */

static void constructors_fail_cleanly_without_memory(void **state)
{
    (void)state;
    tk__fault_set(1);
    assert_null(tk_lock_new(0));
    assert_int_equal(tk_last_error_code(), TK_ENOMEM);
    tk__fault_set(1);
    assert_null(tk_rlock_new(0));
    tk__fault_set(1);
    assert_null(tk_cond_new(0));
    tk_lock *l = tk_lock_new(0);
    tk__fault_set(1);
    assert_null(tk_cond_new_with_lock(l));
    tk__fault_set(1);
    assert_null(tk_sem_new(1, 0));
    tk__fault_set(1);
    assert_null(tk_event_new(0));
    tk__fault_set(1);
    assert_null(tk_barrier_new(2, 0));
    assert_int_equal(tk_last_error_code(), TK_ENOMEM);
    tk__fault_set(0);
    tk_lock_free(l);
}

/* Each test twice: on a private and on a TK_SHARED object. */
#define BOTH(fn)                                                              \
    {#fn, fn, NULL, NULL, &kinds[0]}, {#fn "_shared", fn, NULL, NULL, &kinds[1]}

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(cond_rules_and_messages),
        BOTH(cond_notify_wakes_at_most_n),
        BOTH(cond_bounded_buffer_shares_a_lock),
        BOTH(cond_wait_is_stoppable),
        cmocka_unit_test(cond_between_processes),
        cmocka_unit_test(cond_survives_a_dead_waiter),
        cmocka_unit_test(cond_dead_in_notify_is_broken),
        BOTH(sem_counts_and_times_out),
        BOTH(sem_bounded_refuses_extra_release),
        BOTH(sem_release_wakes_waiter),
        BOTH(sem_acquire_is_stoppable),
        cmocka_unit_test(sem_of_one_admits_one_process),
        cmocka_unit_test(sem_survives_a_dead_waiter),
        BOTH(event_set_clear_wait),
        BOTH(event_set_wakes_all_even_if_cleared),
        BOTH(event_wait_is_stoppable),
        cmocka_unit_test(event_set_by_child_wakes_parent),
        BOTH(barrier_rules),
        BOTH(barrier_reused_over_1000_rounds),
        cmocka_unit_test(barrier_between_processes),
        BOTH(barrier_timeout_breaks_it),
        BOTH(barrier_abort_and_reset),
        BOTH(barrier_wait_is_stoppable),
        cmocka_unit_test(barrier_survives_dead_waiter_breaks_on_dead_operation),
        BOTH(waits_survive_signals),
        cmocka_unit_test(constructors_fail_cleanly_without_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
