/*
 * memory.c - the allocation functions every module uses.
 *
 * One funnel for allocations gives one place to report TK_ENOMEM and one
 * place for the tests' fault injection (fail the n-th allocation), so every
 * allocation point in the library can be proven to fail cleanly.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static atomic_long fault_countdown; /* 0: off; n: the n-th allocation fails */
static atomic_long fault_allocs;

void tk__fault_set(long n)
{
    atomic_store(&fault_allocs, 0);
    atomic_store(&fault_countdown, n > 0 ? n : 0);
}

long tk__fault_allocs(void)
{
    return atomic_load(&fault_allocs);
}

/* True when this allocation must fail. Costs one relaxed load when off. */
static bool fault_now(void)
{
    if (atomic_load_explicit(&fault_countdown, memory_order_relaxed) == 0)
        return false;
    atomic_fetch_add(&fault_allocs, 1);
    long left = atomic_fetch_sub(&fault_countdown, 1);
    if (left == 1)
        return true;
    if (left <= 0) /* raced past zero: undo and leave it off */
        atomic_store(&fault_countdown, 0);
    return false;
}

static void *oom(void)
{
    tk__error(TK_ENOMEM, "out of memory");
    return NULL;
}

void *tk__malloc(size_t n)
{
    void *p = fault_now() ? NULL : malloc(n ? n : 1);
    return p ? p : oom();
}

void *tk__calloc(size_t count, size_t size)
{
    void *p = fault_now() ? NULL : calloc(count ? count : 1, size ? size : 1);
    return p ? p : oom();
}

void *tk__realloc(void *old, size_t n)
{
    void *p = fault_now() ? NULL : realloc(old, n ? n : 1);
    return p ? p : oom();
}

char *tk__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = tk__malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

void tk__free(void *p)
{
    free(p);
}
