/*
 * testutil.h - helpers shared by the cmocka test programs.
 *
 * Re-exec mode: behaviour at program exit is tested by running the test
 * binary again with TK_TEST_CHILD set to a mode name; the test's main()
 * calls tt_child_main() first, which runs the registered mode and exits.
 */
#ifndef TK_TESTUTIL_H
#define TK_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/types.h>
#include <cmocka.h>

/* Seconds on CLOCK_MONOTONIC. */
double tt_now(void);

/* Number of open descriptors of this process (from /proc/self/fd). */
int tt_count_fds(void);

/* Number of zombie children of this process (from /proc). */
int tt_count_zombies(void);

/* Resident set size in KiB (from /proc/self/statm). */
long tt_rss_kib(void);

/* A mode for re-exec tests: name and the function it runs (its return value
 * is the program's exit status when it returns). */
struct tt_mode {
    const char *name;
    int (*run)(void);
};

/* If TK_TEST_CHILD names one of `modes`, runs it and exits with its value
 * (through exit(), so atexit handlers run as in a real program). Returns
 * otherwise. Call first thing in main(). */
void tt_child_main(const struct tt_mode *modes, size_t n);

/* Runs this test binary again in `mode`, with its stdout and stderr
 * captured into out (NUL-terminated, cut to cap-1 bytes). Returns the wait
 * status, or -1 if the program could not be run. `timeout_s` bounds the run:
 * the child is killed after it. */
int tt_run_self(const char *mode, char *out, size_t cap, double timeout_s);

/* True when the test runs under valgrind or a sanitizer: timing bounds may
 * be loosened there (TK_TEST_MODE is set by the Makefile). */
int tt_slow_mode(void);

#endif
