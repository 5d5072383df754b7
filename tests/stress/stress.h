/*
 * stress.h - shared pieces of the stress program (stress.c: driver and
 * invariants; stress_ops.c: the operations).
 */
#ifndef TK_STRESS_H
#define TK_STRESS_H

#include <stdbool.h>
#include <stdint.h>

#include <taskkit.h>

enum st_op {
    OP_LOCK, OP_RLOCK, OP_SEM, OP_COND, OP_THREAD, OP_THREAD_STOP, OP_PROCESS,
    OP_QUEUE, OP_SHARED_QUEUE, OP_PIPE, OP_THREAD_POOL, OP_PROCESS_POOL, OP_COUNT
};

/* RSS may exceed its baseline by this much at the end (malloc arenas). */
#define ST_RSS_SLACK_KIB (64 * 1024L)

void st_fail(const char *file, int line, const char *what);
#define ST_CHECK(cond)                              \
    do {                                            \
        if (!(cond))                                \
            st_fail(__FILE__, __LINE__, #cond);     \
    } while (0)

#define ST_FAIL(what) st_fail(__FILE__, __LINE__, what)

void st_done(enum st_op op);
bool st_time_left(void);
uint32_t st_rand(uint64_t *seed);
double st_now(void);
/* The first of n consecutive new message ids; UINT32_MAX once used up. */
uint32_t st_new_ids(unsigned n);
void st_delivered(uint32_t id);

bool st_have_threads(void);
bool st_have_processes(void);
bool st_have_queues(void);
bool st_have_pools(void);

void st_setup(void);
void st_teardown(void);
void st_check_counters(void);
void st_sync_op(uint64_t *seed);
void st_thread_op(uint64_t *seed);
void st_process_op(uint64_t *seed);
void st_queue_op(uint64_t *seed);
void st_pool_op(uint64_t *seed);

#endif
