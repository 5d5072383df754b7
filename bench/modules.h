/*
 * bench/modules.h - which libtaskkit modules this tree has.
 *
 * The modules land one by one; a bench program compiles its libtaskkit side
 * only when the module's source is in lib/, and otherwise prints its
 * baselines with "not built yet" on the libtaskkit line. (The paths are
 * relative to bench/, where this header lives; -DBENCH_HAVE_X=0/1 overrides.)
 */
#ifndef BENCH_MODULES_H
#define BENCH_MODULES_H

#ifndef BENCH_HAVE_ARGS
#if __has_include("../lib/args.c")
#define BENCH_HAVE_ARGS 1
#else
#define BENCH_HAVE_ARGS 0
#endif
#endif
#ifndef BENCH_HAVE_THREAD
#if __has_include("../lib/thread.c")
#define BENCH_HAVE_THREAD 1
#else
#define BENCH_HAVE_THREAD 0
#endif
#endif
#ifndef BENCH_HAVE_PROCESS
#if __has_include("../lib/process.c")
#define BENCH_HAVE_PROCESS 1
#else
#define BENCH_HAVE_PROCESS 0
#endif
#endif
#ifndef BENCH_HAVE_SYNC
#if __has_include("../lib/sync.c")
#define BENCH_HAVE_SYNC 1
#else
#define BENCH_HAVE_SYNC 0
#endif
#endif
#ifndef BENCH_HAVE_QUEUE
#if __has_include("../lib/queue.c")
#define BENCH_HAVE_QUEUE 1
#else
#define BENCH_HAVE_QUEUE 0
#endif
#endif
#ifndef BENCH_HAVE_POOL
#if __has_include("../lib/pool.c")
#define BENCH_HAVE_POOL 1
#else
#define BENCH_HAVE_POOL 0
#endif
#endif

#endif
