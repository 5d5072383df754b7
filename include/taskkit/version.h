/**
 * @file taskkit/version.h
 * @brief Compile-time and run-time version of libtaskkit.
 *
 * The three numbers agree with the shared object's SONAME
 * (`libtaskkit.so.TK_VERSION_MAJOR`) and with `taskkit.pc`.
 */
#ifndef TASKKIT_VERSION_H
#define TASKKIT_VERSION_H

#include "export.h"

/** Major version: changes when the ABI breaks (it is the SONAME's number). */
#define TK_VERSION_MAJOR 0
/** Minor version: changes when functions are added. */
#define TK_VERSION_MINOR 1
/** Patch version: changes for fixes only. */
#define TK_VERSION_PATCH 0

TK_BEGIN_DECLS

/**
 * @brief The version of the library actually linked, as "MAJOR.MINOR.PATCH".
 * @return A static string; never NULL.
 *
 * Errors: none. Thread-safety: safe from any thread.
 */
TK_API const char *tk_version_string(void);

TK_END_DECLS

#endif /* TASKKIT_VERSION_H */
