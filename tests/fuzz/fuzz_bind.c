/*
 * fuzz_bind.c - libFuzzer target for tk_bind: signature parsing and binding
 * of fuzzed args and kwargs.
 *
 * Input layout: the signature (bytes up to the first NUL, at most 200),
 * then a little program that builds the bags, one operation per byte:
 *   bits 0-2  the value's type: none, bool, int, float, str, bytes, ptr,
 *             and 7 = int out of int's range (for 'i' overflow checks);
 *   bit 3     0: append to args, 1: set in kwargs (the key follows: a length
 *             byte, mod 8, then that many bytes);
 *   then the value's bytes (ints: 8, floats: 8, str/bytes: a length byte
 *   mod 16 and the data).
 *
 * tk_bind's out pointers depend on the signature's codes, which the target
 * does not parse: every out pointer handed over points to its own 32-byte,
 * suitably aligned slot, which fits any out type. A signature with more
 * than 40 parameters is skipped, so 80 pointers ('y' takes two) always
 * suffice. Oracles: no crash or over-read; a failure is TK_EARGS, TK_ETYPE,
 * TK_EOVERFLOW or TK_EINVAL (a bad signature) with a message, and leaves
 * every slot untouched ("no out variable is written unless the whole bind
 * succeeds").
 */
#include <stdalign.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_SLOTS 80
#define FZ_MAX_SIG 200

struct reader {
    const uint8_t *p;
    size_t left;
};

static int take(struct reader *r)
{
    if (r->left == 0)
        return -1;
    r->left--;
    return *r->p++;
}

static size_t take_bytes(struct reader *r, void *out, size_t n)
{
    size_t k = n < r->left ? n : r->left;
    memcpy(out, r->p, k);
    r->p += k;
    r->left -= k;
    return k;
}

/* Adds one value described by op to args or kwargs. Builder failures are
 * fine (a NUL inside a key, say): the bind just sees fewer values. */
static void build_one(int op, struct reader *r, tk_args *a, tk_kwargs *k)
{
    char key[9] = {0};
    if (op & 8) {
        int n = take(r);
        take_bytes(r, key, n < 0 ? 0 : (size_t)n % 8);
    }
    int64_t i = 0;
    double f = 0;
    char buf[17] = {0};
    size_t n = 0;
    static int target_object;
    switch (op & 7) {
    case 0: (op & 8) ? tk_kwargs_set_none(k, key) : tk_args_add_none(a); break;
    case 1: {
        bool b = (take(r) & 1) != 0;
        (op & 8) ? tk_kwargs_set_bool(k, key, b) : tk_args_add_bool(a, b);
        break;
    }
    case 2:
    case 7:
        take_bytes(r, &i, sizeof i);
        if ((op & 7) == 2)
            i = (int64_t)(int8_t)i; /* small ints bind to 'i' */
        (op & 8) ? tk_kwargs_set_int(k, key, i) : tk_args_add_int(a, i);
        break;
    case 3:
        take_bytes(r, &f, sizeof f);
        (op & 8) ? tk_kwargs_set_float(k, key, f) : tk_args_add_float(a, f);
        break;
    case 4:
    case 5: {
        int len = take(r);
        n = take_bytes(r, buf, len < 0 ? 0 : (size_t)len % 16);
        if ((op & 7) == 4)
            (op & 8) ? tk_kwargs_set_str(k, key, buf) : tk_args_add_str(a, buf);
        else
            (op & 8) ? tk_kwargs_set_bytes(k, key, buf, n) : tk_args_add_bytes(a, buf, n);
        break;
    }
    case 6:
        (op & 8) ? tk_kwargs_set_ptr(k, key, &target_object)
                 : tk_args_add_ptr(a, &target_object);
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char sig[FZ_MAX_SIG + 1];
    size_t s = 0;
    while (s < size && s < FZ_MAX_SIG && data[s] != 0) {
        sig[s] = (char)data[s];
        s++;
    }
    sig[s] = '\0';
    size_t colons = 0;
    for (size_t i = 0; i < s; i++)
        colons += sig[i] == ':';
    if (colons > FZ_SLOTS / 2)
        return 0;

    tk_args *a = tk_args_new();
    tk_kwargs *k = tk_kwargs_new();
    if (!a || !k)
        goto out;
    struct reader r = {data + s, size - s};
    take(&r); /* the NUL */
    for (int op; (op = take(&r)) >= 0;)
        build_one(op, &r, a, k);

    static struct {
        alignas(16) unsigned char b[32];
    } slot[FZ_SLOTS], pattern;
    memset(&pattern, 0xA5, sizeof pattern);
    for (size_t i = 0; i < FZ_SLOTS; i++)
        slot[i] = pattern;
    void *out[FZ_SLOTS];
    for (size_t i = 0; i < FZ_SLOTS; i++)
        out[i] = slot[i].b;
#define P10(n) out[(n)], out[(n) + 1], out[(n) + 2], out[(n) + 3], out[(n) + 4], \
               out[(n) + 5], out[(n) + 6], out[(n) + 7], out[(n) + 8], out[(n) + 9]
    int rc = tk_bind(a, k, sig, P10(0), P10(10), P10(20), P10(30), P10(40), P10(50),
                     P10(60), P10(70));
#undef P10
    if (rc < 0) {
        FZ_CHECK(rc == TK_EARGS || rc == TK_ETYPE || rc == TK_EOVERFLOW || rc == TK_EINVAL);
        FZ_CHECK(tk_last_error()[0] != '\0');
        for (size_t i = 0; i < FZ_SLOTS; i++)
            FZ_CHECK(memcmp(&slot[i], &pattern, sizeof pattern) == 0);
    } else {
        FZ_CHECK(rc == 0);
    }
out:
    tk_args_free(a);
    tk_kwargs_free(k);
    return 0;
}
