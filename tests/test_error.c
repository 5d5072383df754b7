/* test_error.c - the error model: codes, names, messages, per-thread state,
 * and the version. */
#include "common/testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "taskkit.h"

static void codes_are_negative_errno_or_own(void **state)
{
    (void)state;
    assert_int_equal(TK_ENOMEM, -ENOMEM);
    assert_int_equal(TK_EINVAL, -EINVAL);
    assert_int_equal(TK_ETIMEDOUT, -ETIMEDOUT);
    assert_int_equal(TK_EAGAIN, -EAGAIN);
    assert_int_equal(TK_EPERM, -EPERM);
    assert_int_equal(TK_ECANCELED, -ECANCELED);
    assert_int_equal(TK_EOVERFLOW, -EOVERFLOW);
    assert_int_equal(TK_EDEADLK, -EDEADLK);
    assert_int_equal(TK_ECHILD, -ECHILD);
    const int own[] = {TK_ESTATE, TK_ETYPE, TK_EINDEX, TK_EKEY, TK_EARGS, TK_EBROKEN,
                       TK_EEMPTY, TK_EFULL, TK_ECLOSED, TK_EDECODE, TK_ETASK};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
        assert_true(own[i] < -4095); /* outside the errno range */
        for (size_t j = 0; j < i; j++)
            assert_int_not_equal(own[i], own[j]);
    }
    assert_int_equal(TK_OWNERDEAD, 1);
}

static void names_and_messages_from_one_table(void **state)
{
    (void)state;
    assert_string_equal(tk_err_name(TK_ESTATE), "TK_ESTATE");
    assert_string_equal(tk_err_name(TK_EINVAL), "TK_EINVAL");
    assert_string_equal(tk_err_name(TK_ETASK), "TK_ETASK");
    assert_string_equal(tk_err_name(0), "TK_OK");
    assert_string_equal(tk_err_name(TK_OWNERDEAD), "TK_OWNERDEAD");
    assert_string_equal(tk_err_name(-4999), "TK_EUNKNOWN");
    assert_string_equal(tk_strerror(TK_ETIMEDOUT), "timed out");
    assert_string_equal(tk_strerror(0), "success");
    assert_string_equal(tk_strerror(-4999), "unknown error");
    assert_non_null(strstr(tk_strerror(TK_OWNERDEAD), "died"));
    /* every code in the table has a distinct name and a message */
#define CHECK(name, value, msg)                                  \
    assert_string_equal(tk_err_name(value), "TK_" #name);       \
    assert_string_equal(tk_strerror(value), msg);
    TK_ERRNO_MAP(CHECK)
#undef CHECK
}

static void last_error_starts_empty_and_never_null(void **state)
{
    (void)state;
    /* a fresh thread has no error yet */
    assert_non_null(tk_last_error());
}

static void *other_thread(void *arg)
{
    (void)arg;
    if (tk_last_error_code() != 0 || strcmp(tk_last_error(), "") != 0)
        return (void *)1;
    tk__error(TK_EKEY, "other thread's error");
    return NULL;
}

static void last_error_is_per_thread(void **state)
{
    (void)state;
    assert_int_equal(tk__error(TK_ESTATE, "threads can only be started %s", "once"),
                     TK_ESTATE);
    pthread_t t;
    void *ret = (void *)2;
    assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
    assert_int_equal(pthread_join(t, &ret), 0);
    assert_null(ret);
    assert_int_equal(tk_last_error_code(), TK_ESTATE);
    assert_string_equal(tk_last_error(), "threads can only be started once");
}

static void os_error_names_the_call(void **state)
{
    (void)state;
    assert_int_equal(tk__os_error(EMFILE, "pipe"), TK_EMFILE);
    assert_int_equal(tk_last_error_code(), -EMFILE);
    assert_string_equal(tk_last_error(), "pipe: Too many open files");
}

static void long_messages_are_cut_not_overflowed(void **state)
{
    (void)state;
    char big[3 * TK__ERRMSG_MAX];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    tk__error(TK_EINVAL, "%s", big);
    assert_int_equal(strlen(tk_last_error()), TK__ERRMSG_MAX - 1);
}

static void users_record_their_own_failures(void **state)
{
    (void)state;
    assert_int_equal(tk_set_error(TK_EINVAL, "num must be positive, got %d", -3), TK_EINVAL);
    assert_int_equal(tk_last_error_code(), TK_EINVAL);
    assert_string_equal(tk_last_error(), "num must be positive, got -3");
    assert_int_equal(tk_set_error(TK_ETASK, NULL), TK_ETASK);
    assert_string_equal(tk_last_error(), "");
    /* a non-negative code is a misuse, reported as such */
    assert_int_equal(tk_set_error(0, "fine"), TK_EINVAL);
    assert_string_equal(tk_last_error(), "tk_set_error: code must be negative, got 0");
}

static void version_agrees(void **state)
{
    (void)state;
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", TK_VERSION_MAJOR, TK_VERSION_MINOR,
             TK_VERSION_PATCH);
    assert_string_equal(tk_version_string(), want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(codes_are_negative_errno_or_own),
        cmocka_unit_test(names_and_messages_from_one_table),
        cmocka_unit_test(last_error_starts_empty_and_never_null),
        cmocka_unit_test(last_error_is_per_thread),
        cmocka_unit_test(os_error_names_the_call),
        cmocka_unit_test(long_messages_are_cut_not_overflowed),
        cmocka_unit_test(users_record_their_own_failures),
        cmocka_unit_test(version_agrees),
    };
    return cmocka_run_group_tests_name("error", tests, NULL, NULL);
}
