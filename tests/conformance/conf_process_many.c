/* §3 descriptors: one per live child, so 500 live children work under
 * RLIMIT_NOFILE 1024. Its own program: forking 500 children is slow on a
 * loaded machine. */
#include "conf.h"

#include <dirent.h>
#include <sys/resource.h>

static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static int wait_shared_event(const tk_args *a, const tk_kwargs *k)
{
    (void)k;
    void *e = NULL;
    tk_args_get_ptr(a, 0, &e);
    return tk_event_wait(e, TK_FOREVER) == 0 ? 0 : 1;
}

static void many_children_few_fds(void **state)
{
    (void)state;
    enum { N = 500 };
    struct rlimit old, rl;
    getrlimit(RLIMIT_NOFILE, &old);
    rl = old;
    if (rl.rlim_cur > 1024)
        rl.rlim_cur = 1024;
    setrlimit(RLIMIT_NOFILE, &rl);
    tk_event *e = tk_event_new(TK_SHARED);
    assert_non_null(e);
    static tk_process *ps[N];
    int started = 0, rc = 0;
    for (; started < N; started++) {
        ps[started] = tk_process_new(wait_shared_event, tk_args_of("p", (void *)e), NULL);
        rc = tk_process_start(ps[started]);
        if (rc != 0) {
            tk_process_free(ps[started]);
            break;
        }
    }
    tk_event_set(e);
    int bad = 0;
    for (int i = 0; i < started; i++) {
        if (tk_process_join(ps[i], 60.0) != 0 || tk_process_exitcode(ps[i]) != 0)
            bad++;
        tk_process_free(ps[i]);
    }
    tk_event_free(e);
    setrlimit(RLIMIT_NOFILE, &old);
    if (started != N)
        fail_msg("only %d children started under RLIMIT_NOFILE 1024: %d (%s) %s", started,
                 rc, tk_err_name(rc), tk_last_error());
    assert_int_equal(bad, 0);
}

static void one_descriptor_per_child(void **state)
{
    (void)state;
    enum { N = 40 };
    tk_event *e = tk_event_new(TK_SHARED);
    tk_process *ps[N];
    int before = count_fds();
    for (int i = 0; i < N; i++) {
        ps[i] = tk_process_new(wait_shared_event, tk_args_of("p", (void *)e), NULL);
        ASSERT_RC(tk_process_start(ps[i]), 0);
    }
    int during = count_fds();
    tk_event_set(e);
    for (int i = 0; i < N; i++) {
        ASSERT_RC(tk_process_join(ps[i], 60.0), 0);
        assert_int_equal(tk_process_exitcode(ps[i]), 0);
    }
    int after = count_fds();
    for (int i = 0; i < N; i++)
        tk_process_free(ps[i]);
    tk_event_free(e);
    if (during - before > N + 4)
        fail_msg("%d live children hold %d descriptors", N, during - before);
    /* closed when reaped */
    if (after - before > 4)
        fail_msg("%d descriptors still open after reaping", after - before);
}

int main(void)
{
    CONF_MAIN_GUARD();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_descriptor_per_child),
        cmocka_unit_test(many_children_few_fds),
    };
    return cmocka_run_group_tests_name("conformance: §3 500 children", tests, NULL, NULL);
}
