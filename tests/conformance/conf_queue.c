/* §6 queues and pipes: FIFO, maxsize, TK_EFULL/TK_EEMPTY, a failed put
 * leaves the item with the caller, close semantics, task_done/join,
 * TK_SHARED queues across fork, one-way pipe directions, TK_ECLOSED at EOF
 * without SIGPIPE. */
#include "conf.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/wait.h>

static int child_wait(pid_t pid)
{
    int st = 0;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int64_t item_int(const tk_args *a)
{
    int64_t v = -999;
    tk_args_get_int(a, 0, &v);
    return v;
}

static void fifo_size_and_identity(void **state)
{
    (void)state;
    tk_queue *q = tk_queue_new(0, 0);
    assert_non_null(q);
    assert_int_equal(tk_queue_size(q), 0);
    tk_args *first = NULL;
    for (int i = 0; i < 10; i++) {
        tk_args *a = tk_args_of("ip", i, (void *)q);
        if (i == 0)
            first = a;
        ASSERT_RC(tk_queue_put(q, a, 0), 0);
        assert_int_equal(tk_queue_size(q), (size_t)i + 1);
    }
    for (int i = 0; i < 10; i++) {
        tk_args *a = NULL;
        ASSERT_RC(tk_queue_get(q, &a, 0), 0);
        if (i == 0)
            assert_ptr_equal(a, first); /* a thread queue stores the bag itself */
        assert_int_equal(item_int(a), i);
        void *p;
        ASSERT_RC(tk_args_get_ptr(a, 1, &p), 0); /* pointers allowed */
        assert_ptr_equal(p, q);
        tk_args_free(a);
        assert_int_equal(tk_queue_size(q), (size_t)(9 - i));
    }
    tk_args *a = (tk_args *)&a;
    ASSERT_RC(tk_queue_get(q, &a, 0), TK_EEMPTY);
    assert_null(a);
    a = (tk_args *)&a;
    double t0 = conf_now();
    ASSERT_RC(tk_queue_get(q, &a, 0.2), TK_EEMPTY);
    assert_true(conf_now() - t0 >= 0.15);
    assert_null(a);
    ASSERT_RC(tk_queue_put(q, NULL, 0), TK_EINVAL);
    tk_queue_free(q);
}

static void maxsize_and_failed_put(void **state)
{
    (void)state;
    tk_queue *q = tk_queue_new(2, 0);
    ASSERT_RC(tk_queue_put(q, tk_args_of("i", 1), 0), 0);
    ASSERT_RC(tk_queue_put(q, tk_args_of("i", 2), 0), 0);
    tk_args *mine = tk_args_of("is", 3, "still mine");
    ASSERT_RC(tk_queue_put(q, mine, 0), TK_EFULL);
    double t0 = conf_now();
    ASSERT_RC(tk_queue_put(q, mine, 0.2), TK_EFULL);
    assert_true(conf_now() - t0 >= 0.15);
    ASSERT_RC(tk_queue_put(q, mine, -4.0), TK_EFULL);
    /* the caller still owns it, intact */
    const char *s;
    ASSERT_RC(tk_args_get_str(mine, 1, &s), 0);
    assert_string_equal(s, "still mine");
    assert_int_equal(tk_queue_size(q), 2);
    tk_args *a;
    ASSERT_RC(tk_queue_get(q, &a, 0), 0);
    assert_int_equal(item_int(a), 1);
    tk_args_free(a);
    ASSERT_RC(tk_queue_put(q, mine, 0), 0);
    ASSERT_RC(tk_queue_get(q, &a, 0), 0);
    assert_int_equal(item_int(a), 2);
    tk_args_free(a);
    ASSERT_RC(tk_queue_get(q, &a, 0), 0);
    assert_int_equal(item_int(a), 3);
    tk_args_free(a);
    tk_queue_free(q);
}

static tk_queue *g_q;
static int blocked_rc;
static void *blocked_get(void *arg)
{
    (void)arg;
    tk_args *a = (tk_args *)&a;
    blocked_rc = tk_queue_get(g_q, &a, 10.0);
    if (a != NULL)
        blocked_rc = 1000;
    return NULL;
}
static void *blocked_put(void *arg)
{
    tk_args *a = arg;
    blocked_rc = tk_queue_put(g_q, a, 10.0);
    return NULL;
}

static void close_semantics(void **state)
{
    (void)state;
    /* close wakes a blocked getter */
    g_q = tk_queue_new(0, 0);
    pthread_t th;
    pthread_create(&th, NULL, blocked_get, NULL);
    conf_sleep(0.15);
    double t0 = conf_now();
    ASSERT_RC(tk_queue_close(g_q), 0);
    pthread_join(th, NULL);
    assert_true(conf_now() - t0 < 5.0);
    ASSERT_RC(blocked_rc, TK_ECLOSED);
    ASSERT_RC(tk_queue_close(g_q), 0); /* again: no-op */
    tk_queue_free(g_q);

    /* ... and a blocked putter, who keeps the item */
    g_q = tk_queue_new(1, 0);
    ASSERT_RC(tk_queue_put(g_q, tk_args_of("i", 1), 0), 0);
    tk_args *mine = tk_args_of("i", 2);
    pthread_create(&th, NULL, blocked_put, mine);
    conf_sleep(0.15);
    ASSERT_RC(tk_queue_close(g_q), 0);
    pthread_join(th, NULL);
    ASSERT_RC(blocked_rc, TK_ECLOSED);
    assert_int_equal(item_int(mine), 2);
    ASSERT_RC(tk_queue_put(g_q, mine, 0), TK_ECLOSED);
    assert_int_equal(item_int(mine), 2);
    tk_args_free(mine);
    /* drain, then TK_ECLOSED at once whatever the timeout */
    tk_args *a;
    ASSERT_RC(tk_queue_get(g_q, &a, TK_FOREVER), 0);
    assert_int_equal(item_int(a), 1);
    tk_args_free(a);
    t0 = conf_now();
    a = (tk_args *)&a;
    ASSERT_RC(tk_queue_get(g_q, &a, TK_FOREVER), TK_ECLOSED);
    assert_null(a);
    ASSERT_RC(tk_queue_get(g_q, &a, 5.0), TK_ECLOSED);
    assert_true(conf_now() - t0 < 1.0);
    tk_queue_free(g_q);
}

static void *consumer(void *arg)
{
    (void)arg;
    tk_args *a;
    while (tk_queue_get(g_q, &a, 10.0) == 0) {
        conf_sleep(0.05);
        tk_args_free(a);
        tk_queue_task_done(g_q);
    }
    return NULL;
}

static void task_done_and_join(void **state)
{
    (void)state;
    g_q = tk_queue_new(0, 0);
    ASSERT_RC(tk_queue_join(g_q, 0), 0); /* nothing put */
    ASSERT_RC(tk_queue_task_done(g_q), TK_ESTATE);
    ASSERT_MSG("task_done() called too many times");
    for (int i = 0; i < 5; i++)
        ASSERT_RC(tk_queue_put(g_q, tk_args_of("i", i), 0), 0);
    ASSERT_RC(tk_queue_join(g_q, 0), TK_ETIMEDOUT);
    /* getting is not enough: every item must be task_done */
    tk_args *a;
    ASSERT_RC(tk_queue_get(g_q, &a, 0), 0);
    tk_args_free(a);
    double t0 = conf_now();
    ASSERT_RC(tk_queue_join(g_q, 0.2), TK_ETIMEDOUT);
    assert_true(conf_now() - t0 >= 0.15);
    ASSERT_RC(tk_queue_task_done(g_q), 0);
    pthread_t th;
    pthread_create(&th, NULL, consumer, NULL);
    ASSERT_RC(tk_queue_join(g_q, 10.0), 0);
    assert_int_equal(tk_queue_size(g_q), 0);
    ASSERT_RC(tk_queue_task_done(g_q), TK_ESTATE);
    ASSERT_MSG("task_done() called too many times");
    tk_queue_close(g_q);
    pthread_join(th, NULL);
    tk_queue_free(g_q);
}

static void shared_queue_across_fork(void **state)
{
    (void)state;
    tk_queue *q = tk_queue_new(0, TK_SHARED);
    assert_non_null(q);
    /* pointers cannot cross: TK_ETYPE, and the caller keeps the item */
    tk_args *p = tk_args_of("p", (void *)q);
    ASSERT_RC(tk_queue_put(q, p, 0), TK_ETYPE);
    void *pv;
    ASSERT_RC(tk_args_get_ptr(p, 0, &pv), 0);
    tk_args_free(p);
    tk_queue *back = tk_queue_new(0, TK_SHARED); /* parent -> child */
    int *diag = tk_shm_alloc(4 * sizeof(int));
    char *dmsg = tk_shm_alloc(256);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int bad = 0;
        for (int i = 0; i < 100; i++) {
            tk_args *a = tk_args_of("is", i, "payload");
            int prc = tk_queue_put(q, a, 10.0);
            if (prc != 0) {
                if (!bad) {
                    diag[0] = prc;
                    diag[1] = i;
                    snprintf(dmsg, 256, "%s", tk_last_error());
                }
                tk_args_free(a);
                bad = 1;
            }
        }
        tk_args *a = NULL;
        if (tk_queue_get(back, &a, 10.0) != 0 || item_int(a) != -1)
            bad |= 2;
        tk_args_free(a);
        _exit(bad); /* no feeder thread: nothing is lost */
    }
    for (int i = 0; i < 100; i++) {
        tk_args *a = NULL;
        ASSERT_RC(tk_queue_get(q, &a, 10.0), 0);
        assert_int_equal(item_int(a), i);
        const char *s;
        ASSERT_RC(tk_args_get_str(a, 1, &s), 0);
        assert_string_equal(s, "payload");
        tk_args_free(a);
    }
    ASSERT_RC(tk_queue_put(back, tk_args_of("i", -1), 10.0), 0);
    int crc = child_wait(pid);
    if (crc != 0)
        fail_msg("child: status %d; put #%d returned %d (%s) \"%s\"", crc, diag[1], diag[0],
                 tk_err_name(diag[0]), dmsg);
    tk_shm_free(diag);
    tk_shm_free(dmsg);
    tk_queue_free(back);
    tk_queue_free(q);
}

static void shared_queue_capacity(void **state)
{
    (void)state;
    assert_null(tk_queue_new_ex(0, TK_SHARED, 16));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    tk_queue *q = tk_queue_new_ex(0, TK_SHARED, 4096);
    assert_non_null(q);
    static char big[8192];
    memset(big, 'b', sizeof big);
    tk_args *huge = tk_args_of("y", (const void *)big, sizeof big);
    ASSERT_RC(tk_queue_put(q, huge, 0), TK_EOVERFLOW);
    assert_int_equal(tk_args_len(huge), 1); /* still ours */
    tk_args_free(huge);
    /* fill the buffer: a put then is TK_EFULL when polling */
    int put = 0, rc = 0;
    for (; put < 100; put++) {
        tk_args *a = tk_args_of("y", (const void *)big, (size_t)1000);
        rc = tk_queue_put(q, a, 0);
        if (rc != 0) {
            tk_args_free(a);
            break;
        }
    }
    ASSERT_RC(rc, TK_EFULL);
    assert_true(put >= 2 && put <= 4);
    tk_args *a;
    ASSERT_RC(tk_queue_get(q, &a, 0), 0);
    tk_args_free(a);
    a = tk_args_of("y", (const void *)big, (size_t)1000);
    ASSERT_RC(tk_queue_put(q, a, 0), 0);
    /* bounded by maxsize too */
    tk_queue *q2 = tk_queue_new(1, TK_SHARED);
    ASSERT_RC(tk_queue_put(q2, tk_args_new(), 0), 0);
    tk_args *b = tk_args_new();
    ASSERT_RC(tk_queue_put(q2, b, 0), TK_EFULL);
    tk_args_free(b);
    tk_queue_free(q2);
    tk_queue_free(q);
}

static void shared_queue_close_and_join(void **state)
{
    (void)state;
    tk_queue *q = tk_queue_new(0, TK_SHARED);
    for (int i = 0; i < 3; i++)
        ASSERT_RC(tk_queue_put(q, tk_args_of("i", i), 0), 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int bad = 0;
        tk_args *a;
        for (int i = 0; i < 3; i++) {
            if (tk_queue_get(q, &a, 10.0) != 0)
                bad |= 1;
            tk_args_free(a);
            if (tk_queue_task_done(q) != 0)
                bad |= 2;
        }
        _exit(bad);
    }
    ASSERT_RC(tk_queue_join(q, 10.0), 0);
    assert_int_equal(child_wait(pid), 0);
    ASSERT_RC(tk_queue_close(q), 0);
    tk_args *a = (tk_args *)&a;
    ASSERT_RC(tk_queue_get(q, &a, TK_FOREVER), TK_ECLOSED);
    assert_null(a);
    tk_args *b = tk_args_new();
    ASSERT_RC(tk_queue_put(q, b, 0), TK_ECLOSED);
    tk_args_free(b);
    tk_queue_free(q);
}

/* ------------------------------------------------------------------- pipes */

static void pipe_duplex(void **state)
{
    (void)state;
    tk_conn *a, *b;
    ASSERT_RC(tk_pipe_new(&a, &b, true), 0);
    assert_true(tk_conn_fileno(a) >= 0);
    assert_true(tk_conn_fileno(b) >= 0);
    assert_int_equal(tk_conn_fileno(NULL), -1);
    assert_true(fcntl(tk_conn_fileno(a), F_GETFD) & FD_CLOEXEC);
    ASSERT_RC(tk_conn_poll(b, 0), 0);
    tk_args *m = tk_args_of("isy", 5, "five", "\0\1", (size_t)2);
    ASSERT_RC(tk_conn_send(a, m), 0);
    assert_int_equal(tk_args_len(m), 3); /* the caller keeps its message */
    tk_args_free(m);
    ASSERT_RC(tk_conn_poll(b, 5.0), 1);
    tk_args *r = NULL;
    ASSERT_RC(tk_conn_recv(b, &r, 5.0), 0);
    assert_int_equal(item_int(r), 5);
    tk_args_free(r);
    ASSERT_RC(tk_conn_send(b, NULL), 0); /* NULL: an empty bag */
    ASSERT_RC(tk_conn_recv(a, &r, 5.0), 0);
    assert_int_equal(tk_args_len(r), 0);
    tk_args_free(r);
    r = (tk_args *)&r;
    double t0 = conf_now();
    ASSERT_RC(tk_conn_recv(a, &r, 0.2), TK_ETIMEDOUT);
    assert_true(conf_now() - t0 >= 0.15);
    assert_null(r);
    tk_args *p = tk_args_of("p", (void *)a);
    ASSERT_RC(tk_conn_send(a, p), TK_ETYPE);
    tk_args_free(p);
    tk_conn_close(a);
    tk_conn_close(b);
}

static void pipe_one_way(void **state)
{
    (void)state;
    tk_conn *rd = (tk_conn *)&rd, *wr = (tk_conn *)&wr;
    ASSERT_RC(tk_pipe_new(&rd, &wr, false), 0);
    tk_args *m = tk_args_of("i", 1);
    ASSERT_RC(tk_conn_send(rd, m), TK_EPERM);
    ASSERT_MSG("connection is read-only");
    tk_args *r = (tk_args *)&r;
    ASSERT_RC(tk_conn_recv(wr, &r, 0), TK_EPERM);
    ASSERT_MSG("connection is write-only");
    assert_null(r);
    ASSERT_RC(tk_conn_poll(wr, 0), TK_EPERM);
    ASSERT_RC(tk_conn_send(wr, m), 0);
    ASSERT_RC(tk_conn_recv(rd, &r, 5.0), 0);
    assert_int_equal(item_int(r), 1);
    tk_args_free(r);
    tk_args_free(m);
    tk_conn_close(rd);
    tk_conn_close(wr);
    ASSERT_RC(tk_pipe_new(NULL, &wr, true), TK_EINVAL);
}

static void pipe_eof_and_no_sigpipe(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would kill this program */
    tk_conn *a, *b;
    ASSERT_RC(tk_pipe_new(&a, &b, true), 0);
    ASSERT_RC(tk_conn_send(b, NULL), 0);
    tk_conn_close(b);
    tk_args *r = NULL;
    ASSERT_RC(tk_conn_recv(a, &r, 5.0), 0); /* what was sent before still arrives */
    tk_args_free(r);
    ASSERT_RC(tk_conn_poll(a, 0), 1); /* EOF is "readable" */
    r = (tk_args *)&r;
    ASSERT_RC(tk_conn_recv(a, &r, 5.0), TK_ECLOSED);
    assert_null(r);
    ASSERT_RC(tk_conn_recv(a, &r, TK_FOREVER), TK_ECLOSED);
    tk_args *m = tk_args_of("s", "into the void");
    ASSERT_RC(tk_conn_send(a, m), TK_ECLOSED);
    ASSERT_RC(tk_conn_send(a, m), TK_ECLOSED);
    tk_args_free(m);
    tk_conn_close(a);

    /* one-way, reader gone */
    tk_conn *rd, *wr;
    ASSERT_RC(tk_pipe_new(&rd, &wr, false), 0);
    tk_conn_close(rd);
    m = tk_args_of("i", 1);
    ASSERT_RC(tk_conn_send(wr, m), TK_ECLOSED);
    tk_args_free(m);
    tk_conn_close(wr);
}

struct big_reader {
    tk_conn *c;
    size_t got;
    int rc;
};
static void *read_big(void *arg)
{
    struct big_reader *br = arg;
    tk_args *r = NULL;
    br->rc = tk_conn_recv(br->c, &r, 20.0);
    const void *y;
    size_t n = 0;
    if (br->rc == 0 && tk_args_get_bytes(r, 0, &y, &n) == 0)
        br->got = n;
    tk_args_free(r);
    return NULL;
}

static void pipe_large_message_and_fork(void **state)
{
    (void)state;
    tk_conn *a, *b;
    ASSERT_RC(tk_pipe_new(&a, &b, false), 0);
    size_t sz = 3 * 1024 * 1024;
    char *big = calloc(1, sz);
    struct big_reader br = {a, 0, -1};
    pthread_t th;
    pthread_create(&th, NULL, read_big, &br);
    tk_args *m = tk_args_of("y", (const void *)big, sz);
    ASSERT_RC(tk_conn_send(b, m), 0);
    tk_args_free(m);
    pthread_join(th, NULL);
    ASSERT_RC(br.rc, 0);
    assert_int_equal(br.got, sz);
    free(big);

    /* across fork: the child sends, the parent receives */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        tk_conn_close(a);
        tk_args *x = tk_args_of("is", 77, "from child");
        int rc = tk_conn_send(b, x);
        tk_args_free(x);
        _exit(rc == 0 ? 0 : 1);
    }
    tk_conn_close(b);
    tk_args *r = NULL;
    ASSERT_RC(tk_conn_recv(a, &r, 10.0), 0);
    assert_int_equal(item_int(r), 77);
    tk_args_free(r);
    assert_int_equal(child_wait(pid), 0);
    /* the child's end is gone everywhere now: EOF */
    ASSERT_RC(tk_conn_recv(a, &r, 5.0), TK_ECLOSED);
    tk_conn_close(a);
}

int main(void)
{
    CONF_MAIN_GUARD();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fifo_size_and_identity),
        cmocka_unit_test(maxsize_and_failed_put),
        cmocka_unit_test(close_semantics),
        cmocka_unit_test(task_done_and_join),
        cmocka_unit_test(shared_queue_across_fork),
        cmocka_unit_test(shared_queue_capacity),
        cmocka_unit_test(shared_queue_close_and_join),
        cmocka_unit_test(pipe_duplex),
        cmocka_unit_test(pipe_one_way),
        cmocka_unit_test(pipe_eof_and_no_sigpipe),
        cmocka_unit_test(pipe_large_message_and_fork),
    };
    return cmocka_run_group_tests_name("conformance: §6 queues and pipes", tests, NULL, NULL);
}
