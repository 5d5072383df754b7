/* §5 synchronisation: lock/rlock ownership errors and messages, EDEADLK,
 * timeouts, conditions (messages, notify counts), semaphores (TK_BOUNDED),
 * events, barriers (indices, broken states), TK_SHARED objects across
 * fork, robust locks (TK_OWNERDEAD), tk_shm. */
#include "conf.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

/* run fn(arg) in another pthread and wait for it */
static int other_rc;
static void run_in_thread(void *(*fn)(void *), void *arg)
{
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, fn, arg), 0);
    pthread_join(th, NULL);
}

static char other_msg[256];
static void *other_release_lock(void *l)
{
    other_rc = tk_lock_release(l);
    snprintf(other_msg, sizeof other_msg, "%s", tk_last_error());
    return NULL;
}
static void *other_release_rlock(void *l)
{
    other_rc = tk_rlock_release(l);
    snprintf(other_msg, sizeof other_msg, "%s", tk_last_error());
    return NULL;
}
static void *other_acquire_lock_poll(void *l)
{
    double t0 = conf_now();
    other_rc = tk_lock_acquire(l, 0.2);
    if (other_rc == TK_ETIMEDOUT && conf_now() - t0 < 0.15)
        other_rc = 12345;
    return NULL;
}
static void *other_acquire_rlock_poll(void *l)
{
    other_rc = tk_rlock_acquire(l, 0);
    return NULL;
}

static void lock_for(unsigned flags)
{
    tk_lock *l = tk_lock_new(flags);
    assert_non_null(l);
    assert_false(tk_lock_locked(l));
    ASSERT_RC(tk_lock_release(l), TK_ESTATE);
    ASSERT_MSG("release unlocked lock");
    ASSERT_RC(tk_lock_acquire(l, TK_FOREVER), 0);
    assert_true(tk_lock_locked(l));
    /* self re-acquire: EDEADLK at once when blocking forever */
    double t0 = conf_now();
    ASSERT_RC(tk_lock_acquire(l, TK_FOREVER), TK_EDEADLK);
    ASSERT_RC(tk_lock_acquire(l, INFINITY), TK_EDEADLK);
    assert_true(conf_now() - t0 < 1.0);
    /* ... and times out like any other wait */
    t0 = conf_now();
    ASSERT_RC(tk_lock_acquire(l, 0.2), TK_ETIMEDOUT);
    assert_true(conf_now() - t0 >= 0.15);
    ASSERT_RC(tk_lock_acquire(l, 0), TK_ETIMEDOUT);
    /* other thread */
    run_in_thread(other_release_lock, l);
    ASSERT_RC(other_rc, TK_ESTATE);
    if (!strstr(other_msg, "cannot release un-acquired lock"))
        fail_msg("other thread's release: \"%s\"", other_msg);
    run_in_thread(other_acquire_lock_poll, l);
    ASSERT_RC(other_rc, TK_ETIMEDOUT);
    assert_true(tk_lock_locked(l));
    ASSERT_RC(tk_lock_release(l), 0);
    assert_false(tk_lock_locked(l));
    ASSERT_RC(tk_lock_acquire(NULL, 0), TK_EINVAL);
    ASSERT_RC(tk_lock_release(NULL), TK_EINVAL);
    tk_lock_free(l);
}

static void lock_private(void **state) { (void)state; lock_for(0); }
static void lock_shared(void **state) { (void)state; lock_for(TK_SHARED); }

static void rlock_for(unsigned flags)
{
    tk_rlock *l = tk_rlock_new(flags);
    assert_non_null(l);
    ASSERT_RC(tk_rlock_release(l), TK_ESTATE);
    ASSERT_MSG("release unlocked lock");
    ASSERT_RC(tk_rlock_acquire(l, TK_FOREVER), 0);
    ASSERT_RC(tk_rlock_acquire(l, TK_FOREVER), 0);
    ASSERT_RC(tk_rlock_acquire(l, 0), 0);
    assert_true(tk_rlock_locked(l));
    run_in_thread(other_release_rlock, l);
    ASSERT_RC(other_rc, TK_ESTATE);
    if (!strstr(other_msg, "cannot release un-acquired lock"))
        fail_msg("other thread's release: \"%s\"", other_msg);
    run_in_thread(other_acquire_rlock_poll, l);
    ASSERT_RC(other_rc, TK_ETIMEDOUT);
    ASSERT_RC(tk_rlock_release(l), 0);
    ASSERT_RC(tk_rlock_release(l), 0);
    assert_true(tk_rlock_locked(l));
    ASSERT_RC(tk_rlock_release(l), 0);
    assert_false(tk_rlock_locked(l));
    ASSERT_RC(tk_rlock_release(l), TK_ESTATE);
    run_in_thread(other_acquire_rlock_poll, l);
    ASSERT_RC(other_rc, 0); /* the other thread now holds it (and ended) */
    tk_rlock_free(l);
}

static void rlock_private(void **state) { (void)state; rlock_for(0); }
static void rlock_shared(void **state) { (void)state; rlock_for(TK_SHARED); }

/* ------------------------------------------------------------ conditions */

static tk_cond *g_cond;
static atomic_int woken;
static atomic_int waiting;

static void *cond_waiter(void *arg)
{
    (void)arg;
    tk_cond_acquire(g_cond, TK_FOREVER);
    atomic_fetch_add(&waiting, 1);
    int rc = tk_cond_wait(g_cond, 10.0);
    if (rc == 0)
        atomic_fetch_add(&woken, 1);
    tk_cond_release(g_cond);
    return NULL;
}

static void wait_waiting(int n)
{
    for (int i = 0; i < 500 && atomic_load(&waiting) < n; i++)
        conf_sleep(0.01);
    conf_sleep(0.05);
}

/* wait (generously) until `want` waiters were woken, then a little more to
 * see that no extra one wakes */
static void expect_woken(int want)
{
    for (int i = 0; i < 1000 && atomic_load(&woken) < want; i++)
        conf_sleep(0.01);
    conf_sleep(0.2);
    assert_int_equal(atomic_load(&woken), want);
}

static void cond_errors_and_timeout(void **state)
{
    (void)state;
    tk_cond *c = tk_cond_new(0);
    assert_non_null(c);
    ASSERT_RC(tk_cond_wait(c, 0), TK_ESTATE);
    ASSERT_MSG("cannot wait on un-acquired lock");
    ASSERT_RC(tk_cond_notify(c, 1), TK_ESTATE);
    ASSERT_MSG("cannot notify on un-acquired lock");
    ASSERT_RC(tk_cond_notify_all(c), TK_ESTATE);
    ASSERT_RC(tk_cond_release(c), TK_ESTATE);
    ASSERT_RC(tk_cond_acquire(c, 0), 0);
    double t0 = conf_now();
    ASSERT_RC(tk_cond_wait(c, 0.2), TK_ETIMEDOUT);
    assert_true(conf_now() - t0 >= 0.15);
    ASSERT_RC(tk_cond_wait(c, -1.5), TK_ETIMEDOUT);
    /* still held after a timeout */
    ASSERT_RC(tk_cond_notify(c, 1), 0);
    ASSERT_RC(tk_cond_release(c), 0);
    tk_cond_free(c);
    assert_null(tk_cond_new_with_lock(NULL));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
}

static void cond_notify_counts(void **state)
{
    (void)state;
    g_cond = tk_cond_new(0);
    atomic_store(&woken, 0);
    atomic_store(&waiting, 0);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, cond_waiter, NULL), 0);
    wait_waiting(4);
    ASSERT_RC(tk_cond_acquire(g_cond, TK_FOREVER), 0);
    ASSERT_RC(tk_cond_notify(g_cond, 0), 0);
    ASSERT_RC(tk_cond_release(g_cond), 0);
    conf_sleep(0.2);
    assert_int_equal(atomic_load(&woken), 0);
    ASSERT_RC(tk_cond_acquire(g_cond, TK_FOREVER), 0);
    ASSERT_RC(tk_cond_notify(g_cond, 1), 0);
    ASSERT_RC(tk_cond_release(g_cond), 0);
    expect_woken(1);
    ASSERT_RC(tk_cond_acquire(g_cond, TK_FOREVER), 0);
    ASSERT_RC(tk_cond_notify(g_cond, 2), 0);
    ASSERT_RC(tk_cond_release(g_cond), 0);
    expect_woken(3);
    ASSERT_RC(tk_cond_acquire(g_cond, TK_FOREVER), 0);
    ASSERT_RC(tk_cond_notify_all(g_cond), 0);
    ASSERT_RC(tk_cond_release(g_cond), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&woken), 4);
    tk_cond_free(g_cond);
}

static void cond_with_shared_lock(void **state)
{
    (void)state;
    tk_lock *l = tk_lock_new(0);
    g_cond = tk_cond_new_with_lock(l);
    tk_cond *c2 = tk_cond_new_with_lock(l);
    assert_non_null(g_cond);
    assert_non_null(c2);
    atomic_store(&woken, 0);
    atomic_store(&waiting, 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, cond_waiter, NULL), 0);
    wait_waiting(1);
    /* holding the lock through tk_lock_acquire is holding the condition */
    ASSERT_RC(tk_lock_acquire(l, TK_FOREVER), 0);
    ASSERT_RC(tk_cond_notify(g_cond, 1), 0);
    ASSERT_RC(tk_cond_notify(c2, 1), 0);
    ASSERT_RC(tk_lock_release(l), 0);
    pthread_join(th, NULL);
    assert_int_equal(atomic_load(&woken), 1);
    tk_cond_free(g_cond);
    tk_cond_free(c2);
    assert_false(tk_lock_locked(l));
    ASSERT_RC(tk_lock_acquire(l, 0), 0); /* the lock outlives the conds */
    ASSERT_RC(tk_lock_release(l), 0);
    tk_lock_free(l);
}

/* ---------------------------------------------------------- semaphores */

static void *release_sem(void *s)
{
    other_rc = tk_sem_release(s);
    return NULL;
}

static void semaphores(void **state)
{
    (void)state;
    tk_sem *s = tk_sem_new(2, 0);
    ASSERT_RC(tk_sem_acquire(s, 0), 0);
    ASSERT_RC(tk_sem_acquire(s, 0), 0);
    ASSERT_RC(tk_sem_acquire(s, 0), TK_ETIMEDOUT);
    double t0 = conf_now();
    ASSERT_RC(tk_sem_acquire(s, 0.2), TK_ETIMEDOUT);
    assert_true(conf_now() - t0 >= 0.15);
    run_in_thread(release_sem, s); /* any thread may release */
    ASSERT_RC(other_rc, 0);
    ASSERT_RC(tk_sem_acquire(s, 0), 0);
    for (int i = 0; i < 5; i++)
        ASSERT_RC(tk_sem_release(s), 0); /* unbounded: above the initial value */
    for (int i = 0; i < 5; i++)
        ASSERT_RC(tk_sem_acquire(s, 0), 0);
    tk_sem_free(s);

    unsigned fl[] = {TK_BOUNDED, TK_BOUNDED | TK_SHARED};
    for (int f = 0; f < 2; f++) {
        s = tk_sem_new(1, fl[f]);
        assert_non_null(s);
        ASSERT_RC(tk_sem_release(s), TK_EOVERFLOW);
        ASSERT_MSG("Semaphore released too many times");
        ASSERT_RC(tk_sem_acquire(s, 0), 0);
        ASSERT_RC(tk_sem_release(s), 0);
        ASSERT_RC(tk_sem_release(s), TK_EOVERFLOW);
        tk_sem_free(s);
    }
    s = tk_sem_new(0, TK_BOUNDED);
    ASSERT_RC(tk_sem_release(s), TK_EOVERFLOW);
    tk_sem_free(s);
}

/* -------------------------------------------------------------- events */

static tk_event *g_ev;
static void *event_waiter(void *arg)
{
    (void)arg;
    if (tk_event_wait(g_ev, 10.0) == 0)
        atomic_fetch_add(&woken, 1);
    return NULL;
}

static void events(void **state)
{
    (void)state;
    g_ev = tk_event_new(0);
    assert_false(tk_event_is_set(g_ev));
    ASSERT_RC(tk_event_wait(g_ev, 0), TK_ETIMEDOUT);
    double t0 = conf_now();
    ASSERT_RC(tk_event_wait(g_ev, 0.2), TK_ETIMEDOUT);
    assert_true(conf_now() - t0 >= 0.15);
    atomic_store(&woken, 0);
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, event_waiter, NULL);
    conf_sleep(0.1);
    ASSERT_RC(tk_event_set(g_ev), 0);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&woken), 3);
    assert_true(tk_event_is_set(g_ev));
    ASSERT_RC(tk_event_wait(g_ev, 0), 0);
    ASSERT_RC(tk_event_set(g_ev), 0);
    ASSERT_RC(tk_event_clear(g_ev), 0);
    assert_false(tk_event_is_set(g_ev));
    ASSERT_RC(tk_event_wait(g_ev, 0), TK_ETIMEDOUT);
    ASSERT_RC(tk_event_set(NULL), TK_EINVAL);
    assert_false(tk_event_is_set(NULL));
    tk_event_free(g_ev);
}

/* ------------------------------------------------------------- barriers */

static tk_barrier *g_bar;
static atomic_int idx_seen[8];
static atomic_int bar_results[8];
static double bar_timeout = 10.0;

static void *barrier_waiter(void *arg)
{
    int i = (int)(intptr_t)arg;
    int rc = tk_barrier_wait(g_bar, bar_timeout);
    atomic_store(&bar_results[i], rc);
    if (rc >= 0 && rc < 8)
        atomic_fetch_add(&idx_seen[rc], 1);
    return NULL;
}

static void barrier_indices(void **state)
{
    (void)state;
    assert_null(tk_barrier_new(0, 0));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    ASSERT_MSG("parties must be > 0");
    assert_null(tk_barrier_new((unsigned)INT_MAX + 1u, 0));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    tk_barrier *one = tk_barrier_new(1, 0);
    ASSERT_RC(tk_barrier_wait(one, 0), 0);
    ASSERT_RC(tk_barrier_wait(one, TK_FOREVER), 0);
    tk_barrier_free(one);

    g_bar = tk_barrier_new(4, 0);
    assert_int_equal(tk_barrier_parties(g_bar), 4);
    bar_timeout = 10.0;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 8; i++)
            atomic_store(&idx_seen[i], 0);
        pthread_t th[3];
        for (int i = 0; i < 3; i++)
            pthread_create(&th[i], NULL, barrier_waiter, (void *)(intptr_t)i);
        for (int i = 0; i < 500 && tk_barrier_n_waiting(g_bar) < 3; i++)
            conf_sleep(0.01);
        assert_int_equal(tk_barrier_n_waiting(g_bar), 3);
        int mine = tk_barrier_wait(g_bar, 10.0);
        /* the last to arrive gets parties-1 */
        assert_int_equal(mine, 3);
        atomic_fetch_add(&idx_seen[mine], 1);
        for (int i = 0; i < 3; i++)
            pthread_join(th[i], NULL);
        for (int i = 0; i < 4; i++)
            if (atomic_load(&idx_seen[i]) != 1)
                fail_msg("round %d: index %d seen %d times", round, i,
                         atomic_load(&idx_seen[i]));
        assert_false(tk_barrier_broken(g_bar));
    }
    tk_barrier_free(g_bar);
}

static void barrier_broken_states(void **state)
{
    (void)state;
    /* a timeout breaks it: ETIMEDOUT to the waiter, EBROKEN to the others */
    g_bar = tk_barrier_new(3, 0);
    bar_timeout = 10.0;
    pthread_t th;
    pthread_create(&th, NULL, barrier_waiter, (void *)(intptr_t)0);
    for (int i = 0; i < 500 && tk_barrier_n_waiting(g_bar) < 1; i++)
        conf_sleep(0.01);
    ASSERT_RC(tk_barrier_wait(g_bar, 0.2), TK_ETIMEDOUT);
    pthread_join(th, NULL);
    ASSERT_RC(atomic_load(&bar_results[0]), TK_EBROKEN);
    assert_true(tk_barrier_broken(g_bar));
    assert_int_equal(tk_barrier_n_waiting(g_bar), 0);
    ASSERT_RC(tk_barrier_wait(g_bar, 0), TK_EBROKEN);
    ASSERT_RC(tk_barrier_wait(g_bar, TK_FOREVER), TK_EBROKEN);
    ASSERT_RC(tk_barrier_reset(g_bar), 0);
    assert_false(tk_barrier_broken(g_bar));
    /* abort: current waiters and later waits get EBROKEN */
    pthread_create(&th, NULL, barrier_waiter, (void *)(intptr_t)1);
    for (int i = 0; i < 500 && tk_barrier_n_waiting(g_bar) < 1; i++)
        conf_sleep(0.01);
    ASSERT_RC(tk_barrier_abort(g_bar), 0);
    pthread_join(th, NULL);
    ASSERT_RC(atomic_load(&bar_results[1]), TK_EBROKEN);
    ASSERT_RC(tk_barrier_wait(g_bar, 0), TK_EBROKEN);
    ASSERT_RC(tk_barrier_reset(g_bar), 0);
    /* reset during a round: the waiters get EBROKEN */
    pthread_create(&th, NULL, barrier_waiter, (void *)(intptr_t)2);
    for (int i = 0; i < 500 && tk_barrier_n_waiting(g_bar) < 1; i++)
        conf_sleep(0.01);
    ASSERT_RC(tk_barrier_reset(g_bar), 0);
    pthread_join(th, NULL);
    ASSERT_RC(atomic_load(&bar_results[2]), TK_EBROKEN);
    /* and it is usable afterwards */
    assert_false(tk_barrier_broken(g_bar));
    pthread_t t2[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t2[i], NULL, barrier_waiter, (void *)(intptr_t)(3 + i));
    int mine = tk_barrier_wait(g_bar, 10.0);
    assert_true(mine >= 0 && mine <= 2);
    for (int i = 0; i < 2; i++)
        pthread_join(t2[i], NULL);
    assert_true(atomic_load(&bar_results[3]) >= 0);
    assert_true(atomic_load(&bar_results[4]) >= 0);
    tk_barrier_free(g_bar);
}

/* --------------------------------------------------- TK_SHARED and fork */

struct shared_objs {
    tk_lock *lock;
    tk_rlock *rlock;
    tk_sem *sem;
    tk_event *ev;
    tk_barrier *bar;
    tk_cond *cond;
    int *data;
};

static int child_wait(pid_t pid)
{
    int st = 0;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void shared_objects_across_fork(void **state)
{
    (void)state;
    struct shared_objs o;
    o.lock = tk_lock_new(TK_SHARED);
    o.sem = tk_sem_new(0, TK_SHARED);
    o.ev = tk_event_new(TK_SHARED);
    o.bar = tk_barrier_new(2, TK_SHARED);
    o.cond = tk_cond_new(TK_SHARED);
    o.data = tk_shm_alloc(sizeof(int) * 4);
    assert_non_null(o.lock);
    assert_non_null(o.sem);
    assert_non_null(o.ev);
    assert_non_null(o.bar);
    assert_non_null(o.cond);
    assert_non_null(o.data);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int bad = 0;
        if (tk_lock_acquire(o.lock, 5.0) != 0)
            bad |= 1;
        o.data[0] = 1;
        conf_sleep(0.3);
        tk_lock_release(o.lock);
        if (tk_sem_release(o.sem) != 0)
            bad |= 2;
        if (tk_barrier_wait(o.bar, 10.0) < 0)
            bad |= 4;
        if (tk_event_wait(o.ev, 10.0) != 0)
            bad |= 8;
        /* condition: wait for parent's notify */
        tk_cond_acquire(o.cond, 10.0);
        o.data[1] = 1;
        while (o.data[2] == 0)
            if (tk_cond_wait(o.cond, 10.0) != 0) {
                bad |= 16;
                break;
            }
        tk_cond_release(o.cond);
        _exit(bad);
    }
    assert_true(pid > 0);
    /* wait until the child holds the lock */
    for (int i = 0; i < 500 && o.data[0] == 0; i++)
        conf_sleep(0.01);
    assert_true(tk_lock_locked(o.lock));
    ASSERT_RC(tk_lock_acquire(o.lock, 0), TK_ETIMEDOUT);
    ASSERT_RC(tk_lock_release(o.lock), TK_ESTATE); /* held by the child */
    ASSERT_RC(tk_lock_acquire(o.lock, 10.0), 0);
    ASSERT_RC(tk_lock_release(o.lock), 0);
    ASSERT_RC(tk_sem_acquire(o.sem, 10.0), 0);
    assert_true(tk_barrier_wait(o.bar, 10.0) >= 0);
    ASSERT_RC(tk_event_set(o.ev), 0);
    for (int i = 0; i < 500; i++) {
        ASSERT_RC(tk_cond_acquire(o.cond, 10.0), 0);
        int ready = o.data[1];
        if (ready) {
            o.data[2] = 1;
            ASSERT_RC(tk_cond_notify_all(o.cond), 0);
        }
        ASSERT_RC(tk_cond_release(o.cond), 0);
        if (ready)
            break;
        conf_sleep(0.01);
    }
    int rc = child_wait(pid);
    if (rc != 0)
        fail_msg("child reported problems: %#x", rc);
    tk_lock_free(o.lock);
    tk_sem_free(o.sem);
    tk_event_free(o.ev);
    tk_barrier_free(o.bar);
    tk_cond_free(o.cond);
    tk_shm_free(o.data);
}

static void robust_lock_ownerdead(void **state)
{
    (void)state;
    tk_lock *l = tk_lock_new(TK_SHARED);
    tk_rlock *rl = tk_rlock_new(TK_SHARED);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        tk_lock_acquire(l, 5.0);
        tk_rlock_acquire(rl, 5.0);
        tk_rlock_acquire(rl, 5.0);
        _exit(0); /* dies holding both */
    }
    assert_int_equal(child_wait(pid), 0);
    ASSERT_RC(tk_lock_acquire(l, 5.0), TK_OWNERDEAD);
    assert_true(tk_lock_locked(l));
    ASSERT_RC(tk_lock_release(l), 0);
    ASSERT_RC(tk_lock_acquire(l, 5.0), 0);
    ASSERT_RC(tk_lock_release(l), 0);
    ASSERT_RC(tk_rlock_acquire(rl, 5.0), TK_OWNERDEAD);
    ASSERT_RC(tk_rlock_release(rl), 0); /* recursion count restarts at 1 */
    assert_false(tk_rlock_locked(rl));
    ASSERT_RC(tk_rlock_acquire(rl, 0), 0);
    ASSERT_RC(tk_rlock_release(rl), 0);
    tk_lock_free(l);
    tk_rlock_free(rl);
}

/* C99 has no max_align_t: the strictest alignment of the basic types */
struct align_probe {
    char c;
    union {
        long double ld;
        long long ll;
        double d;
        void *p;
    } u;
};
#define MAX_ALIGN offsetof(struct align_probe, u)

static void shm(void **state)
{
    (void)state;
    assert_null(tk_shm_alloc(0));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    unsigned char *p = tk_shm_alloc(10000);
    unsigned char *q = tk_shm_alloc(1);
    assert_non_null(p);
    assert_non_null(q);
    assert_true(((uintptr_t)p % MAX_ALIGN) == 0);
    assert_true(((uintptr_t)q % MAX_ALIGN) == 0);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(p[i], 0);
    assert_true(q >= p + 10000 || q + 1 <= p); /* no overlap */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        p[9999] = 42;
        q[0] = 7;
        _exit(0);
    }
    assert_int_equal(child_wait(pid), 0);
    assert_int_equal(p[9999], 42);
    assert_int_equal(q[0], 7);
    tk_shm_free(p);
    tk_shm_free(q);
}

int main(void)
{
    CONF_MAIN_GUARD();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lock_private),
        cmocka_unit_test(lock_shared),
        cmocka_unit_test(rlock_private),
        cmocka_unit_test(rlock_shared),
        cmocka_unit_test(cond_errors_and_timeout),
        cmocka_unit_test(cond_notify_counts),
        cmocka_unit_test(cond_with_shared_lock),
        cmocka_unit_test(semaphores),
        cmocka_unit_test(events),
        cmocka_unit_test(barrier_indices),
        cmocka_unit_test(barrier_broken_states),
        cmocka_unit_test(shared_objects_across_fork),
        cmocka_unit_test(robust_lock_ownerdead),
        cmocka_unit_test(shm),
    };
    return cmocka_run_group_tests_name("conformance: §5 sync", tests, NULL, NULL);
}
