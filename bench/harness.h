/*
 * bench/harness.h - the measuring loop every bench program shares.
 *
 * A *row* compares libtaskkit (side 0) with one or more baselines doing the
 * same work. Each side is either a C function run in this process or an
 * external *peer* (the GLib helper, the Python script): a child process that
 * reads an operation count per line on stdin, runs that many operations and
 * answers with the time per operation, so it starts once per row, not once
 * per round. An in-process side may also be *isolated*: it then runs in a
 * forked child of this program that answers like a peer, so its heap is its
 * own (a baseline's malloc traffic cannot slow the side measured after it;
 * the side's state must then be made by its body, in the child).
 * Every side is first calibrated so one round lasts about BH_ROUND_MS, then
 * the sides take turns, round after round (forward on even rounds, backward
 * on odd ones, so no side always runs on a warm or a cold machine). A figure
 * is the median of the rounds' time per operation, with min and max; the
 * ratio is libtaskkit's median / the baseline's median (below 1: faster).
 *
 * Output: a plain-text table on stdout, rows appended to $BENCH_OUT/results.csv
 * and results.md, curve points to $BENCH_OUT/<curve>.dat (tools/run-bench.sh
 * plots them). Environment: BENCH_QUICK=1 shortens the rounds; BENCH_ROUNDS
 * (>= 7); BENCH_OUT (default build/bench); BENCH_GLIB and BENCH_PY name the
 * peers (unset: those baselines are skipped with a note).
 *
 * Header-only: each bench/NAME.c is its own program (see the Makefile).
 */
#ifndef BENCH_HARNESS_H
#define BENCH_HARNESS_H

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BH_MAX_SIDES 6
#define BH_MAX_ROUNDS 61

enum bh_unit { BH_NS, BH_BYTES, BH_COUNT };

/* Runs the operation n times. ctx is the side's own state. */
typedef void (*bh_body)(void *ctx, long n);

struct bh_side {
    const char *impl;    /* "libtaskkit", "pthread", "GLib", "Python" ... */
    bh_body body;        /* in-process side, or NULL */
    double (*timed)(void *ctx, long n); /* instead of body: times itself, returns ns */
    void *ctx;
    const char *peer;    /* "glib NAME" or "py NAME": run by the peer, or NULL */
    bool isolated;       /* body or timed runs in a forked child (see above) */
    double max_ratio;    /* target: libtaskkit/this <= max_ratio (0: none) */
    long fixed_n;        /* > 0: operations per round, not calibrated */
    long min_n;          /* calibration starts here and stays at or above it
                          * (sides with a cost per round) */
    const char *missing; /* set: the side cannot run, print this instead */
    pid_t peer_pid;      /* the running peer (internal) */
    FILE *peer_to, *peer_from;
};

struct bh_stats {
    bool ok;
    long n;                     /* operations per round */
    double round[BH_MAX_ROUNDS]; /* ns per operation */
    double median, min, max;
    double q1, q3; /* quartiles: the plots' bars (min/max are in the tables) */
};

static struct {
    const char *prog;
    const char *out;
    bool quick;
    int rounds;
    double round_ns;
    FILE *csv, *md;
    const char *section;
    FILE *curve;
    const char *curve_name;
} bh;

static inline double bh_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static inline void bh_die(const char *what)
{
    fprintf(stderr, "%s: %s\n", bh.prog, what);
    exit(1);
}

static inline FILE *bh_open(const char *name, const char *header)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", bh.out, name);
    FILE *f = fopen(path, "a");
    if (f == NULL) {
        fprintf(stderr, "%s: cannot open %s: %s\n", bh.prog, path, strerror(errno));
        exit(1);
    }
    if (header != NULL && ftell(f) == 0)
        fputs(header, f);
    return f;
}

static inline void bh_init(const char *prog)
{
    const char *q = getenv("BENCH_QUICK"), *r = getenv("BENCH_ROUNDS");
    bh.prog = prog;
    bh.quick = q != NULL && *q != '\0' && strcmp(q, "0") != 0;
    bh.out = getenv("BENCH_OUT") ? getenv("BENCH_OUT") : "build/bench";
    /* Many short rounds rather than a few long ones: on a shared machine a
     * burst of foreign load then spoils single rounds, not a median. */
    bh.rounds = r ? atoi(r) : bh.quick ? 7 : 15;
    if (bh.rounds < 7)
        bh.rounds = 7;
    if (bh.rounds > BH_MAX_ROUNDS)
        bh.rounds = BH_MAX_ROUNDS;
    bh.round_ns = (bh.quick ? 6 : 20) * 1e6;
    bh.csv = bh_open("results.csv", "program,section,row,impl,unit,median,min,max,"
                                    "rounds,ratio,target,met\n");
    bh.md = bh_open("results.md", NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);
}

/* ------------------------------------------------------------ formatting */

static inline const char *bh_fmt(char *buf, size_t cap, enum bh_unit u, double v)
{
    if (isnan(v))
        snprintf(buf, cap, "-");
    else if (u == BH_COUNT)
        snprintf(buf, cap, "%.3g", v);
    else if (u == BH_BYTES)
        snprintf(buf, cap, v >= 1048576.0 ? "%.2f MiB" : v >= 10240 ? "%.1f KiB" : "%.0f B",
                 v >= 1048576.0 ? v / 1048576 : v >= 10240 ? v / 1024 : v);
    else if (v >= 1e6)
        snprintf(buf, cap, "%.2f ms", v / 1e6);
    else if (v >= 1e3)
        snprintf(buf, cap, "%.2f us", v / 1e3);
    else
        snprintf(buf, cap, "%.1f ns", v);
    return buf;
}

static inline const char *bh_unit_name(enum bh_unit u)
{
    return u == BH_NS ? "ns/op" : u == BH_BYTES ? "bytes" : "count";
}

static inline void bh_section(const char *title)
{
    bh.section = title;
    printf("\n== %s\n%-40s %-26s %10s %10s %10s %8s  %s\n", title, "row", "impl", "median",
           "min", "max", "ratio", "target");
    fprintf(bh.md, "\n### %s\n\n| row | impl | median | min | max | libtaskkit / impl | target |\n"
                   "|---|---|---:|---:|---:|---:|---|\n", title);
    fflush(bh.md);
}

/* Prints and records one side's line of a row (the row's name is shown on
 * its first line only); ratio is NAN for side 0. */
static inline void bh_emit(const char *row, bool first, const char *impl, enum bh_unit u, double med,
                    double min, double max, int rounds, double ratio, double target,
                    const char *note)
{
    char a[32], b[32], c[32], rt[32] = "", tg[48] = "";
    const char *met = "";
    if (!isnan(ratio))
        snprintf(rt, sizeof rt, "%.2fx", ratio);
    if (target > 0 && !isnan(ratio)) {
        met = ratio <= target ? "met" : "NOT met";
        snprintf(tg, sizeof tg, "<= %.3gx %s", target, met);
        FILE *t = bh_open("targets.tsv", NULL); /* run-bench.sh sums these up */
        fprintf(t, "%s\t%s\t%s\t%.2fx\t<= %.3gx\t%s\n", bh.section, row, impl, ratio, target,
                met);
        fclose(t);
    }
    if (note != NULL) {
        printf("%-40s %-26s %s\n", first ? row : "", impl, note);
        fprintf(bh.csv, "%s,%s,\"%s\",%s,%s,,,,0,,,%s\n", bh.prog, bh.section, row, impl,
                bh_unit_name(u), note);
        fflush(bh.csv);
        fprintf(bh.md, "| %s | %s | %s | | | | |\n", first ? row : "", impl, note);
        fflush(bh.md);
        return;
    }
    printf("%-40s %-26s %10s %10s %10s %8s  %s\n", first ? row : "", impl, bh_fmt(a, sizeof a, u, med),
           bh_fmt(b, sizeof b, u, min), bh_fmt(c, sizeof c, u, max), rt, tg);
    fprintf(bh.csv, "%s,%s,\"%s\",%s,%s,%.6g,%.6g,%.6g,%d,", bh.prog, bh.section, row, impl,
            bh_unit_name(u), med, min, max, rounds);
    if (!isnan(ratio))
        fprintf(bh.csv, "%.4f", ratio);
    if (target > 0)
        fprintf(bh.csv, ",<=%.3g,%s\n", target, met);
    else
        fprintf(bh.csv, ",,\n");
    fprintf(bh.md, "| %s | %s | %s | %s | %s | %s | %s |\n", first ? row : "", impl, a, b, c,
            rt, tg);
    fflush(bh.csv);
    fflush(bh.md);
}

/* ------------------------------------------------------------ measuring */

static inline double bh_run_here(struct bh_side *s, long n)
{
    if (s->timed != NULL)
        return s->timed(s->ctx, n) / n;
    double t0 = bh_now();
    s->body(s->ctx, n);
    return (bh_now() - t0) / n;
}

/* An isolated side's child: reads counts on fd 0, answers on fd 1. */
static inline void bh_isolated_child(struct bh_side *s)
{
    FILE *in = fdopen(0, "r");
    long n;
    while (in != NULL && fscanf(in, "%ld", &n) == 1 && n > 0)
        dprintf(1, "%.17g\n", bh_run_here(s, n));
    _exit(0); /* not exit(): the parent's stdio buffers and atexit handlers stay its own */
}

/* Starts the side's peer: "glib NAME" runs $BENCH_GLIB NAME, "py NAME" runs
 * $BENCH_PYTHON $BENCH_PY NAME; an isolated side forks bh_isolated_child. */
static inline bool bh_peer_start(struct bh_side *s)
{
    const char *pyexe = getenv("BENCH_PYTHON") ? getenv("BENCH_PYTHON") : "python3";
    const char *argv[4] = {getenv("BENCH_GLIB"), s->peer ? s->peer + 5 : NULL, NULL, NULL};
    int to[2], from[2];
    if (s->peer != NULL && strncmp(s->peer, "py ", 3) == 0) {
        argv[0] = pyexe;
        argv[1] = getenv("BENCH_PY");
        argv[2] = s->peer + 3;
    }
    /* Close-on-exec: a peer started later must not hold this one's stdin
     * open, or closing it would never reach the peer as EOF. */
    if (pipe2(to, O_CLOEXEC) != 0 || pipe2(from, O_CLOEXEC) != 0)
        bh_die("pipe failed");
    fflush(NULL);
    s->peer_pid = fork();
    if (s->peer_pid < 0)
        bh_die("fork failed");
    if (s->peer_pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        close(to[0]);
        close(to[1]);
        close(from[0]);
        close(from[1]);
        if (s->isolated) {
            /* Nothing of the parent's but the two pipes: an isolated
             * child started later must not hold this one's stdin open. */
            close_range(3, ~0U, 0);
            bh_isolated_child(s);
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    s->peer_to = fdopen(to[1], "w");
    s->peer_from = fdopen(from[0], "r");
    return s->peer_to != NULL && s->peer_from != NULL;
}

static inline void bh_peer_stop(struct bh_side *s)
{
    if (s->peer_pid <= 0)
        return;
    fclose(s->peer_to); /* EOF on its stdin: the peer leaves */
    fclose(s->peer_from);
    waitpid(s->peer_pid, NULL, 0);
    s->peer_pid = 0;
}

/* Has the side's peer run n operations; returns ns per operation, or NAN. */
static inline double bh_peer(struct bh_side *s, long n)
{
    double v;
    if (s->peer_pid == 0 && !bh_peer_start(s))
        return NAN;
    if (fprintf(s->peer_to, "%ld\n", n) < 0 || fflush(s->peer_to) != 0 ||
        fscanf(s->peer_from, "%lf", &v) != 1) {
        kill(s->peer_pid, SIGKILL);
        bh_peer_stop(s);
        return NAN;
    }
    return v;
}

static inline const char *bh_peer_missing(const char *peer)
{
    if (peer == NULL)
        return NULL;
    if (strncmp(peer, "glib ", 5) == 0) {
        const char *g = getenv("BENCH_GLIB");
        return g && *g && access(g, X_OK) == 0 ? NULL : "skipped: GLib not available";
    }
    const char *py = getenv("BENCH_PY");
    return py && *py ? NULL : "skipped: python3 not available";
}

/* One round of a side: ns per operation. */
static inline double bh_round(struct bh_side *s, long n)
{
    if (s->peer != NULL || s->isolated)
        return bh_peer(s, n);
    return bh_run_here(s, n);
}

/* Finds n so that a round lasts about bh.round_ns (doubles as a warm-up).
 * The time per operation is taken from the last two trial sizes, so a fixed
 * cost per round (starting threads) does not shrink n. */
static inline long bh_calibrate(struct bh_side *s)
{
    long n = s->min_n > 0 ? s->min_n : 1, prev_n = 0;
    double prev_total = 0;
    for (;;) {
        double per = bh_round(s, n);
        if (isnan(per))
            return 0;
        double total = per * n;
        if (total >= bh.round_ns / 4 || n >= (1L << 30)) {
            double marginal = prev_n > 0 ? (total - prev_total) / (n - prev_n) : per;
            if (marginal <= 0 || marginal > per)
                marginal = per;
            double want = bh.round_ns / (marginal > 0 ? marginal : 1);
            if (want < s->min_n)
                want = (double)s->min_n;
            return want < 1 ? 1 : want > (1L << 30) ? (1L << 30) : (long)want;
        }
        prev_n = n;
        prev_total = total;
        /* Peers pay a process start per round: jump straight to the estimate. */
        n = s->peer != NULL && total > 0 ? (long)(bh.round_ns / 2 / per) + 1 : n * 4;
        if (n <= prev_n)
            n = prev_n + 1;
    }
}

static inline int bh_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static inline void bh_stats_finish(struct bh_stats *st, int rounds)
{
    double v[BH_MAX_ROUNDS];
    memcpy(v, st->round, sizeof(double) * rounds);
    qsort(v, rounds, sizeof(double), bh_cmp);
    st->min = v[0];
    st->max = v[rounds - 1];
    st->median = rounds % 2 ? v[rounds / 2] : (v[rounds / 2 - 1] + v[rounds / 2]) / 2;
    st->q1 = v[(rounds - 1) / 4];
    st->q3 = v[rounds - 1 - (rounds - 1) / 4];
}

/* Calibrates every runnable side, then runs the interleaved rounds. */
static inline void bh_measure(struct bh_side *sides, int ns, struct bh_stats *st)
{
    for (int i = 0; i < ns; i++) {
        memset(&st[i], 0, sizeof st[i]);
        if (sides[i].missing == NULL)
            sides[i].missing = bh_peer_missing(sides[i].peer);
        if (sides[i].missing == NULL && sides[i].body == NULL && sides[i].timed == NULL &&
            sides[i].peer == NULL)
            sides[i].missing = "not built yet";
        if (sides[i].missing != NULL)
            continue;
        if (sides[i].fixed_n > 0 && sides[i].peer == NULL)
            bh_round(&sides[i], sides[i].fixed_n); /* warm-up (peers warm up themselves) */
        st[i].n = sides[i].fixed_n > 0 ? sides[i].fixed_n : bh_calibrate(&sides[i]);
        st[i].ok = st[i].n > 0;
        if (!st[i].ok)
            sides[i].missing = "failed (peer error)";
    }
    for (int r = 0; r < bh.rounds; r++) {
        for (int k = 0; k < ns; k++) {
            int i = r % 2 ? ns - 1 - k : k;
            if (!st[i].ok)
                continue;
            st[i].round[r] = bh_round(&sides[i], st[i].n);
            if (isnan(st[i].round[r])) {
                st[i].ok = false;
                sides[i].missing = "failed (peer error)";
            }
        }
    }
    for (int i = 0; i < ns; i++) {
        bh_peer_stop(&sides[i]);
        if (st[i].ok)
            bh_stats_finish(&st[i], bh.rounds);
    }
}

/* A timed row: sides[0] is libtaskkit, the others its baselines. */
static inline void bh_row(const char *row, struct bh_side *sides, int ns)
{
    struct bh_stats st[BH_MAX_SIDES];
    bh_measure(sides, ns, st);
    for (int i = 0; i < ns; i++) {
        double ratio = i > 0 && st[0].ok && st[i].ok ? st[0].median / st[i].median : NAN;
        bh_emit(row, i == 0, sides[i].impl, BH_NS, st[i].median, st[i].min, st[i].max,
                bh.rounds, ratio, sides[i].max_ratio, st[i].ok ? NULL : sides[i].missing);
    }
}

/*
 * A timed row in more rounds: 5x as many (61 at most), each 1/split as
 * long. For costs that come in modes on a virtual machine (thread and
 * process starts, contended locks, tiny pool tasks). Thread and process
 * starts, for instance: their cost on a virtual
 * machine comes in modes that last tens of milliseconds (how the host
 * schedules the vCPUs: a thread start is ~30 us in one, ~65 us in the
 * other). A 20 ms round mostly sits in one mode, so with 15 rounds the two
 * sides' medians could land in different modes and the thread ratio swung
 * between 1.0x and 1.3x from run to run, while starts interleaved one by
 * one differed by 3%. Threads use short rounds (split 5), which sample the
 * modes alike for every side; process starts keep 20 ms rounds (split 1:
 * a 4 ms round holds only a few forks, and per-round costs then dominate)
 * and gain only the rounds.
 */
static inline void bh_row_more(const char *row, struct bh_side *sides, int ns, int split)
{
    int rounds = bh.rounds;
    double round_ns = bh.round_ns;
    bh.rounds = rounds * 5 > BH_MAX_ROUNDS ? BH_MAX_ROUNDS : rounds * 5;
    /* Never below 4 ms: shorter rounds (BENCH_QUICK) hold too few
     * operations, and one slow outlier then decides a round. */
    double shorter = round_ns / split, floor_ns = round_ns < 4e6 ? round_ns : 4e6;
    bh.round_ns = shorter > floor_ns ? shorter : floor_ns;
    bh_row(row, sides, ns);
    bh.rounds = rounds;
    bh.round_ns = round_ns;
}

/* An untimed figure (bytes, counts): median/min/max of values measured
 * alternately by the caller, v[side][round]; side 0 is libtaskkit, printed
 * as `missing0` instead when that is set. */
static inline void bh_value_row(const char *row, enum bh_unit u, const char **impls, int ns,
                         int rounds, double v[][BH_MAX_ROUNDS], const char *missing0)
{
    struct bh_stats st[BH_MAX_SIDES];
    for (int i = 0; i < ns; i++) {
        memcpy(st[i].round, v[i], sizeof(double) * rounds);
        bh_stats_finish(&st[i], rounds);
    }
    for (int i = 0; i < ns; i++) {
        double ratio = i > 0 && !missing0 && st[i].median != 0 ? st[0].median / st[i].median
                                                              : NAN;
        bh_emit(row, i == 0, impls[i], u, st[i].median, st[i].min, st[i].max, rounds, ratio, 0,
                i == 0 ? missing0 : NULL);
    }
}

/* ------------------------------------------------------------ curves */

/* Starts $BENCH_OUT/<name>.dat; run-bench.sh plots it with these labels. */
static inline void bh_curve_begin(const char *name, const char *title, const char *xlabel,
                           bool logy, struct bh_side *sides, int ns)
{
    char file[128];
    snprintf(file, sizeof file, "%s.dat", name);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", bh.out, file);
    bh.curve = fopen(path, "w");
    if (bh.curve == NULL)
        bh_die("cannot write a curve file");
    bh.curve_name = name;
    fprintf(bh.curve, "#title %s\n#xlabel %s\n#ylabel time per operation\n#logy %d\n"
                      "#impls", title, xlabel, logy ? 1 : 0);
    for (int i = 0; i < ns; i++)
        fprintf(bh.curve, "%s%s", i ? "|" : " ", sides[i].impl);
    fprintf(bh.curve, "\n# x, then median, lower and upper quartile (ns) per impl\n");
    bh_section(title);
}

/* Measures one point of the current curve (x is its label). */
static inline void bh_curve_point(const char *x, struct bh_side *sides, int ns)
{
    struct bh_stats st[BH_MAX_SIDES];
    char row[96];
    snprintf(row, sizeof row, "%s: %s", bh.curve_name, x);
    bh_measure(sides, ns, st);
    fprintf(bh.curve, "\"%s\"", x);
    for (int i = 0; i < ns; i++) {
        double ratio = i > 0 && st[0].ok && st[i].ok ? st[0].median / st[i].median : NAN;
        bh_emit(row, i == 0, sides[i].impl, BH_NS, st[i].median, st[i].min, st[i].max,
                bh.rounds, ratio, 0, st[i].ok ? NULL : sides[i].missing);
        if (st[i].ok)
            fprintf(bh.curve, " %g %g %g", st[i].median, st[i].q1, st[i].q3);
        else
            fprintf(bh.curve, " NaN NaN NaN");
    }
    fprintf(bh.curve, "\n");
    fflush(bh.curve);
}

static inline void bh_curve_end(void)
{
    fclose(bh.curve);
    bh.curve = NULL;
}

/* ------------------------------------------------------------ memory */

/* Resident set size of this process, in bytes (from /proc/self/statm). */
static inline double bh_rss(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL || fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    if (f != NULL)
        fclose(f);
    return (double)resident * sysconf(_SC_PAGESIZE);
}

/* Bytes the main malloc arena has handed out (counts this thread's mallocs). */
static inline double bh_heap(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (double)mi.uordblks + (double)mi.hblkhd;
}

/* A gate idle workers block on: each reads gate.r; closing gate.w (in
 * every process holding it) releases them all at once with EOF. */
struct bh_gate { int r, w; };

static inline void bh_gate_open(struct bh_gate *g)
{
    int fd[2];
    if (pipe(fd) != 0)
        bh_die("pipe failed");
    g->r = fd[0];
    g->w = fd[1];
}

static inline void bh_gate_wait(const struct bh_gate *g)
{
    char c;
    while (read(g->r, &c, 1) < 0 && errno == EINTR)
        ;
}

static inline void bh_gate_release(struct bh_gate *g)
{
    close(g->w);
    g->w = -1;
}

static inline void bh_gate_close(struct bh_gate *g)
{
    if (g->w >= 0)
        close(g->w);
    close(g->r);
}

/* Runs fn in a freshly forked child and brings back its nout figures, so a
 * memory measurement never sees what earlier rounds left in malloc's caches
 * or glibc's stack cache. */
static inline void bh_in_child(void (*fn)(void *arg, double *out), void *arg, double *out, int nout)
{
    int fd[2];
    if (pipe(fd) != 0)
        bh_die("pipe failed");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        bh_die("fork failed");
    if (pid == 0) {
        close(fd[0]);
        fn(arg, out);
        ssize_t w = write(fd[1], out, sizeof(double) * nout);
        _exit(w == (ssize_t)(sizeof(double) * nout) ? 0 : 1);
    }
    close(fd[1]);
    size_t got = 0, want = sizeof(double) * nout;
    while (got < want) {
        ssize_t r = read(fd[0], (char *)out + got, want - got);
        if (r <= 0 && !(r < 0 && errno == EINTR))
            break;
        got += r > 0 ? (size_t)r : 0;
    }
    close(fd[0]);
    int status;
    waitpid(pid, &status, 0);
    if (got != want || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        bh_die("a measuring child failed");
}

/* Records the program's peak RSS and closes the output files. */
static inline int bh_finish(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    FILE *f = bh_open("peak_rss.txt", NULL);
    fprintf(f, "%s %ld\n", bh.prog, ru.ru_maxrss);
    fclose(f);
    fclose(bh.csv);
    fclose(bh.md);
    return 0;
}

#endif
