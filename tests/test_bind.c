/* test_bind.c - tk_bind: binding args and kwargs to a signature with
 * CPython's rules and messages (each expected message below was checked
 * against CPython 3 for the equivalent Python function). */
#include "common/testutil.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "taskkit.h"

#define assert_err(call, code, msg)                     \
    do {                                                \
        assert_int_equal((call), (code));               \
        assert_int_equal(tk_last_error_code(), (code)); \
        assert_string_equal(tk_last_error(), (msg));    \
    } while (0)

#define SIG "coding(num:i, name:s=, *, verbose:?=)"

static void binds_positional_then_keywords(void **state)
{
    (void)state;
    tk_args *a = tk_args_of("i", 3);
    tk_kwargs *k = tk_kwargs_of("verbose:?, name:s", 1, "ann");
    int num = 0;
    const char *name = NULL;
    bool verbose = false;
    assert_int_equal(tk_bind(a, k, SIG, &num, &name, &verbose), 0);
    assert_int_equal(num, 3);
    assert_string_equal(name, "ann");
    assert_true(verbose);
    tk_args_free(a);
    tk_kwargs_free(k);
}

static void optional_parameters_keep_defaults(void **state)
{
    (void)state;
    tk_args *a = tk_args_of("i", 3);
    int num = 0;
    const char *name = "default";
    bool verbose = true;
    assert_int_equal(tk_bind(a, NULL, SIG, &num, &name, &verbose), 0);
    assert_int_equal(num, 3);
    assert_string_equal(name, "default");
    assert_true(verbose);
    /* a required parameter may come by keyword, NULL args being empty */
    tk_kwargs *k = tk_kwargs_of("num:i", 9);
    assert_int_equal(tk_bind(NULL, k, SIG, &num, &name, &verbose), 0);
    assert_int_equal(num, 9);
    /* no parameters, no values */
    assert_int_equal(tk_bind(NULL, NULL, "f()"), 0);
    assert_int_equal(tk_bind(NULL, NULL, " f ( ) "), 0);
    tk_args_free(a);
    tk_kwargs_free(k);
}

static void every_code(void **state)
{
    (void)state;
    int ctx;
    tk_args *a = tk_args_of("ildizzsyp?", -7, (int64_t)1 << 50, 2.5, 4, (const char *)NULL,
                            "zz", "ss", "a\0b", (size_t)3, (void *)&ctx, 1);
    int i = 0;
    int64_t l = 0;
    double d1 = 0, d2 = 0;
    const char *z1 = "x", *z2 = NULL, *s = NULL;
    const void *y = NULL;
    size_t n = 0;
    void *p = NULL;
    bool b = false;
    assert_int_equal(tk_bind(a, NULL,
                             "f(i:i, l:l, d1:d, d2:d, z1:z, z2:z, s:s, y:y, p:p, b:?)", &i, &l,
                             &d1, &d2, &z1, &z2, &s, &y, &n, &p, &b),
                     0);
    assert_int_equal(i, -7);
    assert_true(l == (int64_t)1 << 50);
    assert_true(d1 == 2.5);
    assert_true(d2 == 4.0); /* an int binds to d, as float() converts it */
    assert_null(z1);        /* None binds to z as NULL */
    assert_string_equal(z2, "zz");
    assert_string_equal(s, "ss");
    assert_int_equal(n, 3);
    assert_memory_equal(y, "a\0b", 3);
    assert_ptr_equal(p, &ctx);
    assert_true(b);
    tk_args_free(a);
}

static void int_range_is_checked(void **state)
{
    (void)state;
    int num = 5;
    tk_args *a = tk_args_of("l", (int64_t)INT_MAX + 1);
    assert_err(tk_bind(a, NULL, "coding(num:i)", &num), TK_EOVERFLOW,
               "coding() argument 'num': signed integer is greater than maximum");
    tk_args_free(a);
    a = tk_args_of("l", (int64_t)INT_MIN - 1);
    assert_err(tk_bind(a, NULL, "coding(num:i)", &num), TK_EOVERFLOW,
               "coding() argument 'num': signed integer is less than minimum");
    assert_int_equal(num, 5);
    tk_args_free(a);
    a = tk_args_of("l", (int64_t)INT_MIN);
    assert_int_equal(tk_bind(a, NULL, "coding(num:i)", &num), 0);
    assert_int_equal(num, INT_MIN);
    tk_args_free(a);
}

static void too_many_positionals(void **state)
{
    (void)state;
    int x = 0, y = 0;
    bool v = false;
    tk_args *a2 = tk_args_of("ii", 1, 2);
    tk_args *a3 = tk_args_of("iii", 1, 2, 3);
    tk_args *a1 = tk_args_of("i", 1);
    assert_err(tk_bind(a2, NULL, "coding(num:i)", &x), TK_EARGS,
               "coding() takes 1 positional argument but 2 were given");
    assert_err(tk_bind(a3, NULL, "coding(num:i, name:i=)", &x, &y), TK_EARGS,
               "coding() takes from 1 to 2 positional arguments but 3 were given");
    assert_err(tk_bind(a1, NULL, "coding()"), TK_EARGS,
               "coding() takes 0 positional arguments but 1 was given");
    assert_err(tk_bind(a2, NULL, "coding(*, verbose:?=)", &v), TK_EARGS,
               "coding() takes 0 positional arguments but 2 were given");
    assert_err(tk_bind(a3, NULL, "coding(a:i, b:i)", &x, &y), TK_EARGS,
               "coding() takes 2 positional arguments but 3 were given");
    /* keyword-only values given are mentioned, as CPython does */
    tk_kwargs *k = tk_kwargs_of("verbose:?", 1);
    assert_err(tk_bind(a3, k, "coding(num:i, name:i=, *, verbose:?=)", &x, &y, &v), TK_EARGS,
               "coding() takes from 1 to 2 positional arguments but 3 positional arguments "
               "(and 1 keyword-only argument) were given");
    assert_err(tk_bind(a2, k, "coding(num:i, *, verbose:?=)", &x, &v), TK_EARGS,
               "coding() takes 1 positional argument but 2 positional arguments "
               "(and 1 keyword-only argument) were given");
    /* too many positionals is reported before missing keyword-only ones */
    assert_err(tk_bind(a2, NULL, "coding(a:i, *, k:i)", &x, &y), TK_EARGS,
               "coding() takes 1 positional argument but 2 were given");
    tk_args_free(a1);
    tk_args_free(a2);
    tk_args_free(a3);
    tk_kwargs_free(k);
}

static void missing_arguments(void **state)
{
    (void)state;
    int a = 0, b = 0, c = 0;
    bool v = false;
    tk_args *one = tk_args_of("i", 1);
    assert_err(tk_bind(NULL, NULL, "coding(num:i)", &a), TK_EARGS,
               "coding() missing 1 required positional argument: 'num'");
    assert_err(tk_bind(NULL, NULL, "coding(a:i, b:i)", &a, &b), TK_EARGS,
               "coding() missing 2 required positional arguments: 'a' and 'b'");
    assert_err(tk_bind(NULL, NULL, "coding(a:i, b:i, c:i)", &a, &b, &c), TK_EARGS,
               "coding() missing 3 required positional arguments: 'a', 'b', and 'c'");
    assert_err(tk_bind(one, NULL, "coding(a:i, b:i, c:i)", &a, &b, &c), TK_EARGS,
               "coding() missing 2 required positional arguments: 'b' and 'c'");
    assert_err(tk_bind(one, NULL, "coding(num:i, *, verbose:?)", &a, &v), TK_EARGS,
               "coding() missing 1 required keyword-only argument: 'verbose'");
    assert_err(tk_bind(NULL, NULL, "coding(*, a:i, b:i, c:i=)", &a, &b, &c), TK_EARGS,
               "coding() missing 2 required keyword-only arguments: 'a' and 'b'");
    /* missing positionals are reported before missing keyword-only ones */
    assert_err(tk_bind(NULL, NULL, "coding(num:i, *, verbose:?)", &a, &v), TK_EARGS,
               "coding() missing 1 required positional argument: 'num'");
    /* a positional filled by keyword does not count as missing */
    tk_kwargs *k = tk_kwargs_of("b:i", 2);
    assert_err(tk_bind(NULL, k, "coding(a:i, b:i)", &a, &b), TK_EARGS,
               "coding() missing 1 required positional argument: 'a'");
    tk_args_free(one);
    tk_kwargs_free(k);
}

static void keyword_errors(void **state)
{
    (void)state;
    int num = 0, x = 0;
    tk_args *one = tk_args_of("i", 1);
    tk_args *three = tk_args_of("iii", 1, 2, 3);
    tk_kwargs *dup = tk_kwargs_of("num:i", 2);
    tk_kwargs *typo = tk_kwargs_of("nmu:i", 2);
    assert_err(tk_bind(one, dup, "coding(num:i)", &num), TK_EARGS,
               "coding() got multiple values for argument 'num'");
    assert_err(tk_bind(one, typo, "coding(num:i)", &num), TK_EARGS,
               "coding() got an unexpected keyword argument 'nmu'");
    /* CPython checks keywords before counting positionals */
    assert_err(tk_bind(three, typo, "coding(num:i, name:i=)", &num, &x), TK_EARGS,
               "coding() got an unexpected keyword argument 'nmu'");
    assert_err(tk_bind(three, dup, "coding(num:i)", &num), TK_EARGS,
               "coding() got multiple values for argument 'num'");
    /* and keywords in their insertion order */
    tk_kwargs *both = tk_kwargs_of("zzz:i, num:i", 1, 2);
    assert_err(tk_bind(one, both, "coding(num:i)", &num), TK_EARGS,
               "coding() got an unexpected keyword argument 'zzz'");
    assert_int_equal(num, 0);
    tk_args_free(one);
    tk_args_free(three);
    tk_kwargs_free(dup);
    tk_kwargs_free(typo);
    tk_kwargs_free(both);
}

static void type_errors(void **state)
{
    (void)state;
    int num = 0;
    int64_t l = 0;
    double d = 0;
    bool b = false;
    const char *s = NULL;
    const void *y = NULL;
    size_t n = 0;
    void *p = NULL;
    tk_args *str = tk_args_of("s", "x");
    tk_args *boo = tk_args_of("?", 1);
    tk_args *in = tk_args_of("i", 1);
    tk_args *none = tk_args_of("n");
    assert_err(tk_bind(str, NULL, "coding(num:i)", &num), TK_ETYPE,
               "coding() argument 'num' must be int, not str");
    /* a bool is not an int here (unlike CPython): a C caller passing one is a bug */
    assert_err(tk_bind(boo, NULL, "coding(num:i)", &num), TK_ETYPE,
               "coding() argument 'num' must be int, not bool");
    assert_err(tk_bind(boo, NULL, "coding(num:l)", &l), TK_ETYPE,
               "coding() argument 'num' must be int, not bool");
    assert_err(tk_bind(str, NULL, "coding(x:d)", &d), TK_ETYPE,
               "coding() argument 'x' must be float, not str");
    assert_err(tk_bind(in, NULL, "coding(flag:?)", &b), TK_ETYPE,
               "coding() argument 'flag' must be bool, not int");
    assert_err(tk_bind(none, NULL, "coding(name:s)", &s), TK_ETYPE,
               "coding() argument 'name' must be str, not NoneType");
    assert_err(tk_bind(in, NULL, "coding(name:z)", &s), TK_ETYPE,
               "coding() argument 'name' must be str or None, not int");
    assert_err(tk_bind(str, NULL, "coding(data:y)", &y, &n), TK_ETYPE,
               "coding() argument 'data' must be bytes, not str");
    assert_err(tk_bind(in, NULL, "coding(ctx:p)", &p), TK_ETYPE,
               "coding() argument 'ctx' must be pointer, not int");
    tk_kwargs *k = tk_kwargs_of("num:s", "x");
    assert_err(tk_bind(NULL, k, "coding(num:i)", &num), TK_ETYPE,
               "coding() argument 'num' must be int, not str");
    tk_kwargs_free(k);
    tk_args_free(str);
    tk_args_free(boo);
    tk_args_free(in);
    tk_args_free(none);
}

static void nothing_written_on_failure(void **state)
{
    (void)state;
    /* every parameter but the last binds; the last one fails its type check */
    tk_args *a = tk_args_of("ilds", 1, (int64_t)2, 3.0, "x");
    tk_kwargs *k = tk_kwargs_of("y:y, last:s", "ab", (size_t)2, "wrong");
    int i = -1;
    int64_t l = -1;
    double d = -1;
    const char *s = "untouched";
    const void *y = "untouched";
    size_t n = 77;
    int last = -1;
    assert_int_equal(tk_bind(a, k, "f(i:i, l:l, d:d, s:s, *, y:y, last:i)", &i, &l, &d, &s, &y,
                             &n, &last),
                     TK_ETYPE);
    assert_int_equal(i, -1);
    assert_true(l == -1);
    assert_true(d == -1);
    assert_string_equal(s, "untouched");
    assert_string_equal(y, "untouched");
    assert_int_equal(n, 77);
    assert_int_equal(last, -1);
    /* the same with an out-of-range int */
    tk_kwargs_free(k);
    k = tk_kwargs_of("y:y, last:l", "ab", (size_t)2, (int64_t)1 << 40);
    assert_int_equal(tk_bind(a, k, "f(i:i, l:l, d:d, s:s, *, y:y, last:i)", &i, &l, &d, &s, &y,
                             &n, &last),
                     TK_EOVERFLOW);
    assert_int_equal(i, -1);
    assert_int_equal(n, 77);
    tk_args_free(a);
    tk_kwargs_free(k);
}

static void malformed_signatures(void **state)
{
    (void)state;
    int x = 0, y = 0, z = 0;
    const struct {
        const char *sig, *msg;
    } bad[] = {
        {"coding(num:i", "unbalanced parenthesis: missing ')' at position 12"},
        {"coding(", "unbalanced parenthesis: missing ')' at position 7"},
        {"coding(num:i))", "unbalanced parenthesis: extra ')' at position 13"},
        {"coding num:i)", "expected '(' after the function name at position 7"},
        {"(num:i)", "missing function name at position 0"},
        {"coding(num:i, num:l)", "duplicate parameter 'num' at position 14"},
        {"coding(a:i=, b:i)", "required parameter 'b' follows an optional one at position 13"},
        {"coding(num)", "missing ':code' after parameter 'num' at position 10"},
        {"coding(num, b:i)", "missing ':code' after parameter 'num' at position 10"},
        {"coding(num:)", "missing format code for parameter 'num' at position 11"},
        {"coding(num:x)", "unknown format code 'x' for parameter 'num' at position 11"},
        {"coding(num:n)", "format code 'n' cannot be bound (parameter 'num') at position 11"},
        {"coding(num:i b:i)", "expected ',' or ')', found 'b' at position 13"},
        {"coding(num:i=3)", "expected ',' or ')', found '3' at position 13"},
        {"coding(a:i, *)", "'*' must be followed by a parameter at position 12"},
        {"coding(*, *, a:i)", "duplicate '*' at position 10"},
        {"coding(, a:i)", "expected a parameter name, found ',' at position 7"},
        {"coding(a:i) x", "unexpected 'x' after ')' at position 12"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char want[512];
        snprintf(want, sizeof want, "tk_bind: malformed signature \"%s\": %s", bad[i].sig,
                 bad[i].msg);
        assert_err(tk_bind(NULL, NULL, bad[i].sig, &x, &y, &z), TK_EINVAL, want);
    }
    /* keyword-only parameters may be required after optional ones, as in
     * Python; and a trailing comma is fine */
    tk_kwargs *k = tk_kwargs_of("b:i", 2);
    assert_int_equal(tk_bind(NULL, k, "f(a:i=, *, b:i, c:i=,)", &x, &y, &z), 0);
    assert_int_equal(y, 2);
    tk_kwargs_free(k);
    assert_err(tk_bind(NULL, NULL, NULL), TK_EINVAL, "tk_bind: signature is NULL");
}

static void too_many_parameters(void **state)
{
    (void)state;
    char sig[2048] = "f(";
    for (int i = 0; i <= TK_BIND_MAX_PARAMS; i++)
        snprintf(sig + strlen(sig), sizeof sig - strlen(sig), "p%d:i=,", i);
    strcat(sig, ")");
    int rc = tk_bind(NULL, NULL, sig);
    assert_int_equal(rc, TK_EINVAL);
    assert_non_null(strstr(tk_last_error(), "more than 64 parameters"));
}

static void null_out_pointers(void **state)
{
    (void)state;
    int x;
    const void *y;
    assert_err(tk_bind(NULL, NULL, "f(a:i=, b:i=)", &x, (int *)NULL), TK_EINVAL,
               "tk_bind: out pointer for parameter 'b' is NULL");
    assert_err(tk_bind(NULL, NULL, "f(a:y=)", &y, (size_t *)NULL), TK_EINVAL,
               "tk_bind: out pointer for parameter 'a' is NULL");
}

static void bind_allocates_nothing(void **state)
{
    (void)state;
    tk_args *a = tk_args_of("i", 3);
    tk_kwargs *k = tk_kwargs_of("verbose:?", 1);
    tk_kwargs *typo = tk_kwargs_of("nmu:i", 1);
    int num;
    const char *name;
    bool verbose;
    tk__fault_set(1L << 60); /* count, never fail */
    assert_int_equal(tk_bind(a, k, SIG, &num, &name, &verbose), 0);
    assert_int_equal(tk_bind(a, typo, SIG, &num, &name, &verbose), TK_EARGS);
    assert_int_equal(tk_bind(NULL, NULL, "coding(a:i, b:i, c:i)", &num, &num, &num), TK_EARGS);
    assert_int_equal(tk__fault_allocs(), 0);
    tk__fault_set(0);
    tk_args_free(a);
    tk_kwargs_free(k);
    tk_kwargs_free(typo);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(binds_positional_then_keywords),
        cmocka_unit_test(optional_parameters_keep_defaults),
        cmocka_unit_test(every_code),
        cmocka_unit_test(int_range_is_checked),
        cmocka_unit_test(too_many_positionals),
        cmocka_unit_test(missing_arguments),
        cmocka_unit_test(keyword_errors),
        cmocka_unit_test(type_errors),
        cmocka_unit_test(nothing_written_on_failure),
        cmocka_unit_test(malformed_signatures),
        cmocka_unit_test(too_many_parameters),
        cmocka_unit_test(null_out_pointers),
        cmocka_unit_test(bind_allocates_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
