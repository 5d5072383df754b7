/*
 * 2.2 Creating a process.
 *   "Create a process object from the Process class:
 *    p = multiprocessing.Process(target=<function to run>, name=<process name>)
 *    Start it: p.start()."
 *
 * In C: tk_process_new(target, args, kwargs) creates the object (nothing
 * runs yet: no pid, not alive), tk_process_set_name() gives it a name,
 * tk_process_start() forks the child that runs the target, and
 * tk_process_join() waits for it.
 */
#include <stdio.h>
#include <taskkit.h>

/* The target: every target has this signature (its arguments come in two
 * bags, see 2.3); its return value is the child's exit code. */
static int coding(const tk_args *args, const tk_kwargs *kwargs)
{
    (void)args;
    (void)kwargs;
    const char *me = tk_process_name(tk_current_process());
    for (int i = 1; i <= 3; i++) {
        printf("%s: coding %d/3\n", me, i);
        tk_sleep(0.1);
    }
    return 0;
}

int main(void)
{
    printf("== 2.2 Creating a process: target, name, start ==\n");
    /* Process(target=coding, name="coder") */
    tk_process *p = tk_process_new(coding, NULL, NULL);
    if (!p || tk_process_set_name(p, "coder") < 0) {
        fprintf(stderr, "error: %s\n", tk_last_error());
        return 1;
    }
    printf("main: created '%s': pid %d, alive %s\n", tk_process_name(p),
           (int)tk_process_pid(p), tk_process_is_alive(p) ? "yes" : "no");
    if (tk_process_start(p) < 0 || tk_process_join(p, TK_FOREVER) < 0) {
        fprintf(stderr, "error: %s\n", tk_last_error());
        return 1;
    }
    printf("main: joined '%s': exitcode %d, alive %s\n", tk_process_name(p),
           tk_process_exitcode(p), tk_process_is_alive(p) ? "yes" : "no");
    tk_process_free(p);
    return 0;
}
