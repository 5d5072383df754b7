/*
 * sync.c - locks, re-entrant locks, conditions, semaphores, events and
 * barriers (taskkit/sync.h).
 *
 * Two rules shape everything here:
 *   - Cancellable waits (condition, semaphore, event, barrier) sleep on a
 *     *sequence word*: a futex word that wakers increment and that a
 *     tk_thread_stop also bumps (runtime.c). A waiter therefore never reads
 *     meaning into a wake-up: it re-checks the object's real state, kept in
 *     other fields, after every one.
 *   - TK_SHARED objects live in tk_shm_alloc memory and must survive a
 *     participant dying at any instruction. Semaphores and events keep their
 *     state in single atomic words, so every state is consistent. Conditions
 *     and barriers have multi-field state: it is changed only under a robust
 *     lock, and a lock handed over with EOWNERDEAD in the middle of such a
 *     change marks the object broken instead of trusting it.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
#include <sys/single_threaded.h>
#define TK__HAVE_SINGLE_THREADED 1
#else
#define TK__HAVE_SINGLE_THREADED 0
#endif

#include "internal.h"
#include "sync_int.h"
#include "taskkit/sync.h"

#ifdef __SANITIZE_THREAD__
#include <sanitizer/tsan_interface.h>
#endif

#define WAITERS TK__MUTEX_WAITERS

/* ------------------------------------------------------------- helpers */

static int check_flags(unsigned flags, unsigned allowed, const char *what)
{
    if (flags & ~allowed)
        return tk__error(TK_EINVAL, "%s: unknown flag bits 0x%x", what, flags & ~allowed);
    return 0;
}

/* Shared objects live in their own shared mapping; private ones on the heap. */
static void *obj_alloc(size_t size, unsigned flags)
{
    return (flags & TK_SHARED) ? tk_shm_alloc(size) : tk__calloc(1, size);
}

static void obj_free(void *p, unsigned flags)
{
    if (flags & TK_SHARED)
        tk_shm_free(p);
    else
        tk__free(p);
}

static unsigned cancel_flags(unsigned flags)
{
    return TK__WAIT_CANCEL | ((flags & TK_SHARED) ? TK__WAIT_SHARED : 0u);
}

static unsigned wake_flags(unsigned flags)
{
    return (flags & TK_SHARED) ? TK__WAIT_SHARED : 0u;
}

/* Words the result of a failed wait. */
static int wait_error(int r, const char *what)
{
    if (r == TK_ETIMEDOUT)
        return tk__error(r, "%s: timed out", what);
    if (r == TK_ECANCELED)
        return tk__error(r, "%s: canceled: a stop was requested for this thread", what);
    return r;
}

static int null_error(const char *what)
{
    return tk__error(TK_EINVAL, "%s: object is NULL", what);
}

/* ------------------------------------------------------------ the core */

/* The caller already holds the lock it wants. Waiting for itself can only
 * end at the deadline, so it sleeps until then (Python's behaviour), except
 * that "forever" is reported at once instead of hanging. */
static int self_deadlock(double timeout, const char *what)
{
    tk__deadline d;
    int r = tk__deadline_init(&d, timeout, what);
    if (r < 0)
        return r;
    if (d.kind == TK__DL_FOREVER)
        return tk__error(TK_EDEADLK,
                         "%s: the calling thread already holds this lock "
                         "(waiting forever would deadlock)", what);
    while (d.kind == TK__DL_AT &&
           clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &d.at, NULL) == EINTR)
        ;
    return tk__error(TK_ETIMEDOUT, "%s: timed out", what);
}

static int not_owner_error(bool locked)
{
    return tk__error(TK_ESTATE, locked ? "cannot release un-acquired lock"
                                       : "release unlocked lock");
}

/* True while the process has never had a second thread. glibc publishes it
 * (and skips its own mutexes' atomic instructions then); it turns false in
 * the creating thread before any second thread runs, and pthread_create
 * orders everything before it, so plain loads and stores are enough while
 * it holds. Elsewhere: never assume it. */
static inline bool single_threaded(void)
{
#if TK__HAVE_SINGLE_THREADED
    return __libc_single_threaded != 0;
#else
    return false;
#endif
}

static inline bool private_try(struct tk__mutex *m, uint32_t me)
{
    if (single_threaded()) {
        /* Nobody can race us: no locked instruction needed. */
        if (atomic_load_explicit(&m->word, memory_order_relaxed) != 0)
            return false;
        atomic_store_explicit(&m->word, me, memory_order_relaxed);
        return true;
    }
    uint32_t expected = 0;
    return atomic_compare_exchange_strong_explicit(&m->word, &expected, me,
                                                   memory_order_acquire,
                                                   memory_order_relaxed);
}

/* The contended path of a private lock. Once a thread may sleep on the
 * word, WAITERS stays set until a release, and whoever takes the lock after
 * sleeping (or while others may sleep) takes it with WAITERS set, so no
 * sleeper is forgotten. */
static int private_acquire_slow(struct tk__mutex *m, uint32_t me, double timeout,
                                const char *what)
{
    uint32_t w = atomic_load_explicit(&m->word, memory_order_relaxed);
    if ((w & ~WAITERS) == me)
        return self_deadlock(timeout, what);
    tk__deadline d;
    int r = tk__deadline_init(&d, timeout, what);
    if (r < 0)
        return r;
    for (;;) {
        w = atomic_load_explicit(&m->word, memory_order_relaxed);
        if (w == 0) {
            if (atomic_compare_exchange_weak_explicit(&m->word, &w, me | WAITERS,
                                                      memory_order_acquire,
                                                      memory_order_relaxed))
                return 0;
            continue;
        }
        if (d.kind == TK__DL_POLL)
            break;
        if (!(w & WAITERS) &&
            !atomic_compare_exchange_weak_explicit(&m->word, &w, w | WAITERS,
                                                   memory_order_relaxed,
                                                   memory_order_relaxed))
            continue;
        /* WAITERS was set just before this wait, also on the last round: a
         * waiter that times out never leaves other sleepers unannounced. */
        if (tk__futex_wait(&m->word, w | WAITERS, 0, &d) == TK_ETIMEDOUT) {
            uint32_t zero = 0;
            if (atomic_compare_exchange_strong_explicit(&m->word, &zero, me | WAITERS,
                                                        memory_order_acquire,
                                                        memory_order_relaxed))
                return 0;
            break;
        }
    }
    return tk__error(TK_ETIMEDOUT, "%s: timed out", what);
}

/* glibc's pthread_mutex_clocklock is not intercepted by ThreadSanitizer;
 * tell it about the lock by hand so it sees the unlock's partner. */
static int shared_clocklock(pthread_mutex_t *pm, const struct timespec *at)
{
#ifdef __SANITIZE_THREAD__
    __tsan_mutex_pre_lock(pm, __tsan_mutex_try_lock);
    int e = pthread_mutex_clocklock(pm, CLOCK_MONOTONIC, at);
    __tsan_mutex_post_lock(pm, (e == 0 || e == EOWNERDEAD)
                                   ? __tsan_mutex_try_lock
                                   : __tsan_mutex_try_lock | __tsan_mutex_try_lock_failed,
                           0);
    return e;
#else
    return pthread_mutex_clocklock(pm, CLOCK_MONOTONIC, at);
#endif
}

static int shared_acquire(struct tk__mutex *m, double timeout, const char *what)
{
    tk__deadline d;
    int r = tk__deadline_init(&d, timeout, what);
    if (r < 0)
        return r;
    int e;
    if (d.kind == TK__DL_POLL) {
        e = pthread_mutex_trylock(&m->pm);
        if (e == EBUSY || e == EDEADLK) /* polling one's own lock times out */
            e = ETIMEDOUT;
    } else if (d.kind == TK__DL_FOREVER) {
        e = pthread_mutex_lock(&m->pm);
    } else {
        e = shared_clocklock(&m->pm, &d.at);
    }
    if (e == 0 || e == EOWNERDEAD) {
        /* The holder died: the lock is ours; make it usable again. What it
         * protected may be half-updated, which TK_OWNERDEAD tells the caller. */
        if (e == EOWNERDEAD)
            pthread_mutex_consistent(&m->pm);
        atomic_store(&m->holder, tk__sync_tid());
        return e == 0 ? 0 : TK_OWNERDEAD;
    }
    if (e == ETIMEDOUT)
        return tk__error(TK_ETIMEDOUT, "%s: timed out", what);
    if (e == EDEADLK)
        return self_deadlock(timeout, what);
    return tk__os_error(e, what);
}

static int shared_release(struct tk__mutex *m)
{
    int me = tk__sync_tid();
    int holder = atomic_load(&m->holder);
    if (holder != me)
        return not_owner_error(holder != 0);
    /* Cleared before unlocking: afterwards the next holder may write it. */
    atomic_store(&m->holder, 0);
    int e = pthread_mutex_unlock(&m->pm);
    if (e != 0) {
        /* `holder` was a dead thread's tid, since reused by this thread. */
        atomic_store(&m->holder, holder);
        return e == EPERM ? not_owner_error(true) : tk__os_error(e, "lock release");
    }
    return 0;
}

int tk__mutex_init(struct tk__mutex *m, unsigned flags)
{
    atomic_init(&m->word, 0);
    atomic_init(&m->holder, 0);
    m->flags = flags & TK_SHARED;
    if (!(flags & TK_SHARED))
        return 0;
    pthread_mutexattr_t a;
    int e = pthread_mutexattr_init(&a);
    if (e == 0)
        e = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (e == 0)
        e = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (e == 0)
        e = pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    if (e == 0)
        e = pthread_mutex_init(&m->pm, &a);
    pthread_mutexattr_destroy(&a);
    if (e != 0)
        return tk__os_error(e, "cannot create a process-shared robust mutex");
    return 0;
}

void tk__mutex_destroy(struct tk__mutex *m)
{
    /* A shared mutex may still be in use by other processes: their views
     * stay valid, so it is never destroyed, only unmapped here. */
    (void)m;
}

int tk__mutex_acquire(struct tk__mutex *m, double timeout, const char *what)
{
    if (m->flags & TK_SHARED)
        return shared_acquire(m, timeout, what);
    uint32_t me = (uint32_t)tk__sync_tid();
    if (!isnan(timeout) && private_try(m, me))
        return 0;
    return private_acquire_slow(m, me, timeout, what);
}

int tk__mutex_release(struct tk__mutex *m)
{
    if (m->flags & TK_SHARED)
        return shared_release(m);
    uint32_t me = (uint32_t)tk__sync_tid();
    uint32_t w = atomic_load_explicit(&m->word, memory_order_relaxed);
    if ((w & ~WAITERS) != me)
        return not_owner_error(w != 0);
    if (w == me && single_threaded()) {
        atomic_store_explicit(&m->word, 0, memory_order_relaxed);
        return 0;
    }
    w = atomic_exchange_explicit(&m->word, 0, memory_order_release);
    if (w & WAITERS)
        tk__futex_wake(&m->word, 1, 0);
    return 0;
}

bool tk__mutex_owned(struct tk__mutex *m)
{
    int me = tk__sync_tid();
    if (m->flags & TK_SHARED)
        return atomic_load(&m->holder) == me;
    return (atomic_load_explicit(&m->word, memory_order_relaxed) & ~WAITERS) == (uint32_t)me;
}

bool tk__mutex_locked(struct tk__mutex *m)
{
    if (m->flags & TK_SHARED)
        return atomic_load(&m->holder) != 0;
    return atomic_load(&m->word) != 0;
}

/* ------------------------------------------------------------------ lock */

TK_API tk_lock *tk_lock_new(unsigned flags)
{
    if (check_flags(flags, TK_SHARED, "tk_lock_new") < 0)
        return NULL;
    tk_lock *l = obj_alloc(sizeof *l, flags);
    if (!l)
        return NULL;
    if (tk__mutex_init(&l->m, flags) < 0) {
        obj_free(l, flags);
        return NULL;
    }
    return l;
}

TK_API int tk_lock_acquire(tk_lock *l, double timeout)
{
    /* The fast path: one CAS, no call into the slow machinery. */
    if (l && !(l->m.flags & TK_SHARED) && !isnan(timeout) &&
        private_try(&l->m, (uint32_t)tk__sync_tid()))
        return 0;
    if (!l)
        return null_error("tk_lock_acquire");
    return tk__mutex_acquire(&l->m, timeout, "tk_lock_acquire");
}

TK_API int tk_lock_release(tk_lock *l)
{
    if (!l)
        return null_error("tk_lock_release");
    return tk__mutex_release(&l->m);
}

TK_API bool tk_lock_locked(tk_lock *l)
{
    return l && tk__mutex_locked(&l->m);
}

TK_API void tk_lock_free(tk_lock *l)
{
    if (!l)
        return;
    tk__mutex_destroy(&l->m);
    obj_free(l, l->m.flags);
}

/* ----------------------------------------------------------------- rlock */

TK_API tk_rlock *tk_rlock_new(unsigned flags)
{
    if (check_flags(flags, TK_SHARED, "tk_rlock_new") < 0)
        return NULL;
    tk_rlock *l = obj_alloc(sizeof *l, flags);
    if (!l)
        return NULL;
    if (tk__mutex_init(&l->m, flags) < 0) {
        obj_free(l, flags);
        return NULL;
    }
    l->count = 0;
    return l;
}

TK_API int tk_rlock_acquire(tk_rlock *l, double timeout)
{
    if (!l)
        return null_error("tk_rlock_acquire");
    if (isnan(timeout))
        return tk__error(TK_EINVAL, "tk_rlock_acquire: timeout must not be NaN");
    if (tk__mutex_owned(&l->m)) {
        if (l->count == ULONG_MAX)
            return tk__error(TK_EOVERFLOW, "tk_rlock_acquire: recursion count overflow");
        l->count++;
        return 0;
    }
    int r = tk__mutex_acquire(&l->m, timeout, "tk_rlock_acquire");
    if (r >= 0)
        l->count = 1; /* also after TK_OWNERDEAD: the dead holder's levels are gone */
    return r;
}

TK_API int tk_rlock_release(tk_rlock *l)
{
    if (!l)
        return null_error("tk_rlock_release");
    if (!tk__mutex_owned(&l->m))
        return not_owner_error(tk__mutex_locked(&l->m));
    if (--l->count > 0)
        return 0;
    return tk__mutex_release(&l->m);
}

TK_API bool tk_rlock_locked(tk_rlock *l)
{
    return l && tk__mutex_locked(&l->m);
}

TK_API void tk_rlock_free(tk_rlock *l)
{
    if (!l)
        return;
    tk__mutex_destroy(&l->m);
    obj_free(l, l->m.flags);
}

/* ------------------------------------------------------------- condition */


static tk_cond *cond_alloc(unsigned flags)
{
    tk_cond *c = obj_alloc(sizeof *c, flags);
    if (!c)
        return NULL;
    c->flags = flags;
    atomic_init(&c->seq, 0);
    atomic_init(&c->broken, 0);
    atomic_init(&c->to_wake, 0);
    atomic_init(&c->gen, 0);
    return c;
}

TK_API tk_cond *tk_cond_new(unsigned flags)
{
    if (check_flags(flags, TK_SHARED, "tk_cond_new") < 0)
        return NULL;
    tk_cond *c = cond_alloc(flags);
    if (!c)
        return NULL;
    if (tk__mutex_init(&c->own.m, flags) < 0) {
        obj_free(c, flags);
        return NULL;
    }
    c->lock = &c->own;
    return c;
}

TK_API tk_cond *tk_cond_new_with_lock(tk_lock *lock)
{
    if (!lock)
        return tk__error_null(TK_EINVAL, "tk_cond_new_with_lock: lock is NULL");
    tk_cond *c = cond_alloc(lock->m.flags);
    if (!c)
        return NULL;
    c->lock = lock;
    return c;
}

TK_API int tk_cond_acquire(tk_cond *c, double timeout)
{
    if (!c)
        return null_error("tk_cond_acquire");
    return tk__mutex_acquire(&c->lock->m, timeout, "tk_cond_acquire");
}

TK_API int tk_cond_release(tk_cond *c)
{
    if (!c)
        return null_error("tk_cond_release");
    return tk__mutex_release(&c->lock->m);
}

static int cond_broken_error(const char *what)
{
    return tk__error(TK_EBROKEN, "%s: the condition is broken "
                     "(a process died in the middle of an operation on it)", what);
}

/* Under the lock. A `busy` mark left by another holder means it died in
 * the middle of a notify (the lock came back with EOWNERDEAD): the counts
 * cannot be trusted, so the condition becomes broken and its waiters wake. */
static bool cond_check_broken(tk_cond *c)
{
    if (atomic_load(&c->broken))
        return true;
    if (!c->busy)
        return false;
    c->busy = 0;
    atomic_store(&c->broken, 1);
    atomic_fetch_add(&c->seq, 1);
    tk__futex_wake(&c->seq, INT_MAX, wake_flags(c->flags));
    return true;
}

static bool cond_claim(tk_cond *c, uint64_t g)
{
    if (atomic_load(&c->gen) <= g)
        return false;
    uint32_t t = atomic_load(&c->to_wake);
    while (t > 0)
        if (atomic_compare_exchange_weak(&c->to_wake, &t, t - 1))
            return true;
    return false;
}

/* Sleeps until a signal is claimed, the condition breaks, the deadline
 * passes or a stop arrives; returns 0 when claimed. */
static int cond_sleep(tk_cond *c, uint64_t g, const tk__deadline *d)
{
    int r = 0;
    for (;;) {
        uint32_t s = atomic_load(&c->seq);
        if (atomic_load(&c->broken))
            return TK_EBROKEN;
        if (cond_claim(c, g))
            return 0; /* even after a timeout or stop: it was notified */
        if (r < 0)
            return r;
        r = tk__futex_wait(&c->seq, s, cancel_flags(c->flags), d);
    }
}

TK_API int tk_cond_wait(tk_cond *c, double timeout)
{
    if (!c)
        return null_error("tk_cond_wait");
    tk__deadline d;
    int r = tk__deadline_init(&d, timeout, "tk_cond_wait");
    if (r < 0)
        return r;
    struct tk__mutex *m = &c->lock->m;
    if (!tk__mutex_owned(m))
        return tk__error(TK_ESTATE, "cannot wait on un-acquired lock");
    if (cond_check_broken(c))
        return cond_broken_error("tk_cond_wait");
    uint64_t g = atomic_load(&c->gen);
    c->waiting++;
    r = tk__mutex_release(m);
    if (r < 0) {
        c->waiting--;
        return r;
    }
    r = cond_sleep(c, g, &d);
    /* Always back with the lock, whatever ended the sleep. */
    int lr = tk__mutex_acquire(m, TK_FOREVER, "tk_cond_wait");
    if (lr < 0)
        return lr;
    if (cond_check_broken(c))
        return cond_broken_error("tk_cond_wait");
    if (r < 0 && cond_claim(c, g))
        r = 0; /* a notify landed between the sleep and the lock */
    if (r < 0)
        c->waiting--;
    if (r == 0)
        return lr; /* 0, or TK_OWNERDEAD: notified, but the lock's holder died */
    return wait_error(r, "tk_cond_wait");
}

static int cond_notify(tk_cond *c, uint32_t n, const char *what)
{
    if (!c)
        return null_error(what);
    if (!tk__mutex_owned(&c->lock->m))
        return tk__error(TK_ESTATE, "cannot notify on un-acquired lock");
    if (cond_check_broken(c))
        return cond_broken_error(what);
    uint32_t k = n < c->waiting ? n : c->waiting;
    if (k == 0)
        return 0;
    c->busy = 1;
    atomic_fetch_add(&c->to_wake, k);
    atomic_fetch_add(&c->gen, 1);
    c->waiting -= k;
    atomic_fetch_add(&c->seq, 1);
    tk__futex_wake(&c->seq, k > INT_MAX ? INT_MAX : (int)k, wake_flags(c->flags));
    c->busy = 0;
    return 0;
}

TK_API int tk_cond_notify(tk_cond *c, unsigned n)
{
    return cond_notify(c, n, "tk_cond_notify");
}

TK_API int tk_cond_notify_all(tk_cond *c)
{
    return cond_notify(c, UINT32_MAX, "tk_cond_notify_all");
}

TK_API void tk_cond_free(tk_cond *c)
{
    if (!c)
        return;
    if (c->lock == &c->own)
        tk__mutex_destroy(&c->own.m);
    obj_free(c, c->flags);
}

/* ------------------------------------------------------------- semaphore */

struct tk_sem {
    unsigned flags;
    uint32_t max;              /* TK_BOUNDED: the initial value */
    _Atomic uint32_t count;
    _Atomic uint32_t seq;      /* sequence word the waiters sleep on */
    _Atomic uint32_t sleepers; /* lets release skip the wake-up system call */
};

TK_API tk_sem *tk_sem_new(unsigned value, unsigned flags)
{
    if (check_flags(flags, TK_SHARED | TK_BOUNDED, "tk_sem_new") < 0)
        return NULL;
    tk_sem *s = obj_alloc(sizeof *s, flags);
    if (!s)
        return NULL;
    s->flags = flags;
    s->max = (flags & TK_BOUNDED) ? value : UINT32_MAX;
    atomic_init(&s->count, value);
    atomic_init(&s->seq, 0);
    atomic_init(&s->sleepers, 0);
    return s;
}

static bool sem_try(tk_sem *s)
{
    uint32_t c = atomic_load(&s->count);
    while (c > 0)
        if (atomic_compare_exchange_weak(&s->count, &c, c - 1))
            return true;
    return false;
}

TK_API int tk_sem_acquire(tk_sem *s, double timeout)
{
    if (!s)
        return null_error("tk_sem_acquire");
    if (isnan(timeout))
        return tk__error(TK_EINVAL, "tk_sem_acquire: timeout must not be NaN");
    if (sem_try(s))
        return 0;
    tk__deadline d;
    tk__deadline_init(&d, timeout, "tk_sem_acquire");
    /* `sleepers` is raised before the last look at the count, and release
     * raises the count before reading `sleepers`: one of them sees the other. */
    atomic_fetch_add(&s->sleepers, 1);
    int r = 0;
    for (;;) {
        uint32_t seq = atomic_load(&s->seq);
        if (sem_try(s)) {
            r = 0; /* even after a timeout or stop: it can complete */
            break;
        }
        if (r < 0)
            break;
        r = tk__futex_wait(&s->seq, seq, cancel_flags(s->flags), &d);
    }
    atomic_fetch_sub(&s->sleepers, 1);
    return r == 0 ? 0 : wait_error(r, "tk_sem_acquire");
}

TK_API int tk_sem_release(tk_sem *s)
{
    if (!s)
        return null_error("tk_sem_release");
    uint32_t c = atomic_load(&s->count);
    do {
        if (c >= s->max)
            return tk__error(TK_EOVERFLOW, (s->flags & TK_BOUNDED)
                                               ? "Semaphore released too many times"
                                               : "tk_sem_release: semaphore value too large");
    } while (!atomic_compare_exchange_weak(&s->count, &c, c + 1));
    if (atomic_load(&s->sleepers) > 0) {
        /* One sleeper suffices: whoever wakes takes the unit or finds it
         * taken by someone who never slept; either way it is used. */
        atomic_fetch_add(&s->seq, 1);
        tk__futex_wake(&s->seq, 1, wake_flags(s->flags));
    }
    return 0;
}

TK_API void tk_sem_free(tk_sem *s)
{
    if (s)
        obj_free(s, s->flags);
}

/* ----------------------------------------------------------------- event */

/* state: bit 0 is the flag; the bits above count the sets, so a waiter
 * notices a set even when a clear undid it before the waiter looked. */
struct tk_event {
    unsigned flags;
    _Atomic uint32_t state;
    _Atomic uint32_t seq;      /* sequence word the waiters sleep on */
    _Atomic uint32_t sleepers;
};

TK_API tk_event *tk_event_new(unsigned flags)
{
    if (check_flags(flags, TK_SHARED, "tk_event_new") < 0)
        return NULL;
    tk_event *e = obj_alloc(sizeof *e, flags);
    if (!e)
        return NULL;
    e->flags = flags;
    atomic_init(&e->state, 0);
    atomic_init(&e->seq, 0);
    atomic_init(&e->sleepers, 0);
    return e;
}

TK_API int tk_event_set(tk_event *e)
{
    if (!e)
        return null_error("tk_event_set");
    uint32_t st = atomic_load(&e->state);
    while (!(st & 1) && !atomic_compare_exchange_weak(&e->state, &st, (st + 2) | 1))
        ;
    /* Woken also when it was already set: sleepers then exist only if the
     * setter died between its CAS and this wake-up, and this rescues them. */
    if (atomic_load(&e->sleepers) > 0) {
        atomic_fetch_add(&e->seq, 1);
        tk__futex_wake(&e->seq, INT_MAX, wake_flags(e->flags));
    }
    return 0;
}

TK_API int tk_event_clear(tk_event *e)
{
    if (!e)
        return null_error("tk_event_clear");
    atomic_fetch_and(&e->state, ~1u);
    return 0;
}

TK_API bool tk_event_is_set(tk_event *e)
{
    return e && (atomic_load(&e->state) & 1);
}

TK_API int tk_event_wait(tk_event *e, double timeout)
{
    if (!e)
        return null_error("tk_event_wait");
    tk__deadline d;
    int r = tk__deadline_init(&d, timeout, "tk_event_wait");
    if (r < 0)
        return r;
    uint32_t st0 = atomic_load(&e->state);
    if (st0 & 1)
        return 0;
    atomic_fetch_add(&e->sleepers, 1);
    for (;;) {
        uint32_t seq = atomic_load(&e->seq);
        uint32_t st = atomic_load(&e->state);
        if ((st & 1) || (st >> 1) != (st0 >> 1)) {
            r = 0;
            break;
        }
        if (r < 0)
            break;
        r = tk__futex_wait(&e->seq, seq, cancel_flags(e->flags), &d);
    }
    atomic_fetch_sub(&e->sleepers, 1);
    return r == 0 ? 0 : wait_error(r, "tk_event_wait");
}

TK_API void tk_event_free(tk_event *e)
{
    if (e)
        obj_free(e, e->flags);
}

/* --------------------------------------------------------------- barrier */


TK_API tk_barrier *tk_barrier_new(unsigned parties, unsigned flags)
{
    if (check_flags(flags, TK_SHARED, "tk_barrier_new") < 0)
        return NULL;
    if (parties == 0)
        return tk__error_null(TK_EINVAL, "parties must be > 0");
    if (parties > INT_MAX)
        return tk__error_null(TK_EINVAL, "parties must be <= %d", INT_MAX);
    tk_barrier *b = obj_alloc(sizeof *b, flags);
    if (!b)
        return NULL;
    if (tk__mutex_init(&b->m, flags) < 0) {
        obj_free(b, flags);
        return NULL;
    }
    b->flags = flags;
    b->parties = parties;
    atomic_init(&b->count, 0);
    atomic_init(&b->broken, 0);
    atomic_init(&b->cycle, 0);
    atomic_init(&b->broke_bits, 0);
    atomic_init(&b->seq, 0);
    return b;
}

/* Under m. The outcome is recorded before the cycle moves, and waiters
 * are woken before m is released, so a process dying in here leaves either
 * nothing done or a state the next holder (seeing EOWNERDEAD) repairs. */
static void barrier_end_cycle(tk_barrier *b, bool broke)
{
    uint32_t g = atomic_load(&b->cycle);
    uint64_t bit = (uint64_t)1 << (g % 64);
    if (broke)
        atomic_fetch_or(&b->broke_bits, bit);
    else
        atomic_fetch_and(&b->broke_bits, ~bit);
    atomic_store(&b->count, 0);
    atomic_store(&b->cycle, g + 1);
    atomic_fetch_add(&b->seq, 1);
    tk__futex_wake(&b->seq, INT_MAX, wake_flags(b->flags));
}

/* Under m: breaks the barrier, ending the round if anyone waits in it (or
 * unconditionally after a death, when `count` itself is suspect). */
static void barrier_break(tk_barrier *b, bool force)
{
    atomic_store(&b->broken, 1);
    if (force || atomic_load(&b->count) > 0)
        barrier_end_cycle(b, true);
}

/* Takes the internal lock. TK_OWNERDEAD (lock held) means a process died
 * holding it, i.e. in the middle of an operation: the barrier is broken. */
static int barrier_lock(tk_barrier *b, const char *what)
{
    int r = tk__mutex_acquire(&b->m, TK_FOREVER, what);
    if (r == TK_OWNERDEAD)
        barrier_break(b, true);
    return r;
}

static void barrier_unlock(tk_barrier *b)
{
    if (tk__mutex_release(&b->m) < 0)
        tk__panic("tk_barrier: internal lock not held on release");
}

static int barrier_broken_error(void)
{
    return tk__error(TK_EBROKEN, "tk_barrier_wait: the barrier is broken "
                     "(a waiter timed out or was stopped, it was aborted or reset, "
                     "or a process died inside it)");
}

/* True once the round g has ended; *res is then the wait's result. */
static bool barrier_done(tk_barrier *b, uint32_t g, int idx, int *res)
{
    uint32_t c = atomic_load(&b->cycle);
    if (c == g)
        return false;
    bool broke = c - g > 64 || (atomic_load(&b->broke_bits) & ((uint64_t)1 << (g % 64)));
    *res = broke ? barrier_broken_error() : idx;
    return true;
}

TK_API int tk_barrier_wait(tk_barrier *b, double timeout)
{
    if (!b)
        return null_error("tk_barrier_wait");
    tk__deadline d;
    int r = tk__deadline_init(&d, timeout, "tk_barrier_wait");
    if (r < 0)
        return r;
    r = barrier_lock(b, "tk_barrier_wait");
    if (r < 0)
        return r;
    if (r == TK_OWNERDEAD || atomic_load(&b->broken)) {
        barrier_unlock(b);
        return barrier_broken_error();
    }
    int idx = (int)atomic_fetch_add(&b->count, 1);
    if ((unsigned)idx + 1 == b->parties) {
        barrier_end_cycle(b, false);
        barrier_unlock(b);
        return idx;
    }
    uint32_t g = atomic_load(&b->cycle);
    barrier_unlock(b);

    int res;
    r = 0;
    for (;;) {
        uint32_t s = atomic_load(&b->seq);
        if (barrier_done(b, g, idx, &res))
            return res;
        if (r < 0)
            break;
        r = tk__futex_wait(&b->seq, s, cancel_flags(b->flags), &d);
    }
    /* Timed out or stopped: break the round, unless it ended meanwhile. */
    if (barrier_lock(b, "tk_barrier_wait") < 0)
        return barrier_broken_error();
    bool done = barrier_done(b, g, idx, &res);
    if (!done)
        barrier_break(b, false);
    barrier_unlock(b);
    if (done)
        return res;
    return r == TK_ETIMEDOUT
               ? tk__error(r, "tk_barrier_wait: timed out (the barrier is now broken)")
               : tk__error(r, "tk_barrier_wait: canceled: a stop was requested for this "
                              "thread (the barrier is now broken)");
}

TK_API int tk_barrier_abort(tk_barrier *b)
{
    if (!b)
        return null_error("tk_barrier_abort");
    int r = barrier_lock(b, "tk_barrier_abort");
    if (r < 0)
        return r;
    barrier_break(b, false);
    barrier_unlock(b);
    return 0;
}

TK_API int tk_barrier_reset(tk_barrier *b)
{
    if (!b)
        return null_error("tk_barrier_reset");
    int r = barrier_lock(b, "tk_barrier_reset");
    if (r < 0)
        return r;
    if (atomic_load(&b->count) > 0)
        barrier_end_cycle(b, true); /* as in Python: current waiters are broken */
    atomic_store(&b->broken, 0);
    barrier_unlock(b);
    return 0;
}

TK_API bool tk_barrier_broken(tk_barrier *b)
{
    return b && atomic_load(&b->broken);
}

TK_API unsigned tk_barrier_parties(tk_barrier *b)
{
    return b ? b->parties : 0;
}

TK_API unsigned tk_barrier_n_waiting(tk_barrier *b)
{
    if (!b || atomic_load(&b->broken))
        return 0;
    return atomic_load(&b->count);
}

TK_API void tk_barrier_free(tk_barrier *b)
{
    if (!b)
        return;
    tk__mutex_destroy(&b->m);
    obj_free(b, b->flags);
}
