/* test_args.c - argument bags: tk_args (tuple) and tk_kwargs (dict), their
 * builders, getters, copies, the type-safe TK_ARGS macro, and their cost in
 * allocations. */
#include "common/testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h> /* malloc_usable_size */
#endif

#include "internal.h"
#include "taskkit.h"

#define assert_err(call, code, msg)                    \
    do {                                               \
        assert_int_equal((call), (code));              \
        assert_int_equal(tk_last_error_code(), (code)); \
        assert_string_equal(tk_last_error(), (msg));   \
    } while (0)

/* ------------------------------------------------------------- tk_args */

static void args_new_is_empty(void **state)
{
    (void)state;
    tk_args *a = tk_args_new();
    assert_non_null(a);
    assert_int_equal(tk_args_len(a), 0);
    assert_int_equal(tk_args_type(a, 0), TK_TYPE_INVALID);
    tk_args_free(a);
    tk_args_free(NULL); /* no-op */
    assert_int_equal(tk_args_len(NULL), 0);
    assert_int_equal(tk_args_type(NULL, 0), TK_TYPE_INVALID);
}

static void args_add_and_get_every_type(void **state)
{
    (void)state;
    int target = 7;
    tk_args *a = tk_args_new();
    assert_int_equal(tk_args_add_none(a), 0);
    assert_int_equal(tk_args_add_bool(a, true), 0);
    assert_int_equal(tk_args_add_int(a, INT64_MIN), 0);
    assert_int_equal(tk_args_add_float(a, 2.5), 0);
    assert_int_equal(tk_args_add_str(a, "hello"), 0);
    assert_int_equal(tk_args_add_bytes(a, "a\0b", 3), 0);
    assert_int_equal(tk_args_add_ptr(a, &target), 0);
    assert_int_equal(tk_args_len(a), 7);
    const tk_type types[] = {TK_TYPE_NONE, TK_TYPE_BOOL, TK_TYPE_INT, TK_TYPE_FLOAT,
                             TK_TYPE_STR, TK_TYPE_BYTES, TK_TYPE_PTR};
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(tk_args_type(a, i), types[i]);
    assert_int_equal(tk_args_type(a, 7), TK_TYPE_INVALID);

    bool b = false;
    int64_t i = 0;
    double d = 0;
    const char *s = NULL;
    const void *y = NULL;
    size_t n = 0;
    void *p = NULL;
    assert_int_equal(tk_args_get_bool(a, 1, &b), 0);
    assert_true(b);
    assert_int_equal(tk_args_get_int(a, 2, &i), 0);
    assert_true(i == INT64_MIN);
    assert_int_equal(tk_args_get_float(a, 3, &d), 0);
    assert_true(d == 2.5);
    assert_int_equal(tk_args_get_str(a, 4, &s), 0);
    assert_string_equal(s, "hello");
    assert_int_equal(tk_args_get_bytes(a, 5, &y, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(y, "a\0b", 3);
    assert_int_equal(tk_args_get_ptr(a, 6, &p), 0);
    assert_ptr_equal(p, &target);
    /* an int reads as a float, as float() would */
    assert_int_equal(tk_args_get_float(a, 2, &d), 0);
    assert_true(d == (double)INT64_MIN);
    tk_args_free(a);
}

static void args_getter_errors(void **state)
{
    (void)state;
    tk_args *a = tk_args_of("isn?", 3, "x", 1);
    assert_non_null(a);
    int64_t i = 42;
    bool b;
    double d;
    const char *s = "keep";
    const void *y;
    size_t n = 99;
    void *p;
    assert_err(tk_args_get_int(a, 3, &i), TK_ETYPE, "argument 3 must be int, not bool");
    assert_err(tk_args_get_int(a, 1, &i), TK_ETYPE, "argument 1 must be int, not str");
    assert_err(tk_args_get_int(a, 4, &i), TK_EINDEX, "tuple index 4 out of range");
    assert_true(i == 42); /* untouched */
    assert_err(tk_args_get_str(a, 2, &s), TK_ETYPE, "argument 2 must be str, not NoneType");
    assert_string_equal(s, "keep");
    assert_err(tk_args_get_bool(a, 0, &b), TK_ETYPE, "argument 0 must be bool, not int");
    assert_err(tk_args_get_float(a, 1, &d), TK_ETYPE, "argument 1 must be float, not str");
    assert_err(tk_args_get_bytes(a, 1, &y, &n), TK_ETYPE, "argument 1 must be bytes, not str");
    assert_int_equal(n, 99);
    assert_err(tk_args_get_ptr(a, 0, &p), TK_ETYPE, "argument 0 must be pointer, not int");
    assert_err(tk_args_get_int(a, 0, NULL), TK_EINVAL, "tk_args_get_int: out pointer is NULL");
    assert_err(tk_args_get_bytes(a, 0, &y, NULL), TK_EINVAL,
               "tk_args_get_bytes: length pointer is NULL");
    assert_err(tk_args_get_bool(NULL, 0, &b), TK_EINDEX, "tuple index 0 out of range");
    tk_args_free(a);
}

static void args_writers_refuse_null(void **state)
{
    (void)state;
    assert_err(tk_args_add_int(NULL, 1), TK_EINVAL, "tk_args_add_int: args is NULL");
    assert_err(tk_args_add_none(NULL), TK_EINVAL, "tk_args_add_none: args is NULL");
    assert_err(tk_args_add_bool(NULL, 1), TK_EINVAL, "tk_args_add_bool: args is NULL");
    assert_err(tk_args_add_float(NULL, 1), TK_EINVAL, "tk_args_add_float: args is NULL");
    assert_err(tk_args_add_str(NULL, "x"), TK_EINVAL, "tk_args_add_str: args is NULL");
    assert_err(tk_args_add_bytes(NULL, "x", 1), TK_EINVAL, "tk_args_add_bytes: args is NULL");
    assert_err(tk_args_add_ptr(NULL, NULL), TK_EINVAL, "tk_args_add_ptr: args is NULL");
    tk_args *a = tk_args_new();
    assert_err(tk_args_add_str(a, NULL), TK_EINVAL,
               "tk_args_add_str: string is NULL (use tk_args_add_none for None)");
    assert_err(tk_args_add_bytes(a, NULL, 2), TK_EINVAL,
               "tk_args_add_bytes: bytes pointer is NULL with length 2");
    assert_int_equal(tk_args_len(a), 0);
    /* zero bytes from NULL is fine and reads back as a non-NULL pointer */
    assert_int_equal(tk_args_add_bytes(a, NULL, 0), 0);
    const void *y = NULL;
    size_t n = 5;
    assert_int_equal(tk_args_get_bytes(a, 0, &y, &n), 0);
    assert_non_null(y);
    assert_int_equal(n, 0);
    tk_args_free(a);
}

static void args_of_every_code(void **state)
{
    (void)state;
    int x;
    tk_args *a = tk_args_of(" i l d ? s z z y p n ", -5, (int64_t)1 << 40, 0.5, 7, "str",
                            (const char *)NULL, "zz", "by\0tes", (size_t)6, (void *)&x);
    assert_non_null(a);
    assert_int_equal(tk_args_len(a), 10);
    int64_t i;
    double d;
    bool b;
    const char *s;
    const void *y;
    size_t n;
    void *p;
    assert_int_equal(tk_args_get_int(a, 0, &i), 0);
    assert_true(i == -5);
    assert_int_equal(tk_args_get_int(a, 1, &i), 0);
    assert_true(i == (int64_t)1 << 40);
    assert_int_equal(tk_args_get_float(a, 2, &d), 0);
    assert_true(d == 0.5);
    assert_int_equal(tk_args_get_bool(a, 3, &b), 0);
    assert_true(b); /* any non-zero int is true */
    assert_int_equal(tk_args_get_str(a, 4, &s), 0);
    assert_string_equal(s, "str");
    assert_int_equal(tk_args_type(a, 5), TK_TYPE_NONE);
    assert_int_equal(tk_args_get_str(a, 6, &s), 0);
    assert_string_equal(s, "zz");
    assert_int_equal(tk_args_get_bytes(a, 7, &y, &n), 0);
    assert_int_equal(n, 6);
    assert_memory_equal(y, "by\0tes", 6);
    assert_int_equal(tk_args_get_ptr(a, 8, &p), 0);
    assert_ptr_equal(p, &x);
    assert_int_equal(tk_args_type(a, 9), TK_TYPE_NONE);
    tk_args_free(a);

    a = tk_args_of("");
    assert_non_null(a);
    assert_int_equal(tk_args_len(a), 0);
    tk_args_free(a);
}

static void args_of_errors(void **state)
{
    (void)state;
    assert_null(tk_args_of(NULL));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    assert_string_equal(tk_last_error(), "tk_args_of: format is NULL");
    assert_null(tk_args_of("ix", 1, 2));
    assert_string_equal(tk_last_error(), "tk_args_of: unknown format code 'x' at position 1");
    assert_null(tk_args_of("i\x01", 1));
    assert_string_equal(tk_last_error(), "tk_args_of: unknown format code 0x01 at position 1");
    assert_null(tk_args_of("is", 1, (const char *)NULL));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    assert_string_equal(tk_last_error(), "tk_args_of: NULL string for format code 's' at "
                                         "position 1 (use 'z' to allow None)");
    assert_null(tk_args_of("y", (void *)0, (size_t)3));
    assert_string_equal(tk_last_error(),
                        "tk_args_of: NULL bytes with length 3 for format code 'y' at position 0");
}

static void args_copy_is_deep(void **state)
{
    (void)state;
    char buf[] = "mutable";
    char big[200];
    memset(big, 'b', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    tk_args *a = tk_args_of("isyss", 1, buf, "xyz", (size_t)3, big, "tail");
    tk_args *c = tk_args_copy(a);
    assert_non_null(c);
    buf[0] = 'M';
    tk_args_free(a);
    assert_int_equal(tk_args_len(c), 5);
    const char *s;
    assert_int_equal(tk_args_get_str(c, 1, &s), 0);
    assert_string_equal(s, "mutable");
    assert_int_equal(tk_args_get_str(c, 3, &s), 0);
    assert_string_equal(s, big);
    assert_int_equal(tk_args_get_str(c, 4, &s), 0);
    assert_string_equal(s, "tail");
    tk_args_free(c);

    c = tk_args_copy(NULL);
    assert_non_null(c);
    assert_int_equal(tk_args_len(c), 0);
    tk_args_free(c);
}

static void args_grow_past_inline_storage(void **state)
{
    (void)state;
    tk_args *a = tk_args_new();
    char s[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(s, sizeof s, "value-%d", i);
        assert_int_equal(tk_args_add_str(a, s), 0);
    }
    assert_int_equal(tk_args_len(a), 1000);
    for (int i = 0; i < 1000; i++) {
        const char *got;
        snprintf(s, sizeof s, "value-%d", i);
        assert_int_equal(tk_args_get_str(a, (size_t)i, &got), 0);
        assert_string_equal(got, s);
    }
    tk_args_free(a);
}

static void bytes_are_aligned(void **state)
{
    (void)state;
    /* odd-length strings first, so the arena offset is unaligned */
    tk_args *a = tk_args_of("syszyyy", "a", "\1\2\3", (size_t)3, "abc", "q", "xy", (size_t)2,
                            "", (size_t)0, "12345678901234567890123456789012345678901234567890"
                            "12345678901234567890", (size_t)70);
    for (size_t i = 0; i < tk_args_len(a); i++) {
        const void *y;
        size_t n;
        if (tk_args_type(a, i) != TK_TYPE_BYTES)
            continue;
        assert_int_equal(tk_args_get_bytes(a, i, &y, &n), 0);
        assert_int_equal((uintptr_t)y % 8, 0);
    }
    tk_args_free(a);
}

/* ----------------------------------------------------------- tk_kwargs */

static void kwargs_set_get_every_type(void **state)
{
    (void)state;
    int target;
    tk_kwargs *k = tk_kwargs_new();
    assert_non_null(k);
    assert_int_equal(tk_kwargs_len(k), 0);
    assert_int_equal(tk_kwargs_set_none(k, "none"), 0);
    assert_int_equal(tk_kwargs_set_bool(k, "flag", true), 0);
    assert_int_equal(tk_kwargs_set_int(k, "num", -3), 0);
    assert_int_equal(tk_kwargs_set_float(k, "ratio", 0.25), 0);
    assert_int_equal(tk_kwargs_set_str(k, "name", "ann"), 0);
    assert_int_equal(tk_kwargs_set_bytes(k, "blob", "\x01\x02", 2), 0);
    assert_int_equal(tk_kwargs_set_ptr(k, "ctx", &target), 0);
    assert_int_equal(tk_kwargs_len(k), 7);
    const char *keys[] = {"none", "flag", "num", "ratio", "name", "blob", "ctx"};
    const tk_type types[] = {TK_TYPE_NONE, TK_TYPE_BOOL, TK_TYPE_INT, TK_TYPE_FLOAT,
                             TK_TYPE_STR, TK_TYPE_BYTES, TK_TYPE_PTR};
    for (size_t i = 0; i < 7; i++) {
        assert_string_equal(tk_kwargs_key(k, i), keys[i]);
        assert_true(tk_kwargs_has(k, keys[i]));
        assert_int_equal(tk_kwargs_type(k, keys[i]), types[i]);
    }
    assert_null(tk_kwargs_key(k, 7));
    assert_false(tk_kwargs_has(k, "absent"));
    assert_int_equal(tk_kwargs_type(k, "absent"), TK_TYPE_INVALID);

    bool b;
    int64_t i;
    double d;
    const char *s;
    const void *y;
    size_t n;
    void *p;
    assert_int_equal(tk_kwargs_get_bool(k, "flag", &b), 0);
    assert_true(b);
    assert_int_equal(tk_kwargs_get_int(k, "num", &i), 0);
    assert_true(i == -3);
    assert_int_equal(tk_kwargs_get_float(k, "ratio", &d), 0);
    assert_true(d == 0.25);
    assert_int_equal(tk_kwargs_get_float(k, "num", &d), 0);
    assert_true(d == -3.0);
    assert_int_equal(tk_kwargs_get_str(k, "name", &s), 0);
    assert_string_equal(s, "ann");
    assert_int_equal(tk_kwargs_get_bytes(k, "blob", &y, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(y, "\x01\x02", 2);
    assert_int_equal(tk_kwargs_get_ptr(k, "ctx", &p), 0);
    assert_ptr_equal(p, &target);
    tk_kwargs_free(k);
    tk_kwargs_free(NULL);
}

static void kwargs_replace_in_place_and_delete(void **state)
{
    (void)state;
    tk_kwargs *k = tk_kwargs_of("a:i, b:s, c:d", 1, "two", 3.0);
    assert_non_null(k);
    char big[300];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(tk_kwargs_set_str(k, "a", big), 0); /* replace: type may change */
    assert_int_equal(tk_kwargs_set_int(k, "b", 22), 0);
    assert_int_equal(tk_kwargs_len(k), 3);
    assert_string_equal(tk_kwargs_key(k, 0), "a");
    assert_string_equal(tk_kwargs_key(k, 1), "b");
    assert_int_equal(tk_kwargs_type(k, "a"), TK_TYPE_STR);
    const char *s;
    assert_int_equal(tk_kwargs_get_str(k, "a", &s), 0);
    assert_string_equal(s, big);
    assert_int_equal(tk_kwargs_set_int(k, "a", 5), 0); /* frees the heap string */

    assert_int_equal(tk_kwargs_del(k, "b"), 0);
    assert_int_equal(tk_kwargs_len(k), 2);
    assert_string_equal(tk_kwargs_key(k, 0), "a");
    assert_string_equal(tk_kwargs_key(k, 1), "c");
    assert_err(tk_kwargs_del(k, "b"), TK_EKEY, "KeyError: 'b'");
    /* a deleted key comes back at the end, as in a dict */
    assert_int_equal(tk_kwargs_set_none(k, "b"), 0);
    assert_string_equal(tk_kwargs_key(k, 2), "b");
    tk_kwargs_free(k);
}

static void kwargs_errors(void **state)
{
    (void)state;
    tk_kwargs *k = tk_kwargs_of("num:s, flag:?", "x", 1);
    int64_t i = 1;
    bool b;
    double d;
    const char *s;
    const void *y;
    size_t n;
    void *p;
    assert_err(tk_kwargs_get_int(k, "num", &i), TK_ETYPE, "argument 'num' must be int, not str");
    assert_err(tk_kwargs_get_int(k, "flag", &i), TK_ETYPE,
               "argument 'flag' must be int, not bool");
    assert_err(tk_kwargs_get_int(k, "nmu", &i), TK_EKEY, "KeyError: 'nmu'");
    assert_true(i == 1);
    assert_err(tk_kwargs_get_bool(k, "num", &b), TK_ETYPE,
               "argument 'num' must be bool, not str");
    assert_err(tk_kwargs_get_float(k, "num", &d), TK_ETYPE,
               "argument 'num' must be float, not str");
    assert_err(tk_kwargs_get_str(k, "flag", &s), TK_ETYPE,
               "argument 'flag' must be str, not bool");
    assert_err(tk_kwargs_get_bytes(k, "num", &y, &n), TK_ETYPE,
               "argument 'num' must be bytes, not str");
    assert_err(tk_kwargs_get_ptr(k, "num", &p), TK_ETYPE,
               "argument 'num' must be pointer, not str");
    assert_err(tk_kwargs_get_str(k, NULL, &s), TK_EINVAL, "tk_kwargs_get_str: key is NULL");
    assert_err(tk_kwargs_get_str(k, "", &s), TK_EINVAL, "tk_kwargs_get_str: key is empty");
    assert_err(tk_kwargs_get_str(k, "num", NULL), TK_EINVAL,
               "tk_kwargs_get_str: out pointer is NULL");
    assert_err(tk_kwargs_get_bytes(k, "num", &y, NULL), TK_EINVAL,
               "tk_kwargs_get_bytes: length pointer is NULL");
    assert_err(tk_kwargs_get_int(NULL, "num", &i), TK_EKEY, "KeyError: 'num'");

    assert_err(tk_kwargs_set_int(NULL, "a", 1), TK_EINVAL, "tk_kwargs_set_int: kwargs is NULL");
    assert_err(tk_kwargs_set_int(k, NULL, 1), TK_EINVAL, "tk_kwargs_set_int: key is NULL");
    assert_err(tk_kwargs_set_int(k, "", 1), TK_EINVAL, "tk_kwargs_set_int: key is empty");
    assert_err(tk_kwargs_set_none(k, ""), TK_EINVAL, "tk_kwargs_set_none: key is empty");
    assert_err(tk_kwargs_set_bool(k, NULL, 1), TK_EINVAL, "tk_kwargs_set_bool: key is NULL");
    assert_err(tk_kwargs_set_float(k, NULL, 1), TK_EINVAL, "tk_kwargs_set_float: key is NULL");
    assert_err(tk_kwargs_set_ptr(k, NULL, NULL), TK_EINVAL, "tk_kwargs_set_ptr: key is NULL");
    assert_err(tk_kwargs_set_str(k, "a", NULL), TK_EINVAL,
               "tk_kwargs_set_str: string is NULL (use tk_kwargs_set_none for None)");
    assert_err(tk_kwargs_set_bytes(k, "a", NULL, 1), TK_EINVAL,
               "tk_kwargs_set_bytes: bytes pointer is NULL with length 1");
    assert_err(tk_kwargs_del(NULL, "a"), TK_EINVAL, "tk_kwargs_del: kwargs is NULL");
    assert_err(tk_kwargs_del(k, NULL), TK_EINVAL, "tk_kwargs_del: key is NULL");
    assert_err(tk_kwargs_del(k, ""), TK_EINVAL, "tk_kwargs_del: key is empty");
    assert_int_equal(tk_kwargs_len(k), 2);
    assert_false(tk_kwargs_has(k, NULL));
    assert_false(tk_kwargs_has(k, ""));
    assert_false(tk_kwargs_has(NULL, "num"));
    assert_int_equal(tk_kwargs_type(k, NULL), TK_TYPE_INVALID);
    assert_int_equal(tk_kwargs_len(NULL), 0);
    assert_null(tk_kwargs_key(NULL, 0));
    tk_kwargs_free(k);
}

static void kwargs_of_format(void **state)
{
    (void)state;
    int x;
    tk_kwargs *k = tk_kwargs_of("  num:i,name : s ,\tr:d, big:l, f:?, z:z, y:y, p:p, n:n,",
                                3, "x", 1.5, (int64_t)-1, 0, (const char *)NULL, "ab",
                                (size_t)2, (void *)&x);
    assert_non_null(k);
    assert_int_equal(tk_kwargs_len(k), 9);
    const char *keys[] = {"num", "name", "r", "big", "f", "z", "y", "p", "n"};
    for (size_t i = 0; i < 9; i++)
        assert_string_equal(tk_kwargs_key(k, i), keys[i]);
    int64_t i;
    bool b;
    assert_int_equal(tk_kwargs_get_int(k, "big", &i), 0);
    assert_true(i == -1);
    assert_int_equal(tk_kwargs_get_bool(k, "f", &b), 0);
    assert_false(b);
    assert_int_equal(tk_kwargs_type(k, "z"), TK_TYPE_NONE);
    assert_int_equal(tk_kwargs_type(k, "n"), TK_TYPE_NONE);
    tk_kwargs_free(k);

    k = tk_kwargs_of("");
    assert_non_null(k);
    assert_int_equal(tk_kwargs_len(k), 0);
    tk_kwargs_free(k);

    /* a repeated key keeps its first position and the last value, like
     * the dict literal {'a': 1, 'b': 2, 'a': 3} */
    k = tk_kwargs_of("a:i, b:i, a:i", 1, 2, 3);
    assert_int_equal(tk_kwargs_len(k), 2);
    assert_string_equal(tk_kwargs_key(k, 0), "a");
    assert_int_equal(tk_kwargs_get_int(k, "a", &i), 0);
    assert_true(i == 3);
    tk_kwargs_free(k);

    /* keys longer than the parser's stack buffer */
    char fmt[200];
    memset(fmt, 'k', 150);
    strcpy(fmt + 150, ":i");
    k = tk_kwargs_of(fmt, 9);
    assert_non_null(k);
    assert_int_equal(strlen(tk_kwargs_key(k, 0)), 150);
    tk_kwargs_free(k);
}

static void kwargs_of_errors(void **state)
{
    (void)state;
    const struct {
        const char *fmt, *msg;
    } bad[] = {
        {"num", "tk_kwargs_of: missing ':code' after key 'num' at position 3"},
        {"num:", "tk_kwargs_of: missing format code for key 'num' at position 4"},
        {":i", "tk_kwargs_of: empty key at position 0"},
        {"a:i,,b:i", "tk_kwargs_of: empty key at position 4"},
        {"a:i b:i", "tk_kwargs_of: unexpected 'b' after item 'a' at position 4 (expected ',')"},
        {"a:ii", "tk_kwargs_of: unexpected 'i' after item 'a' at position 3 (expected ',')"},
        {"a:x", "tk_kwargs_of: unknown format code 'x' at position 2"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_null(tk_kwargs_of(bad[i].fmt, 1, 2));
        assert_int_equal(tk_last_error_code(), TK_EINVAL);
        assert_string_equal(tk_last_error(), bad[i].msg);
    }
    assert_null(tk_kwargs_of(NULL));
    assert_string_equal(tk_last_error(), "tk_kwargs_of: format is NULL");
    assert_null(tk_kwargs_of("a:s", (const char *)NULL));
    assert_string_equal(tk_last_error(), "tk_kwargs_of: NULL string for format code 's' at "
                                         "position 2 (use 'z' to allow None)");
}

static void kwargs_copy_is_deep(void **state)
{
    (void)state;
    char buf[] = "value";
    tk_kwargs *k = tk_kwargs_of("a:s, b:i", buf, 1);
    char key[100];
    memset(key, 'q', 99);
    key[99] = '\0';
    assert_int_equal(tk_kwargs_set_str(k, key, "long key"), 0);
    tk_kwargs *c = tk_kwargs_copy(k);
    tk_kwargs_free(k);
    buf[0] = 'V';
    assert_int_equal(tk_kwargs_len(c), 3);
    const char *s;
    assert_int_equal(tk_kwargs_get_str(c, "a", &s), 0);
    assert_string_equal(s, "value");
    assert_int_equal(tk_kwargs_get_str(c, key, &s), 0);
    assert_string_equal(s, "long key");
    assert_string_equal(tk_kwargs_key(c, 2), key);
    tk_kwargs_free(c);
    c = tk_kwargs_copy(NULL);
    assert_int_equal(tk_kwargs_len(c), 0);
    tk_kwargs_free(c);
}

static void type_names(void **state)
{
    (void)state;
    assert_string_equal(tk_type_name(TK_TYPE_NONE), "NoneType");
    assert_string_equal(tk_type_name(TK_TYPE_BOOL), "bool");
    assert_string_equal(tk_type_name(TK_TYPE_INT), "int");
    assert_string_equal(tk_type_name(TK_TYPE_FLOAT), "float");
    assert_string_equal(tk_type_name(TK_TYPE_STR), "str");
    assert_string_equal(tk_type_name(TK_TYPE_BYTES), "bytes");
    assert_string_equal(tk_type_name(TK_TYPE_PTR), "pointer");
    assert_string_equal(tk_type_name(TK_TYPE_INVALID), "invalid");
    assert_string_equal(tk_type_name((tk_type)42), "invalid");
}


/* ------------------------------------------------- type-safe TK_ARGS */

static void tk_args_macro_picks_types(void **state)
{
    (void)state;
    tk_args *a = TK_ARGS(3, "x", 2.5);
    assert_non_null(a);
    assert_int_equal(tk_args_len(a), 3);
    assert_int_equal(tk_args_type(a, 0), TK_TYPE_INT);
    assert_int_equal(tk_args_type(a, 1), TK_TYPE_STR);
    assert_int_equal(tk_args_type(a, 2), TK_TYPE_FLOAT);
    tk_args_free(a);

    /* 3 vs 3.0, int vs int64_t, unsigned and char types: all right */
    int x = 0;
    bool flag = true;
    float f = 1.5f;
    char *mut = (char[]){"mutable"};
    const char *cs = "const";
    unsigned char uc = 200;
    a = TK_ARGS(3.0, (int64_t)-1, (size_t)5, flag, f, mut, cs, &x, TK_NONE, TK_BYTES("ab", 2),
                'c', uc);
    assert_non_null(a);
    assert_int_equal(tk_args_len(a), 12);
    const tk_type want[] = {TK_TYPE_FLOAT, TK_TYPE_INT, TK_TYPE_INT, TK_TYPE_BOOL,
                            TK_TYPE_FLOAT, TK_TYPE_STR, TK_TYPE_STR, TK_TYPE_PTR,
                            TK_TYPE_NONE, TK_TYPE_BYTES, TK_TYPE_INT, TK_TYPE_INT};
    for (size_t i = 0; i < 12; i++)
        assert_int_equal(tk_args_type(a, i), want[i]);
    int64_t i64;
    double d;
    bool b;
    const void *y;
    size_t n;
    void *p;
    const char *s;
    assert_int_equal(tk_args_get_int(a, 1, &i64), 0);
    assert_true(i64 == -1);
    assert_int_equal(tk_args_get_int(a, 2, &i64), 0);
    assert_true(i64 == 5);
    assert_int_equal(tk_args_get_bool(a, 3, &b), 0);
    assert_true(b);
    assert_int_equal(tk_args_get_float(a, 4, &d), 0);
    assert_true(d == 1.5);
    assert_int_equal(tk_args_get_str(a, 5, &s), 0);
    assert_string_equal(s, "mutable");
    assert_ptr_not_equal(s, mut); /* copied */
    assert_int_equal(tk_args_get_ptr(a, 7, &p), 0);
    assert_ptr_equal(p, &x);
    assert_int_equal(tk_args_get_bytes(a, 9, &y, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(y, "ab", 2);
    assert_int_equal(tk_args_get_int(a, 10, &i64), 0);
    assert_true(i64 == 'c');
    assert_int_equal(tk_args_get_int(a, 11, &i64), 0);
    assert_true(i64 == 200);
    tk_args_free(a);

    /* NULL is a pointer value; (bool) makes a bool (C's `true` is an int) */
    a = TK_ARGS(NULL, (bool)1, true);
    assert_int_equal(tk_args_type(a, 0), TK_TYPE_PTR);
    assert_int_equal(tk_args_type(a, 1), TK_TYPE_BOOL);
    assert_int_equal(tk_args_type(a, 2), TK_TYPE_INT);
    tk_args_free(a);

    tk__fault_set(1L << 60);
    a = TK_ARGS(3, "x");
    assert_int_equal(tk__fault_allocs(), 1);
    tk__fault_set(0);
    tk_args_free(a);
}

static void tk_args_macro_errors(void **state)
{
    (void)state;
    assert_null(TK_ARGS(1, UINT64_MAX));
    assert_int_equal(tk_last_error_code(), TK_EOVERFLOW);
    assert_string_equal(tk_last_error(),
                        "tk_args_from: value 1 is an unsigned integer too large for int (int64_t)");
    tk_args *a = TK_ARGS((uint64_t)INT64_MAX);
    assert_non_null(a);
    tk_args_free(a);
    assert_null(TK_ARGS((const char *)NULL));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    assert_string_equal(tk_last_error(),
                        "tk_args_from: value 0 is a NULL string (use TK_NONE for None)");
    assert_null(TK_ARGS(TK_BYTES(NULL, 3)));
    assert_string_equal(tk_last_error(), "tk_args_from: value 0 is NULL bytes with length 3");

    assert_null(tk_args_from(NULL, 1));
    assert_string_equal(tk_last_error(), "tk_args_from: values are NULL with count 1");
    tk_value bad = {(tk_type)99, 0, {.i = 0}};
    assert_null(tk_args_from(&bad, 1));
    assert_string_equal(tk_last_error(), "tk_args_from: value 0 has unknown type 99");
    a = tk_args_from(NULL, 0);
    assert_non_null(a);
    assert_int_equal(tk_args_len(a), 0);
    tk_args_free(a);
}

/* ------------------------------------------------ allocation failures */

static char big_a[200], big_b[300];

static void make_bigs(void)
{
    memset(big_a, 'a', sizeof big_a - 1);
    memset(big_b, 'b', sizeof big_b - 1);
}

static tk_args *build_args(void)
{
    return tk_args_of("isisisyd", 1, big_a, 2, "short", 3, big_b, big_a, (size_t)150, 1.0);
}

static tk_kwargs *build_kwargs(void)
{
    return tk_kwargs_of("a:s, the-long-key-beyond-the-inline-arena-of-the-bag-xxxxxxxx:i, "
                        "c:s, d:i, e:y, f:n",
                        big_a, 1, big_b, 4, big_b, (size_t)10);
}

/* A bag built piecemeal: its big values go to the heap one by one. */
static tk_args *grow_args(void)
{
    tk_args *a = tk_args_new();
    if (a && (tk_args_add_str(a, big_a) < 0 || tk_args_add_int(a, 1) < 0 ||
              tk_args_add_bytes(a, big_b, 100) < 0 || tk_args_add_str(a, big_b) < 0 ||
              tk_args_add_str(a, "short") < 0)) {
        assert_int_equal(tk_last_error_code(), TK_ENOMEM);
        tk_args_free(a);
        return NULL;
    }
    return a;
}

/* 20 values: the first 16 are measured before the bag is made, the rest
 * (big strings here) are added to it as they come. */
static tk_args *long_args(void)
{
    return tk_args_of("iiiiiiiiiiiiiiii ssss", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
                      15, 16, big_a, big_b, big_a, "x");
}

/* Runs op with the n-th allocation failing, for n = 1, 2, ... until it
 * succeeds: every failure must be a clean NULL + TK_ENOMEM (leaks are
 * caught by ASan/valgrind). The first success must come once `allocs`
 * allocations could be made, or more when `allocs` is negative (at least
 * -allocs). */
#define FAULT_LOOP(type, op, free_fn, allocs)                  \
    do {                                                       \
        for (long n = 1;; n++) {                               \
            tk__fault_set(n);                                  \
            type *obj = (op);                                  \
            tk__fault_set(0);                                  \
            if (obj) {                                         \
                if ((allocs) > 0)                              \
                    assert_int_equal(n - 1, (allocs));         \
                else                                           \
                    assert_true(n - 1 >= -(allocs));           \
                free_fn(obj);                                  \
                break;                                         \
            }                                                  \
            assert_int_equal(tk_last_error_code(), TK_ENOMEM); \
        }                                                      \
    } while (0)

static void every_allocation_may_fail(void **state)
{
    (void)state;
    make_bigs();
    /* A bag built all at once is made to measure: one allocation, even
     * with values larger than a default bag's arena. */
    FAULT_LOOP(tk_args, build_args(), tk_args_free, 1);
    FAULT_LOOP(tk_kwargs, build_kwargs(), tk_kwargs_free, -3);
    tk_args *a = build_args();
    tk_kwargs *k = build_kwargs();
    FAULT_LOOP(tk_args, tk_args_copy(a), tk_args_free, 1);
    FAULT_LOOP(tk_kwargs, tk_kwargs_copy(k), tk_kwargs_free, 1);
    FAULT_LOOP(tk_args, TK_ARGS(1, big_a, 2, big_b, 3, "x", 4.0), tk_args_free, 1);
    /* Piecemeal, every big value is an allocation of its own. */
    FAULT_LOOP(tk_args, grow_args(), tk_args_free, 5); /* + the 5th value's slot array */
    FAULT_LOOP(tk_args, long_args(), tk_args_free, 4);
    tk_args *l = long_args();
    assert_non_null(l);
    assert_int_equal(tk_args_len(l), 20);
    const char *ls;
    int64_t li;
    assert_int_equal(tk_args_get_int(l, 15, &li), 0);
    assert_int_equal(li, 16);
    assert_int_equal(tk_args_get_str(l, 17, &ls), 0);
    assert_string_equal(ls, big_b);
    assert_int_equal(tk_args_get_str(l, 19, &ls), 0);
    assert_string_equal(ls, "x");
    tk_args_free(l);

    /* a failed set or add leaves the bag as it was */
    tk__fault_set(1);
    assert_int_equal(tk_kwargs_set_str(k, "a", big_b), TK_ENOMEM);
    tk__fault_set(1);
    assert_int_equal(tk_kwargs_set_str(k, "new-key", big_b), TK_ENOMEM);
    tk__fault_set(1);
    assert_int_equal(tk_args_add_str(a, big_b), TK_ENOMEM);
    tk__fault_set(0);
    const char *s;
    assert_int_equal(tk_kwargs_get_str(k, "a", &s), 0);
    assert_string_equal(s, big_a);
    assert_false(tk_kwargs_has(k, "new-key"));
    assert_int_equal(tk_kwargs_len(k), 6);
    assert_int_equal(tk_args_len(a), 8);
    /* growing the value array can fail too */
    tk_args *small = tk_args_of("iiii", 1, 2, 3, 4);
    tk__fault_set(1);
    assert_int_equal(tk_args_add_int(small, 5), TK_ENOMEM);
    tk__fault_set(0);
    assert_int_equal(tk_args_len(small), 4);
    assert_int_equal(tk_args_add_int(small, 5), 0);
    tk_args_free(small);
    /* a new key that fits the arena but whose value does not */
    tk__fault_set(1);
    assert_int_equal(tk_kwargs_set_str(k, "z", big_b), TK_ENOMEM);
    tk__fault_set(0);
    assert_false(tk_kwargs_has(k, "z"));
    tk_args_free(a);
    tk_kwargs_free(k);
}

/* ------------------------------------------------ concurrent readers */

struct shared_bags {
    const tk_args *a;
    const tk_kwargs *k;
};

static void *reader(void *arg)
{
    const struct shared_bags *sb = arg;
    for (int i = 0; i < 2000; i++) {
        int num;
        const char *name = NULL;
        bool verbose = false;
        if (tk_bind(sb->a, sb->k, "f(num:i, name:s=, *, verbose:?=)", &num, &name, &verbose))
            return (void *)1;
        if (num != 3 || strcmp(name, "x") != 0 || !verbose)
            return (void *)1;
        tk_args *c = tk_args_copy(sb->a);
        void *buf;
        size_t len;
        if (!c || tk_args_encode(c, sb->k, &buf, &len))
            return (void *)1;
        free(buf);
        tk_args_free(c);
        if (!tk_kwargs_has(sb->k, "verbose") || tk_args_len(sb->a) != 2)
            return (void *)1;
    }
    return NULL;
}

/* Const operations on one bag may run concurrently (checked under TSan). */
static void const_operations_run_concurrently(void **state)
{
    (void)state;
    struct shared_bags sb = {tk_args_of("is", 3, "x"), tk_kwargs_of("verbose:?", 1)};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader, &sb), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        assert_null(r);
    }
    tk_args_free((tk_args *)sb.a);
    tk_kwargs_free((tk_kwargs *)sb.k);
}

/* ------------------------------------------------------ allocations */

static void small_bag_is_one_allocation(void **state)
{
    (void)state;
    tk__fault_set(1L << 60); /* count, never fail */
    tk_args *a = tk_args_of("is", 3, "x");
    assert_int_equal(tk__fault_allocs(), 1);
    tk__fault_set(1L << 60);
    tk_args *b = tk_args_of("isd?", 3, "a short string", 2.0, 1);
    assert_int_equal(tk__fault_allocs(), 1);
    tk__fault_set(1L << 60);
    tk_kwargs *k = tk_kwargs_of("num:i, name:s, verbose:?", 3, "x", 1);
    assert_int_equal(tk__fault_allocs(), 1);
    tk__fault_set(1L << 60);
    tk_args *c = tk_args_copy(b);
    assert_int_equal(tk__fault_allocs(), 1);
    tk__fault_set(0);
    tk_args_free(a);
    tk_args_free(b);
    tk_args_free(c);
    tk_kwargs_free(k);
}

/* tk_args_of, tk_args_from and the copies size the bag to its values:
 * one allocation however long the strings, small for small bags, and
 * past the inline limits (slots, arena) the values still all come back. */
static void built_bags_are_made_to_measure(void **state)
{
    (void)state;
    char big[300];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    tk__fault_set(1L << 60); /* count, never fail */
    tk_args *a = tk_args_of("sis", big, 5, "tail");
    assert_int_equal(tk__fault_allocs(), 1);
    tk__fault_set(0);
    tk_args *one = tk_args_of("l", (int64_t)42);
#ifdef __GLIBC__
    /* a one-integer bag: header + one slot, a fastbin-sized block */
    assert_true(malloc_usable_size(one) < 100);
    assert_true(malloc_usable_size(a) < 600);
#endif
    /* a made-to-measure bag still grows */
    assert_int_equal(tk_args_add_str(one, big), 0);
    assert_int_equal(tk_args_add_int(one, 7), 0);
    const char *s;
    int64_t i64;
    assert_int_equal(tk_args_get_int(one, 0, &i64), 0);
    assert_int_equal(i64, 42);
    assert_int_equal(tk_args_get_str(one, 1, &s), 0);
    assert_string_equal(s, big);
    tk_args_free(one);
    tk_args_free(a);

    /* more values than a bag keeps inline */
    tk_args *many = tk_args_new();
    for (int i = 0; i < 1500; i++)
        assert_int_equal(tk_args_add_int(many, i), 0);
    tk_args *mc = tk_args_copy(many);
    tk_args_free(many);
    assert_int_equal(tk_args_len(mc), 1500);
    for (int i = 0; i < 1500; i++) {
        assert_int_equal(tk_args_get_int(mc, (size_t)i, &i64), 0);
        assert_int_equal(i64, i);
    }
    tk_args_free(mc);

    /* payloads beyond the inline arena limit */
    size_t n = (size_t)3 << 20;
    unsigned char *buf = malloc(n);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)(i * 7);
    tk_args *y = tk_args_of("sy", "x", buf, n);
    tk_args *yc = tk_args_copy(y);
    tk_args_free(y);
    const void *p;
    size_t got;
    assert_int_equal(tk_args_get_bytes(yc, 1, &p, &got), 0);
    assert_int_equal(got, n);
    assert_int_equal((uintptr_t)p % 8, 0);
    assert_memory_equal(p, buf, n);
    tk_args_free(yc);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(args_new_is_empty),
        cmocka_unit_test(args_add_and_get_every_type),
        cmocka_unit_test(args_getter_errors),
        cmocka_unit_test(args_writers_refuse_null),
        cmocka_unit_test(args_of_every_code),
        cmocka_unit_test(args_of_errors),
        cmocka_unit_test(args_copy_is_deep),
        cmocka_unit_test(args_grow_past_inline_storage),
        cmocka_unit_test(built_bags_are_made_to_measure),
        cmocka_unit_test(bytes_are_aligned),
        cmocka_unit_test(kwargs_set_get_every_type),
        cmocka_unit_test(kwargs_replace_in_place_and_delete),
        cmocka_unit_test(kwargs_errors),
        cmocka_unit_test(kwargs_of_format),
        cmocka_unit_test(kwargs_of_errors),
        cmocka_unit_test(kwargs_copy_is_deep),
        cmocka_unit_test(type_names),
        cmocka_unit_test(small_bag_is_one_allocation),
        cmocka_unit_test(const_operations_run_concurrently),
        cmocka_unit_test(tk_args_macro_picks_types),
        cmocka_unit_test(tk_args_macro_errors),
        cmocka_unit_test(every_allocation_may_fail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
