/*
 * 2.6 Which ends first, main or child.
 *   "The main process waits for all its children to finish before it ends.
 *    Daemon: when the main process ends, a daemonic child is destroyed at
 *    once and runs no further: work_process.daemon = True.
 *    The other way: kill the child before the main process exits:
 *    work_process.terminate()."
 *
 * What "the main process ends" runs is libtaskkit's end-of-program
 * procedure, tk_shutdown(): exit() calls it (atexit), and it joins the
 * children and terminates the daemonic ones (SIGTERM, exitcode -15). Here
 * main calls it itself, so that it can still print what it did.
 */
#include <stdio.h>
#include <taskkit.h>

static tk_event *go;   /* TK_SHARED: set by main, seen by the child */
static int *progress;  /* tk_shm_alloc: the daemon's work, seen by main */

static int worker(const tk_args *args, const tk_kwargs *kwargs)
{
    (void)args;
    (void)kwargs;
    tk_event_wait(go, TK_FOREVER); /* so that main's line comes first */
    tk_sleep(0.2);
    printf("worker: finished\n");
    return 0;
}

static int long_work(const tk_args *args, const tk_kwargs *kwargs)
{
    (void)args;
    (void)kwargs;
    for (int i = 0; i < 100; i++) { /* 10 s of work */
        (*progress)++;
        tk_sleep(0.1);
    }
    return 0;
}

static tk_process *start(tk_target target, bool daemon)
{
    tk_process *p = tk_process_new(target, NULL, NULL);
    if (!p || tk_process_set_daemon(p, daemon) < 0 || tk_process_start(p) < 0) {
        fprintf(stderr, "error: %s\n", tk_last_error());
        return NULL;
    }
    return p;
}

int main(void)
{
    printf("== 2.6 Which ends first: the main process or a child ==\n");
    go = tk_event_new(TK_SHARED);
    progress = tk_shm_alloc(sizeof *progress);
    if (!go || !progress)
        return 1;

    printf("-- 1. the end of the program waits for its (non-daemonic) children\n");
    tk_process *w = start(worker, false);
    if (!w)
        return 1;
    printf("main: my work is done\n");
    fflush(stdout);
    tk_event_set(go);
    tk_shutdown(); /* what exit() would do now: waits for the worker */
    printf("main: exit waited for the worker: exitcode %d\n", tk_process_exitcode(w));

    printf("-- 2. a daemonic child is destroyed when the main process ends\n");
    tk_process *d = start(long_work, true);
    if (!d)
        return 1;
    tk_sleep(0.3);
    tk_shutdown(); /* again what exit() would do: SIGTERM to the daemon */
    printf("main: at exit the daemon was terminated: exitcode %d\n", tk_process_exitcode(d));
    int seen = *progress;
    tk_sleep(0.3);
    printf("main: the daemon ran no further after exit: %s\n", seen == *progress ? "yes" : "no");

    printf("-- 3. or terminate the child before the main process exits\n");
    tk_process *t = start(long_work, false);
    if (!t)
        return 1;
    tk_sleep(0.2);
    tk_process_terminate(t);
    tk_process_join(t, TK_FOREVER);
    printf("main: terminate() before exit: exitcode %d\n", tk_process_exitcode(t));

    tk_process_free(w);
    tk_process_free(d);
    tk_process_free(t);
    tk_event_free(go);
    tk_shm_free(progress);
    return 0;
}
