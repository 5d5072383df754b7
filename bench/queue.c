/*
 * bench/queue.c - 64-byte messages between two processes.
 *
 * One-way: a forked child sends n messages, the parent receives them (time
 * per message). Ping-pong: the parent sends a message, the child sends it
 * back (time per round trip). Each round forks its child, which first sends
 * one untimed message, so the clock covers the messages only, not the fork.
 * libtaskkit sends args bags holding 64 bytes (tk_args_of("y")) through a
 * TK_SHARED queue or a pipe (tk_conn); the raw side writes and reads 64-byte
 * records on pipe(2); Python's multiprocessing.Queue and Pipe are
 * bench/peers.py ("queue_oneway" ...).
 *
 * The pipe rows also time the same raw loops on an AF_UNIX SOCK_SEQPACKET
 * socketpair, the transport under tk_conn (no target): its ratio is what
 * tk_conn adds, and its distance from the raw pipe is the kernel's.
 */
#include <sys/socket.h>
#include <taskkit.h>

#include "harness.h"
#include "modules.h"

#define HAVE_TK (BENCH_HAVE_QUEUE && BENCH_HAVE_ARGS)
#if HAVE_TK
#define TK_ONLY(f) f
#else
#define TK_ONLY(f) NULL
#endif
#define MSG 64

static char payload[MSG];

/* ------------------------------------------------------------ raw pipe */

static void put_raw(int fd)
{
    size_t done = 0;
    while (done < MSG) {
        ssize_t w = write(fd, payload + done, MSG - done);
        if (w < 0 && errno != EINTR)
            bh_die("pipe write failed");
        done += w > 0 ? (size_t)w : 0;
    }
}

static void get_raw(int fd)
{
    char buf[MSG];
    size_t done = 0;
    while (done < MSG) {
        ssize_t r = read(fd, buf + done, MSG - done);
        if (r == 0 || (r < 0 && errno != EINTR))
            bh_die("pipe read failed");
        done += r > 0 ? (size_t)r : 0;
    }
}

/* The raw sides' channel: pipe(2), or with a non-NULL ctx a socketpair of
 * that type (read from [0], written to [1], as a pipe). */
static void raw_channel(void *ctx, int fd[2])
{
    int r = ctx ? socketpair(AF_UNIX, *(int *)ctx, 0, fd) : pipe(fd);
    if (r != 0)
        bh_die("pipe failed");
}

static pid_t fork_child(void)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        bh_die("fork failed");
    return pid;
}

static void reap(pid_t pid)
{
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        bh_die("a message child failed");
}

static double raw_oneway(void *ctx, long n)
{
    int fd[2];
    raw_channel(ctx, fd);
    pid_t pid = fork_child();
    if (pid == 0) {
        close(fd[0]);
        for (long i = 0; i <= n; i++)
            put_raw(fd[1]);
        _exit(0);
    }
    close(fd[1]);
    get_raw(fd[0]);
    double t0 = bh_now();
    for (long i = 0; i < n; i++)
        get_raw(fd[0]);
    double t = bh_now() - t0;
    close(fd[0]);
    reap(pid);
    return t;
}

static double raw_pingpong(void *ctx, long n)
{
    int there[2], back[2];
    raw_channel(ctx, there);
    raw_channel(ctx, back);
    pid_t pid = fork_child();
    if (pid == 0) {
        close(there[1]);
        close(back[0]);
        for (long i = 0; i <= n; i++) {
            get_raw(there[0]);
            put_raw(back[1]);
        }
        _exit(0);
    }
    close(there[0]);
    close(back[1]);
    double t0 = 0;
    for (long i = 0; i <= n; i++) {
        if (i == 1)
            t0 = bh_now();
        put_raw(there[1]);
        get_raw(back[0]);
    }
    double t = bh_now() - t0;
    close(there[1]);
    close(back[0]);
    reap(pid);
    return t;
}

/* ------------------------------------------------------------ libtaskkit */

#if HAVE_TK
/* A generous timeout: a lost message fails the bench instead of hanging it. */
#define WAIT 30.0

static void put_tk(tk_queue *q)
{
    tk_args *m = tk_args_of("y", (const void *)payload, (size_t)MSG);
    if (m == NULL || tk_queue_put(q, m, WAIT) < 0)
        bh_die(tk_last_error());
}

static void get_tk(tk_queue *q, tk_queue *echo)
{
    tk_args *m = NULL;
    if (tk_queue_get(q, &m, WAIT) < 0)
        bh_die(tk_last_error());
    if (echo == NULL)
        tk_args_free(m);
    else if (tk_queue_put(echo, m, WAIT) < 0)
        bh_die(tk_last_error());
}

static double tk_queue_oneway(void *ctx, long n)
{
    (void)ctx;
    tk_queue *q = tk_queue_new(0, TK_SHARED);
    if (q == NULL)
        bh_die(tk_last_error());
    pid_t pid = fork_child();
    if (pid == 0) {
        for (long i = 0; i <= n; i++)
            put_tk(q);
        _exit(0);
    }
    get_tk(q, NULL);
    double t0 = bh_now();
    for (long i = 0; i < n; i++)
        get_tk(q, NULL);
    double t = bh_now() - t0;
    reap(pid);
    tk_queue_free(q);
    return t;
}

static double tk_queue_pingpong(void *ctx, long n)
{
    (void)ctx;
    tk_queue *there = tk_queue_new(0, TK_SHARED), *back = tk_queue_new(0, TK_SHARED);
    if (there == NULL || back == NULL)
        bh_die(tk_last_error());
    pid_t pid = fork_child();
    if (pid == 0) {
        for (long i = 0; i <= n; i++)
            get_tk(there, back);
        _exit(0);
    }
    double t0 = 0;
    for (long i = 0; i <= n; i++) {
        if (i == 1)
            t0 = bh_now();
        put_tk(there);
        get_tk(back, NULL);
    }
    double t = bh_now() - t0;
    reap(pid);
    tk_queue_free(there);
    tk_queue_free(back);
    return t;
}

static void send_tk(tk_conn *c, const tk_args *m)
{
    if (tk_conn_send(c, m) < 0)
        bh_die(tk_last_error());
}

static tk_args *recv_tk(tk_conn *c)
{
    tk_args *m = NULL;
    if (tk_conn_recv(c, &m, WAIT) < 0)
        bh_die(tk_last_error());
    return m;
}

static double tk_pipe_oneway(void *ctx, long n)
{
    tk_conn *r, *w;
    (void)ctx;
    tk_args *m = tk_args_of("y", (const void *)payload, (size_t)MSG);
    if (m == NULL || tk_pipe_new(&r, &w, false) < 0)
        bh_die(tk_last_error());
    pid_t pid = fork_child();
    if (pid == 0) {
        tk_conn_close(r);
        for (long i = 0; i <= n; i++)
            send_tk(w, m);
        _exit(0);
    }
    tk_conn_close(w);
    tk_args_free(recv_tk(r));
    double t0 = bh_now();
    for (long i = 0; i < n; i++)
        tk_args_free(recv_tk(r));
    double t = bh_now() - t0;
    reap(pid);
    tk_conn_close(r);
    tk_args_free(m);
    return t;
}

static double tk_pipe_pingpong(void *ctx, long n)
{
    tk_conn *a, *b;
    (void)ctx;
    tk_args *m = tk_args_of("y", (const void *)payload, (size_t)MSG);
    if (m == NULL || tk_pipe_new(&a, &b, true) < 0)
        bh_die(tk_last_error());
    pid_t pid = fork_child();
    if (pid == 0) {
        tk_conn_close(a);
        for (long i = 0; i <= n; i++) {
            tk_args *echo = recv_tk(b);
            send_tk(b, echo);
            tk_args_free(echo);
        }
        _exit(0);
    }
    tk_conn_close(b);
    double t0 = 0;
    for (long i = 0; i <= n; i++) {
        if (i == 1)
            t0 = bh_now();
        send_tk(a, m);
        tk_args_free(recv_tk(a));
    }
    double t = bh_now() - t0;
    reap(pid);
    tk_conn_close(a);
    tk_args_free(m);
    return t;
}
#endif

/* Messages per round at least: each round forks a fresh child, whose first
 * messages (and the parent's first ones after the fork) pay copy-on-write
 * faults on the pages they touch. One slow calibration round could
 * settle on rounds of a few dozen messages, where those faults swamped
 * the messages: one CI run read the TK_SHARED queue at 36 us a message
 * against 1-2 us in rounds of thousands. */
#define ONEWAY_MIN 2000
#define PINGPONG_MIN 200

int main(void)
{
    bh_init("queue");
    memset(payload, 'x', sizeof payload);
    static int seqpacket = SOCK_SEQPACKET;
    struct bh_side queue_one[] = {
        {.impl = "libtaskkit TK_SHARED queue", .timed = TK_ONLY(tk_queue_oneway), .min_n = ONEWAY_MIN},
        {.impl = "raw pipe", .timed = raw_oneway, .max_ratio = 1.0, .min_n = ONEWAY_MIN},
        {.impl = "Python mp.Queue", .peer = "py queue_oneway"},
    };
    struct bh_side pipe_one[] = {
        {.impl = "libtaskkit pipe (tk_conn)", .timed = TK_ONLY(tk_pipe_oneway), .min_n = ONEWAY_MIN},
        {.impl = "raw pipe", .timed = raw_oneway, .max_ratio = 1.0, .min_n = ONEWAY_MIN},
        {.impl = "raw AF_UNIX seqpacket", .timed = raw_oneway, .ctx = &seqpacket,
         .min_n = ONEWAY_MIN},
        {.impl = "Python mp.Pipe", .peer = "py pipe_oneway"},
    };
    struct bh_side queue_pp[] = {
        {.impl = "libtaskkit TK_SHARED queue", .timed = TK_ONLY(tk_queue_pingpong), .min_n = PINGPONG_MIN},
        {.impl = "raw pipe", .timed = raw_pingpong, .max_ratio = 1.5, .min_n = PINGPONG_MIN},
        {.impl = "Python mp.Queue", .peer = "py queue_pingpong"},
    };
    struct bh_side pipe_pp[] = {
        {.impl = "libtaskkit pipe (tk_conn)", .timed = TK_ONLY(tk_pipe_pingpong), .min_n = PINGPONG_MIN},
        {.impl = "raw pipe", .timed = raw_pingpong, .max_ratio = 1.5, .min_n = PINGPONG_MIN},
        {.impl = "raw AF_UNIX seqpacket", .timed = raw_pingpong, .ctx = &seqpacket,
         .min_n = PINGPONG_MIN},
        {.impl = "Python mp.Pipe", .peer = "py pipe_pingpong"},
    };
    bh_section("Queues and pipes between two processes, 64-byte messages");
    bh_row("one-way, queue: per message", queue_one, 3);
    bh_row("one-way, pipe: per message", pipe_one, 4);
    bh_row("ping-pong, queue: per round trip", queue_pp, 3);
    bh_row("ping-pong, pipe: per round trip", pipe_pp, 4);
    return bh_finish();
}
