# Tide build. `make` builds bin/, `make check` runs everything a commit must pass,
# `make asan`/`make valgrind`/`make fuzz`/`make bench`/`make demo` as the README says.
# Sources are found by folder: a new module is a new .c file, no Makefile edit needed.
#   shared/*.c             -> build/libtide_shared.a   (wire, config, log, helpers)
#   agent/*.c, agent/*/*.c -> bin/tide-agent           (agent/main.c holds main)
#   controlplane/*.c, controlplane/*/*.c except cli/ -> bin/tide-controlplane (+ libtide_cp.a)
#   controlplane/cli/*.c   -> bin/tidectl              (links libtide_cp.a: same model code)
# Each side sees only its own headers and shared/'s (per-folder -I below): agent and control
# plane meet only through shared/. The layer walls inside each side are checked by
# scripts/walls.sh before anything is compiled (see WALLS).
#   tests/unit/X_test.c    -> build/tests/X_test
#   tests/fuzz/fuzz_X.c    -> build/fuzz/fuzz_X        (clang libFuzzer)
#   tests/bench/bench_X.c  -> build/bench/bench_X
#   tests/tools/X.c        -> build/tools/tide-X      (the benchmark testbed's replica, load generator)

CC      ?= cc
STD     := -std=c11 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Wshadow -Wformat=2 -Wpointer-arith -Wstrict-prototypes -Werror
OPT     ?= -O2 -g
PKGS    := msgpack libcurl openblas libcgroup libcrypto libmicrohttpd yaml-0.1 xgboost libsystemd libcjson icu-i18n re2
CXX     ?= c++
# C++ only where a C++ library is wrapped (controlplane/query/re.cc: RE2); same warnings.
CXXWARN := -Wall -Wextra -Wshadow -Wformat=2 -Wpointer-arith -Werror
B       ?= build
BIN     ?= bin

# Packages: a plain `make` (what a packager runs) never installs anything; it only says which
# pkg-config modules are missing. `make check`, `make demo` and `make bench` first run
# scripts/setup.sh (installs missing Debian packages when run as root, names them otherwise;
# with everything installed it only asks dpkg-query), then build in a fresh make that reads
# pkg-config after the install.
PKG_MISSING := $(shell for p in $(PKGS); do pkg-config --exists $$p || printf '%s ' $$p; done)
ifneq ($(strip $(PKG_MISSING)),)
$(warning pkg-config does not find: $(PKG_MISSING)-- run scripts/setup.sh (as root) first)
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# Include paths by folder: shared/ sees only itself, each daemon itself and shared/; tests
# and benchmarks see everything.
INCS     = -Ishared -Iagent -Icontrolplane
$(B)/obj/shared/%.o:       INCS = -Ishared
$(B)/obj/agent/%.o:        INCS = -Ishared -Iagent
$(B)/obj/controlplane/%.o: INCS = -Ishared -Icontrolplane
ALL_CFLAGS = $(STD) $(WARN) $(OPT) $(INCS) $(PKG_CFLAGS) -MMD -MP $(CPPFLAGS) $(CFLAGS)
ALL_CXXFLAGS = -std=c++17 -D_GNU_SOURCE $(CXXWARN) $(OPT) $(INCS) $(PKG_CFLAGS) -MMD -MP $(CPPFLAGS) $(CFLAGS)
LDLIBS  = $(PKG_LIBS) -lev -lm -lpthread -lstdc++ $(LIBS)

SHARED_SRC := $(wildcard shared/*.c)
AGENT_SRC  := $(wildcard agent/*.c agent/*/*.c)
CP_ALL_SRC := $(filter-out controlplane/cli/%,$(wildcard controlplane/*.c controlplane/*/*.c controlplane/*/*.cc))
CP_LIB_SRC := $(filter-out controlplane/main.c,$(CP_ALL_SRC))
AG_LIB_SRC := $(filter-out agent/main.c,$(AGENT_SRC))
CLI_SRC    := $(wildcard controlplane/cli/*.c)
UNIT_SRC   := $(wildcard tests/unit/*_test.c)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
BENCH_SRC  := $(wildcard tests/bench/bench_*.c)
TOOL_SRC   := $(wildcard tests/tools/*.c)
TESTLIB_SRC := $(filter-out $(UNIT_SRC),$(wildcard tests/unit/*.c))

obj = $(patsubst %.cc,$(B)/obj/%.o,$(patsubst %.c,$(B)/obj/%.o,$(1)))

SHARED_LIB := $(B)/libtide_shared.a
CP_LIB     := $(B)/libtide_cp.a
AG_LIB     := $(B)/libtide_agent.a
UNIT_BINS  := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))
BENCH_BINS := $(patsubst tests/bench/%.c,$(B)/bench/%,$(BENCH_SRC))
TOOL_BINS  := $(patsubst tests/tools/%.c,$(B)/tools/tide-%,$(TOOL_SRC))
PROGS      := $(BIN)/tide-agent $(BIN)/tide-controlplane $(BIN)/tidectl

.PHONY: setup check-run install all progs deb deb-check deb-test check unit integration asan valgrind fuzz fuzz-build bench demo clean format \
	walls format-check
all: $(PROGS) $(UNIT_BINS) $(BENCH_BINS) $(TOOL_BINS)
# the three programs alone (what the Debian package build compiles)
progs: $(PROGS)

# WALLS: the layer table of scripts/walls.sh is checked before any object is compiled; a
# forbidden include fails the build (tests/integration/walls.sh plants one to prove it).
SRC_FILES := $(wildcard shared/*.[ch] agent/*.[ch] agent/*/*.[ch] controlplane/*.[ch] controlplane/*/*.[ch] controlplane/*/*.cc)
$(B)/walls.ok: scripts/walls.sh $(SRC_FILES)
	@mkdir -p $(dir $@)
	@scripts/walls.sh
	@touch $@
walls:
	scripts/walls.sh

$(B)/obj/%.o: %.c | $(B)/walls.ok
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@
$(B)/obj/%.o: %.cc | $(B)/walls.ok
	@mkdir -p $(dir $@)
	$(CXX) $(ALL_CXXFLAGS) -c $< -o $@

$(SHARED_LIB): $(call obj,$(SHARED_SRC))
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
$(CP_LIB): $(call obj,$(CP_LIB_SRC))
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
$(AG_LIB): $(call obj,$(AG_LIB_SRC))
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^

# Daemons link every object of their folder directly (not through the archive) so that
# modules registering themselves with constructors (ops handlers, collectors, actions) are kept.
# --as-needed: the agent must not map libraries it does not call (libcurl is dlopen'ed by the
# first warm-up); sanitizer links turn the toolchain's default off.
$(BIN)/tide-agent: $(call obj,$(AGENT_SRC)) $(SHARED_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) -Wl,--as-needed $(LDLIBS)
$(BIN)/tide-controlplane: $(call obj,$(CP_ALL_SRC)) $(SHARED_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)
$(BIN)/tidectl: $(call obj,$(CLI_SRC)) $(CP_LIB) $(SHARED_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(B)/tests/%: tests/unit/%.c $(call obj,$(TESTLIB_SRC)) $(CP_LIB) $(AG_LIB) $(SHARED_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit -o $@ $< $(call obj,$(TESTLIB_SRC)) $(CP_LIB) $(AG_LIB) $(SHARED_LIB) $(LDFLAGS) $(LDLIBS)
$(B)/bench/%: tests/bench/%.c $(CP_LIB) $(AG_LIB) $(SHARED_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(CP_LIB) $(AG_LIB) $(SHARED_LIB) $(LDFLAGS) $(LDLIBS)

# The benchmark testbed's programs (tests/tools/X.c -> build/tools/tide-X): the replica and
# the open-loop load generator of tests/bench/e2e.sh.
$(B)/tools/tide-%: tests/tools/%.c $(CP_LIB) $(SHARED_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(CP_LIB) $(SHARED_LIB) $(LDFLAGS) $(LDLIBS)

# ---- tests -------------------------------------------------------------------------------
# tests/run.sh runs unit binaries and tests/integration/* and ends with "N passed, N failed".
# the builds (plain, ASan, fuzz) a job per core; the test suites pace themselves
check: setup
	$(MAKE) --no-print-directory -j$(shell nproc) check-run
# The plain and the ASan/UBSan suites run side by side (tests/suites.sh: most of a test's time is
# spent waiting on the daemons it started); then every fuzz target briefly, a target per core.
check-run: all asan format-check
	tests/suites.sh plain tests/run.sh --bin $(BIN) --build $(B) \
	  -- asan env $(ASAN_ENV) tests/run.sh --bin build/asan/bin --build build/asan --sanitized
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(CHECK_FUZZ_SECONDS)
setup:
	scripts/setup.sh

unit: all
	tests/run.sh --bin $(BIN) --build $(B) --unit-only
integration: all
	tests/run.sh --bin $(BIN) --build $(B) --integration-only

SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
asan:
	$(MAKE) --no-print-directory B=build/asan BIN=build/asan/bin OPT="-O1 -g" \
	  CFLAGS="$(SAN) $(CFLAGS)" LDFLAGS="$(SAN)" all
ASAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
asan-check: asan
	env $(ASAN_ENV) tests/run.sh --bin build/asan/bin --build build/asan --sanitized
valgrind: all
	tests/run.sh --bin $(BIN) --build $(B) --valgrind

# libFuzzer targets: every fuzz_X.c with all sources rebuilt by clang with the fuzzer on; clang's
# -Wcomma (an error, like every warning) keeps comma-operator statements out of the code.
FZ := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -Wcomma
fuzz-build:
	$(MAKE) --no-print-directory CC=clang CXX=clang++ B=build/fuzz BIN=build/fuzz/bin OPT="-O1 -g" \
	  CFLAGS="$(FZ) $(CFLAGS)" fuzz-bins
fuzz-bins: $(patsubst tests/fuzz/%.c,$(B)/fz/%,$(FUZZ_SRC))
$(B)/fz/%: tests/fuzz/%.c $(CP_LIB) $(AG_LIB) $(SHARED_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -o $@ $< $(CP_LIB) $(AG_LIB) $(SHARED_LIB) $(LDLIBS)
FUZZ_SECONDS ?= 120
# make check runs each fuzz target briefly; make fuzz for longer.
CHECK_FUZZ_SECONDS ?= 10
fuzz: fuzz-build
	tests/fuzz/run.sh build/fuzz/fz $(FUZZ_SECONDS)

bench: setup
	$(MAKE) --no-print-directory all
	tests/bench/run.sh --bin $(BIN) --build $(B)

demo: setup
	$(MAKE) --no-print-directory all
	scripts/demo.sh $(BIN)

# Installs the binaries, the systemd units, man pages, bash completion and the docs (DESTDIR for
# staging, PREFIX=/usr/local). Units go to $(PREFIX)/lib/systemd/system (systemd reads
# /usr/local/lib/systemd/system and /usr/lib/systemd/system; /etc/systemd/system is the admin's),
# with ExecStart= and Documentation= pointing into PREFIX.
PREFIX ?= /usr/local
UNITDIR ?= $(PREFIX)/lib/systemd/system
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
DOCDIR ?= $(PREFIX)/share/doc/tide
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
UNIT_SED = -e 's\#/usr/local/bin\#$(PREFIX)/bin\#g' -e 's\#/usr/local/share/doc/tide\#$(DOCDIR)\#g'
install: $(PROGS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR) \
	  $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(MANDIR)/man1 \
	  $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(BASHCOMPDIR)
	install -m 0755 $(PROGS) $(DESTDIR)$(PREFIX)/bin/
	sed $(UNIT_SED) systemd/tide-agent.service > $(DESTDIR)$(UNITDIR)/tide-agent.service
	sed $(UNIT_SED) systemd/tide-controlplane.service > $(DESTDIR)$(UNITDIR)/tide-controlplane.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/tide-agent.service $(DESTDIR)$(UNITDIR)/tide-controlplane.service
	install -m 0644 systemd/tide.sysusers.conf $(DESTDIR)$(SYSUSERSDIR)/tide.conf
	install -m 0644 systemd/tide.tmpfiles.conf $(DESTDIR)$(TMPFILESDIR)/tide.conf
	install -m 0644 man/tidectl.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 man/tide-agent.8 man/tide-controlplane.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 completion/tidectl.bash $(DESTDIR)$(BASHCOMPDIR)/tidectl
	install -m 0644 README.md BENCHMARKS.md shared/PROTOCOL.md $(DESTDIR)$(DOCDIR)/

# Debian packages (debian/): tide-agent, tide-controlplane and tidectl .deb files in build/deb/,
# built by dpkg-buildpackage from a copy of this tree (a clean build with dpkg-buildflags'
# hardening) and checked by lintian (an error or warning fails). Needs debhelper, dpkg-dev and
# lintian (scripts/setup.sh installs them). `make deb-check` builds them and runs the test that
# installs, verifies and purges them (tests/integration/deb_packages.sh; root).
DEB_DIR ?= build/deb
deb:
	scripts/deb.sh $(DEB_DIR)
deb-check: deb
	$(MAKE) --no-print-directory deb-test
# installs, runs and purges the packages of the last `make deb` (build/deb, or DEB_DIR)
deb-test:
	TIDE_DEB_DIR=$(DEB_DIR) tests/run.sh --bin $(BIN) --build $(B) --integration-only deb_packages

format:
	@clang-format -i $(SRC_FILES) $(wildcard tests/*/*.[ch])
# every C file as .clang-format says (part of make check)
format-check:
	@clang-format --dry-run -Werror $(SRC_FILES) $(wildcard tests/*/*.[ch]) \
	  || { echo "format-check: run 'make format'"; exit 1; }

clean:
	rm -rf build bin

.SECONDARY:

# (build/deb holds the package build's own copy of the tree and its objects: not ours)
-include $(shell find build -path 'build/deb*' -prune -o -name '*.d' -print 2>/dev/null)
