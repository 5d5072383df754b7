/*
 * alloccount.h - live heap blocks, counted by wrapping the allocator at
 * link time (-Wl,--wrap=malloc,calloc,realloc,free; see mk/reliability.mk).
 * Only references from the test program and the static archive are
 * wrapped, so the count is the library's and the test's own blocks: the
 * fault-injection sweeps compare it before and after a failed call.
 */
#ifndef TK_ALLOCCOUNT_H
#define TK_ALLOCCOUNT_H

/* Heap blocks currently allocated through the wrapped functions. */
long tt_live_blocks(void);

#endif
