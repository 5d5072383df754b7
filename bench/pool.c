/*
 * bench/pool.c - worker pools.
 *
 * Thread pools: one operation is one task, submitted and waited for (the
 * throughput figure is its inverse). libtaskkit submits n tasks and waits on
 * their futures; the baseline is the minimal pthread pool below (a locked
 * list, a condition variable, a countdown of unfinished tasks); GLib's
 * GThreadPool and Python's ThreadPoolExecutor are bench/glib/peer.c "pool"
 * and bench/peers.py "tpe". All use one worker per CPU.
 *
 * Process pools: one operation is one item of a map(f, range(n)) whose f
 * returns its argument, against Python's multiprocessing.Pool.map with
 * chunksize 1 and with its default chunking (bench/peers.py "pool_map1",
 * "pool_map_default"); libtaskkit uses the same chunk sizes.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <taskkit.h>

#include "harness.h"
#include "modules.h"

#define HAVE_TK (BENCH_HAVE_POOL && BENCH_HAVE_ARGS)
#if HAVE_TK
#define TK_ONLY(f) f
#else
#define TK_ONLY(f) NULL
#endif

static long workers;

/* Spins for the task size in nanoseconds: "work" the pools cannot skip. */
static void work(long ns)
{
    if (ns <= 0)
        return;
    double end = bh_now() + ns;
    while (bh_now() < end)
        ;
}

/* ------------------------------------------------------------ minimal pool */

struct job {
    struct job *next;
    long ns;
};

struct raw_pool {
    pthread_mutex_t mu;
    pthread_cond_t ready, done;
    struct job *head, **tail;
    long pending; /* tasks pushed and not yet finished */
    bool stop;
    int nthreads;
    pthread_t threads[64];
};

static void *raw_worker(void *arg)
{
    struct raw_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->head == NULL && !p->stop)
            pthread_cond_wait(&p->ready, &p->mu);
        if (p->head == NULL)
            break;
        struct job *j = p->head;
        if ((p->head = j->next) == NULL)
            p->tail = &p->head;
        pthread_mutex_unlock(&p->mu);
        work(j->ns);
        free(j);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void raw_pool_init(struct raw_pool *p, int nthreads)
{
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->ready, NULL);
    pthread_cond_init(&p->done, NULL);
    p->head = NULL;
    p->tail = &p->head;
    p->pending = 0;
    p->stop = false;
    p->nthreads = nthreads;
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&p->threads[i], NULL, raw_worker, p) != 0)
            bh_die("pthread_create failed");
}

static void raw_pool_push(struct raw_pool *p, long ns)
{
    struct job *j = malloc(sizeof *j);
    if (j == NULL)
        bh_die("out of memory");
    j->next = NULL;
    j->ns = ns;
    pthread_mutex_lock(&p->mu);
    *p->tail = j;
    p->tail = &j->next;
    p->pending++;
    pthread_cond_signal(&p->ready);
    pthread_mutex_unlock(&p->mu);
}

static void raw_pool_wait(struct raw_pool *p)
{
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

static void raw_pool_destroy(struct raw_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->ready);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
}

/* A side's state: its pool and the task size. */
struct side {
    bool opened; /* isolated sides open their pool in their own process */
    long ns;
    struct raw_pool raw;
#if HAVE_TK
    tk_pool *tk;
    tk_future **f; /* the futures of a round */
    long nf;
#endif
};

static void raw_tasks(void *ctx, long n)
{
    struct side *s = ctx;
    for (long i = 0; i < n; i++)
        raw_pool_push(&s->raw, s->ns);
    raw_pool_wait(&s->raw);
}

/* ------------------------------------------------------------ libtaskkit */

#if HAVE_TK
static int spin_task(const tk_args *args, const tk_kwargs *kwargs, tk_args *result)
{
    int64_t ns = 0;
    (void)kwargs;
    (void)result;
    tk_args_get_int(args, 0, &ns);
    work(ns);
    return 0;
}

static void tk_tasks(void *ctx, long n)
{
    struct side *s = ctx;
    /* The bench's own list of futures, kept from round to round (grown in
     * the warm-up round): a fresh 160 KB array per round was mmap'd and
     * page-faulted anew each time, a cost of this loop, not of the pool. */
    if (s->nf < n) {
        free(s->f);
        if ((s->f = malloc(sizeof *s->f * n)) == NULL)
            bh_die("out of memory");
        s->nf = n;
    }
    tk_future **f = s->f;
    for (long i = 0; i < n; i++)
        if ((f[i] = tk_pool_submit(s->tk, spin_task, tk_args_of("l", (int64_t)s->ns), NULL)) ==
            NULL)
            bh_die(tk_last_error());
    for (long i = 0; i < n; i++) {
        if (tk_future_wait(f[i], TK_FOREVER) < 0)
            bh_die(tk_last_error());
        tk_future_free(f[i]);
    }
}

/* Process pool: map(identity, range(n)) with the side's chunk size. */
static int identity(const tk_args *args, const tk_kwargs *kwargs, tk_args *result)
{
    int64_t v = 0;
    (void)kwargs;
    tk_args_get_int(args, 0, &v);
    return tk_args_add_int(result, v);
}

static void tk_map(void *ctx, long n)
{
    long chunk = *(long *)ctx;
    static tk_pool *pool;
    if (pool == NULL && (pool = tk_pool_new(TK_POOL_PROCESSES, (int)workers)) == NULL)
        bh_die(tk_last_error());
    tk_args **items = malloc(sizeof *items * n), **results = malloc(sizeof *results * n);
    if (items == NULL || results == NULL)
        bh_die("out of memory");
    for (long i = 0; i < n; i++)
        items[i] = tk_args_of("i", (int)i);
    if (chunk == 0) { /* Python's default: divmod(n, 4 * workers), rounded up */
        chunk = n / (4 * workers) + (n % (4 * workers) != 0);
        chunk = chunk > 0 ? chunk : 1;
    }
    if (tk_pool_map_ex(pool, identity, items, (size_t)n, results, (size_t)chunk) < 0)
        bh_die(tk_last_error());
    for (long i = 0; i < n; i++)
        tk_args_free(results[i]);
    free(items);
    free(results);
}
#endif

/* ------------------------------------------------------------ setup */

static void side_open(struct side *s, bool tk, int nworkers, long ns)
{
    s->ns = ns;
#if HAVE_TK
    s->tk = NULL;
    s->f = NULL;
    s->nf = 0;
    if (tk && (s->tk = tk_pool_new(TK_POOL_THREADS, nworkers)) == NULL)
        bh_die(tk_last_error());
#endif
    if (!tk)
        raw_pool_init(&s->raw, nworkers);
}

static void side_close(struct side *s, bool tk)
{
#if HAVE_TK
    if (tk) {
        tk_pool_free(s->tk);
        free(s->f);
    }
#endif
    if (!tk)
        raw_pool_destroy(&s->raw);
}

/* The tiny-task row's sides run isolated, each in a process of its own (see
 * harness.h), and open their pool there on first use. Sharing the heap,
 * the minimal pool's 20,000 jobs a round (allocated here, freed by its
 * workers) had malloc consolidate its free lists between rounds and
 * doubled the cost of libtaskkit's args bags in the next round (~200 ns a
 * task alone, 450-550 ns beside it), while the GLib and Python peers each
 * had a heap of their own. */
static void open_once(struct side *s, bool tk)
{
    if (!s->opened) {
        side_open(s, tk, (int)workers, 0);
        s->opened = true;
    }
}

#if HAVE_TK
static void tk_tasks_isolated(void *ctx, long n)
{
    open_once(ctx, true);
    tk_tasks(ctx, n);
}
#endif

static void raw_tasks_isolated(void *ctx, long n)
{
    open_once(ctx, false);
    raw_tasks(ctx, n);
}

/* Measures one thread-pool point: libtaskkit and the minimal pool. */
static void curve_point(const char *x, int nworkers, long ns)
{
    struct side tk, raw;
    /* A batch long enough for a round, the same for both sides. */
    long batch = (long)(bh.round_ns / (ns / nworkers + 300.0));
    batch = batch < 200 ? 200 : batch > 50000 ? 50000 : batch;
    struct bh_side sides[] = {
        {.impl = "libtaskkit", .body = TK_ONLY(tk_tasks), .ctx = &tk, .fixed_n = batch},
        {.impl = "minimal pthread pool", .body = raw_tasks, .ctx = &raw, .fixed_n = batch},
    };
    if (HAVE_TK)
        side_open(&tk, true, nworkers, ns);
    side_open(&raw, false, nworkers, ns);
    bh_curve_point(x, sides, 2);
    if (HAVE_TK)
        side_close(&tk, true);
    side_close(&raw, false);
}

int main(void)
{
    bh_init("pool");
    workers = sysconf(_SC_NPROCESSORS_ONLN);
    workers = workers > 0 ? workers : 1;

    struct side tk = {0}, raw = {0};
    /* Per-task cost depends on the batch (wake-ups amortise), so every side
     * runs the same batch of empty tasks per round, quick mode included:
     * Python's executor costs ~12 us a task in batches of 4,000 and 17-26
     * us in batches of 20,000 (the anchor, ~18 us, is the latter),
     * so a smaller quick batch would measure another regime. */
    long batch = 20000;
    struct bh_side tiny[] = {
        {.impl = "libtaskkit", .body = TK_ONLY(tk_tasks_isolated), .ctx = &tk,
         .fixed_n = batch, .isolated = true},
        {.impl = "minimal pthread pool", .body = raw_tasks_isolated, .ctx = &raw,
         .fixed_n = batch, .isolated = true},
        {.impl = "GLib GThreadPool", .peer = "glib pool", .max_ratio = 1.0, .fixed_n = batch},
        {.impl = "Python ThreadPoolExecutor", .peer = "py tpe", .max_ratio = 0.02,
         .fixed_n = batch},
    };
    bh_section("Thread pools (one worker per CPU)");
    /* A batch's time swings 10x with how the workers happen to be
     * scheduled (min 255 ns, max 3.4 us per task in one run): more rounds
     * for a steadier median (see bh_row_more). */
    bh_row_more("tiny tasks, batches of 20,000, per task", tiny, 4, 1);

    static long chunk1 = 1, chunk_default = 0;
    long items = bh.quick ? 500 : 2000;
    struct bh_side map1[] = {
        {.impl = "libtaskkit, chunksize 1", .body = TK_ONLY(tk_map), .ctx = &chunk1,
         .fixed_n = items},
        {.impl = "Python Pool.map, chunksize 1", .peer = "py pool_map1", .max_ratio = 0.1,
         .fixed_n = items},
    };
    struct bh_side mapd[] = {
        {.impl = "libtaskkit, Python's chunks", .body = TK_ONLY(tk_map),
         .ctx = &chunk_default, .fixed_n = items},
        {.impl = "Python Pool.map, default", .peer = "py pool_map_default", .max_ratio = 1.0,
         .fixed_n = items},
    };
    bh_section(bh.quick ? "Process pools (one worker per CPU): map(identity, range(500)), per item"
                        : "Process pools (one worker per CPU): map(identity, range(2000)), "
                          "per item");
    bh_row("process pool map, chunksize 1", map1, 2);
    bh_row("process pool map, default chunking", mapd, 2);

    struct bh_side labels[] = {{.impl = "libtaskkit"}, {.impl = "minimal pthread pool"}};
    static const long sizes[] = {0, 1000, 10000, 100000};
    static const char *size_names[] = {"0", "1 us", "10 us", "100 us"};
    bh_curve_begin("pool_vs_task_size", "Thread pool: time per task vs task size",
                   "work per task (one worker per CPU)", true, labels, 2);
    for (int i = 0; i < 4; i++)
        curve_point(size_names[i], (int)workers, sizes[i]);
    bh_curve_end();

    static const int counts[] = {1, 2, 4, 8};
    bh_curve_begin("pool_vs_workers", "Thread pool: time per 10 us task vs workers",
                   "worker threads", false, labels, 2);
    for (int i = 0; i < 4; i++) {
        char x[16];
        snprintf(x, sizeof x, "%d", counts[i]);
        curve_point(x, counts[i], 10000);
    }
    bh_curve_end();
    return bh_finish();
}
