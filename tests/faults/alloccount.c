/* alloccount.c - see alloccount.h. Linked only into the programs built with
 * the --wrap flags (it refers to the __real_* symbols the linker makes). */
#include "faults/alloccount.h"

#include <stdatomic.h>
#include <stddef.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t c, size_t n);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t c, size_t n);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);

static atomic_long live_blocks;

long tt_live_blocks(void)
{
    return atomic_load(&live_blocks);
}

void *__wrap_malloc(size_t n)
{
    void *p = __real_malloc(n);
    if (p)
        atomic_fetch_add(&live_blocks, 1);
    return p;
}

void *__wrap_calloc(size_t c, size_t n)
{
    void *p = __real_calloc(c, n);
    if (p)
        atomic_fetch_add(&live_blocks, 1);
    return p;
}

void *__wrap_realloc(void *p, size_t n)
{
    void *q = __real_realloc(p, n);
    if (q && !p)
        atomic_fetch_add(&live_blocks, 1);
    else if (!q && p && n == 0)
        atomic_fetch_sub(&live_blocks, 1);
    return q;
}

void __wrap_free(void *p)
{
    if (p)
        atomic_fetch_sub(&live_blocks, 1);
    __real_free(p);
}
