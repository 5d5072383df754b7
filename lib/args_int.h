/*
 * args_int.h - the layout of argument bags, shared by args.c, bind.c and
 * codec.c.
 *
 * tk_args and tk_kwargs share one representation (struct tk__bag): an array
 * of values, each with an optional key. Args simply never set keys.
 *
 * Small bags cost one allocation: the first TK__BAG_SLOTS values live in the
 * bag struct itself, and short strings, bytes and keys are carved from an
 * inline arena. Arena space is never reused (a replaced or deleted value's
 * bytes stay until the bag is freed), which keeps placement trivial and is
 * bounded by the arena's size. Anything that does not fit goes to the heap
 * and is flagged so it is freed.
 */
#ifndef TK_ARGS_INT_H
#define TK_ARGS_INT_H

#include <stdalign.h>
#include <stddef.h>

#include "internal.h"
#include "taskkit/args.h"

#define TK__BAG_SLOTS 4
#define TK__BAG_ARENA 64

enum {
    TK__VAL_HEAP = 1u, /* u.s / u.y was allocated on the heap */
    TK__KEY_HEAP = 2u  /* key was allocated on the heap */
};

struct tk__val {
    signed char type; /* a tk_type */
    unsigned char flags;
    size_t n; /* length of a str (without NUL) or bytes */
    union {
        bool b;
        int64_t i;
        double f;
        char *s; /* str, and bytes (always followed by a NUL we add) */
        void *p;
    } u;
    char *key; /* kwargs only */
};

struct tk__bag {
    size_t len, cap;
    struct tk__val *v; /* slots, or a heap array once grown */
    size_t used;       /* arena bytes handed out */
    struct tk__val slots[TK__BAG_SLOTS];
    alignas(max_align_t) char arena[TK__BAG_ARENA];
};

struct tk_args {
    struct tk__bag b;
};

struct tk_kwargs {
    struct tk__bag b;
};

/* Shared, never-modified empty bags, lent where a caller passed NULL (NULL
 * only when out of memory, the last error then says so). */
const tk_args *tk__empty_args(void);
const tk_kwargs *tk__empty_kwargs(void);

/* The index of key in b, or -1. */
ptrdiff_t tk__bag_find(const struct tk__bag *b, const char *key);

/* Makes room for `extra` more values (the bag is unchanged on failure). */
int tk__bag_reserve(struct tk__bag *b, size_t extra);

/* Appends a value; v->u.s (for str/bytes, `n` bytes) and key are copied
 * into the bag. The bag is unchanged on failure. */
int tk__bag_push(struct tk__bag *b, const char *key, const struct tk__val *v);

/* Looks key up: replaces its value in place, or appends. Copies as above. */
int tk__bag_set(struct tk__bag *b, const char *key, const struct tk__val *v);

/*
 * Encoding straight into a caller's buffer (a shared queue's ring, a pipe
 * message), without tk_args_encode's intermediate allocation:
 * tk__args_encoded_len checks the bags (TK_ETYPE for pointers, TK_EOVERFLOW)
 * and gives the exact size, with a last error on failure; tk__args_encode_to
 * then writes exactly that many bytes to dst and returns the count. The
 * bags must not change in between.
 */
int tk__args_encoded_len(const tk_args *args, const tk_kwargs *kwargs, size_t *len);
size_t tk__args_encode_to(const tk_args *args, const tk_kwargs *kwargs, void *dst);

#endif /* TK_ARGS_INT_H */
