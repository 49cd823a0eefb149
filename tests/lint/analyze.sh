#!/bin/bash
# SPDX-License-Identifier: MIT
# tests/lint/analyze.sh - static analysis of every .c in gateway/ cache/ southbound/
# northbound/: cppcheck, then clang-tidy 14 with the checked-in .clang-tidy, both with the
# compile flags the Makefile really uses. Prints TAP (1..2, one line per tool, findings as
# "# " lines) and exits 1 on any finding, 0 when both are clean. Full logs: $B/analyze/.
#
# Environment:
#   ANALYZE_CFLAGS  the compiler flags (tests/lint/analyze.mk exports the Makefile's CFLAGS);
#                   unset: taken from `make -n` for gateway/main.c
#   JOBS            clang-tidy processes in parallel (default 2)
#   B               build directory for the logs (default build)
set -u
cd "$(dirname "$0")/../.." || exit 1
B=${B:-build}
JOBS=${JOBS:-2}
out=$B/analyze
mkdir -p "$out" || exit 1
rm -f "$out"/*.log

# The flags: shell words of ANALYZE_CFLAGS, or of the Makefile's compile line for main.c
# (this is how -DOTAGW_VERSION='"0.1.0"' keeps its quotes).
flags_src=${ANALYZE_CFLAGS-}
if [ -z "$flags_src" ]; then
	flags_src=$(make --no-print-directory -n -B -W gateway/main.c "$B/obj/gateway/main.o" 2>/dev/null |
		grep -E -- ' -c gateway/main\.c( |$)' | head -1)
fi
if [ -z "$flags_src" ]; then
	echo "1..2"
	echo "not ok 1 - cppcheck # cannot get the compile flags from make -n"
	echo "not ok 2 - clang-tidy # cannot get the compile flags from make -n"
	exit 1
fi
eval "set -- $flags_src"
cflags=()   # for clang-tidy: language, warnings, defines, includes
cpp=()      # for cppcheck: defines, undefines, includes
std=c11
for a in "$@"; do
	case $a in
	-std=*) cflags+=("$a"); std=${a#-std=}; std=${std/gnu/c} ;;
	-D* | -U* | -I*) cflags+=("$a"); cpp+=("$a") ;;
	-W*) cflags+=("$a") ;;
	esac
done

mapfile -t srcs < <(ls gateway/*.c cache/*.c southbound/*.c northbound/*.c)
status=0
echo "1..2"

# Prints the finding lines of log $1 as TAP comments (at most 200; the log has the rest).
findings() {
	grep -E "$2" "$1" | sed 's|^'"$PWD"'/||' | sort -t: -k1,1 -k2,2n -u | head -200 | sed 's/^/# /'
	echo "# full log: $1"
}

# 1. cppcheck. --library=posix knows fd and malloc ownership of POSIX calls. readdirCalled
# is off: it recommends readdir_r, which glibc deprecated (readdir is safe in our one thread).
log=$out/cppcheck.log
if ! command -v cppcheck >/dev/null; then
	echo "not ok 1 - cppcheck # not installed (Debian package cppcheck)"
	status=1
else
	cppcheck -q -j "$JOBS" --std="$std" --library=posix \
		--enable=warning,portability,performance --inline-suppr --error-exitcode=1 \
		--suppress=readdirCalled \
		--template='{file}:{line}:{column}: {severity}: {message} [{id}]' \
		"${cpp[@]}" "${srcs[@]}" >"$log" 2>&1
	rc=$?
	if [ "$rc" -eq 0 ] && ! grep -qE '^[^ ]+:[0-9]+:' "$log"; then
		echo "ok 1 - cppcheck (${#srcs[@]} files)"
	else
		echo "not ok 1 - cppcheck (${#srcs[@]} files)"
		findings "$log" '^[^ ]+:[0-9]+:[0-9]+: '
		status=1
	fi
fi

# 2. clang-tidy, one process per file, $JOBS at a time; each file's output in its own log.
tidy=$(command -v clang-tidy-14 || command -v clang-tidy)
if [ -z "$tidy" ]; then
	echo "not ok 2 - clang-tidy # not installed (Debian package clang-tidy)"
	exit 1
fi
export tidy out
printf '%s\n' "${srcs[@]}" | xargs -P "$JOBS" -I{} bash -c '
	f={}; log=$out/tidy-${f//\//_}.log
	"$tidy" --quiet "$f" -- "$@" >"$log" 2>&1 || echo "exit status $? of clang-tidy $f" >>"$log"
' tidy "${cflags[@]}"
log=$out/clang-tidy.log
cat "$out"/tidy-*.log >"$log"
if grep -qE '(warning|error): ' "$log"; then
	echo "not ok 2 - clang-tidy (${#srcs[@]} files)"
	findings "$log" '(warning|error): '
	status=1
elif grep -q '^exit status' "$log"; then       # failed without a finding: say how
	echo "not ok 2 - clang-tidy (${#srcs[@]} files)"
	findings "$log" '.'
	status=1
else
	echo "ok 2 - clang-tidy (${#srcs[@]} files)"
fi
exit $status
