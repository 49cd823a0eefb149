# SPDX-License-Identifier: MIT
# `make analyze`: cppcheck and clang-tidy (.clang-tidy) over every .c in gateway/ cache/
# southbound/ northbound/, with this build's CFLAGS (so WERROR=1 and SAN=1 are seen too).
# Included from the Makefile; tests/lint/analyze.sh prints TAP and exits 1 on any finding.
.PHONY: analyze
analyze: export ANALYZE_CFLAGS = $(CFLAGS)
analyze: export B := $(B)
analyze:
	tests/lint/analyze.sh

# `make valgrind`: a subset of tests/it (every module) with the plain build's daemon and CLI
# under valgrind memcheck; TAP, exit 1 on any memcheck error or definite/indirect leak.
# About 20 minutes on 2 cores (VG_TESTS narrows it; see tests/lint/valgrind.sh).
.PHONY: valgrind
valgrind: all
	tests/lint/valgrind.sh $(B)
