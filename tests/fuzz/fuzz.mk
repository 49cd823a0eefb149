# SPDX-License-Identifier: MIT
# tests/fuzz/fuzz.mk - libFuzzer targets for every parser of outside input
# (tests/fuzz/fuzz_*.c), included by the Makefile. Needs clang (14) and its
# libFuzzer runtime (Debian: libclang-rt-14-dev).
#   make fuzz       builds build/fuzz/fuzz_*, then runs each for FUZZ_TIME s
#                   (default 60) on build/fuzz/corpus/NAME, which starts as a
#                   copy of tests/fuzz/corpus/NAME and keeps what it finds
#   make fuzz-ci    builds, replays every checked-in corpus file of each
#                   target, then fuzzes each for FUZZ_CI_TIME s (default 10);
#                   TAP on stdout, one line per target
# FUZZ_JOBS (default: the number of CPUs) targets run at once; FUZZ_ONLY="a b"
# picks targets. Crashes land in build/fuzz/crash/.
# The project's sources are built a second time here, with clang and the
# fuzzer's instrumentation (-fsanitize=fuzzer-no-link) plus ASan and UBSan,
# into build/fuzz/libotagw.a; each target links against that archive.

ifndef FUZZ_MK_READ
FUZZ_MK_READ := 1

ifeq ($(origin FUZZ_CC),undefined)
FUZZ_CC      := $(firstword $(shell command -v clang-14 2>/dev/null) clang)
endif
FUZZ_TIME    ?= 60
FUZZ_CI_TIME ?= 10
FUZZ_JOBS    ?= $(shell nproc 2>/dev/null || echo 1)
FUZZ_B       := $(B)/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# The project's -std, -D and -I flags (pkg-config's included), not its optimisation or
# packagers' gcc-only flags.
FUZZ_CFLAGS   = -O1 -g $(filter -std=% -D% -I%,$(CFLAGS)) $(WARN) -Itests/fuzz
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_RUN     := $(if $(FUZZ_ONLY),$(filter $(FUZZ_ONLY),$(FUZZ_NAMES)),$(FUZZ_NAMES))
FUZZ_OBJ     := $(LIB_SRC:%.c=$(FUZZ_B)/obj/%.o)
FUZZ_BIN     := $(FUZZ_RUN:%=$(FUZZ_B)/fuzz_%)

.PHONY: fuzz fuzz-ci fuzz-build fuzz-cc

# Says what is missing rather than failing on the first object.
fuzz-cc:
	@mkdir -p $(FUZZ_B)
	@printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)\n{ return 0; }\n' \
		>$(FUZZ_B)/cc-check.c
	@$(FUZZ_CC) -fsanitize=fuzzer,address,undefined -o $(FUZZ_B)/cc-check $(FUZZ_B)/cc-check.c \
		2>/dev/null || { echo "fuzz: '$(FUZZ_CC)' cannot build libFuzzer targets;" \
		"Debian: apt-get install clang-14 libclang-rt-14-dev (or FUZZ_CC=...)" >&2; exit 1; }

$(FUZZ_B)/obj/%.o: %.c tests/fuzz/fuzz.mk
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(FUZZ_SAN) -MMD -MP -c $< -o $@

$(FUZZ_B)/libotagw.a: $(FUZZ_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

# A target that #includes a module's .c (to reach its static functions) defines that
# module's symbols itself; the archive's copy of it is then never pulled in.
$(FUZZ_B)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h $(FUZZ_B)/libotagw.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_SAN) -MMD -MP -o $@ $< \
		$(FUZZ_B)/libotagw.a $(LIBS)

fuzz-build: $(FUZZ_BIN)

# The build runs FUZZ_JOBS compilers at once even under a plain `make fuzz-ci`; this file
# is named again so the sub-make has these rules whether or not the Makefile includes it
# (the guard above keeps a second reading out).
# Its output goes to stderr: stdout is the TAP (fuzz-ci) or the results table (fuzz).
FUZZ_SUBMAKE = $(MAKE) --no-print-directory -f Makefile -f tests/fuzz/fuzz.mk -j$(FUZZ_JOBS) \
	fuzz-build >&2

fuzz: fuzz-cc
	@$(FUZZ_SUBMAKE)
	@tests/fuzz/run.sh fuzz $(FUZZ_B) $(FUZZ_TIME) $(FUZZ_JOBS) $(FUZZ_RUN)

fuzz-ci: fuzz-cc
	@$(FUZZ_SUBMAKE)
	@tests/fuzz/run.sh ci $(FUZZ_B) $(FUZZ_CI_TIME) $(FUZZ_JOBS) $(FUZZ_RUN)

-include $(FUZZ_OBJ:.o=.d) $(FUZZ_BIN:=.d)

endif
