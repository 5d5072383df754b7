/* test_thread.c - thread objects: lifecycle and its errors, results, joins
 * (timeouts, several joiners), idents and native ids, names (also the OS
 * name), daemon flags, main and dummy threads, enumerate and references,
 * internal threads, stack sizes, and 10,000 cycles without growth. */
#include "common/testutil.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "thread_int.h"
#include "taskkit.h"

/* ------------------------------------------------------------- helpers */

static long my_tid(void)
{
    return (long)syscall(SYS_gettid);
}

/* A gate a target blocks on until the test opens it. */
struct gate {
    atomic_int open;
    atomic_int arrived;
};

static void gate_wait(struct gate *g)
{
    atomic_fetch_add(&g->arrived, 1);
    while (!atomic_load(&g->open))
        usleep(200);
}

static void wait_arrived(struct gate *g, int n)
{
    while (atomic_load(&g->arrived) < n)
        usleep(200);
}

static void *arg_ptr(const tk_args *a)
{
    void *p = NULL;
    assert_int_equal(tk_args_get_ptr(a, 0, &p), 0);
    return p;
}

static int gated_target(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    gate_wait(arg_ptr(a));
    return 0;
}

static tk_thread *start_gated(struct gate *g)
{
    tk_thread *t = tk_thread_new(gated_target, tk_args_of("p", (void *)g), NULL);
    assert_non_null(t);
    assert_int_equal(tk_thread_start(t), 0);
    return t;
}

static int return_arg(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    int64_t v = 0;
    if (tk_args_get_int(a, 0, &v) < 0)
        return -1000;
    return (int)v;
}

static int bags_not_null(const tk_args *a, const tk_kwargs *k)
{
    return a && k && tk_args_len(a) == 0 && tk_kwargs_len(k) == 0 ? 42 : 1;
}

static void read_comm(long tid, char *buf, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld/comm", tid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, (int)cap, f));
    fclose(f);
    buf[strcspn(buf, "\n")] = 0;
}

/* ----------------------------------------------------------- lifecycle */

static void new_rejects_null_target_and_takes_the_bags(void **state)
{
    (void)state;
    /* the bags are freed also on failure: ASan/valgrind would see a leak */
    assert_null(tk_thread_new(NULL, tk_args_of("i", 3), tk_kwargs_of("x:i", 1)));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    assert_string_equal(tk_last_error(), "tk_thread_new: target must not be NULL");
    assert_null(tk_timer_new(1.0, NULL, tk_args_of("i", 3), NULL));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    assert_null(tk_timer_new(NAN, return_arg, tk_args_of("i", 3), NULL));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
}

static void new_out_of_memory_takes_the_bags(void **state)
{
    (void)state;
    for (long n = 1; n <= 3; n++) {
        tk_args *a = tk_args_of("i", 3);
        tk__fault_set(n);
        tk_thread *t = tk_thread_new(return_arg, a, NULL);
        tk__fault_set(0);
        if (t) {
            tk_thread_free(t); /* the n-th allocation came after new */
            continue;
        }
        assert_int_equal(tk_last_error_code(), TK_ENOMEM);
    }
}

static void start_join_result(void **state)
{
    (void)state;
    tk_thread *t = tk_thread_new(return_arg, tk_args_of("i", 7), NULL);
    assert_non_null(t);
    assert_false(tk_thread_is_alive(t));
    assert_int_equal(tk_thread_result(t), TK_EXITCODE_NONE);
    assert_int_equal(tk_thread_start(t), 0);
    assert_int_equal(tk_thread_join(t, TK_FOREVER), 0);
    assert_false(tk_thread_is_alive(t));
    assert_int_equal(tk_thread_result(t), 7);
    assert_int_equal(tk_thread_join(t, TK_FOREVER), 0); /* again: 0 */
    assert_int_equal(tk_thread_join(t, 0), 0);
    tk_thread_free(t);
    tk_thread_free(NULL);
}

static void target_gets_empty_bags_for_null(void **state)
{
    (void)state;
    tk_thread *t = tk_thread_new(bags_not_null, NULL, NULL);
    assert_int_equal(tk_thread_start(t), 0);
    assert_int_equal(tk_thread_join(t, 10), 0);
    assert_int_equal(tk_thread_result(t), 42);
    tk_thread_free(t);
}

static void alive_while_running(void **state)
{
    (void)state;
    struct gate g = {0};
    tk_thread *t = start_gated(&g);
    assert_true(tk_thread_is_alive(t));
    wait_arrived(&g, 1);
    assert_true(tk_thread_is_alive(t));
    assert_int_equal(tk_thread_result(t), TK_EXITCODE_NONE);
    atomic_store(&g.open, 1);
    assert_int_equal(tk_thread_join(t, TK_FOREVER), 0);
    assert_false(tk_thread_is_alive(t));
    assert_int_equal(tk_thread_result(t), 0);
    tk_thread_free(t);
}

static void start_twice_is_estate(void **state)
{
    (void)state;
    tk_thread *t = tk_thread_new(return_arg, tk_args_of("i", 1), NULL);
    assert_int_equal(tk_thread_start(t), 0);
    assert_int_equal(tk_thread_start(t), TK_ESTATE);
    assert_string_equal(tk_last_error(), "threads can only be started once");
    assert_int_equal(tk_thread_join(t, TK_FOREVER), 0);
    assert_int_equal(tk_thread_start(t), TK_ESTATE);
    tk_thread_free(t);
    assert_int_equal(tk_thread_start(tk_main_thread()), TK_ESTATE);
    assert_string_equal(tk_last_error(), "threads can only be started once");
    assert_int_equal(tk_thread_start(NULL), TK_EINVAL);
}

static void join_errors(void **state)
{
    (void)state;
    tk_thread *t = tk_thread_new(return_arg, tk_args_of("i", 1), NULL);
    assert_int_equal(tk_thread_join(t, TK_FOREVER), TK_ESTATE);
    assert_string_equal(tk_last_error(), "cannot join thread before it is started");
    assert_int_equal(tk_thread_join(t, 0), TK_ESTATE);
    assert_int_equal(tk_thread_start(t), 0);
    assert_int_equal(tk_thread_join(t, NAN), TK_EINVAL);
    assert_int_equal(tk_thread_join(t, TK_FOREVER), 0);
    tk_thread_free(t);
    assert_int_equal(tk_thread_join(NULL, 1), TK_EINVAL);
    assert_int_equal(tk_thread_join(tk_main_thread(), 0), TK_ESTATE);
    assert_string_equal(tk_last_error(), "cannot join current thread");
    assert_int_equal(tk_thread_join(tk_current_thread(), TK_FOREVER), TK_ESTATE);
}

static int join_self(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    if (tk_thread_join(tk_current_thread(), TK_FOREVER) != TK_ESTATE)
        return 1;
    if (strcmp(tk_last_error(), "cannot join current thread") != 0)
        return 2;
    return 0;
}

static void join_current_thread_is_estate(void **state)
{
    (void)state;
    tk_thread *t = tk_thread_new(join_self, NULL, NULL);
    assert_int_equal(tk_thread_start(t), 0);
    assert_int_equal(tk_thread_join(t, TK_FOREVER), 0);
    assert_int_equal(tk_thread_result(t), 0);
    tk_thread_free(t);
}

static void join_timeouts(void **state)
{
    (void)state;
    struct gate g = {0};
    tk_thread *t = start_gated(&g);
    double t0 = tt_now();
    assert_int_equal(tk_thread_join(t, 0.1), TK_ETIMEDOUT);
    double took = tt_now() - t0;
    assert_true(took >= 0.099);
    assert_true(took < 5.0);
    t0 = tt_now();
    assert_int_equal(tk_thread_join(t, 0), TK_ETIMEDOUT);   /* polls */
    assert_int_equal(tk_thread_join(t, -5.0), TK_ETIMEDOUT); /* polls too */
    assert_true(tt_now() - t0 < 1.0);
    assert_true(tk_thread_is_alive(t));
    atomic_store(&g.open, 1);
    assert_int_equal(tk_thread_join(t, 1e300), 0); /* huge: no overflow */
    assert_int_equal(tk_thread_join(t, 0), 0);
    tk_thread_free(t);
}

static void join_timed_reclaims_the_thread(void **state)
{
    (void)state;
    /* a join with a timeout that sees the thread done joins the pthread */
    tk_thread *t = tk_thread_new(return_arg, tk_args_of("i", 5), NULL);
    assert_int_equal(tk_thread_start(t), 0);
    assert_int_equal(tk_thread_join(t, 30.0), 0);
    assert_int_equal(tk_thread_result(t), 5);
    tk_thread_free(t);
}

struct joiner {
    tk_thread *t;
    double timeout;
    int rc;
};

static void *joiner_main(void *p)
{
    struct joiner *j = p;
    j->rc = tk_thread_join(j->t, j->timeout);
    return NULL;
}

static void join_from_several_threads(void **state)
{
    (void)state;
    struct gate g = {0};
    tk_thread *t = start_gated(&g);
    enum { N = 6 };
    struct joiner js[N];
    pthread_t ps[N];
    for (int i = 0; i < N; i++) {
        js[i] = (struct joiner){t, i % 2 ? TK_FOREVER : 30.0, 99};
        assert_int_equal(pthread_create(&ps[i], NULL, joiner_main, &js[i]), 0);
    }
    usleep(50 * 1000); /* let them block */
    atomic_store(&g.open, 1);
    for (int i = 0; i < N; i++) {
        pthread_join(ps[i], NULL);
        assert_int_equal(js[i].rc, 0);
    }
    assert_false(tk_thread_is_alive(t));
    tk_thread_free(t);
}

/* ---------------------------------------------------------- identities */

struct ids {
    atomic_ulong self;
    atomic_long tid;
    struct gate g;
};

static int record_ids(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    struct ids *ids = arg_ptr(a);
    atomic_store(&ids->self, (unsigned long)pthread_self());
    atomic_store(&ids->tid, my_tid());
    if (tk_thread_ident(tk_current_thread()) != (unsigned long)pthread_self())
        return 1;
    if (tk_thread_native_id(tk_current_thread()) != my_tid())
        return 2;
    gate_wait(&ids->g);
    return 0;
}

static void ident_and_native_id(void **state)
{
    (void)state;
    struct ids ids = {0};
    tk_thread *t = tk_thread_new(record_ids, tk_args_of("p", (void *)&ids), NULL);
    assert_int_equal(tk_thread_ident(t), 0);
    assert_int_equal(tk_thread_native_id(t), 0);
    assert_int_equal(tk_thread_start(t), 0);
    /* no handshake: ident is set by start, native_id waits if needed */
    assert_int_not_equal(tk_thread_ident(t), 0);
    long nid = tk_thread_native_id(t);
    wait_arrived(&ids.g, 1);
    assert_int_equal(tk_thread_ident(t), atomic_load(&ids.self));
    assert_int_equal(nid, atomic_load(&ids.tid));
    assert_int_not_equal(nid, getpid());
    atomic_store(&ids.g.open, 1);
    assert_int_equal(tk_thread_join(t, TK_FOREVER), 0);
    assert_int_equal(tk_thread_result(t), 0);
    /* both stay set after the end */
    assert_int_equal(tk_thread_ident(t), atomic_load(&ids.self));
    assert_int_equal(tk_thread_native_id(t), nid);
    tk_thread_free(t);
    assert_int_equal(tk_thread_ident(NULL), 0);
    assert_int_equal(tk_thread_native_id(NULL), 0);
}

static void native_id_right_after_start(void **state)
{
    (void)state;
    for (int i = 0; i < 50; i++) {
        struct ids ids = {0};
        atomic_store(&ids.g.open, 1);
        tk_thread *t = tk_thread_new(record_ids, tk_args_of("p", (void *)&ids), NULL);
        assert_int_equal(tk_thread_start(t), 0);
        long nid = tk_thread_native_id(t);
        assert_int_equal(tk_thread_join(t, TK_FOREVER), 0);
        assert_int_equal(nid, atomic_load(&ids.tid));
        tk_thread_free(t);
    }
}

/* The new thread learns its kernel id without a gettid call (from its
 * pthread): the cached tid and native_id must be the kernel's own, also
 * for threads started in a forked child (fresh tids, reused stacks). */
static int check_tid(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    long tid = my_tid();
    if (tk_thread_native_id(tk_current_thread()) != tid)
        return 1;
    return (long)tk__gettid() == tid ? 0 : 2;
}

static int start_check_tid(int n)
{
    for (int i = 0; i < n; i++) {
        tk_thread *t = tk_thread_new(check_tid, NULL, NULL);
        if (!t || tk_thread_start(t) < 0 || tk_thread_join(t, TK_FOREVER) < 0)
            return 3;
        int r = tk_thread_result(t);
        tk_thread_free(t);
        if (r != 0)
            return r;
    }
    return 0;
}

static void cached_tid_is_the_kernels(void **state)
{
    (void)state;
    assert_int_equal(start_check_tid(20), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(start_check_tid(20));
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void main_thread_handle(void **state)
{
    (void)state;
    tk_thread *m = tk_main_thread();
    assert_ptr_equal(tk_current_thread(), m);
    assert_string_equal(tk_thread_name(m), "MainThread");
    assert_true(tk_thread_is_alive(m));
    assert_false(tk_thread_daemon(m));
    assert_int_equal(tk_thread_ident(m), (unsigned long)pthread_self());
    assert_int_equal(tk_thread_native_id(m), getpid());
    assert_int_equal(tk_thread_result(m), TK_EXITCODE_NONE);
    tk_thread_free(m); /* runtime-owned: no-op */
    tk_thread_free(tk_current_thread());
    assert_string_equal(tk_thread_name(tk_main_thread()), "MainThread");
    assert_int_equal(tk_thread_set_daemon(m, true), TK_ESTATE);
    assert_string_equal(tk_last_error(), "cannot set daemon status of active thread");
}

static int main_from_thread(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    tk_thread *m = tk_main_thread();
    if (m == tk_current_thread() || strcmp(tk_thread_name(m), "MainThread") != 0)
        return 1;
    return tk_thread_is_alive(m) ? 0 : 2;
}

static void main_thread_seen_from_a_thread(void **state)
{
    (void)state;
    tk_thread *t = tk_thread_new(main_from_thread, NULL, NULL);
    assert_int_equal(tk_thread_start(t), 0);
    assert_int_equal(tk_thread_join(t, TK_FOREVER), 0);
    assert_int_equal(tk_thread_result(t), 0);
    tk_thread_free(t);
}

/* --------------------------------------------------------------- names */

static void default_names_count_up(void **state)
{
    (void)state;
    tk_thread *a = tk_thread_new(return_arg, NULL, NULL);
    tk_thread *b = tk_thread_new(return_arg, NULL, NULL);
    unsigned na = 0, nb = 0;
    assert_int_equal(sscanf(tk_thread_name(a), "Thread-%u", &na), 1);
    assert_int_equal(sscanf(tk_thread_name(b), "Thread-%u", &nb), 1);
    assert_int_equal(nb, na + 1);
    tk_thread *tm = tk_timer_new(1.0, return_arg, NULL, NULL);
    unsigned nt = 0;
    assert_int_equal(sscanf(tk_thread_name(tm), "Thread-%u", &nt), 1);
    assert_int_equal(nt, nb + 1);
    tk_thread_free(a);
    tk_thread_free(b);
    tk_thread_free(tm);
    assert_string_equal(tk_thread_name(NULL), "");
}

static void set_name_any_time(void **state)
{
    (void)state;
    tk_thread *t = tk_thread_new(bags_not_null, NULL, NULL);
    assert_int_equal(tk_thread_set_name(t, "short"), 0);
    assert_string_equal(tk_thread_name(t), "short");
    const char *lng = "a name much longer than any inline buffer would hold, surely";
    assert_int_equal(tk_thread_set_name(t, lng), 0);
    assert_string_equal(tk_thread_name(t), lng);
    assert_int_equal(tk_thread_set_name(t, "again short"), 0);
    assert_string_equal(tk_thread_name(t), "again short");
    assert_int_equal(tk_thread_set_name(t, lng), 0);
    assert_int_equal(tk_thread_set_name(t, NULL), TK_EINVAL);
    assert_int_equal(tk_thread_set_name(NULL, "x"), TK_EINVAL);
    assert_string_equal(tk_thread_name(t), lng);
    assert_int_equal(tk_thread_start(t), 0);
    assert_int_equal(tk_thread_join(t, TK_FOREVER), 0);
    assert_int_equal(tk_thread_set_name(t, "after the end"), 0);
    assert_string_equal(tk_thread_name(t), "after the end");
    tk_thread_free(t);
}

static void os_name_follows_the_name(void **state)
{
    (void)state;
    struct ids ids = {0};
    tk_thread *t = tk_thread_new(record_ids, tk_args_of("p", (void *)&ids), NULL);
    assert_int_equal(tk_thread_set_name(t, "worker-with-a-very-long-name"), 0);
    assert_int_equal(tk_thread_start(t), 0);
    wait_arrived(&ids.g, 1);
    char comm[64];
    read_comm(tk_thread_native_id(t), comm, sizeof comm);
    assert_string_equal(comm, "worker-with-a-v"); /* first 15 bytes */
    assert_string_equal(tk_thread_name(t), "worker-with-a-very-long-name");
    /* renaming a running thread renames the OS thread too */
    assert_int_equal(tk_thread_set_name(t, "renamed"), 0);
    read_comm(tk_thread_native_id(t), comm, sizeof comm);
    assert_string_equal(comm, "renamed");
    atomic_store(&ids.g.open, 1);
    assert_int_equal(tk_thread_join(t, TK_FOREVER), 0);
    tk_thread_free(t);
}

static void default_os_name_is_thread_n(void **state)
{
    (void)state;
    struct ids ids = {0};
    tk_thread *t = tk_thread_new(record_ids, tk_args_of("p", (void *)&ids), NULL);
    assert_int_equal(tk_thread_start(t), 0);
    wait_arrived(&ids.g, 1);
    char comm[64];
    read_comm(tk_thread_native_id(t), comm, sizeof comm);
    assert_string_equal(comm, tk_thread_name(t));
    atomic_store(&ids.g.open, 1);
    assert_int_equal(tk_thread_join(t, TK_FOREVER), 0);
    tk_thread_free(t);
}

static void rename_racing_with_start(void **state)
{
    (void)state;
    /* the new thread names itself while set_name may hand over a new name:
     * the last name wins, whatever the interleaving */
    for (int i = 0; i < 50; i++) {
        struct ids ids = {0};
        tk_thread *t = tk_thread_new(record_ids, tk_args_of("p", (void *)&ids), NULL);
        assert_int_equal(tk_thread_start(t), 0);
        assert_int_equal(tk_thread_set_name(t, "late-name"), 0);
        wait_arrived(&ids.g, 1);
        char comm[64];
        read_comm(tk_thread_native_id(t), comm, sizeof comm);
        assert_string_equal(comm, "late-name");
        atomic_store(&ids.g.open, 1);
        assert_int_equal(tk_thread_join(t, TK_FOREVER), 0);
        tk_thread_free(t);
    }
}

/* -------------------------------------------------------------- daemon */

static int child_daemon_flag(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    tk_thread *c = tk_thread_new(return_arg, NULL, NULL);
    int r = tk_thread_daemon(c) ? 1 : 0;
    tk_thread_free(c);
    return r;
}

static void daemon_is_inherited(void **state)
{
    (void)state;
    tk_thread *t = tk_thread_new(child_daemon_flag, NULL, NULL);
    assert_false(tk_thread_daemon(t)); /* main is not a daemon */
    assert_int_equal(tk_thread_start(t), 0);
    assert_int_equal(tk_thread_join(t, TK_FOREVER), 0);
    assert_int_equal(tk_thread_result(t), 0);
    tk_thread_free(t);

    t = tk_thread_new(child_daemon_flag, NULL, NULL);
    assert_int_equal(tk_thread_set_daemon(t, true), 0);
    assert_true(tk_thread_daemon(t));
    assert_int_equal(tk_thread_start(t), 0);
    assert_int_equal(tk_thread_set_daemon(t, false), TK_ESTATE);
    assert_string_equal(tk_last_error(), "cannot set daemon status of active thread");
    assert_int_equal(tk_thread_join(t, TK_FOREVER), 0);
    assert_int_equal(tk_thread_result(t), 1);
    assert_true(tk_thread_daemon(t));
    tk_thread_free(t);
    assert_int_equal(tk_thread_set_daemon(NULL, true), TK_EINVAL);
    assert_false(tk_thread_daemon(NULL));
}

/* --------------------------------------------------------------- dummy */

struct dummy_report {
    char name[32];
    bool daemon, alive, child_daemon, same_again, listed;
    int start_rc, join_rc;
    char join_msg[64];
    long nid;
    unsigned long ident;
    tk_thread *handle;
    struct gate g;
};

static void *foreign_thread(void *p)
{
    struct dummy_report *r = p;
    tk_thread *d = tk_current_thread();
    r->handle = d;
    snprintf(r->name, sizeof r->name, "%s", tk_thread_name(d));
    r->daemon = tk_thread_daemon(d);
    r->alive = tk_thread_is_alive(d);
    r->same_again = tk_current_thread() == d;
    r->nid = tk_thread_native_id(d) == my_tid();
    r->ident = tk_thread_ident(d) == (unsigned long)pthread_self();
    tk_thread *c = tk_thread_new(return_arg, NULL, NULL);
    r->child_daemon = tk_thread_daemon(c);
    tk_thread_free(c);
    r->start_rc = tk_thread_start(d);
    tk_thread_free(d); /* runtime-owned: no-op */
    gate_wait(&r->g);
    return NULL;
}

static bool listed(tk_thread *t)
{
    tk_thread *all[64];
    size_t n = tk_thread_enumerate(all, 64);
    bool found = false;
    for (size_t i = 0; i < n && i < 64; i++) {
        found |= all[i] == t;
        tk_thread_free(all[i]);
    }
    return found;
}

static void dummy_threads(void **state)
{
    (void)state;
    size_t before = tk_active_count();
    struct dummy_report r = {0};
    pthread_t p;
    assert_int_equal(pthread_create(&p, NULL, foreign_thread, &r), 0);
    wait_arrived(&r.g, 1);
    assert_true(strncmp(r.name, "Dummy-", 6) == 0);
    assert_true(r.daemon);
    assert_true(r.alive);
    assert_true(r.same_again);
    assert_true(r.nid);
    assert_true(r.ident);
    assert_false(r.child_daemon); /* threads a dummy creates are not daemons */
    assert_int_equal(r.start_rc, TK_ESTATE);
    assert_int_equal(tk_active_count(), before + 1);
    assert_true(listed(r.handle));
    assert_int_equal(tk_thread_join(r.handle, 0), TK_ESTATE);
    assert_string_equal(tk_last_error(), "cannot join a dummy thread");
    assert_int_equal(tk_thread_set_daemon(r.handle, false), TK_ESTATE);
    /* a reference from enumerate keeps the handle valid past the thread */
    tk_thread *all[64];
    size_t n = tk_thread_enumerate(all, 64);
    tk_thread *kept = NULL;
    for (size_t i = 0; i < n; i++) {
        if (all[i] == r.handle)
            kept = all[i];
        else
            tk_thread_free(all[i]);
    }
    assert_non_null(kept);
    atomic_store(&r.g.open, 1);
    pthread_join(p, NULL);
    /* gone from the registry when its thread exits, without a leak */
    assert_int_equal(tk_active_count(), before);
    assert_false(tk_thread_is_alive(kept));
    assert_true(strncmp(tk_thread_name(kept), "Dummy-", 6) == 0);
    tk_thread_free(kept);
}

static void *many_dummies(void *p)
{
    (void)p;
    return tk_current_thread();
}

static void dummies_do_not_leak(void **state)
{
    (void)state;
    size_t before = tk_active_count();
    for (int i = 0; i < 200; i++) {
        pthread_t p;
        assert_int_equal(pthread_create(&p, NULL, many_dummies, NULL), 0);
        void *h = NULL;
        pthread_join(p, &h);
        assert_non_null(h);
    }
    assert_int_equal(tk_active_count(), before); /* and ASan sees no leak */
}

/* ---------------------------------------------------- enumerate, refs */

static void enumerate_lists_live_threads(void **state)
{
    (void)state;
    size_t base = tk_active_count();
    assert_true(base >= 1);
    assert_int_equal(tk_thread_enumerate(NULL, 0), base);
    struct gate g = {0};
    tk_thread *a = start_gated(&g);
    tk_thread *b = start_gated(&g);
    /* start returns once the thread is listed */
    assert_int_equal(tk_active_count(), base + 2);
    tk_thread *all[64];
    size_t n = tk_thread_enumerate(all, 64);
    assert_int_equal(n, base + 2);
    assert_ptr_equal(all[0], tk_main_thread());
    bool fa = false, fb = false;
    for (size_t i = 0; i < n; i++) {
        fa |= all[i] == a;
        fb |= all[i] == b;
    }
    assert_true(fa && fb);
    /* the references outlive the creator's */
    tk_thread_free(a);
    tk_thread_free(b);
    atomic_store(&g.open, 1);
    for (size_t i = 0; i < n; i++) {
        if (all[i] != tk_main_thread())
            assert_int_equal(tk_thread_join(all[i], TK_FOREVER), 0);
        tk_thread_free(all[i]);
    }
    assert_int_equal(tk_active_count(), base);
    /* cap smaller than the count */
    assert_int_equal(tk_thread_enumerate(all, 0), base);
    assert_int_equal(tk_thread_enumerate(all, 1), base);
    tk_thread_free(all[0]);
}

static int self_refs(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    tk_thread *me = tk_current_thread();
    tk_thread_free(me); /* no-op: runtime-owned */
    tk_thread_free(me);
    tk_thread *all[64];
    size_t n = tk_thread_enumerate(all, 64);
    for (size_t i = 0; i < n && i < 64; i++)
        tk_thread_free(all[i]); /* includes our own: really dropped */
    return strncmp(tk_thread_name(me), "Thread-", 7) == 0 ? 0 : 1;
}

static void thread_frees_its_own_references(void **state)
{
    (void)state;
    tk_thread *t = tk_thread_new(self_refs, NULL, NULL);
    assert_int_equal(tk_thread_start(t), 0);
    assert_int_equal(tk_thread_join(t, TK_FOREVER), 0);
    assert_int_equal(tk_thread_result(t), 0);
    assert_string_not_equal(tk_thread_name(t), ""); /* still ours */
    tk_thread_free(t);
}

static void free_running_thread_detaches(void **state)
{
    (void)state;
    struct gate g = {0};
    size_t base = tk_active_count();
    tk_thread *t = start_gated(&g);
    wait_arrived(&g, 1);
    tk_thread_free(t); /* detached: it runs on */
    assert_int_equal(tk_active_count(), base + 1);
    atomic_store(&g.open, 1);
    double end = tt_now() + 10;
    while (tk_active_count() != base && tt_now() < end)
        usleep(1000);
    assert_int_equal(tk_active_count(), base);
    usleep(20 * 1000); /* let it leave; ASan checks the handle was freed */
}

static void free_unstarted_thread(void **state)
{
    (void)state;
    tk_thread_free(tk_thread_new(return_arg, tk_args_of("is", 1, "x"), tk_kwargs_of("k:s", "v")));
    tk_thread_free(tk_timer_new(5, return_arg, NULL, NULL));
}

static int exits_early(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    pthread_exit(NULL);
}

static void target_calling_pthread_exit_still_finishes(void **state)
{
    (void)state;
    size_t base = tk_active_count();
    tk_thread *t = tk_thread_new(exits_early, tk_args_of("i", 1), NULL);
    assert_int_equal(tk_thread_start(t), 0);
    assert_int_equal(tk_thread_join(t, 10), 0);
    assert_false(tk_thread_is_alive(t));
    assert_int_equal(tk_thread_result(t), TK_ECANCELED);
    assert_int_equal(tk_active_count(), base);
    tk_thread_free(t);
}

/* --------------------------------------------------- stack, internal */

static int report_stack(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    pthread_attr_t attr;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return -1;
    pthread_attr_getstacksize(&attr, &size);
    pthread_attr_destroy(&attr);
    return (int)(size / 1024);
}

static void stack_size(void **state)
{
    (void)state;
    tk_thread *t = tk_thread_new(report_stack, NULL, NULL);
    assert_int_equal(tk_thread_set_stack_size(t, 100), TK_EINVAL);
    assert_string_equal(tk_last_error(), "size not valid: 100 bytes");
    assert_int_equal(tk_thread_set_stack_size(t, 32767), TK_EINVAL);
    assert_int_equal(tk_thread_set_stack_size(NULL, 0), TK_EINVAL);
    assert_int_equal(tk_thread_set_stack_size(t, 0), 0);
    assert_int_equal(tk_thread_set_stack_size(t, 256 * 1024), 0);
    assert_int_equal(tk_thread_start(t), 0);
    assert_int_equal(tk_thread_set_stack_size(t, 1 << 20), TK_ESTATE);
    assert_int_equal(tk_thread_join(t, TK_FOREVER), 0);
    /* glibc may reuse a cached stack up to 4 times larger: still not 8 MiB */
    assert_true(tk_thread_result(t) >= 256);
    assert_true(tk_thread_result(t) <= 4 * 256 + 64);
    tk_thread_free(t);
    assert_int_equal(tk_thread_set_stack_size(tk_main_thread(), 1 << 20), TK_ESTATE);
}

struct internal_report {
    atomic_int sigint_blocked, sigsegv_blocked, daemon, listed, named;
    struct gate g;
};

static int internal_fn(void *p)
{
    struct internal_report *r = p;
    sigset_t cur;
    pthread_sigmask(SIG_SETMASK, NULL, &cur);
    atomic_store(&r->sigint_blocked, sigismember(&cur, SIGINT));
    atomic_store(&r->sigsegv_blocked, sigismember(&cur, SIGSEGV));
    atomic_store(&r->daemon, tk_thread_daemon(tk_current_thread()));
    atomic_store(&r->named, strcmp(tk_thread_name(tk_current_thread()), "ThreadPool-1_0") == 0);
    gate_wait(&r->g);
    return -3; /* internal failures are not printed */
}

static void internal_threads(void **state)
{
    (void)state;
    size_t base = tk_active_count();
    struct internal_report r = {0};
    tk_thread *t = tk__thread_start_internal("ThreadPool-1_0", internal_fn, &r);
    assert_non_null(t);
    wait_arrived(&r.g, 1);
    assert_int_equal(tk_active_count(), base); /* hidden */
    assert_false(listed(t));
    assert_true(tk_thread_is_alive(t));
    assert_true(atomic_load(&r.sigint_blocked));
    assert_false(atomic_load(&r.sigsegv_blocked));
    assert_true(atomic_load(&r.daemon));
    assert_true(atomic_load(&r.named));
    char comm[64];
    read_comm(tk_thread_native_id(t), comm, sizeof comm);
    assert_string_equal(comm, "ThreadPool-1_0");
    /* the creator's own mask is untouched */
    sigset_t cur;
    pthread_sigmask(SIG_SETMASK, NULL, &cur);
    assert_false(sigismember(&cur, SIGINT));
    assert_false(tk__thread_is_foreign(t));
    assert_ptr_not_equal(tk__thread_stop_state(t), NULL);
    atomic_store(&r.g.open, 1);
    assert_int_equal(tk_thread_join(t, TK_FOREVER), 0);
    assert_int_equal(tk_thread_result(t), -3);
    tk_thread_free(t);
    assert_null(tk__thread_start_internal(NULL, internal_fn, NULL));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    assert_false(tk__thread_is_foreign(NULL));
}

/* --------------------------------------------------------- no growth */

static int noop(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    int64_t v = 0;
    tk_args_get_int(a, 0, &v);
    return (int)v;
}

static void cycles_without_growth(void **state)
{
    (void)state;
    const char *mode = getenv("TK_TEST_MODE");
    int n = mode && strcmp(mode, "valgrind") == 0 ? 1000 : 10000;
    /* warm up: glibc caches stacks, stdio and TLS settle */
    for (int i = 0; i < 200; i++) {
        tk_thread *t = tk_thread_new(noop, tk_args_of("i", i), NULL);
        tk_thread_start(t);
        tk_thread_join(t, TK_FOREVER);
        tk_thread_free(t);
    }
    int fds = tt_count_fds();
    long rss = tt_rss_kib();
    for (int i = 0; i < n; i++) {
        tk_thread *t = tk_thread_new(noop, tk_args_of("i", i & 0xff), NULL);
        assert_non_null(t);
        assert_int_equal(tk_thread_start(t), 0);
        /* alternate the two join paths */
        assert_int_equal(tk_thread_join(t, i % 2 ? TK_FOREVER : 60.0), 0);
        assert_int_equal(tk_thread_result(t), i & 0xff);
        tk_thread_free(t);
    }
    assert_int_equal(tt_count_fds(), fds);
    /* KiB: a leak of even 200 bytes a cycle shows. Sanitizers and valgrind
     * keep freed memory in quarantine; their own leak checks count there. */
    long grown = tt_rss_kib() - rss;
    if (!tt_slow_mode())
        assert_true(grown < 2048);
}

static void cycles_with_early_free(void **state)
{
    (void)state;
    int fds = tt_count_fds();
    size_t base = tk_active_count();
    /* Under valgrind threads run one at a time and exit slowly, so 2000
     * detached starts can outgrow its thread table: fewer there. */
    const int cycles = tt_slow_mode() ? 200 : 2000;
    for (int i = 0; i < cycles; i++) {
        tk_thread *t = tk_thread_new(noop, tk_args_of("i", 1), NULL);
        assert_int_equal(tk_thread_start(t), 0);
        tk_thread_free(t); /* detach: the thread reclaims itself */
    }
    double end = tt_now() + 20;
    while (tk_active_count() != base && tt_now() < end)
        usleep(1000);
    assert_int_equal(tk_active_count(), base);
    assert_int_equal(tt_count_fds(), fds);
    usleep(50 * 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new_rejects_null_target_and_takes_the_bags),
        cmocka_unit_test(new_out_of_memory_takes_the_bags),
        cmocka_unit_test(start_join_result),
        cmocka_unit_test(target_gets_empty_bags_for_null),
        cmocka_unit_test(alive_while_running),
        cmocka_unit_test(start_twice_is_estate),
        cmocka_unit_test(join_errors),
        cmocka_unit_test(join_current_thread_is_estate),
        cmocka_unit_test(join_timeouts),
        cmocka_unit_test(join_timed_reclaims_the_thread),
        cmocka_unit_test(join_from_several_threads),
        cmocka_unit_test(ident_and_native_id),
        cmocka_unit_test(cached_tid_is_the_kernels),
        cmocka_unit_test(native_id_right_after_start),
        cmocka_unit_test(main_thread_handle),
        cmocka_unit_test(main_thread_seen_from_a_thread),
        cmocka_unit_test(default_names_count_up),
        cmocka_unit_test(set_name_any_time),
        cmocka_unit_test(os_name_follows_the_name),
        cmocka_unit_test(default_os_name_is_thread_n),
        cmocka_unit_test(rename_racing_with_start),
        cmocka_unit_test(daemon_is_inherited),
        cmocka_unit_test(dummy_threads),
        cmocka_unit_test(dummies_do_not_leak),
        cmocka_unit_test(enumerate_lists_live_threads),
        cmocka_unit_test(thread_frees_its_own_references),
        cmocka_unit_test(free_running_thread_detaches),
        cmocka_unit_test(free_unstarted_thread),
        cmocka_unit_test(target_calling_pthread_exit_still_finishes),
        cmocka_unit_test(stack_size),
        cmocka_unit_test(internal_threads),
        cmocka_unit_test(cycles_without_growth),
        cmocka_unit_test(cycles_with_early_free),
    };
    return cmocka_run_group_tests_name("thread", tests, NULL, NULL);
}
