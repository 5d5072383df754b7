/**
 * @file taskkit/sync.h
 * @brief Locks, conditions, semaphores, events, barriers and shared memory:
 *        Python's threading / multiprocessing synchronisation objects.
 *
 * Every primitive is an opaque heap object with a `_new`/`_free` pair and
 * takes `unsigned flags`: `0` for the threads of one process, or
 * #TK_SHARED to also work between the creating process and the children it
 * forks afterwards (and between their threads). A shared object lives in a
 * memory mapping of its own (see tk_shm_alloc()), so each costs one page.
 *
 * **Which primitive to pick**
 *
 * | You need to…                                              | Use |
 * |-----------------------------------------------------------|-----|
 * | protect data so one thread at a time touches it           | ::tk_lock |
 * | … and re-enter it from functions that already hold it     | ::tk_rlock |
 * | wait until some state (guarded by a lock) changes         | ::tk_cond (several conds may share one lock: tk_cond_new_with_lock()) |
 * | limit how many threads use a resource at once, or hand "tokens" from one thread to another | ::tk_sem (#TK_BOUNDED catches extra releases) |
 * | tell any number of threads "it happened" (a latch that stays set) | ::tk_event |
 * | make N threads meet before any goes on, round after round | ::tk_barrier |
 * | share plain data (counters, arrays) with forked children  | tk_shm_alloc() + a #TK_SHARED lock |
 *
 * A tk_lock has an owner: only the thread that acquired it may release it.
 * To signal from one thread to another, use a semaphore or an event, not a
 * lock.
 *
 * **Timeouts** are `double` seconds measured on `CLOCK_MONOTONIC`:
 * #TK_FOREVER (-1.0) and `+INFINITY` block, `0` and any other negative
 * value poll, any finite value is valid, NaN is `TK_EINVAL`.
 *
 * **Cancellation**: event, condition, semaphore and barrier waits are
 * cancellation points: in a thread that receives tk_thread_stop() they
 * return `TK_ECANCELED` promptly (a wait that can complete at once still
 * completes). Lock and rlock acquisition are not, so a stopped thread can
 * still take the locks it needs to clean up.
 *
 * **What survives a process dying (TK_SHARED objects)**
 * - tk_lock / tk_rlock are robust mutexes: if the holder dies, the next
 *   acquirer gets the lock with the positive return #TK_OWNERDEAD (it holds
 *   it; the lock stays usable; an rlock's recursion count starts again at 1).
 *   The data the lock protected may be half-updated: checking it is the
 *   caller's job.
 * - tk_sem and tk_event keep their whole state in single atomic words, so a
 *   participant dying at any moment leaves them consistent; they never
 *   become broken.
 * - tk_cond and tk_barrier: a participant that dies while merely waiting
 *   blocks no one (a barrier counts it as arrived). One that dies in the
 *   middle of updating the object's state leaves it `TK_EBROKEN` for every
 *   later call (a barrier is repaired by tk_barrier_reset(); a condition
 *   must be replaced).
 * - Not recoverable: threads already asleep in a wait are not woken by a
 *   death itself. If the dead process had changed the state but not yet
 *   woken them (a window of a few instructions), they notice at their
 *   timeout or at the next operation on the object by anyone. A dead waiter
 *   of a condition may let one later notify wake one waiter more than asked.
 *
 * **Fork**: objects made without #TK_SHARED are copied into a forked child
 * like any memory; a lock held by the forking thread stays held in the
 * child, by an owner that no longer exists there (only #TK_SHARED locks are
 * meant to be used across fork).
 */
#ifndef TASKKIT_SYNC_H
#define TASKKIT_SYNC_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h" /* TK_FOREVER, the TK_E* codes */
#include "export.h"

/** @brief Flag: the object works across processes forked after its creation. */
#define TK_SHARED 1u
/** @brief Flag for tk_sem_new(): releasing above the initial value is `TK_EOVERFLOW`. */
#define TK_BOUNDED 2u

TK_BEGIN_DECLS

/** @brief A mutual-exclusion lock with an owner (Python's `threading.Lock`). */
typedef struct tk_lock tk_lock;
/** @brief A re-entrant lock (Python's `threading.RLock`). */
typedef struct tk_rlock tk_rlock;
/** @brief A condition variable bound to a tk_lock (Python's `threading.Condition`). */
typedef struct tk_cond tk_cond;
/** @brief A counting semaphore (Python's `Semaphore` / `BoundedSemaphore`). */
typedef struct tk_sem tk_sem;
/** @brief A flag threads can wait for (Python's `threading.Event`). */
typedef struct tk_event tk_event;
/** @brief A meeting point for a fixed number of threads (Python's `threading.Barrier`). */
typedef struct tk_barrier tk_barrier;

/* ------------------------------------------------------------------ lock */

/**
 * @brief Creates an unlocked lock.
 * @param flags 0, or #TK_SHARED for a robust lock shared with children
 *        forked afterwards.
 * @return The lock (free it with tk_lock_free()), or NULL on failure.
 *
 * Errors: `TK_EINVAL` for unknown flag bits; `TK_ENOMEM`.
 * Thread-safety: safe from any thread.
 */
TK_API tk_lock *tk_lock_new(unsigned flags);

/**
 * @brief Acquires the lock, waiting at most @p timeout seconds.
 * @param l The lock; NULL is `TK_EINVAL`.
 * @param timeout Seconds; #TK_FOREVER blocks, 0 polls.
 * @return 0 when acquired; #TK_OWNERDEAD (positive: acquired) when the
 *         previous holder of a #TK_SHARED lock died holding it; a negative
 *         code otherwise (not acquired).
 *
 * Not a cancellation point. When the lock is free this is one atomic
 * operation: no system call and no clock read.
 *
 * Errors: `TK_ETIMEDOUT` when the timeout expired (also when the calling
 * thread itself holds the lock: it waits out the timeout, as in Python);
 * `TK_EDEADLK` at once when the caller holds the lock and @p timeout blocks
 * forever; `TK_EINVAL` for NULL or a NaN timeout.
 * Thread-safety: safe from any thread.
 */
TK_API int tk_lock_acquire(tk_lock *l, double timeout);

/**
 * @brief Releases a lock the calling thread holds.
 * @param l The lock; NULL is `TK_EINVAL`.
 * @return 0, or a negative code.
 *
 * Errors: `TK_ESTATE` "release unlocked lock" when nobody holds it,
 * "cannot release un-acquired lock" when another thread does;
 * `TK_EINVAL` for NULL.
 * Thread-safety: safe from any thread.
 */
TK_API int tk_lock_release(tk_lock *l);

/**
 * @brief Tells whether anybody holds the lock (a snapshot).
 * @param l The lock; NULL gives false.
 * @return true while held.
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API bool tk_lock_locked(tk_lock *l);

/**
 * @brief Frees the lock (for a #TK_SHARED lock: this process's view only).
 * @param l The lock, or NULL (no-op). Nobody in this process may use it
 *        any more; other processes keep using a shared lock.
 *
 * Errors: none. Thread-safety: must not race with other calls on @p l.
 */
TK_API void tk_lock_free(tk_lock *l);

/* ----------------------------------------------------------------- rlock */

/**
 * @brief Creates an unlocked re-entrant lock.
 * @param flags 0 or #TK_SHARED (robust, shared with later children).
 * @return The rlock (free it with tk_rlock_free()), or NULL on failure.
 *
 * Errors: `TK_EINVAL` for unknown flag bits; `TK_ENOMEM`.
 * Thread-safety: safe from any thread.
 */
TK_API tk_rlock *tk_rlock_new(unsigned flags);

/**
 * @brief Acquires the rlock; the owner may acquire it again (it is then
 *        released as often as it was acquired).
 * @param l The rlock; NULL is `TK_EINVAL`.
 * @param timeout Seconds; #TK_FOREVER blocks, 0 polls.
 * @return 0 or #TK_OWNERDEAD (acquired; see tk_lock_acquire()), or a
 *         negative code (not acquired).
 *
 * Not a cancellation point.
 *
 * Errors: `TK_ETIMEDOUT`; `TK_EOVERFLOW` when the recursion count would
 * overflow; `TK_EINVAL` for NULL or a NaN timeout.
 * Thread-safety: safe from any thread.
 */
TK_API int tk_rlock_acquire(tk_rlock *l, double timeout);

/**
 * @brief Releases one level of the rlock; the last release unlocks it.
 * @param l The rlock; NULL is `TK_EINVAL`.
 * @return 0, or a negative code.
 *
 * Errors: `TK_ESTATE` "release unlocked lock" when nobody holds it,
 * "cannot release un-acquired lock" when another thread does; `TK_EINVAL`.
 * Thread-safety: safe from any thread.
 */
TK_API int tk_rlock_release(tk_rlock *l);

/**
 * @brief Tells whether anybody holds the rlock (a snapshot).
 * @param l The rlock; NULL gives false.
 * @return true while held.
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API bool tk_rlock_locked(tk_rlock *l);

/**
 * @brief Frees the rlock (for a #TK_SHARED one: this process's view only).
 * @param l The rlock, or NULL (no-op).
 *
 * Errors: none. Thread-safety: must not race with other calls on @p l.
 */
TK_API void tk_rlock_free(tk_rlock *l);

/* ------------------------------------------------------------- condition */

/**
 * @brief Creates a condition with its own (non-recursive) lock.
 * @param flags 0 or #TK_SHARED.
 * @return The condition, or NULL on failure.
 *
 * Errors: `TK_EINVAL` for unknown flag bits; `TK_ENOMEM`.
 * Thread-safety: safe from any thread.
 */
TK_API tk_cond *tk_cond_new(unsigned flags);

/**
 * @brief Creates a condition that uses an existing lock, so that several
 *        conditions can share one lock (a bounded buffer's "not empty" and
 *        "not full").
 * @param lock The lock, borrowed: it must outlive the condition. NULL is
 *        `TK_EINVAL`. The condition takes the lock's flags.
 * @return The condition, or NULL on failure.
 *
 * Errors: `TK_EINVAL` for NULL; `TK_ENOMEM`.
 * Thread-safety: safe from any thread.
 */
TK_API tk_cond *tk_cond_new_with_lock(tk_lock *lock);

/**
 * @brief Acquires the condition's lock (as tk_lock_acquire()).
 * @param c The condition; NULL is `TK_EINVAL`.
 * @param timeout Seconds; #TK_FOREVER blocks, 0 polls.
 * @return 0 or #TK_OWNERDEAD (acquired), or a negative code.
 *
 * Errors: as tk_lock_acquire(). Thread-safety: safe from any thread.
 */
TK_API int tk_cond_acquire(tk_cond *c, double timeout);

/**
 * @brief Releases the condition's lock (as tk_lock_release()).
 * @param c The condition; NULL is `TK_EINVAL`.
 * @return 0, or a negative code.
 *
 * Errors: as tk_lock_release(). Thread-safety: safe from any thread.
 */
TK_API int tk_cond_release(tk_cond *c);

/**
 * @brief Releases the lock, waits until notified (or the timeout, or a
 *        stop), and re-acquires the lock.
 * @param c The condition, whose lock the caller must hold.
 * @param timeout Seconds; #TK_FOREVER blocks, 0 polls.
 * @return 0 when notified; #TK_OWNERDEAD when notified but the lock's
 *         previous holder died (#TK_SHARED); a negative code otherwise. In
 *         every case but `TK_EINVAL` and `TK_ESTATE` the caller holds the
 *         lock again on return. As in Python, re-check the predicate in a
 *         loop.
 *
 * A cancellation point.
 *
 * Errors: `TK_ESTATE` "cannot wait on un-acquired lock"; `TK_ETIMEDOUT`;
 * `TK_ECANCELED` when a stop was requested for the calling thread;
 * `TK_EBROKEN` when a process died in the middle of an operation on this
 * #TK_SHARED condition; `TK_EINVAL` for NULL or NaN.
 * Thread-safety: safe from any thread.
 */
TK_API int tk_cond_wait(tk_cond *c, double timeout);

/**
 * @brief Wakes at most @p n of the threads waiting on the condition.
 * @param c The condition, whose lock the caller must hold.
 * @param n How many waiters to wake; 0 does nothing.
 * @return 0, or a negative code.
 *
 * Only threads already waiting when this is called can be woken by it.
 *
 * Errors: `TK_ESTATE` "cannot notify on un-acquired lock"; `TK_EBROKEN`;
 * `TK_EINVAL` for NULL. Thread-safety: safe from any thread.
 */
TK_API int tk_cond_notify(tk_cond *c, unsigned n);

/**
 * @brief Wakes every thread waiting on the condition.
 * @param c The condition, whose lock the caller must hold.
 * @return 0, or a negative code.
 *
 * Errors: as tk_cond_notify(). Thread-safety: safe from any thread.
 */
TK_API int tk_cond_notify_all(tk_cond *c);

/**
 * @brief Frees the condition (and its own lock, if it made one). A lock
 *        passed to tk_cond_new_with_lock() is not freed.
 * @param c The condition, or NULL (no-op). No thread may be waiting on it.
 *
 * Errors: none. Thread-safety: must not race with other calls on @p c.
 */
TK_API void tk_cond_free(tk_cond *c);

/* ------------------------------------------------------------- semaphore */

/**
 * @brief Creates a semaphore holding @p value units.
 * @param value The initial count (and, with #TK_BOUNDED, the maximum).
 * @param flags 0, #TK_SHARED, #TK_BOUNDED, or both.
 * @return The semaphore, or NULL on failure.
 *
 * Errors: `TK_EINVAL` for unknown flag bits; `TK_ENOMEM`.
 * Thread-safety: safe from any thread.
 */
TK_API tk_sem *tk_sem_new(unsigned value, unsigned flags);

/**
 * @brief Takes one unit, waiting at most @p timeout seconds for one.
 * @param s The semaphore; NULL is `TK_EINVAL`.
 * @param timeout Seconds; #TK_FOREVER blocks, 0 polls.
 * @return 0 when a unit was taken, or a negative code.
 *
 * A cancellation point.
 *
 * Errors: `TK_ETIMEDOUT`; `TK_ECANCELED` when a stop was requested for the
 * calling thread; `TK_EINVAL` for NULL or NaN.
 * Thread-safety: safe from any thread.
 */
TK_API int tk_sem_acquire(tk_sem *s, double timeout);

/**
 * @brief Returns one unit and wakes one waiter. Any thread may release.
 * @param s The semaphore; NULL is `TK_EINVAL`.
 * @return 0, or a negative code.
 *
 * Errors: `TK_EOVERFLOW` "Semaphore released too many times" for a
 * #TK_BOUNDED semaphore already at its initial value (or when the count
 * would pass 4294967295); `TK_EINVAL` for NULL.
 * Thread-safety: safe from any thread.
 */
TK_API int tk_sem_release(tk_sem *s);

/**
 * @brief Frees the semaphore (for a #TK_SHARED one: this process's view only).
 * @param s The semaphore, or NULL (no-op). No thread may be waiting on it.
 *
 * Errors: none. Thread-safety: must not race with other calls on @p s.
 */
TK_API void tk_sem_free(tk_sem *s);

/* ----------------------------------------------------------------- event */

/**
 * @brief Creates an event, initially clear.
 * @param flags 0 or #TK_SHARED.
 * @return The event, or NULL on failure.
 *
 * Errors: `TK_EINVAL` for unknown flag bits; `TK_ENOMEM`.
 * Thread-safety: safe from any thread.
 */
TK_API tk_event *tk_event_new(unsigned flags);

/**
 * @brief Sets the flag and wakes every waiter.
 * @param e The event; NULL is `TK_EINVAL`.
 * @return 0, or `TK_EINVAL`.
 *
 * Errors: `TK_EINVAL` for NULL. Thread-safety: safe from any thread.
 */
TK_API int tk_event_set(tk_event *e);

/**
 * @brief Clears the flag. Threads woken by an earlier set still return 0.
 * @param e The event; NULL is `TK_EINVAL`.
 * @return 0, or `TK_EINVAL`.
 *
 * Errors: `TK_EINVAL` for NULL. Thread-safety: safe from any thread.
 */
TK_API int tk_event_clear(tk_event *e);

/**
 * @brief Tells whether the flag is set.
 * @param e The event; NULL gives false.
 * @return The flag.
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API bool tk_event_is_set(tk_event *e);

/**
 * @brief Waits until the flag is set.
 * @param e The event; NULL is `TK_EINVAL`.
 * @param timeout Seconds; #TK_FOREVER blocks, 0 polls.
 * @return 0 once the flag is (or was, during the wait) set, or a negative
 *         code.
 *
 * A cancellation point.
 *
 * Errors: `TK_ETIMEDOUT`; `TK_ECANCELED` when a stop was requested for the
 * calling thread; `TK_EINVAL` for NULL or NaN.
 * Thread-safety: safe from any thread.
 */
TK_API int tk_event_wait(tk_event *e, double timeout);

/**
 * @brief Frees the event (for a #TK_SHARED one: this process's view only).
 * @param e The event, or NULL (no-op). No thread may be waiting on it.
 *
 * Errors: none. Thread-safety: must not race with other calls on @p e.
 */
TK_API void tk_event_free(tk_event *e);

/* --------------------------------------------------------------- barrier */

/**
 * @brief Creates a barrier for @p parties threads.
 * @param parties How many threads must call tk_barrier_wait() before all
 *        go on: 1..INT_MAX.
 * @param flags 0 or #TK_SHARED.
 * @return The barrier, or NULL on failure.
 *
 * Errors: `TK_EINVAL` "parties must be > 0", for more than INT_MAX, or for
 * unknown flag bits; `TK_ENOMEM`.
 * Thread-safety: safe from any thread.
 */
TK_API tk_barrier *tk_barrier_new(unsigned parties, unsigned flags);

/**
 * @brief Waits until @p parties threads have called this; the barrier is
 *        then ready for the next round.
 * @param b The barrier; NULL is `TK_EINVAL`.
 * @param timeout Seconds; #TK_FOREVER blocks, 0 polls.
 * @return This thread's arrival index, 0..parties-1 (each index once per
 *         round; the last to arrive gets parties-1), or a negative code.
 *
 * A cancellation point. A wait that times out or is stopped breaks the
 * barrier (as in Python): every thread waiting in that round gets
 * `TK_EBROKEN`, and so does every later wait until tk_barrier_reset().
 *
 * Errors: `TK_EBROKEN` when the barrier is or becomes broken (timeout of
 * another waiter, tk_barrier_abort(), tk_barrier_reset() during the round,
 * a stopped waiter, a process that died inside an operation on a
 * #TK_SHARED barrier); `TK_ETIMEDOUT` to the waiter whose own timeout
 * expired, `TK_ECANCELED` to the waiter that was stopped (both also break
 * the barrier); `TK_EINVAL` for NULL or NaN.
 * Thread-safety: safe from any thread.
 */
TK_API int tk_barrier_wait(tk_barrier *b, double timeout);

/**
 * @brief Breaks the barrier: current and later waits get `TK_EBROKEN`
 *        until tk_barrier_reset().
 * @param b The barrier; NULL is `TK_EINVAL`.
 * @return 0, or `TK_EINVAL`.
 *
 * Errors: `TK_EINVAL` for NULL. Thread-safety: safe from any thread.
 */
TK_API int tk_barrier_abort(tk_barrier *b);

/**
 * @brief Returns the barrier to its initial state; threads waiting in the
 *        current round get `TK_EBROKEN`.
 * @param b The barrier; NULL is `TK_EINVAL`.
 * @return 0, or `TK_EINVAL`.
 *
 * Errors: `TK_EINVAL` for NULL. Thread-safety: safe from any thread.
 */
TK_API int tk_barrier_reset(tk_barrier *b);

/**
 * @brief Tells whether the barrier is broken.
 * @param b The barrier; NULL gives false.
 * @return true when broken.
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API bool tk_barrier_broken(tk_barrier *b);

/**
 * @brief The number of threads needed to pass the barrier.
 * @param b The barrier; NULL gives 0.
 * @return The parties given to tk_barrier_new().
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API unsigned tk_barrier_parties(tk_barrier *b);

/**
 * @brief The number of threads waiting in the current round (a snapshot).
 * @param b The barrier; NULL gives 0.
 * @return The count; 0 while the barrier is broken.
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API unsigned tk_barrier_n_waiting(tk_barrier *b);

/**
 * @brief Frees the barrier (for a #TK_SHARED one: this process's view only).
 * @param b The barrier, or NULL (no-op). No thread may be waiting on it.
 *
 * Errors: none. Thread-safety: must not race with other calls on @p b.
 */
TK_API void tk_barrier_free(tk_barrier *b);

/* --------------------------------------------------------- shared memory */

/**
 * @brief Allocates zeroed memory shared with every child forked afterwards
 *        (at the same address in each).
 * @param size Bytes; 0 is `TK_EINVAL`.
 * @return A `max_align_t`-aligned block (free it with tk_shm_free()), or
 *         NULL on failure. Each block is a mapping of its own, so blocks
 *         never overlap; it costs at least one page.
 *
 * Errors: `TK_EINVAL` for 0; `TK_ENOMEM` when the mapping fails or the
 * size is too large.
 * Thread-safety: safe from any thread.
 */
TK_API void *tk_shm_alloc(size_t size);

/**
 * @brief Unmaps this process's view of a block from tk_shm_alloc(); other
 *        processes keep theirs.
 * @param p The block, or NULL (no-op). A pointer that did not come from
 *        tk_shm_alloc() is ignored and recorded as a `TK_EINVAL` last error.
 *
 * Errors: none returned. Thread-safety: must not race with other uses of
 * the block in this process.
 */
TK_API void tk_shm_free(void *p);

TK_END_DECLS

#endif /* TASKKIT_SYNC_H */
