/* test_sync_lock.c - tk_lock, tk_rlock and tk_shm_alloc: ownership rules
 * and CPython's messages, timeouts, counters under contention between
 * threads and between processes, robust shared locks, and the fast path's
 * cost against a pthread mutex. Every lock test runs for both kinds
 * (private and TK_SHARED). */
#include "common/testutil.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "sync_int.h"
#include "taskkit.h"

static unsigned kinds[] = {0, TK_SHARED};
#define FLAGS(state) (*(unsigned *)*(state))

static double slack(void) { return tt_slow_mode() ? 10.0 : 2.0; }

/* ------------------------------------------------------------------ misc */

static void flags_and_null_are_refused(void **state)
{
    (void)state;
    assert_null(tk_lock_new(TK_BOUNDED));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    assert_non_null(strstr(tk_last_error(), "unknown flag bits 0x2"));
    assert_null(tk_lock_new(4));
    assert_null(tk_rlock_new(TK_BOUNDED | TK_SHARED));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    assert_int_equal(tk_lock_acquire(NULL, 0), TK_EINVAL);
    assert_int_equal(tk_lock_release(NULL), TK_EINVAL);
    assert_false(tk_lock_locked(NULL));
    assert_int_equal(tk_rlock_acquire(NULL, 0), TK_EINVAL);
    assert_int_equal(tk_rlock_release(NULL), TK_EINVAL);
    assert_false(tk_rlock_locked(NULL));
    tk_lock_free(NULL);
    tk_rlock_free(NULL);
}

/* ------------------------------------------------------------- lock rules */

static void acquire_release_locked(void **state)
{
    tk_lock *l = tk_lock_new(FLAGS(state));
    assert_non_null(l);
    assert_false(tk_lock_locked(l));
    assert_int_equal(tk_lock_acquire(l, TK_FOREVER), 0);
    assert_true(tk_lock_locked(l));
    assert_int_equal(tk_lock_release(l), 0);
    assert_false(tk_lock_locked(l));
    assert_int_equal(tk_lock_acquire(l, 0), 0); /* polling a free lock takes it */
    assert_int_equal(tk_lock_release(l), 0);
    assert_int_equal(tk_lock_acquire(l, 5.0), 0);
    assert_int_equal(tk_lock_release(l), 0);
    tk_lock_free(l);
}

static void release_unlocked_lock(void **state)
{
    tk_lock *l = tk_lock_new(FLAGS(state));
    assert_int_equal(tk_lock_release(l), TK_ESTATE);
    assert_string_equal(tk_last_error(), "release unlocked lock");
    tk_lock_free(l);
}

struct holder {
    tk_lock *l;
    tk_rlock *rl;
    tk_sem *held, *done; /* raw sems: the holder says "held", waits for "done" */
};

static void *hold_thread(void *arg)
{
    struct holder *h = arg;
    if (h->l)
        tk_lock_acquire(h->l, TK_FOREVER);
    else
        tk_rlock_acquire(h->rl, TK_FOREVER);
    tk_sem_release(h->held);
    tk_sem_acquire(h->done, TK_FOREVER);
    if (h->l)
        tk_lock_release(h->l);
    else
        tk_rlock_release(h->rl);
    return NULL;
}

static void start_holder(struct holder *h, pthread_t *t)
{
    h->held = tk_sem_new(0, 0);
    h->done = tk_sem_new(0, 0);
    assert_int_equal(pthread_create(t, NULL, hold_thread, h), 0);
    assert_int_equal(tk_sem_acquire(h->held, 10.0), 0);
}

static void stop_holder(struct holder *h, pthread_t t)
{
    tk_sem_release(h->done);
    pthread_join(t, NULL);
    tk_sem_free(h->held);
    tk_sem_free(h->done);
}

static void release_by_non_owner(void **state)
{
    struct holder h = {.l = tk_lock_new(FLAGS(state))};
    pthread_t t;
    start_holder(&h, &t);
    assert_true(tk_lock_locked(h.l));
    assert_int_equal(tk_lock_release(h.l), TK_ESTATE);
    assert_string_equal(tk_last_error(), "cannot release un-acquired lock");
    assert_true(tk_lock_locked(h.l)); /* still the other thread's */
    /* timeouts against another holder */
    double t0 = tt_now();
    assert_int_equal(tk_lock_acquire(h.l, 0), TK_ETIMEDOUT);
    assert_int_equal(tk_lock_acquire(h.l, -3.0), TK_ETIMEDOUT); /* other negatives poll */
    assert_true(tt_now() - t0 < 0.05 * slack());
    t0 = tt_now();
    assert_int_equal(tk_lock_acquire(h.l, 0.2), TK_ETIMEDOUT);
    double el = tt_now() - t0;
    assert_true(el >= 0.19);
    assert_true(el < 0.2 + slack());
    assert_non_null(strstr(tk_last_error(), "timed out"));
    stop_holder(&h, t);
    assert_false(tk_lock_locked(h.l));
    tk_lock_free(h.l);
}

static void reacquire_own_lock(void **state)
{
    tk_lock *l = tk_lock_new(FLAGS(state));
    assert_int_equal(tk_lock_acquire(l, TK_FOREVER), 0);
    double t0 = tt_now();
    assert_int_equal(tk_lock_acquire(l, TK_FOREVER), TK_EDEADLK);
    assert_non_null(strstr(tk_last_error(), "already holds"));
    assert_int_equal(tk_lock_acquire(l, INFINITY), TK_EDEADLK);
    assert_int_equal(tk_lock_acquire(l, 0), TK_ETIMEDOUT);
    assert_int_equal(tk_lock_acquire(l, -0.5), TK_ETIMEDOUT);
    assert_true(tt_now() - t0 < 0.05 * slack());
    t0 = tt_now();
    assert_int_equal(tk_lock_acquire(l, 0.15), TK_ETIMEDOUT); /* waits it out */
    assert_true(tt_now() - t0 >= 0.14);
    assert_true(tk_lock_locked(l));
    assert_int_equal(tk_lock_release(l), 0);
    tk_lock_free(l);
}

static void nan_timeout_is_refused(void **state)
{
    tk_lock *l = tk_lock_new(FLAGS(state));
    assert_int_equal(tk_lock_acquire(l, NAN), TK_EINVAL);
    assert_string_equal(tk_last_error(), "tk_lock_acquire: timeout must not be NaN");
    assert_false(tk_lock_locked(l));
    tk_rlock *r = tk_rlock_new(FLAGS(state));
    assert_int_equal(tk_rlock_acquire(r, NAN), TK_EINVAL);
    tk_rlock_free(r);
    tk_lock_free(l);
}

struct later {
    tk_lock *l;
    double delay;
};

static void *release_later(void *arg)
{
    struct later *x = arg;
    tk_lock_acquire(x->l, TK_FOREVER);
    usleep((useconds_t)(x->delay * 1e6));
    tk_lock_release(x->l);
    return NULL;
}

static void huge_timeout_is_accepted(void **state)
{
    struct later x = {tk_lock_new(FLAGS(state)), 0.1};
    pthread_t t;
    pthread_create(&t, NULL, release_later, &x);
    while (!tk_lock_locked(x.l))
        usleep(1000);
    assert_int_equal(tk_lock_acquire(x.l, 9e9), 0);
    assert_int_equal(tk_lock_release(x.l), 0);
    pthread_join(t, NULL);
    assert_int_equal(tk_lock_acquire(x.l, 1e300), 0);
    assert_int_equal(tk_lock_release(x.l), 0);
    tk_lock_free(x.l);
}

/* ------------------------------------------------------------- counters */

struct counter {
    tk_lock *l;
    long *value;
    long n;
};

static void *count_thread(void *arg)
{
    struct counter *c = arg;
    for (long i = 0; i < c->n; i++) {
        if (tk_lock_acquire(c->l, TK_FOREVER) < 0)
            return (void *)1;
        (*c->value)++;
        if (tk_lock_release(c->l) < 0)
            return (void *)1;
    }
    return NULL;
}

static long scale(long n) { return tt_slow_mode() ? n / 10 : n; }

static void two_threads_count_exactly(void **state)
{
    long value = 0;
    struct counter c = {tk_lock_new(FLAGS(state)), &value, scale(1000000)};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, count_thread, &c);
    for (int i = 0; i < 2; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        assert_null(ret);
    }
    assert_int_equal(value, 2 * c.n);
    assert_false(tk_lock_locked(c.l));
    tk_lock_free(c.l);
}

static void four_processes_count_exactly(void **state)
{
    (void)state;
    long *value = tk_shm_alloc(sizeof *value);
    struct counter c = {tk_lock_new(TK_SHARED), value, scale(100000)};
    assert_non_null(value);
    pid_t pids[4];
    for (int i = 0; i < 4; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0)
            _exit(count_thread(&c) == NULL ? 0 : 1);
    }
    for (int i = 0; i < 4; i++) {
        int st;
        assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    assert_int_equal(*value, 4 * c.n);
    tk_lock_free(c.l);
    tk_shm_free(value);
}

/* ------------------------------------------------------------ robustness */

static void die_holding(tk_lock *l, tk_rlock *rl)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (l)
            tk_lock_acquire(l, TK_FOREVER);
        if (rl) {
            tk_rlock_acquire(rl, TK_FOREVER);
            tk_rlock_acquire(rl, TK_FOREVER);
        }
        _exit(0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
}

static void shared_lock_of_dead_holder_is_handed_on(void **state)
{
    (void)state;
    tk_lock *l = tk_lock_new(TK_SHARED);
    const double timeouts[] = {TK_FOREVER, 0, 5.0};
    for (int i = 0; i < 3; i++) {
        die_holding(l, NULL);
        assert_true(tk_lock_locked(l));
        assert_int_equal(tk_lock_acquire(l, timeouts[i]), TK_OWNERDEAD);
        assert_true(tk_lock_locked(l)); /* held by us now */
        assert_int_equal(tk_lock_acquire(l, 0), TK_ETIMEDOUT);
        assert_int_equal(tk_lock_release(l), 0);
        /* and normal use afterwards */
        assert_int_equal(tk_lock_acquire(l, 1.0), 0);
        assert_int_equal(tk_lock_release(l), 0);
        assert_int_equal(tk_lock_release(l), TK_ESTATE);
        assert_string_equal(tk_last_error(), "release unlocked lock");
    }
    tk_lock_free(l);
}

static void shared_rlock_of_dead_holder_restarts_count(void **state)
{
    (void)state;
    tk_rlock *rl = tk_rlock_new(TK_SHARED);
    die_holding(NULL, rl);
    assert_int_equal(tk_rlock_acquire(rl, TK_FOREVER), TK_OWNERDEAD);
    assert_int_equal(tk_rlock_release(rl), 0); /* one level, not the dead one's two */
    assert_false(tk_rlock_locked(rl));
    assert_int_equal(tk_rlock_acquire(rl, 0), 0);
    assert_int_equal(tk_rlock_release(rl), 0);
    tk_rlock_free(rl);
}

/* ------------------------------------------------------------------ rlock */

static void rlock_reenters(void **state)
{
    tk_rlock *rl = tk_rlock_new(FLAGS(state));
    assert_non_null(rl);
    assert_int_equal(tk_rlock_release(rl), TK_ESTATE);
    assert_string_equal(tk_last_error(), "release unlocked lock");
    for (int i = 0; i < 3; i++)
        assert_int_equal(tk_rlock_acquire(rl, i == 1 ? 0 : TK_FOREVER), 0);
    assert_true(tk_rlock_locked(rl));
    for (int i = 0; i < 3; i++) {
        assert_true(tk_rlock_locked(rl));
        assert_int_equal(tk_rlock_release(rl), 0);
    }
    assert_false(tk_rlock_locked(rl));
    assert_int_equal(tk_rlock_release(rl), TK_ESTATE);
    assert_string_equal(tk_last_error(), "release unlocked lock");
    tk_rlock_free(rl);
}

static void rlock_other_thread(void **state)
{
    struct holder h = {.rl = tk_rlock_new(FLAGS(state))};
    pthread_t t;
    start_holder(&h, &t);
    assert_int_equal(tk_rlock_release(h.rl), TK_ESTATE);
    assert_string_equal(tk_last_error(), "cannot release un-acquired lock");
    assert_int_equal(tk_rlock_acquire(h.rl, 0), TK_ETIMEDOUT);
    double t0 = tt_now();
    assert_int_equal(tk_rlock_acquire(h.rl, 0.1), TK_ETIMEDOUT);
    assert_true(tt_now() - t0 >= 0.09);
    stop_holder(&h, t);
    assert_int_equal(tk_rlock_acquire(h.rl, 0), 0);
    assert_int_equal(tk_rlock_release(h.rl), 0);
    tk_rlock_free(h.rl);
}

/* ------------------------------------------------------------------- shm */

static void shm_alloc_rules(void **state)
{
    (void)state;
    assert_null(tk_shm_alloc(0));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    assert_null(tk_shm_alloc(SIZE_MAX));
    assert_int_equal(tk_last_error_code(), TK_ENOMEM);
    unsigned char *a = tk_shm_alloc(100), *b = tk_shm_alloc(5000);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal((uintptr_t)a % alignof(max_align_t), 0);
    assert_int_equal((uintptr_t)b % alignof(max_align_t), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(a[i], 0);
    for (int i = 0; i < 5000; i++)
        assert_int_equal(b[i], 0);
    /* blocks never overlap */
    assert_true(a + 100 <= b || b + 5000 <= a);
    pid_t pid = fork();
    if (pid == 0) {
        memset(a, 7, 100);
        b[4999] = 9;
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    assert_int_equal(a[0], 7);
    assert_int_equal(a[99], 7);
    assert_int_equal(b[4999], 9);
    tk_shm_free(a);
    tk_shm_free(b);
    tk_shm_free(NULL);
    static max_align_t not_shm[4];
    tk_shm_free(&not_shm[2]);
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
}

static void shm_free_unmaps_only_this_view(void **state)
{
    (void)state;
    int *p = tk_shm_alloc(sizeof *p);
    tk_sem *go = tk_sem_new(0, TK_SHARED);
    pid_t pid = fork();
    if (pid == 0) {
        tk_sem_acquire(go, TK_FOREVER);
        _exit(*p == 42 ? 0 : 1); /* the parent freed its view; ours stays */
    }
    *p = 42;
    tk_shm_free(p);
    tk_sem_release(go);
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    tk_sem_free(go);
}

/* Each lock test twice: on a private and on a TK_SHARED object. */
#define BOTH(fn)                                                              \
    {#fn, fn, NULL, NULL, &kinds[0]}, {#fn "_shared", fn, NULL, NULL, &kinds[1]}

/* A lock taken while the process is still single-threaded (where the fast
 * path skips locked instructions) keeps working once threads exist: the
 * new thread sees it held, waits, and gets it when the holder releases it. */
static tk_lock *st_lock;
static atomic_int st_phase;

static void *st_contender(void *arg)
{
    (void)arg;
    if (tk_lock_acquire(st_lock, 0) != TK_ETIMEDOUT)
        return (void *)1;
    atomic_store(&st_phase, 1);
    if (tk_lock_acquire(st_lock, 30.0) != 0)
        return (void *)2;
    atomic_store(&st_phase, 2);
    return tk_lock_release(st_lock) == 0 ? NULL : (void *)3;
}

static int mode_single_then_threads(void)
{
    st_lock = tk_lock_new(0);
    /* single-threaded: take and drop it, then take it again and keep it */
    if (tk_lock_acquire(st_lock, TK_FOREVER) != 0 || tk_lock_release(st_lock) != 0 ||
        tk_lock_release(st_lock) != TK_ESTATE || tk_lock_acquire(st_lock, TK_FOREVER) != 0 ||
        tk_lock_acquire(st_lock, TK_FOREVER) != TK_EDEADLK)
        return 10;
    pthread_t t;
    if (pthread_create(&t, NULL, st_contender, NULL) != 0)
        return 11;
    while (atomic_load(&st_phase) == 0)
        usleep(1000);
    usleep(20000); /* let it block on the lock */
    if (atomic_load(&st_phase) != 1 || tk_lock_release(st_lock) != 0)
        return 12;
    void *ret = (void *)9;
    pthread_join(t, &ret);
    if (ret != NULL || atomic_load(&st_phase) != 2 || tk_lock_locked(st_lock))
        return 13;
    tk_lock_free(st_lock);
    return 0;
}

static void lock_taken_single_threaded_works_with_threads(void **state)
{
    (void)state;
    char out[4096];
    int st = tt_run_self("single-then-threads", out, sizeof out, 60.0);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        fprintf(stderr, "%s", out);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
    static const struct tt_mode modes[] = {
        {"single-then-threads", mode_single_then_threads},
    };
    tt_child_main(modes, sizeof modes / sizeof modes[0]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lock_taken_single_threaded_works_with_threads),
        cmocka_unit_test(flags_and_null_are_refused),
        BOTH(acquire_release_locked),
        BOTH(release_unlocked_lock),
        BOTH(release_by_non_owner),
        BOTH(reacquire_own_lock),
        BOTH(nan_timeout_is_refused),
        BOTH(huge_timeout_is_accepted),
        BOTH(two_threads_count_exactly),
        cmocka_unit_test(four_processes_count_exactly),
        cmocka_unit_test(shared_lock_of_dead_holder_is_handed_on),
        cmocka_unit_test(shared_rlock_of_dead_holder_restarts_count),
        BOTH(rlock_reenters),
        BOTH(rlock_other_thread),
        cmocka_unit_test(shm_alloc_rules),
        cmocka_unit_test(shm_free_unmaps_only_this_view),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
