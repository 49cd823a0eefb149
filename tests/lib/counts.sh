# shellcheck shell=bash
# tests/lib/counts.sh - sourced by tests/run.sh, tests/cross/run.sh and
# tests/lint/valgrind.sh: what a test program's output says, as two numbers
# "passed failed" on stdout. Defines functions only.

# tap_counts OUT RC: the TAP output OUT of a program that exited with RC.
# A plan ("1..N") not filled counts the missing tests as failed; a non-zero
# exit with no "not ok" line counts one failure.
tap_counts() {
	local out=$1 rc=$2 plan ok nok
	plan=$(grep -m1 -oE '^1\.\.[0-9]+' <<<"$out" | cut -d. -f3)
	ok=$(grep -cE '^ok ' <<<"$out")
	nok=$(grep -cE '^not ok ' <<<"$out")
	[ -n "$plan" ] && [ $((ok + nok)) -lt "$plan" ] && nok=$((plan - ok))
	[ "$rc" -ne 0 ] && [ "$nok" -eq 0 ] && nok=1
	echo "$ok $nok"
}

# junit_counts XML: a pytest JUnit report. Failures and errors fail, skips
# count neither way; an unreadable or empty report counts one failure.
junit_counts() {
	/usr/bin/python3 - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print("0 1"); sys.exit()
suites = [root] if root.tag == "testsuite" else list(root)
t = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skip = sum(int(s.get("skipped", 0)) for s in suites)
print(t - bad - skip, bad + (1 if t == 0 else 0))
PY
}
