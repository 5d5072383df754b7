/*
 * spin_int.h - brief, adaptive spinning before a sleep (pools, futures,
 * queues).
 *
 * A waiter that expects its condition within microseconds (the next task
 * of a busy producer, the answer of a peer that is running) saves two
 * system calls and a context switch by watching for it briefly first, and
 * spares its peer the wake-up call too. How long is worth it depends on the
 * peer, so each waiting site keeps a budget in nanoseconds, tuned by what
 * happened after a spin that failed: if the condition came true soon after
 * (within the budget: a near miss), the budget doubles; if it took far
 * longer (the peer is slow or not running: spinning only burns the CPU it
 * needs), the budget halves. A spin that succeeds late in its budget
 * raises it to twice the time it took, and one spin in TK__SPIN_PROBE at
 * the minimum budget probes with the maximum (see there). The budget
 * stays between SPIN_MIN_NS and SPIN_MAX_NS.
 */
#ifndef TK_SPIN_INT_H
#define TK_SPIN_INT_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#define TK__SPIN_MIN_NS 2000
#define TK__SPIN_MAX_NS 100000

static inline void tk__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline long long tk__spin_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* One spin in TK__SPIN_PROBE (per thread) that would use the minimum
 * budget uses the maximum instead. Two parties that each wait for the
 * other (a ping-pong) have two steady states: both spinning, each answer
 * caught within microseconds, or both sleeping, each answer behind a
 * wake-up that, on a VM, takes tens of microseconds, long waits that keep
 * both budgets at the minimum. A long spin from time to time catches an
 * answer across a wake-up and so moves the pair to the first state; for
 * a waiter whose peer is truly slow it costs 1/TK__SPIN_PROBE of a
 * maximum spin per wait. */
#define TK__SPIN_PROBE 16

static inline bool tk__spin_core(atomic_int *budget, bool (*ready)(void *), void *arg,
                                 long long *ended, bool yield)
{
    static _Thread_local unsigned probe;
    int b = atomic_load_explicit(budget, memory_order_relaxed);
    if (b <= TK__SPIN_MIN_NS)
        b = ++probe % TK__SPIN_PROBE == 0 ? TK__SPIN_MAX_NS : TK__SPIN_MIN_NS;
    long long start = tk__spin_now(), end = start + b, t = 0;
    for (;;) {
        for (int i = 0; i < 16; i++) {
            if (ready(arg)) {
                /* Caught late in the budget: a longer one would catch
                 * the next as surely (a probe's catch sets it). */
                long long took = t ? t - start : 0;
                if (2 * took > atomic_load_explicit(budget, memory_order_relaxed))
                    atomic_store_explicit(budget,
                                          (int)(2 * took < TK__SPIN_MAX_NS ? 2 * took
                                                                           : TK__SPIN_MAX_NS),
                                          memory_order_relaxed);
                return true;
            }
            tk__cpu_relax();
        }
        if ((t = tk__spin_now()) >= end)
            break;
        if (yield)
            sched_yield();
    }
    *ended = t;
    return ready(arg);
}

/* Spins while !ready(arg), for at most *budget ns. Returns true once
 * ready; false when the budget ran out, with *ended set for
 * tk__spin_learn(). A budget of 0 starts at the minimum. */
static inline bool tk__spin(atomic_int *budget, bool (*ready)(void *), void *arg,
                            long long *ended)
{
    return tk__spin_core(budget, ready, arg, ended, false);
}

/* tk__spin() for a waiter whose wake-up would come from a thread that may
 * share its CPU (a pool worker waiting for its submitter): between short
 * bursts of watching it yields the CPU, so a spinning worker never holds
 * back the very thread it waits for. Where threads outnumber CPUs (two
 * workers and a submitter on two CPUs), a plain spin cost thread-pool
 * batches twice their time in run-queue waits. */
static inline bool tk__spin_yielding(atomic_int *budget, bool (*ready)(void *), void *arg,
                                     long long *ended)
{
    return tk__spin_core(budget, ready, arg, ended, true);
}

/* After a failed spin that ended at `ended`, the wait is over: tunes the
 * budget by how long it took. */
static inline void tk__spin_learn(atomic_int *budget, long long ended)
{
    int b = atomic_load_explicit(budget, memory_order_relaxed);
    if (b < TK__SPIN_MIN_NS)
        b = TK__SPIN_MIN_NS;
    long long waited = tk__spin_now() - ended;
    if (waited < b)
        b = b < TK__SPIN_MAX_NS / 2 ? b * 2 : TK__SPIN_MAX_NS;
    else if (waited > 8LL * b)
        b = b / 2 > TK__SPIN_MIN_NS ? b / 2 : TK__SPIN_MIN_NS;
    atomic_store_explicit(budget, b, memory_order_relaxed);
}

#endif /* TK_SPIN_INT_H */
