/*
 * process_int.h - what process.c shares with its platform files.
 *
 * process.c holds the portable logic (handles, registry, lifecycle, the
 * end-of-program hook). It reaches the OS through two small layers:
 *   - proc_linux.c: pidfds (pidfd_open, pidfd_send_signal, waitid P_PIDFD),
 *     PR_SET_PDEATHSIG and the affinity-aware CPU count; on other systems it
 *     compiles to stubs returning -ENOSYS;
 *   - proc_posix.c: the portable fallback, an exit pipe per child (the child
 *     holds the write end until it dies) plus waitpid().
 * Every function returns 0/a value or a negative errno and records no last
 * error: process.c words the messages.
 */
#ifndef TK_PROCESS_INT_H
#define TK_PROCESS_INT_H

#include <stdbool.h>
#include <sys/types.h>

#include "internal.h"

/* ------------------------------------------------------------ proc_linux.c */

/* A close-on-exec pidfd for child `pid`, or -errno (-ENOSYS: no pidfds). */
int tk__proc_pidfd_open(pid_t pid);
/* Sends sig through a pidfd; -ESRCH once the process has been reaped. */
int tk__proc_pidfd_signal(int fd, int sig);
/* Reaps the child behind pidfd `fd` (pid `pid`) without blocking: 1 and
 * *code (exit status, or -signal) once reaped, 0 while it runs, -ECHILD if
 * someone else reaped it, another -errno on failure. */
int tk__proc_pidfd_reap(int fd, pid_t pid, int *code);
/* Child side: asks for SIGKILL when the parent dies. Returns 0, -ESRCH if
 * `parent` is no longer our parent (it died before the request took
 * effect), -ENOSYS where the OS has no such facility. */
int tk__proc_set_pdeathsig(pid_t parent);
/* Calls, harmlessly, the OS functions the child path uses, so that lazy
 * binding resolves them once in the parent rather than in every child. */
void tk__proc_prime_child(void);
/* CPUs in this process's affinity mask, or -ENOSYS. */
int tk__proc_affinity_count(void);

/* ------------------------------------------------------------ proc_posix.c */

/* The exit pipe: both ends close-on-exec; -errno on failure. */
int tk__proc_exit_pipe(int fds[2]);
/* Reaps child `pid` without blocking, as tk__proc_pidfd_reap. */
int tk__proc_pid_reap(pid_t pid, int *code);
/* Exit code from a wait status: 0..255 or -signal. */
int tk__proc_decode_status(int status);

/* ------------------------------------------------------------ process.c */

/* Tests only: true forces the exit-pipe fallback for later starts, false
 * returns to automatic selection (pidfds where the kernel has them). */
void tk__proc_force_fallback(bool on);
/* Tests only: true if `p` waits through a pidfd. */
struct tk_process;
bool tk__proc_uses_pidfd(const struct tk_process *p);

/* For other modules' internal workers (process-pool workers): marks the
 * current process daemonic, as CPython's pool workers are, so a task that
 * tries to start a child gets "daemonic processes are not allowed to have
 * children" instead of leaving an orphan the pool does not know about. */
void tk__process_mark_daemonic(void);

#endif /* TK_PROCESS_INT_H */
