/*
 * bench/thread.c - starting and joining threads.
 *
 * Both sides hand the new thread one int and wait for it: libtaskkit builds
 * the args bag tk_args_of("i", i), the raw side mallocs the int (the thread
 * frees it). GLib and Python do the same in bench/glib/peer.c and
 * bench/peers.py ("thread").
 */
#include <pthread.h>
#include <stdatomic.h>
#include <taskkit.h>

#include "harness.h"
#include "modules.h"

#define HAVE_TK (BENCH_HAVE_THREAD && BENCH_HAVE_ARGS)
#define IDLE_THREADS 1000

static _Atomic long sink;    /* the threads' "work": keeps them from being empty */
static _Atomic long waiting; /* idle threads that reached their gate */

/* ------------------------------------------------------------ raw pthreads */

static void *raw_target(void *arg)
{
    atomic_store_explicit(&sink, *(int *)arg, memory_order_relaxed);
    free(arg);
    return NULL;
}

static void raw_start_join(void *ctx, long n)
{
    (void)ctx;
    for (long i = 0; i < n; i++) {
        int *arg = malloc(sizeof *arg);
        pthread_t t;
        if (arg == NULL)
            bh_die("out of memory");
        *arg = (int)i;
        if (pthread_create(&t, NULL, raw_target, arg) != 0 || pthread_join(t, NULL) != 0)
            bh_die("pthread_create/join failed");
    }
}

static void *raw_idle(void *gate)
{
    atomic_fetch_add(&waiting, 1);
    bh_gate_wait(gate);
    return NULL;
}

/* ------------------------------------------------------------ libtaskkit */

#if HAVE_TK
static int tk_target_fn(const tk_args *args, const tk_kwargs *kwargs)
{
    int64_t v = 0;
    (void)kwargs;
    tk_args_get_int(args, 0, &v);
    atomic_store_explicit(&sink, v, memory_order_relaxed);
    return 0;
}

static void tk_start_join(void *ctx, long n)
{
    (void)ctx;
    for (long i = 0; i < n; i++) {
        tk_thread *t = tk_thread_new(tk_target_fn, tk_args_of("i", (int)i), NULL);
        if (t == NULL || tk_thread_start(t) < 0 || tk_thread_join(t, TK_FOREVER) < 0)
            bh_die(tk_last_error());
        tk_thread_free(t);
    }
}

static int tk_idle(const tk_args *args, const tk_kwargs *kwargs)
{
    void *gate = NULL;
    (void)kwargs;
    tk_args_get_ptr(args, 0, &gate);
    atomic_fetch_add(&waiting, 1);
    bh_gate_wait(gate);
    return 0;
}
#endif

/* ------------------------------------------------------------ idle crowds */

/* n idle threads blocked on one gate: libtaskkit's when it is built. */
struct crowd {
    struct bh_gate gate;
    bool tk;
    long n;
    pthread_t *raw;
#if HAVE_TK
    tk_thread **t;
#endif
};

static void crowd_start(struct crowd *c, long n, bool tk)
{
    bh_gate_open(&c->gate);
    c->n = n;
    c->tk = tk;
    atomic_store(&waiting, 0);
#if HAVE_TK
    if (tk) {
        c->t = malloc(sizeof *c->t * (n ? n : 1));
        for (long i = 0; i < n; i++) {
            c->t[i] = tk_thread_new(tk_idle, tk_args_of("p", (void *)&c->gate), NULL);
            if (c->t[i] == NULL || tk_thread_start(c->t[i]) < 0)
                bh_die(tk_last_error());
        }
    }
#endif
    if (!tk) {
        c->raw = malloc(sizeof *c->raw * (n ? n : 1));
        for (long i = 0; i < n; i++)
            if (pthread_create(&c->raw[i], NULL, raw_idle, &c->gate) != 0)
                bh_die("pthread_create failed");
    }
    while (atomic_load(&waiting) < n) /* every thread is up and blocked */
        usleep(1000);
}

static void crowd_stop(struct crowd *c)
{
    bh_gate_release(&c->gate);
#if HAVE_TK
    if (c->tk) {
        for (long i = 0; i < c->n; i++) {
            tk_thread_join(c->t[i], TK_FOREVER);
            tk_thread_free(c->t[i]);
        }
        free(c->t);
    }
#endif
    if (!c->tk) {
        for (long i = 0; i < c->n; i++)
            pthread_join(c->raw[i], NULL);
        free(c->raw);
    }
    bh_gate_close(&c->gate);
}

/* In a fresh child: RSS and heap growth for IDLE_THREADS idle threads. */
static void idle_cost(void *tk, double *out)
{
    struct crowd c;
    double rss = bh_rss(), heap = bh_heap();
    crowd_start(&c, IDLE_THREADS, tk != NULL);
    out[0] = bh_rss() - rss;
    out[1] = (bh_heap() - heap) / IDLE_THREADS;
    crowd_stop(&c);
}

static void memory_rows(void)
{
    double rss[2][BH_MAX_ROUNDS] = {{0}}, heap[2][BH_MAX_ROUNDS] = {{0}};
    double extra[1][BH_MAX_ROUNDS], extra_heap[1][BH_MAX_ROUNDS], out[2];
    const char *impls[] = {"libtaskkit", "pthread"}, *diff[] = {"libtaskkit - pthread"};
    const char *missing = HAVE_TK ? NULL : "not built yet";
    bh_section("Threads: memory (each round in a fresh child)");
    for (int r = 0; r < bh.rounds; r++) {
        for (int k = 0; k < 2; k++) {
            int side = r % 2 ? 1 - k : k; /* 0 libtaskkit, 1 pthread */
            if (side == 0 && !HAVE_TK)
                continue;
            bh_in_child(idle_cost, side == 0 ? (void *)1 : NULL, out, 2);
            rss[side][r] = out[0];
            heap[side][r] = out[1];
        }
        extra[0][r] = (rss[0][r] - rss[1][r]) / IDLE_THREADS;
        extra_heap[0][r] = heap[0][r] - heap[1][r];
    }
    bh_value_row("RSS of 1,000 idle threads", BH_BYTES, impls, 2, bh.rounds, rss, missing);
    bh_value_row("heap bytes per live thread", BH_BYTES, impls, 2, bh.rounds, heap, missing);
    if (!HAVE_TK)
        return;
    bh_value_row("heap per live thread beyond pthread", BH_BYTES, diff, 1, bh.rounds,
                 extra_heap, NULL);
    bh_value_row("RSS per idle thread beyond pthread", BH_BYTES, diff, 1, bh.rounds, extra,
                 NULL);
}

/* ------------------------------------------------------------ main */

int main(void)
{
    bh_init("thread");
    struct bh_side sides[] = {
#if HAVE_TK
        {.impl = "libtaskkit", .body = tk_start_join},
#else
        {.impl = "libtaskkit"},
#endif
        {.impl = "pthread_create+join", .body = raw_start_join, .max_ratio = 1.10},
        {.impl = "GLib g_thread_new+join", .peer = "glib thread"},
        {.impl = "Python Thread start+join", .peer = "py thread"},
    };
    bh_section("Threads");
    bh_row_more("thread new+start+join+free", sides, 4, 5);

    static const long live[] = {0, 10, 100, 1000};
    bh_curve_begin("thread_start_vs_live", "Thread start+join vs live threads",
                   "threads already alive", false, sides, 2);
    for (size_t i = 0; i < sizeof live / sizeof live[0]; i++) {
        struct crowd c;
        char x[32];
        crowd_start(&c, live[i], HAVE_TK);
        snprintf(x, sizeof x, "%ld", live[i]);
        bh_curve_point(x, sides, 2);
        crowd_stop(&c);
    }
    bh_curve_end();

    memory_rows();
    return bh_finish();
}
