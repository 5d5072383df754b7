/* test_pool.c - tk_pool and tk_future: submit/result, failures with their
 * text, map in order (also chunked), cancel, shutdown (wait, cancel_futures,
 * refusing new work), interrupt, done-callbacks, wait_any, initializers,
 * worker names, and process pools: encodings, a crashing worker replaced,
 * results and errors carried back. */
#include "common/testutil.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "internal.h"
#include "taskkit.h"

static int square(const tk_args *a, const tk_kwargs *kw, tk_args *res)
{
    (void)kw;
    int64_t v = 0;
    if (tk_args_get_int(a, 0, &v) < 0)
        return -1;
    return tk_args_add_int(res, v * v);
}

static int nothing(const tk_args *a, const tk_kwargs *kw, tk_args *res)
{
    (void)a;
    (void)kw;
    (void)res;
    return 0;
}

static int fail_odd(const tk_args *a, const tk_kwargs *kw, tk_args *res)
{
    (void)kw;
    int64_t v = 0;
    tk_args_get_int(a, 0, &v);
    if (v % 2)
        return tk__error(TK_EINVAL, "odd value %d", (int)v);
    return tk_args_add_int(res, v);
}

static int sleeper(const tk_args *a, const tk_kwargs *kw, tk_args *res)
{
    (void)kw;
    (void)res;
    double s = 0;
    tk_args_get_float(a, 0, &s);
    /* Polls the per-task stop, so a thread-pool interrupt ends it early. */
    double end = tt_now() + s;
    while (tt_now() < end) {
        if (tk__stop_pending())
            return tk__error(TK_ECANCELED, "stopped");
        usleep(1000);
    }
    return 0;
}

static int crash_on_3(const tk_args *a, const tk_kwargs *kw, tk_args *res)
{
    (void)kw;
    int64_t v = 0;
    tk_args_get_int(a, 0, &v);
    if (v == 3)
        abort();
    return tk_args_add_int(res, v);
}

static int kwarg_task(const tk_args *a, const tk_kwargs *kw, tk_args *res)
{
    (void)a;
    const char *s = NULL;
    if (tk_kwargs_get_str(kw, "name", &s) < 0)
        return -1;
    return tk_args_add_str(res, s);
}

static int my_name(const tk_args *a, const tk_kwargs *kw, tk_args *res)
{
    (void)a;
    (void)kw;
    char name[32] = {0};
    prctl(PR_GET_NAME, name);
    return tk_args_add_str(res, name);
}

static int64_t result_int(tk_future *f)
{
    const tk_args *r;
    assert_int_equal(tk_future_result(f, 30.0, &r), 0);
    int64_t v = -1;
    assert_int_equal(tk_args_get_int(r, 0, &v), 0);
    return v;
}

static const tk_pool_kind kinds[] = {TK_POOL_THREADS, TK_POOL_PROCESSES};

/* ---------------------------------------------------------------- basics */

static void submit_and_result(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        tk_pool *p = tk_pool_new(kinds[k], 2);
        assert_non_null(p);
        tk_future *f = tk_pool_submit(p, square, tk_args_of("i", 7), NULL);
        assert_int_equal(result_int(f), 49);
        assert_true(tk_future_done(f));
        assert_int_equal(tk_future_status(f), 0);
        assert_string_equal(tk_future_error(f), "");
        tk_future_free(f);
        f = tk_pool_submit(p, nothing, NULL, NULL);
        const tk_args *r;
        assert_int_equal(tk_future_result(f, 30.0, &r), 0);
        assert_int_equal(tk_args_len(r), 0);
        tk_future_free(f);
        f = tk_pool_submit(p, kwarg_task, NULL, tk_kwargs_of("name:s", "bob"));
        assert_int_equal(tk_future_result(f, 30.0, &r), 0);
        const char *s;
        assert_int_equal(tk_args_get_str(r, 0, &s), 0);
        assert_string_equal(s, "bob");
        tk_future_free(f);
        tk_pool_free(p);
    }
}

static void failure_carries_status_and_text(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        tk_pool *p = tk_pool_new(kinds[k], 1);
        tk_future *f = tk_pool_submit(p, fail_odd, tk_args_of("i", 3), NULL);
        const tk_args *r = (const tk_args *)1;
        assert_int_equal(tk_future_result(f, 30.0, &r), TK_ETASK);
        assert_null(r);
        assert_int_equal(tk_future_status(f), TK_EINVAL);
        assert_string_equal(tk_future_error(f), "odd value 3");
        assert_string_equal(tk_last_error(), "odd value 3");
        tk_future_free(f);
        tk_pool_free(p);
    }
}

static void misuse(void **state)
{
    (void)state;
    assert_null(tk_pool_new(7, 1));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    assert_null(tk_pool_new(TK_POOL_THREADS, -1));
    assert_null(tk_pool_submit(NULL, square, tk_args_of("i", 1), NULL));
    assert_int_equal(tk_future_wait(NULL, 0), TK_EINVAL);
    assert_int_equal(tk_future_status(NULL), TK_EINVAL);
    assert_false(tk_future_done(NULL));
    assert_int_equal(tk_future_wait_any(NULL, 1, 0), TK_EINVAL);
    tk_pool_free(NULL);
    tk_future_free(NULL);
    tk_pool *p = tk_pool_new(TK_POOL_PROCESSES, 1);
    int x;
    assert_null(tk_pool_submit(p, square, tk_args_of("p", (void *)&x), NULL));
    assert_int_equal(tk_last_error_code(), TK_ETYPE);
    tk_pool_free(p);
}

static void map_in_order(void **state)
{
    (void)state;
    enum { N = 1000 };
    for (int k = 0; k < 2; k++) {
        for (size_t cs = 0; cs < 3; cs++) {
            tk_pool *p = tk_pool_new(kinds[k], 2);
            tk_args *items[N], *res[N];
            for (int i = 0; i < N; i++)
                items[i] = tk_args_of("i", i);
            int rc = cs == 1 ? tk_pool_map(p, square, items, N, res)
                             : tk_pool_map_ex(p, square, items, N, res, cs == 0 ? 0 : 37);
            assert_int_equal(rc, 0);
            for (int i = 0; i < N; i++) {
                int64_t v;
                assert_int_equal(tk_args_get_int(res[i], 0, &v), 0);
                assert_int_equal(v, (int64_t)i * i);
                tk_args_free(res[i]);
            }
            tk_pool_free(p);
        }
    }
}

/* A process pool's map decodes the results in the caller: running out of
 * memory there is the caller's TK_ENOMEM, not a failed item (TK_ETASK).
 * Every allocation of the call is failed in turn; some failures hit the
 * decoding of a later item after earlier ones were decoded. */
static void process_map_out_of_memory_is_enomem(void **state)
{
    (void)state;
    enum { N = 3 };
    tk_pool *p = tk_pool_new(TK_POOL_PROCESSES, 1);
    int partial = 0, failures = 0;
    for (long n = 1; n < 1000; n++) {
        tk_args *items[N], *res[N];
        for (int i = 0; i < N; i++)
            items[i] = tk_args_of("i", i + 1);
        tk__fault_set(n);
        int rc = tk_pool_map_ex(p, square, items, N, res, N);
        bool fired = tk__fault_allocs() >= n;
        tk__fault_set(0);
        int got = 0;
        for (int i = 0; i < N; i++) {
            int64_t v = 0;
            if (!res[i])
                continue;
            got++;
            assert_int_equal(tk_args_get_int(res[i], 0, &v), 0);
            assert_int_equal(v, (int64_t)(i + 1) * (i + 1));
            tk_args_free(res[i]);
        }
        if (rc == 0) {
            assert_int_equal(got, N);
            if (!fired)
                break;
            continue; /* the fault hit a thread of the pool, which recovered */
        }
        assert_int_equal(rc, TK_ENOMEM);
        assert_string_equal(tk_last_error(), "out of memory");
        failures++;
        partial += got > 0;
    }
    assert_true(failures > 0);
    assert_true(partial > 0); /* the decoding of a later item failed */
    tk_future *f = tk_pool_submit(p, square, tk_args_of("i", 7), NULL);
    assert_int_equal(result_int(f), 49);
    tk_future_free(f);
    tk_pool_free(p);
}

/* The process pool's result thread allocates too (a worker's send and
 * receive buffers, the result it decodes): every allocation of a submit
 * and its answer is failed in turn on a fresh pool. A send buffer that
 * cannot grow is retried (nothing else would wake the thread: the task
 * would hang), a result that cannot be decoded fails with TK_ENOMEM. */
static void process_pool_result_thread_out_of_memory(void **state)
{
    (void)state;
    int failed = 0;
    for (long n = 1; n < 1000; n++) {
        tk_pool *p = tk_pool_new(TK_POOL_PROCESSES, 1);
        assert_non_null(p);
        tk_args *a = tk_args_of("i", 5);
        tk__fault_set(n);
        tk_future *f = tk_pool_submit(p, square, a, NULL);
        const tk_args *r = NULL;
        int rc = f ? tk_future_result(f, 30.0, &r) : TK_ENOMEM;
        bool fired = tk__fault_allocs() >= n;
        tk__fault_set(0);
        int64_t v = 0;
        if (rc == 0) {
            assert_int_equal(tk_args_get_int(r, 0, &v), 0);
            assert_int_equal(v, 25);
        } else if (f) {
            assert_int_equal(rc, TK_ETASK);
            assert_int_equal(tk_future_status(f), TK_ENOMEM);
            failed++;
        }
        tk_future_free(f);
        f = tk_pool_submit(p, square, tk_args_of("i", 6), NULL);
        assert_int_equal(result_int(f), 36); /* the pool works on */
        tk_future_free(f);
        tk_pool_free(p);
        if (!fired)
            break;
    }
    assert_true(failed > 0); /* the decoding in the result thread was reached */
}

/* The caller may refill its items/results arrays the moment map returns:
 * no chunk of the previous call may touch them afterwards (a chunk's last
 * reference used to free "its" items in the refilled array). */
static void map_arrays_reused_at_once(void **state)
{
    (void)state;
    enum { N = 400 };
    static tk_args *items[N], *res[N];
    for (int k = 0; k < 2; k++) {
        tk_pool *p = tk_pool_new(kinds[k], 2);
        for (int round = 0; round < 12; round++) {
            size_t cs = round % 2 ? 1 : 50;
            for (int i = 0; i < N; i++)
                items[i] = tk_args_of("i", i + round);
            assert_int_equal(tk_pool_map_ex(p, square, items, N, res, cs), 0);
            for (int i = 0; i < N; i++) {
                int64_t v = -1;
                assert_non_null(res[i]);
                assert_int_equal(tk_args_get_int(res[i], 0, &v), 0);
                assert_int_equal(v, (int64_t)(i + round) * (i + round));
                tk_args_free(res[i]);
            }
        }
        tk_pool_free(p);
    }
}

/* Returns args[0] bytes, each byte its index mod 251. */
static int blob_of(const tk_args *a, const tk_kwargs *kw, tk_args *res)
{
    (void)kw;
    int64_t n = 0;
    if (tk_args_get_int(a, 0, &n) < 0)
        return -1;
    unsigned char *b = malloc((size_t)n + 1);
    for (int64_t i = 0; i < n; i++)
        b[i] = (unsigned char)(i % 251);
    int r = tk_args_add_bytes(res, b, (size_t)n);
    free(b);
    return r;
}

static void check_blob(const tk_args *r, int64_t n)
{
    const void *y;
    size_t ny;
    assert_int_equal(tk_args_get_bytes(r, 0, &y, &ny), 0);
    assert_int_equal(ny, (size_t)n);
    for (int64_t i = 0; i < n; i += 4099)
        assert_int_equal(((const unsigned char *)y)[i], i % 251);
    if (n > 0)
        assert_int_equal(((const unsigned char *)y)[n - 1], (n - 1) % 251);
}

/* Process-pool results larger than a worker's result ring (256 KiB), and
 * many mid-sized ones that wrap around it, arrive intact. */
static void process_results_larger_than_the_ring(void **state)
{
    (void)state;
    tk_pool *p = tk_pool_new(TK_POOL_PROCESSES, 2);
    tk_future *f = tk_pool_submit(p, blob_of, tk_args_of("i", 3 << 20), NULL);
    const tk_args *r;
    assert_int_equal(tk_future_result(f, 60.0, &r), 0);
    check_blob(r, 3 << 20);
    tk_future_free(f);
    enum { N = 64 };
    tk_args *items[N], *res[N];
    for (int i = 0; i < N; i++)
        items[i] = tk_args_of("i", 1000 + i * 997);
    assert_int_equal(tk_pool_map_ex(p, blob_of, items, N, res, 3), 0);
    for (int i = 0; i < N; i++) {
        check_blob(res[i], 1000 + i * 997);
        tk_args_free(res[i]);
    }
    tk_pool_free(p);
}

/* Submitters racing with workers that spin, park and are woken: bursts
 * separated by pauses long enough for every worker to park. No task may be
 * left waiting for a wake-up that never comes. */
struct burst_arg {
    tk_pool *pool;
    int base;
};

static void *burst_submitter(void *arg)
{
    struct burst_arg *b = arg;
    enum { BURSTS = 20, PER = 50 };
    tk_future *fs[PER];
    long bad = 0;
    for (int k = 0; k < BURSTS; k++) {
        for (int i = 0; i < PER; i++)
            fs[i] = tk_pool_submit(b->pool, square, tk_args_of("i", b->base + i), NULL);
        for (int i = 0; i < PER; i++) {
            const tk_args *r;
            int64_t v = -1;
            if (!fs[i] || tk_future_result(fs[i], 60.0, &r) != 0 ||
                tk_args_get_int(r, 0, &v) != 0 || v != (int64_t)(b->base + i) * (b->base + i))
                bad++;
            tk_future_free(fs[i]);
        }
        if (k % 4 == 0)
            usleep(2000); /* let the workers park */
    }
    return (void *)bad;
}

static void parked_workers_never_miss_work(void **state)
{
    (void)state;
    tk_pool *p = tk_pool_new(TK_POOL_THREADS, 3);
    pthread_t th[4];
    struct burst_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct burst_arg){p, i * 1000};
        assert_int_equal(pthread_create(&th[i], NULL, burst_submitter, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *bad;
        pthread_join(th[i], &bad);
        assert_null(bad);
    }
    tk_pool_free(p);
}

static void map_reports_first_failure_after_all(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        tk_pool *p = tk_pool_new(kinds[k], 2);
        tk_args *items[10], *res[10];
        for (int i = 0; i < 10; i++)
            items[i] = tk_args_of("i", i);
        assert_int_equal(tk_pool_map_ex(p, fail_odd, items, 10, res, 3), TK_ETASK);
        assert_string_equal(tk_last_error(), "map item 1 failed (status -22): odd value 1");
        for (int i = 0; i < 10; i++) {
            if (i % 2) {
                assert_null(res[i]);
            } else {
                int64_t v;
                assert_int_equal(tk_args_get_int(res[i], 0, &v), 0);
                assert_int_equal(v, i);
                tk_args_free(res[i]);
            }
        }
        tk_pool_free(p);
    }
}

/* ------------------------------------------------------------- shutdown */

static void shutdown_refuses_and_cancels(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        tk_pool *p = tk_pool_new(kinds[k], 1);
        tk_future *busy = tk_pool_submit(p, sleeper, tk_args_of("d", 0.3), NULL);
        usleep(100000);
        tk_future *pend[12];
        for (int i = 0; i < 12; i++)
            pend[i] = tk_pool_submit(p, square, tk_args_of("i", i), NULL);
        assert_int_equal(tk_pool_shutdown(p, true, true), 0);
        assert_int_equal(tk_future_result(busy, 0, NULL), 0); /* ran to the end */
        int cancelled = 0;
        for (int i = 0; i < 12; i++) {
            assert_true(tk_future_done(pend[i]));
            if (tk_future_status(pend[i]) == TK_ECANCELED) {
                cancelled++;
                assert_true(tk_future_cancel(pend[i]));
                assert_int_equal(tk_future_result(pend[i], 0, NULL), TK_ECANCELED);
            }
            tk_future_free(pend[i]);
        }
        /* a process pool may have sent a few to its worker already */
        assert_true(cancelled >= (k == 0 ? 12 : 8));
        assert_null(tk_pool_submit(p, square, tk_args_of("i", 1), NULL));
        assert_int_equal(tk_last_error_code(), TK_ESTATE);
        assert_string_equal(tk_last_error(), "cannot schedule new futures after shutdown");
        tk_args *it[1] = {tk_args_of("i", 1)}, *res[1];
        assert_int_equal(tk_pool_map(p, square, it, 1, res), TK_ESTATE);
        tk_future_free(busy);
        tk_pool_free(p);
    }
}

static void shutdown_lets_work_finish(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        tk_pool *p = tk_pool_new(kinds[k], 2);
        tk_future *fs[20];
        for (int i = 0; i < 20; i++)
            fs[i] = tk_pool_submit(p, square, tk_args_of("i", i), NULL);
        tk_pool_free(p); /* shutdown(wait) */
        for (int i = 0; i < 20; i++) {
            assert_int_equal(result_int(fs[i]), i * i); /* futures outlive the pool */
            tk_future_free(fs[i]);
        }
    }
}

static void cancel_pending_only(void **state)
{
    (void)state;
    tk_pool *p = tk_pool_new(TK_POOL_THREADS, 1);
    tk_future *busy = tk_pool_submit(p, sleeper, tk_args_of("d", 0.2), NULL);
    usleep(50000);
    tk_future *f = tk_pool_submit(p, square, tk_args_of("i", 2), NULL);
    assert_false(tk_future_cancel(busy)); /* running */
    assert_true(tk_future_cancel(f));
    assert_true(tk_future_cancel(f)); /* already cancelled */
    assert_true(tk_future_done(f));
    assert_int_equal(tk_future_status(f), TK_ECANCELED);
    assert_int_equal(tk_future_result(f, 0, NULL), TK_ECANCELED);
    assert_int_equal(tk_future_wait(busy, 10.0), 0);
    assert_false(tk_future_cancel(busy)); /* finished */
    tk_future_free(f);
    tk_future_free(busy);
    tk_pool_free(p);
}

static void free_pending_detaches(void **state)
{
    (void)state;
    tk_pool *p = tk_pool_new(TK_POOL_THREADS, 1);
    for (int i = 0; i < 50; i++)
        tk_future_free(tk_pool_submit(p, square, tk_args_of("i", i), NULL));
    tk_pool_free(p);
}

/* ------------------------------------------------------------ interrupt */

static void interrupt_thread_task(void **state)
{
    (void)state;
    tk_pool *p = tk_pool_new(TK_POOL_THREADS, 1);
    tk_future *f = tk_pool_submit(p, sleeper, tk_args_of("d", 20.0), NULL);
    usleep(100000);
    double t0 = tt_now();
    assert_int_equal(tk_future_interrupt(f), 0);
    assert_int_equal(tk_future_result(f, 10.0, NULL), TK_ECANCELED);
    assert_true(tt_now() - t0 < 5.0);
    assert_int_equal(tk_future_interrupt(f), TK_ESTATE);
    assert_string_equal(tk_last_error(), "future is not running");
    /* The stop was for that task only: the worker carries on. */
    tk_future *g = tk_pool_submit(p, sleeper, tk_args_of("d", 0.05), NULL);
    assert_int_equal(tk_future_result(g, 10.0, NULL), 0);
    tk_future_free(f);
    tk_future_free(g);
    tk_pool_free(p);
}

static void interrupt_process_task(void **state)
{
    (void)state;
    tk_pool *p = tk_pool_new(TK_POOL_PROCESSES, 1);
    tk_future *f = tk_pool_submit(p, sleeper, tk_args_of("d", 20.0), NULL);
    tk_future *g = tk_pool_submit(p, square, tk_args_of("i", 5), NULL);
    usleep(200000);
    double t0 = tt_now();
    assert_int_equal(tk_future_interrupt(f), 0);
    assert_int_equal(tk_future_result(f, 10.0, NULL), TK_ECANCELED);
    assert_true(tt_now() - t0 < 5.0);
    assert_int_equal(result_int(g), 25); /* runs on the replacement */
    tk_future_free(f);
    tk_future_free(g);
    tk_pool_free(p);
}

/* ------------------------------------------------------- process deaths */

static void crashed_worker_fails_only_its_future(void **state)
{
    (void)state;
    tk_pool *p = tk_pool_new(TK_POOL_PROCESSES, 2);
    tk_future *fs[8];
    for (int i = 0; i < 8; i++)
        fs[i] = tk_pool_submit(p, crash_on_3, tk_args_of("i", i), NULL);
    for (int i = 0; i < 8; i++) {
        if (i == 3) {
            assert_int_equal(tk_future_result(fs[i], 30.0, NULL), TK_EBROKEN);
            assert_int_equal(tk_future_status(fs[i]), TK_EBROKEN);
            assert_non_null(strstr(tk_future_error(fs[i]), "terminated abruptly"));
        } else {
            assert_int_equal(result_int(fs[i]), i);
        }
        tk_future_free(fs[i]);
    }
    /* The pool goes on. */
    tk_future *f = tk_pool_submit(p, square, tk_args_of("i", 9), NULL);
    assert_int_equal(result_int(f), 81);
    tk_future_free(f);
    tk_args *items[6], *res[6];
    for (int i = 0; i < 6; i++)
        items[i] = tk_args_of("i", i);
    assert_int_equal(tk_pool_map(p, crash_on_3, items, 6, res), TK_EBROKEN);
    for (int i = 0; i < 6; i++) {
        if (i == 3)
            assert_null(res[i]);
        else
            tk_args_free(res[i]);
    }
    tk_pool_free(p);
}

/* ------------------------------------------------ callbacks and waiting */

static void count_cb(tk_future *f, void *ud)
{
    (void)f;
    __atomic_add_fetch((int *)ud, 1, __ATOMIC_SEQ_CST);
}

static void done_callbacks(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        int n = 0;
        tk_pool *p = tk_pool_new(kinds[k], 1);
        tk_future *f = tk_pool_submit(p, sleeper, tk_args_of("d", 0.1), NULL);
        assert_int_equal(tk_future_add_done_callback(f, count_cb, &n), 0);
        assert_int_equal(tk_future_add_done_callback(f, count_cb, &n), 0);
        assert_int_equal(tk_future_wait(f, 10.0), 0);
        tk_pool_shutdown(p, true, false); /* callbacks have run once this returns */
        assert_int_equal(__atomic_load_n(&n, __ATOMIC_SEQ_CST), 2);
        assert_int_equal(tk_future_add_done_callback(f, count_cb, &n), 0); /* at once */
        assert_int_equal(n, 3);
        assert_int_equal(tk_future_add_done_callback(f, NULL, &n), TK_EINVAL);
        tk_future_free(f);
        tk_pool_free(p);
    }
}

static void wait_any_and_timeouts(void **state)
{
    (void)state;
    tk_pool *p = tk_pool_new(TK_POOL_THREADS, 2);
    tk_future *fs[3];
    fs[0] = tk_pool_submit(p, sleeper, tk_args_of("d", 5.0), NULL);
    fs[1] = tk_pool_submit(p, sleeper, tk_args_of("d", 0.1), NULL);
    fs[2] = NULL;
    assert_int_equal(tk_future_wait_any(fs, 3, 0), TK_ETIMEDOUT);
    assert_int_equal(tk_future_wait(fs[0], 0.05), TK_ETIMEDOUT);
    assert_int_equal(tk_future_result(fs[0], 0, NULL), TK_ETIMEDOUT);
    assert_int_equal(tk_future_status(fs[0]), INT_MIN);
    assert_int_equal(tk_future_wait_any(fs, 3, 10.0), 1);
    assert_int_equal(tk_future_wait_any(fs, 0, 1.0), TK_EINVAL);
    tk_future *none[2] = {NULL, NULL};
    assert_int_equal(tk_future_wait_any(none, 2, 1.0), TK_EINVAL);
    tk_future_interrupt(fs[0]);
    tk_future_free(fs[0]);
    tk_future_free(fs[1]);
    tk_pool_free(p);
}

/* ------------------------------------------------ initializer and names */

static int init_count;

static int initializer(const tk_args *a, const tk_kwargs *kw)
{
    (void)kw;
    int64_t v = 0;
    tk_args_get_int(a, 0, &v);
    __atomic_add_fetch(&init_count, (int)v, __ATOMIC_SEQ_CST);
    return 0;
}

static int read_init_count(const tk_args *a, const tk_kwargs *kw, tk_args *res)
{
    (void)a;
    (void)kw;
    return tk_args_add_int(res, __atomic_load_n(&init_count, __ATOMIC_SEQ_CST));
}

static void initializer_runs_in_each_worker(void **state)
{
    (void)state;
    init_count = 0;
    tk_pool *p = tk_pool_new_ex(TK_POOL_THREADS, 3, initializer, tk_args_of("i", 10));
    tk_pool_shutdown(p, true, false);
    assert_int_equal(init_count, 30);
    tk_pool_free(p);
    init_count = 0;
    p = tk_pool_new_ex(TK_POOL_PROCESSES, 1, initializer, tk_args_of("i", 5));
    tk_future *f = tk_pool_submit(p, read_init_count, NULL, NULL);
    assert_int_equal(result_int(f), 5); /* ran in the worker, not here */
    assert_int_equal(init_count, 0);
    tk_future_free(f);
    tk_pool_free(p);
}

/* Runs in a fresh copy of this program, where the shared empty bags an
 * initializer without initargs gets are not made yet: allocation k is
 * failed for k = 1, 2, ... until it lands in the worker making them. */
static int mode_init_oom(void)
{
    for (long k = 1; k < 100; k++) {
        init_count = 0;
        tk__fault_set(k);
        tk_pool *p = tk_pool_new_ex(TK_POOL_THREADS, 1, initializer, NULL);
        if (p)
            tk_pool_shutdown(p, true, false); /* the worker is done */
        bool fired = tk__fault_allocs() >= k;
        tk__fault_set(0);
        tk_pool_free(p);
        if (!p)
            continue; /* the caller's allocation */
        if (!fired)
            return 3; /* the sweep never reached the worker */
        /* The worker's: its initializer could not run (initializer()
         * adds 0 for its empty args, so its count says nothing). */
        printf("worker fault at %ld\n", k);
        fflush(stdout);
        /* Pools work on. */
        p = tk_pool_new_ex(TK_POOL_THREADS, 1, initializer, NULL);
        tk_future *f = tk_pool_submit(p, square, tk_args_of("i", 4), NULL);
        int64_t v = result_int(f);
        tk_future_free(f);
        tk_pool_free(p);
        return v == 16 ? 0 : 4;
    }
    return 2;
}

/* A worker that cannot make its initializer's bags reports it on stderr,
 * as pool.h documents for a failing initializer, and carries on. */
static void initializer_out_of_memory_is_reported(void **state)
{
    (void)state;
    static char out[1 << 16];
    assert_int_equal(tt_run_self("init-oom", out, sizeof out, 60.0), 0);
    assert_non_null(strstr(out, "worker fault at"));
    const char *e = strstr(out, "Exception in initializer of ThreadPool-");
    assert_non_null(e);
    assert_non_null(strstr(e, ": out of memory\n"));
}

static int my_full_name(const tk_args *a, const tk_kwargs *kw, tk_args *res)
{
    (void)a;
    (void)kw;
    char os[32] = {0};
    prctl(PR_GET_NAME, os);
    if (tk_args_add_str(res, os) < 0)
        return -1;
    return tk_args_add_str(res, tk_process_name(tk_current_process()));
}

/* The OS keeps 15 bytes of "ProcessPool-12_0"; libtaskkit keeps it all. */
static void process_worker_keeps_full_name(void **state)
{
    (void)state;
    bool long_seen = false;
    for (int i = 0; i < 12 && !long_seen; i++) {
        tk_pool *p = tk_pool_new(TK_POOL_PROCESSES, 1);
        assert_non_null(p);
        tk_future *f = tk_pool_submit(p, my_full_name, NULL, NULL);
        const tk_args *r;
        assert_int_equal(tk_future_result(f, 30.0, &r), 0);
        const char *os, *full;
        assert_int_equal(tk_args_get_str(r, 0, &os), 0);
        assert_int_equal(tk_args_get_str(r, 1, &full), 0);
        int id = -1, idx = -1, end = 0;
        assert_int_equal(sscanf(full, "ProcessPool-%d_%d%n", &id, &idx, &end), 2);
        assert_int_equal((size_t)end, strlen(full));
        assert_int_equal(idx, 0);
        assert_int_equal(strncmp(os, full, 15), 0);
        assert_true(strlen(os) <= 15);
        long_seen = strlen(full) > 15;
        tk_future_free(f);
        tk_pool_free(p);
    }
    assert_true(long_seen);
}

static int pool_in_daemon(const tk_args *a, const tk_kwargs *kw)
{
    (void)a;
    (void)kw;
    tk_pool *p = tk_pool_new_ex(TK_POOL_PROCESSES, 1, NULL, tk_args_of("i", 1));
    if (p || tk_last_error_code() != TK_ESTATE ||
        strcmp(tk_last_error(), "daemonic processes are not allowed to have children") != 0)
        return 1;
    /* Threads are fine. */
    p = tk_pool_new(TK_POOL_THREADS, 1);
    if (!p)
        return 2;
    tk_future *f = tk_pool_submit(p, square, tk_args_of("i", 3), NULL);
    const tk_args *r;
    int64_t v = 0;
    int rc = tk_future_result(f, 30.0, &r) == 0 && tk_args_get_int(r, 0, &v) == 0 && v == 9 ? 0 : 3;
    tk_future_free(f);
    tk_pool_free(p);
    return rc;
}

/* Runs in a fresh copy of this program: a daemonic child tries both kinds
 * of pool. */
static int mode_daemon_pool(void)
{
    tk_process *c = tk_process_new(pool_in_daemon, NULL, NULL);
    if (!c || tk_process_set_daemon(c, true) < 0 || tk_process_start(c) < 0 ||
        tk_process_join(c, 60.0) < 0)
        return 10;
    int code = tk_process_exitcode(c);
    tk_process_free(c);
    printf("daemon child exit code %d\n", code);
    return code;
}

static void daemonic_process_cannot_create_process_pool(void **state)
{
    (void)state;
    static char out[1 << 16];
    int st = tt_run_self("daemon-pool", out, sizeof out, 60.0);
    if (st != 0)
        fprintf(stderr, "%s", out);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "daemon child exit code 0"));
}

static int t_noop(const tk_args *a, const tk_kwargs *kw)
{
    (void)a;
    (void)kw;
    return 0;
}

/* Process-pool workers are daemonic, as CPython's are: a task cannot leave
 * a child behind that the pool knows nothing about. */
static int start_child_task(const tk_args *a, const tk_kwargs *kw, tk_args *res)
{
    (void)a;
    (void)kw;
    tk_process *c = tk_process_new(t_noop, NULL, NULL);
    int rc = tk_process_start(c);
    int ok = rc == TK_ESTATE && tk_process_daemon(tk_current_process()) &&
             strcmp(tk_last_error(), "daemonic processes are not allowed to have children") == 0;
    tk_process_free(c);
    return tk_args_add_bool(res, ok);
}

static void process_pool_workers_are_daemonic(void **state)
{
    (void)state;
    tk_pool *p = tk_pool_new(TK_POOL_PROCESSES, 1);
    assert_non_null(p);
    tk_future *f = tk_pool_submit(p, start_child_task, NULL, NULL);
    const tk_args *r;
    assert_int_equal(tk_future_result(f, 30.0, &r), 0);
    bool ok = false;
    assert_int_equal(tk_args_get_bool(r, 0, &ok), 0);
    assert_true(ok);
    tk_future_free(f);
    tk_pool_free(p);
}

static void workers_are_named(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        tk_pool *p = tk_pool_new(kinds[k], 1);
        tk_future *f = tk_pool_submit(p, my_name, NULL, NULL);
        const tk_args *r;
        assert_int_equal(tk_future_result(f, 30.0, &r), 0);
        const char *s;
        assert_int_equal(tk_args_get_str(r, 0, &s), 0);
        assert_non_null(strstr(s, k == 0 ? "ThreadPool-" : "ProcessPool-"));
        assert_non_null(strchr(s, '_')); /* ...-N_0, cut to 15 bytes by the OS */
        tk_future_free(f);
        tk_pool_free(p);
    }
}

static int shutdown_self(const tk_args *a, const tk_kwargs *kw, tk_args *res)
{
    (void)kw;
    (void)res;
    void *p = NULL;
    tk_args_get_ptr(a, 0, &p);
    return tk_pool_shutdown(p, true, false) == TK_EDEADLK ? 0 : -1;
}

static void waiting_shutdown_from_own_task_is_edeadlk(void **state)
{
    (void)state;
    tk_pool *p = tk_pool_new(TK_POOL_THREADS, 1);
    tk_future *f = tk_pool_submit(p, shutdown_self, tk_args_of("p", (void *)p), NULL);
    assert_int_equal(tk_future_result(f, 10.0, NULL), 0);
    tk_future_free(f);
    tk_pool_free(p);
}

static int free_self(const tk_args *a, const tk_kwargs *kw, tk_args *res)
{
    (void)kw;
    (void)res;
    void *p = NULL;
    tk_args_get_ptr(a, 0, &p);
    tk_pool_free(p);
    return 0;
}

/* tk_pool_free from one of the pool's own tasks cannot wait: the pool ends
 * once drained, the work queued before the free still runs, and nothing is
 * freed while a worker still uses it (ASan, TSan and valgrind watch). */
static void free_from_own_task(void **state)
{
    (void)state;
    for (int round = 0; round < 50; round++) {
        tk_pool *p = tk_pool_new(TK_POOL_THREADS, 2);
        assert_non_null(p);
        tk_future *before[4], *self;
        for (int i = 0; i < 4; i++)
            before[i] = tk_pool_submit(p, square, tk_args_of("i", i), NULL);
        self = tk_pool_submit(p, free_self, tk_args_of("p", (void *)p), NULL);
        assert_non_null(self);
        assert_int_equal(tk_future_result(self, 10.0, NULL), 0);
        for (int i = 0; i < 4; i++) {
            const tk_args *r = NULL;
            int64_t v = -1;
            assert_int_equal(tk_future_result(before[i], 10.0, &r), 0);
            assert_int_equal(tk_args_get_int(r, 0, &v), 0);
            assert_int_equal(v, i * i);
            tk_future_free(before[i]);
        }
        tk_future_free(self);
    }
}

static void free_pool_cb(tk_future *f, void *ud)
{
    (void)f;
    tk_pool_free(ud);
}

/* A process pool's done-callbacks run on its result thread: freeing the
 * pool from there must not free it under that thread either. */
static void free_from_process_pool_callback(void **state)
{
    (void)state;
    for (int round = 0; round < 5; round++) {
        tk_pool *p = tk_pool_new(TK_POOL_PROCESSES, 1);
        assert_non_null(p);
        tk_future *f = tk_pool_submit(p, square, tk_args_of("i", 3), NULL);
        assert_int_equal(tk_future_add_done_callback(f, free_pool_cb, p), 0);
        assert_int_equal(tk_future_wait(f, 10.0), 0);
        tk_future_free(f);
    }
    /* The result threads reap their workers and end: give them time (a
     * fixed 100 ms was too short once under valgrind). */
    for (int i = 0; i < 1000 && tt_count_zombies() != 0; i++)
        usleep(10000);
    assert_int_equal(tt_count_zombies(), 0);
}

/* ------------------------------------------------------- end of program */

static void done_print(tk_future *f, void *ud)
{
    (void)f;
    (void)ud;
    printf("work finished\n");
    fflush(stdout);
}

static int mode_exit_thread_pool(void)
{
    tk_pool *p = tk_pool_new(TK_POOL_THREADS, 1);
    tk_future *f = tk_pool_submit(p, sleeper, tk_args_of("d", 0.1), NULL);
    tk_future_add_done_callback(f, done_print, NULL);
    tk_future_free(f); /* detached: the callback still runs */
    return 0; /* the end-of-program procedure lets the work finish */
}

static int mode_exit_process_pool(void)
{
    tk_pool *p = tk_pool_new(TK_POOL_PROCESSES, 1);
    tk_future *f = tk_pool_submit(p, sleeper, tk_args_of("d", 0.1), NULL);
    tk_future_add_done_callback(f, done_print, NULL);
    tk_future_free(f); /* detached: the callback still runs */
    return 0;
}

static void end_of_program_finishes_work(void **state)
{
    (void)state;
    const char *modes[] = {"exit-thread-pool", "exit-process-pool"};
    for (int i = 0; i < 2; i++) {
        /* Room for valgrind's reports from the forked workers too. */
        static char out[1 << 16];
        int st = tt_run_self(modes[i], out, sizeof out, 60.0);
        assert_int_equal(st, 0);
        assert_non_null(strstr(out, "work finished"));
    }
}

int main(void)
{
    static const struct tt_mode modes[] = {
        {"exit-thread-pool", mode_exit_thread_pool},
        {"exit-process-pool", mode_exit_process_pool},
        {"daemon-pool", mode_daemon_pool},
        {"init-oom", mode_init_oom},
    };
    tt_child_main(modes, sizeof modes / sizeof modes[0]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(submit_and_result),
        cmocka_unit_test(failure_carries_status_and_text),
        cmocka_unit_test(misuse),
        cmocka_unit_test(map_in_order),
        cmocka_unit_test(map_arrays_reused_at_once),
        cmocka_unit_test(process_map_out_of_memory_is_enomem),
        cmocka_unit_test(process_pool_result_thread_out_of_memory),
        cmocka_unit_test(map_reports_first_failure_after_all),
        cmocka_unit_test(process_results_larger_than_the_ring),
        cmocka_unit_test(parked_workers_never_miss_work),
        cmocka_unit_test(shutdown_refuses_and_cancels),
        cmocka_unit_test(shutdown_lets_work_finish),
        cmocka_unit_test(cancel_pending_only),
        cmocka_unit_test(free_pending_detaches),
        cmocka_unit_test(interrupt_thread_task),
        cmocka_unit_test(interrupt_process_task),
        cmocka_unit_test(crashed_worker_fails_only_its_future),
        cmocka_unit_test(done_callbacks),
        cmocka_unit_test(wait_any_and_timeouts),
        cmocka_unit_test(initializer_runs_in_each_worker),
        cmocka_unit_test(initializer_out_of_memory_is_reported),
        cmocka_unit_test(workers_are_named),
        cmocka_unit_test(process_worker_keeps_full_name),
        cmocka_unit_test(daemonic_process_cannot_create_process_pool),
        cmocka_unit_test(process_pool_workers_are_daemonic),
        cmocka_unit_test(waiting_shutdown_from_own_task_is_edeadlk),
        cmocka_unit_test(free_from_own_task),
        cmocka_unit_test(free_from_process_pool_callback),
        cmocka_unit_test(end_of_program_finishes_work),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
