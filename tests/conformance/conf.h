/* Shared helpers for the conformance suite (tests/conformance/).
 *
 * These tests are written from the public contract (docs: API.md and the
 * installed headers) only. Each program is C99 and links against the
 * installed libtaskkit through pkg-config.
 *
 * FINDING(bad, "text"): where the library disagrees with the contract, the
 * test checks for the disagreement; while it reproduces, the test is marked
 * skipped (so CI stays green) and prints the finding. Once the library is
 * fixed the check no longer triggers and the rest of the test asserts the
 * contract again.
 */
#ifndef CONF_H
#define CONF_H

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <taskkit.h>

static inline double conf_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void conf_sleep(double s)
{
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* expr must return exactly code. */
#define ASSERT_RC(expr, code)                                                   \
    do {                                                                        \
        int rc_ = (expr);                                                       \
        int want_ = (code);                                                     \
        if (rc_ != want_)                                                       \
            fail_msg("%s returned %d (%s), expected %d (%s); last error: \"%s\"", \
                     #expr, rc_, tk_err_name(rc_), want_, tk_err_name(want_),   \
                     tk_last_error());                                          \
    } while (0)

/* tk_last_error() must contain sub. */
#define ASSERT_MSG(sub)                                                         \
    do {                                                                        \
        const char *m_ = tk_last_error();                                       \
        if (m_ == NULL || strstr(m_, (sub)) == NULL)                            \
            fail_msg("tk_last_error() is \"%s\", expected it to contain \"%s\"", \
                     m_ ? m_ : "(null)", (sub));                                \
    } while (0)

#define FINDING(bad, text)                                                      \
    do {                                                                        \
        if (bad) {                                                              \
            print_message("FINDING (%s:%d): %s\n", __FILE__, __LINE__, (text)); \
            skip();                                                             \
        }                                                                       \
    } while (0)

/* Guard against a hang: a program that runs past this is killed by
 * SIGALRM and counted as failed. Each program normally takes well under
 * 30 s; the guard is wider so that a heavily loaded machine does not make
 * it flaky. */
#define CONF_MAIN_GUARD() alarm(120)

#endif /* CONF_H */
