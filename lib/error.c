/*
 * error.c - error codes, names, messages and the per-thread last error.
 *
 * tk_strerror and tk_err_name are generated from TK_ERRNO_MAP (error.h) so
 * the enum, the names and the messages cannot drift apart.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "taskkit/version.h"

__thread struct tk__tls tk__tls_data;

#define TK__STR_(x) #x
#define TK__STR(x) TK__STR_(x)

const char *tk_version_string(void)
{
    return TK__STR(TK_VERSION_MAJOR) "." TK__STR(TK_VERSION_MINOR) "." TK__STR(
        TK_VERSION_PATCH);
}

const char *tk_strerror(int err)
{
    if (err == TK_OWNERDEAD)
        return "acquired, but the previous holder died";
    if (err >= 0)
        return "success";
#define TK__ERR_MSG(name, value, msg) \
    if (err == (value))               \
        return msg;
    TK_ERRNO_MAP(TK__ERR_MSG)
#undef TK__ERR_MSG
    return "unknown error";
}

const char *tk_err_name(int err)
{
    if (err == 0)
        return "TK_OK";
    if (err == TK_OWNERDEAD)
        return "TK_OWNERDEAD";
#define TK__ERR_NAME(name, value, msg) \
    if (err == (value))                \
        return "TK_" #name;
    TK_ERRNO_MAP(TK__ERR_NAME)
#undef TK__ERR_NAME
    return "TK_EUNKNOWN";
}

const char *tk_last_error(void)
{
    return tk__tls_data.err_msg; /* zero-initialised TLS: "" until a failure */
}

int tk_last_error_code(void)
{
    return tk__tls_data.err_code;
}

static void set_error_v(int code, const char *fmt, va_list ap)
{
    int saved = errno;
    struct tk__tls *t = &tk__tls_data;
    t->err_code = code;
    vsnprintf(t->err_msg, sizeof t->err_msg, fmt, ap);
    errno = saved;
}

int (tk__error)(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error_v(code, fmt, ap);
    va_end(ap);
    return code;
}

void *tk__error_null(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error_v(code, fmt, ap);
    va_end(ap);
    return NULL;
}

int tk_set_error(int code, const char *fmt, ...)
{
    if (code >= 0)
        return tk__error(TK_EINVAL, "tk_set_error: code must be negative, got %d", code);
    if (!fmt)
        return tk__error(code, "%s", "");
    va_list ap;
    va_start(ap, fmt);
    set_error_v(code, fmt, ap);
    va_end(ap);
    return code;
}

int (tk__os_error)(int err, const char *what)
{
    /* strerror_r (GNU flavour) is thread-safe where strerror is not. */
    char buf[128];
    const char *msg = strerror_r(err, buf, sizeof buf);
    return tk__error(-err, "%s: %s", what, msg);
}

void tk__panic(const char *fmt, ...)
{
    va_list ap;
    fputs("libtaskkit: internal error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}
