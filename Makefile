# logship - one plain Makefile.
#
# Knobs (make VAR=value):
#   V=1                  show full compiler command lines
#   DEBUG=1              -O0, no optimisation (for gdb)
#   SANITIZE=address,undefined   build and test with sanitizers (objects go to build/san)
#   PREFIX=/usr/local    install prefix; DESTDIR for staged installs
#   BUILD=build          output directory
#   T=pattern            with `make test`: run only tests whose name contains pattern
#   NO_DEPS=1            do not check/install Debian packages
#
# Targets: all (build/logship), test, bench, demo, docs, fuzz, deb, install, clean, check-style

CC      ?= cc
PREFIX  ?= /usr/local
BUILD   ?= build
ifneq ($(SANITIZE),)
override BUILD := $(BUILD)/san
endif

PKGS    := zlib libcrypto libpcre2-8 expat msgpack
# headers only: the plugins and agent/compress.c dlopen these (agent/dynlib.h), so processes
# that do not use them do not map them; the .deb must name their packages itself
DLOPEN_PKGS := libmariadb libmicrohttpd libzstd liblzma snappy libsystemd libmongoc-1.0
# NO_DEPS=1 gets a stamp of its own: a build that skipped the install step must not mark the
# packages installed for a later plain `make` (which would then fail in pkg-config)
DEPS_STAMP  := $(BUILD)/.deps-$(if $(filter 1,$(NO_DEPS)),skipped,ok)

# pkg-config may only run after the deps step: on a fresh machine neither pkg-config nor the
# -dev packages are there when make reads this file. So the flags live in a generated makefile
# that depends on the deps stamp; GNU make builds it, then restarts and reads it. Goals that
# compile nothing do not need it (and must not install packages).
NO_CONFIG_GOALS := clean check-style deps deb
# the rule for config.mk comes first: without this a plain `make` (as dh_auto_build runs it)
# would build only that
.DEFAULT_GOAL := all
ifneq ($(filter-out $(NO_CONFIG_GOALS),$(or $(MAKECMDGOALS),all)),)
include $(BUILD)/config.mk
endif
# only build/logship-http links libcurl (agent/http.h says why); a missing .pc file fails here,
# naming the package, instead of compiling without its flags
$(BUILD)/config.mk: $(DEPS_STAMP) Makefile
	@mkdir -p $(@D)
	$(Q)set -e; \
	c=$$(pkg-config --cflags $(PKGS) $(DLOPEN_PKGS) libcurl); \
	l=$$(pkg-config --libs $(PKGS)); \
	k=$$(pkg-config --libs libcurl); \
	t=$$(pkg-config --libs check); \
	printf 'PKG_CFLAGS := %s\nPKG_LIBS := %s\nCURL_LIBS := %s\nCHECK_LIBS := %s\n' "$$c" "$$l" "$$k" "$$t" > $@.tmp
	$(Q)mv $@.tmp $@

OPT     := -O2
ifeq ($(DEBUG),1)
OPT     := -O0
endif
# CPPFLAGS/CFLAGS/LDFLAGS may be given on the command line or the environment (`make fuzz`;
# dpkg-buildflags in the package build: FORTIFY is in CPPFLAGS); the project's own flags are kept
# separately in ALL_CFLAGS so such a CFLAGS adds to them instead of replacing them.
CFLAGS  ?= $(OPT) -g
ALL_CFLAGS = $(CPPFLAGS) $(CFLAGS) -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wpointer-arith \
           -Wformat=2 -fno-strict-aliasing -D_GNU_SOURCE -Iagent -I$(BUILD) -MMD -MP $(PKG_CFLAGS)
LDLIBS  += $(PKG_LIBS) -lev -ldeflate -lpthread -lm
ALL_LDFLAGS = $(LDFLAGS)
ifneq ($(SANITIZE),)
ALL_CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ALL_LDFLAGS += -fsanitize=$(SANITIZE)
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

AGENT_SRCS  := $(filter-out agent/main.c agent/http_helper_main.c,$(wildcard agent/*.c))
PLUGIN_SRCS := $(wildcard plugins/*/*.c)
LIB_OBJS    := $(patsubst %.c,$(BUILD)/%.o,$(AGENT_SRCS) $(PLUGIN_SRCS)) $(BUILD)/plugins.o
UNIT_SRCS   := $(wildcard tests/unit/test_*.c)
UNIT_BINS   := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))

.PHONY: all test unit bench demo docs fuzz fuzz-run deb install clean check-style deps
all: $(BUILD)/logship $(BUILD)/logship-http

# Install missing Debian packages once per build dir (fresh Debian 12 as root).
deps: $(DEPS_STAMP)
$(DEPS_STAMP): packaging/install-deps.sh
	$(Q)if [ "$(NO_DEPS)" != 1 ]; then sh packaging/install-deps.sh build; fi
	$(Q)mkdir -p $(@D) && touch $@

$(BUILD)/logship: $(BUILD)/agent/main.o $(BUILD)/liblogship.a | $(BUILD)/logship-http
	@echo "  LINK    $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/logship-http: $(BUILD)/agent/http_helper_main.o $(BUILD)/liblogship.a
	@echo "  LINK    $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CURL_LIBS) -lev

$(BUILD)/liblogship.a: $(LIB_OBJS)
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

# The plugin registry is generated: every "const struct ls_plugin ls_plugin_*"
# definition under plugins/ is listed, so adding a plugin is adding a file.
$(BUILD)/plugins.c: $(PLUGIN_SRCS) scripts/gen-plugins.sh | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(Q)sh scripts/gen-plugins.sh $(PLUGIN_SRCS) > $@.tmp && mv $@.tmp $@

$(BUILD)/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/plugins.o: $(BUILD)/plugins.c
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/unit/%: tests/unit/%.c $(BUILD)/liblogship.a
	@mkdir -p $(@D)
	@echo "  TEST    $@"
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/unit $(ALL_LDFLAGS) -o $@ $< $(BUILD)/liblogship.a $(LDLIBS) $(CHECK_LIBS)

TOOL_SRCS   := $(wildcard tests/tools/*.c)
TOOL_BINS   := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(TOOL_SRCS))

# Small programs the integration tests drive (e.g. a SigV4 signer for the botocore cross-check).
$(BUILD)/tools/%: tests/tools/%.c $(BUILD)/liblogship.a
	@mkdir -p $(@D)
	@echo "  TOOL    $@"
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/liblogship.a $(LDLIBS) $(CURL_LIBS)

unit: $(UNIT_BINS)

test: $(BUILD)/logship $(UNIT_BINS) $(TOOL_BINS)
	$(Q)if [ "$(NO_DEPS)" != 1 ]; then sh packaging/install-deps.sh test; fi
	$(Q)LOGSHIP=$(CURDIR)/$(BUILD)/logship TOOLS=$(CURDIR)/$(BUILD)/tools UNIT_DIR=$(CURDIR)/$(BUILD)/unit SANITIZE=$(SANITIZE) \
		python3 tests/run.py $(T)

bench: $(BUILD)/logship
	$(Q)if [ "$(NO_DEPS)" != 1 ]; then sh packaging/install-deps.sh test; fi
	$(Q)LOGSHIP=$(CURDIR)/$(BUILD)/logship python3 tests/bench/bench.py $(BENCH_ARGS)

# the demo needs only the S3 server (moto): no nginx, no MariaDB
demo: $(BUILD)/logship
	$(Q)if [ "$(NO_DEPS)" != 1 ]; then sh packaging/install-deps.sh demo; fi
	$(Q)LOGSHIP=$(CURDIR)/$(BUILD)/logship python3 tests/demo.py

docs: $(BUILD)/logship
	$(Q)sh scripts/gen-docs.sh $(BUILD)/logship > docs/plugins.md.tmp && mv docs/plugins.md.tmp docs/plugins.md

FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
fuzz: $(DEPS_STAMP)
	$(Q)if [ "$(NO_DEPS)" != 1 ]; then sh packaging/install-deps.sh fuzz; fi
	$(Q)$(MAKE) --no-print-directory BUILD=build/fuzz CC=clang \
		CFLAGS="-O1 -g -fsanitize=fuzzer-no-link,address,undefined" \
		LDFLAGS="-fsanitize=address,undefined" NO_DEPS=1 build/fuzz/liblogship.a
	$(Q)mkdir -p build/fuzz/bin
	$(Q)for f in $(FUZZ_SRCS); do n=$$(basename $$f .c); \
		echo "  FUZZ    build/fuzz/bin/$$n"; \
		clang -O1 -g -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iagent -Ibuild/fuzz $(PKG_CFLAGS) \
			-o build/fuzz/bin/$$n $$f build/fuzz/liblogship.a $(LDLIBS) || exit 1; done

# A short fuzzing pass over every target: FUZZ_TIME seconds each, starting from the committed
# corpus tests/fuzz/corpus/<name>/ (new inputs go to build/fuzz/corpus, not the repo).
# FUZZ_SEED=n FUZZ_RUNS=n makes the pass reproducible (CI): a fixed seed, a fixed number of
# inputs and a fresh scratch corpus, so a red CI replays the same way on a laptop and a green
# one does not depend on how fast the machine was. Long exploration: FUZZ_TIME=600, no seed.
comma := ,
FUZZ_TIME ?= 20
FUZZ_SEED ?=
FUZZ_RUNS ?=
FUZZ_OPTS = -max_total_time=$(FUZZ_TIME) -rss_limit_mb=2048 -print_final_stats=0 \
	$(if $(FUZZ_SEED),-seed=$(FUZZ_SEED)) $(if $(FUZZ_RUNS),-runs=$(FUZZ_RUNS))
fuzz-run: fuzz
	$(Q)for f in build/fuzz/bin/fuzz_*; do n=$$(basename $$f); c=$${n#fuzz_}; \
		d=build/fuzz/corpus/$$c; \
		if [ -n "$(FUZZ_SEED)" ]; then d=build/fuzz/scratch/$$c; rm -rf $$d; fi; \
		mkdir -p $$d; \
		echo "  RUN     $$n ($(if $(FUZZ_RUNS),$(FUZZ_RUNS) inputs$(comma) seed $(FUZZ_SEED)$(comma) )at most $(FUZZ_TIME)s)"; \
		$$f $(FUZZ_OPTS) -artifact_prefix=build/fuzz/ $$d tests/fuzz/corpus/$$c > build/fuzz/$$n.log 2>&1 \
			|| { tail -50 build/fuzz/$$n.log; exit 1; }; \
		grep -h "^#.*DONE" build/fuzz/$$n.log | tail -1; \
	done

# dpkg-buildpackage on a copy of the tree (packaging/build-deb.sh), with Debian's flags, whatever
# SANITIZE or BUILD say: build/logship_<ver>_<arch>.deb
deb:
	$(Q)if [ "$(NO_DEPS)" != 1 ]; then sh packaging/install-deps.sh deb; fi
	$(Q)sh packaging/build-deb.sh build

# logship finds its helper at ../lib/logship/logship-http from its own directory (agent/http.c)
install: $(BUILD)/logship $(BUILD)/logship-http
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/logship $(DESTDIR)$(PREFIX)/share/doc/logship/conf
	install -m 0755 $(BUILD)/logship $(DESTDIR)$(PREFIX)/bin/logship
	install -m 0755 $(BUILD)/logship-http $(DESTDIR)$(PREFIX)/lib/logship/logship-http
	install -m 0644 conf/*.conf $(DESTDIR)$(PREFIX)/share/doc/logship/conf/

check-style:
	$(Q)sh scripts/check-style.sh

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
