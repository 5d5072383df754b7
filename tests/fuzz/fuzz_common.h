/*
 * fuzz_common.h - helpers shared by the libFuzzer targets.
 *
 * FZ_CHECK states an oracle: when it does not hold the target aborts, which
 * libFuzzer reports as a crash and saves the input. The bag comparisons go
 * through the public getters only, floats bit by bit (NaN payloads count).
 */
#ifndef TK_FUZZ_COMMON_H
#define TK_FUZZ_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <taskkit.h>

#define FZ_CHECK(cond)                                                         \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: oracle failed: %s (last error: %s)\n",     \
                    __FILE__, __LINE__, #cond, tk_last_error());               \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* One value, read by type through either bag kind's getters. */
struct fz_val {
    tk_type t;
    int rc;
    bool b;
    int64_t i;
    double f;
    const void *p;
    size_t n;
};

static inline struct fz_val fz_arg(const tk_args *a, size_t i)
{
    struct fz_val v = {.t = tk_args_type(a, i)};
    switch (v.t) {
    case TK_TYPE_BOOL: v.rc = tk_args_get_bool(a, i, &v.b); break;
    case TK_TYPE_INT: v.rc = tk_args_get_int(a, i, &v.i); break;
    case TK_TYPE_FLOAT: v.rc = tk_args_get_float(a, i, &v.f); break;
    case TK_TYPE_STR: {
        const char *s = NULL;
        v.rc = tk_args_get_str(a, i, &s);
        v.p = s;
        v.n = s ? strlen(s) : 0;
        break;
    }
    case TK_TYPE_BYTES: v.rc = tk_args_get_bytes(a, i, &v.p, &v.n); break;
    case TK_TYPE_PTR: v.rc = tk_args_get_ptr(a, i, (void **)&v.p); break;
    default: break;
    }
    return v;
}

static inline struct fz_val fz_kwarg(const tk_kwargs *k, const char *key)
{
    struct fz_val v = {.t = tk_kwargs_type(k, key)};
    switch (v.t) {
    case TK_TYPE_BOOL: v.rc = tk_kwargs_get_bool(k, key, &v.b); break;
    case TK_TYPE_INT: v.rc = tk_kwargs_get_int(k, key, &v.i); break;
    case TK_TYPE_FLOAT: v.rc = tk_kwargs_get_float(k, key, &v.f); break;
    case TK_TYPE_STR: {
        const char *s = NULL;
        v.rc = tk_kwargs_get_str(k, key, &s);
        v.p = s;
        v.n = s ? strlen(s) : 0;
        break;
    }
    case TK_TYPE_BYTES: v.rc = tk_kwargs_get_bytes(k, key, &v.p, &v.n); break;
    case TK_TYPE_PTR: v.rc = tk_kwargs_get_ptr(k, key, (void **)&v.p); break;
    default: break;
    }
    return v;
}

static inline bool fz_val_equal(const struct fz_val *x, const struct fz_val *y)
{
    if (x->t != y->t || x->rc != 0 || y->rc != 0)
        return false;
    switch (x->t) {
    case TK_TYPE_BOOL: return x->b == y->b;
    case TK_TYPE_INT: return x->i == y->i;
    case TK_TYPE_FLOAT: return memcmp(&x->f, &y->f, sizeof x->f) == 0;
    case TK_TYPE_STR:
    case TK_TYPE_BYTES:
        return x->n == y->n && (x->n == 0 || memcmp(x->p, y->p, x->n) == 0);
    case TK_TYPE_PTR: return x->p == y->p;
    case TK_TYPE_NONE: return true;
    default: return false;
    }
}

static inline bool fz_args_equal(const tk_args *x, const tk_args *y)
{
    size_t n = tk_args_len(x);
    if (n != tk_args_len(y))
        return false;
    for (size_t i = 0; i < n; i++) {
        struct fz_val a = fz_arg(x, i), b = fz_arg(y, i);
        if (!fz_val_equal(&a, &b))
            return false;
    }
    return true;
}

static inline bool fz_kwargs_equal(const tk_kwargs *x, const tk_kwargs *y)
{
    size_t n = tk_kwargs_len(x);
    if (n != tk_kwargs_len(y))
        return false;
    for (size_t i = 0; i < n; i++) {
        const char *kx = tk_kwargs_key(x, i), *ky = tk_kwargs_key(y, i);
        if (!kx || !ky || strcmp(kx, ky) != 0)
            return false;
        struct fz_val a = fz_kwarg(x, kx), b = fz_kwarg(y, ky);
        if (!fz_val_equal(&a, &b))
            return false;
    }
    return true;
}

#endif
