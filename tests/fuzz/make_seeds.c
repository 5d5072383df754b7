/*
 * make_seeds.c - writes the seed corpus of the fuzz targets into
 * tests/fuzz/corpus/{decode,bind,format}/ (`make fuzz-seeds`; the output is
 * committed, so this only runs when the seeds should change).
 *
 * decode: real encodings of typical bags (every type, empty, unicode, long
 * values, many kwargs) so the fuzzer starts past the header checks.
 * bind:   the signatures of API.md's examples and CPython's binding cases,
 * each followed by bag-building operations (see fuzz_bind.c).
 * format: tk_args_of / tk_kwargs_of formats, valid and broken.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <taskkit.h>

static int seq;

static void put(const char *dir, const void *p, size_t n)
{
    char path[256];
    snprintf(path, sizeof path, "tests/fuzz/corpus/%s/seed-%03d", dir, seq++);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void enc(tk_args *a, tk_kwargs *k)
{
    void *buf = NULL;
    size_t n = 0;
    if (tk_args_encode(a, k, &buf, &n) != 0) {
        fprintf(stderr, "encode: %s\n", tk_last_error());
        exit(1);
    }
    put("decode", buf, n);
    free(buf);
    tk_args_free(a);
    tk_kwargs_free(k);
}

/* bind seed: signature, NUL, then raw operation bytes. */
static void bind_seed(const char *sig, const void *ops, size_t n)
{
    char buf[512];
    size_t s = strlen(sig);
    memcpy(buf, sig, s);
    buf[s] = 0;
    memcpy(buf + s + 1, ops, n);
    put("bind", buf, s + 1 + n);
}

static void format_seed(int kw, const char *fmt)
{
    char buf[64];
    buf[0] = (char)kw;
    size_t n = strlen(fmt);
    memcpy(buf + 1, fmt, n);
    put("format", buf, n + 1);
}

int main(void)
{
    enc(NULL, NULL);
    enc(tk_args_of("i", 3), NULL);
    enc(tk_args_of("ildsz?yn", 1, (int64_t)-1, 2.5, "str", (const char *)NULL, 1, "by\0tes",
                   (size_t)6),
        tk_kwargs_of("num:i, name:s, verbose:?", 3, "x", 0));
    enc(NULL, tk_kwargs_of("a:d, b:y, c:n, d:z", -0.0, "", (size_t)0, "h\xc3\xa9llo"));
    char big[300];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    enc(tk_args_of("ss", big, "\xe2\x82\xac"), tk_kwargs_of("long:s", big));
    tk_kwargs *many = tk_kwargs_new();
    for (int i = 0; i < 20; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        tk_kwargs_set_int(many, key, i * 1000003);
    }
    enc(tk_args_of("dd", 1e308, 5e-324), many);

    /* ops: 0x02 int (8 bytes), 0x04 str (len, bytes), 0x0c str kwarg
     * (keylen, key, len, bytes), 0x09 bool kwarg, 0x03 float. */
    static const unsigned char one_int[] = {0x02, 3, 0, 0, 0, 0, 0, 0, 0};
    static const unsigned char int_str[] = {0x02, 3, 0, 0, 0, 0, 0, 0, 0, 0x04, 1, 'x'};
    static const unsigned char kw_num[] = {0x0a, 3, 'n', 'u', 'm', 7, 0, 0, 0, 0, 0, 0, 0};
    static const unsigned char kw_nmu[] = {0x0a, 3, 'n', 'm', 'u', 7, 0, 0, 0, 0, 0, 0, 0};
    static const unsigned char two_pos[] = {0x02, 1, 0, 0, 0, 0, 0, 0, 0,
                                            0x02, 2, 0, 0, 0, 0, 0, 0, 0};
    static const unsigned char str_first[] = {0x04, 2, 'h', 'i'};
    static const unsigned char big_int[] = {0x07, 0, 0, 0, 0, 1, 0, 0, 0};
    static const unsigned char verbose[] = {0x02, 3, 0, 0, 0, 0, 0, 0, 0,
                                            0x09, 7, 'v', 'e', 'r', 'b', 'o', 's', 'e', 1};
    static const unsigned char all[] = {0x00, 0x01, 1, 0x03, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f,
                                        0x05, 2, 0xff, 0, 0x06, 0x08, 1, 'z'};
    const char *coding = "coding(num:i, name:s=, *, verbose:?=)";
    bind_seed(coding, one_int, sizeof one_int);
    bind_seed(coding, int_str, sizeof int_str);
    bind_seed(coding, kw_num, sizeof kw_num);
    bind_seed(coding, kw_nmu, sizeof kw_nmu);
    bind_seed(coding, verbose, sizeof verbose);
    bind_seed(coding, str_first, sizeof str_first);
    bind_seed("f(a:i)", two_pos, sizeof two_pos);
    bind_seed("f(a:i)", big_int, sizeof big_int);
    bind_seed("f(a:l, b:d=)", two_pos, sizeof two_pos);
    bind_seed("f(a:n, b:?, c:d, d:y, e:p, z:z=)", all, sizeof all);
    bind_seed("f()", "", 0);
    bind_seed("f(*, a:i=)", kw_num, sizeof kw_num);
    bind_seed("f(a:s, a:s)", str_first, sizeof str_first);
    bind_seed("f(a:i, b:i=, c:i)", one_int, sizeof one_int);
    bind_seed("f(a:q)", one_int, sizeof one_int);
    bind_seed("f(a:i", one_int, sizeof one_int);

    format_seed(0, "");
    format_seed(0, "is");
    format_seed(0, "ildsz?ynp");
    format_seed(0, " i  s ");
    format_seed(0, "iq");
    format_seed(1, "num:i, name:s");
    format_seed(1, "a:d,b:y,c:n,d:z,e:p,f:?,g:l");
    format_seed(1, "a:i, a:s");
    format_seed(1, "a:i,, b:s");
    format_seed(1, ":i");
    format_seed(1, "a");
    format_seed(1, "a:");
    format_seed(1, "a:ii");
    return 0;
}
