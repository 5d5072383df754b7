/* §6 pools and futures: submit/result, failing tasks (TK_ETASK, status,
 * error text), map order and failures, shutdown and "cannot schedule new
 * futures after shutdown", cancel, wait_any, done-callbacks, interrupt,
 * process pools (encoding, dead workers), internal workers not listed. */
#include "conf.h"

#include <pthread.h>
#include <stdatomic.h>

static int add_task(const tk_args *a, const tk_kwargs *k, tk_args *res)
{
    int64_t x = 0, y = 0;
    tk_args_get_int(a, 0, &x);
    if (tk_kwargs_get_int(k, "plus", &y) != 0)
        y = 0;
    tk_args_add_int(res, x + y);
    tk_args_add_str(res, "done");
    return 0;
}

static int fail_task(const tk_args *a, const tk_kwargs *k, tk_args *res)
{
    (void)k;
    (void)res;
    int64_t v;
    (void)tk_args_get_int(a, 99, &v); /* sets a last error */
    return 3;
}

/* set by a task as it begins (a kwarg "started": true), so tests can wait
 * until a task is running instead of guessing with a sleep */
static tk_event *g_started;

static void wait_started(void)
{
    assert_int_equal(tk_event_wait(g_started, 30.0), 0);
    tk_event_clear(g_started);
}

static int sleep_task(const tk_args *a, const tk_kwargs *k, tk_args *res)
{
    if (tk_kwargs_has(k, "started"))
        tk_event_set(g_started);
    double s = 0;
    tk_args_get_float(a, 0, &s);
    int rc = tk_sleep(s);
    int64_t id = 0;
    tk_args_get_int(a, 1, &id);
    tk_args_add_int(res, id);
    return rc == 0 ? 0 : 7;
}

static int64_t res_int(const tk_args *r)
{
    int64_t v = -999;
    tk_args_get_int(r, 0, &v);
    return v;
}

static void submit_and_result(tk_pool_kind kind)
{
    tk_pool *p = tk_pool_new(kind, 2);
    assert_non_null(p);
    tk_future *f = tk_pool_submit(p, add_task, tk_args_of("i", 40), tk_kwargs_of("plus:i", 2));
    assert_non_null(f);
    const tk_args *r = NULL;
    ASSERT_RC(tk_future_result(f, 20.0, &r), 0);
    assert_non_null(r);
    assert_int_equal(res_int(r), 42);
    const char *s;
    ASSERT_RC(tk_args_get_str(r, 1, &s), 0);
    assert_string_equal(s, "done");
    assert_true(tk_future_done(f));
    assert_int_equal(tk_future_status(f), 0);
    ASSERT_RC(tk_future_wait(f, 0), 0);
    assert_string_equal(tk_future_error(f), "");

    /* failing task */
    int64_t v;
    tk_args *e = tk_args_new();
    (void)tk_args_get_int(e, 99, &v);
    char msg[256];
    snprintf(msg, sizeof msg, "%s", tk_last_error());
    tk_args_free(e);
    tk_future *g = tk_pool_submit(p, fail_task, tk_args_new(), NULL);
    r = (const tk_args *)&r;
    ASSERT_RC(tk_future_result(g, 20.0, &r), TK_ETASK);
    assert_null(r);
    assert_int_equal(tk_future_status(g), 3);
    assert_true(tk_future_done(g));
    if (strstr(tk_future_error(g), msg) == NULL)
        fail_msg("tk_future_error is \"%s\", expected the task's \"%s\"", tk_future_error(g),
                 msg);
    tk_future_free(g);
    tk_pool_free(p);
    /* futures outlive the pool */
    ASSERT_RC(tk_future_result(f, 0, &r), 0);
    assert_int_equal(res_int(r), 42);
    tk_future_free(f);
}

static void thread_pool_submit(void **state) { (void)state; submit_and_result(TK_POOL_THREADS); }
static void process_pool_submit(void **state) { (void)state; submit_and_result(TK_POOL_PROCESSES); }

static void map_in_order(tk_pool_kind kind)
{
    tk_pool *p = tk_pool_new(kind, 3);
    enum { N = 12 };
    tk_args *items[N];
    tk_args *results[N];
    for (int i = 0; i < N; i++)
        items[i] = tk_args_of("dl", (double)((N - i) % 4) * 0.02, (int64_t)i);
    items[5] = NULL; /* an empty bag: sleeps 0, id 0 */
    ASSERT_RC(tk_pool_map(p, sleep_task, items, N, results), 0);
    for (int i = 0; i < N; i++) {
        assert_non_null(results[i]);
        assert_int_equal(res_int(results[i]), i == 5 ? 0 : i);
        tk_args_free(results[i]);
    }
    /* failures: the first in input order; failed items get NULL */
    tk_args *it2[4];
    tk_args *res2[4];
    for (int i = 0; i < 4; i++)
        it2[i] = tk_args_of("i", i);
    ASSERT_RC(tk_pool_map_ex(p, add_task, it2, 4, res2, 2), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(res_int(res2[i]), i);
        tk_args_free(res2[i]);
    }
    tk_args *it3[3] = {tk_args_of("i", 1), tk_args_new(), tk_args_of("i", 3)};
    tk_args *res3[3];
    /* sleep_task returns 0; fail_task returns 3: mix through a shim */
    ASSERT_RC(tk_pool_map(p, fail_task, it3, 3, res3), TK_ETASK);
    for (int i = 0; i < 3; i++)
        assert_null(res3[i]);
    tk_pool_free(p);
}

static void thread_pool_map(void **state) { (void)state; map_in_order(TK_POOL_THREADS); }
static void process_pool_map(void **state) { (void)state; map_in_order(TK_POOL_PROCESSES); }

static void shutdown_refuses_work(void **state)
{
    (void)state;
    tk_pool *p = tk_pool_new(TK_POOL_THREADS, 1);
    tk_future *run = tk_pool_submit(p, sleep_task, tk_args_of("dl", 0.4, (int64_t)1),
                                    tk_kwargs_of("started:?", 1));
    tk_future *pend = tk_pool_submit(p, sleep_task, tk_args_of("dl", 0.0, (int64_t)2), NULL);
    wait_started();
    ASSERT_RC(tk_pool_shutdown(p, true, true), 0);
    /* the running one finished, the pending one was cancelled */
    ASSERT_RC(tk_future_result(run, 0, NULL), 0);
    assert_true(tk_future_done(pend));
    assert_int_equal(tk_future_status(pend), TK_ECANCELED);
    const tk_args *r = (const tk_args *)&r;
    ASSERT_RC(tk_future_result(pend, 0, &r), TK_ECANCELED);
    assert_null(r);
    assert_null(tk_pool_submit(p, add_task, tk_args_of("i", 1), NULL));
    assert_int_equal(tk_last_error_code(), TK_ESTATE);
    ASSERT_MSG("cannot schedule new futures after shutdown");
    tk_args *items[1] = {tk_args_of("i", 1)};
    tk_args *res[1];
    ASSERT_RC(tk_pool_map(p, add_task, items, 1, res), TK_ESTATE);
    ASSERT_RC(tk_pool_shutdown(p, true, false), 0); /* again: harmless */
    tk_future_free(run);
    tk_future_free(pend);
    tk_pool_free(p);

    tk_pool *pp = tk_pool_new(TK_POOL_PROCESSES, 1);
    ASSERT_RC(tk_pool_shutdown(pp, true, false), 0);
    assert_null(tk_pool_submit(pp, add_task, NULL, NULL));
    ASSERT_MSG("cannot schedule new futures after shutdown");
    tk_pool_free(pp);
}

static void cancel_and_wait_any(void **state)
{
    (void)state;
    tk_pool *p = tk_pool_new(TK_POOL_THREADS, 1);
    tk_future *fs[3];
    fs[0] = tk_pool_submit(p, sleep_task, tk_args_of("dl", 0.5, (int64_t)0),
                           tk_kwargs_of("started:?", 1));
    fs[1] = tk_pool_submit(p, sleep_task, tk_args_of("dl", 0.0, (int64_t)1), NULL);
    fs[2] = tk_pool_submit(p, sleep_task, tk_args_of("dl", 0.0, (int64_t)2), NULL);
    wait_started();
    assert_false(tk_future_done(fs[0]));
    assert_int_equal(tk_future_status(fs[0]), TK_EXITCODE_NONE);
    assert_false(tk_future_cancel(fs[0])); /* running */
    assert_true(tk_future_cancel(fs[1]));  /* pending */
    assert_true(tk_future_cancel(fs[1]));  /* already cancelled */
    assert_true(tk_future_done(fs[1]));
    assert_int_equal(tk_future_status(fs[1]), TK_ECANCELED);
    ASSERT_RC(tk_future_wait_any(fs, 0, 0), TK_EINVAL);
    /* lowest index of a done one */
    ASSERT_RC(tk_future_wait_any(fs, 3, 0), 1);
    tk_future *only[2] = {NULL, fs[0]};
    ASSERT_RC(tk_future_wait_any(only, 2, 0), TK_ETIMEDOUT);
    ASSERT_RC(tk_future_wait_any(only, 2, 10.0), 1);
    ASSERT_RC(tk_future_wait(fs[2], 10.0), 0);
    assert_false(tk_future_cancel(fs[2])); /* finished */
    tk_future *none[2] = {NULL, NULL};
    ASSERT_RC(tk_future_wait_any(none, 2, 0), TK_EINVAL);
    for (int i = 0; i < 3; i++)
        tk_future_free(fs[i]);
    tk_pool_free(p);
}

static pthread_t main_tid;
static atomic_int cb_calls;
static atomic_int cb_on_main;

static void on_done(tk_future *f, void *ud)
{
    (void)f;
    atomic_fetch_add(&cb_calls, 1);
    if (pthread_equal(pthread_self(), main_tid))
        atomic_fetch_add(&cb_on_main, 1);
    *(int *)ud += 1;
}

static void done_callbacks(void **state)
{
    (void)state;
    main_tid = pthread_self();
    atomic_store(&cb_calls, 0);
    atomic_store(&cb_on_main, 0);
    tk_pool *p = tk_pool_new(TK_POOL_THREADS, 1);
    tk_future *f = tk_pool_submit(p, sleep_task, tk_args_of("dl", 0.3, (int64_t)0), NULL);
    int ud1 = 0, ud2 = 0;
    ASSERT_RC(tk_future_add_done_callback(f, on_done, &ud1), 0);
    ASSERT_RC(tk_future_wait(f, 10.0), 0);
    for (int i = 0; i < 200 && atomic_load(&cb_calls) < 1; i++)
        conf_sleep(0.01);
    assert_int_equal(atomic_load(&cb_calls), 1);
    assert_int_equal(atomic_load(&cb_on_main), 0); /* ran on the worker */
    /* already done: at once, in the caller */
    ASSERT_RC(tk_future_add_done_callback(f, on_done, &ud2), 0);
    assert_int_equal(ud2, 1);
    assert_int_equal(atomic_load(&cb_on_main), 1);
    /* a cancelled future: the callback runs in the canceller */
    tk_future *blocker = tk_pool_submit(p, sleep_task, tk_args_of("dl", 0.3, (int64_t)0), NULL);
    tk_future *pend = tk_pool_submit(p, sleep_task, tk_args_of("dl", 0.0, (int64_t)0), NULL);
    int ud3 = 0;
    ASSERT_RC(tk_future_add_done_callback(pend, on_done, &ud3), 0);
    assert_true(tk_future_cancel(pend));
    assert_int_equal(ud3, 1);
    tk_future_free(pend);
    tk_future_free(blocker);
    tk_future_free(f);
    tk_pool_free(p);
}

static tk_pool *g_pool;
static int shutdown_inside(const tk_args *a, const tk_kwargs *k, tk_args *res)
{
    (void)a;
    (void)k;
    tk_args_add_int(res, tk_pool_shutdown(g_pool, true, false));
    return 0;
}

static void shutdown_from_inside_is_edeadlk(void **state)
{
    (void)state;
    g_pool = tk_pool_new(TK_POOL_THREADS, 1);
    tk_future *f = tk_pool_submit(g_pool, shutdown_inside, NULL, NULL);
    const tk_args *r;
    ASSERT_RC(tk_future_result(f, 10.0, &r), 0);
    ASSERT_RC((int)res_int(r), TK_EDEADLK);
    tk_future_free(f);
    tk_pool_free(g_pool);
}

static int stop_aware_task(const tk_args *a, const tk_kwargs *k, tk_args *res)
{
    (void)a;
    (void)k;
    tk_event_set(g_started);
    int rc = tk_sleep(20.0);
    tk_args_add_bool(res, tk_stop_requested());
    return rc == TK_ECANCELED ? 5 : 0;
}

static void interrupt_running(void **state)
{
    (void)state;
    /* thread pool: a stop for that task only; the worker carries on */
    tk_pool *p = tk_pool_new(TK_POOL_THREADS, 1);
    tk_future *f = tk_pool_submit(p, stop_aware_task, NULL, NULL);
    tk_future *next = tk_pool_submit(p, add_task, tk_args_of("i", 8), NULL);
    ASSERT_RC(tk_future_interrupt(next), TK_ESTATE); /* pending */
    wait_started();
    double t0 = conf_now();
    ASSERT_RC(tk_future_interrupt(f), 0);
    ASSERT_RC(tk_future_wait(f, 10.0), 0);
    assert_true(conf_now() - t0 < 10.0);
    assert_int_equal(tk_future_status(f), 5);
    const tk_args *r;
    ASSERT_RC(tk_future_result(next, 10.0, &r), 0);
    assert_int_equal(res_int(r), 8);
    ASSERT_RC(tk_future_interrupt(next), TK_ESTATE); /* finished */
    tk_future_free(f);
    tk_future_free(next);
    tk_pool_free(p);

    /* process pool: the worker is killed and replaced; TK_ECANCELED */
    p = tk_pool_new(TK_POOL_PROCESSES, 1);
    f = tk_pool_submit(p, sleep_task, tk_args_of("dl", 20.0, (int64_t)0), NULL);
    for (int i = 0; i < 100; i++) {
        if (tk_future_interrupt(f) == 0)
            break;
        conf_sleep(0.05);
    }
    ASSERT_RC(tk_future_result(f, 10.0, NULL), TK_ECANCELED);
    assert_int_equal(tk_future_status(f), TK_ECANCELED);
    next = tk_pool_submit(p, add_task, tk_args_of("i", 9), NULL);
    ASSERT_RC(tk_future_result(next, 20.0, &r), 0);
    assert_int_equal(res_int(r), 9);
    tk_future_free(f);
    tk_future_free(next);
    tk_pool_free(p);
}

static int die_task(const tk_args *a, const tk_kwargs *k, tk_args *res)
{
    (void)a;
    (void)k;
    (void)res;
    kill(getpid(), SIGKILL);
    return 0;
}

static void process_pool_worker_death(void **state)
{
    (void)state;
    tk_pool *p = tk_pool_new(TK_POOL_PROCESSES, 1);
    tk_future *f = tk_pool_submit(p, die_task, NULL, NULL);
    ASSERT_RC(tk_future_result(f, 20.0, NULL), TK_EBROKEN);
    assert_int_equal(tk_future_status(f), TK_EBROKEN);
    assert_true(tk_future_done(f));
    tk_future *g = tk_pool_submit(p, add_task, tk_args_of("i", 5), NULL);
    const tk_args *r;
    ASSERT_RC(tk_future_result(g, 20.0, &r), 0);
    assert_int_equal(res_int(r), 5);
    /* pointers cannot cross to a worker process */
    assert_null(tk_pool_submit(p, add_task, tk_args_of("p", (void *)p), NULL));
    assert_int_equal(tk_last_error_code(), TK_ETYPE);
    tk_future_free(f);
    tk_future_free(g);
    tk_pool_free(p);
}

static void workers_are_internal(void **state)
{
    (void)state;
    size_t threads = tk_active_count();
    size_t children = tk_active_children(NULL, 0);
    tk_pool *tp = tk_pool_new(TK_POOL_THREADS, 3);
    tk_pool *pp = tk_pool_new(TK_POOL_PROCESSES, 2);
    tk_future *a = tk_pool_submit(tp, add_task, tk_args_of("i", 1), NULL);
    tk_future *b = tk_pool_submit(pp, add_task, tk_args_of("i", 1), NULL);
    ASSERT_RC(tk_future_wait(a, 20.0), 0);
    ASSERT_RC(tk_future_wait(b, 20.0), 0);
    assert_int_equal(tk_active_count(), threads);
    assert_int_equal(tk_thread_enumerate(NULL, 0), threads);
    assert_int_equal(tk_active_children(NULL, 0), children);
    tk_future_free(a);
    tk_future_free(b);
    tk_pool_free(tp);
    tk_pool_free(pp);
}

static void bad_arguments(void **state)
{
    (void)state;
    assert_null(tk_pool_new(TK_POOL_THREADS, -1));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    assert_null(tk_pool_new((tk_pool_kind)7, 1));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    tk_pool *p = tk_pool_new(TK_POOL_THREADS, 0); /* tk_cpu_count() workers */
    assert_non_null(p);
    assert_null(tk_pool_submit(p, NULL, NULL, NULL));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    tk_pool_free(p);
}

static pthread_key_t init_key;
static atomic_int init_calls;

static int initializer(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    int64_t v = 0;
    tk_args_get_int(a, 0, &v);
    atomic_fetch_add(&init_calls, 1);
    pthread_setspecific(init_key, (void *)(intptr_t)v);
    return 0;
}

static int check_init(const tk_args *a, const tk_kwargs *k, tk_args *res)
{
    (void)a;
    (void)k;
    tk_args_add_int(res, (int64_t)(intptr_t)pthread_getspecific(init_key));
    conf_sleep(0.05);
    return 0;
}

static void initializer_runs_first(void **state)
{
    (void)state;
    pthread_key_create(&init_key, NULL);
    atomic_store(&init_calls, 0);
    tk_pool *p = tk_pool_new_ex(TK_POOL_THREADS, 2, initializer, tk_args_of("i", 31));
    assert_non_null(p);
    tk_future *fs[6];
    for (int i = 0; i < 6; i++)
        fs[i] = tk_pool_submit(p, check_init, NULL, NULL);
    for (int i = 0; i < 6; i++) {
        const tk_args *r;
        ASSERT_RC(tk_future_result(fs[i], 10.0, &r), 0);
        assert_int_equal(res_int(r), 31);
        tk_future_free(fs[i]);
    }
    tk_pool_free(p);
    assert_true(atomic_load(&init_calls) >= 1 && atomic_load(&init_calls) <= 2);
}

int main(void)
{
    CONF_MAIN_GUARD();
    g_started = tk_event_new(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(thread_pool_submit),
        cmocka_unit_test(process_pool_submit),
        cmocka_unit_test(thread_pool_map),
        cmocka_unit_test(process_pool_map),
        cmocka_unit_test(shutdown_refuses_work),
        cmocka_unit_test(cancel_and_wait_any),
        cmocka_unit_test(done_callbacks),
        cmocka_unit_test(shutdown_from_inside_is_edeadlk),
        cmocka_unit_test(interrupt_running),
        cmocka_unit_test(process_pool_worker_death),
        cmocka_unit_test(workers_are_internal),
        cmocka_unit_test(bad_arguments),
        cmocka_unit_test(initializer_runs_first),
    };
    return cmocka_run_group_tests_name("conformance: §6 pools", tests, NULL, NULL);
}
