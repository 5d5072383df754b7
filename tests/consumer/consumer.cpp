// The same check from C++: the headers must compile as C++ (extern "C").
#include <cstdio>
#include <cstring>
#include <taskkit.h>

int main()
{
    if (std::strcmp(tk_err_name(TK_EINVAL), "TK_EINVAL") != 0)
        return 1;
    std::printf("c++ consumer ok %s\n", tk_version_string());
    return 0;
}
