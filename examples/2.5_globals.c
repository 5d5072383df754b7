/*
 * 2.5 Processes do not share global variables.
 *   "Why: creating a child copies the main process's resources into a new
 *    process; main and child are independent of each other."
 *
 * add_data (a child) fills a list; read_data (another child) and the main
 * process still see it empty: each child changed its own copy. Memory from
 * tk_shm_alloc() is the exception: it is mapped, not copied, into children
 * forked after the allocation, so there all three see the change.
 */
#include <stdio.h>
#include <taskkit.h>

struct list {
    int len;
    int items[5];
};

static struct list g_list; /* a global: every process gets its own copy */

static void print_list(const char *who, const char *name, const struct list *l)
{
    printf("%s: %s = [", who, name);
    for (int i = 0; i < l->len; i++)
        printf(i ? ", %d" : "%d", l->items[i]);
    printf("]\n");
}

static int add_data(const tk_args *args, const tk_kwargs *kwargs)
{
    struct list *l;
    const char *name;
    if (tk_bind(args, kwargs, "add_data(list:p, name:s)", &l, &name) < 0)
        return -1;
    for (int i = 0; i < 5; i++)
        l->items[l->len++] = i;
    print_list("add_data", name, l);
    return 0;
}

static int read_data(const tk_args *args, const tk_kwargs *kwargs)
{
    struct list *l;
    const char *name;
    if (tk_bind(args, kwargs, "read_data(list:p, name:s)", &l, &name) < 0)
        return -1;
    print_list("read_data", name, l);
    return 0;
}

/* Runs add_data, then read_data, each in its own child, one after the other. */
static int demo(struct list *l, const char *name)
{
    tk_target targets[2] = {add_data, read_data};
    for (int i = 0; i < 2; i++) {
        tk_process *p = tk_process_new(targets[i], tk_args_of("ps", (void *)l, name), NULL);
        if (!p || tk_process_start(p) < 0 || tk_process_join(p, TK_FOREVER) < 0) {
            fprintf(stderr, "error: %s\n", tk_last_error());
            return -1;
        }
        tk_process_free(p);
    }
    print_list("main", name, l);
    return 0;
}

int main(void)
{
    printf("== 2.5 Processes do not share global variables ==\n");
    if (demo(&g_list, "g_list") < 0)
        return 1;
    printf("-- the same with memory from tk_shm_alloc(), shared with forked children:\n");
    struct list *shared = tk_shm_alloc(sizeof *shared);
    if (!shared || demo(shared, "shared") < 0)
        return 1;
    tk_shm_free(shared);
    return 0;
}
