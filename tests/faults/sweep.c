/* sweep.c - see sweep.h. */
#include "faults/sweep.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "faults/alloccount.h"
#include "internal.h"
#include "taskkit.h"

long tt_fire_at;
long tt_total_faults;
long tt_total_elsewhere;
long tt_deviations;
static long allocs_seen; /* allocations the armed call made, -1 if never disarmed */
static char deviation_text[512]; /* the last deviation seen */

void tt_arm(void)
{
    tk__fault_set(tt_fire_at); /* 0 (the warm-up) arms nothing */
}

void tt_disarm(void)
{
    allocs_seen = tk__fault_allocs();
    tk__fault_set(0);
}

bool tt_fault_fired(void)
{
    return tt_fire_at > 0 && tk__fault_allocs() >= tt_fire_at;
}

void tt_deviation(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(deviation_text, sizeof deviation_text, fmt, ap);
    va_end(ap);
    tt_deviations++;
}

int tt_ctor_rc(const void *obj)
{
    return obj ? 0 : tk_last_error_code();
}

/* The end of a sweep: n - 1 points failed cleanly. */
static long sweep_done(const char *what, long points, long dev_before)
{
    tt_total_faults += points;
    print_message("%s: %ld allocation point(s) failed cleanly\n", what, points);
    if (tt_deviations > dev_before) {
        print_message("%s: %ld deviation(s), last: %s\n", what, tt_deviations - dev_before,
                      deviation_text);
        if (getenv("TK_FAULTS_STRICT"))
            fail_msg("%s: %s", what, deviation_text);
    }
    return points;
}

long tt_fault_sweep(const char *what, tt_scenario run)
{
    long dev_before = tt_deviations;
    deviation_text[0] = '\0';
    /* A warm-up run without a fault lets the runtime make its lazily
     * created, process-lifetime state (the main thread's handle, say),
     * which must not count as a leak of the call under test. */
    tt_fire_at = 0;
    allocs_seen = -1;
    if (run() != 0)
        fail_msg("%s: failed without a fault: %s", what, tk_last_error());
    for (long n = 1; n < 10000; n++) {
        tt_fire_at = n;
        allocs_seen = -1;
        long before = tt_live_blocks();
        int rc = run();
        long after = tt_live_blocks();
        if (allocs_seen < 0)
            fail_msg("%s: the scenario never disarmed", what);
        if (after != before)
            fail_msg("%s: failing allocation %ld leaked %ld block(s)", what, n,
                     after - before);
        if (allocs_seen < n) { /* no n-th allocation: this run had no fault */
            if (rc != 0)
                fail_msg("%s: failed without a fault: %s", what, tk_last_error());
            return sweep_done(what, n - 1, dev_before);
        }
        if (rc == TT_FAULT_ELSEWHERE) {
            tt_total_elsewhere++;
            continue;
        }
        if (rc != TK_ENOMEM || tk_last_error_code() != TK_ENOMEM)
            fail_msg("%s: failing allocation %ld gave %s (%s), not TK_ENOMEM", what, n,
                     tk_err_name(rc), tk_last_error());
        if (strstr(tk_last_error(), "out of memory") == NULL)
            fail_msg("%s: failing allocation %ld: message '%s'", what, n, tk_last_error());
    }
    fail_msg("%s: never finished", what);
    return -1;
}
