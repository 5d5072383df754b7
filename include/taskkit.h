/**
 * @file taskkit.h
 * @brief libtaskkit: Python's multiprocessing and threading objects for C.
 *
 * One include brings in every module:
 * - taskkit/error.h   error codes and tk_last_error()
 * - taskkit/version.h the library's version
 * - taskkit/args.h    argument bags (args tuples, kwargs dicts), tk_bind
 * - taskkit/process.h fork-based process objects and the runtime
 * - taskkit/thread.h  thread objects, cooperative stop, timers
 * - taskkit/sync.h    locks, conditions, semaphores, events, barriers, shm
 * - taskkit/queue.h   queues and pipes
 * - taskkit/pool.h    thread and process pools, futures
 */
#ifndef TASKKIT_H
#define TASKKIT_H

#include "taskkit/error.h"
#include "taskkit/version.h"
#include "taskkit/args.h"
#include "taskkit/process.h"
#include "taskkit/thread.h"
#include "taskkit/sync.h"
#include "taskkit/queue.h"
#include "taskkit/pool.h"

#endif /* TASKKIT_H */
