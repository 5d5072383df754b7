# libtaskkit - GNU make only. Honours CC, CFLAGS, LDFLAGS, PREFIX, DESTDIR.
#
#   make / make all      build/libtaskkit.a and build/libtaskkit.so.X.Y.Z
#   make test            build and run the cmocka suite (installs cmocka if missing)
#   make demo            build the library and run every example in label order
#   make examples        build the examples only
#   make docs            Doxygen HTML and man pages in build/docs/
#   make bench           benchmarks (see bench/)
#   make bench-docs      make bench, then docs/benchmarks.md and docs/bench/*.svg
#   make install / uninstall   (PREFIX=/usr/local, DESTDIR=)
#   make test-asan / test-tsan / test-valgrind   the suite under the sanitizers
#
# BUILD selects the output folder, so sanitizer builds never mix with the
# normal one (make test-asan builds in build/asan).

.SUFFIXES:
.DELETE_ON_ERROR:
.SECONDARY:

VERSION_H := include/taskkit/version.h
ver = $(shell sed -n 's/^\#define TK_VERSION_$(1) \([0-9]*\).*/\1/p' $(VERSION_H))
MAJOR := $(call ver,MAJOR)
MINOR := $(call ver,MINOR)
PATCH := $(call ver,PATCH)
VERSION := $(MAJOR).$(MINOR).$(PATCH)

PREFIX ?= /usr/local
DESTDIR ?=
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man

CC ?= cc
CFLAGS ?= -O2 -g
LDFLAGS ?=
BUILD ?= build
# Extra flags for every compile and link (sanitizers, coverage).
EXTRA_CFLAGS ?=

WARN := -Wall -Wextra -Wpedantic -Werror
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -pthread -Iinclude $(WARN) $(EXTRA_CFLAGS)
LIB_CFLAGS := $(BASE_CFLAGS) -Ilib -fPIC -fvisibility=hidden
LIBS := -pthread -lm

SONAME := libtaskkit.so.$(MAJOR)
STATIC := $(BUILD)/libtaskkit.a
SHARED := $(BUILD)/libtaskkit.so.$(VERSION)

LIB_SRCS := $(sort $(wildcard lib/*.c))
LIB_OBJS := $(LIB_SRCS:lib/%.c=$(BUILD)/obj/%.o)

TEST_SRCS := $(sort $(wildcard tests/test_*.c))
TEST_BINS := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
TESTLIB_SRCS := $(sort $(wildcard tests/common/*.c))
TESTLIB_OBJS := $(TESTLIB_SRCS:tests/common/%.c=$(BUILD)/tests/common/%.o)
# cmocka's flags, asked only when a test target runs (it may not exist yet).
CMOCKA_CFLAGS = $(shell pkg-config --cflags cmocka 2>/dev/null)
CMOCKA_LIBS = $(shell pkg-config --libs cmocka 2>/dev/null || echo -lcmocka)
TEST_CFLAGS = $(BASE_CFLAGS) -Ilib -Itests $(CMOCKA_CFLAGS)

EXAMPLE_SRCS := $(sort $(wildcard examples/*.c))
EXAMPLE_BINS := $(EXAMPLE_SRCS:examples/%.c=$(BUILD)/examples/%)

BENCH_SRCS := $(sort $(wildcard bench/*.c))
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)

.PHONY: all lib test check demo examples docs bench install uninstall clean \
        need-cmocka build-tests conformance bench-docs test-asan test-tsan test-valgrind

all: $(STATIC) $(SHARED)
lib: all

# ---------------------------------------------------------------- library
$(BUILD)/obj/%.o: lib/%.c
	@mkdir -p $(@D)
	$(CC) $(LIB_CFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(STATIC): $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

$(SHARED): $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(LIB_CFLAGS) $(CFLAGS) $(LDFLAGS) -shared -Wl,-soname,$(SONAME) \
	    -o $@ $^ $(LIBS)
	ln -sf libtaskkit.so.$(VERSION) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $(BUILD)/libtaskkit.so

-include $(LIB_OBJS:.o=.d)

# ---------------------------------------------------------------- tests
need-cmocka:
	@tools/need pc cmocka libcmocka-dev

$(BUILD)/tests/common/%.o: tests/common/%.c | need-cmocka
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/tests/%: tests/%.c $(TESTLIB_OBJS) $(STATIC) | need-cmocka
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) $(CFLAGS) $(LDFLAGS) -MMD -MP $< $(TESTLIB_OBJS) \
	    $(STATIC) $(CMOCKA_LIBS) $(LIBS) -o $@

-include $(TEST_BINS:=.d) $(TESTLIB_OBJS:.o=.d)

# The example programs are built too: tests/test_examples.c runs them.
build-tests: all $(TEST_BINS) $(EXAMPLE_BINS)

test: build-tests
	@[ -n "$(EXTRA_CFLAGS)" ] || tools/check-install.sh $(BUILD)
	@TK_EXAMPLES_DIR=$(BUILD)/examples tests/run-tests.sh $(TEST_BINS)
check: test

# The independent conformance suite: tests/conformance/*.c written from
# API.md alone, compiled as C99 against the *installed* headers and library.
conformance: all
	@tools/need pc cmocka libcmocka-dev
	@tools/conformance.sh $(BUILD)

test-asan:
	TK_TEST_MODE=asan $(MAKE) BUILD=build/asan CFLAGS="-O1 -g" \
	    EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" test
test-tsan:
	TSAN_OPTIONS="die_after_fork=0 $(TSAN_OPTIONS)" TK_TEST_MODE=tsan $(MAKE) BUILD=build/tsan CFLAGS="-O1 -g" EXTRA_CFLAGS="-fsanitize=thread" test
VALGRIND := valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
    --error-exitcode=99 --trace-children=yes --child-silent-after-fork=no --max-threads=1000
test-valgrind:
	@tools/need cmd valgrind valgrind
	$(MAKE) BUILD=build/valgrind CFLAGS="-O0 -g" build-tests
	@TK_EXAMPLES_DIR=build/valgrind/examples TK_TEST_MODE=valgrind TK_TEST_WRAPPER="$(VALGRIND)" \
	    tests/run-tests.sh $(TEST_BINS:$(BUILD)/%=build/valgrind/%)

# ---------------------------------------------------------------- examples
$(BUILD)/examples/%: examples/%.c $(STATIC)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(LDFLAGS) $< $(STATIC) $(LIBS) -o $@

examples: all $(EXAMPLE_BINS)

demo: examples
	@tools/run-demo.sh $(BUILD)/examples

# ---------------------------------------------------------------- docs
docs:
	@tools/need cmd doxygen doxygen
	@mkdir -p build/docs
	doxygen docs/Doxyfile

# ---------------------------------------------------------------- bench
$(BUILD)/bench/%: bench/%.c $(wildcard bench/*.h) $(STATIC)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -O2 -g $(LDFLAGS) $< $(STATIC) $(LIBS) -o $@

bench: all $(BENCH_BINS)
	@tools/run-bench.sh $(BUILD) $(BENCH_BINS)

# make bench, then refresh the reference run in docs/benchmarks.md and the
# plots in docs/bench/*.svg.
bench-docs: bench
	@bench/update-docs.sh $(BUILD)/bench docs/benchmarks.md docs/bench

# ---------------------------------------------------------------- install
$(BUILD)/taskkit.pc: pkgconfig/taskkit.pc.in $(VERSION_H)
	@mkdir -p $(@D)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@

# The .pc file bakes in PREFIX, so it is rebuilt on every install.
install: all
	@rm -f $(BUILD)/taskkit.pc
	$(MAKE) --no-print-directory $(BUILD)/taskkit.pc
	install -d $(DESTDIR)$(INCLUDEDIR)/taskkit $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 include/taskkit.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 include/taskkit/*.h $(DESTDIR)$(INCLUDEDIR)/taskkit/
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/
	ln -sf libtaskkit.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libtaskkit.so
	install -m 644 $(BUILD)/taskkit.pc $(DESTDIR)$(LIBDIR)/pkgconfig/
	@if [ ! -d build/docs/man/man3 ] && command -v doxygen >/dev/null 2>&1; then \
	    $(MAKE) --no-print-directory docs >/dev/null; fi
	@if [ -d build/docs/man/man3 ]; then \
	    install -d $(DESTDIR)$(MANDIR)/man3 && \
	    install -m 644 build/docs/man/man3/*.3 $(DESTDIR)$(MANDIR)/man3/; fi

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/taskkit.h
	rm -rf $(DESTDIR)$(INCLUDEDIR)/taskkit
	rm -f $(DESTDIR)$(LIBDIR)/libtaskkit.a $(DESTDIR)$(LIBDIR)/libtaskkit.so \
	    $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libtaskkit.so.$(VERSION) \
	    $(DESTDIR)$(LIBDIR)/pkgconfig/taskkit.pc
	@if [ -d build/docs/man/man3 ]; then \
	    for f in build/docs/man/man3/*.3; do rm -f $(DESTDIR)$(MANDIR)/man3/$${f##*/}; done; fi

clean:
	rm -rf build
-include $(wildcard mk/*.mk)
