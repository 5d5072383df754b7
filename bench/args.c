/*
 * bench/args.c - argument bags: build, bind, free.
 *
 * One operation hands (i, "name") to a target and unpacks it there. The
 * libtaskkit side builds tk_args_of("is"), binds it with tk_bind and frees
 * it; the hand-written C side mallocs a struct, strdups the string, reads the
 * fields and frees both; Python builds the tuple and calls coding(*args)
 * (bench/peers.py "args"). Allocations per call are counted through the
 * library's allocation hook (lib/internal.h, linked from the static archive).
 */
#include <limits.h>
#include <taskkit.h>

#include "../lib/internal.h"
#include "harness.h"
#include "modules.h"

#define HAVE_TK BENCH_HAVE_ARGS

static volatile long sink;

struct coding_args {
    int num;
    char *name;
};

static void raw_call(void *ctx, long n)
{
    (void)ctx;
    for (long i = 0; i < n; i++) {
        struct coding_args *a = malloc(sizeof *a);
        if (a == NULL || (a->name = strdup("name")) == NULL)
            bh_die("out of memory");
        a->num = (int)i;
        sink += a->num + a->name[0]; /* the target reads both */
        free(a->name);
        free(a);
    }
}

#if HAVE_TK
static void tk_call(void *ctx, long n)
{
    (void)ctx;
    for (long i = 0; i < n; i++) {
        tk_args *a = tk_args_of("is", (int)i, "name");
        int num = 0;
        const char *name = NULL;
        if (a == NULL || tk_bind(a, NULL, "coding(num:i, name:s)", &num, &name) < 0)
            bh_die(tk_last_error());
        sink += num + name[0];
        tk_args_free(a);
    }
}
#endif

int main(void)
{
    bh_init("args");
    struct bh_side sides[] = {
#if HAVE_TK
        {.impl = "libtaskkit", .body = tk_call},
#else
        {.impl = "libtaskkit"},
#endif
        {.impl = "malloc'd struct + strdup", .body = raw_call},
        {.impl = "Python coding(*args)", .peer = "py args"},
    };
    bh_section("Argument bags");
    bh_row("tk_args_of(\"is\") + tk_bind + free", sides, 3);

    /* Allocations are deterministic: one pass of 1000 calls is the figure. */
    double allocs[2][BH_MAX_ROUNDS];
    const char *impls[] = {"libtaskkit", "malloc'd struct + strdup"};
    for (int r = 0; r < bh.rounds; r++) {
#if HAVE_TK
        tk__fault_set(LONG_MAX);
        tk_call(NULL, 1000);
        allocs[0][r] = tk__fault_allocs() / 1000.0;
        tk__fault_set(0);
#else
        allocs[0][r] = 0;
#endif
        allocs[1][r] = 2; /* the struct and the string, by construction */
    }
    bh_value_row("allocations per call", BH_COUNT, impls, 2, bh.rounds, allocs,
                 HAVE_TK ? NULL : "not built yet");
    return bh_finish();
}
