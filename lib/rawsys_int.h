/*
 * rawsys_int.h - a few system calls made without the C library, for the
 * child side of fork.
 *
 * Why: fork copies no page-table entries for file-backed text, so a fresh
 * child takes a page fault for every stretch of libc code it runs (the
 * kernel maps 64 KiB around each fault). open, dup2 and close sit in a
 * stretch that neither fork nor _exit touches: calling them from libc cost
 * every child one more fault, which on a virtual machine is 20-30 us — a
 * few percent of a whole fork + exit + wait round trip. Inlined into
 * child_main, these calls run from the page the child is executing anyway.
 *
 * Each returns the result or -errno, like the kernel. Elsewhere than
 * x86-64 and AArch64 Linux they are the libc functions.
 */
#ifndef TK_RAWSYS_INT_H
#define TK_RAWSYS_INT_H

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#if defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__))
#include <sys/syscall.h>

static inline long tk__sys3(long nr, long a, long b, long c)
{
#if defined(__x86_64__)
    long r;
    __asm__ __volatile__("syscall"
                         : "=a"(r)
                         : "0"(nr), "D"(a), "S"(b), "d"(c)
                         : "rcx", "r11", "memory");
    return r;
#else
    register long x8 __asm__("x8") = nr;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    __asm__ __volatile__("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    return x0;
#endif
}

static inline int tk__sys_close(int fd)
{
    return (int)tk__sys3(SYS_close, fd, 0, 0);
}

static inline int tk__sys_open_rdonly(const char *path)
{
    return (int)tk__sys3(SYS_openat, AT_FDCWD, (long)path, O_RDONLY);
}

/* dup2 for oldfd != newfd (AArch64 has only dup3). */
static inline int tk__sys_dup2(int oldfd, int newfd)
{
    return (int)tk__sys3(SYS_dup3, oldfd, newfd, 0);
}

#else

static inline int tk__sys_close(int fd)
{
    return close(fd) == 0 ? 0 : -errno;
}

static inline int tk__sys_open_rdonly(const char *path)
{
    int fd = open(path, O_RDONLY);
    return fd >= 0 ? fd : -errno;
}

static inline int tk__sys_dup2(int oldfd, int newfd)
{
    return dup2(oldfd, newfd) >= 0 ? newfd : -errno;
}

#endif

#endif /* TK_RAWSYS_INT_H */
