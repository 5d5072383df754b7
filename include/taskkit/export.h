/**
 * @file taskkit/export.h
 * @brief Symbol export and C++ linkage macros shared by every libtaskkit header.
 *
 * Not meant to be included directly: every module header includes it.
 */
#ifndef TASKKIT_EXPORT_H
#define TASKKIT_EXPORT_H

/**
 * @def TK_API
 * @brief Marks a function as part of libtaskkit's public ABI.
 *
 * The library is compiled with `-fvisibility=hidden`; only declarations
 * carrying this macro are exported from the shared object.
 */
#if defined(__GNUC__) || defined(__clang__)
#define TK_API __attribute__((visibility("default")))
#else
#define TK_API
#endif

/** @cond TK_INTERNAL */
#ifdef __cplusplus
#define TK_BEGIN_DECLS extern "C" {
#define TK_END_DECLS }
#else
#define TK_BEGIN_DECLS
#define TK_END_DECLS
#endif

#if defined(__GNUC__) || defined(__clang__)
#define TK_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TK_PRINTF(f, a)
#endif
/** @endcond */

#endif /* TASKKIT_EXPORT_H */
