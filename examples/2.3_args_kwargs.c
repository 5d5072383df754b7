/*
 * 2.3 Passing arguments to the task.
 *   "args: pass arguments as a tuple, e.g. Process(target=coding, args=(3,)).
 *    kwargs: pass arguments as a dict, e.g. Process(target=coding, kwargs={"num": 3})."
 *
 * In C the tuple is a tk_args bag, the dict a tk_kwargs bag; the target
 * binds both to its parameters with one tk_bind() call, as Python binds
 * coding(num, name=None). The three calls below print the same thing.
 */
#include <stdio.h>
#include <taskkit.h>

/* def coding(num, name=None) */
static int coding(const tk_args *args, const tk_kwargs *kwargs)
{
    int num;
    const char *name = NULL; /* the default, None */
    if (tk_bind(args, kwargs, "coding(num:i, name:z=)", &num, &name) < 0)
        return -1; /* the runtime reports tk_last_error(), like a traceback */
    if (name)
        printf("coding(num=%d, name='%s')\n", num, name);
    else
        printf("coding(num=%d, name=None)\n", num);
    for (int i = 1; i <= num; i++)
        printf("coding: line %d of %d\n", i, num);
    return 0;
}

/* Prints how Python would spell the call, then runs it in a child. The
 * process takes the bags (also if it fails), so nothing leaks here. */
static int run(const char *python, tk_args *args, tk_kwargs *kwargs)
{
    printf("%-39s -> ", python);
    fflush(stdout); /* our half line first, the child's second half after it */
    tk_process *p = tk_process_new(coding, args, kwargs);
    int r = p ? tk_process_start(p) : -1;
    if (r == 0)
        r = tk_process_join(p, TK_FOREVER);
    if (r < 0)
        fprintf(stderr, "error: %s\n", tk_last_error());
    tk_process_free(p);
    return r;
}

int main(void)
{
    printf("== 2.3 Passing arguments to a process: args tuple and kwargs dict ==\n");
    if (run("args=(3,)", tk_args_of("i", 3), NULL) < 0 ||
        run("kwargs={\"num\": 3}", NULL, tk_kwargs_of("num:i", 3)) < 0 ||
        run("args=(3,), kwargs={\"name\": \"xiaoming\"}", tk_args_of("i", 3),
            tk_kwargs_of("name:s", "xiaoming")) < 0)
        return 1;
    return 0;
}
