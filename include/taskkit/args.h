/**
 * @file taskkit/args.h
 * @brief Argument bags: Python's args tuple (tk_args) and kwargs dict
 *        (tk_kwargs), binding them to a signature (tk_bind), and their byte
 *        encoding (tk_args_encode / tk_args_decode).
 *
 * A bag holds values of seven types (tk_type). Strings and bytes are copied
 * into the bag; pointers are stored as they are (the bag never frees what a
 * pointer points to).
 *
 * **Format codes**, shared by the builders (tk_args_of, tk_kwargs_of) and by
 * tk_bind. The builders read C variadic arguments, so each value must have
 * the *promoted* type in the table, as with `printf`: `(int64_t)-1` for `l`,
 * `3.0` not `3` for `d`, `(size_t)n` for a `y` length, `(void *)0` for a NULL
 * `p`. Passing another type is undefined behaviour the library cannot
 * detect; the C11 macro #TK_ARGS picks each type at compile time instead.
 *
 * | code | value type | builder reads (va_arg)            | tk_bind writes through |
 * |------|------------|-----------------------------------|------------------------|
 * | `i`  | int        | `int`                             | `int *` (range-checked: `TK_EOVERFLOW`) |
 * | `l`  | int        | `int64_t`                         | `int64_t *` |
 * | `d`  | float      | `double`                          | `double *` (an int value converts, as `float()` would) |
 * | `?`  | bool       | `int` (0 is false, anything else true) | `bool *` |
 * | `s`  | str        | `const char *` (copied; NULL is `TK_EINVAL`) | `const char **` (borrowed) |
 * | `z`  | str or None| `const char *` (copied; NULL stores None) | `const char **` (NULL for None) |
 * | `y`  | bytes      | `const void *, size_t` (copied)   | `const void **, size_t *` (borrowed) |
 * | `p`  | pointer    | `void *` (stored, not copied)     | `void **` |
 * | `n`  | None       | nothing                           | (not allowed in a signature) |
 *
 * **Types are strict.** Getters never convert, except that a float getter
 * accepts an int value. Unlike CPython, a bool is *not* an int here: binding
 * or getting a bool value as `i`/`l` is `TK_ETYPE`, because a C caller
 * passing a bool where an int is expected is almost always a bug.
 *
 * **Borrowed pointers** (strings and bytes from getters, tk_kwargs_key,
 * tk_bind's `s`/`z`/`y`) stay valid until their bag is next modified or
 * freed.
 *
 * **NULL bags**: functions that only read a bag treat NULL as empty (so
 * tk_args_len(NULL) is 0). Functions that modify a bag refuse NULL with
 * `TK_EINVAL`.
 *
 * **Thread-safety**: a bag is not locked. Const operations on one bag may run
 * concurrently from several threads; a modification must not overlap any
 * other operation on the same bag. Different bags are independent.
 *
 * **Cost**: a bag built all at once (tk_args_of() with up to 16 values,
 * TK_ARGS(), tk_args_from(), tk_args_copy(), tk_kwargs_copy()) lives in one
 * heap allocation of just the size its values need (72 bytes for one
 * integer), strings and bytes included up to 1 MiB. A bag made empty and
 * filled afterwards holds up to 4 values whose strings, bytes and keys fit
 * a 64-byte inline arena in one allocation, and grows beyond that.
 * tk_bind allocates nothing.
 */
#ifndef TASKKIT_ARGS_H
#define TASKKIT_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "export.h"

TK_BEGIN_DECLS

/** @brief Positional values: Python's args tuple. Opaque; see tk_args_new(). */
typedef struct tk_args tk_args;

/** @brief Named values in insertion order: Python's kwargs dict. Opaque; see
 *         tk_kwargs_new(). */
typedef struct tk_kwargs tk_kwargs;

/** @brief The type of a value in a bag. */
typedef enum tk_type {
    TK_TYPE_INVALID = -1, /**< No value (index out of range, key absent). */
    TK_TYPE_NONE,         /**< None (Python's `NoneType`). */
    TK_TYPE_BOOL,         /**< bool. */
    TK_TYPE_INT,          /**< int: a signed 64-bit integer. */
    TK_TYPE_FLOAT,        /**< float: a C double. */
    TK_TYPE_STR,          /**< str: a NUL-terminated string, copied into the bag. */
    TK_TYPE_BYTES,        /**< bytes: a byte string with a length, copied into the bag. */
    TK_TYPE_PTR           /**< pointer: stored as is, never encoded or freed. */
} tk_type;

/**
 * @brief A target: the function a process or thread runs.
 * @param args   Its positional arguments; never NULL (empty when none were
 *               given). Borrowed for the call.
 * @param kwargs Its keyword arguments; never NULL. Borrowed for the call.
 * @return The process's exit status or the thread's result. A negative
 *         value means "failed with a libtaskkit error": the runtime reports
 *         tk_last_error() on stderr and a process exits with status 1.
 */
typedef int (*tk_target)(const tk_args *args, const tk_kwargs *kwargs);

/**
 * @brief The name CPython would give a type, for messages.
 * @param t Any value, valid or not.
 * @return A static string: `"NoneType"`, `"bool"`, `"int"`, `"float"`,
 *         `"str"`, `"bytes"`, `"pointer"`, or `"invalid"` for anything else.
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API const char *tk_type_name(tk_type t);

/* ------------------------------------------------------------- tk_args */

/**
 * @brief Creates an empty args tuple.
 * @return A new bag the caller frees with tk_args_free(), or NULL.
 *
 * Errors: `TK_ENOMEM`. Thread-safety: safe from any thread.
 */
TK_API tk_args *tk_args_new(void);

/**
 * @brief Builds an args tuple from a format string, like `Py_BuildValue`.
 * @param fmt One format code per value (see the table in this file's
 *            description), e.g. `"is"`; whitespace is ignored; `""` gives an
 *            empty bag. Must not be NULL.
 * @param ... One value per code, of the promoted type the table names.
 * @return A new bag the caller frees, or NULL. A constructor given that NULL
 *         would read it as an *empty* bag, so check the result where the
 *         format is not a literal.
 *
 * Errors: `TK_EINVAL` (fmt NULL; unknown format code, named with its
 * position; a NULL string for `s`; a NULL bytes pointer with a non-zero
 * length), `TK_ENOMEM`. Thread-safety: safe from any thread.
 */
TK_API tk_args *tk_args_of(const char *fmt, ...);

/**
 * @brief Deep copy: strings and bytes are duplicated, pointers copied as is.
 * @param a The bag to copy; NULL copies as an empty bag.
 * @return A new bag the caller frees, or NULL.
 *
 * Errors: `TK_ENOMEM`. Thread-safety: a const operation on @p a.
 */
TK_API tk_args *tk_args_copy(const tk_args *a);

/**
 * @brief Frees a bag and the strings and bytes it holds (not what its
 *        pointer values point to).
 * @param a The bag, or NULL (a no-op).
 *
 * Errors: none. Thread-safety: must not overlap other calls on @p a.
 */
TK_API void tk_args_free(tk_args *a);

/**
 * @brief The number of values.
 * @param a The bag, or NULL (length 0).
 * @return The number of values.
 *
 * Errors: none. Thread-safety: a const operation.
 */
TK_API size_t tk_args_len(const tk_args *a);

/**
 * @brief The type of the value at index @p i.
 * @param a The bag, or NULL (empty).
 * @param i Zero-based index.
 * @return Its type, or `TK_TYPE_INVALID` when @p i is out of range.
 *
 * Errors: none (sets no last error). Thread-safety: a const operation.
 */
TK_API tk_type tk_args_type(const tk_args *a, size_t i);

/**
 * @brief Appends None.
 * @param a The bag; not NULL.
 * @return 0, or a negative error code.
 *
 * Errors: `TK_EINVAL` (@p a NULL), `TK_ENOMEM`.
 * Thread-safety: modifies @p a.
 */
TK_API int tk_args_add_none(tk_args *a);

/**
 * @brief Appends a bool.
 * @param a The bag; not NULL.
 * @param v The value.
 * @return 0, or a negative error code.
 *
 * Errors: `TK_EINVAL` (@p a NULL), `TK_ENOMEM`.
 * Thread-safety: modifies @p a.
 */
TK_API int tk_args_add_bool(tk_args *a, bool v);

/**
 * @brief Appends an int.
 * @param a The bag; not NULL.
 * @param v The value.
 * @return 0, or a negative error code.
 *
 * Errors: `TK_EINVAL` (@p a NULL), `TK_ENOMEM`.
 * Thread-safety: modifies @p a.
 */
TK_API int tk_args_add_int(tk_args *a, int64_t v);

/**
 * @brief Appends a float.
 * @param a The bag; not NULL.
 * @param v The value (any double, NaN and infinities included).
 * @return 0, or a negative error code.
 *
 * Errors: `TK_EINVAL` (@p a NULL), `TK_ENOMEM`.
 * Thread-safety: modifies @p a.
 */
TK_API int tk_args_add_float(tk_args *a, double v);

/**
 * @brief Appends a copy of a string.
 * @param a The bag; not NULL.
 * @param v A NUL-terminated string; not NULL (use tk_args_add_none()).
 * @return 0, or a negative error code.
 *
 * Errors: `TK_EINVAL` (@p a or @p v NULL), `TK_ENOMEM`.
 * Thread-safety: modifies @p a.
 */
TK_API int tk_args_add_str(tk_args *a, const char *v);

/**
 * @brief Appends a copy of @p n bytes.
 * @param a The bag; not NULL.
 * @param v The bytes; may be NULL only when @p n is 0.
 * @param n Their number.
 * @return 0, or a negative error code.
 *
 * Errors: `TK_EINVAL` (@p a NULL, or @p v NULL with @p n > 0), `TK_ENOMEM`.
 * Thread-safety: modifies @p a.
 */
TK_API int tk_args_add_bytes(tk_args *a, const void *v, size_t n);

/**
 * @brief Appends a pointer (stored as is; the bag never frees it).
 * @param a The bag; not NULL.
 * @param v Any pointer, NULL included.
 * @return 0, or a negative error code.
 *
 * Errors: `TK_EINVAL` (@p a NULL), `TK_ENOMEM`.
 * Thread-safety: modifies @p a.
 */
TK_API int tk_args_add_ptr(tk_args *a, void *v);

/**
 * @brief Reads a bool.
 * @param a   The bag, or NULL (empty).
 * @param i   Zero-based index.
 * @param out Receives the value; not NULL. Untouched on failure.
 * @return 0, or a negative error code.
 *
 * Errors: `TK_EINVAL` (@p out NULL), `TK_EINDEX` ("tuple index 3 out of
 * range"), `TK_ETYPE` ("argument 0 must be bool, not int").
 * Thread-safety: a const operation.
 */
TK_API int tk_args_get_bool(const tk_args *a, size_t i, bool *out);

/**
 * @brief Reads an int (a bool value is `TK_ETYPE`).
 * @param a   The bag, or NULL (empty).
 * @param i   Zero-based index.
 * @param out Receives the value; not NULL. Untouched on failure.
 * @return 0, or a negative error code.
 *
 * Errors: `TK_EINVAL` (@p out NULL), `TK_EINDEX`, `TK_ETYPE`
 * ("argument 0 must be int, not str"). Thread-safety: a const operation.
 */
TK_API int tk_args_get_int(const tk_args *a, size_t i, int64_t *out);

/**
 * @brief Reads a float; an int value converts, as Python's `float()` would.
 * @param a   The bag, or NULL (empty).
 * @param i   Zero-based index.
 * @param out Receives the value; not NULL. Untouched on failure.
 * @return 0, or a negative error code.
 *
 * Errors: `TK_EINVAL` (@p out NULL), `TK_EINDEX`, `TK_ETYPE`.
 * Thread-safety: a const operation.
 */
TK_API int tk_args_get_float(const tk_args *a, size_t i, double *out);

/**
 * @brief Reads a string (borrowed; None is `TK_ETYPE`).
 * @param a   The bag, or NULL (empty).
 * @param i   Zero-based index.
 * @param out Receives a pointer into the bag, valid until the bag is next
 *            modified or freed; not NULL. Untouched on failure.
 * @return 0, or a negative error code.
 *
 * Errors: `TK_EINVAL` (@p out NULL), `TK_EINDEX`, `TK_ETYPE`.
 * Thread-safety: a const operation.
 */
TK_API int tk_args_get_str(const tk_args *a, size_t i, const char **out);

/**
 * @brief Reads bytes (borrowed).
 * @param a   The bag, or NULL (empty).
 * @param i   Zero-based index.
 * @param out Receives a pointer into the bag (never NULL, even for 0
 *            bytes; aligned to at least 8 bytes), valid until the bag is
 *            next modified or freed; not NULL.
 * @param n   Receives the length; not NULL.
 * @return 0, or a negative error code. Nothing is written on failure.
 *
 * Errors: `TK_EINVAL` (@p out or @p n NULL), `TK_EINDEX`, `TK_ETYPE`.
 * Thread-safety: a const operation.
 */
TK_API int tk_args_get_bytes(const tk_args *a, size_t i, const void **out, size_t *n);

/**
 * @brief Reads a pointer.
 * @param a   The bag, or NULL (empty).
 * @param i   Zero-based index.
 * @param out Receives the pointer; not NULL. Untouched on failure.
 * @return 0, or a negative error code.
 *
 * Errors: `TK_EINVAL` (@p out NULL), `TK_EINDEX`, `TK_ETYPE`.
 * Thread-safety: a const operation.
 */
TK_API int tk_args_get_ptr(const tk_args *a, size_t i, void **out);

/* ----------------------------------------------------------- tk_kwargs */

/**
 * @brief Creates an empty kwargs dict.
 * @return A new bag the caller frees with tk_kwargs_free(), or NULL.
 *
 * Errors: `TK_ENOMEM`. Thread-safety: safe from any thread.
 */
TK_API tk_kwargs *tk_kwargs_new(void);

/**
 * @brief Builds a kwargs dict from a format string.
 * @param fmt Comma-separated `key:code` items, e.g. `"num:i, name:s"`;
 *            whitespace around items is ignored, a trailing comma allowed,
 *            `""` gives an empty dict. A key is any run of characters other
 *            than `:`, `,` and whitespace. A repeated key keeps its first
 *            position and takes the later value, as a Python dict literal
 *            `{'a': 1, 'a': 2}` does. Must not be NULL.
 * @param ... One value per item, of the promoted type its code names (see
 *            the table in this file's description).
 * @return A new bag the caller frees, or NULL.
 *
 * Errors: `TK_EINVAL` (fmt NULL; empty key, missing `:code`, unknown code,
 * junk after an item — each named with its position; a NULL `s` string),
 * `TK_ENOMEM`. Thread-safety: safe from any thread.
 */
TK_API tk_kwargs *tk_kwargs_of(const char *fmt, ...);

/**
 * @brief Deep copy, keeping the insertion order.
 * @param k The bag to copy; NULL copies as an empty bag.
 * @return A new bag the caller frees, or NULL.
 *
 * Errors: `TK_ENOMEM`. Thread-safety: a const operation on @p k.
 */
TK_API tk_kwargs *tk_kwargs_copy(const tk_kwargs *k);

/**
 * @brief Frees a bag, its keys, strings and bytes.
 * @param k The bag, or NULL (a no-op).
 *
 * Errors: none. Thread-safety: must not overlap other calls on @p k.
 */
TK_API void tk_kwargs_free(tk_kwargs *k);

/**
 * @brief The number of keys.
 * @param k The bag, or NULL (0).
 * @return The number of keys.
 *
 * Errors: none. Thread-safety: a const operation.
 */
TK_API size_t tk_kwargs_len(const tk_kwargs *k);

/**
 * @brief The key at position @p i in insertion order.
 * @param k The bag, or NULL (empty).
 * @param i Zero-based position.
 * @return The key (borrowed, valid until the bag is next modified or freed),
 *         or NULL past the end.
 *
 * Errors: none (sets no last error). Thread-safety: a const operation.
 */
TK_API const char *tk_kwargs_key(const tk_kwargs *k, size_t i);

/**
 * @brief Whether @p key is present.
 * @param k   The bag, or NULL (empty).
 * @param key The key; NULL or empty gives false.
 * @return true when present.
 *
 * Errors: none. Thread-safety: a const operation.
 */
TK_API bool tk_kwargs_has(const tk_kwargs *k, const char *key);

/**
 * @brief The type of the value under @p key.
 * @param k   The bag, or NULL (empty).
 * @param key The key; NULL or empty gives `TK_TYPE_INVALID`.
 * @return Its type, or `TK_TYPE_INVALID` when absent.
 *
 * Errors: none (sets no last error). Thread-safety: a const operation.
 */
TK_API tk_type tk_kwargs_type(const tk_kwargs *k, const char *key);

/**
 * @brief Removes @p key and its value; later keys move up one position.
 * @param k   The bag; not NULL.
 * @param key The key; not NULL or empty.
 * @return 0, or a negative error code.
 *
 * Errors: `TK_EINVAL` (@p k NULL, @p key NULL or empty), `TK_EKEY`
 * ("KeyError: 'num'"). Thread-safety: modifies @p k.
 */
TK_API int tk_kwargs_del(tk_kwargs *k, const char *key);

/**
 * @brief Sets @p key to None: inserts it at the end, or replaces its value
 *        in place, keeping its position (as assigning to a dict key does).
 * @param k   The bag; not NULL.
 * @param key The key (copied); not NULL or empty.
 * @return 0, or a negative error code; on failure the bag is unchanged.
 *
 * Errors: `TK_EINVAL` (@p k NULL, @p key NULL or empty), `TK_ENOMEM`.
 * Thread-safety: modifies @p k.
 */
TK_API int tk_kwargs_set_none(tk_kwargs *k, const char *key);

/**
 * @brief Sets @p key to a bool (insert, or replace in place).
 * @param k   The bag; not NULL.
 * @param key The key (copied); not NULL or empty.
 * @param v   The value.
 * @return 0, or a negative error code; on failure the bag is unchanged.
 *
 * Errors: `TK_EINVAL` (@p k NULL, @p key NULL or empty), `TK_ENOMEM`.
 * Thread-safety: modifies @p k.
 */
TK_API int tk_kwargs_set_bool(tk_kwargs *k, const char *key, bool v);

/**
 * @brief Sets @p key to an int (insert, or replace in place).
 * @param k   The bag; not NULL.
 * @param key The key (copied); not NULL or empty.
 * @param v   The value.
 * @return 0, or a negative error code; on failure the bag is unchanged.
 *
 * Errors: `TK_EINVAL` (@p k NULL, @p key NULL or empty), `TK_ENOMEM`.
 * Thread-safety: modifies @p k.
 */
TK_API int tk_kwargs_set_int(tk_kwargs *k, const char *key, int64_t v);

/**
 * @brief Sets @p key to a float (insert, or replace in place).
 * @param k   The bag; not NULL.
 * @param key The key (copied); not NULL or empty.
 * @param v   The value.
 * @return 0, or a negative error code; on failure the bag is unchanged.
 *
 * Errors: `TK_EINVAL` (@p k NULL, @p key NULL or empty), `TK_ENOMEM`.
 * Thread-safety: modifies @p k.
 */
TK_API int tk_kwargs_set_float(tk_kwargs *k, const char *key, double v);

/**
 * @brief Sets @p key to a copy of a string (insert, or replace in place).
 * @param k   The bag; not NULL.
 * @param key The key (copied); not NULL or empty.
 * @param v   The string; not NULL (use tk_kwargs_set_none()).
 * @return 0, or a negative error code; on failure the bag is unchanged.
 *
 * Errors: `TK_EINVAL` (@p k, @p v NULL, @p key NULL or empty), `TK_ENOMEM`.
 * Thread-safety: modifies @p k.
 */
TK_API int tk_kwargs_set_str(tk_kwargs *k, const char *key, const char *v);

/**
 * @brief Sets @p key to a copy of @p n bytes (insert, or replace in place).
 * @param k   The bag; not NULL.
 * @param key The key (copied); not NULL or empty.
 * @param v   The bytes; may be NULL only when @p n is 0.
 * @param n   Their number.
 * @return 0, or a negative error code; on failure the bag is unchanged.
 *
 * Errors: `TK_EINVAL` (@p k NULL, @p key NULL or empty, @p v NULL with
 * @p n > 0), `TK_ENOMEM`. Thread-safety: modifies @p k.
 */
TK_API int tk_kwargs_set_bytes(tk_kwargs *k, const char *key, const void *v, size_t n);

/**
 * @brief Sets @p key to a pointer (insert, or replace in place).
 * @param k   The bag; not NULL.
 * @param key The key (copied); not NULL or empty.
 * @param v   Any pointer, NULL included (stored as is, never freed).
 * @return 0, or a negative error code; on failure the bag is unchanged.
 *
 * Errors: `TK_EINVAL` (@p k NULL, @p key NULL or empty), `TK_ENOMEM`.
 * Thread-safety: modifies @p k.
 */
TK_API int tk_kwargs_set_ptr(tk_kwargs *k, const char *key, void *v);

/**
 * @brief Reads the bool under @p key.
 * @param k   The bag, or NULL (empty).
 * @param key The key; not NULL or empty.
 * @param out Receives the value; not NULL. Untouched on failure.
 * @return 0, or a negative error code.
 *
 * Errors: `TK_EINVAL` (@p key NULL or empty, @p out NULL), `TK_EKEY`
 * ("KeyError: 'num'"), `TK_ETYPE` ("argument 'num' must be bool, not int").
 * Thread-safety: a const operation.
 */
TK_API int tk_kwargs_get_bool(const tk_kwargs *k, const char *key, bool *out);

/**
 * @brief Reads the int under @p key (a bool value is `TK_ETYPE`).
 * @param k   The bag, or NULL (empty).
 * @param key The key; not NULL or empty.
 * @param out Receives the value; not NULL. Untouched on failure.
 * @return 0, or a negative error code.
 *
 * Errors: `TK_EINVAL`, `TK_EKEY`, `TK_ETYPE`. Thread-safety: a const
 * operation.
 */
TK_API int tk_kwargs_get_int(const tk_kwargs *k, const char *key, int64_t *out);

/**
 * @brief Reads the float under @p key; an int value converts.
 * @param k   The bag, or NULL (empty).
 * @param key The key; not NULL or empty.
 * @param out Receives the value; not NULL. Untouched on failure.
 * @return 0, or a negative error code.
 *
 * Errors: `TK_EINVAL`, `TK_EKEY`, `TK_ETYPE`. Thread-safety: a const
 * operation.
 */
TK_API int tk_kwargs_get_float(const tk_kwargs *k, const char *key, double *out);

/**
 * @brief Reads the string under @p key (borrowed; None is `TK_ETYPE`).
 * @param k   The bag, or NULL (empty).
 * @param key The key; not NULL or empty.
 * @param out Receives a pointer into the bag; not NULL. Untouched on failure.
 * @return 0, or a negative error code.
 *
 * Errors: `TK_EINVAL`, `TK_EKEY`, `TK_ETYPE`. Thread-safety: a const
 * operation.
 */
TK_API int tk_kwargs_get_str(const tk_kwargs *k, const char *key, const char **out);

/**
 * @brief Reads the bytes under @p key (borrowed).
 * @param k   The bag, or NULL (empty).
 * @param key The key; not NULL or empty.
 * @param out Receives a pointer into the bag (never NULL; aligned to at
 *            least 8 bytes); not NULL.
 * @param n   Receives the length; not NULL.
 * @return 0, or a negative error code. Nothing is written on failure.
 *
 * Errors: `TK_EINVAL`, `TK_EKEY`, `TK_ETYPE`. Thread-safety: a const
 * operation.
 */
TK_API int tk_kwargs_get_bytes(const tk_kwargs *k, const char *key, const void **out,
                               size_t *n);

/**
 * @brief Reads the pointer under @p key.
 * @param k   The bag, or NULL (empty).
 * @param key The key; not NULL or empty.
 * @param out Receives the pointer; not NULL. Untouched on failure.
 * @return 0, or a negative error code.
 *
 * Errors: `TK_EINVAL`, `TK_EKEY`, `TK_ETYPE`. Thread-safety: a const
 * operation.
 */
TK_API int tk_kwargs_get_ptr(const tk_kwargs *k, const char *key, void **out);

/* ------------------------------------------------------------- tk_bind */

/** @brief The most parameters one tk_bind signature may declare. */
#define TK_BIND_MAX_PARAMS 64

/**
 * @brief Binds positional and keyword values to a signature, as Python binds
 *        a call to `def coding(num, name=None, *, verbose=False)`.
 *
 * @code
 * int num; const char *name = NULL; bool verbose = false;
 * int rc = tk_bind(args, kwargs, "coding(num:i, name:z=, *, verbose:?=)",
 *                  &num, &name, &verbose);
 * @endcode
 *
 * The signature is `NAME(PARAM, ...)` with whitespace allowed between
 * tokens; each `PARAM` is `name:code` (a code from the table in this file's
 * description, except `n`), a trailing `=` makes it optional (its out
 * variable keeps the caller's default), and a bare `*` makes the following
 * parameters keyword-only. As in Python, a required positional parameter may
 * not follow an optional one, and `*` must be followed by a parameter. At
 * most #TK_BIND_MAX_PARAMS parameters.
 *
 * Positional values bind in order, then keywords by name. The checks run in
 * CPython's order: each keyword in insertion order (unexpected keyword,
 * multiple values), then too many positionals, then missing positional,
 * then missing keyword-only parameters, then each bound value's type.
 *
 * @param args      The positional values, or NULL (none).
 * @param kwargs    The keyword values, or NULL (none).
 * @param signature The signature; not NULL.
 * @param ...       One out pointer per parameter, in signature order, of the
 *                  type the code names (`y` takes two: `const void **`,
 *                  `size_t *`). None may be NULL. Strings and bytes written
 *                  are borrowed from the bags.
 * @return 0 when every parameter bound, or a negative error code; on failure
 *         nothing at all is written through any out pointer.
 *
 * Errors:
 * - `TK_EARGS`: the values do not bind, with CPython's message:
 *   `coding() takes 1 positional argument but 2 were given`,
 *   `coding() takes from 1 to 2 positional arguments but 3 were given`,
 *   `coding() missing 2 required positional arguments: 'a' and 'b'`,
 *   `coding() missing 1 required keyword-only argument: 'verbose'`,
 *   `coding() got multiple values for argument 'num'`,
 *   `coding() got an unexpected keyword argument 'nmu'`;
 * - `TK_ETYPE`: `coding() argument 'num' must be int, not str` (bool is not
 *   accepted for `i`/`l`; `d` accepts an int; `z` accepts None);
 * - `TK_EOVERFLOW`: an `i` value outside the range of `int`;
 * - `TK_EINVAL`: NULL signature, malformed signature (message names the
 *   problem and its position), NULL out pointer.
 *
 * Allocates nothing. Thread-safety: const operations on the bags.
 */
TK_API int tk_bind(const tk_args *args, const tk_kwargs *kwargs, const char *signature,
                   ...);

/* ------------------------------------------------------------ encoding */

/**
 * @brief Encodes an args + kwargs pair into a versioned, self-describing,
 *        little-endian byte string (described in docs/encoding.md).
 * @param args   The positional values, or NULL (none).
 * @param kwargs The keyword values, or NULL (none).
 * @param buf    Receives a buffer allocated with `malloc` (release it with
 *               `free`); set to NULL on failure. Not NULL.
 * @param len    Receives its length (0 on failure). Not NULL.
 * @return 0, or a negative error code.
 *
 * Errors: `TK_EINVAL` (@p buf or @p len NULL), `TK_ETYPE` (a pointer value:
 * pointers cannot cross a process boundary), `TK_EOVERFLOW` (a string, bytes
 * or count beyond 4 GiB - 1), `TK_ENOMEM`.
 * Thread-safety: const operations on the bags.
 */
TK_API int tk_args_encode(const tk_args *args, const tk_kwargs *kwargs, void **buf,
                          size_t *len);

/**
 * @brief Decodes what tk_args_encode() produced into two new bags.
 * @param buf    The encoding; may be NULL only when @p len is 0 (which is
 *               then `TK_EDECODE`).
 * @param len    Its length in bytes; trailing bytes after a complete
 *               encoding are `TK_EDECODE`.
 * @param args   Receives a new args bag the caller frees; NULL on failure.
 *               Not NULL.
 * @param kwargs Receives a new kwargs bag the caller frees; NULL on
 *               failure. May be NULL only when the encoding has no keyword
 *               values.
 * @return 0, or a negative error code.
 *
 * The decoded bags own their data (nothing points into @p buf). Any
 * malformed, truncated or hostile input is refused without over-reading
 * @p buf and without allocating more than a small multiple of @p len.
 *
 * Errors: `TK_EINVAL` (@p args NULL; @p kwargs NULL while the encoding has
 * keyword values), `TK_EDECODE` (bad magic, unknown version, bad type tag,
 * truncation, lengths or counts beyond the input, a string that is not
 * NUL-terminated or holds a NUL, a bad bool byte, an empty or duplicate key,
 * trailing bytes), `TK_ENOMEM`. Thread-safety: safe from any thread.
 */
TK_API int tk_args_decode(const void *buf, size_t len, tk_args **args, tk_kwargs **kwargs);

/* ------------------------------------------------ type-safe builders */

/**
 * @brief One typed value, as the type-safe builders pass them.
 *
 * Normally written by #TK_ARGS; a C99 or C++ caller may fill an array by hand
 * and call tk_args_from().
 */
typedef struct tk_value {
    tk_type type; /**< The value's type; `TK_TYPE_INVALID` marks an
                       unrepresentable value (an unsigned integer above
                       INT64_MAX), which tk_args_from() refuses. */
    size_t n;     /**< Length of a bytes value; otherwise unused. */
    /** The value itself, in the member #type selects. */
    union {
        bool b;         /**< `TK_TYPE_BOOL`. */
        int64_t i;      /**< `TK_TYPE_INT`. */
        double f;       /**< `TK_TYPE_FLOAT`. */
        const char *s;  /**< `TK_TYPE_STR` (copied; NULL is `TK_EINVAL`). */
        const void *y;  /**< `TK_TYPE_BYTES` (@ref n bytes, copied). */
        void *p;        /**< `TK_TYPE_PTR` (stored as is). */
    } v;
} tk_value;

/**
 * @brief Builds an args tuple from an array of typed values.
 * @param vals The values; may be NULL only when @p n is 0.
 * @param n    Their number.
 * @return A new bag the caller frees, or NULL.
 *
 * Errors: `TK_EINVAL` (@p vals NULL with @p n > 0, a bad type, a NULL
 * string, NULL bytes with a length), `TK_EOVERFLOW` (a `TK_TYPE_INVALID`
 * value: an unsigned integer too large for int), `TK_ENOMEM`; the message
 * names the value's position. Thread-safety: safe from any thread.
 */
TK_API tk_args *tk_args_from(const tk_value *vals, size_t n);

/** @brief Marker type for a None value in #TK_ARGS (see #TK_NONE). */
typedef struct tk_none_t {
    char unused; /**< Unused; C needs a member. */
} tk_none_t;

/** @brief A bytes value for #TK_ARGS (see #TK_BYTES). */
typedef struct tk_bytes_t {
    const void *data; /**< The bytes (copied into the bag). */
    size_t n;         /**< Their number. */
} tk_bytes_t;

TK_END_DECLS

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L && !defined(__cplusplus)

/**
 * @def TK_NONE
 * @brief A None value for #TK_ARGS: `TK_ARGS(1, TK_NONE)`.
 */
#define TK_NONE ((tk_none_t){0})

/**
 * @def TK_BYTES
 * @brief A bytes value for #TK_ARGS: `TK_ARGS(TK_BYTES(buf, len))`.
 */
#define TK_BYTES(data, n) ((tk_bytes_t){(data), (n)})


/** @cond TK_INTERNAL */
static inline tk_value tk__v_bool(bool x) { tk_value r = {TK_TYPE_BOOL, 0, {.b = x}}; return r; }
static inline tk_value tk__v_int(long long x) { tk_value r = {TK_TYPE_INT, 0, {.i = (int64_t)x}}; return r; }
static inline tk_value tk__v_uint(unsigned long long x)
{
    tk_value r = {x > (unsigned long long)INT64_MAX ? TK_TYPE_INVALID : TK_TYPE_INT, 0,
                  {.i = (int64_t)(x & (unsigned long long)INT64_MAX)}};
    return r;
}
static inline tk_value tk__v_float(double x) { tk_value r = {TK_TYPE_FLOAT, 0, {.f = x}}; return r; }
static inline tk_value tk__v_str(const char *x) { tk_value r = {TK_TYPE_STR, 0, {.s = x}}; return r; }
static inline tk_value tk__v_ptr(const void *x) { tk_value r = {TK_TYPE_PTR, 0, {.p = (void *)(uintptr_t)x}}; return r; }
static inline tk_value tk__v_none(tk_none_t x) { tk_value r = {TK_TYPE_NONE, 0, {.i = 0}}; (void)x; return r; }
static inline tk_value tk__v_bytes(tk_bytes_t x) { tk_value r = {TK_TYPE_BYTES, x.n, {.y = x.data}}; return r; }

#define TK__VALUE(x) _Generic((x),                                           \
    _Bool: tk__v_bool,                                                       \
    char: tk__v_int, signed char: tk__v_int, short: tk__v_int, int: tk__v_int, \
    long: tk__v_int, long long: tk__v_int,                                   \
    unsigned char: tk__v_uint, unsigned short: tk__v_uint,                   \
    unsigned int: tk__v_uint, unsigned long: tk__v_uint,                     \
    unsigned long long: tk__v_uint,                                          \
    float: tk__v_float, double: tk__v_float,                                 \
    char *: tk__v_str, const char *: tk__v_str,                              \
    tk_none_t: tk__v_none, tk_bytes_t: tk__v_bytes,                          \
    default: tk__v_ptr)(x)

#define TK__NARG(...) TK__NARG_(__VA_ARGS__, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define TK__NARG_(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, n, ...) n
#define TK__CAT(a, b) TK__CAT_(a, b)
#define TK__CAT_(a, b) a##b
#define TK__V1(a) TK__VALUE(a)
#define TK__V2(a, ...) TK__VALUE(a), TK__V1(__VA_ARGS__)
#define TK__V3(a, ...) TK__VALUE(a), TK__V2(__VA_ARGS__)
#define TK__V4(a, ...) TK__VALUE(a), TK__V3(__VA_ARGS__)
#define TK__V5(a, ...) TK__VALUE(a), TK__V4(__VA_ARGS__)
#define TK__V6(a, ...) TK__VALUE(a), TK__V5(__VA_ARGS__)
#define TK__V7(a, ...) TK__VALUE(a), TK__V6(__VA_ARGS__)
#define TK__V8(a, ...) TK__VALUE(a), TK__V7(__VA_ARGS__)
#define TK__V9(a, ...) TK__VALUE(a), TK__V8(__VA_ARGS__)
#define TK__V10(a, ...) TK__VALUE(a), TK__V9(__VA_ARGS__)
#define TK__V11(a, ...) TK__VALUE(a), TK__V10(__VA_ARGS__)
#define TK__V12(a, ...) TK__VALUE(a), TK__V11(__VA_ARGS__)
/** @endcond */

/**
 * @def TK_ARGS
 * @brief Builds an args tuple from 1 to 12 values, each typed at compile
 *        time (C11 `_Generic`; not available to C99 or C++ callers).
 *
 * `TK_ARGS(3, "x", 2.5)` is an int, a str and a float; `3` and `3.0` differ
 * as they should, any integer type (int, int64_t, size_t, char...) becomes
 * an int (unsigned values above INT64_MAX make the call fail with
 * `TK_EOVERFLOW`), `bool` a bool, `float`/`double` a float, `char *` a str
 * (copied; NULL is `TK_EINVAL`), #TK_NONE None, #TK_BYTES(p, n) bytes, and
 * any other pointer (including `NULL`) a pointer. For an empty bag use
 * tk_args_new().
 * @return A new bag the caller frees, or NULL (see tk_args_from()).
 * @hideinitializer
 */
#define TK_ARGS(...)                                                          \
    tk_args_from((const tk_value[]){TK__CAT(TK__V, TK__NARG(__VA_ARGS__))(__VA_ARGS__)}, \
                 TK__NARG(__VA_ARGS__))

#endif /* C11 */

#endif /* TASKKIT_ARGS_H */
