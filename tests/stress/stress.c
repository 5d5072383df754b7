/*
 * stress.c - the mixed workload behind `make stress STRESS_SECONDS=N`.
 *
 *   stress SECONDS [SEED]
 *
 * Worker threads pick random operations until the time is up:
 *   - locks, rlocks, semaphores and conditions under contention (counters
 *     that must add up; a semaphore that must never admit too many);
 *   - short threads: started, joined with random timeouts, stopped while
 *     sleeping or waiting, joined again;
 *   - processes: started, then joined with a timeout, terminated, killed,
 *     stopped or left to end, and the exit code checked against what was
 *     done to them;
 *   - queues: every message carries a unique id; producers and consumers
 *     (threads, and child processes for TK_SHARED queues) race, and each id
 *     must arrive exactly once;
 *   - pipes: a child echoes messages (some streaming through the ring) and
 *     every echo must match; sometimes the child is killed half-way, and
 *     then calls must fail cleanly, never hang;
 *   - pools: thread and process pools run tasks whose results are checked;
 *   - a signal thread sends SIGUSR1 (handler installed without SA_RESTART)
 *     to random workers, so every wait sees EINTR.
 * Then it checks invariants: every counter adds up, every message was
 * delivered exactly once, no zombie is left (/proc), the open descriptor
 * count is back to its baseline, RSS is back near it, and only the main
 * thread remains. A watchdog thread (plain pthreads) fails the run when no
 * operation completes for 60 s (a deadlock) and prints what each thread
 * was doing.
 *
 * Modules that are not in the library yet are skipped: their functions
 * are weak references (the program links the whole archive, so present
 * ones always resolve).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "stress.h"

/* ------------------------------------------------------------- settings */

#define WORKERS 4
#define MAX_IDS (1u << 22) /* message ids tracked per run */

static double run_until;
static atomic_long ops[OP_COUNT];
static atomic_long progress; /* bumped by every completed operation */
static atomic_int failures;
static const char *const op_names[OP_COUNT] = {
    "lock", "rlock", "sem", "cond", "thread", "thread_stop", "process", "queue",
    "shared_queue", "pipe", "thread_pool", "process_pool",
};

void st_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "stress: %s:%d: check failed: %s (last error: %s)\n", file, line, what,
            tk_last_error());
    atomic_fetch_add(&failures, 1);
}

void st_done(enum st_op op)
{
    atomic_fetch_add(&ops[op], 1);
    atomic_fetch_add(&progress, 1);
}

bool st_time_left(void)
{
    return st_now() < run_until && atomic_load(&failures) == 0;
}

/* xorshift: each worker has its own state. */
uint32_t st_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (uint32_t)(*s >> 11);
}

double st_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------- message bookkeeping */

static _Atomic uint8_t *delivered; /* per id: times received */
static atomic_uint next_id;

uint32_t st_new_ids(unsigned n)
{
    uint32_t id = atomic_fetch_add(&next_id, n);
    if (id + (uint64_t)n > MAX_IDS) {
        atomic_fetch_sub(&next_id, n);
        return UINT32_MAX;
    }
    return id;
}

void st_delivered(uint32_t id)
{
    if (id >= MAX_IDS) {
        ST_FAIL("message id out of range");
        return;
    }
    if (atomic_fetch_add(&delivered[id], 1) != 0)
        ST_FAIL("message delivered twice");
}

/* ------------------------------------------------------------- watchdog */

static void dump_threads(void)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "for t in /proc/%d/task/*; do echo \"$t $(cat $t/comm) $(cat $t/wchan)\"; done",
             (int)getpid());
    fflush(NULL);
    if (system(cmd) != 0)
        fprintf(stderr, "stress: could not list the threads\n");
}

static void *watchdog(void *arg)
{
    (void)arg;
    long last = -1;
    double last_change = st_now();
    for (;;) {
        sleep(1);
        long now_ops = atomic_load(&progress);
        if (now_ops != last) {
            last = now_ops;
            last_change = st_now();
        } else if (st_now() - last_change > 60) {
            fprintf(stderr, "stress: WATCHDOG: no operation completed for 60 s: deadlock\n");
            dump_threads();
            _exit(3);
        }
    }
    return NULL;
}

/* --------------------------------------------------------------- signals */

static void on_usr1(int sig)
{
    (void)sig;
}

static pid_t worker_tids[WORKERS];
static atomic_int signals_on;
static atomic_long signals_sent;

static void *signaller(void *arg)
{
    uint64_t seed = *(uint64_t *)arg;
    while (atomic_load(&signals_on)) {
        pid_t tid = worker_tids[st_rand(&seed) % WORKERS];
        if (tid > 0 && syscall(SYS_tgkill, getpid(), tid, SIGUSR1) == 0)
            atomic_fetch_add(&signals_sent, 1);
        usleep(200 + st_rand(&seed) % 2000);
    }
    return NULL;
}

/* --------------------------------------------------------------- workers */

struct worker {
    int index;
    uint64_t seed;
};

static int worker_main(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    void *p = NULL;
    tk_args_get_ptr(a, 0, &p);
    struct worker *w = p;
    worker_tids[w->index] = (pid_t)syscall(SYS_gettid);
    while (st_time_left()) {
        uint32_t r = st_rand(&w->seed) % 100;
        if (r < 30)
            st_sync_op(&w->seed);
        else if (r < 45)
            st_thread_op(&w->seed);
        else if (r < 60)
            st_process_op(&w->seed);
        else if (r < 85)
            st_queue_op(&w->seed);
        else
            st_pool_op(&w->seed);
    }
    worker_tids[w->index] = 0;
    return 0;
}

/* ----------------------------------------------------------- invariants */

static int count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, rss = -1;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &rss) != 2)
            rss = -1;
        fclose(f);
    }
    return rss < 0 ? -1 : rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Zombie children of this process, from /proc/PID/stat. */
static int count_zombies(void)
{
    DIR *d = opendir("/proc");
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        char path[300], state = 0;
        int ppid = 0;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        /* pid (comm) state ppid: comm may hold spaces, so skip to the last ')'. */
        char line[512];
        if (fgets(line, sizeof line, f)) {
            char *rp = strrchr(line, ')');
            if (rp && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && ppid == getpid() &&
                state == 'Z')
                n++;
        }
        fclose(f);
    }
    closedir(d);
    return n;
}

/* Open descriptors, counted without opening one (readdir would). */
static int count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 65536; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    return n;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 10;
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 0) : (uint64_t)time(NULL);
    printf("stress: %.0f s, seed %" PRIu64 ", modules:%s%s%s%s%s\n", seconds, seed,
           " args sync", st_have_threads() ? " thread" : "", st_have_processes() ? " process" : "",
           st_have_queues() ? " queue" : "", st_have_pools() ? " pool" : "");
    fflush(stdout);
    delivered = calloc(MAX_IDS, 1);
    if (!delivered)
        return 2;

    struct sigaction sa = {.sa_handler = on_usr1}; /* no SA_RESTART: EINTR everywhere */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);

    /* A warm-up round (setup, every operation, teardown) first, so that
     * one-time state (the main thread's handle and wake-up descriptor,
     * malloc arenas) exists before the baselines are taken. */
    st_setup();
    run_until = st_now() + 0.3;
    uint64_t warm = seed ^ 0x9e3779b97f4a7c15u;
    while (st_time_left()) {
        st_sync_op(&warm);
        st_thread_op(&warm);
        st_queue_op(&warm);
        st_pool_op(&warm);
        st_process_op(&warm);
    }
    st_teardown();
    int fds0 = count_fds();
    long rss0 = rss_kib();
    int tasks0 = count_threads();
    st_setup();

    pthread_t wd, sig;
    pthread_create(&wd, NULL, watchdog, NULL);
    pthread_detach(wd);
    atomic_store(&signals_on, 1);
    static uint64_t sig_seed;
    sig_seed = seed | 1;
    pthread_create(&sig, NULL, signaller, &sig_seed);

    run_until = st_now() + seconds;
    static struct worker w[WORKERS];
    tk_thread *t[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        w[i].index = i;
        w[i].seed = seed * 2654435761u + (uint64_t)i + 1;
        t[i] = tk_thread_new(worker_main, tk_args_of("p", (void *)&w[i]), NULL);
        ST_CHECK(t[i] && tk_thread_start(t[i]) == 0);
    }
    for (int i = 0; i < WORKERS; i++) {
        ST_CHECK(tk_thread_join(t[i], TK_FOREVER) == 0);
        tk_thread_free(t[i]);
    }
    atomic_store(&signals_on, 0);
    pthread_join(sig, NULL);
    st_teardown();

    /* ------------------------------------------------------ invariants */
    st_check_counters();
    uint32_t ids = atomic_load(&next_id);
    unsigned long lost = 0, dup = 0;
    for (uint32_t i = 0; i < ids; i++) {
        uint8_t d = atomic_load(&delivered[i]);
        lost += d == 0;
        dup += d > 1;
    }
    if (lost || dup) {
        fprintf(stderr, "stress: messages: %u sent, %lu lost, %lu duplicated\n", ids, lost, dup);
        ST_FAIL("every message delivered exactly once");
    }
    int zombies = count_zombies();
    if (zombies != 0) {
        fprintf(stderr, "stress: %d zombie(s) left\n", zombies);
        ST_FAIL("no zombie");
    }
    int fds1 = count_fds();
    if (fds1 != fds0) {
        fprintf(stderr, "stress: %d descriptors open, %d at the start\n", fds1, fds0);
        ST_FAIL("descriptors back to baseline");
    }
    /* The watchdog thread is the only extra one allowed. */
    int tasks1 = count_threads();
    if (tasks1 > tasks0 + 1) {
        fprintf(stderr, "stress: %d threads, %d at the start\n", tasks1, tasks0);
        ST_FAIL("no thread left behind");
    }
    long rss1 = rss_kib();
    /* malloc keeps freed memory in its arenas; a leak of the workload's size
     * shows as growth far above this slack. */
    if (rss1 > rss0 + ST_RSS_SLACK_KIB) {
        fprintf(stderr, "stress: RSS %ld KiB, %ld KiB at the start\n", rss1, rss0);
        ST_FAIL("RSS back to baseline");
    }

    long total = 0;
    printf("stress: operations:");
    for (int i = 0; i < OP_COUNT; i++) {
        long n = atomic_load(&ops[i]);
        total += n;
        if (n)
            printf(" %s=%ld", op_names[i], n);
    }
    printf("\nstress: %ld operations, %u messages, %ld signals, fds %d->%d, RSS %ld->%ld KiB, "
           "threads %d->%d, zombies %d\n",
           total, ids, atomic_load(&signals_sent), fds0, fds1, rss0, rss1, tasks0, tasks1,
           zombies);
    int f = atomic_load(&failures);
    printf("stress: %s\n", f ? "FAILED" : "passed");
    free((void *)delivered);
    return f ? 1 : 0;
}
