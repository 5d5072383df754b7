/* test_queue.c - tk_queue: thread queues (FIFO, bounds, timeouts, close,
 * task_done/join, stops, many producers and consumers) and TK_SHARED
 * queues between processes (order and integrity, byte capacity, oversize,
 * pointers refused, a producer exiting right after its put). */
#include "common/testutil.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "queue_int.h"
#include "taskkit.h"

static int64_t int_of(tk_args *a)
{
    int64_t v = -1;
    assert_int_equal(tk_args_get_int(a, 0, &v), 0);
    return v;
}

static void get_int(tk_queue *q, int64_t want)
{
    tk_args *a = NULL;
    assert_int_equal(tk_queue_get(q, &a, 1.0), 0);
    assert_int_equal(int_of(a), want);
    tk_args_free(a);
}

/* ------------------------------------------------------- thread queues */

static void fifo_order_and_size(void **state)
{
    (void)state;
    tk_queue *q = tk_queue_new(0, 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(tk_queue_put(q, tk_args_of("i", i), 0), 0);
    assert_int_equal(tk_queue_size(q), 100);
    for (int i = 0; i < 100; i++)
        get_int(q, i);
    assert_int_equal(tk_queue_size(q), 0);
    tk_queue_free(q);
}

static void pointers_pass_through_a_thread_queue(void **state)
{
    (void)state;
    int x = 7;
    tk_queue *q = tk_queue_new(0, 0);
    assert_int_equal(tk_queue_put(q, tk_args_of("p", (void *)&x), 0), 0);
    tk_args *a;
    assert_int_equal(tk_queue_get(q, &a, 0), 0);
    void *p;
    assert_int_equal(tk_args_get_ptr(a, 0, &p), 0);
    assert_ptr_equal(p, &x);
    tk_args_free(a);
    tk_queue_free(q);
}

static void bounded_put_times_out_and_keeps_item(void **state)
{
    (void)state;
    tk_queue *q = tk_queue_new(2, 0);
    assert_int_equal(tk_queue_put(q, tk_args_of("i", 1), 0), 0);
    assert_int_equal(tk_queue_put(q, tk_args_of("i", 2), 0), 0);
    tk_args *extra = tk_args_of("i", 3);
    assert_int_equal(tk_queue_put(q, extra, 0), TK_EFULL);
    assert_string_equal(tk_last_error(), "put timed out: the queue is full");
    double t0 = tt_now();
    assert_int_equal(tk_queue_put(q, extra, 0.1), TK_EFULL);
    assert_true(tt_now() - t0 >= 0.09);
    assert_int_equal(int_of(extra), 3); /* still ours */
    get_int(q, 1);
    assert_int_equal(tk_queue_put(q, extra, 0), 0);
    get_int(q, 2);
    get_int(q, 3);
    tk_queue_free(q);
}

static void get_times_out_empty(void **state)
{
    (void)state;
    tk_queue *q = tk_queue_new(0, 0);
    tk_args *a = (tk_args *)1;
    assert_int_equal(tk_queue_get(q, &a, 0), TK_EEMPTY);
    assert_null(a);
    assert_string_equal(tk_last_error(), "get timed out: the queue is empty");
    double t0 = tt_now();
    assert_int_equal(tk_queue_get(q, &a, 0.1), TK_EEMPTY);
    assert_true(tt_now() - t0 >= 0.09);
    assert_int_equal(tk_queue_get(q, &a, 0.0 / 0.0), TK_EINVAL);
    tk_queue_free(q);
}

static void misuse_is_einval(void **state)
{
    (void)state;
    tk_args *a;
    assert_int_equal(tk_queue_put(NULL, NULL, 0), TK_EINVAL);
    assert_int_equal(tk_queue_get(NULL, &a, 0), TK_EINVAL);
    assert_null(tk_queue_new(0, 4));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    assert_null(tk_queue_new_ex(0, TK_SHARED, 10));
    assert_int_equal(tk_queue_task_done(NULL), TK_EINVAL);
    assert_int_equal(tk_queue_size(NULL), 0);
    tk_queue_free(NULL);
}

struct waiter {
    tk_queue *q;
    int rc;
    struct tk__stop stop;
    bool use_stop;
};

static void *getter(void *arg)
{
    struct waiter *w = arg;
    if (w->use_stop)
        tk__tls()->stop = &w->stop;
    tk_args *a = NULL;
    w->rc = tk_queue_get(w->q, &a, 10.0);
    tk_args_free(a);
    tk__tls()->stop = NULL;
    return NULL;
}

static void *putter(void *arg)
{
    struct waiter *w = arg;
    tk_args *a = tk_args_of("i", 9);
    w->rc = tk_queue_put(w->q, a, 10.0);
    if (w->rc != 0)
        tk_args_free(a);
    return NULL;
}

static void close_wakes_and_drains(void **state)
{
    (void)state;
    tk_queue *q = tk_queue_new(1, 0);
    struct waiter g = {.q = q}, p = {.q = q};
    pthread_t tg;
    pthread_create(&tg, NULL, getter, &g);
    usleep(50000);
    assert_int_equal(tk_queue_close(q), 0);
    pthread_join(tg, NULL);
    assert_int_equal(g.rc, TK_ECLOSED);
    tk_queue_free(q);

    q = tk_queue_new(1, 0);
    p.q = q;
    assert_int_equal(tk_queue_put(q, tk_args_of("i", 1), 0), 0);
    pthread_t tp;
    pthread_create(&tp, NULL, putter, &p);
    usleep(50000);
    assert_int_equal(tk_queue_close(q), 0);
    pthread_join(tp, NULL);
    assert_int_equal(p.rc, TK_ECLOSED);
    tk_args *a = tk_args_of("i", 2);
    assert_int_equal(tk_queue_put(q, a, 0), TK_ECLOSED);
    assert_string_equal(tk_last_error(), "queue is closed");
    tk_args_free(a);
    get_int(q, 1); /* drains first */
    double t0 = tt_now();
    assert_int_equal(tk_queue_get(q, &a, 5.0), TK_ECLOSED); /* then at once */
    assert_true(tt_now() - t0 < 1.0);
    assert_int_equal(tk_queue_close(q), 0);
    tk_queue_free(q);
}

static void task_done_and_join(void **state)
{
    (void)state;
    tk_queue *q = tk_queue_new(0, 0);
    assert_int_equal(tk_queue_join(q, 0), 0);
    assert_int_equal(tk_queue_task_done(q), TK_ESTATE);
    assert_string_equal(tk_last_error(), "task_done() called too many times");
    assert_int_equal(tk_queue_put(q, tk_args_of("i", 1), 0), 0);
    assert_int_equal(tk_queue_put(q, tk_args_of("i", 2), 0), 0);
    assert_int_equal(tk_queue_join(q, 0.05), TK_ETIMEDOUT);
    get_int(q, 1);
    get_int(q, 2);
    assert_int_equal(tk_queue_task_done(q), 0);
    assert_int_equal(tk_queue_join(q, 0), TK_ETIMEDOUT);
    assert_int_equal(tk_queue_task_done(q), 0);
    assert_int_equal(tk_queue_join(q, 0), 0);
    assert_int_equal(tk_queue_task_done(q), TK_ESTATE);
    tk_queue_free(q);
}

static void stop_interrupts_get(void **state)
{
    (void)state;
    tk_queue *q = tk_queue_new(0, 0);
    struct waiter g = {.q = q, .use_stop = true};
    tk__stop_init(&g.stop);
    pthread_t t;
    pthread_create(&t, NULL, getter, &g);
    usleep(50000);
    double t0 = tt_now();
    tk__stop_request(&g.stop);
    pthread_join(t, NULL);
    assert_int_equal(g.rc, TK_ECANCELED);
    assert_true(tt_now() - t0 < 2.0);
    tk__stop_destroy(&g.stop);
    tk_queue_free(q);
}

#define NPROD 4
#define NPER 10000

struct mp {
    tk_queue *q;
    int id;
    long sum;
    long count;
};

static void *mp_producer(void *arg)
{
    struct mp *m = arg;
    for (int i = 0; i < NPER; i++) {
        tk_args *a = tk_args_of("i", m->id * NPER + i);
        assert_int_equal(tk_queue_put(m->q, a, TK_FOREVER), 0);
    }
    return NULL;
}

static void *mp_consumer(void *arg)
{
    struct mp *m = arg;
    tk_args *a;
    while (tk_queue_get(m->q, &a, TK_FOREVER) == 0) {
        m->sum += (long)int_of(a);
        m->count++;
        tk_args_free(a);
        tk_queue_task_done(m->q);
    }
    return NULL;
}

static void four_producers_four_consumers(void **state)
{
    (void)state;
    tk_queue *q = tk_queue_new(64, 0);
    struct mp prod[NPROD], cons[NPROD];
    pthread_t tp[NPROD], tc[NPROD];
    for (int i = 0; i < NPROD; i++) {
        prod[i] = (struct mp){.q = q, .id = i};
        cons[i] = (struct mp){.q = q};
        pthread_create(&tp[i], NULL, mp_producer, &prod[i]);
        pthread_create(&tc[i], NULL, mp_consumer, &cons[i]);
    }
    for (int i = 0; i < NPROD; i++)
        pthread_join(tp[i], NULL);
    assert_int_equal(tk_queue_join(q, 60.0), 0);
    tk_queue_close(q);
    long sum = 0, count = 0;
    for (int i = 0; i < NPROD; i++) {
        pthread_join(tc[i], NULL);
        sum += cons[i].sum;
        count += cons[i].count;
    }
    long n = (long)NPROD * NPER;
    assert_int_equal(count, n);
    assert_int_equal(sum, n * (n - 1) / 2); /* each value exactly once */
    tk_queue_free(q);
}

/* ------------------------------------------------------- shared queues */

static void shared_queue_refuses_pointers_and_oversize(void **state)
{
    (void)state;
    tk_queue *q = tk_queue_new_ex(0, TK_SHARED, 256);
    assert_non_null(q);
    int x;
    tk_args *p = tk_args_of("p", (void *)&x);
    assert_int_equal(tk_queue_put(q, p, 0), TK_ETYPE);
    tk_args_free(p);
    char big[300] = {0};
    tk_args *b = tk_args_of("y", big, sizeof big);
    assert_int_equal(tk_queue_put(q, b, TK_FOREVER), TK_EOVERFLOW);
    tk_args_free(b);
    assert_int_equal(tk_queue_size(q), 0);
    tk_queue_free(q);
}

/* Items of every size, small (copied through the stack) and large (through
 * the heap), wrapping around the ring's end, come out byte for byte. */
static void shared_items_of_any_size_wrap_intact(void **state)
{
    (void)state;
    enum { CAP = 16384 };
    tk_queue *q = tk_queue_new_ex(0, TK_SHARED, CAP);
    assert_non_null(q);
    static unsigned char blob[CAP], back[CAP];
    for (size_t i = 0; i < sizeof blob; i++)
        blob[i] = (unsigned char)(i * 7 + 3);
    for (int round = 0; round < 60; round++) {
        size_t n = (size_t)(round * 997) % (CAP - 64); /* 0 .. ~16 KiB */
        tk_args *a = tk_args_of("yi", (const void *)(blob + round), n, round);
        assert_int_equal(tk_queue_put(q, a, 0), 0);
        tk_args *got = NULL;
        assert_int_equal(tk_queue_get(q, &got, 0), 0);
        const void *y;
        size_t ny;
        int64_t r;
        assert_int_equal(tk_args_get_bytes(got, 0, &y, &ny), 0);
        assert_int_equal(tk_args_get_int(got, 1, &r), 0);
        assert_int_equal(ny, n);
        assert_int_equal(r, round);
        memcpy(back, y, ny);
        assert_memory_equal(back, blob + round, n);
        tk_args_free(got);
    }
    tk_queue_free(q);
}

static void shared_queue_full_blocks_then_fails(void **state)
{
    (void)state;
    tk_queue *q = tk_queue_new_ex(0, TK_SHARED, 256);
    char blob[100] = {1};
    int n = 0;
    tk_args *a;
    for (;;) {
        a = tk_args_of("y", blob, sizeof blob);
        if (tk_queue_put(q, a, 0) != 0)
            break;
        n++;
    }
    assert_true(n >= 1 && n <= 2);
    assert_int_equal(tk_last_error_code(), TK_EFULL);
    assert_int_equal(tk_queue_put(q, a, 0.05), TK_EFULL); /* still ours */
    tk_args *got;
    assert_int_equal(tk_queue_get(q, &got, 0), 0);
    tk_args_free(got);
    assert_int_equal(tk_queue_put(q, a, 0), 0);
    assert_int_equal(tk_queue_size(q), (size_t)n);
    tk_queue_free(q);
}

static void shared_maxsize_close_task_done(void **state)
{
    (void)state;
    tk_queue *q = tk_queue_new(1, TK_SHARED);
    assert_int_equal(tk_queue_put(q, tk_args_of("i", 5), 0), 0);
    tk_args *a = tk_args_of("i", 6);
    assert_int_equal(tk_queue_put(q, a, 0), TK_EFULL);
    assert_int_equal(tk_queue_join(q, 0), TK_ETIMEDOUT);
    assert_int_equal(tk_queue_close(q), 0);
    assert_int_equal(tk_queue_put(q, a, 0), TK_ECLOSED);
    tk_args_free(a);
    get_int(q, 5);
    assert_int_equal(tk_queue_get(q, &a, 1.0), TK_ECLOSED);
    assert_int_equal(tk_queue_task_done(q), 0);
    assert_int_equal(tk_queue_task_done(q), TK_ESTATE);
    assert_string_equal(tk_last_error(), "task_done() called too many times");
    assert_int_equal(tk_queue_join(q, 0), 0);
    tk_queue_free(q);
}

#define NMSG 10000

static void child_puts_in_order_intact(void **state)
{
    (void)state;
    tk_queue *q = tk_queue_new_ex(0, TK_SHARED, 64 * 1024); /* forces wrap and blocking */
    pid_t pid = fork();
    if (pid == 0) {
        unsigned char kib[1024];
        for (int i = 0; i < NMSG; i++) {
            memset(kib, i & 0xff, sizeof kib);
            tk_args *a = (i % 10 == 0) ? tk_args_of("iy", i, kib, sizeof kib)
                                       : tk_args_of("is", i, "hello");
            if (tk_queue_put(q, a, TK_FOREVER) != 0)
                _exit(2);
        }
        _exit(0); /* at once: nothing may be lost */
    }
    for (int i = 0; i < NMSG; i++) {
        tk_args *a;
        assert_int_equal(tk_queue_get(q, &a, 30.0), 0);
        assert_int_equal(int_of(a), i);
        if (i % 10 == 0) {
            const void *y;
            size_t n;
            assert_int_equal(tk_args_get_bytes(a, 1, &y, &n), 0);
            assert_int_equal(n, 1024);
            for (size_t k = 0; k < n; k++)
                assert_int_equal(((const unsigned char *)y)[k], i & 0xff);
        } else {
            const char *s;
            assert_int_equal(tk_args_get_str(a, 1, &s), 0);
            assert_string_equal(s, "hello");
        }
        tk_args_free(a);
    }
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    tk_queue_free(q);
}

static void producer_exits_right_after_put(void **state)
{
    (void)state;
    tk_queue *q = tk_queue_new(0, TK_SHARED);
    pid_t pid = fork();
    if (pid == 0) {
        tk_queue_put(q, tk_args_of("s", "last words"), TK_FOREVER);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0); /* gone before anyone reads */
    tk_args *a;
    assert_int_equal(tk_queue_get(q, &a, 5.0), 0);
    const char *s;
    assert_int_equal(tk_args_get_str(a, 0, &s), 0);
    assert_string_equal(s, "last words");
    tk_args_free(a);
    tk_queue_free(q);
}

static void shared_getter_in_child_is_woken(void **state)
{
    (void)state;
    tk_queue *q = tk_queue_new(0, TK_SHARED);
    tk_queue *back = tk_queue_new(0, TK_SHARED);
    pid_t pid = fork();
    if (pid == 0) {
        tk_args *a;
        for (int i = 0; i < 100; i++) {
            if (tk_queue_get(q, &a, 10.0) != 0)
                _exit(2);
            if (tk_queue_put(back, a, 10.0) != 0)
                _exit(3);
        }
        _exit(0);
    }
    for (int i = 0; i < 100; i++) {
        assert_int_equal(tk_queue_put(q, tk_args_of("i", i), 1.0), 0);
        get_int(back, i);
    }
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    tk_queue_free(q);
    tk_queue_free(back);
}

static void shared_holder_death_breaks_queue(void **state)
{
    (void)state;
    tk_queue *q = tk_queue_new(0, TK_SHARED);
    pid_t pid = fork();
    if (pid == 0) {
        /* Die holding the lock, as a crash in the middle of a put would. */
        pthread_mutex_lock((pthread_mutex_t *)q->shm);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    tk_args *a = tk_args_of("i", 1);
    assert_int_equal(tk_queue_put(q, a, 0), TK_EBROKEN);
    assert_string_equal(tk_last_error(), "queue is broken: a process died while using it");
    tk_args_free(a);
    assert_int_equal(tk_queue_get(q, &a, 0), TK_EBROKEN);
    tk_queue_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fifo_order_and_size),
        cmocka_unit_test(pointers_pass_through_a_thread_queue),
        cmocka_unit_test(bounded_put_times_out_and_keeps_item),
        cmocka_unit_test(get_times_out_empty),
        cmocka_unit_test(misuse_is_einval),
        cmocka_unit_test(close_wakes_and_drains),
        cmocka_unit_test(task_done_and_join),
        cmocka_unit_test(stop_interrupts_get),
        cmocka_unit_test(four_producers_four_consumers),
        cmocka_unit_test(shared_queue_refuses_pointers_and_oversize),
        cmocka_unit_test(shared_items_of_any_size_wrap_intact),
        cmocka_unit_test(shared_queue_full_blocks_then_fails),
        cmocka_unit_test(shared_maxsize_close_task_done),
        cmocka_unit_test(child_puts_in_order_intact),
        cmocka_unit_test(producer_exits_right_after_put),
        cmocka_unit_test(shared_getter_in_child_is_woken),
        cmocka_unit_test(shared_holder_death_breaks_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
