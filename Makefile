# modfilter - see README.md.  `make` builds; `make test` runs every test.
BUILD   ?= build
CC      ?= cc
WERROR  ?= 1
SAN     ?= 0
# build jobs of the test targets
NPROC   := $(shell nproc 2>/dev/null || echo 2)
PKGS    := libevent libevent_pthreads hiredis jansson libutf8proc inih libxxhash
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Wvla -Wimplicit-fallthrough -Wno-format-nonliteral
ifeq ($(WERROR),1)
WARN    += -Werror
endif
CFLAGS  ?= -O2 -g
override CFLAGS += -std=c11 -D_GNU_SOURCE -pthread $(WARN) -Iclassifier -Idaemon -Icli \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lstemmer -lm -pthread
ifeq ($(SAN),1)
override CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif

CLF_SRC := $(wildcard classifier/*.c)
DMN_SRC := $(filter-out daemon/main.c,$(wildcard daemon/*.c))
CLI_SRC := $(filter-out cli/main.c,$(wildcard cli/*.c))
TEST_SRC := $(wildcard tests/unit/test_*.c)
CLF_OBJ := $(CLF_SRC:%.c=$(BUILD)/%.o)
DMN_OBJ := $(DMN_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
LIB     := $(BUILD)/libmfclassifier.a
TESTS   := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# The fuzz targets are compiled (not linked: libFuzzer's clang build is
# `make fuzz`) with the tests, so that an interface they call cannot
# change under them unnoticed until .ci/run's fuzz step.
FUZZ_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard fuzz/fuzz_*.c))
PROGS   := $(BUILD)/modfilter $(if $(wildcard daemon/main.c),$(BUILD)/modfilterd)

DEB_PKGS := libevent-dev libhiredis-dev libstemmer-dev libutf8proc-dev \
            libjansson-dev libinih-dev libxxhash-dev libcmocka-dev \
            redis-server pkg-config curl python3
.PHONY: all deps install-pkgs test check-asan check-clang check-tsan tests run model bench load chaos fuzz format format-check clean

all: $(PROGS) $(LIB)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(CLF_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/modfilter: $(BUILD)/cli/main.o $(CLI_OBJ) $(DMN_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/modfilterd: $(BUILD)/daemon/main.o $(DMN_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(DMN_OBJ) $(CLI_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# test_classifier makes the tables' allocations fail on purpose.
$(BUILD)/tests/test_classifier: override LDFLAGS += -Wl,--wrap=posix_memalign

tests: $(TESTS) $(FUZZ_OBJ)

$(BUILD)/bench_%: $(BUILD)/bench/bench_%.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

deps:
	@$(MAKE) -s install-pkgs PKGS_WANTED="$(DEB_PKGS)"

# Install what is missing of PKGS_WANTED (apt-get update once, as root).
install-pkgs:
	@missing=""; for p in $(PKGS_WANTED); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "run as root: apt-get install -y$$missing"; exit 1; fi; fi

test: deps
	$(MAKE) -j$(NPROC) all tests
	BUILD=$(BUILD) tests/run.sh

check-asan: deps
	$(MAKE) -j$(NPROC) BUILD=build-asan SAN=1 CFLAGS="-O1 -g" all tests
	BUILD=build-asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1 tests/run.sh

# The same suite built with clang (its own build dir): GCC and clang differ
# in what they leave unspecified (an argument read beside the call that
# moves it crashed only clang's build).
check-clang: deps
	@$(MAKE) -s install-pkgs PKGS_WANTED="clang"
	$(MAKE) -j$(NPROC) BUILD=build-clang CC=clang all tests
	BUILD=build-clang tests/run.sh

# The suite built with ThreadSanitizer (clang): races between the workers,
# the learner and the spool's threads.  A report stops the process
# (halt_on_error), so the test that ran it fails.  Not in .ci/run, which
# would take 5 minutes more.
check-tsan: deps
	@$(MAKE) -s install-pkgs PKGS_WANTED="clang libclang-rt-14-dev"
	$(MAKE) BUILD=build-tsan CC=clang CFLAGS="-O1 -g -fsanitize=thread" \
	  LDFLAGS=-fsanitize=thread all tests
	BUILD=build-tsan TSAN_OPTIONS=halt_on_error=1 tests/run.sh

run: deps all
	scripts/run.sh

model: all
	scripts/make-model.sh

bench: deps all $(BUILD)/bench_classifier
	@$(MAKE) -s install-pkgs PKGS_WANTED="wrk bc"
	BUILD=$(BUILD) scripts/bench.sh

load: deps all
	@$(MAKE) -s install-pkgs PKGS_WANTED="wrk bc"
	BUILD=$(BUILD) scripts/load.sh

# Faults under load (scripts/chaos.py): CHAOS_TIME seconds, with the
# ASan+UBSan build (CHAOS_BUILD=build for the optimised one).
CHAOS_TIME ?= 60
CHAOS_BUILD ?= build-asan
chaos: deps
	$(MAKE) BUILD=$(CHAOS_BUILD) $(if $(filter build-asan,$(CHAOS_BUILD)),SAN=1 CFLAGS="-O1 -g") all
	scripts/chaos.py --bin $(CHAOS_BUILD) --seconds $(CHAOS_TIME)

FUZZ_TIME ?= 10
fuzz: deps
	@$(MAKE) -s install-pkgs PKGS_WANTED="clang libclang-rt-14-dev"
	scripts/fuzz.sh $(FUZZ_TIME)

format:
	clang-format -i $(wildcard */*.c */*.h tests/unit/*.c tests/unit/*.h)
format-check:
	clang-format --dry-run -Werror $(wildcard */*.c */*.h tests/unit/*.c tests/unit/*.h)

clean:
	rm -rf build build-asan build-clang build-tsan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
