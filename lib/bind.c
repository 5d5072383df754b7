/*
 * bind.c - tk_bind: binds an args tuple and a kwargs dict to a signature the
 * way CPython binds a call to a Python function, with CPython's messages.
 *
 * The work runs in three phases so that nothing is written through an out
 * pointer unless the whole bind succeeds: parse the signature (and read the
 * out pointers) into a stack table, match every value to a parameter and
 * check it, and only then write. Nothing is allocated: the table is bounded
 * by TK_BIND_MAX_PARAMS and names stay slices of the signature string.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "args_int.h"

struct param {
    const char *name;
    size_t nlen;
    char code;
    bool optional;
    bool kwonly;
    void *out, *out2;         /* out2: the size_t * of a 'y' parameter */
    const struct tk__val *val; /* the value bound to it, or NULL */
};

struct sig {
    const char *text; /* the whole signature, for messages */
    const char *fn;
    int fnlen;
    size_t n;    /* parameters */
    size_t npos; /* positional-or-keyword parameters (they come first) */
    struct param p[TK_BIND_MAX_PARAMS];
};

/* ------------------------------------------------ parsing the signature */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_';
}

static const char *skip_space(const char *s)
{
    while (is_space(*s))
        s++;
    return s;
}

static int bad_sig(const struct sig *g, const char *at, const char *fmt, ...) TK_PRINTF(3, 4);

static int bad_sig(const struct sig *g, const char *at, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return tk__error(TK_EINVAL, "tk_bind: malformed signature \"%s\": %s at position %zu",
                     g->text, what, (size_t)(at - g->text));
}

static const struct param *find_param(const struct sig *g, const char *name, size_t nlen)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->p[i].nlen == nlen && memcmp(g->p[i].name, name, nlen) == 0)
            return &g->p[i];
    return NULL;
}

/* Parses one "name:code[=]" at *ps into the next table entry. */
static int parse_param(struct sig *g, const char **ps, bool kwonly)
{
    const char *s = *ps, *name = s;
    while (is_name_char(*s))
        s++;
    size_t nlen = (size_t)(s - name);
    if (nlen == 0) {
        if (*s)
            return bad_sig(g, s, "expected a parameter name, found '%c'", *s);
        return bad_sig(g, s, "unbalanced parenthesis: missing ')'");
    }
    if (find_param(g, name, nlen))
        return bad_sig(g, name, "duplicate parameter '%.*s'", (int)nlen, name);
    if (g->n == TK_BIND_MAX_PARAMS)
        return bad_sig(g, name, "more than %d parameters", TK_BIND_MAX_PARAMS);
    s = skip_space(s);
    if (*s != ':')
        return bad_sig(g, s, "missing ':code' after parameter '%.*s'", (int)nlen, name);
    s = skip_space(s + 1);
    char code = *s;
    if (code == 'n')
        return bad_sig(g, s, "format code 'n' cannot be bound (parameter '%.*s')", (int)nlen,
                       name);
    if (!code || !strchr("ild?szyp", code)) {
        if (code > 0x20 && code < 0x7f && !strchr("),=", code))
            return bad_sig(g, s, "unknown format code '%c' for parameter '%.*s'", code,
                           (int)nlen, name);
        return bad_sig(g, s, "missing format code for parameter '%.*s'", (int)nlen, name);
    }
    s = skip_space(s + 1);
    bool optional = *s == '=';
    if (optional)
        s = skip_space(s + 1);
    if (!kwonly && !optional && g->n > 0 && g->p[g->n - 1].optional)
        return bad_sig(g, name, "required parameter '%.*s' follows an optional one", (int)nlen,
                       name);
    g->p[g->n++] = (struct param){.name = name, .nlen = nlen, .code = code,
                                  .optional = optional, .kwonly = kwonly};
    if (!kwonly)
        g->npos++;
    *ps = s;
    return 0;
}

/* Parses the parameter list after '(' up to and including ')'. */
static int parse_params(struct sig *g, const char **ps)
{
    const char *s = skip_space(*ps);
    bool kwonly = false;
    const char *star = NULL;
    if (*s != ')') {
        for (;;) {
            s = skip_space(s);
            if (*s == '*') {
                if (kwonly)
                    return bad_sig(g, s, "duplicate '*'");
                kwonly = true;
                star = s;
                s = skip_space(s + 1);
            } else {
                int rc = parse_param(g, &s, kwonly);
                if (rc < 0)
                    return rc;
            }
            if (*s == ')')
                break;
            if (!*s)
                return bad_sig(g, s, "unbalanced parenthesis: missing ')'");
            if (*s != ',')
                return bad_sig(g, s, "expected ',' or ')', found '%c'", *s);
            s = skip_space(s + 1);
            if (*s == ')') /* a trailing comma, as Python allows */
                break;
        }
    }
    if (star && g->n == g->npos)
        return bad_sig(g, star, "'*' must be followed by a parameter");
    *ps = s + 1;
    return 0;
}

static int parse_sig(struct sig *g, const char *text)
{
    g->text = text;
    g->n = g->npos = 0;
    const char *s = skip_space(text);
    g->fn = s;
    while (is_name_char(*s) || *s == '.')
        s++;
    g->fnlen = (int)(s - g->fn);
    if (g->fnlen == 0)
        return bad_sig(g, s, "missing function name");
    s = skip_space(s);
    if (*s != '(')
        return bad_sig(g, s, "expected '(' after the function name");
    s++;
    int rc = parse_params(g, &s);
    if (rc < 0)
        return rc;
    s = skip_space(s);
    if (*s == ')')
        return bad_sig(g, s, "unbalanced parenthesis: extra ')'");
    if (*s)
        return bad_sig(g, s, "unexpected '%c' after ')'", *s);
    return 0;
}

static int read_outs(struct sig *g, va_list ap)
{
    for (size_t i = 0; i < g->n; i++) {
        struct param *p = &g->p[i];
        p->out = va_arg(ap, void *);
        if (p->code == 'y')
            p->out2 = va_arg(ap, void *);
        if (!p->out || (p->code == 'y' && !p->out2))
            return tk__error(TK_EINVAL, "tk_bind: out pointer for parameter '%.*s' is NULL",
                             (int)p->nlen, p->name);
    }
    return 0;
}

/* ------------------------------------------------------------- binding */

/* "'a'", "'a' and 'b'", "'a', 'b', and 'c'": CPython's list of missing names. */
static void join_names(char *buf, size_t cap, const struct param **names, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && len < cap; i++) {
        const char *sep = i == 0 ? "" : n == 2 ? " and " : i == n - 1 ? ", and " : ", ";
        int w = snprintf(buf + len, cap - len, "%s'%.*s'", sep, (int)names[i]->nlen,
                         names[i]->name);
        if (w < 0)
            break;
        len += (size_t)w;
    }
}

/* CPython's missing_arguments(): lists required parameters of one kind
 * (positional or keyword-only) that got no value. */
static int check_missing(const struct sig *g, bool kwonly)
{
    const struct param *missing[TK_BIND_MAX_PARAMS];
    size_t n = 0;
    for (size_t i = 0; i < g->n; i++)
        if (g->p[i].kwonly == kwonly && !g->p[i].val && !g->p[i].optional)
            missing[n++] = &g->p[i];
    if (n == 0)
        return 0;
    char names[TK__ERRMSG_MAX];
    join_names(names, sizeof names, missing, n);
    return tk__error(TK_EARGS, "%.*s() missing %zu required %s argument%s: %s", g->fnlen, g->fn,
                     n, kwonly ? "keyword-only" : "positional", n == 1 ? "" : "s", names);
}

/* CPython's too_many_positional(). */
static int too_many(const struct sig *g, size_t given)
{
    size_t defaults = 0, kwonly_given = 0;
    for (size_t i = 0; i < g->n; i++) {
        if (!g->p[i].kwonly && g->p[i].optional)
            defaults++;
        if (g->p[i].kwonly && g->p[i].val)
            kwonly_given++;
    }
    char takes[64], kwsig[96] = "";
    bool plural;
    if (defaults) {
        snprintf(takes, sizeof takes, "from %zu to %zu", g->npos - defaults, g->npos);
        plural = true;
    } else {
        snprintf(takes, sizeof takes, "%zu", g->npos);
        plural = g->npos != 1;
    }
    if (kwonly_given)
        snprintf(kwsig, sizeof kwsig, " positional argument%s (and %zu keyword-only argument%s)",
                 given != 1 ? "s" : "", kwonly_given, kwonly_given != 1 ? "s" : "");
    return tk__error(TK_EARGS, "%.*s() takes %s positional argument%s but %zu%s %s given",
                     g->fnlen, g->fn, takes, plural ? "s" : "", given, kwsig,
                     given == 1 && !kwonly_given ? "was" : "were");
}

/* Matches values to parameters in CPython's order of checks. */
static int match(struct sig *g, const tk_args *args, const tk_kwargs *kwargs)
{
    size_t given = args ? args->b.len : 0;
    for (size_t i = 0; i < given && i < g->npos; i++)
        g->p[i].val = &args->b.v[i];
    size_t nkw = kwargs ? kwargs->b.len : 0;
    for (size_t i = 0; i < nkw; i++) {
        const struct tk__val *v = &kwargs->b.v[i];
        struct param *p = (struct param *)find_param(g, v->key, strlen(v->key));
        if (!p)
            return tk__error(TK_EARGS, "%.*s() got an unexpected keyword argument '%s'",
                             g->fnlen, g->fn, v->key);
        if (p->val)
            return tk__error(TK_EARGS, "%.*s() got multiple values for argument '%s'",
                             g->fnlen, g->fn, v->key);
        p->val = v;
    }
    if (given > g->npos)
        return too_many(g, given);
    int rc = check_missing(g, false);
    return rc < 0 ? rc : check_missing(g, true);
}

static int check_type(const struct sig *g, const struct param *p)
{
    const struct tk__val *v = p->val;
    tk_type want;
    switch (p->code) {
    case 'i':
        if (v->type == TK_TYPE_INT && (v->u.i < INT_MIN || v->u.i > INT_MAX))
            return tk__error(TK_EOVERFLOW, "%.*s() argument '%.*s': signed integer is %s",
                             g->fnlen, g->fn, (int)p->nlen, p->name,
                             v->u.i < 0 ? "less than minimum" : "greater than maximum");
        /* fall through */
    case 'l': want = TK_TYPE_INT; break;
    case 'd':
        if (v->type == TK_TYPE_INT) /* as float() converts an int */
            return 0;
        want = TK_TYPE_FLOAT;
        break;
    case '?': want = TK_TYPE_BOOL; break;
    case 'z':
        if (v->type == TK_TYPE_NONE || v->type == TK_TYPE_STR)
            return 0;
        return tk__error(TK_ETYPE, "%.*s() argument '%.*s' must be str or None, not %s",
                         g->fnlen, g->fn, (int)p->nlen, p->name,
                         tk_type_name((tk_type)v->type));
    case 's': want = TK_TYPE_STR; break;
    case 'y': want = TK_TYPE_BYTES; break;
    default: want = TK_TYPE_PTR; break;
    }
    if (v->type == want)
        return 0;
    return tk__error(TK_ETYPE, "%.*s() argument '%.*s' must be %s, not %s", g->fnlen, g->fn,
                     (int)p->nlen, p->name, tk_type_name(want),
                     tk_type_name((tk_type)v->type));
}

static void store(const struct param *p)
{
    const struct tk__val *v = p->val;
    switch (p->code) {
    case 'i': *(int *)p->out = (int)v->u.i; break;
    case 'l': *(int64_t *)p->out = v->u.i; break;
    case 'd':
        *(double *)p->out = v->type == TK_TYPE_INT ? (double)v->u.i : v->u.f;
        break;
    case '?': *(bool *)p->out = v->u.b; break;
    case 's': *(const char **)p->out = v->u.s; break;
    case 'z': *(const char **)p->out = v->type == TK_TYPE_NONE ? NULL : v->u.s; break;
    case 'y':
        *(const void **)p->out = v->u.s;
        *(size_t *)p->out2 = v->n;
        break;
    default: *(void **)p->out = v->u.p; break;
    }
}

int tk_bind(const tk_args *args, const tk_kwargs *kwargs, const char *signature, ...)
{
    if (!signature)
        return tk__error(TK_EINVAL, "tk_bind: signature is NULL");
    struct sig g;
    int rc = parse_sig(&g, signature);
    if (rc < 0)
        return rc;
    va_list ap;
    va_start(ap, signature);
    rc = read_outs(&g, ap);
    va_end(ap);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < g.n; i++)
        g.p[i].val = NULL;
    rc = match(&g, args, kwargs);
    for (size_t i = 0; rc == 0 && i < g.n; i++)
        if (g.p[i].val)
            rc = check_type(&g, &g.p[i]);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < g.n; i++)
        if (g.p[i].val)
            store(&g.p[i]);
    return 0;
}
