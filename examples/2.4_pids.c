/*
 * 2.4 Process ids.
 *   "Every process has its own id. Current process id: getpid().
 *    Parent process id: getppid()."
 *
 * The same two calls in C (unistd.h). Each child's parent id is the main
 * process's id, and the main process sees the children's ids through
 * tk_process_pid().
 */
#include <stdio.h>
#include <unistd.h>
#include <taskkit.h>

static int show_ids(const tk_args *args, const tk_kwargs *kwargs)
{
    (void)args;
    (void)kwargs;
    printf("%s: pid=%d ppid=%d\n", tk_process_name(tk_current_process()), (int)getpid(),
           (int)getppid());
    return 0;
}

int main(void)
{
    printf("== 2.4 Process ids: getpid() and getppid() ==\n");
    show_ids(NULL, NULL); /* the main process itself */
    tk_process *p[2];
    for (int i = 0; i < 2; i++) {
        /* One after the other, so that their lines come in order. */
        p[i] = tk_process_new(show_ids, NULL, NULL);
        if (!p[i] || tk_process_start(p[i]) < 0 || tk_process_join(p[i], TK_FOREVER) < 0) {
            fprintf(stderr, "error: %s\n", tk_last_error());
            return 1;
        }
    }
    printf("main: tk_process_pid() gives %d and %d\n", (int)tk_process_pid(p[0]),
           (int)tk_process_pid(p[1]));
    tk_process_free(p[0]);
    tk_process_free(p[1]);
    return 0;
}
