/* §2 targets and §3 processes: names, runtime handles, lifecycle errors
 * with CPython's messages, exit codes, joins with timeouts, sentinel,
 * wait_any, stop, detached children, raw fork, end-of-program procedure. */
#include "conf.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* Results children hand back (tk_shm_alloc is shared with later children). */
struct shared {
    char name[64];
    char child_name[64];
    char parent_name[64];
    char msg[256];
    pid_t pid, ppid_seen, parent_pid;
    int rc;
    int flag;
    int atexit_in_child;
    int counter;
};
static struct shared *sh;
static pid_t main_pid;

static void note_atexit(void)
{
    if (getpid() != main_pid && sh)
        sh->atexit_in_child++;
}

static int ret_arg(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    int64_t v = 0;
    tk_args_get_int(a, 0, &v);
    return (int)v;
}

static int sleeper(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    double s = 5.0;
    tk_args_get_float(a, 0, &s);
    conf_sleep(s);
    return 0;
}

static int ignore_term_sleeper(const tk_args *a, const tk_kwargs *k)
{
    signal(SIGTERM, SIG_IGN);
    sh->flag = 1;
    return sleeper(a, k);
}

static void wait_flag(int want)
{
    for (int i = 0; i < 1000 && sh->flag != want; i++)
        conf_sleep(0.01);
}

static void setup_shared(void)
{
    memset(sh, 0, sizeof *sh);
}

/* ------------------------------------------------------------------ names */

static int report_names(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    tk_process *me = tk_current_process();
    tk_process *parent = tk_parent_process();
    snprintf(sh->name, sizeof sh->name, "%s", tk_process_name(me));
    sh->pid = tk_process_pid(me) == getpid() ? getpid() : -1;
    if (parent) {
        snprintf(sh->parent_name, sizeof sh->parent_name, "%s", tk_process_name(parent));
        sh->parent_pid = tk_process_pid(parent);
    }
    sh->ppid_seen = getppid();
    /* nested child */
    tk_process *c = tk_process_new(ret_arg, tk_args_of("i", 0), NULL);
    if (c) {
        snprintf(sh->child_name, sizeof sh->child_name, "%s", tk_process_name(c));
        tk_process_free(c);
    }
    return 0;
}

static void names_and_runtime_handles(void **state)
{
    (void)state;
    setup_shared();
    tk_process *me = tk_current_process();
    assert_non_null(me);
    assert_string_equal(tk_process_name(me), "MainProcess");
    assert_null(tk_parent_process());
    assert_int_equal(tk_process_pid(me), getpid());
    assert_true(tk_process_is_alive(me));
    assert_false(tk_process_daemon(me));
    tk_process_free(me); /* no-op */
    assert_string_equal(tk_process_name(tk_current_process()), "MainProcess");

    tk_process *p1 = tk_process_new(report_names, NULL, NULL);
    tk_process *p2 = tk_process_new(ret_arg, NULL, NULL);
    assert_non_null(p1);
    assert_non_null(p2);
    int n1 = 0, n2 = 0;
    assert_int_equal(sscanf(tk_process_name(p1), "Process-%d", &n1), 1);
    assert_int_equal(sscanf(tk_process_name(p2), "Process-%d", &n2), 1);
    assert_int_equal(n2, n1 + 1);
    assert_int_equal(tk_process_pid(p1), 0);
    assert_int_equal(tk_process_exitcode(p1), TK_EXITCODE_NONE);
    assert_false(tk_process_is_alive(p1));
    assert_false(tk_process_daemon(p1));

    ASSERT_RC(tk_process_start(p1), 0);
    assert_true(tk_process_pid(p1) > 0);
    ASSERT_RC(tk_process_join(p1, TK_FOREVER), 0);
    assert_int_equal(tk_process_exitcode(p1), 0);
    assert_string_equal(sh->name, tk_process_name(p1));
    assert_int_equal(sh->pid, tk_process_pid(p1));
    assert_string_equal(sh->parent_name, "MainProcess");
    assert_int_equal(sh->parent_pid, getpid());
    char want[80];
    snprintf(want, sizeof want, "%s:1", tk_process_name(p1));
    assert_string_equal(sh->child_name, want);
    tk_process_free(p1);
    tk_process_free(p2);
}

static void set_name_and_daemon(void **state)
{
    (void)state;
    tk_process *p = tk_process_new(sleeper, tk_args_of("d", 0.2), NULL);
    ASSERT_RC(tk_process_set_name(p, "worker"), 0);
    assert_string_equal(tk_process_name(p), "worker");
    ASSERT_RC(tk_process_set_daemon(p, true), 0);
    assert_true(tk_process_daemon(p));
    ASSERT_RC(tk_process_set_daemon(p, false), 0);
    ASSERT_RC(tk_process_start(p), 0);
    ASSERT_RC(tk_process_set_daemon(p, true), TK_ESTATE);
    ASSERT_MSG("process has already started");
    assert_false(tk_process_daemon(p));
    ASSERT_RC(tk_process_set_name(p, "renamed while running"), 0);
    assert_string_equal(tk_process_name(p), "renamed while running");
    ASSERT_RC(tk_process_join(p, TK_FOREVER), 0);
    ASSERT_RC(tk_process_set_name(p, "after"), 0);
    assert_string_equal(tk_process_name(p), "after");
    ASSERT_RC(tk_process_set_daemon(tk_current_process(), true), TK_ESTATE);
    tk_process_free(p);
}

/* ------------------------------------------------------- lifecycle errors */

static void lifecycle_errors(void **state)
{
    (void)state;
    tk_process *p = tk_process_new(ret_arg, tk_args_of("i", 3), NULL);
    ASSERT_RC(tk_process_join(p, TK_FOREVER), TK_ESTATE);
    ASSERT_MSG("can only join a started process");
    ASSERT_RC(tk_process_terminate(p), TK_ESTATE);
    ASSERT_RC(tk_process_kill(p), TK_ESTATE);
    assert_int_equal(tk_process_sentinel(p), -1);
    ASSERT_RC(tk_process_start(p), 0);
    ASSERT_RC(tk_process_start(p), TK_ESTATE);
    ASSERT_MSG("cannot start a process twice");
    ASSERT_RC(tk_process_join(p, TK_FOREVER), 0);
    ASSERT_RC(tk_process_join(p, TK_FOREVER), 0);
    ASSERT_RC(tk_process_join(p, 0), 0);
    assert_int_equal(tk_process_exitcode(p), 3);
    /* on an ended process: 0, nothing sent */
    ASSERT_RC(tk_process_terminate(p), 0);
    ASSERT_RC(tk_process_kill(p), 0);
    assert_int_equal(tk_process_exitcode(p), 3);
    ASSERT_RC(tk_process_start(p), TK_ESTATE);
    /* join on the current process */
    ASSERT_RC(tk_process_join(tk_current_process(), 0), TK_ESTATE);
    assert_null(tk_process_new(NULL, NULL, NULL));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    tk_process_free(p);
}

static int start_grandchild(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    tk_process *c = tk_process_new(ret_arg, NULL, NULL);
    sh->rc = tk_process_start(c);
    snprintf(sh->msg, sizeof sh->msg, "%s", tk_last_error());
    if (sh->rc == 0)
        tk_process_join(c, TK_FOREVER);
    tk_process_free(c);
    return 0;
}

static void daemonic_cannot_have_children(void **state)
{
    (void)state;
    setup_shared();
    tk_process *p = tk_process_new(start_grandchild, NULL, NULL);
    ASSERT_RC(tk_process_set_daemon(p, true), 0);
    ASSERT_RC(tk_process_start(p), 0);
    ASSERT_RC(tk_process_join(p, 10.0), 0);
    assert_int_equal(tk_process_exitcode(p), 0);
    assert_int_equal(sh->rc, TK_ESTATE);
    if (strstr(sh->msg, "daemonic processes are not allowed to have children") == NULL)
        fail_msg("message \"%s\"", sh->msg);
    tk_process_free(p);
}

/* ------------------------------------------------------------ exit codes */

static int fail_target(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    int64_t v;
    (void)tk_args_get_int(a, 42, &v); /* sets a last error: TK_EINDEX */
    return -1;
}

static int exit_early(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    tk_exit(9);
}

static void exit_codes(void **state)
{
    (void)state;
    struct {
        tk_target fn;
        tk_args *args;
        int want;
    } cases[] = {
        {ret_arg, tk_args_of("i", 0), 0},
        {ret_arg, tk_args_of("i", 7), 7},
        {ret_arg, tk_args_of("i", 255), 255},
        {ret_arg, tk_args_of("i", 256 + 4), 4},
        {fail_target, NULL, 1},
        {exit_early, NULL, 9},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tk_process *p = tk_process_new(cases[i].fn, cases[i].args, NULL);
        assert_non_null(p);
        ASSERT_RC(tk_process_start(p), 0);
        ASSERT_RC(tk_process_join(p, 10.0), 0);
        assert_false(tk_process_is_alive(p));
        if (tk_process_exitcode(p) != cases[i].want)
            fail_msg("case %zu: exitcode %d, expected %d", i, tk_process_exitcode(p),
                     cases[i].want);
        tk_process_free(p);
    }
}

static void negative_return_reports_on_stderr(void **state)
{
    (void)state;
    /* what the child's last error will say */
    int64_t v;
    tk_args *empty = tk_args_new();
    (void)tk_args_get_int(empty, 42, &v);
    char msg[256];
    snprintf(msg, sizeof msg, "%s", tk_last_error());
    tk_args_free(empty);

    char path[] = "/tmp/conf-stderr-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    tk_process *p = tk_process_new(fail_target, tk_args_new(), NULL);
    ASSERT_RC(tk_process_set_name(p, "failer"), 0);
    int rc = tk_process_start(p);
    if (rc == 0)
        rc = tk_process_join(p, 10.0);
    dup2(saved, 2);
    close(saved);
    ASSERT_RC(rc, 0);
    assert_int_equal(tk_process_exitcode(p), 1);
    char out[1024] = {0};
    ssize_t n = pread(fd, out, sizeof out - 1, 0);
    close(fd);
    assert_true(n > 0);
    char want[320];
    snprintf(want, sizeof want, "Process failer: %s", msg);
    if (strstr(out, want) == NULL)
        fail_msg("stderr was \"%s\", expected a line \"%s\"", out, want);
    tk_process_free(p);
}

static void signals_give_negative_codes(void **state)
{
    (void)state;
    tk_process *p = tk_process_new(sleeper, tk_args_of("d", 20.0), NULL);
    ASSERT_RC(tk_process_start(p), 0);
    assert_true(tk_process_is_alive(p));
    assert_int_equal(tk_process_exitcode(p), TK_EXITCODE_NONE);
    ASSERT_RC(tk_process_terminate(p), 0);
    ASSERT_RC(tk_process_join(p, 10.0), 0);
    assert_int_equal(tk_process_exitcode(p), -SIGTERM);
    tk_process_free(p);

    p = tk_process_new(sleeper, tk_args_of("d", 20.0), NULL);
    ASSERT_RC(tk_process_start(p), 0);
    ASSERT_RC(tk_process_kill(p), 0);
    ASSERT_RC(tk_process_join(p, 10.0), 0);
    assert_int_equal(tk_process_exitcode(p), -SIGKILL);
    tk_process_free(p);
}

static void join_timeouts(void **state)
{
    (void)state;
    tk_process *p = tk_process_new(sleeper, tk_args_of("d", 20.0), NULL);
    ASSERT_RC(tk_process_start(p), 0);
    double t0 = conf_now();
    ASSERT_RC(tk_process_join(p, 0), TK_ETIMEDOUT);
    ASSERT_RC(tk_process_join(p, -0.5), TK_ETIMEDOUT);
    assert_true(conf_now() - t0 < 2.0);
    t0 = conf_now();
    ASSERT_RC(tk_process_join(p, 0.3), TK_ETIMEDOUT);
    double dt = conf_now() - t0;
    assert_true(dt >= 0.25);
    assert_true(dt < 5.0);
    assert_true(tk_process_is_alive(p));
    assert_int_equal(tk_process_exitcode(p), TK_EXITCODE_NONE);
    ASSERT_RC(tk_process_kill(p), 0);
    ASSERT_RC(tk_process_join(p, 1e300), 0);
    tk_process_free(p);
}

static void sentinel_readable_at_end(void **state)
{
    (void)state;
    tk_process *p = tk_process_new(sleeper, tk_args_of("d", 0.4), NULL);
    assert_int_equal(tk_process_sentinel(p), -1);
    assert_int_equal(tk_last_error_code(), TK_ESTATE);
    ASSERT_RC(tk_process_start(p), 0);
    int fd = tk_process_sentinel(p);
    assert_true(fd >= 0);
    struct pollfd pf = {fd, POLLIN, 0};
    assert_int_equal(poll(&pf, 1, 0), 0);
    assert_int_equal(poll(&pf, 1, 10000), 1);
    ASSERT_RC(tk_process_join(p, 5.0), 0);
    /* kept open until free, still readable */
    assert_int_equal(tk_process_sentinel(p), fd);
    assert_int_equal(poll(&pf, 1, 0), 1);
    /* close-on-exec */
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    tk_process_free(p);
}

static void wait_any_rules(void **state)
{
    (void)state;
    tk_process *ps[3];
    ps[0] = tk_process_new(sleeper, tk_args_of("d", 20.0), NULL);
    ps[1] = tk_process_new(ret_arg, tk_args_of("i", 5), NULL);
    ps[2] = tk_process_new(ret_arg, tk_args_of("i", 6), NULL);
    ASSERT_RC(tk_process_wait_any(ps, 0, 0), TK_EINVAL);
    for (int i = 0; i < 3; i++)
        ASSERT_RC(tk_process_start(ps[i]), 0);
    /* wait for both quick ones to end, then the lowest index is returned */
    ASSERT_RC(tk_process_join(ps[2], 10.0), 0);
    ASSERT_RC(tk_process_join(ps[1], 10.0), 0);
    ASSERT_RC(tk_process_wait_any(ps, 3, TK_FOREVER), 1);
    tk_process *keep = ps[1];
    ps[1] = NULL; /* blanked out: skipped */
    ASSERT_RC(tk_process_wait_any(ps, 3, TK_FOREVER), 2);
    tk_process *only[2] = {ps[0], NULL};
    double t0 = conf_now();
    ASSERT_RC(tk_process_wait_any(only, 2, 0.2), TK_ETIMEDOUT);
    assert_true(conf_now() - t0 >= 0.15);
    ASSERT_RC(tk_process_wait_any(only, 2, -3.0), TK_ETIMEDOUT);
    tk_process *none[2] = {NULL, NULL};
    ASSERT_RC(tk_process_wait_any(none, 2, 0), TK_EINVAL);
    ASSERT_RC(tk_process_kill(ps[0]), 0);
    ASSERT_RC(tk_process_wait_any(only, 2, 10.0), 0);
    for (int i = 0; i < 3; i++)
        tk_process_free(ps[i]);
    tk_process_free(keep);
}

static void stop_escalates(void **state)
{
    (void)state;
    setup_shared();
    tk_process *p = tk_process_new(ignore_term_sleeper, tk_args_of("d", 20.0), NULL);
    ASSERT_RC(tk_process_start(p), 0);
    wait_flag(1);
    double t0 = conf_now();
    ASSERT_RC(tk_process_stop(p, 0.3), 0);
    double dt = conf_now() - t0;
    assert_true(dt >= 0.25);
    assert_true(dt < 8.0);
    assert_int_equal(tk_process_exitcode(p), -SIGKILL);
    assert_false(tk_process_is_alive(p));
    ASSERT_RC(tk_process_stop(p, 0.3), 0); /* already ended */
    tk_process_free(p);

    p = tk_process_new(sleeper, tk_args_of("d", 20.0), NULL);
    ASSERT_RC(tk_process_start(p), 0);
    ASSERT_RC(tk_process_stop(p, 5.0), 0);
    assert_int_equal(tk_process_exitcode(p), -SIGTERM);
    tk_process_free(p);
}

static char proc_state(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *r = strrchr(buf, ')');
    return r && r[1] == ' ' ? r[2] : '?';
}

static void free_live_process_leaves_no_zombie(void **state)
{
    (void)state;
    tk_process *p = tk_process_new(sleeper, tk_args_of("d", 0.3), NULL);
    ASSERT_RC(tk_process_start(p), 0);
    pid_t pid = tk_process_pid(p);
    size_t before = tk_active_children(NULL, 0);
    assert_true(before >= 1);
    tk_process_free(p); /* detached, not stopped */
    assert_true(proc_state(pid) != 0 && proc_state(pid) != 'Z');
    char st = 'Z';
    for (int i = 0; i < 100; i++) {
        conf_sleep(0.1);
        (void)tk_active_children(NULL, 0);
        st = proc_state(pid);
        if (st == 0)
            break;
    }
    if (st != 0)
        fail_msg("detached child %d still present in state %c", (int)pid, st);
}

static void active_children_lists_live(void **state)
{
    (void)state;
    tk_process *p = tk_process_new(sleeper, tk_args_of("d", 20.0), NULL);
    ASSERT_RC(tk_process_start(p), 0);
    tk_process *out[16];
    size_t n = tk_active_children(out, 16);
    assert_true(n >= 1);
    bool found = false;
    for (size_t i = 0; i < n && i < 16; i++) {
        if (tk_process_pid(out[i]) == tk_process_pid(p))
            found = true;
        tk_process_free(out[i]);
    }
    assert_true(found);
    ASSERT_RC(tk_process_stop(p, 1.0), 0);
    n = tk_active_children(out, 16);
    for (size_t i = 0; i < n && i < 16; i++) {
        assert_true(tk_process_pid(out[i]) != tk_process_pid(p));
        tk_process_free(out[i]);
    }
    tk_process_free(p);
}

static void cpu_count(void **state)
{
    (void)state;
    int n = tk_cpu_count();
    assert_true(n >= 1);
    long conf = sysconf(_SC_NPROCESSORS_CONF);
    if (conf > 0)
        assert_true(n <= conf);
}

/* ----------------------------------------------------- the child's world */

static int check_child_env(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    struct stat s0, sn;
    int ok = 0;
    if (fstat(0, &s0) == 0 && stat("/dev/null", &sn) == 0 && s0.st_rdev == sn.st_rdev &&
        S_ISCHR(s0.st_mode))
        ok |= 1;
    sigset_t m;
    sigprocmask(SIG_SETMASK, NULL, &m);
    if (!sigismember(&m, SIGUSR1) && !sigismember(&m, SIGTERM))
        ok |= 2;
    return ok;
}

static void child_stdin_and_sigmask(void **state)
{
    (void)state;
    sigset_t m, old;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigaddset(&m, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &m, &old);
    tk_process *p = tk_process_new(check_child_env, NULL, NULL);
    int rc = tk_process_start(p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    ASSERT_RC(rc, 0);
    ASSERT_RC(tk_process_join(p, 10.0), 0);
    int code = tk_process_exitcode(p);
    if (!(code & 1))
        fail_msg("child's stdin is not /dev/null (exit %d)", code);
    if (!(code & 2))
        fail_msg("child's signal mask is not empty (exit %d)", code);
    tk_process_free(p);
}

static void parent_atexit_not_run_in_child(void **state)
{
    (void)state;
    setup_shared();
    tk_process *p = tk_process_new(ret_arg, tk_args_of("i", 0), NULL);
    ASSERT_RC(tk_process_start(p), 0);
    ASSERT_RC(tk_process_join(p, 10.0), 0);
    tk_process_free(p);
    p = tk_process_new(exit_early, NULL, NULL);
    ASSERT_RC(tk_process_start(p), 0);
    ASSERT_RC(tk_process_join(p, 10.0), 0);
    assert_int_equal(tk_process_exitcode(p), 9);
    tk_process_free(p);
    assert_int_equal(sh->atexit_in_child, 0);
}

static void stdio_flushed_before_fork(void **state)
{
    (void)state;
    char path[] = "/tmp/conf-stdio-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    setvbuf(f, NULL, _IOFBF, 4096);
    fputs("once", f); /* buffered, not flushed */
    tk_process *p = tk_process_new(ret_arg, NULL, NULL);
    ASSERT_RC(tk_process_start(p), 0);
    ASSERT_RC(tk_process_join(p, 10.0), 0);
    tk_process_free(p);
    fclose(f);
    f = fopen(path, "r");
    char buf[64] = {0};
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    unlink(path);
    buf[n] = 0;
    assert_string_equal(buf, "once");
}

static void echild_when_reaped_behind_back(void **state)
{
    (void)state;
    tk_process *p = tk_process_new(ret_arg, tk_args_of("i", 3), NULL);
    ASSERT_RC(tk_process_start(p), 0);
    int st;
    assert_int_equal(waitpid(tk_process_pid(p), &st, 0), tk_process_pid(p));
    ASSERT_RC(tk_process_join(p, 5.0), TK_ECHILD);
    ASSERT_RC(tk_process_join(p, 5.0), 0);
    assert_false(tk_process_is_alive(p));
    assert_true(tk_process_exitcode(p) != TK_EXITCODE_NONE);
    tk_process_free(p);
}

static void echild_when_sigchld_ignored(void **state)
{
    (void)state;
    signal(SIGCHLD, SIG_IGN); /* the kernel reaps behind libtaskkit's back */
    tk_process *p = tk_process_new(ret_arg, tk_args_of("i", 3), NULL);
    int rc = tk_process_start(p);
    conf_sleep(0.3);
    int j1 = tk_process_join(p, 10.0);
    int j2 = tk_process_join(p, 10.0);
    signal(SIGCHLD, SIG_DFL);
    ASSERT_RC(rc, 0);
    ASSERT_RC(j1, TK_ECHILD);
    ASSERT_RC(j2, 0);
    assert_false(tk_process_is_alive(p));
    tk_process_free(p);
}

/* ----------------------------------------------------------- raw fork */

static void raw_fork_resets_runtime(void **state)
{
    (void)state;
    tk_process *p = tk_process_new(sleeper, tk_args_of("d", 20.0), NULL);
    ASSERT_RC(tk_process_start(p), 0);
    ASSERT_RC(tk_thread_set_name(tk_main_thread(), "Forker"), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int bad = 0;
        if (tk_active_children(NULL, 0) != 0)
            bad |= 1;
        if (tk_process_join(p, 0) != TK_ESTATE ||
            strstr(tk_last_error(), "can only join a child process") == NULL)
            bad |= 2;
        if (tk_process_terminate(p) != TK_ESTATE)
            bad |= 4;
        if (tk_active_count() != 1)
            bad |= 8;
        if (strcmp(tk_thread_name(tk_main_thread()), "Forker") != 0 ||
            tk_current_thread() != tk_main_thread())
            bad |= 16;
        if (strcmp(tk_process_name(tk_current_process()), "MainProcess") != 0)
            bad |= 32;
        if (tk_process_is_alive(p))
            bad |= 64;
        tk_process_free(p); /* memory only: must not signal the sibling */
        _exit(bad);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    ASSERT_RC(tk_thread_set_name(tk_main_thread(), "MainThread"), 0);
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) != 0)
        fail_msg("raw fork child found problems, mask %#x", WEXITSTATUS(st));
    assert_true(tk_process_is_alive(p)); /* the child's free did not signal it */
    ASSERT_RC(tk_process_kill(p), 0);
    ASSERT_RC(tk_process_join(p, 10.0), 0);
    tk_process_free(p);
}

/* ---------------------------------------------------- daemons and deaths */

static int spawn_daemon_then_die(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    tk_process *d = tk_process_new(sleeper, tk_args_of("d", 20.0), NULL);
    tk_process_set_daemon(d, true);
    if (tk_process_start(d) != 0)
        return 2;
    sh->pid = tk_process_pid(d);
    conf_sleep(0.2);
    kill(getpid(), SIGKILL);
    return 3;
}

static void daemon_killed_when_parent_killed(void **state)
{
    (void)state;
    setup_shared();
    tk_process *p = tk_process_new(spawn_daemon_then_die, NULL, NULL);
    ASSERT_RC(tk_process_start(p), 0);
    ASSERT_RC(tk_process_join(p, 10.0), 0);
    assert_int_equal(tk_process_exitcode(p), -SIGKILL);
    pid_t d = sh->pid;
    assert_true(d > 0);
    char st = 'S';
    for (int i = 0; i < 50; i++) {
        st = proc_state(d);
        if (st == 0 || st == 'Z')
            break;
        conf_sleep(0.1);
    }
    if (st != 0 && st != 'Z') {
        kill(d, SIGKILL);
        fail_msg("daemonic grandchild %d survived its parent's SIGKILL", (int)d);
    }
    tk_process_free(p);
}

static void *thread_starts_daemon(void *arg)
{
    tk_process *d = arg;
    sh->rc = tk_process_start(d);
    return NULL;
}

static void daemon_survives_starting_thread(void **state)
{
    (void)state;
    setup_shared();
    tk_process *d = tk_process_new(sleeper, tk_args_of("d", 0.8), NULL);
    ASSERT_RC(tk_process_set_daemon(d, true), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, thread_starts_daemon, d), 0);
    pthread_join(th, NULL); /* the starting thread has ended */
    ASSERT_RC(sh->rc, 0);
    ASSERT_RC(tk_process_join(d, 10.0), 0);
    assert_int_equal(tk_process_exitcode(d), 0);
    tk_process_free(d);
}

/* ------------------------------------------------ end-of-program procedure */

static void shutdown_stops_daemons_joins_others(void **state)
{
    (void)state;
    setup_shared();
    tk_process *d = tk_process_new(ignore_term_sleeper, tk_args_of("d", 20.0), NULL);
    ASSERT_RC(tk_process_set_daemon(d, true), 0);
    tk_process *n = tk_process_new(sleeper, tk_args_of("d", 0.5), NULL);
    ASSERT_RC(tk_process_start(d), 0);
    ASSERT_RC(tk_process_start(n), 0);
    wait_flag(1);
    double t0 = conf_now();
    tk_shutdown();
    double dt = conf_now() - t0;
    assert_true(dt < 8.0);
    assert_false(tk_process_is_alive(d));
    assert_false(tk_process_is_alive(n));
    assert_int_equal(tk_process_exitcode(d), -SIGKILL);
    assert_int_equal(tk_process_exitcode(n), 0);
    tk_shutdown(); /* safe again */
    tk_process_free(d);
    tk_process_free(n);
}

int main(void)
{
    CONF_MAIN_GUARD();
    main_pid = getpid();
    sh = tk_shm_alloc(sizeof *sh);
    if (!sh)
        return 1;
    atexit(note_atexit);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_and_runtime_handles),
        cmocka_unit_test(set_name_and_daemon),
        cmocka_unit_test(lifecycle_errors),
        cmocka_unit_test(daemonic_cannot_have_children),
        cmocka_unit_test(exit_codes),
        cmocka_unit_test(negative_return_reports_on_stderr),
        cmocka_unit_test(signals_give_negative_codes),
        cmocka_unit_test(join_timeouts),
        cmocka_unit_test(sentinel_readable_at_end),
        cmocka_unit_test(wait_any_rules),
        cmocka_unit_test(stop_escalates),
        cmocka_unit_test(free_live_process_leaves_no_zombie),
        cmocka_unit_test(active_children_lists_live),
        cmocka_unit_test(cpu_count),
        cmocka_unit_test(child_stdin_and_sigmask),
        cmocka_unit_test(parent_atexit_not_run_in_child),
        cmocka_unit_test(stdio_flushed_before_fork),
        cmocka_unit_test(echild_when_reaped_behind_back),
        cmocka_unit_test(echild_when_sigchld_ignored),
        cmocka_unit_test(raw_fork_resets_runtime),
        cmocka_unit_test(daemon_killed_when_parent_killed),
        cmocka_unit_test(daemon_survives_starting_thread),
        cmocka_unit_test(shutdown_stops_daemons_joins_others),
    };
    return cmocka_run_group_tests_name("conformance: §2-3 processes", tests, NULL, NULL);
}
