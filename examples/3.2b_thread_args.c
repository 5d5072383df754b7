/*
 * 3.2b Passing arguments to a thread's task (numbered 3.2 again in the notes).
 *   "The same two parameters as for processes: args and kwargs. Tuple
 *    arguments must follow the order of the function's parameters. Dict keys
 *    must match the parameter names."
 *
 * tk_bind() enforces both rules as Python does, with CPython's messages: a
 * tuple in the wrong order gives a value of the wrong type, a wrong key an
 * unexpected keyword argument. A target that returns a negative value is
 * reported on stderr like an uncaught exception ("Exception in thread ...").
 */
#include <stdio.h>
#include <taskkit.h>

/* def sing(num, name) */
static int sing(const tk_args *args, const tk_kwargs *kwargs)
{
    int num;
    const char *name;
    int r = tk_bind(args, kwargs, "sing(num:i, name:s)", &num, &name);
    if (r < 0) {
        printf("%s: %s\n", tk_err_name(r), tk_last_error());
        return r;
    }
    printf("sing(num=%d, name='%s')\n", num, name);
    return 0;
}

/* Prints the call as Python spells it, then runs it in a thread. */
static void run(const char *python, tk_args *args, tk_kwargs *kwargs)
{
    printf("%-40s -> ", python);
    tk_thread *t = tk_thread_new(sing, args, kwargs); /* takes both bags */
    if (!t || tk_thread_start(t) < 0)
        fprintf(stderr, "error: %s\n", tk_last_error());
    else
        tk_thread_join(t, TK_FOREVER); /* one at a time: lines stay in order */
    tk_thread_free(t);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep stdout and stderr lines in order */
    printf("== 3.2b Passing arguments to a thread: order and names must match ==\n");
    run("args=(3, \"xiaoming\")", tk_args_of("is", 3, "xiaoming"), NULL);
    run("kwargs={\"name\": \"xiaoming\", \"num\": 3}", NULL,
        tk_kwargs_of("name:s, num:i", "xiaoming", 3));
    printf("-- and what goes wrong:\n");
    run("args=(\"xiaoming\", 3)", tk_args_of("si", "xiaoming", 3), NULL);
    run("kwargs={\"nmu\": 3}", NULL, tk_kwargs_of("nmu:i", 3));
    return 0;
}
