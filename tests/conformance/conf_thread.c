/* §4 threads: names, idents, native ids, lifecycle errors and messages,
 * results, join timeouts, daemon defaults, dummy threads, stop and the
 * cancellation points, timers, enumerate / active_count. */
#include "conf.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>

static long my_tid(void) { return (long)syscall(SYS_gettid); }

static int ret_arg(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    int64_t v = 0;
    tk_args_get_int(a, 0, &v);
    return (int)v;
}

/* what a thread saw about itself */
static struct {
    unsigned long ident;
    long native;
    bool is_cur;
    bool daemon;
    bool stop_seen;
    int rc;
    char name[64];
    char comm[64];
    bool usr2_blocked;
} seen;

static int report_self(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    tk_thread *me = tk_current_thread();
    seen.ident = (unsigned long)pthread_self();
    seen.native = my_tid();
    seen.is_cur = me != NULL;
    seen.daemon = tk_thread_daemon(me);
    seen.stop_seen = tk_stop_requested();
    snprintf(seen.name, sizeof seen.name, "%s", tk_thread_name(me));
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld/comm", my_tid());
    FILE *f = fopen(path, "r");
    seen.comm[0] = 0;
    if (f) {
        if (fgets(seen.comm, sizeof seen.comm, f))
            seen.comm[strcspn(seen.comm, "\n")] = 0;
        fclose(f);
    }
    sigset_t m;
    pthread_sigmask(SIG_SETMASK, NULL, &m);
    seen.usr2_blocked = sigismember(&m, SIGUSR2);
    return 17;
}

static void names_idents_results(void **state)
{
    (void)state;
    memset(&seen, 0, sizeof seen);
    assert_string_equal(tk_thread_name(tk_main_thread()), "MainThread");
    assert_ptr_equal(tk_current_thread(), tk_main_thread());
    assert_true(tk_thread_is_alive(tk_main_thread()));
    assert_false(tk_thread_daemon(tk_main_thread()));

    tk_thread *t1 = tk_thread_new(report_self, NULL, NULL);
    tk_thread *t2 = tk_thread_new(ret_arg, tk_args_of("i", 4), NULL);
    int n1, n2;
    assert_int_equal(sscanf(tk_thread_name(t1), "Thread-%d", &n1), 1);
    assert_int_equal(sscanf(tk_thread_name(t2), "Thread-%d", &n2), 1);
    assert_int_equal(n2, n1 + 1);
    assert_int_equal(tk_thread_ident(t1), 0);
    assert_int_equal(tk_thread_native_id(t1), 0);
    assert_int_equal(tk_thread_result(t1), TK_EXITCODE_NONE);
    assert_false(tk_thread_is_alive(t1));
    ASSERT_RC(tk_thread_start(t1), 0);
    assert_true(tk_thread_ident(t1) != 0);
    long nid = tk_thread_native_id(t1);
    ASSERT_RC(tk_thread_join(t1, 10.0), 0);
    assert_false(tk_thread_is_alive(t1));
    assert_int_equal(tk_thread_result(t1), 17);
    assert_true(seen.ident == tk_thread_ident(t1));
    assert_int_equal(seen.native, nid);
    assert_int_equal(tk_thread_native_id(t1), nid); /* stays set */
    assert_string_equal(seen.name, tk_thread_name(t1));
    assert_string_equal(seen.comm, tk_thread_name(t1));
    ASSERT_RC(tk_thread_start(t2), 0);
    ASSERT_RC(tk_thread_join(t2, 10.0), 0);
    assert_int_equal(tk_thread_result(t2), 4);
    tk_thread_free(t1);
    tk_thread_free(t2);
}

static void long_name_os_name_cut(void **state)
{
    (void)state;
    memset(&seen, 0, sizeof seen);
    tk_thread *t = tk_thread_new(report_self, NULL, NULL);
    const char *lname = "a-very-long-thread-name-indeed";
    ASSERT_RC(tk_thread_set_name(t, lname), 0);
    ASSERT_RC(tk_thread_start(t), 0);
    ASSERT_RC(tk_thread_join(t, 10.0), 0);
    assert_string_equal(tk_thread_name(t), lname);
    assert_string_equal(seen.name, lname);
    assert_int_equal(strlen(seen.comm), 15);
    assert_memory_equal(seen.comm, lname, 15);
    ASSERT_RC(tk_thread_set_name(t, "after-end"), 0);
    assert_string_equal(tk_thread_name(t), "after-end");
    tk_thread_free(t);
}

static void lifecycle_errors(void **state)
{
    (void)state;
    tk_thread *t = tk_thread_new(ret_arg, NULL, NULL);
    ASSERT_RC(tk_thread_join(t, 0), TK_ESTATE);
    ASSERT_MSG("cannot join thread before it is started");
    ASSERT_RC(tk_thread_start(t), 0);
    ASSERT_RC(tk_thread_start(t), TK_ESTATE);
    ASSERT_MSG("threads can only be started once");
    ASSERT_RC(tk_thread_join(t, TK_FOREVER), 0);
    ASSERT_RC(tk_thread_join(t, TK_FOREVER), 0);
    ASSERT_RC(tk_thread_start(t), TK_ESTATE);
    ASSERT_MSG("threads can only be started once");
    ASSERT_RC(tk_thread_start(tk_main_thread()), TK_ESTATE);
    ASSERT_MSG("threads can only be started once");
    ASSERT_RC(tk_thread_join(tk_current_thread(), 0), TK_ESTATE);
    ASSERT_MSG("cannot join current thread");
    ASSERT_RC(tk_thread_set_daemon(t, true), TK_ESTATE);
    ASSERT_RC(tk_thread_set_daemon(tk_main_thread(), true), TK_ESTATE);
    ASSERT_RC(tk_thread_set_stack_size(t, 1 << 20), TK_ESTATE);
    assert_null(tk_thread_new(NULL, NULL, NULL));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    tk_thread_free(t);
    tk_thread_free(tk_main_thread()); /* no-op */
    assert_string_equal(tk_thread_name(tk_main_thread()), "MainThread");
}

static int self_join(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    return tk_thread_join(tk_current_thread(), 0);
}

static void join_self_from_worker(void **state)
{
    (void)state;
    tk_thread *t = tk_thread_new(self_join, NULL, NULL);
    ASSERT_RC(tk_thread_start(t), 0);
    ASSERT_RC(tk_thread_join(t, 10.0), 0);
    assert_int_equal(tk_thread_result(t), TK_ESTATE);
    tk_thread_free(t);
}

static int sleep_forever(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    int rc = tk_sleep(TK_FOREVER);
    seen.stop_seen = tk_stop_requested();
    /* permanent: later sleeps are cancelled at once */
    double t0 = conf_now();
    int rc2 = tk_sleep(5.0);
    if (rc2 != TK_ECANCELED || conf_now() - t0 > 1.0)
        return 1000;
    return rc;
}

static void join_timeout_and_stop(void **state)
{
    (void)state;
    memset(&seen, 0, sizeof seen);
    tk_thread *t = tk_thread_new(sleep_forever, NULL, NULL);
    ASSERT_RC(tk_thread_start(t), 0);
    double t0 = conf_now();
    ASSERT_RC(tk_thread_join(t, 0), TK_ETIMEDOUT);
    ASSERT_RC(tk_thread_join(t, -0.5), TK_ETIMEDOUT);
    assert_true(conf_now() - t0 < 2.0);
    t0 = conf_now();
    ASSERT_RC(tk_thread_join(t, 0.3), TK_ETIMEDOUT);
    assert_true(conf_now() - t0 >= 0.25);
    assert_true(tk_thread_is_alive(t));
    assert_int_equal(tk_thread_result(t), TK_EXITCODE_NONE);
    ASSERT_RC(tk_thread_stop(t), 0);
    ASSERT_RC(tk_thread_join(t, 10.0), 0);
    assert_int_equal(tk_thread_result(t), TK_ECANCELED);
    assert_true(seen.stop_seen);
    ASSERT_RC(tk_thread_stop(t), 0); /* finished: no effect */
    ASSERT_RC(tk_thread_stop(NULL), TK_EINVAL);
    tk_thread_free(t);
}

static void stop_before_start_target_still_runs(void **state)
{
    (void)state;
    memset(&seen, 0, sizeof seen);
    tk_thread *t = tk_thread_new(report_self, NULL, NULL);
    ASSERT_RC(tk_thread_stop(t), 0);
    ASSERT_RC(tk_thread_start(t), 0);
    ASSERT_RC(tk_thread_join(t, 10.0), 0);
    assert_int_equal(tk_thread_result(t), 17);
    assert_true(seen.stop_seen);
    tk_thread_free(t);
}

static void main_sleep_returns_zero(void **state)
{
    (void)state;
    double t0 = conf_now();
    ASSERT_RC(tk_sleep(0.2), 0);
    assert_true(conf_now() - t0 >= 0.19);
    ASSERT_RC(tk_sleep(0), 0);
    ASSERT_RC(tk_sleep(-1.5), 0);
    assert_false(tk_stop_requested());
}

/* ------------------------------------------------------------- daemons */

static int make_child_report_daemon(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    tk_thread *c = tk_thread_new(ret_arg, NULL, NULL);
    int d = tk_thread_daemon(c);
    tk_thread_free(c);
    return d;
}

static void *dummy_body(void *arg)
{
    int *out = arg;
    tk_thread *me = tk_current_thread();
    out[0] = strncmp(tk_thread_name(me), "Dummy-", 6) == 0;
    out[1] = tk_thread_daemon(me);
    out[2] = tk_thread_is_alive(me);
    out[3] = tk_thread_start(me) == TK_ESTATE;
    tk_thread *c = tk_thread_new(ret_arg, NULL, NULL);
    out[4] = !tk_thread_daemon(c); /* created from a dummy: not daemon */
    tk_thread_free(c);
    out[5] = tk_current_thread() == me;
    tk_thread *main = tk_main_thread();
    out[6] = tk_thread_join(me, 0) == TK_ESTATE;
    out[7] = main != me;
    return NULL;
}

static void daemon_defaults(void **state)
{
    (void)state;
    tk_thread *nd = tk_thread_new(make_child_report_daemon, NULL, NULL);
    assert_false(tk_thread_daemon(nd));
    ASSERT_RC(tk_thread_start(nd), 0);
    ASSERT_RC(tk_thread_join(nd, 10.0), 0);
    assert_int_equal(tk_thread_result(nd), 0);
    tk_thread *d = tk_thread_new(make_child_report_daemon, NULL, NULL);
    ASSERT_RC(tk_thread_set_daemon(d, true), 0);
    assert_true(tk_thread_daemon(d));
    ASSERT_RC(tk_thread_start(d), 0);
    ASSERT_RC(tk_thread_set_daemon(d, false), TK_ESTATE);
    ASSERT_RC(tk_thread_join(d, 10.0), 0);
    assert_int_equal(tk_thread_result(d), 1);
    tk_thread_free(nd);
    tk_thread_free(d);

    int out[8] = {0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, dummy_body, out), 0);
    pthread_join(th, NULL);
    const char *what[] = {"named Dummy-N", "daemon", "alive", "start is TK_ESTATE",
                          "its children are not daemons", "same handle each time",
                          "join is TK_ESTATE", "not the main thread"};
    for (int i = 0; i < 8; i++)
        if (!out[i])
            fail_msg("dummy thread: expected %s", what[i]);
}

static void signal_mask_inherited(void **state)
{
    (void)state;
    memset(&seen, 0, sizeof seen);
    sigset_t m, old;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &m, &old);
    tk_thread *t = tk_thread_new(report_self, NULL, NULL);
    int rc = tk_thread_start(t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    ASSERT_RC(rc, 0);
    ASSERT_RC(tk_thread_join(t, 10.0), 0);
    assert_true(seen.usr2_blocked);
    tk_thread_free(t);
}

static void stack_size(void **state)
{
    (void)state;
    tk_thread *t = tk_thread_new(ret_arg, tk_args_of("i", 2), NULL);
    ASSERT_RC(tk_thread_set_stack_size(t, 1024), TK_EINVAL);
    ASSERT_RC(tk_thread_set_stack_size(t, 0), 0);
    ASSERT_RC(tk_thread_set_stack_size(t, 256 * 1024), 0);
    ASSERT_RC(tk_thread_start(t), 0);
    ASSERT_RC(tk_thread_join(t, 10.0), 0);
    assert_int_equal(tk_thread_result(t), 2);
    tk_thread_free(t);
}

/* ---------------------------------------------------------- enumerate */

static int wait_event_arg(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    void *e;
    tk_args_get_ptr(a, 0, &e);
    return tk_event_wait(e, 20.0);
}

static void enumerate_and_active_count(void **state)
{
    (void)state;
    size_t base = tk_active_count();
    assert_true(base >= 1);
    assert_int_equal(tk_thread_enumerate(NULL, 0), base);
    tk_event *e = tk_event_new(0);
    tk_thread *t[3];
    for (int i = 0; i < 3; i++) {
        t[i] = tk_thread_new(wait_event_arg, tk_args_of("p", (void *)e), NULL);
        ASSERT_RC(tk_thread_start(t[i]), 0);
        /* listed as soon as start returns */
        assert_int_equal(tk_active_count(), base + (size_t)i + 1);
    }
    tk_thread *out[32];
    size_t n = tk_thread_enumerate(out, 32);
    assert_int_equal(n, base + 3);
    assert_ptr_equal(out[0], tk_main_thread());
    int found = 0;
    for (size_t i = 0; i < n && i < 32; i++) {
        for (int j = 0; j < 3; j++)
            if (out[i] == t[j])
                found++;
    }
    assert_int_equal(found, 3);
    for (size_t i = 0; i < n && i < 32; i++)
        tk_thread_free(out[i]);
    /* a short out array: total count, cap entries written */
    tk_thread *two[2] = {NULL, NULL};
    assert_int_equal(tk_thread_enumerate(two, 1), base + 3);
    assert_non_null(two[0]);
    assert_null(two[1]);
    tk_thread_free(two[0]);
    tk_event_set(e);
    for (int i = 0; i < 3; i++) {
        ASSERT_RC(tk_thread_join(t[i], 10.0), 0);
        tk_thread_free(t[i]);
    }
    assert_int_equal(tk_active_count(), base);
    tk_event_free(e);
}

static atomic_int detached_done;

static int set_flag_later(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    conf_sleep(0.2);
    atomic_store(&detached_done, 1);
    return 0;
}

static void free_running_thread_detaches(void **state)
{
    (void)state;
    tk_thread *t = tk_thread_new(set_flag_later, NULL, NULL);
    ASSERT_RC(tk_thread_start(t), 0);
    tk_thread_free(t);
    for (int i = 0; i < 500 && !atomic_load(&detached_done); i++)
        conf_sleep(0.01);
    assert_int_equal(atomic_load(&detached_done), 1);
}

/* --------------------------------------------------------------- timers */

static atomic_int timer_runs;

static int timer_target(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    atomic_fetch_add(&timer_runs, 1);
    int64_t v = 0;
    tk_args_get_int(a, 0, &v);
    return (int)v;
}

static void timers(void **state)
{
    (void)state;
    atomic_store(&timer_runs, 0);
    tk_thread *t = tk_timer_new(0.3, timer_target, tk_args_of("i", 12), NULL);
    assert_non_null(t);
    int n;
    assert_int_equal(sscanf(tk_thread_name(t), "Thread-%d", &n), 1);
    double t0 = conf_now();
    ASSERT_RC(tk_thread_start(t), 0);
    ASSERT_RC(tk_thread_join(t, 10.0), 0);
    assert_true(conf_now() - t0 >= 0.28);
    assert_int_equal(tk_thread_result(t), 12);
    assert_int_equal(atomic_load(&timer_runs), 1);
    tk_thread_free(t);

    /* cancelled before it fires: never runs, result TK_ECANCELED */
    t = tk_timer_new(TK_FOREVER, timer_target, tk_args_of("i", 1), NULL);
    ASSERT_RC(tk_thread_start(t), 0);
    conf_sleep(0.1);
    ASSERT_RC(tk_thread_stop(t), 0);
    ASSERT_RC(tk_thread_join(t, 10.0), 0);
    assert_int_equal(tk_thread_result(t), TK_ECANCELED);
    tk_thread_free(t);
    /* stopped before start: does not fire at all */
    t = tk_timer_new(0, timer_target, tk_args_of("i", 1), NULL);
    ASSERT_RC(tk_thread_stop(t), 0);
    ASSERT_RC(tk_thread_start(t), 0);
    ASSERT_RC(tk_thread_join(t, 10.0), 0);
    assert_int_equal(tk_thread_result(t), TK_ECANCELED);
    assert_int_equal(atomic_load(&timer_runs), 1);
    tk_thread_free(t);
    assert_null(tk_timer_new(1.0, NULL, NULL, NULL));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
}

/* ---------------------------------------------------- cancellation points */

struct cp {
    tk_event *ev;
    tk_sem *sem;
    tk_cond *cond;
    tk_barrier *bar;
    tk_queue *q, *qfull;
    tk_conn *rd;
    tk_lock *lock;
    int which;
    int held_after; /* cond: lock held on return */
};
static struct cp cp;

static int blocker(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    tk_args *item = NULL;
    int rc = 0;
    switch (cp.which) {
    case 0: rc = tk_event_wait(cp.ev, TK_FOREVER); break;
    case 1: rc = tk_sem_acquire(cp.sem, TK_FOREVER); break;
    case 2:
        tk_cond_acquire(cp.cond, TK_FOREVER);
        rc = tk_cond_wait(cp.cond, TK_FOREVER);
        /* the caller holds the lock again: releasing succeeds */
        cp.held_after = tk_cond_release(cp.cond) == 0;
        break;
    case 3: rc = tk_barrier_wait(cp.bar, TK_FOREVER); break;
    case 4: rc = tk_queue_get(cp.q, &item, TK_FOREVER); break;
    case 5: {
        tk_args *x = tk_args_new();
        rc = tk_queue_put(cp.qfull, x, TK_FOREVER);
        if (rc != 0)
            tk_args_free(x);
        break;
    }
    case 6: rc = tk_conn_recv(cp.rd, &item, TK_FOREVER); break;
    case 7: rc = tk_conn_poll(cp.rd, TK_FOREVER); break;
    case 8: rc = tk_sleep(INFINITY); break;
    case 9: rc = tk_lock_acquire(cp.lock, TK_FOREVER); /* not a cancellation point */
        if (rc == 0)
            tk_lock_release(cp.lock);
        break;
    case 10: {
        tk_args *x = tk_args_new();
        tk_queue_put(cp.q, x, 0);
        rc = tk_queue_join(cp.q, TK_FOREVER);
        break;
    }
    }
    tk_args_free(item);
    return rc;
}

static void stop_wakes_cancellation_points(void **state)
{
    (void)state;
    tk_conn *wr;
    cp.ev = tk_event_new(0);
    cp.sem = tk_sem_new(0, 0);
    cp.cond = tk_cond_new(0);
    cp.bar = tk_barrier_new(2, 0);
    cp.q = tk_queue_new(0, 0);
    cp.qfull = tk_queue_new(1, 0);
    cp.lock = tk_lock_new(0);
    ASSERT_RC(tk_queue_put(cp.qfull, tk_args_new(), 0), 0);
    ASSERT_RC(tk_pipe_new(&cp.rd, &wr, false), 0);
    const char *names[] = {"event wait", "sem acquire", "cond wait", "barrier wait",
                           "queue get", "queue put", "conn recv", "conn poll", "tk_sleep",
                           "lock acquire", "queue join"};
    for (int w = 0; w <= 10; w++) {
        cp.which = w;
        if (w == 9)
            ASSERT_RC(tk_lock_acquire(cp.lock, 0), 0);
        tk_thread *t = tk_thread_new(blocker, NULL, NULL);
        ASSERT_RC(tk_thread_start(t), 0);
        conf_sleep(0.15);
        ASSERT_RC(tk_thread_join(t, 0), TK_ETIMEDOUT); /* it blocks */
        double t0 = conf_now();
        ASSERT_RC(tk_thread_stop(t), 0);
        if (w == 9) {
            /* lock acquisition goes on waiting */
            int rc = tk_thread_join(t, 0.3);
            tk_lock_release(cp.lock);
            if (rc != TK_ETIMEDOUT)
                fail_msg("lock acquire was interrupted by a stop");
            ASSERT_RC(tk_thread_join(t, 10.0), 0);
            assert_int_equal(tk_thread_result(t), 0);
        } else {
            int rc = tk_thread_join(t, 5.0);
            if (rc != 0)
                fail_msg("%s: not woken by tk_thread_stop", names[w]);
            assert_true(conf_now() - t0 < 5.0);
            if (tk_thread_result(t) != TK_ECANCELED)
                fail_msg("%s returned %d (%s), expected TK_ECANCELED", names[w],
                         tk_thread_result(t), tk_err_name(tk_thread_result(t)));
        }
        if (w == 2)
            assert_true(cp.held_after);
        if (w == 3) /* a stopped barrier wait breaks the barrier */
            assert_true(tk_barrier_broken(cp.bar));
        tk_thread_free(t);
    }
    tk_conn_close(cp.rd);
    tk_conn_close(wr);
    tk_event_free(cp.ev);
    tk_sem_free(cp.sem);
    tk_cond_free(cp.cond);
    tk_barrier_free(cp.bar);
    tk_queue_free(cp.q);
    tk_queue_free(cp.qfull);
    tk_lock_free(cp.lock);
}

static int wait_set_event(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    /* a wait that can complete without blocking still completes */
    return tk_event_wait(cp.ev, TK_FOREVER);
}

static void completable_wait_completes_after_stop(void **state)
{
    (void)state;
    cp.ev = tk_event_new(0);
    tk_event_set(cp.ev);
    tk_thread *t = tk_thread_new(wait_set_event, NULL, NULL);
    ASSERT_RC(tk_thread_stop(t), 0);
    ASSERT_RC(tk_thread_start(t), 0);
    ASSERT_RC(tk_thread_join(t, 10.0), 0);
    assert_int_equal(tk_thread_result(t), 0);
    tk_thread_free(t);
    tk_event_free(cp.ev);
}

/* more cancellation points: *_wait_any, future wait/result, shared queue get */
static tk_process *g_proc;
static tk_future *g_fut;
static tk_queue *g_sq;
static int g_which;

static int proc_sleeper(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    conf_sleep(20.0);
    return 0;
}

static int task_sleeper(const tk_args *a, const tk_kwargs *k, tk_args *r)
{
    (void)a;
    (void)k;
    (void)r;
    return tk_sleep(3.0);
}

static int waiter2(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    tk_process *ps[1] = {g_proc};
    tk_future *fs[1] = {g_fut};
    tk_args *it = NULL;
    int rc = 99;
    switch (g_which) {
    case 0: rc = tk_process_wait_any(ps, 1, TK_FOREVER); break;
    case 1: rc = tk_future_wait(g_fut, TK_FOREVER); break;
    case 2: rc = tk_future_result(g_fut, TK_FOREVER, NULL); break;
    case 3: rc = tk_future_wait_any(fs, 1, TK_FOREVER); break;
    case 4: rc = tk_queue_get(g_sq, &it, TK_FOREVER); break;
    case 5: rc = tk_sleep(1e300); break;
    }
    tk_args_free(it);
    return rc;
}

static void stop_wakes_more_cancellation_points(void **state)
{
    (void)state;
    const char *names[] = {"tk_process_wait_any", "tk_future_wait", "tk_future_result",
                           "tk_future_wait_any", "shared queue get", "tk_sleep(1e300)"};
    g_proc = tk_process_new(proc_sleeper, NULL, NULL);
    ASSERT_RC(tk_process_start(g_proc), 0);
    tk_pool *pool = tk_pool_new(TK_POOL_THREADS, 1);
    g_fut = tk_pool_submit(pool, task_sleeper, NULL, NULL);
    g_sq = tk_queue_new(0, TK_SHARED);
    for (g_which = 0; g_which < 6; g_which++) {
        tk_thread *t = tk_thread_new(waiter2, NULL, NULL);
        ASSERT_RC(tk_thread_start(t), 0);
        conf_sleep(0.15);
        ASSERT_RC(tk_thread_stop(t), 0);
        if (tk_thread_join(t, 5.0) != 0)
            fail_msg("%s: not woken by tk_thread_stop", names[g_which]);
        if (tk_thread_result(t) != TK_ECANCELED)
            fail_msg("%s returned %d, expected TK_ECANCELED", names[g_which],
                     tk_thread_result(t));
        tk_thread_free(t);
    }
    ASSERT_RC(tk_process_kill(g_proc), 0);
    ASSERT_RC(tk_process_join(g_proc, 10.0), 0);
    tk_process_free(g_proc);
    tk_future_interrupt(g_fut);
    tk_future_free(g_fut);
    tk_pool_free(pool);
    tk_queue_free(g_sq);
}

static void timer_negative_interval_fires_at_once(void **state)
{
    (void)state;
    atomic_store(&timer_runs, 0);
    tk_thread *t = tk_timer_new(-5.0, timer_target, tk_args_of("i", 3), NULL);
    double t0 = conf_now();
    ASSERT_RC(tk_thread_start(t), 0);
    ASSERT_RC(tk_thread_join(t, 10.0), 0);
    assert_true(conf_now() - t0 < 3.0);
    assert_int_equal(tk_thread_result(t), 3);
    assert_int_equal(atomic_load(&timer_runs), 1);
    tk_thread_free(t);
}

int main(void)
{
    CONF_MAIN_GUARD();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_idents_results),
        cmocka_unit_test(long_name_os_name_cut),
        cmocka_unit_test(lifecycle_errors),
        cmocka_unit_test(join_self_from_worker),
        cmocka_unit_test(join_timeout_and_stop),
        cmocka_unit_test(stop_before_start_target_still_runs),
        cmocka_unit_test(main_sleep_returns_zero),
        cmocka_unit_test(daemon_defaults),
        cmocka_unit_test(signal_mask_inherited),
        cmocka_unit_test(stack_size),
        cmocka_unit_test(enumerate_and_active_count),
        cmocka_unit_test(free_running_thread_detaches),
        cmocka_unit_test(timers),
        cmocka_unit_test(stop_wakes_cancellation_points),
        cmocka_unit_test(completable_wait_completes_after_stop),
        cmocka_unit_test(stop_wakes_more_cancellation_points),
        cmocka_unit_test(timer_negative_interval_fires_at_once),
    };
    return cmocka_run_group_tests_name("conformance: §4 threads", tests, NULL, NULL);
}
