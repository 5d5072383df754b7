/*
 * 4. Summary: processes versus threads.
 *   "Creating a process costs more resources than creating a thread.
 *    Processes cannot share global variables; threads can (beware of races).
 *    Processes can use several cores; threads are cheap but cannot use
 *    several cores."
 *
 * Measured here. The last claim is true of CPython only: its global
 * interpreter lock (GIL) lets one thread at a time run Python code, so
 * CPU-bound Python threads take turns. C has no such lock: two threads of
 * one process run on two cores at once, as the speed-up below shows.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <taskkit.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int g; /* a global variable */

static int nothing(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    return 0;
}

static int set_g(const tk_args *a, const tk_kwargs *k)
{
    (void)a;
    (void)k;
    g = 1;
    return 0;
}

/* Keeps the compiler from skipping the work. Atomic because two threads
 * store to it at once in the threads measurement (a plain or volatile
 * variable would be a data race). */
static _Atomic uint64_t sink;

static void work(int64_t rounds)
{
    uint64_t x = 1;
    for (int64_t i = 0; i < rounds; i++)
        x = x * 6364136223846793005u + 1442695040888963407u;
    atomic_store_explicit(&sink, x, memory_order_relaxed);
}

static int spin(const tk_args *a, const tk_kwargs *k)
{
    int64_t rounds;
    if (tk_bind(a, k, "spin(rounds:l)", &rounds) < 0)
        return -1;
    work(rounds);
    return 0;
}

/* Creates, starts and joins n workers running target at once (a process
 * or a thread each); returns the elapsed seconds. */
static double run(bool process, int n, tk_target target, int64_t rounds)
{
    void *w[2];
    double t0 = now();
    for (int i = 0; i < n; i++) {
        tk_args *a = tk_args_of("l", rounds);
        w[i] = process ? (void *)tk_process_new(target, a, NULL) : (void *)tk_thread_new(target, a, NULL);
        if (!w[i] || (process ? tk_process_start(w[i]) : tk_thread_start(w[i])) < 0) {
            fprintf(stderr, "error: %s\n", tk_last_error());
            return -1;
        }
    }
    for (int i = 0; i < n; i++) {
        if (process) {
            tk_process_join(w[i], TK_FOREVER);
            tk_process_free(w[i]);
        } else {
            tk_thread_join(w[i], TK_FOREVER);
            tk_thread_free(w[i]);
        }
    }
    return now() - t0;
}

int main(void)
{
    printf("== 4 Summary: processes versus threads, measured ==\n");
    double tp = 0, tt = 0;
    for (int i = 0; i < 20; i++) {
        tp += run(true, 1, nothing, 0);
        tt += run(false, 1, nothing, 0);
    }
    printf("creation cost (create, start, join): process %7.1f µs, thread %7.1f µs\n",
           tp / 20 * 1e6, tt / 20 * 1e6);

    run(true, 1, set_g, 0);
    printf("globals: a child process's change is seen by the parent: %s\n", g ? "yes" : "no");
    run(false, 1, set_g, 0);
    printf("globals: a thread's change is seen by the main thread: %s\n", g ? "yes" : "no");

    if (tk_cpu_count() < 2) {
        printf("CPU-bound work: only 1 CPU is available here, so no speed-up can be shown\n");
        return 0;
    }
    int64_t rounds = 1 << 20; /* calibrate: about 0.2 s of work for one thread */
    double t, t0;
    while ((t0 = now(), work(rounds), t = now() - t0) < 0.05)
        rounds *= 2;
    rounds = (int64_t)((double)rounds * 0.2 / t);
    double one = run(false, 1, spin, 2 * rounds); /* all the work in one thread */
    double two = run(false, 2, spin, rounds);     /* half of it in each of two */
    printf("CPU-bound work: 1 thread %.2f s, 2 threads %.2f s -> speed-up %.1fx\n", one, two,
           one / two);
    printf("(CPython threads would show about 1.0x here: the GIL lets them take turns only)\n");
    return 0;
}
