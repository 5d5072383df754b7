/*
 * internal.h - what libtaskkit's modules share and users never see.
 *
 * Everything here is named tk__* and is hidden from the shared object by
 * -fvisibility=hidden. Tests link the static archive and may call these.
 *
 * The pieces:
 *   - errors: tk__error() records the calling thread's last error;
 *   - memory: tk__malloc() & co. with a fault-injection hook for tests;
 *   - time: deadlines on CLOCK_MONOTONIC built from Python-style timeouts;
 *   - stop: the one wake-up mechanism behind every cancellation point
 *     (tk_thread_stop), used through tk__futex_wait() and tk__wait_fds();
 *   - runtime: modules register fork and end-of-program hooks here, so the
 *     state tying processes, threads and pools together lives in runtime.c.
 */
#ifndef TK_INTERNAL_H
#define TK_INTERNAL_H

#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "taskkit/error.h"

/* ------------------------------------------------------------------ errors */

/** Longest message tk_last_error() can hold (longer ones are cut). */
#define TK__ERRMSG_MAX 1024

/* Records code and a printf-style message as the calling thread's last
 * error and returns code, so callers write `return tk__error(TK_EINVAL,
 * "...")`. errno is preserved. */
int tk__error(int code, const char *fmt, ...) TK_PRINTF(2, 3);

/* Records an OS failure: `err` is a positive errno value; the message is
 * "<what>: <strerror(err)>". Returns -err. */
int tk__os_error(int err, const char *what);

/* Like tk__error but returns NULL, for constructors. */
void *tk__error_null(int code, const char *fmt, ...) TK_PRINTF(2, 3);

/* The static analyzer (clang-tidy's clang-analyzer-*) sees one file at a
 * time, so it cannot know that tk__error returns `code` and tk__os_error
 * -err; it then follows impossible "failed but returned 0" paths and
 * reports uninitialised reads on them. For the analyzer only, say so. */
#ifdef __clang_analyzer__
#define tk__error(code, ...) (tk__error((code), __VA_ARGS__), (code))
#define tk__os_error(err, what) (tk__os_error((err), (what)), -(err))
#endif

/* Aborts with a message: for invariants that cannot fail (unlocking a mutex
 * we hold). Never returns. */
_Noreturn void tk__panic(const char *fmt, ...) TK_PRINTF(1, 2);

/* ------------------------------------------------------------------ memory */

/* The allocation functions every module uses. On failure they record
 * TK_ENOMEM ("out of memory") as the last error and return NULL. */
void *tk__malloc(size_t n);
void *tk__calloc(size_t count, size_t size);
void *tk__realloc(void *p, size_t n);
char *tk__strdup(const char *s);
void tk__free(void *p);

/* Tests only: make the n-th allocation from now fail (n >= 1); 0 disables.
 * tk__fault_allocs() counts allocations since the last tk__fault_set(). */
void tk__fault_set(long n);
long tk__fault_allocs(void);

/* -------------------------------------------------------------------- time */

typedef struct tk__deadline {
    int kind;           /* TK__DL_POLL, TK__DL_FOREVER or TK__DL_AT */
    struct timespec at; /* absolute CLOCK_MONOTONIC time for TK__DL_AT */
} tk__deadline;

enum { TK__DL_POLL = 0, TK__DL_FOREVER = 1, TK__DL_AT = 2 };

/* Builds a deadline from a Python-style timeout: TK_FOREVER (-1.0) and
 * +INFINITY block, 0 and any other negative value poll, any finite value is
 * valid without overflow. NaN is TK_EINVAL with a message naming `what`. */
int tk__deadline_init(tk__deadline *d, double timeout, const char *what);
bool tk__deadline_passed(const tk__deadline *d);
/* Milliseconds left, rounded up, for poll(): -1 forever, 0 once passed. */
int tk__deadline_ms(const tk__deadline *d);
/* Seconds on CLOCK_MONOTONIC. */
double tk__monotonic(void);

/* ------------------------------------------------------------ thread state */

/*
 * The stop state of one thread. It lives in the thread's tk_thread handle
 * (thread.c), not in TLS, so a stopper holding a reference to the handle can
 * touch it whatever the thread is doing.
 *
 * `waiting` says what the thread is blocked in, so a stop can wake it:
 *   0                     not in a cancellable wait;
 *   (uintptr_t)word       in a private futex wait on `word`;
 *   (uintptr_t)word | 1   in a shared (cross-process) futex wait on `word`;
 *   TK__WAITING_FD        in poll(), with `wake_fd` among the descriptors.
 * A stopper bumps the futex word and wakes it, so cancellable futex waits
 * must be on *sequence words*: words any party may increment at any time,
 * whose waiters re-check their real condition after every wake-up.
 * `wakers` counts stoppers inside tk__stop_request(); a waiter leaving a wait
 * clears `waiting` and then waits for `wakers` to drain, so no stopper ever
 * touches a word after its waiter left (the object may be freed then).
 */
struct tk__stop {
    atomic_int requested;
    atomic_uintptr_t waiting;
    atomic_int wakers;
    atomic_int wake_fd;      /* eventfd created on the first fd wait, or -1 */
    _Atomic uint32_t seq;    /* tk_sleep's own sequence word */
};

#define TK__WAITING_FD ((uintptr_t)2)

void tk__stop_init(struct tk__stop *s);
/* Closes the wake descriptor; only when no stopper can run any more. */
void tk__stop_destroy(struct tk__stop *s);
/* Requests a stop and wakes the thread. Async-signal-safe. */
void tk__stop_request(struct tk__stop *s);

/* Per-thread state. err_* back tk_last_error(); `stop` and `thread` are set
 * by thread.c when the thread gets a tk_thread handle. */
struct tk__tls {
    int err_code;
    pid_t tid;                 /* cached gettid(), 0 until first asked */
    struct tk__stop *stop;     /* this thread's stop state, or NULL */
    void *thread;              /* this thread's tk_thread, or NULL */
    char err_msg[TK__ERRMSG_MAX];
};

extern __thread struct tk__tls tk__tls_data;

static inline struct tk__tls *tk__tls(void) { return &tk__tls_data; }

/* The calling thread's kernel id (cached per thread, correct after fork). */
pid_t tk__gettid(void);
/* This process's pid (cached, refreshed in every forked child). */
pid_t tk__getpid(void);

/* True once a stop was requested for the calling thread. */
static inline bool tk__stop_pending(void)
{
    struct tk__stop *s = tk__tls_data.stop;
    return s && atomic_load_explicit(&s->requested, memory_order_acquire);
}

/* ---------------------------------------------------------------- waiting */

/* Flags for the waits below. */
#define TK__WAIT_SHARED 1u /* the word is in memory shared between processes */
#define TK__WAIT_CANCEL 2u /* a cancellation point: return TK_ECANCELED on stop */

/*
 * Blocks while *word == expected, until woken, the deadline passes, or (with
 * TK__WAIT_CANCEL) a stop is requested for the calling thread.
 * Returns 0 when woken, when the word differed, or spuriously (including
 * EINTR): the caller re-checks its condition. TK_ETIMEDOUT once the deadline
 * has passed (a TK__DL_POLL deadline returns it at once), TK_ECANCELED when a
 * stop is pending (checked before blocking too). Sets no last error: callers
 * word their own messages.
 */
int tk__futex_wait(_Atomic uint32_t *word, uint32_t expected, unsigned flags,
                   const tk__deadline *d);
/* Wakes up to n waiters (INT_MAX for all) blocked on word. */
void tk__futex_wake(_Atomic uint32_t *word, int n, unsigned flags);

/*
 * poll() on fds until one is ready, the deadline passes or (with
 * TK__WAIT_CANCEL) a stop is requested. EINTR is retried with the remaining
 * time. Returns the number of ready entries (> 0), TK_ETIMEDOUT,
 * TK_ECANCELED, or a negative errno (with a last error) if poll fails.
 */
int tk__wait_fds(struct pollfd *fds, nfds_t n, unsigned flags,
                 const tk__deadline *d);

/* Bumped each time this process learns that a child of its own has ended
 * (process.c): whoever caches "my peer process is alive" (a pipe end, see
 * conn.c) checks again after a change, so the parent's join or is_alive
 * always comes before its next send's verdict on a dead child. */
extern _Atomic unsigned tk__children_ended;

/* ---------------------------------------------------------------- runtime */

/*
 * A module's hooks into the process-wide runtime. Modules register once
 * (tk__module_register is idempotent and thread-safe), typically the first
 * time one of their objects is created.
 *
 * Fork: prepare hooks run in the parent before fork, latest-registered
 * first; parent and child hooks after it, in registration order. A child
 * hook must reset the module to "nothing exists here yet": it runs in a
 * child with exactly one thread, so it may only do what is safe after fork
 * in a multi-threaded parent (no malloc, no locks another thread might have
 * held unless taken in prepare).
 *
 * Shutdown: the end-of-program procedure runs every module's shutdown hook
 * in ascending `order`: pools 0, threads 10, processes 20.
 */
struct tk__module {
    const char *name;
    int order;
    void (*shutdown)(void);
    void (*atfork_prepare)(void);
    void (*atfork_parent)(void);
    void (*atfork_child)(void);
    struct tk__module *next; /* runtime's link; leave zero */
    bool registered;         /* runtime's flag; leave false */
};

void tk__module_register(struct tk__module *m);

/*
 * Called by every start (process, thread, pool worker): registers the
 * end-of-program procedure with atexit the first time in this process and
 * refuses while that procedure runs (TK_ESTATE, "can't create new thread at
 * interpreter shutdown", recorded as last error). Returns 0 otherwise.
 */
int tk__runtime_starting(void);

/* True while tk_shutdown() runs in this process. */
bool tk__shutting_down(void);

/* Flushes every stdio stream (before fork, and at a child's end). */
void tk__flush_stdio(void);

/* -------------------------------------------------------- platform layer */

/* Implemented per OS (os_linux.c). Return 0 or a negative errno; no last
 * error is recorded. */

/* Blocks while *word == expected until woken, or until `abs` (absolute
 * CLOCK_MONOTONIC; NULL blocks). 0, -EAGAIN (word differed), -EINTR,
 * -ETIMEDOUT. */
int tk__os_futex_wait(_Atomic uint32_t *word, uint32_t expected, bool shared,
                      const struct timespec *abs);
void tk__os_futex_wake(_Atomic uint32_t *word, int n, bool shared);
/* A close-on-exec descriptor that a stopper can make readable with an
 * async-signal-safe call (eventfd on Linux); -errno on failure. */
int tk__os_wakefd_new(void);
void tk__os_wakefd_signal(int fd);
pid_t tk__os_gettid(void);

#endif /* TK_INTERNAL_H */
