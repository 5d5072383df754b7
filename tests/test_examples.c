/* test_examples.c - runs every note example (examples/<label>_*.c, built
 * into $TK_EXAMPLES_DIR by `make test`) and checks the lines that make its
 * point: the `== <label> <title> ==` header, the values the note claims, and
 * the order of lines where the API guarantees it.
 *
 * Timing claims are never asserted (the machine is shared and may run the
 * examples under valgrind): only the format of measured lines is checked.
 * An example that is not built yet makes its test skip. */
#include "common/testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define OUT_CAP (64 * 1024)

struct run {
    char path[1024];
    int status;         /* wait status */
    char out[OUT_CAP];  /* stdout */
    char err[OUT_CAP];  /* stderr */
};

static struct run R; /* one example at a time; too big for the stack */

static const char *examples_dir(void)
{
    const char *d = getenv("TK_EXAMPLES_DIR");
    return d && *d ? d : "build/examples";
}

/* The executable in the examples folder whose name is "<label>_...". */
static bool find_example(const char *label, char *path, size_t cap)
{
    DIR *d = opendir(examples_dir());
    if (!d)
        return false;
    size_t n = strlen(label);
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, label, n) != 0 || e->d_name[n] != '_')
            continue;
        snprintf(path, cap, "%s/%s", examples_dir(), e->d_name);
        struct stat st;
        found = stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
    }
    closedir(d);
    return found;
}

static void append(char *buf, size_t *len, const char *src, ssize_t k)
{
    for (ssize_t i = 0; i < k && *len + 1 < OUT_CAP; i++)
        buf[(*len)++] = src[i];
    buf[*len] = '\0';
}

/* Runs R.path with stdout and stderr captured separately, in its own process
 * group so that a hung example and anything it forked can be killed. */
static void run_path(double timeout_s)
{
    int po[2], pe[2];
    assert_int_equal(pipe2(po, O_CLOEXEC), 0);
    assert_int_equal(pipe2(pe, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        dup2(po[1], 1);
        dup2(pe[1], 2);
        execl(R.path, R.path, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    close(po[1]);
    close(pe[1]);
    size_t lo = 0, le = 0;
    R.out[0] = R.err[0] = '\0';
    struct pollfd p[2] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN}};
    double end = tt_now() + timeout_s;
    bool exited = false, timed_out = false;
    while (p[0].fd >= 0 || p[1].fd >= 0) {
        /* Once the example has exited, anything still holding its output
         * is a process it left behind: wait a little, then give up. */
        if (!exited && waitpid(pid, &R.status, WNOHANG) == pid) {
            exited = true;
            if (end > tt_now() + 3.0)
                end = tt_now() + 3.0;
        }
        int ms = (int)((end - tt_now()) * 1000);
        if (ms <= 0) {
            timed_out = true;
            break;
        }
        if (poll(p, 2, ms < 100 ? ms : 100) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (p[i].fd < 0 || p[i].revents == 0)
                continue;
            char tmp[4096];
            ssize_t k = read(p[i].fd, tmp, sizeof tmp);
            if (k > 0) {
                append(i ? R.err : R.out, i ? &le : &lo, tmp, k);
            } else if (k == 0 || errno != EINTR) {
                close(p[i].fd);
                p[i].fd = -1;
            }
        }
    }
    kill(-pid, SIGKILL); /* whatever is left of its process group */
    for (int i = 0; i < 2; i++)
        if (p[i].fd >= 0)
            close(p[i].fd);
    while (!exited && waitpid(pid, &R.status, 0) < 0 && errno == EINTR)
        ;
    if (timed_out && !exited)
        fail_msg("%s timed out after %.0f s; its output:\n%s\nstderr:\n%s", R.path,
                 timeout_s, R.out, R.err);
    if (timed_out)
        fail_msg("%s exited but left a process holding its output; output:\n%s", R.path,
                 R.out);
}

/* Runs the example for `label`, or skips the test if it is not built. It
 * must exit with status 0 and print `== <label> <title> ==` first. */
static void run_example(const char *label, const char *title)
{
    if (!find_example(label, R.path, sizeof R.path)) {
        printf("[ SKIPPED  ] no example %s_*.c built in %s yet\n", label, examples_dir());
        skip();
    }
    run_path(tt_slow_mode() ? 600.0 : 60.0);
    if (!WIFEXITED(R.status) || WEXITSTATUS(R.status) != 0)
        fail_msg("%s: wait status 0x%x; its output:\n%s\nstderr:\n%s", R.path,
                 (unsigned)R.status, R.out, R.err);
    char first[512];
    snprintf(first, sizeof first, "== %s %s ==\n", label, title);
    if (strncmp(R.out, first, strlen(first)) != 0)
        fail_msg("%s: first line should be '%.*s'; output:\n%s", R.path,
                 (int)strlen(first) - 1, first, R.out);
}

/* Offset just past the first match of the extended regex `re` in R.out at
 * or after `from` (^ and $ match at line ends), or -1. Captures go to m. */
static long match_from(long from, const char *re, regmatch_t *m, size_t nm)
{
    regex_t rx;
    if (regcomp(&rx, re, REG_EXTENDED | REG_NEWLINE) != 0)
        fail_msg("bad regex in the test: %s", re);
    regmatch_t local[1];
    if (!m) {
        m = local;
        nm = 1;
    }
    int r = regexec(&rx, R.out + from, nm, m, 0);
    regfree(&rx);
    if (r != 0)
        return -1;
    for (size_t i = 0; i < nm; i++)
        if (m[i].rm_so >= 0) {
            m[i].rm_so += (regoff_t)from;
            m[i].rm_eo += (regoff_t)from;
        }
    return (long)m[0].rm_eo;
}

/* Asserts that a line matching `re` comes at or after `from`; returns where
 * it ends, so successive calls check the order of lines. */
static long expect_from(long from, const char *re, regmatch_t *m, size_t nm)
{
    long at = match_from(from, re, m, nm);
    if (at < 0)
        fail_msg("%s: no line matching /%s/ after offset %ld; output:\n%s\nstderr:\n%s",
                 R.path, re, from, R.out, R.err);
    return at;
}

static long expect(const char *re) { return expect_from(0, re, NULL, 0); }

static void expect_none(const char *re)
{
    if (match_from(0, re, NULL, 0) >= 0)
        fail_msg("%s: unexpected line matching /%s/; output:\n%s", R.path, re, R.out);
}

static int count(const char *re)
{
    int n = 0;
    long at = 0;
    while ((at = match_from(at, re, NULL, 0)) >= 0)
        n++;
    return n;
}

/* The integer in capture i of m. */
static long cap_long(const regmatch_t *m, int i)
{
    return strtol(R.out + m[i].rm_so, NULL, 10);
}

#define NUM "[0-9]+"
#define SECS "[0-9]+\\.[0-9]+ s"

/* ------------------------------------------------------------------ 1 */

#define CONCURRENT "^concurrency \\(2 tasks, 1 CPU\\): +" SECS \
                   " \\([0-9.]+x one task: they took turns\\)$"

static void ex_1_concurrency_parallelism(void **state)
{
    (void)state;
    run_example("1", "Multitasking: concurrency and parallelism");
    expect("^one task alone: +" SECS "$");
    if (match_from(0, "^only 1 CPU", NULL, 0) >= 0) {
        expect(CONCURRENT);
        expect_none("^parallelism");
        return;
    }
    long at = expect(CONCURRENT);
    expect_from(at, "^parallelism \\(2 tasks, 2 CPUs\\): +" SECS
                    " \\([0-9.]+x one task: they ran at the same time\\)$", NULL, 0);
}

/* ---------------------------------------------------------------- 2.x */

static void ex_2_1_main_and_child(void **state)
{
    (void)state;
    run_example("2.1", "What a process is: the main process and its children");
    long at = expect("^main: I am MainProcess \\(pid " NUM "\\), with no parent process$");
    at = expect_from(at, "^child: I am Process-1 \\(pid " NUM "\\), child of MainProcess$",
                     NULL, 0);
    expect_from(at, "^main: Process-1 ended with exitcode 0$", NULL, 0);
}

static void ex_2_2_create_process(void **state)
{
    (void)state;
    run_example("2.2", "Creating a process: target, name, start");
    long at = expect("^main: created 'coder': pid 0, alive no$");
    for (int i = 1; i <= 3; i++) {
        char re[64];
        snprintf(re, sizeof re, "^coder: coding %d/3$", i);
        at = expect_from(at, re, NULL, 0);
    }
    expect_from(at, "^main: joined 'coder': exitcode 0, alive no$", NULL, 0);
}

static void ex_2_3_args_kwargs(void **state)
{
    (void)state;
    run_example("2.3", "Passing arguments to a process: args tuple and kwargs dict");
    long at = expect("^args=\\(3,\\) +-> coding\\(num=3, name=None\\)$");
    at = expect_from(at, "^kwargs=\\{\"num\": 3\\} +-> coding\\(num=3, name=None\\)$", NULL, 0);
    at = expect_from(at, "^args=\\(3,\\), kwargs=\\{\"name\": \"xiaoming\"\\} +"
                         "-> coding\\(num=3, name='xiaoming'\\)$", NULL, 0);
    assert_int_equal(count("^coding: line [1-3] of 3$"), 9);
}

static void ex_2_4_pids(void **state)
{
    (void)state;
    run_example("2.4", "Process ids: getpid() and getppid()");
    regmatch_t m[3];
    long at = expect_from(0, "^MainProcess: pid=(" NUM ") ppid=(" NUM ")$", m, 3);
    long main_pid = cap_long(m, 1);
    long kids[2];
    for (int i = 0; i < 2; i++) {
        char re[128];
        snprintf(re, sizeof re, "^Process-%d: pid=(" NUM ") ppid=(" NUM ")$", i + 1);
        at = expect_from(at, re, m, 3);
        kids[i] = cap_long(m, 1);
        assert_int_equal(cap_long(m, 2), main_pid); /* getppid() is main */
        assert_int_not_equal(kids[i], main_pid);
    }
    assert_int_not_equal(kids[0], kids[1]);
    at = expect_from(at, "^main: tk_process_pid\\(\\) gives (" NUM ") and (" NUM ")$", m, 3);
    assert_int_equal(cap_long(m, 1), kids[0]);
    assert_int_equal(cap_long(m, 2), kids[1]);
}

static void ex_2_5_globals(void **state)
{
    (void)state;
    run_example("2.5", "Processes do not share global variables");
    long at = expect("^add_data: g_list = \\[0, 1, 2, 3, 4\\]$");
    at = expect_from(at, "^read_data: g_list = \\[\\]$", NULL, 0);
    at = expect_from(at, "^main: g_list = \\[\\]$", NULL, 0);
    at = expect_from(at, "^add_data: shared = \\[0, 1, 2, 3, 4\\]$", NULL, 0);
    at = expect_from(at, "^read_data: shared = \\[0, 1, 2, 3, 4\\]$", NULL, 0);
    expect_from(at, "^main: shared = \\[0, 1, 2, 3, 4\\]$", NULL, 0);
}

static void ex_2_6_who_ends_first(void **state)
{
    (void)state;
    run_example("2.6", "Which ends first: the main process or a child");
    long at = expect("^main: my work is done$");
    at = expect_from(at, "^worker: finished$", NULL, 0);
    at = expect_from(at, "^main: exit waited for the worker: exitcode 0$", NULL, 0);
    at = expect_from(at, "^main: at exit the daemon was terminated: exitcode -15$", NULL, 0);
    at = expect_from(at, "^main: the daemon ran no further after exit: yes$", NULL, 0);
    expect_from(at, "^main: terminate\\(\\) before exit: exitcode -15$", NULL, 0);
}

/* ---------------------------------------------------------------- 3.x */

static void ex_3_1_threads_share_process(void **state)
{
    (void)state;
    run_example("3.1", "What a thread is: threads share their process");
    regmatch_t m[3];
    long at = expect_from(0, "^MainThread: pid (" NUM "), native id (" NUM ")$", m, 3);
    long pid = cap_long(m, 1), ids[3] = {cap_long(m, 2), 0, 0};
    for (int i = 1; i <= 2; i++) {
        char re[128];
        snprintf(re, sizeof re,
                 "^Thread-%d: pid (" NUM "), native id (" NUM "), sees shared = 42$", i);
        at = expect_from(at, re, m, 3);
        assert_int_equal(cap_long(m, 1), pid);
        ids[i] = cap_long(m, 2);
    }
    assert_int_not_equal(ids[0], ids[1]);
    assert_int_not_equal(ids[0], ids[2]);
    assert_int_not_equal(ids[1], ids[2]);
    expect_from(at, "^main: shared = 44 \\(each thread added 1\\)$", NULL, 0);
}

static void ex_3_2_create_threads(void **state)
{
    (void)state;
    run_example("3.2", "Multitasking with threads: create and start");
    assert_int_equal(count("^sing [1-3]/3$"), 3);
    assert_int_equal(count("^dance [1-3]/3$"), 3);
    long at = match_from(0, "^sing 3/3$", NULL, 0);
    long at2 = match_from(0, "^dance 3/3$", NULL, 0);
    expect_from(at > at2 ? at : at2, "^main: both threads finished$", NULL, 0);
}

static void ex_3_2b_thread_args(void **state)
{
    (void)state;
    run_example("3.2b", "Passing arguments to a thread: order and names must match");
    long at = expect("^args=\\(3, \"xiaoming\"\\) +-> sing\\(num=3, name='xiaoming'\\)$");
    at = expect_from(at, "^kwargs=\\{\"name\": \"xiaoming\", \"num\": 3\\} +"
                         "-> sing\\(num=3, name='xiaoming'\\)$", NULL, 0);
    at = expect_from(at, "^args=\\(\"xiaoming\", 3\\) +-> TK_ETYPE: "
                         "sing\\(\\) argument 'num' must be int, not str$", NULL, 0);
    expect_from(at, "^kwargs=\\{\"nmu\": 3\\} +-> TK_EARGS: "
                    "sing\\(\\) got an unexpected keyword argument 'nmu'$", NULL, 0);
}

static void ex_3_3_who_ends_first(void **state)
{
    (void)state;
    run_example("3.3", "Which ends first: the main thread or a child thread");
    long at = expect("^worker: stop requested, cleaning up$");
    at = expect_from(at, "^main: stopped worker: result 0, alive no$", NULL, 0);
    at = expect_from(at, "^sleeper: tk_sleep\\(10\\) returned TK_ECANCELED after " SECS "$",
                     NULL, 0);
    at = expect_from(at, "^main: returning from main\\(\\)$", NULL, 0);
    expect_from(at, "^Thread-[0-9]+ \\(non-daemon\\): finished after main\\(\\) returned$",
                NULL, 0);
}

static void ex_3_4_run_order(void **state)
{
    (void)state;
    run_example("3.4", "Threads run in no fixed order");
    expect("^created in the order: worker-1 worker-2 worker-3 worker-4 worker-5$");
    regmatch_t m[2];
    long at = 0;
    for (int run = 1; run <= 5; run++) {
        char re[128];
        snprintf(re, sizeof re, "^run %d: ((worker-[1-5] ){4}worker-[1-5])$", run);
        at = expect_from(at, re, m, 2);
        for (int w = 1; w <= 5; w++) { /* each worker exactly once */
            char name[32];
            snprintf(name, sizeof name, "worker-%d", w);
            const char *s = strstr(R.out + m[1].rm_so, name);
            assert_non_null(s);
            assert_true(s < R.out + m[1].rm_eo);
        }
    }
    expect("^different orders seen in 5 runs: [1-5]");
}

static void ex_3_5_lost_updates(void **state)
{
    (void)state;
    run_example("3.5", "Threads share global variables: lost updates and the lock");
    /* Either form is honest: updates were lost, or none were this time. */
    if (match_from(0, "^no lock: no update was lost", NULL, 0) < 0)
        expect("^no lock: 2 threads x " NUM " increments -> counter = " NUM
               " \\(" NUM " updates lost\\)$");
    expect("^tk_lock: 2 threads x 1000000 increments -> counter = 2000000$");
    expect("^atomic: 2 threads x 1000000 increments -> counter = 2000000$");
}

/* ------------------------------------------------------------------ 4 */

static void ex_4_summary(void **state)
{
    (void)state;
    run_example("4", "Summary: processes versus threads, measured");
    expect("^creation cost \\(create, start, join\\): process +[0-9.]+ µs, thread +[0-9.]+ µs$");
    expect("^globals: a child process's change is seen by the parent: no$");
    expect("^globals: a thread's change is seen by the main thread: yes$");
    if (match_from(0, "^CPU-bound work: only 1 CPU", NULL, 0) < 0)
        expect("^CPU-bound work: 1 thread " SECS ", 2 threads " SECS
               " -> speed-up [0-9.]+x$");
}

/* ----------------------------------------------------- out of the tree */

/* Every example compiles against the *installed* library with only
 * pkg-config's flags and -Wall -Wextra -Werror, and runs. Installs into a
 * temporary prefix with the Makefile (run from the top of the tree, as
 * `make test` does). Skipped under valgrind and sanitizers (their builds
 * live elsewhere) and where the tools are missing. */
static void examples_build_out_of_tree(void **state)
{
    (void)state;
    if (tt_slow_mode() || access("Makefile", R_OK) != 0 ||
        system("command -v pkg-config >/dev/null && command -v make >/dev/null") != 0) {
        printf("[ SKIPPED  ] needs make and pkg-config, and a normal build\n");
        skip();
    }
    char dir[] = "/tmp/tk-examples-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "set -e; d=%s; make -s install PREFIX=$d/usr >$d/log 2>&1;"
             " export PKG_CONFIG_PATH=$d/usr/lib/pkgconfig;"
             " for f in examples/*.c; do"
             "   cc -Wall -Wextra -Werror -o $d/ex \"$f\" $(pkg-config --cflags --libs taskkit)"
             "     >>$d/log 2>&1 || { echo \"does not compile: $f\"; cat $d/log; exit 1; };"
             "   LD_LIBRARY_PATH=$d/usr/lib $d/ex >/dev/null 2>&1 ||"
             "     { echo \"fails when run: $f\"; exit 1; };"
             " done",
             dir);
    int rc = system(cmd);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(rc, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ex_1_concurrency_parallelism),
        cmocka_unit_test(ex_2_1_main_and_child),
        cmocka_unit_test(ex_2_2_create_process),
        cmocka_unit_test(ex_2_3_args_kwargs),
        cmocka_unit_test(ex_2_4_pids),
        cmocka_unit_test(ex_2_5_globals),
        cmocka_unit_test(ex_2_6_who_ends_first),
        cmocka_unit_test(ex_3_1_threads_share_process),
        cmocka_unit_test(ex_3_2_create_threads),
        cmocka_unit_test(ex_3_2b_thread_args),
        cmocka_unit_test(ex_3_3_who_ends_first),
        cmocka_unit_test(ex_3_4_run_order),
        cmocka_unit_test(ex_3_5_lost_updates),
        cmocka_unit_test(ex_4_summary),
        cmocka_unit_test(examples_build_out_of_tree),
    };
    return cmocka_run_group_tests_name("examples", tests, NULL, NULL);
}
