/* A program outside the tree: built against the *installed* library with
 * pkg-config only, as C99 with -Wpedantic, shared and static. */
#include <stdio.h>
#include <string.h>
#include <taskkit.h>

int main(void)
{
    if (strcmp(tk_version_string(), TASKKIT_EXPECTED_VERSION) != 0) {
        printf("version mismatch: %s\n", tk_version_string());
        return 1;
    }
    if (strcmp(tk_err_name(TK_ESTATE), "TK_ESTATE") != 0)
        return 1;
    printf("consumer ok %s\n", tk_version_string());
    return 0;
}
