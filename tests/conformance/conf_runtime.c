/* §0/§3/§4 runtime rules seen from inside children: the end-of-program
 * procedure (pools finish, non-daemon threads joined, daemon threads not,
 * starts refused while it runs), what a forked child inherits (foreign
 * thread, process and pool handles; the forking thread becomes the main
 * thread and keeps its name), tk_exit with a negative status. */
#include "conf.h"

#include <pthread.h>
#include <sys/wait.h>

struct shared {
    int flag[8];
    int rc[8];
    char name[64];
    char msg[256];
};
static struct shared *sh;

static int child_wait(pid_t pid)
{
    int st = 0;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int set_flag_after(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    int64_t i = 0;
    double s = 0;
    tk_args_get_int(a, 0, &i);
    tk_args_get_float(a, 1, &s);
    conf_sleep(s);
    sh->flag[i] = 1;
    return 0;
}

static int task_set_flag(const tk_args *a, const tk_kwargs *k, tk_args *res)
{
    (void)res;
    return set_flag_after(a, k);
}

static int late_starter(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    conf_sleep(0.5); /* by now the child's target returned: shutdown runs */
    tk_thread *t = tk_thread_new(set_flag_after, tk_args_of("id", 7, 0.0), NULL);
    sh->rc[0] = tk_thread_start(t);
    snprintf(sh->msg, sizeof sh->msg, "%s", tk_last_error());
    if (sh->rc[0] == 0)
        tk_thread_join(t, 5.0);
    tk_thread_free(t);
    return 0;
}

static int child_body(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    /* a non-daemon thread, a detached non-daemon thread, a daemon thread,
     * a pool with pending work, and a thread that starts during shutdown */
    tk_thread *nd = tk_thread_new(set_flag_after, tk_args_of("id", 0, 0.3), NULL);
    tk_thread *det = tk_thread_new(set_flag_after, tk_args_of("id", 1, 0.3), NULL);
    tk_thread *dm = tk_thread_new(set_flag_after, tk_args_of("id", 2, 3.0), NULL);
    tk_thread *late = tk_thread_new(late_starter, NULL, NULL);
    tk_thread_set_daemon(dm, true);
    tk_thread_start(nd);
    tk_thread_start(det);
    tk_thread_start(dm);
    tk_thread_start(late);
    tk_thread_free(det);
    tk_pool *p = tk_pool_new(TK_POOL_THREADS, 1);
    tk_future *f = tk_pool_submit(p, task_set_flag, tk_args_of("id", 3, 0.3), NULL);
    tk_future *g = tk_pool_submit(p, task_set_flag, tk_args_of("id", 4, 0.1), NULL);
    tk_future_free(f);
    tk_future_free(g);
    /* return without joining anything: the end-of-program procedure must */
    return 0;
}

static void end_of_program_procedure_in_child(void **state)
{
    (void)state;
    memset(sh, 0, sizeof *sh);
    tk_process *p = tk_process_new(child_body, NULL, NULL);
    ASSERT_RC(tk_process_start(p), 0);
    ASSERT_RC(tk_process_join(p, 30.0), 0);
    assert_int_equal(tk_process_exitcode(p), 0);
    assert_int_equal(sh->flag[0], 1); /* non-daemon thread joined */
    assert_int_equal(sh->flag[1], 1); /* detached non-daemon thread joined */
    assert_int_equal(sh->flag[2], 0); /* daemon thread ended with the process */
    assert_int_equal(sh->flag[3], 1); /* pool work finished */
    assert_int_equal(sh->flag[4], 1);
    ASSERT_RC(sh->rc[0], TK_ESTATE);
    if (!strstr(sh->msg, "can't create new thread at interpreter shutdown"))
        fail_msg("start during shutdown: \"%s\"", sh->msg);
    assert_int_equal(sh->flag[7], 0);
    tk_process_free(p);
}

static int report_main_thread(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    snprintf(sh->name, sizeof sh->name, "%s", tk_thread_name(tk_main_thread()));
    sh->flag[0] = tk_current_thread() == tk_main_thread();
    sh->flag[1] = (int)tk_active_count();
    tk_process *par = tk_parent_process();
    sh->flag[2] = par != NULL && tk_process_is_alive(par);
    sh->rc[0] = par ? tk_process_join(par, 0) : 0;
    sh->rc[1] = par ? tk_process_terminate(par) : 0;
    return 0;
}

static int start_process_from_thread(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    tk_process *p = tk_process_new(report_main_thread, NULL, NULL);
    int rc = tk_process_start(p);
    if (rc == 0)
        rc = tk_process_join(p, 20.0);
    tk_process_free(p);
    return rc;
}

static void forking_thread_becomes_main(void **state)
{
    (void)state;
    memset(sh, 0, sizeof *sh);
    tk_thread *t = tk_thread_new(start_process_from_thread, NULL, NULL);
    ASSERT_RC(tk_thread_set_name(t, "Forker-7"), 0);
    ASSERT_RC(tk_thread_start(t), 0);
    ASSERT_RC(tk_thread_join(t, 30.0), 0);
    ASSERT_RC(tk_thread_result(t), 0);
    assert_string_equal(sh->name, "Forker-7");
    assert_int_equal(sh->flag[0], 1);
    assert_int_equal(sh->flag[1], 1);
    assert_int_equal(sh->flag[2], 1);
    ASSERT_RC(sh->rc[0], TK_ESTATE); /* the parent cannot be joined */
    ASSERT_RC(sh->rc[1], TK_ESTATE); /* nor signalled */
    tk_thread_free(t);
}

static int wait_ev(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    void *e;
    tk_args_get_ptr(a, 0, &e);
    return tk_event_wait(e, 20.0);
}

static int add1(const tk_args *a, const tk_kwargs *k, tk_args *res)
{
    (void)a;
    (void)k;
    tk_args_add_int(res, 1);
    return 0;
}

static void inherited_handles_are_foreign(void **state)
{
    (void)state;
    tk_event *e = tk_event_new(0);
    tk_thread *t = tk_thread_new(wait_ev, tk_args_of("p", (void *)e), NULL);
    ASSERT_RC(tk_thread_start(t), 0);
    tk_pool *pool = tk_pool_new(TK_POOL_THREADS, 1);
    tk_pool *ppool = tk_pool_new(TK_POOL_PROCESSES, 1);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int bad = 0;
        if (tk_thread_is_alive(t))
            bad |= 1;
        double t0 = conf_now();
        if (tk_thread_join(t, TK_FOREVER) != 0 || conf_now() - t0 > 2.0)
            bad |= 2;
        tk_future *f = tk_pool_submit(pool, add1, NULL, NULL);
        if (f != NULL || tk_last_error_code() != TK_ESTATE)
            bad |= 4;
        tk_future_free(f);
        f = tk_pool_submit(ppool, add1, NULL, NULL);
        if (f != NULL || tk_last_error_code() != TK_ESTATE)
            bad |= 8;
        tk_future_free(f);
        if (tk_active_count() != 1)
            bad |= 16;
        /* freeing foreign handles releases memory only */
        tk_thread_free(t);
        tk_pool_free(pool);
        tk_pool_free(ppool);
        _exit(bad);
    }
    int rc = child_wait(pid);
    /* the parent's pools still work: the child closed nothing of theirs */
    tk_future *f = tk_pool_submit(pool, add1, NULL, NULL);
    tk_future *g = tk_pool_submit(ppool, add1, NULL, NULL);
    ASSERT_RC(tk_future_result(f, 20.0, NULL), 0);
    ASSERT_RC(tk_future_result(g, 20.0, NULL), 0);
    tk_future_free(f);
    tk_future_free(g);
    tk_event_set(e);
    ASSERT_RC(tk_thread_join(t, 10.0), 0);
    if (rc != 0)
        fail_msg("forked child found problems: %#x", rc);
    tk_thread_free(t);
    tk_pool_free(pool);
    tk_pool_free(ppool);
    tk_event_free(e);
}

static int exit_negative(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    tk_args *e = tk_args_new();
    int64_t v;
    (void)tk_args_get_int(e, 5, &v);
    tk_exit(-3);
}

static void tk_exit_negative_is_failure(void **state)
{
    (void)state;
    char path[] = "/tmp/conf-rt-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    tk_process *p = tk_process_new(exit_negative, NULL, NULL);
    ASSERT_RC(tk_process_set_name(p, "quitter"), 0);
    int rc = tk_process_start(p);
    if (rc == 0)
        rc = tk_process_join(p, 20.0);
    dup2(saved, 2);
    close(saved);
    ASSERT_RC(rc, 0);
    assert_int_equal(tk_process_exitcode(p), 1);
    char out[1024] = {0};
    ssize_t n = pread(fd, out, sizeof out - 1, 0);
    close(fd);
    assert_true(n > 0);
    if (!strstr(out, "Process quitter: "))
        fail_msg("stderr: \"%s\"", out);
    tk_process_free(p);
}

static int try_process_pool(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    sh->flag[5] = tk_process_daemon(tk_current_process());
    tk_pool *p = tk_pool_new(TK_POOL_PROCESSES, 1);
    if (p) {
        /* does the pool actually run work? */
        tk_future *f = tk_pool_submit(p, add1, NULL, NULL);
        sh->rc[4] = f ? tk_future_result(f, 10.0, NULL) : tk_last_error_code();
        tk_future_free(f);
    }
    sh->rc[2] = p ? 0 : tk_last_error_code();
    tk_pool_free(p);
    tk_pool *t = tk_pool_new(TK_POOL_THREADS, 1);
    sh->rc[3] = t ? 0 : tk_last_error_code();
    tk_pool_free(t);
    return 0;
}

static void daemonic_process_cannot_create_process_pool_child(void **state)
{
    (void)state;
    memset(sh, 0, sizeof *sh);
    tk_process *p = tk_process_new(try_process_pool, NULL, NULL);
    ASSERT_RC(tk_process_set_daemon(p, true), 0);
    ASSERT_RC(tk_process_start(p), 0);
    ASSERT_RC(tk_process_join(p, 20.0), 0);
    assert_int_equal(sh->flag[5], 1); /* the child knows it is daemonic */
    /* FINDING: API.md §6 "A daemonic process cannot create a process pool."
     * and pool.h (tk_pool_new: TK_ESTATE for "a process pool from a daemonic
     * process") vs the library: tk_pool_new(TK_POOL_PROCESSES, 1) succeeds in
     * a daemonic child (and the pool runs work: its workers are children of
     * a daemonic process). */
    FINDING(sh->rc[2] == 0,
            "tk_pool_new(TK_POOL_PROCESSES) in a daemonic process succeeds; "
            "contract: TK_ESTATE");
    ASSERT_RC(sh->rc[2], TK_ESTATE);
    ASSERT_RC(sh->rc[3], 0); /* thread pools are fine */
    tk_process_free(p);
}

static void *thread_exit_body(void *arg) { (void)arg; return NULL; }

static int pthread_exit_target(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    pthread_exit(NULL);
}

static void pthread_exit_result(void **state)
{
    (void)state;
    (void)thread_exit_body;
    tk_thread *t = tk_thread_new(pthread_exit_target, NULL, NULL);
    ASSERT_RC(tk_thread_start(t), 0);
    ASSERT_RC(tk_thread_join(t, 10.0), 0);
    assert_int_equal(tk_thread_result(t), TK_ECANCELED);
    assert_false(tk_thread_is_alive(t));
    tk_thread_free(t);
}

int main(void)
{
    CONF_MAIN_GUARD();
    sh = tk_shm_alloc(sizeof *sh);
    if (!sh)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(end_of_program_procedure_in_child),
        cmocka_unit_test(forking_thread_becomes_main),
        cmocka_unit_test(inherited_handles_are_foreign),
        cmocka_unit_test(tk_exit_negative_is_failure),
        cmocka_unit_test(daemonic_process_cannot_create_process_pool_child),
        cmocka_unit_test(pthread_exit_result),
    };
    return cmocka_run_group_tests_name("conformance: runtime (exit procedure, fork)", tests,
                                       NULL, NULL);
}
