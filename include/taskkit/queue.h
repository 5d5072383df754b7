/**
 * @file taskkit/queue.h
 * @brief Queues (Python's queue.Queue / multiprocessing.Queue) and pipes
 *        (multiprocessing.Pipe) carrying argument bags.
 *
 * A **thread queue** (flags 0) stores the tk_args bags themselves, so any
 * value, pointers included, passes between threads of one process.
 *
 * A **shared queue** (#TK_SHARED) lives in shared memory and works between
 * this process and every process forked after its creation. It stores
 * *encodings* (tk_args_encode()) in a ring buffer of a fixed byte capacity:
 * pointer values are refused with `TK_ETYPE` at the put, a full buffer
 * blocks producers (memory stays bounded), and an item larger than the whole
 * buffer is `TK_EOVERFLOW`. A put copies the item into the shared buffer
 * before it returns: unlike CPython there is no feeder thread, so a producer
 * may exit right after its last put and nothing is lost.
 *
 * A **pipe** (tk_pipe_new()) gives two connected tk_conn ends, duplex or
 * one-way. Messages are whole tk_args bags (keyword values are not
 * carried), framed and encoded; each is written whole or not at all.
 *
 * Queue get, put and join, and conn recv, poll and send, are cancellation
 * points (tk_thread_stop()).
 */
#ifndef TASKKIT_QUEUE_H
#define TASKKIT_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

#include "args.h"
#include "error.h"
#include "export.h"

#ifndef TK_SHARED
/** @brief Flag: the object works across processes forked after its creation
 *         (also defined, identically, by taskkit/sync.h). */
#define TK_SHARED 1u
#endif

/** @brief The byte capacity of a #TK_SHARED queue made by tk_queue_new():
 *         1 MiB. */
#define TK_QUEUE_DEFAULT_CAPACITY ((size_t)1 << 20)

TK_BEGIN_DECLS

/** @brief A FIFO queue of argument bags. Opaque; see tk_queue_new(). */
typedef struct tk_queue tk_queue;

/** @brief One end of a pipe. Opaque; see tk_pipe_new(). */
typedef struct tk_conn tk_conn;

/**
 * @brief Creates a queue (Python's `queue.Queue(maxsize)`, or with
 *        #TK_SHARED `multiprocessing.Queue(maxsize)`).
 * @param maxsize The most items it holds; 0 means no item limit (a shared
 *                queue is still bounded by its byte capacity, 1 MiB).
 * @param flags   0 for threads of this process, or #TK_SHARED for processes
 *                forked after this call.
 * @return A new queue the caller frees with tk_queue_free(), or NULL.
 *
 * Errors: `TK_EINVAL` (unknown flag bits), `TK_ENOMEM`, an OS error if the
 * shared memory cannot be mapped. Thread-safety: safe from any thread.
 */
TK_API tk_queue *tk_queue_new(size_t maxsize, unsigned flags);

/**
 * @brief Creates a queue, choosing a #TK_SHARED queue's buffer size.
 * @param maxsize        As for tk_queue_new().
 * @param flags          As for tk_queue_new().
 * @param capacity_bytes The shared buffer's size in bytes (each item takes
 *                       its encoded length plus 4 bytes); 0 means the
 *                       default (#TK_QUEUE_DEFAULT_CAPACITY). Ignored for a
 *                       thread queue.
 * @return A new queue the caller frees with tk_queue_free(), or NULL.
 *
 * Errors: `TK_EINVAL` (unknown flag bits; a capacity below 64 bytes or
 * above 1 GiB), `TK_ENOMEM`, an OS error from `mmap`.
 * Thread-safety: safe from any thread.
 */
TK_API tk_queue *tk_queue_new_ex(size_t maxsize, unsigned flags, size_t capacity_bytes);

/**
 * @brief Appends an item, waiting for room if the queue is full.
 * @param q       The queue; not NULL.
 * @param item    The item; not NULL. Taken by the queue **only when the call
 *                returns 0**; on any failure the caller still owns it. A
 *                shared queue stores its encoding and frees the bag.
 * @param timeout Seconds to wait for room: #TK_FOREVER blocks, 0 polls.
 * @return 0, or a negative error code.
 *
 * Errors: `TK_EINVAL` (NULL argument, NaN timeout), `TK_EFULL` (still full
 * at the timeout), `TK_ECLOSED` (the queue was closed, also while waiting),
 * `TK_ECANCELED` (a stop was requested for the calling thread),
 * `TK_ETYPE` (shared queue: a pointer value), `TK_EOVERFLOW` (shared queue:
 * the item's encoding is larger than the whole buffer), `TK_EBROKEN`
 * (shared queue: a process died while holding its lock), `TK_ENOMEM`.
 * Thread-safety: safe from any thread (and, shared, any process).
 */
TK_API int tk_queue_put(tk_queue *q, tk_args *item, double timeout);

/**
 * @brief Removes the oldest item, waiting for one if the queue is empty.
 * @param q       The queue; not NULL.
 * @param item    Receives the item, which the caller frees; set to NULL on
 *                failure. Not NULL.
 * @param timeout Seconds to wait: #TK_FOREVER blocks, 0 polls.
 * @return 0, or a negative error code.
 *
 * Errors: `TK_EINVAL`, `TK_EEMPTY` (still empty at the timeout),
 * `TK_ECLOSED` (closed and drained: returned at once whatever the timeout),
 * `TK_ECANCELED`, `TK_EBROKEN`, `TK_EDECODE`, `TK_ENOMEM`.
 * Thread-safety: safe from any thread (and, shared, any process).
 */
TK_API int tk_queue_get(tk_queue *q, tk_args **item, double timeout);

/**
 * @brief The number of items in the queue.
 * @param q The queue, or NULL (0).
 * @return The number of items: exact for a thread queue at the moment of the
 *         call, approximate for a shared one (as Python's `qsize()`).
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API size_t tk_queue_size(tk_queue *q);

/**
 * @brief Marks one item taken by a get as processed (`Queue.task_done`).
 * @param q The queue; not NULL.
 * @return 0, or a negative error code.
 *
 * Errors: `TK_EINVAL` (NULL), `TK_ESTATE` ("task_done() called too many
 * times"), `TK_EBROKEN`. Thread-safety: safe from any thread.
 */
TK_API int tk_queue_task_done(tk_queue *q);

/**
 * @brief Waits until every item ever put has been marked task_done.
 * @param q       The queue; not NULL.
 * @param timeout Seconds to wait: #TK_FOREVER blocks, 0 polls.
 * @return 0, or a negative error code.
 *
 * Errors: `TK_EINVAL`, `TK_ETIMEDOUT`, `TK_ECANCELED`, `TK_EBROKEN`.
 * Thread-safety: safe from any thread.
 */
TK_API int tk_queue_join(tk_queue *q, double timeout);

/**
 * @brief Closes the queue: later puts fail with `TK_ECLOSED`, blocked
 *        putters and getters wake, gets drain what is left and then return
 *        `TK_ECLOSED`. Closing again is a no-op.
 * @param q The queue; not NULL.
 * @return 0, or a negative error code.
 *
 * Errors: `TK_EINVAL` (NULL), `TK_EBROKEN`. Thread-safety: safe from any
 * thread; for a shared queue it closes it for every process.
 */
TK_API int tk_queue_close(tk_queue *q);

/**
 * @brief Frees the queue and the items still in it.
 * @param q The queue, or NULL (a no-op). Nothing may be using it. A shared
 *          queue is unmapped in this process only; other processes keep
 *          using it.
 *
 * Errors: none. Thread-safety: must not overlap other calls on @p q.
 */
TK_API void tk_queue_free(tk_queue *q);

/**
 * @brief Creates a connected pair of conns (Python's `Pipe(duplex)`).
 * @param a      Receives the first end; NULL on failure. Not NULL.
 * @param b      Receives the second end; NULL on failure. Not NULL.
 * @param duplex true: both ends send and receive. false: @p a only
 *               receives and @p b only sends (the other direction is
 *               `TK_EPERM`).
 * @return 0, or a negative error code.
 *
 * Messages travel through a 128 KiB ring per direction in memory shared
 * with forked children; a socketpair tells each end whether the other is
 * still there, and an eventfd per direction wakes a sleeping receiver.
 * All are close-on-exec and inherited by forked children, so a pipe
 * created before a fork connects the two processes.
 *
 * Errors: `TK_EINVAL` (NULL out pointer), `TK_ENOMEM`, `TK_EMFILE` and
 * other OS errors from `socketpair`, `eventfd` or `mmap`.
 * Thread-safety: safe from any thread.
 */
TK_API int tk_pipe_new(tk_conn **a, tk_conn **b, bool duplex);

/**
 * @brief Sends a copy of a bag as one message.
 * @param c   The conn; not NULL.
 * @param msg The message (copied; the caller keeps it); NULL sends an
 *            empty bag.
 * @return 0, or a negative error code.
 *
 * Blocks while the pipe's ring is full. A stop (tk_thread_stop()) acts only
 * before the message's first byte is written: a message is sent whole or
 * not at all. Sends on one conn are serialised, also across processes
 * sharing the end.
 *
 * A peer that is gone (every holder of the other end closed it or died)
 * fails the send with `TK_ECLOSED`: at once after any end of the pipe was
 * closed with tk_conn_close() or after this process saw the peer's
 * process end (tk_process_join(), tk_process_is_alive(), ...); otherwise
 * any send that starts more than 50 microseconds after the peer vanished.
 * (Checking the peer is a system call, which costs more than a small
 * message; one check is good for 50 microseconds of sends.)
 *
 * Errors: `TK_EINVAL` (NULL conn), `TK_ETYPE` (a pointer value), `TK_EPERM`
 * ("connection is read-only"), `TK_ECLOSED` (the peer is gone; never
 * `SIGPIPE`), `TK_EBROKEN` (a process died in the middle of sending or
 * receiving a message on this direction while other processes still hold
 * its ends: the ring is no longer readable; noticed within 20 ms),
 * `TK_ECANCELED`, `TK_EOVERFLOW` (an encoding beyond 1 GiB), `TK_ENOMEM`.
 * Thread-safety: safe from any thread.
 */
TK_API int tk_conn_send(tk_conn *c, const tk_args *msg);

/**
 * @brief Receives one message.
 * @param c       The conn; not NULL.
 * @param msg     Receives a new bag the caller frees; NULL on failure. Not
 *                NULL.
 * @param timeout Seconds to wait for a message: #TK_FOREVER blocks, 0 polls.
 * @return 0, or a negative error code.
 *
 * Messages sent before the peer went away are still received; then
 * `TK_ECLOSED`.
 *
 * Errors: `TK_EINVAL`, `TK_ETIMEDOUT` (no message by the timeout),
 * `TK_ECLOSED` (end of file: the peer closed its end or died), `TK_EPERM`
 * ("connection is write-only"), `TK_EBROKEN` (see tk_conn_send()),
 * `TK_ECANCELED`, `TK_EDECODE` (a malformed message), `TK_ENOMEM` (the
 * message is dropped whole, the next receive gets the next one). A
 * cancellation point while it waits for a message; once a message's
 * first bytes are taken it is received whole.
 * Thread-safety: safe from any thread; concurrent receivers, in one process
 * or in processes sharing the end, each get whole messages, every message
 * to exactly one of them.
 */
TK_API int tk_conn_recv(tk_conn *c, tk_args **msg, double timeout);

/**
 * @brief Whether a message (or end of file) is waiting to be received.
 * @param c       The conn; not NULL.
 * @param timeout Seconds to wait: #TK_FOREVER blocks, 0 polls.
 * @return 1 if a tk_conn_recv() would not block, 0 if not by the timeout,
 *         or a negative error code.
 *
 * Errors: `TK_EINVAL`, `TK_EPERM` ("connection is write-only"),
 * `TK_ECANCELED`.
 * Thread-safety: safe from any thread.
 */
TK_API int tk_conn_poll(tk_conn *c, double timeout);

/**
 * @brief The conn's descriptor, for the caller's own event loop.
 * @param c The conn; may be NULL.
 * @return For an end that receives, an epoll descriptor that is readable
 *         while a message waits or at end of file; for a send-only end,
 *         its socket. -1 for NULL or on failure. The conn keeps owning
 *         it: do not close it.
 *
 * From the first call on, every message sent to this end also rings its
 * eventfd (a system call per message, as a socket would cost), so the
 * descriptor tracks the ring. As with select(2) on a socket, it may
 * occasionally be readable with nothing to receive (a wake-up that lands
 * after its message was taken): receive with a timeout of 0 after it
 * wakes you, and expect `TK_ETIMEDOUT` now and then.
 *
 * Errors: `TK_EMFILE` and other OS errors from `epoll_create1` (returns
 * -1). Thread-safety: safe from any thread.
 */
TK_API int tk_conn_fileno(const tk_conn *c);

/**
 * @brief Closes the conn and frees it; the peer then sees end of file.
 * @param c The conn, or NULL (a no-op). Must not race with other calls on
 *          @p c. In a process that inherited the conn through fork, only
 *          that process's copy of the descriptor is closed.
 *
 * Errors: none. Thread-safety: see above.
 */
TK_API void tk_conn_close(tk_conn *c);

TK_END_DECLS

#endif /* TASKKIT_QUEUE_H */
