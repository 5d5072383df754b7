/*
 * 2.1 What a process is.
 *   "Running a program creates one process by default, the main process;
 *    the processes it creates are child processes."
 *
 * The main process is "MainProcess" and has no parent process (in the
 * libtaskkit sense); the child it starts gets a default name, "Process-1",
 * its own pid, and knows its parent.
 */
#include <stdio.h>
#include <unistd.h>
#include <taskkit.h>

static int child(const tk_args *args, const tk_kwargs *kwargs)
{
    (void)args;
    (void)kwargs;
    printf("child: I am %s (pid %d), child of %s\n", tk_process_name(tk_current_process()),
           (int)getpid(), tk_process_name(tk_parent_process()));
    return 0;
}

int main(void)
{
    printf("== 2.1 What a process is: the main process and its children ==\n");
    printf("main: I am %s (pid %d), %s\n", tk_process_name(tk_current_process()),
           (int)getpid(), tk_parent_process() ? "with a parent?" : "with no parent process");
    tk_process *p = tk_process_new(child, NULL, NULL);
    if (!p || tk_process_start(p) < 0 || tk_process_join(p, TK_FOREVER) < 0) {
        fprintf(stderr, "error: %s\n", tk_last_error());
        return 1;
    }
    printf("main: %s ended with exitcode %d\n", tk_process_name(p), tk_process_exitcode(p));
    tk_process_free(p);
    return 0;
}
