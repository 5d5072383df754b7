/* test_conn.c - pipes: whole messages both ways, one-way direction rules,
 * timeouts, end of file (never SIGPIPE), poll/fileno, large messages,
 * stops, and 1,000 ping-pong round trips between processes. */
#include "common/testutil.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "taskkit.h"

static void duplex_both_ways(void **state)
{
    (void)state;
    tk_conn *a, *b;
    assert_int_equal(tk_pipe_new(&a, &b, true), 0);
    tk_args *m = tk_args_of("isdn", 42, "hi", 2.5);
    assert_int_equal(tk_conn_send(a, m), 0);
    assert_int_equal(tk_conn_send(b, m), 0);
    tk_args_free(m); /* send transmitted a copy */
    tk_args *r;
    assert_int_equal(tk_conn_recv(b, &r, 1.0), 0);
    assert_int_equal(tk_args_len(r), 4);
    const char *s;
    assert_int_equal(tk_args_get_str(r, 1, &s), 0);
    assert_string_equal(s, "hi");
    tk_args_free(r);
    assert_int_equal(tk_conn_recv(a, &r, 1.0), 0);
    tk_args_free(r);
    assert_int_equal(tk_conn_send(a, NULL), 0); /* an empty bag */
    assert_int_equal(tk_conn_recv(b, &r, 1.0), 0);
    assert_int_equal(tk_args_len(r), 0);
    tk_args_free(r);
    tk_conn_close(a);
    tk_conn_close(b);
}

static void one_way_directions(void **state)
{
    (void)state;
    tk_conn *rd, *wr;
    assert_int_equal(tk_pipe_new(&rd, &wr, false), 0);
    tk_args *m = tk_args_of("i", 1), *r;
    assert_int_equal(tk_conn_send(rd, m), TK_EPERM);
    assert_string_equal(tk_last_error(), "connection is read-only");
    assert_int_equal(tk_conn_recv(wr, &r, 0), TK_EPERM);
    assert_string_equal(tk_last_error(), "connection is write-only");
    assert_null(r);
    assert_int_equal(tk_conn_poll(wr, 0), TK_EPERM);
    assert_int_equal(tk_conn_send(wr, m), 0);
    assert_int_equal(tk_conn_recv(rd, &r, 1.0), 0);
    tk_args_free(r);
    tk_args_free(m);
    tk_conn_close(rd);
    tk_conn_close(wr);
}

static void recv_timeout_poll_and_fileno(void **state)
{
    (void)state;
    tk_conn *a, *b;
    assert_int_equal(tk_pipe_new(&a, &b, true), 0);
    tk_args *r = (tk_args *)1;
    double t0 = tt_now();
    assert_int_equal(tk_conn_recv(a, &r, 0.1), TK_ETIMEDOUT);
    assert_true(tt_now() - t0 >= 0.09);
    assert_null(r);
    assert_int_equal(tk_conn_poll(a, 0), 0);
    assert_int_equal(tk_conn_poll(a, 0.05), 0);
    tk_args *m = tk_args_of("i", 1);
    assert_int_equal(tk_conn_send(b, m), 0);
    assert_int_equal(tk_conn_send(b, m), 0);
    tk_args_free(m);
    assert_int_equal(tk_conn_poll(a, 1.0), 1);
    /* After one recv the descriptor still shows the second message: no
     * read-ahead hides it from the caller's own event loop. */
    assert_int_equal(tk_conn_recv(a, &r, 0), 0);
    tk_args_free(r);
    struct pollfd p = {.fd = tk_conn_fileno(a), .events = POLLIN};
    assert_int_equal(poll(&p, 1, 0), 1);
    assert_int_equal(tk_conn_recv(a, &r, 0), 0);
    tk_args_free(r);
    assert_int_equal(poll(&p, 1, 0), 0);
    assert_int_equal(tk_conn_fileno(NULL), -1);
    tk_conn_close(a);
    tk_conn_close(b);
}

static void eof_and_no_sigpipe(void **state)
{
    (void)state;
    tk_conn *a, *b;
    assert_int_equal(tk_pipe_new(&a, &b, true), 0);
    tk_conn_close(b);
    tk_args *r, *m = tk_args_of("i", 1);
    assert_int_equal(tk_conn_recv(a, &r, 1.0), TK_ECLOSED);
    assert_int_equal(tk_conn_poll(a, 0), 1); /* end of file is readable */
    /* SIGPIPE would kill the test: it must be TK_ECLOSED. */
    assert_int_equal(tk_conn_send(a, m), TK_ECLOSED);
    tk_args_free(m);
    tk_conn_close(a);
}

static void large_messages_whole(void **state)
{
    (void)state;
    tk_conn *a, *b;
    assert_int_equal(tk_pipe_new(&a, &b, true), 0);
    size_t n = 3 * 1024 * 1024 + 17;
    unsigned char *big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (unsigned char)(i * 7);
    pid_t pid = fork();
    if (pid == 0) {
        tk_args *m = tk_args_of("y", big, n);
        int rc = tk_conn_send(b, m) | tk_conn_send(b, m);
        _exit(rc == 0 ? 0 : 1);
    }
    for (int k = 0; k < 2; k++) {
        tk_args *r;
        assert_int_equal(tk_conn_recv(a, &r, 30.0), 0);
        const void *y;
        size_t len;
        assert_int_equal(tk_args_get_bytes(r, 0, &y, &len), 0);
        assert_int_equal(len, n);
        assert_memory_equal(y, big, n);
        tk_args_free(r);
    }
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    free(big);
    tk_conn_close(a);
    tk_conn_close(b);
}

/* A message too big for memory is dropped whole: its continuation records
 * must not stay in the socket, where the next recv would take one for a
 * frame header. The payload is chosen so that a leftover record would even
 * read as a plausible header (every 4-byte window is a small length). */
static void recv_out_of_memory_keeps_step(void **state)
{
    (void)state;
    tk_conn *a, *b;
    assert_int_equal(tk_pipe_new(&a, &b, true), 0);
    size_t n = 5 * 32768 + 123; /* six records */
    unsigned char *big = calloc(1, n);
    for (size_t i = 0; i < n; i += 4)
        big[i] = 8;
    pid_t pid = fork();
    if (pid == 0) {
        tk_args *warm = tk_args_of("i", 1), *m = tk_args_of("iy", 2, big, n);
        tk_args *next = tk_args_of("is", 3, "after");
        int rc = tk_conn_send(b, warm) | tk_conn_send(b, m) | tk_conn_send(b, next);
        _exit(rc == 0 ? 0 : 1);
    }
    tk_args *r = NULL;
    int64_t tag = 0;
    assert_int_equal(tk_conn_recv(a, &r, 30.0), 0); /* makes the record buffer */
    tk_args_free(r);
    tk__fault_set(1); /* the big message's buffer */
    int rc = tk_conn_recv(a, &r, 30.0);
    tk__fault_set(0);
    assert_int_equal(rc, TK_ENOMEM);
    assert_string_equal(tk_last_error(), "out of memory");
    assert_null(r);
    assert_int_equal(tk_conn_recv(a, &r, 30.0), 0);
    assert_int_equal(tk_args_len(r), 2);
    assert_int_equal(tk_args_get_int(r, 0, &tag), 0);
    assert_int_equal(tag, 3);
    const char *s = NULL;
    assert_int_equal(tk_args_get_str(r, 1, &s), 0);
    assert_string_equal(s, "after");
    tk_args_free(r);
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(tk_conn_poll(a, 0), 0); /* nothing left over */
    free(big);
    tk_conn_close(a);
    tk_conn_close(b);
}

static void pointers_refused(void **state)
{
    (void)state;
    tk_conn *a, *b;
    assert_int_equal(tk_pipe_new(&a, &b, true), 0);
    int x;
    tk_args *m = tk_args_of("p", (void *)&x);
    assert_int_equal(tk_conn_send(a, m), TK_ETYPE);
    assert_int_equal(tk_conn_poll(b, 0), 0); /* nothing was written */
    tk_args_free(m);
    tk_conn *other = b;
    assert_int_equal(tk_pipe_new(NULL, &other, true), TK_EINVAL);
    assert_null(other); /* failed outputs are set to NULL */
    assert_int_equal(tk_conn_send(NULL, NULL), TK_EINVAL);
    tk_conn_close(NULL);
    tk_conn_close(a);
    tk_conn_close(b);
}

struct stopper {
    tk_conn *c;
    struct tk__stop stop;
    int rc;
};

static void *recv_thread(void *arg)
{
    struct stopper *s = arg;
    tk__tls()->stop = &s->stop;
    tk_args *r = NULL;
    s->rc = tk_conn_recv(s->c, &r, 30.0);
    tk_args_free(r);
    tk__tls()->stop = NULL;
    return NULL;
}

static void stop_interrupts_recv(void **state)
{
    (void)state;
    tk_conn *a, *b;
    assert_int_equal(tk_pipe_new(&a, &b, true), 0);
    struct stopper s = {.c = a};
    tk__stop_init(&s.stop);
    pthread_t t;
    pthread_create(&t, NULL, recv_thread, &s);
    usleep(50000);
    tk__stop_request(&s.stop);
    pthread_join(t, NULL);
    assert_int_equal(s.rc, TK_ECANCELED);
    tk__stop_destroy(&s.stop);
    tk_conn_close(a);
    tk_conn_close(b);
}

/* A receive blocks in recv for its first few milliseconds (lib/conn.c):
 * a stop that comes then must still end it promptly, and a message that
 * comes after that phase must still be received. */
static void stop_interrupts_recv_early(void **state)
{
    (void)state;
    for (int i = 0; i < 20; i++) {
        tk_conn *a, *b;
        assert_int_equal(tk_pipe_new(&a, &b, true), 0);
        struct stopper s = {.c = a};
        tk__stop_init(&s.stop);
        pthread_t t;
        double t0 = tt_now();
        pthread_create(&t, NULL, recv_thread, &s);
        usleep((useconds_t)(i % 4) * 1000); /* 0-3 ms: inside the first tick */
        tk__stop_request(&s.stop);
        pthread_join(t, NULL);
        assert_int_equal(s.rc, TK_ECANCELED);
        assert_true(tt_now() - t0 < 5.0); /* not the 30 s timeout */
        tk__stop_destroy(&s.stop);
        tk_conn_close(a);
        tk_conn_close(b);
    }
}

static void *late_sender(void *arg)
{
    usleep(60000); /* well past the blocking phase */
    tk_args *m = tk_args_of("i", 42);
    tk_conn_send(arg, m);
    tk_args_free(m);
    return NULL;
}

static void recv_outlasting_the_first_tick(void **state)
{
    (void)state;
    tk_conn *a, *b;
    assert_int_equal(tk_pipe_new(&a, &b, false), 0);
    pthread_t t;
    pthread_create(&t, NULL, late_sender, b);
    tk_args *m = NULL;
    assert_int_equal(tk_conn_recv(a, &m, TK_FOREVER), 0);
    int64_t v = 0;
    assert_int_equal(tk_args_get_int(m, 0, &v), 0);
    assert_int_equal(v, 42);
    tk_args_free(m);
    pthread_join(t, NULL);
    /* Short timeouts (below the tick) still time out, without a message. */
    double t0 = tt_now();
    assert_int_equal(tk_conn_recv(a, &m, 0.002), TK_ETIMEDOUT);
    assert_null(m);
    assert_true(tt_now() - t0 < 2.0);
    assert_int_equal(tk_conn_recv(a, &m, 0.03), TK_ETIMEDOUT);
    assert_true(tt_now() - t0 >= 0.03);
    tk_conn_close(a);
    tk_conn_close(b);
}

static void ping_pong_between_processes(void **state)
{
    (void)state;
    tk_conn *a, *b;
    assert_int_equal(tk_pipe_new(&a, &b, true), 0);
    pid_t pid = fork();
    if (pid == 0) {
        tk_conn_close(a);
        tk_args *m;
        while (tk_conn_recv(b, &m, 30.0) == 0) {
            int64_t v = 0;
            tk_args_get_int(m, 0, &v);
            tk_args_free(m);
            m = tk_args_of("l", (int64_t)(v + 1));
            if (tk_conn_send(b, m) != 0)
                _exit(2);
            tk_args_free(m);
        }
        _exit(0);
    }
    tk_conn_close(b);
    double t0 = tt_now();
    for (int64_t i = 0; i < 1000; i++) {
        tk_args *m = tk_args_of("l", i), *r;
        assert_int_equal(tk_conn_send(a, m), 0);
        tk_args_free(m);
        assert_int_equal(tk_conn_recv(a, &r, 10.0), 0);
        int64_t v;
        assert_int_equal(tk_args_get_int(r, 0, &v), 0);
        assert_int_equal(v, i + 1);
        tk_args_free(r);
    }
    double dt = tt_now() - t0;
    print_message("1000 round trips: %.1f us each\n", dt * 1e3);
    tk_conn_close(a); /* the child sees end of file and leaves */
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Two receivers share one end (threads here; after a fork, processes do
 * the same): each keeps its own hint of how many messages were taken
 * (lib/conn.c), so one of them always lags. Every message must still be
 * received once, and neither may wait for a message the other took. */
#define SHARED_N 2000

struct taker {
    tk_conn *c;
    int got[SHARED_N];
    int n, rc;
};

static void *taker_main(void *arg)
{
    struct taker *t = arg;
    for (;;) {
        tk_args *m = NULL;
        int64_t v = -1;
        if ((t->rc = tk_conn_recv(t->c, &m, 30.0)) < 0)
            return NULL;
        tk_args_get_int(m, 0, &v);
        tk_args_free(m);
        if (v < 0)
            return NULL; /* the end marker */
        t->got[t->n++] = (int)v;
    }
}

static void shared_end_receives_each_once(void **state)
{
    (void)state;
    tk_conn *r, *w;
    assert_int_equal(tk_pipe_new(&r, &w, false), 0);
    static struct taker t[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        t[i] = (struct taker){.c = r};
        pthread_create(&th[i], NULL, taker_main, &t[i]);
    }
    for (int64_t v = 0; v < SHARED_N; v++) {
        tk_args *m = tk_args_of("l", v);
        assert_int_equal(tk_conn_send(w, m), 0);
        tk_args_free(m);
        if (v % 97 == 0)
            usleep(200); /* let the receivers run dry now and then */
    }
    for (int i = 0; i < 2; i++) {
        tk_args *end = tk_args_of("l", (int64_t)-1);
        assert_int_equal(tk_conn_send(w, end), 0);
        tk_args_free(end);
    }
    static char seen[SHARED_N];
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(t[i].rc, 0);
        for (int k = 0; k < t[i].n; k++) {
            assert_in_range(t[i].got[k], 0, SHARED_N - 1);
            assert_int_equal(seen[t[i].got[k]]++, 0);
        }
    }
    assert_int_equal(t[0].n + t[1].n, SHARED_N);
    tk_conn_close(r);
    tk_conn_close(w);
}

/* ------------------------------------------------ a peer that goes away */

static tk_conn *child_end;

/* Receives one message, then returns: the process exits holding its end. */
static int take_one_and_exit(const tk_args *args, const tk_kwargs *kwargs)
{
    (void)args;
    (void)kwargs;
    tk_args *r = NULL;
    int rc = tk_conn_recv(child_end, &r, 30.0);
    tk_args_free(r);
    return rc == 0 ? 0 : 1;
}

/* A send checks its peer at most every 50 us, but never trusts an old
 * check after this process has joined a child: the send right after the
 * join fails, however soon it comes. */
static void send_after_join_fails_at_once(void **state)
{
    (void)state;
    for (int round = 0; round < 20; round++) {
        tk_conn *rd, *wr;
        assert_int_equal(tk_pipe_new(&rd, &wr, false), 0);
        child_end = rd;
        tk_process *p = tk_process_new(take_one_and_exit, NULL, NULL);
        assert_non_null(p);
        assert_int_equal(tk_process_start(p), 0);
        tk_conn_close(rd); /* the child holds the only receiving end now */
        tk_args *m = tk_args_of("i", round);
        assert_int_equal(tk_conn_send(wr, m), 0); /* checks: the peer is there */
        assert_int_equal(tk_process_join(p, 30.0), 0);
        assert_int_equal(tk_process_exitcode(p), 0);
        assert_int_equal(tk_conn_send(wr, m), TK_ECLOSED);
        assert_string_equal(tk_last_error(),
                            "broken pipe: the other end of the connection is closed");
        tk_args_free(m);
        tk_process_free(p);
        tk_conn_close(wr);
    }
}

/* An end closed in another process: the shared page counts closes, so the
 * next send checks at once. */
static void send_after_remote_close_fails_at_once(void **state)
{
    (void)state;
    atomic_int *closed = mmap(NULL, sizeof *closed, PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(closed != MAP_FAILED);
    int strict = 0;
    for (int round = 0; round < 20; round++) {
        tk_conn *rd, *wr;
        assert_int_equal(tk_pipe_new(&rd, &wr, false), 0);
        atomic_store(closed, 0);
        pid_t pid = fork();
        if (pid == 0) {
            int64_t v = 0;
            int rc = 0;
            while (rc == 0 && v >= 0) { /* until the -1 */
                tk_args *r = NULL;
                rc = tk_conn_recv(rd, &r, 30.0);
                if (rc == 0)
                    rc = tk_args_get_int(r, 0, &v);
                tk_args_free(r);
            }
            tk_conn_close(rd);
            atomic_store(closed, 1);
            alarm(30); /* a failed test must not leave it behind */
            pause();   /* alive, not reaped: only the close tells */
            _exit(rc == 0 ? 0 : 1);
        }
        tk_conn_close(rd);
        tk_args *m = tk_args_of("i", 1), *last = tk_args_of("i", -1);
        for (int i = 0; i < 1000; i++)
            assert_int_equal(tk_conn_send(wr, m), 0);
        assert_int_equal(tk_conn_send(wr, last), 0);
        /* Sending all along keeps the last check under 50 us old, so when
         * the flag ends the loop, only the close count can make the next
         * send check. (A periodic check may also catch the close first.) */
        int rc = 0;
        while (!atomic_load(closed) && rc == 0)
            rc = tk_conn_send(wr, m);
        assert_true(rc == 0 || rc == TK_ECLOSED);
        strict += rc == 0;
        while (!atomic_load(closed))
            ;
        assert_int_equal(tk_conn_send(wr, m), TK_ECLOSED);
        tk_args_free(m);
        tk_args_free(last);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        tk_conn_close(wr);
    }
    print_message("%d of 20 rounds saw the flag before any check saw the close\n", strict);
    munmap(closed, sizeof *closed);
}

/* A peer killed and reaped behind the library's back (raw waitpid): no
 * event tells, yet a send that starts well over 50 us later fails. */
static void send_to_vanished_peer_fails_after_the_check_window(void **state)
{
    (void)state;
    tk_conn *rd, *wr;
    assert_int_equal(tk_pipe_new(&rd, &wr, false), 0);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(30);
        pause();
        _exit(0);
    }
    tk_conn_close(rd);
    tk_args *m = tk_args_of("i", 1);
    assert_int_equal(tk_conn_send(wr, m), 0);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    usleep(2000);
    assert_int_equal(tk_conn_send(wr, m), TK_ECLOSED);
    tk_args_free(m);
    tk_conn_close(wr);
}

/* A process killed in the middle of a message (a large one, blocked on a
 * full ring) leaves half a message behind: the next sender finds out when
 * it takes the send token, and both directions' users get TK_EBROKEN, not
 * garbage or a hang. */
static void killed_mid_message_breaks_the_direction(void **state)
{
    (void)state;
    tk_conn *rd, *wr;
    assert_int_equal(tk_pipe_new(&rd, &wr, false), 0);
    size_t n = 1024 * 1024; /* far beyond the ring: the sender blocks mid-way */
    pid_t pid = fork();
    if (pid == 0) {
        unsigned char *big = calloc(1, n);
        tk_args *m = tk_args_of("y", big, n);
        tk_conn_send(wr, m);
        _exit(0);
    }
    /* Wait until the ring is full, i.e. the child is inside its send. */
    assert_int_equal(tk_conn_poll(rd, 30.0), 1);
    usleep(50000);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    tk_args *m = tk_args_of("i", 1), *r = (tk_args *)&r;
    assert_int_equal(tk_conn_send(wr, m), TK_EBROKEN); /* this process still holds rd */
    assert_string_equal(tk_last_error(),
                        "connection is broken: a process died in the middle of a message");
    assert_int_equal(tk_conn_recv(rd, &r, 5.0), TK_EBROKEN);
    assert_null(r);
    assert_int_equal(tk_conn_poll(rd, 0), 1); /* not a wait that never ends */
    tk_args_free(m);
    tk_conn_close(rd);
    tk_conn_close(wr);
}

/* The sender is killed while the receiver is in the middle of its
 * message, and another process (this one) still holds the sending end, so
 * no end of file comes: the receiver must notice the dead token holder
 * and fail TK_EBROKEN rather than wait for the rest for ever. */
static void receiver_notices_a_sender_killed_mid_message(void **state)
{
    (void)state;
    size_t n = 32u << 20;
    int broken = 0;
    for (int attempt = 0; attempt < 5 && !broken; attempt++) {
        tk_conn *rd, *wr;
        assert_int_equal(tk_pipe_new(&rd, &wr, false), 0);
        pid_t pid = fork();
        if (pid == 0) {
            unsigned char *big = calloc(1, n);
            tk_args *m = tk_args_of("y", big, n);
            tk_conn_send(wr, m);
            _exit(0);
        }
        assert_int_equal(tk_conn_poll(rd, 30.0), 1); /* the stream has begun */
        usleep(2000);
        kill(pid, SIGKILL);
        tk_args *r = NULL;
        double t0 = tt_now();
        int rc = tk_conn_recv(rd, &r, 30.0);
        assert_true(rc == 0 || rc == TK_EBROKEN); /* 0: it finished first */
        assert_true(tt_now() - t0 < 10.0);
        broken += rc == TK_EBROKEN;
        tk_args_free(r);
        waitpid(pid, NULL, 0);
        tk_conn_close(rd);
        tk_conn_close(wr);
    }
    assert_true(broken > 0);
}

/* fileno in an event loop, messages coming from another process: the
 * descriptor wakes the loop for every message, and once the sender is
 * done and a receive has found nothing, it is not readable any more. */
static void fileno_wakes_an_event_loop(void **state)
{
    (void)state;
    tk_conn *rd, *wr;
    assert_int_equal(tk_pipe_new(&rd, &wr, false), 0);
    struct pollfd p = {.fd = tk_conn_fileno(rd), .events = POLLIN};
    assert_true(p.fd >= 0);
    assert_int_equal(tk_conn_fileno(rd), p.fd); /* made once */
    assert_int_equal(poll(&p, 1, 0), 0);
    enum { N = 500 };
    pid_t pid = fork();
    if (pid == 0) {
        int rc = 0;
        for (int i = 0; i < N; i++) {
            tk_args *m = tk_args_of("i", i);
            rc |= tk_conn_send(wr, m);
            tk_args_free(m);
            if (i % 50 == 0)
                usleep(1000); /* let the loop catch up and sleep */
        }
        _exit(rc == 0 ? 0 : 1);
    }
    int got = 0, spurious = 0;
    while (got < N) {
        assert_int_equal(poll(&p, 1, 30000), 1); /* never a lost wake-up */
        tk_args *r = NULL;
        int rc = tk_conn_recv(rd, &r, 0);
        if (rc == TK_ETIMEDOUT) {
            spurious++;
            continue;
        }
        assert_int_equal(rc, 0);
        int64_t v = -1;
        assert_int_equal(tk_args_get_int(r, 0, &v), 0);
        assert_int_equal(v, got);
        got++;
        tk_args_free(r);
    }
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    tk_args *r = NULL;
    int rc = tk_conn_recv(rd, &r, 0);
    assert_true(rc == TK_ETIMEDOUT || rc == TK_ECLOSED);
    assert_int_equal(poll(&p, 1, 0), 0 + (rc == TK_ECLOSED)); /* end of file is readable */
    print_message("%d spurious wake-ups for %d messages\n", spurious, N);
    assert_true(spurious < N);
    tk_conn_close(rd);
    tk_conn_close(wr);
}

/* ------------------------------------------- several users of one end */

static tk_args *filled(int64_t tag, char fill, size_t n)
{
    unsigned char *b = malloc(n);
    memset(b, fill, n);
    tk_args *m = tk_args_of("ly", tag, b, n);
    free(b);
    return m;
}

static tk_conn *room_wr;
static atomic_int room_sent;

static void *send_ten_k(void *arg)
{
    (void)arg;
    tk_args *m = filled(9999, 'P', 10000);
    atomic_store(&room_sent, tk_conn_send(room_wr, m) == 0 ? 1 : -1);
    tk_args_free(m);
    return NULL;
}

/* A sender's idea of the room left comes from the last read position it
 * saw. When other processes have sent meanwhile, that may lag by more than
 * a ring: the room must then be read again, not computed from it (which
 * once let this send overwrite 127 KB nobody had read yet). */
static void room_is_rechecked_after_other_processes_sent(void **state)
{
    (void)state;
    tk_conn *rd, *wr;
    assert_int_equal(tk_pipe_new(&rd, &wr, false), 0);
    int go[2], ready[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    if (pid == 0) {
        int rc = 0;
        char ch;
        for (int i = 0; i < 300; i++) { /* ~300 KB: more than two rings */
            tk_args *m = filled(i, 'c', 1000);
            rc |= tk_conn_send(wr, m);
            tk_args_free(m);
        }
        rc |= read(go[0], &ch, 1) != 1;
        for (int i = 0; i < 127; i++) { /* the ring nearly full */
            tk_args *m = filled(i, 'C', 1000);
            rc |= tk_conn_send(wr, m);
            tk_args_free(m);
        }
        rc |= write(ready[1], "x", 1) != 1;
        alarm(30);
        pause();
        _exit(rc == 0 ? 0 : 1);
    }
    for (int i = 0; i < 300; i++) {
        tk_args *m = NULL;
        assert_int_equal(tk_conn_recv(rd, &m, 30.0), 0);
        tk_args_free(m);
    }
    char ch;
    assert_int_equal(write(go[1], "x", 1), 1);
    assert_int_equal(read(ready[0], &ch, 1), 1);
    room_wr = wr;
    atomic_store(&room_sent, 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, send_ten_k, NULL), 0);
    usleep(200000);
    assert_int_equal(atomic_load(&room_sent), 0); /* 10 KB do not fit: it waits */
    for (int i = 0; i < 128; i++) {
        tk_args *m = NULL;
        assert_int_equal(tk_conn_recv(rd, &m, 30.0), 0);
        int64_t tag = -1;
        const void *y = NULL;
        size_t n = 0;
        assert_int_equal(tk_args_get_int(m, 0, &tag), 0);
        assert_int_equal(tk_args_get_bytes(m, 1, &y, &n), 0);
        assert_int_equal(tag, i < 127 ? i : 9999);
        assert_int_equal(n, i < 127 ? 1000 : 10000);
        assert_int_equal(((const char *)y)[n - 1], i < 127 ? 'C' : 'P');
        tk_args_free(m);
    }
    pthread_join(th, NULL);
    assert_int_equal(atomic_load(&room_sent), 1);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(go[0]);
    close(go[1]);
    close(ready[0]);
    close(ready[1]);
    tk_conn_close(rd);
    tk_conn_close(wr);
}

enum { BIG_N = 200 };
static tk_conn *big_rd;
static atomic_int big_got;

/* Receives until a message tagged -1; waits without a timeout, as the
 * receiver that once waited for ever did. */
static void *take_bigs(void *arg)
{
    int *rc = arg;
    *rc = 0;
    for (;;) {
        tk_args *m = NULL;
        int r = tk_conn_recv(big_rd, &m, TK_FOREVER);
        if (r != 0) {
            *rc = r;
            return NULL;
        }
        int64_t tag = 0;
        const void *y = NULL;
        size_t n = 0;
        if (tk_args_get_int(m, 0, &tag) != 0 || tk_args_get_bytes(m, 1, &y, &n) != 0 ||
            ((const char *)y)[n - 1] != 'x')
            *rc = -1;
        tk_args_free(m);
        if (tag < 0)
            return NULL;
        atomic_fetch_add(&big_got, 1);
    }
}

static tk_conn *big_wr;

/* Sends BIG_N messages, two of every three 400 KB, then one end mark for
 * each receiver. */
static void *send_bigs(void *arg)
{
    int *rc = arg;
    *rc = 0;
    for (int i = 0; i < BIG_N + 2; i++) {
        tk_args *m = filled(i < BIG_N ? i : -1, 'x', i < BIG_N && i % 3 ? 400000 : 100);
        *rc |= tk_conn_send(big_wr, m);
        tk_args_free(m);
    }
    return NULL;
}

/* Two receivers on one end, messages three times the ring: while one
 * streams a message in, the other (woken by the same ring of the bell)
 * must hand the wake-up on, or the streaming one sleeps with the ring full
 * and all three wait for ever (it did, within 15 messages). */
static void two_receivers_share_messages_larger_than_the_ring(void **state)
{
    (void)state;
    tk_conn *rd, *wr;
    assert_int_equal(tk_pipe_new(&rd, &wr, false), 0);
    big_rd = rd;
    atomic_store(&big_got, 0);
    pthread_t th[2];
    int rc[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, take_bigs, &rc[i]), 0);
    big_wr = wr;
    pthread_t sender;
    int src = -1;
    assert_int_equal(pthread_create(&sender, NULL, send_bigs, &src), 0);
    double t0 = tt_now();
    while (atomic_load(&big_got) < BIG_N && tt_now() - t0 < 60)
        usleep(1000);
    if (atomic_load(&big_got) < BIG_N) /* the threads are stuck: no join */
        fail_msg("only %d of %d messages received in 60 s", atomic_load(&big_got), BIG_N);
    pthread_join(sender, NULL);
    assert_int_equal(src, 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(rc[i], 0);
    }
    tk_conn_close(rd);
    tk_conn_close(wr);
}

static tk_conn *pr_rd;

static void *poll_two(void *arg)
{
    (void)arg;
    tk_conn_poll(pr_rd, 2.0);
    return NULL;
}

static void *recv_one(void *arg)
{
    tk_args *m = NULL;
    int *rc = arg;
    *rc = tk_conn_recv(pr_rd, &m, 1.0);
    tk_args_free(m);
    return NULL;
}

/* A poll that is woken, sees the message and returns without taking it
 * must leave the wake-up to the receiver sleeping beside it. */
static void poll_leaves_the_wake_up_to_a_receiver(void **state)
{
    (void)state;
    tk_conn *rd, *wr;
    assert_int_equal(tk_pipe_new(&rd, &wr, false), 0);
    pr_rd = rd;
    int lost = 0;
    for (int round = 0; round < 100; round++) {
        pthread_t p, q;
        int rc = 1;
        assert_int_equal(pthread_create(&p, NULL, poll_two, NULL), 0);
        assert_int_equal(pthread_create(&q, NULL, recv_one, &rc), 0);
        usleep(2000); /* both asleep */
        tk_args *m = tk_args_of("l", (int64_t)round);
        assert_int_equal(tk_conn_send(wr, m), 0);
        tk_args_free(m);
        pthread_join(p, NULL);
        pthread_join(q, NULL);
        if (rc != 0) {
            lost++;
            tk_args *x = NULL;
            if (tk_conn_recv(rd, &x, 0) == 0)
                tk_args_free(x);
        }
    }
    assert_int_equal(lost, 0);
    tk_conn_close(rd);
    tk_conn_close(wr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(duplex_both_ways),
        cmocka_unit_test(one_way_directions),
        cmocka_unit_test(recv_timeout_poll_and_fileno),
        cmocka_unit_test(eof_and_no_sigpipe),
        cmocka_unit_test(large_messages_whole),
        cmocka_unit_test(recv_out_of_memory_keeps_step),
        cmocka_unit_test(pointers_refused),
        cmocka_unit_test(stop_interrupts_recv),
        cmocka_unit_test(stop_interrupts_recv_early),
        cmocka_unit_test(recv_outlasting_the_first_tick),
        cmocka_unit_test(ping_pong_between_processes),
        cmocka_unit_test(shared_end_receives_each_once),
        cmocka_unit_test(send_after_join_fails_at_once),
        cmocka_unit_test(send_after_remote_close_fails_at_once),
        cmocka_unit_test(send_to_vanished_peer_fails_after_the_check_window),
        cmocka_unit_test(killed_mid_message_breaks_the_direction),
        cmocka_unit_test(receiver_notices_a_sender_killed_mid_message),
        cmocka_unit_test(fileno_wakes_an_event_loop),
        cmocka_unit_test(room_is_rechecked_after_other_processes_sent),
        cmocka_unit_test(two_receivers_share_messages_larger_than_the_ring),
        cmocka_unit_test(poll_leaves_the_wake_up_to_a_receiver),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
