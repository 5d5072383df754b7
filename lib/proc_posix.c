/*
 * proc_posix.c - the portable way to wait for a child without a SIGCHLD
 * handler: an exit pipe whose write end only the child holds, so the read
 * end reaches EOF (readable) when the child dies, plus waitpid(WNOHANG) to
 * reap it. Used where pidfds are missing, and by tests to exercise the path.
 */
#include "process_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

int tk__proc_exit_pipe(int fds[2])
{
    return pipe2(fds, O_CLOEXEC) == 0 ? 0 : -errno;
}

int tk__proc_decode_status(int status)
{
    if (WIFSIGNALED(status))
        return -WTERMSIG(status);
    return WEXITSTATUS(status);
}

int tk__proc_pid_reap(pid_t pid, int *code)
{
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            *code = tk__proc_decode_status(status);
            return 1;
        }
        if (r == 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}
