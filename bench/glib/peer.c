/*
 * bench/glib/peer.c NAME - the GLib baselines.
 *
 * For each count N read from stdin, runs benchmark NAME for N operations
 * (after a short untimed warm-up) and prints the time per operation in
 * nanoseconds, like bench/peers.py. Built
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

/* lock() while another thread is alive (blocked). */
static GMutex idle_mutex;

static gpointer idle(gpointer unused)
{
    (void)unused;
    g_mutex_lock(&idle_mutex);
    g_mutex_unlock(&idle_mutex);
    return NULL;
}

static void lock_mt(long n)
{
    g_mutex_lock(&idle_mutex);
    GThread *t = g_thread_new("idle", idle, NULL);
    lock(n);
    g_mutex_unlock(&idle_mutex);
    g_thread_join(t);
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

/* n increments of a shared counter under a GMutex, by 2 threads. */
static void counter(long n)
{
    GThread *a = g_thread_new("a", count, GSIZE_TO_POINTER(n / 2));
    GThread *b = g_thread_new("b", count, GSIZE_TO_POINTER(n / 2));
    g_thread_join(a);
    g_thread_join(b);
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
    } benches[] = {{"thread", thread}, {"lock", lock}, {"lock_mt", lock_mt}, {"counter", counter},
                   {"pool", pool_tiny}};
    if (argc != 2) {
        fprintf(stderr, "usage: %s NAME < counts\n", argv[0]);
        return 2;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(benches); i++) {
        long n;
        if (strcmp(argv[1], benches[i].name) != 0)
            continue;
        if (benches[i].run == pool_tiny) /* only here: its threads would change "lock" */
            pool = g_thread_pool_new(pool_task, NULL, (gint)g_get_num_processors(), TRUE,
                                     NULL);
        while (scanf("%ld", &n) == 1 && n > 0) {
            benches[i].run(n / 10 + 2);
            double t0 = now_ns();
            benches[i].run(n);
            printf("%.1f\n", (now_ns() - t0) / n);
            fflush(stdout);
        }
        if (pool != NULL)
            g_thread_pool_free(pool, FALSE, TRUE);
        return 0;
    }
    fprintf(stderr, "%s: unknown benchmark %s\n", argv[0], argv[1]);
    return 2;
}
