/**
 * @file taskkit/pool.h
 * @brief Worker pools and futures (Python's concurrent.futures executors
 *        and multiprocessing.Pool).
 *
 * A pool runs tasks on a fixed set of internal workers: threads
 * (#TK_POOL_THREADS) or forked processes (#TK_POOL_PROCESSES). Submitting a
 * task gives a tk_future, through which the caller waits for the task, reads
 * its result, cancels it while pending, or interrupts it while running.
 *
 * Workers are internal: daemonic, named `ThreadPool-N_i` / `ProcessPool-N_i`
 * (visible in `top` and `ps`), absent from tk_thread_enumerate() and
 * tk_active_children(), with asynchronous signals blocked (threads). Live
 * pools are shut down first by the end-of-program procedure (tk_shutdown()),
 * letting submitted work finish.
 *
 * In a process pool, arguments and results cross as encodings
 * (tk_args_encode()): pointer values are refused with `TK_ETYPE`; the task's
 * function pointer crosses as is (workers are forked, so any function of the
 * program is valid there). A worker that dies fails only the future it was
 * running (`TK_EBROKEN`) and is replaced.
 *
 * Future waits (tk_future_wait(), tk_future_result(),
 * tk_future_wait_any()) are cancellation points (tk_thread_stop()).
 */
#ifndef TASKKIT_POOL_H
#define TASKKIT_POOL_H

#include <stdbool.h>
#include <stddef.h>

#include "args.h"
#include "error.h"
#include "export.h"

TK_BEGIN_DECLS

/**
 * @brief A task: the function a pool worker runs for one submitted call.
 * @param args   Its positional arguments; never NULL. Borrowed for the call.
 * @param kwargs Its keyword arguments; never NULL. Borrowed for the call.
 * @param result An empty bag the task fills with its result values; never
 *               NULL. Owned by the pool.
 * @return 0 on success. Any other value marks the future failed with that
 *         status (tk_future_status()); a failing task should set a last
 *         error, whose text tk_future_error() reports.
 */
typedef int (*tk_task)(const tk_args *args, const tk_kwargs *kwargs, tk_args *result);

/** @brief The kind of workers a pool has. */
typedef enum tk_pool_kind {
    TK_POOL_THREADS = 0,  /**< Threads of this process (ThreadPoolExecutor). */
    TK_POOL_PROCESSES = 1 /**< Forked processes (ProcessPoolExecutor). */
} tk_pool_kind;

/** @brief A pool of workers. Opaque; see tk_pool_new(). */
typedef struct tk_pool tk_pool;

/** @brief The eventual outcome of a submitted task. Opaque,
 *         reference-counted; see tk_pool_submit(). */
typedef struct tk_future tk_future;

/**
 * @brief Creates a pool and starts its workers.
 * @param kind    #TK_POOL_THREADS or #TK_POOL_PROCESSES.
 * @param workers The number of workers (1 to 1024), or 0 for tk_cpu_count().
 * @return A new pool the caller frees with tk_pool_free(), or NULL.
 *
 * Errors: `TK_EINVAL` (bad kind or worker count), `TK_ESTATE` (during
 * tk_shutdown(): "can't create new thread at interpreter shutdown"; a
 * process pool from a daemonic process: "daemonic processes are not
 * allowed to have children"), `TK_ENOMEM`, an OS error if a
 * worker cannot be started. Thread-safety: safe from any thread.
 */
TK_API tk_pool *tk_pool_new(tk_pool_kind kind, int workers);

/**
 * @brief Creates a pool whose workers each run an initializer first
 *        (`Pool(initializer=..., initargs=...)`).
 * @param kind        As for tk_pool_new().
 * @param workers     As for tk_pool_new().
 * @param initializer Run once in each worker before its first task, with
 *                    @p initargs and empty kwargs; NULL for none. A negative
 *                    return is reported on stderr; the worker carries on.
 * @param initargs    Its arguments; taken by the pool, also on failure;
 *                    NULL means none.
 * @return A new pool, or NULL.
 *
 * Errors: as for tk_pool_new(). Thread-safety: safe from any thread.
 */
TK_API tk_pool *tk_pool_new_ex(tk_pool_kind kind, int workers, tk_target initializer,
                               tk_args *initargs);

/**
 * @brief Schedules fn(args, kwargs) on the pool.
 * @param p      The pool; not NULL.
 * @param fn     The task; not NULL.
 * @param args   Its arguments; taken, also on failure; NULL means none.
 * @param kwargs Its keyword arguments; taken, also on failure; NULL means
 *               none. A thread pool frees both bags with the future (the
 *               last tk_future_free()), not in the worker: freeing another
 *               thread's allocations made the allocator's lock the main
 *               cost of a tiny task. A released future's memory is kept
 *               for the pool's next submits (up to 65,536 of them, 8 MiB,
 *               returned when the pool and its last future are freed).
 * @return A new future the caller frees with tk_future_free(), or NULL.
 *
 * Errors: `TK_EINVAL` (NULL pool or fn), `TK_ESTATE` ("cannot schedule new
 * futures after shutdown"; a pool inherited through fork), `TK_ETYPE`
 * (process pool: a pointer value), `TK_ENOMEM`. Thread-safety: safe from
 * any thread.
 */
TK_API tk_future *tk_pool_submit(tk_pool *p, tk_task fn, tk_args *args, tk_kwargs *kwargs);

/**
 * @brief Runs fn on every item and collects the results in input order
 *        (`Pool.map`).
 * @param p       The pool; not NULL.
 * @param fn      The task, called as fn(items[i], {}, result); not NULL.
 * @param items   @p n argument bags, each taken (also on failure); NULL
 *                entries mean empty bags. May be NULL only when @p n is 0.
 * @param n       The number of items.
 * @param results Receives @p n new bags the caller frees (NULL for a failed
 *                item); not NULL unless @p n is 0.
 * @return 0 once every item succeeded; otherwise, after every item has
 *         finished, the first failure in input order.
 *
 * Waits for all items (not a cancellation point: results are written into
 * the caller's array). Errors: `TK_EINVAL`, `TK_ESTATE` (after shutdown),
 * `TK_ETASK` (an item's task failed: tk_last_error() gives its index and
 * error text), `TK_EBROKEN` (its worker process died), `TK_ETYPE`,
 * `TK_ENOMEM`. Thread-safety: safe from any thread.
 */
TK_API int tk_pool_map(tk_pool *p, tk_task fn, tk_args **items, size_t n, tk_args **results);

/**
 * @brief tk_pool_map() sending the items in chunks of @p chunksize: fewer
 *        round trips for many small tasks (`Pool.map(chunksize=...)`).
 * @param p         The pool; not NULL.
 * @param fn        The task; not NULL.
 * @param items     As for tk_pool_map().
 * @param n         The number of items.
 * @param results   As for tk_pool_map().
 * @param chunksize Items per chunk; 0 picks one as CPython does (about
 *                  n / (4 * workers)).
 * @return As for tk_pool_map().
 *
 * Errors: as for tk_pool_map(). A worker process dying fails every item of
 * its chunk with `TK_EBROKEN`. Thread-safety: safe from any thread.
 */
TK_API int tk_pool_map_ex(tk_pool *p, tk_task fn, tk_args **items, size_t n,
                          tk_args **results, size_t chunksize);

/**
 * @brief Stops accepting work (`Executor.shutdown`).
 * @param p              The pool; not NULL.
 * @param wait           true: return once every worker has ended (pending
 *                       tasks run first unless cancelled).
 * @param cancel_futures true: cancel every task that has not started.
 * @return 0, or a negative error code. Calling it again is harmless.
 *
 * Errors: `TK_EINVAL` (NULL), `TK_EDEADLK` (a waiting shutdown from one of
 * the pool's own tasks or callbacks). Thread-safety: safe from any thread.
 */
TK_API int tk_pool_shutdown(tk_pool *p, bool wait, bool cancel_futures);

/**
 * @brief Shuts the pool down (waiting, without cancelling) and frees it.
 * @param p The pool, or NULL (a no-op). Futures outlive it. A pool
 *          inherited through fork only has its memory released.
 *
 * Errors: none. Thread-safety: must not overlap other calls on @p p.
 */
TK_API void tk_pool_free(tk_pool *p);

/**
 * @brief Waits until the future is done (finished, failed or cancelled).
 * @param f       The future; not NULL.
 * @param timeout Seconds to wait: #TK_FOREVER blocks, 0 polls.
 * @return 0 once done, or a negative error code.
 *
 * Errors: `TK_EINVAL`, `TK_ETIMEDOUT`, `TK_ECANCELED` (a stop was requested
 * for the calling thread). Thread-safety: safe from any thread.
 */
TK_API int tk_future_wait(tk_future *f, double timeout);

/**
 * @brief Waits for the future and gives its result.
 * @param f       The future; not NULL.
 * @param timeout Seconds to wait: #TK_FOREVER blocks, 0 polls.
 * @param result  Receives the result bag, borrowed from the future (valid
 *                until tk_future_free()); NULL on failure. May be NULL.
 * @return 0 when the task succeeded, or a negative error code.
 *
 * Errors: `TK_ETASK` (the task returned non-zero: tk_future_status() gives
 * the value, tk_future_error() and tk_last_error() its error text),
 * `TK_ECANCELED` (the future was cancelled or interrupted, or a stop was
 * requested for the calling thread while waiting), `TK_EBROKEN` (its worker
 * process died), `TK_ETIMEDOUT`, `TK_EINVAL`. Thread-safety: safe from any
 * thread.
 */
TK_API int tk_future_result(tk_future *f, double timeout, const tk_args **result);

/**
 * @brief The task's outcome.
 * @param f The future; not NULL.
 * @return `TK_EXITCODE_NONE` (INT_MIN) until done; then the task's return
 *         value (0 on success), `TK_ECANCELED` or `TK_EBROKEN`; `TK_EINVAL`
 *         for NULL.
 *
 * Errors: none recorded. Thread-safety: safe from any thread.
 */
TK_API int tk_future_status(const tk_future *f);

/**
 * @brief Whether the future is done (finished, failed or cancelled).
 * @param f The future, or NULL (false).
 * @return true once done.
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API bool tk_future_done(const tk_future *f);

/**
 * @brief Cancels the task if it has not started (`Future.cancel`).
 * @param f The future, or NULL (false).
 * @return true if it was pending (now cancelled: done-callbacks run in the
 *         caller) or already cancelled; false if running or finished.
 *
 * In a process pool a task counts as started once it has been sent to a
 * worker. Errors: none. Thread-safety: safe from any thread.
 */
TK_API bool tk_future_cancel(tk_future *f);

/**
 * @brief Interrupts a running task.
 * @param f The future; not NULL.
 * @return 0 if the task was running and is being interrupted, or a negative
 *         error code.
 *
 * Thread pool: requests a stop for that task only (tk_stop_requested() and
 * the cancellation points see it; the worker carries on with the next task).
 * Process pool: kills the worker running it (SIGKILL) and starts a
 * replacement; the future fails with `TK_ECANCELED`.
 *
 * Errors: `TK_EINVAL` (NULL), `TK_ESTATE` ("future is not running": pending
 * or done). Thread-safety: safe from any thread.
 */
TK_API int tk_future_interrupt(tk_future *f);

/**
 * @brief The error text of a failed task.
 * @param f The future; may be NULL.
 * @return The task's tk_last_error() text when it failed (carried back from
 *         a worker process too), a description for a cancelled or broken
 *         future, or "" otherwise. Borrowed from the future.
 *
 * Errors: none. Thread-safety: safe once the future is done.
 */
TK_API const char *tk_future_error(const tk_future *f);

/**
 * @brief Drops the caller's reference.
 * @param f The future, or NULL (a no-op). A pending or running future is
 *          detached: the task still runs, its result is discarded.
 *
 * Errors: none. Thread-safety: must not overlap other calls through the
 * same reference.
 */
TK_API void tk_future_free(tk_future *f);

/**
 * @brief Calls cb(f, ud) once the future is done (`add_done_callback`).
 * @param f  The future; not NULL.
 * @param cb The callback; not NULL. It runs on the worker thread (thread
 *           pools), on the pool's result thread (process pools), or at
 *           once in the caller when the future is already done; never
 *           under an internal lock. It must not free @p f.
 * @param ud Passed to @p cb.
 * @return 0, or a negative error code.
 *
 * Errors: `TK_EINVAL` (NULL), `TK_ENOMEM`. Thread-safety: safe from any
 * thread.
 */
TK_API int tk_future_add_done_callback(tk_future *f, void (*cb)(tk_future *f, void *ud),
                                       void *ud);

/**
 * @brief Waits until one of several futures is done.
 * @param fs      The futures; NULL entries are skipped.
 * @param n       Their number; 0 is `TK_EINVAL`.
 * @param timeout Seconds to wait: #TK_FOREVER blocks, 0 polls.
 * @return The lowest index of a done future, or a negative error code.
 *
 * Errors: `TK_EINVAL` (NULL @p fs, @p n 0, only NULL entries, NaN timeout),
 * `TK_ETIMEDOUT`, `TK_ECANCELED`. Thread-safety: safe from any thread.
 */
TK_API int tk_future_wait_any(tk_future **fs, size_t n, double timeout);

TK_END_DECLS

#endif /* TASKKIT_POOL_H */
