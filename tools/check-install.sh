#!/bin/sh
# tools/check-install.sh BUILD - install into a scratch prefix and prove the
# installed library is usable the way a user would use it:
#   - only TK_API functions are exported, the SONAME carries the major number;
#   - pkg-config finds it, and its version agrees with version.h;
#   - a C99 program (-Wpedantic -Werror) links shared and fully static;
#   - a C++ program compiles against the same headers;
#   - the README's first program builds and runs as printed.
set -eu
build=$1
fail() { echo "install check: FAILED: $*"; exit 1; }
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT INT TERM

make -s --no-print-directory BUILD="$build" PREFIX="$prefix" install >/dev/null
lib="$prefix/lib"
export PKG_CONFIG_PATH="$lib/pkgconfig"
version=$(pkg-config --modversion taskkit) || fail "pkg-config cannot find taskkit"
major=${version%%.*}

soname=$(objdump -p "$lib/libtaskkit.so.$version" | awk '/SONAME/ {print $2}')
[ "$soname" = "libtaskkit.so.$major" ] || fail "SONAME is '$soname', want libtaskkit.so.$major"
[ -L "$lib/libtaskkit.so" ] && [ -L "$lib/libtaskkit.so.$major" ] || fail "missing symlinks"

bad=$(nm -D --defined-only "$lib/libtaskkit.so" | awk '{print $3}' | grep -v '^tk_' || true)
[ -z "$bad" ] || fail "exported symbols outside the tk_ API: $bad"

cc=${CC:-cc}
out="$prefix/app"
# shellcheck disable=SC2046
$cc -std=c99 -Wall -Wextra -Wpedantic -Werror -DTASKKIT_EXPECTED_VERSION="\"$version\"" \
    tests/consumer/consumer.c -o "$out" $(pkg-config --cflags --libs taskkit) ||
    fail "C99 build against the installed library"
LD_LIBRARY_PATH="$lib" "$out" >/dev/null || fail "shared-linked consumer did not run"
LD_LIBRARY_PATH="$lib" ldd "$out" | grep -q "libtaskkit.so.$major => $lib" || fail "consumer not linked to the installed .so"

# shellcheck disable=SC2046
$cc -std=c99 -Wall -Wextra -Wpedantic -Werror -static -DTASKKIT_EXPECTED_VERSION="\"$version\"" \
    tests/consumer/consumer.c -o "$out-static" $(pkg-config --static --cflags --libs taskkit) ||
    fail "static build with pkg-config --static"
"$out-static" >/dev/null || fail "static consumer did not run"

# The README's first program, exactly as printed there.
awk '/^```c$/ {on = 1; next} on && /^```$/ {exit} on {print}' README.md > "$prefix/readme.c"
# shellcheck disable=SC2046
$cc -std=c99 -Wall -Wextra -Wpedantic -Werror "$prefix/readme.c" -o "$out-readme" \
    $(pkg-config --cflags --libs taskkit) || fail "the README's first program does not build"
LD_LIBRARY_PATH="$lib" "$out-readme" | grep -q "^exit code 0$" || fail "the README's first program does not run"

if command -v c++ >/dev/null 2>&1; then
    # shellcheck disable=SC2046
    c++ -std=c++11 -Wall -Wextra -Wpedantic -Werror tests/consumer/consumer.cpp \
        -o "$out-cxx" $(pkg-config --cflags --libs taskkit) || fail "C++ build"
    LD_LIBRARY_PATH="$lib" "$out-cxx" >/dev/null || fail "C++ consumer did not run"
else
    echo "install check: no C++ compiler, C++ consumer skipped"
fi
echo "install check: ok (version $version, SONAME $soname, shared + static + C++)"
