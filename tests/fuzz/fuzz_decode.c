/*
 * fuzz_decode.c - libFuzzer target for tk_args_decode.
 *
 * Any input: decoding never crashes or reads past `len` (ASan), never leaks
 * (LeakSanitizer), and either fails with TK_EDECODE (TK_ENOMEM allowed)
 * leaving both out-bags NULL, or succeeds with bags that own their data.
 * A successful decode must survive the round trip: encode -> decode gives
 * equal bags, and encoding is stable (encode(decode(e)) == e for every e the
 * encoder produced). The input is copied into a buffer of exactly its size
 * and freed before the bags are used, so a bag that kept pointers into the
 * input is caught as a use-after-free.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *in = malloc(size ? size : 1);
    if (!in)
        return 0;
    if (size)
        memcpy(in, data, size);
    tk_args *a = (tk_args *)1;
    tk_kwargs *k = (tk_kwargs *)1;
    int rc = tk_args_decode(in, size, &a, &k);
    free(in); /* decoded bags own their data */
    if (rc < 0) {
        FZ_CHECK(rc == TK_EDECODE || rc == TK_ENOMEM);
        FZ_CHECK(a == NULL && k == NULL);
        FZ_CHECK(tk_last_error()[0] != '\0');
        return 0;
    }
    FZ_CHECK(rc == 0 && a != NULL && k != NULL);
    /* Touch every value: strings and bytes must be readable to their end. */
    for (size_t i = 0; i < tk_args_len(a); i++) {
        struct fz_val v = fz_arg(a, i);
        FZ_CHECK(v.t != TK_TYPE_PTR && v.t != TK_TYPE_INVALID && v.rc == 0);
    }
    for (size_t i = 0; i < tk_kwargs_len(k); i++) {
        const char *key = tk_kwargs_key(k, i);
        FZ_CHECK(key != NULL);
        struct fz_val v = fz_kwarg(k, key);
        FZ_CHECK(v.t != TK_TYPE_PTR && v.t != TK_TYPE_INVALID && v.rc == 0);
    }

    void *e1 = NULL, *e2 = NULL;
    size_t n1 = 0, n2 = 0;
    FZ_CHECK(tk_args_encode(a, k, &e1, &n1) == 0);
    tk_args *a2 = NULL;
    tk_kwargs *k2 = NULL;
    FZ_CHECK(tk_args_decode(e1, n1, &a2, &k2) == 0);
    FZ_CHECK(fz_args_equal(a, a2));
    FZ_CHECK(fz_kwargs_equal(k, k2));
    FZ_CHECK(tk_args_encode(a2, k2, &e2, &n2) == 0);
    FZ_CHECK(n1 == n2 && memcmp(e1, e2, n1) == 0);
    free(e1);
    free(e2);
    tk_args_free(a);
    tk_kwargs_free(k);
    tk_args_free(a2);
    tk_kwargs_free(k2);
    return 0;
}
