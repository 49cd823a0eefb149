#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/fuzz/run.sh - runs the libFuzzer targets built by tests/fuzz/fuzz.mk.
#   run.sh ci   BUILD SECONDS JOBS NAME...   replay every file of
#       tests/fuzz/corpus/NAME, then fuzz SECONDS on a scratch copy of it;
#       TAP on stdout: "1..N", then "ok N - fuzz_NAME (E execs)" or
#       "not ok N - fuzz_NAME: <why> <crash file>"
#   run.sh fuzz BUILD SECONDS JOBS NAME...   fuzz SECONDS on BUILD/corpus/NAME
#       (the checked-in corpus merged in first; new finds stay there), then
#       a table: execs, coverage (edges), features, corpus size, crashes
# JOBS targets run at once. Logs: BUILD/log/NAME.log; crashes (inputs that
# fail, leak, time out or run out of memory): BUILD/crash/NAME-*.
# Exit status 1 when any target failed.
set -u

mode=$1 build=$2 secs=$3 jobs=$4
shift 4
here=$(dirname "$0")
mkdir -p "$build/log" "$build/crash" "$build/corpus" "$build/ci-corpus"

# Longest input each target is given: room for what it parses, small enough to stay fast.
max_len() {
	case $1 in
	http) echo 512 ;;
	ymodem) echo 2048 ;;
	proto | manifest) echo 16384 ;;
	bundle) echo 65536 ;;
	*) echo 8192 ;;
	esac
}

# The first line of a log that says why a run failed.
failure='ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer): [a-z-]+|runtime error|fuzz check failed'

# One target: fuzz_NAME. Writes BUILD/log/NAME.result: "ok <execs> <cov> <ft> <corpus>"
# or "fail <why> <file>".
run_one() {
	name=$1 bin=$build/fuzz_$1 log=$build/log/$1.log res=$build/log/$1.result
	seeds=$here/corpus/$1
	case $1 in
	msg_json | jsonline | frame) dict=-dict=$here/dict/msg.dict ;;
	proto) dict=-dict=$here/dict/proto.dict ;;
	rest | manifest | bundle) dict=-dict=$here/dict/rest.dict ;;
	config) dict=-dict=$here/dict/config.dict ;;
	*) dict= ;;
	esac
	: >"$log"
	if [ "$mode" = ci ]; then
		if [ -d "$seeds" ] && [ -n "$(ls -A "$seeds")" ]; then
			# Each file once, whole (a regression is the exact bytes kept).
			if ! "$bin" -rss_limit_mb=1024 -timeout=25 -artifact_prefix="$build/crash/$1-" \
				"$seeds"/* >>"$log" 2>&1; then
				bad=$(sed -n 's/^Running: //p' "$log" | tail -n 1)
				why=$(grep -m1 -oE "$failure" "$log" | tr ' ' '_')
				echo "fail corpus-regression:${why:-exit} $bad" >"$res"
				return
			fi
		fi
		corpus=$build/ci-corpus/$1
		rm -rf "$corpus"
		mkdir -p "$corpus"
	else
		corpus=$build/corpus/$1
		mkdir -p "$corpus"
	fi
	[ -d "$seeds" ] && cp -n "$seeds"/* "$corpus"/ 2>/dev/null
	rm -f "$build/crash/$1"-*
	"$bin" -max_total_time="$secs" -rss_limit_mb=1024 -timeout=25 -max_len="$(max_len "$1")" \
		-print_final_stats=1 -artifact_prefix="$build/crash/$1-" $dict "$corpus" \
		>>"$log" 2>&1
	rc=$?
	crash=$(ls "$build/crash/$1"-* 2>/dev/null | head -n 1)
	if [ $rc -ne 0 ] || [ -n "$crash" ]; then
		why=$(grep -m1 -oE "$failure" "$log" | tr ' ' '_')
		echo "fail ${why:-exit_$rc} ${crash:-(no crash file, see $log)}" >"$res"
		return
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1)
	cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
	ncorp=$(ls "$corpus" | wc -l)
	echo "ok ${execs:-0} ${cov:-0} ${ft:-0} $ncorp" >"$res"
}

names=$*
[ "$mode" = ci ] && echo "1..$#"

# At most JOBS at once: start one per free slot, wait for the oldest.
running=
for n in $names; do
	rm -f "$build/log/$n.result"
	run_one "$n" &
	running="$running $!"
	set -- $running
	if [ $# -ge "$jobs" ]; then
		wait "$1"
		shift
		running=$*
	fi
done
wait

status=0
i=0
[ "$mode" = fuzz ] && printf '%-10s %10s %7s %7s %7s  %s\n' target execs cov ft corpus result
for n in $names; do
	i=$((i + 1))
	set -- $(cat "$build/log/$n.result" 2>/dev/null || echo "fail no-result $build/log/$n.log")
	if [ "$1" = ok ]; then
		if [ "$mode" = ci ]; then
			echo "ok $i - fuzz_$n ($2 execs)"
		else
			printf '%-10s %10s %7s %7s %7s  %s\n' "$n" "$2" "$3" "$4" "$5" ok
		fi
	else
		status=1
		if [ "$mode" = ci ]; then
			echo "not ok $i - fuzz_$n: $2 $3"
			echo "# log: $build/log/$n.log"
		else
			printf '%-10s %10s %7s %7s %7s  %s\n' "$n" - - - - "FAILED: $2 $3"
		fi
	fi
done
exit $status
