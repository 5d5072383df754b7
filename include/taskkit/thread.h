/**
 * @file taskkit/thread.h
 * @brief Thread objects (Python's threading.Thread), cooperative stop,
 *        sleeping, and timers (threading.Timer).
 *
 * A thread runs a ::tk_target with an args tuple and a kwargs dict:
 *
 * @code
 * tk_thread *t = tk_thread_new(worker, tk_args_of("i", 3), NULL);
 * tk_thread_start(t);              // t.start()
 * tk_thread_join(t, TK_FOREVER);   // t.join()
 * int r = tk_thread_result(t);     // the target's return value
 * tk_thread_free(t);
 * @endcode
 *
 * **Handles are reference-counted.** tk_thread_new() returns the caller's
 * reference and tk_thread_free() drops it; freeing a running thread detaches
 * the handle (the thread runs on and is still joined at exit unless it is a
 * daemon). tk_thread_enumerate() hands out new references. tk_current_thread()
 * and tk_main_thread() return handles owned by the runtime: freeing those
 * pointers is a no-op. Because the same object can be both, a thread cannot
 * drop a reference to *its own* handle except those it obtained from its own
 * tk_thread_enumerate(); drop other references to a thread's handle from
 * another thread.
 *
 * **Stop instead of terminate.** A thread cannot be killed safely from
 * outside. tk_thread_stop() sets a permanent flag the target polls with
 * tk_stop_requested(), and wakes the thread early, with `TK_ECANCELED`, out
 * of every cancellation point: tk_sleep(); event, condition, semaphore and
 * barrier waits; queue get, put and join; conn recv, poll and send (before
 * the first byte); future wait and result; `*_wait_any`. Lock acquisition
 * and joins are not cancellation points, so a stopped thread can still
 * clean up.
 *
 * **After a fork** the child has exactly one thread, the one that forked,
 * which becomes the child's main thread and keeps its name. Every other
 * handle inherited from the parent is *foreign*: it reports not alive, joins
 * at once, and freeing it releases memory only.
 */
#ifndef TASKKIT_THREAD_H
#define TASKKIT_THREAD_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "export.h"
#include "error.h"
#include "args.h"

#ifndef TK_EXITCODE_NONE
/**
 * @brief Python's `None` result: the thread has not finished (or not
 *        started) yet. Shared with taskkit/process.h.
 * @hideinitializer
 */
#define TK_EXITCODE_NONE INT_MIN
#endif

/** @brief A thread object (Python's threading.Thread). Opaque, reference-counted. */
typedef struct tk_thread tk_thread;

TK_BEGIN_DECLS

/**
 * @brief Creates a thread object that will run `target(args, kwargs)`.
 *
 * The thread is named `Thread-N` (a per-process counter) and is a daemon if
 * the creating thread is one (the main thread and threads not created by
 * libtaskkit count as non-daemon creators).
 *
 * @param target The function to run; must not be NULL.
 * @param args   Positional arguments, or NULL for none. Ownership passes to
 *               the thread object, also when this call fails.
 * @param kwargs Keyword arguments, or NULL for none. Ownership passes as for
 *               `args`.
 * @return A new handle (the caller's reference; release it with
 *         tk_thread_free()), or NULL on failure with tk_last_error() set.
 *
 * Errors: `TK_EINVAL` (target is NULL), `TK_ENOMEM`.
 * Thread-safety: safe from any thread.
 */
TK_API tk_thread *tk_thread_new(tk_target target, tk_args *args, tk_kwargs *kwargs);

/**
 * @brief Starts the thread (Python's `Thread.start`).
 *
 * Returns once the thread has its ident and is listed by
 * tk_thread_enumerate(); it does not wait for the target to begin. A thread
 * that was stopped before start still runs its target, which finds
 * tk_stop_requested() true (a timer does not fire at all).
 *
 * @param t The thread; must not be NULL.
 * @return 0 on success, or a negative error code.
 *
 * Errors: `TK_EINVAL` (t is NULL); `TK_ESTATE` ("threads can only be started
 * once": already started, or the main thread or a dummy thread; "can't create
 * new thread at interpreter shutdown" while tk_shutdown() runs);
 * `TK_EAGAIN` or another negative errno ("can't start new thread: ...") when
 * the OS refuses to create the thread (the object may then be started again).
 * Thread-safety: safe from any thread; at most one start succeeds.
 */
TK_API int tk_thread_start(tk_thread *t);

/**
 * @brief Waits until the thread has finished (Python's `Thread.join`).
 *
 * Not a cancellation point: a stopped thread can still join others. Several
 * threads may join the same thread at once. Joining a foreign thread (one
 * started in an ancestor process before a fork) returns 0 at once.
 *
 * @param t       The thread; must not be NULL.
 * @param timeout Seconds to wait: `TK_FOREVER` or `+INFINITY` wait as long as
 *                it takes, 0 or a negative value polls.
 * @return 0 once the thread has finished (again 0 on later calls),
 *         `TK_ETIMEDOUT` if it is still running at the timeout.
 *
 * Errors: `TK_EINVAL` (t is NULL, timeout is NaN); `TK_ESTATE` ("cannot join
 * thread before it is started", "cannot join current thread", "cannot join a
 * dummy thread"); `TK_ETIMEDOUT`.
 * Thread-safety: safe from any thread.
 */
TK_API int tk_thread_join(tk_thread *t, double timeout);

/**
 * @brief Is the thread running (started and not yet finished)?
 * @param t The thread, or NULL (false).
 * @return true between start and the target's return; always true for the
 *         main thread and for a live dummy thread; false for a foreign handle.
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API bool tk_thread_is_alive(const tk_thread *t);

/**
 * @brief The target's return value.
 * @param t The thread, or NULL (`TK_EXITCODE_NONE`).
 * @return The value the target returned once the thread has finished;
 *         `TK_ECANCELED` for a timer stopped before it fired and for a
 *         target that left through `pthread_exit`;
 *         `TK_EXITCODE_NONE` before that (and for main and dummy threads).
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API int tk_thread_result(const tk_thread *t);

/**
 * @brief The thread's identifier (Python's `Thread.ident`): its `pthread_t`
 *        as an integer, as threading.get_ident() gives it.
 * @param t The thread, or NULL (0).
 * @return 0 before start; the ident from the return of tk_thread_start() on,
 *         also after the thread has finished (the value may then be reused).
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API unsigned long tk_thread_ident(const tk_thread *t);

/**
 * @brief The kernel's id for the thread (Python's `Thread.native_id`,
 *        gettid() on Linux).
 *
 * A thread publishes its kernel id as it begins to run; called just after
 * tk_thread_start(), this waits briefly until it has.
 *
 * @param t The thread, or NULL (0).
 * @return 0 before start; the id afterwards, also after the thread has
 *         finished.
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API long tk_thread_native_id(const tk_thread *t);

/**
 * @brief The thread's name (`Thread-N`, `MainThread`, `Dummy-N`, or what
 *        tk_thread_set_name() gave it).
 * @param t The thread, or NULL ("").
 * @return The full name, borrowed: valid until the handle is renamed or
 *         freed. Never NULL.
 *
 * Errors: none. Thread-safety: must not race with tk_thread_set_name().
 */
TK_API const char *tk_thread_name(const tk_thread *t);

/**
 * @brief Renames the thread (Python's `Thread.name = ...`).
 *
 * Works at any time. For threads libtaskkit started, the OS thread gets the
 * first 15 bytes of the name too (shown by `top -H`, `ps -L`, gdb): at start,
 * or at once if the thread is running. The main thread and dummy threads are
 * renamed in the handle only.
 *
 * @param t    The thread; must not be NULL.
 * @param name The new name; must not be NULL. Copied.
 * @return 0 on success, or a negative error code (the old name is kept).
 *
 * Errors: `TK_EINVAL` (t or name NULL), `TK_ENOMEM`.
 * Thread-safety: must not race with other calls through the same reference.
 */
TK_API int tk_thread_set_name(tk_thread *t, const char *name);

/**
 * @brief Is the thread a daemon (not joined at the end of the program)?
 * @param t The thread, or NULL (false).
 * @return The flag. Dummy and libtaskkit's internal threads are daemons.
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API bool tk_thread_daemon(const tk_thread *t);

/**
 * @brief Sets the daemon flag before start (Python's `Thread.daemon = ...`).
 *
 * Non-daemon threads are joined by the end-of-program procedure
 * (tk_shutdown()); daemon threads end with the process.
 *
 * @param t      The thread; must not be NULL.
 * @param daemon The new flag.
 * @return 0 on success, or a negative error code.
 *
 * Errors: `TK_EINVAL` (t NULL); `TK_ESTATE` ("cannot set daemon status of
 * active thread": already started, main or dummy thread).
 * Thread-safety: must not race with tk_thread_start() on the same thread.
 */
TK_API int tk_thread_set_daemon(tk_thread *t, bool daemon);

/**
 * @brief Requests a cooperative stop of the thread.
 *
 * The request is permanent: from now on tk_stop_requested() is true in that
 * thread and every cancellation point it reaches (see the file overview)
 * returns `TK_ECANCELED`, promptly even when it is already blocked there. A
 * timer stopped before it fires never runs its target (threading.Timer's
 * `cancel`). Stopping a finished thread has no effect.
 *
 * @param t The thread; must not be NULL.
 * @return 0, or `TK_EINVAL` if t is NULL.
 *
 * Errors: `TK_EINVAL` (t NULL; to stay async-signal-safe this one records
 * no tk_last_error() message).
 * Thread-safety: safe from any thread and async-signal-safe (a SIGINT
 * handler may call it: it takes no lock and allocates nothing).
 */
TK_API int tk_thread_stop(tk_thread *t);

/**
 * @brief Drops the caller's reference to a thread handle.
 *
 * A running thread is detached, not stopped: it runs on, its OS resources
 * are reclaimed when it ends, and a non-daemon thread is still joined at
 * exit. No-op for NULL, for tk_main_thread()'s handle, and for a thread's
 * own handle freed from inside that thread (see the file overview).
 *
 * @param t The handle, or NULL.
 *
 * Errors: none. Thread-safety: must not race with other calls through the
 * same reference.
 */
TK_API void tk_thread_free(tk_thread *t);

/**
 * @brief The calling thread's handle (Python's `threading.current_thread`).
 *
 * A thread libtaskkit did not create gets a handle named `Dummy-N` the first
 * time it asks (alive, daemonic, cannot be joined); it is released when that
 * thread exits.
 *
 * @return The handle, owned by the runtime and valid while the calling
 *         thread lives. Never NULL.
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API tk_thread *tk_current_thread(void);

/**
 * @brief The main thread's handle (Python's `threading.main_thread`), named
 *        `MainThread` (in a forked child: the thread that forked, keeping
 *        its name).
 * @return The handle, owned by the runtime. Never NULL.
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API tk_thread *tk_main_thread(void);

/**
 * @brief Lists the live threads (Python's `threading.enumerate`): the main
 *        thread first, then started threads that have not finished and
 *        dummy threads. libtaskkit's internal threads are not listed.
 * @param out Where to write at most `cap` new references (each released with
 *            tk_thread_free()); may be NULL when cap is 0.
 * @param cap Room in `out`.
 * @return The number of live threads, which may exceed `cap`.
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API size_t tk_thread_enumerate(tk_thread **out, size_t cap);

/**
 * @brief The number of live threads tk_thread_enumerate() would list
 *        (Python's `threading.active_count`).
 * @return The count, at least 1 (the main thread).
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API size_t tk_active_count(void);

/**
 * @brief Has a stop been requested for the calling thread?
 * @return true once tk_thread_stop() was called on the calling thread's
 *         handle (permanently).
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API bool tk_stop_requested(void);

/**
 * @brief Sleeps, waking early when a stop is requested (a cancellation
 *        point).
 * @param seconds How long: `TK_FOREVER` or `+INFINITY` sleep until stopped;
 *                0 or a negative value only checks for a stop.
 * @return 0 after the full time, `TK_ECANCELED` as soon as a stop is
 *         requested for the calling thread (at once if one already was).
 *
 * Errors: `TK_EINVAL` (seconds is NaN), `TK_ECANCELED`.
 * Thread-safety: safe from any thread.
 */
TK_API int tk_sleep(double seconds);

/**
 * @brief Sets the stack size the thread will get (Python's
 *        `threading.stack_size`, per thread).
 * @param t     The thread, not yet started; must not be NULL.
 * @param bytes 0 for the system default, or at least 32768 (rounded up to a
 *              whole number of pages by the system).
 * @return 0 on success, or a negative error code.
 *
 * Errors: `TK_EINVAL` (t NULL; "size not valid: N bytes" below 32 KiB or the
 * system's minimum); `TK_ESTATE` (already started, main or dummy thread).
 * Thread-safety: must not race with tk_thread_start() on the same thread.
 */
TK_API int tk_thread_set_stack_size(tk_thread *t, size_t bytes);

/**
 * @brief Creates a timer (Python's `threading.Timer`): a thread that, once
 *        started, waits `interval` seconds and then runs `target` once,
 *        unless tk_thread_stop() (Timer's `cancel`) comes first.
 *
 * The timer is an ordinary ::tk_thread (named `Thread-N`): start, join,
 * result and free it as one. A cancelled timer finishes at once with the
 * result `TK_ECANCELED`.
 *
 * @param interval Seconds to wait after start; 0 or negative fires at once,
 *                 `TK_FOREVER`/`+INFINITY` waits until cancelled.
 * @param target   The function to run; must not be NULL.
 * @param args     Positional arguments, or NULL. Ownership passes to the
 *                 timer, also when this call fails.
 * @param kwargs   Keyword arguments, or NULL. Ownership passes likewise.
 * @return A new handle (the caller's reference), or NULL on failure.
 *
 * Errors: `TK_EINVAL` (target NULL, interval NaN), `TK_ENOMEM`.
 * Thread-safety: safe from any thread.
 */
TK_API tk_thread *tk_timer_new(double interval, tk_target target, tk_args *args,
                               tk_kwargs *kwargs);

TK_END_DECLS

#endif /* TASKKIT_THREAD_H */
