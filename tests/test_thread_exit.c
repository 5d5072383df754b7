/* test_thread_exit.c - threads at the end of the program (the re-exec modes
 * run this binary again and check what it printed), failing targets on
 * stderr, and forks from any thread: the child's one thread is its main
 * thread, every other handle is foreign. */
#include "common/testutil.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "thread_int.h"
#include "taskkit.h"

void tk_shutdown(void); /* taskkit/process.h declares it once that lands */

static void *arg_ptr(const tk_args *a)
{
    void *p = NULL;
    tk_args_get_ptr(a, 0, &p);
    return p;
}

static void say(const char *s)
{
    fputs(s, stdout);
    fflush(stdout);
}

/* ------------------------------------------------------- re-exec modes */

static int late_worker(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    tk_sleep(0.2);
    say("worker done\n");
    return 0;
}

static int mode_nondaemon(void)
{
    tk_thread *t = tk_thread_new(late_worker, NULL, NULL);
    tk_thread_start(t);
    say("main returns\n");
    tk_thread_free(t);
    return 0; /* exit() -> atexit -> tk_shutdown joins the worker */
}

static int mode_detached(void)
{
    tk_thread *t = tk_thread_new(late_worker, NULL, NULL);
    tk_thread_start(t);
    tk_thread_free(t); /* detached, still joined at exit */
    say("main returns\n");
    return 0;
}

static int forever(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    tk_sleep(TK_FOREVER);
    say("daemon woke\n");
    return 0;
}

static int mode_daemon(void)
{
    tk_thread *t = tk_thread_new(forever, NULL, NULL);
    tk_thread_set_daemon(t, true);
    tk_thread_start(t);
    /* a non-daemon one too: joined, while the daemon is left running */
    tk_thread *u = tk_thread_new(late_worker, NULL, NULL);
    tk_thread_start(u);
    tk_thread_free(t);
    tk_thread_free(u);
    say("main returns\n");
    return 0;
}

static int starts_another(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    atomic_int *ready = arg_ptr(a);
    tk_thread *b = tk_thread_new(late_worker, NULL, NULL);
    tk_thread_start(b);
    tk_thread_free(b);
    atomic_store(ready, 1);
    say("first done\n");
    return 0;
}

static int mode_chained(void)
{
    static atomic_int ready;
    tk_thread *t = tk_thread_new(starts_another, tk_args_of("p", (void *)&ready), NULL);
    tk_thread_start(t);
    while (!atomic_load(&ready))
        usleep(500);
    tk_thread_free(t);
    return 0;
}

static int start_late(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    tk_sleep(0.2); /* by now main has returned and tk_shutdown runs */
    tk_thread *b = tk_thread_new(late_worker, NULL, NULL);
    int rc = tk_thread_start(b);
    printf("%s %s\n", tk_err_name(rc), tk_last_error());
    fflush(stdout);
    tk_thread_free(b);
    return 0;
}

static int mode_refused(void)
{
    tk_thread *t = tk_thread_new(start_late, NULL, NULL);
    tk_thread_start(t);
    tk_thread_free(t);
    return 0;
}

static int shutdown_inside(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    tk_shutdown(); /* joins the other worker, never itself */
    say("inner shutdown returned\n");
    return 0;
}

static int mode_shutdown_in_thread(void)
{
    tk_thread *w = tk_thread_new(late_worker, NULL, NULL);
    tk_thread_start(w);
    tk_thread *s = tk_thread_new(shutdown_inside, NULL, NULL);
    tk_thread_start(s);
    tk_thread_join(s, TK_FOREVER);
    tk_thread_free(s);
    tk_thread_free(w);
    return 0;
}

static int fails(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    return tk__error(TK_EINVAL, "boom: %d", 42);
}

static int mode_exception(void)
{
    tk_thread *t = tk_thread_new(fails, NULL, NULL);
    tk_thread_set_name(t, "failing-worker");
    tk_thread_start(t);
    tk_thread_join(t, TK_FOREVER);
    printf("result %s\n", tk_err_name(tk_thread_result(t)));
    tk_thread_free(t);
    return 0;
}

static int stop_main(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    tk_sleep(0.05);
    return tk_thread_stop(tk_main_thread());
}

static int mode_stop_main(void)
{
    /* the main thread's handle exists from the start, so a stop reaches
     * it even though it never asked for tk_current_thread() */
    tk_thread *t = tk_thread_new(stop_main, NULL, NULL);
    tk_thread_start(t);
    double t0 = tt_now();
    int rc = tk_sleep(30);
    printf("%s %d %d\n", tk_err_name(rc), tk_stop_requested(), tt_now() - t0 < 5);
    tk_thread_join(t, TK_FOREVER);
    tk_thread_free(t);
    return 0;
}

/* ------------------------------------------------------- re-exec tests */

/* Under valgrind (--trace-children) the re-run program is checked too,
 * and valgrind writes its findings to the stderr we capture: a daemon
 * thread still running at exit has its glibc TLS block reported "possibly
 * lost" (glibc keeps only an interior pointer to it; that kind does not
 * fail the run). Lines with valgrind's "==PID==" or "--PID--" prefix are
 * the tool's, never the program's: drop them before comparing. */
static bool tool_line(const char *s)
{
    if (s[0] != '=' && s[0] != '-')
        return false;
    char c = s[0];
    if (s[1] != c)
        return false;
    size_t i = 2;
    while (s[i] >= '0' && s[i] <= '9')
        i++;
    return i > 2 && s[i] == c && s[i + 1] == c;
}

static void strip_tool_lines(char *out)
{
    char *w = out;
    for (char *r = out; *r;) {
        char *nl = strchr(r, '\n');
        size_t len = nl ? (size_t)(nl - r) + 1 : strlen(r);
        if (!tool_line(r)) {
            memmove(w, r, len);
            w += len;
        }
        r += len;
    }
    *w = 0;
}

static void run_mode(const char *mode, const char *expect)
{
    char out[16384];
    double t0 = tt_now();
    int st = tt_run_self(mode, out, sizeof out, 30);
    strip_tool_lines(out);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_string_equal(out, expect);
    assert_true(tt_now() - t0 < 20);
}

static void exit_joins_non_daemon_threads(void **state)
{
    (void)state;
    run_mode("nondaemon", "main returns\nworker done\n");
    run_mode("detached", "main returns\nworker done\n");
}

static void exit_leaves_daemon_threads(void **state)
{
    (void)state;
    run_mode("daemon", "main returns\nworker done\n");
}

static void exit_joins_threads_started_by_threads(void **state)
{
    (void)state;
    run_mode("chained", "first done\nworker done\n");
}

static void start_refused_during_shutdown(void **state)
{
    (void)state;
    run_mode("refused", "TK_ESTATE can't create new thread at interpreter shutdown\n");
}

static void shutdown_never_joins_its_caller(void **state)
{
    (void)state;
    run_mode("shutdown-in-thread", "worker done\ninner shutdown returned\n");
}

static void failing_target_is_reported(void **state)
{
    (void)state;
    run_mode("exception", "Exception in thread failing-worker: boom: 42\nresult TK_EINVAL\n");
}

static void stop_reaches_the_main_thread(void **state)
{
    (void)state;
    run_mode("stop-main", "TK_ECANCELED 1 1\n");
}

/* --------------------------------------------------------------- fork */

struct gate {
    atomic_int open;
    atomic_int arrived;
};

static int gated(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    struct gate *g = arg_ptr(a);
    atomic_fetch_add(&g->arrived, 1);
    while (!atomic_load(&g->open))
        usleep(200);
    return 0;
}

static int child_noop(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    return 3;
}

static bool tsan(void)
{
    const char *m = getenv("TK_TEST_MODE");
    return m && strcmp(m, "tsan") == 0;
}

/* The checks a forked child runs; returns 0 or the number of the first
 * failed check (the child's exit status). */
static int child_checks(tk_thread *other, const char *main_name)
{
    tk_thread *me = tk_current_thread();
    if (tk_main_thread() != me)
        return 10;
    if (strcmp(tk_thread_name(me), main_name) != 0)
        return 11;
    if (tk_active_count() != 1 || tk_thread_enumerate(NULL, 0) != 1)
        return 12;
    if (!tk_thread_is_alive(me) || tk_thread_native_id(me) != getpid())
        return 13;
    if (tk_thread_ident(me) != (unsigned long)pthread_self())
        return 14;
    if (tk_thread_join(me, 0) != TK_ESTATE)
        return 15;
    if (other) {
        if (tk_thread_is_alive(other) || !tk__thread_is_foreign(other))
            return 20;
        double t0 = tt_now();
        if (tk_thread_join(other, TK_FOREVER) != 0 || tt_now() - t0 > 1.0)
            return 21;
        if (tk_thread_join(other, 5.0) != 0)
            return 22;
        /* freeing the foreign handle releases its memory only (the
         * parent's thread held a reference that no longer exists here) */
        tk_thread_free(other);
    }
    if (tk__thread_is_foreign(me))
        return 23;
    if (tsan())
        return 0; /* TSan cannot start threads after a multi-threaded fork */
    /* the child's runtime works: names restart, threads run and stop */
    tk_thread *t = tk_thread_new(child_noop, NULL, NULL);
    if (strcmp(tk_thread_name(t), "Thread-1") != 0)
        return 30;
    if (tk_thread_start(t) != 0 || tk_thread_join(t, 10) != 0 || tk_thread_result(t) != 3)
        return 31;
    tk_thread_free(t);
    if (tk_sleep(0.001) != 0)
        return 32;
    return 0;
}

static int wait_child(pid_t pid)
{
    int st = 0;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

struct forker {
    tk_thread *other;
    const char *expect_name; /* NULL: the thread's own name */
    atomic_int status;
};

static int fork_here(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    struct forker *f = arg_ptr(a);
    char name[64];
    snprintf(name, sizeof name, "%s", tk_thread_name(tk_current_thread()));
    pid_t pid = fork();
    if (pid == 0)
        _exit(child_checks(f->other, f->expect_name ? f->expect_name : name));
    atomic_store(&f->status, wait_child(pid));
    return 0;
}

/* True once the thread with kernel id tid has ended (left /proc). */
static bool thread_gone(long tid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld", tid);
    return access(path, F_OK) != 0;
}

static void fork_from_a_thread(void **state)
{
    (void)state;
    /* Static: the detached thread below reads it until it ends, which
     * may be after this function returns. */
    static struct gate g;
    atomic_store(&g.open, 0);
    atomic_store(&g.arrived, 0);
    tk_thread *other = tk_thread_new(gated, tk_args_of("p", (void *)&g), NULL);
    assert_int_equal(tk_thread_start(other), 0);
    /* and a detached one: an orphan in the child, freed there later */
    tk_thread *detached = tk_thread_new(gated, tk_args_of("p", (void *)&g), NULL);
    assert_int_equal(tk_thread_start(detached), 0);
    while (atomic_load(&g.arrived) < 2)
        usleep(200);
    long detached_tid = tk_thread_native_id(detached);
    assert_true(detached_tid > 0);
    tk_thread_free(detached);
    struct forker f = {other, NULL, -1};
    tk_thread *t = tk_thread_new(fork_here, tk_args_of("p", (void *)&f), NULL);
    assert_int_equal(tk_thread_set_name(t, "the-forker"), 0);
    assert_int_equal(tk_thread_start(t), 0);
    assert_int_equal(tk_thread_join(t, 30), 0);
    assert_int_equal(atomic_load(&f.status), 0);
    /* the parent is untouched */
    assert_true(tk_thread_is_alive(other));
    assert_false(tk__thread_is_foreign(other));
    atomic_store(&g.open, 1);
    assert_int_equal(tk_thread_join(other, 10), 0);
    tk_thread_free(other);
    tk_thread_free(t);
    /* The detached thread must be gone before the next test forks: a
     * child forked while it still ran would inherit its memory with no
     * thread to own it (valgrind's leak check in the child reports it). */
    for (int i = 0; i < 50000 && !thread_gone(detached_tid); i++)
        usleep(200);
    assert_true(thread_gone(detached_tid));
}

static void fork_from_main(void **state)
{
    (void)state;
    struct gate g = {0};
    tk_thread *other = tk_thread_new(gated, tk_args_of("p", (void *)&g), NULL);
    assert_int_equal(tk_thread_start(other), 0);
    pid_t pid = fork();
    if (pid == 0)
        _exit(child_checks(other, "MainThread"));
    assert_int_equal(wait_child(pid), 0);
    atomic_store(&g.open, 1);
    assert_int_equal(tk_thread_join(other, 10), 0);
    tk_thread_free(other);
}

static void *raw_forker(void *p)
{
    struct forker *f = p;
    if (f->expect_name == NULL)
        tk_current_thread(); /* become a dummy first */
    char name[64];
    snprintf(name, sizeof name, "%s", f->expect_name ? f->expect_name
                                                     : tk_thread_name(tk_current_thread()));
    pid_t pid = fork();
    if (pid == 0)
        _exit(child_checks(f->other, name));
    atomic_store(&f->status, wait_child(pid));
    return NULL;
}

static void fork_from_foreign_threads(void **state)
{
    (void)state;
    /* a dummy keeps its name; a thread without a handle becomes MainThread */
    struct forker f = {NULL, NULL, -1};
    pthread_t p;
    assert_int_equal(pthread_create(&p, NULL, raw_forker, &f), 0);
    pthread_join(p, NULL);
    assert_int_equal(atomic_load(&f.status), 0);
    struct forker g = {NULL, "MainThread", -1};
    assert_int_equal(pthread_create(&p, NULL, raw_forker, &g), 0);
    pthread_join(p, NULL);
    assert_int_equal(atomic_load(&g.status), 0);
}

static void on_alarm(int sig)
{
    (void)sig;
    tk_thread_stop(tk_main_thread());
}

/* In the child, the main thread (the forking one) is stopped from a signal
 * handler while it waits: with a wake descriptor of its own, not the
 * parent's, the fd wait and the sleep both end at once. */
static int child_stop_check(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {.it_value = {.tv_usec = 20000}};
    setitimer(ITIMER_REAL, &it, NULL);
    struct pollfd none[1];
    tk__deadline d;
    tk__deadline_init(&d, 30, NULL);
    double t0 = tt_now();
    if (tk__wait_fds(none, 0, TK__WAIT_CANCEL, &d) != TK_ECANCELED)
        return 40;
    if (tk_sleep(30) != TK_ECANCELED || tt_now() - t0 > 5)
        return 41;
    if (tk_main_thread() != tk_current_thread() || !tk_stop_requested())
        return 42;
    return 0;
}

static int fork_and_stop(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    /* give this thread a wake descriptor first: the child needs its own */
    struct pollfd none[1];
    tk__deadline d;
    tk__deadline_init(&d, 0, NULL);
    tk__wait_fds(none, 0, TK__WAIT_CANCEL, &d);
    pid_t pid = fork();
    if (pid == 0)
        _exit(child_stop_check());
    int st = wait_child(pid);
    /* the parent thread's stop state is untouched by the child's stop: its
     * wake descriptor was not the one the child signalled */
    struct pollfd p = {.fd = atomic_load(&tk__tls()->stop->wake_fd), .events = POLLIN};
    if (p.fd < 0 || poll(&p, 1, 0) != 0)
        return 200;
    return st == 0 && !tk_stop_requested() && tk_sleep(0.001) == 0 ? 0 : 100 + st;
}

static void stop_works_in_a_forked_child(void **state)
{
    (void)state;
    tk_thread *t = tk_thread_new(fork_and_stop, NULL, NULL);
    assert_int_equal(tk_thread_start(t), 0);
    assert_int_equal(tk_thread_join(t, 30), 0);
    assert_int_equal(tk_thread_result(t), 0);
    tk_thread_free(t);
}

int main(void)
{
    static const struct tt_mode modes[] = {
        {"nondaemon", mode_nondaemon},
        {"detached", mode_detached},
        {"daemon", mode_daemon},
        {"chained", mode_chained},
        {"refused", mode_refused},
        {"shutdown-in-thread", mode_shutdown_in_thread},
        {"exception", mode_exception},
        {"stop-main", mode_stop_main},
    };
    tt_child_main(modes, sizeof modes / sizeof modes[0]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exit_joins_non_daemon_threads),
        cmocka_unit_test(exit_leaves_daemon_threads),
        cmocka_unit_test(exit_joins_threads_started_by_threads),
        cmocka_unit_test(start_refused_during_shutdown),
        cmocka_unit_test(shutdown_never_joins_its_caller),
        cmocka_unit_test(failing_target_is_reported),
        cmocka_unit_test(stop_reaches_the_main_thread),
        cmocka_unit_test(fork_from_a_thread),
        cmocka_unit_test(fork_from_main),
        cmocka_unit_test(fork_from_foreign_threads),
        cmocka_unit_test(stop_works_in_a_forked_child),
    };
    return cmocka_run_group_tests_name("thread_exit", tests, NULL, NULL);
}
