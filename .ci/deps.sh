#!/bin/sh
# Installs the Debian packages in .ci/packages that are missing (as root), or
# prints the one apt-get line needed and fails (as anyone else).
cd "$(dirname "$0")/.." || exit 1
pkgs=$(grep -v '^#' .ci/packages)
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update && apt-get install -y --no-install-recommends $missing </dev/null
else
	echo "otagw needs Debian packages; run as root:"
	echo "  apt-get install -y$missing"
	exit 1
fi
