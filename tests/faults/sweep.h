/*
 * sweep.h - the allocation-failure sweep shared by tests/test_faults.c and
 * tests/test_faults_queue.c.
 *
 * A scenario sets its object up, calls tt_arm() (the tt_fire_at-th
 * allocation from now fails), makes the call under test, calls
 * tt_disarm(), checks the outcome, frees everything and returns the call's
 * result: 0, a negative code (for a constructor tt_ctor_rc(obj)), or
 * TT_FAULT_ELSEWHERE when the fault hit another thread's allocation (a pool
 * worker's) and the scenario checked that outcome itself.
 *
 * tt_fault_sweep() runs a scenario for n = 1, 2, ... until the call no
 * longer reaches an n-th allocation, and checks each time that the call
 * failed with TK_ENOMEM and "out of memory" in tk_last_error(), and that no
 * heap block leaked (alloccount.h); the final, fault-free run must succeed.
 * Outcomes that work but are not what the API contract describes are
 * recorded with tt_deviation(): printed per sweep, failures when
 * TK_FAULTS_STRICT is set.
 */
#ifndef TK_FAULTS_SWEEP_H
#define TK_FAULTS_SWEEP_H

#include <stdbool.h>

#define TT_FAULT_ELSEWHERE 1

typedef int (*tt_scenario)(void);

extern long tt_fire_at;         /* the allocation the current run makes fail */
extern long tt_total_faults;    /* allocation failures injected by the program */
extern long tt_total_elsewhere; /* ... of which hit another thread */
extern long tt_deviations;      /* deviations recorded by the program */

void tt_arm(void);
void tt_disarm(void);
/* True once the armed fault has fired (its allocation was attempted). */
bool tt_fault_fired(void);
void tt_deviation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Runs the sweep; returns the number of allocation points exercised. */
long tt_fault_sweep(const char *what, tt_scenario run);
/* A constructor's outcome as a code: 0, or the last error code. */
int tt_ctor_rc(const void *obj);

#endif
