/*
 * future.c - tk_future: one allocation per submitted task, completed with
 * an atomic state change and a futex wake-up that is skipped when nobody
 * waits, so a busy pool makes no system call per task.
 *
 * Waiters sleep on `seq`, a sequence word, not on `state`: the stop
 * mechanism bumps the word a stopped thread sleeps on (internal.h), which
 * must never corrupt the state. tk_future_wait_any sleeps on one global
 * sequence word that completions bump only while someone waits there.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool_int.h"
#include "spin_int.h"

static _Atomic uint32_t any_seq;
static atomic_int any_waiters;

/* Waiters spin briefly (spin_int.h) before they sleep: a task that ends
 * within microseconds then costs the waiter no system call. One budget for
 * all futures: they come from a few pools, with similar task lengths. */
static atomic_int wait_spin;

static bool future_done(void *f)
{
    return atomic_load_explicit(&((tk_future *)f)->state, memory_order_acquire) == TK__F_DONE;
}

static void cb_lock(tk_future *f)
{
    while (atomic_flag_test_and_set_explicit(&f->cb_lock, memory_order_acquire))
        ;
}

static void cb_unlock(tk_future *f)
{
    atomic_flag_clear_explicit(&f->cb_lock, memory_order_release);
}

tk_future *tk__future_new(tk_task fn, tk_args *args, tk_kwargs *kwargs, bool ext)
{
    tk_future *f = tk__calloc(1, sizeof *f + (ext ? sizeof(struct tk__fx) : 0));
    if (!f) {
        tk_args_free(args);
        tk_kwargs_free(kwargs);
        return NULL;
    }
    tk__future_init(f, fn, args, kwargs);
    if (ext)
        f->x = (struct tk__fx *)(f + 1);
    return f;
}

void tk__future_init(tk_future *f, tk_task fn, tk_args *args, tk_kwargs *kwargs)
{
    atomic_init(&f->refs, 2);
    atomic_init(&f->state, TK__F_PENDING);
    atomic_flag_clear(&f->cb_lock);
    f->fn = fn;
    f->args = args;
    f->kwargs = kwargs;
}

void tk__future_drop_inputs(tk_future *f)
{
    tk_args_free(f->args);
    tk_kwargs_free(f->kwargs);
    f->args = NULL;
    f->kwargs = NULL;
    if (!f->x)
        return;
    for (size_t i = 0; f->x->items && i < f->nitems; i++) {
        tk_args_free(f->x->items[i]);
        f->x->items[i] = NULL;
    }
    tk__free(f->x->enc);
    f->x->enc = NULL;
}

void tk__future_unref(tk_future *f)
{
    if (atomic_fetch_sub(&f->refs, 1) != 1)
        return;
    tk__future_drop_inputs(f);
    tk_args_free(f->result);
    tk__free(f->error);
    for (struct tk__cb *c = f->cbs, *n; c; c = n) {
        n = c->next;
        tk__free(c);
    }
    if (f->home)
        tk__pool_recycle(f->home, f);
    else
        tk__free(f);
}

static void run_callbacks(tk_future *f, struct tk__cb *c)
{
    while (c) {
        struct tk__cb *n = c->next;
        c->cb(f, c->ud);
        tk__free(c);
        c = n;
    }
}

/* Publishes DONE (status and result must be written before) and wakes. */
static void publish_done(tk_future *f)
{
    cb_lock(f);
    atomic_store(&f->state, TK__F_DONE);
    f->pool = NULL;
    struct tk__cb *cbs = f->cbs;
    f->cbs = NULL;
    cb_unlock(f);
    atomic_fetch_add(&f->seq, 1);
    if (atomic_load(&f->waiters) > 0)
        tk__futex_wake(&f->seq, INT_MAX, 0);
    if (atomic_load(&any_waiters) > 0) {
        atomic_fetch_add(&any_seq, 1);
        tk__futex_wake(&any_seq, INT_MAX, 0);
    }
    run_callbacks(f, cbs);
}

void tk__future_finish(tk_future *f, int status, tk_args *result, char *error)
{
    /* A map chunk points into the caller's arrays, which the caller reuses
     * as soon as map returns: a done chunk must never touch them again
     * (its last reference may be dropped after that). */
    if (f->x) {
        f->x->items = NULL;
        f->x->results = NULL;
    }
    f->status = status;
    f->result = result;
    f->error = error;
    publish_done(f);
}

bool tk__future_cancel_pending(tk_future *f)
{
    int s = TK__F_PENDING;
    if (!atomic_compare_exchange_strong(&f->state, &s, TK__F_CANCELLING))
        return false;
    f->status = TK_ECANCELED;
    f->cancelled = true;
    /* As in tk__future_finish: let go of a map chunk's caller arrays now. */
    tk__future_drop_inputs(f);
    if (f->x) {
        f->x->items = NULL;
        f->x->results = NULL;
    }
    publish_done(f);
    return true;
}

int tk__future_wait(tk_future *f, unsigned flags, const tk__deadline *d)
{
    if (atomic_load(&f->state) == TK__F_DONE)
        return 0;
    long long ended = -1;
    if (d->kind != TK__DL_POLL && !((flags & TK__WAIT_CANCEL) && tk__stop_pending()) &&
        tk__spin(&wait_spin, future_done, f, &ended))
        return 0;
    int r = 0;
    atomic_fetch_add(&f->waiters, 1);
    for (;;) {
        uint32_t s = atomic_load(&f->seq);
        if (atomic_load(&f->state) == TK__F_DONE) {
            r = 0;
            break;
        }
        if (r < 0)
            break;
        r = tk__futex_wait(&f->seq, s, flags, d);
    }
    atomic_fetch_sub(&f->waiters, 1);
    if (ended >= 0 && r == 0)
        tk__spin_learn(&wait_spin, ended);
    return r;
}

/* ------------------------------------------------------------- running */

char *tk__task_error_text(int status)
{
    const char *msg = tk_last_error();
    char buf[64];
    if (!msg[0]) {
        snprintf(buf, sizeof buf, "task returned %d", status);
        msg = buf;
    }
    size_t n = strlen(msg) + 1;
    char *s = tk__malloc(n);
    if (s)
        memcpy(s, msg, n);
    return s;
}

/* Runs one call into a result bag: *scratch is reused while tasks return
 * no values, so such tasks cost no allocation. Returns the task's status;
 * *out gets the result (NULL when empty) and *err the failure text. */
static int run_one(tk_task fn, const tk_args *args, const tk_kwargs *kwargs,
                   tk_args **scratch, tk_args **out, char **err)
{
    *out = NULL;
    *err = NULL;
    if (!*scratch && !(*scratch = tk_args_new())) {
        *err = tk__task_error_text(TK_ENOMEM);
        return TK_ENOMEM;
    }
    /* Bags a task receives are never NULL: lend the shared empty ones. */
    if (!kwargs)
        kwargs = tk__empty_kwargs();
    if (!args)
        args = tk__empty_args();
    int st;
    if (!args || !kwargs) {
        st = TK_ENOMEM;
    } else {
        /* Cleared so that a task failing without a message is told apart. */
        tk__tls()->err_code = 0;
        tk__tls()->err_msg[0] = '\0';
        st = fn(args, kwargs, *scratch);
    }
    if (st != 0) {
        *err = tk__task_error_text(st);
        tk_args_free(*scratch);
        *scratch = NULL;
    } else if (tk_args_len(*scratch) > 0) {
        *out = *scratch;
        *scratch = NULL;
    }
    return st;
}

void tk__future_run(tk_future *f, tk_args **scratch)
{
    if (f->nitems == 0) {
        tk_args *res;
        char *err;
        int st = run_one(f->fn, f->args, f->kwargs, scratch, &res, &err);
        /* The bags stay with the future until its last reference goes
         * (usually the submitter's tk_future_free): freeing them here, in
         * the worker, would free memory the submitting thread allocated,
         * and glibc then takes that thread's arena lock for every bag,
         * against the submitter's own malloc calls. The contention cost
         * more than the tasks themselves. */
        tk__future_finish(f, st, res, err);
        return;
    }
    /* A chunk: every item runs; the first failure is the chunk's. */
    int first_st = 0;
    char *first_err = NULL;
    for (size_t i = 0; i < f->nitems; i++) {
        tk_args *res;
        char *err;
        int st = run_one(f->fn, f->x->items[i], NULL, scratch, &res, &err);
        tk_args_free(f->x->items[i]);
        f->x->items[i] = NULL;
        if (st == 0 && !res && !(res = tk_args_new()))
            st = TK_ENOMEM;
        f->x->results[i] = st == 0 ? res : NULL;
        if (st != 0 && first_st == 0) {
            first_st = st;
            first_err = err;
            f->x->fail_index = i;
        } else {
            tk__free(err);
        }
    }
    tk__future_finish(f, first_st, NULL, first_err);
}

/* --------------------------------------------------------------- public */

TK_API int tk_future_wait(tk_future *f, double timeout)
{
    if (!f)
        return tk__error(TK_EINVAL, "tk_future_wait: NULL future");
    tk__deadline d;
    int r = tk__deadline_init(&d, timeout, "tk_future_wait");
    if (r < 0)
        return r;
    r = tk__future_wait(f, TK__WAIT_CANCEL, &d);
    if (r == TK_ETIMEDOUT)
        return tk__error(r, "future wait timed out");
    if (r == TK_ECANCELED)
        return tk__error(r, "future wait interrupted: a stop was requested");
    return r;
}

TK_API int tk_future_result(tk_future *f, double timeout, const tk_args **result)
{
    if (result)
        *result = NULL;
    int r = tk_future_wait(f, timeout);
    if (r < 0)
        return r;
    if (f->status == TK_ECANCELED)
        return tk__error(TK_ECANCELED, "%s", tk_future_error(f));
    if (f->status == TK_EBROKEN)
        return tk__error(TK_EBROKEN, "%s", tk_future_error(f));
    if (f->status != 0)
        return tk__error(TK_ETASK, "%s", tk_future_error(f));
    const tk_args *res = f->result;
    if (!res && !(res = tk__empty_args()))
        return tk__error(TK_ENOMEM, "out of memory");
    if (result)
        *result = res;
    return 0;
}

TK_API int tk_future_status(const tk_future *f)
{
    if (!f)
        return TK_EINVAL;
    return atomic_load(&((tk_future *)f)->state) == TK__F_DONE ? f->status : INT_MIN;
}

TK_API bool tk_future_done(const tk_future *f)
{
    return f && atomic_load(&((tk_future *)f)->state) == TK__F_DONE;
}

TK_API bool tk_future_cancel(tk_future *f)
{
    if (!f)
        return false;
    if (tk__future_cancel_pending(f))
        return true;
    int s = atomic_load(&f->state);
    if (s == TK__F_CANCELLING)
        return true;
    return s == TK__F_DONE && f->cancelled;
}

TK_API const char *tk_future_error(const tk_future *f)
{
    if (!f || !tk_future_done(f))
        return "";
    if (f->error)
        return f->error;
    if (f->cancelled)
        return "the future was cancelled";
    if (f->status == TK_ECANCELED)
        return "the task was interrupted: its worker process was killed";
    if (f->status == TK_EBROKEN)
        return "the worker process running the task died unexpectedly";
    return "";
}

TK_API void tk_future_free(tk_future *f)
{
    if (f)
        tk__future_unref(f);
}

TK_API int tk_future_add_done_callback(tk_future *f, void (*cb)(tk_future *, void *), void *ud)
{
    if (!f || !cb)
        return tk__error(TK_EINVAL, "tk_future_add_done_callback: NULL %s",
                         f ? "callback" : "future");
    struct tk__cb *c = tk__malloc(sizeof *c);
    if (!c)
        return TK_ENOMEM;
    c->cb = cb;
    c->ud = ud;
    c->next = NULL;
    cb_lock(f);
    if (atomic_load(&f->state) != TK__F_DONE) {
        /* Appended, so callbacks run in the order they were added. */
        struct tk__cb **pp = &f->cbs;
        while (*pp)
            pp = &(*pp)->next;
        *pp = c;
        cb_unlock(f);
        return 0;
    }
    cb_unlock(f);
    tk__free(c);
    cb(f, ud);
    return 0;
}

static int first_done(tk_future **fs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fs[i] && atomic_load(&fs[i]->state) == TK__F_DONE)
            return (int)(i > INT_MAX ? INT_MAX : i);
    return -1;
}

TK_API int tk_future_wait_any(tk_future **fs, size_t n, double timeout)
{
    if (!fs || n == 0)
        return tk__error(TK_EINVAL, "tk_future_wait_any: %s", fs ? "no futures (n is 0)"
                                                                : "NULL array");
    size_t live = 0;
    for (size_t i = 0; i < n; i++)
        live += fs[i] != NULL;
    if (live == 0)
        return tk__error(TK_EINVAL, "tk_future_wait_any: every entry is NULL");
    tk__deadline d;
    int r = tk__deadline_init(&d, timeout, "tk_future_wait_any");
    if (r < 0)
        return r;
    atomic_fetch_add(&any_waiters, 1);
    int idx;
    for (;;) {
        uint32_t s = atomic_load(&any_seq);
        if ((idx = first_done(fs, n)) >= 0 || r < 0)
            break;
        r = tk__futex_wait(&any_seq, s, TK__WAIT_CANCEL, &d);
    }
    atomic_fetch_sub(&any_waiters, 1);
    if (idx >= 0)
        return idx;
    if (r == TK_ECANCELED)
        return tk__error(r, "wait interrupted: a stop was requested");
    return tk__error(TK_ETIMEDOUT, "no future finished before the timeout");
}
