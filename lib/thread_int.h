/*
 * thread_int.h - what other modules (pools, processes) need from thread.c.
 *
 * Internal threads: libtaskkit's own helper threads (pool workers, result
 * handlers) are ordinary tk_thread handles with three differences: they are
 * absent from tk_thread_enumerate() and tk_active_count(), they are daemons
 * (the end-of-program procedure does not join them: their owner shuts them
 * down in its own shutdown hook), and they run with every asynchronous
 * signal blocked, so a SIGINT meant for the program never lands in a worker.
 * tk_current_thread(), tk_stop_requested(), tk_sleep() and every
 * cancellation point work in them as in any thread.
 *
 * Per-task stops (thread pools): the stop state a cancellation point looks
 * at is tk__tls()->stop. A worker that wants a stop scoped to one task
 * points it at a struct tk__stop of its own (tk__stop_init) for the task's
 * duration and restores tk__thread_stop_state(tk_current_thread()) after;
 * the thread's own, permanent stop is then left for shutting the worker
 * down.
 */
#ifndef TK_THREAD_INT_H
#define TK_THREAD_INT_H

#include <signal.h>
#include <stdbool.h>

#include "internal.h"
#include "taskkit/thread.h"

/* The function an internal thread runs; its return value becomes the
 * thread's result (tk_thread_result). A negative value is NOT reported on
 * stderr: the owner decides what a failure means. */
typedef int (*tk__thread_fn)(void *arg);

/*
 * Creates and starts an internal thread running fn(arg), named `name`
 * (copied; its first 15 bytes become the OS thread name, e.g.
 * "ThreadPool-1_0"). Returns the caller's reference: join it with
 * tk_thread_join() and release it with tk_thread_free() (freeing it early
 * detaches, as for any thread). Returns NULL with a last error on failure
 * (TK_EINVAL for NULL fn or name, TK_ENOMEM, TK_ESTATE during tk_shutdown,
 * an OS error if the thread cannot be created). Thread-safe.
 */
tk_thread *tk__thread_start_internal(const char *name, tk__thread_fn fn, void *arg);

/*
 * True if `t` was started (or was the main or a dummy thread) in an
 * ancestor process before a fork: it is then not alive here, joins return
 * at once, and freeing it releases memory only. False for NULL and for
 * handles never started. Thread-safe.
 */
bool tk__thread_is_foreign(const tk_thread *t);

/* The permanent stop state embedded in `t` (never NULL for a non-NULL t):
 * what tk__tls()->stop points at while t's thread runs. */
struct tk__stop *tk__thread_stop_state(tk_thread *t);

/*
 * Blocks every asynchronous signal in the calling thread, saving the old
 * mask in *old (restore it with pthread_sigmask(SIG_SETMASK, old, NULL)).
 * Synchronous signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS)
 * stay deliverable. Used around pthread_create so a new internal thread
 * inherits the blocked mask from its first instruction.
 */
void tk__thread_block_async_signals(sigset_t *old);

#endif /* TK_THREAD_INT_H */
