/**
 * @file taskkit/error.h
 * @brief Error codes, their names and messages, and the per-thread last error.
 *
 * Every libtaskkit function that can fail returns an `int`: `0` (or another
 * non-negative value) on success and a negative `TK_E*` code on failure.
 * Codes that mirror an operating-system failure are negative errno values
 * (`TK_ENOMEM == -ENOMEM`); libtaskkit's own codes are negative values far
 * outside the errno range. Constructors return NULL and set the same state.
 *
 * Beside the code, tk_last_error() gives a human message with context, in
 * CPython's words where CPython has words for the failure.
 */
#ifndef TASKKIT_ERROR_H
#define TASKKIT_ERROR_H

#include <errno.h>
#include "export.h"

/**
 * @brief The table every error code is generated from.
 *
 * `X(NAME, value, "message")`; `tk_strerror` and `tk_err_name` are built from
 * the same table so they can never drift apart.
 * @hideinitializer
 */
#define TK_ERRNO_MAP(X)                                                      \
    X(ENOMEM, (-ENOMEM), "out of memory")                                    \
    X(EINVAL, (-EINVAL), "invalid argument")                                 \
    X(ETIMEDOUT, (-ETIMEDOUT), "timed out")                                  \
    X(EAGAIN, (-EAGAIN), "resource temporarily unavailable")                 \
    X(EPERM, (-EPERM), "operation not permitted")                            \
    X(ECANCELED, (-ECANCELED), "canceled (a stop was requested)")           \
    X(EOVERFLOW, (-EOVERFLOW), "value too large")                            \
    X(EDEADLK, (-EDEADLK), "resource deadlock avoided")                      \
    X(ECHILD, (-ECHILD), "no child process")                                 \
    X(ESRCH, (-ESRCH), "no such process")                                    \
    X(EMFILE, (-EMFILE), "too many open files")                              \
    X(ENFILE, (-ENFILE), "too many open files in system")                    \
    X(EBADF, (-EBADF), "bad file descriptor")                                \
    X(EINTR, (-EINTR), "interrupted system call")                            \
    X(ENOSYS, (-ENOSYS), "function not implemented")                         \
    X(EPIPE, (-EPIPE), "broken pipe")                                        \
    X(EBUSY, (-EBUSY), "device or resource busy")                            \
    X(ENOSPC, (-ENOSPC), "no space left on device")                          \
    X(E2BIG, (-E2BIG), "argument list too long")                             \
    X(ESTATE, (-5001), "call not valid in the object's current state")      \
    X(ETYPE, (-5002), "value of the wrong type")                             \
    X(EINDEX, (-5003), "index out of range")                                 \
    X(EKEY, (-5004), "no such key")                                          \
    X(EARGS, (-5005), "arguments do not bind to the signature")              \
    X(EBROKEN, (-5006), "broken (a participant failed or died)")             \
    X(EEMPTY, (-5007), "empty")                                              \
    X(EFULL, (-5008), "full")                                                \
    X(ECLOSED, (-5009), "closed")                                            \
    X(EDECODE, (-5010), "malformed encoding")                                \
    X(ETASK, (-5011), "the task failed")

/** @cond TK_INTERNAL */
#define TK__ERR_ENUM(name, value, msg) TK_##name = (value),
/** @endcond */

/**
 * @brief Error codes returned (negated errno values and libtaskkit's own).
 *
 * - `TK_ESTATE`: the call is not valid in the object's current state
 *   (Python's RuntimeError / ValueError);
 * - `TK_ETYPE`: a value has the wrong type; `TK_EINDEX`, `TK_EKEY`: no such
 *   position or key; `TK_EARGS`: arguments do not bind to a signature;
 * - `TK_EBROKEN`: a barrier, queue or pool is broken; `TK_EEMPTY`/`TK_EFULL`:
 *   a queue timed out; `TK_ECLOSED`: queue or connection closed;
 * - `TK_EDECODE`: malformed encoding; `TK_ETASK`: a pool task failed.
 */
enum tk_error {
    TK_ERRNO_MAP(TK__ERR_ENUM)
    /** Not an error: "acquired, but the previous holder died" (robust locks). */
    TK_OWNERDEAD = 1
};

/**
 * @brief Block without a time limit: pass as a timeout (Python's None).
 *
 * Timeouts everywhere are `double` seconds: TK_FOREVER (exactly -1.0) and
 * +INFINITY block; 0 and any other negative value poll; any finite value,
 * however large, is valid; NaN is TK_EINVAL.
 */
#define TK_FOREVER (-1.0)

TK_BEGIN_DECLS

/**
 * @brief A short description of an error code.
 * @param err A `TK_E*` code (negative), any negative errno value, or 0.
 * @return A static string, never NULL; "success" for 0 and non-negative
 *         values other than `TK_OWNERDEAD`, "unknown error" for unknown codes.
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API const char *tk_strerror(int err);

/**
 * @brief The symbolic name of an error code, such as `"TK_ESTATE"`.
 * @param err A `TK_E*` code or 0.
 * @return A static string, never NULL: `"TK_OK"` for 0, `"TK_OWNERDEAD"`,
 *         or `"TK_EUNKNOWN"` for a code not in the table.
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API const char *tk_err_name(int err);

/**
 * @brief The message of the most recent failure in the calling thread.
 * @return A message with context (for example
 *         `coding() missing 1 required positional argument: 'num'`); the
 *         empty string if no libtaskkit call has failed in this thread.
 *         Never NULL. The string stays valid until this thread's next
 *         libtaskkit call.
 *
 * Errors: none. Thread-safety: per thread; each thread sees its own.
 */
TK_API const char *tk_last_error(void);

/**
 * @brief The code of the most recent failure in the calling thread.
 * @return A negative `TK_E*` code, or 0 if nothing has failed yet in this
 *         thread. Useful after a constructor returned NULL.
 *
 * Errors: none. Thread-safety: per thread.
 */
TK_API int tk_last_error_code(void);

/**
 * @brief Records a failure of the caller's own as the calling thread's last
 *        error, so a target can fail with a message of its own.
 *
 * A target that returns a negative value is reported as
 * `Process <name>: <tk_last_error()>` (or `Exception in thread ...`); with
 * this call that message is the target's:
 * `return tk_set_error(TK_EINVAL, "num must be positive, got %d", num);`
 *
 * @param code A negative `TK_E*` code (or negative errno value).
 * @param fmt  printf-style format of the message; NULL records an empty one.
 * @param ...  The format's arguments.
 * @return `code`; or `TK_EINVAL` (recorded with its own message) when `code`
 *         is not negative.
 *
 * Errors: `TK_EINVAL` when `code >= 0`. Thread-safety: per thread.
 */
TK_API int tk_set_error(int code, const char *fmt, ...) TK_PRINTF(2, 3);

TK_END_DECLS

#endif /* TASKKIT_ERROR_H */
