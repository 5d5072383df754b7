/*
 * bench/lock.c - locks, uncontended and contended.
 *
 * One operation is an acquire + release pair (uncontended), or one increment
 * of a shared counter under the lock (contended: the counting threads are
 * plain pthreads on every C side; only the lock differs). GLib's GMutex and
 * Python's threading.Lock are bench/glib/peer.c and bench/peers.py ("lock",
 * "counter").
 */
#include <pthread.h>
#include <taskkit.h>

#include "harness.h"
#include "modules.h"

#define HAVE_TK BENCH_HAVE_SYNC
#define MAX_THREADS 8

static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static long counter;

static void mutex_pair(void *ctx, long n)
{
    (void)ctx;
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&mutex);
        pthread_mutex_unlock(&mutex);
    }
}

static void mutex_count(void *ctx, long n)
{
    (void)ctx;
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&mutex);
        counter++;
        pthread_mutex_unlock(&mutex);
    }
}

#if HAVE_TK
static tk_lock *lock;

static void tk_pair(void *ctx, long n)
{
    (void)ctx;
    for (long i = 0; i < n; i++) {
        if (tk_lock_acquire(lock, TK_FOREVER) < 0)
            bh_die(tk_last_error());
        tk_lock_release(lock);
    }
}

static void tk_count(void *ctx, long n)
{
    (void)ctx;
    for (long i = 0; i < n; i++) {
        if (tk_lock_acquire(lock, TK_FOREVER) < 0)
            bh_die(tk_last_error());
        counter++;
        tk_lock_release(lock);
    }
}
#endif

static void *idle_thread(void *gate)
{
    bh_gate_wait(gate);
    return NULL;
}

/* ------------------------------------------------------------ contention */

/* A contended side: `threads` pthreads share the n increments, each running
 * `count` (the lock-specific loop) on its slice. The clock runs from the
 * moment all of them are up until the last one is done. */
struct crowd {
    bh_body count;
    int threads;
    long each;
    pthread_barrier_t go;
    double start[MAX_THREADS], end[MAX_THREADS];
};

struct member {
    struct crowd *c;
    int i;
};

static void *crowd_thread(void *arg)
{
    struct member *m = arg;
    pthread_barrier_wait(&m->c->go);
    m->c->start[m->i] = bh_now();
    m->c->count(NULL, m->c->each);
    m->c->end[m->i] = bh_now();
    return NULL;
}

/* Returns the time from the first thread's start to the last one's end. */
static double contended(void *ctx, long n)
{
    struct crowd *c = ctx;
    pthread_t t[MAX_THREADS];
    struct member m[MAX_THREADS];
    c->each = n / c->threads > 0 ? n / c->threads : 1;
    counter = 0;
    pthread_barrier_init(&c->go, NULL, c->threads);
    for (int i = 0; i < c->threads; i++) {
        m[i] = (struct member){c, i};
        if (pthread_create(&t[i], NULL, crowd_thread, &m[i]) != 0)
            bh_die("pthread_create failed");
    }
    double first = INFINITY, last = 0;
    for (int i = 0; i < c->threads; i++) {
        pthread_join(t[i], NULL);
        first = c->start[i] < first ? c->start[i] : first;
        last = c->end[i] > last ? c->end[i] : last;
    }
    pthread_barrier_destroy(&c->go);
    if (counter != c->each * c->threads)
        bh_die("lost increments: the lock does not exclude");
    return (last - first) * n / (c->each * c->threads);
}

int main(void)
{
    bh_init("lock");
#if HAVE_TK
    lock = tk_lock_new(0);
    if (lock == NULL)
        bh_die(tk_last_error());
    bh_body tk_pair_fn = tk_pair, tk_count_fn = tk_count;
#else
    bh_body tk_pair_fn = NULL, tk_count_fn = NULL;
#endif
    struct bh_side pair[] = {
        {.impl = "libtaskkit tk_lock", .body = tk_pair_fn},
        {.impl = "pthread_mutex", .body = mutex_pair, .max_ratio = 1.25},
        {.impl = "GLib GMutex", .peer = "glib lock"},
        {.impl = "Python Lock", .peer = "py lock"},
    };
    bh_section("Locks");
    bh_row("uncontended, single-threaded process", pair, 4);
    /* glibc skips the atomic instructions while a process has one thread;
     * a lock matters in threaded programs, so measure that case too. */
    struct bh_gate gate;
    pthread_t idle;
    bh_gate_open(&gate);
    if (pthread_create(&idle, NULL, idle_thread, &gate) != 0)
        bh_die("pthread_create failed");
    pair[2].peer = "glib lock_mt";
    pair[3].peer = "py lock_mt";
    bh_row("uncontended, another thread alive", pair, 4);
    bh_gate_release(&gate);
    pthread_join(idle, NULL);
    bh_gate_close(&gate);

    /* 2 threads x 1M increments (x 100k in quick mode), time per increment. */
    long job = bh.quick ? 200000 : 2000000;
    struct crowd tk2 = {.count = tk_count_fn, .threads = 2};
    struct crowd raw2 = {.count = mutex_count, .threads = 2};
    struct bh_side count2[] = {
        {.impl = "libtaskkit tk_lock", .timed = tk_count_fn ? contended : NULL, .ctx = &tk2,
         .fixed_n = job},
        {.impl = "pthread_mutex", .timed = contended, .ctx = &raw2, .fixed_n = job,
         .max_ratio = 1.5},
        {.impl = "GLib GMutex", .peer = "glib counter", .fixed_n = job},
        {.impl = "Python Lock", .peer = "py counter", .fixed_n = job},
    };
    /* Two threads on two vCPUs run either side by side or in turns, in
     * stretches of tens of milliseconds (13 or 30+ ns an increment, for
     * every implementation alike): more rounds (bh_row_more). */
    bh_row_more(bh.quick ? "2 threads x 100k increments, per incr."
                         : "2 threads x 1M increments, per incr.",
                count2, 4, 1);

    static const int threads[] = {1, 2, 4, 8};
    struct crowd tkc = {.count = tk_count_fn, .threads = 1};
    struct crowd rawc = {.count = mutex_count, .threads = 1};
    struct bh_side curve[] = {
        {.impl = "libtaskkit tk_lock", .timed = tk_count_fn ? contended : NULL, .ctx = &tkc,
         .min_n = 1 << 16},
        {.impl = "pthread_mutex", .timed = contended, .ctx = &rawc, .min_n = 1 << 16},
    };
    bh_curve_begin("lock_vs_threads", "Locked increment vs contending threads",
                   "threads incrementing one counter", false, curve, 2);
    for (size_t i = 0; i < sizeof threads / sizeof threads[0]; i++) {
        char x[16];
        tkc.threads = rawc.threads = threads[i];
        snprintf(x, sizeof x, "%d", threads[i]);
        bh_curve_point(x, curve, 2);
    }
    bh_curve_end();
#if HAVE_TK
    tk_lock_free(lock);
#endif
    return bh_finish();
}
