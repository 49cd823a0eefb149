#!/bin/bash
# SPDX-License-Identifier: MIT
# tests/lint/valgrind.sh [BUILD] - one integration run of the plain build ($BUILD/otagw,
# default build/) with every daemon (and every `otagw` CLI run) under valgrind memcheck:
# a subset of tests/it that reaches every module (REST API, core, tasks, store, TCP with
# one codec, HTTP devices, serial + YMODEM, image cache + fetch + resolver, cloud link +
# outbox, bundles). OTAGW_BIN points at tests/lint/vg-otagw, which logs each process to
# $BUILD/valgrind/vg.<pid>.log. Then every log must say "ERROR SUMMARY: 0 errors" and lose
# no byte definitely or indirectly. A process the tests SIGKILL on purpose leaves a log
# without a summary: it must then show no error record up to its death.
# Prints TAP (1..2) and exits 1 on any failure.
#
# Environment: OTAGW_IT_TIMEOUT_SCALE (default 6) multiplies the start/stop/request waits of
# tests/it/otagw_it.py (tests/lint/vg_timeouts.py); VG_TESTS replaces the test list.
set -u
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source-path=SCRIPTDIR/../..
. tests/lib/counts.sh
B=${1:-build}
case $B in /*) ;; *) B=$PWD/$B ;; esac
bin=$B/otagw
logs=$B/valgrind
export OTAGW_IT_TIMEOUT_SCALE=${OTAGW_IT_TIMEOUT_SCALE:-6}

echo "1..2"
if ! command -v valgrind >/dev/null; then
	echo "not ok 1 - integration tests under valgrind # valgrind missing (Debian package valgrind)"
	echo "not ok 2 - memcheck logs # no run"
	exit 1
fi
if [ ! -x "$bin" ]; then
	echo "not ok 1 - integration tests under valgrind # $bin missing (run make)"
	echo "not ok 2 - memcheck logs # no run"
	exit 1
fi
rm -rf "$logs"
mkdir -p "$logs" || exit 1
# a private copy, as tests/it/conftest.py makes of OTAGW_BIN: a rebuild during the run
# must not swap the binary under us
cp "$bin" "$logs/otagw" || exit 1

# Each entry: a test file, then optional pytest arguments (test_tcp: one codec, jsonline,
# plus the frame codec's own pipelining test).
default_tests=(
	"tests/it/test_walkthrough.py"
	"tests/it/test_tcp.py -k not__frame__or__pipelining"
	"tests/it/test_http_dev.py"
	"tests/it/test_serial.py"
	"tests/it/test_cache.py"
	"tests/it/test_cloud.py"
	"tests/it/test_bundle.py"
)
if [ -n "${VG_TESTS:-}" ]; then
	mapfile -t tests <<<"$VG_TESTS"
else
	tests=("${default_tests[@]}")
fi

t0=$SECONDS
status=0
passed=0
failed=0
report=()
for entry in "${tests[@]}"; do
	read -r -a args <<<"$entry"
	args=("${args[@]//__/ }")      # "not__frame" -> "not frame" (one -k argument)
	xml=$logs/pytest-$(basename "${args[0]}" .py).xml
	OTAGW_BIN=$PWD/tests/lint/vg-otagw OTAGW_VG_BIN=$logs/otagw OTAGW_VG_LOGS=$logs \
		PYTHONPATH=$PWD/tests/lint${PYTHONPATH:+:$PYTHONPATH} \
		timeout 3600 /usr/bin/python3 -m pytest -q -p no:cacheprovider -p vg_timeouts \
		--junitxml="$xml" "${args[@]}" >"$xml.log" 2>&1
	read -r ok nok < <(junit_counts "$xml")
	passed=$((passed + ok))
	failed=$((failed + nok))
	report+=("# ${args[0]}: $ok passed, $nok failed ($((SECONDS - t0)) s so far)")
	if [ "$nok" -ne 0 ]; then
		report+=("$(grep -E '^(FAILED|ERROR) ' "$xml.log" | head -20 | sed 's/^/#   /')")
		report+=("#   log: $xml.log")
	fi
done
if [ "$failed" -eq 0 ]; then
	echo "ok 1 - integration tests under valgrind ($passed passed, $((SECONDS - t0)) s)"
else
	echo "not ok 1 - integration tests under valgrind ($passed passed, $failed failed)"
	status=1
fi
printf '%s\n' "${report[@]}"

# The logs. A complete one ends with the error summary and the leak summary. Error records
# (memcheck's first line of each) are listed so that a failure says what it was.
records='^==[0-9]+== (Invalid|Conditional jump|Use of uninitialised|Syscall param|Mismatched|Source and destination|Argument .* of function|Jump to|Process terminating|[0-9,]+ (\([0-9,]+ direct, [0-9,]+ indirect\) )?bytes in [0-9,]+ blocks are (definitely|indirectly) lost)'
nlogs=0
killed=0
bad=()
reasons=()
for f in "$logs"/vg.*.log; do
	[ -e "$f" ] || continue
	nlogs=$((nlogs + 1))
	why=
	if grep -q 'ERROR SUMMARY:' "$f"; then
		grep -qE 'ERROR SUMMARY: 0 errors' "$f" ||
			why="$(grep -m1 -oE 'ERROR SUMMARY: [0-9]+ errors' "$f")"
		if grep -qE '(definitely|indirectly) lost: [1-9][0-9,]* bytes' "$f"; then
			why="$why; $(grep -oE '(definitely|indirectly) lost: [0-9,]+ bytes' "$f" | paste -sd' ')"
		fi
	else
		killed=$((killed + 1))    # SIGKILLed by its test: no summary, but no record either
		grep -qE "$records" "$f" && why="error records before it was killed"
	fi
	[ -n "$why" ] && bad+=("$f")
	[ -n "$why" ] && reasons+=("$why")
done
if [ "$nlogs" -eq 0 ]; then
	echo "not ok 2 - memcheck logs # none written to $logs"
	status=1
elif [ "${#bad[@]}" -eq 0 ]; then
	echo "ok 2 - memcheck: $nlogs processes, 0 errors, no leak ($killed SIGKILLed by their test)"
else
	echo "not ok 2 - memcheck: ${#bad[@]} of $nlogs processes with errors or leaks"
	for i in "${!bad[@]}"; do
		[ "$i" -lt 20 ] || break
		f=${bad[$i]}
		echo "# $f: ${reasons[$i]}"
		echo "#   $(grep -m1 -oE 'Command: .*' "$f" | cut -c10-120)"
		grep -m5 -E "$records" "$f" | sed 's/^==[0-9]*== /#   /'
	done
	status=1
fi
exit $status
