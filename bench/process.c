/*
 * bench/process.c - starting and joining child processes.
 *
 * Both sides fork a child that ends at once with status 0 and wait for it:
 * libtaskkit with tk_process_new + start + join + free (the child runs the
 * target, its end-of-program procedure and leaves with _exit), the raw side
 * with fork + _exit(0) + waitpid. Python's multiprocessing.Process with the
 * fork context is bench/peers.py ("process").
 */
#include <dirent.h>
#include <sys/mman.h>
#include <taskkit.h>

#include "harness.h"
#include "modules.h"

#define HAVE_TK (BENCH_HAVE_PROCESS && BENCH_HAVE_ARGS)
#define MAX_CHILDREN 100

static int live_children = MAX_CHILDREN; /* 25 in quick mode */

static void raw_start_join(void *ctx, long n)
{
    (void)ctx;
    for (long i = 0; i < n; i++) {
        int status;
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        if (pid < 0 || waitpid(pid, &status, 0) != pid || status != 0)
            bh_die("fork/waitpid failed");
    }
}

#if HAVE_TK
static int tk_child(const tk_args *args, const tk_kwargs *kwargs)
{
    (void)args;
    (void)kwargs;
    return 0;
}

static void tk_start_join(void *ctx, long n)
{
    (void)ctx;
    for (long i = 0; i < n; i++) {
        tk_process *p = tk_process_new(tk_child, NULL, NULL);
        if (p == NULL || tk_process_start(p) < 0 || tk_process_join(p, TK_FOREVER) < 0 ||
            tk_process_exitcode(p) != 0)
            bh_die(tk_last_error());
        tk_process_free(p);
    }
}

static int tk_idle(const tk_args *args, const tk_kwargs *kwargs)
{
    void *gate = NULL;
    (void)kwargs;
    tk_args_get_ptr(args, 0, &gate);
    close(((struct bh_gate *)gate)->w); /* so the parent's close means EOF */
    bh_gate_wait(gate);
    return 0;
}
#endif

/* ------------------------------------------------------------ memory */

static double count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    double n = 0;
    if (d == NULL)
        return 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

/* In a fresh child: parent-side heap and descriptors per live child. */
static void live_cost(void *tk, double *out)
{
    struct bh_gate gate;
    pid_t raw[MAX_CHILDREN];
    bh_gate_open(&gate);
    double heap = bh_heap(), fds = count_fds();
#if HAVE_TK
    tk_process *p[MAX_CHILDREN];
    for (int i = 0; tk && i < live_children; i++) {
        p[i] = tk_process_new(tk_idle, tk_args_of("p", (void *)&gate), NULL);
        if (p[i] == NULL || tk_process_start(p[i]) < 0)
            bh_die(tk_last_error());
    }
#endif
    for (int i = 0; !tk && i < live_children; i++) {
        raw[i] = fork();
        if (raw[i] == 0) {
            close(gate.w);
            bh_gate_wait(&gate);
            _exit(0);
        }
    }
    out[0] = (bh_heap() - heap) / live_children;
    out[1] = (count_fds() - fds) / live_children;
    bh_gate_release(&gate);
#if HAVE_TK
    for (int i = 0; tk && i < live_children; i++) {
        tk_process_join(p[i], TK_FOREVER);
        tk_process_free(p[i]);
    }
#endif
    for (int i = 0; !tk && i < live_children; i++)
        waitpid(raw[i], NULL, 0);
    bh_gate_close(&gate);
}

static void memory_rows(void)
{
    double heap[2][BH_MAX_ROUNDS] = {{0}}, fds[2][BH_MAX_ROUNDS] = {{0}}, out[2];
    const char *impls[] = {"libtaskkit", "fork"};
    const char *missing = HAVE_TK ? NULL : "not built yet";
    live_children = bh.quick ? 25 : MAX_CHILDREN;
    bh_section(bh.quick ? "Processes: parent-side cost of a live child (25 children, fresh parent)"
                        : "Processes: parent-side cost of a live child (100 children, fresh "
                          "parent)");
    for (int r = 0; r < bh.rounds; r++) {
        for (int k = 0; k < 2; k++) {
            int side = r % 2 ? 1 - k : k;
            if (side == 0 && !HAVE_TK)
                continue;
            bh_in_child(live_cost, side == 0 ? (void *)1 : NULL, out, 2);
            heap[side][r] = out[0];
            fds[side][r] = out[1];
        }
    }
    bh_value_row("heap bytes per live child handle", BH_BYTES, impls, 2, bh.rounds, heap,
                 missing);
    bh_value_row("descriptors per live child", BH_COUNT, impls, 2, bh.rounds, fds, missing);
}

/* ------------------------------------------------------------ main */

int main(void)
{
    bh_init("process");
    struct bh_side sides[] = {
#if HAVE_TK
        {.impl = "libtaskkit", .body = tk_start_join},
#else
        {.impl = "libtaskkit"},
#endif
        {.impl = "fork+_exit+waitpid", .body = raw_start_join, .max_ratio = 1.10},
        {.impl = "Python Process (fork)", .peer = "py process"},
    };
    bh_section("Processes");
    bh_row_more("process new+start+join+free", sides, 3, 1);

    /* Start time grows with the page tables fork copies: touch the memory. */
    static const int mib[] = {0, 64, 256, 1024};
    bh_curve_begin("process_start_vs_rss", "Process start+join vs parent resident memory",
                   "parent resident memory touched (MiB)", false, sides, 2);
    for (size_t i = 0; i < sizeof mib / sizeof mib[0]; i++) {
        size_t len = (size_t)mib[i] << 20;
        void *mem = NULL;
        char x[32];
        if (len > 0) {
            mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (mem == MAP_FAILED)
                bh_die("mmap failed");
            memset(mem, 1, len);
        }
        snprintf(x, sizeof x, "%d", mib[i]);
        bh_curve_point(x, sides, 2);
        if (len > 0)
            munmap(mem, len);
    }
    bh_curve_end();

    memory_rows();
    return bh_finish();
}
