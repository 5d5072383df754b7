/*
 * 3.4 Threads run in no fixed order.
 *   "Which thread runs first is decided by the CPU scheduler, not by
 *    creation order. current_thread() gives the running thread's information."
 *
 * Five threads, created and started in order, wait for one starting signal
 * and then note their name (tk_current_thread()) in a shared list. Five runs
 * show in which order they got there; it usually varies from run to run.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <taskkit.h>

#define N 5
static const char *arrived[N]; /* names, in arrival order */
static atomic_int n_arrived;
static tk_event *go;

static int task(const tk_args *args, const tk_kwargs *kwargs)
{
    (void)args;
    (void)kwargs;
    tk_event_wait(go, TK_FOREVER);
    arrived[atomic_fetch_add(&n_arrived, 1)] = tk_thread_name(tk_current_thread());
    return 0;
}

int main(void)
{
    printf("== 3.4 Threads run in no fixed order ==\n");
    printf("created in the order: worker-1 worker-2 worker-3 worker-4 worker-5\n");
    char orders[N][64];
    int different = 0;
    for (int run = 0; run < 5; run++) {
        tk_thread *t[N];
        go = tk_event_new(0);
        atomic_store(&n_arrived, 0);
        for (int i = 0; i < N; i++) {
            char name[32];
            snprintf(name, sizeof name, "worker-%d", i + 1);
            t[i] = tk_thread_new(task, NULL, NULL);
            if (!go || !t[i] || tk_thread_set_name(t[i], name) < 0 || tk_thread_start(t[i]) < 0) {
                fprintf(stderr, "error: %s\n", tk_last_error());
                return 1;
            }
        }
        tk_event_set(go); /* all at once: the scheduler picks the order */
        for (int i = 0; i < N; i++)
            tk_thread_join(t[i], TK_FOREVER);
        snprintf(orders[run], sizeof orders[run], "%s %s %s %s %s", arrived[0], arrived[1],
                 arrived[2], arrived[3], arrived[4]);
        printf("run %d: %s\n", run + 1, orders[run]);
        int seen = 0;
        for (int j = 0; j < run; j++)
            seen |= strcmp(orders[j], orders[run]) == 0;
        different += !seen;
        for (int i = 0; i < N; i++)
            tk_thread_free(t[i]);
        tk_event_free(go);
    }
    printf("different orders seen in 5 runs: %d%s\n", different,
           different == 1 ? " (this time the scheduler kept one order)" : "");
    return 0;
}
