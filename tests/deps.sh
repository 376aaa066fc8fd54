#!/bin/sh
# Install what p2pcat needs: `deps.sh build' for building, `deps.sh test'
# for building and the test suite.  As root it runs apt-get; otherwise it
# prints the exact command and fails.
set -u
BUILD="gcc make pkg-config libcurl4-openssl-dev libcjson-dev libsodium-dev"
TEST="$BUILD coturn iproute2 iptables conntrack python3 mandoc nodejs npm netcat-openbsd iperf3 procps time"

case "${1:-build}" in
build) want=$BUILD ;;
test)  want=$TEST ;;
*) echo "usage: deps.sh build|test" >&2; exit 1 ;;
esac

missing=
for p in $want; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "deps.sh: not a Debian system; install the equivalents of:$missing" >&2
	exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "p2pcat: missing packages; run as root:" >&2
	echo "  apt-get install -y$missing" >&2
	exit 1
fi
echo "deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2 || exit 1
apt-get install -y -qq --no-install-recommends $missing >&2 || exit 1
