/*
 * codec.c - the byte encoding of an args + kwargs pair (docs/encoding.md),
 * used to carry bags across process boundaries (queues, pipes, pools).
 *
 * The decoder treats its input as hostile: every read is bounds-checked
 * against the bytes left, every count is checked against the smallest
 * number of bytes its items could occupy before anything is allocated (so a
 * forged count cannot ask for a huge allocation), and duplicate keys are
 * found with a hash set rather than a quadratic scan.
 */
#include <stdlib.h>
#include <string.h>

#include "args_int.h"

#define MAGIC "TKAB"
#define VERSION 1
#define HEADER_LEN 14 /* magic 4, version 1, flags 1, nargs 4, nkwargs 4 */
#define MAX_LEN UINT32_MAX

enum { TAG_NONE = 0, TAG_BOOL = 1, TAG_INT = 2, TAG_FLOAT = 3, TAG_STR = 4, TAG_BYTES = 5 };

/* ------------------------------------------------------------ encoding */

static size_t value_size(const struct tk__val *v)
{
    switch (v->type) {
    case TK_TYPE_BOOL: return 2;
    case TK_TYPE_INT:
    case TK_TYPE_FLOAT: return 9;
    case TK_TYPE_STR: return 1 + 4 + v->n + 1;
    case TK_TYPE_BYTES: return 1 + 4 + v->n;
    default: return 1;
    }
}

/* Checks that the bag can be encoded and adds its size to *total. */
static int bag_size(const struct tk__bag *b, const char *what, size_t *total)
{
    if (b->len > MAX_LEN)
        return tk__error(TK_EOVERFLOW, "tk_args_encode: too many %s values (%zu)", what, b->len);
    for (size_t i = 0; i < b->len; i++) {
        const struct tk__val *v = &b->v[i];
        if (v->type == TK_TYPE_PTR) {
            if (v->key)
                return tk__error(TK_ETYPE, "tk_args_encode: keyword argument '%s' is a pointer, "
                                 "which cannot be encoded", v->key);
            return tk__error(TK_ETYPE, "tk_args_encode: argument %zu is a pointer, which "
                             "cannot be encoded", i);
        }
        if (v->n > MAX_LEN || (v->key && strlen(v->key) > MAX_LEN))
            return tk__error(TK_EOVERFLOW, "tk_args_encode: %s value %zu is longer than "
                             "4 GiB - 1 bytes", what, i);
        size_t add = value_size(v) + (v->key ? 4 + strlen(v->key) + 1 : 0);
        if (add > SIZE_MAX - *total)
            return tk__error(TK_EOVERFLOW, "tk_args_encode: encoding too large");
        *total += add;
    }
    return 0;
}

static unsigned char *put_u32(unsigned char *p, uint32_t x)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(x >> (8 * i));
    return p + 4;
}

static unsigned char *put_u64(unsigned char *p, uint64_t x)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(x >> (8 * i));
    return p + 8;
}

static unsigned char *put_str(unsigned char *p, const char *s, size_t n)
{
    p = put_u32(p, (uint32_t)n);
    memcpy(p, s, n);
    p[n] = 0;
    return p + n + 1;
}

static unsigned char *put_value(unsigned char *p, const struct tk__val *v)
{
    uint64_t bits;
    switch (v->type) {
    case TK_TYPE_BOOL:
        *p++ = TAG_BOOL;
        *p++ = v->u.b ? 1 : 0;
        return p;
    case TK_TYPE_INT:
        *p++ = TAG_INT;
        return put_u64(p, (uint64_t)v->u.i);
    case TK_TYPE_FLOAT:
        *p++ = TAG_FLOAT;
        memcpy(&bits, &v->u.f, sizeof bits);
        return put_u64(p, bits);
    case TK_TYPE_STR:
        *p++ = TAG_STR;
        return put_str(p, v->u.s, v->n);
    case TK_TYPE_BYTES:
        *p++ = TAG_BYTES;
        p = put_u32(p, (uint32_t)v->n);
        if (v->n)
            memcpy(p, v->u.s, v->n);
        return p + v->n;
    default:
        *p++ = TAG_NONE;
        return p;
    }
}

int tk__args_encoded_len(const tk_args *args, const tk_kwargs *kwargs, size_t *len)
{
    static const struct tk__bag empty = {0};
    size_t total = HEADER_LEN;
    int rc = bag_size(args ? &args->b : &empty, "positional", &total);
    if (rc == 0)
        rc = bag_size(kwargs ? &kwargs->b : &empty, "keyword", &total);
    *len = rc == 0 ? total : 0;
    return rc;
}

size_t tk__args_encode_to(const tk_args *args, const tk_kwargs *kwargs, void *dst)
{
    static const struct tk__bag empty = {0};
    const struct tk__bag *a = args ? &args->b : &empty;
    const struct tk__bag *k = kwargs ? &kwargs->b : &empty;
    unsigned char *p = dst;
    memcpy(p, MAGIC, 4);
    p[4] = VERSION;
    p[5] = 0;
    p = put_u32(p + 6, (uint32_t)a->len);
    p = put_u32(p, (uint32_t)k->len);
    for (size_t i = 0; i < a->len; i++)
        p = put_value(p, &a->v[i]);
    for (size_t i = 0; i < k->len; i++) {
        p = put_str(p, k->v[i].key, strlen(k->v[i].key));
        p = put_value(p, &k->v[i]);
    }
    return (size_t)(p - (unsigned char *)dst);
}

int tk_args_encode(const tk_args *args, const tk_kwargs *kwargs, void **buf, size_t *len)
{
    if (!buf || !len)
        return tk__error(TK_EINVAL, "tk_args_encode: %s pointer is NULL",
                         buf ? "length" : "buffer");
    *buf = NULL;
    *len = 0;
    size_t total;
    int rc = tk__args_encoded_len(args, kwargs, &total);
    if (rc < 0)
        return rc;
    void *out = tk__malloc(total);
    if (!out)
        return TK_ENOMEM;
    size_t wrote = tk__args_encode_to(args, kwargs, out);
    if (wrote != total)
        tk__panic("tk_args_encode: wrote %zu bytes, computed %zu", wrote, total);
    *buf = out;
    *len = total;
    return 0;
}

/* ------------------------------------------------------------ decoding */

struct reader {
    const unsigned char *p, *end;
    const unsigned char *start;
};

static int bad(const struct reader *r, const char *what)
{
    return tk__error(TK_EDECODE, "tk_args_decode: %s at byte %zu", what,
                     (size_t)(r->p - r->start));
}

static size_t left(const struct reader *r)
{
    return (size_t)(r->end - r->p);
}

static int get_u32(struct reader *r, uint32_t *x)
{
    if (left(r) < 4)
        return bad(r, "truncated length");
    *x = 0;
    for (int i = 0; i < 4; i++)
        *x |= (uint32_t)r->p[i] << (8 * i);
    r->p += 4;
    return 0;
}

static int get_u64(struct reader *r, uint64_t *x)
{
    if (left(r) < 8)
        return bad(r, "truncated number");
    *x = 0;
    for (int i = 0; i < 8; i++)
        *x |= (uint64_t)r->p[i] << (8 * i);
    r->p += 8;
    return 0;
}

/* A length-prefixed, NUL-terminated string without inner NULs. */
static int get_str(struct reader *r, const char **s, size_t *n)
{
    uint32_t len;
    int rc = get_u32(r, &len);
    if (rc < 0)
        return rc;
    if (len >= left(r))
        return bad(r, "string length beyond the input");
    if (memchr(r->p, 0, len))
        return bad(r, "string contains a NUL byte");
    if (r->p[len] != 0)
        return bad(r, "string not NUL-terminated");
    *s = (const char *)r->p;
    *n = len;
    r->p += (size_t)len + 1;
    return 0;
}

/* Reads one tagged value; str and bytes point into the input until the
 * bag copies them. */
static int get_value(struct reader *r, struct tk__val *v)
{
    memset(v, 0, sizeof *v);
    if (left(r) < 1)
        return bad(r, "truncated value");
    unsigned tag = *r->p++;
    uint64_t bits;
    uint32_t n;
    int rc = 0;
    switch (tag) {
    case TAG_NONE: v->type = TK_TYPE_NONE; return 0;
    case TAG_BOOL:
        if (left(r) < 1)
            return bad(r, "truncated bool");
        if (*r->p > 1)
            return bad(r, "bool byte is neither 0 nor 1");
        v->type = TK_TYPE_BOOL;
        v->u.b = *r->p++ == 1;
        return 0;
    case TAG_INT:
        v->type = TK_TYPE_INT;
        if ((rc = get_u64(r, &bits)) < 0)
            return rc; /* bits was not written */
        v->u.i = (int64_t)bits;
        return 0;
    case TAG_FLOAT:
        v->type = TK_TYPE_FLOAT;
        if ((rc = get_u64(r, &bits)) < 0)
            return rc;
        memcpy(&v->u.f, &bits, sizeof bits);
        return 0;
    case TAG_STR:
        v->type = TK_TYPE_STR;
        return get_str(r, (const char **)&v->u.s, &v->n);
    case TAG_BYTES:
        v->type = TK_TYPE_BYTES;
        if ((rc = get_u32(r, &n)) < 0)
            return rc;
        if (n > left(r))
            return bad(r, "bytes length beyond the input");
        v->u.s = (char *)r->p;
        v->n = n;
        r->p += n;
        return 0;
    default:
        r->p--;
        return bad(r, "unknown type tag");
    }
}

/* FNV-1a: only needs to spread keys for the duplicate check. */
static size_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return (size_t)h;
}

/* Reads nkw "key, value" entries into k, refusing empty and duplicate
 * keys. The hash set holds indices + 1 into k's values (0 is free). */
static int get_kwargs(struct reader *r, struct tk__bag *k, uint32_t nkw)
{
    size_t cap = 16;
    while (cap < (size_t)nkw * 2)
        cap *= 2;
    size_t *set = tk__calloc(cap, sizeof *set);
    if (!set)
        return TK_ENOMEM;
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < nkw; i++) {
        const char *key;
        size_t klen;
        struct tk__val v;
        const unsigned char *at = r->p;
        if ((rc = get_str(r, &key, &klen)) < 0)
            break;
        if (klen == 0) {
            r->p = at;
            rc = bad(r, "empty key");
            break;
        }
        size_t h = hash_key(key) & (cap - 1);
        while (set[h] && strcmp(k->v[set[h] - 1].key, key) != 0)
            h = (h + 1) & (cap - 1);
        if (set[h]) {
            r->p = at;
            rc = bad(r, "duplicate key");
            break;
        }
        if ((rc = get_value(r, &v)) < 0)
            break;
        if ((rc = tk__bag_push(k, key, &v)) == 0)
            set[h] = k->len;
    }
    tk__free(set);
    return rc;
}

static int decode(struct reader *r, tk_args *a, tk_kwargs *k, uint32_t nargs, uint32_t nkw)
{
    int rc = tk__bag_reserve(&a->b, nargs);
    for (uint32_t i = 0; rc == 0 && i < nargs; i++) {
        struct tk__val v;
        rc = get_value(r, &v);
        if (rc == 0)
            rc = tk__bag_push(&a->b, NULL, &v);
    }
    if (rc == 0 && nkw)
        rc = tk__bag_reserve(&k->b, nkw);
    if (rc == 0 && nkw)
        rc = get_kwargs(r, &k->b, nkw);
    if (rc == 0 && left(r))
        rc = bad(r, "trailing bytes after the encoding");
    return rc;
}

static int read_header(struct reader *r, uint32_t *nargs, uint32_t *nkw)
{
    if (left(r) < HEADER_LEN)
        return bad(r, "truncated header");
    if (memcmp(r->p, MAGIC, 4) != 0)
        return bad(r, "bad magic (not an args encoding)");
    r->p += 4;
    if (r->p[0] != VERSION)
        return tk__error(TK_EDECODE, "tk_args_decode: unsupported version %u",
                         (unsigned)r->p[0]);
    if (r->p[1] != 0) {
        r->p++;
        return bad(r, "reserved flags byte is not 0");
    }
    r->p += 2;
    get_u32(r, nargs);
    get_u32(r, nkw);
    /* Each value takes at least 1 byte and each keyword entry at least 7
     * (length, one key byte, NUL, tag): a count the input cannot hold is
     * refused before anything is allocated for it. */
    if (*nargs > left(r))
        return bad(r, "argument count beyond the input");
    if (*nkw > (left(r) - *nargs) / 7)
        return bad(r, "keyword count beyond the input");
    return 0;
}

int tk_args_decode(const void *buf, size_t len, tk_args **args, tk_kwargs **kwargs)
{
    if (kwargs)
        *kwargs = NULL;
    if (!args)
        return tk__error(TK_EINVAL, "tk_args_decode: args out pointer is NULL");
    *args = NULL;
    if (!buf && len)
        return tk__error(TK_EINVAL, "tk_args_decode: buffer is NULL with length %zu", len);
    struct reader r = {buf, (const unsigned char *)buf + len, buf};
    if (!buf)
        r.p = r.end = r.start = (const unsigned char *)"";
    uint32_t nargs, nkw;
    int rc = read_header(&r, &nargs, &nkw);
    if (rc < 0)
        return rc;
    if (nkw && !kwargs)
        return tk__error(TK_EINVAL, "tk_args_decode: the encoding has %u keyword arguments "
                         "but the kwargs out pointer is NULL", (unsigned)nkw);
    tk_args *a = tk_args_new();
    tk_kwargs *k = kwargs ? tk_kwargs_new() : NULL;
    if (!a || (kwargs && !k))
        rc = TK_ENOMEM;
    if (rc == 0)
        rc = decode(&r, a, k, nargs, nkw);
    if (rc < 0) {
        tk_args_free(a);
        tk_kwargs_free(k);
        return rc;
    }
    *args = a;
    if (kwargs)
        *kwargs = k;
    return 0;
}
