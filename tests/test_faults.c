/*
 * test_faults.c - fault injection: every public function that allocates is
 * run once per allocation point with that allocation failing, and every
 * system resource the library needs is taken away once.
 *
 * Allocation sweeps (tt_fault_sweep, tests/faults/sweep.h): a scenario sets its object up, arms the
 * hook (tk__fault_set: the n-th allocation from now fails), makes the call,
 * disarms, checks the outcome and frees everything. The sweep runs it for
 * n = 1, 2, ... until the call no longer reaches an n-th allocation, and
 * checks each time that
 *   - the call failed with TK_ENOMEM and said so in tk_last_error(),
 *   - no heap block leaked: the program is linked with the allocator
 *     wrapped (mk/reliability.mk: -Wl,--wrap=malloc ...), so the test counts
 *     the library's live blocks before and after, in every build, not only
 *     under ASan and valgrind,
 *   - the object the call worked on is unchanged and still usable (each
 *     scenario checks that itself),
 * and that the final, fault-free run succeeds.
 *
 * System faults run in a forked child (so limits and uid changes do not
 * leak into the other tests) and check the error code, the message and
 * that no descriptor, zombie or thread is left behind.
 */
#include "common/testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "faults/alloccount.h"
#include "faults/sweep.h"
#include "internal.h"
#include "taskkit.h"


/* ------------------------------------------------------------------ args */

static const char *long_str =
    "a string long enough to leave the bag's inline arena and go to the heap";

/* An args bag with every type, some values on the heap. */
static tk_args *full_args(void)
{
    tk_args *a = tk_args_of("i l d ? s z y n", 1, (int64_t)2, 3.0, 1, long_str,
                            (const char *)NULL, "bytes", (size_t)5);
    assert_non_null(a);
    for (int i = 0; i < 6; i++) /* grow past the inline slots */
        assert_int_equal(tk_args_add_str(a, long_str), 0);
    return a;
}

static tk_kwargs *full_kwargs(void)
{
    tk_kwargs *k = tk_kwargs_of("num:i, name:s, verbose:?, data:y, ratio:d, none:n", 3,
                                long_str, 1, "xyz", (size_t)3, 0.5);
    assert_non_null(k);
    char key[80];
    for (int i = 0; i < 6; i++) {
        snprintf(key, sizeof key, "a_rather_long_keyword_name_that_needs_the_heap_%d", i);
        assert_int_equal(tk_kwargs_set_str(k, key, long_str), 0);
    }
    return k;
}

static int sc_args_new(void)
{
    tt_arm();
    tk_args *a = tk_args_new();
    tt_disarm();
    int rc = tt_ctor_rc(a);
    tk_args_free(a);
    return rc;
}

static int sc_args_of(void)
{
    tt_arm();
    tk_args *a = tk_args_of("i s s y d n", 1, long_str, long_str, long_str, (size_t)40, 2.0);
    tt_disarm();
    int rc = tt_ctor_rc(a);
    if (a)
        assert_int_equal(tk_args_len(a), 6);
    tk_args_free(a);
    return rc;
}

static int sc_args_copy(void)
{
    tk_args *src = full_args();
    tt_arm();
    tk_args *c = tk_args_copy(src);
    tt_disarm();
    int rc = tt_ctor_rc(c);
    if (c) {
        assert_int_equal(tk_args_len(c), tk_args_len(src));
        const char *s = NULL;
        assert_int_equal(tk_args_get_str(c, 4, &s), 0);
        assert_string_equal(s, long_str);
    }
    tk_args_free(c);
    tk_args_free(src);
    return rc;
}

/* Adds to a bag whose slots and arena are full, so the add must allocate;
 * on failure the bag keeps its values and takes the next add. */
static int sc_args_add(int kind)
{
    tk_args *a = tk_args_of("iiii", 1, 2, 3, 4);
    assert_non_null(a);
    tt_arm();
    int rc;
    switch (kind) {
    case 0: rc = tk_args_add_str(a, long_str); break;
    case 1: rc = tk_args_add_bytes(a, long_str, strlen(long_str)); break;
    case 2: rc = tk_args_add_int(a, 5); break;
    case 3: rc = tk_args_add_float(a, 5.0); break;
    case 4: rc = tk_args_add_bool(a, true); break;
    case 5: rc = tk_args_add_none(a); break;
    default: rc = tk_args_add_ptr(a, a); break;
    }
    tt_disarm();
    assert_int_equal(tk_args_len(a), rc == 0 ? 5 : 4);
    int64_t v = 0;
    assert_int_equal(tk_args_get_int(a, 3, &v), 0);
    assert_int_equal(v, 4);
    assert_int_equal(tk_args_add_str(a, long_str), 0); /* still usable */
    tk_args_free(a);
    return rc;
}

static int sc_args_add_str(void) { return sc_args_add(0); }
static int sc_args_add_bytes(void) { return sc_args_add(1); }
static int sc_args_add_int(void) { return sc_args_add(2); }
static int sc_args_add_float(void) { return sc_args_add(3); }
static int sc_args_add_bool(void) { return sc_args_add(4); }
static int sc_args_add_none(void) { return sc_args_add(5); }
static int sc_args_add_ptr(void) { return sc_args_add(6); }

static int sc_args_from(void)
{
    tk_value vals[6] = {
        {.type = TK_TYPE_INT, .v.i = 1},
        {.type = TK_TYPE_STR, .v.s = long_str},
        {.type = TK_TYPE_BYTES, .n = 30, .v.y = long_str},
        {.type = TK_TYPE_FLOAT, .v.f = 1.5},
        {.type = TK_TYPE_STR, .v.s = long_str},
        {.type = TK_TYPE_NONE},
    };
    tt_arm();
    tk_args *a = tk_args_from(vals, 6);
    tt_disarm();
    int rc = tt_ctor_rc(a);
    tk_args_free(a);
    return rc;
}

static int sc_kwargs_new(void)
{
    tt_arm();
    tk_kwargs *k = tk_kwargs_new();
    tt_disarm();
    int rc = tt_ctor_rc(k);
    tk_kwargs_free(k);
    return rc;
}

static int sc_kwargs_of(void)
{
    tt_arm();
    tk_kwargs *k = tk_kwargs_of(
        "num:i, name:s, a_rather_long_keyword_name_that_needs_the_heap_to_be_stored:s, "
        "blob:y, x:d",
        3, long_str, long_str, long_str, (size_t)50, 1.0);
    tt_disarm();
    int rc = tt_ctor_rc(k);
    if (k)
        assert_int_equal(tk_kwargs_len(k), 5);
    tk_kwargs_free(k);
    return rc;
}

static int sc_kwargs_copy(void)
{
    tk_kwargs *src = full_kwargs();
    tt_arm();
    tk_kwargs *c = tk_kwargs_copy(src);
    tt_disarm();
    int rc = tt_ctor_rc(c);
    if (c)
        assert_int_equal(tk_kwargs_len(c), tk_kwargs_len(src));
    tk_kwargs_free(c);
    tk_kwargs_free(src);
    return rc;
}

/* Sets into a full bag: new long key (insert) or existing key (replace). */
static int sc_kwargs_set(int kind)
{
    tk_kwargs *k = tk_kwargs_of("a:i, b:i, c:i, d:i", 1, 2, 3, 4);
    assert_non_null(k);
    const char *newkey = "a_rather_long_keyword_name_that_needs_the_heap_to_be_stored";
    tt_arm();
    int rc;
    switch (kind) {
    case 0: rc = tk_kwargs_set_str(k, newkey, long_str); break;
    case 1: rc = tk_kwargs_set_bytes(k, newkey, long_str, 20); break;
    case 2: rc = tk_kwargs_set_int(k, newkey, 5); break;
    case 3: rc = tk_kwargs_set_float(k, newkey, 5.0); break;
    case 4: rc = tk_kwargs_set_bool(k, newkey, false); break;
    case 5: rc = tk_kwargs_set_none(k, newkey); break;
    case 6: rc = tk_kwargs_set_ptr(k, newkey, k); break;
    default: rc = tk_kwargs_set_str(k, "b", long_str); break; /* replace in place */
    }
    tt_disarm();
    if (kind == 7) {
        assert_int_equal(tk_kwargs_len(k), 4);
        assert_int_equal(tk_kwargs_type(k, "b"), rc == 0 ? TK_TYPE_STR : TK_TYPE_INT);
    } else {
        assert_int_equal(tk_kwargs_len(k), rc == 0 ? 5 : 4);
        assert_int_equal(tk_kwargs_has(k, newkey), rc == 0);
    }
    assert_string_equal(tk_kwargs_key(k, 1), "b"); /* order kept */
    assert_int_equal(tk_kwargs_set_str(k, "again", long_str), 0);
    tk_kwargs_free(k);
    return rc;
}

static int sc_kwargs_set_str(void) { return sc_kwargs_set(0); }
static int sc_kwargs_set_bytes(void) { return sc_kwargs_set(1); }
static int sc_kwargs_set_int(void) { return sc_kwargs_set(2); }
static int sc_kwargs_set_float(void) { return sc_kwargs_set(3); }
static int sc_kwargs_set_bool(void) { return sc_kwargs_set(4); }
static int sc_kwargs_set_none(void) { return sc_kwargs_set(5); }
static int sc_kwargs_set_ptr(void) { return sc_kwargs_set(6); }
static int sc_kwargs_replace(void) { return sc_kwargs_set(7); }

static int sc_kwargs_del(void)
{
    tk_kwargs *k = full_kwargs();
    size_t n = tk_kwargs_len(k);
    tt_arm();
    int rc = tk_kwargs_del(k, "name");
    tt_disarm();
    assert_int_equal(tk_kwargs_len(k), rc == 0 ? n - 1 : n);
    tk_kwargs_free(k);
    return rc;
}

static int sc_encode(void)
{
    tk_args *a = full_args();
    tk_kwargs *k = full_kwargs();
    void *buf = (void *)1;
    size_t len = 7;
    tt_arm();
    int rc = tk_args_encode(a, k, &buf, &len);
    tt_disarm();
    if (rc == 0)
        free(buf);
    tk_args_free(a);
    tk_kwargs_free(k);
    return rc;
}

static int sc_decode(void)
{
    tk_args *a = full_args();
    tk_kwargs *k = full_kwargs();
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(tk_args_encode(a, k, &buf, &len), 0);
    tk_args *da = (tk_args *)1;
    tk_kwargs *dk = (tk_kwargs *)1;
    tt_arm();
    int rc = tk_args_decode(buf, len, &da, &dk);
    tt_disarm();
    if (rc == 0) {
        assert_int_equal(tk_args_len(da), tk_args_len(a));
        assert_int_equal(tk_kwargs_len(dk), tk_kwargs_len(k));
    } else {
        assert_null(da); /* out bags are NULL on failure (API.md §0) */
        assert_null(dk);
    }
    tk_args_free(da);
    tk_kwargs_free(dk);
    free(buf);
    tk_args_free(a);
    tk_kwargs_free(k);
    return rc;
}

static int sc_bind(void)
{
    tk_args *a = tk_args_of("is", 3, long_str);
    tk_kwargs *k = tk_kwargs_of("verbose:?", 1);
    int num = 0;
    const char *name = NULL;
    bool verbose = false;
    tt_arm();
    int rc = tk_bind(a, k, "coding(num:i, name:s=, *, verbose:?=)", &num, &name, &verbose);
    tt_disarm();
    assert_int_equal(rc, 0);
    assert_int_equal(num, 3);
    tk_args_free(a);
    tk_kwargs_free(k);
    return rc;
}

static void args_allocation_points(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        tt_scenario run;
    } cases[] = {
        {"tk_args_new", sc_args_new},
        {"tk_args_of", sc_args_of},
        {"tk_args_copy", sc_args_copy},
        {"tk_args_from", sc_args_from},
        {"tk_args_add_str", sc_args_add_str},
        {"tk_args_add_bytes", sc_args_add_bytes},
        {"tk_args_add_int", sc_args_add_int},
        {"tk_args_add_float", sc_args_add_float},
        {"tk_args_add_bool", sc_args_add_bool},
        {"tk_args_add_none", sc_args_add_none},
        {"tk_args_add_ptr", sc_args_add_ptr},
        {"tk_kwargs_new", sc_kwargs_new},
        {"tk_kwargs_of", sc_kwargs_of},
        {"tk_kwargs_copy", sc_kwargs_copy},
        {"tk_kwargs_set_str", sc_kwargs_set_str},
        {"tk_kwargs_set_bytes", sc_kwargs_set_bytes},
        {"tk_kwargs_set_int", sc_kwargs_set_int},
        {"tk_kwargs_set_float", sc_kwargs_set_float},
        {"tk_kwargs_set_bool", sc_kwargs_set_bool},
        {"tk_kwargs_set_none", sc_kwargs_set_none},
        {"tk_kwargs_set_ptr", sc_kwargs_set_ptr},
        {"tk_kwargs_set_* (replace)", sc_kwargs_replace},
        {"tk_kwargs_del", sc_kwargs_del},
        {"tk_args_encode", sc_encode},
        {"tk_args_decode", sc_decode},
        {"tk_bind", sc_bind},
    };
    long points = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        points += tt_fault_sweep(cases[i].name, cases[i].run);
    /* Constructors allocate at least once each: the sweep really ran. */
    assert_true(points >= 20);
    assert_int_equal(tt_fault_sweep("tk_bind allocates nothing", sc_bind), 0);
}

/* A builder that fails takes nothing and leaks nothing either when the
 * failure is the caller's (bad format) rather than memory's. */
static void failed_builders_leak_nothing(void **state)
{
    (void)state;
    long before = tt_live_blocks();
    assert_null(tk_args_of("is q", 1, long_str));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    assert_null(tk_kwargs_of("a:s, b", long_str));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    tk_args *da = NULL;
    tk_kwargs *dk = NULL;
    assert_int_equal(tk_args_decode("TKAB", 4, &da, &dk), TK_EDECODE);
    assert_int_equal(tt_live_blocks(), before);
}


/* --------------------------------------------------------------- threads */

static int target_ok(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    return 7;
}

static int sc_thread_new(void)
{
    /* The bags are handed over: the constructor owns them also when it
     * fails (API.md §0), so they are made before arming and never freed
     * here. */
    tk_args *a = tk_args_of("s", long_str);
    tk_kwargs *k = tk_kwargs_of("name:s", long_str);
    tt_arm();
    tk_thread *t = tk_thread_new(target_ok, a, k);
    tt_disarm();
    int rc = tt_ctor_rc(t);
    tk_thread_free(t);
    return rc;
}

static int sc_thread_start(void)
{
    tk_thread *t = tk_thread_new(target_ok, tk_args_of("s", long_str), NULL);
    assert_non_null(t);
    tt_arm();
    int rc = tk_thread_start(t);
    tt_disarm();
    if (rc == 0) {
        assert_int_equal(tk_thread_join(t, TK_FOREVER), 0);
        assert_int_equal(tk_thread_result(t), 7);
    } else {
        assert_false(tk_thread_is_alive(t));
    }
    tk_thread_free(t);
    return rc;
}

static int sc_thread_set_name(void)
{
    tk_thread *t = tk_thread_new(target_ok, NULL, NULL);
    assert_non_null(t);
    char before[64];
    snprintf(before, sizeof before, "%s", tk_thread_name(t));
    tt_arm();
    int rc = tk_thread_set_name(t, long_str);
    tt_disarm();
    assert_string_equal(tk_thread_name(t), rc == 0 ? long_str : before);
    tk_thread_free(t);
    return rc;
}

static int sc_timer_new(void)
{
    tk_args *a = tk_args_of("s", long_str);
    tt_arm();
    tk_thread *t = tk_timer_new(0.0, target_ok, a, NULL);
    tt_disarm();
    int rc = tt_ctor_rc(t);
    tk_thread_free(t);
    return rc;
}

static int sc_thread_enumerate(void)
{
    tk_thread *out[8];
    tt_arm();
    size_t n = tk_thread_enumerate(out, 8);
    tt_disarm();
    for (size_t i = 0; i < n && i < 8; i++)
        tk_thread_free(out[i]);
    return n >= 1 ? 0 : tk_last_error_code();
}

static void thread_allocation_points(void **state)
{
    (void)state;
    tt_fault_sweep("tk_thread_new", sc_thread_new);
    tt_fault_sweep("tk_thread_start", sc_thread_start);
    tt_fault_sweep("tk_thread_set_name", sc_thread_set_name);
    tt_fault_sweep("tk_timer_new", sc_timer_new);
    tt_fault_sweep("tk_thread_enumerate", sc_thread_enumerate);
}

/* ------------------------------------------------------------------ sync */

static unsigned sync_flags;

static int sc_lock_new(void)
{
    tt_arm();
    tk_lock *l = tk_lock_new(sync_flags);
    tt_disarm();
    int rc = tt_ctor_rc(l);
    if (l) {
        assert_int_equal(tk_lock_acquire(l, 0), 0);
        assert_int_equal(tk_lock_release(l), 0);
    }
    tk_lock_free(l);
    return rc;
}

static int sc_rlock_new(void)
{
    tt_arm();
    tk_rlock *l = tk_rlock_new(sync_flags);
    tt_disarm();
    int rc = tt_ctor_rc(l);
    tk_rlock_free(l);
    return rc;
}

static int sc_cond_new(void)
{
    tt_arm();
    tk_cond *c = tk_cond_new(sync_flags);
    tt_disarm();
    int rc = tt_ctor_rc(c);
    if (c) {
        assert_int_equal(tk_cond_acquire(c, 0), 0);
        assert_int_equal(tk_cond_wait(c, 0), TK_ETIMEDOUT);
        assert_int_equal(tk_cond_release(c), 0);
    }
    tk_cond_free(c);
    return rc;
}

static int sc_cond_new_with_lock(void)
{
    tk_lock *l = tk_lock_new(sync_flags);
    assert_non_null(l);
    tt_arm();
    tk_cond *c = tk_cond_new_with_lock(l);
    tt_disarm();
    int rc = tt_ctor_rc(c);
    tk_cond_free(c);
    /* The lock is the caller's and stays usable whatever happened. */
    assert_int_equal(tk_lock_acquire(l, 0), 0);
    assert_int_equal(tk_lock_release(l), 0);
    tk_lock_free(l);
    return rc;
}

static int sc_sem_new(void)
{
    tt_arm();
    tk_sem *x = tk_sem_new(1, sync_flags | TK_BOUNDED);
    tt_disarm();
    int rc = tt_ctor_rc(x);
    tk_sem_free(x);
    return rc;
}

static int sc_event_new(void)
{
    tt_arm();
    tk_event *e = tk_event_new(sync_flags);
    tt_disarm();
    int rc = tt_ctor_rc(e);
    tk_event_free(e);
    return rc;
}

static int sc_barrier_new(void)
{
    tt_arm();
    tk_barrier *b = tk_barrier_new(3, sync_flags);
    tt_disarm();
    int rc = tt_ctor_rc(b);
    tk_barrier_free(b);
    return rc;
}

static void sync_allocation_points(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        tt_scenario run;
    } cases[] = {
        {"tk_lock_new", sc_lock_new},
        {"tk_rlock_new", sc_rlock_new},
        {"tk_cond_new", sc_cond_new},
        {"tk_cond_new_with_lock", sc_cond_new_with_lock},
        {"tk_sem_new", sc_sem_new},
        {"tk_event_new", sc_event_new},
        {"tk_barrier_new", sc_barrier_new},
    };
    for (unsigned f = 0; f <= TK_SHARED; f += TK_SHARED) {
        sync_flags = f;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char name[64];
            snprintf(name, sizeof name, "%s(%s)", cases[i].name, f ? "TK_SHARED" : "0");
            tt_fault_sweep(name, cases[i].run);
        }
    }
}

/* ------------------------------------------------------- system faults */

/* Runs fn in a forked child and returns its exit status (0 = passed). The
 * child reports failures on stderr; cmocka is not used there. */
static int in_child(int (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fn());
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

#define CHILD_CHECK(cond)                                                      \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: child check failed: %s (last error: %s)\n", \
                    __FILE__, __LINE__, #cond, tk_last_error());               \
            return 1;                                                          \
        }                                                                      \
    } while (0)

/* Open descriptors, counted without opening one (tt_count_fds reads a
 * directory, which needs a free descriptor). */
static int count_fds_raw(void)
{
    int n = 0;
    for (int fd = 0; fd < 4096; fd++)
        n += fcntl(fd, F_GETFD) >= 0;
    return n;
}

/* Lowers the soft descriptor limit to what is open now, so the next
 * descriptor the library asks for is refused with EMFILE. */
static int exhaust_fds(struct rlimit *saved)
{
    if (getrlimit(RLIMIT_NOFILE, saved) != 0)
        return -1;
    struct rlimit r = *saved;
    /* New descriptors take the lowest free number, so the limit must sit
     * just above the highest one in use. */
    int highest = 0;
    for (int fd = 0; fd < 4096; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            highest = fd;
    for (int fd = 0; fd < highest; fd++) /* fill the holes below it */
        if (fcntl(fd, F_GETFD) < 0 && dup(0) < 0)
            return -1;
    r.rlim_cur = (rlim_t)highest + 1;
    return setrlimit(RLIMIT_NOFILE, &r);
}

/* A cancellable fd wait needs the thread's wake-up descriptor: with no
 * descriptor left it fails cleanly (EMFILE), and works once one is free. */
static int child_wait_fds_without_fds(void)
{
    struct tk__stop stop;
    tk__stop_init(&stop);
    tk__tls()->stop = &stop;
    int p[2];
    CHILD_CHECK(pipe(p) == 0);
    struct rlimit saved;
    CHILD_CHECK(exhaust_fds(&saved) == 0);
    int fds_before = tt_count_fds();
    struct pollfd pf[2] = {{.fd = p[0], .events = POLLIN}};
    tk__deadline d;
    tk__deadline_init(&d, 0.01, "test");
    int rc = tk__wait_fds(pf, 1, TK__WAIT_CANCEL, &d);
    CHILD_CHECK(rc == TK_EMFILE || rc == -EMFILE);
    CHILD_CHECK(strstr(tk_last_error(), "stop wake-up descriptor") != NULL);
    CHILD_CHECK(tt_count_fds() == fds_before);
    CHILD_CHECK(setrlimit(RLIMIT_NOFILE, &saved) == 0);
    tk__deadline_init(&d, 0.01, "test");
    CHILD_CHECK(tk__wait_fds(pf, 1, TK__WAIT_CANCEL, &d) == TK_ETIMEDOUT);
    tk__tls()->stop = NULL;
    tk__stop_destroy(&stop);
    return 0;
}

static void runtime_fd_exhaustion(void **state)
{
    (void)state;
    assert_int_equal(in_child(child_wait_fds_without_fds), 0);
}

/* Number of threads in this process (from /proc/self/task). */
static int count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* RLIMIT_NPROC counts threads too, but root is exempt from it: a root
 * child first becomes an unprivileged user (nobody), keeping /proc/self
 * readable (PR_SET_DUMPABLE). Returns 0 once new threads and processes
 * are refused. The soft limit can be raised back afterwards. */
static int refuse_new_tasks(struct rlimit *saved)
{
    if (geteuid() == 0 && (setgroups(0, NULL) != 0 || setresgid(65534, 65534, 65534) != 0 ||
                           setresuid(65534, 65534, 65534) != 0))
        return -1;
    prctl(PR_SET_DUMPABLE, 1);
    if (getrlimit(RLIMIT_NPROC, saved) != 0)
        return -1;
    struct rlimit r = *saved;
    r.rlim_cur = 0;
    return setrlimit(RLIMIT_NPROC, &r);
}

/* tk_thread_start with thread creation refused: CPython's "can't start new
 * thread", TK_EAGAIN, nothing left behind, and the handle is still a clean
 * unstarted thread that can be freed. */
static int child_thread_refused(void)
{
    tk_thread *t = tk_thread_new(target_ok, tk_args_of("s", long_str), NULL);
    CHILD_CHECK(t != NULL);
    struct rlimit saved;
    CHILD_CHECK(refuse_new_tasks(&saved) == 0);
    int threads = count_threads(), fds = tt_count_fds();
    long blocks = tt_live_blocks();
    int rc = tk_thread_start(t);
    CHILD_CHECK(rc == TK_EAGAIN);
    CHILD_CHECK(strstr(tk_last_error(), "can't start new thread") != NULL);
    CHILD_CHECK(!tk_thread_is_alive(t));
    CHILD_CHECK(count_threads() == threads);
    CHILD_CHECK(tt_count_fds() == fds);
    CHILD_CHECK(tt_live_blocks() <= blocks);
    CHILD_CHECK(setrlimit(RLIMIT_NPROC, &saved) == 0);
    /* With the limit lifted a new thread starts fine. */
    tk_thread *u = tk_thread_new(target_ok, NULL, NULL);
    CHILD_CHECK(u && tk_thread_start(u) == 0 && tk_thread_join(u, TK_FOREVER) == 0);
    tk_thread_free(u);
    tk_thread_free(t);
    return 0;
}

static void thread_creation_refused(void **state)
{
    (void)state;
    assert_int_equal(in_child(child_thread_refused), 0);
}

/* ------------------------------------------------------------ processes */

static int child_exit5(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    return 5;
}

static int sc_process_new(void)
{
    tk_args *a = tk_args_of("s", long_str); /* handed over, also on failure */
    tt_arm();
    tk_process *p = tk_process_new(child_exit5, a, NULL);
    tt_disarm();
    int rc = tt_ctor_rc(p);
    tk_process_free(p);
    return rc;
}

static int sc_process_start(void)
{
    tk_process *p = tk_process_new(child_exit5, NULL, NULL);
    assert_non_null(p);
    int zombies = tt_count_zombies();
    tt_arm();
    int rc = tk_process_start(p);
    tt_disarm();
    if (rc == 0) {
        assert_int_equal(tk_process_join(p, TK_FOREVER), 0);
        assert_int_equal(tk_process_exitcode(p), 5);
    } else {
        assert_int_equal(tk_process_pid(p), 0);
    }
    tk_process_free(p);
    assert_int_equal(tt_count_zombies(), zombies);
    return rc;
}

static void process_allocation_points(void **state)
{
    (void)state;
    tt_fault_sweep("tk_process_new", sc_process_new);
    tt_fault_sweep("tk_process_start", sc_process_start);
}

/* fork refused: a clean TK_EAGAIN, no child, no zombie, no descriptor, and
 * the unstarted handle frees cleanly. */
static int child_fork_refused(void)
{
    tk_process *p = tk_process_new(child_exit5, tk_args_of("s", long_str), NULL);
    CHILD_CHECK(p != NULL);
    struct rlimit saved;
    CHILD_CHECK(refuse_new_tasks(&saved) == 0);
    int fds = tt_count_fds(), threads = count_threads();
    int rc = tk_process_start(p);
    CHILD_CHECK(rc == TK_EAGAIN);
    CHILD_CHECK(tk_last_error()[0] != '\0');
    CHILD_CHECK(tk_process_pid(p) == 0 && !tk_process_is_alive(p));
    CHILD_CHECK(tt_count_fds() == fds && count_threads() == threads);
    CHILD_CHECK(tt_count_zombies() == 0);
    CHILD_CHECK(setrlimit(RLIMIT_NPROC, &saved) == 0);
    tk_process_free(p);
    return 0;
}

static void fork_refused(void **state)
{
    (void)state;
    assert_int_equal(in_child(child_fork_refused), 0);
}

/* No descriptor left for the start's pipes/pidfd: a clean error, and
 * nothing left behind. */
static int child_process_without_fds(void)
{
    tk_process *p = tk_process_new(child_exit5, NULL, NULL);
    CHILD_CHECK(p != NULL);
    struct rlimit saved;
    CHILD_CHECK(exhaust_fds(&saved) == 0);
    int fds = count_fds_raw();
    int rc = tk_process_start(p);
    CHILD_CHECK(rc == TK_EMFILE || rc == 0);
    if (rc == 0) { /* started without a new descriptor: must still join */
        CHILD_CHECK(tk_process_join(p, TK_FOREVER) == 0 && tk_process_exitcode(p) == 5);
    } else {
        CHILD_CHECK(tk_last_error()[0] != '\0');
        CHILD_CHECK(tk_process_pid(p) == 0 || !tk_process_is_alive(p));
    }
    CHILD_CHECK(count_fds_raw() <= fds);
    CHILD_CHECK(setrlimit(RLIMIT_NOFILE, &saved) == 0);
    tk_process_free(p);
    usleep(100000); /* a child killed on the error path has time to die */
    CHILD_CHECK(tt_count_zombies() == 0);
    return 0;
}

static void process_fds_exhausted(void **state)
{
    (void)state;
    assert_int_equal(in_child(child_process_without_fds), 0);
}

/* pidfd_open unavailable (as on kernels before 5.3): a seccomp filter makes
 * it fail with ENOSYS, so the library takes its fallback path for real.
 * Processes still start, join with a timeout, report their exit codes and
 * leave no zombie or descriptor. */
static int mode_no_pidfd(void)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_pidfd_open, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof filter / sizeof filter[0], .filter = filter};
    CHILD_CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
    CHILD_CHECK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0);
    CHILD_CHECK(syscall(SYS_pidfd_open, getpid(), 0) < 0 && errno == ENOSYS);
    int fds = tt_count_fds();
    for (int i = 0; i < 3; i++) {
        tk_process *p = tk_process_new(child_exit5, NULL, NULL);
        CHILD_CHECK(p && tk_process_start(p) == 0);
        int rc = tk_process_join(p, 30);
        CHILD_CHECK(rc == 0);
        CHILD_CHECK(tk_process_exitcode(p) == 5);
        tk_process_free(p);
    }
    CHILD_CHECK(tt_count_fds() == fds);
    CHILD_CHECK(tt_count_zombies() == 0);
    return 0;
}

/* The library probes for pidfd_open once per process, so the filter must
 * be in place before the program starts using it: the test re-runs this
 * program with the filter installed first. */
static void pidfd_unavailable(void **state)
{
    (void)state;
    char out[4096];
    int st = tt_run_self("no-pidfd", out, sizeof out, 120);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("no-pidfd mode failed (status 0x%x): %s", (unsigned)st, out);
}

int main(void)
{
    static const struct tt_mode modes[] = {{"no-pidfd", mode_no_pidfd}};
    tt_child_main(modes, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(args_allocation_points),
        cmocka_unit_test(failed_builders_leak_nothing),
        cmocka_unit_test(runtime_fd_exhaustion),
        cmocka_unit_test(thread_allocation_points),
        cmocka_unit_test(sync_allocation_points),
        cmocka_unit_test(thread_creation_refused),
        cmocka_unit_test(process_allocation_points),
        cmocka_unit_test(fork_refused),
        cmocka_unit_test(process_fds_exhausted),
        cmocka_unit_test(pidfd_unavailable),
    };
    int rc = cmocka_run_group_tests_name("faults", tests, NULL, NULL);
    printf("faults: %ld allocation failures injected\n", tt_total_faults);
    return rc;
}
