/*
 * 1. Multitasking: its two forms.
 *   "Parallelism: over a span of time several tasks really execute at the
 *    same moment; on a multi-core CPU the OS gives each core a task.
 *    Concurrency: over a span of time several tasks execute in turns
 *    (interleaved)."
 *
 * Two CPU-bound tasks (child processes) pinned to the same CPU can only take
 * turns: together they need about twice the time of one. Given one CPU each
 * they really run at the same moment: about the time of one. The times are
 * measured, so they vary with the machine's load.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_setaffinity(), CPU_SET() */
#endif
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <taskkit.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static volatile uint64_t sink; /* keeps the compiler from skipping the work */

static void spin(int64_t rounds)
{
    uint64_t x = 1;
    for (int64_t i = 0; i < rounds; i++)
        x = x * 6364136223846793005u + 1442695040888963407u;
    sink = x;
}

/* The task: pin itself to one CPU, then compute. */
static int task(const tk_args *args, const tk_kwargs *kwargs)
{
    int64_t rounds;
    int cpu;
    if (tk_bind(args, kwargs, "task(rounds:l, cpu:i)", &rounds, &cpu) < 0)
        return -1;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
    spin(rounds);
    return 0;
}

/* Runs n tasks at once, task i on cpus[i]; returns the elapsed time. */
static double run1(int n, const int *cpus, int64_t rounds)
{
    tk_process *p[2];
    double t0 = now();
    for (int i = 0; i < n; i++) {
        p[i] = tk_process_new(task, tk_args_of("li", rounds, cpus[i]), NULL);
        if (!p[i] || tk_process_start(p[i]) < 0) {
            fprintf(stderr, "cannot start a task: %s\n", tk_last_error());
            exit(1);
        }
    }
    for (int i = 0; i < n; i++) {
        tk_process_join(p[i], TK_FOREVER);
        tk_process_free(p[i]);
    }
    return now() - t0;
}

/* The best of two runs: less noise from the rest of the machine. */
static double run(int n, const int *cpus, int64_t rounds)
{
    double a = run1(n, cpus, rounds), b = run1(n, cpus, rounds);
    return a < b ? a : b;
}

int main(void)
{
    printf("== 1 Multitasking: concurrency and parallelism ==\n");
    cpu_set_t mine; /* the first two CPUs this program may use */
    int cpu[2] = {0, 0}, found = 0;
    sched_getaffinity(0, sizeof mine, &mine);
    for (int c = 0; c < CPU_SETSIZE && found < 2; c++)
        if (CPU_ISSET(c, &mine))
            cpu[found++] = c;
    /* Calibrate, here in main: about 0.2 s of work for one task. */
    int64_t rounds = 1 << 20;
    double t, t0;
    while ((t0 = now(), spin(rounds), t = now() - t0) < 0.05)
        rounds *= 2;
    rounds = (int64_t)((double)rounds * 0.2 / t);
    double one = run(1, cpu, rounds);
    int same[2] = {cpu[0], cpu[0]};
    double conc = run(2, same, rounds);
    printf("one task alone:                 %.2f s\n", one);
    printf("concurrency (2 tasks, 1 CPU):   %.2f s (%.1fx one task: they took turns)\n",
           conc, conc / one);
    if (found < 2 || tk_cpu_count() < 2) {
        printf("only 1 CPU is available here: the tasks can only take turns, "
               "so parallelism cannot be shown\n");
        return 0;
    }
    double par = run(2, cpu, rounds);
    printf("parallelism (2 tasks, 2 CPUs):  %.2f s (%.1fx one task: they ran at the same time)\n",
           par, par / one);
    return 0;
}
