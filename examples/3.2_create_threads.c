/*
 * 3.2 Multitasking with threads.
 *   "Import the threading module. Create a thread object:
 *    t = threading.Thread(target=<task>). Start it: t.start()."
 *
 * sing and dance run at the same time in two threads of this process:
 * their lines interleave in an order the scheduler decides (see 3.4).
 */
#include <stdio.h>
#include <taskkit.h>

static int sing(const tk_args *args, const tk_kwargs *kwargs)
{
    (void)args;
    (void)kwargs;
    for (int i = 1; i <= 3; i++) {
        printf("sing %d/3\n", i);
        tk_sleep(0.1);
    }
    return 0;
}

static int dance(const tk_args *args, const tk_kwargs *kwargs)
{
    (void)args;
    (void)kwargs;
    for (int i = 1; i <= 3; i++) {
        printf("dance %d/3\n", i);
        tk_sleep(0.1);
    }
    return 0;
}

int main(void)
{
    printf("== 3.2 Multitasking with threads: create and start ==\n");
    /* sing_thread = threading.Thread(target=sing), and the same for dance */
    tk_thread *s = tk_thread_new(sing, NULL, NULL);
    tk_thread *d = tk_thread_new(dance, NULL, NULL);
    if (!s || !d || tk_thread_start(s) < 0 || tk_thread_start(d) < 0) {
        fprintf(stderr, "error: %s\n", tk_last_error());
        return 1;
    }
    tk_thread_join(s, TK_FOREVER);
    tk_thread_join(d, TK_FOREVER);
    printf("main: both threads finished\n");
    tk_thread_free(s);
    tk_thread_free(d);
    return 0;
}
