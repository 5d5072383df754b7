/* §0 conventions: error codes, names, last error (per thread), version,
 * timeouts (TK_FOREVER/INFINITY/0/negative/NaN/huge), *_free(NULL),
 * ownership of bags on failure, NULLed output handles, unknown flag bits. */
#include "conf.h"

#include <float.h>
#include <malloc.h>
#include <pthread.h>

static void errno_codes(void **state)
{
    (void)state;
    assert_int_equal(TK_ENOMEM, -ENOMEM);
    assert_int_equal(TK_EINVAL, -EINVAL);
    assert_int_equal(TK_ETIMEDOUT, -ETIMEDOUT);
    assert_int_equal(TK_EAGAIN, -EAGAIN);
    assert_int_equal(TK_EPERM, -EPERM);
    assert_int_equal(TK_ECANCELED, -ECANCELED);
    assert_int_equal(TK_EOVERFLOW, -EOVERFLOW);
    assert_int_equal(TK_EDEADLK, -EDEADLK);
    assert_int_equal(TK_ECHILD, -ECHILD);
    assert_int_equal(TK_OWNERDEAD, 1);
}

static const int own_codes[] = {TK_ESTATE, TK_ETYPE,  TK_EINDEX, TK_EKEY,
                                TK_EARGS,  TK_EBROKEN, TK_EEMPTY, TK_EFULL,
                                TK_ECLOSED, TK_EDECODE, TK_ETASK};
static const char *own_names[] = {"TK_ESTATE", "TK_ETYPE",  "TK_EINDEX", "TK_EKEY",
                                  "TK_EARGS",  "TK_EBROKEN", "TK_EEMPTY", "TK_EFULL",
                                  "TK_ECLOSED", "TK_EDECODE", "TK_ETASK"};
#define N_OWN (sizeof own_codes / sizeof own_codes[0])

static void own_codes_outside_errno_range(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_OWN; i++) {
        assert_true(own_codes[i] < 0);
        /* errno values are below 4096 on every system libtaskkit targets */
        assert_true(own_codes[i] < -4095);
        for (size_t j = 0; j < i; j++)
            assert_int_not_equal(own_codes[i], own_codes[j]);
    }
}

static void strerror_and_names(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_OWN; i++) {
        assert_non_null(tk_strerror(own_codes[i]));
        assert_string_equal(tk_err_name(own_codes[i]), own_names[i]);
    }
    const int errs[] = {TK_ENOMEM, TK_EINVAL, TK_ETIMEDOUT, TK_EAGAIN, TK_EPERM,
                        TK_ECANCELED, TK_EOVERFLOW, TK_EDEADLK, TK_ECHILD};
    const char *names[] = {"TK_ENOMEM", "TK_EINVAL", "TK_ETIMEDOUT", "TK_EAGAIN",
                           "TK_EPERM", "TK_ECANCELED", "TK_EOVERFLOW", "TK_EDEADLK",
                           "TK_ECHILD"};
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        assert_non_null(tk_strerror(errs[i]));
        assert_true(strlen(tk_strerror(errs[i])) > 0);
        assert_string_equal(tk_err_name(errs[i]), names[i]);
    }
    /* any code, known or not, is named; never NULL */
    const int odd[] = {0, 1, 2, 42, -1, -4095, -4999, -5000, -5012, -6000, -99999,
                       INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        assert_non_null(tk_strerror(odd[i]));
        assert_non_null(tk_err_name(odd[i]));
    }
    assert_string_equal(tk_err_name(TK_OWNERDEAD), "TK_OWNERDEAD");
}

static void version(void **state)
{
    (void)state;
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", TK_VERSION_MAJOR, TK_VERSION_MINOR,
             TK_VERSION_PATCH);
    assert_non_null(tk_version_string());
    assert_string_equal(tk_version_string(), want);
}

static void last_error_set_by_failure(void **state)
{
    (void)state;
    assert_non_null(tk_last_error());
    tk_args *a = tk_args_of("i", 1);
    int64_t v = 0;
    ASSERT_RC(tk_args_get_int(a, 5, &v), TK_EINDEX);
    assert_non_null(tk_last_error());
    assert_true(strlen(tk_last_error()) > 0);
    assert_int_equal(tk_last_error_code(), TK_EINDEX);
    /* a constructor that fails sets the code too */
    assert_null(tk_lock_new(0x80u));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    assert_non_null(tk_last_error());
    tk_args_free(a);
}

struct other_res {
    const char *msg;
    char copy[256];
    int code;
};

static void *other_thread(void *p)
{
    struct other_res *r = p;
    r->msg = tk_last_error();
    r->code = tk_last_error_code();
    snprintf(r->copy, sizeof r->copy, "%s", r->msg ? r->msg : "(null)");
    /* now fail here with a different code */
    tk_args *a = tk_args_of("s", "x");
    int64_t v;
    (void)tk_args_get_int(a, 0, &v); /* TK_ETYPE */
    tk_args_free(a);
    return NULL;
}

static void last_error_per_thread(void **state)
{
    (void)state;
    int64_t v;
    ASSERT_RC(tk_args_get_int(NULL, 3, &v), TK_EINDEX);
    char mine[256];
    snprintf(mine, sizeof mine, "%s", tk_last_error());

    struct other_res r;
    memset(&r, 0, sizeof r);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, other_thread, &r), 0);
    pthread_join(th, NULL);
    /* the fresh thread saw no failure: never NULL, code 0 */
    assert_non_null(r.msg);
    assert_int_equal(r.code, 0);
    assert_string_not_equal(r.copy, mine);
    /* and its own failure did not touch ours */
    assert_int_equal(tk_last_error_code(), TK_EINDEX);
    assert_string_equal(tk_last_error(), mine);
}

/* ---------------------------------------------------------------- timeouts */

static tk_event *g_ev;

static void *set_later(void *p)
{
    conf_sleep(*(double *)p);
    tk_event_set(g_ev);
    return NULL;
}

static void timeout_blocking_values(void **state)
{
    (void)state;
    const double blocking[] = {TK_FOREVER, INFINITY, 1e300, DBL_MAX, 1e18, 1e9};
    for (size_t i = 0; i < sizeof blocking / sizeof blocking[0]; i++) {
        g_ev = tk_event_new(0);
        assert_non_null(g_ev);
        double delay = 0.15;
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, set_later, &delay), 0);
        double t0 = conf_now();
        int rc = tk_event_wait(g_ev, blocking[i]);
        double dt = conf_now() - t0;
        pthread_join(th, NULL);
        if (rc != 0)
            fail_msg("tk_event_wait(e, %g) = %d (%s): expected to block until set",
                     blocking[i], rc, tk_err_name(rc));
        assert_true(dt >= 0.1);
        tk_event_free(g_ev);
    }
}

static void timeout_polling_values(void **state)
{
    (void)state;
    const double polling[] = {0.0, -0.0, -0.5, -2.0, -1e-9, -1e300, -INFINITY};
    tk_event *e = tk_event_new(0);
    tk_lock *l = tk_lock_new(0);
    tk_sem *s = tk_sem_new(0, 0);
    tk_queue *q = tk_queue_new(0, 0);
    assert_non_null(e);
    assert_non_null(l);
    assert_non_null(s);
    assert_non_null(q);
    for (size_t i = 0; i < sizeof polling / sizeof polling[0]; i++) {
        double t = polling[i];
        double t0 = conf_now();
        ASSERT_RC(tk_event_wait(e, t), TK_ETIMEDOUT);
        ASSERT_RC(tk_sem_acquire(s, t), TK_ETIMEDOUT);
        tk_args *item = (tk_args *)&item;
        ASSERT_RC(tk_queue_get(q, &item, t), TK_EEMPTY);
        assert_null(item);
        ASSERT_RC(tk_sleep(t), 0);
        assert_true(conf_now() - t0 < 2.0);
    }
    /* a lock held by the caller: polling times out, does not deadlock */
    ASSERT_RC(tk_lock_acquire(l, 0), 0);
    for (size_t i = 0; i < sizeof polling / sizeof polling[0]; i++)
        ASSERT_RC(tk_lock_acquire(l, polling[i]), TK_ETIMEDOUT);
    ASSERT_RC(tk_lock_release(l), 0);
    tk_event_free(e);
    tk_lock_free(l);
    tk_sem_free(s);
    tk_queue_free(q);
}

static int noop_target(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    return 0;
}

static int noop_task(const tk_args *a, const tk_kwargs *k, tk_args *r)
{
    (void)a;
    (void)k;
    (void)r;
    return 0;
}

static void timeout_nan_is_einval(void **state)
{
    (void)state;
    tk_event *e = tk_event_new(0);
    tk_lock *l = tk_lock_new(0);
    tk_rlock *rl = tk_rlock_new(0);
    tk_sem *s = tk_sem_new(1, 0);
    tk_cond *c = tk_cond_new(0);
    tk_barrier *b = tk_barrier_new(1, 0);
    tk_queue *q = tk_queue_new(0, 0);
    tk_thread *t = tk_thread_new(noop_target, NULL, NULL);
    tk_process *p = tk_process_new(noop_target, NULL, NULL);
    tk_pool *pool = tk_pool_new(TK_POOL_THREADS, 1);
    assert_non_null(pool);
    tk_future *f = tk_pool_submit(pool, noop_task, NULL, NULL);
    assert_non_null(f);
    tk_conn *ca, *cb;
    ASSERT_RC(tk_pipe_new(&ca, &cb, true), 0);

    ASSERT_RC(tk_event_wait(e, NAN), TK_EINVAL);
    ASSERT_RC(tk_lock_acquire(l, NAN), TK_EINVAL);
    assert_false(tk_lock_locked(l));
    ASSERT_RC(tk_rlock_acquire(rl, NAN), TK_EINVAL);
    ASSERT_RC(tk_sem_acquire(s, NAN), TK_EINVAL);
    ASSERT_RC(tk_cond_acquire(c, NAN), TK_EINVAL);
    ASSERT_RC(tk_cond_acquire(c, 0), 0);
    ASSERT_RC(tk_cond_wait(c, NAN), TK_EINVAL);
    ASSERT_RC(tk_cond_release(c), 0);
    ASSERT_RC(tk_barrier_wait(b, NAN), TK_EINVAL);
    tk_args *item = tk_args_new();
    ASSERT_RC(tk_queue_put(q, item, NAN), TK_EINVAL);
    tk_args_free(item); /* still ours: the put failed */
    tk_args *got = (tk_args *)&got;
    ASSERT_RC(tk_queue_get(q, &got, NAN), TK_EINVAL);
    ASSERT_RC(tk_queue_join(q, NAN), TK_EINVAL);
    ASSERT_RC(tk_sleep(NAN), TK_EINVAL);
    ASSERT_RC(tk_thread_start(t), 0);
    ASSERT_RC(tk_thread_join(t, NAN), TK_EINVAL);
    ASSERT_RC(tk_thread_join(t, TK_FOREVER), 0);
    ASSERT_RC(tk_process_start(p), 0);
    ASSERT_RC(tk_process_join(p, NAN), TK_EINVAL);
    ASSERT_RC(tk_process_join(p, TK_FOREVER), 0);
    tk_process *ps[1] = {p};
    ASSERT_RC(tk_process_wait_any(ps, 1, NAN), TK_EINVAL);
    ASSERT_RC(tk_future_wait(f, NAN), TK_EINVAL);
    const tk_args *res = (const tk_args *)&res;
    ASSERT_RC(tk_future_result(f, NAN, &res), TK_EINVAL);
    tk_future *fs[1] = {f};
    ASSERT_RC(tk_future_wait_any(fs, 1, NAN), TK_EINVAL);
    tk_args *msg = (tk_args *)&msg;
    ASSERT_RC(tk_conn_recv(ca, &msg, NAN), TK_EINVAL);
    ASSERT_RC(tk_conn_poll(ca, NAN), TK_EINVAL);
    assert_null(tk_timer_new(NAN, noop_target, NULL, NULL));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);

    tk_conn_close(ca);
    tk_conn_close(cb);
    tk_future_free(f);
    tk_pool_free(pool);
    tk_process_free(p);
    tk_thread_free(t);
    tk_queue_free(q);
    tk_barrier_free(b);
    tk_cond_free(c);
    tk_sem_free(s);
    tk_rlock_free(rl);
    tk_lock_free(l);
    tk_event_free(e);
}

static void free_null_is_noop(void **state)
{
    (void)state;
    tk_args_free(NULL);
    tk_kwargs_free(NULL);
    tk_process_free(NULL);
    tk_thread_free(NULL);
    tk_lock_free(NULL);
    tk_rlock_free(NULL);
    tk_cond_free(NULL);
    tk_sem_free(NULL);
    tk_event_free(NULL);
    tk_barrier_free(NULL);
    tk_queue_free(NULL);
    tk_pool_free(NULL);
    tk_future_free(NULL);
    tk_conn_close(NULL);
    tk_shm_free(NULL);
}

static void unknown_flag_bits(void **state)
{
    (void)state;
    const unsigned bad[] = {4u, 8u, 0x100u, 0x80000000u};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned f = bad[i];
        assert_null(tk_lock_new(f));
        assert_int_equal(tk_last_error_code(), TK_EINVAL);
        assert_null(tk_rlock_new(f));
        assert_int_equal(tk_last_error_code(), TK_EINVAL);
        assert_null(tk_cond_new(f));
        assert_int_equal(tk_last_error_code(), TK_EINVAL);
        assert_null(tk_sem_new(1, f));
        assert_int_equal(tk_last_error_code(), TK_EINVAL);
        assert_null(tk_event_new(f));
        assert_int_equal(tk_last_error_code(), TK_EINVAL);
        assert_null(tk_barrier_new(2, f));
        assert_int_equal(tk_last_error_code(), TK_EINVAL);
        assert_null(tk_queue_new(0, f));
        assert_int_equal(tk_last_error_code(), TK_EINVAL);
        assert_null(tk_queue_new_ex(0, f, 0));
        assert_int_equal(tk_last_error_code(), TK_EINVAL);
    }
    /* TK_BOUNDED is for semaphores only */
    assert_null(tk_lock_new(TK_BOUNDED));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
}

/* Ownership: constructors take the bags also when they fail. Observed
 * through the heap: 3000 failing constructions must not grow it by the
 * size of the bags they were handed. */
static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static void constructors_take_bags_on_failure(void **state)
{
    (void)state;
    static char big[600];
    memset(big, 'x', sizeof big - 1);
    /* warm up (per-thread last-error buffers and the like) */
    for (int i = 0; i < 10; i++) {
        assert_null(tk_thread_new(NULL, tk_args_of("s", big), tk_kwargs_of("k:s", big)));
        assert_null(tk_process_new(NULL, tk_args_of("s", big), tk_kwargs_of("k:s", big)));
        assert_null(tk_timer_new(NAN, noop_target, tk_args_of("s", big), tk_kwargs_of("k:s", big)));
    }
    size_t before = heap_in_use();
    for (int i = 0; i < 1000; i++) {
        assert_null(tk_thread_new(NULL, tk_args_of("s", big), tk_kwargs_of("k:s", big)));
        assert_null(tk_process_new(NULL, tk_args_of("s", big), tk_kwargs_of("k:s", big)));
        assert_null(tk_timer_new(NAN, noop_target, tk_args_of("s", big), tk_kwargs_of("k:s", big)));
    }
    size_t after = heap_in_use();
    /* a leak would be >= 6000 bags of > 600 bytes: 3.6 MB */
    if (after > before + 512 * 1024)
        fail_msg("heap grew by %zu bytes over 3000 failing constructors", after - before);
}

static void submit_takes_bags_on_failure(void **state)
{
    (void)state;
    static char big[600];
    memset(big, 'y', sizeof big - 1);
    tk_pool *pool = tk_pool_new(TK_POOL_THREADS, 1);
    assert_non_null(pool);
    ASSERT_RC(tk_pool_shutdown(pool, true, false), 0);
    for (int i = 0; i < 10; i++)
        assert_null(tk_pool_submit(pool, noop_task, tk_args_of("s", big), tk_kwargs_of("k:s", big)));
    size_t before = heap_in_use();
    for (int i = 0; i < 2000; i++)
        assert_null(tk_pool_submit(pool, noop_task, tk_args_of("s", big), tk_kwargs_of("k:s", big)));
    assert_int_equal(tk_last_error_code(), TK_ESTATE);
    size_t after = heap_in_use();
    if (after > before + 512 * 1024)
        fail_msg("heap grew by %zu bytes over 2000 refused submits", after - before);
    tk_pool_free(pool);
}

int main(void)
{
    CONF_MAIN_GUARD();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(errno_codes),
        cmocka_unit_test(own_codes_outside_errno_range),
        cmocka_unit_test(strerror_and_names),
        cmocka_unit_test(version),
        cmocka_unit_test(last_error_set_by_failure),
        cmocka_unit_test(last_error_per_thread),
        cmocka_unit_test(timeout_blocking_values),
        cmocka_unit_test(timeout_polling_values),
        cmocka_unit_test(timeout_nan_is_einval),
        cmocka_unit_test(free_null_is_noop),
        cmocka_unit_test(unknown_flag_bits),
        cmocka_unit_test(constructors_take_bags_on_failure),
        cmocka_unit_test(submit_takes_bags_on_failure),
    };
    return cmocka_run_group_tests_name("conformance: §0 conventions", tests, NULL, NULL);
}
