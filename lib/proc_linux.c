/*
 * proc_linux.c - Linux pieces of the process module: pidfds (so children are
 * waited for and signalled without a SIGCHLD handler and without pid-reuse
 * races), PR_SET_PDEATHSIG for daemonic children, and the affinity-aware CPU
 * count. Elsewhere every function reports -ENOSYS and process.c falls back
 * to proc_posix.c.
 */
#include "process_int.h"

#include <errno.h>

#ifdef __linux__
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

int tk__proc_pidfd_open(pid_t pid)
{
    /* Called directly (not through glibc's wrapper) so older C libraries on
     * newer kernels still get pidfds. pidfds are always close-on-exec. */
    long fd = syscall(SYS_pidfd_open, pid, 0);
    return fd >= 0 ? (int)fd : -errno;
}

int tk__proc_pidfd_signal(int fd, int sig)
{
    return syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0) == 0 ? 0 : -errno;
}

static int code_from_siginfo(const siginfo_t *si)
{
    return si->si_code == CLD_EXITED ? (si->si_status & 0xff) : -si->si_status;
}

int tk__proc_pidfd_reap(int fd, pid_t pid, int *code)
{
    /* waitid(P_PIDFD) names the process, not a pid that could have been
     * reused; kernels before 5.4 reject it with EINVAL and we use the pid
     * (still safe: only we reap our children unless the user interferes). */
    static int no_p_pidfd;
    if (!__atomic_load_n(&no_p_pidfd, __ATOMIC_RELAXED)) {
        siginfo_t si;
        for (;;) {
            si.si_pid = 0;
            if (waitid((idtype_t)P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG) == 0)
                break;
            if (errno == EINTR)
                continue;
            if (errno != EINVAL)
                return -errno;
            __atomic_store_n(&no_p_pidfd, 1, __ATOMIC_RELAXED);
            return tk__proc_pid_reap(pid, code);
        }
        if (si.si_pid == 0)
            return 0;
        *code = code_from_siginfo(&si);
        return 1;
    }
    return tk__proc_pid_reap(pid, code);
}

int tk__proc_set_pdeathsig(pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        return -errno;
    /* The parent may have died between fork and prctl; we were then
     * reparented and no signal will ever come. */
    return getppid() == parent ? 0 : -ESRCH;
}

void tk__proc_prime_child(void)
{
    int sig;
    prctl(PR_GET_PDEATHSIG, &sig);
    (void)getppid();
}

int tk__proc_affinity_count(void)
{
    /* Grow the mask until the kernel accepts it: machines may have more
     * CPUs than CPU_SETSIZE. */
    for (int ncpu = 1024; ncpu <= (1 << 20); ncpu *= 2) {
        cpu_set_t *set = CPU_ALLOC((size_t)ncpu);
        if (!set)
            return -ENOMEM;
        size_t size = CPU_ALLOC_SIZE((size_t)ncpu);
        int r = sched_getaffinity(0, size, set);
        int n = r == 0 ? CPU_COUNT_S(size, set) : -errno;
        CPU_FREE(set);
        if (n != -EINVAL)
            return n;
    }
    return -ENOSYS;
}

#else /* !__linux__ */

int tk__proc_pidfd_open(pid_t pid) { (void)pid; return -ENOSYS; }
int tk__proc_pidfd_signal(int fd, int sig) { (void)fd; (void)sig; return -ENOSYS; }
int tk__proc_pidfd_reap(int fd, pid_t pid, int *code) { (void)fd; return tk__proc_pid_reap(pid, code); }
int tk__proc_set_pdeathsig(pid_t parent) { (void)parent; return -ENOSYS; }
void tk__proc_prime_child(void) {}
int tk__proc_affinity_count(void) { return -ENOSYS; }

#endif
