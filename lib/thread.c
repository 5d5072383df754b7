/*
 * thread.c - thread objects (threading.Thread), the thread registry behind
 * tk_thread_enumerate and the end-of-program joins, cooperative stop,
 * tk_sleep and timers.
 *
 * The fast path (new, start, join, free) costs one allocation for the handle,
 * one registry lock round-trip on each side (never held across
 * pthread_create), and no handshake: start does not wait for the new thread,
 * which publishes its kernel id (read from its pthread, no system call) and
 * sets its OS name itself (one prctl: the only system call a tk_thread adds
 * to a raw pthread, about 1 us on a paravirtualised VM).
 *
 * Completion is one futex word per handle (`state`): the finishing thread
 * sets ST_DONE and wakes only if a joiner announced itself with ST_WAITERS.
 * A join without a timeout that can claim the pthread goes straight to
 * pthread_join, so it costs what raw pthreads cost. The pthread is reclaimed
 * exactly once (ST_RECLAIMED): joined by the first joiner that sees the
 * thread done, or detached when the last reference goes away first.
 *
 * Lock order: runtime's module lock (fork) -> registry lock. Nothing here
 * takes the module lock while holding the registry lock.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args_int.h"
#include "internal.h"
#include "thread_int.h"
#include "taskkit/args.h"
#include "taskkit/thread.h"

/* What kind of thread a handle stands for. */
enum {
    K_USER,     /* tk_thread_new */
    K_TIMER,    /* tk_timer_new: waits, then runs the target */
    K_INTERNAL, /* tk__thread_start_internal: hidden, daemonic, signals blocked */
    K_MAIN,     /* the process's main thread (runtime-owned) */
    K_DUMMY     /* a thread libtaskkit did not create (runtime-owned) */
};

/* Bits of tk_thread.state, the word joiners sleep on. */
#define ST_STARTED 1u   /* start claimed the handle (main/dummy: from birth) */
#define ST_PUBLISHED 2u /* t->pthread is written: pthread_create returned */
#define ST_DONE 4u      /* the target returned; `result` is set */
#define ST_WAITERS 8u   /* a joiner sleeps on the word: wake it on change */
#define ST_RECLAIMED 16u /* the pthread has been joined or detached */

/* native_id while a reader sleeps waiting for the thread to publish it; no
 * kernel thread id comes near it (pid_max is at most 2^22). */
#define NID_WAITING UINT32_MAX

/* The OS-name hand-over between the starting thread and set_name. */
enum { OSN_PENDING, OSN_APPLYING, OSN_APPLIED, OSN_RENAMING };

/* CPython's THREAD_STACK_MIN: smaller stacks are refused up front. */
#define STACK_MIN 32768u

/* The fields a new thread reads and writes on its way from start to finish
 * come first, so they share as few cache lines with the creator as
 * possible (each line the two CPUs pass back and forth costs on the
 * start->join path). */
struct tk_thread {
    _Atomic uint32_t state;
    atomic_int refs;
    _Atomic uint32_t native_id; /* 0 until published (or NID_WAITING) */
    atomic_int os_name_state;
    int kind;                   /* changes only in a forked child */
    int result;                 /* written before ST_DONE */
    tk_target target;
    tk_args *args;
    tk_kwargs *kwargs;
    char os_name[16];           /* first 15 bytes of the name */
    atomic_ulong ident;
    bool in_list;               /* guarded by the registry lock */
    atomic_bool daemon;
    atomic_uint gen;            /* process generation it was started in */
    struct tk_thread *prev, *next; /* registry list */
    pthread_t pthread;          /* valid once ST_PUBLISHED */
    tk__thread_fn fn;           /* K_INTERNAL */
    void *fn_arg;
    double interval;            /* K_TIMER */
    size_t stack_size;          /* 0: the system default */
    struct tk__stop stop;
    char *name;                 /* name_buf or a heap copy */
    char name_buf[24];
};

/* ---------------------------------------------------------------- state */

/* The registry: live listed threads (user threads, timers and dummies;
 * neither the main thread, which enumerate adds first, nor internal ones). */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static tk_thread *reg_head;
static size_t reg_count;
/* Running internal threads: not listed, but a forked child must know them
 * to release their handles (see thread_atfork_child). */
static tk_thread *reg_hidden;
/* Handles a forked child found unreferenced once the parent's threads were
 * gone; freed on the next create or free (the fork hook may not free). */
static tk_thread *_Atomic reg_orphans;

/* Bumped in every forked child: a handle started in an older generation
 * belongs to an ancestor process and is foreign here. */
static atomic_uint cur_gen;
static atomic_ulong thread_counter; /* Thread-N */
static atomic_ulong dummy_counter;  /* Dummy-N */

/* The main thread's handle. Static so it can never fail to exist; two slots
 * so a forked child whose forking thread had no handle gets a fresh one
 * without reusing the object a parent-era pointer may still name. In a child
 * forked from a thread with a heap handle, that handle becomes the main one. */
static tk_thread main_slots[2];
static tk_thread *_Atomic main_thread;
/* Returned by tk_current_thread when a dummy handle cannot be allocated:
 * the call must never return NULL. Not listed, never freed. */
static tk_thread oom_dummy;

/* Dummy handles are dropped by this key's destructor when their thread ends. */
static pthread_key_t dummy_key;
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static bool dummy_key_ok;

/* How many references to its *own* handle the calling thread got from
 * tk_thread_enumerate: only those may be dropped from inside the thread,
 * since its tk_current_thread() pointer (runtime-owned) is the same object. */
static __thread unsigned self_refs;

/* Recorded by the fork prepare hook, in the forking thread. */
static tk_thread *fork_thread;
static bool fork_from_main;

static void thread_shutdown(void);
static void thread_atfork_prepare(void);
static void thread_atfork_parent(void);
static void thread_atfork_child(void);

static struct tk__module thread_module = {
    .name = "thread",
    .order = 10,
    .shutdown = thread_shutdown,
    .atfork_prepare = thread_atfork_prepare,
    .atfork_parent = thread_atfork_parent,
    .atfork_child = thread_atfork_child,
};

/* strerror is not thread-safe (its buffer is shared): the GNU strerror_r
 * writes into ours or returns a static string. */
static _Noreturn void panic_errno(const char *what, int err)
{
    char buf[128];
    tk__panic("%s: %s", what, strerror_r(err, buf, sizeof buf));
}

static void reg_lock_take(void)
{
    int r = pthread_mutex_lock(&reg_lock);
    if (r != 0)
        panic_errno("thread registry lock", r);
}

static void reg_lock_drop(void)
{
    int r = pthread_mutex_unlock(&reg_lock);
    if (r != 0)
        panic_errno("thread registry unlock", r);
}

static tk_thread **list_of(const tk_thread *t)
{
    return t->kind == K_INTERNAL ? &reg_hidden : &reg_head;
}

static void list_link(tk_thread *t)
{
    tk_thread **head = list_of(t);
    t->prev = NULL;
    t->next = *head;
    if (*head)
        (*head)->prev = t;
    *head = t;
    t->in_list = true;
    if (head == &reg_head)
        reg_count++;
}

static void list_unlink(tk_thread *t)
{
    if (!t->in_list)
        return;
    tk_thread **head = list_of(t);
    if (t->prev)
        t->prev->next = t->next;
    else
        *head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
    t->in_list = false;
    if (head == &reg_head)
        reg_count--;
}

/* ------------------------------------------------------------- handles */

static bool is_created(const tk_thread *t)
{
    return t->kind == K_USER || t->kind == K_TIMER || t->kind == K_INTERNAL;
}

static bool is_immortal(const tk_thread *t)
{
    return t == &main_slots[0] || t == &main_slots[1] || t == &oom_dummy;
}

static uint32_t state_of(const tk_thread *t)
{
    return atomic_load_explicit(&((tk_thread *)t)->state, memory_order_acquire);
}

static bool foreign(const tk_thread *t)
{
    return (state_of(t) & ST_STARTED) &&
           atomic_load_explicit(&((tk_thread *)t)->gen, memory_order_relaxed) !=
               atomic_load_explicit(&cur_gen, memory_order_relaxed);
}

static void copy_os_name(tk_thread *t, const char *name)
{
    size_t n = strlen(name);
    if (n > sizeof t->os_name - 1)
        n = sizeof t->os_name - 1;
    memcpy(t->os_name, name, n);
    t->os_name[n] = '\0';
}

/* Sets up the fields every handle has; the caller fills in the rest. */
static void handle_init(tk_thread *t, int kind)
{
    memset(t, 0, sizeof *t);
    atomic_init(&t->state, 0);
    atomic_init(&t->refs, 1);
    atomic_init(&t->native_id, 0);
    atomic_init(&t->ident, 0);
    atomic_init(&t->gen, atomic_load(&cur_gen));
    atomic_init(&t->os_name_state, OSN_PENDING);
    atomic_init(&t->daemon, false);
    t->kind = kind;
    t->result = TK_EXITCODE_NONE;
    t->name = t->name_buf;
    tk__stop_init(&t->stop);
}

static tk_thread *handle_new(int kind)
{
    tk_thread *t = tk__malloc(sizeof *t);
    if (t)
        handle_init(t, kind);
    return t;
}

/* A handle that stands for an already running thread (main, dummy). */
static void mark_running(tk_thread *t, pid_t tid, bool here)
{
    atomic_store(&t->state, ST_STARTED | ST_PUBLISHED);
    atomic_store(&t->native_id, (uint32_t)tid);
    atomic_store(&t->gen, atomic_load(&cur_gen));
    if (here) {
        t->pthread = pthread_self();
        atomic_store(&t->ident, (unsigned long)t->pthread);
    }
}

static void bind_tls(tk_thread *t)
{
    struct tk__tls *tls = tk__tls();
    tls->thread = t;
    if (!tls->stop)
        tls->stop = &t->stop;
}

/* Joins (join=true) or detaches the pthread, whichever comes first, once. */
static void reclaim(tk_thread *t, bool join)
{
    uint32_t old = atomic_fetch_or(&t->state, ST_RECLAIMED);
    if (old & ST_RECLAIMED)
        return;
    int r = join ? pthread_join(t->pthread, NULL) : pthread_detach(t->pthread);
    if (r != 0)
        panic_errno(join ? "cannot join a thread" : "cannot detach a thread", r);
}

static bool reclaimable(const tk_thread *t)
{
    return is_created(t) && (state_of(t) & ST_PUBLISHED) && !foreign(t);
}

static void destroy(tk_thread *t)
{
    bool mine = !foreign(t);
    if (reclaimable(t))
        reclaim(t, false);
    /* A foreign handle's descriptor belongs to the ancestor's thread. */
    if (mine)
        tk__stop_destroy(&t->stop);
    tk_args_free(t->args);
    tk_kwargs_free(t->kwargs);
    if (t->name != t->name_buf)
        tk__free(t->name);
    tk__free(t);
}

static void reap_orphans(void)
{
    if (!atomic_load_explicit(&reg_orphans, memory_order_relaxed))
        return;
    tk_thread *t = atomic_exchange(&reg_orphans, NULL);
    while (t) {
        tk_thread *next = t->next;
        destroy(t); /* foreign: memory only */
        t = next;
    }
}

static void ref(tk_thread *t)
{
    if (!is_immortal(t))
        atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

static void unref(tk_thread *t)
{
    if (is_immortal(t))
        return;
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
        destroy(t);
}

/* ------------------------------------------------------- main and dummies */

static void main_slot_init(tk_thread *m, bool here)
{
    handle_init(m, K_MAIN);
    strcpy(m->name_buf, "MainThread");
    copy_os_name(m, m->name_buf);
    mark_running(m, tk__getpid(), here);
}

__attribute__((constructor)) static void thread_init(void)
{
    /* Registered at load, not at the first start, so that fork hooks run
     * even in a program that only ever used dummy or main handles. */
    tk__module_register(&thread_module);
    /* Normally the library is loaded by the main thread; if it was
     * dlopen()ed by another one, the main thread binds itself later. */
    bool here = tk__os_gettid() == getpid();
    main_slot_init(&main_slots[0], here);
    handle_init(&oom_dummy, K_DUMMY);
    strcpy(oom_dummy.name_buf, "Dummy-0");
    atomic_store(&oom_dummy.daemon, true);
    mark_running(&oom_dummy, 0, false);
    atomic_store(&main_thread, &main_slots[0]);
    if (here)
        bind_tls(&main_slots[0]);
}

static bool caller_is_main(void)
{
    return tk__gettid() == tk__getpid();
}

static tk_thread *bind_main(void)
{
    tk_thread *m = atomic_load(&main_thread);
    if (atomic_load(&m->ident) == 0) {
        m->pthread = pthread_self();
        atomic_store(&m->ident, (unsigned long)m->pthread);
    }
    bind_tls(m);
    return m;
}

static void dummy_exit(void *arg)
{
    tk_thread *d = arg;
    reg_lock_take();
    list_unlink(d);
    uint32_t old = atomic_fetch_or(&d->state, ST_DONE);
    reg_lock_drop();
    if (old & ST_WAITERS)
        tk__futex_wake(&d->state, INT_MAX, 0);
    struct tk__tls *tls = tk__tls();
    if (tls->thread == d) {
        tls->thread = NULL;
        if (tls->stop == &d->stop)
            tls->stop = NULL;
    }
    unref(d);
}

static void dummy_key_create(void)
{
    dummy_key_ok = pthread_key_create(&dummy_key, dummy_exit) == 0;
}

static tk_thread *dummy_new(void)
{
    pthread_once(&dummy_once, dummy_key_create);
    tk_thread *d = handle_new(K_DUMMY);
    if (!d || !dummy_key_ok || pthread_setspecific(dummy_key, d) != 0) {
        tk__free(d);
        return &oom_dummy;
    }
    snprintf(d->name_buf, sizeof d->name_buf, "Dummy-%lu",
             atomic_fetch_add(&dummy_counter, 1) + 1);
    copy_os_name(d, d->name_buf);
    atomic_store(&d->daemon, true);
    mark_running(d, tk__gettid(), true);
    reg_lock_take();
    list_link(d);
    reg_lock_drop();
    bind_tls(d);
    return d;
}

TK_API tk_thread *tk_current_thread(void)
{
    struct tk__tls *tls = tk__tls();
    if (tls->thread)
        return tls->thread;
    if (caller_is_main())
        return bind_main();
    return dummy_new();
}

TK_API tk_thread *tk_main_thread(void)
{
    return atomic_load(&main_thread);
}

/* Is t the calling thread's handle? Without creating a dummy to find out. */
static bool is_self(const tk_thread *t)
{
    tk_thread *me = tk__tls()->thread;
    if (me)
        return me == t;
    return t == atomic_load(&main_thread) && caller_is_main();
}

/* ------------------------------------------------------------- creating */

/* The creating thread's daemon flag, which a new thread inherits. Threads
 * libtaskkit did not create count as non-daemon: their children's work must
 * not be cut off at exit. */
static bool creator_daemon(void)
{
    tk_thread *me = tk__tls()->thread;
    if (!me || me->kind == K_DUMMY)
        return false;
    return atomic_load(&me->daemon);
}

/* "Thread-N" into name_buf and os_name: by hand, as snprintf costs a tenth
 * of a microsecond on the new+start+join path. */
static void default_name(tk_thread *t, unsigned long n)
{
    char digits[24];
    size_t len = 0;
    do {
        digits[len++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    char *p = t->name_buf;
    memcpy(p, "Thread-", 7);
    p += 7;
    /* Past 10^16 threads the tail is cut, as snprintf would. */
    for (size_t room = sizeof t->name_buf - 8; len && room; room--)
        *p++ = digits[--len];
    *p = '\0';
    copy_os_name(t, t->name_buf);
}

static tk_thread *thread_create(int kind, const char *who, tk_target target,
                                tk_args *args, tk_kwargs *kwargs)
{
    tk_thread *t = NULL;
    reap_orphans();
    if (!target) {
        tk__error(TK_EINVAL, "%s: target must not be NULL", who);
        goto fail;
    }
    /* The target always gets bags, never NULL: for a NULL one it borrows
     * the shared empty bag (no allocation, and nothing for the new thread
     * to free: both are a measurable part of a start). */
    if ((!args && !tk__empty_args()) || (!kwargs && !tk__empty_kwargs()))
        goto fail;
    if (!(t = handle_new(kind)))
        goto fail;
    t->target = target;
    t->args = args;
    t->kwargs = kwargs;
    atomic_store(&t->daemon, creator_daemon());
    default_name(t, atomic_fetch_add(&thread_counter, 1) + 1);
    return t;
fail:
    tk_args_free(args);
    tk_kwargs_free(kwargs);
    return NULL;
}

TK_API tk_thread *tk_thread_new(tk_target target, tk_args *args, tk_kwargs *kwargs)
{
    return thread_create(K_USER, "tk_thread_new", target, args, kwargs);
}

TK_API tk_thread *tk_timer_new(double interval, tk_target target, tk_args *args,
                               tk_kwargs *kwargs)
{
    tk__deadline probe;
    if (tk__deadline_init(&probe, interval, "tk_timer_new") < 0) {
        tk_args_free(args);
        tk_kwargs_free(kwargs);
        return NULL;
    }
    tk_thread *t = thread_create(K_TIMER, "tk_timer_new", target, args, kwargs);
    if (t)
        t->interval = interval;
    return t;
}

/* ------------------------------------------------------------- running */

/* The new thread names itself (prctl on Linux is cheap for the calling
 * thread, unlike renaming another thread through /proc); set_name may be
 * handing over a new name at the same moment, hence the small protocol. */
static void os_name_apply(tk_thread *t)
{
    for (;;) {
        int expected = OSN_PENDING;
        if (atomic_compare_exchange_weak(&t->os_name_state, &expected, OSN_APPLYING))
            break;
        sched_yield(); /* a rename is copying the name: a few instructions */
    }
    pthread_setname_np(pthread_self(), t->os_name);
    atomic_store(&t->os_name_state, OSN_APPLIED);
}

/* The calling thread's kernel id without a gettid system call: glibc and
 * musl both fill the pthread's tid in before the thread runs (the kernel
 * writes it at clone), and pthread_getcpuclockid hands it back encoded as
 * the kernel's per-thread CPU clock id, ~tid << 3 | CPUCLOCK_PERTHREAD |
 * CPUCLOCK_SCHED (a stable kernel ABI). Anything unexpected falls back to
 * the system call. Caches it where tk__gettid() looks first. */
static pid_t own_tid(void)
{
    clockid_t clk;
    struct tk__tls *tls = tk__tls();
    if (tls->tid == 0 && pthread_getcpuclockid(pthread_self(), &clk) == 0 && (clk & 7) == 6) {
        unsigned tid = ~(unsigned)clk >> 3;
        if (tid > 0 && tid <= (unsigned)INT_MAX)
            tls->tid = (pid_t)tid;
    }
    return tk__gettid();
}

static void publish_native_id(tk_thread *t)
{
    uint32_t old = atomic_exchange(&t->native_id, (uint32_t)own_tid());
    if (old == NID_WAITING)
        tk__futex_wake(&t->native_id, INT_MAX, 0);
}

/* Sleeps until the deadline on the stop state's own sequence word: a stop
 * bumps it and wakes us. Returns 0 or TK_ECANCELED. */
static int sleep_until(struct tk__stop *s, const tk__deadline *d)
{
    for (;;) {
        uint32_t seq = atomic_load(&s->seq);
        int r = tk__futex_wait(&s->seq, seq, TK__WAIT_CANCEL, d);
        if (r == TK_ECANCELED || r == TK_ETIMEDOUT)
            return r == TK_ETIMEDOUT ? 0 : r;
    }
}

static void report_failure(tk_thread *t)
{
    char name[256];
    reg_lock_take(); /* set_name may be replacing the string */
    snprintf(name, sizeof name, "%s", t->name);
    reg_lock_drop();
    fprintf(stderr, "Exception in thread %s: %s\n", name, tk_last_error());
}

static int run_target(tk_thread *t)
{
    if (t->kind == K_INTERNAL)
        return t->fn(t->fn_arg);
    if (t->kind == K_TIMER) {
        tk__deadline d;
        tk__deadline_init(&d, t->interval, NULL); /* validated by tk_timer_new */
        if (sleep_until(&t->stop, &d) == TK_ECANCELED)
            return TK_ECANCELED; /* cancelled: the target never runs */
    }
    int r = t->target(t->args ? t->args : tk__empty_args(),
                      t->kwargs ? t->kwargs : tk__empty_kwargs());
    if (r < 0)
        report_failure(t);
    return r;
}

static void finish(tk_thread *t, int result)
{
    /* CPython drops target and arguments as soon as run() returns. */
    tk_args_free(t->args);
    tk_kwargs_free(t->kwargs);
    t->args = NULL;
    t->kwargs = NULL;
    t->result = result;
    /* ST_DONE is set under the registry lock so that whoever holds the lock
     * and sees the thread not done knows its pthread is not reclaimed yet
     * (set_name renames it through t->pthread). */
    reg_lock_take();
    list_unlink(t);
    uint32_t old = atomic_fetch_or_explicit(&t->state, ST_DONE, memory_order_acq_rel);
    reg_lock_drop();
    if (old & ST_WAITERS)
        tk__futex_wake(&t->state, INT_MAX, 0);
    struct tk__tls *tls = tk__tls();
    tls->thread = NULL;
    tls->stop = NULL;
    unref(t); /* the running thread's own reference */
}

/* A target that leaves through pthread_exit (or is cancelled) still
 * finishes: its joiners must not wait forever. */
static void finish_abandoned(void *arg)
{
    finish(arg, TK_ECANCELED);
}

static void *thread_main(void *arg)
{
    tk_thread *t = arg;
    bind_tls(t);
    publish_native_id(t);
    /* Start stores it too, usually first: a plain read keeps the line shared. */
    if (atomic_load_explicit(&t->ident, memory_order_relaxed) == 0)
        atomic_store_explicit(&t->ident, (unsigned long)pthread_self(), memory_order_relaxed);
    os_name_apply(t);
    int result;
    pthread_cleanup_push(finish_abandoned, t);
    result = run_target(t);
    pthread_cleanup_pop(0);
    finish(t, result);
    return NULL;
}

void tk__thread_block_async_signals(sigset_t *old)
{
    static const int sync_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS};
    sigset_t set;
    sigfillset(&set);
    for (size_t i = 0; i < sizeof sync_signals / sizeof sync_signals[0]; i++)
        sigdelset(&set, sync_signals[i]);
    pthread_sigmask(SIG_BLOCK, &set, old);
}

/* Lists the handle, then creates the pthread outside the registry lock: a
 * short-lived thread reaching its end (which takes the lock) must not find
 * its creator still holding it. Until ST_PUBLISHED, readers of t->pthread
 * (joins, set_name) wait or take another path; tk_thread_ident waits for the
 * ident the same way. */
static int create_thread(tk_thread *t, const pthread_attr_t *attr)
{
    reg_lock_take();
    atomic_store_explicit(&t->gen, atomic_load(&cur_gen), memory_order_relaxed);
    list_link(t);
    reg_lock_drop();
    int err = pthread_create(&t->pthread, attr, thread_main, t);
    if (err != 0) {
        reg_lock_take();
        list_unlink(t);
        reg_lock_drop();
        return err;
    }
    atomic_store_explicit(&t->ident, (unsigned long)t->pthread, memory_order_relaxed);
    uint32_t old = atomic_fetch_or_explicit(&t->state, ST_PUBLISHED, memory_order_acq_rel);
    if (old & ST_WAITERS)
        tk__futex_wake(&t->state, INT_MAX, 0);
    return 0;
}

static int start_thread(tk_thread *t)
{
    uint32_t expected = 0;
    if (!is_created(t) || !atomic_compare_exchange_strong(&t->state, &expected, ST_STARTED))
        return tk__error(TK_ESTATE, "threads can only be started once");
    int rc = tk__runtime_starting();
    if (rc < 0)
        goto undo;
    pthread_attr_t attr;
    if (t->stack_size) {
        pthread_attr_init(&attr);
        int err = pthread_attr_setstacksize(&attr, t->stack_size);
        if (err != 0) {
            pthread_attr_destroy(&attr);
            rc = tk__error(TK_EINVAL, "size not valid: %zu bytes", t->stack_size);
            goto undo;
        }
    }
    sigset_t old_mask;
    if (t->kind == K_INTERNAL)
        tk__thread_block_async_signals(&old_mask);
    atomic_fetch_add(&t->refs, 1); /* the running thread's own reference */
    int err = create_thread(t, t->stack_size ? &attr : NULL);
    if (t->kind == K_INTERNAL)
        pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    if (t->stack_size)
        pthread_attr_destroy(&attr);
    if (err == 0)
        return 0;
    atomic_fetch_sub(&t->refs, 1);
    rc = tk__os_error(err, "can't start new thread");
undo:
    /* Not started after all: a later start may try again. */
    if (atomic_exchange(&t->state, 0) & ST_WAITERS)
        tk__futex_wake(&t->state, INT_MAX, 0);
    return rc;
}

TK_API int tk_thread_start(tk_thread *t)
{
    if (!t)
        return tk__error(TK_EINVAL, "tk_thread_start: thread must not be NULL");
    return start_thread(t);
}

tk_thread *tk__thread_start_internal(const char *name, tk__thread_fn fn, void *arg)
{
    if (!name || !fn)
        return tk__error_null(TK_EINVAL, "internal thread: name and function are required");
    tk_thread *t = handle_new(K_INTERNAL);
    if (!t)
        return NULL;
    t->fn = fn;
    t->fn_arg = arg;
    atomic_store(&t->daemon, true);
    if (tk_thread_set_name(t, name) < 0 || start_thread(t) < 0) {
        unref(t);
        return NULL;
    }
    return t;
}

/* -------------------------------------------------------------- joining */

/* Sleeps on the state word until the thread is done and its pthread is
 * published (so the first joiner can reclaim it). */
static int wait_done(tk_thread *t, const tk__deadline *d)
{
    for (;;) {
        uint32_t s = state_of(t);
        if (!(s & ST_STARTED))
            return tk__error(TK_ESTATE, "cannot join thread before it is started");
        if ((s & ST_DONE) && (s & ST_PUBLISHED))
            return 0;
        if (!(s & ST_WAITERS)) {
            if (!atomic_compare_exchange_weak(&t->state, &s, s | ST_WAITERS))
                continue;
            s |= ST_WAITERS;
        }
        /* Not a cancellation point: a stopped thread may still join. */
        if (tk__futex_wait(&t->state, s, 0, d) == TK_ETIMEDOUT) {
            s = state_of(t);
            if ((s & ST_DONE) && (s & ST_PUBLISHED))
                return 0;
            return tk__error(TK_ETIMEDOUT, "join timed out: the thread is still running");
        }
    }
}

TK_API int tk_thread_join(tk_thread *t, double timeout)
{
    if (!t)
        return tk__error(TK_EINVAL, "tk_thread_join: thread must not be NULL");
    tk__deadline d;
    int rc = tk__deadline_init(&d, timeout, "tk_thread_join");
    if (rc < 0)
        return rc;
    uint32_t s = state_of(t);
    if (!(s & ST_STARTED))
        return tk__error(TK_ESTATE, "cannot join thread before it is started");
    if (foreign(t))
        return 0; /* its thread does not exist in this process */
    if (t->kind == K_DUMMY)
        return tk__error(TK_ESTATE, "cannot join a dummy thread");
    if (is_self(t))
        return tk__error(TK_ESTATE, "cannot join current thread");
    /* Without a timeout, the first joiner waits in pthread_join itself:
     * exactly what raw pthreads cost, and the pthread is reclaimed there. */
    if (d.kind == TK__DL_FOREVER && is_created(t) && (s & ST_PUBLISHED) &&
        !(atomic_fetch_or(&t->state, ST_RECLAIMED) & ST_RECLAIMED)) {
        int r = pthread_join(t->pthread, NULL);
        if (r != 0)
            panic_errno("cannot join a thread", r);
        return 0;
    }
    rc = wait_done(t, &d);
    if (rc == 0 && is_created(t))
        reclaim(t, true); /* it is past ST_DONE: this returns at once */
    return rc;
}

/* ------------------------------------------------------------- getters */

TK_API bool tk_thread_is_alive(const tk_thread *t)
{
    if (!t)
        return false;
    uint32_t s = state_of(t);
    return (s & ST_STARTED) && !(s & ST_DONE) && !foreign(t);
}

TK_API int tk_thread_result(const tk_thread *t)
{
    if (!t || !(state_of(t) & ST_DONE))
        return TK_EXITCODE_NONE;
    return t->result;
}

TK_API unsigned long tk_thread_ident(const tk_thread *t)
{
    if (!t)
        return 0;
    for (;;) {
        unsigned long id = atomic_load_explicit(&((tk_thread *)t)->ident, memory_order_relaxed);
        if (id != 0 || !(state_of(t) & ST_STARTED))
            return id;
        /* Listed by enumerate a moment before its start has returned. */
        sched_yield();
    }
}

TK_API long tk_thread_native_id(const tk_thread *t)
{
    if (!t)
        return 0;
    tk_thread *m = (tk_thread *)t; /* logically const: only waits */
    for (;;) {
        uint32_t v = atomic_load(&m->native_id);
        if (v != 0 && v != NID_WAITING)
            return (long)v;
        uint32_t s = state_of(t);
        if (!(s & ST_STARTED) || (s & ST_DONE) || foreign(t))
            return 0;
        if (v == 0 && !atomic_compare_exchange_weak(&m->native_id, &v, NID_WAITING))
            continue;
        /* The new thread publishes its id first thing; the short slices
         * only guard against a start that failed meanwhile. */
        tk__deadline d;
        tk__deadline_init(&d, 0.05, NULL);
        tk__futex_wait(&m->native_id, NID_WAITING, 0, &d);
    }
}

TK_API const char *tk_thread_name(const tk_thread *t)
{
    return t ? t->name : "";
}

TK_API bool tk_thread_daemon(const tk_thread *t)
{
    return t && atomic_load(&((tk_thread *)t)->daemon);
}

/* ------------------------------------------------------------- setters */

/* Gives the OS thread its new name; called with the registry lock held,
 * which keeps a thread that is not done from being reclaimed. The thread may
 * be naming itself at this moment (or be about to), hence the hand-over
 * through os_name_state. */
static void os_name_set(tk_thread *t, const char *name)
{
    if (!is_created(t))
        return; /* main and dummy threads keep their OS name */
    for (;;) {
        uint32_t s = state_of(t);
        if (!(s & ST_STARTED)) {
            copy_os_name(t, name); /* read by the thread once started */
            return;
        }
        if ((s & ST_DONE) || foreign(t))
            return;
        int st = atomic_load(&t->os_name_state);
        if (st == OSN_PENDING &&
            atomic_compare_exchange_weak(&t->os_name_state, &st, OSN_RENAMING)) {
            copy_os_name(t, name); /* the thread applies it when it starts */
            atomic_store(&t->os_name_state, OSN_PENDING);
            return;
        }
        if (st == OSN_APPLIED && (s & ST_PUBLISHED)) {
            copy_os_name(t, name);
            pthread_setname_np(t->pthread, t->os_name);
            return;
        }
        sched_yield(); /* it is naming itself, or its start has not returned */
    }
}

TK_API int tk_thread_set_name(tk_thread *t, const char *name)
{
    if (!t || !name)
        return tk__error(TK_EINVAL, "tk_thread_set_name: thread and name must not be NULL");
    size_t n = strlen(name);
    char *heap = NULL;
    if (n >= sizeof t->name_buf && !(heap = tk__strdup(name)))
        return TK_ENOMEM;
    reg_lock_take();
    char *old = t->name;
    if (heap) {
        t->name = heap;
    } else {
        memmove(t->name_buf, name, n + 1);
        t->name = t->name_buf;
    }
    if (old != t->name_buf && old != t->name)
        tk__free(old);
    os_name_set(t, t->name);
    reg_lock_drop();
    return 0;
}

static bool started_or_running(const tk_thread *t)
{
    return !is_created(t) || (state_of(t) & ST_STARTED);
}

TK_API int tk_thread_set_daemon(tk_thread *t, bool daemon)
{
    if (!t)
        return tk__error(TK_EINVAL, "tk_thread_set_daemon: thread must not be NULL");
    if (started_or_running(t))
        return tk__error(TK_ESTATE, "cannot set daemon status of active thread");
    atomic_store(&t->daemon, daemon);
    return 0;
}

TK_API int tk_thread_set_stack_size(tk_thread *t, size_t bytes)
{
    if (!t)
        return tk__error(TK_EINVAL, "tk_thread_set_stack_size: thread must not be NULL");
    if (started_or_running(t))
        return tk__error(TK_ESTATE, "cannot set the stack size of a started thread");
    if (bytes != 0 && (bytes < STACK_MIN || bytes < (size_t)PTHREAD_STACK_MIN))
        return tk__error(TK_EINVAL, "size not valid: %zu bytes", bytes);
    t->stack_size = bytes;
    return 0;
}

/* ---------------------------------------------------------------- stop */

TK_API int tk_thread_stop(tk_thread *t)
{
    if (!t)
        return TK_EINVAL; /* no message: formatting is not async-signal-safe */
    tk__stop_request(&t->stop);
    return 0;
}

TK_API bool tk_stop_requested(void)
{
    struct tk__stop *s = tk__tls()->stop;
    if (!s) {
        /* Nobody can have stopped a thread that has no handle yet, except
         * the main thread, whose handle exists from the start. */
        if (!caller_is_main())
            return false;
        bind_main();
        s = tk__tls()->stop;
    }
    return atomic_load(&s->requested) != 0;
}

TK_API int tk_sleep(double seconds)
{
    tk__deadline d;
    int rc = tk__deadline_init(&d, seconds, "tk_sleep");
    if (rc < 0)
        return rc;
    if (!tk__tls()->stop)
        tk_current_thread(); /* main or a new dummy binds its stop state */
    struct tk__stop *s = tk__tls()->stop;
    if (!s) { /* out of memory for a dummy: a plain sleep */
        _Atomic uint32_t never = 0;
        while (tk__futex_wait(&never, 0, 0, &d) != TK_ETIMEDOUT)
            ;
        return 0;
    }
    if (sleep_until(s, &d) == TK_ECANCELED)
        return tk__error(TK_ECANCELED, "tk_sleep: a stop was requested");
    return 0;
}

/* ---------------------------------------------------- references, lists */

TK_API void tk_thread_free(tk_thread *t)
{
    reap_orphans();
    if (!t || is_immortal(t))
        return;
    if (t == tk__tls()->thread) {
        /* The runtime-owned tk_current_thread() pointer is this very
         * object; only references enumerate handed out may be dropped. */
        if (self_refs == 0)
            return;
        self_refs--;
    }
    unref(t);
}

static void put(tk_thread **out, size_t cap, size_t *n, tk_thread *t, tk_thread *self)
{
    if (*n < cap) {
        out[*n] = t;
        ref(t);
        if (t == self && !is_immortal(t))
            self_refs++;
    }
    (*n)++;
}

TK_API size_t tk_thread_enumerate(tk_thread **out, size_t cap)
{
    if (!out)
        cap = 0;
    tk_thread *self = tk__tls()->thread;
    size_t n = 0;
    reg_lock_take();
    put(out, cap, &n, atomic_load(&main_thread), self);
    for (tk_thread *t = reg_head; t; t = t->next)
        put(out, cap, &n, t, self);
    reg_lock_drop();
    return n;
}

TK_API size_t tk_active_count(void)
{
    reg_lock_take();
    size_t n = 1 + reg_count;
    reg_lock_drop();
    return n;
}

bool tk__thread_is_foreign(const tk_thread *t)
{
    return t && foreign(t);
}

struct tk__stop *tk__thread_stop_state(tk_thread *t)
{
    return &t->stop;
}

/* ------------------------------------------------------ runtime hooks */

/* Step (1) of the end-of-program procedure: join every live non-daemon
 * thread but the caller. Loop until none is left, as a joined thread may
 * have started others before the procedure began refusing new starts. */
static void thread_shutdown(void)
{
    tk_thread *self = tk__tls()->thread;
    for (;;) {
        tk_thread *victim = NULL;
        reg_lock_take();
        for (tk_thread *t = reg_head; t && !victim; t = t->next)
            if (t != self && t->kind != K_DUMMY && !atomic_load(&t->daemon))
                victim = t;
        if (victim)
            ref(victim);
        reg_lock_drop();
        if (!victim)
            return;
        tk_thread_join(victim, TK_FOREVER);
        unref(victim);
    }
}

static void thread_atfork_prepare(void)
{
    reg_lock_take();
    fork_thread = tk__tls()->thread;
    fork_from_main = caller_is_main();
}

static void thread_atfork_parent(void)
{
    reg_lock_drop();
}

/* Makes a stop state copied from the parent usable by the one thread the
 * child has: no waiter, no stopper mid-flight, and a wake descriptor of its
 * own (the inherited one is shared with the parent's thread). */
static void stop_after_fork(struct tk__stop *s)
{
    atomic_store(&s->waiting, 0);
    atomic_store(&s->wakers, 0);
    int fd = atomic_exchange(&s->wake_fd, -1);
    if (fd >= 0)
        close(fd);
}

/* The parent's other threads do not exist here: drop the reference each
 * held on its own handle (a dummy's is the registry's), so freeing the
 * foreign handle releases its memory. Ones nobody else references become
 * orphans, freed later: this hook may not free. */
static void drop_vanished(tk_thread *list, tk_thread *keep)
{
    while (list) {
        tk_thread *next = list->next;
        list->in_list = false;
        if (list != keep && atomic_fetch_sub(&list->refs, 1) == 1) {
            list->next = atomic_load(&reg_orphans);
            atomic_store(&reg_orphans, list);
        }
        list = next;
    }
}

/* The forking thread's handle becomes the child's main thread. Runs in the
 * child's only thread: no allocation, no locks but our own. */
static void thread_atfork_child(void)
{
    unsigned gen = atomic_load(&cur_gen) + 1;
    atomic_store(&cur_gen, gen);
    drop_vanished(reg_head, fork_thread);
    drop_vanished(reg_hidden, fork_thread);
    reg_head = NULL;
    reg_hidden = NULL;
    reg_count = 0;
    atomic_store(&thread_counter, 0);
    atomic_store(&dummy_counter, 0);

    tk_thread *h = fork_thread;
    if (!h && fork_from_main)
        h = atomic_load(&main_thread);
    if (!h || h == &oom_dummy) {
        tk_thread *old = atomic_load(&main_thread);
        h = old == &main_slots[0] ? &main_slots[1] : &main_slots[0];
        main_slot_init(h, true);
    } else if (h->kind != K_MAIN) {
        if (h->kind == K_DUMMY && dummy_key_ok)
            pthread_setspecific(dummy_key, NULL); /* it no longer exits as a dummy */
        h->kind = K_MAIN;
        atomic_fetch_add(&h->refs, 1); /* the runtime's main-thread reference */
    }
    h->in_list = false;
    mark_running(h, getpid(), true);
    stop_after_fork(&h->stop);
    struct tk__tls *tls = tk__tls();
    if (tls->stop && tls->stop != &h->stop)
        stop_after_fork(tls->stop);
    tls->thread = NULL;
    bind_tls(h);
    atomic_store(&main_thread, h);
    /* Taken by this very thread in prepare: release it, as the parent hook
     * does. Re-initialising a held mutex is undefined, and ThreadSanitizer
     * would go on believing we hold it (double locks, false inversions). */
    reg_lock_drop();
}
