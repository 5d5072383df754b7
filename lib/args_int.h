/*
 * args_int.h - the layout of argument bags, shared by args.c, bind.c and
 * codec.c.
 *
 * tk_args and tk_kwargs share one representation (struct tk__bag): an array
 * of values, each with an optional key. Args simply never set keys.
 *
 * Small bags cost one allocation: values live in slots stored right behind
 * the bag header, and short strings, bytes and keys are carved from an
 * inline arena behind the slots. A bag built all at once (tk_args_of,
 * tk_args_from, a copy) gets exactly the slots and arena its values need,
 * so a one-integer bag is 72 bytes, small enough for the allocator's
 * fastest bins; a bag made empty (tk_args_new) to be filled later gets
 * TK__BAG_SLOTS slots and TK__BAG_ARENA bytes. Arena space is never reused
 * (a replaced or deleted value's bytes stay until the bag is freed), which
 * keeps placement trivial and is bounded by the arena's size. Anything that
 * does not fit goes to the heap and is flagged so it is freed.
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

/* Inline storage a built bag may get; more values or bytes go to the heap. */
#define TK__BAG_MAX_SLOTS 1024
#define TK__BAG_MAX_ARENA (1u << 20)

/* The header of a bag's allocation: nslots values (struct tk__val) follow
 * it, then arena_size arena bytes (both may be 0). tk_args and tk_kwargs
 * are this header, so their allocation is sizeof(tk_args) plus the inline
 * storage; a bag is never declared by value except empty. */
struct tk__bag {
    size_t len, cap;
    struct tk__val *v;   /* the inline slots, or a heap array once grown */
    size_t used;         /* arena bytes handed out */
    uint32_t nslots;     /* inline slots */
    uint32_t arena_size; /* inline arena bytes */
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
