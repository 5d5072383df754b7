/* test_process_exit.c - processes at program exit. Each test re-runs this
 * binary in a mode (tt_run_self) and checks what that program left behind:
 * its output, its exit status, how long it took, and which of its children
 * are still around. */
#include "common/testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "process_int.h"
#include "taskkit.h"

static double slow(double seconds)
{
    return tt_slow_mode() ? seconds * 10 : seconds;
}

static int64_t arg_int(const tk_args *a, size_t i)
{
    int64_t v = 0;
    tk_args_get_int(a, i, &v);
    return v;
}

/* Set by a child once it has printed its pid (shared with the mode). */
static int *started;

static void wait_started(void)
{
    double end = tt_now() + slow(10);
    while (!__atomic_load_n(started, __ATOMIC_ACQUIRE) && tt_now() < end)
        usleep(1000);
}

/* Prints its pid, sleeps arg ms, prints "<tag> done". */
static int t_sleep_print(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    const char *tag = "child";
    tk_args_get_str(a, 1, &tag);
    printf("pid %d\n", (int)getpid());
    fflush(stdout);
    if (started)
        __atomic_store_n(started, 1, __ATOMIC_RELEASE);
    usleep((useconds_t)arg_int(a, 0) * 1000);
    printf("%s done\n", tag);
    return 0;
}

static int t_block_term(const tk_args *a, const tk_kwargs *k)
{
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, NULL);
    return t_sleep_print(a, k);
}

static void say_atexit(void)
{
    printf("main atexit\n");
}

/* Handles the modes never free (like a Python script that drops its
 * Process objects at exit) stay reachable here, so leak checkers agree. */
static tk_process *kept[8];
static int n_kept;

static tk_process *start(tk_target t, tk_args *a, bool daemon)
{
    tk_process *p = tk_process_new(t, a, NULL);
    if (n_kept < 8)
        kept[n_kept++] = p;
    if (!p || tk_process_set_daemon(p, daemon) < 0 || tk_process_start(p) < 0) {
        printf("start failed: %s\n", tk_last_error());
        exit(90);
    }
    return p;
}

/* ------------------------------------------------------------ modes */

static int mode_non_daemon_joined(void)
{
    atexit(say_atexit); /* registered first, so it runs after tk_shutdown */
    start(t_sleep_print, tk_args_of("is", 300, "child"), false);
    return 0; /* exit(): the end-of-program procedure joins the child */
}

static int mode_detached_joined(void)
{
    atexit(say_atexit);
    tk_process_free(start(t_sleep_print, tk_args_of("is", 300, "detached"), false));
    kept[--n_kept] = NULL; /* freed: detached */
    return 0;
}

static void share_started(void)
{
    started = mmap(NULL, sizeof *started, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
}

static int mode_daemon_terminated(void)
{
    atexit(say_atexit);
    share_started();
    start(t_sleep_print, tk_args_of("is", 30000, "daemon"), true);
    wait_started(); /* it has printed its pid */
    return 0;
}

static int mode_daemon_blocks_term(void)
{
    atexit(say_atexit);
    share_started();
    start(t_block_term, tk_args_of("is", 30000, "stubborn"), true);
    wait_started(); /* SIGTERM is blocked by now */
    return 0;
}

static void *exit_from_thread(void *arg)
{
    (void)arg;
    usleep(50000);
    exit(0); /* runs the end-of-program procedure in this thread */
}

static int mode_exit_from_thread(void)
{
    atexit(say_atexit);
    start(t_sleep_print, tk_args_of("is", 300, "child"), false);
    pthread_t t;
    pthread_create(&t, NULL, exit_from_thread, NULL);
    for (;;)
        pause();
    return 0;
}

static void *start_during_shutdown(void *arg)
{
    (void)arg;
    while (!tk__shutting_down())
        usleep(1000);
    tk_process *p = tk_process_new(t_sleep_print, tk_args_of("is", 0, "late"), NULL);
    int r = tk_process_start(p);
    printf("late start: %s: %s\n", tk_err_name(r), tk_last_error());
    fflush(stdout);
    tk_process_free(p);
    return NULL;
}

static int mode_start_during_shutdown(void)
{
    start(t_sleep_print, tk_args_of("is", 500, "child"), false);
    pthread_t t;
    pthread_create(&t, NULL, start_during_shutdown, NULL);
    pthread_detach(t);
    return 0;
}

static int mode_doubled_output(void)
{
    /* stdout is a pipe here: fully buffered, so without a flush before fork
     * the child would print "before" again */
    printf("before|");
    tk_process *p = start(t_sleep_print, tk_args_of("is", 0, "child"), false);
    tk_process_join(p, TK_FOREVER);
    tk_process_free(p);
    printf("after\n");
    return 0;
}

/* Streams other than stdout, and stdin, across start and the child's end:
 * the start path skips fflush/__fpurge when nothing is pending, so each
 * case where something is pending must still be handled. */
static FILE *log_file;

static int t_stdio(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    int c = getchar(); /* /dev/null, the parent's buffered input dropped */
    fprintf(log_file, "C%d|", c == EOF ? 0 : c); /* flushed at the end */
    return 0;
}

static void start_join_stdio(void)
{
    tk_process *p = start(t_stdio, NULL, false);
    tk_process_join(p, TK_FOREVER);
    tk_process_free(p);
}

static int mode_stdio_streams(void)
{
    char path[] = "/tmp/tk_stdio_XXXXXX", buf[64] = "";
    int fd = mkstemp(path), pfd[2];
    if (fd < 0 || pipe(pfd) < 0 || write(pfd[1], "xyz", 3) != 3)
        return 91;
    close(fd);
    close(pfd[1]);
    dup2(pfd[0], 0);
    close(pfd[0]);
    log_file = fopen(path, "a"); /* a regular file: fully buffered */
    int c = getchar();           /* "yz" stays in stdin's buffer */
    fprintf(log_file, "P%c|", c);
    start_join_stdio();
    ungetc('u', stdin); /* pushed back: must not reach the child either */
    start_join_stdio();
    clearerr(stdin);
    fprintf(log_file, "E|");
    fclose(log_file);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = 0;
    if (f)
        fclose(f);
    unlink(path);
    printf("file:%s\n", buf);
    return 0;
}

static int mode_tk_exit_in_main(void)
{
    atexit(say_atexit);
    start(t_sleep_print, tk_args_of("is", 200, "child"), false);
    printf("leaving|");
    tk_exit(3); /* joins the child, flushes, _exit: no atexit handlers */
}

/* A parent killed by SIGKILL leaves no daemonic orphan, including one that
 * was started from a thread that has ended since. */
static pid_t *pids;

static int t_daemon_pid(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    pids[arg_int(a, 0)] = getpid();
    for (;;)
        pause();
    return 0;
}

static void *start_daemon_and_end(void *arg)
{
    (void)arg;
    tk_process *d = tk_process_new(t_daemon_pid, tk_args_of("i", 1), NULL);
    tk_process_set_daemon(d, true);
    tk_process_start(d);
    return NULL; /* this thread ends; the daemonic child must not */
}

static int t_parent_of_daemons(const tk_args *a, const tk_kwargs *k)
{
    (void)a, (void)k;
    tk_process *d = tk_process_new(t_daemon_pid, tk_args_of("i", 0), NULL);
    tk_process_set_daemon(d, true);
    tk_process_start(d);
    pthread_t t;
    pthread_create(&t, NULL, start_daemon_and_end, NULL);
    pthread_join(t, NULL);
    pids[2] = 1; /* both started */
    for (;;)
        pause();
    return 0;
}

static bool gone_or_zombie(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return true;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *rp = strrchr(buf, ')');
    return rp && rp[2] == 'Z';
}

static int mode_parent_killed(void)
{
    /* Orphans come to us, so we can see how they died. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
        return 80;
    pids = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    tk_process *p = start(t_parent_of_daemons, NULL, false);
    double end = tt_now() + slow(10);
    while (!(__atomic_load_n(&pids[0], __ATOMIC_ACQUIRE) &&
             __atomic_load_n(&pids[1], __ATOMIC_ACQUIRE) &&
             __atomic_load_n(&pids[2], __ATOMIC_ACQUIRE)) &&
           tt_now() < end)
        usleep(1000);
    if (!pids[2] || !pids[0] || !pids[1]) {
        tk_process_kill(p);
        return 81;
    }
    usleep(200000);
    if (gone_or_zombie(pids[0]) || gone_or_zombie(pids[1]))
        return 82; /* the short-lived thread took its daemon along */
    tk_process_kill(p);
    tk_process_join(p, TK_FOREVER);
    for (int i = 0; i < 2; i++) {
        int st = 0;
        pid_t r = 0;
        while ((r = waitpid(pids[i], &st, WNOHANG)) == 0 && tt_now() < end)
            usleep(2000);
        if (r != pids[i])
            return 83 + i;
        if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
            return 85 + i;
    }
    printf("no orphans\n");
    tk_process_free(p);
    return 0;
}

/* 500 live children under RLIMIT_NOFILE 1024: one descriptor each. */
static int gate[2];

static int t_wait_gate(const tk_args *a, const tk_kwargs *k)
{
    (void)a, (void)k;
    close(gate[1]);
    char c;
    while (read(gate[0], &c, 1) < 0 && errno == EINTR)
        ;
    return 7;
}

/* Under valgrind and TSan a fork is slow and every child runs the tool's
 * exit checks: 500 children would take minutes. */
static bool heavy_forks(void)
{
    const char *m = getenv("TK_TEST_MODE");
    return m && (strcmp(m, "valgrind") == 0 || strcmp(m, "tsan") == 0);
}

static int many_children(bool fallback)
{
    enum { MAX = 500 };
    /* fewer under the heavy tools; the limit is exercised by the other builds */
    const int N = heavy_forks() ? 60 : MAX;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = 1024; /* the soft limit: valgrind refuses to touch the hard one */
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 70;
    tk__proc_force_fallback(fallback);
    if (pipe(gate) != 0)
        return 71;
    static tk_process *ps[MAX];
    int fds0 = tt_count_fds();
    for (int i = 0; i < N; i++) {
        ps[i] = tk_process_new(t_wait_gate, NULL, NULL);
        if (tk_process_start(ps[i]) < 0) {
            printf("start %d: %s\n", i, tk_last_error());
            return 72;
        }
    }
    int fds = tt_count_fds() - fds0;
    if (tk_active_children(NULL, 0) != (size_t)N || fds != N) {
        printf("children %zu fds %d\n", tk_active_children(NULL, 0), fds);
        return 73;
    }
    close(gate[1]); /* EOF for everyone */
    for (int i = 0; i < N; i++) {
        if (tk_process_join(ps[i], TK_FOREVER) != 0 || tk_process_exitcode(ps[i]) != 7)
            return 74;
        tk_process_free(ps[i]);
    }
    if (tt_count_fds() - fds0 != -1) /* every child's descriptor closed; the gate's write end too */
        return 75;
    printf("%d ok\n", N);
    return 0;
}

static int mode_many_pidfd(void)
{
    return many_children(false);
}

static int mode_many_pipe(void)
{
    return many_children(true);
}

/* ------------------------------------------------------------ tests */

static char out[8192];

static int run_mode(const char *mode, double timeout, double *took)
{
    double t0 = tt_now();
    int st = tt_run_self(mode, out, sizeof out, timeout);
    if (took)
        *took = tt_now() - t0;
    if (st == -1 || !WIFEXITED(st)) {
        print_message("mode %s: status %#x, output:\n%s\n", mode, st, out);
        return -1;
    }
    return WEXITSTATUS(st);
}

/* The pid a mode's child printed, or 0. */
static pid_t printed_pid(void)
{
    const char *s = strstr(out, "pid ");
    return s ? (pid_t)atoi(s + 4) : 0;
}

static void non_daemon_child_joined_at_exit(void **state)
{
    (void)state;
    assert_int_equal(run_mode("non-daemon", 30, NULL), 0);
    const char *done = strstr(out, "child done\n");
    const char *end = strstr(out, "main atexit\n");
    assert_non_null(done);
    assert_non_null(end);
    assert_true(done < end); /* joined before the earlier handlers ran */
}

static void detached_child_joined_at_exit(void **state)
{
    (void)state;
    assert_int_equal(run_mode("detached", 30, NULL), 0);
    const char *done = strstr(out, "detached done\n");
    assert_non_null(done);
    assert_true(done < strstr(out, "main atexit\n"));
}

static void daemon_child_terminated_at_exit(void **state)
{
    (void)state;
    double took;
    assert_int_equal(run_mode("daemon", 30, &took), 0);
    assert_null(strstr(out, "daemon done"));
    assert_non_null(strstr(out, "main atexit\n"));
    assert_true(took < slow(5.0));
    pid_t pid = printed_pid();
    assert_true(pid > 0);
    assert_true(kill(pid, 0) != 0 || gone_or_zombie(pid));
}

static void daemon_blocking_sigterm_killed_after_grace(void **state)
{
    (void)state;
    double took;
    assert_int_equal(run_mode("stubborn", 30, &took), 0);
    assert_null(strstr(out, "stubborn done"));
    assert_non_null(strstr(out, "main atexit\n"));
    assert_true(took >= 0.9);     /* the 1 s grace ... */
    assert_true(took < slow(6.0)); /* ... then SIGKILL, no hang */
    pid_t pid = printed_pid();
    assert_true(pid > 0);
    assert_true(kill(pid, 0) != 0 || gone_or_zombie(pid));
}

static void exit_from_other_thread(void **state)
{
    (void)state;
    assert_int_equal(run_mode("exit-thread", 30, NULL), 0);
    const char *done = strstr(out, "child done\n");
    assert_non_null(done);
    assert_true(done < strstr(out, "main atexit\n"));
}

static void start_refused_during_shutdown(void **state)
{
    (void)state;
    assert_int_equal(run_mode("late-start", 30, NULL), 0);
    assert_non_null(
        strstr(out, "late start: TK_ESTATE: can't create new thread at interpreter shutdown\n"));
    assert_null(strstr(out, "late done"));
    assert_non_null(strstr(out, "child done\n"));
}

static void no_doubled_output(void **state)
{
    (void)state;
    assert_int_equal(run_mode("doubled", 30, NULL), 0);
    const char *first = strstr(out, "before|");
    assert_non_null(first);
    assert_null(strstr(first + 1, "before|"));
    assert_non_null(strstr(out, "child done\n"));
    assert_non_null(strstr(out, "after\n"));
}

static void stdio_streams_flushed_once_and_stdin_purged(void **state)
{
    (void)state;
    assert_int_equal(run_mode("stdio", 30, NULL), 0);
    assert_non_null(strstr(out, "file:Px|C0|C0|E|\n"));
}

static void tk_exit_in_main_program(void **state)
{
    (void)state;
    assert_int_equal(run_mode("tk-exit", 30, NULL), 3);
    assert_non_null(strstr(out, "child done\n"));
    assert_non_null(strstr(out, "leaving|"));
    assert_null(strstr(out, "main atexit")); /* _exit: other handlers skipped */
}

static void parent_killed_leaves_no_daemonic_orphan(void **state)
{
    (void)state;
    assert_int_equal(run_mode("parent-killed", 60, NULL), 0);
    assert_non_null(strstr(out, "no orphans\n"));
}

static void five_hundred_children_under_1024_fds(void **state)
{
    (void)state;
    const char *ok = heavy_forks() ? "60 ok\n" : "500 ok\n";
    assert_int_equal(run_mode("many-pidfd", 300, NULL), 0);
    assert_non_null(strstr(out, ok));
    assert_int_equal(run_mode("many-pipe", 300, NULL), 0);
    assert_non_null(strstr(out, ok));
}

int main(void)
{
    static const struct tt_mode modes[] = {
        {"non-daemon", mode_non_daemon_joined},
        {"detached", mode_detached_joined},
        {"daemon", mode_daemon_terminated},
        {"stubborn", mode_daemon_blocks_term},
        {"exit-thread", mode_exit_from_thread},
        {"late-start", mode_start_during_shutdown},
        {"doubled", mode_doubled_output},
        {"stdio", mode_stdio_streams},
        {"tk-exit", mode_tk_exit_in_main},
        {"parent-killed", mode_parent_killed},
        {"many-pidfd", mode_many_pidfd},
        {"many-pipe", mode_many_pipe},
    };
    tt_child_main(modes, sizeof modes / sizeof modes[0]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(non_daemon_child_joined_at_exit),
        cmocka_unit_test(detached_child_joined_at_exit),
        cmocka_unit_test(daemon_child_terminated_at_exit),
        cmocka_unit_test(daemon_blocking_sigterm_killed_after_grace),
        cmocka_unit_test(exit_from_other_thread),
        cmocka_unit_test(start_refused_during_shutdown),
        cmocka_unit_test(no_doubled_output),
        cmocka_unit_test(stdio_streams_flushed_once_and_stdin_purged),
        cmocka_unit_test(tk_exit_in_main_program),
        cmocka_unit_test(parent_killed_leaves_no_daemonic_orphan),
        cmocka_unit_test(five_hundred_children_under_1024_fds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
