/*
 * fuzz_format.c - libFuzzer target for the format parsers of tk_args_of and
 * tk_kwargs_of.
 *
 * Input: first byte even -> tk_args_of, odd -> tk_kwargs_of; the rest (at
 * most 31 bytes, cut at a NUL) is the format.
 *
 * The builders read C variadic arguments whose types follow the format, so
 * the target passes, for every argument, one "universal" value U that is
 * valid whatever code reads it: U is the address of a mapped, zero-filled
 * region at least U bytes long, so as a pointer ('s', 'z', 'p', 'y') it
 * points to "" and to U readable bytes, as a size ('y') it is a length that
 * can be read from U, and as an int or bool it is just a number. Doubles
 * ('d') are read from the floating-point save area or from the same stack
 * slots: any bit pattern is a valid double. A 31-byte format consumes at
 * most 62 slots ('y' takes two); 70 are passed.
 *
 * Oracles: no crash, over-read or leak; failure is TK_EINVAL (TK_ENOMEM
 * allowed) with a message; tk_args_of's result has one value per
 * non-space code, of the code's type; tk_kwargs_of's keys are non-empty,
 * hold no ':', ',' or space, and are unique.
 */
#include <sys/mman.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define U_ADDR ((uintptr_t)0x10000)

static const char *universal(void)
{
    static const char *u;
    if (u)
        return u;
    /* The region [U, 2U) must be readable: map it at U itself. Where the
     * kernel refuses (vm.mmap_min_addr), fall back to a high mapping; then
     * 'y' reads a huge length and the builder fails cleanly with
     * TK_ENOMEM, which still exercises the parser. */
    // NOLINTNEXTLINE(performance-no-int-to-ptr): a fixed address is the point
    void *p = mmap((void *)U_ADDR, 2 * U_ADDR, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS |
                   MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED || (uintptr_t)p != U_ADDR) {
        static const char zero[64];
        u = zero;
    } else {
        u = p;
    }
    return u;
}

static tk_type code_type(char c)
{
    switch (c) {
    case 'i': case 'l': return TK_TYPE_INT;
    case 'd': return TK_TYPE_FLOAT;
    case '?': return TK_TYPE_BOOL;
    case 's': case 'z': return TK_TYPE_STR; /* U is never NULL: 'z' gives a str */
    case 'y': return TK_TYPE_BYTES;
    case 'p': return TK_TYPE_PTR;
    case 'n': return TK_TYPE_NONE;
    default: return TK_TYPE_INVALID;
    }
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static void check_args(const char *fmt, const tk_args *a)
{
    size_t n = 0;
    for (const char *f = fmt; *f; f++) {
        if (is_space(*f))
            continue;
        FZ_CHECK(code_type(*f) != TK_TYPE_INVALID); /* else it must have failed */
        FZ_CHECK(tk_args_type(a, n) == code_type(*f));
        n++;
    }
    FZ_CHECK(tk_args_len(a) == n);
}

static void check_kwargs(const tk_kwargs *k)
{
    size_t n = tk_kwargs_len(k);
    for (size_t i = 0; i < n; i++) {
        const char *key = tk_kwargs_key(k, i);
        FZ_CHECK(key && key[0]);
        FZ_CHECK(!strpbrk(key, ":, \t\n\r\f\v"));
        for (size_t j = 0; j < i; j++)
            FZ_CHECK(strcmp(key, tk_kwargs_key(k, j)) != 0);
        FZ_CHECK(tk_kwargs_type(k, key) != TK_TYPE_INVALID);
    }
    FZ_CHECK(tk_kwargs_key(k, n) == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    char fmt[32];
    size_t n = 0;
    while (n + 1 < size && n < sizeof fmt - 1 && data[n + 1] != 0) {
        fmt[n] = (char)data[n + 1];
        n++;
    }
    fmt[n] = '\0';
    const char *u = universal();
#define U5 u, u, u, u, u
#define U10 U5, U5
#define U70 U10, U10, U10, U10, U10, U10, U10
    if ((data[0] & 1) == 0) {
        tk_args *a = tk_args_of(fmt, U70);
        if (!a) {
            int rc = tk_last_error_code();
            FZ_CHECK(rc == TK_EINVAL || rc == TK_ENOMEM);
            FZ_CHECK(tk_last_error()[0] != '\0');
        } else {
            check_args(fmt, a);
            tk_args_free(a);
        }
    } else {
        tk_kwargs *k = tk_kwargs_of(fmt, U70);
        if (!k) {
            int rc = tk_last_error_code();
            FZ_CHECK(rc == TK_EINVAL || rc == TK_ENOMEM);
            FZ_CHECK(tk_last_error()[0] != '\0');
        } else {
            check_kwargs(k);
            tk_kwargs_free(k);
        }
    }
    return 0;
}
