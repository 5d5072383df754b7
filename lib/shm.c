/*
 * shm.c - tk_shm_alloc: memory shared with children forked afterwards.
 *
 * Each block is its own MAP_SHARED|MAP_ANONYMOUS mapping, so blocks never
 * overlap and freeing one in a process cannot disturb another process's
 * view. A small header before the user's pointer records the mapping's size
 * (munmap needs it) and a magic number, so a foreign pointer is refused
 * instead of unmapping whatever lies before it.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>

#include "internal.h"
#include "taskkit/sync.h"

#define SHM_MAGIC 0x746b73686dU /* "tkshm" */

/* A whole max_align_t, so the user's block after it stays aligned. */
union shm_header {
    struct {
        size_t size;     /* of the whole mapping */
        uint64_t magic;
    } h;
    max_align_t align;
};

TK_API void *tk_shm_alloc(size_t size)
{
    if (size == 0)
        return tk__error_null(TK_EINVAL, "tk_shm_alloc: size must be > 0");
    if (size > SIZE_MAX / 2 - sizeof(union shm_header))
        return tk__error_null(TK_ENOMEM, "tk_shm_alloc: size %zu is too large", size);
    size_t total = size + sizeof(union shm_header);
    void *map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) {
        int err = errno;
        tk__os_error(err, "tk_shm_alloc: mmap");
        return NULL;
    }
    union shm_header *hdr = map;
    hdr->h.size = total;
    hdr->h.magic = SHM_MAGIC;
    return hdr + 1; /* anonymous mappings start zeroed */
}

TK_API void tk_shm_free(void *p)
{
    if (!p)
        return;
    union shm_header *hdr = (union shm_header *)p - 1;
    if (hdr->h.magic != SHM_MAGIC) {
        tk__error(TK_EINVAL, "tk_shm_free: pointer did not come from tk_shm_alloc");
        return;
    }
    /* Only this process's view goes: children keep the block alive. */
    munmap(hdr, hdr->h.size);
}
