/*
 * runtime.c - the process-wide state that ties processes, threads and pools
 * together: deadlines, the stop wake-up mechanism behind every cancellation
 * point, the module registry with its fork hooks, and the end-of-program
 * procedure (tk_shutdown).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <sys/single_threaded.h>
#endif

#include "internal.h"
#include "taskkit/export.h"

TK_API void tk_shutdown(void); /* declared for users in taskkit/process.h */

/* ------------------------------------------------------------ deadlines */

/* Timeouts above this are "a very long time" rather than an overflow risk:
 * 1e10 s is over 300 years and still fits a 64-bit time_t after adding now. */
#define TK__MAX_TIMEOUT 1e10

double tk__monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int tk__deadline_init(tk__deadline *d, double timeout, const char *what)
{
    if (isnan(timeout)) {
        d->kind = TK__DL_POLL;
        return tk__error(TK_EINVAL, "%s: timeout must not be NaN",
                         what ? what : "wait");
    }
    if (timeout == -1.0 || (isinf(timeout) && timeout > 0)) {
        d->kind = TK__DL_FOREVER;
        return 0;
    }
    if (!(timeout > 0)) {
        d->kind = TK__DL_POLL;
        return 0;
    }
    if (timeout > TK__MAX_TIMEOUT)
        timeout = TK__MAX_TIMEOUT;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double whole = floor(timeout);
    long nsec = now.tv_nsec + (long)((timeout - whole) * 1e9);
    d->kind = TK__DL_AT;
    d->at.tv_sec = now.tv_sec + (time_t)whole + nsec / 1000000000L;
    d->at.tv_nsec = nsec % 1000000000L;
    return 0;
}

/* Nanoseconds left (0 once passed); only for TK__DL_AT. */
static int64_t ns_left(const tk__deadline *d)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t sec = (int64_t)(d->at.tv_sec - now.tv_sec);
    if (sec > 1000000000) /* ~31 years: avoid overflowing the product */
        return INT64_MAX / 2;
    int64_t ns = sec * 1000000000LL + (d->at.tv_nsec - now.tv_nsec);
    return ns > 0 ? ns : 0;
}

bool tk__deadline_passed(const tk__deadline *d)
{
    switch (d->kind) {
    case TK__DL_FOREVER:
        return false;
    case TK__DL_AT:
        return ns_left(d) == 0;
    default:
        return true;
    }
}

int tk__deadline_ms(const tk__deadline *d)
{
    if (d->kind == TK__DL_FOREVER)
        return -1;
    if (d->kind == TK__DL_POLL)
        return 0;
    int64_t ms = (ns_left(d) + 999999) / 1000000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* ------------------------------------------------------------ thread ids */

static pid_t cached_pid;

pid_t tk__getpid(void)
{
    pid_t p = __atomic_load_n(&cached_pid, __ATOMIC_RELAXED);
    if (p == 0) {
        p = getpid();
        __atomic_store_n(&cached_pid, p, __ATOMIC_RELAXED);
    }
    return p;
}

pid_t tk__gettid(void)
{
    struct tk__tls *t = tk__tls();
    if (t->tid == 0)
        t->tid = tk__os_gettid();
    return t->tid;
}

/* ------------------------------------------------------------------ stop */

void tk__stop_init(struct tk__stop *s)
{
    atomic_init(&s->requested, 0);
    atomic_init(&s->waiting, 0);
    atomic_init(&s->wakers, 0);
    atomic_init(&s->wake_fd, -1);
    atomic_init(&s->seq, 0);
}

void tk__stop_destroy(struct tk__stop *s)
{
    int fd = atomic_exchange(&s->wake_fd, -1);
    if (fd >= 0)
        close(fd);
}

void tk__stop_request(struct tk__stop *s)
{
    /* Only atomics, futex and write(2): callable from a signal handler. The
     * order matters: `requested` is published before `waiting` is read, and a
     * waiter publishes `waiting` before reading `requested`, so either the
     * waiter sees the request or we see where it waits. `wakers` keeps the
     * waiter from leaving (and its object from being freed) while we poke. */
    atomic_store(&s->requested, 1);
    atomic_fetch_add(&s->wakers, 1);
    uintptr_t w = atomic_load(&s->waiting);
    if (w == TK__WAITING_FD) {
        int fd = atomic_load(&s->wake_fd);
        if (fd >= 0)
            tk__os_wakefd_signal(fd);
    } else if (w != 0) {
        /* `waiting` is a tagged pointer (internal.h): the cast is the design. */
        // NOLINTNEXTLINE(performance-no-int-to-ptr)
        _Atomic uint32_t *word = (_Atomic uint32_t *)(w & ~(uintptr_t)3);
        /* Bumping the sequence word makes a waiter that has not yet entered
         * the kernel return at once instead of missing the wake-up. */
        atomic_fetch_add(word, 1);
        tk__os_futex_wake(word, INT_MAX, (w & 1) != 0);
    }
    atomic_fetch_sub(&s->wakers, 1);
    /* tk_sleep waits on its own word; wake it whatever `waiting` said. */
    atomic_fetch_add(&s->seq, 1);
    tk__os_futex_wake(&s->seq, INT_MAX, false);
}

static void wait_leave(struct tk__stop *s)
{
    atomic_store(&s->waiting, 0);
    while (atomic_load(&s->wakers) != 0)
        sched_yield(); /* a stopper is between two instructions: brief */
}

int tk__futex_wait(_Atomic uint32_t *word, uint32_t expected, unsigned flags,
                   const tk__deadline *d)
{
    bool shared = (flags & TK__WAIT_SHARED) != 0;
    struct tk__stop *s = (flags & TK__WAIT_CANCEL) ? tk__tls()->stop : NULL;
    if (s) {
        atomic_store(&s->waiting, (uintptr_t)word | (shared ? 1u : 0u));
        if (atomic_load(&s->requested)) {
            wait_leave(s);
            return TK_ECANCELED;
        }
    }
    int r;
    if (d->kind == TK__DL_POLL || (d->kind == TK__DL_AT && tk__deadline_passed(d)))
        r = -ETIMEDOUT;
    else
        r = tk__os_futex_wait(word, expected, shared,
                              d->kind == TK__DL_AT ? &d->at : NULL);
    if (s) {
        wait_leave(s);
        if (atomic_load(&s->requested))
            return TK_ECANCELED;
    }
    return r == -ETIMEDOUT ? TK_ETIMEDOUT : 0;
}

void tk__futex_wake(_Atomic uint32_t *word, int n, unsigned flags)
{
    tk__os_futex_wake(word, n, (flags & TK__WAIT_SHARED) != 0);
}

/* Makes sure the calling thread's stop state has its wake descriptor. */
static int ensure_wake_fd(struct tk__stop *s)
{
    if (atomic_load(&s->wake_fd) >= 0)
        return 0;
    int fd = tk__os_wakefd_new();
    if (fd < 0)
        return tk__os_error(-fd, "cannot create the stop wake-up descriptor");
    atomic_store(&s->wake_fd, fd); /* only the owning thread creates it */
    return 0;
}

int tk__wait_fds(struct pollfd *fds, nfds_t n, unsigned flags, const tk__deadline *d)
{
    struct tk__stop *s = (flags & TK__WAIT_CANCEL) ? tk__tls()->stop : NULL;
    nfds_t total = n;
    if (s) {
        int r = ensure_wake_fd(s);
        if (r < 0)
            return r;
        fds[n].fd = atomic_load(&s->wake_fd);
        fds[n].events = POLLIN;
        fds[n].revents = 0;
        total = n + 1;
    }
    for (;;) {
        bool stopped = false;
        if (s) {
            atomic_store(&s->waiting, TK__WAITING_FD);
            stopped = atomic_load(&s->requested) != 0;
        }
        /* Once stopped, only poll: a wait that can complete still does. */
        int r = poll(fds, total, stopped ? 0 : tk__deadline_ms(d));
        int err = errno;
        if (s)
            wait_leave(s);
        if (r < 0 && err != EINTR)
            return tk__os_error(err, "poll");
        int ready = 0;
        for (nfds_t i = 0; r > 0 && i < n; i++)
            ready += fds[i].revents != 0;
        if (ready > 0)
            return ready; /* a wait that can complete still completes */
        if (s && atomic_load(&s->requested))
            return TK_ECANCELED;
        if (tk__deadline_passed(d))
            return TK_ETIMEDOUT;
    }
}

/* -------------------------------------------------------------- modules */

#define TK__MAX_MODULES 16 /* far more than the library has */

static pthread_mutex_t modules_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tk__module *modules; /* sorted by ascending order */

void tk__module_register(struct tk__module *m)
{
    if (__atomic_load_n(&m->registered, __ATOMIC_ACQUIRE))
        return;
    pthread_mutex_lock(&modules_lock);
    if (!m->registered) {
        struct tk__module **pp = &modules;
        while (*pp && (*pp)->order <= m->order)
            pp = &(*pp)->next;
        m->next = *pp;
        *pp = m;
        __atomic_store_n(&m->registered, true, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&modules_lock);
}

/* Prepare hooks run in reverse order; the list is singly linked and short,
 * so recursion is the simplest way to walk it backwards (its depth is the
 * number of modules, a handful). */
static void prepare_rev(struct tk__module *m) // NOLINT(misc-no-recursion)
{
    if (!m)
        return;
    prepare_rev(m->next);
    if (m->atfork_prepare)
        m->atfork_prepare();
}

static void fork_prepare(void)
{
    pthread_mutex_lock(&modules_lock);
    prepare_rev(modules);
}

static void fork_parent(void)
{
    for (struct tk__module *m = modules; m; m = m->next)
        if (m->atfork_parent)
            m->atfork_parent();
    pthread_mutex_unlock(&modules_lock);
}

static atomic_int shutdown_running;
static pid_t atexit_owner;

static void fork_child(void)
{
    /* One thread exists now: the one that called fork. Refresh the ids it
     * caches, then let every module forget the parent's objects. */
    __atomic_store_n(&cached_pid, getpid(), __ATOMIC_RELAXED);
    tk__tls()->tid = 0;
    atomic_store(&shutdown_running, 0);
    for (struct tk__module *m = modules; m; m = m->next)
        if (m->atfork_child)
            m->atfork_child();
    pthread_mutex_unlock(&modules_lock);
}

__attribute__((constructor)) static void runtime_init(void)
{
    /* Registered when the library loads so that *any* fork, also a raw
     * fork() by the user, resets the child's runtime. */
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* ------------------------------------------------- end-of-program procedure */

static pthread_mutex_t atexit_lock = PTHREAD_MUTEX_INITIALIZER;
static bool atexit_registered;

static void at_exit(void)
{
    /* atexit entries are inherited by fork; only the process that started
     * something owns the procedure. A raw fork() child that exits must not
     * try to join or signal its parent's workers. */
    if (__atomic_load_n(&atexit_owner, __ATOMIC_ACQUIRE) == tk__getpid())
        tk_shutdown();
}

bool tk__shutting_down(void)
{
    return atomic_load(&shutdown_running) != 0;
}

int tk__runtime_starting(void)
{
    if (tk__shutting_down())
        return tk__error(TK_ESTATE, "can't create new thread at interpreter shutdown");
    pid_t me = tk__getpid();
    if (__atomic_load_n(&atexit_owner, __ATOMIC_ACQUIRE) == me)
        return 0;
    pthread_mutex_lock(&atexit_lock);
    if (!atexit_registered) {
        if (atexit(at_exit) != 0) {
            pthread_mutex_unlock(&atexit_lock);
            return tk__error(TK_ENOMEM, "cannot register the end-of-program procedure");
        }
        atexit_registered = true;
    }
    __atomic_store_n(&atexit_owner, me, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&atexit_lock);
    return 0;
}

void tk_shutdown(void)
{
    /* A second caller while it runs returns at once: it may be one of the
     * very threads the first caller is joining. */
    int expected = 0;
    if (!atomic_compare_exchange_strong(&shutdown_running, &expected, 1))
        return;
    /* Hooks run without the registry lock (fork takes it, and a hook may
     * fork or register), from a snapshot of the list. */
    void (*hooks[TK__MAX_MODULES])(void);
    size_t n = 0;
    pthread_mutex_lock(&modules_lock);
    for (struct tk__module *m = modules; m && n < TK__MAX_MODULES; m = m->next)
        if (m->shutdown)
            hooks[n++] = m->shutdown;
    pthread_mutex_unlock(&modules_lock);
    for (size_t i = 0; i < n; i++)
        hooks[i]();
    atomic_store(&shutdown_running, 0);
}

#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 32)
/* glibc's list of every open stream, newest first, linked by the public
 * FILE field _chain. It was declared in the public <libio.h> until glibc
 * 2.28 and is still exported; referenced weakly, so a C library without it
 * links and takes the plain fflush(NULL). */
extern FILE *_IO_list_all __attribute__((weak));

/* True if some stream may hold output fflush would write. glibc flushes
 * exactly the streams these fields mark; read without locks, which is only
 * sound while no other thread can open, close or write a stream. */
static bool output_pending(void)
{
    if (!__libc_single_threaded || !&_IO_list_all)
        return true;
    for (const FILE *f = _IO_list_all; f; f = f->_chain)
        if (f->_mode > 0 || f->_IO_write_ptr > f->_IO_write_base)
            return true;
    return false;
}
#else
static bool output_pending(void)
{
    return true;
}
#endif

/*
 * fflush(NULL) locks every stream, and the locks sit on pages a fork has
 * just write-protected: around each fork that is a copy-on-write fault in
 * the parent before it and one in the child at its end, plus the code and
 * thread-state pages flushing touches (four faults in all, 20-30 us each on
 * a virtual machine: a tenth of a fork-start-join round trip). With nothing
 * pending there is nothing to flush, and the faults are skipped.
 */
void tk__flush_stdio(void)
{
    if (output_pending())
        fflush(NULL);
}
