/**
 * @file taskkit/process.h
 * @brief Fork-based process objects (Python's multiprocessing.Process) and
 *        the process-wide runtime: current and parent process, live
 *        children, CPU count and the end-of-program procedure.
 *
 * A process runs a ::tk_target with an args tuple and a kwargs dict in a
 * forked child:
 *
 * @code
 * tk_process *p = tk_process_new(worker, tk_args_of("is", 3, "x"), NULL);
 * tk_process_start(p);             // p.start()
 * tk_process_join(p, TK_FOREVER);  // p.join()
 * int code = tk_process_exitcode(p);
 * tk_process_free(p);
 * @endcode
 *
 * Children are waited for without a `SIGCHLD` handler: on Linux through
 * pidfds, elsewhere through an exit pipe and `waitpid`. libtaskkit holds one
 * descriptor per live child, closed when the child is reaped.
 *
 * **After any fork** (libtaskkit's or a raw `fork()`), the child's runtime
 * starts fresh: no children, its own name counter and end-of-program
 * procedure. Handles inherited from an ancestor are *foreign*: calls that
 * would wait for, signal or start them return `TK_ESTATE`, and freeing them
 * releases memory only.
 */
#ifndef TASKKIT_PROCESS_H
#define TASKKIT_PROCESS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "export.h"
#include "error.h"
#include "args.h"

/**
 * @brief Python's `exitcode is None`: the process has not ended (or not
 *        started) yet.
 * @hideinitializer
 */
#define TK_EXITCODE_NONE INT_MIN

/** @cond TK_INTERNAL */
#if defined(__GNUC__) || defined(__clang__)
#define TK__NORETURN __attribute__((noreturn))
#else
#define TK__NORETURN
#endif
/** @endcond */

/** @brief An opaque, reference-counted process handle. */
typedef struct tk_process tk_process;

TK_BEGIN_DECLS

/**
 * @brief Creates a process object that will run `target(args, kwargs)` in a
 *        forked child (Python's `Process(target=..., args=..., kwargs=...)`).
 * @param target The function the child runs; its return value & 0xff is the
 *               exit status (a negative return prints
 *               `Process <name>: <tk_last_error()>` on stderr and exits 1).
 *               Must not be NULL.
 * @param args Positional values; the process takes ownership, also when the
 *             call fails. NULL means an empty tuple.
 * @param kwargs Keyword values; taken over like `args`. NULL means empty.
 * @return A new handle holding one reference (release it with
 *         tk_process_free()), or NULL on failure. Its name is `Process-N`
 *         (`Process-1:N` inside a child named `Process-1`), the counter
 *         advancing on every construction; `daemon` starts as the current
 *         process's flag.
 *
 * Errors: `TK_EINVAL` (target is NULL), `TK_ENOMEM`.
 * Thread-safety: safe from any thread.
 */
TK_API tk_process *tk_process_new(tk_target target, tk_args *args, tk_kwargs *kwargs);

/**
 * @brief Starts the process: flushes stdio, forks, and runs the target in
 *        the child (Python's `Process.start()`).
 * @param p The process; not NULL.
 * @return 0 once the child exists.
 *
 * In the child: stdin is `/dev/null`, the signal mask is empty,
 * tk_current_process() is the child and tk_parent_process() its parent; the
 * target runs, then the child's own end-of-program procedure, stdio is
 * flushed and the child leaves with `_exit()`, so the parent's `atexit`
 * handlers never run there. A daemonic child is also killed if this process
 * dies without running its end-of-program procedure (Linux).
 *
 * Only async-signal-safe work is done between `fork` and the target, apart
 * from libtaskkit's own fork hooks; when other threads of the parent may
 * hold locks (malloc's are made safe by glibc, others are not), the target
 * must be as careful as any code run after `fork` in a threaded program.
 *
 * Errors: `TK_EINVAL` (p is NULL); `TK_ESTATE` ("cannot start a process
 * twice"; "daemonic processes are not allowed to have children"; "can only
 * start a process object created by current process" for an inherited or
 * runtime-owned handle; "can't create new thread at interpreter shutdown"
 * while tk_shutdown() runs); `TK_EAGAIN`, `TK_ENOMEM` (fork failed);
 * `TK_EMFILE`, `TK_ENFILE` (no descriptor for the new child: the child is
 * killed and reaped before the call returns).
 * Thread-safety: safe from any thread; one handle must be started once.
 */
TK_API int tk_process_start(tk_process *p);

/**
 * @brief Waits for the process to end and reaps it (Python's `join`).
 * @param p The process; not NULL.
 * @param timeout Seconds; `TK_FOREVER` or `+INFINITY` wait without bound,
 *                0 or any other negative value polls.
 * @return 0 once the child has ended and been reaped (again 0 on later
 *         calls).
 *
 * Not a cancellation point: a stopped thread can still join. `EINTR` is
 * retried with the remaining time.
 *
 * Errors: `TK_EINVAL` (p NULL, timeout NaN); `TK_ETIMEDOUT` (still running
 * at the timeout); `TK_ESTATE` ("can only join a started process" before
 * start, "can only join a child process" on the current process, the parent
 * or an inherited handle); `TK_ECHILD` once, when the child was reaped
 * behind libtaskkit's back (`SIGCHLD` ignored, a stray `waitpid(-1)`): it
 * then counts as ended with exit code 0, as CPython's subprocess does.
 * Thread-safety: several threads may join one process at once.
 */
TK_API int tk_process_join(tk_process *p, double timeout);

/**
 * @brief Sends `SIGTERM` (Python's `terminate`).
 * @param p The process; not NULL.
 * @return 0; also 0 without sending anything when the process has ended
 *         (a reaped pid is never signalled, so a reused pid is safe).
 *
 * Errors: `TK_EINVAL` (p NULL); `TK_ESTATE` ("can only terminate a started
 * process" before start, "can only terminate a child process" for the
 * current, the parent or an inherited handle); a negative errno if the
 * signal cannot be sent (`TK_EPERM`).
 * Thread-safety: safe from any thread.
 */
TK_API int tk_process_terminate(tk_process *p);

/**
 * @brief Sends `SIGKILL` (Python's `kill`).
 * @param p The process; not NULL.
 * @return As tk_process_terminate().
 *
 * Errors: as tk_process_terminate() (with "kill" in the messages).
 * Thread-safety: safe from any thread.
 */
TK_API int tk_process_kill(tk_process *p);

/**
 * @brief Is the process running? Reaps it if it has ended.
 * @param p The process, or NULL (false).
 * @return true between a successful start and the child's end; true for
 *         tk_current_process(); for tk_parent_process(), whether the parent
 *         is still this process's parent. false for inherited handles.
 *
 * Errors: none (returns false). Thread-safety: safe from any thread.
 */
TK_API bool tk_process_is_alive(tk_process *p);

/**
 * @brief The exit code (Python's `exitcode`); may reap the child.
 * @param p The process, or NULL (`TK_EXITCODE_NONE`).
 * @return The target's return value & 0xff (1 after a negative return or an
 *         error exit), `-N` when killed by signal N, or `TK_EXITCODE_NONE`
 *         while not started or still running.
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API int tk_process_exitcode(const tk_process *p);

/**
 * @brief The child's process id (Python's `pid`).
 * @param p The process, or NULL (0).
 * @return The pid once started (kept after the child ended), 0 before
 *         start; the current process's or the parent's pid for the runtime
 *         handles.
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API pid_t tk_process_pid(const tk_process *p);

/**
 * @brief A descriptor that becomes readable once the process has ended
 *        (Python's `sentinel`), for `poll`/`select`.
 * @param p The process; not NULL.
 * @return The descriptor (a pidfd on Linux, an exit pipe elsewhere); it
 *         stays open and owned by the handle until tk_process_free(). -1
 *         on failure.
 *
 * Errors (via tk_last_error()): `TK_ESTATE` ("process not started" before
 * start; "can only use the sentinel of a child process" for inherited and
 * runtime-owned handles); `TK_EMFILE` (asked only after the child was
 * reaped, when a readable stand-in descriptor cannot be created);
 * `TK_EINVAL` (p NULL).
 * Thread-safety: safe from any thread.
 */
TK_API int tk_process_sentinel(const tk_process *p);

/**
 * @brief The process's name.
 * @param p The process; NULL gives "".
 * @return A borrowed string, valid until the name is next set or the handle
 *         freed.
 *
 * Errors: none. Thread-safety: must not race with tk_process_set_name().
 */
TK_API const char *tk_process_name(const tk_process *p);

/**
 * @brief Renames the handle (any time, as in Python; the OS process keeps
 *        its name).
 * @param p The process; not NULL. Works on tk_current_process() too.
 * @param name The new name, copied; not NULL.
 * @return 0.
 *
 * Errors: `TK_EINVAL` (p or name NULL), `TK_ENOMEM`.
 * Thread-safety: must not race with other calls through the same reference.
 */
TK_API int tk_process_set_name(tk_process *p, const char *name);

/**
 * @brief The daemon flag.
 * @param p The process, or NULL (false).
 * @return true if the process is daemonic: it is stopped (SIGTERM, then
 *         SIGKILL after 1 s) by the end-of-program procedure and may not
 *         start children.
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API bool tk_process_daemon(const tk_process *p);

/**
 * @brief Sets the daemon flag; only before start.
 * @param p The process; not NULL.
 * @param daemon The new flag.
 * @return 0.
 *
 * Errors: `TK_EINVAL` (p NULL); `TK_ESTATE` ("process has already started",
 * also for tk_current_process() and inherited handles).
 * Thread-safety: must not race with tk_process_start() on the same handle.
 */
TK_API int tk_process_set_daemon(tk_process *p, bool daemon);

/**
 * @brief Drops the caller's reference.
 * @param p The process, or NULL (no-op).
 *
 * A live child is detached, not stopped: libtaskkit still reaps it (no
 * zombie is left) at its next call that touches children, and
 * tk_shutdown() still joins or terminates it. Freeing an inherited handle
 * releases memory only (never closes a descriptor or sends a signal);
 * freeing tk_current_process() or tk_parent_process() is a no-op.
 *
 * Errors: none. Thread-safety: must not race with other calls through the
 * same reference.
 */
TK_API void tk_process_free(tk_process *p);

/**
 * @brief The calling process's own handle (Python's `current_process()`).
 * @return Never NULL: "MainProcess" in the main program, the child's handle
 *         (its name, pid and daemon flag) in a child. Owned by the runtime,
 *         valid while the process lives; freeing it is a no-op. After a raw
 *         `fork()` the child keeps its parent's name, as in Python.
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API tk_process *tk_current_process(void);

/**
 * @brief The parent's handle (Python's `parent_process()`).
 * @return NULL in the main program; in a forked child, a runtime-owned
 *         handle with the parent's name and pid (is_alive tells whether it
 *         still is the parent; it cannot be joined or signalled).
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API tk_process *tk_parent_process(void);

/**
 * @brief The live children of this process (Python's `active_children()`);
 *        reaps the ones that have ended.
 * @param out Receives up to `cap` handles, each a new reference the caller
 *            frees with tk_process_free(). May be NULL when cap is 0.
 * @param cap Capacity of `out`.
 * @return The total number of live children (which may exceed cap),
 *         including detached ones.
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API size_t tk_active_children(tk_process **out, size_t cap);

/**
 * @brief The number of CPUs this process may run on.
 * @return The size of the affinity mask where the OS has one, else the
 *         online CPU count; at least 1.
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API int tk_cpu_count(void);

/**
 * @brief The end-of-program procedure (Python's interpreter shutdown).
 *
 * Registered with `atexit` the first time a process, thread or pool is
 * started, and run only in the process that registered it. Steps: (0) shut
 * down every live pool, letting submitted work finish; (1) join all
 * non-daemon threads except the caller; (2) stop daemonic child processes
 * (SIGTERM, then SIGKILL after a 1 s grace, so a child that blocks SIGTERM
 * cannot hang the exit); (3) join all child processes, detached ones
 * included. Each call works on what is live at that moment, so calling it
 * again is safe; a start attempted while it runs gets `TK_ESTATE` ("can't
 * create new thread at interpreter shutdown"). Since `atexit` handlers run
 * last-in first-out, call it yourself at the end of `main` when other
 * handlers must run after the workers ended.
 *
 * Errors: none. Thread-safety: any thread, not a signal handler; a second
 * call while one runs returns at once.
 */
TK_API void tk_shutdown(void);

/**
 * @brief Waits until one of several processes has ended.
 * @param ps The processes; NULL entries are skipped (so a caller can blank
 *           out the ones it handled). Not NULL itself.
 * @param n Number of entries, at least 1.
 * @param timeout Seconds, as for tk_process_join().
 * @return The lowest index of an ended process (reaped).
 *
 * A cancellation point: returns `TK_ECANCELED` once tk_thread_stop() was
 * called for the calling thread.
 *
 * Errors: `TK_EINVAL` (ps NULL, n 0, every entry NULL, timeout NaN);
 * `TK_ESTATE` (an entry not started, or not a child of this process);
 * `TK_ETIMEDOUT`; `TK_ECANCELED`; `TK_ENOMEM`.
 * Thread-safety: safe from any thread.
 */
TK_API int tk_process_wait_any(tk_process **ps, size_t n, double timeout);

/**
 * @brief Stops a process firmly: SIGTERM, waits up to `grace` seconds,
 *        then SIGKILL, then reaps it.
 * @param p The process; not NULL.
 * @param grace Seconds to wait after SIGTERM (0 kills at once if it has not
 *              ended yet).
 * @return 0 once the child has ended and been reaped (also when it had
 *         already ended).
 *
 * Errors: as tk_process_terminate() and tk_process_join() (`TK_ECHILD`
 * once, when reaped behind libtaskkit's back).
 * Thread-safety: safe from any thread.
 */
TK_API int tk_process_stop(tk_process *p, double grace);

/**
 * @brief Leaves the calling process through libtaskkit's end path.
 * @param status The exit status (& 0xff). A negative value is treated as a
 *               failed target: `Process <name>: <tk_last_error()>` on
 *               stderr, status 1.
 *
 * Runs this process's end-of-program procedure (tk_shutdown()), flushes
 * stdio and calls `_exit()`. In a child this is the same path as returning
 * from the target. In the main program the other `atexit` handlers do
 * **not** run; call `exit()` instead where they must.
 *
 * Errors: none; never returns. Thread-safety: any thread.
 */
TK_API void tk_exit(int status) TK__NORETURN;

TK_END_DECLS

#endif /* TASKKIT_PROCESS_H */
