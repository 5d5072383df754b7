/*
 * 3.3 Which ends first, main thread or child thread.
 *   "By default the main thread waits for all child threads to finish.
 *    To change that, first way: make it a daemon: work_thread.daemon = True.
 *    Second way: kill the child after the main work is done: terminate()."
 *
 * There is no terminate for threads, in Python or here: a thread killed
 * from outside would die in the middle of whatever it was doing, holding
 * locks nobody would ever release and leaving shared data half-updated, in
 * a process that goes on running. So a thread is asked to stop instead:
 * tk_thread_stop() sets a flag the target polls with tk_stop_requested()
 * and wakes it out of blocking waits (tk_sleep returns TK_ECANCELED); the
 * thread then cleans up and returns. At exit, non-daemon threads are joined
 * and daemon threads are abandoned (they end with the process).
 */
#include <stdio.h>
#include <time.h>
#include <taskkit.h>

static tk_event *main_returned;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int worker(const tk_args *args, const tk_kwargs *kwargs)
{
    (void)args;
    (void)kwargs;
    while (!tk_stop_requested())
        tk_sleep(0.05); /* a round of work */
    printf("worker: stop requested, cleaning up\n");
    return 0;
}

static int sleeper(const tk_args *args, const tk_kwargs *kwargs)
{
    (void)args;
    (void)kwargs;
    double t0 = now();
    int r = tk_sleep(10);
    printf("sleeper: tk_sleep(10) returned %s after %.2f s\n", tk_err_name(r), now() - t0);
    return 0;
}

static int late(const tk_args *args, const tk_kwargs *kwargs)
{
    (void)args;
    (void)kwargs;
    tk_event_wait(main_returned, TK_FOREVER);
    tk_sleep(0.2);
    printf("%s (non-daemon): finished after main() returned\n",
           tk_thread_name(tk_current_thread()));
    return 0;
}

static int forever(const tk_args *args, const tk_kwargs *kwargs)
{
    (void)args;
    (void)kwargs;
    for (;;)
        tk_sleep(0.05);
    return 0;
}

static tk_thread *start(tk_target target, bool daemon)
{
    tk_thread *t = tk_thread_new(target, NULL, NULL);
    if (!t || tk_thread_set_daemon(t, daemon) < 0 || tk_thread_start(t) < 0) {
        fprintf(stderr, "error: %s\n", tk_last_error());
        return NULL;
    }
    return t;
}

/* Asks t to stop after `after` seconds and waits for it. */
static void stop_after(tk_thread *t, double after)
{
    tk_sleep(after);
    tk_thread_stop(t);
    tk_thread_join(t, TK_FOREVER);
}

int main(void)
{
    printf("== 3.3 Which ends first: the main thread or a child thread ==\n");
    printf("-- a cooperative stop instead of terminate()\n");
    tk_thread *w = start(worker, false);
    if (!w)
        return 1;
    stop_after(w, 0.2);
    printf("main: stopped worker: result %d, alive %s\n", tk_thread_result(w),
           tk_thread_is_alive(w) ? "yes" : "no");
    tk_thread *s = start(sleeper, false);
    if (!s)
        return 1;
    stop_after(s, 0.1);
    tk_thread_free(w);
    tk_thread_free(s);

    printf("-- at exit: non-daemon threads are waited for, daemon threads abandoned\n");
    main_returned = tk_event_new(0);
    tk_thread *n = main_returned ? start(late, false) : NULL, *d = start(forever, true);
    if (!n || !d)
        return 1;
    printf("main: started %s (daemon: no) and %s (daemon: yes, loops forever)\n",
           tk_thread_name(n), tk_thread_name(d));
    tk_thread_free(n); /* detached: still joined at exit */
    tk_thread_free(d);
    printf("main: returning from main()\n");
    fflush(stdout);
    tk_event_set(main_returned);
    return 0;
}
