# Strongroom: one Makefile for the whole tree.
#
#   make          build everything (CUDA sources only where nvcc exists)
#   make deps     install what is missing (Debian 12 packages, Debian 13
#                 llhttp/yyjson unpacked and Debian 13's mbedTLS built
#                 into build/deps)
#   make run      first-start set-up and start on the embedded default
#   make test     unit tests, integration tests, unit tests under ASan+UBSan
#   make bench    benchmarks, printed as ratios against anchors
#   make bench-gpu  the GPU figures (skipped without a GPU)
#   make lint     clang-format check and module-boundary check
MAKEFLAGS += -r
BUILD ?= build
DEPS := $(BUILD)/deps
DEPROOT := $(abspath $(DEPS)/root)
DEPLIB := $(DEPROOT)/usr/lib/x86_64-linux-gnu
DEPSTAMP := $(DEPS)/.complete-v2
# Our additions to Debian's mbedTLS configuration: the libraries are built
# with it (tools/deps.sh) and so is every file of ours that includes mbedTLS.
MBEDTLS_EXTRA := tools/mbedtls_config_extra.h

CC ?= cc
OPT ?= -O2
# style.md 7.6's warnings. -Wno-format-truncation: messages are cut to
# their buffers on purpose (snprintf into fixed error buffers).
WARN := -Wall -Wextra -Wpointer-arith -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Werror -Wno-format-truncation
CPPFLAGS := -D_GNU_SOURCE -I. -I$(DEPROOT)/usr/include -I/usr/include/p11-kit-1 \
	-DMBEDTLS_USER_CONFIG_FILE='"$(MBEDTLS_EXTRA)"'
CFLAGS := -std=c11 $(OPT) -g $(WARN) -fPIC
# Full RELRO, every symbol bound at start: no lazy binding at run time,
# whose trampoline spills vector registers (which may hold a key a
# memcpy just moved) onto the stack of whichever thread calls first.
LDLIBS := -llmdb -ldl -lpthread -Wl,-z,relro,-z,now
MBEDCRYPTO := $(DEPLIB)/libmbedcrypto.a

NVCC := $(shell command -v /usr/local/cuda/bin/nvcc 2>/dev/null || command -v nvcc 2>/dev/null)

# Sanitizer build of the unit tests (and of the fault-injection test).
SAN := $(BUILD)/asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined

all: deps-check lib pkcs11 keystore inference tools appliance-bin tests-build

include lib/module.mk
include pkcs11/module.mk
include keystore/module.mk
include inference/module.mk
include appliance/module.mk
include tools/module.mk
include tests/module.mk

.PHONY: all deps deps-check run test test-unit test-integration test-asan \
	bench lint format clean distclean

deps:
	@BUILD=$(BUILD) sh tools/deps.sh

# Every build target depends on deps; tools/deps.sh returns at once when
# everything is present (and rebuilds mbedTLS when $(MBEDTLS_EXTRA) changed).
deps-check: $(DEPSTAMP)
$(DEPSTAMP): $(MBEDTLS_EXTRA) tools/deps.sh
	@BUILD=$(BUILD) sh tools/deps.sh

$(BUILD)/obj/%.o: %.c $(MBEDTLS_EXTRA) | $(DEPSTAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(SAN)/obj/%.o: %.c $(MBEDTLS_EXTRA) | $(DEPSTAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -O1 $(SANFLAGS) -MMD -MP -c $< -o $@

STATE ?= $(BUILD)/state
run: all
	@sh tools/run.sh "$(BUILD)" "$(STATE)"

test: deps-check
	@BUILD=$(BUILD) sh tests/run.sh

bench: all
	@BUILD=$(BUILD) sh tools/bench/run.sh

lint:
	@sh tools/lint.sh

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD)/obj $(BUILD)/asan $(BUILD)/bin $(BUILD)/lib $(BUILD)/test

distclean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj $(BUILD)/asan -name '*.d' 2>/dev/null)
