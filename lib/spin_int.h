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
 * needs), the budget halves. It stays between SPIN_MIN_NS and SPIN_MAX_NS.
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

/* Spins while !ready(arg), for at most *budget ns. Returns true once
 * ready; false when the budget ran out, with *ended set for
 * tk__spin_learn(). A budget of 0 starts at the minimum. */
static inline bool tk__spin(atomic_int *budget, bool (*ready)(void *), void *arg,
                            long long *ended)
{
    int b = atomic_load_explicit(budget, memory_order_relaxed);
    if (b < TK__SPIN_MIN_NS)
        b = TK__SPIN_MIN_NS;
    long long end = tk__spin_now() + b, t = 0;
    for (;;) {
        for (int i = 0; i < 16; i++) {
            if (ready(arg))
                return true;
            tk__cpu_relax();
        }
        if ((t = tk__spin_now()) >= end)
            break;
    }
    *ended = t;
    return ready(arg);
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
    int b = atomic_load_explicit(budget, memory_order_relaxed);
    if (b < TK__SPIN_MIN_NS)
        b = TK__SPIN_MIN_NS;
    long long end = tk__spin_now() + b, t = 0;
    for (;;) {
        for (int i = 0; i < 16; i++) {
            if (ready(arg))
                return true;
            tk__cpu_relax();
        }
        if ((t = tk__spin_now()) >= end)
            break;
        sched_yield();
    }
    *ended = t;
    return ready(arg);
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
