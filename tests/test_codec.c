/* test_codec.c - tk_args_encode / tk_args_decode: round trips, the exact
 * byte format of docs/encoding.md, and hostile input (truncation, forged
 * lengths and counts, bad tags, duplicate keys, random corruption). */
#include "common/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args_int.h"
#include "internal.h"
#include "taskkit.h"

#define assert_err(call, code, msg)                     \
    do {                                                \
        assert_int_equal((call), (code));               \
        assert_int_equal(tk_last_error_code(), (code)); \
        assert_string_equal(tk_last_error(), (msg));    \
    } while (0)

static void encode(const tk_args *a, const tk_kwargs *k, unsigned char **buf, size_t *len)
{
    void *b = NULL;
    assert_int_equal(tk_args_encode(a, k, &b, len), 0);
    *buf = b;
}

static void round_trip_every_type(void **state)
{
    (void)state;
    char big[5000];
    for (size_t i = 0; i < sizeof big - 1; i++)
        big[i] = (char)('a' + i % 26);
    big[sizeof big - 1] = '\0';
    tk_args *a = tk_args_of("n?ilddddssyy", 0, -1, INT64_MIN, -0.0, NAN, INFINITY, 1e-300, "",
                            big, "", (size_t)0, "\0\1\2\xff", (size_t)4);
    tk_kwargs *k = tk_kwargs_of("zeta:i, alpha:s, n:n, flag:?", 1, "é", 1);
    unsigned char *buf;
    size_t len;
    encode(a, k, &buf, &len);
    tk_args *a2 = NULL;
    tk_kwargs *k2 = NULL;
    assert_int_equal(tk_args_decode(buf, len, &a2, &k2), 0);
    free(buf);
    assert_int_equal(tk_args_len(a2), tk_args_len(a));
    for (size_t i = 0; i < tk_args_len(a); i++)
        assert_int_equal(tk_args_type(a2, i), tk_args_type(a, i));
    bool b;
    int64_t i64;
    double d;
    const char *s;
    const void *y;
    size_t n;
    assert_int_equal(tk_args_get_bool(a2, 1, &b), 0);
    assert_false(b);
    assert_int_equal(tk_args_get_int(a2, 2, &i64), 0);
    assert_true(i64 == -1);
    assert_int_equal(tk_args_get_int(a2, 3, &i64), 0);
    assert_true(i64 == INT64_MIN);
    assert_int_equal(tk_args_get_float(a2, 4, &d), 0);
    assert_true(d == 0 && signbit(d));
    assert_int_equal(tk_args_get_float(a2, 5, &d), 0);
    assert_true(isnan(d));
    assert_int_equal(tk_args_get_float(a2, 6, &d), 0);
    assert_true(isinf(d) && d > 0);
    assert_int_equal(tk_args_get_float(a2, 7, &d), 0);
    assert_true(d == 1e-300);
    assert_int_equal(tk_args_get_str(a2, 8, &s), 0);
    assert_string_equal(s, "");
    assert_int_equal(tk_args_get_str(a2, 9, &s), 0);
    assert_string_equal(s, big);
    assert_int_equal(tk_args_get_bytes(a2, 10, &y, &n), 0);
    assert_int_equal(n, 0);
    assert_non_null(y);
    assert_int_equal(tk_args_get_bytes(a2, 11, &y, &n), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(y, "\0\1\2\xff", 4);
    /* keys keep their insertion order */
    assert_int_equal(tk_kwargs_len(k2), 4);
    assert_string_equal(tk_kwargs_key(k2, 0), "zeta");
    assert_string_equal(tk_kwargs_key(k2, 1), "alpha");
    assert_string_equal(tk_kwargs_key(k2, 2), "n");
    assert_string_equal(tk_kwargs_key(k2, 3), "flag");
    assert_int_equal(tk_kwargs_get_str(k2, "alpha", &s), 0);
    assert_string_equal(s, "é");
    assert_int_equal(tk_kwargs_get_bool(k2, "flag", &b), 0);
    assert_true(b);
    tk_args_free(a);
    tk_args_free(a2);
    tk_kwargs_free(k);
    tk_kwargs_free(k2);
}

static void round_trip_empty_and_null_bags(void **state)
{
    (void)state;
    unsigned char *buf;
    size_t len;
    encode(NULL, NULL, &buf, &len);
    assert_int_equal(len, 14);
    tk_args *a = NULL;
    tk_kwargs *k = NULL;
    assert_int_equal(tk_args_decode(buf, len, &a, &k), 0);
    assert_non_null(a);
    assert_non_null(k);
    assert_int_equal(tk_args_len(a), 0);
    assert_int_equal(tk_kwargs_len(k), 0);
    tk_args_free(a);
    tk_kwargs_free(k);
    /* kwargs out may be NULL when the encoding has no keywords */
    assert_int_equal(tk_args_decode(buf, len, &a, NULL), 0);
    tk_args_free(a);
    free(buf);
}

static void many_values_and_keys(void **state)
{
    (void)state;
    tk_args *a = tk_args_new();
    tk_kwargs *k = tk_kwargs_new();
    char key[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof key, "key%d", i);
        assert_int_equal(tk_args_add_int(a, i), 0);
        assert_int_equal(tk_kwargs_set_str(k, key, key), 0);
    }
    unsigned char *buf;
    size_t len;
    encode(a, k, &buf, &len);
    tk_args *a2;
    tk_kwargs *k2;
    assert_int_equal(tk_args_decode(buf, len, &a2, &k2), 0);
    free(buf);
    assert_int_equal(tk_args_len(a2), 3000);
    assert_int_equal(tk_kwargs_len(k2), 3000);
    for (int i = 0; i < 3000; i += 97) {
        int64_t v;
        const char *s;
        snprintf(key, sizeof key, "key%d", i);
        assert_int_equal(tk_args_get_int(a2, (size_t)i, &v), 0);
        assert_true(v == i);
        assert_string_equal(tk_kwargs_key(k2, (size_t)i), key);
        assert_int_equal(tk_kwargs_get_str(k2, key, &s), 0);
        assert_string_equal(s, key);
    }
    tk_args_free(a);
    tk_args_free(a2);
    tk_kwargs_free(k);
    tk_kwargs_free(k2);
}

/* The format is pinned byte for byte (docs/encoding.md's example). */
static void exact_bytes(void **state)
{
    (void)state;
    tk_args *a = tk_args_of("is", -3, "hi");
    tk_kwargs *k = tk_kwargs_of("x:d", 1.5);
    unsigned char *buf;
    size_t len;
    encode(a, k, &buf, &len);
    const unsigned char want[] = {
        'T', 'K', 'A', 'B', 1, 0, 2, 0, 0, 0, 1, 0, 0, 0,
        2, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        4, 2, 0, 0, 0, 'h', 'i', 0,
        1, 0, 0, 0, 'x', 0,
        3, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f,
    };
    assert_int_equal(len, sizeof want);
    assert_memory_equal(buf, want, sizeof want);
    free(buf);
    tk_args_free(a);
    tk_kwargs_free(k);

    /* the remaining tags: None 0, bool 1, bytes 5 */
    a = tk_args_of("n?y", 1, "\x07", (size_t)1);
    encode(a, NULL, &buf, &len);
    const unsigned char want2[] = {'T', 'K', 'A', 'B', 1, 0, 3, 0, 0, 0, 0, 0, 0, 0,
                                   0, 1, 1, 5, 1, 0, 0, 0, 7};
    assert_int_equal(len, sizeof want2);
    assert_memory_equal(buf, want2, sizeof want2);
    free(buf);
    tk_args_free(a);
}

static void encode_errors(void **state)
{
    (void)state;
    int x;
    void *buf = (void *)1;
    size_t len = 5;
    tk_args *a = tk_args_of("ip", 1, (void *)&x);
    assert_err(tk_args_encode(a, NULL, &buf, &len), TK_ETYPE,
               "tk_args_encode: argument 1 is a pointer, which cannot be encoded");
    assert_null(buf);
    assert_int_equal(len, 0);
    tk_kwargs *k = tk_kwargs_of("a:i, ctx:p", 1, (void *)NULL);
    assert_err(tk_args_encode(NULL, k, &buf, &len), TK_ETYPE,
               "tk_args_encode: keyword argument 'ctx' is a pointer, which cannot be encoded");
    assert_err(tk_args_encode(NULL, NULL, NULL, &len), TK_EINVAL,
               "tk_args_encode: buffer pointer is NULL");
    assert_err(tk_args_encode(NULL, NULL, &buf, NULL), TK_EINVAL,
               "tk_args_encode: length pointer is NULL");
    tk_args_free(a);
    tk_kwargs_free(k);
}

/* Decodes and expects TK_EDECODE with NULL outputs. */
static void expect_decode_error(const void *buf, size_t len, const char *msg)
{
    tk_args *a = (tk_args *)1;
    tk_kwargs *k = (tk_kwargs *)1;
    int rc = tk_args_decode(buf, len, &a, &k);
    if (rc != TK_EDECODE)
        fail_msg("decode returned %d (%s) for len %zu", rc, tk_last_error(), len);
    assert_null(a);
    assert_null(k);
    if (msg)
        assert_string_equal(tk_last_error(), msg);
}

static void every_truncation_is_refused(void **state)
{
    (void)state;
    tk_args *a = tk_args_of("n?ildsy", 1, 7, (int64_t)8, 9.5, "str", "by", (size_t)2);
    tk_kwargs *k = tk_kwargs_of("a:s, b:y, c:i", "x", "yy", (size_t)2, 3);
    unsigned char *buf;
    size_t len;
    encode(a, k, &buf, &len);
    for (size_t n = 0; n < len; n++) {
        /* copy to an exact-size heap block so ASan/valgrind catch any over-read */
        unsigned char *cut = malloc(n ? n : 1);
        memcpy(cut, buf, n);
        expect_decode_error(cut, n, NULL);
        free(cut);
    }
    /* trailing bytes after a complete encoding */
    unsigned char *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    char msg[128];
    snprintf(msg, sizeof msg, "tk_args_decode: trailing bytes after the encoding at byte %zu",
             len);
    expect_decode_error(longer, len + 1, msg);
    free(longer);
    free(buf);
    tk_args_free(a);
    tk_kwargs_free(k);
    expect_decode_error(NULL, 0, "tk_args_decode: truncated header at byte 0");
}

static void hostile_headers_and_values(void **state)
{
    (void)state;
    const unsigned char hdr[] = {'T', 'K', 'A', 'B', 1, 0};
    unsigned char b[64];
#define MSG(x) "tk_args_decode: " x
#define CASE(msg, ...)                                                     \
    do {                                                                   \
        const unsigned char body[] = {__VA_ARGS__};                        \
        memcpy(b, hdr, sizeof hdr);                                        \
        memcpy(b + sizeof hdr, body, sizeof body);                         \
        expect_decode_error(b, sizeof hdr + sizeof body, MSG(msg));        \
    } while (0)
    /* counts the input cannot hold are refused before any allocation */
    tk__fault_set(1L << 60);
    CASE("argument count beyond the input at byte 14", 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0);
    CASE("keyword count beyond the input at byte 14", 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0);
    CASE("keyword count beyond the input at byte 14", 0, 0, 0, 0, 2, 0, 0, 0,
         1, 0, 0, 0, 'a', 0, 0);
    assert_int_equal(tk__fault_allocs(), 0);
    tk__fault_set(0);
    CASE("unknown type tag at byte 14", 1, 0, 0, 0, 0, 0, 0, 0, 6);
    CASE("unknown type tag at byte 14", 1, 0, 0, 0, 0, 0, 0, 0, 0xff);
    CASE("bool byte is neither 0 nor 1 at byte 15", 1, 0, 0, 0, 0, 0, 0, 0, 1, 2);
    CASE("string length beyond the input at byte 19", 1, 0, 0, 0, 0, 0, 0, 0,
         4, 0xff, 0xff, 0xff, 0xff, 'a', 0);
    CASE("string length beyond the input at byte 19", 1, 0, 0, 0, 0, 0, 0, 0,
         4, 2, 0, 0, 0, 'a', 0);
    CASE("string not NUL-terminated at byte 19", 1, 0, 0, 0, 0, 0, 0, 0,
         4, 1, 0, 0, 0, 'a', 'b');
    CASE("string contains a NUL byte at byte 19", 1, 0, 0, 0, 0, 0, 0, 0,
         4, 2, 0, 0, 0, 'a', 0, 0);
    CASE("bytes length beyond the input at byte 19", 1, 0, 0, 0, 0, 0, 0, 0,
         5, 0xff, 0xff, 0xff, 0x7f, 1, 2);
    CASE("empty key at byte 14", 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    CASE("duplicate key at byte 21", 0, 0, 0, 0, 2, 0, 0, 0,
         1, 0, 0, 0, 'k', 0, 0,
         1, 0, 0, 0, 'k', 0, 0);
    CASE("string not NUL-terminated at byte 18", 0, 0, 0, 0, 1, 0, 0, 0,
         1, 0, 0, 0, 'k', 'k', 0, 0);
#undef CASE
    /* magic, version, flags */
    memcpy(b, "TKAX", 4);
    memset(b + 4, 0, 10);
    b[4] = 1;
    expect_decode_error(b, 14, MSG("bad magic (not an args encoding) at byte 0"));
    memcpy(b, "TKAB", 4);
    b[4] = 2;
    expect_decode_error(b, 14, MSG("unsupported version 2"));
    b[4] = 1;
    b[5] = 1;
    expect_decode_error(b, 14, MSG("reserved flags byte is not 0 at byte 5"));
    b[5] = 0;
    tk_args *a;
    assert_int_equal(tk_args_decode(b, 14, &a, NULL), 0);
    tk_args_free(a);
#undef MSG
}

static void decode_argument_errors(void **state)
{
    (void)state;
    tk_kwargs *k = tk_kwargs_of("a:i", 1);
    unsigned char *buf;
    size_t len;
    encode(NULL, k, &buf, &len);
    tk_args *a = (tk_args *)1;
    assert_err(tk_args_decode(buf, len, &a, NULL), TK_EINVAL,
               "tk_args_decode: the encoding has 1 keyword arguments but the kwargs out "
               "pointer is NULL");
    assert_null(a);
    tk_kwargs *k2 = (tk_kwargs *)1;
    assert_err(tk_args_decode(buf, len, NULL, &k2), TK_EINVAL,
               "tk_args_decode: args out pointer is NULL");
    assert_null(k2);
    assert_err(tk_args_decode(NULL, 5, &a, &k2), TK_EINVAL,
               "tk_args_decode: buffer is NULL with length 5");
    free(buf);
    tk_kwargs_free(k);
}

/* Random corruption of a valid encoding: decode must never crash, over-read
 * (checked under ASan/valgrind) or leak; it either fails with TK_EDECODE or
 * yields well-formed bags. */
static void random_corruption(void **state)
{
    (void)state;
    tk_args *a = tk_args_of("n?ildsyss", 1, 7, (int64_t)8, 9.5, "str", "by", (size_t)2, "",
                            "0123456789012345678901234567890123456789");
    tk_kwargs *k = tk_kwargs_of("a:s, b:y, c:i, d:n", "x", "yy", (size_t)2, 3);
    unsigned char *buf;
    size_t len;
    encode(a, k, &buf, &len);
    unsigned char *m = malloc(len);
    unsigned seed = 12345;
    int rounds = tt_slow_mode() ? 3000 : 30000;
    for (int r = 0; r < rounds; r++) {
        memcpy(m, buf, len);
        int flips = 1 + (int)(rand_r(&seed) % 4);
        for (int f = 0; f < flips; f++) {
            size_t at = rand_r(&seed) % len;
            if (rand_r(&seed) % 3 == 0)
                m[at] = (unsigned char)rand_r(&seed);
            else
                m[at] ^= (unsigned char)(1u << (rand_r(&seed) % 8));
        }
        size_t n = rand_r(&seed) % 8 == 0 ? rand_r(&seed) % (len + 1) : len;
        tk_args *a2 = NULL;
        tk_kwargs *k2 = NULL;
        int rc = tk_args_decode(m, n, &a2, &k2);
        if (rc == 0) {
            /* whatever decoded must be usable */
            for (size_t i = 0; i < tk_kwargs_len(k2); i++)
                assert_true(tk_kwargs_has(k2, tk_kwargs_key(k2, i)));
            void *again;
            size_t alen;
            assert_int_equal(tk_args_encode(a2, k2, &again, &alen), 0);
            free(again);
        } else {
            assert_int_equal(rc, TK_EDECODE);
            assert_null(a2);
            assert_null(k2);
        }
        tk_args_free(a2);
        tk_kwargs_free(k2);
    }
    free(m);
    free(buf);
    tk_args_free(a);
    tk_kwargs_free(k);
}

/* Every allocation in encode and decode may fail: each failure is
 * TK_ENOMEM with NULL outputs and nothing leaked (valgrind/ASan confirm). */
static void allocation_failures(void **state)
{
    (void)state;
    char big[300];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    tk_args *a = tk_args_of("isisisy", 1, big, 2, "x", 3, big, big, (size_t)100);
    tk_kwargs *k = tk_kwargs_new();
    char key[128];
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "%s-%d", i % 2 ? "a-long-key-that-does-not-fit-the-inline-arena-of-a-bag-xxxxxxxxxxxxxxxx" : "k", i);
        assert_int_equal(tk_kwargs_set_str(k, key, i % 3 ? "v" : big), 0);
    }
    unsigned char *buf = NULL;
    size_t len = 0;
    long n;
    for (n = 1;; n++) {
        void *b = (void *)1;
        tk__fault_set(n);
        int rc = tk_args_encode(a, k, &b, &len);
        tk__fault_set(0);
        if (rc == 0) {
            buf = b;
            break;
        }
        assert_int_equal(rc, TK_ENOMEM);
        assert_null(b);
    }
    assert_true(n >= 2);
    int failures = 0;
    for (n = 1;; n++) {
        tk_args *a2 = (tk_args *)1;
        tk_kwargs *k2 = (tk_kwargs *)1;
        tk__fault_set(n);
        int rc = tk_args_decode(buf, len, &a2, &k2);
        tk__fault_set(0);
        if (rc == 0) {
            assert_int_equal(tk_kwargs_len(k2), 40);
            tk_args_free(a2);
            tk_kwargs_free(k2);
            break;
        }
        failures++;
        assert_int_equal(rc, TK_ENOMEM);
        assert_null(a2);
        assert_null(k2);
    }
    assert_true(failures > 10);
    free(buf);
    tk_args_free(a);
    tk_kwargs_free(k);
}

/* The internal encode-in-place pair gives the same bytes as tk_args_encode. */
static void encode_in_place(void **state)
{
    (void)state;
    tk_args *a = tk_args_of("isy", 1, "two", "333", (size_t)3);
    tk_kwargs *k = tk_kwargs_of("k:d", 4.0);
    unsigned char *buf;
    size_t len, want;
    encode(a, k, &buf, &len);
    assert_int_equal(tk__args_encoded_len(a, k, &want), 0);
    assert_int_equal(want, len);
    unsigned char dst[128];
    memset(dst, 0xee, sizeof dst);
    assert_int_equal(tk__args_encode_to(a, k, dst), len);
    assert_memory_equal(dst, buf, len);
    assert_int_equal(dst[len], 0xee);
    free(buf);
    assert_int_equal(tk_args_add_ptr(a, NULL), 0);
    assert_int_equal(tk__args_encoded_len(a, NULL, &want), TK_ETYPE);
    assert_int_equal(want, 0);
    tk_args_free(a);
    tk_kwargs_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_every_type),
        cmocka_unit_test(round_trip_empty_and_null_bags),
        cmocka_unit_test(many_values_and_keys),
        cmocka_unit_test(exact_bytes),
        cmocka_unit_test(encode_errors),
        cmocka_unit_test(every_truncation_is_refused),
        cmocka_unit_test(hostile_headers_and_values),
        cmocka_unit_test(decode_argument_errors),
        cmocka_unit_test(random_corruption),
        cmocka_unit_test(allocation_failures),
        cmocka_unit_test(encode_in_place),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
