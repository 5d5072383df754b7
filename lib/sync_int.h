/*
 * sync_int.h - the layouts of sync.h's objects and the lock core they share.
 *
 * struct tk__mutex is the one mutual-exclusion primitive under tk_lock,
 * tk_rlock, tk_cond's own lock and tk_barrier's internal lock:
 *   - private (flags without TK_SHARED): a futex word holding the owner's
 *     kernel thread id, plus TK__MUTEX_WAITERS when someone may sleep on
 *     it. Acquire is a CAS 0 -> tid, release an exchange to 0 (and a wake
 *     only if the waiters bit was set), so the uncontended path makes no
 *     system call, no allocation and no clock read. Owner checks read the
 *     word.
 *   - shared: a process-shared robust pthread mutex (so a holder that dies
 *     hands the lock on with EOWNERDEAD), plus `holder`, the holder's tid,
 *     for owner checks and the self-deadlock rule. Kernel tids are unique
 *     across processes, so they identify a holder in any process.
 * Shared objects live entirely in tk_shm_alloc memory, at the same address
 * in every process forked after their creation.
 */
#ifndef TK_SYNC_INT_H
#define TK_SYNC_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "internal.h"
#include "taskkit/sync.h"

/* Kernel tids fit in 22 bits (PID_MAX_LIMIT), so bit 31 is free. */
#define TK__MUTEX_WAITERS 0x80000000u

struct tk__mutex {
    _Atomic uint32_t word; /* private: owner tid | WAITERS, 0 when free */
    unsigned flags;        /* TK_SHARED or 0 */
    atomic_int holder;     /* shared: holder's tid, 0 when free */
    pthread_mutex_t pm;    /* shared only */
};

struct tk_lock {
    struct tk__mutex m;
};

struct tk_rlock {
    struct tk__mutex m;
    unsigned long count; /* touched only by the holder */
};

/*
 * Notification without waiter records (a shared condition cannot link the
 * stacks of different processes): `gen` counts notifies, and a waiter that
 * registered during generation g may claim one of the `to_wake` signals
 * once gen > g. So a notify reaches only threads already waiting, each
 * signal is claimed by exactly one of them (a CAS on to_wake), and every
 * thread asleep at a notify is eligible, so waking k sleepers for k
 * signals is enough. `waiting` counts registered waiters not yet signalled;
 * it and `busy` change only under the condition's lock.
 */
struct tk_cond {
    struct tk_lock *lock;    /* &own, or the caller's lock */
    unsigned flags;
    uint32_t waiting;        /* under the lock */
    uint32_t busy;           /* under the lock: set while a notify is half done */
    _Atomic uint32_t seq;    /* sequence word the waiters sleep on */
    atomic_uint broken;
    _Atomic uint32_t to_wake;
    _Atomic uint64_t gen;
    struct tk_lock own;
};

/*
 * A round ("cycle") ends when the last party arrives, or when the barrier
 * is broken or reset while parties wait. Waiters sleep until `cycle` moves
 * past the one they joined and then read how it ended from `broke_bits`
 * (bit cycle % 64). That history is exact unless 64 further rounds end
 * before a waiter wakes up; such a waiter reports TK_EBROKEN.
 * count/cycle/broken change only under the internal lock `m`; they are
 * atomics so that waiters and the getters may read them without it.
 */
struct tk_barrier {
    struct tk__mutex m;
    unsigned flags;
    unsigned parties;
    atomic_uint count;          /* arrivals in the current round */
    atomic_uint broken;
    _Atomic uint32_t cycle;
    _Atomic uint64_t broke_bits;
    _Atomic uint32_t seq;       /* sequence word the waiters sleep on */
};

/* The calling thread's kernel id, from the runtime's per-thread cache:
 * inline so the lock's fast path costs one TLS load. */
static inline pid_t tk__sync_tid(void)
{
    pid_t t = tk__tls_data.tid;
    return t ? t : tk__gettid();
}

/* Sets up m (private or TK_SHARED). 0 or a negative code with a message. */
int tk__mutex_init(struct tk__mutex *m, unsigned flags);
void tk__mutex_destroy(struct tk__mutex *m);
/* 0 or TK_OWNERDEAD (held), or a negative code with a message naming
 * `what`. Not a cancellation point. */
int tk__mutex_acquire(struct tk__mutex *m, double timeout, const char *what);
/* 0, or TK_ESTATE with CPython's message when the caller is not the holder. */
int tk__mutex_release(struct tk__mutex *m);
/* True when the calling thread holds m. */
bool tk__mutex_owned(struct tk__mutex *m);
/* True when anybody holds m. */
bool tk__mutex_locked(struct tk__mutex *m);

#endif /* TK_SYNC_INT_H */
