/*
 * test_faults_queue.c - allocation-failure sweeps for queues, pipes, pools
 * and futures (include/taskkit/queue.h and pool.h), in the style of
 * test_faults.c: each public function that allocates is run once per
 * allocation point with that allocation failing (tk__fault_set), and each
 * time the test checks the error (TK_ENOMEM, "out of memory"), that no heap
 * block leaked, and that the object is still usable or freed cleanly.
 *
 * Counting live blocks needs the allocator wrapped at link time; the build
 * rule (mk/reliability.mk) must carry
 *   $(BUILD)/tests/test_faults_queue: LDFLAGS += -Wl,--wrap=malloc
 *       -Wl,--wrap=calloc -Wl,--wrap=realloc -Wl,--wrap=free
 *
 * Two things differ from test_faults.c:
 *
 * - The fault hook is process-wide, so a pool worker thread allocating
 *   inside the armed window could take the fault instead of the caller.
 *   Where that can be avoided the worker is held in a gate task while the
 *   call runs (submit, add_done_callback); where it cannot (map and the
 *   initializer of a thread pool run in the workers during the call) the
 *   scenario recognises a worker-side fault, checks its documented outcome
 *   itself and returns FAULT_ELSEWHERE.
 * - Forked pool workers would inherit an armed hook; a pthread_atfork child
 *   handler, registered before the library registers its own, disarms it,
 *   so only the process under test sees faults.
 *
 * A scenario that sees an outcome that works (nothing leaks, the object
 * stays usable) but reports the failure in a way the API contract does not
 * describe records it with deviation(); the sweep prints each one, and
 * TK_FAULTS_STRICT=1 makes them failures. docs/reliability.md lists them.
 */
#include "common/testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "faults/alloccount.h"
#include "faults/sweep.h"
#include "internal.h"
#include "taskkit.h"


/* Disarms the fault hook in forked children (pool workers): the faults
 * under test are the calling process's. */
static void child_disarm(void)
{
    tk__fault_set(0);
}

/* ------------------------------------------------------------ messages */

#define BIG 40000 /* above every inline/stack buffer (4 KiB puts, sends and receives) */

/* A bag: int tag, then `size` bytes of 'x' ('xxxx' read as a frame length
 * is far above the 1 GiB limit: see conn_recv_large). */
static tk_args *msg(int64_t tag, size_t size)
{
    tk_args *a = tk_args_new();
    assert_non_null(a);
    assert_int_equal(tk_args_add_int(a, tag), 0);
    if (size) {
        char *b = malloc(size);
        assert_non_null(b);
        memset(b, 'x', size);
        assert_int_equal(tk_args_add_bytes(a, b, size), 0);
        free(b);
    }
    return a;
}

static void check_msg(const tk_args *a, int64_t tag, size_t size)
{
    assert_non_null(a);
    int64_t t = -1;
    assert_int_equal(tk_args_get_int(a, 0, &t), 0);
    assert_int_equal(t, tag);
    if (size) {
        const void *b = NULL;
        size_t n = 0;
        assert_int_equal(tk_args_get_bytes(a, 1, &b, &n), 0);
        assert_int_equal(n, size);
        assert_int_equal(((const char *)b)[size - 1], 'x');
    } else {
        assert_int_equal(tk_args_len(a), 1);
    }
}

/* ---------------------------------------------------------------- queues */

static unsigned qflags;

static void queue_roundtrip(tk_queue *q)
{
    assert_int_equal(tk_queue_put(q, msg(7, 0), 0), 0);
    tk_args *g = NULL;
    assert_int_equal(tk_queue_get(q, &g, 0), 0);
    check_msg(g, 7, 0);
    tk_args_free(g);
}

static int sc_queue_new(void)
{
    tt_arm();
    tk_queue *q = tk_queue_new(4, qflags);
    tt_disarm();
    int rc = tt_ctor_rc(q);
    if (q)
        queue_roundtrip(q);
    tk_queue_free(q);
    return rc;
}

static int sc_queue_new_ex(void)
{
    tt_arm();
    tk_queue *q = tk_queue_new_ex(0, qflags, 4096);
    tt_disarm();
    int rc = tt_ctor_rc(q);
    if (q)
        queue_roundtrip(q);
    tk_queue_free(q);
    return rc;
}

/* A put that must allocate: a thread queue whose ring is full (8 items:
 * it grows), a shared queue with an item encoded beyond the stack buffer.
 * On failure the item is still the caller's, unchanged, and the queue
 * holds what it held and takes the item on a second try. */
static int sc_queue_put(void)
{
    tk_queue *q = tk_queue_new(0, qflags);
    assert_non_null(q);
    size_t before = qflags ? 1 : 8;
    for (size_t i = 0; i < before; i++)
        assert_int_equal(tk_queue_put(q, msg((int64_t)i, 0), 0), 0);
    size_t size = qflags ? BIG : 0;
    tk_args *item = msg(100, size);
    tt_arm();
    int rc = tk_queue_put(q, item, 0);
    tt_disarm();
    if (rc != 0) {
        check_msg(item, 100, size); /* still ours, intact */
        assert_int_equal(tk_queue_size(q), before);
        assert_int_equal(tk_queue_put(q, item, 0), 0);
    }
    assert_int_equal(tk_queue_size(q), before + 1);
    for (size_t i = 0; i <= before; i++) {
        tk_args *g = NULL;
        assert_int_equal(tk_queue_get(q, &g, 0), 0);
        if (i < before)
            check_msg(g, (int64_t)i, 0);
        else
            check_msg(g, 100, size);
        tk_args_free(g);
    }
    tk_queue_free(q);
    return rc;
}

static long lost_gets;

/* A get of a large item, then of a small one. A shared queue allocates the
 * item's buffer before the item leaves the ring (a failure there loses
 * nothing) and then decodes it (a failure there loses that item, as
 * CPython's Queue.get loses an item whose unpickling fails). A thread
 * queue allocates nothing. */
static int sc_queue_get(void)
{
    tk_queue *q = tk_queue_new(0, qflags);
    assert_non_null(q);
    assert_int_equal(tk_queue_put(q, msg(1, BIG), 0), 0);
    assert_int_equal(tk_queue_put(q, msg(2, 0), 0), 0);
    tk_args *g = (tk_args *)1;
    tt_arm();
    int rc = tk_queue_get(q, &g, 0);
    tt_disarm();
    if (rc == 0) {
        check_msg(g, 1, BIG);
    } else {
        assert_null(g);
        if (tk_queue_size(q) == 2) { /* nothing lost: the get works again */
            assert_int_equal(tk_queue_get(q, &g, 0), 0);
            check_msg(g, 1, BIG);
        } else {
            lost_gets++;
            assert_int_equal(tk_queue_size(q), 1);
        }
    }
    tk_args_free(g);
    assert_int_equal(tk_queue_get(q, &g, 0), 0);
    check_msg(g, 2, 0);
    tk_args_free(g);
    queue_roundtrip(q);
    tk_queue_free(q);
    return rc;
}

static void queue_allocation_points(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        tt_scenario run;
    } cases[] = {
        {"tk_queue_new", sc_queue_new},
        {"tk_queue_new_ex", sc_queue_new_ex},
        {"tk_queue_put", sc_queue_put},
        {"tk_queue_get", sc_queue_get},
    };
    long points[2][4];
    for (unsigned f = 0; f <= TK_SHARED; f += TK_SHARED) {
        qflags = f;
        for (size_t i = 0; i < 4; i++) {
            char name[64];
            snprintf(name, sizeof name, "%s(%s)", cases[i].name, f ? "TK_SHARED" : "0");
            points[f][i] = tt_fault_sweep(name, cases[i].run);
        }
    }
    /* Every constructor and put allocates; a thread queue's get does not
     * (it hands out the stored bag), a shared one's does. */
    for (unsigned f = 0; f <= 1; f++)
        for (size_t i = 0; i < 3; i++)
            assert_true(points[f][i] >= 1);
    assert_int_equal(points[0][3], 0);
    assert_true(points[1][3] >= 2);
    print_message("shared get: %ld of %ld failures lost the item (decode)\n", lost_gets,
                  points[1][3]);
}

/* ----------------------------------------------------------------- pipes */

static bool pipe_duplex;

static int sc_pipe_new(void)
{
    int fds = tt_count_fds();
    tk_conn *a = (tk_conn *)1, *b = (tk_conn *)1;
    tt_arm();
    int rc = tk_pipe_new(&a, &b, pipe_duplex);
    tt_disarm();
    if (rc == 0) {
        tk_args *m = msg(3, 0), *g = NULL;
        assert_int_equal(tk_conn_send(b, m), 0);
        assert_int_equal(tk_conn_recv(a, &g, 5), 0);
        check_msg(g, 3, 0);
        tk_args_free(g);
        tk_args_free(m);
    } else {
        assert_null(a);
        assert_null(b);
        assert_int_equal(tt_count_fds(), fds); /* both descriptors closed */
    }
    tk_conn_close(a);
    tk_conn_close(b);
    assert_int_equal(tt_count_fds(), fds);
    return rc;
}

static size_t conn_size;

/* A send copies the message; on failure nothing reached the peer (a
 * message is sent whole or not at all) and the next send works. */
static int sc_conn_send(void)
{
    tk_conn *a, *b;
    assert_int_equal(tk_pipe_new(&a, &b, true), 0);
    tk_args *m = msg(4, conn_size);
    tt_arm();
    int rc = tk_conn_send(a, m);
    tt_disarm();
    check_msg(m, 4, conn_size); /* the caller's, unchanged */
    tk_args *g = NULL;
    if (rc != 0) {
        assert_int_equal(tk_conn_poll(b, 0), 0);
        assert_int_equal(tk_conn_send(a, m), 0);
    }
    assert_int_equal(tk_conn_recv(b, &g, 5), 0);
    check_msg(g, 4, conn_size);
    tk_args_free(g);
    tk_args_free(m);
    tk_conn_close(a);
    tk_conn_close(b);
    return rc;
}

static long lost_recvs;

/* A recv of a small message: it is copied out of the ring on the stack, so
 * only decoding allocates, and a failure there loses the message (as in
 * CPython). A failure before the message is taken would leave it in the
 * pipe. Either way the conn carries the next message. */
static int sc_conn_recv(void)
{
    tk_conn *a, *b;
    assert_int_equal(tk_pipe_new(&a, &b, true), 0);
    tk_args *m = msg(5, conn_size);
    assert_int_equal(tk_conn_send(a, m), 0);
    tk_args *g = (tk_args *)1;
    tt_arm();
    int rc = tk_conn_recv(b, &g, 5);
    tt_disarm();
    if (rc == 0) {
        check_msg(g, 5, conn_size);
    } else {
        assert_null(g);
        if (tk_conn_poll(b, 0) == 1) {
            assert_int_equal(tk_conn_recv(b, &g, 5), 0);
            check_msg(g, 5, conn_size);
        } else {
            lost_recvs++;
        }
    }
    tk_args_free(g);
    g = NULL;
    assert_int_equal(tk_conn_send(a, m), 0);
    assert_int_equal(tk_conn_recv(b, &g, 5), 0);
    check_msg(g, 5, conn_size);
    tk_args_free(g);
    tk_args_free(m);
    tk_conn_close(a);
    tk_conn_close(b);
    return rc;
}

/* A message too large to copy through the stack: recv allocates its
 * buffer. If that allocation fails, the message must still leave the ring
 * whole: the next recv must give the next message. */
static long desyncs;

static int sc_conn_recv_large(void)
{
    tk_conn *a, *b;
    assert_int_equal(tk_pipe_new(&a, &b, true), 0);
    tk_args *m = msg(6, BIG);
    assert_int_equal(tk_conn_send(a, m), 0);
    tk_args *g = (tk_args *)1;
    assert_int_equal(tk_conn_poll(b, 0), 1);
    tt_arm();
    int rc = tk_conn_recv(b, &g, 5);
    tt_disarm();
    /* The checks below make more calls: keep this call's error for the sweep. */
    int code = tk_last_error_code();
    char text[256];
    snprintf(text, sizeof text, "%s", tk_last_error());
    tk_args *next = msg(7, 0);
    assert_int_equal(tk_conn_send(a, next), 0);
    if (rc == 0) {
        check_msg(g, 6, BIG);
        tk_args_free(g);
    } else {
        assert_null(g);
        /* What the next recvs give until the next message arrives. */
        int junk = 0, first_err = 0;
        char first_msg[200] = "";
        for (;;) {
            int r = tk_conn_recv(b, &g, 5);
            if (r == 0)
                break;
            if (junk++ == 0) {
                first_err = r;
                snprintf(first_msg, sizeof first_msg, "%s", tk_last_error());
            }
            assert_true(junk < 10);
        }
        int64_t tag = 0;
        assert_int_equal(tk_args_get_int(g, 0, &tag), 0);
        if (tag == 6) { /* the message was kept: then the next one */
            check_msg(g, 6, BIG);
            tk_args_free(g);
            assert_int_equal(tk_conn_recv(b, &g, 5), 0);
        }
        check_msg(g, 7, 0);
        tk_args_free(g);
        if (junk > 0) {
            desyncs++;
            tt_deviation("tk_conn_recv: after TK_ENOMEM on a %d-byte message its continuation "
                      "records stayed in the pipe; the next %d recv(s) failed, first with "
                      "%s (%s)", BIG, junk, tk_err_name(first_err), first_msg);
        }
    }
    tk_args_free(next);
    tk_args_free(m);
    tk_conn_close(a);
    tk_conn_close(b);
    if (rc != 0)
        tk__error(code, "%s", text);
    return rc;
}

static void pipe_allocation_points(void **state)
{
    (void)state;
    /* The two ends and this process's hold on their shared page. */
    pipe_duplex = true;
    assert_int_equal(tt_fault_sweep("tk_pipe_new(duplex)", sc_pipe_new), 3);
    pipe_duplex = false;
    assert_int_equal(tt_fault_sweep("tk_pipe_new(one-way)", sc_pipe_new), 3);
    conn_size = 0; /* encoded on the stack: no allocation */
    assert_int_equal(tt_fault_sweep("tk_conn_send(small)", sc_conn_send), 0);
    conn_size = BIG;
    assert_int_equal(tt_fault_sweep("tk_conn_send(large)", sc_conn_send), 1);
    conn_size = 0;
    assert_true(tt_fault_sweep("tk_conn_recv(small)", sc_conn_recv) >= 1);
    assert_true(tt_fault_sweep("tk_conn_recv(large)", sc_conn_recv_large) >= 2);
    print_message("recv: %ld failure(s) lost the message while decoding, %ld left the pipe "
                  "out of step\n", lost_recvs, desyncs);
}

/* ----------------------------------------------------------------- pools */

/* A gate a pool worker waits in (shared memory: process workers too), so
 * that the call under test runs while no worker allocates. */
struct gate {
    atomic_int entered, open;
};
static struct gate *gate;

static int task_gate(const tk_args *a, const tk_kwargs *k, tk_args *r)
{
    (void)a;
    (void)k;
    (void)r;
    atomic_store(&gate->entered, 1);
    while (!atomic_load(&gate->open))
        usleep(200);
    return 0;
}

/* Returns args[0] + args[1] (+ kwargs "add" when given). */
static int task_sum(const tk_args *a, const tk_kwargs *k, tk_args *r)
{
    int64_t x = 0, y = 0, z = 0;
    if (tk_args_get_int(a, 0, &x) < 0 || tk_args_get_int(a, 1, &y) < 0)
        return TK_EARGS;
    if (tk_kwargs_has(k, "add") && tk_kwargs_get_int(k, "add", &z) < 0)
        return TK_EARGS;
    return tk_args_add_int(r, x + y + z);
}

/* Doubles args[0]. */
static int task_double(const tk_args *a, const tk_kwargs *k, tk_args *r)
{
    (void)k;
    int64_t x = 0;
    if (tk_args_get_int(a, 0, &x) < 0)
        return TK_EARGS;
    return tk_args_add_int(r, 2 * x);
}

static tk_pool_kind pool_kind;

/* Shows the pool works: one task, its result checked. */
static void pool_works(tk_pool *p)
{
    tk_future *f = tk_pool_submit(p, task_sum, tk_args_of("ii", 20, 22), NULL);
    assert_non_null(f);
    const tk_args *res = NULL;
    assert_int_equal(tk_future_result(f, 30, &res), 0);
    int64_t v = 0;
    assert_int_equal(tk_args_get_int(res, 0, &v), 0);
    assert_int_equal(v, 42);
    tk_future_free(f);
}

/* Holds the pool's only worker in the gate. */
static tk_future *hold_worker(tk_pool *p)
{
    atomic_store(&gate->entered, 0);
    atomic_store(&gate->open, 0);
    tk_future *g = tk_pool_submit(p, task_gate, NULL, NULL);
    assert_non_null(g);
    while (!atomic_load(&gate->entered))
        usleep(200);
    return g;
}

static void release_worker(tk_future *g)
{
    atomic_store(&gate->open, 1);
    assert_int_equal(tk_future_wait(g, 30), 0);
    tk_future_free(g);
}

static int sc_pool_new(void)
{
    tt_arm();
    tk_pool *p = tk_pool_new(pool_kind, 2);
    tt_disarm();
    int rc = tt_ctor_rc(p);
    if (p)
        pool_works(p);
    tk_pool_free(p);
    return rc;
}

static atomic_int init_calls;

static int init_count(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    int64_t v = 0;
    if (tk_args_get_int(a, 0, &v) == 0 && v == 9)
        atomic_fetch_add(&init_calls, 1);
    return 0;
}

/* With an initializer and initargs (taken, also on failure). A thread
 * pool's workers run the initializer during the call; its kwargs are the
 * shared empty bag, made once per program: a fault that hits a worker
 * making it means that worker's initializer does not run, which it reports
 * on stderr as pool.h documents for a failing initializer (test_pool
 * checks the message). Process workers run it in the child, which has no
 * fault armed. */
static int sc_pool_new_ex(void)
{
    atomic_store(&init_calls, 0);
    tk_args *ia = tk_args_of("i", 9);
    assert_non_null(ia);
    tt_arm();
    tk_pool *p = tk_pool_new_ex(pool_kind, 2, init_count, ia);
    if (p && pool_kind == TK_POOL_THREADS) {
        /* Until both workers ran the initializer or one took the fault. */
        double end = tt_now() + 30;
        while (atomic_load(&init_calls) < 2 && !(tt_fault_fired() && atomic_load(&init_calls) == 1))
            if (tt_now() > end)
                fail_msg("thread pool initializers never ran");
            else
                usleep(200);
    }
    bool fired = tt_fault_fired();
    tt_disarm();
    int rc = tt_ctor_rc(p);
    if (p) {
        pool_works(p);
        if (pool_kind == TK_POOL_THREADS && fired) {
            assert_int_equal(atomic_load(&init_calls), 1);
            rc = TT_FAULT_ELSEWHERE; /* reported on stderr, the worker carries on */
        } else if (pool_kind == TK_POOL_THREADS) {
            assert_int_equal(atomic_load(&init_calls), 2);
        }
    }
    tk_pool_free(p);
    return rc;
}

/* Submits while the worker is held in the gate, so only the caller
 * allocates. A failure returns NULL with TK_ENOMEM, takes both bags, and
 * the pool runs the next task. */
static int sc_pool_submit(void)
{
    tk_pool *p = tk_pool_new(pool_kind, 1);
    assert_non_null(p);
    tk_future *g = hold_worker(p);
    tk_args *a = tk_args_of("ii", 1, 2);
    tk_kwargs *k = tk_kwargs_of("add:i", 3);
    tt_arm();
    tk_future *f = tk_pool_submit(p, task_sum, a, k);
    tt_disarm();
    int rc = tt_ctor_rc(f);
    release_worker(g);
    if (f) {
        const tk_args *res = NULL;
        int64_t v = 0;
        assert_int_equal(tk_future_result(f, 30, &res), 0);
        assert_int_equal(tk_args_get_int(res, 0, &v), 0);
        assert_int_equal(v, 6);
        tk_future_free(f);
    }
    pool_works(p);
    tk_pool_free(p);
    return rc;
}

#define MAP_N 6

static size_t map_chunk; /* 0: tk_pool_map; else tk_pool_map_ex with it */

/* A map over a fresh one-worker pool. The caller allocates (its futures;
 * in a process pool, the results it decodes) and in a thread pool the
 * worker allocates too (one result bag per item), interleaved with the
 * caller: a fault there fails that item (TK_ETASK, status TK_ENOMEM).
 * Either way every item was taken, each result is right or NULL, and the
 * pool works on. */
static int sc_pool_map(void)
{
    tk_pool *p = tk_pool_new(pool_kind, 1);
    assert_non_null(p);
    pool_works(p); /* the worker's lazily made state */
    tk_args *items[MAP_N], *results[MAP_N];
    for (int i = 0; i < MAP_N; i++) {
        items[i] = tk_args_of("i", i);
        results[i] = (tk_args *)1;
    }
    tt_arm();
    int rc = map_chunk ? tk_pool_map_ex(p, task_double, items, MAP_N, results, map_chunk)
                       : tk_pool_map(p, task_double, items, MAP_N, results);
    tt_disarm();
    int failed = 0;
    for (int i = 0; i < MAP_N; i++) {
        if (results[i]) {
            int64_t v = -1;
            assert_int_equal(tk_args_get_int(results[i], 0, &v), 0);
            assert_int_equal(v, 2 * i);
        } else {
            failed++;
        }
        tk_args_free(results[i]);
    }
    if (rc == 0)
        assert_int_equal(failed, 0);
    if (rc == TK_ETASK) {
        /* An item failed for want of memory: where? */
        assert_true(strstr(tk_last_error(), "out of memory") != NULL);
        if (pool_kind == TK_POOL_THREADS) {
            char want[64];
            snprintf(want, sizeof want, "(status %d)", TK_ENOMEM);
            assert_true(strstr(tk_last_error(), want) != NULL);
            rc = TT_FAULT_ELSEWHERE; /* the worker's result bag */
        } else {
            tt_deviation("tk_pool_map(processes): out of memory decoding a result in the caller "
                      "gave TK_ETASK (%s), not TK_ENOMEM", tk_last_error());
            rc = TK_ENOMEM;
            tk__error(TK_ENOMEM, "out of memory (reported as: TK_ETASK)");
        }
    }
    pool_works(p);
    tk_pool_free(p);
    return rc;
}

static atomic_int cb_calls;

static void cb_count(tk_future *f, void *ud)
{
    (void)f;
    atomic_fetch_add(&cb_calls, *(int *)ud);
}

/* On a pending future (worker held in the gate) and on a done one. A
 * failed add registers nothing: the callback never runs. */
static int sc_add_done_callback_pending(void)
{
    atomic_store(&cb_calls, 0);
    tk_pool *p = tk_pool_new(pool_kind, 1);
    assert_non_null(p);
    tk_future *g = hold_worker(p);
    tk_future *f = tk_pool_submit(p, task_sum, tk_args_of("ii", 1, 1), NULL);
    assert_non_null(f);
    static int one = 1, ten = 10;
    assert_int_equal(tk_future_add_done_callback(f, cb_count, &ten), 0);
    tt_arm();
    int rc = tk_future_add_done_callback(f, cb_count, &one);
    tt_disarm();
    release_worker(g);
    assert_int_equal(tk_future_wait(f, 30), 0);
    tk_pool_free(p); /* callbacks have run once the pool is joined */
    assert_int_equal(atomic_load(&cb_calls), rc == 0 ? 11 : 10);
    tk_future_free(f);
    return rc;
}

static int sc_add_done_callback_done(void)
{
    atomic_store(&cb_calls, 0);
    tk_pool *p = tk_pool_new(pool_kind, 1);
    assert_non_null(p);
    tk_future *f = tk_pool_submit(p, task_sum, tk_args_of("ii", 1, 1), NULL);
    assert_non_null(f);
    assert_int_equal(tk_future_wait(f, 30), 0);
    static int one = 1;
    tt_arm();
    int rc = tk_future_add_done_callback(f, cb_count, &one);
    tt_disarm();
    assert_int_equal(atomic_load(&cb_calls), rc == 0 ? 1 : 0);
    assert_int_equal(tk_future_add_done_callback(f, cb_count, &one), 0); /* still works */
    assert_int_equal(atomic_load(&cb_calls), rc == 0 ? 2 : 1);
    tk_future_free(f);
    tk_pool_free(p);
    return rc;
}

static void pool_sweeps(tk_pool_kind kind)
{
    pool_kind = kind;
    const char *kn = kind == TK_POOL_THREADS ? "threads" : "processes";
    char name[80];
    long pts;
#define SWEEP(label, fn, check)                                                \
    do {                                                                       \
        snprintf(name, sizeof name, "%s(%s)", label, kn);                      \
        pts = tt_fault_sweep(name, fn);                                           \
        assert_true(check);                                                    \
    } while (0)
    SWEEP("tk_pool_new", sc_pool_new, pts >= 2);
    SWEEP("tk_pool_new_ex", sc_pool_new_ex, pts >= 2);
    SWEEP("tk_pool_submit", sc_pool_submit, pts >= 1);
    map_chunk = 0;
    SWEEP("tk_pool_map", sc_pool_map, pts >= MAP_N + 1);
    map_chunk = 4; /* two chunks: 4 items and 2 */
    SWEEP("tk_pool_map_ex(chunksize 4)", sc_pool_map, pts >= 3);
    SWEEP("tk_future_add_done_callback(pending)", sc_add_done_callback_pending, pts == 1);
    SWEEP("tk_future_add_done_callback(done)", sc_add_done_callback_done, pts == 1);
#undef SWEEP
}

static void thread_pool_allocation_points(void **state)
{
    (void)state;
    pool_sweeps(TK_POOL_THREADS);
}

static void process_pool_allocation_points(void **state)
{
    (void)state;
    int zombies = tt_count_zombies();
    pool_sweeps(TK_POOL_PROCESSES);
    assert_int_equal(tt_count_zombies(), zombies);
}

int main(void)
{
    /* Before the library registers its own handlers: children are
     * disarmed before any of them allocates. */
    pthread_atfork(NULL, NULL, child_disarm);
    gate = mmap(NULL, sizeof *gate, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (gate == MAP_FAILED)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(queue_allocation_points),
        cmocka_unit_test(pipe_allocation_points),
        cmocka_unit_test(thread_pool_allocation_points),
        cmocka_unit_test(process_pool_allocation_points),
    };
    int rc = cmocka_run_group_tests_name("faults_queue", tests, NULL, NULL);
    printf("faults_queue: %ld allocation failures injected (%ld hit a pool worker), "
           "%ld deviation(s)\n", tt_total_faults, tt_total_elsewhere, tt_deviations);
    return rc;
}
