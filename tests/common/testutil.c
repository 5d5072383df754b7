#include "common/testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double tt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int tt_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

int tt_count_zombies(void)
{
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    pid_t me = getpid();
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = 0;
        char *rp = strrchr(buf, ')');
        char state;
        int ppid;
        if (rp && sscanf(rp + 2, "%c %d", &state, &ppid) == 2 && ppid == me &&
            state == 'Z')
            n++;
    }
    closedir(d);
    return n;
}

long tt_rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, rss = 0;
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &rss) != 2)
        rss = -1;
    fclose(f);
    return rss < 0 ? -1 : rss * (sysconf(_SC_PAGESIZE) / 1024);
}

void tt_child_main(const struct tt_mode *modes, size_t n)
{
    const char *mode = getenv("TK_TEST_CHILD");
    if (!mode)
        return;
    for (size_t i = 0; i < n; i++)
        if (strcmp(modes[i].name, mode) == 0)
            exit(modes[i].run());
    fprintf(stderr, "unknown TK_TEST_CHILD mode '%s'\n", mode);
    exit(127);
}

int tt_run_self(const char *mode, char *out, size_t cap, double timeout_s)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    /* Exec the program by its real path: under valgrind /proc/self/exe is
     * valgrind itself, while readlink() of it is rewritten to the client. */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    self[n] = 0;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        setenv("TK_TEST_CHILD", mode, 1);
        char *argv[] = {self, NULL};
        execv(self, argv);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    double end = tt_now() + timeout_s;
    for (;;) {
        int ms = (int)((end - tt_now()) * 1000);
        if (ms <= 0) {
            kill(pid, SIGKILL);
            break;
        }
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int r = poll(&p, 1, ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        char tmp[4096];
        ssize_t k = read(fds[0], tmp, sizeof tmp);
        if (k <= 0)
            break;
        for (ssize_t i = 0; i < k && cap > 0 && len + 1 < cap; i++)
            out[len++] = tmp[i];
    }
    if (cap > 0)
        out[len] = 0;
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return status;
}

int tt_slow_mode(void)
{
    const char *m = getenv("TK_TEST_MODE");
    return m && *m;
}
