/* test_runtime.c - the shared runtime: deadlines from Python-style timeouts,
 * the stop wake-up mechanism behind every cancellation point, the module
 * registry with its fork hooks, and the allocation funnel. */
#include "common/testutil.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "taskkit.h"

void tk_shutdown(void); /* also in taskkit/process.h */

/* ------------------------------------------------------------ deadlines */

static void deadline_kinds(void **state)
{
    (void)state;
    tk__deadline d;
    assert_int_equal(tk__deadline_init(&d, -1.0, "x"), 0);
    assert_int_equal(d.kind, TK__DL_FOREVER);
    assert_int_equal(tk__deadline_init(&d, INFINITY, "x"), 0);
    assert_int_equal(d.kind, TK__DL_FOREVER);
    assert_int_equal(tk__deadline_ms(&d), -1);
    assert_false(tk__deadline_passed(&d));
    /* 0 and every other negative value poll: never "forever" */
    const double polls[] = {0.0, -0.0, -0.5, -2.0, -INFINITY, -1e300};
    for (size_t i = 0; i < sizeof polls / sizeof polls[0]; i++) {
        assert_int_equal(tk__deadline_init(&d, polls[i], "x"), 0);
        assert_int_equal(d.kind, TK__DL_POLL);
        assert_true(tk__deadline_passed(&d));
        assert_int_equal(tk__deadline_ms(&d), 0);
    }
}

static void deadline_nan_is_einval(void **state)
{
    (void)state;
    tk__deadline d;
    assert_int_equal(tk__deadline_init(&d, NAN, "tk_thread_join"), TK_EINVAL);
    assert_string_equal(tk_last_error(), "tk_thread_join: timeout must not be NaN");
}

static void deadline_huge_values_do_not_overflow(void **state)
{
    (void)state;
    tk__deadline d;
    const double huge[] = {9e9, 1e18, 1e300, 1.7e308};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        assert_int_equal(tk__deadline_init(&d, huge[i], "x"), 0);
        assert_int_equal(d.kind, TK__DL_AT);
        assert_false(tk__deadline_passed(&d));
        assert_true(tk__deadline_ms(&d) > 1000000);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        assert_true(d.at.tv_sec > now.tv_sec + 1000000); /* far future, no wrap */
    }
}

static void deadline_passes(void **state)
{
    (void)state;
    tk__deadline d;
    assert_int_equal(tk__deadline_init(&d, 0.05, "x"), 0);
    int ms = tk__deadline_ms(&d);
    assert_true(ms > 0 && ms <= 50);
    assert_false(tk__deadline_passed(&d));
    usleep(80000);
    assert_true(tk__deadline_passed(&d));
    assert_int_equal(tk__deadline_ms(&d), 0);
}

/* ----------------------------------------------------------- futex waits */

static void futex_wait_times_out_on_time(void **state)
{
    (void)state;
    _Atomic uint32_t word = 7;
    tk__deadline d;
    tk__deadline_init(&d, 0.1, "x");
    double t0 = tt_now();
    int r;
    do
        r = tk__futex_wait(&word, 7, 0, &d);
    while (r == 0);
    double took = tt_now() - t0;
    assert_int_equal(r, TK_ETIMEDOUT);
    assert_true(took >= 0.095 && took < 5.0);
    /* a poll never blocks */
    tk__deadline_init(&d, 0, "x");
    assert_int_equal(tk__futex_wait(&word, 7, 0, &d), TK_ETIMEDOUT);
}

static void futex_wait_returns_when_word_differs(void **state)
{
    (void)state;
    _Atomic uint32_t word = 1;
    tk__deadline d;
    tk__deadline_init(&d, -1.0, "x");
    assert_int_equal(tk__futex_wait(&word, 2, 0, &d), 0);
}

struct waiter {
    struct tk__stop stop;
    _Atomic uint32_t word;
    atomic_int ready;
    int result;
    double took;
    bool use_fd;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    tk__tls()->stop = &w->stop;
    tk__deadline d;
    tk__deadline_init(&d, 30.0, "x");
    atomic_store(&w->ready, 1);
    double t0 = tt_now();
    if (w->use_fd) {
        int p[2];
        if (pipe(p) != 0)
            abort();
        struct pollfd fds[2] = {{.fd = p[0], .events = POLLIN}};
        w->result = tk__wait_fds(fds, 1, TK__WAIT_CANCEL, &d);
        close(p[0]);
        close(p[1]);
    } else {
        int r;
        do
            r = tk__futex_wait(&w->word, 0, TK__WAIT_CANCEL, &d);
        while (r == 0);
        w->result = r;
    }
    w->took = tt_now() - t0;
    tk__tls()->stop = NULL;
    return NULL;
}

static void run_stop_case(bool use_fd)
{
    struct waiter w = {.use_fd = use_fd};
    tk__stop_init(&w.stop);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, waiter_main, &w), 0);
    while (!atomic_load(&w.ready))
        usleep(1000);
    usleep(20000); /* let it block */
    double t0 = tt_now();
    tk__stop_request(&w.stop);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(w.result, TK_ECANCELED);
    assert_true(tt_now() - t0 < 2.0); /* promptly, far below the 30 s timeout */
    assert_true(w.took < 2.0);
    tk__stop_destroy(&w.stop);
}

static void stop_wakes_a_futex_wait(void **state)
{
    (void)state;
    run_stop_case(false);
}

static void stop_wakes_an_fd_wait(void **state)
{
    (void)state;
    run_stop_case(true);
}

static void stop_before_wait_returns_at_once(void **state)
{
    (void)state;
    struct tk__stop s;
    tk__stop_init(&s);
    tk__stop_request(&s);
    tk__tls()->stop = &s;
    _Atomic uint32_t word = 0;
    tk__deadline d;
    tk__deadline_init(&d, -1.0, "x");
    assert_int_equal(tk__futex_wait(&word, 0, TK__WAIT_CANCEL, &d), TK_ECANCELED);
    /* without TK__WAIT_CANCEL a stop is not a reason to return */
    tk__deadline_init(&d, 0.02, "x");
    int r;
    do
        r = tk__futex_wait(&word, 0, 0, &d);
    while (r == 0);
    assert_int_equal(r, TK_ETIMEDOUT);
    /* an fd wait that can complete still completes */
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], "x", 1), 1);
    struct pollfd fds[2] = {{.fd = p[0], .events = POLLIN}};
    assert_int_equal(tk__wait_fds(fds, 1, TK__WAIT_CANCEL, &d), 1);
    close(p[0]);
    close(p[1]);
    tk__tls()->stop = NULL;
    tk__stop_destroy(&s);
}

static struct tk__stop *signal_stop;
static void on_sigusr1(int sig)
{
    (void)sig;
    tk__stop_request(signal_stop); /* async-signal-safe by contract */
}

static void stop_from_a_signal_handler(void **state)
{
    (void)state;
    struct tk__stop s;
    tk__stop_init(&s);
    signal_stop = &s;
    tk__tls()->stop = &s;
    struct sigaction sa = {.sa_handler = on_sigusr1};
    sigaction(SIGUSR1, &sa, NULL);
    _Atomic uint32_t word = 0;
    tk__deadline d;
    tk__deadline_init(&d, 30.0, "x");
    alarm(0);
    pid_t me = getpid();
    pid_t kid = fork();
    if (kid == 0) {
        usleep(50000);
        kill(me, SIGUSR1);
        _exit(0);
    }
    int r;
    double t0 = tt_now();
    do
        r = tk__futex_wait(&word, 0, TK__WAIT_CANCEL, &d);
    while (r == 0);
    assert_int_equal(r, TK_ECANCELED);
    assert_true(tt_now() - t0 < 5.0);
    waitpid(kid, NULL, 0);
    signal(SIGUSR1, SIG_DFL);
    tk__tls()->stop = NULL;
    tk__stop_destroy(&s);
}

/* ----------------------------------------------------- modules and fork */

static int child_hook_calls, parent_hook_calls, prepare_calls, shutdown_calls;
static void m_prepare(void) { prepare_calls++; }
static void m_parent(void) { parent_hook_calls++; }
static void m_child(void) { child_hook_calls++; }
static void m_shutdown(void)
{
    shutdown_calls++;
    /* a start during the procedure is refused */
    if (tk__runtime_starting() != TK_ESTATE)
        abort();
}

static struct tk__module test_module = {
    .name = "test", .order = 5, .shutdown = m_shutdown,
    .atfork_prepare = m_prepare, .atfork_parent = m_parent, .atfork_child = m_child};

static void module_hooks_follow_fork(void **state)
{
    (void)state;
    tk__module_register(&test_module);
    tk__module_register(&test_module); /* idempotent */
    int before_p = prepare_calls, before_par = parent_hook_calls;
    pid_t parent_tid = tk__gettid();
    pid_t kid = fork(); /* a raw fork: the runtime still resets the child */
    if (kid == 0) {
        int ok = child_hook_calls == 1 && tk__getpid() == getpid() &&
                 tk__gettid() == getpid() && tk__gettid() != parent_tid;
        _exit(ok ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(kid, &status, 0), kid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(prepare_calls, before_p + 1);
    assert_int_equal(parent_hook_calls, before_par + 1);
    assert_int_equal(child_hook_calls, 0);
}

static void shutdown_runs_hooks_and_refuses_starts(void **state)
{
    (void)state;
    tk__module_register(&test_module);
    int before = shutdown_calls;
    assert_int_equal(tk__runtime_starting(), 0);
    tk_shutdown();
    assert_int_equal(shutdown_calls, before + 1);
    assert_false(tk__shutting_down());
    tk_shutdown(); /* safe to call again */
    assert_int_equal(shutdown_calls, before + 2);
    assert_int_equal(tk__runtime_starting(), 0); /* allowed again afterwards */
}

/* The end-of-program procedure runs at exit() in the process that started
 * something, and not in a raw fork() child that merely exits. */
static void say_shutdown(void)
{
    static const char msg[] = "shutdown ran\n";
    ssize_t r = write(1, msg, sizeof msg - 1);
    (void)r;
}

static struct tk__module say_module = {.name = "say", .order = 1, .shutdown = say_shutdown};

static int mode_started(void)
{
    tk__module_register(&say_module);
    if (tk__runtime_starting() != 0)
        return 2;
    pid_t kid = fork();
    if (kid == 0)
        exit(0); /* raw fork child: exit() must not run the parent's procedure */
    waitpid(kid, NULL, 0);
    return 0;
}

static int mode_not_started(void)
{
    tk__module_register(&say_module);
    return 0;
}

static void exit_runs_the_procedure_once_in_its_owner(void **state)
{
    (void)state;
    char out[4096];
    int st = tt_run_self("started", out, sizeof out, 30);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_string_equal(out, "shutdown ran\n");
    st = tt_run_self("not-started", out, sizeof out, 30);
    assert_true(WIFEXITED(st));
    assert_string_equal(out, "");
}

/* --------------------------------------------------------------- memory */

static void fault_injection_fails_the_nth_allocation(void **state)
{
    (void)state;
    tk__fault_set(2);
    void *a = tk__malloc(8);
    assert_non_null(a);
    void *b = tk__malloc(8);
    assert_null(b);
    assert_int_equal(tk_last_error_code(), TK_ENOMEM);
    assert_string_equal(tk_last_error(), "out of memory");
    void *c = tk__calloc(2, 8);
    assert_non_null(c); /* only the n-th fails */
    assert_int_equal(tk__fault_allocs(), 2);
    tk__fault_set(0);
    tk__free(a);
    tk__free(c);
    char *s = tk__strdup("hello");
    assert_string_equal(s, "hello");
    tk__free(s);
}

int main(void)
{
    static const struct tt_mode modes[] = {
        {"started", mode_started},
        {"not-started", mode_not_started},
    };
    tt_child_main(modes, sizeof modes / sizeof modes[0]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(deadline_kinds),
        cmocka_unit_test(deadline_nan_is_einval),
        cmocka_unit_test(deadline_huge_values_do_not_overflow),
        cmocka_unit_test(deadline_passes),
        cmocka_unit_test(futex_wait_times_out_on_time),
        cmocka_unit_test(futex_wait_returns_when_word_differs),
        cmocka_unit_test(stop_wakes_a_futex_wait),
        cmocka_unit_test(stop_wakes_an_fd_wait),
        cmocka_unit_test(stop_before_wait_returns_at_once),
        cmocka_unit_test(stop_from_a_signal_handler),
        cmocka_unit_test(module_hooks_follow_fork),
        cmocka_unit_test(shutdown_runs_hooks_and_refuses_starts),
        cmocka_unit_test(exit_runs_the_procedure_once_in_its_owner),
        cmocka_unit_test(fault_injection_fails_the_nth_allocation),
    };
    return cmocka_run_group_tests_name("runtime", tests, NULL, NULL);
}
