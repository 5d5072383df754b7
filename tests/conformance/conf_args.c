/* §1 argument bags: builders, getters, kwargs order and replace in place,
 * copy, tk_bind (CPython's messages, nothing written on failure), and the
 * encoding (round trip, TK_EDECODE on truncation / trailing bytes,
 * pointers TK_ETYPE). */
#include "conf.h"

static void builders_and_getters(void **state)
{
    (void)state;
    static const unsigned char raw[3] = {0, 1, 255};
    int dummy;
    tk_args *a = tk_args_of("ild?szzypn", 3, (int64_t)-1, 2.5, 1, "hi", "zed",
                            (const char *)0, (const void *)raw, (size_t)3, (void *)&dummy);
    assert_non_null(a);
    assert_int_equal(tk_args_len(a), 10);
    const tk_type want[] = {TK_TYPE_INT, TK_TYPE_INT, TK_TYPE_FLOAT, TK_TYPE_BOOL,
                            TK_TYPE_STR, TK_TYPE_STR, TK_TYPE_NONE, TK_TYPE_BYTES,
                            TK_TYPE_PTR, TK_TYPE_NONE};
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(tk_args_type(a, i), want[i]);
    assert_int_equal(tk_args_type(a, 10), TK_TYPE_INVALID);
    assert_int_equal(tk_args_type(a, (size_t)-1), TK_TYPE_INVALID);

    int64_t iv;
    double dv;
    bool bv;
    const char *sv;
    const void *yv;
    size_t yn;
    void *pv;
    ASSERT_RC(tk_args_get_int(a, 0, &iv), 0);
    assert_int_equal(iv, 3);
    ASSERT_RC(tk_args_get_int(a, 1, &iv), 0);
    assert_true(iv == -1);
    ASSERT_RC(tk_args_get_float(a, 2, &dv), 0);
    assert_true(dv == 2.5);
    ASSERT_RC(tk_args_get_bool(a, 3, &bv), 0);
    assert_true(bv);
    ASSERT_RC(tk_args_get_str(a, 4, &sv), 0);
    assert_string_equal(sv, "hi");
    ASSERT_RC(tk_args_get_str(a, 5, &sv), 0);
    assert_string_equal(sv, "zed");
    ASSERT_RC(tk_args_get_bytes(a, 7, &yv, &yn), 0);
    assert_int_equal(yn, 3);
    assert_memory_equal(yv, raw, 3);
    assert_true(yv != (const void *)raw); /* copied */
    ASSERT_RC(tk_args_get_ptr(a, 8, &pv), 0);
    assert_ptr_equal(pv, &dummy);
    /* get_float accepts an int value */
    ASSERT_RC(tk_args_get_float(a, 0, &dv), 0);
    assert_true(dv == 3.0);
    tk_args_free(a);
}

static void getters_errors_write_nothing(void **state)
{
    (void)state;
    tk_args *a = tk_args_of("is?n", 7, "s", 0);
    assert_non_null(a);
    int64_t iv = 99;
    double dv = 9.5;
    bool bv = true;
    const char *sv = "keep";
    const void *yv = "keep";
    size_t yn = 77;
    void *pv = &iv;
    /* never convert: str is not int, int is not str, bool is not int, None is not str */
    ASSERT_RC(tk_args_get_int(a, 1, &iv), TK_ETYPE);
    ASSERT_RC(tk_args_get_int(a, 2, &iv), TK_ETYPE);
    ASSERT_RC(tk_args_get_str(a, 0, &sv), TK_ETYPE);
    ASSERT_RC(tk_args_get_str(a, 3, &sv), TK_ETYPE);
    ASSERT_RC(tk_args_get_bool(a, 0, &bv), TK_ETYPE);
    ASSERT_RC(tk_args_get_float(a, 1, &dv), TK_ETYPE);
    ASSERT_RC(tk_args_get_float(a, 2, &dv), TK_ETYPE);
    ASSERT_RC(tk_args_get_bytes(a, 1, &yv, &yn), TK_ETYPE);
    ASSERT_RC(tk_args_get_ptr(a, 0, &pv), TK_ETYPE);
    /* out of range */
    ASSERT_RC(tk_args_get_int(a, 4, &iv), TK_EINDEX);
    ASSERT_RC(tk_args_get_str(a, 100, &sv), TK_EINDEX);
    ASSERT_RC(tk_args_get_bytes(a, 4, &yv, &yn), TK_EINDEX);
    ASSERT_RC(tk_args_get_ptr(NULL, 0, &pv), TK_EINDEX);
    assert_int_equal(iv, 99);
    assert_true(dv == 9.5);
    assert_true(bv);
    assert_string_equal(sv, "keep");
    assert_int_equal(yn, 77);
    assert_ptr_equal(pv, &iv);
    tk_args_free(a);
}

static void add_functions(void **state)
{
    (void)state;
    tk_args *a = tk_args_new();
    assert_non_null(a);
    assert_int_equal(tk_args_len(a), 0);
    ASSERT_RC(tk_args_add_none(a), 0);
    ASSERT_RC(tk_args_add_bool(a, false), 0);
    ASSERT_RC(tk_args_add_int(a, INT64_MIN), 0);
    ASSERT_RC(tk_args_add_float(a, -0.25), 0);
    char buf[8] = "abc";
    ASSERT_RC(tk_args_add_str(a, buf), 0);
    buf[0] = 'X'; /* the bag has its own copy */
    ASSERT_RC(tk_args_add_bytes(a, NULL, 0), 0);
    ASSERT_RC(tk_args_add_ptr(a, NULL), 0);
    assert_int_equal(tk_args_len(a), 7);
    const char *s;
    ASSERT_RC(tk_args_get_str(a, 4, &s), 0);
    assert_string_equal(s, "abc");
    int64_t i;
    ASSERT_RC(tk_args_get_int(a, 2, &i), 0);
    assert_true(i == INT64_MIN);
    const void *y = NULL;
    size_t n = 5;
    ASSERT_RC(tk_args_get_bytes(a, 5, &y, &n), 0);
    assert_int_equal(n, 0);
    assert_non_null(y);
    ASSERT_RC(tk_args_add_str(a, NULL), TK_EINVAL);
    ASSERT_RC(tk_args_add_bytes(a, NULL, 3), TK_EINVAL);
    ASSERT_RC(tk_args_add_int(NULL, 1), TK_EINVAL);
    assert_int_equal(tk_args_len(a), 7);
    tk_args_free(a);
    /* builder errors */
    assert_null(tk_args_of("s", (const char *)0));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    assert_null(tk_args_of("iQ", 1, 2));
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    tk_args *e = tk_args_of("");
    assert_non_null(e);
    assert_int_equal(tk_args_len(e), 0);
    tk_args_free(e);
}

static void kwargs_order_and_replace(void **state)
{
    (void)state;
    tk_kwargs *k = tk_kwargs_of("num:i, name:s, flag:?", 3, "x", 1);
    assert_non_null(k);
    assert_int_equal(tk_kwargs_len(k), 3);
    assert_string_equal(tk_kwargs_key(k, 0), "num");
    assert_string_equal(tk_kwargs_key(k, 1), "name");
    assert_string_equal(tk_kwargs_key(k, 2), "flag");
    assert_null(tk_kwargs_key(k, 3));
    /* replace in place keeps the position, also with another type */
    ASSERT_RC(tk_kwargs_set_str(k, "num", "three"), 0);
    assert_int_equal(tk_kwargs_len(k), 3);
    assert_string_equal(tk_kwargs_key(k, 0), "num");
    assert_int_equal(tk_kwargs_type(k, "num"), TK_TYPE_STR);
    const char *s;
    ASSERT_RC(tk_kwargs_get_str(k, "num", &s), 0);
    assert_string_equal(s, "three");
    /* new key goes to the end */
    ASSERT_RC(tk_kwargs_set_float(k, "ratio", 0.5), 0);
    assert_string_equal(tk_kwargs_key(k, 3), "ratio");
    ASSERT_RC(tk_kwargs_set_none(k, "nothing"), 0);
    ASSERT_RC(tk_kwargs_set_bytes(k, "raw", "ab", 2), 0);
    ASSERT_RC(tk_kwargs_set_ptr(k, "p", k), 0);
    ASSERT_RC(tk_kwargs_set_int(k, "big", INT64_MAX), 0);
    ASSERT_RC(tk_kwargs_set_bool(k, "flag", false), 0);
    assert_string_equal(tk_kwargs_key(k, 2), "flag");
    assert_int_equal(tk_kwargs_len(k), 8);
    /* del: later keys move up */
    ASSERT_RC(tk_kwargs_del(k, "name"), 0);
    assert_string_equal(tk_kwargs_key(k, 1), "flag");
    assert_int_equal(tk_kwargs_len(k), 7);
    ASSERT_RC(tk_kwargs_del(k, "name"), TK_EKEY);
    assert_false(tk_kwargs_has(k, "name"));
    assert_true(tk_kwargs_has(k, "ratio"));
    assert_int_equal(tk_kwargs_type(k, "name"), TK_TYPE_INVALID);
    /* getters by key */
    int64_t iv = 5;
    double dv;
    bool bv = true;
    void *pv;
    ASSERT_RC(tk_kwargs_get_int(k, "missing", &iv), TK_EKEY);
    ASSERT_RC(tk_kwargs_get_int(k, "ratio", &iv), TK_ETYPE);
    ASSERT_RC(tk_kwargs_get_int(k, "flag", &iv), TK_ETYPE);
    assert_int_equal(iv, 5);
    ASSERT_RC(tk_kwargs_get_float(k, "big", &dv), 0); /* int converts */
    ASSERT_RC(tk_kwargs_get_bool(k, "flag", &bv), 0);
    assert_false(bv);
    ASSERT_RC(tk_kwargs_get_ptr(k, "p", &pv), 0);
    assert_ptr_equal(pv, k);
    const void *y;
    size_t n;
    ASSERT_RC(tk_kwargs_get_bytes(k, "raw", &y, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(y, "ab", 2);
    /* repeated key in the builder: first position, later value */
    tk_kwargs *r = tk_kwargs_of("a:i, b:i, a:i", 1, 2, 3);
    assert_non_null(r);
    assert_int_equal(tk_kwargs_len(r), 2);
    assert_string_equal(tk_kwargs_key(r, 0), "a");
    ASSERT_RC(tk_kwargs_get_int(r, "a", &iv), 0);
    assert_int_equal(iv, 3);
    tk_kwargs_free(r);
    ASSERT_RC(tk_kwargs_set_int(NULL, "a", 1), TK_EINVAL);
    ASSERT_RC(tk_kwargs_set_int(k, "", 1), TK_EINVAL);
    ASSERT_RC(tk_kwargs_set_int(k, NULL, 1), TK_EINVAL);
    tk_kwargs_free(k);
}

static void copies_are_deep(void **state)
{
    (void)state;
    int x;
    tk_args *a = tk_args_of("syp", "str", "by", (size_t)2, (void *)&x);
    tk_args *c = tk_args_copy(a);
    assert_non_null(c);
    const char *s1, *s2;
    tk_args_get_str(a, 0, &s1);
    tk_args_get_str(c, 0, &s2);
    assert_string_equal(s1, s2);
    assert_true(s1 != s2);
    void *p;
    ASSERT_RC(tk_args_get_ptr(c, 2, &p), 0);
    assert_ptr_equal(p, &x);
    tk_args_free(a);
    ASSERT_RC(tk_args_get_str(c, 0, &s2), 0);
    assert_string_equal(s2, "str");
    tk_args_free(c);
    tk_args *e = tk_args_copy(NULL);
    assert_non_null(e);
    assert_int_equal(tk_args_len(e), 0);
    tk_args_free(e);

    tk_kwargs *k = tk_kwargs_of("z:s, a:i", "zz", 1);
    tk_kwargs *kc = tk_kwargs_copy(k);
    tk_kwargs_free(k);
    assert_non_null(kc);
    assert_string_equal(tk_kwargs_key(kc, 0), "z");
    assert_string_equal(tk_kwargs_key(kc, 1), "a");
    ASSERT_RC(tk_kwargs_get_str(kc, "z", &s2), 0);
    assert_string_equal(s2, "zz");
    tk_kwargs_free(kc);
}

/* ---------------------------------------------------------------- tk_bind */

#define SIG "coding(num:i, name:s=, *, verbose:?=)"

static void bind_ok(void **state)
{
    (void)state;
    tk_args *a = tk_args_of("is", 3, "bob");
    tk_kwargs *k = tk_kwargs_of("verbose:?", 1);
    int num = 0;
    const char *name = "dflt";
    bool verbose = false;
    ASSERT_RC(tk_bind(a, k, SIG, &num, &name, &verbose), 0);
    assert_int_equal(num, 3);
    assert_string_equal(name, "bob");
    assert_true(verbose);
    tk_args_free(a);
    tk_kwargs_free(k);

    /* defaults kept; num by keyword */
    k = tk_kwargs_of("num:i", 9);
    num = 0;
    name = "dflt";
    verbose = false;
    ASSERT_RC(tk_bind(NULL, k, SIG, &num, &name, &verbose), 0);
    assert_int_equal(num, 9);
    assert_string_equal(name, "dflt");
    assert_false(verbose);
    tk_kwargs_free(k);

    /* d accepts an int; z accepts None; l and y */
    a = tk_args_of("inly", 4, (int64_t)-5, "ab", (size_t)2);
    double d = 0;
    const char *z = "notnull";
    int64_t l = 0;
    const void *y = NULL;
    size_t yn = 0;
    ASSERT_RC(tk_bind(a, NULL, "f(d:d, z:z, l:l, y:y)", &d, &z, &l, &y, &yn), 0);
    assert_true(d == 4.0);
    assert_null(z);
    assert_true(l == -5);
    assert_int_equal(yn, 2);
    assert_memory_equal(y, "ab", 2);
    tk_args_free(a);
}

struct bind_case {
    const char *fmt_desc;
    tk_args *args;
    tk_kwargs *kwargs;
    int code;
    const char *msg;
};

static void bind_failures_messages_nothing_written(void **state)
{
    (void)state;
    struct bind_case cases[] = {
        {"too many positional", tk_args_of("isi", 1, "x", 2), NULL, TK_EARGS,
         "coding() takes from 1 to 2 positional arguments but 3 were given"},
        {"missing", NULL, NULL, TK_EARGS,
         "coding() missing 1 required positional argument: 'num'"},
        {"multiple", tk_args_of("i", 1), tk_kwargs_of("num:i", 2), TK_EARGS,
         "coding() got multiple values for argument 'num'"},
        {"unexpected", tk_args_of("i", 1), tk_kwargs_of("nmu:i", 2), TK_EARGS,
         "coding() got an unexpected keyword argument 'nmu'"},
        {"type", tk_args_of("s", "1"), NULL, TK_ETYPE,
         "coding() argument 'num' must be int, not str"},
        {"bool is not int", tk_args_of("?", 1), NULL, TK_ETYPE,
         "coding() argument 'num' must be int, not bool"},
        {"keyword-only given positionally", tk_args_of("is?", 1, "x", 1), NULL, TK_EARGS,
         "coding() takes from 1 to 2 positional arguments but 3 were given"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int num = -7;
        const char *name = "dflt";
        bool verbose = true;
        int rc = tk_bind(cases[i].args, cases[i].kwargs, SIG, &num, &name, &verbose);
        if (rc != cases[i].code)
            fail_msg("%s: tk_bind = %d (%s), expected %s; \"%s\"", cases[i].fmt_desc, rc,
                     tk_err_name(rc), tk_err_name(cases[i].code), tk_last_error());
        if (strcmp(tk_last_error(), cases[i].msg) != 0 &&
            strstr(tk_last_error(), cases[i].msg) == NULL)
            fail_msg("%s: message \"%s\", expected \"%s\"", cases[i].fmt_desc,
                     tk_last_error(), cases[i].msg);
        assert_int_equal(num, -7);
        assert_string_equal(name, "dflt");
        assert_true(verbose);
        tk_args_free(cases[i].args);
        tk_kwargs_free(cases[i].kwargs);
    }
    /* the single-positional wording */
    tk_args *a = tk_args_of("ii", 1, 2);
    int num = -7;
    ASSERT_RC(tk_bind(a, NULL, "coding(num:i)", &num), TK_EARGS);
    ASSERT_MSG("coding() takes 1 positional argument but 2 were given");
    assert_int_equal(num, -7);
    tk_args_free(a);
    /* missing keyword-only */
    int v = -7;
    ASSERT_RC(tk_bind(NULL, NULL, "coding(*, verbose:i)", &v), TK_EARGS);
    ASSERT_MSG("coding() missing 1 required keyword-only argument: 'verbose'");
    /* two missing */
    int x = -7, y = -7;
    ASSERT_RC(tk_bind(NULL, NULL, "coding(a:i, b:i)", &x, &y), TK_EARGS);
    ASSERT_MSG("coding() missing 2 required positional arguments: 'a' and 'b'");
    assert_int_equal(x, -7);
    /* overflow of i; the earlier parameter is not written either */
    a = tk_args_of("il", 5, (int64_t)1 << 40);
    x = -7;
    y = -7;
    ASSERT_RC(tk_bind(a, NULL, "f(a:i, b:i)", &x, &y), TK_EOVERFLOW);
    assert_int_equal(x, -7);
    assert_int_equal(y, -7);
    tk_args_free(a);
    /* malformed signature */
    ASSERT_RC(tk_bind(NULL, NULL, "f(a:Q)", &x), TK_EINVAL);
    ASSERT_RC(tk_bind(NULL, NULL, NULL), TK_EINVAL);
}

/* --------------------------------------------------------------- encoding */

static void encode_round_trip(void **state)
{
    (void)state;
    tk_args *a = tk_args_of("nild?sy", 1, (int64_t)INT64_MIN, -1.5, 0, "héllo",
                            "\0\1\2", (size_t)3);
    tk_kwargs *k = tk_kwargs_of("z:s, a:i, e:y", "zz", 42, "", (size_t)0);
    void *buf = NULL;
    size_t len = 0;
    ASSERT_RC(tk_args_encode(a, k, &buf, &len), 0);
    assert_non_null(buf);
    assert_true(len > 0);
    tk_args *da = NULL;
    tk_kwargs *dk = NULL;
    ASSERT_RC(tk_args_decode(buf, len, &da, &dk), 0);
    free(buf); /* decoded bags own their data */
    assert_int_equal(tk_args_len(da), 7);
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(tk_args_type(da, i), tk_args_type(a, i));
    int64_t iv;
    ASSERT_RC(tk_args_get_int(da, 2, &iv), 0);
    assert_true(iv == INT64_MIN);
    const char *s;
    ASSERT_RC(tk_args_get_str(da, 5, &s), 0);
    assert_string_equal(s, "héllo");
    const void *y;
    size_t yn;
    ASSERT_RC(tk_args_get_bytes(da, 6, &y, &yn), 0);
    assert_int_equal(yn, 3);
    assert_memory_equal(y, "\0\1\2", 3);
    assert_int_equal(tk_kwargs_len(dk), 3);
    assert_string_equal(tk_kwargs_key(dk, 0), "z");
    assert_string_equal(tk_kwargs_key(dk, 1), "a");
    assert_string_equal(tk_kwargs_key(dk, 2), "e");
    /* kwargs out NULL while the encoding has keyword values: TK_EINVAL */
    ASSERT_RC(tk_args_encode(a, k, &buf, &len), 0);
    tk_args *d2 = (tk_args *)&d2;
    ASSERT_RC(tk_args_decode(buf, len, &d2, NULL), TK_EINVAL);
    free(buf);
    tk_args_free(a);
    tk_kwargs_free(k);
    tk_args_free(da);
    tk_kwargs_free(dk);
}

static void decode_rejects_truncation_and_trailing(void **state)
{
    (void)state;
    tk_args *a = tk_args_of("isy", 7, "seven", "bytes", (size_t)5);
    tk_kwargs *k = tk_kwargs_of("key:s", "value");
    void *buf;
    size_t len;
    ASSERT_RC(tk_args_encode(a, k, &buf, &len), 0);
    for (size_t cut = 0; cut < len; cut++) {
        /* exact-size copy so an over-read would hit the heap end */
        unsigned char *t = malloc(cut ? cut : 1);
        memcpy(t, buf, cut);
        tk_args *da = (tk_args *)&da;
        tk_kwargs *dk = (tk_kwargs *)&dk;
        int rc = tk_args_decode(t, cut, &da, &dk);
        if (rc != TK_EDECODE)
            fail_msg("decode of %zu/%zu bytes = %d (%s)", cut, len, rc, tk_err_name(rc));
        assert_null(da);
        assert_null(dk);
        free(t);
    }
    unsigned char *t = malloc(len + 1);
    memcpy(t, buf, len);
    t[len] = 0;
    tk_args *da = (tk_args *)&da;
    tk_kwargs *dk = (tk_kwargs *)&dk;
    ASSERT_RC(tk_args_decode(t, len + 1, &da, &dk), TK_EDECODE);
    assert_null(da);
    assert_null(dk);
    /* corrupt the first byte (magic) */
    memcpy(t, buf, len);
    t[0] ^= 0xff;
    ASSERT_RC(tk_args_decode(t, len, &da, &dk), TK_EDECODE);
    ASSERT_RC(tk_args_decode(NULL, 0, &da, &dk), TK_EDECODE);
    free(t);
    free(buf);
    tk_args_free(a);
    tk_kwargs_free(k);
}

static void encode_refuses_pointers(void **state)
{
    (void)state;
    tk_args *a = tk_args_of("ip", 1, (void *)0);
    void *buf = (void *)&buf;
    size_t len = 99;
    ASSERT_RC(tk_args_encode(a, NULL, &buf, &len), TK_ETYPE);
    assert_null(buf);
    tk_kwargs *k = tk_kwargs_of("p:p", (void *)&len);
    buf = (void *)&buf;
    ASSERT_RC(tk_args_encode(NULL, k, &buf, &len), TK_ETYPE);
    assert_null(buf);
    tk_args_free(a);
    tk_kwargs_free(k);
}

int main(void)
{
    CONF_MAIN_GUARD();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(builders_and_getters),
        cmocka_unit_test(getters_errors_write_nothing),
        cmocka_unit_test(add_functions),
        cmocka_unit_test(kwargs_order_and_replace),
        cmocka_unit_test(copies_are_deep),
        cmocka_unit_test(bind_ok),
        cmocka_unit_test(bind_failures_messages_nothing_written),
        cmocka_unit_test(encode_round_trip),
        cmocka_unit_test(decode_rejects_truncation_and_trailing),
        cmocka_unit_test(encode_refuses_pointers),
    };
    return cmocka_run_group_tests_name("conformance: §1 args", tests, NULL, NULL);
}
