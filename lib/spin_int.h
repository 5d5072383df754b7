/*
 * spin_int.h - brief, adaptive spinning before a sleep (pools, futures,
 * queues).
 *
 * A waiter that expects its condition within microseconds (the next task
 * of a busy producer, the answer of a peer that is running) saves two
 * system calls and a context switch by watching for it briefly first. On a
 * loaded machine the peer is often not running, and spinning only burns the
 * CPU it needs: so each waiting site keeps a budget that doubles when a
 * spin succeeds and halves when it fails, between SPIN_MIN and SPIN_MAX
 * pauses.
 */
#ifndef TK_SPIN_INT_H
#define TK_SPIN_INT_H

#include <stdatomic.h>
#include <stdbool.h>

#define TK__SPIN_MIN 16
#define TK__SPIN_MAX 4096

static inline void tk__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Spins while !ready(arg), for at most *budget pauses; adapts *budget.
 * Returns ready(arg)'s last value. A budget of 0 starts at the minimum. */
static inline bool tk__spin(atomic_int *budget, bool (*ready)(void *), void *arg)
{
    int b = atomic_load_explicit(budget, memory_order_relaxed);
    if (b < TK__SPIN_MIN)
        b = TK__SPIN_MIN;
    for (int i = 0; i < b; i++) {
        if (ready(arg)) {
            int nb = b < TK__SPIN_MAX / 2 ? b * 2 : TK__SPIN_MAX;
            atomic_store_explicit(budget, nb, memory_order_relaxed);
            return true;
        }
        tk__cpu_relax();
    }
    atomic_store_explicit(budget, b / 2, memory_order_relaxed);
    return ready(arg);
}

#endif /* TK_SPIN_INT_H */
