/*
 * os_linux.c - the Linux pieces behind internal.h's platform layer:
 * futexes (the blocking primitive under every wait and sync object),
 * eventfd (the stop wake-up for poll-based waits) and gettid.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

int tk__os_futex_wait(_Atomic uint32_t *word, uint32_t expected, bool shared,
                      const struct timespec *abs)
{
    /* FUTEX_WAIT_BITSET takes an absolute timeout on CLOCK_MONOTONIC (unless
     * FUTEX_CLOCK_REALTIME is given), so a wall-clock jump cannot shorten or
     * lengthen the wait and retries after EINTR need no recomputation. */
    int op = FUTEX_WAIT_BITSET | (shared ? 0 : FUTEX_PRIVATE_FLAG);
    long r = syscall(SYS_futex, (uint32_t *)word, op, expected, abs, NULL,
                     FUTEX_BITSET_MATCH_ANY);
    return r == 0 ? 0 : -errno;
}

void tk__os_futex_wake(_Atomic uint32_t *word, int n, bool shared)
{
    int op = FUTEX_WAKE | (shared ? 0 : FUTEX_PRIVATE_FLAG);
    syscall(SYS_futex, (uint32_t *)word, op, n, NULL, NULL, 0);
}

int tk__os_wakefd_new(void)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return fd >= 0 ? fd : -errno;
}

void tk__os_wakefd_signal(int fd)
{
    uint64_t one = 1;
    int saved = errno; /* may run in a signal handler */
    ssize_t r = write(fd, &one, sizeof one);
    (void)r; /* EAGAIN means the counter is already non-zero: still readable */
    errno = saved;
}

pid_t tk__os_gettid(void)
{
    return (pid_t)syscall(SYS_gettid);
}
