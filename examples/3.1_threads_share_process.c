/*
 * 3.1 What a thread is.
 *   "A process is the container of threads: every process has at least one
 *    thread running its program, and a thread shares all the resources its
 *    process owns with the other threads of that process."
 *
 * Two threads report the same pid as the main thread (one process) but
 * their own kernel thread ids; both see the variable main set, and both
 * changes to it are seen by main: one memory for all three.
 */
#include <stdio.h>
#include <unistd.h>
#include <taskkit.h>

static int shared = 42;    /* one variable, the same for every thread */
static tk_lock *lock;      /* guards `shared` once the threads change it */
static tk_barrier *both;   /* keeps both threads alive at the same time */

struct report {
    int pid;
    long native_id;
    int seen;
};

static int look(const tk_args *args, const tk_kwargs *kwargs)
{
    struct report *r;
    if (tk_bind(args, kwargs, "look(report:p)", &r) < 0)
        return -1;
    r->pid = (int)getpid();
    r->native_id = tk_thread_native_id(tk_current_thread());
    r->seen = shared;                   /* read before anyone changes it */
    tk_barrier_wait(both, TK_FOREVER);
    tk_lock_acquire(lock, TK_FOREVER);
    shared += 1;
    tk_lock_release(lock);
    return 0;
}

int main(void)
{
    printf("== 3.1 What a thread is: threads share their process ==\n");
    printf("%s: pid %d, native id %ld\n", tk_thread_name(tk_current_thread()), (int)getpid(),
           tk_thread_native_id(tk_current_thread()));
    lock = tk_lock_new(0);
    both = tk_barrier_new(2, 0);
    struct report rep[2];
    tk_thread *t[2];
    for (int i = 0; i < 2; i++) {
        t[i] = tk_thread_new(look, tk_args_of("p", (void *)&rep[i]), NULL);
        if (!lock || !both || !t[i] || tk_thread_start(t[i]) < 0) {
            fprintf(stderr, "error: %s\n", tk_last_error());
            return 1;
        }
    }
    for (int i = 0; i < 2; i++) {
        tk_thread_join(t[i], TK_FOREVER);
        printf("%s: pid %d, native id %ld, sees shared = %d\n", tk_thread_name(t[i]),
               rep[i].pid, rep[i].native_id, rep[i].seen);
        tk_thread_free(t[i]);
    }
    printf("main: shared = %d (each thread added 1)\n", shared);
    tk_barrier_free(both);
    tk_lock_free(lock);
    return 0;
}
