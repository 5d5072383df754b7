/*
 * process.c - fork-based process objects (Python's multiprocessing.Process)
 * and the process side of the runtime: the registry of children, the
 * current and parent process, the fork hooks and the end-of-program step
 * that stops and joins children.
 *
 * State and locking. Every started child of this process is on the
 * `children` list, which holds one reference to it until the child is
 * reaped. `reg_lock` guards that list, every handle's reference count and
 * every field that changes after start (state, fd, exitcode...). It is held
 * only for short non-blocking work (a WNOHANG reap, a signal, list edits),
 * never across poll() or fork(). Waiting happens outside it on the child's
 * descriptor; `fd_users` keeps a reaper from closing a descriptor another
 * thread is polling (the number could be reused by an unrelated open).
 *
 * Descriptors: one per live child (pidfd, or the read end of an exit pipe),
 * closed when the child is reaped unless tk_process_sentinel() handed it
 * out; then it lives until tk_process_free().
 *
 * Fork: the runtime calls our atfork hooks on every fork, also a raw fork()
 * by the user. In the child, the registry is emptied (the old list is kept
 * reachable on `inherited` because the child cannot free memory another
 * thread of the parent may have been using) and handles created by the
 * parent become foreign: `owner` differs from tk__getpid().
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "process_int.h"
#include "rawsys_int.h"
#include "taskkit/process.h"

_Atomic unsigned tk__children_ended;

enum { ST_NEW, ST_STARTED, ST_ENDED };
enum { KIND_CHILD, KIND_SELF, KIND_PARENT };

struct tk_process {
    int refs;               /* guarded by reg_lock */
    int kind;               /* KIND_CHILD, or one of the two runtime handles */
    pid_t owner;            /* pid of the process that created the handle */
    tk_target target;
    tk_args *args;
    tk_kwargs *kwargs;
    char *name;
    unsigned idnum;         /* N in Process-...:N, extends the child's identity */
    bool daemon;
    bool own_args;          /* args/kwargs were made here (empty for good): */
    bool own_kwargs;        /* a spare handle keeps them for the next one */
    size_t name_cap;        /* bytes allocated for name */
    /* Guarded by reg_lock once started. */
    int state;              /* written under reg_lock; read with state_of() */
    pid_t pid;
    int fd;                 /* pidfd or exit-pipe read end, -1 when closed */
    bool pidfd;             /* fd is a pidfd (else an exit pipe) */
    bool keep_fd;           /* handed out as the sentinel: close at free */
    bool echild;            /* reaped behind our back, not reported yet */
    bool listed;            /* on `children` (the list holds a reference) */
    bool detached;          /* listed, and the list holds the only reference */
    int fd_users;           /* threads polling fd outside the lock */
    int exitcode;
    struct tk_process *prev, *next;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static tk_process *children;   /* started, not yet reaped; owned by this pid */
static tk_process *inherited;  /* ancestors' lists, kept reachable only */
static size_t n_detached;      /* listed handles nobody but the list holds */
static unsigned name_counter;  /* Process-N; guarded by reg_lock */

/*
 * The runtime-owned handles. The child path allocates nothing (every page
 * a fresh child writes costs a copy-on-write fault, and malloc after fork is
 * best avoided), so their names live where they can without a copy:
 *   - self_proc.name: `main_name`, or, in a child, the name of the handle it
 *     was started from (`self_name_owned` false: that handle's copy in our
 *     memory owns it, and hands it over if freed), or a heap string from
 *     tk_process_set_name (`self_name_owned` true);
 *   - parent_proc.name: `parent_name_buf`, filled by the fork hook (names
 *     longer than the buffer are cut), or a heap string after a rename.
 * The identity that children's names extend ("1:2" in Process-1:2) is
 * `self_ident` (materialised, NULL in the main program) followed by
 * `self_idnum` when non-zero; tk_process_new materialises it, so a child's
 * own children find it ready.
 */
static char main_name[] = "MainProcess";
static bool self_name_owned;
static char parent_name_buf[256];
static bool parent_name_owned;
static char *stale_name;       /* a renamed parent's name, lost by a fork hook:
                                * kept reachable, freed at the next rename */
static char *self_ident;
static unsigned self_idnum;
static tk_process self_proc = {
    .refs = 1, .kind = KIND_SELF, .name = main_name, .state = ST_STARTED,
    .fd = -1, .exitcode = TK_EXITCODE_NONE,
};
static tk_process parent_proc = {
    .refs = 1, .kind = KIND_PARENT, .state = ST_STARTED, .fd = -1,
    .exitcode = TK_EXITCODE_NONE,
};
static bool have_parent;
static pid_t forking_pid;      /* set by the prepare hook: the parent's pid */

/* -1: not probed yet; 0: exit pipes; 1: pidfds. */
static int pidfd_mode = -1;
/* Exit-pipe mode: this process's own exit-pipe write end (its parent waits
 * on the read end), closed in every process forked from it. */
static int my_exit_fd = -1;
/* Exit-pipe mode: a write end is open in the parent from pipe creation
 * until the fork has happened; a child forked meanwhile by another thread
 * (a raw fork too) would inherit it and keep that sentinel unreadable for
 * its whole life. Such write ends are listed here (nodes live on the
 * spawning threads' stacks, under reg_lock), and the fork hook closes them
 * in every child except the one they were made for (`spawning_fd`).
 * Serialising forks with a lock instead would invert the lock order with
 * the runtime's fork hooks. */
struct inflight {
    int fd;
    struct inflight *next;
};
static struct inflight *inflight;
static __thread int spawning_fd = -1;

static void reap_detached_locked(void);
static void release_child_name(char *old);
static void proc_shutdown(void);
static void proc_prepare(void);
static void proc_parent(void);
static void proc_child(void);

static struct tk__module proc_module = {
    .name = "process",
    .order = 20,
    .shutdown = proc_shutdown,
    .atfork_prepare = proc_prepare,
    .atfork_parent = proc_parent,
    .atfork_child = proc_child,
};

/* Registered at load time so that any fork, even one before the first
 * libtaskkit call, gives the child the right current and parent process. */
__attribute__((constructor)) static void proc_init(void)
{
    tk__module_register(&proc_module);
}

static void lock(void)
{
    if (pthread_mutex_lock(&reg_lock) != 0)
        tk__panic("process registry: cannot lock");
}

static void unlock(void)
{
    if (pthread_mutex_unlock(&reg_lock) != 0)
        tk__panic("process registry: cannot unlock");
}

/* The state may be read without the lock by calls that only need to know
 * whether start has happened; writers hold reg_lock and publish with it. */
static int state_of(const tk_process *h)
{
    return __atomic_load_n(&h->state, __ATOMIC_ACQUIRE);
}

static void set_state(tk_process *h, int state)
{
    __atomic_store_n(&h->state, state, __ATOMIC_RELEASE);
}

static bool is_own_child(const tk_process *h)
{
    return h->kind == KIND_CHILD && h->owner == tk__getpid();
}

/* ------------------------------------------------------------ handles */

/*
 * One freed handle is kept for the next tk_process_new, with the empty
 * argument bags and the name buffer made for it. Every fork write-protects
 * the whole address space, so each page the parent writes afterwards costs a
 * page fault (tens of microseconds on some VMs): a free/malloc pair per
 * start writes the allocator's pages on top of the handle's own. Only
 * exchanged atomically: destroy() may run with or without reg_lock.
 */
static tk_process *spare;

static void discard(tk_process *h)
{
    tk_args_free(h->args);
    tk_kwargs_free(h->kwargs);
    tk__free(h->name);
    tk__free(h);
}

static void destroy(tk_process *h)
{
    /* A foreign handle's descriptor belongs to the process that opened it. */
    if (h->fd >= 0 && h->owner == tk__getpid())
        close(h->fd);
    if (!h->own_args) {
        tk_args_free(h->args);
        h->args = NULL;
    }
    if (!h->own_kwargs) {
        tk_kwargs_free(h->kwargs);
        h->kwargs = NULL;
    }
    if (h->name == self_proc.name) {
        self_name_owned = true; /* the current process borrowed it */
        h->name = NULL;
        h->name_cap = 0;
    }
    tk_process *old = __atomic_exchange_n(&spare, h, __ATOMIC_ACQ_REL);
    if (old)
        discard(old);
}

/* Turns self_ident + self_idnum into one string (once per child, the first
 * time it creates a process: never on the start path). */
static int materialise_ident(void)
{
    if (self_idnum == 0)
        return 0;
    const char *parent = self_ident ? self_ident : "";
    size_t len = strlen(parent) + 16;
    char *ident = tk__malloc(len);
    if (!ident)
        return TK_ENOMEM;
    snprintf(ident, len, "%s%s%u", parent, *parent ? ":" : "", self_idnum);
    tk__free(self_ident);
    self_ident = ident;
    self_idnum = 0;
    return 0;
}

/* Writes "Process-<parent>:<idnum>" ("Process-<idnum>" in the main program)
 * into dst, which has room for strlen(parent) + 32 bytes. Not snprintf: its
 * deep stack frame reaches a stack page the last fork write-protected, and
 * that copy-on-write fault cost every start-join round trip over 20 us. */
static void format_name(char *dst, const char *parent, unsigned idnum)
{
    static const char prefix[] = "Process-";
    memcpy(dst, prefix, sizeof prefix - 1);
    dst += sizeof prefix - 1;
    size_t plen = strlen(parent);
    if (plen) {
        memcpy(dst, parent, plen);
        dst += plen;
        *dst++ = ':';
    }
    char digits[16];
    size_t n = 0;
    do
        digits[n++] = (char)('0' + idnum % 10);
    while ((idnum /= 10) != 0);
    while (n)
        *dst++ = digits[--n];
    *dst = '\0';
}

/* Takes args/kwargs into h (a spare's own empty bags serve when NULL). */
static int adopt_bags(tk_process *h, tk_args **args, tk_kwargs **kwargs)
{
    if (*args) {
        tk_args_free(h->args);
        h->args = *args;
        *args = NULL;
        h->own_args = false;
    } else {
        if (!h->args && !(h->args = tk_args_new()))
            return TK_ENOMEM;
        h->own_args = true;
    }
    if (*kwargs) {
        tk_kwargs_free(h->kwargs);
        h->kwargs = *kwargs;
        *kwargs = NULL;
        h->own_kwargs = false;
    } else {
        if (!h->kwargs && !(h->kwargs = tk_kwargs_new()))
            return TK_ENOMEM;
        h->own_kwargs = true;
    }
    return 0;
}

tk_process *tk_process_new(tk_target target, tk_args *args, tk_kwargs *kwargs)
{
    tk_process *h = NULL;
    if (!target) {
        tk__error(TK_EINVAL, "tk_process_new: target must not be NULL");
        goto fail;
    }
    h = __atomic_exchange_n(&spare, NULL, __ATOMIC_ACQ_REL);
    if (!h && !(h = tk__calloc(1, sizeof *h)))
        goto fail;
    if (adopt_bags(h, &args, &kwargs) < 0 || materialise_ident() < 0)
        goto fail;
    lock();
    reap_detached_locked();
    unsigned idnum = ++name_counter;
    unlock();
    const char *parent = self_ident ? self_ident : "";
    size_t len = strlen(parent) + 32;
    if (h->name_cap < len) {
        tk__free(h->name);
        h->name_cap = 0;
        if (!(h->name = tk__malloc(len)))
            goto fail;
        h->name_cap = len;
    }
    format_name(h->name, parent, idnum);
    /* Every other field afresh: h may be a spare. */
    *h = (tk_process){
        .refs = 1,
        .kind = KIND_CHILD,
        .owner = tk__getpid(),
        .target = target,
        .args = h->args,
        .kwargs = h->kwargs,
        .name = h->name,
        .idnum = idnum,
        .daemon = self_proc.daemon,
        .own_args = h->own_args,
        .own_kwargs = h->own_kwargs,
        .name_cap = h->name_cap,
        .state = ST_NEW,
        .fd = -1,
        .exitcode = TK_EXITCODE_NONE,
    };
    return h;
fail:
    if (h)
        discard(h);
    tk_args_free(args);
    tk_kwargs_free(kwargs);
    return NULL;
}

void tk_process_free(tk_process *p)
{
    if (!p || p->kind != KIND_CHILD)
        return;
    lock();
    int left = --p->refs;
    if (left == 1 && p->listed && is_own_child(p)) {
        p->detached = true; /* reaped lazily by reap_detached_locked */
        n_detached++;
    }
    unlock();
    if (left == 0)
        destroy(p);
}

const char *tk_process_name(const tk_process *p)
{
    return p ? p->name : "";
}

/* Frees a handle's old name, unless the current process borrowed it (then
 * the current process owns it from now on). */
static void release_child_name(char *old)
{
    if (old == self_proc.name)
        self_name_owned = true;
    else
        tk__free(old);
}

int tk_process_set_name(tk_process *p, const char *name)
{
    if (!p || !name)
        return tk__error(TK_EINVAL, "tk_process_set_name: %s must not be NULL",
                         p ? "name" : "process");
    char *copy = tk__strdup(name);
    if (!copy)
        return TK_ENOMEM;
    char *old = p->name;
    p->name = copy;
    if (p->kind == KIND_CHILD) {
        p->name_cap = strlen(copy) + 1;
        release_child_name(old);
    } else if (p->kind == KIND_SELF) {
        if (self_name_owned)
            tk__free(old);
        self_name_owned = true;
    } else {
        if (parent_name_owned)
            tk__free(old);
        parent_name_owned = true;
        tk__free(stale_name);
        stale_name = NULL;
    }
    return 0;
}

bool tk_process_daemon(const tk_process *p)
{
    return p && p->daemon;
}

int tk_process_set_daemon(tk_process *p, bool daemon)
{
    if (!p)
        return tk__error(TK_EINVAL, "tk_process_set_daemon: process must not be NULL");
    if (p->kind != KIND_CHILD || state_of(p) != ST_NEW || !is_own_child(p))
        return tk__error(TK_ESTATE, "process has already started");
    p->daemon = daemon;
    return 0;
}

pid_t tk_process_pid(const tk_process *p)
{
    if (!p)
        return 0;
    if (p->kind == KIND_SELF)
        return tk__getpid();
    return p->pid;
}

bool tk__proc_uses_pidfd(const tk_process *p)
{
    return p && p->pidfd;
}

/* ------------------------------------------------------------ reaping */

static void close_fd_if_unused_locked(tk_process *h)
{
    if (h->state == ST_ENDED && h->fd >= 0 && !h->keep_fd && h->fd_users == 0) {
        close(h->fd);
        h->fd = -1;
    }
}

static void unlist_locked(tk_process *h)
{
    if (h->prev)
        h->prev->next = h->next;
    else
        children = h->next;
    if (h->next)
        h->next->prev = h->prev;
    h->prev = h->next = NULL;
    h->listed = false;
    if (h->detached) {
        h->detached = false;
        n_detached--;
    }
    if (--h->refs == 0)
        destroy(h); /* detached: the list held the last reference */
}

/*
 * Reaps own child h if it has ended, without blocking. Returns true once it
 * has ended. May free h when the list held its only reference, so callers
 * that hold no reference of their own must not touch h afterwards.
 */
static bool reap_locked(tk_process *h)
{
    if (h->state != ST_STARTED)
        return h->state == ST_ENDED;
    int code = 0;
    int r = h->pidfd ? tk__proc_pidfd_reap(h->fd, h->pid, &code)
                     : tk__proc_pid_reap(h->pid, &code);
    if (r == 0)
        return false;
    if (r < 0) {
        /* ECHILD: SIGCHLD ignored or a stray waitpid(-1) took the status.
         * Any other failure means the same for us: nothing left to wait
         * for. The status is lost; like CPython's subprocess we report 0. */
        h->echild = true;
        code = 0;
    }
    h->exitcode = code;
    atomic_fetch_add_explicit(&tk__children_ended, 1, memory_order_release);
    set_state(h, ST_ENDED);
    close_fd_if_unused_locked(h);
    if (h->listed)
        unlist_locked(h);
    return true;
}

/* CPython reaps forgotten children at the next start; we do it at every
 * call that touches children. Cheap when nothing is detached. */
static void reap_detached_locked(void)
{
    if (n_detached == 0)
        return;
    for (tk_process *h = children, *next; h; h = next) {
        next = h->next;
        if (h->detached)
            reap_locked(h);
    }
}

/* ------------------------------------------------------------ checks */

/* The common checks of calls that wait for or signal a child, in CPython's
 * order: ownership first, then "started". `verb` words the messages. */
static int check_child(const tk_process *p, const char *verb, const char *fn)
{
    if (!p)
        return tk__error(TK_EINVAL, "%s: process must not be NULL", fn);
    if (!is_own_child(p))
        return tk__error(TK_ESTATE, "can only %s a child process", verb);
    if (state_of(p) == ST_NEW)
        return tk__error(TK_ESTATE, "can only %s a started process", verb);
    return 0;
}

/* ------------------------------------------------------------ waiting */

/* Exit pipes reach EOF a moment before the child becomes a zombie, and a
 * child may close its end early; then we poll with a short, growing sleep
 * that never passes the deadline. */
static int backoff(unsigned *round, const tk__deadline *d)
{
    if (tk__deadline_passed(d))
        return TK_ETIMEDOUT;
    long ns = 100000L << (*round < 7 ? *round : 7); /* 0.1 ms .. 12.8 ms */
    (*round)++;
    struct timespec ts = {0, ns};
    nanosleep(&ts, NULL); /* EINTR only shortens it */
    return 0;
}

/* Reports a reap behind our back once, then counts the child as ended. */
static int take_echild_locked(tk_process *h)
{
    if (!h->echild)
        return 0;
    h->echild = false;
    return tk__error(TK_ECHILD,
                     "%s (pid %ld) was reaped outside libtaskkit; its exit status is lost",
                     h->name, (long)h->pid);
}

static int timed_out(const tk_process *h, const char *fn)
{
    return tk__error(TK_ETIMEDOUT, "%s: %s still running at the timeout", fn, h->name);
}

static int wait_ended(tk_process *h, const tk__deadline *d, const char *fn)
{
    unsigned round = 0;
    for (;;) {
        lock();
        if (reap_locked(h)) {
            int r = take_echild_locked(h);
            unlock();
            return r;
        }
        int fd = h->fd;
        h->fd_users++;
        unlock();
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = tk__wait_fds(&pfd, 1, 0, d);
        lock();
        h->fd_users--; /* before reaping, so the reap can close the fd */
        bool ended = reap_locked(h);
        int e = ended ? take_echild_locked(h) : 0;
        close_fd_if_unused_locked(h);
        unlock();
        if (ended)
            return e;
        if (r == TK_ETIMEDOUT)
            return timed_out(h, fn);
        if (r < 0)
            return r;
        /* Readable but not reapable yet (exit pipe): pause, then look again. */
        if (backoff(&round, d) < 0)
            return timed_out(h, fn);
    }
}

int tk_process_join(tk_process *p, double timeout)
{
    int r = check_child(p, "join", "tk_process_join");
    if (r < 0)
        return r;
    tk__deadline d;
    if ((r = tk__deadline_init(&d, timeout, "tk_process_join")) < 0)
        return r;
    return wait_ended(p, &d, "join");
}

bool tk_process_is_alive(tk_process *p)
{
    if (!p)
        return false;
    if (p->kind == KIND_SELF)
        return true;
    if (p->kind == KIND_PARENT)
        return getppid() == p->pid;
    if (!is_own_child(p) || state_of(p) == ST_NEW)
        return false;
    lock();
    bool alive = !reap_locked(p);
    unlock();
    return alive;
}

int tk_process_exitcode(const tk_process *cp)
{
    tk_process *p = (tk_process *)cp; /* reaping is a logical const */
    if (!p)
        return TK_EXITCODE_NONE;
    if (!is_own_child(p) || state_of(p) == ST_NEW)
        return p->exitcode;
    lock();
    reap_locked(p);
    int code = p->exitcode;
    unlock();
    return code;
}

int tk_process_sentinel(const tk_process *cp)
{
    tk_process *p = (tk_process *)cp;
    if (!p) {
        tk__error(TK_EINVAL, "tk_process_sentinel: process must not be NULL");
        return -1;
    }
    if (!is_own_child(p)) {
        tk__error(TK_ESTATE, "can only use the sentinel of a child process");
        return -1;
    }
    if (state_of(p) == ST_NEW) {
        tk__error(TK_ESTATE, "process not started");
        return -1;
    }
    lock();
    if (p->fd < 0) {
        /* Reaped and closed already: hand out a stand-in that is readable
         * for good, which is all a sentinel promises. */
        int fd = tk__os_wakefd_new();
        if (fd < 0) {
            unlock();
            tk__os_error(-fd, "tk_process_sentinel");
            return -1;
        }
        tk__os_wakefd_signal(fd);
        p->fd = fd;
    }
    p->keep_fd = true;
    int fd = p->fd;
    unlock();
    return fd;
}

/* ------------------------------------------------------------ signals */

static int send_signal(tk_process *p, int sig, const char *verb, const char *fn)
{
    int r = check_child(p, verb, fn);
    if (r < 0)
        return r;
    lock();
    /* Reaping first means a pid we reaped is never signalled; with a pidfd
     * the kernel itself refuses a reaped process (ESRCH). */
    if (!reap_locked(p)) {
        if (p->pidfd)
            r = tk__proc_pidfd_signal(p->fd, sig);
        else
            r = kill(p->pid, sig) == 0 ? 0 : -errno;
        if (r == -ESRCH)
            r = 0; /* gone already: reaped behind our back */
    }
    unlock();
    if (r < 0)
        return tk__os_error(-r, fn);
    return 0;
}

int tk_process_terminate(tk_process *p)
{
    return send_signal(p, SIGTERM, "terminate", "tk_process_terminate");
}

int tk_process_kill(tk_process *p)
{
    return send_signal(p, SIGKILL, "kill", "tk_process_kill");
}

int tk_process_stop(tk_process *p, double grace)
{
    tk__deadline d;
    int r = check_child(p, "stop", "tk_process_stop");
    if (r < 0 || (r = tk__deadline_init(&d, grace, "tk_process_stop")) < 0)
        return r;
    if ((r = send_signal(p, SIGTERM, "stop", "tk_process_stop")) < 0)
        return r;
    r = wait_ended(p, &d, "tk_process_stop");
    if (r != TK_ETIMEDOUT)
        return r;
    if ((r = send_signal(p, SIGKILL, "stop", "tk_process_stop")) < 0)
        return r;
    tk__deadline forever = {.kind = TK__DL_FOREVER};
    return wait_ended(p, &forever, "tk_process_stop");
}

/* ------------------------------------------------------------ wait_any */

static int check_wait_any(tk_process **ps, size_t n)
{
    if (!ps || n == 0)
        return tk__error(TK_EINVAL, "tk_process_wait_any: %s",
                         ps ? "n must be at least 1" : "ps must not be NULL");
    if (n > 1000000)
        return tk__error(TK_EINVAL, "tk_process_wait_any: too many processes");
    size_t given = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ps[i])
            continue;
        given++;
        int r = check_child(ps[i], "wait for", "tk_process_wait_any");
        if (r < 0)
            return r;
    }
    if (given == 0)
        return tk__error(TK_EINVAL, "tk_process_wait_any: every entry is NULL");
    return 0;
}

/* The lowest index that has ended (reaping on the way), or -1. */
static int lowest_ended_locked(tk_process **ps, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ps[i] && reap_locked(ps[i]))
            return (int)i;
    return -1;
}

/* Fills fds[] and registers as a user of every entry's descriptor. */
static void use_fds_locked(tk_process **ps, size_t n, struct pollfd *fds)
{
    for (size_t i = 0; i < n; i++) {
        fds[i].fd = ps[i] ? ps[i]->fd : -1; /* poll() skips negative fds */
        fds[i].events = POLLIN;
        fds[i].revents = 0;
        if (ps[i])
            ps[i]->fd_users++;
    }
}

static void release_fds_locked(tk_process **ps, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ps[i])
            ps[i]->fd_users--;
    for (size_t i = 0; i < n; i++)
        if (ps[i])
            close_fd_if_unused_locked(ps[i]);
}

static int wait_any_loop(tk_process **ps, size_t n, struct pollfd *fds,
                         tk__deadline *d)
{
    unsigned round = 0;
    for (;;) {
        lock();
        int found = lowest_ended_locked(ps, n);
        if (found < 0)
            use_fds_locked(ps, n, fds);
        unlock();
        if (found >= 0)
            return found;
        /* fds has a spare slot at [n] for the stop wake-up descriptor. */
        int r = tk__wait_fds(fds, (nfds_t)n, TK__WAIT_CANCEL, d);
        lock();
        release_fds_locked(ps, n);
        found = lowest_ended_locked(ps, n);
        unlock();
        if (found >= 0)
            return found;
        if (r == TK_ETIMEDOUT || (r > 0 && backoff(&round, d) < 0))
            return tk__error(TK_ETIMEDOUT,
                             "tk_process_wait_any: no process ended before the timeout");
        if (r < 0)
            return r;
    }
}

int tk_process_wait_any(tk_process **ps, size_t n, double timeout)
{
    tk__deadline d;
    int r = check_wait_any(ps, n);
    if (r < 0 || (r = tk__deadline_init(&d, timeout, "tk_process_wait_any")) < 0)
        return r;
    struct pollfd local[17];
    struct pollfd *fds = n < 17 ? local : tk__malloc((n + 1) * sizeof *fds);
    if (!fds)
        return TK_ENOMEM;
    r = wait_any_loop(ps, n, fds, &d);
    if (fds != local)
        tk__free(fds);
    return r;
}

/* ------------------------------------------------------------ the child */

/* _exit through a pointer the loader fills at startup: a direct call would
 * go through a lazily bound PLT slot, and every child would pay the symbol
 * lookup (and its page faults) anew. Sanitizers' interceptors still apply,
 * since the loader resolves the pointer to them; volatile keeps the compiler
 * from folding it back into a direct call. */
static void (*volatile exit_now)(int) = _exit;

/* Leaves the process the way a returning target does. */
static _Noreturn void end_process(int status)
{
    if (status < 0) {
        /* CPython prints the uncaught exception and exits with 1. */
        fprintf(stderr, "Process %s: %s\n", self_proc.name, tk_last_error());
        status = 1;
    }
    tk_shutdown();
    tk__flush_stdio();
    exit_now(status & 0xff);
    abort(); /* not reached */
}

void tk_exit(int status)
{
    end_process(status);
}

/* True if __fpurge/clearerr would change stdin: buffered or pushed-back
 * input, an error or end-of-file flag. It only reads: every FILE page a
 * fresh child writes costs it a copy-on-write fault. */
static bool stdin_dirty(void)
{
#ifdef __GLIBC__
    const FILE *f = stdin;
    return f->_mode > 0 || f->_IO_read_ptr != f->_IO_read_end || f->_IO_save_base ||
           f->_IO_write_ptr != f->_IO_write_base || (f->_flags & (_IO_EOF_SEEN | _IO_ERR_SEEN));
#else
    return true;
#endif
}

static void stdin_to_devnull(void)
{
    /* Python replaces stdin with os.devnull, so a child never steals the
     * terminal's input. Drop what the parent's FILE had buffered too;
     * __fpurge takes no lock (another parent thread may have held it). */
    char path[] = "/dev/null"; /* on the stack: .rodata would be one more fault */
    int fd = tk__sys_open_rdonly(path);
    if (fd > 0) {
        tk__sys_dup2(fd, 0);
        tk__sys_close(fd);
    }
    if (stdin_dirty()) {
        __fpurge(stdin);
        clearerr(stdin);
    }
}

/* Makes the runtime's current-process handle describe the child (the fork
 * hook already made the parent the forking process). Borrows p's name; our
 * parent materialised self_ident before creating p. */
static void become(tk_process *p)
{
    if (self_name_owned)
        tk__free(self_proc.name); /* the hook copied it for the parent */
    self_proc.name = p->name;
    self_name_owned = false;
    self_idnum = p->idnum;
    self_proc.daemon = p->daemon;
}

/*
 * The child side of fork, run by the forking thread, the only one left.
 * Between fork and the target only async-signal-safe calls happen (and
 * __fpurge, which takes no lock); nothing is allocated. The runtime's fork
 * hooks have already reset every module.
 */
static _Noreturn void child_main(tk_process *p, pid_t parent, int pipe_r, int pipe_w,
                                 bool mask_empty)
{
    if (pipe_w >= 0) {
        tk__sys_close(pipe_r);
        my_exit_fd = pipe_w; /* closed at our death, or in our children */
    }
    if (p->daemon && tk__proc_set_pdeathsig(parent) == -ESRCH)
        _exit(1); /* the parent died already: a daemonic child dies with it */
    if (!mask_empty) {
        sigset_t none;
        sigemptyset(&none);
        pthread_sigmask(SIG_SETMASK, &none, NULL);
    }
    stdin_to_devnull();
    become(p);
    end_process(p->target(p->args, p->kwargs));
}

/* ------------------------------------------------------------ fork */

/* True if the calling thread blocks no signal: its child, which inherits the
 * mask, then need not reset it (a call whose code a fresh child would have
 * to fault in). Read right before fork by the thread that forks; a handler
 * that changes the mask restores it when it returns. */
static bool sigmask_empty(void)
{
    sigset_t cur;
    return pthread_sigmask(SIG_BLOCK, NULL, &cur) == 0 && sigisemptyset(&cur);
}

struct spawned {
    pid_t pid;
    int fd;
    bool pidfd;
    bool echild;   /* the child was reaped before we could open its pidfd */
};

static bool use_pidfd(void)
{
    int mode = __atomic_load_n(&pidfd_mode, __ATOMIC_ACQUIRE);
    if (mode < 0) {
        int fd = tk__proc_pidfd_open(getpid());
        mode = fd >= 0;
        if (fd >= 0)
            close(fd);
        __atomic_store_n(&pidfd_mode, mode, __ATOMIC_RELEASE);
    }
    return mode == 1;
}

void tk__proc_force_fallback(bool on)
{
    __atomic_store_n(&pidfd_mode, on ? 0 : -1, __ATOMIC_RELEASE);
}

static int fork_error(int err)
{
    return tk__os_error(err, "cannot start process: fork");
}

/* Forks with a pidfd opened right after (no extra syscall in the child, no
 * handshake). The child cannot be reaped before pidfd_open because only we
 * reap it, unless SIGCHLD is ignored: then ESRCH means it ended already. */
static int spawn_pidfd(tk_process *p, struct spawned *out)
{
    pid_t parent = tk__getpid();
    tk__flush_stdio();
    bool mask_empty = sigmask_empty();
    pid_t pid = fork();
    if (pid == 0)
        child_main(p, parent, -1, -1, mask_empty);
    if (pid < 0)
        return fork_error(errno);
    int fd = tk__proc_pidfd_open(pid);
    if (fd == -ESRCH) {
        out->echild = true;
    } else if (fd < 0) {
        /* No descriptor to wait on (EMFILE): take the child back at once. */
        int code;
        kill(pid, SIGKILL);
        while (tk__proc_pid_reap(pid, &code) == 0)
            sched_yield();
        return tk__os_error(-fd, "cannot start process: pidfd_open");
    }
    out->pid = pid;
    out->fd = fd;
    out->pidfd = true;
    return 0;
}

static void inflight_remove_locked(struct inflight *node)
{
    struct inflight **pp = &inflight;
    while (*pp != node)
        pp = &(*pp)->next;
    *pp = node->next;
}

static int spawn_pipe(tk_process *p, struct spawned *out)
{
    int fds[2];
    struct inflight node;
    lock(); /* no fork can come between creating and listing the pipe */
    int r = tk__proc_exit_pipe(fds);
    if (r == 0) {
        node.fd = fds[1];
        node.next = inflight;
        inflight = &node;
    }
    unlock();
    if (r < 0)
        return tk__os_error(-r, "cannot start process: pipe");
    pid_t parent = tk__getpid();
    tk__flush_stdio();
    spawning_fd = fds[1];
    bool mask_empty = sigmask_empty();
    pid_t pid = fork();
    if (pid == 0)
        child_main(p, parent, fds[0], fds[1], mask_empty);
    int err = errno;
    spawning_fd = -1;
    lock(); /* unlisted before closing: the number may be reused at once */
    inflight_remove_locked(&node);
    unlock();
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return fork_error(err);
    }
    out->pid = pid;
    out->fd = fds[0];
    out->pidfd = false;
    return 0;
}

static int spawn(tk_process *p, struct spawned *out)
{
    return use_pidfd() ? spawn_pidfd(p, out) : spawn_pipe(p, out);
}

/*
 * PR_SET_PDEATHSIG fires when the *thread* that forked exits, not the
 * process. Daemonic children started from any thread but the main one are
 * therefore forked by a helper thread that lives as long as the process
 * (all signals blocked, so it never runs a handler meant for the user).
 */
static struct {
    pthread_mutex_t lock;   /* guards the fields below */
    pthread_cond_t cond;
    pthread_mutex_t serial; /* one request at a time */
    bool running;
    tk_process *req;
    bool done;
    int result;
    struct spawned out;
    char msg[TK__ERRMSG_MAX];
} forker = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
    .serial = PTHREAD_MUTEX_INITIALIZER,
};

static void *forker_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&forker.lock);
    for (;;) {
        while (!forker.req)
            pthread_cond_wait(&forker.cond, &forker.lock);
        tk_process *p = forker.req;
        pthread_mutex_unlock(&forker.lock);
        struct spawned out = {0};
        int r = spawn(p, &out);
        pthread_mutex_lock(&forker.lock);
        forker.result = r;
        forker.out = out;
        if (r < 0)
            snprintf(forker.msg, sizeof forker.msg, "%s", tk_last_error());
        forker.req = NULL;
        forker.done = true;
        pthread_cond_broadcast(&forker.cond);
    }
    return NULL;
}

static int forker_start_locked(void)
{
    if (forker.running)
        return 0;
    sigset_t all, old;
    sigfillset(&all);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t t;
    int err = pthread_create(&t, &attr, forker_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (err != 0)
        return tk__os_error(err, "cannot start process: helper thread");
    forker.running = true;
    return 0;
}

static int spawn_via_forker(tk_process *p, struct spawned *out)
{
    pthread_mutex_lock(&forker.serial);
    pthread_mutex_lock(&forker.lock);
    int r = forker_start_locked();
    if (r == 0) {
        forker.req = p;
        forker.done = false;
        pthread_cond_broadcast(&forker.cond);
        while (!forker.done)
            pthread_cond_wait(&forker.cond, &forker.lock);
        r = forker.result;
        *out = forker.out;
        if (r < 0)
            tk__error(r, "%s", forker.msg);
    }
    pthread_mutex_unlock(&forker.lock);
    pthread_mutex_unlock(&forker.serial);
    return r;
}

/*
 * The child path calls libc functions a parent may never have called. With
 * lazy binding, each child would resolve them itself, and the lookup reads
 * symbol tables whose pages a fresh child must fault in: that alone made a
 * start-join round trip over a third slower than a raw fork. Calling each
 * once here, harmlessly, binds them in the parent for every child to come.
 */
static void prime_child_path(void)
{
    sigset_t set;
    sigemptyset(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        dup2(fd, fd);
        close(fd);
    }
    FILE *f = fopen("/dev/null", "re");
    if (f) {
        __fpurge(f);
        clearerr(f);
        fclose(f);
    }
    tk__proc_prime_child();
}

static int check_startable(const tk_process *p)
{
    if (!p)
        return tk__error(TK_EINVAL, "tk_process_start: process must not be NULL");
    if (p->kind == KIND_CHILD && state_of(p) != ST_NEW)
        return tk__error(TK_ESTATE, "cannot start a process twice");
    if (!is_own_child(p))
        return tk__error(TK_ESTATE,
                         "can only start a process object created by current process");
    if (self_proc.daemon)
        return tk__error(TK_ESTATE, "daemonic processes are not allowed to have children");
    return 0;
}

int tk_process_start(tk_process *p)
{
    static pthread_once_t primed = PTHREAD_ONCE_INIT;
    int r = check_startable(p);
    if (r < 0 || (r = tk__runtime_starting()) < 0)
        return r;
    pthread_once(&primed, prime_child_path);
    lock();
    reap_detached_locked();
    unlock();
    struct spawned out = {.fd = -1};
    bool main_thread = tk__gettid() == tk__getpid();
    r = (p->daemon && !main_thread) ? spawn_via_forker(p, &out) : spawn(p, &out);
    if (r < 0)
        return r;
    lock();
    p->pid = out.pid;
    p->fd = out.fd;
    p->pidfd = out.pidfd;
    if (out.echild) {
        set_state(p, ST_ENDED);
        p->echild = true;
        p->exitcode = 0;
    } else {
        set_state(p, ST_STARTED);
        p->listed = true;
        p->refs++;
        p->next = children;
        if (children)
            children->prev = p;
        children = p;
    }
    unlock();
    return 0;
}

/* ------------------------------------------------------------ runtime */

void tk__process_mark_daemonic(void)
{
    self_proc.daemon = true;
}

tk_process *tk_current_process(void)
{
    return &self_proc;
}

tk_process *tk_parent_process(void)
{
    return have_parent ? &parent_proc : NULL;
}

size_t tk_active_children(tk_process **out, size_t cap)
{
    size_t n = 0;
    lock();
    for (tk_process *h = children, *next; h; h = next) {
        next = h->next;
        if (reap_locked(h))
            continue; /* unlisted, maybe freed */
        if (out && n < cap) {
            h->refs++;
            if (h->detached) {
                h->detached = false;
                n_detached--;
            }
            out[n] = h;
        }
        n++;
    }
    unlock();
    return n;
}

int tk_cpu_count(void)
{
    int n = tk__proc_affinity_count();
    if (n < 1) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 && c < 1 << 20 ? (int)c : 1;
    }
    return n;
}

/* A listed child matching `daemon_only`, with a reference for the caller,
 * or NULL. Ended children are reaped on the way. */
static tk_process *pick_child(bool daemon_only)
{
    lock();
    tk_process *found = NULL;
    for (tk_process *h = children, *next; h && !found; h = next) {
        next = h->next;
        if (daemon_only && !h->daemon)
            continue;
        if (!reap_locked(h)) {
            h->refs++;
            found = h;
        }
    }
    unlock();
    return found;
}

static void signal_daemons(int sig)
{
    lock();
    for (tk_process *h = children; h; h = h->next)
        if (h->daemon && h->state == ST_STARTED) {
            if (h->pidfd)
                tk__proc_pidfd_signal(h->fd, sig);
            else if (!reap_locked(h))
                kill(h->pid, sig);
        }
    unlock();
}

/*
 * Steps (2) and (3) of the end-of-program procedure: daemonic children get
 * SIGTERM and, after a shared 1 s grace, SIGKILL; then every child is
 * joined, detached ones included. Runs without the lock while waiting.
 */
static void proc_shutdown(void)
{
    tk__deadline grace, forever = {.kind = TK__DL_FOREVER};
    bool any_daemon = false;
    lock();
    for (tk_process *h = children; h; h = h->next)
        any_daemon |= h->daemon;
    unlock();
    if (any_daemon) {
        tk__deadline_init(&grace, 1.0, NULL);
        signal_daemons(SIGTERM);
        tk_process *h;
        while ((h = pick_child(true)) != NULL) {
            int r = wait_ended(h, &grace, "tk_shutdown");
            tk_process_free(h);
            if (r == TK_ETIMEDOUT)
                break;
        }
        signal_daemons(SIGKILL);
    }
    tk_process *h;
    while ((h = pick_child(false)) != NULL) {
        int r = wait_ended(h, &forever, "tk_shutdown");
        bool stuck = r < 0 && r != TK_ECHILD && state_of(h) != ST_ENDED;
        tk_process_free(h);
        if (stuck)
            break; /* poll failed: never spin at exit */
    }
}

/* ------------------------------------------------------------ fork hooks */

static void proc_prepare(void)
{
    pthread_mutex_lock(&reg_lock);
    forking_pid = tk__getpid();
}

static void proc_parent(void)
{
    pthread_mutex_unlock(&reg_lock);
}

/* Runs in the new child, which has one thread: no allocation. The forking
 * thread holds reg_lock (taken in prepare) and releases it; the forker's
 * locks may be held by threads that do not exist here, so they are
 * re-initialised. */
static void proc_child(void)
{
    static const pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    static const pthread_cond_t fresh_cond = PTHREAD_COND_INITIALIZER;
    for (struct inflight *n = inflight; n; n = n->next)
        if (n->fd != spawning_fd)
            close(n->fd); /* another start's exit pipe: not ours to hold */
    inflight = NULL;
    pthread_mutex_unlock(&reg_lock);
    forker.lock = fresh;
    forker.serial = fresh;
    forker.cond = fresh_cond;
    forker.running = false;
    forker.req = NULL;
    /* The parent's children are not ours: keep them reachable, forget them. */
    if (children) {
        tk_process *tail = children;
        while (tail->next)
            tail = tail->next;
        tail->next = inherited;
        inherited = children;
        children = NULL;
    }
    n_detached = 0;
    name_counter = 0;
    if (my_exit_fd >= 0) {
        close(my_exit_fd); /* our parent's exit pipe: only it may hold it */
        my_exit_fd = -1;
    }
    /* The parent is the process we were forked from. A renamed parent's
     * heap name is nobody's any more: keep it reachable until a rename. */
    if (parent_name_owned && !stale_name)
        stale_name = parent_proc.name;
    parent_name_owned = false;
    size_t i = 0;
    for (; i < sizeof parent_name_buf - 1 && self_proc.name[i]; i++)
        parent_name_buf[i] = self_proc.name[i];
    parent_name_buf[i] = 0;
    parent_proc.name = parent_name_buf;
    parent_proc.pid = forking_pid;
    parent_proc.daemon = self_proc.daemon;
    have_parent = true;
}
