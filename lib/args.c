/*
 * args.c - argument bags: tk_args (Python's args tuple) and tk_kwargs (its
 * kwargs dict), their builders and typed getters.
 *
 * Both are a struct tk__bag (args_int.h). Every modification first makes
 * room, then copies the caller's data, and only then commits, so a failure
 * (TK_ENOMEM) leaves the bag exactly as it was.
 */
#include <stdarg.h>
#include <string.h>

#include "args_int.h"

/* Storage for a zero-length bytes value: the getters promise a non-NULL
 * pointer, and an empty value should cost nothing. */
static alignas(max_align_t) char empty_bytes[1];

const char *tk_type_name(tk_type t)
{
    switch (t) {
    case TK_TYPE_NONE: return "NoneType";
    case TK_TYPE_BOOL: return "bool";
    case TK_TYPE_INT: return "int";
    case TK_TYPE_FLOAT: return "float";
    case TK_TYPE_STR: return "str";
    case TK_TYPE_BYTES: return "bytes";
    case TK_TYPE_PTR: return "pointer";
    default: return "invalid";
    }
}

/* ------------------------------------------------------------ the bag */

_Static_assert(sizeof(struct tk__bag) % alignof(struct tk__val) == 0,
               "the inline slots follow the bag header");

static struct tk__val *bag_slots(struct tk__bag *b)
{
    return (struct tk__val *)(b + 1);
}

static char *bag_arena(struct tk__bag *b)
{
    return (char *)(bag_slots(b) + b->nslots);
}

static void bag_init(struct tk__bag *b)
{
    b->len = 0;
    b->cap = b->nslots;
    b->v = bag_slots(b);
    b->used = 0;
}

/* a + b, at most the inline limit (each term is at most twice it). */
static size_t arena_add(size_t a, size_t b)
{
    a += b;
    return a < TK__BAG_MAX_ARENA ? a : TK__BAG_MAX_ARENA;
}

/* A new empty bag (the memory of a tk_args or tk_kwargs) with room inline
 * for nslots values and `arena` payload bytes, within the inline limits. */
static void *bag_new(size_t nslots, size_t arena)
{
    /* Beyond the limits the values go to a heap array (which would
     * replace inline slots anyway) and big payloads to their own blocks. */
    nslots = nslots <= TK__BAG_MAX_SLOTS ? nslots : 0;
    arena = arena < TK__BAG_MAX_ARENA ? arena : TK__BAG_MAX_ARENA;
    struct tk__bag *b = tk__malloc(sizeof *b + nslots * sizeof(struct tk__val) + arena);
    if (b) {
        b->nslots = (uint32_t)nslots;
        b->arena_size = (uint32_t)arena;
        bag_init(b);
    }
    return b;
}

/* The arena bytes a value (and its key) takes when stored (see bag_place),
 * with room for aligning bytes; saturates rather than overflows. */
static size_t val_need(const struct tk__val *v, const char *key)
{
    size_t n = 0;
    if (v->type == TK_TYPE_STR || (v->type == TK_TYPE_BYTES && v->n > 0))
        n = v->n < TK__BAG_MAX_ARENA ? v->n + 1 + (v->type == TK_TYPE_BYTES ? 7 : 0)
                                     : TK__BAG_MAX_ARENA;
    if (key) {
        size_t k = strlen(key);
        n += k < TK__BAG_MAX_ARENA ? k + 1 : TK__BAG_MAX_ARENA;
    }
    return n;
}

static void val_release(struct tk__val *v)
{
    if (v->flags & TK__VAL_HEAP)
        tk__free(v->u.s);
    if (v->flags & TK__KEY_HEAP)
        tk__free(v->key);
    v->flags = 0;
}

static void bag_clear(struct tk__bag *b)
{
    for (size_t i = 0; i < b->len; i++)
        val_release(&b->v[i]);
    if (b->v != bag_slots(b))
        tk__free(b->v);
    bag_init(b);
}

int tk__bag_reserve(struct tk__bag *b, size_t extra)
{
    if (extra <= b->cap - b->len)
        return 0;
    size_t cap = b->cap < 2 ? 4 : b->cap * 2;
    if (cap < b->len + extra)
        cap = b->len + extra;
    if (cap > SIZE_MAX / sizeof *b->v)
        return tk__error(TK_ENOMEM, "out of memory");
    struct tk__val *v;
    if (b->v == bag_slots(b)) {
        v = tk__malloc(cap * sizeof *v);
        if (v && b->len)
            memcpy(v, b->v, b->len * sizeof *v);
    } else {
        v = tk__realloc(b->v, cap * sizeof *v);
    }
    if (!v)
        return TK_ENOMEM;
    b->v = v;
    b->cap = cap;
    return 0;
}

/* Copies n bytes plus a terminating NUL into the arena when they fit,
 * otherwise onto the heap (*heap says which). Bytes values are placed on an
 * 8-byte boundary, as the header promises, so a caller may read a struct or
 * an integer array straight out of them. */
static char *bag_place(struct tk__bag *b, const void *src, size_t n, size_t align,
                       bool *heap)
{
    char *dst;
    *heap = false;
    size_t at = (b->used + align - 1) & ~(align - 1);
    if (at <= b->arena_size && n < b->arena_size - at) {
        dst = bag_arena(b) + at;
        b->used = at + n + 1;
    } else {
        if (n == SIZE_MAX)
            return tk__error_null(TK_ENOMEM, "out of memory");
        dst = tk__malloc(n + 1);
        if (!dst)
            return NULL;
        *heap = true;
    }
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
    return dst;
}

/* Copies v's payload into the bag: out becomes the stored form. */
static int val_store(struct tk__bag *b, const struct tk__val *v, struct tk__val *out)
{
    *out = *v;
    out->flags = 0;
    out->key = NULL;
    if (v->type != TK_TYPE_STR && v->type != TK_TYPE_BYTES)
        return 0;
    if (v->n == 0 && v->type == TK_TYPE_BYTES) {
        out->u.s = empty_bytes;
        return 0;
    }
    bool heap;
    out->u.s = bag_place(b, v->u.s, v->n, v->type == TK_TYPE_BYTES ? 8 : 1, &heap);
    if (!out->u.s)
        return TK_ENOMEM;
    if (heap)
        out->flags |= TK__VAL_HEAP;
    return 0;
}

ptrdiff_t tk__bag_find(const struct tk__bag *b, const char *key)
{
    for (size_t i = 0; i < b->len; i++)
        if (strcmp(b->v[i].key, key) == 0)
            return (ptrdiff_t)i;
    return -1;
}

int tk__bag_push(struct tk__bag *b, const char *key, const struct tk__val *v)
{
    int rc = tk__bag_reserve(b, 1);
    if (rc < 0)
        return rc;
    struct tk__val nv;
    rc = val_store(b, v, &nv);
    if (rc < 0)
        return rc;
    if (key) {
        bool heap;
        nv.key = bag_place(b, key, strlen(key), 1, &heap);
        if (!nv.key) {
            val_release(&nv);
            return TK_ENOMEM;
        }
        if (heap)
            nv.flags |= TK__KEY_HEAP;
    }
    b->v[b->len++] = nv;
    return 0;
}

int tk__bag_set(struct tk__bag *b, const char *key, const struct tk__val *v)
{
    ptrdiff_t at = tk__bag_find(b, key);
    if (at < 0)
        return tk__bag_push(b, key, v);
    struct tk__val nv;
    int rc = val_store(b, v, &nv);
    if (rc < 0)
        return rc;
    struct tk__val *old = &b->v[at];
    /* Keep the key (and whether it is on the heap); swap the value only. */
    nv.key = old->key;
    nv.flags |= old->flags & TK__KEY_HEAP;
    if (old->flags & TK__VAL_HEAP)
        tk__free(old->u.s);
    *old = nv;
    return 0;
}

/* A new bag holding copies of src's values (NULL src: an empty one). */
static void *bag_copy(const struct tk__bag *src)
{
    size_t arena = 0, len = src ? src->len : 0;
    for (size_t i = 0; i < len; i++)
        arena = arena_add(arena, val_need(&src->v[i], src->v[i].key));
    struct tk__bag *dst = src ? bag_new(len, arena) : bag_new(TK__BAG_SLOTS, TK__BAG_ARENA);
    int rc = dst ? tk__bag_reserve(dst, len) : TK_ENOMEM;
    for (size_t i = 0; rc == 0 && i < len; i++)
        rc = tk__bag_push(dst, src->v[i].key, &src->v[i]);
    if (rc < 0 && dst) {
        bag_clear(dst);
        tk__free(dst);
        return NULL;
    }
    return dst;
}

/* --------------------------------------------------- reading formats */

/*
 * Reads the C value for one format code into v (payload not yet copied).
 * The caller passes a pointer to its va_list so successive calls consume the
 * arguments in order. `where` names the builder and `pos` the code's offset
 * in the format, for messages.
 */
static int read_value(char code, va_list *ap, struct tk__val *v, const char *where,
                      size_t pos)
{
    memset(v, 0, sizeof *v);
    switch (code) {
    case 'i': v->type = TK_TYPE_INT; v->u.i = va_arg(*ap, int); return 0;
    case 'l': v->type = TK_TYPE_INT; v->u.i = va_arg(*ap, int64_t); return 0;
    case 'd': v->type = TK_TYPE_FLOAT; v->u.f = va_arg(*ap, double); return 0;
    case '?': v->type = TK_TYPE_BOOL; v->u.b = va_arg(*ap, int) != 0; return 0;
    case 'n': v->type = TK_TYPE_NONE; return 0;
    case 'p': v->type = TK_TYPE_PTR; v->u.p = va_arg(*ap, void *); return 0;
    case 's':
    case 'z': {
        const char *s = va_arg(*ap, const char *);
        if (!s && code == 's')
            return tk__error(TK_EINVAL, "%s: NULL string for format code 's' at position %zu "
                             "(use 'z' to allow None)", where, pos);
        v->type = s ? TK_TYPE_STR : TK_TYPE_NONE;
        v->u.s = (char *)s;
        v->n = s ? strlen(s) : 0;
        return 0;
    }
    case 'y': {
        const void *p = va_arg(*ap, const void *);
        size_t n = va_arg(*ap, size_t);
        if (!p && n)
            return tk__error(TK_EINVAL, "%s: NULL bytes with length %zu for format code 'y' "
                             "at position %zu", where, n, pos);
        v->type = TK_TYPE_BYTES;
        v->u.s = (char *)p;
        v->n = n;
        return 0;
    }
    default:
        if (code >= 0x20 && code < 0x7f)
            return tk__error(TK_EINVAL, "%s: unknown format code '%c' at position %zu",
                             where, code, pos);
        return tk__error(TK_EINVAL, "%s: unknown format code 0x%02x at position %zu", where,
                         (unsigned)(unsigned char)code, pos);
    }
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* ------------------------------------------------------------- tk_args */

tk_args *tk_args_new(void)
{
    return bag_new(TK__BAG_SLOTS, TK__BAG_ARENA);
}

void tk_args_free(tk_args *a)
{
    if (!a)
        return;
    bag_clear(&a->b);
    tk__free(a);
}

/* The values of a tk_args_of() call read before the bag is made, so that
 * it is made to measure; longer formats grow the bag as they go. */
#define ARGS_OF_BATCH 16

tk_args *tk_args_of(const char *fmt, ...)
{
    if (!fmt)
        return tk__error_null(TK_EINVAL, "tk_args_of: format is NULL");
    struct tk__val vals[ARGS_OF_BATCH];
    size_t n = 0, arena = 0;
    int rc = 0;
    va_list ap;
    va_start(ap, fmt);
    const char *f = fmt;
    for (; *f && n < ARGS_OF_BATCH; f++) {
        if (is_space(*f))
            continue;
        if ((rc = read_value(*f, &ap, &vals[n], "tk_args_of", (size_t)(f - fmt))) < 0)
            break;
        arena = arena_add(arena, val_need(&vals[n++], NULL));
    }
    tk_args *a = NULL;
    if (rc == 0 && !(a = bag_new(*f ? TK__BAG_SLOTS + n : n, *f ? arena + TK__BAG_ARENA : arena)))
        rc = TK_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = tk__bag_push(&a->b, NULL, &vals[i]);
    for (; *f && rc == 0; f++) {
        if (is_space(*f))
            continue;
        struct tk__val v;
        rc = read_value(*f, &ap, &v, "tk_args_of", (size_t)(f - fmt));
        if (rc == 0)
            rc = tk__bag_push(&a->b, NULL, &v);
    }
    va_end(ap);
    if (rc < 0) {
        tk_args_free(a);
        return NULL;
    }
    return a;
}

tk_args *tk_args_copy(const tk_args *a)
{
    return bag_copy(a ? &a->b : NULL);
}

size_t tk_args_len(const tk_args *a)
{
    return a ? a->b.len : 0;
}

tk_type tk_args_type(const tk_args *a, size_t i)
{
    if (!a || i >= a->b.len)
        return TK_TYPE_INVALID;
    return (tk_type)a->b.v[i].type;
}

static int args_add(tk_args *a, const struct tk__val *v, const char *who)
{
    if (!a)
        return tk__error(TK_EINVAL, "%s: args is NULL", who);
    return tk__bag_push(&a->b, NULL, v);
}

int tk_args_add_none(tk_args *a)
{
    struct tk__val v = {.type = TK_TYPE_NONE};
    return args_add(a, &v, __func__);
}

int tk_args_add_bool(tk_args *a, bool x)
{
    struct tk__val v = {.type = TK_TYPE_BOOL, .u.b = x};
    return args_add(a, &v, __func__);
}

int tk_args_add_int(tk_args *a, int64_t x)
{
    struct tk__val v = {.type = TK_TYPE_INT, .u.i = x};
    return args_add(a, &v, __func__);
}

int tk_args_add_float(tk_args *a, double x)
{
    struct tk__val v = {.type = TK_TYPE_FLOAT, .u.f = x};
    return args_add(a, &v, __func__);
}

int tk_args_add_str(tk_args *a, const char *x)
{
    if (!x)
        return tk__error(TK_EINVAL, "tk_args_add_str: string is NULL "
                         "(use tk_args_add_none for None)");
    struct tk__val v = {.type = TK_TYPE_STR, .n = strlen(x), .u.s = (char *)x};
    return args_add(a, &v, __func__);
}

int tk_args_add_bytes(tk_args *a, const void *x, size_t n)
{
    if (!x && n)
        return tk__error(TK_EINVAL, "tk_args_add_bytes: bytes pointer is NULL with length %zu",
                         n);
    struct tk__val v = {.type = TK_TYPE_BYTES, .n = n, .u.s = (char *)x};
    return args_add(a, &v, __func__);
}

int tk_args_add_ptr(tk_args *a, void *x)
{
    struct tk__val v = {.type = TK_TYPE_PTR, .u.p = x};
    return args_add(a, &v, __func__);
}

/* Checks v against the wanted type; an int is accepted as a float, as
 * Python's float() would. */
static bool type_ok(const struct tk__val *v, tk_type want)
{
    return v->type == want || (want == TK_TYPE_FLOAT && v->type == TK_TYPE_INT);
}

/* Finds args[i] of the wanted type, or sets the error. */
static int args_at(const tk_args *a, size_t i, tk_type want, const void *out,
                   const struct tk__val **res, const char *who)
{
    if (!out)
        return tk__error(TK_EINVAL, "%s: out pointer is NULL", who);
    if (!a || i >= a->b.len)
        return tk__error(TK_EINDEX, "tuple index %zu out of range", i);
    const struct tk__val *v = &a->b.v[i];
    if (!type_ok(v, want))
        return tk__error(TK_ETYPE, "argument %zu must be %s, not %s", i, tk_type_name(want),
                         tk_type_name((tk_type)v->type));
    *res = v;
    return 0;
}

int tk_args_get_bool(const tk_args *a, size_t i, bool *out)
{
    const struct tk__val *v;
    int rc = args_at(a, i, TK_TYPE_BOOL, out, &v, __func__);
    if (rc == 0)
        *out = v->u.b;
    return rc;
}

int tk_args_get_int(const tk_args *a, size_t i, int64_t *out)
{
    const struct tk__val *v;
    int rc = args_at(a, i, TK_TYPE_INT, out, &v, __func__);
    if (rc == 0)
        *out = v->u.i;
    return rc;
}

int tk_args_get_float(const tk_args *a, size_t i, double *out)
{
    const struct tk__val *v;
    int rc = args_at(a, i, TK_TYPE_FLOAT, out, &v, __func__);
    if (rc == 0)
        *out = v->type == TK_TYPE_INT ? (double)v->u.i : v->u.f;
    return rc;
}

int tk_args_get_str(const tk_args *a, size_t i, const char **out)
{
    const struct tk__val *v;
    int rc = args_at(a, i, TK_TYPE_STR, out, &v, __func__);
    if (rc == 0)
        *out = v->u.s;
    return rc;
}

int tk_args_get_bytes(const tk_args *a, size_t i, const void **out, size_t *n)
{
    if (!n)
        return tk__error(TK_EINVAL, "tk_args_get_bytes: length pointer is NULL");
    const struct tk__val *v;
    int rc = args_at(a, i, TK_TYPE_BYTES, out, &v, __func__);
    if (rc == 0) {
        *out = v->u.s;
        *n = v->n;
    }
    return rc;
}

int tk_args_get_ptr(const tk_args *a, size_t i, void **out)
{
    const struct tk__val *v;
    int rc = args_at(a, i, TK_TYPE_PTR, out, &v, __func__);
    if (rc == 0)
        *out = v->u.p;
    return rc;
}

/* Converts the public tk_value at position i into the bag's form. */
static int from_value(const tk_value *x, size_t i, struct tk__val *v)
{
    memset(v, 0, sizeof *v);
    v->type = (signed char)x->type;
    switch (x->type) {
    case TK_TYPE_NONE: return 0;
    case TK_TYPE_BOOL: v->u.b = x->v.b; return 0;
    case TK_TYPE_INT: v->u.i = x->v.i; return 0;
    case TK_TYPE_FLOAT: v->u.f = x->v.f; return 0;
    case TK_TYPE_PTR: v->u.p = x->v.p; return 0;
    case TK_TYPE_STR:
        if (!x->v.s)
            return tk__error(TK_EINVAL, "tk_args_from: value %zu is a NULL string "
                             "(use TK_NONE for None)", i);
        v->u.s = (char *)x->v.s;
        v->n = strlen(x->v.s);
        return 0;
    case TK_TYPE_BYTES:
        if (!x->v.y && x->n)
            return tk__error(TK_EINVAL, "tk_args_from: value %zu is NULL bytes with "
                             "length %zu", i, x->n);
        v->u.s = (char *)x->v.y;
        v->n = x->n;
        return 0;
    case TK_TYPE_INVALID:
        /* what TK_ARGS makes of an unsigned value above INT64_MAX */
        return tk__error(TK_EOVERFLOW, "tk_args_from: value %zu is an unsigned integer "
                         "too large for int (int64_t)", i);
    default:
        return tk__error(TK_EINVAL, "tk_args_from: value %zu has unknown type %d", i,
                         (int)x->type);
    }
}

tk_args *tk_args_from(const tk_value *vals, size_t n)
{
    if (!vals && n)
        return tk__error_null(TK_EINVAL, "tk_args_from: values are NULL with count %zu", n);
    size_t arena = 0;
    for (size_t i = 0; i < n; i++) {
        struct tk__val v;
        if (from_value(&vals[i], i, &v) < 0)
            return NULL;
        arena = arena_add(arena, val_need(&v, NULL));
    }
    tk_args *a = bag_new(n, arena);
    if (!a)
        return NULL;
    int rc = tk__bag_reserve(&a->b, n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct tk__val v;
        rc = from_value(&vals[i], i, &v);
        if (rc == 0)
            rc = tk__bag_push(&a->b, NULL, &v);
    }
    if (rc < 0) {
        tk_args_free(a);
        return NULL;
    }
    return a;
}

/* ----------------------------------------------------------- tk_kwargs */

tk_kwargs *tk_kwargs_new(void)
{
    return bag_new(TK__BAG_SLOTS, TK__BAG_ARENA);
}

void tk_kwargs_free(tk_kwargs *k)
{
    if (!k)
        return;
    bag_clear(&k->b);
    tk__free(k);
}

tk_kwargs *tk_kwargs_copy(const tk_kwargs *k)
{
    return bag_copy(k ? &k->b : NULL);
}

size_t tk_kwargs_len(const tk_kwargs *k)
{
    return k ? k->b.len : 0;
}

const char *tk_kwargs_key(const tk_kwargs *k, size_t i)
{
    return k && i < k->b.len ? k->b.v[i].key : NULL;
}

static const struct tk__val *kw_lookup(const tk_kwargs *k, const char *key)
{
    if (!k || !key || !*key)
        return NULL;
    ptrdiff_t at = tk__bag_find(&k->b, key);
    return at < 0 ? NULL : &k->b.v[at];
}

bool tk_kwargs_has(const tk_kwargs *k, const char *key)
{
    return kw_lookup(k, key) != NULL;
}

tk_type tk_kwargs_type(const tk_kwargs *k, const char *key)
{
    const struct tk__val *v = kw_lookup(k, key);
    return v ? (tk_type)v->type : TK_TYPE_INVALID;
}

static int check_key(const char *key, const char *who)
{
    if (!key)
        return tk__error(TK_EINVAL, "%s: key is NULL", who);
    if (!*key)
        return tk__error(TK_EINVAL, "%s: key is empty", who);
    return 0;
}

int tk_kwargs_del(tk_kwargs *k, const char *key)
{
    if (!k)
        return tk__error(TK_EINVAL, "tk_kwargs_del: kwargs is NULL");
    int rc = check_key(key, __func__);
    if (rc < 0)
        return rc;
    ptrdiff_t at = tk__bag_find(&k->b, key);
    if (at < 0)
        return tk__error(TK_EKEY, "KeyError: '%s'", key);
    struct tk__bag *b = &k->b;
    val_release(&b->v[at]);
    memmove(&b->v[at], &b->v[at + 1], (b->len - (size_t)at - 1) * sizeof *b->v);
    b->len--;
    return 0;
}

static int kw_set(tk_kwargs *k, const char *key, const struct tk__val *v, const char *who)
{
    if (!k)
        return tk__error(TK_EINVAL, "%s: kwargs is NULL", who);
    int rc = check_key(key, who);
    if (rc < 0)
        return rc;
    return tk__bag_set(&k->b, key, v);
}

int tk_kwargs_set_none(tk_kwargs *k, const char *key)
{
    struct tk__val v = {.type = TK_TYPE_NONE};
    return kw_set(k, key, &v, __func__);
}

int tk_kwargs_set_bool(tk_kwargs *k, const char *key, bool x)
{
    struct tk__val v = {.type = TK_TYPE_BOOL, .u.b = x};
    return kw_set(k, key, &v, __func__);
}

int tk_kwargs_set_int(tk_kwargs *k, const char *key, int64_t x)
{
    struct tk__val v = {.type = TK_TYPE_INT, .u.i = x};
    return kw_set(k, key, &v, __func__);
}

int tk_kwargs_set_float(tk_kwargs *k, const char *key, double x)
{
    struct tk__val v = {.type = TK_TYPE_FLOAT, .u.f = x};
    return kw_set(k, key, &v, __func__);
}

int tk_kwargs_set_str(tk_kwargs *k, const char *key, const char *x)
{
    if (!x)
        return tk__error(TK_EINVAL, "tk_kwargs_set_str: string is NULL "
                         "(use tk_kwargs_set_none for None)");
    struct tk__val v = {.type = TK_TYPE_STR, .n = strlen(x), .u.s = (char *)x};
    return kw_set(k, key, &v, __func__);
}

int tk_kwargs_set_bytes(tk_kwargs *k, const char *key, const void *x, size_t n)
{
    if (!x && n)
        return tk__error(TK_EINVAL,
                         "tk_kwargs_set_bytes: bytes pointer is NULL with length %zu", n);
    struct tk__val v = {.type = TK_TYPE_BYTES, .n = n, .u.s = (char *)x};
    return kw_set(k, key, &v, __func__);
}

int tk_kwargs_set_ptr(tk_kwargs *k, const char *key, void *x)
{
    struct tk__val v = {.type = TK_TYPE_PTR, .u.p = x};
    return kw_set(k, key, &v, __func__);
}

/* Finds kwargs[key] of the wanted type, or sets the error. */
static int kw_at(const tk_kwargs *k, const char *key, tk_type want, const void *out,
                 const struct tk__val **res, const char *who)
{
    int rc = check_key(key, who);
    if (rc < 0)
        return rc;
    if (!out)
        return tk__error(TK_EINVAL, "%s: out pointer is NULL", who);
    const struct tk__val *v = kw_lookup(k, key);
    if (!v)
        return tk__error(TK_EKEY, "KeyError: '%s'", key);
    if (!type_ok(v, want))
        return tk__error(TK_ETYPE, "argument '%s' must be %s, not %s", key,
                         tk_type_name(want), tk_type_name((tk_type)v->type));
    *res = v;
    return 0;
}

int tk_kwargs_get_bool(const tk_kwargs *k, const char *key, bool *out)
{
    const struct tk__val *v;
    int rc = kw_at(k, key, TK_TYPE_BOOL, out, &v, __func__);
    if (rc == 0)
        *out = v->u.b;
    return rc;
}

int tk_kwargs_get_int(const tk_kwargs *k, const char *key, int64_t *out)
{
    const struct tk__val *v;
    int rc = kw_at(k, key, TK_TYPE_INT, out, &v, __func__);
    if (rc == 0)
        *out = v->u.i;
    return rc;
}

int tk_kwargs_get_float(const tk_kwargs *k, const char *key, double *out)
{
    const struct tk__val *v;
    int rc = kw_at(k, key, TK_TYPE_FLOAT, out, &v, __func__);
    if (rc == 0)
        *out = v->type == TK_TYPE_INT ? (double)v->u.i : v->u.f;
    return rc;
}

int tk_kwargs_get_str(const tk_kwargs *k, const char *key, const char **out)
{
    const struct tk__val *v;
    int rc = kw_at(k, key, TK_TYPE_STR, out, &v, __func__);
    if (rc == 0)
        *out = v->u.s;
    return rc;
}

int tk_kwargs_get_bytes(const tk_kwargs *k, const char *key, const void **out, size_t *n)
{
    if (!n)
        return tk__error(TK_EINVAL, "tk_kwargs_get_bytes: length pointer is NULL");
    const struct tk__val *v;
    int rc = kw_at(k, key, TK_TYPE_BYTES, out, &v, __func__);
    if (rc == 0) {
        *out = v->u.s;
        *n = v->n;
    }
    return rc;
}

int tk_kwargs_get_ptr(const tk_kwargs *k, const char *key, void **out)
{
    const struct tk__val *v;
    int rc = kw_at(k, key, TK_TYPE_PTR, out, &v, __func__);
    if (rc == 0)
        *out = v->u.p;
    return rc;
}

/*
 * Parses "key:code, key:code" while reading the values. Keys are slices of
 * fmt; they are copied through a bounded stack buffer when short, else a
 * heap one, because the bag's lookup needs a NUL-terminated key.
 */
static int kw_parse_item(tk_kwargs *k, const char *fmt, const char **pf, va_list *ap)
{
    const char *f = *pf;
    const char *key = f;
    while (*f && *f != ':' && *f != ',' && !is_space(*f))
        f++;
    size_t klen = (size_t)(f - key);
    if (klen == 0)
        return tk__error(TK_EINVAL, "tk_kwargs_of: empty key at position %zu",
                         (size_t)(key - fmt));
    while (is_space(*f))
        f++;
    if (*f != ':')
        return tk__error(TK_EINVAL, "tk_kwargs_of: missing ':code' after key '%.*s' at "
                         "position %zu", (int)klen, key, (size_t)(f - fmt));
    f++;
    while (is_space(*f))
        f++;
    if (!*f || *f == ',')
        return tk__error(TK_EINVAL, "tk_kwargs_of: missing format code for key '%.*s' at "
                         "position %zu", (int)klen, key, (size_t)(f - fmt));
    struct tk__val v;
    int rc = read_value(*f, ap, &v, "tk_kwargs_of", (size_t)(f - fmt));
    if (rc < 0)
        return rc;
    f++;
    while (is_space(*f))
        f++;
    if (*f && *f != ',')
        return tk__error(TK_EINVAL, "tk_kwargs_of: unexpected '%c' after item '%.*s' at "
                         "position %zu (expected ',')", *f, (int)klen, key, (size_t)(f - fmt));
    char small[64];
    char *kbuf = klen < sizeof small ? small : tk__malloc(klen + 1);
    if (!kbuf)
        return TK_ENOMEM;
    memcpy(kbuf, key, klen);
    kbuf[klen] = '\0';
    rc = tk__bag_set(&k->b, kbuf, &v);
    if (kbuf != small)
        tk__free(kbuf);
    *pf = *f ? f + 1 : f;
    return rc;
}

tk_kwargs *tk_kwargs_of(const char *fmt, ...)
{
    if (!fmt)
        return tk__error_null(TK_EINVAL, "tk_kwargs_of: format is NULL");
    tk_kwargs *k = tk_kwargs_new();
    if (!k)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    int rc = 0;
    const char *f = fmt;
    for (;;) {
        while (is_space(*f))
            f++;
        if (!*f)
            break;
        rc = kw_parse_item(k, fmt, &f, &ap);
        if (rc < 0)
            break;
    }
    va_end(ap);
    if (rc < 0) {
        tk_kwargs_free(k);
        return NULL;
    }
    return k;
}

/* ------------------------------------------------------------ shared empties */

/* Never modified, shared by every thread (const operations on one bag may
 * run concurrently): the bags lent to targets and tasks called without
 * args or kwargs, and the result of tasks that returned no values, so none
 * costs an allocation for them. Made on first use; an allocation failure is
 * retried next time rather than remembered. */
static _Atomic(tk_args *) empty_args;
static _Atomic(tk_kwargs *) empty_kwargs;

const tk_args *tk__empty_args(void)
{
    tk_args *a = atomic_load_explicit(&empty_args, memory_order_acquire), *none = NULL;
    if (a || !(a = tk_args_new()))
        return a;
    if (!atomic_compare_exchange_strong(&empty_args, &none, a)) {
        tk_args_free(a);
        a = none;
    }
    return a;
}

const tk_kwargs *tk__empty_kwargs(void)
{
    tk_kwargs *k = atomic_load_explicit(&empty_kwargs, memory_order_acquire), *none = NULL;
    if (k || !(k = tk_kwargs_new()))
        return k;
    if (!atomic_compare_exchange_strong(&empty_kwargs, &none, k)) {
        tk_kwargs_free(k);
        k = none;
    }
    return k;
}
