/* test_thread_stop.c - cooperative stop: tk_stop_requested, tk_sleep woken
 * early, the runtime's cancellable waits in a stopped thread, stop from a
 * signal handler, joins that are not cancellation points, and timers. */
#include "common/testutil.h"

#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "taskkit.h"

/* The time a woken thread may take: 50 ms, loosened under sanitizers. */
static double prompt(void)
{
    return tt_slow_mode() ? 0.5 : 0.05;
}

struct slept {
    atomic_int started;
    atomic_int rc;
    double woke_at;
    atomic_int requested_after;
    atomic_int second_rc;
};

static void *arg_ptr(const tk_args *a)
{
    void *p = NULL;
    tk_args_get_ptr(a, 0, &p);
    return p;
}

static void wait_started(atomic_int *flag)
{
    while (!atomic_load(flag))
        usleep(200);
}

static int long_sleep(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    struct slept *s = arg_ptr(a);
    atomic_store(&s->started, 1);
    if (tk_stop_requested())
        return 1;
    atomic_store(&s->rc, tk_sleep(30.0));
    s->woke_at = tt_now();
    atomic_store(&s->requested_after, tk_stop_requested());
    atomic_store(&s->second_rc, tk_sleep(0)); /* permanent: at once */
    return 0;
}

static void stop_wakes_sleep_promptly(void **state)
{
    (void)state;
    struct slept s = {0};
    tk_thread *t = tk_thread_new(long_sleep, tk_args_of("p", (void *)&s), NULL);
    assert_int_equal(tk_thread_start(t), 0);
    wait_started(&s.started);
    usleep(20 * 1000); /* let it block in the kernel */
    double t0 = tt_now();
    assert_int_equal(tk_thread_stop(t), 0);
    assert_int_equal(tk_thread_join(t, 10), 0);
    assert_true(s.woke_at - t0 < prompt());
    assert_int_equal(atomic_load(&s.rc), TK_ECANCELED);
    assert_true(atomic_load(&s.requested_after));
    assert_int_equal(atomic_load(&s.second_rc), TK_ECANCELED);
    assert_int_equal(tk_thread_result(t), 0);
    assert_int_equal(tk_thread_stop(t), 0); /* finished: no effect */
    tk_thread_free(t);
    assert_int_equal(tk_thread_stop(NULL), TK_EINVAL);
}

static void stop_before_start_is_seen_at_once(void **state)
{
    (void)state;
    struct slept s = {0};
    tk_thread *t = tk_thread_new(long_sleep, tk_args_of("p", (void *)&s), NULL);
    assert_int_equal(tk_thread_stop(t), 0);
    assert_int_equal(tk_thread_start(t), 0);
    assert_int_equal(tk_thread_join(t, 10), 0);
    assert_int_equal(tk_thread_result(t), 1);
    tk_thread_free(t);
}

static void sleep_durations(void **state)
{
    (void)state;
    double t0 = tt_now();
    assert_int_equal(tk_sleep(0.05), 0);
    assert_true(tt_now() - t0 >= 0.049);
    t0 = tt_now();
    assert_int_equal(tk_sleep(0), 0);
    assert_int_equal(tk_sleep(-3.0), 0); /* a deadline just passed: no wait */
    assert_true(tt_now() - t0 < 1.0);
    assert_int_equal(tk_sleep(NAN), TK_EINVAL);
    assert_false(tk_stop_requested()); /* main thread, never stopped here */
}

static void *raw_sleeper(void *p)
{
    atomic_int *rc = p;
    /* a thread libtaskkit did not create gets its dummy handle here */
    atomic_store(rc, tk_sleep(0.01));
    return NULL;
}

static void sleep_in_a_foreign_thread(void **state)
{
    (void)state;
    atomic_int rc = 99;
    pthread_t p;
    assert_int_equal(pthread_create(&p, NULL, raw_sleeper, &rc), 0);
    pthread_join(p, NULL);
    assert_int_equal(atomic_load(&rc), 0);
}

/* Every runtime wait with TK__WAIT_CANCEL (what the sync, queue and pool
 * modules build their cancellation points on) wakes in a stopped thread. */
struct waits {
    atomic_int started;
    atomic_int futex_rc, fd_rc, plain_rc;
    int pipe_rd;
    _Atomic uint32_t word;
};

static int cancellable_waits(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    struct waits *w = arg_ptr(a);
    tk__deadline forever;
    tk__deadline_init(&forever, TK_FOREVER, NULL);
    atomic_store(&w->started, 1);
    atomic_store(&w->futex_rc, tk__futex_wait(&w->word, 0, TK__WAIT_CANCEL, &forever));
    struct pollfd p[2] = {{.fd = w->pipe_rd, .events = POLLIN}};
    atomic_store(&w->fd_rc, tk__wait_fds(p, 1, TK__WAIT_CANCEL, &forever));
    /* a wait that is not a cancellation point still times out normally */
    tk__deadline d;
    tk__deadline_init(&d, 0.02, NULL);
    int r;
    while ((r = tk__futex_wait(&w->word, atomic_load(&w->word), 0, &d)) == 0)
        ;
    atomic_store(&w->plain_rc, r);
    return 0;
}

static void runtime_waits_are_cancellation_points(void **state)
{
    (void)state;
    struct waits w = {0};
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    w.pipe_rd = fds[0];
    tk_thread *t = tk_thread_new(cancellable_waits, tk_args_of("p", (void *)&w), NULL);
    assert_int_equal(tk_thread_start(t), 0);
    wait_started(&w.started);
    usleep(20 * 1000);
    double t0 = tt_now();
    tk_thread_stop(t);
    assert_int_equal(tk_thread_join(t, 10), 0);
    assert_true(tt_now() - t0 < 1.0);
    assert_int_equal(atomic_load(&w.futex_rc), TK_ECANCELED);
    assert_int_equal(atomic_load(&w.fd_rc), TK_ECANCELED);
    assert_int_equal(atomic_load(&w.plain_rc), TK_ETIMEDOUT);
    tk_thread_free(t);
    close(fds[0]);
    close(fds[1]);
}

static int sleeper(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    return tk_sleep(0.1) == 0 ? 5 : 6;
}

static int stopped_joiner(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    atomic_int *started = arg_ptr(a);
    tk_thread *inner = tk_thread_new(sleeper, NULL, NULL);
    tk_thread_start(inner);
    atomic_store(started, 1);
    while (!tk_stop_requested())
        usleep(500);
    /* stopped, but cleanup still works: joins are not cancellation points */
    int r = tk_thread_join(inner, TK_FOREVER);
    int res = tk_thread_result(inner);
    tk_thread_free(inner);
    return r == 0 && res == 5 ? 0 : 1;
}

static void stopped_thread_can_still_join(void **state)
{
    (void)state;
    atomic_int started = 0;
    tk_thread *t = tk_thread_new(stopped_joiner, tk_args_of("p", (void *)&started), NULL);
    assert_int_equal(tk_thread_start(t), 0);
    wait_started(&started);
    tk_thread_stop(t);
    assert_int_equal(tk_thread_join(t, 10), 0);
    assert_int_equal(tk_thread_result(t), 0);
    tk_thread_free(t);
}

static tk_thread *volatile signal_target;

static void on_usr1(int sig)
{
    (void)sig;
    tk_thread_stop(signal_target); /* async-signal-safe */
}

static void stop_from_a_signal_handler(void **state)
{
    (void)state;
    struct slept s = {0};
    tk_thread *t = tk_thread_new(long_sleep, tk_args_of("p", (void *)&s), NULL);
    signal_target = t;
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    assert_int_equal(tk_thread_start(t), 0);
    wait_started(&s.started);
    usleep(20 * 1000);
    double t0 = tt_now();
    raise(SIGUSR1); /* the handler runs in this (main) thread */
    assert_int_equal(tk_thread_join(t, 10), 0);
    assert_true(s.woke_at - t0 < prompt());
    assert_int_equal(atomic_load(&s.rc), TK_ECANCELED);
    sigaction(SIGUSR1, &old, NULL);
    tk_thread_free(t);
}

static void stop_many_sleepers(void **state)
{
    (void)state;
    enum { N = 8 };
    struct slept s[N];
    tk_thread *t[N];
    memset(s, 0, sizeof s);
    for (int i = 0; i < N; i++) {
        t[i] = tk_thread_new(long_sleep, tk_args_of("p", (void *)&s[i]), NULL);
        assert_int_equal(tk_thread_start(t[i]), 0);
    }
    for (int i = 0; i < N; i++)
        wait_started(&s[i].started);
    double t0 = tt_now();
    for (int i = 0; i < N; i++)
        tk_thread_stop(t[i]);
    for (int i = 0; i < N; i++) {
        assert_int_equal(tk_thread_join(t[i], 10), 0);
        assert_int_equal(atomic_load(&s[i].rc), TK_ECANCELED);
        tk_thread_free(t[i]);
    }
    assert_true(tt_now() - t0 < 1.0);
}

/* ------------------------------------------------------------- timers */

struct fired {
    atomic_int count;
    double at;
};

static int fire(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    struct fired *f = arg_ptr(a);
    f->at = tt_now();
    atomic_fetch_add(&f->count, 1);
    return 9;
}

static void timer_fires_after_interval(void **state)
{
    (void)state;
    struct fired f = {0};
    tk_thread *t = tk_timer_new(0.1, fire, tk_args_of("p", (void *)&f), NULL);
    assert_non_null(t);
    double t0 = tt_now();
    assert_int_equal(tk_thread_start(t), 0);
    assert_true(tk_thread_is_alive(t));
    assert_int_equal(tk_thread_join(t, 10), 0);
    assert_int_equal(atomic_load(&f.count), 1);
    assert_true(f.at - t0 >= 0.099);
    assert_int_equal(tk_thread_result(t), 9);
    tk_thread_free(t);
}

static void timer_cancelled_before_firing(void **state)
{
    (void)state;
    struct fired f = {0};
    tk_thread *t = tk_timer_new(30.0, fire, tk_args_of("p", (void *)&f), NULL);
    assert_int_equal(tk_thread_start(t), 0);
    usleep(20 * 1000);
    double t0 = tt_now();
    assert_int_equal(tk_thread_stop(t), 0); /* Timer.cancel() */
    assert_int_equal(tk_thread_join(t, 10), 0);
    assert_true(tt_now() - t0 < prompt() + 0.05);
    assert_int_equal(atomic_load(&f.count), 0);
    assert_int_equal(tk_thread_result(t), TK_ECANCELED);
    tk_thread_free(t);

    /* cancelled before start: never fires either */
    t = tk_timer_new(0.0, fire, tk_args_of("p", (void *)&f), NULL);
    tk_thread_stop(t);
    assert_int_equal(tk_thread_start(t), 0);
    assert_int_equal(tk_thread_join(t, 10), 0);
    assert_int_equal(atomic_load(&f.count), 0);
    tk_thread_free(t);
}

static void timer_zero_and_forever(void **state)
{
    (void)state;
    struct fired f = {0};
    tk_thread *t = tk_timer_new(-1.5, fire, tk_args_of("p", (void *)&f), NULL);
    assert_int_equal(tk_thread_start(t), 0); /* negative: at once */
    assert_int_equal(tk_thread_join(t, 10), 0);
    assert_int_equal(atomic_load(&f.count), 1);
    tk_thread_free(t);
    t = tk_timer_new(TK_FOREVER, fire, tk_args_of("p", (void *)&f), NULL);
    assert_int_equal(tk_thread_start(t), 0);
    assert_int_equal(tk_thread_join(t, 0.05), TK_ETIMEDOUT);
    tk_thread_stop(t);
    assert_int_equal(tk_thread_join(t, 10), 0);
    assert_int_equal(atomic_load(&f.count), 1);
    tk_thread_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stop_wakes_sleep_promptly),
        cmocka_unit_test(stop_before_start_is_seen_at_once),
        cmocka_unit_test(sleep_durations),
        cmocka_unit_test(sleep_in_a_foreign_thread),
        cmocka_unit_test(runtime_waits_are_cancellation_points),
        cmocka_unit_test(stopped_thread_can_still_join),
        cmocka_unit_test(stop_from_a_signal_handler),
        cmocka_unit_test(stop_many_sleepers),
        cmocka_unit_test(timer_fires_after_interval),
        cmocka_unit_test(timer_cancelled_before_firing),
        cmocka_unit_test(timer_zero_and_forever),
    };
    return cmocka_run_group_tests_name("thread_stop", tests, NULL, NULL);
}
