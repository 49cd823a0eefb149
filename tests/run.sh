#!/bin/bash
# tests/run.sh BUILD [SAN_BUILD] - runs every test binary of each build (cmocka,
# TAP output), then the integration suite against the real daemons, and ends
# with exactly one line "N passed, N failed". Exit status 1 on any failure.
set -u
cd "$(dirname "$0")/.." || exit 1
# shellcheck source-path=SCRIPTDIR/..
. tests/lib/counts.sh
pass=0
fail=0
failed_names=()
t_stage=$SECONDS        # when the stage being counted began (seconds are printed)

# One cmocka program: count "ok"/"not ok" lines; a crash or a short plan
# counts the missing tests as failed.
run_cmocka() {
	local bin=$1 label=$2 out rc
	t_stage=$SECONDS
	out=$(CMOCKA_MESSAGE_OUTPUT=TAP timeout 300 "$bin" 2>&1)
	rc=$?
	count_tap "$out" "$rc" "$label"
}

# Counts the TAP output $1 of a program that exited with $2, labelled $3.
count_tap() {
	local out=$1 rc=$2 label=$3 ok nok
	read -r ok nok < <(tap_counts "$out" "$rc")
	pass=$((pass + ok))
	fail=$((fail + nok))
	if [ "$nok" -ne 0 ]; then
		failed_names+=("$label")
		echo "$out" | grep -vE '^ok ' | tail -40
	fi
	printf '%-40s %3d passed, %d failed  (%d s)\n' "$label" "$ok" "$nok" $((SECONDS - t_stage))
}

# The pytest suite against one daemon binary; counts from its JUnit XML.
run_pytest() {
	local bin=$1 label=$2 dir=${3:-tests/it} xml ok nok
	xml=$(mktemp)
	t_stage=$SECONDS
	# 100 kill -9 runs on the plain build, 20 on the slower sanitized one
	local runs=100 kills=200
	case "$bin" in */san/*) runs=20 kills=40 ;; esac
	OTAGW_CONSISTENCY_KILLS=${OTAGW_CONSISTENCY_KILLS:-$kills} \
	OTAGW_CRASH_RUNS=${OTAGW_CRASH_RUNS:-$runs} OTAGW_BIN="$bin" timeout 1200 /usr/bin/python3 -m pytest -q -p no:cacheprovider \
		--junitxml="$xml" "$dir" >"$xml.log" 2>&1
	read -r ok nok < <(junit_counts "$xml")
	pass=$((pass + ok))
	fail=$((fail + nok))
	if [ "$nok" -ne 0 ]; then
		failed_names+=("$label")
		tail -60 "$xml.log"
	fi
	printf '%-40s %3d passed, %d failed  (%d s)\n' "$label" "$ok" "$nok" $((SECONDS - t_stage))
	rm -f "$xml" "$xml.log"
}

# The web console's browser tests (tests/console/: playwright-core driving
# Debian's chromium) against one daemon binary; TAP counted as for cmocka.
run_console() {
	local bin=$1 label=$2 out rc
	t_stage=$SECONDS
	if ! command -v node >/dev/null; then
		count_tap "not ok 1 - node is missing (Debian package nodejs)" 1 "$label"
		return
	fi
	if [ ! -d tests/console/node_modules/playwright-core ]; then
		count_tap "not ok 1 - tests/console/node_modules is missing; run: npm ci --prefix tests/console" 1 "$label"
		return
	fi
	out=$(OTAGW_BIN="$bin" timeout 300 node tests/console/console.test.mjs 2>&1)
	rc=$?
	count_tap "$out" "$rc" "$label"
}

for b in "$@"; do
	for t in "$b"/tests/test_*; do
		[ -x "$t" ] && run_cmocka "$t" "unit${b#build}/$(basename "$t")"
	done
done
for b in "$@"; do
	run_pytest "$PWD/$b/otagw" "integration${b#build} (pytest, $b/otagw)"
done
run_console "$PWD/build/otagw" "console (playwright, build/otagw)"
# cppcheck and clang-tidy (.clang-tidy) over every source file
t_stage=$SECONDS
out=$(timeout 600 tests/lint/analyze.sh 2>&1)
count_tap "$out" $? "static analysis (cppcheck, clang-tidy)"
# libFuzzer targets: the checked-in corpora as regressions, then a short run each
t_stage=$SECONDS
out=$(timeout 900 make -s fuzz-ci 2>&1)
count_tap "$out" $? "fuzz (corpora + short runs)"
# install layout, systemd unit, OpenWrt and Yocto packaging, make dist
run_pytest "$PWD/build/otagw" "packaging (pytest, tests/pkg)" tests/pkg

[ ${#failed_names[@]} -ne 0 ] && printf 'failed: %s\n' "${failed_names[@]}"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
