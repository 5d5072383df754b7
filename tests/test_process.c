/* test_process.c - process objects with real children: lifecycle, exit
 * codes, errors and their messages, names, waiting (join, timeouts,
 * sentinels, wait_any, stop), reaping (detached handles, children reaped
 * behind our back), the child's environment, fork resets, and EINTR.
 * Every waiting test runs twice: through pidfds and through the exit-pipe
 * fallback. Program-exit behaviour lives in test_process_exit.c. */
#include "common/testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "process_int.h"
#include "taskkit.h"

/* Memory shared with every child of a test (fresh per test). */
struct shared {
    int ints[16];
    pid_t pids[4];
    char text[4][128];
};
static struct shared *sh;

static int setup_pidfd(void **state)
{
    (void)state;
    tk__proc_force_fallback(false);
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(sh != MAP_FAILED);
    return 0;
}

static int setup_pipe(void **state)
{
    setup_pidfd(state);
    tk__proc_force_fallback(true);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    munmap(sh, sizeof *sh);
    tk__proc_force_fallback(false);
    /* every test must leave no child behind */
    assert_int_equal(tk_active_children(NULL, 0), 0);
    return 0;
}

static double slow(double seconds)
{
    return tt_slow_mode() ? seconds * 10 : seconds;
}

/* ------------------------------------------------------------ targets */

static int64_t arg_int(const tk_args *a, size_t i)
{
    int64_t v = 0;
    assert_int_equal(tk_args_get_int(a, i, &v), 0);
    return v;
}

static int t_return(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    return (int)arg_int(a, 0);
}

static int t_abort(const tk_args *a, const tk_kwargs *k)
{
    (void)a, (void)k;
    abort();
}

static int t_raise(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    int sig = (int)arg_int(a, 0);
    signal(sig, SIG_DFL);
    raise(sig);
    return 0;
}

static int t_segv(const tk_args *a, const tk_kwargs *k)
{
    (void)a, (void)k;
    signal(SIGSEGV, SIG_DFL); /* sanitizers install their own handler */
    char *page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    *(volatile char *)page = 1;
    return 0;
}

static int t_sleep(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    usleep((useconds_t)arg_int(a, 0) * 1000);
    return 0;
}

static int t_fail(const tk_args *a, const tk_kwargs *k)
{
    (void)a, (void)k;
    return tk__error(TK_EINVAL, "something bad happened");
}

static int t_exit_early(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    printf("buffered before tk_exit");
    tk_exit((int)arg_int(a, 0));
    return 99; /* not reached */
}

static int t_ignore_term(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    signal(SIGTERM, SIG_IGN);
    sh->ints[0] = 1;
    usleep((useconds_t)arg_int(a, 0) * 1000);
    return 0;
}

/* new + start + join: the exit code. */
static int run(tk_target t, tk_args *a)
{
    tk_process *p = tk_process_new(t, a, NULL);
    assert_non_null(p);
    assert_int_equal(tk_process_start(p), 0);
    assert_int_equal(tk_process_join(p, TK_FOREVER), 0);
    int code = tk_process_exitcode(p);
    tk_process_free(p);
    return code;
}

/* ------------------------------------------------------------ exit codes */

static void exit_code_table(void **state)
{
    (void)state;
    assert_int_equal(run(t_return, tk_args_of("i", 0)), 0);
    assert_int_equal(run(t_return, tk_args_of("i", 7)), 7);
    assert_int_equal(run(t_return, tk_args_of("i", 300)), 300 & 0xff);
    assert_int_equal(run(t_abort, NULL), -SIGABRT);
    assert_int_equal(run(t_raise, tk_args_of("i", SIGTERM)), -SIGTERM);
    assert_int_equal(run(t_raise, tk_args_of("i", SIGKILL)), -SIGKILL);
    assert_int_equal(run(t_segv, NULL), -SIGSEGV);
    /* the parent carries on after its children crashed */
    assert_int_equal(run(t_return, tk_args_of("i", 3)), 3);
}

static void exitcode_none_until_ended(void **state)
{
    (void)state;
    tk_process *p = tk_process_new(t_sleep, tk_args_of("i", 200), NULL);
    assert_int_equal(tk_process_exitcode(p), TK_EXITCODE_NONE);
    assert_int_equal(tk_process_pid(p), 0);
    assert_false(tk_process_is_alive(p));
    assert_int_equal(tk_process_start(p), 0);
    assert_true(tk_process_pid(p) > 0);
    assert_true(tk_process_is_alive(p));
    assert_int_equal(tk_process_exitcode(p), TK_EXITCODE_NONE);
    assert_int_equal(tk_process_join(p, TK_FOREVER), 0);
    assert_false(tk_process_is_alive(p));
    assert_int_equal(tk_process_exitcode(p), 0);
    assert_int_equal(tk_process_join(p, TK_FOREVER), 0); /* again: 0 */
    assert_true(tk_process_pid(p) > 0);                  /* kept after the end */
    tk_process_free(p);
}

/* Runs target with stderr redirected; returns what the child wrote. */
static void capture_stderr(tk_target t, tk_args *a, int *code, char *out, size_t cap)
{
    char path[] = "/tmp/tk_proc_errXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    *code = run(t, a);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, out, cap - 1, 0);
    out[n > 0 ? n : 0] = 0;
    close(fd);
}

static void negative_return_prints_and_exits_1(void **state)
{
    (void)state;
    char out[512];
    int code;
    capture_stderr(t_fail, NULL, &code, out, sizeof out);
    assert_int_equal(code, 1);
    assert_non_null(strstr(out, "Process Process-"));
    assert_non_null(strstr(out, ": something bad happened\n"));
}

static void tk_exit_takes_the_same_path(void **state)
{
    (void)state;
    char path[] = "/tmp/tk_proc_outXXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    fflush(stdout);
    int saved = dup(1);
    dup2(fd, 1);
    int code = run(t_exit_early, tk_args_of("i", 5));
    dup2(saved, 1);
    close(saved);
    char out[256];
    ssize_t n = pread(fd, out, sizeof out - 1, 0);
    out[n > 0 ? n : 0] = 0;
    close(fd);
    assert_int_equal(code, 5);
    assert_string_equal(out, "buffered before tk_exit"); /* flushed on the way out */
}

/* The child writes to a stream it opened and never closes: returning from
 * the target must flush it, as returning from main would. */
static int t_write_unclosed(const tk_args *a, const tk_kwargs *k)
{
    const char *path = NULL;
    (void)k;
    tk_args_get_str(a, 0, &path);
    FILE *f = fopen(path, "w");
    if (!f)
        return 2;
    fputs("child line\n", f);
    return 0; /* f deliberately left open */
}

static void slurp(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = 0;
    fclose(f);
}

/* Any stdio stream, not only stdout: output the parent buffered before the
 * start is written once (not again by the child), and output the child
 * left in a stream it never closed reaches its file. */
static void user_streams_flushed_once(void **state)
{
    (void)state;
    char mine[] = "/tmp/tk_proc_mineXXXXXX", theirs[] = "/tmp/tk_proc_theirsXXXXXX";
    close(mkstemp(mine));
    close(mkstemp(theirs));
    FILE *f = fopen(mine, "w");
    assert_non_null(f);
    fputs("parent line\n", f); /* pending in f's buffer at the fork */
    assert_int_equal(run(t_write_unclosed, tk_args_of("s", theirs)), 0);
    fputs("parent again\n", f);
    fclose(f);
    char out[256];
    slurp(mine, out, sizeof out);
    assert_string_equal(out, "parent line\nparent again\n");
    slurp(theirs, out, sizeof out);
    assert_string_equal(out, "child line\n");
    unlink(mine);
    unlink(theirs);
}

/* ------------------------------------------------------------ errors */

static int t_nop(const tk_args *a, const tk_kwargs *k)
{
    (void)a, (void)k;
    return 0;
}

static void lifecycle_errors(void **state)
{
    (void)state;
    tk_process *p = tk_process_new(t_nop, NULL, NULL);
    assert_int_equal(tk_process_join(p, 1.0), TK_ESTATE);
    assert_string_equal(tk_last_error(), "can only join a started process");
    assert_int_equal(tk_process_sentinel(p), -1);
    assert_string_equal(tk_last_error(), "process not started");
    assert_int_equal(tk_last_error_code(), TK_ESTATE);
    assert_int_equal(tk_process_terminate(p), TK_ESTATE);
    assert_string_equal(tk_last_error(), "can only terminate a started process");
    assert_int_equal(tk_process_kill(p), TK_ESTATE);
    assert_int_equal(tk_process_wait_any(&p, 1, 0), TK_ESTATE);
    assert_int_equal(tk_process_set_daemon(p, true), 0);
    assert_true(tk_process_daemon(p));
    assert_int_equal(tk_process_set_daemon(p, false), 0);
    assert_int_equal(tk_process_start(p), 0);
    assert_int_equal(tk_process_start(p), TK_ESTATE);
    assert_string_equal(tk_last_error(), "cannot start a process twice");
    assert_int_equal(tk_process_set_daemon(p, true), TK_ESTATE);
    assert_string_equal(tk_last_error(), "process has already started");
    assert_int_equal(tk_process_set_name(p, "renamed after start"), 0);
    assert_string_equal(tk_process_name(p), "renamed after start");
    assert_int_equal(tk_process_join(p, TK_FOREVER), 0);
    assert_int_equal(tk_process_start(p), TK_ESTATE); /* also once ended */
    assert_string_equal(tk_last_error(), "cannot start a process twice");
    /* terminate / kill after the end: nothing is sent, 0 */
    assert_int_equal(tk_process_terminate(p), 0);
    assert_int_equal(tk_process_kill(p), 0);
    assert_int_equal(tk_process_exitcode(p), 0);
    tk_process_free(p);
}

static void join_self_and_runtime_handles(void **state)
{
    (void)state;
    tk_process *me = tk_current_process();
    assert_non_null(me);
    assert_string_equal(tk_process_name(me), "MainProcess");
    assert_null(tk_parent_process());
    assert_int_equal(tk_process_pid(me), getpid());
    assert_true(tk_process_is_alive(me));
    assert_int_equal(tk_process_join(me, 0), TK_ESTATE);
    assert_string_equal(tk_last_error(), "can only join a child process");
    assert_int_equal(tk_process_terminate(me), TK_ESTATE);
    assert_string_equal(tk_last_error(), "can only terminate a child process");
    assert_int_equal(tk_process_start(me), TK_ESTATE);
    assert_string_equal(tk_last_error(),
                        "can only start a process object created by current process");
    assert_int_equal(tk_process_sentinel(me), -1);
    assert_int_equal(tk_process_exitcode(me), TK_EXITCODE_NONE);
    tk_process_free(me); /* runtime-owned: no-op */
    assert_string_equal(tk_process_name(tk_current_process()), "MainProcess");
    assert_int_equal(tk_process_set_name(me, "Boss"), 0);
    assert_string_equal(tk_process_name(tk_current_process()), "Boss");
    assert_int_equal(tk_process_set_name(me, "MainProcess"), 0);
}

static void argument_errors(void **state)
{
    (void)state;
    assert_null(tk_process_new(NULL, tk_args_of("i", 1), NULL)); /* bag taken: no leak */
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    assert_string_equal(tk_last_error(), "tk_process_new: target must not be NULL");
    assert_int_equal(tk_process_start(NULL), TK_EINVAL);
    assert_int_equal(tk_process_join(NULL, 0), TK_EINVAL);
    assert_int_equal(tk_process_terminate(NULL), TK_EINVAL);
    assert_int_equal(tk_process_set_name(NULL, "x"), TK_EINVAL);
    assert_int_equal(tk_process_set_daemon(NULL, true), TK_EINVAL);
    assert_int_equal(tk_process_sentinel(NULL), -1);
    assert_int_equal(tk_process_exitcode(NULL), TK_EXITCODE_NONE);
    assert_false(tk_process_is_alive(NULL));
    assert_string_equal(tk_process_name(NULL), "");
    tk_process_free(NULL);
    tk_process *p = tk_process_new(t_nop, NULL, NULL);
    assert_int_equal(tk_process_set_name(p, NULL), TK_EINVAL);
    assert_int_equal(tk_process_start(p), 0);
    assert_int_equal(tk_process_join(p, NAN), TK_EINVAL);
    assert_int_equal(tk_process_wait_any(NULL, 1, 0), TK_EINVAL);
    assert_int_equal(tk_process_wait_any(&p, 0, 0), TK_EINVAL);
    tk_process *none[2] = {NULL, NULL};
    assert_int_equal(tk_process_wait_any(none, 2, 0), TK_EINVAL);
    assert_int_equal(tk_process_stop(p, NAN), TK_EINVAL);
    assert_int_equal(tk_process_join(p, TK_FOREVER), 0);
    tk_process_free(p);
}

static void allocation_failures_leak_nothing(void **state)
{
    (void)state;
    for (long n = 1; n <= 6; n++) {
        tk_args *a = tk_args_of("i", 1);
        tk__fault_set(n);
        tk_process *p = tk_process_new(t_nop, a, NULL);
        tk__fault_set(0);
        if (p) {
            tk_process_free(p);
            continue;
        }
        assert_int_equal(tk_last_error_code(), TK_ENOMEM);
    }
}

/* ------------------------------------------------------------ names */

static int t_names(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    int depth = (int)arg_int(a, 0);
    int slot = 2 - depth;
    snprintf(sh->text[slot], sizeof sh->text[slot], "%s|%s",
             tk_process_name(tk_current_process()),
             tk_parent_process() ? tk_process_name(tk_parent_process()) : "-");
    sh->pids[slot] = tk_process_pid(tk_parent_process());
    if (depth == 0)
        return 0;
    tk_process *first = tk_process_new(t_nop, NULL, NULL);
    tk_process *q = tk_process_new(t_names, tk_args_of("i", depth - 1), NULL);
    if (slot == 0)
        snprintf(sh->text[3], sizeof sh->text[3], "%s", tk_process_name(q));
    int r = tk_process_start(q);
    if (r == 0)
        r = tk_process_join(q, TK_FOREVER);
    r = r == 0 ? tk_process_exitcode(q) : 50;
    tk_process_free(q);
    tk_process_free(first);
    return r;
}

static void names_count_and_nest(void **state)
{
    (void)state;
    tk_process *a = tk_process_new(t_nop, NULL, NULL);
    tk_process *b = tk_process_new(t_nop, NULL, NULL);
    int na = 0, nb = 0;
    assert_int_equal(sscanf(tk_process_name(a), "Process-%d", &na), 1);
    assert_int_equal(sscanf(tk_process_name(b), "Process-%d", &nb), 1);
    assert_int_equal(nb, na + 1); /* every construction advances the counter */
    tk_process_free(a);
    tk_process_free(b);
    tk_process *p = tk_process_new(t_names, tk_args_of("i", 2), NULL);
    char want[128];
    int np = 0;
    sscanf(tk_process_name(p), "Process-%d", &np);
    assert_int_equal(np, nb + 1);
    assert_int_equal(tk_process_start(p), 0);
    assert_int_equal(tk_process_join(p, TK_FOREVER), 0);
    assert_int_equal(tk_process_exitcode(p), 0);
    snprintf(want, sizeof want, "Process-%d|MainProcess", np);
    assert_string_equal(sh->text[0], want);
    snprintf(want, sizeof want, "Process-%d:2", np); /* :1 was 'first' */
    assert_string_equal(sh->text[3], want);
    snprintf(want, sizeof want, "Process-%d:2|Process-%d", np, np);
    assert_string_equal(sh->text[1], want);
    snprintf(want, sizeof want, "Process-%d:2:2|Process-%d:2", np, np);
    assert_string_equal(sh->text[2], want);
    assert_int_equal(sh->pids[0], getpid());
    tk_process_free(p);
}

/* ------------------------------------------------------------ the child */

static int g_counter;

static int t_environment(const tk_args *a, const tk_kwargs *k)
{
    int64_t kw = 0;
    tk_kwargs_get_int(k, "num", &kw);
    sh->ints[0] = (int)arg_int(a, 0) + (int)kw;
    sh->pids[0] = getpid();
    sh->pids[1] = getppid();
    sh->pids[2] = tk_process_pid(tk_current_process());
    g_counter = 42; /* private copy */
    sh->ints[1] = g_counter;
    /* stdin is /dev/null */
    struct stat in, null;
    char c;
    sh->ints[2] = fstat(0, &in) == 0 && stat("/dev/null", &null) == 0 &&
                  in.st_rdev == null.st_rdev && read(0, &c, 1) == 0;
    /* the signal mask is empty */
    sigset_t mask;
    pthread_sigmask(SIG_SETMASK, NULL, &mask);
    sh->ints[3] = sigismember(&mask, SIGUSR1) || sigismember(&mask, SIGTERM);
    sh->ints[4] = tk_active_children(NULL, 0);
    sh->ints[5] = tk_process_daemon(tk_current_process());
    return 0;
}

static void child_environment(void **state)
{
    (void)state;
    g_counter = 1;
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    tk_process *p = tk_process_new(t_environment, tk_args_of("i", 5), tk_kwargs_of("num:i", 100));
    assert_int_equal(tk_process_start(p), 0);
    assert_int_equal(tk_process_join(p, TK_FOREVER), 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    assert_int_equal(tk_process_exitcode(p), 0);
    assert_int_equal(sh->ints[0], 105);
    assert_int_equal(sh->pids[0], tk_process_pid(p));
    assert_int_equal(sh->pids[1], getpid());
    assert_int_equal(sh->pids[2], tk_process_pid(p));
    assert_int_equal(sh->ints[1], 42);
    assert_int_equal(g_counter, 1); /* globals are not shared */
    assert_int_equal(sh->ints[2], 1);
    assert_int_equal(sh->ints[3], 0);
    assert_int_equal(sh->ints[4], 0);
    assert_int_equal(sh->ints[5], 0);
    tk_process_free(p);
}

static int t_daemon_child(const tk_args *a, const tk_kwargs *k)
{
    (void)a, (void)k;
    sh->ints[5] = tk_process_daemon(tk_current_process());
    tk_process *q = tk_process_new(t_nop, NULL, NULL);
    sh->ints[6] = tk_process_daemon(q); /* inherits the current flag */
    sh->ints[0] = tk_process_start(q);
    snprintf(sh->text[0], sizeof sh->text[0], "%s", tk_last_error());
    tk_process_free(q);
    return 0;
}

static void daemonic_processes_have_no_children(void **state)
{
    (void)state;
    tk_process *p = tk_process_new(t_daemon_child, NULL, NULL);
    assert_false(tk_process_daemon(p));
    assert_int_equal(tk_process_set_daemon(p, true), 0);
    assert_int_equal(tk_process_start(p), 0);
    assert_int_equal(tk_process_join(p, TK_FOREVER), 0);
    assert_int_equal(tk_process_exitcode(p), 0);
    assert_int_equal(sh->ints[5], 1);
    assert_int_equal(sh->ints[6], 1);
    assert_int_equal(sh->ints[0], TK_ESTATE);
    assert_string_equal(sh->text[0], "daemonic processes are not allowed to have children");
    tk_process_free(p);
}

/* The pdeathsig trap: a daemonic child started from a thread that ends must
 * not die with that thread. */
static void *start_daemon_thread(void *arg)
{
    tk_process *p = arg;
    tk_process_set_daemon(p, true);
    return (void *)(intptr_t)tk_process_start(p);
}

static void daemon_survives_its_starting_thread(void **state)
{
    (void)state;
    tk_process *p = tk_process_new(t_sleep, tk_args_of("i", 400), NULL);
    pthread_t t;
    void *r;
    assert_int_equal(pthread_create(&t, NULL, start_daemon_thread, p), 0);
    assert_int_equal(pthread_join(t, &r), 0);
    assert_int_equal((intptr_t)r, 0);
    assert_int_equal(tk_process_join(p, TK_FOREVER), 0);
    assert_int_equal(tk_process_exitcode(p), 0); /* not -SIGKILL */
    tk_process_free(p);
}

/* ------------------------------------------------------------ waiting */

static void join_timeout_on_sleeping_child(void **state)
{
    (void)state;
    tk_process *p = tk_process_new(t_sleep, tk_args_of("i", 30000), NULL);
    assert_int_equal(tk_process_start(p), 0);
    double t0 = tt_now();
    assert_int_equal(tk_process_join(p, 0.05), TK_ETIMEDOUT);
    double took = tt_now() - t0;
    assert_true(took >= 0.045);
    assert_true(took < slow(1.0));
    assert_non_null(strstr(tk_last_error(), "still running at the timeout"));
    assert_int_equal(tk_process_join(p, 0), TK_ETIMEDOUT); /* poll */
    assert_int_equal(tk_process_join(p, -5.0), TK_ETIMEDOUT);
    assert_true(tk_process_is_alive(p));
    assert_int_equal(tk_process_terminate(p), 0);
    assert_int_equal(tk_process_join(p, slow(5.0)), 0);
    assert_int_equal(tk_process_exitcode(p), -SIGTERM);
    tk_process_free(p);
}

static void kill_and_stop(void **state)
{
    (void)state;
    tk_process *p = tk_process_new(t_sleep, tk_args_of("i", 30000), NULL);
    assert_int_equal(tk_process_start(p), 0);
    assert_int_equal(tk_process_kill(p), 0);
    assert_int_equal(tk_process_join(p, TK_FOREVER), 0);
    assert_int_equal(tk_process_exitcode(p), -SIGKILL);
    tk_process_free(p);
    /* stop: a child that honours SIGTERM ends with it */
    p = tk_process_new(t_sleep, tk_args_of("i", 30000), NULL);
    assert_int_equal(tk_process_start(p), 0);
    assert_int_equal(tk_process_stop(p, slow(5.0)), 0);
    assert_int_equal(tk_process_exitcode(p), -SIGTERM);
    assert_int_equal(tk_process_stop(p, 1.0), 0); /* ended: 0 */
    tk_process_free(p);
    /* ... and one that ignores it is killed after the grace */
    p = tk_process_new(t_ignore_term, tk_args_of("i", 30000), NULL);
    assert_int_equal(tk_process_start(p), 0);
    while (!__atomic_load_n(&sh->ints[0], __ATOMIC_ACQUIRE))
        usleep(1000);
    double t0 = tt_now();
    assert_int_equal(tk_process_stop(p, 0.2), 0);
    double took = tt_now() - t0;
    assert_true(took >= 0.19 && took < slow(3.0));
    assert_int_equal(tk_process_exitcode(p), -SIGKILL);
    assert_false(tk_process_is_alive(p));
    tk_process_free(p);
}

static void sentinel_readable_at_end(void **state)
{
    (void)state;
    int fds0 = tt_count_fds();
    tk_process *p = tk_process_new(t_sleep, tk_args_of("i", 100), NULL);
    assert_int_equal(tk_process_start(p), 0);
    assert_int_equal(tt_count_fds(), fds0 + 1); /* one per live child */
    int s = tk_process_sentinel(p);
    assert_true(s >= 0);
    assert_int_equal(tk_process_sentinel(p), s);
    assert_true(fcntl(s, F_GETFD) & FD_CLOEXEC);
    struct pollfd pfd = {.fd = s, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 0), 0);
    assert_int_equal(poll(&pfd, 1, 10000), 1);
    assert_int_equal(tk_process_join(p, 5.0), 0);
    /* kept open after the reap, until free */
    assert_true(fcntl(s, F_GETFD) >= 0);
    assert_int_equal(poll(&pfd, 1, 0), 1);
    tk_process_free(p);
    assert_int_equal(tt_count_fds(), fds0);
    /* without a sentinel the descriptor closes at the reap ... */
    p = tk_process_new(t_nop, NULL, NULL);
    assert_int_equal(tk_process_start(p), 0);
    assert_int_equal(tk_process_join(p, TK_FOREVER), 0);
    assert_int_equal(tt_count_fds(), fds0);
    /* ... and a late sentinel is a readable stand-in */
    s = tk_process_sentinel(p);
    assert_true(s >= 0);
    struct pollfd late = {.fd = s, .events = POLLIN};
    assert_int_equal(poll(&late, 1, 0), 1);
    tk_process_free(p);
    assert_int_equal(tt_count_fds(), fds0);
}

static void wait_any_lowest_ended(void **state)
{
    (void)state;
    tk_process *ps[4] = {
        tk_process_new(t_sleep, tk_args_of("i", 30000), NULL),
        NULL,
        tk_process_new(t_sleep, tk_args_of("i", 50), NULL),
        tk_process_new(t_sleep, tk_args_of("i", 30000), NULL),
    };
    for (int i = 0; i < 4; i++)
        if (ps[i])
            assert_int_equal(tk_process_start(ps[i]), 0);
    assert_int_equal(tk_process_wait_any(ps, 4, 0.01), TK_ETIMEDOUT);
    assert_int_equal(tk_process_wait_any(ps, 4, slow(10.0)), 2);
    assert_int_equal(tk_process_exitcode(ps[2]), 0);
    assert_int_equal(tk_process_wait_any(ps, 4, 0), 2); /* still ended */
    tk_process *done = ps[2];
    ps[2] = NULL; /* blank out the handled one */
    assert_int_equal(tk_process_kill(ps[3]), 0);
    assert_int_equal(tk_process_wait_any(ps, 4, slow(10.0)), 3);
    tk_process *third = ps[3];
    ps[3] = NULL;
    assert_int_equal(tk_process_kill(ps[0]), 0);
    assert_int_equal(tk_process_wait_any(ps, 4, slow(10.0)), 0);
    assert_int_equal(tk_process_exitcode(ps[0]), -SIGKILL);
    tk_process_free(done);
    tk_process_free(third);
    for (int i = 0; i < 4; i++)
        tk_process_free(ps[i]);
}

/* wait_any is a cancellation point: a stop request wakes it. */
struct stopper {
    struct tk__stop stop;
    tk_process *p;
    int result;
    atomic_int waiting;
};

static void *wait_any_thread(void *arg)
{
    struct stopper *s = arg;
    tk__tls()->stop = &s->stop;
    atomic_store(&s->waiting, 1);
    s->result = tk_process_wait_any(&s->p, 1, TK_FOREVER);
    tk__tls()->stop = NULL;
    return NULL;
}

static void wait_any_is_a_cancellation_point(void **state)
{
    (void)state;
    struct stopper s = {.p = tk_process_new(t_sleep, tk_args_of("i", 30000), NULL)};
    tk__stop_init(&s.stop);
    assert_int_equal(tk_process_start(s.p), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, wait_any_thread, &s), 0);
    while (!atomic_load(&s.waiting))
        usleep(1000);
    usleep(20000);
    tk__stop_request(&s.stop);
    pthread_join(t, NULL);
    assert_int_equal(s.result, TK_ECANCELED);
    tk__stop_destroy(&s.stop);
    assert_int_equal(tk_process_stop(s.p, 0), 0);
    tk_process_free(s.p);
}

struct joiner {
    tk_process *p;
    int result;
};

static void *join_thread(void *arg)
{
    struct joiner *j = arg;
    j->result = tk_process_join(j->p, TK_FOREVER);
    return NULL;
}

static void concurrent_joins(void **state)
{
    (void)state;
    tk_process *p = tk_process_new(t_sleep, tk_args_of("i", 100), NULL);
    assert_int_equal(tk_process_start(p), 0);
    struct joiner j[3] = {{p, 1}, {p, 1}, {p, 1}};
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, join_thread, &j[i]);
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(j[i].result, 0);
    }
    assert_int_equal(tk_process_exitcode(p), 0);
    tk_process_free(p);
}

/* ------------------------------------------------------------ EINTR */

static void on_alarm(int sig)
{
    (void)sig;
}

static void storm(bool on)
{
    struct itimerval it = {{0, on ? 500 : 0}, {0, on ? 500 : 0}};
    struct sigaction sa = {.sa_handler = on_alarm};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: every wait gets EINTR */
    if (on) {
        sigaction(SIGALRM, &sa, NULL);
        setitimer(ITIMER_REAL, &it, NULL);
        return;
    }
    setitimer(ITIMER_REAL, &it, NULL);
    sa.sa_handler = SIG_IGN; /* discards one still pending */
    sigaction(SIGALRM, &sa, NULL);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGALRM, &sa, NULL);
}

static void eintr_storm_during_join(void **state)
{
    (void)state;
    tk_process *p = tk_process_new(t_sleep, tk_args_of("i", 300), NULL);
    assert_int_equal(tk_process_start(p), 0);
    storm(true);
    double t0 = tt_now();
    int timed = tk_process_join(p, 0.1);
    double took_timed = tt_now() - t0;
    int r = tk_process_join(p, TK_FOREVER);
    double took = tt_now() - t0;
    tk_process *q = tk_process_new(t_sleep, tk_args_of("i", 100), NULL);
    int rq = tk_process_start(q);
    int any = tk_process_wait_any(&q, 1, slow(10.0));
    storm(false);
    assert_int_equal(timed, TK_ETIMEDOUT);
    assert_true(took_timed >= 0.095 && took_timed < slow(1.0));
    assert_int_equal(r, 0);
    assert_true(took >= 0.25 && took < slow(5.0));
    assert_int_equal(tk_process_exitcode(p), 0);
    assert_int_equal(rq, 0);
    assert_int_equal(any, 0);
    tk_process_free(p);
    tk_process_free(q);
}

/* ------------------------------------------------------------ reaping */

static void reaped_behind_our_back(void **state)
{
    (void)state;
    /* a stray waitpid takes the status */
    tk_process *p = tk_process_new(t_return, tk_args_of("i", 3), NULL);
    assert_int_equal(tk_process_start(p), 0);
    int st;
    assert_int_equal(waitpid(tk_process_pid(p), &st, 0), tk_process_pid(p));
    assert_int_equal(tk_process_join(p, slow(5.0)), TK_ECHILD);
    assert_non_null(strstr(tk_last_error(), "was reaped outside libtaskkit"));
    assert_int_equal(tk_process_join(p, 0), 0); /* once, then ended */
    assert_false(tk_process_is_alive(p));
    assert_int_equal(tk_process_exitcode(p), 0);
    assert_int_equal(tk_process_terminate(p), 0); /* and never signalled */
    tk_process_free(p);
    /* SIGCHLD ignored: the kernel reaps at once */
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGCHLD, &ign, &old);
    p = tk_process_new(t_sleep, tk_args_of("i", 50), NULL);
    assert_int_equal(tk_process_start(p), 0);
    int r = tk_process_join(p, slow(5.0));
    sigaction(SIGCHLD, &old, NULL);
    assert_int_equal(r, TK_ECHILD);
    assert_int_equal(tk_process_join(p, 0), 0);
    assert_int_equal(tk_process_stop(p, 0), 0);
    tk_process_free(p);
}

static void free_detaches_without_zombie(void **state)
{
    (void)state;
    tk_process *p = tk_process_new(t_sleep, tk_args_of("i", 50), NULL);
    assert_int_equal(tk_process_start(p), 0);
    pid_t pid = tk_process_pid(p);
    tk_process_free(p); /* detached: the child runs on */
    assert_int_equal(kill(pid, 0), 0);
    usleep(300000);
    assert_int_equal(tt_count_zombies(), 1); /* ended, not yet reaped */
    assert_int_equal(tk_active_children(NULL, 0), 0); /* touches children: reaps */
    assert_int_equal(tt_count_zombies(), 0);
    /* the next start reaps a detached child too */
    p = tk_process_new(t_nop, NULL, NULL);
    assert_int_equal(tk_process_start(p), 0);
    tk_process_free(p);
    usleep(200000);
    tk_process *q = tk_process_new(t_nop, NULL, NULL);
    assert_int_equal(tk_process_start(q), 0);
    assert_int_equal(tk_process_join(q, TK_FOREVER), 0);
    assert_int_equal(tt_count_zombies(), 0);
    tk_process_free(q);
}

static void active_children_hands_out_references(void **state)
{
    (void)state;
    tk_process *a = tk_process_new(t_sleep, tk_args_of("i", 30000), NULL);
    tk_process *b = tk_process_new(t_sleep, tk_args_of("i", 30000), NULL);
    tk_process *c = tk_process_new(t_nop, NULL, NULL);
    assert_int_equal(tk_active_children(NULL, 0), 0);
    tk_process_start(a);
    tk_process_start(b);
    tk_process_start(c);
    tk_process_join(c, TK_FOREVER);
    tk_process *out[4] = {0};
    assert_int_equal(tk_active_children(out, 1), 2); /* total, writes at most cap */
    assert_non_null(out[0]);
    assert_null(out[1]);
    tk_process_free(out[0]);
    assert_int_equal(tk_active_children(out, 4), 2);
    tk_process_free(a); /* out[] still holds references */
    tk_process_free(b);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(tk_process_kill(out[i]), 0);
        assert_int_equal(tk_process_join(out[i], TK_FOREVER), 0);
        tk_process_free(out[i]);
    }
    assert_int_equal(tk_active_children(NULL, 0), 0);
    tk_process_free(c);
}

/* ------------------------------------------------------------ the child's end */

static int t_set_flag_later(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    usleep((useconds_t)arg_int(a, 0) * 1000);
    sh->ints[(int)arg_int(a, 1)] = 1;
    return 0;
}

static int t_leave_children(const tk_args *a, const tk_kwargs *k)
{
    (void)a, (void)k;
    /* returns at once; its end-of-program procedure joins the first and
     * stops the daemonic second */
    tk_process *g = tk_process_new(t_set_flag_later, tk_args_of("ii", 200, 0), NULL);
    tk_process *d = tk_process_new(t_set_flag_later, tk_args_of("ii", 30000, 1), NULL);
    tk_process_set_daemon(d, true);
    if (tk_process_start(g) < 0 || tk_process_start(d) < 0)
        return 9;
    sh->pids[0] = tk_process_pid(d);
    tk_process_free(g);
    tk_process_free(d);
    return 0;
}

static void child_runs_its_own_end_procedure(void **state)
{
    (void)state;
    double t0 = tt_now();
    assert_int_equal(run(t_leave_children, NULL), 0);
    assert_true(tt_now() - t0 < slow(5.0));
    assert_int_equal(sh->ints[0], 1); /* the non-daemon grandchild was joined */
    assert_int_equal(sh->ints[1], 0); /* the daemonic one was stopped */
    assert_true(kill(sh->pids[0], 0) != 0 || errno == ESRCH);
}

/* ------------------------------------------------------------ raw fork */

static void raw_fork_child_is_reset(void **state)
{
    (void)state;
    tk_process *p = tk_process_new(t_sleep, tk_args_of("i", 30000), NULL);
    assert_int_equal(tk_process_start(p), 0);
    int s = tk_process_sentinel(p);
    pid_t pid = fork();
    if (pid == 0) {
        /* the runtime was reset: the parent's child is foreign here */
        int bad = 0;
        bad |= tk_active_children(NULL, 0) != 0;
        bad |= (tk_process_join(p, 0) != TK_ESTATE) << 1;
        bad |= (strcmp(tk_last_error(), "can only join a child process") != 0) << 2;
        bad |= (tk_process_terminate(p) != TK_ESTATE) << 3;
        bad |= tk_process_is_alive(p) << 4;
        bad |= (tk_parent_process() == NULL ||
                tk_process_pid(tk_parent_process()) != getppid()) << 5;
        tk_process_free(p); /* memory only: no close, no signal */
        bad |= (fcntl(s, F_GETFD) < 0) << 6;
        exit(bad); /* atexit: must not join or signal the parent's children */
    }
    int st;
    double t0 = tt_now();
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(tt_now() - t0 < slow(2.0)); /* did not wait for the 30 s child */
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_true(tk_process_is_alive(p)); /* untouched by the fork child */
    assert_int_equal(tk_process_stop(p, slow(5.0)), 0);
    assert_int_equal(tk_process_exitcode(p), -SIGTERM);
    tk_process_free(p);
}

/* ------------------------------------------------------------ misc */

static void cpu_count_is_sane(void **state)
{
    (void)state;
    int n = tk_cpu_count();
    assert_true(n >= 1);
    assert_true(n <= sysconf(_SC_NPROCESSORS_CONF) || n <= 1);
}

static void pidfd_selection(void **state)
{
    (void)state;
    tk_process *p = tk_process_new(t_nop, NULL, NULL);
    assert_int_equal(tk_process_start(p), 0);
    assert_int_equal(tk_process_join(p, TK_FOREVER), 0);
    bool pidfd = tk__proc_uses_pidfd(p);
    tk_process_free(p);
    /* the Linux test machine has pidfds, used unless the fallback is forced */
    tk__proc_force_fallback(true);
    p = tk_process_new(t_nop, NULL, NULL);
    assert_int_equal(tk_process_start(p), 0);
    assert_false(tk__proc_uses_pidfd(p));
    assert_int_equal(tk_process_join(p, TK_FOREVER), 0);
    tk_process_free(p);
    tk__proc_force_fallback(false);
    p = tk_process_new(t_nop, NULL, NULL);
    assert_int_equal(tk_process_start(p), 0);
    assert_int_equal(tk__proc_uses_pidfd(p), pidfd);
    assert_int_equal(tk_process_join(p, TK_FOREVER), 0);
    tk_process_free(p);
    /* pidfds wherever the kernel has them (valgrind hides pidfd_open) */
    int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    assert_int_equal(pidfd, fd >= 0);
    if (fd >= 0)
        close(fd);
}

#define BOTH(t)                                                        \
    cmocka_unit_test_setup_teardown(t, setup_pidfd, teardown),         \
    cmocka_unit_test_setup_teardown(t, setup_pipe, teardown)
#define ONE(t) cmocka_unit_test_setup_teardown(t, setup_pidfd, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(exit_code_table),
        BOTH(exitcode_none_until_ended),
        ONE(negative_return_prints_and_exits_1),
        ONE(tk_exit_takes_the_same_path),
        BOTH(user_streams_flushed_once),
        BOTH(lifecycle_errors),
        ONE(join_self_and_runtime_handles),
        ONE(argument_errors),
        ONE(allocation_failures_leak_nothing),
        BOTH(names_count_and_nest),
        BOTH(child_environment),
        ONE(daemonic_processes_have_no_children),
        BOTH(daemon_survives_its_starting_thread),
        BOTH(join_timeout_on_sleeping_child),
        BOTH(kill_and_stop),
        BOTH(sentinel_readable_at_end),
        BOTH(wait_any_lowest_ended),
        ONE(wait_any_is_a_cancellation_point),
        BOTH(concurrent_joins),
        BOTH(eintr_storm_during_join),
        BOTH(reaped_behind_our_back),
        BOTH(free_detaches_without_zombie),
        ONE(active_children_hands_out_references),
        BOTH(raw_fork_child_is_reset),
        BOTH(child_runs_its_own_end_procedure),
        ONE(cpu_count_is_sane),
        ONE(pidfd_selection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
