/*
 * bench/glib/peer.c NAME N - the GLib baselines.
 *
 * Runs benchmark NAME for N operations (after a short untimed warm-up) and
 * prints the time per operation in nanoseconds, like bench/peers.py. Built
 * by tools/run-bench.sh with pkg-config glib-2.0 (it lives in a subfolder so
 * the Makefile, which builds bench/NAME.c without GLib, leaves it alone).
 */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static gint sink;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static gpointer target(gpointer arg)
{
    g_atomic_int_set(&sink, *(int *)arg);
    g_free(arg);
    return NULL;
}

static void thread(long n)
{
    for (long i = 0; i < n; i++) {
        int *arg = g_new(int, 1);
        *arg = (int)i;
        g_thread_join(g_thread_new("bench", target, arg));
    }
}

static GMutex mutex;

static void lock(long n)
{
    for (long i = 0; i < n; i++) {
        g_mutex_lock(&mutex);
        g_mutex_unlock(&mutex);
    }
}

static long counter_value;

static gpointer count(gpointer k)
{
    for (gsize i = 0; i < GPOINTER_TO_SIZE(k); i++) {
        g_mutex_lock(&mutex);
        counter_value++;
        g_mutex_unlock(&mutex);
    }
    return NULL;
}

/* One operation: 2 threads x 1M increments of a shared counter. */
static void counter(long n)
{
    for (long i = 0; i < n; i++) {
        GThread *a = g_thread_new("a", count, GSIZE_TO_POINTER(1000000));
        GThread *b = g_thread_new("b", count, GSIZE_TO_POINTER(1000000));
        g_thread_join(a);
        g_thread_join(b);
    }
}

/* GThreadPool: push n empty tasks, wait until all have run. */
static GThreadPool *pool;
static GMutex done_mutex;
static GCond done_cond;
static long done;

static void pool_task(gpointer data, gpointer user)
{
    (void)data;
    (void)user;
    g_mutex_lock(&done_mutex);
    if (++done == 0)
        g_cond_signal(&done_cond);
    g_mutex_unlock(&done_mutex);
}

static void pool_tiny(long n)
{
    g_mutex_lock(&done_mutex);
    done = -n;
    g_mutex_unlock(&done_mutex);
    for (long i = 0; i < n; i++)
        g_thread_pool_push(pool, GSIZE_TO_POINTER(i + 1), NULL);
    g_mutex_lock(&done_mutex);
    while (done != 0)
        g_cond_wait(&done_cond, &done_mutex);
    g_mutex_unlock(&done_mutex);
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        void (*run)(long n);
    } benches[] = {{"thread", thread}, {"lock", lock}, {"counter", counter},
                   {"pool", pool_tiny}};
    if (argc != 3) {
        fprintf(stderr, "usage: %s NAME N\n", argv[0]);
        return 2;
    }
    long n = atol(argv[2]);
    pool = g_thread_pool_new(pool_task, NULL, (gint)g_get_num_processors(), FALSE, NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(benches); i++) {
        if (strcmp(argv[1], benches[i].name) != 0)
            continue;
        if (benches[i].run != counter) /* one counter job is long enough */
            benches[i].run(n / 10 + 1);
        double t0 = now_ns();
        benches[i].run(n);
        printf("%.1f\n", (now_ns() - t0) / (n > 0 ? n : 1));
        g_thread_pool_free(pool, FALSE, TRUE);
        return 0;
    }
    fprintf(stderr, "%s: unknown benchmark %s\n", argv[0], argv[1]);
    return 2;
}
