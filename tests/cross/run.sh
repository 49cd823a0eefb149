#!/bin/bash
# SPDX-License-Identifier: MIT
# tests/cross/run.sh ARCH [STEP...] - otagw built for ARCH (arm64 or armhf) with Debian 12's
# cross compiler and multiarch libraries, its unit tests run under qemu-user, then one
# integration smoke test (tests/cross/smoke.py) against the emulated daemon. This is what
# catches endianness, alignment and word-size bugs (frame codec, YMODEM, CRCs, 64-bit sizes on
# a 32-bit target) that an amd64 run cannot.
#
# Steps, in order (default: all): deps (apt-get, as root), build (into build/ARCH/), unit,
# smoke. Each prints its wall-clock time; the run ends with one line "N passed, N failed" and
# exits 1 on any failure. `make cross-test ARCH=arm64` runs all of them.
set -u
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source-path=SCRIPTDIR/../..
. tests/lib/counts.sh

arch=${1:-}
case $arch in
arm64) triplet=aarch64-linux-gnu qemu=qemu-aarch64 ld=/lib/ld-linux-aarch64.so.1 ;;
armhf) triplet=arm-linux-gnueabihf qemu=qemu-arm ld=/lib/ld-linux-armhf.so.3 ;;
*)
	echo "usage: tests/cross/run.sh arm64|armhf [deps] [build] [unit] [smoke]" >&2
	exit 2
	;;
esac
shift
steps=${*:-deps build unit smoke}
B=build/$arch
# The binaries run on the target's own loader and libc from libc6:ARCH (pulled in by the -dev
# packages), found under / as on the target. Not `-L /usr/TRIPLET`: that prefix puts the cross
# toolchain's loader (libc6-ARCH-cross, 2.36-8) in front of libc6:ARCH's libc.so.6
# (2.36-9+deb12uN), and that mix hangs every fork()ed child in a busy loop. The prefix is only
# the fallback for a machine without libc6:ARCH. A QEMU_LD_PREFIX in the environment (a sysroot
# holding the target's libraries) is qemu's own and wins.
runner() {
	if [ -e "$ld" ] || [ -n "${QEMU_LD_PREFIX:-}" ]; then
		echo "$qemu"
	else
		echo "$qemu -L /usr/$triplet"
	fi
}
pass=0
fail=0

# The target's build and test dependencies: the five libraries otagw links (+ zlib, which
# the Makefile asks pkg-config for) and cmocka, as ARCH packages beside the native ones (all
# Multi-Arch: same), the cross gcc and qemu-user.
target_pkgs() {
	local p
	for p in libsqlite3-dev libcjson-dev libarchive-dev libmbedtls-dev libcmocka-dev zlib1g-dev \
		libwebsockets-dev; do
		printf '%s:%s ' "$p" "$arch"
	done
	printf 'gcc-%s qemu-user libwebsockets-dev\n' "$triplet"
}

# Debian 12's libwebsockets-dev breaks Multi-Arch: same: its /usr/include/lws_config.h names
# the architecture's library directory (LWS_INSTALL_LIBDIR, used only inside the library for
# plugins), so dpkg refuses the second architecture's copy ("trying to overwrite shared
# '/usr/include/lws_config.h'"). The foreign copy is installed without that one file; the
# native header, identical but for that string, serves both.
LWS_EXCLUDE=/usr/include/lws_config.h

step_deps() {
	local missing="" p apt
	for p in $(target_pkgs); do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && { echo "deps: all installed"; return 0; }
	if [ "$(id -u)" != 0 ]; then
		echo "deps: missing$missing; run as root: tests/cross/run.sh $arch deps"
		return 1
	fi
	dpkg --print-foreign-architectures | grep -qx "$arch" || dpkg --add-architecture "$arch" ||
		return 1
	export DEBIAN_FRONTEND=noninteractive
	# A mirror in the middle of a sync fails an update now and then: three tries, then go on
	# with the indexes that did arrive (the install below says what is missing, if anything).
	for p in 1 2 3; do
		apt-get update -q </dev/null >/dev/null && break
		[ "$p" = 3 ] && echo "deps: apt-get update failed 3 times (above); trying the install"
		[ "$p" = 3 ] || sleep 10
	done
	# --no-remove: a Multi-Arch version skew (a binNMU or a security update that reached one
	# architecture first) must fail here, not be "solved" by removing native packages.
	apt="apt-get install -y -q --no-install-recommends --no-remove"
	# shellcheck disable=SC2086 # word splitting of the lists is wanted
	$apt ${missing/ libwebsockets-dev:$arch/} </dev/null || return 1
	case "$missing " in *" libwebsockets-dev:$arch "*)
		$apt -o DPkg::Options::=--path-exclude="$LWS_EXCLUDE" "libwebsockets-dev:$arch" \
			</dev/null || return 1 ;;
	esac
	[ -f "$LWS_EXCLUDE" ] || { echo "deps: $LWS_EXCLUDE is missing"; return 1; }
}

step_build() {
	make -s -j"$(nproc)" B="$B" CROSS_COMPILE="$triplet-" WERROR=1 unit || return 1
	local size
	"$triplet-strip" -o "$B/otagw.stripped" "$B/otagw" || return 1
	size=$(stat -c %s "$B/otagw.stripped")
	echo "size: stripped $B/otagw is $size bytes ($((size / 1024)) KiB)"
}

# Counts the TAP output $1 of a program that exited with $2 (as tests/run.sh does).
count_tap() {
	local out=$1 rc=$2 label=$3 ok nok
	read -r ok nok < <(tap_counts "$out" "$rc")
	pass=$((pass + ok))
	fail=$((fail + nok))
	[ "$nok" -ne 0 ] && echo "$out" | grep -vE '^ok ' | tail -40
	printf '%-44s %3d passed, %d failed\n' "$label" "$ok" "$nok"
	[ "$nok" -eq 0 ]
}

step_unit() {
	local t out rc n=0 bad=0 run
	read -ra run <<<"$(runner)"
	for t in "$B"/tests/test_*; do
		[ -x "$t" ] || continue
		n=$((n + 1))
		out=$(CMOCKA_MESSAGE_OUTPUT=TAP timeout -s KILL 600 "${run[@]}" "$t" 2>&1)
		rc=$?
		count_tap "$out" "$rc" "unit-$arch/$(basename "$t")" || bad=1
	done
	[ "$n" -gt 0 ] || { count_tap "not ok 1 - no unit test binary in $B/tests" 1 "unit-$arch"; return 1; }
	return $bad
}

step_smoke() {
	local out rc
	out=$(timeout 600 /usr/bin/python3 tests/cross/smoke.py --bin "$B/otagw" --runner "$(runner)" 2>&1)
	rc=$?
	count_tap "$out" "$rc" "smoke-$arch (tests/cross/smoke.py)"
	grep -E '^# ' <<<"$out"
	return $rc
}

status=0
for s in $steps; do
	case $s in
	deps | build | unit | smoke) ;;
	*) echo "unknown step '$s' (deps build unit smoke)" >&2; exit 2 ;;
	esac
	t0=$(date +%s.%N)
	"step_$s"
	rc=$?
	t1=$(date +%s.%N)
	awk -v a="$arch" -v s="$s" -v r="$([ $rc -eq 0 ] && echo ok || echo FAILED)" -v t0="$t0" \
		-v t1="$t1" 'BEGIN { printf "cross[%s] %-5s %s in %.1f s\n", a, s, r, t1 - t0 }'
	if [ $rc -ne 0 ]; then
		status=1
		# Nothing after a failed deps or build step can run.
		case $s in deps | build)
			fail=$((fail + 1))
			break ;;
		esac
	fi
done
echo "$pass passed, $fail failed"
[ $status -eq 0 ] && [ $fail -eq 0 ]
